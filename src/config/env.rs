//! `${NAME}` environment-variable expansion inside the string values of the
//! configuration, after the file is parsed.
//!
//! Rules:
//! - `${NAME}` inside a string value is replaced by the variable's value, verbatim.
//!   `NAME` is an ASCII letter or `_` followed by letters, digits or `_`.
//! - `$${` stands for a literal `${` (so `"$${HOME}"` is the text `${HOME}`).
//! - A `$` not followed by `{` is left alone (`$5`, `a$b`).
//! - A variable that is not set (or not valid UTF-8), a malformed reference (`${}`,
//!   `${1X}`, `${A` without `}`), or a value containing a line break is a problem
//!   naming the line; every such problem in the file is reported, not only the first.
//!   A value that is set but empty expands to the empty string.
//!
//! Because expansion happens after parsing, a variable only ever becomes (part of)
//! the one string it stands in: its quotes, `#`, `,`, `}` or backslashes are text,
//! never TOML, so a value cannot add keys, end the string early or be unescaped.
//! Comments are not expanded. A reference outside a string (`token = ${X}`) is a
//! syntax error, and one in a key is refused (module `reader` reports both, naming
//! them). Line breaks are still refused, except in `github.private_key` (a PEM key
//! is lines): no other value of the schema holds one, and in the token or a label
//! one is always a mistake.
//!
//! This module expands one string; the walk over the parsed document is in
//! `reader`. The variables come from a lookup function, so tests never touch the
//! process environment. Problems name variables, never their values.

use super::problem::Problem;
use std::env::VarError;

/// Expands every `${NAME}` in `text` with `lookup` (normally [`std::env::var`]),
/// counting lines from 1. On failure returns every problem found, in line order.
pub fn expand_env<F>(text: &str, lookup: F) -> Result<String, Vec<Problem>>
where
    F: Fn(&str) -> Result<String, VarError>,
{
    let mut problems = Vec::new();
    let expanded = expand_value(text, 1, false, &lookup, &mut problems);
    if problems.is_empty() {
        Ok(expanded.unwrap_or_else(|| text.to_owned()))
    } else {
        Err(problems)
    }
}

/// Expands one string value whose text starts on line `first_line`, adding its
/// problems to `problems`. `None` when it holds no `$` (nothing to expand).
pub(super) fn expand_value<F>(
    text: &str,
    first_line: usize,
    multiline: bool,
    lookup: &F,
    problems: &mut Vec<Problem>,
) -> Option<String>
where
    F: Fn(&str) -> Result<String, VarError>,
{
    if !text.contains('$') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        expand_line(
            line,
            first_line + index,
            multiline,
            lookup,
            &mut out,
            problems,
        );
    }
    Some(out)
}

/// The variable names `text` refers to (`${NAME}`, not `$${`), for messages.
pub(super) fn references(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let after = &rest[at..];
        if let Some(escaped) = after.strip_prefix("$${") {
            rest = escaped;
        } else if let Some(reference) = after.strip_prefix("${") {
            let Some(end) = reference.find('}') else {
                break;
            };
            if is_variable_name(&reference[..end]) {
                names.push(&reference[..end]);
            }
            rest = &reference[end + 1..];
        } else {
            rest = &after[1..];
        }
    }
    names
}

fn expand_line<F>(
    line: &str,
    number: usize,
    multiline: bool,
    lookup: &F,
    out: &mut String,
    problems: &mut Vec<Problem>,
) where
    F: Fn(&str) -> Result<String, VarError>,
{
    let mut rest = line;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(reference) = after.strip_prefix("${") {
            let Some(end) = reference.find('}') else {
                problems.push(Problem::at_line(
                    number,
                    "`${` without a closing `}` (write `$${` for a literal `${`)".to_owned(),
                ));
                return;
            };
            let name = &reference[..end];
            rest = &reference[end + 1..];
            if !is_variable_name(name) {
                problems.push(Problem::at_line(
                    number,
                    format!(
                        "invalid environment variable reference `${{{}}}`: expected a name of \
                         letters, digits and `_` not starting with a digit",
                        name.chars()
                            .take(crate::domain::MAX_QUOTED_INPUT)
                            .collect::<String>()
                    ),
                ));
                continue;
            }
            match lookup(name) {
                Ok(value) if !multiline && value.contains(['\n', '\r']) => {
                    problems.push(Problem::at_line(
                        number,
                        format!("environment variable {name} contains a line break"),
                    ));
                }
                Ok(value) => out.push_str(&value),
                Err(VarError::NotPresent) => problems.push(Problem::at_line(
                    number,
                    format!("environment variable {name} is not set"),
                )),
                Err(VarError::NotUnicode(_)) => problems.push(Problem::at_line(
                    number,
                    format!("environment variable {name} is not valid UTF-8"),
                )),
            }
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
}

fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Result<String, VarError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned().ok_or(VarError::NotPresent)
    }

    #[test]
    fn expands_references_and_leaves_other_text_alone() {
        let lookup = vars(&[("TOKEN", "s3cret"), ("EMPTY", ""), ("_A1", "x")]);
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("no references\n", "no references\n"),
            (r#"token = "${TOKEN}""#, r#"token = "s3cret""#),
            ("${TOKEN}${TOKEN}", "s3crets3cret"),
            ("a${EMPTY}b", "ab"),
            ("${_A1}", "x"),
            ("$$${TOKEN}", "$${TOKEN}"),
            ("$${TOKEN}", "${TOKEN}"),
            ("$${", "${"),
            (
                "price $5 and a$b and $ {X} and $",
                "price $5 and a$b and $ {X} and $",
            ),
            ("line1\n# ${TOKEN}\r\nline3", "line1\n# s3cret\r\nline3"),
            ("é${TOKEN}é", "és3creté"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                expand_env(input, &lookup).as_deref(),
                Ok(*expected),
                "{input:?}"
            );
        }
    }

    #[test]
    fn reports_every_problem_with_its_line() {
        let lookup = vars(&[("MULTI", "a\nb"), ("SET", "v")]);
        let text = "a = \"${MISSING}\"\nb = \"${SET}\"\nc = \"${1BAD}\" d = \"${}\"\n\
                    e = \"${MULTI}\"\nf = \"${UNCLOSED\"\ng = \"${ALSO_MISSING}\"\n";
        let problems = expand_env(text, &lookup).unwrap_err();
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            [
                "line 1: environment variable MISSING is not set",
                "line 3: invalid environment variable reference `${1BAD}`: expected a name of \
                 letters, digits and `_` not starting with a digit",
                "line 3: invalid environment variable reference `${}`: expected a name of \
                 letters, digits and `_` not starting with a digit",
                "line 4: environment variable MULTI contains a line break",
                "line 5: `${` without a closing `}` (write `$${` for a literal `${`)",
                "line 6: environment variable ALSO_MISSING is not set",
            ]
        );
    }

    #[test]
    fn problems_never_contain_values() {
        let lookup = vars(&[("SECRET", "hunter2\nhunter2")]);
        let problems = expand_env("x = \"${SECRET}\"", &lookup).unwrap_err();
        assert!(!problems[0].to_string().contains("hunter2"));
    }

    #[test]
    fn non_unicode_values_are_reported() {
        let lookup = |_: &str| Err(VarError::NotUnicode(std::ffi::OsString::from("x")));
        let problems = expand_env("${X}", lookup).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "line 1: environment variable X is not valid UTF-8"
        );
    }
}

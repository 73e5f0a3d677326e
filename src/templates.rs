//! The one template engine of the collector (minijinja), for everything it writes
//! as HTML or Markdown: the report and the landing page (`report::render`).
//!
//! Escaping is the engine's job, never a template's or a caller's:
//! - a template's format is its file extension: `.html` is escaped with
//!   [`escape_html`], `.md` with [`escape_markdown`]; any other name is refused when
//!   the environment is built;
//! - every value a template prints goes through that one escaper. The environment
//!   has no filters at all (no `safe`, no `escape`), and printing inside an
//!   `{% autoescape %}` block of another kind is an error, so a template cannot
//!   write a value unescaped;
//! - the only text written as is: the templates' own literal text, and the output
//!   of their macros (template text whose values were escaped in turn). The Rust
//!   side hands over plain data (serde), never markup;
//! - printing an absent value (`none`, undefined) is an error rather than the word
//!   `none` or nothing, so a template mistake cannot pass silently.
//!
//! Whitespace: `trim_blocks` and `lstrip_blocks` (a block tag on its own line leaves
//! no line behind), and a template's final line break is kept.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};

/// The extension of templates escaped as HTML.
const HTML_EXTENSION: &str = "html";

/// The extension of templates escaped as Markdown.
const MARKDOWN_EXTENSION: &str = "md";

/// The engine's name of the Markdown escaping.
const MARKDOWN_ESCAPE: &str = "markdown";

/// The escaping of a template, from its name; `None` for a name the engine refuses.
fn escaping_of(name: &str) -> Option<AutoEscape> {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some(HTML_EXTENSION) => Some(AutoEscape::Html),
        Some(MARKDOWN_EXTENSION) => Some(AutoEscape::Custom(MARKDOWN_ESCAPE.into())),
        _ => None,
    }
}

/// An environment holding `templates` (`(name, source)`), configured as the module
/// documentation says. An error names a template with an unknown extension or one
/// that does not compile.
pub(crate) fn environment(
    templates: &[(&'static str, &'static str)],
) -> Result<Environment<'static>, Error> {
    // `empty`: no filters, tests or globals, so none can bypass escaping.
    let mut env = Environment::empty();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()?,
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Unknown names are refused below, so the fallback is never used.
    env.set_auto_escape_callback(|name| escaping_of(name).unwrap_or(AutoEscape::None));
    env.set_formatter(format);
    for (name, source) in templates {
        if escaping_of(name).is_none() {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("template {name:?}: the name must end in .{HTML_EXTENSION} or .{MARKDOWN_EXTENSION}"),
            ));
        }
        env.add_template(name, source)?;
    }
    Ok(env)
}

/// Writes one printed value, escaped for the template's format.
fn format(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_undefined() || value.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "an absent value cannot be printed; the template must test it first",
        ));
    }
    let expected = escaping_of(state.name());
    if expected.as_ref() != Some(state.auto_escape()) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "values are printed with the escaping of the template's format only",
        ));
    }
    // Only a macro's output is safe: template text whose values were escaped.
    if value.is_safe() {
        return out
            .write_str(value.as_str().unwrap_or_default())
            .map_err(Error::from);
    }
    let text = value.to_string();
    let escaped = match state.auto_escape() {
        AutoEscape::Html => escape_html(&text),
        _ => escape_markdown(&text),
    };
    out.write_str(&escaped).map_err(Error::from)
}

/// Escapes text for HTML element content and attribute values (double- or
/// single-quoted).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text from outside for Markdown, table cells included: characters with a
/// meaning in Markdown get a backslash, line breaks and tabs become spaces.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '~' | '!' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(name: &'static str, source: &'static str, value: &str) -> Result<String, Error> {
        let env = environment(&[(name, source)])?;
        env.get_template(name)?
            .render(minijinja::context! { value => value })
    }

    #[test]
    fn every_value_is_escaped_by_the_format_of_its_template() {
        let value = "<b>\"a|b\"</b>";
        assert_eq!(
            render("t.html", "<p>{{ value }}</p>\n", value).unwrap(),
            "<p>&lt;b&gt;&quot;a|b&quot;&lt;/b&gt;</p>\n"
        );
        assert_eq!(
            render("t.md", "| {{ value }} |\n", value).unwrap(),
            "| \\<b\\>\"a\\|b\"\\</b\\> |\n"
        );
        // A macro's values are escaped too; its output is not escaped twice.
        assert_eq!(
            render(
                "t.html",
                "{% macro b(x) %}<b>{{ x }}</b>{% endmacro %}{{ b(value) }}",
                "&"
            )
            .unwrap(),
            "<b>&amp;</b>"
        );
    }

    #[test]
    fn there_is_no_way_around_the_escaper() {
        for source in [
            "{{ value|safe }}",
            "{{ value|e }}",
            "{% autoescape false %}{{ value }}{% endautoescape %}",
            "{% autoescape 'html' %}{{ value }}{% endautoescape %}",
            "{{ missing }}",
            "{{ none }}",
        ] {
            assert!(render("t.md", source, "<x>").is_err(), "{source}");
            if !source.contains("'html'") {
                assert!(render("t.html", source, "<x>").is_err(), "{source}");
            }
        }
        assert!(environment(&[("t.txt", "{{ value }}")]).is_err());
        assert!(environment(&[("page", "{{ value }}")]).is_err());
    }
}

//! A small parser of the Prometheus text exposition format 0.0.4, written from the
//! format's description (not with the `prometheus` crate the exporter renders with),
//! so that the end-to-end tests read `/metrics` the way a scraper does.
//!
//! It reads `# HELP` and `# TYPE` lines, skips other comments and blank lines, and
//! turns every sample line `name{label="value",...} value [timestamp]` into one
//! entry of a map from the series (name and labels sorted by label name) to its
//! value. Label values are unescaped (`\\`, `\"`, `\n`); values may be `NaN`,
//! `+Inf` or `-Inf`. Histogram buckets and summary quantiles are plain samples here
//! (`x_bucket{le="300"}`, `x{quantile="0.5"}`, `x_sum`, `x_count`), as in the text.
//!
//! It deliberately does not check the exposition's finer rules (family grouping,
//! cumulative buckets, HELP on every family): promtool does that in the exporter's
//! own tests. It rejects what would make the map ambiguous: a malformed line, the
//! same series twice, a label twice in one series, two TYPE lines for one family.

use std::collections::BTreeMap;
use std::fmt;

/// One series: a sample name and its labels, sorted by label name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl SeriesKey {
    /// Sorts `labels` by name.
    pub fn new(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        SeriesKey {
            name: name.to_owned(),
            labels,
        }
    }

    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `name{a="x",b="y"}` (label values written with the format's escapes).
impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.labels.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            write!(f, "{k}=\"{escaped}\"")?;
        }
        f.write_str("}")
    }
}

/// A parsed exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// Family name → type as written in `# TYPE` (`counter`, `gauge`, ...).
    pub types: BTreeMap<String, String>,
    /// Family name → HELP text, unescaped.
    pub helps: BTreeMap<String, String>,
    /// Every sample.
    pub samples: BTreeMap<SeriesKey, f64>,
}

impl Scrape {
    /// The family a sample belongs to: its own name when a TYPE names it, else the
    /// name without `_sum`, `_count` or `_bucket` when that is a summary or histogram.
    pub fn family_of(&self, sample_name: &str) -> Option<&str> {
        if let Some((name, _)) = self.types.get_key_value(sample_name) {
            return Some(name);
        }
        for suffix in ["_sum", "_count", "_bucket"] {
            if let Some(base) = sample_name.strip_suffix(suffix) {
                if let Some((name, kind)) = self.types.get_key_value(base) {
                    let ok = match suffix {
                        "_bucket" => kind == "histogram",
                        _ => kind == "histogram" || kind == "summary",
                    };
                    if ok {
                        return Some(name);
                    }
                }
            }
        }
        None
    }
}

/// Why a text is not a valid exposition; names the line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses a whole exposition.
pub fn parse(text: &str) -> Result<Scrape, ParseError> {
    let mut scrape = Scrape::default();
    for (index, line) in text.lines().enumerate() {
        let error = |message: String| ParseError {
            line: index + 1,
            message,
        };
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.trim().is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            parse_comment(comment, &mut scrape).map_err(error)?;
            continue;
        }
        let (key, value) = parse_sample(trimmed).map_err(error)?;
        if scrape.samples.contains_key(&key) {
            return Err(error(format!("series {key} appears twice")));
        }
        scrape.samples.insert(key, value);
    }
    Ok(scrape)
}

/// `# HELP name text`, `# TYPE name type`; any other comment is ignored.
fn parse_comment(comment: &str, scrape: &mut Scrape) -> Result<(), String> {
    let comment = comment.trim_start_matches([' ', '\t']);
    let (keyword, rest) = split_token(comment);
    match keyword {
        "HELP" => {
            let (name, text) = split_token(rest);
            check_metric_name(name)?;
            scrape.helps.insert(name.to_owned(), unescape(text, false)?);
        }
        "TYPE" => {
            let (name, kind) = split_token(rest);
            check_metric_name(name)?;
            let kind = kind.trim();
            if !matches!(
                kind,
                "counter" | "gauge" | "summary" | "histogram" | "untyped"
            ) {
                return Err(format!("unknown type {kind:?} for {name}"));
            }
            if scrape
                .types
                .insert(name.to_owned(), kind.to_owned())
                .is_some()
            {
                return Err(format!("two TYPE lines for {name}"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The first whitespace-separated token and the rest (leading blanks removed).
fn split_token(text: &str) -> (&str, &str) {
    let text = text.trim_start_matches([' ', '\t']);
    match text.find([' ', '\t']) {
        Some(end) => (&text[..end], text[end..].trim_start_matches([' ', '\t'])),
        None => (text, ""),
    }
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("invalid metric name {name:?}"))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("invalid label name {name:?}"))
    }
}

/// Undoes the format's escapes: `\\` and `\n`, plus `\"` in label values.
fn unescape(text: &str, quotes: bool) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            // HELP text keeps an unknown escape as written.
            Some(other) if !quotes => {
                out.push('\\');
                out.push(other);
            }
            other => return Err(format!("invalid escape \\{}", other.unwrap_or(' '))),
        }
    }
    Ok(out)
}

/// `name{labels} value [timestamp]`.
fn parse_sample(line: &str) -> Result<(SeriesKey, f64), String> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels: Vec<(String, String)> = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    let mut fields = rest.split([' ', '\t']).filter(|f| !f.is_empty());
    let value_text = fields
        .next()
        .ok_or_else(|| format!("sample {name} has no value"))?;
    let value = parse_value(value_text)?;
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("invalid timestamp {timestamp:?}"))?;
    }
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the value"));
    }
    labels.sort();
    if labels.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(format!("a label appears twice in {name}"));
    }
    Ok((
        SeriesKey {
            name: name.to_owned(),
            labels,
        },
        value,
    ))
}

/// Parses `a="x",b="y"}` (after the opening brace); returns what follows the `}`.
fn parse_labels<'a>(
    mut text: &'a str,
    labels: &mut Vec<(String, String)>,
) -> Result<&'a str, String> {
    loop {
        text = text.trim_start_matches([' ', '\t']);
        if let Some(rest) = text.strip_prefix('}') {
            return Ok(rest);
        }
        let eq = text
            .find('=')
            .ok_or_else(|| "a label without '='".to_owned())?;
        let name = text[..eq].trim_end_matches([' ', '\t']);
        check_label_name(name)?;
        text = text[eq + 1..].trim_start_matches([' ', '\t']);
        text = text
            .strip_prefix('"')
            .ok_or_else(|| format!("label {name} has no quoted value"))?;
        // The value ends at the first quote not escaped by a backslash.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in text.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or_else(|| format!("label {name} has an unterminated value"))?;
        labels.push((name.to_owned(), unescape(&text[..end], true)?));
        text = text[end + 1..].trim_start_matches([' ', '\t']);
        if let Some(rest) = text.strip_prefix(',') {
            text = rest;
        } else if !text.starts_with('}') {
            return Err("labels must be separated by ','".to_owned());
        }
    }
}

/// A sample value as the format writes it (Go's `ParseFloat` spellings).
pub fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => {
            let plain = text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
            match text.parse::<f64>() {
                Ok(value) if plain => Ok(value),
                _ => Err(format!("invalid value {text:?}")),
            }
        }
    }
}

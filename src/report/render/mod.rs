//! The renderers: a [`Report`] in, text out. They format what the report holds and
//! compute nothing (chart coordinates are the only arithmetic, in `html`).
//!
//! - `markdown`: tables for a wiki page or a GitHub issue, no HTML.
//! - `html`: one self-contained page with inline CSS and SVG charts.
//! - `json`: the serde form of `Report` (the documented schema).
//! - `csv`: one row per team and repository, exact values.
//! - `text`: how values read in the human formats.

pub mod csv;
pub mod html;
pub mod json;
pub mod markdown;
pub mod text;

use super::model::Report;
use super::ReportError;
use std::fmt;

/// An output format of `dora-collector report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Markdown,
    Html,
    Json,
    Csv,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Markdown, Format::Html, Format::Json, Format::Csv];

    /// The name on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }

    /// The usual file extension.
    pub const fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Renders `report` in `format` (HTML without a window selector: a file).
pub fn render(report: &Report, format: Format) -> Result<String, ReportError> {
    match format {
        Format::Markdown => Ok(markdown::render(report)),
        Format::Html => Ok(html::render(report, &html::HtmlOptions::default())),
        Format::Json => json::render(report),
        Format::Csv => csv::render(report),
    }
}

//! The renderers: a [`Report`] in, text out. They format what the report holds and
//! compute nothing (chart coordinates are the only arithmetic, in `chart`).
//!
//! - `markdown`: tables for a wiki page or a GitHub issue, no HTML.
//! - `html`: one self-contained page with inline CSS and SVG charts.
//! - `overview`: the landing page at `/`, over the same view model.
//! - `json`: the serde form of `Report` (the documented schema).
//! - `csv`: one row per team and repository, exact values.
//! - `text`: how values read in the human formats.
//!
//! Markdown and HTML are templates (`templates/report.md`, `templates/report.html`)
//! over one view model (`view`, and `chart` for the HTML charts), rendered by the
//! collector's template engine ([`crate::templates`]), which escapes every printed
//! value for the template's format. Each section is written once per format, in its
//! template.

mod chart;
pub mod csv;
pub mod html;
pub mod json;
pub mod markdown;
pub mod overview;
pub mod text;
mod view;

use super::model::Report;
use super::ReportError;
use minijinja::value::{Serde, Value};
use minijinja::Environment;
use serde::Serialize;
use std::fmt;
use std::sync::LazyLock;

/// The style sheet the HTML pages include (`{% include "style.html" %}`).
const STYLE_TEMPLATE: &str = "style.html";

/// The report's templates, compiled once (an error would be a mistake in a
/// template, which every report test shows).
static TEMPLATES: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    crate::templates::environment(&[
        (html::TEMPLATE, include_str!("templates/report.html")),
        (markdown::TEMPLATE, include_str!("templates/report.md")),
        (overview::TEMPLATE, include_str!("templates/overview.html")),
        (STYLE_TEMPLATE, include_str!("templates/style.html")),
    ])
    .map_err(|e| e.to_string())
});

/// Renders the template `name` over `context`; `format` names the format in an error.
fn render_template(
    name: &str,
    format: &'static str,
    context: &impl Serialize,
) -> Result<String, ReportError> {
    let failed = |cause: String| ReportError::Render { format, cause };
    let env = TEMPLATES.as_ref().map_err(|e| failed(e.clone()))?;
    env.get_template(name)
        .and_then(|template| template.render(Value::from(Serde(context))))
        .map_err(|e| failed(e.to_string()))
}

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
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report, &html::HtmlOptions::default()),
        Format::Json => json::render(report),
        Format::Csv => csv::render(report),
    }
}

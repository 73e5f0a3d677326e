//! The report as JSON: the serde form of [`Report`], pretty-printed, with a final
//! line break. The schema (every field, `schema_version`) is `docs/report.md`.

use crate::report::model::Report;
use crate::report::ReportError;

/// Renders `report` as JSON.
pub fn render(report: &Report) -> Result<String, ReportError> {
    let mut text = serde_json::to_string_pretty(report).map_err(|e| ReportError::Render {
        format: "json",
        cause: e.to_string(),
    })?;
    text.push('\n');
    Ok(text)
}

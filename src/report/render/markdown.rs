//! The report as Markdown that pastes cleanly into a wiki page or a GitHub issue:
//! headings, pipe tables and lists only, no HTML. Text from outside (team names,
//! sync errors) is escaped so that it cannot break a table or add markup.

use super::text;
use crate::report::model::*;
use std::fmt::Write;

/// Renders `report` as GitHub-flavoured Markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, report);
    out
}

fn write_report(out: &mut String, report: &Report) -> std::fmt::Result {
    let summary = &report.summary;
    writeln!(
        out,
        "# DORA report: {}, {} to {}\n",
        scope_title(summary),
        report.period.window,
        text::date(report.period.end)
    )?;
    writeln!(
        out,
        "- **Period:** {} – {} ({}), compared with the {} before ({} – {}).",
        text::time(report.period.start),
        text::time(report.period.end),
        report.period.window,
        report.previous_period.window,
        text::time(report.previous_period.start),
        text::time(report.previous_period.end),
    )?;
    writeln!(
        out,
        "- **Covers:** {} in {}.",
        text::count(
            summary.repositories.unwrap_or(0),
            "repository",
            "repositories"
        ),
        text::count(report.teams.len() as u64, "team", "teams"),
    )?;
    writeln!(
        out,
        "- **Generated:** {} by dora-collector, from its store.\n",
        text::time(report.generated_at)
    )?;

    writeln!(out, "## Summary\n")?;
    writeln!(out, "| Metric | Value | Level | Previous | Change |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    for (metric, value) in summary.metrics.iter() {
        writeln!(
            out,
            "| {} | {} ({}) | {} | {} | {} |",
            metric.title(),
            text::value(metric, value.value),
            text::samples(metric, value.samples),
            if metric.has_level() {
                text::level(value.level)
            } else {
                "no level"
            },
            text::value(metric, value.previous),
            text::comparison(metric, value),
        )?;
    }
    writeln!(
        out,
        "\nIncidents open at the end of the period: {}.\n",
        summary.incidents_open
    )?;

    write_risks(out, report)?;

    writeln!(out, "## Teams\n")?;
    if report.teams.is_empty() {
        writeln!(out, "No teams.\n")?;
    } else {
        write_metric_headings(out, &["Team", "Repositories"])?;
        for team in &report.teams {
            write!(
                out,
                "| {} | {} |",
                escape(&team.name),
                team.repositories.unwrap_or(0)
            )?;
            write_metric_cells(out, team)?;
        }
        writeln!(out)?;
    }

    writeln!(out, "## Repositories\n")?;
    if report.repositories.is_empty() {
        writeln!(out, "No repositories.\n")?;
    } else {
        write_metric_headings(out, &["Repository", "Environment", "Team"])?;
        for repo in &report.repositories {
            write!(
                out,
                "| {} | {} | {} |",
                escape(&repo.name),
                escape(repo.environment.as_deref().unwrap_or("")),
                escape(repo.team.as_deref().unwrap_or("")),
            )?;
            write_metric_cells(out, repo)?;
        }
        writeln!(out)?;
    }

    writeln!(out, "## Weekly trend\n")?;
    writeln!(
        out,
        "| Week ending | Deployments | Median lead time | Changes |"
    )?;
    writeln!(out, "|---|---|---|---|")?;
    for week in &report.trend {
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            text::date(week.end),
            week.deployments,
            text::value(Metric::LeadTime, week.lead_time_median_seconds),
            week.lead_time_samples
        )?;
    }
    writeln!(out)?;

    write_method(out, report)
}

fn write_risks(out: &mut String, report: &Report) -> std::fmt::Result {
    let risks = &report.risks;
    writeln!(out, "## Risks\n")?;

    writeln!(out, "### Largest regressions\n")?;
    if risks.regressions.items.is_empty() {
        writeln!(
            out,
            "None: no metric of a team or repository got markedly worse than in the \
             previous period.\n"
        )?;
    } else {
        writeln!(out, "| Scope | Metric | Previous | Now | Change | Level |")?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for r in &risks.regressions.items {
            let level = match (r.previous_level, r.level) {
                (Some(before), Some(now)) if before != now => {
                    format!("{} → {}", before.name(), now.name())
                }
                (_, now) => text::level(now).to_owned(),
            };
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                regression_scope(r),
                r.metric.short_title(),
                text::value(r.metric, Some(r.previous)),
                text::value(r.metric, Some(r.value)),
                text::change(r.metric, Some(r.change)),
                level,
            )?;
        }
        write_omitted(
            out,
            risks.regressions.omitted(),
            "regression",
            "regressions",
        )?;
        writeln!(out)?;
    }

    let cfr = &risks.change_failure_rate;
    writeln!(
        out,
        "### Change failure rate above {}\n",
        text::percent(cfr.threshold)
    )?;
    if cfr.repositories.items.is_empty() {
        writeln!(out, "None.\n")?;
    } else {
        writeln!(
            out,
            "| Repository | Environment | Team | Change failure rate | Failed / deployments | Level |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for r in &cfr.repositories.items {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} / {} | {} |",
                escape(&r.repository),
                escape(&r.environment),
                escape(&r.team),
                text::percent(r.change_failure_rate),
                r.failed_deployments,
                r.deployments,
                text::level(r.level),
            )?;
        }
        write_omitted(
            out,
            cfr.repositories.omitted(),
            "repository",
            "repositories",
        )?;
        writeln!(out)?;
    }

    writeln!(out, "### Open incidents\n")?;
    let open = &risks.open_incidents;
    if open.items.is_empty() {
        writeln!(out, "None open at the end of the period.\n")?;
    } else {
        writeln!(out, "| Repository | Team | Opened | Open for |")?;
        writeln!(out, "|---|---|---|---|")?;
        for incident in &open.items {
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                escape(&incident.repository),
                escape(&incident.team),
                text::time(incident.opened_at),
                text::age(incident.age_seconds),
            )?;
        }
        write_omitted(out, open.omitted(), "incident", "incidents")?;
        writeln!(out)?;
    }

    writeln!(out, "### Stale data\n")?;
    let stale = &risks.stale_data;
    if stale.repositories.items.is_empty() {
        writeln!(
            out,
            "None: every repository synced within {} of {}.\n",
            text::age(stale.max_age_seconds),
            text::time(stale.reference_time)
        )?;
    } else {
        writeln!(
            out,
            "Repositories without a successful sync within {} of {} (3 poll intervals):\n",
            text::age(stale.max_age_seconds),
            text::time(stale.reference_time)
        )?;
        writeln!(
            out,
            "| Repository | Team | Source | Last successful sync | Age | Last error |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for r in &stale.repositories.items {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                escape(&r.repository),
                escape(&r.team),
                escape(r.source.as_deref().unwrap_or("no sync recorded")),
                r.last_success_at.map_or("never".to_owned(), text::time),
                r.age_seconds.map_or(text::ABSENT.to_owned(), text::age),
                escape(r.last_error.as_deref().unwrap_or("")),
            )?;
        }
        write_omitted(
            out,
            stale.repositories.omitted(),
            "repository",
            "repositories",
        )?;
        writeln!(out)?;
    }
    Ok(())
}

fn write_method(out: &mut String, report: &Report) -> std::fmt::Result {
    let t = &report.thresholds;
    writeln!(out, "## How these are computed\n")?;
    writeln!(
        out,
        "- Every number is computed by dora-collector's engine from the events in its \
         store, following the project's DORA definitions; `{}` explains each rule. \
         Rollups (teams, organisation) use all the underlying samples: a team's median \
         is the median of all its changes, never a median of medians.",
        report.definitions
    )?;
    writeln!(
        out,
        "- The period is the window ({}) ending at {}; the previous period is the window \
         before it, evaluated as it stood at its own end. An event counts in the period \
         of its deploy time (lead time, change failure rate, rework), its recovery (recovery \
         time) or its closing (time to restore).",
        report.period.window,
        text::time(report.period.end)
    )?;
    writeln!(
        out,
        "- Levels (DORA 2023 scale, as configured): deployment frequency elite ≥ {}, \
         high ≥ {}, medium ≥ {}; lead time elite < {}, high < {}, medium < {}; change \
         failure rate elite ≤ {}, high ≤ {}, medium ≤ {}; recovery time elite < {}, \
         high < {}, medium < {}; anything else is low.",
        text::frequency(t.deployment_frequency_per_day[0]),
        text::frequency(t.deployment_frequency_per_day[1]),
        text::frequency(t.deployment_frequency_per_day[2]),
        text::duration(t.lead_time_seconds[0]),
        text::duration(t.lead_time_seconds[1]),
        text::duration(t.lead_time_seconds[2]),
        text::percent(t.change_failure_rate[0]),
        text::percent(t.change_failure_rate[1]),
        text::percent(t.change_failure_rate[2]),
        text::duration(t.recovery_time_seconds[0]),
        text::duration(t.recovery_time_seconds[1]),
        text::duration(t.recovery_time_seconds[2]),
    )?;
    writeln!(
        out,
        "- In the tables: ↗ better than the previous period, ↘ worse, = unchanged; \
         {} means no samples in the period. Weekly trend: a 7-day window at each week end.",
        text::ABSENT
    )?;
    let q = &report.data_quality;
    writeln!(
        out,
        "- Data quality: {} without a base deployment (no lead-time samples from \
         their first deployment), {} with unknown changes, {} not attributed to any \
         deployment, {} whose root cause matched no deployment.",
        text::count(
            q.deployments_without_base.len() as u64,
            "repository environment",
            "repository environments"
        ),
        text::count(
            q.deployments_with_unknown_changes,
            "deployment",
            "deployments"
        ),
        text::count(q.unattributed_incidents, "incident", "incidents"),
        text::count(q.unmatched_root_causes, "incident", "incidents"),
    )
}

/// The heading of a scope table: `leading` columns, then one per metric and the
/// open incidents.
fn write_metric_headings(out: &mut String, leading: &[&str]) -> std::fmt::Result {
    out.push('|');
    for heading in leading {
        write!(out, " {heading} |")?;
    }
    for metric in Metric::ALL {
        write!(out, " {} |", metric.short_title())?;
    }
    writeln!(out, " Open incidents |")?;
    let columns = leading.len() + Metric::ALL.len() + 1;
    writeln!(out, "{}|", "|---".repeat(columns))
}

fn write_metric_cells(out: &mut String, scope: &ScopeReport) -> std::fmt::Result {
    for (metric, value) in scope.metrics.iter() {
        write!(out, " {} |", cell(metric, value))?;
    }
    writeln!(out, " {} |", scope.incidents_open)
}

/// `3.2 h (elite) ↗`: value, level, direction of the change.
fn cell(metric: Metric, value: &MetricValue) -> String {
    let mut cell = text::value(metric, value.value);
    if let Some(level) = value.level {
        let _ = write!(cell, " ({})", level.name());
    }
    let mark = text::direction_mark(value.direction);
    if !mark.is_empty() {
        cell.push(' ');
        cell.push_str(mark);
    }
    cell
}

fn write_omitted(out: &mut String, omitted: u64, one: &str, many: &str) -> std::fmt::Result {
    if omitted > 0 {
        writeln!(
            out,
            "\n… and {} more (see the JSON or CSV report).",
            text::count(omitted, one, many)
        )?;
    }
    Ok(())
}

fn scope_title(scope: &ScopeReport) -> String {
    match scope.scope {
        ScopeKind::Organisation => "organisation".to_owned(),
        ScopeKind::Team => format!("team {}", escape(&scope.name)),
        ScopeKind::Repository => escape(&scope.name),
    }
}

fn regression_scope(r: &Regression) -> String {
    text::regression_scope(r, escape)
}

/// Escapes text from outside for a Markdown table cell: characters with a meaning
/// in Markdown get a backslash, line breaks become spaces.
pub fn escape(text: &str) -> String {
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

    #[test]
    fn escaping_keeps_tables_intact() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("<script>"), "\\<script\\>");
        assert_eq!(escape("line\nbreak"), "line break");
        assert_eq!(escape("acme/web-app_2"), "acme/web-app\\_2");
    }
}

//! The report as one self-contained HTML page: inline CSS, inline SVG charts (weekly
//! deployments, weekly median lead time), level badges, print-friendly layout (A4,
//! table rows and cards never split across pages, table headings repeated).
//!
//! Nothing is fetched: no external font, script, style sheet or image, and the
//! page's Content-Security-Policy (`default-src 'none'`) forbids it, so a mistake
//! shows as a blocked request in the browser console (which the tests watch).
//! There is no JavaScript. Text from outside is HTML-escaped.
//!
//! Rendering only: chart coordinates are scaled from the report's values, nothing
//! else is derived.

use super::text;
use crate::dora::Level;
use crate::report::model::*;
use std::fmt::Write;

/// The page's Content-Security-Policy: inline styles, nothing else. Also sent as a
/// header by the live page.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/// Chart size in SVG user units (it scales with the page).
const CHART_WIDTH: f64 = 520.0;
const CHART_HEIGHT: f64 = 200.0;
/// Room for the axis labels around the plot.
const CHART_LEFT: f64 = 44.0;
const CHART_RIGHT: f64 = 8.0;
const CHART_TOP: f64 = 26.0;
const CHART_BOTTOM: f64 = 28.0;
/// The share of a week's slot its bar fills.
const BAR_FILL: f64 = 0.7;
/// A lead-time chart whose largest week is at least this long is drawn in days,
/// otherwise in hours.
const CHART_DAYS_FROM_SECONDS: f64 = 2.0 * 86_400.0;

/// Links to the same page over other windows (the live page's window selector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowLink {
    /// `30d`.
    pub label: String,
    /// A relative URL, such as `?window=30d`.
    pub href: String,
    /// This is the window shown.
    pub current: bool,
}

/// Options of the HTML page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlOptions {
    /// A window selector; empty for a file.
    pub window_links: Vec<WindowLink>,
}

const STYLE: &str = r#"
:root { --elite: #1a7f37; --high: #0969da; --medium: #9a6700; --low: #cf222e;
  --muted: #57606a; --border: #d0d7de; --head: #f6f8fa; --text: #1f2328; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--text); background: #fff; margin: 1.5rem auto; max-width: 1180px; padding: 0 1rem;
  line-height: 1.4; font-size: 15px; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; margin: 1.6rem 0 .6rem; border-bottom: 1px solid var(--border); padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.1rem 0 .4rem; }
p { margin: .3rem 0; }
.meta { color: var(--muted); }
nav.windows { margin: .6rem 0; }
nav.windows a, nav.windows strong { margin-right: .6rem; }
.cards { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: .7rem; }
.card { border: 1px solid var(--border); border-radius: 6px; padding: .6rem .75rem; }
.card .label { color: var(--muted); font-size: .85rem; }
.card .value { font-size: 1.55rem; font-weight: 600; margin: .1rem 0; }
.card .cmp { font-size: .85rem; color: var(--muted); }
.badge { display: inline-block; padding: 0 .5em; border-radius: .8em; font-size: .75rem;
  font-weight: 600; color: #fff; vertical-align: middle; line-height: 1.5; }
.badge.elite { background: var(--elite); } .badge.high { background: var(--high); }
.badge.medium { background: var(--medium); } .badge.low { background: var(--low); }
.badge.none { background: #fff; color: var(--muted); border: 1px solid var(--border); }
.better { color: var(--elite); } .worse { color: var(--low); } .unchanged { color: var(--muted); }
.absent { color: var(--muted); }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 1rem; }
figure { margin: 0; border: 1px solid var(--border); border-radius: 6px; padding: .5rem; }
figcaption { font-weight: 600; font-size: .9rem; margin-bottom: .3rem; }
svg { width: 100%; height: auto; display: block; }
svg text { font-family: inherit; font-size: 11px; fill: var(--muted); }
svg .bar { fill: #0969da; } svg .bar.lead { fill: #8250df; } svg .axis { stroke: #8c959f; stroke-width: 1; }
svg .grid { stroke: #eaeef2; stroke-width: 1; }
table { border-collapse: collapse; width: 100%; margin: .3rem 0 1rem; font-size: .85rem; }
th, td { border-bottom: 1px solid var(--border); padding: .3rem .45rem; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.metric { white-space: nowrap; font-variant-numeric: tabular-nums; }
.note { color: var(--muted); font-size: .85rem; }
ul.method li { margin: .25rem 0; }
@page { size: A4; margin: 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 9.5pt; }
  nav.windows { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  h3 { break-after: avoid; page-break-after: avoid; }
  .card, figure, tr { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  table { font-size: 8pt; }
  th, td { padding: .15rem .3rem; }
  .badge, .bar, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
@media screen and (max-width: 760px) { .cards, .charts { grid-template-columns: minmax(0, 1fr); } }
"#;

/// Renders `report` as one HTML page.
pub fn render(report: &Report, options: &HtmlOptions) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_page(&mut out, report, options);
    out
}

fn write_page(out: &mut String, report: &Report, options: &HtmlOptions) -> std::fmt::Result {
    let title = format!(
        "DORA report: {}, {} to {}",
        scope_title(&report.summary),
        report.period.window,
        text::date(report.period.end)
    );
    writeln!(out, "<!doctype html>\n<html lang=\"en\">\n<head>")?;
    writeln!(out, "<meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        escape(CONTENT_SECURITY_POLICY)
    )?;
    writeln!(out, "<title>{}</title>", escape(&title))?;
    writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>")?;

    writeln!(out, "<header>\n<h1>{}</h1>", escape(&title))?;
    let summary = &report.summary;
    writeln!(
        out,
        "<p class=\"meta\">Period {} – {} ({}), compared with the {} before ({} – {}). \
         {} in {}. Generated {} by dora-collector from its store.</p>",
        text::time(report.period.start),
        text::time(report.period.end),
        escape(&report.period.window),
        escape(&report.previous_period.window),
        text::time(report.previous_period.start),
        text::time(report.previous_period.end),
        text::count(
            summary.repositories.unwrap_or(0),
            "repository",
            "repositories"
        ),
        text::count(report.teams.len() as u64, "team", "teams"),
        text::time(report.generated_at),
    )?;
    if !options.window_links.is_empty() {
        write!(out, "<nav class=\"windows\">Window: ")?;
        for link in &options.window_links {
            if link.current {
                write!(out, "<strong>{}</strong>", escape(&link.label))?;
            } else {
                write!(
                    out,
                    "<a href=\"{}\">{}</a>",
                    escape(&link.href),
                    escape(&link.label)
                )?;
            }
        }
        writeln!(out, "</nav>")?;
    }
    writeln!(out, "</header>")?;

    writeln!(out, "<section>\n<h2>Summary</h2>\n<div class=\"cards\">")?;
    for (metric, value) in summary.metrics.iter() {
        write_card(out, metric, value)?;
    }
    writeln!(out, "</div>")?;
    writeln!(
        out,
        "<p>Incidents open at the end of the period: <strong>{}</strong>.</p>\n</section>",
        summary.incidents_open
    )?;

    write_trend(out, report)?;
    write_risks(out, report)?;

    writeln!(out, "<section>\n<h2>Teams</h2>")?;
    if report.teams.is_empty() {
        writeln!(out, "<p>No teams.</p>")?;
    } else {
        write_scope_table(out, &report.teams, &["Team", "Repositories"], |s| {
            vec![escape(&s.name), s.repositories.unwrap_or(0).to_string()]
        })?;
    }
    writeln!(out, "</section>")?;

    writeln!(out, "<section>\n<h2>Repositories</h2>")?;
    if report.repositories.is_empty() {
        writeln!(out, "<p>No repositories.</p>")?;
    } else {
        write_scope_table(
            out,
            &report.repositories,
            &["Repository", "Environment", "Team"],
            |s| {
                vec![
                    escape(&s.name),
                    escape(s.environment.as_deref().unwrap_or("")),
                    escape(s.team.as_deref().unwrap_or("")),
                ]
            },
        )?;
    }
    writeln!(out, "</section>")?;

    write_method(out, report)?;
    writeln!(out, "</body>\n</html>")
}

fn write_card(out: &mut String, metric: Metric, value: &MetricValue) -> std::fmt::Result {
    writeln!(out, "<div class=\"card\">")?;
    writeln!(out, "<div class=\"label\">{}</div>", escape(metric.title()))?;
    writeln!(
        out,
        "<div class=\"value\">{}</div>",
        escape(&text::value(metric, value.value))
    )?;
    writeln!(
        out,
        "<div>{} <span class=\"note\">{}</span></div>",
        if metric.has_level() {
            badge(value.level)
        } else {
            "<span class=\"note\">no DORA level ·</span>".to_owned()
        },
        escape(&text::samples(metric, value.samples))
    )?;
    let comparison = match (value.previous, value.direction) {
        (Some(previous), Some(direction)) => format!(
            "previous {} · <span class=\"{}\">{} {}</span>",
            escape(&text::value(metric, Some(previous))),
            direction.as_str(),
            escape(&text::change(metric, value.change)),
            direction.as_str()
        ),
        _ => "no previous value".to_owned(),
    };
    writeln!(out, "<div class=\"cmp\">{comparison}</div>\n</div>")
}

fn write_trend(out: &mut String, report: &Report) -> std::fmt::Result {
    writeln!(
        out,
        "<section>\n<h2>Weekly trend</h2>\n<p class=\"note\">The last {} weeks to {}: \
         each bar is a 7-day window ending on the date shown.</p>\n<div class=\"charts\">",
        report.trend.len(),
        text::date(report.period.end)
    )?;
    let labels: Vec<String> = report
        .trend
        .iter()
        .map(|w| text::month_day(w.end))
        .collect();
    let deployments: Vec<Option<f64>> = report
        .trend
        .iter()
        .map(|w| Some(w.deployments as f64))
        .collect();
    write_chart(
        out,
        "Deployments per week",
        &labels,
        &deployments,
        ChartUnit::Count,
        "bar",
    )?;
    let lead: Vec<Option<f64>> = report
        .trend
        .iter()
        .map(|w| w.lead_time_median_seconds)
        .collect();
    let largest = lead.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    let unit = if largest >= CHART_DAYS_FROM_SECONDS {
        ChartUnit::Days
    } else {
        ChartUnit::Hours
    };
    write_chart(
        out,
        "Median lead time per week",
        &labels,
        &lead,
        unit,
        "bar lead",
    )?;
    writeln!(out, "</div>\n</section>")
}

#[derive(Clone, Copy)]
enum ChartUnit {
    Count,
    Hours,
    Days,
}

impl ChartUnit {
    /// The plotted number for a value.
    fn scale(self, value: f64) -> f64 {
        match self {
            ChartUnit::Count => value,
            ChartUnit::Hours => value / 3_600.0,
            ChartUnit::Days => value / 86_400.0,
        }
    }

    fn axis(self) -> &'static str {
        match self {
            ChartUnit::Count => "deployments",
            ChartUnit::Hours => "hours",
            ChartUnit::Days => "days",
        }
    }

    fn label(self, plotted: f64) -> String {
        match self {
            ChartUnit::Count => format!("{plotted:.0}"),
            ChartUnit::Hours | ChartUnit::Days if plotted >= 10.0 => format!("{plotted:.0}"),
            ChartUnit::Hours | ChartUnit::Days => format!("{plotted:.1}"),
        }
    }
}

/// A bar chart of one value per week; an absent week shows a dash on the axis.
fn write_chart(
    out: &mut String,
    caption: &str,
    labels: &[String],
    values: &[Option<f64>],
    unit: ChartUnit,
    bar_class: &str,
) -> std::fmt::Result {
    let plotted: Vec<Option<f64>> = values.iter().map(|v| v.map(|v| unit.scale(v))).collect();
    let top = plotted.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    let top = if top > 0.0 { top } else { 1.0 };
    let plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT;
    let plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM;
    let base = CHART_TOP + plot_height;
    let slot = plot_width / labels.len().max(1) as f64;
    let bar = slot * BAR_FILL;

    let description: Vec<String> = labels
        .iter()
        .zip(&plotted)
        .map(|(label, value)| match value {
            Some(v) => format!("{label}: {}", unit.label(*v)),
            None => format!("{label}: none"),
        })
        .collect();
    writeln!(
        out,
        "<figure>\n<figcaption>{}</figcaption>",
        escape(caption)
    )?;
    writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" \
         role=\"img\" aria-label=\"{}\">",
        escape(&format!("{caption} ({})", unit.axis()))
    )?;
    writeln!(
        out,
        "<title>{}</title>",
        escape(&format!(
            "{caption} in {}: {}",
            unit.axis(),
            description.join(", ")
        ))
    )?;
    // Grid lines and the scale at the top and the middle.
    for fraction in [0.5, 1.0] {
        let y = base - plot_height * fraction;
        writeln!(
            out,
            "<line class=\"grid\" x1=\"{CHART_LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            CHART_WIDTH - CHART_RIGHT,
            CHART_LEFT - 4.0,
            y + 4.0,
            unit.label(top * fraction)
        )?;
    }
    writeln!(
        out,
        "<text x=\"{:.1}\" y=\"11\" text-anchor=\"start\">{}</text>",
        2.0,
        unit.axis()
    )?;
    for (i, (label, value)) in labels.iter().zip(&plotted).enumerate() {
        let x = CHART_LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let middle = x + bar / 2.0;
        match value {
            Some(v) => {
                let height = plot_height * (v / top);
                writeln!(
                    out,
                    "<rect class=\"{bar_class}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" \
                     height=\"{height:.1}\"/><text x=\"{middle:.1}\" y=\"{:.1}\" \
                     text-anchor=\"middle\">{}</text>",
                    base - height,
                    base - height - 3.0,
                    unit.label(*v)
                )?;
            }
            None => writeln!(
                out,
                "<text x=\"{middle:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                base - 3.0,
                text::ABSENT
            )?,
        }
        writeln!(
            out,
            "<text x=\"{middle:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            base + 16.0,
            escape(label)
        )?;
    }
    writeln!(
        out,
        "<line class=\"axis\" x1=\"{CHART_LEFT}\" y1=\"{base:.1}\" x2=\"{:.1}\" y2=\"{base:.1}\"/>",
        CHART_WIDTH - CHART_RIGHT
    )?;
    writeln!(out, "</svg>\n</figure>")
}

fn write_risks(out: &mut String, report: &Report) -> std::fmt::Result {
    let risks = &report.risks;
    writeln!(out, "<section>\n<h2>Risks</h2>")?;

    writeln!(out, "<h3>Largest regressions</h3>")?;
    if risks.regressions.items.is_empty() {
        writeln!(
            out,
            "<p>None: no metric of a team or repository got markedly worse than in the \
             previous period.</p>"
        )?;
    } else {
        write_head(
            out,
            &["Scope", "Metric", "Previous", "Now", "Change", "Level"],
        )?;
        for r in &risks.regressions.items {
            let level = match (r.previous_level, r.level) {
                (Some(before), Some(now)) if before != now => {
                    format!("{} → {}", badge(Some(before)), badge(Some(now)))
                }
                (_, now) if r.metric.has_level() => badge(now),
                _ => String::new(),
            };
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"metric\">{}</td><td class=\"metric\">{}</td>\
                 <td class=\"metric worse\">{}</td><td>{level}</td></tr>",
                regression_scope(r),
                escape(r.metric.short_title()),
                escape(&text::value(r.metric, Some(r.previous))),
                escape(&text::value(r.metric, Some(r.value))),
                escape(&text::change(r.metric, Some(r.change))),
            )?;
        }
        writeln!(out, "</tbody></table>")?;
        write_omitted(
            out,
            risks.regressions.omitted(),
            "regression",
            "regressions",
        )?;
    }

    let cfr = &risks.change_failure_rate;
    writeln!(
        out,
        "<h3>Change failure rate above {}</h3>",
        text::percent(cfr.threshold)
    )?;
    if cfr.repositories.items.is_empty() {
        writeln!(out, "<p>None.</p>")?;
    } else {
        write_head(
            out,
            &[
                "Repository",
                "Environment",
                "Team",
                "Change failure rate",
                "Failed / deployments",
                "Level",
            ],
        )?;
        for r in &cfr.repositories.items {
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{} / {}</td><td>{}</td></tr>",
                escape(&r.repository),
                escape(&r.environment),
                escape(&r.team),
                text::percent(r.change_failure_rate),
                r.failed_deployments,
                r.deployments,
                badge(r.level),
            )?;
        }
        writeln!(out, "</tbody></table>")?;
        write_omitted(
            out,
            cfr.repositories.omitted(),
            "repository",
            "repositories",
        )?;
    }

    writeln!(out, "<h3>Open incidents</h3>")?;
    let open = &risks.open_incidents;
    if open.items.is_empty() {
        writeln!(out, "<p>None open at the end of the period.</p>")?;
    } else {
        write_head(out, &["Repository", "Team", "Opened", "Open for"])?;
        for incident in &open.items {
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                escape(&incident.repository),
                escape(&incident.team),
                text::time(incident.opened_at),
                text::age(incident.age_seconds),
            )?;
        }
        writeln!(out, "</tbody></table>")?;
        write_omitted(out, open.omitted(), "incident", "incidents")?;
    }

    writeln!(out, "<h3>Stale data</h3>")?;
    let stale = &risks.stale_data;
    if stale.repositories.items.is_empty() {
        writeln!(
            out,
            "<p>None: every repository synced within {} of {}.</p>",
            text::age(stale.max_age_seconds),
            text::time(stale.reference_time)
        )?;
    } else {
        writeln!(
            out,
            "<p>Repositories without a successful sync within {} of {} (3 poll intervals):</p>",
            text::age(stale.max_age_seconds),
            text::time(stale.reference_time)
        )?;
        write_head(
            out,
            &[
                "Repository",
                "Team",
                "Source",
                "Last successful sync",
                "Age",
                "Last error",
            ],
        )?;
        for r in &stale.repositories.items {
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                escape(&r.repository),
                escape(&r.team),
                escape(r.source.as_deref().unwrap_or("no sync recorded")),
                r.last_success_at.map_or("never".to_owned(), text::time),
                r.age_seconds.map_or(text::ABSENT.to_owned(), text::age),
                escape(r.last_error.as_deref().unwrap_or("")),
            )?;
        }
        writeln!(out, "</tbody></table>")?;
        write_omitted(
            out,
            stale.repositories.omitted(),
            "repository",
            "repositories",
        )?;
    }
    writeln!(out, "</section>")
}

fn write_method(out: &mut String, report: &Report) -> std::fmt::Result {
    let t = &report.thresholds;
    let q = &report.data_quality;
    writeln!(
        out,
        "<section>\n<h2>How these are computed</h2>\n<ul class=\"method\">"
    )?;
    writeln!(
        out,
        "<li>Every number is computed by dora-collector's engine from the events in its \
         store, following the project's DORA definitions; <code>{}</code> explains each \
         rule. Rollups (teams, organisation) use all the underlying samples: a team's \
         median is the median of all its changes, never a median of medians.</li>",
        escape(&report.definitions)
    )?;
    writeln!(
        out,
        "<li>The period is the window ({}) ending at {}; the previous period is the window \
         before it, evaluated as it stood at its own end. An event counts in the period of \
         its deploy time (lead time, change failure rate, rework), its recovery (recovery \
         time) or its closing (time to restore).</li>",
        escape(&report.period.window),
        text::time(report.period.end)
    )?;
    writeln!(
        out,
        "<li>Levels (DORA 2023 scale, as configured): deployment frequency {} ≥ {}, {} ≥ {}, \
         {} ≥ {}; lead time {} &lt; {}, {} &lt; {}, {} &lt; {}; change failure rate {} ≤ {}, \
         {} ≤ {}, {} ≤ {}; recovery time {} &lt; {}, {} &lt; {}, {} &lt; {}; anything else is \
         {}.</li>",
        badge(Some(Level::Elite)),
        text::frequency(t.deployment_frequency_per_day[0]),
        badge(Some(Level::High)),
        text::frequency(t.deployment_frequency_per_day[1]),
        badge(Some(Level::Medium)),
        text::frequency(t.deployment_frequency_per_day[2]),
        badge(Some(Level::Elite)),
        text::duration(t.lead_time_seconds[0]),
        badge(Some(Level::High)),
        text::duration(t.lead_time_seconds[1]),
        badge(Some(Level::Medium)),
        text::duration(t.lead_time_seconds[2]),
        badge(Some(Level::Elite)),
        text::percent(t.change_failure_rate[0]),
        badge(Some(Level::High)),
        text::percent(t.change_failure_rate[1]),
        badge(Some(Level::Medium)),
        text::percent(t.change_failure_rate[2]),
        badge(Some(Level::Elite)),
        text::duration(t.recovery_time_seconds[0]),
        badge(Some(Level::High)),
        text::duration(t.recovery_time_seconds[1]),
        badge(Some(Level::Medium)),
        text::duration(t.recovery_time_seconds[2]),
        badge(Some(Level::Low)),
    )?;
    writeln!(
        out,
        "<li>In the tables: <span class=\"better\">↗</span> better than the previous period, \
         <span class=\"worse\">↘</span> worse, <span class=\"unchanged\">=</span> unchanged; \
         {} means no samples in the period.</li>",
        text::ABSENT
    )?;
    writeln!(
        out,
        "<li>Data quality: {} without a base deployment (no lead-time samples from their \
         first deployment), {} with unknown changes, {} not attributed to any deployment, \
         {} whose root cause matched no deployment.</li>\n</ul>\n</section>",
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

fn write_head(out: &mut String, headings: &[&str]) -> std::fmt::Result {
    write!(out, "<table>\n<thead><tr>")?;
    for heading in headings {
        write!(out, "<th>{}</th>", escape(heading))?;
    }
    writeln!(out, "</tr></thead>\n<tbody>")
}

fn write_scope_table(
    out: &mut String,
    scopes: &[ScopeReport],
    leading: &[&str],
    leading_cells: impl Fn(&ScopeReport) -> Vec<String>,
) -> std::fmt::Result {
    let mut headings: Vec<&str> = leading.to_vec();
    headings.extend(Metric::ALL.iter().map(|m| m.short_title()));
    headings.push("Open incidents");
    write_head(out, &headings)?;
    for scope in scopes {
        write!(out, "<tr>")?;
        for cell in leading_cells(scope) {
            write!(out, "<td>{cell}</td>")?;
        }
        for (metric, value) in scope.metrics.iter() {
            write!(
                out,
                "<td class=\"metric\">{}</td>",
                metric_cell(metric, value)
            )?;
        }
        writeln!(out, "<td class=\"num\">{}</td></tr>", scope.incidents_open)?;
    }
    writeln!(out, "</tbody></table>")
}

/// Value, level badge and the direction of the change.
fn metric_cell(metric: Metric, value: &MetricValue) -> String {
    let mut cell = match value.value {
        Some(_) => escape(&text::value(metric, value.value)),
        None => format!("<span class=\"absent\">{}</span>", text::ABSENT),
    };
    if let Some(level) = value.level {
        cell.push(' ');
        cell.push_str(&badge(Some(level)));
    }
    if let Some(direction) = value.direction {
        let _ = write!(
            cell,
            " <span class=\"{}\" title=\"{} than the previous period ({})\">{}</span>",
            direction.as_str(),
            direction.as_str(),
            escape(&text::value(metric, value.previous)),
            text::direction_mark(Some(direction))
        );
    }
    cell
}

fn badge(level: Option<Level>) -> String {
    match level {
        Some(level) => format!("<span class=\"badge {0}\">{0}</span>", level.name()),
        None => format!("<span class=\"badge none\">{}</span>", text::ABSENT),
    }
}

fn write_omitted(out: &mut String, omitted: u64, one: &str, many: &str) -> std::fmt::Result {
    if omitted > 0 {
        writeln!(
            out,
            "<p class=\"note\">… and {} more (see the JSON or CSV report).</p>",
            text::count(omitted, one, many)
        )?;
    }
    Ok(())
}

fn scope_title(scope: &ScopeReport) -> String {
    match scope.scope {
        ScopeKind::Organisation => "organisation".to_owned(),
        ScopeKind::Team => format!("team {}", scope.name),
        ScopeKind::Repository => scope.name.clone(),
    }
}

fn regression_scope(r: &Regression) -> String {
    text::regression_scope(r, escape)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}

//! The report over a fixed store (`report_fixture`): every format's numbers equal
//! the engine's snapshot, golden files per format (insta), JSON round trip, team
//! filter, an empty store and a one-repository store, and hostile names and errors
//! escaped in HTML and Markdown.

use crate::report_fixture;

use dora_collector::config::Config;
use dora_collector::domain::{Team, Timestamp};
use dora_collector::dora::EventsBuilder;
use dora_collector::dora::{self, EngineConfig, Level, RollupMetrics, Snapshot, Window};
use dora_collector::report::render::text;
use dora_collector::report::{
    self, generate, render, Direction, Format, Metric, MetricValue, Report, ReportRequest,
    ReportWindow, ScopeKind, ScopeReport,
};
use dora_collector::store::{SqliteStore, Store};
use report_fixture::{Fixture, GENERATED_AT, UNTIL};

fn request(window: &str, team: Option<&str>) -> ReportRequest {
    ReportRequest {
        window: ReportWindow::parse(window).unwrap(),
        until: UNTIL,
        team: team.map(|t| Team::parse(t).unwrap()),
        generated_at: GENERATED_AT,
    }
}

fn make(fixture: &Fixture, window: &str, team: Option<&str>) -> Report {
    let store = SqliteStore::open(fixture.store_path()).unwrap();
    generate(&store, &fixture.config(), &request(window, team)).expect("report")
}

/// The engine evaluated directly: configured repositories, one window, at `at`.
fn engine_snapshot(fixture: &Fixture, config: &Config, window: &Window, at: Timestamp) -> Snapshot {
    let store = SqliteStore::open(fixture.store_path()).unwrap();
    let engine = EngineConfig {
        windows: vec![window.clone()],
        ..config.engine_config()
    };
    let names: Vec<_> = engine.teams.keys().cloned().collect();
    let events = EventsBuilder::collect(|sink| store.load_events(&names, sink)).unwrap();
    dora::compute(&events, &engine, at)
}

/// `(value, level, samples)` of `metric` in the snapshot's only window.
fn expected_rollup(rollup: &RollupMetrics, metric: Metric) -> (Option<f64>, Option<Level>, u64) {
    let w = &rollup.windows[0];
    let restore = &rollup.incident_windows[0].time_to_restore;
    match metric {
        Metric::DeploymentFrequency => (
            Some(w.deployment_frequency_per_day),
            w.levels.deployment_frequency,
            w.deployments,
        ),
        Metric::LeadTime => (w.lead_time.median, w.levels.lead_time, w.lead_time.count),
        Metric::ChangeFailureRate => (
            w.change_failure_rate,
            w.levels.change_failure_rate,
            w.deployments,
        ),
        Metric::RecoveryTime => (
            w.recovery_time.median,
            w.levels.recovery_time,
            w.recovery_time.count,
        ),
        Metric::TimeToRestore => (restore.median, None, restore.count),
        Metric::ReworkRate => (w.rework_rate, None, w.deployments),
    }
}

fn expected_repository(
    snapshot: &Snapshot,
    scope: &ScopeReport,
    metric: Metric,
) -> (Option<f64>, Option<Level>, u64) {
    let repo = snapshot
        .repositories
        .iter()
        .find(|r| {
            r.repository.as_str() == scope.name
                && Some(r.environment.as_str()) == scope.environment.as_deref()
        })
        .expect("the repository is in the snapshot");
    let w = &repo.windows[0];
    let incidents = snapshot
        .incidents
        .iter()
        .find(|i| i.repository.as_str() == scope.name)
        .expect("incidents of the repository");
    let restore = &incidents.windows[0].time_to_restore;
    match metric {
        Metric::DeploymentFrequency => (
            Some(w.deployment_frequency_per_day),
            w.levels.deployment_frequency,
            w.deployments,
        ),
        Metric::LeadTime => (w.lead_time.median, w.levels.lead_time, w.lead_time.count),
        Metric::ChangeFailureRate => (
            w.change_failure_rate,
            w.levels.change_failure_rate,
            w.deployments,
        ),
        Metric::RecoveryTime => (
            w.recovery_time.median,
            w.levels.recovery_time,
            w.recovery_time.count,
        ),
        Metric::TimeToRestore => (restore.median, None, restore.count),
        Metric::ReworkRate => (w.rework_rate, None, w.deployments),
    }
}

fn expected_scope(
    snapshot: &Snapshot,
    scope: &ScopeReport,
    metric: Metric,
) -> (Option<f64>, Option<Level>, u64) {
    match scope.scope {
        ScopeKind::Organisation => expected_rollup(&snapshot.organisation, metric),
        ScopeKind::Team => expected_rollup(
            snapshot
                .teams
                .iter()
                .find(|t| t.team.as_ref().map(Team::as_str) == Some(scope.name.as_str()))
                .expect("the team is in the snapshot"),
            metric,
        ),
        ScopeKind::Repository => expected_repository(snapshot, scope, metric),
    }
}

fn all_scopes(report: &Report) -> Vec<&ScopeReport> {
    std::iter::once(&report.summary)
        .chain(&report.teams)
        .chain(&report.repositories)
        .collect()
}

#[test]
fn every_value_is_the_engine_value_now_and_before() {
    let fixture = Fixture::new();
    let config = fixture.config();
    let report = make(&fixture, "30d", None);
    let window = Window::days(30);
    let now = engine_snapshot(&fixture, &config, &window, UNTIL);
    let before = engine_snapshot(&fixture, &config, &window, Timestamp(UNTIL.0 - 30 * 86_400));
    assert_eq!(report.teams.len(), now.teams.len());
    assert_eq!(report.repositories.len(), now.repositories.len());
    for scope in all_scopes(&report) {
        for (metric, value) in scope.metrics.iter() {
            let context = format!("{} {} {metric:?}", scope.scope.as_str(), scope.name);
            let (v, level, samples) = expected_scope(&now, scope, metric);
            assert_eq!(
                (value.value, value.level, value.samples),
                (v, level, samples),
                "{context}"
            );
            let (p, previous_level, previous_samples) = expected_scope(&before, scope, metric);
            assert_eq!(
                (value.previous, value.previous_level, value.previous_samples),
                (p, previous_level, previous_samples),
                "{context} (previous)"
            );
            let change = v.zip(p).map(|(v, p)| v - p);
            assert_eq!(value.change, change, "{context} (change)");
        }
    }
    // Counts of the summary.
    let org = &now.organisation;
    assert_eq!(report.summary.deployments, org.windows[0].deployments);
    assert_eq!(
        report.summary.failed_deployments,
        org.windows[0].failed_deployments
    );
    assert_eq!(
        report.summary.rework_deployments,
        org.windows[0].rework_deployments
    );
    assert_eq!(report.summary.incidents_open, org.incidents_open);
    assert_eq!(report.summary.repositories, Some(4));
}

#[test]
fn the_trend_is_the_engine_at_each_week_end() {
    let fixture = Fixture::new();
    let config = fixture.config();
    let report = make(&fixture, "30d", None);
    assert_eq!(report.trend.len(), report::TREND_WEEKS);
    for (k, week) in report.trend.iter().rev().enumerate() {
        let end = Timestamp(UNTIL.0 - k as i64 * report::WEEK_SECONDS);
        assert_eq!(week.end, end);
        assert_eq!(week.start, Timestamp(end.0 - report::WEEK_SECONDS));
        let snapshot = engine_snapshot(&fixture, &config, &Window::days(7), end);
        let w = &snapshot.organisation.windows[0];
        assert_eq!(week.deployments, w.deployments, "week ending {end}");
        assert_eq!(
            week.lead_time_median_seconds, w.lead_time.median,
            "week ending {end}"
        );
        assert_eq!(
            week.lead_time_samples, w.lead_time.count,
            "week ending {end}"
        );
    }
    // The fixture deploys every week.
    assert!(report.trend.iter().all(|w| w.deployments > 0));
}

#[test]
fn the_fixture_shows_what_it_was_built_to_show() {
    let fixture = Fixture::new();
    let report = make(&fixture, "30d", None);
    let names: Vec<&str> = report
        .repositories
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["acme/api", "acme/billing", "acme/docs", "acme/web"]);
    let api = &report.repositories[0];
    // One deployment a day in (until − 30d, until]; the one after `until` is not counted.
    assert_eq!(api.deployments, 30);
    assert_eq!(api.metrics.lead_time.level, Some(Level::High));
    assert_eq!(api.metrics.lead_time.previous_level, Some(Level::Elite));
    assert_eq!(api.metrics.lead_time.direction, Some(Direction::Worse));
    assert_eq!(api.incidents_open, 1, "the `bug` issue is no incident");

    let regressions = &report.risks.regressions.items;
    let has = |name: &str, metric: Metric| {
        regressions
            .iter()
            .any(|r| r.name == name && r.metric == metric && r.scope == ScopeKind::Repository)
    };
    assert!(has("acme/api", Metric::LeadTime), "{regressions:#?}");
    assert!(
        has("acme/api", Metric::ChangeFailureRate),
        "{regressions:#?}"
    );
    assert!(
        has("acme/billing", Metric::DeploymentFrequency),
        "{regressions:#?}"
    );
    // Sorted by levels lost, then relative change.
    for pair in regressions.windows(2) {
        assert!(
            pair[0].levels_lost >= pair[1].levels_lost,
            "{regressions:#?}"
        );
    }

    let cfr = &report.risks.change_failure_rate;
    assert_eq!(cfr.threshold, 0.10);
    assert_eq!(cfr.repositories.items[0].repository, "acme/api");
    assert!(cfr
        .repositories
        .items
        .iter()
        .all(|r| r.change_failure_rate > 0.10));

    let open = &report.risks.open_incidents;
    assert_eq!(open.total, 1);
    assert_eq!(open.items[0].repository, "acme/api");
    assert_eq!(open.items[0].age_seconds, 2 * 86_400 + 3 * 3_600);

    let stale: Vec<(&str, Option<&str>)> = report
        .risks
        .stale_data
        .repositories
        .items
        .iter()
        .map(|r| (r.repository.as_str(), r.source.as_deref()))
        .collect();
    assert_eq!(
        stale,
        [
            ("acme/billing", Some("github_issues")),
            ("acme/docs", None),
            ("acme/web", Some("github_deployments")),
        ]
    );
    assert_eq!(report.risks.stale_data.max_age_seconds, 900);
    let web = &report.risks.stale_data.repositories.items[2];
    assert_eq!(web.age_seconds, Some(2 * 86_400));
    assert!(web.last_error.as_deref().unwrap().contains("HTTP 502"));

    // acme/legacy is in the store but not configured.
    assert!(all_scopes(&report).iter().all(|s| s.name != "acme/legacy"));
}

#[test]
fn json_carries_the_engine_numbers_and_round_trips() {
    let fixture = Fixture::new();
    let report = make(&fixture, "30d", None);
    let json = render(&report, Format::Json).unwrap();
    let back: Report = serde_json::from_str(&json).expect("the JSON parses as a Report");
    assert_eq!(back, report);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["period"]["end"], "2026-03-31T23:59:59Z");
    assert_eq!(value["period"]["start"], "2026-03-01T23:59:59Z");
    assert_eq!(value["previous_period"]["end"], "2026-03-01T23:59:59Z");
    for (i, scope) in report.repositories.iter().enumerate() {
        let row = &value["repositories"][i];
        assert_eq!(row["name"], scope.name.as_str());
        for (metric, metric_value) in scope.metrics.iter() {
            let json_value = &row["metrics"][metric.key()]["value"];
            match metric_value.value {
                Some(v) => assert_eq!(json_value.as_f64(), Some(v), "{} {metric:?}", scope.name),
                None => assert!(json_value.is_null(), "{} {metric:?}", scope.name),
            }
        }
    }
}

#[test]
fn csv_has_one_row_per_scope_with_the_engine_numbers() {
    let fixture = Fixture::new();
    let report = make(&fixture, "30d", None);
    let text = render(&report, Format::Csv).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        report::render::csv::columns()
    );
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let scopes = all_scopes(&report);
    assert_eq!(rows.len(), scopes.len());
    for (row, scope) in rows.iter().zip(&scopes) {
        assert_eq!(&row[column("scope")], scope.scope.as_str());
        assert_eq!(&row[column("name")], scope.name);
        assert_eq!(
            row[column("deployments")].parse::<u64>().unwrap(),
            scope.deployments
        );
        for (metric, value) in scope.metrics.iter() {
            let cell = &row[column(metric.column())];
            let parsed = (!cell.is_empty()).then(|| cell.parse::<f64>().unwrap());
            assert_eq!(parsed, value.value, "{} {metric:?}", scope.name);
            let previous = &row[column(&format!("{}_previous", metric.key()))];
            let parsed = (!previous.is_empty()).then(|| previous.parse::<f64>().unwrap());
            assert_eq!(parsed, value.previous, "{} {metric:?} previous", scope.name);
        }
    }
}

/// The row of `name` in the Markdown table under `heading`.
fn markdown_row<'a>(markdown: &'a str, heading: &str, name: &str) -> &'a str {
    let escaped = report::render::markdown::escape(name);
    let section = &markdown[markdown.find(heading).expect("the section")..];
    section
        .lines()
        .find(|l| l.starts_with(&format!("| {escaped} |")))
        .unwrap_or_else(|| panic!("no row for {name}"))
}

fn shown(metric: Metric, value: &MetricValue) -> String {
    text::value(metric, value.value)
}

#[test]
fn markdown_and_html_show_the_engine_numbers_in_the_right_rows() {
    let fixture = Fixture::new();
    let report = make(&fixture, "30d", None);
    let markdown = render(&report, Format::Markdown).unwrap();
    let html = render(&report, Format::Html).unwrap();
    for scope in report.teams.iter().chain(&report.repositories) {
        let heading = match scope.scope {
            ScopeKind::Team => "## Teams",
            _ => "## Repositories",
        };
        let row = markdown_row(&markdown, heading, &scope.name);
        let cells: Vec<&str> = row.split(" | ").collect();
        let first_metric = if scope.scope == ScopeKind::Team { 2 } else { 3 };
        for (i, (metric, value)) in scope.metrics.iter().into_iter().enumerate() {
            let cell = cells[first_metric + i];
            assert!(
                cell.starts_with(&shown(metric, value)),
                "{} {metric:?}: {cell:?} in {row}",
                scope.name
            );
            if let Some(level) = value.level {
                assert!(cell.contains(level.name()), "{cell}");
            }
        }
        // In the HTML table, the row of the scope holds the same values in order.
        let section = &html[html
            .find(&format!("<h2>{}</h2>", &heading[3..]))
            .expect("the section")..];
        let start = section
            .find(&format!("<tr><td>{}</td>", scope.name))
            .unwrap_or_else(|| panic!("no HTML row for {}", scope.name));
        let html_row = &section[start..start + section[start..].find("</tr>").unwrap()];
        let mut at = 0;
        for (metric, value) in scope.metrics.iter() {
            let needle = format!("<td class=\"metric\">{}", shown(metric, value)).replace(
                text::ABSENT,
                &format!("<span class=\"absent\">{}</span>", text::ABSENT),
            );
            let found = html_row[at..]
                .find(&needle)
                .unwrap_or_else(|| panic!("{} {metric:?}: {needle} not in {html_row}", scope.name));
            at += found + needle.len();
        }
    }
    // The summary table.
    for (metric, value) in report.summary.metrics.iter() {
        let line = markdown
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", metric.title())))
            .unwrap();
        assert!(line.contains(&shown(metric, value)), "{line}");
        assert!(
            line.contains(&text::value(metric, value.previous)),
            "{line}"
        );
    }
}

#[test]
fn golden_files() {
    let fixture = Fixture::new();
    let report = make(&fixture, "30d", None);
    for format in Format::ALL {
        let text = render(&report, format).unwrap();
        insta::assert_snapshot!(format!("fixture_30d.{}", format.extension()), text);
    }
    let team = make(&fixture, "7d", Some("payments"));
    insta::assert_snapshot!(
        "fixture_7d_payments.md",
        render(&team, Format::Markdown).unwrap()
    );
}

#[test]
fn the_team_filter_keeps_the_team_numbers() {
    let fixture = Fixture::new();
    let everyone = make(&fixture, "30d", None);
    let payments = make(&fixture, "30d", Some("payments"));
    assert_eq!(payments.team.as_deref(), Some("payments"));
    assert_eq!(payments.summary.scope, ScopeKind::Team);
    assert_eq!(payments.summary.name, "payments");
    let team_row = everyone
        .teams
        .iter()
        .find(|t| t.name == "payments")
        .unwrap();
    assert_eq!(&payments.summary, team_row, "filtering changes no number");
    assert_eq!(payments.teams, vec![team_row.clone()]);
    let names: Vec<&str> = payments
        .repositories
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["acme/api", "acme/billing"]);
    for repo in &payments.repositories {
        let same = everyone
            .repositories
            .iter()
            .find(|r| r.name == repo.name)
            .unwrap();
        assert_eq!(repo, same);
    }
    assert!(payments
        .risks
        .stale_data
        .repositories
        .items
        .iter()
        .all(|r| r.team == "payments"));
    assert!(payments
        .risks
        .regressions
        .items
        .iter()
        .all(|r| r.team.as_deref() == Some("payments")));

    // The trend is the team's.
    let config = fixture.config();
    for (k, week) in payments.trend.iter().rev().enumerate().step_by(5) {
        let end = Timestamp(UNTIL.0 - k as i64 * report::WEEK_SECONDS);
        let snapshot = engine_snapshot(&fixture, &config, &Window::days(7), end);
        let team = snapshot
            .teams
            .iter()
            .find(|t| t.team.as_ref().map(Team::as_str) == Some("payments"))
            .unwrap();
        assert_eq!(
            week.deployments, team.windows[0].deployments,
            "week ending {end}"
        );
        assert_eq!(
            week.lead_time_median_seconds,
            team.windows[0].lead_time.median
        );
    }

    let store = SqliteStore::open(fixture.store_path()).unwrap();
    let error = generate(&store, &fixture.config(), &request("30d", Some("nobody"))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "team \"nobody\" is not in the configuration; its teams are: \"payments\", \"web\""
    );
}

#[test]
fn an_empty_store_gives_a_report_of_zeros_and_absences() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    drop(SqliteStore::open(&path).unwrap());
    let config = report_fixture::config(&path);
    let store = report::open_store(&path).unwrap();
    let report = generate(&store, &config, &request("30d", None)).unwrap();
    assert_eq!(report.summary.deployments, 0);
    assert_eq!(report.summary.metrics.deployment_frequency.value, Some(0.0));
    assert_eq!(report.summary.metrics.lead_time.value, None);
    assert_eq!(report.summary.metrics.change_failure_rate.value, None);
    assert_eq!(report.repositories.len(), 4);
    assert_eq!(report.risks.regressions.total, 0);
    assert_eq!(
        report.risks.stale_data.repositories.total, 4,
        "never synced"
    );
    assert!(report.trend.iter().all(|w| w.deployments == 0));
    for format in Format::ALL {
        let text = render(&report, format).unwrap();
        assert!(!text.is_empty());
    }
    insta::assert_snapshot!("empty_store.md", render(&report, Format::Markdown).unwrap());
}

#[test]
fn a_missing_store_is_an_error_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    let error = report::open_store(&path).unwrap_err();
    assert!(error.to_string().contains("does not exist"), "{error}");
    assert!(!path.exists());
}

#[test]
fn a_store_with_one_repository() {
    let fixture = Fixture::new();
    let config = report_fixture::single_repository_config(&fixture.store_path(), "acme/api");
    let store = SqliteStore::open(fixture.store_path()).unwrap();
    let report = generate(&store, &config, &request("30d", None)).unwrap();
    assert_eq!(report.repositories.len(), 1);
    assert_eq!(report.teams.len(), 1);
    assert_eq!(report.teams[0].name, "unassigned");
    let everyone = make(&fixture, "30d", None);
    // The repository's numbers do not depend on which other repositories are configured.
    let mut alone = report.repositories[0].clone();
    alone.team = Some("payments".to_owned());
    assert_eq!(alone, everyone.repositories[0]);
    // Its organisation is the repository.
    assert_eq!(
        report.summary.metrics.lead_time,
        everyone.repositories[0].metrics.lead_time
    );
    for format in Format::ALL {
        assert!(!render(&report, format).unwrap().is_empty());
    }
}

#[test]
fn html_is_self_contained() {
    let fixture = Fixture::new();
    let html = render(&make(&fixture, "30d", None), Format::Html).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("@page { size: A4"));
    assert_eq!(html.matches("<svg ").count(), 2, "two charts");
    for external in [
        "<script", "<link", "<img", "@import", "url(", "src=", "http://", "https://",
    ] {
        // The SVG namespace is an identifier, not a fetch.
        let count = html.matches(external).count()
            - html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
                * usize::from(external == "http://");
        // Sync errors quote URLs as text; none of them is in an attribute.
        let in_text = html.matches(&format!("GET {external}")).count();
        assert_eq!(count, in_text, "{external} in the page");
    }
}

/// Text from outside with every character that means something in HTML or Markdown.
const HOSTILE: &str =
    "<script>alert('x')</script> & \"quoted\" | piped\nline *bold* [link](x) `code` #";

/// The fixture's report with `HOSTILE` in every name and error text it shows.
fn hostile_report(fixture: &Fixture) -> Report {
    let mut report = make(fixture, "30d", Some("payments"));
    let hostile = |s: &mut String| s.push_str(HOSTILE);
    hostile(&mut report.summary.name);
    for scope in report.teams.iter_mut().chain(&mut report.repositories) {
        hostile(&mut scope.name);
        scope.team.as_mut().map(hostile);
        scope.environment.as_mut().map(hostile);
    }
    let risks = &mut report.risks;
    for r in &mut risks.regressions.items {
        hostile(&mut r.name);
        r.environment.as_mut().map(hostile);
    }
    for r in &mut risks.change_failure_rate.repositories.items {
        hostile(&mut r.repository);
        hostile(&mut r.environment);
        hostile(&mut r.team);
    }
    for r in &mut risks.open_incidents.items {
        hostile(&mut r.repository);
        hostile(&mut r.team);
    }
    for r in &mut risks.stale_data.repositories.items {
        hostile(&mut r.repository);
        hostile(&mut r.team);
        r.source = Some(format!("deployments{HOSTILE}"));
        r.last_error = Some(format!("GitHub said: {HOSTILE}"));
    }
    report
}

#[test]
fn text_from_outside_is_escaped_in_html_and_markdown() {
    let fixture = Fixture::new();
    let report = hostile_report(&fixture);
    assert!(!report.risks.stale_data.repositories.items.is_empty());
    assert!(!report.risks.regressions.items.is_empty());
    assert!(!report
        .risks
        .change_failure_rate
        .repositories
        .items
        .is_empty());

    let html = render(&report, Format::Html).unwrap();
    assert!(!html.contains("<script"), "raw <script in the HTML");
    assert!(!html.contains(HOSTILE));
    let escaped = report::render::html::escape(HOSTILE);
    assert!(escaped
        .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"));
    // Every place a name or error is shown, it is shown escaped.
    let team = &report.teams[0].name;
    assert!(html.contains(&format!(
        "<tr><td>{}</td>",
        report::render::html::escape(team)
    )));
    assert!(html.contains(&format!("<title>DORA report: team payments{escaped}, 30d")));
    assert!(html.contains(&format!("<td>GitHub said: {escaped}</td>")));
    assert!(html.contains(&format!("<td>deployments{escaped}</td>")));
    let shown = html.matches(&escaped).count();
    let risks = &report.risks;
    let regressions: usize = risks
        .regressions
        .items
        .iter()
        .map(|r| 1 + usize::from(r.scope == ScopeKind::Repository && r.environment.is_some()))
        .sum();
    let names = 2 // the summary's name, in the title and the heading
        + report.teams.len()
        + report.repositories.len() * 3
        + regressions
        + risks.change_failure_rate.repositories.items.len() * 3
        + risks.open_incidents.items.len() * 2
        + risks.stale_data.repositories.items.len() * 4;
    assert_eq!(shown, names, "every name and error, escaped");

    let markdown = render(&report, Format::Markdown).unwrap();
    // Markdown shows `\<script\>` as text: every `<script` has its backslash.
    assert!(markdown.contains("<script"));
    assert!(
        markdown
            .match_indices("<script")
            .all(|(at, _)| markdown[..at].ends_with('\\')),
        "raw <script in the Markdown"
    );
    assert!(!markdown.contains(HOSTILE));
    let escaped = report::render::markdown::escape(HOSTILE);
    assert!(escaped.contains("\\<script\\>") && !escaped.contains('\n'));
    assert!(markdown.contains(&format!("| GitHub said: {escaped} |")));
    assert!(markdown.contains(&format!("# DORA report: team payments{escaped}, 30d")));
    // The same places as in the HTML, the title once.
    assert_eq!(markdown.matches(&escaped).count(), names - 1);
    // No table is broken: every row of a table has as many cells as its heading.
    let cells = |line: &str| {
        let mut count = 0;
        let mut previous = ' ';
        for c in line.chars() {
            count += usize::from(c == '|' && previous != '\\');
            previous = if previous == '\\' { ' ' } else { c };
        }
        count
    };
    let mut tables = 0;
    let lines: Vec<&str> = markdown.lines().collect();
    for block in lines.split(|line| !line.starts_with('|')) {
        if let Some(heading) = block.first() {
            tables += 1;
            for row in block {
                assert_eq!(cells(row), cells(heading), "{row}");
            }
        }
    }
    assert!(tables >= 7, "{tables} tables");
    // No heading, list item or other block starts inside a value.
    for line in &lines {
        assert!(!line.starts_with("line *bold*"), "{line}");
    }
}

/// Where lead time goes, under a pull-request lead-time start: each scope's
/// stage medians and counts are the engine's, the slowest stage is the largest
/// median of the summary, and every format shows them (golden Markdown).
#[test]
fn where_lead_time_goes_under_a_pull_request_start() {
    let fixture = Fixture::new();
    let text = report_fixture::config_text(&fixture.store_path()).replace(
        "poll_interval = \"5m\"\n",
        "poll_interval = \"5m\"\nlead_time_start = \"pr_first_commit\"\n",
    );
    let config = Config::from_toml_str(&text, report_fixture::lookup).unwrap();
    let store = SqliteStore::open(fixture.store_path()).unwrap();
    let report = generate(&store, &config, &request("30d", None)).expect("report");
    let window = Window::days(30);
    let snapshot = engine_snapshot(&fixture, &config, &window, UNTIL);
    let check = |scope: &ScopeReport, engine: &RollupMetrics| {
        let stages = scope.lead_time_stages.as_ref().expect("measured");
        let expected = engine.windows[0]
            .lead_time_stages
            .as_ref()
            .expect("measured");
        assert_eq!(stages.len(), 4);
        for ((stage, median), (label, stats)) in stages
            .iter()
            .map(|s| (s.stage, (s.median_seconds, s.samples)))
            .zip(dora::Stage::ALL.into_iter().zip(expected))
        {
            assert_eq!(stage, label);
            assert_eq!(
                median,
                (stats.median, stats.count),
                "{} {stage:?}",
                scope.name
            );
        }
    };
    check(&report.summary, &snapshot.organisation);
    for team in &report.teams {
        let rollup = snapshot
            .teams
            .iter()
            .find(|t| t.team.as_ref().is_some_and(|n| n.as_str() == team.name))
            .unwrap();
        check(team, rollup);
    }
    // acme/api's changes all came through pull requests, a third unreviewed.
    let summary = report.summary.lead_time_stages.as_ref().unwrap();
    assert!(summary.iter().all(|s| s.samples > 0), "{summary:?}");
    assert!(summary[1].samples < summary[0].samples, "{summary:?}");
    let slowest = report
        .risks
        .slowest_stage
        .as_ref()
        .expect("a slowest stage");
    let largest = summary
        .iter()
        .filter_map(|s| s.median_seconds)
        .fold(0.0, f64::max);
    assert_eq!(slowest.median_seconds, largest);

    let markdown = render(&report, Format::Markdown).unwrap();
    assert!(markdown.contains("## Where lead time goes"), "{markdown}");
    assert!(
        markdown.contains("### Slowest lead-time stage"),
        "{markdown}"
    );
    insta::assert_snapshot!("fixture_30d_stages.md", markdown);
    let html = render(&report, Format::Html).unwrap();
    assert!(html.contains("<h2>Where lead time goes</h2>"));
    for class in ["coding", "pickup", "review", "deploy"] {
        assert!(
            html.contains(&format!("<rect class=\"{class}\" x=")),
            "{class}"
        );
    }
    let csv_text = render(&report, Format::Csv).unwrap();
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let first = reader.records().next().unwrap().unwrap();
    assert_eq!(&first[column("scope")], "organisation");
    for stage in summary {
        let label = stage.stage.label();
        let cell = &first[column(&format!("{label}_median_seconds"))];
        assert_eq!(cell.parse::<f64>().ok(), stage.median_seconds, "{label}");
        assert_eq!(
            first[column(&format!("{label}_samples"))]
                .parse::<u64>()
                .unwrap(),
            stage.samples
        );
    }
    let json = render(&report, Format::Json).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["summary"]["lead_time_stages"][2]["stage"], "review");
    assert_eq!(
        value["risks"]["slowest_stage"]["stage"],
        slowest.stage.label()
    );
}

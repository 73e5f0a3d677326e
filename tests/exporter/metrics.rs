//! The rendered text exposition: a golden snapshot of the whole output, `promtool
//! check metrics`, and the format rules checked on parsed output (escaping, empty
//! summaries, cumulative histograms, absent values, documentation of every family).

use crate::exporter_fixture;

use dora_collector::domain::Team;
use dora_collector::dora::{Histogram, SummaryStats, LEAD_TIME_BUCKETS};
use dora_collector::exporter::{all_families, render, HealthSnapshot};
use exporter_fixture::{health, snapshot, VERSION};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

fn rendered() -> String {
    render(Some(&snapshot()), &health(), VERSION).expect("renders")
}

// --- a minimal parser of the text format, to check the output's structure ---

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// The labels other than `le` and `quantile`: which series the line belongs to.
    fn series(&self) -> Vec<(String, String)> {
        self.labels
            .iter()
            .filter(|(k, _)| *k != "le" && *k != "quantile")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Parses sample lines (skipping comments), unescaping label values.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("malformed line {line:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Some(Sample {
            name: series.to_owned(),
            labels: BTreeMap::new(),
            value,
        });
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        match chars.peek() {
            Some('}') => break,
            Some(',') => {
                chars.next();
            }
            Some(_) => {}
            None => return None,
        }
        let label: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    _ => return None,
                },
                c => value.push(c),
            }
        }
        labels.insert(label, value);
    }
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `# TYPE` lines: family name → type.
fn types(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

// --- promtool ---

/// Whether promtool can run. When it cannot: panics if `CI=true` (CI must run the
/// check), otherwise prints a notice so the skip is visible.
fn promtool_available() -> bool {
    let available = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !available {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("promtool is required when CI=true (Debian: apt-get install prometheus)");
        }
        eprintln!("SKIPPED: promtool not found; `promtool check metrics` was not run");
    }
    available
}

/// Runs `promtool check metrics` over `text` and asserts it reports nothing.
/// Skips with a notice when promtool is not installed, unless `CI=true`.
fn assert_promtool_accepts(text: &str) {
    if !promtool_available() {
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool finishes");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.trim().is_empty(),
        "promtool check metrics complained ({}):\n{report}",
        output.status
    );
}

// --- tests ---

#[test]
fn golden_full_output() {
    insta::assert_snapshot!("full_metrics", rendered());
}

#[test]
fn promtool_accepts_the_full_output() {
    assert_promtool_accepts(&rendered());
}

#[test]
fn promtool_accepts_the_output_before_the_first_sync() {
    let text = render(None, &HealthSnapshot::default(), VERSION).unwrap();
    assert_eq!(
        text,
        "# HELP dora_build_info Always 1; the version label names the running dora-collector build.\n\
         # TYPE dora_build_info gauge\n\
         dora_build_info{version=\"1.2.3-test\"} 1\n"
    );
    assert_promtool_accepts(&text);
}

#[test]
fn promtool_self_check_rejects_bad_input() {
    // Guards against a promtool check that cannot fail: a counter without `_total`
    // and without HELP must be reported.
    if !promtool_available() {
        return;
    }
    let result = std::panic::catch_unwind(|| {
        assert_promtool_accepts("# TYPE bad counter\nbad 1\n");
    });
    assert!(result.is_err(), "promtool accepted a bad exposition");
}

#[test]
fn rendering_is_deterministic_and_families_are_sorted() {
    let text = rendered();
    assert_eq!(text, rendered());
    let names: Vec<String> = types(&text).into_iter().map(|(name, _)| name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "families sorted, each once");
}

#[test]
fn every_family_has_help_type_and_catalogued_labels() {
    let text = rendered();
    let catalogue: BTreeMap<&str, _> = all_families().into_iter().map(|f| (f.name, f)).collect();
    let exported = types(&text);
    assert!(exported.len() > 40, "the fixture exercises most families");
    for (name, kind) in &exported {
        let family = catalogue
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} is not in all_families()"));
        assert_eq!(family.kind.as_str(), kind, "{name}");
        assert!(
            text.contains(&format!("# HELP {name} {}\n", family.help)),
            "{name} has HELP"
        );
    }
    for sample in parse(&text) {
        let family = catalogue
            .iter()
            .filter(|(name, _)| sample.name.starts_with(*name))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, family)| family)
            .unwrap_or_else(|| panic!("{} belongs to no family", sample.name));
        let expected: BTreeSet<&str> = family.labels.iter().copied().collect();
        let got: BTreeSet<&str> = sample
            .labels
            .keys()
            .map(String::as_str)
            .filter(|l| !matches!(*l, "le" | "quantile"))
            .collect();
        assert_eq!(got, expected, "labels of {}", sample.name);
    }
}

#[test]
fn every_family_is_documented() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
        .expect("docs/metrics.md exists");
    for family in all_families() {
        let row = docs
            .lines()
            .find(|line| line.starts_with(&format!("| `{}` |", family.name)))
            .unwrap_or_else(|| panic!("docs/metrics.md has no table row for {}", family.name));
        assert!(
            row.contains(&format!("| {} |", family.kind.as_str())),
            "{}: type documented as {}",
            family.name,
            family.kind.as_str()
        );
        let labels = if family.labels.is_empty() {
            "—".to_owned()
        } else {
            family
                .labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert!(
            row.contains(&format!("| {labels} |")),
            "{}: labels documented as {labels}",
            family.name
        );
    }
}

#[test]
fn label_values_are_escaped() {
    let mut snapshot = snapshot();
    let odd = Team::parse(r#"pay "ments" \ ops"#).unwrap();
    snapshot.repositories[0].team = odd.clone();
    let mut health = health();
    health.sources[0].api_requests[0].endpoint = "line\nbreak \"quoted\" back\\slash".to_owned();
    let text = render(Some(&snapshot), &health, VERSION).unwrap();

    assert!(text.contains(r#"team="pay \"ments\" \\ ops""#), "{text}");
    assert!(
        text.contains(r#"endpoint="line\nbreak \"quoted\" back\\slash""#),
        "{text}"
    );
    // Every line is still one sample, and the values round-trip.
    let samples = parse(&text);
    assert!(samples
        .iter()
        .any(|s| s.label("team") == Some(odd.as_str())));
    assert!(samples
        .iter()
        .any(|s| s.label("endpoint") == Some("line\nbreak \"quoted\" back\\slash")));
    assert_promtool_accepts(&text);
}

#[test]
fn empty_summaries_have_zero_sum_and_count_and_no_quantiles() {
    let text = rendered();
    let samples = parse(&text);
    let summaries: BTreeSet<String> = types(&text)
        .into_iter()
        .filter(|(_, kind)| kind == "summary")
        .map(|(name, _)| name)
        .collect();
    let mut empty_seen = 0;
    for sample in samples.iter().filter(|s| {
        s.name
            .strip_suffix("_count")
            .is_some_and(|base| summaries.contains(base))
    }) {
        let base = sample.name.strip_suffix("_count").unwrap();
        let series = sample.series();
        let quantiles: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == base && s.series() == series)
            .collect();
        let sum = samples
            .iter()
            .find(|s| s.name == format!("{base}_sum") && s.series() == series)
            .expect("a _sum for every _count");
        if sample.value == 0.0 {
            empty_seen += 1;
            assert!(quantiles.is_empty(), "{base} {series:?} has quantiles");
            assert_eq!(sum.value, 0.0);
        } else {
            let qs: Vec<&str> = quantiles
                .iter()
                .filter_map(|s| s.label("quantile"))
                .collect();
            assert_eq!(qs, ["0.5", "0.9"], "{base} {series:?}");
        }
    }
    assert!(empty_seen >= 5, "the fixture has empty summaries");
}

#[test]
fn a_summary_with_no_samples_exports_no_quantile_even_if_given_one() {
    let mut snapshot = snapshot();
    snapshot.repositories[1].windows[0].lead_time = SummaryStats {
        count: 0,
        sum: 12.0,
        median: Some(1.0),
        p90: Some(2.0),
    };
    let text = render(Some(&snapshot), &health(), VERSION).unwrap();
    let prefix = r#"dora_lead_time_window_seconds{repository="acme/web",environment="production",team="web",window="7d""#;
    assert!(!text.contains(&format!("{prefix},quantile=")), "{text}");
    let sum = r#"dora_lead_time_window_seconds_sum{repository="acme/web",environment="production",team="web",window="7d"} 0"#;
    assert!(text.contains(sum), "{text}");
}

#[test]
fn histogram_buckets_are_cumulative_and_inf_equals_count() {
    let mut snapshot = snapshot();
    // A default histogram has no bucket counts at all: it must still export every bucket.
    snapshot.teams[1].totals.lead_time = Histogram::default();
    let text = render(Some(&snapshot), &health(), VERSION).unwrap();
    let samples = parse(&text);
    let histograms: Vec<String> = types(&text)
        .into_iter()
        .filter(|(_, kind)| kind == "histogram")
        .map(|(name, _)| name)
        .collect();
    assert_eq!(histograms.len(), 3, "repository, team and organisation");
    let mut expected_bounds: Vec<String> = LEAD_TIME_BUCKETS.iter().map(f64::to_string).collect();
    expected_bounds.push("+Inf".to_owned());
    let mut checked = 0;
    for name in &histograms {
        for count in samples.iter().filter(|s| s.name == format!("{name}_count")) {
            let series = count.series();
            let buckets: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.name == format!("{name}_bucket") && s.series() == series)
                .collect();
            let bounds: Vec<&str> = buckets.iter().filter_map(|s| s.label("le")).collect();
            assert_eq!(bounds, expected_bounds, "{name} {series:?}");
            assert!(
                buckets.windows(2).all(|w| w[0].value <= w[1].value),
                "{name} {series:?} cumulative"
            );
            assert_eq!(buckets.last().unwrap().value, count.value, "+Inf = count");
            checked += 1;
        }
    }
    assert_eq!(checked, 2 + 2 + 1);
    // The fixture's acme/api lead times: 600, 3600, 36000, 90000, 700000.
    let api = |le: &str| {
        samples
            .iter()
            .find(|s| {
                s.name == "dora_lead_time_seconds_bucket"
                    && s.label("repository") == Some("acme/api")
                    && s.label("le") == Some(le)
            })
            .unwrap()
            .value
    };
    assert_eq!(
        [
            api("300"),
            api("900"),
            api("3600"),
            api("86400"),
            api("604800"),
            api("+Inf")
        ],
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );
}

#[test]
fn absent_values_are_not_exported() {
    let samples = parse(&rendered());
    let web_7d = |name: &'static str| {
        samples.iter().filter(move |s| {
            s.name == name
                && s.label("repository") == Some("acme/web")
                && s.label("window") == Some("7d")
        })
    };
    assert_eq!(web_7d("dora_change_failure_rate").count(), 0);
    assert_eq!(web_7d("dora_deployment_rework_rate").count(), 0);
    let levels: Vec<&str> = web_7d("dora_performance_level")
        .filter_map(|s| s.label("metric"))
        .collect();
    assert_eq!(levels, ["deployment_frequency"]);
    // Frequency without deployments is 0, not absent.
    assert_eq!(
        web_7d("dora_deployment_frequency_per_day")
            .map(|s| s.value)
            .collect::<Vec<_>>(),
        [0.0]
    );
    // No open incident: no oldest-open timestamp; the open one is there.
    let oldest: Vec<(Option<&str>, f64)> = samples
        .iter()
        .filter(|s| s.name == "dora_incident_oldest_open_timestamp_seconds")
        .map(|s| (s.label("repository"), s.value))
        .collect();
    assert_eq!(oldest, [(Some("acme/api"), 1_709_287_200.0)]);
    // A rate limit without a reset time has no reset series.
    let resets: Vec<Option<&str>> = samples
        .iter()
        .filter(|s| s.name == "dora_collector_rate_limit_reset_timestamp_seconds")
        .map(|s| s.label("resource"))
        .collect();
    assert_eq!(resets, [Some("core")]);
}

#[test]
fn non_finite_values_are_never_written() {
    let mut snapshot = snapshot();
    snapshot.repositories[0].windows[0].change_failure_rate = Some(f64::NAN);
    snapshot.repositories[0].windows[0].deployment_frequency_per_day = f64::INFINITY;
    snapshot.repositories[0].windows[1].lead_time.median = Some(f64::INFINITY);
    let text = render(Some(&snapshot), &health(), VERSION).unwrap();
    let samples = parse(&text);
    assert!(samples.iter().all(|s| s.value.is_finite()), "{text}");
    assert!(!text.contains("inf\n") && !text.contains("NaN"), "{text}");
    let api_7d = |name: &str| {
        samples.iter().any(|s| {
            s.name == name
                && s.label("repository") == Some("acme/api")
                && s.label("window") == Some("7d")
        })
    };
    assert!(!api_7d("dora_change_failure_rate"));
    assert!(!api_7d("dora_deployment_frequency_per_day"));
    assert!(api_7d("dora_deployment_rework_rate"), "other series stay");
    let api_30d_lead_time: Vec<Option<&str>> = samples
        .iter()
        .filter(|s| {
            s.name == "dora_lead_time_window_seconds"
                && s.label("repository") == Some("acme/api")
                && s.label("window") == Some("30d")
        })
        .map(|s| s.label("quantile"))
        .collect();
    assert_eq!(api_30d_lead_time, [Some("0.9")]);
    assert_promtool_accepts(&text);
}

#[test]
fn health_and_build_info_are_exported() {
    let samples = parse(&rendered());
    let find = |name: &str, label: (&str, &str)| {
        samples
            .iter()
            .find(|s| s.name == name && s.label(label.0) == Some(label.1))
            .map(|s| s.value)
    };
    assert_eq!(find("dora_build_info", ("version", VERSION)), Some(1.0));
    let snapshot_time = samples
        .iter()
        .find(|s| s.name == "dora_collector_snapshot_timestamp_seconds")
        .map(|s| s.value);
    assert_eq!(snapshot_time, Some(exporter_fixture::NOW.0 as f64));
    assert_eq!(
        find(
            "dora_collector_last_successful_sync_timestamp_seconds",
            ("repository", "acme/web")
        ),
        Some((exporter_fixture::NOW.0 - 30) as f64)
    );
    assert_eq!(
        find(
            "dora_collector_sync_errors_total",
            ("repository", "acme/web")
        ),
        Some(2.0)
    );
    assert_eq!(
        find("dora_collector_sync_duration_seconds", ("source", "github")),
        Some(12.5)
    );
    assert_eq!(
        find("dora_collector_api_requests_total", ("status", "403")),
        Some(1.0)
    );
    assert_eq!(
        find("dora_collector_rate_limit_remaining", ("resource", "core")),
        Some(4_959.0)
    );
    // A repository that never synced has an error counter but no timestamp.
    let health = exporter_fixture::health_only_api_synced();
    let text = render(None, &health, VERSION).unwrap();
    assert!(!text.contains(
        r#"last_successful_sync_timestamp_seconds{source="github",repository="acme/web"}"#
    ));
    assert!(text
        .contains(r#"dora_collector_sync_errors_total{source="github",repository="acme/web"} 2"#));
}

//! Compares a scrape of `/metrics` with the reference's expectations: every series
//! of the DORA families (not the collector's health, `dora_collector_*`, nor
//! `dora_build_info`), both ways, and the TYPE of every expected family. Lists
//! every difference rather than stopping at the first.

use super::prom::{self, SeriesKey};
use super::series::{canonical_key, Expected, Tolerance};
use dora_collector::domain::Timestamp;

/// The relative tolerance of floating-point values (frequencies, rates, quantiles).
pub const RELATIVE_TOLERANCE: f64 = 1e-9;

/// The evaluation time of the snapshot a scrape shows
/// (`dora_collector_snapshot_timestamp_seconds`): the `now` to compute the reference
/// at. `None` before the first sync or when the text does not parse.
pub fn snapshot_time(scrape_text: &str) -> Option<Timestamp> {
    let scrape = prom::parse(scrape_text).ok()?;
    let key = SeriesKey::new("dora_collector_snapshot_timestamp_seconds", &[]);
    let seconds = *scrape.samples.get(&key)?;
    (seconds.is_finite() && seconds.fract() == 0.0).then_some(Timestamp(seconds as i64))
}

/// Whether a sample name belongs to the DORA families the reference covers.
pub fn is_dora_series(name: &str) -> bool {
    name.starts_with("dora_")
        && !name.starts_with("dora_collector_")
        && !name.starts_with("dora_build_info")
}

fn close(expected: f64, got: f64, tolerance: Tolerance) -> bool {
    match tolerance {
        Tolerance::Exact => expected == got,
        Tolerance::Relative => {
            (expected - got).abs() <= RELATIVE_TOLERANCE * expected.abs().max(got.abs())
        }
    }
}

/// Every difference between `scrape_text` and `expected`, one line each, sorted by
/// series; empty when they agree. `Err` when the text does not parse.
pub fn differences(scrape_text: &str, expected: &Expected) -> Result<Vec<String>, String> {
    let scrape = prom::parse(scrape_text).map_err(|e| format!("the scrape does not parse: {e}"))?;
    let mut out = Vec::new();
    for (family, kind) in &expected.families {
        match scrape.types.get(family) {
            Some(got) if got == kind => {}
            Some(got) => out.push(format!("type of {family}: expected {kind}, got {got}")),
            None => out.push(format!("type of {family}: expected {kind}, no TYPE line")),
        }
    }
    let got: Vec<(SeriesKey, f64)> = scrape
        .samples
        .iter()
        .filter(|(key, _)| is_dora_series(&key.name))
        .map(|(key, value)| (canonical_key(key.clone()), *value))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for (key, value) in &got {
        seen.insert(key.clone());
        match expected.series.get(key) {
            None => out.push(format!("unexpected: {key} = {value}")),
            Some(want) if !close(want.value, *value, want.tolerance) => out.push(format!(
                "differs: {key}: expected {}, got {value}",
                want.value
            )),
            Some(_) => {}
        }
    }
    for (key, want) in &expected.series {
        if !seen.contains(key) {
            out.push(format!("missing: {key} = {}", want.value));
        }
    }
    Ok(out)
}

/// Panics with every difference when `scrape_text` does not export exactly the
/// expected DORA series with the expected values.
pub fn assert_matches(scrape_text: &str, expected: &Expected) {
    match differences(scrape_text, expected) {
        Ok(list) if list.is_empty() => {}
        Ok(list) => panic!(
            "/metrics differs from the reference in {} place(s):\n  {}",
            list.len(),
            list.join("\n  ")
        ),
        Err(error) => panic!("{error}"),
    }
}

//! `dora-collector backfill`: the windowed DORA families (repository, team and
//! organisation) evaluated at every step of the past, written as OpenMetrics
//! text with timestamps for `promtool tsdb create-blocks-from openmetrics`
//! (docs/backfill.md). From the store alone: one load of the events, then at
//! each step exactly the snapshot `/metrics` would have exported at that instant
//! (the engine ignores what happened later), rendered by the exporter's own
//! families.
//!
//! Not here: the cumulative families (counters and histograms whose past values
//! Prometheus rebuilds from the live series), the collector's health, and
//! writing blocks (promtool does that).
//!
//! The OpenMetrics writer is written by hand: the `prometheus` crate encodes
//! only the Prometheus text format, without sample timestamps.

use crate::config::Config;
use crate::domain::{RepoName, Timestamp};
use crate::dora::{self, EventsBuilder};
use crate::exporter::HealthSnapshot;
use crate::store::Store;
use prometheus::proto::{MetricFamily, MetricType};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The default step between two evaluations.
pub const DEFAULT_STEP_SECONDS: i64 = 86_400;

/// The most evaluations one run makes (ten years at a daily step).
pub const MAX_STEPS: u64 = 3_660;

/// The label every windowed family carries; families with it are backfilled.
const WINDOW_LABEL: &str = "window";

/// What to backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillRequest {
    /// The first evaluation instant.
    pub from: Timestamp,
    /// No evaluation after this instant.
    pub until: Timestamp,
    /// Seconds between two evaluations.
    pub step_seconds: i64,
    /// The OpenMetrics file to write (replaced whole, only once complete).
    pub output: PathBuf,
    /// One file per evaluation instant instead (`--split`): `history.om` becomes
    /// `history.2025-01-01T00-00-00Z.om`, … (promtool reads each file once per
    /// two hours it spans, so one instant per file is one pass each).
    pub split: bool,
}

/// What a backfill wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillSummary {
    /// The files written, in time order (one without `split`).
    pub files: Vec<PathBuf>,
    /// Evaluation instants.
    pub steps: u64,
    /// Families written.
    pub families: usize,
    /// Samples written (one line each).
    pub samples: u64,
    /// Bytes of the file.
    pub bytes: u64,
}

/// Why a backfill failed.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// `--from`, `--until` or `--step` make no run.
    #[error("{0}")]
    Range(String),
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Writing the output failed.
    #[error("cannot write {}: {cause}", path.display())]
    Write { path: PathBuf, cause: io::Error },
}

/// The evaluation instants of `request`: `from`, `from + step`, … up to `until`.
pub fn steps(request: &BackfillRequest) -> Result<Vec<Timestamp>, BackfillError> {
    if request.step_seconds <= 0 {
        return Err(BackfillError::Range(
            "--step must be at least one second".to_owned(),
        ));
    }
    if request.from > request.until {
        return Err(BackfillError::Range(format!(
            "--from {} is after --until {}",
            request.from.to_rfc3339(),
            request.until.to_rfc3339()
        )));
    }
    let count = (request.until.0 - request.from.0) / request.step_seconds + 1;
    if count as u64 > MAX_STEPS {
        return Err(BackfillError::Range(format!(
            "{count} evaluations from --from to --until at this --step; at most {MAX_STEPS}: \
             use a longer --step or a shorter range"
        )));
    }
    Ok((0..count)
        .map(|k| Timestamp(request.from.0 + k * request.step_seconds))
        .collect())
}

/// Backfills what `store` holds for the configured repositories (and the
/// discovered ones the daemon kept, and those known only through pushes), calling `progress` after each step with the
/// number done. The output file appears only once complete.
pub fn backfill(
    store: &dyn Store,
    config: &Config,
    request: &BackfillRequest,
    version: &str,
    mut progress: impl FnMut(u64),
) -> Result<BackfillSummary, BackfillError> {
    let instants = steps(request)?;
    let mut engine = config.engine_config();
    for (repository, team) in store.recorded_teams()? {
        engine.teams.entry(repository).or_insert(team);
    }
    for pushed in store.pushed_repositories()? {
        engine.teams.entry(pushed).or_default();
    }
    let names: Vec<RepoName> = engine.teams.keys().cloned().collect();
    let events = EventsBuilder::collect(|sink| store.load_events(&names, sink))?;

    let write_error = |cause: io::Error| BackfillError::Write {
        path: request.output.clone(),
        cause,
    };
    // One scratch file per family: OpenMetrics wants each family's samples
    // together, and each series' samples in time order, so the steps are
    // written family by family and joined at the end (split: at each step).
    let mut families: BTreeMap<String, FamilyScratch> = BTreeMap::new();
    let mut names_written = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    let (mut samples, mut bytes) = (0u64, 0u64);
    let health = HealthSnapshot::default();
    for (done, at) in instants.iter().enumerate() {
        let snapshot = dora::compute(&events, &engine, *at);
        for family in crate::exporter::metric_families(Some(&snapshot), &health, version) {
            if !is_windowed(&family) {
                continue;
            }
            let scratch = match families.get_mut(family.name()) {
                Some(scratch) => scratch,
                None => {
                    let file = tempfile::tempfile().map_err(write_error)?;
                    families
                        .entry(family.name().to_owned())
                        .or_insert(FamilyScratch {
                            help: family.help().to_owned(),
                            kind: family.get_field_type(),
                            lines: BufWriter::new(file),
                        })
                }
            };
            samples += write_samples(&mut scratch.lines, &family, *at).map_err(write_error)?;
        }
        if request.split {
            let path = split_path(&request.output, *at);
            bytes +=
                assemble(&path, families.iter_mut()).map_err(|cause| BackfillError::Write {
                    path: path.clone(),
                    cause,
                })?;
            names_written.extend(families.keys().cloned());
            families.clear();
            files.push(path);
        }
        progress(done as u64 + 1);
    }
    if !request.split {
        bytes = assemble(&request.output, families.iter_mut()).map_err(write_error)?;
        names_written.extend(families.keys().cloned());
        files.push(request.output.clone());
    }
    Ok(BackfillSummary {
        files,
        steps: instants.len() as u64,
        families: names_written.len(),
        samples,
        bytes,
    })
}

/// `history.om` at 2025-01-01T00:00:00Z → `history.2025-01-01T00-00-00Z.om`
/// (no `:` in file names).
pub fn split_path(output: &Path, at: Timestamp) -> PathBuf {
    let stem = output
        .file_stem()
        .map_or_else(|| "backfill".into(), |s| s.to_string_lossy().into_owned());
    let extension = output
        .extension()
        .map_or_else(|| "om".into(), |s| s.to_string_lossy().into_owned());
    let instant = at.to_rfc3339().replace(':', "-");
    output.with_file_name(format!("{stem}.{instant}.{extension}"))
}

/// One family's metadata and its sample lines so far.
struct FamilyScratch {
    help: String,
    kind: MetricType,
    lines: BufWriter<File>,
}

/// Whether `family` is one of the windowed families.
fn is_windowed(family: &MetricFamily) -> bool {
    family
        .get_metric()
        .iter()
        .any(|metric| metric.get_label().iter().any(|l| l.name() == WINDOW_LABEL))
}

/// Writes the families' metadata and lines to a temporary file beside `output`,
/// then moves it over `output`. Returns the file's size.
fn assemble<'a>(
    output: &Path,
    families: impl Iterator<Item = (&'a String, &'a mut FamilyScratch)>,
) -> io::Result<u64> {
    let dir = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut out = BufWriter::new(file.as_file_mut());
        for (name, scratch) in families {
            let kind = match scratch.kind {
                MetricType::SUMMARY => "summary",
                _ => "gauge",
            };
            writeln!(out, "# HELP {name} {}", escape_help(&scratch.help))?;
            writeln!(out, "# TYPE {name} {kind}")?;
            scratch.lines.flush()?;
            let lines = scratch.lines.get_mut();
            lines.rewind()?;
            let mut buffer = Vec::new();
            lines.read_to_end(&mut buffer)?;
            out.write_all(&buffer)?;
        }
        writeln!(out, "# EOF")?;
        out.flush()?;
    }
    file.as_file().sync_all()?;
    let bytes = file.as_file().metadata()?.len();
    file.persist(output).map_err(|e| e.error)?;
    Ok(bytes)
}

/// The samples of `family` at `at`, one line each; returns how many.
fn write_samples(out: &mut impl Write, family: &MetricFamily, at: Timestamp) -> io::Result<u64> {
    let name = family.name();
    let mut lines = 0;
    for metric in family.get_metric() {
        let labels: Vec<(&str, &str)> = metric
            .get_label()
            .iter()
            .map(|l| (l.name(), l.value()))
            .collect();
        match family.get_field_type() {
            MetricType::SUMMARY => {
                let summary = metric.get_summary();
                for quantile in summary.get_quantile() {
                    let q = format_value(quantile.quantile());
                    let mut with_quantile = labels.clone();
                    with_quantile.push(("quantile", &q));
                    sample(out, name, &with_quantile, quantile.value(), at)?;
                    lines += 1;
                }
                sample(
                    out,
                    &format!("{name}_sum"),
                    &labels,
                    summary.sample_sum(),
                    at,
                )?;
                sample(
                    out,
                    &format!("{name}_count"),
                    &labels,
                    summary.sample_count() as f64,
                    at,
                )?;
                lines += 2;
            }
            _ => {
                sample(out, name, &labels, metric.get_gauge().get_value(), at)?;
                lines += 1;
            }
        }
    }
    Ok(lines)
}

/// `name{labels} value timestamp`.
fn sample(
    out: &mut impl Write,
    name: &str,
    labels: &[(&str, &str)],
    value: f64,
    at: Timestamp,
) -> io::Result<()> {
    write!(out, "{name}")?;
    if !labels.is_empty() {
        write!(out, "{{")?;
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                write!(out, ",")?;
            }
            write!(out, "{label}=\"{}\"", escape_label(value))?;
        }
        write!(out, "}}")?;
    }
    writeln!(out, " {} {}", format_value(value), at.0)
}

/// A float as OpenMetrics spells it.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A HELP text with `\`, `"` and newlines escaped.
fn escape_help(text: &str) -> String {
    escape_label(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(from: i64, until: i64, step: i64) -> BackfillRequest {
        BackfillRequest {
            from: Timestamp(from),
            until: Timestamp(until),
            step_seconds: step,
            output: PathBuf::from("out.om"),
            split: false,
        }
    }

    #[test]
    fn split_files_are_named_by_their_instant() {
        assert_eq!(
            split_path(Path::new("/tmp/history.om"), Timestamp(1_735_689_600)),
            PathBuf::from("/tmp/history.2025-01-01T00-00-00Z.om")
        );
        assert_eq!(
            split_path(Path::new("out"), Timestamp(0)),
            PathBuf::from("out.1970-01-01T00-00-00Z.om")
        );
    }

    #[test]
    fn steps_run_from_from_to_until_inclusive() {
        let at = |r| {
            steps(&r)
                .unwrap()
                .into_iter()
                .map(|t| t.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(at(request(0, 200, 100)), [0, 100, 200]);
        assert_eq!(at(request(0, 250, 100)), [0, 100, 200]);
        assert_eq!(at(request(5, 5, 100)), [5]);
        assert!(matches!(
            steps(&request(10, 0, 1)),
            Err(BackfillError::Range(_))
        ));
        assert!(matches!(
            steps(&request(0, 10, 0)),
            Err(BackfillError::Range(_))
        ));
        let too_many = steps(&request(0, MAX_STEPS as i64 * 10, 10)).unwrap_err();
        assert!(too_many.to_string().contains("at most 3660"), "{too_many}");
    }

    #[test]
    fn samples_are_openmetrics_lines_with_escaped_labels_and_timestamps() {
        let mut out = Vec::new();
        sample(
            &mut out,
            "dora_x",
            &[("team", "a\"b\\c\nd"), ("window", "7d")],
            0.5,
            Timestamp(1_700_000_000),
        )
        .unwrap();
        sample(&mut out, "dora_y", &[], f64::INFINITY, Timestamp(1)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "dora_x{team=\"a\\\"b\\\\c\\nd\",window=\"7d\"} 0.5 1700000000\ndora_y +Inf 1\n"
        );
    }
}

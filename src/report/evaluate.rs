//! The engine evaluations one report needs, from one set of loaded events: the
//! period (at `until`), the previous period (at `until − window`) and the weekly
//! trend (a 7-day window at each of the last [`TREND_WEEKS`] week ends).
//!
//! Every number comes from [`dora::compute`], which is pure and ignores events after
//! its `now`; so evaluating at `until − window` reproduces what the previous report
//! showed. Evaluation times that coincide share one `compute` (with both windows),
//! and the computes run on up to [`MAX_EVALUATION_THREADS`] threads over the same
//! `Events`: one load, about 13 computes, never 13 loads.
//!
//! It does not load, filter or interpret anything: `build` reads the snapshots.

use crate::domain::Timestamp;
use crate::dora::{self, EngineConfig, Events, Snapshot, Window};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Weeks in the trend charts: a quarter, enough to see a direction, short enough
/// to read on one page.
pub const TREND_WEEKS: usize = 12;

/// The length of one trend point.
pub const WEEK_SECONDS: i64 = 7 * 86_400;

/// The most threads the computes use. Each `compute` is single-threaded and the
/// report needs about 13; more than 4 threads gains little on the machines this
/// runs on and would crowd out a daemon serving the live page.
pub const MAX_EVALUATION_THREADS: usize = 4;

/// The snapshots of one report.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The report window.
    pub window: Window,
    /// The end of the period.
    pub until: Timestamp,
    /// At `until`; holds `window`.
    pub current: Snapshot,
    /// At `until − window`; holds `window`.
    pub previous: Snapshot,
    /// At `until − k weeks` for k = TREND_WEEKS−1 … 0 (oldest first); each holds a
    /// window of [`WEEK_SECONDS`] (the report window itself when it is 7 days long).
    pub weeks: Vec<Snapshot>,
}

impl Evaluation {
    /// The week window used by the trend snapshots.
    pub fn week_window(&self) -> Window {
        week_window(&self.window)
    }
}

fn week_window(report: &Window) -> Window {
    if report.seconds == WEEK_SECONDS {
        report.clone()
    } else {
        Window::days(7)
    }
}

/// Evaluates `events` for a report over `window` ending at `until`. `config.windows`
/// is replaced by the windows each evaluation needs; everything else is used as is.
pub fn evaluate(
    events: &Events,
    config: &EngineConfig,
    window: &Window,
    until: Timestamp,
) -> Evaluation {
    let week = week_window(window);
    // Every distinct evaluation time with the windows it needs.
    let mut times: BTreeMap<i64, Vec<Window>> = BTreeMap::new();
    let mut need = |at: i64, window: &Window| {
        let windows = times.entry(at).or_default();
        if !windows.iter().any(|w| w.seconds == window.seconds) {
            windows.push(window.clone());
        }
    };
    let previous_at = until.0.saturating_sub(window.seconds);
    need(until.0, window);
    need(previous_at, window);
    let week_ends: Vec<i64> = (0..TREND_WEEKS as i64)
        .rev()
        .map(|k| until.0.saturating_sub(k * WEEK_SECONDS))
        .collect();
    for at in &week_ends {
        need(*at, &week);
    }

    // Latest first: they replay the most history, so they start first.
    let jobs: Vec<(Timestamp, EngineConfig)> = times
        .into_iter()
        .rev()
        .map(|(at, windows)| {
            let config = EngineConfig {
                windows,
                ..config.clone()
            };
            (Timestamp(at), config)
        })
        .collect();
    let snapshots: BTreeMap<i64, Snapshot> = compute_all(events, &jobs)
        .into_iter()
        .map(|snapshot| (snapshot.evaluated_at.0, snapshot))
        .collect();
    let at = |time: i64| snapshots[&time].clone();
    Evaluation {
        window: window.clone(),
        until,
        current: at(until.0),
        previous: at(previous_at),
        weeks: week_ends.iter().map(|t| at(*t)).collect(),
    }
}

/// Runs `dora::compute` for every job, on several threads, results in job order.
fn compute_all(events: &Events, jobs: &[(Timestamp, EngineConfig)]) -> Vec<Snapshot> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_EVALUATION_THREADS)
        .min(jobs.len());
    if threads <= 1 {
        return jobs
            .iter()
            .map(|(at, config)| dora::compute(events, config, *at))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Snapshot>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((at, config)) = jobs.get(i) else {
                    break;
                };
                let snapshot = dora::compute(events, config, *at);
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every job ran: a panicking compute propagates out of the scope")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_times_and_windows() {
        let events = Events::builder().build();
        let until = Timestamp(1_767_225_600);
        let evaluation = evaluate(&events, &EngineConfig::default(), &Window::days(30), until);
        assert_eq!(evaluation.current.evaluated_at, until);
        assert_eq!(
            evaluation.previous.evaluated_at,
            Timestamp(until.0 - 30 * 86_400)
        );
        let ends: Vec<i64> = evaluation
            .weeks
            .iter()
            .map(|s| until.0 - s.evaluated_at.0)
            .collect();
        let expected: Vec<i64> = (0..12).rev().map(|k| k * WEEK_SECONDS).collect();
        assert_eq!(ends, expected);
        // The current snapshot also serves the last week: both windows in one compute.
        let seconds: Vec<i64> = evaluation
            .current
            .windows
            .iter()
            .map(|w| w.seconds)
            .collect();
        assert_eq!(seconds, vec![30 * 86_400, WEEK_SECONDS]);
        assert_eq!(evaluation.previous.windows, vec![Window::days(30)]);
        assert_eq!(evaluation.weeks[0].windows, vec![Window::days(7)]);
    }

    #[test]
    fn a_seven_day_report_window_is_the_week_window() {
        let events = Events::builder().build();
        let window = Window {
            label: "168h".to_owned(),
            seconds: WEEK_SECONDS,
        };
        let evaluation = evaluate(&events, &EngineConfig::default(), &window, Timestamp(0));
        assert_eq!(evaluation.week_window(), window);
        for snapshot in evaluation.weeks.iter().chain([&evaluation.current]) {
            assert_eq!(snapshot.windows, vec![window.clone()]);
        }
        // The previous period is the second-to-last week.
        assert_eq!(evaluation.previous, evaluation.weeks[10]);
    }
}

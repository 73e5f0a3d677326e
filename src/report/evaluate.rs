//! The engine evaluations one report needs, from one set of loaded events: the
//! period (at `until`), the previous period (at `until − window`) and the weekly
//! trend (deployments and lead time in a 7-day window at each of the last
//! [`TREND_WEEKS`] week ends).
//!
//! Every number comes from the engine, which is pure and ignores events after its
//! `now`; so evaluating at `until − window` reproduces what the previous report
//! showed. The trend comes with the period's evaluation from one replay
//! ([`dora::compute_with_trend`]: equal to a compute at every week end, see its
//! documentation; under a pull-request lead-time start it also replays, up to a
//! week end, each repository a pull request merged after that end can move), and
//! the previous period is computed on a second thread over the same `Events`: one
//! load, two replays.
//!
//! It does not load, filter or interpret anything: `build` reads the results.

use crate::domain::Timestamp;
use crate::dora::{self, EngineConfig, Events, Snapshot, TrendPoint, Window};

/// Weeks in the trend charts: a quarter, enough to see a direction, short enough
/// to read on one page.
pub const TREND_WEEKS: usize = 12;

/// The length of one trend point.
pub const WEEK_SECONDS: i64 = 7 * 86_400;

/// The most threads the evaluations use: the period (with the trend) and the
/// previous period run side by side.
pub const MAX_EVALUATION_THREADS: usize = 2;

/// The results of one report's evaluations.
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
    /// The week windows ending at `until − k weeks` for k = TREND_WEEKS−1 … 0
    /// (oldest first), each [`Evaluation::week_window`] long.
    pub trend: Vec<TrendPoint>,
}

impl Evaluation {
    /// The window of one trend point.
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
/// is replaced by `window`; everything else is used as is.
pub fn evaluate(
    events: &Events,
    config: &EngineConfig,
    window: &Window,
    until: Timestamp,
) -> Evaluation {
    let config = EngineConfig {
        windows: vec![window.clone()],
        ..config.clone()
    };
    let previous_at = Timestamp(until.0.saturating_sub(window.seconds));
    let week_ends: Vec<Timestamp> = (0..TREND_WEEKS as i64)
        .rev()
        .map(|k| Timestamp(until.0.saturating_sub(k * WEEK_SECONDS)))
        .collect();
    let week = week_window(window);
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
    let ((current, trend), previous) = if parallel {
        std::thread::scope(|scope| {
            let previous = scope.spawn(|| dora::compute(events, &config, previous_at));
            let current = dora::compute_with_trend(events, &config, until, &week, &week_ends);
            let previous = previous
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (current, previous)
        })
    } else {
        (
            dora::compute_with_trend(events, &config, until, &week, &week_ends),
            dora::compute(events, &config, previous_at),
        )
    };
    Evaluation {
        window: window.clone(),
        until,
        current,
        previous,
        trend,
    }
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
            .trend
            .iter()
            .map(|point| until.0 - point.end.0)
            .collect();
        let expected: Vec<i64> = (0..12).rev().map(|k| k * WEEK_SECONDS).collect();
        assert_eq!(ends, expected);
        assert_eq!(evaluation.current.windows, vec![Window::days(30)]);
        assert_eq!(evaluation.previous.windows, vec![Window::days(30)]);
        assert_eq!(evaluation.week_window(), Window::days(7));
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
        assert_eq!(evaluation.current.windows, vec![window.clone()]);
    }
}

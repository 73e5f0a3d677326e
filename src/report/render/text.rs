//! How values read in the human formats (Markdown and HTML): durations in the
//! largest sensible unit, rates as percentages, times in UTC. Formatting only; the
//! machine formats (JSON, CSV) carry the exact numbers.

use crate::domain::Timestamp;
use crate::dora::Level;
use crate::report::model::{Direction, Metric, MetricValue, Unit};

/// `1 incident`, `3 incidents`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Shown where a value is absent (no samples in the period).
pub const ABSENT: &str = "—";

const MINUTE: f64 = 60.0;
const HOUR: f64 = 3_600.0;
const DAY: f64 = 86_400.0;

/// `42 s`, `17 min`, `3.2 h`, `2.5 d`.
pub fn duration(seconds: f64) -> String {
    let magnitude = seconds.abs();
    if magnitude < MINUTE {
        format!("{seconds:.0} s")
    } else if magnitude < HOUR {
        format!("{:.0} min", seconds / MINUTE)
    } else if magnitude < DAY {
        format!("{:.1} h", seconds / HOUR)
    } else {
        format!("{:.1} d", seconds / DAY)
    }
}

/// Age of something open: `45 min`, `5 h`, `3 d 4 h`.
pub fn age(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
    );
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else {
        format!("{minutes} min")
    }
}

/// `2.4/day`, `0.43/day`, `12/day`.
pub fn frequency(per_day: f64) -> String {
    let magnitude = per_day.abs();
    if magnitude == 0.0 {
        "0/day".to_owned()
    } else if magnitude >= 10.0 {
        format!("{per_day:.0}/day")
    } else if magnitude >= 1.0 {
        format!("{per_day:.1}/day")
    } else {
        format!("{per_day:.2}/day")
    }
}

/// `12.5%`.
pub(crate) fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// A metric's value as a person reads it; [`ABSENT`] when absent.
pub fn value(metric: Metric, value: Option<f64>) -> String {
    let Some(value) = value else {
        return ABSENT.to_owned();
    };
    match metric.unit() {
        Unit::PerDay => frequency(value),
        Unit::Seconds => duration(value),
        Unit::Ratio => percent(value),
    }
}

/// A change with its sign: `+0.40/day`, `-2.1 h`, `+4.0 pp` (percentage points).
pub fn change(metric: Metric, change: Option<f64>) -> String {
    let Some(change) = change else {
        return ABSENT.to_owned();
    };
    let sign = if change > 0.0 {
        "+"
    } else if change < 0.0 {
        "-"
    } else {
        "±"
    };
    let magnitude = change.abs();
    let text = match metric.unit() {
        Unit::PerDay => frequency(magnitude),
        Unit::Seconds => duration(magnitude),
        Unit::Ratio => format!("{:.1} pp", magnitude * 100.0),
    };
    format!("{sign}{text}")
}

/// `better`, `worse`, `unchanged`, or nothing.
pub fn direction(direction: Option<Direction>) -> &'static str {
    direction.map_or("", Direction::as_str)
}

/// A one-character mark for table cells: `↗` better, `↘` worse, `=` unchanged.
pub(crate) fn direction_mark(direction: Option<Direction>) -> &'static str {
    match direction {
        Some(Direction::Better) => "↗",
        Some(Direction::Worse) => "↘",
        Some(Direction::Unchanged) => "=",
        None => "",
    }
}

/// `elite`, …, or [`ABSENT`].
pub fn level(level: Option<Level>) -> &'static str {
    level.map_or(ABSENT, Level::name)
}

/// `2024-03-31 23:59 UTC`.
pub fn time(at: Timestamp) -> String {
    at.to_datetime().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `2024-03-31`.
pub fn date(at: Timestamp) -> String {
    at.to_datetime().format("%Y-%m-%d").to_string()
}

/// `03-31`, for chart axes.
pub(crate) fn month_day(at: Timestamp) -> String {
    at.to_datetime().format("%m-%d").to_string()
}

/// The previous value and the change, for a summary line: `2.0/day, +0.40/day
/// (better)`; `no previous value` when either side is absent.
pub fn comparison(metric: Metric, value: &MetricValue) -> String {
    match (value.previous, value.change) {
        (Some(_), Some(change_value)) => format!(
            "{} ({})",
            change(metric, Some(change_value)),
            direction(value.direction)
        ),
        _ => ABSENT.to_owned(),
    }
}

/// `72 deployments`, `1 change`: a sample count with its noun.
pub fn samples(metric: Metric, count: u64) -> String {
    let noun = metric.samples_are();
    if count == 1 {
        let singular = match noun {
            "deployments" => "deployment",
            "changes" => "change",
            "recoveries" => "recovery",
            _ => "incident closed",
        };
        format!("1 {singular}")
    } else {
        format!("{count} {noun}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(duration(42.0), "42 s");
        assert_eq!(duration(17.0 * 60.0), "17 min");
        assert_eq!(duration(3.2 * 3_600.0), "3.2 h");
        assert_eq!(duration(2.5 * 86_400.0), "2.5 d");
        assert_eq!(age(45 * 60), "45 min");
        assert_eq!(age(5 * 3_600 + 60), "5 h 1 min");
        assert_eq!(age(3 * 86_400 + 4 * 3_600), "3 d 4 h");
    }

    #[test]
    fn changes_have_signs_and_units() {
        assert_eq!(change(Metric::DeploymentFrequency, Some(0.4)), "+0.40/day");
        assert_eq!(change(Metric::LeadTime, Some(-7_560.0)), "-2.1 h");
        assert_eq!(change(Metric::ChangeFailureRate, Some(0.04)), "+4.0 pp");
        assert_eq!(change(Metric::ReworkRate, Some(0.0)), "±0.0 pp");
        assert_eq!(change(Metric::ReworkRate, None), ABSENT);
        assert_eq!(value(Metric::ChangeFailureRate, Some(0.125)), "12.5%");
        assert_eq!(value(Metric::DeploymentFrequency, Some(0.0)), "0/day");
        assert_eq!(value(Metric::DeploymentFrequency, Some(12.4)), "12/day");
        assert_eq!(samples(Metric::LeadTime, 1), "1 change");
        assert_eq!(samples(Metric::TimeToRestore, 2), "2 incidents closed");
    }
}

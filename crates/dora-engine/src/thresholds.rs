//! DORA performance levels and the configurable thresholds that classify values.

use serde::{Deserialize, Serialize};

/// The DORA scale: `4 = elite`, `3 = high`, `2 = medium`, `1 = low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// `1`: misses the medium bound.
    Low = 1,
    /// `2`: meets the medium bound, not the high one.
    Medium = 2,
    /// `3`: meets the high bound, not the elite one.
    High = 3,
    /// `4`: meets the elite bound.
    Elite = 4,
}

impl Level {
    /// The level as a number, 1 (low) to 4 (elite), as the metrics export it.
    pub const fn value(self) -> u8 {
        self as u8
    }

    /// The lowercase name: `low`, `medium`, `high` or `elite`.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Elite => "elite",
        }
    }
}

const HOUR: f64 = 3_600.0;
const DAY: f64 = 86_400.0;

/// Level boundaries, `[elite, high, medium]`; anything beyond `medium` is low.
/// Defaults follow the 2023 State of DevOps report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Deployments per day at or above which each level starts: `[1, 1/7, 1/30]`.
    pub deployment_frequency_per_day: [f64; 3],
    /// Median lead time (seconds) strictly below which each level starts: 1d, 7d, 30d.
    pub lead_time_seconds: [f64; 3],
    /// Change failure rate at or below which each level starts: 5%, 10%, 15%.
    pub change_failure_rate: [f64; 3],
    /// Median recovery time (seconds) strictly below which each level starts: 1h, 1d, 7d.
    pub recovery_time_seconds: [f64; 3],
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            deployment_frequency_per_day: [1.0, 1.0 / 7.0, 1.0 / 30.0],
            lead_time_seconds: [DAY, 7.0 * DAY, 30.0 * DAY],
            change_failure_rate: [0.05, 0.10, 0.15],
            recovery_time_seconds: [HOUR, DAY, 7.0 * DAY],
        }
    }
}

fn level_by(pass: impl Fn(usize) -> bool) -> Level {
    [Level::Elite, Level::High, Level::Medium]
        .into_iter()
        .enumerate()
        .find(|(i, _)| pass(*i))
        .map_or(Level::Low, |(_, level)| level)
}

impl Thresholds {
    /// Higher is better; bounds inclusive.
    pub fn deployment_frequency(&self, per_day: f64) -> Level {
        level_by(|i| per_day >= self.deployment_frequency_per_day[i])
    }

    /// Lower is better; bounds exclusive.
    pub fn lead_time(&self, median_seconds: f64) -> Level {
        level_by(|i| median_seconds < self.lead_time_seconds[i])
    }

    /// Lower is better; bounds inclusive.
    pub fn change_failure_rate(&self, rate: f64) -> Level {
        level_by(|i| rate <= self.change_failure_rate[i])
    }

    /// Lower is better; bounds exclusive.
    pub fn recovery_time(&self, median_seconds: f64) -> Level {
        level_by(|i| median_seconds < self.recovery_time_seconds[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_boundaries_follow_the_definitions() {
        let t = Thresholds::default();
        assert_eq!(t.deployment_frequency(1.0), Level::Elite);
        assert_eq!(t.deployment_frequency(1.0 / 7.0), Level::High);
        assert_eq!(t.deployment_frequency(0.1), Level::Medium);
        assert_eq!(t.deployment_frequency(0.0), Level::Low);
        assert_eq!(t.lead_time(DAY - 1.0), Level::Elite);
        assert_eq!(t.lead_time(DAY), Level::High);
        assert_eq!(t.lead_time(30.0 * DAY), Level::Low);
        assert_eq!(t.change_failure_rate(0.05), Level::Elite);
        assert_eq!(t.change_failure_rate(0.15), Level::Medium);
        assert_eq!(t.change_failure_rate(0.151), Level::Low);
        assert_eq!(t.recovery_time(HOUR), Level::High);
        assert_eq!(t.recovery_time(7.0 * DAY), Level::Low);
    }
}

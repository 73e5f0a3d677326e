//! `Window`: one evaluation window `(now - W, now]` and its label.

use crate::domain::Timestamp;

const SECONDS_PER_DAY: i64 = 86_400;

/// An evaluation window of `seconds` length, labelled as configured (`7d`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// The label of the window's metrics, as configured (`7d`).
    pub label: String,
    /// The window's length in seconds.
    pub seconds: i64,
}

impl Window {
    /// `Window::days(7)` is labelled `7d`.
    pub fn days(days: i64) -> Self {
        Window {
            label: format!("{days}d"),
            seconds: days * SECONDS_PER_DAY,
        }
    }

    /// The default windows: 7d, 30d, 90d.
    pub fn defaults() -> Vec<Window> {
        vec![Window::days(7), Window::days(30), Window::days(90)]
    }

    /// The window's length in days (fractional for sub-day windows).
    pub fn days_f64(&self) -> f64 {
        self.seconds as f64 / SECONDS_PER_DAY as f64
    }

    /// Whether `at` lies in `(now - W, now]`: start exclusive, end inclusive.
    pub fn contains(&self, now: Timestamp, at: Timestamp) -> bool {
        at.0 > now.0 - self.seconds && at.0 <= now.0
    }

    /// The exclusive start `now - W`.
    pub fn start(&self, now: Timestamp) -> Timestamp {
        Timestamp(now.0 - self.seconds)
    }
}

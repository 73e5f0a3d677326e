//! The report's period from untrusted text: the window (`--window`, `?window=`) and
//! its end (`--until`). Both are validated and bounded here, so the command line and
//! the live page accept exactly the same values and say the same thing about a bad
//! one.
//!
//! It does not read the clock: "now" is the caller's.

use crate::config::Duration;
use crate::domain::Timestamp;
use crate::dora::Window;
use chrono::{NaiveDate, NaiveTime};
use std::fmt;

/// The window when none is given: the middle default window, a month, the usual
/// rhythm of a delivery review.
pub(crate) const DEFAULT_WINDOW: &str = "30d";

/// The shortest report window: one hour. Anything shorter holds too few events to
/// say anything, and a per-day frequency over seconds is noise.
pub(crate) const MIN_WINDOW_SECONDS: u64 = 3_600;

/// The longest report window: 366 days, a year including a leap day. The report
/// also evaluates the period before it, so it reads up to two years back, which is
/// about what a store holds; it bounds the `?window=` of the live page too.
pub(crate) const MAX_WINDOW_SECONDS: u64 = 366 * 86_400;

/// The earliest accepted `--until`: the Unix epoch (timestamps are seconds since it).
const MIN_UNTIL_YEAR: i32 = 1970;
/// The latest accepted `--until` year; later dates are typing mistakes.
const MAX_UNTIL_YEAR: i32 = 9999;

const WINDOW_EXPECTED: &str =
    "a window like \"7d\" or \"30d\" (a whole number, then s, m, h or d), from 1h to 366d";

/// Why a window or an end date was refused; the message quotes a bounded prefix of
/// the input and says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(String);

impl InvalidInput {
    fn new(expected: &str, got: &str) -> Self {
        let got: String = got.chars().take(crate::domain::MAX_QUOTED_INPUT).collect();
        InvalidInput(format!("expected {expected}, got {got:?}"))
    }
}

/// A validated report window: a configuration-style duration from 1h to 366d.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportWindow(Duration);

impl ReportWindow {
    /// Parses `<integer><unit>` (`s`, `m`, `h`, `d`) within
    /// [[`MIN_WINDOW_SECONDS`], [`MAX_WINDOW_SECONDS`]].
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let duration =
            Duration::parse(text).map_err(|_| InvalidInput::new(WINDOW_EXPECTED, text))?;
        if !(MIN_WINDOW_SECONDS..=MAX_WINDOW_SECONDS).contains(&duration.as_secs()) {
            return Err(InvalidInput::new(WINDOW_EXPECTED, text));
        }
        Ok(ReportWindow(duration))
    }

    /// A window from an already valid configuration duration, if within bounds.
    pub(crate) fn from_duration(duration: Duration) -> Option<Self> {
        (MIN_WINDOW_SECONDS..=MAX_WINDOW_SECONDS)
            .contains(&duration.as_secs())
            .then_some(ReportWindow(duration))
    }

    pub fn duration(self) -> Duration {
        self.0
    }

    pub fn seconds(self) -> i64 {
        self.0.to_window().seconds
    }

    /// The engine's window, labelled as written.
    pub fn to_window(self) -> Window {
        self.0.to_window()
    }
}

impl Default for ReportWindow {
    fn default() -> Self {
        ReportWindow::parse(DEFAULT_WINDOW).expect("the default window is valid")
    }
}

impl fmt::Display for ReportWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for ReportWindow {
    type Err = InvalidInput;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ReportWindow::parse(text)
    }
}

const UNTIL_EXPECTED: &str = "an RFC 3339 time (2024-03-31T18:00:00Z) or a date (2024-03-31, \
     meaning the end of that day UTC), between 1970 and 9999";

/// Parses `--until`: an RFC 3339 time (any offset; sub-seconds dropped), or a date
/// `YYYY-MM-DD` meaning the **end of that day in UTC**, `YYYY-MM-DDT23:59:59Z`, so
/// that a window ending on a date covers whole days up to and including it.
pub(crate) fn parse_until(text: &str) -> Result<Timestamp, InvalidInput> {
    let invalid = || InvalidInput::new(UNTIL_EXPECTED, text);
    let at = if is_plain_date(text) {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| invalid())?;
        let end_of_day = NaiveTime::from_hms_opt(23, 59, 59).expect("valid time");
        date.and_time(end_of_day).and_utc()
    } else {
        chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|_| invalid())?
            .to_utc()
    };
    use chrono::Datelike;
    if !(MIN_UNTIL_YEAR..=MAX_UNTIL_YEAR).contains(&at.year()) {
        return Err(invalid());
    }
    Ok(Timestamp::from_datetime(at))
}

/// Exactly `DDDD-DD-DD` (chrono alone would also take `2024-3-1`).
fn is_plain_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_bounded_durations() {
        for ok in ["1h", "60m", "3600s", "7d", "30d", "366d", "8784h"] {
            assert!(ReportWindow::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "30", "0d", "59m", "367d", "8785h", "30 d", "1.5d", "-7d", "2w", "30D", "1h30m",
        ] {
            let error = ReportWindow::parse(bad).unwrap_err().to_string();
            assert!(error.contains("from 1h to 366d"), "{bad}: {error}");
        }
        let window = ReportWindow::parse("30d").unwrap();
        assert_eq!(window.to_window().label, "30d");
        assert_eq!(window.seconds(), 30 * 86_400);
        assert_eq!(ReportWindow::default(), window);
        assert_eq!(window.to_string(), "30d");
    }

    #[test]
    fn a_huge_window_is_quoted_briefly() {
        let error = ReportWindow::parse(&"9".repeat(10_000)).unwrap_err();
        assert!(error.to_string().len() < 300);
    }

    #[test]
    fn until_is_a_time_or_the_end_of_a_day() {
        let parse = |t| parse_until(t).map(|ts| ts.to_rfc3339());
        assert_eq!(parse("2024-03-31").unwrap(), "2024-03-31T23:59:59Z");
        assert_eq!(
            parse("2024-03-31T12:00:00Z").unwrap(),
            "2024-03-31T12:00:00Z"
        );
        assert_eq!(
            parse("2024-03-31T12:00:00.750+02:00").unwrap(),
            "2024-03-31T10:00:00Z"
        );
        assert_eq!(parse("2024-02-29").unwrap(), "2024-02-29T23:59:59Z");
        for bad in [
            "",
            "yesterday",
            "2024-3-1",
            "2024-02-30",
            "2023-02-29",
            "31/03/2024",
            "2024-03-31 12:00",
            "1969-12-31",
            "2024-03-31T25:00:00Z",
        ] {
            let error = parse_until(bad).unwrap_err().to_string();
            assert!(error.contains("RFC 3339"), "{bad}: {error}");
        }
    }
}

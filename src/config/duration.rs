//! `Duration`: a positive length of time written `<integer><unit>` (`30s`, `5m`, `2h`,
//! `90d`), as every duration in the configuration file is.
//!
//! The syntax is deliberately strict: one unsigned integer without sign, spaces or
//! leading zeros, then exactly one unit letter. No fractions, no compound values
//! (`1h30m`), no words (`5 minutes`). Zero is rejected because every duration in the
//! configuration needs a positive value. The value keeps its count and unit, so it
//! prints back exactly as written; that text is the `window` label of the metrics.
//! This module does not know what a duration is used for (see `rules` for the
//! relations between them).

use crate::domain::DomainError;
use crate::dora::Window;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The longest duration accepted: 100 years. Nothing in the configuration is
/// meaningfully longer, and the bound keeps `now - duration` far from overflow.
pub const MAX_DURATION_SECONDS: u64 = 36_500 * SECONDS_PER_DAY;

const SECONDS_PER_MINUTE: u64 = 60;
const SECONDS_PER_HOUR: u64 = 3_600;
const SECONDS_PER_DAY: u64 = 86_400;

const EXPECTED_SYNTAX: &str = r#"a duration like "30s", "5m", "2h" or "90d""#;
const EXPECTED_POSITIVE: &str = "a positive duration";
const EXPECTED_BOUNDED: &str = "a duration of at most 36500d";

/// The unit letter of a [`Duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// `s`
    Seconds,
    /// `m`
    Minutes,
    /// `h`
    Hours,
    /// `d` (always 86 400 seconds: the configuration knows no calendar)
    Days,
}

impl Unit {
    fn from_letter(letter: char) -> Option<Unit> {
        match letter {
            's' => Some(Unit::Seconds),
            'm' => Some(Unit::Minutes),
            'h' => Some(Unit::Hours),
            'd' => Some(Unit::Days),
            _ => None,
        }
    }

    /// `s`, `m`, `h` or `d`.
    pub const fn letter(self) -> char {
        match self {
            Unit::Seconds => 's',
            Unit::Minutes => 'm',
            Unit::Hours => 'h',
            Unit::Days => 'd',
        }
    }

    /// Seconds in one unit.
    pub const fn seconds(self) -> u64 {
        match self {
            Unit::Seconds => 1,
            Unit::Minutes => SECONDS_PER_MINUTE,
            Unit::Hours => SECONDS_PER_HOUR,
            Unit::Days => SECONDS_PER_DAY,
        }
    }
}

/// A positive duration of at most [`MAX_DURATION_SECONDS`], as written in the file.
///
/// Two durations are equal when they are written the same way (`7d` and `168h` are
/// different values of the same length; compare [`Duration::as_secs`] for length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Duration {
    count: u64,
    unit: Unit,
}

impl Duration {
    /// A duration from its parts; `None` when zero or longer than the maximum.
    pub const fn new(count: u64, unit: Unit) -> Option<Duration> {
        match count.checked_mul(unit.seconds()) {
            Some(seconds) if count > 0 && seconds <= MAX_DURATION_SECONDS => {
                Some(Duration { count, unit })
            }
            _ => None,
        }
    }

    /// Parses `<integer><unit>`; see the module documentation for the exact rules.
    pub fn parse(text: &str) -> Result<Duration, DomainError> {
        let syntax = || DomainError::new(EXPECTED_SYNTAX, text);
        let letter = text.chars().next_back().ok_or_else(syntax)?;
        let unit = Unit::from_letter(letter).ok_or_else(syntax)?;
        let digits = &text[..text.len() - letter.len_utf8()];
        let well_formed = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !well_formed {
            return Err(syntax());
        }
        // All digits: parsing can only fail by overflowing u64.
        let count: u64 = digits
            .parse()
            .map_err(|_| DomainError::new(EXPECTED_BOUNDED, text))?;
        if count == 0 {
            return Err(DomainError::new(EXPECTED_POSITIVE, text));
        }
        Duration::new(count, unit).ok_or_else(|| DomainError::new(EXPECTED_BOUNDED, text))
    }

    /// The number before the unit.
    pub const fn count(self) -> u64 {
        self.count
    }

    pub const fn unit(self) -> Unit {
        self.unit
    }

    /// The length in seconds (at most [`MAX_DURATION_SECONDS`]).
    pub const fn as_secs(self) -> u64 {
        self.count * self.unit.seconds()
    }

    /// The same length as a standard library duration (for timers).
    pub const fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.as_secs())
    }

    /// The engine's evaluation window of this length, labelled as written (`7d`).
    pub fn to_window(self) -> Window {
        Window {
            label: self.to_string(),
            // At most MAX_DURATION_SECONDS, far below i64::MAX.
            seconds: i64::try_from(self.as_secs()).unwrap_or(i64::MAX),
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit.letter())
    }
}

impl std::str::FromStr for Duration {
    type Err = DomainError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Duration::parse(text)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

impl DurationVisitor {
    fn bare_number<E: serde::de::Error>(number: impl fmt::Display) -> E {
        E::custom(format_args!(
            "expected {EXPECTED_SYNTAX} (a quoted string with a unit), got the number {number}"
        ))
    }
}

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED_SYNTAX)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
        Duration::parse(text).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<Duration, E> {
        Err(Self::bare_number(number))
    }

    fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Duration, E> {
        Err(Self::bare_number(number))
    }

    fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<Duration, E> {
        Err(Self::bare_number(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        let cases: &[(&str, u64)] = &[
            ("1s", 1),
            ("30s", 30),
            ("5m", 300),
            ("2h", 7_200),
            ("1d", 86_400),
            ("90d", 7_776_000),
            ("36500d", MAX_DURATION_SECONDS),
            ("3153600000s", MAX_DURATION_SECONDS),
        ];
        for (text, seconds) in cases {
            let duration = Duration::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(duration.as_secs(), *seconds, "{text}");
            assert_eq!(duration.to_string(), *text, "prints back as written");
        }
    }

    #[test]
    fn rejects_everything_else() {
        let cases: &[(&str, &str)] = &[
            ("", EXPECTED_SYNTAX),
            ("5", EXPECTED_SYNTAX),
            ("m", EXPECTED_SYNTAX),
            ("5 minutes", EXPECTED_SYNTAX),
            ("5 m", EXPECTED_SYNTAX),
            (" 5m", EXPECTED_SYNTAX),
            ("5m ", EXPECTED_SYNTAX),
            ("5M", EXPECTED_SYNTAX),
            ("5ms", EXPECTED_SYNTAX),
            ("1w", EXPECTED_SYNTAX),
            ("1y", EXPECTED_SYNTAX),
            ("1h30m", EXPECTED_SYNTAX),
            ("1.5h", EXPECTED_SYNTAX),
            ("-5m", EXPECTED_SYNTAX),
            ("+5m", EXPECTED_SYNTAX),
            ("05m", EXPECTED_SYNTAX),
            ("٣d", EXPECTED_SYNTAX),
            ("5é", EXPECTED_SYNTAX),
            ("0s", EXPECTED_POSITIVE),
            ("0d", EXPECTED_POSITIVE),
            ("36501d", EXPECTED_BOUNDED),
            ("3153600001s", EXPECTED_BOUNDED),
            ("18446744073709551615d", EXPECTED_BOUNDED),
            ("99999999999999999999999s", EXPECTED_BOUNDED),
        ];
        for (text, expected) in cases {
            let err = Duration::parse(text).expect_err(text);
            assert_eq!(err.expected, *expected, "{text:?}");
        }
    }

    #[test]
    fn error_quotes_the_input() {
        let err = Duration::parse("5 minutes").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"expected a duration like "30s", "5m", "2h" or "90d", got "5 minutes""#
        );
    }

    #[test]
    fn equality_is_by_spelling_and_length_is_by_seconds() {
        let week = Duration::parse("7d").unwrap();
        let hours = Duration::parse("168h").unwrap();
        assert_ne!(week, hours);
        assert_eq!(week.as_secs(), hours.as_secs());
    }

    #[test]
    fn converts_to_a_window_labelled_as_written() {
        let window = Duration::parse("168h").unwrap().to_window();
        assert_eq!(window.label, "168h");
        assert_eq!(window.seconds, 604_800);
        assert_eq!(Duration::parse("7d").unwrap().to_window(), Window::days(7));
    }

    #[test]
    fn constructor_enforces_the_same_bounds() {
        assert_eq!(Duration::new(0, Unit::Days), None);
        assert_eq!(Duration::new(36_501, Unit::Days), None);
        assert_eq!(Duration::new(u64::MAX, Unit::Hours), None);
        assert_eq!(Duration::new(5, Unit::Minutes).unwrap().to_string(), "5m");
    }

    #[test]
    fn serde_round_trip_and_bare_numbers() {
        #[derive(Serialize, Deserialize)]
        struct Doc {
            d: Duration,
        }
        let doc: Doc = toml::from_str(r#"d = "2h""#).unwrap();
        assert_eq!(toml::to_string(&doc).unwrap().trim(), r#"d = "2h""#);
        let err = toml::from_str::<Doc>("d = 300").err().unwrap();
        assert!(
            err.message().contains("got the number 300"),
            "{}",
            err.message()
        );
    }
}

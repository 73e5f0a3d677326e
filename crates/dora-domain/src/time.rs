//! `Timestamp`: whole seconds since the Unix epoch, the engine's only notion of time.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A point in time in whole seconds since 1970-01-01T00:00:00Z (UTC).
///
/// The DORA definitions work in whole seconds; an `i64` keeps events small and
/// comparisons cheap. Convert at the border with [`Timestamp::from_datetime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Seconds since the epoch.
    #[inline]
    pub const fn seconds(self) -> i64 {
        self.0
    }

    /// Drops sub-second precision.
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Timestamp(at.timestamp())
    }

    /// Parses an RFC 3339 timestamp such as GitHub's `2024-01-31T12:00:00Z`.
    pub fn parse_rfc3339(text: &str) -> Result<Self, super::DomainError> {
        DateTime::parse_from_rfc3339(text)
            .map(|at| Timestamp(at.timestamp()))
            .map_err(|_| super::DomainError::new("an RFC 3339 timestamp", text))
    }

    /// The same instant as a chrono value (for rendering).
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.0, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// `2024-01-31T12:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

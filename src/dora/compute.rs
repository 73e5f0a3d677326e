//! placeholder
use super::{EngineConfig, Events, Snapshot};
use crate::domain::Timestamp;

/// Computes every metric of every scope at `now`.
pub fn compute(_events: &Events, _config: &EngineConfig, _now: Timestamp) -> Snapshot {
    unimplemented!()
}

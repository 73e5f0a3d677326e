//! The deliveries already done, so that one delivered twice (GitHub's
//! "Redeliver", a retry after a timeout, a replay) is done once: each
//! `X-GitHub-Delivery` id is remembered for [`DELIVERY_MEMORY`], at most
//! [`MAX_REMEMBERED_DELIVERIES`] of them (the oldest are forgotten first).
//!
//! Ids are kept as 16-byte digests, so memory is bounded whatever the ids look
//! like (well under 10 MB when full). Pure bookkeeping: instants are arguments, no I/O.

use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// How long a delivery id is remembered: GitHub offers to redeliver the
/// deliveries of the past three days; a week covers those and a replay of an
/// older capture.
pub const DELIVERY_MEMORY: Duration = Duration::from_secs(7 * 24 * 3600);

/// The most delivery ids remembered: a week of an organisation receiving a
/// delivery every six seconds, day and night.
pub const MAX_REMEMBERED_DELIVERIES: usize = 100_000;

/// The longest `X-GitHub-Delivery` accepted (GitHub's are 36-character GUIDs).
pub const MAX_DELIVERY_ID_BYTES: usize = 128;

/// A remembered id.
type Key = [u8; 16];

/// Delivery ids seen, with when.
#[derive(Debug)]
pub struct Deliveries {
    capacity: usize,
    memory: Duration,
    seen: HashSet<Key>,
    /// The same ids in the order they were first seen.
    order: VecDeque<(Key, Instant)>,
}

impl Default for Deliveries {
    fn default() -> Self {
        Deliveries::new(MAX_REMEMBERED_DELIVERIES, DELIVERY_MEMORY)
    }
}

impl Deliveries {
    /// An empty memory of at most `capacity` ids, each kept for `memory`.
    pub fn new(capacity: usize, memory: Duration) -> Deliveries {
        Deliveries {
            capacity: capacity.max(1),
            memory,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Remembers `id` at `now`: true when it is new (not seen within the memory),
    /// false for a delivery done before.
    pub fn remember(&mut self, id: &str, now: Instant) -> bool {
        self.forget_expired(now);
        let key = key(id);
        if self.seen.contains(&key) {
            return false;
        }
        while self.order.len() >= self.capacity {
            self.forget_oldest();
        }
        self.seen.insert(key);
        self.order.push_back((key, now));
        true
    }

    /// How many ids are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }

    fn forget_expired(&mut self, now: Instant) {
        while let Some((_, at)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.memory {
                break;
            }
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((key, _)) = self.order.pop_front() {
            self.seen.remove(&key);
        }
    }
}

fn key(id: &str) -> Key {
    let digest = Sha256::digest(id.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Whether `id` is a usable delivery id: 1 to [`MAX_DELIVERY_ID_BYTES`] visible
/// ASCII characters (so it can be logged as it is).
pub fn is_delivery_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_DELIVERY_ID_BYTES && id.iter().all(u8::is_ascii_graphic)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn an_id_is_new_once_within_the_memory_and_again_after_it() {
        let mut deliveries = Deliveries::default();
        let start = Instant::now();
        let id = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
        assert!(deliveries.remember(id, start));
        assert!(!deliveries.remember(id, start));
        assert!(!deliveries.remember(id, start + DELIVERY_MEMORY - HOUR));
        assert!(deliveries.remember("another", start + HOUR));
        assert!(deliveries.remember(id, start + DELIVERY_MEMORY));
        assert_eq!(deliveries.len(), 2);
        // Expired ids are forgotten as time passes, not only when seen again.
        assert!(deliveries.remember("late", start + 3 * DELIVERY_MEMORY));
        assert_eq!(deliveries.len(), 1);
    }

    #[test]
    fn memory_is_bounded_and_forgets_the_oldest_first() {
        let mut deliveries = Deliveries::new(3, DELIVERY_MEMORY);
        let now = Instant::now();
        for id in ["a", "b", "c", "d"] {
            assert!(deliveries.remember(id, now));
        }
        assert_eq!(deliveries.len(), 3);
        assert!(!deliveries.remember("d", now));
        assert!(!deliveries.remember("b", now));
        assert!(deliveries.remember("a", now), "the oldest was forgotten");
    }

    #[test]
    fn the_default_memory_holds_its_capacity() {
        let mut deliveries = Deliveries::default();
        let now = Instant::now();
        for n in 0..MAX_REMEMBERED_DELIVERIES + 10 {
            deliveries.remember(&format!("id-{n}"), now);
        }
        assert_eq!(deliveries.len(), MAX_REMEMBERED_DELIVERIES);
        assert!(!deliveries.remember(&format!("id-{}", MAX_REMEMBERED_DELIVERIES + 9), now));
        assert!(deliveries.remember("id-0", now));
    }

    #[test]
    fn delivery_ids_are_short_visible_ascii() {
        assert!(is_delivery_id(b"72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        assert!(!is_delivery_id(b""));
        assert!(!is_delivery_id(b"a b"));
        assert!(!is_delivery_id(b"line\nbreak"));
        assert!(!is_delivery_id("é".as_bytes()));
        assert!(is_delivery_id(&[b'x'; MAX_DELIVERY_ID_BYTES]));
        assert!(!is_delivery_id(&[b'x'; MAX_DELIVERY_ID_BYTES + 1]));
    }
}

//! `CommitSha` (a full 40-hex-digit Git object id, stored as 20 bytes) and `ShaPrefix`
//! (the 7-40 hex digits an incident names as its root cause).

use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Hex digits in a full SHA-1 object id.
const FULL_SHA_HEX_LEN: usize = 40;
/// The shortest root-cause prefix the definitions accept.
const MIN_PREFIX_HEX_LEN: usize = 7;

/// A full commit id. Stored as raw bytes: the engine holds millions of them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitSha([u8; 20]);

impl CommitSha {
    /// The bytes as two big-endian integers, whose order is the bytes' order.
    #[inline]
    fn order_key(&self) -> (u128, u32) {
        let mut high = [0u8; 16];
        let mut low = [0u8; 4];
        high.copy_from_slice(&self.0[..16]);
        low.copy_from_slice(&self.0[16..]);
        (u128::from_be_bytes(high), u32::from_be_bytes(low))
    }
}

/// Lexicographic byte order, computed on integers: sorting and binary searching
/// millions of shas is the engine's hottest comparison, and this avoids a `memcmp`
/// call per comparison.
impl Ord for CommitSha {
    // Inlined across crates: the engine sorts and searches millions of shas.
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl PartialOrd for CommitSha {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl CommitSha {
    /// Accepts exactly 40 hex digits, either case.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let error = || DomainError::new("a 40-digit hex commit sha", text);
        let bytes = text.as_bytes();
        if bytes.len() != FULL_SHA_HEX_LEN {
            return Err(error());
        }
        let mut out = [0u8; 20];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or_else(error)?;
            let lo = hex_value(pair[1]).ok_or_else(error)?;
            out[i] = (hi << 4) | lo;
        }
        Ok(CommitSha(out))
    }

    /// The sha with these 20 bytes.
    #[inline]
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        CommitSha(bytes)
    }

    /// The sha's 20 bytes.
    #[inline]
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitSha({self})")
    }
}

impl TryFrom<String> for CommitSha {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CommitSha::parse(&value)
    }
}

impl From<CommitSha> for String {
    fn from(value: CommitSha) -> Self {
        value.to_string()
    }
}

/// A commit named by 7 to 40 hex digits; a short one matches every sha it starts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShaPrefix(String);

impl ShaPrefix {
    /// Accepts 7-40 hex digits, either case; stored lowercase.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let ok = (MIN_PREFIX_HEX_LEN..=FULL_SHA_HEX_LEN).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(ShaPrefix(text.to_ascii_lowercase()))
        } else {
            Err(DomainError::new("7 to 40 hex digits", text))
        }
    }

    /// The prefix as lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `sha` starts with this prefix.
    pub fn matches(&self, sha: &CommitSha) -> bool {
        let (low, high) = self.bounds();
        low <= *sha && *sha <= high
    }

    /// The smallest and largest full shas this prefix matches (for binary search in
    /// a sorted list of shas).
    pub fn bounds(&self) -> (CommitSha, CommitSha) {
        let pad = |fill: u8| {
            let mut text = self.0.clone().into_bytes();
            text.resize(FULL_SHA_HEX_LEN, fill);
            let text = String::from_utf8(text).unwrap_or_default();
            CommitSha::parse(&text).unwrap_or(CommitSha([0; 20]))
        };
        (pad(b'0'), pad(b'f'))
    }
}

impl TryFrom<String> for ShaPrefix {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ShaPrefix::parse(&value)
    }
}

impl From<ShaPrefix> for String {
    fn from(value: ShaPrefix) -> Self {
        value.0
    }
}

impl fmt::Display for ShaPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

    #[test]
    fn sha_round_trips_in_lowercase() {
        let sha = CommitSha::parse(&SHA.to_uppercase()).unwrap();
        assert_eq!(sha.to_string(), SHA);
    }

    #[test]
    fn sha_rejects_wrong_length_and_non_hex() {
        for bad in [
            "",
            "6dcb09b",
            &SHA[..39],
            &format!("{SHA}0"),
            &SHA.replace('6', "g"),
        ] {
            assert!(CommitSha::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn order_is_byte_order() {
        let mut a = [0u8; 20];
        let mut b = [0u8; 20];
        for i in [0, 15, 16, 19] {
            a[i] = 1;
            b[i] = 2;
            assert!(CommitSha(a) < CommitSha(b));
            assert_eq!(CommitSha(a).cmp(&CommitSha(a)), std::cmp::Ordering::Equal);
            b[i] = 1;
        }
    }

    #[test]
    fn prefixes_of_7_to_40_digits_match_by_prefix() {
        let sha = CommitSha::parse(SHA).unwrap();
        assert!(ShaPrefix::parse("6DCB09B").unwrap().matches(&sha));
        assert!(ShaPrefix::parse(SHA).unwrap().matches(&sha));
        assert!(!ShaPrefix::parse("6dcb09c").unwrap().matches(&sha));
        assert!(ShaPrefix::parse("6dcb09").is_err());
        assert!(ShaPrefix::parse("xyzxyzx").is_err());
    }
}

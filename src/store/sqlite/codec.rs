//! Conversions between domain values and their SQLite column encodings: shas as
//! 20-byte BLOBs, sha lists packed into one BLOB, enums as their snake_case names,
//! labels as JSON text. Decoding returns `None` for a malformed value; the caller
//! turns it into [`StoreError::Corrupt`](crate::store::StoreError::Corrupt).

use crate::domain::{CommitSha, CompareStatus, DeploymentOutcome, Timestamp};

/// Bytes of one sha in a BLOB.
pub(crate) const SHA_BYTES: usize = 20;

pub(crate) fn sha_from_blob(blob: &[u8]) -> Option<CommitSha> {
    let bytes: [u8; SHA_BYTES] = blob.try_into().ok()?;
    Some(CommitSha::from_bytes(bytes))
}

/// Packs shas into one BLOB of 20 bytes each, reusing `out`.
pub(crate) fn pack_shas_into(shas: &[CommitSha], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(shas.len() * SHA_BYTES);
    for sha in shas {
        out.extend_from_slice(sha.as_bytes());
    }
}

#[cfg(test)]
pub(crate) fn pack_shas(shas: &[CommitSha]) -> Vec<u8> {
    let mut out = Vec::new();
    pack_shas_into(shas, &mut out);
    out
}

/// Unpacks a BLOB of 20-byte shas into `out` (cleared first); `false` when its
/// length is not a multiple of 20.
pub(crate) fn unpack_shas_into(blob: &[u8], out: &mut Vec<CommitSha>) -> bool {
    out.clear();
    if blob.len() % SHA_BYTES != 0 {
        return false;
    }
    out.extend(blob.chunks_exact(SHA_BYTES).filter_map(sha_from_blob));
    true
}

pub(crate) fn unpack_shas(blob: &[u8]) -> Option<Vec<CommitSha>> {
    let mut out = Vec::new();
    unpack_shas_into(blob, &mut out).then_some(out)
}

/// `(outcome, outcome_at)` columns.
pub(crate) fn outcome_columns(outcome: DeploymentOutcome) -> (&'static str, Option<i64>) {
    match outcome {
        DeploymentOutcome::Pending => ("pending", None),
        DeploymentOutcome::Succeeded { at } => ("succeeded", Some(at.0)),
        DeploymentOutcome::Failed { at } => ("failed", Some(at.0)),
    }
}

pub(crate) fn outcome_from_columns(outcome: &str, at: Option<i64>) -> Option<DeploymentOutcome> {
    match (outcome, at) {
        ("pending", None) => Some(DeploymentOutcome::Pending),
        ("succeeded", Some(at)) => Some(DeploymentOutcome::Succeeded { at: Timestamp(at) }),
        ("failed", Some(at)) => Some(DeploymentOutcome::Failed { at: Timestamp(at) }),
        _ => None,
    }
}

pub(crate) fn compare_status_column(status: CompareStatus) -> &'static str {
    status.as_str()
}

pub(crate) fn labels_column(labels: &[String]) -> String {
    // Serializing a list of strings cannot fail.
    serde_json::to_string(labels).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn labels_from_column(text: &str) -> Option<Vec<String>> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_lists_round_trip() {
        let shas = vec![
            CommitSha::from_bytes([1; 20]),
            CommitSha::from_bytes([2; 20]),
        ];
        let blob = pack_shas(&shas);
        assert_eq!(blob.len(), 40);
        assert_eq!(unpack_shas(&blob), Some(shas));
        assert_eq!(unpack_shas(&[]), Some(vec![]));
        assert_eq!(unpack_shas(&[0; 21]), None);
    }

    #[test]
    fn outcomes_round_trip_and_reject_mismatches() {
        for outcome in [
            DeploymentOutcome::Pending,
            DeploymentOutcome::Succeeded { at: Timestamp(5) },
            DeploymentOutcome::Failed { at: Timestamp(-5) },
        ] {
            let (text, at) = outcome_columns(outcome);
            assert_eq!(outcome_from_columns(text, at), Some(outcome));
        }
        assert_eq!(outcome_from_columns("pending", Some(1)), None);
        assert_eq!(outcome_from_columns("succeeded", None), None);
        assert_eq!(outcome_from_columns("exploded", Some(1)), None);
    }

    #[test]
    fn labels_round_trip() {
        let labels = vec!["incident".to_owned(), "sev:1 \"quoted\" ✓".to_owned()];
        assert_eq!(labels_from_column(&labels_column(&labels)), Some(labels));
        assert_eq!(labels_from_column("not json"), None);
    }
}

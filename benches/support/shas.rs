//! The synthetic histories' shared randomness: a seeded splitmix64 step and
//! the deterministic sha of a repository's n-th commit. No history here.

use dora_collector::domain::CommitSha;

/// One step of splitmix64 on `state`.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The sha of commit `commit` of repository `repo`, the same on every run.
pub fn sha_of(repo: u64, commit: u64) -> CommitSha {
    let mut state = repo.wrapping_mul(1_000_003) ^ commit.wrapping_mul(0x2545_F491_4F6C_DD1D);
    let mut bytes = [0u8; 20];
    for chunk in bytes.chunks_mut(8) {
        let value = splitmix(&mut state).to_le_bytes();
        chunk.copy_from_slice(&value[..chunk.len()]);
    }
    CommitSha::from_bytes(bytes)
}

//! The GitHub source's reading of GitHub's raw states as DORA events: which
//! deployment statuses make a deployment successful, failed or still pending,
//! which workflow-run conclusions do, and which issue-body line names a root
//! cause. Pure functions; the source applies them at its border (`models.rs`,
//! `deployments.rs`, `workflow_runs.rs`, `incidents.rs`).
//!
//! They are the collector's interpretation: the simulator and the tests'
//! reference implementation keep readings of their own.

use crate::domain::{DeploymentOutcome, ShaPrefix, StatusState, Timestamp};

/// The Deployments-API rule: successful once any status is `success` (deploy time =
/// the earliest `success`); failed when there is no `success` and the latest
/// non-`inactive` status is `failure` or `error`; otherwise pending.
/// `statuses` may come in any order.
pub fn outcome_from_statuses(statuses: &[(StatusState, Timestamp)]) -> DeploymentOutcome {
    let first_success = statuses
        .iter()
        .filter(|(state, _)| *state == StatusState::Success)
        .map(|(_, at)| *at)
        .min();
    if let Some(at) = first_success {
        return DeploymentOutcome::Succeeded { at };
    }
    // Latest by time; among equal times the later entry wins (sources list
    // statuses oldest first, GitHub newest first, so ties are rare and harmless).
    let latest = statuses
        .iter()
        .filter(|(state, _)| *state != StatusState::Inactive)
        .max_by_key(|(_, at)| *at);
    match latest {
        Some((StatusState::Failure | StatusState::Error, at)) => {
            DeploymentOutcome::Failed { at: *at }
        }
        _ => DeploymentOutcome::Pending,
    }
}

/// The workflow-run rule: `completed` + `success` is a deployment at `updated_at`;
/// `failure` is a failed attempt; anything else (still running, cancelled, skipped)
/// is not a deployment yet (`Pending`) — a cancelled run is never retried by
/// GitHub, but it also never deployed, so it simply never counts.
pub fn outcome_from_workflow_run(
    status: &str,
    conclusion: Option<&str>,
    updated_at: Timestamp,
) -> DeploymentOutcome {
    match (status, conclusion) {
        ("completed", Some("success")) => DeploymentOutcome::Succeeded { at: updated_at },
        ("completed", Some("failure")) => DeploymentOutcome::Failed { at: updated_at },
        _ => DeploymentOutcome::Pending,
    }
}

/// The most of an issue body the root-cause scan reads; a hostile body cannot make
/// it do unbounded work.
pub const MAX_SCANNED_BODY_BYTES: usize = 64 * 1024;

/// Finds a line `root cause: <sha>` (case-insensitive; the sha may be wrapped in
/// backticks and followed by punctuation) and returns the sha prefix. The first
/// line that names a valid 7-40 hex digit sha wins.
pub fn parse_root_cause(body: &str) -> Option<ShaPrefix> {
    const KEY: &str = "root cause:";
    let mut end = body.len().min(MAX_SCANNED_BODY_BYTES);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].lines().find_map(|line| {
        let line = line.trim_start();
        let head = line.get(..KEY.len())?;
        if !head.eq_ignore_ascii_case(KEY) {
            return None;
        }
        let token = line[KEY.len()..].split_whitespace().next()?;
        let token = token
            .trim_matches('`')
            .trim_end_matches(['.', ',', ';', ')', '`']);
        ShaPrefix::parse(token).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp(s)
    }

    #[test]
    fn earliest_success_is_the_deploy_time() {
        use StatusState::*;
        let cases: &[(&[(StatusState, Timestamp)], DeploymentOutcome)] = &[
            (&[], DeploymentOutcome::Pending),
            (
                &[(Pending, t(1)), (InProgress, t(2))],
                DeploymentOutcome::Pending,
            ),
            (
                &[(Success, t(5)), (Success, t(3)), (Inactive, t(9))],
                DeploymentOutcome::Succeeded { at: t(3) },
            ),
            (
                &[(Failure, t(2)), (Success, t(4))],
                DeploymentOutcome::Succeeded { at: t(4) },
            ),
            (
                &[(Pending, t(1)), (Failure, t(2))],
                DeploymentOutcome::Failed { at: t(2) },
            ),
            (
                &[(Error, t(2)), (Inactive, t(5))],
                DeploymentOutcome::Failed { at: t(2) },
            ),
            (
                &[(Failure, t(2)), (Queued, t(3))],
                DeploymentOutcome::Pending,
            ),
            (&[(Inactive, t(2))], DeploymentOutcome::Pending),
        ];
        for (statuses, expected) in cases {
            assert_eq!(outcome_from_statuses(statuses), *expected, "{statuses:?}");
        }
    }

    #[test]
    fn workflow_run_conclusions() {
        assert_eq!(
            outcome_from_workflow_run("completed", Some("success"), t(7)),
            DeploymentOutcome::Succeeded { at: t(7) }
        );
        assert_eq!(
            outcome_from_workflow_run("completed", Some("failure"), t(7)),
            DeploymentOutcome::Failed { at: t(7) }
        );
        assert_eq!(
            outcome_from_workflow_run("in_progress", None, t(7)),
            DeploymentOutcome::Pending
        );
        assert_eq!(
            outcome_from_workflow_run("completed", Some("cancelled"), t(7)),
            DeploymentOutcome::Pending
        );
    }

    #[test]
    fn root_cause_lines() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Root Cause: abc1234", Some("abc1234")),
            (
                "summary\n  root cause: `ABCDEF0123`.\nmore",
                Some("abcdef0123"),
            ),
            ("root cause: abc123", None),
            (
                "root cause: not-a-sha\nroot cause: 1234567",
                Some("1234567"),
            ),
            ("the root cause: abc1234", None),
            ("no such line", None),
        ];
        for (body, expected) in cases {
            let got = parse_root_cause(body);
            assert_eq!(got.as_ref().map(ShaPrefix::as_str), *expected, "{body:?}");
        }
    }
}

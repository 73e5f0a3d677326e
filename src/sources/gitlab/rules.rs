//! The GitLab source's reading of GitLab's states as DORA events: which
//! deployment and pipeline statuses make a deployment successful, failed,
//! still pending or nothing at all; which environments are production (by name
//! or tier); which issues are incidents; which merge requests are rework. Pure
//! functions applied at the source's border.
//!
//! They are the collector's interpretation: the simulator keeps its own
//! (`dora-sim`'s `gitlab::model`), and the tests' reference another.

use crate::config::LabelName;
use crate::domain::{DeploymentOutcome, Environment, Timestamp};

/// The tier that makes an environment a production one.
pub const PRODUCTION_TIER: &str = "production";

/// The issue type that makes an issue an incident.
pub const INCIDENT_TYPE: &str = "incident";

/// A GitLab deployment's `status` as an outcome, with `finished_at` (the
/// deployment's or its job's) as the time, else `updated_at`: `success`
/// deployed; `failed` is a failed attempt; `created`, `running` and `blocked`
/// are not final (look again); `canceled` and `skipped` never deploy (`None`:
/// not a deployment at all). An unknown status is treated as not final.
pub fn outcome_of_deployment(
    status: &str,
    finished_at: Option<Timestamp>,
    updated_at: Timestamp,
) -> Option<DeploymentOutcome> {
    let at = finished_at.unwrap_or(updated_at);
    match status {
        "success" => Some(DeploymentOutcome::Succeeded { at }),
        "failed" => Some(DeploymentOutcome::Failed { at }),
        "canceled" | "skipped" => None,
        _ => Some(DeploymentOutcome::Pending),
    }
}

/// A pipeline's `status` as an outcome, the same way: `success` deployed at
/// `finished_at`, `failed` failed; `canceled`, `skipped` and `manual` (waiting
/// for someone, which a deploy pipeline left there never did) are no
/// deployment; everything else is still running.
pub fn outcome_of_pipeline(
    status: &str,
    finished_at: Option<Timestamp>,
    updated_at: Timestamp,
) -> Option<DeploymentOutcome> {
    match status {
        "manual" => None,
        other => outcome_of_deployment(other, finished_at, updated_at),
    }
}

/// Whether a pipeline's `status` is final (its `finished_at` is worth a read).
pub fn pipeline_is_final(status: &str) -> bool {
    matches!(status, "success" | "failed" | "canceled" | "skipped")
}

/// Whether an environment is a production one: named in `configured`
/// (case-insensitively) or of tier `production`.
pub fn is_production(name: &str, tier: Option<&str>, configured: &[Environment]) -> bool {
    tier == Some(PRODUCTION_TIER) || configured.iter().any(|p| p.matches(name))
}

/// Whether an issue is an incident: of type `incident`, or carrying one of
/// `labels` (compared case-insensitively, unlike GitLab's own filter).
pub fn is_incident(issue_type: &str, issue_labels: &[String], labels: &[LabelName]) -> bool {
    issue_type.eq_ignore_ascii_case(INCIDENT_TYPE) || has_label(issue_labels, labels)
}

/// Whether any of `labels` is among `wanted` (case-insensitive).
pub fn has_label(labels: &[String], wanted: &[LabelName]) -> bool {
    labels
        .iter()
        .any(|l| wanted.iter().any(|w| w.as_str().eq_ignore_ascii_case(l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp(s)
    }

    #[test]
    fn deployment_statuses() {
        let cases: &[(&str, Option<i64>, Option<DeploymentOutcome>)] = &[
            (
                "success",
                Some(5),
                Some(DeploymentOutcome::Succeeded { at: t(5) }),
            ),
            (
                "success",
                None,
                Some(DeploymentOutcome::Succeeded { at: t(9) }),
            ),
            (
                "failed",
                Some(6),
                Some(DeploymentOutcome::Failed { at: t(6) }),
            ),
            ("running", None, Some(DeploymentOutcome::Pending)),
            ("created", None, Some(DeploymentOutcome::Pending)),
            ("blocked", None, Some(DeploymentOutcome::Pending)),
            ("canceled", Some(7), None),
            ("skipped", None, None),
        ];
        for (status, finished, expected) in cases {
            assert_eq!(
                outcome_of_deployment(status, finished.map(t), t(9)),
                *expected,
                "{status}"
            );
        }
        assert_eq!(outcome_of_pipeline("manual", None, t(1)), None);
        assert_eq!(
            outcome_of_pipeline("waiting_for_resource", None, t(1)),
            Some(DeploymentOutcome::Pending)
        );
    }

    #[test]
    fn production_by_name_or_tier_and_incidents_by_type_or_label() {
        let configured = [Environment::parse("Production").unwrap()];
        assert!(is_production("production", Some("staging"), &configured));
        assert!(is_production("live", Some("production"), &configured));
        assert!(!is_production("live", None, &configured));
        let labels = [LabelName::parse("Incident").unwrap()];
        assert!(is_incident("incident", &[], &[]));
        assert!(is_incident("issue", &["incident".to_owned()], &labels));
        assert!(!is_incident("issue", &["bug".to_owned()], &labels));
    }
}

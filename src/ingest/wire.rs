//! The push API's JSON (`docs/push.md`): a request body (one item or an array of
//! up to [`MAX_ITEMS`]) → validated items, each with the domain event it becomes
//! and the digests of its content; or the first bad field and why.
//!
//! Pure: no I/O, no clock (`now` is an argument), no configuration beyond what is
//! passed in. Every value is untrusted: unknown fields are refused, every list
//! and string is bounded, and an error names its field with a path such as
//! `[3].commits[0].sha`. Whether the client may write the repository, and
//! whether the repository takes pushed deployments, is the handler's question.

use crate::domain::batch::{cut_to_bytes, CommitRecord, PushKind, PushedEvent, PUSH_DIGEST_BYTES};
use crate::domain::{
    CommitSha, Deployment, DeploymentOutcome, DeploymentSource, Environment, Incident,
    IncidentScope, IncidentSource, RepoName, ScopedIncident, ShaPrefix, Team, Timestamp,
};
use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::marker::PhantomData;

/// The most items one request may carry.
pub const MAX_ITEMS: usize = 1_000;

/// The most commits one pushed deployment may carry (the body's size bounds
/// them first: a commit takes about 150 bytes of JSON).
pub const MAX_COMMITS: usize = 10_000;

/// The most parents one pushed commit may name (an octopus merge of many
/// branches has a dozen).
pub const MAX_PARENTS: usize = 64;

/// The longest id a client may give an item.
pub const MAX_ID_BYTES: usize = 256;

/// The longest incident title kept.
pub const MAX_TITLE_BYTES: usize = 1_024;

/// The longest commit `message` accepted (the store keeps its first line, cut to
/// its own limit).
pub const MAX_COMMIT_MESSAGE_BYTES: usize = 1_024;

/// The longest `url` accepted.
pub const MAX_URL_BYTES: usize = 2_048;

/// How far in the future a timestamp may lie (clocks of CI runners drift).
pub const MAX_FUTURE_SECONDS: i64 = 5 * 60;

/// The longest error message answered (serde quotes what it could not read).
pub const MAX_ERROR_BYTES: usize = 512;

/// A request that cannot be kept, and the first field to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    /// What is wrong (may quote a bounded prefix of the value sent).
    pub error: String,
    /// The field's path (`[2].sha`, `commits[0].parents[1]`); `None` when the
    /// body as a whole is wrong (not JSON, not an object or array).
    pub field: Option<String>,
}

impl BadRequest {
    fn at(field: impl Into<String>, error: impl Into<String>) -> Self {
        BadRequest {
            error: error.into(),
            field: Some(field.into()),
        }
    }
}

/// One item that passed every check of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidItem {
    /// The path prefix of the item in the body (`[3].` or empty for one object).
    pub path: String,
    /// The client's id of the item.
    pub id: String,
    /// The digest of everything sent.
    pub digest: [u8; PUSH_DIGEST_BYTES],
    /// The digest without the allowed later update (an incident's resolution).
    pub base_digest: [u8; PUSH_DIGEST_BYTES],
    /// The event it becomes (id 0: the store numbers it).
    pub event: PushedEvent,
    /// A deployment sent without `commits` (allowed only where a code host
    /// gives them, or for a failed attempt).
    pub without_commits: bool,
}

impl ValidItem {
    /// The path of `field` of this item.
    pub fn field(&self, field: &str) -> String {
        format!("{}{field}", self.path)
    }
}

/// Parses and checks a body of `kind` at evaluation time `now`.
pub fn parse(kind: PushKind, body: &[u8], now: Timestamp) -> Result<Vec<ValidItem>, BadRequest> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let many = match first {
        Some(b'[') => true,
        Some(b'{') => false,
        _ => {
            return Err(BadRequest {
                error: "expected a JSON object or an array of JSON objects".to_owned(),
                field: None,
            })
        }
    };
    match kind {
        PushKind::Deployment => parse_items::<DeploymentWire>(body, many, now),
        PushKind::Incident => parse_items::<IncidentWire>(body, many, now),
    }
}

/// A wire item: checks the rules between its fields and becomes a valid item.
trait WireItem: DeserializeOwned {
    fn validate(self, path: String, now: Timestamp) -> Result<ValidItem, BadRequest>;
}

fn parse_items<T: WireItem>(
    body: &[u8],
    many: bool,
    now: Timestamp,
) -> Result<Vec<ValidItem>, BadRequest> {
    let items: Vec<T> = if many {
        deserialize::<Bounded<T, MAX_ITEMS>>(body)?.0
    } else {
        vec![deserialize::<T>(body)?]
    };
    if items.is_empty() {
        return Err(BadRequest {
            error: "expected at least one item".to_owned(),
            field: None,
        });
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let path = if many {
                format!("[{i}].")
            } else {
                String::new()
            };
            item.validate(path, now)
        })
        .collect()
}

/// serde's error with the path of the value it is about.
fn deserialize<T: DeserializeOwned>(body: &[u8]) -> Result<T, BadRequest> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut json).map_err(|error| {
        let mut field = String::new();
        for segment in error.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    field.push_str(&format!("[{index}]"));
                }
                serde_path_to_error::Segment::Map { key } => {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(&crate::domain::DomainError::new("", key).got);
                }
                // An enum variant or a segment serde could not name: not a field.
                _ => {}
            }
        }
        let inner = error.into_inner();
        let message = inner.to_string();
        // A missing or unknown field is reported at its object: name it.
        for marker in ["missing field `", "unknown field `"] {
            if let Some(name) = message
                .strip_prefix(marker)
                .and_then(|rest| rest.split('`').next())
            {
                let name = crate::domain::DomainError::new("", name).got;
                if field.rsplit(['.', ']']).next() != Some(name.as_str()) {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(&name);
                }
            }
        }
        let field = (!field.is_empty()).then_some(field);
        BadRequest {
            error: cut_to_bytes(&message, MAX_ERROR_BYTES).to_owned(),
            field,
        }
    })?;
    json.end().map_err(|error| BadRequest {
        error: error.to_string(),
        field: None,
    })?;
    Ok(value)
}

/// A list of at most `MAX` values, refused as soon as it grows longer (before the
/// rest is read).
#[derive(Debug, Clone)]
struct Bounded<T, const MAX: usize>(Vec<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Bounded<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedVisitor<T, MAX> {
            type Value = Bounded<T, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of at most {MAX} values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(value) = seq.next_element()? {
                    if out.len() == MAX {
                        return Err(de::Error::custom(format_args!(
                            "expected at most {MAX} values"
                        )));
                    }
                    out.push(value);
                }
                Ok(Bounded(out))
            }
        }
        deserializer.deserialize_seq(BoundedVisitor(PhantomData))
    }
}

/// A string of 1 to `MAX` bytes without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
struct Text<const MAX: usize>(String);

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() || text.len() > MAX || text.chars().any(char::is_control) {
            return Err(de::Error::custom(format_args!(
                "expected 1 to {MAX} bytes without control characters"
            )));
        }
        Ok(Text(text))
    }
}

/// An RFC 3339 time, kept in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
struct Time(Timestamp);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text)
            .map(Time)
            .map_err(de::Error::custom)
    }
}

fn not_in_future(field: String, at: Time, now: Timestamp) -> Result<(), BadRequest> {
    if at.0 .0 > now.0.saturating_add(MAX_FUTURE_SECONDS) {
        Err(BadRequest::at(
            field,
            format!(
                "{} is more than {MAX_FUTURE_SECONDS} seconds in the future (the collector's \
                 time is {now})",
                at.0
            ),
        ))
    } else {
        Ok(())
    }
}

/// `status` of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Success,
    Failure,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CommitWire {
    sha: CommitSha,
    #[serde(serialize_with = "serialize_bounded")]
    parents: Bounded<CommitSha, MAX_PARENTS>,
    authored_at: Time,
    /// The subject (first line) of the commit message: a `Revert "` one makes
    /// its deployment rework. Optional; absent from the digest when absent, so
    /// items pushed without it keep their identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<Text<MAX_COMMIT_MESSAGE_BYTES>>,
}

fn serialize_bounded<S: serde::Serializer, T: Serialize, const MAX: usize>(
    value: &Bounded<T, MAX>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.0.serialize(serializer)
}

fn serialize_optional_bounded<S: serde::Serializer, T: Serialize, const MAX: usize>(
    value: &Option<Bounded<T, MAX>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.as_ref().map(|v| &v.0).serialize(serializer)
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DeploymentWire {
    id: Text<MAX_ID_BYTES>,
    repository: RepoName,
    environment: Environment,
    sha: CommitSha,
    status: Status,
    finished_at: Time,
    #[serde(default)]
    started_at: Option<Time>,
    #[serde(default)]
    url: Option<Text<MAX_URL_BYTES>>,
    #[serde(default, serialize_with = "serialize_optional_bounded")]
    commits: Option<Bounded<CommitWire, MAX_COMMITS>>,
}

/// The digest of an item's canonical form (its wire type serialized again:
/// fields in declaration order, times in seconds, shas in lowercase), so that
/// the same content sent differently (`+01:00`, upper-case hex) is the same.
fn digest_of(kind: PushKind, item: &impl Serialize) -> [u8; PUSH_DIGEST_BYTES] {
    let canonical = serde_json::to_vec(item).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(kind.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(&canonical);
    hasher.finalize().into()
}

impl WireItem for DeploymentWire {
    fn validate(self, path: String, now: Timestamp) -> Result<ValidItem, BadRequest> {
        let at = |field: &str| format!("{path}{field}");
        not_in_future(at("finished_at"), self.finished_at, now)?;
        if let Some(started) = self.started_at {
            not_in_future(at("started_at"), started, now)?;
            if started.0 > self.finished_at.0 {
                return Err(BadRequest::at(
                    at("started_at"),
                    format!("{} is after finished_at {}", started.0, self.finished_at.0),
                ));
            }
        }
        if let Some(commits) = &self.commits {
            for (i, commit) in commits.0.iter().enumerate() {
                not_in_future(
                    at(&format!("commits[{i}].authored_at")),
                    commit.authored_at,
                    now,
                )?;
            }
        }
        let digest = digest_of(PushKind::Deployment, &self);
        let outcome = match self.status {
            Status::Success => DeploymentOutcome::Succeeded {
                at: self.finished_at.0,
            },
            Status::Failure => DeploymentOutcome::Failed {
                at: self.finished_at.0,
            },
        };
        let without_commits = self.commits.is_none() && self.status == Status::Success;
        let commits = self
            .commits
            .map(|commits| {
                commits
                    .0
                    .into_iter()
                    .map(|c| {
                        let message = c.message.as_ref().map_or("", |m| m.0.as_str());
                        CommitRecord::new(c.sha, c.parents.0, c.authored_at.0, message)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ValidItem {
            id: self.id.0,
            digest,
            base_digest: digest,
            event: PushedEvent::Deployment {
                deployment: Deployment {
                    source: DeploymentSource::Push,
                    repository: self.repository,
                    id: 0,
                    environment: self.environment,
                    sha: self.sha,
                    created_at: self.started_at.unwrap_or(self.finished_at).0,
                    outcome,
                },
                commits,
            },
            without_commits,
            path,
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct IncidentWire {
    id: Text<MAX_ID_BYTES>,
    #[serde(default)]
    repository: Option<RepoName>,
    #[serde(default)]
    team: Option<Team>,
    created_at: Time,
    #[serde(default)]
    resolved_at: Option<Time>,
    #[serde(default)]
    root_cause: Option<ShaPrefix>,
    #[serde(default)]
    title: Option<Text<MAX_TITLE_BYTES>>,
    #[serde(default)]
    url: Option<Text<MAX_URL_BYTES>>,
}

impl WireItem for IncidentWire {
    fn validate(self, path: String, now: Timestamp) -> Result<ValidItem, BadRequest> {
        let at = |field: &str| format!("{path}{field}");
        let owner = match (&self.repository, &self.team) {
            (Some(repository), None) => Ok(repository.clone()),
            (None, Some(team)) => Err(team.clone()),
            (Some(_), Some(_)) => {
                return Err(BadRequest::at(
                    at("team"),
                    "expected either repository or team, not both",
                ))
            }
            (None, None) => {
                return Err(BadRequest::at(
                    at("repository"),
                    "missing field `repository` (or `team`)",
                ))
            }
        };
        not_in_future(at("created_at"), self.created_at, now)?;
        if let Some(resolved) = self.resolved_at {
            not_in_future(at("resolved_at"), resolved, now)?;
            if resolved.0 < self.created_at.0 {
                return Err(BadRequest::at(
                    at("resolved_at"),
                    format!("{} is before created_at {}", resolved.0, self.created_at.0),
                ));
            }
        }
        let digest = digest_of(PushKind::Incident, &self);
        let open = IncidentWire {
            resolved_at: None,
            ..self.clone()
        };
        let base_digest = digest_of(PushKind::Incident, &open);
        Ok(ValidItem {
            id: self.id.0,
            digest,
            base_digest,
            event: match owner {
                Ok(repository) => PushedEvent::Incident(Incident {
                    source: IncidentSource::Push,
                    repository,
                    number: 0,
                    created_at: self.created_at.0,
                    closed_at: self.resolved_at.map(|t| t.0),
                    labels: Vec::new(),
                    root_cause: self.root_cause,
                }),
                Err(team) => PushedEvent::TeamIncident(ScopedIncident {
                    source: IncidentSource::Push,
                    scope: IncidentScope::Team(team),
                    number: 0,
                    created_at: self.created_at.0,
                    closed_at: self.resolved_at.map(|t| t.0),
                    root_cause: self.root_cause,
                }),
            },
            without_commits: false,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_700_000_000);
    const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

    fn deployment(extra: &str) -> String {
        format!(
            r#"{{"id": "run-1", "repository": "acme/api", "environment": "production",
                "sha": "{SHA}", "status": "success", "finished_at": "2023-11-14T22:00:00Z"{extra}}}"#
        )
    }

    fn bad(kind: PushKind, body: &str) -> BadRequest {
        parse(kind, body.as_bytes(), NOW).unwrap_err()
    }

    #[test]
    fn an_incident_of_a_team_becomes_a_team_incident() {
        let body = r#"{"id": "page-1", "team": "web", "created_at": "2023-11-14T22:00:00Z",
                       "root_cause": "6dcb09b"}"#;
        let items = parse(PushKind::Incident, body.as_bytes(), NOW).unwrap();
        let PushedEvent::TeamIncident(incident) = &items[0].event else {
            panic!("a team's incident: {:?}", items[0].event);
        };
        assert_eq!(
            incident.scope,
            IncidentScope::Team(Team::parse("web").unwrap())
        );
        assert_eq!(incident.closed_at, None);
        assert_eq!(incident.root_cause.as_ref().unwrap().as_str(), "6dcb09b");
        assert_eq!(items[0].event.repository(), None);
    }

    #[test]
    fn a_deployment_becomes_a_pushed_deployment() {
        let items = parse(PushKind::Deployment, deployment("").as_bytes(), NOW).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].id, "run-1");
        assert!(items[0].without_commits);
        let PushedEvent::Deployment { deployment, .. } = &items[0].event else {
            panic!("a deployment");
        };
        assert_eq!(deployment.source, DeploymentSource::Push);
        assert_eq!(
            deployment.outcome,
            DeploymentOutcome::Succeeded {
                at: Timestamp(1_699_999_200)
            }
        );
    }

    #[test]
    fn the_first_bad_field_is_named() {
        let cases: &[(PushKind, String, Option<&str>, &str)] = &[
            (PushKind::Deployment, "nope".into(), None, "JSON object"),
            (PushKind::Deployment, "{".into(), None, "EOF"),
            (PushKind::Deployment, deployment(r#", "extra": 1"#), Some("extra"), "unknown field"),
            (PushKind::Deployment, deployment("").replace(SHA, "abc"), Some("sha"), "40-digit"),
            (PushKind::Deployment, deployment("").replace("success", "ok"), Some("status"), "unknown variant"),
            (PushKind::Deployment, deployment("").replace("2023-11-14T22:00:00Z", "yesterday"), Some("finished_at"), "RFC 3339"),
            (PushKind::Deployment, deployment("").replace("2023-11-14T22:00:00Z", "2030-01-01T00:00:00Z"), Some("finished_at"), "future"),
            (PushKind::Deployment, deployment("").replace(r#""id": "run-1", "#, ""), Some("id"), "missing field"),
            (PushKind::Deployment, format!("[{}, {}]", deployment(""), deployment(r#", "commits": [{"sha": "x"}]"#)), Some("[1].commits[0].sha"), "40-digit"),
            (PushKind::Deployment, format!("[{}]", deployment(r#", "commits": [{"sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e", "parents": [], "authored_at": "2023-11-14T22:00:00Z", "author": "x"}]"#)), Some("[0].commits[0].author"), "unknown field"),
            (PushKind::Deployment, deployment(r#", "started_at": "2023-11-14T22:05:00Z""#), Some("started_at"), "after finished_at"),
            (PushKind::Deployment, "[]".into(), None, "at least one"),
            (PushKind::Deployment, deployment("").replace("\"run-1\"", "7"), Some("id"), "invalid type"),
            (PushKind::Incident, r#"{"id": "i", "created_at": "2023-11-14T22:00:00Z"}"#.into(), Some("repository"), "missing"),
            (PushKind::Incident, r#"{"id": "i", "repository": "acme/api", "created_at": "2023-11-14T22:00:00Z", "root_cause": "abc"}"#.into(), Some("root_cause"), "7 to 40"),
            (PushKind::Incident, r#"{"id": "i", "repository": "acme/api", "created_at": "2023-11-14T22:00:00Z", "resolved_at": "2023-11-14T21:00:00Z"}"#.into(), Some("resolved_at"), "before created_at"),
        ];
        for (kind, body, field, error) in cases {
            let problem = bad(*kind, body);
            assert_eq!(problem.field.as_deref(), *field, "{body}: {problem:?}");
            assert!(problem.error.contains(error), "{body}: {problem:?}");
        }
    }

    /// How many random bodies the parser is given (it must answer each without
    /// panicking; a few seconds in a debug build).
    const RANDOM_BODIES: u32 = 10_000;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: RANDOM_BODIES,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Random bytes, random text shaped like JSON, and valid bodies with a
        /// random value spliced in: every one is parsed or refused, never a panic.
        #[test]
        fn random_bodies_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            text in "[\\[\\]{}\":,0-9a-z \\\\.eE+-]{0,200}",
            splice in "[\\[\\]{}\":,0-9a-f \\.-]{0,40}",
            at in 0usize..200,
            many in proptest::prelude::any::<bool>(),
        ) {
            for kind in [PushKind::Deployment, PushKind::Incident] {
                let _ = parse(kind, &bytes, NOW);
                let _ = parse(kind, text.as_bytes(), NOW);
                let mut body = deployment(r#", "commits": [{"sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e", "parents": [], "authored_at": "2023-11-14T20:00:00Z"}]"#);
                if many {
                    body = format!("[{body}, {body}]");
                }
                let mut cut = at.min(body.len());
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.insert_str(cut, &splice);
                if let Ok(items) = parse(kind, body.as_bytes(), NOW) {
                    proptest::prop_assert!(!items.is_empty() && items.len() <= MAX_ITEMS);
                }
            }
        }
    }

    #[test]
    fn arrays_are_bounded() {
        let one = deployment("");
        let body = format!("[{}]", vec![one.as_str(); MAX_ITEMS + 1].join(","));
        let problem = bad(PushKind::Deployment, &body);
        assert!(problem.error.contains("at most 1000"), "{problem:?}");
        let body = format!("[{}]", vec![one.as_str(); MAX_ITEMS].join(","));
        assert_eq!(
            parse(PushKind::Deployment, body.as_bytes(), NOW)
                .unwrap()
                .len(),
            MAX_ITEMS
        );
    }

    #[test]
    fn digests_ignore_spelling_and_an_incident_resolution_keeps_its_base() {
        let a = parse(PushKind::Deployment, deployment("").as_bytes(), NOW).unwrap();
        let b = deployment("")
            .replace(SHA, &SHA.to_uppercase())
            .replace("2023-11-14T22:00:00Z", "2023-11-14T23:00:00+01:00");
        let b = parse(PushKind::Deployment, b.as_bytes(), NOW).unwrap();
        assert_eq!(a[0].digest, b[0].digest);
        let open = r#"{"id": "i", "repository": "acme/api", "created_at": "2023-11-14T22:00:00Z"}"#;
        let resolved = r#"{"id": "i", "repository": "acme/api", "created_at": "2023-11-14T22:00:00Z", "resolved_at": "2023-11-14T22:10:00Z"}"#;
        let open = &parse(PushKind::Incident, open.as_bytes(), NOW).unwrap()[0];
        let resolved = &parse(PushKind::Incident, resolved.as_bytes(), NOW).unwrap()[0];
        assert_eq!(open.digest, open.base_digest);
        assert_ne!(resolved.digest, resolved.base_digest);
        assert_eq!(resolved.base_digest, open.digest);
    }
}

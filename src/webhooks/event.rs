//! What a verified delivery asks for: its event (`X-GitHub-Event`, read into a
//! bounded set, so it can be a label) and, for the events that change what the
//! collector reads, the repository it is about (`repository.full_name`).
//!
//! A delivery is a hint, not data: nothing of its body but the repository's name
//! is used, and the sync it triggers reads GitHub as the poll does. Pure: no I/O.

use crate::domain::RepoName;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The header naming the event.
pub const EVENT_HEADER: &str = "x-github-event";

/// The `event` label of a delivery: the six events that trigger a sync, `ping`,
/// and `other` for every other (or a missing) event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    Deployment,
    DeploymentStatus,
    WorkflowRun,
    Issues,
    PullRequest,
    Push,
    Ping,
    Other,
}

impl Event {
    /// Every event label, in label order.
    pub const ALL: [Event; 8] = [
        Event::Deployment,
        Event::DeploymentStatus,
        Event::WorkflowRun,
        Event::Issues,
        Event::PullRequest,
        Event::Push,
        Event::Ping,
        Event::Other,
    ];

    /// The event `X-GitHub-Event` names (`None`: no header).
    pub fn from_header(value: Option<&[u8]>) -> Event {
        match value.unwrap_or_default() {
            b"deployment" => Event::Deployment,
            b"deployment_status" => Event::DeploymentStatus,
            b"workflow_run" => Event::WorkflowRun,
            b"issues" => Event::Issues,
            b"pull_request" => Event::PullRequest,
            b"push" => Event::Push,
            b"ping" => Event::Ping,
            _ => Event::Other,
        }
    }

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Event::Deployment => "deployment",
            Event::DeploymentStatus => "deployment_status",
            Event::WorkflowRun => "workflow_run",
            Event::Issues => "issues",
            Event::PullRequest => "pull_request",
            Event::Push => "push",
            Event::Ping => "ping",
            Event::Other => "other",
        }
    }

    /// Whether a delivery of this event may change what a sync reads: a
    /// deployment or its status, a workflow run (deployments from runs), an
    /// issue (incidents), a pull request (lead time, rework), a push (commits).
    pub const fn syncs(self) -> bool {
        !matches!(self, Event::Ping | Event::Other)
    }
}

/// What a delivery's body asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A sync of this repository (as GitHub names it, compared lowercase); `None`
    /// when the name is not a repository name the collector could have
    /// configured.
    Sync(Option<RepoName>),
    /// Nothing: a ping, or an event the collector does not use.
    Nothing,
}

/// The top level of a delivery: only `repository` is looked at (kept raw;
/// everything else is skipped, though the whole body must be JSON).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    repository: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

/// What the body of a delivery of `event` asks for; `Err` (a message without
/// the body's content) when it is not that event's JSON: not a JSON object, or,
/// for an event that syncs, without `repository.full_name`.
pub fn parse(event: Event, body: &[u8]) -> Result<Request, String> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("the body is not a JSON object".to_owned());
    }
    let envelope: Envelope<'_> = serde_json::from_slice(body)
        .map_err(|error| format!("the body is not valid JSON ({})", position(&error)))?;
    if !event.syncs() {
        return Ok(Request::Nothing);
    }
    let missing = || {
        format!(
            "a {} delivery names its repository in repository.full_name (a string)",
            event.as_str()
        )
    };
    let raw = envelope.repository.ok_or_else(missing)?.get();
    if !raw.starts_with('{') {
        return Err(missing());
    }
    let repository: Repository = serde_json::from_str(raw).map_err(|_| missing())?;
    Ok(Request::Sync(RepoName::parse(&repository.full_name).ok()))
}

/// Where JSON stopped being valid, without quoting any of it.
fn position(error: &serde_json::Error) -> String {
    format!("line {} column {}", error.line(), error.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Option<RepoName> {
        Some(RepoName::parse(text).unwrap())
    }

    #[test]
    fn events_map_to_bounded_labels() {
        for event in Event::ALL {
            let parsed = Event::from_header(Some(event.as_str().as_bytes()));
            assert_eq!(parsed, event);
        }
        assert_eq!(Event::from_header(None), Event::Other);
        assert_eq!(Event::from_header(Some(b"release")), Event::Other);
        assert_eq!(Event::from_header(Some(b"Push")), Event::Other);
        assert_eq!(Event::from_header(Some(&[0xff; 3])), Event::Other);
        let syncing: Vec<_> = Event::ALL.into_iter().filter(|e| e.syncs()).collect();
        assert_eq!(syncing.len(), 6);
    }

    #[test]
    fn a_syncing_event_names_its_repository() {
        let body = br#"{"action": "created", "repository": {"id": 1, "full_name": "Acme/API", "owner": {"login": "Acme"}}}"#;
        assert_eq!(
            parse(Event::Deployment, body),
            Ok(Request::Sync(name("acme/api")))
        );
        let odd = br#"{"repository": {"full_name": "not a repository"}}"#;
        assert_eq!(parse(Event::Push, odd), Ok(Request::Sync(None)));
    }

    #[test]
    fn pings_and_other_events_ask_for_nothing_but_must_be_json_objects() {
        let ping = br#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#;
        assert_eq!(parse(Event::Ping, ping), Ok(Request::Nothing));
        let release = br#"{"action": "published", "repository": {"full_name": "acme/api"}}"#;
        assert_eq!(parse(Event::Other, release), Ok(Request::Nothing));
        assert!(parse(Event::Ping, b"zen").is_err());
        assert!(parse(Event::Other, b"[1]").is_err());
        assert!(parse(Event::Other, b"{").is_err());
    }

    #[test]
    fn bodies_that_are_not_the_events_json_are_refused() {
        let cases: &[&[u8]] = &[
            b"",
            b"   ",
            b"payload=%7B%22zen%22%7D",
            b"[]",
            b"null",
            br#"{"repository": "acme/api"}"#,
            br#"{"repository": ["acme/api"]}"#,
            br#"{"repository": null}"#,
            br#"{"repository": {"name": "api"}}"#,
            br#"{"repository": {"full_name": 7}}"#,
            br#"{"repository": {"full_name": "acme/api"}} trailing"#,
            br#"{"repository": {"full_name": "acme/api"}, "repository": {}}"#,
            br#"{"sender": {}}"#,
            &[b'{', 0xff, b'}'],
        ];
        for body in cases {
            let refused = parse(Event::Push, body);
            assert!(refused.is_err(), "{:?}", String::from_utf8_lossy(body));
            assert!(!refused.unwrap_err().contains("acme"), "no body in errors");
        }
    }

    #[test]
    fn githubs_recorded_deliveries_parse() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/webhooks");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("the recorded deliveries") {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_str().unwrap().to_owned();
            let Some(event) = file.split('.').next().filter(|_| file.ends_with(".json")) else {
                continue;
            };
            let body = std::fs::read(&path).unwrap();
            let event = Event::from_header(Some(event.as_bytes()));
            let request = parse(event, &body).unwrap_or_else(|e| panic!("{file}: {e}"));
            match event {
                Event::Ping | Event::Other => assert_eq!(request, Request::Nothing, "{file}"),
                _ => assert!(matches!(request, Request::Sync(Some(_))), "{file}"),
            }
            seen += 1;
        }
        assert_eq!(seen, 42);
    }
}

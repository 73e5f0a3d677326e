//! The simulated Argo CD: applications with their sync history and last
//! operation ([`ArgoCdState`]), served as Argo CD's API server serves them
//! (`GET /api/v1/applications/{name}` and `GET /api/v1/applications`), in the
//! shapes of Argo CD's swagger description (checked by `tests/sim/argocd.rs`
//! against its subset in `tests/fixtures/argocd/`).
//!
//! What it models, from Argo CD's controller and API server:
//! - a successful sync appends a `status.history` entry (`id` one more than
//!   the last kept entry's, else 0; `revision`, `deployStartedAt`,
//!   `deployedAt`, `source`, `initiatedBy`), then the history is cut to the
//!   application's `spec.revisionHistoryLimit` newest entries (10 when unset),
//!   so older syncs are gone from the API ([`ArgoApp::dropped`] counts them);
//! - `status.operationState` is the last operation only: `Running`, then
//!   `Succeeded`, `Failed` or `Error` (a failed sync adds no history entry);
//! - a bearer token (`401` with gRPC code 16 without or with a wrong one); an
//!   application that does not exist is answered `403 permission denied`
//!   (code 7), as Argo CD does when no `project` is given so as not to reveal
//!   which applications exist, and `404` (code 5) when a `project` is given;
//! - `appNamespace` for applications outside Argo CD's own namespace;
//! - timestamps as RFC 3339 seconds in UTC, numbers as JSON numbers, the zero
//!   time as `null`, fields without `omitempty` always present.
//!
//! Not modelled: resources and their health, refresh, watch streams, the rest
//! of the API, RBAC beyond one token that reads everything.

use super::serve::{ApiReply, ApiRequest, CicdApi, UNMATCHED_ROUTE};
use crate::domain::{CommitSha, DeploymentOutcome, Timestamp};
use crate::model::Org;
use crate::server::TokenUse;
use axum::http::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

/// Argo CD's default `spec.revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: u32 = 10;

/// The namespace Argo CD runs in (and its applications by default).
pub const ARGOCD_NAMESPACE: &str = "argocd";

/// The route templates requests are counted under.
pub const ROUTE_APPLICATION: &str = "GET /api/v1/applications/{name}";
/// See [`ROUTE_APPLICATION`].
pub const ROUTE_APPLICATIONS: &str = "GET /api/v1/applications";

/// The phase of an operation (`status.operationState.phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationPhase {
    /// Under way.
    Running,
    /// Being stopped.
    Terminating,
    /// The sync failed (a resource could not be applied, a hook failed).
    Failed,
    /// The sync could not run (manifests could not be generated).
    Error,
    /// Done.
    Succeeded,
}

impl OperationPhase {
    /// Argo CD's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationPhase::Running => "Running",
            OperationPhase::Terminating => "Terminating",
            OperationPhase::Failed => "Failed",
            OperationPhase::Error => "Error",
            OperationPhase::Succeeded => "Succeeded",
        }
    }
}

/// One entry of `status.history`: a successful sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoSync {
    /// Argo CD's id: one more than the last kept entry's.
    pub id: i64,
    /// The revision synced: a commit sha, or a Helm chart version.
    pub revision: String,
    /// When the sync started.
    pub started_at: Timestamp,
    /// When it finished (the deploy time).
    pub deployed_at: Timestamp,
    /// Started by the automated sync policy (else by a user).
    pub automated: bool,
}

/// `status.operationState`: the last operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoOperation {
    /// Its phase.
    pub phase: OperationPhase,
    /// The revision it synced.
    pub revision: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it finished (none while running).
    pub finished_at: Option<Timestamp>,
    /// Argo CD's message.
    pub message: String,
}

/// One application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoApp {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` ([`ARGOCD_NAMESPACE`] unless apps-in-any-namespace).
    pub namespace: String,
    /// `metadata.uid`: a new one when an application is deleted and created again.
    pub uid: String,
    /// `spec.project`.
    pub project: String,
    /// `spec.source.repoURL`: a hint only (the collector is told the repository).
    pub repo_url: String,
    /// `spec.source.path`.
    pub path: String,
    /// `spec.source.targetRevision`.
    pub target_revision: String,
    /// `spec.revisionHistoryLimit`; `None`: Argo CD's default.
    pub revision_history_limit: Option<u32>,
    /// When it was created.
    pub created_at: Timestamp,
    /// `status.history`, oldest first, at most the limit.
    pub history: Vec<ArgoSync>,
    /// `status.operationState`.
    pub operation: Option<ArgoOperation>,
    /// Entries cut from the history so far.
    pub dropped: u64,
}

impl ArgoApp {
    /// An application named `name` (in Argo CD's namespace) whose source is
    /// `repo_url`, with no sync yet.
    pub fn new(name: &str, repo_url: &str, created_at: Timestamp) -> ArgoApp {
        ArgoApp {
            name: name.to_owned(),
            namespace: ARGOCD_NAMESPACE.to_owned(),
            uid: uid_of(name, created_at),
            project: "default".to_owned(),
            repo_url: repo_url.to_owned(),
            path: "deploy".to_owned(),
            target_revision: "HEAD".to_owned(),
            revision_history_limit: None,
            created_at,
            history: Vec::new(),
            operation: None,
            dropped: 0,
        }
    }

    /// The history limit in force.
    pub fn limit(&self) -> usize {
        self.revision_history_limit
            .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT) as usize
    }

    /// A sync of `revision` that started at `started_at` is under way.
    pub fn start_sync(&mut self, revision: &str, started_at: Timestamp) {
        self.operation = Some(ArgoOperation {
            phase: OperationPhase::Running,
            revision: revision.to_owned(),
            started_at,
            finished_at: None,
            message: "waiting for completion of hook batch/Job/migrate".to_owned(),
        });
    }

    /// A sync of `revision` succeeded at `deployed_at`: a history entry, cut to
    /// the limit, and the operation `Succeeded`. Returns the entry's id.
    pub fn sync_succeeded(
        &mut self,
        revision: &str,
        started_at: Timestamp,
        deployed_at: Timestamp,
        automated: bool,
    ) -> i64 {
        let id = self.history.last().map_or(0, |last| last.id + 1);
        self.history.push(ArgoSync {
            id,
            revision: revision.to_owned(),
            started_at,
            deployed_at,
            automated,
        });
        let limit = self.limit();
        if self.history.len() > limit {
            let cut = self.history.len() - limit;
            self.history.drain(..cut);
            self.dropped += cut as u64;
        }
        self.operation = Some(ArgoOperation {
            phase: OperationPhase::Succeeded,
            revision: revision.to_owned(),
            started_at,
            finished_at: Some(deployed_at),
            message: "successfully synced (all tasks run)".to_owned(),
        });
        id
    }

    /// A sync of `revision` ended in `phase` (`Failed` or `Error`) at
    /// `finished_at`: no history entry.
    pub fn sync_failed(
        &mut self,
        revision: &str,
        started_at: Timestamp,
        finished_at: Timestamp,
        phase: OperationPhase,
    ) {
        self.operation = Some(ArgoOperation {
            phase,
            revision: revision.to_owned(),
            started_at,
            finished_at: Some(finished_at),
            message: match phase {
                OperationPhase::Error => {
                    "ComparisonError: failed to generate manifests: rpc error".to_owned()
                }
                _ => "one or more objects failed to apply, reason: admission webhook denied"
                    .to_owned(),
            },
        });
    }

    /// Deleted and created again at `at`: a new uid, no history, no operation.
    pub fn recreate(&mut self, at: Timestamp) {
        self.uid = uid_of(&self.name, at);
        self.created_at = at;
        self.history.clear();
        self.operation = None;
    }
}

/// A stable, uuid-shaped uid.
fn uid_of(name: &str, at: Timestamp) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{name}@{}", at.0));
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// One step of an application's life, for replaying a history into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgoEvent {
    /// A sync started ([`ArgoApp::start_sync`]).
    Started {
        /// The revision.
        revision: String,
        /// When.
        at: Timestamp,
    },
    /// A sync succeeded ([`ArgoApp::sync_succeeded`]).
    Succeeded {
        /// The revision.
        revision: String,
        /// When it started.
        started_at: Timestamp,
        /// When it finished.
        at: Timestamp,
    },
    /// A sync failed ([`ArgoApp::sync_failed`]).
    Failed {
        /// The revision.
        revision: String,
        /// When it started.
        started_at: Timestamp,
        /// When it failed.
        at: Timestamp,
        /// `Failed` or `Error`.
        phase: OperationPhase,
    },
}

impl ArgoEvent {
    /// When the event happened.
    pub fn at(&self) -> Timestamp {
        match self {
            ArgoEvent::Started { at, .. }
            | ArgoEvent::Succeeded { at, .. }
            | ArgoEvent::Failed { at, .. } => *at,
        }
    }

    /// When the sync it is part of started.
    pub fn started_at(&self) -> Timestamp {
        match self {
            ArgoEvent::Started { at, .. } => *at,
            ArgoEvent::Succeeded { started_at, .. } | ArgoEvent::Failed { started_at, .. } => {
                *started_at
            }
        }
    }

    /// Applies the event to `app`.
    pub fn apply(&self, app: &mut ArgoApp) {
        match self {
            ArgoEvent::Started { revision, at } => app.start_sync(revision, *at),
            ArgoEvent::Succeeded {
                revision,
                started_at,
                at,
            } => {
                app.sync_succeeded(revision, *started_at, *at, true);
            }
            ArgoEvent::Failed {
                revision,
                started_at,
                at,
                phase,
            } => app.sync_failed(revision, *started_at, *at, *phase),
        }
    }
}

/// The syncs of an application that deploys repository `repo` of `org` to
/// `environment`: one per deployment the simulator gave GitHub, by the
/// simulator's own reading of its statuses (a success is a successful sync at
/// the deploy time; a failure a failed one, every second one `Error`; one still
/// under way a running sync), in the order they happened. Replaying them into
/// an application and polling between gives the collector the deployments
/// GitHub's Deployments API gives.
pub fn events_from_github(org: &Org, repo: usize, environment: &str) -> Vec<ArgoEvent> {
    let mut events = Vec::new();
    let mut failures = 0u32;
    for deployment in org.repos[repo]
        .deployments
        .iter()
        .filter(|d| &*d.environment == environment)
    {
        let revision = deployment.sha.to_string();
        let started_at = deployment.created_at;
        events.push(match deployment.outcome() {
            DeploymentOutcome::Succeeded { at } => ArgoEvent::Succeeded {
                revision,
                started_at: started_at.min(at),
                at,
            },
            DeploymentOutcome::Failed { at } => {
                failures += 1;
                ArgoEvent::Failed {
                    revision,
                    started_at: started_at.min(at),
                    at,
                    phase: if failures % 2 == 0 {
                        OperationPhase::Error
                    } else {
                        OperationPhase::Failed
                    },
                }
            }
            DeploymentOutcome::Pending => ArgoEvent::Started {
                revision,
                at: started_at,
            },
        });
    }
    // Stable: GitHub's order breaks ties of equal times.
    events.sort_by_key(ArgoEvent::at);
    events
}

/// The served Argo CD: its applications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgoCdState {
    /// Every application.
    pub applications: Vec<ArgoApp>,
}

impl ArgoCdState {
    /// The application `name` in `namespace` (Argo CD's own when `None`).
    pub fn app(&self, name: &str, namespace: Option<&str>) -> Option<&ArgoApp> {
        let namespace = namespace.unwrap_or(ARGOCD_NAMESPACE);
        self.applications
            .iter()
            .find(|a| a.name == name && a.namespace == namespace)
    }

    /// [`ArgoCdState::app`], to change.
    pub fn app_mut(&mut self, name: &str, namespace: Option<&str>) -> Option<&mut ArgoApp> {
        let namespace = namespace.unwrap_or(ARGOCD_NAMESPACE);
        self.applications
            .iter_mut()
            .find(|a| a.name == name && a.namespace == namespace)
    }
}

/// Whether `revision` is shaped like a git commit (Argo CD shows a chart
/// version otherwise).
fn is_commit(revision: &str) -> bool {
    CommitSha::parse(revision).is_ok()
}

fn time(at: Timestamp) -> Value {
    Value::String(at.to_rfc3339())
}

fn source(app: &ArgoApp, revision: Option<&str>) -> Value {
    let target = revision
        .filter(|r| !is_commit(r))
        .unwrap_or(&app.target_revision);
    if revision.is_some_and(|r| !is_commit(r)) {
        // A Helm chart from a chart repository: the revision is its version.
        json!({"repoURL": "https://charts.example.com", "chart": app.name, "targetRevision": target})
    } else {
        json!({"repoURL": app.repo_url, "path": app.path, "targetRevision": target})
    }
}

fn initiator(automated: bool) -> Value {
    if automated {
        json!({"automated": true})
    } else {
        json!({"username": "admin"})
    }
}

/// The application as `GET /api/v1/applications/{name}` answers.
pub fn application_json(app: &ArgoApp) -> Value {
    let destination = json!({"server": "https://kubernetes.default.svc", "namespace": app.name});
    let current = app
        .history
        .last()
        .map(|h| h.revision.clone())
        .unwrap_or_default();
    let history: Vec<Value> = app
        .history
        .iter()
        .map(|h| {
            json!({
                "revision": h.revision,
                "deployedAt": time(h.deployed_at),
                "id": h.id,
                "source": source(app, Some(&h.revision)),
                "deployStartedAt": time(h.started_at),
                "initiatedBy": initiator(h.automated),
            })
        })
        .collect();
    let mut spec = json!({
        "source": source(app, None),
        "destination": destination,
        "project": app.project,
        "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]},
    });
    if let Some(limit) = app.revision_history_limit {
        spec["revisionHistoryLimit"] = json!(limit);
    }
    let mut status = json!({
        "resources": [
            {"version": "v1", "kind": "Service", "namespace": app.name, "name": app.name, "status": "Synced", "health": {"status": "Healthy"}},
            {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": app.name, "name": app.name, "status": "Synced", "health": {"status": "Healthy"}},
        ],
        "sync": {
            "status": if app.history.is_empty() { "OutOfSync" } else { "Synced" },
            "comparedTo": {"source": source(app, None), "destination": destination},
            "revision": current,
        },
        "health": {"status": "Healthy"},
        "reconciledAt": time(app.history.last().map_or(app.created_at, |h| h.deployed_at)),
        "sourceType": "Kustomize",
        "summary": {"images": [format!("registry.example.com/{}:{}", app.name, current.get(..7).unwrap_or("latest"))]},
        "controllerNamespace": ARGOCD_NAMESPACE,
    });
    if !history.is_empty() {
        status["history"] = Value::Array(history);
    }
    if let Some(operation) = &app.operation {
        let mut state = json!({
            "operation": {
                "sync": {"revision": operation.revision, "syncOptions": ["CreateNamespace=true"]},
                "initiatedBy": initiator(true),
                "retry": {"limit": 2},
            },
            "phase": operation.phase.as_str(),
            "message": operation.message,
            "startedAt": time(operation.started_at),
        });
        if let Some(finished) = operation.finished_at {
            state["finishedAt"] = time(finished);
            state["syncResult"] = json!({
                "resources": [
                    {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": app.name, "name": app.name,
                     "status": if operation.phase == OperationPhase::Succeeded { "Synced" } else { "SyncFailed" },
                     "message": "deployment.apps/configured", "hookPhase": "Running", "syncPhase": "Sync"},
                ],
                "revision": operation.revision,
                "source": source(app, Some(&operation.revision)),
            });
        }
        status["operationState"] = state;
    }
    json!({
        "metadata": {
            "name": app.name,
            "namespace": app.namespace,
            "uid": app.uid,
            "resourceVersion": (app.history.len() as u64 + app.dropped + 1).to_string(),
            "generation": app.history.len() as u64 + app.dropped + 1,
            "creationTimestamp": time(app.created_at),
            "labels": {"team": "platform"},
        },
        "spec": spec,
        "status": status,
    })
}

/// A gRPC-gateway error body, as Argo CD's API server writes it.
fn error(status: StatusCode, code: u32, message: &str, route: &'static str) -> ApiReply {
    ApiReply {
        status,
        body: json!({"error": message, "code": code, "message": message})
            .to_string()
            .into_bytes(),
        content_type: "application/json",
        route,
        headers: Vec::new(),
    }
}

/// The last value of `name` in `query`, decoded.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .last()
}

impl CicdApi for ArgoCdState {
    fn respond(&self, request: &ApiRequest<'_>) -> ApiReply {
        let route = match request.path.strip_prefix("/api/v1/applications") {
            Some("") | Some("/") => ROUTE_APPLICATIONS,
            Some(rest) if rest.starts_with('/') && !rest[1..].contains('/') => ROUTE_APPLICATION,
            _ => UNMATCHED_ROUTE,
        };
        match request.auth {
            TokenUse::Valid => {}
            TokenUse::Missing => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    16,
                    "no session information",
                    route,
                )
            }
            TokenUse::Invalid => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    16,
                    "invalid session: token signature is invalid",
                    route,
                )
            }
        }
        if route == UNMATCHED_ROUTE || request.method != Method::GET {
            return error(StatusCode::NOT_FOUND, 5, "Not Found", route);
        }
        let namespace = query_value(request.query, "appNamespace");
        let project = query_value(request.query, "project")
            .or_else(|| query_value(request.query, "projects"));
        let reply = |value: Value| ApiReply {
            status: StatusCode::OK,
            body: value.to_string().into_bytes(),
            content_type: "application/json",
            route,
            headers: Vec::new(),
        };
        if route == ROUTE_APPLICATIONS {
            let name = query_value(request.query, "name");
            let items: Vec<Value> = self
                .applications
                .iter()
                .filter(|a| name.as_deref().is_none_or(|n| n == a.name))
                .filter(|a| namespace.as_deref().is_none_or(|n| n == a.namespace))
                .filter(|a| project.as_deref().is_none_or(|p| p == a.project))
                .map(application_json)
                .collect();
            return reply(json!({"metadata": {"resourceVersion": "1"}, "items": items}));
        }
        let raw = &request.path["/api/v1/applications/".len()..];
        let name = percent_decode_str(raw).decode_utf8_lossy();
        match self.app(&name, namespace.as_deref()) {
            Some(app) if project.as_deref().is_none_or(|p| p == app.project) => {
                reply(application_json(app))
            }
            Some(_) => error(StatusCode::FORBIDDEN, 7, "permission denied", route),
            // Without a project Argo CD cannot tell "not there" from "not
            // allowed" without revealing which applications exist.
            None if project.is_none() => {
                error(StatusCode::FORBIDDEN, 7, "permission denied", route)
            }
            None => error(
                StatusCode::NOT_FOUND,
                5,
                &format!("applications.argoproj.io \"{name}\" not found"),
                route,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_ids_grow_by_one_and_old_entries_are_dropped_at_the_limit() {
        let mut app = ArgoApp::new("api-prod", "https://github.com/acme/api.git", Timestamp(0));
        app.revision_history_limit = Some(3);
        for n in 0..5 {
            let id = app.sync_succeeded(&format!("{n:040x}"), Timestamp(n), Timestamp(n + 1), true);
            assert_eq!(id, n);
        }
        let ids: Vec<i64> = app.history.iter().map(|h| h.id).collect();
        assert_eq!(ids, [2, 3, 4]);
        assert_eq!(app.dropped, 2);
        app.sync_failed("x", Timestamp(9), Timestamp(10), OperationPhase::Failed);
        assert_eq!(app.history.len(), 3, "a failed sync adds no entry");
        let json = application_json(&app);
        assert_eq!(json["status"]["operationState"]["phase"], "Failed");
        assert_eq!(json["status"]["history"][0]["id"], 2);
        assert_eq!(
            json["status"]["history"][0]["deployedAt"],
            "1970-01-01T00:00:03Z"
        );
        // Limit 0: no history, and ids start again (Argo CD takes the next id
        // from the last kept entry).
        app.revision_history_limit = Some(0);
        app.sync_succeeded("y", Timestamp(11), Timestamp(12), false);
        assert!(app.history.is_empty());
        assert!(application_json(&app)["status"].get("history").is_none());
    }
}

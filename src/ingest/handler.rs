//! The push API's two routes, `POST /api/v1/deployments` and `POST
//! /api/v1/incidents`: the checks in order (token, rate, content type, size,
//! body, fields, repositories), the hand-over to the writer, and the answers
//! with their status codes (`docs/push.md`).
//!
//! The body is read only after the token and the rate passed, never beyond
//! [`MAX_BODY_BYTES`] and never for longer than [`BODY_READ_TIMEOUT`]. Answers
//! are JSON: `202 {"accepted", "duplicates"}` or `{"error", "field"}`. Nothing
//! here logs or answers a token, and nothing of a refused request is stored.

use super::auth::Client;
use super::wire::{self, BadRequest, ValidItem};
use super::writer::WriteError;
use super::{IngestState, PushOutcome, RepositoryDeployments};
use crate::domain::batch::{PushItem, PushKind, PushRequest, PushVerdict, PushedEvent};
use crate::domain::{DeploymentOutcome, Environment, IncidentScope, RepoName, Team};
use crate::request_body::{self, BodyError};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest body read: 1,000 deployments with a few commits each fit.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a body may take to arrive (a slow-loris client is cut off).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// `POST /api/v1/deployments`.
pub(super) async fn deployments(
    State(state): State<Arc<IngestState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    push(&state, PushKind::Deployment, &headers, body).await
}

/// `POST /api/v1/incidents`.
pub(super) async fn incidents(
    State(state): State<Arc<IngestState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    push(&state, PushKind::Incident, &headers, body).await
}

/// The longest query string of `GET /api/v1/deployments/latest` read.
pub const MAX_QUERY_BYTES: usize = 1_024;

/// `GET /api/v1/deployments/latest?repository=R&environment=E`: the latest
/// successful deployment of a repository to an environment (for `notify
/// --commits-from-git`), to a client that may write the repository. Not a
/// push: not counted in the push counters.
pub(super) async fn latest(
    State(state): State<Arc<IngestState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let Some(client) = state.clients.authenticate(authorization) else {
        return Refusal::new(
            StatusCode::UNAUTHORIZED,
            PushOutcome::Unauthorized,
            "missing or invalid bearer token (Authorization: Bearer TOKEN)",
        )
        .into_response();
    };
    match latest_for(&state, client, query.as_deref().unwrap_or("")).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn latest_for(
    state: &IngestState,
    client: &Client,
    query: &str,
) -> Result<Response, Refusal> {
    if let Err(wait) = client.admit(Instant::now()) {
        let mut refusal = Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            PushOutcome::RateLimited,
            "too many requests from this client; retry after the time in Retry-After",
        );
        refusal.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        return Err(refusal);
    }
    let bad = |field: &str, error: String| {
        Refusal::new(StatusCode::BAD_REQUEST, PushOutcome::Invalid, error)
            .at(Some(field.to_owned()))
    };
    if query.len() > MAX_QUERY_BYTES {
        return Err(bad(
            "repository",
            format!("the query is longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let (mut repository, mut environment) = (None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "repository" => repository = Some(value.into_owned()),
            "environment" => environment = Some(value.into_owned()),
            other => {
                let name = crate::domain::DomainError::new("", other).got;
                return Err(bad(&name, format!("unknown parameter {name:?}")));
            }
        }
    }
    let repository = RepoName::parse(repository.as_deref().unwrap_or(""))
        .map_err(|e| bad("repository", e.to_string()))?;
    let environment = Environment::parse(environment.as_deref().unwrap_or(""))
        .map_err(|e| bad("environment", e.to_string()))?;
    if !client.may_write(&repository) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            PushOutcome::Forbidden,
            format!("client {:?} may not read {repository}", client.name),
        )
        .at(Some("repository".to_owned())));
    }
    let (repo, env) = (repository.clone(), environment.clone());
    let found = state
        .reader
        .call(move |store| store.latest_successful_deployment(&repo, &env))
        .await
        .map_err(|error| {
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                PushOutcome::Error,
                format!("the store could not be read: {error}"),
            )
        })?;
    Ok(match found {
        Some(deployment) => {
            let finished_at = match deployment.outcome {
                DeploymentOutcome::Succeeded { at } => at.to_rfc3339(),
                _ => deployment.created_at.to_rfc3339(),
            };
            let body = serde_json::json!({
                "repository": repository.as_str(),
                "environment": environment.as_str(),
                "sha": deployment.sha.to_string(),
                "finished_at": finished_at,
                "source": deployment.source.as_str(),
            });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        None => Refusal::new(
            StatusCode::NOT_FOUND,
            PushOutcome::Invalid,
            format!("no successful deployment of {repository} to {environment} is stored"),
        )
        .into_response(),
    })
}

/// A refusal: its status, JSON body and counter outcome.
struct Refusal {
    status: StatusCode,
    outcome: PushOutcome,
    error: String,
    field: Option<String>,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, outcome: PushOutcome, error: impl Into<String>) -> Self {
        Refusal {
            status,
            outcome,
            error: error.into(),
            field: None,
            retry_after: None,
        }
    }

    fn at(mut self, field: Option<String>) -> Self {
        self.field = field;
        self
    }

    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.error, "field": self.field});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<BadRequest> for Refusal {
    fn from(bad: BadRequest) -> Self {
        Refusal::new(StatusCode::BAD_REQUEST, PushOutcome::Invalid, bad.error).at(bad.field)
    }
}

async fn push(state: &IngestState, kind: PushKind, headers: &HeaderMap, body: Body) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let Some(client) = state.clients.authenticate(authorization) else {
        state.count("", PushOutcome::Unauthorized);
        return Refusal::new(
            StatusCode::UNAUTHORIZED,
            PushOutcome::Unauthorized,
            "missing or invalid bearer token (Authorization: Bearer TOKEN)",
        )
        .into_response();
    };
    let (response, outcome) = match checked(state, client, kind, headers, body).await {
        Ok((accepted, duplicates)) => {
            let outcome = if accepted > 0 || duplicates == 0 {
                PushOutcome::Accepted
            } else {
                PushOutcome::Duplicate
            };
            let body = serde_json::json!({"accepted": accepted, "duplicates": duplicates});
            (
                (StatusCode::ACCEPTED, axum::Json(body)).into_response(),
                outcome,
            )
        }
        Err(refusal) => {
            let outcome = refusal.outcome;
            if outcome != PushOutcome::RateLimited {
                tracing::info!(
                    client = %client.name,
                    kind = kind.as_str(),
                    status = refusal.status.as_u16(),
                    field = refusal.field.as_deref().unwrap_or(""),
                    "refused a push"
                );
            }
            (refusal.into_response(), outcome)
        }
    };
    state.count(&client.name, outcome);
    response
}

/// Every check after the token; `(accepted, duplicates)` once kept.
async fn checked(
    state: &IngestState,
    client: &Client,
    kind: PushKind,
    headers: &HeaderMap,
    body: Body,
) -> Result<(u32, u32), Refusal> {
    if let Err(wait) = client.admit(Instant::now()) {
        let mut refusal = Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            PushOutcome::RateLimited,
            "too many requests from this client; retry after the time in Retry-After",
        );
        refusal.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        return Err(refusal);
    }
    if !request_body::is_json(headers) {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PushOutcome::Invalid,
            "expected Content-Type: application/json",
        ));
    }
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            PushOutcome::TooLarge,
            format!("the body is larger than {MAX_BODY_BYTES} bytes; send fewer items at once"),
        )
    };
    let bytes = match request_body::read(headers, body, MAX_BODY_BYTES, BODY_READ_TIMEOUT).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge) => return Err(too_large()),
        // The server's own body timeout (a pause between two parts of the
        // body) may fire first: the same answer.
        Err(BodyError::TooSlow) => {
            return Err(Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                PushOutcome::Invalid,
                format!(
                    "the body did not arrive within {} seconds",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            ))
        }
        Err(BodyError::Unreadable) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                PushOutcome::Invalid,
                "the body could not be read",
            ))
        }
    };
    let mut items = wire::parse(kind, &bytes, (state.now)())?;
    for item in &mut items {
        check_repository(state, client, item)?;
    }
    let request = PushRequest {
        items: items
            .into_iter()
            .map(|item| PushItem {
                client: client.name.clone(),
                id: item.id,
                digest: item.digest,
                base_digest: item.base_digest,
                event: item.event,
            })
            .collect(),
    };
    let ids: Vec<String> = request.items.iter().map(|i| i.id.clone()).collect();
    let many = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    match state.writer.write(request).await {
        Ok(PushVerdict::Stored {
            inserted,
            updated,
            unchanged,
        }) => Ok((inserted + updated, unchanged)),
        Ok(PushVerdict::Conflict { index }) => {
            let id = ids.get(index).map(String::as_str).unwrap_or("");
            let field = if many {
                format!("[{index}].id")
            } else {
                "id".to_owned()
            };
            Err(Refusal::new(
                StatusCode::CONFLICT,
                PushOutcome::Conflict,
                format!(
                    "id {:?} was pushed before with other content; a new {} needs a new id",
                    crate::domain::DomainError::new("", id).got,
                    kind.as_str()
                ),
            )
            .at(Some(field)))
        }
        Err(error @ WriteError::Stopped) | Err(error @ WriteError::Store(_)) => Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            PushOutcome::Error,
            format!("{error}; nothing was kept, retry later"),
        )),
    }
}

/// The client may write the item's repository (else `403`), and the repository
/// takes pushed deployments (else `409` naming where they come from) with
/// their commits where no code host gives them (else `400`).
/// Commits pushed for a repository whose code host gives them are dropped.
fn check_repository(
    state: &IngestState,
    client: &Client,
    item: &mut ValidItem,
) -> Result<(), Refusal> {
    let repository = match (&item.event, item.event.repository()) {
        (PushedEvent::TeamIncident(incident), _) => {
            return match &incident.scope {
                IncidentScope::Team(team) => check_team(state, client, item, team),
                // The push API only makes incidents of a team.
                IncidentScope::Repositories(_) => Ok(()),
            };
        }
        (_, Some(repository)) => repository.clone(),
        (_, None) => return Ok(()),
    };
    let repository = &repository;
    if !client.may_write(repository) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            PushOutcome::Forbidden,
            format!(
                "client {:?} may not write {repository} (see its repositories patterns)",
                client.name
            ),
        )
        .at(Some(item.field("repository"))));
    }
    if item.event.kind() != PushKind::Deployment {
        return Ok(());
    }
    match state.deployments_of(repository) {
        Some(RepositoryDeployments::Elsewhere(source)) => Err(Refusal::new(
            StatusCode::CONFLICT,
            PushOutcome::Conflict,
            format!(
                "{repository} takes its deployments from {source}; pushing them as well would \
                 count them twice"
            ),
        )
        .at(Some(item.field("repository")))),
        Some(RepositoryDeployments::PushedWithCodeHost) => {
            if let PushedEvent::Deployment { commits, .. } = &mut item.event {
                commits.clear();
            }
            Ok(())
        }
        None if item.without_commits => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            PushOutcome::Invalid,
            format!(
                "missing field `commits`: no code host is configured for {repository}, so a \
                 successful deployment carries its commits (an empty list for a redeploy)"
            ),
        )
        .at(Some(item.field("commits")))),
        None => Ok(()),
    }
}

/// A team's incident: the team is configured (else `400`) and the client may
/// write every repository of it (else `403`).
fn check_team(
    state: &IngestState,
    client: &Client,
    item: &ValidItem,
    team: &Team,
) -> Result<(), Refusal> {
    let Some(repositories) = state.teams.get(team) else {
        let known: Vec<&str> = state.teams.keys().map(Team::as_str).collect();
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            PushOutcome::Invalid,
            format!(
                "unknown team {:?}: a team is known by the repositories configured with it ({})",
                team.as_str(),
                if known.is_empty() {
                    "none are".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        )
        .at(Some(item.field("team"))));
    };
    match repositories.iter().find(|r| !client.may_write(r)) {
        Some(outside) => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            PushOutcome::Forbidden,
            format!(
                "client {:?} may not write incidents of team {:?}: its repository {outside} is \
                 outside the client's repositories patterns",
                client.name,
                team.as_str()
            ),
        )
        .at(Some(item.field("team")))),
        None => Ok(()),
    }
}

//! `POST /webhooks/github`: the checks in order and the answers
//! (`docs/webhooks.md`).
//!
//! 1. `X-Hub-Signature-256` present and well-formed, else `401` (nothing read).
//! 2. The body: at most [`MAX_BODY_BYTES`] (a larger `Content-Length` is refused
//!    before anything is read, `413`), within [`BODY_READ_TIMEOUT`] (`408`), and
//!    no more than [`MAX_BUFFERED_BYTES`] of all deliveries' bodies in memory at
//!    once: a delivery waits for its share at most [`MAX_BUDGET_WAIT`], then
//!    gets `429`.
//! 3. The signature matches the raw body, else `401`.
//! 4. `Content-Type: application/json` (`415`), `X-GitHub-Delivery` and
//!    `X-GitHub-Event` present (`400`), the body the event's JSON (`400`).
//! 5. A delivery id done before: `202` duplicate, nothing done again.
//! 6. `ping`: `200`. An event that syncs, of a configured repository: the sync is
//!    asked for, `202` accepted. Anything else: `202` ignored.
//!
//! Answers are JSON, `{"outcome", "message"}`, shown in GitHub's "Recent
//! Deliveries". Nothing here logs or answers the secret, a signature or the body.

use super::deliveries::is_delivery_id;
use super::event::{self, Event, Request, EVENT_HEADER};
use super::signature::{Signature, SIGNATURE_HEADER};
use super::{WebhookOutcome, WebhookState};
use crate::request_body::{self, BodyError};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

/// The largest body read: GitHub caps a delivery's payload at 25 MB.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// How long a body may take to arrive, as for the push API (a slow-loris client
/// is cut off).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes of delivery bodies held at once (arriving, or read and being
/// checked): two deliveries of the largest size, or thousands of ordinary ones
/// (a few kilobytes each). So 256 connections each sending 25 MiB cannot use up
/// the daemon's memory; a body without `Content-Length` counts as the largest.
pub const MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;

/// How long a delivery waits for its share of [`MAX_BUFFERED_BYTES`]: GitHub
/// gives a delivery 10 s in all, and one that waited longer would have no time
/// left to arrive.
pub const MAX_BUDGET_WAIT: Duration = Duration::from_secs(5);

/// The bytes one permit of the memory budget stands for.
const BUDGET_UNIT: usize = 1024;

/// Permits of the memory budget for a body of `bytes`.
pub(super) fn budget_units(bytes: usize) -> usize {
    bytes.div_ceil(BUDGET_UNIT).max(1)
}

/// The header with the delivery's id.
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// An answer: its status, outcome and message.
struct Answer {
    status: StatusCode,
    outcome: WebhookOutcome,
    message: String,
}

impl Answer {
    fn new(status: StatusCode, outcome: WebhookOutcome, message: impl Into<String>) -> Self {
        Answer {
            status,
            outcome,
            message: message.into(),
        }
    }

    fn into_response(self) -> Response {
        let body = serde_json::json!({"outcome": self.outcome.as_str(), "message": self.message});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(BODY_READ_TIMEOUT.as_secs()),
            );
        }
        response
    }
}

/// `POST /webhooks/github`.
pub(super) async fn github(
    State(state): State<Arc<WebhookState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let event = Event::from_header(headers.get(EVENT_HEADER).map(HeaderValue::as_bytes));
    let answer = match checked(&state, event, &headers, body).await {
        Ok(answer) | Err(answer) => answer,
    };
    let delivery = delivery_id(&headers).unwrap_or("");
    match answer.outcome {
        WebhookOutcome::Unauthorized => tracing::debug!(
            event = event.as_str(),
            status = answer.status.as_u16(),
            "refused a webhook delivery without a valid signature"
        ),
        WebhookOutcome::Invalid | WebhookOutcome::TooLarge | WebhookOutcome::RateLimited => {
            tracing::info!(
                event = event.as_str(),
                delivery,
                status = answer.status.as_u16(),
                reason = answer.message.as_str(),
                "refused a webhook delivery"
            )
        }
        outcome => tracing::debug!(
            event = event.as_str(),
            delivery,
            outcome = outcome.as_str(),
            "webhook delivery"
        ),
    }
    state.counters.add(event, answer.outcome);
    answer.into_response()
}

/// Every check, in order: the answer to give (`Err` for a refusal).
async fn checked(
    state: &WebhookState,
    event: Event,
    headers: &HeaderMap,
    body: Body,
) -> Result<Answer, Answer> {
    let unauthorized = |message: &str| {
        Answer::new(
            StatusCode::UNAUTHORIZED,
            WebhookOutcome::Unauthorized,
            message,
        )
    };
    let signature = match headers.get(SIGNATURE_HEADER) {
        None => {
            return Err(unauthorized(
                "no X-Hub-Signature-256 header: set the webhook's secret in GitHub to the \
                 collector's webhooks.github.secret",
            ))
        }
        Some(value) => Signature::parse(value.as_bytes()).ok_or_else(|| {
            unauthorized("malformed X-Hub-Signature-256 (expected sha256= and 64 hex digits)")
        })?,
    };
    let too_large = || {
        Answer::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            WebhookOutcome::TooLarge,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = request_body::declared_length(headers);
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let share = declared.map_or(MAX_BODY_BYTES, |length| length as usize);
    let units = u32::try_from(budget_units(share)).unwrap_or(u32::MAX);
    let _share = match tokio::time::timeout(MAX_BUDGET_WAIT, state.budget.acquire_many(units)).await
    {
        Ok(Ok(permit)) => permit,
        _ => {
            return Err(Answer::new(
                StatusCode::TOO_MANY_REQUESTS,
                WebhookOutcome::RateLimited,
                "too many large deliveries at once; redeliver it later",
            ))
        }
    };
    let bytes = request_body::read(headers, body, MAX_BODY_BYTES, BODY_READ_TIMEOUT)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => too_large(),
            BodyError::TooSlow => Answer::new(
                StatusCode::REQUEST_TIMEOUT,
                WebhookOutcome::Invalid,
                format!(
                    "the body did not arrive within {} seconds",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            ),
            BodyError::Unreadable => Answer::new(
                StatusCode::BAD_REQUEST,
                WebhookOutcome::Invalid,
                "the body could not be read",
            ),
        })?;
    if !state.verifier.verify(&bytes, &signature) {
        return Err(unauthorized(
            "the signature does not match the body: the webhook's secret in GitHub and the \
             collector's webhooks.github.secret differ",
        ));
    }
    let invalid =
        |status: StatusCode, message: String| Answer::new(status, WebhookOutcome::Invalid, message);
    if !request_body::is_json(headers) {
        return Err(invalid(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json: set the webhook's content type to \
             application/json in GitHub"
                .to_owned(),
        ));
    }
    let delivery = delivery_id(headers).ok_or_else(|| {
        invalid(
            StatusCode::BAD_REQUEST,
            "missing or malformed X-GitHub-Delivery header".to_owned(),
        )
    })?;
    if !headers.contains_key(EVENT_HEADER) {
        return Err(invalid(
            StatusCode::BAD_REQUEST,
            "missing X-GitHub-Event header".to_owned(),
        ));
    }
    let request =
        event::parse(event, &bytes).map_err(|message| invalid(StatusCode::BAD_REQUEST, message))?;
    let new = state
        .deliveries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remember(delivery, tokio::time::Instant::now());
    if !new {
        return Ok(Answer::new(
            StatusCode::ACCEPTED,
            WebhookOutcome::Duplicate,
            "this delivery was done before; nothing is done again",
        ));
    }
    Ok(match request {
        Request::Nothing if event == Event::Ping => Answer::new(
            StatusCode::OK,
            WebhookOutcome::Accepted,
            "pong: the delivery reached the collector and its signature verified",
        ),
        Request::Nothing => Answer::new(
            StatusCode::ACCEPTED,
            WebhookOutcome::Ignored,
            "the collector does not use this event (it uses deployment, deployment_status, \
             workflow_run, issues, pull_request and push)",
        ),
        Request::Sync(Some(repository))
            if state.repositories.contains(&repository)
                || state.organizations.contains(repository.owner()) =>
        {
            (state.sync)(&repository);
            Answer::new(
                StatusCode::ACCEPTED,
                WebhookOutcome::Accepted,
                format!("a sync of {repository} starts shortly"),
            )
        }
        Request::Sync(Some(repository)) => Answer::new(
            StatusCode::ACCEPTED,
            WebhookOutcome::Ignored,
            format!("{repository} is not in [[github.repositories]]; nothing to sync"),
        ),
        Request::Sync(None) => Answer::new(
            StatusCode::ACCEPTED,
            WebhookOutcome::Ignored,
            "the repository is not in [[github.repositories]]; nothing to sync",
        ),
    })
}

/// The delivery's id, when `X-GitHub-Delivery` holds a usable one.
fn delivery_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(DELIVERY_HEADER)
        .map(HeaderValue::as_bytes)
        .filter(|id| is_delivery_id(id))
        .and_then(|id| std::str::from_utf8(id).ok())
}

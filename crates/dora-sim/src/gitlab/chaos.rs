//! The chaos layer of the simulated GitLab: the faults of
//! [`crate::server::chaos`] (the same options, draws, consecutive cap and
//! counters), answered the way GitLab and the proxies in front of it answer.
//!
//! - `server_error`: `500` with `{"message":"500 Internal Server Error"}`;
//! - `bad_gateway` and `timeout`: `502` with GitLab's "Whoops, GitLab is taking
//!   too much time to respond" page (a timeout after its delay);
//!   `gateway_timeout`: `504` after its delay; `unavailable`: a proxy's `503`;
//! - `secondary_limit` and `too_many_requests`: `429` with `Retry-After`,
//!   Rack::Attack's `Retry later` and `RateLimit-Remaining: 0` until then; the
//!   token gets the same answer until it has passed (each such request is a
//!   violation, [`GitlabHandle::throttle_violations`]);
//! - `reset`, `slow`, `truncated`: as on GitHub's server;
//! - `new_items`: before page 2+ of an offset list of deployments, issues or
//!   commits, a new item at the head of that list (at the group's `now`);
//! - the GraphQL-only faults are no faults here.
//!
//! Not here: the rate limit itself (`server.rs`), which takes precedence: a
//! request sent with the budget spent is never faulted.

use super::api::{Endpoint, Route};
use super::server::{token_use, with_budget, GitlabHandle, Shared};
use crate::model::{NewDeployment, NewIssue, NewOutcome};
use crate::server::chaos::{
    reset_connection, truncate, ChaosCounts, ChaosError, ChaosOptions, ChaosRequest, Fault, Plan,
};
use crate::server::route::Query;
use crate::server::TokenUse;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

/// The page GitLab's Workhorse sends when Puma does not answer in time.
const GITLAB_502_PAGE: &str = "<!DOCTYPE html>\n<html>\n<head><title>GitLab is not responding (502)</title></head>\n<body>\n<h1>502</h1>\n<h3>Whoops, GitLab is taking too much time to respond.</h3>\n<p>Try refreshing the page, or going back and attempting the action again.</p>\n</body>\n</html>\n";

/// A proxy's plain-text `503`.
const UNAVAILABLE_TEXT: &str = "no healthy upstream";

fn hash_of(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

impl Shared {
    fn chaos(&self) -> MutexGuard<'_, crate::server::chaos::ChaosState> {
        self.chaos
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The request as the chaos layer sees it; `None` when it must not be
    /// faulted (no valid token, or the budget spent).
    fn chaos_request(&self, request: &Request) -> Option<ChaosRequest<Route>> {
        if token_use(request.headers(), &self.token()) != TokenUse::Valid || self.budget_spent() {
            return None;
        }
        let uri = request.uri();
        let route = self.route(request.method(), uri);
        let query = Query::parse(uri.query());
        let later_page = query
            .get("page")
            .and_then(|p| p.parse::<u64>().ok())
            .is_some_and(|p| p >= 2);
        let shifting_page = route.filter(|r| {
            r.endpoint.shifted_by_new_items()
                && later_page
                && query.get("pagination") != Some("keyset")
        });
        Some(ChaosRequest {
            key: hash_of((request.method().as_str(), uri.path(), uri.query())),
            token: hash_of(self.token()),
            shifting_page,
            graphql: false,
        })
    }

    /// Inserts a new item at the head of the list `route` reads; whether it did.
    fn insert_new_item(&self, route: &Route) -> bool {
        let mut group = self.group.write().unwrap_or_else(|p| p.into_inner());
        let Some(index) = group.project_index(&route.id) else {
            return false;
        };
        let now = group.org.now;
        let environment = group.environments(index).first().map_or_else(
            || crate::spec::PRODUCTION.to_owned(),
            |e| e.name.to_string(),
        );
        let org = &mut group.org;
        let inserted = match route.endpoint {
            Endpoint::Deployments => org
                .add_deployment(
                    index,
                    NewDeployment {
                        environment,
                        sha: None,
                        created_at: now,
                        outcome: NewOutcome::Success { after: 0 },
                    },
                )
                .map(drop),
            Endpoint::Issues => org
                .open_issue(
                    index,
                    NewIssue {
                        title: "Opened while a client was paging".to_owned(),
                        body: None,
                        labels: Vec::new(),
                        opened_at: now,
                    },
                )
                .map(drop),
            Endpoint::Commits => org
                .push_commit(index, "Pushed while a client was paging", now, now)
                .map(drop),
            _ => return false,
        };
        inserted.is_ok()
    }

    /// A response the chaos layer answers itself.
    fn fault_response(&self, status: StatusCode, retry_after: Option<u64>) -> Response {
        let request_id = self.chaos().next_request_id();
        let mut builder = Response::builder()
            .status(status)
            .header("x-request-id", format!("01JCHAOS{request_id:018X}"));
        let (content_type, body) = match status {
            StatusCode::INTERNAL_SERVER_ERROR => (
                "application/json",
                Body::from(r#"{"message":"500 Internal Server Error"}"#),
            ),
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
                ("text/html; charset=utf-8", Body::from(GITLAB_502_PAGE))
            }
            StatusCode::SERVICE_UNAVAILABLE => ("text/plain", Body::from(UNAVAILABLE_TEXT)),
            _ => {
                let (limit, _, _) = self.budget_now();
                let wait = retry_after.unwrap_or(1).max(1);
                let reset = crate::server::epoch_now() + i64::try_from(wait).unwrap_or(60);
                builder =
                    with_budget(builder, limit, limit, reset).header(header::RETRY_AFTER, wait);
                ("text/plain", Body::from("Retry later\n"))
            }
        };
        builder = builder.header(header::CONTENT_TYPE, content_type);
        builder.body(body).unwrap_or_else(|_| {
            let mut fallback = Response::new(Body::empty());
            *fallback.status_mut() = status;
            fallback
        })
    }
}

/// The chaos middleware, around every route of the GitLab server.
pub(super) async fn layer(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if shared.chaos().is_quiet() {
        return next.run(request).await;
    }
    let Some(chaos) = shared.chaos_request(&request) else {
        return next.run(request).await;
    };
    let plan = shared.chaos().begin(&chaos, Instant::now());
    let (fault, new_item, retry_after, slow_delay, timeout_delay) = match plan {
        Plan::Pass => return next.run(request).await,
        Plan::Limited { retry_after, .. } => {
            return shared.fault_response(StatusCode::TOO_MANY_REQUESTS, Some(retry_after));
        }
        Plan::GraphqlSpent { .. } => return next.run(request).await,
        Plan::Inject {
            fault,
            new_item,
            retry_after,
            slow_delay,
            timeout_delay,
        } => (fault, new_item, retry_after, slow_delay, timeout_delay),
    };
    let fault = fault.filter(|f| !f.graphql_only());
    let new_item = new_item
        && chaos
            .shifting_page
            .as_ref()
            .is_some_and(|route| shared.insert_new_item(route));
    let finish = |applied: Option<Fault>| {
        shared
            .chaos()
            .finish(&chaos, applied, new_item, Instant::now());
    };
    match fault {
        None => {
            finish(None);
            next.run(request).await
        }
        Some(Fault::Reset) => match reset_connection(&request) {
            Some(unsent) => {
                finish(Some(Fault::Reset));
                unsent
            }
            None => {
                finish(None);
                next.run(request).await
            }
        },
        Some(fault @ (Fault::ServerError | Fault::BadGateway | Fault::Unavailable)) => {
            finish(Some(fault));
            let status = match fault {
                Fault::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
                Fault::BadGateway => StatusCode::BAD_GATEWAY,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            shared.fault_response(status, None)
        }
        Some(fault @ (Fault::SecondaryLimit | Fault::TooManyRequests)) => {
            finish(Some(fault));
            shared.fault_response(StatusCode::TOO_MANY_REQUESTS, Some(retry_after))
        }
        Some(fault @ (Fault::Timeout | Fault::GatewayTimeout)) => {
            finish(Some(fault));
            tokio::time::sleep(timeout_delay).await;
            let status = if fault == Fault::Timeout {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::GATEWAY_TIMEOUT
            };
            shared.fault_response(status, None)
        }
        Some(Fault::Slow) => {
            finish(Some(Fault::Slow));
            tokio::time::sleep(slow_delay).await;
            next.run(request).await
        }
        Some(Fault::Truncated) => {
            let response = next.run(request).await;
            let (response, truncated) = truncate(response).await;
            finish(truncated.then_some(Fault::Truncated));
            response
        }
        Some(_) => {
            finish(None);
            next.run(request).await
        }
    }
}

impl GitlabHandle {
    /// Replaces the chaos options while serving: the draws restart from the new
    /// seed; throttles in force and the counters stay.
    pub fn set_chaos(&self, options: ChaosOptions) -> Result<(), ChaosError> {
        options.validate()?;
        self.shared.chaos().set_options(options);
        Ok(())
    }

    /// Faults injected so far, per kind.
    pub fn chaos_counts(&self) -> ChaosCounts {
        self.shared.chaos().counts.clone()
    }

    /// Requests sent while their token was throttled by a `429` fault.
    pub fn throttle_violations(&self) -> u64 {
        self.shared.chaos().counts.secondary_violations
    }
}

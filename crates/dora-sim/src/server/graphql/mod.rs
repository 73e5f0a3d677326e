//! `POST /graphql`: GitHub's GraphQL API over the simulated organisation.
//!
//! Every request goes through GitHub's steps in order:
//! 1. The token (`Authorization: bearer <token>`), else 401 `Bad credentials`.
//! 2. The GraphQL budget, a separate `graphql` resource (default
//!    [`DEFAULT_GRAPHQL_RATE_LIMIT`] points per window): once spent, HTTP 200
//!    with `{"errors":[{"type":"RATE_LIMITED",...}]}`, as GitHub documents.
//! 3. The body: `{"query", "variables", "operationName"}` (400 `Problems parsing
//!    JSON` when it is not JSON, at most [`MAX_BODY_BYTES`]).
//! 4. Validation against GitHub's real public schema (parsed once per process
//!    with `apollo-compiler`): syntax, unknown fields and arguments, argument and
//!    variable types, fragments; then GitHub's own rules (`first` or `last` on
//!    every connection, 1–100, at most 500,000 nodes; see [`cost`]). Failures
//!    answer HTTP 200 with `{"errors":[{"message","locations"}]}` and cost
//!    nothing. Messages are `apollo-compiler`'s wording (GitHub's graphql-ruby
//!    words them differently and adds `path`/`extensions`), except GitHub's own
//!    connection and node-limit rules, which use GitHub's words.
//! 5. The charge: the call's points ([`cost`]) are taken from the budget; a call
//!    costing more than what remains is refused as rate limited.
//! 6. Execution ([`resolve`]), answering `{"data": ..., "errors": [...]}` with
//!    GitHub's `type` on the errors GitHub types (`NOT_FOUND`,
//!    `INVALID_CURSOR_ARGUMENTS`).
//!
//! Responses carry `x-ratelimit-{limit,remaining,used,reset}` of the GraphQL
//! budget and `x-ratelimit-resource: graphql`. Requests are counted under the
//! route `POST /graphql`, and the points charged in
//! [`SimHandle::graphql_points_used`].
//!
//! Not modelled here: mutations and subscriptions (refused), introspection
//! (`__schema`, `__type`), `rateLimit(dryRun: true)`, persisted queries, and GET
//! requests (answered by the REST router: 404). Secondary rate limits, timeouts
//! and transient errors are the chaos layer's ([`super::chaos`]). The schema is parsed on the first GraphQL request, not when the
//! server starts, so that REST-only users never pay for it.

pub mod cost;
pub mod resolve;

use super::{
    build_response, epoch_now, log_request, Budget, Caller, InstallationBudgets, Outcome,
    RateLimitState, RequestRecord, ServerState, Shared, SimHandle, TokenUse,
};
use apollo_compiler::executable::OperationType;
use apollo_compiler::parser::Parser;
use apollo_compiler::request::coerce_variable_values;
use apollo_compiler::resolvers::Execution;
use apollo_compiler::response::JsonMap;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

pub use cost::{analyse, QueryCost, MAX_NODES, MAX_PAGE_SIZE};
pub use resolve::{VIEWER_ID, VIEWER_LOGIN};

/// GitHub's default GraphQL budget for a user token, points per window.
pub const DEFAULT_GRAPHQL_RATE_LIMIT: u64 = 5000;

/// The route template GraphQL requests are counted under.
pub const GRAPHQL_ROUTE: &str = "POST /graphql";

/// Largest request body read; larger ones are refused (413) unread, so a client
/// cannot make the simulator buffer without bound.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Deepest nesting the query parser accepts (GitHub's queries nest about ten
/// levels; this bounds the parser's recursion on hostile input).
const MAX_QUERY_DEPTH: usize = 64;

/// Most tokens the query parser reads before giving up (a 256 KiB body holds
/// far fewer meaningful tokens; this bounds the work on hostile input).
const MAX_QUERY_TOKENS: usize = 50_000;

/// GitHub's schema (from `@octokit/graphql-schema`, MIT licence; see
/// `crates/dora-sim/fixtures/NOTICE`).
const SCHEMA_SDL: &str = include_str!("../../../fixtures/graphql-schema.graphql");

/// What `apollo-compiler`'s executor puts before a resolver's error message.
const RESOLVER_ERROR_PREFIX: &str = "resolver error: ";

/// Where GitHub's GraphQL errors point.
const DOCS_URL: &str = "https://docs.github.com/graphql";

/// The two defects of GitHub's published schema: `EnterpriseOwnerInfo` declares
/// two fields twice. Validation reports exactly these; anything else is a real
/// failure.
const KNOWN_SCHEMA_DEFECTS: [&str; 2] = [
    "duplicate definitions for the `repositoryDeployKeySetting` field of object type `EnterpriseOwnerInfo`",
    "duplicate definitions for the `repositoryDeployKeySettingOrganizations` field of object type `EnterpriseOwnerInfo`",
];

static SCHEMA: OnceLock<Result<Valid<Schema>, String>> = OnceLock::new();

/// GitHub's schema, parsed and validated on first use.
pub fn schema() -> Result<&'static Valid<Schema>, &'static str> {
    SCHEMA
        .get_or_init(|| parse_schema(SCHEMA_SDL))
        .as_ref()
        .map_err(String::as_str)
}

fn parse_schema(sdl: &str) -> Result<Valid<Schema>, String> {
    match Schema::parse_and_validate(sdl, "github-schema.graphql") {
        Ok(schema) => Ok(schema),
        Err(with_errors) => {
            let unexpected: Vec<String> = with_errors
                .errors
                .iter()
                .map(|d| d.error.to_string())
                .filter(|message| !KNOWN_SCHEMA_DEFECTS.contains(&message.as_str()))
                .collect();
            if unexpected.is_empty() {
                // The duplicates are dropped (the first definition is kept);
                // everything else validated.
                Ok(Valid::assume_valid(with_errors.partial))
            } else {
                Err(format!(
                    "GitHub's GraphQL schema failed to validate: {}",
                    unexpected.join("; ")
                ))
            }
        }
    }
}

/// The cost GitHub would charge for `query` under `variables` (a JSON object or
/// null), without running it: what `rateLimit { cost nodeCount }` reports.
/// `Err` carries the error messages the server would answer with.
pub fn query_cost(query: &str, variables: &Value) -> Result<QueryCost, Vec<String>> {
    let schema = schema().map_err(|e| vec![e.to_owned()])?;
    let document = ExecutableDocument::parse_and_validate(schema, query, "query.graphql").map_err(
        |with_errors| {
            with_errors
                .errors
                .iter()
                .map(|d| d.error.to_string())
                .collect::<Vec<_>>()
        },
    )?;
    let operation = document
        .operations
        .get(None)
        .map_err(|e| vec![e.message().to_string()])?;
    let variables = match variables {
        Value::Null => JsonMap::new(),
        other => resolve::to_json_map(other.clone())
            .ok_or_else(|| vec!["Variables are invalid JSON.".to_owned()])?,
    };
    let variables = coerce_variable_values(schema, operation, &variables)
        .map_err(|e| vec![e.message().to_string()])?;
    cost::analyse(&document, operation, &variables)
        .map_err(|limit| limit.errors.into_iter().map(|e| e.message).collect())
}

/// The GraphQL budget and counters, kept with the server's other state.
pub(super) struct GraphqlState {
    pub(super) budget: Budget,
    /// Each installation's budget, with [`InstallationBudgets::Github`].
    pub(super) installations: std::collections::BTreeMap<u64, Budget>,
    /// Points charged since the start (or the last `reset_counts`).
    pub(super) points: u64,
}

impl GraphqlState {
    pub(super) fn new(limit: u64, window: i64) -> GraphqlState {
        GraphqlState {
            budget: Budget {
                limit,
                window,
                used: 0,
                reset: None,
                violations: 0,
            },
            installations: std::collections::BTreeMap::new(),
            points: 0,
        }
    }
}

/// The budget a GraphQL call of `installation` (id and `(limit, window)`) is
/// charged to: its own with GitHub's installation budgets, else the one shared.
fn budget_of(state: &mut ServerState, installation: Option<(u64, (u64, i64))>) -> &mut Budget {
    match installation {
        Some((id, (limit, window))) => state
            .graphql
            .installations
            .entry(id)
            .or_insert_with(|| Budget::new(limit, window)),
        None => &mut state.graphql.budget,
    }
}

/// The axum handler of `POST /graphql`.
pub(super) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let caller = shared.caller(&parts.headers);
    let token = caller.token_use();
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES).await;
    let outcome = match body {
        Ok(body) => shared.graphql(&caller, &body),
        Err(_) => Outcome {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            body: Some(to_bytes(&json!({
                "message": "Request body too large",
                "documentation_url": DOCS_URL,
                "status": "413",
            }))),
            etag: None,
            link: None,
            budget: None,
        },
    };
    let request_id = shared.count_graphql(&parts.uri, token, outcome.status.as_u16());
    let mut response = build_response(outcome, request_id);
    if response.headers().contains_key("x-ratelimit-resource") {
        response
            .headers_mut()
            .insert("x-ratelimit-resource", HeaderValue::from_static("graphql"));
    }
    response
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// An HTTP 200 GraphQL answer.
fn ok(body: &Value, budget: (u64, u64, i64)) -> Outcome {
    Outcome {
        status: StatusCode::OK,
        body: Some(to_bytes(body)),
        etag: None,
        link: None,
        budget: Some(budget),
    }
}

/// `{"errors": [...]}` from apollo's errors.
fn errors(list: impl IntoIterator<Item = apollo_compiler::response::GraphQLError>) -> Value {
    let list: Vec<Value> = list
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    json!({ "errors": list })
}

fn message(text: &str) -> Value {
    json!({"errors": [{"message": text}]})
}

fn rate_limited() -> Value {
    json!({"errors": [{
        "type": "RATE_LIMITED",
        "code": "graphql_rate_limit",
        "message": format!("API rate limit exceeded for user ID {VIEWER_ID}."),
    }]})
}

impl Shared {
    /// The whole GraphQL request after the body was read.
    fn graphql(&self, caller: &Caller, body: &[u8]) -> Outcome {
        if !matches!(caller, Caller::Token | Caller::Installation { .. }) {
            return Outcome {
                status: StatusCode::UNAUTHORIZED,
                body: Some(to_bytes(&json!({
                    "message": "Bad credentials",
                    "documentation_url": DOCS_URL,
                    "status": "401",
                }))),
                etag: None,
                link: None,
                budget: None,
            };
        }
        let now = epoch_now();
        let installation = self.graphql_installation(caller);
        let budget = {
            let mut state = self.state();
            let budget = budget_of(&mut state, installation);
            budget.refresh(now);
            let reset = budget.reset_at(now);
            if budget.remaining() == 0 {
                budget.violations += 1;
                return ok(&rate_limited(), (budget.limit, budget.used, reset));
            }
            (budget.limit, budget.used, reset)
        };
        let request: Value = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(_) => {
                return Outcome {
                    status: StatusCode::BAD_REQUEST,
                    body: Some(to_bytes(&json!({
                        "message": "Problems parsing JSON",
                        "documentation_url": DOCS_URL,
                        "status": "400",
                    }))),
                    etag: None,
                    link: None,
                    budget: Some(budget),
                }
            }
        };
        let Some(query) = request.get("query").and_then(Value::as_str) else {
            return ok(
                &message("A query attribute must be specified and must be a string."),
                budget,
            );
        };
        let variables = match request.get("variables") {
            None | Some(Value::Null) => Some(JsonMap::new()),
            Some(Value::String(text)) if text.trim().is_empty() => Some(JsonMap::new()),
            Some(Value::String(text)) => serde_json::from_str::<Value>(text)
                .ok()
                .and_then(resolve::to_json_map),
            Some(value @ Value::Object(_)) => resolve::to_json_map(value.clone()),
            Some(_) => None,
        };
        let Some(variables) = variables else {
            return ok(&message("Variables are invalid JSON."), budget);
        };
        let operation_name = request.get("operationName").and_then(Value::as_str);
        let schema = match schema() {
            Ok(schema) => schema,
            Err(reason) => {
                return Outcome {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: Some(to_bytes(&json!({"message": reason}))),
                    etag: None,
                    link: None,
                    budget: Some(budget),
                }
            }
        };
        let parsed = Parser::new()
            .recursion_limit(MAX_QUERY_DEPTH)
            .token_limit(MAX_QUERY_TOKENS)
            .parse_executable(schema, query, "query.graphql");
        let validated = match parsed {
            Ok(document) => document.validate(schema),
            Err(with_errors) => Err(with_errors),
        };
        let document = match validated {
            Ok(document) => document,
            Err(with_errors) => {
                return ok(
                    &errors(with_errors.errors.iter().map(|d| d.to_json())),
                    budget,
                );
            }
        };
        self.run(
            caller,
            schema,
            &document,
            operation_name,
            &variables,
            budget,
            now,
        )
    }

    /// Checks GitHub's limits, charges and executes a valid document.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        caller: &Caller,
        schema: &Valid<Schema>,
        document: &Valid<ExecutableDocument>,
        operation_name: Option<&str>,
        variables: &JsonMap,
        budget: (u64, u64, i64),
        now: i64,
    ) -> Outcome {
        let operation = match document.operations.get(operation_name) {
            Ok(operation) => operation,
            Err(error) => return ok(&errors([error.to_graphql_error(&document.sources)]), budget),
        };
        if operation.operation_type != OperationType::Query {
            let kind = match operation.operation_type {
                OperationType::Mutation => "mutation",
                _ => "subscription",
            };
            return ok(
                &message(&format!(
                    "Operation type '{kind}' is not supported by the simulator"
                )),
                budget,
            );
        }
        let variables = match coerce_variable_values(schema, operation, variables) {
            Ok(variables) => variables,
            Err(error) => return ok(&errors([error.to_graphql_error(&document.sources)]), budget),
        };
        let cost = match cost::analyse(document, operation, &variables) {
            Ok(cost) => cost,
            Err(limit) => {
                let mut body = errors(limit.errors);
                if let (Some(kind), Some(list)) = (limit.kind, body["errors"].as_array_mut()) {
                    for error in list {
                        error["type"] = json!(kind);
                    }
                }
                return ok(&body, budget);
            }
        };
        let installation = self.graphql_installation(caller);
        let budget = {
            let mut state = self.state();
            let budget = budget_of(&mut state, installation);
            budget.refresh(now);
            let reset = budget.reset_at(now);
            if cost.points > budget.remaining() {
                budget.violations += 1;
                return ok(&rate_limited(), (budget.limit, budget.used, reset));
            }
            budget.used += cost.points;
            let charged = (budget.limit, budget.used, reset);
            state.graphql.points += cost.points;
            charged
        };
        // An installation token reads its own organisation; the token the first.
        let org = match caller {
            Caller::Installation { account, .. } => self.org_named(account.as_str()),
            _ => None,
        }
        .unwrap_or_else(|| self.primary())
        .read()
        .unwrap_or_else(|p| p.into_inner());
        let env = resolve::Env {
            org: &org,
            rate: resolve::RateInfo {
                cost: cost.points,
                node_count: cost.nodes,
                limit: budget.0,
                used: budget.1,
                reset: budget.2,
            },
            typed_errors: RefCell::new(Vec::new()),
        };
        let root = resolve::QueryRoot { env: &env };
        let result = Execution::new(schema, document)
            .operation(operation)
            .coerced_variable_values(&variables)
            .execute_sync(&root);
        let mut body = match result {
            Ok(response) => serde_json::to_value(&response).unwrap_or(Value::Null),
            Err(error) => errors([error.to_graphql_error(&document.sources)]),
        };
        let typed = env.typed_errors.into_inner();
        if let Some(list) = body.get_mut("errors").and_then(Value::as_array_mut) {
            for error in list {
                let Some(text) = error["message"].as_str() else {
                    continue;
                };
                // The executor prefixes resolvers' messages; GitHub's have none.
                let text = text
                    .strip_prefix(RESOLVER_ERROR_PREFIX)
                    .unwrap_or(text)
                    .to_owned();
                if let Some((_, kind)) = typed.iter().find(|(t, _)| *t == text) {
                    error["type"] = json!(kind);
                }
                error["message"] = json!(text);
            }
        }
        ok(&body, budget)
    }

    /// The installation whose own GraphQL budget `caller` spends, with its
    /// `(limit, window)`: with GitHub's installation budgets only.
    fn graphql_installation(&self, caller: &Caller) -> Option<(u64, (u64, i64))> {
        match (caller, self.installation_budgets) {
            (Caller::Installation { id, account }, InstallationBudgets::Github) => {
                Some((*id, self.installation_limit_of(account)))
            }
            _ => None,
        }
    }

    /// The GraphQL budget's `(limit, used, reset)` now, for `GET /rate_limit`
    /// (of `installation`'s caller).
    pub(super) fn graphql_budget(&self, now: i64, installation: Option<u64>) -> (u64, u64, i64) {
        let mut guard = self.state();
        let graphql = &mut guard.graphql;
        let budget = match installation.and_then(|id| graphql.installations.get_mut(&id)) {
            Some(budget) => budget,
            None => &mut graphql.budget,
        };
        budget.refresh(now);
        let reset = budget.reset_at(now);
        (budget.limit, budget.used, reset)
    }

    /// Counts and records one GraphQL request; returns its request number.
    fn count_graphql(&self, uri: &axum::http::Uri, token: TokenUse, status: u16) -> u64 {
        let mut guard = self.state();
        let state = &mut *guard;
        state.requests_seen += 1;
        let request_id = state.requests_seen;
        let record = RequestRecord::new("POST", uri, GRAPHQL_ROUTE, status, token, false);
        log_request(&mut state.counts, &mut state.records, record);
        request_id
    }
}

impl SimHandle {
    /// The GraphQL budget of installation `id` now, with
    /// [`InstallationBudgets::Github`] (`None` before its first query).
    pub fn installation_graphql_rate_limit(&self, id: u64) -> Option<RateLimitState> {
        let now = epoch_now();
        self.shared
            .state()
            .graphql
            .installations
            .get_mut(&id)
            .map(|budget| budget.state(now))
    }

    /// The GraphQL budget now (points).
    pub fn graphql_rate_limit(&self) -> RateLimitState {
        self.shared.state().graphql.budget.state(epoch_now())
    }

    /// GraphQL points charged since the server started (or the last
    /// [`SimHandle::reset_counts`]), across rate-limit windows.
    pub fn graphql_points_used(&self) -> u64 {
        self.shared.state().graphql.points
    }

    /// Sets the remaining GraphQL points of the current window (0 exhausts it).
    pub fn set_graphql_rate_limit_remaining(&self, remaining: u64) {
        let now = epoch_now();
        let mut state = self.shared.state();
        let budget = &mut state.graphql.budget;
        budget.refresh(now);
        budget.reset_at(now);
        budget.used = budget.limit.saturating_sub(remaining);
    }

    /// Starts a fresh GraphQL window with the full budget.
    pub fn reset_graphql_rate_limit(&self) {
        let mut state = self.shared.state();
        state.graphql.budget.used = 0;
        state.graphql.budget.reset = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_schema_validates_but_for_its_known_defects() {
        let schema = schema().unwrap();
        for name in ["Repository", "Deployment", "Commit", "RateLimit"] {
            assert!(schema.types.contains_key(name), "{name}");
        }
    }

    #[test]
    fn any_other_schema_error_is_reported() {
        let error = parse_schema("type Query { a: Nope }").unwrap_err();
        assert!(error.contains("Nope"), "{error}");
    }
}

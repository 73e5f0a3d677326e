//! What a GraphQL answer means, as GitHub's own clients read it: its `data`; a
//! spent budget (`RATE_LIMITED`, also spelled `RATE_LIMIT`); a transient failure
//! worth retrying (a timeout, or an untyped error without data); or a final error
//! about the query itself (`NOT_FOUND`, `FORBIDDEN`, schema and variable errors).
//! Also the page sizes a repository's queries shrink to while GitHub keeps timing
//! out ([`PageSizes`]).
//!
//! Not here: sending, retrying and waiting (`client.rs`, `governor.rs`), HTTP
//! statuses other than `200` (`client.rs` maps them, with [`says_timeout`]).

use super::error::{GithubError, Redactor};
use crate::sources::governor::{reset_of, GRAPHQL_RESOURCE};
use http::header::HeaderMap;
use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};

/// The error `type`s of a spent GraphQL budget: `RATE_LIMITED` as GitHub
/// documents it, and `RATE_LIMIT` as some of its answers spell it.
pub const RATE_LIMIT_TYPES: [&str; 2] = ["RATE_LIMITED", "RATE_LIMIT"];

/// What GitHub says (compared in lower case) when it ran out of time: its `502`
/// "We couldn't respond to your request in time", its GraphQL "Something went
/// wrong while executing your query. This may be the result of a timeout, or it
/// could be a GitHub bug", and proxies' plain "timeout" / "timed out". (The
/// older "Something went wrong while executing your query. Please include …"
/// says nothing of time: an untyped, transient error.)
const TIMEOUT_PHRASES: [&str; 3] = [
    "couldn't respond to your request in time",
    "timeout",
    "timed out",
];

/// The smallest page a shrinking query asks for: small enough that a query of
/// 10 deployments with 100 statuses each (1,000 nodes) or 10 commits is cheap
/// for GitHub to answer, large enough that a repository's history is still read
/// in a bounded number of pages.
pub const MIN_PAGE_SIZE: u32 = 10;

/// Whether `message` says the server ran out of time.
pub(super) fn says_timeout(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    TIMEOUT_PHRASES.iter().any(|phrase| lower.contains(phrase))
}

/// Whether a query's answer may be used with some of its fields `null` and
/// errors naming them (a query built of independent aliases, where one missing
/// repository must not hide the others), or must be whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partial {
    /// Any error fails the query.
    Refused,
    /// Errors about the query (not timeouts or rate limits) leave the `data`
    /// there is; the caller reads the fields it finds.
    Accepted,
}

/// The `data` of a GraphQL answer with HTTP `200` (`body` already checked to be
/// JSON), or what went wrong. `headers` give the reset of a spent budget;
/// `redactor` cleans the server's messages.
pub(super) fn graphql_data(
    body: &[u8],
    headers: &HeaderMap,
    url: &str,
    partial: Partial,
    redactor: &Redactor,
) -> Result<Value, GithubError> {
    let invalid = |reason: &str| GithubError::InvalidBody {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| invalid(&format!("not a GraphQL answer: {e}")))?;
    let Some(answer) = answer.as_object() else {
        return Err(invalid("a GraphQL answer that is not an object"));
    };
    let data = answer.get("data").filter(|d| !d.is_null());
    let errors: &[Value] = match answer.get("errors") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(errors)) => errors,
        Some(_) => return Err(invalid("GraphQL errors that are not a list")),
    };
    if errors.is_empty() {
        return data
            .cloned()
            .ok_or_else(|| invalid("a GraphQL answer without data"));
    }
    if errors
        .iter()
        .any(|e| text(e, "type").is_some_and(|t| RATE_LIMIT_TYPES.contains(&t)))
    {
        let reset_at = reset_of(headers).map(crate::domain::Timestamp);
        return Err(GithubError::RateLimited {
            url: url.to_owned(),
            resource: GRAPHQL_RESOURCE.to_owned(),
            reset_at,
        });
    }
    let message_of = |error: &Value| {
        text(error, "message")
            .map(|m| redactor.clean(m))
            .unwrap_or_default()
    };
    if let Some(timeout) = errors
        .iter()
        .find(|e| text(e, "message").is_some_and(says_timeout))
    {
        return Err(GithubError::Timeout {
            url: url.to_owned(),
            status: 200,
            message: message_of(timeout),
        });
    }
    if data.is_none() && errors.iter().all(is_untyped) {
        return Err(GithubError::GraphqlTransient {
            url: url.to_owned(),
            message: message_of(&errors[0]),
        });
    }
    if let (Partial::Accepted, Some(data)) = (partial, data) {
        for error in errors {
            tracing::debug!(%url, error = %message_of(error), "a GraphQL field could not be answered");
        }
        return Ok(data.clone());
    }
    Err(GithubError::Graphql {
        url: url.to_owned(),
        message: message_of(&errors[0]),
    })
}

/// `error[key]` when it is a string.
fn text<'a>(error: &'a Value, key: &str) -> Option<&'a str> {
    error.get(key).and_then(Value::as_str)
}

/// An error that says nothing about the query: no `type` (GitHub's typed errors
/// such as `NOT_FOUND`), no `extensions.code` (schema errors such as
/// `undefinedField`) and no `locations` (parse and variable errors point into the
/// query). GitHub answers its internal failures this way.
fn is_untyped(error: &Value) -> bool {
    let has = |key: &str| error.get(key).is_some_and(|v| !v.is_null());
    let coded = error
        .get("extensions")
        .and_then(|e| e.get("code"))
        .is_some_and(|c| !c.is_null());
    !has("type") && !coded && !has("locations")
}

/// The page sizes of one repository sync's GraphQL queries: full at first,
/// halved after every timeout down to [`MIN_PAGE_SIZE`], for the rest of that
/// sync (the next sync starts full again). Shared by the sync's queries.
#[derive(Debug, Default)]
pub struct PageSizes {
    /// How many times the pages were halved.
    halvings: AtomicU32,
}

impl PageSizes {
    /// Full-size pages.
    pub fn new() -> PageSizes {
        PageSizes::default()
    }

    /// The size to ask for instead of `full`: `full` halved once per timeout so
    /// far, never below [`MIN_PAGE_SIZE`] (nor above `full`).
    pub fn size(&self, full: u32) -> u32 {
        let halvings = self.halvings.load(Ordering::Relaxed).min(u32::BITS - 1);
        (full >> halvings).max(MIN_PAGE_SIZE.min(full))
    }

    /// Replaces each of `names` in `variables` that holds a page size by its
    /// current size.
    pub fn apply(&self, variables: &mut Value, names: &[&str]) {
        for name in names {
            if let Some(slot) = variables.get_mut(*name) {
                if let Some(full) = slot.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    *slot = Value::from(self.size(full));
                }
            }
        }
    }

    /// A timeout happened: halves the pages from now on. Returns whether any page
    /// of `full` size or less can still get smaller (false at the floor).
    pub fn shrink(&self, full: u32) -> bool {
        let before = self.size(full);
        // Stop counting once every size is at the floor (bounded counter).
        if before > MIN_PAGE_SIZE {
            self.halvings.fetch_add(1, Ordering::Relaxed);
        }
        self.size(full) < before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const URL: &str = "https://api.github.com/graphql";

    fn read(body: &str, partial: Partial) -> Result<Value, GithubError> {
        graphql_data(
            body.as_bytes(),
            &HeaderMap::new(),
            URL,
            partial,
            &Redactor::default(),
        )
    }

    #[test]
    fn data_is_the_answer() {
        let data = read(r#"{"data":{"a":1}}"#, Partial::Refused).unwrap();
        assert_eq!(data["a"], 1);
        let data = read(r#"{"data":{"a":1},"errors":[]}"#, Partial::Refused).unwrap();
        assert_eq!(data["a"], 1);
    }

    #[test]
    fn both_spellings_of_a_spent_budget_are_rate_limits_with_their_reset() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("1700000000"));
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        for kind in RATE_LIMIT_TYPES {
            let body = format!(
                r#"{{"errors":[{{"type":"{kind}","code":"graphql_rate_limit","message":"API rate limit exceeded for user ID 1."}}]}}"#
            );
            let error = graphql_data(
                body.as_bytes(),
                &headers,
                URL,
                Partial::Accepted,
                &Redactor::default(),
            )
            .unwrap_err();
            assert_eq!(
                error,
                GithubError::RateLimited {
                    url: URL.to_owned(),
                    resource: "graphql".to_owned(),
                    reset_at: Some(crate::domain::Timestamp(1_700_000_000)),
                }
            );
        }
    }

    #[test]
    fn githubs_timeout_at_200_is_a_retried_timeout() {
        let body = r#"{"data":null,"errors":[{"message":"Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `D3C2:1AFB:7226D1:76338B:63A2690D` when reporting this issue."}]}"#;
        let error = read(body, Partial::Accepted).unwrap_err();
        assert!(
            matches!(&error, GithubError::Timeout { status: 200, message, .. } if message.starts_with("Something went wrong")),
            "{error:?}"
        );
        assert!(error.is_transient());
        // Without data at all, and even next to partial data: the answer is cut.
        let partial = r#"{"data":{"repository":{"deployments":null}},"errors":[{"message":"timedout","path":["repository"]},{"message":"Timeout on validation of query"}]}"#;
        assert!(matches!(
            read(partial, Partial::Accepted),
            Err(GithubError::Timeout { .. })
        ));
    }

    #[test]
    fn untyped_errors_without_data_are_transient() {
        for body in [
            r#"{"data":null,"errors":[{"message":"Something went wrong while executing your query. Please include `AE24:722D:20DF2FD:45B79D6:5C07C446` when reporting this issue."}]}"#,
            r#"{"data":null,"errors":[{"message":"Something unexpected happened"}]}"#,
            r#"{"errors":[{"message":"Internal error"}]}"#,
            r#"{"errors":[{}]}"#,
        ] {
            let error = read(body, Partial::Refused).unwrap_err();
            assert!(
                matches!(error, GithubError::GraphqlTransient { .. }),
                "{body}: {error:?}"
            );
            assert!(error.is_transient());
        }
    }

    #[test]
    fn errors_about_the_query_are_final() {
        for body in [
            // GitHub's typed errors.
            r#"{"data":{"repository":null},"errors":[{"type":"NOT_FOUND","path":["repository"],"message":"Could not resolve to a Repository with the name 'acme/gone'."}]}"#,
            r#"{"data":null,"errors":[{"type":"FORBIDDEN","message":"Resource not accessible by integration"}]}"#,
            // Schema errors (graphql-ruby's `extensions.code`).
            r#"{"errors":[{"path":["query","repository","nope"],"extensions":{"code":"undefinedField","typeName":"Repository","fieldName":"nope"},"locations":[{"line":1,"column":30}],"message":"Field 'nope' doesn't exist on type 'Repository'"}]}"#,
            // Parse and variable errors point into the query.
            r#"{"errors":[{"message":"Parse error on \"}\" (RCURLY) at [1, 10]","locations":[{"line":1,"column":10}]}]}"#,
        ] {
            let error = read(body, Partial::Refused).unwrap_err();
            assert!(
                matches!(error, GithubError::Graphql { .. }),
                "{body}: {error:?}"
            );
            assert!(!error.is_transient());
        }
    }

    #[test]
    fn partial_data_is_used_only_where_the_query_was_built_for_it() {
        let body = r#"{"data":{"r0":{"x":1},"r1":null},"errors":[{"type":"NOT_FOUND","path":["r1"],"message":"Could not resolve to a Repository with the name 'acme/gone'."}]}"#;
        let data = read(body, Partial::Accepted).unwrap();
        assert_eq!(data["r0"]["x"], 1);
        assert!(data["r1"].is_null());
        let error = read(body, Partial::Refused).unwrap_err();
        assert!(
            matches!(&error, GithubError::Graphql { message, .. } if message.contains("acme/gone")),
            "{error:?}"
        );
        // No data at all: nothing to use.
        let none = r#"{"data":null,"errors":[{"type":"NOT_FOUND","message":"gone"}]}"#;
        assert!(matches!(
            read(none, Partial::Accepted),
            Err(GithubError::Graphql { .. })
        ));
    }

    #[test]
    fn odd_answers_are_invalid_bodies() {
        for odd in [r#"{"data":null}"#, "[]", "{}", r#"{"errors":"nope"}"#, "7"] {
            assert!(
                matches!(
                    read(odd, Partial::Accepted),
                    Err(GithubError::InvalidBody { .. })
                ),
                "{odd}"
            );
        }
    }

    #[test]
    fn messages_from_the_server_are_cleaned() {
        let long = "x".repeat(1000);
        let body = format!(r#"{{"errors":[{{"type":"NOT_FOUND","message":"a\nb{long}"}}]}}"#);
        let Err(GithubError::Graphql { message, .. }) = read(&body, Partial::Refused) else {
            panic!("a final error");
        };
        assert!(message.starts_with("a b"), "{message}");
        assert_eq!(
            message.chars().count(),
            super::super::error::MAX_SERVER_MESSAGE_CHARS
        );
    }

    #[test]
    fn timeouts_are_recognised_in_githubs_words() {
        assert!(says_timeout("We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists."));
        assert!(says_timeout("Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug."));
        assert!(!says_timeout("Something went wrong while executing your query. Please include `AE24:722D` when reporting this issue."));
        assert!(says_timeout("upstream request timeout"));
        assert!(!says_timeout("Server Error"));
        assert!(!says_timeout("Could not resolve to a Repository"));
    }

    #[test]
    fn pages_halve_on_each_timeout_down_to_the_floor() {
        let sizes = PageSizes::new();
        assert_eq!(sizes.size(100), 100);
        assert!(sizes.shrink(100));
        assert_eq!((sizes.size(100), sizes.size(40)), (50, 20));
        assert!(sizes.shrink(100));
        assert_eq!((sizes.size(100), sizes.size(40)), (25, MIN_PAGE_SIZE));
        assert!(sizes.shrink(100));
        assert_eq!(sizes.size(100), 12);
        assert!(sizes.shrink(100));
        assert_eq!(sizes.size(100), MIN_PAGE_SIZE);
        // At the floor: no smaller, and the counter stops.
        for _ in 0..100 {
            assert!(!sizes.shrink(100));
        }
        assert_eq!(sizes.size(100), MIN_PAGE_SIZE);
        // Pages already smaller than the floor keep their size.
        assert_eq!(sizes.size(1), 1);

        let mut variables =
            serde_json::json!({"first": 100, "history": 40, "statuses": 100, "owner": "acme"});
        sizes.apply(&mut variables, &["first", "history", "missing"]);
        assert_eq!(
            variables,
            serde_json::json!({"first": 10, "history": 10, "statuses": 100, "owner": "acme"})
        );
    }
}

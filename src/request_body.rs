//! Reading a request's body whole, for the routes that take one (the push API,
//! GitHub webhooks): a declared `Content-Length` over the bound is refused before
//! anything is read, a body without one is cut off at the bound, and no body may
//! take longer than the deadline (the server's own body timeout, which may fire
//! first, means the same).
//!
//! What a failure is answered with is the caller's business; nothing here logs.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::time::Duration;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the bound (declared so, or found so while reading).
    TooLarge,
    /// Not all there before the deadline.
    TooSlow,
    /// The connection failed while reading it.
    Unreadable,
}

/// The body of a request with `headers`: at most `max` bytes, arrived within
/// `deadline`.
pub async fn read(
    headers: &HeaderMap,
    body: Body,
    max: usize,
    deadline: Duration,
) -> Result<Bytes, BodyError> {
    let declared = declared_length(headers);
    if declared.is_some_and(|length| length > max as u64) {
        return Err(BodyError::TooLarge);
    }
    match tokio::time::timeout(deadline, Limited::new(body, max).collect()).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge)
        }
        Ok(Err(error)) if is_body_timeout(error.as_ref()) => Err(BodyError::TooSlow),
        Ok(Err(_)) => Err(BodyError::Unreadable),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// Whether the request says `Content-Type: application/json`, with or without
/// parameters (`; charset=utf-8`).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The request's `Content-Length`, when it has a valid one.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Whether reading a body failed because the server's body timeout fired
/// (tower-http's `TimeoutError`, wrapped by axum's body error).
fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn json_is_recognised_with_parameters_and_in_any_case() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn a_body_is_read_within_its_bounds() {
        let headers = HeaderMap::new();
        let read = read(&headers, Body::from("hello"), 5, SECOND).await;
        assert_eq!(read, Ok(Bytes::from("hello")));
    }

    #[tokio::test]
    async fn a_body_over_the_bound_is_refused_declared_or_not() {
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, HeaderValue::from_static("6"));
        let refused = read(&declared, Body::from("hello!"), 5, SECOND).await;
        assert_eq!(refused, Err(BodyError::TooLarge));
        let undeclared = read(&HeaderMap::new(), Body::from("hello!"), 5, SECOND).await;
        assert_eq!(undeclared, Err(BodyError::TooLarge));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_is_cut_off_at_the_deadline() {
        let (_sender, body) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stream = tokio_stream_body(body);
        let refused = read(&HeaderMap::new(), stream, 5, SECOND).await;
        assert_eq!(refused, Err(BodyError::TooSlow));
    }

    /// A body whose chunks come from `receiver` (none while the sender is kept).
    fn tokio_stream_body(
        mut receiver: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> Body {
        let stream = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
        Body::from_stream(stream)
    }
}

//! The HTTP routes: `/metrics`, `/healthz` and `/readyz`, all reading the page
//! last published to [`ExporterState`]. (The landing page at `/` is the live
//! report's: `report::live`, which the daemon merges in.)
//!
//! Handlers only clone the published page and write it out: no metric
//! rendering, no computation, no store or source access. Binding the listener and
//! shutting down are the caller's job (tests bind `127.0.0.1:0`).

use super::state::ExporterState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The content type of the text exposition format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The content type of `/healthz` and `/readyz` answers.
const PLAIN_TEXT: &str = "text/plain; charset=utf-8";

/// The router serving the exporter's routes from `state`.
pub fn router(state: Arc<ExporterState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(State(state): State<Arc<ExporterState>>) -> Response {
    let page = state.page();
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        page.metrics.clone(),
    )
        .into_response()
}

async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, PLAIN_TEXT)], "ok\n").into_response()
}

async fn readyz(State(state): State<Arc<ExporterState>>) -> Response {
    let readiness = state.readiness();
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, PLAIN_TEXT)],
        format!("{}\n", readiness.reason()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use crate::templates::escape_html;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape_html("0.1.0"), "0.1.0");
    }
}

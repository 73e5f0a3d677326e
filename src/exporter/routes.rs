//! The HTTP routes: `/metrics`, `/healthz`, `/readyz` and a small landing page at
//! `/`, all reading the page last published to [`ExporterState`].
//!
//! Handlers only clone the published page and write it out: no rendering, no
//! computation, no store or source access. Binding the listener and shutting down
//! are the caller's job (tests bind `127.0.0.1:0`).

use super::state::ExporterState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
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
        .route("/", get(index))
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

async fn index(State(state): State<Arc<ExporterState>>) -> Html<String> {
    let page = state.page();
    let options = state.options();
    let simulated = if options.simulated {
        "<p class=\"simulated\"><strong>The data shown is simulated</strong>: it comes from \
         the built-in demo organisation, not from GitHub.</p>\n"
    } else {
        ""
    };
    let snapshot = match page.evaluated_at {
        Some(at) => format!("metrics evaluated at {at}"),
        None => "no metrics published yet".to_owned(),
    };
    let status = if page.readiness.is_ready() {
        "ready"
    } else {
        "not ready"
    };
    Html(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>dora-collector</title></head>\n<body>\n<h1>dora-collector {version}</h1>\n\
         {simulated}<p>DORA software-delivery metrics for Prometheus; {snapshot}; {status}.</p>\n\
         <ul>\n<li><a href=\"/metrics\">/metrics</a>: the metrics (Prometheus text format)</li>\n\
         <li><a href=\"/healthz\">/healthz</a>: liveness</li>\n\
         <li><a href=\"/readyz\">/readyz</a>: readiness (every repository synced once)</li>\n\
         <li><a href=\"/report\">/report</a>: the KPI report for meetings (<a href=\"/report?window=7d\">7d</a>, <a href=\"/report?window=30d\">30d</a>, <a href=\"/report?window=90d\">90d</a>)</li>\n\
         </ul>\n</body>\n</html>\n",
        version = escape_html(&options.version),
    ))
}

/// Escapes text for HTML element content and attribute values.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape_html("0.1.0"), "0.1.0");
    }
}

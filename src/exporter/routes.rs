//! The HTTP routes: `/metrics`, `/healthz`, `/readyz` and a small landing page at
//! `/`, all reading the page last published to [`ExporterState`].
//!
//! Handlers only clone the published page and write it out (the landing page is the
//! template `index.html`, HTML-escaped by [`crate::templates`]): no metric
//! rendering, no computation, no store or source access. Binding the listener and
//! shutting down are the caller's job (tests bind `127.0.0.1:0`).

use super::state::{ExporterState, HistoryProgress};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::{context, Environment};
use std::sync::{Arc, LazyLock};

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

/// The landing page's template.
const INDEX_TEMPLATE: &str = "index.html";

/// The landing page's template, compiled once.
static TEMPLATES: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    crate::templates::environment(&[(INDEX_TEMPLATE, include_str!("index.html"))])
        .map_err(|e| e.to_string())
});

async fn index(State(state): State<Arc<ExporterState>>) -> Response {
    let page = state.page();
    let options = state.options();
    let snapshot = match page.evaluated_at {
        Some(at) => format!("metrics evaluated at {at}"),
        None => "no metrics published yet".to_owned(),
    };
    let status = if page.readiness.is_ready() {
        "ready"
    } else {
        "not ready"
    };
    let history = match page.history {
        HistoryProgress {
            repositories: 0, ..
        } => String::new(),
        HistoryProgress {
            complete,
            repositories,
            since: Some(since),
        } => format!(
            "history complete for {complete} of {repositories} repositories, back to {since} at \
             least"
        ),
        HistoryProgress { repositories, .. } => {
            format!("history complete for none of {repositories} repositories yet")
        }
    };
    let rendered = TEMPLATES.as_ref().map_err(Clone::clone).and_then(|env| {
        env.get_template(INDEX_TEMPLATE)
            .and_then(|template| {
                template.render(context! {
                    version => options.version.as_str(),
                    simulated => options.simulated,
                    push_api => options.push_api,
                    github_webhooks => options.github_webhooks,
                    snapshot => snapshot,
                    status => status,
                    history => history,
                })
            })
            .map_err(|e| e.to_string())
    });
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(cause) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, PLAIN_TEXT)],
            format!("cannot render the page: {cause}\n"),
        )
            .into_response(),
    }
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

//! The exporter's HTTP routes, served on 127.0.0.1 from an `ExporterState`:
//! liveness, readiness before and after the first syncs, no landing page (the
//! report's, `tests/report/landing.rs`), and
//! `/metrics` returning exactly the bytes rendered at publish time.

use crate::exporter_fixture;

use dora_collector::exporter::{
    render, router, ExporterOptions, ExporterState, HealthSnapshot, METRICS_CONTENT_TYPE,
};
use exporter_fixture::{health, health_only_api_synced, repo, snapshot, VERSION};
use std::net::SocketAddr;
use std::sync::Arc;

struct App {
    state: Arc<ExporterState>,
    address: SocketAddr,
    client: reqwest::Client,
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request to 127.0.0.1")
    }

    async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }
}

/// Serves a fresh state on a random local port.
async fn spawn_app(simulated: bool) -> App {
    spawn_with(ExporterOptions {
        repositories: vec![repo("acme/web"), repo("acme/api")],
        simulated,
        version: VERSION.to_owned(),
        push_api: false,
        github_webhooks: false,
        sources: Vec::new(),
    })
    .await
}

/// Serves a fresh state with `options` on a random local port.
async fn spawn_with(options: ExporterOptions) -> App {
    let state = Arc::new(ExporterState::new(options).expect("initial render"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    let app = router(Arc::clone(&state));
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server runs");
    });
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    App {
        state,
        address,
        client,
    }
}

#[tokio::test]
async fn healthz_answers_200_at_once() {
    let app = spawn_app(false).await;
    assert_eq!(app.get_text("/healthz").await, (200, "ok\n".to_owned()));
}

#[tokio::test]
async fn readyz_waits_for_a_snapshot_and_every_repository() {
    let app = spawn_app(false).await;

    let (status, body) = app.get_text("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "not ready: no metrics published yet; waiting for the first successful sync of acme/api, acme/web\n"
    );

    // Health alone (no snapshot yet) with one repository synced.
    app.state
        .publish_health(health_only_api_synced())
        .expect("publish");
    let (status, body) = app.get_text("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "not ready: no metrics published yet; waiting for the first successful sync of acme/web\n"
    );

    app.state
        .publish(snapshot(), health_only_api_synced())
        .expect("publish");
    let (status, body) = app.get_text("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "not ready: waiting for the first successful sync of acme/web\n"
    );

    app.state.publish(snapshot(), health()).expect("publish");
    assert_eq!(app.get_text("/readyz").await, (200, "ready\n".to_owned()));

    // Readiness is sticky: health that no longer reports the syncs keeps it ready.
    app.state
        .publish_health(HealthSnapshot::default())
        .expect("publish");
    assert_eq!(app.get_text("/readyz").await.0, 200);
}

#[tokio::test]
async fn repositories_outside_the_configuration_do_not_make_it_ready() {
    let app = spawn_app(false).await;
    let mut health = health_only_api_synced();
    health.sources[0].repositories[1].repository = repo("other/repo");
    health.sources[0].repositories[1].last_success = Some(exporter_fixture::NOW);
    app.state.publish(snapshot(), health).expect("publish");
    let (status, body) = app.get_text("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("acme/web"), "{body}");
}

#[tokio::test]
async fn metrics_serve_the_bytes_rendered_at_publish() {
    let app = spawn_app(false).await;
    app.state.publish(snapshot(), health()).expect("publish");

    let response = app.get("/metrics").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        METRICS_CONTENT_TYPE
    );
    assert_eq!(
        METRICS_CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = response.text().await.expect("body");
    let expected = render(Some(&snapshot()), &health(), VERSION).expect("renders");
    assert_eq!(body, expected);
}

#[tokio::test]
async fn before_the_first_publish_metrics_hold_only_build_info() {
    let app = spawn_app(false).await;
    let (status, body) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        render(None, &HealthSnapshot::default(), VERSION).unwrap()
    );
    assert!(body.contains("dora_build_info{version=\"1.2.3-test\"} 1"));
    assert!(!body.contains("dora_deployments_total"));
}

#[tokio::test]
async fn scrapes_never_render() {
    let app = spawn_app(false).await;
    assert_eq!(app.state.render_count(), 1, "the initial page");
    app.state.publish(snapshot(), health()).expect("publish");
    assert_eq!(app.state.render_count(), 2);

    let first = app.get_text("/metrics").await.1;
    for _ in 0..5 {
        assert_eq!(app.get_text("/metrics").await.1, first);
        app.get_text("/readyz").await;
        app.get_text("/").await;
    }
    assert_eq!(app.state.render_count(), 2, "scrapes did not render");

    app.state.publish(snapshot(), health()).expect("publish");
    assert_eq!(app.state.render_count(), 3);
}

#[tokio::test]
async fn publishing_health_alone_keeps_the_latest_snapshot() {
    let app = spawn_app(false).await;
    app.state.publish(snapshot(), health()).expect("publish");
    let mut later = health();
    later.sources[0].repositories[1].sync_errors = 3;
    app.state.publish_health(later.clone()).expect("publish");

    let body = app.get_text("/metrics").await.1;
    assert_eq!(
        body,
        render(Some(&snapshot()), &later, VERSION).expect("renders")
    );
    assert!(body
        .contains(r#"dora_collector_sync_errors_total{source="github",repository="acme/web"} 3"#));
    assert_eq!(
        app.state.snapshot().map(|s| s.evaluated_at),
        Some(exporter_fixture::NOW)
    );
}

/// The landing page is the live report's (`tests/report/landing.rs`): the
/// exporter alone serves no `/`.
#[tokio::test]
async fn the_exporter_alone_serves_no_landing_page() {
    let app = spawn_app(false).await;
    assert_eq!(app.get("/").await.status().as_u16(), 404);
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let app = spawn_app(false).await;
    assert_eq!(app.get("/metrics/extra").await.status().as_u16(), 404);
}

//! The landing page at `/`, served on 127.0.0.1 the way the daemon mounts it
//! (the live report's router merged into the exporter's): the organisation's
//! numbers with levels and their change, each team's row linking to its report,
//! what is stale or failing to sync, the links (Grafana when configured, the
//! push API and webhooks when served), where each repository is read from, no
//! numbers yet without a store, the query it takes, and one page made a minute
//! at most.

use crate::report_fixture;

use dora_collector::exporter::{self, ExporterOptions, ExporterState};
use dora_collector::report::{Frame, LiveReport, Now, StoreOpener};
use dora_collector::store::{SqliteStore, Store};
use report_fixture::{Fixture, UNTIL};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct App {
    address: SocketAddr,
    client: reqwest::Client,
    opens: Arc<AtomicUsize>,
    frame: Arc<Mutex<Frame>>,
    _fixture: Fixture,
}

impl App {
    async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.client
            .get(format!("http://{}{path_and_query}", self.address))
            .send()
            .await
            .expect("request to 127.0.0.1")
    }

    async fn text(&self, path_and_query: &str) -> (u16, String) {
        let response = self.get(path_and_query).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }
}

fn frame() -> Frame {
    Frame {
        version: "1.2.3-test".to_owned(),
        simulated: false,
        ready: true,
        readiness: "every repository synced once over the lookback".to_owned(),
        snapshot: "Metrics evaluated at 2026-03-31T23:59:59Z".to_owned(),
        push_api: false,
        github_webhooks: false,
        grafana_url: None,
        sources: Vec::new(),
        history: String::new(),
    }
}

/// The fixture's store (or none, `with_store` false) behind the landing page,
/// evaluated at the fixture's end, its frame what `frame` holds at each request.
async fn serve(with_store: bool) -> App {
    let fixture = Fixture::new();
    let path = if with_store {
        fixture.store_path()
    } else {
        fixture.store_path().with_file_name("missing.db")
    };
    let opens = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&opens);
    let open: StoreOpener = Arc::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(dora_collector::report::open_store(&path)?) as Box<dyn Store>)
    });
    let now: Now = Arc::new(|| UNTIL);
    let shown = Arc::new(Mutex::new(frame()));
    let read = Arc::clone(&shown);
    let live = LiveReport::with_store_opener(Arc::new(fixture.config()), open, now)
        .with_frame(Arc::new(move || read.lock().unwrap().clone()));
    let state = Arc::new(
        ExporterState::new(ExporterOptions::new(vec![report_fixture::repo("acme/api")]))
            .expect("exporter state"),
    );
    let app = exporter::router(state).merge(live.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server runs");
    });
    App {
        address,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        opens,
        frame: shown,
        _fixture: fixture,
    }
}

#[tokio::test]
async fn the_landing_page_shows_the_organisation_its_teams_and_sync_problems() {
    let app = serve(true).await;
    let response = app.get("/").await;
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    let body = response.text().await.unwrap();
    for text in [
        "<h1>dora-collector 1.2.3-test</h1>",
        "Metrics evaluated at 2026-03-31T23:59:59Z",
        "<strong>Ready</strong>: every repository synced once over the lookback",
        // The organisation over the default window, with levels and changes.
        "<h2>The organisation, last 30d</h2>",
        "<div class=\"label\">Deployment frequency</div>",
        "<span class=\"badge ",
        "previous ",
        // Each team, linking to its report.
        "<a href=\"/report?window=30d&amp;team=payments\">payments</a>",
        "<a href=\"/report?window=30d&amp;team=web\">web</a>",
        // The window selector, and the report over each window.
        "<a href=\"?window=7d\">7d</a>",
        "<a href=\"/report?window=7d\">7d</a>",
        // What failed at its last sync, with the stored error.
        "<td>acme/web</td><td>github_deployments</td>",
        "HTTP 502 Bad Gateway",
        "<td>acme/billing</td><td>github_issues</td>",
        "repositories are stale or failing to sync",
        "<div class=\"status warn\">",
        // Links.
        "href=\"/metrics\"",
        "href=\"/healthz\"",
        "href=\"/readyz\"",
        "set <code>server.grafana_url</code> to link them here",
    ] {
        assert!(body.contains(text), "{text} in {body}");
    }
    for absent in [
        "simulated",
        "/api/v1/deployments",
        "/webhooks/github",
        "Read from",
    ] {
        assert!(!body.contains(absent), "{absent} in {body}");
    }
}

#[tokio::test]
async fn the_frame_says_what_the_server_serves() {
    let app = serve(true).await;
    *app.frame.lock().unwrap() = Frame {
        simulated: true,
        ready: false,
        readiness: "waiting for the first sync of acme/web".to_owned(),
        push_api: true,
        github_webhooks: true,
        grafana_url: Some("https://grafana.example.com/base".to_owned()),
        sources: vec![
            ("acme/api".to_owned(), "GitHub (Deployments API)"),
            ("acme-gl/platform/billing".to_owned(), "GitLab (pipelines)"),
        ],
        ..frame()
    };
    let (status, body) = app.text("/").await;
    assert_eq!(status, 200);
    for text in [
        "The data shown is simulated",
        "<strong>Not ready</strong>: waiting for the first sync of acme/web",
        "<a href=\"https://grafana.example.com/base/d/dora-overview\">DORA overview</a>",
        "<a href=\"https://grafana.example.com/base/d/dora-collector-health\">collector health</a>",
        "<code>POST /api/v1/deployments</code>",
        "<code>docs/push.md</code>",
        "<code>POST /webhooks/github</code>",
        "<code>docs/webhooks.md</code>",
        "<th>Read from</th>",
        "<tr><td>acme/api</td><td>GitHub (Deployments API)</td></tr>",
        "<tr><td>acme-gl/platform/billing</td><td>GitLab (pipelines)</td></tr>",
    ] {
        assert!(body.contains(text), "{text} in {body}");
    }
}

/// The history-completeness count the daemon puts in the frame: from the
/// exporter's page (the scope's repositories by the sources' health: one read by
/// GitHub and Argo CD is complete once both say so; a PagerDuty unit is no
/// repository), shown under the status; nothing without it.
#[tokio::test]
async fn the_page_says_how_many_repositories_have_their_history_complete() {
    use dora_collector::domain::Timestamp;
    use dora_collector::exporter::{HealthSnapshot, RepositoryHealth, SourceHealth};
    let repo = report_fixture::repo;
    let state = ExporterState::new(ExporterOptions::new(vec![
        repo("acme/api"),
        repo("acme/web"),
        repo("acme/billing"),
    ]))
    .unwrap();
    assert_eq!(state.page().history.to_string(), "");
    let health = |name: &str, since: Option<i64>| RepositoryHealth {
        last_success: since.map(Timestamp),
        history_since: since.map(Timestamp),
        ..RepositoryHealth::new(repo(name))
    };
    let source = |name: &str, repositories: Vec<RepositoryHealth>| SourceHealth {
        source: name.to_owned(),
        repositories,
        ..SourceHealth::default()
    };
    let snapshot = |argocd_api: Option<i64>| HealthSnapshot {
        sources: vec![
            source("argocd", vec![health("acme/api", argocd_api)]),
            source(
                "github",
                vec![
                    health("acme/api", Some(1_000)),
                    health("acme/web", Some(2_000)),
                    health("acme/billing", None),
                ],
            ),
            source("pagerduty", vec![health("-pagerduty/pabc123", Some(500))]),
        ],
        ..HealthSnapshot::default()
    };
    state.publish_health(snapshot(None)).unwrap();
    let history = state.page().history;
    assert_eq!((history.complete, history.repositories), (1, 3));
    state.publish_health(snapshot(Some(1_500))).unwrap();
    let history = state.page().history;
    assert_eq!(
        (history.complete, history.repositories, history.since),
        (2, 3, Some(Timestamp(2_000)))
    );
    let expected = format!(
        "history complete for 2 of 3 repositories, back to {} at least",
        Timestamp(2_000)
    );
    assert_eq!(history.to_string(), expected);

    let app = serve(true).await;
    let (_, body) = app.text("/").await;
    assert!(!body.contains("Sync progress"), "{body}");
    *app.frame.lock().unwrap() = Frame {
        history: history.to_string(),
        ..frame()
    };
    let (status, body) = app.text("/").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!("<p class=\"meta\">Sync progress: {expected}.</p>")),
        "{body}"
    );
}

#[tokio::test]
async fn without_a_store_the_page_says_there_are_no_numbers_yet() {
    let app = serve(false).await;
    let (status, body) = app.text("/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<h2>No numbers yet</h2>"), "{body}");
    assert!(
        body.contains("The store does not exist yet: the daemon creates it at its first sync."),
        "{body}"
    );
    assert!(body.contains("href=\"/report\""), "{body}");
    assert!(!body.contains("<h2>Teams</h2>"), "{body}");
}

#[tokio::test]
async fn the_page_takes_a_window_and_nothing_else() {
    let app = serve(true).await;
    let (status, body) = app.text("/?window=7d").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<h2>The organisation, last 7d</h2>"),
        "{body}"
    );
    assert!(body.contains("<strong>7d</strong>"), "{body}");
    for (query, reason) in [
        ("/?team=payments", "this page takes: window"),
        ("/?window=0d", "window:"),
        ("/?colour=red", "unknown query parameter"),
        ("/?window=7d&window=30d", "more than once"),
    ] {
        let (status, body) = app.text(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(reason), "{query}: {body}");
    }
}

#[tokio::test]
async fn the_page_is_made_once_a_minute_for_the_same_window_and_frame() {
    let app = serve(true).await;
    let first = app.text("/").await.1;
    let again = app.text("/").await.1;
    assert_eq!(first, again);
    assert_eq!(app.opens.load(Ordering::SeqCst), 1, "served from the cache");
    // Another window, or a new evaluation (a new frame), makes a new page.
    app.text("/?window=7d").await;
    assert_eq!(app.opens.load(Ordering::SeqCst), 2);
    app.frame.lock().unwrap().snapshot = "Metrics evaluated at 2026-04-01T00:04:59Z".to_owned();
    let newer = app.text("/?window=7d").await.1;
    assert!(newer.contains("2026-04-01T00:04:59Z"), "{newer}");
    assert_eq!(app.opens.load(Ordering::SeqCst), 3);
}

/// The fixture store's sync problems are what the page lists: its failed syncs
/// are in the store as the daemon records them.
#[test]
fn the_fixture_has_failed_syncs_to_show() {
    let fixture = Fixture::new();
    let store = SqliteStore::open(fixture.store_path()).unwrap();
    let failed: Vec<String> = store
        .sync_status()
        .unwrap()
        .into_iter()
        .filter(|s| s.last_error.is_some())
        .map(|s| format!("{} {}", s.repository, s.source))
        .collect();
    assert_eq!(
        failed,
        ["acme/billing github_issues", "acme/web github_deployments"]
    );
}

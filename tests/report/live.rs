//! The live report page at `/report`, served on 127.0.0.1 the way the daemon mounts
//! it (merged into the exporter's router): the page and its headers, the window
//! selector, query validation (400 with a reason), a missing store (503), one report
//! computed at a time, the page evaluated at the clock it is given, and `live_page`
//! over a fixed time.

use crate::report_fixture;

use dora_collector::daemon::{Clock, ManualClock, SystemClock};
use dora_collector::domain::{Team, Timestamp};
use dora_collector::exporter::{self, ExporterOptions, ExporterState};
use dora_collector::report::{
    self, generate, live_page, LiveQuery, LiveReport, Now, ReportRequest, ReportWindow, StoreOpener,
};
use dora_collector::store::{SqliteStore, Store};
use report_fixture::{Fixture, UNTIL};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct App {
    address: SocketAddr,
    client: reqwest::Client,
    _fixture: Option<Fixture>,
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

/// Serves the exporter and the report page together, as the daemon does.
async fn serve(router: axum::Router, fixture: Option<Fixture>) -> App {
    let state = Arc::new(
        ExporterState::new(ExporterOptions::new(vec![report_fixture::repo("acme/api")]))
            .expect("exporter state"),
    );
    // The daemon's one line.
    let app = exporter::router(state).merge(router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server runs");
    });
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    App {
        address,
        client,
        _fixture: fixture,
    }
}

/// The wall clock, as the daemon's default `SystemClock`.
fn wall_clock() -> Now {
    Arc::new(|| SystemClock.now())
}

async fn fixture_app() -> App {
    let fixture = Fixture::new();
    let router = report::live_router(Arc::new(fixture.config()), wall_clock());
    serve(router, Some(fixture)).await
}

#[tokio::test]
async fn the_page_is_served_with_its_headers() {
    let app = fixture_app().await;
    let response = app.get("/report").await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        header("content-security-policy").as_deref(),
        Some(report::render::html::CONTENT_SECURITY_POLICY)
    );
    let body = response.text().await.unwrap();
    assert!(body.starts_with("<!doctype html>"));
    // The default window, and links to the configured ones.
    assert!(
        body.contains("<title>DORA report: organisation, 30d to "),
        "{body}"
    );
    assert!(body.contains(
        "<nav class=\"windows\">Window: <a href=\"?window=7d\">7d</a><strong>30d</strong>\
         <a href=\"?window=90d\">90d</a></nav>"
    ));
    // The exporter's routes are still there.
    assert_eq!(app.text("/healthz").await.0, 200);
}

#[tokio::test]
async fn the_window_and_team_come_from_the_query() {
    let app = fixture_app().await;
    let (status, body) = app.text("/report?window=7d").await;
    assert_eq!(status, 200);
    assert!(body.contains("<title>DORA report: organisation, 7d to "));
    let (status, body) = app.text("/report?window=14d&team=payments").await;
    assert_eq!(status, 200);
    assert!(body.contains("<title>DORA report: team payments, 14d to "));
    // A window that is not configured joins the selector; the team is kept.
    assert!(body.contains("<a href=\"?window=7d&amp;team=payments\">7d</a><strong>14d</strong>"));
    let (status, _) = app.text("/report?team=web%20").await;
    assert_eq!(status, 400, "team names are exact");
}

#[tokio::test]
async fn bad_queries_are_400_with_a_reason() {
    let app = fixture_app().await;
    let long = format!("/report?window={}", "9".repeat(1100));
    let cases: [(&str, &str); 7] = [
        (
            "/report?window=abc",
            "bad request: window: expected a window like",
        ),
        ("/report?window=400d", "from 1h to 366d"),
        ("/report?window=30m", "from 1h to 366d"),
        (
            "/report?window=7d&window=30d",
            "query parameter window is given more than once",
        ),
        (
            "/report?windw=7d",
            "unknown query parameter \"windw\"; this page takes: window, team",
        ),
        (
            "/report?team=nobody",
            "team: \"nobody\" is not a team of the configuration",
        ),
        (&long, "the query string is longer than 1024 bytes"),
    ];
    for (path, reason) in cases {
        let response = app.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/plain; charset=utf-8"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains(reason), "{path}: {body}");
        assert_eq!(body.lines().count(), 1, "{body}");
    }
}

#[tokio::test]
async fn a_missing_store_is_503_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("dora.db");
    let config = Arc::new(report_fixture::config(&missing));
    let app = serve(report::live_router(config, wall_clock()), None).await;
    let response = app.get("/report").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "10");
    let body = response.text().await.unwrap();
    assert!(body.starts_with("no data yet: the store "), "{body}");
    assert!(!missing.exists());
}

#[tokio::test]
async fn reports_are_computed_one_at_a_time() {
    let fixture = Fixture::new();
    let path = fixture.store_path();
    let (active, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, m) = (Arc::clone(&active), Arc::clone(&most));
    let open: StoreOpener = Arc::new(move || {
        let now = a.fetch_add(1, Ordering::SeqCst) + 1;
        m.fetch_max(now, Ordering::SeqCst);
        // Widens the window in which a second request would overlap this one.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let store = report::open_store(&path);
        a.fetch_sub(1, Ordering::SeqCst);
        Ok(Box::new(store?) as Box<dyn Store>)
    });
    let router =
        LiveReport::with_store_opener(Arc::new(fixture.config()), open, wall_clock()).router();
    let app = Arc::new(serve(router, Some(fixture)).await);
    let requests: Vec<_> = (0..4)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.text("/report?window=7d").await.0 })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(most.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_page_is_evaluated_at_the_clock_it_is_given() {
    let fixture = Fixture::new();
    let config = fixture.config();
    let store = SqliteStore::open(fixture.store_path()).unwrap();
    let window = ReportWindow::default();
    let expected = |at: Timestamp| live_page(&store, &config, at, window, None).unwrap();
    let (at_until, a_day_later) = (expected(UNTIL), expected(Timestamp(UNTIL.0 + 86_400)));
    assert_ne!(at_until, a_day_later);
    let clock = Arc::new(ManualClock::new(UNTIL));
    let now: Now = {
        let clock = Arc::clone(&clock);
        Arc::new(move || clock.now())
    };
    let app = serve(report::live_router(Arc::new(fixture.config()), now), None).await;
    let (status, body) = app.text("/report").await;
    assert_eq!(status, 200);
    assert_eq!(body, at_until);
    // Read on every request, not once.
    clock.advance(86_400);
    let (status, body) = app.text("/report").await;
    assert_eq!(status, 200);
    assert_eq!(body, a_day_later);
}

#[test]
fn live_page_is_the_html_report_with_a_window_selector() {
    let fixture = Fixture::new();
    let config = fixture.config();
    let store = SqliteStore::open(fixture.store_path()).unwrap();
    let window = ReportWindow::parse("30d").unwrap();
    let team = Team::parse("web").unwrap();
    let page = live_page(&store, &config, UNTIL, window, Some(&team)).unwrap();
    let request = ReportRequest {
        window,
        until: UNTIL,
        team: Some(team),
        generated_at: UNTIL,
    };
    let file = report::render(
        &generate(&store, &config, &request).unwrap(),
        report::Format::Html,
    )
    .unwrap();
    let nav = "<nav class=\"windows\">Window: <a href=\"?window=7d&amp;team=web\">7d</a>\
               <strong>30d</strong><a href=\"?window=90d&amp;team=web\">90d</a></nav>\n";
    assert_eq!(page.replace(nav, ""), file);
}

#[test]
fn queries_parse_against_the_configuration() {
    let fixture = Fixture::new();
    let config = fixture.config();
    let query = LiveQuery::parse(None, &config).unwrap();
    assert_eq!(query.window, ReportWindow::default());
    assert_eq!(query.team, None);
    let query = LiveQuery::parse(Some("team=payments&window=90d"), &config).unwrap();
    assert_eq!(query.window, ReportWindow::parse("90d").unwrap());
    assert_eq!(query.team.as_ref().map(Team::as_str), Some("payments"));
    assert!(LiveQuery::parse(Some("window="), &config).is_err());
    // Percent-encoding is decoded before validation.
    assert_eq!(
        LiveQuery::parse(Some("window=%37d"), &config)
            .unwrap()
            .window,
        ReportWindow::parse("7d").unwrap()
    );
}

/// The longest valid team name (255 bytes), every byte percent-encoded, with the
/// longest window: the query fits.
#[tokio::test]
async fn the_longest_valid_team_name_can_be_asked_for() {
    let fixture = Fixture::new();
    let team = "é".repeat(127);
    assert_eq!(team.len(), 254);
    let text = std::fs::read_to_string(fixture.config_path())
        .unwrap()
        .replace("team = \"web\"", &format!("team = \"{team}\""));
    let config = dora_collector::config::Config::from_toml_str(&text, report_fixture::lookup)
        .expect("a valid configuration");
    let app = serve(
        report::live_router(Arc::new(config), wall_clock()),
        Some(fixture),
    )
    .await;
    let encoded: String = team.bytes().map(|b| format!("%{b:02X}")).collect();
    let query = format!("window=%33%36%36%64&team={encoded}");
    assert!(
        query.len() > 512,
        "longer than the old limit: {}",
        query.len()
    );
    let (status, body) = app.text(&format!("/report?{query}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("team {team}, 366d")), "{body}");
}

/// A store that cannot be read: a 500 that says so, without the file's path
/// (the page is not authenticated; the log has it).
#[tokio::test]
async fn a_failure_is_500_naming_what_failed_but_no_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    std::fs::write(
        &store,
        "this is not a SQLite database, but a text file ".repeat(100),
    )
    .unwrap();
    let config = Arc::new(report_fixture::config(&store));
    let app = serve(report::live_router(config, wall_clock()), None).await;
    let (status, body) = app.text("/report").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body,
        "the report could not be made: the store could not be read; the daemon's log has \
         the details\n"
    );
    let dir_text = dir.path().display().to_string();
    assert!(!body.contains(&dir_text), "{body}");
}

/// A flood of `/report` requests: one computes, 8 wait their turn, and every
/// other is answered 503 at once rather than held (each held request keeps one of
/// the server's connections busy).
#[tokio::test]
async fn a_flood_of_reports_is_refused_at_once_beyond_the_waiting_room() {
    const FLOOD: usize = 20;
    const ADMITTED: usize = 1 + 8;
    let fixture = Fixture::new();
    let path = fixture.store_path();
    let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hold = Arc::clone(&released);
    let open: StoreOpener = Arc::new(move || {
        // The first report holds its turn until the test has seen the refusals.
        while !hold.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Ok(Box::new(report::open_store(&path)?) as Box<dyn Store>)
    });
    let router =
        LiveReport::with_store_opener(Arc::new(fixture.config()), open, wall_clock()).router();
    let app = Arc::new(serve(router, Some(fixture)).await);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..FLOOD {
        let app = Arc::clone(&app);
        let done = done_tx.clone();
        tokio::spawn(async move {
            let _ = done.send(app.text("/report?window=7d").await);
        });
    }
    let mut statuses = Vec::new();
    for _ in 0..FLOOD - ADMITTED {
        let (status, body) = done_rx.recv().await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("busy"), "{body}");
        statuses.push(status);
    }
    released.store(true, Ordering::SeqCst);
    for _ in 0..ADMITTED {
        let (status, body) = done_rx.recv().await.unwrap();
        assert_eq!(status, 200, "{body}");
        statuses.push(status);
    }
    assert_eq!(statuses.len(), FLOOD);
}

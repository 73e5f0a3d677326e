//! A hand-written fake GitHub that misbehaves: odd and hostile items (unknown enum
//! values, nulls, wrong types, JSON nested too deeply) are skipped and counted, in
//! the sync report and in `dora_collector_skipped_items_total`; null optional
//! fields are read;
//! bodies that are too large, not JSON, or that link away from `api_url` fail the
//! repository with one clear error, and a request that never answers does not
//! hold up shutdown. Nothing panics.

use crate::support::{config, fast_retries, repo, World};
use axum::extract::Path as UrlPath;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dora_collector::daemon::{self, CancellationToken, RepoOutcome};
use dora_collector::domain::RepoName;
use dora_collector::sources::github::MAX_RESPONSE_BYTES;
use dora_collector::store::{SqliteStore, Store};
use std::sync::Arc;
use tokio::sync::Notify;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const NOW: &str = "2025-01-15T11:00:00Z";

async fn deployments(UrlPath((_, name)): UrlPath<(String, String)>) -> Response {
    match name.as_str() {
        "odd" => axum::Json(serde_json::json!([
            {"id": 1, "sha": "not-a-sha", "environment": "production", "created_at": NOW},
            {"id": 2, "sha": SHA, "environment": "production", "created_at": NOW, "extra": {"a": [1]}},
            42,
            null,
            {"id": 3, "sha": SHA, "environment": "production", "created_at": "last tuesday"}
        ]))
        .into_response(),
        "huge" => {
            let body = format!("[{}]", "0,".repeat(MAX_RESPONSE_BYTES / 2 + 1) + "0");
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        "html" => ([(header::CONTENT_TYPE, "text/html")], "<html>Unicorn!</html>").into_response(),
        "away" => (
            [(header::LINK, "<http://elsewhere.example/repos/acme/away/deployments?page=2>; rel=\"next\"")],
            axum::Json(serde_json::json!([])),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn statuses() -> Response {
    axum::Json(serde_json::json!([
        {"state": "exploded", "created_at": NOW},
        {"state": "success", "created_at": NOW},
        {"state": "in_progress"}
    ]))
    .into_response()
}

async fn empty() -> Response {
    axum::Json(serde_json::json!([])).into_response()
}

/// Serves `router` on 127.0.0.1:0; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test]
async fn odd_items_are_skipped_and_odd_bodies_fail_one_repository_each() {
    let router = Router::new()
        .route("/repos/{owner}/{name}/deployments", get(deployments))
        .route(
            "/repos/{owner}/{name}/deployments/{id}/statuses",
            get(statuses),
        )
        .route("/repos/{owner}/{name}/issues", get(empty))
        .route("/repos/{owner}/{name}/pulls", get(empty));
    let url = serve(router).await;
    let world = World::new(dora_collector::sim::Org::empty(
        "acme",
        dora_collector::sim::DEFAULT_NOW,
    ))
    .await;
    let names = ["acme/odd", "acme/huge", "acme/html", "acme/away"];
    let repos: Vec<_> = names.iter().map(|n| repo(n, "t")).collect();
    let config = config(&url, "token", &world.store_path(), &repos);
    let report = daemon::sync_once_with(
        &config,
        world.clock.clone(),
        &CancellationToken::new(),
        &|_| {},
        fast_retries(),
    )
    .await
    .unwrap();

    let RepoOutcome::Synced(odd) = &report.repositories[0].outcome else {
        panic!("acme/odd syncs: {report:?}");
    };
    // Four unreadable deployments and two unreadable statuses.
    assert_eq!(odd.skipped_items, 6, "{odd:?}");
    assert_eq!(odd.applied.deployments.inserted, 1, "{odd:?}");
    let failure = |index: usize| match &report.repositories[index].outcome {
        RepoOutcome::Failed(error) => error.clone(),
        other => panic!("{}: {other:?}", names[index]),
    };
    assert_eq!(
        failure(1),
        format!(
            "the response from {url}/repos/acme/huge/deployments?per_page=100 is larger than \
             {MAX_RESPONSE_BYTES} bytes; refusing to read it"
        )
    );
    let html = failure(2);
    assert!(
        html.starts_with(&format!(
            "unexpected response from {url}/repos/acme/html/deployments?per_page=100: not JSON"
        )),
        "{html}"
    );
    assert_eq!(
        failure(3),
        "the next page of a list points outside github.api_url: \
         http://elsewhere.example/repos/acme/away/deployments?page=2"
    );

    let store = SqliteStore::open(world.store_path()).unwrap();
    let stored = store
        .read_repository(&RepoName::parse("acme/odd").unwrap())
        .unwrap();
    assert_eq!(stored.deployments.len(), 1);
    assert_eq!(stored.deployments[0].id, 2);
    // A failed repository advanced no cursor.
    let huge = store
        .read_repository(&RepoName::parse("acme/huge").unwrap())
        .unwrap();
    assert!(huge.cursors.is_empty() && huge.deployments.is_empty());
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_request_that_never_answers() {
    let arrived = Arc::new(Notify::new());
    let notify = Arc::clone(&arrived);
    let router = Router::new().route(
        "/repos/{owner}/{name}/deployments",
        get(move || {
            let notify = Arc::clone(&notify);
            async move {
                notify.notify_one();
                std::future::pending::<()>().await;
                StatusCode::OK
            }
        }),
    );
    let url = serve(router).await;
    let world = World::new(dora_collector::sim::Org::empty(
        "acme",
        dora_collector::sim::DEFAULT_NOW,
    ))
    .await;
    let config = config(
        &url,
        "token",
        &world.store_path(),
        &[repo("acme/slow", "t")],
    );
    let daemon = world.start(config).await;
    arrived.notified().await;
    // The request is in flight; shutting down cancels it between store calls.
    daemon.shutdown().await.unwrap();
    let store = SqliteStore::open(world.store_path()).unwrap();
    assert!(
        store.sync_status().unwrap().is_empty(),
        "a cancelled sync is not recorded"
    );
    assert_eq!(store.counts().unwrap().cursors, 0);
}

/// A compare of 150 commits served 100 per page by `page` number, without `Link`.
async fn compare_without_link(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let commit = |n: usize| {
        serde_json::json!({
            "sha": format!("{n:040x}"),
            "commit": {"author": {"date": NOW}, "message": "change"},
            "parents": [{"sha": format!("{:040x}", n.max(1) - 1)}],
        })
    };
    let range = match page {
        1 => 1..101,
        2 => 101..151,
        _ => 0..0,
    };
    axum::Json(serde_json::json!({
        "status": "ahead",
        "total_commits": 150,
        "commits": range.map(commit).collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn two_deployments() -> Response {
    axum::Json(serde_json::json!([
        {"id": 2, "sha": format!("{:040x}", 150), "environment": "production", "created_at": "2025-01-15T11:00:00Z"},
        {"id": 1, "sha": format!("{:040x}", 0), "environment": "production", "created_at": "2025-01-15T10:00:00Z"}
    ]))
    .into_response()
}

async fn success_at(UrlPath((_, _, id)): UrlPath<(String, String, u64)>) -> Response {
    let at = if id == 1 {
        "2025-01-15T10:01:00Z"
    } else {
        "2025-01-15T11:01:00Z"
    };
    axum::Json(serde_json::json!([{"state": "success", "created_at": at}])).into_response()
}

#[tokio::test]
async fn a_compare_without_link_headers_is_paged_by_number() {
    let router = Router::new()
        .route("/repos/{owner}/{name}/deployments", get(two_deployments))
        .route(
            "/repos/{owner}/{name}/deployments/{id}/statuses",
            get(success_at),
        )
        .route(
            "/repos/{owner}/{name}/compare/{basehead}",
            get(compare_without_link),
        )
        .route("/repos/{owner}/{name}/issues", get(empty))
        .route("/repos/{owner}/{name}/pulls", get(empty));
    let url = serve(router).await;
    let world = World::new(dora_collector::sim::Org::empty(
        "acme",
        dora_collector::sim::DEFAULT_NOW,
    ))
    .await;
    let config = config(
        &url,
        "token",
        &world.store_path(),
        &[repo("acme/paged", "t")],
    );
    let report = daemon::sync_once(
        &config,
        world.clock.clone(),
        &CancellationToken::new(),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.failures().count(), 0, "{report:?}");
    let store = SqliteStore::open(world.store_path()).unwrap();
    let stored = store
        .read_repository(&RepoName::parse("acme/paged").unwrap())
        .unwrap();
    assert_eq!(stored.compares.len(), 1);
    assert_eq!(stored.compares[0].commits.len(), 150);
}

/// JSON nested this deep: far beyond `serde_json`'s recursion limit (128), and
/// deep enough to overflow a stack if anything parsed it recursively.
const DEEP_NESTING: usize = 100_000;

async fn hostile_deployments(UrlPath((_, name)): UrlPath<(String, String)>) -> Response {
    if name == "huge" {
        let body = format!("[{}]", "0,".repeat(MAX_RESPONSE_BYTES / 2 + 1) + "0");
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let deep = format!("{}{}", "[".repeat(DEEP_NESTING), "]".repeat(DEEP_NESTING));
    let body = format!(
        r#"[
        {{"id": 10, "sha": "{SHA}", "environment": "production", "created_at": "{NOW}"}},
        null,
        {{"id": 11, "sha": null, "environment": "production", "created_at": "{NOW}"}},
        {{"id": 12, "sha": "{SHA}", "environment": "production", "created_at": "{NOW}", "payload": {deep}}},
        {{"id": 13, "sha": "{SHA}", "environment": "production", "created_at": "{NOW}",
          "description": null, "creator": null, "task": null, "payload": null}},
        {{"id": 14, "environment": "production", "created_at": "{NOW}"}},
        {{"id": "fifteen", "sha": "{SHA}", "environment": "production", "created_at": "{NOW}"}}
        ]"#
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Deployment 10 succeeded, 13 failed; each list has an unknown state and a null.
async fn hostile_statuses(UrlPath((_, _, id)): UrlPath<(String, String, u64)>) -> Response {
    let last = if id == 10 { "success" } else { "failure" };
    axum::Json(serde_json::json!([
        {"state": "exploded", "created_at": NOW},
        null,
        {"state": last, "created_at": NOW, "description": null, "creator": null}
    ]))
    .into_response()
}

async fn hostile_issues(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if query.get("state").map(String::as_str) == Some("open") {
        return axum::Json(serde_json::json!([])).into_response();
    }
    axum::Json(serde_json::json!([
        null,
        {"number": null, "created_at": NOW, "updated_at": NOW},
        {"number": 8, "state": "haunted", "created_at": NOW, "updated_at": NOW,
         "closed_at": null, "body": null, "labels": [{"name": "incident"}]},
        {"number": 9, "created_at": "soon", "updated_at": NOW, "labels": []}
    ]))
    .into_response()
}

async fn hostile_pulls() -> Response {
    axum::Json(serde_json::json!([null, "a pull request"])).into_response()
}

#[tokio::test]
async fn hostile_items_are_skipped_and_counted_in_the_metric_and_oversized_bodies_fail_one_repository(
) {
    let router = Router::new()
        .route(
            "/repos/{owner}/{name}/deployments",
            get(hostile_deployments),
        )
        .route(
            "/repos/{owner}/{name}/deployments/{id}/statuses",
            get(hostile_statuses),
        )
        .route("/repos/{owner}/{name}/issues", get(hostile_issues))
        .route("/repos/{owner}/{name}/pulls", get(hostile_pulls));
    let url = serve(router).await;
    let world = World::new(dora_collector::sim::Org::empty(
        "acme",
        dora_collector::sim::DEFAULT_NOW,
    ))
    .await;
    let config = config(
        &url,
        "token",
        &world.store_path(),
        &[repo("acme/odd", "t"), repo("acme/huge", "t")],
    );
    let mut daemon = world.start(config).await;
    let report = daemon.wait_for_cycles(1).await.expect("a cycle completes");
    let RepoOutcome::Synced(odd) = &report.repositories[0].outcome else {
        panic!("acme/odd syncs: {report:?}");
    };
    // Deployments: a null, a null sha, too deep, no sha, a string id (5); two
    // statuses lists with an unknown state and a null each (4); issues: a null, a
    // null number, an unreadable date (3); pulls: a null and a string (2).
    assert_eq!(odd.skipped_items, 14, "{odd:?}");
    let RepoOutcome::Failed(huge) = &report.repositories[1].outcome else {
        panic!("acme/huge fails: {report:?}");
    };
    assert!(huge.contains("is larger than"), "{huge}");

    let (status, page) = crate::support::get(&daemon, "/metrics").await;
    assert_eq!(status, 200);
    let series = |repository: &str| {
        format!(
            "dora_collector_skipped_items_total{{source=\"github\",repository=\"{repository}\"}}"
        )
    };
    assert_eq!(
        crate::support::value(&page, &series("acme/odd")),
        Some(14.0),
        "{page}"
    );
    assert_eq!(
        crate::support::value(&page, &series("acme/huge")),
        Some(0.0),
        "{page}"
    );
    assert_eq!(
        crate::support::value(
            &page,
            "dora_collector_sync_errors_total{source=\"github\",repository=\"acme/huge\"}"
        ),
        Some(1.0)
    );

    // What could be read is stored: deployments 10 (succeeded) and 13 (failed,
    // its null optional fields ignored), incident 8 (null body and closed_at).
    let store = SqliteStore::open(world.store_path()).unwrap();
    let stored = store
        .read_repository(&RepoName::parse("acme/odd").unwrap())
        .unwrap();
    let ids: Vec<u64> = stored.deployments.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![10, 13]);
    let incidents: Vec<u64> = stored.incidents.iter().map(|i| i.number).collect();
    assert_eq!(incidents, vec![8]);
    daemon.shutdown().await.unwrap();
}

//! GitHub Enterprise Server: with `api_url = "https://HOST/api/v3"` the daemon
//! reads REST there and GraphQL at `https://HOST/api/graphql`, and copes with
//! GHES's default of no rate limiting (no `x-ratelimit-*` header on any
//! answer). The simulator lays the same organisation out as GHES
//! (`SimOptions::enterprise`); the series must equal those read from the
//! github.com layout, with GraphQL and with REST alone (`api = "rest"`, for a
//! server whose GraphQL is turned off).

use crate::support::{get, samples};
use dora_collector::config::Config;
use dora_collector::daemon::{self, ManualClock, RunOptions};
use dora_collector::sim::{
    Org, OrgSpec, SimOptions, SimServer, ENTERPRISE_GRAPHQL_PATH, ENTERPRISE_REST_PREFIX, SIM_TOKEN,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The series (health left out) of one cycle of an organisation, and the
/// targets of the requests made.
async fn read(
    org: &Org,
    enterprise: bool,
    api: &str,
) -> (BTreeMap<String, f64>, String, Vec<String>) {
    let sim = SimServer::start(
        org.clone(),
        SimOptions {
            enterprise,
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n[github]\napi_url = \
         {:?}\ntoken = {SIM_TOKEN:?}\napi = {api:?}\n\n[[github.organizations]]\nname = \"acme\"\n",
        dir.path().join("dora.db").display().to_string(),
        sim.base_url(),
    );
    let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = RunOptions {
        clock: Arc::new(ManualClock::new(org.now)),
        ..RunOptions::default()
    };
    let mut handle = daemon::start(config, listener, options).await.unwrap();
    let report = handle.wait_for_cycles(1).await.unwrap();
    let failures: Vec<_> = report.failures().collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(get(&handle, "/readyz").await.0, 200);
    let page = get(&handle, "/metrics").await.1;
    handle.shutdown().await.unwrap();
    let targets = sim.requests().into_iter().map(|r| r.target).collect();
    if enterprise {
        // The layout is GHES's: github.com's paths are not served.
        assert!(sim.base_url().ends_with(ENTERPRISE_REST_PREFIX));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let host = format!("http://{}", sim.addr());
        for (method, path) in [
            (reqwest::Method::GET, "/orgs/acme/repos"),
            (reqwest::Method::POST, "/graphql"),
        ] {
            let status = client
                .request(method, format!("{host}{path}"))
                .bearer_auth(SIM_TOKEN)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 404, "{path}");
        }
        let status = client
            .post(format!("{host}{ENTERPRISE_GRAPHQL_PATH}"))
            .bearer_auth(SIM_TOKEN)
            .body(r#"{"query":"{ repository(owner: \"acme\", name: \"api\") { name deployments(first: 1) { nodes { databaseId } } } }"}"#)
            .send()
            .await
            .unwrap()
            .status();
        assert_ne!(status, 404);
    }
    (samples(&page, true), page, targets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enterprise_server_is_read_at_api_v3_and_api_graphql_without_rate_limits() {
    let org = Org::generate(&OrgSpec {
        repositories: 4,
        ..OrgSpec::small(53)
    });
    for api in ["graphql", "rest"] {
        let (dotcom, dotcom_page, _) = read(&org, false, api).await;
        let (ghes, ghes_page, targets) = read(&org, true, api).await;
        assert!(!dotcom.is_empty());
        assert_eq!(ghes, dotcom, "api = {api:?}");
        // github.com reports its rate limits; GHES without rate limiting does not,
        // and nothing waited or failed for the want of them.
        assert!(dotcom_page.contains("dora_collector_rate_limit_remaining{"));
        assert!(!ghes_page.contains("dora_collector_rate_limit_remaining{"));
        // The simulator records paths as github.com's (its routes'); GraphQL was
        // asked (at /api/graphql: any other path is a 404 that fails the sync).
        let graphql = targets.iter().filter(|t| t.as_str() == "/graphql").count();
        if api == "graphql" {
            assert!(graphql > 0, "{targets:?}");
        } else {
            assert_eq!(graphql, 0, "{targets:?}");
        }
    }
}

//! GitHub Enterprise Server: with `api_url = "https://HOST/api/v3"` the daemon
//! reads REST there and GraphQL at `https://HOST/api/graphql`, and copes with
//! GHES's default of no rate limiting (no `x-ratelimit-*` header on any
//! answer). The simulator lays the same organisation out as GHES
//! (`SimOptions::enterprise`); the series must equal those read from the
//! github.com layout, with GraphQL and with REST alone (`api = "rest"`, for a
//! server whose GraphQL is turned off). A release whose team lists lack
//! `role_name` (`SimOptions::team_role_names` off) still gives each discovered
//! repository the team with the strongest permission (`team_from =
//! "github_teams"`), from the `permissions` flags.

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
    let options = SimOptions {
        enterprise,
        ..SimOptions::default()
    };
    read_with(org, options, api, "").await
}

/// [`read`] with the simulator's `options`, and `organization_extra` added to
/// the organisation's entry.
async fn read_with(
    org: &Org,
    options: SimOptions,
    api: &str,
    organization_extra: &str,
) -> (BTreeMap<String, f64>, String, Vec<String>) {
    let enterprise = options.enterprise;
    let sim = SimServer::start(org.clone(), options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n[github]\napi_url = \
         {:?}\ntoken = {SIM_TOKEN:?}\napi = {api:?}\n\n[[github.organizations]]\nname = \"acme\"\n\
         {organization_extra}",
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

/// Each repository's `team` label on `page`.
fn teams_on(page: &str) -> BTreeMap<String, String> {
    let label = |series: &str, name: &str| -> Option<String> {
        let start = series.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + series[start..].find('"')?;
        Some(series[start..end].to_owned())
    };
    samples(page, true)
        .keys()
        .filter_map(|series| Some((label(series, "repository")?, label(series, "team")?)))
        .collect()
}

/// `team_from = "github_teams"` on a GHES release whose team lists carry no
/// `role_name` (only the `permissions` flags): the simulator serves them so,
/// and each repository still goes to the team with the strongest permission
/// (its own team, `admin`, over another with `maintain`), as on github.com,
/// where the same lists name the roles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_role_names_teams_are_ranked_by_the_permission_flags() {
    let mut org = Org::generate(&OrgSpec {
        repositories: 4,
        ..OrgSpec::small(54)
    });
    let mut expected = BTreeMap::new();
    let mut decided_by_permission = false;
    for index in 0..org.repos.len() {
        let own = org.repos[index].team;
        let other = (own + 1) % org.teams.len();
        assert_ne!(own, other);
        org.repos[index].other_teams = vec![(other, "maintain".to_owned())];
        // Ranked by slug alone, the other team would win here.
        decided_by_permission |= org.teams[other].slug() < org.teams[own].slug();
        expected.insert(org.full_name(index), org.teams[own].slug());
    }
    assert!(decided_by_permission, "the slugs alone would not decide it");
    let teams = "team_from = \"github_teams\"\n";
    let (dotcom, dotcom_page, _) = read_with(&org, SimOptions::default(), "graphql", teams).await;
    let older_ghes = SimOptions {
        enterprise: true,
        team_role_names: false,
        ..SimOptions::default()
    };
    let (ghes, ghes_page, targets) = read_with(&org, older_ghes, "graphql", teams).await;
    assert!(
        targets.iter().any(|t| t.contains("/teams/")),
        "the teams' lists were read: {targets:?}"
    );
    assert_eq!(teams_on(&dotcom_page), expected);
    assert_eq!(teams_on(&ghes_page), expected);
    assert_eq!(ghes, dotcom);
}

//! The report of GitLab projects at nested paths (`group/subgroup/project`,
//! issue 13): a simulated GitLab group synced by the daemon through the real
//! client and store gives one row per project and production environment,
//! named by the lowercase full path, in the report's JSON and Markdown (each
//! row's numbers those the daemon exports for the same repository and window)
//! and on the live `/report` page.

use dora_collector::config::Config;
use dora_collector::daemon::{self, ManualClock, RunOptions};
use dora_collector::report::render::markdown::escape;
use dora_collector::report::{self, render, Format, ReportRequest, ReportWindow};
use dora_collector::sim::gitlab::{
    GitlabDeploySource, GitlabGroup, GitlabOptions, GitlabServer, GroupSpec,
};
use std::path::Path;
use std::sync::Arc;

/// The configuration of every project of `group` (each with its team) at
/// `api_url`.
fn config_text(group: &GitlabGroup, api_url: &str, store: &Path) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n\
         [gitlab]\napi_url = {api_url:?}\ntoken = {:?}\n",
        store.display().to_string(),
        dora_collector::sim::gitlab::GITLAB_SIM_TOKEN,
    );
    for (index, project) in group.projects.iter().enumerate() {
        let team = group.org.team_of(index).expect("a team").to_lowercase();
        let from = match &project.deploys {
            GitlabDeploySource::Pipelines { git_ref } => format!(
                "deployments = {{ from = \"pipelines\", ref = {git_ref:?}, environment = \"production\" }}\n"
            ),
            GitlabDeploySource::Deployments => String::new(),
        };
        text.push_str(&format!(
            "[[gitlab.projects]]\npath = {:?}\nteam = {team:?}\n{from}",
            project.path
        ));
    }
    text
}

/// The value of the series of `name` with every label of `labels` on `page`.
fn exported(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| {
            labels
                .iter()
                .all(|(label, value)| line.contains(&format!("{label}={value:?}")))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitlab_group_with_nested_paths_has_its_rows_in_json_markdown_and_the_page() {
    let group = GitlabGroup::generate(&GroupSpec::small(61));
    let now = group.org.now;
    let paths: Vec<String> = group.projects.iter().map(|p| p.repository()).collect();
    assert!(
        paths.iter().any(|p| p.matches('/').count() >= 3),
        "a project two subgroups deep: {paths:?}"
    );
    assert!(
        group.projects.iter().any(|p| p.path != p.repository()),
        "a path GitLab spells with capitals"
    );
    let server = GitlabServer::start(group.clone(), GitlabOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let text = config_text(&group, server.api_url(), &store);
    let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent))
        .unwrap_or_else(|problems| panic!("{problems:?}\n{text}"));

    // The daemon: one cycle, then its pages.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = RunOptions {
        clock: Arc::new(ManualClock::new(now)),
        ..RunOptions::default()
    };
    let mut handle = daemon::start(config.clone(), listener, options)
        .await
        .unwrap();
    let cycle = handle.wait_for_cycles(1).await.unwrap();
    assert_eq!(cycle.failures().count(), 0, "{cycle:?}");
    let get = |path: &'static str| async move {
        let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    let (status, page) = get("/report").await;
    assert_eq!(status, 200, "{page}");
    handle.shutdown().await.unwrap();

    // The report from the store, as `report` makes it, over the daemon's 30 days.
    let request = ReportRequest {
        window: ReportWindow::parse("30d").unwrap(),
        until: now,
        team: None,
        generated_at: now,
    };
    let opened = report::open_store(&store).unwrap();
    let made = report::generate(&opened, &config, &request).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&render::render(&made, Format::Json).unwrap()).unwrap();
    let markdown = render::render(&made, Format::Markdown).unwrap();

    let rows = json["repositories"].as_array().expect("repository rows");
    let mut named: Vec<String> = rows
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    named.sort();
    named.dedup();
    let mut expected = paths.clone();
    expected.sort();
    assert_eq!(named, expected, "one name per project: its lowercase path");
    for (index, row) in rows.iter().enumerate() {
        let name = row["name"].as_str().unwrap();
        let environment = row["environment"].as_str().expect("an environment");
        let team = row["team"].as_str().expect("a team");
        let project = group
            .projects
            .iter()
            .position(|p| p.repository() == name)
            .unwrap();
        assert_eq!(
            team,
            group.org.team_of(project).unwrap().to_lowercase(),
            "{name}"
        );
        // The same numbers as the daemon's series of that repository.
        let labels = [
            ("repository", name),
            ("environment", environment),
            ("team", team),
            ("window", "30d"),
        ];
        let frequency = exported(&metrics, "dora_deployment_frequency_per_day", &labels)
            .unwrap_or_else(|| panic!("{name} {environment} exported:\n{metrics}"));
        let reported = row["metrics"]["deployment_frequency"]["value"]
            .as_f64()
            .unwrap();
        assert!(
            (reported - frequency).abs() < 1e-9,
            "{name}: {reported} reported, {frequency} exported"
        );
        let scope = &made.repositories[index];
        assert_eq!(scope.name, name);
        assert_eq!(Some(scope.deployments), row["deployments"].as_u64());
        // Its Markdown row: the path as it is, escaped only where Markdown
        // needs it.
        let start = format!(
            "| {} | {} | {} |",
            escape(name),
            escape(environment),
            escape(team)
        );
        assert!(
            markdown.lines().any(|line| line.starts_with(&start)),
            "{start} in\n{markdown}"
        );
        // The live page names it (HTML may write `/` as `&#x2f;`).
        assert!(
            page.contains(name) || page.contains(&name.replace('/', "&#x2f;")),
            "{name} on /report"
        );
    }
    assert!(
        rows.iter().any(|r| r["deployments"].as_u64().unwrap() > 0
            && r["name"].as_str().unwrap().matches('/').count() >= 2),
        "a nested project deployed in the period: {json:#}"
    );
}

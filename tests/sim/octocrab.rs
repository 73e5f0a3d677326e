//! octocrab, the client the collector's GitHub source is built on, reads every
//! endpoint of the simulated GitHub into its own typed models, follows its `Link`
//! headers to the last page, and authenticates with the simulator's token.

use dora_collector::sim::{Org, OrgSpec, SimHandle, SimOptions, SimServer, TokenUse};
use octocrab::models::repos::{Deployment, DeploymentStatus};
use octocrab::{params, Octocrab, Page};

async fn start() -> (SimHandle, Octocrab, Org) {
    let org = Org::generate(&OrgSpec::small(21));
    let handle = SimServer::start(org.clone(), SimOptions::default())
        .await
        .unwrap();
    let octo = Octocrab::builder()
        .base_uri(handle.base_url())
        .unwrap()
        .personal_token(handle.token().to_owned())
        .build()
        .unwrap();
    (handle, octo, org)
}

#[tokio::test]
async fn octocrab_reads_every_endpoint() {
    let (handle, octo, org) = start().await;
    let owner = org.owner.as_str();
    let api = org.repos.iter().find(|r| r.workflow().is_none()).unwrap();
    let name = api.name.as_str();

    let repo = octo.repos(owner, name).get().await.unwrap();
    assert_eq!(
        repo.full_name.as_deref(),
        Some(format!("{owner}/{name}").as_str())
    );

    let first: Page<Deployment> = octo
        .get(
            format!("/repos/{owner}/{name}/deployments"),
            Some(&[("per_page", "100")]),
        )
        .await
        .unwrap();
    assert!(first.next.is_some());
    let deployments = octo.all_pages(first).await.unwrap();
    assert_eq!(deployments.len(), api.deployments.len());
    let newest = &deployments[0];
    assert_eq!(*newest.id, api.deployments.last().unwrap().id);

    let statuses: Vec<DeploymentStatus> = octo
        .get(
            format!(
                "/repos/{owner}/{name}/deployments/{}/statuses",
                deployments[50].id
            ),
            None::<&()>,
        )
        .await
        .unwrap();
    assert!(!statuses.is_empty());

    let commits = octo
        .repos(owner, name)
        .list_commits()
        .per_page(100)
        .send()
        .await
        .unwrap();
    assert_eq!(commits.items[0].sha, api.main_head_sha().to_string());
    let pages = octo.all_pages(commits).await.unwrap();
    assert_eq!(pages.len(), api.log(api.main_head).len());

    let (base, head) = (&deployments[10].sha, &deployments[0].sha);
    let comparison = octo
        .commits(owner, name)
        .compare(base.as_str(), head.as_str())
        .send()
        .await
        .unwrap();
    assert!(comparison.total_commits > 0);

    let issues = octo
        .issues(owner, name)
        .list()
        .state(params::State::All)
        .per_page(100)
        .send()
        .await
        .unwrap();
    let issues = octo.all_pages(issues).await.unwrap();
    assert_eq!(issues.len(), api.issues.len() + api.pulls.len());
    assert_eq!(
        issues.iter().filter(|i| i.pull_request.is_some()).count(),
        api.pulls.len()
    );

    let pulls = octo
        .pulls(owner, name)
        .list()
        .state(params::State::All)
        .per_page(100)
        .send()
        .await
        .unwrap();
    let pulls = octo.all_pages(pulls).await.unwrap();
    assert_eq!(pulls.len(), api.pulls.len());
    let merged = pulls.iter().find(|p| p.merged_at.is_some()).unwrap();
    let pr_commits = octo
        .pulls(owner, name)
        .pr_commits(merged.number)
        .send()
        .await
        .unwrap();
    assert!(!pr_commits.items.is_empty());

    let limits = octo.ratelimit().get().await.unwrap();
    assert_eq!(limits.resources.core.limit, 5000);

    let workflow = org.repos.iter().find(|r| r.workflow().is_some()).unwrap();
    let runs = octo
        .workflows(owner, workflow.name.as_str())
        .list_runs("deploy.yml")
        .branch("main")
        .per_page(100)
        .send()
        .await
        .unwrap();
    let runs = octo.all_pages(runs).await.unwrap();
    let on_main = workflow
        .workflow_runs
        .iter()
        .filter(|r| &*r.head_branch == "main")
        .count();
    assert_eq!(runs.len(), on_main);

    let records = handle.requests();
    assert!(
        records
            .iter()
            .all(|r| r.token == TokenUse::Valid && r.status == 200),
        "{records:?}"
    );
}

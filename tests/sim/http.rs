//! The simulated GitHub's HTTP behaviour: pagination and `Link` headers (compared
//! with a recorded real session), the rate-limit budget, conditional requests,
//! authentication, errors, filters and orders, request counting, odd input,
//! changes while serving and graceful shutdown.

use dora_collector::domain::Timestamp;
use dora_collector::sim::{
    NewDeployment, NewIssue, NewOutcome, Org, OrgSpec, SimHandle, SimOptions, SimServer, TokenUse,
    PRODUCTION,
};
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::collections::HashSet;

const RECORDED: &str = "tests/fixtures/github/paginate-issues.raw.json";

struct Sim {
    handle: SimHandle,
    client: reqwest::Client,
}

struct Got {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn number(&self, name: &str) -> u64 {
        self.header(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("header {name}"))
    }

    /// The URL of `rel` in the `Link` header.
    fn link(&self, rel: &str) -> Option<String> {
        let link = self.header("link")?;
        link.split(", ").find_map(|part| {
            let (url, r) = part.split_once("; ")?;
            (r == format!("rel=\"{rel}\"")).then(|| url.trim_matches(['<', '>']).to_owned())
        })
    }

    fn items(&self) -> &Vec<Value> {
        self.body.as_array().expect("a JSON array")
    }
}

impl Sim {
    async fn start(org: Org) -> Sim {
        Self::with(org, SimOptions::default()).await
    }

    async fn with(org: Org, options: SimOptions) -> Sim {
        let handle = SimServer::start(org, options).await.unwrap();
        Sim {
            handle,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.handle.base_url())
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Got {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        Got {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Got {
        self.send(
            self.client
                .get(self.url(path))
                .bearer_auth(self.handle.token()),
        )
        .await
    }

    async fn get_if_none_match(&self, path: &str, etag: &str) -> Got {
        let request = self
            .client
            .get(self.url(path))
            .bearer_auth(self.handle.token())
            .header("if-none-match", etag);
        self.send(request).await
    }

    /// Follows `next` links from `path`; returns every page.
    async fn walk(&self, path: &str) -> Vec<Got> {
        let mut pages = vec![self.get(path).await];
        while let Some(next) = pages.last().unwrap().link("next") {
            assert!(pages.len() < 1000, "runaway pagination");
            pages.push(self.get(&next).await);
        }
        pages
    }

    fn repo_path(&self, index: usize) -> String {
        self.handle
            .with_org(|org| format!("/repos/{}/{}", org.owner, org.repos[index].name))
    }
}

fn small() -> Org {
    Org::generate(&OrgSpec::small(5))
}

fn page_of(url: &str) -> u64 {
    url.rsplit_once("page=")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn link_headers_and_headers_match_the_recorded_session() {
    let recorded: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(RECORDED).unwrap()).unwrap();
    let header = |entry: &Value, name: &str| -> Option<String> {
        let raw = entry["rawHeaders"].as_array()?;
        raw.chunks(2)
            .find(|kv| kv[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .and_then(|kv| kv[1].as_str().map(str::to_owned))
    };
    let gets: Vec<&Value> = recorded.iter().filter(|e| e["method"] == "get").collect();
    let created = recorded
        .iter()
        .filter(|e| e["method"] == "post" && e["path"].as_str().unwrap().ends_with("/issues"))
        .count();
    let first_path = gets[0]["path"].as_str().unwrap();
    let (owner, repo_name) = {
        let parts: Vec<&str> = first_path.split('/').collect();
        (parts[2].to_owned(), parts[3].to_owned())
    };

    // The same situation: a fresh repository with as many open issues.
    let now = Timestamp(1_658_208_000);
    let mut org = Org::empty(&owner, now);
    let team = org.add_team("web");
    let r = org.add_repo(&repo_name, team, Timestamp(now.0 - 86_400), false);
    for i in 0..created {
        org.open_issue(
            r,
            NewIssue {
                title: format!("Test issue {i}"),
                body: None,
                labels: vec![],
                opened_at: Timestamp(now.0 - 1000 + i as i64),
            },
        )
        .unwrap();
    }
    let sim = Sim::start(org).await;
    let our_id = sim.handle.with_org(|org| org.repos[0].id).to_string();
    let recorded_id = gets[1]["path"]
        .as_str()
        .unwrap()
        .split('/')
        .nth(2)
        .unwrap()
        .to_owned();
    let ours = |text: &str| {
        text.replace("https://api.github.com", sim.handle.base_url())
            .replace(&recorded_id, &our_id)
    };

    let mut remaining = None;
    for entry in gets {
        let got = sim.get(&ours(entry["path"].as_str().unwrap())).await;
        assert_eq!(got.status, entry["status"].as_u64().unwrap() as u16);
        assert_eq!(
            got.header("link").map(str::to_owned),
            header(entry, "link").map(|l| ours(&l)),
            "{}",
            entry["path"]
        );
        assert_eq!(
            got.items().len(),
            entry["response"].as_array().unwrap().len()
        );
        for name in [
            "etag",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-used",
            "x-ratelimit-resource",
            "content-type",
            "cache-control",
            "vary",
            "x-github-media-type",
            "x-github-request-id",
            "access-control-expose-headers",
        ] {
            let theirs = header(entry, name).unwrap_or_else(|| panic!("recorded {name}"));
            let mine = got.header(name).unwrap_or_else(|| panic!("our {name}"));
            match name {
                "etag" => assert!(
                    mine.len() == theirs.len()
                        && mine.starts_with('"')
                        && mine[1..65].chars().all(|c| c.is_ascii_hexdigit())
                ),
                "x-ratelimit-limit"
                | "x-ratelimit-resource"
                | "content-type"
                | "cache-control"
                | "x-github-media-type"
                | "access-control-expose-headers" => assert_eq!(mine, theirs, "{name}"),
                _ => {}
            }
        }
        let left = got.number("x-ratelimit-remaining");
        if let Some(before) = remaining {
            assert_eq!(left + 1, before, "each page costs one request");
        }
        remaining = Some(left);
    }
}

#[tokio::test]
async fn pages_cover_the_list_exactly_once() {
    let sim = Sim::start(small()).await;
    let repo = sim.repo_path(0);
    let truth: HashSet<u64> = sim.handle.with_org(|org| {
        let r = &org.repos[0];
        r.issues
            .iter()
            .map(|i| i.number)
            .chain(r.pulls.iter().map(|p| p.number))
            .collect()
    });
    let pages = sim
        .walk(&format!("{repo}/issues?state=all&per_page=7"))
        .await;
    let last = pages.len() as u64;
    assert!(last > 3);
    let mut seen = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(page.status, 200);
        assert_eq!(
            page.link("prev").map(|u| page_of(&u)),
            (n > 1).then(|| n - 1)
        );
        assert_eq!(
            page.link("first").map(|u| page_of(&u)),
            (n > 1).then_some(1)
        );
        assert_eq!(
            page.link("next").map(|u| page_of(&u)),
            (n < last).then(|| n + 1)
        );
        assert_eq!(
            page.link("last").map(|u| page_of(&u)),
            (n < last).then_some(last)
        );
        assert!(page.items().len() <= 7 && (n == last || page.items().len() == 7));
        seen.extend(page.items().iter().map(|i| i["number"].as_u64().unwrap()));
    }
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    assert_eq!(unique, truth, "the union of pages is the whole list");
    // Newest first by default.
    let created: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.items())
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]));
    // Past the end: an empty page that still links back.
    let beyond = sim
        .get(&format!(
            "{repo}/issues?state=all&per_page=7&page={}",
            last + 3
        ))
        .await;
    assert!(beyond.items().is_empty());
    assert_eq!(beyond.link("prev").map(|u| page_of(&u)), Some(last + 2));
    assert!(beyond.link("next").is_none());
}

#[tokio::test]
async fn per_page_is_capped_at_100() {
    let sim = Sim::start(small()).await;
    let repo = sim.repo_path(0);
    let total = sim.handle.with_org(|org| org.repos[0].deployments.len());
    assert!(total > 100);
    let capped = sim.get(&format!("{repo}/deployments?per_page=1000")).await;
    assert_eq!(capped.items().len(), 100);
    assert_eq!(
        capped.link("last").map(|u| page_of(&u)),
        Some(total.div_ceil(100) as u64)
    );
    let hundred = sim.get(&format!("{repo}/deployments?per_page=100")).await;
    assert_eq!(capped.body, hundred.body);
    let default = sim.get(&format!("{repo}/deployments")).await;
    assert_eq!(default.items().len(), 30);
    let pages = sim.walk(&format!("{repo}/deployments?per_page=100")).await;
    let ids: Vec<u64> = pages
        .iter()
        .flat_map(|p| p.items())
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), total);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
}

#[tokio::test]
async fn the_budget_decrements_and_conditional_requests_are_free() {
    let options = SimOptions {
        rate_limit: 10,
        ..SimOptions::default()
    };
    let sim = Sim::with(small(), options).await;
    let path = format!("{}/deployments", sim.repo_path(0));
    let first = sim.get(&path).await;
    assert_eq!(
        (
            first.number("x-ratelimit-remaining"),
            first.number("x-ratelimit-used")
        ),
        (9, 1)
    );
    assert_eq!(first.number("x-ratelimit-limit"), 10);
    let etag = first.header("etag").unwrap().to_owned();

    let cached = sim.get_if_none_match(&path, &etag).await;
    assert_eq!(cached.status, 304);
    assert_eq!(cached.body, Value::Null, "no body");
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    assert_eq!(
        cached.number("x-ratelimit-remaining"),
        9,
        "a 304 costs nothing"
    );
    let weak = sim.get_if_none_match(&path, &format!("W/{etag}")).await;
    assert_eq!(weak.status, 304);

    let limits = sim.get("/rate_limit").await;
    assert_eq!(
        limits.body["resources"]["core"]["remaining"], 9,
        "/rate_limit is free"
    );
    assert_eq!(limits.body["rate"]["used"], 1);
    assert_eq!(sim.handle.rate_limit().remaining, 9);

    // A change makes the old ETag stale: full response, one unit spent.
    sim.handle.with_org_mut(|org| {
        let now = org.now;
        org.add_deployment(
            0,
            NewDeployment {
                environment: PRODUCTION.into(),
                sha: None,
                created_at: now,
                outcome: NewOutcome::Queued,
            },
        )
        .unwrap();
    });
    let changed = sim.get_if_none_match(&path, &etag).await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert_eq!(changed.number("x-ratelimit-remaining"), 8);

    for left in (0..8).rev() {
        assert_eq!(sim.get(&path).await.number("x-ratelimit-remaining"), left);
    }
    assert_eq!(sim.handle.rate_limit_violations(), 0);
    let refused = sim.get(&path).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.number("x-ratelimit-remaining"), 0);
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .starts_with("API rate limit exceeded"));
    assert!(
        refused.number("x-ratelimit-reset") as i64 > Timestamp::from_datetime(chrono::Utc::now()).0
    );
    sim.get(&path).await;
    assert_eq!(sim.handle.rate_limit_violations(), 2);
    assert_eq!(
        sim.get("/rate_limit").await.status,
        200,
        "still readable when exhausted"
    );

    sim.handle.reset_rate_limit();
    assert_eq!(sim.get(&path).await.number("x-ratelimit-remaining"), 9);
    sim.handle.set_rate_limit_remaining(1);
    assert_eq!(sim.get(&path).await.status, 200);
    assert_eq!(sim.get(&path).await.status, 403);
}

#[tokio::test]
async fn requests_need_the_token() {
    let sim = Sim::start(small()).await;
    let path = format!("{}/issues", sim.repo_path(0));
    let none = sim.send(sim.client.get(sim.url(&path))).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.body["message"], "Bad credentials");
    assert!(none.body["documentation_url"]
        .as_str()
        .unwrap()
        .starts_with("https://docs.github.com/"));
    let wrong = sim
        .send(sim.client.get(sim.url(&path)).bearer_auth("ghp_wrong"))
        .await;
    assert_eq!(wrong.status, 401);
    let classic = sim
        .send(
            sim.client
                .get(sim.url(&path))
                .header("authorization", format!("token {}", sim.handle.token())),
        )
        .await;
    assert_eq!(classic.status, 200);
    let tokens: Vec<TokenUse> = sim.handle.requests().iter().map(|r| r.token).collect();
    assert_eq!(
        tokens,
        vec![TokenUse::Missing, TokenUse::Invalid, TokenUse::Valid]
    );
    assert_eq!(
        sim.handle.rate_limit().used,
        1,
        "rejected requests spend nothing"
    );
}

#[tokio::test]
async fn unknown_repositories_are_404_on_every_path() {
    let sim = Sim::start(small()).await;
    let (owner, real) = sim
        .handle
        .with_org(|org| (org.owner.clone(), org.repos[0].name.clone()));
    let paths = [
        "",
        "/deployments",
        "/deployments/1/statuses",
        "/actions/workflows/deploy.yml/runs",
        "/actions/runs",
        "/compare/main...main",
        "/commits",
        "/commits/main",
        "/commits/main/pulls",
        "/issues",
        "/pulls",
        "/pulls/1/commits",
    ];
    for base in [
        format!("/repos/{owner}/nope"),
        format!("/repos/someone-else/{real}"),
        "/repositories/1".to_owned(),
    ] {
        for path in paths {
            let got = sim.get(&format!("{base}{path}")).await;
            assert_eq!(got.status, 404, "{base}{path}");
            assert_eq!(got.body["message"], "Not Found");
            assert!(got.body["documentation_url"].is_string());
        }
    }
    assert_eq!(sim.get("/orgs/someone-else/repos").await.status, 404);
    assert_eq!(sim.get("/no/such/endpoint").await.status, 404);
    // Case-insensitive names and the id form work.
    let upper = sim
        .get(&format!(
            "/repos/{}/{}",
            owner.to_uppercase(),
            real.to_uppercase()
        ))
        .await;
    assert_eq!(upper.status, 200);
    let id = upper.body["id"].as_u64().unwrap();
    assert_eq!(
        sim.get(&format!("/repositories/{id}/issues")).await.status,
        200
    );
    let counts = sim.handle.request_counts();
    assert_eq!(
        counts.route_status("GET /repos/{owner}/{repo}/issues", 404),
        3
    );
    assert_eq!(counts.route("GET /repos/{owner}/{repo}/issues"), 4);
    assert_eq!(counts.status(404), 3 * paths.len() as u64 + 2);
    assert_eq!(counts.route("(unmatched)"), 1);
}

#[tokio::test]
async fn every_page_of_a_walk_is_counted_with_its_token() {
    let sim = Sim::start(small()).await;
    let path = format!("{}/pulls?state=all&per_page=10", sim.repo_path(1));
    let pages = sim.walk(&path).await;
    let counts = sim.handle.request_counts();
    assert_eq!(
        counts.route("GET /repos/{owner}/{repo}/pulls"),
        pages.len() as u64
    );
    assert_eq!(counts.status(200), pages.len() as u64);
    assert_eq!(counts.total, pages.len() as u64);
    let records = sim.handle.requests();
    assert_eq!(records.len(), pages.len());
    assert!(records
        .iter()
        .all(|r| r.token == TokenUse::Valid && r.status == 200 && r.method == "GET"));
    assert!(
        records[1..]
            .iter()
            .all(|r| r.target.starts_with("/repositories/")),
        "later pages follow GitHub's links"
    );
    sim.handle.reset_counts();
    assert_eq!(sim.handle.request_counts().total, 0);
    assert!(sim.handle.requests().is_empty());
}

#[tokio::test]
async fn filters_and_orders_follow_github() {
    let sim = Sim::start(small()).await;
    let repo = sim.repo_path(0);
    let (head, some_sha, staging, incident_sev) = sim.handle.with_org(|org| {
        let r = &org.repos[0];
        let d = &r.deployments[r.deployments.len() / 2];
        let staging = r
            .deployments
            .iter()
            .filter(|d| &*d.environment == "staging")
            .count();
        let with_sev1 = r
            .issues
            .iter()
            .filter(|i| i.is_incident() && i.has_label("sev1"))
            .count();
        (
            r.main_head_sha().to_string(),
            d.sha.to_string(),
            staging,
            with_sev1,
        )
    });

    let got = sim
        .walk(&format!(
            "{repo}/deployments?environment=staging&per_page=100"
        ))
        .await;
    let items: Vec<&Value> = got.iter().flat_map(|p| p.items()).collect();
    assert_eq!(items.len(), staging);
    assert!(items.iter().all(|d| d["environment"] == "staging"));
    let by_sha = sim.get(&format!("{repo}/deployments?sha={some_sha}")).await;
    assert!(
        !by_sha.items().is_empty() && by_sha.items().iter().all(|d| d["sha"] == some_sha.as_str())
    );
    assert!(sim
        .get(&format!("{repo}/deployments?task=deploy:migrations"))
        .await
        .items()
        .is_empty());
    assert!(sim
        .get(&format!("{repo}/deployments?ref=main"))
        .await
        .items()
        .iter()
        .all(|d| d["ref"] == "main"));

    // Statuses newest first.
    let id = by_sha.items()[0]["id"].as_u64().unwrap();
    let statuses = sim.get(&format!("{repo}/deployments/{id}/statuses")).await;
    let ids: Vec<u64> = statuses
        .items()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    assert!(!ids.is_empty() && ids.windows(2).all(|w| w[0] > w[1]));

    // Labels: every listed label must match.
    let both = sim
        .walk(&format!(
            "{repo}/issues?labels=incident,sev1&state=all&per_page=100"
        ))
        .await;
    let both: Vec<&Value> = both.iter().flat_map(|p| p.items()).collect();
    assert!(incident_sev > 0);
    assert_eq!(both.len(), incident_sev);
    for item in &both {
        let names: Vec<&str> = item["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"incident") && names.contains(&"sev1"));
    }
    let closed = sim
        .get(&format!("{repo}/issues?state=closed&per_page=100"))
        .await;
    assert!(closed
        .items()
        .iter()
        .all(|i| i["state"] == "closed" && i["closed_at"].is_string()));
    let open = sim.get(&format!("{repo}/issues?per_page=100")).await;
    assert!(open
        .items()
        .iter()
        .all(|i| i["state"] == "open" && i["closed_at"].is_null()));
    let since = "2024-12-20T00:00:00Z";
    let recent = sim
        .walk(&format!(
            "{repo}/issues?state=all&since={since}&sort=updated&direction=asc&per_page=100"
        ))
        .await;
    let updated: Vec<&str> = recent
        .iter()
        .flat_map(|p| p.items())
        .map(|i| i["updated_at"].as_str().unwrap())
        .collect();
    assert!(!updated.is_empty() && updated.iter().all(|u| *u >= since));
    assert!(
        updated.windows(2).all(|w| w[0] <= w[1]),
        "ascending by update"
    );

    // Commits: newest first from the branch head; since/until by commit date.
    let commits = sim.get(&format!("{repo}/commits?per_page=50")).await;
    assert_eq!(commits.items()[0]["sha"], head.as_str());
    let dates: Vec<&str> = commits
        .items()
        .iter()
        .map(|c| c["commit"]["committer"]["date"].as_str().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]));
    let window = sim
        .walk(&format!(
            "{repo}/commits?since=2024-12-25T00:00:00Z&until=2024-12-31T23:59:59Z&per_page=100"
        ))
        .await;
    let window: Vec<&str> = window
        .iter()
        .flat_map(|p| p.items())
        .map(|c| c["commit"]["committer"]["date"].as_str().unwrap())
        .collect();
    assert!(
        !window.is_empty()
            && window
                .iter()
                .all(|d| ("2024-12-25".."2025-01-01").contains(d))
    );

    // Pulls: open only by default; base filter.
    let pulls = sim.get(&format!("{repo}/pulls?per_page=100")).await;
    assert!(pulls.items().iter().all(|p| p["state"] == "open"));
    assert!(sim
        .get(&format!("{repo}/pulls?base=release"))
        .await
        .items()
        .is_empty());
}

#[tokio::test]
async fn workflow_run_filters() {
    let sim = Sim::start(small()).await;
    let index = sim.handle.with_org(|org| {
        org.repos
            .iter()
            .position(|r| r.workflow().is_some())
            .unwrap()
    });
    let repo = sim.repo_path(index);
    let runs = |q: &'static str| {
        let path = format!("{repo}/actions/workflows/deploy.yml/runs?per_page=100&{q}");
        let sim = &sim;
        async move {
            let pages = sim.walk(&path).await;
            let total = pages[0].body["total_count"].as_u64().unwrap();
            let runs: Vec<Value> = pages
                .iter()
                .flat_map(|p| p.body["workflow_runs"].as_array().unwrap().clone())
                .collect();
            assert_eq!(total as usize, runs.len(), "total_count counts every page");
            runs
        }
    };
    let all = runs("").await;
    assert!(all
        .windows(2)
        .all(|w| w[0]["created_at"].as_str() >= w[1]["created_at"].as_str()));
    let main = runs("branch=main").await;
    assert!(main.iter().all(|r| r["head_branch"] == "main") && main.len() < all.len());
    let ok = runs("status=success").await;
    assert!(!ok.is_empty() && ok.iter().all(|r| r["conclusion"] == "success"));
    let completed = runs("status=completed").await;
    assert!(completed.iter().all(|r| r["status"] == "completed"));
    let recent = runs("created=%3E%3D2025-01-01").await;
    assert!(
        !recent.is_empty()
            && recent
                .iter()
                .all(|r| r["created_at"].as_str().unwrap() >= "2025-01-01")
    );
    let sha = all[0]["head_sha"].as_str().unwrap().to_owned();
    let path = format!("{repo}/actions/workflows/deploy.yml/runs?head_sha={sha}");
    let by_sha = sim.get(&path).await;
    assert!(by_sha.body["workflow_runs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["head_sha"] == sha.as_str()));
    let id = sim
        .handle
        .with_org(|org| org.repos[index].workflow().unwrap().id);
    assert_eq!(
        sim.get(&format!("{repo}/actions/workflows/{id}/runs"))
            .await
            .status,
        200
    );
    assert_eq!(
        sim.get(&format!("{repo}/actions/workflows/ci.yml/runs"))
            .await
            .status,
        404
    );
    assert_eq!(
        sim.get(&format!(
            "{repo}/actions/workflows/deploy.yml/runs?created=soon"
        ))
        .await
        .status,
        422
    );
}

#[tokio::test]
async fn compare_pages_through_long_ranges() {
    let now = Timestamp(1_736_942_400);
    let mut org = Org::empty("acme", now);
    let team = org.add_team("web");
    let r = org.add_repo("api", team, Timestamp(now.0 - 400_000), false);
    let base = org.repos[r].main_head_sha().to_string();
    for i in 0..300 {
        let at = Timestamp(now.0 - 300_000 + i * 600);
        org.push_commit(r, &format!("Change {i}"), at, at).unwrap();
    }
    let sim = Sim::start(org).await;
    let path = format!("/repos/acme/api/compare/{base}...main");
    let whole = sim.get(&path).await;
    assert_eq!(whole.body["total_commits"], 300);
    assert_eq!(whole.body["ahead_by"], 300);
    assert_eq!(whole.body["status"], "ahead");
    let commits = whole.body["commits"].as_array().unwrap();
    assert_eq!(commits.len(), 250, "at most 250 without pagination");
    assert_eq!(
        commits[0]["commit"]["message"], "Change 50",
        "the most recent 250"
    );
    assert_eq!(commits[249]["commit"]["message"], "Change 299");
    assert!(whole.header("link").is_none());

    let pages = sim.walk(&format!("{path}?per_page=100")).await;
    assert_eq!(pages.len(), 3);
    let messages: Vec<String> = pages
        .iter()
        .flat_map(|p| {
            p.body["commits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["commit"]["message"].as_str().unwrap().to_owned())
        })
        .collect();
    let expected: Vec<String> = (0..300).map(|i| format!("Change {i}")).collect();
    assert_eq!(messages, expected, "chronological across pages");
    assert!(
        pages[0].body.get("files").is_some() && pages[1].body.get("files").is_none(),
        "files on the first page only"
    );
    assert!(pages.iter().all(|p| p.body["total_commits"] == 300));

    let behind = sim
        .get(&format!("/repos/acme/api/compare/main...{base}"))
        .await;
    assert_eq!(
        (
            behind.body["status"].as_str(),
            behind.body["behind_by"].as_u64()
        ),
        (Some("behind"), Some(300))
    );
    assert!(behind.body["commits"].as_array().unwrap().is_empty());
    let short = &base[..7];
    let identical = sim
        .get(&format!("/repos/acme/api/compare/acme:{short}...{base}"))
        .await;
    assert_eq!(identical.body["status"], "identical");
}

#[tokio::test]
async fn odd_input_never_breaks_the_server() {
    let sim = Sim::start(small()).await;
    let repo = sim.repo_path(0);
    let long = "x".repeat(10_000);
    let odd = [
        format!("{repo}/issues?page=-1"),
        format!("{repo}/issues?page=0&per_page=0"),
        format!("{repo}/issues?page=abc&per_page=-3"),
        format!("{repo}/issues?page=99999999999999999999999999&per_page=100"),
        format!("{repo}/issues?per_page=1e9&unknown=param&labels=,,,"),
        format!("{repo}/issues?since=yesterday"),
        format!("{repo}/issues?direction=sideways"),
        format!("{repo}/issues?{long}={long}"),
        format!("{repo}/commits?since=never&sha="),
        format!("{repo}/commits?sha={long}"),
        format!("{repo}/compare/main"),
        format!("{repo}/compare/a...b...c"),
        format!("{repo}/compare/...main"),
        format!("{repo}/commits/%FF%FE"),
        format!("{repo}/commits/{long}"),
        format!("{repo}/deployments/abc/statuses"),
        format!("{repo}/deployments/99999999999999999999999/statuses"),
        format!("{repo}/pulls/abc/commits"),
        format!("{repo}/pulls/0/commits"),
        format!("{repo}/actions/workflows/%00/runs"),
        "/repos//".to_owned(),
        "/repositories/99999999999999999999999/issues".to_owned(),
        "/rate_limit?page=-5".to_owned(),
    ];
    for path in &odd {
        let got = sim.get(path).await;
        assert!(
            [200, 400, 404, 422].contains(&got.status),
            "{} -> {}",
            &path[..path.len().min(80)],
            got.status
        );
        if got.status != 200 {
            assert!(got.body["message"].is_string());
        }
    }
    let post = sim
        .send(
            sim.client
                .post(sim.url(&format!("{repo}/deployments")))
                .bearer_auth(sim.handle.token()),
        )
        .await;
    assert_eq!(post.status, 404);
    let huge_page = sim
        .get(&format!("{repo}/issues?page=99999999999999999999999999"))
        .await;
    assert!(huge_page.items().is_empty());
    assert_eq!(
        sim.get(&format!("{repo}/issues?page=-1")).await.body,
        sim.get(&format!("{repo}/issues")).await.body
    );
    assert_eq!(sim.get(&repo).await.status, 200, "still serving");
}

#[tokio::test]
async fn changes_while_serving_are_visible() {
    let sim = Sim::start(small()).await;
    let (repos, ids) = sim.handle.with_org_mut(|org| {
        let now = Timestamp(org.now.0 + 3600);
        org.set_now(now);
        let mut ids = Vec::new();
        for r in 0..org.repos.len() {
            if org.repos[r].workflow().is_some() {
                continue;
            }
            let id = org
                .add_deployment(
                    r,
                    NewDeployment {
                        environment: PRODUCTION.into(),
                        sha: None,
                        created_at: Timestamp(now.0 - 60),
                        outcome: NewOutcome::Success { after: 30 },
                    },
                )
                .unwrap();
            ids.push((r, id));
        }
        (org.repos.len(), ids)
    });
    assert!(ids.len() >= repos - 1);
    for (r, id) in &ids {
        let got = sim
            .get(&format!("{}/deployments?per_page=1", sim.repo_path(*r)))
            .await;
        assert_eq!(got.items()[0]["id"].as_u64(), Some(*id));
        let statuses = sim
            .get(&format!("{}/deployments/{id}/statuses", sim.repo_path(*r)))
            .await;
        assert_eq!(statuses.items()[0]["state"], "success");
    }
    let number = sim.handle.with_org_mut(|org| {
        let now = org.now;
        let n = org
            .open_incident(0, Timestamp(now.0 - 30), Some("abcdef1"))
            .unwrap();
        org.close_issue(0, n, now).unwrap();
        n
    });
    let closed = sim
        .get(&format!(
            "{}/issues?labels=incident&state=closed&sort=updated",
            sim.repo_path(0)
        ))
        .await;
    let item = &closed.items()[0];
    assert_eq!(item["number"].as_u64(), Some(number));
    assert!(item["body"]
        .as_str()
        .unwrap()
        .contains("root cause: abcdef1"));
    assert_eq!(item["state_reason"], "completed");
}

#[tokio::test]
async fn shutdown_is_graceful() {
    let sim = Sim::start(small()).await;
    let url = sim.url("/rate_limit");
    assert_eq!(sim.get("/rate_limit").await.status, 200);
    let Sim { handle, client } = sim;
    handle.shutdown().await.unwrap();
    assert!(
        client.get(&url).send().await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn a_caller_can_pass_its_own_listener() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = SimServer::start_on(listener, small(), SimOptions::default()).unwrap();
    assert_eq!(handle.addr(), addr);
    assert_eq!(handle.base_url(), format!("http://{addr}"));
    let got = reqwest::Client::new()
        .get(format!("{}/rate_limit", handle.base_url()))
        .bearer_auth(handle.token())
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
}

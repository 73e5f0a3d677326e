//! Schema conformance: for every endpoint the simulated GitHub serves, real
//! responses fetched over HTTP validate against the response schema of that
//! path, method and status in GitHub's OpenAPI description (a copy in
//! `tests/fixtures/github/`), with formats (`date-time`, `uri`, `email`) checked.
//!
//! OpenAPI 3.0's `nullable: true` is turned into JSON Schema (`type: [T, "null"]`,
//! or `anyOf [..., null]` where there is no `type`) before validation. Two
//! endpoints have no schema of their own in the subset and borrow the one GitHub
//! uses for the same object elsewhere: `GET /repos/{owner}/{repo}` (the
//! `repository` embedded in pull requests, and `minimal-repository`) and
//! `GET /repos/{owner}/{repo}/commits/{ref}` (the `commit` items of the list).

use dora_collector::domain::{CompareStatus, StatusState, Timestamp};
use dora_collector::sim::{Org, OrgSpec, SimHandle, SimOptions, SimServer};
use serde_json::{json, Value};
use std::sync::OnceLock;

const OPENAPI: &str = "tests/fixtures/github/rest-openapi-subset.json";

fn openapi() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| super::openapi::load(OPENAPI))
}

/// The response schema of `GET path` with `status`, converted.
fn schema(path: &str, status: &str) -> Value {
    let mut schema = openapi()["paths"][path]["get"]["responses"][status]["content"]
        ["application/json"]["schema"]
        .clone();
    assert!(schema.is_object(), "no schema for GET {path} {status}");
    super::openapi::convert_nullable(&mut schema);
    schema
}

fn validate(schema: &Value, instance: &Value, what: &str) {
    super::openapi::validate(schema, instance, what, "GitHub's");
}

struct Sim {
    handle: SimHandle,
    client: reqwest::Client,
    owner: String,
}

impl Sim {
    async fn start() -> Sim {
        let org = Org::generate(&OrgSpec::small(11));
        let owner = org.owner.clone();
        let handle = SimServer::start(org, SimOptions::default()).await.unwrap();
        Sim {
            handle,
            client: reqwest::Client::new(),
            owner,
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.handle.base_url()))
            .bearer_auth(self.handle.token())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Fetches `path` (expecting `status`) and validates it against the schema of
    /// `template` for that status; returns the body.
    async fn check(&self, path: &str, template: &str, status: u16) -> Value {
        let (got, body) = self.get(path).await;
        assert_eq!(got, status, "GET {path}: {body}");
        validate(
            &schema(template, &status.to_string()),
            &body,
            &format!("GET {path}"),
        );
        body
    }

    fn repo(&self, workflow: bool) -> (String, usize) {
        self.handle.with_org(|org| {
            let i = org
                .repos
                .iter()
                .position(|r| r.workflow().is_some() == workflow)
                .unwrap();
            (format!("/repos/{}/{}", self.owner, org.repos[i].name), i)
        })
    }
}

#[tokio::test]
async fn repository_and_org_repositories() {
    let sim = Sim::start().await;
    let (repo, _) = sim.repo(false);
    let (status, body) = sim.get(&repo).await;
    assert_eq!(status, 200);
    let pulls = schema("/repos/{owner}/{repo}/pulls", "200");
    validate(
        &pulls["items"]["properties"]["head"]["properties"]["repo"],
        &body,
        "repository",
    );
    let minimal = schema("/orgs/{org}/repos", "200");
    validate(&minimal["items"], &body, "repository as minimal-repository");
    let list = sim
        .check(
            &format!("/orgs/{}/repos?per_page=100", sim.owner),
            "/orgs/{org}/repos",
            200,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn deployments_and_every_kind_of_status() {
    let sim = Sim::start().await;
    let (repo, index) = sim.repo(false);
    let template = "/repos/{owner}/{repo}/deployments";
    let body = sim
        .check(&format!("{repo}/deployments?per_page=100"), template, 200)
        .await;
    assert_eq!(body.as_array().unwrap().len(), 100);
    sim.check(
        &format!("{repo}/deployments?environment=staging&page=2"),
        template,
        200,
    )
    .await;

    // Statuses of deployments covering every state the generator produces.
    let ids: Vec<u64> = sim.handle.with_org(|org| {
        let mut ids = Vec::new();
        for state in [
            StatusState::Success,
            StatusState::Failure,
            StatusState::Error,
            StatusState::Inactive,
            StatusState::Queued,
            StatusState::InProgress,
        ] {
            let d = org.repos[index]
                .deployments
                .iter()
                .rev()
                .find(|d| d.statuses.iter().any(|s| s.state == state));
            ids.extend(d.map(|d| d.id));
        }
        ids
    });
    assert!(ids.len() >= 5, "{ids:?}");
    for id in ids {
        let body = sim
            .check(
                &format!("{repo}/deployments/{id}/statuses"),
                "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
                200,
            )
            .await;
        assert!(!body.as_array().unwrap().is_empty());
    }
    sim.check(
        &format!("{repo}/deployments/1/statuses"),
        "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
        404,
    )
    .await;
}

#[tokio::test]
async fn workflow_runs() {
    let sim = Sim::start().await;
    let (repo, _) = sim.repo(true);
    let template = "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs";
    let body = sim
        .check(
            &format!("{repo}/actions/workflows/deploy.yml/runs?per_page=100"),
            template,
            200,
        )
        .await;
    let runs = body["workflow_runs"].as_array().unwrap();
    assert!(!runs.is_empty());
    for status in ["in_progress", "failure", "success"] {
        let body = sim
            .check(
                &format!("{repo}/actions/workflows/deploy.yml/runs?status={status}"),
                template,
                200,
            )
            .await;
        assert!(body["total_count"].as_u64().unwrap() > 0, "{status}");
    }
    sim.check(
        &format!("{repo}/actions/runs?branch=main&created=%3E%3D2024-01-01"),
        "/repos/{owner}/{repo}/actions/runs",
        200,
    )
    .await;
}

#[tokio::test]
async fn compare_in_every_status() {
    let sim = Sim::start().await;
    let (repo, index) = sim.repo(false);
    let template = "/repos/{owner}/{repo}/compare/{basehead}";
    let cases = sim.handle.with_org(|org| {
        let r = &org.repos[index];
        let head = r.main_head;
        let sha = |i: u32| r.commits[i as usize].sha.to_string();
        let pull = r
            .pulls
            .iter()
            .find(|p| {
                p.merge_commit.is_some() && !r.commits[p.merge_commit.unwrap() as usize].is_merge()
            })
            .unwrap();
        let merged = pull.merge_commit.unwrap();
        vec![
            (format!("{}...{}", sha(1), sha(head)), CompareStatus::Ahead),
            (format!("{}...{}", sha(head), sha(1)), CompareStatus::Behind),
            (format!("main...{}", sha(head)), CompareStatus::Identical),
            (
                format!("{}...{}", sha(pull.head()), sha(merged)),
                CompareStatus::Diverged,
            ),
        ]
    });
    for (basehead, status) in cases {
        let body = sim
            .check(&format!("{repo}/compare/{basehead}"), template, 200)
            .await;
        assert_eq!(body["status"], status.as_str(), "{basehead}");
        let paged = sim
            .check(
                &format!("{repo}/compare/{basehead}?per_page=5&page=2"),
                template,
                200,
            )
            .await;
        assert_eq!(paged["status"], status.as_str());
    }
    sim.check(&format!("{repo}/compare/main...nonexistent"), template, 404)
        .await;
}

#[tokio::test]
async fn commits_list_single_and_associated_pulls() {
    let sim = Sim::start().await;
    let (repo, index) = sim.repo(false);
    let body = sim
        .check(
            &format!("{repo}/commits?per_page=100"),
            "/repos/{owner}/{repo}/commits",
            200,
        )
        .await;
    assert!(body
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["parents"].as_array().unwrap().len() == 2));
    sim.check(
        &format!("{repo}/commits?sha=main&since=2024-10-01T00:00:00Z&page=2"),
        "/repos/{owner}/{repo}/commits",
        200,
    )
    .await;
    sim.check(
        &format!("{repo}/commits?sha=nope"),
        "/repos/{owner}/{repo}/commits",
        404,
    )
    .await;

    let (merged_sha, first_sha) = sim.handle.with_org(|org| {
        let r = &org.repos[index];
        let pull = r.pulls.iter().find(|p| p.merge_commit.is_some()).unwrap();
        (
            r.commits[pull.merge_commit.unwrap() as usize]
                .sha
                .to_string(),
            r.commits[1].sha.to_string(),
        )
    });
    let list_schema = schema("/repos/{owner}/{repo}/commits", "200");
    for reference in [
        merged_sha.clone(),
        first_sha[..10].to_owned(),
        "main".to_owned(),
        "refs/heads/main".to_owned(),
    ] {
        let (status, body) = sim.get(&format!("{repo}/commits/{reference}")).await;
        assert_eq!(status, 200, "{reference}");
        validate(&list_schema["items"], &body, &format!("commit {reference}"));
        assert!(body["stats"]["total"].as_u64().is_some());
    }
    let (status, body) = sim.get(&format!("{repo}/commits/deadbeef00")).await;
    assert_eq!(status, 422);
    assert_eq!(body["message"], "No commit found for SHA: deadbeef00");

    let body = sim
        .check(
            &format!("{repo}/commits/{merged_sha}/pulls"),
            "/repos/{owner}/{repo}/commits/{commit_sha}/pulls",
            200,
        )
        .await;
    assert_eq!(body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn issues_with_pull_requests_and_errors() {
    let sim = Sim::start().await;
    let (repo, _) = sim.repo(false);
    let template = "/repos/{owner}/{repo}/issues";
    let mut saw_pull = false;
    let mut saw_incident = false;
    for page in 1..=3 {
        let body = sim
            .check(
                &format!("{repo}/issues?state=all&per_page=100&page={page}"),
                template,
                200,
            )
            .await;
        for item in body.as_array().unwrap() {
            saw_pull |= item.get("pull_request").is_some();
            saw_incident |= item["labels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["name"] == "incident");
        }
    }
    assert!(saw_pull && saw_incident);
    sim.check(
        &format!("{repo}/issues?labels=incident&state=closed&sort=updated&direction=asc"),
        template,
        200,
    )
    .await;
    sim.check(&format!("{repo}/issues?state=bogus"), template, 422)
        .await;
    sim.check("/repos/nobody/nothing/issues", template, 404)
        .await;
}

#[tokio::test]
async fn pulls_and_pull_commits() {
    let sim = Sim::start().await;
    let (repo, index) = sim.repo(false);
    let body = sim
        .check(
            &format!("{repo}/pulls?state=all&per_page=100"),
            "/repos/{owner}/{repo}/pulls",
            200,
        )
        .await;
    assert_eq!(body.as_array().unwrap().len(), 100);
    sim.check(
        &format!("{repo}/pulls?state=open&sort=updated"),
        "/repos/{owner}/{repo}/pulls",
        200,
    )
    .await;
    sim.check(
        &format!("{repo}/pulls?state=closed&base=main&direction=asc&page=2"),
        "/repos/{owner}/{repo}/pulls",
        200,
    )
    .await;
    sim.check(
        &format!("{repo}/pulls?sort=bogus"),
        "/repos/{owner}/{repo}/pulls",
        422,
    )
    .await;
    let number = sim.handle.with_org(|org| {
        org.repos[index]
            .pulls
            .iter()
            .find(|p| p.commits.len() > 1)
            .unwrap()
            .number
    });
    let body = sim
        .check(
            &format!("{repo}/pulls/{number}/commits"),
            "/repos/{owner}/{repo}/pulls/{pull_number}/commits",
            200,
        )
        .await;
    assert!(body.as_array().unwrap().len() > 1);
}

/// A pull request's reviews (its first one) and an unreviewed one's (none).
#[tokio::test]
async fn pull_reviews() {
    let sim = Sim::start().await;
    let (repo, index) = sim.repo(false);
    let (reviewed, unreviewed) = sim.handle.with_org(|org| {
        let pulls = &org.repos[index].pulls;
        let number = |reviewed: bool| {
            pulls
                .iter()
                .find(|p| p.merged_at.is_some() && p.first_review_at.is_some() == reviewed)
                .map(|p| (p.number, p.first_review_at))
                .unwrap()
        };
        (number(true), number(false))
    });
    let body = sim
        .check(
            &format!("{repo}/pulls/{}/reviews", reviewed.0),
            "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
            200,
        )
        .await;
    let reviews = body.as_array().unwrap();
    assert_eq!(reviews.len(), 1);
    let submitted = Timestamp::parse_rfc3339(reviews[0]["submitted_at"].as_str().unwrap()).unwrap();
    assert_eq!(Some(submitted), reviewed.1);
    let body = sim
        .check(
            &format!("{repo}/pulls/{}/reviews?per_page=100", unreviewed.0),
            "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
            200,
        )
        .await;
    assert!(body.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn rate_limit_and_bad_credentials() {
    let sim = Sim::start().await;
    let body = sim.check("/rate_limit", "/rate_limit", 200).await;
    assert_eq!(body["resources"]["core"]["limit"], 5000);
    let response = reqwest::Client::new()
        .get(format!(
            "{}/installation/repositories",
            sim.handle.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    validate(&schema("/installation/repositories", "401"), &body, "401");
    assert_eq!(body["message"], "Bad credentials");
}

#[test]
fn the_conversion_accepts_null_only_where_nullable() {
    let mut s = json!({"type": "object", "required": ["a", "b"], "properties": {
        "a": {"type": "string", "nullable": true},
        "b": {"type": "string"},
        "c": {"nullable": true, "oneOf": [{"type": "integer"}, {"type": "string"}]},
        "d": {"type": "string", "nullable": true, "enum": ["x"]},
    }});
    super::openapi::convert_nullable(&mut s);
    let v = jsonschema::validator_for(&s).unwrap();
    assert!(v.is_valid(&json!({"a": null, "b": "x", "c": null, "d": null})));
    assert!(v.is_valid(&json!({"a": "y", "b": "x", "c": 3, "d": "x"})));
    assert!(!v.is_valid(&json!({"a": "y", "b": null})));
    assert!(!v.is_valid(&json!({"a": "y", "b": "x", "c": 1.5})));
    assert!(!v.is_valid(&json!({"a": "y", "b": "x", "d": "z"})));
}

/// The validation above can fail: broken copies of a real response are rejected
/// (a missing required property, a bad `date-time`, a bad `uri`, a `null` where
/// none is allowed).
#[tokio::test]
async fn broken_responses_are_rejected() {
    let sim = Sim::start().await;
    let (repo, _) = sim.repo(false);
    let (_, body) = sim.get(&format!("{repo}/deployments?per_page=2")).await;
    let schema = schema("/repos/{owner}/{repo}/deployments", "200");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    assert!(validator.is_valid(&body));
    let breaks: [fn(&mut Value); 4] = [
        |v| {
            v[0].as_object_mut().unwrap().remove("sha");
        },
        |v| v[0]["created_at"] = json!("2024-13-01T00:00:00Z"),
        |v| v[0]["statuses_url"] = json!("not a uri"),
        |v| v[0]["environment"] = Value::Null,
    ];
    for (i, break_it) in breaks.iter().enumerate() {
        let mut broken = body.clone();
        break_it(&mut broken);
        assert!(!validator.is_valid(&broken), "break {i} went unnoticed");
    }
    // `description` is nullable in GitHub's schema, so null is fine there.
    let mut fine = body.clone();
    fine[0]["description"] = Value::Null;
    assert!(validator.is_valid(&fine));
}

/// An RS256 JWT of App `app_id` signed with `key`, valid for nine minutes.
fn app_jwt(key: &rsa::RsaPrivateKey, app_id: u64) -> String {
    use base64::Engine as _;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = chrono::Utc::now().timestamp();
    let header = engine.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims =
        engine.encode(json!({"iat": now - 60, "exp": now + 540, "iss": app_id}).to_string());
    let input = format!("{header}.{claims}");
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    format!(
        "{input}.{}",
        engine.encode(signer.sign(input.as_bytes()).to_bytes())
    )
}

#[tokio::test]
async fn github_app_installations_and_installation_tokens() {
    use dora_collector::sim::{SimApp, SimInstallation};
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let org = Org::generate(&OrgSpec::small(11));
    let owner = org.owner.clone();
    let repo = org.repos[0].name.clone();
    let options = SimOptions {
        app: Some(SimApp {
            id: 7,
            public_key_pem: key
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
            token_lifetime: std::time::Duration::from_secs(3600),
            installations: vec![SimInstallation {
                id: 11,
                account: owner.clone(),
            }],
        }),
        ..SimOptions::default()
    };
    let handle = SimServer::start(org, options).await.unwrap();
    let client = reqwest::Client::new();
    let base = handle.base_url().to_owned();
    let jwt = app_jwt(&key, 7);
    let get = |path: String, bearer: String| {
        let request = client.get(format!("{base}{path}")).bearer_auth(bearer);
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = get("/app/installations".into(), jwt.clone()).await;
    assert_eq!(status, 200, "{body}");
    validate(&schema("/app/installations", "200"), &body, "installations");
    assert_eq!(body[0]["id"], 11);
    let (status, body) = get(format!("/orgs/{owner}/installation"), jwt.clone()).await;
    assert_eq!(status, 200, "{body}");
    validate(
        &schema("/orgs/{org}/installation", "200"),
        &body,
        "org installation",
    );
    assert_eq!(body["account"]["login"], owner.as_str());
    let path = format!("/repos/{owner}/{repo}/installation");
    let (status, body) = get(path, jwt.clone()).await;
    assert_eq!(status, 200, "{body}");
    validate(
        &schema("/repos/{owner}/{repo}/installation", "200"),
        &body,
        "repo installation",
    );
    let (status, body) = get(format!("/repos/{owner}/nothing/installation"), jwt.clone()).await;
    assert_eq!(status, 404);
    validate(
        &schema("/repos/{owner}/{repo}/installation", "404"),
        &body,
        "no installation",
    );
    let (status, _) = get("/orgs/elsewhere/installation".into(), jwt.clone()).await;
    assert_eq!(status, 404);
    // The personal token is not a JWT; a JWT of another key is refused.
    let (status, body) = get("/app/installations".into(), handle.token()).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("A JSON web token could not be decoded"))
    );
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let (status, _) = get("/app/installations".into(), app_jwt(&other, 7)).await;
    assert_eq!(status, 401);

    // A token: 201 in GitHub's shape, then it reads its organisation.
    let mint = |bearer: String, id: u64| {
        let request = client
            .post(format!("{base}/app/installations/{id}/access_tokens"))
            .bearer_auth(bearer);
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = mint(jwt.clone(), 11).await;
    assert_eq!(status, 201, "{body}");
    let token_schema = {
        let mut schema = openapi()["paths"]["/app/installations/{installation_id}/access_tokens"]
            ["post"]["responses"]["201"]["content"]["application/json"]["schema"]
            .clone();
        super::openapi::convert_nullable(&mut schema);
        schema
    };
    validate(&token_schema, &body, "installation token");
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, _) = get(format!("/repos/{owner}/{repo}/deployments"), token.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(mint(jwt.clone(), 12).await.0, 404, "no such installation");
    assert_eq!(
        mint(handle.token(), 11).await.0,
        401,
        "the token cannot mint"
    );
    assert_eq!(handle.tokens_minted().get(&11), Some(&1));
    // Ended early, or its installation removed: GitHub's 401.
    handle.expire_tokens();
    let (status, body) = get(format!("/repos/{owner}/{repo}/deployments"), token).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Bad credentials"))
    );
    let (_, body) = mint(jwt.clone(), 11).await;
    let token = body["token"].as_str().unwrap().to_owned();
    handle.revoke_installation(11);
    let (status, _) = get(format!("/repos/{owner}/{repo}/deployments"), token).await;
    assert_eq!(status, 401);
    assert_eq!(mint(jwt.clone(), 11).await.0, 404);
    assert_eq!(get(format!("/orgs/{owner}/installation"), jwt).await.0, 404);
}

/// GitHub's installation budgets (growing with the organisation's repositories
/// and people) and its secondary limits from load: a `403` with `retry-after`
/// once a minute's points are spent, then the same answer for every request of
/// the installation until `retry-after` has passed.
#[tokio::test]
async fn installation_budgets_and_secondary_limits_like_github() {
    use dora_collector::sim::{
        github_installation_limit, InstallationBudgets, SecondaryLimits, SimApp, SimInstallation,
    };
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let org = Org::generate(&OrgSpec::small(11));
    let expected = github_installation_limit(org.repos.len(), org.people.len() - 1);
    let owner = org.owner.clone();
    let repo = org.repos[0].name.clone();
    let options = SimOptions {
        app: Some(SimApp {
            id: 7,
            public_key_pem: key
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
            token_lifetime: std::time::Duration::from_secs(3600),
            installations: vec![SimInstallation {
                id: 11,
                account: owner.clone(),
            }],
        }),
        installation_budgets: InstallationBudgets::Github,
        secondary_limits: Some(SecondaryLimits {
            rest_points_per_minute: 5,
            graphql_points_per_minute: 2,
            retry_after: std::time::Duration::from_secs(30),
            ..SecondaryLimits::GITHUB
        }),
        ..SimOptions::default()
    };
    let handle = SimServer::start(org, options).await.unwrap();
    let client = reqwest::Client::new();
    let base = handle.base_url().to_owned();
    // Minting is a POST: 5 of the App's own REST points.
    let response = client
        .post(format!("{base}/app/installations/11/access_tokens"))
        .bearer_auth(app_jwt(&key, 7))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let token = response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let graphql = || {
        client
            .post(format!("{base}/graphql"))
            .bearer_auth(&token)
            .json(&json!({"query": "{ rateLimit { limit } }"}))
            .send()
    };
    let response = graphql().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.json::<Value>().await.unwrap();
    assert_eq!(body["data"]["rateLimit"]["limit"], expected, "{body}");
    assert_eq!(
        handle.installation_graphql_rate_limit(11).unwrap().limit,
        expected
    );
    let get = || {
        client
            .get(format!("{base}/repos/{owner}/{repo}/deployments"))
            .bearer_auth(&token)
            .send()
    };
    for _ in 0..5 {
        let response = get().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers()["x-ratelimit-limit"].to_str().unwrap(),
            expected.to_string()
        );
    }
    assert_eq!(handle.installation_rate_limit(11).unwrap().limit, expected);
    // The sixth REST point of the minute: GitHub's secondary limit.
    let response = get().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(response.headers()["retry-after"].to_str().unwrap(), "30");
    let body = response.json::<Value>().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("You have exceeded a secondary rate limit"),
        "{body}"
    );
    // Until `retry-after`, GraphQL too is refused, each a violation.
    assert_eq!(graphql().await.unwrap().status().as_u16(), 403);
    let counts = handle.secondary_counts();
    assert_eq!(
        (counts.rest_per_minute, counts.violations, counts.refused()),
        (1, 1, 2)
    );
    assert_eq!(counts.peak_rest_per_minute, 5);
    // The refused requests cost no primary budget.
    assert_eq!(handle.installation_rate_limit(11).unwrap().used, 5);
}

#[tokio::test]
async fn organisation_teams_and_team_repositories() {
    let mut org = Org::generate(&OrgSpec::small(11));
    let owner = org.owner.clone();
    org.repos[0].other_teams = vec![(1, "push".to_owned())];
    org.repos[1].archived = true;
    org.repos[1].topics = vec!["team-web".to_owned()];
    let slug = org.teams[1].slug();
    let handle = SimServer::start(org, SimOptions::default()).await.unwrap();
    let sim = Sim {
        handle,
        client: reqwest::Client::new(),
        owner: owner.clone(),
    };
    let teams = sim
        .check(&format!("/orgs/{owner}/teams"), "/orgs/{org}/teams", 200)
        .await;
    assert_eq!(teams.as_array().unwrap().len(), 2);
    let repos = sim
        .check(
            &format!("/orgs/{owner}/teams/{slug}/repos?per_page=100"),
            "/orgs/{org}/teams/{team_slug}/repos",
            200,
        )
        .await;
    let roles: Vec<&str> = repos
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role_name"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"write") && roles.contains(&"admin"),
        "{roles:?}"
    );
    let (status, _) = sim.get(&format!("/orgs/{owner}/teams/nobody/repos")).await;
    assert_eq!(status, 404);
    // The organisation's list shows archived repositories and topics.
    let list = sim
        .check(&format!("/orgs/{owner}/repos"), "/orgs/{org}/repos", 200)
        .await;
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["archived"] == true && r["topics"][0] == "team-web"));
}

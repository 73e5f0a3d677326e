//! The simulated GitLab against GitLab's own OpenAPI description (a transcribed
//! subset, `tests/fixtures/gitlab/`, CC BY-SA 4.0, see its `NOTICE.md`): every
//! endpoint the GitLab source reads, fetched over HTTP, validates against the
//! response schema of its path, with formats checked; and GitLab's headers
//! (pagination, `RateLimit-*`) and errors are there.
//!
//! Where GitLab's generated description is loose, this validates what it does
//! say and takes the rest from GitLab's API documentation, on purpose and only
//! so far:
//! - references (`$ref`) are inlined (the subset is not dereferenced);
//! - no response property is marked `nullable`, yet GitLab sends `null` for what
//!   is absent (an open issue's `closed_at`, an unmerged merge request's
//!   `merged_at`, a user's `public_email`), so every property may be `null`;
//! - to-many fields the description gives as one object (`assignees`,
//!   `reviewers`, `approvals`) may be arrays of that object;
//! - `GET /projects/{id}/issues` is described as one issue: each item of the
//!   list is validated against it.

use dora_collector::sim::gitlab::{
    GitlabGroup, GitlabHandle, GitlabOptions, GitlabServer, GroupSpec,
};
use serde_json::{json, Value};
use std::sync::OnceLock;

const OPENAPI: &str = "tests/fixtures/gitlab/rest-openapi-subset.json";

/// Fields the description types as one object that GitLab sends as a list.
const TO_MANY: [&str; 3] = ["assignees", "reviewers", "approvals"];

/// The most nested `$ref`s inlined (the entities are a few levels deep).
const MAX_REF_DEPTH: usize = 12;

fn openapi() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| super::openapi::load(OPENAPI))
}

/// `schema` with every `$ref` inlined, every property nullable and the to-many
/// fields accepting lists (see the module documentation).
fn loosened(schema: &Value, depth: usize) -> Value {
    let schemas = &openapi()["components"]["schemas"];
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let name = reference.trim_start_matches("#/components/schemas/");
                if depth >= MAX_REF_DEPTH {
                    return json!({});
                }
                return loosened(&schemas[name], depth + 1);
            }
            let mut out = serde_json::Map::new();
            for (key, value) in map {
                if key == "example" || key == "examples" {
                    continue;
                }
                if key == "properties" {
                    let mut properties = serde_json::Map::new();
                    for (name, property) in value.as_object().into_iter().flatten() {
                        let inner = loosened(property, depth);
                        let inner = if TO_MANY.contains(&name.as_str()) {
                            json!({"anyOf": [inner, {"type": "array", "items": inner}]})
                        } else {
                            inner
                        };
                        properties
                            .insert(name.clone(), json!({"anyOf": [inner, {"type": "null"}]}));
                    }
                    out.insert(key.clone(), Value::Object(properties));
                } else {
                    out.insert(key.clone(), loosened(value, depth));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| loosened(i, depth)).collect()),
        other => other.clone(),
    }
}

/// The 200 schema of `GET path`, loosened.
fn schema(path: &str) -> Value {
    let raw = &openapi()["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert!(raw.is_object(), "no schema for GET {path}");
    let mut schema = loosened(raw, 0);
    super::openapi::convert_nullable(&mut schema);
    schema
}

fn validate(schema: &Value, instance: &Value, what: &str) {
    super::openapi::validate(schema, instance, what, "GitLab's");
}

struct Sim {
    handle: GitlabHandle,
    client: reqwest::Client,
}

impl Sim {
    async fn start() -> Sim {
        Sim::with(GitlabOptions::default()).await
    }

    async fn with(options: GitlabOptions) -> Sim {
        let group = GitlabGroup::generate(&GroupSpec::small(11));
        let handle = GitlabServer::start(group, options).await.unwrap();
        Sim {
            handle,
            client: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.handle.api_url()))
            .header("PRIVATE-TOKEN", self.handle.token())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Fetches `path` (expecting 200) and validates it against `template`'s
    /// schema (each item against the one-issue schema for issues).
    async fn check(&self, path: &str, template: &str) -> (reqwest::header::HeaderMap, Value) {
        let (status, headers, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        let schema = schema(template);
        if template.ends_with("/issues") {
            for item in body.as_array().expect("a list") {
                validate(&schema, item, &format!("an issue of GET {path}"));
            }
        } else {
            validate(&schema, &body, &format!("GET {path}"));
        }
        (headers, body)
    }

    /// `/projects/{encoded path}` of project `index`, and the project's path.
    fn project(&self, index: usize) -> String {
        let path = self.handle.with_group(|g| g.projects[index].path.clone());
        format!("/projects/{}", path.replace('/', "%2F"))
    }
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn projects_and_the_groups_projects() {
    let sim = Sim::start().await;
    let project = sim.project(2);
    let (_, body) = sim.check(&project, "/api/v4/projects/{id}").await;
    assert!(body["path_with_namespace"]
        .as_str()
        .unwrap()
        .contains("/services/"));
    let id = body["id"].as_u64().unwrap();
    let (_, by_id) = sim
        .check(&format!("/projects/{id}"), "/api/v4/projects/{id}")
        .await;
    assert_eq!(by_id["id"], body["id"]);
    let (_, all) = sim
        .check(
            "/groups/gl-acme/projects?include_subgroups=true&per_page=100",
            "/api/v4/groups/{id}/projects",
        )
        .await;
    assert_eq!(all.as_array().unwrap().len(), 4);
    let (_, top) = sim
        .check("/groups/gl-acme/projects", "/api/v4/groups/{id}/projects")
        .await;
    assert_eq!(
        top.as_array().unwrap().len(),
        1,
        "only the top-level project"
    );
}

#[tokio::test]
async fn deployments_environments_and_their_pages() {
    let sim = Sim::start().await;
    let project = sim.project(0);
    let template = "/api/v4/projects/{id}/deployments";
    let (headers, body) = sim
        .check(&format!("{project}/deployments?per_page=100"), template)
        .await;
    let items = body.as_array().unwrap();
    assert_eq!(items.len(), 100);
    for status in ["success", "failed"] {
        assert!(items.iter().any(|d| d["status"] == status), "{status}");
    }
    assert_eq!(header(&headers, "x-page"), "1");
    assert_eq!(header(&headers, "x-next-page"), "2");
    assert!(header(&headers, "x-total").parse::<u64>().unwrap() > 100);
    assert!(header(&headers, "link").contains("rel=\"next\""));
    assert!(header(&headers, "ratelimit-remaining")
        .parse::<u64>()
        .is_ok());
    assert!(header(&headers, "ratelimit-reset").parse::<i64>().is_ok());
    // The cursor's query: updated at or after, newest update first.
    let (_, recent) = sim
        .check(
            &format!(
                "{project}/deployments?updated_after=2025-01-10T00:00:00Z&order_by=updated_at&sort=desc"
            ),
            template,
        )
        .await;
    let updated: Vec<&str> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["updated_at"].as_str().unwrap())
        .collect();
    assert!(updated.windows(2).all(|w| w[0] >= w[1]), "{updated:?}");
    assert!(updated.iter().all(|u| *u >= "2025-01-10"));
    let id = items[0]["id"].as_u64().unwrap();
    sim.check(
        &format!("{project}/deployments/{id}"),
        "/api/v4/projects/{id}/deployments/{deployment_id}",
    )
    .await;
    // GitLab's finder rules.
    let (status, _, body) = sim
        .get(&format!(
            "{project}/deployments?finished_before=2025-01-10T00:00:00Z"
        ))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = sim
        .get(&format!(
            "{project}/deployments?finished_before=2025-01-10T00:00:00Z&order_by=finished_at&status=success&sort=desc"
        ))
        .await;
    assert_eq!(status, 200);
    let (_, environments) = sim
        .check(
            &format!("{project}/environments"),
            "/api/v4/projects/{id}/environments",
        )
        .await;
    let tiers: Vec<(&str, &str)> = environments
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["tier"].as_str().unwrap()))
        .collect();
    assert!(tiers.contains(&("live", "production")), "{tiers:?}");
    assert!(tiers.contains(&("staging", "staging")), "{tiers:?}");
}

#[tokio::test]
async fn commits_single_commits_and_compare() {
    let sim = Sim::start().await;
    let project = sim.project(1);
    let template = "/api/v4/projects/{id}/repository/commits";
    let (headers, body) = sim
        .check(
            &format!("{project}/repository/commits?per_page=100"),
            template,
        )
        .await;
    let items = body.as_array().unwrap();
    assert_eq!(items.len(), 100);
    assert!(items
        .iter()
        .any(|c| c["parent_ids"].as_array().unwrap().len() == 2));
    assert_eq!(header(&headers, "x-next-page"), "2");
    assert_eq!(
        header(&headers, "x-total"),
        "",
        "GitLab does not count commits"
    );
    let head = items[0]["id"].as_str().unwrap();
    let old = items[60]["id"].as_str().unwrap();
    // Keyset pages: only `Link: rel="next"`, with a page token.
    let (headers, _) = sim
        .check(
            &format!("{project}/repository/commits?ref_name={head}&pagination=keyset&per_page=20"),
            template,
        )
        .await;
    assert!(
        header(&headers, "link").contains("page_token="),
        "{headers:?}"
    );
    assert_eq!(header(&headers, "x-page"), "");
    sim.check(
        &format!("{project}/repository/commits/{head}"),
        "/api/v4/projects/{id}/repository/commits/{sha}",
    )
    .await;
    let (_, compare) = sim
        .check(
            &format!("{project}/repository/compare?from={old}&to={head}"),
            "/api/v4/projects/{id}/repository/compare",
        )
        .await;
    assert!(compare["commits"].as_array().unwrap().len() >= 60);
    let (_, backwards) = sim
        .check(
            &format!("{project}/repository/compare?from={head}&to={old}"),
            "/api/v4/projects/{id}/repository/compare",
        )
        .await;
    assert!(backwards["commits"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn merge_requests_issues_and_incidents() {
    let sim = Sim::start().await;
    let project = sim.project(0);
    let (_, merged) = sim
        .check(
            &format!(
                "{project}/merge_requests?state=merged&order_by=updated_at&sort=desc&per_page=100"
            ),
            "/api/v4/projects/{id}/merge_requests",
        )
        .await;
    let merged = merged.as_array().unwrap();
    assert!(merged.iter().any(|m| !m["squash_commit_sha"].is_null()));
    assert!(merged.iter().any(|m| !m["merge_commit_sha"].is_null()));
    let iid = merged[0]["iid"].as_u64().unwrap();
    sim.check(
        &format!("{project}/merge_requests/{iid}/commits"),
        "/api/v4/projects/{id}/merge_requests/{merge_request_iid}/commits",
    )
    .await;
    let template = "/api/v4/projects/{id}/issues";
    let (_, incidents) = sim
        .check(
            &format!("{project}/issues?issue_type=incident&per_page=100"),
            template,
        )
        .await;
    assert!(!incidents.as_array().unwrap().is_empty());
    assert!(incidents
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["issue_type"] == "incident" && i["type"] == "INCIDENT"));
    let (_, all) = sim
        .check(
            &format!("{project}/issues?state=all&per_page=100"),
            template,
        )
        .await;
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["closed_at"].is_null()));
    // Keyset pages of issues, newest update first, all of them once.
    let mut url = format!(
        "{}{project}/issues?pagination=keyset&order_by=updated_at&sort=desc&per_page=5",
        sim.handle.api_url()
    );
    let mut seen = Vec::new();
    loop {
        let response = sim
            .client
            .get(&url)
            .header("PRIVATE-TOKEN", sim.handle.token())
            .send()
            .await
            .unwrap();
        let link = header(response.headers(), "link").to_owned();
        let page: Value = response.json().await.unwrap();
        for item in page.as_array().unwrap() {
            validate(&schema(template), item, "an issue of a keyset page");
            seen.push(item["id"].as_u64().unwrap());
        }
        match link
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
        {
            Some((next, _)) => url = next.to_owned(),
            None => break,
        }
    }
    let mut distinct = seen.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), seen.len());
    assert_eq!(seen.len(), all.as_array().unwrap().len());
}

#[tokio::test]
async fn pipelines() {
    let sim = Sim::start().await;
    let index = sim.handle.with_group(|g| {
        g.projects
            .iter()
            .position(|p| {
                matches!(
                    p.deploys,
                    dora_collector::sim::gitlab::GitlabDeploySource::Pipelines { .. }
                )
            })
            .unwrap()
    });
    let project = sim.project(index);
    let (_, list) = sim
        .check(
            &format!("{project}/pipelines?ref=main&order_by=updated_at&sort=desc&per_page=100"),
            "/api/v4/projects/{id}/pipelines",
        )
        .await;
    let list = list.as_array().unwrap();
    assert!(list.iter().all(|p| p["ref"] == "main"));
    let success = list.iter().find(|p| p["status"] == "success").unwrap();
    let id = success["id"].as_u64().unwrap();
    let (_, detail) = sim
        .check(
            &format!("{project}/pipelines/{id}"),
            "/api/v4/projects/{id}/pipelines/{pipeline_id}",
        )
        .await;
    assert!(detail["finished_at"].is_string());
}

#[tokio::test]
async fn errors_and_the_path_prefix_of_a_self_managed_instance() {
    let sim = Sim::with(GitlabOptions {
        path_prefix: "/gitlab".to_owned(),
        ..GitlabOptions::default()
    })
    .await;
    assert!(sim.handle.api_url().ends_with("/gitlab/api/v4"));
    let (status, _, body) = sim.get("/projects/gl-acme%2Fnope/deployments").await;
    assert_eq!(
        (status, body),
        (404, json!({"message": "404 Project Not Found"}))
    );
    let project = sim.project(0);
    let response = sim
        .client
        .get(format!("{}{project}/deployments", sim.handle.api_url()))
        .header("PRIVATE-TOKEN", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"message": "401 Unauthorized"})
    );
    // Outside the prefix there is no API.
    let origin = sim
        .handle
        .api_url()
        .trim_end_matches("/gitlab/api/v4")
        .to_owned();
    let response = sim
        .client
        .get(format!("{origin}/api/v4{project}/deployments"))
        .header("PRIVATE-TOKEN", sim.handle.token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    // A spent budget: 429 with Retry-After and RateLimit-Remaining 0, counted.
    sim.handle.set_rate_limit_remaining(0);
    let (status, headers, body) = sim.get(&format!("{project}/deployments")).await;
    assert_eq!(status, 429);
    assert_eq!(body, Value::String("Retry later\n".to_owned()));
    assert!(header(&headers, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(header(&headers, "ratelimit-remaining"), "0");
    assert_eq!(sim.handle.rate_limit_violations(), 1);
}

/// The loosening keeps the checks that matter: a wrong type, a bad
/// `date-time` and an id that is not a number are still rejected.
#[tokio::test]
async fn broken_responses_are_rejected() {
    let sim = Sim::start().await;
    let project = sim.project(0);
    let (_, body) = sim
        .check(
            &format!("{project}/deployments"),
            "/api/v4/projects/{id}/deployments",
        )
        .await;
    let good = body[0].clone();
    let item_schema = &schema("/api/v4/projects/{id}/deployments")["items"];
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(item_schema)
        .unwrap();
    assert!(validator.is_valid(&good));
    for (pointer, bad) in [
        ("/created_at", json!("yesterday")),
        ("/id", json!("41")),
        ("/deployable/finished_at", json!(12)),
        ("/environment/name", json!(["production"])),
    ] {
        let mut broken = good.clone();
        *broken.pointer_mut(pointer).unwrap() = bad;
        assert!(!validator.is_valid(&broken), "{pointer}");
    }
}

/// The simulated GitLab's faults, the GitLab way: a `500` with GitLab's body,
/// a `429` with `Retry-After` and `RateLimit-Remaining: 0` that holds the token
/// until it passes (a request meanwhile is a violation), and real TCP resets.
#[tokio::test]
async fn faults_are_answered_the_gitlab_way() {
    use dora_collector::sim::{ChaosOptions, Fault};
    let sim = Sim::start().await;
    let project = sim.project(0);
    let only = |fault: Fault| ChaosOptions {
        max_consecutive_faults: 100,
        retry_after: std::time::Duration::from_secs(1),
        ..ChaosOptions::default().with_rate(fault, 1.0)
    };
    sim.handle.set_chaos(only(Fault::ServerError)).unwrap();
    let (status, _, body) = sim.get(&format!("{project}/issues")).await;
    assert_eq!(
        (status, body),
        (500, json!({"message": "500 Internal Server Error"}))
    );

    sim.handle.set_chaos(only(Fault::TooManyRequests)).unwrap();
    let (status, headers, _) = sim.get(&format!("{project}/issues")).await;
    assert_eq!(status, 429);
    assert_eq!(header(&headers, "retry-after"), "1");
    assert_eq!(header(&headers, "ratelimit-remaining"), "0");
    sim.handle.set_chaos(ChaosOptions::default()).unwrap();
    let (status, _, _) = sim.get(&format!("{project}/issues")).await;
    assert_eq!(status, 429, "held until Retry-After passes");
    assert_eq!(sim.handle.throttle_violations(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, _, _) = sim.get(&format!("{project}/issues")).await;
    assert_eq!(status, 200);

    sim.handle.set_chaos(only(Fault::Reset)).unwrap();
    let error = sim
        .client
        .get(format!("{}{project}/issues", sim.handle.api_url()))
        .header("PRIVATE-TOKEN", sim.handle.token())
        .send()
        .await
        .unwrap_err();
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert_eq!(sim.handle.chaos_counts().reset, 1);
}

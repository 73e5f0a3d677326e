//! The simulated Jenkins against what the remote access API does
//! (`tests/fixtures/jenkins/README.md`): jobs and builds validate against the
//! community OpenAPI subset (swaggy-jenkins; see NOTICE.md) with its known
//! gaps allowed (`null` where Jenkins sends it, build objects where it says
//! string); `tree` with ranges; `builds` the newest 100 and `allBuilds` only
//! when asked; folders, multibranch branch names; `result: null` while
//! building; `BuildData` next to `{}` actions; pre-emptive basic
//! authentication (`403` without, `401` with a wrong token).

use base64::Engine as _;
use dora_collector::domain::Timestamp;
use dora_collector::sim::cicd::jenkins::{
    builds_from_github, url_segment, BuildResult, Checkout, FolderKind, JenkinsJob, JenkinsState,
    JobKind, LIBRARY_REMOTE,
};
use dora_collector::sim::cicd::{CicdHandle, CicdOptions, Credentials};
use dora_collector::sim::{DeploySource, Org, OrgSpec, PRODUCTION};
use serde_json::{json, Value};

const OPENAPI: &str = "tests/fixtures/jenkins/rest-openapi-subset.json";
const USER: &str = "dora";
const TOKEN: &str = "11aa22bb33cc44dd55ee66ff77aa88bb99";

/// The component schemas, with the README's known gaps allowed: `null` for any
/// string, integer or object, and a build object where a permalink is typed
/// `string`.
fn schema(component: &str) -> Value {
    let text = std::fs::read_to_string(OPENAPI).expect("fixture present");
    let spec: Value = serde_json::from_str(&text).expect("fixture is JSON");
    let mut schemas = spec["components"]["schemas"].clone();
    fn allow_null(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for child in map.values_mut() {
                    allow_null(child);
                }
                if let Some(Value::String(kind)) = map.get("type").cloned() {
                    if kind != "array" && kind != "boolean" {
                        map.insert("type".into(), json!([kind, "null"]));
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(allow_null),
            _ => {}
        }
    }
    allow_null(&mut schemas);
    for permalink in [
        "lastFailedBuild",
        "lastUnstableBuild",
        "lastUnsuccessfulBuild",
    ] {
        schemas["FreeStyleProject"]["properties"][permalink] =
            json!({"anyOf": [{"$ref": "#/components/schemas/FreeStyleBuild"}, {"type": "null"}]});
    }
    // Actions are a mix of classes (README: only CauseAction is described).
    schemas["FreeStyleBuild"]["properties"]["actions"]["items"] = json!({"type": "object"});
    json!({"components": {"schemas": schemas}, "$ref": format!("#/components/schemas/{component}")})
}

fn validate(component: &str, instance: &Value) {
    let schema = schema(component);
    let validator = jsonschema::options()
        .build(&schema)
        .expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .take(10)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not a {component}:\n{}",
        errors.join("\n")
    );
}

fn sha(n: u32) -> String {
    format!("{n:040x}")
}

fn checkouts(n: u32) -> Vec<Checkout> {
    vec![
        Checkout {
            sha: "9".repeat(40),
            branch: "refs/remotes/origin/main".into(),
            remote_url: LIBRARY_REMOTE.into(),
        },
        Checkout {
            sha: sha(n),
            branch: "refs/remotes/origin/main".into(),
            remote_url: "https://github.com/acme/api.git".into(),
        },
    ]
}

/// A freestyle job in `deploy/` with 150 builds (the last still running) and a
/// multibranch project with a branch `release/1.x`.
fn state() -> JenkinsState {
    let mut job = JenkinsJob::new("api", JobKind::Freestyle);
    for n in 1..=150u32 {
        let number = job.start_build(i64::from(n) * 60_000, checkouts(n));
        if n < 150 {
            let result = match n % 10 {
                3 => BuildResult::Failure,
                5 => BuildResult::Aborted,
                7 => BuildResult::Unstable,
                _ => BuildResult::Success,
            };
            job.finish_build(number, result, 30_000);
        }
    }
    let mut state = JenkinsState::default();
    state.insert(&["deploy"], FolderKind::Folder, job);
    let mut branch = JenkinsJob::new("ignored", JobKind::Pipeline);
    let number = branch.start_build(1_000, checkouts(1));
    branch.finish_build(number, BuildResult::Success, 500);
    state.insert_branch(&["apps", "web"], "release/1.x", branch);
    state
}

struct Sim {
    handle: CicdHandle<JenkinsState>,
}

impl Sim {
    async fn start(options: CicdOptions) -> Sim {
        let credentials = Credentials::Basic {
            user: USER.into(),
            token: TOKEN.into(),
        };
        Sim {
            handle: CicdHandle::start(state(), credentials, options)
                .await
                .unwrap(),
        }
    }

    async fn get_with(
        &self,
        path: &str,
        auth: Option<(&str, &str)>,
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.handle.base_url()));
        if let Some((user, token)) = auth {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
            request = request.header("authorization", format!("Basic {encoded}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.text().await.unwrap(), headers)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body, headers) = self.get_with(path, Some((USER, TOKEN))).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert!(headers.contains_key("x-jenkins"));
        serde_json::from_str(&body).unwrap()
    }
}

#[tokio::test]
async fn jobs_and_builds_validate_against_the_community_description() {
    let sim = Sim::start(CicdOptions::default()).await;
    let job = sim.get("/job/deploy/job/api/api/json").await;
    validate("FreeStyleProject", &job);
    assert_eq!(job["_class"], "hudson.model.FreeStyleProject");
    assert_eq!(job["fullName"], "deploy/api");
    assert!(job["url"]
        .as_str()
        .unwrap()
        .ends_with("/job/deploy/job/api/"));
    assert!(
        job.get("allBuilds").is_none(),
        "allBuilds only when named in tree"
    );
    let builds = job["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 100, "builds: the newest 100");
    assert_eq!(builds[0]["number"], 150);
    assert_eq!(builds[0].as_object().unwrap().len(), 3, "short references");
    assert_eq!(job["nextBuildNumber"], 151);
    let full = sim
        .get("/job/deploy/job/api/api/json?tree=builds[number,result,timestamp,duration,building,actions[_class,lastBuiltRevision[SHA1],remoteUrls]],lastBuild[number],lastFailedBuild[number]")
        .await;
    validate("FreeStyleProject", &full);
    let last = sim.get("/job/deploy/job/api/lastBuild/api/json").await;
    validate("FreeStyleBuild", &last);
    assert_eq!(
        (
            last["number"].clone(),
            last["result"].clone(),
            last["duration"].clone()
        ),
        (json!(150), Value::Null, json!(0))
    );
    assert_eq!(last["building"], true);
    let build = sim.get("/job/deploy/job/api/149/api/json").await;
    validate("FreeStyleBuild", &build);
    assert_eq!(build["timestamp"], 149 * 60_000);
    assert_eq!(build["duration"], 30_000);
    assert_eq!(build["result"], "SUCCESS");
}

#[tokio::test]
async fn tree_ranges_all_builds_and_build_data() {
    let sim = Sim::start(CicdOptions::default()).await;
    let fields = "number,result,building,timestamp,duration,actions[_class,lastBuiltRevision[SHA1],remoteUrls]";
    let page = sim
        .get(&format!(
            "/job/deploy/job/api/api/json?tree=allBuilds[{fields}]{{100,200}}"
        ))
        .await;
    let all = page["allBuilds"].as_array().unwrap();
    assert_eq!(all.len(), 50, "the 50 oldest, past the newest 100");
    assert_eq!(
        (all[0]["number"].clone(), all[49]["number"].clone()),
        (json!(50), json!(1))
    );
    assert!(page.get("builds").is_none(), "only what the tree names");
    assert_eq!(page["_class"], "hudson.model.FreeStyleProject");
    let actions = all[0]["actions"].as_array().unwrap();
    assert!(
        actions.iter().any(|a| a == &json!({})),
        "empty actions stay"
    );
    let data: Vec<&Value> = actions
        .iter()
        .filter(|a| a["_class"] == "hudson.plugins.git.util.BuildData")
        .collect();
    assert_eq!(data.len(), 2, "the library's and the application's");
    assert_eq!(data[0]["remoteUrls"], json!([LIBRARY_REMOTE]));
    assert_eq!(data[1]["lastBuiltRevision"], json!({"SHA1": sha(50)}));
    let first = sim
        .get("/job/deploy/job/api/api/json?tree=builds[number]{0,3}")
        .await;
    assert_eq!(
        first["builds"],
        json!([
            {"_class": "hudson.model.FreeStyleBuild", "number": 150},
            {"_class": "hudson.model.FreeStyleBuild", "number": 149},
            {"_class": "hudson.model.FreeStyleBuild", "number": 148},
        ])
    );
    let beyond = sim
        .get("/job/deploy/job/api/api/json?tree=builds[number]{100,200}")
        .await;
    assert_eq!(beyond["builds"], json!([]), "builds stops at 100");
    let (status, _, _) = sim
        .get_with(
            "/job/deploy/job/api/api/json?tree=builds[number",
            Some((USER, TOKEN)),
        )
        .await;
    assert_eq!(status, 400);
    // A build discarder leaves gaps.
    sim.handle
        .with_state_mut(|state| state.job_mut("deploy/api").unwrap().discard_all_but(10));
    let kept = sim
        .get("/job/deploy/job/api/api/json?tree=allBuilds[number]")
        .await;
    assert_eq!(kept["allBuilds"].as_array().unwrap().len(), 10);
    let (status, _, _) = sim
        .get_with("/job/deploy/job/api/3/api/json", Some((USER, TOKEN)))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn folders_multibranch_projects_permalinks_and_authentication() {
    let sim = Sim::start(CicdOptions {
        context_path: "/jenkins".into(),
        ..CicdOptions::default()
    })
    .await;
    assert!(sim.handle.base_url().ends_with("/jenkins"));
    let project = sim.get("/job/apps/job/web/api/json").await;
    assert_eq!(
        project["_class"],
        "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
    );
    let branch = &project["jobs"][0];
    assert_eq!(branch["name"], "release%2F1.x");
    assert!(branch["url"]
        .as_str()
        .unwrap()
        .ends_with("/job/web/job/release%252F1.x/"));
    let segment = url_segment("release%2F1.x");
    let job = sim
        .get(&format!("/job/apps/job/web/job/{segment}/api/json"))
        .await;
    assert_eq!(job["displayName"], "release/1.x");
    assert_eq!(job["fullName"], "apps/web/release%2F1.x");
    assert_eq!(
        job["_class"],
        "org.jenkinsci.plugins.workflow.job.WorkflowJob"
    );
    assert_eq!(job["lastFailedBuild"], Value::Null, "no such build: null");
    let (status, _, _) = sim
        .get_with(
            &format!("/job/apps/job/web/job/{segment}/lastFailedBuild/api/json"),
            Some((USER, TOKEN)),
        )
        .await;
    assert_eq!(status, 404, "a permalink without a build");
    let folder = sim.get("/job/deploy/api/json").await;
    assert_eq!(
        folder["_class"],
        "com.cloudbees.hudson.plugins.folder.Folder"
    );
    assert_eq!(folder["jobs"][0]["name"], "api");
    for (auth, status, says) in [
        (None, 403, "Authentication required"),
        (
            Some((USER, "wrong")),
            401,
            "Invalid password/token for user: dora",
        ),
    ] {
        let (got, body, headers) = sim.get_with("/job/deploy/job/api/api/json", auth).await;
        assert_eq!(got, status, "{body}");
        assert!(body.contains(says), "{body}");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
    let (status, _, _) = sim
        .get_with("/job/nope/api/json", Some((USER, TOKEN)))
        .await;
    assert_eq!(status, 404);
    let counts = sim.handle.request_counts();
    assert!(counts.route_status("GET /job/{path}/api/json", 404) >= 1);
    assert_eq!(
        counts.route_status("GET /job/{path}/{build}/api/json", 404),
        1
    );
}

#[tokio::test]
async fn github_deployments_become_builds_with_noise_between() {
    let org = Org::generate(&OrgSpec::small(33));
    let repo = org
        .repos
        .iter()
        .position(|r| matches!(r.source, DeploySource::Deployments))
        .unwrap();
    let builds = builds_from_github(&org, repo, PRODUCTION);
    let numbers: Vec<u32> = builds.iter().map(|b| b.number).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1));
    let deployments = org.repos[repo]
        .deployments
        .iter()
        .filter(|d| &*d.environment == PRODUCTION)
        .count();
    let real = builds.iter().filter(|b| !b.checkouts.is_empty()).count();
    assert_eq!(real, deployments);
    assert!(builds
        .iter()
        .any(|b| b.result == Some(BuildResult::Aborted)));
    for build in builds
        .iter()
        .filter(|b| b.result == Some(BuildResult::Success))
    {
        assert_eq!(build.checkouts[0].remote_url, LIBRARY_REMOTE);
        assert!(build.checkouts[1]
            .remote_url
            .ends_with(&format!("{}.git", org.full_name(repo))));
        let finished = Timestamp((build.timestamp_ms + build.duration_ms) / 1000);
        assert!(org.repos[repo].deployments.iter().any(|d| matches!(
            d.outcome(),
            dora_collector::domain::DeploymentOutcome::Succeeded { at } if at == finished
        )));
    }
}

//! The simulated Argo CD against Argo CD's own API description: every answer of
//! `GET /api/v1/applications/{name}` and `GET /api/v1/applications` validates
//! against the swagger subset in `tests/fixtures/argocd/` (v3.5.1; see its
//! NOTICE.md), made strict: every object definition closed
//! (`additionalProperties: false`, so the simulator cannot invent a field) and
//! `v1Time` nullable (Go writes a zero `metav1.Time` as `null`). Error answers
//! validate against `runtimeError`. Then the behaviour a collector relies on:
//! history ids, the history limit, the last operation, tokens, unknown
//! applications.

use dora_collector::domain::Timestamp;
use dora_collector::sim::cicd::argocd::{
    events_from_github, ArgoApp, ArgoCdState, ArgoEvent, OperationPhase,
};
use dora_collector::sim::cicd::{CicdHandle, CicdOptions, Credentials};
use dora_collector::sim::{DeploySource, Org, OrgSpec, PRODUCTION};
use serde_json::{json, Value};
use std::sync::OnceLock;

const SWAGGER: &str = "tests/fixtures/argocd/swagger-subset.json";
const TOKEN: &str = "argocd-sim-token-0000";

/// The definitions, closed and with a nullable `v1Time`, as one JSON Schema
/// document whose `$ref`s resolve inside it.
fn strict_definitions() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let text = std::fs::read_to_string(SWAGGER).expect("fixture present");
        let swagger: Value = serde_json::from_str(&text).expect("fixture is JSON");
        let mut definitions = swagger["definitions"].clone();
        for (_, definition) in definitions.as_object_mut().unwrap() {
            let object = definition.as_object_mut().unwrap();
            if object.get("type") == Some(&json!("object")) && object.contains_key("properties") {
                object.insert("additionalProperties".into(), json!(false));
            }
        }
        definitions["v1Time"] = json!({"type": ["string", "null"], "format": "date-time"});
        json!({"definitions": definitions})
    })
}

fn errors(definition: &str, instance: &Value) -> Vec<String> {
    let mut schema = strict_definitions().clone();
    schema["$ref"] = json!(format!("#/definitions/{definition}"));
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles");
    validator
        .iter_errors(instance)
        .take(10)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn validate(definition: &str, instance: &Value) {
    let errors = errors(definition, instance);
    assert!(
        errors.is_empty(),
        "not a {definition}:\n{}\n{instance:#}",
        errors.join("\n")
    );
}

fn app_with_history() -> ArgoApp {
    let mut app = ArgoApp::new(
        "api-prod",
        "https://github.com/acme/api.git",
        Timestamp(1_000),
    );
    for n in 0..4i64 {
        let at = Timestamp(2_000 + n * 100);
        app.sync_succeeded(
            &format!("{:040x}", n + 1),
            at,
            Timestamp(at.0 + 30),
            n % 2 == 0,
        );
    }
    // A Helm chart version, then a failed sync.
    app.sync_succeeded("1.4.2", Timestamp(3_000), Timestamp(3_020), false);
    app.sync_failed(
        &format!("{:040x}", 9),
        Timestamp(3_100),
        Timestamp(3_130),
        OperationPhase::Failed,
    );
    app
}

async fn serve(state: ArgoCdState) -> CicdHandle<ArgoCdState> {
    CicdHandle::start(
        state,
        Credentials::Bearer(TOKEN.into()),
        CicdOptions::default(),
    )
    .await
    .unwrap()
}

async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn applications_validate_against_argo_cds_swagger_subset() {
    let mut other = ArgoApp::new("web", "https://github.com/acme/web.git", Timestamp(5));
    other.namespace = "team-web".into();
    other.revision_history_limit = Some(3);
    other.start_sync(&"a".repeat(40), Timestamp(6));
    let fresh = ArgoApp::new("fresh", "https://github.com/acme/fresh.git", Timestamp(7));
    let sim = serve(ArgoCdState {
        applications: vec![app_with_history(), other, fresh],
    })
    .await;
    let base = sim.base_url();
    for path in [
        "/api/v1/applications/api-prod",
        "/api/v1/applications/web?appNamespace=team-web",
        "/api/v1/applications/fresh",
    ] {
        let (status, body) = get(base, path, Some(TOKEN)).await;
        assert_eq!(status, 200, "{path}: {body}");
        validate("v1alpha1Application", &body);
    }
    // The check is strict: an invented field, a wrong type, fail it.
    let (_, mut body) = get(base, "/api/v1/applications/api-prod", Some(TOKEN)).await;
    body["status"]["history"][0]["deployedBy"] = json!("x");
    assert!(!errors("v1alpha1Application", &body).is_empty());
    let (_, mut body) = get(base, "/api/v1/applications/api-prod", Some(TOKEN)).await;
    body["status"]["history"][0]["id"] = json!("0");
    assert!(!errors("v1alpha1Application", &body).is_empty());
    let (status, list) = get(base, "/api/v1/applications", Some(TOKEN)).await;
    assert_eq!(status, 200);
    validate("v1alpha1ApplicationList", &list);
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let (_, one) = get(base, "/api/v1/applications?name=fresh", Some(TOKEN)).await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    // Errors are runtimeErrors, with gRPC codes.
    for (path, token, status, code) in [
        ("/api/v1/applications/api-prod", None, 401, 16),
        ("/api/v1/applications/api-prod", Some("wrong"), 401, 16),
        ("/api/v1/applications/nope", Some(TOKEN), 403, 7),
        (
            "/api/v1/applications/nope?project=default",
            Some(TOKEN),
            404,
            5,
        ),
        ("/api/v1/applications/web", Some(TOKEN), 403, 7),
    ] {
        let (got, body) = get(base, path, token).await;
        assert_eq!(
            (got, &body["code"]),
            (status, &json!(code)),
            "{path}: {body}"
        );
        validate("runtimeError", &body);
    }
}

#[tokio::test]
async fn the_history_is_what_a_collector_reads() {
    let sim = serve(ArgoCdState {
        applications: vec![app_with_history()],
    })
    .await;
    let (_, app) = get(sim.base_url(), "/api/v1/applications/api-prod", Some(TOKEN)).await;
    let history = app["status"]["history"].as_array().unwrap();
    let ids: Vec<i64> = history.iter().map(|h| h["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4], "ids grow by one from 0");
    assert_eq!(history[0]["revision"], format!("{:040x}", 1));
    assert_eq!(history[0]["deployedAt"], "1970-01-01T00:33:50Z");
    assert_eq!(history[0]["deployStartedAt"], "1970-01-01T00:33:20Z");
    assert_eq!(history[4]["revision"], "1.4.2");
    assert!(history[4]["source"]["chart"].is_string(), "a Helm chart");
    let operation = &app["status"]["operationState"];
    assert_eq!(operation["phase"], "Failed");
    assert_eq!(operation["syncResult"]["revision"], format!("{:040x}", 9));
    assert_eq!(
        operation["operation"]["sync"]["revision"],
        format!("{:040x}", 9)
    );
    assert_eq!(operation["finishedAt"], "1970-01-01T00:52:10Z");
    assert!(app["metadata"]["uid"].as_str().unwrap().len() == 36);

    // Ten entries at most by default: the eleventh sync drops the oldest.
    sim.with_state_mut(|state| {
        let app = state.app_mut("api-prod", None).unwrap();
        for n in 0..6 {
            app.sync_succeeded("2.0.0", Timestamp(4_000 + n), Timestamp(4_001 + n), true);
        }
    });
    let (_, app) = get(sim.base_url(), "/api/v1/applications/api-prod", Some(TOKEN)).await;
    let ids: Vec<i64> = app["status"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>());
    assert_eq!(app["status"]["operationState"]["phase"], "Succeeded");
    sim.with_state(|state| assert_eq!(state.app("api-prod", None).unwrap().dropped, 1));
    let counts = sim.request_counts();
    assert_eq!(counts.route("GET /api/v1/applications/{name}"), 2);
}

#[tokio::test]
async fn a_github_deployment_history_replays_as_syncs() {
    let org = Org::generate(&OrgSpec::small(31));
    let repo = org
        .repos
        .iter()
        .position(|r| matches!(r.source, DeploySource::Deployments))
        .unwrap();
    let events = events_from_github(&org, repo, PRODUCTION);
    let successes = org.repos[repo]
        .deployments
        .iter()
        .filter(|d| &*d.environment == PRODUCTION)
        .filter(|d| {
            matches!(
                d.outcome(),
                dora_collector::domain::DeploymentOutcome::Succeeded { .. }
            )
        })
        .count();
    let synced = events
        .iter()
        .filter(|e| matches!(e, ArgoEvent::Succeeded { .. }))
        .count();
    assert_eq!(synced, successes);
    assert!(events.windows(2).all(|w| w[0].at() <= w[1].at()));
    let mut app = ArgoApp::new("api", "https://github.com/acme/api.git", Timestamp(0));
    app.revision_history_limit = Some(u32::MAX);
    for event in &events {
        event.apply(&mut app);
    }
    assert_eq!(app.history.len(), successes);
}

/// With faults on, a client that retries each request a few times (and waits
/// out `Retry-After`) gets every answer, as without them; faults are counted
/// apart from the API's answers.
#[tokio::test]
async fn faults_are_resets_5xx_and_429s_that_retries_get_through() {
    use dora_collector::sim::cicd::faults::FaultOptions;
    let sim = serve(ArgoCdState {
        applications: vec![app_with_history()],
    })
    .await;
    let (_, clean) = get(sim.base_url(), "/api/v1/applications/api-prod", Some(TOKEN)).await;
    sim.set_faults(FaultOptions {
        retry_after: std::time::Duration::ZERO,
        ..FaultOptions::every_kind(7, 0.12)
    })
    .unwrap();
    sim.reset_counts();
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/applications/api-prod", sim.base_url());
    let (mut statuses, mut resets) = (std::collections::BTreeMap::new(), 0);
    for _ in 0..40 {
        let mut got = None;
        for _ in 0..4 {
            match client.get(&url).bearer_auth(TOKEN).send().await {
                Err(_) => resets += 1,
                Ok(response) if response.status() == 200 => {
                    got = Some(response.json::<Value>().await.unwrap());
                    break;
                }
                Ok(response) => *statuses.entry(response.status().as_u16()).or_insert(0) += 1,
            }
        }
        assert_eq!(got.as_ref(), Some(&clean), "every answer gets through");
    }
    let counts = sim.fault_counts();
    assert!(counts.faults() > 5, "{counts:?}");
    assert_eq!(counts.reset, resets);
    assert!(
        statuses.keys().all(|s| [429, 500, 502, 503].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(sim.request_counts().total, 40, "faults are not API answers");
}

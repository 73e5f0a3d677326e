//! The simulated PagerDuty: its answers have the shapes of PagerDuty's REST API
//! v2 reference (checked field by field here, from the reading recorded in
//! `crates/dora-sim/fixtures/pagerduty/NOTICE`), its filters, pagination, keys,
//! rate limit and errors behave as documented, and its faults are seeded; its
//! connection resets are TCP resets before any answer.

use dora_collector::domain::Timestamp;
use dora_collector::sim::pagerduty::{
    PdAccount, PdChaos, PdHandle, PdLogKind, PdOptions, PdServer, PdService, PdServiceSpec, PdSpec,
    PdUrgency, PD_ACCEPT, PD_SIM_TOKEN,
};
use serde_json::Value;

const NOW: Timestamp = Timestamp(1_736_942_400);
const DAY: i64 = 86_400;

fn service(id: &str) -> PdService {
    PdService {
        id: id.to_owned(),
        name: format!("{id} name"),
    }
}

/// Two services; PAPI001 has an incident resolved, re-triggered and open, one
/// resolved with a root-cause note, and one of low urgency; PWEB001 has one.
fn account() -> PdAccount {
    let mut account = PdAccount::new(vec![service("PAPI001"), service("PWEB001")], NOW);
    let at = |days: i64, hours: i64| Timestamp(NOW.0 - days * DAY + hours * 3600);
    let a = account
        .trigger(
            "PAPI001",
            at(10, 0),
            "API down",
            PdUrgency::High,
            Some("boom".into()),
        )
        .unwrap();
    account.log(&a, PdLogKind::Resolve, at(10, 1)).unwrap();
    account.log(&a, PdLogKind::Trigger, at(10, 2)).unwrap();
    let b = account
        .trigger("PAPI001", at(5, 0), "API slow", PdUrgency::High, None)
        .unwrap();
    account.log(&b, PdLogKind::Acknowledge, at(5, 1)).unwrap();
    account
        .add_note(&b, at(5, 2), "Found it.\nroot cause: abcdef1")
        .unwrap();
    account.log(&b, PdLogKind::Resolve, at(5, 3)).unwrap();
    account
        .trigger("PAPI001", at(2, 0), "API noisy", PdUrgency::Low, None)
        .unwrap();
    account
        .trigger("PWEB001", at(1, 0), "Web down", PdUrgency::High, None)
        .unwrap();
    account
}

async fn get(
    handle: &PdHandle,
    path: &str,
    key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .get(format!("{}{path}", handle.base_url()))
        .header(reqwest::header::ACCEPT, PD_ACCEPT);
    if let Some(key) = key {
        request = request.header(reqwest::header::AUTHORIZATION, format!("Token token={key}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

fn is_time(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
}

fn check_reference(value: &Value, kind: &str) {
    for field in ["id", "type", "summary", "self", "html_url"] {
        assert!(value[field].is_string(), "{kind}.{field}: {value}");
    }
    assert_eq!(value["type"], kind, "{value}");
}

/// Pagination (offset, limit, more, total) as the reference's `Pagination`.
fn check_pagination(body: &Value, total: bool) {
    assert!(body["offset"].is_u64(), "{body}");
    assert!(body["limit"].is_u64(), "{body}");
    assert!(body["more"].is_boolean(), "{body}");
    assert_eq!(body["total"].is_u64(), total, "{body}");
    if !total {
        assert!(body["total"].is_null(), "{body}");
    }
}

fn check_incident(incident: &Value) {
    for field in [
        "id",
        "summary",
        "self",
        "html_url",
        "title",
        "incident_key",
        "assigned_via",
    ] {
        assert!(incident[field].is_string(), "incident.{field}: {incident}");
    }
    assert_eq!(incident["type"], "incident");
    assert!(incident["incident_number"].is_u64());
    assert!(is_time(&incident["created_at"]) && is_time(&incident["updated_at"]));
    assert!(is_time(&incident["last_status_change_at"]));
    let status = incident["status"].as_str().unwrap();
    assert!(["triggered", "acknowledged", "resolved"].contains(&status));
    assert_eq!(
        incident["resolved_at"].is_null(),
        status != "resolved",
        "{incident}"
    );
    assert!(["high", "low"].contains(&incident["urgency"].as_str().unwrap()));
    check_reference(&incident["service"], "service_reference");
    check_reference(
        &incident["first_trigger_log_entry"],
        "trigger_log_entry_reference",
    );
    check_reference(
        &incident["escalation_policy"],
        "escalation_policy_reference",
    );
    for list in [
        "assignments",
        "acknowledgements",
        "teams",
        "pending_actions",
    ] {
        assert!(incident[list].is_array(), "incident.{list}");
    }
    assert!(incident["alert_counts"]["all"].is_u64());
}

#[tokio::test]
async fn answers_have_pagerdutys_shapes() {
    let handle = PdServer::start(account(), PdOptions::default())
        .await
        .unwrap();
    let key = Some(PD_SIM_TOKEN);

    let (status, headers, body) = get(&handle, "/incidents?date_range=all&total=true", key).await;
    assert_eq!(status, 200);
    for name in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(headers.contains_key(name), "{name}");
    }
    check_pagination(&body, true);
    let incidents = body["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 4);
    incidents.iter().for_each(check_incident);
    assert!(incidents.iter().all(|i| i.get("body").is_none()));
    // The re-triggered incident is open again.
    assert_eq!(incidents[0]["status"], "triggered");
    assert_eq!(incidents[1]["status"], "resolved");
    let id = incidents[1]["id"].as_str().unwrap().to_owned();

    let (status, _, body) = get(&handle, &format!("/incidents/{id}?include[]=body"), key).await;
    assert_eq!(status, 200);
    check_incident(&body["incident"]);
    assert_eq!(body["incident"]["body"]["type"], "incident_body");
    assert!(body["incident"]["body"]["details"].is_string());

    let (status, _, body) = get(&handle, &format!("/incidents/{id}/log_entries"), key).await;
    assert_eq!(status, 200);
    check_pagination(&body, false);
    let entries = body["log_entries"].as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(
        kinds,
        [
            "resolve_log_entry",
            "annotate_log_entry",
            "acknowledge_log_entry",
            "trigger_log_entry"
        ]
    );
    for entry in entries {
        for field in ["id", "type", "summary", "self", "html_url"] {
            assert!(entry[field].is_string(), "log_entry.{field}");
        }
        assert!(is_time(&entry["created_at"]));
        check_reference(&entry["incident"], "incident_reference");
        check_reference(&entry["service"], "service_reference");
        assert!(entry["channel"]["type"].is_string());
    }
    assert_eq!(
        entries[0]["created_at"],
        body_of(&handle, "/incidents?date_range=all", key).await["incidents"][1]["resolved_at"]
    );

    let (status, _, body) = get(&handle, &format!("/incidents/{id}/notes"), key).await;
    assert_eq!(status, 200);
    let notes = body["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert!(notes[0]["content"]
        .as_str()
        .unwrap()
        .contains("root cause: abcdef1"));
    assert!(is_time(&notes[0]["created_at"]));
    assert!(notes[0]["channel"]["summary"].is_string());
    assert_eq!(notes[0]["user"]["type"], "user_reference");

    let (status, _, body) = get(&handle, "/services/PAPI001", key).await;
    assert_eq!(status, 200);
    assert_eq!(body["service"]["type"], "service");
    assert_eq!(body["service"]["id"], "PAPI001");
    assert!(body["service"]["name"].is_string());
    assert_eq!(body["service"]["status"], "active");

    // Errors: PagerDuty's body, with the documented codes.
    for (path, key, status, code) in [
        ("/services/PNOPE00", Some(PD_SIM_TOKEN), 404, 2100),
        (
            "/incidents/QNOPE/log_entries",
            Some(PD_SIM_TOKEN),
            404,
            2100,
        ),
        ("/incidents", Some("wrong"), 401, 2006),
        ("/incidents", None, 401, 2006),
        (
            "/incidents?since=2024-01-01T00:00:00Z&until=2024-12-01T00:00:00Z",
            Some(PD_SIM_TOKEN),
            400,
            2005,
        ),
        ("/incidents?since=yesterday", Some(PD_SIM_TOKEN), 400, 2004),
        (
            "/incidents?offset=9950&limit=100",
            Some(PD_SIM_TOKEN),
            400,
            2001,
        ),
        ("/incidents?statuses[]=open", Some(PD_SIM_TOKEN), 400, 2001),
    ] {
        let (answered, _, body) = get(&handle, path, key).await;
        assert_eq!(answered, status, "{path}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(body["error"]["message"].is_string(), "{path}");
    }
    assert_eq!(handle.unversioned_requests(), 0);
    handle.shutdown().await.unwrap();
}

async fn body_of(handle: &PdHandle, path: &str, key: Option<&str>) -> Value {
    get(handle, path, key).await.2
}

#[tokio::test]
async fn filters_and_offset_pagination_select_what_pagerduty_would() {
    let handle = PdServer::start(account(), PdOptions::default())
        .await
        .unwrap();
    let key = Some(PD_SIM_TOKEN);
    let numbers = |body: &Value| -> Vec<u64> {
        body["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["incident_number"].as_u64().unwrap())
            .collect()
    };
    let all = "/incidents?date_range=all";
    let body = body_of(&handle, &format!("{all}&service_ids[]=PAPI001"), key).await;
    assert_eq!(numbers(&body), [1, 2, 3]);
    let body = body_of(
        &handle,
        &format!("{all}&service_ids[]=PWEB001&service_ids[]=PAPI001&urgencies[]=high"),
        key,
    )
    .await;
    assert_eq!(numbers(&body), [1, 2, 4]);
    let body = body_of(
        &handle,
        &format!("{all}&statuses[]=triggered&statuses[]=acknowledged"),
        key,
    )
    .await;
    assert_eq!(numbers(&body), [1, 3, 4]);
    // Without a range: the last month; since inclusive, until exclusive.
    let body = body_of(&handle, "/incidents", key).await;
    assert_eq!(numbers(&body), [1, 2, 3, 4]);
    let since = Timestamp(NOW.0 - 5 * DAY).to_rfc3339();
    let until = Timestamp(NOW.0 - DAY).to_rfc3339();
    let body = body_of(
        &handle,
        &format!("/incidents?since={since}&until={until}"),
        key,
    )
    .await;
    assert_eq!(numbers(&body), [2, 3]);
    // Pages of one until `more` is false.
    let mut seen = Vec::new();
    for offset in 0.. {
        let body = body_of(&handle, &format!("{all}&limit=1&offset={offset}"), key).await;
        seen.extend(numbers(&body));
        assert_eq!(body["limit"], 1);
        assert_eq!(body["offset"], offset);
        if !body["more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(seen, [1, 2, 3, 4]);
    let body = body_of(&handle, &format!("{all}&sort_by=created_at:desc"), key).await;
    assert_eq!(numbers(&body), [4, 3, 2, 1]);
    // A later resolve shows at once.
    handle.with_account_mut(|account| {
        let id = account.incidents[3].id.clone();
        account
            .log(&id, PdLogKind::Resolve, Timestamp(NOW.0 - 60))
            .unwrap();
    });
    let body = body_of(&handle, &format!("{all}&statuses[]=resolved"), key).await;
    assert_eq!(numbers(&body), [2, 4]);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_spent_budget_is_429_with_the_reset_in_seconds() {
    let options = PdOptions {
        rate_limit: 2,
        ..PdOptions::default()
    };
    let handle = PdServer::start(account(), options).await.unwrap();
    let key = Some(PD_SIM_TOKEN);
    for remaining in ["1", "0"] {
        let (status, headers, _) = get(&handle, "/services/PAPI001", key).await;
        assert_eq!(status, 200);
        assert_eq!(headers["ratelimit-remaining"], remaining);
    }
    let (status, headers, body) = get(&handle, "/services/PAPI001", key).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], 2020);
    let reset: u64 = headers["ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&reset));
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn chaos_faults_are_seeded_and_capped() {
    let mut counts = Vec::new();
    for _ in 0..2 {
        let options = PdOptions {
            chaos: PdChaos {
                seed: 7,
                server_error_rate: 0.3,
                too_many_requests_rate: 0.3,
                max_consecutive_faults: 2,
                ..PdChaos::default()
            },
            ..PdOptions::default()
        };
        let handle = PdServer::start(account(), options).await.unwrap();
        let mut answered = 0;
        let mut statuses = Vec::new();
        while answered < 20 {
            let (status, headers, _) = get(&handle, "/services/PAPI001", Some(PD_SIM_TOKEN)).await;
            statuses.push(status);
            if status == 429 {
                assert_eq!(headers["ratelimit-reset"], "1");
            }
            if status == 200 {
                answered += 1;
            }
        }
        // Never more than two faults in a row.
        assert!(
            statuses.windows(3).all(|w| w.contains(&200)),
            "{statuses:?}"
        );
        assert!(handle.faults() > 0);
        assert_eq!(handle.request_counts().total, 20);
        counts.push(statuses);
        handle.shutdown().await.unwrap();
    }
    assert_eq!(counts[0], counts[1]);
}

#[tokio::test]
async fn resets_are_tcp_resets_before_any_answer_and_the_cap_lets_the_request_through() {
    let options = PdOptions {
        chaos: PdChaos {
            seed: 5,
            reset_rate: 1.0,
            max_consecutive_faults: 2,
            ..PdChaos::default()
        },
        ..PdOptions::default()
    };
    let handle = PdServer::start(account(), options).await.unwrap();
    let url = format!("{}/services/PAPI001", handle.base_url());
    let send = || {
        reqwest::Client::new()
            .get(&url)
            .header(reqwest::header::ACCEPT, PD_ACCEPT)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Token token={PD_SIM_TOKEN}"),
            )
            .send()
    };
    for _ in 0..2 {
        let error = send().await.expect_err("the connection is reset");
        assert!(crate::chaos::is_reset(&error), "{error:?}");
    }
    let spared = send().await.expect("the third attempt is answered");
    assert_eq!(spared.status(), 200);
    let body: Value = spared.json().await.unwrap();
    assert_eq!(body["service"]["id"], "PAPI001");
    assert_eq!((handle.resets(), handle.faults()), (2, 2));
    // A reset never reaches the API: only the answered request is counted.
    assert_eq!(handle.request_counts().total, 1);
    handle.shutdown().await.unwrap();
}

#[test]
fn the_generator_is_deterministic_and_writes_what_pagerduty_would() {
    let services: Vec<PdServiceSpec> = (0..3)
        .map(|n| PdServiceSpec {
            id: format!("PSVC{n:03}"),
            name: format!("service {n}"),
            deploy_times: (1..60).map(|d| Timestamp(NOW.0 - d * DAY)).collect(),
            root_causes: vec!["0123456789abcdef0123456789abcdef01234567".into()],
        })
        .collect();
    let spec = PdSpec {
        incident_rate: 0.5,
        retrigger_share: 0.3,
        ..PdSpec::new(3, services, Timestamp(NOW.0 - 90 * DAY), NOW)
    };
    let account = PdAccount::generate(&spec);
    assert_eq!(account, PdAccount::generate(&spec));
    assert!(account.incidents.len() > 30, "{}", account.incidents.len());
    let retriggered = account.incidents.iter().filter(|i| {
        i.log
            .windows(2)
            .any(|w| w[0].kind == PdLogKind::Resolve && w[1].kind == PdLogKind::Trigger)
    });
    assert!(retriggered.count() > 0);
    assert!(account
        .incidents
        .iter()
        .any(|i| i.urgency == PdUrgency::Low));
    assert!(account
        .incidents
        .iter()
        .any(|i| i.resolved_at(NOW).is_none()));
    assert!(account
        .incidents
        .iter()
        .any(|i| i.notes.iter().any(|n| n.content.contains("root cause: "))));
    assert!(account.incidents.iter().any(|i| i
        .body
        .as_deref()
        .is_some_and(|b| b.contains("Root cause: "))));
    // Numbers grow with creation time.
    assert!(account
        .incidents
        .windows(2)
        .all(|w| w[0].created_at <= w[1].created_at && w[0].number < w[1].number));
}

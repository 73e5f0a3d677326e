//! The push API's group commit and the per-repository production environments,
//! on both stores (`on_sqlite::`, `on_postgres::`): each request whole or not at
//! all, numbered per client id, idempotent retries, the one allowed update,
//! incidents of a team; a list of production environments replaced whole.
//! (The same tests as `src/store/sqlite/tests.rs`, through the trait.)

use dora_collector::domain::{Environment, Incident, RepoName, Timestamp};
use dora_collector::store::{PushItem, PushRequest, PushVerdict, SyncBatch};

fn repo() -> RepoName {
    RepoName::parse("acme/api").unwrap()
}

fn pushed(client: &str, id: &str, digest: u8, base: u8, number: u64) -> PushItem {
    PushItem {
        client: client.to_owned(),
        id: id.to_owned(),
        digest: [digest; 32],
        base_digest: [base; 32],
        event: dora_collector::domain::batch::PushedEvent::Incident(Incident {
            source: dora_collector::domain::IncidentSource::Push,
            repository: repo(),
            number,
            created_at: Timestamp(1),
            closed_at: (digest != base).then_some(Timestamp(2)),
            labels: Vec::new(),
            root_cause: None,
        }),
    }
}

fn pushed_for_team(client: &str, id: &str, digest: u8, base: u8) -> PushItem {
    PushItem {
        client: client.to_owned(),
        id: id.to_owned(),
        digest: [digest; 32],
        base_digest: [base; 32],
        event: dora_collector::domain::batch::PushedEvent::TeamIncident(
            dora_collector::domain::ScopedIncident {
                source: dora_collector::domain::IncidentSource::Push,
                scope: dora_collector::domain::IncidentScope::Team(
                    dora_collector::domain::Team::parse("web").unwrap(),
                ),
                number: 0,
                created_at: Timestamp(1),
                closed_at: (digest != base).then_some(Timestamp(2)),
                root_cause: None,
            },
        ),
    }
}

crate::on_both_stores! {
#[test]
fn production_environments_are_replaced_whole_by_a_batch_that_carries_them() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let env = |name: &str| Environment::parse(name).unwrap();
    let mut declare = |environments: Option<Vec<Environment>>| {
        let mut batch = SyncBatch::new(repo());
        batch.production_environments = environments;
        store.apply(&batch).unwrap();
        store
            .read_repository(&repo())
            .unwrap()
            .production_environments
    };
    assert_eq!(
        declare(Some(vec![env("prod-eu"), env("live"), env("live")])),
        Some(vec![env("live"), env("prod-eu")])
    );
    assert_eq!(
        declare(None),
        Some(vec![env("live"), env("prod-eu")]),
        "a batch without a list keeps it"
    );
    assert_eq!(
        declare(Some(vec![env("prod-us")])),
        Some(vec![env("prod-us")])
    );
    assert_eq!(declare(Some(Vec::new())), None, "an empty list clears it");
}

#[test]
fn pushes_are_kept_whole_numbered_per_client_id_and_idempotent() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let request = |items: Vec<PushItem>| PushRequest { items };
    let stored = |inserted, updated, unchanged| PushVerdict::Stored {
        inserted,
        updated,
        unchanged,
    };
    let verdicts = store
        .push(&[
            request(vec![
                pushed("ci", "a", 1, 1, 99),
                pushed("ci", "b", 2, 2, 99),
            ]),
            request(vec![pushed("other", "a", 3, 3, 99)]),
            // A conflict inside the request: the whole request is dropped.
            request(vec![
                pushed("ci", "c", 4, 4, 99),
                pushed("ci", "a", 5, 5, 99),
            ]),
        ])
        .unwrap();
    assert_eq!(
        verdicts,
        [
            stored(2, 0, 0),
            stored(1, 0, 0),
            PushVerdict::Conflict { index: 1 }
        ]
    );
    let numbers: Vec<u64> = store
        .read_repository(&repo())
        .unwrap()
        .incidents
        .iter()
        .map(|i| i.number)
        .collect();
    assert_eq!(numbers, [1, 2, 3], "numbered by the store, `c` not kept");
    // A retry; the one update (resolved); a late retry of the open version;
    // another resolution.
    let verdicts = store
        .push(&[
            request(vec![pushed("ci", "a", 1, 1, 0)]),
            request(vec![pushed("ci", "a", 6, 1, 0)]),
            request(vec![pushed("ci", "a", 1, 1, 0)]),
            request(vec![pushed("ci", "a", 7, 1, 0)]),
        ])
        .unwrap();
    assert_eq!(
        verdicts,
        [
            stored(0, 0, 1),
            stored(0, 1, 0),
            stored(0, 0, 1),
            PushVerdict::Conflict { index: 0 }
        ]
    );
    let incidents = store.read_repository(&repo()).unwrap().incidents;
    assert_eq!(incidents[0].closed_at, Some(Timestamp(2)));
    assert_eq!(store.pushed_repositories().unwrap(), [repo()]);
    assert_eq!(store.counts().unwrap().incidents, 3);
}

#[test]
fn incidents_of_a_team_are_kept_like_those_of_a_repository_and_loaded_for_the_engine() {
    let Some(mut store) = fresh_store() else {
        return;
    };
    let request = |items: Vec<PushItem>| PushRequest { items };
    let stored = |inserted, updated, unchanged| PushVerdict::Stored {
        inserted,
        updated,
        unchanged,
    };
    let verdicts = store
        .push(&[
            request(vec![pushed_for_team("ci", "t", 1, 1)]),
            // A retry, then the resolution, then a late retry of the open version.
            request(vec![pushed_for_team("ci", "t", 1, 1)]),
            request(vec![pushed_for_team("ci", "t", 2, 1)]),
            request(vec![pushed_for_team("ci", "t", 1, 1)]),
            // The same id for a repository's incident: other content.
            request(vec![pushed("ci", "t", 3, 3, 0)]),
        ])
        .unwrap();
    assert_eq!(
        verdicts,
        [
            stored(1, 0, 0),
            stored(0, 0, 1),
            stored(0, 1, 0),
            stored(0, 0, 1),
            PushVerdict::Conflict { index: 0 }
        ]
    );
    let counts = store.counts().unwrap();
    assert_eq!((counts.scoped_incidents, counts.incidents), (1, 0));
    assert!(store.pushed_repositories().unwrap().is_empty());

    // The engine gets it: the team's time to restore has its one sample.
    let events = dora_collector::dora::EventsBuilder::collect(|sink| store.load_events(&[], sink)).unwrap();
    let config = dora_collector::dora::EngineConfig::default();
    let snapshot = dora_collector::dora::compute(&events, &config, Timestamp(10));
    let web = snapshot
        .teams
        .iter()
        .find(|t| t.team.as_ref().is_some_and(|t| t.as_str() == "web"))
        .expect("the team's rollup");
    assert_eq!(web.incident_windows[0].time_to_restore.count, 1);
    assert_eq!(web.incident_windows[0].time_to_restore.sum, 1.0);
}
}

//! What only the PostgreSQL store has: its errors (an unreachable server, refused
//! credentials, TLS required of a server without it, a database at a newer
//! schema version or of another application), each without the URL's password;
//! a failure injected midway through a batch; two stores on one database; a
//! reopened database. The trait's contract runs on it in `sqlite.rs`.

use crate::postgres_common::{TestDatabase, PASSWORD};
use dora_collector::domain::{CommitSha, RepoName, Timestamp};
use dora_collector::store::{
    CommitRecord, Cursor, CursorKey, PostgresStore, PostgresUrl, Store, StoreCounts, StoreError,
    SyncBatch, POSTGRES_SCHEMA_VERSION,
};

fn api() -> RepoName {
    RepoName::parse("acme/api").unwrap()
}

fn batch(first: u8, count: u8, cursor_at: i64) -> SyncBatch {
    let mut batch = SyncBatch::new(api());
    for n in first..first + count {
        batch.commits.push(CommitRecord::new(
            CommitSha::from_bytes([n; 20]),
            vec![],
            Timestamp(i64::from(n)),
            "Add a thing",
        ));
    }
    batch.cursors.push((
        CursorKey::new(api(), "deployments"),
        Cursor {
            since: Some(Timestamp(cursor_at)),
            opaque: None,
            updated_at: Timestamp(cursor_at),
        },
    ));
    batch
}

/// `database`'s URL changed by `change`.
fn changed(database: &TestDatabase, change: impl FnOnce(&mut url::Url)) -> PostgresUrl {
    let mut url = url::Url::parse(database.url().expose()).unwrap();
    change(&mut url);
    PostgresUrl::parse(url.as_str()).unwrap()
}

fn assert_secret_free(error: &StoreError) {
    let text = format!("{error} {error:?}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[test]
fn a_new_database_gets_the_schema_and_a_second_open_keeps_it() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    let mut store = database.open();
    store.apply(&batch(1, 3, 10)).unwrap();
    drop(store);
    let store = database.open();
    assert_eq!(store.counts().unwrap().commits, 3);
    let version: i64 = database
        .client()
        .query_one("SELECT version FROM dora_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, POSTGRES_SCHEMA_VERSION);
}

#[test]
fn a_database_at_a_newer_schema_version_is_refused_and_left_alone() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    drop(database.open());
    let future = POSTGRES_SCHEMA_VERSION + 1;
    database
        .client()
        .execute("UPDATE dora_schema SET version = $1", &[&future])
        .unwrap();
    let error = PostgresStore::open(database.url()).unwrap_err();
    assert!(
        matches!(error, StoreError::FutureSchema { found, .. } if found == future),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains(&format!("schema version {future}")),
        "{error}"
    );
    assert_secret_free(&error);
    let version: i64 = database
        .client()
        .query_one("SELECT version FROM dora_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, future);
}

#[test]
fn a_database_of_another_application_is_refused() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    database
        .client()
        .batch_execute("CREATE TABLE notes (text text)")
        .unwrap();
    let error = PostgresStore::open(database.url()).unwrap_err();
    assert!(
        matches!(error, StoreError::ForeignDatabase { .. }),
        "{error:?}"
    );
    assert_secret_free(&error);
}

#[test]
fn wrong_credentials_are_told_apart_and_never_shown() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    let wrong = "not-the-Password-91";
    let url = changed(&database, |url| url.set_password(Some(wrong)).unwrap());
    let error = PostgresStore::open(&url).unwrap_err();
    assert!(matches!(error, StoreError::Credentials { .. }), "{error:?}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains(wrong), "{text}");
    assert!(text.contains("REDACTED"), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");

    let url = changed(&database, |url| url.set_password(None).unwrap());
    let error = PostgresStore::open(&url).unwrap_err();
    assert!(matches!(error, StoreError::Credentials { .. }), "{error:?}");
}

#[test]
fn an_unreachable_server_is_told_apart() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = changed(&database, |url| url.set_port(Some(port)).unwrap());
    let error = PostgresStore::open(&url).unwrap_err();
    assert!(matches!(error, StoreError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().contains(&port.to_string()), "{error}");
    assert_secret_free(&error);
}

#[test]
fn an_unknown_database_and_tls_required_of_a_plain_server_are_errors() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    let url = changed(&database, |url| url.set_path("no_such_database"));
    let error = PostgresStore::open(&url).unwrap_err();
    assert!(error.to_string().contains("no_such_database"), "{error}");
    assert_secret_free(&error);

    // The test server has no TLS: `prefer` (the default) connects in plain text,
    // `require` refuses to.
    let url = changed(&database, |url| {
        url.query_pairs_mut().append_pair("sslmode", "require");
    });
    let error = PostgresStore::open(&url).unwrap_err();
    assert!(error.to_string().contains("TLS"), "{error}");
    assert_secret_free(&error);
    let url = changed(&database, |url| {
        url.query_pairs_mut().append_pair("sslmode", "prefer");
    });
    assert_eq!(
        PostgresStore::open(&url).unwrap().counts().unwrap(),
        StoreCounts::default()
    );
}

#[test]
fn a_failure_at_the_cursor_step_rolls_back_the_data() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    let mut store = database.open();
    store.apply(&batch(1, 3, 10)).unwrap();
    let before = store.read_repository(&api()).unwrap();
    // The cursor is the last thing a batch writes: fail exactly there.
    database
        .client()
        .batch_execute(
            "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER fail_cursor BEFORE UPDATE ON cursors \
             FOR EACH ROW EXECUTE FUNCTION fail();",
        )
        .unwrap();
    let error = store.apply(&batch(4, 3, 20)).unwrap_err();
    assert!(error.to_string().contains("injected failure"), "{error}");
    assert!(error.to_string().contains("advancing a cursor"), "{error}");
    assert_eq!(store.read_repository(&api()).unwrap(), before);
    database
        .client()
        .batch_execute("DROP TRIGGER fail_cursor ON cursors")
        .unwrap();
    let stats = store.apply(&batch(4, 3, 20)).unwrap();
    assert_eq!(stats.commits.inserted, 3);
    assert_eq!(stats.cursors.updated, 1);
}

#[test]
fn two_stores_on_one_database_see_each_others_committed_batches() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    let mut daemon = database.open();
    let mut report = database.open();
    daemon.apply(&batch(1, 5, 10)).unwrap();
    assert_eq!(report.counts().unwrap().commits, 5);
    let mut web = batch(1, 2, 10);
    web.repository = RepoName::parse("acme/web").unwrap();
    for (key, _) in &mut web.cursors {
        key.repository = web.repository.clone();
    }
    report.apply(&web).unwrap();
    assert_eq!(daemon.repositories().unwrap().len(), 2);
}

#[test]
fn the_store_is_dropped_safely_inside_a_runtime_and_used_from_its_blocking_pool() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let url = database.url().clone();
    runtime.block_on(async move {
        let store = tokio::task::spawn_blocking(move || PostgresStore::open(&url).unwrap())
            .await
            .unwrap();
        let shared = dora_collector::store::SharedStore::new(store);
        let stats = shared
            .call(|store| store.apply(&batch(1, 2, 5)))
            .await
            .unwrap();
        assert_eq!(stats.commits.inserted, 2);
        // The last handle goes on an async worker thread.
        drop(shared);
    });
}

/// Leases of replicas sharing the database: the repositories are divided in
/// fair shares among the live replicas, a busy lease is kept beyond the share,
/// one replica holds the metrics lease, an expired replica's leases are taken
/// over, and a released one's at once. (SQLite, one process: every lease its own.)
#[test]
fn replicas_divide_the_repositories_and_take_over_expired_leases() {
    use dora_collector::store::{LeaseGrant, SqliteStore};
    use std::time::Duration;
    let Some(database) = TestDatabase::new() else {
        return;
    };
    let units: Vec<String> = (0..5).map(|n| format!("repository/acme/r{n}")).collect();
    let long = Duration::from_secs(60);
    let renew = |store: &mut dyn Store, holder: &str, busy: &[String], ttl| -> LeaseGrant {
        store
            .acquire_leases(&dora_collector::store::LeaseRequest {
                holder,
                units: &units,
                busy,
                ttl,
            })
            .unwrap()
            .expect("a shared store")
    };
    let mut a = database.open();
    let mut b = database.open();

    // Alone, A takes every repository and the metrics lease.
    let first = renew(&mut a, "a", &[], long);
    assert_eq!(
        (first.held.len(), first.metrics, first.replicas),
        (5, true, 1)
    );
    // B arrives: nothing is free yet, but it is counted.
    let arrived = renew(&mut b, "b", &[], long);
    assert_eq!(
        (arrived.held.len(), arrived.metrics, arrived.replicas),
        (0, false, 2)
    );
    // A keeps its share (3 of 5), B claims the rest.
    let a_share = renew(&mut a, "a", &[], long);
    assert_eq!(a_share.held, units[..3].to_vec());
    let b_share = renew(&mut b, "b", &[], long);
    assert_eq!(b_share.held, units[3..].to_vec());
    assert!(a_share.metrics && !b_share.metrics);

    // B's renewals stop (a killed replica): its short lease expires and A
    // takes over B's repositories, the only live replica.
    let short = Duration::from_millis(200);
    renew(&mut b, "b", &[], short);
    let listed = a.leases().unwrap();
    assert_eq!(
        listed.iter().filter(|l| l.holder == "b").count(),
        3,
        "B's heartbeat and two repositories: {listed:?}"
    );
    std::thread::sleep(Duration::from_millis(400));
    let took_over = renew(&mut a, "a", &[], long);
    assert_eq!((took_over.held, took_over.replicas), (units.clone(), 1));

    // A releases everything (a clean shutdown): B takes all, metrics too.
    a.release_leases("a").unwrap();
    let after = renew(&mut b, "b", &[], long);
    assert_eq!(
        (after.held, after.metrics, after.replicas),
        (units.clone(), true, 1)
    );

    // A returns while B syncs r0 and r4: B keeps those beyond its share (3),
    // and the first by name up to it; A claims what B released.
    assert!(renew(&mut a, "a", &[], long).held.is_empty());
    let busy = [units[0].clone(), units[4].clone()];
    let kept = renew(&mut b, "b", &busy, long);
    assert_eq!(
        kept.held,
        vec![units[0].clone(), units[1].clone(), units[4].clone()]
    );
    let claimed = renew(&mut a, "a", &[], long);
    assert_eq!(claimed.held, vec![units[2].clone(), units[3].clone()]);

    // One process on a SQLite file: no leases to share.
    let mut sqlite = SqliteStore::open_in_memory().unwrap();
    let request = dora_collector::store::LeaseRequest {
        holder: "a",
        units: &units,
        busy: &[],
        ttl: long,
    };
    assert_eq!(sqlite.acquire_leases(&request).unwrap(), None);
}

#[test]
fn a_version_3_database_gets_each_repositorys_review_horizon_from_its_cursors() {
    let Some(database) = TestDatabase::new() else {
        return;
    };
    let (batches, expected) = crate::sqlite::cursors_before_review_horizons();
    {
        let mut store = database.open();
        for batch in &batches {
            store.apply(batch).unwrap();
        }
    }
    // Back to version 3: the table did not exist.
    assert_eq!(POSTGRES_SCHEMA_VERSION, 4);
    database
        .client()
        .batch_execute("DROP TABLE review_horizons; UPDATE dora_schema SET version = 3;")
        .unwrap();
    let store = database.open();
    assert_eq!(crate::sqlite::review_horizons(&store, &expected), expected);
}

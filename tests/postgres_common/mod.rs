//! A throw-away PostgreSQL for the tests that run on both stores.
//!
//! `DORA_TEST_POSTGRES_URL` names a server to use (a superuser's URL: each test
//! gets a database of its own, dropped at its end). Otherwise the first test that
//! asks starts a cluster of its own: `initdb` into a temporary directory (as the
//! user `nobody` when the tests run as root, since PostgreSQL refuses root), the
//! server on 127.0.0.1 at a free port with password authentication, stopped and
//! removed when the test process ends (a watcher holds the read end of a pipe
//! whose write end this process keeps open until it exits, even by a panic).
//!
//! Without PostgreSQL's programs the tests that need it are skipped, unless
//! `CI=true`: there they fail, so that a broken install cannot hide behind a skip.

#![allow(dead_code)]

use dora_collector::store::{PostgresStore, PostgresUrl, SqliteStore, Store};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// The superuser of a cluster started here, and its password (a test secret:
/// the canary checks look for it in outputs).
pub const SUPERUSER: &str = "dora_test";
pub const PASSWORD: &str = "pg-test-Secret-4f9c2a";

struct Cluster {
    /// A superuser's URL of the `postgres` database.
    admin: String,
    /// The watcher that stops the server when this process ends.
    _watcher: Option<Mutex<Child>>,
}

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The directory with `initdb` and `pg_ctl`: on the `PATH`, else Debian's.
fn binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path.into_iter().find(|dir| has_both(dir)) {
        return Some(dir);
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|dir| has_both(dir))
        .collect();
    debian.sort();
    debian.pop()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program args` as the cluster's owner: `nobody` under root, else this user.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "nobody", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn start_cluster() -> Option<Cluster> {
    if let Ok(url) = std::env::var("DORA_TEST_POSTGRES_URL") {
        return Some(Cluster {
            admin: url,
            _watcher: None,
        });
    }
    let Some(bin) = binaries() else {
        assert!(
            !ci(),
            "CI=true but PostgreSQL's initdb and pg_ctl are missing (.ci/run installs postgresql)"
        );
        eprintln!("skipped: PostgreSQL's initdb and pg_ctl are not installed");
        return None;
    };
    let dir = tempfile::Builder::new()
        .prefix("dora-test-pg-")
        .tempdir()
        .unwrap()
        .keep();
    let data = dir.join("data");
    let password_file = dir.join("password");
    std::fs::write(&password_file, PASSWORD).unwrap();
    if is_root() {
        let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
        let uid: u32 = String::from_utf8_lossy(&nobody.stdout)
            .trim()
            .parse()
            .unwrap();
        for path in [&dir, &password_file] {
            std::os::unix::fs::chown(path, Some(uid), None).unwrap();
        }
    }
    let mut initdb = as_owner(&bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--no-sync",
            "--auth=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", password_file.display()));
    run(initdb, "initdb");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut start = as_owner(&bin.join("pg_ctl"));
    start
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("log"))
        .arg("-w")
        .arg("-o")
        .arg(format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=200",
            dir.display()
        ))
        .arg("start");
    run(start, "pg_ctl start");
    // Stops the server and removes its files once stdin closes (this process ended).
    let script = format!(
        "cat >/dev/null; '{}' -D '{}' -m immediate stop >/dev/null 2>&1; rm -rf '{}'",
        bin.join("pg_ctl").display(),
        data.display(),
        dir.display()
    );
    let mut watcher = as_owner(Path::new("sh"));
    let watcher = watcher
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(Cluster {
        admin: format!("postgres://{SUPERUSER}:{PASSWORD}@127.0.0.1:{port}/postgres"),
        _watcher: Some(Mutex::new(watcher)),
    })
}

fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER.get_or_init(start_cluster).as_ref()
}

/// Runs `sql` as the superuser, on a thread of its own (the synchronous client
/// cannot run inside an async test's runtime).
fn admin(sql: String) {
    let url = cluster().expect("a cluster").admin.clone();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.batch_execute(&sql).unwrap();
    })
    .join()
    .unwrap();
}

/// A database of its own for one test, dropped with it.
pub struct TestDatabase {
    name: String,
    url: PostgresUrl,
}

impl TestDatabase {
    /// A new empty database; `None` (skipped) without PostgreSQL outside CI.
    pub fn new() -> Option<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let cluster = cluster()?;
        let name = format!(
            "dora_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin(format!("CREATE DATABASE {name}"));
        let mut url = url::Url::parse(&cluster.admin).unwrap();
        url.set_path(&name);
        Some(TestDatabase {
            url: PostgresUrl::parse(url.as_str()).unwrap(),
            name,
        })
    }

    /// Its URL (the superuser's, password included).
    pub fn url(&self) -> &PostgresUrl {
        &self.url
    }

    /// A superuser's client of this database for the test's own SQL, on a
    /// blocking-allowed thread only.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(self.url.expose(), postgres::NoTls).unwrap()
    }

    /// Opens a store on it.
    pub fn open(&self) -> PostgresStore {
        PostgresStore::open(&self.url).unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // kept for a look; the cluster goes with the process
        }
        admin(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// One store under test: SQLite in memory, or PostgreSQL on a fresh database.
pub enum TestStore {
    Sqlite(SqliteStore),
    /// The store before its database (dropped in this order).
    Postgres(PostgresStore, TestDatabase),
}

impl TestStore {
    pub fn sqlite() -> Option<Self> {
        Some(TestStore::Sqlite(SqliteStore::open_in_memory().unwrap()))
    }

    pub fn postgres() -> Option<Self> {
        let database = TestDatabase::new()?;
        Some(TestStore::Postgres(database.open(), database))
    }

    /// The successful deployment before `before` (each backend has it outside
    /// the trait).
    pub fn previous_successful_deployment(
        &self,
        repository: &dora_collector::domain::RepoName,
        environment: &dora_collector::domain::Environment,
        before: dora_collector::domain::Timestamp,
    ) -> Result<Option<dora_collector::domain::Deployment>, dora_collector::store::StoreError> {
        match self {
            TestStore::Sqlite(store) => {
                store.previous_successful_deployment(repository, environment, before)
            }
            TestStore::Postgres(store, _) => {
                store.previous_successful_deployment(repository, environment, before)
            }
        }
    }

    /// One stored commit (each backend has it outside the trait).
    pub fn commit(
        &self,
        repository: &dora_collector::domain::RepoName,
        sha: &dora_collector::domain::CommitSha,
    ) -> Result<Option<dora_collector::store::CommitRecord>, dora_collector::store::StoreError>
    {
        match self {
            TestStore::Sqlite(store) => store.commit(repository, sha),
            TestStore::Postgres(store, _) => store.commit(repository, sha),
        }
    }
}

impl std::ops::Deref for TestStore {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        match self {
            TestStore::Sqlite(store) => store,
            TestStore::Postgres(store, _) => store,
        }
    }
}

impl std::ops::DerefMut for TestStore {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            TestStore::Sqlite(store) => store,
            TestStore::Postgres(store, _) => store,
        }
    }
}

/// Runs the tests given as `#[test] fn name() { ... }` on both stores, as
/// `on_sqlite::name` and `on_postgres::name`; a body opens its store with
/// `let Some(mut store) = fresh_store() else { return };`.
#[macro_export]
macro_rules! on_both_stores {
    ($( $(#[$meta:meta])* fn $name:ident() $body:block )*) => {
        mod on_sqlite {
            #[allow(unused_imports)]
            use super::*;
            fn fresh_store() -> Option<$crate::postgres_common::TestStore> {
                $crate::postgres_common::TestStore::sqlite()
            }
            $( $(#[$meta])* fn $name() $body )*
        }
        mod on_postgres {
            #[allow(unused_imports)]
            use super::*;
            fn fresh_store() -> Option<$crate::postgres_common::TestStore> {
                $crate::postgres_common::TestStore::postgres()
            }
            $( $(#[$meta])* fn $name() $body )*
        }
    };
}

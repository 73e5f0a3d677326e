//! `dora-collector notify` as a pipeline runs it: the real binary against a
//! daemon on 127.0.0.1 whose `acme/api` takes pushed deployments (its commits
//! would come from GitHub, unreachable here, so pushes carry none): stored (exit 0, the same id twice changes
//! nothing), an id from the CI system's variables, a refusal (exit 1), bad
//! arguments (exit 2), a 429 waited out with the same id, and an unreachable
//! collector given up at the deadline (exit 1). The token never shows.

use dora_collector::config::Config;
use dora_collector::daemon::{self, DaemonHandle, ManualClock, RunOptions};
use dora_collector::domain::Timestamp;
use dora_collector::store::{SqliteStore, Store};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");
const NOW: Timestamp = Timestamp(1_700_000_000);
const TOKEN: &str = "notify-token-0123456789abcdef0123456789ab";
const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
/// Environment variables of a run.
type Env<'a> = &'a [(&'a str, &'a str)];

/// The environment of a pipeline holding the token.
static TOKEN_ENV: [(&str, &str); 1] = [("DORA_INGEST_TOKEN", TOKEN)];

async fn start(store: &Path, rate: u32) -> DaemonHandle {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n[ingest]\n\
         requests_per_second = {rate}\n[[ingest.clients]]\nname = \"ci\"\ntoken = \"{TOKEN}\"\n\
         repositories = [\"acme/*\"]\n\
         [github]\napi_url = \"http://127.0.0.1:1\"\ntoken = \"unused\"\n\
         [[github.repositories]]\nname = \"acme/api\"\ndeployments = {{ from = \"push\" }}\n",
        store.display().to_string()
    );
    let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = RunOptions {
        clock: Arc::new(ManualClock::new(NOW)),
        ..RunOptions::default()
    };
    daemon::start(config, listener, options).await.unwrap()
}

/// Runs `notify` with `args`, a clean environment plus `env`.
pub(crate) async fn notify(args: Vec<String>, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BINARY);
    command.arg("notify").args(args).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn deployment_args(url: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "deployment",
        "--url",
        url,
        "--repository",
        "acme/api",
        "--environment",
        "production",
        "--sha",
        SHA,
        "--status",
        "success",
        "--finished-at",
        "2023-11-14T21:00:00Z",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn clean(output: &Output) {
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(TOKEN), "the token was printed: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_stores_once_refuses_clearly_and_exits_by_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let handle = start(&store, 1_000).await;
    let url = format!("http://{}", handle.local_addr());
    let token = [("DORA_INGEST_TOKEN", TOKEN)];

    // Stored, then the same id again: stored once.
    for _ in 0..2 {
        let output = notify(deployment_args(&url, &["--id", "deploy-1"]), &token).await;
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        clean(&output);
    }
    // The id from the CI system's variables (GitHub Actions).
    let github = [
        ("DORA_INGEST_TOKEN", TOKEN),
        ("GITHUB_REPOSITORY", "acme/api"),
        ("GITHUB_RUN_ID", "42"),
        ("GITHUB_RUN_ATTEMPT", "1"),
    ];
    let output = notify(deployment_args(&url, &[]), &github).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("github-acme/api-42-1"));
    let counts = SqliteStore::open(&store).unwrap().counts().unwrap();
    assert_eq!(counts.deployments, 2);

    // An incident, opened then resolved with the same id.
    for resolved in [None, Some("2023-11-14T22:00:00Z")] {
        let mut args: Vec<String> = [
            "incident",
            "--url",
            &url,
            "--repository",
            "acme/api",
            "--id",
            "INC-1",
            "--created-at",
            "2023-11-14T21:30:00Z",
            "--root-cause",
            "6dcb09b",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(resolved) = resolved {
            args.extend(["--resolved-at".to_owned(), resolved.to_owned()]);
        }
        let output = notify(args, &token).await;
        assert_eq!(output.status.code(), Some(0), "{output:?}");
    }

    // Refused: another id reused with other content, a repository outside the
    // patterns, a wrong token: exit 1 naming the status.
    let refusals = [
        (
            deployment_args(
                &url,
                &["--id", "deploy-1", "--started-at", "2023-11-14T20:00:00Z"],
            ),
            TOKEN,
            "409",
        ),
        (
            deployment_args(&url, &["--id", "x"])
                .into_iter()
                .map(|a| {
                    if a == "acme/api" {
                        "other/api".to_owned()
                    } else {
                        a
                    }
                })
                .collect(),
            TOKEN,
            "403",
        ),
        (
            deployment_args(&url, &["--id", "y"]),
            "notify-token-0123456789abcdef0123456789aX",
            "401",
        ),
    ];
    for (args, token, status) in refusals {
        let output = notify(args, &[("DORA_INGEST_TOKEN", token)]).await;
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("HTTP {status}")), "{stderr}");
        clean(&output);
    }

    // Bad arguments: exit 2, nothing sent.
    let bad: Vec<(Vec<String>, Env)> = vec![
        (deployment_args(&url, &[]), &token),
        (deployment_args(&url, &["--id", "z"]), &[]),
        (
            deployment_args(&url, &["--id", "z"])
                .into_iter()
                .map(|a| if a == SHA { "abc".to_owned() } else { a })
                .collect(),
            &token,
        ),
        (deployment_args("ftp://x", &["--id", "z"]), &token),
        (
            vec![
                "incident".to_owned(),
                "--url".to_owned(),
                url.clone(),
                "--id".to_owned(),
                "i".to_owned(),
                "--created-at".to_owned(),
                "2023-11-14T21:30:00Z".to_owned(),
            ],
            &token,
        ),
    ];
    for (args, env) in bad {
        let output = notify(args.clone(), env).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    }
    let counts = SqliteStore::open(&store).unwrap().counts().unwrap();
    assert_eq!((counts.deployments, counts.incidents), (2, 1));
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_waits_out_429_and_gives_up_on_an_unreachable_collector() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let handle = start(&store, 1).await;
    let url = format!("http://{}", handle.local_addr());
    let token = [("DORA_INGEST_TOKEN", TOKEN)];
    // One request a second, three pipelines at once: those answered 429 wait
    // for Retry-After and send the same id again.
    let runs = ["a", "b", "c"]
        .map(|id| tokio::spawn(notify(deployment_args(&url, &["--id", id]), &TOKEN_ENV)));
    let mut retried = 0;
    for run in runs {
        let output = run.await.unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        retried += usize::from(String::from_utf8_lossy(&output.stdout).contains(" attempts"));
    }
    assert!(retried >= 1, "some notify waited out a 429");
    assert_eq!(
        SqliteStore::open(&store)
            .unwrap()
            .counts()
            .unwrap()
            .deployments,
        3
    );
    handle.shutdown().await.unwrap();

    // Nobody listens any more: retried until the deadline, then exit 1.
    let started = Instant::now();
    let output = notify(
        deployment_args(&url, &["--id", "d", "--deadline", "3s"]),
        &token,
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(started.elapsed() >= Duration::from_secs(1), "it retried");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "it gave up at the deadline"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not stored within"), "{stderr}");
}

/// `git -C dir args…` with fixed identities and dates; its trimmed stdout.
fn git(dir: &Path, args: &[&str], date: &str) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_AUTHOR_NAME", "a")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "a")
        .env("GIT_COMMITTER_EMAIL", "a@example.com")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_sends_the_commits_of_a_deployment_from_a_git_clone() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let clone = dir.path().join("clone");
    std::fs::create_dir(&clone).unwrap();
    git(&clone, &["init", "-q"], "2023-11-14T10:00:00Z");
    let mut shas = Vec::new();
    for (n, hour) in [10, 11, 12, 13].iter().enumerate() {
        let date = format!("2023-11-14T{hour}:00:00Z");
        git(
            &clone,
            &["commit", "-q", "--allow-empty", "-m", &format!("c{n}")],
            &date,
        );
        shas.push(git(&clone, &["rev-parse", "HEAD"], &date));
    }
    let handle = start(&store, 1_000).await;
    let url = format!("http://{}", handle.local_addr());
    let clone_arg = clone.display().to_string();
    let deploy = |id: &str, sha: &str| {
        let mut args = deployment_args(&url, &["--id", id, "--commits-from-git", &clone_arg]);
        for arg in args.iter_mut() {
            if arg == "acme/api" {
                *arg = "acme/billing".to_owned();
            } else if arg == SHA {
                *arg = sha.to_owned();
            }
        }
        args
    };
    // The first deployment: no previous one, so only its own commit.
    let output = notify(deploy("d1", &shas[1]), &TOKEN_ENV).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stored = || SqliteStore::open(&store).unwrap().counts().unwrap();
    assert_eq!(stored().commits, 1);
    // The next: the two commits since.
    let output = notify(deploy("d2", &shas[3]), &TOKEN_ENV).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(stored().commits, 3);
    // A redeploy of the same sha carries none.
    let output = notify(deploy("d3", &shas[3]), &TOKEN_ENV).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!((stored().commits, stored().deployments), (3, 3));
    let store = SqliteStore::open(&store).unwrap();
    let billing = dora_collector::domain::RepoName::parse("acme/billing").unwrap();
    let c2 = store
        .commit(
            &billing,
            &dora_collector::domain::CommitSha::parse(&shas[2]).unwrap(),
        )
        .unwrap()
        .expect("c2 stored");
    assert_eq!(c2.author_date, Timestamp(1_699_963_200));
    assert_eq!(c2.parents[0].to_string(), shas[1]);
    handle.shutdown().await.unwrap();
}

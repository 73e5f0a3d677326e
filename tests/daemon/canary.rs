//! A canary token never leaks: the real binary, configured with a distinctive
//! token and logging everything (`RUST_LOG=trace`, text and JSON formats), runs a
//! successful sync, a sync GitHub refuses (401), a sync of an unreachable URL, a
//! sync of a hostile server (odd items, oversized and non-JSON bodies, and errors
//! whose messages and links echo the request's `Authorization` header back),
//! invalid configurations with the token present, `check-config`, and a running
//! daemon whose `/metrics`, `/`, `/readyz` and `/report` are scraped. Neither the
//! token nor its base64 form (as Basic authentication would send it) appears on
//! stdout, stderr or any page.
//!
//! The push API: the binary serving a push-only configuration whose client
//! token is the canary answers pushes with it, with another client's token and
//! with damaged forms of it (valid, refused, malformed and oversized bodies), and
//! neither its logs nor its answers nor its pages show it; invalid ingest
//! configurations holding it do not print it either. GitHub webhooks likewise:
//! the binary whose hook secret is the canary answers valid, replayed, forged
//! and oversized deliveries, and neither the secret nor any signature it
//! expected shows anywhere.
//!
//! PagerDuty: the binary syncing with a canary PagerDuty key (literal or
//! through `${PAGERDUTY_TOKEN}`) against the simulated PagerDuty, one that
//! refuses it, and a hostile fake that echoes it in every answer, and
//! `check-config` of an invalid file holding it, never print it.
//!
//! GitLab: the binary syncing with a canary `PRIVATE-TOKEN` against the
//! simulated GitLab, one that refuses it, and a hostile fake that echoes it in
//! errors, links and values that would be kept (environments' names), and a
//! daemon serving its pages, never print it; nor do the SQLite store's files
//! (database, `-wal`, `-shm`) those runs wrote hold it.
//!
//! Panics: a panic prints its message, and only a value formatted into it could
//! carry the token, so every type that holds the token (the configuration, its
//! `[github]` part, the token itself, the GitHub source and its HTTP client, the
//! webhook configuration and routes holding the secret) is
//! formatted with `{:?}` (and `{}` where it has `Display`) inside a panic caught
//! with `catch_unwind`, and the payload is checked. No panic hook is installed by
//! the binary, and none is needed: the default hook prints only the payload, the
//! location and (on request) a backtrace of function names.

use crate::support::{config_text, live_simulator, repo, workflow_repo};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use dora_collector::config::Config;
use dora_collector::domain::RepoName;
use dora_collector::sim::{SimHandle, SIM_TOKEN};
use dora_collector::sources::github::{GithubSource, MAX_RESPONSE_BYTES};
use dora_collector::webhooks::Webhooks;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");

/// The canary: looks like a GitHub token, appears nowhere else.
const CANARY: &str = "ghp_CaNaRy7q3Z9xK2mW8vB4nT6yR1uE5sL0pJdora";

/// How many times a test looks at `/readyz` of the running daemon, and how long it
/// waits between two looks (a bound on the wait, not a timing assertion).
const READY_POLLS: usize = 600;
const READY_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Bounds each request to the running daemon, so that a stuck daemon fails the
/// test instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The forms of the canary to look for: itself, and the part of its base64
/// encoding that does not depend on what precedes it (`user:` in Basic
/// authentication shifts the alignment, so all three alignments).
fn forms() -> Vec<String> {
    let mut forms = vec![CANARY.to_owned()];
    for shift in 0..3 {
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}{CANARY}", "x".repeat(shift)));
        // The first group of four holds the shift's bytes, the last may be padded.
        forms.push(encoded[4..encoded.len() - 4].to_owned());
    }
    forms
}

fn assert_clean(what: &str, text: &str) {
    for form in forms() {
        assert!(
            !text.contains(&form),
            "{what}: the canary token appears (as {form:?}):\n{text}"
        );
    }
}

fn assert_output_clean(what: &str, output: &Output) {
    assert_clean(
        &format!("{what} (stdout)"),
        &String::from_utf8_lossy(&output.stdout),
    );
    assert_clean(
        &format!("{what} (stderr)"),
        &String::from_utf8_lossy(&output.stderr),
    );
}

/// The `[log]` table of a configuration in `format`.
fn log_table(format: &str) -> String {
    format!("\n[log]\nformat = {format:?}\nlevel = \"trace\"\n")
}

/// Runs the binary with `args` and the configuration `config`, logging at trace.
async fn run(args: &[&str], config: &Path) -> Output {
    run_with_token(args, config, CANARY).await
}

/// [`run`] with `token` as `GITHUB_TOKEN`.
async fn run_with_token(args: &[&str], config: &Path, token: &str) -> Output {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "trace")
        .env("GITHUB_TOKEN", token)
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || command.output().expect("run dora-collector"))
        .await
        .unwrap()
}

/// The request's `Authorization` header, as a hostile or broken server might
/// echo it.
fn echoed(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A fake GitHub that misbehaves in every way it can while holding the token.
async fn hostile_server() -> String {
    async fn deployments(
        axum::extract::Path((_, name)): axum::extract::Path<(String, String)>,
        headers: HeaderMap,
    ) -> Response {
        let auth = echoed(&headers);
        match name.as_str() {
            "odd" => axum::Json(serde_json::json!([
                {"id": 1, "sha": auth, "environment": "production", "created_at": "2025-01-15T11:00:00Z"},
                {"id": 2, "sha": "0123456789abcdef0123456789abcdef01234567", "environment": auth, "created_at": "2025-01-15T11:00:00Z"},
                {"id": 3, "sha": "0123456789abcdef0123456789abcdef01234567", "environment": "production", "created_at": auth},
                null
            ]))
            .into_response(),
            "unauthorized" => (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"message": format!("Bad credentials: {auth}")})),
            )
                .into_response(),
            "forbidden" => (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({"message": format!("Resource not accessible by {auth}")})),
            )
                .into_response(),
            "broken" => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("<html>proxy error, you sent {auth}</html>"),
            )
                .into_response(),
            "notjson" => (
                [(header::CONTENT_TYPE, "application/json")],
                format!("{{\"token\": \"{auth}\""),
            )
                .into_response(),
            "huge" => {
                let body = format!("[{}]", "0,".repeat(MAX_RESPONSE_BYTES / 2 + 1) + "0");
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
            "away" => (
                [(
                    header::LINK,
                    format!(
                        "<http://elsewhere.example/?token={}>; rel=\"next\"",
                        auth.replace(' ', "%20")
                    ),
                )],
                axum::Json(serde_json::json!([])),
            )
                .into_response(),
            _ => (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"message": format!("Not Found for {auth}")})),
            )
                .into_response(),
        }
    }
    async fn statuses(headers: HeaderMap) -> Response {
        axum::Json(
            serde_json::json!([{"state": echoed(&headers), "created_at": "2025-01-15T11:00:00Z"}]),
        )
        .into_response()
    }
    async fn empty() -> Response {
        axum::Json(serde_json::json!([])).into_response()
    }
    let router = Router::new()
        .route("/repos/{owner}/{name}/deployments", get(deployments))
        .route(
            "/repos/{owner}/{name}/deployments/{id}/statuses",
            get(statuses),
        )
        .route("/repos/{owner}/{name}/issues", get(empty))
        .route("/repos/{owner}/{name}/pulls", get(empty));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// The configured repositories of `sim`.
fn sim_repos(sim: &SimHandle) -> Vec<(String, bool)> {
    sim.with_org(|org| {
        (0..org.repos.len())
            .map(|i| (org.full_name(i), org.repos[i].workflow().is_some()))
            .collect()
    })
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The configuration text for `api_url` with `repos`, the canary as the token
/// (literally, or through `${GITHUB_TOKEN}`), logging in `format`.
fn canary_config(
    api_url: &str,
    store: &Path,
    repos: &[(String, bool)],
    literal: bool,
    format: &str,
) -> String {
    let repos: Vec<_> = repos
        .iter()
        .map(|(name, workflow)| {
            if *workflow {
                workflow_repo(name, "t", dora_collector::sim::DEPLOY_WORKFLOW_FILE)
            } else {
                repo(name, "t")
            }
        })
        .collect();
    let token = if literal { CANARY } else { "${GITHUB_TOKEN}" };
    config_text(api_url, token, store, &repos, "") + &log_table(format)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_token_appears_in_no_log_error_or_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let good = live_simulator(CANARY).await;
    let refusing = live_simulator(SIM_TOKEN).await;
    let hostile = hostile_server().await;
    let hostile_repos: Vec<(String, bool)> = [
        "odd",
        "unauthorized",
        "forbidden",
        "broken",
        "notjson",
        "huge",
        "away",
        "gone",
    ]
    .iter()
    .map(|n| (format!("acme/{n}"), false))
    .collect();

    for format in ["text", "json"] {
        for literal in [true, false] {
            let what = |case: &str| format!("{case} ({format}, literal token: {literal})");
            // A successful sync.
            let file = write(
                dir.path(),
                "good.toml",
                &canary_config(good.base_url(), &store, &sim_repos(&good), literal, format),
            );
            let output = run(&["sync", "--once"], &file).await;
            assert!(output.status.success(), "{output:?}");
            // Trace-level logging really is on: the HTTP stack logs at trace.
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("TRACE") || stderr.contains("\"TRACE\""),
                "{stderr}"
            );
            assert_output_clean(&what("successful sync"), &output);

            // GitHub refuses the token (401).
            let file = write(
                dir.path(),
                "refused.toml",
                &canary_config(
                    refusing.base_url(),
                    &store,
                    &sim_repos(&refusing),
                    literal,
                    format,
                ),
            );
            let output = run(&["sync", "--once"], &file).await;
            assert_eq!(output.status.code(), Some(1), "{output:?}");
            assert!(String::from_utf8_lossy(&output.stderr).contains("401"));
            assert_output_clean(&what("refused token"), &output);

            // Nothing listens there.
            let file = write(
                dir.path(),
                "unreachable.toml",
                &canary_config(
                    "http://127.0.0.1:1",
                    &store,
                    &[("acme/api".to_owned(), false)],
                    literal,
                    format,
                ),
            );
            let output = run(&["sync", "--once"], &file).await;
            assert_eq!(output.status.code(), Some(1), "{output:?}");
            assert_output_clean(&what("unreachable URL"), &output);

            // A hostile server that echoes the token back in bodies, errors, links.
            let file = write(
                dir.path(),
                "hostile.toml",
                &canary_config(&hostile, &store, &hostile_repos, literal, format),
            );
            let output = run(&["sync", "--once"], &file).await;
            assert_eq!(output.status.code(), Some(1), "{output:?}");
            assert_output_clean(&what("hostile server"), &output);
            // The echoes arrived, masked.
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("HTTP 401 Bad credentials: Bearer [REDACTED]"),
                "{stderr}"
            );
            assert!(stderr.contains("?token=Bearer%20[REDACTED]"), "{stderr}");

            // check-config of a valid file.
            let file = write(
                dir.path(),
                "check.toml",
                &canary_config(good.base_url(), &store, &sim_repos(&good), literal, format),
            );
            let output = run(&["check-config"], &file).await;
            assert!(output.status.success(), "{output:?}");
            assert_output_clean(&what("check-config"), &output);
        }

        // Invalid configurations with the token present (or the token itself
        // invalid), through check-config and sync --once.
        let base = canary_config(good.base_url(), &store, &sim_repos(&good), true, format);
        let invalid = [
            base.replace("[github]\n", "[github]\npoll_interval = \"soon\"\n"),
            base.replace("[github]\n", "[github]\ntokn = \"x\"\n"),
            base.replace(
                &format!("token = {CANARY:?}"),
                &format!("token = [{CANARY:?}]"),
            ),
            base.replace(
                &format!("token = {CANARY:?}"),
                &format!("token = {:?}", format!("{CANARY}\n")),
            ),
            base.replace(
                &format!("token = {CANARY:?}"),
                &format!("token = {CANARY:?}\ntoken = {CANARY:?}"),
            ),
            format!("{base}\n[github]\nlookback = \"1d\"\n"),
            format!("token = {CANARY:?} oops\n{base}"),
        ];
        for (index, text) in invalid.iter().enumerate() {
            let file = write(dir.path(), "invalid.toml", text);
            for args in [&["check-config"][..], &["sync", "--once"][..]] {
                let output = run(args, &file).await;
                assert!(!output.status.success(), "{index} {args:?}: {output:?}");
                assert_output_clean(
                    &format!("invalid config {index} {args:?} ({format})"),
                    &output,
                );
            }
        }

        // A token variable that holds TOML (issue 19): it is only ever the token's
        // text, refused as a token (it has a space), and never printed; nothing is
        // injected (no 1-second poll, no truncated token).
        let file = write(
            dir.path(),
            "injected.toml",
            &canary_config(good.base_url(), &store, &sim_repos(&good), false, format),
        );
        for injected in [
            format!("{CANARY}\", poll_interval = \"1s"),
            format!("{CANARY}\" # x"),
        ] {
            for args in [&["check-config"][..], &["sync", "--once"][..]] {
                let output = run_with_token(args, &file, &injected).await;
                assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert!(
                    stderr.contains(
                        "github.token: must not contain spaces or control characters \
                         (the value is not shown)"
                    ),
                    "{stderr}"
                );
                assert_output_clean(&format!("injected token {args:?} ({format})"), &output);
            }
        }

        // A running daemon: logs and every page.
        serve_and_scrape(&dir, &good, format).await;
    }
}

/// Runs `serve` against `sim`, scrapes every page once ready, stops it with
/// SIGTERM, and checks pages and output.
async fn serve_and_scrape(dir: &tempfile::TempDir, sim: &SimHandle, format: &str) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let store = dir.path().join(format!("serve-{format}.db"));
    let text = canary_config(sim.base_url(), &store, &sim_repos(sim), true, format)
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let file = write(dir.path(), "serve.toml", &text);
    // Files, not pipes: a trace-level daemon fills a pipe nobody reads yet.
    let stdout_path = dir.path().join(format!("serve-{format}.out"));
    let stderr_path = dir.path().join(format!("serve-{format}.err"));
    let mut child = Command::new(BINARY)
        .args(["serve", "--config"])
        .arg(&file)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap();
    let mut ready = false;
    for _ in 0..READY_POLLS {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            if response.status() == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
    let mut pages = Vec::new();
    for path in ["/metrics", "/", "/readyz", "/report"] {
        let response = client.get(format!("{base}{path}")).send().await;
        let (status, body) = match response {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        };
        pages.push((path, status, body));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let output = Output {
        status,
        stdout: std::fs::read(&stdout_path).unwrap(),
        stderr: std::fs::read(&stderr_path).unwrap(),
    };
    assert!(ready, "the daemon became ready: {output:?}");
    for (path, status, body) in &pages {
        assert_eq!(*status, 200, "{path}: {body}");
        assert_clean(&format!("{path} ({format})"), body);
    }
    assert!(pages[0].2.contains("dora_org_deployments_total"));
    assert!(output.status.success(), "graceful exit: {output:?}");
    assert_output_clean(&format!("serve ({format})"), &output);
}

/// Every type that holds the token, formatted into a panic message.
#[tokio::test]
async fn panics_formatting_what_holds_the_token_do_not_print_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = canary_config(
        "http://127.0.0.1:1",
        &dir.path().join("dora.db"),
        &[("acme/api".to_owned(), false)],
        true,
        "text",
    );
    let text = format!("{text}[webhooks.github]\nsecret = \"{CANARY}\"\n");
    let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(
        config
            .github
            .as_ref()
            .unwrap()
            .token()
            .unwrap()
            .expose_secret(),
        CANARY,
        "the canary is the configured token"
    );
    let source = GithubSource::new(config.github.as_ref().unwrap()).unwrap();
    let webhooks = Webhooks::github(&config, std::sync::Arc::new(|_: &RepoName| {})).unwrap();
    let messages = [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{:?}", config.github),
        format!("{:?}", config.github.as_ref().unwrap().token()),
        format!("{source:?}"),
        format!("{source:#?}"),
        format!("{:?}", config.webhooks),
        format!("{webhooks:#?}"),
    ];
    for message in messages {
        let caught = std::panic::catch_unwind(|| panic!("{message}"));
        let payload = caught.unwrap_err();
        let printed = payload
            .downcast_ref::<String>()
            .cloned()
            .expect("a formatted panic message");
        assert!(!printed.is_empty());
        assert_clean("panic message", &printed);
    }
}

/// The push API with the canary as a client's token: the binary's output (trace
/// logs, text and JSON), every answer and every page are clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_ingest_token_appears_in_no_log_answer_or_page() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["text", "json"] {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let store = dir.path().join(format!("push-{format}.db"));
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[storage]\npath = {:?}\n\
             [ingest]\n[[ingest.clients]]\nname = \"ci\"\ntoken = \"${{GITHUB_TOKEN}}\"\n\
             repositories = [\"acme/*\"]\n[[repositories]]\nname = \"acme/billing\"\n{}",
            store.display().to_string(),
            log_table(format)
        );
        let file = write(dir.path(), "push.toml", &text);
        let stdout_path = dir.path().join(format!("push-{format}.out"));
        let stderr_path = dir.path().join(format!("push-{format}.err"));
        let mut child = Command::new(BINARY)
            .args(["serve", "--config"])
            .arg(&file)
            .env("RUST_LOG", "trace")
            .env("GITHUB_TOKEN", CANARY)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("serve starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap();
        let mut ready = false;
        for _ in 0..READY_POLLS {
            if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
                if response.status() == 200 {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
        let now = chrono::Utc::now().to_rfc3339();
        let deployment = serde_json::json!({
            "id": "run-1", "repository": "acme/billing", "environment": "production",
            "sha": "0123456789abcdef0123456789abcdef01234567", "status": "success",
            "finished_at": now, "commits": [],
        });
        let damaged = format!("{}x", &CANARY[..CANARY.len() - 1]);
        let bodies: Vec<(String, String)> = vec![
            (CANARY.to_owned(), deployment.to_string()),
            (CANARY.to_owned(), deployment.to_string()),
            (
                CANARY.to_owned(),
                format!("{{\"id\": \"{CANARY}\", \"x\": 1}}"),
            ),
            (CANARY.to_owned(), "{".repeat(100)),
            (damaged, deployment.to_string()),
            (format!("{CANARY} {CANARY}"), deployment.to_string()),
            (CANARY.to_lowercase(), deployment.to_string()),
            // Last: the daemon answers before reading it and closes the connection.
            (CANARY.to_owned(), " ".repeat(2 * 1024 * 1024)),
        ];
        let mut answers = Vec::new();
        for (token, body) in bodies {
            let response = client
                .post(format!("{base}/api/v1/deployments"))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            answers.push(match response {
                Ok(r) => (
                    r.status().as_u16(),
                    format!("{:?}", r.headers()),
                    r.text().await.unwrap_or_default(),
                ),
                Err(e) => (0, String::new(), e.to_string()),
            });
        }
        // Let the debounced publisher render the counters, then read the pages.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let mut pages = Vec::new();
        for path in ["/metrics", "/", "/readyz"] {
            let response = client.get(format!("{base}{path}")).send().await.unwrap();
            pages.push((path, response.text().await.unwrap()));
        }
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        let output = Output {
            status,
            stdout: std::fs::read(&stdout_path).unwrap(),
            stderr: std::fs::read(&stderr_path).unwrap(),
        };
        assert!(ready, "the daemon became ready: {output:?}");
        let statuses: Vec<u16> = answers.iter().map(|(status, _, _)| *status).collect();
        assert_eq!(statuses[..2], [202, 202], "{answers:?}");
        assert_eq!(statuses[2..7], [400, 400, 401, 401, 401], "{answers:?}");
        // 413 before the body is read; the client may still be writing it and
        // see the connection closed instead (0).
        assert!(matches!(statuses[7], 413 | 0), "{answers:?}");
        for (status, headers, body) in &answers {
            assert_clean(
                &format!("push answer {status} ({format})"),
                &format!("{headers}{body}"),
            );
        }
        for (path, body) in &pages {
            assert_clean(&format!("{path} after pushes ({format})"), body);
        }
        assert!(
            pages[0]
                .1
                .contains("dora_collector_pushes_total{client=\"ci\",outcome=\"accepted\"} 1"),
            "{}",
            pages[0].1
        );
        assert!(output.status.success(), "graceful exit: {output:?}");
        assert_output_clean(&format!("push serve ({format})"), &output);
    }
    // Invalid ingest configurations holding the canary.
    for (name, client) in [
        ("twice", format!("[[ingest.clients]]\nname = \"a\"\ntoken = \"{CANARY}\"\nrepositories = [\"a/*\"]\n[[ingest.clients]]\nname = \"b\"\ntoken = \"{CANARY}\"\nrepositories = [\"{CANARY}\"]\n")),
        ("short", format!("[[ingest.clients]]\nname = \"{CANARY}\"\ntoken = \"{}\"\nrepositories = [\"a/*\"]\n", &CANARY[..20])),
    ] {
        let file = write(dir.path(), &format!("{name}.toml"), &format!("[ingest]\n{client}"));
        let output = run(&["check-config"], &file).await;
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert_output_clean(&format!("invalid ingest configuration ({name})"), &output);
    }
}

/// The GitLab canary: shaped like a GitLab personal access token.
const GITLAB_CANARY: &str = "glpat-CaNaRy9w2Xk7Qm3Zv8Lp";

fn assert_gitlab_clean(what: &str, text: &str) {
    assert!(
        !text.contains(GITLAB_CANARY),
        "{what}: the GitLab canary token appears:\n{text}"
    );
}

/// Checks the bytes of every file of the SQLite store at `store` (the database,
/// its `-wal` and `-shm`, whichever exist) for the GitLab canary; returns how
/// many files were read.
fn assert_gitlab_store_clean(what: &str, store: &Path) -> usize {
    let name = store.file_name().unwrap().to_string_lossy().into_owned();
    let mut read = 0;
    for entry in std::fs::read_dir(store.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.starts_with(&name) {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        read += 1;
        assert!(
            !bytes
                .windows(GITLAB_CANARY.len())
                .any(|w| w == GITLAB_CANARY.as_bytes()),
            "{what}: the GitLab canary token is in the store's file {file}"
        );
    }
    read
}

/// The binary with `args` on `config`, `GITLAB_TOKEN` set to the canary,
/// logging at trace.
async fn run_gitlab(args: &[&str], config: &Path) -> Output {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "trace")
        .env("GITLAB_TOKEN", GITLAB_CANARY)
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || command.output().expect("run dora-collector"))
        .await
        .unwrap()
}

/// A fake GitLab that echoes `PRIVATE-TOKEN` back wherever it can: in error
/// messages (401, 403, 404, 500, 429), a foreign `Link`, item values (among
/// them recent deployments to environments named with it, and environments of
/// tier production named with it, which would be kept) and a body that is not
/// JSON.
async fn hostile_gitlab() -> String {
    async fn deployments(
        axum::extract::Path(project): axum::extract::Path<String>,
        headers: HeaderMap,
    ) -> Response {
        let token = headers
            .get("private-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let message = |status: StatusCode, text: String| {
            (status, axum::Json(serde_json::json!({"message": text}))).into_response()
        };
        let recent = (chrono::Utc::now() - chrono::Duration::days(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match project.rsplit('/').next().unwrap_or("") {
            "unauthorized" => message(StatusCode::UNAUTHORIZED, format!("401 {token}")),
            "forbidden" => (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({"error": "insufficient_scope", "error_description": token})),
            )
                .into_response(),
            "broken" => message(StatusCode::INTERNAL_SERVER_ERROR, format!("500 {token}")),
            "throttled" => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                format!("Retry later {token}"),
            )
                .into_response(),
            "notjson" => (
                [(header::CONTENT_TYPE, "application/json")],
                format!("[{{\"token\": \"{token}\""),
            )
                .into_response(),
            "away" => (
                [(header::LINK, format!("<http://elsewhere.example/?token={token}>; rel=\"next\""))],
                axum::Json(serde_json::json!([])),
            )
                .into_response(),
            "odd" => axum::Json(serde_json::json!([
                {"id": 1, "status": "success", "sha": token, "created_at": "2025-01-15T11:00:00Z",
                 "updated_at": "2025-01-15T11:00:00Z", "environment": {"id": 1, "name": "production"}},
                {"id": 2, "status": "success", "sha": "0123456789abcdef0123456789abcdef01234567",
                 "created_at": token, "updated_at": "2025-01-15T11:00:00Z", "environment": {"id": 1, "name": "production"}},
                // Deployments of every environment within the lookback are
                // kept: the token as an environment's name, and in one.
                {"id": 3, "status": "success", "sha": "0123456789abcdef0123456789abcdef01234567",
                 "created_at": recent, "updated_at": recent,
                 "environment": {"id": 2, "name": token}},
                {"id": 4, "status": "failed", "sha": "0123456789abcdef0123456789abcdef01234567",
                 "created_at": recent, "updated_at": recent,
                 "environment": {"id": 3, "name": format!("review/{token}")}},
                null
            ]))
            .into_response(),
            _ => message(StatusCode::NOT_FOUND, format!("404 Project Not Found {token}")),
        }
    }
    async fn empty() -> Response {
        axum::Json(serde_json::json!([])).into_response()
    }
    // The token as the name of an environment of tier production.
    async fn environments(headers: HeaderMap) -> Response {
        let token = headers
            .get("private-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        axum::Json(serde_json::json!([
            {"id": 2, "name": token, "tier": "production"},
            {"id": 3, "name": format!("review/{token}"), "tier": "development"}
        ]))
        .into_response()
    }
    let router = Router::new()
        .route("/api/v4/projects/{project}/deployments", get(deployments))
        .route("/api/v4/projects/{project}/environments", get(environments))
        .route("/api/v4/projects/{project}/merge_requests", get(empty))
        .route("/api/v4/projects/{project}/issues", get(empty));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v4", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn gitlab_config(api_url: &str, store: &Path, projects: &[String], format: &str) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n\
         [gitlab]\napi_url = {api_url:?}\ntoken = \"${{GITLAB_TOKEN}}\"\n",
        store.display().to_string()
    );
    for project in projects {
        text.push_str(&format!("[[gitlab.projects]]\npath = {project:?}\n"));
    }
    text + &log_table(format)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_gitlab_token_appears_in_no_log_error_or_page() {
    use dora_collector::sim::gitlab::{GitlabGroup, GitlabOptions, GitlabServer, GroupSpec};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let group = GitlabGroup::generate(&GroupSpec::small(4));
    let projects: Vec<String> = group.projects.iter().map(|p| p.repository()).collect();
    let good = GitlabServer::start(
        group.clone(),
        GitlabOptions {
            token: GITLAB_CANARY.to_owned(),
            ..GitlabOptions::default()
        },
    )
    .await
    .unwrap();
    let refusing = GitlabServer::start(group, GitlabOptions::default())
        .await
        .unwrap();
    let hostile = hostile_gitlab().await;
    let hostile_projects: Vec<String> = [
        "unauthorized",
        "forbidden",
        "broken",
        "throttled",
        "notjson",
        "away",
        "odd",
        "gone",
    ]
    .iter()
    .map(|n| format!("gl-acme/hostile/{n}"))
    .collect();
    for format in ["text", "json"] {
        let file = write(
            dir.path(),
            "gitlab.toml",
            &gitlab_config(good.api_url(), &store, &projects, format),
        );
        let output = run_gitlab(&["sync", "--once"], &file).await;
        assert!(output.status.success(), "{output:?}");
        for stream in [&output.stdout, &output.stderr] {
            assert_gitlab_clean(
                &format!("successful sync ({format})"),
                &String::from_utf8_lossy(stream),
            );
        }
        let output = run_gitlab(&["check-config"], &file).await;
        assert!(output.status.success(), "{output:?}");
        assert_gitlab_clean("check-config", &String::from_utf8_lossy(&output.stdout));

        let file = write(
            dir.path(),
            "refused.toml",
            &gitlab_config(refusing.api_url(), &store, &projects, format),
        );
        let output = run_gitlab(&["sync", "--once"], &file).await;
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("401"), "{stderr}");
        assert_gitlab_clean(&format!("refused token ({format})"), &stderr);

        let file = write(
            dir.path(),
            "hostile.toml",
            &gitlab_config(&hostile, &store, &hostile_projects, format),
        );
        let output = run_gitlab(&["sync", "--once"], &file).await;
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_gitlab_clean(&format!("hostile GitLab ({format})"), &stderr);
        assert_gitlab_clean(
            "hostile GitLab (stdout)",
            &String::from_utf8_lossy(&output.stdout),
        );
        // The echoes arrived, masked.
        assert!(stderr.contains("HTTP 401 401 [REDACTED]"), "{stderr}");
        assert!(stderr.contains("?token=[REDACTED]"), "{stderr}");
        // Nor is it in the store those syncs wrote (their errors, cursors and
        // the deployments kept).
        assert!(assert_gitlab_store_clean(&format!("syncs ({format})"), &store) >= 1);

        // An invalid configuration with the token in it.
        let text = gitlab_config(good.api_url(), &store, &projects, format)
            .replace("[gitlab]\n", "[gitlab]\npoll_interval = \"soon\"\n")
            .replace("${GITLAB_TOKEN}", GITLAB_CANARY)
            + &format!("\n[[repositories]]\nname = {GITLAB_CANARY:?}\n");
        let file = write(dir.path(), "invalid.toml", &text);
        let output = run_gitlab(&["check-config"], &file).await;
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert_gitlab_clean("invalid config", &String::from_utf8_lossy(&output.stderr));
    }

    // The daemon's pages.
    let text = gitlab_config(good.api_url(), &store, &projects, "text");
    let config = Config::from_toml_str(&text, |name| {
        assert_eq!(name, "GITLAB_TOKEN");
        Ok(GITLAB_CANARY.to_owned())
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut handle = dora_collector::daemon::start(
        config.clone(),
        listener,
        dora_collector::daemon::RunOptions::default(),
    )
    .await
    .unwrap();
    handle.wait_for_cycles(1).await.unwrap();
    for page in ["/metrics", "/", "/readyz", "/report"] {
        let response = reqwest::get(format!("http://{addr}{page}")).await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "{page}: {body}");
        assert_gitlab_clean(page, &body);
    }
    // The store's files while the daemon holds them open (the write-ahead
    // log not yet checkpointed), and after.
    assert_gitlab_store_clean("the running daemon's store", &store);
    handle.shutdown().await.unwrap();
    assert_gitlab_store_clean("the daemon's store", &store);

    // Panics formatting what holds the token.
    let source = dora_collector::sources::gitlab::GitlabSource::new(
        config.gitlab.as_ref().unwrap(),
        dora_collector::dora::LeadTimeStart::Commit,
    )
    .unwrap();
    for message in [
        format!("{config:?}"),
        format!("{:?}", config.gitlab),
        format!("{source:?}"),
        format!("{source:#?}"),
    ] {
        let printed = std::panic::catch_unwind(|| panic!("{message}"))
            .unwrap_err()
            .downcast_ref::<String>()
            .cloned()
            .unwrap();
        assert_gitlab_clean("panic message", &printed);
    }
}

/// The PagerDuty key as a canary: distinctive, and found nowhere else.
const PD_CANARY: &str = "u+PdCaNaRy9kQ2xW7mZ4vB8nT3yR6uE1sLdora";

/// A fake PagerDuty that echoes the request's `Authorization` header back in
/// everything it answers: error messages, item fields, a text body.
async fn hostile_pagerduty() -> String {
    async fn any(uri: axum::http::Uri, headers: HeaderMap) -> Response {
        let auth = echoed(&headers);
        match uri.path() {
            "/services/PECHO01" | "/services/PODD001" => {
                axum::Json(serde_json::json!({"service": {"id": "P", "type": "service"}}))
                    .into_response()
            }
            "/services/PAUTH01" => (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"error": {"message": format!("Authentication failed: {auth}"), "code": 2006, "errors": [auth]}})),
            )
                .into_response(),
            "/services/PBAD001" => (StatusCode::BAD_REQUEST, format!("no such thing as {auth}"))
                .into_response(),
            "/incidents" if uri.query().is_some_and(|q| q.contains("PODD001")) => {
                axum::Json(serde_json::json!({"incidents": [
                    {"id": auth, "incident_number": 1, "created_at": "2025-01-15T11:00:00Z", "status": "resolved"},
                    {"id": "Q1", "incident_number": 2, "created_at": auth, "status": "triggered"},
                    {"id": "Q2", "incident_number": 3, "created_at": "2025-01-15T11:00:00Z", "status": auth}
                ], "more": false}))
                .into_response()
            }
            _ => (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": {"message": format!("Invalid Input Provided by {auth}"), "code": 2001, "errors": [auth]}})),
            )
                .into_response(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().fallback(any))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_pagerduty_key_appears_in_no_log_error_or_page() {
    use dora_collector::sim::pagerduty::{PdAccount, PdOptions, PdServer, PdService, PdUrgency};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let github = live_simulator(SIM_TOKEN).await;
    let repos = sim_repos(&github);
    let now = github.with_org(|org| org.now);
    let mut account = PdAccount::new(
        vec![PdService {
            id: "PAPI001".to_owned(),
            name: "api".to_owned(),
        }],
        now,
    );
    let incident = account
        .trigger(
            "PAPI001",
            dora_collector::domain::Timestamp(now.0 - 3600),
            "down",
            PdUrgency::High,
            Some("root cause: abcdef1".to_owned()),
        )
        .unwrap();
    account
        .log(
            &incident,
            dora_collector::sim::pagerduty::PdLogKind::Resolve,
            dora_collector::domain::Timestamp(now.0 - 60),
        )
        .unwrap();
    let good = PdServer::start(
        account.clone(),
        PdOptions {
            token: PD_CANARY.to_owned(),
            ..PdOptions::default()
        },
    )
    .await
    .unwrap();
    let refusing = PdServer::start(account, PdOptions::default())
        .await
        .unwrap();
    let hostile = hostile_pagerduty().await;
    let pagerduty = |url: &str, literal: bool, services: &[&str]| {
        let key = if literal {
            PD_CANARY
        } else {
            "${PAGERDUTY_TOKEN}"
        };
        let mut text = format!("\n[pagerduty]\napi_url = \"{url}\"\ntoken = \"{key}\"\n");
        for id in services {
            text.push_str(&format!(
                "\n[[pagerduty.services]]\nid = \"{id}\"\nrepositories = [\"{}\"]\n",
                repos[0].0
            ));
        }
        text
    };
    let run_pd = |args: &'static [&'static str], file: std::path::PathBuf| async move {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .arg("--config")
            .arg(&file)
            .env("RUST_LOG", "trace")
            .env("GITHUB_TOKEN", SIM_TOKEN)
            .env("PAGERDUTY_TOKEN", PD_CANARY)
            .stdin(Stdio::null());
        tokio::task::spawn_blocking(move || command.output().expect("run dora-collector"))
            .await
            .unwrap()
    };
    let pd_clean = |what: &str, output: &Output| {
        for stream in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(
                !text.contains(PD_CANARY),
                "{what}: the key appears:\n{text}"
            );
            // The key's distinctive middle, as an echo might cut it.
            assert!(
                !text.contains(&PD_CANARY[3..30]),
                "{what}: part of the key appears:\n{text}"
            );
        }
    };
    for format in ["text", "json"] {
        for literal in [true, false] {
            let what = |case: &str| format!("{case} ({format}, literal key: {literal})");
            let base = canary_config(github.base_url(), &store, &repos, false, format);
            let file = write(
                dir.path(),
                "pd-good.toml",
                &(base.clone() + &pagerduty(good.base_url(), literal, &["PAPI001"])),
            );
            let output = run_pd(&["sync", "--once"], file).await;
            assert!(output.status.success(), "{output:?}");
            pd_clean(&what("successful sync"), &output);

            let file = write(
                dir.path(),
                "pd-refused.toml",
                &(base.clone() + &pagerduty(refusing.base_url(), literal, &["PAPI001"])),
            );
            let output = run_pd(&["sync", "--once"], file).await;
            assert_eq!(output.status.code(), Some(1), "{output:?}");
            assert!(String::from_utf8_lossy(&output.stderr).contains("pagerduty.token"));
            pd_clean(&what("refused key"), &output);

            let file = write(
                dir.path(),
                "pd-hostile.toml",
                &(base.clone()
                    + &pagerduty(
                        &hostile,
                        literal,
                        &["PECHO01", "PAUTH01", "PBAD001", "PODD001"],
                    )),
            );
            let output = run_pd(&["sync", "--once"], file).await;
            assert_eq!(output.status.code(), Some(1), "{output:?}");
            pd_clean(&what("hostile PagerDuty"), &output);

            // An invalid configuration holding the key.
            let file = write(
                dir.path(),
                "pd-invalid.toml",
                &(base + &pagerduty(good.base_url(), literal, &["P-BAD"]) + "pol = 1\n"),
            );
            let output = run_pd(&["check-config"], file).await;
            assert_eq!(output.status.code(), Some(2), "{output:?}");
            pd_clean(&what("invalid configuration"), &output);
        }
    }
}

/// `X-Hub-Signature-256` of `body` under `secret`.
fn hub_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// GitHub webhooks with the canary as the hook's secret (from
/// `${GITHUB_WEBHOOK_SECRET}`): the binary, logging at trace, answers valid,
/// replayed, forged and oversized deliveries and deliveries signed with damaged
/// forms of the secret; neither its logs nor its answers nor its pages show the
/// secret, or the signature it expected of any body. Invalid configurations
/// holding the secret do not print it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_webhook_secret_appears_in_no_log_answer_or_page() {
    let dir = tempfile::tempdir().unwrap();
    let sim = live_simulator(SIM_TOKEN).await;
    let repos = sim_repos(&sim);
    let (target, _) = repos[0].clone();
    for format in ["text", "json"] {
        let port = crate::support::free_port();
        let store = dir.path().join(format!("webhooks-{format}.db"));
        let configured: Vec<_> = repos
            .iter()
            .map(|(name, workflow)| {
                if *workflow {
                    workflow_repo(name, "t", dora_collector::sim::DEPLOY_WORKFLOW_FILE)
                } else {
                    repo(name, "t")
                }
            })
            .collect();
        let text = config_text(sim.base_url(), SIM_TOKEN, &store, &configured, "").replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        ) + "[webhooks.github]\nsecret = \"${GITHUB_WEBHOOK_SECRET}\"\n"
            + &log_table(format);
        let file = write(dir.path(), "webhooks.toml", &text);
        let stdout_path = dir.path().join(format!("webhooks-{format}.out"));
        let stderr_path = dir.path().join(format!("webhooks-{format}.err"));
        let mut child = Command::new(BINARY)
            .args(["serve", "--config"])
            .arg(&file)
            .env("RUST_LOG", "trace")
            .env("GITHUB_WEBHOOK_SECRET", CANARY)
            .env_remove("GITHUB_TOKEN")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("serve starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap();
        let mut ready = false;
        for _ in 0..READY_POLLS {
            if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
                if response.status() == 200 {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
        let push = serde_json::json!({
            "ref": "refs/heads/main", "after": "0123456789abcdef0123456789abcdef01234567",
            "repository": {"full_name": target, "name": "x"},
        })
        .to_string();
        let with_canary = serde_json::json!({"repository": {"full_name": CANARY}}).to_string();
        let damaged = format!("{}x", &CANARY[..CANARY.len() - 1]);
        // (event, delivery id, signature, body)
        let deliveries: Vec<(&str, &str, String, String)> = vec![
            (
                "push",
                "d-1",
                hub_signature(CANARY, push.as_bytes()),
                push.clone(),
            ),
            (
                "push",
                "d-1",
                hub_signature(CANARY, push.as_bytes()),
                push.clone(),
            ),
            (
                "ping",
                "d-2",
                hub_signature(CANARY, with_canary.as_bytes()),
                with_canary.clone(),
            ),
            (
                "push",
                "d-3",
                hub_signature(CANARY, with_canary.as_bytes()),
                with_canary.clone(),
            ),
            ("push", "d-4", hub_signature(CANARY, b"{"), "{".to_owned()),
            (
                "push",
                "d-5",
                hub_signature(&damaged, push.as_bytes()),
                push.clone(),
            ),
            (
                "push",
                "d-6",
                hub_signature(&CANARY.to_lowercase(), push.as_bytes()),
                push.clone(),
            ),
            ("push", "d-7", format!("sha256={CANARY}"), push.clone()),
            ("push", "d-8", CANARY.to_owned(), push.clone()),
            (
                "push",
                "d-9",
                hub_signature(CANARY, push.as_bytes()),
                format!("{push} "),
            ),
            // Last: the daemon answers before reading it and closes the connection.
            (
                "push",
                "d-10",
                hub_signature(CANARY, b"{}"),
                " ".repeat(26 * 1024 * 1024),
            ),
        ];
        let mut answers = Vec::new();
        for (event, id, signature, body) in &deliveries {
            let response = client
                .post(format!("{base}/webhooks/github"))
                .header("x-github-event", *event)
                .header("x-github-delivery", *id)
                .header("x-hub-signature-256", signature.as_str())
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            answers.push(match response {
                Ok(r) => (
                    r.status().as_u16(),
                    format!("{:?}", r.headers()),
                    r.text().await.unwrap_or_default(),
                ),
                Err(e) => (0, String::new(), e.to_string()),
            });
        }
        // Let the counters' publisher render, then read the pages.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let mut pages = Vec::new();
        for path in ["/metrics", "/", "/readyz"] {
            let response = client.get(format!("{base}{path}")).send().await.unwrap();
            pages.push((path, response.text().await.unwrap()));
        }
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        let output = Output {
            status,
            stdout: std::fs::read(&stdout_path).unwrap(),
            stderr: std::fs::read(&stderr_path).unwrap(),
        };
        assert!(ready, "the daemon became ready: {output:?}");
        let statuses: Vec<u16> = answers.iter().map(|(status, _, _)| *status).collect();
        assert_eq!(
            statuses[..10],
            [202, 202, 200, 202, 400, 401, 401, 401, 401, 401],
            "{answers:?}"
        );
        assert!(matches!(statuses[10], 413 | 0), "{answers:?}");
        for (status, headers, body) in &answers {
            assert_clean(
                &format!("webhook answer {status} ({format})"),
                &format!("{headers}{body}"),
            );
        }
        for (path, body) in &pages {
            assert_clean(&format!("{path} after deliveries ({format})"), body);
        }
        assert!(
            pages[0].1.contains(
                "dora_collector_webhook_deliveries_total{event=\"push\",outcome=\"accepted\"} 1"
            ),
            "{}",
            pages[0].1
        );
        assert!(output.status.success(), "graceful exit: {output:?}");
        assert_output_clean(&format!("webhook serve ({format})"), &output);
        // Nor the signature the collector expected of any body sent.
        for (_, _, _, body) in &deliveries {
            let expected = hub_signature(CANARY, body.as_bytes());
            let hex = &expected["sha256=".len()..];
            for stream in [&output.stdout, &output.stderr] {
                assert!(
                    !String::from_utf8_lossy(stream).contains(hex),
                    "an expected signature was printed ({format})"
                );
            }
        }
    }
    // Invalid webhook configurations holding the canary.
    let github = format!(
        "[github]\ntoken = \"{SIM_TOKEN}\"\n[[github.repositories]]\nname = \"acme/api\"\n"
    );
    for (name, text) in [
        ("short", format!("{github}[webhooks.github]\nsecret = \"{}\"\n", &CANARY[..20])),
        ("without github", format!("[ingest]\n[[ingest.clients]]\nname = \"ci\"\ntoken = \"{}\"\nrepositories = [\"a/*\"]\n[webhooks.github]\nsecret = \"{CANARY}\"\n", "t".repeat(32))),
        ("elsewhere too", format!("{github}[webhooks.github]\nsecret = \"{CANARY}\"\nsecrets = \"{CANARY}\"\n[server]\nlisten = \"{CANARY}\"\n")),
        ("with a space", format!("{github}[webhooks.github]\nsecret = \"{CANARY} \"\n")),
    ] {
        let file = write(dir.path(), "invalid-webhooks.toml", &text);
        let output = run_with_token(&["check-config"], &file, SIM_TOKEN).await;
        assert_eq!(output.status.code(), Some(2), "{name}: {output:?}");
        assert_output_clean(&format!("invalid webhook configuration ({name})"), &output);
    }
}

/// A fake Argo CD and Jenkins in one server, misbehaving while holding the
/// token: every answer echoes the request's `Authorization` header (Bearer for
/// Argo CD, Basic `dora:TOKEN` for Jenkins) in error bodies, HTML pages, JSON
/// fields and a redirect.
async fn hostile_cicd_server() -> String {
    async fn application(
        axum::extract::Path(name): axum::extract::Path<String>,
        headers: HeaderMap,
    ) -> Response {
        let auth = echoed(&headers);
        match name.as_str() {
            "forbidden" => (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({"error": format!("permission denied: {auth}"), "code": 7, "message": format!("permission denied: {auth}")})),
            )
                .into_response(),
            // Not retried (a 5xx would be, for half a minute: the binary runs
            // with the production retry policy), the same masking.
            "broken" => (
                StatusCode::BAD_REQUEST,
                format!("<html><body>upstream said {auth}</body></html>"),
            )
                .into_response(),
            "array" => axum::Json(serde_json::json!([auth])).into_response(),
            "odd" => axum::Json(serde_json::json!({
                "metadata": {"name": "odd", "uid": auth},
                "status": {
                    "history": [{"id": 1, "revision": auth, "deployedAt": auth}, {"id": auth}],
                    "operationState": {"phase": "Failed", "startedAt": auth, "message": auth},
                },
            }))
            .into_response(),
            "redirect" => (
                StatusCode::FOUND,
                [(header::LOCATION, format!("http://elsewhere.example/?t={}", auth.replace(' ', "%20")))],
            )
                .into_response(),
            _ => (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error": format!("not found for {auth}"), "code": 5})),
            )
                .into_response(),
        }
    }
    async fn job(
        axum::extract::Path(name): axum::extract::Path<String>,
        headers: HeaderMap,
    ) -> Response {
        let auth = echoed(&headers);
        match name.as_str() {
            "unauthorized" => (
                StatusCode::UNAUTHORIZED,
                format!("<html><body>Invalid password/token for user: {auth}</body></html>"),
            )
                .into_response(),
            "odd" => {
                let builds = serde_json::json!([
                    {"number": 2, "result": "SUCCESS", "building": false, "timestamp": 0, "duration": 0,
                     "actions": [{"_class": "hudson.plugins.git.util.BuildData", "lastBuiltRevision": {"SHA1": auth}, "remoteUrls": [auth]}]},
                    {"number": 1, "result": auth, "building": false, "timestamp": 0},
                    {"number": auth},
                ]);
                axum::Json(serde_json::json!({"builds": builds, "allBuilds": builds}))
                    .into_response()
            }
            "notalist" => {
                axum::Json(serde_json::json!({"builds": auth, "allBuilds": auth})).into_response()
            }
            _ => (
                StatusCode::NOT_FOUND,
                format!("<html><body>Not Found: {auth}</body></html>"),
            )
                .into_response(),
        }
    }
    let router = Router::new()
        .route("/api/v1/applications/{name}", get(application))
        .route("/job/{name}/api/json", get(job));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// A configuration whose GitHub is `github` (its own token) and whose Argo CD
/// and Jenkins (at `argocd` and `jenkins`) take the canary as their token,
/// literally or through `${GITHUB_TOKEN}`; applications and jobs named
/// `names` deploy the first and second repository.
#[allow(clippy::too_many_arguments)]
fn cicd_canary_config(
    github: &SimHandle,
    store: &Path,
    argocd: &str,
    jenkins: &str,
    names: &[&str],
    literal: bool,
    format: &str,
) -> String {
    let repos = sim_repos(github);
    let token = if literal { CANARY } else { "${GITHUB_TOKEN}" };
    let mut text = config_text(
        github.base_url(),
        SIM_TOKEN,
        store,
        &repos
            .iter()
            .map(|(name, _)| repo(name, "t"))
            .collect::<Vec<_>>(),
        "",
    );
    text.push_str(&format!(
        "\n[argocd]\napi_url = {argocd:?}\ntoken = {token:?}\n"
    ));
    for name in names {
        text.push_str(&format!(
            "[[argocd.applications]]\nname = {name:?}\nrepository = {:?}\nenvironment = \"production\"\n",
            repos[0].0
        ));
    }
    text.push_str(&format!(
        "\n[jenkins]\nurl = {jenkins:?}\nuser = \"dora\"\ntoken = {token:?}\n"
    ));
    for name in names {
        text.push_str(&format!(
            "[[jenkins.jobs]]\npath = {name:?}\nrepository = {:?}\nenvironment = \"production\"\n",
            repos[1].0
        ));
    }
    text + &log_table(format)
}

/// Argo CD's and Jenkins' tokens (the canary) appear in no output or page of
/// the binary: successful syncs, refused credentials, a hostile server that
/// echoes them everywhere, `check-config` of valid and invalid files, and a
/// running daemon's pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_argocd_and_jenkins_tokens_appear_in_no_log_error_or_page() {
    use dora_collector::sim::cicd::argocd::{ArgoApp, ArgoCdState};
    use dora_collector::sim::cicd::jenkins::{
        BuildResult, Checkout, FolderKind, JenkinsJob, JenkinsState, JobKind,
    };
    use dora_collector::sim::cicd::{CicdHandle, CicdOptions, Credentials};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let github = live_simulator(SIM_TOKEN).await;
    let repos = sim_repos(&github);
    let (api_sha, web_sha) = github.with_org(|org| {
        (
            org.repos[0].commits.last().unwrap().sha,
            org.repos[1].commits.last().unwrap().sha,
        )
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut app = ArgoApp::new(
        "api",
        "https://github.com/acme/deploy.git",
        dora_collector::domain::Timestamp(now - 86_400),
    );
    app.sync_succeeded(
        &api_sha.to_string(),
        dora_collector::domain::Timestamp(now - 600),
        dora_collector::domain::Timestamp(now - 540),
        true,
    );
    let mut job = JenkinsJob::new("api", JobKind::Freestyle);
    let number = job.start_build(
        (now - 900) * 1000,
        vec![Checkout {
            sha: web_sha.to_string(),
            branch: "refs/remotes/origin/main".into(),
            remote_url: format!("https://github.com/{}.git", repos[1].0),
        }],
    );
    job.finish_build(number, BuildResult::Success, 60_000);
    let mut jenkins_state = JenkinsState::default();
    jenkins_state.insert(&[], FolderKind::Folder, job);
    let argocd = CicdHandle::start(
        ArgoCdState {
            applications: vec![app],
        },
        Credentials::Bearer(CANARY.into()),
        CicdOptions::default(),
    )
    .await
    .unwrap();
    let jenkins = CicdHandle::start(
        jenkins_state,
        Credentials::Basic {
            user: "dora".into(),
            token: CANARY.into(),
        },
        CicdOptions::default(),
    )
    .await
    .unwrap();
    let hostile = hostile_cicd_server().await;
    let hostile_names = [
        "forbidden",
        "broken",
        "array",
        "odd",
        "redirect",
        "notalist",
        "unauthorized",
        "gone",
    ];

    for format in ["text", "json"] {
        for literal in [true, false] {
            let what = |case: &str| format!("{case} ({format}, literal token: {literal})");
            let good = cicd_canary_config(
                &github,
                &store,
                argocd.base_url(),
                jenkins.base_url(),
                &["api"],
                literal,
                format,
            );
            let file = write(dir.path(), "cicd-good.toml", &good);
            let output = run(&["sync", "--once"], &file).await;
            assert!(output.status.success(), "{output:?}");
            assert_output_clean(&what("successful Argo CD and Jenkins sync"), &output);
            let output = run(&["check-config"], &file).await;
            assert!(output.status.success(), "{output:?}");
            assert_output_clean(&what("check-config"), &output);

            // Both refuse the canary.
            argocd.set_credentials(Credentials::Bearer("another-token-entirely".into()));
            jenkins.set_credentials(Credentials::Basic {
                user: "dora".into(),
                token: "another-token-entirely".into(),
            });
            let output = run(&["sync", "--once"], &file).await;
            argocd.set_credentials(Credentials::Bearer(CANARY.into()));
            jenkins.set_credentials(Credentials::Basic {
                user: "dora".into(),
                token: CANARY.into(),
            });
            assert_eq!(output.status.code(), Some(1), "{output:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("check argocd.token") && stderr.contains("check jenkins.token"),
                "{stderr}"
            );
            assert_output_clean(&what("refused tokens"), &output);

            // The hostile server echoes them everywhere.
            let text = cicd_canary_config(
                &github,
                &store,
                &hostile,
                &hostile,
                &hostile_names,
                literal,
                format,
            );
            let file = write(dir.path(), "cicd-hostile.toml", &text);
            let output = run(&["sync", "--once"], &file).await;
            assert_eq!(output.status.code(), Some(1), "{output:?}");
            assert_output_clean(&what("hostile Argo CD and Jenkins"), &output);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("permission denied: Bearer [REDACTED]"),
                "{stderr}"
            );
            assert!(stderr.contains("Basic [REDACTED]"), "{stderr}");
        }

        // Invalid configurations holding the canary.
        let base = cicd_canary_config(
            &github,
            &store,
            argocd.base_url(),
            jenkins.base_url(),
            &["api"],
            true,
            format,
        );
        let invalid = [
            base.replace("[argocd]\n", "[argocd]\ntokn = \"x\"\n"),
            base.replace(
                &format!("user = \"dora\"\ntoken = {CANARY:?}"),
                &format!("user = \"dora\"\ntoken = {:?}", format!("{CANARY} x")),
            ),
            base.replace(
                &format!(
                    "repository = {:?}\nenvironment = \"production\"\n\n[jenkins]",
                    repos[0].0
                ),
                &format!("repository = {CANARY:?}\nenvironment = \"production\"\n\n[jenkins]"),
            ),
            base.replace("name = \"api\"", &format!("name = {CANARY:?}")),
        ];
        for (index, text) in invalid.iter().enumerate() {
            assert_ne!(text, &base, "{index}");
            let file = write(dir.path(), "cicd-invalid.toml", text);
            for args in [&["check-config"][..], &["sync", "--once"][..]] {
                let output = run(args, &file).await;
                assert_eq!(
                    output.status.code(),
                    Some(2),
                    "{index} {args:?}: {output:?}"
                );
                assert_output_clean(
                    &format!("invalid config {index} {args:?} ({format})"),
                    &output,
                );
            }
        }
    }

    // A running daemon: its pages and its output.
    let port = crate::support::free_port();
    let text = cicd_canary_config(
        &github,
        &dir.path().join("serve-cicd.db"),
        argocd.base_url(),
        jenkins.base_url(),
        &["api"],
        true,
        "text",
    )
    .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let file = write(dir.path(), "cicd-serve.toml", &text);
    let mut command = Command::new(BINARY);
    command
        .args(["serve", "--config"])
        .arg(&file)
        .env("RUST_LOG", "trace");
    let mut running = crate::support::Running::spawn(command, dir.path(), "cicd-serve");
    let base = format!("http://127.0.0.1:{port}");
    running
        .wait_for(&format!("{base}/readyz"), |status, _| status == 200)
        .await;
    for path in ["/metrics", "/", "/readyz", "/report"] {
        let (status, body) = running
            .wait_for(&format!("{base}{path}"), |status, _| status == 200)
            .await;
        assert_eq!(status, 200);
        assert_clean(&format!("{path} (Argo CD and Jenkins)"), &body);
        if path == "/metrics" {
            assert!(
                body.contains("source=\"argocd\"") && body.contains("source=\"jenkins\""),
                "{body}"
            );
        }
    }
    running.signal("TERM");
    let (status, _, running) = running.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success());
    assert_clean("serve with Argo CD and Jenkins (stderr)", &running.stderr());
}

/// What a JWT signed as RS256 starts with (`{"alg":"RS256","typ":"JWT"}` in
/// base64url): any JWT the collector made, shown anywhere, contains it.
const JWT_HEADER: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";

/// The installation token the hostile App server mints (and then echoes).
const HOSTILE_MINTED: &str = "ghs_HostileMintedInstallationToken0123456789";

/// Checks that neither the App's key (any line of its PEM body), nor a JWT, nor
/// any of `tokens` appears in `text`.
fn assert_no_app_secret(what: &str, text: &str, tokens: &[String]) {
    let (pem, _) = crate::support::app_key();
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !text.contains(line),
            "{what}: a line of the App's key appears:\n{text}"
        );
    }
    assert!(!text.contains(JWT_HEADER), "{what}: a JWT appears:\n{text}");
    for token in tokens.iter().map(String::as_str).chain([HOSTILE_MINTED]) {
        assert!(
            !text.contains(token),
            "{what}: an installation token appears:\n{text}"
        );
    }
}

fn assert_no_app_secret_in(what: &str, output: &Output, tokens: &[String]) {
    assert_no_app_secret(what, &String::from_utf8_lossy(&output.stdout), tokens);
    assert_no_app_secret(what, &String::from_utf8_lossy(&output.stderr), tokens);
}

/// A fake GitHub for an App that echoes every `Authorization` it gets: the
/// installation lookup refuses `acme/unauthorized` with the JWT in its message,
/// finds an installation for the others, mints [`HOSTILE_MINTED`], and the data
/// routes echo it back in bodies, errors and links (those of [`hostile_server`]).
async fn hostile_app_server() -> String {
    async fn installation(
        axum::extract::Path((_, name)): axum::extract::Path<(String, String)>,
        headers: HeaderMap,
    ) -> Response {
        let auth = echoed(&headers);
        if name == "unauthorized" {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"message": format!("A JSON web token could not be decoded: {auth}")})),
            )
                .into_response();
        }
        axum::Json(serde_json::json!({"id": 77})).into_response()
    }
    async fn mint() -> Response {
        (
            StatusCode::CREATED,
            axum::Json(
                serde_json::json!({"token": HOSTILE_MINTED, "expires_at": "2099-01-01T00:00:00Z"}),
            ),
        )
            .into_response()
    }
    let data = hostile_server().await;
    let client = reqwest::Client::new();
    let proxy = move |headers: HeaderMap, uri: axum::http::Uri| {
        let client = client.clone();
        let data = data.clone();
        async move {
            let mut request = client.get(format!("{data}{uri}"));
            if let Some(auth) = headers.get(header::AUTHORIZATION) {
                request = request.header(header::AUTHORIZATION, auth.clone());
            }
            match request.send().await {
                Ok(response) => {
                    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
                    let link = response.headers().get(header::LINK).cloned();
                    let body = response.bytes().await.unwrap_or_default();
                    let mut out = (status, [(header::CONTENT_TYPE, "application/json")], body)
                        .into_response();
                    if let Some(link) = link {
                        out.headers_mut().insert(header::LINK, link);
                    }
                    out
                }
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    };
    let router = Router::new()
        .route("/repos/{owner}/{name}/installation", get(installation))
        .route(
            "/app/installations/{id}/access_tokens",
            axum::routing::post(mint),
        )
        .fallback(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// A GitHub App's private key, its JWTs and the installation tokens minted for
/// it never leak: the binary logging at trace (text and JSON) syncs through the
/// App (its key in a file, and in a variable), checks the configuration, syncs
/// against an installation GitHub removed and with a key GitHub does not know,
/// syncs a hostile server that echoes the JWT and the installation token in its
/// errors, bodies and links, and is given invalid key configurations; a daemon
/// running as the App serves `/metrics`, `/`, `/healthz`, `/readyz` and
/// `/report`, none showing them; the types holding the key are formatted into
/// panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_key_its_jwts_and_its_tokens_appear_in_no_log_error_or_page() {
    use crate::support::{app_config_text, app_key, sim_app, APP_ID};
    use dora_collector::sim::{Org, OrgSpec, SimOptions, SimServer};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dora.db");
    let key_file = write(dir.path(), "app.pem", &app_key().0);
    let now = {
        use dora_collector::daemon::{Clock, SystemClock};
        dora_collector::daemon::demo::demo_spec(2, 10, 1, SystemClock.now()).now
    };
    let org = Org::generate(&OrgSpec {
        repositories: 2,
        days: 10,
        now,
        ..OrgSpec::small(1)
    });
    let owner = org.owner.clone();
    let sim = SimServer::start(
        org,
        SimOptions {
            app: Some(sim_app(&[owner.as_str()], Duration::from_secs(3600))),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let names = sim_repos(&sim);
    let repos: Vec<_> = names
        .iter()
        .map(|(name, workflow)| {
            if *workflow {
                workflow_repo(name, "t", dora_collector::sim::DEPLOY_WORKFLOW_FILE)
            } else {
                repo(name, "t")
            }
        })
        .collect();
    let hostile = hostile_app_server().await;
    let hostile_repos: Vec<_> = [
        "odd",
        "unauthorized",
        "forbidden",
        "broken",
        "notjson",
        "away",
    ]
    .iter()
    .map(|n| format!("acme/{n}"))
    .collect();
    let hostile_entries: Vec<_> = hostile_repos.iter().map(|n| repo(n, "t")).collect();

    let run_app = |args: &'static [&'static str], file: std::path::PathBuf| {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .arg("--config")
            .arg(&file)
            .env("RUST_LOG", "trace")
            .env("GITHUB_APP_KEY", &app_key().0)
            .stdin(Stdio::null());
        tokio::task::spawn_blocking(move || command.output().expect("run dora-collector"))
    };
    for format in ["text", "json"] {
        for in_variable in [false, true] {
            let what = |case: &str| format!("{case} ({format}, key in a variable: {in_variable})");
            let with_key = |text: String| {
                if in_variable {
                    text.replace(
                        &format!("private_key_path = {:?}", key_file.display().to_string()),
                        "private_key = \"${GITHUB_APP_KEY}\"",
                    )
                } else {
                    text
                }
            };
            let good = with_key(
                app_config_text(
                    sim.base_url(),
                    &key_file,
                    &store,
                    &repos,
                    "api = \"graphql\"\n",
                ) + &log_table(format),
            );
            let file = write(dir.path(), "app.toml", &good);
            let output = run_app(&["sync", "--once"], file.clone()).await.unwrap();
            assert!(output.status.success(), "{output:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("TRACE") || stderr.contains("\"TRACE\""));
            assert_no_app_secret_in(&what("sync through the App"), &output, &sim.minted_tokens());

            let output = run_app(&["check-config"], file).await.unwrap();
            assert!(output.status.success(), "{output:?}");
            assert!(String::from_utf8_lossy(&output.stdout)
                .contains(&format!("as GitHub App {APP_ID}")));
            assert_no_app_secret_in(&what("check-config"), &output, &sim.minted_tokens());

            // Another App id: GitHub refuses the JWT (401), whose text is masked.
            let file = write(
                dir.path(),
                "other-app.toml",
                &good.replace(&format!("app_id = {APP_ID}"), "app_id = 1"),
            );
            let output = run_app(&["sync", "--once"], file).await.unwrap();
            assert_eq!(output.status.code(), Some(1), "{output:?}");
            assert!(String::from_utf8_lossy(&output.stderr).contains("github.app_id"));
            assert_no_app_secret_in(&what("JWT refused"), &output, &sim.minted_tokens());

            // The hostile server echoes the JWT and the minted token.
            let file = write(
                dir.path(),
                "hostile-app.toml",
                &with_key(
                    app_config_text(&hostile, &key_file, &store, &hostile_entries, "")
                        + &log_table(format),
                ),
            );
            let output = run_app(&["sync", "--once"], file).await.unwrap();
            assert_eq!(output.status.code(), Some(1), "{output:?}");
            assert_no_app_secret_in(&what("hostile App server"), &output, &[]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("Bearer [REDACTED]"), "{stderr}");
        }

        // Keys that are not RSA keys, given every way: refused, never shown.
        let (pem, _) = app_key();
        let ec_like = pem.replace("RSA PRIVATE KEY", "EC PRIVATE KEY");
        let truncated: String = pem.lines().take(8).collect::<Vec<_>>().join("\n")
            + "\n-----END RSA PRIVATE KEY-----\n";
        for (index, bad) in [ec_like, truncated].iter().enumerate() {
            let bad_file = write(dir.path(), "bad.pem", bad);
            let text =
                app_config_text(sim.base_url(), &bad_file, &store, &repos, "") + &log_table(format);
            let file = write(dir.path(), "bad-key.toml", &text);
            for args in [&["check-config"][..], &["sync", "--once"][..]] {
                let mut command = Command::new(BINARY);
                command
                    .args(args)
                    .arg("--config")
                    .arg(&file)
                    .env("RUST_LOG", "trace")
                    .stdin(Stdio::null());
                let output = tokio::task::spawn_blocking(move || command.output().unwrap())
                    .await
                    .unwrap();
                assert_eq!(
                    output.status.code(),
                    Some(2),
                    "{index} {args:?}: {output:?}"
                );
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert!(stderr.contains("github.private_key_path"), "{stderr}");
                for line in bad.lines().filter(|l| !l.starts_with("-----")) {
                    assert!(!stderr.contains(line), "{index}: {stderr}");
                }
            }
        }
    }

    // A daemon running as the App (GraphQL, so that both budgets are spent
    // through the installation): none of its pages shows the key, a JWT or a
    // token minted for it.
    let text = app_config_text(
        sim.base_url(),
        &key_file,
        &dir.path().join("daemon.db"),
        &repos,
        "api = \"graphql\"\n",
    );
    let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).unwrap();
    let minted_before = sim.minted_tokens().len();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut handle = dora_collector::daemon::start(
        config,
        listener,
        dora_collector::daemon::RunOptions::default(),
    )
    .await
    .unwrap();
    let report = handle.wait_for_cycles(1).await.unwrap();
    assert_eq!(report.failures().count(), 0, "{report:?}");
    assert!(
        sim.minted_tokens().len() > minted_before,
        "the daemon minted its own token"
    );
    for page in ["/metrics", "/", "/healthz", "/readyz", "/report"] {
        let response = reqwest::get(format!("http://{addr}{page}")).await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "{page}: {body}");
        assert_no_app_secret(
            &format!("{page} of the App's daemon"),
            &body,
            &sim.minted_tokens(),
        );
        if page == "/metrics" {
            assert!(
                body.contains("credential=\"installation:"),
                "read through the installation:\n{body}"
            );
        }
    }
    handle.shutdown().await.unwrap();

    // The installation removed: a clear error, nothing secret.
    sim.revoke_installation(9001);
    let file = write(
        dir.path(),
        "revoked.toml",
        &(app_config_text(sim.base_url(), &key_file, &store, &repos, "") + &log_table("text")),
    );
    let output = run_app(&["sync", "--once"], file).await.unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("install"));
    assert_no_app_secret_in("revoked installation", &output, &sim.minted_tokens());
    assert!(
        !sim.minted_tokens().is_empty(),
        "tokens were minted and looked for"
    );

    // Panics formatting what holds the key.
    let text = app_config_text(
        "http://127.0.0.1:1",
        &key_file,
        &store,
        &[repo("acme/api", "t")],
        "",
    );
    let config = Config::from_toml_str(&text, |_| Err(std::env::VarError::NotPresent)).unwrap();
    let source = GithubSource::new(config.github.as_ref().unwrap()).unwrap();
    for message in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{:?}", config.github),
        format!("{source:?}"),
        format!("{source:#?}"),
    ] {
        let payload = std::panic::catch_unwind(|| panic!("{message}")).unwrap_err();
        let printed = payload.downcast_ref::<String>().cloned().unwrap();
        assert_no_app_secret("panic message", &printed, &[]);
    }
}

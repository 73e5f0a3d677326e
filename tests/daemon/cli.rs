//! The real binary: `sync --once` (exit status, summary, the failing repository
//! named, no token printed) and `demo` (prints its URLs, says the data is
//! simulated, serves ready metrics, ignores SIGHUP, stops on SIGTERM within its
//! grace period even with a half-sent request open, and removes its store).

use crate::scenario::tiny;
use crate::support::{config_text, repo, workflow_repo, World};
use dora_collector::sim::SIM_TOKEN;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");

fn sync_once(config: &Path) -> Output {
    Command::new(BINARY)
        .args(["sync", "--once", "--config"])
        .arg(config)
        .env("GITHUB_TOKEN", SIM_TOKEN)
        .env_remove("RUST_LOG")
        .output()
        .expect("run dora-collector")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn sync_once_exits_0_with_a_summary_or_1_naming_the_failed_repository() {
    let world = World::new(tiny().org).await;
    let file = world.dir.path().join("dora.toml");
    let repos = [
        repo("acme/api", "payments"),
        workflow_repo("acme/web", "web", "deploy.yml"),
    ];
    let toml = config_text(
        world.sim.base_url(),
        "${GITHUB_TOKEN}",
        &world.store_path(),
        &repos,
        "",
    );
    std::fs::write(&file, toml).unwrap();
    let output = tokio::task::spawn_blocking({
        let file = file.clone();
        move || sync_once(&file)
    })
    .await
    .unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // (The binary runs on the real clock, so the simulation's history is older than
    // the lookback window: the sync reads only the base deployments.)
    assert!(stdout.starts_with("synced 2 repositories: "), "{stdout}");
    assert!(stdout.ends_with(" unreadable items skipped\n"), "{stdout}");
    // Not a terminal: plain log lines, one per repository.
    assert_eq!(stderr.matches("repository synced").count(), 2, "{stderr}");
    assert!(!stdout.contains(SIM_TOKEN) && !stderr.contains(SIM_TOKEN));

    let repos = [repo("acme/api", "payments"), repo("acme/gone", "payments")];
    let toml = config_text(
        world.sim.base_url(),
        "${GITHUB_TOKEN}",
        &world.store_path(),
        &repos,
        "",
    );
    std::fs::write(&file, toml).unwrap();
    let output = tokio::task::spawn_blocking(move || sync_once(&file))
        .await
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let last_lines: Vec<&str> = stderr.lines().rev().take(2).collect();
    assert_eq!(
        last_lines,
        vec![
            format!(
                "  acme/gone: not found (HTTP 404) at {}/repos/acme/gone/deployments?per_page=100: \
                 check the repository name and that the token can read it",
                world.sim.base_url()
            )
            .as_str(),
            "error: 1 of 2 repositories failed to sync:",
        ],
        "{stderr}"
    );
    assert!(!stderr.contains(SIM_TOKEN));
}

#[test]
fn demo_says_the_data_is_simulated_serves_it_and_cleans_up_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BINARY)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--repositories",
            "3",
            "--days",
            "20",
        ])
        .env("TMPDIR", tmp.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 && !line.contains("Ctrl-C") {
        banner.push_str(&line);
        line.clear();
    }
    assert!(banner.contains("the data is SIMULATED"), "{banner}");
    assert!(
        banner.contains("Nothing is read from GitHub or GitLab"),
        "{banner}"
    );
    assert!(banner.contains("on a built-in fake GitLab at"), "{banner}");
    let base = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:") && w.ends_with('/'))
        .expect("a URL to open")
        .trim_end_matches('/')
        .to_owned();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Readiness follows the first sync of the simulated organisation.
        let mut ready = false;
        for _ in 0..600 {
            let status = reqwest::get(format!("{base}/readyz"))
                .await
                .unwrap()
                .status();
            if status == 200 {
                ready = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(ready, "the demo became ready");
        let landing = reqwest::get(format!("{base}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(landing.contains("The data shown is simulated"), "{landing}");
        // A mixed organisation by default: some projects on the simulated GitLab,
        // and the landing page says where each repository is read from.
        assert!(
            landing.contains("<td>GitHub (Deployments API)</td>"),
            "{landing}"
        );
        assert!(landing.contains("<td>GitLab (pipelines)</td>"), "{landing}");
        let metrics = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("dora_org_deployments_total "), "{metrics}");
    });

    let pid = child.id().to_string();
    let signal = |name: &str| {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    // SIGHUP (a closed terminal) is ignored: the demo keeps serving.
    signal("HUP");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the demo"
    );
    let address = base.trim_start_matches("http://").to_owned();
    let mut half_sent = std::net::TcpStream::connect(&address).unwrap();
    std::io::Write::write_all(&mut half_sent, b"GET /metrics HTTP/1.1\r\nHost: x\r\n").unwrap();
    runtime.block_on(async {
        let status = reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "still serving after SIGHUP");
    });

    // A half-sent request does not hold up SIGTERM (the default grace period is
    // 10 s; nothing is in flight, so the demo stops at once).
    let stopping = std::time::Instant::now();
    signal("TERM");
    let status = child.wait().unwrap();
    let took = stopping.elapsed();
    assert!(status.success(), "graceful exit: {status:?}");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the temporary store is removed: {left:?}");
    drop(half_sent);
}

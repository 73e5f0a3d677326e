//! Unit tests of the configuration loader: defaults, the interfaces example, a file
//! setting every key, every validation rule (table-driven), problem collection, and
//! `validate` for configurations built in code.

use super::*;
use crate::dora::Window;
use secrecy::ExposeSecret;
use std::collections::HashMap;

const TOKEN: &str = "ghp_unitTestToken0123456789";

fn lookup(name: &str) -> Result<String, VarError> {
    match name {
        "GITHUB_TOKEN" => Ok(TOKEN.to_owned()),
        "EMPTY" => Ok(String::new()),
        _ => Err(VarError::NotPresent),
    }
}

fn load(text: &str) -> Result<Config, Vec<Problem>> {
    Config::from_toml_str(text, lookup)
}

fn problems(text: &str) -> Vec<Problem> {
    match load(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(problems) => problems,
    }
}

/// A valid file with `github` lines after the token and `repos` after the first
/// repository, and `head` before `[github]`.
fn doc(head: &str, github: &str, repos: &str) -> String {
    format!(
        "{head}\n[github]\ntoken = \"${{GITHUB_TOKEN}}\"\n{github}\n\
         [[github.repositories]]\nname = \"acme/api\"\n{repos}\n"
    )
}

const MINIMAL: &str = r#"
[github]
token = "${GITHUB_TOKEN}"

[[github.repositories]]
name = "acme/api"
"#;

/// The full example of the published configuration interface (every first-stage key),
/// verbatim: a file written from it must keep loading unchanged.
const INTERFACES_EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:9184"          # default 0.0.0.0:9184

[storage]
path = "./dora.db"                 # embedded SQLite (the default)

[metrics]
windows = ["7d", "30d", "90d"]     # the default

[github]
api_url = "https://api.github.com" # default; GitHub Enterprise Server: https://HOST/api/v3
token = "${GITHUB_TOKEN}"
poll_interval = "5m"               # default
lookback = "90d"                   # how far back the first sync reads; default 90d
production_environments = ["production"]
incident_labels = ["incident"]
rework_labels = ["hotfix"]
lead_time_start = "commit"         # commit | pr_first_commit | pr_merged
rollback_is_failure = true

[[github.repositories]]
name = "acme/api"
team = "payments"                  # optional; default "unassigned"

[[github.repositories]]
name = "acme/web"
team = "web"
# deployments from a GitHub Actions workflow instead of the Deployments API:
deployments = { from = "workflow_runs", workflow = "deploy.yml", branch = "main", environment = "production" }
"#;

#[test]
fn minimal_file_takes_every_default() {
    let config = load(MINIMAL).unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9184");
    assert_eq!(config.server.shutdown_grace_period.to_string(), "10s");
    assert_eq!(config.storage.path, PathBuf::from("./dora.db"));
    let windows: Vec<String> = config
        .metrics
        .windows
        .iter()
        .map(|w| w.to_string())
        .collect();
    assert_eq!(windows, ["7d", "30d", "90d"]);
    assert_eq!(
        config.metrics.thresholds.to_thresholds(),
        Thresholds::default()
    );
    let github = config.github.as_ref().unwrap();
    assert_eq!(github.api_url.as_str(), "https://api.github.com/");
    assert_eq!(github.token().unwrap().expose_secret(), TOKEN);
    assert_eq!(github.poll_interval.to_string(), "5m");
    assert_eq!(github.lookback.to_string(), "90d");
    assert_eq!(github.production_environments[0].as_str(), "production");
    assert_eq!(github.incident_labels[0].as_str(), "incident");
    assert_eq!(github.rework_labels[0].as_str(), "hotfix");
    assert_eq!(github.lead_time_start, LeadTimeStart::Commit);
    assert!(github.rollback_is_failure);
    let repo = &github.repositories[0];
    assert_eq!(repo.team.as_str(), "unassigned");
    assert_eq!(repo.deployments, DeploymentsConfig::DeploymentsApi);
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.log.level, LogLevel::Info);
}

#[test]
fn minimal_file_gives_the_engine_defaults() {
    let engine = load(MINIMAL).unwrap().engine_config();
    let mut expected = EngineConfig::default();
    expected.teams.insert(
        RepoName::parse("acme/api").unwrap(),
        Team::parse("unassigned").unwrap(),
    );
    assert_eq!(engine, expected);
}

#[test]
fn interfaces_example_loads() {
    let config = load(INTERFACES_EXAMPLE).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:9184");
    let web = &config.github.as_ref().unwrap().repositories[1];
    assert_eq!(web.name.as_str(), "acme/web");
    assert_eq!(web.team.as_str(), "web");
    assert_eq!(
        web.deployments,
        DeploymentsConfig::WorkflowRuns {
            workflow: WorkflowName::parse("deploy.yml").unwrap(),
            branch: BranchName::parse("main").unwrap(),
            environment: Environment::parse("production").unwrap(),
        }
    );
}

#[test]
fn engine_config_carries_every_setting() {
    let text = doc(
        "[metrics]\nwindows = [\"1d\", \"168h\"]\n\
         [metrics.thresholds]\nlead_time_seconds = [3600, \"1d\", 1e6]\n\
         change_failure_rate = [0.1, 0.2, 0.3]\n",
        "production_environments = [\"prod-eu\", \"Prod-US\"]\n\
         incident_labels = [\"sev1\", \"sev2\"]\nrework_labels = []\n\
         lead_time_start = \"pr_merged\"\nrollback_is_failure = false",
        "team = \"payments\"\n[[github.repositories]]\nname = \"Acme/Web\"",
    );
    let engine = load(&text).unwrap().engine_config();
    assert_eq!(
        engine.windows,
        [
            Window {
                label: "1d".to_owned(),
                seconds: 86_400
            },
            Window {
                label: "168h".to_owned(),
                seconds: 604_800
            },
        ]
    );
    let envs: Vec<&str> = engine
        .production_environments
        .iter()
        .map(|e| e.as_str())
        .collect();
    assert_eq!(envs, ["prod-eu", "Prod-US"]);
    assert_eq!(engine.incident_labels, ["sev1", "sev2"]);
    assert!(engine.rework_labels.is_empty());
    assert_eq!(engine.lead_time_start, LeadTimeStart::PrMerged);
    assert!(!engine.rollback_is_failure);
    assert_eq!(engine.thresholds.lead_time_seconds, [3600.0, 86_400.0, 1e6]);
    assert_eq!(engine.thresholds.change_failure_rate, [0.1, 0.2, 0.3]);
    assert_eq!(
        engine.thresholds.deployment_frequency_per_day,
        Thresholds::default().deployment_frequency_per_day
    );
    let teams: Vec<(&str, &str)> = engine
        .teams
        .iter()
        .map(|(repo, team)| (repo.as_str(), team.as_str()))
        .collect();
    assert_eq!(
        teams,
        [("acme/api", "payments"), ("acme/web", "unassigned")]
    );
}

/// Each case: a file, then the key path and a fragment of the message of one of its
/// problems.
fn invalid_cases() -> Vec<(String, &'static str, &'static str)> {
    let head = |h: &str| doc(h, "", "");
    let github = |g: &str| doc("", g, "");
    let repo = |r: &str| doc("", "", r);
    vec![
        // Unknown keys, at every level.
        (head("bogus = 1"), "bogus", "unknown key"),
        (head("[server]\nlisten_addr = \"127.0.0.1:1\""), "server.listen_addr", "did you mean \"listen\""),
        (head("[storage]\npth = \"x\""), "storage.pth", "did you mean \"path\""),
        (head("[metrics]\nwindow = [\"7d\"]"), "metrics.window", "did you mean \"windows\""),
        (head("[metrics.thresholds]\nlead_time = [1, 2, 3]"), "metrics.thresholds.lead_time", "unknown key"),
        (github("pol_interval = \"5m\""), "github.pol_interval", "did you mean \"poll_interval\""),
        (repo("teem = \"x\""), "github.repositories[0].teem", "did you mean \"team\""),
        (repo("deployments = { from = \"deployments\", extra = 1 }"), "github.repositories[0].deployments.extra", "unknown key"),
        (head("[log]\nlevl = \"info\""), "log.levl", "did you mean \"level\""),
        (head("\"odd key\" = 1"), "\"odd key\"", "unknown key"),
        // Wrong types.
        (head("server = 5"), "server", "expected a table, got an integer"),
        (head("[server]\nlisten = 9184"), "server.listen", "invalid type"),
        (head("[metrics]\nwindows = \"7d\""), "metrics.windows", "expected an array, got a string"),
        (github("rollback_is_failure = \"yes\""), "github.rollback_is_failure", "invalid type"),
        (
            "[github]\ntoken = 12345\n[[github.repositories]]\nname = \"acme/api\"\n".to_owned(),
            "github.token",
            "expected a string (the value is not shown)",
        ),
        (
            "[github]\ntoken = [\"a\"]\n[[github.repositories]]\nname = \"acme/api\"\n".to_owned(),
            "github.token",
            "expected a string (the value is not shown)",
        ),
        (head("[github.repositories]\nname = \"a/b\""), "github.repositories", "duplicate key"),
        // Values.
        (head("[server]\nlisten = \"localhost:9184\""), "server.listen", "an IP address and port"),
        (head("[storage]\npath = \"\""), "storage.path", "empty"),
        (head("[storage]\npath = \"x\"\nurl = \"postgres://u@db/x\""), "storage.url", "not both"),
        (head("[storage]\nurl = \"mysql://u@db/x\""), "storage.url", "postgres://"),
        (head("[storage]\nurl = \"postgres://u@db/x?sslmode=verify-full\""), "storage.url", "sslmode"),
        (head("[metrics]\nwindows = [\"7d\", \"5 minutes\"]"), "metrics.windows[1]", "got \"5 minutes\""),
        (head("[metrics]\nwindows = [\"0d\"]"), "metrics.windows[0]", "positive"),
        (head("[metrics]\nwindows = [7]"), "metrics.windows[0]", "got the number 7"),
        (github("api_url = \"ftp://example.com\""), "github.api_url", "http:// or https://"),
        (github("api_url = \"not a url\""), "github.api_url", "http:// or https://"),
        (github("api_url = \"https://user:pw@example.com\""), "github.api_url", "user name or password"),
        (github("api_url = \"https://example.com/?x=1\""), "github.api_url", "query"),
        (github("poll_interval = \"5 minutes\""), "github.poll_interval", "a duration like"),
        (github("lookback = \"99999999999999d\""), "github.lookback", "at most 36500d"),
        (github("production_environments = [\"prod\", \"\"]"), "github.production_environments[1]", "environment name"),
        (github("incident_labels = [\" incident\"]"), "github.incident_labels[0]", "label name"),
        (github("lead_time_start = \"merge\""), "github.lead_time_start", "unknown variant"),
        (repo("team = \"\""), "github.repositories[0].team", "team name"),
        (repo("team = \"pay\\u202Ements\""), "github.repositories[0].team", "bidirectional formatting"),
        (repo("team = \"\\u2067web\""), "github.repositories[0].team", "got \"\\u{2067}web\""),
        (github("production_environments = [\"prod\\u200F\"]"), "github.production_environments[0]", "bidirectional formatting"),
        (repo("deployments = { from = \"workflow_runs\", workflow = \"d.yml\", branch = \"main\", environment = \"\\u202Dprod\" }"), "github.repositories[0].deployments.environment", "bidirectional formatting"),
        (head("[log]\nformat = \"xml\""), "log.format", "unknown variant"),
        (head("[log]\nlevel = \"verbose\""), "log.level", "unknown variant"),
        (head("[metrics.thresholds]\nchange_failure_rate = [0.1, 0.2]"), "metrics.thresholds.change_failure_rate", "expected 3 values"),
        (head("[metrics.thresholds]\nrecovery_time_seconds = [\"1h\", -5, \"7d\"]"), "metrics.thresholds.recovery_time_seconds[1]", "positive number of seconds"),
        // Repositories.
        (github("token = \"other\""), "github.token", "duplicate key"),
        (repo("[[github.repositories]]\nname = \"acme\""), "github.repositories[1].name", "expected \"owner/name\", got \"acme\""),
        (repo("[[github.repositories]]\nteam = \"x\""), "github.repositories[1].name", "missing required key"),
        (repo("[[github.repositories]]\nname = \"ACME/Api\""), "github.repositories[1].name", "already configured in github.repositories[0]"),
        (
            "[github]\ntoken = \"t0ken-value\"\n".to_owned(),
            "github.repositories",
            "at least one",
        ),
        (
            "[github]\ntoken = \"t0ken-value\"\nrepositories = []\n".to_owned(),
            "github.repositories",
            "at least one",
        ),
        (
            "[github]\ntoken = \"t0ken-value\"\nrepositories = [\"acme/api\"]\n".to_owned(),
            "github.repositories[0]",
            "expected a table, got a string",
        ),
        (
            "[github]\n[[github.repositories]]\nname = \"acme/api\"\n".to_owned(),
            "github.token",
            "missing required key",
        ),
        ("[server]\n".to_owned(), "github", "missing required table"),
        // Webhooks.
        (head("[webhooks.github]\nsecret = \"too-short\""), "webhooks.github.secret", "at least 32 characters (the value is not shown)"),
        (head("[webhooks.github]\nsecret = \"with a space with a space with a space\""), "webhooks.github.secret", "spaces"),
        (head("[webhooks.github]\nsecret = 1234"), "webhooks.github.secret", "expected a string (the value is not shown)"),
        (head("[webhooks.github]"), "webhooks.github.secret", "missing required key"),
        (head("[webhooks.github]\nsecrets = \"x\""), "webhooks.github.secrets", "did you mean \"secret\""),
        (head("[webhooks.gitlab]\nsecret = \"x\""), "webhooks.gitlab", "unknown key"),
        (head("[webhooks]\ngithub = \"x\""), "webhooks.github", "expected a table"),
        (
            format!("[ingest]\n[[ingest.clients]]\nname = \"ci\"\ntoken = \"{}\"\nrepositories = [\"acme/*\"]\n[webhooks.github]\nsecret = \"{}\"\n", "t".repeat(32), "s".repeat(32)),
            "webhooks.github",
            "[webhooks.github] needs [github]",
        ),
        (
            format!("[ingest]\n[[ingest.clients]]\nname = \"ci\"\ntoken = \"{}\"\nrepositories = [\"acme/*\"]\n[webhooks.github]\nsecret = \"short\"\n", "t".repeat(32)),
            "webhooks.github",
            "[webhooks.github] needs [github]",
        ),
        // Deployments.
        (repo("deployments = { from = \"workflow_runs\", workflow = \"deploy.yml\", branch = \"main\" }"), "github.repositories[0].deployments.environment", "required with from = \"workflow_runs\""),
        (repo("deployments = { from = \"workflow_runs\" }"), "github.repositories[0].deployments.workflow", "required"),
        (repo("deployments = { workflow = \"deploy.yml\" }"), "github.repositories[0].deployments.workflow", "only allowed with from = \"workflow_runs\""),
        (repo("deployments = { from = \"releases\" }"), "github.repositories[0].deployments.from", "unknown variant"),
        (repo("deployments = { from = \"workflow_runs\", workflow = \".github/workflows/deploy.yml\", branch = \"main\", environment = \"production\" }"), "github.repositories[0].deployments.workflow", "no directory"),
        (repo("deployments = { from = \"workflow_runs\", workflow = \"deploy.yml\", branch = \"ma in\", environment = \"production\" }"), "github.repositories[0].deployments.branch", "branch name"),
        (repo("deployments = \"workflow_runs\""), "github.repositories[0].deployments", "expected a table"),
        // Rules between values.
        (head("[metrics]\nwindows = []"), "metrics.windows", "at least one window"),
        (head("[metrics]\nwindows = [\"7d\", \"30d\", \"168h\"]"), "metrics.windows[2]", "as long as metrics.windows[0]"),
        (head("[metrics]\nwindows = [\"7d\", \"7d\"]"), "metrics.windows[1]", "as long as"),
        (
            head("[metrics]\nwindows = [\"1d\",\"2d\",\"3d\",\"4d\",\"5d\",\"6d\",\"7d\",\"8d\",\"9d\",\"10d\",\"11d\"]"),
            "metrics.windows",
            "at most 10 windows",
        ),
        (github("lookback = \"30d\""), "github.lookback", "shorter than the longest window metrics.windows[2] (\"90d\")"),
        (github("production_environments = []"), "github.production_environments", "at least one environment"),
        (github("production_environments = [\"production\", \"Production\"]"), "github.production_environments[1]", "repeats"),
        (github("rework_labels = [\"hotfix\", \"HotFix\"]"), "github.rework_labels[1]", "repeats"),
        (github("incident_labels = [\"a\", \"b\", \"a\"]"), "github.incident_labels[2]", "repeats github.incident_labels[0]"),
        (head("[metrics.thresholds]\nlead_time_seconds = [\"7d\", \"1d\", \"30d\"]"), "metrics.thresholds.lead_time_seconds", "strictly increasing"),
        (head("[metrics.thresholds]\nrecovery_time_seconds = [3600, 3600, 7200]"), "metrics.thresholds.recovery_time_seconds", "strictly increasing"),
        (head("[metrics.thresholds]\ndeployment_frequency_per_day = [0.1, 1, 0.01]"), "metrics.thresholds.deployment_frequency_per_day", "strictly decreasing"),
        (head("[metrics.thresholds]\ndeployment_frequency_per_day = [1, 0.5, 0]"), "metrics.thresholds.deployment_frequency_per_day[2]", "positive"),
        (head("[metrics.thresholds]\nchange_failure_rate = [0.1, 0.5, 1.5]"), "metrics.thresholds.change_failure_rate[2]", "a rate from 0 to 1"),
        (head("[metrics.thresholds]\nchange_failure_rate = [0.1, 0.2, nan]"), "metrics.thresholds.change_failure_rate[2]", "a rate from 0 to 1"),
        // GitLab.
        (gitlab("pol_interval = \"5m\"", ""), "gitlab.pol_interval", "did you mean \"poll_interval\""),
        (gitlab("", "path = \"acme\""), "gitlab.projects[0].path", "a project path such as"),
        (gitlab("", "path = \"acme/a b\""), "gitlab.projects[0].path", "a project path such as"),
        (gitlab("", "team = \"x\""), "gitlab.projects[0].path", "missing required key"),
        (gitlab("", "path = \"acme/api\"\n[[gitlab.projects]]\npath = \"ACME/Api\""), "gitlab.projects[1].path", "already configured in gitlab.projects[0]"),
        (gitlab("", "path = \"acme/api\"\ndeployments = { from = \"pipelines\", ref = \"main\" }"), "gitlab.projects[0].deployments.environment", "required with from = \"pipelines\""),
        (gitlab("", "path = \"acme/api\"\ndeployments = { ref = \"main\" }"), "gitlab.projects[0].deployments.ref", "only allowed with from = \"pipelines\""),
        (gitlab("", "path = \"acme/api\"\ndeployments = { from = \"workflow_runs\" }"), "gitlab.projects[0].deployments.from", "unknown variant"),
        (gitlab("lookback = \"30d\"", "path = \"acme/api\""), "gitlab.lookback", "shorter than the longest window"),
        (gitlab("production_environments = [\"prod\", \"PROD\"]", "path = \"acme/api\""), "gitlab.production_environments[1]", "repeats"),
        (gitlab("api_url = \"https://user:pw@gitlab.example.com/api/v4\"", "path = \"acme/api\""), "gitlab.api_url", "user name or password"),
        ("[gitlab]\ntoken = \"t0ken-value\"\n".to_owned(), "gitlab.projects", "at least one"),
        ("[gitlab]\n[[gitlab.projects]]\npath = \"acme/api\"\n".to_owned(), "gitlab.token", "missing required key"),
        (
            format!("{}[gitlab]\ntoken = \"t0ken-value\"\n[[gitlab.projects]]\npath = \"Acme/API\"\n", doc("", "", "")),
            "gitlab.projects[0].path",
            "one code host",
        ),
        (
            "[gitlab]\ntoken = \"t0ken-value\"\n[[gitlab.projects]]\npath = \"acme/platform/api\"\n[[repositories]]\nname = \"acme/platform/api\"\n".to_owned(),
            "repositories[0].name",
            "is in [[gitlab.projects]] already",
        ),
    ]
}

/// A file with `[gitlab]` holding `keys` and one project holding `project`.
fn gitlab(keys: &str, project: &str) -> String {
    let project = if project.is_empty() {
        "path = \"acme/api\""
    } else {
        project
    };
    format!("[gitlab]\ntoken = \"t0ken-value\"\n{keys}\n[[gitlab.projects]]\n{project}\n")
}

#[test]
fn a_gitlab_section_takes_its_defaults_and_nested_paths() {
    let text = "[gitlab]\ntoken = \"glpat-0123456789abcdefghij\"\n\
                [[gitlab.projects]]\npath = \"Acme/Platform/Core/API\"\nteam = \"platform\"\n\
                [[gitlab.projects]]\npath = \"acme/web\"\n\
                deployments = { from = \"pipelines\", ref = \"main\", environment = \"prod\" }\n";
    let config = load(text).unwrap();
    let gitlab = config.gitlab.as_ref().unwrap();
    assert_eq!(
        gitlab.api_url.as_url().as_str(),
        "https://gitlab.com/api/v4"
    );
    assert_eq!(gitlab.poll_interval, defaults::poll_interval());
    assert_eq!(gitlab.projects[0].path.as_str(), "acme/platform/core/api");
    assert_eq!(
        gitlab.projects[0].deployments,
        GitlabDeploymentsConfig::DeploymentsApi
    );
    assert_eq!(
        gitlab.projects[1].deployments,
        GitlabDeploymentsConfig::Pipelines {
            git_ref: BranchName::parse("main").unwrap(),
            environment: Environment::parse("prod").unwrap(),
        }
    );
    assert!(config.github.is_none());
    let engine = config.engine_config();
    assert_eq!(engine.teams.len(), 2);
    assert_eq!(
        engine.teams[&RepoName::parse("acme/platform/core/api").unwrap()].as_str(),
        "platform"
    );
    assert_eq!(
        engine.production_environments,
        defaults::production_environments()
    );
    assert_eq!(config.synced_repositories().len(), 2);
    // With [github] too: each host's production environments for its own
    // repositories, one list of rework labels, the shorter interval.
    let both = format!(
        "{}[github]\ntoken = \"t0ken-value\"\npoll_interval = \"10m\"\n\
         production_environments = [\"live\"]\n[[github.repositories]]\nname = \"acme/gh\"\n",
        text.replace(
            "[gitlab]\n",
            "[gitlab]\npoll_interval = \"2m\"\nrework_labels = [\"Hotfix\", \"revert\"]\n"
        )
    );
    let config = load(&both).unwrap();
    let engine = config.engine_config();
    let names = |list: &[Environment]| {
        list.iter()
            .map(|e| e.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let of = |name: &str| names(engine.production_environments_of(&RepoName::parse(name).unwrap()));
    assert_eq!(of("acme/gh"), ["live"]);
    assert_eq!(of("acme/platform/core/api"), ["production"]);
    assert_eq!(of("acme/web"), ["production"]);
    assert_eq!(engine.rework_labels, ["hotfix", "revert"]);
    assert_eq!(config.poll_interval().to_string(), "2m");
    assert_eq!(config.synced_repositories().len(), 3);
}

#[test]
fn every_invalid_case_reports_its_path_and_message() {
    for (text, path, fragment) in invalid_cases() {
        let problems = problems(&text);
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        // Syntax errors (duplicate keys) have a line but no key path.
        let found = problems.iter().any(|p| {
            p.message.contains(fragment) && (p.path.is_none() || p.path.as_deref() == Some(path))
        });
        assert!(
            found,
            "expected {path}: …{fragment}… in\n{text}\ngot {rendered:#?}"
        );
        assert!(
            problems
                .iter()
                .all(|p| p.line.is_some() || p.message.starts_with("missing required table")),
            "every problem in the file is located: {rendered:#?}"
        );
        if std::env::var_os("SHOW_PROBLEMS").is_some() {
            eprintln!("{rendered:#?}");
        }
    }
}

/// A file that sets every key to a value other than its default: each one reaches
/// the `Config`, and the result passes `validate`.
#[test]
fn a_file_setting_every_key_builds_that_config() {
    let full = doc(
        "[server]\nlisten = \"[::1]:9000\"\nshutdown_grace_period = \"3s\"\n\
         [storage]\npath = \"/var/lib/dora.db\"\n\
         [metrics]\nwindows = [\"12h\", \"14d\"]\n[metrics.thresholds]\n\
         deployment_frequency_per_day = [2, 0.5, 0.1]\nlead_time_seconds = [\"2h\", 86400, \"3d\"]\n\
         change_failure_rate = [0, 0.2, 0.4]\nrecovery_time_seconds = [\"30m\", \"6h\", \"2d\"]\n\
         [log]\nformat = \"json\"\nlevel = \"debug\"",
        "api_url = \"http://127.0.0.1:8080/api/v3\"\npoll_interval = \"30s\"\nlookback = \"14d\"\n\
         production_environments = [\"prod\"]\nincident_labels = []\nrework_labels = [\"rework\", \"hotfix\"]\n\
         lead_time_start = \"pr_first_commit\"\nrollback_is_failure = false\napi = \"rest\"",
        "team = \"core\"\n[[github.repositories]]\nname = \"acme/web\"\n\
         deployments = { from = \"deployments\" }\n[[github.repositories]]\nname = \"acme/ops\"\n\
         deployments = { from = \"workflow_runs\", workflow = \"123\", branch = \"release/v1\", environment = \"prod\" }",
    );
    let config = load(&full).unwrap();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(config.server.listen.to_string(), "[::1]:9000");
    assert_eq!(config.server.shutdown_grace_period.to_string(), "3s");
    assert_eq!(config.storage.path, PathBuf::from("/var/lib/dora.db"));
    let windows: Vec<String> = config
        .metrics
        .windows
        .iter()
        .map(|w| w.to_string())
        .collect();
    assert_eq!(windows, ["12h", "14d"]);
    assert_eq!(
        config.metrics.thresholds.to_thresholds(),
        Thresholds {
            deployment_frequency_per_day: [2.0, 0.5, 0.1],
            lead_time_seconds: [7_200.0, 86_400.0, 259_200.0],
            change_failure_rate: [0.0, 0.2, 0.4],
            recovery_time_seconds: [1_800.0, 21_600.0, 172_800.0],
        }
    );
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.level, LogLevel::Debug);
    let github = config.github.as_ref().unwrap();
    assert_eq!(github.api_url.as_str(), "http://127.0.0.1:8080/api/v3");
    assert_eq!(github.token().unwrap().expose_secret(), TOKEN);
    assert_eq!(github.poll_interval.to_string(), "30s");
    assert_eq!(github.lookback.to_string(), "14d");
    let envs: Vec<&str> = github
        .production_environments
        .iter()
        .map(Environment::as_str)
        .collect();
    assert_eq!(envs, ["prod"]);
    assert!(github.incident_labels.is_empty());
    let rework: Vec<&str> = github.rework_labels.iter().map(LabelName::as_str).collect();
    assert_eq!(rework, ["rework", "hotfix"]);
    assert_eq!(github.lead_time_start, LeadTimeStart::PrFirstCommit);
    assert!(!github.rollback_is_failure);
    assert_eq!(github.api, GithubApi::Rest);
    let repositories: Vec<(&str, &str, &DeploymentsConfig)> = github
        .repositories
        .iter()
        .map(|r| (r.name.as_str(), r.team.as_str(), &r.deployments))
        .collect();
    assert_eq!(
        repositories,
        [
            ("acme/api", "core", &DeploymentsConfig::DeploymentsApi),
            ("acme/web", "unassigned", &DeploymentsConfig::DeploymentsApi),
            (
                "acme/ops",
                "unassigned",
                &DeploymentsConfig::WorkflowRuns {
                    workflow: WorkflowName::parse("123").unwrap(),
                    branch: BranchName::parse("release/v1").unwrap(),
                    environment: Environment::parse("prod").unwrap(),
                }
            ),
        ]
    );
}

#[test]
fn every_problem_is_reported_in_line_order() {
    let text = "\
[server]
listen = \"nowhere\"
colour = \"blue\"

[metrics]
windows = [\"7d\", \"1 week\", \"168h\"]

[github]
token = \"${GITHUB_TOKEN}\"
poll_interval = \"0m\"
lookback = \"1d\"
tokn = \"x\"

[[github.repositories]]
name = \"acme\"

[[github.repositories]]
name = \"acme/api\"

[[github.repositories]]
name = \"ACME/API\"
deployments = { from = \"workflow_runs\", workflow = \"deploy\" }
";
    let rendered: Vec<String> = problems(text).iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "line 2: server.listen: expected an IP address and port such as \"0.0.0.0:9184\" \
             or \"[::1]:9184\", got \"nowhere\"",
            "line 3: server.colour: unknown key (expected one of: listen, shutdown_grace_period, grafana_url)",
            "line 6: metrics.windows[1]: expected a duration like \"30s\", \"5m\", \"2h\" or \
             \"90d\", got \"1 week\"",
            "line 6: metrics.windows[2]: \"168h\" is as long as metrics.windows[0] (\"7d\"); \
             each window needs its own length",
            "line 10: github.poll_interval: expected a positive duration, got \"0m\"",
            "line 11: github.lookback: \"1d\" is shorter than the longest window \
             metrics.windows[2] (\"168h\"); the first sync would compute that window from \
             partial history",
            "line 12: github.tokn: unknown key, did you mean \"token\"?",
            "line 15: github.repositories[0].name: expected \"owner/name\", got \"acme\"",
            "line 21: github.repositories[2].name: \"acme/api\" is already configured in \
             github.repositories[1]",
            "line 22: github.repositories[2].deployments.workflow: expected a workflow file \
             name such as \"deploy.yml\" (no directory) or a numeric workflow id, got \"deploy\"",
            "line 22: github.repositories[2].deployments.branch: required with from = \
             \"workflow_runs\"",
            "line 22: github.repositories[2].deployments.environment: required with from = \
             \"workflow_runs\"",
        ]
    );
}

#[test]
fn syntax_errors_and_missing_variables_stop_before_the_schema() {
    let syntax = problems("[server\nlisten = 1\n[github]\ntoken = \"a\" \"b\"\n");
    assert!(syntax.len() >= 2, "{syntax:?}");
    assert_eq!(syntax[0].line, Some(1));
    assert!(syntax
        .iter()
        .all(|p| p.path.is_none() && p.message.starts_with("TOML syntax error at column")));
    assert!(syntax.iter().any(|p| p.line == Some(4)), "{syntax:?}");

    let missing = problems("bogus = 1\n[github]\ntoken = \"${NOPE}\"\nx = \"${ALSO_NOPE}\"\n");
    let rendered: Vec<String> = missing.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "line 3: environment variable NOPE is not set",
            "line 4: environment variable ALSO_NOPE is not set",
        ]
    );
}

#[test]
fn an_empty_variable_is_set_but_an_empty_token_is_reported() {
    let problems = problems(&doc("", "", "").replace("${GITHUB_TOKEN}", "${EMPTY}"));
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        "line 3: github.token: must not be empty"
    );
}

#[test]
fn the_token_never_appears_in_debug_or_problems() {
    let config = load(MINIMAL).unwrap();
    let debug = format!("{config:?} {:?} {:#?}", config.github, config);
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("REDACTED"));

    let misplaced = [
        doc(
            "",
            "",
            "team = \"\"\n[[github.repositories]]\nname = \"${GITHUB_TOKEN}\"",
        ),
        doc("[server]\nlisten = \"${GITHUB_TOKEN}\"", "", ""),
        doc("", "api_url = \"${GITHUB_TOKEN}\"", ""),
        doc("", "api_url = \"https://${GITHUB_TOKEN}@example.com\"", ""),
        doc(
            "",
            "api_url = \"https://example.com/?t=${GITHUB_TOKEN}\"",
            "",
        ),
        doc("", "incident_labels = [\"${GITHUB_TOKEN} \"]", ""),
        doc("[metrics]\nwindows = [\"${GITHUB_TOKEN}\"]", "", ""),
        doc("", "", "deployments = { from = \"${GITHUB_TOKEN}\" }"),
        doc("", "", "${GITHUB_TOKEN} = 1"),
        doc("", "", "").replace("\"${GITHUB_TOKEN}\"", "\"${GITHUB_TOKEN}\" x"),
        doc("", "", "").replace("\"${GITHUB_TOKEN}\"", "\"${GITHUB_TOKEN} x\""),
        doc("", "", "").replace("\"${GITHUB_TOKEN}\"", "${GITHUB_TOKEN}"),
        doc("", "", "").replace("\"${GITHUB_TOKEN}\"", "\"${GITHUB_TOKEN}\\q\""),
    ];
    for text in misplaced {
        let problems = problems(&text);
        for problem in &problems {
            let rendered = problem.to_string();
            assert!(!rendered.contains(TOKEN), "{rendered}\nfrom\n{text}");
            assert!(
                !rendered.contains("unitTestToken"),
                "{rendered}\nfrom\n{text}"
            );
        }
    }
}

const WEBHOOK_SECRET: &str = "whsec-unit-test-0123456789abcdef0123456789";

#[test]
fn a_github_webhook_takes_its_secret_and_never_shows_it() {
    let lookup = |name: &str| match name {
        "GITHUB_WEBHOOK_SECRET" => Ok(WEBHOOK_SECRET.to_owned()),
        other => lookup(other),
    };
    let text = doc(
        "[webhooks.github]\nsecret = \"${GITHUB_WEBHOOK_SECRET}\"",
        "",
        "",
    );
    let config = Config::from_toml_str(&text, lookup).unwrap();
    let hook = config.webhooks.github.as_ref().expect("[webhooks.github]");
    assert_eq!(hook.secret.expose_secret(), WEBHOOK_SECRET);
    assert!(config.validate().is_ok());
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains(WEBHOOK_SECRET), "{debug}");
    // Without the table, no webhooks; an empty [webhooks] is allowed.
    assert!(load(MINIMAL).unwrap().webhooks.github.is_none());
    assert!(load(&doc("[webhooks]", "", ""))
        .unwrap()
        .webhooks
        .github
        .is_none());
    // The secret pasted into another key is redacted from that key's problem.
    let misplaced = doc(
        "[webhooks.github]\nsecret = \"${GITHUB_WEBHOOK_SECRET}\"\n[server]\nlisten = \"${GITHUB_WEBHOOK_SECRET}\"",
        "",
        "",
    );
    let problems = Config::from_toml_str(&misplaced, lookup).unwrap_err();
    let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(!rendered.is_empty());
    for problem in &rendered {
        assert!(!problem.contains(WEBHOOK_SECRET), "{problem}");
    }
    // Built in code: the rules apply too.
    let mut config = load(MINIMAL).unwrap();
    config.webhooks.github = Some(GithubWebhookConfig {
        secret: SecretString::from("short"),
    });
    config.github = None;
    let problems = config.validate().unwrap_err();
    let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        rendered.iter().any(|p| p.contains("needs [github]")),
        "{rendered:?}"
    );
    assert!(
        rendered
            .iter()
            .any(|p| p.contains("at least 32 characters")),
        "{rendered:?}"
    );
}

#[test]
fn unknown_keys_are_all_reported() {
    let text = doc(
        "a = 1\nb = 2\n[server]\nc = 3\n[extra]\nd = 4",
        "e = 5",
        "f = 6\ndeployments = { g = 7 }",
    );
    let paths: Vec<String> = problems(&text)
        .into_iter()
        .filter(|p| p.message.starts_with("unknown key"))
        .filter_map(|p| p.path)
        .collect();
    assert_eq!(
        paths,
        [
            "a",
            "b",
            "server.c",
            "extra",
            "github.e",
            "github.repositories[0].f",
            "github.repositories[0].deployments.g"
        ]
    );
}

#[test]
fn thresholds_accept_seconds_and_durations_and_default_per_key() {
    let text = doc(
        "[metrics.thresholds]\nrecovery_time_seconds = [1800, \"2h\", 86400.5]",
        "",
        "",
    );
    let thresholds = load(&text).unwrap().metrics.thresholds.to_thresholds();
    assert_eq!(thresholds.recovery_time_seconds, [1800.0, 7200.0, 86400.5]);
    assert_eq!(
        thresholds.lead_time_seconds,
        Thresholds::default().lead_time_seconds
    );
}

#[test]
fn validate_checks_configs_built_in_code() {
    let mut config = load(MINIMAL).unwrap();
    assert_eq!(config.validate(), Ok(()));
    let github = config.github.as_mut().unwrap();
    github.repositories.push(github.repositories[0].clone());
    config
        .metrics
        .windows
        .push(Duration::parse("100d").unwrap());
    config.metrics.thresholds.change_failure_rate = [0.3, 0.2, 0.1];
    let paths: Vec<Option<String>> = config
        .validate()
        .unwrap_err()
        .into_iter()
        .map(|p| p.path)
        .collect();
    assert_eq!(
        paths,
        [
            Some("metrics.thresholds.change_failure_rate".to_owned()),
            Some("github.lookback".to_owned()),
            Some("github.repositories[1].name".to_owned()),
        ]
    );
}

#[test]
fn value_types_accept_what_github_accepts() {
    for ok in ["deploy.yml", "Deploy Prod.yaml", "1234567"] {
        assert!(WorkflowName::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["deploy", ".yml", "", "a/b.yml", " deploy.yml", "12a"] {
        assert!(WorkflowName::parse(bad).is_err(), "{bad}");
    }
    for ok in ["main", "release/v1.2", "feature-x_y"] {
        assert!(BranchName::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "", "-x", "/main", "main/", "a..b", "a b", "x.lock", "a~1", "a:b", "@", "a@{1}",
    ] {
        assert!(BranchName::parse(bad).is_err(), "{bad}");
    }
    for ok in [
        "https://api.github.com",
        "http://127.0.0.1:8080",
        "https://ghe.example/api/v3/",
    ] {
        assert!(ApiUrl::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "api.github.com",
        "file:///x",
        "mailto:a@b",
        "https://",
        "https://a@b.c",
    ] {
        assert!(ApiUrl::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn load_reports_files_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let error = Config::load_with(&missing, lookup).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("missing.toml"), "{error}");

    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, b"# ok\n# ok\nname = \"\xff\"\n").unwrap();
    let error = Config::load_with(&binary, lookup).unwrap_err();
    let ConfigError::Invalid { problems, .. } = &error else {
        panic!("{error}")
    };
    assert_eq!(
        problems[0].to_string(),
        "line 3: the file is not valid UTF-8"
    );

    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]).unwrap();
    let error = Config::load_with(&huge, lookup).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error}");

    let good = dir.path().join("good.toml");
    std::fs::write(&good, MINIMAL).unwrap();
    let vars: HashMap<&str, &str> = [("GITHUB_TOKEN", "from-map")].into();
    let config = Config::load_with(&good, |name| {
        vars.get(name)
            .map(|v| v.to_string())
            .ok_or(VarError::NotPresent)
    })
    .unwrap();
    assert_eq!(
        config
            .github
            .as_ref()
            .unwrap()
            .token()
            .unwrap()
            .expose_secret(),
        "from-map"
    );
}

/// The documentation derives from the one schema: every key the loader knows has a
/// row in `docs/configuration.md` (`| `github.lookback` |`) or, for a table, a
/// heading (`[server]`, `[[github.repositories]]`), and every documented key or table
/// is one the loader knows.
#[test]
fn the_documentation_lists_exactly_the_keys_of_the_schema() {
    let docs = include_str!("../../docs/configuration.md");
    let schema = reader::schema_paths();
    assert!(schema.len() > 20, "{schema:?}");
    let rows: Vec<&str> = docs
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once("` |").map(|(key, _)| key))
        .collect();
    let tables: Vec<&str> = docs
        .lines()
        .filter(|line| line.starts_with('#'))
        .filter_map(|line| line.split_once("`[").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once("]`").map(|(table, _)| table))
        .map(|table| table.trim_start_matches('[').trim_end_matches(']'))
        .collect();
    for path in &schema {
        assert!(
            rows.contains(&path.as_str()) || tables.contains(&path.as_str()),
            "docs/configuration.md does not document `{path}`"
        );
    }
    for documented in rows.iter().chain(&tables) {
        assert!(
            schema.iter().any(|path| path == documented),
            "docs/configuration.md documents `{documented}`, which the loader does not know"
        );
    }
}

/// The variables of the injection tests: each value is TOML that would change the
/// file if it were pasted into the text.
fn hostile_lookup(name: &str) -> Result<String, VarError> {
    let value = match name {
        "GITHUB_TOKEN" => TOKEN,
        "TOKEN_WITH_KEY" => "x\", poll_interval = \"1s",
        "TOKEN_WITH_COMMENT" => "abc\"#x",
        "TOKEN_WITH_SPACED_COMMENT" => "abc\" # x",
        "REPOSITORY_WITH_ANOTHER" => "acme/api\" }, { name = \"acme/billing",
        "TEAM_WITH_ESCAPES" => "pay\\u0041\\t\\\"",
        "TEAM_WITH_TABLE" => "web\"\n[server]\nlisten = \"0.0.0.0:1",
        "TRUE" => "true",
        "SECONDS" => "3600",
        _ => return Err(VarError::NotPresent),
    };
    Ok(value.to_owned())
}

#[test]
fn a_variable_is_only_ever_the_string_it_stands_in() {
    let load = |text: &str| Config::from_toml_str(text, hostile_lookup);
    // Kept literal: quotes, `#` and backslashes are text of the value.
    let config =
        load(&doc("", "", "").replace("${GITHUB_TOKEN}", "${TOKEN_WITH_COMMENT}")).unwrap();
    assert_eq!(
        config
            .github
            .as_ref()
            .unwrap()
            .token()
            .unwrap()
            .expose_secret(),
        "abc\"#x"
    );
    let config = load(&doc("", "", "team = \"${TEAM_WITH_ESCAPES}\"")).unwrap();
    assert_eq!(
        config.github.as_ref().unwrap().repositories[0]
            .team
            .as_str(),
        "pay\\u0041\\t\\\""
    );
    // A variable next to text, in a list, in an inline table.
    let config = load(&doc(
        "",
        "production_environments = [\"prod-${TRUE}\"]",
        "deployments = { from = \"workflow_runs\", workflow = \"${SECONDS}\", branch = \"b\", environment = \"e\" }",
    ))
    .unwrap();
    assert_eq!(
        config.github.as_ref().unwrap().production_environments[0].as_str(),
        "prod-true"
    );
    assert!(matches!(
        &config.github.as_ref().unwrap().repositories[0].deployments,
        DeploymentsConfig::WorkflowRuns { workflow, .. } if workflow.as_str() == "3600"
    ));

    // Refused, naming the key, and nothing was injected.
    let cases = [
        (doc("", "", "").replace("${GITHUB_TOKEN}", "${TOKEN_WITH_KEY}"), "github.token"),
        (doc("", "", "").replace("${GITHUB_TOKEN}", "${TOKEN_WITH_SPACED_COMMENT}"), "github.token"),
        (
            doc("", "", "").replace("name = \"acme/api\"", "name = \"${REPOSITORY_WITH_ANOTHER}\""),
            "github.repositories[0].name",
        ),
        (
            "[github]\ntoken = \"t0ken\"\nrepositories = [{ name = \"${REPOSITORY_WITH_ANOTHER}\" }]\n"
                .to_owned(),
            "github.repositories[0].name",
        ),
        (doc("", "", "team = \"${TEAM_WITH_TABLE}\""), "github.repositories[0].team"),
    ];
    for (text, path) in cases {
        let problems = load(&text).unwrap_err();
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 1, "{rendered:#?}\n{text}");
        let problem = &problems[0];
        if path == "github.repositories[0].team" {
            // A line break is refused before any key is read.
            assert_eq!(
                problem.message,
                "environment variable TEAM_WITH_TABLE contains a line break"
            );
        } else {
            assert_eq!(problem.path.as_deref(), Some(path), "{rendered:#?}");
        }
        assert!(!rendered[0].contains("poll_interval = "), "{rendered:#?}");
    }
    // The repository value stays one repository.
    let problems = load(&doc("", "", "").replace(
        "name = \"acme/api\"",
        "name = \"${REPOSITORY_WITH_ANOTHER}\"",
    ))
    .unwrap_err();
    assert!(
        problems[0]
            .message
            .starts_with("expected \"owner/name\", got \"acme/api\\\" }"),
        "{problems:?}"
    );
}

#[test]
fn references_in_keys_outside_strings_or_of_another_type_are_refused_by_name() {
    let load = |text: &str| Config::from_toml_str(text, hostile_lookup);
    let rendered = |text: &str| -> Vec<String> {
        load(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        rendered(&doc("", "", "\"${TRUE}\" = 1")),
        [
            "line 7: github.repositories[0].\"${TRUE}\": a `${...}` reference in a key: \
          environment variables are expanded only inside string values, never in keys"
        ]
    );
    assert_eq!(
        rendered(&doc("", "rollback_is_failure = ${TRUE}", "")),
        [
            "line 4: `${TRUE}` at column 23 is outside a string: environment variables are \
          expanded only inside quoted string values (`key = \"${TRUE}\"`), never in keys or \
          unquoted values, so that a variable can never become a key, a number or more TOML"
        ]
    );
    let bare_key = rendered(&doc("", "", "${TRUE} = 1"));
    assert_eq!(bare_key.len(), 1, "{bare_key:?}");
    assert!(
        bare_key[0].starts_with("line 7: `${TRUE}` at column 1 is outside a string"),
        "{bare_key:?}"
    );
    let problems = rendered(&doc("", "rollback_is_failure = \"${TRUE}\"", ""));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .starts_with("line 4: github.rollback_is_failure: invalid type: string \"true\"")
            && problems[0].ends_with(
                "(${TRUE} is expanded inside the string and stays a string; a variable never \
                 changes a value's type)"
            ),
        "{problems:?}"
    );
    // Comments are not expanded: an unset variable there is no problem.
    assert!(load(&doc("# ${NOT_SET_ANYWHERE}", "", "")).is_ok());
    // `$${` is a literal `${`.
    let config = load(&doc("", "", "team = \"$${TRUE}\"")).unwrap();
    assert_eq!(
        config.github.as_ref().unwrap().repositories[0]
            .team
            .as_str(),
        "${TRUE}"
    );
}

#[test]
fn a_missing_variable_is_reported_with_the_syntax_errors() {
    let text = "[github]\ntoken = \"${NOPE}\"\nlisten = \n";
    let rendered: Vec<String> = problems(text).iter().map(ToString::to_string).collect();
    assert_eq!(rendered.len(), 2, "{rendered:#?}");
    assert_eq!(rendered[0], "line 2: environment variable NOPE is not set");
    assert!(
        rendered[1].starts_with("line 3: TOML syntax error"),
        "{rendered:#?}"
    );
}

#[test]
fn an_error_the_parser_repeats_is_reported_once() {
    let deep = format!("x = {}\n", "[".repeat(200_000));
    let rendered: Vec<String> = problems(&deep).iter().map(ToString::to_string).collect();
    let unique: std::collections::BTreeSet<&String> = rendered.iter().collect();
    assert_eq!(unique.len(), rendered.len(), "{rendered:#?}");
    assert!(rendered.len() <= 3, "{rendered:#?}");
}

#[test]
fn the_push_apis_production_environments_are_those_of_repositories_no_code_host_reads() {
    let config = load(
        "[github]\ntoken = \"t\"\nproduction_environments = [\"live\"]\n\
         [[github.repositories]]\nname = \"acme/api\"\n\
         [ingest]\nproduction_environments = [\"prod\", \"prod-eu\"]\n\
         [[ingest.clients]]\nname = \"ci\"\ntoken = \"0123456789abcdef0123456789abcdef\"\n\
         repositories = [\"acme/*\"]\n\
         [[repositories]]\nname = \"acme/billing\"\n",
    )
    .unwrap();
    let engine = config.engine_config();
    let names = |list: &[Environment]| {
        list.iter()
            .map(|e| e.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let repo = |name: &str| RepoName::parse(name).unwrap();
    assert_eq!(
        names(engine.production_environments_of(&repo("acme/api"))),
        ["live"]
    );
    assert_eq!(
        names(engine.production_environments_of(&repo("acme/billing"))),
        ["prod", "prod-eu"]
    );
    // A pushed repository listed nowhere.
    assert_eq!(
        names(engine.production_environments_of(&repo("acme/other"))),
        ["prod", "prod-eu"]
    );
    // Without the key, the push API's list is the default and GitHub's applies
    // to GitHub's repositories only.
    let config = load(
        "[ingest]\n[[ingest.clients]]\nname = \"ci\"\n\
         token = \"0123456789abcdef0123456789abcdef\"\nrepositories = [\"acme/*\"]\n",
    )
    .unwrap();
    let engine = config.engine_config();
    assert_eq!(names(&engine.production_environments), ["production"]);
    assert!(engine.production_by_repository.is_empty());
}

/// An RSA key pair for the GitHub App tests, made once: its private key as
/// GitHub downloads it (PKCS#1 PEM) and as PKCS#8.
fn app_pems() -> &'static (String, String) {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
    static PEMS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    PEMS.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        (
            key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string(),
            key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        )
    })
}

/// A line of the key's base64 body: what must never be printed.
fn key_line(pem: &str) -> &str {
    pem.lines().nth(3).unwrap()
}

fn app_doc(auth: &str) -> String {
    format!("[github]\n{auth}\n[[github.repositories]]\nname = \"acme/api\"\n")
}

#[test]
fn a_github_app_authenticates_with_its_key_from_a_file_a_value_or_a_variable() {
    let (pkcs1, pkcs8) = app_pems();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.pem");
    std::fs::write(&file, pkcs1).unwrap();
    let pkcs8_file = dir.path().join("app8.pem");
    std::fs::write(&pkcs8_file, pkcs8).unwrap();
    let one_line = pkcs1.replace('\n', "\\n");
    let env = |name: &str| match name {
        "GITHUB_APP_KEY" => Ok(pkcs1.clone()),
        "ONE_LINE_KEY" => Ok(one_line.clone()),
        _ => Err(VarError::NotPresent),
    };
    let texts = [
        app_doc(&format!(
            "app_id = 42\nprivate_key_path = {:?}",
            file.display().to_string()
        )),
        app_doc(&format!(
            "app_id = 42\nprivate_key_path = {:?}",
            pkcs8_file.display().to_string()
        )),
        app_doc(&format!("app_id = 42\nprivate_key = '''\n{pkcs1}'''")),
        app_doc("app_id = 42\nprivate_key = \"${GITHUB_APP_KEY}\""),
        app_doc("app_id = 42\nprivate_key = \"${ONE_LINE_KEY}\""),
    ];
    let mut keys = Vec::new();
    for text in &texts {
        let config = Config::from_toml_str(text, env).unwrap_or_else(|p| panic!("{p:?}\n{text}"));
        let github = config.github.as_ref().unwrap();
        let GithubAuth::App(app) = &github.auth else {
            panic!("{text}")
        };
        assert_eq!(app.app_id, 42);
        assert!(github.token().is_none());
        let debug = format!("{config:?}{config:#?}");
        assert!(!debug.contains(key_line(pkcs1)), "{debug}");
        assert!(debug.contains("AppPrivateKey([REDACTED])"), "{debug}");
        keys.push(app.private_key.clone());
    }
    // Every form is the same key pair.
    assert!(keys.windows(2).all(|pair| pair[0] == pair[1]));
}

#[test]
fn app_keys_that_are_missing_doubled_or_not_rsa_are_refused_without_showing_them() {
    let (pkcs1, _) = app_pems();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.pem");
    std::fs::write(&good, pkcs1).unwrap();
    let good = format!("private_key_path = {:?}", good.display().to_string());
    let ec = "-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIBsecretEC\\n-----END EC PRIVATE KEY-----";
    let truncated =
        pkcs1.lines().take(10).collect::<Vec<_>>().join("\\n") + "\\n-----END RSA PRIVATE KEY-----";
    let missing = dir.path().join("missing.pem");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("token = \"t0ken-value\"\napp_id = 42\n{good}"),
            "github.app_id",
            "github.token and github.app_id are both set",
        ),
        (
            "app_id = 42".to_owned(),
            "github.private_key_path",
            "missing required key (github.app_id needs the App's private key",
        ),
        (
            good.clone(),
            "github.app_id",
            "missing required key (a GitHub App's private key needs its App id)",
        ),
        (
            format!("app_id = 42\n{good}\nprivate_key = \"x\""),
            "github.private_key",
            "both set",
        ),
        (
            format!("app_id = 0\n{good}"),
            "github.app_id",
            "must be a positive App id",
        ),
        (
            "app_id = 42\nprivate_key = \"ghp_notAKeyAtAll0123456789\"".to_owned(),
            "github.private_key",
            "is not a private key in PEM form",
        ),
        (
            format!("app_id = 42\nprivate_key = \"{ec}\""),
            "github.private_key",
            "is an elliptic-curve (EC) private key, not an RSA private key",
        ),
        (
            format!("app_id = 42\nprivate_key = \"{truncated}\""),
            "github.private_key",
            "is not a usable RSA private key",
        ),
        (
            format!(
                "app_id = 42\nprivate_key_path = {:?}",
                missing.display().to_string()
            ),
            "github.private_key_path",
            "cannot read",
        ),
    ];
    for (auth, path, message) in cases {
        let text = app_doc(&auth);
        let problems = problems(&text);
        assert!(
            problems
                .iter()
                .any(|p| p.path.as_deref() == Some(path) && p.message.contains(message)),
            "{text}\nexpected {path}: {message}\ngot {problems:?}"
        );
        let shown = format!("{problems:?}");
        for secret in [
            "secretEC",
            "t0ken-value",
            "ghp_notAKeyAtAll",
            key_line(pkcs1),
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

#[test]
fn organisations_take_their_defaults_and_need_no_repository_list() {
    let config = load(
        "[github]\ntoken = \"${GITHUB_TOKEN}\"\n\n[[github.organizations]]\nname = \"Acme\"\n\n\
         [[github.organizations]]                  # the interfaces' example\nname = \"globex\"\n\
         include = [\"*\"]\nexclude = [\"*-archive\", \"sandbox-*\"]\nteam_from = \"github_teams\"\n\
         include_forks = true\n\
         deployments = { from = \"workflow_runs\", workflow = \"deploy.yml\", branch = \"main\", \
         environment = \"production\" }\n",
    )
    .unwrap();
    let github = config.github.as_ref().unwrap();
    assert!(github.repositories.is_empty());
    let [acme, globex] = github.organizations.as_slice() else {
        panic!("{:?}", github.organizations)
    };
    assert_eq!(acme.name.as_str(), "Acme");
    assert!(acme.name.is("acme"));
    assert_eq!(acme.team_from, TeamFrom::Config);
    assert!(!acme.include_archived && !acme.include_forks && !acme.include_empty);
    assert_eq!(acme.deployments, DeploymentsConfig::DeploymentsApi);
    assert!(acme.selects("anything"));
    assert_eq!(globex.team_from, TeamFrom::GithubTeams);
    assert!(globex.include_forks);
    assert!(
        globex.selects("api") && !globex.selects("old-archive") && !globex.selects("Sandbox-1")
    );
    assert!(matches!(
        globex.deployments,
        DeploymentsConfig::WorkflowRuns { .. }
    ));
    // Neither repositories nor organisations: nothing to sync.
    let problems = problems("[github]\ntoken = \"${GITHUB_TOKEN}\"\n");
    assert!(
        problems.iter().any(|p| p
            .message
            .contains("or an organisation in [[github.organizations]]")),
        "{problems:?}"
    );
}
/// A mixed organisation: GitHub gives every repository's commits; Argo CD the
/// deployments of one, Jenkins those of another, GitHub itself the third's.
const MIXED: &str = r#"
[github]
token = "${GITHUB_TOKEN}"

[[github.repositories]]
name = "acme/api"

[[github.repositories]]
name = "acme/web"

[[github.repositories]]
name = "acme/billing"

[argocd]
api_url = "https://argocd.example.com"
token = "argocd-unit-test-token-0123"

[[argocd.applications]]
name = "api-prod"
repository = "acme/api"
environment = "production"

[[argocd.applications]]
name = "apps/api-eu"
repository = "Acme/API"
environment = "production"

[jenkins]
url = "https://ci.example.com/jenkins"
user = "dora"
token = "jenkins-unit-test-token-0123"

[[jenkins.jobs]]
path = "deploy/web"
repository = "acme/web"
environment = "production"
"#;

#[test]
fn argocd_and_jenkins_give_the_deployments_of_the_repositories_they_name() {
    let config = load(MIXED).unwrap();
    let deployments: Vec<(&str, &DeploymentsConfig)> = config
        .github_repositories()
        .iter()
        .map(|r| (r.name.as_str(), &r.deployments))
        .collect();
    assert_eq!(
        deployments,
        [
            ("acme/api", &DeploymentsConfig::ArgoCd),
            ("acme/web", &DeploymentsConfig::Jenkins),
            ("acme/billing", &DeploymentsConfig::DeploymentsApi),
        ]
    );
    let argocd = config.argocd.as_ref().unwrap();
    assert_eq!(argocd.api_url.as_str(), "https://argocd.example.com/");
    assert_eq!(argocd.applications.len(), 2);
    assert_eq!(argocd.applications[1].name.namespace(), Some("apps"));
    assert_eq!(argocd.applications[1].repository.as_str(), "acme/api");
    let jenkins = config.jenkins.as_ref().unwrap();
    assert_eq!(jenkins.unstable, UnstableBuilds::Failure);
    assert_eq!(jenkins.user.as_str(), "dora");
    assert_eq!(jenkins.jobs[0].path.as_str(), "deploy/web");
    assert_eq!(config.validate(), Ok(()));
    // Neither token is ever printed.
    let debug = format!("{config:?}");
    assert!(!debug.contains("argocd-unit-test-token"), "{debug}");
    assert!(!debug.contains("jenkins-unit-test-token"), "{debug}");
}

#[test]
fn a_repository_gets_its_deployments_from_one_source_and_its_commits_from_a_code_host() {
    let with = |extra: &str| format!("{MIXED}\n{extra}");
    let cases: &[(String, &str, &str)] = &[
        (
            with(
                "[[jenkins.jobs]]\npath = \"deploy/api\"\nrepository = \"acme/api\"\n\
                 environment = \"production\"",
            ),
            "jenkins.jobs[1].repository",
            "\"acme/api\" takes its deployments from argocd.applications[0] already",
        ),
        (
            with(
                "[[jenkins.jobs]]\npath = \"deploy/x\"\nrepository = \"acme/x\"\n\
                 environment = \"production\"",
            ),
            "jenkins.jobs[1].repository",
            "\"acme/x\" is in neither [[github.repositories]] nor [[gitlab.projects]]: no code host gives its commits",
        ),
        (
            MIXED.replace(
                "name = \"acme/web\"",
                "name = \"acme/web\"\ndeployments = { from = \"push\" }",
            ),
            "github.repositories[1].deployments",
            "\"acme/web\" takes its deployments from jenkins.jobs[0]; remove this key",
        ),
        (
            MIXED.replace(
                "name = \"acme/api\"",
                "name = \"acme/api\"\ndeployments = { from = \"deployments\" }",
            ),
            "github.repositories[0].deployments",
            "takes its deployments from argocd.applications[0]",
        ),
        (with("[[repositories]]\nname = \"acme/pushed\""), "", ""),
        (
            MIXED.replace("name = \"api-prod\"", "name = \"API_prod\""),
            "argocd.applications[0].name",
            "expected an Argo CD application name",
        ),
        (
            MIXED.replace("name = \"apps/api-eu\"", "name = \"api-prod\""),
            "argocd.applications[1].name",
            "\"api-prod\" is already configured in argocd.applications[0]",
        ),
        (
            MIXED.replace("path = \"deploy/web\"", "path = \"deploy//web\""),
            "jenkins.jobs[0].path",
            "expected a Jenkins job path",
        ),
        (
            MIXED.replace("user = \"dora\"\n", ""),
            "jenkins.user",
            "missing required key",
        ),
        (
            MIXED.replace("environment = \"production\"\n\n[jenkins]", "\n[jenkins]"),
            "argocd.applications[1].environment",
            "missing required key",
        ),
        (
            MIXED.replace("user = \"dora\"", "user = \"dora\"\nunstable = \"maybe\""),
            "jenkins.unstable",
            "unknown variant `maybe`",
        ),
        (
            MIXED.replace("[[jenkins.jobs]]", "[[jenkins.job]]"),
            "jenkins.job",
            "did you mean \"jobs\"?",
        ),
    ];
    for (text, path, message) in cases {
        if path.is_empty() {
            assert!(load(text).is_ok(), "{text}");
            continue;
        }
        let problems = problems(text);
        assert!(
            problems
                .iter()
                .any(|p| p.path.as_deref() == Some(*path) && p.message.contains(message)),
            "expected {path}: {message}\ngot {problems:#?}"
        );
    }
    // A repository known only to [[repositories]] cannot take Argo CD's
    // deployments: nothing would give its commits.
    let text = MIXED.replace("[[github.repositories]]\nname = \"acme/api\"\n", "")
        + "\n[[repositories]]\nname = \"acme/api\"\n";
    let problems = problems(&text);
    assert!(
        problems.iter().any(|p| {
            p.path.as_deref() == Some("argocd.applications[0].repository")
                && p.message.contains("[[repositories]] gives a team")
        }),
        "{problems:#?}"
    );
}

#[test]
fn validate_checks_the_deployment_sources_of_configs_built_in_code() {
    let mut config = load(MIXED).unwrap();
    config.github.as_mut().unwrap().repositories[2].deployments = DeploymentsConfig::Jenkins;
    config.github.as_mut().unwrap().repositories[0].deployments = DeploymentsConfig::Push;
    let problems = config.validate().unwrap_err();
    let paths: Vec<&str> = problems.iter().filter_map(|p| p.path.as_deref()).collect();
    assert!(
        paths.contains(&"argocd.applications[0].repository"),
        "{problems:#?}"
    );
    assert!(
        paths.contains(&"github.repositories[2].deployments"),
        "{problems:#?}"
    );
}

#[test]
fn the_argocd_and_jenkins_tokens_are_redacted_from_every_problem() {
    let text = MIXED.replace(
        "repository = \"acme/web\"",
        "repository = \"jenkins-unit-test-token-0123\"",
    );
    let problems = problems(&text);
    let all = format!("{problems:?}");
    assert!(!all.contains("jenkins-unit-test-token-0123"), "{all}");
    assert!(all.contains("[REDACTED]"), "{all}");
}

#[test]
fn pagerduty_services_map_to_repositories_or_a_team() {
    let text = format!(
        "{MINIMAL}\n[[repositories]]\nname = \"acme/worker\"\nteam = \"core\"\n\n\
         [pagerduty]\ntoken = \"${{GITHUB_TOKEN}}\"\nurgencies = [\"high\"]\n\n\
         [[pagerduty.services]]\nid = \"PAPI001\"\nrepositories = [\"acme/worker\", \"acme/api\"]\n\n\
         [[pagerduty.services]]\nid = \"PWEB001\"\nteam = \"web\"\n"
    );
    let config = load(&text).unwrap();
    let pagerduty = config.pagerduty.as_ref().unwrap();
    assert_eq!(pagerduty.api_url, defaults::pagerduty_api_url());
    assert_eq!(pagerduty.urgencies, [Urgency::High]);
    assert_eq!(pagerduty.token.expose_secret(), TOKEN);
    assert_eq!(
        pagerduty.services[0].maps_to,
        ServiceMapping::Repositories(vec![
            RepoName::parse("acme/worker").unwrap(),
            RepoName::parse("acme/api").unwrap()
        ])
    );
    assert_eq!(
        pagerduty.services[1].maps_to,
        ServiceMapping::Team(Team::parse("web").unwrap())
    );
    assert!(config.validate().is_ok());
    assert!(!format!("{config:?}").contains(TOKEN));
    // Without the key: every urgency.
    let text = text.replace("urgencies = [\"high\"]\n", "");
    assert_eq!(
        load(&text).unwrap().pagerduty.unwrap().urgencies,
        [Urgency::High, Urgency::Low]
    );
}

/// GitLab projects as the code host of Argo CD and Jenkins deployments.
const GITLAB_DEPLOYED_ELSEWHERE: &str = r#"
[gitlab]
token = "gitlab-unit-test-token-0123"

[[gitlab.projects]]
path = "acme/platform/api"

[[gitlab.projects]]
path = "acme/platform/web"

[[gitlab.projects]]
path = "acme/billing"

[argocd]
api_url = "https://argocd.example.com"
token = "argocd-unit-test-token-0123"

[[argocd.applications]]
name = "api-prod"
repository = "acme/platform/api"
environment = "production"

[jenkins]
url = "https://ci.example.com/jenkins"
user = "dora"
token = "jenkins-unit-test-token-0123"

[[jenkins.jobs]]
path = "deploy/web"
repository = "Acme/Platform/Web"
environment = "production"
"#;

#[test]
fn a_gitlab_project_can_take_its_deployments_from_argocd_or_jenkins() {
    let config = load(GITLAB_DEPLOYED_ELSEWHERE).unwrap();
    let deployments: Vec<(&str, &GitlabDeploymentsConfig)> = config
        .gitlab_projects()
        .iter()
        .map(|p| (p.path.as_str(), &p.deployments))
        .collect();
    assert_eq!(
        deployments,
        [
            ("acme/platform/api", &GitlabDeploymentsConfig::ArgoCd),
            ("acme/platform/web", &GitlabDeploymentsConfig::Jenkins),
            ("acme/billing", &GitlabDeploymentsConfig::DeploymentsApi),
        ]
    );
    assert_eq!(config.validate(), Ok(()));
    let sources: Vec<&str> = config
        .repository_sources()
        .into_iter()
        .map(|(_, source)| source)
        .collect();
    assert_eq!(
        sources,
        [
            "GitLab (deployments from Argo CD)",
            "GitLab (deployments from Jenkins)",
            "GitLab (Deployments API)",
        ]
    );
    // A project that also names its own deployments is refused, naming both.
    let text = GITLAB_DEPLOYED_ELSEWHERE.replace(
        "path = \"acme/platform/web\"",
        "path = \"acme/platform/web\"\ndeployments = { from = \"pipelines\", ref = \"main\", environment = \"production\" }",
    );
    let problems = load(&text).unwrap_err();
    assert!(
        problems.iter().any(
            |p| p.path.as_deref() == Some("gitlab.projects[1].deployments")
                && p.message
                    .contains("takes its deployments from jenkins.jobs[0]; remove this key")
        ),
        "{problems:?}"
    );
    // A configuration built in code is held to the same rule.
    let mut built = config.clone();
    built.gitlab.as_mut().unwrap().projects[2].deployments = GitlabDeploymentsConfig::Jenkins;
    let problems = built.validate().unwrap_err();
    assert!(
        problems.iter().any(
            |p| p.path.as_deref() == Some("gitlab.projects[2].deployments")
                && p.message.contains("no [[jenkins.jobs]] entry names it")
        ),
        "{problems:?}"
    );
}

#[test]
fn grafana_url_is_optional_and_checked() {
    let with = |url: &str| format!("[server]\ngrafana_url = \"{url}\"\n{MIXED}");
    let config = load(&with("https://grafana.example.com/base")).unwrap();
    assert_eq!(
        config.server.grafana_url.as_ref().map(|u| u.as_str()),
        Some("https://grafana.example.com/base")
    );
    assert_eq!(load(MIXED).unwrap().server.grafana_url, None);
    assert_eq!(ServerConfig::default().grafana_url, None);
    for bad in [
        "https://admin:pw@grafana.example.com",
        "grafana.example.com",
    ] {
        let problems = problems(&with(bad));
        assert!(
            problems
                .iter()
                .any(|p| p.path.as_deref() == Some("server.grafana_url")),
            "{bad}: {problems:?}"
        );
    }
}

#[test]
fn storage_url_selects_postgres_and_its_password_is_never_shown() {
    let config = load(&format!(
        "{MINIMAL}\n[storage]\nurl = \"postgres://dora:Pg-unit-Secret-77@db:5432/dora?sslmode=require\"\n"
    ))
    .unwrap();
    let url = config.storage.url.as_ref().expect("a PostgreSQL store");
    assert_eq!(
        url.shown(),
        "postgres://dora:REDACTED@db:5432/dora?sslmode=require"
    );
    assert_eq!(config.storage.shown(), url.shown());
    assert!(!format!("{config:?}").contains("Pg-unit-Secret-77"));
    assert!(matches!(
        config.storage.location(),
        crate::store::StoreLocation::Postgres(_)
    ));
    // A problem with the URL, or the password pasted into another key, never
    // shows the password.
    let problems = problems(&format!(
        "{MINIMAL}\n[storage]\nurl = \"postgres://dora:Pg-unit-Secret-77@db/dora?sslmode=verify-full\"\n\
         [server]\nlisten = \"Pg-unit-Secret-77\"\n"
    ));
    let all = format!("{problems:?}");
    assert!(all.contains("storage.url"), "{all}");
    assert!(!all.contains("Pg-unit-Secret-77"), "{all}");
}

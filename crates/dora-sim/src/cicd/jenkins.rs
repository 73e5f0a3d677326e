//! The simulated Jenkins: folders, multibranch projects and jobs with their
//! builds ([`JenkinsState`]), served as Jenkins' remote access API serves them
//! (`<object URL>/api/json` with `tree`), following
//! `../shared/reference/jenkins/README.md` (checked by `tests/sim/jenkins.rs`,
//! with the community OpenAPI subset in `tests/fixtures/jenkins/`).
//!
//! What it models:
//! - objects at any folder depth: `/job/a/job/b/api/json`; a multibranch
//!   project's branch jobs named with `/` written `%2F` (`feature%2Fx`), so
//!   their URL segment is `feature%252Fx`; builds by number and by permalink
//!   (`lastBuild`, `lastCompletedBuild`, `lastSuccessfulBuild`,
//!   `lastFailedBuild`, `lastStableBuild`; `404` when there is none);
//! - `tree` with sub-properties and ranges ([`super::tree`]); `allBuilds`
//!   only when `tree` names it; `builds` the newest 100; without `tree`,
//!   builds are short references (`_class`, `number`, `url`);
//! - builds: `result` `null` and `duration` 0 while `building`; `timestamp`
//!   (when scheduled) and `duration` in milliseconds; `_class` on every object;
//!   `actions` mixing `{}` entries, a `CauseAction`, and the git plugin's
//!   `BuildData` (one per checkout: a shared library's and the application's,
//!   each with `lastBuiltRevision.SHA1` and `remoteUrls`);
//! - builds removed by a build discarder are gone from both lists (gaps in the
//!   numbers);
//! - pre-emptive basic authentication with a user's API token: none is `403`
//!   (Jenkins does not negotiate), a wrong one `401`; `X-Jenkins` on answers;
//!   error pages are HTML.
//!
//! Not modelled: `depth`, XML and Python, queues, views, the crumb issuer (GET
//! needs no crumb), writes, permissions finer than one user who reads all.

use super::serve::{ApiReply, ApiRequest, CicdApi, UNMATCHED_ROUTE};
use super::tree;
use crate::domain::DeploymentOutcome;
use crate::model::Org;
use crate::server::TokenUse;
use axum::http::{Method, StatusCode};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

/// The Jenkins version the simulator says it is (`X-Jenkins`).
pub const JENKINS_VERSION: &str = "2.479.3";

/// How many builds `builds` holds (`Job.getNewBuilds()`).
pub const BUILDS_LIMIT: usize = 100;

/// Route template of an item (job or folder).
pub const ROUTE_ITEM: &str = "GET /job/{path}/api/json";
/// Route template of a build (by number or permalink).
pub const ROUTE_BUILD: &str = "GET /job/{path}/{build}/api/json";
/// Route template of the root.
pub const ROUTE_ROOT: &str = "GET /api/json";

/// The remote URL of the shared library every simulated pipeline also checks
/// out (a second `BuildData`, which a collector must not take for the
/// application's).
pub const LIBRARY_REMOTE: &str = "https://github.com/acme-platform/jenkins-library.git";

/// What Jenkins' `Util.rawEncode` leaves alone in a URL segment.
const RAW: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// A build's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildResult {
    /// `SUCCESS`.
    Success,
    /// `UNSTABLE`: it ran, a test or quality gate failed.
    Unstable,
    /// `FAILURE`.
    Failure,
    /// `NOT_BUILT`: skipped (a stage condition, a multibranch scan).
    NotBuilt,
    /// `ABORTED`: stopped by a user or a timeout.
    Aborted,
}

impl BuildResult {
    /// Jenkins' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildResult::Success => "SUCCESS",
            BuildResult::Unstable => "UNSTABLE",
            BuildResult::Failure => "FAILURE",
            BuildResult::NotBuilt => "NOT_BUILT",
            BuildResult::Aborted => "ABORTED",
        }
    }

    fn color(self) -> &'static str {
        match self {
            BuildResult::Success => "blue",
            BuildResult::Unstable => "yellow",
            BuildResult::Failure => "red",
            BuildResult::NotBuilt => "notbuilt",
            BuildResult::Aborted => "aborted",
        }
    }
}

/// One git checkout of a build (the git plugin's `BuildData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// `lastBuiltRevision.SHA1`.
    pub sha: String,
    /// The branch, as the plugin names it (`refs/remotes/origin/main`).
    pub branch: String,
    /// `remoteUrls[0]`.
    pub remote_url: String,
}

/// One build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JenkinsBuild {
    /// The build number.
    pub number: u32,
    /// `None` while building.
    pub result: Option<BuildResult>,
    /// Still running.
    pub building: bool,
    /// When it was scheduled, epoch milliseconds.
    pub timestamp_ms: i64,
    /// How long it ran, milliseconds (0 while building).
    pub duration_ms: i64,
    /// Its checkouts, in order (none before the checkout step ran).
    pub checkouts: Vec<Checkout>,
}

/// The kind of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A freestyle project.
    Freestyle,
    /// A Pipeline (`WorkflowJob`), also a multibranch project's branch job.
    Pipeline,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JenkinsJob {
    /// Its item name (a multibranch branch: the branch with `/` as `%2F`).
    pub name: String,
    /// Its display name (a multibranch branch: the branch itself).
    pub display_name: String,
    /// Freestyle or Pipeline.
    pub kind: JobKind,
    /// Its retained builds, oldest first.
    pub builds: Vec<JenkinsBuild>,
    /// The number the next build gets.
    pub next_build_number: u32,
}

impl JenkinsJob {
    /// A job without builds.
    pub fn new(name: &str, kind: JobKind) -> JenkinsJob {
        JenkinsJob {
            name: name.to_owned(),
            display_name: name.to_owned(),
            kind,
            builds: Vec::new(),
            next_build_number: 1,
        }
    }

    /// Schedules a build at `timestamp_ms` that checked out `checkouts` and is
    /// running; returns its number.
    pub fn start_build(&mut self, timestamp_ms: i64, checkouts: Vec<Checkout>) -> u32 {
        let number = self.next_build_number;
        self.next_build_number += 1;
        self.builds.push(JenkinsBuild {
            number,
            result: None,
            building: true,
            timestamp_ms,
            duration_ms: 0,
            checkouts,
        });
        number
    }

    /// Build `number` finished with `result` after `duration_ms`.
    pub fn finish_build(&mut self, number: u32, result: BuildResult, duration_ms: i64) {
        if let Some(build) = self.builds.iter_mut().find(|b| b.number == number) {
            build.building = false;
            build.result = Some(result);
            build.duration_ms = duration_ms.max(0);
        }
    }

    /// A build discarder: keeps only the newest `keep` builds.
    pub fn discard_all_but(&mut self, keep: usize) {
        let cut = self.builds.len().saturating_sub(keep);
        self.builds.drain(..cut);
    }
}

/// A folder-like item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderKind {
    /// A plain folder.
    Folder,
    /// A multibranch Pipeline project (its items are branch jobs).
    MultiBranch,
}

/// One item of a folder (or of the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JenkinsItem {
    /// A folder or multibranch project with its items.
    Folder {
        /// Its name.
        name: String,
        /// Folder or multibranch project.
        kind: FolderKind,
        /// Its items.
        items: Vec<JenkinsItem>,
    },
    /// A job.
    Job(JenkinsJob),
}

impl JenkinsItem {
    fn name(&self) -> &str {
        match self {
            JenkinsItem::Folder { name, .. } => name,
            JenkinsItem::Job(job) => &job.name,
        }
    }
}

/// The served Jenkins: its top-level items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JenkinsState {
    /// The items at the root.
    pub items: Vec<JenkinsItem>,
}

impl JenkinsState {
    fn item(&self, path: &[String]) -> Option<&JenkinsItem> {
        let (first, rest) = path.split_first()?;
        let mut item = self.items.iter().find(|i| i.name() == first)?;
        for name in rest {
            match item {
                JenkinsItem::Folder { items, .. } => {
                    item = items.iter().find(|i| i.name() == name)?;
                }
                JenkinsItem::Job(_) => return None,
            }
        }
        Some(item)
    }

    /// The job at `full_name` (item names separated by `/`).
    pub fn job(&self, full_name: &str) -> Option<&JenkinsJob> {
        let path: Vec<String> = full_name.split('/').map(str::to_owned).collect();
        match self.item(&path)? {
            JenkinsItem::Job(job) => Some(job),
            JenkinsItem::Folder { .. } => None,
        }
    }

    /// [`JenkinsState::job`], to change.
    pub fn job_mut(&mut self, full_name: &str) -> Option<&mut JenkinsJob> {
        let mut items = &mut self.items;
        let mut names = full_name.split('/').peekable();
        while let Some(name) = names.next() {
            let item = items.iter_mut().find(|i| i.name() == name)?;
            match item {
                JenkinsItem::Job(job) if names.peek().is_none() => return Some(job),
                JenkinsItem::Folder { items: inner, .. } => items = inner,
                JenkinsItem::Job(_) => return None,
            }
        }
        None
    }

    /// Adds `job` in the folders of `folders` (item names, outermost first),
    /// creating the missing ones with `kind` for the innermost and plain
    /// folders above it.
    pub fn insert(&mut self, folders: &[&str], kind: FolderKind, job: JenkinsJob) {
        let mut items = &mut self.items;
        for (depth, name) in folders.iter().enumerate() {
            let position = items.iter().position(|i| i.name() == *name);
            let index = match position {
                Some(index) => index,
                None => {
                    items.push(JenkinsItem::Folder {
                        name: (*name).to_owned(),
                        kind: if depth + 1 == folders.len() {
                            kind
                        } else {
                            FolderKind::Folder
                        },
                        items: Vec::new(),
                    });
                    items.len() - 1
                }
            };
            items = match &mut items[index] {
                JenkinsItem::Folder { items, .. } => items,
                JenkinsItem::Job(_) => return,
            };
        }
        items.push(JenkinsItem::Job(job));
    }

    /// Adds a branch job for `branch` to the multibranch project at `project`
    /// (item names), named as the Branch API names it (`/` as `%2F`); returns
    /// the job's full name.
    pub fn insert_branch(&mut self, project: &[&str], branch: &str, job: JenkinsJob) -> String {
        let encoded = branch.replace('%', "%25").replace('/', "%2F");
        let job = JenkinsJob {
            name: encoded.clone(),
            display_name: branch.to_owned(),
            kind: JobKind::Pipeline,
            ..job
        };
        self.insert(project, FolderKind::MultiBranch, job);
        let mut full: Vec<&str> = project.to_vec();
        full.push(&encoded);
        full.join("/")
    }
}

/// The builds of a job that deploys repository `repo` of `org` to
/// `environment`: one per deployment the simulator gave GitHub, by the
/// simulator's own reading of its statuses (a success is `SUCCESS` finishing at
/// the deploy time, a failure `FAILURE`, one still under way a build still
/// running), with an `ABORTED` build after every 7th and a `NOT_BUILT` one
/// after every 11th (neither is a deployment). Each build checks out the shared
/// library ([`LIBRARY_REMOTE`]) and then the repository at the deployed sha.
/// Builds are numbered in the order they were scheduled.
pub fn builds_from_github(org: &Org, repo: usize, environment: &str) -> Vec<JenkinsBuild> {
    let remote = format!("https://github.com/{}.git", org.full_name(repo));
    let mut deployments: Vec<_> = org.repos[repo]
        .deployments
        .iter()
        .filter(|d| &*d.environment == environment)
        .collect();
    deployments.sort_by_key(|d| (d.created_at, d.id));
    let library = "9".repeat(40);
    let checkouts = |sha: &str| {
        vec![
            Checkout {
                sha: library.clone(),
                branch: "refs/remotes/origin/main".to_owned(),
                remote_url: LIBRARY_REMOTE.to_owned(),
            },
            Checkout {
                sha: sha.to_owned(),
                branch: "refs/remotes/origin/main".to_owned(),
                remote_url: remote.clone(),
            },
        ]
    };
    let mut builds = Vec::new();
    let mut number = 0u32;
    for (index, deployment) in deployments.into_iter().enumerate() {
        number += 1;
        let scheduled = deployment.created_at;
        let (result, finished) = match deployment.outcome() {
            DeploymentOutcome::Succeeded { at } => (Some(BuildResult::Success), at),
            DeploymentOutcome::Failed { at } => (Some(BuildResult::Failure), at),
            DeploymentOutcome::Pending => (None, scheduled),
        };
        let started = scheduled.min(finished);
        builds.push(JenkinsBuild {
            number,
            result,
            building: result.is_none(),
            timestamp_ms: started.0 * 1000,
            duration_ms: if result.is_some() {
                (finished.0 - started.0) * 1000
            } else {
                0
            },
            checkouts: checkouts(&deployment.sha.to_string()),
        });
        for (every, noise) in [(7, BuildResult::Aborted), (11, BuildResult::NotBuilt)] {
            if (index + 1) % every == 0 {
                number += 1;
                builds.push(JenkinsBuild {
                    number,
                    result: Some(noise),
                    building: false,
                    timestamp_ms: started.0 * 1000 + 1,
                    duration_ms: 500,
                    checkouts: Vec::new(),
                });
            }
        }
    }
    builds
}

/// One URL path segment as Jenkins encodes item names in URLs.
pub fn url_segment(name: &str) -> String {
    utf8_percent_encode(name, RAW).to_string()
}

fn job_class(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Freestyle => "hudson.model.FreeStyleProject",
        JobKind::Pipeline => "org.jenkinsci.plugins.workflow.job.WorkflowJob",
    }
}

fn build_class(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Freestyle => "hudson.model.FreeStyleBuild",
        JobKind::Pipeline => "org.jenkinsci.plugins.workflow.job.WorkflowRun",
    }
}

fn folder_class(kind: FolderKind) -> &'static str {
    match kind {
        FolderKind::Folder => "com.cloudbees.hudson.plugins.folder.Folder",
        FolderKind::MultiBranch => {
            "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
        }
    }
}

/// Where an item is: its absolute URL (ending in `/`), full name and full
/// display name.
struct Place {
    url: String,
    full_name: String,
    full_display_name: String,
}

impl Place {
    fn child(&self, name: &str, display: &str) -> Place {
        Place {
            url: format!("{}job/{}/", self.url, url_segment(name)),
            full_name: if self.full_name.is_empty() {
                name.to_owned()
            } else {
                format!("{}/{name}", self.full_name)
            },
            full_display_name: if self.full_display_name.is_empty() {
                display.to_owned()
            } else {
                format!("{} » {display}", self.full_display_name)
            },
        }
    }
}

fn build_data(checkout: &Checkout, number: u32) -> Value {
    let revision = json!({
        "SHA1": checkout.sha,
        "branch": [{"SHA1": checkout.sha, "name": checkout.branch}],
    });
    json!({
        "_class": "hudson.plugins.git.util.BuildData",
        "buildsByBranchName": {
            checkout.branch.clone(): {
                "_class": "hudson.plugins.git.util.Build",
                "buildNumber": number,
                "buildResult": null,
                "marked": revision,
                "revision": revision,
            }
        },
        "lastBuiltRevision": revision,
        "remoteUrls": [checkout.remote_url],
        "scmName": "",
    })
}

fn build_json(job: &JenkinsJob, build: &JenkinsBuild, place: &Place) -> Value {
    let mut actions = vec![
        json!({
            "_class": "hudson.model.CauseAction",
            "causes": [{
                "_class": "hudson.model.Cause$UserIdCause",
                "shortDescription": "Started by user Dora Deployer",
                "userId": "dora", "userName": "Dora Deployer",
            }],
        }),
        json!({}),
    ];
    for checkout in &build.checkouts {
        actions.push(build_data(checkout, build.number));
        actions.push(json!({"_class": "hudson.plugins.git.GitTagAction"}));
    }
    actions.push(json!({}));
    actions.push(json!({"_class": "org.jenkinsci.plugins.displayurlapi.actions.RunDisplayAction"}));
    let mut value = json!({
        "_class": build_class(job.kind),
        "actions": actions,
        "artifacts": [],
        "building": build.building,
        "description": null,
        "displayName": format!("#{}", build.number),
        "duration": build.duration_ms,
        "estimatedDuration": 61_000,
        "executor": null,
        "fullDisplayName": format!("{} #{}", place.full_display_name, build.number),
        "id": build.number.to_string(),
        "keepLog": false,
        "number": build.number,
        "queueId": 1000 + u64::from(build.number),
        "result": build.result.map(BuildResult::as_str),
        "timestamp": build.timestamp_ms,
        "url": format!("{}{}/", place.url, build.number),
        "inProgress": build.building,
    });
    match job.kind {
        JobKind::Freestyle => {
            value["builtOn"] = json!("");
            value["changeSet"] =
                json!({"_class": "hudson.scm.EmptyChangeLogSet", "items": [], "kind": null});
        }
        JobKind::Pipeline => {
            value["changeSets"] = json!([]);
            value["nextBuild"] = Value::Null;
            value["previousBuild"] = Value::Null;
        }
    }
    value
}

fn build_ref(job: &JenkinsJob, build: &JenkinsBuild, place: &Place) -> Value {
    json!({
        "_class": build_class(job.kind),
        "number": build.number,
        "url": format!("{}{}/", place.url, build.number),
    })
}

/// A permalink: the newest build that `keep` accepts.
fn permalink<'a>(job: &'a JenkinsJob, name: &str) -> Option<Option<&'a JenkinsBuild>> {
    let newest = |keep: &dyn Fn(&JenkinsBuild) -> bool| job.builds.iter().rev().find(|b| keep(b));
    let finished = |b: &JenkinsBuild, results: &[BuildResult]| {
        !b.building && b.result.is_some_and(|r| results.contains(&r))
    };
    Some(match name {
        "lastBuild" => newest(&|_| true),
        "lastCompletedBuild" => newest(&|b| !b.building),
        "lastSuccessfulBuild" => {
            newest(&|b| finished(b, &[BuildResult::Success, BuildResult::Unstable]))
        }
        "lastStableBuild" => newest(&|b| finished(b, &[BuildResult::Success])),
        "lastFailedBuild" => newest(&|b| finished(b, &[BuildResult::Failure])),
        "lastUnstableBuild" => newest(&|b| finished(b, &[BuildResult::Unstable])),
        "lastUnsuccessfulBuild" => {
            newest(&|b| !b.building && b.result.is_some_and(|r| r != BuildResult::Success))
        }
        _ => return None,
    })
}

const PERMALINKS: [&str; 7] = [
    "lastBuild",
    "lastCompletedBuild",
    "lastFailedBuild",
    "lastStableBuild",
    "lastSuccessfulBuild",
    "lastUnstableBuild",
    "lastUnsuccessfulBuild",
];

/// The job; `full`: builds as whole objects and `allBuilds` (for `tree`),
/// else builds as short references.
fn job_json(job: &JenkinsJob, place: &Place, full: bool) -> Value {
    let render = |build: &JenkinsBuild| {
        if full {
            build_json(job, build, place)
        } else {
            build_ref(job, build, place)
        }
    };
    let newest_first: Vec<&JenkinsBuild> = job.builds.iter().rev().collect();
    let color = match newest_first.first() {
        None => "notbuilt".to_owned(),
        Some(last) => {
            let completed = newest_first.iter().find(|b| !b.building);
            let base = completed
                .and_then(|b| b.result)
                .map_or("notbuilt", BuildResult::color);
            if last.building {
                format!("{base}_anime")
            } else {
                base.to_owned()
            }
        }
    };
    let mut value = json!({
        "_class": job_class(job.kind),
        "actions": [{}, {"_class": "org.jenkinsci.plugins.displayurlapi.actions.JobDisplayAction"}],
        "description": "",
        "displayName": job.display_name,
        "displayNameOrNull": if job.display_name == job.name { Value::Null } else { json!(job.display_name) },
        "fullDisplayName": place.full_display_name,
        "fullName": place.full_name,
        "name": job.name,
        "url": place.url,
        "buildable": true,
        "builds": newest_first.iter().take(BUILDS_LIMIT).map(|b| render(b)).collect::<Vec<_>>(),
        "color": color,
        "firstBuild": job.builds.first().map_or(Value::Null, render),
        "healthReport": [{
            "description": "Build stability: No recent builds failed.",
            "iconClassName": "icon-health-80plus", "iconUrl": "health-80plus.png", "score": 100,
        }],
        "inQueue": false,
        "keepDependencies": false,
        "nextBuildNumber": job.next_build_number,
        "property": [],
        "queueItem": null,
    });
    for name in PERMALINKS {
        let build = permalink(job, name).flatten();
        value[name] = build.map_or(Value::Null, render);
    }
    match job.kind {
        JobKind::Freestyle => {
            value["concurrentBuild"] = json!(false);
            value["scm"] = json!({"_class": "hudson.scm.NullSCM"});
        }
        JobKind::Pipeline => {
            value["concurrentBuild"] = json!(true);
            value["resumeBlocked"] = json!(false);
        }
    }
    if full {
        value["allBuilds"] = Value::Array(newest_first.iter().map(|b| render(b)).collect());
    }
    value
}

fn folder_json(name: &str, kind: FolderKind, items: &[JenkinsItem], place: &Place) -> Value {
    let jobs: Vec<Value> = items
        .iter()
        .map(|item| match item {
            JenkinsItem::Folder { name, kind, .. } => {
                json!({"_class": folder_class(*kind), "name": name, "url": place.child(name, name).url})
            }
            JenkinsItem::Job(job) => json!({
                "_class": job_class(job.kind), "name": job.name,
                "url": place.child(&job.name, &job.display_name).url,
                "color": job_json(job, place, false)["color"],
            }),
        })
        .collect();
    json!({
        "_class": folder_class(kind),
        "actions": [{}],
        "description": null,
        "displayName": name,
        "displayNameOrNull": null,
        "fullDisplayName": place.full_display_name,
        "fullName": place.full_name,
        "name": name,
        "url": place.url,
        "healthReport": [],
        "jobs": jobs,
    })
}

fn page(status: StatusCode, route: &'static str, text: &str) -> ApiReply {
    ApiReply {
        status,
        body: format!(
            "<html><head><title>Error {}</title></head><body><h2>HTTP ERROR {}</h2><p>{text}</p></body></html>",
            status.as_u16(),
            status.as_u16()
        )
        .into_bytes(),
        content_type: "text/html;charset=utf-8",
        route,
        headers: vec![("x-jenkins", JENKINS_VERSION.to_owned())],
    }
}

/// What a request path names: the item path (decoded names) and what of it.
enum Target {
    Root,
    Item(Vec<String>),
    Build(Vec<String>, String),
}

fn target(path: &str) -> Option<Target> {
    let rest = path.strip_prefix('/')?.strip_suffix("api/json")?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return Some(Target::Root);
    }
    let mut names = Vec::new();
    let mut at = 0;
    while at + 1 < segments.len() && segments[at] == "job" {
        names.push(
            percent_decode_str(segments[at + 1])
                .decode_utf8()
                .ok()?
                .into_owned(),
        );
        at += 2;
    }
    if names.is_empty() {
        return None;
    }
    match &segments[at..] {
        [] => Some(Target::Item(names)),
        [build] => Some(Target::Build(names, (*build).to_owned())),
        _ => None,
    }
}

impl CicdApi for JenkinsState {
    fn respond(&self, request: &ApiRequest<'_>) -> ApiReply {
        let target = target(request.path);
        let route = match &target {
            Some(Target::Root) => ROUTE_ROOT,
            Some(Target::Item(_)) => ROUTE_ITEM,
            Some(Target::Build(..)) => ROUTE_BUILD,
            None => UNMATCHED_ROUTE,
        };
        match request.auth {
            TokenUse::Valid => {}
            // Jenkins does not negotiate: without credentials, 403.
            TokenUse::Missing => {
                return page(StatusCode::FORBIDDEN, route, "Authentication required")
            }
            TokenUse::Invalid => {
                return page(
                    StatusCode::UNAUTHORIZED,
                    route,
                    &format!(
                        "Invalid password/token for user: {}",
                        request.user.as_deref().unwrap_or("")
                    ),
                )
            }
        }
        if request.method != Method::GET && request.method != Method::HEAD {
            return page(StatusCode::METHOD_NOT_ALLOWED, route, "Method Not Allowed");
        }
        let tree = form_urlencoded::parse(request.query.unwrap_or("").as_bytes())
            .filter(|(key, _)| key == "tree")
            .map(|(_, value)| value.into_owned())
            .last();
        let tree: Option<Vec<tree::Node>> = match tree.as_deref().map(tree::parse) {
            None => None,
            Some(Ok(nodes)) => Some(nodes),
            Some(Err(problem)) => return page(StatusCode::BAD_REQUEST, route, &problem),
        };
        let root = Place {
            url: format!("{}/", request.base_url),
            full_name: String::new(),
            full_display_name: String::new(),
        };
        let value = match target {
            None => return page(StatusCode::NOT_FOUND, route, "Not Found"),
            Some(Target::Root) => {
                let mut value = folder_json("", FolderKind::Folder, &self.items, &root);
                value["_class"] = json!("hudson.model.Hudson");
                value
            }
            Some(Target::Item(names)) | Some(Target::Build(names, _))
                if self.item(&names).is_none() =>
            {
                return page(StatusCode::NOT_FOUND, route, "Not Found");
            }
            Some(Target::Item(names)) => {
                let place = place_of(self, &names, &root);
                match self.item(&names) {
                    Some(JenkinsItem::Job(job)) => job_json(job, &place, tree.is_some()),
                    Some(JenkinsItem::Folder { name, kind, items }) => {
                        folder_json(name, *kind, items, &place)
                    }
                    None => return page(StatusCode::NOT_FOUND, route, "Not Found"),
                }
            }
            Some(Target::Build(names, build)) => {
                let Some(JenkinsItem::Job(job)) = self.item(&names) else {
                    return page(StatusCode::NOT_FOUND, route, "Not Found");
                };
                let place = place_of(self, &names, &root);
                let found = match build.parse::<u32>() {
                    Ok(number) => job.builds.iter().find(|b| b.number == number),
                    Err(_) => permalink(job, &build).flatten(),
                };
                match found {
                    Some(build) => build_json(job, build, &place),
                    None => return page(StatusCode::NOT_FOUND, route, "Not Found"),
                }
            }
        };
        let value = match &tree {
            Some(tree) => tree::apply(&value, tree),
            None => value,
        };
        ApiReply {
            status: StatusCode::OK,
            body: value.to_string().into_bytes(),
            content_type: "application/json;charset=utf-8",
            route,
            headers: vec![("x-jenkins", JENKINS_VERSION.to_owned())],
        }
    }
}

/// The place of the item at `names`.
fn place_of(state: &JenkinsState, names: &[String], root: &Place) -> Place {
    let mut place = Place {
        url: root.url.clone(),
        full_name: String::new(),
        full_display_name: String::new(),
    };
    for depth in 1..=names.len() {
        let display = match state.item(&names[..depth]) {
            Some(JenkinsItem::Job(job)) => job.display_name.clone(),
            _ => names[depth - 1].clone(),
        };
        place = place.child(&names[depth - 1], &display);
    }
    place
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_items_at_any_depth_and_builds() {
        let Some(Target::Item(names)) = target("/job/api/job/feature%252Fx/api/json") else {
            panic!("an item");
        };
        assert_eq!(names, ["api", "feature%2Fx"]);
        let Some(Target::Build(names, build)) = target("/job/deploy/job/api/12/api/json") else {
            panic!("a build");
        };
        assert_eq!(
            (names.as_slice(), build.as_str()),
            (&["deploy".to_owned(), "api".to_owned()][..], "12")
        );
        assert!(matches!(target("/api/json"), Some(Target::Root)));
        assert!(target("/job/api/api/xml").is_none());
        assert!(target("/view/all/api/json").is_none());
        assert_eq!(url_segment("feature%2Fx"), "feature%252Fx");
        assert_eq!(url_segment("My Job"), "My%20Job");
    }

    #[test]
    fn jobs_are_found_in_folders_and_multibranch_projects() {
        let mut state = JenkinsState::default();
        state.insert(
            &["deploy"],
            FolderKind::Folder,
            JenkinsJob::new("api", JobKind::Freestyle),
        );
        let branch = state.insert_branch(
            &["apps", "web"],
            "release/1.x",
            JenkinsJob::new("x", JobKind::Pipeline),
        );
        assert_eq!(branch, "apps/web/release%2F1.x");
        let job = state.job_mut(&branch).unwrap();
        let n = job.start_build(1_000, Vec::new());
        job.finish_build(n, BuildResult::Success, 500);
        assert_eq!(
            state.job(&branch).unwrap().builds[0].result,
            Some(BuildResult::Success)
        );
        assert!(state.job("deploy/api").is_some());
        assert!(state.job("deploy").is_none(), "a folder is not a job");
        let JenkinsItem::Folder { kind, .. } = &state.items[1] else {
            panic!()
        };
        assert_eq!(*kind, FolderKind::Folder);
    }
}

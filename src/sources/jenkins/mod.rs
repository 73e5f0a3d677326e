//! The Jenkins source: the deployments of the repositories named in
//! `[[jenkins.jobs]]`, read from the builds of each job (`models.rs` says how a
//! build becomes a deployment).
//!
//! Each job has a cursor (`jenkins:{path}`: an epoch, the watermark, and the
//! watermark build's timestamp): every build numbered at or below the
//! watermark has been read final. A job's first sync pages through
//! `allBuilds` (`tree=allBuilds[…]{0,100}`, `{100,200}`, …; `allBuilds` is only
//! exported when named) until it has passed the lookback and read one
//! successful deployment before it (the base of the first change set), or the
//! builds end. Later syncs ask `tree=builds[…]{0,10}` (`builds` holds the newest
//! 100) and read further only while every build they got is newer than the
//! watermark: `{10,100}`, then `allBuilds` pages past the first 100 (after a
//! long pause). So an idle job costs one small request per cycle. A running
//! build holds the watermark below it and is read again until it is final.
//!
//! A job deleted and created again restarts its numbers: a build at or below
//! the watermark that is newer than the watermark build starts a new epoch, so
//! its builds get new ids and never overwrite the old job's.
//!
//! An unknown job (`404`: Jenkins also hides jobs the user may not read) or a
//! wrong token (`401`) fails the repository's sync naming the job, after its
//! other jobs were read. Not here: writes, the crumb issuer (GETs need none),
//! change sets (the GitHub source reads them for every kept deployment).

mod models;

use super::governor::RetryPolicy;
use super::rest::{Auth, RestClient, RestError, ServerKind};
use super::{within_lookback, ApiHealth, RepoSyncStats, Source, SourceError, SyncContext};
use crate::config::{JenkinsConfig, JenkinsJobConfig, UnstableBuilds};
use crate::domain::batch::{Cursor, CursorKey, SyncBatch};
use crate::domain::{Deployment, DeploymentOutcome, DeploymentSource, RepoName, Timestamp};
use futures::future::BoxFuture;
use models::{Build, BuildState, BUILD_FIELDS};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

pub use models::{build_id, job_key};

/// The `source` label and sync-status name of this source.
pub const SOURCE_NAME: &str = "jenkins";

/// The endpoint template of the requests (the health metrics' label).
pub const ENDPOINT_JOB: &str = "/job/{path}/api/json";

/// Builds per `allBuilds` page of a first sync: Jenkins' own page of `builds`.
pub const ALL_BUILDS_PAGE: usize = 100;

/// Builds the first request of a later sync asks for: an idle job answers with
/// these few, and a busy one (more than this many builds per poll interval)
/// costs one more request.
pub const INCREMENTAL_PAGE: usize = 10;

/// How many builds `builds` holds (`Job.getNewBuilds()`).
pub const BUILDS_LIMIT: usize = 100;

/// The most `allBuilds` pages read per job and sync (10,000 builds); the next
/// sync goes on.
pub const MAX_PAGES_PER_SYNC: usize = 100;

/// The cursor endpoint of a job: `jenkins:` and its path.
const CURSOR_PREFIX: &str = "jenkins:";

/// What the errors of this source's client say.
const KIND: ServerKind = ServerKind {
    server: SOURCE_NAME,
    token_key: "jenkins.token",
    forbidden_hint: "the user needs the Overall/Read and Job/Read permissions on this job",
    not_found_hint: "no such job, or the user may not see it (Jenkins answers 404 for both); \
                     check jenkins.jobs[].path (folders separated by '/') and Job/Read",
};

/// What Jenkins' `Util.rawEncode` leaves alone in a URL segment (anything
/// else, `%` included, is escaped: a branch job `feature%2Fx` is
/// `feature%252Fx` in its URL).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// A job's cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Watermark {
    /// Grows when the job is re-created (its ids change with it).
    epoch: u32,
    /// Every build numbered up to this one has been read final.
    number: u32,
    /// When the build numbered `number` was scheduled (ms), to tell a
    /// re-created job from deleted builds.
    timestamp_ms: i64,
}

impl Watermark {
    fn parse(opaque: &str) -> Option<Watermark> {
        let mut parts = opaque.split(' ');
        let watermark = Watermark {
            epoch: parts.next()?.parse().ok()?,
            number: parts.next()?.parse().ok()?,
            timestamp_ms: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(watermark)
    }

    fn render(&self) -> String {
        format!("{} {} {}", self.epoch, self.number, self.timestamp_ms)
    }
}

/// The Jenkins source of one `[jenkins]` configuration.
#[derive(Debug)]
pub struct JenkinsSource {
    client: RestClient,
    unstable: UnstableBuilds,
    lookback_seconds: i64,
    repositories: Vec<RepoName>,
    jobs: BTreeMap<RepoName, Vec<JenkinsJobConfig>>,
    /// Unreadable builds skipped per repository since the process started.
    skipped: Mutex<BTreeMap<RepoName, u64>>,
}

impl JenkinsSource {
    /// A source for `config` whose first syncs read `lookback_seconds` back,
    /// retrying by `policy`; fails only when the HTTP client cannot be set up.
    pub fn new(
        config: &JenkinsConfig,
        lookback_seconds: i64,
        policy: RetryPolicy,
    ) -> Result<JenkinsSource, RestError> {
        let auth = Auth::Basic {
            user: config.user.as_str().to_owned(),
            token: config.token.clone(),
        };
        let client = RestClient::new(KIND, config.url.as_url(), &auth, policy)?;
        let mut repositories = Vec::new();
        let mut jobs: BTreeMap<RepoName, Vec<JenkinsJobConfig>> = BTreeMap::new();
        for job in &config.jobs {
            if !repositories.contains(&job.repository) {
                repositories.push(job.repository.clone());
            }
            jobs.entry(job.repository.clone())
                .or_default()
                .push(job.clone());
        }
        Ok(JenkinsSource {
            client,
            unstable: config.unstable,
            lookback_seconds,
            repositories,
            jobs,
            skipped: Mutex::new(BTreeMap::new()),
        })
    }

    /// `{url}/job/a/job/b/api/json?tree={field}[…]{range}`.
    fn url(&self, job: &JenkinsJobConfig, field: &str, from: usize, to: usize) -> String {
        let mut url = self.client.base().to_owned();
        for segment in job.path.segments() {
            url.push_str("/job/");
            url.push_str(&utf8_percent_encode(segment, SEGMENT).to_string());
        }
        let tree = format!("{field}[{BUILD_FIELDS}]{{{from},{to}}}");
        url.push_str("/api/json?tree=");
        url.extend(form_urlencoded::byte_serialize(tree.as_bytes()));
        url
    }

    /// One page of `field` (`builds` or `allBuilds`), builds `from..to` (newest
    /// first).
    async fn page(
        &self,
        repository: &RepoName,
        job: &JenkinsJobConfig,
        field: &str,
        (from, to): (usize, usize),
        context: &SyncContext,
        stats: &mut RepoSyncStats,
    ) -> Result<Vec<Build>, SourceError> {
        let read = |error| SourceError::Read {
            what: format!("jenkins job {:?}", job.path.as_str()),
            error,
        };
        let url = self.url(job, field, from, to);
        let body = self
            .client
            .get(ENDPOINT_JOB, &url, &context.shutdown)
            .await
            .map_err(read)?;
        stats.requests += 1;
        let items = models::builds(&body, field, repository, self.unstable).map_err(|reason| {
            read(RestError::InvalidBody {
                url: url.clone(),
                reason,
            })
        })?;
        let mut builds = Vec::with_capacity(items.len());
        let mut skipped = 0;
        for item in items {
            match item {
                Ok(build) => builds.push(build),
                Err(reason) => {
                    skipped += 1;
                    tracing::warn!(
                        %repository,
                        job = %job.path,
                        reason = %self.client.clean(&reason),
                        "skipping a Jenkins build that cannot be read as a deployment"
                    );
                }
            }
        }
        stats.skipped_items += skipped;
        if skipped > 0 {
            let mut total = self.skipped.lock().unwrap_or_else(PoisonError::into_inner);
            *total.entry(repository.clone()).or_default() += skipped;
        }
        Ok(builds)
    }

    /// Reads one job's new builds and keeps them; returns whether it was the
    /// job's first sync.
    async fn sync_job(
        &self,
        repository: &RepoName,
        job: &JenkinsJobConfig,
        context: &SyncContext,
        stats: &mut RepoSyncStats,
    ) -> Result<bool, SourceError> {
        let cursor_key = CursorKey::new(repository.clone(), format!("{CURSOR_PREFIX}{}", job.path));
        let kept = context
            .ledger
            .cursor(cursor_key.clone())
            .await?
            .and_then(|c| c.opaque)
            .and_then(|opaque| Watermark::parse(&opaque));
        let (builds, mut watermark) = match kept {
            None => (
                self.first_builds(repository, job, context, stats).await?,
                Watermark::default(),
            ),
            Some(watermark) => {
                let builds = self
                    .new_builds(repository, job, watermark, context, stats)
                    .await?;
                (builds, watermark)
            }
        };
        // A build at or below the watermark newer than the watermark build: the
        // job was re-created, its numbers started again.
        let recreated = kept.is_some()
            && builds
                .iter()
                .any(|b| b.number <= watermark.number && b.timestamp_ms > watermark.timestamp_ms);
        let builds = if recreated {
            tracing::warn!(
                %repository,
                job = %job.path,
                "the Jenkins job was re-created (its build numbers started again): reading it \
                 as a new job; the old job's deployments stay"
            );
            watermark = Watermark {
                epoch: watermark.epoch.wrapping_add(1),
                ..Watermark::default()
            };
            self.first_builds(repository, job, context, stats).await?
        } else {
            builds
        };
        let key = job_key(job.path.as_str(), watermark.epoch);
        let fresh: Vec<&Build> = builds
            .iter()
            .filter(|b| b.number > watermark.number)
            .collect();
        let mut batch = SyncBatch::new(repository.clone());
        for build in &fresh {
            if let BuildState::Deployment {
                sha,
                created_at,
                outcome,
            } = &build.state
            {
                batch.deployments.push(Deployment {
                    source: DeploymentSource::Jenkins,
                    repository: repository.clone(),
                    id: build_id(key, build.number),
                    environment: job.environment.clone(),
                    sha: *sha,
                    created_at: *created_at,
                    outcome: *outcome,
                });
            }
        }
        if kept.is_none() || recreated {
            batch.deployments = within_lookback(batch.deployments, self.lookback_start(context));
        }
        // Up to the oldest build still running, or to the newest read.
        let running = fresh
            .iter()
            .filter(|b| b.state == BuildState::Running)
            .map(|b| b.number)
            .min();
        let reach = match running {
            Some(number) => number - 1,
            None => fresh
                .iter()
                .map(|b| b.number)
                .max()
                .unwrap_or(watermark.number),
        };
        if reach > watermark.number {
            let timestamp_ms = fresh
                .iter()
                .filter(|b| b.number <= reach)
                .max_by_key(|b| b.number)
                .map_or(watermark.timestamp_ms, |b| b.timestamp_ms);
            watermark = Watermark {
                number: reach,
                timestamp_ms,
                ..watermark
            };
        }
        batch.cursors.push((
            cursor_key,
            Cursor {
                since: None,
                opaque: Some(watermark.render()),
                updated_at: context.now,
            },
        ));
        let applied = context.sink.keep(batch).await?;
        stats.add_applied(&applied);
        stats.batches += 1;
        Ok(kept.is_none())
    }

    /// Where a first sync starts.
    fn lookback_start(&self, context: &SyncContext) -> Timestamp {
        Timestamp(context.now.0.saturating_sub(self.lookback_seconds))
    }

    /// A first sync: `allBuilds` pages until one successful deployment before
    /// the lookback has been read, or the builds end.
    async fn first_builds(
        &self,
        repository: &RepoName,
        job: &JenkinsJobConfig,
        context: &SyncContext,
        stats: &mut RepoSyncStats,
    ) -> Result<Vec<Build>, SourceError> {
        let start = self.lookback_start(context);
        let mut builds = Vec::new();
        for page in 0..MAX_PAGES_PER_SYNC {
            let from = page * ALL_BUILDS_PAGE;
            let read = self
                .page(
                    repository,
                    job,
                    "allBuilds",
                    (from, from + ALL_BUILDS_PAGE),
                    context,
                    stats,
                )
                .await?;
            let ended = read.len() < ALL_BUILDS_PAGE;
            let based = read.iter().any(|b| {
                matches!(
                    b.state,
                    BuildState::Deployment {
                        outcome: DeploymentOutcome::Succeeded { at },
                        ..
                    } if at < start
                )
            });
            builds.extend(read);
            if ended || based {
                return Ok(builds);
            }
        }
        tracing::info!(
            %repository,
            job = %job.path,
            "read the newest {} builds of the job; older ones are not read",
            MAX_PAGES_PER_SYNC * ALL_BUILDS_PAGE
        );
        Ok(builds)
    }

    /// A later sync: the builds newer than the watermark, newest first.
    async fn new_builds(
        &self,
        repository: &RepoName,
        job: &JenkinsJobConfig,
        watermark: Watermark,
        context: &SyncContext,
        stats: &mut RepoSyncStats,
    ) -> Result<Vec<Build>, SourceError> {
        // Whether `builds` (read so far, `asked` of them) may hold more newer
        // than the watermark beyond what was read.
        let more = |builds: &[Build], asked: usize| {
            builds.len() == asked && builds.iter().all(|b| b.number > watermark.number)
        };
        let mut builds = self
            .page(
                repository,
                job,
                "builds",
                (0, INCREMENTAL_PAGE),
                context,
                stats,
            )
            .await?;
        if !more(&builds, INCREMENTAL_PAGE) {
            return Ok(builds);
        }
        let rest = self
            .page(
                repository,
                job,
                "builds",
                (INCREMENTAL_PAGE, BUILDS_LIMIT),
                context,
                stats,
            )
            .await?;
        builds.extend(rest);
        if !more(&builds, BUILDS_LIMIT) {
            return Ok(builds);
        }
        // More than 100 builds since the last sync (the collector was down):
        // `builds` stops at 100, `allBuilds` goes on.
        tracing::info!(
            %repository,
            job = %job.path,
            "more than {BUILDS_LIMIT} builds since the last sync: reading allBuilds"
        );
        for page in 1..MAX_PAGES_PER_SYNC {
            let from = page * ALL_BUILDS_PAGE;
            let read = self
                .page(
                    repository,
                    job,
                    "allBuilds",
                    (from, from + ALL_BUILDS_PAGE),
                    context,
                    stats,
                )
                .await?;
            let done =
                read.len() < ALL_BUILDS_PAGE || read.iter().any(|b| b.number <= watermark.number);
            builds.extend(read);
            if done {
                break;
            }
        }
        Ok(builds)
    }
}

impl Source for JenkinsSource {
    fn name(&self) -> &'static str {
        SOURCE_NAME
    }

    fn repositories(&self) -> Vec<RepoName> {
        self.repositories.clone()
    }

    fn sync_repository<'a>(
        &'a self,
        repository: &'a RepoName,
        context: &'a SyncContext,
    ) -> BoxFuture<'a, Result<RepoSyncStats, SourceError>> {
        Box::pin(async move {
            let mut stats = RepoSyncStats::default();
            let mut failure = None;
            let jobs = self.jobs.get(repository).map_or(&[][..], Vec::as_slice);
            for job in jobs {
                if context.shutdown.is_cancelled() {
                    return Err(SourceError::Cancelled);
                }
                match self.sync_job(repository, job, context, &mut stats).await {
                    Ok(first) => stats.first_sync |= first,
                    Err(error) if error.is_cancelled() => return Err(error),
                    Err(error) => {
                        tracing::error!(
                            %repository,
                            job = %job.path,
                            %error,
                            "cannot read the Jenkins job; the repository's other jobs are read on"
                        );
                        failure.get_or_insert(error);
                    }
                }
            }
            match failure {
                Some(error) => Err(error),
                None => {
                    // Every one read: the repository's deployments from here
                    // are complete back to the lookback's start.
                    stats.history_since = Some(self.lookback_start(context));
                    Ok(stats)
                }
            }
        })
    }

    fn api_health(&self) -> ApiHealth {
        self.client.api_health(&self.skipped, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_round_trip_and_refuse_anything_else() {
        let watermark = Watermark {
            epoch: 2,
            number: 41,
            timestamp_ms: 1_700_000_000_123,
        };
        assert_eq!(Watermark::parse(&watermark.render()), Some(watermark));
        for bad in ["", "1 2", "1 2 3 4", "a 2 3", "-1 2 3"] {
            assert_eq!(Watermark::parse(bad), None, "{bad}");
        }
    }
}

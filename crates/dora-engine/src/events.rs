//! `Events`, the engine's input, and `EventsBuilder`, which collects domain events
//! in any order and indexes them per repository (commit graphs, compare lookups).
//! [`EventSink`] is how a reader of kept events (the store) hands them over
//! without building the engine's types itself.

use super::graph::{CommitGraph, StagedCommits};
use crate::domain::{
    Commit, CommitSha, Compare, Deployment, DeploymentOutcome, DeploymentSource, Environment,
    Incident, PullRequest, RepoName, ScopedIncident, Timestamp,
};
use std::any::Any;
use std::collections::{BTreeMap, HashMap};

/// A deployment as the engine keeps it (the repository is implied, the environment
/// interned per repository).
#[derive(Debug, Clone)]
pub(crate) struct DeploymentRecord {
    pub(crate) source: DeploymentSource,
    pub(crate) id: u64,
    /// Index into `RepoEvents::environments`.
    pub(crate) environment: u16,
    pub(crate) sha: CommitSha,
    pub(crate) outcome: DeploymentOutcome,
}

/// One repository's events, indexed.
#[derive(Debug, Default, Clone)]
pub(crate) struct RepoEvents {
    pub(crate) environments: Vec<Environment>,
    pub(crate) deployments: Vec<DeploymentRecord>,
    pub(crate) graph: CommitGraph,
    /// `(base, head)` -> compare result.
    pub(crate) compares: HashMap<(CommitSha, CommitSha), Compare>,
    pub(crate) incidents: Vec<Incident>,
    pub(crate) pull_requests: Vec<PullRequest>,
    /// The environments the repository's source reads as production (GitLab's
    /// tier `production`), counted besides the configured ones.
    pub(crate) declared_production: Vec<Environment>,
    /// Since when the first reviews of the repository's pull requests are
    /// complete (the source read them for every change deployed from then on);
    /// `None`: no limit known (a source without reviews, or one that read them
    /// all). A window starting before it has no lead-time stages.
    pub(crate) reviews_since: Option<Timestamp>,
}

impl RepoEvents {
    /// The production environments of this repository: the configured ones, then
    /// those its source declared that match none of them (case-insensitively),
    /// in name order, each once. A scope's label is this spelling.
    pub(crate) fn production(&self, configured: &[Environment]) -> Vec<Environment> {
        let mut production = configured.to_vec();
        let mut declared: Vec<&Environment> = self.declared_production.iter().collect();
        declared.sort();
        for environment in declared {
            if !production.iter().any(|p| p.matches(environment.as_str())) {
                production.push(environment.clone());
            }
        }
        production
    }
}

/// The engine's input: every event in the store, grouped by repository.
#[derive(Debug, Default, Clone)]
pub struct Events {
    pub(crate) repositories: BTreeMap<RepoName, RepoEvents>,
    /// Incidents reported against a team or a set of repositories, one per
    /// identity.
    pub(crate) scoped_incidents: Vec<ScopedIncident>,
}

impl Events {
    /// An empty [`EventsBuilder`].
    pub fn builder() -> EventsBuilder {
        EventsBuilder::default()
    }

    /// The repositories that have any event.
    pub fn repositories(&self) -> impl Iterator<Item = &RepoName> {
        self.repositories.keys()
    }

    /// Number of deployments (all outcomes, all environments).
    pub fn deployment_count(&self) -> usize {
        self.repositories
            .values()
            .map(|r| r.deployments.len())
            .sum()
    }

    /// Adds `other`'s repositories (loaded separately, e.g. on another thread).
    /// The two must hold different repositories; a repository in both keeps
    /// `other`'s events.
    pub fn merge(&mut self, other: Events) {
        self.repositories.extend(other.repositories);
        self.scoped_incidents.extend(other.scoped_incidents);
        keep_last_scoped_incidents(&mut self.scoped_incidents);
    }

    /// Number of distinct known commits.
    pub fn commit_count(&self) -> usize {
        self.repositories.values().map(|r| r.graph.len()).sum()
    }
}

/// Where a reader of kept events puts them, repository by repository (every
/// event of one repository, then [`EventSink::finish_repository`]). The engine's
/// [`EventsBuilder`] is one; a reader (the store) fills whichever sink it is given
/// and never names the engine's own types.
pub trait EventSink: Send {
    /// Adds one deployment.
    fn deployment(&mut self, deployment: Deployment);
    /// Adds one commit of `repository`.
    fn commit(
        &mut self,
        repository: &RepoName,
        sha: CommitSha,
        parents: &[CommitSha],
        author_date: crate::domain::Timestamp,
        is_revert: bool,
    );
    /// Adds one compare result of `repository`.
    fn compare(&mut self, repository: &RepoName, compare: Compare);
    /// Adds one incident.
    fn incident(&mut self, incident: Incident);
    /// Adds one pull request.
    fn pull_request(&mut self, pull_request: PullRequest);
    /// Sets the environments `repository`'s source reads as production (GitLab's
    /// tier `production`), replacing any set before.
    fn production_environments(&mut self, repository: &RepoName, environments: Vec<Environment>);
    /// Sets since when the first reviews of `repository`'s pull requests are
    /// complete (the lead-time stages of a window starting before it are
    /// absent), replacing any time set before.
    fn reviews_since(&mut self, repository: &RepoName, since: Timestamp);
    /// Adds one incident of a team or a set of repositories (not of one
    /// repository; at any point of the loading, outside the
    /// repository-by-repository order).
    fn scoped_incident(&mut self, incident: ScopedIncident);
    /// Every event of `repository` has been added (the sink may index it now).
    fn finish_repository(&mut self, repository: &RepoName);
    /// An empty sink of the same kind, for a share of the repositories that a
    /// reader fills on another thread; [`EventSink::join`] takes it back.
    fn fork(&self) -> Box<dyn EventSink>;
    /// Takes in a sink that [`EventSink::fork`] gave, filled with other
    /// repositories than this one holds (a repository in both keeps the forked
    /// sink's events).
    fn join(&mut self, forked: Box<dyn EventSink>);
    /// This sink as [`Any`], so that [`EventSink::join`] can take back its own kind.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl EventSink for EventsBuilder {
    fn deployment(&mut self, deployment: Deployment) {
        EventsBuilder::deployment(self, deployment);
    }
    fn commit(
        &mut self,
        repository: &RepoName,
        sha: CommitSha,
        parents: &[CommitSha],
        author_date: crate::domain::Timestamp,
        is_revert: bool,
    ) {
        self.commit_parts(repository, sha, parents, author_date, is_revert);
    }
    fn compare(&mut self, repository: &RepoName, compare: Compare) {
        EventsBuilder::compare(self, repository, compare);
    }
    fn incident(&mut self, incident: Incident) {
        EventsBuilder::incident(self, incident);
    }
    fn pull_request(&mut self, pull_request: PullRequest) {
        EventsBuilder::pull_request(self, pull_request);
    }
    fn production_environments(&mut self, repository: &RepoName, environments: Vec<Environment>) {
        EventsBuilder::production_environments(self, repository, environments);
    }
    fn reviews_since(&mut self, repository: &RepoName, since: Timestamp) {
        EventsBuilder::reviews_since(self, repository, since);
    }
    fn scoped_incident(&mut self, incident: ScopedIncident) {
        EventsBuilder::scoped_incident(self, incident);
    }
    fn finish_repository(&mut self, repository: &RepoName) {
        EventsBuilder::finish_repository(self, repository);
    }
    fn fork(&self) -> Box<dyn EventSink> {
        Box::new(EventsBuilder::default())
    }
    fn join(&mut self, forked: Box<dyn EventSink>) {
        match forked.into_any().downcast::<EventsBuilder>() {
            Ok(forked) => self.absorb(*forked),
            // A sink of another kind cannot have come from `fork`.
            Err(_) => unreachable!("EventsBuilder::join of a sink it did not fork"),
        }
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[derive(Debug, Default)]
struct RepoBuilder {
    events: RepoEvents,
    staged: StagedCommits,
    finished: bool,
}

/// Collects events in any order. Re-adding an event with the same identity
/// replaces the earlier one (the store's upsert semantics), so results never depend
/// on duplicates or order.
#[derive(Debug, Default)]
pub struct EventsBuilder {
    repositories: Vec<(RepoName, RepoBuilder)>,
    index: HashMap<RepoName, usize>,
    /// The repository of the previous call: loaders add events repository by
    /// repository, so this spares a lookup per commit.
    last: Option<usize>,
    /// Scoped incidents, in the order added.
    scoped_incidents: Vec<ScopedIncident>,
}

impl EventsBuilder {
    fn repo(&mut self, repository: &RepoName) -> &mut RepoBuilder {
        let position = match self.last {
            Some(last) if self.repositories[last].0 == *repository => last,
            _ => match self.index.get(repository) {
                Some(&position) => position,
                None => {
                    self.repositories
                        .push((repository.clone(), RepoBuilder::default()));
                    self.index
                        .insert(repository.clone(), self.repositories.len() - 1);
                    self.repositories.len() - 1
                }
            },
        };
        self.last = Some(position);
        &mut self.repositories[position].1
    }

    /// Adds one deployment (replacing an earlier one of the same source and id).
    pub fn deployment(&mut self, deployment: Deployment) -> &mut Self {
        let repo = &mut self.repo(&deployment.repository).events;
        let environment = match repo
            .environments
            .iter()
            .position(|e| *e == deployment.environment)
        {
            Some(index) => index,
            None => {
                repo.environments.push(deployment.environment.clone());
                repo.environments.len() - 1
            }
        };
        repo.deployments.push(DeploymentRecord {
            source: deployment.source,
            id: deployment.id,
            environment: environment as u16,
            sha: deployment.sha,
            outcome: deployment.outcome,
        });
        self
    }

    /// Adds one commit of `repository`.
    pub fn commit(&mut self, repository: &RepoName, commit: &Commit) -> &mut Self {
        self.repo(repository).staged.push(
            commit.sha,
            &commit.parents,
            commit.author_date.0,
            commit.is_revert,
        );
        self
    }

    /// Adds a commit without building a [`Commit`] (bulk loading).
    pub fn commit_parts(
        &mut self,
        repository: &RepoName,
        sha: CommitSha,
        parents: &[CommitSha],
        author_date: crate::domain::Timestamp,
        is_revert: bool,
    ) -> &mut Self {
        self.repo(repository)
            .staged
            .push(sha, parents, author_date.0, is_revert);
        self
    }

    /// Adds one compare result of `repository` (replacing an earlier one of the
    /// same base and head).
    pub fn compare(&mut self, repository: &RepoName, compare: Compare) -> &mut Self {
        self.repo(repository)
            .events
            .compares
            .insert((compare.base, compare.head), compare);
        self
    }

    /// Adds one incident (replacing an earlier one of the same source, repository
    /// and number).
    pub fn incident(&mut self, incident: Incident) -> &mut Self {
        let repository = incident.repository.clone();
        self.repo(&repository).events.incidents.push(incident);
        self
    }

    /// Adds one pull request (replacing an earlier one of the same repository and
    /// number).
    pub fn pull_request(&mut self, pull_request: PullRequest) -> &mut Self {
        let repository = pull_request.repository.clone();
        self.repo(&repository)
            .events
            .pull_requests
            .push(pull_request);
        self
    }

    /// Sets the environments `repository`'s source reads as production (GitLab's
    /// tier `production`): they count besides the configured production
    /// environments, labelled with their own spelling. Replaces any set before.
    pub fn production_environments(
        &mut self,
        repository: &RepoName,
        environments: Vec<Environment>,
    ) -> &mut Self {
        self.repo(repository).events.declared_production = environments;
        self
    }

    /// Sets since when the first reviews of `repository`'s pull requests are
    /// complete: a window that starts before it has no lead-time stages (they
    /// would come from part of its changes). Replaces any time set before.
    pub fn reviews_since(&mut self, repository: &RepoName, since: Timestamp) -> &mut Self {
        self.repo(repository).events.reviews_since = Some(since);
        self
    }

    /// Adds one incident of a team or a set of repositories (replacing an
    /// earlier one of the same source and number).
    pub fn scoped_incident(&mut self, incident: ScopedIncident) -> &mut Self {
        self.scoped_incidents.push(incident);
        self
    }

    /// Indexes the commits added so far for `repository` now, releasing their staging
    /// memory early. Optional: `build` does it for the rest. Commits added later are
    /// merged in.
    pub fn finish_repository(&mut self, repository: &RepoName) -> &mut Self {
        if let Some(&position) = self.index.get(repository) {
            finish(&mut self.repositories[position].1);
        }
        self
    }

    /// Takes in `other`'s repositories (a repository in both keeps `other`'s).
    fn absorb(&mut self, other: EventsBuilder) {
        for (name, repo) in other.repositories {
            match self.index.get(&name) {
                Some(&position) => self.repositories[position].1 = repo,
                None => {
                    self.index.insert(name.clone(), self.repositories.len());
                    self.repositories.push((name, repo));
                }
            }
        }
        self.scoped_incidents.extend(other.scoped_incidents);
        self.last = None;
    }

    /// Fills a new builder through `fill` (a reader of kept events, such as the
    /// store's `load_events`) and builds the events.
    pub fn collect<E>(fill: impl FnOnce(&mut dyn EventSink) -> Result<(), E>) -> Result<Events, E> {
        let mut builder = EventsBuilder::default();
        fill(&mut builder)?;
        Ok(builder.build())
    }

    /// Indexes what is not yet indexed, keeps the last added of each identity and
    /// returns the events.
    pub fn build(self) -> Events {
        let repositories = self
            .repositories
            .into_iter()
            .map(|(name, mut repo)| {
                finish(&mut repo);
                dedup_by_identity(&mut repo.events);
                (name, repo.events)
            })
            .collect();
        let mut scoped_incidents = self.scoped_incidents;
        keep_last_scoped_incidents(&mut scoped_incidents);
        Events {
            repositories,
            scoped_incidents,
        }
    }
}

fn finish(repo: &mut RepoBuilder) {
    if repo.finished && repo.staged.is_empty() {
        return;
    }
    let staged = std::mem::take(&mut repo.staged);
    let existing = repo
        .finished
        .then(|| std::mem::take(&mut repo.events.graph));
    repo.events.graph = CommitGraph::build(staged, existing);
    repo.finished = true;
}

/// Keeps the last added of each identity.
fn keep_last<T, K: Ord>(items: &mut Vec<T>, key: impl Fn(&T) -> K) {
    let mut indexed: Vec<(usize, T)> = std::mem::take(items).into_iter().enumerate().collect();
    // Stable sort by key; then within a key the last-added comes last.
    indexed.sort_by(|(ia, a), (ib, b)| key(a).cmp(&key(b)).then(ia.cmp(ib)));
    let mut out: Vec<T> = Vec::with_capacity(indexed.len());
    let mut previous: Option<K> = None;
    for (_, item) in indexed {
        let k = key(&item);
        if previous.as_ref() == Some(&k) {
            out.pop();
        }
        previous = Some(k);
        out.push(item);
    }
    *items = out;
}

/// Keeps the last added scoped incident of each identity, sorted by it.
fn keep_last_scoped_incidents(incidents: &mut Vec<ScopedIncident>) {
    keep_last(incidents, |i| (i.source, i.number));
}

/// Keeps the last added of each identity.
fn dedup_by_identity(repo: &mut RepoEvents) {
    keep_last(&mut repo.deployments, |d| (d.source, d.id));
    keep_last(&mut repo.incidents, |i| (i.source, i.number));
    keep_last(&mut repo.pull_requests, |p| p.number);
}

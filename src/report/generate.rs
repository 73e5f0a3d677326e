//! From a store and a configuration to a [`Report`]: which repositories (the
//! configured ones, or one team's), one `load_events`, the evaluations, the build.
//!
//! It reads the store and nothing else: no API call, no clock (the caller gives
//! `until` and `generated_at`), no write. [`open_store`] refuses a store file that
//! does not exist rather than creating an empty one.

use super::build::ReportContext;
use super::evaluate::evaluate;
use super::model::Report;
use super::period::ReportWindow;
use crate::config::Config;
use crate::domain::{RepoName, Team, Timestamp};
use crate::dora::EventsBuilder;
use crate::store::{SqliteStore, Store, StoreError, SyncStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// How many configured team names an unknown-team error lists before "and N more".
pub(crate) const MAX_LISTED_TEAMS: usize = 20;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "the store {} does not exist (storage.path); the report reads the store that \
         `dora-collector serve` or `dora-collector sync --once` fills, so run one of them \
         with this configuration first",
        path.display()
    )]
    MissingStore { path: PathBuf },

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("team {team:?} is not in the configuration; its teams are: {known}")]
    UnknownTeam { team: String, known: String },

    #[error("cannot render the report as {format}: {cause}")]
    Render { format: &'static str, cause: String },
}

/// What to report on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    pub window: ReportWindow,
    /// The end of the period (inclusive).
    pub until: Timestamp,
    /// Limit the report to this team's repositories.
    pub team: Option<Team>,
    /// When the report is made (shown, and the reference for stale data).
    pub generated_at: Timestamp,
}

/// Opens the store at `path` for a report. A missing file is an error (opening it
/// with [`SqliteStore::open`] would create an empty store and report zeros). The
/// report only reads; opening does what every open does (a pending schema
/// migration, the WAL journal mode), which the daemon would do anyway.
pub fn open_store(path: &Path) -> Result<SqliteStore, ReportError> {
    if !path.exists() {
        return Err(ReportError::MissingStore {
            path: path.to_owned(),
        });
    }
    Ok(SqliteStore::open(path)?)
}

/// Opens the store `storage` names for a report: the SQLite file as
/// [`open_store`] does (a missing file is an error), or the PostgreSQL database.
pub fn open_configured_store(
    storage: &crate::config::StorageConfig,
) -> Result<Box<dyn Store>, ReportError> {
    match &storage.url {
        Some(url) => Ok(Box::new(crate::store::PostgresStore::open(url)?)),
        None => Ok(Box::new(open_store(&storage.path)?)),
    }
}

/// The repositories of the report out of `all` (with their teams): all of them,
/// or those of `team` (an unknown team is an error naming the known ones).
pub(crate) fn selected_repositories(
    all: BTreeMap<RepoName, Team>,
    team: Option<&Team>,
) -> Result<BTreeMap<RepoName, Team>, ReportError> {
    let Some(team) = team else {
        return Ok(all);
    };
    let selected: BTreeMap<RepoName, Team> = all
        .iter()
        .filter(|(_, t)| *t == team)
        .map(|(r, t)| (r.clone(), t.clone()))
        .collect();
    if selected.is_empty() {
        let known: BTreeSet<&str> = all.values().map(Team::as_str).collect();
        let mut names: Vec<String> = known
            .iter()
            .take(MAX_LISTED_TEAMS)
            .map(|t| format!("{t:?}"))
            .collect();
        if known.len() > MAX_LISTED_TEAMS {
            names.push(format!("and {} more", known.len() - MAX_LISTED_TEAMS));
        }
        return Err(ReportError::UnknownTeam {
            team: team.as_str().to_owned(),
            known: names.join(", "),
        });
    }
    Ok(selected)
}

/// Makes the report from what `store` holds for the configured repositories.
pub fn generate(
    store: &dyn Store,
    config: &Config,
    request: &ReportRequest,
) -> Result<Report, ReportError> {
    // The configured repositories, the discovered ones the daemon kept (with
    // their last team, also once they left the scope), and those known only
    // through pushes (team `unassigned`, as in the metrics).
    let mut all = config.engine_config().teams;
    for (repository, team) in store.recorded_teams()? {
        all.entry(repository).or_insert(team);
    }
    for pushed in store.pushed_repositories()? {
        all.entry(pushed).or_default();
    }
    let repositories = selected_repositories(all, request.team.as_ref())?;
    let mut engine = config.engine_config();
    engine.teams = repositories.clone();
    let names: Vec<RepoName> = repositories.keys().cloned().collect();

    let sync_status: Vec<SyncStatus> = store
        .sync_status()?
        .into_iter()
        .filter(|s| repositories.contains_key(&s.repository))
        .collect();
    let events = EventsBuilder::collect(|sink| store.load_events(&names, sink))?;
    let window = request.window.to_window();
    let evaluation = evaluate(&events, &engine, &window, request.until);
    drop(events);

    let thresholds = engine.thresholds.clone();
    let poll_interval_seconds = i64::try_from(config.poll_interval().as_secs()).unwrap_or(i64::MAX);
    let context = ReportContext {
        generated_at: request.generated_at,
        team: request.team.as_ref(),
        thresholds: &thresholds,
        poll_interval_seconds,
        repositories: &repositories,
        sync_status: &sync_status,
    };
    Ok(Report::build(&evaluation, &context))
}

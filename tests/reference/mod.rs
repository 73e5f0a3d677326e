//! The reference implementation of the DORA definitions, for the end-to-end tests:
//! from a simulated organisation (the generator's truth), the configuration and the
//! evaluation time `now`, every DORA series `/metrics` must export, computed
//! independently of the collector's engine (`dora::compute`), the naive way and
//! straight from the definitions of `docs/computation.md`.
//!
//! ```ignore
//! mod reference;
//! let params = reference::Params::for_org(&org); // or Params::from_config(&config, ..)
//! // The daemon's configuration file: params.to_config_toml(api_url, token, db, listen)
//! let now = reference::snapshot_time(&scrape_text).unwrap(); // the snapshot's `now`
//! let expected = reference::expected(&org, &params, now);
//! reference::assert_matches(&scrape_text, &expected);
//! ```
//!
//! Layout:
//! - `params`: the configuration as plain values (by hand, from an `Org`, or from the
//!   collector's `Config`), including the first sync's lookback.
//! - `store`: what the collector reads of a repository's deployments (the lookback
//!   plus one older successful deployment per environment as the base), with
//!   outcomes derived from raw statuses and run fields (computation.md § Deployments).
//! - `definitions`: changes, lead times, rollbacks, rework, attribution, recovery
//!   (computation.md § Change sets to § Time to restore service) per repository,
//!   with plain sets and scans.
//! - `series`: windows, formulas, rollups and levels (computation.md § Windows and
//!   formulas to § Performance levels) written as the series of `docs/metrics.md`.
//! - `prom`: a parser of the Prometheus text exposition.
//! - `compare`: scrape versus expectations, every difference listed.
//! - `push`: the input of repositories fed by the push API instead of the
//!   simulated GitHub (`reference::push::expected(&pushed, &params, now)`).
//! - `services`: incidents that are not GitHub issues, of incident-tool services
//!   mapped to repositories or a team
//!   (`reference::services::expected(&org, &params, now, &services)`).
//!
//! Where DORA itself is silent it follows the choices `docs/computation.md` records
//! (scopes are every configured repository × every production environment; events
//! after `now` do not exist; the first deployment has no base and gives no lead
//! time; a root cause matching nothing falls back to time; negative lead times are
//! dropped). It uses the simulator's raw data only (statuses, run fields, parent
//! links, messages, labels, bodies), never its derived helpers such as
//! `SimDeployment::outcome`.
//!
//! It does not cover the collector's own health families, and it is slow on
//! purpose: small organisations only.
#![allow(dead_code)]

pub mod compare;
pub mod definitions;
pub mod params;
pub mod prom;
pub mod push;
pub mod series;
pub mod services;
pub mod store;

pub use compare::{assert_matches, differences, snapshot_time};
pub use definitions::RepoAnalysis;
pub use params::{DeploymentsFrom, Params, RepoParams, WindowParam};
pub use series::Expected;

use dora_collector::domain::Timestamp;
use dora_collector::sim::gitlab::GitlabGroup;
use dora_collector::sim::{Org, SimRepo};

/// computation.md § Events to § Recovery for every configured repository at `now` (in configuration order).
pub fn analyse(org: &Org, params: &Params, now: Timestamp) -> Vec<RepoAnalysis> {
    analyse_hosts(Some(org), None, params, now)
}

/// [`analyse`] of repositories on GitHub (`org`, by `owner/name`) and GitLab
/// (`group`, by project path).
pub fn analyse_hosts(
    org: Option<&Org>,
    group: Option<&GitlabGroup>,
    params: &Params,
    now: Timestamp,
) -> Vec<RepoAnalysis> {
    let find = |name: &str| -> Option<&SimRepo> {
        let on_github = org.and_then(|org| {
            org.repos
                .iter()
                .enumerate()
                .find(|(index, _)| org.full_name(*index) == name)
                .map(|(_, repo)| repo)
        });
        on_github.or_else(|| {
            let group = group?;
            let index = group.projects.iter().position(|p| p.repository() == name)?;
            group.org.repos.get(index)
        })
    };
    params
        .repositories
        .iter()
        .map(|config| definitions::analyse(find(&config.name), config, params, now.0))
        .collect()
}

/// Every DORA series `/metrics` must export for `org` under `params` at `now`.
pub fn expected(org: &Org, params: &Params, now: Timestamp) -> Expected {
    series::expected_series(&analyse(org, params, now), params, now.0)
}

/// [`expected`] of repositories on GitHub (`org`) and GitLab (`group`).
pub fn expected_hosts(
    org: Option<&Org>,
    group: Option<&GitlabGroup>,
    params: &Params,
    now: Timestamp,
) -> Expected {
    series::expected_series(&analyse_hosts(org, group, params, now), params, now.0)
}

//! Repository discovery: the repositories of each `[[github.organizations]]`
//! entry, listed at the start of every cycle, filtered, and merged with the
//! explicit `[[github.repositories]]` into the cycle's scope (each repository's
//! deployments source and team).
//!
//! - The list is `GET /orgs/{org}/repos?type=all&sort=full_name&direction=asc`,
//!   100 a page, every page asked with its own kept `ETag` (a page that did not
//!   change answers `304`, which costs nothing): a cycle where nothing changed
//!   costs no request of the budget, and a change on any page (a repository
//!   added, removed, archived, pushed to) re-reads just the pages it touched.
//!   What was read is kept in memory; after a restart the first cycle reads
//!   every page once.
//! - A listing that fails keeps the previous one for this cycle (a transient
//!   error never drops repositories); an organisation never listed yet is
//!   reported as pending (`/readyz` waits for it).
//! - Selection: `include` (one must match) and `exclude` (none may) globs on the
//!   name; archived repositories, forks and empty ones (`size` 0: GitHub's empty
//!   repository) are left out unless the organisation's options include them.
//! - Teams: `config` (the explicit entry's team, else `unassigned`), `topics`
//!   (the first `team-<name>` topic in alphabetical order), `github_teams`
//!   (`teams.rs`). An explicit `[[github.repositories]]` entry always gives its
//!   own team and deployments.
//!
//! Not here: syncing the repositories (the steps), the installation that reads an
//! organisation (`app.rs`), what leaving the scope means for what was kept
//! (nothing: history stays) and for `/metrics` (the daemon computes the scope's
//! series).

use super::client::{Client, Endpoint, Fetched, PER_PAGE};
use super::error::GithubError;
use super::models;
use crate::config::{DeploymentsConfig, OrganizationConfig, RepositoryConfig, TeamFrom};
use crate::domain::{RepoName, Team};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use tokio_util::sync::CancellationToken;

/// The most pages of one organisation's list read: 100,000 repositories, far
/// beyond any organisation; more means a server that never ends its list.
pub const MAX_DISCOVERY_PAGES: usize = 1000;

/// The prefix of a topic that names a repository's team (`team-payments`).
pub const TEAM_TOPIC_PREFIX: &str = "team-";

/// The most topics read from one repository (GitHub allows 20).
const MAX_TOPICS: usize = 64;

/// One repository as its organisation's list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed {
    pub name: RepoName,
    pub archived: bool,
    pub fork: bool,
    /// `size` 0: no commit yet.
    pub empty: bool,
    /// Lowercase, sorted.
    pub topics: Vec<String>,
}

/// One page as kept: its `ETag` (kept form) and what it listed.
#[derive(Debug, Clone)]
pub(super) struct KeptPage<T> {
    etag: Option<String>,
    items: Vec<T>,
    has_next: bool,
}

/// A list read page by page, as last read.
#[derive(Debug, Clone)]
pub(super) struct KeptList<T> {
    pages: Vec<KeptPage<T>>,
}

impl<T> Default for KeptList<T> {
    fn default() -> Self {
        KeptList { pages: Vec::new() }
    }
}

impl<T> KeptList<T> {
    /// A list of one page holding `items` (tests).
    #[cfg(test)]
    pub(super) fn from_items(items: Vec<T>) -> KeptList<T> {
        KeptList {
            pages: vec![KeptPage {
                etag: None,
                items,
                has_next: false,
            }],
        }
    }

    /// Every item, in list order.
    pub(super) fn items(&self) -> impl Iterator<Item = &T> {
        self.pages.iter().flat_map(|page| &page.items)
    }
}

/// An organisation's list of repositories as last read.
pub(super) type Listing = KeptList<Listed>;

impl Listing {
    /// Every repository listed, in list order.
    pub(super) fn repositories(&self) -> impl Iterator<Item = &Listed> {
        self.items()
    }
}

/// What reading a list cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ListingCost {
    /// Requests made.
    pub requests: u64,
    /// Of those, pages that had not changed (`304`, free).
    pub not_modified: u64,
}

/// Reads `organization`'s list with `client`, each page conditional on what
/// `kept` holds for it.
pub(super) async fn list(
    client: &Client,
    organization: &str,
    kept: Option<&Listing>,
    cancel: &CancellationToken,
) -> Result<(Listing, ListingCost), GithubError> {
    let base = format!(
        "{}/orgs/{}/repos?type=all&sort=full_name&direction=asc",
        client.base(),
        super::segment(organization),
    );
    read_pages(
        client,
        Endpoint::OrgRepos,
        &base,
        kept,
        cancel,
        &|body, url| read_page(body, url, organization, client),
    )
    .await
}

/// Reads one changed page (its body, its URL) into items.
pub(super) type PageParser<'a, T> = dyn Fn(&[u8], &str) -> Result<Vec<T>, GithubError> + Sync + 'a;

/// Reads the list at `base` (a URL with a query) page by page, each page
/// conditional on its kept `ETag` (a `304` reuses the kept page), `parse`
/// reading a changed one.
pub(super) async fn read_pages<T: Clone>(
    client: &Client,
    endpoint: Endpoint,
    base: &str,
    kept: Option<&KeptList<T>>,
    cancel: &CancellationToken,
    parse: &PageParser<'_, T>,
) -> Result<(KeptList<T>, ListingCost), GithubError> {
    let mut listing = KeptList { pages: Vec::new() };
    let mut cost = ListingCost::default();
    for page in 1..=MAX_DISCOVERY_PAGES {
        let joint = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{joint}per_page={PER_PAGE}&page={page}");
        let kept_page = kept.and_then(|k| k.pages.get(page - 1));
        let etag = kept_page.and_then(|p| p.etag.as_deref());
        cost.requests += 1;
        let fetched = client.fetch(endpoint, &url, etag, cancel).await?;
        let read = match (fetched, kept_page) {
            (Fetched::NotModified, Some(kept_page)) => {
                cost.not_modified += 1;
                kept_page.clone()
            }
            (Fetched::NotModified, None) => {
                return Err(GithubError::InvalidBody {
                    url,
                    reason: "304 to an unconditional request".to_owned(),
                })
            }
            (Fetched::Page { body, next, etag }, _) => KeptPage {
                etag,
                items: parse(&body, &url)?,
                has_next: next.is_some(),
            },
        };
        let more = read.has_next;
        listing.pages.push(read);
        if !more {
            return Ok((listing, cost));
        }
    }
    Err(GithubError::TooManyPages {
        url: base.to_owned(),
        limit: MAX_DISCOVERY_PAGES,
    })
}

/// The repositories of one page; an item that cannot be read is logged and left
/// out (a repository of the organisation is never invented).
fn read_page(
    body: &[u8],
    url: &str,
    organization: &str,
    client: &Client,
) -> Result<Vec<Listed>, GithubError> {
    #[derive(Deserialize)]
    struct Json {
        name: String,
        #[serde(default)]
        archived: bool,
        #[serde(default)]
        fork: bool,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        topics: Vec<String>,
    }
    let mut out = Vec::new();
    for item in models::array(body, url)? {
        let read = item.and_then(|value| {
            let json: Json = serde_json::from_value(value).map_err(|e| e.to_string())?;
            let name = RepoName::parse(&format!("{organization}/{}", json.name))
                .map_err(|e| format!("name: {e}"))?;
            let mut topics: Vec<String> = json
                .topics
                .into_iter()
                .take(MAX_TOPICS)
                .map(|t| t.to_ascii_lowercase())
                .collect();
            topics.sort();
            Ok(Listed {
                name,
                archived: json.archived,
                fork: json.fork,
                empty: json.size == Some(0),
                topics,
            })
        });
        match read {
            Ok(listed) => out.push(listed),
            Err(reason) => tracing::warn!(
                %organization,
                reason = %client.redactor().clean(&reason),
                "skipping a repository of the organisation's list that cannot be read"
            ),
        }
    }
    Ok(out)
}

/// Whether `organization` syncs `listed`.
pub(super) fn selects(organization: &OrganizationConfig, listed: &Listed) -> bool {
    organization.selects(listed.name.name())
        && (organization.include_archived || !listed.archived)
        && (organization.include_forks || !listed.fork)
        && (organization.include_empty || !listed.empty)
}

/// The team a `team-<name>` topic names (the first in alphabetical order).
pub(super) fn team_of_topics(topics: &[String]) -> Option<Team> {
    topics
        .iter()
        .filter_map(|topic| topic.strip_prefix(TEAM_TOPIC_PREFIX))
        .find_map(|name| Team::parse(name).ok())
}

/// The repositories of one cycle: each one's deployments source and team, in
/// order (explicit entries first, in configuration order, then each
/// organisation's, by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Scope {
    pub repositories: Vec<RepoName>,
    pub deployments: HashMap<RepoName, DeploymentsConfig>,
    pub teams: BTreeMap<RepoName, Team>,
}

impl Scope {
    /// The scope of `explicit` repositories and, for each organisation, the
    /// repositories of its listing it selects (`listings` by organisation login,
    /// lowercase); `github_teams` gives a repository's team under `team_from =
    /// "github_teams"`.
    pub(super) fn build(
        explicit: &[RepositoryConfig],
        organizations: &[OrganizationConfig],
        listings: &HashMap<String, Listing>,
        github_teams: &dyn Fn(&RepoName) -> Option<Team>,
    ) -> Scope {
        let mut scope = Scope::default();
        for repository in explicit {
            scope.repositories.push(repository.name.clone());
            scope
                .deployments
                .insert(repository.name.clone(), repository.deployments.clone());
            scope
                .teams
                .insert(repository.name.clone(), repository.team.clone());
        }
        let mut seen: HashSet<RepoName> = scope.repositories.iter().cloned().collect();
        for organization in organizations {
            let Some(listing) = listings.get(&organization.name.as_str().to_ascii_lowercase())
            else {
                continue;
            };
            let mut found: Vec<&Listed> = listing
                .repositories()
                .filter(|listed| selects(organization, listed))
                .filter(|listed| !seen.contains(&listed.name))
                .collect();
            found.sort_by(|a, b| a.name.cmp(&b.name));
            found.dedup_by(|a, b| a.name == b.name);
            for listed in found {
                let team = match organization.team_from {
                    TeamFrom::Config => None,
                    TeamFrom::Topics => team_of_topics(&listed.topics),
                    TeamFrom::GithubTeams => github_teams(&listed.name),
                }
                .unwrap_or_default();
                seen.insert(listed.name.clone());
                scope.repositories.push(listed.name.clone());
                scope
                    .deployments
                    .insert(listed.name.clone(), organization.deployments.clone());
                scope.teams.insert(listed.name.clone(), team);
            }
        }
        scope
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NamePattern, OrgName};

    fn listed(name: &str) -> Listed {
        Listed {
            name: RepoName::parse(name).unwrap(),
            archived: false,
            fork: false,
            empty: false,
            topics: Vec::new(),
        }
    }

    fn organization(name: &str, include: &[&str], exclude: &[&str]) -> OrganizationConfig {
        OrganizationConfig {
            name: OrgName::parse(name).unwrap(),
            include: include
                .iter()
                .map(|p| NamePattern::parse(p).unwrap())
                .collect(),
            exclude: exclude
                .iter()
                .map(|p| NamePattern::parse(p).unwrap())
                .collect(),
            include_archived: false,
            include_forks: false,
            include_empty: false,
            team_from: TeamFrom::Config,
            deployments: DeploymentsConfig::DeploymentsApi,
        }
    }

    #[test]
    fn globs_and_options_select_repositories() {
        let org = organization("acme", &["*"], &["*-archive", "sandbox-*"]);
        let cases = [
            (listed("acme/api"), true),
            (listed("acme/old-archive"), false),
            (listed("acme/sandbox-x"), false),
            (
                Listed {
                    archived: true,
                    ..listed("acme/web")
                },
                false,
            ),
            (
                Listed {
                    fork: true,
                    ..listed("acme/web")
                },
                false,
            ),
            (
                Listed {
                    empty: true,
                    ..listed("acme/web")
                },
                false,
            ),
        ];
        for (repository, expected) in &cases {
            assert_eq!(selects(&org, repository), *expected, "{repository:?}");
        }
        let everything = OrganizationConfig {
            include_archived: true,
            include_forks: true,
            include_empty: true,
            ..organization("acme", &["api*", "web"], &[])
        };
        assert!(selects(
            &everything,
            &Listed {
                archived: true,
                fork: true,
                empty: true,
                ..listed("acme/API-gateway")
            }
        ));
        assert!(!selects(&everything, &listed("acme/billing")));
    }

    #[test]
    fn a_team_topic_names_the_team() {
        let topics = |list: &[&str]| list.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            team_of_topics(&topics(&["rust", "team-payments", "team-web"])),
            Team::parse("payments").ok()
        );
        assert_eq!(team_of_topics(&topics(&["rust", "teams"])), None);
        assert_eq!(team_of_topics(&topics(&["team-"])), None);
    }

    #[test]
    fn explicit_entries_come_first_and_win() {
        let explicit = vec![RepositoryConfig {
            name: RepoName::parse("acme/billing").unwrap(),
            team: Team::parse("payments").unwrap(),
            deployments: DeploymentsConfig::Push,
        }];
        let org = OrganizationConfig {
            team_from: TeamFrom::Topics,
            ..organization("acme", &["*"], &[])
        };
        let listing = Listing {
            pages: vec![KeptPage {
                etag: None,
                items: vec![
                    Listed {
                        topics: vec!["team-web".to_owned()],
                        ..listed("acme/web")
                    },
                    Listed {
                        topics: vec!["team-web".to_owned()],
                        ..listed("acme/billing")
                    },
                    listed("acme/api"),
                ],
                has_next: false,
            }],
        };
        let listings = HashMap::from([("acme".to_owned(), listing)]);
        let scope = Scope::build(&explicit, &[org], &listings, &|_| None);
        let names: Vec<&str> = scope.repositories.iter().map(RepoName::as_str).collect();
        assert_eq!(names, ["acme/billing", "acme/api", "acme/web"]);
        let team = |name: &str| {
            scope.teams[&RepoName::parse(name).unwrap()]
                .as_str()
                .to_owned()
        };
        assert_eq!(team("acme/billing"), "payments");
        assert_eq!(team("acme/web"), "web");
        assert_eq!(team("acme/api"), "unassigned");
        assert_eq!(
            scope.deployments[&RepoName::parse("acme/billing").unwrap()],
            DeploymentsConfig::Push
        );
    }
}

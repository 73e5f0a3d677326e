//! Teams from GitHub (`team_from = "github_teams"`): each cycle, the
//! organisation's teams (`GET /orgs/{org}/teams`) and each team's repositories
//! with the team's permission on them (`GET /orgs/{org}/teams/{team_slug}/repos`),
//! every page conditional on its kept `ETag` (free when unchanged).
//!
//! The rule when several teams have access to a repository: the team with the
//! strongest permission (admin, then maintain, then write, then triage, then
//! read); among equals, the one whose slug sorts first. A repository's team is
//! the team's slug (lowercase, stable in URLs and mentions), so a team renamed on
//! GitHub is followed at the next cycle. Needs the "Members: read" organisation
//! permission (a GitHub App) or `read:org` (a classic token).
//!
//! Not here: which repositories are synced (`discovery.rs`), an explicit entry's
//! team (it always wins, `discovery::Scope::build`).

use super::client::{Client, Endpoint};
use super::discovery::{read_pages, KeptList, ListingCost};
use super::error::GithubError;
use super::models;
use crate::domain::{RepoName, Team};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use tokio_util::sync::CancellationToken;

/// The most teams of one organisation read: far beyond any organisation, a
/// bound on the requests a cycle makes for them.
pub const MAX_TEAMS: usize = 2_000;

/// A team as the organisation's list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ListedTeam {
    pub slug: String,
}

/// A team's permission on one repository, strongest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Permission {
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

/// One repository of a team's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TeamRepository {
    pub name: RepoName,
    pub permission: Permission,
}

/// An organisation's teams and their repositories, as last read.
#[derive(Debug, Clone, Default)]
pub(super) struct TeamListing {
    teams: KeptList<ListedTeam>,
    repositories: HashMap<String, KeptList<TeamRepository>>,
}

impl TeamListing {
    /// Each repository's team by the rule (strongest permission, then slug).
    pub(super) fn assignment(&self) -> BTreeMap<RepoName, Team> {
        let mut best: BTreeMap<RepoName, (Permission, &str)> = BTreeMap::new();
        for team in self.teams.items() {
            let Some(list) = self.repositories.get(&team.slug) else {
                continue;
            };
            for repository in list.items() {
                let candidate = (repository.permission, team.slug.as_str());
                best.entry(repository.name.clone())
                    .and_modify(|held| {
                        let stronger = candidate.0 > held.0;
                        let tie_first = candidate.0 == held.0 && candidate.1 < held.1;
                        if stronger || tie_first {
                            *held = candidate;
                        }
                    })
                    .or_insert(candidate);
            }
        }
        best.into_iter()
            .filter_map(|(repository, (_, slug))| Team::parse(slug).ok().map(|t| (repository, t)))
            .collect()
    }
}

/// Reads `organization`'s teams and each team's repositories with `client`,
/// every page conditional on `kept`.
pub(super) async fn list(
    client: &Client,
    organization: &str,
    kept: Option<&TeamListing>,
    cancel: &CancellationToken,
) -> Result<(TeamListing, ListingCost), GithubError> {
    let org = super::segment(organization);
    let base = format!("{}/orgs/{org}/teams", client.base());
    let (teams, mut cost) = read_pages(
        client,
        Endpoint::OrgTeams,
        &base,
        kept.map(|k| &k.teams),
        cancel,
        &read_teams,
    )
    .await?;
    let mut repositories = HashMap::new();
    for team in teams.items().take(MAX_TEAMS) {
        let base = format!(
            "{}/orgs/{org}/teams/{}/repos",
            client.base(),
            super::segment(&team.slug)
        );
        let kept_list = kept.and_then(|k| k.repositories.get(&team.slug));
        let (list, spent) = read_pages(
            client,
            Endpoint::TeamRepos,
            &base,
            kept_list,
            cancel,
            &|body, url| read_team_repositories(body, url, organization),
        )
        .await?;
        cost.requests += spent.requests;
        cost.not_modified += spent.not_modified;
        repositories.insert(team.slug.clone(), list);
    }
    Ok((
        TeamListing {
            teams,
            repositories,
        },
        cost,
    ))
}

fn read_teams(body: &[u8], url: &str) -> Result<Vec<ListedTeam>, GithubError> {
    #[derive(Deserialize)]
    struct Json {
        slug: String,
    }
    Ok(models::array(body, url)?
        .into_iter()
        .filter_map(|item| {
            let json: Json = serde_json::from_value(item.ok()?).ok()?;
            // A slug is lowercase letters, digits and `-`; anything else is not
            // a team this collector can name.
            let valid = !json.slug.is_empty()
                && json.slug.len() <= crate::config::MAX_NAME_LEN
                && json.slug.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            valid.then_some(ListedTeam { slug: json.slug })
        })
        .collect())
}

fn read_team_repositories(
    body: &[u8],
    url: &str,
    organization: &str,
) -> Result<Vec<TeamRepository>, GithubError> {
    #[derive(Deserialize, Default)]
    struct Permissions {
        #[serde(default)]
        admin: bool,
        #[serde(default)]
        maintain: bool,
        #[serde(default)]
        push: bool,
        #[serde(default)]
        triage: bool,
    }
    #[derive(Deserialize)]
    struct Json {
        name: String,
        #[serde(default)]
        role_name: Option<String>,
        #[serde(default)]
        permissions: Option<Permissions>,
    }
    Ok(models::array(body, url)?
        .into_iter()
        .filter_map(|item| {
            let json: Json = serde_json::from_value(item.ok()?).ok()?;
            let name = RepoName::parse(&format!("{organization}/{}", json.name)).ok()?;
            let permission = match json.role_name.as_deref() {
                Some("admin") => Permission::Admin,
                Some("maintain") => Permission::Maintain,
                Some("write" | "push") => Permission::Write,
                Some("triage") => Permission::Triage,
                Some("read" | "pull") => Permission::Read,
                // A custom role, or none: what the permissions flags say.
                _ => {
                    let p = json.permissions.unwrap_or_default();
                    if p.admin {
                        Permission::Admin
                    } else if p.maintain {
                        Permission::Maintain
                    } else if p.push {
                        Permission::Write
                    } else if p.triage {
                        Permission::Triage
                    } else {
                        Permission::Read
                    }
                }
            };
            Some(TeamRepository { name, permission })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(teams: &[(&str, &[(&str, Permission)])]) -> TeamListing {
        let mut listing = TeamListing::default();
        let slugs: Vec<ListedTeam> = teams
            .iter()
            .map(|(slug, _)| ListedTeam {
                slug: (*slug).to_owned(),
            })
            .collect();
        listing.teams = KeptList::from_items(slugs);
        for (slug, repositories) in teams {
            let items = repositories
                .iter()
                .map(|(name, permission)| TeamRepository {
                    name: RepoName::parse(name).unwrap(),
                    permission: *permission,
                })
                .collect();
            listing
                .repositories
                .insert((*slug).to_owned(), KeptList::from_items(items));
        }
        listing
    }

    #[test]
    fn the_strongest_permission_wins_then_the_first_slug() {
        use Permission::*;
        let listing = listing(&[
            ("web", &[("acme/site", Admin), ("acme/api", Read)]),
            ("platform", &[("acme/api", Maintain), ("acme/infra", Write)]),
            (
                "payments",
                &[("acme/api", Maintain), ("acme/billing", Triage)],
            ),
            ("sre", &[("acme/infra", Write)]),
        ]);
        let teams = listing.assignment();
        let team = |name: &str| teams[&RepoName::parse(name).unwrap()].as_str().to_owned();
        assert_eq!(team("acme/site"), "web");
        assert_eq!(
            team("acme/api"),
            "payments",
            "maintain ties: the first slug"
        );
        assert_eq!(team("acme/infra"), "platform");
        assert_eq!(team("acme/billing"), "payments");
        assert_eq!(teams.len(), 4);
    }

    #[test]
    fn roles_and_permission_flags_are_read() {
        let body = br#"[
            {"name": "a", "role_name": "maintain"},
            {"name": "b", "permissions": {"admin": false, "maintain": false, "push": true, "triage": true, "pull": true}},
            {"name": "c", "role_name": "custom-auditor", "permissions": {"pull": true}},
            {"name": "bad name!"}
        ]"#;
        let read = read_team_repositories(body, "u", "acme").unwrap();
        let permissions: Vec<(&str, Permission)> = read
            .iter()
            .map(|r| (r.name.as_str(), r.permission))
            .collect();
        assert_eq!(
            permissions,
            [
                ("acme/a", Permission::Maintain),
                ("acme/b", Permission::Write),
                ("acme/c", Permission::Read)
            ]
        );
    }
}

//! Request parsing, kept pure: the path to a [`Route`] (with the route template the
//! request counters use), the query string to [`Query`], pagination parameters and
//! GitHub's date filters.
//!
//! Paths are matched segment by segment after percent-decoding, so refs with
//! slashes (`compare/main...feature%2Fx`, `commits/refs/heads/main`) work. Both
//! `/repos/{owner}/{repo}/...` and GitHub's `/repositories/{id}/...` form (used in
//! its `Link` headers) are accepted. Unknown query parameters are ignored, as
//! GitHub ignores them.

use crate::domain::Timestamp;
use chrono::{NaiveDate, NaiveDateTime};
use percent_encoding::percent_decode_str;

/// GitHub's default page size.
pub(crate) const DEFAULT_PER_PAGE: u64 = 30;
/// GitHub's largest page size; larger requests are capped to it.
pub(crate) const MAX_PER_PAGE: u64 = 100;
/// Most query parameters read from one request; the rest are ignored, so a
/// hostile query string cannot make the simulator do unbounded work.
pub(crate) const MAX_QUERY_PAIRS: usize = 64;

/// How a request names its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RepoKey {
    Name { owner: String, repo: String },
    Id(u64),
}

/// The endpoints the simulator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    RateLimit,
    OrgRepos {
        org: String,
    },
    /// `GET /app/installations` (a JWT).
    AppInstallations,
    /// `GET /orgs/{org}/installation` (a JWT).
    OrgInstallation {
        org: String,
    },
    /// `GET /repos/{owner}/{repo}/installation` (a JWT).
    RepoInstallation,
    /// `GET /orgs/{org}/teams`.
    OrgTeams {
        org: String,
    },
    /// `GET /orgs/{org}/teams/{team_slug}/repos`.
    TeamRepos {
        org: String,
        slug: String,
    },
    Repo,
    Deployments,
    DeploymentStatuses {
        deployment_id: String,
    },
    WorkflowRuns {
        workflow_id: String,
    },
    Runs,
    Compare {
        basehead: String,
    },
    Commits,
    Commit {
        reference: String,
    },
    CommitPulls {
        sha: String,
    },
    Issues,
    Pulls,
    PullCommits {
        number: String,
    },
    PullReviews {
        number: String,
    },
}

impl Endpoint {
    /// The route template requests are counted under.
    pub(crate) const fn template(&self) -> &'static str {
        match self {
            Endpoint::RateLimit => "GET /rate_limit",
            Endpoint::OrgRepos { .. } => "GET /orgs/{org}/repos",
            Endpoint::AppInstallations => "GET /app/installations",
            Endpoint::OrgInstallation { .. } => "GET /orgs/{org}/installation",
            Endpoint::RepoInstallation => "GET /repos/{owner}/{repo}/installation",
            Endpoint::OrgTeams { .. } => "GET /orgs/{org}/teams",
            Endpoint::TeamRepos { .. } => "GET /orgs/{org}/teams/{team_slug}/repos",
            Endpoint::Repo => "GET /repos/{owner}/{repo}",
            Endpoint::Deployments => "GET /repos/{owner}/{repo}/deployments",
            Endpoint::DeploymentStatuses { .. } => {
                "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses"
            }
            Endpoint::WorkflowRuns { .. } => {
                "GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs"
            }
            Endpoint::Runs => "GET /repos/{owner}/{repo}/actions/runs",
            Endpoint::Compare { .. } => "GET /repos/{owner}/{repo}/compare/{basehead}",
            Endpoint::Commits => "GET /repos/{owner}/{repo}/commits",
            Endpoint::Commit { .. } => "GET /repos/{owner}/{repo}/commits/{ref}",
            Endpoint::CommitPulls { .. } => "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls",
            Endpoint::Issues => "GET /repos/{owner}/{repo}/issues",
            Endpoint::Pulls => "GET /repos/{owner}/{repo}/pulls",
            Endpoint::PullCommits { .. } => "GET /repos/{owner}/{repo}/pulls/{pull_number}/commits",
            Endpoint::PullReviews { .. } => "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews",
        }
    }
}

/// The template of requests that match no route.
pub(crate) const UNMATCHED: &str = "(unmatched)";

/// A parsed request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// `None` for endpoints outside a repository.
    pub repo: Option<RepoKey>,
    pub endpoint: Endpoint,
    /// The part after `/repos/{owner}/{repo}` or `/repositories/{id}` (with a
    /// leading `/`, or empty), for building `Link` URLs.
    pub rest: String,
}

/// Parses a GET path; `None` for paths the simulator does not serve.
pub(crate) fn parse_path(path: &str) -> Option<Route> {
    let mut segments = Vec::new();
    for raw in path.split('/').skip(1) {
        segments.push(percent_decode_str(raw).decode_utf8().ok()?.into_owned());
    }
    if segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["rate_limit"] => {
            return Some(Route {
                repo: None,
                endpoint: Endpoint::RateLimit,
                rest: String::new(),
            })
        }
        ["orgs", org, "repos"] => {
            return Some(Route {
                repo: None,
                endpoint: Endpoint::OrgRepos {
                    org: (*org).to_owned(),
                },
                rest: String::new(),
            })
        }
        ["orgs", org, "installation"] => {
            return Some(Route {
                repo: None,
                endpoint: Endpoint::OrgInstallation {
                    org: (*org).to_owned(),
                },
                rest: String::new(),
            })
        }
        ["orgs", org, "teams"] => {
            return Some(Route {
                repo: None,
                endpoint: Endpoint::OrgTeams {
                    org: (*org).to_owned(),
                },
                rest: String::new(),
            })
        }
        ["orgs", org, "teams", slug, "repos"] => {
            return Some(Route {
                repo: None,
                endpoint: Endpoint::TeamRepos {
                    org: (*org).to_owned(),
                    slug: (*slug).to_owned(),
                },
                rest: String::new(),
            })
        }
        ["app", "installations"] => {
            return Some(Route {
                repo: None,
                endpoint: Endpoint::AppInstallations,
                rest: String::new(),
            })
        }
        _ => {}
    }
    let (repo, rest): (RepoKey, &[&str]) = match s.as_slice() {
        ["repos", owner, repo, rest @ ..] if !owner.is_empty() && !repo.is_empty() => (
            RepoKey::Name {
                owner: (*owner).to_owned(),
                repo: (*repo).to_owned(),
            },
            rest,
        ),
        ["repositories", id, rest @ ..] => (RepoKey::Id(id.parse().ok()?), rest),
        _ => return None,
    };
    let endpoint = match rest {
        [] => Endpoint::Repo,
        ["installation"] => Endpoint::RepoInstallation,
        ["deployments"] => Endpoint::Deployments,
        ["deployments", id, "statuses"] => Endpoint::DeploymentStatuses {
            deployment_id: (*id).to_owned(),
        },
        ["actions", "workflows", id, "runs"] => Endpoint::WorkflowRuns {
            workflow_id: (*id).to_owned(),
        },
        ["actions", "runs"] => Endpoint::Runs,
        ["compare", basehead @ ..] if !basehead.is_empty() => Endpoint::Compare {
            basehead: basehead.join("/"),
        },
        ["commits"] => Endpoint::Commits,
        ["commits", sha, "pulls"] => Endpoint::CommitPulls {
            sha: (*sha).to_owned(),
        },
        ["commits", reference @ ..] if !reference.is_empty() => Endpoint::Commit {
            reference: reference.join("/"),
        },
        ["issues"] => Endpoint::Issues,
        ["pulls"] => Endpoint::Pulls,
        ["pulls", number, "commits"] => Endpoint::PullCommits {
            number: (*number).to_owned(),
        },
        ["pulls", number, "reviews"] => Endpoint::PullReviews {
            number: (*number).to_owned(),
        },
        _ => return None,
    };
    // Re-encode the rest from the raw path so Link URLs keep the client's escaping.
    let raw_rest = match s.first() {
        Some(&"repos") => path.splitn(5, '/').nth(4).map(|r| format!("/{r}")),
        _ => path.splitn(4, '/').nth(3).map(|r| format!("/{r}")),
    };
    let rest = raw_rest
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();
    Some(Route {
        repo: Some(repo),
        endpoint,
        rest,
    })
}

/// The query string's parameters, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .take(MAX_QUERY_PAIRS)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Query { pairs }
    }

    /// The last value given for `name` (later values win, as in Rails).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` was given at all.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// The pairs without `page`, for building `Link` URLs.
    pub(crate) fn without_page(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `page` and `per_page` as GitHub reads them.
    pub(crate) fn paging(&self) -> Paging {
        let per_page = match self.get("per_page").and_then(parse_count) {
            None | Some(0) => DEFAULT_PER_PAGE,
            Some(n) => n.min(MAX_PER_PAGE),
        };
        let page = match self.get("page").and_then(parse_count) {
            None | Some(0) => 1,
            Some(n) => n,
        };
        Paging { page, per_page }
    }
}

/// A decimal count; digits too large for `u64` saturate. `None` for anything
/// that is not a plain non-negative integer.
fn parse_count(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u64>().unwrap_or(u64::MAX))
}

/// One page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    /// 1-based.
    pub page: u64,
    pub per_page: u64,
}

impl Paging {
    /// The index range of this page within `total` items (empty past the end).
    pub(crate) fn range(&self, total: usize) -> std::ops::Range<usize> {
        let start = (self.page - 1).saturating_mul(self.per_page);
        let start = usize::try_from(start).unwrap_or(usize::MAX).min(total);
        let end = start.saturating_add(self.per_page as usize).min(total);
        start..end
    }

    /// The number of the last page (at least 1).
    pub(crate) fn last_page(&self, total: usize) -> u64 {
        (total as u64).div_ceil(self.per_page).max(1)
    }
}

/// Parses GitHub's timestamp parameters: `YYYY-MM-DDTHH:MM:SSZ` (any RFC 3339
/// offset), `YYYY-MM-DDTHH:MM:SS` (UTC), or a bare date (midnight UTC).
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(at) = Timestamp::parse_rfc3339(text) {
        return Some(at);
    }
    if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Some(Timestamp(at.and_utc().timestamp()));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| Timestamp(at.and_utc().timestamp()))
}

/// A time range from GitHub's search date syntax, as used by the workflow-runs
/// `created` filter: `>=D`, `>D`, `<=D`, `<D`, `D..D` (either side may be `*`),
/// or `D` alone (that whole day, or that instant when a time is given).
/// Bounds are inclusive `(from, to)`.
pub(crate) fn parse_created(text: &str) -> Option<(Option<Timestamp>, Option<Timestamp>)> {
    const DAY: i64 = 86_400;
    let text = text.trim();
    let is_date_only = |s: &str| s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok();
    // The last second a bound covers: a bare date covers its whole day.
    let end_of = |s: &str| -> Option<Timestamp> {
        let at = parse_time(s)?;
        Some(if is_date_only(s) {
            Timestamp(at.0 + DAY - 1)
        } else {
            at
        })
    };
    if let Some(rest) = text.strip_prefix(">=") {
        return Some((Some(parse_time(rest)?), None));
    }
    if let Some(rest) = text.strip_prefix("<=") {
        return Some((None, Some(end_of(rest)?)));
    }
    if let Some(rest) = text.strip_prefix('>') {
        return Some((Some(Timestamp(end_of(rest)?.0 + 1)), None));
    }
    if let Some(rest) = text.strip_prefix('<') {
        return Some((None, Some(Timestamp(parse_time(rest)?.0 - 1))));
    }
    if let Some((from, to)) = text.split_once("..") {
        let from = if from == "*" {
            None
        } else {
            Some(parse_time(from)?)
        };
        let to = if to == "*" { None } else { Some(end_of(to)?) };
        return Some((from, to));
    }
    Some((Some(parse_time(text)?), Some(end_of(text)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(path: &str) -> Option<Endpoint> {
        parse_path(path).map(|r| r.endpoint)
    }

    #[test]
    fn paths_map_to_endpoints() {
        let cases: &[(&str, Option<Endpoint>)] = &[
            ("/rate_limit", Some(Endpoint::RateLimit)),
            ("/repos/acme/api", Some(Endpoint::Repo)),
            ("/repos/acme/api/", Some(Endpoint::Repo)),
            ("/repos/acme/api/deployments", Some(Endpoint::Deployments)),
            (
                "/repos/acme/api/deployments/17/statuses",
                Some(Endpoint::DeploymentStatuses {
                    deployment_id: "17".into(),
                }),
            ),
            (
                "/repos/acme/api/actions/workflows/deploy.yml/runs",
                Some(Endpoint::WorkflowRuns {
                    workflow_id: "deploy.yml".into(),
                }),
            ),
            (
                "/repos/acme/api/compare/main...feature%2Fx",
                Some(Endpoint::Compare {
                    basehead: "main...feature/x".into(),
                }),
            ),
            (
                "/repos/acme/api/compare/main...feature/x",
                Some(Endpoint::Compare {
                    basehead: "main...feature/x".into(),
                }),
            ),
            (
                "/repos/acme/api/commits/refs/heads/main",
                Some(Endpoint::Commit {
                    reference: "refs/heads/main".into(),
                }),
            ),
            (
                "/repos/acme/api/commits/abc/pulls",
                Some(Endpoint::CommitPulls { sha: "abc".into() }),
            ),
            ("/repositories/123/issues", Some(Endpoint::Issues)),
            (
                "/repos/acme/api/pulls/7/commits",
                Some(Endpoint::PullCommits { number: "7".into() }),
            ),
            ("/repos/acme/api/compare", None),
            ("/repos/acme", None),
            ("/repositories/x/issues", None),
            ("/repos/acme/api/%FF", None),
            ("/", None),
            ("", None),
        ];
        for (path, expected) in cases {
            assert_eq!(endpoint(path), *expected, "{path}");
        }
    }

    #[test]
    fn rest_keeps_the_clients_escaping() {
        let route = parse_path("/repos/acme/api/compare/main...feature%2Fx").unwrap();
        assert_eq!(route.rest, "/compare/main...feature%2Fx");
        assert_eq!(
            parse_path("/repositories/9/issues").unwrap().rest,
            "/issues"
        );
        assert_eq!(parse_path("/repos/acme/api").unwrap().rest, "");
    }

    #[test]
    fn paging_defaults_and_caps() {
        let p = |q: &str| Query::parse(Some(q)).paging();
        assert_eq!(
            p(""),
            Paging {
                page: 1,
                per_page: 30
            }
        );
        assert_eq!(
            p("per_page=1000&page=2"),
            Paging {
                page: 2,
                per_page: 100
            }
        );
        assert_eq!(
            p("per_page=0&page=0"),
            Paging {
                page: 1,
                per_page: 30
            }
        );
        assert_eq!(
            p("per_page=-5&page=abc"),
            Paging {
                page: 1,
                per_page: 30
            }
        );
        assert_eq!(
            p("page=99999999999999999999999"),
            Paging {
                page: u64::MAX,
                per_page: 30
            }
        );
        let huge = Paging {
            page: u64::MAX,
            per_page: 100,
        };
        assert_eq!(huge.range(10), 10..10);
        assert_eq!(
            Paging {
                page: 2,
                per_page: 3
            }
            .range(5),
            3..5
        );
        assert_eq!(
            Paging {
                page: 1,
                per_page: 3
            }
            .last_page(0),
            1
        );
        assert_eq!(
            Paging {
                page: 1,
                per_page: 3
            }
            .last_page(7),
            3
        );
    }

    #[test]
    fn created_ranges() {
        let t = |s: &str| parse_time(s).unwrap();
        assert_eq!(
            parse_created(">=2024-01-02"),
            Some((Some(t("2024-01-02")), None))
        );
        assert_eq!(
            parse_created(">=2024-01-02T03:04:05Z"),
            Some((Some(t("2024-01-02T03:04:05Z")), None))
        );
        assert_eq!(
            parse_created("2024-01-02"),
            Some((
                Some(t("2024-01-02")),
                Some(Timestamp(t("2024-01-03").0 - 1))
            ))
        );
        assert_eq!(
            parse_created("2024-01-01..2024-01-02"),
            Some((
                Some(t("2024-01-01")),
                Some(Timestamp(t("2024-01-03").0 - 1))
            ))
        );
        assert_eq!(
            parse_created("*..2024-01-02T00:00:00Z"),
            Some((None, Some(t("2024-01-02"))))
        );
        assert_eq!(
            parse_created("<2024-01-02"),
            Some((None, Some(Timestamp(t("2024-01-02").0 - 1))))
        );
        assert_eq!(
            parse_created(">2024-01-02"),
            Some((Some(t("2024-01-03")), None))
        );
        assert_eq!(parse_created("yesterday"), None);
        assert_eq!(parse_created(">="), None);
    }

    #[test]
    fn query_takes_the_last_value() {
        let q = Query::parse(Some("state=open&state=closed&labels=a%2Cb"));
        assert_eq!(q.get("state"), Some("closed"));
        assert_eq!(q.get("labels"), Some("a,b"));
        assert!(!q.has("sort"));
    }
}

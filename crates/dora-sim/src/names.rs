//! Word lists and the pure functions that turn small numbers into believable names
//! and texts: repository names, people, teams, commit subjects, issue titles.
//!
//! Texts are derived from an index on demand instead of being stored, so that a
//! large organisation keeps one `u32` per commit subject instead of a `String`.
//! Nothing here is random: the generator picks the indices.

/// Repository name stems; combined with [`REPO_KINDS`] for larger organisations.
const REPO_STEMS: &[&str] = &[
    "api",
    "web",
    "billing",
    "checkout",
    "search",
    "payments",
    "identity",
    "catalog",
    "inventory",
    "orders",
    "shipping",
    "notifications",
    "analytics",
    "gateway",
    "mobile",
    "ledger",
    "pricing",
    "reviews",
    "accounts",
    "reports",
    "media",
    "recommendations",
    "fraud",
    "support",
    "onboarding",
];

/// Suffixes used once the plain stems run out.
const REPO_KINDS: &[&str] = &[
    "service", "worker", "ui", "sdk", "jobs", "proxy", "db", "cli",
];

/// Team names; more teams than this get a numeric suffix.
const TEAMS: &[&str] = &[
    "payments", "web", "platform", "data", "mobile", "identity", "growth", "infra",
];

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Grace",
    "Linus",
    "Barbara",
    "Ken",
    "Margaret",
    "Dennis",
    "Frances",
    "Alan",
    "Radia",
    "Guido",
    "Hedy",
    "Bjarne",
    "Katherine",
    "John",
    "Sophie",
    "Edsger",
    "Anita",
    "Niklaus",
    "Jean",
];

const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Allen",
    "Turing",
    "Perlman",
    "Rossum",
    "Lamarr",
    "Stroustrup",
    "Johnson",
    "Backus",
    "Wilson",
    "Dijkstra",
    "Borg",
    "Wirth",
    "Sammet",
];

const VERBS: &[&str] = &[
    "Add", "Fix", "Refactor", "Update", "Remove", "Improve", "Speed up", "Document", "Simplify",
    "Harden", "Rework", "Tidy",
];

const OBJECTS: &[&str] = &[
    "retry logic in the payment client",
    "pagination of the order list",
    "cache invalidation for prices",
    "input validation on signup",
    "timeouts for upstream calls",
    "the checkout flow",
    "logging of failed logins",
    "database connection pooling",
    "feature flag for new search",
    "error handling in webhooks",
    "CSV export of reports",
    "rate limiting on the public API",
    "dark mode styles",
    "session expiry handling",
    "dependency versions",
    "metrics for queue depth",
    "the onboarding email",
    "currency rounding",
    "image resizing",
    "flaky integration test",
];

const INCIDENT_SYMPTOMS: &[&str] = &[
    "Elevated 5xx rate",
    "Checkout latency above SLO",
    "Login failures",
    "Payments stuck in pending",
    "Search returns empty results",
    "Background jobs piling up",
    "Memory leak restarting pods",
    "Wrong prices shown",
];

const ISSUE_TITLES: &[&str] = &[
    "Button misaligned on small screens",
    "Add support for SSO login",
    "Docs: explain the config file",
    "Typo in error message",
    "Export should include time zone",
    "Improve test coverage of the parser",
    "Crash when the list is empty",
    "Allow sorting by date",
    "Upgrade to the latest TLS library",
    "Slow page load on the dashboard",
];

/// The name of repository number `index` (0-based): plain stems first, then
/// `stem-kind` pairs, then a numeric suffix; never repeats.
pub(crate) fn repo_name(index: usize) -> String {
    let stems = REPO_STEMS.len();
    if index < stems {
        return REPO_STEMS[index].to_owned();
    }
    let rest = index - stems;
    let pairs = stems * REPO_KINDS.len();
    let (stem, kind) = (rest % stems, (rest / stems) % REPO_KINDS.len());
    if rest < pairs {
        format!("{}-{}", REPO_STEMS[stem], REPO_KINDS[kind])
    } else {
        format!(
            "{}-{}-{}",
            REPO_STEMS[stem],
            REPO_KINDS[kind],
            rest / pairs + 1
        )
    }
}

/// The name of team number `index`.
pub(crate) fn team_name(index: usize) -> String {
    match TEAMS.get(index) {
        Some(name) => (*name).to_owned(),
        None => format!("{}-{}", TEAMS[index % TEAMS.len()], index / TEAMS.len() + 1),
    }
}

/// `(login, display name)` of person number `index`; unique per index.
pub(crate) fn person(index: usize) -> (String, String) {
    let first = FIRST_NAMES[index % FIRST_NAMES.len()];
    let last = LAST_NAMES[(index / FIRST_NAMES.len() + index) % LAST_NAMES.len()];
    let login = format!(
        "{}-{}{}",
        first.to_ascii_lowercase(),
        last.to_ascii_lowercase(),
        index
    );
    (login, format!("{first} {last}"))
}

/// The subject line of a generated change number `index`.
pub(crate) fn subject(index: u32) -> String {
    let i = index as usize;
    let verb = VERBS[i % VERBS.len()];
    let object = OBJECTS[(i / VERBS.len()) % OBJECTS.len()];
    format!("{verb} {object}")
}

/// A branch-name slug for change `index`, e.g. `fix-the-checkout-flow`.
pub(crate) fn slug(index: u32) -> String {
    let mut out = String::new();
    for word in subject(index).split_whitespace().take(5) {
        if !out.is_empty() {
            out.push('-');
        }
        out.extend(
            word.chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase()),
        );
    }
    out
}

/// An incident title for index `index`.
pub(crate) fn incident_title(index: u32) -> String {
    let symptom = INCIDENT_SYMPTOMS[index as usize % INCIDENT_SYMPTOMS.len()];
    format!("Incident: {symptom}")
}

/// A plain issue title for index `index`.
pub(crate) fn issue_title(index: u32) -> String {
    ISSUE_TITLES[index as usize % ISSUE_TITLES.len()].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn repo_names_never_repeat() {
        let names: HashSet<String> = (0..2000).map(repo_name).collect();
        assert_eq!(names.len(), 2000);
        assert!(names
            .iter()
            .all(|n| crate::domain::RepoName::parse(&format!("acme/{n}")).is_ok()));
    }

    #[test]
    fn people_and_teams_never_repeat() {
        let people: HashSet<String> = (0..500).map(|i| person(i).0).collect();
        assert_eq!(people.len(), 500);
        let teams: HashSet<String> = (0..50).map(team_name).collect();
        assert_eq!(teams.len(), 50);
    }

    #[test]
    fn slugs_are_branch_safe() {
        for i in 0..300 {
            let s = slug(i);
            assert!(!s.is_empty());
            assert!(
                s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{s}"
            );
        }
    }
}

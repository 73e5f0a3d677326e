//! Newtypes for names: `RepoName` (`owner/name` on GitHub, `group/subgroup/project`
//! on GitLab; lowercase), `Environment`, `Team`.

use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// GitHub's limit on a user or organisation login.
const MAX_OWNER_LEN: usize = 39;
/// GitHub's limit on a repository name.
const MAX_REPO_LEN: usize = 100;
/// The most path segments of a repository name: GitLab nests up to 20 levels of
/// subgroups under a top-level group, plus the project itself.
pub const MAX_REPO_SEGMENTS: usize = 22;
/// GitLab's limit on one group or project path.
const MAX_SEGMENT_LEN: usize = 255;
/// The longest repository name, in bytes: it becomes a Prometheus label value and
/// part of every stored event's identity. GitLab's deepest paths of long names
/// stay well under it.
pub const MAX_REPO_NAME_LEN: usize = 512;
/// Bound on environment and team names, in bytes of UTF-8: they become Prometheus
/// label values.
pub const MAX_LABEL_NAME_LEN: usize = 255;

/// The team of a repository that configures none.
pub const DEFAULT_TEAM: &str = "unassigned";

/// A repository: `owner/name` on GitHub, the project's full path
/// `group/subgroup/project` on GitLab (two to [`MAX_REPO_SEGMENTS`] segments);
/// always lowercase (both hosts compare names case-insensitively, and the
/// metrics must not split one repository in two).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName(String);

/// One path segment of the characters GitLab allows (letters, digits, `-`, `_`,
/// `.`; not `.` or `..`), which covers GitHub's owners and names. A leading `-`
/// is accepted: no host has one, so sync units that are no repository use it
/// (`-pagerduty/<service>`).
fn is_path_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= MAX_SEGMENT_LEN
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl RepoName {
    /// Accepts `owner/name` or a GitLab path of more segments
    /// (`group/subgroup/project`), each segment of letters, digits, `-`, `_` and
    /// `.`, and lowercases it. Whether a name is one GitHub can have is
    /// [`RepoName::is_github`].
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        const EXPECTED: &str = "\"owner/name\" or \"group/subgroup/project\"";
        let segments = text.split('/').count();
        let valid = text.len() <= MAX_REPO_NAME_LEN
            && (2..=MAX_REPO_SEGMENTS).contains(&segments)
            && text.split('/').all(is_path_segment);
        if valid {
            Ok(RepoName(text.to_ascii_lowercase()))
        } else {
            Err(DomainError::new(EXPECTED, text))
        }
    }

    /// Accepts only names GitHub can have: `owner/name` with GitHub's characters
    /// (owners letters, digits and `-`, at most 39; names letters, digits, `-`,
    /// `_`, `.`, at most 100).
    pub fn parse_github(text: &str) -> Result<Self, DomainError> {
        const EXPECTED: &str = "\"owner/name\"";
        match RepoName::parse(text) {
            Ok(name) if name.is_github() => Ok(name),
            _ => Err(DomainError::new(EXPECTED, text)),
        }
    }

    /// Whether GitHub can have this name: two segments, the owner of letters,
    /// digits and `-` (at most 39), the name at most 100 characters.
    pub fn is_github(&self) -> bool {
        let Some((owner, name)) = self.0.split_once('/') else {
            return false;
        };
        owner.len() <= MAX_OWNER_LEN
            && owner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.contains('/')
            && name.len() <= MAX_REPO_LEN
    }

    /// The name as `owner/name` (or the GitLab path), lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first slash (a GitHub owner, a GitLab top-level group).
    pub fn owner(&self) -> &str {
        self.0.split_once('/').map(|(o, _)| o).unwrap_or("")
    }

    /// The part after the first slash (a GitHub repository's name; for a GitLab
    /// path, the subgroups and the project).
    pub fn name(&self) -> &str {
        self.0.split_once('/').map(|(_, n)| n).unwrap_or("")
    }
}

impl TryFrom<String> for RepoName {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        RepoName::parse(&value)
    }
}

impl From<RepoName> for String {
    fn from(value: RepoName) -> Self {
        value.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Unicode bidirectional formatting characters (embeddings, overrides,
/// isolates and marks): shown, they reorder the text around them, so a name
/// holding one can pass for another name in a dashboard or report ("Trojan
/// Source", CVE-2021-42574).
pub fn is_bidi_formatting(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

fn is_label_name(text: &str) -> bool {
    !text.trim().is_empty()
        && text.len() <= MAX_LABEL_NAME_LEN
        && !text
            .chars()
            .any(|c| c.is_control() || is_bidi_formatting(c))
}

/// Defines a validated name: a `String` newtype whose `parse` accepts a text for
/// which `$check` holds and otherwise fails with a [`DomainError`] quoting it and
/// saying `$expected`; serde goes through `parse`, so a deserialized name is valid.
/// Used here for environments and teams and by the configuration for its own names
/// (workflows, branches, labels).
#[macro_export]
macro_rules! name_newtype {
    ($(#[$doc:meta])* $name:ident, $expected:expr, $check:path) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, ::serde::Serialize,
            ::serde::Deserialize,
        )]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Accepts `text` when it is a valid name of this kind; the error quotes it.
            pub fn parse(text: &str) -> Result<Self, $crate::DomainError> {
                if $check(text) {
                    Ok($name(text.to_owned()))
                } else {
                    Err($crate::DomainError::new($expected, text))
                }
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::DomainError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                $name::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_newtype!(
    /// A deployment environment as the source names it (`production`, `prod-eu`, ...).
    /// Which environments count is configuration, compared case-insensitively with
    /// [`Environment::matches`].
    Environment,
    "an environment name (1-255 bytes, no control or bidirectional formatting characters)",
    is_label_name
);

name_newtype!(
    /// A team that owns repositories; rollups are computed per team.
    Team,
    "a team name (1-255 bytes, no control or bidirectional formatting characters)",
    is_label_name
);

impl Environment {
    /// Case-insensitive equality, as the definitions compare environment names.
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl Default for Team {
    fn default() -> Self {
        Team(DEFAULT_TEAM.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_are_validated_and_lowercased() {
        let cases: &[(&str, Option<&str>)] = &[
            ("acme/api", Some("acme/api")),
            ("Acme/API.rs", Some("acme/api.rs")),
            ("my-org/my_repo-2", Some("my-org/my_repo-2")),
            ("acme", None),
            ("acme/", None),
            ("/api", None),
            ("acme/api/x", Some("acme/api/x")),
            ("Acme/Platform/Core/API", Some("acme/platform/core/api")),
            ("acme/api/", None),
            ("acme//api", None),
            ("ac me/api", None),
            ("acme/..", None),
            ("acme/-api", Some("acme/-api")),
            // Sync units that are no repository (PagerDuty services).
            ("-pagerduty/PABC123", Some("-pagerduty/pabc123")),
            ("acme_x/api", Some("acme_x/api")),
        ];
        for (input, expected) in cases {
            let got = RepoName::parse(input).ok().map(|r| r.to_string());
            assert_eq!(got.as_deref(), *expected, "input {input:?}");
        }
        let deepest = vec!["g"; MAX_REPO_SEGMENTS].join("/");
        assert!(RepoName::parse(&deepest).is_ok());
        assert!(RepoName::parse(&format!("{deepest}/p")).is_err());
        assert!(RepoName::parse(&format!("a/{}", "b".repeat(MAX_REPO_NAME_LEN))).is_err());
    }

    #[test]
    fn github_names_are_owner_and_name_with_githubs_characters() {
        for github in ["acme/api", "my-org/my_repo.rs", "Acme/API"] {
            assert!(RepoName::parse_github(github).is_ok(), "{github}");
            assert!(RepoName::parse(github).unwrap().is_github(), "{github}");
        }
        for other in [
            "acme/platform/api",
            "acme_x/api",
            &format!("{}/x", "o".repeat(40)),
        ] {
            assert!(RepoName::parse_github(other).is_err(), "{other}");
        }
        let error = RepoName::parse_github("acme/platform/api").unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"expected "owner/name", got "acme/platform/api""#
        );
    }

    #[test]
    fn team_and_environment_names_refuse_control_and_bidi_formatting() {
        for bad in [
            "pay\u{202E}stnemyap",
            "\u{2066}web\u{2069}",
            "a\u{200F}",
            "x\u{061C}",
            "tab\there",
            "nul\0",
            " ",
        ] {
            assert!(Team::parse(bad).is_err(), "{bad:?}");
            assert!(Environment::parse(bad).is_err(), "{bad:?}");
        }
        let error = Team::parse("pay\u{202E}x").unwrap_err().to_string();
        assert!(
            error.contains("\\u{202e}"),
            "the character is shown escaped: {error}"
        );
        for good in [
            "payments",
            "équipe",
            "فريق",
            "チーム",
            "=HYPERLINK(1)",
            "a b",
        ] {
            assert!(Team::parse(good).is_ok(), "{good:?}");
            assert!(Environment::parse(good).is_ok(), "{good:?}");
        }
        assert!(Team::parse(&"é".repeat(MAX_LABEL_NAME_LEN / 2)).is_ok());
        assert!(Team::parse(&"é".repeat(MAX_LABEL_NAME_LEN / 2 + 1)).is_err());
    }

    #[test]
    fn repo_name_error_quotes_the_input() {
        let err = RepoName::parse("acme").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"expected "owner/name" or "group/subgroup/project", got "acme""#
        );
    }

    #[test]
    fn labels_reject_blank_and_control_characters() {
        assert!(Environment::parse("production").is_ok());
        assert!(Environment::parse("  ").is_err());
        assert!(Team::parse("a\nb").is_err());
        assert!(Team::parse(&"x".repeat(256)).is_err());
        assert!(Environment::parse("Production")
            .unwrap()
            .matches("PRODUCTION"));
    }
}

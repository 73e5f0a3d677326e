//! The validated value types of the configuration that the domain module does not
//! already provide: the GitHub API URL, workflow and branch names, label names, log
//! settings, threshold lengths, and the deserializers for `listen`, `storage.path` and
//! the token.
//!
//! Each one checks a single value; relations between values live in `rules`. Error
//! messages say what was expected and quote (a bounded prefix of) what was given,
//! except for the token and URLs with credentials, which are never quoted.

use super::duration::Duration;
use crate::domain::{name_newtype, DomainError, RepoName, MAX_QUOTED_INPUT};
use secrecy::SecretString;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Bound on workflow, branch and label names: longer values are mistakes, and label
/// names end up in logs.
pub const MAX_NAME_LEN: usize = 255;

/// Bound on the token's length. GitHub's tokens are far shorter; a longer value is a
/// file pasted by mistake, and it would be sent in every request header.
pub const MAX_TOKEN_LEN: usize = 1_024;

fn quoted(text: &str) -> String {
    format!(
        "{:?}",
        text.chars().take(MAX_QUOTED_INPUT).collect::<String>()
    )
}

/// The base URL of the GitHub REST API: `https://api.github.com` or, for GitHub
/// Enterprise Server, `https://HOST/api/v3`. Plain `http://` is accepted (tests and
/// simulators). Never carries credentials, a query or a fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiUrl(url::Url);

/// Why a text is not an [`ApiUrl`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiUrlError {
    #[error("expected an http:// or https:// URL such as \"https://api.github.com\" or \"https://argocd.example.com\", got {0}")]
    NotHttp(String),
    #[error(
        "must not contain a user name or password (the token belongs in the table's token \
         key)"
    )]
    Credentials,
    #[error("expected a URL without a query or fragment, got {0}")]
    QueryOrFragment(String),
}

impl ApiUrl {
    pub fn parse(text: &str) -> Result<ApiUrl, ApiUrlError> {
        let url = url::Url::parse(text).map_err(|_| ApiUrlError::NotHttp(quoted(text)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ApiUrlError::NotHttp(quoted(text)));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ApiUrlError::Credentials);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ApiUrlError::QueryOrFragment(quoted(text)));
        }
        Ok(ApiUrl(url))
    }

    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<String> for ApiUrl {
    type Error = ApiUrlError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ApiUrl::parse(&value)
    }
}

impl From<ApiUrl> for String {
    fn from(value: ApiUrl) -> Self {
        value.0.into()
    }
}

impl fmt::Display for ApiUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// The shortest ingest token accepted: 32 characters of a random token are far
/// beyond guessing, and a shorter value is a placeholder left in by mistake.
pub const MIN_INGEST_TOKEN_LEN: usize = 32;

/// The shortest webhook secret accepted, as for ingest tokens: whoever holds one
/// signed delivery can try secrets offline as fast as HMAC-SHA256 runs, so the
/// secret must be random (`openssl rand -hex 32`), and a short one is a
/// placeholder or a password.
pub const MIN_WEBHOOK_SECRET_LEN: usize = 32;

/// The highest `ingest.requests_per_second`: beyond it the limit protects nothing.
pub const MAX_INGEST_REQUESTS_PER_SECOND: u32 = 100_000;

/// The longest ingest client name: it becomes a label value and part of ids.
const MAX_CLIENT_NAME_LEN: usize = 64;

/// The longest repository pattern (an `owner/name` is at most 140 characters; a
/// GitLab path may be longer).
const MAX_PATTERN_LEN: usize = crate::domain::MAX_REPO_NAME_LEN;

fn is_client_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_CLIENT_NAME_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

name_newtype!(
    /// The name of an ingest client (`jenkins`, `gitlab-ci`): letters, digits, `-`,
    /// `_` and `.`.
    ClientName,
    "a client name of 1-64 letters, digits, '-', '_' or '.'",
    is_client_name
);

/// The longest PagerDuty service id accepted (PagerDuty's are 7 characters).
pub const MAX_SERVICE_ID_LEN: usize = 32;

fn is_service_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_SERVICE_ID_LEN
        && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

name_newtype!(
    /// A PagerDuty service id (`PABC123`): letters and digits, as PagerDuty
    /// spells it (ids are case-sensitive).
    ServiceId,
    "a PagerDuty service id such as \"PABC123\" (letters and digits)",
    is_service_id
);

/// A PagerDuty incident urgency (`pagerduty.urgencies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// `high`.
    High,
    /// `low`.
    Low,
}

impl Urgency {
    /// PagerDuty's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Urgency::High => "high",
            Urgency::Low => "low",
        }
    }
}

fn is_repo_pattern(text: &str) -> bool {
    let mut segments = text.split('/');
    let owner = segments.next().unwrap_or("");
    let rest: Vec<&str> = segments.collect();
    let part_ok = |part: &str, extra: &[u8]| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    text.len() <= MAX_PATTERN_LEN
        && (1..crate::domain::MAX_REPO_SEGMENTS).contains(&rest.len())
        && part_ok(owner, b"-_.*?")
        && rest.iter().all(|part| part_ok(part, b"-_.*?"))
}

name_newtype!(
    /// A glob pattern of repository names: `owner/name` (or a GitLab path,
    /// `group/subgroup/project`) where `*` stands for any characters but `/` and
    /// `?` for one; compared case-insensitively (`acme/*`, `*/api`,
    /// `acme/web-?`, `acme/platform/*`). A pattern matches names of as many
    /// segments as it has.
    RepoPattern,
    "a repository pattern such as \"acme/*\" or \"acme/platform/*\" (a path with * and ?)",
    is_repo_pattern
);

impl RepoPattern {
    /// Whether `repository` matches the pattern.
    pub fn matches(&self, repository: &RepoName) -> bool {
        glob_matches(
            self.as_str().to_ascii_lowercase().as_bytes(),
            repository.as_str().as_bytes(),
        )
    }
}

/// `*` (any run of bytes but `/`) and `?` (one byte but `/`) against `text`;
/// iterative with one backtrack point, so linear in practice and never recursive.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if (c == b'?' && text[t] != b'/') || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) if text[star_t] != b'/' => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                _ => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// GitHub's limit on a user or organisation login.
const MAX_LOGIN_LEN: usize = 39;

/// The longest repository-name pattern (a repository name is at most 100
/// characters).
const MAX_NAME_PATTERN_LEN: usize = 200;

fn is_login(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_LOGIN_LEN
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

name_newtype!(
    /// An organisation's login (`acme`): 1 to 39 letters, digits and `-`, compared
    /// case-insensitively as GitHub compares logins.
    OrgName,
    "an organisation login (1-39 letters, digits or '-')",
    is_login
);

impl OrgName {
    /// The repository `name` of this organisation, when `name` is a valid
    /// repository name.
    pub fn repository(&self, name: &str) -> Option<RepoName> {
        RepoName::parse(&format!("{}/{name}", self.as_str())).ok()
    }

    /// Whether `owner` is this organisation (case-insensitively).
    pub fn is(&self, owner: &str) -> bool {
        self.as_str().eq_ignore_ascii_case(owner)
    }
}

fn is_name_pattern(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_NAME_PATTERN_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*' | b'?'))
}

name_newtype!(
    /// A glob pattern of repository names within an organisation (`*`,
    /// `api-*`, `*-archive`, `web-?`): `*` stands for any characters, `?` for one;
    /// compared case-insensitively.
    NamePattern,
    "a repository name pattern such as \"api-*\" (letters, digits, '-', '_', '.', * and ?)",
    is_name_pattern
);

impl NamePattern {
    /// Whether the repository name `name` (without its owner) matches.
    pub fn matches(&self, name: &str) -> bool {
        glob_matches(
            self.as_str().to_ascii_lowercase().as_bytes(),
            name.to_ascii_lowercase().as_bytes(),
        )
    }
}

fn is_workflow(text: &str) -> bool {
    if text.len() > MAX_NAME_LEN {
        return false;
    }
    let is_id = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let is_file = (text.ends_with(".yml") || text.ends_with(".yaml"))
        && text.len() > ".yml".len()
        && !text.contains('/')
        && !text.contains('\\')
        && !text.chars().any(char::is_control)
        && text.trim() == text;
    is_id || is_file
}

/// Follows the essentials of `git check-ref-format` for a branch name.
fn is_branch(text: &str) -> bool {
    text.len() <= MAX_NAME_LEN
        && !text.is_empty()
        && !text.starts_with(['/', '-', '.'])
        && !text.ends_with(['/', '.'])
        && !text.ends_with(".lock")
        && !text.contains("..")
        && !text.contains("//")
        && !text.contains("@{")
        && text != "@"
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
}

fn is_label(text: &str) -> bool {
    text.len() <= MAX_NAME_LEN
        && !text.is_empty()
        && text.trim() == text
        && !text.chars().any(char::is_control)
}

name_newtype!(
    /// The GitHub Actions workflow whose runs are deployments: its file name
    /// (`deploy.yml`, without the `.github/workflows/` directory) or numeric id, as the
    /// GitHub API accepts both.
    WorkflowName,
    "a workflow file name such as \"deploy.yml\" (no directory) or a numeric workflow id",
    is_workflow
);

name_newtype!(
    /// A git branch name such as `main` (checked with the essentials of
    /// `git check-ref-format`).
    BranchName,
    "a git branch name such as \"main\"",
    is_branch
);

name_newtype!(
    /// A GitHub issue or pull-request label name; compared case-insensitively by the
    /// engine.
    LabelName,
    "a label name (1-255 characters, no control characters or surrounding spaces)",
    is_label
);

/// The longest Kubernetes object name (a DNS-1123 subdomain), which an Argo CD
/// application's name is.
const MAX_APPLICATION_NAME_LEN: usize = 253;

/// The longest Kubernetes namespace name (a DNS-1123 label).
const MAX_NAMESPACE_LEN: usize = 63;

/// Whether `text` is a DNS-1123 subdomain (`max` bytes at most): lowercase letters,
/// digits, `-` and `.`, starting and ending with a letter or digit.
fn is_dns_name(text: &str, max: usize, dots: bool) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !text.is_empty()
        && text.len() <= max
        && text.bytes().next().is_some_and(alnum)
        && text.bytes().last().is_some_and(alnum)
        && text
            .bytes()
            .all(|b| alnum(b) || b == b'-' || (dots && b == b'.'))
}

fn is_application_name(text: &str) -> bool {
    match text.split_once('/') {
        Some((namespace, name)) => {
            is_dns_name(namespace, MAX_NAMESPACE_LEN, false)
                && is_dns_name(name, MAX_APPLICATION_NAME_LEN, true)
        }
        None => is_dns_name(text, MAX_APPLICATION_NAME_LEN, true),
    }
}

name_newtype!(
    /// An Argo CD application: its name (a Kubernetes object name such as
    /// `api-prod`), or `namespace/name` for an application in another namespace
    /// than Argo CD's own (asked for with `appNamespace`).
    ApplicationName,
    "an Argo CD application name such as \"api-prod\" (lowercase letters, digits, '-' and \
     '.'), or \"namespace/name\"",
    is_application_name
);

impl ApplicationName {
    /// The namespace, when the name gives one.
    pub fn namespace(&self) -> Option<&str> {
        self.0.split_once('/').map(|(namespace, _)| namespace)
    }

    /// The name without its namespace.
    pub fn name(&self) -> &str {
        self.0
            .split_once('/')
            .map_or(self.0.as_str(), |(_, name)| name)
    }
}

/// The most folder levels of a Jenkins job path (organisation folders and
/// multibranch projects add two or three; more is a mistake).
pub const MAX_JOB_DEPTH: usize = 16;

/// The longest whole Jenkins job path.
const MAX_JOB_PATH_LEN: usize = 1_024;

/// Characters Jenkins refuses in an item name (`Jenkins.checkGoodName`).
const UNSAFE_JOB_NAME_CHARS: &str = "\\:?*\"<>|[]#;@!$^&";

fn is_job_path(text: &str) -> bool {
    let segment_ok = |segment: &str| {
        !segment.is_empty()
            && segment.len() <= MAX_NAME_LEN
            && segment != "."
            && segment != ".."
            && segment.trim() == segment
            && !segment
                .chars()
                .any(|c| c.is_control() || UNSAFE_JOB_NAME_CHARS.contains(c))
    };
    text.len() <= MAX_JOB_PATH_LEN
        && text.split('/').count() <= MAX_JOB_DEPTH
        && text.split('/').all(segment_ok)
}

name_newtype!(
    /// A Jenkins job's full name: its folders and its name separated by `/`
    /// (`deploy/api`), as Jenkins' `fullName` spells it. A multibranch branch
    /// job's name is the branch with `/` written `%2F` (`api/feature%2Fx`), as
    /// Jenkins names the item.
    JobPath,
    "a Jenkins job path such as \"deploy/api\" (folders separated by '/', no empty \
     part, none of \\ : ? * \" < > | [ ] # ; @ ! $ ^ &)",
    is_job_path
);

impl JobPath {
    /// The folders and the job, outermost first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

fn is_jenkins_user(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_NAME_LEN
        && text.trim() == text
        && !text.contains(':')
        && !text.chars().any(char::is_control)
}

name_newtype!(
    /// The Jenkins user an API token belongs to (sent with it as basic
    /// authentication, so it has no `:`).
    JenkinsUser,
    "a Jenkins user name (1-255 characters, no ':', control characters or surrounding \
     spaces)",
    is_jenkins_user
);

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The most verbose level logged (the `RUST_LOG` environment variable, when set,
/// overrides it with full filter syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    /// The default.
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// A positive length of time in seconds, for the lead-time and recovery-time
/// thresholds: written either as a number of seconds (`86400`, `3600.5`) or as a
/// [`Duration`] (`"1d"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Seconds(f64);

const EXPECTED_SECONDS: &str = r#"a positive number of seconds or a duration like "1h" or "7d""#;

impl Seconds {
    /// `None` unless finite and positive.
    pub fn new(seconds: f64) -> Option<Seconds> {
        (seconds.is_finite() && seconds > 0.0).then_some(Seconds(seconds))
    }

    pub const fn get(self) -> f64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;
        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED_SECONDS)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Seconds::new(v)
                    .ok_or_else(|| E::custom(format_args!("expected {EXPECTED_SECONDS}, got {v}")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                let duration = Duration::parse(v).map_err(E::custom)?;
                Ok(Seconds(duration.as_secs() as f64))
            }
        }
        deserializer.deserialize_any(SecondsVisitor)
    }
}

/// `server.listen`: an IP address and a port.
pub(crate) fn deserialize_listen<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        de::Error::custom(DomainError::new(
            r#"an IP address and port such as "0.0.0.0:9184" or "[::1]:9184""#,
            &text,
        ))
    })
}

/// `github.repositories[].name`: a name GitHub can have (`owner/name`; a GitLab
/// path of more segments is refused here).
pub(crate) fn deserialize_github_repo<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<RepoName, D::Error> {
    let text = String::deserialize(deserializer)?;
    RepoName::parse_github(&text).map_err(de::Error::custom)
}

/// `gitlab.projects[].path`: a project's full path, `group/project` or
/// `group/subgroup/project` (at least two segments).
pub(crate) fn deserialize_gitlab_path<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<RepoName, D::Error> {
    let text = String::deserialize(deserializer)?;
    RepoName::parse(&text).map_err(|_| {
        de::Error::custom(DomainError::new(
            r#"a project path such as "group/project" or "group/subgroup/project""#,
            &text,
        ))
    })
}

/// `storage.path`: any non-empty path.
pub(crate) fn deserialize_storage_path<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<PathBuf, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.trim().is_empty() {
        Err(de::Error::custom(
            "expected a file path, got an empty string",
        ))
    } else {
        Ok(PathBuf::from(text))
    }
}

/// `storage.url`: a `postgres://` URL. No error message contains its password.
pub(crate) fn deserialize_storage_url<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<crate::store::PostgresUrl, D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::store::PostgresUrl::parse(&text).map_err(de::Error::custom)
}

/// `github.token`: a non-empty string without whitespace or control characters (it
/// becomes an HTTP header). No error message ever contains the value, not even when
/// it has the wrong type.
pub(crate) fn deserialize_token<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SecretString, D::Error> {
    struct TokenVisitor;
    const NOT_A_STRING: &str = "expected a string (the value is not shown)";
    impl<'v> Visitor<'v> for TokenVisitor {
        type Value = SecretString;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretString, E> {
            if v.is_empty() {
                Err(E::custom("must not be empty"))
            } else if v.len() > MAX_TOKEN_LEN {
                Err(E::custom(format_args!(
                    "must be at most {MAX_TOKEN_LEN} bytes (the value is not shown)"
                )))
            } else if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(E::custom(
                    "must not contain spaces or control characters (the value is not shown)",
                ))
            } else {
                Ok(SecretString::from(v))
            }
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_i128<E: de::Error>(self, _: i128) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_u128<E: de::Error>(self, _: u128) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_seq<A: de::SeqAccess<'v>>(self, _: A) -> Result<SecretString, A::Error> {
            Err(de::Error::custom(NOT_A_STRING))
        }
        fn visit_map<A: de::MapAccess<'v>>(self, _: A) -> Result<SecretString, A::Error> {
            Err(de::Error::custom(NOT_A_STRING))
        }
    }
    deserializer.deserialize_any(TokenVisitor)
}

/// `github.private_key`: the PEM text of a GitHub App's key, non-empty and at
/// most [`MAX_PRIVATE_KEY_BYTES`](super::MAX_PRIVATE_KEY_BYTES); whether it is an
/// RSA key is checked by [`AppPrivateKey::from_pem`](super::AppPrivateKey). No
/// error message ever contains the value.
pub(crate) fn deserialize_private_key<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SecretString, D::Error> {
    const NOT_A_STRING: &str = "expected a string: the PEM text of the App's private key \
                                (the value is not shown)";
    // Anything but a string is refused without showing it: the token's visitor
    // already does so, and says the same for every other type.
    struct KeyVisitor;
    impl<'v> Visitor<'v> for KeyVisitor {
        type Value = SecretString;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretString, E> {
            if v.trim().is_empty() {
                Err(E::custom("must not be empty"))
            } else if v.len() as u64 > super::MAX_PRIVATE_KEY_BYTES {
                Err(E::custom(format_args!(
                    "must be at most {} bytes: not a private key (the value is not shown)",
                    super::MAX_PRIVATE_KEY_BYTES
                )))
            } else {
                Ok(SecretString::from(v))
            }
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretString, E> {
            Err(E::custom(NOT_A_STRING))
        }
        fn visit_seq<A: de::SeqAccess<'v>>(self, _: A) -> Result<SecretString, A::Error> {
            Err(de::Error::custom(NOT_A_STRING))
        }
        fn visit_map<A: de::MapAccess<'v>>(self, _: A) -> Result<SecretString, A::Error> {
            Err(de::Error::custom(NOT_A_STRING))
        }
    }
    deserializer.deserialize_any(KeyVisitor)
}

#[cfg(test)]
mod pattern_tests {
    use super::*;

    #[test]
    fn argocd_application_names_are_kubernetes_names() {
        for good in ["api-prod", "a", "api.prod-1", "team-a/api-prod"] {
            assert!(ApplicationName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "", "Api", "-api", "api-", "api_prod", "a/b/c", "ns./api", "api prod",
        ] {
            assert!(ApplicationName::parse(bad).is_err(), "{bad}");
        }
        let name = ApplicationName::parse("team-a/api-prod").unwrap();
        assert_eq!(
            (name.namespace(), name.name()),
            (Some("team-a"), "api-prod")
        );
        let name = ApplicationName::parse("api-prod").unwrap();
        assert_eq!((name.namespace(), name.name()), (None, "api-prod"));
    }

    #[test]
    fn jenkins_job_paths_are_folders_and_a_name() {
        for good in [
            "deploy",
            "deploy/api",
            "api/feature%2Fx",
            "My Folder/deploy api",
        ] {
            assert!(JobPath::parse(good).is_ok(), "{good}");
        }
        let deep = vec!["f"; MAX_JOB_DEPTH + 1].join("/");
        for bad in [
            "",
            "/api",
            "api/",
            "a//b",
            "a/../b",
            "a/ b",
            "a:b",
            "a?b",
            deep.as_str(),
        ] {
            assert!(JobPath::parse(bad).is_err(), "{bad}");
        }
        let path = JobPath::parse("deploy/api").unwrap();
        assert_eq!(path.segments().collect::<Vec<_>>(), ["deploy", "api"]);
        assert!(JenkinsUser::parse("dora").is_ok());
        assert!(JenkinsUser::parse("do:ra").is_err());
    }

    #[test]
    fn repository_patterns_match_by_glob_within_one_path_segment() {
        let cases: &[(&str, &str, bool)] = &[
            ("acme/*", "acme/api", true),
            ("acme/*", "other/api", false),
            ("Acme/API", "acme/api", true),
            ("*/api", "acme/api", true),
            ("*/*", "x/y", true),
            ("acme/web-?", "acme/web-1", true),
            ("acme/web-?", "acme/web-12", false),
            ("acme/*-svc", "acme/a-b-svc", true),
            ("acme/*-svc", "acme/a-b-sv", false),
            ("a*/api", "acme/api", true),
            ("acme/api", "acme/api2", false),
            ("acme/*", "acme/platform/api", false),
            ("acme/*/*", "acme/platform/api", true),
            ("acme/platform/*", "acme/platform/api", true),
            ("acme/platform/*", "acme/web/api", false),
        ];
        for (pattern, repository, expected) in cases {
            let pattern = RepoPattern::parse(pattern).unwrap();
            let repository = RepoName::parse(repository).unwrap();
            assert_eq!(
                pattern.matches(&repository),
                *expected,
                "{pattern} {repository}"
            );
        }
        for bad in ["acme", "acme/", "/x", "ac me/x", "acme//y", "acme/x/"] {
            assert!(RepoPattern::parse(bad).is_err(), "{bad}");
        }
    }
}

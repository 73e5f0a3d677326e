//! `dora-collector notify`: the push API's client for pipelines. Builds one
//! deployment or incident from the command line (ids default to the CI system's
//! own), sends it with the `DORA_INGEST_TOKEN` bearer token, and retries
//! connection errors, `5xx`, `408` and `429` (honouring `Retry-After`) with the
//! same id until a deadline, so a retry never counts twice.
//!
//! Nothing here knows the collector's internals: it speaks the JSON of
//! `docs/push.md`. It never prints the token; the server's error answers are
//! printed cut to [`MAX_SHOWN_ANSWER_BYTES`].

use crate::domain::batch::cut_to_bytes;
use crate::domain::{CommitSha, Environment, RepoName};
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;
use std::time::{Duration, Instant};

/// The environment variable holding the token.
pub const TOKEN_VARIABLE: &str = "DORA_INGEST_TOKEN";

/// The default deadline for all attempts together.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// The first wait between two attempts; doubled after each, up to
/// [`MAX_BACKOFF`] (plus up to a quarter at random, so that many pipelines
/// retrying together spread out).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The longest wait between two attempts (a `Retry-After` may ask for more, up
/// to the deadline).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// The most of a refusal's body printed.
pub const MAX_SHOWN_ANSWER_BYTES: usize = 1_024;

/// CI systems' variables that identify one run of one job (and attempt), in the
/// order they are tried: `(prefix, variables joined with "-")`.
const CI_IDS: &[(&str, &[&str])] = &[
    (
        "github",
        &["GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT"],
    ),
    ("jenkins", &["BUILD_TAG"]),
    ("gitlab", &["CI_PROJECT_ID", "CI_JOB_ID"]),
    ("buildkite", &["BUILDKITE_JOB_ID"]),
    ("circleci", &["CIRCLE_WORKFLOW_JOB_ID"]),
    ("tekton", &["TEKTON_PIPELINE_RUN"]),
];

/// The id of this CI run from `lookup` (the process environment), if a known
/// CI system set one: `github-acme/api-123-1`, `jenkins-…`.
pub fn ci_id(lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    CI_IDS.iter().find_map(|(prefix, names)| {
        let values: Option<Vec<String>> = names
            .iter()
            .map(|name| lookup(name).filter(|v| !v.trim().is_empty()))
            .collect();
        values.map(|values| format!("{prefix}-{}", values.join("-")))
    })
}

/// Why a notification was not stored.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The collector answered with a refusal that retrying cannot fix.
    #[error("the collector refused it: HTTP {status}: {answer}")]
    Refused { status: u16, answer: String },
    /// No answer that stored it before the deadline.
    #[error("not stored within {deadline:?}: {last}")]
    GaveUp { deadline: Duration, last: String },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// Where and how to send.
pub struct Target {
    /// `{url}/api/v1/deployments` or `/incidents` are posted to.
    pub url: String,
    pub token: SecretString,
    pub deadline: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// What the collector answered with `202`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The answer's body (`{"accepted": 1, "duplicates": 0}`).
    pub answer: String,
    /// Attempts it took.
    pub attempts: u32,
}

/// Posts `body` to `path` (`/api/v1/deployments`) until it is stored, refused,
/// or the deadline passes.
pub async fn send(
    target: &Target,
    path: &str,
    body: &serde_json::Value,
) -> Result<Stored, NotifyError> {
    let client = http_client()?;
    let url = format!("{}{path}", target.url.trim_end_matches('/'));
    let text = body.to_string();
    let (status, answer, attempts) = exchange(target, || {
        client
            .post(&url)
            .bearer_auth(target.token.expose_secret())
            .header("content-type", "application/json")
            .body(text.clone())
    })
    .await?;
    match status {
        202 => Ok(Stored { answer, attempts }),
        _ => Err(NotifyError::Refused { status, answer }),
    }
}

/// The sha of the latest successful deployment of `repository` to
/// `environment` the collector has (`GET /api/v1/deployments/latest`); `None`
/// when it has none.
pub async fn latest_sha(
    target: &Target,
    repository: &RepoName,
    environment: &Environment,
) -> Result<Option<CommitSha>, NotifyError> {
    let client = http_client()?;
    let mut url = url::Url::parse(&format!(
        "{}/api/v1/deployments/latest",
        target.url.trim_end_matches('/')
    ))
    .map_err(|e| NotifyError::Client(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("repository", repository.as_str())
        .append_pair("environment", environment.as_str());
    let (status, answer, _) = exchange(target, || {
        client
            .get(url.clone())
            .bearer_auth(target.token.expose_secret())
    })
    .await?;
    match status {
        200 => {
            let sha = serde_json::from_str::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v["sha"].as_str().map(str::to_owned))
                .and_then(|sha| CommitSha::parse(&sha).ok());
            match sha {
                Some(sha) => Ok(Some(sha)),
                None => Err(NotifyError::Refused {
                    status,
                    answer: format!("an answer without a sha: {answer}"),
                }),
            }
        }
        404 => Ok(None),
        _ => Err(NotifyError::Refused { status, answer }),
    }
}

fn http_client() -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .map_err(|e| NotifyError::Client(e.to_string()))
}

/// Sends the request `build` makes until an answer that retrying cannot change
/// (anything but a connection error, `408`, `429` and `5xx`) or the deadline:
/// `(status, body cut to MAX_SHOWN_ANSWER_BYTES, attempts)`.
async fn exchange(
    target: &Target,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<(u16, String, u32), NotifyError> {
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (last, asked) = match build().send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = response.text().await.unwrap_or_default();
                let text = cut_to_bytes(text.trim(), MAX_SHOWN_ANSWER_BYTES).to_owned();
                if !matches!(status, 408 | 429 | 500..=599) {
                    return Ok((status, text, attempts));
                }
                (format!("HTTP {status}: {text}"), retry_after)
            }
            // reqwest's errors name the URL, never a header.
            Err(error) => (error.to_string(), None),
        };
        let jitter = backoff.mul_f64(rand::random::<f64>() / 4.0);
        let wait = asked.unwrap_or(backoff + jitter);
        if started.elapsed() + wait >= target.deadline {
            return Err(NotifyError::GaveUp {
                deadline: target.deadline,
                last,
            });
        }
        tracing::warn!(
            attempt = attempts,
            wait_seconds = wait.as_secs_f64(),
            %last,
            "not done yet; retrying with the same id"
        );
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The commits a deployment of `sha` ships, read from the clone at `dir`: every
/// commit reachable from `sha` and not from `previous` (the collector's latest
/// deployed sha), as the push API's `commits` (`{"sha", "parents",
/// "authored_at", "message"}`, the message being the subject). Without a previous deployment, or when the clone does not
/// have it (a shallow clone), only `sha` itself (its lead time counts; the
/// first deployment has none anyway). At most `max` commits: the newest.
pub fn commits_from_git(
    dir: &Path,
    sha: &CommitSha,
    previous: Option<&CommitSha>,
    max: usize,
) -> Result<Vec<serde_json::Value>, String> {
    let known =
        |commit: &CommitSha| git(dir, &["cat-file", "-e", &format!("{commit}^{{commit}}")]).is_ok();
    let range: Vec<String> = match previous {
        Some(previous) if previous == sha => return Ok(Vec::new()),
        Some(previous) if known(previous) => vec![sha.to_string(), format!("^{previous}")],
        Some(previous) => {
            tracing::warn!(
                %previous,
                "the previous deployed commit is not in the clone (a shallow clone?); \
                 sending only the deployed commit: fetch the whole history for every change"
            );
            vec!["-1".to_owned(), sha.to_string()]
        }
        None => vec!["-1".to_owned(), sha.to_string()],
    };
    let max_count = format!("--max-count={max}");
    let mut args = vec!["log", "--format=%H%x09%P%x09%aI%x09%s", max_count.as_str()];
    args.extend(range.iter().map(String::as_str));
    let text = git(dir, &args)?;
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            // The subject is last: it may itself hold a tab.
            let mut fields = line.splitn(4, '\t');
            let (Some(commit), Some(parents), Some(date)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(format!("git printed an unexpected line: {line:?}"));
            };
            let parents: Vec<&str> = parents.split_whitespace().collect();
            let mut commit =
                serde_json::json!({"sha": commit, "parents": parents, "authored_at": date});
            // The subject, without control characters and cut to what the API
            // takes (only a `Revert "` prefix matters to the collector).
            let subject: String = fields
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            let subject = cut_to_bytes(subject.trim(), crate::ingest::MAX_COMMIT_MESSAGE_BYTES);
            if !subject.is_empty() {
                commit["message"] = serde_json::json!(subject);
            }
            Ok(commit)
        })
        .collect()
}

/// `git -C dir args…`: its standard output, or an error with its standard error.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        String::from_utf8(output.stdout)
            .map_err(|_| "git printed something that is not UTF-8".to_owned())
    } else {
        Err(format!(
            "git {} failed: {}",
            args.join(" "),
            cut_to_bytes(
                String::from_utf8_lossy(&output.stderr).trim(),
                MAX_SHOWN_ANSWER_BYTES
            )
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_ci_system() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            ci_id(env(&[
                ("GITHUB_REPOSITORY", "acme/api"),
                ("GITHUB_RUN_ID", "42"),
                ("GITHUB_RUN_ATTEMPT", "2")
            ])),
            Some("github-acme/api-42-2".to_owned())
        );
        assert_eq!(
            ci_id(env(&[("BUILD_TAG", "jenkins-deploy-api-17")])),
            Some("jenkins-jenkins-deploy-api-17".to_owned())
        );
        assert_eq!(
            ci_id(env(&[("CI_PROJECT_ID", "7"), ("CI_JOB_ID", "99")])),
            Some("gitlab-7-99".to_owned())
        );
        assert_eq!(ci_id(env(&[("GITHUB_RUN_ID", "42")])), None, "incomplete");
        assert_eq!(ci_id(env(&[])), None);
    }
}

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
use secrecy::{ExposeSecret, SecretString};
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
    let client = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .map_err(|e| NotifyError::Client(e.to_string()))?;
    let url = format!("{}{path}", target.url.trim_end_matches('/'));
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let answer = client
            .post(&url)
            .bearer_auth(target.token.expose_secret())
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        let (last, asked) = match answer {
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
                match status {
                    202 => {
                        return Ok(Stored {
                            answer: text,
                            attempts,
                        })
                    }
                    408 | 429 | 500..=599 => (format!("HTTP {status}: {text}"), retry_after),
                    _ => {
                        return Err(NotifyError::Refused {
                            status,
                            answer: text,
                        })
                    }
                }
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
        tracing::warn!(attempt = attempts, wait_seconds = wait.as_secs_f64(), %last, "not stored yet; retrying with the same id");
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
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

//! GitHub App authentication: the App's JWT (RS256, signed with its private key),
//! the installation that covers each organisation or repository, and the
//! installation tokens requests are sent with, each installation a principal of
//! its own (its governor, its budget).
//!
//! - The JWT: `{"alg":"RS256","typ":"JWT"}` and `{"iat","exp","iss"}`, issued
//!   [`JWT_BACKDATE`] in the past (GitHub's advice against clock drift) and valid
//!   [`JWT_LIFETIME`] (GitHub refuses more than ten minutes). A fresh one is signed
//!   for every request made as the App: those are few (a lookup per account, a
//!   token per installation an hour).
//! - Installations are found with `GET /orgs/{org}/installation` (an organisation
//!   of `[[github.organizations]]`) or `GET /repos/{owner}/{repo}/installation` (a
//!   repository of `[[github.repositories]]`), once per account, and kept; one the
//!   App lost ([`GithubError::InstallationRevoked`]) is looked up again at the next
//!   sync.
//! - An installation token (`POST /app/installations/{id}/access_tokens`) is
//!   kept until [`renewal_delay`] before its `expires_at`: a request never starts
//!   with a token that could expire on its way (the `Authorization` is taken for
//!   each attempt, after any rate-limit wait). GitHub's 401 to a kept token (one
//!   revoked early) renews it once (`client.rs`). Every token and JWT is masked in
//!   server text from the moment it exists ([`Redactor::add`]).
//!
//! Not here: what the requests read (the step modules), the retry policy
//! (`governor.rs`), and the key's parsing (`config::AppPrivateKey`, at load).

use super::client::{Authorization, Client, Credentials, Endpoint, Principal};
use super::error::{GithubError, Redactor};
use crate::config::{AppPrivateKey, GithubAppConfig};
use crate::domain::RepoName;
use base64::Engine as _;
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How far in the past a JWT says it was issued: GitHub's advice, so that a
/// clock slightly ahead of GitHub's does not make the JWT "not yet valid".
pub const JWT_BACKDATE: Duration = Duration::from_secs(60);

/// How long a JWT is valid after `iat`: GitHub refuses an `exp` more than ten
/// minutes away; nine keeps a minute of drift in hand.
pub const JWT_LIFETIME: Duration = Duration::from_secs(9 * 60);

/// How long before its `expires_at` an installation token is replaced (GitHub's
/// last for an hour): far longer than any request takes, and than the clock
/// drift between us and GitHub.
pub const TOKEN_RENEWAL_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The lifetime assumed for an installation token whose answer names no
/// readable `expires_at`: GitHub's documented hour.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The longest installation token accepted (GitHub's stateless `ghs_` tokens
/// carry a JWT and run to several hundred characters); a longer one is not a
/// token and would be sent in every header.
pub const MAX_INSTALLATION_TOKEN_BYTES: usize = 4096;

/// The `credential` label of the requests made as the App itself.
pub const APP_LABEL: &str = "app";

/// How long after it was received an installation token valid for `lifetime`
/// is replaced: [`TOKEN_RENEWAL_MARGIN`] before it expires, or, for a token
/// living less than four margins (a simulator's fast clock), when a quarter of
/// its life is left.
pub fn renewal_delay(lifetime: Duration) -> Duration {
    let margin = TOKEN_RENEWAL_MARGIN.min(lifetime / 4);
    lifetime.saturating_sub(margin)
}

/// The App's JWT signer.
struct AppSigner {
    app_id: u64,
    key: AppPrivateKey,
    redactor: Redactor,
}

impl AppSigner {
    /// A JWT issued at epoch second `now` (minus [`JWT_BACKDATE`]).
    fn jwt(&self, now: u64) -> SecretString {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = engine.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": now.saturating_sub(JWT_BACKDATE.as_secs()),
            "exp": now.saturating_add(JWT_LIFETIME.as_secs()),
            "iss": self.app_id,
        });
        let claims = engine.encode(claims.to_string().as_bytes());
        let signing_input = format!("{header}.{claims}");
        let signature = engine.encode(self.key.sign_rs256(signing_input.as_bytes()));
        SecretString::from(format!("{signing_input}.{signature}"))
    }
}

impl Credentials for AppSigner {
    fn authorization<'a>(
        &'a self,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Authorization, GithubError>> {
        Box::pin(async move {
            let jwt = self.jwt(epoch_now());
            self.redactor.add(&jwt);
            Authorization::bearer(&jwt).ok_or(GithubError::InvalidToken)
        })
    }
}

/// A kept installation token and when it is replaced.
struct Kept {
    authorization: Authorization,
    renew_at: Instant,
}

/// The tokens of one installation, minted by the App.
struct InstallationToken {
    id: u64,
    account: String,
    /// The App's client (requests signed with its JWT).
    app: Client,
    kept: Mutex<Option<Kept>>,
    /// One token request at a time: syncs of the installation's repositories
    /// waiting for a token take the one minted for the first.
    minting: tokio::sync::Mutex<()>,
}

impl InstallationToken {
    fn current(&self) -> Option<Authorization> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.as_ref()
            .filter(|kept| Instant::now() < kept.renew_at)
            .map(|kept| kept.authorization.clone())
    }

    /// Asks GitHub for a new token and keeps it.
    async fn mint(&self, cancel: &CancellationToken) -> Result<Authorization, GithubError> {
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            self.app.base(),
            self.id
        );
        let body = self
            .app
            .post(Endpoint::InstallationToken, &url, None, cancel)
            .await
            .map_err(|error| self.refusal(error))?;
        #[derive(serde::Deserialize)]
        struct Answer {
            token: String,
            expires_at: Option<String>,
        }
        let invalid = |reason: &str| GithubError::InvalidBody {
            url: url.clone(),
            reason: reason.to_owned(),
        };
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|_| invalid("not an installation token (no \"token\")"))?;
        let token = SecretString::from(answer.token);
        let length = token.expose_secret().len();
        if length == 0 || length > MAX_INSTALLATION_TOKEN_BYTES {
            return Err(invalid("an installation token of an impossible length"));
        }
        self.app.redactor().add(&token);
        let authorization = Authorization::bearer(&token)
            .ok_or_else(|| invalid("an installation token that is not a header value"))?;
        let lifetime = answer
            .expires_at
            .as_deref()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map_or(DEFAULT_TOKEN_LIFETIME, |at| {
                let seconds = at.timestamp_millis().saturating_sub(epoch_millis());
                Duration::from_millis(u64::try_from(seconds).unwrap_or(0))
            });
        let renew_at = Instant::now() + renewal_delay(lifetime);
        tracing::debug!(
            installation = self.id,
            account = %self.account,
            lifetime_seconds = lifetime.as_secs(),
            "minted a GitHub App installation token"
        );
        *self.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(Kept {
            authorization: authorization.clone(),
            renew_at,
        });
        Ok(authorization)
    }

    /// The error for a token request GitHub refused.
    fn refusal(&self, error: GithubError) -> GithubError {
        let revoked =
            |url: String, status: u16, message: String| GithubError::InstallationRevoked {
                url,
                installation_id: self.id,
                account: self.account.clone(),
                status,
                message,
            };
        match error {
            GithubError::NotFound { url } => revoked(url, 404, "Not Found".to_owned()),
            GithubError::Forbidden { url, message, .. } => revoked(url, 403, message),
            GithubError::Status {
                url,
                status: 422,
                message,
            } => revoked(url, 422, message),
            GithubError::Unauthorized { url, message } => GithubError::AppRejected { url, message },
            other => other,
        }
    }
}

impl Credentials for InstallationToken {
    fn authorization<'a>(
        &'a self,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Authorization, GithubError>> {
        Box::pin(async move {
            if let Some(current) = self.current() {
                return Ok(current);
            }
            let _minting = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(GithubError::Cancelled),
                guard = self.minting.lock() => guard,
            };
            // Minted while this one waited.
            if let Some(current) = self.current() {
                return Ok(current);
            }
            self.mint(cancel).await
        })
    }

    fn refused(&self, authorization: &Authorization) -> bool {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget the refused token, unless another sync has replaced it already.
        if kept
            .as_ref()
            .is_some_and(|k| k.authorization.same_credential(authorization))
        {
            *kept = None;
        }
        true
    }

    fn still_refused(&self, error: &GithubError) -> Option<GithubError> {
        match error {
            GithubError::Unauthorized { url, message } => Some(GithubError::InstallationRevoked {
                url: url.clone(),
                installation_id: self.id,
                account: self.account.clone(),
                status: 401,
                message: message.clone(),
            }),
            _ => None,
        }
    }
}

/// How an account's installation is found.
#[derive(Debug, Clone, Copy)]
pub(super) enum Lookup<'a> {
    /// An organisation of `[[github.organizations]]`: `GET /orgs/{org}/installation`.
    Organization(&'a str),
    /// A repository: `GET /repos/{owner}/{repo}/installation`.
    Repository(&'a RepoName),
}

/// One installation's principal and whether it can still get tokens.
struct Installation {
    id: u64,
    client: Client,
}

/// A GitHub App: its own client (JWT) and a client per installation found.
pub(super) struct App {
    app_id: u64,
    client: Client,
    /// Installations by account (organisation or repository owner, lowercase).
    installations: Mutex<HashMap<String, Installation>>,
    /// One lookup at a time: the syncs of an account's repositories that start
    /// together take the installation the first one found.
    looking_up: tokio::sync::Mutex<()>,
}

impl App {
    /// The App of `config` on the API at `api_url`; no request is made here.
    pub(super) fn new(
        api_url: &url::Url,
        config: &GithubAppConfig,
        policy: super::RetryPolicy,
    ) -> Result<App, GithubError> {
        let redactor = Redactor::default();
        let signer = AppSigner {
            app_id: config.app_id,
            key: config.private_key.clone(),
            redactor: redactor.clone(),
        };
        let client =
            Client::with_credentials(api_url, APP_LABEL, Box::new(signer), redactor, policy)?;
        Ok(App {
            app_id: config.app_id,
            client,
            installations: Mutex::new(HashMap::new()),
            looking_up: tokio::sync::Mutex::new(()),
        })
    }

    /// The App's own client (for `github.api_url` and the request counts).
    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// Every principal: the App, then each installation found.
    pub(super) fn principals(&self) -> Vec<Arc<Principal>> {
        let installations = self
            .installations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut found: Vec<&Installation> = installations.values().collect();
        found.sort_by_key(|installation| installation.client.principal().label().to_owned());
        std::iter::once(Arc::clone(self.client.principal()))
            .chain(found.iter().map(|i| Arc::clone(i.client.principal())))
            .collect()
    }

    /// The client of the installation covering `lookup`'s account (looked up the
    /// first time: the organisation's installation, or the repository's).
    pub(super) async fn client_for(
        &self,
        lookup: Lookup<'_>,
        cancel: &CancellationToken,
    ) -> Result<Client, GithubError> {
        let account = match lookup {
            Lookup::Organization(org) => org.to_ascii_lowercase(),
            Lookup::Repository(repository) => repository.owner().to_owned(),
        };
        if let Some(found) = self.known(&account) {
            return Ok(found);
        }
        let _looking_up = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(GithubError::Cancelled),
            guard = self.looking_up.lock() => guard,
        };
        // Found while this one waited.
        if let Some(found) = self.known(&account) {
            return Ok(found);
        }
        let (url, endpoint, shown) = match lookup {
            Lookup::Organization(_) => (
                format!("{}/orgs/{}/installation", self.client.base(), account),
                Endpoint::OrgInstallation,
                account.clone(),
            ),
            Lookup::Repository(repository) => (
                format!(
                    "{}/repos/{}/{}/installation",
                    self.client.base(),
                    repository.owner(),
                    repository.name()
                ),
                Endpoint::RepoInstallation,
                repository.to_string(),
            ),
        };
        let fetched = self
            .client
            .fetch(endpoint, &url, None, cancel)
            .await
            .map_err(|error| match error {
                GithubError::NotFound { url } => GithubError::NotInstalled {
                    url,
                    app_id: self.app_id,
                    account: shown.clone(),
                },
                GithubError::Unauthorized { url, message } => {
                    GithubError::AppRejected { url, message }
                }
                other => other,
            })?;
        let super::client::Fetched::Page { body, .. } = fetched else {
            return Err(GithubError::InvalidBody {
                url,
                reason: "304 to an unconditional request".to_owned(),
            });
        };
        #[derive(serde::Deserialize)]
        struct Answer {
            id: u64,
        }
        let id = serde_json::from_slice::<Answer>(&body)
            .map_err(|_| GithubError::InvalidBody {
                url: url.clone(),
                reason: "not an installation (no numeric \"id\")".to_owned(),
            })?
            .id;
        Ok(self.keep(&account, id))
    }

    /// The client of `account`'s installation, when it is known and usable.
    fn known(&self, account: &str) -> Option<Client> {
        let installations = self
            .installations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        installations.get(account).map(|i| i.client.clone())
    }

    /// Keeps installation `id` as `account`'s (the same client when it is the
    /// one known already) and returns its client.
    fn keep(&self, account: &str, id: u64) -> Client {
        let mut installations = self
            .installations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = installations.get(account).filter(|i| i.id == id) {
            return known.client.clone();
        }
        tracing::info!(%account, installation = id, "found the GitHub App's installation");
        let credentials = InstallationToken {
            id,
            account: account.to_owned(),
            app: self.client.clone(),
            kept: Mutex::new(None),
            minting: tokio::sync::Mutex::new(()),
        };
        let principal = self
            .client
            .principal_with(format!("installation:{account}"), Box::new(credentials));
        let client = self.client.as_principal(principal);
        installations.insert(
            account.to_owned(),
            Installation {
                id,
                client: client.clone(),
            },
        );
        client
    }

    /// Forgets `account`'s installation after GitHub refused it a token: the
    /// next sync of its repositories looks it up again (it may have been
    /// reinstalled, under another id).
    pub(super) fn forget(&self, account: &str) {
        let mut installations = self
            .installations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        installations.remove(account);
    }
}

fn epoch_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn epoch_now() -> u64 {
    u64::try_from(epoch_millis() / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_well_before_they_expire() {
        let hour = Duration::from_secs(3600);
        assert_eq!(renewal_delay(hour), hour - TOKEN_RENEWAL_MARGIN);
        // A simulator's four-second token: renewed with a second left.
        assert_eq!(
            renewal_delay(Duration::from_secs(4)),
            Duration::from_secs(3)
        );
        assert_eq!(renewal_delay(Duration::ZERO), Duration::ZERO);
    }
}

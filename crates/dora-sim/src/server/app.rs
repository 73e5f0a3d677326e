//! GitHub Apps in the simulator: a [`SimApp`] (its id, the public half of its key
//! pair, its installations) whose JWTs are verified, whose installations are
//! found and which mints installation tokens that expire.
//!
//! As on GitHub:
//! - A JWT is `header.claims.signature` in base64url; the signature is RS256
//!   (RSASSA-PKCS1-v1_5, SHA-256) over `header.claims`, checked with the App's
//!   public key (the `rsa` crate here: an implementation of its own, not the
//!   collector's). Its claims: `iss` the App id (a number or a string), `iat` not
//!   in the future (a minute of drift allowed), `exp` in the future and at most
//!   ten minutes after `iat`. Anything else is 401 with GitHub's message.
//! - Only a JWT reaches `GET /app/installations`, `GET /orgs/{org}/installation`,
//!   `GET /repos/{owner}/{repo}/installation` and `POST
//!   /app/installations/{id}/access_tokens` (201 with `token` and `expires_at`);
//!   an installation removed with [`SimHandle::revoke_installation`] is 404
//!   there.
//! - An installation token reads what its installation's account owns (other
//!   repositories are 404), with a rate-limit budget of its own; once expired (or
//!   its installation removed) it is refused with 401 `Bad credentials`. Its
//!   `ETag`s are its own, as for any token.
//!
//! Not here: App webhooks, permissions per installation (every token may read
//! everything of its account), repository selection, user-to-server tokens.
//!
//! [`SimHandle::revoke_installation`]: super::SimHandle::revoke_installation

use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use rsa::RsaPublicKey;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// GitHub's installation-token lifetime.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The longest a JWT may be valid: GitHub refuses an `exp` more than ten minutes
/// after `iat`.
pub const MAX_JWT_LIFETIME_SECONDS: i64 = 600;

/// The clock drift allowed on `iat`: a JWT issued up to this far in the future
/// is accepted.
pub const JWT_DRIFT_SECONDS: i64 = 60;

/// The longest `Authorization` value read as a JWT (an RS256 JWT of a 4096-bit
/// key is under 1 KiB).
const MAX_JWT_BYTES: usize = 8 * 1024;

/// Most installation tokens remembered (the oldest forgotten first, then
/// refused like an expired one), so a long run does not grow without bound.
pub const MAX_LIVE_TOKENS: usize = 10_000;

/// Most minted tokens kept for [`SimHandle::minted_tokens`](super::SimHandle::minted_tokens).
const MAX_MINTED_KEPT: usize = 1_000;

/// The message GitHub answers a JWT it cannot read or verify with.
pub const JWT_UNDECODABLE: &str = "A JSON web token could not be decoded";

/// GitHub's message for an expired JWT.
pub const JWT_EXPIRED: &str = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";

/// GitHub's message for a JWT valid too long.
pub const JWT_TOO_LONG: &str = "'Expiration time' claim ('exp') is too far in the future";

/// GitHub's message for a JWT issued in the future.
pub const JWT_ISSUED_LATER: &str = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";

/// GitHub's message for a JWT whose `iss` is no App.
pub const JWT_UNKNOWN_APP: &str = "Integration not found";

/// A simulated GitHub App.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimApp {
    /// The App's id (`iss` of its JWTs).
    pub id: u64,
    /// The public half of its key pair, PEM: `-----BEGIN PUBLIC KEY-----` (SPKI)
    /// or `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1).
    pub public_key_pem: String,
    /// How long an installation token lives (GitHub: an hour; tests make time
    /// fast with a few seconds).
    pub token_lifetime: Duration,
    /// Its installations, one per account.
    pub installations: Vec<SimInstallation>,
}

/// An installation of the App on an account (an organisation served).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimInstallation {
    /// The installation id.
    pub id: u64,
    /// The account's login.
    pub account: String,
}

/// Why a [`SimApp`] cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimAppError {
    /// The public key is not an RSA public key in PEM.
    #[error("the App's public key is not an RSA public key in PEM form")]
    PublicKey,
}

/// The bits of an [`app_key_pair`] key (GitHub's App keys are 2,048-bit RSA).
const APP_KEY_BITS: usize = 2048;

/// A fresh RSA key pair for a simulated App, as tests and benchmarks need one:
/// `(private key as GitHub downloads it (PKCS#1 PEM), public key (SPKI PEM) for
/// [`SimApp::public_key_pem`])`.
pub fn app_key_pair() -> (String, String) {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
    let key =
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, APP_KEY_BITS).expect("a key pair");
    let private = key.to_pkcs1_pem(LineEnding::LF).expect("PEM").to_string();
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("PEM");
    (private, public)
}

/// What a request's `Authorization` is, for the App's routes and the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The simulator's personal token.
    Token,
    /// A valid installation token of this installation.
    Installation { id: u64, account: String },
    /// A valid JWT of the App.
    App,
    /// Refused with 401 and this message.
    Refused(&'static str),
    /// No `Authorization`.
    Missing,
}

/// A token minted for an installation.
#[derive(Debug, Clone)]
struct Issued {
    installation: u64,
    expires: SystemTime,
}

/// The App's state while served.
pub(crate) struct AppState {
    app: SimApp,
    key: VerifyingKey<Sha256>,
    /// Live tokens, by token text.
    tokens: HashMap<String, Issued>,
    /// Token texts in minting order (to forget the oldest).
    order: VecDeque<String>,
    /// Installations removed.
    revoked: Vec<u64>,
    /// Tokens minted per installation.
    minted: BTreeMap<u64, u64>,
    /// The latest tokens minted (for tests: none may appear in a client's output).
    minted_kept: VecDeque<String>,
    /// Refused requests made with an expired token.
    expired_uses: u64,
    /// Requests made with a valid installation token so far.
    token_uses: u64,
    /// Every token ends when `token_uses` reaches this.
    end_at_use: Option<u64>,
}

impl AppState {
    pub(crate) fn new(app: SimApp) -> Result<AppState, SimAppError> {
        use rsa::pkcs1::DecodeRsaPublicKey as _;
        use rsa::pkcs8::DecodePublicKey as _;
        let pem = app.public_key_pem.trim();
        let key = RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|_| SimAppError::PublicKey)?;
        Ok(AppState {
            app,
            key: VerifyingKey::new(key),
            tokens: HashMap::new(),
            order: VecDeque::new(),
            revoked: Vec::new(),
            minted: BTreeMap::new(),
            minted_kept: VecDeque::new(),
            expired_uses: 0,
            token_uses: 0,
            end_at_use: None,
        })
    }

    /// The installation a token was minted for, expired or not (no use is
    /// counted: for the secondary limits, which hold per installation).
    pub(crate) fn installation_of(&self, credential: &str) -> Option<u64> {
        self.tokens
            .get(credential)
            .map(|issued| issued.installation)
    }

    /// Who sent `credential` (the text after `Bearer `), at `now`.
    pub(crate) fn caller(&mut self, credential: &str, now: SystemTime) -> Caller {
        if self.tokens.contains_key(credential) && self.end_at_use == Some(self.token_uses) {
            self.end_at_use = None;
            self.expire_all(now);
        }
        if let Some(issued) = self.tokens.get(credential) {
            if issued.expires <= now || self.revoked.contains(&issued.installation) {
                self.expired_uses += 1;
                return Caller::Refused("Bad credentials");
            }
            let id = issued.installation;
            self.token_uses += 1;
            return match self.installation(id) {
                Some(installation) => Caller::Installation {
                    id,
                    account: installation.account.clone(),
                },
                None => Caller::Refused("Bad credentials"),
            };
        }
        if credential.len() > MAX_JWT_BYTES || credential.split('.').count() != 3 {
            return Caller::Refused("Bad credentials");
        }
        match self.verify_jwt(credential, now) {
            Ok(()) => Caller::App,
            Err(message) => Caller::Refused(message),
        }
    }

    /// Checks a JWT's signature and claims.
    fn verify_jwt(&self, jwt: &str, now: SystemTime) -> Result<(), &'static str> {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut parts = jwt.split('.');
        let (Some(header), Some(claims), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(JWT_UNDECODABLE);
        };
        let decode = |part: &str| engine.decode(part).map_err(|_| JWT_UNDECODABLE);
        let header_json: Value =
            serde_json::from_slice(&decode(header)?).map_err(|_| JWT_UNDECODABLE)?;
        if header_json["alg"] != "RS256" {
            return Err(JWT_UNDECODABLE);
        }
        let signature =
            Signature::try_from(decode(signature)?.as_slice()).map_err(|_| JWT_UNDECODABLE)?;
        let signed = format!("{header}.{claims}");
        self.key
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| JWT_UNDECODABLE)?;
        let claims: Value =
            serde_json::from_slice(&decode(claims)?).map_err(|_| JWT_UNDECODABLE)?;
        let iss = match &claims["iss"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        if iss != Some(self.app.id) {
            return Err(JWT_UNKNOWN_APP);
        }
        let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
            return Err(JWT_UNDECODABLE);
        };
        let now = epoch_seconds(now);
        if iat > now + JWT_DRIFT_SECONDS {
            return Err(JWT_ISSUED_LATER);
        }
        if exp <= now {
            return Err(JWT_EXPIRED);
        }
        if exp - iat > MAX_JWT_LIFETIME_SECONDS {
            return Err(JWT_TOO_LONG);
        }
        Ok(())
    }

    /// The installation `id`, unless it was removed.
    pub(crate) fn installation(&self, id: u64) -> Option<&SimInstallation> {
        if self.revoked.contains(&id) {
            return None;
        }
        self.app.installations.iter().find(|i| i.id == id)
    }

    /// The installation on `account`, unless it was removed.
    pub(crate) fn installation_on(&self, account: &str) -> Option<&SimInstallation> {
        self.app
            .installations
            .iter()
            .filter(|i| !self.revoked.contains(&i.id))
            .find(|i| i.account.eq_ignore_ascii_case(account))
    }

    /// Every installation not removed.
    pub(crate) fn installations(&self) -> Vec<&SimInstallation> {
        self.app
            .installations
            .iter()
            .filter(|i| !self.revoked.contains(&i.id))
            .collect()
    }

    /// Mints a token for installation `id` at `now`: the token and its expiry.
    pub(crate) fn mint(&mut self, id: u64, now: SystemTime) -> Option<(String, SystemTime)> {
        self.installation(id)?;
        let count = self.minted.entry(id).or_default();
        *count += 1;
        let random: u64 = rand::random();
        // Not shaped like a real `ghs_` token, so that no secret scanner takes it
        // for one.
        let token = format!("dora-sim-installation-{id}-{count}-{random:016x}");
        let expires = now + self.app.token_lifetime;
        if self.order.len() >= MAX_LIVE_TOKENS {
            if let Some(oldest) = self.order.pop_front() {
                self.tokens.remove(&oldest);
            }
        }
        self.order.push_back(token.clone());
        self.tokens.insert(
            token.clone(),
            Issued {
                installation: id,
                expires,
            },
        );
        if self.minted_kept.len() >= MAX_MINTED_KEPT {
            self.minted_kept.pop_front();
        }
        self.minted_kept.push_back(token.clone());
        Some((token, expires))
    }

    /// Ends every live token at `now` (GitHub may revoke a token before its
    /// `expires_at`: a permission change, a suspension lifted, a key rotated).
    pub(crate) fn expire_all(&mut self, now: SystemTime) {
        for issued in self.tokens.values_mut() {
            issued.expires = issued.expires.min(now);
        }
    }

    /// Ends every live token when `uses` more requests have been made with
    /// valid installation tokens (the request after those meets an ended one).
    pub(crate) fn end_tokens_after(&mut self, uses: u64) {
        self.end_at_use = Some(self.token_uses + uses);
    }

    /// Removes installation `id` (its tokens are refused from now on).
    pub(crate) fn revoke(&mut self, id: u64) {
        if !self.revoked.contains(&id) {
            self.revoked.push(id);
        }
    }

    /// Brings back installation `id`.
    pub(crate) fn restore(&mut self, id: u64) {
        self.revoked.retain(|r| *r != id);
    }

    /// Tokens minted per installation.
    pub(crate) fn minted(&self) -> BTreeMap<u64, u64> {
        self.minted.clone()
    }

    /// The latest tokens minted, oldest first.
    pub(crate) fn minted_tokens(&self) -> Vec<String> {
        self.minted_kept.iter().cloned().collect()
    }

    /// Requests refused because their token had expired or its installation
    /// was removed.
    pub(crate) fn expired_uses(&self) -> u64 {
        self.expired_uses
    }

    /// The App's id.
    pub(crate) fn id(&self) -> u64 {
        self.app.id
    }
}

/// Epoch seconds of `at`.
pub(crate) fn epoch_seconds(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `at` as GitHub writes times (`2016-07-11T22:14:10Z`), rounded down to the
/// second: a client reading it renews a moment early, never late.
pub(crate) fn github_time(at: SystemTime) -> String {
    chrono::DateTime::from_timestamp(epoch_seconds(at), 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The read permissions the simulated App holds.
pub(crate) fn permissions() -> Value {
    json!({
        "actions": "read",
        "contents": "read",
        "deployments": "read",
        "issues": "read",
        "metadata": "read",
        "pull_requests": "read",
        "members": "read",
    })
}

/// The body of a 201 to a token request.
pub(crate) fn token_body(token: &str, expires: SystemTime) -> Value {
    json!({
        "token": token,
        "expires_at": github_time(expires),
        "permissions": permissions(),
        "repository_selection": "all",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    use rsa::RsaPrivateKey;

    fn key() -> &'static RsaPrivateKey {
        static KEY: std::sync::OnceLock<RsaPrivateKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap())
    }

    fn jwt(key: &RsaPrivateKey, claims: Value) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = engine.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = engine.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        let signer = SigningKey::<Sha256>::new(key.clone());
        let signature = engine.encode(signer.sign(input.as_bytes()).to_bytes());
        format!("{input}.{signature}")
    }

    fn state() -> AppState {
        let pem = key()
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        AppState::new(SimApp {
            id: 42,
            public_key_pem: pem,
            token_lifetime: Duration::from_secs(2),
            installations: vec![SimInstallation {
                id: 7,
                account: "acme".into(),
            }],
        })
        .unwrap()
    }

    #[test]
    fn jwts_are_verified_like_github() {
        let mut state = state();
        let now = SystemTime::now();
        let t = epoch_seconds(now);
        let good = jwt(key(), json!({"iat": t - 60, "exp": t + 540, "iss": 42}));
        assert_eq!(state.caller(&good, now), Caller::App);
        let as_text = jwt(key(), json!({"iat": t - 60, "exp": t + 540, "iss": "42"}));
        assert_eq!(state.caller(&as_text, now), Caller::App);
        let cases = [
            (json!({"iat": t - 60, "exp": t - 1, "iss": 42}), JWT_EXPIRED),
            (
                json!({"iat": t - 60, "exp": t + 600, "iss": 42}),
                JWT_TOO_LONG,
            ),
            (
                json!({"iat": t + 120, "exp": t + 300, "iss": 42}),
                JWT_ISSUED_LATER,
            ),
            (json!({"iat": t, "exp": t + 60, "iss": 43}), JWT_UNKNOWN_APP),
        ];
        for (claims, message) in cases {
            assert_eq!(
                state.caller(&jwt(key(), claims.clone()), now),
                Caller::Refused(message),
                "{claims}"
            );
        }
        // Another key's signature, a changed claim, garbage.
        let other = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let forged = jwt(&other, json!({"iat": t, "exp": t + 60, "iss": 42}));
        assert_eq!(state.caller(&forged, now), Caller::Refused(JWT_UNDECODABLE));
        let mut parts: Vec<&str> = good.split('.').collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let changed = engine.encode(json!({"iat": t - 60, "exp": t + 540, "iss": 43}).to_string());
        parts[1] = &changed;
        assert_eq!(
            state.caller(&parts.join("."), now),
            Caller::Refused(JWT_UNDECODABLE)
        );
        assert_eq!(state.caller("a.b.c", now), Caller::Refused(JWT_UNDECODABLE));
        assert_eq!(
            state.caller("plain", now),
            Caller::Refused("Bad credentials")
        );
    }

    #[test]
    fn installation_tokens_expire_and_die_with_their_installation() {
        let mut state = state();
        let now = SystemTime::now();
        assert!(state.mint(8, now).is_none(), "no such installation");
        let (token, expires) = state.mint(7, now).unwrap();
        assert_eq!(expires, now + Duration::from_secs(2));
        let installation = Caller::Installation {
            id: 7,
            account: "acme".into(),
        };
        assert_eq!(state.caller(&token, now), installation);
        assert_eq!(
            state.caller(&token, expires),
            Caller::Refused("Bad credentials")
        );
        let (fresh, _) = state.mint(7, now).unwrap();
        assert_ne!(fresh, token);
        state.revoke(7);
        assert_eq!(
            state.caller(&fresh, now),
            Caller::Refused("Bad credentials")
        );
        assert!(state.mint(7, now).is_none());
        assert_eq!(state.expired_uses(), 2);
        assert_eq!(state.minted(), BTreeMap::from([(7, 2)]));
    }
}

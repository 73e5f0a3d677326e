//! Who is pushing, and whether they may: bearer tokens of `[[ingest.clients]]`
//! compared in constant time, each client's repository patterns, and each
//! client's rate limit (a token bucket).
//!
//! Tokens are held as SHA-256 digests only: a presented token is hashed and
//! compared with every client's digest without stopping at a match, so neither
//! the time taken nor any value kept here tells a token apart. Nothing here
//! formats a token; no I/O, no clock reads (instants are arguments).

use crate::config::{IngestConfig, RepoPattern};
use crate::domain::RepoName;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The longest `Authorization` header looked at; a longer one is refused unread.
pub const MAX_AUTHORIZATION_BYTES: usize = 2_048;

/// One configured client.
#[derive(Debug)]
pub struct Client {
    /// Its configured name (the `client` label, part of item identities).
    pub name: String,
    token_digest: [u8; 32],
    patterns: Vec<RepoPattern>,
    limiter: RateLimiter,
}

impl Client {
    /// Whether the client may write `repository`.
    pub fn may_write(&self, repository: &RepoName) -> bool {
        self.patterns.iter().any(|p| p.matches(repository))
    }

    /// Takes one request from the client's rate; on refusal, how long until one
    /// is allowed.
    pub fn admit(&self, now: Instant) -> Result<(), Duration> {
        self.limiter.admit(now)
    }
}

/// Every configured client.
#[derive(Debug)]
pub struct Clients {
    clients: Vec<Client>,
}

impl Clients {
    /// The clients of `config`, each allowed `requests_per_second` (and as many
    /// at once).
    pub fn new(config: &IngestConfig, start: Instant) -> Self {
        let rate = f64::from(config.requests_per_second.max(1));
        Clients {
            clients: config
                .clients
                .iter()
                .map(|client| Client {
                    name: client.name.as_str().to_owned(),
                    token_digest: Sha256::digest(client.token.expose_secret().as_bytes()).into(),
                    patterns: client.repositories.clone(),
                    limiter: RateLimiter::new(rate, rate, start),
                })
                .collect(),
        }
    }

    /// The configured client names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.clients.iter().map(|c| c.name.as_str())
    }

    /// The client whose token `authorization` (the header's value, `Bearer
    /// TOKEN`) carries; `None` without a header, in another scheme, or with a
    /// token of no client. Every client's digest is compared, in constant time.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Option<&Client> {
        let value = authorization.filter(|v| v.len() <= MAX_AUTHORIZATION_BYTES)?;
        let scheme_len = "Bearer ".len();
        if value.len() <= scheme_len || !value[..scheme_len].eq_ignore_ascii_case(b"bearer ") {
            return None;
        }
        let token = value[scheme_len..].trim_ascii();
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut found = None;
        for client in &self.clients {
            if bool::from(client.token_digest[..].ct_eq(&digest[..])) {
                found = Some(client);
            }
        }
        found
    }
}

/// A token bucket: `capacity` requests at once, refilled at `per_second`.
#[derive(Debug)]
struct RateLimiter {
    per_second: f64,
    capacity: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(per_second: f64, capacity: f64, start: Instant) -> Self {
        RateLimiter {
            per_second,
            capacity,
            state: Mutex::new((capacity, start)),
        }
    }

    fn admit(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = *state;
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        let tokens = (tokens + elapsed * self.per_second).min(self.capacity);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now.max(last));
            Ok(())
        } else {
            *state = (tokens, now.max(last));
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn clients() -> Clients {
        let text = r#"
            [ingest]
            requests_per_second = 2
            [[ingest.clients]]
            name = "jenkins"
            token = "jenkins-token-0123456789abcdef0123456789"
            repositories = ["acme/*"]
            [[ingest.clients]]
            name = "gitlab"
            token = "gitlab-token-0123456789abcdef01234567890"
            repositories = ["acme/web"]
        "#;
        let config = Config::from_toml_str(text, |_| Err(std::env::VarError::NotPresent)).unwrap();
        Clients::new(config.ingest.as_ref().unwrap(), Instant::now())
    }

    #[test]
    fn a_bearer_token_names_its_client_and_nothing_else_does() {
        let clients = clients();
        let name = |header: &str| {
            clients
                .authenticate(Some(header.as_bytes()))
                .map(|c| c.name.clone())
        };
        assert_eq!(
            name("Bearer jenkins-token-0123456789abcdef0123456789").as_deref(),
            Some("jenkins")
        );
        assert_eq!(
            name("bearer gitlab-token-0123456789abcdef01234567890").as_deref(),
            Some("gitlab")
        );
        assert_eq!(name("Bearer jenkins-token-0123456789abcdef012345678"), None);
        assert_eq!(name("Basic jenkins-token-0123456789abcdef0123456789"), None);
        assert_eq!(name("Bearer "), None);
        assert_eq!(name(""), None);
        assert!(clients.authenticate(None).is_none());
        let jenkins = clients
            .authenticate(Some(b"Bearer jenkins-token-0123456789abcdef0123456789"))
            .unwrap();
        assert!(jenkins.may_write(&RepoName::parse("acme/api").unwrap()));
        assert!(!jenkins.may_write(&RepoName::parse("other/api").unwrap()));
    }

    #[test]
    fn the_rate_refills_over_time() {
        let start = Instant::now();
        let limiter = RateLimiter::new(2.0, 2.0, start);
        assert!(limiter.admit(start).is_ok());
        assert!(limiter.admit(start).is_ok());
        let wait = limiter.admit(start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limiter.admit(start + Duration::from_millis(500)).is_ok());
        assert!(limiter.admit(start + Duration::from_millis(500)).is_err());
        assert!(limiter.admit(start + Duration::from_secs(10)).is_ok());
    }
}

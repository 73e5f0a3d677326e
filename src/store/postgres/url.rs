//! `PostgresUrl`: the `[storage] url` of a PostgreSQL store, a secret. It keeps the
//! URL as given (for connecting) and a redacted form (for every message, log and
//! `Debug`): the password is never shown.
//!
//! It checks the URL's form only (scheme, host, the options the client accepts);
//! whether the server answers is [`PostgresStore::open`](super::PostgresStore::open)'s
//! business.

use secrecy::{ExposeSecret, SecretString};
use std::str::FromStr;

/// What stands in for a password in a shown URL.
pub const REDACTED_PASSWORD: &str = "REDACTED";

/// A `postgres://` (or `postgresql://`) URL with its password kept secret.
#[derive(Clone)]
pub struct PostgresUrl {
    url: SecretString,
    /// The URL with its password replaced by [`REDACTED_PASSWORD`].
    shown: String,
    /// The password as written in the URL (percent-encoded) and decoded, to
    /// mask them in any text that might echo them.
    passwords: Vec<SecretString>,
}

impl PostgresUrl {
    /// Checks `text`: the scheme, a host, and options the client understands
    /// (`sslmode` is `disable`, `prefer` or `require`). The error never contains
    /// the password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(text).map_err(|error| {
            format!(
                "expected a URL such as \"postgres://user:password@host:5432/database\" ({error})"
            )
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "expected a postgres:// URL, got the scheme {:?}",
                parsed.scheme()
            ));
        }
        let mut shown = parsed.clone();
        let mut passwords = Vec::new();
        if let Some(password) = parsed.password() {
            passwords.push(SecretString::from(password.to_owned()));
            let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
            if decoded != password {
                passwords.push(SecretString::from(decoded.into_owned()));
            }
            // Cannot fail: the URL has a host, since it has a password.
            let _ = shown.set_password(Some(REDACTED_PASSWORD));
        }
        let shown = shown.to_string();
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("{shown} names no host"));
        }
        postgres::Config::from_str(text).map_err(|error| {
            // The client's parse errors name the option, never the password.
            let mut message = error.to_string();
            if let Some(source) = std::error::Error::source(&error) {
                message = format!("{message}: {source}");
            }
            format!("{shown}: {message}")
        })?;
        let url = PostgresUrl {
            url: SecretString::from(text.to_owned()),
            shown,
            passwords,
        };
        Ok(url)
    }

    /// The URL with its password redacted.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The client's configuration (the URL was checked by [`PostgresUrl::parse`]).
    pub(super) fn config(&self) -> Result<postgres::Config, String> {
        postgres::Config::from_str(self.url.expose_secret()).map_err(|error| error.to_string())
    }

    /// `text` with every form of the password replaced by [`REDACTED_PASSWORD`].
    pub fn mask(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for password in &self.passwords {
            let password = password.expose_secret();
            if !password.is_empty() {
                text = text.replace(password, REDACTED_PASSWORD);
            }
        }
        text
    }

    /// The URL as given, password included: only for connecting and for tests.
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PostgresUrl").field(&self.shown).finish()
    }
}

impl std::fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PartialEq for PostgresUrl {
    fn eq(&self, other: &Self) -> bool {
        self.url.expose_secret() == other.url.expose_secret()
    }
}

impl Eq for PostgresUrl {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let url = PostgresUrl::parse("postgres://dora:s3cr%21t@db.example:5432/dora").unwrap();
        assert_eq!(url.shown(), "postgres://dora:REDACTED@db.example:5432/dora");
        assert!(!format!("{url:?} {url}").contains("s3cr"));
        assert_eq!(url.mask("x s3cr!t y s3cr%21t"), "x REDACTED y REDACTED");
        let url = PostgresUrl::parse("postgresql://dora@db/dora?sslmode=require").unwrap();
        assert_eq!(url.shown(), "postgresql://dora@db/dora?sslmode=require");
    }

    #[test]
    fn bad_urls_are_refused_without_their_password() {
        for (text, expected) in [
            ("mysql://u:hunter2@db/x", "scheme"),
            ("postgres://u:hunter2@db/x?sslmode=verify-full", "sslmode"),
            ("postgres://u:hunter2@db/x?frobnicate=1", "frobnicate"),
            ("not a url hunter2", "expected a URL"),
        ] {
            let error = PostgresUrl::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(!error.contains("hunter2"), "{text}: {error}");
        }
    }
}

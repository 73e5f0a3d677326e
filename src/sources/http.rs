//! What the HTTP API sources (GitHub, GitLab) share besides the rate-limit
//! governor: masking a client's token in text the server sends back
//! ([`Redactor`]), the server's error message bounded to one line, `Link`
//! headers ([`next_link`]) and error chains on one bounded line.
//!
//! Text that comes from a server (its error message, a `Link` URL, an
//! unreadable item's value) is untrusted: a broken proxy or hostile server may
//! echo the request's `Authorization` or `PRIVATE-TOKEN` header into it. The
//! token a client authenticates with is held by its [`Redactor`] (a value, passed
//! where text is cleaned, not a process-global list) and replaced by
//! [`REDACTED`] in all such text before it reaches an error, a log line or the
//! recorded sync status.
//!
//! Not here: requests, statuses, what a response means (each source's client).

use secrecy::{ExposeSecret, SecretString};
use std::collections::VecDeque;
use std::sync::{Arc, PoisonError, RwLock};

/// What a token echoed by the server is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Tokens shorter than this are not masked: so short a string occurs by chance in
/// ordinary messages, which masking would make unreadable, and no token GitHub or
/// GitLab issues is this short (GitHub's have 40 or more characters, GitLab's
/// `glpat-` tokens 26).
pub const MIN_MASKED_SECRET_CHARS: usize = 8;

/// The most of a server's error `message` repeated in an error: enough for "Bad
/// credentials" or "API rate limit exceeded for user ID 1. If you reach out...",
/// bounded because the server is untrusted input.
pub const MAX_SERVER_MESSAGE_CHARS: usize = 200;

/// The most of a body without a JSON `message` shown in an error: enough to
/// recognise an nginx `502 Bad Gateway` page or a proxy's one-line `503`.
pub const MAX_BODY_EXCERPT_CHARS: usize = 160;

/// The most credentials minted while running (GitHub App JWTs and installation
/// tokens) a [`Redactor`] masks at once; the oldest is forgotten first. Each
/// installation keeps one token at a time and a token lives an hour, so this
/// covers every token that can still be in use or echoed, for far more
/// installations than a configuration names.
pub const MAX_MINTED_SECRETS: usize = 256;

/// The tokens masked in server-provided text: the client's own token (or, for a
/// GitHub App, the JWTs and installation tokens minted while running), held by
/// the client that authenticates with them and passed to whatever cleans text
/// from the server. Cheap to clone (clones share what they mask); the default
/// masks nothing.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<[SecretString]>,
    /// Credentials minted since start, newest last, at most
    /// [`MAX_MINTED_SECRETS`].
    minted: Arc<RwLock<VecDeque<SecretString>>>,
}

impl Redactor {
    /// A redactor masking `secrets` (those shorter than
    /// [`MIN_MASKED_SECRET_CHARS`] are left out, see there).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a SecretString>) -> Self {
        let mut kept: Vec<SecretString> = Vec::new();
        for secret in secrets {
            let exposed = secret.expose_secret();
            if exposed.chars().count() >= MIN_MASKED_SECRET_CHARS
                && !kept.iter().any(|s| s.expose_secret() == exposed)
            {
                kept.push(secret.clone());
            }
        }
        Redactor {
            secrets: kept.into(),
            minted: Arc::default(),
        }
    }

    /// Masks `secret` too from now on (a credential minted while running), in
    /// this redactor and every clone of it.
    pub(crate) fn add(&self, secret: &SecretString) {
        if secret.expose_secret().chars().count() < MIN_MASKED_SECRET_CHARS {
            return;
        }
        let mut minted = self.minted.write().unwrap_or_else(PoisonError::into_inner);
        if minted
            .iter()
            .any(|s| s.expose_secret() == secret.expose_secret())
        {
            return;
        }
        if minted.len() >= MAX_MINTED_SECRETS {
            minted.pop_front();
        }
        minted.push_back(secret.clone());
    }

    /// The server's error `message` (or, for a GraphQL-shaped error body, the
    /// first of its `errors[].message`; for GitLab's OAuth-shaped one, its
    /// `error_description` or `error`), bounded and without control characters. A body with
    /// neither (an HTML page from a proxy, plain text) gives a short excerpt of
    /// itself instead ([`Redactor::body_excerpt`]), so an error is never without a
    /// message; an empty body gives an empty message.
    pub(crate) fn server_message(&self, body: &[u8]) -> String {
        let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
        let message = parsed.as_ref().and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .or_else(|| {
                    v.get("errors")
                        .and_then(|e| e.get(0))
                        .and_then(|e| e.get("message"))
                        .and_then(|m| m.as_str())
                })
                // GitLab: `{"error": "insufficient_scope", "error_description": …}`,
                // `{"error": "404 Not Found"}`.
                .or_else(|| v.get("error_description").and_then(|m| m.as_str()))
                .or_else(|| v.get("error").and_then(|m| m.as_str()))
                .map(str::to_owned)
        });
        match message {
            Some(message) => self.clean(&message),
            None => self.body_excerpt(body),
        }
    }

    /// A short excerpt of an untrusted body for an error message: the tokens
    /// masked, whitespace runs folded to one space, other control characters,
    /// quotes and backslashes escaped (`\u{7}`, `\"`), at most
    /// [`MAX_BODY_EXCERPT_CHARS`] characters (`…` when cut), quoted and prefixed
    /// with `body:`; empty for an empty (or all-whitespace) body.
    pub(crate) fn body_excerpt(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let folded = self
            .redact(&text)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if folded.is_empty() {
            return String::new();
        }
        let cut = folded.chars().count() > MAX_BODY_EXCERPT_CHARS;
        let mut excerpt = String::new();
        for c in folded.chars().take(MAX_BODY_EXCERPT_CHARS) {
            if c.is_control() || c == '"' || c == '\\' {
                excerpt.extend(c.escape_default());
            } else {
                excerpt.push(c);
            }
        }
        format!("body: \"{excerpt}{}\"", if cut { "…" } else { "" })
    }

    /// `text` with every token replaced by [`REDACTED`].
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let minted = self.minted.read().unwrap_or_else(PoisonError::into_inner);
        for secret in self.secrets.iter().chain(minted.iter()) {
            let exposed = secret.expose_secret();
            if out.contains(exposed) {
                out = out.replace(exposed, REDACTED);
            }
        }
        out
    }

    /// Masks the tokens in untrusted text (before cutting it, so that no prefix of
    /// a token survives), cuts it to [`MAX_SERVER_MESSAGE_CHARS`] and replaces
    /// control characters, so it is safe in one log line.
    pub(crate) fn clean(&self, text: &str) -> String {
        self.redact(text)
            .chars()
            .take(MAX_SERVER_MESSAGE_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned()
    }
}

/// The URL of `rel="next"` in a `Link` header (RFC 8288), if any.
pub fn next_link(header: &str) -> Option<&str> {
    let mut rest = header;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let url = &rest[start + 1..end];
        let after = &rest[end + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        let is_next = after[..params_end].split(';').any(|param| {
            let param = param.trim().trim_end_matches(',').trim();
            match param.split_once('=') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("rel") => value
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next")),
                _ => false,
            }
        });
        if is_next {
            return Some(url);
        }
        rest = &after[params_end..];
    }
}

/// An error and its causes on one line, bounded.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    /// Long enough for "client error (Connect): tcp connect error: Connection
    /// refused (os error 111)" and similar chains.
    const MAX_CHAIN_CHARS: usize = 400;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.chars()
        .take(MAX_CHAIN_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Server text as a client with no token to mask cleans it.
    fn server_message(body: &[u8]) -> String {
        Redactor::default().server_message(body)
    }

    #[test]
    fn server_messages_are_bounded_and_single_line() {
        assert_eq!(
            server_message(br#"{"message":"Bad credentials"}"#),
            "Bad credentials"
        );
        assert_eq!(server_message(b"not json"), r#"body: "not json""#);
        assert_eq!(server_message(b""), "");
        assert_eq!(
            server_message(br#"{"data":null,"errors":[{"message":"Something went wrong"}]}"#),
            "Something went wrong"
        );
        assert_eq!(server_message(br#"{"message":"a\nb\u0007c"}"#), "a b c");
        assert_eq!(
            server_message(br#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token."}"#),
            "The request requires higher privileges than provided by the access token."
        );
        assert_eq!(
            server_message(br#"{"error":"404 Not Found"}"#),
            "404 Not Found"
        );
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(1000));
        assert_eq!(
            server_message(long.as_bytes()).len(),
            MAX_SERVER_MESSAGE_CHARS
        );
    }

    #[test]
    fn bodies_without_a_message_are_shown_as_a_short_escaped_excerpt() {
        let nginx = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
        assert_eq!(
            server_message(nginx),
            "body: \"<html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad \
             Gateway</h1></center> <hr><center>nginx</center> </body> </html>\""
        );
        assert_eq!(
            server_message(b"upstream connect error\x07 \"x\"\n"),
            r#"body: "upstream connect error\u{7} \"x\"""#
        );
        let long = "y".repeat(1000);
        let excerpt = server_message(long.as_bytes());
        assert_eq!(
            excerpt,
            format!("body: \"{}…\"", "y".repeat(MAX_BODY_EXCERPT_CHARS))
        );
        assert_eq!(server_message(b" \r\n "), "");
        assert_eq!(
            server_message(&[0xff, 0xfe, b'a']),
            "body: \"\u{fffd}\u{fffd}a\""
        );
    }

    #[test]
    fn registered_tokens_are_masked_in_server_text_before_it_is_cut() {
        let token = "ghp_masked0123456789abcdefghijklmnopqrstu";
        let secrets = [SecretString::from(token), SecretString::from("short")];
        let redactor = Redactor::new(&secrets);
        let echoed = format!(r#"{{"message":"Bad credentials: Bearer {token}"}}"#);
        assert_eq!(
            redactor.server_message(echoed.as_bytes()),
            "Bad credentials: Bearer [REDACTED]"
        );
        // A token straddling the cut leaves no prefix behind.
        let long = format!("{}{token}", "x".repeat(MAX_SERVER_MESSAGE_CHARS - 10));
        let cleaned = redactor.clean(&long);
        assert!(!cleaned.contains(&token[..10]), "{cleaned}");
        assert!(cleaned.ends_with("[REDACTED]"), "{cleaned}");
        // Too short to mask without garbling ordinary text.
        assert_eq!(redactor.clean("a short message"), "a short message");
        // A redactor masks only its own tokens: nothing is registered for the process.
        assert_eq!(
            Redactor::default().server_message(echoed.as_bytes()),
            format!("Bad credentials: Bearer {token}")
        );
    }
}

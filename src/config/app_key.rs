//! A GitHub App's private key (`github.private_key_path` or `github.private_key`):
//! the PEM text GitHub hands out, parsed once, at load, into an RSA key pair that
//! can sign (RS256) and can never be printed.
//!
//! Accepted: `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1, what GitHub's "Generate a
//! private key" downloads) and `-----BEGIN PRIVATE KEY-----` (PKCS#8 holding an RSA
//! key, what `openssl pkcs8 -topk8 -nocrypt` makes of it), 2048 to 8192 bits. A
//! value written on one line with `\n` escapes (as some secret stores keep it) is
//! read as the lines it stands for. Everything else is refused with a reason that
//! names the kind of key it is (from its `BEGIN` line, among the known kinds
//! only), never any of its content.
//!
//! Signing is ring's (`RSA_PKCS1_SHA256`, the `RS256` of a JWT), already linked
//! for TLS. Not here: the JWT itself and what it is sent for
//! (`sources/github/app.rs`).

use base64::Engine as _;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use std::fmt;
use std::sync::Arc;

/// The largest key file read. An RSA key of 8192 bits, the most ring signs with,
/// is under 7 KiB in PEM; a larger file is not a private key.
pub const MAX_PRIVATE_KEY_BYTES: u64 = 16 * 1024;

/// The PEM labels of private keys that are not an unencrypted RSA key, with how
/// the problem names them.
const OTHER_KINDS: [(&str, &str); 6] = [
    ("ENCRYPTED PRIVATE KEY", "an encrypted private key"),
    ("EC PRIVATE KEY", "an elliptic-curve (EC) private key"),
    ("OPENSSH PRIVATE KEY", "an OpenSSH private key"),
    ("DSA PRIVATE KEY", "a DSA private key"),
    ("PUBLIC KEY", "a public key"),
    ("RSA PUBLIC KEY", "an RSA public key"),
];

/// Why a text is not an [`AppPrivateKey`]. No variant carries any of the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppKeyError {
    /// No `-----BEGIN …-----` block at all.
    #[error(
        "is not a private key in PEM form (expected the .pem file GitHub gives when you \
         generate a private key for the App, starting with -----BEGIN RSA PRIVATE KEY-----); \
         the key itself is not shown"
    )]
    NotPem,
    /// A PEM block of another kind.
    #[error(
        "is {0}, not an RSA private key (a GitHub App signs with the RSA key generated in \
         its settings; an encrypted key must be exported without a passphrase); the key \
         itself is not shown"
    )]
    OtherKind(&'static str),
    /// An RSA PEM block whose content is not a usable key.
    #[error(
        "is not a usable RSA private key ({0}: damaged, or shorter than 2048 bits); the \
         key itself is not shown"
    )]
    Rejected(String),
}

/// An App's RSA private key. `Debug` shows nothing of it; there is no `Display`.
#[derive(Clone)]
pub struct AppPrivateKey {
    pair: Arc<RsaKeyPair>,
}

impl fmt::Debug for AppPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppPrivateKey([REDACTED])")
    }
}

impl PartialEq for AppPrivateKey {
    /// Two keys are equal when they are the same key pair (their public halves
    /// are compared; the private half is never looked at).
    fn eq(&self, other: &Self) -> bool {
        use ring::signature::KeyPair as _;
        self.pair.public_key().as_ref() == other.pair.public_key().as_ref()
    }
}

impl Eq for AppPrivateKey {}

impl AppPrivateKey {
    /// Parses the PEM text of an RSA private key (see the module documentation).
    pub fn from_pem(text: &str) -> Result<AppPrivateKey, AppKeyError> {
        let unescaped;
        let text = if !text.contains('\n') && text.contains("\\n") {
            unescaped = text.replace("\\n", "\n");
            unescaped.as_str()
        } else {
            text
        };
        let (label, body) = pem_block(text).ok_or(AppKeyError::NotPem)?;
        let pkcs1 = match label {
            "RSA PRIVATE KEY" => true,
            "PRIVATE KEY" => false,
            other => {
                let kind = OTHER_KINDS
                    .iter()
                    .find(|(known, _)| *known == other)
                    .map_or("a PEM block of another kind", |(_, kind)| *kind);
                return Err(AppKeyError::OtherKind(kind));
            }
        };
        let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| AppKeyError::Rejected("its base64 does not decode".to_owned()))?;
        let pair = if pkcs1 {
            RsaKeyPair::from_der(&der)
        } else {
            RsaKeyPair::from_pkcs8(&der)
        }
        // ring's reasons are fixed words (`InvalidEncoding`, `TooSmall`), never
        // any of the key.
        .map_err(|rejected| AppKeyError::Rejected(rejected.to_string()))?;
        Ok(AppPrivateKey {
            pair: Arc::new(pair),
        })
    }

    /// The RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature of `message`.
    pub fn sign_rs256(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.pair.public().modulus_len()];
        let rng = ring::rand::SystemRandom::new();
        // PKCS#1 v1.5 signing is deterministic; ring fails only for a buffer of
        // the wrong length, which `modulus_len` rules out.
        if self
            .pair
            .sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
            .is_err()
        {
            signature.clear();
        }
        signature
    }
}

/// The label and the body of the first `-----BEGIN X-----` … `-----END X-----`
/// block of `text`.
fn pem_block(text: &str) -> Option<(&str, &str)> {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";
    let start = text.find(BEGIN)? + BEGIN.len();
    let label_end = start + text[start..].find(DASHES)?;
    let label = &text[start..label_end];
    let body_start = label_end + DASHES.len();
    let end_marker = format!("-----END {label}-----");
    let body_end = body_start + text[body_start..].find(&end_marker)?;
    Some((label, &text[body_start..body_end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_an_rsa_pem_is_refused_without_its_content() {
        let cases: &[(&str, AppKeyError)] = &[
            ("", AppKeyError::NotPem),
            ("ghp_notakey0123456789", AppKeyError::NotPem),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nsecretstuff\n",
                AppKeyError::NotPem,
            ),
            (
                "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----\n",
                AppKeyError::OtherKind("an elliptic-curve (EC) private key"),
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----",
                AppKeyError::OtherKind("an OpenSSH private key"),
            ),
            (
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
                AppKeyError::OtherKind("a PEM block of another kind"),
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\n!!!secret!!!\n-----END RSA PRIVATE KEY-----",
                AppKeyError::Rejected("its base64 does not decode".to_owned()),
            ),
        ];
        for (text, expected) in cases {
            let error = AppPrivateKey::from_pem(text).unwrap_err();
            assert_eq!(&error, expected, "{text}");
            let message = error.to_string();
            assert!(!message.contains("secret"), "{message}");
            assert!(
                message.ends_with("the key itself is not shown"),
                "{message}"
            );
        }
        // Valid base64 that is no key: ring's reason, nothing of the key.
        let error = AppPrivateKey::from_pem(
            "-----BEGIN RSA PRIVATE KEY-----\\nc2VjcmV0c2VjcmV0\\n-----END RSA PRIVATE KEY-----",
        )
        .unwrap_err();
        assert!(matches!(error, AppKeyError::Rejected(_)), "{error:?}");
    }
}

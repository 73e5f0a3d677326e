//! `X-Hub-Signature-256`: GitHub signs every delivery with the hook's secret, as
//! `sha256=` and the hex HMAC-SHA256 of the raw body. This checks one, in
//! constant time, over the bytes as they arrived (before any parsing).
//!
//! The secret is kept only as the keyed HMAC state, never as text; nothing here
//! formats it, the expected signature, or the one presented. No I/O.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// What precedes the hex digest in the header.
const PREFIX: &[u8] = b"sha256=";

/// Bytes of an HMAC-SHA256.
const DIGEST_BYTES: usize = 32;

/// A presented signature: the 32 bytes of an HMAC-SHA256.
#[derive(Clone, Copy)]
pub struct Signature([u8; DIGEST_BYTES]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signature(..)")
    }
}

impl Signature {
    /// The header's value `sha256=` followed by exactly 64 hex digits (either
    /// case); `None` for anything else: another algorithm, a truncated or padded
    /// digest, a stray character.
    pub fn parse(value: &[u8]) -> Option<Signature> {
        let hex = value.strip_prefix(PREFIX)?;
        if hex.len() != 2 * DIGEST_BYTES {
            return None;
        }
        let mut bytes = [0u8; DIGEST_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Some(Signature(bytes))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Checks signatures with one hook's secret.
#[derive(Clone)]
pub struct Verifier {
    /// The HMAC keyed with the secret, cloned for each body.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier { .. }")
    }
}

impl Verifier {
    /// A verifier for `secret`.
    pub fn new(secret: &SecretString) -> Verifier {
        // HMAC takes a key of any length: this cannot fail.
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
        Verifier { keyed }
    }

    /// Whether `signature` is the HMAC-SHA256 of `body` under the secret,
    /// compared in constant time.
    pub fn verify(&self, body: &[u8], signature: &Signature) -> bool {
        let mut mac = self.keyed.clone();
        mac.update(body);
        mac.verify_slice(&signature.0).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's own example ("Validating webhook deliveries").
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_PAYLOAD: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &[u8] =
        b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn verifier() -> Verifier {
        Verifier::new(&SecretString::from(GITHUB_SECRET))
    }

    #[test]
    fn githubs_test_vector_verifies() {
        let signature = Signature::parse(GITHUB_SIGNATURE).expect("well-formed");
        assert!(verifier().verify(GITHUB_PAYLOAD, &signature));
        let upper = String::from_utf8(GITHUB_SIGNATURE.to_vec())
            .unwrap()
            .replace("sha256=", "")
            .to_uppercase();
        let upper = Signature::parse(format!("sha256={upper}").as_bytes()).unwrap();
        assert!(verifier().verify(GITHUB_PAYLOAD, &upper));
    }

    #[test]
    fn another_body_secret_or_signature_does_not_verify() {
        let signature = Signature::parse(GITHUB_SIGNATURE).unwrap();
        assert!(!verifier().verify(b"Hello, World?", &signature));
        assert!(!verifier().verify(b"", &signature));
        let other = Verifier::new(&SecretString::from("It's a Secret to Everybody!"));
        assert!(!other.verify(GITHUB_PAYLOAD, &signature));
        let mut flipped = GITHUB_SIGNATURE.to_vec();
        let last = flipped.len() - 1;
        flipped[last] = b'6';
        let flipped = Signature::parse(&flipped).unwrap();
        assert!(!verifier().verify(GITHUB_PAYLOAD, &flipped));
    }

    #[test]
    fn malformed_truncated_and_other_algorithms_are_not_signatures() {
        let hex = &GITHUB_SIGNATURE[PREFIX.len()..];
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"sha256=".to_vec(),
            hex.to_vec(),
            [b"sha1=".as_slice(), hex].concat(),
            [b"SHA256=".as_slice(), hex].concat(),
            GITHUB_SIGNATURE[..GITHUB_SIGNATURE.len() - 1].to_vec(),
            GITHUB_SIGNATURE[..GITHUB_SIGNATURE.len() - 2].to_vec(),
            [GITHUB_SIGNATURE, b"0"].concat(),
            [GITHUB_SIGNATURE, b" "].concat(),
            [b" ".as_slice(), GITHUB_SIGNATURE].concat(),
            [b"sha256=".as_slice(), &[b'g'; 64]].concat(),
            [b"sha256=".as_slice(), "é".repeat(32).as_bytes()].concat(),
        ];
        for case in cases {
            assert!(
                Signature::parse(&case).is_none(),
                "{:?}",
                String::from_utf8_lossy(&case)
            );
        }
    }

    #[test]
    fn nothing_formats_the_secret_or_a_signature() {
        let signature = Signature::parse(GITHUB_SIGNATURE).unwrap();
        let printed = format!("{:?} {:?}", verifier(), signature);
        assert!(!printed.contains("Secret"), "{printed}");
        assert!(!printed.contains("757107"), "{printed}");
    }
}

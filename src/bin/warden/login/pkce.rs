//! The one-time secrets of a browser sign-in: the PKCE pair (RFC 7636) and the `state` value.
//!
//! - The code verifier is 32 bytes from the operating system's random source, base64url without
//!   padding: 43 characters from RFC 7636's unreserved set (§4.1 asks for 43–128). The challenge
//!   is `BASE64URL(SHA-256(verifier))` and is sent with `code_challenge_method=S256` (§4.2); the
//!   verifier only travels in the final, direct code redemption.
//! - `state` is another 32 random bytes: the loopback listener accepts a redirect only when it
//!   carries exactly this value (RFC 6749 §10.12), compared in constant time.

use ct_codecs::{Base64UrlSafeNoPadding, Encoder};

/// A PKCE code verifier and its S256 challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkce {
    /// The secret verifier, sent only when redeeming the code.
    pub verifier: String,
    /// `BASE64URL(SHA-256(verifier))`, sent in the authorization request.
    pub challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce").field("challenge", &self.challenge).finish_non_exhaustive()
    }
}

impl Pkce {
    /// A fresh random pair.
    pub fn generate() -> Result<Self, String> {
        Ok(Self::from_verifier(random_token()?))
    }

    /// The pair for a given verifier (the service checks it with the same function).
    pub fn from_verifier(verifier: String) -> Self {
        let challenge = warden::service::tokens::sign_in::pkce_challenge(&verifier);
        Self { verifier, challenge }
    }
}

/// 32 random bytes as base64url without padding (43 characters).
pub fn random_token() -> Result<String, String> {
    warden::service::util::random_bytes::<32>().map(|bytes| base64url(&bytes))
}

/// Whether `presented` equals `expected`, in time independent of where they differ.
pub fn same_secret(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn base64url(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_matches_rfc_7636_appendix_b() {
        let pair = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_string());
        assert_eq!(pair.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn generated_verifiers_are_43_unreserved_characters_and_differ() {
        let a = Pkce::generate().unwrap();
        let b = Pkce::generate().unwrap();
        assert_eq!(a.verifier.len(), 43);
        assert!(a.verifier.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(a.challenge, a.verifier);
        assert!(!format!("{a:?}").contains(&a.verifier), "Debug hides the verifier");
        assert_ne!(random_token().unwrap(), random_token().unwrap());
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
        assert!(!same_secret("abcd", "abc"));
    }
}

//! Signing approval verdicts: compact JWS, `{"alg":"EdDSA","typ":"JWT"}`, Ed25519; the same key
//! signs the audit trail's checkpoints (detached signatures, [`VerdictSigner::sign_detached`]).
//!
//! The claims are exactly those `crate::core::approval::verdict::verify` (the filter) reads: `fp`, `iss`, `sub`,
//! `decision`, `review`, `reviewer`, `comment`, `url`, `iat`, `exp` and, on an approval a session
//! grant gave or created, `grant` ([`GrantClaims`]), with `exp = iat +`
//! [`VERDICT_LIFETIME_SECONDS`]. A verdict answers one callout, so it lives only long enough to
//! cross the network (the filter tolerates 60 s of clock skew on top).
//!
//! The key is a PKCS#8 PEM Ed25519 private key (`warden serve init` writes one); the public half,
//! base64 of its 32 raw bytes, is the policy's `approvals.service.verdict_key` credential.
//! Signatures are deterministic (RFC 8032). The private key never leaves this type: its Debug
//! output is redacted.

use ct_codecs::{Base64, Base64UrlSafeNoPadding, Encoder};
use ed25519_compact::KeyPair;
use jwt_simple::prelude::Ed25519KeyPair;
use serde::Serialize;
use std::fmt;
use std::path::Path;

/// Seconds a verdict stays valid after it is issued.
pub const VERDICT_LIFETIME_SECONDS: i64 = 60;

/// The JWS header of every verdict.
const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;

/// What a verdict says.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictClaims<'a> {
    /// Request fingerprint.
    pub fp: &'a str,
    /// The requester's token issuer.
    pub iss: &'a str,
    /// The requester's subject.
    pub sub: &'a str,
    /// `approved`, `denied` or `pending`.
    pub decision: &'a str,
    /// Review id.
    pub review: &'a str,
    /// Approver subject(s), comma-separated; empty while pending.
    pub reviewer: &'a str,
    /// The approvers' comment(s); empty while pending.
    pub comment: &'a str,
    /// Where the review can be seen or decided.
    pub url: &'a str,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// The session grant that gave (or was created with) this approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantClaims<'a>>,
}

/// The scope of a session grant, as a verdict names it (docs/approvals.md, "Session grants").
#[derive(Debug, Clone, Serialize)]
pub struct GrantClaims<'a> {
    /// `grt_…` id.
    pub id: &'a str,
    /// The agent session it covers.
    pub session_id: &'a str,
    /// Unix seconds when it ends.
    pub expires_at: i64,
    /// The reasons it covers.
    pub reasons: &'a [String],
}

/// Signs verdicts with the service's Ed25519 key.
pub struct VerdictSigner {
    key: KeyPair,
}

impl fmt::Debug for VerdictSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerdictSigner").field("key", &"[REDACTED]").finish()
    }
}

impl VerdictSigner {
    /// Reads the PKCS#8 PEM private key at `path`. Errors name the file, never its contents.
    pub fn load(path: &Path) -> Result<Self, String> {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_pem(&pem).ok_or_else(|| {
            format!("{} is not a PKCS#8 PEM Ed25519 private key (see `warden serve init`)", path.display())
        })
    }

    /// The signer for a PEM text; `None` when it is not a PKCS#8 PEM Ed25519 private key.
    pub fn from_pem(pem: &str) -> Option<Self> {
        let pair = Ed25519KeyPair::from_pem(pem).ok()?;
        KeyPair::from_slice(&pair.to_bytes()).map(|key| Self { key }).ok()
    }

    /// A new key pair from the operating system's random source.
    pub fn generate() -> Result<Self, String> {
        let seed = crate::service::util::random_bytes::<32>()?;
        Ok(Self { key: KeyPair::from_seed(ed25519_compact::Seed::new(seed)) })
    }

    /// The private key as PKCS#8 PEM (for `warden serve init` only).
    pub fn to_pem(&self) -> Result<String, String> {
        Ed25519KeyPair::from_bytes(self.key.as_ref()).map(|pair| pair.to_pem()).map_err(|e| e.to_string())
    }

    /// The 32 raw public key bytes.
    pub fn public_key(&self) -> [u8; 32] {
        *self.key.pk
    }

    /// The public key as the `verdict_key` credential holds it: standard base64 of 32 bytes.
    pub fn public_key_base64(&self) -> String {
        Base64::encode_to_string(self.public_key()).unwrap_or_default()
    }

    /// Key material for deriving other service secrets (the page's CSRF key): a hash of the
    /// private key, so the key itself is never reused directly.
    pub fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256::HMAC::mac(purpose.as_bytes(), self.key.sk.seed().as_ref())
    }

    /// The standard base64 of the Ed25519 signature of `message` (audit checkpoints).
    pub fn sign_detached(&self, message: &[u8]) -> String {
        Base64::encode_to_string(self.key.sk.sign(message, None).as_ref()).unwrap_or_default()
    }

    /// The compact JWS of `claims`.
    pub fn sign(&self, claims: &VerdictClaims<'_>) -> Result<String, String> {
        let claims = serde_json::to_string(claims).map_err(|e| format!("encoding verdict claims: {e}"))?;
        let encode = |bytes: &[u8]| Base64UrlSafeNoPadding::encode_to_string(bytes).map_err(|e| e.to_string());
        let signed = format!("{}.{}", encode(HEADER.as_bytes())?, encode(claims.as_bytes())?);
        let signature = self.key.sk.sign(signed.as_bytes(), None);
        Ok(format!("{signed}.{}", encode(signature.as_ref())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::approval::verdict::{verify, Decision};

    const NOW: i64 = 1_800_000_000;

    fn claims(decision: &'static str) -> VerdictClaims<'static> {
        VerdictClaims {
            fp: "ab12",
            iss: "idp",
            sub: "alice",
            decision,
            review: "rev_0123456789abcdef",
            reviewer: "bob,carol",
            comment: "ok for the migration",
            url: "https://warden.example/reviews/rev_0123456789abcdef",
            iat: NOW,
            exp: NOW + VERDICT_LIFETIME_SECONDS,
            grant: None,
        }
    }

    #[test]
    fn a_session_grant_in_a_verdict_reaches_the_filter() {
        let signer = VerdictSigner::generate().unwrap();
        let reasons = vec!["git-push-force".to_string()];
        let mut approved = claims("approved");
        approved.grant = Some(GrantClaims { id: "grt_1", session_id: "s-1", expires_at: NOW + 600, reasons: &reasons });
        let token = signer.sign(&approved).unwrap();
        let (_, grant) = crate::core::approval::verdict::verify_with_grant(
            &token,
            &signer.public_key(),
            "ab12",
            ("idp", "alice"),
            NOW as f64,
        )
        .unwrap();
        let grant = grant.unwrap();
        assert_eq!((grant.id.as_str(), grant.session_id.as_str(), grant.expires_at), ("grt_1", "s-1", 1_800_000_600));
        assert_eq!(grant.reasons, reasons);
    }

    #[test]
    fn signed_verdicts_verify_with_the_filters_verifier() {
        let signer = VerdictSigner::generate().unwrap();
        let key = signer.public_key();
        let check =
            |decision| verify(&signer.sign(&claims(decision)).unwrap(), &key, "ab12", ("idp", "alice"), NOW as f64);
        assert_eq!(
            check("approved"),
            Ok(Decision::Approved { review: "rev_0123456789abcdef".into(), reviewer: "bob,carol".into() })
        );
        assert_eq!(
            check("denied"),
            Ok(Decision::Denied {
                review: "rev_0123456789abcdef".into(),
                reviewer: "bob,carol".into(),
                comment: "ok for the migration".into()
            })
        );
        assert_eq!(
            check("pending"),
            Ok(Decision::Pending {
                review: "rev_0123456789abcdef".into(),
                url: "https://warden.example/reviews/rev_0123456789abcdef".into()
            })
        );
    }

    #[test]
    fn verdicts_are_bound_to_request_caller_key_and_time() {
        let signer = VerdictSigner::generate().unwrap();
        let token = signer.sign(&claims("approved")).unwrap();
        let key = signer.public_key();
        assert!(verify(&token, &key, "other", ("idp", "alice"), NOW as f64).is_err());
        assert!(verify(&token, &key, "ab12", ("idp", "mallory"), NOW as f64).is_err());
        assert!(verify(&token, &key, "ab12", ("other-idp", "alice"), NOW as f64).is_err());
        assert!(verify(&token, &VerdictSigner::generate().unwrap().public_key(), "ab12", ("idp", "alice"), NOW as f64)
            .is_err());
        assert!(verify(&token, &key, "ab12", ("idp", "alice"), (NOW + 3600) as f64).is_err());
    }

    #[test]
    fn the_key_round_trips_through_pem_and_its_public_half_is_base64() {
        let signer = VerdictSigner::generate().unwrap();
        let again = VerdictSigner::from_pem(&signer.to_pem().unwrap()).unwrap();
        assert_eq!(again.public_key(), signer.public_key());
        use ct_codecs::Decoder;
        let decoded = ct_codecs::Base64::decode_to_vec(signer.public_key_base64(), None).unwrap();
        assert_eq!(decoded, signer.public_key());
        assert!(!format!("{signer:?}").contains(&signer.to_pem().unwrap()));
        assert!(VerdictSigner::from_pem("not a key").is_none());
    }
}

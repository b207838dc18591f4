//! Signed approval verdicts: what the approval service answers, and how the filter trusts it
//! (called by the exchange when the approval service answers a hold).
//!
//! A verdict is a compact JWS — `base64url(header).base64url(claims).base64url(signature)` —
//! signed with Ed25519 (`"alg": "EdDSA"`) by the approval service. Only a signature that verifies
//! under the configured public key counts; any other algorithm (`none` included), a malformed
//! token, a verdict for another request (fingerprint) or caller (issuer and subject: the same
//! `sub` from another issuer is another caller), or an expired one is
//! an error, and the caller of [`verify`] denies the request. The signed token itself can be kept
//! as evidence of who approved what.
//!
//! Claims: `fp` (request fingerprint, [`crate::core::approval::fingerprint`]), `iss` and `sub`
//! (the requester's issuer and subject), `decision` (`approved` | `denied` | `pending`), `review` (review id), `reviewer`,
//! `comment`, `url` (where to review), `iat`, `exp` (seconds since the epoch), and — only on an
//! `approved` verdict that a session grant gave or created — `grant` (`id`, `session_id`,
//! `expires_at`, `reasons`; docs/approvals.md, "Session grants"), which the filter copies into
//! the record ([`verify_with_grant`]). A `grant` on any other decision makes the verdict
//! malformed.

use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
use ed25519_compact::{PublicKey, Signature};
use serde::Deserialize;
use std::fmt;

/// Clock skew tolerated on `iat` and `exp`, in seconds.
pub const SKEW_SECONDS: f64 = 60.0;

/// What the approval service decided about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A reviewer approved it.
    Approved {
        /// Review id.
        review: String,
        /// Who approved.
        reviewer: String,
    },
    /// A reviewer denied it.
    Denied {
        /// Review id.
        review: String,
        /// Who denied.
        reviewer: String,
        /// Why, in the reviewer's words.
        comment: String,
    },
    /// Nobody decided yet.
    Pending {
        /// Review id.
        review: String,
        /// Where an approver can decide.
        url: String,
    },
}

/// Why a verdict is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerdictError {
    /// Not three base64url parts, or the header or claims are not the expected JSON.
    Malformed(&'static str),
    /// The header names another algorithm than `EdDSA`.
    WrongAlgorithm,
    /// The signature does not verify under the configured key.
    BadSignature,
    /// The verdict is about another request or caller.
    WrongRequest,
    /// `exp` has passed, or `iat` lies in the future.
    Expired,
}

impl fmt::Display for VerdictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "the approval verdict is malformed ({what})"),
            Self::WrongAlgorithm => f.write_str("the approval verdict is not signed with EdDSA"),
            Self::BadSignature => f.write_str("the approval verdict's signature does not verify"),
            Self::WrongRequest => f.write_str("the approval verdict is for another request or caller"),
            Self::Expired => f.write_str("the approval verdict has expired or is not yet valid"),
        }
    }
}

/// The session grant an `approved` verdict names: the approval covers later holds of one agent
/// session by the same caller for these reasons until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Grant {
    /// The grant's id (`grt_…`).
    pub id: String,
    /// The agent session it covers.
    pub session_id: String,
    /// Unix seconds when it ends.
    pub expires_at: u64,
    /// The trigger reasons (for tool calls: rule ids) it covers.
    pub reasons: Vec<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    fp: String,
    iss: String,
    sub: String,
    decision: String,
    review: String,
    #[serde(default)]
    reviewer: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    url: String,
    iat: f64,
    exp: f64,
    #[serde(default)]
    grant: Option<Grant>,
}

/// Verifies `token` under `public_key` (32 bytes) for the request with `fingerprint` from the
/// caller `(issuer, subject)`, at `now` (seconds since the epoch).
pub fn verify(
    token: &str,
    public_key: &[u8],
    fingerprint: &str,
    caller: (&str, &str),
    now: f64,
) -> Result<Decision, VerdictError> {
    verify_with_grant(token, public_key, fingerprint, caller, now).map(|(decision, _)| decision)
}

/// [`verify`], and the session grant an `approved` verdict names, if any.
pub fn verify_with_grant(
    token: &str,
    public_key: &[u8],
    fingerprint: &str,
    (issuer, subject): (&str, &str),
    now: f64,
) -> Result<(Decision, Option<Grant>), VerdictError> {
    let key = PublicKey::from_slice(public_key).map_err(|_| VerdictError::Malformed("public key"))?;
    let mut parts = token.trim().split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerdictError::Malformed("not a compact JWS"));
    };
    let decode =
        |part: &str, what| Base64UrlSafeNoPadding::decode_to_vec(part, None).map_err(|_| VerdictError::Malformed(what));
    let header: Header =
        serde_json::from_slice(&decode(header, "header")?).map_err(|_| VerdictError::Malformed("header"))?;
    if header.alg != "EdDSA" {
        return Err(VerdictError::WrongAlgorithm);
    }
    let signature = Signature::from_slice(&decode(signature, "signature")?).map_err(|_| VerdictError::BadSignature)?;
    let signed = token.trim().rsplit_once('.').map(|(signed, _)| signed).unwrap_or_default();
    key.verify(signed.as_bytes(), &signature).map_err(|_| VerdictError::BadSignature)?;
    let claims: Claims =
        serde_json::from_slice(&decode(claims, "claims")?).map_err(|_| VerdictError::Malformed("claims"))?;
    if claims.fp != fingerprint || claims.iss != issuer || claims.sub != subject {
        return Err(VerdictError::WrongRequest);
    }
    if claims.exp + SKEW_SECONDS < now || claims.iat - SKEW_SECONDS > now {
        return Err(VerdictError::Expired);
    }
    let grant = claims.grant;
    let decision = match claims.decision.as_str() {
        "approved" => Decision::Approved { review: claims.review, reviewer: claims.reviewer },
        "denied" => Decision::Denied { review: claims.review, reviewer: claims.reviewer, comment: claims.comment },
        "pending" => Decision::Pending { review: claims.review, url: claims.url },
        _ => return Err(VerdictError::Malformed("decision")),
    };
    if grant.is_some() && !matches!(decision, Decision::Approved { .. }) {
        return Err(VerdictError::Malformed("a grant on a verdict that is not an approval"));
    }
    Ok((decision, grant))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_codecs::Encoder;
    use ed25519_compact::{KeyPair, Seed};

    const NOW: f64 = 1_800_000_000.0;

    fn b64(bytes: &[u8]) -> String {
        Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
    }

    fn keys(seed: u8) -> KeyPair {
        KeyPair::from_seed(Seed::new([seed; 32]))
    }

    fn sign(keys: &KeyPair, header: &str, claims: &serde_json::Value) -> String {
        let signed = format!("{}.{}", b64(header.as_bytes()), b64(claims.to_string().as_bytes()));
        let signature = keys.sk.sign(signed.as_bytes(), None);
        format!("{signed}.{}", b64(signature.as_ref()))
    }

    fn claims(decision: &str) -> serde_json::Value {
        serde_json::json!({
            "fp": "f1", "iss": "idp", "sub": "alice", "decision": decision, "review": "rev_1", "reviewer": "bob",
            "comment": "not on prod", "url": "https://warden.example/reviews/rev_1", "iat": NOW - 5.0, "exp": NOW + 600.0
        })
    }

    fn check(token: &str) -> Result<Decision, VerdictError> {
        verify(token, keys(1).pk.as_ref(), "f1", ("idp", "alice"), NOW)
    }

    #[test]
    fn signed_decisions_are_read() {
        let k = keys(1);
        let header = r#"{"alg":"EdDSA","typ":"JWT"}"#;
        assert_eq!(
            check(&sign(&k, header, &claims("approved"))),
            Ok(Decision::Approved { review: "rev_1".into(), reviewer: "bob".into() })
        );
        assert_eq!(
            check(&sign(&k, header, &claims("denied"))),
            Ok(Decision::Denied { review: "rev_1".into(), reviewer: "bob".into(), comment: "not on prod".into() })
        );
        assert_eq!(
            check(&sign(&k, header, &claims("pending"))),
            Ok(Decision::Pending { review: "rev_1".into(), url: "https://warden.example/reviews/rev_1".into() })
        );
    }

    #[test]
    fn an_approval_names_its_session_grant_and_no_other_decision_may() {
        let k = keys(1);
        let header = r#"{"alg":"EdDSA","typ":"JWT"}"#;
        let grant = serde_json::json!({"id": "grt_1", "session_id": "s-1", "expires_at": 1_800_003_600u64,
                                       "reasons": ["git-push-force"]});
        let mut approved = claims("approved");
        approved["grant"] = grant.clone();
        let (decision, named) =
            verify_with_grant(&sign(&k, header, &approved), k.pk.as_ref(), "f1", ("idp", "alice"), NOW).unwrap();
        assert!(matches!(decision, Decision::Approved { .. }));
        assert_eq!(
            named,
            Some(Grant {
                id: "grt_1".into(),
                session_id: "s-1".into(),
                expires_at: 1_800_003_600,
                reasons: vec!["git-push-force".into()]
            })
        );
        let plain =
            verify_with_grant(&sign(&k, header, &claims("approved")), k.pk.as_ref(), "f1", ("idp", "alice"), NOW);
        assert_eq!(plain.unwrap().1, None);
        let mut denied = claims("denied");
        denied["grant"] = grant;
        assert!(matches!(check(&sign(&k, header, &denied)), Err(VerdictError::Malformed(_))));
    }

    #[test]
    fn forged_tampered_and_misdirected_verdicts_are_refused() {
        let header = r#"{"alg":"EdDSA"}"#;
        // Another key.
        assert_eq!(check(&sign(&keys(2), header, &claims("approved"))), Err(VerdictError::BadSignature));
        // A tampered claim under the right key's signature.
        let good = sign(&keys(1), header, &claims("denied"));
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], b64(claims("approved").to_string().as_bytes()), parts[2]);
        assert_eq!(check(&forged), Err(VerdictError::BadSignature));
        // No signature at all.
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims("approved").to_string().as_bytes()));
        assert_eq!(check(&none), Err(VerdictError::WrongAlgorithm));
        // Another request, another caller, expired.
        let token = sign(&keys(1), header, &claims("approved"));
        let key = keys(1).pk;
        assert_eq!(verify(&token, key.as_ref(), "f2", ("idp", "alice"), NOW), Err(VerdictError::WrongRequest));
        assert_eq!(verify(&token, key.as_ref(), "f1", ("idp", "mallory"), NOW), Err(VerdictError::WrongRequest));
        assert_eq!(verify(&token, key.as_ref(), "f1", ("idp", "alice"), NOW + 3600.0), Err(VerdictError::Expired));
        // The same subject from another issuer is another caller.
        assert_eq!(verify(&token, key.as_ref(), "f1", ("other-idp", "alice"), NOW), Err(VerdictError::WrongRequest));
        // A verdict without an issuer (an older service) is not trusted.
        let mut no_issuer = claims("approved");
        no_issuer.as_object_mut().unwrap().remove("iss");
        assert!(matches!(check(&sign(&keys(1), header, &no_issuer)), Err(VerdictError::Malformed(_))));
        // Garbage.
        for junk in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert!(matches!(check(junk), Err(VerdictError::Malformed(_))), "{junk:?}");
        }
        let unknown = sign(&keys(1), header, &claims("maybe"));
        assert_eq!(check(&unknown), Err(VerdictError::Malformed("decision")));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_tokens_never_verify_or_panic(token in ".{0,200}") {
            proptest::prop_assert!(check(&token).is_err());
        }
    }
}

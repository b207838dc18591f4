//! Who is calling: the gateway (a shared bearer token) or an approver (a verified OIDC token);
//! and the page's CSRF tokens.
//!
//! **Gateway.** The token is read from a file at start-up. A presented token is compared in
//! constant time: both sides are hashed with SHA-256 and the digests compared with a fold of
//! XORs, so neither the content nor the length of the secret leaks through timing.
//!
//! **Approvers.** The policy's `identity.providers` are trusted as issuers, but an approver's token
//! must carry the approvers' own audience (`approvals.approver_audience`, default
//! `warden-approvals`) instead of the gateway's: the gateway refuses that audience, so the token
//! an agent holds never decides a review, and an approver's token never calls Claude. The token
//! is checked by the service's one JWT verifier ([`super::jwt`]: issuer, signature over the
//! provider's JWKS, audience — the approvers' —, times with 60 s skew, every supported
//! algorithm, key rotation), then `sub`, `iat` and `exp` must be present and `exp - iat` ≤
//! `identity.max_token_lifetime`, as the gateway requires. Groups come from the
//! issuer's provider's `groups_claim`, else `identity.groups_claim` (dotted path; a list of
//! strings or one string). Without an
//! `approvals` section (a service that keeps only the audit trail) the audience is the default
//! `warden-approvals`, so auditors can still sign in to the session pages.
//!
//! **CSRF.** Page forms carry `<issued-at>.<hex HMAC-SHA-256(key, issued-at | subject)>`, valid
//! for 12 hours for that approver; the key is derived from the service's signing key, so open
//! pages survive a restart.
//!
//! No token is ever logged or put in an error message.

use jwt_simple::prelude::JWTClaims;
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;
use crate::core::policy::{Jwks, Policy};

use super::jwt::{groups_at, JwtVerifier, KeySource, TrustedIssuer, VerifyError, SUPPORTED_ALGORITHMS};
use crate::core::hex::hex;

/// The approvers' audience when the policy has no `approvals` section.
const DEFAULT_APPROVER_AUDIENCE: &str = "warden-approvals";
/// Lifetime of a page form's CSRF token.
const CSRF_LIFETIME_SECONDS: i64 = 12 * 3600;

/// An authenticated approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    /// `sub`.
    pub subject: String,
    /// `iss`.
    pub issuer: String,
    /// Groups from the groups claim.
    pub groups: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
}

/// Why a caller is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No credential was presented.
    Missing,
    /// The credential was refused; the text says why (never containing the credential).
    Invalid(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no bearer token: present an approver's OIDC token"),
            Self::Invalid(why) => write!(f, "the token was refused: {why}"),
        }
    }
}

/// The bearer token of an `Authorization: Bearer …` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The gateway's shared token, kept only as a digest.
pub struct GatewayToken {
    digest: [u8; 32],
}

impl fmt::Debug for GatewayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatewayToken([REDACTED])")
    }
}

impl GatewayToken {
    /// Reads the token from `path` (surrounding whitespace ignored; at least 16 characters).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::new(text.trim()).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The token `value`.
    pub fn new(value: &str) -> Result<Self, String> {
        if value.len() < 16 {
            return Err("the gateway token must be at least 16 characters (see `warden serve init`)".to_string());
        }
        Ok(Self { digest: hmac_sha256::Hash::hash(value.as_bytes()) })
    }

    /// Whether `presented` is the token, in time independent of both values.
    pub fn matches(&self, presented: &str) -> bool {
        let other = hmac_sha256::Hash::hash(presented.as_bytes());
        self.digest.iter().zip(other.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// Verifies approvers' OIDC tokens with the policy's providers (through [`JwtVerifier`]).
#[derive(Clone, Debug)]
pub struct OidcVerifier {
    jwt: JwtVerifier,
    /// Each provider's issuer and the path of its groups claim.
    groups_claims: Vec<(String, Vec<String>)>,
    /// The groups claim of tokens whose issuer has no provider of its own.
    groups_claim: Vec<String>,
    max_token_lifetime: u64,
}

impl OidcVerifier {
    /// The verifier for `policy`, whose file is at `policy_path` (JWKS files are relative to it).
    /// Reads JWKS files and fetches JWKS URIs now (blocking). Without an `approvals` section the
    /// approvers' audience is the default one (`warden-approvals`), for the audit pages.
    pub fn from_policy(policy: &Policy, policy_path: &Path) -> Result<Self, String> {
        let base = policy_path.parent().unwrap_or(Path::new("."));
        let approver_audience = policy
            .approvals
            .as_ref()
            .map_or_else(|| DEFAULT_APPROVER_AUDIENCE.to_string(), |a| a.approver_audience.clone());
        let sources = policy
            .identity
            .providers
            .iter()
            .map(|provider| TrustedIssuer {
                name: format!("identity provider {}", provider.name),
                issuer: provider.issuer.clone(),
                audiences: vec![approver_audience.clone()],
                keys: match &provider.jwks {
                    Jwks::File(file) => KeySource::File(base.join(file)),
                    Jwks::Uri(uri) => KeySource::Uri(uri.clone()),
                },
                algorithms: SUPPORTED_ALGORITHMS.iter().map(|a| a.to_string()).collect(),
            })
            .collect::<Vec<_>>();
        if sources.is_empty() && policy.approvals.is_some() {
            return Err("the policy lists no `identity.providers`: approvers' tokens cannot be verified".to_string());
        }
        Ok(Self {
            jwt: JwtVerifier::new(sources)?,
            groups_claims: policy
                .identity
                .providers
                .iter()
                .map(|p| (p.issuer.clone(), p.groups_claim.clone()))
                .collect(),
            groups_claim: policy.identity.groups_claim.clone(),
            max_token_lifetime: policy.identity.max_token_lifetime,
        })
    }

    /// Verifies `token` and returns the approver it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Approver, AuthError> {
        if self.jwt.is_empty() && !token.trim().is_empty() {
            return Err(invalid("the policy lists no `identity.providers`: approvers' tokens cannot be verified"));
        }
        let verified = self.jwt.verify(token).await.map_err(|e| match e {
            VerifyError::Missing => AuthError::Missing,
            VerifyError::Invalid(why) => AuthError::Invalid(why),
        })?;
        self.approver(verified.claims)
    }

    fn approver(&self, claims: JWTClaims<Map<String, Value>>) -> Result<Approver, AuthError> {
        let subject = claims.subject.filter(|s| !s.trim().is_empty()).ok_or_else(|| invalid("no subject (sub)"))?;
        let (Some(issued_at), Some(expires_at)) = (claims.issued_at, claims.expires_at) else {
            return Err(invalid("the token needs both iat and exp"));
        };
        if expires_at.as_secs().saturating_sub(issued_at.as_secs()) > self.max_token_lifetime {
            return Err(invalid("the token lives longer than the policy's identity.max_token_lifetime"));
        }
        let groups_claim = self
            .groups_claims
            .iter()
            .find(|(issuer, _)| claims.issuer.as_deref() == Some(issuer.as_str()))
            .map_or(&self.groups_claim, |(_, path)| path);
        let groups = groups_at(&claims.custom, groups_claim);
        Ok(Approver {
            subject,
            issuer: claims.issuer.unwrap_or_default(),
            groups,
            expires_at: i64::try_from(expires_at.as_secs()).unwrap_or(i64::MAX),
        })
    }

    /// Names and key sources of the providers (for the start-up log line).
    pub fn describe(&self) -> Vec<String> {
        self.jwt.describe()
    }
}

fn invalid(why: &str) -> AuthError {
    AuthError::Invalid(why.to_string())
}

/// Issues and checks the page forms' CSRF tokens.
pub struct CsrfKey([u8; 32]);

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfKey([REDACTED])")
    }
}

impl CsrfKey {
    /// A key from secret bytes.
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// A token for `subject` issued at `now`.
    pub fn issue(&self, subject: &str, now: i64) -> String {
        format!("{now}.{}", self.mac(subject, now))
    }

    /// Whether `token` was issued to `subject` within the last 12 hours.
    pub fn check(&self, subject: &str, token: &str, now: i64) -> bool {
        let Some((issued, mac)) = token.split_once('.') else { return false };
        let Ok(issued) = issued.parse::<i64>() else { return false };
        let fresh = issued <= now + 60 && now - issued <= CSRF_LIFETIME_SECONDS;
        let expected = self.mac(subject, issued);
        let same = expected.len() == mac.len()
            && expected.bytes().zip(mac.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        fresh && same
    }

    fn mac(&self, subject: &str, issued: i64) -> String {
        hex(&hmac_sha256::HMAC::mac(format!("{issued}|{subject}").as_bytes(), self.0))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use crate::service::jwt::testing::{claims, es256_jwk, jwks};
    use jwt_simple::prelude::{ECDSAP256KeyPairLike, ES256KeyPair};
    use std::path::PathBuf;

    /// A demo issuer: an ES256 key and its JWKS text.
    pub(crate) struct TestIssuer {
        pub key: ES256KeyPair,
        pub jwks: String,
    }

    impl TestIssuer {
        pub(crate) fn new(kid: &str) -> Self {
            let key = ES256KeyPair::generate().with_key_id(kid);
            let jwks = jwks(&[es256_jwk(&key, kid)]);
            Self { key, jwks }
        }

        pub(crate) fn token(&self, sub: &str, groups: &[&str], issuer: &str, audience: &str, ttl: u64) -> String {
            self.key.sign(claims(issuer, audience, sub, ttl, serde_json::json!({ "groups": groups }))).unwrap()
        }
    }

    pub(crate) fn verifier_with(issuer: &TestIssuer, dir: &Path) -> OidcVerifier {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("jwks.json"), &issuer.jwks).unwrap();
        let policy = Policy::parse(crate::service::approvals::rules::tests::POLICY).unwrap();
        OidcVerifier::from_policy(&policy, &dir.join("policy.yaml")).unwrap()
    }

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("warden-auth-{name}-{}", std::process::id()))
    }

    #[tokio::test]
    async fn approver_tokens_from_the_policys_provider_are_accepted() {
        let issuer = TestIssuer::new("k1");
        let dir = temp_dir("ok");
        let verifier = verifier_with(&issuer, &dir);
        let approver = verifier
            .verify(&issuer.token("bob", &["leads", "eng"], "warden-demo", "warden-approvals", 600))
            .await
            .unwrap();
        assert_eq!(approver.subject, "bob");
        assert_eq!(approver.issuer, "warden-demo");
        assert_eq!(approver.groups, ["leads", "eng"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn foreign_expired_and_misaddressed_tokens_are_refused() {
        let issuer = TestIssuer::new("k1");
        let dir = temp_dir("refused");
        let verifier = verifier_with(&issuer, &dir);
        let other = TestIssuer::new("k1");
        let cases = [
            (other.token("bob", &["leads"], "warden-demo", "warden-approvals", 600), "signature"),
            (issuer.token("bob", &["leads"], "elsewhere", "warden-approvals", 600), "issuer"),
            (issuer.token("bob", &["leads"], "warden-demo", "other-app", 600), "audience"),
            // The gateway's audience: the token an agent holds never decides.
            (issuer.token("bob", &["leads"], "warden-demo", "warden", 600), "audience"),
            (issuer.token("bob", &["leads"], "warden-demo", "warden-approvals", 7200), "max_token_lifetime"),
            ("not.a.jwt".to_string(), "JWT"),
        ];
        for (token, why) in cases {
            let error = verifier.verify(&token).await.unwrap_err().to_string();
            assert!(error.contains(why), "{why}: {error}");
            assert!(!error.contains(&token), "the error never repeats the token");
        }
        assert_eq!(verifier.verify("").await, Err(AuthError::Missing));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_gateway_token_matches_only_itself() {
        let token = GatewayToken::new("0123456789abcdef-secret").unwrap();
        assert!(token.matches("0123456789abcdef-secret"));
        assert!(!token.matches("0123456789abcdef-secreT"));
        assert!(!token.matches(""));
        assert!(GatewayToken::new("short").is_err());
        assert!(!format!("{token:?}").contains("secret"));
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_approver_and_expire() {
        let key = CsrfKey::new([7; 32]);
        let token = key.issue("bob", 1000);
        assert!(key.check("bob", &token, 1000 + 3600));
        assert!(!key.check("carol", &token, 1000));
        assert!(!key.check("bob", &token, 1000 + CSRF_LIFETIME_SECONDS + 1));
        assert!(!CsrfKey::new([8; 32]).check("bob", &token, 1000));
        assert!(!key.check("bob", "garbage", 1000));
    }
}

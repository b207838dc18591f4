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
//! an agent holds never decides a review, and an approver's token never calls Claude. A token is
//! matched to the provider(s) whose `issuer` equals its (unverified) `iss`, then its signature is
//! checked against that provider's JWKS (key chosen by `kid`, else every key that fits the
//! algorithm), along with issuer, audience (the approvers'), expiry (60 s skew), presence
//! of `sub`, `iat` and `exp`, and `exp - iat` ≤ `identity.max_token_lifetime`, as the gateway
//! does. Groups come from the issuer's provider's `groups_claim`, else `identity.groups_claim`
//! (dotted path; a list of strings or one string).
//! Supported algorithms: ES256, ES384, RS256/384/512, PS256/384/512, EdDSA (Ed25519).
//!
//! JWKS: a `file` (relative to the policy file) is read at start-up (an unreadable file stops the
//! service), an `https://` `uri` is fetched at start-up (a failure is logged and retried on use).
//! Keys are re-read when a token names an unknown `kid` (at most every 30 s) and, for URIs, every
//! 10 minutes, so key rotation needs no restart.
//!
//! **CSRF.** Page forms carry `<issued-at>.<hex HMAC-SHA-256(key, issued-at | subject)>`, valid
//! for 12 hours for that approver; the key is derived from the service's signing key, so open
//! pages survive a restart.
//!
//! No token is ever logged or put in an error message.

use jwt_simple::prelude::*;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration as StdDuration, Instant};
use warden::core::policy::{Jwks, Policy};

use super::util::log_event;
use warden::core::hex::hex;

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
const SKEW_SECONDS: u64 = 60;
/// Minimum time between two JWKS reloads caused by unknown key ids.
const RELOAD_INTERVAL: StdDuration = StdDuration::from_secs(30);
/// Age after which a fetched JWKS is fetched again.
const URI_REFRESH: StdDuration = StdDuration::from_secs(600);
/// Largest JWKS document read.
const MAX_JWKS_BYTES: u64 = 1 << 20;
/// Longest token accepted (bytes).
const MAX_TOKEN_BYTES: usize = 16 * 1024;
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

/// A public key from a JWKS.
#[derive(Clone)]
enum KeyMaterial {
    P256(ES256PublicKey),
    P384(ES384PublicKey),
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ed25519(Ed25519PublicKey),
}

#[derive(Clone)]
struct Jwk {
    kid: Option<String>,
    key: KeyMaterial,
}

/// Where a provider's keys come from.
#[derive(Debug, Clone)]
enum KeySource {
    File(PathBuf),
    Uri(String),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Uri(uri) => f.write_str(uri),
        }
    }
}

struct KeyCache {
    keys: Vec<Jwk>,
    loaded_at: Option<Instant>,
}

struct ProviderKeys {
    name: String,
    issuer: String,
    audiences: HashSet<String>,
    source: KeySource,
    cache: RwLock<KeyCache>,
    /// Path of the groups claim in this provider's tokens.
    groups_claim: Vec<String>,
}

/// Verifies approvers' OIDC tokens with the policy's providers.
#[derive(Clone)]
pub struct OidcVerifier {
    providers: Arc<Vec<ProviderKeys>>,
    groups_claim: Vec<String>,
    max_token_lifetime: u64,
}

impl OidcVerifier {
    /// The verifier for `policy`, whose file is at `policy_path` (JWKS files are relative to it).
    /// Reads JWKS files and fetches JWKS URIs now (blocking).
    pub fn from_policy(policy: &Policy, policy_path: &Path) -> Result<Self, String> {
        let base = policy_path.parent().unwrap_or(Path::new("."));
        let approver_audience = policy
            .approvals
            .as_ref()
            .map(|a| a.approver_audience.clone())
            .ok_or("the policy has no `approvals` section: approvers' tokens have no audience")?;
        let mut providers = Vec::new();
        for provider in &policy.identity.providers {
            let source = match &provider.jwks {
                Jwks::File(file) => KeySource::File(base.join(file)),
                Jwks::Uri(uri) => KeySource::Uri(uri.clone()),
            };
            let keys = match load_keys(&source) {
                Ok(keys) => KeyCache { keys, loaded_at: Some(Instant::now()) },
                Err(e) => match source {
                    KeySource::File(_) => return Err(format!("identity provider {}: {e}", provider.name)),
                    KeySource::Uri(_) => {
                        log_event(&format!("identity provider {}: {e}; retrying when a token needs it", provider.name));
                        KeyCache { keys: Vec::new(), loaded_at: None }
                    }
                },
            };
            providers.push(ProviderKeys {
                name: provider.name.clone(),
                issuer: provider.issuer.clone(),
                audiences: HashSet::from([approver_audience.clone()]),
                source,
                cache: RwLock::new(keys),
                groups_claim: provider.groups_claim.clone(),
            });
        }
        if providers.is_empty() {
            return Err("the policy lists no `identity.providers`: approvers' tokens cannot be verified".to_string());
        }
        Ok(Self {
            providers: Arc::new(providers),
            groups_claim: policy.identity.groups_claim.clone(),
            max_token_lifetime: policy.identity.max_token_lifetime,
        })
    }

    /// Verifies `token` and returns the approver it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Approver, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid("the token is too long".to_string()));
        }
        let metadata = Token::decode_metadata(token).map_err(|_| invalid("not a JWT"))?;
        let issuer = unverified_issuer(token).ok_or_else(|| invalid("the token has no issuer (iss)"))?;
        let candidates: Vec<usize> =
            self.providers.iter().enumerate().filter(|(_, p)| p.issuer == issuer).map(|(i, _)| i).collect();
        if candidates.is_empty() {
            return Err(invalid("the token's issuer is not one of the policy's identity providers"));
        }
        let mut last_error = invalid("no key of the issuer verifies the token");
        for index in candidates {
            let Some(provider) = self.providers.get(index) else { continue };
            let kid = metadata.key_id().map(str::to_string);
            if needs_reload(provider, kid.as_deref()) {
                reload(Arc::clone(&self.providers), index).await;
            }
            match self.verify_with(provider, token, metadata.algorithm(), kid.as_deref()) {
                Ok(approver) => return Ok(approver),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn verify_with(
        &self,
        provider: &ProviderKeys,
        token: &str,
        algorithm: &str,
        kid: Option<&str>,
    ) -> Result<Approver, AuthError> {
        let keys: Vec<Jwk> = provider
            .cache
            .read()
            .map_err(|_| invalid("key cache unavailable"))?
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
            .cloned()
            .collect();
        if keys.is_empty() {
            return Err(invalid("no key of the issuer matches the token's key id"));
        }
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from([provider.issuer.clone()])),
            allowed_audiences: Some(provider.audiences.clone()),
            time_tolerance: Some(Duration::from_secs(SKEW_SECONDS)),
            max_token_length: Some(MAX_TOKEN_BYTES),
            ..VerificationOptions::default()
        };
        let mut last_error = invalid("the token's algorithm is not supported");
        for key in &keys {
            match verify_claims(&key.key, algorithm, token, &options) {
                Some(Ok(claims)) => return self.approver(claims),
                Some(Err(e)) => last_error = e,
                None => {}
            }
        }
        Err(last_error)
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
            .providers
            .iter()
            .find(|p| claims.issuer.as_deref() == Some(p.issuer.as_str()))
            .map_or(&self.groups_claim, |p| &p.groups_claim);
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
        self.providers.iter().map(|p| format!("{} ({})", p.name, p.source)).collect()
    }
}

fn invalid(why: &str) -> AuthError {
    AuthError::Invalid(why.to_string())
}

/// Checks `token` with `key` when the key fits `algorithm` (`None` when it does not).
fn verify_claims(
    key: &KeyMaterial,
    algorithm: &str,
    token: &str,
    options: &VerificationOptions,
) -> Option<Result<JWTClaims<Map<String, Value>>, AuthError>> {
    let options = Some(options.clone());
    let result = match (key, algorithm) {
        (KeyMaterial::P256(key), "ES256") => key.verify_token(token, options),
        (KeyMaterial::P384(key), "ES384") => key.verify_token(token, options),
        (KeyMaterial::Ed25519(key), "EdDSA") => key.verify_token(token, options),
        (KeyMaterial::Rsa { n, e }, alg) => match alg {
            "RS256" => RS256PublicKey::from_components(n, e).and_then(|k| k.verify_token(token, options)),
            "RS384" => RS384PublicKey::from_components(n, e).and_then(|k| k.verify_token(token, options)),
            "RS512" => RS512PublicKey::from_components(n, e).and_then(|k| k.verify_token(token, options)),
            "PS256" => PS256PublicKey::from_components(n, e).and_then(|k| k.verify_token(token, options)),
            "PS384" => PS384PublicKey::from_components(n, e).and_then(|k| k.verify_token(token, options)),
            "PS512" => PS512PublicKey::from_components(n, e).and_then(|k| k.verify_token(token, options)),
            _ => return None,
        },
        _ => return None,
    };
    Some(result.map_err(|e| invalid(&describe_jwt_error(&e))))
}

/// A short reason for a verification failure (jwt-simple's messages name no secret, but are
/// mapped to a fixed vocabulary anyway).
fn describe_jwt_error(error: &jwt_simple::Error) -> String {
    use jwt_simple::JWTError as E;
    match error.downcast_ref::<E>() {
        Some(E::TokenHasExpired) => "the token has expired".into(),
        Some(E::ClockDrift) | Some(E::TokenNotValidYet) => "the token is not valid yet".into(),
        Some(E::RequiredIssuerMismatch) | Some(E::RequiredIssuerMissing) => "wrong issuer".into(),
        Some(E::RequiredAudienceMismatch) | Some(E::RequiredAudienceMissing) => {
            "the token's audience is not accepted".into()
        }
        Some(E::InvalidSignature) => "the signature does not verify".into(),
        _ => "the token does not verify".into(),
    }
}

/// `iss` of a token without verifying it (only to pick the provider).
fn unverified_issuer(token: &str) -> Option<String> {
    use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    let payload = token.split('.').nth(1)?;
    let bytes = Base64UrlSafeNoPadding::decode_to_vec(payload, None).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

/// The groups at `path` in the custom claims: a list of strings (others ignored) or one string.
fn groups_at(custom: &Map<String, Value>, path: &[String]) -> Vec<String> {
    let mut segments = path.iter();
    let Some(first) = segments.next() else { return Vec::new() };
    let mut value = custom.get(first);
    for segment in segments {
        value = value.and_then(|v| v.get(segment));
    }
    match value {
        Some(Value::String(group)) => vec![group.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn needs_reload(provider: &ProviderKeys, kid: Option<&str>) -> bool {
    let Ok(cache) = provider.cache.read() else { return false };
    let Some(loaded_at) = cache.loaded_at else { return true };
    let age = loaded_at.elapsed();
    let unknown_kid = kid.is_some_and(|kid| !cache.keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
    (unknown_kid && age >= RELOAD_INTERVAL) || (matches!(provider.source, KeySource::Uri(_)) && age >= URI_REFRESH)
}

/// Re-reads a provider's keys off the async threads; a failure keeps the old keys and is logged.
async fn reload(providers: Arc<Vec<ProviderKeys>>, index: usize) {
    let result = tokio::task::spawn_blocking(move || {
        let Some(provider) = providers.get(index) else { return };
        let loaded = load_keys(&provider.source);
        let Ok(mut cache) = provider.cache.write() else { return };
        cache.loaded_at = Some(Instant::now());
        match loaded {
            Ok(keys) => cache.keys = keys,
            Err(e) => log_event(&format!("identity provider {}: {e}; keeping the previous keys", provider.name)),
        }
    })
    .await;
    if result.is_err() {
        log_event("reloading identity provider keys failed unexpectedly");
    }
}

fn load_keys(source: &KeySource) -> Result<Vec<Jwk>, String> {
    let text = match source {
        KeySource::File(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read JWKS {}: {e}", path.display()))?
        }
        KeySource::Uri(uri) => fetch(uri)?,
    };
    parse_jwks(&text).map_err(|e| format!("JWKS {source}: {e}"))
}

fn fetch(uri: &str) -> Result<String, String> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(StdDuration::from_secs(10))).build().into();
    let mut response = agent
        .get(uri)
        .call()
        .map_err(|e| format!("fetching JWKS {uri}: {}", super::webhook::describe_http_error(&e)))?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_JWKS_BYTES)
        .read_to_string()
        .map_err(|e| format!("reading JWKS {uri}: {}", super::webhook::describe_http_error(&e)))
}

/// The signature keys of a JWKS document (keys with `use` other than `sig`, and unknown key
/// types, are skipped).
fn parse_jwks(text: &str) -> Result<Vec<Jwk>, String> {
    use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    let document: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let entries = document.get("keys").and_then(Value::as_array).ok_or("no `keys` list")?;
    let b64 = |key: &Value, field: &str| {
        key.get(field)
            .and_then(Value::as_str)
            .and_then(|s| Base64UrlSafeNoPadding::decode_to_vec(s, None).ok())
            .ok_or_else(|| format!("a key lacks a valid `{field}`"))
    };
    let mut keys = Vec::new();
    for key in entries {
        if key.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            continue;
        }
        let kid = key.get("kid").and_then(Value::as_str).map(str::to_string);
        let material = match (key.get("kty").and_then(Value::as_str), key.get("crv").and_then(Value::as_str)) {
            (Some("EC"), Some(curve @ ("P-256" | "P-384"))) => {
                let mut point = vec![0x04];
                point.extend(b64(key, "x")?);
                point.extend(b64(key, "y")?);
                let bad = |_| format!("an invalid {curve} key");
                if curve == "P-256" {
                    KeyMaterial::P256(ES256PublicKey::from_bytes(&point).map_err(bad)?)
                } else {
                    KeyMaterial::P384(ES384PublicKey::from_bytes(&point).map_err(bad)?)
                }
            }
            (Some("RSA"), _) => KeyMaterial::Rsa { n: b64(key, "n")?, e: b64(key, "e")? },
            (Some("OKP"), Some("Ed25519")) => KeyMaterial::Ed25519(
                Ed25519PublicKey::from_bytes(&b64(key, "x")?).map_err(|_| "an invalid Ed25519 key".to_string())?,
            ),
            _ => continue,
        };
        keys.push(Jwk { kid, key: material });
    }
    Ok(keys)
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

    /// A demo issuer: an ES256 key and its JWKS text.
    pub(crate) struct TestIssuer {
        pub key: ES256KeyPair,
        pub jwks: String,
    }

    impl TestIssuer {
        pub(crate) fn new(kid: &str) -> Self {
            use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
            let key = ES256KeyPair::generate().with_key_id(kid);
            let point = key.public_key().public_key().to_bytes_uncompressed();
            let b64 = |b: &[u8]| Base64UrlSafeNoPadding::encode_to_string(b).unwrap();
            let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
                "kid": kid, "x": b64(&point[1..33]), "y": b64(&point[33..65])}]})
            .to_string();
            Self { key, jwks }
        }

        pub(crate) fn token(&self, sub: &str, groups: &[&str], issuer: &str, audience: &str, ttl: u64) -> String {
            let custom = serde_json::json!({ "groups": groups });
            let custom: Map<String, Value> = serde_json::from_value(custom).unwrap();
            let claims = Claims::with_custom_claims(custom, Duration::from_secs(ttl))
                .with_subject(sub)
                .with_issuer(issuer)
                .with_audience(audience);
            self.key.sign(claims).unwrap()
        }
    }

    pub(crate) fn verifier_with(issuer: &TestIssuer, dir: &Path) -> OidcVerifier {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("jwks.json"), &issuer.jwks).unwrap();
        let policy = Policy::parse(super::super::rules::tests::POLICY).unwrap();
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
    fn groups_are_read_at_a_dotted_path_as_a_list_or_one_string() {
        let claims: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"realm": {"roles": ["a", 1, "b"]}, "team": "x"})).unwrap();
        assert_eq!(groups_at(&claims, &["realm".into(), "roles".into()]), ["a", "b"]);
        assert_eq!(groups_at(&claims, &["team".into()]), ["x"]);
        assert!(groups_at(&claims, &["nope".into()]).is_empty());
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

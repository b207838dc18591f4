//! Verifying JWTs from trusted issuers: the one verifier `warden serve` uses, for approvers'
//! tokens ([`super::auth::OidcVerifier`]) and for the tokens the token service exchanges
//! (organisation OIDC tokens, GitHub Actions and Kubernetes workload tokens).
//!
//! **Sources.** A [`JwtVerifier`] is built from a list of [`TrustedIssuer`]s: a name, the
//! expected `iss`, the accepted `aud` values, where the keys are (a JWKS file or URI) and an
//! algorithm allowlist. A token is matched to the source(s) whose `issuer` equals its
//! (unverified) `iss`; each is tried in order and the first that verifies wins, so the caller
//! learns which source vouched for the token ([`Verified::source`]).
//!
//! **Checks**, in order: at most 16 KiB; a compact JWS; an `iss` naming a source; the header's
//! `alg` in the source's allowlist (never `none` nor any `HS*`: a symmetric algorithm would let
//! anyone holding the public key forge tokens); a key of the source's JWKS chosen by `kid` (a key
//! without `kid` fits any), whose type fits the algorithm (an RSA key never verifies ES256, a
//! key whose JWK `alg` names another algorithm is skipped); the signature; `iss`; `aud`
//! (one of the source's); `exp` present and not past, `nbf` and `iat` not in the future, each
//! with 60 s of skew. Callers add their own claim checks on the [`Verified`] claims.
//!
//! **Keys.** A JWKS `file` is read when the verifier is built (an unreadable file is an error
//! then); a `uri` is fetched then too (a failure is logged, and retried when a token needs it).
//! A token naming an unknown `kid` (or any token while the source has no key) makes the source's
//! JWKS be read again — at most once per reload interval (30 s) per source, however many tokens
//! ask, so key rotation needs no restart and a flood of made-up key ids costs one fetch per
//! interval. URIs are also re-fetched when older than 10 minutes. A failed reload keeps the
//! previous keys. Fetching blocks: [`JwtVerifier::verify_at`] runs on a blocking thread
//! ([`JwtVerifier::verify`] moves it there).
//!
//! Supported algorithms: ES256, ES384, RS256/384/512, PS256/384/512, EdDSA (Ed25519).
//! Limits: JWKS documents up to 1 MiB; `crit` headers and encrypted tokens (JWE) are not
//! supported (refused: they do not parse as a JWS of a supported algorithm). Errors name the
//! check that failed and never contain the token.

use jwt_simple::prelude::*;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration as StdDuration, Instant};

use super::util::log_event;

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
const SKEW_SECONDS: u64 = 60;
/// Default minimum time between two JWKS reloads of one source.
pub const RELOAD_INTERVAL: StdDuration = StdDuration::from_secs(30);
/// Age after which a fetched JWKS is fetched again.
const URI_REFRESH: StdDuration = StdDuration::from_secs(600);
/// Largest JWKS document read.
const MAX_JWKS_BYTES: u64 = 1 << 20;
/// Longest token accepted (bytes).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Time allowed for one JWKS fetch.
const FETCH_TIMEOUT: StdDuration = StdDuration::from_secs(10);

pub use crate::core::policy::token_service::SUPPORTED_ALGORITHMS;

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS file (already resolved against the policy's directory).
    File(PathBuf),
    /// A JWKS URL (`https://`, or `http://` on a loopback host; the policy checked it).
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

/// An issuer whose tokens are trusted.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// Name, for logs and errors.
    pub name: String,
    /// Expected `iss`.
    pub issuer: String,
    /// Accepted `aud` values (a token must carry at least one).
    pub audiences: Vec<String>,
    /// Where the signing keys are.
    pub keys: KeySource,
    /// Accepted `alg` values; entries outside [`SUPPORTED_ALGORITHMS`] never verify anything.
    pub algorithms: Vec<String>,
}

/// A verified token.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Index of the [`TrustedIssuer`] that vouched for it (in the list the verifier was built from).
    pub source: usize,
    /// The verified claims; registered ones parsed, the rest in `custom`.
    pub claims: JWTClaims<Map<String, Value>>,
}

/// Why a token was not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// No token was presented.
    Missing,
    /// The token was refused; the text says which check failed (never containing the token).
    Invalid(String),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no token was presented"),
            Self::Invalid(why) => f.write_str(why),
        }
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
    /// The JWK's `alg`, when it names one: the key is then used only for that algorithm.
    alg: Option<String>,
    key: KeyMaterial,
}

struct KeyCache {
    keys: Vec<Jwk>,
    /// When the JWKS was last read (successfully or not); `None`: never tried.
    read_at: Option<Instant>,
}

struct SourceKeys {
    trusted: TrustedIssuer,
    audiences: HashSet<String>,
    cache: RwLock<KeyCache>,
    /// Serialises reload decisions so concurrent tokens trigger one read.
    reloading: Mutex<()>,
}

/// Verifies JWTs from a fixed list of trusted issuers (see the module comment). Cheap to clone.
#[derive(Clone)]
pub struct JwtVerifier {
    sources: Arc<Vec<SourceKeys>>,
    reload_interval: StdDuration,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier").field("sources", &self.describe()).finish()
    }
}

impl JwtVerifier {
    /// A verifier for `sources`; reads JWKS files and fetches JWKS URIs now (blocking). An
    /// unreadable or invalid JWKS file is an error naming the source; a failed fetch is logged.
    pub fn new(sources: Vec<TrustedIssuer>) -> Result<Self, String> {
        let mut loaded = Vec::with_capacity(sources.len());
        for trusted in sources {
            let cache = match load_keys(&trusted.keys) {
                Ok(keys) => KeyCache { keys, read_at: Some(Instant::now()) },
                Err(e) => match trusted.keys {
                    KeySource::File(_) => return Err(format!("{}: {e}", trusted.name)),
                    KeySource::Uri(_) => {
                        log_event(&format!("{}: {e}; retrying when a token needs it", trusted.name));
                        KeyCache { keys: Vec::new(), read_at: None }
                    }
                },
            };
            loaded.push(SourceKeys {
                audiences: trusted.audiences.iter().cloned().collect(),
                trusted,
                cache: RwLock::new(cache),
                reloading: Mutex::new(()),
            });
        }
        Ok(Self { sources: Arc::new(loaded), reload_interval: RELOAD_INTERVAL })
    }

    /// The same verifier with another minimum time between reloads (tests rotate keys without
    /// waiting).
    #[cfg(test)]
    pub fn with_reload_interval(mut self, interval: StdDuration) -> Self {
        self.reload_interval = interval;
        self
    }

    /// Names and key sources of the trusted issuers (for the start-up log line).
    pub fn describe(&self) -> Vec<String> {
        self.sources.iter().map(|s| format!("{} ({})", s.trusted.name, s.trusted.keys)).collect()
    }

    /// Whether the verifier trusts no issuer at all.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// [`JwtVerifier::verify_at`] now, on a blocking thread.
    pub async fn verify(&self, token: &str) -> Result<Verified, VerifyError> {
        let verifier = self.clone();
        let token = token.to_string();
        tokio::task::spawn_blocking(move || verifier.verify_at(&token, unix_now()))
            .await
            .unwrap_or_else(|_| Err(invalid("the token could not be checked (internal error)")))
    }

    /// Verifies `token` at `now` (seconds since the epoch). May read a JWKS: blocking.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Verified, VerifyError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(VerifyError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("the token is too long (at most 16 KiB)"));
        }
        let metadata = Token::decode_metadata(token).map_err(|_| invalid("not a JWT"))?;
        let algorithm = metadata.algorithm();
        let kid = metadata.key_id();
        let issuer = unverified_issuer(token).ok_or_else(|| invalid("the token has no issuer (iss)"))?;
        let mut last_error = None;
        for (index, source) in self.sources.iter().enumerate() {
            if source.trusted.issuer != issuer {
                continue;
            }
            match self.verify_with(source, token, algorithm, kid, now) {
                Ok(claims) => return Ok(Verified { source: index, claims }),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| invalid("the token's issuer is not trusted here")))
    }

    fn verify_with(
        &self,
        source: &SourceKeys,
        token: &str,
        algorithm: &str,
        kid: Option<&str>,
        now: u64,
    ) -> Result<JWTClaims<Map<String, Value>>, VerifyError> {
        if is_symmetric_or_none(algorithm) {
            return Err(invalid(&format!("the token's algorithm {algorithm:?} is never accepted")));
        }
        if !source.trusted.algorithms.iter().any(|a| a == algorithm) {
            return Err(invalid(&format!(
                "the token's algorithm {algorithm:?} is not allowed for {}",
                source.trusted.name
            )));
        }
        self.reload_if_due(source, kid);
        let keys: Vec<Jwk> = source
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
            allowed_issuers: Some(HashSet::from([source.trusted.issuer.clone()])),
            allowed_audiences: Some(source.audiences.clone()),
            time_tolerance: Some(Duration::from_secs(SKEW_SECONDS)),
            max_token_length: Some(MAX_TOKEN_BYTES),
            artificial_time: Some(Duration::from_secs(now)),
            ..VerificationOptions::default()
        };
        let mut last_error = invalid("no key of the issuer fits the token's algorithm");
        for key in keys.iter().filter(|k| k.alg.as_deref().is_none_or(|alg| alg == algorithm)) {
            match verify_claims(&key.key, algorithm, token, &options) {
                Some(Ok(claims)) if claims.expires_at.is_none() => {
                    return Err(invalid("the token has no expiry (exp)"));
                }
                Some(Ok(claims)) => return Ok(claims),
                Some(Err(e)) => last_error = e,
                None => {}
            }
        }
        Err(last_error)
    }

    /// Reads the source's JWKS again when it is due ([`JwtVerifier::reload_due`]). One caller
    /// reads; concurrent callers wait for it, then find the reload no longer due.
    fn reload_if_due(&self, source: &SourceKeys, kid: Option<&str>) {
        if !self.reload_due(source, kid) {
            return;
        }
        let Ok(_guard) = source.reloading.lock() else { return };
        if !self.reload_due(source, kid) {
            return;
        }
        let loaded = load_keys(&source.trusted.keys);
        let Ok(mut cache) = source.cache.write() else { return };
        cache.read_at = Some(Instant::now());
        match loaded {
            Ok(keys) => cache.keys = keys,
            Err(e) => log_event(&format!("{}: {e}; keeping the previous keys", source.trusted.name)),
        }
    }

    /// Whether the keys should be read again: never read; or the token names an unknown key id
    /// (or there is no key) and the last read is older than the reload interval; or a URI's
    /// keys are older than 10 minutes.
    fn reload_due(&self, source: &SourceKeys, kid: Option<&str>) -> bool {
        let Ok(cache) = source.cache.read() else { return false };
        let Some(read_at) = cache.read_at else { return true };
        let age = read_at.elapsed();
        let unknown_kid = kid.is_some_and(|kid| !cache.keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
        ((unknown_kid || cache.keys.is_empty()) && age >= self.reload_interval)
            || (matches!(source.trusted.keys, KeySource::Uri(_)) && age >= URI_REFRESH)
    }
}

fn invalid(why: &str) -> VerifyError {
    VerifyError::Invalid(why.to_string())
}

fn unix_now() -> u64 {
    u64::try_from(super::util::unix_now()).unwrap_or(0)
}

/// `none`, and the HMAC family, whose "public" key would be a shared secret.
fn is_symmetric_or_none(algorithm: &str) -> bool {
    algorithm.eq_ignore_ascii_case("none") || algorithm.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS"))
}

/// Checks `token` with `key` when the key fits `algorithm` (`None` when it does not).
fn verify_claims(
    key: &KeyMaterial,
    algorithm: &str,
    token: &str,
    options: &VerificationOptions,
) -> Option<Result<JWTClaims<Map<String, Value>>, VerifyError>> {
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
        Some(E::ClockDrift) => "the token is not valid yet (issued in the future)".into(),
        Some(E::TokenNotValidYet) => "the token is not valid yet (nbf)".into(),
        Some(E::RequiredIssuerMismatch) | Some(E::RequiredIssuerMissing) => "wrong issuer".into(),
        Some(E::RequiredAudienceMismatch) | Some(E::RequiredAudienceMissing) => {
            "the token's audience is not accepted".into()
        }
        Some(E::InvalidSignature) => "the signature does not verify".into(),
        _ => "the token does not verify".into(),
    }
}

/// `iss` of a token without verifying it (only to pick the source).
fn unverified_issuer(token: &str) -> Option<String> {
    use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    let payload = token.split('.').nth(1)?;
    let bytes = Base64UrlSafeNoPadding::decode_to_vec(payload, None).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

/// The value at a dotted `path` of the custom claims.
pub fn claim_at<'a>(custom: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let mut segments = path.iter();
    let mut value = custom.get(segments.next()?)?;
    for segment in segments {
        value = value.get(segment)?;
    }
    Some(value)
}

/// The groups at `path` in the custom claims: a list of strings (others ignored) or one string.
pub fn groups_at(custom: &Map<String, Value>, path: &[String]) -> Vec<String> {
    match claim_at(custom, path) {
        Some(Value::String(group)) => vec![group.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
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
        ureq::Agent::config_builder().timeout_global(Some(FETCH_TIMEOUT)).max_redirects(0).build().into();
    let mut response = agent
        .get(uri)
        .call()
        .map_err(|e| format!("fetching JWKS {uri}: {}", super::approvals::webhook::describe_http_error(&e)))?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_JWKS_BYTES)
        .read_to_string()
        .map_err(|e| format!("reading JWKS {uri}: {}", super::approvals::webhook::describe_http_error(&e)))
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
        let alg = key.get("alg").and_then(Value::as_str).map(str::to_string);
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
        keys.push(Jwk { kid, alg, key: material });
    }
    Ok(keys)
}

/// Test issuers: ES256 and RSA keys, their JWKS, signed tokens, and a JWKS served over HTTP.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use ct_codecs::{Base64UrlSafeNoPadding, Encoder};

    /// An RSA test key (never used outside tests).
    pub(crate) const RSA_KEY_PEM: &str = include_str!("../../tests/fixtures/jwt/test-rsa-key.pem");

    pub(crate) fn b64(bytes: &[u8]) -> String {
        Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
    }

    /// The JWK of an ES256 key.
    pub(crate) fn es256_jwk(key: &ES256KeyPair, kid: &str) -> Value {
        let point = key.public_key().public_key().to_bytes_uncompressed();
        serde_json::json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }

    /// The JWK of the RSA test key (no `alg`, as many providers publish it).
    pub(crate) fn rsa_jwk(kid: &str) -> Value {
        let parts = RS256KeyPair::from_pem(RSA_KEY_PEM).unwrap().public_key().to_components();
        serde_json::json!({"kty": "RSA", "use": "sig", "kid": kid, "n": b64(&parts.n), "e": b64(&parts.e)})
    }

    /// A JWKS document of `keys`.
    pub(crate) fn jwks(keys: &[Value]) -> String {
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// Claims `iss`, `aud`, `sub` (when not empty), `iat` = now, `exp` = now + `ttl`, plus `custom`.
    pub(crate) fn claims(
        issuer: &str,
        audience: &str,
        sub: &str,
        ttl: u64,
        custom: Value,
    ) -> JWTClaims<Map<String, Value>> {
        let custom: Map<String, Value> = serde_json::from_value(custom).unwrap();
        let claims =
            Claims::with_custom_claims(custom, Duration::from_secs(ttl)).with_issuer(issuer).with_audience(audience);
        if sub.is_empty() {
            claims
        } else {
            claims.with_subject(sub)
        }
    }

    /// A token with a hand-written header and payload, and `signature` (base64url'd) appended.
    pub(crate) fn raw_token(header: Value, payload: Value, signature: &[u8]) -> String {
        format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()), b64(signature))
    }

    /// A JWKS served at `http://127.0.0.1:<port>/jwks.json`; `set` changes what it serves.
    pub(crate) struct JwksServer {
        pub uri: String,
        document: Arc<Mutex<String>>,
        pub fetches: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl JwksServer {
        pub(crate) fn start(document: String) -> Self {
            use std::io::{Read, Write};
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let uri = format!("http://{}/jwks.json", listener.local_addr().unwrap());
            let document = Arc::new(Mutex::new(document));
            let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let (served, counted) = (Arc::clone(&document), Arc::clone(&fetches));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request);
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let body = served.lock().unwrap().clone();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
            Self { uri, document, fetches }
        }

        pub(crate) fn set(&self, document: String) {
            *self.document.lock().unwrap() = document;
        }

        pub(crate) fn fetch_count(&self) -> usize {
            self.fetches.load(std::sync::atomic::Ordering::SeqCst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    const ISS: &str = "https://idp.example.com";
    const AUD: &str = "warden-exchange";

    fn now() -> u64 {
        unix_now()
    }

    fn trusted(keys: KeySource, algorithms: &[&str]) -> TrustedIssuer {
        TrustedIssuer {
            name: "test idp".into(),
            issuer: ISS.into(),
            audiences: vec![AUD.into()],
            keys,
            algorithms: algorithms.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn file_verifier(name: &str, document: &str, algorithms: &[&str]) -> JwtVerifier {
        let path = std::env::temp_dir().join(format!("warden-jwt-{name}-{}.json", std::process::id()));
        std::fs::write(&path, document).unwrap();
        JwtVerifier::new(vec![trusted(KeySource::File(path), algorithms)]).unwrap()
    }

    fn refusal(verifier: &JwtVerifier, token: &str) -> String {
        match verifier.verify_at(token, now()) {
            Err(VerifyError::Invalid(why)) => {
                assert!(!why.contains(token), "the error never repeats the token");
                why
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn es256_and_rs256_tokens_of_a_trusted_issuer_verify() {
        let es = ES256KeyPair::generate().with_key_id("ec1");
        let rsa = RS256KeyPair::from_pem(RSA_KEY_PEM).unwrap().with_key_id("rsa1");
        let verifier = file_verifier("ok", &jwks(&[es256_jwk(&es, "ec1"), rsa_jwk("rsa1")]), &["RS256", "ES256"]);
        for token in [
            es.sign(claims(ISS, AUD, "alice", 600, serde_json::json!({"groups": ["eng"]}))).unwrap(),
            rsa.sign(claims(ISS, AUD, "alice", 600, serde_json::json!({"groups": ["eng"]}))).unwrap(),
        ] {
            let verified = verifier.verify_at(&token, now()).unwrap();
            assert_eq!(verified.source, 0);
            assert_eq!(verified.claims.subject.as_deref(), Some("alice"));
            assert_eq!(verified.claims.custom["groups"], serde_json::json!(["eng"]));
        }
    }

    #[test]
    fn alg_none_and_hs256_signed_with_the_public_key_are_refused() {
        let rsa = RS256KeyPair::from_pem(RSA_KEY_PEM).unwrap();
        let document = jwks(&[rsa_jwk("rsa1")]);
        // Even an allowlist that names them cannot enable them.
        let verifier = file_verifier("alg", &document, &["RS256", "HS256", "none"]);
        let payload = serde_json::json!({"iss": ISS, "aud": AUD, "sub": "mallory", "iat": now(), "exp": now() + 600});
        let none = raw_token(serde_json::json!({"alg": "none", "typ": "JWT"}), payload.clone(), b"");
        assert!(refusal(&verifier, &none).contains("never accepted"));
        // The classic confusion attack: HMAC keyed with the public key (as PEM and as the JWKS text).
        for secret in [rsa.public_key().to_pem().unwrap().into_bytes(), document.into_bytes()] {
            let key = HS256Key::from_bytes(&secret).with_key_id("rsa1");
            let token = key.authenticate(claims(ISS, AUD, "mallory", 600, serde_json::json!({}))).unwrap();
            assert!(refusal(&verifier, &token).contains("never accepted"));
        }
    }

    #[test]
    fn an_algorithm_outside_the_allowlist_or_unfit_for_the_key_is_refused() {
        let es = ES256KeyPair::generate().with_key_id("ec1");
        let rsa = RS256KeyPair::from_pem(RSA_KEY_PEM).unwrap().with_key_id("rsa1");
        let only_rsa = file_verifier("allow", &jwks(&[es256_jwk(&es, "ec1"), rsa_jwk("rsa1")]), &["RS256"]);
        let token = es.sign(claims(ISS, AUD, "alice", 600, serde_json::json!({}))).unwrap();
        assert!(refusal(&only_rsa, &token).contains("not allowed"));
        // An RS256 token naming the EC key's id: the key type does not fit the algorithm.
        let rsa_as_ec = RS256KeyPair::from_pem(RSA_KEY_PEM).unwrap().with_key_id("ec1");
        let token = rsa_as_ec.sign(claims(ISS, AUD, "alice", 600, serde_json::json!({}))).unwrap();
        assert!(refusal(&only_rsa, &token).contains("fits"));
        // A PS256 token with the RSA key whose JWK says RS256 only.
        let mut jwk = rsa_jwk("rsa1");
        jwk["alg"] = "RS256".into();
        let pinned = file_verifier("pinned", &jwks(&[jwk]), &["RS256", "PS256"]);
        let ps = PS256KeyPair::from_pem(RSA_KEY_PEM).unwrap().with_key_id("rsa1");
        let token = ps.sign(claims(ISS, AUD, "alice", 600, serde_json::json!({}))).unwrap();
        assert!(refusal(&pinned, &token).contains("fits"));
        let token = rsa.sign(claims(ISS, AUD, "alice", 600, serde_json::json!({}))).unwrap();
        assert!(pinned.verify_at(&token, now()).is_ok());
    }

    #[test]
    fn wrong_issuer_audience_times_and_sizes_are_refused() {
        let es = ES256KeyPair::generate().with_key_id("ec1");
        let verifier = file_verifier("claims", &jwks(&[es256_jwk(&es, "ec1")]), &["ES256"]);
        let sign = |claims: JWTClaims<Map<String, Value>>| es.sign(claims).unwrap();
        let empty = || serde_json::json!({});
        assert!(
            refusal(&verifier, &sign(claims("https://evil.example", AUD, "a", 600, empty()))).contains("not trusted")
        );
        assert!(refusal(&verifier, &sign(claims(ISS, "someone-else", "a", 600, empty()))).contains("audience"));
        let mut expired = claims(ISS, AUD, "a", 600, empty());
        expired.issued_at = Some(Duration::from_secs(now() - 7200));
        expired.expires_at = Some(Duration::from_secs(now() - 3600));
        assert!(refusal(&verifier, &sign(expired)).contains("expired"));
        let mut not_yet = claims(ISS, AUD, "a", 600, empty());
        not_yet.invalid_before = Some(Duration::from_secs(now() + 600));
        assert!(refusal(&verifier, &sign(not_yet)).contains("not valid yet (nbf)"));
        let mut future = claims(ISS, AUD, "a", 600, empty());
        future.issued_at = Some(Duration::from_secs(now() + 600));
        future.expires_at = Some(Duration::from_secs(now() + 1200));
        assert!(refusal(&verifier, &sign(future)).contains("issued in the future"));
        let mut forever = claims(ISS, AUD, "a", 600, empty());
        forever.expires_at = None;
        assert!(refusal(&verifier, &sign(forever)).contains("no expiry"));
        // Within the 60 s skew: accepted.
        let mut skewed = claims(ISS, AUD, "a", 600, empty());
        skewed.expires_at = Some(Duration::from_secs(now() - 30));
        assert!(verifier.verify_at(&sign(skewed), now()).is_ok());
        let huge = sign(claims(ISS, AUD, "a", 600, serde_json::json!({"pad": "x".repeat(MAX_TOKEN_BYTES)})));
        assert!(refusal(&verifier, &huge).contains("too long"));
        assert!(refusal(&verifier, "not.a.jwt").contains("JWT"));
        assert_eq!(verifier.verify_at("  ", now()).unwrap_err(), VerifyError::Missing);
        let other = ES256KeyPair::generate().with_key_id("ec1");
        let forged = other.sign(claims(ISS, AUD, "a", 600, empty())).unwrap();
        assert!(refusal(&verifier, &forged).contains("signature"));
    }

    #[test]
    fn a_rotated_key_is_fetched_once_per_interval_and_then_verifies() {
        let old = ES256KeyPair::generate().with_key_id("old");
        let new = ES256KeyPair::generate().with_key_id("new");
        let server = JwksServer::start(jwks(&[es256_jwk(&old, "old")]));
        let verifier = JwtVerifier::new(vec![trusted(KeySource::Uri(server.uri.clone()), &["ES256"])]).unwrap();
        assert_eq!(server.fetch_count(), 1, "fetched when built");
        let old_token = old.sign(claims(ISS, AUD, "a", 600, serde_json::json!({}))).unwrap();
        let new_token = new.sign(claims(ISS, AUD, "a", 600, serde_json::json!({}))).unwrap();
        assert!(verifier.verify_at(&old_token, now()).is_ok());
        server.set(jwks(&[es256_jwk(&old, "old"), es256_jwk(&new, "new")]));
        // Within the reload interval an unknown key id is refused without a fetch: a flood of
        // made-up key ids costs nothing.
        for _ in 0..5 {
            assert!(refusal(&verifier, &new_token).contains("key id"));
        }
        assert_eq!(server.fetch_count(), 1);
        let verifier = verifier.with_reload_interval(StdDuration::ZERO);
        assert!(verifier.verify_at(&new_token, now()).is_ok(), "the rotated key is fetched");
        assert_eq!(server.fetch_count(), 2);
        assert!(verifier.verify_at(&old_token, now()).is_ok(), "a known key id causes no fetch");
        assert_eq!(server.fetch_count(), 2);
        let stranger = ES256KeyPair::generate().with_key_id("stranger");
        let token = stranger.sign(claims(ISS, AUD, "a", 600, serde_json::json!({}))).unwrap();
        assert!(refusal(&verifier, &token).contains("key id"), "still unknown after one reload");
        assert_eq!(server.fetch_count(), 3);
    }

    #[test]
    fn a_failed_reload_keeps_the_previous_keys() {
        let es = ES256KeyPair::generate().with_key_id("k");
        let server = JwksServer::start(jwks(&[es256_jwk(&es, "k")]));
        let verifier = JwtVerifier::new(vec![trusted(KeySource::Uri(server.uri.clone()), &["ES256"])])
            .unwrap()
            .with_reload_interval(StdDuration::ZERO);
        server.set("not json".to_string());
        let unknown = ES256KeyPair::generate().with_key_id("other");
        let _ = verifier.verify_at(&unknown.sign(claims(ISS, AUD, "a", 600, serde_json::json!({}))).unwrap(), now());
        let token = es.sign(claims(ISS, AUD, "a", 600, serde_json::json!({}))).unwrap();
        assert!(verifier.verify_at(&token, now()).is_ok());
    }

    #[test]
    fn groups_are_read_at_a_dotted_path_as_a_list_or_one_string() {
        let claims: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"realm": {"roles": ["a", 1, "b"]}, "team": "x"})).unwrap();
        assert_eq!(groups_at(&claims, &["realm".into(), "roles".into()]), ["a", "b"]);
        assert_eq!(groups_at(&claims, &["team".into()]), ["x"]);
        assert!(groups_at(&claims, &["nope".into()]).is_empty());
    }
}

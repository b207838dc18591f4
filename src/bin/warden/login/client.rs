//! The OAuth 2.0 client side of `warden login` / `warden token`: discovery, the token endpoint's
//! grants and the device authorization request, against `warden serve`'s token service.
//!
//! - Discovery: `GET <service>/.well-known/openid-configuration` gives `issuer`,
//!   `token_endpoint`, `authorization_endpoint`, `device_authorization_endpoint` and, when
//!   offered, `revocation_endpoint`. A document without the browser or device endpoint gets
//!   `warden serve`'s own paths under the service URL (`/oauth/authorize`,
//!   `/oauth/device_authorization`). Every endpoint must be `https://`,
//!   or `http://` on a loopback host (the rule the policy applies to JWKS URIs): a refresh token
//!   never crosses a network in the clear.
//! - Grants (RFC 6749 §4.1.3 with RFC 7636's `code_verifier`, §6 refresh, RFC 8628 §3.4 device
//!   code), all as the public client [`CLIENT_ID`], form-encoded. An answer must carry a
//!   printable `access_token` and `token_type` Bearer; its expiry is `now + expires_in` (at most a
//!   day), lowered to the token's own `exp` claim when the token is a JWT that says so (nothing is
//!   trusted from an unverified JWT except that it may expire sooner).
//! - Failures: RFC 6749 §5.2 `{"error","error_description"}` become [`ClientError::Refused`];
//!   anything else the service says is cut to a short single line before it reaches a terminal.
//!
//! Limits: answers over 64 KiB are refused; no redirects are followed; 30 s per call.

use serde::Deserialize;
use std::fmt;
use std::time::Duration;

use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
use warden::core::policy::is_trusted_jwks_uri;

/// The public client id `warden login` uses.
pub const CLIENT_ID: &str = "warden-cli";
/// RFC 8628's grant type for the device flow.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Longest answer read from the service.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
/// Longest token accepted (access or refresh).
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Longest lifetime believed from `expires_in` (a day): a service's typo cannot pin a token.
const MAX_EXPIRES_IN: u64 = 24 * 60 * 60;
/// Longest message from the service shown to the user.
const MAX_MESSAGE_CHARS: usize = 300;

/// Why a call to the service failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The service could not be reached (connection, timeout, TLS).
    Unreachable {
        /// The URL called.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// The service answered with an OAuth error.
    Refused {
        /// The RFC 6749 / RFC 8628 error code.
        error: String,
        /// Its description, shortened to one printable line.
        description: Option<String>,
    },
    /// The service answered something that is not a valid answer.
    BadAnswer {
        /// The URL called.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// An endpoint is neither `https://` nor `http://` on a loopback host.
    Untrusted {
        /// Which endpoint (`service`, `token_endpoint`, …).
        name: &'static str,
        /// Its URL.
        url: String,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { url, why } => write!(f, "cannot reach {url}: {why}"),
            Self::Refused { error, description: Some(description) } => write!(f, "{error}: {description}"),
            Self::Refused { error, description: None } => f.write_str(error),
            Self::BadAnswer { url, why } => write!(f, "unexpected answer from {url}: {why}"),
            Self::Untrusted { name, url } => write!(
                f,
                "{name} {url:?} must be https://, or http:// on 127.0.0.1, localhost or [::1] (tokens never \
                 travel in the clear)"
            ),
        }
    }
}

impl std::error::Error for ClientError {}

/// The service's endpoints, from discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The token service's issuer identifier.
    pub issuer: String,
    /// Where the browser signs in.
    pub authorization_endpoint: String,
    /// Where codes, refresh tokens and device codes are redeemed.
    pub token_endpoint: String,
    /// Where the device flow starts.
    pub device_authorization_endpoint: String,
    /// Where a refresh token can be revoked (RFC 7009).
    pub revocation_endpoint: Option<String>,
}

/// A successful token answer. Its `Debug` never shows the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenAnswer {
    /// The Warden access token.
    pub access_token: String,
    /// The (rotated) refresh token, if the service issued one.
    pub refresh_token: Option<String>,
    /// When the access token expires, Unix seconds.
    pub expires_at: u64,
    /// The token's `sub`, for messages (unverified).
    pub subject: Option<String>,
}

impl fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("expires_at", &self.expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// The answer of the device authorization endpoint (RFC 8628 §3.2).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    /// The device code (a secret; only sent back when polling).
    pub device_code: String,
    /// The code the user types.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same with the code filled in, when offered.
    pub verification_uri_complete: Option<String>,
    /// How long the codes are valid, seconds (at most an hour).
    pub expires_in: u64,
    /// Seconds between polls (1–60, default 5).
    pub interval: u64,
}

impl fmt::Debug for DeviceGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceGrant").field("user_code", &self.user_code).finish_non_exhaustive()
    }
}

/// Checks that `url` may carry tokens (module header).
pub fn trusted(name: &'static str, url: &str) -> Result<(), ClientError> {
    if is_trusted_jwks_uri(url) {
        Ok(())
    } else {
        Err(ClientError::Untrusted { name, url: url.to_string() })
    }
}

/// `text` as one short printable line.
pub fn one_line(text: &str) -> String {
    let mut line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_MESSAGE_CHARS).collect();
    if text.chars().count() > MAX_MESSAGE_CHARS {
        line.push('…');
    }
    line
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    token_endpoint: String,
    authorization_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
}

/// Parses and checks the discovery document of `service` fetched from `url`.
pub fn parse_discovery(service: &str, url: &str, body: &str) -> Result<Endpoints, ClientError> {
    let bad = |why: String| ClientError::BadAnswer { url: url.to_string(), why };
    let doc: DiscoveryDocument = serde_json::from_str(body)
        .map_err(|e| bad(format!("not an OpenID configuration ({})", one_line(&e.to_string()))))?;
    trusted("token_endpoint", &doc.token_endpoint)?;
    for (name, endpoint) in [
        ("authorization_endpoint", &doc.authorization_endpoint),
        ("device_authorization_endpoint", &doc.device_authorization_endpoint),
        ("revocation_endpoint", &doc.revocation_endpoint),
    ] {
        if let Some(endpoint) = endpoint {
            trusted(name, endpoint)?;
        }
    }
    let service = service.trim_end_matches('/');
    Ok(Endpoints {
        issuer: doc.issuer,
        authorization_endpoint: doc.authorization_endpoint.unwrap_or_else(|| format!("{service}/oauth/authorize")),
        token_endpoint: doc.token_endpoint,
        device_authorization_endpoint: doc
            .device_authorization_endpoint
            .unwrap_or_else(|| format!("{service}/oauth/device_authorization")),
        revocation_endpoint: doc.revocation_endpoint,
    })
}

#[derive(Deserialize)]
struct RawTokenAnswer {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct RawError {
    error: String,
    error_description: Option<String>,
}

/// Parses a token endpoint answer (`status`, `body`) received at Unix time `now`.
pub fn parse_token_answer(url: &str, status: u16, body: &str, now: u64) -> Result<TokenAnswer, ClientError> {
    let bad = |why: &str| ClientError::BadAnswer { url: url.to_string(), why: why.to_string() };
    if status != 200 {
        return Err(parse_error(url, status, body));
    }
    let raw: RawTokenAnswer = serde_json::from_str(body).map_err(|_| bad("not a token answer"))?;
    if !raw.token_type.eq_ignore_ascii_case("bearer") {
        return Err(bad("token_type is not Bearer"));
    }
    if !is_printable_token(&raw.access_token) {
        return Err(bad("access_token is empty, too long or not printable"));
    }
    if raw.refresh_token.as_deref().is_some_and(|t| !is_printable_token(t)) {
        return Err(bad("refresh_token is empty, too long or not printable"));
    }
    let claims = jwt_claims(&raw.access_token);
    let from_expires_in = raw.expires_in.map(|seconds| now.saturating_add(seconds.min(MAX_EXPIRES_IN)));
    let expires_at = match (from_expires_in, claims.exp) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Err(bad("no expires_in and no exp claim: the token's lifetime is unknown")),
    };
    Ok(TokenAnswer {
        access_token: raw.access_token,
        refresh_token: raw.refresh_token,
        expires_at,
        subject: claims.sub,
    })
}

/// An OAuth error answer, or a description of whatever else came back.
pub fn parse_error(url: &str, status: u16, body: &str) -> ClientError {
    match serde_json::from_str::<RawError>(body) {
        Ok(raw) if !raw.error.is_empty() => ClientError::Refused {
            error: one_line(&raw.error),
            description: raw.error_description.as_deref().map(one_line).filter(|d| !d.is_empty()),
        },
        _ => ClientError::BadAnswer { url: url.to_string(), why: format!("HTTP {status}") },
    }
}

#[derive(Deserialize)]
struct RawDeviceGrant {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
}

/// Parses a device authorization answer.
pub fn parse_device_grant(url: &str, status: u16, body: &str) -> Result<DeviceGrant, ClientError> {
    let bad = |why: &str| ClientError::BadAnswer { url: url.to_string(), why: why.to_string() };
    if status != 200 {
        return Err(parse_error(url, status, body));
    }
    let raw: RawDeviceGrant = serde_json::from_str(body).map_err(|_| bad("not a device authorization answer"))?;
    let is_web = |u: &str| u.starts_with("https://") || u.starts_with("http://");
    if !is_printable_token(&raw.device_code) || raw.user_code.is_empty() || !is_web(&raw.verification_uri) {
        return Err(bad("device_code, user_code or verification_uri is missing or invalid"));
    }
    Ok(DeviceGrant {
        device_code: raw.device_code,
        user_code: one_line(&raw.user_code),
        verification_uri: one_line(&raw.verification_uri),
        verification_uri_complete: raw.verification_uri_complete.filter(|u| is_web(u)).map(|u| one_line(&u)),
        expires_in: raw.expires_in.min(3600),
        interval: raw.interval.unwrap_or(5).clamp(1, 60),
    })
}

/// Visible ASCII only (no spaces or controls), 1 to 16 KiB: safe in a header and on a terminal.
fn is_printable_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_TOKEN_BYTES && token.bytes().all(|b| b.is_ascii_graphic())
}

/// The claims of an unverified JWT that matter here.
#[derive(Debug, Default, Deserialize)]
struct PeekedClaims {
    exp: Option<u64>,
    sub: Option<String>,
}

/// Reads `exp` and `sub` from a JWT's payload without verifying it; empty for a non-JWT.
fn jwt_claims(token: &str) -> PeekedClaims {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return PeekedClaims::default();
    };
    Base64UrlSafeNoPadding::decode_to_vec(payload, None)
        .ok()
        .and_then(|json| serde_json::from_slice::<PeekedClaims>(&json).ok())
        .map(|claims| PeekedClaims { sub: claims.sub.map(|s| one_line(&s)), ..claims })
        .unwrap_or_default()
}

/// A blocking HTTP client for the token service.
#[derive(Debug)]
pub struct OAuthClient {
    agent: ureq::Agent,
}

impl Default for OAuthClient {
    fn default() -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Self { agent }
    }
}

impl OAuthClient {
    /// Fetches and checks the service's discovery document.
    pub fn discover(&self, service: &str) -> Result<Endpoints, ClientError> {
        trusted("service", service)?;
        let url = format!("{}/.well-known/openid-configuration", service.trim_end_matches('/'));
        let response = self.agent.get(&url).header("accept", "application/json").call();
        let (status, body) = self.read(&url, response)?;
        if status != 200 {
            return Err(ClientError::BadAnswer {
                url,
                why: format!("HTTP {status}: does this service run a token service (`token_service` in its policy)?"),
            });
        }
        parse_discovery(service, &url, &body)
    }

    /// Redeems an authorization code with its PKCE verifier (RFC 6749 §4.1.3, RFC 7636 §4.5).
    pub fn redeem_code(
        &self,
        token_endpoint: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        now: u64,
    ) -> Result<TokenAnswer, ClientError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", CLIENT_ID),
            ("code_verifier", verifier),
        ];
        self.token_call(token_endpoint, &form, now)
    }

    /// Trades a refresh token for a new access token (RFC 6749 §6).
    pub fn refresh(&self, token_endpoint: &str, refresh_token: &str, now: u64) -> Result<TokenAnswer, ClientError> {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", CLIENT_ID)];
        self.token_call(token_endpoint, &form, now)
    }

    /// Polls for a device sign-in (RFC 8628 §3.4); `authorization_pending` and `slow_down` come
    /// back as [`ClientError::Refused`].
    pub fn poll_device(&self, token_endpoint: &str, device_code: &str, now: u64) -> Result<TokenAnswer, ClientError> {
        let form = [("grant_type", DEVICE_CODE_GRANT), ("device_code", device_code), ("client_id", CLIENT_ID)];
        self.token_call(token_endpoint, &form, now)
    }

    /// Starts a device sign-in (RFC 8628 §3.1).
    pub fn start_device(&self, endpoint: &str) -> Result<DeviceGrant, ClientError> {
        let response = self.agent.post(endpoint).send_form([("client_id", CLIENT_ID)]);
        let (status, body) = self.read(endpoint, response)?;
        parse_device_grant(endpoint, status, &body)
    }

    /// Revokes a refresh token (RFC 7009); the service answers 200 even for unknown tokens.
    pub fn revoke(&self, endpoint: &str, refresh_token: &str) -> Result<(), ClientError> {
        let form = [("token", refresh_token), ("token_type_hint", "refresh_token"), ("client_id", CLIENT_ID)];
        let response = self.agent.post(endpoint).send_form(form);
        match self.read(endpoint, response)? {
            (200, _) => Ok(()),
            (status, body) => Err(parse_error(endpoint, status, &body)),
        }
    }

    fn token_call(&self, url: &str, form: &[(&str, &str)], now: u64) -> Result<TokenAnswer, ClientError> {
        let response = self.agent.post(url).send_form(form.iter().copied());
        let (status, body) = self.read(url, response)?;
        parse_token_answer(url, status, &body, now)
    }

    fn read(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, String), ClientError> {
        let unreachable = |e: &ureq::Error| ClientError::Unreachable {
            url: url.to_string(),
            why: warden::service::approvals::webhook::describe_http_error(e),
        };
        let mut response = response.map_err(|e| unreachable(&e))?;
        let status = response.status().as_u16();
        let body = response.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_string().map_err(|e| {
            ClientError::BadAnswer { url: url.to_string(), why: warden::service::approvals::webhook::describe_http_error(&e) }
        })?;
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_codecs::Encoder;

    const URL: &str = "http://127.0.0.1:8787/oauth/token";
    const SERVICE: &str = "http://127.0.0.1:8787";

    fn jwt(payload: &str) -> String {
        format!("eyJhbGciOiJFUzI1NiJ9.{}.c2ln", Base64UrlSafeNoPadding::encode_to_string(payload).unwrap())
    }

    #[test]
    fn a_token_answer_expires_at_the_sooner_of_expires_in_and_the_jwt_exp() {
        let token = jwt(r#"{"sub":"alice","exp":1000500}"#);
        let body =
            format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":600,"refresh_token":"r2"}}"#);
        let answer = parse_token_answer(URL, 200, &body, 1_000_000).unwrap();
        assert_eq!(answer.expires_at, 1_000_500);
        assert_eq!(answer.subject.as_deref(), Some("alice"));
        assert_eq!(answer.refresh_token.as_deref(), Some("r2"));
        let answer = parse_token_answer(URL, 200, &body, 999_000).unwrap();
        assert_eq!(answer.expires_at, 999_600);

        let opaque = r#"{"access_token":"opaque","token_type":"bearer","expires_in":60}"#;
        let answer = parse_token_answer(URL, 200, opaque, 10).unwrap();
        assert_eq!((answer.expires_at, &answer.refresh_token, &answer.subject), (70, &None, &None));
        let huge = r#"{"access_token":"opaque","token_type":"Bearer","expires_in":18446744073709551615}"#;
        assert_eq!(parse_token_answer(URL, 200, huge, 10).unwrap().expires_at, 10 + MAX_EXPIRES_IN);
        assert!(!format!("{answer:?}").contains("opaque"));
    }

    #[test]
    fn malformed_token_answers_are_refused() {
        for body in [
            r#"{"access_token":"t","token_type":"mac","expires_in":60}"#,
            r#"{"access_token":"","token_type":"Bearer","expires_in":60}"#,
            r#"{"access_token":"a b","token_type":"Bearer","expires_in":60}"#,
            "{\"access_token\":\"a\\nb\",\"token_type\":\"Bearer\",\"expires_in\":60}",
            r#"{"access_token":"t","token_type":"Bearer","expires_in":-1}"#,
            r#"{"access_token":"t","token_type":"Bearer","expires_in":1.5}"#,
            r#"{"access_token":"t","token_type":"Bearer"}"#,
            r#"{"access_token":"t","token_type":"Bearer","expires_in":60,"refresh_token":""}"#,
            r#"{"token_type":"Bearer","expires_in":60}"#,
            "not json",
        ] {
            let err = parse_token_answer(URL, 200, body, 0).unwrap_err();
            assert!(matches!(err, ClientError::BadAnswer { .. }), "{body}: {err}");
        }
        let long = format!(r#"{{"access_token":"{}","token_type":"Bearer","expires_in":60}}"#, "a".repeat(20_000));
        assert!(parse_token_answer(URL, 200, &long, 0).is_err());
    }

    #[test]
    fn oauth_errors_are_read_and_shortened_to_one_printable_line() {
        let err =
            parse_token_answer(URL, 400, r#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#, 0);
        assert_eq!(
            err.unwrap_err(),
            ClientError::Refused { error: "invalid_grant".into(), description: Some("refresh token revoked".into()) }
        );
        let hostile = format!(r#"{{"error":"x\u001b[2Jy","error_description":"{}"}}"#, "z".repeat(1000));
        let ClientError::Refused { error, description } = parse_error(URL, 400, &hostile) else { panic!() };
        assert_eq!(error, "x [2Jy");
        assert_eq!(description.unwrap().chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(
            parse_error(URL, 502, "<html>bad gateway</html>").to_string(),
            format!("unexpected answer from {URL}: HTTP 502")
        );
    }

    #[test]
    fn discovery_refuses_endpoints_that_would_send_tokens_in_the_clear() {
        let good = r#"{"issuer":"http://127.0.0.1:8787","token_endpoint":"http://127.0.0.1:8787/oauth/token",
            "authorization_endpoint":"http://127.0.0.1:8787/oauth/authorize",
            "device_authorization_endpoint":"http://127.0.0.1:8787/oauth/device_authorization"}"#;
        let endpoints = parse_discovery(SERVICE, URL, good).unwrap();
        assert_eq!(endpoints.token_endpoint, "http://127.0.0.1:8787/oauth/token");
        assert_eq!(endpoints.revocation_endpoint, None);
        let minimal = r#"{"issuer":"http://127.0.0.1:8787","token_endpoint":"http://127.0.0.1:8787/oauth/token"}"#;
        let endpoints = parse_discovery("http://127.0.0.1:9000/", URL, minimal).unwrap();
        assert_eq!(endpoints.authorization_endpoint, "http://127.0.0.1:9000/oauth/authorize");
        assert_eq!(endpoints.device_authorization_endpoint, "http://127.0.0.1:9000/oauth/device_authorization");
        for bad in [
            good.replace("http://127.0.0.1:8787/oauth/token", "http://warden.example/oauth/token"),
            good.replace("http://127.0.0.1:8787/oauth/device_authorization", "ftp://127.0.0.1/x"),
            good.replace("http://127.0.0.1:8787/oauth/authorize", "http://127.0.0.1.evil.example/"),
        ] {
            assert!(matches!(parse_discovery(SERVICE, URL, &bad), Err(ClientError::Untrusted { .. })), "{bad}");
        }
        assert!(matches!(parse_discovery(SERVICE, URL, "{}"), Err(ClientError::BadAnswer { .. })));
        assert!(trusted("service", "https://warden.example").is_ok());
        assert!(trusted("service", "http://warden.example").is_err());
    }

    #[test]
    fn device_grants_are_bounded() {
        let body = r#"{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"http://127.0.0.1:8787/device",
            "expires_in":99999,"interval":0}"#;
        let grant = parse_device_grant(URL, 200, body).unwrap();
        assert_eq!((grant.expires_in, grant.interval), (3600, 1));
        let grant = parse_device_grant(URL, 200, &body.replace(r#","interval":0"#, "")).unwrap();
        assert_eq!(grant.interval, 5);
        assert!(!format!("{grant:?}").contains("\"dc\""));
        let js = body.replace("http://127.0.0.1:8787/device", "javascript:alert(1)");
        assert!(parse_device_grant(URL, 200, &js).is_err());
        let refused = parse_device_grant(URL, 400, r#"{"error":"invalid_client"}"#).unwrap_err();
        assert_eq!(refused, ClientError::Refused { error: "invalid_client".into(), description: None });
    }
}

//! The service as an OIDC client of the organisation's identity provider (OpenID Connect Core
//! §3.1, authorization code flow with PKCE): where to send the browser, and how to redeem the
//! provider's code for an ID token.
//!
//! Endpoints come from `token_service.oidc[].client` (`authorization_endpoint`,
//! `token_endpoint`) or, when absent, from the issuer's discovery document
//! (`<issuer>/.well-known/openid-configuration`), fetched on first use and kept for
//! [`DISCOVERY_REFRESH`]. Endpoints must be `https://`, or `http://` on a loopback host (a test
//! provider on the same machine), like JWKS URIs.
//!
//! The authorization request carries `response_type=code`, the client id, the scopes, the
//! service's `/oauth/callback` as `redirect_uri`, `state` (the login id), a fresh `nonce` and an
//! S256 PKCE challenge. The code is redeemed with `grant_type=authorization_code`, the PKCE
//! verifier and, for a confidential client, the secret from `client.client_secret`'s environment
//! variable sent as HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1, both parts
//! form-encoded). The answer's `id_token` is what the caller verifies
//! (`TokenService::verify_source_token`) and whose `nonce` it compares.
//!
//! Limits: blocking HTTP (call from a blocking task), 10 s per call, answers up to 1 MiB; a
//! provider's error text is not shown (only its `error` code), since it is not ours to trust.

use super::sign_in::{pkce_challenge, query_escape, UpstreamRequest};
use ct_codecs::{Base64, Base64UrlSafeNoPadding, Decoder, Encoder};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use crate::core::policy::is_trusted_jwks_uri;
use crate::core::policy::token_service::OidcSignInConfig;

/// How long a fetched discovery document is used.
const DISCOVERY_REFRESH: Duration = Duration::from_secs(3600);
/// Largest answer read from a provider.
const MAX_ANSWER_BYTES: u64 = 1 << 20;
/// Time allowed for one call to a provider.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A provider's two endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Where the browser is sent.
    pub authorization: String,
    /// Where codes are redeemed.
    pub token: String,
}

/// OIDC client calls, with the discovered endpoints cached per provider.
pub struct OidcClient {
    agent: ureq::Agent,
    discovered: Mutex<HashMap<String, (Endpoints, Instant)>>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OidcClient")
    }
}

impl Default for OidcClient {
    fn default() -> Self {
        let agent =
            ureq::Agent::config_builder().timeout_global(Some(CALL_TIMEOUT)).http_status_as_error(false).build();
        Self { agent: agent.into(), discovered: Mutex::new(HashMap::new()) }
    }
}

fn trusted(endpoint: &str, what: &str) -> Result<String, String> {
    if is_trusted_jwks_uri(endpoint) {
        Ok(endpoint.to_string())
    } else {
        Err(format!("the provider's {what} must be https:// (or http:// on this machine)"))
    }
}

impl OidcClient {
    /// The endpoints of `provider` (blocking: may fetch its discovery document).
    pub fn endpoints(&self, provider: &OidcSignInConfig) -> Result<Endpoints, String> {
        let client = provider.client.as_ref().ok_or("this provider has no `client`: it cannot sign people in")?;
        if let (Some(authorization), Some(token)) = (&client.authorization_endpoint, &client.token_endpoint) {
            return Ok(Endpoints {
                authorization: trusted(authorization, "authorization_endpoint")?,
                token: trusted(token, "token_endpoint")?,
            });
        }
        let cached = self.discovered.lock().ok().and_then(|cache| cache.get(&provider.name).cloned());
        let discovered = match cached {
            Some((endpoints, at)) if at.elapsed() < DISCOVERY_REFRESH => endpoints,
            _ => {
                let endpoints = self.discover(&provider.issuer)?;
                if let Ok(mut cache) = self.discovered.lock() {
                    cache.insert(provider.name.clone(), (endpoints.clone(), Instant::now()));
                }
                endpoints
            }
        };
        Ok(Endpoints {
            authorization: trusted(
                client.authorization_endpoint.as_ref().unwrap_or(&discovered.authorization),
                "authorization_endpoint",
            )?,
            token: trusted(client.token_endpoint.as_ref().unwrap_or(&discovered.token), "token_endpoint")?,
        })
    }

    fn discover(&self, issuer: &str) -> Result<Endpoints, String> {
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        trusted(&url, "issuer")?;
        let document = self.read_json(self.agent.get(&url).call(), "discovery document")?;
        let field = |name: &str| {
            document
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("the provider's discovery document has no {name}"))
        };
        Ok(Endpoints { authorization: field("authorization_endpoint")?, token: field("token_endpoint")? })
    }

    fn read_json(
        &self,
        answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        what: &str,
    ) -> Result<Value, String> {
        let mut answer =
            answer.map_err(|e| format!("the provider's {what}: {}", crate::service::approvals::webhook::describe_http_error(&e)))?;
        let status = answer.status().as_u16();
        let text = answer
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| format!("the provider's {what}: {}", crate::service::approvals::webhook::describe_http_error(&e)))?;
        let document: Value = serde_json::from_str(&text).map_err(|_| format!("the provider's {what} is not JSON"))?;
        if status != 200 {
            let code = document.get("error").and_then(Value::as_str).unwrap_or("no error code");
            let code: String = code.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
            return Err(format!("the provider's {what} answered HTTP {status} ({code})"));
        }
        Ok(document)
    }

    /// Redeems the provider's `code` (blocking): the ID token.
    pub fn redeem(
        &self,
        provider: &OidcSignInConfig,
        token_endpoint: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<String, String> {
        let client = provider.client.as_ref().ok_or("this provider has no `client`")?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client.client_id.as_str()),
            ("code_verifier", verifier),
        ];
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", query_escape(v))).collect();
        let mut request = self
            .agent
            .post(token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json");
        if let Some(secret) = &client.client_secret {
            let value = std::env::var(&secret.env)
                .map_err(|_| format!("the client secret's environment variable {} is not set", secret.env))?;
            let pair = format!("{}:{}", query_escape(&client.client_id), query_escape(&value));
            let encoded = Base64::encode_to_string(pair.as_bytes()).map_err(|e| e.to_string())?;
            request = request.header("authorization", &format!("Basic {encoded}"));
        }
        let document = self.read_json(request.send(body.join("&").as_str()), "token endpoint")?;
        document
            .get("id_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| "the provider's token endpoint answered no id_token".to_string())
    }
}

/// The authorization request's URL for `provider` at `endpoint`, with `state` = the login id.
pub fn authorization_url(
    provider: &OidcSignInConfig,
    endpoint: &str,
    redirect_uri: &str,
    login_id: &str,
    request: &UpstreamRequest,
) -> Result<String, String> {
    let client = provider.client.as_ref().ok_or("this provider has no `client`")?;
    let scopes = client.scopes.join(" ");
    let challenge = pkce_challenge(&request.verifier);
    let query = [
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", redirect_uri),
        ("scope", scopes.as_str()),
        ("state", login_id),
        ("nonce", request.nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", query_escape(v))).collect();
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    Ok(format!("{endpoint}{separator}{}", query.join("&")))
}

/// The `nonce` claim of a JWT's payload, read without verifying it: call this only on a token
/// whose signature was already checked.
pub fn nonce_of(verified_token: &str) -> Option<String> {
    let payload = verified_token.split('.').nth(1)?;
    let bytes = Base64UrlSafeNoPadding::decode_to_vec(payload, None).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("nonce").and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(yaml: &str) -> OidcSignInConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    const OKTA: &str = "name: okta
issuer: https://example.okta.com
audiences: [warden-console]
jwks: {uri: https://example.okta.com/keys}
client:
  client_id: warden console
  authorization_endpoint: https://example.okta.com/authorize?tenant=1
  token_endpoint: https://example.okta.com/token
  scopes: [openid, email]";

    #[test]
    fn the_authorization_url_carries_state_nonce_and_an_s256_challenge() {
        let okta = provider(OKTA);
        let request = UpstreamRequest { source: "okta".into(), nonce: "n0nce".into(), verifier: "v".repeat(43) };
        let url = authorization_url(
            &okta,
            "https://example.okta.com/authorize?tenant=1",
            "https://warden.test/oauth/callback",
            "login1",
            &request,
        )
        .unwrap();
        assert_eq!(
            url,
            format!(
                "https://example.okta.com/authorize?tenant=1&response_type=code&client_id=warden%20console\
                 &redirect_uri=https%3A%2F%2Fwarden.test%2Foauth%2Fcallback&scope=openid%20email&state=login1\
                 &nonce=n0nce&code_challenge={}&code_challenge_method=S256",
                pkce_challenge(&"v".repeat(43))
            )
        );
    }

    #[test]
    fn configured_endpoints_are_used_without_discovery_and_must_be_trusted() {
        let okta = provider(OKTA);
        let endpoints = OidcClient::default().endpoints(&okta).unwrap();
        assert_eq!(endpoints.token, "https://example.okta.com/token");
        let plain = provider(&OKTA.replace("https://example.okta.com/token", "http://example.okta.com/token"));
        assert!(OidcClient::default().endpoints(&plain).unwrap_err().contains("token_endpoint"));
        let no_client = provider("name: x\nissuer: https://x\naudiences: [a]\njwks: {uri: https://x/k}");
        assert!(OidcClient::default().endpoints(&no_client).unwrap_err().contains("no `client`"));
    }

    #[test]
    fn the_nonce_is_read_from_the_payload() {
        let payload = Base64UrlSafeNoPadding::encode_to_string(br#"{"sub":"a","nonce":"abc"}"#).unwrap();
        assert_eq!(nonce_of(&format!("h.{payload}.s")).as_deref(), Some("abc"));
        assert_eq!(nonce_of("not a jwt"), None);
    }
}

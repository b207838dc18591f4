//! Signing in at the token service as the `warden` CLI does it, against the real `warden serve`
//! binary and a fake organisation provider in this test (its token endpoint answers an ID token
//! signed with the workspace's demo key): `/oauth/authorize` → the source picker →
//! `/oauth/start` (the provider's authorization request) → `/oauth/callback` → the loopback
//! redirect with a one-time code → `/oauth/token`, refresh rotation, the device flow's answers,
//! and the refusals: non-loopback redirects, missing PKCE, a wrong nonce, a refused provider
//! answer, codes used twice. The browser-and-Envoy version is tests/e2e/test_sign_in.py.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use jwt_simple::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

mod common;

use common::{demo_policy, form, Serve, Workspace};

const CLI: &str = "warden-cli";
const LOOPBACK: &str = "http://127.0.0.1:53682/callback";
/// RFC 7636's example verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The fake provider's token endpoint: answers every POST with the ID token set last, and
/// keeps the bodies it received.
struct FakeProvider {
    port: u16,
    id_token: Arc<Mutex<String>>,
    received: Arc<Mutex<Vec<String>>>,
}

impl FakeProvider {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let id_token = Arc::new(Mutex::new(String::new()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (answer, log) = (Arc::clone(&id_token), Arc::clone(&received));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                log.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                let document =
                    json!({"access_token": "at", "token_type": "Bearer", "id_token": *answer.lock().unwrap()});
                let text = document.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Self { port, id_token, received }
    }
}

fn policy(provider_port: u16) -> String {
    demo_policy(&format!(
        r#"token_service:
  issuer: "https://warden.test"
  session_lifetime: 1h
  oidc:
    - name: corp
      issuer: warden-demo
      audiences: [warden-service]
      jwks: {{ file: jwks.json }}
      algorithms: [ES256]
      client:
        client_id: warden-service
        authorization_endpoint: "http://127.0.0.1:{provider_port}/authorize"
        token_endpoint: "http://127.0.0.1:{provider_port}/token"
"#
    ))
}

struct Fixture {
    ws: Workspace,
    provider: FakeProvider,
    server: Serve,
}

fn fixture(name: &str) -> Fixture {
    let provider = FakeProvider::start();
    let ws = Workspace::new("sign-in", name, &policy(provider.port));
    let key = ws.path("tokens-signing-key.pem");
    let server = Serve::start_with(&ws, &["--token-signing-key", key.to_str().unwrap()]);
    Fixture { ws, provider, server }
}

/// One request, redirects not followed: `(status, Location, body)`.
fn go(method: &str, url: &str, params: &[(&str, &str)]) -> (u16, Option<String>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let result = match method {
        "GET" => agent.get(url).call(),
        _ => agent.post(url).header("content-type", "application/x-www-form-urlencoded").send(form(params)),
    };
    let mut response = result.unwrap();
    let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_string());
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (response.status().as_u16(), location, body)
}

/// The query parameters of `url`, percent-decoded.
fn query(url: &str) -> HashMap<String, String> {
    let decode = |text: &str| {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    url.split_once('?')
        .map(|(_, q)| q.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect())
        .unwrap_or_default()
}

fn token_endpoint(f: &Fixture, params: &[(&str, &str)]) -> (u16, Value) {
    let (status, _, body) = go("POST", &format!("{}/oauth/token", f.server.base), params);
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

/// The (unverified) claims of a JWT.
fn payload(token: &str) -> Value {
    use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&Base64UrlSafeNoPadding::decode_to_vec(part, None).unwrap()).unwrap()
}

/// An ID token of the fake provider (the workspace's demo key) for `sub` with `nonce`.
fn id_token(ws: &Workspace, sub: &str, nonce: &str) -> String {
    let jwks: Value = serde_json::from_str(&std::fs::read_to_string(ws.path("jwks.json")).unwrap()).unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap();
    let key =
        ES256KeyPair::from_pem(&std::fs::read_to_string(ws.path("signing-key.pem")).unwrap()).unwrap().with_key_id(kid);
    let claims = Claims::with_custom_claims(json!({"groups": ["eng"]}), Duration::from_mins(5))
        .with_issuer("warden-demo")
        .with_subject(sub)
        .with_audience("warden-service")
        .with_nonce(nonce);
    key.sign(claims).unwrap()
}

/// `/oauth/authorize` through the picker to the provider: the login id and the provider's
/// authorization request.
fn to_provider(f: &Fixture, state: &str) -> (String, HashMap<String, String>) {
    let params = [
        ("response_type", "code"),
        ("client_id", CLI),
        ("redirect_uri", LOOPBACK),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", state),
    ];
    let (status, location, _) = go("GET", &format!("{}/oauth/authorize?{}", f.server.base, form(&params)), &[]);
    assert_eq!(status, 303);
    let picker = location.unwrap();
    let login = query(&picker)["login"].clone();
    let (status, _, page) = go("GET", &format!("{}{picker}", f.server.base), &[]);
    assert_eq!(status, 200);
    let start = format!("/oauth/start?login={login}&amp;source=corp");
    assert!(page.contains(&format!(r#"id="source-corp" href="{start}""#)), "{page}");
    let (status, location, _) = go("GET", &format!("{}/oauth/start?login={login}&source=corp", f.server.base), &[]);
    assert_eq!(status, 303);
    let authorize = location.unwrap();
    assert!(authorize.starts_with(&format!("http://127.0.0.1:{}/authorize?", f.provider.port)), "{authorize}");
    (login, query(&authorize))
}

/// The provider's answer to the callback: `(status, Location, body)`.
fn callback(f: &Fixture, login: &str, sub: &str, nonce: &str) -> (u16, Option<String>, String) {
    *f.provider.id_token.lock().unwrap() = id_token(&f.ws, sub, nonce);
    go("GET", &format!("{}/oauth/callback?code=provider-code&state={login}", f.server.base), &[])
}

#[test]
fn the_cli_signs_in_with_code_and_pkce_and_refreshes_by_rotation() {
    let f = fixture("flow");
    let (login, sent) = to_provider(&f, "st&te");
    assert_eq!(sent["state"], login);
    assert_eq!((sent["client_id"].as_str(), sent["code_challenge_method"].as_str()), ("warden-service", "S256"));
    assert_eq!(sent["redirect_uri"], "https://warden.test/oauth/callback");
    let (status, location, _) = callback(&f, &login, "carol", &sent["nonce"]);
    assert_eq!(status, 303);
    let back = location.unwrap();
    assert!(back.starts_with(&format!("{LOOPBACK}?code=")), "{back}");
    let back = query(&back);
    assert_eq!(back["state"], "st&te");
    let redeemed = f.provider.received.lock().unwrap().last().cloned().unwrap();
    assert!(redeemed.contains("grant_type=authorization_code") && redeemed.contains("code=provider-code"));
    assert!(redeemed.contains("code_verifier="), "the service redeems with its own PKCE verifier: {redeemed}");

    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", back["code"].as_str()),
        ("code_verifier", VERIFIER),
        ("redirect_uri", LOOPBACK),
        ("client_id", CLI),
    ];
    let (status, tokens) = token_endpoint(&f, &redeem);
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["expires_in"], 600);
    let access = tokens["access_token"].as_str().unwrap();
    let claims = payload(access);
    assert_eq!((claims["sub"].as_str(), claims["iss"].as_str()), (Some("carol"), Some("https://warden.test")));
    assert_eq!(claims["warden_src"], "corp");
    let (status, again) = token_endpoint(&f, &redeem);
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")), "a code works once");

    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let refresh = |token: &str| {
        token_endpoint(&f, &[("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", CLI)])
    };
    let (status, rotated) = refresh(&first);
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    let (status, reused) = refresh(&first);
    assert_eq!((status, reused["error"].as_str()), (400, Some("invalid_grant")));
    let (status, revoked) = refresh(&second);
    assert_eq!((status, revoked["error"].as_str()), (400, Some("invalid_grant")), "reuse revoked the sign-in");
    assert!(!f.server.log().contains(&first), "refresh tokens are never logged");
}

#[test]
fn a_wrong_nonce_or_a_refusing_provider_sends_the_cli_back_with_access_denied() {
    let f = fixture("refusals");
    let (login, _) = to_provider(&f, "s1");
    let (status, location, _) = callback(&f, &login, "carol", "another-nonce");
    assert_eq!(status, 303);
    let back = query(&location.unwrap());
    assert_eq!((back["error"].as_str(), back["state"].as_str()), ("access_denied", "s1"));
    assert!(back["error_description"].contains("nonce"), "{back:?}");
    let (status, _, page) = callback(&f, &login, "carol", "x");
    assert_eq!(status, 400, "a sign-in ends once: {page}");

    let (login, _) = to_provider(&f, "s2");
    let url = format!("{}/oauth/callback?error=access_denied&state={login}", f.server.base);
    let (status, location, _) = go("GET", &url, &[]);
    assert_eq!(status, 303);
    assert_eq!(query(&location.unwrap())["error"], "access_denied");
}

#[test]
fn only_loopback_redirects_and_s256_pkce_are_accepted() {
    let f = fixture("authorize");
    let authorize = |redirect: &str, extra: &[(&str, &str)]| {
        let mut params =
            vec![("response_type", "code"), ("client_id", CLI), ("redirect_uri", redirect), ("state", "s")];
        params.extend_from_slice(extra);
        go("GET", &format!("{}/oauth/authorize?{}", f.server.base, form(&params)), &[])
    };
    let pkce = [("code_challenge", CHALLENGE), ("code_challenge_method", "S256")];
    for redirect in [
        "http://127.0.0.1.evil.com/cb",
        "http://localhost@evil.com/cb",
        "https://127.0.0.1:1/cb",
        "http://evil.com:80/cb",
    ] {
        let (status, location, page) = authorize(redirect, &pkce);
        assert_eq!((status, location), (400, None), "{redirect}");
        assert!(page.contains(r#"id="error""#));
    }
    let (status, location, _) =
        authorize(LOOPBACK, &[("code_challenge", CHALLENGE), ("code_challenge_method", "plain")]);
    assert_eq!(status, 303);
    assert_eq!(query(&location.unwrap())["error"], "invalid_request");
    let (_, location, _) = authorize(LOOPBACK, &[]);
    assert_eq!(query(&location.unwrap())["error"], "invalid_request", "PKCE is required");
    let params = form(&[("response_type", "code"), ("client_id", "other"), ("redirect_uri", LOOPBACK)]);
    let (status, location, _) = go("GET", &format!("{}/oauth/authorize?{params}", f.server.base), &[]);
    assert_eq!((status, location), (400, None), "an unknown client is never redirected to");
}

#[test]
fn the_device_flow_answers_pending_then_slow_down_and_refuses_other_clients() {
    let f = fixture("device");
    let url = format!("{}/oauth/device_authorization", f.server.base);
    let (status, _, body) = go("POST", &url, &[("client_id", CLI)]);
    assert_eq!(status, 200, "{body}");
    let device: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(device["verification_uri"], "https://warden.test/device");
    assert_eq!((device["expires_in"].as_i64(), device["interval"].as_i64()), (Some(600), Some(5)));
    let user_code = device["user_code"].as_str().unwrap();
    assert_eq!(device["verification_uri_complete"], format!("https://warden.test/device?user_code={user_code}"));
    let poll =
        [("grant_type", DEVICE_GRANT), ("device_code", device["device_code"].as_str().unwrap()), ("client_id", CLI)];
    let (status, answer) = token_endpoint(&f, &poll);
    assert_eq!((status, answer["error"].as_str()), (400, Some("authorization_pending")));
    let (_, answer) = token_endpoint(&f, &poll);
    assert_eq!(answer["error"], "slow_down", "polled sooner than the interval");
    let (status, _, body) = go("POST", &url, &[("client_id", "someone-else")]);
    assert_eq!(status, 401, "{body}");
    let (status, answer) =
        token_endpoint(&f, &[("grant_type", DEVICE_GRANT), ("device_code", "made-up"), ("client_id", CLI)]);
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _, page) = go("GET", &format!("{}/device?user_code={user_code}", f.server.base), &[]);
    assert_eq!(status, 200);
    assert!(page.contains(&format!(r#"value="{user_code}""#)), "the code is filled in");
    let (status, _, _) = go("POST", &format!("{}/device", f.server.base), &[("user_code", user_code), ("csrf", "x")]);
    assert_eq!(status, 403, "the form works only from the page (its cookie)");
}

#[test]
fn without_approvals_the_console_sign_in_is_not_offered() {
    let f = fixture("no-console");
    let (status, _, _) = go("GET", &format!("{}/login/finish?ticket=x&again=1", f.server.base), &[]);
    assert_eq!(status, 404);
    let (status, _, discovery) = go("GET", &format!("{}/.well-known/openid-configuration", f.server.base), &[]);
    assert_eq!(status, 200);
    let discovery: Value = serde_json::from_str(&discovery).unwrap();
    assert_eq!(discovery["authorization_endpoint"], "https://warden.test/oauth/authorize");
    assert_eq!(discovery["device_authorization_endpoint"], "https://warden.test/oauth/device_authorization");
    assert_eq!(discovery["code_challenge_methods_supported"], json!(["S256"]));
}

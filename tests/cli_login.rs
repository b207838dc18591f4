//! `warden login`, `warden token` and `warden logout` as a user runs them, against a small fake
//! token service written here (discovery, authorization with PKCE, refresh-token rotation, the
//! device flow, revocation): the browser sign-in driven over HTTP, refresh only when needed, the
//! rotated refresh token stored, a refused refresh telling how to sign in again, parallel
//! `warden token` calls refreshing once, unsafe credential files refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use serde_json::json;

const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

/// What the fake token service remembers.
#[derive(Default)]
struct FakeState {
    base: String,
    /// `expires_in` of the next access tokens.
    lifetime: u64,
    /// Pending authorization: code → (challenge, redirect_uri).
    codes: HashMap<String, (String, String)>,
    /// The one refresh token that is valid now (rotated on every use).
    refresh_token: Option<String>,
    /// Refresh tokens presented, valid or not.
    refreshes: Vec<String>,
    /// Access tokens issued.
    issued: u64,
    /// Device polls still to answer `authorization_pending`.
    device_pending: u32,
    /// Refresh tokens revoked through the revocation endpoint.
    revoked: Vec<String>,
    /// Every request's path, in order.
    requests: Vec<String>,
    /// Send the browser back with another issuer's `iss` (RFC 9207 mix-up).
    wrong_iss: bool,
}

struct Fake {
    state: Arc<Mutex<FakeState>>,
    base: String,
}

impl Fake {
    fn start() -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", std_listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(FakeState { base: base.clone(), lifetime: 600, ..FakeState::default() }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/oauth/authorize", get(authorize))
            .route("/oauth/token", post(token))
            .route("/oauth/device_authorization", post(device_authorization))
            .route("/oauth/revoke", post(revoke))
            .with_state(state.clone());
        std_listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { state, base }
    }

    fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

fn log(state: &Arc<Mutex<FakeState>>, path: &str) {
    state.lock().unwrap().requests.push(path.to_string());
}

async fn discovery(State(state): State<Arc<Mutex<FakeState>>>) -> Response {
    log(&state, "discovery");
    let base = state.lock().unwrap().base.clone();
    json_answer(
        StatusCode::OK,
        json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/oauth/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "device_authorization_endpoint": format!("{base}/oauth/device_authorization"),
            "revocation_endpoint": format!("{base}/oauth/revoke"),
        }),
    )
}

async fn authorize(State(state): State<Arc<Mutex<FakeState>>>, Query(q): Query<HashMap<String, String>>) -> Response {
    log(&state, "authorize");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "warden-cli");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["redirect_uri"].starts_with("http://127.0.0.1:") && q["redirect_uri"].ends_with("/callback"));
    let mut s = state.lock().unwrap();
    let code = format!("code-{}", s.codes.len());
    s.codes.insert(code.clone(), (q["code_challenge"].clone(), q["redirect_uri"].clone()));
    let iss = if s.wrong_iss { "http://127.0.0.1:1".to_string() } else { s.base.clone() };
    let location = format!("{}?code={code}&state={}&iss={}", q["redirect_uri"], q["state"], urlencode(&iss));
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn urlencode(text: &str) -> String {
    text.replace(':', "%3A").replace('/', "%2F")
}

fn json_answer(status: StatusCode, value: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    json_answer(StatusCode::BAD_REQUEST, json!({"error": error, "error_description": description}))
}

/// An access token shaped like a JWT (the CLI reads only `exp` and `sub` from it).
fn access_token(s: &mut FakeState) -> serde_json::Value {
    s.issued += 1;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let payload = json!({"sub": "alice", "exp": now + s.lifetime, "jti": format!("jti-{}", s.issued)}).to_string();
    let token =
        format!("eyJhbGciOiJFUzI1NiJ9.{}.sig-{}", Base64UrlSafeNoPadding::encode_to_string(payload).unwrap(), s.issued);
    let refresh = format!("refresh-secret-{}", s.issued);
    s.refresh_token = Some(refresh.clone());
    json!({"access_token": token, "token_type": "Bearer", "expires_in": s.lifetime, "refresh_token": refresh})
}

async fn token(State(state): State<Arc<Mutex<FakeState>>>, Form(f): Form<HashMap<String, String>>) -> Response {
    log(&state, "token");
    assert_eq!(f["client_id"], "warden-cli");
    match f["grant_type"].as_str() {
        "authorization_code" => {
            let mut s = state.lock().unwrap();
            let Some((challenge, redirect_uri)) = s.codes.remove(&f["code"]) else {
                return oauth_error("invalid_grant", "unknown code");
            };
            let computed =
                Base64UrlSafeNoPadding::encode_to_string(hmac_sha256::Hash::hash(f["code_verifier"].as_bytes()))
                    .unwrap();
            if computed != challenge || redirect_uri != f["redirect_uri"] {
                return oauth_error("invalid_grant", "PKCE or redirect_uri mismatch");
            }
            json_answer(StatusCode::OK, access_token(&mut s))
        }
        "refresh_token" => {
            state.lock().unwrap().refreshes.push(f["refresh_token"].clone());
            // Widen the window in which parallel callers could race (the lock must close it).
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let mut s = state.lock().unwrap();
            if s.refresh_token.as_deref() != Some(f["refresh_token"].as_str()) {
                return oauth_error("invalid_grant", "refresh token revoked or already used");
            }
            json_answer(StatusCode::OK, access_token(&mut s))
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let mut s = state.lock().unwrap();
            assert_eq!(f["device_code"], "device-secret");
            if s.device_pending > 0 {
                s.device_pending -= 1;
                return oauth_error("authorization_pending", "not yet");
            }
            json_answer(StatusCode::OK, access_token(&mut s))
        }
        _ => oauth_error("unsupported_grant_type", "no"),
    }
}

async fn device_authorization(State(state): State<Arc<Mutex<FakeState>>>) -> Response {
    log(&state, "device_authorization");
    let base = state.lock().unwrap().base.clone();
    json_answer(
        StatusCode::OK,
        json!({"device_code": "device-secret", "user_code": "WDJB-MJHT", "verification_uri": format!("{base}/device"),
        "expires_in": 600, "interval": 1}),
    )
}

async fn revoke(State(state): State<Arc<Mutex<FakeState>>>, Form(f): Form<HashMap<String, String>>) -> StatusCode {
    log(&state, "revoke");
    let mut s = state.lock().unwrap();
    s.revoked.push(f["token"].clone());
    if s.refresh_token.as_deref() == Some(f["token"].as_str()) {
        s.refresh_token = None;
    }
    StatusCode::OK
}

/// A private config home for one test.
struct Home(PathBuf);

impl Home {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("warden-cli-login-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(WARDEN);
        command
            .args(args)
            .env_remove("WARDEN_SERVICE")
            .env_remove("CLAUDE_CODE_API_KEY_HELPER_TTL_MS")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("XDG_CONFIG_HOME", &self.0)
            .env("HOME", &self.0)
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let Output { status, stdout, stderr } = self.command(args).output().unwrap();
        (status.code().unwrap_or(-1), String::from_utf8(stdout).unwrap(), String::from_utf8(stderr).unwrap())
    }

    /// The one stored credentials file.
    fn credentials(&self) -> PathBuf {
        let services = self.0.join("warden/services");
        let dir = std::fs::read_dir(&services).unwrap().next().unwrap().unwrap().path();
        dir.join("credentials.json")
    }

    fn stored(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.credentials()).unwrap()).unwrap()
    }

    /// Signs in through the browser flow, playing the browser over HTTP.
    fn login(&self, fake: &Fake) -> (String, String) {
        let (code, page, stdout, stderr) = self.try_login(fake);
        assert_eq!(code, 0, "{stderr}");
        assert!(page.contains("close this tab"), "{page}");
        (stdout, stderr)
    }

    /// The browser flow: (exit status, the loopback's page, stdout, stderr).
    fn try_login(&self, fake: &Fake) -> (i32, String, String, String) {
        let mut child = self
            .command(&["login", "--service", &fake.base, "--no-browser"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (url, stderr) = read_url(&mut child, "/oauth/authorize");
        let agent: ureq::Agent =
            ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).build().into();
        let redirect = agent.get(&url).call().unwrap();
        assert_eq!(redirect.status(), 302);
        let callback = redirect.headers()["location"].to_str().unwrap().to_string();
        assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
        let mut page = agent.get(&callback).call().unwrap();
        assert_eq!(page.status(), 200);
        let page = page.body_mut().read_to_string().unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code().unwrap_or(-1), page, String::from_utf8(out.stdout).unwrap(), stderr.join().unwrap())
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads the child's stderr until a line holding a URL with `path`; the thread returned keeps
/// reading and gives the whole stderr.
fn read_url(child: &mut Child, path: &str) -> (String, std::thread::JoinHandle<String>) {
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "no URL printed; stderr was: {seen}");
        seen.push_str(&line);
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http") && w.contains(path)) {
            let url = url.to_string();
            let rest = std::thread::spawn(move || {
                std::io::Read::read_to_string(&mut reader, &mut seen).unwrap();
                seen
            });
            return (url, rest);
        }
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn browser_sign_in_stores_a_private_sign_in_and_token_prints_only_the_access_token() {
    let fake = Fake::start();
    let home = Home::new("browser");
    let (stdout, stderr) = home.login(&fake);
    assert_eq!(stdout, "", "login prints nothing on stdout");
    assert!(stderr.contains("Signed in to") && stderr.contains("as alice"), "{stderr}");
    assert!(!stderr.contains("refresh-secret") && !stderr.contains("sig-1"), "no token printed: {stderr}");

    let credentials = home.credentials();
    assert_eq!(mode(&credentials), 0o600);
    assert_eq!(mode(credentials.parent().unwrap()), 0o700);
    let stored = home.stored();
    assert_eq!(stored["service"], fake.base.as_str());
    assert_eq!(stored["refresh_token"], "refresh-secret-1");

    let (code, stdout, stderr) = home.run(&["token"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("{}\n", stored["access_token"].as_str().unwrap()));
    assert_eq!(stderr, "");
}

#[test]
fn a_redirect_naming_another_issuer_is_not_redeemed() {
    let fake = Fake::start();
    let home = Home::new("mixup");
    fake.with(|s| s.wrong_iss = true);
    let (code, page, _, stderr) = home.try_login(&fake);
    assert_eq!(code, 1);
    assert!(page.contains("Sign-in failed"), "{page}");
    assert!(stderr.contains("another issuer"), "{stderr}");
    assert_eq!(fake.with(|s| s.requests.iter().filter(|r| *r == "token").count()), 0, "the code was not redeemed");
    assert!(!home.0.join("warden/services").exists() || home.run(&["token"]).0 == 1);
}

#[test]
fn token_refreshes_only_when_needed_and_stores_the_rotated_refresh_token() {
    let fake = Fake::start();
    let home = Home::new("refresh");
    home.login(&fake);
    let first = home.stored();

    // 600 s of life, 60 s margin: the cached token, and no call to the service (works offline).
    let before = fake.with(|s| s.requests.len());
    let (code, stdout, _) = home.run(&["token"]);
    assert_eq!((code, stdout.trim()), (0, first["access_token"].as_str().unwrap()));
    assert_eq!(fake.with(|s| s.requests.len()), before, "no request while the token is fresh");

    // Asking for more life than the token has left refreshes it, with the stored refresh token.
    let (code, stdout, stderr) = home.run(&["token", "--min-valid", "15m"]);
    assert_eq!(code, 0, "{stderr}");
    let second = home.stored();
    assert_eq!(stdout.trim(), second["access_token"].as_str().unwrap());
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(second["refresh_token"], "refresh-secret-2", "the rotated refresh token is stored");
    assert_eq!(fake.with(|s| s.refreshes.clone()), ["refresh-secret-1"]);
    assert!(!stdout.contains("refresh-secret") && !stderr.contains("refresh-secret"));

    // The next refresh presents the rotated one (the old one is dead at the service).
    let (code, _, stderr) = home.run(&["token", "--min-valid", "15m"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fake.with(|s| s.refreshes.clone()), ["refresh-secret-1", "refresh-secret-2"]);

    // Claude Code keeps the token for its helper TTL: a TTL longer than the token's life left
    // makes `warden token` refresh too.
    let Output { status, stderr, .. } =
        home.command(&["token"]).env("CLAUDE_CODE_API_KEY_HELPER_TTL_MS", "900000").output().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&stderr));
    assert_eq!(fake.with(|s| s.refreshes.len()), 3);
}

#[test]
fn a_refused_refresh_exits_1_and_says_how_to_sign_in_again() {
    let fake = Fake::start();
    let home = Home::new("refused");
    home.login(&fake);
    fake.with(|s| s.refresh_token = None); // the service revoked the sign-in
    let (code, stdout, stderr) = home.run(&["token", "--min-valid", "15m"]);
    assert_eq!(code, 1);
    assert_eq!(stdout, "", "nothing on stdout: Claude Code must not send an error as a key");
    assert!(stderr.contains("your Warden sign-in expired; run `warden login`"), "{stderr}");
    assert!(!stderr.contains("refresh-secret"), "{stderr}");
}

#[test]
fn parallel_token_calls_refresh_once_and_agree() {
    let fake = Fake::start();
    let home = Home::new("parallel");
    fake.with(|s| s.lifetime = 0); // the signed-in token is already spent
    home.login(&fake);
    fake.with(|s| s.lifetime = 600);
    let children: Vec<Child> = (0..6)
        .map(|_| home.command(&["token"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for out in &outputs {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let tokens: Vec<String> = outputs.iter().map(|o| String::from_utf8(o.stdout.clone()).unwrap()).collect();
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    assert_eq!(fake.with(|s| s.refreshes.clone()), ["refresh-secret-1"], "one refresh, the refresh token used once");
    assert_eq!(tokens[0].trim(), home.stored()["access_token"].as_str().unwrap());
}

#[test]
fn device_sign_in_prints_the_code_and_polls_until_approved() {
    let fake = Fake::start();
    let home = Home::new("device");
    fake.with(|s| s.device_pending = 1);
    let (code, stdout, stderr) = home.run(&["login", "--service", &fake.base, "--device"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("WDJB-MJHT") && stderr.contains("/device"), "{stderr}");
    assert!(!stderr.contains("device-secret"), "{stderr}");
    assert_eq!(fake.with(|s| s.requests.iter().filter(|r| *r == "token").count()), 2, "polled until approved");
    assert_eq!(home.run(&["token"]).0, 0);
}

#[test]
fn logout_revokes_and_forgets_the_sign_in() {
    let fake = Fake::start();
    let home = Home::new("logout");
    home.login(&fake);
    let (code, _, stderr) = home.run(&["logout"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("revoked"), "{stderr}");
    assert_eq!(fake.with(|s| s.revoked.clone()), ["refresh-secret-1"]);
    assert!(!home.credentials().exists());
    let (code, stdout, stderr) = home.run(&["token"]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(stderr.contains("run `warden login`"), "{stderr}");
}

#[test]
fn signing_in_again_replaces_and_revokes_the_earlier_sign_in() {
    let fake = Fake::start();
    let home = Home::new("again");
    home.login(&fake);
    home.login(&fake);
    assert_eq!(fake.with(|s| s.revoked.clone()), ["refresh-secret-1"]);
    assert_eq!(home.stored()["refresh_token"], "refresh-secret-2");
}

#[test]
fn a_credentials_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let fake = Fake::start();
    let home = Home::new("perms");
    home.login(&fake);
    std::fs::set_permissions(home.credentials(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, stdout, stderr) = home.run(&["token"]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(stderr.contains("others may read or write") && stderr.contains("chmod 600"), "{stderr}");
}

#[test]
fn services_are_chosen_explicitly_when_there_are_several_and_never_over_plain_http() {
    let (one, two) = (Fake::start(), Fake::start());
    let home = Home::new("several");
    home.login(&one);
    home.login(&two);
    let (code, _, stderr) = home.run(&["token"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("several services") && stderr.contains("--service"), "{stderr}");
    let (code, stdout, _) = home.run(&["token", "--service", &two.base]);
    assert_eq!(code, 0);
    assert!(stdout.contains("sig-1"));
    let (code, _, stderr) = home.run(&["login", "--service", "http://warden.example"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("https://"), "{stderr}");
    // `warden token init|mint` are still the demo issuer's, $WARDEN_SERVICE or not.
    let demo = home.0.join("demo");
    let demo = demo.to_str().unwrap();
    let (code, _, stderr) = home.run(&["token", "mint", "--sub", "x", "--dir", demo]);
    assert_eq!(code, 1);
    assert!(stderr.contains("warden token init"), "{stderr}");
    for args in [vec!["token", "init", "--dir", demo], vec!["token", "mint", "--sub", "x", "--dir", demo]] {
        let out = home.command(&args).env("WARDEN_SERVICE", &one.base).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

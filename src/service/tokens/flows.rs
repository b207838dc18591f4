//! The browser side of signing in (docs/identity.md, "Signing in" and "Signing into the
//! console"): the service is the OAuth 2.0 authorization server of the `warden` CLI and, towards
//! the organisation's identity provider, an OIDC client.
//!
//! | route | what |
//! |---|---|
//! | `GET /oauth/authorize` | RFC 6749 §4.1 + RFC 7636: `response_type=code`, `client_id=warden-cli`, a loopback `redirect_uri` (RFC 8252 §7.3), `code_challenge` + `code_challenge_method=S256`, `state`. A wrong client or redirect gets an error page (never a redirect); other errors redirect back with `error=`. Starts a sign-in and sends the browser to the source picker |
//! | `GET /oauth/sign-in?login=ID` | the source picker: one link per sign-in source (`id="source-<name>"`) |
//! | `GET /oauth/start?login=ID&source=NAME` | sends the browser to the OIDC provider (code + PKCE, `state` = login id, `nonce`) |
//! | `GET /oauth/callback` | the provider's answer: the code is redeemed, the ID token verified (`TokenService::verify_source_token`), its `nonce` and source checked, and the sign-in completed ([`super::sign_in::SignIns::complete`]) |
//! | `GET /device`, `POST /device` (`user_code`, `csrf`) | RFC 8628's verification page: a person types the code shown by `warden login --device`, then signs in as above |
//! | `GET /login/sign-in/{source}?next=PATH` | the console's "Sign in with …": needs the sign-in page's cookie (so another site cannot start it), then the picker's link for that source |
//! | `GET /login/finish?ticket=T` | the end of a console sign-in: first a same-site reload of itself (`&again=1`) so the `SameSite=Strict` cookies are sent and set; then the ticket (bound to this browser's sign-in cookie) becomes a console session |
//!
//! The console's session is a Warden token minted for the approvers' audience
//! (`approvals.approver_audience`), living at most an hour and at most
//! `identity.max_token_lifetime`; the console verifies it like any approver token, so the token
//! service's issuer must be one of `identity.providers`.
//!
//! The device page's form carries a CSRF token bound to a random nonce in its `warden_device`
//! cookie (`Path=/device`, `HttpOnly`, `SameSite=Strict`), signed with a key made fresh at each
//! start (a page opened before a restart needs a reload). Without the console (no `approvals`),
//! the console's routes answer 404; the CLI's and the device's flows need only the token service.
//!
//! Page element ids for tests: `id="sources"` with links `id="source-<name>"`; `id="device"`
//! (the form), `name="user_code"` (`id="user_code"`), `id="device-submit"`; `id="signed-in"` on a
//! completion page; `id="error"` on an error page.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use crate::core::policy::token_service::OidcSignInConfig;

use super::sign_in::{
    check_loopback_redirect, digest, is_pkce_challenge, query_escape, CliRequest, Completion, LoginKind, SignInError,
    CLI_CLIENT_ID,
};
use super::upstream::{authorization_url, nonce_of};
use super::{SignedIn, TokenService};
use crate::service::console;
use crate::service::approvals::page::{self, escape, Page};
use crate::service::approvals::service::Service;
use crate::service::util::{log_event, unix_now};

/// Name of the device page's cookie (the nonce its form's CSRF token is bound to).
const DEVICE_COOKIE: &str = "warden_device";
/// Why the console's sign-in is not offered.
const CONSOLE_OFF: &str = "signing into the console needs the policy's `approvals` section";
/// Longest `state` the CLI may send.
const MAX_STATE_BYTES: usize = 512;

/// What the browser routes need: the token service and, for the console's sign-in, the console.
#[derive(Clone)]
pub struct Flows {
    /// The token service.
    pub tokens: Arc<TokenService>,
    /// The console (cookies, CSRF, approver verification), when `warden serve` runs one.
    pub console: Option<Arc<Service>>,
}

/// The browser routes.
pub fn routes(flows: Flows) -> Router {
    Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/sign-in", get(picker))
        .route("/oauth/start", get(start))
        .route("/oauth/callback", get(callback))
        .route("/device", get(device_form).post(device_submit))
        .route("/login/sign-in/{source}", get(console_start))
        .route("/login/finish", get(console_finish))
        .with_state(flows)
}

/// The sign-in sources people may pick, as `(name, URL)` for sign-in `login_id`: OIDC
/// providers with a `client` (`/oauth/start`), then SAML providers (`/saml/<name>/login`).
pub fn sign_in_links(tokens: &TokenService, login_id: &str) -> Vec<(String, String)> {
    let login = query_escape(login_id);
    let oidc = tokens.config.oidc.iter().filter(|provider| provider.client.is_some()).map(|provider| {
        (provider.name.clone(), format!("/oauth/start?login={login}&source={}", query_escape(&provider.name)))
    });
    let saml =
        tokens.config.saml.iter().map(|provider| {
            (provider.name.clone(), format!("/saml/{}/login?login={login}", query_escape(&provider.name)))
        });
    oidc.chain(saml).collect()
}

/// The names of the sources the console offers.
pub fn console_sources(tokens: &TokenService) -> Vec<String> {
    sign_in_links(tokens, "").into_iter().map(|(name, _)| name).collect()
}

fn html(status: StatusCode, title: &str, content: &str) -> Response {
    Page { status, html: console::render(title, None, None, None, content), cookies: Vec::new() }.into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    html(
        status,
        "Sign-in failed",
        &format!(r#"<h2>Sign-in failed</h2><p id="error" class="flash flash-error">{}</p>"#, escape(message)),
    )
}

fn sign_in_error(e: &SignInError) -> Response {
    let status = match e {
        SignInError::Busy | SignInError::TooManyGuesses => StatusCode::TOO_MANY_REQUESTS,
        SignInError::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, &e.to_string())
}

fn completion(done: Completion) -> Response {
    match done {
        Completion::Redirect(location) => page::redirect(&location, Vec::new()),
        Completion::Page(message) => html(
            StatusCode::OK,
            "Signed in",
            &format!(r#"<h2>Warden</h2><p id="signed-in" class="flash flash-ok">{}</p>"#, escape(&message)),
        ),
    }
}

/// Query of `GET /oauth/authorize` (RFC 6749 §4.1.1, RFC 7636 §4.3).
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    state: Option<String>,
}

/// `GET /oauth/authorize`.
async fn authorize(State(flows): State<Flows>, query: Result<Query<AuthorizeQuery>, QueryRejection>) -> Response {
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "the authorization request is malformed (a repeated or unreadable parameter)",
        );
    };
    if query.client_id.as_deref() != Some(CLI_CLIENT_ID) {
        return error(
            StatusCode::BAD_REQUEST,
            "unknown client_id: this service signs in the `warden` CLI (warden-cli)",
        );
    }
    let redirect_uri = query.redirect_uri.unwrap_or_default();
    if let Err(why) = check_loopback_redirect(&redirect_uri) {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let state = query.state.unwrap_or_default();
    let refuse = |code: &str, why: &str| {
        let location = format!(
            "{redirect_uri}?error={code}&error_description={}&state={}",
            query_escape(why),
            query_escape(&state)
        );
        page::redirect(&location, Vec::new())
    };
    if query.response_type.as_deref() != Some("code") {
        return refuse("unsupported_response_type", "response_type must be code");
    }
    if query.code_challenge_method.as_deref() != Some("S256") {
        return refuse("invalid_request", "PKCE is required: code_challenge_method must be S256");
    }
    let code_challenge = query.code_challenge.unwrap_or_default();
    if !is_pkce_challenge(&code_challenge) {
        return refuse("invalid_request", "code_challenge must be 43 base64url characters (S256)");
    }
    if state.is_empty() || state.len() > MAX_STATE_BYTES {
        return refuse("invalid_request", "state is required (at most 512 bytes)");
    }
    let request = CliRequest { client_id: CLI_CLIENT_ID.to_string(), redirect_uri, code_challenge, state };
    match flows.tokens.sign_ins.begin(LoginKind::Cli(request), unix_now()) {
        Ok(login) => page::redirect(&format!("/oauth/sign-in?login={login}"), Vec::new()),
        Err(e) => sign_in_error(&e),
    }
}

/// Query naming a sign-in in progress (and a source).
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    login: String,
    #[serde(default)]
    source: String,
}

/// `GET /oauth/sign-in`: the source picker.
async fn picker(State(flows): State<Flows>, Query(query): Query<LoginQuery>) -> Response {
    if let Err(e) = flows.tokens.sign_ins.kind(&query.login, unix_now()) {
        return sign_in_error(&e);
    }
    let links = sign_in_links(&flows.tokens, &query.login);
    if links.is_empty() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no sign-in source is configured (token_service.oidc[].client, token_service.saml)",
        );
    }
    let items: String = links
        .iter()
        .map(|(name, url)| {
            format!(r#"<li><a id="source-{0}" href="{1}">Sign in with {0}</a></li>"#, escape(name), escape(url))
        })
        .collect();
    html(StatusCode::OK, "Sign in", &format!(r#"<h2>Sign in to Warden</h2><ul id="sources">{items}</ul>"#))
}

fn provider<'a>(tokens: &'a TokenService, name: &str) -> Option<&'a OidcSignInConfig> {
    tokens.config.oidc.iter().find(|p| p.name == name && p.client.is_some())
}

/// The service's callback address at the provider.
fn callback_uri(tokens: &TokenService) -> String {
    format!("{}/oauth/callback", tokens.config.issuer.trim_end_matches('/'))
}

/// `GET /oauth/start`: to the provider.
async fn start(State(flows): State<Flows>, Query(query): Query<LoginQuery>) -> Response {
    let tokens = Arc::clone(&flows.tokens);
    let Some(chosen) = provider(&tokens, &query.source).cloned() else {
        return error(StatusCode::BAD_REQUEST, "unknown sign-in source");
    };
    let request = match tokens.sign_ins.send_upstream(&query.login, &chosen.name, unix_now()) {
        Ok(request) => request,
        Err(e) => return sign_in_error(&e),
    };
    let lookup = Arc::clone(&tokens);
    let endpoints =
        tokio::task::spawn_blocking(move || lookup.oidc_client.endpoints(&chosen).map(|e| (e, chosen))).await;
    let (endpoints, chosen) = match endpoints {
        Ok(Ok(found)) => found,
        Ok(Err(why)) => return error(StatusCode::BAD_GATEWAY, &why),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "the provider lookup failed"),
    };
    match authorization_url(&chosen, &endpoints.authorization, &callback_uri(&tokens), &query.login, &request) {
        Ok(url) => page::redirect(&url, Vec::new()),
        Err(why) => error(StatusCode::BAD_REQUEST, &why),
    }
}

/// Query of `GET /oauth/callback` (OIDC Core §3.1.2.5–6; no `Debug`: it holds the code).
#[derive(Default, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
}

/// `GET /oauth/callback`.
async fn callback(State(flows): State<Flows>, Query(query): Query<CallbackQuery>) -> Response {
    let tokens = Arc::clone(&flows.tokens);
    let now = unix_now();
    let sent = match tokens.sign_ins.upstream(&query.state, now) {
        Ok(sent) => sent,
        Err(e) => return sign_in_error(&e),
    };
    let outcome = if !query.error.is_empty() {
        let code: String = query.error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
        Err(format!("the identity provider answered {code}"))
    } else {
        let verify = Arc::clone(&tokens);
        let code = query.code;
        let joined = tokio::task::spawn_blocking(move || identity_from_code(&verify, &sent, &code, now)).await;
        joined.unwrap_or_else(|_| Err("the sign-in failed unexpectedly".to_string()))
    };
    match outcome {
        Ok(who) => {
            log_event(&format!("sign-in: {} through {}", who.subject, who.source));
            tokens.sign_ins.complete_at(&query.state, who, now).map_or_else(|e| sign_in_error(&e), completion)
        }
        Err(why) => {
            log_event(&format!("sign-in refused: {why}"));
            match tokens.sign_ins.fail(&query.state, &why, now) {
                Ok(Completion::Redirect(location)) => page::redirect(&location, Vec::new()),
                Ok(Completion::Page(message)) => error(StatusCode::FORBIDDEN, &message),
                Err(e) => sign_in_error(&e),
            }
        }
    }
}

/// Redeems the provider's code and verifies its ID token (blocking).
fn identity_from_code(
    tokens: &TokenService,
    sent: &super::sign_in::UpstreamRequest,
    code: &str,
    now: i64,
) -> Result<SignedIn, String> {
    let chosen = provider(tokens, &sent.source).ok_or("the sign-in source is no longer configured")?;
    if code.is_empty() {
        return Err("the identity provider sent no code".to_string());
    }
    let endpoints = tokens.oidc_client.endpoints(chosen)?;
    let id_token = tokens.oidc_client.redeem(chosen, &endpoints.token, code, &callback_uri(tokens), &sent.verifier)?;
    let who = tokens
        .verify_source_token(&id_token, u64::try_from(now).unwrap_or_default())
        .map_err(|e| format!("the identity provider's ID token was refused: {}", e.description))?;
    if who.source != sent.source {
        return Err("the ID token comes from another identity provider than the one chosen".to_string());
    }
    if nonce_of(&id_token).as_deref() != Some(sent.nonce.as_str()) {
        return Err("the ID token's nonce is not this sign-in's".to_string());
    }
    Ok(who)
}

/// Query of `GET /device` (`verification_uri_complete` fills the code in).
#[derive(Debug, Default, Deserialize)]
pub struct DeviceQuery {
    #[serde(default)]
    user_code: String,
}

/// Form of `POST /device`.
#[derive(Debug, Default, Deserialize)]
pub struct DeviceForm {
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    csrf: String,
}

fn device_binding(nonce: &str) -> String {
    format!("device|{nonce}")
}

fn device_page(
    tokens: &TokenService,
    headers: &HeaderMap,
    status: StatusCode,
    message: Option<&str>,
    code: &str,
) -> Response {
    let nonce = page::cookie(headers, DEVICE_COOKIE)
        .filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .or_else(|| crate::service::util::random_bytes::<16>().ok().map(|b| crate::core::hex::hex(&b)))
        .unwrap_or_default();
    let csrf = escape(&tokens.csrf.issue(&device_binding(&nonce), unix_now()));
    let flash =
        message.map(|m| format!(r#"<p id="error" class="flash flash-error">{}</p>"#, escape(m))).unwrap_or_default();
    let content = format!(
        r#"<h2>Sign in a device</h2>{flash}
<p>Type the code your terminal shows. Only continue if you started this sign-in yourself: the device gets your identity.</p>
<form method="post" action="/device" id="device"><input type="hidden" name="csrf" value="{csrf}">
<label for="user_code">Code</label>
<input name="user_code" id="user_code" value="{}" autocomplete="off" spellcheck="false" required>
<button type="submit" id="device-submit">Continue</button></form>"#,
        escape(code)
    );
    let secure = if tokens.config.issuer.starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!("{DEVICE_COOKIE}={nonce}; Path=/device; HttpOnly; SameSite=Strict; Max-Age=3600{secure}");
    let cookies = HeaderValue::from_str(&cookie).into_iter().collect();
    Page { status, html: console::render("Sign in a device", None, None, None, &content), cookies }.into_response()
}

/// `GET /device`.
async fn device_form(State(flows): State<Flows>, headers: HeaderMap, Query(query): Query<DeviceQuery>) -> Response {
    device_page(&flows.tokens, &headers, StatusCode::OK, None, &query.user_code)
}

/// `POST /device`.
async fn device_submit(State(flows): State<Flows>, headers: HeaderMap, Form(form): Form<DeviceForm>) -> Response {
    let bound = page::cookie(&headers, DEVICE_COOKIE)
        .is_some_and(|nonce| flows.tokens.csrf.check(&device_binding(nonce), &form.csrf, unix_now()));
    if !bound {
        let why = "the form expired or did not come from this page; type the code again";
        return device_page(&flows.tokens, &headers, StatusCode::FORBIDDEN, Some(why), &form.user_code);
    }
    match flows.tokens.sign_ins.enter_user_code(&form.user_code, unix_now()) {
        Ok(login) => page::redirect(&format!("/oauth/sign-in?login={login}"), Vec::new()),
        Err(e) => {
            let status =
                if e == SignInError::TooManyGuesses { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::BAD_REQUEST };
            device_page(&flows.tokens, &headers, status, Some(&e.to_string()), &form.user_code)
        }
    }
}

/// Query of `GET /login/sign-in/{source}`.
#[derive(Debug, Default, Deserialize)]
pub struct ConsoleStartQuery {
    #[serde(default)]
    next: String,
}

/// `GET /login/sign-in/{source}`: a console sign-in through `source`.
async fn console_start(
    State(flows): State<Flows>,
    headers: HeaderMap,
    Path(source): Path<String>,
    Query(query): Query<ConsoleStartQuery>,
) -> Response {
    let next = page::safe_return_path(&query.next).unwrap_or("/reviews").to_string();
    let Some(nonce) = page::login_nonce(&headers) else {
        // Opened from elsewhere (the sign-in cookie is SameSite=Strict): start from the page.
        return page::redirect(&format!("/login?next={}", query_escape(&next)), Vec::new());
    };
    if flows.tokens.console.is_none() || flows.console.is_none() {
        return error(StatusCode::NOT_FOUND, CONSOLE_OFF);
    }
    let kind = LoginKind::Console { next, browser: digest(nonce) };
    let login = match flows.tokens.sign_ins.begin(kind, unix_now()) {
        Ok(login) => login,
        Err(e) => return sign_in_error(&e),
    };
    match sign_in_links(&flows.tokens, &login).into_iter().find(|(name, _)| *name == source) {
        Some((_, url)) => page::redirect(&url, Vec::new()),
        None => error(StatusCode::BAD_REQUEST, "unknown sign-in source"),
    }
}

/// Query of `GET /login/finish` (no `Debug`: it holds the ticket).
#[derive(Default, Deserialize)]
pub struct FinishQuery {
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    again: Option<String>,
}

/// `GET /login/finish`: the console session, set on a same-site request.
async fn console_finish(State(flows): State<Flows>, headers: HeaderMap, Query(query): Query<FinishQuery>) -> Response {
    if query.again.is_none() {
        let target = escape(&format!("/login/finish?ticket={}&again=1", query_escape(&query.ticket)));
        let content = format!(
            r#"<meta http-equiv="refresh" content="0; url={target}"><p>Signing in… <a id="continue" href="{target}">continue</a></p>"#
        );
        return html(StatusCode::OK, "Signing in", &content);
    }
    let (Some(console), Some(service)) = (flows.tokens.console.as_ref(), flows.console.as_ref()) else {
        return error(StatusCode::NOT_FOUND, CONSOLE_OFF);
    };
    let browser = page::login_nonce(&headers).map(digest).unwrap_or_default();
    let now = unix_now();
    let (who, next) = match flows.tokens.sign_ins.take_console(&query.ticket, &browser, now) {
        Ok(taken) => taken,
        Err(e) => return sign_in_error(&e),
    };
    let now_seconds = u64::try_from(now).unwrap_or_default();
    let minted = match flows.tokens.mint_for(&who, now_seconds, &console.audience, console.lifetime) {
        Ok(minted) => minted,
        Err(e) if e.code == super::oauth::OAuthErrorCode::AccessDenied => {
            return error(StatusCode::FORBIDDEN, &e.description)
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.description),
    };
    let approver = match service.verifier.verify(&minted.token).await {
        Ok(approver) => approver,
        Err(e) => {
            let why = format!(
                "the console does not accept the token service's tokens ({e}): list token_service.issuer, with the service's JWKS, in identity.providers"
            );
            return error(StatusCode::INTERNAL_SERVER_ERROR, &why);
        }
    };
    if let Err(e) = service.ensure_approver(&approver) {
        return error(StatusCode::FORBIDDEN, e.message());
    }
    page::start_session(service, &approver, &minted.token, &next)
}

//! The approvers' pages of the console (layout: [`crate::service::console`]): server-rendered HTML, plain
//! forms; they work without JavaScript.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | redirects to `/reviews` |
//! | `GET /login?next=PATH`, `POST /login` (`token`, `next`, `csrf`) | paste an approver's OIDC token; verified, then kept in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the public URL is https) until the token expires. The form's `csrf` is bound to a random nonce in the `warden_login` cookie, and a post with `Sec-Fetch-Site` other than `same-origin`/`none` or an `Origin` other than the public URL's is refused (403) before the token is read: nobody can be signed in as someone else from another site |
//! | `GET /logout`, `POST /logout` | forgets the cookie |
//! | `GET /reviews` | pending reviews the approver may decide, with their context and approve/deny forms, then the live session grants, then recent decisions |
//! | `GET /reviews/{id}` | one review, its votes and (while pending) its form |
//! | `POST /reviews/{id}/decide` (`csrf`, `comment`, `approve`, `approve_session` (with `session_minutes`) or `deny`, `back`) | records the decision, redirects back with a flash message |
//! | `POST /grants/{id}/end` (`csrf`) | ends a live session grant at once ([`super::grants`]) |
//!
//! An anonymous `GET` of a review page first answers a page that reloads it from this site
//! (`?again=1`): links from a chat message are cross-site navigations, on which browsers withhold
//! `SameSite=Strict` cookies; the reload carries them. Still anonymous → `/login?next=PATH`, and
//! the sign-in returns there.
//!
//! Authentication: `Authorization: Bearer <token>` when present (deployments behind an OIDC
//! auth proxy that passes the user's token), else the session cookie; either is verified on
//! every request exactly like the API's. Forms carry a CSRF token bound to the approver's issuer
//! and subject ([`crate::service::auth::CsrfKey`]); with `SameSite=Strict` cookies that is defence in depth, and it
//! is what protects header-authenticated deployments. Every value shown is HTML-escaped; pages
//! are sent with a restrictive Content-Security-Policy and `Cache-Control: no-store`.
//!
//! Stable element ids and names for browser tests: the login form `id="login"` with textarea
//! `name="token"` (`id="token"`) and button `id="login-submit"`; `id="flash"` (class `flash-ok`
//! or `flash-error`); `id="whoami"`, the sign-out button `id="logout"`; `id="pending"` and
//! `id="decided"` sections; each review `id="review-<id>"` with its form `id="decide-<id>"`,
//! textarea `name="comment"` (`id="comment-<id>"`), buttons `name="approve"` (`id="approve-<id>"`)
//! and `name="deny"` (`id="deny-<id>"`); progress `class="progress"`; each decided row
//! `id="decision-<id>"`. Session grants: the minutes field `name="session_minutes"`
//! (`id="session-minutes-<id>"`) and the button `name="approve_session"`
//! (`id="approve-session-<id>"`, disabled with a note `id="session-note-<id>"` when the request
//! names no session or the role needs two approvers); a tool call's input
//! `id="tool-input-<id>"`; the live grants `id="grants"`, rows `id="grant-<grant>"`, End buttons
//! `id="end-button-<grant>"`; a review's grant `id="session-grant-<id>"`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};
use serde::Deserialize;

use crate::service::auth::{bearer, Approver};
use crate::service::console::{self, Section};
use super::grants::SessionGrant;
use super::service::{join_or_dash, or_dash, Service, ServiceError};
use crate::service::store::{Choice, Decided, Listing, Review, Status};
use crate::service::util::{format_duration, unix_now};

/// Name of the session cookie (holds the approver's token).
const SESSION_COOKIE: &str = "warden_session";
/// Name of the sign-in form's cookie (a random nonce the form's token is bound to).
const LOGIN_COOKIE: &str = "warden_login";
/// Lifetime of the sign-in form's cookie, seconds.
const LOGIN_COOKIE_SECONDS: i64 = 3600;
/// Name of the one-shot flash message cookie.
const FLASH_COOKIE: &str = "warden_flash";
/// Recent decisions shown under the pending reviews.
const RECENT_DECISIONS: u32 = 20;

pub use crate::service::console::escape;

/// A flash message shown once on the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    ok: bool,
    message: String,
}

impl Flash {
    pub(crate) fn ok(message: impl Into<String>) -> Self {
        Self { ok: true, message: message.into() }
    }

    pub(crate) fn error(message: impl Into<String>) -> Self {
        Self { ok: false, message: message.into() }
    }

    fn encode(&self) -> String {
        let text = format!("{}{}", if self.ok { "ok:" } else { "err:" }, self.message);
        Base64UrlSafeNoPadding::encode_to_string(text.as_bytes()).unwrap_or_default()
    }

    fn decode(value: &str) -> Option<Self> {
        let bytes = Base64UrlSafeNoPadding::decode_to_vec(value, None).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        if let Some(message) = text.strip_prefix("ok:") {
            Some(Self::ok(message))
        } else {
            text.strip_prefix("err:").map(Self::error)
        }
    }

    /// The message as HTML (escaped).
    pub(crate) fn html(&self) -> String {
        let class = if self.ok { "flash flash-ok" } else { "flash flash-error" };
        let role = if self.ok { "status" } else { "alert" };
        format!(r#"<p id="flash" class="{class}" role="{role}">{}</p>"#, escape(&self.message))
    }
}

/// The value of cookie `name` in the request.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

pub(crate) fn cookie_header(service: &Service, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if service.secure_cookies() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")).ok()
}

/// Where the page found the approver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Header,
    Cookie,
}

/// The outcome of authenticating a page request.
pub(crate) enum PageAuth {
    Approver(Approver, Source),
    /// No credential at all.
    Anonymous,
    /// A credential was presented and refused.
    Refused {
        source: Source,
        message: String,
    },
}

pub(crate) async fn authenticate(service: &Service, headers: &HeaderMap) -> PageAuth {
    let (token, source) = match bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())) {
        Some(token) => (token, Source::Header),
        None => match cookie(headers, SESSION_COOKIE) {
            Some(token) => (token, Source::Cookie),
            None => return PageAuth::Anonymous,
        },
    };
    match service.verifier.verify(token).await {
        Ok(approver) => PageAuth::Approver(approver, source),
        Err(e) => PageAuth::Refused { source, message: e.to_string() },
    }
}

/// A response with the page's security headers.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) html: String,
    pub(crate) cookies: Vec<HeaderValue>,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.html).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        security_headers(headers);
        for cookie in self.cookies {
            headers.append(header::SET_COOKIE, cookie);
        }
        response
    }
}

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(console::CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// `303 See Other` to `location`, setting `cookies`.
pub(crate) fn redirect(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    security_headers(headers);
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

/// Redirect with a flash message.
pub(crate) fn redirect_with(
    service: &Service,
    location: &str,
    flash: &Flash,
    mut cookies: Vec<HeaderValue>,
) -> Response {
    cookies.extend(cookie_header(service, FLASH_COOKIE, &flash.encode(), 60));
    redirect(location, cookies)
}

/// The flash message of the request (and the header that clears it).
pub(crate) fn take_flash(service: &Service, headers: &HeaderMap) -> (Option<Flash>, Vec<HeaderValue>) {
    match cookie(headers, FLASH_COOKIE) {
        Some(value) => (Flash::decode(value), cookie_header(service, FLASH_COOKIE, "", 0).into_iter().collect()),
        None => (None, Vec::new()),
    }
}

/// `GET /`.
pub async fn root() -> Response {
    redirect("/reviews", Vec::new())
}

/// `GET /login`.
pub async fn login_form(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let (flash, cookies) = take_flash(&service, &headers);
    login_page(&service, &headers, StatusCode::OK, flash.as_ref(), cookies, query.next.as_deref().unwrap_or_default())
        .into_response()
}

/// The CSRF "subject" a sign-in form's token is bound to: the nonce in its cookie.
fn login_binding(nonce: &str) -> String {
    format!("login|{nonce}")
}

/// The CSRF "subject" a decision form's token is bound to: the approver's issuer and subject
/// (length-prefixed, so no two identities share it).
pub(crate) fn approver_binding(approver: &Approver) -> String {
    format!("approver|{}:{}{}", approver.issuer.len(), approver.issuer, approver.subject)
}

/// The sign-in nonce in the request's cookie, when well-formed (32 lower-case hex characters).
pub(crate) fn login_nonce(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, LOGIN_COOKIE).filter(|n| n.len() == 32 && n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Why a sign-in post is refused before its token is even looked at: it comes from another site
/// (`Sec-Fetch-Site`, or an `Origin` other than the public URL's), or its form token does not
/// match the sign-in cookie. `None`: it came from this site's own form.
fn login_forgery(service: &Service, headers: &HeaderMap, csrf: &str) -> Option<&'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if header("sec-fetch-site").is_some_and(|site| site != "same-origin" && site != "none") {
        return Some("the sign-in came from another site");
    }
    // Pages are sent with `Referrer-Policy: no-referrer`, under which browsers send
    // `Origin: null` on their own form posts: only a real origin is compared (the form token
    // below is the defence that does not depend on headers).
    if let Some(origin) = header("origin").filter(|o| *o != "null") {
        if !same_origin(origin, &service.public_url) {
            return Some("the sign-in came from another site");
        }
    }
    match login_nonce(headers) {
        Some(nonce) if service.csrf.check(&login_binding(nonce), csrf, unix_now()) => None,
        _ => Some("the sign-in form expired or did not come from this page"),
    }
}

/// Whether `origin` (`scheme://host[:port]`) is the origin of `public_url`.
fn same_origin(origin: &str, public_url: &str) -> bool {
    let end = public_url
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| public_url.get(start..).map(|rest| start + rest.find('/').unwrap_or(rest.len())));
    let expected = end.and_then(|end| public_url.get(..end)).unwrap_or(public_url);
    origin.eq_ignore_ascii_case(expected)
}

/// Query of `GET /login`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// The page to return to after signing in.
    next: Option<String>,
}

/// The sign-in page. Its form carries a token bound to a random nonce kept in the sign-in cookie
/// (reused while valid, so several open tabs work), so a sign-in cannot be posted from another
/// site (login CSRF: signing a victim in as the attacker).
fn login_page(
    service: &Service,
    headers: &HeaderMap,
    status: StatusCode,
    flash: Option<&Flash>,
    mut cookies: Vec<HeaderValue>,
    next: &str,
) -> Page {
    let nonce = match login_nonce(headers) {
        Some(nonce) => nonce.to_string(),
        None => crate::service::util::random_bytes::<16>().map(|b| crate::core::hex::hex(&b)).unwrap_or_default(),
    };
    cookies.extend(cookie_header(service, LOGIN_COOKIE, &nonce, LOGIN_COOKIE_SECONDS));
    let csrf = escape(&service.csrf.issue(&login_binding(&nonce), unix_now()));
    let next_path = safe_return_path(next).unwrap_or("/reviews");
    let providers: String = service
        .console_sign_in
        .iter()
        .map(|source| {
            let href =
                escape(&format!("/login/sign-in/{source}?next={}", crate::service::tokens::sign_in::query_escape(next_path)));
            format!(
                r#"<li><a id="sign-in-{source}" class="sign-in" href="{href}">Sign in with {}</a></li>"#,
                escape(source)
            )
        })
        .collect();
    let providers = if providers.is_empty() {
        String::new()
    } else {
        format!(r#"<ul id="sign-in-sources">{providers}</ul><p>Or paste a token:</p>"#)
    };
    let next = escape(next_path);
    let content = format!(
        r#"<h2>Sign in</h2>
{providers}<p>Paste your OIDC token (the same kind of token the gateway accepts). It is kept in a cookie only until it expires.</p>
<form method="post" action="/login" id="login">
<input type="hidden" name="next" value="{next}"><input type="hidden" name="csrf" value="{csrf}">
<label for="token">Token</label>
<textarea name="token" id="token" rows="6" required autocomplete="off" spellcheck="false"></textarea>
<button type="submit" id="login-submit">Sign in</button>
</form>"#
    );
    Page { status, html: console::render("Sign in", None, None, flash, &content), cookies }
}

/// Form of `POST /login` (no `Debug`: it holds the token).
#[derive(Deserialize)]
pub struct LoginForm {
    /// The approver's OIDC token.
    #[serde(default)]
    token: String,
    /// The page to return to (`/reviews` or `/reviews/<id>`).
    #[serde(default)]
    next: String,
    /// The sign-in form's token (bound to the sign-in cookie).
    #[serde(default)]
    csrf: String,
}

/// `POST /login`.
pub async fn login(State(service): State<Arc<Service>>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    if let Some(why) = login_forgery(&service, &headers, &form.csrf) {
        let flash = Flash::error(format!("Sign-in refused: {why}. Sign in again from this page."));
        return login_page(&service, &headers, StatusCode::FORBIDDEN, Some(&flash), Vec::new(), &form.next)
            .into_response();
    }
    let token = form.token.trim();
    if token.is_empty() {
        return login_page(
            &service,
            &headers,
            StatusCode::BAD_REQUEST,
            Some(&Flash::error("Paste a token to sign in.")),
            Vec::new(),
            &form.next,
        )
        .into_response();
    }
    let approver = match service.verifier.verify(token).await {
        Ok(approver) => approver,
        Err(e) => {
            return login_page(
                &service,
                &headers,
                StatusCode::UNAUTHORIZED,
                Some(&Flash::error(format!("Sign-in failed: {e}"))),
                Vec::new(),
                &form.next,
            )
            .into_response()
        }
    };
    if let Err(e) = service.ensure_approver(&approver) {
        return login_page(
            &service,
            &headers,
            StatusCode::FORBIDDEN,
            Some(&Flash::error(e.message())),
            Vec::new(),
            &form.next,
        )
        .into_response();
    }
    start_session(&service, &approver, token, &form.next)
}

/// Signs the browser in as `approver`, whose verified `token` the session cookie keeps until it
/// expires, and sends it to `next` (when a page a sign-in may return to) with a flash message.
pub(crate) fn start_session(service: &Service, approver: &Approver, token: &str, next: &str) -> Response {
    let max_age = (approver.expires_at - unix_now()).max(1);
    let mut cookies: Vec<HeaderValue> = cookie_header(service, SESSION_COOKIE, token, max_age).into_iter().collect();
    cookies.extend(cookie_header(service, LOGIN_COOKIE, "", 0));
    let next = safe_return_path(next).unwrap_or("/reviews");
    redirect_with(service, next, &Flash::ok(format!("Signed in as {}.", approver.subject)), cookies)
}

/// `GET /logout` and `POST /logout`.
pub async fn logout(State(service): State<Arc<Service>>) -> Response {
    let cookies = cookie_header(&service, SESSION_COOKIE, "", 0).into_iter().collect();
    redirect_with(&service, "/login", &Flash::ok("Signed out."), cookies)
}

/// `path` when it is a page a sign-in may return to (`/reviews` or `/reviews/<id>`).
pub(crate) fn safe_return_path(path: &str) -> Option<&str> {
    let valid = path == "/reviews"
        || path == "/sessions"
        || path == "/revocations"
        || path.strip_prefix("/reviews/").is_some_and(|id| {
            !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        || path.strip_prefix("/sessions/").is_some_and(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        });
    valid.then_some(path)
}

/// Query of the review pages.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// Set by [`same_site_hop`]: the session cookie had its chance.
    #[serde(default)]
    pub(crate) again: Option<String>,
}

/// A page that reloads `path` from this site at once. A link from elsewhere (the webhook's chat
/// message) is a cross-site navigation, on which browsers withhold `SameSite=Strict` cookies;
/// the reload is same-site, so a signed-in approver gets the page instead of the sign-in form.
fn same_site_hop(path: &str) -> Response {
    let target = escape(&format!("{path}?again=1"));
    let content = format!(
        r#"<meta http-equiv="refresh" content="0; url={target}"><p>Opening <a id="continue" href="{target}">{}</a>…</p>"#,
        escape(path)
    );
    Page { status: StatusCode::OK, html: console::render("Opening", None, None, None, &content), cookies: Vec::new() }
        .into_response()
}

/// What to do with an unauthenticated page request for `path` (`again`: after [`same_site_hop`]).
pub(crate) fn unauthenticated(service: &Service, auth: PageAuth, path: &str, again: bool) -> Response {
    let login = format!("/login?next={path}");
    match auth {
        PageAuth::Anonymous if !again => same_site_hop(path),
        PageAuth::Approver(..) | PageAuth::Anonymous => redirect(&login, Vec::new()),
        PageAuth::Refused { source: Source::Cookie, message } => {
            let cookies = cookie_header(service, SESSION_COOKIE, "", 0).into_iter().collect();
            redirect_with(service, &login, &Flash::error(format!("Your session ended: {message}")), cookies)
        }
        PageAuth::Refused { source: Source::Header, message } => error_page(StatusCode::UNAUTHORIZED, None, &message),
    }
}

pub(crate) fn error_page(status: StatusCode, who: Option<(&Approver, Source)>, message: &str) -> Response {
    let content = format!(
        r#"<h2>{}</h2><p id="error" class="flash flash-error">{}</p><p><a href="/reviews">Back to the reviews</a></p>"#,
        escape(status.canonical_reason().unwrap_or("Error")),
        escape(message)
    );
    Page { status, html: console::render("Error", None, who, None, &content), cookies: Vec::new() }.into_response()
}

/// The refusal of a form whose CSRF token does not check.
pub(crate) fn stale_form(who: Option<(&Approver, Source)>) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        who,
        "The form has expired or did not come from this page; reload the page and try again.",
    )
}

fn service_error_page(error: &ServiceError, who: Option<(&Approver, Source)>) -> Response {
    let status = super::http::ApiError(error.clone()).status_and_type().0;
    error_page(status, who, error.message())
}

/// `GET /reviews`.
pub async fn reviews(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let (approver, source) = match authenticate(&service, &headers).await {
        PageAuth::Approver(approver, source) => (approver, source),
        other => return unauthenticated(&service, other, "/reviews", query.again.is_some()),
    };
    let who = Some((&approver, source));
    let listed = service.expire().and_then(|()| {
        Ok((
            service.list_for(&approver, Listing::Pending, 500)?,
            service.list_for(&approver, Listing::Decided, RECENT_DECISIONS)?,
        ))
    });
    let (pending, decided, grants) = match listed.and_then(|(p, d)| Ok((p, d, service.grants_for(&approver, true)?))) {
        Ok(lists) => lists,
        Err(e) => return service_error_page(&e, who),
    };
    let now = unix_now();
    let csrf = service.csrf.issue(&approver_binding(&approver), now);
    let mut content = String::new();
    let _ = write!(content, r#"<section id="pending"><h2>Pending reviews ({})</h2>"#, pending.len());
    if pending.is_empty() {
        content.push_str(r#"<p class="note" id="no-pending">Nothing is waiting for you.</p>"#);
    }
    for review in &pending {
        content.push_str(&review_card(&service, review, &approver, &csrf, now, "list"));
    }
    content.push_str("</section>");
    content.push_str(&grants_section(&grants, &csrf, now));
    content.push_str(&decided_table(&decided));
    let (flash, cookies) = take_flash(&service, &headers);
    Page {
        status: StatusCode::OK,
        html: console::render("Reviews", Some(Section::Reviews), who, flash.as_ref(), &content),
        cookies,
    }
    .into_response()
}

/// `GET /reviews/{id}`.
pub async fn review(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let (approver, source) = match authenticate(&service, &headers).await {
        PageAuth::Approver(approver, source) => (approver, source),
        other => {
            let path = format!("/reviews/{id}");
            let path = safe_return_path(&path).unwrap_or("/reviews");
            return unauthenticated(&service, other, path, query.again.is_some());
        }
    };
    let who = Some((&approver, source));
    let review = match service.expire().and_then(|()| service.review_for(&approver, &id)) {
        Ok(review) => review,
        Err(e) => return service_error_page(&e, who),
    };
    let now = unix_now();
    let csrf = service.csrf.issue(&approver_binding(&approver), now);
    let mut content = review_card(&service, &review, &approver, &csrf, now, "detail");
    content.push_str(&votes_table(&review));
    content.push_str(r#"<p><a href="/reviews">All reviews</a></p>"#);
    let (flash, cookies) = take_flash(&service, &headers);
    Page {
        status: StatusCode::OK,
        html: console::render(&review.id, Some(Section::Reviews), who, flash.as_ref(), &content),
        cookies,
    }
    .into_response()
}

/// Form of `POST /reviews/{id}/decide`.
#[derive(Debug, Deserialize)]
pub struct DecideForm {
    /// CSRF token from the page.
    #[serde(default)]
    csrf: String,
    /// The approver's comment.
    #[serde(default)]
    comment: String,
    /// Present when the Approve button was pressed.
    approve: Option<String>,
    /// Present when "Approve for this session" was pressed.
    approve_session: Option<String>,
    /// Minutes of the session grant.
    #[serde(default)]
    session_minutes: String,
    /// Present when the Deny button was pressed.
    deny: Option<String>,
    /// `detail` to come back to the review's page, else the list.
    #[serde(default)]
    back: String,
}

/// The approver who posted a form of the reviews pages with `csrf`, or the page answered instead:
/// the sign-in for an anonymous or refused poster, the stale-form page for a bad CSRF token.
pub(crate) async fn form_poster(service: &Service, headers: &HeaderMap, csrf: &str) -> Result<Approver, Response> {
    let (approver, source) = match authenticate(service, headers).await {
        PageAuth::Approver(approver, source) => (approver, source),
        other => return Err(unauthenticated(service, other, "/reviews", true)),
    };
    if !service.csrf.check(&approver_binding(&approver), csrf, unix_now()) {
        return Err(stale_form(Some((&approver, source))));
    }
    Ok(approver)
}

/// `POST /reviews/{id}/decide`.
pub async fn decide(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    let approver = match form_poster(&service, &headers, &form.csrf).await {
        Ok(approver) => approver,
        Err(page) => return page,
    };
    let back = if form.back == "detail"
        && id.starts_with("rev_")
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        format!("/reviews/{id}")
    } else {
        "/reviews".to_string()
    };
    let pressed = (form.approve.is_some(), form.approve_session.is_some(), form.deny.is_some());
    let decided = match pressed {
        (true, false, false) => service.decide(&approver, &id, Choice::Approve, &form.comment),
        (false, false, true) => service.decide(&approver, &id, Choice::Deny, &form.comment),
        (false, true, false) => match form.session_minutes.trim().parse::<i64>() {
            Ok(minutes) => service.decide_for_session(&approver, &id, &form.comment, minutes),
            Err(_) => Err(ServiceError::BadRequest("give the session grant's length in whole minutes".into())),
        },
        _ => return redirect_with(&service, &back, &Flash::error("Press one button."), Vec::new()),
    };
    let flash = match decided {
        Ok(Decided::Approved(review)) => match service.store.session_grant_of_review(&review.id) {
            Ok(Some(grant)) => Flash::ok(format!(
                "Approved {} for {} and granted session {} until {} ({}).",
                review.id,
                review.subject,
                grant.session_id,
                crate::service::util::format_utc(grant.expires_at),
                grant.id
            )),
            _ => Flash::ok(format!("Approved {} for {}.", review.id, review.subject)),
        },
        Ok(Decided::Denied(review)) => Flash::ok(format!("Denied {} for {}.", review.id, review.subject)),
        Ok(Decided::AwaitingSecondApprover(review)) => {
            Flash::ok(format!("Your approval of {} is recorded; a second approver is needed.", review.id))
        }
        Err(e) => Flash::error(format!("{id}: {}", e.message())),
    };
    redirect_with(&service, &back, &flash, Vec::new())
}

fn review_card(service: &Service, review: &Review, approver: &Approver, csrf: &str, now: i64, back: &str) -> String {
    let id = escape(&review.id);
    let context = &review.context;
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<article class="review" id="review-{id}"><h3><a href="/reviews/{id}">{id}</a> <span class="status status-{status}">{status}</span></h3><dl>"#,
        status = review.status.as_str()
    );
    let mut row = |label: &str, value: String| {
        let _ = write!(html, "<dt>{}</dt><dd>{value}</dd>", escape(label));
    };
    let issuer = if context.issuer.is_empty() {
        String::new()
    } else {
        format!(r#" <span class="note">({})</span>"#, escape(&context.issuer))
    };
    row("Requester", format!(r#"<b class="requester">{}</b>{issuer}"#, escape(&review.subject)));
    row("Groups", escape(&join_or_dash(&context.groups)));
    row("Role", escape(&review.role));
    if !context.job.is_empty() {
        let job: Vec<String> = context.job.iter().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect();
        row("Job", job.join(", "));
    }
    if let Some(session) = &context.session_id {
        row("Session", format!(r#"<code class="session">{}</code>"#, escape(session)));
    }
    if let Some(agent) = &context.agent {
        let parent = agent.parent.as_deref().map(|p| format!(" (started by <code>{}</code>)", escape(p)));
        row(
            "Agent",
            format!(
                r#"<span class="agent">subagent <code>{}</code>{}</span>"#,
                escape(agent.id.as_deref().unwrap_or("-")),
                parent.unwrap_or_default()
            ),
        );
    }
    if let Some(call) = &context.tool_call {
        let server = call.server_name.as_deref().map(|s| format!(" on MCP server <code>{}</code>", escape(s)));
        row(
            "Tool call",
            format!(
                r#"<span class="tool-call"><b>{}</b> <span class="note">({})</span>{} — <code>{}</code></span>"#,
                escape(&call.name),
                escape(&call.kind),
                server.unwrap_or_default(),
                escape(&call.id)
            ),
        );
        row("Rule", format!(r#"<code class="rule">{}</code>: {}"#, escape(&call.rule), escape(&call.reason)));
    }
    row("Model", format!("<code>{}</code>", escape(or_dash(&context.model))));
    let reasons: Vec<String> = context.reasons.iter().map(|r| format!("<code>{}</code>", escape(r))).collect();
    row("Reasons", if reasons.is_empty() { "-".to_string() } else { reasons.join(" ") });
    row("Tools", escape(&join_or_dash(&context.tools)));
    let max_tokens = context.max_tokens.map(|m| m.to_string()).unwrap_or_else(|| "-".to_string());
    row(
        "Request",
        format!(
            "max_tokens {}, {} bytes{}, request id <code>{}</code>",
            escape(&max_tokens),
            context.body_bytes,
            if context.mcp_servers { ", lists MCP servers" } else { "" },
            escape(&context.request_id)
        ),
    );
    if !context.mcp_server_urls.is_empty() {
        let urls: Vec<String> = context.mcp_server_urls.iter().map(|u| format!("<code>{}</code>", escape(u))).collect();
        row("MCP servers", urls.join("<br>"));
    }
    if context.messages > 0 {
        row(
            "Covers",
            format!(
                r#"<span class="covers">this exact request: {} message{}, system prompt, tools and parameters as sent; any change asks again</span>"#,
                context.messages,
                if context.messages == 1 { "" } else { "s" }
            ),
        );
    }
    let timing = if review.status == Status::Pending && review.expires_at > now {
        format!(
            "waiting {} (since {}; expires in {})",
            format_duration(now - review.created_at),
            console::time_element(review.created_at),
            format_duration(review.expires_at - now)
        )
    } else {
        let when = review.decided_at.unwrap_or(review.expires_at);
        format!(
            "created {}, {} {}",
            console::time_element(review.created_at),
            review.status.as_str(),
            console::time_element(when)
        )
    };
    row("Time", timing);
    let approvers: Vec<&str> = review.approvers().map(|v| v.reviewer.as_str()).collect();
    let progress = format!(
        r#"<span class="progress">{} of {} approval{}{}</span>"#,
        approvers.len(),
        review.approvals_needed(),
        if review.approvals_needed() == 1 { "" } else { "s" },
        if approvers.is_empty() { String::new() } else { format!(" ({})", escape(&approvers.join(", "))) }
    );
    row("Approvals", progress);
    if let Some(denial) = review.denial() {
        row("Denied by", format!("{}: {}", escape(&denial.reviewer), escape(&denial.comment)));
    }
    match service.store.session_grant_of_review(&review.id) {
        Ok(Some(grant)) => {
            let state = match &grant.ended {
                Some((who, at)) => format!("ended by {} at {}", escape(who), console::time_element(*at)),
                None if grant.expires_at > now => "live".to_string(),
                None => "expired".to_string(),
            };
            row(
                "Session grant",
                format!(
                    r#"<span class="session-grant" id="session-grant-{id}">{} — reasons {}; {state}; {} hold(s) answered</span>"#,
                    escape(&grant.describe()),
                    escape(&grant.reasons.join(", ")),
                    grant.holds_covered
                ),
            );
        }
        Ok(None) => {}
        Err(_) => row("Session grant", "unreadable (see the service's log)".to_string()),
    }
    html.push_str("</dl>");
    if let Some(call) = &context.tool_call {
        // Pretty when it parses; shown as sent otherwise. Escaped either way.
        let input = serde_json::from_str::<serde_json::Value>(&call.input)
            .and_then(|value| serde_json::to_string_pretty(&value))
            .unwrap_or_else(|_| call.input.clone());
        let _ = write!(
            html,
            r#"<p class="note">Tool input (masked)</p><pre class="excerpt tool-input" id="tool-input-{id}">{}</pre>"#,
            escape(&input)
        );
    }
    let excerpts = [
        ("system", "System prompt", &context.system_excerpt),
        ("excerpt", "Newest turn", &context.excerpt),
        ("prefill", "Assistant prefill", &context.prefill_excerpt),
    ];
    for (name, label, text) in excerpts {
        if !text.is_empty() {
            let _ = write!(
                html,
                r#"<p class="note">{label}</p><pre class="excerpt" id="{name}-{id}">{}</pre>"#,
                escape(text)
            );
        }
    }
    if Service::is_open(review, now) {
        html.push_str(&decision_form(review, approver, csrf, back, service.max_session_minutes()));
    }
    html.push_str("</article>");
    html
}

fn decision_form(review: &Review, approver: &Approver, csrf: &str, back: &str, max_minutes: i64) -> String {
    let id = escape(&review.id);
    // Identities are issuer + subject.
    if review.votes.iter().any(|v| v.reviewer == approver.subject && v.reviewer_issuer == approver.issuer) {
        return format!(
            r#"<p class="note" id="note-{id}">You approved this request; a second approver must decide.</p>"#
        );
    }
    let own = review.subject == approver.subject && review.context.issuer == approver.issuer;
    let (note, approve_button) = if own {
        (
            format!(
                r#"<p class="note" id="note-{id}">This is your own request: another approver must approve it. You may withdraw it (deny).</p>"#
            ),
            String::new(),
        )
    } else {
        (String::new(), format!(r#"<button type="submit" name="approve" value="1" id="approve-{id}">Approve</button>"#))
    };
    let session_approve = if own { String::new() } else { session_approval(review, max_minutes) };
    format!(
        r#"{note}<form method="post" action="/reviews/{id}/decide" id="decide-{id}">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="back" value="{back}">
<label for="comment-{id}">Comment (required to deny)</label>
<textarea name="comment" id="comment-{id}" rows="2" maxlength="2000"></textarea>
{approve_button}<button type="submit" name="deny" value="1" id="deny-{id}">Deny</button>
{session_approve}</form>"#,
        csrf = escape(csrf),
        back = escape(back)
    )
}

/// "Approve for this session for N minutes": the minutes field and its button, disabled (with
/// why) when the request names no session, has no reasons or its role needs two approvers.
fn session_approval(review: &Review, max_minutes: i64) -> String {
    let id = escape(&review.id);
    let why_not = if review.context.session_id.is_none() {
        Some("This request names no agent session, so it can only be approved alone.")
    } else if review.two_person {
        Some("This role needs two approvers: session grants are not given for it.")
    } else if review.context.reasons.is_empty() {
        Some("This request has no trigger reasons to scope a session grant.")
    } else {
        None
    };
    let default = 30.min(max_minutes).max(1);
    let disabled = if why_not.is_some() { " disabled" } else { "" };
    let note = why_not.map(|why| format!(r#"<p class="note" id="session-note-{id}">{why}</p>"#)).unwrap_or_default();
    format!(
        r#"<fieldset class="session-approval"><legend>Approve for this session</legend>
<p class="note">Also approves later requests of session <code>{session}</code> by <b>{subject}</b> held for {reasons}, without asking, until it ends.</p>
<label for="session-minutes-{id}">Minutes (1–{max_minutes})</label>
<input type="number" name="session_minutes" id="session-minutes-{id}" min="1" max="{max_minutes}" value="{default}"{disabled}>
<button type="submit" name="approve_session" value="1" id="approve-session-{id}"{disabled}>Approve for this session</button>{note}</fieldset>"#,
        session = escape(review.context.session_id.as_deref().unwrap_or("-")),
        subject = escape(&review.subject),
        reasons = escape(&join_or_dash(&review.context.reasons)),
    )
}

fn decided_table(reviews: &[Review]) -> String {
    let mut html = String::from(r#"<section id="decided"><h2>Recent decisions</h2>"#);
    if reviews.is_empty() {
        html.push_str(r#"<p class="note">No decisions yet.</p></section>"#);
        return html;
    }
    html.push_str("<table><thead><tr><th>Review</th><th>Requester</th><th>Role</th><th>Outcome</th><th>By</th><th>Comment</th><th>When</th></tr></thead><tbody>");
    for review in reviews {
        let by: Vec<&str> = review.votes.iter().map(|v| v.reviewer.as_str()).collect();
        let comments: Vec<&str> = review.votes.iter().map(|v| v.comment.as_str()).filter(|c| !c.is_empty()).collect();
        let id = escape(&review.id);
        let _ = write!(
            html,
            r#"<tr id="decision-{id}"><td><a href="/reviews/{id}">{id}</a></td><td>{}</td><td>{}</td><td><span class="status status-{status}">{status}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            escape(&review.subject),
            escape(&review.role),
            escape(&by.join(", ")),
            escape(&comments.join(" / ")),
            console::time_element(review.decided_at.unwrap_or(review.expires_at)),
            status = review.status.as_str()
        );
    }
    html.push_str("</tbody></table></section>");
    html
}

fn votes_table(review: &Review) -> String {
    if review.votes.is_empty() {
        return String::new();
    }
    let mut html = String::from(
        r#"<h3>Votes</h3><table id="votes"><thead><tr><th>Approver</th><th>Decision</th><th>Comment</th><th>When</th></tr></thead><tbody>"#,
    );
    for vote in &review.votes {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&vote.reviewer),
            if vote.approve { "approve" } else { "deny" },
            escape(&vote.comment),
            console::time_element(vote.at)
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// The reviews page's section of live grants, each with an End button (`id="grants"`, rows
/// `id="grant-<id>"`, forms `id="end-<id>"`).
pub fn grants_section(grants: &[SessionGrant], csrf: &str, now: i64) -> String {
    let mut html = String::from(r#"<section id="grants"><h2>Live session grants</h2>"#);
    if grants.is_empty() {
        html.push_str(r#"<p class="note" id="no-grants">No session grant is live.</p></section>"#);
        return html;
    }
    html.push_str(
        "<table><thead><tr><th>Grant</th><th>Caller</th><th>Role</th><th>Session</th><th>Reasons</th>\
         <th>Granted by</th><th>Ends</th><th>Holds answered</th><th></th></tr></thead><tbody>",
    );
    for grant in grants {
        let id = escape(&grant.id);
        let reasons: Vec<String> = grant.reasons.iter().map(|r| format!("<code>{}</code>", escape(r))).collect();
        let _ = write!(
            html,
            r#"<tr id="grant-{id}"><td><a href="/reviews/{review}">{id}</a></td><td>{subject} <span class="note">({issuer})</span></td><td>{role}</td><td><code class="session">{session}</code></td><td>{reasons}</td><td>{by}</td><td>{ends} (in {left})</td><td>{covered}</td><td><form method="post" action="/grants/{id}/end" id="end-{id}"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" id="end-button-{id}">End now</button></form></td></tr>"#,
            review = escape(&grant.review_id),
            subject = escape(&grant.subject),
            issuer = escape(&grant.issuer),
            role = escape(&grant.role),
            session = escape(&grant.session_id),
            reasons = reasons.join(" "),
            by = escape(&grant.granted_by),
            ends = console::time_element(grant.expires_at),
            left = format_duration(grant.expires_at.saturating_sub(now)),
            covered = grant.holds_covered,
            csrf = escape(csrf),
        );
    }
    html.push_str("</tbody></table></section>");
    html
}

/// Form of `POST /grants/{id}/end`.
#[derive(Debug, Deserialize)]
pub struct EndGrantForm {
    /// CSRF token from the page.
    #[serde(default)]
    csrf: String,
}

/// `POST /grants/{id}/end` (the reviews page's End button).
pub async fn end_grant_form(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<EndGrantForm>,
) -> Response {
    let approver = match form_poster(&service, &headers, &form.csrf).await {
        Ok(approver) => approver,
        Err(page) => return page,
    };
    let flash = match service.end_grant(&approver, &id) {
        Ok(grant) => Flash::ok(format!("Ended {} (session {}, {}).", grant.id, grant.session_id, grant.subject)),
        Err(e) => Flash::error(format!("{id}: {}", e.message())),
    };
    redirect_with(&service, "/reviews#grants", &flash, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_messages_round_trip_through_their_cookie() {
        for flash in [Flash::ok("Approved rev_1 for alice."), Flash::error("a; b=c, \"d\" ü")] {
            let encoded = flash.encode();
            assert!(encoded.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            assert_eq!(Flash::decode(&encoded), Some(flash));
        }
        assert_eq!(Flash::decode("!!"), None);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; warden_session=tok.en.x; b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("tok.en.x"));
        assert_eq!(cookie(&headers, FLASH_COOKIE), None);
    }
}

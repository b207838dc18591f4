//! Browser sign-ins in progress, and how a finished one completes.
//!
//! A browser sign-in (`warden login`, the device flow, the console) starts at the service,
//! which remembers it under a random login id ([`SignIns::begin`]), sends the browser to the
//! organisation's identity provider (OIDC or SAML) with that id as its state / RelayState, and —
//! once the provider's answer is verified into a [`SignedIn`] — calls [`SignIns::complete`],
//! which ends the sign-in the way it began:
//!
//! - **CLI** (RFC 6749 §4.1 + RFC 7636): a one-time authorization code, valid
//!   [`CODE_LIFETIME_SECONDS`], bound to the client id, the loopback `redirect_uri` and the PKCE
//!   challenge → [`Completion::Redirect`] to `redirect_uri?code=…&state=…`;
//!   [`SignIns::redeem_code`] hands the identity out once, to the holder of the PKCE verifier;
//! - **device flow** (RFC 8628): the device code is marked approved → [`Completion::Page`];
//!   the device's next poll ([`SignIns::poll_device`]) receives the identity, once;
//! - **console**: a one-time ticket bound to the browser that started the sign-in →
//!   [`Completion::Redirect`] to `/login/finish?ticket=…`, where the console sets its session
//!   on a same-site hop ([`SignIns::take_console`]).
//!
//! Secrets (codes, device codes, tickets) are 32 random bytes, base64url; they are kept only as
//! SHA-256 digests, so a lookup neither stores nor compares the secret itself. Login ids are
//! 16 random bytes (they travel in URLs as the provider's `state`).
//!
//! Limits: everything is in memory (a restart forgets sign-ins in progress: people start again;
//! refresh tokens are in SQLite, [`super::refresh`]). Each table holds at most
//! [`MAX_IN_PROGRESS`] entries; expired ones are swept on every insert, and a full table refuses
//! new sign-ins instead of growing. Pending logins live [`LOGIN_LIFETIME_SECONDS`], device codes
//! [`DEVICE_LIFETIME_SECONDS`]. Wrong user codes typed on `/device` are limited to
//! [`MAX_WRONG_USER_CODES_PER_MINUTE`] for the whole service (20⁸ ≈ 2.6 × 10¹⁰ codes: guessing
//! one at that rate is hopeless; the price is that a flood of wrong guesses makes honest people
//! wait a minute). A code redeemed twice is refused the second time (the tokens issued the first
//! time stay valid).

use super::oauth::{OAuthError, OAuthErrorCode};
use super::SignedIn;
use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use crate::core::hex::hex;

/// The public OAuth client id of the `warden` CLI (no secret: PKCE protects its codes).
pub const CLI_CLIENT_ID: &str = "warden-cli";
/// How long a sign-in may take, from its start to the identity provider's answer.
pub const LOGIN_LIFETIME_SECONDS: i64 = 600;
/// How long a CLI's authorization code may wait to be redeemed.
pub const CODE_LIFETIME_SECONDS: i64 = 60;
/// How long a device code (and its user code) lives.
pub const DEVICE_LIFETIME_SECONDS: i64 = 600;
/// The device's polling interval at first (RFC 8628 §3.2), raised by 5 s on every `slow_down`.
pub const DEVICE_POLL_SECONDS: i64 = 5;
/// How long a console ticket may wait for its same-site hop.
pub const TICKET_LIFETIME_SECONDS: i64 = 60;
/// Most entries of each kind (pending logins, codes, device codes, tickets) kept at once.
pub const MAX_IN_PROGRESS: usize = 10_000;
/// Wrong user codes accepted per minute, service-wide, before `/device` asks people to wait.
pub const MAX_WRONG_USER_CODES_PER_MINUTE: u32 = 30;
/// Letters of user codes: consonants only (no vowels, so no words; no `0/O`, `1/I/L` confusion
/// beyond what is excluded; RFC 8628 §6.1).
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// How long an expired device code is still remembered, so its poll gets `expired_token`.
const EXPIRED_DEVICE_GRACE_SECONDS: i64 = 600;

/// How a completed sign-in answers the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Redirect the browser here (the CLI's loopback address with a one-time code, or a page
    /// of the console).
    Redirect(String),
    /// Show this message as a page ("you can close this window").
    Page(String),
}

/// Why a sign-in could not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    /// No sign-in in progress has this id (unknown, already used or expired).
    UnknownLogin,
    /// The sign-in has not been sent to this source (or to none yet).
    WrongSource,
    /// Too many sign-ins are in progress.
    Busy,
    /// No device is waiting for this user code.
    UnknownUserCode,
    /// Too many wrong user codes were typed lately.
    TooManyGuesses,
    /// The console ticket is unknown, used, expired, or was started in another browser.
    UnknownTicket,
    /// The operating system's random source failed.
    Random(String),
}

impl fmt::Display for SignInError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownLogin => write!(f, "this sign-in is unknown, already used or expired; start again"),
            Self::WrongSource => write!(f, "this sign-in was not sent to that identity provider; start again"),
            Self::Busy => write!(f, "too many sign-ins are in progress; try again in a few minutes"),
            Self::UnknownUserCode => write!(f, "no device is waiting for this code; check it and try again"),
            Self::TooManyGuesses => write!(f, "too many wrong codes were typed; wait a minute and try again"),
            Self::UnknownTicket => {
                write!(f, "this sign-in is unknown, already used, expired or from another browser; sign in again")
            }
            Self::Random(why) => write!(f, "{why}"),
        }
    }
}

/// What the CLI asked for at `/oauth/authorize` (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliRequest {
    /// Always [`CLI_CLIENT_ID`].
    pub client_id: String,
    /// A loopback redirect ([`check_loopback_redirect`]).
    pub redirect_uri: String,
    /// The PKCE S256 challenge ([`is_pkce_challenge`]).
    pub code_challenge: String,
    /// The CLI's `state`, returned unchanged.
    pub state: String,
}

/// How a sign-in began, hence how it completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginKind {
    /// `warden login` with a loopback redirect.
    Cli(CliRequest),
    /// A device's user code was typed on `/device`.
    Device {
        /// Digest of the device code.
        device_key: String,
    },
    /// The console's "Sign in with …".
    Console {
        /// The console page to return to (already checked to be one of ours).
        next: String,
        /// Digest of the browser's sign-in cookie nonce: the ticket only works in this browser.
        browser: String,
    },
}

/// What the service sent to the organisation's OIDC provider for a sign-in.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// The provider's `token_service.oidc[].name`.
    pub source: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier the service redeems the provider's code with (a secret).
    pub verifier: String,
}

impl fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamRequest").field("source", &self.source).finish_non_exhaustive()
    }
}

/// A started device authorization (RFC 8628 §3.2).
pub struct DeviceStart {
    /// The device code (a secret the device polls with).
    pub device_code: String,
    /// The code people type: `XXXX-XXXX`.
    pub user_code: String,
    /// Seconds until both expire.
    pub expires_in: i64,
    /// Seconds between polls.
    pub interval: i64,
}

impl fmt::Debug for DeviceStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceStart").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

struct PendingLogin {
    kind: LoginKind,
    upstream: Option<UpstreamRequest>,
    expires_at: i64,
}

struct IssuedCode {
    who: SignedIn,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    expires_at: i64,
}

enum DeviceStatus {
    Pending,
    Approved(Box<SignedIn>),
    Denied,
}

struct DeviceGrant {
    user_code: String,
    client_id: String,
    expires_at: i64,
    interval: i64,
    last_poll: Option<i64>,
    status: DeviceStatus,
}

struct ConsoleTicket {
    who: SignedIn,
    next: String,
    browser: String,
    expires_at: i64,
}

#[derive(Default)]
struct Tables {
    logins: HashMap<String, PendingLogin>,
    codes: HashMap<String, IssuedCode>,
    devices: HashMap<String, DeviceGrant>,
    /// User code (normalised, `XXXXXXXX`) → device key.
    user_codes: HashMap<String, String>,
    tickets: HashMap<String, ConsoleTicket>,
    /// Start of the current minute of wrong user codes, and their count.
    wrong_guesses: (i64, u32),
}

impl Tables {
    fn sweep(&mut self, now: i64) {
        self.logins.retain(|_, login| login.expires_at > now);
        self.codes.retain(|_, code| code.expires_at > now);
        self.tickets.retain(|_, ticket| ticket.expires_at > now);
        self.devices.retain(|_, device| device.expires_at.saturating_add(EXPIRED_DEVICE_GRACE_SECONDS) > now);
        let devices = &self.devices;
        self.user_codes.retain(|_, key| devices.get(key).is_some_and(|d| d.expires_at > now));
    }
}

/// Sign-ins in progress.
#[derive(Default)]
pub struct SignIns {
    tables: Mutex<Tables>,
}

impl fmt::Debug for SignIns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignIns")
    }
}

/// A new secret: 32 random bytes, base64url.
pub fn new_secret() -> Result<String, SignInError> {
    let bytes = super::super::util::random_bytes::<32>().map_err(SignInError::Random)?;
    Base64UrlSafeNoPadding::encode_to_string(bytes).map_err(|e| SignInError::Random(e.to_string()))
}

/// The key a secret is stored under: hex SHA-256.
pub fn digest(secret: &str) -> String {
    hex(&hmac_sha256::Hash::hash(secret.as_bytes()))
}

fn new_login_id() -> Result<String, SignInError> {
    super::super::util::random_bytes::<16>().map(|b| hex(&b)).map_err(SignInError::Random)
}

fn new_user_code() -> Result<String, SignInError> {
    // 256 is a multiple of 20 minus 16: drop bytes ≥ 240 so every letter is equally likely.
    let mut code = String::with_capacity(8);
    while code.len() < 8 {
        for byte in super::super::util::random_bytes::<16>().map_err(SignInError::Random)? {
            if code.len() < 8 && byte < 240 {
                if let Some(&letter) = USER_CODE_ALPHABET.get(usize::from(byte % 20)) {
                    code.push(char::from(letter));
                }
            }
        }
    }
    Ok(code)
}

/// A user code as people type it (`wdjb-mjht`, `WDJB MJHT`) in its stored form (`WDJBMJHT`);
/// `None` when it cannot be one.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String =
        typed.chars().filter(|c| !matches!(c, '-' | ' ' | '\t')).map(|c| c.to_ascii_uppercase()).collect();
    (code.len() == 8 && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

/// The PKCE S256 challenge of `verifier`: base64url(SHA-256(verifier)) (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    Base64UrlSafeNoPadding::encode_to_string(hmac_sha256::Hash::hash(verifier.as_bytes())).unwrap_or_default()
}

/// Whether `verifier` is a PKCE code verifier: 43–128 unreserved characters (RFC 7636 §4.1).
pub fn is_pkce_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `challenge` is an S256 challenge: 43 base64url characters (a SHA-256 digest).
pub fn is_pkce_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Whether `verifier` answers `challenge`, compared in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let expected = pkce_challenge(verifier);
    is_pkce_verifier(verifier)
        && expected.len() == challenge.len()
        && expected.bytes().zip(challenge.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Checks that `uri` is a loopback redirect a native app may use (RFC 8252 §7.3):
/// `http://127.0.0.1:<port><path>`, `http://[::1]:<port><path>` or `http://localhost:<port><path>`,
/// the port 1–65535, the path empty or `/` followed by letters, digits and `/ - . _ ~`; no user
/// info, query or fragment. Anything else could send the code to another host.
pub fn check_loopback_redirect(uri: &str) -> Result<(), &'static str> {
    let rest = uri.strip_prefix("http://").ok_or("the redirect_uri must start with http:// (a loopback address)")?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (rest.get(..slash).unwrap_or_default(), rest.get(slash..).unwrap_or_default()),
        None => (rest, ""),
    };
    let port = ["127.0.0.1:", "[::1]:", "localhost:"]
        .iter()
        .find_map(|host| authority.strip_prefix(host))
        .ok_or("the redirect_uri's host must be 127.0.0.1, [::1] or localhost, with a port")?;
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p));
    if !port_ok {
        return Err("the redirect_uri's port must be a number from 1 to 65535");
    }
    let path_ok = path.len() <= 256
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~'))
        && !path.contains("/..");
    if !path_ok {
        return Err("the redirect_uri's path may hold only letters, digits and / - . _ ~ (no query or fragment)");
    }
    Ok(())
}

/// `value` percent-encoded for a URL query (everything but RFC 3986's unreserved characters).
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn oauth(code: OAuthErrorCode, description: &str) -> OAuthError {
    OAuthError::new(code, description)
}

impl SignIns {
    fn lock(&self) -> Result<MutexGuard<'_, Tables>, SignInError> {
        self.tables.lock().map_err(|_| SignInError::Random("the sign-in table's lock is poisoned".to_string()))
    }

    /// Starts a sign-in of `kind` at `now`; its login id.
    pub fn begin(&self, kind: LoginKind, now: i64) -> Result<String, SignInError> {
        let id = new_login_id()?;
        let mut tables = self.lock()?;
        tables.sweep(now);
        if tables.logins.len() >= MAX_IN_PROGRESS {
            return Err(SignInError::Busy);
        }
        let login = PendingLogin { kind, upstream: None, expires_at: now.saturating_add(LOGIN_LIFETIME_SECONDS) };
        tables.logins.insert(id.clone(), login);
        Ok(id)
    }

    /// How sign-in `login_id` began, while it is in progress.
    pub fn kind(&self, login_id: &str, now: i64) -> Result<LoginKind, SignInError> {
        let tables = self.lock()?;
        let login = tables.logins.get(login_id).filter(|l| l.expires_at > now).ok_or(SignInError::UnknownLogin)?;
        Ok(login.kind.clone())
    }

    /// Sends sign-in `login_id` to the OIDC provider `source`: a fresh nonce and PKCE verifier
    /// (replacing those of an earlier choice, so only the latest provider answer is accepted).
    pub fn send_upstream(&self, login_id: &str, source: &str, now: i64) -> Result<UpstreamRequest, SignInError> {
        let request = UpstreamRequest { source: source.to_string(), nonce: new_secret()?, verifier: new_secret()? };
        let mut tables = self.lock()?;
        let login = tables.logins.get_mut(login_id).filter(|l| l.expires_at > now).ok_or(SignInError::UnknownLogin)?;
        login.upstream = Some(request.clone());
        Ok(request)
    }

    /// What was sent upstream for sign-in `login_id`, which the provider `source` answers.
    pub fn upstream(&self, login_id: &str, now: i64) -> Result<UpstreamRequest, SignInError> {
        let tables = self.lock()?;
        let login = tables.logins.get(login_id).filter(|l| l.expires_at > now).ok_or(SignInError::UnknownLogin)?;
        login.upstream.clone().ok_or(SignInError::WrongSource)
    }

    /// Completes the sign-in `login_id` for `who`; each login id completes at most once.
    pub fn complete(&self, login_id: &str, who: SignedIn) -> Result<Completion, SignInError> {
        self.complete_at(login_id, who, super::super::util::unix_now())
    }

    /// [`SignIns::complete`] at `now`.
    pub fn complete_at(&self, login_id: &str, who: SignedIn, now: i64) -> Result<Completion, SignInError> {
        let secret = new_secret()?;
        let mut tables = self.lock()?;
        tables.sweep(now);
        let login = tables.logins.remove(login_id).ok_or(SignInError::UnknownLogin)?;
        match login.kind {
            LoginKind::Cli(request) => {
                if tables.codes.len() >= MAX_IN_PROGRESS {
                    return Err(SignInError::Busy);
                }
                let location = format!(
                    "{}?code={}&state={}",
                    request.redirect_uri,
                    query_escape(&secret),
                    query_escape(&request.state)
                );
                let code = IssuedCode {
                    who,
                    client_id: request.client_id,
                    redirect_uri: request.redirect_uri,
                    code_challenge: request.code_challenge,
                    expires_at: now.saturating_add(CODE_LIFETIME_SECONDS),
                };
                tables.codes.insert(digest(&secret), code);
                Ok(Completion::Redirect(location))
            }
            LoginKind::Device { device_key } => {
                let device = tables.devices.get_mut(&device_key).filter(|d| d.expires_at > now);
                let device = device.ok_or(SignInError::UnknownLogin)?;
                if !matches!(device.status, DeviceStatus::Pending) {
                    return Err(SignInError::UnknownLogin);
                }
                device.status = DeviceStatus::Approved(Box::new(who));
                let user_code = device.user_code.clone();
                tables.user_codes.remove(&user_code);
                Ok(Completion::Page("Signed in. Return to your terminal: it continues by itself.".to_string()))
            }
            LoginKind::Console { next, browser } => {
                if tables.tickets.len() >= MAX_IN_PROGRESS {
                    return Err(SignInError::Busy);
                }
                let ticket =
                    ConsoleTicket { who, next, browser, expires_at: now.saturating_add(TICKET_LIFETIME_SECONDS) };
                tables.tickets.insert(digest(&secret), ticket);
                Ok(Completion::Redirect(format!("/login/finish?ticket={}", query_escape(&secret))))
            }
        }
    }

    /// Ends the sign-in `login_id` without an identity (the provider refused, or the person
    /// cancelled): the CLI's redirect gets `error=access_denied`, a device's poll gets
    /// `access_denied`, the console shows `message`.
    pub fn fail(&self, login_id: &str, message: &str, now: i64) -> Result<Completion, SignInError> {
        let mut tables = self.lock()?;
        let login = tables.logins.remove(login_id).filter(|l| l.expires_at > now).ok_or(SignInError::UnknownLogin)?;
        Ok(match login.kind {
            LoginKind::Cli(request) => Completion::Redirect(format!(
                "{}?error=access_denied&error_description={}&state={}",
                request.redirect_uri,
                query_escape(message),
                query_escape(&request.state)
            )),
            LoginKind::Device { device_key } => {
                if let Some(device) = tables.devices.get_mut(&device_key) {
                    if matches!(device.status, DeviceStatus::Pending) {
                        device.status = DeviceStatus::Denied;
                    }
                }
                Completion::Page(message.to_string())
            }
            LoginKind::Console { .. } => Completion::Page(message.to_string()),
        })
    }

    /// Redeems a CLI's authorization code (RFC 6749 §4.1.3, RFC 7636 §4.6): the code is used up
    /// by this call whatever its outcome; it must be unexpired, issued to `client_id` for
    /// `redirect_uri`, and `verifier` must answer its challenge.
    pub fn redeem_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
        now: i64,
    ) -> Result<SignedIn, OAuthError> {
        let mut tables = self.lock().map_err(|e| oauth(OAuthErrorCode::ServerError, &e.to_string()))?;
        let issued = tables.codes.remove(&digest(code));
        let issued = issued.filter(|c| c.expires_at > now).ok_or_else(|| {
            oauth(OAuthErrorCode::InvalidGrant, "the authorization code is unknown, already used or expired")
        })?;
        if issued.client_id != client_id {
            return Err(oauth(OAuthErrorCode::InvalidGrant, "the authorization code was issued to another client"));
        }
        if issued.redirect_uri != redirect_uri {
            return Err(oauth(OAuthErrorCode::InvalidGrant, "redirect_uri differs from the authorization request's"));
        }
        if !pkce_matches(verifier, &issued.code_challenge) {
            return Err(oauth(OAuthErrorCode::InvalidGrant, "code_verifier does not match the code_challenge"));
        }
        Ok(issued.who)
    }

    /// Starts a device authorization for `client_id` (RFC 8628 §3.1).
    pub fn start_device(&self, client_id: &str, now: i64) -> Result<DeviceStart, SignInError> {
        let device_code = new_secret()?;
        let mut tables = self.lock()?;
        tables.sweep(now);
        if tables.devices.len() >= MAX_IN_PROGRESS {
            return Err(SignInError::Busy);
        }
        let user_code = loop {
            let candidate = new_user_code()?;
            if !tables.user_codes.contains_key(&candidate) {
                break candidate;
            }
        };
        let key = digest(&device_code);
        tables.user_codes.insert(user_code.clone(), key.clone());
        let grant = DeviceGrant {
            user_code: user_code.clone(),
            client_id: client_id.to_string(),
            expires_at: now.saturating_add(DEVICE_LIFETIME_SECONDS),
            interval: DEVICE_POLL_SECONDS,
            last_poll: None,
            status: DeviceStatus::Pending,
        };
        tables.devices.insert(key, grant);
        let shown = format!("{}-{}", user_code.get(..4).unwrap_or_default(), user_code.get(4..).unwrap_or_default());
        Ok(DeviceStart {
            device_code,
            user_code: shown,
            expires_in: DEVICE_LIFETIME_SECONDS,
            interval: DEVICE_POLL_SECONDS,
        })
    }

    /// The device waiting for the user code `typed`, as a new sign-in of kind
    /// [`LoginKind::Device`]; wrong codes count against [`MAX_WRONG_USER_CODES_PER_MINUTE`]
    /// (checked before the code is even looked up).
    pub fn enter_user_code(&self, typed: &str, now: i64) -> Result<String, SignInError> {
        let device_key = {
            let mut tables = self.lock()?;
            let minute = now.div_euclid(60);
            if tables.wrong_guesses.0 != minute {
                tables.wrong_guesses = (minute, 0);
            }
            if tables.wrong_guesses.1 >= MAX_WRONG_USER_CODES_PER_MINUTE {
                return Err(SignInError::TooManyGuesses);
            }
            let found = normalize_user_code(typed)
                .and_then(|code| tables.user_codes.get(&code).cloned())
                .filter(|key| tables.devices.get(key).is_some_and(|d| d.expires_at > now));
            match found {
                Some(key) => key,
                None => {
                    tables.wrong_guesses.1 = tables.wrong_guesses.1.saturating_add(1);
                    return Err(SignInError::UnknownUserCode);
                }
            }
        };
        self.begin(LoginKind::Device { device_key }, now)
    }

    /// A device's poll (RFC 8628 §3.4–3.5): the identity once approved (then the device code is
    /// used up), else `authorization_pending`, `slow_down` (polled sooner than the interval,
    /// which grows by 5 s), `access_denied` or `expired_token`.
    pub fn poll_device(&self, device_code: &str, client_id: &str, now: i64) -> Result<SignedIn, OAuthError> {
        let mut tables = self.lock().map_err(|e| oauth(OAuthErrorCode::ServerError, &e.to_string()))?;
        let key = digest(device_code);
        let device = tables
            .devices
            .get_mut(&key)
            .ok_or_else(|| oauth(OAuthErrorCode::InvalidGrant, "the device code is unknown or already used"))?;
        if device.client_id != client_id {
            return Err(oauth(OAuthErrorCode::InvalidGrant, "the device code was issued to another client"));
        }
        if device.expires_at <= now {
            return Err(oauth(OAuthErrorCode::ExpiredToken, "the device code expired; start `warden login` again"));
        }
        let too_soon = device.last_poll.is_some_and(|last| now < last.saturating_add(device.interval));
        device.last_poll = Some(now);
        if too_soon {
            device.interval = device.interval.saturating_add(5);
            return Err(oauth(OAuthErrorCode::SlowDown, &format!("poll every {} seconds", device.interval)));
        }
        match device.status {
            DeviceStatus::Pending => {
                Err(oauth(OAuthErrorCode::AuthorizationPending, "the sign-in in the browser is not finished yet"))
            }
            DeviceStatus::Denied => {
                tables.devices.remove(&key);
                Err(oauth(OAuthErrorCode::AccessDenied, "the sign-in was refused"))
            }
            DeviceStatus::Approved(_) => match tables.devices.remove(&key).map(|d| d.status) {
                Some(DeviceStatus::Approved(who)) => Ok(*who),
                _ => Err(oauth(OAuthErrorCode::ServerError, "the device grant vanished")),
            },
        }
    }

    /// Takes the console ticket `ticket` in the browser whose sign-in nonce digests to
    /// `browser`: the identity and the page to return to, once.
    pub fn take_console(&self, ticket: &str, browser: &str, now: i64) -> Result<(SignedIn, String), SignInError> {
        let mut tables = self.lock()?;
        let key = digest(ticket);
        let valid = tables.tickets.get(&key).is_some_and(|t| t.expires_at > now && t.browser == browser);
        if !valid {
            return Err(SignInError::UnknownTicket);
        }
        let taken = tables.tickets.remove(&key).ok_or(SignInError::UnknownTicket)?;
        Ok((taken.who, taken.next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tokens::test_identities::alice;

    const NOW: i64 = 1_800_000_000;
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn cli(redirect_uri: &str) -> LoginKind {
        LoginKind::Cli(CliRequest {
            client_id: CLI_CLIENT_ID.into(),
            redirect_uri: redirect_uri.into(),
            code_challenge: pkce_challenge(VERIFIER),
            state: "st&te".into(),
        })
    }

    /// Signs in through the CLI flow; the code from the redirect.
    fn cli_code(sign_ins: &SignIns, redirect_uri: &str) -> String {
        let login = sign_ins.begin(cli(redirect_uri), NOW).unwrap();
        let Completion::Redirect(location) = sign_ins.complete_at(&login, alice(), NOW + 5).unwrap() else {
            panic!("the CLI flow redirects")
        };
        let query = location.strip_prefix(&format!("{redirect_uri}?")).unwrap();
        assert!(query.ends_with("&state=st%26te"), "{query}");
        query.strip_prefix("code=").unwrap().split('&').next().unwrap().to_string()
    }

    #[test]
    fn the_pkce_challenge_is_rfc_7636s_example() {
        assert_eq!(pkce_challenge(VERIFIER), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(pkce_matches(VERIFIER, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(is_pkce_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_pkce_challenge("plain-text-challenge"));
        assert!(!is_pkce_verifier("short"), "fewer than 43 characters");
        assert!(!is_pkce_verifier(&"a".repeat(129)));
        assert!(!is_pkce_verifier(&format!("{}+", "a".repeat(43))), "only unreserved characters");
    }

    #[test]
    fn only_loopback_redirects_are_accepted() {
        for good in [
            "http://127.0.0.1:53682/callback",
            "http://localhost:8080",
            "http://[::1]:1/cb",
            "http://127.0.0.1:65535/a/b_c-d.e~f",
        ] {
            assert_eq!(check_loopback_redirect(good), Ok(()), "{good}");
        }
        for bad in [
            "http://127.0.0.1.evil.com:80/cb",
            "http://127.0.0.1.evil.com/cb",
            "http://localhost@evil.com:80/cb",
            "http://localhost:80@evil.com/cb",
            "http://evil.com@127.0.0.1:80/cb",
            "https://127.0.0.1:8080/cb",
            "http://example.com:8080/cb",
            "http://10.0.0.1:8080/cb",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:65536/cb",
            "http://127.0.0.1:8080/cb?next=x",
            "http://127.0.0.1:8080/cb#frag",
            "http://127.0.0.1:8080/../cb",
            "http://127.0.0.1:8080\\@evil.com/cb",
            "http://127.0.0.1:+80/cb",
            "HTTP://127.0.0.1:80/cb",
            "",
        ] {
            assert!(check_loopback_redirect(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_code_is_redeemed_once_by_the_holder_of_the_verifier() {
        let sign_ins = SignIns::default();
        let redirect = "http://127.0.0.1:5000/cb";
        let code = cli_code(&sign_ins, redirect);
        assert_eq!(sign_ins.redeem_code(&code, CLI_CLIENT_ID, redirect, VERIFIER, NOW + 10).unwrap(), alice());
        let again = sign_ins.redeem_code(&code, CLI_CLIENT_ID, redirect, VERIFIER, NOW + 11).unwrap_err();
        assert_eq!(again.code, OAuthErrorCode::InvalidGrant);
    }

    #[test]
    fn a_code_is_bound_to_its_verifier_client_and_redirect_and_spent_by_a_wrong_try() {
        let sign_ins = SignIns::default();
        let redirect = "http://127.0.0.1:5000/cb";
        let wrong = [
            (CLI_CLIENT_ID, redirect, "x".repeat(43)),
            ("other-client", redirect, VERIFIER.to_string()),
            (CLI_CLIENT_ID, "http://127.0.0.1:5001/cb", VERIFIER.to_string()),
        ];
        for (client, uri, verifier) in wrong {
            let code = cli_code(&sign_ins, redirect);
            let error = sign_ins.redeem_code(&code, client, uri, &verifier, NOW + 10).unwrap_err();
            assert_eq!(error.code, OAuthErrorCode::InvalidGrant, "{client} {uri}");
            let retry = sign_ins.redeem_code(&code, CLI_CLIENT_ID, redirect, VERIFIER, NOW + 10).unwrap_err();
            assert_eq!(retry.code, OAuthErrorCode::InvalidGrant, "a failed try uses the code up");
        }
    }

    #[test]
    fn a_code_expires_after_sixty_seconds() {
        let sign_ins = SignIns::default();
        let redirect = "http://localhost:5000/cb";
        let code = cli_code(&sign_ins, redirect);
        let late = NOW + 5 + CODE_LIFETIME_SECONDS;
        assert_eq!(
            sign_ins.redeem_code(&code, CLI_CLIENT_ID, redirect, VERIFIER, late).unwrap_err().code,
            OAuthErrorCode::InvalidGrant
        );
    }

    #[test]
    fn a_login_completes_once_and_not_after_it_expired() {
        let sign_ins = SignIns::default();
        let login = sign_ins.begin(cli("http://127.0.0.1:5000/cb"), NOW).unwrap();
        assert!(sign_ins.complete_at(&login, alice(), NOW + 1).is_ok());
        assert_eq!(sign_ins.complete_at(&login, alice(), NOW + 2), Err(SignInError::UnknownLogin));
        let old = sign_ins.begin(cli("http://127.0.0.1:5000/cb"), NOW).unwrap();
        let _ = sign_ins.begin(cli("http://127.0.0.1:5000/cb"), NOW + LOGIN_LIFETIME_SECONDS).unwrap();
        assert_eq!(sign_ins.complete_at(&old, alice(), NOW + LOGIN_LIFETIME_SECONDS), Err(SignInError::UnknownLogin));
    }

    #[test]
    fn the_upstream_request_is_the_latest_one_sent() {
        let sign_ins = SignIns::default();
        let login = sign_ins.begin(cli("http://127.0.0.1:5000/cb"), NOW).unwrap();
        assert_eq!(sign_ins.upstream(&login, NOW), Err(SignInError::WrongSource));
        let first = sign_ins.send_upstream(&login, "okta", NOW).unwrap();
        let second = sign_ins.send_upstream(&login, "google", NOW).unwrap();
        assert_ne!(first.nonce, second.nonce);
        assert_eq!(sign_ins.upstream(&login, NOW).unwrap(), second);
        assert!(is_pkce_verifier(&second.verifier));
    }

    #[test]
    fn a_refused_cli_sign_in_redirects_with_access_denied_and_the_state() {
        let sign_ins = SignIns::default();
        let login = sign_ins.begin(cli("http://127.0.0.1:5000/cb"), NOW).unwrap();
        let completion = sign_ins.fail(&login, "no", NOW).unwrap();
        assert_eq!(
            completion,
            Completion::Redirect(
                "http://127.0.0.1:5000/cb?error=access_denied&error_description=no&state=st%26te".into()
            )
        );
    }

    fn device(sign_ins: &SignIns) -> DeviceStart {
        sign_ins.start_device(CLI_CLIENT_ID, NOW).unwrap()
    }

    #[test]
    fn user_codes_are_eight_unambiguous_letters_in_two_groups() {
        let sign_ins = SignIns::default();
        for _ in 0..50 {
            let start = device(&sign_ins);
            let (a, b) = start.user_code.split_once('-').unwrap();
            assert_eq!((a.len(), b.len()), (4, 4));
            assert!(start.user_code.bytes().all(|c| c == b'-' || USER_CODE_ALPHABET.contains(&c)));
            assert!(!start.user_code.contains(['A', 'E', 'I', 'O', 'U', '0', '1']));
        }
        assert_eq!(normalize_user_code("wdjb-mjht").as_deref(), Some("WDJBMJHT"));
        assert_eq!(normalize_user_code(" WDJB MJHT "), Some("WDJBMJHT".to_string()));
        assert_eq!(normalize_user_code("WDJB-MJH"), None);
        assert_eq!(normalize_user_code("AEIO-UAEI"), None);
    }

    #[test]
    fn a_device_polls_pending_then_slow_down_then_receives_the_identity_once() {
        let sign_ins = SignIns::default();
        let start = device(&sign_ins);
        let poll = |at: i64| sign_ins.poll_device(&start.device_code, CLI_CLIENT_ID, at);
        assert_eq!(poll(NOW).unwrap_err().code, OAuthErrorCode::AuthorizationPending);
        assert_eq!(poll(NOW + 2).unwrap_err().code, OAuthErrorCode::SlowDown);
        assert_eq!(poll(NOW + 9).unwrap_err().code, OAuthErrorCode::SlowDown, "the interval grew to 10 s");
        assert_eq!(poll(NOW + 19).unwrap_err().code, OAuthErrorCode::SlowDown, "and then to 20 s");
        assert_eq!(poll(NOW + 39).unwrap_err().code, OAuthErrorCode::AuthorizationPending);
        let login = sign_ins.enter_user_code(&start.user_code.to_lowercase(), NOW + 40).unwrap();
        assert!(matches!(sign_ins.complete_at(&login, alice(), NOW + 41).unwrap(), Completion::Page(_)));
        assert_eq!(poll(NOW + 59).unwrap(), alice());
        assert_eq!(poll(NOW + 80).unwrap_err().code, OAuthErrorCode::InvalidGrant, "used up");
    }

    #[test]
    fn a_device_code_expires_denies_and_belongs_to_its_client() {
        let sign_ins = SignIns::default();
        let start = device(&sign_ins);
        assert_eq!(
            sign_ins.poll_device(&start.device_code, "other", NOW).unwrap_err().code,
            OAuthErrorCode::InvalidGrant
        );
        let late = NOW + DEVICE_LIFETIME_SECONDS;
        assert_eq!(
            sign_ins.poll_device(&start.device_code, CLI_CLIENT_ID, late).unwrap_err().code,
            OAuthErrorCode::ExpiredToken
        );
        assert_eq!(sign_ins.enter_user_code(&start.user_code, late), Err(SignInError::UnknownUserCode));

        let refused = device(&sign_ins);
        let login = sign_ins.enter_user_code(&refused.user_code, NOW).unwrap();
        assert!(sign_ins.fail(&login, "cancelled", NOW).is_ok());
        assert_eq!(
            sign_ins.poll_device(&refused.device_code, CLI_CLIENT_ID, NOW).unwrap_err().code,
            OAuthErrorCode::AccessDenied
        );
    }

    #[test]
    fn an_approved_user_code_cannot_be_entered_again() {
        let sign_ins = SignIns::default();
        let start = device(&sign_ins);
        let login = sign_ins.enter_user_code(&start.user_code, NOW).unwrap();
        sign_ins.complete_at(&login, alice(), NOW).unwrap();
        assert_eq!(sign_ins.enter_user_code(&start.user_code, NOW), Err(SignInError::UnknownUserCode));
    }

    #[test]
    fn wrong_user_codes_are_limited_per_minute_even_before_a_right_one() {
        let sign_ins = SignIns::default();
        let start = device(&sign_ins);
        for _ in 0..MAX_WRONG_USER_CODES_PER_MINUTE {
            assert_eq!(sign_ins.enter_user_code("BBBB-BBBB", NOW), Err(SignInError::UnknownUserCode));
        }
        assert_eq!(sign_ins.enter_user_code(&start.user_code, NOW + 1), Err(SignInError::TooManyGuesses));
        assert_eq!(sign_ins.enter_user_code("garbage", NOW + 2), Err(SignInError::TooManyGuesses));
        let next_minute = (NOW.div_euclid(60) + 1) * 60;
        assert!(sign_ins.enter_user_code(&start.user_code, next_minute).is_ok());
    }

    #[test]
    fn a_console_ticket_works_once_in_the_browser_that_started_it() {
        let sign_ins = SignIns::default();
        let kind = LoginKind::Console { next: "/reviews".into(), browser: digest("nonce") };
        let login = sign_ins.begin(kind, NOW).unwrap();
        let Completion::Redirect(location) = sign_ins.complete_at(&login, alice(), NOW).unwrap() else {
            panic!("the console redirects")
        };
        let ticket = location.strip_prefix("/login/finish?ticket=").unwrap();
        assert_eq!(sign_ins.take_console(ticket, &digest("other"), NOW), Err(SignInError::UnknownTicket));
        assert_eq!(sign_ins.take_console(ticket, &digest("nonce"), NOW).unwrap(), (alice(), "/reviews".to_string()));
        assert_eq!(sign_ins.take_console(ticket, &digest("nonce"), NOW), Err(SignInError::UnknownTicket));
    }

    #[test]
    fn a_full_table_refuses_new_sign_ins_until_old_ones_expire() {
        let sign_ins = SignIns::default();
        for _ in 0..MAX_IN_PROGRESS {
            sign_ins.begin(cli("http://127.0.0.1:5000/cb"), NOW).unwrap();
        }
        assert_eq!(sign_ins.begin(cli("http://127.0.0.1:5000/cb"), NOW + 1), Err(SignInError::Busy));
        assert!(sign_ins.begin(cli("http://127.0.0.1:5000/cb"), NOW + LOGIN_LIFETIME_SECONDS).is_ok());
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query_escape("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(query_escape("AZaz09-._~"), "AZaz09-._~");
    }
}

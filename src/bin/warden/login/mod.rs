//! `warden login`, `warden logout` and `warden token` (no subcommand): a person's sign-in on the
//! command line, and the fresh token Claude Code's `apiKeyHelper` asks for (docs/identity.md,
//! "Signing in: `warden login` and `warden token`").
//!
//! - `warden login [--service URL] [--device] [--no-browser]` discovers the service's endpoints
//!   ([`client`]) and signs in as the public client `warden-cli`:
//!   - by default with the authorization code flow + PKCE S256 ([`pkce`]) and a loopback redirect
//!     on `127.0.0.1:<random port>/callback` ([`loopback`]): the browser is opened at the
//!     authorization endpoint (`xdg-open`, `open` on macOS; the URL is always printed too, and
//!     only printed with `--no-browser`), the redirect must carry this sign-in's `state` (and the
//!     service's `iss`, when it sends one), and is waited for 5 minutes;
//!   - with `--device` by the device flow ([`device`]): the user code and URL are printed and
//!     the token endpoint polled. Nothing chooses it automatically: a headless machine is told to
//!     use it when no display is found.
//!
//!   The sign-in is stored per service ([`store`]), mode 0600.
//! - `warden token` prints a fresh access token and nothing else on stdout ([`fresh`]), refreshing
//!   under an exclusive lock when no more than `--min-valid` (60 s, or Claude Code's helper TTL
//!   when longer) of life is left. A refused
//!   refresh exits 1 with "your Warden sign-in expired; run `warden login`" on stderr.
//! - `warden logout` forgets the sign-in, revoking its refresh token first when the service offers
//!   a revocation endpoint.
//!
//! The service is `--service`, else `$WARDEN_SERVICE`; `warden token` and `warden logout` then
//! fall back to the one service signed into (several → they ask which), `warden login` to the
//! demo's `http://127.0.0.1:8787`. Tokens are never printed except `warden token`'s access token.

pub mod client;
pub mod device;
pub mod fresh;
pub mod loopback;
pub mod pkce;
pub mod store;

use std::io::Write;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use client::{Endpoints, OAuthClient, TokenAnswer};
use store::{Credentials, ServiceStore};
use warden::core::policy::units::parse_duration;

/// The service `warden login` signs into when none is named: the demo's `warden serve`.
const DEMO_SERVICE: &str = "http://127.0.0.1:8787";
/// Claude Code's helper TTL (milliseconds), in the environment it runs `apiKeyHelper` with.
const HELPER_TTL_ENV: &str = "CLAUDE_CODE_API_KEY_HELPER_TTL_MS";
/// How long `warden login` waits for the browser to come back.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Arguments of `warden login`.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The `warden serve` running the token service [default: $WARDEN_SERVICE, else
    /// http://127.0.0.1:8787, the demo].
    #[arg(long, env = "WARDEN_SERVICE", value_name = "URL")]
    pub service: Option<String>,
    /// Sign in with a code typed in a browser on any device (for machines without a browser).
    #[arg(long, conflicts_with = "no_browser")]
    pub device: bool,
    /// Print the sign-in URL instead of opening a browser (the redirect still comes back here).
    #[arg(long)]
    pub no_browser: bool,
}

/// Arguments of `warden logout`.
#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// The service to sign out of [default: $WARDEN_SERVICE, else the only one signed into].
    #[arg(long, env = "WARDEN_SERVICE", value_name = "URL")]
    pub service: Option<String>,
}

/// Arguments of `warden token` without a subcommand.
#[derive(clap::Args, Debug)]
pub struct FreshTokenArgs {
    /// The service signed into [default: $WARDEN_SERVICE, else the only one signed into].
    #[arg(long, env = "WARDEN_SERVICE", value_name = "URL")]
    pub service: Option<String>,
    /// Refresh when the cached token has this much life or less (e.g. 60s, 2m). Raised to
    /// `$CLAUDE_CODE_API_KEY_HELPER_TTL_MS` when that is longer: Claude Code keeps the printed
    /// token that long, so it must stay valid that long.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_margin)]
    pub min_valid: u64,
}

fn parse_margin(text: &str) -> Result<u64, String> {
    parse_duration(text).map(|seconds| seconds.0).map_err(|e| e.to_string())
}

/// The refresh margin: `--min-valid`, or Claude Code's helper TTL (`ttl_ms`, rounded up to whole
/// seconds) when longer. An unreadable TTL is ignored.
fn margin(min_valid: u64, ttl_ms: Option<&str>) -> u64 {
    let ttl = ttl_ms.and_then(|ms| ms.trim().parse::<u64>().ok()).map_or(0, |ms| ms.div_ceil(1000));
    min_valid.max(ttl)
}

/// Runs `warden login`.
pub fn login(args: &LoginArgs) -> ExitCode {
    match sign_in(args) {
        Ok(message) => {
            eprintln!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => fail("login", &e),
    }
}

/// Signs in and stores the sign-in (replacing, and revoking when the service can, an earlier
/// one); the message for the user.
fn sign_in(args: &LoginArgs) -> Result<String, String> {
    let service = canonical(args.service.as_deref().unwrap_or(DEMO_SERVICE))?;
    let client = OAuthClient::default();
    let endpoints = client.discover(&service).map_err(|e| e.to_string())?;
    let answer = if args.device {
        device_sign_in(&client, &endpoints)?
    } else {
        browser_sign_in(&client, &endpoints, args.no_browser)?
    };
    let credentials = Credentials {
        service: service.clone(),
        token_endpoint: endpoints.token_endpoint,
        revocation_endpoint: endpoints.revocation_endpoint,
        refresh_token: answer.refresh_token,
        access_token: answer.access_token,
        expires_at: answer.expires_at,
    };
    let store = open_store(&service)?;
    let lock = store.lock().map_err(|e| e.to_string())?;
    let earlier = store.load().ok().flatten();
    store.save(&lock, &credentials).map_err(|e| e.to_string())?;
    drop(lock);
    if let Some(Credentials { revocation_endpoint: Some(endpoint), refresh_token: Some(token), .. }) = earlier {
        // Best effort: the earlier sign-in is forgotten here either way.
        let _ = client::trusted("revocation_endpoint", &endpoint).and_then(|()| client.revoke(&endpoint, &token));
    }

    let who = answer.subject.map(|s| format!(" as {s}")).unwrap_or_default();
    let minutes = credentials.expires_at.saturating_sub(unix_now()) / 60;
    let refresh_note = if credentials.refresh_token.is_some() {
        ""
    } else {
        " (the service gave no refresh token: sign in again then)"
    };
    Ok(format!(
        "Signed in to {service}{who}. The token lasts {minutes} min{refresh_note}; `warden token` prints a fresh one.\n\
         Sign-in stored in {}",
        store.path().display()
    ))
}

/// Runs `warden logout`.
pub fn logout(args: &LogoutArgs) -> ExitCode {
    let result = resolve_service(args.service.as_deref()).and_then(|service| {
        let store = open_store(&service)?;
        let lock = store.lock().map_err(|e| e.to_string())?;
        let revoked = match store.load() {
            Ok(Some(Credentials { revocation_endpoint: Some(endpoint), refresh_token: Some(token), .. })) => Some(
                client::trusted("revocation_endpoint", &endpoint)
                    .and_then(|()| OAuthClient::default().revoke(&endpoint, &token)),
            ),
            _ => None,
        };
        let removed = store.remove(&lock).map_err(|e| e.to_string())?;
        Ok((service, removed, revoked))
    });
    match result {
        Ok((service, false, _)) => eprintln!("Not signed in to {service}."),
        Ok((service, true, None)) => eprintln!("Signed out of {service} (this machine forgot the sign-in)."),
        Ok((service, true, Some(Ok(())))) => {
            eprintln!("Signed out of {service}; the service revoked the refresh token.")
        }
        Ok((service, true, Some(Err(e)))) => {
            eprintln!(
                "Signed out of {service} (this machine forgot the sign-in; revoking it at the service failed: {e})."
            )
        }
        Err(e) => return fail("logout", &e),
    }
    ExitCode::SUCCESS
}

/// Runs `warden token` without a subcommand: the fresh token on stdout, or exit status 1.
pub fn print_fresh_token(args: &FreshTokenArgs) -> ExitCode {
    let result = resolve_service(args.service.as_deref()).and_then(|service| {
        let store = open_store(&service)?;
        let client = OAuthClient::default();
        let margin = margin(args.min_valid, std::env::var(HELPER_TTL_ENV).ok().as_deref());
        fresh::fresh_token(&store, &service, margin, unix_now, |credentials, refresh_token, now| {
            client::trusted("token_endpoint", &credentials.token_endpoint)?;
            client.refresh(&credentials.token_endpoint, refresh_token, now)
        })
        .map_err(|e| e.to_string())
    });
    match result {
        Ok(fresh) => {
            if let Some(warning) = fresh.warning {
                eprintln!("warden token: {warning}");
            }
            let mut stdout = std::io::stdout().lock();
            match writeln!(stdout, "{}", fresh.token).and_then(|()| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail("token", &format!("writing to stdout: {e}")),
            }
        }
        Err(e) => fail("token", &e),
    }
}

fn fail(command: &str, message: &str) -> ExitCode {
    eprintln!("warden {command}: {message}");
    ExitCode::FAILURE
}

/// The service URL without a trailing `/`, checked to be `https://` or loopback `http://`.
fn canonical(service: &str) -> Result<String, String> {
    let service = service.trim().trim_end_matches('/').to_string();
    client::trusted("--service", &service).map_err(|e| e.to_string())?;
    Ok(service)
}

/// `--service`/`$WARDEN_SERVICE`, else the only stored sign-in.
fn resolve_service(flag: Option<&str>) -> Result<String, String> {
    if let Some(service) = flag {
        return canonical(service);
    }
    let dir = store::services_dir_from_env().map_err(|e| e.to_string())?;
    let mut services = store::stored_services(&dir).map_err(|e| e.to_string())?;
    match (services.pop(), services.is_empty()) {
        (Some(only), true) => Ok(only),
        (None, _) => Err("not signed in; run `warden login`".to_string()),
        (Some(last), false) => {
            services.push(last);
            Err(format!(
                "signed in to several services ({}); pass --service URL or set WARDEN_SERVICE",
                services.join(", ")
            ))
        }
    }
}

fn open_store(service: &str) -> Result<ServiceStore, String> {
    let dir = store::services_dir_from_env().map_err(|e| e.to_string())?;
    Ok(ServiceStore::new(&dir, service))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// The authorization URL for this sign-in (RFC 6749 §4.1.1, RFC 7636 §4.3).
fn authorization_url(endpoint: &str, redirect_uri: &str, state: &str, challenge: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client::CLIENT_ID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{separator}{query}")
}

/// The authorization code flow through the browser and the loopback redirect.
fn browser_sign_in(client: &OAuthClient, endpoints: &Endpoints, no_browser: bool) -> Result<TokenAnswer, String> {
    let endpoint = &endpoints.authorization_endpoint;
    let pkce = pkce::Pkce::generate()?;
    let state = pkce::random_token()?;
    let listener = loopback::Loopback::bind().map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let redirect_uri = listener.redirect_uri();
    let url = authorization_url(endpoint, &redirect_uri, &state, &pkce.challenge);

    let opened = !no_browser && open_browser(&url);
    if opened {
        eprintln!("Opening your browser to sign in to Warden. If it does not open, visit:\n\n  {url}\n");
    } else {
        eprintln!("To sign in to Warden, open this URL in a browser on this machine:\n\n  {url}\n");
        if !no_browser {
            eprintln!("(No browser could be started here. On a machine without one, use `warden login --device`.)");
        }
    }
    eprintln!("Waiting for the sign-in to finish (5 minutes)…");
    match listener
        .wait(&state, &endpoints.issuer, BROWSER_TIMEOUT)
        .map_err(|e| format!("the loopback listener failed: {e}"))?
    {
        loopback::Outcome::Code { code } => client
            .redeem_code(&endpoints.token_endpoint, &code, &redirect_uri, &pkce.verifier, unix_now())
            .map_err(|e| format!("redeeming the sign-in failed: {e}")),
        loopback::Outcome::WrongIssuer => {
            Err("the sign-in answer names another issuer than the service's; not using it".to_string())
        }
        loopback::Outcome::Refused { error, description } => Err(match description {
            Some(description) => {
                format!("the sign-in was refused: {}: {}", client::one_line(&error), client::one_line(&description))
            }
            None => format!("the sign-in was refused: {}", client::one_line(&error)),
        }),
        loopback::Outcome::TimedOut => {
            Err("nobody finished the sign-in within 5 minutes; run `warden login` again".to_string())
        }
    }
}

/// Starts the system browser at `url`; false when there is no display or no opener.
fn open_browser(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        let has_display =
            ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
        if !has_display {
            return false;
        }
        "xdg-open"
    };
    Command::new(opener).arg(url).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().is_ok()
}

/// The device flow.
fn device_sign_in(client: &OAuthClient, endpoints: &Endpoints) -> Result<TokenAnswer, String> {
    let endpoint = &endpoints.device_authorization_endpoint;
    let grant = client.start_device(endpoint).map_err(|e| e.to_string())?;
    eprintln!(
        "To sign in to Warden, visit {} in a browser on any device and enter the code\n\n  {}\n",
        grant.verification_uri, grant.user_code
    );
    if let Some(complete) = &grant.verification_uri_complete {
        eprintln!("(or open {complete} directly)");
    }
    eprintln!("Waiting for the sign-in to finish ({} minutes)…", grant.expires_in.div_ceil(60));
    device::poll_until_done(
        &grant,
        || client.poll_device(&endpoints.token_endpoint, &grant.device_code, unix_now()),
        std::thread::sleep,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorization_url_carries_every_parameter_encoded() {
        let url =
            authorization_url("http://127.0.0.1:8787/oauth/authorize", "http://127.0.0.1:5000/callback", "st", "ch");
        assert_eq!(
            url,
            "http://127.0.0.1:8787/oauth/authorize?response_type=code&client_id=warden-cli&redirect_uri=\
             http%3A%2F%2F127.0.0.1%3A5000%2Fcallback&state=st&code_challenge=ch&code_challenge_method=S256"
        );
        let with_query = authorization_url("https://idp.example/authorize?tenant=a", "r", "s", "c");
        assert!(with_query.starts_with("https://idp.example/authorize?tenant=a&response_type=code"), "{with_query}");
    }

    #[test]
    fn service_urls_are_canonical_and_never_plain_http_off_loopback() {
        assert_eq!(canonical("http://127.0.0.1:8787/").unwrap(), "http://127.0.0.1:8787");
        assert_eq!(canonical(" https://warden.example ").unwrap(), "https://warden.example");
        let err = canonical("http://warden.example").unwrap_err();
        assert!(err.contains("https://"), "{err}");
        assert!(canonical("warden.example").is_err());
    }

    #[test]
    fn the_margin_takes_durations() {
        assert_eq!(parse_margin("60s"), Ok(60));
        assert_eq!(parse_margin("2m"), Ok(120));
        assert_eq!(parse_margin("0"), Ok(0));
        assert!(parse_margin("-5s").is_err());
    }

    #[test]
    fn claude_codes_helper_ttl_raises_the_margin_never_lowers_it() {
        assert_eq!(margin(60, None), 60);
        assert_eq!(margin(60, Some("300000")), 300);
        assert_eq!(margin(60, Some("300001")), 301);
        assert_eq!(margin(60, Some("5000")), 60);
        for junk in ["", "-1", "5m", "1e9", "99999999999999999999999"] {
            assert_eq!(margin(60, Some(junk)), 60, "{junk}");
        }
        assert_eq!(margin(0, Some("18446744073709551615")), 18_446_744_073_709_552);
    }
}

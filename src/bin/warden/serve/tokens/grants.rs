//! The token endpoint (`POST /oauth/token`, RFC 6749 §3.2) and the device authorization
//! endpoint (`POST /oauth/device_authorization`, RFC 8628 §3.1); both form-encoded, both
//! answering JSON that is never cached.
//!
//! `grant_type` picks the arm:
//! - `authorization_code` (`code`, `code_verifier`, `redirect_uri`, `client_id=warden-cli`):
//!   the code from a browser sign-in ([`super::sign_in::SignIns::redeem_code`]);
//! - `urn:ietf:params:oauth:grant-type:device_code` (`device_code`, `client_id`): a device's poll
//!   ([`super::sign_in::SignIns::poll_device`]: `authorization_pending`, `slow_down`,
//!   `expired_token`, `access_denied`);
//! - `refresh_token` (`refresh_token`, `client_id`): a rotation ([`refresh_grant`]);
//! - `urn:ietf:params:oauth:grant-type:token-exchange`: RFC 8693 (the exchange of an
//!   organisation or workload token; `TokenService::verify_source_token`).
//!
//! The first two start a person's sign-in: the answer carries a Warden token
//! (`token_service.lifetime`) and a refresh token valid until `token_service.session_lifetime`
//! after the sign-in ([`super::refresh`]). A repeated parameter, a missing one or an unknown
//! grant type is `invalid_request` / `unsupported_grant_type`; a client other than `warden-cli`
//! is `invalid_client`. Errors never quote a presented secret.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;

use super::oauth::{no_store, OAuthError, OAuthErrorCode, TokenResponse, JWT_TOKEN_TYPE};
use super::refresh::RefreshError;
use super::sign_in::{query_escape, SignInError, CLI_CLIENT_ID};
use super::{SignedIn, TokenService};
use crate::serve::util::{log_event, unix_now};

/// `grant_type` of the device flow.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// `grant_type` of RFC 8693.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The routes.
pub fn routes(tokens: Arc<TokenService>) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/oauth/device_authorization", post(device_authorization))
        .with_state(tokens)
}

/// Form of `POST /oauth/token` (no `Debug`: it holds secrets). Fields of other grants are
/// ignored by the arms that do not read them.
#[derive(Default, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    redirect_uri: Option<String>,
    device_code: Option<String>,
    refresh_token: Option<String>,
}

fn invalid_request(why: &str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidRequest, why)
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OAuthError> {
    value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| invalid_request(&format!("{name} is required")))
}

fn cli_client(form: &TokenForm) -> Result<(), OAuthError> {
    match form.client_id.as_deref() {
        Some(CLI_CLIENT_ID) => Ok(()),
        None | Some("") => Err(invalid_request("client_id is required")),
        Some(_) => Err(OAuthError::new(OAuthErrorCode::InvalidClient, "unknown client_id (this service serves warden-cli)")),
    }
}

fn server_error(e: impl std::fmt::Display) -> OAuthError {
    log_event(&format!("token endpoint: {e}"));
    OAuthError::new(OAuthErrorCode::ServerError, "the token service failed; try again")
}

/// `POST /oauth/token`.
async fn token(State(tokens): State<Arc<TokenService>>, form: Result<Form<TokenForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else {
        return invalid_request("the body must be form-encoded, each parameter at most once").into_response();
    };
    let now = unix_now();
    let answer = match form.grant_type.as_deref() {
        Some("authorization_code") => authorization_code_grant(&tokens, &form, now),
        Some(DEVICE_CODE_GRANT) => device_code_grant(&tokens, &form, now),
        Some("refresh_token") => cli_client(&form).and_then(|()| {
            refresh_grant(&tokens, required(&form.refresh_token, "refresh_token")?, now)
        }),
        Some(TOKEN_EXCHANGE_GRANT) => Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "token exchange is not served by this build",
        )),
        None | Some("") => Err(invalid_request("grant_type is required")),
        Some(_) => Err(OAuthError::new(OAuthErrorCode::UnsupportedGrantType, "unsupported grant_type")),
    };
    match answer {
        Ok(answer) => answer.into_response(),
        Err(e) => e.into_response(),
    }
}

fn authorization_code_grant(tokens: &TokenService, form: &TokenForm, now: i64) -> Result<TokenResponse, OAuthError> {
    cli_client(form)?;
    let code = required(&form.code, "code")?;
    let verifier = required(&form.code_verifier, "code_verifier")?;
    let redirect_uri = required(&form.redirect_uri, "redirect_uri")?;
    let who = tokens.sign_ins.redeem_code(code, CLI_CLIENT_ID, redirect_uri, verifier, now)?;
    start_person(tokens, &who, now)
}

fn device_code_grant(tokens: &TokenService, form: &TokenForm, now: i64) -> Result<TokenResponse, OAuthError> {
    cli_client(form)?;
    let device_code = required(&form.device_code, "device_code")?;
    let who = tokens.sign_ins.poll_device(device_code, CLI_CLIENT_ID, now)?;
    start_person(tokens, &who, now)
}

/// A person's new sign-in: a Warden token and the first refresh token.
fn start_person(tokens: &TokenService, who: &SignedIn, now: i64) -> Result<TokenResponse, OAuthError> {
    let lifetime = i64::try_from(tokens.config.session_lifetime.0).unwrap_or(i64::MAX);
    let started = tokens.refresh.start(who, now, lifetime).map_err(server_error)?;
    answer(tokens, who, started.refresh_token, now)
}

/// The refresh grant: rotates `refresh_token` and mints a token for its sign-in's identity.
/// Every refresh goes through here: a check that the identity was not revoked belongs right
/// after the rotation.
pub fn refresh_grant(tokens: &TokenService, refresh_token: &str, now: i64) -> Result<TokenResponse, OAuthError> {
    let refreshed = tokens.refresh.rotate(refresh_token, now).map_err(|e| match e {
        RefreshError::Store(e) => server_error(e),
        RefreshError::Reused => {
            log_event("token service: a rotated refresh token was presented again; its sign-in is revoked");
            OAuthError::new(OAuthErrorCode::InvalidGrant, RefreshError::Reused.to_string())
        }
        RefreshError::Invalid(why) => OAuthError::new(OAuthErrorCode::InvalidGrant, why),
    })?;
    answer(tokens, &refreshed.who, refreshed.refresh_token, now)
}

fn answer(tokens: &TokenService, who: &SignedIn, refresh_token: String, now: i64) -> Result<TokenResponse, OAuthError> {
    let minted = tokens.issuer.mint(who, u64::try_from(now).unwrap_or_default()).map_err(server_error)?;
    Ok(TokenResponse {
        access_token: minted.token,
        issued_token_type: JWT_TOKEN_TYPE,
        token_type: "Bearer",
        expires_in: minted.expires_at.saturating_sub(u64::try_from(now).unwrap_or_default()),
        refresh_token: Some(refresh_token),
    })
}

/// Form of `POST /oauth/device_authorization`.
#[derive(Debug, Default, Deserialize)]
pub struct DeviceAuthorizationForm {
    client_id: Option<String>,
}

/// `POST /oauth/device_authorization` (RFC 8628 §3.1–3.2).
async fn device_authorization(
    State(tokens): State<Arc<TokenService>>,
    form: Result<Form<DeviceAuthorizationForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return invalid_request("the body must be form-encoded, each parameter at most once").into_response();
    };
    match form.client_id.as_deref() {
        Some(CLI_CLIENT_ID) => {}
        None | Some("") => return invalid_request("client_id is required").into_response(),
        Some(_) => {
            return OAuthError::new(OAuthErrorCode::InvalidClient, "unknown client_id (this service serves warden-cli)")
                .into_response()
        }
    }
    let started = match tokens.sign_ins.start_device(CLI_CLIENT_ID, unix_now()) {
        Ok(started) => started,
        Err(SignInError::Busy) => {
            return OAuthError::new(OAuthErrorCode::ServerError, SignInError::Busy.to_string()).into_response()
        }
        Err(e) => return server_error(e).into_response(),
    };
    let base = tokens.config.issuer.trim_end_matches('/');
    let body = serde_json::json!({
        "device_code": started.device_code,
        "user_code": started.user_code,
        "verification_uri": format!("{base}/device"),
        "verification_uri_complete": format!("{base}/device?user_code={}", query_escape(&started.user_code)),
        "expires_in": started.expires_in,
        "interval": started.interval,
    });
    no_store(StatusCode::OK, body.to_string())
}

//! People's grants at the token endpoint (`POST /oauth/token`, dispatched by
//! [`super::endpoint`]) and the device authorization endpoint (`POST /oauth/device_authorization`,
//! RFC 8628 §3.1, form-encoded, answering JSON that is never cached).
//!
//! Grants, all for the public client `warden-cli` (`client_id` required; another is
//! `invalid_client`):
//! - `authorization_code` (`code`, `code_verifier`, `redirect_uri`): the code from a browser
//!   sign-in ([`super::sign_in::SignIns::redeem_code`]);
//! - `urn:ietf:params:oauth:grant-type:device_code` (`device_code`): a device's poll
//!   ([`super::sign_in::SignIns::poll_device`]: `authorization_pending`, `slow_down`,
//!   `expired_token`, `access_denied`);
//! - `refresh_token` (`refresh_token`): a rotation ([`refresh_grant`]).
//!
//! The first two start a person's sign-in: the answer carries a Warden token
//! (`token_service.lifetime`) and a refresh token valid until `token_service.session_lifetime`
//! after the sign-in ([`super::refresh`]). Errors never quote a presented secret.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;

use super::request::{TokenRequest, MAX_TOKEN_REQUEST_BYTES};
use super::oauth::{no_store, OAuthError, OAuthErrorCode, TokenResponse};
use super::refresh::RefreshError;
use super::sign_in::{query_escape, SignInError, CLI_CLIENT_ID};
use super::{SignedIn, TokenService};
use crate::service::util::{log_event, unix_now};

/// `grant_type` of the device flow.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The device authorization route (the token endpoint is [`super::endpoint`]'s).
pub fn routes(tokens: Arc<TokenService>) -> Router {
    let route = post(device_authorization).layer(DefaultBodyLimit::max(MAX_TOKEN_REQUEST_BYTES));
    Router::new().route("/oauth/device_authorization", route).with_state(tokens)
}

fn invalid_request(why: &str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidRequest, why)
}

/// The client must be the CLI (a public client: no secret).
fn cli_client(client_id: Option<&str>) -> Result<(), OAuthError> {
    match client_id {
        Some(CLI_CLIENT_ID) => Ok(()),
        None | Some("") => Err(invalid_request("`client_id` is missing")),
        Some(_) => {
            Err(OAuthError::new(OAuthErrorCode::InvalidClient, "unknown client_id (this service serves warden-cli)"))
        }
    }
}

fn server_error(e: impl std::fmt::Display) -> OAuthError {
    log_event(&format!("token endpoint: {e}"));
    OAuthError::new(OAuthErrorCode::ServerError, "the token service failed; try again")
}

/// `grant_type=authorization_code`: `code`, `code_verifier`, `redirect_uri`, `client_id`.
pub fn authorization_code_grant(tokens: &TokenService, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    cli_client(request.get("client_id")?)?;
    let code = request.require("code")?;
    let verifier = request.require("code_verifier")?;
    let redirect_uri = request.require("redirect_uri")?;
    let now = unix_now();
    let who = tokens.sign_ins.redeem_code(code, CLI_CLIENT_ID, redirect_uri, verifier, now)?;
    start_person(tokens, &who, now)
}

/// `grant_type=urn:ietf:params:oauth:grant-type:device_code`: `device_code`, `client_id`.
pub fn device_code_grant(tokens: &TokenService, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    cli_client(request.get("client_id")?)?;
    let device_code = request.require("device_code")?;
    let now = unix_now();
    let who = tokens.sign_ins.poll_device(device_code, CLI_CLIENT_ID, now)?;
    start_person(tokens, &who, now)
}

/// `grant_type=refresh_token`: `refresh_token`, `client_id`.
pub fn refresh_token_grant(tokens: &TokenService, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    cli_client(request.get("client_id")?)?;
    refresh_grant(tokens, request.require("refresh_token")?, unix_now())
}

/// A person's new sign-in: a Warden token and the first refresh token.
fn start_person(tokens: &TokenService, who: &SignedIn, now: i64) -> Result<TokenResponse, OAuthError> {
    let lifetime = i64::try_from(tokens.config.session_lifetime.0).unwrap_or(i64::MAX);
    let started = tokens.refresh.start(who, now, lifetime).map_err(server_error)?;
    answer(tokens, who, started.refresh_token, now)
}

/// The refresh grant: rotates `refresh_token` and mints a token for its sign-in's identity.
/// Every refresh goes through here; [`answer`] refuses a revoked identity.
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
    let now = u64::try_from(now).unwrap_or_default();
    Ok(TokenResponse::bearer(tokens.mint(who, now)?, now, Some(refresh_token)))
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

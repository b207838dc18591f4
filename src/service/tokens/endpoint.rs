//! `POST /oauth/token`: the token endpoint (RFC 6749 §3.2), one handler dispatching on
//! `grant_type`.
//!
//! The body is `application/x-www-form-urlencoded`, at most 64 KiB; a parameter given twice, a
//! missing one or another content type is `invalid_request`. Grant types:
//!
//! - `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693): `subject_token` (an ID or
//!   access token of a `token_service.oidc` provider, or a workload token of a
//!   `token_service.workloads` issuer), `subject_token_type` (`…:id_token`, `…:access_token` or
//!   `…:jwt`), optional `requested_token_type` (`…:jwt` or `…:access_token`: a Warden token is
//!   both) and `audience` (absent or `token_service.audience`, else `invalid_target`).
//!   `resource` (`invalid_target`) and delegation (`actor_token`, `invalid_request`) are not
//!   supported. The token is verified ([`super::TokenService::verify_source_token`]: a refusal is
//!   `invalid_grant` naming the failed check) and a Warden token minted; the answer carries no
//!   refresh token (a workload exchanges its own short-lived token again). Verifying (which may
//!   fetch a JWKS) and signing run on a blocking thread.
//! - `authorization_code`, `refresh_token` and `urn:ietf:params:oauth:grant-type:device_code`:
//!   a person's browser sign-in ([`super::grants`]);
//! - anything else: `unsupported_grant_type`.
//!
//! No client authentication for the exchange: the subject token is the proof. Each exchange logs one line —
//! source, method, subject, `jti`, or the refusal's reason — never a token.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Form;
use std::sync::Arc;

use super::oauth::{OAuthError, OAuthErrorCode, TokenResponse, JWT_TOKEN_TYPE};
use super::request::TokenRequest;
use super::{grants, TokenService};
use crate::service::util::{log_event, unix_now};

/// `grant_type` of RFC 8693 token exchange.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Token type of an OIDC ID token (RFC 8693 §3).
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// Token type of an OAuth access token (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `POST /oauth/token`.
pub async fn token(
    State(service): State<Arc<TokenService>>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let request = match form {
        Ok(Form(params)) => TokenRequest::new(params),
        Err(rejection) => {
            let why = format!(
                "the body must be application/x-www-form-urlencoded parameters of at most 64 KiB ({})",
                rejection.status()
            );
            return OAuthError::new(OAuthErrorCode::InvalidRequest, why).into_response();
        }
    };
    let grant_type = match request.require("grant_type") {
        Ok(grant_type) => grant_type,
        Err(error) => return error.into_response(),
    };
    let answer = match grant_type {
        TOKEN_EXCHANGE_GRANT => exchange(service, &request).await,
        "authorization_code" => grants::authorization_code_grant(&service, &request),
        "refresh_token" => grants::refresh_token_grant(&service, &request),
        grants::DEVICE_CODE_GRANT => grants::device_code_grant(&service, &request),
        other => Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            format!("grant_type {:?} is not supported here", other.chars().take(100).collect::<String>()),
        )),
    };
    match answer {
        Ok(response) => response.into_response(),
        Err(error) => error.into_response(),
    }
}

/// The RFC 8693 arm (see the module comment).
async fn exchange(service: Arc<TokenService>, request: &TokenRequest) -> Result<TokenResponse, OAuthError> {
    let subject_token = request.require("subject_token")?.to_string();
    let token_type = request.require("subject_token_type")?;
    if ![ID_TOKEN_TYPE, ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE].contains(&token_type) {
        return Err(invalid_request(format!(
            "subject_token_type must be {ID_TOKEN_TYPE}, {ACCESS_TOKEN_TYPE} or {JWT_TOKEN_TYPE}"
        )));
    }
    if let Some(requested) = request.get("requested_token_type")? {
        if requested != JWT_TOKEN_TYPE && requested != ACCESS_TOKEN_TYPE {
            return Err(invalid_request(format!(
                "requested_token_type must be {JWT_TOKEN_TYPE} or {ACCESS_TOKEN_TYPE}: the service issues Warden JWTs"
            )));
        }
    }
    if let Some(audience) = request.get("audience")? {
        if audience != service.config.audience {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidTarget,
                format!("the service issues tokens only for the audience {:?}", service.config.audience),
            ));
        }
    }
    if request.get("resource")?.is_some() {
        return Err(OAuthError::new(OAuthErrorCode::InvalidTarget, "`resource` is not supported: omit it"));
    }
    if request.get("actor_token")?.is_some() {
        return Err(invalid_request("delegation (`actor_token`) is not supported"));
    }
    let outcome = tokio::task::spawn_blocking(move || {
        let now = u64::try_from(unix_now()).unwrap_or(0);
        let who = service.verify_source_token(&subject_token, now)?;
        let minted = service.mint(&who, now)?;
        Ok((who, minted, now))
    })
    .await
    .unwrap_or_else(|_| Err(OAuthError::new(OAuthErrorCode::ServerError, "the exchange failed unexpectedly")));
    match outcome {
        Ok((who, minted, now)) => {
            log_event(&format!(
                "token exchange: {} ({}) subject {:?} groups {} claims {} → jti {}",
                who.source,
                who.method.as_str(),
                who.subject,
                who.groups.len(),
                who.claims.len(),
                minted.token_id
            ));
            Ok(TokenResponse::bearer(minted, now, None))
        }
        Err(error) => {
            log_event(&format!("token exchange refused: {error}"));
            Err(error)
        }
    }
}

fn invalid_request(why: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidRequest, why)
}

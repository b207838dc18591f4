//! The token endpoint's answers in OAuth 2.0's shapes (RFC 6749 §5, RFC 8693 §2.2).
//!
//! A success is `{"access_token", "issued_token_type", "token_type": "Bearer", "expires_in"}`
//! (plus `refresh_token` for people who signed in); a failure is `{"error", "error_description"}`
//! with status 400 (401 for `invalid_client`). Answers are never cached (`Cache-Control:
//! no-store`). Descriptions never contain the presented token.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::fmt;

/// `issued_token_type` of a Warden token (RFC 8693 §3).
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A successful token response.
#[derive(Serialize)]
pub struct TokenResponse {
    /// The Warden token (a secret).
    pub access_token: String,
    /// Always [`JWT_TOKEN_TYPE`].
    pub issued_token_type: &'static str,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// Refresh material for a person's sign-in (a secret), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

impl TokenResponse {
    /// The answer carrying `minted`, issued at `now` (seconds), with a person's `refresh_token`.
    pub fn bearer(minted: super::issuer::MintedToken, now: u64, refresh_token: Option<String>) -> Self {
        Self {
            access_token: minted.token,
            issued_token_type: JWT_TOKEN_TYPE,
            token_type: "Bearer",
            expires_in: minted.expires_at.saturating_sub(now),
            refresh_token,
        }
    }
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        no_store(StatusCode::OK, serde_json::to_string(&self).unwrap_or_default())
    }
}

/// RFC 6749 §5.2 error codes (and RFC 8628's for the device flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// The request is malformed (missing or repeated parameter, unsupported value).
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The grant or presented token is invalid, expired, revoked or for someone else.
    InvalidGrant,
    /// The grant type is not supported here.
    UnsupportedGrantType,
    /// The requested audience or resource is not one the service issues tokens for (RFC 8693).
    InvalidTarget,
    /// The identity is valid but no role may be minted for it (revoked, not allowed).
    AccessDenied,
    /// Device flow: the user has not finished signing in yet.
    AuthorizationPending,
    /// Device flow: polling too fast.
    SlowDown,
    /// Device flow: the device code expired.
    ExpiredToken,
    /// The service failed.
    ServerError,
}

impl OAuthErrorCode {
    fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::ServerError => "server_error",
        }
    }
}

/// A failed token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The error code.
    pub code: OAuthErrorCode,
    /// What went wrong, for people (never contains a token).
    pub description: String,
}

impl OAuthError {
    /// An error with `code` and `description`.
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self { code, description: description.into() }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self.code {
            OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({"error": self.code.as_str(), "error_description": self.description});
        no_store(status, body.to_string())
    }
}

/// A JSON answer with `Cache-Control: no-store`.
pub fn no_store(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

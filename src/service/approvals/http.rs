//! The HTTP plumbing the service's JSON endpoints share: [`ApiError`] (a [`ServiceError`] as an
//! Anthropic-style error response), [`json_body`], and the two bearer checks ([`check_gateway`]
//! for gateways, [`approver`] for people). Its own module so that the reviews API
//! ([`super::api`]) and the session grants ([`super::grants`]) both build on it without
//! importing each other.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::service::auth::{bearer, Approver, AuthError};
use super::service::{Service, ServiceError};

/// A [`ServiceError`] as an HTTP response.
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl From<crate::service::store::StoreError> for ApiError {
    fn from(e: crate::service::store::StoreError) -> Self {
        Self(e.into())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self(ServiceError::Unauthorized(e.to_string()))
    }
}

impl ApiError {
    /// The status and Anthropic-style error type.
    pub fn status_and_type(&self) -> (StatusCode, &'static str) {
        match self.0 {
            ServiceError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request_error"),
            ServiceError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "authentication_error"),
            ServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, "permission_error"),
            ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found_error"),
            ServiceError::Conflict(_) => (StatusCode::CONFLICT, "conflict_error"),
            ServiceError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
            ServiceError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "api_error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status_and_type();
        let body = json!({"type": "error", "error": {"type": kind, "message": self.0.message()}});
        let mut response = (status, json_body(&body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON body with its content type.
pub fn json_body(value: &Value) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], value.to_string())
}

/// Checks the gateway's bearer token (`/v1/holds`, `/v1/audit/records`, `/v1/budget/leases`).
pub fn check_gateway(service: &Service, headers: &HeaderMap) -> Result<(), ServiceError> {
    match bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())) {
        None => Err(ServiceError::Unauthorized("the gateway's bearer token is missing".to_string())),
        Some(token) if !service.gateway_token.matches(token) => {
            Err(ServiceError::Unauthorized("the gateway's bearer token is wrong".to_string()))
        }
        Some(_) => Ok(()),
    }
}

/// The approver behind the request's bearer token.
pub async fn approver(service: &Service, headers: &HeaderMap) -> Result<Approver, ApiError> {
    let token = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())).ok_or(AuthError::Missing)?;
    Ok(service.verifier.verify(token).await?)
}

//! A token request's form parameters ([`TokenRequest`]) and its size limit, shared by the token
//! endpoint ([`super::endpoint`]) and the grants it dispatches to ([`super::grants`]), which
//! both depend on this module and not on each other. A parameter given twice is
//! `invalid_request` (RFC 6749 §3.2).

use super::oauth::{OAuthError, OAuthErrorCode};

/// Largest token request body accepted.
pub const MAX_TOKEN_REQUEST_BYTES: usize = 64 * 1024;

/// The parameters of a token request.
#[derive(Default)]
pub struct TokenRequest {
    params: Vec<(String, String)>,
}

impl TokenRequest {
    /// The request of these form parameters, in the order given.
    pub fn new(params: Vec<(String, String)>) -> Self {
        Self { params }
    }

    /// The value of `name`, if given; `invalid_request` when given more than once (RFC 6749 §3.2).
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.params.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(OAuthError::new(OAuthErrorCode::InvalidRequest, format!("`{name}` is given more than once")));
        }
        Ok(first)
    }

    /// The value of `name`; `invalid_request` when missing, empty or repeated.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?
            .filter(|value| !value.is_empty())
            .ok_or_else(|| OAuthError::new(OAuthErrorCode::InvalidRequest, format!("`{name}` is missing")))
    }
}

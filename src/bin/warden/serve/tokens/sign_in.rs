//! Browser sign-ins in progress, and how a finished one completes.
//!
//! A browser sign-in (`warden login`, the device flow, the console) starts at the service,
//! which remembers it under a random login id, sends the browser to the organisation's
//! identity provider (OIDC or SAML) with that id as its state / RelayState, and — once the
//! provider's answer is verified into a [`SignedIn`] — calls [`SignIns::complete`], which ends
//! the sign-in the way it began: a one-time code for the CLI's loopback redirect, a device code
//! marked approved, or a console session.

use super::SignedIn;
use std::fmt;

/// How a completed sign-in answers the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Redirect the browser here (the CLI's loopback address with a one-time code, or a page
    /// of the console).
    Redirect(String),
    /// Show this message as a page ("you can close this window").
    Page(String),
}

/// Why a sign-in could not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    /// No sign-in in progress has this id (unknown, already used or expired).
    UnknownLogin,
}

impl fmt::Display for SignInError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownLogin => write!(f, "this sign-in is unknown, already used or expired; start again"),
        }
    }
}

/// Sign-ins in progress.
#[derive(Debug, Default)]
pub struct SignIns {}

impl SignIns {
    /// Completes the sign-in `login_id` for `who`; each login id completes at most once.
    pub fn complete(&self, login_id: &str, who: SignedIn) -> Result<Completion, SignInError> {
        let _ = (login_id, who);
        Err(SignInError::UnknownLogin)
    }
}

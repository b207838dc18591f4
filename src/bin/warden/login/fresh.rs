//! `warden token`'s decision: print the cached access token, or refresh it first.
//!
//! Algorithm:
//! 1. Read the stored sign-in without a lock. If its access token has more than `margin` seconds
//!    of life left, that is the answer: no network, no lock (works offline).
//! 2. Otherwise take the sign-in's exclusive lock and read it again: another `warden token`
//!    (Claude Code may run several at once) may have refreshed it meanwhile — then use that.
//! 3. Still short of life: redeem the refresh token, store the answer (the rotated refresh token,
//!    or the old one when the service sent none) atomically, release the lock, print.
//!
//! So a refresh token is presented at most once, by the lock holder, even under a crowd of
//! parallel calls. Failures:
//! - the service refuses the refresh (`invalid_grant`, `access_denied`, …) or there is no refresh
//!   token and the access token is past its margin → [`FreshError::SignInExpired`];
//! - the service cannot be reached or answers garbage → the cached token if it is still valid at
//!   all (with a warning), else [`FreshError::Service`].

use std::fmt;

use super::client::{ClientError, TokenAnswer};
use super::store::{Credentials, ServiceStore, StoreError};

/// OAuth errors that mean the sign-in itself is over (RFC 6749 §5.2).
const SIGN_IN_OVER: &[&str] = &["invalid_grant", "access_denied", "invalid_client", "unauthorized_client"];

/// A token to print, and what to warn about.
#[derive(Debug, PartialEq, Eq)]
pub struct Fresh {
    /// The access token.
    pub token: String,
    /// Set when the token is the cached one because refreshing failed.
    pub warning: Option<String>,
}

/// Why no token can be printed.
#[derive(Debug)]
pub enum FreshError {
    /// There is no stored sign-in for the service.
    NotSignedIn {
        /// The service.
        service: String,
    },
    /// The sign-in can no longer give tokens.
    SignInExpired {
        /// The service's reason, when it refused a refresh.
        reason: Option<String>,
    },
    /// The service failed and the cached token has expired.
    Service(ClientError),
    /// The stored sign-in could not be used.
    Store(StoreError),
}

impl fmt::Display for FreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSignedIn { service } => write!(f, "not signed in to {service}; run `warden login`"),
            Self::SignInExpired { reason: None } => f.write_str("your Warden sign-in expired; run `warden login`"),
            Self::SignInExpired { reason: Some(reason) } => {
                write!(f, "your Warden sign-in expired; run `warden login` (the service said: {reason})")
            }
            Self::Service(e) => write!(f, "cannot refresh the Warden token: {e}"),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<StoreError> for FreshError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Whether `credentials`' access token has more than `margin` seconds of life at `now`.
pub fn lasts_beyond(credentials: &Credentials, now: u64, margin: u64) -> bool {
    credentials.expires_at > now.saturating_add(margin)
}

/// A token with more than `margin` seconds of life (see the module header). `refresh` redeems a
/// refresh token at the stored sign-in's token endpoint; `now` reads the clock.
pub fn fresh_token(
    store: &ServiceStore,
    service: &str,
    margin: u64,
    now: impl Fn() -> u64,
    refresh: impl FnOnce(&Credentials, &str, u64) -> Result<TokenAnswer, ClientError>,
) -> Result<Fresh, FreshError> {
    let not_signed_in = || FreshError::NotSignedIn { service: service.to_string() };
    let cached = store.load()?.ok_or_else(not_signed_in)?;
    if lasts_beyond(&cached, now(), margin) {
        return Ok(Fresh { token: cached.access_token, warning: None });
    }
    let lock = store.lock()?;
    let current = store.load()?.ok_or_else(not_signed_in)?;
    let at = now();
    if lasts_beyond(&current, at, margin) {
        return Ok(Fresh { token: current.access_token, warning: None });
    }
    let Some(refresh_token) = current.refresh_token.clone() else {
        return Err(FreshError::SignInExpired { reason: None });
    };
    match refresh(&current, &refresh_token, at) {
        Ok(answer) => {
            let renewed = Credentials {
                refresh_token: answer.refresh_token.or(Some(refresh_token)),
                access_token: answer.access_token,
                expires_at: answer.expires_at,
                ..current
            };
            store.save(&lock, &renewed)?;
            Ok(Fresh { token: renewed.access_token, warning: None })
        }
        Err(ClientError::Refused { error, description }) if SIGN_IN_OVER.contains(&error.as_str()) => {
            let reason = match description {
                Some(description) => format!("{error}: {description}"),
                None => error,
            };
            Err(FreshError::SignInExpired { reason: Some(reason) })
        }
        Err(failure) if current.expires_at > at => Ok(Fresh {
            token: current.access_token,
            warning: Some(format!(
                "could not refresh ({failure}); using the current token, which expires in {} s",
                current.expires_at.saturating_sub(at)
            )),
        }),
        Err(failure) => Err(FreshError::Service(failure)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::tests::TempDir;
    use super::*;
    use std::cell::Cell;

    const SERVICE: &str = "http://127.0.0.1:8787";

    fn stored(dir: &TempDir, access: &str, refresh: Option<&str>, expires_at: u64) -> ServiceStore {
        let store = ServiceStore::new(&dir.0, SERVICE);
        let credentials = Credentials {
            service: SERVICE.into(),
            token_endpoint: format!("{SERVICE}/oauth/token"),
            revocation_endpoint: None,
            refresh_token: refresh.map(str::to_string),
            access_token: access.into(),
            expires_at,
        };
        let lock = store.lock().unwrap();
        store.save(&lock, &credentials).unwrap();
        store
    }

    fn answer(access: &str, refresh: Option<&str>, expires_at: u64) -> Result<TokenAnswer, ClientError> {
        Ok(TokenAnswer {
            access_token: access.into(),
            refresh_token: refresh.map(str::to_string),
            expires_at,
            subject: None,
        })
    }

    fn refused(error: &str) -> Result<TokenAnswer, ClientError> {
        Err(ClientError::Refused { error: error.into(), description: Some("revoked".into()) })
    }

    #[test]
    fn a_token_with_more_than_the_margin_left_is_printed_without_refreshing() {
        let dir = TempDir::new("fresh-cached");
        let store = stored(&dir, "a1", Some("r1"), 1_000);
        let fresh = fresh_token(&store, SERVICE, 60, || 939, |_, _, _| panic!("must not refresh")).unwrap();
        assert_eq!(fresh, Fresh { token: "a1".into(), warning: None });
    }

    #[test]
    fn at_the_margin_the_token_is_refreshed_and_the_rotated_refresh_token_stored() {
        let dir = TempDir::new("fresh-rotate");
        let store = stored(&dir, "a1", Some("r1"), 1_000);
        let presented = Cell::new(String::new());
        let fresh = fresh_token(
            &store,
            SERVICE,
            60,
            || 940,
            |credentials, refresh_token, now| {
                assert_eq!((credentials.token_endpoint.as_str(), now), ("http://127.0.0.1:8787/oauth/token", 940));
                presented.set(refresh_token.to_string());
                answer("a2", Some("r2"), 1_540)
            },
        )
        .unwrap();
        assert_eq!(fresh.token, "a2");
        assert_eq!(presented.take(), "r1");
        let saved = store.load().unwrap().unwrap();
        assert_eq!(
            (saved.access_token.as_str(), saved.refresh_token.as_deref(), saved.expires_at),
            ("a2", Some("r2"), 1_540)
        );

        // A service that does not rotate keeps the old refresh token.
        fresh_token(&store, SERVICE, 60, || 1_500, |_, _, _| answer("a3", None, 2_100)).unwrap();
        assert_eq!(store.load().unwrap().unwrap().refresh_token.as_deref(), Some("r2"));
    }

    #[test]
    fn a_refused_refresh_says_to_sign_in_again() {
        let dir = TempDir::new("fresh-refused");
        let store = stored(&dir, "a1", Some("r1"), 1_000);
        for error in SIGN_IN_OVER {
            let err = fresh_token(&store, SERVICE, 60, || 990, |_, _, _| refused(error)).unwrap_err().to_string();
            assert!(err.starts_with("your Warden sign-in expired; run `warden login`"), "{err}");
            assert!(err.contains(error), "{err}");
        }
        assert_eq!(store.load().unwrap().unwrap().access_token, "a1", "nothing stored");
    }

    #[test]
    fn without_a_refresh_token_an_aging_sign_in_has_expired() {
        let dir = TempDir::new("fresh-norefresh");
        let store = stored(&dir, "a1", None, 1_000);
        let err = fresh_token(&store, SERVICE, 60, || 990, |_, _, _| panic!("nothing to refresh with")).unwrap_err();
        assert_eq!(err.to_string(), "your Warden sign-in expired; run `warden login`");
    }

    #[test]
    fn an_unreachable_service_falls_back_to_a_still_valid_token_only() {
        let dir = TempDir::new("fresh-offline");
        let store = stored(&dir, "a1", Some("r1"), 1_000);
        let down = || Err(ClientError::Unreachable { url: "u".into(), why: "connection failed".into() });
        let fresh = fresh_token(&store, SERVICE, 60, || 990, |_, _, _| down()).unwrap();
        assert_eq!(fresh.token, "a1");
        assert!(fresh.warning.unwrap().contains("expires in 10 s"));
        let late = fresh_token(&store, SERVICE, 60, || 1_000, |_, _, _| down()).unwrap_err();
        assert!(matches!(late, FreshError::Service(_)), "{late}");
        let busy =
            fresh_token(&store, SERVICE, 60, || 1_001, |_, _, _| refused("temporarily_unavailable")).unwrap_err();
        assert!(matches!(busy, FreshError::Service(_)), "{busy}");
    }

    #[test]
    fn no_stored_sign_in_says_so() {
        let dir = TempDir::new("fresh-none");
        let store = ServiceStore::new(&dir.0, SERVICE);
        let err = fresh_token(&store, SERVICE, 60, || 0, |_, _, _| panic!()).unwrap_err().to_string();
        assert_eq!(err, "not signed in to http://127.0.0.1:8787; run `warden login`");
    }

    #[test]
    fn the_margin_is_strict_and_saturates() {
        let credentials = |expires_at| Credentials {
            service: SERVICE.into(),
            token_endpoint: String::new(),
            revocation_endpoint: None,
            refresh_token: None,
            access_token: String::new(),
            expires_at,
        };
        assert!(lasts_beyond(&credentials(1_061), 1_000, 60));
        assert!(!lasts_beyond(&credentials(1_060), 1_000, 60));
        assert!(!lasts_beyond(&credentials(u64::MAX), u64::MAX - 1, 60));
        assert!(lasts_beyond(&credentials(1_001), 1_000, 0));
    }
}

//! Polling for a device sign-in (RFC 8628 §3.4–3.5): `warden login --device` shows the user code
//! and verification URL, then asks the token endpoint every `interval` seconds until the user
//! approved or refused the sign-in in a browser anywhere.
//!
//! Algorithm: sleep `interval`, poll; `authorization_pending` → poll again; `slow_down` → the
//! interval grows by 5 s (capped at 60 s) for this and every later poll; `access_denied` and
//! `expired_token` end the sign-in; anything else is an error. The time slept is the clock: once
//! it passes the grant's `expires_in` the sign-in has expired without asking the service again.
//! Sleeping and polling are passed in, so the loop is tested without waiting.

use std::fmt;
use std::time::Duration;

use super::client::{ClientError, DeviceGrant, TokenAnswer};

/// Longest interval between polls, seconds.
const MAX_INTERVAL: u64 = 60;
/// How much `slow_down` adds to the interval, seconds (RFC 8628 §3.5).
const SLOW_DOWN_STEP: u64 = 5;

/// Why a device sign-in did not complete.
#[derive(Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// The codes expired before the user finished.
    Expired,
    /// The user (or the service) refused the sign-in.
    Denied(Option<String>),
    /// Any other failure.
    Client(ClientError),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired => f.write_str(
                "the sign-in code expired before the sign-in was finished; run `warden login --device` again",
            ),
            Self::Denied(Some(why)) => write!(f, "the sign-in was refused: {why}"),
            Self::Denied(None) => f.write_str("the sign-in was refused"),
            Self::Client(e) => write!(f, "{e}"),
        }
    }
}

/// Polls with `poll` until the sign-in completes, sleeping with `sleep` between polls.
pub fn poll_until_done(
    grant: &DeviceGrant,
    mut poll: impl FnMut() -> Result<TokenAnswer, ClientError>,
    mut sleep: impl FnMut(Duration),
) -> Result<TokenAnswer, DeviceError> {
    let mut interval = grant.interval.clamp(1, MAX_INTERVAL);
    let mut waited: u64 = 0;
    loop {
        if waited.saturating_add(interval) > grant.expires_in {
            return Err(DeviceError::Expired);
        }
        sleep(Duration::from_secs(interval));
        waited = waited.saturating_add(interval);
        match poll() {
            Ok(answer) => return Ok(answer),
            Err(ClientError::Refused { error, description }) => match error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval = interval.saturating_add(SLOW_DOWN_STEP).min(MAX_INTERVAL),
                "access_denied" => return Err(DeviceError::Denied(description)),
                "expired_token" => return Err(DeviceError::Expired),
                _ => return Err(DeviceError::Client(ClientError::Refused { error, description })),
            },
            Err(other) => return Err(DeviceError::Client(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn grant(expires_in: u64, interval: u64) -> DeviceGrant {
        DeviceGrant {
            device_code: "dc".into(),
            user_code: "ABCD-EFGH".into(),
            verification_uri: "http://127.0.0.1:8787/device".into(),
            verification_uri_complete: None,
            expires_in,
            interval,
        }
    }

    fn refused(error: &str) -> Result<TokenAnswer, ClientError> {
        Err(ClientError::Refused { error: error.into(), description: None })
    }

    fn token() -> Result<TokenAnswer, ClientError> {
        Ok(TokenAnswer { access_token: "t".into(), refresh_token: None, expires_at: 1, subject: None })
    }

    /// Runs the loop over scripted answers; returns the result and the sleeps, in seconds.
    fn run(
        grant: &DeviceGrant,
        answers: Vec<Result<TokenAnswer, ClientError>>,
    ) -> (Result<TokenAnswer, DeviceError>, Vec<u64>) {
        let mut answers: VecDeque<_> = answers.into();
        let mut sleeps = Vec::new();
        let result = poll_until_done(
            grant,
            || answers.pop_front().unwrap_or_else(|| refused("authorization_pending")),
            |d| sleeps.push(d.as_secs()),
        );
        (result, sleeps)
    }

    #[test]
    fn pending_polls_again_at_the_interval_until_the_token_comes() {
        let (result, sleeps) =
            run(&grant(600, 5), vec![refused("authorization_pending"), refused("authorization_pending"), token()]);
        assert_eq!(result.unwrap().access_token, "t");
        assert_eq!(sleeps, [5, 5, 5]);
    }

    #[test]
    fn slow_down_adds_five_seconds_for_every_later_poll() {
        let (result, sleeps) = run(
            &grant(600, 5),
            vec![refused("slow_down"), refused("authorization_pending"), refused("slow_down"), token()],
        );
        assert!(result.is_ok());
        assert_eq!(sleeps, [5, 10, 10, 15]);
        let (_, sleeps) = run(&grant(3600, 58), vec![refused("slow_down"), token()]);
        assert_eq!(sleeps, [58, 60], "capped at a minute");
    }

    #[test]
    fn denial_expiry_and_other_errors_end_the_sign_in() {
        let (result, _) = run(&grant(600, 5), vec![refused("access_denied")]);
        assert_eq!(result.unwrap_err(), DeviceError::Denied(None));
        let (result, _) = run(&grant(600, 5), vec![refused("expired_token")]);
        assert_eq!(result.unwrap_err(), DeviceError::Expired);
        let (result, _) = run(&grant(600, 5), vec![refused("invalid_client")]);
        assert!(matches!(result.unwrap_err(), DeviceError::Client(ClientError::Refused { .. })));
        let unreachable = Err(ClientError::Unreachable { url: "u".into(), why: "down".into() });
        let (result, _) = run(&grant(600, 5), vec![unreachable]);
        assert!(matches!(result.unwrap_err(), DeviceError::Client(ClientError::Unreachable { .. })));
    }

    #[test]
    fn the_codes_expire_by_the_time_slept_even_if_the_service_keeps_saying_pending() {
        let (result, sleeps) = run(&grant(12, 5), vec![]);
        assert_eq!(result.unwrap_err(), DeviceError::Expired);
        assert_eq!(sleeps, [5, 5]);
        let (result, sleeps) = run(&grant(0, 5), vec![token()]);
        assert_eq!((result.unwrap_err(), sleeps.len()), (DeviceError::Expired, 0));
    }
}

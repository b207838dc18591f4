//! The kill switch's glue (`identity.revocation`, docs/identity.md "The kill switch"): refreshes
//! the revocation list on the root context's tick, never on the request path, and judges
//! requests and live answers against the worker's own copy.
//!
//! On each tick ([`super::audit::TICK_MS`]) the root context first brings the worker's
//! [`LocalCopy`] up to date from Envoy's shared data (a few bytes read; the list itself only
//! when its version changed), then — with no call in flight — claims the ask if it is due
//! ([`sync::claim_poll`]: one worker of the Envoy asks per `refresh`) and sends
//! `GET <prefix>/v1/revocations?since=<version>` with the gateway's bearer token, timing out
//! after `refresh`. A `200` with a list the core accepts is published to shared data for every
//! worker ([`sync::publish`]); a `304` marks the shared list current ([`sync::confirm`]).
//! Anything else changes nothing (the list ages toward `max_staleness`), is counted in
//! `warden_revocation_refreshes{outcome}` and logged at most once a minute.
//!
//! Requests: [`Watch::judge`] reads only the worker's copy. Live answers: an HTTP context
//! remembers the copy's generation when its request was judged; at each response chunk it
//! compares it with the current one (an integer) and re-checks its caller only when the list
//! changed ([`Watch::revoked_since`]).

use super::host::{self, HostError};
use super::ledger::SharedData;
use super::metrics::Metrics;
use crate::core::errors::Denial;
use crate::core::exchange::Gateway;
use crate::core::identity::{Caller, TokenStatus};
use crate::core::metric_labels::RevocationOutcome;
use crate::core::policy::revocation::{OnUnavailable, RevocationSettings};
use crate::core::revocation::sync::{self, LocalCopy};
use crate::core::revocation::{Presented, RevocationList, MAX_LIST_BYTES};
use crate::core::secret::Secret;
use std::cell::RefCell;
use std::rc::Rc;

/// What the worker's HTTP contexts read: its copy of the list and how to judge with it.
#[derive(Debug)]
pub struct Watch {
    copy: RefCell<LocalCopy>,
    max_staleness_ms: u64,
    on_unavailable: OnUnavailable,
    cut_streams: bool,
}

impl Watch {
    /// Judges a request at `now_ms`: its verified caller against the list, and the list's age
    /// against `max_staleness`. Requests without verified claims are left to identity (they are
    /// refused there).
    pub fn judge(&self, token: &TokenStatus, now_ms: u64) -> Result<(), Denial> {
        let TokenStatus::Verified(claims) = token else { return Ok(()) };
        let who = Presented {
            subject: claims.subject.as_deref().unwrap_or(""),
            groups: &claims.groups,
            job: &claims.job,
            token_id: claims.token_id.as_deref(),
        };
        let Ok(copy) = self.copy.try_borrow() else { return Ok(()) };
        copy.judge(&who, now_ms, self.max_staleness_ms, self.on_unavailable)
    }

    /// The copy's generation (moves when the list changes).
    pub fn generation(&self) -> u64 {
        self.copy.try_borrow().map(|copy| copy.generation()).unwrap_or(0)
    }

    /// For a live answer whose caller was judged at generation `*seen`: when the list changed
    /// since (and `cut_streams`), notes the new generation and returns the caller's refusal if
    /// the new list revokes them.
    pub fn revoked_since(&self, seen: &mut u64, caller: &Caller, now_ms: u64) -> Option<Denial> {
        if !self.cut_streams {
            return None;
        }
        let copy = self.copy.try_borrow().ok()?;
        if copy.generation() == *seen {
            return None;
        }
        *seen = copy.generation();
        let who = Presented {
            subject: &caller.subject,
            groups: &caller.groups,
            job: &caller.job,
            token_id: caller.token_id.as_deref(),
        };
        let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        copy.list()?.find(&who, now).map(|revocation| revocation.denial())
    }
}

/// The root context's side: where the list comes from and the call in flight.
pub struct Revocations {
    /// The worker's copy, shared with its HTTP contexts.
    pub watch: Rc<Watch>,
    settings: RevocationSettings,
    token: Secret,
    /// The call in flight: its token and the version it asked about.
    in_flight: Option<(u32, Option<u64>)>,
    /// Failures not yet logged.
    failures: host::FailureLog,
    metrics: Option<Rc<Metrics>>,
}

impl Revocations {
    /// Sets up the kill switch for a policy with `identity.revocation` (`Ok(None)` without).
    pub fn start(gateway: &Gateway, metrics: Option<Rc<Metrics>>) -> Result<Option<Self>, HostError> {
        let (Some(settings), Some(token)) = (gateway.policy.revocation.clone(), gateway.revocation_token().cloned())
        else {
            return Ok(None);
        };
        host::set_tick_period(super::audit::TICK_MS)?;
        log::info!(
            "revocation: the list comes from cluster {} every {} ms; stale after {} ms ({:?})",
            settings.cluster,
            settings.refresh_ms,
            settings.max_staleness_ms,
            settings.on_unavailable
        );
        let watch = Watch {
            copy: RefCell::new(LocalCopy::default()),
            max_staleness_ms: settings.max_staleness_ms,
            on_unavailable: settings.on_unavailable,
            cut_streams: settings.cut_streams,
        };
        Ok(Some(Self {
            watch: Rc::new(watch),
            settings,
            token,
            in_flight: None,
            failures: host::FailureLog::default(),
            metrics,
        }))
    }

    /// Whether `token_id` is this worker's call in flight.
    pub fn owns(&self, token_id: u32) -> bool {
        self.in_flight.is_some_and(|(token, _)| token == token_id)
    }

    /// Catches up with the shared list, then asks for a newer one when this worker's turn is due.
    pub fn on_tick(&mut self) {
        self.catch_up();
        if self.in_flight.is_some() {
            return;
        }
        let now = host::now_millis();
        if !sync::claim_poll(&SharedData, now, self.settings.refresh_ms) {
            return;
        }
        let since = sync::shared_meta(&SharedData).map(|(version, _, _)| version);
        let path = match since {
            Some(version) => format!("{}?since={version}", self.settings.list_path),
            None => self.settings.list_path.clone(),
        };
        let endpoint = host::Endpoint {
            cluster: &self.settings.cluster,
            authority: &self.settings.authority,
            path: &path,
            token: &self.token,
        };
        match host::get(&endpoint, self.settings.refresh_ms.max(1)) {
            Ok(token) => self.in_flight = Some((token, since)),
            Err(e) => {
                self.failed(RevocationOutcome::Error, &format!("the call could not be sent (host status {})", e.0), now)
            }
        }
    }

    /// The service answered the call in flight (`body_size` bytes of answer).
    pub fn on_response(&mut self, body_size: usize) {
        let Some((_, since)) = self.in_flight.take() else { return };
        let now = host::now_millis();
        match host::call_response_status() {
            // Envoy reports a connection failure as 503 and a timeout as 504.
            None | Some(502..=504) => {
                self.failed(RevocationOutcome::Unreachable, "no answer (unreachable or timed out)", now)
            }
            Some(304) => match since.map(|version| sync::confirm(&SharedData, version, now)) {
                Some(Ok(())) => self.count(RevocationOutcome::Unchanged),
                Some(Err(_)) | None => {
                    self.failed(RevocationOutcome::Refused, "304 to a call that named no version", now)
                }
            },
            Some(200) => {
                // Read a byte too many: the core refuses it for its size.
                let body = host::get_buffer(
                    host::Buffer::HttpCallResponseBody,
                    0,
                    body_size.min(MAX_LIST_BYTES.saturating_add(1)),
                )
                .unwrap_or_default();
                match RevocationList::parse(&body) {
                    Ok(list) => match sync::publish(&SharedData, &body, list.version(), now) {
                        Ok(()) => {
                            self.count(RevocationOutcome::Changed);
                            self.catch_up();
                        }
                        Err(_) => {
                            self.failed(RevocationOutcome::Error, "the list could not be stored in shared data", now)
                        }
                    },
                    Err(error) => self.failed(RevocationOutcome::Refused, &format!("warden serve sent {error}"), now),
                }
            }
            Some(status) => self.failed(RevocationOutcome::Refused, &format!("warden serve answered {status}"), now),
        }
    }

    fn catch_up(&self) {
        let Ok(mut copy) = self.watch.copy.try_borrow_mut() else { return };
        if copy.refresh(&SharedData) {
            let (version, entries) = copy.list().map_or((0, 0), |list| (list.version(), list.len()));
            log::info!("revocation: list version {version} in use ({entries} revocations)");
        }
    }

    /// Counts a failed refresh and logs failures at most once a minute.
    fn failed(&mut self, outcome: RevocationOutcome, what: &str, now: u64) {
        self.count(outcome);
        if let Some(failures) = self.failures.note(now) {
            log::warn!(
                "revocation: refreshing the list from cluster {} failed {} times since the last report, last: {what}; \
                 the list goes stale after {} ms ({:?})",
                self.settings.cluster,
                failures,
                self.settings.max_staleness_ms,
                self.settings.on_unavailable
            );
        }
    }

    fn count(&self, outcome: RevocationOutcome) {
        if let Some(metrics) = &self.metrics {
            metrics.revocation_refresh(outcome);
        }
    }
}

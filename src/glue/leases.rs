//! Budget leases from `warden serve` (docs/budgets.md, "Many instances"): asks leave on the root
//! context's tick, never on the request path.
//!
//! Each worker VM has one [`KeysInUse`] shared by its root context and its HTTP contexts (same
//! thread): an HTTP context notes the budget keys its exchange was checked against after every
//! admission attempt and when the exchange ends ([`note`]). On the tick (the audit delivery's
//! tick, [`super::audit::TICK_MS`]), the root context claims the asks that are due
//! ([`renewal::due_asks`]: the workers of one Envoy ask once between them) and sends them in one
//! `POST <prefix>/v1/budget/leases` with the gateway's bearer token; one call is in flight per
//! worker at a time, the rest wait for the next tick. The answer raises the grants in the shared
//! ledger ([`renewal::apply_answer`]).
//!
//! The instance name in every ask is the per-start id `gw-<12 hex>` the audit trail also uses
//! (chosen by the first VM of this Envoy start and shared by all; a restarted Envoy is a new
//! instance, whose ledger is new too).
//!
//! Failures — a call that cannot be sent, a timeout, a non-200, an answer that is not one grant
//! per ask — change nothing and are logged at most once a minute with how many happened; the
//! instance keeps admitting within what it was granted. They are counted in
//! `warden_lease_calls{outcome}`.

use super::host::{self, HostError};
use super::metrics::Metrics;
use crate::core::budget::lease::{LeaseAsk, LeaseRequest, MAX_ASKS_PER_CALL};
use crate::core::budget::renewal::{self, KeysInUse, Tick, MAX_ANSWER_BYTES};
use crate::core::exchange::{Exchange, Gateway};
use crate::core::metric_labels::LeaseOutcome;
use crate::core::policy::leases::LeaseSettings;
use crate::core::secret::Secret;
use std::cell::RefCell;
use std::rc::Rc;

/// Longest wait for the service to answer an ask, in milliseconds.
const CALL_TIMEOUT_MS: u64 = 5_000;

/// The root context's side: the keys to watch, where asks go, and the call in flight.
pub struct Leases {
    /// The worker's budget keys in use (shared with its HTTP contexts).
    pub keys: Rc<RefCell<KeysInUse>>,
    settings: LeaseSettings,
    token: Secret,
    /// This instance's name in asks.
    instance: String,
    /// The call in flight: its token and the asks it carries.
    in_flight: Option<(u32, Vec<LeaseAsk>)>,
    /// Failures not yet logged.
    failures: host::FailureLog,
    metrics: Option<Rc<Metrics>>,
    gateway: Rc<Gateway>,
}

impl Leases {
    /// Sets up leasing for a policy with `accounting.leases` (`Ok(None)` without): the instance
    /// name and the tick.
    pub fn start(gateway: &Rc<Gateway>, metrics: Option<Rc<Metrics>>) -> Result<Option<Self>, HostError> {
        let (Some(settings), Some(token)) = (gateway.policy.leases.clone(), gateway.lease_token().cloned()) else {
            return Ok(None);
        };
        let instance = super::audit::shared_source(None)?;
        host::set_tick_period(super::audit::TICK_MS)?;
        log::info!(
            "leases: budgets are leased from cluster {} as instance {instance} ({}% slices)",
            settings.cluster,
            settings.slice_percent
        );
        Ok(Some(Self {
            keys: Rc::new(RefCell::new(KeysInUse::default())),
            settings,
            token,
            instance,
            in_flight: None,
            failures: host::FailureLog::default(),
            metrics,
            gateway: Rc::clone(gateway),
        }))
    }

    /// Whether `token_id` is this worker's call in flight.
    pub fn owns(&self, token_id: u32) -> bool {
        self.in_flight.as_ref().is_some_and(|(token, _)| *token == token_id)
    }

    /// Sends the asks that are due, unless a call is in flight.
    pub fn on_tick(&mut self) {
        if self.in_flight.is_some() {
            return;
        }
        let now = host::now_millis();
        let policy = &self.gateway.policy;
        let tick = Tick {
            store: self.gateway.ledger(),
            percent: self.settings.slice_percent,
            cadence: self.settings.cadence,
            now_ms: now,
            max_keys: policy.accounting.max_keys,
        };
        let Ok(mut keys) = self.keys.try_borrow_mut() else { return };
        let asks = renewal::due_asks(&mut keys, |name| policy.budget(name), &tick, MAX_ASKS_PER_CALL);
        drop(keys);
        if asks.is_empty() {
            return;
        }
        let request = LeaseRequest { instance: self.instance.clone(), asks };
        let body = match serde_json::to_vec(&request) {
            Ok(body) => body,
            Err(e) => return self.failed(LeaseOutcome::Error, &format!("encoding the asks: {e}"), now),
        };
        let endpoint = host::Endpoint {
            cluster: &self.settings.cluster,
            authority: &self.settings.authority,
            path: &self.settings.leases_path,
            token: &self.token,
        };
        match host::post(&endpoint, "application/json", &body, CALL_TIMEOUT_MS) {
            Ok(token) => self.in_flight = Some((token, request.asks)),
            Err(e) => {
                self.failed(LeaseOutcome::Error, &format!("the call could not be sent (host status {})", e.0), now)
            }
        }
    }

    /// The service answered the call in flight (`body_size` bytes of answer).
    pub fn on_response(&mut self, body_size: usize) {
        let Some((_, asks)) = self.in_flight.take() else { return };
        let now = host::now_millis();
        let status = host::call_response_status();
        let body = if body_size > MAX_ANSWER_BYTES {
            // Read a byte too many: the core refuses it for its size.
            host::get_buffer(host::Buffer::HttpCallResponseBody, 0, MAX_ANSWER_BYTES.saturating_add(1))
        } else {
            host::get_buffer(host::Buffer::HttpCallResponseBody, 0, body_size)
        }
        .unwrap_or_default();
        let answer = status.map(|status| (status, body.as_slice()));
        let max_keys = self.gateway.policy.accounting.max_keys;
        match renewal::apply_answer(self.gateway.ledger(), &asks, answer, now, max_keys) {
            Ok(applied) => {
                log::debug!("leases: {applied} grants of {} asks applied", asks.len());
                self.count(LeaseOutcome::Granted);
            }
            Err(error) => {
                let outcome = if status.is_none() { LeaseOutcome::Unreachable } else { LeaseOutcome::Refused };
                self.failed(outcome, &format!("warden serve answered {error}"), now);
            }
        }
    }

    /// Counts a failed ask and logs failures at most once a minute.
    fn failed(&mut self, outcome: LeaseOutcome, what: &str, now: u64) {
        self.count(outcome);
        if let Some(failures) = self.failures.note(now) {
            log::warn!(
                "leases: asking cluster {} for budget leases failed {} times since the last report, last: {what}; \
                 this instance keeps to what it was granted",
                self.settings.cluster,
                failures
            );
        }
    }

    fn count(&self, outcome: LeaseOutcome) {
        if let Some(metrics) = &self.metrics {
            metrics.lease_call(outcome);
        }
    }
}

/// Notes the budget keys `exchange` was checked against in the worker's keys in use, and what
/// it needed when its refusal was for want of lease.
pub fn note(keys: &RefCell<KeysInUse>, exchange: &Exchange) {
    let used = exchange.budget_keys();
    if used.is_empty() {
        return;
    }
    let now = host::now_millis();
    let Ok(mut keys) = keys.try_borrow_mut() else { return };
    for (key, budget) in used {
        if !keys.note(key, budget, now) {
            log::debug!("leases: {} budget keys are watched already; {key} keeps its first slice", keys.len());
        }
    }
    if let Some((key, amount)) = exchange.lease_wanted() {
        keys.want(key, *amount);
    }
}

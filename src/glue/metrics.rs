//! Warden's metrics in Envoy's stats: the labelled families of [`crate::core::metric_labels`]
//! (requests, tokens, cost, budget refusals, stream cuts, DLP findings, approvals, lease calls,
//! revocation refreshes), defined on first use through host calls, four unlabelled ones defined
//! up front: `warden.approvals.held`, `warden.audit.dropped`, `warden.audit.stood_in` (counters)
//! and `warden.audit.waiting` (a gauge shared by the workers), and `warden.revocation.streams_cut`
//! (a counter) defined on the first stream the kill switch cuts. docs/metrics.md lists every name and
//! label as `/stats/prometheus` prints it.
//!
//! Limits: a host that refuses a definition only loses that series, never a decision; the
//! cardinality bounds are per VM (see the core module).

use super::host;
use crate::core::dlp::mask::Tally;
use crate::core::errors::Reason;
use crate::core::metric_labels::{
    ApprovalOutcome, Decision, LeaseOutcome, Registry, RevocationOutcome, StatSink, TokenCounts,
};
use crate::core::policy::glob::GlobSet;
use std::cell::RefCell;

/// Envoy's stats as a [`StatSink`].
struct HostStats;

impl StatSink for HostStats {
    type Id = u32;

    fn define_counter(&mut self, name: &str) -> Option<u32> {
        host::define_counter(name).ok()
    }

    fn add(&mut self, id: u32, n: u64) {
        host::add(id, i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// The metrics of one VM.
pub struct Metrics {
    held: Option<u32>,
    audit_dropped: Option<u32>,
    audit_stood_in: Option<u32>,
    audit_waiting: Option<u32>,
    /// Defined on the first cut (policies without the kill switch never show it).
    revoked_streams_cut: std::cell::OnceCell<Option<u32>>,
    labelled: RefCell<Registry<HostStats>>,
}

impl Metrics {
    /// Defines the unlabelled metrics; the labelled series are defined when first counted.
    pub fn define() -> Self {
        let counter = |name: &str| host::define_counter(name).ok();
        Self {
            held: counter("warden.approvals.held"),
            audit_dropped: counter("warden.audit.dropped"),
            audit_stood_in: counter("warden.audit.stood_in"),
            audit_waiting: host::define_gauge("warden.audit.waiting").ok(),
            revoked_streams_cut: std::cell::OnceCell::new(),
            labelled: RefCell::new(Registry::new(HostStats)),
        }
    }

    /// A request's final decision (see [`Registry::request`]).
    pub fn request(&self, role: Option<&str>, decision: Decision, reason: Option<Reason>) {
        if let Ok(mut labelled) = self.labelled.try_borrow_mut() {
            labelled.request(role, decision, reason);
        }
    }

    /// Tokens and cost of one exchange (see [`Registry::usage`]).
    pub fn usage(&self, role: &str, models: &GlobSet, reported: Option<&str>, tokens: &TokenCounts, cost: Option<u64>) {
        if let Ok(mut labelled) = self.labelled.try_borrow_mut() {
            labelled.usage(role, models, reported, tokens, cost);
        }
    }

    /// A request refused because the budget named `budget` had no room.
    pub fn budget_refused(&self, budget: &str) {
        if let Ok(mut labelled) = self.labelled.try_borrow_mut() {
            labelled.budget_refused(budget);
        }
    }

    /// An answer cut short because the budget named `budget` ran out mid-stream.
    pub fn stream_cut(&self, budget: &str) {
        if let Ok(mut labelled) = self.labelled.try_borrow_mut() {
            labelled.stream_cut(budget);
        }
    }

    /// An exchange's DLP findings, per detector and action.
    pub fn dlp(&self, tally: &Tally) {
        if let Ok(mut labelled) = self.labelled.try_borrow_mut() {
            labelled.dlp(tally);
        }
    }

    /// How a held request's approval ended.
    pub fn approval(&self, outcome: ApprovalOutcome) {
        if let Ok(mut labelled) = self.labelled.try_borrow_mut() {
            labelled.approval(outcome);
        }
    }

    /// One tool call of an answer: the rules' action and what became of it.
    pub fn tool_call(&self, role: &str, action: &str, outcome: &str) {
        if let Ok(mut labelled) = self.labelled.try_borrow_mut() {
            labelled.tool_call(role, action, outcome);
        }
    }

    /// How a call asking `warden serve` for budget leases ended.
    pub fn lease_call(&self, outcome: LeaseOutcome) {
        if let Ok(mut labelled) = self.labelled.try_borrow_mut() {
            labelled.lease_call(outcome);
        }
    }

    /// How a refresh of the revocation list ended.
    pub fn revocation_refresh(&self, outcome: RevocationOutcome) {
        if let Ok(mut labelled) = self.labelled.try_borrow_mut() {
            labelled.revocation_refresh(outcome);
        }
    }

    /// A live answer was ended because its caller was revoked.
    pub fn revoked_stream_cut(&self) {
        let id = self.revoked_streams_cut.get_or_init(|| host::define_counter("warden.revocation.streams_cut").ok());
        if let Some(id) = *id {
            host::increment(id);
        }
    }

    /// A request was held for approval (its outcome counts in `approval` and `request` later).
    pub fn held(&self) {
        if let Some(id) = self.held {
            host::increment(id);
        }
    }

    /// Audit records were dropped (`fail_open` with a full queue, a stand-in the service refused
    /// too, or records still queued when a shutdown's drain ran out of time).
    pub fn audit_dropped(&self, count: u64) {
        if let Some(id) = self.audit_dropped {
            host::add(id, i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Audit records the service refused, each replaced in the trail by its stand-in.
    pub fn audit_stood_in(&self, count: u64) {
        if let Some(id) = self.audit_stood_in {
            host::add(id, i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Changes the gauge of audit records waiting in this Envoy (all workers) by `delta`.
    pub fn audit_waiting(&self, delta: i64) {
        if let Some(id) = self.audit_waiting {
            host::add(id, delta);
        }
    }
}

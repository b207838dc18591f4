//! Decision counters in Envoy's stats.
//!
//! Envoy lists them in `/stats` as `wasmcustom.warden.allowed`, `wasmcustom.warden.clamped` and
//! one `wasmcustom.warden.denied.<reason>` per reason code (docs/policy.md), and in
//! `/stats/prometheus` as `warden_allowed`, `warden_clamped`, `warden_denied_<reason>`; requests held
//! for approval as `warden.approvals.held`; audit records dropped as `warden.audit.dropped`; DLP findings
//! as `warden.dlp.masked`, `warden.dlp.blocked` and `warden.dlp.audited`, and per detector as
//! `warden.dlp.<masked|blocked|audited>.<detector id>` (defined when first needed). Counters are defined
//! once per VM; a host that refuses a definition only loses that counter, never a decision.

use super::host;
use crate::core::dlp::engine::Action;
use crate::core::dlp::mask::Tally;
use crate::core::errors::Reason;
use std::cell::RefCell;
use std::collections::HashMap;

/// The counter ids of one VM.
pub struct Metrics {
    allowed: Option<u32>,
    clamped: Option<u32>,
    held: Option<u32>,
    audit_dropped: Option<u32>,
    audit_stood_in: Option<u32>,
    audit_waiting: Option<u32>,
    denied: Vec<(Reason, Option<u32>)>,
    /// Findings masked, blocked and audited (totals over all detectors).
    dlp: [(Action, Option<u32>); 3],
    /// The same per detector, defined on first use (80+ detectors × 3 actions would otherwise
    /// be defined up front, mostly never used).
    per_detector: RefCell<HashMap<(String, Action), Option<u32>>>,
}

impl Metrics {
    /// Defines every counter.
    pub fn define() -> Self {
        let counter = |name: &str| host::define_counter(name).ok();
        Self {
            allowed: counter("warden.allowed"),
            clamped: counter("warden.clamped"),
            held: counter("warden.approvals.held"),
            audit_dropped: counter("warden.audit.dropped"),
            audit_stood_in: counter("warden.audit.stood_in"),
            audit_waiting: host::define_gauge("warden.audit.waiting").ok(),
            denied: Reason::ALL.iter().map(|r| (*r, counter(&format!("warden.denied.{}", r.code())))).collect(),
            dlp: [
                (Action::Mask, counter("warden.dlp.masked")),
                (Action::Block, counter("warden.dlp.blocked")),
                (Action::Audit, counter("warden.dlp.audited")),
            ],
            per_detector: RefCell::new(HashMap::new()),
        }
    }

    /// A request was forwarded.
    pub fn allowed(&self) {
        if let Some(id) = self.allowed {
            host::increment(id);
        }
    }

    /// A forwarded request had a value clamped.
    pub fn clamped(&self) {
        if let Some(id) = self.clamped {
            host::increment(id);
        }
    }

    /// A request was held for approval (its outcome counts as allowed or denied later).
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

    /// Adds an exchange's DLP findings: totals per action and counts per detector.
    pub fn dlp(&self, tally: &Tally) {
        for (action, id) in &self.dlp {
            let count = tally.total(*action);
            if let (Some(id), true) = (id, count > 0) {
                host::add(*id, i64::from(count));
            }
        }
        let mut per_detector = self.per_detector.borrow_mut();
        for (detector, action, count) in tally.entries() {
            let label = match action {
                Action::Mask => "masked",
                Action::Block => "blocked",
                Action::Audit => "audited",
                Action::Off => continue,
            };
            let id = *per_detector
                .entry((detector.to_string(), action))
                .or_insert_with(|| host::define_counter(&format!("warden.dlp.{label}.{detector}")).ok());
            if let Some(id) = id {
                host::add(id, i64::from(count));
            }
        }
    }

    /// A request was refused.
    pub fn denied(&self, reason: Reason) {
        if let Some((_, Some(id))) = self.denied.iter().find(|(r, _)| *r == reason) {
            host::increment(*id);
        }
    }
}

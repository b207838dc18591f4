//! Decision counters in Envoy's stats.
//!
//! Envoy lists them in `/stats` as `wasmcustom.warden.allowed`, `wasmcustom.warden.clamped` and
//! one `wasmcustom.warden.denied.<reason>` per reason code (docs/policy.md), and in
//! `/stats/prometheus` as `warden_allowed`, `warden_clamped`, `warden_denied_<reason>`; DLP findings
//! as `warden.dlp.masked`, `warden.dlp.blocked` and `warden.dlp.audited`. Counters are defined
//! once per VM; a host that refuses a definition only loses that counter, never a decision.

use super::host;
use crate::core::dlp::engine::Action;
use crate::core::errors::Reason;

/// The counter ids of one VM.
pub struct Metrics {
    allowed: Option<u32>,
    clamped: Option<u32>,
    denied: Vec<(Reason, Option<u32>)>,
    /// Findings masked, blocked and audited (totals over all detectors).
    dlp: [(Action, Option<u32>); 3],
}

impl Metrics {
    /// Defines every counter.
    pub fn define() -> Self {
        let counter = |name: &str| host::define_counter(name).ok();
        Self {
            allowed: counter("warden.allowed"),
            clamped: counter("warden.clamped"),
            denied: Reason::ALL.iter().map(|r| (*r, counter(&format!("warden.denied.{}", r.code())))).collect(),
            dlp: [
                (Action::Mask, counter("warden.dlp.masked")),
                (Action::Block, counter("warden.dlp.blocked")),
                (Action::Audit, counter("warden.dlp.audited")),
            ],
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

    /// `count` DLP findings met `action`.
    pub fn dlp(&self, action: Action, count: u32) {
        if let Some((_, Some(id))) = self.dlp.iter().find(|(a, _)| *a == action) {
            if count > 0 {
                host::add(*id, i64::from(count));
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

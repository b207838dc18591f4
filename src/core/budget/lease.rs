//! Leases: how gateway instances share one budget through `warden serve` without the request
//! path ever waiting for it.
//!
//! Each instance keeps its own ledger (Envoy's shared data, [`super::ledger`]); with leases, an
//! entry's windowed limits (tokens, cost, requests) are lowered to what `warden serve` has
//! **granted** that instance for the current window ([`effective_limits`]). Before it has heard
//! from the service in a window, an instance may use one **slice** of each limit on its own (the
//! optimistic first slice, [`slice`]: `slice_percent` of the limit, at least 1) — so a new window
//! or a new subject never waits for a callout. When an instance's free grant falls below half a
//! slice, a worker asks the service for more ([`ask_for`], sent by the glue on its tick); the
//! service ([`renew`], run by `warden serve` in one transaction over its SQLite ledger) counts
//! the instance's first slice when it first hears of it, and hands out further slices only while
//! everything granted in the window stays within the limit. The instance raises its grant to the
//! answer ([`apply`]; grants only grow within a window, so late or duplicated answers are
//! harmless).
//!
//! Guarantee: the grants of a window sum to at most `limit + (n − 1) × slice`, where `n` is the
//! number of gateway instances that used the key in the window (a restarted gateway is a new
//! instance: its ledger is new) — further slices are granted only within the limit, and only the
//! first slices of instances that arrive after it is reached can pass it (the first instance's
//! slice fits: a slice is at most half the limit). Each instance's commitments stay within its
//! grant (the same compare-and-swap admission as on one instance), so spend exceeds the limit by
//! at most `(n − 1) × slice` plus what exchanges use beyond their reservations (the one-instance
//! term). Grants are never taken back: an instance that stops renewing (it died, or lost the
//! service) may have spent all it was granted, so the service keeps it counted; its lease
//! expires — shown as such — and the budget loses at most its unused part (under 1.5 slices)
//! until the window ends. The property test below drives many instances through arbitrary
//! interleavings, restarts included, and checks the bound.
//!
//! Limits: `concurrent` is not leased (it is not spent over a window): each instance enforces it
//! on its own. Instances should run the same policy; the service keeps the lowest limit any of
//! them reports for a window, and counts each first slice as the instance computed it.

pub use super::grant::{Dimension, Grant, NANOS, REQUESTS, TOKENS};
use super::ledger::{Entry, Lease};
use super::{Budget, Limits};
use serde::{Deserialize, Serialize};

/// The windowed limits of a budget (`None`: not limited), as sent to the service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windowed {
    /// Tokens per window.
    pub tokens: Option<u64>,
    /// Cost per window, in nanos.
    pub nanos: Option<u64>,
    /// Requests per window.
    pub requests: Option<u64>,
}

impl Windowed {
    /// The windowed part of a budget's limits.
    pub fn of(limits: &Limits) -> Windowed {
        Windowed { tokens: limits.tokens, nanos: limits.cost_nanos, requests: limits.requests }
    }

    /// The limit in `dimension`.
    pub fn get(&self, dimension: Dimension) -> Option<u64> {
        match dimension {
            Dimension::Tokens => self.tokens,
            Dimension::Nanos => self.nanos,
            Dimension::Requests => self.requests,
        }
    }

    /// Each dimension's limit with the `other`'s, keeping the lower (a dimension one side does
    /// not limit takes the other's).
    fn lowest(self, other: Windowed) -> Windowed {
        let low = |dimension| match (self.get(dimension), other.get(dimension)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Windowed { tokens: low(Dimension::Tokens), nanos: low(Dimension::Nanos), requests: low(Dimension::Requests) }
    }
}

/// Largest `slice_percent` a policy may set: a slice is at most half the limit, so the first
/// instance's own slice always fits.
pub const MAX_SLICE_PERCENT: u64 = 50;

/// The optimistic first slice of each limited dimension: `percent` of the limit, rounded up, at
/// least 1, at most half the limit rounded up (dimensions without a limit get 0).
pub fn slice(limits: &Windowed, percent: u64) -> Grant {
    let percent = percent.clamp(1, MAX_SLICE_PERCENT);
    Grant::from_fn(|dimension| {
        limits.get(dimension).map_or(0, |limit| {
            let share = u128::from(limit).saturating_mul(u128::from(percent)).div_ceil(100);
            u64::try_from(share).unwrap_or(u64::MAX).max(1)
        })
    })
}

/// What this instance may commit in the entry's window: the grant when the entry holds one for
/// that window, else the first slice.
pub fn grant_of(entry: &Entry, limits: &Limits, percent: u64) -> Grant {
    match entry.lease {
        Some(lease) if lease.window_start == entry.window_start => lease.granted,
        _ => slice(&Windowed::of(limits), percent),
    }
}

/// The limits an admission checks on this instance (`entry` already in the current window):
/// with leases (`Some(percent)`), each windowed limit lowered to the instance's grant;
/// `concurrent` as it is.
pub fn effective_limits(limits: &Limits, entry: &Entry, percent: Option<u64>) -> Limits {
    let Some(percent) = percent else { return *limits };
    let grant = grant_of(entry, limits, percent);
    Limits {
        tokens: limits.tokens.map(|limit| limit.min(grant.tokens)),
        cost_nanos: limits.cost_nanos.map(|limit| limit.min(grant.nanos)),
        requests: limits.requests.map(|limit| limit.min(grant.requests)),
        concurrent: limits.concurrent,
    }
}

/// What the entry has committed in its window, per leased dimension.
fn committed(entry: &Entry) -> Grant {
    let committed = entry.committed();
    Grant { tokens: committed.tokens, nanos: committed.nanos, requests: entry.requests }
}

/// The dimensions `limits` bounds in which `committed` is within half a slice of `granted`.
fn running_low(limits: &Windowed, committed: Grant, granted: Grant, slice: Grant) -> u8 {
    Dimension::set_of(|dimension| {
        limits.get(dimension).is_some()
            && committed.get(dimension).saturating_add(slice.get(dimension).div_ceil(2)) > granted.get(dimension)
    })
}

/// A gateway instance's request for more of one budget key's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseAsk {
    /// The ledger key (the budget and whom it counts for, hashed).
    pub key: String,
    /// The budget's name (for people reading the service's ledger).
    pub budget: String,
    /// The window's start and end (epoch seconds).
    pub window_start: i64,
    /// See `window_start`.
    pub window_end: i64,
    /// The budget's windowed limits in this instance's policy.
    pub limits: Windowed,
    /// This instance's first slice (what it may have used before the service heard of it).
    pub slice: Grant,
    /// What the instance has committed in the window (spend and reservations; requests).
    pub committed: Grant,
}

/// How often an instance talks to the service about one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// Least time between two asks when the grant is running low (milliseconds).
    pub low_ms: u64,
    /// Time after which a key used in the window is reported even when it is not running low:
    /// the heartbeat that keeps the lease alive and the service's figures current.
    pub heartbeat_ms: u64,
}

/// The ask for `entry` (in the window `window_start`..`window_end`) when it is due: its free
/// grant is running low and no worker asked in the last `cadence.low_ms` — unless the service
/// said it has nothing more in every dimension running low (grants are never taken back, so
/// nothing more will come in that window) — or no worker asked in the last
/// `cadence.heartbeat_ms`. `None` otherwise, and for budgets without windowed limits.
pub fn ask_for(
    key: &str,
    budget: &Budget,
    entry: &Entry,
    window: (i64, i64),
    percent: u64,
    now_ms: u64,
    cadence: Cadence,
) -> Option<LeaseAsk> {
    let limits = &budget.limits;
    let windowed = Windowed::of(limits);
    if windowed == Windowed::default() || entry.window_start != window.0 {
        return None;
    }
    let since_asked = if entry.lease_asked_ms == 0 { u64::MAX } else { now_ms.saturating_sub(entry.lease_asked_ms) };
    let slice = slice(&windowed, percent);
    let committed = committed(entry);
    let low = running_low(&windowed, committed, grant_of(entry, limits, percent), slice);
    let wants_more = low & !spent_everywhere(entry) != 0 && since_asked >= cadence.low_ms;
    if !wants_more && since_asked < cadence.heartbeat_ms {
        return None;
    }
    Some(LeaseAsk {
        key: key.to_string(),
        budget: budget.name.clone(),
        window_start: window.0,
        window_end: window.1,
        limits: windowed,
        slice,
        committed,
    })
}

/// Most asks in one call to the service.
pub const MAX_ASKS_PER_CALL: usize = 1024;

/// What an instance sends to `POST <prefix>/v1/budget/leases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// The instance: random per Envoy start (a restarted gateway is a new instance).
    pub instance: String,
    /// One ask per key, at most [`MAX_ASKS_PER_CALL`].
    pub asks: Vec<LeaseAsk>,
}

/// The service's answer for one ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granted {
    /// The window it is for.
    pub window_start: i64,
    /// What the instance may commit in that window, in total.
    pub granted: Grant,
    /// The dimensions with nothing more to grant ([`TOKENS`], [`NANOS`], [`REQUESTS`]).
    pub exhausted: u8,
}

/// The service's answer: one grant per ask, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseAnswer {
    /// The grants.
    pub grants: Vec<Granted>,
}

impl LeaseRequest {
    /// Checks what the service must not take on trust: an instance name of 1–64 letters, digits,
    /// `-`, `_`, `.`; at most [`MAX_ASKS_PER_CALL`] asks; each key a budget ledger key of at most
    /// 200 bytes; a budget name of at most 128 bytes; a window that ends after it starts; and a
    /// first slice no larger than [`MAX_SLICE_PERCENT`] of its limit (so an instance cannot claim
    /// a bigger share than any policy allows). The error names the ask.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if self.instance.is_empty() || self.instance.len() > 64 || !self.instance.chars().all(name_ok) {
            return Err("instance: must be 1-64 letters, digits, '-', '_' or '.'".to_string());
        }
        if self.asks.len() > MAX_ASKS_PER_CALL {
            return Err(format!("asks: at most {MAX_ASKS_PER_CALL} per call"));
        }
        for (i, ask) in self.asks.iter().enumerate() {
            let most = slice(&ask.limits, MAX_SLICE_PERCENT);
            let problem = if !ask.key.starts_with(super::ledger::KEY_PREFIX) || ask.key.len() > 200 {
                Some("key: not a budget ledger key")
            } else if ask.budget.is_empty() || ask.budget.len() > 128 {
                Some("budget: must be 1-128 bytes")
            } else if ask.window_end <= ask.window_start {
                Some("window_end: must be after window_start")
            } else if ask.limits == Windowed::default() {
                Some("limits: no windowed limit")
            } else if Dimension::ALL
                .into_iter()
                .any(|dimension| ask.limits.get(dimension).is_some() && ask.slice.get(dimension) > most.get(dimension))
            {
                Some("slice: larger than half its limit")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(format!("asks[{i}].{problem}"));
            }
        }
        Ok(())
    }
}

/// The entry once the service granted `granted` for the window starting `window_start`
/// (`exhausted`: the dimensions it had nothing more to grant in): the grant rises to it when
/// that is still the entry's window (an answer for another window, or a lower one — late,
/// duplicated — changes nothing).
pub fn apply(mut entry: Entry, window_start: i64, granted: Grant, exhausted: u8) -> Entry {
    if entry.window_start != window_start {
        return entry;
    }
    let held = entry.lease.filter(|lease| lease.window_start == window_start);
    let raised = match held {
        Some(held) => {
            Lease { window_start, granted: held.granted.zip(granted, u64::max), exhausted: held.exhausted | exhausted }
        }
        None => Lease { window_start, granted, exhausted },
    };
    entry.lease = Some(raised);
    entry
}

/// The dimensions in which the service said it has nothing more to grant in the entry's window.
pub fn spent_everywhere(entry: &Entry) -> u8 {
    entry.lease.filter(|lease| lease.window_start == entry.window_start).map_or(0, |lease| lease.exhausted)
}

/// The service's record of one window of a budget key: the lowest limits reported and what is
/// granted in total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowLedger {
    /// The lowest limits any instance reported for the window.
    pub limits: Windowed,
    /// Everything granted to every instance in the window.
    pub granted: Grant,
}

impl WindowLedger {
    /// The limited dimensions with nothing more to grant.
    pub fn exhausted(&self) -> u8 {
        Dimension::set_of(|dimension| {
            self.limits.get(dimension).is_some_and(|limit| self.granted.get(dimension) >= limit)
        })
    }
}

/// The service's record of one instance's lease on one window of a key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceLease {
    /// What the instance was granted in the window, in total.
    pub granted: Grant,
    /// The most it reported having committed.
    pub committed: Grant,
}

/// The service's answer to `ask` from an instance: its lease, renewed. `window` is the key's
/// window record (`None`: the first ask of the window) and `lease` the instance's (`None`: the
/// instance's first ask); both are returned updated, for the service to store in one
/// transaction. The instance's first slice is counted when first heard of (it may have been
/// used already); in each dimension running low, the grant is raised by one slice (or to what
/// the instance has committed plus one slice, when that is more), only as far as the window's
/// total stays within the lowest limit.
pub fn renew(
    window: Option<WindowLedger>,
    lease: Option<InstanceLease>,
    ask: &LeaseAsk,
) -> (WindowLedger, InstanceLease) {
    let mut window = match window {
        Some(window) => WindowLedger { limits: window.limits.lowest(ask.limits), ..window },
        None => WindowLedger { limits: ask.limits, granted: Grant::default() },
    };
    let mut lease = lease.unwrap_or_else(|| {
        window.granted = window.granted.zip(ask.slice, u64::saturating_add);
        InstanceLease { granted: ask.slice, committed: Grant::default() }
    });
    lease.committed = lease.committed.zip(ask.committed, u64::max);
    for dimension in Dimension::ALL {
        let Some(limit) = window.limits.get(dimension) else { continue };
        let (committed, slice) = (lease.committed.get(dimension), ask.slice.get(dimension));
        let (total, granted) = (window.granted.get_mut(dimension), lease.granted.get_mut(dimension));
        if committed.saturating_add(slice.div_ceil(2)) <= *granted {
            continue;
        }
        // One more slice — or, when more is committed than granted (reservations carried into a
        // new window), enough for that plus one slice — as far as the limit allows.
        let wanted = committed.saturating_add(slice).saturating_sub(*granted).max(slice);
        let more = wanted.min(limit.saturating_sub(*total));
        *total = total.saturating_add(more);
        *granted = granted.saturating_add(more);
    }
    (window, lease)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::budget::ledger::Amount;

    const WINDOW: (i64, i64) = (86_400, 172_800);

    fn tokens(limit: u64) -> Limits {
        Limits { tokens: Some(limit), ..Limits::default() }
    }

    fn entry_with(committed_tokens: u64) -> Entry {
        Entry { window_start: WINDOW.0, spent: Amount { tokens: committed_tokens, nanos: 0 }, ..Entry::default() }
    }

    #[test]
    fn a_slice_is_a_share_of_each_limit_rounded_up_and_at_most_half() {
        let limits = Windowed { tokens: Some(1_000), nanos: Some(3), requests: None };
        assert_eq!(slice(&limits, 5), Grant { tokens: 50, nanos: 1, requests: 0 });
        assert_eq!(slice(&limits, 90).tokens, 500, "capped at half");
        assert_eq!(slice(&Windowed { tokens: Some(u64::MAX), ..limits }, 50).tokens, u64::MAX / 2 + 1);
        assert_eq!(slice(&Windowed { tokens: Some(1), ..limits }, 1).tokens, 1, "at least one");
    }

    #[test]
    fn without_a_grant_an_instance_admits_within_its_first_slice() {
        let limits = Limits { tokens: Some(1_000), requests: Some(10), concurrent: Some(3), cost_nanos: None };
        let effective = effective_limits(&limits, &entry_with(0), Some(10));
        assert_eq!(effective, Limits { tokens: Some(100), requests: Some(1), concurrent: Some(3), cost_nanos: None });
        assert_eq!(effective_limits(&limits, &entry_with(0), None), limits, "no leases: the policy's limits");
    }

    #[test]
    fn a_grant_for_the_current_window_replaces_the_slice_and_an_old_one_does_not() {
        let limits = tokens(1_000);
        let granted = apply(entry_with(0), WINDOW.0, Grant { tokens: 400, ..Grant::default() }, 0);
        assert_eq!(effective_limits(&limits, &granted, Some(10)).tokens, Some(400));
        let next_window = granted.in_window(WINDOW.1);
        assert_eq!(effective_limits(&limits, &next_window, Some(10)).tokens, Some(100));
        assert_eq!(apply(next_window, WINDOW.0, Grant { tokens: 900, ..Grant::default() }, 0), next_window);
    }

    #[test]
    fn grants_only_grow_within_a_window() {
        let entry = apply(entry_with(0), WINDOW.0, Grant { tokens: 400, nanos: 0, requests: 2 }, 0);
        let late = apply(entry, WINDOW.0, Grant { tokens: 300, nanos: 5, requests: 1 }, TOKENS);
        assert_eq!(late.lease.map(|l| l.granted), Some(Grant { tokens: 400, nanos: 5, requests: 2 }));
        assert_eq!(spent_everywhere(&apply(late, WINDOW.0, Grant::default(), REQUESTS)), TOKENS | REQUESTS);
        assert_eq!(spent_everywhere(&late.in_window(WINDOW.1)), 0, "a new window starts afresh");
    }

    fn budget(limits: Limits) -> Budget {
        Budget {
            name: "b".into(),
            per: super::super::Scope::Role,
            period: super::super::window::Period::Day,
            zone: super::super::window::Zone::default(),
            limits,
            on_exhausted: super::super::OnExhausted::Refuse,
            clamp_min_tokens: 1,
        }
    }

    const CADENCE: Cadence = Cadence { low_ms: 1_000, heartbeat_ms: 5_000 };

    #[test]
    fn an_instance_asks_when_under_half_a_slice_is_free_and_not_twice_in_a_row() {
        let b = budget(tokens(1_000));
        let asked = |committed: u64, at: u64| Entry { lease_asked_ms: at, ..entry_with(committed) };
        assert_eq!(ask_for("k", &b, &asked(49, 4_500), WINDOW, 10, 5_000, CADENCE), None);
        let ask = ask_for("k", &b, &entry_with(51), WINDOW, 10, 5_000, CADENCE).unwrap();
        assert_eq!((ask.slice.tokens, ask.committed.tokens, ask.window_start), (100, 51, WINDOW.0));
        assert_eq!(ask_for("k", &b, &asked(51, 4_500), WINDOW, 10, 5_000, CADENCE), None);
        assert!(ask_for("k", &b, &asked(51, 4_500), WINDOW, 10, 5_500, CADENCE).is_some());
        let concurrent_only = budget(Limits { concurrent: Some(2), ..Limits::default() });
        assert_eq!(ask_for("k", &concurrent_only, &entry_with(0), WINDOW, 10, 5_000, CADENCE), None);
        assert_eq!(ask_for("k", &b, &entry_with(51), (0, 86_400), 10, 5_000, CADENCE), None, "another window");
        let spent = apply(asked(51, 4_500), WINDOW.0, Grant { tokens: 100, ..Grant::default() }, TOKENS);
        assert_eq!(ask_for("k", &b, &spent, WINDOW, 10, 5_000, CADENCE), None, "nothing more will come");
    }

    #[test]
    fn a_key_in_use_is_reported_every_heartbeat_even_with_room() {
        let b = budget(tokens(1_000));
        let asked = |at: u64| Entry { lease_asked_ms: at, ..entry_with(10) };
        assert_eq!(ask_for("k", &b, &asked(1_000), WINDOW, 10, 5_999, CADENCE), None);
        let ask = ask_for("k", &b, &asked(1_000), WINDOW, 10, 6_000, CADENCE).unwrap();
        assert_eq!(ask.committed.tokens, 10);
    }

    #[test]
    fn the_service_refuses_asks_it_must_not_trust() {
        let good = LeaseRequest { instance: "gw-1".into(), asks: vec![ask(0, 1_000)] };
        assert_eq!(good.validate(), Ok(()));
        let key = LeaseAsk { key: "warden.budget.b.role.00".into(), ..ask(0, 1_000) };
        assert_eq!(LeaseRequest { asks: vec![key.clone()], ..good.clone() }.validate(), Ok(()));
        let cases = [
            (LeaseRequest { instance: "gw 1".into(), ..good.clone() }, "instance"),
            (LeaseRequest { asks: vec![key.clone(); MAX_ASKS_PER_CALL + 1], ..good.clone() }, "asks: at most"),
            (LeaseRequest { asks: vec![LeaseAsk { key: "x".into(), ..key.clone() }], ..good.clone() }, "asks[0].key"),
            (
                LeaseRequest {
                    asks: vec![key.clone(), LeaseAsk { window_end: WINDOW.0, ..key.clone() }],
                    ..good.clone()
                },
                "asks[1].window_end",
            ),
            (
                LeaseRequest {
                    asks: vec![LeaseAsk { slice: Grant { tokens: 501, ..Grant::default() }, ..key.clone() }],
                    ..good.clone()
                },
                "asks[0].slice",
            ),
            (LeaseRequest { asks: vec![LeaseAsk { limits: Windowed::default(), ..key }], ..good }, "asks[0].limits"),
        ];
        for (request, field) in cases {
            let error = request.validate().unwrap_err();
            assert!(error.starts_with(field), "{error} should name {field}");
        }
    }

    fn ask(committed: u64, limit: u64) -> LeaseAsk {
        let limits = Windowed { tokens: Some(limit), ..Windowed::default() };
        LeaseAsk {
            key: "warden.budget.k".into(),
            budget: "b".into(),
            window_start: WINDOW.0,
            window_end: WINDOW.1,
            limits,
            slice: slice(&limits, 10),
            committed: Grant { tokens: committed, ..Grant::default() },
        }
    }

    #[test]
    fn the_service_counts_the_first_slice_and_grants_more_within_the_limit() {
        let (window, lease) = renew(None, None, &ask(60, 1_000));
        assert_eq!((window.granted.tokens, lease.granted.tokens), (200, 200), "first slice + one more");
        let (window, lease) = renew(Some(window), Some(lease), &ask(190, 1_000));
        assert_eq!((window.granted.tokens, lease.granted.tokens), (300, 300));
        let (window, lease) = renew(Some(window), Some(lease), &ask(200, 1_000));
        assert_eq!(lease.granted.tokens, 300, "still more than half a slice free: nothing more");
        let (window, other) = renew(Some(window), None, &ask(0, 1_000));
        assert_eq!((window.granted.tokens, other.granted.tokens), (400, 100));
    }

    #[test]
    fn reservations_carried_into_a_new_window_are_covered_in_one_answer() {
        // 700 tokens of exchanges still in flight from yesterday, against a first slice of 100.
        let (window, lease) = renew(None, None, &ask(700, 1_000));
        assert_eq!((window.granted.tokens, lease.granted.tokens), (800, 800));
        let (window, lease) = renew(None, None, &ask(5_000, 1_000));
        assert_eq!((window.granted.tokens, lease.granted.tokens), (1_000, 1_000), "never beyond the limit");
    }

    #[test]
    fn the_service_grants_nothing_beyond_the_lowest_limit_reported() {
        let (window, lease) = renew(None, None, &ask(90, 1_000));
        // A second instance whose policy says 250: its first slice (25) is counted.
        let (window, _) = renew(Some(window), None, &ask(0, 250));
        assert_eq!((window.limits.tokens, window.granted.tokens), (Some(250), 225));
        let (window, lease) = renew(Some(window), Some(lease), &ask(199, 1_000));
        assert_eq!((window.granted.tokens, lease.granted.tokens), (250, 225), "only up to 250");
        let (window, lease) = renew(Some(window), Some(lease), &ask(224, 1_000));
        assert_eq!((window.granted.tokens, lease.granted.tokens), (250, 225), "nothing left to grant");
        assert_eq!(window.exhausted(), TOKENS);
    }
}

//! Renewing leases from a worker: which budget keys it watches, which asks are due on its tick,
//! and what the service's answer changes — the glue only sends and receives
//! (`src/glue/leases.rs`).
//!
//! Each worker keeps the keys its exchanges were checked against ([`KeysInUse`]; noted at every
//! admission attempt, admitted or refused, and when an exchange settles). On the tick,
//! [`due_asks`] reads each key's ledger entry and asks [`lease::ask_for`] whether an ask is due;
//! an ask is **claimed** by writing `lease_asked_ms = now` into the entry with compare-and-swap,
//! only if no worker did since the entry was read — so the workers of one Envoy ask once between
//! them, whichever ticks first. [`apply_answer`] checks the service's answer (one grant per ask,
//! each for the window asked about) and raises each entry's grant with [`lease::apply`].
//!
//! Bounds: at most [`MAX_KEYS_IN_USE`] keys per worker (keys are hashed and the ledger holds at
//! most `max_keys` of them; a key beyond the bound is not watched here — its instance keeps its
//! first slice, less room, never more); a key is forgotten once its budget's window has moved on
//! without it, or when it has been idle for two heartbeats with nothing in flight and an ask
//! made since its last use (the service has its final figures). At most
//! [`lease::MAX_ASKS_PER_CALL`] asks per tick; the rest wait for the next.
//!
//! A request refused because the instance's grant cannot fit it while the budget can
//! ([`KeysInUse::want`]) is counted as committed in the next ask of its key: the core asks only
//! when less than half a slice is free, so without it a request larger than the free grant would
//! wait for ever while at least half a slice is free (each ask adds a slice: a request larger
//! than a slice fits after a few asks, one per `ask_every`).
//!
//! Failures change nothing: a lost or refused answer leaves the grants as they were (the claim
//! stays, so the next ask waits `ask_every`), and the request path never waits for any of it.

use super::lease::{self, Cadence, LeaseAnswer, LeaseAsk};
use super::ledger::{self, Amount, Entry, Store};
use super::window::bounds;
use super::Budget;
use std::collections::BTreeMap;

/// Most budget keys one worker watches.
pub const MAX_KEYS_IN_USE: usize = 10_000;
/// Largest answer read from the service, in bytes (a full batch of grants is about 100 KiB).
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The budget keys a worker's exchanges used: key → (budget name, when last used).
#[derive(Debug, Default)]
pub struct KeysInUse {
    keys: BTreeMap<String, Use>,
}

#[derive(Debug)]
struct Use {
    budget: String,
    last_ms: u64,
    /// The most a request refused for want of lease needed since the last ask.
    wanted: Amount,
}

impl KeysInUse {
    /// Notes that an exchange used `key` of `budget` at `now_ms`. `false` when the key is new
    /// and [`MAX_KEYS_IN_USE`] keys are watched already (it is not noted).
    pub fn note(&mut self, key: &str, budget: &str, now_ms: u64) -> bool {
        if let Some(seen) = self.keys.get_mut(key) {
            seen.last_ms = seen.last_ms.max(now_ms);
            return true;
        }
        if self.keys.len() >= MAX_KEYS_IN_USE {
            return false;
        }
        self.keys
            .insert(key.to_string(), Use { budget: budget.to_string(), last_ms: now_ms, wanted: Amount::default() });
        true
    }

    /// Notes that a request was refused because this instance's grant on `key` could not fit
    /// `amount` although the budget could ([`super::Refusal::Exhausted::short_of_lease`]): the
    /// next ask counts it as committed, so that the service grants room for it even when the
    /// free grant is above the half slice that would otherwise trigger an ask. Kept until an ask
    /// is claimed (a refused client that retries notes it again). A key not watched is ignored.
    pub fn want(&mut self, key: &str, amount: Amount) {
        if let Some(seen) = self.keys.get_mut(key) {
            seen.wanted.tokens = seen.wanted.tokens.max(amount.tokens);
            seen.wanted.nanos = seen.wanted.nanos.max(amount.nanos);
        }
    }

    /// How many keys are watched.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is watched.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Why a key is no longer watched, or what to do with it.
enum Verdict {
    Forget,
    Keep,
    Ask(LeaseAsk),
}

/// What a tick's asks are made with.
#[derive(Clone, Copy)]
pub struct Tick<'a> {
    /// The ledger (Envoy's shared data).
    pub store: &'a dyn Store,
    /// The slice size, in percent of each limit.
    pub percent: u64,
    /// When asks are due.
    pub cadence: Cadence,
    /// The clock.
    pub now_ms: u64,
    /// The ledger's key bound (`accounting.max_keys`).
    pub max_keys: u64,
}

/// The asks due at `tick.now_ms`, each claimed in its entry (at most `most`): `budget_of` finds
/// a budget by name. Keys that need no more watching are forgotten. Ledger errors skip the key
/// until the next tick.
pub fn due_asks<'a>(
    keys: &mut KeysInUse,
    budget_of: impl Fn(&str) -> Option<&'a Budget>,
    tick: &Tick,
    most: usize,
) -> Vec<LeaseAsk> {
    let mut asks = Vec::new();
    keys.keys.retain(|key, seen| {
        if asks.len() >= most {
            return true;
        }
        let budget = budget_of(&seen.budget);
        match verdict(key, seen, budget, tick) {
            Verdict::Forget => false,
            Verdict::Keep => true,
            Verdict::Ask(ask) => {
                asks.push(ask);
                true
            }
        }
    });
    asks
}

fn verdict(key: &str, seen: &mut Use, budget: Option<&Budget>, tick: &Tick) -> Verdict {
    let Tick { store, percent, cadence, now_ms, max_keys } = *tick;
    let Some(budget) = budget else { return Verdict::Forget };
    let entry = match store.get(key) {
        Ok(Some((bytes, _))) => match Entry::decode(&bytes) {
            Some(entry) => entry,
            None => return Verdict::Forget,
        },
        Ok(None) => return Verdict::Forget,
        Err(_) => return Verdict::Keep,
    };
    let window = bounds(budget.period, budget.zone, (now_ms / 1000) as i64);
    if entry.window_start != window.0 {
        // Not used in this window: a later admission notes it again.
        return Verdict::Forget;
    }
    let idle = now_ms.saturating_sub(seen.last_ms) > cadence.heartbeat_ms.saturating_mul(2);
    if idle && entry.in_flight == 0 && entry.lease_asked_ms > seen.last_ms {
        return Verdict::Forget;
    }
    // A request waiting for room counts as committed: the ask (and the service) see it.
    let wanted = seen.wanted;
    let with_wanted = Entry {
        reserved: Amount {
            tokens: entry.reserved.tokens.saturating_add(wanted.tokens),
            nanos: entry.reserved.nanos.saturating_add(wanted.nanos),
        },
        ..entry
    };
    let Some(ask) = lease::ask_for(key, budget, &with_wanted, window, percent, now_ms, cadence) else {
        return Verdict::Keep;
    };
    let read = entry.lease_asked_ms;
    let claimed = ledger::update(store, key, now_ms, max_keys, |current| {
        if current.lease_asked_ms == read {
            Ok(Entry { lease_asked_ms: now_ms, ..current })
        } else {
            Err(())
        }
    });
    match claimed {
        Ok(Ok(_)) => {
            seen.wanted = Amount::default();
            Verdict::Ask(ask)
        }
        // Another worker asked, or the ledger is busy: nothing to send from here.
        Ok(Err(())) | Err(_) => Verdict::Keep,
    }
}

/// Why an answer changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// No answer (the call failed or timed out).
    NoAnswer,
    /// The service answered with another status than 200.
    Status(u16),
    /// The body is not a [`LeaseAnswer`] (the parser's reason).
    Malformed(String),
    /// The answer does not have one grant per ask, each for the window asked about.
    Mismatched {
        /// Asks sent.
        asked: usize,
        /// Grants received.
        granted: usize,
    },
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoAnswer => write!(f, "no answer"),
            Self::Status(status) => write!(f, "HTTP {status}"),
            Self::Malformed(reason) => write!(f, "an answer that is not a lease answer ({reason})"),
            Self::Mismatched { asked, granted } => {
                write!(f, "{granted} grants for {asked} asks, or grants for other windows than asked")
            }
        }
    }
}

/// Raises the grants of the keys in `asks` to the service's answer (`status` and `body`; `None`
/// when there was none). Returns how many grants were applied; ledger errors skip their key (the
/// next ask brings the grant again: grants only grow). An answer that is not exactly one grant
/// per ask, for the window asked about, changes nothing; a grant above the limit asked about
/// counts as the limit (the answer is not signed: a forged one cannot lift a budget).
pub fn apply_answer(
    store: &dyn Store,
    asks: &[LeaseAsk],
    answer: Option<(u16, &[u8])>,
    now_ms: u64,
    max_keys: u64,
) -> Result<usize, AnswerError> {
    let (status, body) = answer.ok_or(AnswerError::NoAnswer)?;
    if status != 200 {
        return Err(AnswerError::Status(status));
    }
    if body.len() > MAX_ANSWER_BYTES {
        return Err(AnswerError::Malformed(format!("over {MAX_ANSWER_BYTES} bytes")));
    }
    let answer: LeaseAnswer = serde_json::from_slice(body).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    let matches = answer.grants.len() == asks.len()
        && answer.grants.iter().zip(asks).all(|(granted, ask)| granted.window_start == ask.window_start);
    if !matches {
        return Err(AnswerError::Mismatched { asked: asks.len(), granted: answer.grants.len() });
    }
    let mut applied = 0;
    for (granted, ask) in answer.grants.iter().zip(asks) {
        // No grant is worth more than the whole limit, whatever the answer says.
        let capped = lease::Grant::from_fn(|dimension| {
            let amount = granted.granted.get(dimension);
            ask.limits.get(dimension).map_or(amount, |limit| amount.min(limit))
        });
        let raised = ledger::update(store, &ask.key, now_ms, max_keys, |entry| {
            Ok::<_, ()>(lease::apply(entry, granted.window_start, capped, granted.exhausted))
        });
        if let Ok(Ok(_)) = raised {
            applied += 1;
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::budget::lease::{Grant, Granted, TOKENS};
    use crate::core::budget::ledger::{Amount, MemoryStore};
    use crate::core::budget::window::{Period, Zone};
    use crate::core::budget::{Limits, OnExhausted, Scope};

    /// 2026-12-07 12:00 UTC.
    const NOW: u64 = 1_796_644_800_000;
    const DAY: i64 = 1_796_601_600;
    const CADENCE: Cadence = Cadence { low_ms: 1_000, heartbeat_ms: 5_000 };
    const KEY: &str = "warden.budget.team.role.0011223344556677";

    fn budget() -> Budget {
        Budget {
            name: "team".into(),
            per: Scope::Role,
            period: Period::Day,
            zone: Zone::default(),
            limits: Limits { tokens: Some(1_000), ..Limits::default() },
            on_exhausted: OnExhausted::Refuse,
            clamp_min_tokens: 1,
        }
    }

    fn store_with(entry: Entry) -> MemoryStore {
        let store = MemoryStore::default();
        store.set(KEY, &entry.encode(), 0).unwrap();
        store
    }

    fn entry(committed: u64) -> Entry {
        Entry { window_start: DAY, spent: Amount { tokens: committed, nanos: 0 }, ..Entry::default() }
    }

    fn read(store: &MemoryStore) -> Entry {
        Entry::decode(&store.get(KEY).unwrap().unwrap().0).unwrap()
    }

    fn tick(store: &MemoryStore, now_ms: u64) -> Tick<'_> {
        Tick { store, percent: 10, cadence: CADENCE, now_ms, max_keys: 100 }
    }

    fn due(keys: &mut KeysInUse, store: &MemoryStore, now: u64) -> Vec<LeaseAsk> {
        let b = budget();
        due_asks(keys, |name| (name == "team").then_some(&b), &tick(store, now), 1024)
    }

    #[test]
    fn a_key_running_low_is_asked_for_once_between_the_workers() {
        let store = store_with(entry(60));
        let (mut first, mut second) = (KeysInUse::default(), KeysInUse::default());
        first.note(KEY, "team", NOW);
        second.note(KEY, "team", NOW);
        let asks = due(&mut first, &store, NOW);
        assert_eq!(asks.len(), 1);
        assert_eq!((asks[0].committed.tokens, asks[0].slice.tokens), (60, 100));
        assert_eq!(read(&store).lease_asked_ms, NOW, "the ask is claimed in the shared entry");
        assert!(due(&mut second, &store, NOW + 10).is_empty(), "the other worker sees the claim");
        assert_eq!(due(&mut second, &store, NOW + 1_000).len(), 1, "asked again after ask_every");
    }

    #[test]
    fn a_key_with_room_waits_for_the_heartbeat() {
        let store = store_with(Entry { lease_asked_ms: NOW, ..entry(10) });
        let mut keys = KeysInUse::default();
        keys.note(KEY, "team", NOW);
        assert!(due(&mut keys, &store, NOW + 4_999).is_empty());
        assert_eq!(due(&mut keys, &store, NOW + 5_000).len(), 1);
    }

    #[test]
    fn keys_are_forgotten_when_their_window_moved_on_or_they_went_idle_after_a_report() {
        let store = store_with(Entry { window_start: DAY - 86_400, ..entry(600) });
        let mut keys = KeysInUse::default();
        keys.note(KEY, "team", NOW);
        assert!(due(&mut keys, &store, NOW).is_empty());
        assert!(keys.is_empty(), "not used in this window");

        let store = store_with(entry(10));
        keys.note(KEY, "team", NOW);
        assert_eq!(due(&mut keys, &store, NOW).len(), 1, "first report");
        assert!(due(&mut keys, &store, NOW + 10_001).len() == 1 && keys.len() == 1, "still reported");
        assert!(due(&mut keys, &store, NOW + 10_002).is_empty());
        assert!(keys.is_empty(), "idle for two heartbeats with its last figures reported");

        let store = store_with(Entry { in_flight: 1, lease_asked_ms: NOW + 1, ..entry(10) });
        keys.note(KEY, "team", NOW);
        due(&mut keys, &store, NOW + 60_000);
        assert_eq!(keys.len(), 1, "an exchange still in flight keeps it");
        keys.note("warden.budget.gone.role.00", "gone", NOW);
        due(&mut keys, &store, NOW + 60_000);
        assert_eq!(keys.len(), 1, "a budget no longer in the policy is forgotten");
    }

    #[test]
    fn a_request_waiting_for_room_is_asked_for_even_with_half_a_slice_free() {
        // 1000 tokens, 10% slices (100): granted 400, 250 committed.
        let granted = lease::apply(entry(250), DAY, lease::Grant { tokens: 400, ..lease::Grant::default() }, 0);
        let store = store_with(Entry { lease_asked_ms: NOW - 2_000, ..granted });
        let mut keys = KeysInUse::default();
        keys.note(KEY, "team", NOW);
        assert!(due(&mut keys, &store, NOW).is_empty(), "150 free: more than half a slice");
        keys.want(KEY, Amount { tokens: 200, nanos: 0 });
        let asks = due(&mut keys, &store, NOW);
        assert_eq!(asks.len(), 1);
        assert_eq!(asks[0].committed.tokens, 450, "the waiting request counts as committed");
        assert!(due(&mut keys, &store, NOW + 1_000).is_empty(), "forgotten once asked for");
        keys.want("warden.budget.other.role.00", Amount { tokens: 1, nanos: 0 });
        assert_eq!(keys.len(), 1, "a key not watched is not added by a want");
    }

    #[test]
    fn a_hostile_flood_of_keys_is_bounded() {
        let mut keys = KeysInUse::default();
        for i in 0..MAX_KEYS_IN_USE {
            assert!(keys.note(&format!("warden.budget.team.subject.{i:016x}"), "team", NOW));
        }
        assert!(!keys.note("warden.budget.team.subject.ffffffffffffffff", "team", NOW));
        assert!(keys.note("warden.budget.team.subject.0000000000000000", "team", NOW), "known keys still noted");
        assert_eq!(keys.len(), MAX_KEYS_IN_USE);
    }

    #[test]
    fn at_most_a_batch_of_asks_is_claimed_per_tick() {
        let store = MemoryStore::default();
        let mut keys = KeysInUse::default();
        for i in 0..3 {
            let key = format!("warden.budget.team.subject.{i:016x}");
            store.set(&key, &entry(60).encode(), 0).unwrap();
            keys.note(&key, "team", NOW);
        }
        let b = budget();
        let find = |name: &str| (name == "team").then_some(&b);
        assert_eq!(due_asks(&mut keys, find, &tick(&store, NOW), 2).len(), 2);
        assert_eq!(due_asks(&mut keys, find, &tick(&store, NOW), 2).len(), 1, "the third waited");
    }

    fn answer(grants: &[Granted]) -> Vec<u8> {
        serde_json::to_vec(&LeaseAnswer { grants: grants.to_vec() }).unwrap()
    }

    fn grant(window_start: i64, tokens: u64) -> Granted {
        Granted { window_start, granted: Grant { tokens, ..Grant::default() }, exhausted: 0 }
    }

    #[test]
    fn an_answer_raises_the_grant_of_each_key_asked_about() {
        let store = store_with(entry(60));
        let mut keys = KeysInUse::default();
        keys.note(KEY, "team", NOW);
        let asks = due(&mut keys, &store, NOW);
        let body = answer(&[Granted { exhausted: TOKENS, ..grant(DAY, 200) }]);
        assert_eq!(apply_answer(&store, &asks, Some((200, &body)), NOW, 100), Ok(1));
        let lease = read(&store).lease.unwrap();
        assert_eq!((lease.granted.tokens, lease.exhausted), (200, TOKENS));
        let lower = answer(&[grant(DAY, 100)]);
        assert_eq!(apply_answer(&store, &asks, Some((200, &lower)), NOW, 100), Ok(1));
        assert_eq!(read(&store).lease.unwrap().granted.tokens, 200, "grants only grow");
        let forged = answer(&[grant(DAY, u64::MAX)]);
        assert_eq!(apply_answer(&store, &asks, Some((200, &forged)), NOW, 100), Ok(1));
        assert_eq!(read(&store).lease.unwrap().granted.tokens, 1_000, "never above the limit");
    }

    #[test]
    fn a_failed_or_wrong_answer_changes_nothing() {
        let store = store_with(entry(60));
        let mut keys = KeysInUse::default();
        keys.note(KEY, "team", NOW);
        let asks = due(&mut keys, &store, NOW);
        let before = read(&store);
        let good = answer(&[grant(DAY, 200)]);
        let mismatched = answer(&[grant(DAY, 200), grant(DAY, 200)]);
        let other_window = answer(&[grant(DAY + 86_400, 200)]);
        let replies: [Option<(u16, &[u8])>; 6] = [
            None,
            Some((503, &good)),
            Some((200, b"{\"grants\": [{}]}")),
            Some((200, b"[1, 2")),
            Some((200, &mismatched)),
            Some((200, &other_window)),
        ];
        let expected = [
            "no answer",
            "HTTP 503",
            "an answer that is not a lease answer",
            "an answer that is not a lease answer",
            "2 grants for 1 asks",
            "1 grants for 1 asks, or grants for other windows",
        ];
        for (reply, expected) in replies.into_iter().zip(expected) {
            let error = apply_answer(&store, &asks, reply, NOW, 100).unwrap_err();
            assert!(error.to_string().starts_with(expected), "{error} should say {expected}");
            assert_eq!(read(&store), before);
        }
        let huge = vec![b' '; MAX_ANSWER_BYTES + 1];
        assert!(matches!(apply_answer(&store, &asks, Some((200, &huge)), NOW, 100), Err(AnswerError::Malformed(_))));
    }
}

//! The ledger: one entry per budget key (a budget and the role, subject, group or job it is
//! counted for), kept in a compare-and-swap key-value store that every Envoy worker shares.
//!
//! An [`Entry`] holds the current window's spend (tokens, cost, requests), the reservations of
//! exchanges still in flight, how many are in flight, and — with leases — the instance's grant
//! from `warden serve` for a window ([`Lease`], see [`super::lease`]). Every change is a pure function of the
//! old entry ([`Entry::reserve`], [`Entry::settle`]) applied with [`update`]: read the value and
//! its CAS token, compute the new value, write it if the token is unchanged, else read again —
//! at most [`MAX_CAS_RETRIES`] times, then give up ([`LedgerError::Contended`]; the caller fails
//! closed). A window roll-over resets spend and requests but keeps reservations and in-flight
//! counts: those exchanges settle into the window they end in.
//!
//! Creating a key: Envoy's shared data cannot create a key atomically (a write with CAS token 0
//! overwrites whatever is there), so two workers creating the same key at once could erase each
//! other's reservation. Creation therefore happens under a lock entry ([`LOCK_KEY`], taken and
//! released with CAS): the creator re-reads the key under the lock and writes it only if it is
//! still missing. Every other write is a CAS on an existing key. The lock also counts the keys,
//! so there are at most `max_keys` of them: an attacker cannot grow shared data without bound.
//!
//! The store abstraction ([`Store`]) is what the glue implements over Envoy's shared data;
//! [`MemoryStore`] serves native tests and a single VM.

use super::grant::Grant;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// CAS attempts before an update gives up.
pub const MAX_CAS_RETRIES: usize = 64;
/// The shared-data key of the creation lock and key count.
pub const LOCK_KEY: &str = "warden.budget.lock";
/// Prefix of every budget entry's key.
pub const KEY_PREFIX: &str = "warden.budget.";
/// A lock older than this (milliseconds) was left by a VM that died holding it: it is broken.
const STALE_LOCK_MS: u64 = 5_000;

/// Why a store call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The value changed since it was read (CAS token mismatch).
    CasMismatch,
    /// The host call failed (status code).
    Host(u32),
}

/// A shared key-value store with compare-and-swap (Envoy's shared data).
pub trait Store: std::fmt::Debug {
    /// The value of `key` and its CAS token, `None` when unset.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    /// Writes `value` if the key's CAS token is still `cas` (`0`: unconditionally).
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// An in-process store (tests, and a gateway without shared data).
#[derive(Debug, Default)]
pub struct MemoryStore {
    values: RefCell<BTreeMap<String, (Vec<u8>, u32)>>,
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Ok(self.values.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let mut values = self.values.borrow_mut();
        let current = values.get(key).map_or(0, |(_, token)| *token);
        if cas != 0 && cas != current {
            return Err(StoreError::CasMismatch);
        }
        values.insert(key.to_string(), (value.to_vec(), current.wrapping_add(1).max(1)));
        Ok(())
    }
}

/// Why the ledger could not be updated; the request is refused (503), never let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerError {
    /// Other workers kept changing the entry: [`MAX_CAS_RETRIES`] attempts failed.
    Contended,
    /// The ledger holds `max_keys` keys already.
    Full,
    /// A stored value is not an entry (never written by this version).
    Corrupt,
    /// The host's shared data failed (status code).
    Host(u32),
}

impl LedgerError {
    /// Why, in words for the refusal.
    pub fn describe(self) -> String {
        match self {
            Self::Contended => "the budget ledger is too contended right now".to_string(),
            Self::Full => "the budget ledger is full (budgets.max_keys)".to_string(),
            Self::Corrupt => "a budget ledger entry is unreadable".to_string(),
            Self::Host(code) => format!("the budget ledger could not be read (host status {code})"),
        }
    }
}

impl From<StoreError> for LedgerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::CasMismatch => Self::Contended,
            StoreError::Host(code) => Self::Host(code),
        }
    }
}

/// An amount of budget: tokens and cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amount {
    /// Tokens.
    pub tokens: u64,
    /// Cost in nanos.
    pub nanos: u64,
}

/// One budget key's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// Start of the window `spent` and `requests` count in (epoch seconds).
    pub window_start: i64,
    /// Settled spend in the window.
    pub spent: Amount,
    /// Requests admitted in the window.
    pub requests: u64,
    /// Reservations of exchanges in flight (any window).
    pub reserved: Amount,
    /// Exchanges in flight.
    pub in_flight: u64,
    /// What `warden serve` granted this gateway instance, for one window (leases only; see
    /// [`super::lease`]).
    pub lease: Option<Lease>,
    /// When a worker last asked `warden serve` for more of this key (milliseconds; `0`: never),
    /// so that the workers of one instance ask once between them.
    pub lease_asked_ms: u64,
}

/// A grant from `warden serve` for one window of a budget key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lease {
    /// The window the grant is for (epoch seconds of its start).
    pub window_start: i64,
    /// What this instance may commit in that window, in total.
    pub granted: Grant,
    /// The dimensions ([`super::lease::TOKENS`], [`super::lease::NANOS`],
    /// [`super::lease::REQUESTS`]) the service had nothing more to grant in when it last answered.
    pub exhausted: u8,
}

/// Bytes of an encoded entry.
const ENTRY_BYTES: usize = 104;
/// Bytes of an entry written before leases existed (still read: shared data outlives a reload
/// of the filter).
const ENTRY_BYTES_BEFORE_LEASES: usize = 56;

impl Entry {
    /// The entry as stored: thirteen little-endian 64-bit fields.
    pub fn encode(&self) -> [u8; ENTRY_BYTES] {
        let lease = self.lease.unwrap_or_default();
        let fields = [
            self.window_start as u64,
            self.spent.tokens,
            self.spent.nanos,
            self.requests,
            self.reserved.tokens,
            self.reserved.nanos,
            self.in_flight,
            self.lease.map_or(0, |lease| 1 | u64::from(lease.exhausted) << 1),
            lease.window_start as u64,
            lease.granted.tokens,
            lease.granted.nanos,
            lease.granted.requests,
            self.lease_asked_ms,
        ];
        let mut out = [0u8; ENTRY_BYTES];
        for (chunk, field) in out.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        out
    }

    /// Reads a stored entry (either layout); `None` when the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        if bytes.len() != ENTRY_BYTES && bytes.len() != ENTRY_BYTES_BEFORE_LEASES {
            return None;
        }
        let mut fields = bytes.chunks_exact(8).map(|c| <[u8; 8]>::try_from(c).map(u64::from_le_bytes).unwrap_or(0));
        let mut next = || fields.next().unwrap_or(0);
        let mut entry = Entry {
            window_start: next() as i64,
            spent: Amount { tokens: next(), nanos: next() },
            requests: next(),
            reserved: Amount { tokens: next(), nanos: next() },
            in_flight: next(),
            lease: None,
            lease_asked_ms: 0,
        };
        let lease_state = next();
        let lease = Lease {
            window_start: next() as i64,
            granted: Grant { tokens: next(), nanos: next(), requests: next() },
            exhausted: u8::try_from(lease_state >> 1).unwrap_or(u8::MAX),
        };
        entry.lease = (lease_state != 0).then_some(lease);
        entry.lease_asked_ms = next();
        Some(entry)
    }

    /// The entry as of the window starting at `window_start`: a new window resets spend and
    /// requests (reservations and in-flight exchanges carry over).
    pub fn in_window(mut self, window_start: i64) -> Entry {
        if self.window_start != window_start {
            self.window_start = window_start;
            self.spent = Amount::default();
            self.requests = 0;
        }
        self
    }

    /// What is committed in the window: spend plus reservations.
    pub fn committed(&self) -> Amount {
        Amount {
            tokens: self.spent.tokens.saturating_add(self.reserved.tokens),
            nanos: self.spent.nanos.saturating_add(self.reserved.nanos),
        }
    }

    /// The entry with `ask` reserved and one more request in flight (no limit check: see
    /// [`super::check`]).
    pub fn reserve(mut self, ask: Amount) -> Entry {
        self.reserved.tokens = self.reserved.tokens.saturating_add(ask.tokens);
        self.reserved.nanos = self.reserved.nanos.saturating_add(ask.nanos);
        self.requests = self.requests.saturating_add(1);
        self.in_flight = self.in_flight.saturating_add(1);
        self
    }

    /// The entry once an exchange that reserved `reserved` ends having cost `actual`: the
    /// reservation is released and the actual spend charged (to the current window). A
    /// `withdrawn` exchange (an admission rolled back) also gives its request back when still in
    /// the window it was counted in (`same_window`).
    pub fn settle(mut self, reserved: Amount, actual: Amount, withdrawn: bool, same_window: bool) -> Entry {
        self.reserved.tokens = self.reserved.tokens.saturating_sub(reserved.tokens);
        self.reserved.nanos = self.reserved.nanos.saturating_sub(reserved.nanos);
        self.spent.tokens = self.spent.tokens.saturating_add(actual.tokens);
        self.spent.nanos = self.spent.nanos.saturating_add(actual.nanos);
        self.in_flight = self.in_flight.saturating_sub(1);
        if withdrawn && same_window {
            self.requests = self.requests.saturating_sub(1);
        }
        self
    }
}

/// The lock entry: whether it is held, since when, and how many keys exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Lock {
    held_since_ms: u64,
    keys: u64,
}

impl Lock {
    fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let (since, keys) = out.split_at_mut(8);
        since.copy_from_slice(&self.held_since_ms.to_le_bytes());
        keys.copy_from_slice(&self.keys.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Lock> {
        let (since, keys) = bytes.split_at_checked(8)?;
        Some(Lock {
            held_since_ms: u64::from_le_bytes(since.try_into().ok()?),
            keys: u64::from_le_bytes(keys.try_into().ok()?),
        })
    }
}

/// Applies `change` to the entry of `key` with compare-and-swap, creating the key (under the
/// lock, counted against `max_keys`) when it does not exist. `change` may refuse (`Err`), which
/// leaves the entry unchanged. Returns the entry as written.
pub fn update<E>(
    store: &dyn Store,
    key: &str,
    now_ms: u64,
    max_keys: u64,
    mut change: impl FnMut(Entry) -> Result<Entry, E>,
) -> Result<Result<Entry, E>, LedgerError> {
    for _ in 0..MAX_CAS_RETRIES {
        let Some((bytes, cas)) = store.get(key)? else {
            create(store, key, now_ms, max_keys)?;
            continue;
        };
        let old = Entry::decode(&bytes).ok_or(LedgerError::Corrupt)?;
        let new = match change(old) {
            Ok(new) => new,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if new == old {
            return Ok(Ok(new));
        }
        match store.set(key, &new.encode(), cas) {
            Ok(()) => return Ok(Ok(new)),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(LedgerError::Contended)
}

/// Creates `key` (an empty entry) under the lock unless it exists; counts it.
fn create(store: &dyn Store, key: &str, now_ms: u64, max_keys: u64) -> Result<(), LedgerError> {
    let lock = acquire(store, now_ms)?;
    let result = match store.get(key) {
        Ok(Some(_)) => Ok(false),
        Ok(None) if lock.keys >= max_keys => Err(LedgerError::Full),
        Ok(None) => store.set(key, &Entry::default().encode(), 0).map(|()| true).map_err(LedgerError::from),
        Err(e) => Err(e.into()),
    };
    let created = u64::from(matches!(result, Ok(true)));
    release(store, Lock { held_since_ms: 0, keys: lock.keys.saturating_add(created) })?;
    result.map(|_| ())
}

/// Takes the creation lock (breaking one held longer than [`STALE_LOCK_MS`]).
fn acquire(store: &dyn Store, now_ms: u64) -> Result<Lock, LedgerError> {
    for _ in 0..MAX_CAS_RETRIES {
        let (lock, cas) = match store.get(LOCK_KEY)? {
            Some((bytes, cas)) => (Lock::decode(&bytes).ok_or(LedgerError::Corrupt)?, cas),
            // The root context creates the lock at start-up; a missing one is created now.
            None => {
                store.set(LOCK_KEY, &Lock::default().encode(), 0)?;
                continue;
            }
        };
        let held = lock.held_since_ms != 0 && now_ms.saturating_sub(lock.held_since_ms) < STALE_LOCK_MS;
        if held {
            continue;
        }
        let taken = Lock { held_since_ms: now_ms.max(1), keys: lock.keys };
        match store.set(LOCK_KEY, &taken.encode(), cas) {
            Ok(()) => return Ok(lock),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(LedgerError::Contended)
}

/// Releases the creation lock, recording the key count.
fn release(store: &dyn Store, lock: Lock) -> Result<(), LedgerError> {
    for _ in 0..MAX_CAS_RETRIES {
        let cas = store.get(LOCK_KEY)?.map_or(0, |(_, cas)| cas);
        match store.set(LOCK_KEY, &lock.encode(), cas) {
            Ok(()) => return Ok(()),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(LedgerError::Contended)
}

/// Creates the lock entry unless it exists (the root context, before workers serve).
pub fn init(store: &dyn Store) -> Result<(), LedgerError> {
    if store.get(LOCK_KEY)?.is_none() {
        store.set(LOCK_KEY, &Lock::default().encode(), 0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A store whose first `conflicts` writes fail with a CAS mismatch (another worker won).
    #[derive(Debug, Default)]
    struct Contended {
        inner: MemoryStore,
        conflicts: Cell<usize>,
        writes: Cell<usize>,
    }

    impl Store for Contended {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            self.writes.set(self.writes.get() + 1);
            if cas != 0 && self.conflicts.get() > 0 {
                self.conflicts.set(self.conflicts.get() - 1);
                return Err(StoreError::CasMismatch);
            }
            self.inner.set(key, value, cas)
        }
    }

    const ASK: Amount = Amount { tokens: 100, nanos: 1_000 };

    fn reserve(store: &dyn Store, key: &str) -> Result<Entry, LedgerError> {
        update(store, key, 1, 10, |e| Ok::<_, ()>(e.reserve(ASK))).map(|r| r.unwrap())
    }

    #[test]
    fn entries_round_trip_and_other_bytes_are_refused() {
        let lease = Lease { window_start: -60, granted: Grant { tokens: 7, nanos: 8, requests: 9 }, exhausted: 5 };
        let entry = Entry {
            window_start: -5,
            spent: ASK,
            requests: 3,
            reserved: ASK,
            in_flight: 2,
            lease: Some(lease),
            lease_asked_ms: 11,
        };
        assert_eq!(Entry::decode(&entry.encode()), Some(entry));
        let without = Entry { lease: None, ..entry };
        assert_eq!(Entry::decode(&without.encode()), Some(without));
        let open = Entry { lease: Some(Lease { exhausted: 0, ..lease }), ..entry };
        assert_eq!(Entry::decode(&open.encode()), Some(open));
        assert_eq!(Entry::decode(&[0; 55]), None);
        assert_eq!(Entry::decode(&[0; 105]), None);
    }

    #[test]
    fn an_entry_written_before_leases_still_reads() {
        let entry =
            Entry { window_start: 60, spent: ASK, requests: 3, reserved: ASK, in_flight: 2, ..Entry::default() };
        let old = entry.encode();
        assert_eq!(Entry::decode(&old[..ENTRY_BYTES_BEFORE_LEASES]), Some(entry));
    }

    #[test]
    fn a_missing_key_is_created_under_the_lock_and_counted() {
        let store = MemoryStore::default();
        init(&store).unwrap();
        assert_eq!(reserve(&store, "warden.budget.a").unwrap().reserved, ASK);
        assert_eq!(reserve(&store, "warden.budget.a").unwrap().in_flight, 2);
        reserve(&store, "warden.budget.b").unwrap();
        let lock = Lock::decode(&store.get(LOCK_KEY).unwrap().unwrap().0).unwrap();
        assert_eq!(lock, Lock { held_since_ms: 0, keys: 2 });
    }

    #[test]
    fn keys_beyond_the_maximum_are_refused() {
        let store = MemoryStore::default();
        for i in 0..10 {
            reserve(&store, &format!("k{i}")).unwrap();
        }
        assert_eq!(reserve(&store, "k10"), Err(LedgerError::Full));
        // Existing keys still work.
        assert!(reserve(&store, "k3").is_ok());
    }

    #[test]
    fn a_cas_conflict_is_retried_with_the_fresh_value() {
        let store = Contended::default();
        reserve(&store, "k").unwrap();
        store.conflicts.set(5);
        let entry = reserve(&store, "k").unwrap();
        assert_eq!(entry.in_flight, 2, "each retry recomputes from the stored value");
    }

    #[test]
    fn endless_conflicts_give_up_after_the_retry_bound() {
        let store = Contended::default();
        reserve(&store, "k").unwrap();
        store.conflicts.set(usize::MAX);
        store.writes.set(0);
        assert_eq!(reserve(&store, "k"), Err(LedgerError::Contended));
        assert_eq!(store.writes.get(), MAX_CAS_RETRIES);
    }

    #[test]
    fn a_held_lock_is_broken_once_stale() {
        let store = MemoryStore::default();
        store.set(LOCK_KEY, &Lock { held_since_ms: 1_000, keys: 0 }.encode(), 0).unwrap();
        assert_eq!(update(&store, "k", 2_000, 10, |e| Ok::<_, ()>(e.reserve(ASK))), Err(LedgerError::Contended));
        assert!(update(&store, "k", 1_000 + STALE_LOCK_MS, 10, |e| Ok::<_, ()>(e.reserve(ASK))).is_ok());
    }

    #[test]
    fn a_refused_change_writes_nothing() {
        let store = MemoryStore::default();
        reserve(&store, "k").unwrap();
        let before = store.get("k").unwrap();
        assert_eq!(update(&store, "k", 1, 10, |_| Err("no")), Ok(Err("no")));
        assert_eq!(store.get("k").unwrap(), before);
    }

    #[test]
    fn a_new_window_resets_spend_but_keeps_reservations() {
        let entry = Entry { window_start: 0, spent: ASK, requests: 4, reserved: ASK, in_flight: 1, ..Entry::default() }
            .in_window(60);
        assert_eq!(
            entry,
            Entry {
                window_start: 60,
                spent: Amount::default(),
                requests: 0,
                reserved: ASK,
                in_flight: 1,
                ..Entry::default()
            }
        );
        assert_eq!(entry.in_window(60), entry);
    }

    #[test]
    fn settling_swaps_the_reservation_for_the_actual_spend_without_underflow() {
        let entry = Entry::default().reserve(ASK);
        let actual = Amount { tokens: 40, nanos: 400 };
        let settled = entry.settle(ASK, actual, false, true);
        assert_eq!(
            (settled.reserved, settled.spent, settled.in_flight, settled.requests),
            (Amount::default(), actual, 0, 1)
        );
        let withdrawn = entry.settle(ASK, Amount::default(), true, true);
        assert_eq!(withdrawn.requests, 0);
        let twice = settled.settle(ASK, Amount::default(), false, true);
        assert_eq!((twice.reserved, twice.in_flight), (Amount::default(), 0));
    }
}

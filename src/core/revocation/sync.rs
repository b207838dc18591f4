//! Sharing the revocation list between the worker VMs of one Envoy, over its shared data
//! (a [`Store`] with compare-and-swap), so N workers ask `warden serve` once between them and
//! no request reads shared data.
//!
//! Keys:
//! - [`POLL_KEY`]: when the next ask is due (epoch ms, decimal). On its tick a worker with no
//!   call in flight claims the ask ([`claim_poll`]) by moving the due time `refresh` ahead with
//!   a CAS; only the worker whose write lands asks. (Before any worker wrote the key, two may
//!   both claim the first ask: harmless.)
//! - [`LIST_KEY`]: the last valid list body, as the service sent it.
//! - [`META_KEY`]: `<version> <fetched_at_ms>` of that body: when the gateway last heard that
//!   it is current.
//!
//! The asking worker validates an answer before it publishes it ([`publish`]: the body, then the
//! meta); a `304 Not Modified` only moves `fetched_at_ms` on ([`confirm`]). Answers never arrive
//! out of order: the call's timeout is `refresh`, and the next ask is claimed only `refresh`
//! after the last one.
//!
//! Each worker keeps a [`LocalCopy`]. On every tick it reads the meta (a few bytes) and re-reads
//! and re-parses the body only when the version differs from its own; then its `generation`
//! goes up, which is how live streams notice a change cheaply. Requests read only the local copy
//! ([`LocalCopy::judge`]): hash lookups and a clock comparison.

use super::{Presented, RevocationList};
use crate::core::budget::ledger::{Store, StoreError};
use crate::core::errors::{Denial, Reason};
use crate::core::policy::revocation::OnUnavailable;

/// Shared-data key of the next ask's due time.
pub const POLL_KEY: &str = "warden.revocation.poll";
/// Shared-data key of the list body.
pub const LIST_KEY: &str = "warden.revocation.list";
/// Shared-data key of the list's version and fetch time.
pub const META_KEY: &str = "warden.revocation.meta";

/// Claims the ask due at `now_ms` for this worker: `true` when it should ask now.
pub fn claim_poll(store: &dyn Store, now_ms: u64, refresh_ms: u64) -> bool {
    let (due, cas) = match store.get(POLL_KEY) {
        Ok(Some((bytes, cas))) => (parse_u64(&bytes).unwrap_or(0), cas),
        Ok(None) => (0, 0),
        Err(_) => return false,
    };
    if now_ms < due {
        return false;
    }
    let next = now_ms.saturating_add(refresh_ms.max(1));
    store.set(POLL_KEY, next.to_string().as_bytes(), cas).is_ok()
}

/// The version and fetch time the shared meta holds.
pub fn shared_meta(store: &dyn Store) -> Option<(u64, u64, u32)> {
    let (bytes, cas) = store.get(META_KEY).ok()??;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (version, fetched) = text.split_once(' ')?;
    Some((version.parse().ok()?, fetched.parse().ok()?, cas))
}

/// Publishes a validated list `body` of `version`, fetched at `now_ms`.
pub fn publish(store: &dyn Store, body: &[u8], version: u64, now_ms: u64) -> Result<(), StoreError> {
    store.set(LIST_KEY, body, 0)?;
    store.set(META_KEY, format!("{version} {now_ms}").as_bytes(), 0)
}

/// The service said the list of `version` is still current at `now_ms`. Changes nothing when
/// the shared list is another version (a newer answer landed meanwhile).
pub fn confirm(store: &dyn Store, version: u64, now_ms: u64) -> Result<(), StoreError> {
    match shared_meta(store) {
        Some((shared, fetched, cas)) if shared == version && fetched < now_ms => {
            store.set(META_KEY, format!("{version} {now_ms}").as_bytes(), cas)
        }
        _ => Ok(()),
    }
}

fn parse_u64(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// A worker's own copy of the list.
#[derive(Debug, Default)]
pub struct LocalCopy {
    list: Option<RevocationList>,
    fetched_at_ms: u64,
    generation: u64,
}

impl LocalCopy {
    /// Catches up with the shared list: reads the meta, and the body only when its version is
    /// not this copy's. Returns whether the list changed (the generation moved).
    pub fn refresh(&mut self, store: &dyn Store) -> bool {
        let Some((version, fetched_at_ms, _)) = shared_meta(store) else { return false };
        let mut changed = false;
        if self.list.as_ref().is_none_or(|list| list.version() != version) {
            // A body that does not parse (the publisher validated it) leaves the copy as it was.
            let Some(list) = store.get(LIST_KEY).ok().flatten().and_then(|(body, _)| RevocationList::parse(&body).ok())
            else {
                return false;
            };
            changed = self.list.as_ref().is_none_or(|held| held.version() != list.version());
            self.list = Some(list);
            if changed {
                self.generation = self.generation.saturating_add(1);
            }
        }
        // The fetch time vouches for the meta's version only (the body may be newer already).
        if self.list.as_ref().is_some_and(|list| list.version() == version) {
            self.fetched_at_ms = self.fetched_at_ms.max(fetched_at_ms);
        }
        changed
    }

    /// Goes up each time the list changes.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The list held, if any.
    pub fn list(&self) -> Option<&RevocationList> {
        self.list.as_ref()
    }

    /// Whether the copy is older than `max_staleness_ms` at `now_ms` (or there is none yet).
    pub fn is_stale(&self, now_ms: u64, max_staleness_ms: u64) -> bool {
        self.list.is_none() || now_ms.saturating_sub(self.fetched_at_ms) > max_staleness_ms
    }

    /// Judges a request by `who` at `now_ms`: refused when revoked; when the copy is stale,
    /// refused under `refuse` and checked against the last list under `allow`.
    pub fn judge(
        &self,
        who: &Presented<'_>,
        now_ms: u64,
        max_staleness_ms: u64,
        on_unavailable: OnUnavailable,
    ) -> Result<(), Denial> {
        let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        if let Some(revocation) = self.list.as_ref().and_then(|list| list.find(who, now)) {
            return Err(revocation.denial());
        }
        if on_unavailable == OnUnavailable::Refuse && self.is_stale(now_ms, max_staleness_ms) {
            let age = if self.list.is_none() {
                "no revocation list has been received from warden serve yet".to_string()
            } else {
                format!(
                    "the revocation list was last refreshed from warden serve {}s ago (limit {}s)",
                    now_ms.saturating_sub(self.fetched_at_ms) / 1000,
                    max_staleness_ms / 1000
                )
            };
            return Err(Denial::new(
                Reason::RevocationUnavailable,
                format!("{age}, so revoked callers cannot be told apart; retry shortly"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::budget::ledger::MemoryStore;

    const T0: u64 = 1_796_601_600_000;

    fn body(version: u64, subjects: &[&str]) -> Vec<u8> {
        let entries: Vec<String> = subjects
            .iter()
            .enumerate()
            .map(|(i, s)| format!(r#"{{"id":{i},"kind":"subject","value":"{s}","reason":"r"}}"#))
            .collect();
        format!(r#"{{"version":{version},"revocations":[{}]}}"#, entries.join(",")).into_bytes()
    }

    fn alice() -> Presented<'static> {
        Presented { subject: "alice", groups: &[], job: &[], token_id: None }
    }

    #[test]
    fn one_worker_claims_each_ask() {
        let store = MemoryStore::default();
        assert!(claim_poll(&store, T0, 1_000));
        assert!(!claim_poll(&store, T0, 1_000), "the next ask is a refresh away");
        assert!(!claim_poll(&store, T0 + 999, 1_000));
        assert!(claim_poll(&store, T0 + 1_000, 1_000));
    }

    #[test]
    fn a_copy_follows_the_shared_list_and_counts_generations() {
        let store = MemoryStore::default();
        let mut copy = LocalCopy::default();
        assert!(!copy.refresh(&store), "nothing published yet");
        assert_eq!(
            copy.judge(&alice(), T0, 5_000, OnUnavailable::Refuse).unwrap_err().reason,
            Reason::RevocationUnavailable,
            "no list yet: fail closed"
        );
        assert!(copy.judge(&alice(), T0, 5_000, OnUnavailable::Allow).is_ok());

        publish(&store, &body(1, &[]), 1, T0).unwrap();
        assert!(copy.refresh(&store));
        assert_eq!(copy.generation(), 1);
        assert!(copy.judge(&alice(), T0, 5_000, OnUnavailable::Refuse).is_ok());
        assert!(!copy.refresh(&store), "same version: the body is not read again");

        publish(&store, &body(2, &["alice"]), 2, T0 + 1_000).unwrap();
        assert!(copy.refresh(&store));
        assert_eq!(copy.generation(), 2);
        assert_eq!(copy.judge(&alice(), T0 + 1_000, 5_000, OnUnavailable::Refuse).unwrap_err().reason, Reason::Revoked);
    }

    #[test]
    fn a_list_not_confirmed_within_max_staleness_fails_as_the_policy_says() {
        let store = MemoryStore::default();
        let mut copy = LocalCopy::default();
        publish(&store, &body(3, &["mallory"]), 3, T0).unwrap();
        copy.refresh(&store);
        assert!(copy.judge(&alice(), T0 + 5_000, 5_000, OnUnavailable::Refuse).is_ok(), "5 s old is still fresh");
        let stale = copy.judge(&alice(), T0 + 5_001, 5_000, OnUnavailable::Refuse).unwrap_err();
        assert_eq!(stale.reason, Reason::RevocationUnavailable);
        assert!(stale.detail.contains("last refreshed from warden serve 5s ago (limit 5s)"), "{}", stale.detail);
        assert!(copy.judge(&alice(), T0 + 60_000, 5_000, OnUnavailable::Allow).is_ok());
        let mallory = Presented { subject: "mallory", groups: &[], job: &[], token_id: None };
        assert_eq!(
            copy.judge(&mallory, T0 + 60_000, 5_000, OnUnavailable::Allow).unwrap_err().reason,
            Reason::Revoked,
            "allow still checks the last list"
        );

        confirm(&store, 3, T0 + 9_000).unwrap();
        assert!(!copy.refresh(&store), "a 304 changes no generation");
        assert!(copy.judge(&alice(), T0 + 9_000, 5_000, OnUnavailable::Refuse).is_ok(), "but makes it fresh");
        confirm(&store, 2, T0 + 20_000).unwrap();
        assert!(copy.is_stale(T0 + 20_000, 5_000), "a confirmation of another version changes nothing");
    }

    #[test]
    fn a_body_that_does_not_parse_leaves_the_copy_as_it_was() {
        let store = MemoryStore::default();
        let mut copy = LocalCopy::default();
        publish(&store, &body(4, &["alice"]), 4, T0).unwrap();
        copy.refresh(&store);
        publish(&store, b"garbage", 5, T0 + 1_000).unwrap();
        assert!(!copy.refresh(&store));
        assert_eq!(copy.list().unwrap().version(), 4);
        assert_eq!(copy.judge(&alice(), T0 + 1_000, 5_000, OnUnavailable::Refuse).unwrap_err().reason, Reason::Revoked);
        let bob = Presented { subject: "bob", groups: &[], job: &[], token_id: None };
        assert_eq!(
            copy.judge(&bob, T0 + 5_500, 5_000, OnUnavailable::Refuse).unwrap_err().reason,
            Reason::RevocationUnavailable,
            "the unusable version's fetch time does not keep the old list fresh"
        );
    }
}

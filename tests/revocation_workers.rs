//! The kill switch across the workers of one Envoy (`warden::core::revocation::sync`), with an
//! in-memory store standing in for Envoy's shared data: the workers tick in every interleaving
//! proptest picks; exactly one of them asks the service per `refresh`; after an answer is
//! published every worker's copy holds it within one tick; and a stale copy fails closed.

use proptest::prelude::*;
use warden::core::budget::ledger::MemoryStore;
use warden::core::errors::Reason;
use warden::core::policy::revocation::OnUnavailable;
use warden::core::revocation::sync::{claim_poll, confirm, publish, LocalCopy};
use warden::core::revocation::Presented;

const REFRESH_MS: u64 = 1_000;
const TICK_MS: u64 = 200;
const MAX_STALENESS_MS: u64 = 5_000;
const T0: u64 = 1_796_601_600_000;

fn list(version: u64, revoked: &[&str]) -> Vec<u8> {
    let entries: Vec<String> = revoked
        .iter()
        .enumerate()
        .map(|(i, subject)| format!(r#"{{"id":{i},"kind":"subject","value":"{subject}","reason":"r"}}"#))
        .collect();
    format!(r#"{{"version":{version},"revocations":[{}]}}"#, entries.join(",")).into_bytes()
}

fn judge(copy: &LocalCopy, subject: &str, now: u64) -> Result<(), Reason> {
    let who = Presented { subject, groups: &[], job: &[], token_id: None };
    copy.judge(&who, now, MAX_STALENESS_MS, OnUnavailable::Refuse).map_err(|denial| denial.reason)
}

const RUN_MS: u64 = 20_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Over 20 s of ticks of `workers` workers, each ticking in an order and with a phase
    /// of its own, the service is asked once per refresh period, never more; each answer
    /// (a new version every 3 s, else unchanged) reaches every worker by its next tick, and a
    /// revoked subject is refused by every worker from then on.
    #[test]
    fn one_ask_per_refresh_and_every_worker_converges_within_a_tick(
        workers in 2usize..6,
        phases in proptest::collection::vec(0u64..TICK_MS, 6),
        order_seed in any::<u64>(),
    ) {
        let store = MemoryStore::default();
        let mut copies: Vec<LocalCopy> = (0..workers).map(|_| LocalCopy::default()).collect();
        let mut asks: Vec<u64> = Vec::new();
        let mut version = 0u64;
        let mut published_at: Option<(u64, u64)> = None; // (version, when)
        let mut seed = order_seed;
        let mut now = T0;
        while now < T0 + RUN_MS {
            // Workers tick in a shuffled order within each millisecond step of the period.
            let mut order: Vec<usize> = (0..workers).collect();
            for i in (1..order.len()).rev() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (seed >> 33) as usize % (i + 1));
            }
            for &worker in &order {
                let phase = phases[worker % phases.len()];
                if (now - T0) % TICK_MS != phase {
                    continue;
                }
                copies[worker].refresh(&store);
                if claim_poll(&store, now, REFRESH_MS) {
                    asks.push(now);
                    // The service answers at once: a new list every third ask, else a 304.
                    if asks.len() % 3 == 1 {
                        version += 1;
                        let revoked: &[&str] = if version % 2 == 0 { &["mallory"] } else { &[] };
                        publish(&store, &list(version, revoked), version, now).unwrap();
                        published_at = Some((version, now));
                    } else {
                        confirm(&store, version, now).unwrap();
                    }
                    copies[worker].refresh(&store);
                }
            }
            // Every worker holds the published version one tick after it was published.
            if let Some((published, at)) = published_at {
                if now >= at + TICK_MS {
                    for copy in &copies {
                        prop_assert_eq!(copy.list().map(|l| l.version()), Some(published));
                        let expected = if published % 2 == 0 { Err(Reason::Revoked) } else { Ok(()) };
                        prop_assert_eq!(judge(copy, "mallory", now), expected);
                        prop_assert_eq!(judge(copy, "alice", now), Ok(()));
                    }
                }
            }
            now += 1;
        }
        for pair in asks.windows(2) {
            prop_assert!(pair[1] - pair[0] >= REFRESH_MS, "two asks {} ms apart", pair[1] - pair[0]);
        }
        // One ask per refresh: a claim is due every refresh and some worker ticks within one tick.
        prop_assert!(asks.len() as u64 >= RUN_MS / (REFRESH_MS + TICK_MS), "{} asks", asks.len());
    }
}

#[test]
fn when_the_service_stops_answering_every_worker_fails_closed_after_max_staleness() {
    let store = MemoryStore::default();
    let mut copies = [LocalCopy::default(), LocalCopy::default()];
    publish(&store, &list(1, &[]), 1, T0).unwrap();
    for copy in &mut copies {
        copy.refresh(&store);
        assert_eq!(judge(copy, "alice", T0 + MAX_STALENESS_MS), Ok(()));
    }
    // No answer after T0: each tick claims and asks, nothing is confirmed.
    for tick in 1..40 {
        let now = T0 + tick * TICK_MS;
        for copy in &mut copies {
            copy.refresh(&store);
            let _ = claim_poll(&store, now, REFRESH_MS);
        }
    }
    for copy in &copies {
        assert_eq!(judge(copy, "alice", T0 + MAX_STALENESS_MS + 1), Err(Reason::RevocationUnavailable));
    }
}

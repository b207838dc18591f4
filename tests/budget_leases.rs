//! One budget shared by several gateway instances through leases, driven the way the glue and
//! `warden serve` drive them: each instance admits against its own ledger (the in-process store
//! standing in for Envoy's shared data), asks for more when its grant runs low, and applies the
//! service's answer — which may be lost, late or repeated; instances restart (a new instance
//! with an empty ledger) and die with exchanges in flight. The property: what the instances
//! commit in a window never exceeds `limit + (n − 1) × slice` (n: instances that used the key),
//! the bound docs/budgets.md states.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use std::collections::BTreeMap;
use warden::core::budget::lease::{self, Grant, InstanceLease, WindowLedger};
use warden::core::budget::ledger::{self, Amount, Entry, MemoryStore, Store};
use warden::core::budget::window::{bounds, Period, Zone};
use warden::core::budget::{
    admit, applicable, settle, Admitted, Ask, Budget, Limits, OnExhausted, Refusal, Scope, Settings, Who,
};

/// 2026-12-07 12:00 UTC.
const NOW_MS: u64 = 1_796_644_800_000;
const LIMIT_TOKENS: u64 = 20_000;
const LIMIT_REQUESTS: u64 = 60;
const PERCENT: u64 = 10;
/// Asks as soon as running low (no heartbeats needed here).
const CADENCE: lease::Cadence = lease::Cadence { low_ms: 0, heartbeat_ms: u64::MAX };

fn budget() -> Budget {
    Budget {
        name: "team-daily".into(),
        per: Scope::Role,
        period: Period::Day,
        zone: Zone::default(),
        limits: Limits { tokens: Some(LIMIT_TOKENS), requests: Some(LIMIT_REQUESTS), ..Limits::default() },
        on_exhausted: OnExhausted::Refuse,
        clamp_min_tokens: 1,
    }
}

fn settings() -> Settings {
    Settings { lease_slice_percent: Some(PERCENT), ..Settings::default() }
}

fn who() -> Who<'static> {
    Who { role: "analyst", issuer: "idp", subject: "ann", groups: vec![], job: None }
}

/// One gateway instance: its ledger, the exchanges it has in flight, and answers it has seen.
#[derive(Default)]
struct Instance {
    store: MemoryStore,
    in_flight: Vec<Admitted>,
    answers: Vec<(Grant, u8)>,
    used: bool,
    /// What its exchanges have cost or hold (a dead instance's in-flight ones count in full).
    committed: Grant,
}

/// `warden serve`'s side: the window's record and each instance's lease.
#[derive(Default)]
struct Service {
    window: Option<WindowLedger>,
    leases: BTreeMap<usize, InstanceLease>,
    /// Instances first heard of when their first slice no longer fit in the limit.
    late: u64,
}

impl Service {
    /// Serves instance `id`'s ask as `warden serve` does; returns the answer (grant, exhausted).
    fn renew(&mut self, id: usize, ask: &lease::LeaseAsk) -> (Grant, u8) {
        let total_before = self.window.map_or(0, |w| w.granted.tokens);
        if !self.leases.contains_key(&id) && total_before + ask.slice.tokens > LIMIT_TOKENS {
            self.late += 1;
        }
        let (window, renewed) = lease::renew(self.window, self.leases.get(&id).copied(), ask);
        self.window = Some(window);
        self.leases.insert(id, renewed);
        (renewed.granted, window.exhausted())
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// An instance admits a request (input, output tokens).
    Admit(usize, u64, u64),
    /// An instance's exchange ends having used `percent` of its reservation.
    Settle(usize, usize, u64),
    /// An instance asks for more; the answer arrives (`true`) or is lost.
    Renew(usize, bool),
    /// An instance applies one of the answers it received before (late or repeated).
    Replay(usize, usize),
    /// An instance dies with its exchanges in flight (they spend what they reserved) and a new
    /// one takes its place.
    Restart(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, 0..2_000u64, 1..2_000u64).prop_map(|(i, input, output)| Step::Admit(i, input, output)),
        3 => (0..3usize, 0..64usize, 0..=100u64).prop_map(|(i, which, percent)| Step::Settle(i, which, percent)),
        3 => (0..3usize, any::<bool>()).prop_map(|(i, arrives)| Step::Renew(i, arrives)),
        1 => (0..3usize, 0..8usize).prop_map(|(i, which)| Step::Replay(i, which)),
        1 => (0..3usize).prop_map(Step::Restart),
    ]
}

fn entry(store: &MemoryStore, key: &str) -> Option<Entry> {
    store.get(key).unwrap().map(|(bytes, _)| Entry::decode(&bytes).unwrap())
}

fn apply_answer(store: &MemoryStore, key: &str, window_start: i64, answer: (Grant, u8)) {
    ledger::update(store, key, NOW_MS, 100, |e| Ok::<_, ()>(lease::apply(e, window_start, answer.0, answer.1)))
        .unwrap()
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the interleaving of admissions, settlements, renewals (lost, late, repeated)
    /// and restarts, the instances together never commit more tokens or requests in the window
    /// than the limit plus one slice per instance after the first.
    #[test]
    fn instances_sharing_a_budget_never_pass_the_stated_bound(steps in proptest::collection::vec(step(), 1..200)) {
        let budget = budget();
        let budgets = [budget.clone()];
        let who = who();
        let key = applicable(&budgets, &who, &settings())[0].key.clone();
        let window = bounds(budget.period, budget.zone, (NOW_MS / 1000) as i64);
        let slice = lease::slice(&lease::Windowed::of(&budget.limits), PERCENT);
        let mut slots: Vec<usize> = vec![0, 1, 2];
        let mut instances: Vec<Instance> = (0..3).map(|_| Instance::default()).collect();
        let mut service = Service::default();
        for step in steps {
            match step {
                Step::Admit(slot, input, output) => {
                    let instance = &mut instances[slots[slot]];
                    let applicable = applicable(&budgets, &who, &settings());
                    let ask = Ask { input_tokens: input, output_tokens: output, web_searches: 0 };
                    match admit(&instance.store, &applicable, ask, None, &settings(), NOW_MS, false) {
                        Ok(admitted) => {
                            instance.committed.tokens += admitted.reservations[0].amount.tokens;
                            instance.committed.requests += 1;
                            instance.in_flight.push(admitted);
                            instance.used = true;
                        }
                        Err(Refusal::Exhausted { .. }) => instance.used = true,
                        Err(Refusal::Ledger(error)) => panic!("ledger failed: {error:?}"),
                    }
                }
                Step::Settle(slot, which, percent) => {
                    let instance = &mut instances[slots[slot]];
                    if instance.in_flight.is_empty() {
                        continue;
                    }
                    let admitted = instance.in_flight.remove(which % instance.in_flight.len());
                    let reserved = admitted.reservations[0].amount;
                    let actual = Amount { tokens: reserved.tokens * percent / 100, nanos: 0 };
                    prop_assert!(settle(&instance.store, &admitted.reservations, actual, NOW_MS, 100).is_empty());
                    instance.committed.tokens -= reserved.tokens - actual.tokens;
                }
                Step::Renew(slot, arrives) => {
                    let id = slots[slot];
                    let instance = &mut instances[id];
                    let Some(current) = entry(&instance.store, &key) else { continue };
                    let Some(ask) = lease::ask_for(&key, &budget, &current, window, PERCENT, NOW_MS, CADENCE) else { continue };
                    let answer = service.renew(id, &ask);
                    instance.answers.push(answer);
                    if arrives {
                        apply_answer(&instance.store, &key, window.0, answer);
                    }
                }
                Step::Replay(slot, which) => {
                    let instance = &instances[slots[slot]];
                    if let Some(answer) = instance.answers.get(which).copied() {
                        apply_answer(&instance.store, &key, window.0, answer);
                    }
                }
                Step::Restart(slot) => {
                    slots[slot] = instances.len();
                    instances.push(Instance::default());
                }
            }
            let n = instances.iter().filter(|i| i.used).count().max(1) as u64;
            let committed = instances.iter().fold(Grant::default(), |sum, i| Grant {
                tokens: sum.tokens + i.committed.tokens,
                nanos: 0,
                requests: sum.requests + i.committed.requests,
            });
            // The stated bound.
            let bound_tokens = LIMIT_TOKENS + (n - 1) * slice.tokens;
            let bound_requests = LIMIT_REQUESTS + (n - 1) * slice.requests;
            prop_assert!(committed.tokens <= bound_tokens, "{} tokens committed, bound {bound_tokens} (n = {n})", committed.tokens);
            prop_assert!(committed.requests <= bound_requests, "{} requests, bound {bound_requests} (n = {n})", committed.requests);
            // Tighter, from its proof: instances the service knows commit within what it
            // counts as granted, the others within their first slice; and the service grants
            // past the limit only the first slices of instances that arrived late.
            let granted = service.window.map_or(Grant::default(), |w| w.granted);
            let unheard: u64 = instances
                .iter()
                .enumerate()
                .filter(|(id, i)| i.used && !service.leases.contains_key(id))
                .map(|_| 1)
                .sum();
            prop_assert!(committed.tokens <= granted.tokens + unheard * slice.tokens);
            prop_assert!(committed.requests <= granted.requests + unheard * slice.requests);
            prop_assert!(granted.tokens <= LIMIT_TOKENS + service.late * slice.tokens);
        }
    }
}

/// Admits 400-token requests on `store` until refused, renewing after each; returns the tokens
/// admitted and the last refusal's message.
fn admit_until_refused(store: &MemoryStore, service: &mut Service, id: usize) -> (u64, String) {
    let budget = budget();
    let budgets = [budget.clone()];
    let who = who();
    let key = applicable(&budgets, &who, &settings())[0].key.clone();
    let window = bounds(budget.period, budget.zone, (NOW_MS / 1000) as i64);
    let mut admitted_tokens = 0;
    for _ in 0..1_000 {
        let ask = Ask { input_tokens: 200, output_tokens: 200, web_searches: 0 };
        match admit(store, &applicable(&budgets, &who, &settings()), ask, None, &settings(), NOW_MS, false) {
            Ok(admitted) => {
                admitted_tokens += admitted.reservations[0].amount.tokens;
                settle(store, &admitted.reservations, admitted.reservations[0].amount, NOW_MS, 100);
            }
            Err(Refusal::Exhausted { message, .. }) => {
                let current = entry(store, &key).unwrap();
                let Some(ask) = lease::ask_for(&key, &budget, &current, window, PERCENT, NOW_MS, CADENCE) else {
                    return (admitted_tokens, message);
                };
                let answer = service.renew(id, &ask);
                apply_answer(store, &key, window.0, answer);
                if entry(store, &key).unwrap().lease == current.lease {
                    return (admitted_tokens, message);
                }
            }
            Err(Refusal::Ledger(error)) => panic!("{error:?}"),
        }
    }
    panic!("never refused");
}

#[test]
fn an_instance_that_renews_uses_the_whole_budget_and_a_later_one_only_its_first_slice() {
    let mut service = Service::default();
    let first = MemoryStore::default();
    let (tokens, refusal) = admit_until_refused(&first, &mut service, 0);
    assert_eq!(tokens, LIMIT_TOKENS, "the grants add up to the whole limit");
    assert!(refusal.contains("0 of 20000 tokens per day left"), "{refusal}");
    // A second instance (or the first, restarted) spends its first slice, then learns the
    // budget is used up everywhere: one slice over, the bound's (n − 1) × slice.
    let second = MemoryStore::default();
    let (tokens, refusal) = admit_until_refused(&second, &mut service, 1);
    assert_eq!(tokens, LIMIT_TOKENS * PERCENT / 100);
    assert!(refusal.contains("is used up across the gateways; it resets at 2026-12-08T00:00:00Z"), "{refusal}");
}

#[test]
fn an_instance_short_of_its_lease_says_so_and_asks_to_retry_soon() {
    let budget = budget();
    let budgets = [budget.clone()];
    let who = who();
    let store = MemoryStore::default();
    let ask = Ask { input_tokens: 1_000, output_tokens: 1_000, web_searches: 0 };
    // The first slice (2,000 tokens) takes one such request; the next waits for a lease.
    admit(&store, &applicable(&budgets, &who, &settings()), ask, None, &settings(), NOW_MS, false).unwrap();
    match admit(&store, &applicable(&budgets, &who, &settings()), ask, None, &settings(), NOW_MS, false) {
        Err(Refusal::Exhausted { message, retry_after, retryable, .. }) => {
            assert!(message.contains("share of the budget is in use"), "{message}");
            assert_eq!((retry_after, retryable), (1, true));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

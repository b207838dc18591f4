//! Criterion benchmarks of the budget check: what admitting a `messages` request and settling
//! it cost on top of the rest of the request path — the ledger update for each budget that
//! applies (read, check, compare-and-swap write), with the in-process store standing in for
//! Envoy's shared data (each host call there adds a copy of the 56-byte entry).
//!
//! Run: `cargo bench --bench budget` (numbers in docs/benchmarks.md).

// Benchmarks may stop on setup errors.
#![allow(clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use warden::core::budget::ledger::{Amount, MemoryStore};
use warden::core::budget::pricing::Prices;
use warden::core::budget::window::{Period, Zone};
use warden::core::budget::{admit, applicable, settle, Ask, Budget, Limits, OnExhausted, Priced, Scope, Settings, Who};

fn budgets() -> Vec<Budget> {
    let budget = |name: &str, per, period, limits| Budget {
        name: name.to_string(),
        per,
        period,
        zone: Zone::parse("+02:00").expect("zone"),
        limits,
        on_exhausted: OnExhausted::Refuse,
        clamp_min_tokens: 256,
    };
    vec![
        budget(
            "role-month",
            Scope::Role,
            Period::Month,
            Limits { cost_nanos: Some(u64::MAX / 2), ..Limits::default() },
        ),
        budget(
            "subject-day",
            Scope::Subject,
            Period::Day,
            Limits { tokens: Some(u64::MAX / 2), cost_nanos: Some(u64::MAX / 2), ..Limits::default() },
        ),
        budget(
            "subject-minute",
            Scope::Subject,
            Period::Minute,
            Limits { requests: Some(u64::MAX / 2), concurrent: Some(64), ..Limits::default() },
        ),
    ]
}

fn bench_budget(c: &mut Criterion) {
    let budgets = budgets();
    let settings = Settings::default();
    let prices = Prices { input: 3_000, output: 15_000, cache_write_1h: 6_000, ..Prices::default() };
    let who = Who { role: "developer", issuer: "warden-demo", subject: "alice", groups: vec!["eng"], job: None };
    let store = MemoryStore::default();
    let ask = Ask::estimate(&settings, 60_000, 32_000, false);
    let mut now_ms = 1_796_032_800_000u64;
    c.bench_function("budget: admit and settle a request against 3 budgets", |b| {
        b.iter(|| {
            now_ms += 1;
            let found = applicable(&budgets, &who, &settings);
            let priced = Some(Priced { prices: &prices, currency: "USD" });
            let admitted = admit(&store, &found, black_box(ask), priced, &settings, now_ms, true).expect("fits");
            let errors =
                settle(&store, &admitted.reservations, Amount { tokens: 31_000, nanos: 1 }, now_ms, settings.max_keys);
            black_box(errors)
        })
    });
}

criterion_group!(benches, bench_budget);
criterion_main!(benches);

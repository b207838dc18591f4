//! Leases driven the way the filter drives them, across the exchange, the ledger and the
//! renewal: requests are admitted within the instance's first slice, the exchanges name the
//! budget keys they were checked against (refused ones too), the worker's tick turns those into
//! one claimed ask, and the service's answer raises the grant so that the next request fits. The
//! ledger is the in-process store that stands in for Envoy's shared data; no proxy involved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::json;
use warden::core::budget::lease::{Grant, Granted, LeaseAnswer, LeaseAsk};
use warden::core::budget::renewal::{apply_answer, due_asks, KeysInUse, Tick};
use warden::core::exchange::{BodyStep, Exchange, Gateway, HeadersStep, RequestHead};
use warden::core::identity::{TokenStatus, VerifiedClaims};

/// 2026-11-30 10:00 UTC.
const NOW: f64 = 1_796_032_800.0;
const NOW_MS: u64 = 1_796_032_800_000;

const POLICY: &str = r#"
version: 1
identity:
  providers:
    - { name: demo, issuer: warden-demo, audiences: [warden], jwks: { file: jwks.json } }
credentials:
  anthropic: { env: ANTHROPIC_API_KEY }
  lease-token: { env: LEASE_TOKEN }
bindings:
  - { group: analysts, role: analyst }
accounting:
  input_bytes_per_token: 4
  leases:
    slice_percent: 10
    service: { url: "http://ledger.internal:8787", token: lease-token }
roles:
  analyst:
    credential: anthropic
    models: ["claude-haiku-*"]
    budgets:
      - { name: analyst-daily, per: role, window: day, tokens: 10000 }
"#;

fn gateway(policy: &str) -> Gateway {
    Gateway::new(policy, |name| Some(format!("{name}-value"))).unwrap()
}

fn post(gw: &Gateway, max_tokens: u64) -> (Exchange, BodyStep) {
    let token = TokenStatus::Verified(VerifiedClaims {
        subject: Some("alice".into()),
        issuer: Some("warden-demo".into()),
        issued_at: Some(NOW - 5.0),
        expires_at: Some(NOW + 600.0),
        groups: vec!["analysts".into()],
        job: vec![],
        claims: vec![],
        token_id: None,
        audiences: vec![],
    });
    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    let head = RequestHead { method: "POST", path: "/v1/messages", headers: &headers, token, now: NOW };
    let (mut exchange, step) = Exchange::start(gw, &head);
    assert!(matches!(step, HeadersStep::InspectBody(_)), "{step:?}");
    let body = serde_json::to_vec(&json!({"model": "claude-haiku-4-5", "max_tokens": max_tokens, "stream": true,
        "messages": [{"role": "user", "content": "hello"}]}))
    .unwrap();
    let step = exchange.on_body_complete(gw, &body);
    (exchange, step)
}

fn tick(gw: &Gateway, keys: &mut KeysInUse) -> Vec<LeaseAsk> {
    tick_at(gw, keys, NOW_MS)
}

/// The worker's tick at `now_ms`: the asks it claims.
fn tick_at(gw: &Gateway, keys: &mut KeysInUse, now_ms: u64) -> Vec<LeaseAsk> {
    let leases = gw.policy.leases.as_ref().unwrap();
    let tick = Tick {
        store: gw.ledger(),
        percent: leases.slice_percent,
        cadence: leases.cadence,
        now_ms,
        max_keys: gw.policy.accounting.max_keys,
    };
    due_asks(keys, |name| gw.policy.budget(name), &tick, 1024)
}

#[test]
fn a_refused_request_fits_once_the_service_raises_the_grant() {
    let gw = gateway(POLICY);
    // The first slice is 1000 tokens: about 330 are committed, so more than half a slice is
    // free — no ask is due for that — but not the 730 the next request needs.
    let (admitted, step) = post(&gw, 300);
    assert!(matches!(step, BodyStep::Forward), "{step:?}");
    let mut keys = KeysInUse::default();
    let [(key, budget)] = admitted.budget_keys() else { panic!("one key: {:?}", admitted.budget_keys()) };
    assert!(key.starts_with("warden.budget.analyst-daily.role."), "{key}");
    assert_eq!(budget, "analyst-daily");
    keys.note(key, budget, NOW_MS);
    let first = tick(&gw, &mut keys);
    assert_eq!(first.len(), 1, "a key's first use is reported at once");
    let answer = |grants: Vec<Granted>| serde_json::to_vec(&LeaseAnswer { grants }).unwrap();
    let slice_only = Granted { window_start: first[0].window_start, granted: first[0].slice, exhausted: 0 };
    assert_eq!(apply_answer(gw.ledger(), &first, Some((200, &answer(vec![slice_only]))), NOW_MS, 100), Ok(1));

    let (refused, step) = post(&gw, 700);
    let BodyStep::Reply(reply) = step else { panic!("expected a refusal, got {step:?}") };
    assert_eq!(reply.status, 429);
    assert!(reply.body.contains("more is being leased from warden serve"), "{}", reply.body);
    assert_eq!(refused.budget_keys(), admitted.budget_keys(), "a refused request names its keys too");
    let (wanted_key, wanted) = refused.lease_wanted().unwrap();
    assert_eq!(wanted_key, key);
    assert!(wanted.tokens > 700, "{wanted:?}");

    let later = NOW_MS + 1_000;
    assert!(tick_at(&gw, &mut keys, later).is_empty(), "half a slice is free: nothing is due by itself");
    keys.want(wanted_key, *wanted);
    let asks = tick_at(&gw, &mut keys, later);
    assert_eq!(asks.len(), 1, "the waiting request makes an ask due");
    assert!(asks[0].committed.tokens > 1_000, "it counts as committed: {:?}", asks[0].committed);
    assert!(tick_at(&gw, &mut keys, later).is_empty(), "claimed: not asked again before ask_every");

    let raised = Granted {
        window_start: asks[0].window_start,
        granted: Grant { tokens: 2_000, ..Grant::default() },
        exhausted: 0,
    };
    assert_eq!(apply_answer(gw.ledger(), &asks, Some((200, &answer(vec![raised]))), later, 100), Ok(1));
    let (admitted, step) = post(&gw, 700);
    assert!(matches!(step, BodyStep::Forward), "the raised grant fits it: {step:?}");
    assert_eq!(admitted.lease_wanted(), None);
}

#[test]
fn without_leases_an_exchange_keeps_no_keys_for_renewal() {
    let start = POLICY.find("  leases:").unwrap();
    let end = POLICY.find("roles:").unwrap();
    let gw = gateway(&format!("{}{}", &POLICY[..start], &POLICY[end..]));
    let (exchange, step) = post(&gw, 590);
    assert!(matches!(step, BodyStep::Forward), "{step:?}");
    assert!(exchange.budget_keys().is_empty());
    let (_, step) = post(&gw, 5_000);
    assert!(matches!(step, BodyStep::Forward), "the whole limit is this instance's: {step:?}");
}

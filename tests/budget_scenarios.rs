//! Budgets across the core's modules, driven the way the glue drives an exchange: a request
//! reserves its estimate before it is forwarded, and when the exchange ends — completed, refused,
//! aborted by the client, reset by the upstream, answered with an error — its reservation is
//! replaced by what it really cost, exactly once. The ledger is the in-process store that stands
//! in for Envoy's shared data. No proxy involved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::exchange::{json_headers, record_once, verified, NOW_MS};
use serde_json::{json, Value};
use std::cell::Cell;
use std::rc::Rc;
use warden::core::audit::record::{Outcome, Record};
use warden::core::audit::trail::Ending;
use warden::core::budget::ledger::{Entry, MemoryStore, Store, StoreError};
use warden::core::budget::{applicable, Who};
use warden::core::errors::LocalReply;
use warden::core::exchange::{BodyStep, Exchange, Gateway};

const POLICY: &str = r#"
version: 1
identity:
  providers:
    - { name: demo, issuer: warden-demo, audiences: [warden], jwks: { file: jwks.json } }
credentials:
  anthropic: { env: ANTHROPIC_API_KEY }
  audit-token: { env: AUDIT_TOKEN }
bindings:
  - { group: analysts, role: analyst }
  - { group: writers, role: writer }
audit:
  service: { url: "http://audit.internal:8787", token: audit-token }
pricing:
  currency: USD
  models:
    - { models: ["claude-haiku-*"], input: 1, output: 5 }
accounting:
  input_bytes_per_token: 4
roles:
  analyst:
    credential: anthropic
    models: ["claude-haiku-*"]
    budgets:
      - { name: analyst-daily, per: role, window: day, time_zone: "+02:00", tokens: 10000 }
  writer:
    credential: anthropic
    models: ["claude-haiku-*"]
    budgets:
      - { name: writer-daily, per: subject, window: day, tokens: 3000, on_exhausted: clamp, clamp_min_tokens: 100 }
"#;

fn gateway() -> Gateway {
    Gateway::new(POLICY, |name| Some(format!("{name}-value"))).unwrap()
}

fn body(model: &str, max_tokens: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({"model": model, "max_tokens": max_tokens, "stream": true,
        "messages": [{"role": "user", "content": "How many tokens is this?"}]}))
    .unwrap()
}

/// Alice, in `groups`, sends `body`; returns the exchange and the body step.
fn post(gw: &Gateway, groups: &[&str], path: &str, body: &[u8]) -> (Exchange, BodyStep) {
    common::exchange::post(gw, path, &json_headers(&[]), verified(groups), body)
}

fn sse(events: &[Value]) -> Vec<u8> {
    events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
        .collect::<String>()
        .into_bytes()
}

/// A complete stream: 100 input tokens, 1000 read from the cache, 40 then 50 output tokens.
fn full_stream() -> Vec<u8> {
    sse(&[
        json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 100, "cache_read_input_tokens": 1000, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Some."}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 40}}),
        json!({"type": "message_delta", "usage": {"output_tokens": 50}}),
        json!({"type": "message_stop"}),
    ])
}

/// The upstream answers `status` with `content_type` and `body` (in one chunk); the exchange
/// sees it delivered.
fn respond(gw: &Gateway, exchange: &mut Exchange, status: &str, content_type: &str, body: &[u8]) {
    let headers = [(":status", status), ("content-type", content_type)];
    let delivered = common::exchange::respond(gw, exchange, &headers, body, body.len());
    assert!(delivered.reply.is_none(), "{:?}", delivered.reply);
}

fn finish(gw: &Gateway, exchange: &mut Exchange, complete: bool, client_gone: bool) -> Record {
    let record = record_once(gw, exchange, Ending { at_ms: NOW_MS + 500, response_complete: complete, client_gone });
    // The glue settles again on_log: nothing more is charged.
    let settled = exchange.settlement().cloned();
    exchange.settle(gw, NOW_MS + 600);
    assert_eq!(exchange.settlement().cloned(), settled);
    record
}

/// The ledger entry of `role`'s first budget for alice.
fn entry(gw: &Gateway, role: &str) -> Entry {
    let role = &gw.policy.roles[gw.policy.role_index(role).unwrap()];
    let who = Who { role: &role.name, issuer: "warden-demo", subject: "alice", groups: vec![], job: None };
    let key = applicable(&role.budgets, &who, &gw.policy.accounting).remove(0).key;
    gw.ledger().get(&key).unwrap().map(|(bytes, _)| Entry::decode(&bytes).unwrap()).unwrap_or_default()
}

fn reply_of(step: BodyStep) -> LocalReply {
    match step {
        BodyStep::Reply(reply) => reply,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_completed_stream_is_charged_the_usage_it_reported() {
    let gw = gateway();
    let (mut exchange, step) = post(&gw, &["analysts"], "/v1/messages", &body("claude-haiku-4-5", 500));
    assert!(matches!(step, BodyStep::Forward), "{step:?}");
    let reserved = entry(&gw, "analyst");
    assert_eq!((reserved.in_flight, reserved.reserved.tokens > 500), (1, true));
    respond(&gw, &mut exchange, "200", "text/event-stream", &full_stream());
    let record = finish(&gw, &mut exchange, true, false);
    let after = entry(&gw, "analyst");
    assert_eq!((after.spent.tokens, after.reserved.tokens, after.in_flight, after.requests), (1150, 0, 0, 1));
    // 100 × 1000 + 1000 × 100 + 50 × 5000 nanos.
    assert_eq!(record.cost_nanos, Some(450_000));
    assert_eq!(after.spent.nanos, 450_000);
    assert_eq!(
        (record.usage.input_tokens, record.usage.cache_read_input_tokens, record.usage.output_tokens),
        (Some(100), Some(1000), Some(50))
    );
    assert!(!exchange.settlement().unwrap().conservative);
}

/// A ledger whose writes fail while `refuse` is set, as one contended past the retry bound.
#[derive(Debug)]
struct Refusing {
    inner: MemoryStore,
    refuse: Rc<Cell<bool>>,
}

impl Store for Refusing {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        if self.refuse.get() {
            return Err(StoreError::CasMismatch);
        }
        self.inner.set(key, value, cas)
    }
}

#[test]
fn a_settlement_the_ledger_refuses_is_written_on_a_later_tick() {
    let refuse = Rc::new(Cell::new(false));
    let gw = gateway().with_ledger(Box::new(Refusing { inner: MemoryStore::default(), refuse: Rc::clone(&refuse) }));
    let (mut exchange, step) = post(&gw, &["analysts"], "/v1/messages", &body("claude-haiku-4-5", 500));
    assert!(matches!(step, BodyStep::Forward), "{step:?}");
    respond(&gw, &mut exchange, "200", "text/event-stream", &full_stream());
    refuse.set(true);
    finish(&gw, &mut exchange, true, false);
    assert_eq!(entry(&gw, "analyst").in_flight, 1, "the reservation stays meanwhile");
    assert_eq!(gw.retry_unsettled(NOW_MS + 1_000), 1, "refused again: still waiting");
    refuse.set(false);
    assert_eq!(gw.retry_unsettled(NOW_MS + 2_000), 0);
    let after = entry(&gw, "analyst");
    assert_eq!((after.spent.tokens, after.reserved.tokens, after.in_flight), (1150, 0, 0));
    assert_eq!(gw.retry_unsettled(NOW_MS + 3_000), 0, "written once, never again");
    assert_eq!(entry(&gw, "analyst").spent.tokens, 1150);
}

#[test]
fn a_json_answer_is_charged_its_usage() {
    let gw = gateway();
    let (mut exchange, _) = post(&gw, &["analysts"], "/v1/messages", &body("claude-haiku-4-5", 500));
    let answer = json!({"type": "message", "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 30, "output_tokens": 7}});
    respond(&gw, &mut exchange, "200", "application/json", answer.to_string().as_bytes());
    let record = finish(&gw, &mut exchange, true, false);
    assert_eq!(entry(&gw, "analyst").spent.tokens, 37);
    assert_eq!(record.cost_nanos, Some(30 * 1000 + 7 * 5000));
}

#[test]
fn a_refused_request_charges_nothing_and_holds_nothing() {
    let gw = gateway();
    let (mut exchange, step) = post(&gw, &["analysts"], "/v1/messages", &body("claude-opus-4-1", 500));
    assert_eq!(reply_of(step).status, 403);
    let record = finish(&gw, &mut exchange, true, false);
    assert_eq!(record.cost_nanos, Some(0));
    assert_eq!(entry(&gw, "analyst"), Entry::default());
}

#[test]
fn a_client_abort_mid_stream_is_charged_what_was_seen_with_the_reservation_as_a_floor() {
    let gw = gateway();
    let (mut exchange, _) = post(&gw, &["analysts"], "/v1/messages", &body("claude-haiku-4-5", 500));
    let stream = full_stream();
    let text = String::from_utf8(stream.clone()).unwrap();
    let cut = text.find("event: message_delta").unwrap();
    respond(&gw, &mut exchange, "200", "text/event-stream", &stream[..cut]);
    let record = finish(&gw, &mut exchange, false, true);
    // Input as reported (100 + 1000 cached), output: the 500 reserved, since the final count never came.
    assert_eq!((record.usage.input_tokens, record.usage.output_tokens), (Some(100), Some(500)));
    assert_eq!(entry(&gw, "analyst").spent.tokens, 1600);
    assert!(exchange.settlement().unwrap().conservative);
}

#[test]
fn an_upstream_reset_before_any_answer_is_charged_the_reservation() {
    let gw = gateway();
    let sent = body("claude-haiku-4-5", 500);
    let (mut exchange, _) = post(&gw, &["analysts"], "/v1/messages", &sent);
    let reserved = entry(&gw, "analyst").reserved;
    finish(&gw, &mut exchange, false, false);
    let after = entry(&gw, "analyst");
    assert_eq!((after.spent, after.reserved.tokens, after.in_flight), (reserved, 0, 0));
    assert_eq!(after.spent.tokens, (sent.len() as u64).div_ceil(4) + 500);
}

#[test]
fn an_upstream_error_answer_charges_nothing() {
    let gw = gateway();
    let (mut exchange, _) = post(&gw, &["analysts"], "/v1/messages", &body("claude-haiku-4-5", 500));
    let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    respond(&gw, &mut exchange, "529", "application/json", error.to_string().as_bytes());
    let record = finish(&gw, &mut exchange, true, false);
    assert_eq!(record.cost_nanos, Some(0));
    assert_eq!(entry(&gw, "analyst").spent.tokens, 0);
}

#[test]
fn an_exhausted_budget_answers_429_naming_the_budget_and_its_reset_and_counting_is_free() {
    let gw = gateway();
    // 10000 tokens a day: a reservation of ~9000 fits once.
    let (mut first, step) = post(&gw, &["analysts"], "/v1/messages", &body("claude-haiku-4-5", 9_000));
    assert!(matches!(step, BodyStep::Forward));
    let (mut second, step) = post(&gw, &["analysts"], "/v1/messages", &body("claude-haiku-4-5", 2_000));
    let reply = reply_of(step);
    assert_eq!(reply.status, 429);
    let error: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "rate_limit_error");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("warden: budget_exhausted: budget \"analyst-daily\" (role analyst): "), "{message}");
    // 10:00 UTC is 12:00 in +02:00: the day resets at midnight there, 12 hours later.
    assert!(message.contains("resets at 2026-12-01T00:00:00+02:00"), "{message}");
    assert!(reply.headers.contains(&("retry-after".to_string(), (12 * 3600).to_string())), "{:?}", reply.headers);
    assert!(reply.headers.contains(&("x-should-retry".to_string(), "true".to_string())));
    assert_eq!(second.budget_refusal(), Some("analyst-daily"));
    finish(&gw, &mut second, true, false);
    // count_tokens is free: never reserved, never refused by a budget.
    let (mut count, step) = post(
        &gw,
        &["analysts"],
        "/v1/messages/count_tokens",
        &serde_json::to_vec(&json!({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]}))
            .unwrap(),
    );
    assert!(matches!(step, BodyStep::Forward), "{step:?}");
    assert!(count.settle(&gw, NOW_MS).is_none());
    finish(&gw, &mut first, false, false);
}

#[test]
fn concurrent_admissions_never_reserve_beyond_the_limit() {
    let gw = gateway();
    let sent = body("claude-haiku-4-5", 2_000);
    let mut admitted = Vec::new();
    for _ in 0..10 {
        let (exchange, step) = post(&gw, &["analysts"], "/v1/messages", &sent);
        if matches!(step, BodyStep::Forward) {
            admitted.push(exchange);
        }
    }
    let per_request = (sent.len() as u64).div_ceil(4) + 2_000;
    assert_eq!(admitted.len() as u64, 10_000 / per_request);
    let e = entry(&gw, "analyst");
    assert!(e.reserved.tokens <= 10_000 && e.in_flight == admitted.len() as u64, "{e:?}");
}

#[test]
fn a_clamp_budget_lowers_max_tokens_to_what_is_left() {
    let gw = gateway();
    let (mut exchange, step) = post(&gw, &["writers"], "/v1/messages", &body("claude-haiku-4-5", 64_000));
    let BodyStep::Replace { body: forwarded, clamped: true } = step else { panic!("{step:?}") };
    let forwarded: Value = serde_json::from_slice(&forwarded).unwrap();
    let sent_len = body("claude-haiku-4-5", 64_000).len() as u64;
    assert_eq!(forwarded["max_tokens"], 3_000 - sent_len.div_ceil(4));
    assert_eq!(forwarded["messages"][0]["content"], "How many tokens is this?");
    assert_eq!(entry(&gw, "writer").reserved.tokens, 3_000);
    finish(&gw, &mut exchange, false, true);
    // The whole day is spent (the abort was charged the clamped reservation): below the minimum now.
    let (_, step) = post(&gw, &["writers"], "/v1/messages", &body("claude-haiku-4-5", 64_000));
    assert_eq!(reply_of(step).status, 429);
}

#[test]
fn a_full_ledger_refuses_new_callers_with_503_and_lets_nothing_through_uncounted() {
    // A ledger of one key: the writer's budget entry takes it.
    let policy = POLICY.replace("input_bytes_per_token: 4", "input_bytes_per_token: 4\n  max_keys: 1");
    let gw = Gateway::new(&policy, |name| Some(format!("{name}-value"))).unwrap();
    let (_, step) = post(&gw, &["writers"], "/v1/messages", &body("claude-haiku-4-5", 500));
    assert!(matches!(step, BodyStep::Replace { .. } | BodyStep::Forward), "{step:?}");
    // The analyst role's budget needs a second key: refused, fail closed.
    let (mut exchange, step) = post(&gw, &["analysts"], "/v1/messages", &body("claude-haiku-4-5", 500));
    let reply = reply_of(step);
    assert_eq!(reply.status, 503);
    assert!(reply.message.starts_with("warden: budget_unavailable: the budget ledger is full"), "{}", reply.message);
    assert!(reply.headers.contains(&("x-should-retry".to_string(), "true".to_string())));
    assert_eq!(finish(&gw, &mut exchange, true, false).cost_nanos, Some(0));
}

/// The policy with `expected_output_tokens` set: a streamed answer may run past its reservation,
/// up to what its budget has left, and is cut there.
fn gateway_reserving_less_output() -> Gateway {
    let policy = POLICY.replace("input_bytes_per_token: 4", "input_bytes_per_token: 4\n  expected_output_tokens: 100");
    Gateway::new(&policy, |name| Some(format!("{name}-value"))).unwrap()
}

/// A stream generating `deltas` text deltas of 900 bytes (about 300 estimated tokens each).
fn long_stream(deltas: usize) -> Vec<u8> {
    let mut events = vec![
        json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 20, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ];
    let text = "abc".repeat(300);
    events
        .extend((0..deltas).map(
            |_| json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ));
    events.push(
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 12_000}}),
    );
    events.push(json!({"type": "message_stop"}));
    sse(&events)
}

#[test]
fn a_stream_past_what_its_budget_has_left_is_cut_and_charged_its_running_count() {
    let gw = gateway_reserving_less_output();
    let sent = body("claude-haiku-4-5", 20_000);
    let (mut exchange, step) = post(&gw, &["analysts"], "/v1/messages", &sent);
    assert!(matches!(step, BodyStep::Forward), "{step:?}");
    let input_estimate = (sent.len() as u64).div_ceil(4);
    // Allowance: the 100 output tokens reserved plus what the 10000-token budget has left after
    // the reservation.
    let allowance = 100 + (10_000 - input_estimate - 100);
    respond(&gw, &mut exchange, "200", "text/event-stream", &long_stream(40));
    let cut = exchange.stream_cut().expect("the answer is cut at its budget").clone();
    assert_eq!((cut.budget.as_deref(), cut.allowance), (Some("analyst-daily"), allowance));
    assert!(cut.output_tokens > allowance);
    let record = finish(&gw, &mut exchange, false, false);
    assert_eq!(record.outcome, Outcome::BudgetCut);
    // Charged the running count at the cut (not the 12000 the upstream would have reported,
    // which was never delivered, nor only the 100 reserved), with the input it reported.
    assert_eq!((record.usage.input_tokens, record.usage.output_tokens), (Some(20), Some(cut.output_tokens)));
    let after = entry(&gw, "analyst");
    assert_eq!((after.spent.tokens, after.reserved.tokens, after.in_flight), (20 + cut.output_tokens, 0, 0));
    assert_eq!(record.cost_nanos, Some(20 * 1000 + cut.output_tokens * 5000));
    assert!(exchange.settlement().unwrap().conservative);
}

#[test]
fn a_stream_within_what_its_budget_has_left_is_not_cut_and_is_charged_what_it_reported() {
    let gw = gateway_reserving_less_output();
    let (mut exchange, _) = post(&gw, &["analysts"], "/v1/messages", &body("claude-haiku-4-5", 20_000));
    respond(&gw, &mut exchange, "200", "text/event-stream", &full_stream());
    assert!(exchange.stream_cut().is_none());
    let record = finish(&gw, &mut exchange, true, false);
    assert_eq!(record.usage.output_tokens, Some(50));
    assert_eq!(entry(&gw, "analyst").spent.tokens, 1150);
}

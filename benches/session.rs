//! Criterion benchmark of the request path over one Claude Code session growing to 20 turns: the
//! body checks and request masking of turn 1, 5, 10 and 20 (each turn adds a ~3 KB tool result and
//! a short answer), on a worker that judged the same session's previous bodies — with the shared
//! session prefix memo (the request names its session) and without it (no session: the
//! per-worker memo of clean messages digests and looks up each message). Turn `t`'s body is judged
//! once before timing, so the memos hold all of it: the timing is the cost of the history a turn
//! re-sends (the new messages' scan is the same at every turn and not in it).
//!
//! Run: `cargo bench --bench session` (numbers in docs/benchmarks.md).

// Benchmarks may stop on setup errors.
#![allow(clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{json, Value};
use std::hint::black_box;
use warden::core::exchange::{BodyStep, Exchange, Gateway, HeadersStep, RequestHead};

/// The scenario tests' helpers (they use only `warden` and `std`).
#[allow(dead_code)]
#[path = "../tests/common/exchange.rs"]
mod exchange;
use exchange::{json_headers, verified_as};

const POLICY: &str = include_str!("../envoy/policy.yaml");

/// The demo policy's credentials (the verdict key: any 32 bytes, base64), and the policy
/// without its `audit` section (the record names every message by itself): the section's lines
/// up to the blank line that ends it are dropped.
fn demo_gateway() -> Gateway {
    let mut in_audit = false;
    let policy: Vec<&str> = POLICY
        .lines()
        .filter(|line| {
            in_audit = (in_audit && !line.trim().is_empty()) || *line == "audit:";
            !in_audit
        })
        .collect();
    assert!(policy.len() < POLICY.lines().count(), "the demo policy audits");
    let verdict_key = "A".repeat(43);
    Gateway::new(&policy.join("\n"), |name| {
        Some(if name == "WARDEN_APPROVALS_VERDICT_KEY" { verdict_key.clone() } else { "sk-ant-bench".into() })
    })
    .expect("demo policy compiles")
}

/// The session's body at `turn`: a system prompt, then per turn a tool result and an answer.
fn body_at(turn: usize) -> Vec<u8> {
    let code = "fn handle(request: &Request) -> Response {\n    let body = request.body();\n    respond(body)\n}\n";
    let mut messages: Vec<Value> = vec![json!({"role": "user", "content": "Find the bug in src/server.rs."})];
    for t in 1..turn {
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": format!("Reading file {t}.")},
            {"type": "tool_use", "id": format!("toolu_{t:04}"), "name": "Read", "input": {"file_path": format!("src/file_{t}.rs")}}
        ]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{t:04}"), "content": format!("// file {t}\n{}", code.repeat(32))}
        ]}));
    }
    serde_json::to_vec(&json!({"model": "claude-sonnet-4-6", "max_tokens": 1024, "stream": true,
        "system": "You are Claude Code, Anthropic's official CLI for Claude.", "messages": messages}))
    .expect("serializes")
}

fn bench_session(c: &mut Criterion) {
    let mut headers = json_headers(&[("x-request-id", "8c1f0a52-3c55-4d7e-9b1e-2f7a9d0e6b11")]);
    let token = verified_as("alice", "warden-demo", &["eng"], 900.0);
    let without_session = headers.clone();
    headers.push(("x-claude-code-session-id".to_string(), "5f0c1d2e-session".to_string()));
    let mut group = c.benchmark_group("session");
    for (label, headers) in [("shared_prefix", &headers), ("per_message_memo", &without_session)] {
        let gateway = demo_gateway();
        let head =
            RequestHead { method: "POST", path: "/v1/messages", headers, token: token.clone(), now: exchange::NOW };
        for turn in [1, 5, 10, 20] {
            let body = body_at(turn);
            let mut warm = Exchange::start(&gateway, &head).0;
            assert!(matches!(warm.on_body_complete(&gateway, &body), BodyStep::Forward));
            assert!(matches!(Exchange::start(&gateway, &head).1, HeadersStep::InspectBody(_)));
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_function(format!("{label}/turn_{turn:02}"), |b| {
                b.iter_batched(
                    || Exchange::start(&gateway, &head).0,
                    |mut exchange| black_box(exchange.on_body_complete(&gateway, &body)),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_session);
criterion_main!(benches);

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
use warden::core::identity::{TokenStatus, VerifiedClaims};

const POLICY: &str = include_str!("../envoy/policy.yaml");

fn credential(name: &str) -> Option<String> {
    Some(if name == "WARDEN_APPROVALS_VERDICT_KEY" { "A".repeat(43) } else { "sk-ant-bench".to_string() })
}

/// The demo policy without its `audit` section (the record names every message by itself).
fn without_audit(policy: &str) -> String {
    let start = policy.find("\naudit:\n").expect("the demo policy audits");
    let end = policy[start + 1..].find("\n\n").map_or(policy.len(), |i| start + 1 + i);
    format!("{}{}", &policy[..start], &policy[end..])
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
    let mut headers: Vec<(String, String)> =
        [("content-type", "application/json"), ("x-request-id", "8c1f0a52-3c55-4d7e-9b1e-2f7a9d0e6b11")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let token = TokenStatus::Verified(VerifiedClaims {
        subject: Some("alice".into()),
        issuer: Some("warden-demo".into()),
        audiences: vec![],
        issued_at: Some(1_800_000_000.0),
        expires_at: Some(1_800_000_900.0),
        groups: vec!["eng".into()],
        job: vec![],
        claims: vec![],
        token_id: None,
    });
    let without_session = headers.clone();
    headers.push(("x-claude-code-session-id".to_string(), "5f0c1d2e-session".to_string()));
    let mut group = c.benchmark_group("session");
    for (label, headers) in [("shared_prefix", &headers), ("per_message_memo", &without_session)] {
        let gateway = Gateway::new(&without_audit(POLICY), credential).expect("demo policy compiles");
        let head =
            RequestHead { method: "POST", path: "/v1/messages", headers, token: token.clone(), now: 1_800_000_100.0 };
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

//! Criterion benchmarks of the pure core on a Claude-Code-shaped request (~60 KB, 16 tools,
//! 30 turns of history): the per-request work the filter adds inside Envoy, minus host calls —
//! also for the same request held for approval (the demo policy holds Opus requests), and the
//! metrics registry's work per count (`metrics/…`, up to the host call), and reading a
//! GitHub-Actions-shaped token's claims from `jwt_authn`'s metadata for a policy with claim
//! bindings (`identity/…`).
//!
//! Run: `cargo bench --bench core` (numbers in docs/benchmarks.md).

// Benchmarks may stop on setup errors.
#![allow(clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use warden::core::audit::trail::Ending;
use warden::core::exchange::{BodyStep, Exchange, Gateway, HeadersStep, RequestHead};
use warden::core::identity::{TokenStatus, VerifiedClaims};
use warden::core::metric_labels::{Decision, Registry, StatSink, TokenCounts};
use warden::core::policy::glob::{Glob, GlobSet};

const POLICY: &str = include_str!("../envoy/policy.yaml");
const BODY: &str = include_str!("../tests/fixtures/claude-code-request.json");

fn head_parts() -> (Vec<(String, String)>, TokenStatus) {
    let headers = [
        (":method", "POST"),
        (":path", "/v1/messages?beta=true"),
        ("content-type", "application/json"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"),
        ("x-app", "cli"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("x-request-id", "8c1f0a52-3c55-4d7e-9b1e-2f7a9d0e6b11"),
    ]
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
    (headers, token)
}

/// Every credential of the demo policy: the upstream key, the approval service's token and its
/// public key (any 32 bytes, base64).
fn credential(name: &str) -> Option<String> {
    Some(if name == "WARDEN_APPROVALS_VERDICT_KEY" { "A".repeat(43) } else { "sk-ant-bench".to_string() })
}

/// The demo policy without its `audit` section.
fn without_audit(policy: &str) -> String {
    let start = policy.find("\naudit:\n").expect("the demo policy audits");
    let end = policy[start + 1..].find("\n\n").map_or(policy.len(), |i| start + 1 + i);
    format!("{}{}", &policy[..start], &policy[end..])
}

fn bench_request(c: &mut Criterion) {
    let gateway = Gateway::new(&without_audit(POLICY), credential).expect("demo policy compiles");
    let (headers, token) = head_parts();
    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Bytes(BODY.len() as u64));
    let head =
        RequestHead { method: "POST", path: "/v1/messages?beta=true", headers: &headers, token, now: 1_800_000_100.0 };
    group.bench_function("headers", |b| b.iter(|| black_box(Exchange::start(&gateway, &head))));
    let (_, step) = Exchange::start(&gateway, &head);
    assert!(matches!(step, HeadersStep::InspectBody(_)));
    // An exchange judges one body: each iteration gets a fresh one (made outside the timing).
    let body_of = |gateway: &Gateway, body: &[u8], b: &mut criterion::Bencher| {
        b.iter_batched(
            || Exchange::start(gateway, &head).0,
            |mut exchange| black_box(exchange.on_body_complete(gateway, body)),
            BatchSize::SmallInput,
        )
    };
    group.bench_function("body_60kb", |b| body_of(&gateway, BODY.as_bytes(), b));
    // The same request for an Opus model: the demo policy holds it, so this adds reading the
    // newest turn, masking its excerpt, the fingerprint and the callout body.
    let held_body = BODY.replacen("\"model\":\"claude-sonnet-4-6\"", "\"model\":\"claude-opus-4-6\"", 1);
    assert_ne!(held_body, BODY, "the fixture names claude-sonnet-4-6");
    let mut exchange = Exchange::start(&gateway, &head).0;
    assert!(matches!(exchange.on_body_complete(&gateway, held_body.as_bytes()), BodyStep::Hold { .. }));
    group.bench_function("body_60kb_held", |b| body_of(&gateway, held_body.as_bytes(), b));
    // With the audit trail on (the demo policy as it ships): the request path also keeps the
    // forwarded body for the record.
    let audited = Gateway::new(POLICY, credential).expect("demo policy compiles");
    group.bench_function("body_60kb_audited", |b| body_of(&audited, BODY.as_bytes(), b));
    group.finish();
    bench_audit_record(c, &audited, &head);

    c.bench_function("policy_compile", |b| b.iter(|| black_box(Gateway::new(POLICY, credential))));
}

/// A short streamed answer, as the fake upstream sends it.
const STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":900}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello from the fake Claude upstream.\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":12}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

/// The audit work of one whole exchange after the first (every blob already stored by the
/// service): the request path, the answer observed as it passes, and the record made and
/// serialized at the end (`on_log`), as the Envoy benchmark repeats it.
fn bench_audit_record(c: &mut Criterion, audited: &Gateway, head: &RequestHead) {
    let response_headers: Vec<(String, String)> =
        [(":status", "200"), ("content-type", "text/event-stream"), ("request-id", "req_011")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let ending = Ending { at_ms: 1_800_000_100_500, response_complete: true, client_gone: false };
    let exchange_once = || {
        let (exchange, _) = Exchange::start(audited, head);
        let mut exchange = exchange;
        black_box(exchange.on_body_complete(audited, BODY.as_bytes()));
        black_box(exchange.on_response_headers(audited, &response_headers));
        exchange.on_delivered(STREAM.as_bytes(), 1_800_000_100_200);
        exchange
    };
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Bytes(BODY.len() as u64));
    // The service stores the first record: its blobs become known, later records name them.
    let first = exchange_once().finish_record(audited, ending).expect("a record");
    let memo = audited.audit_blobs().expect("the demo policy audits");
    memo.borrow_mut().acknowledge(first.blobs.keys().map(String::as_str));
    group.bench_function("exchange_60kb_without_record", |b| b.iter(|| black_box(exchange_once())));
    group.bench_function("exchange_60kb_with_record", |b| {
        b.iter(|| {
            let record = exchange_once().finish_record(audited, ending).expect("a record");
            black_box(record.seal("gw-bench", 1).expect("serializes"))
        })
    });
    // Sealing alone, for a record after the first (blobs already sent): its canonical JSON, the
    // SHA-256 the access log shows, and the line to the service.
    let record = exchange_once().finish_record(audited, ending).expect("a record");
    assert!(record.blobs.is_empty(), "every blob was sent with the first record");
    group.bench_function("seal_record", |b| b.iter(|| black_box(record.seal("gw-bench", 1).expect("serializes"))));
    group.finish();
}

/// Identifier matching under hostile input: a 4-million-character model name against the globs
/// of a role (the glob matcher alone), and the same name in a request body (refused by its
/// length before any matching).
fn bench_identifiers(c: &mut Criterion) {
    use warden::core::policy::glob::{Glob, GlobSet};
    let globs = ["claude-haiku-*", "claude-*-4-5*", "claude-sonnet-*"];
    let set = GlobSet::new(globs.iter().map(|g| Glob::parse(g).expect("valid glob")).collect());
    let long_model = format!("claude-{}", "x".repeat(4_000_000));
    let mut group = c.benchmark_group("identifiers");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(long_model.len() as u64));
    group.bench_function("glob_3_patterns_4m_chars", |b| b.iter(|| black_box(set.matches(&long_model))));
    let gateway = Gateway::new(&without_audit(POLICY), credential).expect("demo policy compiles");
    let (headers, token) = head_parts();
    let head =
        RequestHead { method: "POST", path: "/v1/messages?beta=true", headers: &headers, token, now: 1_800_000_100.0 };
    let body = format!(r#"{{"model":"{long_model}","max_tokens":10,"messages":[]}}"#);
    group.bench_function("body_with_4m_char_model", |b| {
        b.iter_batched(
            || Exchange::start(&gateway, &head).0,
            |mut exchange| black_box(exchange.on_body_complete(&gateway, body.as_bytes())),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The stream cut watching a 1,000-delta text answer it never cuts: the per-event cost of
/// counting output on the response path (an SSE parse and a borrowed JSON head per event).
fn bench_stream_cut(c: &mut Criterion) {
    use warden::core::response::stream_cut::{EndingStyle, StreamCut};
    let mut stream = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n\
         event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    );
    for i in 0..1000 {
        stream.push_str(&format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"word {i} of the answer \"}}}}\n\n"
        ));
    }
    let mut group = c.benchmark_group("stream_cut");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("text_1000_deltas_in_1kb_chunks", |b| {
        b.iter(|| {
            let mut cut = StreamCut::new(u64::MAX, "bench", EndingStyle::Error);
            for chunk in stream.as_bytes().chunks(1024) {
                black_box(cut.push(chunk));
            }
            black_box(cut.finish())
        })
    });
    group.finish();
}

/// Counts nothing: what the registry costs before the host call that adds to the counter.
struct NoSink;

impl StatSink for NoSink {
    type Id = u32;
    fn define_counter(&mut self, _name: &str) -> Option<u32> {
        Some(0)
    }
    fn add(&mut self, id: u32, n: u64) {
        black_box((id, n));
    }
}

fn bench_metrics(c: &mut Criterion) {
    let mut registry = Registry::new(NoSink);
    c.bench_function("metrics/request", |b| {
        b.iter(|| registry.request(black_box(Some("developer")), Decision::Allowed, None))
    });
    let models = GlobSet::new(vec![Glob::parse("claude-*").expect("a valid glob")]);
    let tokens = TokenCounts { input: 12, output: 340, cache_write: 0, cache_read: 50_000 };
    c.bench_function("metrics/usage", |b| {
        b.iter(|| registry.usage("developer", &models, black_box(Some("claude-sonnet-4-6")), &tokens, Some(1234)))
    });
}

/// Decoding a workload token's payload (as Envoy serializes it) for the CI example policy, which
/// reads ten claims (some nested under `kubernetes.io`) and matches claim bindings.
fn bench_identity(c: &mut Criterion) {
    use warden::proxy_abi::{decode_claims, encode_pairs};
    let policy = warden::core::policy::Policy::parse(include_str!("../envoy/examples/policy-teams-and-ci.yaml"))
        .expect("the example policy compiles");
    let claims = [
        ("iss", "https://token.actions.githubusercontent.com"),
        ("sub", "repo:corp-example/app:ref:refs/heads/main"),
        ("aud", "warden"),
        ("repository", "corp-example/app"),
        ("repository_owner", "corp-example"),
        ("ref", "refs/heads/main"),
        ("ref_type", "branch"),
        ("workflow", "Claude review"),
        ("job_workflow_ref", "corp-example/app/.github/workflows/review.yml@refs/heads/main"),
        ("run_id", "12345678901"),
        ("run_attempt", "1"),
        ("actor", "octocat"),
        ("event_name", "push"),
        ("sha", "0123456789abcdef0123456789abcdef01234567"),
        ("jti", "8b2c1f0e-5d4a-4c3b-9a8f-7e6d5c4b3a21"),
    ];
    let payload = encode_pairs(&claims);
    let mut group = c.benchmark_group("identity");
    group.bench_function("decode_github_token_claims", |b| {
        b.iter(|| black_box(decode_claims(black_box(&payload), &policy.identity)))
    });
    group.finish();
}

criterion_group!(benches, bench_request, bench_identifiers, bench_stream_cut, bench_metrics, bench_identity);
criterion_main!(benches);

//! Criterion benchmarks of the tool-call hold (`core::tools::hold`): what reading 1 MB of an
//! answer stream costs, fed in 16 KiB chunks as Envoy hands them over —
//! - `text`: one text block in deltas of about 40 bytes (no call: the cost every answer pays);
//! - `calls_released`: text blocks of ~500 bytes alternating with Bash calls whose ~200-byte
//!   input comes in ten pieces, every call released;
//! - `calls_refused`: the same, every call replaced by a text block.
//!
//! Run: `cargo bench --bench tool_hold` (numbers in docs/benchmarks.md).

// Benchmarks may stop on setup errors.
#![allow(clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use std::hint::black_box;
use warden::core::tools::hold::{Decision, ToolHold};

const MB: usize = 1 << 20;
const CHUNK: usize = 16 << 10;

fn event(name: &str, data: &serde_json::Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn text_block(out: &mut String, index: usize, bytes: usize) {
    out.push_str(&event(
        "content_block_start",
        &json!({"type":"content_block_start","index":index,"content_block":{"type":"text","text":""}}),
    ));
    let piece = "The quick brown fox jumps over the lazy d";
    for _ in 0..bytes / piece.len() {
        out.push_str(&event(
            "content_block_delta",
            &json!({"type":"content_block_delta","index":index,"delta":{"type":"text_delta","text":piece}}),
        ));
    }
    out.push_str(&event("content_block_stop", &json!({"type":"content_block_stop","index":index})));
}

fn call_block(out: &mut String, index: usize) {
    out.push_str(&event(
        "content_block_start",
        &json!({"type":"content_block_start","index":index,"content_block":{"type":"tool_use","id":format!("toolu_{index:024}"),"name":"Bash","input":{}}}),
    ));
    let input = json!({"command":"cd /home/dev/project && cargo test --workspace 2>&1 | tail -n 40","description":"Run the workspace tests and show the last lines","timeout":120000}).to_string();
    let bytes = input.as_bytes();
    let step = bytes.len().div_ceil(10);
    for piece in bytes.chunks(step) {
        let piece = std::str::from_utf8(piece).expect("ASCII input");
        out.push_str(&event(
            "content_block_delta",
            &json!({"type":"content_block_delta","index":index,"delta":{"type":"input_json_delta","partial_json":piece}}),
        ));
    }
    out.push_str(&event("content_block_stop", &json!({"type":"content_block_stop","index":index})));
}

/// A 1 MB answer stream: text only, or text blocks alternating with calls.
fn stream(with_calls: bool) -> String {
    let mut out = event(
        "message_start",
        &json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"usage":{"input_tokens":10,"output_tokens":1}}}),
    );
    let mut index = 0;
    while out.len() < MB {
        if with_calls {
            text_block(&mut out, index, 500);
            call_block(&mut out, index + 1);
            index += 2;
        } else {
            // About three bytes of stream per byte of text: ~1 MB in all.
            text_block(&mut out, index, MB / 3);
            index += 1;
        }
    }
    let stop_reason = if with_calls { "tool_use" } else { "end_turn" };
    out.push_str(&event("message_delta", &json!({"type":"message_delta","delta":{"stop_reason":stop_reason,"stop_sequence":null},"usage":{"output_tokens":250000}})));
    out.push_str(&event("message_stop", &json!({"type":"message_stop"})));
    out
}

/// Runs the hold over `stream`; returns the bytes delivered.
fn hold(stream: &[u8], refuse: bool) -> usize {
    let mut hold = ToolHold::new();
    let mut delivered = 0;
    for chunk in stream.chunks(CHUNK) {
        delivered += hold.push(chunk).len();
        while hold.waiting().is_some() {
            let decision = if refuse {
                Decision::Refuse { text: "refused: pipes a download into a shell".into() }
            } else {
                Decision::Release
            };
            delivered += hold.decide(decision).len();
        }
    }
    delivered + hold.finish().len()
}

fn bench_tool_hold(c: &mut Criterion) {
    let mut group = c.benchmark_group("tool_hold");
    group.sample_size(20);
    for (name, with_calls, refuse) in
        [("text", false, false), ("calls_released", true, false), ("calls_refused", true, true)]
    {
        let stream = stream(with_calls);
        assert_eq!(hold(stream.as_bytes(), false), stream.len(), "released output is the input");
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_function(name, |b| b.iter(|| hold(black_box(stream.as_bytes()), refuse)));
    }
    group.finish();
}

criterion_group!(benches, bench_tool_hold);
criterion_main!(benches);

//! The stream cut's endings as the real clients receive them: this test renders, with the core
//! component, the bytes Warden delivers when it cuts two answers at their budget — a text
//! answer, and an answer cut inside a tool call's input — in both candidate endings, and checks
//! them against tests/fixtures/stream_cut/, which tests/e2e/test_stream_cut.py has the fake
//! upstream serve to the official Python SDK and the Claude Code CLI through Envoy.
//!
//! After a deliberate change to the endings, rewrite the fixtures with
//! `WARDEN_WRITE_FIXTURES=1 cargo test --test stream_cut`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::{json, Value};
use std::path::PathBuf;
use warden::core::response::stream_cut::{EndingStyle, StreamCut};

fn event(data: Value) -> String {
    format!("event: {}\ndata: {}\n\n", data["type"].as_str().unwrap(), data)
}

fn message_start() -> String {
    event(json!({"type": "message_start", "message": {
        "id": "msg_cut_probe", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 25, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    }}))
}

fn delta(index: u64, delta: Value) -> String {
    event(json!({"type": "content_block_delta", "index": index, "delta": delta}))
}

fn ending(stop_reason: &str, output_tokens: u64) -> String {
    event(
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
    ) + &event(json!({"type": "message_stop"}))
}

/// A text answer of twelve sentences, about 13 output tokens each by the estimate.
fn text_answer() -> String {
    let mut s = message_start();
    s += &event(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}));
    s += &event(json!({"type": "ping"}));
    for i in 1..=12 {
        s += &delta(0, json!({"type": "text_delta", "text": format!("Sentence {i:02} of a long cut-probe answer. ")}));
    }
    s += &event(json!({"type": "content_block_stop", "index": 0}));
    s + &ending("end_turn", 130)
}

/// A short text, then a Bash tool call whose input the cut falls inside.
fn tool_answer() -> String {
    let mut s = message_start();
    s += &event(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}));
    s += &delta(0, json!({"type": "text_delta", "text": "I will run the command."}));
    s += &event(json!({"type": "content_block_stop", "index": 0}));
    s += &event(
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_cut_probe", "name": "Bash", "input": {}}}),
    );
    for piece in ["", "{\"command\": \"echo warden-cut", "-probe-complete\", \"description\": \"Print a probe\"}"] {
        s += &delta(1, json!({"type": "input_json_delta", "partial_json": piece}));
    }
    s += &event(json!({"type": "content_block_stop", "index": 1}));
    s + &ending("tool_use", 40)
}

/// (fixture name, upstream stream, allowance): the text answer is cut after its 3rd sentence,
/// the tool call after `{"command": "echo warden-cut`.
fn cases() -> Vec<(&'static str, String, u64)> {
    vec![("text", text_answer(), 40), ("tool", tool_answer(), 12)]
}

fn rendered(stream: &str, allowance: u64, style: EndingStyle) -> String {
    let mut cut = StreamCut::new(allowance, "demo-daily", style);
    let mut out = cut.push(stream.as_bytes());
    out.extend(cut.finish());
    assert!(cut.is_cut(), "the fixture stream must be cut");
    String::from_utf8(out).unwrap()
}

#[test]
fn the_client_fixtures_are_what_the_cut_delivers() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stream_cut");
    let write = std::env::var_os("WARDEN_WRITE_FIXTURES").is_some();
    for (name, stream, allowance) in cases() {
        for (style, label) in [(EndingStyle::MaxTokens, "max_tokens"), (EndingStyle::Error, "error")] {
            let bytes = rendered(&stream, allowance, style);
            let path = dir.join(format!("{name}-{label}.sse"));
            if write {
                std::fs::write(&path, &bytes).unwrap();
            }
            let stored = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (WARDEN_WRITE_FIXTURES=1 writes it)", path.display()));
            assert_eq!(stored, bytes, "{} is stale: WARDEN_WRITE_FIXTURES=1 rewrites it", path.display());
        }
    }
}

#[test]
fn the_tool_fixture_is_cut_inside_the_command_and_closes_it() {
    let bytes = rendered(&tool_answer(), 12, EndingStyle::MaxTokens);
    let input: String = bytes
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str::<Value>(data).unwrap())
        .filter(|e| e["index"] == 1 && e["type"] == "content_block_delta")
        .map(|e| e["delta"]["partial_json"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(input, r#"{"command": "echo warden-cut"}"#);
}

//! The response stream redactor never panics on any upstream bytes, however the bytes are
//! chunked a client assembles the same text and tool input per content block, and its fast path
//! delivers exactly the bytes of the reference path (every event parsed).
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common/chunks.rs"]
mod chunks;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use warden::core::dlp::catalog;
use warden::core::dlp::engine::{Action, Engine};
use warden::core::dlp::mask::MaskKey;
use warden::core::dlp::response::StreamRedactor;
use warden::core::dlp::text::Redaction;
use warden::core::response::sse::SseParser;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(catalog::builtin()).expect("catalog compiles"))
}

/// Per block index: the concatenated delta strings; plus the error events, in order.
fn assemble(bytes: &[u8]) -> (BTreeMap<u64, String>, Vec<String>) {
    let mut parser = SseParser::new(usize::MAX);
    let events = parser.push(bytes).expect("the redactor emits well-formed events");
    let mut blocks: BTreeMap<u64, String> = BTreeMap::new();
    let mut errors = Vec::new();
    for event in events {
        let value: serde_json::Value = match serde_json::from_str(&event.data) {
            Ok(v) => v,
            Err(_) => continue, // the upstream's own non-JSON events are passed on as text
        };
        if event.event == "error" {
            errors.push(event.data.clone());
        }
        if value["type"] == "content_block_delta" {
            let index = value["index"].as_u64().unwrap_or(u64::MAX);
            for field in ["text", "thinking", "partial_json"] {
                if let Some(piece) = value["delta"][field].as_str() {
                    blocks.entry(index).or_default().push_str(piece);
                }
            }
        }
    }
    (blocks, errors)
}

fn run(mut redactor: StreamRedactor, redaction: &Redaction, chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(redactor.push(redaction, chunk));
    }
    out.extend(redactor.finish(redaction));
    out
}

fuzz_target!(|input: (Vec<u8>, Vec<u16>)| {
    let (bytes, cuts) = input;
    let engine = engine();
    let actions = vec![Action::Mask; engine.specs().len()];
    let key = MaskKey::new(b"fuzz".to_vec());
    let redaction = Redaction { engine, actions: &actions, key: &key };
    let chunks = chunks::split(&bytes, &cuts);
    let chunked = run(StreamRedactor::default(), &redaction, &chunks);
    assert_eq!(assemble(&chunked), assemble(&run(StreamRedactor::default(), &redaction, &[&bytes])));
    assert_eq!(chunked, run(StreamRedactor::without_fast_path(), &redaction, &chunks));
});

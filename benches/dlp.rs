//! Criterion benchmarks of the DLP engine with the full built-in catalog, on 1 MB of
//! Claude-like text: this repository's Rust sources, its docs (prose, YAML, tables) and a recorded
//! Claude Code request (JSON), repeated to 1 MB — once as is, once with a fabricated secret or
//! personal value every ~10 KB.
//!
//! Also adversarial streams (`dlp_adversarial/*`): texts that make a stream hold back — a
//! number-like run, an upper-case hex word, a base64 word, a private key's body, one character
//! per delta — with the most text held back at once printed for each.
//!
//! Run: `cargo bench --bench dlp` (numbers in docs/benchmarks.md).

// Benchmarks may stop on setup errors.
#![allow(clippy::expect_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use warden::core::dlp::catalog;
use warden::core::dlp::engine::{Action, Engine};
use warden::core::dlp::mask::{MaskKey, Tally};
use warden::core::dlp::memo::CleanMemo;
use warden::core::dlp::request::redact_request;
use warden::core::dlp::response::StreamRedactor;
use warden::core::dlp::text::{redact, Redaction, TextStream};

const SOURCES: [&str; 8] = [
    include_str!("../src/core/request/messages.rs"),
    include_str!("../src/core/exchange.rs"),
    include_str!("../src/core/response/sse.rs"),
    include_str!("../src/core/policy/mod.rs"),
    include_str!("../docs/policy.md"),
    include_str!("../docs/architecture.md"),
    include_str!("../docs/deployment.md"),
    include_str!("../tests/fixtures/claude-code-request.json"),
];

/// Fabricated values, one of each kind, inserted into the corpus with secrets.
const SECRETS: [&str; 8] = [
    "export AWS_ACCESS_KEY_ID=AKIA4QX7RM2ZP9TLWB3K\n",
    "token: ghp_q7Rm2ZxP9tLwB3kVn8YcD4sJ6hF1gA5eU0iO\n",
    "ANTHROPIC_API_KEY=sk-ant-api03-Zq8Rm2XpP9tLwB3kVn8YcD4sJ6hF1gA5eU0iOq7Rm2ZxP9tLwB3kVn8YcD4sJ6hF1gA5eU0iOq7Rm2ZxP9tLwB3kVn8YcDAA\n",
    "Contact: jordan.miles@corpmail.io\n",
    "card 4539 1488 0343 6467 exp 12/29\n",
    "DATABASE_URL=postgres://app:Xy7pQ2wLm9Rt@db.internal:5432/app\n",
    "password = \"Tr0ub4dor&3-horse\"\n",
    "SSN 536-22-8463 on file\n",
];

const MB: usize = 1 << 20;

fn corpus(with_secrets: bool) -> String {
    let mut out = String::with_capacity(MB + 4096);
    let mut next_secret = 0;
    'fill: loop {
        for source in SOURCES {
            for chunk in source.as_bytes().chunks(10_000) {
                out.push_str(&String::from_utf8_lossy(chunk));
                if with_secrets {
                    out.push_str(SECRETS[next_secret % SECRETS.len()]);
                    next_secret += 1;
                }
                if out.len() >= MB {
                    break 'fill;
                }
            }
        }
    }
    let mut end = MB;
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}

/// `text` as a Messages event stream of ~12-character `text_delta` events.
fn sse_stream(text: &str) -> Vec<u8> {
    let mut out = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\"}}\n\n");
    out.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    let chars: Vec<char> = text.chars().collect();
    for piece in chars.chunks(12) {
        let piece: String = piece.iter().collect();
        let data = serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}});
        out.push_str(&format!("event: content_block_delta\ndata: {data}\n\n"));
    }
    out.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
    out.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    out.into_bytes()
}

/// Adversarial texts and their delta size in characters: `1 ` per delta; one upper-case hex
/// word, one base64 word and a private key's header followed by base64, in 12-character
/// deltas; prose one character per delta.
fn adversarial_texts() -> Vec<(&'static str, String, usize)> {
    let mut seed = 7u64;
    let mut next = move |n: usize| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    let hex_alphabet = b"0123456789ABCDEF";
    let mut digits_in_a_row = 0;
    let hex: String = (0..MB / 4)
        .map(|_| {
            let c = if digits_in_a_row < 3 { hex_alphabet[next(16)] } else { hex_alphabet[10 + next(6)] };
            digits_in_a_row = if c.is_ascii_digit() { digits_in_a_row + 1 } else { 0 };
            char::from(c)
        })
        .collect();
    let b64_alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b64: String = (0..MB / 4).map(|_| char::from(b64_alphabet[next(64)])).collect();
    vec![
        ("digits_1_per_delta", "1 ".repeat(16 * 1024), 2),
        ("upper_hex_word", hex, 12),
        ("base64_word", b64.clone(), 12),
        ("private_key_body", format!("-----BEGIN PRIVATE KEY-----\n{b64}"), 12),
        ("prose_1_char_per_delta", corpus(false)[..64 * 1024].to_string(), 1),
    ]
}

/// `text` as a Messages event stream of `piece`-character `text_delta` events.
fn sse_pieces(text: &str, piece: usize) -> Vec<u8> {
    let mut out = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\"}}\n\n");
    out.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    let chars: Vec<char> = text.chars().collect();
    for piece in chars.chunks(piece) {
        let piece: String = piece.iter().collect();
        let data = serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}});
        out.push_str(&format!("event: content_block_delta\ndata: {data}\n\n"));
    }
    out.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
    out.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    out.into_bytes()
}

/// The most text a stream of `piece`-character pieces holds back at once.
fn most_held(redaction: &Redaction, text: &str, piece: usize) -> usize {
    let mut stream = TextStream::default();
    let mut tally = Tally::default();
    let chars: Vec<char> = text.chars().collect();
    let mut most = 0;
    for piece in chars.chunks(piece) {
        let piece: String = piece.iter().collect();
        let _ = stream.push(redaction, &piece, &mut tally);
        most = most.max(stream.held());
    }
    most
}

fn bench_dlp(c: &mut Criterion) {
    let engine = Engine::new(catalog::builtin()).expect("catalog compiles");
    let actions = vec![Action::Mask; engine.specs().len()];
    let key = MaskKey::new(b"bench".to_vec());
    let redaction = Redaction { engine: &engine, actions: &actions, key: &key };

    let mut group = c.benchmark_group("dlp");
    group.throughput(Throughput::Bytes(MB as u64));
    group.sample_size(20);
    for (name, text) in [("1mb_plain", corpus(false)), ("1mb_secrets", corpus(true))] {
        group.bench_function(format!("redact_{name}"), |b| {
            b.iter(|| black_box(redact(&redaction, &text, &mut Tally::default()).map(|t| t.len())))
        });
        // A stream of ~12-byte deltas, as Claude's text_delta events carry.
        group.bench_function(format!("stream_{name}"), |b| {
            b.iter(|| {
                let mut stream = TextStream::default();
                let mut tally = Tally::default();
                let mut total = 0;
                let mut at = 0;
                while at < text.len() {
                    let mut end = (at + 12).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    total += stream.push(&redaction, &text[at..end], &mut tally).map(|s| s.len()).unwrap_or(0);
                    at = end;
                }
                total + stream.finish(&redaction, &mut tally).map(|s| s.len()).unwrap_or(0)
            })
        });
    }
    group.finish();

    // A Messages event stream carrying the corpus in ~12-character text_delta events, fed to the
    // response redactor in 16 KB chunks: throughput in bytes of the stream on the wire.
    let events = sse_stream(&corpus(true));
    let mut group = c.benchmark_group("dlp_stream");
    group.throughput(Throughput::Bytes(events.len() as u64));
    group.sample_size(10);
    // `_reference`: the same with the fast path off (every event read by the JSON parser).
    for (name, fast) in [("sse_text_deltas", true), ("sse_text_deltas_reference", false)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut redactor = if fast { StreamRedactor::default() } else { StreamRedactor::without_fast_path() };
                let mut total = 0;
                for chunk in events.chunks(16 * 1024) {
                    total += redactor.push(&redaction, chunk).len();
                }
                total + redactor.finish(&redaction).len()
            })
        });
    }
    group.finish();

    // Adversarial streams (docs/dlp.md, "hold-back bound"): texts that make a stream hold back,
    // as Messages event streams, through the response redactor in 16 KB chunks. Throughput in
    // bytes of SSE; the most text held back at once is printed once per stream.
    let mut group = c.benchmark_group("dlp_adversarial");
    group.sample_size(10);
    for (name, text, piece) in adversarial_texts() {
        let events = sse_pieces(&text, piece);
        eprintln!(
            "dlp_adversarial/{name}: {} B of SSE, most held back {} B",
            events.len(),
            most_held(&redaction, &text, piece)
        );
        group.throughput(Throughput::Bytes(events.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut redactor = StreamRedactor::default();
                let mut total = 0;
                for chunk in events.chunks(16 * 1024) {
                    total += redactor.push(&redaction, chunk).len();
                }
                total + redactor.finish(&redaction).len()
            })
        });
    }
    group.finish();

    let body = SOURCES[7];
    let mut group = c.benchmark_group("dlp_request");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("claude_code_60kb", |b| {
        b.iter(|| {
            black_box(redact_request(&redaction, body.as_bytes(), &mut Tally::default(), None).map(|o| o.is_some()))
        })
    });
    // The next turn of the same conversation: the history was scanned before and is skipped.
    let memo = CleanMemo::new(b"bench");
    redact_request(&redaction, body.as_bytes(), &mut Tally::default(), Some((&memo, 0))).expect("clean");
    group.bench_function("claude_code_60kb_next_turn", |b| {
        b.iter(|| {
            black_box(
                redact_request(&redaction, body.as_bytes(), &mut Tally::default(), Some((&memo, 0)))
                    .map(|o| o.is_some()),
            )
        })
    });
    group.finish();
    c.bench_function("dlp_compile_catalog", |b| b.iter(|| black_box(Engine::new(catalog::builtin()).is_ok())));
}

criterion_group!(benches, bench_dlp);
criterion_main!(benches);

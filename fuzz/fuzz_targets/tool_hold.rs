//! The tool-call hold never panics on any stream bytes and decisions, and however the bytes are
//! chunked the client receives the same bytes, the same calls wait in the same order and the
//! same calls are dropped. The same bytes as a JSON answer: listing and refusing its calls never
//! panics, and a readable answer stays readable JSON with no refused call left.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common/chunks.rs"]
mod chunks;
use warden::core::tools::hold::{calls_in_message, rewrite_message, Decision, ToolHold};
use warden::core::tools::ToolCall;

/// Feeds `chunks`, deciding the n-th waiting call by the n-th bit of `refusals`.
fn run(chunks: &[&[u8]], refusals: u64) -> (Vec<u8>, Vec<ToolCall>, Vec<ToolCall>) {
    let mut hold = ToolHold::new();
    let mut out = Vec::new();
    let mut decided = Vec::new();
    for chunk in chunks {
        out.extend(hold.push(chunk));
        while let Some(call) = hold.waiting().cloned() {
            let refuse = refusals >> (decided.len() % 64) & 1 == 1;
            let decision =
                if refuse { Decision::Refuse { text: format!("refused {}", call.name) } } else { Decision::Release };
            out.extend(hold.decide(decision));
            decided.push(call);
        }
    }
    out.extend(hold.finish());
    (out, decided, hold.dropped().to_vec())
}

fuzz_target!(|input: (Vec<u8>, Vec<u16>, u64)| {
    let (bytes, cuts, refusals) = input;
    let whole = run(&[&bytes], refusals);
    let chunked = run(&chunks::split(&bytes, &cuts), refusals);
    assert_eq!(chunked, whole);
    let calls = calls_in_message(&bytes);
    let refused: Vec<(String, String)> = calls
        .iter()
        .enumerate()
        .filter(|(n, _)| refusals >> (n % 64) & 1 == 1)
        .map(|(_, call)| (call.id.clone(), "refused".to_string()))
        .collect();
    if let Some(rewritten) = rewrite_message(&bytes, &refused) {
        if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok() {
            serde_json::from_slice::<serde_json::Value>(&rewritten).expect("a readable answer stays readable");
            let left = calls_in_message(&rewritten);
            assert!(left.iter().all(|call| refused.iter().all(|(id, _)| id.is_empty() || *id != call.id)));
        }
    }
});

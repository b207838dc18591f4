//! The tool-call hold never panics on any stream bytes and decisions, and however the bytes are
//! chunked the client receives the same bytes, the same calls wait in the same order and the
//! same calls are dropped.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common/chunks.rs"]
mod chunks;
use warden::core::tools::hold::{Decision, ToolHold};
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
});

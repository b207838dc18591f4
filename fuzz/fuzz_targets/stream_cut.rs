//! The stream cut never panics on any upstream bytes or allowance, and however the bytes are
//! chunked the client receives the same bytes and the cut falls at the same place; what it
//! delivers is always a well-formed event stream.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common/chunks.rs"]
mod chunks;
use warden::core::response::sse::SseParser;
use warden::core::response::stream_cut::{EndingStyle, StreamCut};

fn run(allowance: u64, style: EndingStyle, chunks: &[&[u8]]) -> (Vec<u8>, Option<(Option<String>, u64)>) {
    let mut cut = StreamCut::new(allowance, "fuzz", style);
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(cut.push(chunk));
    }
    out.extend(cut.finish());
    (out, cut.cut().map(|c| (c.budget.clone(), c.output_tokens)))
}

fuzz_target!(|input: (Vec<u8>, Vec<u16>, u16, bool)| {
    let (bytes, cuts, allowance, error) = input;
    let style = if error { EndingStyle::Error } else { EndingStyle::MaxTokens };
    let whole = run(u64::from(allowance), style, &[&bytes]);
    let chunked = run(u64::from(allowance), style, &chunks::split(&bytes, &cuts));
    assert_eq!(chunked, whole);
    let mut parser = SseParser::new(usize::MAX);
    parser.push(&whole.0).expect("the cut delivers a well-formed event stream");
    parser.finish().expect("the cut delivers a well-formed event stream");
});

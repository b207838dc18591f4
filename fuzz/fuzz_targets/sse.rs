//! The SSE parser never panics, and any chunking of a stream gives the one-shot events.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common/chunks.rs"]
mod chunks;
use warden::core::response::sse::{SseError, SseEvent, SseParser};

fn parse(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
    let mut parser = SseParser::new(4096);
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(parser.push(chunk)?);
    }
    parser.finish()?;
    Ok(events)
}

fuzz_target!(|input: (Vec<u8>, Vec<u16>)| {
    let (bytes, cuts) = input;
    let chunks = chunks::split(&bytes, &cuts);
    assert_eq!(parse(&chunks), parse(&[&bytes]));
});

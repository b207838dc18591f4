//! The audit record's reassembly of delivered answers: any bytes, in any chunks, never panic, and
//! the transcript does not depend on the chunking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::core::audit::transcript::{from_body, StreamTranscript};

#[path = "common/chunks.rs"]
mod chunks;

fuzz_target!(|data: (&[u8], Vec<u16>)| {
    let (bytes, cuts) = data;
    let _ = from_body(bytes);
    let mut whole = StreamTranscript::default();
    whole.push(bytes);
    let mut pieces = StreamTranscript::default();
    for chunk in chunks::split(bytes, &cuts) {
        pieces.push(chunk);
    }
    assert_eq!(whole.finish(), pieces.finish(), "the chunking changed the transcript");
});

//! Decoders of host data never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::proxy_abi::{decode_number, decode_pairs, decode_text};

fuzz_target!(|data: &[u8]| {
    let _ = decode_pairs(data);
    let _ = decode_number(data);
    let _ = decode_text(data);
});

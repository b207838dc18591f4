//! Endpoint classification never panics on any method and path.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::core::request::endpoint::classify;

fuzz_target!(|data: (&str, &str)| {
    let _ = classify(data.0, data.1);
});

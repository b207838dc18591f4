//! The approval service's answer as the filter reads it: any verdict text, for any request, never
//! panics and never verifies under a key that signed nothing; any user-message content never
//! panics the newest-turn reader or the approver's view of a body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::core::approval::{conversation_text, turn_text, BodyView};
use warden::core::request::comparable::comparable_bytes;
use warden::core::approval::verdict::verify;

/// An Ed25519 public key whose private half signed nothing the fuzzer could know.
const KEY: [u8; 32] = [
    0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc, 0x9c, 0x98,
    0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c,
];

fuzz_target!(|data: (&str, &str, &str, f64)| {
    let (token, fingerprint, subject, now) = data;
    assert!(verify(token, &KEY, fingerprint, ("issuer", subject), now).is_err(), "a forged verdict verified");
    let _ = turn_text(token);
    if let Ok(body) = serde_json::from_str::<serde_json::Value>(token) {
        let _ = (conversation_text(&body), BodyView::of(&body), comparable_bytes(&body));
    }
});

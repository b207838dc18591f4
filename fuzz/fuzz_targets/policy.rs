//! Policy parsing and compilation never panic, whatever the document.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::core::policy::Policy;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(policy) = Policy::parse(text) {
            let _ = policy.resolve_credentials(|_| Some("k".to_string()));
        }
    }
});

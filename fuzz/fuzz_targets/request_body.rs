//! The Messages body check never panics, and a clamp rewrite is always valid JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use warden::core::messages::{check_body, BodyKind};
use warden::core::policy::Policy;

const POLICY: &str = include_str!("../../envoy/policy.yaml");

fn policy() -> &'static Policy {
    static POLICY_CELL: OnceLock<Policy> = OnceLock::new();
    POLICY_CELL.get_or_init(|| Policy::parse(POLICY).expect("demo policy"))
}

fuzz_target!(|data: &[u8]| {
    for role in &policy().roles {
        for kind in [BodyKind::Messages, BodyKind::CountTokens] {
            if let Ok(verdict) = check_body(role, kind, data) {
                if let Some(rewritten) = verdict.rewritten {
                    assert!(
                        serde_json::from_slice::<serde_json::Value>(&rewritten).is_ok(),
                        "a clamp rewrite must stay valid JSON"
                    );
                }
            }
        }
    }
});

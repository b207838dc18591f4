//! The Messages body check never panics, a clamp rewrite is always valid JSON, and the outline
//! points at whole JSON values of the body as forwarded. Request masking (full catalog, every
//! detector masking) never panics, and a masked body is valid JSON that passes the check again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use warden::core::dlp::catalog;
use warden::core::dlp::engine::{Action, Engine};
use warden::core::dlp::mask::{MaskKey, Tally};
use warden::core::dlp::request::redact_request;
use warden::core::dlp::text::Redaction;
use warden::core::request::messages::{check_body_with, BodyKind, Verdict};
use warden::core::errors::Denial;
use warden::core::policy::Policy;

const POLICY: &str = include_str!("../../envoy/policy.yaml");

fn policy() -> &'static Policy {
    static POLICY_CELL: OnceLock<Policy> = OnceLock::new();
    POLICY_CELL.get_or_init(|| Policy::parse(POLICY).expect("demo policy"))
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(catalog::builtin()).expect("catalog compiles"))
}

/// The body check with nothing added (no request masking).
fn check_body(role: &warden::core::policy::Role, kind: BodyKind, body: &[u8]) -> Result<Verdict, Denial> {
    check_body_with(role, kind, body, |_| Ok(Vec::new()))
}

fuzz_target!(|data: &[u8]| {
    let engine = engine();
    let actions = vec![Action::Mask; engine.specs().len()];
    let key = MaskKey::new(b"fuzz".to_vec());
    let redaction = Redaction { engine, actions: &actions, key: &key };
    if let Ok(Some(masked)) = redact_request(&redaction, data, &mut Tally::default(), None) {
        assert!(serde_json::from_slice::<serde_json::Value>(&masked).is_ok(), "a masked body stays valid JSON");
        for role in &policy().roles {
            if check_body(role, BodyKind::Messages, data).is_ok() {
                assert!(check_body(role, BodyKind::Messages, &masked).is_ok(), "a masked body passes the check again");
            }
        }
    }
    for role in &policy().roles {
        for kind in [BodyKind::Messages, BodyKind::CountTokens] {
            if let Ok(verdict) = check_body(role, kind, data) {
                if let Some(rewritten) = &verdict.rewritten {
                    assert!(
                        serde_json::from_slice::<serde_json::Value>(rewritten).is_ok(),
                        "a clamp rewrite must stay valid JSON"
                    );
                }
                let forwarded = verdict.rewritten.as_deref().unwrap_or(data);
                let outline = &verdict.outline;
                let parts = outline.params.iter().map(|(_, range)| range);
                let parts = parts.chain(outline.system.iter()).chain(outline.messages.iter().map(|(range, _)| range));
                for range in parts {
                    let part = forwarded.get(range.clone()).expect("an outline range lies in the body");
                    assert!(
                        serde_json::from_slice::<serde_json::Value>(part).is_ok(),
                        "an outline range is a whole JSON value"
                    );
                }
            }
        }
    }
});

//! The tool rules never panic on any call: arbitrary text as a shell command line (parsed alone
//! and judged as a Bash call), as a file path, as a URL and as a whole tool input, judged by the
//! rules docs/tools.md describes for Claude Code, inside and outside a declared workspace. A
//! judgement always names an action, and a deny or approve always gives a reason.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::sync::OnceLock;
use warden::core::policy::Policy;
use warden::core::tools::{command, CallContext, CallKind, ToolAction, ToolCall};

const POLICY: &str = include_str!("../../tests/fixtures/tool-rules-policy.yaml");

fn policy() -> &'static Policy {
    static POLICY_ONCE: OnceLock<Policy> = OnceLock::new();
    POLICY_ONCE.get_or_init(|| Policy::parse(POLICY).expect("the fixture policy compiles"))
}

fn call(name: &str, input: Value) -> ToolCall {
    ToolCall { id: "toolu_fuzz".into(), kind: CallKind::ToolUse, name: name.into(), server_name: None, input, malformed: false }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = command::parse(&text);
    let rules = &policy().roles[0].tool_rules;
    let input = serde_json::from_slice::<Value>(data).unwrap_or(Value::Null);
    let calls = [
        call("Bash", json!({ "command": text })),
        call("Read", json!({ "file_path": text })),
        call("Write", json!({ "file_path": text, "content": "x" })),
        call("WebFetch", json!({ "url": text, "prompt": "read" })),
        call("Bash", input.clone()),
        call("mcp__github__create_issue", input),
    ];
    for workspace in [None, Some("/home/me/repo".to_string())] {
        for subagent in [false, true] {
            let context = CallContext { workspace: workspace.clone(), subagent };
            for call in &calls {
                let judgement = rules.judge(call, &context);
                assert!(judgement.action == ToolAction::Allow || !judgement.reason.is_empty());
            }
        }
    }
});

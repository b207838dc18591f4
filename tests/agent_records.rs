//! Subagent-aware records and `tool_result` limits across the core, driven the way the glue
//! drives an exchange: Claude Code's agent headers reach the record (and bad ones are refused
//! before the body), the newest message's `tool_result` blocks are recorded with their sizes,
//! and a result over the role's `tools.max_result_bytes` is withheld — in the newest message and
//! in re-sent history alike — while DLP masking of the rest of the body still applies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::exchange::{json_headers, post, record_once, start, verified, DEMO_IDENTITY};
use serde_json::{json, Value};
use warden::core::audit::record::Record;
use warden::core::audit::trail::Ending;
use warden::core::errors::Reason;
use warden::core::exchange::{BodyStep, Exchange, Gateway, HeadersStep};
use warden::core::tools::results::withheld_notice;

/// The policy after [`DEMO_IDENTITY`].
const POLICY: &str = r#"
credentials:
  anthropic: { env: ANTHROPIC_API_KEY }
  audit-token: { env: WARDEN_AUDIT_TOKEN }
bindings:
  - { group: eng, role: developer }
audit:
  service: { url: "http://audit.internal:9000", token: audit-token }
  mode: fail_closed
dlp:
  profiles:
    masking:
      request:
        - { detectors: ["*"], action: mask }
roles:
  developer:
    credential: anthropic
    models: ["claude-*"]
    tools: { client: ["*"], max_result_bytes: 1KiB }
    dlp: masking
"#;

const SECRET: &str = "AKIA2E0A8F3B244C9986";

fn gateway() -> Gateway {
    Gateway::new(&format!("{DEMO_IDENTITY}{POLICY}"), |name| match name {
        "ANTHROPIC_API_KEY" => Some("sk-ant-test-key".to_string()),
        "WARDEN_AUDIT_TOKEN" => Some("audit-token".to_string()),
        _ => None,
    })
    .unwrap()
}

fn ending() -> Ending {
    Ending { at_ms: 9, response_complete: false, client_gone: true }
}

/// Posts `body` with the agent `headers`; the exchange, the body as forwarded (parsed) and the
/// step.
fn send(gw: &Gateway, headers: &[(&str, &str)], body: &Value) -> (Exchange, Value) {
    let text = body.to_string();
    let (exchange, step) = post(gw, "/v1/messages", &json_headers(headers), verified(&["eng"]), text.as_bytes());
    let forwarded = match step {
        BodyStep::Forward => text.into_bytes(),
        BodyStep::Replace { body, .. } => body,
        other => panic!("the request is forwarded: {other:?}"),
    };
    (exchange, serde_json::from_slice(&forwarded).unwrap())
}

fn tool_turn(history_result: Option<Value>, newest: Vec<Value>) -> Value {
    let mut messages = vec![json!({"role": "user", "content": "list the files"})];
    if let Some(result) = history_result {
        messages.push(json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_old", "name": "Bash", "input": {"command": "cat big.log"}}]}));
        messages.push(json!({"role": "user", "content": [result]}));
    }
    messages.push(json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_new", "name": "Bash", "input": {"command": "ls"}}]}));
    messages.push(json!({"role": "user", "content": newest}));
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages})
}

fn result(id: &str, content: Value) -> Value {
    json!({"type": "tool_result", "tool_use_id": id, "content": content})
}

fn record(gw: &Gateway, exchange: &mut Exchange) -> Record {
    record_once(gw, exchange, ending())
}

#[test]
fn a_subagents_request_is_recorded_with_its_agent_and_parent_and_the_main_agents_without() {
    let gw = gateway();
    let body = tool_turn(None, vec![json!({"type": "text", "text": "hi"})]);
    let (mut sub, _) =
        send(&gw, &[("x-claude-code-agent-id", "a7f3c2"), ("x-claude-code-parent-agent-id", "a0b1c2")], &body);
    assert!(sub.agent().is_subagent());
    let agent = record(&gw, &mut sub).agent.expect("the subagent is recorded");
    assert_eq!((agent.id.as_deref(), agent.parent.as_deref()), (Some("a7f3c2"), Some("a0b1c2")));
    let (mut main, _) = send(&gw, &[], &body);
    assert!(!main.agent().is_subagent());
    assert_eq!(record(&gw, &mut main).agent, None);
}

#[test]
fn a_hostile_agent_header_is_refused_before_the_body_and_recorded_without_an_agent() {
    let gw = gateway();
    let huge = "a".repeat(10_000);
    for headers in [
        vec![("x-claude-code-agent-id", huge.as_str())],
        vec![("x-claude-code-agent-id", "a b")],
        vec![("x-claude-code-parent-agent-id", "p1"), ("x-claude-code-parent-agent-id", "p2")],
    ] {
        let (mut exchange, step) = start(&gw, "POST", "/v1/messages", &json_headers(&headers), verified(&["eng"]));
        let HeadersStep::Reply(reply) = step else { panic!("refused: {step:?}") };
        assert_eq!(reply.status, 400);
        assert!(reply.body.contains("invalid_request_error"));
        assert!(!reply.body.contains(&huge));
        let record = record(&gw, &mut exchange);
        assert_eq!(record.decision.reason.as_deref(), Some(Reason::InvalidRequest.code()));
        assert_eq!(record.agent, None);
    }
}

#[test]
fn the_newest_results_are_recorded_and_one_over_the_limit_never_reaches_anthropic() {
    let gw = gateway();
    let big = format!("{SECRET} {}", "line of build output\n".repeat(100));
    let body = tool_turn(None, vec![result("toolu_new", json!(big)), result("toolu_small", json!("ok"))]);
    let (mut exchange, forwarded) = send(&gw, &[], &body);
    let blocks = &forwarded["messages"][2]["content"];
    let big_bytes = json!(big).to_string().len() as u64;
    assert_eq!(blocks[0]["content"], withheld_notice(big_bytes, 1024));
    assert_eq!(blocks[0]["tool_use_id"], "toolu_new");
    assert_eq!(blocks[1], result("toolu_small", json!("ok")));
    assert!(!forwarded.to_string().contains("build output"));
    let record = record(&gw, &mut exchange);
    let listed: Vec<(&str, u64, bool)> =
        record.tool_results.iter().map(|r| (r.tool_use_id.as_str(), r.bytes, r.over_limit)).collect();
    assert_eq!(listed, [("toolu_new", big_bytes, true), ("toolu_small", 4, false)]);
    assert!(record.tool_results.iter().all(|r| r.answers.is_none()), "no call of this worker was recorded");
}

#[test]
fn an_oversized_result_in_history_is_withheld_again_while_secrets_elsewhere_are_still_masked() {
    let gw = gateway();
    let old = result("toolu_old", json!(format!("{SECRET}\n{}", "x".repeat(2000))));
    let body = tool_turn(Some(old), vec![result("toolu_new", json!(format!("token {SECRET}")))]);
    let (mut exchange, forwarded) = send(&gw, &[], &body);
    let text = forwarded.to_string();
    assert!(!text.contains(SECRET), "masked or withheld everywhere: {text}");
    assert!(forwarded["messages"][2]["content"][0]["content"].as_str().unwrap().starts_with("[Warden withheld"));
    let newest = forwarded["messages"][4]["content"][0]["content"].as_str().unwrap();
    assert!(newest.starts_with("token ") && !newest.contains("withheld"), "{newest}");
    let record = record(&gw, &mut exchange);
    assert_eq!(record.tool_results.len(), 1, "history is not recorded again");
    assert!(!record.tool_results[0].over_limit);
}

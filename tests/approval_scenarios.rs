//! Approval scenarios through the core state machine, as the glue drives it: an accepted body
//! that fires a trigger is held, the callout carries what the approver needs, and only a signed
//! verdict for this request and caller that says `approved` lets it through. No proxy involved.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing, clippy::type_complexity)]

use ct_codecs::{Base64, Base64UrlSafeNoPadding, Encoder};
use ed25519_compact::{KeyPair, Seed};
use serde_json::{json, Value};
use warden::core::exchange::{ApprovalStep, BodyStep, Callout, Exchange, Gateway, HeadersStep, RequestHead};
use warden::core::identity::{TokenStatus, VerifiedClaims};

/// 2026-11-30 10:00 UTC, a Monday inside office hours.
const NOW: f64 = 1_796_032_800.0;
const KEY: &str = "sk-ant-test-key-for-approvals";
const GATEWAY_TOKEN: &str = "gateway-token-for-approvals";

const POLICY: &str = r#"
version: 1
identity:
  providers:
    - { name: demo, issuer: warden-demo, audiences: [warden], jwks: { file: jwks.json } }
credentials:
  anthropic: { env: ANTHROPIC_API_KEY }
  approvals-token: { env: WARDEN_APPROVALS_TOKEN }
  approvals-verdict-key: { env: WARDEN_APPROVALS_VERDICT_KEY }
bindings:
  - { group: eng, role: developer }
approvals:
  service:
    url: http://approvals.internal:8787/warden/
    token: approvals-token
    verdict_key: approvals-verdict-key
  hold: 30s
roles:
  developer:
    credential: anthropic
    models: ["claude-*"]
    tools: { client: ["*"] }
    approval:
      approvers: [leads]
      triggers:
        - { reason: opus_model, models: ["claude-opus-*"] }
        - { reason: shell_tool, tools: [Bash] }
        - { reason: mentions_production, prompt: "(?i)\\bprod(uction)?\\b" }
        - reason: out_of_hours
          outside: { days: [mon, tue, wed, thu, fri], from: "08:00", to: "19:00" }
"#;

fn service_key() -> KeyPair {
    KeyPair::from_seed(Seed::new([7; 32]))
}

fn gateway() -> Gateway {
    let public = Base64::encode_to_string(service_key().pk.as_ref()).unwrap();
    Gateway::new(POLICY, |name| match name {
        "ANTHROPIC_API_KEY" => Some(KEY.to_string()),
        "WARDEN_APPROVALS_TOKEN" => Some(GATEWAY_TOKEN.to_string()),
        "WARDEN_APPROVALS_VERDICT_KEY" => Some(public.clone()),
        _ => None,
    })
    .unwrap()
}

fn token(subject: &str, at: f64) -> TokenStatus {
    TokenStatus::Verified(VerifiedClaims {
        subject: Some(subject.into()),
        issuer: Some("warden-demo".into()),
        issued_at: Some(at - 5.0),
        expires_at: Some(at + 600.0),
        groups: vec!["eng".into()],
        job: vec![("repository".into(), "org/repo".into())],
        token_id: None,
    })
}

fn body(model: &str, prompt: &str, tools: &[&str]) -> Vec<u8> {
    let tools: Vec<Value> = tools.iter().map(|t| json!({"name": t, "input_schema": {"type": "object"}})).collect();
    serde_json::to_vec(&json!({
        "model": model,
        "max_tokens": 512,
        "tools": tools,
        "messages": [
            {"role": "user", "content": "earlier question"},
            {"role": "assistant", "content": "earlier answer"},
            {"role": "user", "content": [{"type": "text", "text": prompt}]}
        ]
    }))
    .unwrap()
}

/// Sends a request through headers and body at `at`; returns the exchange and the body step.
fn send_at(gw: &Gateway, subject: &str, body: &[u8], at: f64) -> (Exchange, BodyStep) {
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-request-id".to_string(), "req-1".to_string()),
    ];
    let head =
        RequestHead { method: "POST", path: "/v1/messages", headers: &headers, token: token(subject, at), now: at };
    let (exchange, step) = Exchange::start(gw, &head);
    assert!(matches!(step, HeadersStep::InspectBody(_)), "{step:?}");
    let mut exchange = exchange;
    let step = exchange.on_body_complete(gw, body);
    (exchange, step)
}

fn send(gw: &Gateway, subject: &str, body: &[u8]) -> (Exchange, BodyStep) {
    send_at(gw, subject, body, NOW)
}

fn held(step: BodyStep) -> (Callout, Value) {
    match step {
        BodyStep::Hold { callout, .. } => {
            let hold: Value = serde_json::from_slice(&callout.body).unwrap();
            (callout, hold)
        }
        other => panic!("expected the request to be held, got {other:?}"),
    }
}

fn sign(key: &KeyPair, claims: Value) -> String {
    let b64 = |bytes: &[u8]| Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap();
    let header = b64(br#"{"alg":"EdDSA","typ":"JWT"}"#);
    let payload = b64(claims.to_string().as_bytes());
    let signature = key.sk.sign(format!("{header}.{payload}"), None);
    format!("{header}.{payload}.{}", b64(signature.as_ref()))
}

fn verdict(hold: &Value, decision: &str) -> Value {
    json!({
        "fp": hold["fingerprint"], "sub": hold["caller"]["subject"], "decision": decision,
        "review": "rev_0123456789abcdef", "reviewer": "bob", "comment": "not for this repo",
        "url": "http://approvals.example/reviews/rev_0123456789abcdef",
        "iat": NOW as u64, "exp": NOW as u64 + 60,
    })
}

fn answer_body(token: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "verdict": token })).unwrap()
}

/// The refusal's status, `error.message` and `x-should-retry` header.
fn refusal(step: ApprovalStep) -> (u16, String, Option<String>) {
    match step {
        ApprovalStep::Reply(reply) => {
            let body: Value = serde_json::from_str(&reply.body).unwrap();
            let retry = reply.headers.iter().find(|(n, _)| n == "x-should-retry").map(|(_, v)| v.clone());
            (reply.status, body["error"]["message"].as_str().unwrap().to_string(), retry)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn requests_no_trigger_fires_on_go_straight_through() {
    let gw = gateway();
    let (_, step) = send(&gw, "alice", &body("claude-sonnet-4-5", "refactor the parser", &["Read"]));
    assert!(matches!(step, BodyStep::Forward), "{step:?}");
}

#[test]
fn a_triggered_request_is_held_with_what_the_approver_needs() {
    let gw = gateway();
    let secret = "ghp_Q7rM2zXp9TlWb3KvN8yCd4Sj6Hf1Ga5Eu0Io";
    let prompt = format!("deploy to production with token {secret}");
    let (_, step) = send(&gw, "alice", &body("claude-opus-4-1", &prompt, &["Bash", "Read"]));
    let (callout, hold) = held(step);
    assert_eq!(callout.cluster, "warden_approvals");
    assert_eq!(callout.authority, "approvals.internal:8787");
    assert_eq!(callout.path, "/warden/v1/holds");
    assert_eq!(callout.bearer.expose(), GATEWAY_TOKEN);
    assert_eq!(callout.timeout_ms, 40_000, "hold + margin");
    assert!(!format!("{callout:?}").contains(GATEWAY_TOKEN), "the token must not show in debug output");
    assert_eq!(hold["reasons"], json!(["opus_model", "shell_tool", "mentions_production"]));
    assert_eq!(
        hold["caller"],
        json!({"subject": "alice", "issuer": "warden-demo", "groups": ["eng"], "job": {"repository": "org/repo"}})
    );
    assert_eq!(hold["role"], "developer");
    assert_eq!(hold["model"], "claude-opus-4-1");
    assert_eq!(hold["tools"], json!(["Bash", "Read"]));
    assert_eq!(hold["max_tokens"], 512);
    assert_eq!(hold["hold_seconds"], 30);
    assert_eq!(hold["fingerprint"].as_str().unwrap().len(), 64);
    let excerpt = hold["excerpt"].as_str().unwrap();
    assert!(excerpt.starts_with("deploy to production with token ghp_[REDACTED:github-pat:"), "{excerpt}");
    assert!(!String::from_utf8_lossy(&callout.body).contains(secret), "the secret must not reach the service");
}

#[test]
fn the_excerpt_is_cut_to_two_thousand_characters() {
    let gw = gateway();
    let (_, step) = send(&gw, "alice", &body("claude-opus-4-1", &"é".repeat(5000), &[]));
    let (_, hold) = held(step);
    assert_eq!(hold["excerpt"].as_str().unwrap().chars().count(), 2001, "2000 characters and an ellipsis");
}

#[test]
fn a_retry_has_the_same_fingerprint_another_prompt_or_caller_does_not() {
    let gw = gateway();
    let fingerprint = |subject: &str, prompt: &str| {
        let (_, step) = send(&gw, subject, &body("claude-opus-4-1", prompt, &["Read"]));
        held(step).1["fingerprint"].as_str().unwrap().to_string()
    };
    let first = fingerprint("alice", "summarise the incident");
    assert_eq!(first, fingerprint("alice", "summarise the incident"));
    assert_ne!(first, fingerprint("alice", "summarise the other incident"));
    assert_ne!(first, fingerprint("mallory", "summarise the incident"));
}

#[test]
fn requests_outside_office_hours_are_held() {
    let gw = gateway();
    let saturday = NOW + 5.0 * 86_400.0;
    let (_, step) = send_at(&gw, "alice", &body("claude-sonnet-4-5", "hello", &[]), saturday);
    assert_eq!(held(step).1["reasons"], json!(["out_of_hours"]));
}

#[test]
fn an_approved_verdict_forwards_the_request() {
    let gw = gateway();
    let (mut exchange, step) = send(&gw, "alice", &body("claude-opus-4-1", "hi", &[]));
    let (_, hold) = held(step);
    let answer = answer_body(&sign(&service_key(), verdict(&hold, "approved")));
    let step = exchange.on_approval_answer(&gw, Some((200, &answer)), NOW + 3.0);
    assert_eq!(step, ApprovalStep::Forward { clamped: false });
}

#[test]
fn a_denial_names_the_reviewer_and_their_comment() {
    let gw = gateway();
    let (mut exchange, step) = send(&gw, "alice", &body("claude-opus-4-1", "hi", &[]));
    let (_, hold) = held(step);
    let answer = answer_body(&sign(&service_key(), verdict(&hold, "denied")));
    let (status, message, retry) = refusal(exchange.on_approval_answer(&gw, Some((200, &answer)), NOW + 3.0));
    assert_eq!(status, 403);
    assert_eq!(
        message,
        "warden: approval_denied: bob denied this request (review rev_0123456789abcdef): not for this repo"
    );
    assert_eq!(retry.as_deref(), Some("false"));
}

#[test]
fn a_pending_verdict_tells_where_to_get_approval() {
    let gw = gateway();
    let (mut exchange, step) = send(&gw, "alice", &body("claude-opus-4-1", "hi", &[]));
    let (_, hold) = held(step);
    let answer = answer_body(&sign(&service_key(), verdict(&hold, "pending")));
    let (status, message, retry) = refusal(exchange.on_approval_answer(&gw, Some((200, &answer)), NOW + 30.0));
    assert_eq!(status, 403);
    assert!(message.starts_with("warden: approval_pending: this request needs approval (opus_model)"), "{message}");
    assert!(message.contains("rev_0123456789abcdef") && message.contains("http://approvals.example/reviews/"));
    assert_eq!(retry.as_deref(), Some("false"));
}

#[test]
fn forged_or_misdirected_verdicts_are_refused() {
    let gw = gateway();
    let forger = KeyPair::from_seed(Seed::new([9; 32]));
    let cases: Vec<(&str, Box<dyn Fn(&Value) -> String>)> = vec![
        ("another key", Box::new(|hold| sign(&forger, verdict(hold, "approved")))),
        (
            "another request",
            Box::new(|hold| {
                let mut claims = verdict(hold, "approved");
                claims["fp"] = json!("0".repeat(64));
                sign(&service_key(), claims)
            }),
        ),
        (
            "tampered decision",
            Box::new(|hold| {
                let denied = sign(&service_key(), verdict(hold, "denied"));
                let approved = sign(&service_key(), verdict(hold, "approved"));
                let parts: Vec<&str> = denied.split('.').collect();
                let approved_payload = approved.split('.').nth(1).unwrap();
                format!("{}.{}.{}", parts[0], approved_payload, parts[2])
            }),
        ),
        (
            "expired",
            Box::new(|hold| {
                let mut claims = verdict(hold, "approved");
                claims["exp"] = json!(NOW as u64 - 600);
                sign(&service_key(), claims)
            }),
        ),
    ];
    for (case, make) in cases {
        let (mut exchange, step) = send(&gw, "alice", &body("claude-opus-4-1", "hi", &[]));
        let (_, hold) = held(step);
        let answer = answer_body(&make(&hold));
        let (status, message, _) = refusal(exchange.on_approval_answer(&gw, Some((200, &answer)), NOW + 3.0));
        assert_eq!(status, 403, "{case}");
        assert!(message.starts_with("warden: approval_invalid: "), "{case}: {message}");
    }
}

#[test]
fn any_failure_to_ask_the_service_refuses_the_request() {
    let gw = gateway();
    let cases: [(Option<(u16, &[u8])>, &str); 6] = [
        (None, "could not be called"),
        (Some((503, b"upstream connect error")), "is unreachable (HTTP 503)"),
        (Some((504, b"upstream request timeout")), "did not answer in time (HTTP 504)"),
        (Some((500, b"{}")), "answered HTTP 500"),
        (Some((200, b"not json")), "sent a malformed answer"),
        (Some((200, br#"{"verdict": "a.b.c"}"#)), ""),
    ];
    for (answer, expected) in cases {
        let (mut exchange, step) = send(&gw, "alice", &body("claude-opus-4-1", "hi", &[]));
        held(step);
        let (status, message, retry) = refusal(exchange.on_approval_answer(&gw, answer, NOW + 3.0));
        assert_eq!(status, 403);
        assert_eq!(retry.as_deref(), Some("false"));
        if expected.is_empty() {
            assert!(message.starts_with("warden: approval_invalid: "), "{message}");
        } else {
            assert!(message.starts_with("warden: approval_unavailable: "), "{message}");
            assert!(message.contains(expected), "{message}");
        }
    }
}

#[test]
fn a_masked_or_clamped_body_is_replaced_before_the_hold() {
    let gw = gateway();
    let secret = "ghp_Q7rM2zXp9TlWb3KvN8yCd4Sj6Hf1Ga5Eu0Io";
    let (_, step) = send(&gw, "alice", &body("claude-opus-4-1", &format!("use {secret}"), &[]));
    match step {
        BodyStep::Hold { body: Some(body), .. } => {
            assert!(!String::from_utf8_lossy(&body).contains(secret));
        }
        other => panic!("expected a hold with the masked body, got {other:?}"),
    }
}

#[test]
fn approval_rules_need_the_service_and_a_valid_key() {
    let without_service = POLICY.replace("approvals:\n  service:", "unused:\n  service:");
    assert!(Gateway::new(&without_service, |_| Some("x".into())).is_err());
    let errors = Gateway::new(POLICY, |name| match name {
        "WARDEN_APPROVALS_VERDICT_KEY" => Some("not-a-key".to_string()),
        _ => Some("value".to_string()),
    })
    .unwrap_err();
    assert_eq!(
        errors.to_string(),
        "approvals.service.verdict_key: the credential is not an Ed25519 public key (base64 of 32 bytes)"
    );
}

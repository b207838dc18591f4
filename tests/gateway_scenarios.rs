//! Whole-request scenarios through the core state machine, as the glue drives it:
//! headers → (body) → the step the glue performs. No proxy involved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::type_complexity)]

mod common;

use common::exchange::{start, NOW};
use warden::core::exchange::{BodyStep, Gateway, HeaderEdits, HeadersStep};
use warden::core::identity::{TokenStatus, VerifiedClaims};

const POLICY: &str = include_str!("../envoy/policy.yaml");
const KEY: &str = "sk-ant-test-key-for-scenarios";

fn gateway() -> Gateway {
    Gateway::new(POLICY, |name| match name {
        "ANTHROPIC_API_KEY" => Some(KEY.to_string()),
        "WARDEN_APPROVALS_TOKEN" => Some("approvals-token".to_string()),
        // Any Ed25519 public key (base64 of 32 bytes).
        "WARDEN_APPROVALS_VERDICT_KEY" => Some("A".repeat(43)),
        _ => None,
    })
    .unwrap()
}

fn token(groups: &[&str]) -> TokenStatus {
    TokenStatus::Verified(VerifiedClaims {
        subject: Some("alice".into()),
        issuer: Some("warden-demo".into()),
        audiences: vec![],
        issued_at: Some(NOW - 5.0),
        expires_at: Some(NOW + 895.0),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        job: vec![("repository".into(), "org/repo".into())],
        claims: vec![],
        token_id: None,
    })
}

fn headers(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-request-id".to_string(), "abc-123".to_string()),
        ("authorization".to_string(), "Bearer eyJ.client.token".to_string()),
        // Claude Code's apiKeyHelper sends its token in both headers.
        ("x-api-key".to_string(), "eyJ.client.token".to_string()),
        ("x-jwt-payload".to_string(), "eyJzdWIiOiJyb290In0".to_string()),
        ("accept-encoding".to_string(), "gzip, deflate, br, zstd".to_string()),
    ];
    all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    all
}

fn reply_message(step: &HeadersStep) -> (u16, String) {
    match step {
        HeadersStep::Reply(reply) => {
            let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
            (reply.status, body["error"]["message"].as_str().unwrap().to_string())
        }
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn edits(step: &HeadersStep) -> &HeaderEdits {
    match step {
        HeadersStep::Forward(edits) | HeadersStep::InspectBody(edits) => edits,
        HeadersStep::Reply(reply) => panic!("unexpected refusal: {}", reply.body),
    }
}

#[test]
fn allowed_message_swaps_client_credentials_for_the_role_key() {
    let gw = gateway();
    let hs = headers(&[("x-warden-role", "developer")]);
    let (exchange, step) = start(&gw, "POST", "/v1/messages?beta=true", &hs, token(&["eng"]));
    let edits = edits(&step);
    assert!(matches!(step, HeadersStep::InspectBody(_)));
    for removed in ["authorization", "x-api-key", "x-jwt-payload", "x-warden-role", "accept-encoding"] {
        assert!(edits.remove.iter().any(|h| h == removed), "{removed} must be removed");
    }
    assert_eq!(edits.api_key.expose(), KEY);
    assert!(!format!("{edits:?}").contains(KEY), "debug output must not reveal the key");

    let mut exchange = exchange;
    let body =
        br#"{"model":"claude-sonnet-4-5","max_tokens":1000,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(exchange.on_body_complete(&gw, body), BodyStep::Forward);
}

#[test]
fn analyst_is_held_to_haiku_and_small_answers() {
    let gw = gateway();
    // One exchange per request: a refused exchange decides nothing more.
    let analyst = || start(&gw, "POST", "/v1/messages", &headers(&[]), token(&["analysts"])).0;
    let opus = br#"{"model":"claude-opus-4-1","max_tokens":100,"messages":[]}"#;
    let BodyStep::Reply(reply) = analyst().on_body_complete(&gw, opus) else { panic!("opus must be refused") };
    assert_eq!(reply.status, 403);
    assert!(reply.body.contains("warden: model_not_allowed"), "{}", reply.body);
    assert!(reply.headers.contains(&("request-id".to_string(), "req_warden_abc-123".to_string())));

    let big = br#"{"model":"claude-haiku-4-5","max_tokens":4096,"messages":[]}"#;
    let BodyStep::Reply(reply) = analyst().on_body_complete(&gw, big) else { panic!("max_tokens must be refused") };
    assert!(reply.body.contains("warden: max_tokens_exceeded"), "{}", reply.body);

    let tools =
        br#"{"model":"claude-haiku-4-5","max_tokens":100,"messages":[],"tools":[{"name":"Bash","input_schema":{}}]}"#;
    let BodyStep::Reply(reply) = analyst().on_body_complete(&gw, tools) else { panic!("tools must be refused") };
    assert!(reply.body.contains("warden: tool_not_allowed"), "{}", reply.body);
}

#[test]
fn developer_max_tokens_are_clamped_in_place() {
    let gw = gateway();
    let (mut exchange, _) = start(&gw, "POST", "/v1/messages", &headers(&[]), token(&["eng"]));
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":128000,"messages":[]}"#;
    assert_eq!(
        exchange.on_body_complete(&gw, body),
        BodyStep::Replace {
            body: br#"{"model":"claude-sonnet-4-5","max_tokens":64000,"messages":[]}"#.to_vec(),
            clamped: true
        }
    );
}

#[test]
fn role_header_cannot_escalate() {
    let gw = gateway();
    let (_, step) =
        start(&gw, "POST", "/v1/messages", &headers(&[("x-warden-role", "developer")]), token(&["analysts"]));
    let (status, message) = reply_message(&step);
    assert_eq!(status, 403);
    assert!(message.starts_with("warden: role_not_entitled:"), "{message}");
}

#[test]
fn two_different_credentials_are_refused_with_the_hint() {
    let gw = gateway();
    for (authorization, api_key) in [
        ("Bearer eyJ.client.token", "sk-ant-client-own-key"),
        ("Bearer eyJ.client.token", "eyJ.other.token"),
        ("Basic YWxpY2U6cHc=", "eyJ.client.token"),
    ] {
        let hs: Vec<(String, String)> = headers(&[])
            .into_iter()
            .map(|(name, value)| match name.as_str() {
                "authorization" => (name, authorization.to_string()),
                "x-api-key" => (name, api_key.to_string()),
                _ => (name, value),
            })
            .collect();
        let (_, step) = start(&gw, "POST", "/v1/messages", &hs, token(&["eng"]));
        let (status, message) = reply_message(&step);
        assert_eq!(status, 401, "{message}");
        assert!(message.starts_with("warden: token_invalid: two different credentials"), "{message}");
        assert!(message.contains("send the token in only one"), "{message}");
    }
    // A repeated header with another value is a second credential too.
    let repeated = headers(&[("x-api-key", "eyJ.other.token")]);
    let (_, step) = start(&gw, "POST", "/v1/messages", &repeated, token(&["eng"]));
    assert_eq!(reply_message(&step).0, 401);
}

#[test]
fn an_expired_helper_token_lets_claude_code_refresh_and_retry() {
    let gw = gateway();
    let expired = || TokenStatus::Failed("Jwt is expired".into());
    let retry_header = |step: &HeadersStep| match step {
        HeadersStep::Reply(reply) => {
            reply.headers.iter().find(|(name, _)| name == "x-should-retry").map(|(_, v)| v.clone())
        }
        other => panic!("expected a reply, got {other:?}"),
    };
    // The same token in both headers: Claude Code's apiKeyHelper. No x-should-retry, so Claude
    // Code runs the helper again and retries.
    let (_, helper) = start(&gw, "POST", "/v1/messages", &headers(&[]), expired());
    let (status, message) = reply_message(&helper);
    assert_eq!(status, 401);
    assert!(message.starts_with("warden: token_expired:") && message.contains("`warden token`"), "{message}");
    assert_eq!(retry_header(&helper), None);
    // A bearer token alone (ANTHROPIC_AUTH_TOKEN) is fixed: retrying cannot help.
    let bearer_only: Vec<(String, String)> = headers(&[]).into_iter().filter(|(name, _)| name != "x-api-key").collect();
    let (_, fixed) = start(&gw, "POST", "/v1/messages", &bearer_only, expired());
    assert_eq!(reply_message(&fixed).0, 401);
    assert_eq!(retry_header(&fixed).as_deref(), Some("false"));
    // Other refusals keep x-should-retry: false even from the helper.
    let (_, unbound) = start(&gw, "POST", "/v1/messages", &headers(&[]), token(&["marketing"]));
    assert_eq!(retry_header(&unbound).as_deref(), Some("false"));
}

#[test]
fn refusals_happen_before_the_body() {
    let gw = gateway();
    let cases: Vec<(&str, &str, Vec<(String, String)>, TokenStatus, u16, &str)> = vec![
        ("POST", "/v1/messages", headers(&[]), TokenStatus::Missing, 401, "token_missing"),
        ("POST", "/v1/messages", headers(&[]), TokenStatus::Failed("Jwt is expired".into()), 401, "token_expired"),
        ("POST", "/v1/messages", headers(&[]), token(&[]), 403, "no_role_binding"),
        ("POST", "/v1/messages/batches", headers(&[]), token(&["eng"]), 403, "endpoint_not_allowed"),
        ("POST", "/v1/complete", headers(&[]), token(&["eng"]), 403, "endpoint_not_allowed"),
        ("POST", "/v1/%6dessages", headers(&[]), token(&["eng"]), 404, "unknown_endpoint"),
        ("POST", "/v1/messages", headers(&[("content-encoding", "gzip")]), token(&["eng"]), 400, "compressed_body"),
        ("POST", "/v1/messages", headers(&[("content-length", "999999999")]), token(&["eng"]), 413, "body_too_large"),
    ];
    for (method, path, hs, token, status, code) in cases {
        let (exchange, step) = start(&gw, method, path, &hs, token);
        assert!(exchange.is_refused() && !exchange.wants_body(), "a refused exchange takes no body");
        let (got_status, message) = reply_message(&step);
        assert_eq!(
            (got_status, message.split(':').nth(1).unwrap().trim()),
            (status, code),
            "{method} {path}: {message}"
        );
    }
}

#[test]
fn wrong_content_type_is_refused() {
    let gw = gateway();
    let hs: Vec<_> = headers(&[])
        .into_iter()
        .map(|(k, v)| if k == "content-type" { (k, "text/plain".into()) } else { (k, v) })
        .collect();
    let (_, step) = start(&gw, "POST", "/v1/messages", &hs, token(&["eng"]));
    assert_eq!(reply_message(&step).0, 400);
}

#[test]
fn beta_headers_follow_the_role() {
    let gw = gateway();
    let beta = headers(&[("anthropic-beta", "interleaved-thinking-2025-05-14")]);
    let (_, step) = start(&gw, "POST", "/v1/messages", &beta, token(&["eng"]));
    assert!(matches!(step, HeadersStep::InspectBody(_)));
    let (_, step) = start(&gw, "POST", "/v1/messages", &beta, token(&["analysts"]));
    assert!(reply_message(&step).1.starts_with("warden: beta_not_allowed:"));
}

#[test]
fn models_listing_needs_no_body() {
    let gw = gateway();
    let (_, step) = start(&gw, "GET", "/v1/models", &headers(&[]), token(&["eng"]));
    assert!(matches!(step, HeadersStep::Forward(_)));
    let (_, step) = start(&gw, "GET", "/v1/models/claude-opus-4-1", &headers(&[]), token(&["analysts"]));
    assert!(reply_message(&step).1.starts_with("warden: model_not_allowed:"));
}

#[test]
fn oversize_body_is_refused_while_streaming_in() {
    let gw = gateway();
    let (exchange, _) = start(&gw, "POST", "/v1/messages", &headers(&[]), token(&["analysts"]));
    let mut exchange = exchange;
    assert!(exchange.on_body_progress(1000).is_none());
    let reply = exchange.on_body_progress((1 << 20) + 1).expect("over 1 MiB must be refused");
    assert_eq!(reply.status, 413);
}

#[test]
fn missing_key_stops_the_gateway_from_starting() {
    let err = Gateway::new(POLICY, |_| None).unwrap_err();
    assert!(err.to_string().contains("ANTHROPIC_API_KEY"));
}

/// A fabricated GitHub token (never a real one).
const GITHUB_TOKEN: &str = "ghp_Q7rM2zXp9TlWb3KvN8yCd4Sj6Hf1Ga5Eu0Io";

#[test]
fn a_secret_read_by_the_agent_is_masked_before_claude_and_one_claude_writes_before_the_agent() {
    let gw = gateway();
    let (exchange, step) = start(&gw, "POST", "/v1/messages", &headers(&[]), token(&["eng"]));
    assert!(matches!(step, HeadersStep::InspectBody(_)));
    let mut exchange = exchange;

    // The agent sends a tool result holding a token: the upstream gets it masked.
    let body = serde_json::json!({
        "model": "claude-sonnet-4-5", "max_tokens": 512, "stream": true,
        "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": format!("GITHUB_TOKEN={GITHUB_TOKEN}\n")}
        ]}]
    })
    .to_string();
    let BodyStep::Replace { body: forwarded, clamped: false } = exchange.on_body_complete(&gw, body.as_bytes()) else {
        panic!("the body must be rewritten, masked but not clamped")
    };
    let forwarded = String::from_utf8(forwarded).unwrap();
    assert!(forwarded.contains("GITHUB_TOKEN=ghp_[REDACTED:github-pat:"), "{forwarded}");
    assert!(!forwarded.contains(&GITHUB_TOKEN[4..]));
    // Every other byte is kept: the masked body differs only inside that string.
    assert_eq!(body.len() + "[REDACTED:github-pat:000000]".len(), forwarded.len() + (GITHUB_TOKEN.len() - 4));

    // Claude answers with the same token split over three deltas: the agent gets the same mask.
    let headers = [("content-type".to_string(), "text/event-stream".to_string())];
    assert_eq!(exchange.on_response_headers(&gw, &headers), warden::core::exchange::ResponseStep::Stream);
    let delta = |text: &str| {
        let data = serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}});
        format!("event: content_block_delta\ndata: {data}\n\n")
    };
    let upstream = [
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string(),
        delta("Use gh"),
        delta(&GITHUB_TOKEN[2..20]),
        delta(&format!("{} to log in.", &GITHUB_TOKEN[20..])),
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".to_string(),
    ];
    let mut delivered = Vec::new();
    for chunk in &upstream {
        delivered.extend(exchange.on_response_chunk(&gw, chunk.as_bytes()));
    }
    delivered.extend(exchange.on_response_end(&gw));
    let delivered = String::from_utf8(delivered).unwrap();
    let mask_in_request = &forwarded[forwarded.find("[REDACTED").unwrap()..][..28];
    let text: String = delivered
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, format!("Use ghp_{mask_in_request} to log in."), "the same value gets the same mask");
    assert_eq!(exchange.tally().to_string(), "masked github-pat=2");
}

#[test]
fn client_controlled_content_is_masked_before_claude_wherever_it_stands() {
    let gw = gateway();
    let (mut exchange, _) = start(&gw, "POST", "/v1/messages", &headers(&[]), token(&["eng"]));
    let body = serde_json::json!({
        "model": "claude-sonnet-4-5", "max_tokens": 512,
        "system": format!("Deploy with {GITHUB_TOKEN}"),
        "messages": [
            {"role": "user", "content": [
                {"type": "search_result", "source": "https://wiki", "title": format!("token {GITHUB_TOKEN}"),
                 "content": [{"type": "text", "text": "see title"}]},
                {"type": "document", "title": "notes", "context": format!("ctx {GITHUB_TOKEN}"),
                 "source": {"type": "url", "url": format!("https://files.example/{GITHUB_TOKEN}.pdf")}}
            ]},
            {"role": "assistant", "content": format!("Sure, using {GITHUB_TOKEN}")}
        ]
    })
    .to_string();
    let BodyStep::Replace { body: forwarded, .. } = exchange.on_body_complete(&gw, body.as_bytes()) else {
        panic!("the body must be rewritten")
    };
    let forwarded = String::from_utf8(forwarded).unwrap();
    assert!(!forwarded.contains(&GITHUB_TOKEN[4..]), "{forwarded}");
    assert_eq!(exchange.tally().to_string(), "masked github-pat=5");
}

#[test]
fn an_over_deep_body_is_refused_with_an_invalid_request_error() {
    let gw = gateway();
    let (mut exchange, _) = start(&gw, "POST", "/v1/messages", &headers(&[]), token(&["eng"]));
    let levels = 4_000;
    let content = format!(
        "{}\"x\"{}",
        r#"[{"type":"tool_result","tool_use_id":"t","content":"#.repeat(levels),
        "}]".repeat(levels)
    );
    let body = format!(
        r#"{{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{{"role":"user","content":{content}}}]}}"#
    );
    let BodyStep::Reply(reply) = exchange.on_body_complete(&gw, body.as_bytes()) else {
        panic!("an over-deep body must be refused")
    };
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("invalid_request_error"), "{}", reply.body);
}

/// One audited exchange of a session: the body as the agent sends it, the record it leaves.
fn audited_exchange(gw: &Gateway, body: &serde_json::Value) -> warden::core::audit::record::Record {
    let hs = headers(&[("x-claude-code-session-id", "sess-audit-1")]);
    let (exchange, _) = start(gw, "POST", "/v1/messages", &hs, token(&["eng"]));
    let mut exchange = exchange;
    assert!(matches!(exchange.on_body_complete(gw, body.to_string().as_bytes()), BodyStep::Replace { .. }));
    let ending = warden::core::audit::trail::Ending { at_ms: 1, response_complete: true, client_gone: false };
    exchange.finish_record(gw, ending).unwrap()
}

#[test]
fn the_audit_record_shows_the_request_as_forwarded_and_sends_each_message_once() {
    let gw = gateway();
    let mut messages = vec![
        serde_json::json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": format!("GITHUB_TOKEN={GITHUB_TOKEN}\n")}
        ]}),
        serde_json::json!({"role": "assistant", "content": "Noted."}),
        serde_json::json!({"role": "user", "content": "mail ann.lee@corp.io when done"}),
    ];
    let body = |messages: &[serde_json::Value]| {
        serde_json::json!({
            "model": "claude-sonnet-4-5", "max_tokens": 128000, "stream": true,
            "system": "You are Claude Code.", "messages": messages, "tools": [{"name": "Bash", "input_schema": {}}],
        })
    };
    let first = audited_exchange(&gw, &body(&messages));
    let request = first.request.as_ref().unwrap();
    assert_eq!(request.params["max_tokens"], 64000, "the clamped value, as forwarded");
    assert_eq!((request.tools.clone(), first.session_id.as_deref()), (vec!["Bash".to_string()], Some("sess-audit-1")));
    assert_eq!(request.messages.len(), 3);
    assert_eq!(first.blobs.len(), 4, "the system prompt and three messages");
    for (name, text) in &first.blobs {
        assert_eq!(&warden::core::audit::record::blob_name(text), name);
        assert!(!text.contains(&GITHUB_TOKEN[4..]), "the role masked the token: {text}");
        assert!(!text.contains("ann.lee@corp.io"), "the record masks what the role lets through: {text}");
    }

    messages.push(serde_json::json!({"role": "assistant", "content": "Done."}));
    messages.push(serde_json::json!({"role": "user", "content": "thanks"}));
    // The service stored the first record: its blobs are known from now on.
    gw.audit_blobs().unwrap().borrow_mut().acknowledge(first.blobs.keys().map(String::as_str));
    let second = audited_exchange(&gw, &body(&messages));
    let names = &second.request.as_ref().unwrap().messages;
    assert_eq!(names[..3], request.messages[..], "the history keeps its names, masked message included");
    assert_eq!(second.blobs.len(), 2, "only the two new messages: {:?}", second.blobs.values());
}

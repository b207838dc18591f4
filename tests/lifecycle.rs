//! The lifecycle of one exchange, phase by phase and outcome by outcome, driven through the core
//! the way the glue drives it (it keeps every exchange it creates and asks it for the record
//! when the stream ends): every request — refused at its headers, at its body, by an approval,
//! at its response, cut short, or served — leaves exactly one record, with the decision, the
//! reason and, whenever the token verified, who sent it. No proxy involved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::type_complexity)]

mod common;

use common::exchange::{json_headers, record_once, respond, verified, NOW};
use ct_codecs::{Base64, Base64UrlSafeNoPadding, Encoder};
use ed25519_compact::{KeyPair, Seed};
use serde_json::{json, Value};
use warden::core::audit::record::{Outcome, Record};
use warden::core::audit::trail::Ending;
use warden::core::errors::{Denial, LocalReply, Reason};
use warden::core::exchange::{
    ApprovalStep, BodyStep, Exchange, Gateway, HeadersStep, RequestHead, ResponseMode, ResponseStep,
};
use warden::core::identity::TokenStatus;

const AWS_KEY: &str = "AKIA2E0A8F3B244C9986";

const POLICY: &str = r#"
version: 1
identity:
  providers:
    - { name: demo, issuer: warden-demo, audiences: [warden], jwks: { file: jwks.json } }
  role_header: x-warden-role
credentials:
  anthropic: { env: ANTHROPIC_API_KEY }
  approvals-token: { env: WARDEN_APPROVALS_TOKEN }
  approvals-verdict-key: { env: WARDEN_APPROVALS_VERDICT_KEY }
bindings:
  - { group: eng, role: developer }
  - { group: analysts, role: analyst }
approvals:
  service:
    url: http://approvals.internal:8787/warden/
    token: approvals-token
    verdict_key: approvals-verdict-key
  hold: 30s
audit:
  mode: fail_closed
dlp:
  profiles:
    strict:
      request:
        - { detectors: [private-key, "aws-*"], action: block }
        - { detectors: [credentials], action: mask }
      response:
        - { detectors: ["*"], action: mask }
roles:
  developer:
    credential: anthropic
    endpoints: [messages, count_tokens, models]
    models: ["claude-*"]
    tools: { client: ["*"] }
    betas: ["*"]
    dlp: strict
    approval:
      approvers: [leads]
      triggers:
        - { reason: opus_model, models: ["claude-opus-*"] }
  analyst:
    credential: anthropic
    endpoints: [messages, models]
    models: ["claude-haiku-*"]
    max_tokens: { limit: 1024, action: deny }
    tools: { client: [] }
    betas: []
    dlp: "off"
    max_body_bytes: 1KiB
"#;

fn service_key() -> KeyPair {
    KeyPair::from_seed(Seed::new([7; 32]))
}

fn gateway() -> Gateway {
    let public = Base64::encode_to_string(service_key().pk.as_ref()).unwrap();
    Gateway::new(POLICY, |name| match name {
        "ANTHROPIC_API_KEY" => Some("sk-ant-test-key-for-lifecycle".to_string()),
        "WARDEN_APPROVALS_TOKEN" => Some("approvals-token".to_string()),
        "WARDEN_APPROVALS_VERDICT_KEY" => Some(public.clone()),
        _ => None,
    })
    .unwrap()
}

fn headers(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    json_headers(&[&[("x-request-id", "life-1")], extra].concat())
}

fn messages(model: &str, text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}]}))
        .unwrap()
}

/// What the glue keeps of one request: the exchange, and every reply it sent.
struct Run {
    gw: Gateway,
    exchange: Exchange,
    replies: Vec<LocalReply>,
}

impl Run {
    fn start(method: &str, path: &str, extra: &[(&str, &str)], token: TokenStatus) -> (Run, HeadersStep) {
        let gw = gateway();
        let (exchange, step) = common::exchange::start(&gw, method, path, &headers(extra), token);
        let mut run = Run { gw, exchange, replies: vec![] };
        if let HeadersStep::Reply(reply) = &step {
            run.replies.push(reply.clone());
        }
        (run, step)
    }

    fn post(groups: &[&str], body: &[u8]) -> (Run, BodyStep) {
        let (mut run, step) = Run::start("POST", "/v1/messages", &[], verified(groups));
        assert!(matches!(step, HeadersStep::InspectBody(_)), "{step:?}");
        let step = run.body(body);
        (run, step)
    }

    fn body(&mut self, body: &[u8]) -> BodyStep {
        assert!(self.exchange.wants_body());
        let step = self.exchange.on_body_complete(&self.gw, body);
        if let BodyStep::Reply(reply) = &step {
            self.replies.push(reply.clone());
        }
        step
    }

    fn answer(&mut self, answer: Option<(u16, &[u8])>) -> ApprovalStep {
        assert!(self.exchange.is_held());
        let step = self.exchange.on_approval_answer(&self.gw, answer, NOW + 1.0);
        if let ApprovalStep::Reply(reply) = &step {
            self.replies.push(reply.clone());
        }
        step
    }

    /// The upstream answers with `headers` and `body` (in chunks of `chunk` bytes).
    fn respond(&mut self, headers: &[(&str, &str)], body: &[u8], chunk: usize) -> Vec<u8> {
        let delivered = respond(&self.gw, &mut self.exchange, headers, body, chunk);
        self.replies.extend(delivered.reply);
        delivered.bytes
    }

    /// `on_log`: the record, made exactly once.
    fn end(mut self, response_complete: bool, client_gone: bool) -> (Record, Vec<LocalReply>) {
        let ending = Ending { at_ms: 9, response_complete, client_gone };
        (record_once(&self.gw, &mut self.exchange, ending), self.replies)
    }

    fn ended(self) -> (Record, Vec<LocalReply>) {
        self.end(true, false)
    }
}

/// The record says the request was refused for `reason`, with the status the client got.
fn assert_refused(record: &Record, replies: &[LocalReply], reason: &str) {
    assert!(!record.decision.allowed, "{reason}: {:?}", record.decision);
    assert_eq!(record.decision.reason.as_deref(), Some(reason));
    assert_eq!(record.outcome, Outcome::Refused, "{reason}");
    let last = replies.last().unwrap_or_else(|| panic!("{reason}: the client got a reply"));
    assert_eq!(record.decision.status, Some(last.status), "{reason}");
    assert_eq!(last.reason.code(), reason);
    assert_eq!(replies.len(), 1, "{reason}: one reply, no second decision");
}

fn subject_and_role(record: &Record) -> Option<(String, String)> {
    record.identity.as_ref().map(|i| (i.subject.clone(), i.role.clone()))
}

fn alice(role: &str) -> Option<(String, String)> {
    Some(("alice".to_string(), role.to_string()))
}

#[test]
fn a_refusal_at_the_headers_is_recorded_once_and_names_the_caller_whenever_the_token_verified() {
    let cases: Vec<(&str, &str, Vec<(&str, &str)>, TokenStatus, &str, Option<(String, String)>)> = vec![
        ("POST", "/v1/messages", vec![], TokenStatus::Missing, "token_missing", None),
        ("POST", "/v1/messages", vec![], TokenStatus::Failed("Jwt is expired".into()), "token_expired", None),
        ("POST", "/v1/messages", vec![], verified(&["nobody"]), "no_role_binding", alice("")),
        (
            "POST",
            "/v1/messages",
            vec![("x-warden-role", "analyst")],
            verified(&["eng"]),
            "role_not_entitled",
            alice(""),
        ),
        ("POST", "/v1/%6dessages", vec![], verified(&["eng"]), "unknown_endpoint", alice("developer")),
        ("POST", "/v1/messages/batches", vec![], verified(&["eng"]), "endpoint_not_allowed", alice("developer")),
        (
            "POST",
            "/v1/messages/count_tokens",
            vec![],
            verified(&["analysts"]),
            "endpoint_not_allowed",
            alice("analyst"),
        ),
        ("GET", "/v1/models/claude-opus-4-1", vec![], verified(&["analysts"]), "model_not_allowed", alice("analyst")),
        (
            "POST",
            "/v1/messages",
            vec![("anthropic-beta", "x")],
            verified(&["analysts"]),
            "beta_not_allowed",
            alice("analyst"),
        ),
        (
            "POST",
            "/v1/messages",
            vec![("content-encoding", "gzip")],
            verified(&["eng"]),
            "compressed_body",
            alice("developer"),
        ),
        (
            "POST",
            "/v1/messages",
            vec![("content-length", "4096")],
            verified(&["analysts"]),
            "body_too_large",
            alice("analyst"),
        ),
    ];
    for (method, path, extra, token, reason, who) in cases {
        let (run, step) = Run::start(method, path, &extra, token);
        assert!(matches!(step, HeadersStep::Reply(_)), "{reason}: {step:?}");
        assert!(!run.exchange.wants_body(), "{reason}: a refused request takes no body");
        let (record, replies) = run.ended();
        assert_refused(&record, &replies, reason);
        assert_eq!(subject_and_role(&record), who, "{reason}");
        assert_eq!((record.method.as_str(), record.path.as_str()), (method, path));
        assert!(record.request.is_none() && record.response.is_none(), "{reason}: nothing was read or answered");
    }
}

#[test]
fn a_known_endpoint_is_named_in_the_record_of_a_refusal() {
    let (run, _) = Run::start("POST", "/v1/messages", &[("anthropic-beta", "x")], verified(&["analysts"]));
    assert_eq!(run.ended().0.endpoint, "messages");
    let (run, _) = Run::start("POST", "/v1/messages", &[], TokenStatus::Missing);
    assert_eq!(run.ended().0.endpoint, "unknown", "not classified before the caller is known");
}

#[test]
fn a_request_turned_away_before_its_headers_are_judged_is_recorded_with_who_sent_it() {
    let hs = headers(&[]);
    let head = RequestHead { method: "POST", path: "/v1/messages", headers: &hs, token: verified(&["eng"]), now: NOW };
    let gw = gateway();
    let (exchange, reply) = Exchange::turned_away(&gw, &head, Denial::new(Reason::InternalError, "cannot"));
    assert!(exchange.is_refused() && !exchange.wants_body());
    let run = Run { gw, exchange, replies: vec![reply] };
    let (record, replies) = run.ended();
    assert_refused(&record, &replies, "internal_error");
    assert_eq!(subject_and_role(&record), alice("developer"));
    assert_eq!(record.endpoint, "messages");
}

#[test]
fn a_revoked_caller_turned_away_is_recorded_as_revoked_with_who_sent_it() {
    // The glue turns a revoked caller away before the exchange starts (the kill switch).
    let list = warden::core::revocation::RevocationList::parse(
        br#"{"version":3,"revocations":[{"id":9,"kind":"subject","value":"alice","reason":"laptop stolen"}]}"#,
    )
    .unwrap();
    let who = warden::core::revocation::Presented { subject: "alice", groups: &[], job: &[], token_id: None };
    let denial = list.find(&who, NOW as i64).expect("alice is revoked").denial();
    let hs = headers(&[]);
    let head = RequestHead { method: "POST", path: "/v1/messages", headers: &hs, token: verified(&["eng"]), now: NOW };
    let gw = gateway();
    let (exchange, reply) = Exchange::turned_away(&gw, &head, denial);
    assert_eq!((reply.status, reply.reason), (401, Reason::Revoked));
    let run = Run { gw, exchange, replies: vec![reply] };
    let (record, replies) = run.ended();
    assert_refused(&record, &replies, "revoked");
    assert_eq!(subject_and_role(&record), alice("developer"));
    assert!(record.decision.message.as_deref().unwrap_or("").contains("access revoked: laptop stolen"));
}

#[test]
fn a_request_refused_because_the_audit_queue_is_full_names_no_caller_so_it_is_only_summarised() {
    // A record without identity that refuses is counted in the outbox's summary, never queued:
    // it cannot fill the queue it waits on.
    let hs = headers(&[]);
    let head = RequestHead { method: "POST", path: "/v1/messages", headers: &hs, token: verified(&["eng"]), now: NOW };
    let gw = gateway();
    let (exchange, reply) = Exchange::turned_away(&gw, &head, Denial::new(Reason::AuditUnavailable, "full"));
    assert_eq!((reply.status, reply.reason), (503, Reason::AuditUnavailable));
    assert!(exchange.is_refused());
    let run = Run { gw, exchange, replies: vec![reply] };
    let (record, replies) = run.ended();
    assert_refused(&record, &replies, "audit_unavailable");
    assert!(record.identity.is_none());
}

#[test]
fn a_body_over_the_limit_mid_stream_is_refused_and_recorded_once() {
    let (mut run, _) = Run::start("POST", "/v1/messages", &[], verified(&["analysts"]));
    assert_eq!(run.exchange.on_body_progress(512), None);
    let reply = run.exchange.on_body_progress(2048).expect("refused as soon as it passes the limit");
    run.replies.push(reply);
    assert!(!run.exchange.wants_body(), "later body callbacks pass");
    assert_eq!(run.exchange.on_body_progress(4096), None, "no second decision");
    let (record, replies) = run.ended();
    assert_refused(&record, &replies, "body_too_large");
    assert_eq!(subject_and_role(&record), alice("analyst"));
}

#[test]
fn every_refusal_of_a_body_is_recorded_once_with_the_caller() {
    let tools = serde_json::to_vec(&json!({"model": "claude-haiku-4-5", "max_tokens": 100, "messages": [],
                                            "tools": [{"name": "Bash", "input_schema": {}}]}))
    .unwrap();
    let blocked = messages("claude-sonnet-4-6", &format!("aws_access_key_id = {AWS_KEY}"));
    let cases: Vec<(&[&str], Vec<u8>, &str, &str)> = vec![
        (&["analysts"], b"{not json".to_vec(), "invalid_json", "analyst"),
        (&["analysts"], messages("claude-opus-4-1", "hi"), "model_not_allowed", "analyst"),
        (&["analysts"], tools, "tool_not_allowed", "analyst"),
        (
            &["analysts"],
            br#"{"model":"claude-haiku-4-5","max_tokens":4096,"messages":[]}"#.to_vec(),
            "max_tokens_exceeded",
            "analyst",
        ),
        (&["eng"], blocked, "sensitive_data_blocked", "developer"),
    ];
    for (groups, body, reason, role) in cases {
        let (run, step) = Run::post(groups, &body);
        assert!(matches!(step, BodyStep::Reply(_)), "{reason}: {step:?}");
        let (record, replies) = run.ended();
        assert_refused(&record, &replies, reason);
        assert_eq!(subject_and_role(&record), alice(role), "{reason}");
        let line = String::from_utf8(record.seal("gw-t", 1).unwrap().line).unwrap();
        assert!(!line.contains(AWS_KEY), "{reason}: no secret in the record");
    }
}

#[test]
fn a_request_side_block_is_counted_in_the_record() {
    let (run, _) = Run::post(&["eng"], &messages("claude-sonnet-4-6", &format!("key {AWS_KEY}")));
    let (record, _) = run.ended();
    assert_eq!(record.dlp.blocked.values().sum::<u32>(), 1, "{:?}", record.dlp);
}

#[test]
fn a_host_failure_after_the_body_was_judged_refuses_and_is_recorded_once() {
    let (mut run, step) = Run::post(&["eng"], &messages("claude-sonnet-4-6", "hello"));
    assert!(matches!(step, BodyStep::Forward | BodyStep::Replace { .. }), "{step:?}");
    let reply = run.exchange.on_host_failure("rewriting the request body");
    run.replies.push(reply);
    assert!(run.exchange.is_refused());
    let (record, replies) = run.ended();
    assert_refused(&record, &replies, "internal_error");
    assert!(record.decision.message.unwrap().contains("rewriting the request body failed"));
}

// --- approvals --------------------------------------------------------------------------------

fn sign(claims: Value) -> Vec<u8> {
    let key = service_key();
    let b64 = |bytes: &[u8]| Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap();
    let header = b64(br#"{"alg":"EdDSA","typ":"JWT"}"#);
    let payload = b64(claims.to_string().as_bytes());
    let signature = key.sk.sign(format!("{header}.{payload}"), None);
    serde_json::to_vec(&json!({"verdict": format!("{header}.{payload}.{}", b64(signature.as_ref()))})).unwrap()
}

/// A developer's Opus request, held; and the hold request sent to the service.
fn held() -> (Run, Value) {
    let (run, step) = Run::post(&["eng"], &messages("claude-opus-4-1", "hello"));
    let BodyStep::Hold { callout, .. } = step else { panic!("held: {step:?}") };
    (run, serde_json::from_slice(&callout.body).unwrap())
}

fn verdict(hold: &Value, decision: &str) -> Vec<u8> {
    sign(json!({
        "fp": hold["fingerprint"], "sub": hold["caller"]["subject"], "iss": hold["caller"]["issuer"],
        "decision": decision, "review": "rev_0123456789abcdef", "reviewer": "bob", "comment": "no",
        "url": "http://approvals.example/reviews/rev_0123456789abcdef",
        "iat": NOW as u64, "exp": NOW as u64 + 60,
    }))
}

#[test]
fn every_approval_outcome_is_recorded_once_with_the_caller() {
    let (mut run, hold) = held();
    assert!(matches!(run.answer(Some((200, &verdict(&hold, "approved")))), ApprovalStep::Forward { .. }));
    run.respond(&[(":status", "200"), ("content-type", "application/json")], br#"{"content":[]}"#, 64);
    let (record, replies) = run.ended();
    assert!(record.decision.allowed && replies.is_empty(), "{:?}", record.decision);
    assert_eq!(record.approval.as_ref().unwrap().decision, "approved");
    assert_eq!(subject_and_role(&record), alice("developer"));

    let cases: Vec<(Box<dyn Fn(&Value) -> Option<(u16, Vec<u8>)>>, &str, &str)> = vec![
        (Box::new(|hold| Some((200, verdict(hold, "denied")))), "approval_denied", "denied"),
        (Box::new(|hold| Some((200, verdict(hold, "pending")))), "approval_pending", "pending"),
        (Box::new(|_| None), "approval_unavailable", "unavailable"),
        (Box::new(|_| Some((503, vec![]))), "approval_unavailable", "unavailable"),
        (Box::new(|_| Some((200, b"{\"verdict\": \"a.b.c\"}".to_vec()))), "approval_invalid", "invalid"),
    ];
    for (answer, reason, decision) in cases {
        let (mut run, hold) = held();
        let answer = answer(&hold);
        let step = run.answer(answer.as_ref().map(|(status, body)| (*status, body.as_slice())));
        assert!(matches!(step, ApprovalStep::Reply(_)), "{reason}: {step:?}");
        assert!(!run.exchange.is_held());
        let (record, replies) = run.ended();
        assert_refused(&record, &replies, reason);
        assert_eq!(record.approval.as_ref().unwrap().decision, decision, "{reason}");
        assert_eq!(subject_and_role(&record), alice("developer"), "{reason}");
    }
}

#[test]
fn an_approval_from_a_session_grant_names_the_grant_in_the_record() {
    let (mut run, hold) = held();
    let claims = json!({
        "fp": hold["fingerprint"], "sub": hold["caller"]["subject"], "iss": hold["caller"]["issuer"],
        "decision": "approved", "review": "rev_0123456789abcdef", "reviewer": "bob", "comment": "",
        "url": "http://approvals.example/reviews/rev_0123456789abcdef", "iat": NOW as u64, "exp": NOW as u64 + 60,
        "grant": {"id": "grt_00ff", "session_id": "sess-7", "expires_at": NOW as u64 + 1800, "reasons": ["opus_model"]},
    });
    assert!(matches!(run.answer(Some((200, &sign(claims)))), ApprovalStep::Forward { .. }));
    run.respond(&[(":status", "200"), ("content-type", "application/json")], br#"{"content":[]}"#, 64);
    let (record, _) = run.ended();
    let grant = record.approval.as_ref().unwrap().grant.as_ref().unwrap();
    assert_eq!((grant.id.as_str(), grant.session_id.as_str()), ("grt_00ff", "sess-7"));
    assert_eq!((grant.expires_at, grant.reasons.clone()), (NOW as u64 + 1800, vec!["opus_model".to_string()]));
}

#[test]
fn a_request_still_held_when_the_stream_ends_is_recorded_as_asked() {
    let (run, _) = held();
    let (record, replies) = run.end(false, true);
    assert!(replies.is_empty());
    assert_eq!(record.approval.as_ref().unwrap().decision, "asked");
    assert_eq!(record.outcome, Outcome::ClientAbort);
    assert!(!record.decision.allowed && record.decision.reason.is_none(), "nothing went upstream");
}

#[test]
fn a_request_whose_client_left_while_its_body_was_read_is_recorded_as_not_forwarded() {
    let (mut run, _) = Run::start("POST", "/v1/messages", &[], verified(&["eng"]));
    assert_eq!(run.exchange.on_body_progress(100), None);
    let (record, replies) = run.end(false, true);
    assert!(replies.is_empty());
    assert!(!record.decision.allowed && record.decision.reason.is_none(), "{:?}", record.decision);
    assert!(record.decision.message.unwrap().contains("while its body was read"));
    assert_eq!(record.outcome, Outcome::ClientAbort);
}

// --- responses --------------------------------------------------------------------------------

const STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":9}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

fn forwarded(groups: &[&str]) -> Run {
    let model = if groups == ["analysts"] { "claude-haiku-4-5" } else { "claude-sonnet-4-6" };
    let (run, step) = Run::post(groups, &messages(model, "hello"));
    assert!(matches!(step, BodyStep::Forward | BodyStep::Replace { .. }), "{step:?}");
    run
}

#[test]
fn every_response_outcome_is_recorded_once() {
    let sse = [(":status", "200"), ("content-type", "text/event-stream")];
    let json_headers = [(":status", "200"), ("content-type", "application/json")];
    // (groups, headers, body, response complete, client gone, expected outcome)
    let cases: Vec<(&[&str], &[(&str, &str)], &str, bool, bool, Outcome)> = vec![
        (&["eng"], &sse, STREAM, true, false, Outcome::Completed),
        (&["analysts"], &sse, STREAM, true, false, Outcome::Completed),
        (&["eng"], &json_headers, r#"{"content":[{"type":"text","text":"Hi"}]}"#, true, false, Outcome::Completed),
        (
            &["eng"],
            &[(":status", "529"), ("content-type", "application/json")],
            r#"{"type":"error"}"#,
            true,
            false,
            Outcome::UpstreamError,
        ),
        (&["eng"], &sse, &STREAM[..STREAM.len() / 2], false, true, Outcome::ClientAbort),
        (&["analysts"], &sse, &STREAM[..STREAM.len() / 2], false, false, Outcome::UpstreamReset),
    ];
    for (groups, headers, body, complete, gone, outcome) in cases {
        let mut run = forwarded(groups);
        run.respond(headers, body.as_bytes(), 17);
        let (record, replies) = run.end(complete, gone);
        assert!(replies.is_empty() && record.decision.allowed, "{outcome:?}: {:?}", record.decision);
        assert_eq!(record.outcome, outcome);
        assert!(record.response.is_some(), "{outcome:?}: the answer is recorded");
    }
}

#[test]
fn a_refused_response_is_recorded_once_and_nothing_after_it_changes_the_record() {
    // An answer that cannot be inspected, and one that carries a value a block detector finds.
    let gzip = [(":status", "200"), ("content-type", "application/json"), ("content-encoding", "gzip")];
    let mut run = forwarded(&["eng"]);
    run.respond(&gzip, b"\x1f\x8b", 8);
    assert_eq!(run.exchange.response_mode(), ResponseMode::Done);
    // Warden's own reply passes through the response callbacks: it changes nothing.
    let own =
        [(":status".to_string(), "403".to_string()), ("content-type".to_string(), "application/json".to_string())];
    assert_eq!(run.exchange.on_response_headers(&run.gw, &own), ResponseStep::Pass);
    run.exchange.on_delivered(b"{\"type\":\"error\"}", 5);
    let (record, replies) = run.ended();
    assert_refused(&record, &replies, "response_uninspectable");
    assert!(record.response.is_none(), "the refusal is recorded, not Warden's reply as an answer");
}

#[test]
fn a_host_failure_while_masking_a_response_refuses_and_is_recorded_once() {
    let mut run = forwarded(&["eng"]);
    let headers =
        [(":status".to_string(), "200".to_string()), ("content-type".to_string(), "text/event-stream".to_string())];
    assert_eq!(run.exchange.on_response_headers(&run.gw, &headers), ResponseStep::Stream);
    let out = run.exchange.on_response_chunk(&run.gw, &STREAM.as_bytes()[..40]);
    run.exchange.on_delivered(&out, 2);
    let reply = run.exchange.on_host_failure("rewriting the response stream");
    run.replies.push(reply);
    assert_eq!(run.exchange.response_mode(), ResponseMode::Done, "later chunks pass to the reset");
    let (record, replies) = run.end(false, false);
    assert_refused(&record, &replies, "internal_error");
}

#[test]
fn the_model_list_shows_only_the_roles_models_and_is_recorded() {
    let list = json!({"data": [{"type": "model", "id": "claude-opus-4-1"}, {"type": "model", "id": "claude-haiku-4-5"}],
                      "first_id": "claude-opus-4-1", "last_id": "claude-haiku-4-5", "has_more": false});
    let (mut run, step) = Run::start("GET", "/v1/models?limit=20", &[], verified(&["analysts"]));
    assert!(matches!(step, HeadersStep::Forward(_)), "{step:?}");
    let json_headers = [(":status", "200"), ("content-type", "application/json")];
    let delivered = run.respond(&json_headers, list.to_string().as_bytes(), 64);
    let delivered: Value = serde_json::from_slice(&delivered).unwrap();
    assert_eq!(delivered["data"], json!([{"type": "model", "id": "claude-haiku-4-5"}]));
    assert_eq!(
        (delivered["first_id"].as_str(), delivered["last_id"].as_str()),
        (Some("claude-haiku-4-5"), Some("claude-haiku-4-5"))
    );
    let (record, replies) = run.ended();
    assert!(replies.is_empty() && record.decision.allowed);
    assert_eq!((record.endpoint.as_str(), subject_and_role(&record)), ("list_models", alice("analyst")));

    // A developer may use every model: the same list is delivered as it came.
    let (mut run, _) = Run::start("GET", "/v1/models", &[], verified(&["eng"]));
    let delivered = run.respond(&json_headers, list.to_string().as_bytes(), 64);
    assert_eq!(serde_json::from_slice::<Value>(&delivered).unwrap(), list);

    // An error answer is passed as it is; a list that cannot be read is refused, not passed.
    let (mut run, _) = Run::start("GET", "/v1/models", &[], verified(&["analysts"]));
    let error = br#"{"type":"error","error":{"type":"overloaded_error"}}"#;
    assert_eq!(run.respond(&[(":status", "529"), ("content-type", "application/json")], error, 64), error.to_vec());
    let (mut run, _) = Run::start("GET", "/v1/models", &[], verified(&["analysts"]));
    run.respond(&[(":status", "200"), ("content-type", "text/event-stream")], b"data: {}\n\n", 64);
    let (record, replies) = run.ended();
    assert_refused(&record, &replies, "response_uninspectable");
}

#[test]
fn a_body_out_of_turn_is_never_forwarded() {
    let (mut run, _) = Run::start("POST", "/v1/messages", &[("anthropic-beta", "x")], verified(&["analysts"]));
    let step = run.exchange.on_body_complete(&run.gw, &messages("claude-haiku-4-5", "hi"));
    assert!(matches!(step, BodyStep::Reply(_)), "{step:?}");
    let (record, _) = run.ended();
    assert!(!record.decision.allowed);
}

/// A text answer of `deltas` deltas of 30 bytes (10 estimated output tokens) each.
fn long_stream(deltas: usize) -> String {
    let mut stream = STREAM.split("event: content_block_delta").next().unwrap().to_string();
    for i in 0..deltas {
        let text = format!("{:<30}", format!("part {i}"));
        stream += &format!(
            "event: content_block_delta\ndata: {}\n\n",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})
        );
    }
    stream + &STREAM[STREAM.find("event: content_block_stop").unwrap()..]
}

#[test]
fn an_answer_cut_at_its_budget_is_recorded_as_budget_cut_with_the_usage_up_to_the_cut() {
    let sse = [(":status", "200"), ("content-type", "text/event-stream")];
    // The developer's answers are masked (DLP on), the analyst's are not: the cut works on both.
    for groups in [&["eng"][..], &["analysts"][..]] {
        let mut run = forwarded(groups);
        run.exchange.set_output_allowance(25, "team-daily");
        let delivered = String::from_utf8(run.respond(&sse, long_stream(10).as_bytes(), 23)).unwrap();
        // Masking may hold back a delta's tail, so the cut falls at 26 to 35 tokens: on the
        // 3rd or 4th delta, never later.
        assert!(delivered.contains(r#"budget \"team-daily\" exhausted"#), "{groups:?}: {delivered}");
        assert!(!delivered.contains("part 4") && !delivered.contains("message_stop"), "{delivered}");
        let cut = run.exchange.stream_cut().unwrap().clone();
        assert_eq!(cut.budget.as_deref(), Some("team-daily"));
        assert!((26..=35).contains(&cut.output_tokens), "{cut:?}");
        // The stream is reset after the cut: it never completes.
        let (record, replies) = run.end(false, false);
        assert!(replies.is_empty() && record.decision.allowed);
        assert_eq!(record.outcome, Outcome::BudgetCut, "{groups:?}");
        assert_eq!((record.usage.input_tokens, record.usage.output_tokens), (Some(9), Some(cut.output_tokens)));
        let answer = &record.response.unwrap().transcript.content[0]["text"];
        assert!(answer.as_str().unwrap().starts_with("part 0"), "{answer}");
    }
}

#[test]
fn an_allowance_set_after_the_response_started_changes_nothing() {
    let sse = [(":status", "200"), ("content-type", "text/event-stream")];
    let mut run = forwarded(&["analysts"]);
    let headers: Vec<(String, String)> = sse.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(run.exchange.on_response_headers(&run.gw, &headers), ResponseStep::Observe);
    run.exchange.set_output_allowance(1, "late");
    let stream = long_stream(5);
    assert_eq!(run.exchange.on_response_chunk(&run.gw, stream.as_bytes()), stream.as_bytes());
    assert!(run.exchange.stream_cut().is_none());
}

#[test]
fn claude_code_gets_the_message_ending_and_a_json_answer_is_never_cut() {
    let sse = [(":status", "200"), ("content-type", "text/event-stream")];
    let (mut run, _) = Run::start(
        "POST",
        "/v1/messages",
        &[("user-agent", "claude-cli/2.0.76 (external, cli)")],
        verified(&["analysts"]),
    );
    assert!(matches!(run.body(&messages("claude-haiku-4-5", "hello")), BodyStep::Forward));
    run.exchange.set_output_allowance(25, "team-daily");
    let delivered = String::from_utf8(run.respond(&sse, long_stream(10).as_bytes(), 23)).unwrap();
    assert!(delivered.contains("\"stop_reason\":\"max_tokens\""), "{delivered}");
    assert!(delivered.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), "{delivered}");
    assert_eq!(run.ended().0.outcome, Outcome::BudgetCut);

    let json_headers = [(":status", "200"), ("content-type", "application/json")];
    let body = r#"{"content":[{"type":"text","text":"a long answer"}],"usage":{"output_tokens":900}}"#;
    let mut run = forwarded(&["analysts"]);
    run.exchange.set_output_allowance(1, "team-daily");
    assert_eq!(run.respond(&json_headers, body.as_bytes(), 7), body.as_bytes());
    assert!(run.exchange.stream_cut().is_none());
    assert_eq!(run.ended().0.outcome, Outcome::Completed);
}

//! A whole exchange through the core, driven the way the glue can drive it: request headers
//! (any method, path, headers and token verdict), the body in arbitrary chunks, the approval
//! service's answer (or its failure), response headers, response chunks (event stream or JSON),
//! host-call failures at any point, and calls out of turn, in any order. Invariants: nothing
//! panics; the exchange makes exactly one record (the policy audits; none only for a request
//! turned away because the audit queue is full); a request Warden answered
//! is recorded as refused, one it never answered as allowed; the record seals.
#![no_main]
// The scenario tests' exchange helpers (the same clock, tokens and record-once check).
#[allow(dead_code)]
#[path = "../../tests/common/exchange.rs"]
mod harness;

use harness::{record_once, verified_as, NOW};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use warden::core::audit::trail::Ending;
use warden::core::errors::{Denial, Reason};
use warden::core::exchange::{
    ApprovalStep, BodyStep, Exchange, Gateway, HeadersStep, RequestHead, ResponseBodyStep, ResponseMode, ResponseStep,
};
use warden::core::identity::TokenStatus;

const POLICY: &str = r#"
version: 1
identity:
  providers:
    - { name: demo, issuer: warden-demo, audiences: [warden], jwks: { file: jwks.json } }
  role_header: x-warden-role
  max_token_lifetime: 1h
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
        - { detectors: ["aws-*"], action: block }
        - { detectors: ["*"], action: mask }
roles:
  developer:
    credential: anthropic
    endpoints: [messages, count_tokens, models]
    models: ["claude-*"]
    tools: { client: ["*"], server: ["*"] }
    mcp_servers: ["https://*.corp.example/**"]
    betas: ["*"]
    dlp: strict
    approval:
      approvers: [leads]
      triggers:
        - { reason: opus_model, models: ["claude-opus-*"] }
        - { reason: shell_tool, tools: [Bash] }
        - { reason: prod, prompt: "(?i)prod" }
  analyst:
    credential: anthropic
    endpoints: [messages, models]
    models: ["claude-haiku-*"]
    max_tokens: { limit: 1024, action: deny }
    tools: { client: [] }
    betas: []
    dlp: "off"
    max_body_bytes: 4KiB
"#;

thread_local! {
    static GATEWAY: Option<Gateway> = Gateway::new(POLICY, |name| match name {
        "ANTHROPIC_API_KEY" => Some("sk-ant-fuzz".to_string()),
        "WARDEN_APPROVALS_TOKEN" => Some("approvals-token".to_string()),
        // A public key whose private half signed nothing: no verdict verifies.
        "WARDEN_APPROVALS_VERDICT_KEY" => Some("PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=".to_string()),
        _ => None,
    })
    .ok();
}

const METHODS: [&str; 4] = ["POST", "GET", "PUT", ""];
const PATHS: [&str; 7] = [
    "/v1/messages",
    "/v1/messages?beta=true",
    "/v1/messages/count_tokens",
    "/v1/models",
    "/v1/models/claude-opus-4-1",
    "/v1/models/claude-haiku-4-5",
    "/v1/messages/batches",
];
const BODIES: [&str; 6] = [
    r#"{"model":"claude-sonnet-4-6","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    r#"{"model":"claude-opus-4-1","max_tokens":100,"messages":[{"role":"user","content":"deploy prod"}]}"#,
    r#"{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":"key AKIA2E0A8F3B244C9986"}]}"#,
    r#"{"model":"claude-haiku-4-5","max_tokens":100,"messages":[],"tools":[{"name":"Bash","input_schema":{}}]}"#,
    r#"{"data":[{"id":"claude-opus-4-1"},{"id":"claude-haiku-4-5"}],"first_id":"claude-opus-4-1","last_id":"claude-haiku-4-5","has_more":true}"#,
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"AKIA2E0A8F3B244C9986\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

/// A string: one of `known`, or arbitrary.
fn pick<'a>(u: &mut Unstructured<'a>, known: &[&'a str]) -> Result<&'a str> {
    let i = u.choose_index(known.len() + 1)?;
    match known.get(i) {
        Some(s) => Ok(s),
        None => u.arbitrary(),
    }
}

/// Bytes: one of the known bodies, or arbitrary.
fn bytes(u: &mut Unstructured) -> Result<Vec<u8>> {
    Ok(pick(u, &BODIES)?.as_bytes().to_vec())
}

fn token(u: &mut Unstructured) -> Result<TokenStatus> {
    Ok(match u.choose_index(3)? {
        0 => TokenStatus::Missing,
        1 => TokenStatus::Failed(u.arbitrary()?),
        _ => {
            let groups = [&[][..], &["eng"], &["analysts"], &["eng", "analysts"], &["leads"]];
            let groups = *u.choose(&groups)?;
            let lifetime: u16 = u.arbitrary()?;
            verified_as(pick(u, &["alice", ""])?, pick(u, &["warden-demo"])?, groups, f64::from(lifetime))
        }
    })
}

/// What the glue did: whether it sent a reply, and whether it made a call out of turn.
struct Glue {
    replied: bool,
    strayed: bool,
}

impl Glue {
    fn replied(&mut self) {
        assert!(self.strayed || !self.replied, "two replies to one request");
        self.replied = true;
    }
}

fn run(u: &mut Unstructured, gw: &Gateway) -> Result<()> {
    let mut headers: Vec<(String, String)> = vec![("x-request-id".into(), u.arbitrary()?)];
    for (name, values) in [
        ("content-type", &["application/json", "application/json; charset=utf-8", "text/plain"][..]),
        ("content-encoding", &["gzip", "identity"]),
        ("content-length", &["10", "5000", "99999999"]),
        ("anthropic-beta", &["files-api-2025-04-14"]),
        ("x-warden-role", &["analyst", "developer", "admin"]),
    ] {
        if u.arbitrary()? {
            headers.push((name.to_string(), pick(u, values)?.to_string()));
        }
    }
    let head = RequestHead {
        method: pick(u, &METHODS)?,
        path: pick(u, &PATHS)?,
        headers: &headers,
        token: token(u)?,
        now: NOW,
    };
    let mut glue = Glue { replied: false, strayed: false };
    let mut audit_full = false;
    let (mut exchange, step) = if u.ratio(1, 16)? {
        audit_full = u.arbitrary()?;
        let reason = if audit_full { Reason::AuditUnavailable } else { Reason::InternalError };
        let (exchange, _) = Exchange::turned_away(gw, &head, Denial::new(reason, "turned away"));
        glue.replied();
        (exchange, None)
    } else {
        let (exchange, step) = Exchange::start(gw, &head);
        (exchange, Some(step))
    };
    match step {
        Some(HeadersStep::Reply(_)) => glue.replied(),
        Some(HeadersStep::Forward(_) | HeadersStep::InspectBody(_)) | None => {}
    }
    let body = bytes(u)?;
    let mut buffered = 0;
    let mut response_complete = false;
    // Steps in any order the glue could produce (it asks before body and approval calls), and
    // now and then a call out of turn, which must change nothing the record says was sent.
    for _ in 0..u.choose_index(12)? + 1 {
        let out_of_turn = u.ratio(1, 8)?;
        glue.strayed |= out_of_turn;
        match u.choose_index(9)? {
            0 if exchange.wants_body() || out_of_turn => {
                buffered += usize::from(u.arbitrary::<u16>()?);
                if exchange.on_body_progress(buffered).is_some() {
                    glue.replied();
                }
            }
            1 if exchange.wants_body() || out_of_turn => {
                let ran = exchange.wants_body();
                match exchange.on_body_complete(gw, &body) {
                    BodyStep::Reply(_) => glue.replied(),
                    BodyStep::Forward | BodyStep::Replace { .. } | BodyStep::Hold { .. } => {
                        assert!(ran, "a body out of turn was let through")
                    }
                }
            }
            2 if exchange.is_held() || out_of_turn => {
                let ran = exchange.is_held();
                let answer: Option<(u16, Vec<u8>)> = u.arbitrary()?;
                match exchange.on_approval_answer(gw, answer.as_ref().map(|(s, b)| (*s, b.as_slice())), NOW) {
                    ApprovalStep::Reply(_) => glue.replied(),
                    ApprovalStep::Forward { .. } => panic!("no verdict can verify under this key (held: {ran})"),
                }
            }
            3 => {
                let mut response = vec![(":status".to_string(), pick(u, &["200", "529", "400", "x"])?.to_string())];
                let content_type = pick(u, &["text/event-stream", "application/json"])?;
                response.push(("content-type".to_string(), content_type.to_string()));
                if u.ratio(1, 8)? {
                    response.push(("content-encoding".to_string(), "br".to_string()));
                }
                if let ResponseStep::Reply(_) = exchange.on_response_headers(gw, &response) {
                    glue.replied();
                }
            }
            4 | 5 => {
                let chunk = bytes(u)?;
                let end = u.arbitrary()?;
                response_complete |= end;
                match exchange.response_mode() {
                    ResponseMode::Stream => {
                        let mut out = exchange.on_response_chunk(gw, &chunk);
                        if end {
                            out.extend(exchange.on_response_end(gw));
                        }
                        exchange.on_delivered(&out, 2);
                    }
                    ResponseMode::Buffer if end => match exchange.on_response_body(gw, &chunk) {
                        ResponseBodyStep::Deliver => exchange.on_delivered(&chunk, 2),
                        ResponseBodyStep::Replace(bytes) => exchange.on_delivered(&bytes, 2),
                        ResponseBodyStep::Reply(_) => glue.replied(),
                        ResponseBodyStep::Hold => {}
                    },
                    ResponseMode::Observe => exchange.on_delivered(&chunk, 2),
                    ResponseMode::Buffer | ResponseMode::Pass | ResponseMode::Done => {
                        if out_of_turn {
                            let _ = exchange.on_response_chunk(gw, &chunk);
                            if let ResponseBodyStep::Reply(_) = exchange.on_response_body(gw, &chunk) {
                                glue.replied();
                            }
                            let _ = exchange.on_response_end(gw);
                        }
                    }
                }
            }
            6 if u.ratio(1, 4)? => {
                if !exchange.is_refused() {
                    glue.replied();
                }
                let _ = exchange.on_host_failure("a host call");
            }
            _ => {}
        }
    }
    let ending = Ending { at_ms: 9, response_complete, client_gone: u.arbitrary()? };
    let record = record_once(gw, &mut exchange, ending);
    // A refusal for a full audit queue names no caller: the outbox only counts it in a summary.
    assert!(!audit_full || record.identity.is_none(), "a full queue's refusal would be queued");
    // Allowed exactly when nothing refused it and it got past its body and any hold.
    let forwarded = !exchange.is_refused() && !exchange.wants_body() && !exchange.is_held();
    assert_eq!(record.decision.allowed, forwarded, "{:?}", record.decision);
    assert_eq!(exchange.is_refused(), glue.replied, "a refusal is a reply, a reply a refusal");
    assert!(record.seal("gw-fuzz", 1).is_ok(), "the record seals");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    GATEWAY.with(|gw| {
        let Some(gw) = gw else { panic!("the fuzz policy compiles") };
        let _ = run(&mut Unstructured::new(data), gw);
    });
});

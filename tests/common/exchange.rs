//! Driving one exchange through the core the way the glue drives it, for the scenario tests
//! (`tests/lifecycle.rs`, `tests/budget_scenarios.rs`, `tests/gateway_scenarios.rs`) and the fuzz
//! `exchange` target (which includes this file by path): a token `jwt_authn` verified, the request's headers and body,
//! the upstream's answer delivered in chunks, and the record made exactly once.
//!
//! Only `warden` and `std` are used here, so the fuzz crate can compile the file as it is. The
//! helpers assert what every caller relies on (a second record is never made; a reply and an
//! answer never both reach the client) and panic otherwise: they are for tests and fuzzing only.

use warden::core::audit::record::Record;
use warden::core::audit::trail::Ending;
use warden::core::errors::LocalReply;
use warden::core::exchange::{BodyStep, Exchange, Gateway, HeadersStep, RequestHead, ResponseBodyStep, ResponseStep};
use warden::core::identity::{TokenStatus, VerifiedClaims};

/// The clock of every exchange: 2026-11-30 10:00 UTC, in seconds.
pub const NOW: f64 = 1_796_032_800.0;
/// [`NOW`] in milliseconds.
pub const NOW_MS: u64 = 1_796_032_800_000;

/// The start of a scenario policy: version and the demo issuer ([`verified`]'s tokens) as the
/// one identity provider; a scenario appends its credentials, bindings, sections and roles.
pub const DEMO_IDENTITY: &str = "version: 1
identity:
  providers:
    - { name: demo, issuer: warden-demo, audiences: [warden], jwks: { file: jwks.json } }
";

/// A token verified for `subject` of `issuer` in `groups`, issued 5 s before [`NOW`] and
/// expiring `lifetime` seconds after it was issued.
pub fn verified_as(subject: &str, issuer: &str, groups: &[&str], lifetime: f64) -> TokenStatus {
    TokenStatus::Verified(VerifiedClaims {
        subject: Some(subject.to_string()),
        issuer: Some(issuer.to_string()),
        issued_at: Some(NOW - 5.0),
        expires_at: Some(NOW - 5.0 + lifetime),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        job: vec![],
        claims: vec![],
        token_id: None,
        audiences: vec![],
    })
}

/// A token verified for `alice` of the demo issuer (`warden-demo`) in `groups`, valid for ten
/// more minutes.
pub fn verified(groups: &[&str]) -> TokenStatus {
    verified_as("alice", "warden-demo", groups, 605.0)
}

/// Request headers: `content-type: application/json` and `extra`.
pub fn json_headers(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = vec![("content-type".to_string(), "application/json".to_string())];
    all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    all
}

/// Starts an exchange at [`NOW`].
pub fn start(
    gw: &Gateway,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    token: TokenStatus,
) -> (Exchange, HeadersStep) {
    Exchange::start(gw, &RequestHead { method, path, headers, token, now: NOW })
}

/// A `POST path` with `headers` that wants its body, then `body`, whole.
pub fn post(
    gw: &Gateway,
    path: &str,
    headers: &[(String, String)],
    token: TokenStatus,
    body: &[u8],
) -> (Exchange, BodyStep) {
    let (mut exchange, step) = start(gw, "POST", path, headers, token);
    assert!(matches!(step, HeadersStep::InspectBody(_)), "the body is wanted: {step:?}");
    assert!(exchange.wants_body());
    let step = exchange.on_body_complete(gw, body);
    (exchange, step)
}

/// What reached the client of an answer: its bytes, or the reply Warden sent instead.
#[derive(Debug, Default)]
pub struct Delivered {
    /// The bytes delivered, as the client received them.
    pub bytes: Vec<u8>,
    /// Warden's reply, when it refused the answer.
    pub reply: Option<LocalReply>,
}

/// The upstream answers with `headers` and `body`, which arrives in chunks of `chunk` bytes (a
/// buffered answer whole); the exchange sees every byte delivered to the client.
pub fn respond(
    gw: &Gateway,
    exchange: &mut Exchange,
    headers: &[(&str, &str)],
    body: &[u8],
    chunk: usize,
) -> Delivered {
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut bytes = Vec::new();
    // The delivery clock (ms): the answer at 2, its end at 3.
    let mut deliver = |exchange: &mut Exchange, out: &[u8], at_ms: u64| {
        exchange.on_delivered(out, at_ms);
        bytes.extend_from_slice(out);
    };
    let reply = match exchange.on_response_headers(gw, &headers) {
        ResponseStep::Reply(reply) => Some(reply),
        ResponseStep::Pass | ResponseStep::Observe => {
            deliver(exchange, body, 2);
            None
        }
        ResponseStep::Stream => {
            for part in body.chunks(chunk.max(1)) {
                let out = exchange.on_response_chunk(gw, part);
                deliver(exchange, &out, 2);
            }
            let out = exchange.on_response_end(gw);
            deliver(exchange, &out, 3);
            while exchange.awaits_tool_approval() {
                let step = exchange.on_tool_approval_answer(gw, None, 0.0);
                deliver(exchange, &step.bytes, 3);
            }
            None
        }
        ResponseStep::Buffer => match exchange.on_response_body(gw, body) {
            ResponseBodyStep::Deliver => {
                deliver(exchange, body, 2);
                None
            }
            ResponseBodyStep::Replace(replaced) => {
                deliver(exchange, &replaced, 2);
                None
            }
            ResponseBodyStep::Reply(reply) => Some(reply),
            ResponseBodyStep::Hold => {
                // A tool call waits for a human: no approval service answers here (refused).
                while exchange.awaits_tool_approval() {
                    let step = exchange.on_tool_approval_answer(gw, None, 0.0);
                    deliver(exchange, &step.bytes, 2);
                }
                None
            }
        },
    };
    Delivered { bytes, reply }
}

/// The record of the exchange (Envoy's log callback), made once: asking again makes none.
pub fn record_once(gw: &Gateway, exchange: &mut Exchange, ending: Ending) -> Record {
    let record = exchange.finish_record(gw, ending).expect("every exchange leaves a record");
    assert!(exchange.finish_record(gw, ending).is_none(), "and only one");
    record
}

//! One request through the gateway: the state machine the glue drives.
//!
//! Push style: the glue copies plain values out of Envoy and calls, in order,
//! [`Exchange::start`] (request headers), then — only when it returned [`HeadersStep::InspectBody`]
//! — [`Exchange::on_body_progress`] as body bytes arrive and [`Exchange::on_body_complete`] with
//! the whole body. Each call returns the step to perform. The core never calls the host.
//!
//! Order of checks: identity (401) → endpoint (404/403) → role's endpoint list → headers
//! (`anthropic-beta`, content type and encoding, declared length) → body (size as it streams in,
//! then JSON policy). Headers are edited as soon as identity and role are known: every client
//! credential and identity header is removed, `accept-encoding` is dropped so the upstream answers
//! in plain bytes the filter can inspect, and the role's key becomes the only `x-api-key`.
//! Requests with a body stay paused until the body is judged, so nothing reaches the upstream
//! before the decision. An accepted Messages body then has its user text, tool results and
//! documents masked per the role's DLP profile ([`crate::core::dlp::request`]).
//!
//! Responses: [`Exchange::on_response_headers`] picks how the body is masked — event streams
//! chunk by chunk ([`Exchange::on_response_chunk`], [`Exchange::on_response_end`]), anything else
//! whole ([`Exchange::on_response_body`]); compressed responses are refused, since they cannot be
//! inspected. [`Exchange::tally`] counts what was found in both directions.

use crate::core::dlp::mask::{MaskKey, Tally};
use crate::core::dlp::memo::CleanMemo;
use crate::core::dlp::request::mask_messages;
use crate::core::dlp::response::{redact_body, StreamRedactor};
use crate::core::dlp::text::Redaction;
use crate::core::endpoint::{classify, Endpoint};
use crate::core::errors::{Denial, LocalReply, Reason};
use crate::core::identity::{authenticate, Caller, TokenStatus};
use crate::core::messages::{check_betas, check_body_with, BodyKind};
use crate::core::policy::{Policy, PolicyErrors, RoleKeys};
use crate::core::secret::Secret;

/// A compiled policy with its resolved keys: what one filter configuration enforces.
#[derive(Debug)]
pub struct Gateway {
    /// The compiled policy.
    pub policy: Policy,
    keys: RoleKeys,
    /// Request texts already scanned and found clean (per VM).
    memo: CleanMemo,
}

impl Gateway {
    /// Compiles `policy_text` and reads every credential through `lookup`.
    pub fn new(policy_text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, PolicyErrors> {
        let policy = Policy::parse(policy_text)?;
        let keys = policy.resolve_credentials(lookup)?;
        let memo = CleanMemo::new(keys.upstream.first().map(|k| k.expose().as_bytes()).unwrap_or_default());
        Ok(Self { policy, keys, memo })
    }

    fn key(&self, role: usize) -> Option<&Secret> {
        self.keys.upstream.get(role)
    }

    /// What the role's DLP profile looks for in one direction, with the role's mask key.
    fn redaction(&self, role: usize, response: bool) -> Option<Redaction<'_>> {
        let profile = self.policy.dlp.profiles.get(self.policy.roles.get(role)?.dlp_profile)?;
        let actions = if response { &profile.response } else { &profile.request };
        let key: &MaskKey = self.keys.mask.get(role)?;
        Some(Redaction { engine: &self.policy.dlp.engine, actions, key })
    }
}

/// The request as the glue copied it when headers arrived.
#[derive(Debug, Clone)]
pub struct RequestHead<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path` including the query.
    pub path: &'a str,
    /// All request headers, names lower-case, in arrival order (repeats kept).
    pub headers: &'a [(String, String)],
    /// What `jwt_authn` concluded.
    pub token: TokenStatus,
    /// Seconds since the epoch.
    pub now: f64,
}

impl RequestHead<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn header_values<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Request header changes to make before forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Header names to remove (every value).
    pub remove: Vec<String>,
    /// The role's upstream key, to set as the only `x-api-key` (its `Debug` output is redacted).
    pub api_key: Secret,
}

/// What to do after the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadersStep {
    /// Refuse now with this reply.
    Reply(LocalReply),
    /// Apply the edits and forward; there is no body to inspect.
    Forward(HeaderEdits),
    /// Apply the edits, keep the request paused and hand over the body.
    InspectBody(HeaderEdits),
}

/// What to do once the body is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStep {
    /// Forward the body as it is.
    Forward,
    /// Replace the body with these bytes (and fix `content-length` if the request had one).
    Replace {
        /// The new body.
        body: Vec<u8>,
        /// Whether a cap clamped a value (otherwise only masks changed).
        clamped: bool,
    },
    /// Refuse with this reply.
    Reply(LocalReply),
}

/// How the response body is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseStep {
    /// Nothing to mask: let the body through untouched.
    Pass,
    /// An event stream: remove `content-length` and pass each chunk through
    /// [`Exchange::on_response_chunk`].
    Stream,
    /// Anything else: remove `content-length`, hold the headers, and hand the complete body to
    /// [`Exchange::on_response_body`].
    Buffer,
    /// The body cannot be inspected: answer this instead.
    Reply(LocalReply),
}

/// The state of one request after its headers were accepted.
#[derive(Debug)]
pub struct Exchange {
    /// The id put on every reply (`request-id`) and log line.
    pub request_id: String,
    /// The authenticated caller.
    pub caller: Caller,
    /// The endpoint called.
    pub endpoint: Endpoint,
    max_body_bytes: u64,
    /// What DLP found in the request and the response so far.
    tally: Tally,
    /// The response stream's redactor, once an event stream started.
    stream: Option<StreamRedactor>,
}

/// Headers a client may use to claim a credential or an identity; never forwarded (nor are
/// `x-jwt-*`, `x-warden-*` and the role header).
const CLIENT_IDENTITY_HEADERS: [&str; 4] = ["authorization", "x-api-key", "proxy-authorization", "cookie"];

impl Exchange {
    /// Judges the request headers. On success the exchange is returned for the body phase.
    pub fn start(gateway: &Gateway, head: &RequestHead) -> (Option<Exchange>, HeadersStep) {
        let request_id = request_id_for(head.header("x-request-id"));
        match Self::judge_headers(gateway, head, request_id.clone()) {
            Ok((exchange, step)) => (Some(exchange), step),
            Err(denial) => {
                log::info!("{request_id} denied {}: {}", denial.reason.code(), denial.detail);
                (None, HeadersStep::Reply(denial.to_reply(&request_id)))
            }
        }
    }

    fn judge_headers(
        gateway: &Gateway,
        head: &RequestHead,
        request_id: String,
    ) -> Result<(Exchange, HeadersStep), Denial> {
        let policy = &gateway.policy;
        let requested_role = head.header(&policy.identity.role_header);
        let caller = authenticate(policy, head.token.clone(), requested_role, head.now)
            .map_err(|d| with_credential_hint(d, head))?;
        let endpoint = classify(head.method, head.path)?;
        let role = policy
            .roles
            .get(caller.role)
            .ok_or_else(|| Denial::new(Reason::InternalError, "role table out of sync"))?;
        if !role.endpoints.contains(&endpoint.policy_name()) {
            return Err(Denial::new(
                Reason::EndpointNotAllowed,
                format!("{} {} is not allowed for role {}", head.method, head.path, role.name),
            ));
        }
        if let Endpoint::GetModel(id) = &endpoint {
            if !role.models.matches(id) {
                return Err(Denial::new(
                    Reason::ModelNotAllowed,
                    format!("model {id:?} is not allowed for role {}", role.name),
                ));
            }
        }
        check_betas(role, head.header_values("anthropic-beta"))?;
        let edits = Self::edits(gateway, head, caller.role)?;
        let exchange = Exchange {
            request_id,
            caller,
            endpoint,
            max_body_bytes: role.max_body_bytes,
            tally: Tally::default(),
            stream: None,
        };
        if !exchange.endpoint.has_body() {
            exchange.log_allowed(policy, None);
            return Ok((exchange, HeadersStep::Forward(edits)));
        }
        check_body_headers(head, exchange.max_body_bytes)?;
        Ok((exchange, HeadersStep::InspectBody(edits)))
    }

    /// Removes every client credential and identity header the request carries (only those: each
    /// removal is a host call) and `accept-encoding`, and sets the role's key.
    fn edits(gateway: &Gateway, head: &RequestHead, role: usize) -> Result<HeaderEdits, Denial> {
        let key = gateway
            .key(role)
            .ok_or_else(|| Denial::new(Reason::InternalError, "no upstream credential for the role"))?;
        let mut remove: Vec<String> = Vec::new();
        for (name, _) in head.headers {
            let strip = CLIENT_IDENTITY_HEADERS.contains(&name.as_str())
                || name == "accept-encoding"
                || name.starts_with("x-jwt-")
                || name.starts_with("x-warden-")
                || *name == gateway.policy.identity.role_header;
            if strip && !remove.contains(name) {
                remove.push(name.clone());
            }
        }
        Ok(HeaderEdits { remove, api_key: key.clone() })
    }

    /// Called as body bytes accumulate; refuses as soon as the body passes the role's limit,
    /// without waiting for the rest.
    pub fn on_body_progress(&self, buffered_bytes: usize) -> Option<LocalReply> {
        if buffered_bytes as u64 > self.max_body_bytes {
            Some(self.refuse(too_large(self.max_body_bytes)))
        } else {
            None
        }
    }

    /// Judges the complete body, then masks what the caller sends per the role's DLP profile.
    pub fn on_body_complete(&mut self, gateway: &Gateway, body: &[u8]) -> BodyStep {
        if let Some(reply) = self.on_body_progress(body.len()) {
            return BodyStep::Reply(reply);
        }
        let kind = match self.endpoint {
            Endpoint::CountTokens => BodyKind::CountTokens,
            _ => BodyKind::Messages,
        };
        let Some(role) = gateway.policy.roles.get(self.caller.role) else {
            return BodyStep::Reply(self.refuse(Denial::new(Reason::InternalError, "role table out of sync")));
        };
        let Some(redaction) = gateway.redaction(self.caller.role, false) else {
            return BodyStep::Reply(self.refuse(Denial::new(Reason::InternalError, "no DLP profile for the role")));
        };
        let memo = Some((&gateway.memo, role.dlp_profile as u64));
        let tally = &mut self.tally;
        let checked =
            check_body_with(role, kind, body, |text, messages| mask_messages(&redaction, text, messages, tally, memo));
        let verdict = match checked {
            Ok(verdict) => verdict,
            Err(denial) => return BodyStep::Reply(self.refuse(denial)),
        };
        self.log_allowed(&gateway.policy, Some((&verdict.model, verdict.stream, verdict.clamped)));
        match verdict.rewritten {
            Some(body) => BodyStep::Replace { body, clamped: verdict.clamped },
            None => BodyStep::Forward,
        }
    }

    /// Decides how the response body is masked, from the response headers.
    pub fn on_response_headers(&mut self, gateway: &Gateway, headers: &[(String, String)]) -> ResponseStep {
        let active = gateway.redaction(self.caller.role, true).is_some_and(|r| r.is_active());
        if !active {
            return ResponseStep::Pass;
        }
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let encoding = header("content-encoding").unwrap_or("").trim();
        if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
            return ResponseStep::Reply(self.refuse(Denial::new(
                Reason::ResponseUninspectable,
                format!(
                    "the upstream answered with content-encoding {encoding:?}, which cannot be inspected for masking"
                ),
            )));
        }
        let content_type = header("content-type").unwrap_or("");
        if content_type.trim_start().to_ascii_lowercase().starts_with("text/event-stream") {
            self.stream = Some(StreamRedactor::default());
            ResponseStep::Stream
        } else {
            ResponseStep::Buffer
        }
    }

    /// Masks a chunk of an event stream; returns the bytes to deliver now.
    pub fn on_response_chunk(&mut self, gateway: &Gateway, chunk: &[u8]) -> Vec<u8> {
        match (self.stream.as_mut(), gateway.redaction(self.caller.role, true)) {
            (Some(stream), Some(redaction)) => stream.push(&redaction, chunk),
            _ => chunk.to_vec(),
        }
    }

    /// The event stream ended (or trailers arrived): returns what was still held back.
    pub fn on_response_end(&mut self, gateway: &Gateway) -> Vec<u8> {
        let Some(mut stream) = self.stream.take() else { return Vec::new() };
        let out = match gateway.redaction(self.caller.role, true) {
            Some(redaction) => stream.finish(&redaction),
            None => Vec::new(),
        };
        if let Some(reason) = stream.ended() {
            log::info!("{} response stream ended early: {}", self.request_id, reason.code());
        }
        self.tally.merge(stream.tally());
        out
    }

    /// Masks a complete (non-stream) response body.
    pub fn on_response_body(&mut self, gateway: &Gateway, body: &[u8]) -> BodyStep {
        let Some(redaction) = gateway.redaction(self.caller.role, true) else { return BodyStep::Forward };
        match redact_body(&redaction, body, &mut self.tally) {
            Ok(Some(body)) => BodyStep::Replace { body, clamped: false },
            Ok(None) => BodyStep::Forward,
            Err(denial) => BodyStep::Reply(self.refuse(denial)),
        }
    }

    /// What DLP found so far, in both directions (counts only).
    pub fn tally(&self) -> Tally {
        let mut tally = self.tally.clone();
        if let Some(stream) = &self.stream {
            tally.merge(stream.tally());
        }
        tally
    }

    /// Renders a refusal for this exchange (and logs it).
    pub fn refuse(&self, denial: Denial) -> LocalReply {
        log::info!(
            "{} denied {} sub={:?}: {}",
            self.request_id,
            denial.reason.code(),
            self.caller.subject,
            denial.detail
        );
        denial.to_reply(&self.request_id)
    }

    fn log_allowed(&self, policy: &Policy, body: Option<(&str, bool, bool)>) {
        // Allowed requests log at debug level: skip the formatting when that level is off.
        if !log::log_enabled!(log::Level::Debug) {
            return;
        }
        let role = policy.roles.get(self.caller.role).map(|r| r.name.as_str()).unwrap_or("?");
        let job: String = self.caller.job.iter().map(|(k, v)| format!(" {k}={v:?}")).collect();
        let body = body
            .map(|(model, stream, clamped)| format!(" model={model:?} stream={stream} clamped={clamped}"))
            .unwrap_or_default();
        log::debug!(
            "{} allowed {} sub={:?} role={role}{body}{job}",
            self.request_id,
            self.endpoint.label(),
            self.caller.subject
        );
    }
}

/// jwt_authn checks every token-bearing header, so a client key in `x-api-key` beside a valid
/// bearer token fails verification; say so, since the jwt_authn reason alone is cryptic.
fn with_credential_hint(mut denial: Denial, head: &RequestHead) -> Denial {
    if denial.reason == Reason::TokenInvalid
        && head.header("authorization").is_some()
        && head.header("x-api-key").is_some()
    {
        denial.detail.push_str(
            "; the request carries both Authorization and x-api-key: send the token in only one \
             (with ANTHROPIC_AUTH_TOKEN, unset ANTHROPIC_API_KEY)",
        );
    }
    denial
}

/// Checks `content-type`, `content-encoding` and a declared `content-length` before the body.
fn check_body_headers(head: &RequestHead, max_body_bytes: u64) -> Result<(), Denial> {
    let content_type = head.header("content-type").unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(Denial::new(
            Reason::InvalidContentType,
            format!(
                "content-type must be application/json, got {:?}",
                content_type.chars().take(80).collect::<String>()
            ),
        ));
    }
    for encoding in head.header_values("content-encoding").flat_map(|v| v.split(',')).map(str::trim) {
        if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
            return Err(Denial::new(
                Reason::CompressedBody,
                format!("compressed request bodies ({encoding}) cannot be inspected; send plain JSON"),
            ));
        }
    }
    if let Some(length) = head.header("content-length").and_then(|v| v.trim().parse::<u64>().ok()) {
        if length > max_body_bytes {
            return Err(too_large(max_body_bytes));
        }
    }
    Ok(())
}

fn too_large(limit: u64) -> Denial {
    Denial::new(Reason::BodyTooLarge, format!("the request body exceeds the limit of {limit} bytes"))
}

/// `req_warden_<Envoy's x-request-id>`, the id Envoy's own local replies use too.
pub fn request_id_for(envoy_request_id: Option<&str>) -> String {
    let id: String = envoy_request_id
        .unwrap_or("unknown")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    format!("req_warden_{id}")
}

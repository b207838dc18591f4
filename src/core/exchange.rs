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
//! Approval: when a trigger of the role's approval rules fires on an accepted body, the body step
//! is [`BodyStep::Hold`]: the glue applies the (possibly masked) body, keeps the request paused
//! and sends the [`Callout`] to the approval service; [`Exchange::on_approval_answer`] turns the
//! answer into forward or refuse. Only a verdict signed with the configured key, for this request
//! and caller, that says `approved` forwards; anything else refuses (fail closed).
//!
//! Responses: [`Exchange::on_response_headers`] picks how the body is masked — event streams
//! chunk by chunk ([`Exchange::on_response_chunk`], [`Exchange::on_response_end`]), anything else
//! whole ([`Exchange::on_response_body`]); compressed responses are refused, since they cannot be
//! inspected. [`Exchange::tally`] counts what was found in both directions.

use crate::core::approval::{self, CallerView, HoldRequest, RequestFacts, EXCERPT_CHARS};
use crate::core::audit::record::{BlobNames, Forwarded, Record, Recorder, JOB_HEADER, SESSION_HEADER};
use crate::core::audit::trail::{ClientLabels, Ending, Trail};
use crate::core::dlp::engine::Action;
use crate::core::dlp::mask::{MaskKey, Tally};
use crate::core::dlp::memo::CleanMemo;
use crate::core::dlp::request::mask_messages;
use crate::core::dlp::response::{redact_body, StreamRedactor};
use crate::core::dlp::text::{redact, Redaction};
use crate::core::endpoint::{classify, Endpoint};
use crate::core::errors::{Denial, LocalReply, Reason};
use crate::core::identity::{authenticate, Caller, TokenStatus};
use crate::core::messages::{check_betas, check_body_with, BodyKind};
use crate::core::policy::{Policy, PolicyErrors, Role, RoleKeys};
use crate::core::secret::Secret;
use crate::core::splice::splice_of;
use crate::core::verdict::{self, Decision};
use std::cell::RefCell;
use std::ops::Range;

/// A compiled policy with its resolved keys: what one filter configuration enforces.
#[derive(Debug)]
pub struct Gateway {
    /// The compiled policy.
    pub policy: Policy,
    keys: RoleKeys,
    /// Request texts already scanned and found clean (per VM).
    memo: CleanMemo,
    /// Every detector set to mask: what the approver's excerpt and audit records go through.
    mask_everything: Vec<Action>,
    /// Audit blobs this worker already sent (when the policy has `audit`).
    audit_blobs: Option<RefCell<BlobNames>>,
}

impl Gateway {
    /// Compiles `policy_text` and reads every credential through `lookup`.
    pub fn new(policy_text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, PolicyErrors> {
        let policy = Policy::parse(policy_text)?;
        let keys = policy.resolve_credentials(lookup)?;
        let memo = CleanMemo::new(keys.upstream.first().map(|k| k.expose().as_bytes()).unwrap_or_default());
        let mask_everything = vec![Action::Mask; policy.dlp.engine.specs().len()];
        let audit_blobs = policy.audit.as_ref().map(|_| RefCell::new(BlobNames::new()));
        Ok(Self { policy, keys, memo, mask_everything, audit_blobs })
    }

    /// The audit service's bearer token (when the policy has `audit`).
    pub fn audit_token(&self) -> Option<&Secret> {
        self.keys.audit_token.as_ref()
    }

    /// Whether the policy keeps an audit record of every exchange.
    pub fn audits(&self) -> bool {
        self.audit_blobs.is_some()
    }

    /// Every detector masking, with the role's mask key: for texts that leave the request path
    /// (the approver's excerpt, audit records).
    fn mask_everything(&self, role: usize) -> Option<Redaction<'_>> {
        Some(Redaction {
            engine: &self.policy.dlp.engine,
            actions: &self.mask_everything,
            key: self.keys.mask.get(role)?,
        })
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
    /// Replace the body if `body` is set, keep the request paused, and send `callout`; then
    /// call [`Exchange::on_approval_answer`].
    Hold {
        /// The new body, when a value was clamped or masked.
        body: Option<Vec<u8>>,
        /// Whether a cap clamped a value.
        clamped: bool,
        /// The request to the approval service.
        callout: Callout,
    },
}

/// What to do with a complete (buffered) response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBodyStep {
    /// Deliver it as it is.
    Deliver,
    /// Deliver these bytes instead (masked).
    Replace(Vec<u8>),
    /// Replace the response with this refusal.
    Reply(LocalReply),
}

/// A request to the approval service, for the glue to send through Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    /// Envoy cluster of the service.
    pub cluster: String,
    /// `:authority`.
    pub authority: String,
    /// `:path` of the hold endpoint.
    pub path: String,
    /// The gateway's token, sent as `authorization: Bearer` (its `Debug` output is redacted).
    pub bearer: Secret,
    /// JSON body ([`HoldRequest`]).
    pub body: Vec<u8>,
    /// How long Envoy waits for the answer, in milliseconds: the hold plus a margin.
    pub timeout_ms: u64,
}

/// What to do once the approval service answered (or failed to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalStep {
    /// Approved: resume the paused request.
    Forward {
        /// Whether a cap clamped a value in the held body (for the metric).
        clamped: bool,
    },
    /// Refuse with this reply.
    Reply(LocalReply),
}

/// Seconds Envoy waits for the approval service beyond the hold before the callout fails.
pub const CALLOUT_MARGIN_SECONDS: u64 = 10;

/// How the response body is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseStep {
    /// Nothing to mask or record: let the body through untouched.
    Pass,
    /// Nothing to mask, but the audit record wants the answer: let each chunk through untouched
    /// and hand a copy to [`Exchange::on_delivered`].
    Observe,
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
    /// Seconds since the epoch when the request headers arrived.
    started_at: f64,
    /// The request waiting for an approval verdict.
    held: Option<Held>,
    /// What the audit record will say (when the policy has `audit`).
    trail: Option<Trail>,
}

/// A request held for approval: what the verdict must be about, and what forwarding means.
#[derive(Debug)]
struct Held {
    fingerprint: String,
    reasons: Vec<String>,
    clamped: bool,
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
        let trail = gateway.audits().then(|| {
            let labels = ClientLabels {
                session: head.header(SESSION_HEADER).map(str::to_string),
                job: head.header(JOB_HEADER).map(str::to_string),
            };
            Trail::new(millis(head.now), &request_id, endpoint.label(), head.method, head.path, labels)
        });
        let exchange = Exchange {
            request_id,
            caller,
            endpoint,
            max_body_bytes: role.max_body_bytes,
            tally: Tally::default(),
            stream: None,
            started_at: head.now,
            held: None,
            trail,
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
    pub fn on_body_progress(&mut self, buffered_bytes: usize) -> Option<LocalReply> {
        if buffered_bytes as u64 > self.max_body_bytes {
            Some(self.refuse(too_large(self.max_body_bytes)))
        } else {
            None
        }
    }

    /// Judges the complete body, masks what the caller sends per the role's DLP profile, and holds
    /// the request for approval when one of the role's triggers fires.
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
        // Where the newest user turn lies, from the same parse (read only if approval needs it).
        let mut newest_turn: Option<Range<usize>> = None;
        let wants_turn = role.approval.is_some() && kind == BodyKind::Messages;
        // Each message is hashed once: the digest serves DLP's memo and the audit record's.
        let mut digests = Vec::new();
        let wants_digests = redaction.is_active() || self.trail.is_some();
        let checked = check_body_with(role, kind, body, |text, messages, system| {
            if wants_turn {
                newest_turn = approval::newest_user_content(messages).map(|raw| {
                    let span = splice_of(text, raw.get(), Vec::new());
                    span.start..span.end
                });
            }
            if wants_digests {
                digests = messages.iter().map(|m| gateway.memo.digest(m.get().as_bytes())).collect();
            }
            mask_messages(&redaction, text, messages, system, &digests, tally, memo)
        });
        let mut verdict = match checked {
            Ok(verdict) => verdict,
            Err(denial) => return BodyStep::Reply(self.refuse(denial)),
        };
        if let (Some(trail), Some(names)) = (self.trail.as_mut(), gateway.audit_blobs.as_ref()) {
            let forwarded = verdict.rewritten.as_deref().unwrap_or(body);
            let outline = std::mem::take(&mut verdict.outline);
            let digest = |text: &[u8]| gateway.memo.digest(text);
            let tools = verdict.tools.clone();
            trail.on_forwarded_body(Forwarded::take(forwarded, outline, &digests, &names.borrow(), &digest, tools));
        }
        if wants_turn {
            let turn = || {
                let content = newest_turn.clone().and_then(|range| body.get(range));
                content.and_then(|c| std::str::from_utf8(c).ok()).map(approval::turn_text).unwrap_or_default()
            };
            let facts = RequestFacts {
                model: verdict.model.clone(),
                tools: std::mem::take(&mut verdict.tools),
                max_tokens: verdict.max_tokens,
                body_bytes: body.len() as u64,
                mcp_servers: verdict.mcp_servers,
                newest_turn: String::new(),
            };
            match self.approval_callout(gateway, role, facts, turn, verdict.clamped) {
                Ok(Some(callout)) => {
                    return BodyStep::Hold { body: verdict.rewritten, clamped: verdict.clamped, callout };
                }
                Ok(None) => {}
                Err(denial) => return BodyStep::Reply(self.refuse(denial)),
            }
        }
        self.log_allowed(&gateway.policy, Some((&verdict.model, verdict.stream, verdict.clamped)));
        match verdict.rewritten {
            Some(body) => BodyStep::Replace { body, clamped: verdict.clamped },
            None => BodyStep::Forward,
        }
    }

    /// The callout asking for approval when one of the role's triggers fires; `None` when none
    /// fires. The newest turn (`turn`) is read only when a trigger needs it or one fired.
    fn approval_callout(
        &mut self,
        gateway: &Gateway,
        role: &Role,
        mut facts: RequestFacts,
        turn: impl Fn() -> String,
        clamped: bool,
    ) -> Result<Option<Callout>, Denial> {
        let Some(rules) = &role.approval else { return Ok(None) };
        let turn_read = approval::reads_turn(&rules.triggers);
        if turn_read {
            facts.newest_turn = turn();
        }
        let reasons = approval::reasons(&rules.triggers, &facts, self.started_at as i64);
        if reasons.is_empty() {
            return Ok(None);
        }
        if !turn_read {
            facts.newest_turn = turn();
        }
        let facts = &facts;
        let (Some(settings), Some(keys)) = (&gateway.policy.approvals, &gateway.keys.approvals) else {
            return Err(Denial::new(Reason::InternalError, "approval rules without an approval service"));
        };
        let fingerprint = approval::fingerprint(&self.caller.subject, &role.name, facts);
        let excerpt_redaction = gateway
            .mask_everything(self.caller.role)
            .ok_or_else(|| Denial::new(Reason::InternalError, "no mask key for the role"))?;
        // Masked before it is cut, so a cut never exposes part of a secret. Block cannot happen:
        // every detector masks.
        let masked = redact(&excerpt_redaction, &facts.newest_turn, &mut Tally::default())
            .map_err(|_| Denial::new(Reason::InternalError, "masking the approval excerpt failed"))?;
        let excerpt = approval::excerpt(&masked, EXCERPT_CHARS);
        let hold = HoldRequest {
            version: 1,
            request_id: &self.request_id,
            fingerprint: &fingerprint,
            caller: CallerView::of(&self.caller),
            role: &role.name,
            reasons: &reasons,
            model: &facts.model,
            tools: &facts.tools,
            max_tokens: facts.max_tokens,
            body_bytes: facts.body_bytes,
            mcp_servers: facts.mcp_servers,
            excerpt: &excerpt,
            hold_seconds: settings.hold_seconds,
        };
        let body = serde_json::to_vec(&hold)
            .map_err(|_| Denial::new(Reason::InternalError, "encoding the approval request failed"))?;
        log::info!(
            "{} held for approval sub={:?} role={} reasons={} fp={}",
            self.request_id,
            self.caller.subject,
            role.name,
            reasons.join(","),
            fingerprint.get(..16).unwrap_or_default()
        );
        let reasons: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
        if let Some(trail) = self.trail.as_mut() {
            trail.on_held(&reasons);
        }
        self.held = Some(Held { fingerprint, reasons, clamped });
        let service = &settings.service;
        Ok(Some(Callout {
            cluster: service.cluster.clone(),
            authority: service.authority.clone(),
            path: service.holds_path.clone(),
            bearer: keys.token.clone(),
            body,
            timeout_ms: (settings.hold_seconds + CALLOUT_MARGIN_SECONDS) * 1000,
        }))
    }

    /// Judges the approval service's answer: `None` when the callout failed before any answer,
    /// else the HTTP status and body. `now` is seconds since the epoch.
    pub fn on_approval_answer(&mut self, gateway: &Gateway, answer: Option<(u16, &[u8])>, now: f64) -> ApprovalStep {
        let Some(held) = self.held.take() else {
            return ApprovalStep::Reply(
                self.refuse(Denial::new(Reason::InternalError, "an approval answer for a request that was not held")),
            );
        };
        let decided = self.decision(gateway, &held, answer, now);
        if let Some(trail) = self.trail.as_mut() {
            match &decided {
                Ok((decision, verdict)) => {
                    let (name, review, reviewer) = match decision {
                        Decision::Approved { review, reviewer } => ("approved", review, Some(reviewer.as_str())),
                        Decision::Denied { review, reviewer, .. } => ("denied", review, Some(reviewer.as_str())),
                        Decision::Pending { review, .. } => ("pending", review, None),
                    };
                    trail.on_approval(name, Some(review), reviewer, Some(verdict));
                }
                Err(denial) if denial.reason == Reason::ApprovalInvalid => {
                    trail.on_approval("invalid", None, None, None)
                }
                Err(_) => trail.on_approval("unavailable", None, None, None),
            }
        }
        match decided.map(|(decision, _)| decision) {
            Ok(Decision::Approved { review, reviewer }) => {
                log::info!("{} approved by {reviewer:?} (review {review})", self.request_id);
                ApprovalStep::Forward { clamped: held.clamped }
            }
            Ok(Decision::Denied { review, reviewer, comment }) => ApprovalStep::Reply(self.refuse(Denial::new(
                Reason::ApprovalDenied,
                format!("{reviewer} denied this request (review {review}): {comment}"),
            ))),
            Ok(Decision::Pending { review, url }) => ApprovalStep::Reply(self.refuse(Denial::new(
                Reason::ApprovalPending,
                format!(
                    "this request needs approval ({}); review {review} is waiting for an approver at {url} \
                     — re-send the same request once it is approved",
                    held.reasons.join(", ")
                ),
            ))),
            Err(denial) => ApprovalStep::Reply(self.refuse(denial)),
        }
    }

    /// The verified decision in an answer and the signed verdict it came in, or the denial that
    /// replaces it.
    fn decision(
        &self,
        gateway: &Gateway,
        held: &Held,
        answer: Option<(u16, &[u8])>,
        now: f64,
    ) -> Result<(Decision, String), Denial> {
        #[derive(serde::Deserialize)]
        struct Answer {
            verdict: String,
        }
        let unavailable = |what: String| {
            Denial::new(
                Reason::ApprovalUnavailable,
                format!(
                    "this request needs approval ({}) but the approval service {what}; it is refused",
                    held.reasons.join(", ")
                ),
            )
        };
        let (status, body) = answer.ok_or_else(|| unavailable("could not be called".to_string()))?;
        match status {
            200 => {}
            503 => return Err(unavailable("is unreachable (HTTP 503)".to_string())),
            504 => return Err(unavailable("did not answer in time (HTTP 504)".to_string())),
            other => return Err(unavailable(format!("answered HTTP {other}"))),
        }
        let answer: Answer =
            serde_json::from_slice(body).map_err(|_| unavailable("sent a malformed answer".to_string()))?;
        let key = gateway
            .keys
            .approvals
            .as_ref()
            .map(|k| k.verdict_key)
            .ok_or_else(|| Denial::new(Reason::InternalError, "no approval verdict key"))?;
        let decision =
            verdict::verify(&answer.verdict, &key, &held.fingerprint, &self.caller.subject, now).map_err(|e| {
                log::warn!("{} approval verdict rejected: {e}", self.request_id);
                Denial::new(Reason::ApprovalInvalid, format!("{e}; the request is refused"))
            })?;
        Ok((decision, answer.verdict))
    }

    /// Decides how the response body is masked, from the response headers.
    pub fn on_response_headers(&mut self, gateway: &Gateway, headers: &[(String, String)]) -> ResponseStep {
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let content_type = header("content-type").unwrap_or("");
        let event_stream = content_type.trim_start().to_ascii_lowercase().starts_with("text/event-stream");
        if let Some(trail) = self.trail.as_mut() {
            let status = header(":status").and_then(|s| s.parse().ok());
            trail.on_response_headers(status, header("request-id"), event_stream);
        }
        let active = gateway.redaction(self.caller.role, true).is_some_and(|r| r.is_active());
        if !active {
            return if self.trail.is_some() { ResponseStep::Observe } else { ResponseStep::Pass };
        }
        let encoding = header("content-encoding").unwrap_or("").trim();
        if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
            return ResponseStep::Reply(self.refuse(Denial::new(
                Reason::ResponseUninspectable,
                format!(
                    "the upstream answered with content-encoding {encoding:?}, which cannot be inspected for masking"
                ),
            )));
        }
        if event_stream {
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
    pub fn on_response_body(&mut self, gateway: &Gateway, body: &[u8]) -> ResponseBodyStep {
        let Some(redaction) = gateway.redaction(self.caller.role, true) else { return ResponseBodyStep::Deliver };
        match redact_body(&redaction, body, &mut self.tally) {
            Ok(Some(body)) => ResponseBodyStep::Replace(body),
            Ok(None) => ResponseBodyStep::Deliver,
            Err(denial) => ResponseBodyStep::Reply(self.refuse(denial)),
        }
    }

    /// Bytes delivered to the client at `now_ms` (after masking), for the audit record.
    pub fn on_delivered(&mut self, bytes: &[u8], now_ms: u64) {
        if let Some(trail) = self.trail.as_mut() {
            trail.on_delivered(bytes, now_ms);
        }
    }

    /// The audit record of the exchange, once it ended (`None` without `audit`, or if already
    /// taken).
    pub fn finish_record(&mut self, gateway: &Gateway, ending: Ending) -> Option<Record> {
        let trail = self.trail.take()?;
        let role = gateway.policy.roles.get(self.caller.role).map(|r| r.name.as_str()).unwrap_or("?");
        let tally = self.tally();
        let mut names = gateway.audit_blobs.as_ref()?.borrow_mut();
        let redaction = gateway.mask_everything(self.caller.role)?;
        let mut mask = |text: &str| match redact(&redaction, text, &mut Tally::default()) {
            Ok(masked) => masked.into_owned(),
            // Every detector masks, so nothing blocks; keep nothing rather than the text.
            Err(_) => String::new(),
        };
        let recorder = Recorder { names: &mut names, mask: &mut mask };
        Some(trail.finish(Some((&self.caller, role)), &tally, ending, recorder))
    }

    /// What DLP found so far, in both directions (counts only).
    pub fn tally(&self) -> Tally {
        let mut tally = self.tally.clone();
        if let Some(stream) = &self.stream {
            tally.merge(stream.tally());
        }
        tally
    }

    /// Renders a refusal for this exchange (logs it, and notes it for the audit record).
    pub fn refuse(&mut self, denial: Denial) -> LocalReply {
        log::info!(
            "{} denied {} sub={:?}: {}",
            self.request_id,
            denial.reason.code(),
            self.caller.subject,
            denial.detail
        );
        let reply = denial.to_reply(&self.request_id);
        if let Some(trail) = self.trail.as_mut() {
            trail.on_refused(&reply);
        }
        reply
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

/// Seconds since the epoch → whole milliseconds.
pub fn millis(seconds: f64) -> u64 {
    (seconds * 1000.0) as u64
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

//! What one exchange leaves for its audit record, gathered as it happens ([`Trail`]), and the
//! record it becomes ([`Trail::finish`]). Every request the filter sees has an exchange, and so
//! a trail, from its first header on — a request refused at its headers too; the exchange makes
//! the record once. ([`refused_at_headers`] builds such a record alone, for tests and tools.)
//!
//! The exchange feeds the trail: the endpoint once classified, the forwarded body (split into
//! blobs), refusals, the approval, the response headers, and every delivered response byte (an
//! event stream is reassembled as it passes; another body is kept up to [`MAX_BODY_BYTES`] and
//! read at the end). Nothing here touches the request path's decisions.
//!
//! Decision: refused (with the reply's reason and status) when Warden answered; not allowed, with
//! no reason, when the exchange ended before anything was decided; else allowed.
//!
//! Outcome: refused when Warden refused; an upstream status ≥ 400 is `upstream_error`; an answer
//! that carried an error event or stopped being an event stream is `stream_error`; an event
//! stream that never reached `message_stop`, or a response that never started, is
//! `client_abort` when the client went away first, else `upstream_reset`. An answer Warden cut
//! at its budget ([`Trail::on_cut`]) is `budget_cut`, whatever followed, and its usage counts
//! the output tokens up to the cut when the delivered stream did not report them.

use super::record::{
    request_view, ApprovalView, BlobNames, DecisionView, DlpView, Forwarded, IdentityView, Outcome, Record, Recorder,
    ResponseView, Timings,
};
use super::transcript::{from_body, StreamTranscript, Transcript};
use crate::core::dlp::engine::Action;
use crate::core::dlp::mask::Tally;
use crate::core::errors::LocalReply;
use crate::core::identity::Caller;
use std::collections::BTreeMap;

/// Most bytes of a non-stream response kept for the record.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// How the exchange ended, as the glue saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// Whether the response reached its end (end of stream or trailers).
    pub response_complete: bool,
    /// Whether the client disconnected before the end.
    pub client_gone: bool,
}

/// What the client's headers say a request belongs to ([`super::record::SESSION_HEADER`],
/// [`super::record::JOB_HEADER`]), kept as declared; who sent it comes from the token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientLabels {
    /// The agent session header.
    pub session: Option<String>,
    /// The CI job header.
    pub job: Option<String>,
}

/// The record in the making.
#[derive(Debug, Default)]
pub struct Trail {
    start_ms: u64,
    request_id: String,
    endpoint: String,
    method: String,
    path: String,
    labels: ClientLabels,
    refusal: Option<DecisionView>,
    /// Why nothing was decided, when the exchange ended before Warden decided.
    undecided: Option<String>,
    approval: Option<ApprovalView>,
    /// The body as forwarded, split into blobs only when the record is made (off the request
    /// path).
    forwarded: Option<Forwarded>,
    status: Option<u16>,
    upstream_request_id: Option<String>,
    first_byte_ms: Option<u64>,
    stream: Option<StreamTranscript>,
    body: Vec<u8>,
    body_truncated: bool,
    /// Output tokens at the stream cut, when Warden ended the answer at its budget.
    cut_output_tokens: Option<u64>,
}

impl Trail {
    /// A trail for request `request_id` to `endpoint` (its policy name, or `unknown`), whose
    /// headers arrived at `start_ms`.
    pub fn new(
        start_ms: u64,
        request_id: &str,
        endpoint: &str,
        method: &str,
        path: &str,
        labels: ClientLabels,
    ) -> Self {
        Self {
            start_ms,
            request_id: request_id.to_string(),
            endpoint: endpoint.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            labels,
            ..Self::default()
        }
    }

    /// The endpoint called (its policy label), once the path is classified.
    pub fn on_endpoint(&mut self, endpoint: &str) {
        self.endpoint = endpoint.to_string();
    }

    /// The body as forwarded (kept until the record is made).
    pub fn on_forwarded_body(&mut self, forwarded: Forwarded) {
        self.forwarded = Some(forwarded);
    }

    /// Warden refused the request (or replaced its answer) with `reply`.
    pub fn on_refused(&mut self, reply: &LocalReply) {
        self.refusal = Some(DecisionView {
            allowed: false,
            reason: Some(reply.reason.code().to_string()),
            status: Some(reply.status),
            message: Some(reply.message.clone()),
        });
    }

    /// The exchange ended before Warden decided (the client left while the body was read or the
    /// request was held): nothing went upstream. `when` says at which point.
    pub fn on_undecided(&mut self, when: &str) {
        self.undecided = Some(format!("the request ended {when}, before Warden decided; nothing went upstream"));
    }

    /// The request was held for approval for `reasons`.
    pub fn on_held(&mut self, reasons: &[String]) {
        self.approval = Some(ApprovalView {
            review: None,
            reviewer: None,
            reasons: reasons.to_vec(),
            decision: "asked".to_string(),
            verdict: None,
            grant: None,
        });
    }

    /// The approval service answered: `decision`, and the review, reviewer and signed verdict
    /// when it gave them.
    pub fn on_approval(&mut self, decision: &str, review: Option<&str>, reviewer: Option<&str>, verdict: Option<&str>) {
        if let Some(approval) = self.approval.as_mut() {
            approval.decision = decision.to_string();
            approval.review = review.map(str::to_string);
            approval.reviewer = reviewer.map(str::to_string);
            approval.verdict = verdict.map(str::to_string);
        }
    }

    /// The approval came from (or created) a session grant: the record names its scope.
    pub fn on_grant(&mut self, grant: crate::core::approval::verdict::Grant) {
        if let Some(approval) = self.approval.as_mut() {
            approval.grant = Some(super::record::GrantView {
                id: grant.id,
                session_id: grant.session_id,
                expires_at: grant.expires_at,
                reasons: grant.reasons,
            });
        }
    }

    /// The response headers: status, Anthropic's request id, whether an event stream follows.
    pub fn on_response_headers(&mut self, status: Option<u16>, upstream_request_id: Option<&str>, stream: bool) {
        self.status = status;
        self.upstream_request_id = upstream_request_id.map(str::to_string);
        if stream {
            self.stream = Some(StreamTranscript::default());
        }
    }

    /// Warden ended the streamed answer at its budget after about `output_tokens` output
    /// tokens (the stream cut).
    pub fn on_cut(&mut self, output_tokens: u64) {
        self.cut_output_tokens = Some(output_tokens);
    }

    /// Bytes delivered to the client at `at_ms`.
    pub fn on_delivered(&mut self, bytes: &[u8], at_ms: u64) {
        if bytes.is_empty() {
            return;
        }
        self.first_byte_ms.get_or_insert(at_ms);
        match self.stream.as_mut() {
            Some(stream) => stream.push(bytes),
            None => {
                let room = MAX_BODY_BYTES.saturating_sub(self.body.len());
                self.body.extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
                self.body_truncated |= bytes.len() > room;
            }
        }
    }

    /// The record, once the exchange ended, made with what the worker lends (`recorder`): the
    /// forwarded body is split into blobs here.
    pub fn finish(self, who: Option<(&Caller, &str)>, tally: &Tally, ending: Ending, recorder: Recorder) -> Record {
        let mut recorder = recorder;
        let mut blobs = BTreeMap::new();
        let request = self.forwarded.map(|forwarded| request_view(forwarded, &mut recorder, &mut blobs));
        let model = request.as_ref().and_then(|r| r.params.get("model")).and_then(|m| m.as_str()).map(str::to_string);
        let stream = self.stream.is_some();
        let transcript: Option<Transcript> = match (self.stream, self.status) {
            (Some(stream), _) => Some(stream.finish()),
            (None, Some(_)) if !self.body.is_empty() => {
                let mut transcript = from_body(&self.body);
                transcript.truncated |= self.body_truncated;
                Some(transcript)
            }
            _ => None,
        };
        // The answer was masked by the role's response profile; the record masks everything.
        let transcript = transcript.map(|mut transcript| {
            transcript.content.iter_mut().for_each(|block| mask_strings(block, &mut *recorder.mask));
            transcript
        });
        let outcome = match self.cut_output_tokens {
            Some(_) if self.refusal.is_none() => Outcome::BudgetCut,
            _ => outcome(self.refusal.is_some(), self.status, transcript.as_ref(), ending),
        };
        let decision = match (self.refusal, self.undecided) {
            (Some(refusal), _) => refusal,
            (None, Some(why)) => DecisionView { allowed: false, reason: None, status: self.status, message: Some(why) },
            (None, None) => DecisionView { allowed: true, reason: None, status: self.status, message: None },
        };
        let mut usage = transcript.as_ref().map(|t| t.usage.clone()).unwrap_or_default();
        if let Some(tokens) = self.cut_output_tokens {
            usage.output_tokens = Some(usage.output_tokens.unwrap_or(0).max(tokens));
        }
        let session_id = super::record::session_id(self.labels.session.as_deref(), request.as_ref().map(|r| &r.params));
        Record {
            request_id: self.request_id,
            upstream_request_id: self.upstream_request_id,
            session_id,
            job_id: who.and_then(|(caller, _)| super::record::job_id(&caller.job, self.labels.job.as_deref())),
            identity: who.map(|(caller, role)| IdentityView::of(caller, role)),
            endpoint: self.endpoint,
            method: self.method,
            path: self.path,
            decision,
            approval: self.approval,
            model,
            request,
            response: transcript.map(|transcript| ResponseView { status: self.status, stream, transcript }),
            dlp: dlp_view(tally),
            usage,
            cost_nanos: None,
            timings: Timings { start: self.start_ms, first_byte: self.first_byte_ms, end: ending.at_ms },
            outcome,
            blobs,
            agent: None,
            tool_calls: Vec::new(),
            tool_results: Vec::new(),
        }
    }
}

/// Masks every string inside `value` (object keys stay).
fn mask_strings(value: &mut serde_json::Value, mask: &mut dyn FnMut(&str) -> String) {
    match value {
        serde_json::Value::String(text) => *text = mask(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| mask_strings(item, mask)),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(|field| mask_strings(field, mask)),
        _ => {}
    }
}

fn outcome(refused: bool, status: Option<u16>, transcript: Option<&Transcript>, ending: Ending) -> Outcome {
    let abort_or_reset = if ending.client_gone { Outcome::ClientAbort } else { Outcome::UpstreamReset };
    if refused {
        return Outcome::Refused;
    }
    match (status, transcript) {
        (None, _) => abort_or_reset,
        (Some(status), _) if status >= 400 => Outcome::UpstreamError,
        (Some(_), Some(t)) if t.error.is_some() || t.malformed => Outcome::StreamError,
        (Some(_), Some(t)) if !t.complete => abort_or_reset,
        (Some(_), _) if !ending.response_complete => abort_or_reset,
        _ => Outcome::Completed,
    }
}

fn dlp_view(tally: &Tally) -> DlpView {
    let mut view = DlpView::default();
    for (detector, action, count) in tally.entries() {
        let bucket = match action {
            Action::Mask => &mut view.masked,
            Action::Block => &mut view.blocked,
            Action::Audit => &mut view.audited,
            Action::Off => continue,
        };
        *bucket.entry(detector.to_string()).or_default() += count;
    }
    view
}

/// The record of a request refused at its headers, without identity (what the exchange makes for
/// an unauthenticated refusal; kept for tests and tools that need such a record alone).
pub fn refused_at_headers(
    request_id: &str,
    method: &str,
    path: &str,
    reply: &LocalReply,
    start_ms: u64,
    end_ms: u64,
) -> Record {
    let mut trail = Trail::new(start_ms, request_id, "unknown", method, path, ClientLabels::default());
    trail.on_refused(reply);
    let ending = Ending { at_ms: end_ms, response_complete: true, client_gone: false };
    // Nothing to name or mask: the request never got past its headers.
    let recorder = Recorder { names: &mut BlobNames::new(), mask: &mut str::to_string };
    trail.finish(None, &Tally::default(), ending, recorder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::errors::{Denial, Reason};
    use serde_json::json;

    fn caller() -> Caller {
        Caller {
            subject: "alice".into(),
            issuer: "warden-demo".into(),
            groups: vec!["eng".into()],
            job: vec![("repository".into(), "org/app".into()), ("run_id".into(), "7".into())],
            role: 0,
            token_id: Some("jti-1".into()),
            token_expires_at: 1_800_000_900.0,
        }
    }

    fn finish_masked(trail: Trail, caller: &Caller, ending: Ending, mask: &mut dyn FnMut(&str) -> String) -> Record {
        let recorder = Recorder { names: &mut BlobNames::new(), mask };
        trail.finish(Some((caller, "developer")), &Tally::default(), ending, recorder)
    }

    fn finish(trail: Trail, caller: &Caller, ending: Ending) -> Record {
        finish_masked(trail, caller, ending, &mut str::to_string)
    }

    fn trail() -> Trail {
        Trail::new(0, "req_warden_1", "messages", "POST", "/v1/messages", ClientLabels::default())
    }

    fn done(at_ms: u64) -> Ending {
        Ending { at_ms, response_complete: true, client_gone: false }
    }

    const STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":9}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    fn streamed(trail: &mut Trail, bytes: &str) {
        trail.on_response_headers(Some(200), Some("req_011"), true);
        for (i, chunk) in bytes.as_bytes().chunks(7).enumerate() {
            trail.on_delivered(chunk, 1_000 + i as u64);
        }
    }

    #[test]
    fn a_streamed_exchange_records_who_what_and_the_answer() {
        let labels = ClientLabels { session: Some("sess-1".into()), job: Some("nightly".into()) };
        let mut trail = Trail::new(900, "req_warden_1", "messages", "POST", "/v1/messages?beta=true", labels);
        let body =
            json!({"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "hello"}]});
        let forwarded = super::super::record::forwarded_of(body.to_string().as_bytes(), &BlobNames::new());
        trail.on_forwarded_body(forwarded);
        streamed(&mut trail, STREAM);
        let caller = caller();
        let record = finish(trail, &caller, done(2_000));
        assert_eq!(record.outcome, Outcome::Completed);
        assert!(record.decision.allowed);
        assert_eq!(record.session_id.as_deref(), Some("sess-1"));
        assert_eq!(record.job_id.as_deref(), Some("org/app#7"));
        assert_eq!(record.identity.as_ref().unwrap().role, "developer");
        assert_eq!(record.model.as_deref(), Some("claude-sonnet-4-6"));
        assert_eq!(record.upstream_request_id.as_deref(), Some("req_011"));
        assert_eq!(record.response.as_ref().unwrap().transcript.content, vec![json!({"type": "text", "text": "Hi"})]);
        assert_eq!((record.usage.input_tokens, record.usage.output_tokens), (Some(9), Some(3)));
        assert_eq!(record.timings, Timings { start: 900, first_byte: Some(1_000), end: 2_000 });
        assert_eq!(record.blobs.len(), 1);
    }

    #[test]
    fn a_job_header_names_the_job_only_when_the_token_has_no_job_claims() {
        let labels = ClientLabels { session: None, job: Some("nightly-7".into()) };
        let trail = || Trail::new(0, "r", "messages", "POST", "/v1/messages", labels.clone());
        let ci = caller();
        assert_eq!(finish(trail(), &ci, done(1)).job_id.as_deref(), Some("org/app#7"));
        let person = Caller { job: vec![], ..caller() };
        let record = finish(trail(), &person, done(1));
        assert_eq!(record.job_id.as_deref(), Some("nightly-7"));
        assert!(record.identity.unwrap().job.is_empty(), "so the record shows it was declared");
    }

    #[test]
    fn outcomes_tell_how_the_exchange_ended() {
        let caller = caller();
        let finish = |trail: Trail, ending: Ending| finish(trail, &caller, ending).outcome;
        let mut cut = trail();
        streamed(&mut cut, &STREAM[..STREAM.len() / 2]);
        assert_eq!(finish(cut, Ending { at_ms: 1, response_complete: false, client_gone: true }), Outcome::ClientAbort);
        let mut reset = trail();
        streamed(&mut reset, &STREAM[..STREAM.len() / 2]);
        assert_eq!(finish(reset, done(1)), Outcome::UpstreamReset);
        let mut errored = trail();
        streamed(
            &mut errored,
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n",
        );
        assert_eq!(finish(errored, done(1)), Outcome::StreamError);
        let mut upstream_error = trail();
        upstream_error.on_response_headers(Some(529), None, false);
        upstream_error.on_delivered(br#"{"type":"error","error":{"type":"overloaded_error"}}"#, 1);
        assert_eq!(finish(upstream_error, done(1)), Outcome::UpstreamError);
        let mut refused = trail();
        refused.on_refused(&Denial::new(Reason::ModelNotAllowed, "no").to_reply("r"));
        assert_eq!(finish(refused, done(1)), Outcome::Refused);
        assert_eq!(finish(trail(), done(1)), Outcome::UpstreamReset);
    }

    #[test]
    fn the_recorded_answer_is_masked_whatever_the_role_delivered() {
        let mut trail = trail();
        trail.on_response_headers(Some(200), None, false);
        let body = json!({"content": [{"type": "text", "text": "key SECRET"}, {"type": "tool_use", "id": "t", "name": "Bash", "input": {"cmd": "echo SECRET"}}]});
        trail.on_delivered(body.to_string().as_bytes(), 1);
        let caller = caller();
        let mut mask = |text: &str| text.replace("SECRET", "[REDACTED]");
        let record = finish_masked(trail, &caller, done(2), &mut mask);
        let content = &record.response.unwrap().transcript.content;
        assert_eq!(content[0]["text"], "key [REDACTED]");
        assert_eq!(content[1]["input"]["cmd"], "echo [REDACTED]");
    }

    #[test]
    fn an_approval_is_recorded_with_its_verdict() {
        let mut trail = trail();
        trail.on_held(&["opus_model".to_string()]);
        trail.on_approval("approved", Some("rev_1"), Some("bob"), Some("h.p.s"));
        let caller = caller();
        let record = finish(trail, &caller, done(1));
        let approval = record.approval.unwrap();
        assert_eq!((approval.decision.as_str(), approval.reviewer.as_deref()), ("approved", Some("bob")));
        assert_eq!(approval.reasons, vec!["opus_model"]);
        assert_eq!(approval.verdict.as_deref(), Some("h.p.s"));
    }

    #[test]
    fn a_refusal_at_the_headers_is_recorded_without_identity() {
        let reply = Denial::new(Reason::TokenMissing, "no token").to_reply("req_warden_2");
        let record = refused_at_headers("req_warden_2", "POST", "/v1/messages", &reply, 5, 6);
        assert_eq!(record.outcome, Outcome::Refused);
        assert!(record.identity.is_none());
        assert_eq!(record.decision.reason.as_deref(), Some("token_missing"));
        assert_eq!(record.decision.status, Some(401));
    }
}

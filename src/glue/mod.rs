//! proxy-wasm glue: copy values out of Envoy, call the core, perform its steps.
//!
//! Nothing here decides anything. The root context compiles the policy once per VM
//! (`on_configure`; an invalid policy or a missing key returns `false`, so Envoy refuses the
//! configuration). Each HTTP context holds one [`Exchange`] — created for every request once a
//! policy is loaded, kept until `on_log`, never dropped — and only moves bytes:
//! - on request headers: copies method, path, headers and the `jwt_authn` verdict from metadata,
//!   runs [`Exchange::start`] (or [`Exchange::turned_away`] when one of those reads failed or the
//!   audit queue is closed), applies the header edits and pauses while a body is judged;
//! - on request body / trailers (while the exchange wants the body): buffers, and at the end
//!   performs the core's [`BodyStep`] (the body may come back masked, or the request is held:
//!   the body is replaced, the request stays paused and the approval service is called through
//!   Envoy; its answer, in `on_http_call_response`, resumes or refuses the request);
//! - on response headers and body: performs the exchange's [`ResponseStep`] and follows its
//!   [`ResponseMode`] (event streams rewritten chunk by chunk as they pass, other bodies buffered
//!   with their headers until complete, or observed for the record); once the exchange cut a
//!   stream at its budget, the next upstream chunk that is not the last is dropped and the stream
//!   reset, so the upstream stops generating (docs/budgets.md, "The stream cut");
//! - on log: asks the exchange for its record (made once) and queues it, settles its budgets, and
//!   counts in the metrics ([`metrics`]) the request's final decision, a budget refusal or stream
//!   cut, its tokens and cost (from the budget settlement, else from the record's usage) and what
//!   DLP found (counts per detector, never values).
//!
//! With `accounting.leases`, the budget keys an exchange was checked against are noted after its
//! admission attempt and when it ends, and the root context's tick renews their leases from
//! `warden serve` ([`leases`]); the request path never waits for it.
//!
//! With `identity.revocation`, the tick also refreshes the kill switch's list ([`revocation`]);
//! a request whose verified caller is revoked (or, under `refuse`, that finds the list stale) is
//! turned away before its exchange starts (one call, [`revocation::Watch::judge`]), and a live
//! answer of a caller revoked since is ended at its next chunk.
//!
//! Host calls go through [`host`], which never panics; a failing host call is reported to the
//! exchange ([`Exchange::on_host_failure`]), which refuses the request (`internal_error`) and
//! records it — it never lets it through.

mod audit;
mod host;
mod leases;
mod ledger;
mod metrics;
mod revocation;

use crate::core::audit::outbox::Outbox;
use crate::core::audit::trail::Ending;
use crate::core::budget::renewal::KeysInUse;
use crate::core::errors::{Denial, LocalReply, Reason};
use crate::core::exchange::{
    millis, request_id_for, ApprovalStep, BodyStep, Callout, Exchange, Gateway, HeaderEdits, HeadersStep, RequestHead,
    ResponseBodyStep, ResponseMode, ResponseStep,
};
use crate::core::identity::TokenStatus;
use crate::core::metric_labels::{ApprovalOutcome, Decision, TokenCounts};
use crate::core::policy::{IdentityPolicy, PayloadKey, Role};
use crate::proxy_abi::{decode_claims, decode_text};
use host::{Buffer, HostError, Map};
use metrics::Metrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

proxy_wasm::main! {{
    install_logger();
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(WardenRoot { gateway: None, metrics: None, delivery: None, leases: None, revocations: None })
    });
}}

/// Namespace `jwt_authn` writes its metadata under.
const JWT_METADATA: [&str; 3] = ["metadata", "filter_metadata", "envoy.filters.http.jwt_authn"];
/// Key of the failure status (`failed_status_in_metadata`).
const FAILURE_KEY: &str = "jwt_failure";

/// The tick, when neither audit delivery nor leases set one, that retries budget settlements
/// the ledger refused (milliseconds).
const UNSETTLED_TICK_MS: u32 = 1_000;

struct WardenRoot {
    gateway: Option<Rc<Gateway>>,
    metrics: Option<Rc<Metrics>>,
    /// Audit records' way out (when the policy has `audit`).
    delivery: Option<audit::Delivery>,
    /// Budget leases from `warden serve` (when the policy has `accounting.leases`).
    leases: Option<leases::Leases>,
    /// The kill switch's list from `warden serve` (when the policy has `identity.revocation`).
    revocations: Option<revocation::Revocations>,
}

impl Context for WardenRoot {
    /// `warden serve` answered a revocation list call, a lease call or a batch of audit records.
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        if let Some(revocations) = self.revocations.as_mut().filter(|r| r.owns(token_id)) {
            revocations.on_response(body_size);
        } else if let Some(leases) = self.leases.as_mut().filter(|leases| leases.owns(token_id)) {
            leases.on_response(body_size);
        } else if let Some(delivery) = self.delivery.as_mut() {
            delivery.on_response(body_size);
        }
    }

    /// Envoy tears the VM down: records still waiting are sent first (`false` defers the
    /// shutdown until delivery calls `proxy_done`).
    fn on_done(&mut self) -> bool {
        self.delivery.as_mut().is_none_or(audit::Delivery::on_done)
    }
}

impl RootContext for WardenRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        if self.metrics.is_none() {
            self.metrics = Some(Rc::new(Metrics::define()));
        }
        follow_host_log_level();
        let text = match host::get_buffer(Buffer::PluginConfiguration, 0, plugin_configuration_size) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                log::error!("cannot read the plugin configuration (status {})", e.0);
                return false;
            }
        };
        match Gateway::new(&text, |name| std::env::var(name).ok()) {
            Ok(gateway) => {
                let gateway = gateway.with_ledger(Box::new(ledger::SharedData));
                if let Err(e) = crate::core::budget::ledger::init(gateway.ledger()) {
                    log::error!("cannot set up the budget ledger: {}", e.describe());
                    return false;
                }
                log::info!(
                    "policy loaded: {} roles, {} bindings",
                    gateway.policy.roles.len(),
                    gateway.policy.bindings.len()
                );
                let gateway = Rc::new(gateway);
                match audit::Delivery::start(&gateway, self.metrics.clone()) {
                    Ok(delivery) => self.delivery = delivery,
                    Err(e) => {
                        log::error!("cannot set up audit delivery (host status {})", e.0);
                        return false;
                    }
                }
                match leases::Leases::start(&gateway, self.metrics.clone()) {
                    Ok(leases) => self.leases = leases,
                    Err(e) => {
                        log::error!("cannot set up budget leases (host status {})", e.0);
                        return false;
                    }
                }
                match revocation::Revocations::start(&gateway, self.metrics.clone()) {
                    Ok(revocations) => self.revocations = revocations,
                    Err(e) => {
                        log::error!("cannot set up the revocation list (host status {})", e.0);
                        return false;
                    }
                }
                let budgets = gateway.policy.roles.iter().any(|role| !role.budgets.is_empty());
                let ticking = self.delivery.is_some() || self.leases.is_some() || self.revocations.is_some();
                if budgets && !ticking {
                    // Their ticks retry refused settlements too; without them, a tick of its own.
                    if let Err(e) = host::set_tick_period(UNSETTLED_TICK_MS) {
                        log::error!("cannot set the tick (host status {})", e.0);
                        return false;
                    }
                }
                self.gateway = Some(gateway);
                true
            }
            Err(errors) => {
                for error in &errors.0 {
                    log::error!("invalid policy: {error}");
                }
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let Some(gateway) = &self.gateway {
            gateway.retry_unsettled(host::now_millis());
        }
        if let Some(delivery) = self.delivery.as_mut() {
            delivery.on_tick();
        }
        if let Some(leases) = self.leases.as_mut() {
            leases.on_tick();
        }
        if let Some(revocations) = self.revocations.as_mut() {
            revocations.on_tick();
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(WardenHttp {
            gateway: self.gateway.clone(),
            metrics: self.metrics.clone(),
            outbox: self.delivery.as_ref().map(|d| d.outbox.clone()),
            lease_keys: self.leases.as_ref().map(|l| l.keys.clone()),
            revocation: self.revocations.as_ref().map(|r| r.watch.clone()),
            revocation_seen: 0,
            event_stream: false,
            revoked_cut: false,
            response_complete: false,
            decision: Cell::new(None),
            exchange: None,
            buffered: 0,
            had_content_length: false,
            tool_pause: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct WardenHttp {
    gateway: Option<Rc<Gateway>>,
    metrics: Option<Rc<Metrics>>,
    /// The worker's audit records waiting to leave (when the policy has `audit`).
    outbox: Option<Rc<RefCell<Outbox>>>,
    /// The worker's budget keys in use, renewed on the tick (when the policy leases budgets).
    lease_keys: Option<Rc<RefCell<KeysInUse>>>,
    /// The worker's revocation list (when the policy has `identity.revocation`).
    revocation: Option<Rc<revocation::Watch>>,
    /// The list's generation when this request's caller was last checked against it.
    revocation_seen: u64,
    /// Whether the answer is an event stream (read with the response headers).
    event_stream: bool,
    /// Whether the answer was ended because its caller was revoked: later bytes are dropped.
    revoked_cut: bool,
    /// Whether the response reached its end.
    response_complete: bool,
    /// The request's decision so far (a refusal after forwarding replaces it), counted once in
    /// `on_log`; `None` while none was made.
    decision: Cell<Option<(Decision, Option<Reason>)>>,
    /// The request's exchange, from its headers to its record: set for every request once a
    /// policy is loaded, and never dropped before `on_log` asks it for the record.
    exchange: Option<Exchange>,
    /// Body bytes buffered so far.
    buffered: usize,
    /// Whether the request declared a `content-length` (to be corrected after a rewrite).
    had_content_length: bool,
    /// How the response is paused while a tool call waits for a human (`None`: it is not).
    tool_pause: Option<ToolPause>,
}

/// A response paused at its end while a tool call in it waits for a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToolPause {
    /// An event stream: Envoy buffers the last chunk's bytes (`kept` of them, already
    /// delivered to the exchange); what the answer releases is appended.
    Stream {
        /// Bytes in Envoy's buffer.
        kept: usize,
    },
    /// A whole JSON answer (its headers held too): the answer replaces the body.
    Json,
}

impl Context for WardenHttp {
    /// The approval service answered (or Envoy reports the callout's failure as 503/504).
    fn on_http_call_response(&mut self, _token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let (Some(gateway), Some(exchange)) = (self.gateway.clone(), self.exchange.as_mut()) else { return };
        if exchange.awaits_tool_approval() {
            let status = host::call_response_status();
            let body = host::get_buffer(Buffer::HttpCallResponseBody, 0, body_size).unwrap_or_default();
            let answer = status.map(|status| (status, body.as_slice()));
            self.on_tool_answer(&gateway, answer);
            return;
        }
        if !exchange.is_held() {
            return;
        }
        let status = host::call_response_status();
        let body = host::get_buffer(Buffer::HttpCallResponseBody, 0, body_size).unwrap_or_default();
        let now = host::now_seconds().unwrap_or(0.0);
        let answer = status.map(|status| (status, body.as_slice()));
        let step = exchange.on_approval_answer(&gateway, answer, now);
        self.note_budget_keys();
        match step {
            ApprovalStep::Forward { clamped } => {
                self.count_approval(ApprovalOutcome::Approved);
                if let Err(e) = host::continue_request() {
                    self.fail_closed("resuming the approved request", e);
                } else {
                    self.count_forward(clamped);
                }
            }
            ApprovalStep::Reply(local) => {
                if let Some(outcome) = ApprovalOutcome::of_refusal(local.reason) {
                    self.count_approval(outcome);
                }
                self.reply(&local);
            }
        }
    }
}

impl HttpContext for WardenHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(gateway) = self.gateway.clone() else {
            // No policy: nothing can be judged, nor recorded.
            return self.reply(
                &Denial::new(Reason::InternalError, "no valid policy is loaded").to_reply(&request_id_for(None)),
            );
        };
        if self.outbox.is_some() {
            audit::mark_handled();
        }
        // Whatever cannot be read still gets an exchange: its refusal is recorded.
        let headers = host::get_headers(Map::RequestHeaders);
        let now = host::now_seconds();
        let token = read_token_status(&gateway.policy.identity);
        let no_headers = Vec::new();
        let find = |name: &str| {
            headers.as_ref().unwrap_or(&no_headers).iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
        };
        let head = RequestHead {
            method: find(":method").unwrap_or(""),
            path: find(":path").unwrap_or(""),
            headers: headers.as_ref().unwrap_or(&no_headers),
            token: token.clone().unwrap_or(TokenStatus::Missing),
            now: *now.as_ref().unwrap_or(&0.0),
        };
        self.had_content_length = find("content-length").is_some();
        let failed = [
            ("reading request headers", headers.as_ref().err()),
            ("reading the clock", now.as_ref().err()),
            ("reading jwt_authn metadata", token.as_ref().err()),
        ];
        if let Some((what, Some(e))) = failed.into_iter().find(|(_, e)| e.is_some()) {
            log::error!("{what} failed (host status {})", e.0);
            let denial = Denial::new(Reason::InternalError, format!("{what} failed"));
            let (exchange, local) = Exchange::turned_away(&gateway, &head, denial);
            self.exchange = Some(exchange);
            return self.reply(&local);
        }
        if self.outbox.as_ref().is_some_and(|outbox| !outbox.borrow().admits(millis(head.now))) {
            let detail = "audit records cannot be delivered to the audit service right now; retry later";
            let (exchange, local) =
                Exchange::turned_away(&gateway, &head, Denial::new(Reason::AuditUnavailable, detail));
            self.exchange = Some(exchange);
            return self.reply(&local);
        }
        if let Some(watch) = &self.revocation {
            self.revocation_seen = watch.generation();
            if let Err(denial) = watch.judge(&head.token, millis(head.now)) {
                let (exchange, local) = Exchange::turned_away(&gateway, &head, denial);
                self.exchange = Some(exchange);
                return self.reply(&local);
            }
        }
        let (exchange, step) = Exchange::start(&gateway, &head);
        self.exchange = Some(exchange);
        match step {
            HeadersStep::Reply(local) => self.reply(&local),
            HeadersStep::Forward(edits) => match apply_edits(&edits) {
                Ok(()) => self.forward(false),
                Err(e) => self.fail_closed("editing request headers", e),
            },
            HeadersStep::InspectBody(edits) => {
                if let Err(e) = apply_edits(&edits) {
                    return self.fail_closed("editing request headers", e);
                }
                if end_of_stream {
                    // No body will follow: judge the empty body now.
                    return self.finish_body(&gateway, Vec::new());
                }
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(exchange) = self.exchange.as_mut().filter(|e| e.wants_body()) else { return Action::Continue };
        if let Some(local) = exchange.on_body_progress(body_size) {
            return self.reply(&local);
        }
        self.buffered = body_size;
        if !end_of_stream {
            return Action::Pause;
        }
        self.read_and_finish(body_size)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // With trailers, the last body callback never says end_of_stream: judge the body here.
        if !self.exchange.as_ref().is_some_and(Exchange::wants_body) {
            return Action::Continue;
        }
        self.read_and_finish(self.buffered)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            self.response_complete = true;
        }
        let (Some(gateway), Some(exchange)) = (self.gateway.clone(), self.exchange.as_mut()) else {
            return Action::Continue;
        };
        if exchange.is_refused() {
            // Warden's own reply on its way out.
            return Action::Continue;
        }
        let headers = match host::get_headers(Map::ResponseHeaders) {
            Ok(headers) => headers,
            Err(e) => return self.fail_response("reading response headers", e),
        };
        if self.revocation.is_some() {
            self.event_stream =
                headers.iter().any(|(name, value)| name == "content-type" && crate::core::response::sse::is_event_stream(value));
        }
        match exchange.on_response_headers(&gateway, &headers) {
            ResponseStep::Pass | ResponseStep::Observe => Action::Continue,
            ResponseStep::Reply(local) => self.reply(&local),
            ResponseStep::Stream | ResponseStep::Buffer if end_of_stream => Action::Continue,
            step => {
                if let Err(e) = host::remove_header(Map::ResponseHeaders, "content-length") {
                    return self.fail_response("editing response headers", e);
                }
                if step == ResponseStep::Stream {
                    Action::Continue
                } else {
                    // Hold the headers: a blocked body is replaced by an error reply.
                    Action::Pause
                }
            }
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            self.response_complete = true;
        }
        if let Some(action) = self.cut_if_revoked(body_size, end_of_stream) {
            return action;
        }
        match self.response_mode() {
            ResponseMode::Observe => self.observe_chunk(body_size),
            ResponseMode::Stream => self.stream_chunk(body_size, end_of_stream),
            ResponseMode::Buffer if end_of_stream => self.finish_response_body(body_size),
            ResponseMode::Buffer => Action::Pause,
            ResponseMode::Pass | ResponseMode::Done => Action::Continue,
        }
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        // With trailers, the last body callback never says end_of_stream: finish here.
        self.response_complete = true;
        match self.response_mode() {
            ResponseMode::Stream => self.stream_chunk(0, true),
            ResponseMode::Buffer => {
                let size = host::get_buffer(Buffer::ResponseBody, 0, usize::MAX).map(|b| b.len()).unwrap_or(0);
                self.finish_response_body(size)
            }
            ResponseMode::Observe | ResponseMode::Pass | ResponseMode::Done => Action::Continue,
        }
    }

    fn on_log(&mut self) {
        // Budgets are settled whether or not the policy keeps records (the record, when made,
        // carries the same settlement).
        let recorded = self.record_exchange();
        if let (Some(gateway), Some(exchange)) = (self.gateway.clone(), self.exchange.as_mut()) {
            exchange.settle(&gateway, host::now_millis());
        }
        self.note_budget_keys();
        self.count_exchange(recorded);
        let Some(exchange) = &self.exchange else { return };
        let tally = exchange.tally();
        if tally.is_empty() {
            return;
        }
        log::info!("{} dlp: {tally}", exchange.request_id);
        if let Some(metrics) = &self.metrics {
            metrics.dlp(&tally);
        }
    }
}

impl WardenHttp {
    /// How the exchange wants the response body handled (passed when there is none).
    fn response_mode(&self) -> ResponseMode {
        self.exchange.as_ref().map_or(ResponseMode::Pass, Exchange::response_mode)
    }

    /// Ends a live answer whose caller was revoked since the request was judged
    /// (`identity.revocation.cut_streams`): this chunk up to its first event end, then an SSE
    /// `event: error` (`revoked`), and nothing after — later chunks are dropped and the stream
    /// reset so the upstream stops. The exchange records the refusal. `None`: carry on.
    fn cut_if_revoked(&mut self, size: usize, end: bool) -> Option<Action> {
        if self.revoked_cut {
            if let Err(e) = host::set_buffer(Buffer::ResponseBody, 0, size, &[]) {
                return Some(self.fail_response("dropping bytes after the revocation", e));
            }
            if !end {
                if let Err(e) = host::close_response_stream() {
                    log::error!("resetting the revoked caller's stream failed (host status {})", e.0);
                }
            }
            return Some(Action::Continue);
        }
        if !self.event_stream {
            return None;
        }
        let (watch, gateway) = (self.revocation.clone()?, self.gateway.clone()?);
        let now = host::now_millis();
        let denial = {
            let caller = self.exchange.as_ref().filter(|e| !e.is_refused())?.caller()?;
            watch.revoked_since(&mut self.revocation_seen, caller, now)?
        };
        let chunk = match host::get_buffer(Buffer::ResponseBody, 0, size) {
            Ok(chunk) => chunk,
            Err(e) => return Some(self.fail_response("reading the revoked caller's stream", e)),
        };
        let exchange = self.exchange.as_mut()?;
        let delivered = if exchange.response_mode() == ResponseMode::Stream {
            exchange.on_response_chunk(&gateway, &chunk)
        } else {
            chunk
        };
        let out = crate::core::revocation::cut_stream(&delivered, &denial);
        exchange.on_delivered(&out, now);
        let reply = exchange.refuse(denial);
        self.decision.set(Some((Decision::Denied, Some(reply.reason))));
        self.revoked_cut = true;
        if let Some(metrics) = &self.metrics {
            metrics.revoked_stream_cut();
        }
        if let Err(e) = host::set_buffer(Buffer::ResponseBody, 0, size, &out) {
            return Some(self.fail_response("ending the revoked caller's stream", e));
        }
        Some(Action::Continue)
    }

    /// Hands a copy of a passing response chunk to the audit record.
    fn observe_chunk(&mut self, size: usize) -> Action {
        let Some(exchange) = self.exchange.as_mut() else { return Action::Continue };
        if size > 0 {
            if let Ok(chunk) = host::get_buffer(Buffer::ResponseBody, 0, size) {
                exchange.on_delivered(&chunk, host::now_millis());
            }
        }
        Action::Continue
    }

    /// Queues the exchange's audit record (when the policy has `audit`); the exchange makes it
    /// once, whatever path the request took. Returns the model the answer reported and the
    /// record's usage, for the metrics.
    fn record_exchange(&mut self) -> Option<(Option<String>, TokenCounts)> {
        let (Some(outbox), Some(gateway)) = (self.outbox.clone(), self.gateway.clone()) else { return None };
        let exchange = self.exchange.as_mut()?;
        let ending = Ending {
            at_ms: host::now_millis(),
            response_complete: self.response_complete,
            client_gone: client_went_away(),
        };
        let record = exchange.finish_record(&gateway, ending)?;
        let reported = record.response.as_ref().and_then(|r| r.transcript.model.clone());
        let tokens = TokenCounts::from(&record.usage);
        audit::enqueue(&outbox, record, self.metrics.as_deref());
        Some((reported, tokens))
    }

    /// Counts the ended exchange in the metrics: its final decision, the budget that refused
    /// it or cut its answer, and its tokens and cost — once: from the budget settlement when the
    /// exchange has one (it prices the usage), else from the audit record's usage.
    fn count_exchange(&self, recorded: Option<(Option<String>, TokenCounts)>) {
        let Some(metrics) = &self.metrics else { return };
        if let Some((decision, reason)) = self.decision.get() {
            metrics.request(self.role().map(|role| role.name.as_str()), decision, reason);
        }
        let Some(exchange) = &self.exchange else { return };
        if let Some(budget) = exchange.budget_refusal() {
            metrics.budget_refused(budget);
        }
        if let Some(budget) = exchange.stream_cut().and_then(|cut| cut.budget.as_deref()) {
            metrics.stream_cut(budget);
        }
        let Some(role) = self.role() else { return };
        for governed in exchange.tool_calls() {
            metrics.tool_call(&role.name, governed.action_label(), governed.outcome.label());
        }
        let reported = recorded.as_ref().and_then(|(model, _)| model.as_deref());
        match (exchange.settlement(), &recorded) {
            (Some(settled), _) => {
                let model = reported.or(Some(settled.model.as_str()));
                metrics.usage(&role.name, &role.models, model, &TokenCounts::from(&settled.usage), settled.cost_nanos);
            }
            (None, Some((_, tokens))) => metrics.usage(&role.name, &role.models, reported, tokens, None),
            (None, None) => {}
        }
    }

    /// The role the request is bound to, once known.
    fn role(&self) -> Option<&Role> {
        let caller = self.exchange.as_ref()?.caller()?;
        self.gateway.as_ref()?.policy.roles.get(caller.role)
    }

    /// Notes the budget keys the exchange was checked against for lease renewal (with leases).
    fn note_budget_keys(&self) {
        if let (Some(keys), Some(exchange)) = (&self.lease_keys, &self.exchange) {
            leases::note(keys, exchange);
        }
    }

    /// Counts how a held request's approval ended.
    fn count_approval(&self, outcome: ApprovalOutcome) {
        if let Some(metrics) = &self.metrics {
            metrics.approval(outcome);
        }
    }

    fn read_and_finish(&mut self, body_size: usize) -> Action {
        let body = match host::get_buffer(Buffer::RequestBody, 0, body_size) {
            Ok(body) => body,
            Err(e) => return self.fail_closed("reading the request body", e),
        };
        match self.gateway.clone() {
            Some(gateway) => self.finish_body(&gateway, body),
            None => Action::Continue,
        }
    }

    fn finish_body(&mut self, gateway: &Gateway, body: Vec<u8>) -> Action {
        let Some(exchange) = self.exchange.as_mut().filter(|e| e.wants_body()) else { return Action::Continue };
        let step = exchange.on_body_complete(gateway, &body);
        self.note_budget_keys();
        match step {
            BodyStep::Forward => self.forward(false),
            BodyStep::Reply(local) => self.reply(&local),
            BodyStep::Replace { body: bytes, clamped } => match self.replace_request_body(body.len(), &bytes) {
                Ok(()) => self.forward(clamped),
                Err(e) => self.fail_closed("rewriting the request body", e),
            },
            BodyStep::Hold { body: bytes, callout, .. } => {
                if let Some(bytes) = bytes {
                    if let Err(e) = self.replace_request_body(body.len(), &bytes) {
                        return self.fail_closed("rewriting the request body", e);
                    }
                }
                self.hold(gateway, &callout)
            }
        }
    }

    /// Replaces the buffered request body (and `content-length`, when the request had one).
    fn replace_request_body(&self, old_size: usize, bytes: &[u8]) -> Result<(), HostError> {
        host::set_buffer(Buffer::RequestBody, 0, old_size, bytes)?;
        if self.had_content_length {
            host::set_header(Map::RequestHeaders, "content-length", &bytes.len().to_string())?;
        }
        Ok(())
    }

    /// Keeps the request paused and asks the approval service; a callout that cannot even be
    /// sent is judged as no answer (the request is refused at once).
    fn hold(&mut self, gateway: &Gateway, callout: &Callout) -> Action {
        match self.send_callout(callout) {
            Ok(()) => {
                if let Some(metrics) = &self.metrics {
                    metrics.held();
                }
                Action::Pause
            }
            Err(e) => {
                let Some(exchange) = self.exchange.as_mut() else { return Action::Continue };
                log::error!(
                    "{} calling the approval service (cluster {:?}) failed (host status {})",
                    exchange.request_id,
                    callout.cluster,
                    e.0
                );
                let now = host::now_seconds().unwrap_or(0.0);
                match exchange.on_approval_answer(gateway, None, now) {
                    ApprovalStep::Reply(local) => {
                        self.count_approval(ApprovalOutcome::Error);
                        self.reply(&local)
                    }
                    // Without an answer nothing approves; refuse even if that ever changed.
                    ApprovalStep::Forward { .. } => {
                        let local = exchange.on_host_failure("approving without an answer");
                        self.reply(&local)
                    }
                }
            }
        }
    }

    /// Sends a callout to the approval service (its answer arrives in `on_http_call_response`).
    fn send_callout(&self, callout: &Callout) -> Result<(), HostError> {
        let request_id = self.exchange.as_ref().map_or("", |e| e.request_id.as_str());
        let authorization = format!("Bearer {}", callout.bearer.expose());
        let headers = [
            (":method", "POST"),
            (":path", callout.path.as_str()),
            (":authority", callout.authority.as_str()),
            ("content-type", "application/json"),
            ("authorization", authorization.as_str()),
            ("x-request-id", request_id),
        ];
        host::dispatch_http_call(&callout.cluster, &headers, &callout.body, callout.timeout_ms).map(|_token| ())
    }

    /// Rewrites one chunk of an event stream in place (`end` also flushes what was held back).
    fn stream_chunk(&mut self, size: usize, end: bool) -> Action {
        let (Some(gateway), Some(exchange)) = (self.gateway.clone(), self.exchange.as_mut()) else {
            return Action::Continue;
        };
        if exchange.stream_cut().is_some() {
            // The ending went out with an earlier chunk: drop these bytes, and reset the stream
            // so the upstream stops generating (unless it just ended by itself).
            if let Err(e) = host::set_buffer(Buffer::ResponseBody, 0, size, &[]) {
                return self.fail_response("dropping bytes after the stream cut", e);
            }
            if !end {
                if let Err(e) = host::close_response_stream() {
                    log::error!("{} resetting the cut stream failed (host status {})", exchange.request_id, e.0);
                }
            }
            return Action::Continue;
        }
        let chunk = if size > 0 {
            match host::get_buffer(Buffer::ResponseBody, 0, size) {
                Ok(chunk) => chunk,
                Err(e) => return self.fail_response("reading the response stream", e),
            }
        } else {
            Vec::new()
        };
        let mut out = exchange.on_response_chunk(&gateway, &chunk);
        if end {
            out.extend(exchange.on_response_end(&gateway));
        }
        out.extend(self.ask_about_tool_calls(&gateway));
        let Some(exchange) = self.exchange.as_mut() else { return Action::Continue };
        exchange.on_delivered(&out, host::now_millis());
        if out != chunk {
            if let Err(e) = host::set_buffer(Buffer::ResponseBody, 0, size, &out) {
                return self.fail_response("rewriting the response stream", e);
            }
        }
        if end && exchange.awaits_tool_approval() {
            // The upstream ended while a call waits: Envoy keeps these bytes and the stream's
            // end until the answer (docs/tools.md, "Approvals and session grants").
            self.tool_pause = Some(ToolPause::Stream { kept: out.len() });
            return Action::Pause;
        }
        Action::Continue
    }

    /// Sends the callout about a tool call that waits for a human, when the exchange has one;
    /// a callout that cannot be sent is answered as no answer at once (the call is refused),
    /// and the bytes that releases are returned (then the next waiting call is asked about).
    fn ask_about_tool_calls(&mut self, gateway: &Gateway) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(exchange) = self.exchange.as_mut() {
            let Some(callout) = exchange.take_tool_callout() else { break };
            match self.send_callout(&callout) {
                Ok(()) => break,
                Err(e) => {
                    let Some(exchange) = self.exchange.as_mut() else { break };
                    log::error!(
                        "{} asking the approval service about a tool call failed (host status {})",
                        exchange.request_id,
                        e.0
                    );
                    let now = host::now_seconds().unwrap_or(0.0);
                    out.extend(exchange.on_tool_approval_answer(gateway, None, now).bytes);
                }
            }
        }
        out
    }

    /// The approval service answered about a held tool call: delivers what that releases and,
    /// once the answer is complete, resumes the paused response.
    fn on_tool_answer(&mut self, gateway: &Gateway, answer: Option<(u16, &[u8])>) {
        let Some(exchange) = self.exchange.as_mut() else { return };
        let now = host::now_seconds().unwrap_or(0.0);
        let step = exchange.on_tool_approval_answer(gateway, answer, now);
        let mut bytes = step.bytes;
        bytes.extend(self.ask_about_tool_calls(gateway));
        let Some(exchange) = self.exchange.as_mut() else { return };
        let done = !exchange.awaits_tool_approval();
        let written = match self.tool_pause {
            None => return,
            Some(ToolPause::Stream { kept }) => {
                self.tool_pause = Some(ToolPause::Stream { kept: kept.saturating_add(bytes.len()) });
                exchange.on_delivered(&bytes, host::now_millis());
                // At or past the buffer's end, Envoy appends.
                if bytes.is_empty() {
                    Ok(())
                } else {
                    host::set_buffer(Buffer::ResponseBody, kept, 0, &bytes)
                }
            }
            Some(ToolPause::Json) if done => {
                exchange.on_delivered(&bytes, host::now_millis());
                host::set_buffer(Buffer::ResponseBody, 0, usize::MAX, &bytes)
            }
            Some(ToolPause::Json) => Ok(()),
        };
        if let Err(e) = written {
            self.fail_response("delivering a decided tool call", e);
            return;
        }
        if done {
            self.tool_pause = None;
            if let Err(e) = host::continue_response() {
                log::error!("resuming the response after a tool call's approval failed (host status {})", e.0);
            }
        }
    }

    /// Masks (and, for a model list, filters) a complete buffered response body, or replaces the
    /// response with a refusal.
    fn finish_response_body(&mut self, size: usize) -> Action {
        let (Some(gateway), Some(exchange)) = (self.gateway.clone(), self.exchange.as_mut()) else {
            return Action::Continue;
        };
        let body = match host::get_buffer(Buffer::ResponseBody, 0, size) {
            Ok(body) => body,
            Err(e) => return self.fail_response("reading the response body", e),
        };
        let step = exchange.on_response_body(&gateway, &body);
        let now = host::now_millis();
        match step {
            ResponseBodyStep::Deliver => {
                exchange.on_delivered(&body, now);
                Action::Continue
            }
            ResponseBodyStep::Replace(bytes) => match host::set_buffer(Buffer::ResponseBody, 0, body.len(), &bytes) {
                Ok(()) => {
                    exchange.on_delivered(&bytes, now);
                    Action::Continue
                }
                Err(e) => self.fail_response("rewriting the response body", e),
            },
            ResponseBodyStep::Reply(local) => self.reply(&local),
            ResponseBodyStep::Hold => {
                self.tool_pause = Some(ToolPause::Json);
                let bytes = self.ask_about_tool_calls(&gateway);
                let Some(exchange) = self.exchange.as_mut() else { return Action::Continue };
                if exchange.awaits_tool_approval() {
                    return Action::Pause;
                }
                // Nobody could be asked: the calls were refused at once.
                self.tool_pause = None;
                match host::set_buffer(Buffer::ResponseBody, 0, body.len(), &bytes) {
                    Ok(()) => {
                        exchange.on_delivered(&bytes, now);
                        Action::Continue
                    }
                    Err(e) => self.fail_response("rewriting the response body", e),
                }
            }
        }
    }

    /// A host call failed while masking a response: never deliver it unmasked.
    fn fail_response(&mut self, what: &str, error: HostError) -> Action {
        // Replace whatever is buffered by nothing, then reset via a local reply.
        let _ = host::set_buffer(Buffer::ResponseBody, 0, usize::MAX, &[]);
        self.fail_closed(what, error)
    }

    /// A host call failed: the exchange refuses the request (and records it) rather than pass
    /// it unchecked.
    fn fail_closed(&mut self, what: &str, error: HostError) -> Action {
        log::error!("{what} failed (host status {})", error.0);
        let local = match self.exchange.as_mut() {
            Some(exchange) => exchange.on_host_failure(what),
            None => Denial::new(Reason::InternalError, format!("{what} failed")).to_reply(&request_id_for(None)),
        };
        self.reply(&local)
    }

    /// Sends a local reply and stops the request.
    fn reply(&self, local: &LocalReply) -> Action {
        self.decision.set(Some((Decision::Denied, Some(local.reason))));
        if let Err(e) = host::send_reply(local.status, &local.headers, &local.body) {
            log::error!("sending a local reply failed (status {})", e.0);
        }
        Action::Pause
    }

    /// Lets the request go on to the upstream.
    fn forward(&self, clamped: bool) -> Action {
        self.count_forward(clamped);
        Action::Continue
    }

    /// Notes a forwarded request's decision (a later refusal of its response replaces it).
    fn count_forward(&self, clamped: bool) {
        let decision = if clamped { Decision::Clamped } else { Decision::Allowed };
        self.decision.set(Some((decision, None)));
    }
}

/// Whether Envoy ended the stream because the client disconnected.
fn client_went_away() -> bool {
    host::get_property(&["response", "code_details"])
        .ok()
        .flatten()
        .is_some_and(|details| String::from_utf8_lossy(&details).contains("downstream"))
}

/// Removes, then sets, request headers as the core asked.
fn apply_edits(edits: &HeaderEdits) -> Result<(), HostError> {
    for name in &edits.remove {
        host::remove_header(Map::RequestHeaders, name)?;
    }
    host::set_header(Map::RequestHeaders, "x-api-key", edits.api_key.expose())
}

/// Reads what `jwt_authn` left in dynamic metadata: the verified payload under the policy's
/// `identity.payload_metadata_key` (one host call; with `{issuer}`, one per provider until
/// found, in policy order), or else the failure status (Istio leaves none).
fn read_token_status(identity: &IdentityPolicy) -> Result<TokenStatus, HostError> {
    let read = |key: &str| {
        let [a, b, c] = JWT_METADATA;
        host::get_property(&[a, b, c, key])
    };
    let payload = match &identity.payload_key {
        PayloadKey::Fixed(key) => read(key)?,
        PayloadKey::PerIssuer => {
            let mut found = None;
            for provider in &identity.providers {
                found = read(&provider.issuer)?;
                if found.is_some() {
                    break;
                }
            }
            found
        }
    };
    if let Some(payload) = payload {
        return Ok(TokenStatus::Verified(decode_claims(&payload, identity)));
    }
    let mut path: Vec<&str> = JWT_METADATA.to_vec();
    path.extend_from_slice(&[FAILURE_KEY, "message"]);
    let message = host::get_property(&path)?.and_then(|bytes| decode_text(&bytes));
    Ok(TokenStatus::from_failure(message.as_deref()))
}

/// Routes the `log` crate to Envoy's log, and panics (which must never happen) to a critical line.
fn install_logger() {
    struct HostLogger;
    impl log::Log for HostLogger {
        fn enabled(&self, metadata: &log::Metadata) -> bool {
            metadata.level() <= log::max_level()
        }
        fn log(&self, record: &log::Record) {
            let level = match record.level() {
                log::Level::Trace => 0,
                log::Level::Debug => 1,
                log::Level::Info => 2,
                log::Level::Warn => 3,
                log::Level::Error => 4,
            };
            host::log(level, &record.args().to_string());
        }
        fn flush(&self) {}
    }
    static LOGGER: HostLogger = HostLogger;
    if log::set_logger(&LOGGER).is_ok() {
        // The host's level cannot be read during start-up; on_configure adopts it.
        log::set_max_level(log::LevelFilter::Info);
    }
    std::panic::set_hook(Box::new(|info| host::log(5, &format!("panic: {info}"))));
}

/// Logs what Envoy's `wasm` log level lets through (`--component-log-level wasm:debug` shows
/// every allowed request), so formatting is skipped for lines Envoy would drop.
fn follow_host_log_level() {
    let level = match host::log_level() {
        Ok(0) => log::LevelFilter::Trace,
        Ok(1) => log::LevelFilter::Debug,
        Ok(2) | Err(_) => log::LevelFilter::Info,
        Ok(3) => log::LevelFilter::Warn,
        Ok(4) => log::LevelFilter::Error,
        Ok(_) => log::LevelFilter::Off,
    };
    log::set_max_level(level);
}

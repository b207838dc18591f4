//! Audit delivery (docs/audit.md): records leave on the root context's tick, never on the request
//! path.
//!
//! Each worker VM has one [`Outbox`] shared by its root context and its HTTP contexts (same
//! thread). At the end of an exchange, [`enqueue`] numbers its record from a counter in Envoy's
//! shared data (one gap-free sequence for all workers) and queues it. Every [`TICK_MS`] the root
//! context sends the next batch (NDJSON) to `warden serve` with `dispatch_http_call`, and after
//! each judged batch the next one at once if a full batch waits. What the answer means is the
//! core's rule ([`judge`]); what it changes is the outbox's ([`Outbox::answered`]): stored records'
//! blobs become known to the worker's memo, a refused record is replaced by its stand-in (logged
//! and counted in `warden.audit.stood_in`), anything not judged is sent again.
//!
//! The gateway's source name is chosen once per Envoy start by the first VM to configure and
//! shared by all: the policy's `audit.source` followed by a per-start epoch (`<source>-<12 hex>`),
//! or `gw-<12 hex>`; so a restarted gateway never reuses a `(source, seq)` an earlier run stored.
//!
//! Shutdown: when Envoy tears a VM down, the root context's `on_done` returns `false` while
//! records wait; the tick then sends every batch at once (the open summary closed) until the
//! outbox is empty or [`DRAIN_MS`] have passed, then calls `proxy_done`. Records still queued
//! then are named in Envoy's log as lost at shutdown.
//!
//! The access log: every request the filter handles gets `audit_record=unrecorded` when it
//! starts ([`mark_handled`]), replaced by its record's id and hash when the record is queued
//! (a request counted in a summary shows the summary's id and `audit_hash=summary`; one the full
//! queue dropped shows `audit_hash=dropped`), so `warden audit verify --access-log` can tell a
//! filter-handled request without a record from a route the filter never saw.

use super::host::{self, HostError};
use super::metrics::Metrics;
use crate::core::audit::outbox::{judge, Dropped, Outbox, DROPPED_HASH};
use crate::core::audit::record::Record;
use crate::core::exchange::Gateway;
use crate::core::hex::hex;
use crate::core::policy::audit::AuditSettings;
use crate::core::secret::Secret;
use std::cell::RefCell;
use std::rc::Rc;

/// How often the root context sends records, in milliseconds.
pub const TICK_MS: u32 = 200;
/// Shared-data key of the record sequence.
const SEQ_KEY: &str = "warden.audit.seq";
/// Shared-data key of the gateway's source name.
const SOURCE_KEY: &str = "warden.audit.source";
/// Stream property (filter state `wasm.…`) naming the exchange's record, for the access log.
const RECORD_PROPERTY: &str = "warden_audit_record";
/// Stream property holding the record's hash, for the access log.
const HASH_PROPERTY: &str = "warden_audit_hash";
/// Longest wait for the service to acknowledge a batch, in milliseconds.
const CALL_TIMEOUT_MS: u64 = 10_000;
/// Least time between two "records dropped" log lines, in milliseconds.
const DROP_LOG_EVERY_MS: u64 = 60_000;
/// Longest time a shutting-down VM keeps sending its records, in milliseconds.
pub const DRAIN_MS: u64 = 20_000;
/// Most record ids a "lost at shutdown" log line names (`verify --access-log` names them all).
const LOST_IDS_SHOWN: usize = 100;
/// Tick period while draining at shutdown, in milliseconds.
const DRAIN_TICK_MS: u32 = 50;
/// The access log's `audit_record` of a filter-handled request until its record is queued.
const UNRECORDED: &str = "unrecorded";

/// The root context's side: the outbox, where it goes, and the batch in flight.
pub struct Delivery {
    /// The worker's records (shared with its HTTP contexts).
    pub outbox: Rc<RefCell<Outbox>>,
    settings: AuditSettings,
    token: Secret,
    /// Lines in the batch in flight (`None`: no batch in flight).
    in_flight: Option<usize>,
    dropped_logged: u64,
    last_drop_log_ms: u64,
    metrics: Option<Rc<Metrics>>,
    gateway: Rc<Gateway>,
    /// When the shutdown's drain gives up (`None`: not shutting down).
    draining_until: Option<u64>,
    /// This worker's part of the `warden.audit.waiting` gauge.
    reported_waiting: i64,
}

impl Delivery {
    /// Sets up delivery for a policy with `audit` (`Ok(None)` without): the shared sequence, the
    /// source name and the tick.
    pub fn start(gateway: &Rc<Gateway>, metrics: Option<Rc<Metrics>>) -> Result<Option<Self>, HostError> {
        let (Some(settings), Some(token)) = (gateway.policy.audit.clone(), gateway.audit_token().cloned()) else {
            return Ok(None);
        };
        host::init_shared_counter(SEQ_KEY)?;
        let source = shared_source(settings.source.as_deref())?;
        host::set_tick_period(TICK_MS)?;
        let outbox = Outbox::new(
            &source,
            settings.buffer_records,
            settings.buffer_bytes,
            settings.mode,
            settings.max_outage_seconds,
        );
        log::info!("audit: records go to cluster {} as source {source}", settings.cluster);
        Ok(Some(Self {
            outbox: Rc::new(RefCell::new(outbox)),
            settings,
            token,
            in_flight: None,
            dropped_logged: 0,
            last_drop_log_ms: 0,
            metrics,
            gateway: Rc::clone(gateway),
            draining_until: None,
            reported_waiting: 0,
        }))
    }

    /// Sends the next batch, if one is due and none is in flight; while shutting down, finishes
    /// the shutdown once nothing waits or the drain ran out of time.
    pub fn on_tick(&mut self) {
        let now = host::now_millis();
        self.log_drops(now);
        self.report_waiting();
        if let Some(until) = self.draining_until {
            if self.outbox.borrow().is_empty() && self.in_flight.is_none() {
                return self.finish_shutdown();
            }
            if now >= until {
                self.give_up();
                return self.finish_shutdown();
            }
        }
        self.send_next(now);
    }

    /// Brings this worker's part of the `warden.audit.waiting` gauge (records not yet stored,
    /// the open summary included) up to date: a launcher draining the gateway before it stops
    /// it waits for the gauge to reach 0.
    fn report_waiting(&mut self) {
        let waiting = i64::try_from(self.outbox.borrow().len()).unwrap_or(i64::MAX);
        if waiting != self.reported_waiting {
            if let Some(metrics) = &self.metrics {
                metrics.audit_waiting(waiting - self.reported_waiting);
            }
            self.reported_waiting = waiting;
        }
    }

    /// Envoy tears the VM down: `true` when nothing waits, else `false` and the drain starts
    /// (finished by `proxy_done`).
    pub fn on_done(&mut self) -> bool {
        if self.outbox.borrow().is_empty() && self.in_flight.is_none() {
            return true;
        }
        let now = host::now_millis();
        log::info!("audit: shutting down with {} records waiting; sending them", self.outbox.borrow().len());
        self.draining_until = Some(now.saturating_add(DRAIN_MS));
        let _ = host::set_tick_period(DRAIN_TICK_MS);
        self.send_next(now);
        false
    }

    fn finish_shutdown(&mut self) {
        self.draining_until = None;
        let _ = host::set_tick_period(0);
        if let Err(e) = host::done() {
            log::warn!("audit: finishing the shutdown failed (host status {})", e.0);
        }
    }

    /// The drain ran out of time: names what is lost.
    fn give_up(&mut self) {
        let ids = self.outbox.borrow().waiting_ids();
        if let Some(metrics) = &self.metrics {
            metrics.audit_dropped(ids.len() as u64);
        }
        let shown = ids.iter().take(LOST_IDS_SHOWN).cloned().collect::<Vec<_>>().join(" ");
        let more = if ids.len() > LOST_IDS_SHOWN { " …" } else { "" };
        log::error!(
            "audit: lost at shutdown: {} records could not be delivered within {} s: {shown}{more}",
            ids.len(),
            DRAIN_MS / 1000,
        );
    }

    /// Sends the next batch unless one is in flight or none is due.
    fn send_next(&mut self, now: u64) {
        if self.in_flight.is_some() {
            return;
        }
        let flush = self.draining_until.is_some();
        let Some(batch) = self.outbox.borrow_mut().next_batch(now, flush) else { return };
        let lines = batch.iter().filter(|b| **b == b'\n').count();
        let endpoint = host::Endpoint {
            cluster: &self.settings.cluster,
            authority: &self.settings.authority,
            path: &self.settings.records_path,
            token: &self.token,
        };
        match host::post(&endpoint, "application/x-ndjson", &batch, CALL_TIMEOUT_MS) {
            Ok(_) => self.in_flight = Some(lines),
            Err(e) => {
                log::warn!("audit: sending records to cluster {} failed (host status {})", self.settings.cluster, e.0);
                self.outbox.borrow_mut().answered(judge(None, b"", lines), now);
            }
        }
    }

    /// The service answered the batch in flight (`body_size` bytes of answer).
    pub fn on_response(&mut self, body_size: usize) {
        let Some(sent) = self.in_flight.take() else { return };
        let now = host::now_millis();
        let status = host::call_response_status();
        let body = host::get_buffer(host::Buffer::HttpCallResponseBody, 0, body_size).unwrap_or_default();
        let answer = judge(status.map(u32::from), &body, sent);
        let delivered = self.outbox.borrow_mut().answered(answer, now);
        if let Some(memo) = self.gateway.audit_blobs() {
            memo.borrow_mut().acknowledge(delivered.blobs.iter().map(String::as_str));
        }
        for (id, reason) in &delivered.stood_in {
            log::error!("audit: warden serve refused record {id} ({reason}); a stand-in takes its place in the trail");
        }
        for (id, reason) in &delivered.lost {
            log::error!("audit: warden serve refused the stand-in of record {id} ({reason}); the record is lost");
        }
        if let Some(metrics) = &self.metrics {
            metrics.audit_stood_in(delivered.stood_in.len() as u64);
            metrics.audit_dropped(delivered.lost.len() as u64);
        }
        self.report_waiting();
        if delivered.retry {
            log::warn!(
                "audit: warden serve did not store records (HTTP {}); {} waiting, retrying",
                status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                self.outbox.borrow().len()
            );
            return;
        }
        // A full batch waiting (a busy worker queues faster than one batch per tick) goes at
        // once, so delivery keeps up with any rate the service can store; fewer records wait
        // for the tick, so a batch is never sent for a handful. A shutdown sends everything.
        if self.outbox.borrow().full_batch_waiting() || self.draining_until.is_some() {
            self.send_next(now);
        }
        if self.draining_until.is_some() && self.outbox.borrow().is_empty() && self.in_flight.is_none() {
            self.finish_shutdown();
        }
    }

    /// Logs records dropped (`fail_open`) at most once a minute.
    fn log_drops(&mut self, now: u64) {
        let dropped = self.outbox.borrow().dropped();
        if dropped > self.dropped_logged && now.saturating_sub(self.last_drop_log_ms) >= DROP_LOG_EVERY_MS {
            log::error!(
                "audit: {} records dropped in this worker ({} since the last report): the audit service is not keeping up",
                dropped,
                dropped - self.dropped_logged
            );
            self.dropped_logged = dropped;
            self.last_drop_log_ms = now;
        }
    }
}

/// The gateway's source name for this Envoy start, chosen by the first VM to configure (Envoy's
/// main thread, before any worker serves) and read by the others: `<configured>-<epoch>` or
/// `gw-<epoch>`, the epoch being 12 hex digits drawn from the start time in nanoseconds.
pub(super) fn shared_source(configured: Option<&str>) -> Result<String, HostError> {
    let key = format!("{SOURCE_KEY}.{}", configured.unwrap_or("-"));
    if let Some((bytes, _)) = host::get_shared(&key)? {
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    let nanos = host::now_seconds().map(|s| (s * 1e9) as u64).unwrap_or(0);
    let digest = hmac_sha256::Hash::hash(&nanos.to_le_bytes());
    let epoch = hex(digest.get(..6).unwrap_or_default());
    let source = format!("{}-{epoch}", configured.unwrap_or("gw"));
    host::set_shared(&key, source.as_bytes(), 0)?;
    Ok(source)
}

/// Marks the request as handled by the filter in the access log (`audit_record=unrecorded`)
/// until its record is queued.
pub fn mark_handled() {
    let _ = host::set_property(&[RECORD_PROPERTY], UNRECORDED.as_bytes());
}

fn show(id: &str, hash: &str) {
    for (name, value) in [(RECORD_PROPERTY, id), (HASH_PROPERTY, hash)] {
        if let Err(e) = host::set_property(&[name], value.as_bytes()) {
            log::warn!("audit: the access log cannot show record {id} (host status {})", e.0);
        }
    }
}

/// Numbers an exchange's record and queues it, and shows its id and hash to Envoy's access log
/// (filter state `wasm.warden_audit_record` and `wasm.warden_audit_hash`). A record that cannot
/// be numbered or queued is counted as dropped (and, with `fail_closed`, the next requests are
/// refused while the queue is full); its access-log line says so.
pub fn enqueue(outbox: &RefCell<Outbox>, record: Record, metrics: Option<&Metrics>) {
    let now = host::now_millis();
    let mut next_seq = || match host::next_shared_counter(SEQ_KEY) {
        Ok(seq) => Some(seq),
        Err(e) => {
            log::error!("audit: numbering a record failed (host status {}); it is dropped", e.0);
            None
        }
    };
    let pushed = outbox.borrow_mut().push(&record, now, &mut next_seq);
    match pushed {
        Ok(receipt) => show(&receipt.id, &receipt.hash),
        Err(Dropped { id }) => {
            show(id.as_deref().unwrap_or(DROPPED_HASH), DROPPED_HASH);
            if let Some(metrics) = metrics {
                metrics.audit_dropped(1);
            }
        }
    }
}

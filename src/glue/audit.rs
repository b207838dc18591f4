//! Audit delivery (docs/audit.md): records leave on the root context's tick, never on the request
//! path.
//!
//! Each worker VM has one [`Outbox`] shared by its root context and its HTTP contexts (same
//! thread). At the end of an exchange, [`enqueue`] numbers its record from a counter in Envoy's
//! shared data (one gap-free sequence for all workers) and queues it. Every [`TICK_MS`] the root
//! context sends the next batch (NDJSON) to `warden serve` with `dispatch_http_call`, and after
//! each acknowledged batch the next one at once if a full batch waits. Only a 200 acknowledges a
//! batch; a 400 or 409 (a batch the service can never take) drops it, loudly; anything else puts
//! it back for a retry. The gateway's source name is the policy's `audit.source` or a random one
//! chosen by the first VM to configure and shared by all.

use super::host::{self, HostError};
use super::metrics::Metrics;
use crate::core::audit::outbox::Outbox;
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

/// The root context's side: the outbox, where it goes, and the batch in flight.
pub struct Delivery {
    /// The worker's records (shared with its HTTP contexts).
    pub outbox: Rc<RefCell<Outbox>>,
    settings: AuditSettings,
    token: Secret,
    in_flight: bool,
    dropped_logged: u64,
    last_drop_log_ms: u64,
    metrics: Option<Rc<Metrics>>,
}

impl Delivery {
    /// Sets up delivery for a policy with `audit` (`Ok(None)` without): the shared sequence, the
    /// source name and the tick.
    pub fn start(gateway: &Gateway, metrics: Option<Rc<Metrics>>) -> Result<Option<Self>, HostError> {
        let (Some(settings), Some(token)) = (gateway.policy.audit.clone(), gateway.audit_token().cloned()) else {
            return Ok(None);
        };
        host::init_shared_counter(SEQ_KEY)?;
        let source = match &settings.source {
            Some(source) => source.clone(),
            None => shared_source()?,
        };
        host::set_tick_period(TICK_MS)?;
        let outbox = Outbox::new(&source, settings.buffer_records, settings.mode, settings.max_outage_seconds);
        log::info!("audit: records go to cluster {} as source {source}", settings.cluster);
        Ok(Some(Self {
            outbox: Rc::new(RefCell::new(outbox)),
            settings,
            token,
            in_flight: false,
            dropped_logged: 0,
            last_drop_log_ms: 0,
            metrics,
        }))
    }

    /// Sends the next batch, if one is due and none is in flight.
    pub fn on_tick(&mut self) {
        let now = host::now_millis();
        self.log_drops(now);
        self.send_next(now);
    }

    /// Sends the next batch unless one is in flight or none is due.
    fn send_next(&mut self, now: u64) {
        if self.in_flight {
            return;
        }
        let Some(batch) = self.outbox.borrow_mut().next_batch(now) else { return };
        let authorization = format!("Bearer {}", self.token.expose());
        let headers = [
            (":method", "POST"),
            (":path", self.settings.records_path.as_str()),
            (":authority", self.settings.authority.as_str()),
            ("content-type", "application/x-ndjson"),
            ("authorization", authorization.as_str()),
        ];
        match host::dispatch_http_call(&self.settings.cluster, &headers, &batch, CALL_TIMEOUT_MS) {
            Ok(_) => self.in_flight = true,
            Err(e) => {
                log::warn!("audit: sending records to cluster {} failed (host status {})", self.settings.cluster, e.0);
                self.outbox.borrow_mut().failed(now);
            }
        }
    }

    /// The service answered the batch in flight.
    pub fn on_response(&mut self) {
        self.in_flight = false;
        let now = host::now_millis();
        let status = host::call_response_status();
        if status == Some(200) {
            self.outbox.borrow_mut().acknowledged(now);
            // A full batch waiting (a busy worker queues faster than one batch per tick) goes at
            // once, so delivery keeps up with any rate the service can store; fewer records wait
            // for the tick, so a batch is never sent for a handful.
            if self.outbox.borrow().full_batch_waiting() {
                self.send_next(now);
            }
        } else if matches!(status, Some(400 | 409)) {
            let dropped = self.outbox.borrow_mut().rejected(now);
            if let Some(metrics) = &self.metrics {
                metrics.audit_dropped(dropped as u64);
            }
            log::error!(
                "audit: warden serve refused a batch of {dropped} records (HTTP {}): dropped; see its log",
                status.unwrap_or(0)
            );
        } else {
            log::warn!(
                "audit: warden serve did not store records (HTTP {}); {} waiting, retrying",
                status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                self.outbox.borrow().len()
            );
            self.outbox.borrow_mut().failed(now);
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

/// The gateway's random source name, chosen by the first VM to configure (Envoy's main thread,
/// before any worker serves) and read by the others.
fn shared_source() -> Result<String, HostError> {
    if let Some((bytes, _)) = host::get_shared(SOURCE_KEY)? {
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    let nanos = host::now_seconds().map(|s| (s * 1e9) as u64).unwrap_or(0);
    let digest = hmac_sha256::Hash::hash(&nanos.to_le_bytes());
    let source = format!("gw-{}", hex(digest.get(..6).unwrap_or_default()));
    host::set_shared(SOURCE_KEY, source.as_bytes(), 0)?;
    Ok(source)
}

/// Numbers an exchange's record and queues it, and shows its id and hash to Envoy's access log
/// (filter state `wasm.warden_audit_record` and `wasm.warden_audit_hash`). A record that cannot
/// be numbered or queued is counted as dropped (and, with `fail_closed`, the next requests are
/// refused while the queue is full).
pub fn enqueue(outbox: &RefCell<Outbox>, record: Record, metrics: Option<&Metrics>) {
    let now = host::now_millis();
    let receipt = match host::next_shared_counter(SEQ_KEY) {
        Ok(seq) => outbox.borrow_mut().push(seq, &record, now).ok(),
        Err(e) => {
            log::error!("audit: numbering a record failed (host status {}); it is dropped", e.0);
            None
        }
    };
    match receipt {
        Some(receipt) => {
            for (name, value) in [(RECORD_PROPERTY, &receipt.id), (HASH_PROPERTY, &receipt.hash)] {
                if let Err(e) = host::set_property(&[name], value.as_bytes()) {
                    log::warn!("audit: the access log cannot show record {} (host status {})", receipt.id, e.0);
                }
            }
        }
        None => {
            if let Some(metrics) = metrics {
                metrics.audit_dropped(1);
            }
        }
    }
}

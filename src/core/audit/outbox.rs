//! Records waiting for `warden serve`, in one worker: a queue bounded by records and bytes, one
//! batch in flight, the rule that decides what the service's answer means ([`judge`]), and the
//! rule that decides whether new requests may still come in ([`Outbox::admits`]).
//!
//! Algorithm: an exchange's record is numbered (the sequence comes from a counter shared by all
//! workers), serialized under the gateway's source name and queued ([`Outbox::push`]), so each
//! exchange pays for its own record and a batch costs only a copy. The root context asks for a
//! batch ([`Outbox::next_batch`]: up to [`BATCH_RECORDS`] records or [`BATCH_BYTES`], as NDJSON)
//! and hands the service's answer, judged by [`judge`], to [`Outbox::answered`]:
//! - [`Answer::Stored`]: the service judged every line; the lines it refused are named. A
//!   refused record is replaced by a **stand-in** (same source and sequence number: its id, its
//!   request id, the hash the access log shows, and the service's reason) sent at the front of
//!   the queue, so the trail has no gap and says what happened; a stand-in the service refuses
//!   too is dropped, counted and reported. The blobs of stored records become known
//!   ([`Delivered::blobs`]), so later records may name them without carrying them.
//! - [`Answer::Retry`]: the batch goes back to the front, in order, and the next try waits
//!   [`RETRY_MS`]. The service stores `(source, seq)` idempotently, so a batch sent twice is
//!   stored once.
//! - [`Answer::RefusedWhole`] (a service that judges batches whole, or a proxy): the records go
//!   back and are sent one per batch, so only the one that cannot be stored gets its stand-in.
//!
//! A record that could not be parsed by the service (nested deeper than [`MAX_RECORD_DEPTH`], or
//! a line over [`MAX_LINE_BYTES`]) is never sent: its stand-in goes in its place at once.
//!
//! Unauthenticated refusals (a record without identity, refused) are not queued one by one: each
//! is counted in the open **summary** (one record per [`SUMMARY_MS`] interval: how many, by
//! reason, from when to when), whose id the refusal's access-log line names. Summaries never
//! count against the queue's bounds nor in the admission rule, so a flood of requests without a
//! token cannot take the room authenticated traffic's records need; while
//! [`MAX_SUMMARIES_WAITING`] summaries wait, the open one stays open and keeps counting.
//!
//! Admission ([`Outbox::admits`]): with `fail_closed`, new requests are refused while the
//! records of authenticated exchanges fill the queue (by count or by bytes) or have waited
//! longer than the outage allowance; records of requests already admitted are still queued, up
//! to twice the bounds. With `fail_open` requests pass, and a record that finds the queue full is
//! dropped and counted (its sequence number stays unused, so the trail shows the gap).
//!
//! Limits: the queue lives in the worker's VM; records are lost if the VM itself is lost (a crash
//! the filter is built never to have) or Envoy stops before the queue is drained (see the root
//! context's shutdown).

use super::canonical::{canonical, sha256_hex};
use super::record::{json_depth, Record, Sealed};
use crate::core::policy::config::AuditMode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};

/// Most records per batch.
pub const BATCH_RECORDS: usize = 200;
/// Most bytes per batch (one record may exceed it: it then goes alone).
pub const BATCH_BYTES: usize = 4 << 20;
/// Wait after a failed delivery before the next try, in milliseconds.
pub const RETRY_MS: u64 = 1_000;
/// Deepest record sent (the service's parser stops at 128 levels).
pub const MAX_RECORD_DEPTH: usize = 64;
/// Largest record line sent (the service takes bodies up to 64 MiB).
pub const MAX_LINE_BYTES: usize = 48 << 20;
/// How long one summary of unauthenticated refusals stays open, in milliseconds.
pub const SUMMARY_MS: u64 = 5_000;
/// Most closed summaries waiting; beyond, the open summary stays open.
pub const MAX_SUMMARIES_WAITING: usize = 1_024;
/// The access log's `audit_hash` of a request counted in a summary.
pub const SUMMARY_HASH: &str = "summary";
/// The access log's `audit_hash` of a record the gateway dropped (`fail_open`, queue full).
pub const DROPPED_HASH: &str = "dropped";

/// A queued record's id and hash (what Envoy's access log shows of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `<source>-<seq>`.
    pub id: String,
    /// Hex SHA-256 of the record as `warden serve` stores it, or [`SUMMARY_HASH`] for a request
    /// counted in a summary.
    pub hash: String,
}

/// What a queued line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An exchange's record.
    Record,
    /// The stand-in of a record the service refused (or that could not be sent).
    StandIn,
    /// A summary of unauthenticated refusals.
    Summary,
}

/// A numbered line waiting.
#[derive(Debug)]
struct Queued {
    kind: Kind,
    seq: u64,
    id: String,
    /// The record's hash (for a stand-in: the hash of the record it stands for).
    hash: String,
    request_id: String,
    start_ms: u64,
    /// Names of the blobs the line carries.
    blobs: Vec<String>,
    /// The NDJSON line, newline included.
    line: Vec<u8>,
}

/// The open summary of unauthenticated refusals.
#[derive(Debug)]
struct Summary {
    seq: u64,
    from_ms: u64,
    to_ms: u64,
    reasons: BTreeMap<String, u64>,
}

/// What the service's answer to a batch means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Every line was judged: all stored (or already stored) but those named, by their 0-based
    /// index in the batch, with the service's reason.
    Stored {
        /// Refused lines: (index in the batch, reason).
        refused: Vec<(usize, String)>,
    },
    /// Not judged (no answer, a transient status, an answer not understood): send it again.
    Retry,
    /// The service refused the batch as a whole (400, 409): no record of it can be stored as
    /// sent.
    RefusedWhole(String),
}

/// Longest reason kept from the service's answer.
const MAX_REASON_CHARS: usize = 300;

fn reason_text(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(MAX_REASON_CHARS).collect()
}

/// What the service's answer (`status`: none when the call failed) to a batch of `sent` lines
/// means. Only a `200` whose body accounts for every line (`stored` + `duplicates` + the lines
/// listed in `refused`, each `{"line": <1-based>, "error": …}`) counts as judged: anything else
/// — a proxy's 200 with another body, a count that does not add up — is sent again.
pub fn judge(status: Option<u32>, body: &[u8], sent: usize) -> Answer {
    match status {
        Some(200) => {}
        Some(status @ (400 | 409)) => {
            let detail = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(reason_text))
                .unwrap_or_default();
            return Answer::RefusedWhole(format!("HTTP {status} {detail}").trim_end().to_string());
        }
        _ => return Answer::Retry,
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return Answer::Retry };
    let count = |name: &str| value.get(name).and_then(Value::as_u64);
    let (Some(stored), Some(duplicates)) = (count("stored"), count("duplicates")) else { return Answer::Retry };
    let mut refused = Vec::new();
    if let Some(lines) = value.get("refused") {
        let Some(lines) = lines.as_array() else { return Answer::Retry };
        for entry in lines {
            let line = entry.get("line").and_then(Value::as_u64).and_then(|l| usize::try_from(l).ok());
            let Some(index) = line.and_then(|l| l.checked_sub(1)).filter(|i| *i < sent) else { return Answer::Retry };
            if refused.iter().any(|(i, _)| *i == index) {
                return Answer::Retry;
            }
            let error = entry.get("error").and_then(Value::as_str).map(reason_text).unwrap_or_default();
            refused.push((index, error));
        }
    }
    let judged = stored.saturating_add(duplicates).saturating_add(refused.len() as u64);
    if judged != sent as u64 {
        return Answer::Retry;
    }
    refused.sort_unstable_by_key(|(index, _)| *index);
    Answer::Stored { refused }
}

/// What an answered batch changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Records the service stored (or had stored).
    pub stored: usize,
    /// Blob names carried by stored records: the worker's memo may now name them.
    pub blobs: Vec<String>,
    /// Records the service refused, each replaced by its stand-in: (id, reason).
    pub stood_in: Vec<(String, String)>,
    /// Stand-ins the service refused too, dropped: (id, reason).
    pub lost: Vec<(String, String)>,
    /// Whether the batch goes again (not judged).
    pub retry: bool,
}

/// A record the queue could not take (`fail_open`, full), with the id it would have had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// `<source>-<seq>`, when a number was taken.
    pub id: Option<String>,
}

/// The worker's records waiting for the service.
#[derive(Debug)]
pub struct Outbox {
    /// The gateway's name in records.
    source: String,
    queue: VecDeque<Queued>,
    in_flight: Vec<Queued>,
    capacity: usize,
    capacity_bytes: usize,
    mode: AuditMode,
    max_outage_ms: u64,
    /// Records of exchanges (not summaries) waiting, in flight included, and their bytes.
    records: usize,
    record_bytes: usize,
    summaries: usize,
    summary: Option<Summary>,
    /// When the oldest undelivered exchange record was queued (`None`: none waits).
    waiting_since_ms: Option<u64>,
    /// No delivery before this time (after a failure).
    retry_at_ms: u64,
    dropped: u64,
    unauthenticated: u64,
    /// Records at the front of the queue to send one per batch (after a batch refused whole).
    solo: usize,
}

impl Outbox {
    /// An empty outbox for `source`, holding at most `capacity` records and `capacity_bytes`
    /// bytes of exchange records.
    pub fn new(source: &str, capacity: u64, capacity_bytes: u64, mode: AuditMode, max_outage_seconds: u64) -> Self {
        Self {
            source: source.to_string(),
            queue: VecDeque::new(),
            in_flight: Vec::new(),
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX).max(1),
            capacity_bytes: usize::try_from(capacity_bytes).unwrap_or(usize::MAX).max(1),
            mode,
            max_outage_ms: max_outage_seconds.saturating_mul(1000),
            records: 0,
            record_bytes: 0,
            summaries: 0,
            summary: None,
            waiting_since_ms: None,
            retry_at_ms: 0,
            dropped: 0,
            unauthenticated: 0,
            solo: 0,
        }
    }

    /// The gateway's name in records.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether a full batch ([`BATCH_RECORDS`]) waits: then it need not wait for the next tick.
    pub fn full_batch_waiting(&self) -> bool {
        self.queue.len() >= BATCH_RECORDS
    }

    /// Lines waiting, in flight included (the open summary counts as one).
    pub fn len(&self) -> usize {
        self.queue.len() + self.in_flight.len() + usize::from(self.summary.is_some())
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of exchange records waiting, in flight included.
    pub fn bytes(&self) -> usize {
        self.record_bytes
    }

    /// The ids of every line still waiting, in flight included (named when a shutdown's drain
    /// gives up); the open summary's too.
    pub fn waiting_ids(&self) -> Vec<String> {
        let summary = self.summary.as_ref().map(|s| format!("{}-{}", self.source, s.seq));
        self.in_flight.iter().chain(self.queue.iter()).map(|q| q.id.clone()).chain(summary).collect()
    }

    /// Records dropped so far (`fail_open` with a full queue, or a stand-in refused).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Unauthenticated refusals counted in summaries so far.
    pub fn unauthenticated(&self) -> u64 {
        self.unauthenticated
    }

    /// Whether a new request may come in at `now_ms`: always with `fail_open`; with `fail_closed`
    /// only while exchange records leave room (count and bytes) and none has waited past the
    /// outage allowance. Summaries of unauthenticated refusals never count.
    pub fn admits(&self, now_ms: u64) -> bool {
        if self.mode == AuditMode::FailOpen {
            return true;
        }
        let overdue = self.waiting_since_ms.is_some_and(|since| now_ms.saturating_sub(since) > self.max_outage_ms);
        self.records < self.capacity && self.record_bytes < self.capacity_bytes && !overdue
    }

    /// Whether `record` is an unauthenticated refusal (counted in a summary, not queued).
    pub fn is_unauthenticated(record: &Record) -> bool {
        record.identity.is_none() && !record.decision.allowed
    }

    /// Queues `record`, made at `now_ms`, numbered by `next_seq` (the shared counter; `None`: it
    /// failed); returns what the access log shows of it. An unauthenticated refusal is counted
    /// in the open summary (numbered when the summary opens). A record the service could not
    /// parse is queued as its stand-in.
    pub fn push(
        &mut self,
        record: &Record,
        now_ms: u64,
        next_seq: &mut dyn FnMut() -> Option<u64>,
    ) -> Result<Receipt, Dropped> {
        if Self::is_unauthenticated(record) {
            return self.count_unauthenticated(record, now_ms, next_seq);
        }
        let seq = next_seq().ok_or(Dropped { id: None })?;
        let id = format!("{}-{seq}", self.source);
        let sealed = record.seal(&self.source, seq).ok();
        let limit = |bound: usize| if self.mode == AuditMode::FailOpen { bound } else { bound.saturating_mul(2) };
        let size = sealed.as_ref().map_or(0, |s| s.line.len());
        if self.records >= limit(self.capacity) || self.record_bytes.saturating_add(size) > limit(self.capacity_bytes) {
            self.dropped += 1;
            return Err(Dropped { id: Some(id) });
        }
        let mut queued = match sealed {
            Some(Sealed { id, hash, line }) => Queued {
                kind: Kind::Record,
                seq,
                id,
                hash,
                request_id: record.request_id.clone(),
                start_ms: record.timings.start,
                blobs: record.blobs.keys().cloned().collect(),
                line,
            },
            None => Queued {
                kind: Kind::Record,
                seq,
                id: id.clone(),
                hash: "-".into(),
                request_id: record.request_id.clone(),
                start_ms: record.timings.start,
                blobs: Vec::new(),
                line: Vec::new(),
            },
        };
        if queued.line.is_empty() {
            queued = self.stand_in(&queued, "the gateway could not serialize the record");
        } else if queued.line.len() > MAX_LINE_BYTES {
            queued = self.stand_in(&queued, "the record is larger than the gateway sends");
        } else if json_depth(&queued.line, MAX_RECORD_DEPTH) > MAX_RECORD_DEPTH {
            queued = self.stand_in(&queued, "the record is nested deeper than the gateway sends");
        } else {
            queued.line.push(b'\n');
        }
        let receipt = Receipt { id: queued.id.clone(), hash: queued.hash.clone() };
        self.waiting_since_ms.get_or_insert(now_ms);
        self.enter(&queued);
        self.queue.push_back(queued);
        Ok(receipt)
    }

    fn count_unauthenticated(
        &mut self,
        record: &Record,
        now_ms: u64,
        next_seq: &mut dyn FnMut() -> Option<u64>,
    ) -> Result<Receipt, Dropped> {
        if self.summary.is_none() {
            let seq = next_seq().ok_or(Dropped { id: None })?;
            self.summary = Some(Summary { seq, from_ms: now_ms, to_ms: now_ms, reasons: BTreeMap::new() });
        }
        let source = self.source.clone();
        let Some(summary) = self.summary.as_mut() else { return Err(Dropped { id: None }) };
        let reason = record.decision.reason.clone().unwrap_or_else(|| "refused".into());
        *summary.reasons.entry(reason).or_default() += 1;
        summary.to_ms = summary.to_ms.max(now_ms);
        self.unauthenticated += 1;
        Ok(Receipt { id: format!("{source}-{}", summary.seq), hash: SUMMARY_HASH.into() })
    }

    /// Closes the open summary when its interval is over (or `force`, at shutdown) and enough
    /// room is left for it.
    fn close_summary(&mut self, now_ms: u64, force: bool) {
        let due = self.summary.as_ref().is_some_and(|s| force || now_ms.saturating_sub(s.from_ms) >= SUMMARY_MS);
        if !due || self.summaries >= MAX_SUMMARIES_WAITING {
            return;
        }
        let Some(summary) = self.summary.take() else { return };
        let id = format!("{}-{}", self.source, summary.seq);
        let count: u64 = summary.reasons.values().sum();
        let value = json!({
            "version": super::record::RECORD_VERSION, "source": self.source, "seq": summary.seq, "id": id,
            "request_id": null, "upstream_request_id": null, "session_id": null, "job_id": null,
            "identity": null, "endpoint": "unknown", "method": null, "path": null,
            "decision": {"allowed": false, "reason": "unauthenticated_summary", "status": null,
                         "message": format!("{count} requests refused before authentication")},
            "approval": null, "model": null, "request": null, "response": null,
            "dlp": {"audited": {}, "blocked": {}, "masked": {}}, "usage": null,
            "timings": {"start": summary.from_ms, "first_byte": null, "end": summary.to_ms},
            "outcome": "refused",
            "summary": {"count": count, "reasons": summary.reasons, "from": summary.from_ms, "to": summary.to_ms},
        });
        let mut line = canonical(&value);
        let hash = sha256_hex(&[&line]);
        line.push(b'\n');
        self.summaries += 1;
        self.queue.push_back(Queued {
            kind: Kind::Summary,
            seq: summary.seq,
            id,
            hash,
            request_id: String::new(),
            start_ms: summary.from_ms,
            blobs: Vec::new(),
            line,
        });
    }

    /// The stand-in of `original`: its place in the trail, its request id, the hash the access
    /// log shows, and why it is not stored as made.
    fn stand_in(&self, original: &Queued, reason: &str) -> Queued {
        let value = json!({
            "version": super::record::RECORD_VERSION, "source": self.source, "seq": original.seq,
            "id": original.id, "request_id": original.request_id, "outcome": "unrecorded",
            "timings": {"start": original.start_ms, "first_byte": null, "end": original.start_ms},
            "stand_in": {"hash": original.hash, "reason": reason_text(reason)},
        });
        let mut line = canonical(&value);
        line.push(b'\n');
        Queued {
            kind: Kind::StandIn,
            seq: original.seq,
            id: original.id.clone(),
            hash: original.hash.clone(),
            request_id: original.request_id.clone(),
            start_ms: original.start_ms,
            blobs: Vec::new(),
            line,
        }
    }

    fn enter(&mut self, queued: &Queued) {
        match queued.kind {
            Kind::Summary => {}
            _ => {
                self.records += 1;
                self.record_bytes += queued.line.len();
            }
        }
    }

    fn leave(&mut self, queued: &Queued) {
        match queued.kind {
            Kind::Summary => self.summaries = self.summaries.saturating_sub(1),
            _ => {
                self.records = self.records.saturating_sub(1);
                self.record_bytes = self.record_bytes.saturating_sub(queued.line.len());
            }
        }
    }

    /// The next batch as NDJSON, unless one is in flight, nothing waits, or a retry is not due
    /// yet (a summary whose interval is over is closed first; `flush` closes the open one now).
    pub fn next_batch(&mut self, now_ms: u64, flush: bool) -> Option<Vec<u8>> {
        self.close_summary(now_ms, flush);
        if !self.in_flight.is_empty() || self.queue.is_empty() || (now_ms < self.retry_at_ms && !flush) {
            return None;
        }
        let mut body = Vec::new();
        let most = if self.solo > 0 { 1 } else { BATCH_RECORDS };
        self.solo = self.solo.saturating_sub(1);
        while let Some(queued) = self.queue.pop_front() {
            body.extend_from_slice(&queued.line);
            self.in_flight.push(queued);
            if self.in_flight.len() >= most || body.len() >= BATCH_BYTES {
                break;
            }
        }
        Some(body)
    }

    /// Applies the service's answer to the batch in flight (see the module comment).
    pub fn answered(&mut self, answer: Answer, now_ms: u64) -> Delivered {
        let mut delivered = Delivered::default();
        let refused: Vec<(usize, String)> = match answer {
            Answer::Retry => {
                for queued in self.in_flight.drain(..).rev() {
                    self.queue.push_front(queued);
                }
                self.retry_at_ms = now_ms.saturating_add(RETRY_MS);
                delivered.retry = true;
                return delivered;
            }
            Answer::Stored { refused } => refused,
            Answer::RefusedWhole(_) if self.in_flight.len() > 1 => {
                self.solo = self.in_flight.len();
                for queued in self.in_flight.drain(..).rev() {
                    self.queue.push_front(queued);
                }
                delivered.retry = true;
                return delivered;
            }
            Answer::RefusedWhole(reason) => (0..self.in_flight.len()).map(|i| (i, reason.clone())).collect(),
        };
        let mut stand_ins = Vec::new();
        let in_flight = std::mem::take(&mut self.in_flight);
        for (index, queued) in in_flight.into_iter().enumerate() {
            self.leave(&queued);
            match refused.iter().find(|(i, _)| *i == index) {
                None => {
                    delivered.stored += 1;
                    delivered.blobs.extend(queued.blobs);
                }
                Some((_, reason)) if queued.kind == Kind::StandIn => {
                    self.dropped += 1;
                    delivered.lost.push((queued.id, reason.clone()));
                }
                Some((_, reason)) => {
                    let stand_in = self.stand_in(&queued, &format!("warden serve refused the record: {reason}"));
                    delivered.stood_in.push((queued.id, reason.clone()));
                    stand_ins.push(stand_in);
                }
            }
        }
        for stand_in in stand_ins.into_iter().rev() {
            self.enter(&stand_in);
            self.queue.push_front(stand_in);
        }
        self.waiting_since_ms = (self.records > 0).then_some(now_ms);
        delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::audit::trail::refused_at_headers;
    use crate::core::errors::{Denial, Reason};

    /// A record of an authenticated exchange.
    fn record(n: u64) -> Record {
        let mut record = unauthenticated(n);
        record.decision.allowed = true;
        record.identity = Some(super::super::record::IdentityView {
            groups: vec![],
            issuer: "iss".into(),
            job: BTreeMap::new(),
            role: "developer".into(),
            subject: format!("user-{n}"),
            token_expires_at: None,
            token_id: None,
        });
        record
    }

    fn unauthenticated(n: u64) -> Record {
        let reply = Denial::new(Reason::TokenMissing, "no token").to_reply(&format!("req_{n}"));
        refused_at_headers(&format!("req_{n}"), "POST", "/v1/messages", &reply, n, n)
    }

    fn counter() -> impl FnMut() -> Option<u64> {
        let mut next = 0;
        move || {
            next += 1;
            Some(next)
        }
    }

    fn lines(batch: &[u8]) -> Vec<Value> {
        batch
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice::<Value>(line).unwrap())
            .collect()
    }

    fn seqs(batch: &[u8]) -> Vec<u64> {
        lines(batch).iter().map(|line| line["seq"].as_u64().unwrap()).collect()
    }

    fn stored_all(sent: usize) -> Answer {
        judge(Some(200), format!(r#"{{"stored":{sent},"duplicates":0}}"#).as_bytes(), sent)
    }

    fn outbox(capacity: u64, mode: AuditMode) -> Outbox {
        Outbox::new("gw-1", capacity, 1 << 30, mode, 60)
    }

    #[test]
    fn batches_go_out_in_order_and_a_failed_one_is_sent_again() {
        let mut outbox = outbox(1000, AuditMode::FailClosed);
        let mut seq = counter();
        for n in 1..=250 {
            outbox.push(&record(n), 0, &mut seq).unwrap();
        }
        assert!(outbox.full_batch_waiting());
        let first = outbox.next_batch(0, false).unwrap();
        assert_eq!(seqs(&first), (1..=200).collect::<Vec<_>>());
        assert_eq!(outbox.next_batch(0, false), None, "one batch in flight at a time");
        assert!(outbox.answered(judge(None, b"", 200), 10).retry);
        assert_eq!(outbox.next_batch(500, false), None, "the retry waits");
        let again = outbox.next_batch(1_010, false).unwrap();
        assert_eq!(again, first, "the same records, in the same order");
        assert!(!outbox.full_batch_waiting(), "50 records wait: the next tick sends them");
        assert_eq!(outbox.answered(stored_all(200), 1_020).stored, 200);
        assert_eq!(seqs(&outbox.next_batch(1_020, false).unwrap()), (201..=250).collect::<Vec<_>>());
        outbox.answered(stored_all(50), 1_030);
        assert!(outbox.is_empty());
    }

    #[test]
    fn only_an_answer_accounting_for_every_line_means_stored() {
        assert_eq!(stored_all(3), Answer::Stored { refused: vec![] });
        let partial = br#"{"stored":1,"duplicates":1,"refused":[{"line":2,"error":"line 2: too deep"}]}"#;
        assert_eq!(judge(Some(200), partial, 3), Answer::Stored { refused: vec![(1, "line 2: too deep".into())] });
        assert_eq!(judge(Some(200), br#"{"stored":2,"duplicates":0}"#, 3), Answer::Retry, "a line unaccounted for");
        assert_eq!(judge(Some(200), b"<html>ok</html>", 3), Answer::Retry, "not the service's answer");
        let out_of_range = br#"{"stored":2,"duplicates":0,"refused":[{"line":9,"error":"x"}]}"#;
        assert_eq!(judge(Some(200), out_of_range, 3), Answer::Retry);
        let twice = br#"{"stored":1,"duplicates":0,"refused":[{"line":1},{"line":1}]}"#;
        assert_eq!(judge(Some(200), twice, 3), Answer::Retry);
        for status in [None, Some(500), Some(503), Some(413), Some(401)] {
            assert_eq!(judge(status, b"", 1), Answer::Retry, "{status:?}");
        }
        let whole = judge(Some(400), br#"{"error":{"type":"invalid_request_error","message":"no record"}}"#, 1);
        assert_eq!(whole, Answer::RefusedWhole("HTTP 400 no record".into()));
    }

    #[test]
    fn a_refused_record_is_replaced_by_its_stand_in_and_the_others_are_stored() {
        let mut outbox = outbox(10, AuditMode::FailClosed);
        let mut seq = counter();
        let receipts: Vec<Receipt> = (1..=3).map(|n| outbox.push(&record(n), 0, &mut seq).unwrap()).collect();
        outbox.next_batch(0, false).unwrap();
        let answer = judge(
            Some(200),
            br#"{"stored":2,"duplicates":0,"refused":[{"line":2,"error":"line 2: recursion limit exceeded"}]}"#,
            3,
        );
        let delivered = outbox.answered(answer, 1);
        assert_eq!(delivered.stored, 2);
        assert_eq!(delivered.stood_in, vec![("gw-1-2".to_string(), "line 2: recursion limit exceeded".to_string())]);
        let batch = outbox.next_batch(1, false).unwrap();
        let stand_in = &lines(&batch)[0];
        assert_eq!((stand_in["seq"].as_u64(), stand_in["id"].as_str()), (Some(2), Some("gw-1-2")));
        assert_eq!(stand_in["stand_in"]["hash"], receipts[1].hash, "it names the hash the access log shows");
        assert_eq!(stand_in["request_id"], "req_2");
        let refused_again = judge(Some(200), br#"{"stored":0,"duplicates":0,"refused":[{"line":1,"error":"no"}]}"#, 1);
        let delivered = outbox.answered(refused_again, 2);
        assert_eq!(delivered.lost, vec![("gw-1-2".to_string(), "no".to_string())], "reported, never silent");
        assert_eq!(outbox.dropped(), 1);
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_batch_refused_whole_is_sent_again_record_by_record_and_only_the_bad_one_stands_in() {
        let mut outbox = outbox(10, AuditMode::FailClosed);
        let mut seq = counter();
        for n in 1..=3 {
            outbox.push(&record(n), 0, &mut seq).unwrap();
        }
        outbox.next_batch(0, false).unwrap();
        assert!(outbox.answered(judge(Some(400), b"", 3), 1).stood_in.is_empty(), "not blamed on all");
        assert_eq!(seqs(&outbox.next_batch(1, false).unwrap()), vec![1], "one per batch");
        assert_eq!(outbox.answered(stored_all(1), 2).stored, 1);
        assert_eq!(seqs(&outbox.next_batch(2, false).unwrap()), vec![2]);
        let delivered = outbox.answered(judge(Some(409), b"", 1), 3);
        assert_eq!(delivered.stood_in.len(), 1, "the one the service cannot take stands in");
        assert_eq!(seqs(&outbox.next_batch(3, false).unwrap()), vec![2], "its stand-in goes first, alone");
        assert_eq!(outbox.answered(stored_all(1), 4).stored, 1);
        assert_eq!(seqs(&outbox.next_batch(4, false).unwrap()), vec![3], "then batches as usual");
    }

    #[test]
    fn a_record_the_service_could_not_parse_is_sent_as_its_stand_in() {
        let mut outbox = outbox(10, AuditMode::FailClosed);
        let mut deep = record(1);
        let mut value = Value::from(1);
        for _ in 0..MAX_RECORD_DEPTH {
            value = Value::Array(vec![value]);
        }
        let mut params = serde_json::Map::new();
        params.insert("p".into(), value);
        deep.request = Some(super::super::record::RequestView { params, ..Default::default() });
        let receipt = outbox.push(&deep, 0, &mut counter()).unwrap();
        let line = &lines(&outbox.next_batch(0, false).unwrap())[0];
        assert_eq!(line["stand_in"]["hash"], receipt.hash);
        assert!(line.get("request").is_none());
    }

    #[test]
    fn the_blobs_of_a_record_become_known_only_when_it_is_stored() {
        let mut outbox = outbox(10, AuditMode::FailClosed);
        let mut with_blob = record(1);
        with_blob.blobs.insert("sha256:01".into(), "x".into());
        outbox.push(&with_blob, 0, &mut counter()).unwrap();
        outbox.next_batch(0, false).unwrap();
        assert!(outbox.answered(Answer::Retry, 1).blobs.is_empty());
        outbox.next_batch(2_000, false).unwrap();
        let refused = Answer::Stored { refused: vec![(0, "bad".into())] };
        assert!(outbox.answered(refused, 2_001).blobs.is_empty(), "a refused carrier makes nothing known");
        outbox.next_batch(2_001, false).unwrap();
        outbox.answered(stored_all(1), 2_002);

        let mut outbox = Outbox::new("gw-2", 10, 1 << 30, AuditMode::FailClosed, 60);
        outbox.push(&with_blob, 0, &mut counter()).unwrap();
        outbox.next_batch(0, false).unwrap();
        assert_eq!(outbox.answered(stored_all(1), 1).blobs, vec!["sha256:01".to_string()]);
    }

    #[test]
    fn fail_closed_refuses_new_requests_when_full_or_overdue() {
        let mut outbox = outbox(2, AuditMode::FailClosed);
        let mut seq = counter();
        assert!(outbox.admits(0));
        outbox.push(&record(1), 0, &mut seq).unwrap();
        assert!(outbox.admits(60_000), "within the outage allowance");
        assert!(!outbox.admits(60_001), "a record waited too long");
        outbox.push(&record(2), 1, &mut seq).unwrap();
        assert!(!outbox.admits(2), "full");
        outbox.push(&record(3), 2, &mut seq).unwrap();
        outbox.push(&record(4), 2, &mut seq).unwrap();
        assert!(outbox.push(&record(5), 2, &mut seq).is_err(), "admitted requests' records fit up to twice the bound");
        outbox.next_batch(3, false).unwrap();
        outbox.answered(stored_all(4), 4);
        assert!(outbox.admits(100_000));
    }

    #[test]
    fn the_queue_is_bounded_by_bytes_too() {
        let one = record(1).seal("gw-1", 1).unwrap().line.len() as u64 + 1;
        let mut outbox = Outbox::new("gw-1", 1_000, one * 2, AuditMode::FailClosed, 60);
        let mut seq = counter();
        outbox.push(&record(1), 0, &mut seq).unwrap();
        assert!(outbox.admits(0));
        outbox.push(&record(2), 0, &mut seq).unwrap();
        assert!(!outbox.admits(0), "two records fill the byte bound");
        let mut open = Outbox::new("gw-1", 1_000, one * 2, AuditMode::FailOpen, 60);
        open.push(&record(1), 0, &mut seq).unwrap();
        open.push(&record(2), 0, &mut seq).unwrap();
        assert_eq!(open.push(&record(3), 0, &mut seq).unwrap_err().id.as_deref(), Some("gw-1-5"));
    }

    #[test]
    fn fail_open_admits_and_counts_what_it_drops() {
        let mut outbox = outbox(1, AuditMode::FailOpen);
        let mut seq = counter();
        outbox.push(&record(1), 0, &mut seq).unwrap();
        assert!(outbox.push(&record(2), 0, &mut seq).is_err());
        assert!(outbox.admits(1_000_000));
        assert_eq!(outbox.dropped(), 1);
    }

    #[test]
    fn an_unauthenticated_flood_is_summarised_and_never_closes_the_gateway() {
        let mut outbox = outbox(2, AuditMode::FailClosed);
        let mut seq = counter();
        let mut receipts = Vec::new();
        for n in 0..100_000 {
            receipts.push(outbox.push(&unauthenticated(n), n / 100, &mut seq).unwrap());
        }
        assert!(outbox.admits(1_000), "the flood took no room from authenticated records");
        assert!(receipts.iter().all(|r| r.id == "gw-1-1" && r.hash == SUMMARY_HASH), "one summary names them all");
        outbox.push(&record(1), 1_000, &mut seq).unwrap();
        let batch = outbox.next_batch(SUMMARY_MS, false).unwrap();
        let lines = lines(&batch);
        assert_eq!(lines.len(), 2, "one summary and the authenticated record");
        let summary = lines.iter().find(|l| l["seq"] == 1).unwrap();
        assert_eq!(summary["summary"]["count"], 100_000);
        assert_eq!(summary["summary"]["reasons"]["token_missing"], 100_000);
        assert_eq!(summary["identity"], Value::Null);
        outbox.answered(stored_all(2), SUMMARY_MS);
        outbox.push(&unauthenticated(1), SUMMARY_MS + 1, &mut seq).unwrap();
        assert_eq!(outbox.next_batch(SUMMARY_MS + 2, false), None, "the next summary is open");
        assert_eq!(seqs(&outbox.next_batch(SUMMARY_MS + 3, true).unwrap()), vec![3], "a flush closes it");
    }

    #[test]
    fn each_line_is_a_placed_record() {
        let mut outbox = Outbox::new("gw-9", 10, 1 << 20, AuditMode::FailClosed, 60);
        outbox.push(&record(7), 0, &mut || Some(7)).unwrap();
        let batch = outbox.next_batch(0, false).unwrap();
        let line = &lines(&batch)[0];
        assert_eq!(
            (line["source"].as_str(), line["seq"].as_u64(), line["id"].as_str()),
            (Some("gw-9"), Some(7), Some("gw-9-7"))
        );
    }
}

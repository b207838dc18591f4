//! Records waiting for `warden serve`, in one worker: a bounded queue, one batch in flight, and
//! the rule that decides whether new requests may still come in.
//!
//! Algorithm: an exchange's record is numbered (the sequence comes from a counter shared by all
//! workers), serialized under the gateway's source name and queued ([`Outbox::push`]), so each
//! exchange pays for its own record and a batch costs only a copy. The root context asks for a
//! batch ([`Outbox::next_batch`]: up to [`BATCH_RECORDS`] records or [`BATCH_BYTES`], as NDJSON);
//! the batch stays in flight until the service
//! acknowledges it ([`Outbox::acknowledged`]) or the call fails ([`Outbox::failed`]: the batch goes
//! back to the front, in order, and the next try waits [`RETRY_MS`]). The service stores
//! `(source, seq)` idempotently, so a batch sent twice is stored once.
//!
//! Admission ([`Outbox::admits`]): with `fail_closed`, new requests are refused while the queue is
//! full or records have waited longer than the outage allowance; with `fail_open` they pass, and
//! records that find the queue full are dropped and counted.
//!
//! Limits: the queue lives in the worker's VM; records are lost if the VM itself is lost (a crash
//! the filter is built never to have) or Envoy stops with records still queued.

use super::record::{Record, Sealed};
use crate::core::policy::config::AuditMode;
use std::collections::VecDeque;

/// Most records per batch.
pub const BATCH_RECORDS: usize = 200;
/// Most bytes per batch (one record may exceed it: it then goes alone).
pub const BATCH_BYTES: usize = 4 << 20;
/// Wait after a failed delivery before the next try, in milliseconds.
pub const RETRY_MS: u64 = 1_000;

/// A queued record's id and hash (what Envoy's access log shows of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `<source>-<seq>`.
    pub id: String,
    /// Hex SHA-256 of the record as `warden serve` stores it.
    pub hash: String,
}

/// A numbered record waiting, as its NDJSON line.
#[derive(Debug)]
struct Queued {
    line: Vec<u8>,
}

/// The worker's records waiting for the service.
#[derive(Debug)]
pub struct Outbox {
    /// The gateway's name in records.
    source: String,
    queue: VecDeque<Queued>,
    in_flight: Vec<Queued>,
    capacity: usize,
    mode: AuditMode,
    max_outage_ms: u64,
    /// When the oldest undelivered record was queued (`None`: nothing waits).
    waiting_since_ms: Option<u64>,
    /// No delivery before this time (after a failure).
    retry_at_ms: u64,
    dropped: u64,
}

/// A record the full queue could not take (`fail_open`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped;

impl Outbox {
    /// An empty outbox for `source`, holding at most `capacity` records.
    pub fn new(source: &str, capacity: u64, mode: AuditMode, max_outage_seconds: u64) -> Self {
        Self {
            source: source.to_string(),
            queue: VecDeque::new(),
            in_flight: Vec::new(),
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX).max(1),
            mode,
            max_outage_ms: max_outage_seconds.saturating_mul(1000),
            waiting_since_ms: None,
            retry_at_ms: 0,
            dropped: 0,
        }
    }

    /// Whether a full batch ([`BATCH_RECORDS`]) waits: then it need not wait for the next tick.
    pub fn full_batch_waiting(&self) -> bool {
        self.queue.len() >= BATCH_RECORDS
    }

    /// Records waiting, in flight included.
    pub fn len(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records dropped so far (`fail_open` only).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether a new request may come in at `now_ms`: always with `fail_open`; with `fail_closed`
    /// only while the queue has room and no record has waited past the outage allowance.
    pub fn admits(&self, now_ms: u64) -> bool {
        if self.mode == AuditMode::FailOpen {
            return true;
        }
        let overdue = self.waiting_since_ms.is_some_and(|since| now_ms.saturating_sub(since) > self.max_outage_ms);
        self.len() < self.capacity && !overdue
    }

    /// Queues record number `seq`, made at `now_ms`; returns its id and hash. A full queue drops
    /// it (and counts it), as does a record that cannot be serialized.
    pub fn push(&mut self, seq: u64, record: &Record, now_ms: u64) -> Result<Receipt, Dropped> {
        let sealed = match record.seal(&self.source, seq) {
            Ok(sealed) if self.len() < self.capacity => sealed,
            _ => {
                self.dropped += 1;
                return Err(Dropped);
            }
        };
        let Sealed { id, hash, mut line } = sealed;
        line.push(b'\n');
        self.waiting_since_ms.get_or_insert(now_ms);
        self.queue.push_back(Queued { line });
        Ok(Receipt { id, hash })
    }

    /// The next batch as NDJSON, unless one is in flight, nothing waits, or a retry is not due
    /// yet.
    pub fn next_batch(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        if !self.in_flight.is_empty() || self.queue.is_empty() || now_ms < self.retry_at_ms {
            return None;
        }
        let mut body = Vec::new();
        while let Some(queued) = self.queue.pop_front() {
            body.extend_from_slice(&queued.line);
            self.in_flight.push(queued);
            if self.in_flight.len() >= BATCH_RECORDS || body.len() >= BATCH_BYTES {
                break;
            }
        }
        Some(body)
    }

    /// The service stored the batch in flight.
    pub fn acknowledged(&mut self, now_ms: u64) {
        self.in_flight.clear();
        self.waiting_since_ms = (!self.queue.is_empty()).then_some(now_ms);
    }

    /// The service refused the batch in flight as malformed or conflicting (400, 409): sending it
    /// again cannot succeed, so it is dropped (and counted); the sequence gap it leaves shows in
    /// the trail. Returns how many records were dropped.
    pub fn rejected(&mut self, now_ms: u64) -> usize {
        let count = self.in_flight.len();
        self.dropped += count as u64;
        self.acknowledged(now_ms);
        count
    }

    /// Sending the batch in flight failed: it goes back to the front of the queue, in order.
    pub fn failed(&mut self, now_ms: u64) {
        for queued in self.in_flight.drain(..).rev() {
            self.queue.push_front(queued);
        }
        self.retry_at_ms = now_ms.saturating_add(RETRY_MS);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::core::audit::trail::refused_at_headers;
    use crate::core::errors::{Denial, Reason};
    use serde_json::Value;

    fn record(n: u64) -> Record {
        let reply = Denial::new(Reason::TokenMissing, "no token").to_reply(&format!("req_{n}"));
        refused_at_headers(&format!("req_{n}"), "POST", "/v1/messages", &reply, n, n)
    }

    fn seqs(batch: &[u8]) -> Vec<u64> {
        batch
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice::<Value>(line).unwrap()["seq"].as_u64().unwrap())
            .collect()
    }

    #[test]
    fn batches_go_out_in_order_and_a_failed_one_is_sent_again() {
        let mut outbox = Outbox::new("gw-1", 1000, AuditMode::FailClosed, 60);
        for seq in 1..=250 {
            outbox.push(seq, &record(seq), 0).unwrap();
        }
        assert!(outbox.full_batch_waiting());
        let first = outbox.next_batch(0).unwrap();
        assert_eq!(seqs(&first), (1..=200).collect::<Vec<_>>());
        assert_eq!(outbox.next_batch(0), None, "one batch in flight at a time");
        outbox.failed(10);
        assert_eq!(outbox.next_batch(500), None, "the retry waits");
        let again = outbox.next_batch(1_010).unwrap();
        assert_eq!(again, first, "the same records, in the same order");
        assert!(!outbox.full_batch_waiting(), "50 records wait: the next tick sends them");
        outbox.acknowledged(1_020);
        assert_eq!(seqs(&outbox.next_batch(1_020).unwrap()), (201..=250).collect::<Vec<_>>());
        outbox.acknowledged(1_030);
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_rejected_batch_is_dropped_and_counted_not_resent() {
        let mut outbox = Outbox::new("gw-9", 10, AuditMode::FailClosed, 60);
        outbox.push(1, &record(1), 0).unwrap();
        outbox.push(2, &record(2), 0).unwrap();
        outbox.next_batch(0).unwrap();
        assert_eq!(outbox.rejected(1), 2);
        assert!(outbox.is_empty());
        assert_eq!(outbox.dropped(), 2);
    }

    #[test]
    fn fail_closed_refuses_new_requests_when_full_or_overdue() {
        let mut outbox = Outbox::new("gw", 2, AuditMode::FailClosed, 60);
        assert!(outbox.admits(0));
        outbox.push(1, &record(1), 0).unwrap();
        assert!(outbox.admits(60_000), "within the outage allowance");
        assert!(!outbox.admits(60_001), "a record waited too long");
        outbox.push(2, &record(2), 1).unwrap();
        assert!(!outbox.admits(2), "full");
        assert_eq!(outbox.push(3, &record(3), 2), Err(Dropped));
        outbox.next_batch(3).unwrap();
        outbox.acknowledged(4);
        assert!(outbox.admits(100_000));
    }

    #[test]
    fn fail_open_admits_and_counts_what_it_drops() {
        let mut outbox = Outbox::new("gw", 1, AuditMode::FailOpen, 1);
        outbox.push(1, &record(1), 0).unwrap();
        assert_eq!(outbox.push(2, &record(2), 0), Err(Dropped));
        assert!(outbox.admits(1_000_000));
        assert_eq!(outbox.dropped(), 1);
    }

    #[test]
    fn each_line_is_a_placed_record() {
        let mut outbox = Outbox::new("gw-9", 10, AuditMode::FailClosed, 60);
        outbox.push(7, &record(7), 0).unwrap();
        let batch = outbox.next_batch(0).unwrap();
        let line: Value = serde_json::from_slice(batch.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(
            (line["source"].as_str(), line["seq"].as_u64(), line["id"].as_str()),
            (Some("gw-9"), Some(7), Some("gw-9-7"))
        );
    }
}

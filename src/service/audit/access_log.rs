//! The second trail: Envoy's access log names each exchange's record and its hash
//! (`audit_record=<source>-<seq> audit_hash=<hex>`, written by the filter before Envoy logs the
//! request), and [`cross_check`] holds the store against it.
//!
//! The hash is hex SHA-256 of the record's canonical JSON without `blobs` — the exact bytes the
//! service stores — so a record edited in the store, even with the whole chain recomputed and
//! re-signed, no longer matches the line Envoy wrote elsewhere; a record deleted is missing.
//!
//! What a line's `audit_record` / `audit_hash` say, and what is checked:
//! - `-`: the filter never saw the request (an Envoy-only route such as `/api/hello`, or audit
//!   off): not checked.
//! - `unrecorded`: the filter handled the request but queued no record for it — reported.
//! - `<id>` `dropped`: the gateway dropped the record (`fail_open`, queue full) — reported.
//! - `<id>` `summary`: an unauthenticated refusal counted in summary `<id>`: the summary must be
//!   stored, and count at least as many requests as the lines naming it.
//! - `<id>` `<hex>`: the record must be stored with exactly those bytes. A stored **stand-in**
//!   naming that hash (the service refused the record the gateway made) is reported as such. A
//!   record missing from the store is **lost at shutdown** (or not delivered yet) when no later
//!   record of its source is stored — the tail of a gateway run — and **deleted** otherwise.
//!
//! Limits: deleting the newest records of a source looks like a loss at shutdown unless a signed
//! checkpoint covers them (then `verify` reports the truncation); records not yet delivered when
//! the store was read show as missing.

use std::collections::HashMap;

use serde_json::Value;

use super::retention::PrunedSeqs;
use super::store::AuditError;
use super::verify::Trail;
use crate::core::hex::hex;

/// The `audit_record` of a request the filter handled without queuing a record.
pub const UNRECORDED: &str = "unrecorded";
/// The `audit_hash` of a request counted in a summary of unauthenticated refusals.
pub const SUMMARY: &str = "summary";
/// The `audit_hash` of a record the gateway dropped.
pub const DROPPED: &str = "dropped";

/// One access-log line's claim about a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the access log.
    pub line: usize,
    /// `<source>-<seq>`, or [`UNRECORDED`].
    pub id: String,
    /// Hex SHA-256 of the stored record, [`SUMMARY`], [`DROPPED`] or `-`.
    pub hash: String,
    /// The line's `x-request-id=` field, when it has one.
    pub request_id: Option<String>,
}

/// The entries of an access log: every line whose `audit_record=` field is not `-`.
pub fn parse(text: &str) -> Vec<Entry> {
    let field = |line: &str, name: &str| {
        line.split_whitespace().find_map(|word| word.strip_prefix(name)).filter(|v| *v != "-").map(str::to_string)
    };
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            Some(Entry {
                line: i + 1,
                id: field(line, "audit_record=")?,
                hash: field(line, "audit_hash=").unwrap_or_else(|| "-".to_string()),
                request_id: field(line, "x-request-id="),
            })
        })
        .collect()
}

/// What the store holds for one id.
struct Stored {
    position: i64,
    hash: String,
    /// `stand_in.hash` and `stand_in.reason` of a stand-in.
    stand_in: Option<(String, String)>,
    /// `summary.count` of a summary.
    summary: Option<u64>,
}

/// What holding the store against the access log found.
#[derive(Debug, Default)]
pub struct CrossCheck {
    /// The problems, one line each.
    pub problems: Vec<String>,
    /// Entries whose record a signed prune removed (not problems).
    pub pruned: u64,
}

/// Holds `trail` against `entries`; a record missing from the store whose sequence number a
/// signed prune removed (`pruned`, from [`super::verify::verify`]) counts as pruned.
pub fn cross_check(trail: &dyn Trail, entries: &[Entry], pruned: &PrunedSeqs) -> Result<CrossCheck, AuditError> {
    let mut stored: HashMap<String, Stored> = HashMap::new();
    let mut newest: HashMap<String, i64> = HashMap::new();
    trail.records(&mut |row| {
        let hash = hex(&hmac_sha256::Hash::hash(row.record.as_bytes()));
        let value: Value = serde_json::from_str(&row.record).unwrap_or(Value::Null);
        let stand_in = value.get("stand_in").map(|s| {
            let text = |name: &str| s.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
            (text("hash"), text("reason"))
        });
        let summary = value.get("summary").and_then(|s| s.get("count")).and_then(Value::as_u64);
        let top = newest.entry(row.source.clone()).or_insert(row.seq);
        *top = (*top).max(row.seq);
        stored
            .insert(format!("{}-{}", row.source, row.seq), Stored { position: row.position, hash, stand_in, summary });
        Ok(())
    })?;
    let mut problems = Vec::new();
    let mut pruned_entries = 0;
    let mut summarised: HashMap<&str, (u64, usize)> = HashMap::new();
    for entry in entries {
        let request = entry.request_id.as_deref().map(|r| format!(" (request {r})")).unwrap_or_default();
        let at = format!("access log line {}{request}", entry.line);
        if entry.id == UNRECORDED {
            problems.push(format!("{at}: the filter answered the request without an audit record"));
            continue;
        }
        if entry.hash == DROPPED {
            problems.push(format!("{at}: record {} was dropped by the gateway (its audit queue was full)", entry.id));
            continue;
        }
        let Some(row) = stored.get(&entry.id) else {
            if split_id(&entry.id).is_some_and(|(source, seq)| pruned.contains(source, seq)) {
                pruned_entries += 1;
                continue;
            }
            let tail = split_id(&entry.id).is_none_or(|(source, seq)| newest.get(source).is_none_or(|top| seq > *top));
            problems.push(if tail {
                format!(
                    "{at}: record {} is not in the store: lost at shutdown (no later record of its gateway run is stored), or not delivered yet",
                    entry.id
                )
            } else {
                format!("{at}: record {} is not in the store (deleted: later records of its gateway run are stored)", entry.id)
            });
            continue;
        };
        if entry.hash == SUMMARY {
            match row.summary {
                Some(count) => summarised.entry(entry.id.as_str()).or_insert((count, entry.line)).1 = entry.line,
                None => problems.push(format!(
                    "position {}: record {} is not a summary of refusals, but {at} names it as one",
                    row.position, entry.id
                )),
            }
            continue;
        }
        match &row.stand_in {
            Some((hash, reason)) if *hash == entry.hash => problems.push(format!(
                "position {}: record {} was refused by the audit service ({reason}); the store holds the gateway's stand-in ({at})",
                row.position, entry.id
            )),
            _ if row.hash != entry.hash => problems.push(format!(
                "position {}: record {} differs from what the gateway sent ({at})",
                row.position, entry.id
            )),
            _ => {}
        }
    }
    let mut named: HashMap<&str, u64> = HashMap::new();
    for entry in entries.iter().filter(|e| e.hash == SUMMARY) {
        *named.entry(entry.id.as_str()).or_default() += 1;
    }
    let mut over: Vec<String> = summarised
        .iter()
        .filter_map(|(id, (count, line))| {
            let lines = named.get(id).copied().unwrap_or(0);
            (lines > *count).then(|| {
                format!("summary {id} counts {count} refused requests but the access log names it {lines} times (last at line {line})")
            })
        })
        .collect();
    over.sort();
    problems.extend(over);
    Ok(CrossCheck { problems, pruned: pruned_entries })
}

/// `<source>-<seq>` split at its last `-`.
fn split_id(id: &str) -> Option<(&str, i64)> {
    let (source, seq) = id.rsplit_once('-')?;
    Some((source, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::audit::store::{Checkpoint, StoredRecord};

    #[test]
    fn lines_the_filter_handled_are_entries() {
        let log = "\
[t] \"POST /v1/messages HTTP/1.1\" 200 x-request-id=a audit_record=gw-1-7 audit_hash=ab12\n\
[t] \"GET /api/hello HTTP/1.1\" 200 x-request-id=b audit_record=- audit_hash=-\n\
[t] \"POST /v1/messages HTTP/1.1\" 403 x-request-id=c audit_record=unrecorded audit_hash=-\n\
unrelated line\n";
        assert_eq!(
            parse(log),
            vec![
                Entry { line: 1, id: "gw-1-7".into(), hash: "ab12".into(), request_id: Some("a".into()) },
                Entry { line: 3, id: UNRECORDED.into(), hash: "-".into(), request_id: Some("c".into()) },
            ]
        );
    }

    struct Rows(Vec<(i64, &'static str, i64, String)>);

    impl Trail for Rows {
        fn complete(&self) -> bool {
            true
        }
        fn records(&self, visit: &mut dyn FnMut(StoredRecord) -> Result<(), AuditError>) -> Result<(), AuditError> {
            for (position, source, seq, record) in &self.0 {
                visit(StoredRecord {
                    position: *position,
                    source: source.to_string(),
                    seq: *seq,
                    time: 0,
                    session_id: None,
                    record: record.clone(),
                    prev_hash: String::new(),
                    hash: String::new(),
                })?;
            }
            Ok(())
        }
        fn blobs(&self, _: &mut dyn FnMut(String, String) -> Result<(), AuditError>) -> Result<(), AuditError> {
            Ok(())
        }
        fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
            Ok(Vec::new())
        }
        fn prunes(&self) -> Result<Vec<crate::service::audit::retention::Prune>, AuditError> {
            Ok(Vec::new())
        }
    }

    fn sha(text: &str) -> String {
        hex(&hmac_sha256::Hash::hash(text.as_bytes()))
    }

    #[test]
    fn each_way_a_request_can_lack_its_stored_record_is_named_distinctly() {
        let kept = r#"{"id":"gw-a-1"}"#.to_string();
        let stand_in = r#"{"id":"gw-a-3","stand_in":{"hash":"cafe","reason":"line 1: too deep"}}"#.to_string();
        let summary = r#"{"id":"gw-a-4","summary":{"count":2}}"#.to_string();
        let rows = Rows(vec![(1, "gw-a", 1, kept.clone()), (2, "gw-a", 3, stand_in), (3, "gw-a", 4, summary)]);
        let entry = |line: usize, id: &str, hash: &str| Entry {
            line,
            id: id.into(),
            hash: hash.into(),
            request_id: Some(format!("r{line}")),
        };
        let entries = vec![
            entry(1, "gw-a-1", &sha(&kept)),
            entry(2, "gw-a-2", "beef"),
            entry(3, "gw-a-3", "cafe"),
            entry(4, "gw-a-4", SUMMARY),
            entry(5, "gw-a-4", SUMMARY),
            entry(6, "gw-a-5", "f00d"),
            entry(7, UNRECORDED, "-"),
            entry(8, "gw-a-6", DROPPED),
        ];
        let problems = cross_check(&rows, &entries, &PrunedSeqs::default()).unwrap().problems;
        let find = |needle: &str| problems.iter().filter(|p| p.contains(needle)).count();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert_eq!(find("line 2 (request r2): record gw-a-2 is not in the store (deleted"), 1, "{problems:#?}");
        assert_eq!(find("record gw-a-3 was refused by the audit service (line 1: too deep)"), 1, "{problems:#?}");
        assert_eq!(find("record gw-a-5 is not in the store: lost at shutdown"), 1, "{problems:#?}");
        assert_eq!(find("line 7 (request r7): the filter answered the request without an audit record"), 1);
        assert_eq!(find("record gw-a-6 was dropped by the gateway"), 1);
        let over = [entry(9, "gw-a-4", SUMMARY), entry(10, "gw-a-4", SUMMARY), entry(11, "gw-a-4", SUMMARY)];
        let problems = cross_check(&rows, &over, &PrunedSeqs::default()).unwrap().problems;
        assert!(problems[0].contains("summary gw-a-4 counts 2 refused requests but the access log names it 3 times"));
    }
}

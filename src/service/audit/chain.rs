//! The audit trail's byte-level rules (docs/audit.md, "Canonical bytes and hashing"): canonical
//! JSON, the hash chain, blob names, checkpoint payloads, and the parsing of one ingested record.
//!
//! - **Canonical JSON** ([`canonical`]): the value re-serialized with every object's keys sorted
//!   by their UTF-8 bytes, no insignificant whitespace, strings and numbers written by
//!   `serde_json` (shortest round-trip numbers, `\"`, `\\` and control characters escaped,
//!   everything else literal UTF-8). The stored record text is the canonical JSON of the record
//!   as received, without its `blobs` member.
//! - **Chain**: `hash = hex(SHA-256(prev_hash ‖ record))`, where `prev_hash` is the 64 lower-case
//!   hex characters of the previous row's hash (as ASCII) and `record` the stored text; the first
//!   row's `prev_hash` is [`GENESIS`] (64 zeros).
//! - **Blobs**: a blob is a JSON *string* (the exact text of a message or system prompt as the
//!   gateway forwarded it); its name is `sha256:` + hex(SHA-256(the string's UTF-8 bytes)).
//!   A record references blobs by name in `request.system` and `request.messages[]`.
//! - **Checkpoints**: the signed bytes are the canonical JSON of
//!   `{"position": P, "hash": H, "time": T}`, i.e. `{"hash":"…","position":P,"time":T}`.
//!
//! Limits: numbers beyond what `serde_json` represents exactly (integers outside i64/u64) are
//! canonicalized as f64, so the filter must not rely on their exact digits.

use serde_json::{Map, Value};
use std::fmt;

/// `prev_hash` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub use crate::core::audit::canonical::canonical;
use crate::core::audit::canonical::sha256_hex;
/// Blob names follow the filter's rule (the gateway names them, the service checks them).
pub use crate::core::audit::record::{blob_name, BLOB_PREFIX};

/// The chain hash of a row: hex(SHA-256(`prev_hash` ‖ `record`)).
pub fn chain_hash(prev_hash: &str, record: &[u8]) -> String {
    sha256_hex(&[prev_hash.as_bytes(), record])
}

/// Whether `name` looks like a blob name (`sha256:` and 64 lower-case hex characters).
pub fn is_blob_name(name: &str) -> bool {
    name.strip_prefix(BLOB_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// The bytes a checkpoint's signature covers.
pub fn checkpoint_payload(position: i64, hash: &str, time: i64) -> Vec<u8> {
    canonical(&serde_json::json!({"position": position, "hash": hash, "time": time}))
}

/// The blob names a record references: `request.system` and `request.messages[]` (strings that
/// are blob names; anything else is ignored).
pub fn referenced_blobs(record: &Value) -> Vec<String> {
    let Some(request) = record.get("request") else { return Vec::new() };
    let system = request.get("system").into_iter();
    let messages = request.get("messages").and_then(Value::as_array).into_iter().flatten();
    system.chain(messages).filter_map(Value::as_str).filter(|n| is_blob_name(n)).map(str::to_string).collect()
}

/// One record as ingested: the indexed columns, the canonical stored text, and the blobs it
/// carries (already checked against their names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRecord {
    /// The gateway instance.
    pub source: String,
    /// Sequence number within the source (≥ 1).
    pub seq: i64,
    /// The record id (`source-seq`).
    pub id: String,
    /// The client session, if known.
    pub session_id: Option<String>,
    /// The CI job, if any.
    pub job_id: Option<String>,
    /// `identity.subject`.
    pub subject: Option<String>,
    /// `identity.role`.
    pub role: Option<String>,
    /// `timings.start` (else `timings.end`, else the ingest time), ms since the epoch.
    pub time: i64,
    /// `outcome`.
    pub outcome: Option<String>,
    /// The canonical JSON of the record without `blobs`.
    pub record: String,
    /// (name, content) of the blobs the record carries.
    pub blobs: Vec<(String, String)>,
}

/// Why an ingested line is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Not JSON, or not UTF-8.
    NotJson(String),
    /// JSON, but not an object.
    NotObject,
    /// A required member is missing or has the wrong type.
    Field(&'static str, &'static str),
    /// A blob's name is malformed or does not match its content.
    Blob(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson(e) => write!(f, "not a JSON record: {e}"),
            Self::NotObject => f.write_str("a record must be a JSON object"),
            Self::Field(name, what) => write!(f, "`{name}` must be {what}"),
            Self::Blob(e) => write!(f, "blobs: {e}"),
        }
    }
}

impl std::error::Error for RecordError {}

fn optional_string(map: &Map<String, Value>, path: &[&str]) -> Option<String> {
    let mut value = map.get(*path.first()?)?;
    for key in path.iter().skip(1) {
        value = value.get(key)?;
    }
    value.as_str().map(str::to_string)
}

fn optional_i64(map: &Map<String, Value>, path: &[&str]) -> Option<i64> {
    let mut value = map.get(*path.first()?)?;
    for key in path.iter().skip(1) {
        value = value.get(key)?;
    }
    value.as_i64()
}

/// Parses one NDJSON line of `POST /v1/audit/records`: a version 1 record with `source`
/// (non-empty string), `seq` (integer ≥ 1), `id` (string) and optional `blobs` (object of
/// name → string content; each name must be the content's name).
pub fn parse_record(line: &[u8], now_ms: i64) -> Result<IncomingRecord, RecordError> {
    let value: Value = serde_json::from_slice(line).map_err(|e| RecordError::NotJson(e.to_string()))?;
    let Value::Object(mut map) = value else { return Err(RecordError::NotObject) };
    if map.get("version").and_then(Value::as_u64) != Some(1) {
        return Err(RecordError::Field("version", "1"));
    }
    let source = map
        .get("source")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .ok_or(RecordError::Field("source", "a non-empty string"))?
        .to_string();
    let seq = map
        .get("seq")
        .and_then(Value::as_i64)
        .filter(|s| *s >= 1)
        .ok_or(RecordError::Field("seq", "an integer ≥ 1"))?;
    let id = map.get("id").and_then(Value::as_str).ok_or(RecordError::Field("id", "a string"))?.to_string();
    let mut blobs = Vec::new();
    match map.remove("blobs") {
        None | Some(Value::Null) => {}
        Some(Value::Object(entries)) => {
            for (name, content) in entries {
                let Value::String(content) = content else {
                    return Err(RecordError::Blob(format!("{name}: the content must be a JSON string")));
                };
                if !is_blob_name(&name) {
                    return Err(RecordError::Blob(format!("{name:?} is not sha256:<64 lower-case hex>")));
                }
                if blob_name(&content) != name {
                    return Err(RecordError::Blob(format!("{name}: the content does not hash to its name")));
                }
                blobs.push((name, content));
            }
        }
        Some(_) => return Err(RecordError::Field("blobs", "an object of name → string")),
    }
    let time =
        optional_i64(&map, &["timings", "start"]).or_else(|| optional_i64(&map, &["timings", "end"])).unwrap_or(now_ms);
    let record = Value::Object(map);
    let text = String::from_utf8(canonical(&record)).map_err(|e| RecordError::NotJson(e.to_string()))?;
    let Value::Object(map) = record else { return Err(RecordError::NotObject) };
    Ok(IncomingRecord {
        source,
        seq,
        id,
        session_id: optional_string(&map, &["session_id"]),
        job_id: optional_string(&map, &["job_id"]),
        subject: optional_string(&map, &["identity", "subject"]),
        role: optional_string(&map, &["identity", "role"]),
        time,
        outcome: optional_string(&map, &["outcome"]),
        record: text,
        blobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sha256_hex(bytes: &[u8]) -> String {
        crate::core::hex::hex(&hmac_sha256::Hash::hash(bytes))
    }

    #[test]
    fn the_service_stores_the_bytes_the_filter_hashed_for_the_access_log() {
        use crate::core::audit::trail::Ending;
        use crate::core::exchange::{Exchange, Gateway, RequestHead};
        use crate::core::identity::{TokenStatus, VerifiedClaims};
        let gateway = Gateway::new(include_str!("../../../envoy/policy.yaml"), |name| {
            Some(if name == "WARDEN_APPROVALS_VERDICT_KEY" { "A".repeat(43) } else { "sk-ant-test".to_string() })
        })
        .unwrap();
        let headers = vec![("content-type".to_string(), "application/json".to_string())];
        let token = TokenStatus::Verified(VerifiedClaims {
            subject: Some("alice".into()),
            issuer: Some("warden-demo".into()),
            audiences: vec![],
            issued_at: Some(1_800_000_000.0),
            expires_at: Some(1_800_000_900.0),
            groups: vec!["eng".into()],
            job: vec![("repository".into(), "org/app".into())],
            claims: vec![],
            token_id: Some("jti-1".into()),
        });
        let head = RequestHead { method: "POST", path: "/v1/messages", headers: &headers, token, now: 1_800_000_100.0 };
        let (exchange, _) = Exchange::start(&gateway, &head);
        let mut exchange = exchange;
        let body = json!({"model": "claude-sonnet-4-6", "max_tokens": 99_999, "system": "Be brief, é.",
                          "metadata": {"user_id": "user_ab_account__session_s-1"},
                          "messages": [{"role": "user", "content": "mail ann.lee@corp.io \"now\""}]});
        exchange.on_body_complete(&gateway, body.to_string().as_bytes());
        let answer = json!({"content": [{"type": "text", "text": "Done."}], "usage": {"output_tokens": 2}});
        exchange.on_response_headers(&gateway, &[(":status".to_string(), "200".to_string())]);
        exchange.on_delivered(answer.to_string().as_bytes(), 1_800_000_100_300);
        let ending = Ending { at_ms: 1_800_000_100_400, response_complete: true, client_gone: false };
        let sealed = exchange.finish_record(&gateway, ending).unwrap().seal("gw-t", 3).unwrap();

        let stored = parse_record(&sealed.line, 0).unwrap();
        assert_eq!(stored.id, sealed.id);
        assert_eq!(sha256_hex(stored.record.as_bytes()), sealed.hash, "the access log's hash is the stored bytes'");
        assert_eq!(stored.blobs.len(), 2, "the system prompt and the message");
        assert_eq!(stored.session_id.as_deref(), Some("s-1"));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_drops_whitespace() {
        let value: Value =
            serde_json::from_str(r#"{ "b": 1, "a": {"z": [1, 2.5, "x\"y"], "y": null}, "é": true }"#).unwrap();
        assert_eq!(
            String::from_utf8(canonical(&value)).unwrap(),
            r#"{"a":{"y":null,"z":[1,2.5,"x\"y"]},"b":1,"é":true}"#
        );
    }

    #[test]
    fn canonical_json_is_stable_when_parsed_again() {
        let value = json!({"n": 1e300, "s": "tab\tline\n", "u": "ü€😀", "neg": -0.5});
        let once = canonical(&value);
        let again = canonical(&serde_json::from_slice(&once).unwrap());
        assert_eq!(once, again);
    }

    #[test]
    fn the_chain_hash_covers_the_previous_hash_and_the_record() {
        let first = chain_hash(GENESIS, b"{}");
        assert_eq!(first, sha256_hex(format!("{GENESIS}{{}}").as_bytes()));
        assert_ne!(chain_hash(&first, b"{}"), first);
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn blob_names_are_the_sha256_of_the_string_bytes() {
        let name = blob_name("abc");
        assert_eq!(name, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(is_blob_name(&name));
        assert!(!is_blob_name("sha256:ABC"));
        assert!(!is_blob_name("md5:00"));
    }

    #[test]
    fn a_record_is_stored_without_its_blobs_and_keeps_their_names() {
        let message = r#"{"role":"user","content":"hi"}"#;
        let name = blob_name(message);
        let line = json!({
            "version": 1, "source": "gw-1", "seq": 3, "id": "gw-1-3", "session_id": "s1",
            "identity": {"subject": "alice", "role": "developer"}, "timings": {"start": 1234},
            "outcome": "completed", "request": {"messages": [name]}, "blobs": {name.clone(): message}
        });
        let record = parse_record(line.to_string().as_bytes(), 99).unwrap();
        assert_eq!((record.source.as_str(), record.seq, record.time), ("gw-1", 3, 1234));
        assert_eq!(record.subject.as_deref(), Some("alice"));
        assert_eq!(record.blobs, vec![(name.clone(), message.to_string())]);
        assert!(!record.record.contains("blobs"));
        let stored: Value = serde_json::from_str(&record.record).unwrap();
        assert_eq!(referenced_blobs(&stored), vec![name]);
    }

    #[test]
    fn malformed_records_and_blobs_are_refused_with_the_reason() {
        let refuse = |v: Value| parse_record(v.to_string().as_bytes(), 0).unwrap_err().to_string();
        assert!(refuse(json!({"version": 2, "source": "a", "seq": 1, "id": "a-1"})).contains("version"));
        assert!(refuse(json!({"version": 1, "source": "", "seq": 1, "id": "x"})).contains("source"));
        assert!(refuse(json!({"version": 1, "source": "a", "seq": 0, "id": "x"})).contains("seq"));
        let wrong = json!({"version": 1, "source": "a", "seq": 1, "id": "x", "blobs": {blob_name("a"): "b"}});
        assert!(refuse(wrong).contains("does not hash"));
        assert!(parse_record(b"[1]", 0).is_err());
        assert!(parse_record(b"{", 0).is_err());
    }

    #[test]
    fn the_checkpoint_payload_is_canonical() {
        assert_eq!(
            String::from_utf8(checkpoint_payload(5, "ab", 7)).unwrap(),
            r#"{"hash":"ab","position":5,"time":7}"#
        );
    }
}

//! The audit trail end to end: the real `warden serve` on a free 127.0.0.1 port ingests
//! synthetic records over HTTP (`POST /v1/audit/records`, gateway token from `warden serve
//! init`), then `warden audit verify|export|replay` read its database — intact, after restarts,
//! and after the SQLite file was tampered with directly (rusqlite), each kind of tampering named
//! with its first bad position.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection};
use serde_json::{json, Value};

mod common;

use common::{run, Serve, Workspace};
use warden::core::audit::record::blob_name;
use warden::core::hex::hex;

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&hmac_sha256::Hash::hash(bytes))
}

const POLICY: &str = common::AUDIT_POLICY;

/// What the audit tests add to the shared workspace.
impl Workspace {
    fn audit(name: &str) -> Self {
        Workspace::new("audit", name, POLICY)
    }

    fn db(&self) -> String {
        self.path("approvals.db").to_str().unwrap().to_string()
    }

    fn key_file(&self) -> String {
        self.path("approvals-verdict-key.pub").to_str().unwrap().to_string()
    }

    fn verify_db(&self, db: &str) -> (i32, String) {
        let (code, out, err) = run(&["audit", "verify", "--db", db, "--public-key-file", &self.key_file()], &[]);
        (code, format!("{out}{err}"))
    }

    /// A copy of the database (with its WAL, if any) to tamper with.
    fn copy_db(&self, name: &str) -> String {
        let target = self.path(name);
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", self.db()));
            let to = PathBuf::from(format!("{}{suffix}", target.display()));
            let _ = std::fs::remove_file(&to);
            if from.exists() {
                std::fs::copy(from, to).unwrap();
            }
        }
        target.to_str().unwrap().to_string()
    }
}

/// A running `warden serve` and the gateway token to send records with.
struct Server {
    serve: Serve,
    token: String,
}

impl Server {
    fn start(ws: &Workspace, checkpoint_every: u32) -> Self {
        let serve = ws.start(&["--checkpoint-every", &checkpoint_every.to_string()]);
        Self { serve, token: ws.gateway_token() }
    }

    /// POSTs an NDJSON batch; (status, JSON answer).
    fn ingest_text(&self, body: &str, token: &str) -> (u16, Value) {
        let (status, text) = common::post_records(&self.serve.base, body, token);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GETs a page with an optional bearer token; (status, body).
    fn page(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        let mut request = agent.get(&format!("{}{path}", self.serve.base));
        if let Some(token) = token {
            request = request.header("authorization", &format!("Bearer {token}"));
        }
        let mut response = request.call().unwrap();
        (response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default())
    }

    fn ingest(&self, records: &[Value]) -> Value {
        let body: String = records.iter().map(|r| format!("{r}\n")).collect();
        let (status, answer) = self.ingest_text(&body, &self.token);
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// Stops with SIGTERM (the service signs the head on its way out).
    fn stop(self) {
        self.serve.terminate();
    }
}

/// A record as the filter would write it.
fn record(source: &str, seq: i64, session: &str, messages: &[&str], new: &[&str], answer: Value) -> Value {
    let blobs: serde_json::Map<String, Value> =
        new.iter().map(|text| (blob_name(text), Value::String((*text).to_string()))).collect();
    json!({
        "version": 1, "source": source, "seq": seq, "id": format!("{source}-{seq}"),
        "request_id": format!("req_warden_{seq}"), "session_id": session, "job_id": null,
        "identity": {"issuer": "warden-demo", "subject": "alice", "groups": ["eng"], "role": "developer"},
        "endpoint": "messages", "method": "POST", "path": "/v1/messages?beta=true",
        "decision": {"allowed": true, "reason": null, "status": 200, "message": null},
        "approval": null, "model": "claude-sonnet-4-6",
        "request": {"params": {"max_tokens": 1024, "stream": true},
                    "messages": messages.iter().map(|m| blob_name(m)).collect::<Vec<_>>()},
        "response": {"status": 200, "stream": true, "content": answer, "stop_reason": "end_turn", "error": null},
        "dlp": {"masked": {}, "blocked": {}, "audited": {}},
        "usage": {"input_tokens": 100 + seq, "output_tokens": 20, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
        "timings": {"start": 1_800_000_000_000_i64 + seq * 1000, "first_byte": 1_800_000_000_100_i64 + seq * 1000,
                    "end": 1_800_000_000_500_i64 + seq * 1000},
        "outcome": "completed", "blobs": blobs
    })
}

/// A one-message record (`turn N`).
fn simple(source: &str, seq: i64) -> Value {
    let text = format!(r#"{{"role":"user","content":"turn {seq} from {source}"}}"#);
    record(
        source,
        seq,
        &format!("s-{source}"),
        &[&text],
        &[&text],
        json!([{"type": "text", "text": format!("answer {seq}")}]),
    )
}

fn tampered(ws: &Workspace, name: &str, sql: &str) -> (i32, String) {
    let db = ws.copy_db(name);
    let connection = Connection::open(&db).unwrap();
    connection.execute_batch(sql).unwrap();
    drop(connection);
    ws.verify_db(&db)
}

fn row_hash(connection: &Connection, position: i64) -> String {
    connection.query_row("SELECT hash FROM audit_records WHERE position = ?1", [position], |r| r.get(0)).unwrap()
}

#[test]
fn an_ingested_trail_verifies_and_each_kind_of_tampering_is_named_at_its_first_position() {
    let ws = Workspace::audit("tamper");
    let server = Server::start(&ws, 5);
    let records: Vec<Value> = (1..=12).map(|seq| simple("gw-1", seq)).collect();
    for batch in records.chunks(4) {
        server.ingest(batch);
    }
    server.stop();
    let (code, out) = ws.verify_db(&ws.db());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: 12 records, 12 blobs, 3 checkpoints (signatures verified)"), "{out}");

    let expect = |(code, out): (i32, String), needle: &str| {
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(needle), "expected {needle:?} in:\n{out}");
    };
    expect(
        tampered(
            &ws,
            "edit.db",
            "UPDATE audit_records SET record = replace(record, 'answer 7', 'answer 8') WHERE position = 7",
        ),
        "FAIL position 7: modified",
    );
    let deleted = tampered(&ws, "delete.db", "DELETE FROM audit_records WHERE position = 4");
    expect(deleted.clone(), "FAIL position 4: deleted");
    expect(deleted, "source gw-1: seq 4 missing");
    expect(
        tampered(
            &ws,
            "swap.db",
            "UPDATE audit_records SET position = -3 WHERE position = 3;
             UPDATE audit_records SET position = 3 WHERE position = 8;
             UPDATE audit_records SET position = 8 WHERE position = -3;",
        ),
        "FAIL position 3: reordered",
    );
    expect(
        tampered(&ws, "truncate.db", "DELETE FROM audit_records WHERE position > 10"),
        "FAIL position 11: truncated",
    );
    let name = blob_name(r#"{"role":"user","content":"turn 2 from gw-1"}"#);
    expect(
        tampered(&ws, "blob.db", &format!("UPDATE audit_blobs SET content = 'forged' WHERE name = '{name}'")),
        &format!("blob {name}: modified"),
    );
    expect(tampered(&ws, "blob-gone.db", &format!("DELETE FROM audit_blobs WHERE name = '{name}'")), "is missing");

    // A forged record inserted at position 6 with a well-formed hash of its own.
    let db = ws.copy_db("insert.db");
    let connection = Connection::open(&db).unwrap();
    connection
        .execute_batch(
            "UPDATE audit_records SET position = position + 1000 WHERE position >= 6;
             UPDATE audit_records SET position = position - 999 WHERE position >= 1006;",
        )
        .unwrap();
    let prev = row_hash(&connection, 5);
    let forged = r#"{"id":"gw-x-1","outcome":"completed","seq":1,"source":"gw-x","version":1}"#;
    let hash = sha256_hex(format!("{prev}{forged}").as_bytes());
    connection
        .execute(
            "INSERT INTO audit_records (position, source, seq, id, time, record, prev_hash, hash)
             VALUES (6, 'gw-x', 1, 'gw-x-1', 0, ?1, ?2, ?3)",
            params![forged, prev, hash],
        )
        .unwrap();
    drop(connection);
    expect(ws.verify_db(&db), "FAIL position 6: inserted");

    // A wholesale rewrite (every hash recomputed after an edit) still contradicts the signed checkpoints.
    let db = ws.copy_db("rewrite.db");
    let connection = Connection::open(&db).unwrap();
    connection
        .execute("UPDATE audit_records SET record = replace(record, 'answer 9', 'answer X') WHERE position = 9", [])
        .unwrap();
    let mut prev = row_hash(&connection, 8);
    for position in 9..=12 {
        let text: String = connection
            .query_row("SELECT record FROM audit_records WHERE position = ?1", [position], |r| r.get(0))
            .unwrap();
        let hash = sha256_hex(format!("{prev}{text}").as_bytes());
        connection
            .execute(
                "UPDATE audit_records SET prev_hash = ?1, hash = ?2 WHERE position = ?3",
                params![prev, hash, position],
            )
            .unwrap();
        prev = hash;
    }
    drop(connection);
    expect(ws.verify_db(&db), "FAIL position 10: modified");

    // A forged checkpoint signature.
    expect(
        tampered(&ws, "signature.db", "UPDATE audit_checkpoints SET time = time + 1 WHERE position = 5"),
        "checkpoint at position 5: the signature is invalid",
    );
}

#[test]
fn sequence_gaps_are_reported_per_source_and_an_export_verifies_on_its_own() {
    let ws = Workspace::audit("gaps");
    let server = Server::start(&ws, 1000);
    server.ingest(&[simple("gw-1", 1), simple("gw-2", 1), simple("gw-1", 2), simple("gw-2", 2), simple("gw-2", 4)]);
    server.stop();
    let (code, out) = ws.verify_db(&ws.db());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL source gw-2: seq 3 missing"), "{out}");
    assert!(!out.contains("gw-1:"), "{out}");
    assert!(!out.contains("FAIL position"), "{out}");

    let export = ws.path("export.jsonl");
    let export = export.to_str().unwrap();
    let (code, _, err) = run(&["audit", "export", "--db", &ws.db(), "--output", export], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&["audit", "verify", "--export", export, "--public-key-file", &ws.key_file()], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seq 3 missing") && out.contains("5 records, 5 blobs, 1 checkpoints"), "{out}");

    let session = ws.path("session.jsonl");
    let session = session.to_str().unwrap();
    let (code, _, err) = run(&["audit", "export", "--db", &ws.db(), "--session", "s-gw-1", "--output", session], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&["audit", "verify", "--export", session, "--public-key-file", &ws.key_file()], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: 2 records, 2 blobs") && out.contains("partial export"), "{out}");
    let edited = std::fs::read_to_string(session).unwrap().replace("answer 2", "answer 9");
    std::fs::write(session, edited).unwrap();
    let (code, out, _) = run(&["audit", "verify", "--export", session], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("modified"), "{out}");

    let (code, _, err) = run(&["audit", "verify", "--db", ws.path("missing.db").to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn re_sent_batches_are_acknowledged_once_and_a_bad_line_costs_only_itself() {
    let ws = Workspace::audit("idempotent");
    let server = Server::start(&ws, 1000);
    let batch = [simple("gw-1", 1), simple("gw-1", 2)];
    let first = server.ingest(&batch);
    assert_eq!((first["stored"].as_u64(), first["duplicates"].as_u64()), (Some(2), Some(0)));
    assert_eq!(first["head"]["position"], 2);
    let again = server.ingest(&[batch[0].clone(), batch[1].clone(), simple("gw-1", 3)]);
    assert_eq!((again["stored"].as_u64(), again["duplicates"].as_u64()), (Some(1), Some(2)));
    assert_eq!(again["head"]["position"], 3);

    // Another user's record nested past the parser's limit, a conflicting re-send and a line
    // that is no record: each is refused and named, and the records around them are stored.
    let mut changed = simple("gw-1", 2);
    changed["outcome"] = json!("client_abort");
    let deep = format!(
        r#"{{"version":1,"source":"gw-1","seq":6,"id":"gw-1-6","request":{{"params":{{"x":{}0{}}}}}}}"#,
        "[".repeat(126),
        "]".repeat(126)
    );
    let body = format!("{}\n{changed}\n{{\"version\": 1}}\n{deep}\n{}\n", simple("gw-1", 4), simple("gw-1", 5));
    let (status, answer) = server.ingest_text(&body, &server.token);
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["stored"].as_u64(), answer["duplicates"].as_u64()), (Some(2), Some(0)), "{answer}");
    let refused: Vec<(u64, Value)> =
        answer["refused"].as_array().unwrap().iter().map(|r| (r["line"].as_u64().unwrap(), r["id"].clone())).collect();
    assert_eq!(refused, vec![(2, json!("gw-1-2")), (3, Value::Null), (4, json!("gw-1-6"))], "{answer}");
    let (status, _) = server.ingest_text(&format!("{}\n", simple("gw-1", 6)), "wrong-token-wrong-token");
    assert_eq!(status, 401);
    let (status, _) = server.ingest_text("\n\n", &server.token);
    assert_eq!(status, 400, "a body without a line");
    let now = server.ingest(&[simple("gw-1", 6)]);
    assert_eq!((now["stored"].as_u64(), now["head"]["position"].as_i64()), (Some(1), Some(6)));
    server.stop();
    let (code, out) = ws.verify_db(&ws.db());
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_chain_continues_across_a_restart_and_verifies() {
    let ws = Workspace::audit("restart");
    let server = Server::start(&ws, 1000);
    server.ingest(&[simple("gw-1", 1), simple("gw-1", 2), simple("gw-1", 3)]);
    server.stop();
    let server = Server::start(&ws, 1000);
    let answer = server.ingest(&[simple("gw-2", 1), simple("gw-2", 2)]);
    assert_eq!(answer["head"]["position"], 5);
    server.stop();
    let (code, out) = ws.verify_db(&ws.db());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: 5 records, 5 blobs, 2 checkpoints (signatures verified); head position 5"), "{out}");
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn a_session_replays_each_turn_once_in_order() {
    let ws = Workspace::audit("replay");
    let server = Server::start(&ws, 1000);
    let u1 = r#"{"role":"user","content":"What is in the repository?"}"#;
    let a1_content = json!([{"type": "text", "text": "Let me look."},
                            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]);
    let a1 = json!({"role": "assistant", "content": a1_content}).to_string();
    let u2 = r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"README.md src"}]}"#;
    let a2_content = json!([{"type": "text", "text": "A README and a src directory."}]);
    let a2 = json!({"role": "assistant", "content": a2_content}).to_string();
    let u3 = r#"{"role":"user","content":[{"type":"text","text":"Summarize the README, please."}]}"#;
    let a3_content = json!([{"type": "text", "text": "It describes Warden."}]);
    let mut third = record("gw-1", 3, "sess-1", &[u1, &a1, u2, &a2, u3], &[&a2, u3], a3_content);
    third["approval"] =
        json!({"review": "rev_0123456789abcdef", "reviewer": "bob", "reasons": ["opus_model"], "decision": "approved"});
    third["dlp"]["masked"] = json!({"github-pat": 1});
    server.ingest(&[
        record("gw-1", 1, "sess-1", &[u1], &[u1], a1_content),
        record("gw-1", 2, "sess-1", &[u1, &a1, u2], &[&a1, u2], a2_content),
        simple("gw-1", 4),
        third,
    ]);
    server.stop();
    let (code, out, err) = run(&["audit", "replay", "--db", &ws.db(), "--session", "sess-1"], &[]);
    assert_eq!(code, 0, "{err}");
    let pieces = [
        "What is in the repository?",
        "Let me look.",
        "tool call Bash (toolu_1): {\"command\":\"ls\"}",
        "tool result (toolu_1): README.md src",
        "A README and a src directory.",
        "Summarize the README, please.",
        "approval: approved by bob (review rev_0123456789abcdef)",
        "It describes Warden.",
        "dlp: masked github-pat×1",
    ];
    let mut at = 0;
    for piece in pieces {
        assert_eq!(count(&out, piece), 1, "{piece:?} shown once in:\n{out}");
        let found = out[at..].find(piece).unwrap_or_else(|| panic!("{piece:?} out of order in:\n{out}"));
        at += found + piece.len();
    }
    assert_eq!(count(&out, "── gw-1-"), 3, "{out}");
    assert!(!out.contains("turn 4"), "{out}");
    assert!(out.contains("tokens: in 103, out 20"), "{out}");
    let (code, _, _) = run(&["audit", "replay", "--db", &ws.db(), "--session", "nobody"], &[]);
    assert_eq!(code, 2);
    let _ = Path::new(&ws.db());
}

#[test]
fn auditors_list_sessions_with_filters_and_read_their_transcripts() {
    let ws = Workspace::audit("pages");
    let server = Server::start(&ws, 1000);
    let mut refused = simple("gw-1", 3);
    refused["session_id"] = json!("sess-b");
    refused["identity"]["subject"] = json!("carol");
    refused["decision"] = json!({"allowed": false, "reason": "model_not_allowed", "status": 403, "message": "no"});
    refused["outcome"] = json!("refused");
    server.ingest(&[simple("gw-1", 1), simple("gw-1", 2), refused]);
    let bob = ws.mint("bob", "leads,audit");

    let (status, body) = server.page("/sessions", Some(&bob));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#"id="sessions""#) && body.contains(r#"id="session-s-gw-1""#), "{body}");
    assert!(body.contains(r#"id="session-sess-b""#), "{body}");
    let (_, refusing) = server.page("/sessions?decision=refused", Some(&bob));
    assert!(refusing.contains(r#"id="session-sess-b""#) && !refusing.contains(r#"id="session-s-gw-1""#), "{refusing}");
    let (_, alice) = server.page("/sessions?user=alice&role=developer", Some(&bob));
    assert!(alice.contains(r#"id="session-s-gw-1""#) && !alice.contains(r#"id="session-sess-b""#), "{alice}");

    let (status, transcript) = server.page("/sessions/s-gw-1", Some(&bob));
    assert_eq!(status, 200, "{transcript}");
    assert!(transcript.contains(r#"id="transcript""#), "{transcript}");
    assert_eq!(transcript.matches(r#"class="turn card""#).count(), 2, "{transcript}");
    assert!(transcript.contains("turn 2 from gw-1") && transcript.contains("answer 2"), "{transcript}");
    let (_, refused_page) = server.page("/sessions/sess-b", Some(&bob));
    assert!(refused_page.contains("<b>Refused</b>: <code>model_not_allowed</code>"), "{refused_page}");
    assert_eq!(server.page("/sessions/unknown", Some(&bob)).0, 404);

    let eve = ws.mint("eve", "eng");
    assert_eq!(server.page("/sessions", Some(&eve)).0, 403);
    // Deciding reviews does not let an approver read what other users sent Claude.
    let lead = ws.mint("dana", "leads");
    for page in ["/sessions", "/sessions/s-gw-1"] {
        let (status, body) = server.page(page, Some(&lead));
        assert_eq!(status, 403, "{page}");
        assert!(body.contains("approvals.auditors") && !body.contains("turn 2 from gw-1"), "{body}");
    }
    let (_, anonymous) = server.page("/sessions", None);
    assert!(!anonymous.contains(r#"id="sessions""#), "{anonymous}");
}

/// The `href` of the element with `id` (or of the first `<a class="…">`), unescaped.
fn link(page: &str, marker: &str) -> String {
    let at = page.find(marker).unwrap_or_else(|| panic!("{marker} not on the page:\n{page}"));
    let before = &page[..at];
    let start = before.rfind("href=\"").unwrap() + 6;
    let end = start + page[start..].find('"').unwrap();
    page[start..end].replace("&amp;", "&")
}

#[test]
fn a_long_session_pages_in_request_order_with_earlier_and_later_links() {
    let ws = Workspace::audit("long-session");
    let server = Server::start(&ws, 1000);
    // 120 requests; the workers stored the second half first.
    let records: Vec<Value> = (1..=120).map(|seq| simple("gw-1", seq)).collect();
    server.ingest(&records[60..]);
    server.ingest(&records[..60]);
    let bob = ws.mint("bob", "leads,audit");
    let (status, first) = server.page("/sessions/s-gw-1", Some(&bob));
    assert_eq!(status, 200, "{first}");
    assert!(first.contains("Requests 1–50 of 120"), "{first}");
    assert_eq!(first.matches(r#"class="turn card""#).count(), 50);
    assert!(first.contains("turn 1 from gw-1") && first.contains("turn 50 from gw-1"));
    assert!(!first.contains("turn 51 from gw-1") && !first.contains(r#"class="earlier""#));
    let (_, second) = server.page(&link(&first, r#" class="later""#), Some(&bob));
    assert!(second.contains("Requests 51–100 of 120"), "{second}");
    assert!(second.contains(r##"href="#turn-"##) && second.contains(">#51</a>"), "{second}");
    assert!(second.contains("turn 51 from gw-1") && !second.contains("turn 50 from gw-1"));
    let (_, back) = server.page(&link(&second, r#" class="earlier""#), Some(&bob));
    assert!(back.contains("Requests 1–50 of 120"), "{back}");
    let (_, last) = server.page(&link(&first, r#" class="last""#), Some(&bob));
    assert!(last.contains("Requests 71–120 of 120") && !last.contains(r#"class="later""#), "{last}");
    let (_, small) = server.page("/sessions/s-gw-1?limit=7&after=1800000001000.1", Some(&bob));
    assert_eq!(small.matches(r#"class="turn card""#).count(), 7, "{small}");
    for bad in ["?limit=0", "?limit=201", "?after=x", "?after=1.2&before=1.2", "?at=first"] {
        let (status, body) = server.page(&format!("/sessions/s-gw-1{bad}"), Some(&bob));
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[test]
fn sessions_are_filtered_by_dates_with_offsets_and_listed_page_by_page() {
    let ws = Workspace::audit("session-dates");
    let server = Server::start(&ws, 1000);
    // Sessions s-gw-1 … s-gw-5, one request each, at 1_800_000_001_000 + (n-1)·1000 ms
    // (2027-01-15T08:00:01Z …).
    let records: Vec<Value> = (1..=5)
        .map(|n| {
            let mut r = simple("gw", n);
            r["session_id"] = json!(format!("s-{n}"));
            r
        })
        .collect();
    server.ingest(&records);
    let bob = ws.mint("bob", "leads,audit");
    let ids = |page: &str| -> Vec<String> {
        page.match_indices(r#"<tr id="session-"#)
            .map(|(at, m)| page[at + m.len()..].split('"').next().unwrap().to_string())
            .collect()
    };
    let (_, all) = server.page("/sessions", Some(&bob));
    assert_eq!(ids(&all), ["s-5", "s-4", "s-3", "s-2", "s-1"], "{all}");
    assert!(all.contains(r#"type="datetime-local" name="since""#) && !all.contains("Since (ms)"), "{all}");
    // The same instant written three ways: UTC, an offset, epoch ms.
    for since in ["2027-01-15T08:00:03Z", "2027-01-15T09:00:03%2B01:00", "1800000003000"] {
        let (status, page) = server.page(&format!("/sessions?since={since}"), Some(&bob));
        assert_eq!(status, 200, "{page}");
        assert_eq!(ids(&page), ["s-5", "s-4", "s-3"], "since={since}");
    }
    let (_, window) = server.page("/sessions?since=2027-01-15&until=2027-01-15T08:00:03", Some(&bob));
    assert_eq!(ids(&window), ["s-2", "s-1"], "{window}");
    // Without the console's script the chosen bound reads as UTC; the script shows it in local time.
    assert!(window.contains(r#"value="2027-01-15T08:00" data-instant="1800000003000""#), "{window}");
    let (_, none) = server.page("/sessions?until=2027-01-15", Some(&bob));
    assert!(none.contains(r#"id="no-sessions""#), "{none}");
    let (status, bad) = server.page("/sessions?since=2027-02-30", Some(&bob));
    assert_eq!(status, 400);
    assert!(bad.contains("since: &quot;2027-02-30&quot; is not a date or time"), "{bad}");

    let (_, page1) = server.page("/sessions?limit=2&role=developer", Some(&bob));
    assert_eq!(ids(&page1), ["s-5", "s-4"]);
    assert!(!page1.contains(r#"id="sessions-newer""#), "the newest page has nothing newer");
    let older = link(&page1, r#" id="sessions-older""#);
    assert!(older.contains("role=developer") && older.contains("limit=2"), "filters carry over: {older}");
    let (_, page2) = server.page(&older, Some(&bob));
    assert_eq!(ids(&page2), ["s-3", "s-2"]);
    let (_, page3) = server.page(&link(&page2, r#" id="sessions-older""#), Some(&bob));
    assert_eq!(ids(&page3), ["s-1"]);
    assert!(!page3.contains(r#"id="sessions-older""#), "{page3}");
    let (_, again) = server.page(&link(&page3, r#" id="sessions-newer""#), Some(&bob));
    assert_eq!(ids(&again), ["s-3", "s-2"]);
    assert_eq!(server.page("/sessions?older=nope", Some(&bob)).0, 400);
}

#[test]
fn script_injected_through_a_session_id_a_subject_a_prompt_or_a_tool_input_stays_text() {
    let ws = Workspace::audit("injection");
    let server = Server::start(&ws, 1000);
    let evil = r#"<script>alert(1)</script><img src=x onerror=alert(2)>"#;
    let prompt =
        json!({"role": "user", "content": format!("{evil}<system-reminder>{evil}</system-reminder>")}).to_string();
    let call = json!({"type": "tool_use", "id": evil, "name": evil, "input": {"command": evil}});
    let mut r = record("gw", 1, evil, &[&prompt], &[&prompt], json!([call, {"type": "text", "text": evil}]));
    r["identity"]["subject"] = json!(evil);
    r["identity"]["role"] = json!(evil);
    r["job_id"] = json!(evil);
    r["model"] = json!(evil);
    let result =
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": evil, "content": evil}]}).to_string();
    let mut r2 = record("gw", 2, evil, &[&prompt, &result], &[&result], json!([]));
    r2["identity"]["subject"] = json!(evil);
    r2["decision"] = json!({"allowed": false, "reason": evil, "status": 403, "message": evil});
    r2["approval"] = json!({"review": evil, "reviewer": evil, "decision": evil});
    server.ingest(&[r, r2]);
    let bob = ws.mint("bob", "leads,audit");
    let (status, list) = server.page(&format!("/sessions?user={}", urlencode(evil)), Some(&bob));
    assert_eq!(status, 200, "{list}");
    let encoded_id = urlencode(evil);
    assert!(list.contains(&format!(r#"href="/sessions/{encoded_id}""#)), "{list}");
    let (status, page) = server.page(&format!("/sessions/{encoded_id}"), Some(&bob));
    assert_eq!(status, 200, "{page}");
    for shown in [&list, &page] {
        assert!(!shown.contains("<script>alert") && !shown.contains("<img src=x"), "{shown}");
        assert_eq!(shown.matches("<script").count(), 1, "only the console's own script tag: {shown}");
    }
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
    assert!(page.contains(r#"<details class="tool-call">"#) && page.contains(r#"<details class="reminder">"#));
    assert!(page.contains(r#"<details class="tool-result">"#), "{page}");
}

/// Percent-encodes every byte but ASCII letters and digits.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[test]
fn export_takes_dates_and_times_as_well_as_epoch_milliseconds() {
    let ws = Workspace::audit("export-dates");
    let server = Server::start(&ws, 1000);
    server.ingest(&(1..=4).map(|seq| simple("gw", seq)).collect::<Vec<_>>());
    server.stop();
    let count = |args: &[&str]| -> usize {
        let mut all = vec!["audit", "export", "--db"];
        let db = ws.db();
        all.push(&db);
        all.extend_from_slice(args);
        let (code, out, err) = run(&all, &[]);
        assert_eq!(code, 0, "{args:?}: {err}");
        out.lines().filter(|l| l.contains(r#""type":"record""#)).count()
    };
    // Records at 2027-01-15T08:00:01Z … 08:00:04Z.
    assert_eq!(count(&["--since", "2027-01-15T08:00:03Z"]), 2);
    assert_eq!(count(&["--since", "2027-01-15T09:00:03+01:00"]), 2);
    assert_eq!(count(&["--since", "1800000003000"]), 2);
    assert_eq!(count(&["--since", "2027-01-15", "--until", "2027-01-15T08:00:02"]), 1);
    assert_eq!(count(&["--until", "2027-01-16"]), 4);
    let (code, _, err) = run(&["audit", "export", "--db", &ws.db(), "--since", "last tuesday"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a date or time"), "{err}");
}

/// `warden audit prune --before BEFORE --allow-recent` (the tests' records are recent).
fn prune_cli(ws: &Workspace, before: &str) -> (i32, String) {
    prune_cli_with(ws, before, &["--allow-recent"])
}

fn prune_cli_with(ws: &Workspace, before: &str, more: &[&str]) -> (i32, String) {
    let (db, key) = (ws.db(), ws.path("approvals-signing-key.pem"));
    let mut args = vec!["audit", "prune", "--db", &db, "--before", before, "--signing-key", key.to_str().unwrap()];
    args.extend_from_slice(more);
    let (code, out, err) = run(&args, &[]);
    (code, format!("{out}{err}"))
}

#[test]
fn records_pruned_while_the_service_ingests_leave_a_chain_that_verifies_and_keeps_growing() {
    let ws = Workspace::audit("prune-concurrent");
    let server = Server::start(&ws, 10);
    server.ingest(&(1..=50).map(|seq| simple("gw-1", seq)).collect::<Vec<_>>());
    // Ingest goes on (another 100 records, in batches of 5) while the prune runs.
    let (code, out) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for first in (51..=150).step_by(5) {
                server.ingest(&(first..first + 5).map(|seq| simple("gw-1", seq)).collect::<Vec<_>>());
            }
        });
        // Records 1–29 started before record 30 did.
        let pruned = prune_cli(&ws, &(1_800_000_000_000_i64 + 30 * 1000).to_string());
        writer.join().unwrap();
        pruned
    });
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("removed 29 records (positions 1–29) and 29 blobs"), "{out}");
    let (code, out) = prune_cli(&ws, &(1_800_000_000_000_i64 + 30 * 1000).to_string());
    assert_eq!((code, out.trim()), (0, "warden audit prune: nothing to prune"), "a second prune is a no-op");
    server.stop();

    let (code, out) = ws.verify_db(&ws.db());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pruned: records 1–29 removed under retention (once;"), "{out}");
    assert!(out.contains("the chain is verified from the prune signed at position 29"), "{out}");
    assert!(out.contains("OK: 121 records, 121 blobs"), "{out}");
    let connection = Connection::open(ws.db()).unwrap();
    let seqs: Vec<i64> = connection
        .prepare("SELECT seq FROM audit_records ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(seqs, (30..=150).collect::<Vec<_>>(), "no record ingested during the prune was lost");

    // Envoy's access log still names the pruned records: they are pruned, not missing.
    let kept: String =
        connection.query_row("SELECT record FROM audit_records WHERE seq = 30", [], |r| r.get(0)).unwrap();
    let log = format!(
        "[t] \"POST /v1/messages HTTP/1.1\" 200 x-request-id=a audit_record=gw-1-3 audit_hash={}\n\
         [t] \"POST /v1/messages HTTP/1.1\" 200 x-request-id=b audit_record=gw-1-30 audit_hash={}\n",
        "ab".repeat(32),
        sha256_hex(kept.as_bytes())
    );
    std::fs::write(ws.path("access.log"), log).unwrap();
    let access_log = ws.path("access.log");
    let args = ["audit", "verify", "--db", &ws.db(), "--public-key-file", &ws.key_file(), "--access-log"];
    let (code, out, err) = run(&[&args[..], &[access_log.to_str().unwrap()]].concat(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 access-log entries checked (1 of them pruned under retention)"), "{out}");

    // Replay says the start of the session is gone.
    let (code, out, err) = run(&["audit", "replay", "--db", &ws.db(), "--session", "s-gw-1"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("(29 earlier records of this session were pruned under retention"), "{out}");

    // A restarted service keeps appending to the pruned chain, and it keeps verifying.
    let server = Server::start(&ws, 10);
    let answer = server.ingest(&[simple("gw-2", 1), simple("gw-2", 2)]);
    assert_eq!(answer["head"]["position"], 152);
    let (status, transcript) = server.page("/sessions/s-gw-1", Some(&ws.mint("bob", "audit")));
    assert_eq!(status, 200, "{transcript}");
    assert!(transcript.contains(r#"<p class="pruned" id="pruned-note">29 earlier records of this session were pruned"#));
    assert!(transcript.contains("Requests 1–50 of 121"), "the kept records are shown, page by page: {transcript}");
    assert_eq!(transcript.matches(r#"class="turn card""#).count(), 50);
    server.stop();
    let (code, out) = ws.verify_db(&ws.db());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: 123 records"), "{out}");

    // Without the public key, the prune cannot be trusted: the removed positions count as deleted.
    let (code, out, _) = run(&["audit", "verify", "--db", &ws.db()], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL position 1: deleted"), "{out}");
    assert!(out.contains("without --public-key their signatures cannot be checked"), "{out}");
}

#[test]
fn deleting_the_oldest_records_up_to_a_signed_checkpoint_is_not_mistaken_for_a_prune() {
    let ws = Workspace::audit("prune-forged");
    let server = Server::start(&ws, 10);
    server.ingest(&(1..=25).map(|seq| simple("gw-1", seq)).collect::<Vec<_>>());
    server.stop();
    // Rows 1–10 end at a genuine checkpoint; a fake prune statement claims their removal.
    let (code, out) = tampered(
        &ws,
        "forged.db",
        "DELETE FROM audit_records WHERE position <= 10;
         INSERT INTO audit_prunes (position, hash, time, before, records, blobs, removed, signature)
         SELECT position, hash, time, 0, 10, 0, '{}', signature FROM audit_checkpoints WHERE position = 10;",
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL position 1: deleted — positions 1–10 are missing"), "{out}");
    assert!(out.contains("prune statement at position 10: the signature is invalid"), "{out}");
    assert!(out.contains("FAIL source gw-1: seq 1–10 missing"), "{out}");
    assert!(!out.contains("pruned:"), "{out}");
}

#[test]
fn the_service_applies_its_retention_at_start() {
    let ws = Workspace::audit("prune-service");
    let server = Server::start(&ws, 1000);
    let old = |seq: i64| {
        let mut r = simple("gw-1", seq);
        r["timings"]["start"] = json!(1_000_000_000_000_i64 + seq);
        r
    };
    server.ingest(&[old(1), old(2), simple("gw-1", 3)]);
    server.stop();
    let serve = ws.start(&["--audit-retention", "30d"]);
    let mut log = serve.log();
    for _ in 0..600 {
        if log.contains("audit retention:") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        log = serve.log();
    }
    serve.terminate();
    assert!(log.contains("audit retention: removed 2 records (positions 1–2)"), "{log}");
    assert!(log.contains("audit retention 30d"), "{log}");
    let (code, out) = ws.verify_db(&ws.db());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pruned: records 1–2 removed"), "{out}");
}

#[test]
fn a_prune_with_a_bad_date_or_no_database_changes_nothing_and_says_why() {
    let ws = Workspace::audit("prune-usage");
    let (code, out) = prune_cli(&ws, "2026-02-30");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--before: \"2026-02-30\" is not a date"), "{out}");
    let (code, out) = prune_cli_with(&ws, "23h", &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("the cut is less than a day old"), "{out}");
    let (code, out) = prune_cli(&ws, "90d");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("approvals.db does not exist"), "{out}");
    assert!(!Path::new(&ws.db()).exists(), "no database was created");
}

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

const POLICY: &str = r#"version: 1
identity:
  providers:
    - { name: demo, issuer: warden-demo, audiences: [warden], jwks: { file: jwks.json } }
credentials:
  anthropic: { env: ANTHROPIC_API_KEY }
  approvals-token: { env: WARDEN_APPROVALS_TOKEN }
  approvals-verdict-key: { env: WARDEN_APPROVALS_VERDICT_KEY }
approvals:
  service: { url: "http://127.0.0.1:8787", token: approvals-token, verdict_key: approvals-verdict-key }
  auditors: [audit]
bindings:
  - { group: eng, role: developer }
roles:
  developer:
    credential: anthropic
    models: ["claude-*"]
    approval:
      approvers: [leads]
      triggers: [{ reason: opus_model, models: ["claude-opus-*"] }]
"#;

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
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut response = agent
            .post(&format!("{}/v1/audit/records", self.serve.base))
            .header("authorization", &format!("Bearer {token}"))
            .header("content-type", "application/x-ndjson")
            .send(body)
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
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
    let body = format!(
        "{}\n{changed}\n{{\"version\": 1}}\n{deep}\n{}\n",
        simple("gw-1", 4),
        simple("gw-1", 5)
    );
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
    assert_eq!(transcript.matches(r#"class="turn""#).count(), 2, "{transcript}");
    assert!(transcript.contains("turn 2 from gw-1") && transcript.contains("answer 2"), "{transcript}");
    let (_, refused_page) = server.page("/sessions/sess-b", Some(&bob));
    assert!(refused_page.contains("refused: model_not_allowed"), "{refused_page}");
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

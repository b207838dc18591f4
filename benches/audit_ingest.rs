//! Criterion benchmark of the audit store's ingest: batches of 500 records of ~10 KB (a typical
//! record with a 10 KB masked response), parsed and canonicalized as `POST /v1/audit/records`
//! does, then appended to a file-backed SQLite database in WAL mode with `synchronous = FULL`
//! (the service's settings) — one transaction per batch, chain hashes included.
//!
//! Run: `cargo bench --bench audit_ingest` (records/s = elements/s in criterion's output).

// Benchmarks may stop on setup errors.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use warden::service::audit::store::{self, AuditStore};
use warden::service::audit::chain;

const BATCH: usize = 500;

fn line(source: &str, seq: usize) -> String {
    let text: String = "The command printed the following lines. ".repeat(240);
    serde_json::json!({
        "version": 1, "source": source, "seq": seq, "id": format!("{source}-{seq}"),
        "session_id": "5f0c2b9e-1d7a-4c1e-9a7b-0e3d2c1b4a59", "job_id": null,
        "identity": {"issuer": "warden-demo", "subject": "alice", "groups": ["eng"], "role": "developer"},
        "decision": {"allowed": true, "reason": null, "status": 200, "message": null},
        "model": "claude-sonnet-4-6",
        "request": {"params": {"max_tokens": 32000, "stream": true}, "messages": []},
        "response": {"status": 200, "stream": true, "content": [{"type": "text", "text": text}]},
        "usage": {"input_tokens": 1200, "output_tokens": 310},
        "timings": {"start": 1_800_000_000_000_i64 + seq as i64},
        "outcome": "completed"
    })
    .to_string()
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("warden-bench-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let path = dir.join("audit.db");
    {
        let connection = rusqlite::Connection::open(&path).expect("database");
        connection.execute_batch(store::SCHEMA).expect("schema");
    }
    let mut store = store::SqliteAuditStore::open(&path).expect("store");
    let record_bytes = line("gw-0", 1).len();
    let mut round = 0usize;

    let mut group = c.benchmark_group("audit_ingest");
    group.sample_size(20);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(format!("parse_and_append_{BATCH}x{record_bytes}B"), |b| {
        b.iter_batched(
            || {
                round += 1;
                let source = format!("gw-{round}");
                (1..=BATCH).map(|seq| line(&source, seq)).collect::<Vec<_>>()
            },
            |lines| {
                let batch: Vec<chain::IncomingRecord> =
                    lines.iter().map(|l| chain::parse_record(l.as_bytes(), 0).expect("record")).collect();
                black_box(store.append(&batch).expect("append"))
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);

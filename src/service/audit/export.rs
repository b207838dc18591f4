//! `warden audit export`: the trail as JSONL that verifies on its own.
//!
//! Lines, each a JSON object with a `type`: one `export` header (`version` 1, `complete` —
//! whether every row is included), then the selected `record` rows in position order (chain
//! fields and the stored record text as a JSON string, byte for byte), then the `blob`s those
//! records reference (each once), then every `checkpoint`, then every `prune` statement
//! (retention). `warden audit verify --export FILE`
//! reads exactly this format ([`super::verify::ExportLine`]).
//!
//! Limits: the referenced blob names are kept in memory (names only) while the rows stream.

use std::collections::BTreeSet;
use std::io::Write;

use serde_json::{json, Value};

use super::chain::referenced_blobs;
use super::store::{AuditError, AuditStore, RecordFilter};

/// Writes the export of the rows `filter` selects to `out`; returns the number of records.
pub fn export(store: &dyn AuditStore, filter: &RecordFilter, out: &mut dyn Write) -> Result<u64, AuditError> {
    let io = |e: std::io::Error| AuditError::Database(format!("cannot write the export: {e}"));
    writeln!(out, "{}", json!({"type": "export", "version": 1, "complete": filter.is_everything()})).map_err(io)?;
    let mut names = BTreeSet::new();
    let mut count = 0;
    store.for_each_record(filter, &mut |row| {
        if let Ok(value) = serde_json::from_str::<Value>(&row.record) {
            names.extend(referenced_blobs(&value));
        }
        let line = json!({"type": "record", "position": row.position, "source": row.source, "seq": row.seq,
                          "time": row.time, "session_id": row.session_id, "prev_hash": row.prev_hash,
                          "hash": row.hash, "record": row.record});
        count += 1;
        writeln!(out, "{line}").map_err(io)
    })?;
    for name in names {
        if let Some(content) = store.blob(&name)? {
            writeln!(out, "{}", json!({"type": "blob", "name": name, "content": content})).map_err(io)?;
        }
    }
    for c in store.checkpoints()? {
        let line = json!({"type": "checkpoint", "position": c.position, "hash": c.hash, "time": c.time,
                          "signature": c.signature});
        writeln!(out, "{line}").map_err(io)?;
    }
    for p in store.prunes()? {
        let line = json!({"type": "prune", "position": p.position, "hash": p.hash, "time": p.time,
                          "before": p.before, "records": p.records, "blobs": p.blobs, "removed": p.removed,
                          "signature": p.signature});
        writeln!(out, "{line}").map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::super::store::tests::{memory_store, record};
    use super::super::verify::{verify, ExportFile};
    use super::*;

    #[test]
    fn a_full_export_verifies_on_its_own_and_an_edited_export_does_not() {
        let mut store = memory_store();
        store.append(&[record("gw", 1, "a"), record("gw", 2, "b")]).unwrap();
        let mut bytes = Vec::new();
        assert_eq!(export(&store, &RecordFilter::default(), &mut bytes).unwrap(), 2);
        let path = std::env::temp_dir().join(format!("warden-export-unit-{}.jsonl", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let report = verify(&ExportFile::open(&path).unwrap(), None).unwrap();
        assert!(report.intact(), "{}", report.render());
        assert!(report.complete);
        let edited = String::from_utf8(bytes).unwrap().replace(r#"\"note\":\"b\""#, r#"\"note\":\"B\""#);
        std::fs::write(&path, edited).unwrap();
        let report = verify(&ExportFile::open(&path).unwrap(), None).unwrap();
        assert_eq!(report.first_break.unwrap().position, 2);
        let _ = std::fs::remove_file(&path);
    }
}

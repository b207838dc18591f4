//! The second trail: Envoy's access log names each exchange's record and its hash
//! (`audit_record=<source>-<seq> audit_hash=<hex>`, written by the filter before Envoy logs the
//! request), and [`cross_check`] holds the store against it.
//!
//! The hash is hex SHA-256 of the record's canonical JSON without `blobs` — the exact bytes the
//! service stores — so a record edited in the store, even with the whole chain recomputed and
//! re-signed, no longer matches the line Envoy wrote elsewhere; a record deleted is missing.
//!
//! Limits: only lines that carry both fields are checked (`-` means the exchange had no record);
//! records not yet delivered when the store was read show as missing.

use std::collections::HashMap;

use super::store::AuditError;
use super::verify::Trail;
use warden::core::hex::hex;

/// One access-log line's claim about a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the access log.
    pub line: usize,
    /// `<source>-<seq>`.
    pub id: String,
    /// Hex SHA-256 of the stored record.
    pub hash: String,
}

/// The entries of an access log: every line with an `audit_record=` and an `audit_hash=` field.
pub fn parse(text: &str) -> Vec<Entry> {
    let field = |line: &str, name: &str| {
        line.split_whitespace().find_map(|word| word.strip_prefix(name)).filter(|v| *v != "-").map(str::to_string)
    };
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            Some(Entry { line: i + 1, id: field(line, "audit_record=")?, hash: field(line, "audit_hash=")? })
        })
        .collect()
}

/// The problems found holding `trail` against `entries`, one line each.
pub fn cross_check(trail: &dyn Trail, entries: &[Entry]) -> Result<Vec<String>, AuditError> {
    let mut stored: HashMap<String, (i64, String)> = HashMap::new();
    trail.records(&mut |row| {
        let hash = hex(&hmac_sha256::Hash::hash(row.record.as_bytes()));
        stored.insert(format!("{}-{}", row.source, row.seq), (row.position, hash));
        Ok(())
    })?;
    Ok(entries
        .iter()
        .filter_map(|entry| match stored.get(&entry.id) {
            None => Some(format!(
                "access log line {}: record {} is not in the store (deleted, or not delivered yet)",
                entry.line, entry.id
            )),
            Some((position, hash)) if *hash != entry.hash => Some(format!(
                "position {position}: record {} differs from what the gateway sent (access log line {})",
                entry.id, entry.line
            )),
            Some(_) => None,
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_both_fields_are_entries() {
        let log = "\
[t] \"POST /v1/messages HTTP/1.1\" 200 x-request-id=a audit_record=gw-1-7 audit_hash=ab12\n\
[t] \"GET /v1/models HTTP/1.1\" 200 x-request-id=b audit_record=- audit_hash=-\n\
unrelated line\n";
        assert_eq!(parse(log), vec![Entry { line: 1, id: "gw-1-7".into(), hash: "ab12".into() }]);
    }
}

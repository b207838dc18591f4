//! The audit trail's service side (docs/audit.md): what `warden serve` stores and the rules the
//! `warden audit` commands check it by.
//!
//! [`ingest`] is the gateways' endpoint (`POST /v1/audit/records`) and the signed checkpoints;
//! [`chain`] the hashing rules (canonical records, chain hashes, blobs); [`store`] the SQLite
//! store behind the `AuditStore` trait; [`verify`] walks a stored or exported trail and reports
//! the first break; [`retention`] and [`prunes`] cut old records and keep signed prune records
//! that verification trusts; [`access_log`] cross-checks Envoy's access log against the trail;
//! [`export`] writes the trail as JSONL; [`replay`] and [`agents`] read a session back as turns
//! and its subagent tree. Everything here is storage and rules; argument handling and printing
//! live in the `warden audit` command.

pub mod access_log;
pub mod agents;
pub mod chain;
pub mod error;
pub mod export;
pub mod ingest;
pub mod prunes;
pub mod replay;
pub mod retention;
pub mod store;
pub mod verify;

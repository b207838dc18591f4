//! The audit trail's pure side (docs/audit.md): what the filter records about each exchange.
//!
//! [`record`] is the typed record, the forwarded request split into content-addressed blobs, and
//! the session and job ids; [`transcript`] reassembles the answer the agent received from the
//! delivered bytes; [`trail`] gathers what an exchange leaves as it happens and turns it into
//! the record; [`outbox`] holds a worker's records until `warden serve` acknowledges them;
//! [`canonical`] is the JSON form records are hashed by, on both sides of the trail.

pub mod canonical;
pub mod outbox;
pub mod record;
pub mod trail;
pub mod transcript;

//! The audit trail's pure side (docs/audit.md): what the filter records about each exchange.
//!
//! [`transcript`] reassembles the answer the agent received from the delivered bytes.

pub mod transcript;

//! Data-loss prevention: finding secrets and personal data in Claude traffic.
//!
//! Groundwork for the masking engine (issue 3): so far only the [`validators`] that confirm or
//! reject a candidate match. The detector catalog, the masking engine and its use in the filter
//! come next; nothing here runs in the gateway yet.

pub mod validators;

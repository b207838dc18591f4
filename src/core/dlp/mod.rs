//! Data-loss prevention: finding and masking secrets and personal data in Claude traffic.
//!
//! Layers, bottom up:
//! - [`detector`]: what a detector is (trigger, pattern, validator); [`catalog`]: the built-in
//!   detectors; [`validators`]: checksums, ranges, entropy and placeholder checks; [`pii`]:
//!   phone numbering plans, IBAN lengths and national-id check digits;
//! - [`engine`]: finds matches in text, one-shot or over a growing stream;
//! - [`mask`]: deterministic masks (keyed hash) and the per-exchange tally of what was found;
//! - [`text`]: redacts a complete text or a text stream (holding back only undecided tails);
//! - [`json`]: the same for the string values inside JSON, complete or in fragments;
//! - [`request`] and [`response`]: where those apply in the Messages API — user text, tool
//!   results and documents on the way in; text, tool-call arguments, thinking and citations in
//!   event streams and JSON bodies on the way out; [`memo`] lets requests skip the user
//!   messages an earlier turn already found clean.
//!
//! The policy picks detectors and actions per role and direction
//! ([`crate::core::policy::dlp`]); the exchange applies them.

pub mod catalog;
pub mod detector;
pub mod engine;
pub mod json;
pub mod mask;
pub mod memo;
pub mod pii;
pub mod request;
pub mod response;
pub mod text;
pub mod validators;

//! Spend over a window (docs/usage.md): [`aggregate`] sums tokens and cost per subject, role,
//! job, model, day or hour in SQL over the audit store's `audit_usage` table; [`page`] is the
//! console's usage page; [`format`] the time and money forms both it and `warden usage` read
//! and print.

pub mod aggregate;
pub mod format;
pub mod page;

//! The approval part of `warden serve` (docs/approvals.md): a gateway holds a request that needs
//! a person's yes, approvers decide it, and the gateway gets a signed verdict.
//!
//! [`service`] keeps the holds and decisions (pending reviews, long-polls, expiry, session
//! grants' matching); [`rules`] reads the approver rules from the policy; [`signer`] signs
//! verdicts and grants with the service's Ed25519 key (also the audit trail's checkpoints);
//! [`api`] is the JSON endpoints gateways and the CLI call (on [`http`]'s shared errors and
//! bearer checks); [`page`] the approvers' review
//! pages; [`grants`] the session grants (approve once for a session); [`webhook`] the
//! notifications of new reviews. Storage is the service's one SQLite file
//! ([`crate::service::store`]).

pub mod api;
pub mod grants;
pub mod http;
pub mod page;
pub mod rules;
pub mod service;
pub mod signer;
pub mod webhook;

//! Warden: an identity-aware gateway for Claude API traffic.
//!
//! The crate has two halves (see `docs/architecture.md`):
//! - [`core`]: the pure, host-independent logic — policy, identity, endpoints, request checks and
//!   the per-request state machine. It never calls the proxy, so plain `cargo test` covers it.
//! - `glue` (compiled for `wasm32` only): the proxy-wasm contexts that copy values out of Envoy,
//!   feed them to the core and perform the steps it returns.
//!
//! - [`service`] (native only): `warden serve` — approvals, the audit trail's ingest, store and
//!   chain rules, budget leases, the token service, the kill switch and the console.
//!
//! The native `warden` binary (`src/bin/warden`) is thin commands over the same core and service.

pub mod core;
pub mod proxy_abi;
#[cfg(not(target_arch = "wasm32"))]
pub mod service;

#[cfg(target_arch = "wasm32")]
mod glue;

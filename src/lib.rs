//! Warden: an identity-aware gateway for Claude API traffic.
//!
//! The crate has two halves (see `docs/architecture.md`):
//! - [`core`]: the pure, host-independent logic — policy, identity, endpoints, request checks and
//!   the per-request state machine. It never calls the proxy, so plain `cargo test` covers it.
//! - `glue` (compiled for `wasm32` only): the proxy-wasm contexts that copy values out of Envoy,
//!   feed them to the core and perform the steps it returns.
//!
//! The native `warden` binary (`src/bin/warden`) links the same core for `warden check` and friends.

pub mod core;
pub mod proxy_abi;

#[cfg(target_arch = "wasm32")]
mod glue;

//! The response layer: how Warden reads and, when it must, ends the upstream's answer.
//!
//! - [`sse`]: an incremental server-sent-events parser over body chunks split anywhere.
//! - [`stream_cut`]: ends a streamed answer once its output passes the budget's allowance, with
//!   every open content block closed coherently.
//!
//! Neither depends on the request, approval or audit layers.

pub mod sse;
pub mod stream_cut;

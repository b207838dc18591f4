//! The pure core: everything Warden decides, with no host calls.
//!
//! Data flows one way: the glue copies plain values out of the proxy (headers, verified claims,
//! body bytes, the clock), hands them to [`exchange::Exchange`], and performs the step it gets back.

pub mod approval;
pub mod audit;
pub mod budget;
pub mod dlp;
pub mod errors;
pub mod exchange;
pub mod hex;
pub mod identity;
pub mod metric_labels;
pub mod policy;
pub mod request;
pub mod response;
pub mod revocation;
pub mod secret;
pub mod tools;

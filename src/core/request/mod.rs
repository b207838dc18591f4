//! The request layer: what Warden reads and checks in a client's request before it goes upstream.
//!
//! - [`endpoint`]: which Claude API endpoint a method and path name (the request line).
//! - [`nesting`]: the body's JSON nesting depth, measured without recursion (runs first).
//! - [`messages`]: a Messages body parsed once and checked against the role (model, caps, tools).
//! - [`model_list`]: the `GET /v1/models` answer narrowed to the role's models.
//! - [`comparable`]: the form two sends of "the same request" share (approval fingerprints, replay).
//! - [`splice`]: surgical rewrites of a JSON body that keep every other byte.
//!
//! These modules depend on the policy and on each other only downward (nesting and splice are
//! leaves); nothing here depends on the response, approval or audit layers.

pub mod comparable;
pub mod endpoint;
pub mod messages;
pub mod model_list;
pub mod nesting;
pub mod splice;

//! Where values that are not in the policy file come from: an upstream credential's environment
//! variable and an identity provider's JWKS.
//!
//! Part of the policy file's model ([`super::config`], which re-exports both); a leaf, so the
//! sections that check them (`token_service`, `revocation`, `audit`) do not depend on the whole
//! model.

use serde::Deserialize;

/// Where a provider's JWKS is read from: exactly one of `file` or `uri`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSource {
    /// A local JWKS file; relative paths are relative to the policy file.
    #[serde(default)]
    pub file: Option<String>,
    /// An `https://` URL Envoy fetches and caches.
    #[serde(default)]
    pub uri: Option<String>,
}

/// Where an upstream credential is read from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// Environment variable of the Envoy process holding the key. Envoy exposes it to the filter
    /// (`vm_config.environment_variables.host_env_keys`); the launcher can fill it from a secret
    /// file (`--credential-file VAR=PATH`).
    pub env: String,
}

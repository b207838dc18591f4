//! The policy: parse strictly, then compile once into runtime tables.
//!
//! [`Policy::parse`] deserializes YAML (or JSON, a subset) into the [`config`] model with
//! `serde_path_to_error`, so a shape error names its field path once, in words `messages` makes
//! plain (`roles.analyst: unknown field `modles`, …`; duplicate keys and an empty file are shape
//! errors too, and the first one stops the parse). It then checks what serde cannot — glob syntax, references between roles, bindings
//! and credentials, numeric bounds — collecting *every* such error, each with its path. The same
//! function backs Envoy's `on_configure` (an invalid policy stops Envoy from starting) and
//! `warden check`.
//!
//! Credentials are resolved separately ([`Policy::resolve_credentials`]): `warden check` validates
//! a policy offline without the keys, while the filter refuses to start when a key is missing.

pub mod approvals;
pub mod audit;
pub mod bindings;
pub mod budgets;
pub mod config;
pub mod dlp;
pub mod glob;
pub mod leases;
mod messages;
pub mod names;
pub mod revocation;
pub mod sources;
pub mod token_service;
pub mod units;
pub mod url;
pub mod url_glob;

use crate::core::dlp::mask::MaskKey;
use crate::core::secret::Secret;
pub use bindings::{Binding, ClaimPath};
use config::{CapAction, CapConfig, EndpointName, JwksSource, PolicyFile, RoleConfig, ToolActionConfig};
use glob::{Glob, GlobSet};
pub(crate) use names::is_token;
use std::collections::BTreeMap;
use std::fmt;
use url_glob::{UrlGlob, UrlGlobSet};

/// One problem in a policy, with the path of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// Dotted field path, e.g. `roles.analyst.models[2]`; empty for the document itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// All problems found in a policy (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// A numeric cap, compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// Largest allowed value.
    pub limit: u64,
    /// What to do above it.
    pub action: CapAction,
}

/// A role, compiled: everything a request is checked against.
#[derive(Debug)]
pub struct Role {
    /// Role name.
    pub name: String,
    /// Name of the upstream credential the role uses.
    pub credential: String,
    /// Allowed endpoints.
    pub endpoints: Vec<EndpointName>,
    /// Allowed models.
    pub models: GlobSet,
    /// Cap on `max_tokens`.
    pub max_tokens: Option<Cap>,
    /// Cap on the thinking budget.
    pub thinking_budget: Option<Cap>,
    /// Allowed client tool names.
    pub client_tools: GlobSet,
    /// Allowed Anthropic-defined tool types.
    pub server_tools: GlobSet,
    /// Rules over the calls Claude proposes ([`crate::core::tools::rules`]).
    pub tool_rules: crate::core::tools::rules::ToolRules,
    /// Largest `tool_result` block the role may send back, in bytes.
    pub max_tool_result_bytes: Option<u64>,
    /// Allowed MCP server URLs, matched part by part.
    pub mcp_servers: UrlGlobSet,
    /// Allowed `anthropic-beta` values.
    pub betas: GlobSet,
    /// Whether streaming responses are allowed.
    pub streaming: bool,
    /// Largest request body in bytes.
    pub max_body_bytes: u64,
    /// Index into [`dlp::DlpPolicy::profiles`].
    pub dlp_profile: usize,
    /// Requests that wait for a human, and who may decide.
    pub approval: Option<approvals::RoleApproval>,
    /// Budgets the role's `messages` requests count against.
    pub budgets: Vec<crate::core::budget::Budget>,
}

/// How identities are read and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPolicy {
    /// Accepted issuers (from `identity.providers`); empty accepts any issuer `jwt_authn` verified.
    pub issuers: Vec<String>,
    /// The providers as written (`warden serve` verifies approvers' tokens with them).
    pub providers: Vec<Provider>,
    /// Longest token lifetime in seconds.
    pub max_token_lifetime: u64,
    /// Path of the groups claim (split on dots) for tokens of issuers without one of their own.
    pub groups_claim: Vec<String>,
    /// Job claims to record (each once, in policy order).
    pub job_claims: Vec<String>,
    /// Every claim the gateway reads from a verified token: the job claims first (same order),
    /// then the claims bindings match.
    pub claims: Vec<ClaimPath>,
    /// Lower-case name of the role-selection header.
    pub role_header: String,
    /// Where `jwt_authn` leaves the verified payload.
    pub payload_key: PayloadKey,
}

impl IdentityPolicy {
    /// The groups claim path for tokens of `issuer`: its provider's, else the default.
    pub fn groups_claim_for(&self, issuer: &str) -> &[String] {
        self.providers.iter().find(|p| p.issuer == issuer).map_or(&self.groups_claim, |p| &p.groups_claim)
    }
}

/// The dynamic-metadata key under `envoy.filters.http.jwt_authn` holding the verified payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadKey {
    /// One key for every provider (`jwt_payload`; Istio 1.21+: `payload`).
    Fixed(String),
    /// Each provider's issuer is its key (`{issuer}`; Istio before 1.21).
    PerIssuer,
}

/// The `payload_metadata_key` value that means "under each provider's issuer".
pub const PER_ISSUER_PAYLOAD_KEY: &str = "{issuer}";

/// An OIDC provider: who issues tokens, for whom, and where its keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Provider name.
    pub name: String,
    /// Expected `iss`.
    pub issuer: String,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
    /// Where the signing keys are.
    pub jwks: Jwks,
    /// Path of the groups claim in this provider's tokens (split on dots).
    pub groups_claim: Vec<String>,
}

/// Where a provider's signing keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jwks {
    /// A JWKS file, as written (relative paths are relative to the policy file).
    File(String),
    /// An `https://` URL.
    Uri(String),
}

/// A validated, compiled policy.
#[derive(Debug)]
pub struct Policy {
    /// Identity settings.
    pub identity: IdentityPolicy,
    /// Bindings in priority order.
    pub bindings: Vec<Binding>,
    /// Roles (indexed by [`Binding::role`]).
    pub roles: Vec<Role>,
    /// Credential name → environment variable holding it.
    pub credential_env: BTreeMap<String, String>,
    /// Detectors and masking profiles.
    pub dlp: dlp::DlpPolicy,
    /// The approval service and review timing, when any role has approval rules.
    pub approvals: Option<approvals::ApprovalSettings>,
    /// Where audit records go; `None`: no records.
    pub audit: Option<audit::AuditSettings>,
    /// What models cost; `None`: records carry no cost and budgets count tokens only.
    pub pricing: Option<crate::core::budget::pricing::PriceTable>,
    /// How reservations are estimated and the ledger bounded.
    pub accounting: crate::core::budget::Settings,
    /// Where budget leases come from and how often they are asked for (`accounting.leases`);
    /// `None`: this instance enforces its budgets alone.
    pub leases: Option<leases::LeaseSettings>,
    /// The token service `warden serve` runs, as written (checked); `None`: no token service.
    pub token_service: Option<token_service::TokenServiceConfig>,
    /// The kill switch (`identity.revocation`); `None`: no revocation checks.
    pub revocation: Option<revocation::RevocationSettings>,
}

/// Keys per role (same index as [`Policy::roles`]).
#[derive(Debug)]
pub struct RoleKeys {
    /// The upstream (Anthropic) key of each role.
    pub upstream: Vec<Secret>,
    /// The mask key of each role: `dlp.mask_key`'s credential, or derived from the role's
    /// upstream key.
    pub mask: Vec<MaskKey>,
    /// The approval service's credentials, when the policy has an `approvals` section.
    pub approvals: Option<ApprovalKeys>,
    /// The bearer token for the audit service, when the policy has an `audit` section.
    pub audit_token: Option<Secret>,
    /// The bearer token for the lease service, when the policy has `accounting.leases`.
    pub lease_token: Option<Secret>,
    /// The bearer token for the revocation list, when the policy has `identity.revocation`.
    pub revocation_token: Option<Secret>,
}

/// What the filter needs to trust the approval service and be trusted by it.
#[derive(Debug, Clone)]
pub struct ApprovalKeys {
    /// Bearer token the gateway presents to the service.
    pub token: Secret,
    /// The service's Ed25519 public key.
    pub verdict_key: [u8; 32],
}

impl Policy {
    /// Parses and validates a policy document (YAML or JSON).
    ///
    /// Shape errors (wrong types, unknown fields, duplicate keys) stop at the first one and read
    /// as `messages` words them; the checks after that report every problem.
    pub fn parse(text: &str) -> Result<Self, PolicyErrors> {
        let shape_error = |e: serde_path_to_error::Error<serde_yaml_ng::Error>| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let position = inner.location().map(|at| (at.line(), at.column()));
            PolicyErrors(vec![messages::shape_error(&path, &inner.to_string(), position)])
        };
        if text.lines().all(|line| line.trim().is_empty() || line.trim_start().starts_with('#')) {
            return Err(PolicyErrors(vec![PolicyError { path: String::new(), message: messages::EMPTY_POLICY.into() }]));
        }
        // Typed maps (roles, credentials) would keep the last of two equal keys without a word:
        // a generic pass finds them first. Its other errors are left to the typed pass.
        let generic = serde_yaml_ng::Deserializer::from_str(text);
        if let Err(e) = serde_path_to_error::deserialize::<_, serde_yaml_ng::Value>(generic) {
            if e.inner().to_string().contains("duplicate entry") {
                return Err(shape_error(e));
            }
        }
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        let file: PolicyFile = serde_path_to_error::deserialize(deserializer).map_err(shape_error)?;
        compile(file)
    }

    /// Reads every role's key through `lookup` (the process environment in the filter).
    /// A missing or empty variable is an error naming the credential, never its value.
    pub fn resolve_credentials(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<RoleKeys, PolicyErrors> {
        let mut errors = Vec::new();
        let mut resolved: BTreeMap<&str, Secret> = BTreeMap::new();
        for (name, variable) in &self.credential_env {
            match lookup(variable).filter(|v| !v.trim().is_empty()) {
                Some(value) => {
                    resolved.insert(name, Secret::new(value.trim().to_string()));
                }
                None => errors.push(PolicyError {
                    path: format!("credentials.{name}.env"),
                    message: format!("environment variable {variable} is not set or empty"),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(PolicyErrors(errors));
        }
        let shared_mask_key = self.dlp.mask_key_credential.as_deref().and_then(|name| resolved.get(name));
        let approvals = match &self.approvals {
            Some(settings) => Some(approval_keys(&settings.service, &resolved)?),
            None => None,
        };
        let audit_token = self.audit.as_ref().and_then(|a| resolved.get(a.token_credential.as_str()).cloned());
        let lease_token = self.leases.as_ref().and_then(|l| resolved.get(l.token_credential.as_str()).cloned());
        let revocation_token =
            self.revocation.as_ref().and_then(|r| resolved.get(r.token_credential.as_str()).cloned());
        let mut keys = RoleKeys {
            upstream: Vec::with_capacity(self.roles.len()),
            mask: Vec::new(),
            approvals,
            audit_token,
            lease_token,
            revocation_token,
        };
        for role in &self.roles {
            match resolved.get(role.credential.as_str()) {
                Some(secret) => {
                    keys.upstream.push(secret.clone());
                    keys.mask.push(MaskKey::derived_from(shared_mask_key.unwrap_or(secret).expose()));
                }
                None => {
                    return Err(PolicyErrors(vec![PolicyError {
                        path: format!("roles.{}.credential", role.name),
                        message: format!("unknown credential {:?}", role.credential),
                    }]))
                }
            }
        }
        Ok(keys)
    }

    /// The budget named `name` (budget names are unique in the policy).
    pub fn budget(&self, name: &str) -> Option<&crate::core::budget::Budget> {
        self.roles.iter().flat_map(|role| role.budgets.iter()).find(|budget| budget.name == name)
    }

    /// The index of the role named `name`.
    pub fn role_index(&self, name: &str) -> Option<usize> {
        self.roles.iter().position(|r| r.name == name)
    }
}

/// The approval service's token and public key, from resolved credentials.
fn approval_keys(
    service: &approvals::ServiceTarget,
    resolved: &BTreeMap<&str, Secret>,
) -> Result<ApprovalKeys, PolicyErrors> {
    let error = |field: &str, message: &str| {
        PolicyErrors(vec![PolicyError { path: format!("approvals.service.{field}"), message: message.to_string() }])
    };
    let token =
        resolved.get(service.token_credential.as_str()).ok_or_else(|| error("token", "unknown credential"))?.clone();
    let encoded = resolved
        .get(service.verdict_key_credential.as_str())
        .ok_or_else(|| error("verdict_key", "unknown credential"))?;
    let verdict_key = decode_public_key(encoded.expose())
        .ok_or_else(|| error("verdict_key", "the credential is not an Ed25519 public key (base64 of 32 bytes)"))?;
    Ok(ApprovalKeys { token, verdict_key })
}

/// Base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
fn decode_public_key(text: &str) -> Option<[u8; 32]> {
    use ct_codecs::{Base64, Base64NoPadding, Base64UrlSafe, Base64UrlSafeNoPadding, Decoder};
    let text = text.trim();
    let decoders: [fn(&mut [u8], &str) -> bool; 4] = [
        |out, text| Base64::decode(out, text, None).is_ok_and(|d| d.len() == 32),
        |out, text| Base64NoPadding::decode(out, text, None).is_ok_and(|d| d.len() == 32),
        |out, text| Base64UrlSafe::decode(out, text, None).is_ok_and(|d| d.len() == 32),
        |out, text| Base64UrlSafeNoPadding::decode(out, text, None).is_ok_and(|d| d.len() == 32),
    ];
    let mut out = [0u8; 32];
    decoders.iter().any(|decode| decode(&mut out, text)).then_some(out)
}

/// Collects errors while compiling, each under the current path.
pub(super) struct Checker {
    errors: Vec<PolicyError>,
}

impl Checker {
    pub(super) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(PolicyError { path: path.into(), message: message.into() });
    }

    pub(super) fn globs(&mut self, path: &str, patterns: &[String]) -> GlobSet {
        let mut globs = Vec::with_capacity(patterns.len());
        for (i, pattern) in patterns.iter().enumerate() {
            match Glob::parse(pattern) {
                Ok(glob) => globs.push(glob),
                Err(message) => self.error(format!("{path}[{i}]"), message.to_string()),
            }
        }
        GlobSet::new(globs)
    }

    fn url_globs(&mut self, path: &str, patterns: &[String]) -> UrlGlobSet {
        let mut compiled = Vec::with_capacity(patterns.len());
        for (i, pattern) in patterns.iter().enumerate() {
            match UrlGlob::parse(pattern) {
                Ok(pattern) => compiled.push(pattern),
                Err(message) => self.error(format!("{path}[{i}]"), message),
            }
        }
        UrlGlobSet::new(compiled)
    }

    fn cap(&mut self, path: &str, cap: &Option<CapConfig>) -> Option<Cap> {
        let cap = cap.as_ref()?;
        if cap.limit == 0 && cap.action == CapAction::Clamp {
            self.error(format!("{path}.action"), "clamp needs a limit above 0; use action deny to forbid");
        }
        Some(Cap { limit: cap.limit, action: cap.action })
    }
}

/// Provider names become Envoy resource names (`jwks_<name>`): the renderer accepts the same set.
/// A JWKS may come from an `https://` URL, or over plain `http://` from the same machine (a
/// token service beside the gateway): keys fetched in clear text elsewhere could be swapped.
pub fn is_trusted_jwks_uri(uri: &str) -> bool {
    if uri.starts_with("https://") {
        return true;
    }
    let Some(rest) = uri.strip_prefix("http://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = match authority.find(']') {
        Some(end) if authority.starts_with('[') => authority.split_at(end + 1),
        _ => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    let port_ok = port.is_empty() || port.strip_prefix(':').is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    port_ok && matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn is_provider_name(name: &str) -> bool {
    name.len() <= 63
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

fn compile(file: PolicyFile) -> Result<Policy, PolicyErrors> {
    let mut check = Checker { errors: Vec::new() };
    if file.version != 1 {
        check.error("version", format!("unsupported version {}; this Warden reads version 1", file.version));
    }

    let identity = &file.identity;
    let groups_claim = ClaimPath::parse(&identity.groups_claim).map(|p| p.segments).unwrap_or_else(|| {
        check.error("identity.groups_claim", "must be a claim name or a dotted path of names");
        Vec::new()
    });
    let mut issuers = Vec::new();
    let mut providers = Vec::new();
    for (i, provider) in identity.providers.iter().enumerate() {
        let path = format!("identity.providers[{i}]");
        if !is_provider_name(&provider.name) {
            check.error(
                format!("{path}.name"),
                "must be 1-63 letters, digits, '-' or '_', starting with a letter or digit",
            );
        }
        if provider.issuer.is_empty() {
            check.error(format!("{path}.issuer"), "must not be empty");
        }
        if provider.audiences.is_empty() || provider.audiences.iter().any(String::is_empty) {
            check.error(format!("{path}.audiences"), "at least one non-empty audience is required");
        }
        let jwks = match &provider.jwks {
            JwksSource { file: Some(file), uri: None } if !file.is_empty() => Some(Jwks::File(file.clone())),
            JwksSource { file: None, uri: Some(uri) } if is_trusted_jwks_uri(uri) => Some(Jwks::Uri(uri.clone())),
            JwksSource { file: None, uri: Some(_) } => {
                check.error(format!("{path}.jwks.uri"), "must be an https:// URL (http:// only on a loopback host)");
                None
            }
            _ => {
                check.error(
                    format!("{path}.jwks"),
                    "set exactly one of `file` (a JWKS file) or `uri` (an https:// URL)",
                );
                None
            }
        };
        if issuers.contains(&provider.issuer) {
            check.error(format!("{path}.issuer"), "another provider has the same issuer");
        }
        issuers.push(provider.issuer.clone());
        let provider_groups = match &provider.groups_claim {
            Some(claim) => ClaimPath::parse(claim).map(|p| p.segments).unwrap_or_else(|| {
                check.error(format!("{path}.groups_claim"), "must be a claim name or a dotted path of names");
                Vec::new()
            }),
            None => groups_claim.clone(),
        };
        if let Some(jwks) = jwks {
            providers.push(Provider {
                name: provider.name.clone(),
                issuer: provider.issuer.clone(),
                audiences: provider.audiences.clone(),
                jwks,
                groups_claim: provider_groups,
            });
        }
    }
    if identity.max_token_lifetime.0 == 0 {
        check.error("identity.max_token_lifetime", "must be greater than 0");
    }
    let mut claims = Vec::new();
    for (i, claim) in identity.job_claims.iter().enumerate() {
        match ClaimPath::parse(claim) {
            Some(path) => {
                bindings::claim_index(&mut claims, path);
            }
            None => check.error(format!("identity.job_claims[{i}]"), "must be a claim name or a dotted path of names"),
        }
    }
    let job_claims: Vec<String> = claims.iter().map(|c| c.name.clone()).collect();
    let payload_key = match identity.payload_metadata_key.as_str() {
        PER_ISSUER_PAYLOAD_KEY => PayloadKey::PerIssuer,
        "" => {
            check.error("identity.payload_metadata_key", "must not be empty");
            PayloadKey::Fixed(String::new())
        }
        key if key.contains(['{', '}']) => {
            check.error(
                "identity.payload_metadata_key",
                format!("a plain key, or {PER_ISSUER_PAYLOAD_KEY:?} for each provider's issuer"),
            );
            PayloadKey::Fixed(key.to_string())
        }
        key => PayloadKey::Fixed(key.to_string()),
    };
    let role_header = identity.role_header.to_ascii_lowercase();
    if !is_token(&role_header) {
        check.error("identity.role_header", "must be a valid header name");
    }

    let mut credential_env = BTreeMap::new();
    for (name, credential) in &file.credentials {
        let valid = !credential.env.is_empty()
            && credential.env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !credential.env.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            check.error(
                format!("credentials.{name}.env"),
                "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
            );
        }
        credential_env.insert(name.clone(), credential.env.clone());
    }

    let global_max_body = file.limits.max_body_bytes.0;
    if global_max_body == 0 {
        check.error("limits.max_body_bytes", "must be greater than 0");
    }
    let dlp = dlp::compile(&mut check, &file.dlp);
    if let Some(name) = &file.dlp.mask_key {
        if !file.credentials.contains_key(name) {
            check.error("dlp.mask_key", format!("unknown credential {name:?}"));
        }
    }
    let gateway_audiences: Vec<&str> =
        file.identity.providers.iter().flat_map(|p| p.audiences.iter().map(String::as_str)).collect();
    let approvals = file
        .approvals
        .as_ref()
        .and_then(|a| approvals::compile_settings(&mut check, a, &file.credentials, &gateway_audiences));
    let audit = file.audit.as_ref().and_then(|a| audit::compile(&mut check, a, approvals.as_ref(), &file.credentials));
    let pricing = file.pricing.as_ref().map(|p| budgets::compile_pricing(&mut check, p));
    let mut accounting = budgets::compile_accounting(&mut check, &file.accounting);
    let leases = file
        .accounting
        .leases
        .as_ref()
        .and_then(|l| leases::compile(&mut check, l, approvals.as_ref(), &file.credentials));
    accounting.lease_slice_percent = leases.as_ref().map(|l| l.slice_percent);
    let revocation = (file.identity.revocation.as_ref())
        .and_then(|r| revocation::compile(&mut check, r, approvals.as_ref(), &file.credentials));
    let mut budget_names = std::collections::BTreeSet::new();
    let role_names: Vec<&String> = file.roles.keys().collect();
    let mut roles = Vec::with_capacity(file.roles.len());
    for (name, role) in &file.roles {
        let mut compiled = compile_role(&mut check, name, role, &file.credentials, global_max_body);
        compiled.budgets = budgets::compile_budgets(
            &mut check,
            &format!("roles.{name}"),
            &role.budgets,
            pricing.is_some(),
            &mut budget_names,
        );
        if let Some(dlp) = &dlp {
            match dlp.profile_index(&role.dlp) {
                Some(index) => compiled.dlp_profile = index,
                None => check.error(format!("roles.{name}.dlp"), format!("unknown DLP profile {:?}", role.dlp)),
            }
        }
        if role.approval.is_some() && file.approvals.is_none() {
            check.error(
                format!("roles.{name}.approval"),
                "needs the top-level `approvals` section (where the approval service is)",
            );
        }
        roles.push(compiled);
    }
    if roles.is_empty() {
        check.error("roles", "at least one role is required");
    }

    let bindings = bindings::compile(&mut check, &file.bindings, &role_names, &issuers, &mut claims);

    if let Some(tokens) = &file.token_service {
        token_service::check(&mut check, tokens, identity.max_token_lifetime.0);
    }

    let Some(dlp) = dlp.filter(|_| check.errors.is_empty()) else {
        return Err(PolicyErrors(check.errors));
    };
    Ok(Policy {
        identity: IdentityPolicy {
            issuers,
            providers,
            max_token_lifetime: identity.max_token_lifetime.0,
            groups_claim,
            job_claims,
            claims,
            role_header,
            payload_key,
        },
        bindings,
        roles,
        credential_env,
        dlp,
        approvals,
        audit,
        pricing,
        accounting,
        leases,
        token_service: file.token_service,
        revocation,
    })
}

fn compile_role(
    check: &mut Checker,
    name: &str,
    role: &RoleConfig,
    credentials: &BTreeMap<String, config::CredentialConfig>,
    global_max_body: u64,
) -> Role {
    let path = format!("roles.{name}");
    if !is_token(name) {
        check.error(path.clone(), "role names must be letters, digits, '-', '_' or '.'");
    }
    if !credentials.contains_key(&role.credential) {
        check.error(format!("{path}.credential"), format!("unknown credential {:?}", role.credential));
    }
    let max_body_bytes = match role.max_body_bytes {
        Some(size) if size.0 > global_max_body => {
            check.error(format!("{path}.max_body_bytes"), format!("exceeds limits.max_body_bytes ({global_max_body})"));
            global_max_body
        }
        Some(size) if size.0 == 0 => {
            check.error(format!("{path}.max_body_bytes"), "must be greater than 0");
            global_max_body
        }
        Some(size) => size.0,
        None => global_max_body,
    };
    Role {
        name: name.to_string(),
        credential: role.credential.clone(),
        endpoints: role.endpoints.clone(),
        models: check.globs(&format!("{path}.models"), &role.models),
        max_tokens: check.cap(&format!("{path}.max_tokens"), &role.max_tokens),
        thinking_budget: check.cap(&format!("{path}.thinking_budget"), &role.thinking_budget),
        client_tools: check.globs(&format!("{path}.tools.client"), &role.tools.client),
        server_tools: check.globs(&format!("{path}.tools.server"), &role.tools.server),
        tool_rules: compile_tool_rules(check, &path, role),
        max_tool_result_bytes: role.tools.max_result_bytes.map(|b| b.0),
        mcp_servers: check.url_globs(&format!("{path}.mcp_servers"), &role.mcp_servers),
        betas: check.globs(&format!("{path}.betas"), &role.betas),
        streaming: role.streaming,
        max_body_bytes,
        dlp_profile: 0,
        approval: role.approval.as_ref().map(|a| {
            let approves_tool_calls = role.tools.rules.iter().any(|rule| rule.action == ToolActionConfig::Approve);
            approvals::compile_role(check, &format!("{path}.approval"), a, approves_tool_calls)
        }),
        budgets: Vec::new(),
    }
}

/// A role's `tools.rules`, each error under `roles.<name>.tools.rules[N]…`.
fn compile_tool_rules(check: &mut Checker, path: &str, role: &RoleConfig) -> crate::core::tools::rules::ToolRules {
    let (rules, errors) = crate::core::tools::rules::ToolRules::compile(&role.tools.rules, role.approval.is_some());
    for error in errors {
        check.error(format!("{path}.tools.rules{}", error.path), error.message);
    }
    rules
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The smallest valid policy: one role bound to group `eng`.
    pub(crate) const MINIMAL: &str = r#"
version: 1
identity: {}
credentials:
  main: { env: ANTHROPIC_API_KEY }
bindings:
  - { group: eng, role: developer }
roles:
  developer:
    credential: main
    models: ["claude-*"]
"#;

    /// Every error of a policy, as `path: message` lines (empty when it compiles).
    pub(crate) fn errors_of(text: &str) -> Vec<String> {
        match Policy::parse(text) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn jwks_uris_are_https_or_plain_http_on_the_loopback_host_only() {
        for trusted in [
            "https://idp.example.com/keys",
            "http://127.0.0.1:8787/.well-known/jwks.json",
            "http://localhost/k",
            "http://[::1]:9/k",
        ] {
            assert!(is_trusted_jwks_uri(trusted), "{trusted}");
        }
        for refused in [
            "http://idp.example.com/keys",
            "http://127.0.0.1.evil.com/k",
            "http://localhost@evil.com/k",
            "http://127.0.0.1@evil/k",
            "ftp://127.0.0.1/k",
            "http://[::1].evil/k",
        ] {
            assert!(!is_trusted_jwks_uri(refused), "{refused}");
        }
    }

    #[test]
    fn minimal_policy_gets_least_privilege_defaults() {
        let policy = Policy::parse(MINIMAL).unwrap();
        let role = &policy.roles[0];
        assert_eq!(policy.identity.max_token_lifetime, 3600);
        assert_eq!(policy.identity.role_header, "x-warden-role");
        assert!(role.client_tools.is_empty() && role.server_tools.is_empty());
        assert!(role.betas.is_empty() && role.mcp_servers.is_empty());
        assert!(role.streaming);
        assert_eq!(role.max_body_bytes, 32 << 20);
    }

    #[test]
    fn unknown_field_error_names_its_path() {
        let text = MINIMAL.replace("models:", "modles:");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("roles.developer"), "{errors:?}");
        assert!(errors[0].contains("modles"), "{errors:?}");
    }

    #[test]
    fn bad_glob_error_names_the_list_index() {
        let text = MINIMAL.replace(r#"["claude-*"]"#, r#"["claude-*", "claude-[ho]*"]"#);
        assert_eq!(errors_of(&text), vec!["roles.developer.models[1]: invalid glob \"claude-[ho]*\": '[' is reserved (only *, ** and ? are special)"]);
    }

    #[test]
    fn bad_mcp_url_pattern_error_names_the_list_index() {
        let text =
            format!("{MINIMAL}    mcp_servers: [\"https://*.corp.example/**\", \"https://user@mcp.example.com/**\"]\n");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("roles.developer.mcp_servers[1]: invalid MCP URL pattern"), "{errors:?}");
        assert!(errors[0].contains("userinfo"), "{errors:?}");
    }

    #[test]
    fn every_reference_error_is_reported_at_once() {
        let text = MINIMAL.replace("role: developer", "role: ghost").replace("credential: main", "credential: nope");
        let errors = errors_of(&text);
        assert!(errors.contains(&"bindings[0].role: unknown role \"ghost\"".to_string()), "{errors:?}");
        assert!(errors.contains(&"roles.developer.credential: unknown credential \"nope\"".to_string()), "{errors:?}");
    }

    #[test]
    fn policy_file_cannot_hold_a_key() {
        let text = MINIMAL.replace("{ env: ANTHROPIC_API_KEY }", "{ key: sk-ant-123 }");
        let errors = errors_of(&text);
        assert!(errors[0].starts_with("credentials.main"), "{errors:?}");
        assert!(!errors[0].contains("sk-ant-123"), "the error must not echo the value: {errors:?}");
    }

    #[test]
    fn provider_names_follow_the_renderer_rules() {
        let with = |name: &str| {
            MINIMAL.replace(
                "identity: {}",
                &format!("identity:\n  providers:\n    - {{ name: \"{name}\", issuer: i, audiences: [a], jwks: {{ file: j }} }}"),
            )
        };
        assert!(errors_of(&with("corp-main_1")).is_empty());
        for bad in ["corp.main", "-corp", "", &"x".repeat(64)] {
            let errors = errors_of(&with(bad));
            assert!(errors.iter().any(|e| e.starts_with("identity.providers[0].name")), "{bad:?}: {errors:?}");
        }
    }

    #[test]
    fn json_policies_are_accepted() {
        let json = r#"{"version":1,"identity":{},"credentials":{"main":{"env":"K"}},
            "roles":{"r":{"credential":"main","models":["claude-*"]}}}"#;
        assert!(Policy::parse(json).is_ok());
    }

    #[test]
    fn role_body_limit_cannot_exceed_the_global_one() {
        let text = format!("{MINIMAL}    max_body_bytes: 64MiB\n");
        assert_eq!(errors_of(&text), vec!["roles.developer.max_body_bytes: exceeds limits.max_body_bytes (33554432)"]);
    }

    #[test]
    fn missing_credential_variable_is_named_without_a_value() {
        let policy = Policy::parse(MINIMAL).unwrap();
        let err = policy.resolve_credentials(|_| None).unwrap_err();
        assert_eq!(err.to_string(), "credentials.main.env: environment variable ANTHROPIC_API_KEY is not set or empty");
        let keys = policy.resolve_credentials(|v| (v == "ANTHROPIC_API_KEY").then(|| "sk-test".to_string())).unwrap();
        assert_eq!(keys.upstream[0].expose(), "sk-test");
    }

    #[test]
    fn unsupported_version_and_empty_document_are_errors() {
        assert!(!errors_of(&MINIMAL.replace("version: 1", "version: 2")).is_empty());
        assert!(!errors_of("").is_empty());
        assert!(!errors_of("[]").is_empty());
    }

    #[test]
    fn the_demo_opus_trigger_holds_every_opus_naming_scheme() {
        use crate::core::approval::{reasons, RequestFacts};
        let policy = Policy::parse(include_str!("../../../envoy/policy.yaml")).unwrap();
        let developer = &policy.roles[policy.role_index("developer").unwrap()];
        let triggers = &developer.approval.as_ref().unwrap().triggers;
        let fired = |model: &str| {
            let facts = RequestFacts { model: model.to_string(), ..RequestFacts::default() };
            reasons(triggers, &facts, 0).contains(&"opus_model")
        };
        for opus in ["claude-opus-4-6", "claude-opus-4-1-20250805", "claude-3-opus-20240229", "claude-3-opus-latest"] {
            assert!(fired(opus), "{opus} is not held");
        }
        for other in ["claude-sonnet-4-6", "claude-3-5-sonnet-20241022", "claude-haiku-4-5", "claude-3-haiku-20240307"]
        {
            assert!(!fired(other), "{other} is held");
        }
    }

    #[test]
    fn the_payload_key_is_fixed_or_each_providers_issuer() {
        let with_key =
            |key: &str| MINIMAL.replace("identity: {}", &format!("identity: {{ payload_metadata_key: {key:?} }}"));
        assert_eq!(Policy::parse(MINIMAL).unwrap().identity.payload_key, PayloadKey::Fixed("jwt_payload".into()));
        assert_eq!(
            Policy::parse(&with_key("payload")).unwrap().identity.payload_key,
            PayloadKey::Fixed("payload".into())
        );
        assert_eq!(Policy::parse(&with_key("{issuer}")).unwrap().identity.payload_key, PayloadKey::PerIssuer);
        for bad in ["", "{iss}", "pay{load"] {
            let errors = errors_of(&with_key(bad));
            assert!(errors.iter().any(|e| e.starts_with("identity.payload_metadata_key: ")), "{bad}: {errors:?}");
        }
    }

    #[test]
    fn providers_have_distinct_issuers_and_valid_groups_claims() {
        let text = MINIMAL.replace(
            "identity: {}",
            "identity:\n  providers:\n    - { name: a, issuer: x, audiences: [w], jwks: { file: j } }\n    \
             - { name: b, issuer: x, audiences: [w], jwks: { file: j }, groups_claim: \"a..b\" }",
        );
        assert_eq!(
            errors_of(&text),
            vec![
                "identity.providers[1].issuer: another provider has the same issuer",
                "identity.providers[1].groups_claim: must be a claim name or a dotted path of names"
            ]
        );
    }

    #[test]
    fn tool_rule_errors_name_the_role_and_rule() {
        let text = format!(
            "{MINIMAL}    tools:\n      rules:\n        - {{ tools: Bash, command: {{ program: \"r[m]\" }}, action: deny }}\n        \
             - {{ tools: Bash, command: {{ git: push_force }}, action: approve }}\n"
        );
        assert_eq!(
            errors_of(&text),
            vec![
                "roles.developer.tools.rules[0].command.program: invalid glob \"r[m]\": '[' is reserved (only *, ** and ? are special)",
                "roles.developer.tools.rules[1].action: approve needs the role's `approval` section (its approvers decide)",
            ]
        );
        let valid = text.replace("\"r[m]\"", "rm").replace("action: approve", "action: deny");
        let policy = Policy::parse(&valid).unwrap();
        assert_eq!(policy.roles[0].tool_rules.ids().collect::<Vec<_>>(), vec!["tools.rules[0]", "tools.rules[1]"]);
    }

    #[test]
    fn shipped_policies_are_valid() {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut checked = 0;
        for dir in ["envoy", "envoy/examples"] {
            for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                if name.contains("policy") && name.ends_with(".yaml") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    if let Err(e) = Policy::parse(&text) {
                        panic!("{dir}/{name} is invalid:\n{e}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 2, "expected the demo policy and at least one example");
    }
}

//! Verified claims → caller → role.
//!
//! Envoy's `jwt_authn` verifies the token (signature, issuer, audience, expiry) and leaves either
//! the verified payload or the failure status in dynamic metadata; the glue copies those into a
//! [`TokenStatus`]. This module then:
//! 1. refuses missing and failed tokens (401, with `jwt_authn`'s reason; an expired token is
//!    `token_expired`, whose message says how to get a fresh one);
//! 2. re-checks what `jwt_authn` does not: a subject is present, `exp` and `iat` are present,
//!    `exp - iat` ≤ `identity.max_token_lifetime`, `iat` is not in the future, and the issuer is
//!    one of the policy's providers (defence in depth if Envoy is misconfigured), and the token
//!    does not carry the approvers' audience (`approvals.approver_audience`: an approver's
//!    credential never calls Claude, and so an agent never holds one);
//! 3. picks the role: the one named in the role header if a binding grants it to the caller, else
//!    the first binding (in policy order) that grants the caller its role — by group or by
//!    claims ([`crate::core::policy::bindings`]); none → 403.

use crate::core::errors::{Denial, Reason};
use crate::core::policy::bindings::Presented;
use crate::core::policy::Policy;

/// Allowed clock difference between the issuer and the gateway, in seconds.
pub const CLOCK_SKEW_SECONDS: f64 = 60.0;

/// `jwt_authn`'s failure message for an expired token.
const JWT_EXPIRED: &str = "Jwt is expired";

/// What an expired token's refusal tells the caller to do.
pub const FRESH_TOKEN_HINT: &str =
    "get a fresh token: `warden token` prints one (refreshing it), `warden login` signs in again";

/// Claims of a token `jwt_authn` verified, as copied from metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifiedClaims {
    /// `sub`.
    pub subject: Option<String>,
    /// `iss`.
    pub issuer: Option<String>,
    /// `aud` (one string or a list, in the token).
    pub audiences: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub expires_at: Option<f64>,
    /// `iat`, seconds since the epoch.
    pub issued_at: Option<f64>,
    /// The groups claim (a list, or one string, in the token).
    pub groups: Vec<String>,
    /// Job claims present in the token, in policy order.
    pub job: Vec<(String, String)>,
    /// Values of the policy's claims (`IdentityPolicy::claims`, same index); `None`: absent or
    /// not a string.
    pub claims: Vec<Option<String>>,
    /// `jti`, when the token has one.
    pub token_id: Option<String>,
}

/// What `jwt_authn` concluded about the request's token.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenStatus {
    /// No token was presented.
    Missing,
    /// A token was presented and failed verification; the text is `jwt_authn`'s reason.
    Failed(String),
    /// A token was presented and verified.
    Verified(VerifiedClaims),
}

impl TokenStatus {
    /// The status for a request without verified claims, from `jwt_authn`'s failure message
    /// (`failed_status_in_metadata`), if it left one.
    pub fn from_failure(message: Option<&str>) -> Self {
        match message {
            None | Some("Jwt is missing") => Self::Missing,
            Some(message) => Self::Failed(message.to_string()),
        }
    }
}

/// An authenticated caller and the role their request runs under.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The token's subject (a person or a workload).
    pub subject: String,
    /// The token's issuer.
    pub issuer: String,
    /// Groups from the token.
    pub groups: Vec<String>,
    /// Job claims from the token.
    pub job: Vec<(String, String)>,
    /// Index of the role in [`Policy::roles`].
    pub role: usize,
    /// The token's `jti`, when it has one.
    pub token_id: Option<String>,
    /// The token's `exp`, seconds since the epoch.
    pub token_expires_at: f64,
}

/// Authenticates the caller and selects its role.
///
/// `requested_role` is the value of the role header, if sent; `now` is seconds since the epoch.
pub fn authenticate(
    policy: &Policy,
    token: TokenStatus,
    requested_role: Option<&str>,
    now: f64,
) -> Result<Caller, Denial> {
    let claims = match token {
        TokenStatus::Missing => {
            return Err(Denial::new(
                Reason::TokenMissing,
                "no token; send a short-lived OIDC token as `Authorization: Bearer <token>` (ANTHROPIC_AUTH_TOKEN)",
            ))
        }
        TokenStatus::Failed(why) if why == JWT_EXPIRED => return Err(expired()),
        TokenStatus::Failed(why) => return Err(Denial::new(Reason::TokenInvalid, format!("token rejected: {why}"))),
        TokenStatus::Verified(claims) => claims,
    };
    let subject = claims
        .subject
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Denial::new(Reason::TokenSubjectMissing, "the token has no `sub` claim"))?;
    let issuer = claims.issuer.unwrap_or_default();
    if !policy.identity.issuers.is_empty() && !policy.identity.issuers.contains(&issuer) {
        return Err(Denial::new(Reason::TokenInvalid, format!("issuer {issuer:?} is not a configured provider")));
    }
    if let Some(approvals) = &policy.approvals {
        if claims.audiences.contains(&approvals.approver_audience) {
            return Err(Denial::new(
                Reason::TokenInvalid,
                format!(
                    "the token carries the approvers' audience {:?}: it decides on reviews and cannot call Claude; \
                     use the agent's own token",
                    approvals.approver_audience
                ),
            ));
        }
    }
    let (Some(issued_at), Some(expires_at)) = (claims.issued_at, claims.expires_at) else {
        return Err(Denial::new(
            Reason::TokenLifetimeUnknown,
            "the token must carry both `iat` and `exp` so its lifetime can be bounded",
        ));
    };
    let lifetime = expires_at - issued_at;
    let max = policy.identity.max_token_lifetime as f64;
    if lifetime > max {
        return Err(Denial::new(
            Reason::TokenLifetimeTooLong,
            format!(
                "token lifetime {}s exceeds the maximum of {}s; mint a shorter-lived token",
                lifetime.max(0.0) as u64,
                max as u64
            ),
        ));
    }
    if issued_at > now + CLOCK_SKEW_SECONDS {
        return Err(Denial::new(Reason::TokenInvalid, "token issued in the future (`iat`); check clocks"));
    }
    if expires_at + CLOCK_SKEW_SECONDS < now {
        return Err(expired());
    }

    let presented = Presented { issuer: &issuer, groups: &claims.groups, claims: &claims.claims };
    let role = select_role(policy, &presented, requested_role, &subject)?;
    Ok(Caller {
        subject,
        issuer,
        groups: claims.groups,
        job: claims.job,
        role,
        token_id: claims.token_id,
        token_expires_at: expires_at,
    })
}

/// The longest token [`claims_expired`] looks into, in bytes.
const MAX_UNVERIFIED_TOKEN_BYTES: usize = 16 * 1024;

/// Whether a token `jwt_authn` rejected says, unverified, that it expired before `now` (beyond
/// the clock skew). With several providers, `jwt_authn` reports its last provider's complaint
/// ("Jwt issuer is not configured") rather than the expiry; this only chooses the wording of a
/// refusal that happens anyway, so a forged `exp` gains nothing.
pub fn claims_expired(token: &str, now: f64) -> bool {
    use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    if token.len() > MAX_UNVERIFIED_TOKEN_BYTES {
        return false;
    }
    let Some(payload) = token.split('.').nth(1) else { return false };
    let mut decoded = vec![0u8; payload.len()];
    let Ok(json) = Base64UrlSafeNoPadding::decode(&mut decoded, payload, None) else { return false };
    #[derive(serde::Deserialize)]
    struct Expiry {
        exp: Option<f64>,
    }
    serde_json::from_slice::<Expiry>(json).ok().and_then(|e| e.exp).is_some_and(|exp| exp + CLOCK_SKEW_SECONDS < now)
}

/// The refusal of an expired token.
pub fn expired() -> Denial {
    Denial::new(Reason::TokenExpired, format!("the token has expired; {FRESH_TOKEN_HINT}"))
}

fn select_role(
    policy: &Policy,
    token: &Presented<'_>,
    requested: Option<&str>,
    subject: &str,
) -> Result<usize, Denial> {
    let mut entitled = policy.bindings.iter().filter(|b| b.grants(token)).map(|b| b.role);
    match requested.map(str::trim).filter(|r| !r.is_empty()) {
        Some(name) => {
            let wanted = policy.role_index(name);
            match wanted.filter(|w| entitled.any(|r| r == *w)) {
                Some(role) => Ok(role),
                None => Err(Denial::new(
                    Reason::RoleNotEntitled,
                    format!("{subject} is not entitled to role {name:?} (check `{}`)", policy.identity.role_header),
                )),
            }
        }
        None => entitled.next().ok_or_else(|| {
            Denial::new(
                Reason::NoRoleBinding,
                format!("no binding grants {subject} a role (groups {:?}, issuer {:?})", token.groups, token.issuer),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
version: 1
identity:
  max_token_lifetime: 1h
  providers:
    - { name: test, issuer: warden-test, audiences: [warden], jwks: { file: jwks.json } }
credentials: { k: { env: K } }
bindings:
  - { group: eng, role: developer }
  - { group: analysts, role: analyst }
roles:
  developer: { credential: k, models: ["*"] }
  analyst: { credential: k, models: ["claude-haiku-*"] }
"#;

    const NOW: f64 = 1_800_000_000.0;

    fn claims(groups: &[&str]) -> VerifiedClaims {
        VerifiedClaims {
            subject: Some("alice".into()),
            issuer: Some("warden-test".into()),
            audiences: vec![],
            issued_at: Some(NOW - 10.0),
            expires_at: Some(NOW + 890.0),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            job: vec![],
            claims: vec![],
            token_id: None,
        }
    }

    fn auth(claims: VerifiedClaims, requested: Option<&str>) -> Result<String, Reason> {
        let policy = Policy::parse(POLICY).unwrap();
        authenticate(&policy, TokenStatus::Verified(claims), requested, NOW)
            .map(|c| policy.roles[c.role].name.clone())
            .map_err(|d| d.reason)
    }

    #[test]
    fn first_matching_binding_wins() {
        assert_eq!(auth(claims(&["analysts", "eng"]), None), Ok("developer".into()));
        assert_eq!(auth(claims(&["analysts"]), None), Ok("analyst".into()));
    }

    #[test]
    fn role_header_selects_an_entitled_role_only() {
        assert_eq!(auth(claims(&["eng", "analysts"]), Some("analyst")), Ok("analyst".into()));
        assert_eq!(auth(claims(&["analysts"]), Some("developer")), Err(Reason::RoleNotEntitled));
        assert_eq!(auth(claims(&["eng"]), Some("ghost")), Err(Reason::RoleNotEntitled));
    }

    #[test]
    fn group_less_caller_has_no_role() {
        assert_eq!(auth(claims(&[]), None), Err(Reason::NoRoleBinding));
        assert_eq!(auth(claims(&["marketing"]), None), Err(Reason::NoRoleBinding));
    }

    #[test]
    fn long_lived_tokens_are_refused() {
        let mut c = claims(&["eng"]);
        c.expires_at = Some(NOW - 10.0 + 3601.0);
        assert_eq!(auth(c.clone(), None), Err(Reason::TokenLifetimeTooLong));
        c.expires_at = Some(NOW - 10.0 + 3600.0);
        assert_eq!(auth(c, None), Ok("developer".into()));
    }

    #[test]
    fn tokens_without_exp_or_iat_are_refused() {
        let mut c = claims(&["eng"]);
        c.issued_at = None;
        assert_eq!(auth(c, None), Err(Reason::TokenLifetimeUnknown));
        let mut c = claims(&["eng"]);
        c.expires_at = None;
        assert_eq!(auth(c, None), Err(Reason::TokenLifetimeUnknown));
    }

    #[test]
    fn tokens_without_subject_or_from_unknown_issuers_are_refused() {
        let mut c = claims(&["eng"]);
        c.subject = None;
        assert_eq!(auth(c, None), Err(Reason::TokenSubjectMissing));
        let mut c = claims(&["eng"]);
        c.issuer = Some("someone-else".into());
        assert_eq!(auth(c, None), Err(Reason::TokenInvalid));
    }

    #[test]
    fn missing_and_failed_tokens_are_401() {
        let policy = Policy::parse(POLICY).unwrap();
        let missing = authenticate(&policy, TokenStatus::Missing, None, NOW).unwrap_err();
        assert_eq!(missing.reason, Reason::TokenMissing);
        let failed =
            authenticate(&policy, TokenStatus::Failed("Jwt verification fails".into()), None, NOW).unwrap_err();
        assert_eq!(failed.message(), "warden: token_invalid: token rejected: Jwt verification fails");
        assert_eq!(failed.reason.error_type().status(), 401);
    }

    #[test]
    fn an_unverified_expiry_is_read_only_from_a_well_formed_payload() {
        use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
        let token = |payload: &str| {
            format!("eyJhbGciOiJFUzI1NiJ9.{}.sig", Base64UrlSafeNoPadding::encode_to_string(payload).unwrap())
        };
        assert!(claims_expired(&token(&format!(r#"{{"exp":{}}}"#, NOW - 3600.0)), NOW));
        assert!(!claims_expired(&token(&format!(r#"{{"exp":{}}}"#, NOW - 10.0)), NOW), "within the skew");
        assert!(!claims_expired(&token(&format!(r#"{{"exp":{}}}"#, NOW + 600.0)), NOW));
        for garbage in [
            token(r#"{"exp":"soon"}"#),
            token(r#"{"exp":1e999}"#),
            token("[1,2]"),
            token("{}"),
            "sk-ant-api03-key".to_string(),
            "a.!!!.c".to_string(),
            format!("a.{}.c", "A".repeat(MAX_UNVERIFIED_TOKEN_BYTES)),
        ] {
            assert!(!claims_expired(&garbage, NOW), "{garbage:.40}");
        }
    }

    #[test]
    fn expired_tokens_are_401_saying_how_to_get_a_fresh_one() {
        let policy = Policy::parse(POLICY).unwrap();
        let by_envoy = authenticate(&policy, TokenStatus::Failed("Jwt is expired".into()), None, NOW).unwrap_err();
        let mut late = claims(&["eng"]);
        late.expires_at = Some(NOW - CLOCK_SKEW_SECONDS - 1.0);
        let by_warden = authenticate(&policy, TokenStatus::Verified(late), None, NOW).unwrap_err();
        for denial in [by_envoy, by_warden] {
            assert_eq!(denial.reason, Reason::TokenExpired);
            assert_eq!(denial.reason.error_type().status(), 401);
            assert!(denial.detail.contains("`warden token`") && denial.detail.contains("`warden login`"), "{denial:?}");
        }
    }

    const CLAIMS_POLICY: &str = r#"
version: 1
identity:
  max_token_lifetime: 1h
  providers:
    - { name: people, issuer: https://idp.example, audiences: [warden], jwks: { file: a.json } }
    - { name: gha, issuer: "https://token.actions.githubusercontent.com", audiences: [warden], jwks: { file: b.json },
        groups_claim: teams }
credentials: { k: { env: K } }
bindings:
  - { group: eng, role: developer }
  - issuer: https://token.actions.githubusercontent.com
    claims: { repository: org/app, ref: refs/heads/main }
    role: ci
  - { issuer: "https://token.actions.githubusercontent.com", claims: { repository: "org/*" }, role: analyst }
roles:
  developer: { credential: k, models: ["*"] }
  ci: { credential: k, models: ["*"] }
  analyst: { credential: k, models: ["claude-haiku-*"] }
"#;

    fn workload(issuer: &str, claims: &[(&str, &str)], policy: &Policy) -> VerifiedClaims {
        let values = policy
            .identity
            .claims
            .iter()
            .map(|c| claims.iter().find(|(n, _)| *n == c.name).map(|(_, v)| v.to_string()))
            .collect();
        VerifiedClaims {
            subject: Some("repo:org/app:ref:refs/heads/main".into()),
            issuer: Some(issuer.into()),
            claims: values,
            ..claims_of_lifetime()
        }
    }

    fn claims_of_lifetime() -> VerifiedClaims {
        VerifiedClaims { issued_at: Some(NOW - 10.0), expires_at: Some(NOW + 290.0), ..VerifiedClaims::default() }
    }

    #[test]
    fn claim_bindings_grant_roles_to_group_less_workloads() {
        let policy = Policy::parse(CLAIMS_POLICY).unwrap();
        let gha = "https://token.actions.githubusercontent.com";
        let role = |claims: VerifiedClaims, requested: Option<&str>| {
            authenticate(&policy, TokenStatus::Verified(claims), requested, NOW)
                .map(|c| policy.roles[c.role].name.clone())
                .map_err(|d| d.reason)
        };
        let main = [("repository", "org/app"), ("ref", "refs/heads/main")];
        assert_eq!(role(workload(gha, &main, &policy), None), Ok("ci".into()));
        // Both claim bindings grant; the role header may pick either, and nothing else.
        assert_eq!(role(workload(gha, &main, &policy), Some("analyst")), Ok("analyst".into()));
        assert_eq!(role(workload(gha, &main, &policy), Some("developer")), Err(Reason::RoleNotEntitled));
        let branch = [("repository", "org/app"), ("ref", "refs/heads/feature")];
        assert_eq!(role(workload(gha, &branch, &policy), None), Ok("analyst".into()));
        let evil = [("repository", "org-evil/app"), ("ref", "refs/heads/main")];
        assert_eq!(role(workload(gha, &evil, &policy), None), Err(Reason::NoRoleBinding));
        // The same claims from another issuer grant nothing.
        assert_eq!(role(workload("https://idp.example", &main, &policy), None), Err(Reason::NoRoleBinding));
    }

    #[test]
    fn each_provider_has_its_groups_claim() {
        let policy = Policy::parse(CLAIMS_POLICY).unwrap();
        assert_eq!(policy.identity.groups_claim_for("https://idp.example"), ["groups"]);
        assert_eq!(policy.identity.groups_claim_for("https://token.actions.githubusercontent.com"), ["teams"]);
        assert_eq!(policy.identity.groups_claim_for("https://unknown.example"), ["groups"]);
    }
}

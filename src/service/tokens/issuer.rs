//! Minting Warden tokens: ES256 JWTs signed with the service's key, published as a JWKS.
//!
//! A token carries `iss` (`token_service.issuer`), `aud` (`token_service.audience`), `sub`,
//! `iat`, `exp` (`iat + token_service.lifetime`), a random `jti` (24 bytes, base64url),
//! `groups`, the [`SignedIn`]'s claims, `warden_src` (the sign-in source) and `warden_auth`
//! (the method). Claims the caller's identity provider sent can never overwrite a registered
//! claim or those two: they are dropped.
//!
//! ES256 because Envoy's `jwt_authn` verifies it and `warden token` already uses it; the key id
//! is derived from the public key as `warden token` derives it.
//!
//! Key rotation: the issuer may also publish another key's public half
//! ([`TokenIssuer::with_previous_key`], `warden serve --token-previous-key`): the JWKS lists it
//! after the current key, so tokens the retired key signed keep verifying at the gateways until
//! they expire (and a next key can be published before it signs). Only the current key signs.

use super::SignedIn;
use crate::service::keys::{jwks_json_of, key_id};
use jwt_simple::prelude::{Claims, ECDSAP256KeyPairLike, ES256KeyPair, ES256PublicKey};
use jwt_simple::reexports::coarsetime;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use crate::core::policy::token_service::TokenServiceConfig;

/// Claims a [`SignedIn`] may not set.
const RESERVED_CLAIMS: &[&str] =
    &["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "nonce", "groups", "warden_src", "warden_auth"];

/// Why a token could not be minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MintError {
    /// The subject is empty.
    NoSubject,
    /// The signature could not be made (the text says why; never key material).
    Signing(String),
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSubject => write!(f, "the identity has no subject"),
            Self::Signing(why) => write!(f, "cannot sign the token: {why}"),
        }
    }
}

/// A freshly minted token.
pub struct MintedToken {
    /// The compact JWT (a secret: never log it).
    pub token: String,
    /// Its `jti`.
    pub token_id: String,
    /// Its `exp`, seconds since the epoch.
    pub expires_at: u64,
}

impl fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedToken").field("token_id", &self.token_id).field("expires_at", &self.expires_at).finish()
    }
}

/// Signs Warden tokens.
pub struct TokenIssuer {
    key: ES256KeyPair,
    kid: String,
    issuer: String,
    audience: String,
    lifetime: u64,
    /// The key signing before the last rotation, and its key id: published, never used to sign.
    previous: Option<(ES256PublicKey, String)>,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer").field("kid", &self.kid).field("issuer", &self.issuer).finish()
    }
}

/// The public key in the PEM file at `path`: a private key (the replaced signing key as it was)
/// or a public one. Errors name the file, never its content.
pub fn load_public_key(path: &std::path::Path) -> Result<ES256PublicKey, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    ES256KeyPair::from_pem(&pem)
        .map(|key| key.public_key())
        .or_else(|_| ES256PublicKey::from_pem(&pem))
        .map_err(|_| format!("{}: not an ES256 (P-256) private or public key in PEM", path.display()))
}

/// Private claims of a Warden token.
#[derive(Serialize)]
struct WardenClaims<'a> {
    groups: &'a [String],
    warden_src: &'a str,
    warden_auth: &'a str,
    #[serde(flatten)]
    extra: BTreeMap<&'a str, &'a str>,
}

impl TokenIssuer {
    /// An issuer signing with `key` for the section `config`.
    pub fn new(key: ES256KeyPair, config: &TokenServiceConfig) -> Self {
        let kid = key_id(&key.public_key());
        Self {
            key: key.with_key_id(&kid),
            kid,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            lifetime: config.lifetime.0,
            previous: None,
        }
    }

    /// The same issuer also publishing `previous` (the public key of the key it replaced).
    pub fn with_previous_key(mut self, previous: ES256PublicKey) -> Self {
        let kid = key_id(&previous);
        self.previous = (kid != self.kid).then_some((previous, kid));
        self
    }

    /// The key id tokens carry in their header.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// The public JWKS (`/.well-known/jwks.json`): the current key, then the previous one.
    pub fn jwks(&self) -> Result<String, String> {
        let current = self.key.public_key();
        let mut keys = vec![(&current, self.kid.as_str())];
        if let Some((previous, kid)) = &self.previous {
            keys.push((previous, kid.as_str()));
        }
        jwks_json_of(&keys).map_err(|e| e.to_string())
    }

    /// Mints a token for `who`, issued at `now` (seconds since the epoch).
    pub fn mint(&self, who: &SignedIn, now: u64) -> Result<MintedToken, MintError> {
        self.mint_for(who, now, &self.audience, self.lifetime)
    }

    /// Mints a token for `who` with another audience and lifetime: the console's session token
    /// carries the approvers' audience (docs/identity.md, "Signing into the console").
    pub fn mint_for(&self, who: &SignedIn, now: u64, audience: &str, lifetime: u64) -> Result<MintedToken, MintError> {
        if who.subject.trim().is_empty() {
            return Err(MintError::NoSubject);
        }
        let extra = who
            .claims
            .iter()
            .filter(|(name, _)| !RESERVED_CLAIMS.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let private =
            WardenClaims { groups: &who.groups, warden_src: &who.source, warden_auth: who.method.as_str(), extra };
        let expires_at = now.saturating_add(lifetime);
        let mut claims = Claims::with_custom_claims(private, coarsetime::Duration::from_secs(lifetime))
            .with_issuer(&self.issuer)
            .with_subject(&who.subject)
            .with_audience(audience);
        let token_id = claims.create_nonce();
        claims.nonce = None;
        claims.jwt_id = Some(token_id.clone());
        claims.issued_at = Some(coarsetime::Duration::from_secs(now));
        claims.expires_at = Some(coarsetime::Duration::from_secs(expires_at));
        claims.invalid_before = None;
        let token = self.key.sign(claims).map_err(|e| MintError::Signing(e.to_string()))?;
        Ok(MintedToken { token, token_id, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_simple::prelude::{ECDSAP256PublicKeyLike, JWTClaims, VerificationOptions};
    use crate::core::policy::units::Seconds;

    fn config() -> TokenServiceConfig {
        serde_yaml_ng::from_str("issuer: https://warden.test\nlifetime: 10m").unwrap()
    }

    fn alice() -> SignedIn {
        SignedIn {
            claims: BTreeMap::from([("repository".into(), "org/app".into()), ("iss".into(), "https://evil".into())]),
            ..crate::service::tokens::test_identities::alice()
        }
    }

    #[test]
    fn a_minted_token_verifies_with_the_published_key_and_carries_the_identity() {
        let issuer = TokenIssuer::new(ES256KeyPair::generate(), &config());
        let now = coarsetime::Clock::now_since_epoch().as_secs();
        let minted = issuer.mint(&alice(), now).unwrap();
        assert_eq!(minted.expires_at, now + Seconds(600).0);
        let claims: JWTClaims<serde_json::Value> =
            issuer.key.public_key().verify_token(&minted.token, Some(VerificationOptions::default())).unwrap();
        assert_eq!(claims.issuer.as_deref(), Some("https://warden.test"));
        assert_eq!(claims.subject.as_deref(), Some("alice@example.com"));
        assert_eq!(claims.jwt_id.as_deref(), Some(minted.token_id.as_str()));
        assert_eq!(claims.custom["groups"], serde_json::json!(["eng"]));
        assert_eq!(claims.custom["repository"], "org/app");
        assert_eq!(claims.custom["warden_auth"], "oidc");
    }

    #[test]
    fn claims_from_the_identity_cannot_overwrite_registered_ones() {
        let issuer = TokenIssuer::new(ES256KeyPair::generate(), &config());
        let minted = issuer.mint(&alice(), coarsetime::Clock::now_since_epoch().as_secs()).unwrap();
        let claims: JWTClaims<serde_json::Value> = issuer.key.public_key().verify_token(&minted.token, None).unwrap();
        assert_eq!(claims.issuer.as_deref(), Some("https://warden.test"));
        assert!(claims.custom.get("iss").is_none());
    }

    #[test]
    fn after_a_rotation_the_jwks_publishes_both_keys_and_only_the_new_one_signs() {
        let old = TokenIssuer::new(ES256KeyPair::generate(), &config());
        let old_token = old.mint(&alice(), coarsetime::Clock::now_since_epoch().as_secs()).unwrap();
        let new = TokenIssuer::new(ES256KeyPair::generate(), &config()).with_previous_key(old.key.public_key());
        let jwks: serde_json::Value = serde_json::from_str(&new.jwks().unwrap()).unwrap();
        let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, [new.key_id(), old.key_id()]);
        let new_token = new.mint(&alice(), coarsetime::Clock::now_since_epoch().as_secs()).unwrap();
        let header = jwt_simple::prelude::Token::decode_metadata(&new_token.token).unwrap();
        assert_eq!(header.key_id(), Some(new.key_id()));
        let header = jwt_simple::prelude::Token::decode_metadata(&old_token.token).unwrap();
        assert_eq!(header.key_id(), Some(old.key_id()));
        // The same key given as the previous one is published once.
        let same = TokenIssuer::new(ES256KeyPair::generate(), &config());
        let public = same.key.public_key();
        assert_eq!(same.with_previous_key(public).jwks().unwrap().matches("\"kid\"").count(), 1);
    }

    #[test]
    fn an_empty_subject_is_not_minted() {
        let issuer = TokenIssuer::new(ES256KeyPair::generate(), &config());
        let nobody = SignedIn { subject: " ".into(), ..alice() };
        assert_eq!(issuer.mint(&nobody, 1).unwrap_err(), MintError::NoSubject);
    }
}

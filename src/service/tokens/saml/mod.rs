//! SAML 2.0 sign-in: the token service as a service provider (SP) of the organisation's SAML
//! identity providers (`token_service.saml`, docs/identity.md "SAML").
//!
//! | route | what |
//! |---|---|
//! | `GET /saml/<name>/metadata` | the SP metadata to register at the provider: entity id, the ACS URL (HTTP-POST), NameID formats, whether assertions must be signed |
//! | `GET /saml/<name>/login?login=<login id>` | SP-initiated sign-in: an AuthnRequest with a random id (remembered for 10 minutes with the login id), sent to `idp_sso_url` by the HTTP-Redirect binding (`SAMLRequest` deflated, `RelayState` = the login id) |
//! | `POST /saml/<name>/acs` | the assertion consumer (HTTP-POST binding; `SAMLResponse`, `RelayState`; body at most 256 KiB) |
//!
//! The ACS verifies the response ([`verify`]: signatures by libxmlsec1 and everything the
//! browser SSO profile asks), then — in one SQLite transaction ([`store`]) — that it answers a
//! request this service issued, for this provider, not yet answered and not expired, and that its
//! assertion id was never accepted; `RelayState` must be that request's login id. The person
//! becomes a [`SignedIn`] (`method: saml`, `source: <name>`) handed to
//! [`super::sign_in::SignIns::complete`], whose answer (a redirect or a page) ends the flow.
//! Any failure answers a plain page saying what failed (never the XML) and logs one line.
//!
//! Verification runs on a blocking thread (libxmlsec1 and SQLite are synchronous).

pub mod store;
pub mod verify;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use ct_codecs::{Base64, Decoder, Encoder};
use serde::Deserialize;
use crate::core::hex::hex;
use crate::core::policy::token_service::{SamlSignInConfig, TokenServiceConfig};

use super::sign_in::Completion;
use super::{SignInMethod, SignedIn, TokenService};
use crate::service::console::{self, escape};
use crate::service::approvals::page::Page;
use crate::service::store::StoreError;
use crate::service::util::{format_utc, log_event, random_bytes, unix_now};
use store::SamlStore;
use verify::Expectations;

/// Largest accepted ACS body (the form with the base64 response), bytes.
pub const MAX_ACS_BODY_BYTES: usize = 256 * 1024;
/// Longest login id carried as `RelayState` (SAML bindings: at most 80 bytes).
const MAX_LOGIN_ID_BYTES: usize = 80;
/// HTTP-POST binding URI.
const HTTP_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// One configured identity provider, resolved (certificate loaded, URLs derived).
#[derive(Debug, Clone)]
pub struct SamlProvider {
    /// Where AuthnRequests go (HTTP-Redirect).
    pub idp_sso_url: String,
    /// What its responses are checked against.
    pub expected: Expectations,
}

/// The SAML providers and what sign-in remembers about them.
pub struct SamlSignIns {
    providers: BTreeMap<String, SamlProvider>,
    /// `None` when the policy has no SAML provider (then no route reaches it).
    store: Option<SamlStore>,
}

impl fmt::Debug for SamlSignIns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SamlSignIns").field("providers", &self.providers.keys()).finish_non_exhaustive()
    }
}

impl SamlSignIns {
    /// Resolves `config.saml` (certificates relative to `policy_path`'s directory) and, when there
    /// is a provider, opens the SAML tables of the database at `db` (migrating it first). Errors
    /// name the policy field.
    pub fn load(config: &TokenServiceConfig, policy_path: &Path, db: &Path) -> Result<Self, String> {
        let base = policy_path.parent().unwrap_or(Path::new("."));
        let mut providers = BTreeMap::new();
        for (index, saml) in config.saml.iter().enumerate() {
            let field = format!("token_service.saml[{index}].idp_certificate");
            let certificate_der = load_certificate(saml, base).map_err(|why| format!("{field}: {why}"))?;
            providers.insert(saml.name.clone(), provider(saml, &config.issuer, certificate_der));
        }
        if providers.is_empty() {
            return Ok(Self { providers, store: None });
        }
        let opened = crate::service::store::Store::open(db).and_then(|migrated| {
            drop(migrated);
            SamlStore::open(db)
        });
        let store = opened.map_err(|e| format!("{}: {e}", db.display()))?;
        Ok(Self { providers, store: Some(store) })
    }

    /// The SAML tables (present whenever a provider is).
    fn store(&self) -> Result<&SamlStore, StoreError> {
        self.store.as_ref().ok_or_else(|| StoreError::other("no SAML provider is configured"))
    }

    /// The provider named `name`.
    pub fn provider(&self, name: &str) -> Option<&SamlProvider> {
        self.providers.get(name)
    }
}

fn provider(saml: &SamlSignInConfig, issuer: &str, certificate_der: Vec<u8>) -> SamlProvider {
    SamlProvider {
        idp_sso_url: saml.idp_sso_url.clone(),
        expected: Expectations {
            idp_entity_id: saml.idp_entity_id.clone(),
            certificate_der,
            sp_entity_id: saml.sp_entity_id(issuer),
            acs_url: saml.acs_url(issuer),
            groups_attribute: saml.groups_attribute.clone(),
            subject_attribute: saml.subject_attribute.clone(),
            require_signed_assertion: saml.require_signed_assertion,
        },
    }
}

/// The DER of the first PEM certificate in `idp_certificate` (inline, or the file it names),
/// checked to be an X.509 certificate.
fn load_certificate(saml: &SamlSignInConfig, base: &Path) -> Result<Vec<u8>, String> {
    let pem = if saml.certificate_is_inline() {
        saml.idp_certificate.clone()
    } else {
        let path = base.join(&saml.idp_certificate);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    };
    let der = pem_certificate_der(&pem)?;
    openssl::x509::X509::from_der(&der).map_err(|_| "the PEM block is not an X.509 certificate".to_string())?;
    Ok(der)
}

/// Decodes the first `CERTIFICATE` block of a PEM text.
fn pem_certificate_der(pem: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let body = pem
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(body, _)| body)
        .ok_or("no -----BEGIN CERTIFICATE----- block")?;
    let base64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    Base64::decode_to_vec(&base64, None).map_err(|_| "the certificate block is not base64".to_string())
}

/// The SAML routes, merged into the token service's.
pub fn routes(service: Arc<TokenService>) -> Router {
    Router::new()
        .route("/saml/{name}/metadata", get(metadata))
        .route("/saml/{name}/login", get(login))
        .route("/saml/{name}/acs", post(acs).layer(DefaultBodyLimit::max(MAX_ACS_BODY_BYTES)))
        .with_state(service)
}

/// A plain page (the console's layout without navigation), never cached.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(r#"<h2>{}</h2><p id="message">{}</p>"#, escape(title), escape(message));
    Page { status, html: console::render(title, None, None, None, &body), cookies: Vec::new() }.into_response()
}

fn unknown_provider(name: &str) -> Response {
    page(StatusCode::NOT_FOUND, "Unknown sign-in", &format!("No SAML identity provider is named {name:?}."))
}

/// `GET /saml/<name>/metadata`.
async fn metadata(State(service): State<Arc<TokenService>>, UrlPath(name): UrlPath<String>) -> Response {
    let Some(provider) = service.saml.provider(&name) else { return unknown_provider(&name) };
    let expected = &provider.expected;
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="{signed}" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>
    <md:AssertionConsumerService Binding="{HTTP_POST}" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity = escape(&expected.sp_entity_id),
        signed = expected.require_signed_assertion,
        acs = escape(&expected.acs_url),
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/samlmetadata+xml"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

/// The login page's query.
#[derive(Debug, Deserialize)]
struct LoginQuery {
    /// The sign-in in progress this SAML round trip completes.
    #[serde(default)]
    login: String,
}

/// Whether `login` can travel as `RelayState`: 1–80 URL-safe characters.
fn valid_login_id(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= MAX_LOGIN_ID_BYTES
        && login.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// `GET /saml/<name>/login?login=<id>`.
async fn login(
    State(service): State<Arc<TokenService>>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let Some(provider) = service.saml.provider(&name) else { return unknown_provider(&name) };
    if !valid_login_id(&query.login) {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in refused",
            "The sign-in link has no valid login id (1 to 80 letters, digits, '-', '_', '.' or '~'); start again.",
        );
    }
    let now = unix_now();
    let started = random_bytes::<16>().and_then(|bytes| {
        let request_id = format!("_{}", hex(&bytes));
        let store = service.saml.store().map_err(|e| e.to_string())?;
        store.remember_request(&request_id, &name, &query.login, now).map_err(|e| e.to_string())?;
        authn_redirect(provider, &request_id, &query.login, now)
    });
    match started {
        Ok(location) => match HeaderValue::from_str(&location) {
            Ok(location) => {
                let mut response = StatusCode::SEE_OTHER.into_response();
                response.headers_mut().insert(header::LOCATION, location);
                response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            Err(_) => {
                page(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in failed", "the provider's URL is not a valid header")
            }
        },
        Err(why) => {
            log_event(&format!("saml {name}: cannot start a sign-in: {why}"));
            page(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in failed", "The service could not start the sign-in.")
        }
    }
}

/// The AuthnRequest XML for request `id` issued at `now`.
fn authn_request(provider: &SamlProvider, id: &str, now: i64) -> String {
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{instant}" Destination="{destination}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="{HTTP_POST}"><saml:Issuer>{issuer}</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified" AllowCreate="true"/></samlp:AuthnRequest>"#,
        id = escape(id),
        instant = format_utc(now),
        destination = escape(&provider.idp_sso_url),
        acs = escape(&provider.expected.acs_url),
        issuer = escape(&provider.expected.sp_entity_id),
    )
}

/// The provider's SSO URL with the deflated, base64 AuthnRequest and the login id as
/// `RelayState` (HTTP-Redirect binding, unsigned).
fn authn_redirect(provider: &SamlProvider, id: &str, login_id: &str, now: i64) -> Result<String, String> {
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflater.write_all(authn_request(provider, id, now).as_bytes()).map_err(|e| e.to_string())?;
    let deflated = deflater.finish().map_err(|e| e.to_string())?;
    let encoded = Base64::encode_to_string(deflated).map_err(|e| e.to_string())?;
    let query = crate::service::console::sessions::query_string(&[("SAMLRequest", encoded), ("RelayState", login_id.to_string())]);
    let separator = if provider.idp_sso_url.contains('?') { "&" } else { "?" };
    Ok(format!("{}{separator}{}", provider.idp_sso_url, query.trim_start_matches('?')))
}

/// The ACS form (HTTP-POST binding).
#[derive(Debug, Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    #[serde(rename = "RelayState", default)]
    relay_state: String,
}

/// Why the ACS refused (each message is safe to show and log: no XML, no secret).
#[derive(Debug)]
enum AcsError {
    /// Not base64 of UTF-8.
    Encoding,
    /// The response failed verification.
    Refused(verify::Refusal),
    /// Request / replay checks.
    Accept(store::AcceptError),
    /// `RelayState` is not the request's login id.
    RelayState,
    /// The thread pool failed.
    Internal,
}

impl fmt::Display for AcsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encoding => f.write_str("SAMLResponse is not base64-encoded UTF-8 XML"),
            Self::Refused(refusal) => write!(f, "{refusal}"),
            Self::Accept(error) => write!(f, "{error}"),
            Self::RelayState => f.write_str("RelayState is not the sign-in this response answers"),
            Self::Internal => f.write_str("internal error"),
        }
    }
}

/// `POST /saml/<name>/acs`.
async fn acs(
    State(service): State<Arc<TokenService>>,
    UrlPath(name): UrlPath<String>,
    form: Result<Form<AcsForm>, FormRejection>,
) -> Response {
    if service.saml.provider(&name).is_none() {
        return unknown_provider(&name);
    }
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            log_event(&format!("saml {name}: sign-in refused: not a SAMLResponse form ({})", rejection.status()));
            let message = "The post is not a SAMLResponse form of at most 256 KiB.";
            return page(rejection.status(), "Sign-in refused", message);
        }
    };
    let task_service = Arc::clone(&service);
    let task_name = name.clone();
    let verified = tokio::task::spawn_blocking(move || consume(&task_service, &task_name, &form, unix_now()))
        .await
        .unwrap_or(Err(AcsError::Internal));
    let (login_id, who) = match verified {
        Ok(verified) => verified,
        Err(why) => {
            log_event(&format!("saml {name}: sign-in refused: {why}"));
            return page(StatusCode::FORBIDDEN, "Sign-in refused", &format!("The SAML sign-in was refused: {why}."));
        }
    };
    let identity = format!("{} (groups: {})", who.subject, who.groups.join(", "));
    match service.sign_ins.complete(&login_id, who) {
        Ok(Completion::Redirect(location)) => {
            log_event(&format!("saml {name}: {identity} signed in"));
            match HeaderValue::from_str(&location) {
                Ok(location) => {
                    let mut response = StatusCode::SEE_OTHER.into_response();
                    response.headers_mut().insert(header::LOCATION, location);
                    response
                }
                Err(_) => page(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in failed", "invalid redirect"),
            }
        }
        Ok(Completion::Page(message)) => {
            log_event(&format!("saml {name}: {identity} signed in"));
            page(StatusCode::OK, "Signed in", &message)
        }
        Err(why) => {
            log_event(&format!("saml {name}: {identity} verified, but the sign-in did not complete: {why}"));
            page(StatusCode::BAD_REQUEST, "Sign-in not completed", &why.to_string())
        }
    }
}

/// Decodes, verifies and accepts a posted response; returns the login id and who signed in.
fn consume(service: &TokenService, name: &str, form: &AcsForm, now: i64) -> Result<(String, SignedIn), AcsError> {
    let provider = service.saml.provider(name).ok_or(AcsError::Internal)?;
    let base64: String = form.saml_response.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = Base64::decode_to_vec(&base64, None).map_err(|_| AcsError::Encoding)?;
    let xml = String::from_utf8(bytes).map_err(|_| AcsError::Encoding)?;
    let verified = verify::verify(&xml, &provider.expected, now).map_err(AcsError::Refused)?;
    let store = service.saml.store().map_err(|e| AcsError::Accept(store::AcceptError::Store(e)))?;
    let login_id = store
        .accept(name, &verified.in_response_to, &verified.assertion_id, verified.remember_until, now)
        .map_err(AcsError::Accept)?;
    if form.relay_state != login_id {
        return Err(AcsError::RelayState);
    }
    let who = SignedIn {
        subject: verified.subject,
        source: name.to_string(),
        method: SignInMethod::Saml,
        groups: verified.groups,
        claims: BTreeMap::new(),
    };
    Ok((login_id, who))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn provider() -> SamlProvider {
        SamlProvider {
            idp_sso_url: "https://idp.example.com/sso?tenant=a".to_string(),
            expected: Expectations {
                idp_entity_id: "https://idp.example.com".to_string(),
                certificate_der: Vec::new(),
                sp_entity_id: "https://warden.example.com/saml/corp".to_string(),
                acs_url: "https://warden.example.com/saml/corp/acs".to_string(),
                groups_attribute: "groups".to_string(),
                subject_attribute: None,
                require_signed_assertion: true,
            },
        }
    }

    /// The value of `name` in the URL's query, percent-decoded.
    fn query_value(url: &str, name: &str) -> String {
        let query = url.split_once('?').unwrap().1;
        let raw = query.split('&').find_map(|pair| pair.strip_prefix(&format!("{name}="))).unwrap();
        let mut out = Vec::new();
        let mut bytes = raw.bytes();
        while let Some(b) = bytes.next() {
            if b == b'%' {
                let hex: String =
                    [bytes.next().unwrap(), bytes.next().unwrap()].iter().map(|&b| char::from(b)).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap());
            } else {
                out.push(b);
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_redirect_carries_a_deflated_authn_request_and_the_login_id() {
        let url = authn_redirect(&provider(), "_abc", "login-1", 1_796_662_168).unwrap();
        assert!(url.starts_with("https://idp.example.com/sso?tenant=a&SAMLRequest="), "{url}");
        assert_eq!(query_value(&url, "RelayState"), "login-1");
        let deflated = Base64::decode_to_vec(query_value(&url, "SAMLRequest"), None).unwrap();
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(deflated.as_slice()).read_to_string(&mut xml).unwrap();
        assert!(xml.contains(r#"ID="_abc""#), "{xml}");
        assert!(xml.contains(r#"IssueInstant="2026-12-07T16:49:28Z""#), "{xml}");
        assert!(xml.contains(r#"AssertionConsumerServiceURL="https://warden.example.com/saml/corp/acs""#), "{xml}");
        assert!(xml.contains("<saml:Issuer>https://warden.example.com/saml/corp</saml:Issuer>"), "{xml}");
        assert!(roxmltree::Document::parse(&xml).is_ok());
    }

    #[test]
    fn login_ids_must_fit_relay_state() {
        assert!(valid_login_id("abc-DEF_1.2~"));
        assert!(!valid_login_id(""));
        assert!(!valid_login_id(&"a".repeat(81)));
        assert!(!valid_login_id("a b"));
        assert!(!valid_login_id("a&RelayState=x"));
    }

    #[test]
    fn certificates_are_read_from_pem_blocks_only() {
        assert_eq!(
            pem_certificate_der("-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n").unwrap(),
            [0, 1, 2]
        );
        assert!(pem_certificate_der("-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----").is_err());
        assert!(pem_certificate_der("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----").is_err());
    }
}

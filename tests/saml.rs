//! SAML sign-in through the real `warden serve`: responses built here and signed by Debian's
//! `xmlsec1` CLI (an XML-DSig implementation independent of the service's verifier path), posted
//! to the assertion consumer endpoint over 127.0.0.1, against a request the service issued.
//!
//! A verified response reaches `SignIns::complete` (the service logs "verified" with the subject
//! and groups, and answers the completion's page); every refused one answers 403 "Sign-in
//! refused" with the reason. `xmlsec1` and `openssl` are required: a missing one fails the suite.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use ct_codecs::{Base64, Decoder, Encoder};

mod common;

use common::{Serve, Workspace, AUDIT_POLICY};

const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const IDP: &str = "https://idp.test/metadata";
const ISSUER: &str = "https://warden.test";
const ENTRA_GROUPS: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups";

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// `2026-12-07T16:49:28Z` for `seconds` since the epoch.
fn instant(seconds: i64) -> String {
    let (year, month, day) = warden::core::budget::window::civil_from_days(seconds.div_euclid(86_400));
    let second = seconds.rem_euclid(86_400);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", second / 3600, second % 3600 / 60, second % 60)
}

/// Runs a required tool; a missing one fails loudly.
fn tool(program: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is required for the SAML tests (apt-get install {program}): {e}"));
    assert!(out.status.success(), "{program} {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A key pair and self-signed certificate made by `openssl` in `dir` as `<name>-key.pem` and
/// `<name>-cert.pem`.
fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}-key.pem"));
    let cert = dir.join(format!("{name}-cert.pem"));
    tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    (key, cert)
}

/// An enveloped signature template over `#id` (exclusive c14n, RSA-SHA256).
fn signature_template(id: &str) -> String {
    format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>"##
    )
}

/// Which elements carry a signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Signed {
    Nothing,
    Response,
    Assertion,
    Both,
}

/// The facts of one response; [`Response::xml`] writes it, [`Idp::sign`] signs it.
#[derive(Clone, Debug)]
struct Response {
    response_id: String,
    assertion_id: String,
    in_response_to: String,
    response_in_response_to: Option<String>,
    destination: String,
    recipient: String,
    audience: String,
    response_issuer: String,
    assertion_issuer: String,
    name_id: String,
    groups_attribute: String,
    groups: Vec<String>,
    not_before: i64,
    not_on_or_after: i64,
    status: String,
}

impl Response {
    fn new(provider: &str, in_response_to: &str) -> Self {
        let now = now();
        let unique = format!("{:x}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos());
        Self {
            response_id: format!("_resp{unique}"),
            assertion_id: format!("_assert{unique}"),
            in_response_to: in_response_to.to_string(),
            response_in_response_to: Some(in_response_to.to_string()),
            destination: format!("{ISSUER}/saml/{provider}/acs"),
            recipient: format!("{ISSUER}/saml/{provider}/acs"),
            audience: format!("{ISSUER}/saml/{provider}"),
            response_issuer: IDP.to_string(),
            assertion_issuer: IDP.to_string(),
            name_id: "alice@corp.com".to_string(),
            groups_attribute: "groups".to_string(),
            groups: vec!["eng".to_string(), "leads".to_string()],
            not_before: now - 30,
            not_on_or_after: now + 300,
            status: "urn:oasis:names:tc:SAML:2.0:status:Success".to_string(),
        }
    }

    /// The assertion element, with a signature template when `signed`.
    fn assertion(&self, signed: bool) -> String {
        let signature = if signed { signature_template(&self.assertion_id) } else { String::new() };
        let values: String =
            self.groups.iter().map(|g| format!("<saml:AttributeValue>{g}</saml:AttributeValue>")).collect();
        format!(
            r#"<saml:Assertion xmlns:saml="{ASSERTION}" ID="{id}" Version="2.0" IssueInstant="{issued}"><saml:Issuer>{issuer}</saml:Issuer>{signature}<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="{irt}" NotOnOrAfter="{until}" Recipient="{recipient}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{from}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{issued}" SessionIndex="{id}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="{groups_attribute}">{values}</saml:Attribute></saml:AttributeStatement></saml:Assertion>"#,
            id = self.assertion_id,
            issued = instant(self.not_before),
            issuer = self.assertion_issuer,
            name_id = self.name_id,
            irt = self.in_response_to,
            until = instant(self.not_on_or_after),
            from = instant(self.not_before),
            recipient = self.recipient,
            audience = self.audience,
            groups_attribute = self.groups_attribute,
        )
    }

    /// The whole response with signature templates where `signed` says, and `extensions` (raw
    /// XML) in `samlp:Extensions` when given.
    fn xml_with(&self, signed: Signed, extensions: &str, assertion: &str) -> String {
        let signature = if matches!(signed, Signed::Response | Signed::Both) {
            signature_template(&self.response_id)
        } else {
            String::new()
        };
        let extensions = if extensions.is_empty() {
            String::new()
        } else {
            format!("<samlp:Extensions>{extensions}</samlp:Extensions>")
        };
        let irt =
            self.response_in_response_to.as_ref().map(|id| format!(r#" InResponseTo="{id}""#)).unwrap_or_default();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<samlp:Response xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="{id}" Version="2.0" IssueInstant="{issued}" Destination="{destination}"{irt}><saml:Issuer>{issuer}</saml:Issuer>{signature}{extensions}<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>{assertion}</samlp:Response>"#,
            id = self.response_id,
            issued = instant(self.not_before),
            destination = self.destination,
            issuer = self.response_issuer,
            status = self.status,
        )
    }

    fn xml(&self, signed: Signed) -> String {
        self.xml_with(signed, "", &self.assertion(matches!(signed, Signed::Assertion | Signed::Both)))
    }
}

/// The test identity provider: its key pair, and another one it does not own.
struct Idp {
    dir: PathBuf,
    key: PathBuf,
    cert: PathBuf,
    other_key: PathBuf,
    other_cert: PathBuf,
}

impl Idp {
    fn new(dir: &Path) -> Self {
        let (key, cert) = key_pair(dir, "idp");
        let (other_key, other_cert) = key_pair(dir, "stranger");
        Self { dir: dir.to_path_buf(), key, cert, other_key, other_cert }
    }

    /// Signs every signature template of `xml` with xmlsec1 (the assertion's first, then the
    /// response's over it).
    fn sign(&self, xml: &str) -> String {
        self.sign_with(xml, &self.key, &self.cert)
    }

    fn sign_with(&self, xml: &str, key: &Path, cert: &Path) -> String {
        let input = self.dir.join("unsigned.xml");
        let output = self.dir.join("signed.xml");
        std::fs::write(&input, xml).unwrap();
        let pair = format!("{},{}", key.display(), cert.display());
        let mut signed = xml.to_string();
        for node in ["Assertion", "Response"] {
            let xpath = format!("//*[local-name()='{node}']/*[local-name()='Signature']");
            if !has_template(&signed, node) {
                continue;
            }
            std::fs::write(&input, &signed).unwrap();
            tool(
                "xmlsec1",
                &[
                    "--sign",
                    "--privkey-pem",
                    &pair,
                    "--id-attr:ID",
                    &format!("{PROTOCOL}:Response"),
                    "--id-attr:ID",
                    &format!("{ASSERTION}:Assertion"),
                    "--node-xpath",
                    &xpath,
                    "--output",
                    output.to_str().unwrap(),
                    input.to_str().unwrap(),
                ],
            );
            signed = std::fs::read_to_string(&output).unwrap();
        }
        signed
    }
}

/// Whether `node`'s signature template is still unsigned (an empty `SignatureValue`).
fn has_template(xml: &str, node: &str) -> bool {
    let document = roxmltree::Document::parse(xml).unwrap();
    let found = document.descendants().any(|n| {
        n.tag_name().name() == "Signature"
            && n.parent_element().is_some_and(|p| p.tag_name().name() == node)
            && n.descendants().any(|v| v.tag_name().name() == "SignatureValue" && v.text().is_none_or(str::is_empty))
    });
    found
}

/// A service with two SAML providers for the same test IdP: `corp` (assertions must be signed,
/// the default) and `lax` (`require_signed_assertion: false`, groups in the Entra ID attribute).
struct Harness {
    serve: Serve,
    idp: Idp,
    agent: ureq::Agent,
    _ws: Workspace,
}

/// An HTTP answer.
struct Answer {
    status: u16,
    location: String,
    body: String,
}

impl Harness {
    fn new(name: &str) -> Self {
        let ws = Workspace::new("saml", name, "");
        let idp = Idp::new(&ws.dir);
        let policy = format!(
            "{AUDIT_POLICY}token_service:
  issuer: {ISSUER}
  saml:
    - {{ name: corp, idp_entity_id: \"{IDP}\", idp_sso_url: \"https://idp.test/sso\", idp_certificate: idp-cert.pem }}
    - name: lax
      idp_entity_id: \"{IDP}\"
      idp_sso_url: \"https://idp.test/sso?app=warden\"
      idp_certificate: idp-cert.pem
      require_signed_assertion: false
      groups_attribute: \"{ENTRA_GROUPS}\"
"
        );
        std::fs::write(ws.path("policy.yaml"), policy).unwrap();
        let key = ws.path("tokens-signing-key.pem");
        let serve = ws.start(&["--token-signing-key", key.to_str().unwrap()]);
        let agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        Self { serve, idp, agent, _ws: ws }
    }

    fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        let mut response = response.unwrap();
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        Answer { status: response.status().as_u16(), location, body: response.body_mut().read_to_string().unwrap() }
    }

    fn get(&self, path: &str) -> Answer {
        Self::answer(self.agent.get(&format!("{}{path}", self.serve.base)).call())
    }

    /// Starts sign-in `login` at `provider`; returns the AuthnRequest's id.
    fn start_login(&self, provider: &str, login: &str) -> String {
        let answer = self.get(&format!("/saml/{provider}/login?login={login}"));
        assert_eq!(answer.status, 303, "{}", answer.body);
        let request = authn_request(&answer.location);
        let document = roxmltree::Document::parse(&request).unwrap();
        document.root_element().attribute("ID").unwrap().to_string()
    }

    /// Posts `xml` to `provider`'s ACS with `relay_state`.
    fn post(&self, provider: &str, xml: &str, relay_state: &str) -> Answer {
        let encoded = Base64::encode_to_string(xml.as_bytes()).unwrap();
        let form = [("SAMLResponse", encoded.as_str()), ("RelayState", relay_state)];
        Self::answer(self.agent.post(&format!("{}/saml/{provider}/acs", self.serve.base)).send_form(form))
    }

    /// A fresh sign-in at `provider` and a response to it.
    fn fresh(&self, provider: &str, login: &str) -> Response {
        Response::new(provider, &self.start_login(provider, login))
    }

    /// Asserts `answer` reached the sign-in's completion for `subject` (the placeholder
    /// `SignIns` knows no login, so the page says so).
    fn assert_verified(&self, answer: &Answer, subject: &str) {
        assert!(!answer.body.contains("Sign-in refused"), "{} {}", answer.status, answer.body);
        assert!(
            answer.body.contains("Sign-in not completed") || answer.status == 303 || answer.status == 200,
            "{}",
            answer.body
        );
        self.wait_for_log(&format!(": {subject} (groups: "));
    }

    /// The service's log once it holds `needle` (its lines are read on another thread, so a
    /// line written before an answer may arrive after it); fails after a while without it.
    fn wait_for_log(&self, needle: &str) -> String {
        for _ in 0..600 {
            let log = self.serve.log();
            if log.contains(needle) {
                return log;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the log never said {needle:?}:\n{}", self.serve.log());
    }

    /// Asserts `answer` was refused with `reason` in its message.
    fn assert_refused(&self, answer: &Answer, reason: &str) {
        assert_eq!(answer.status, 403, "{}", answer.body);
        assert!(answer.body.contains("Sign-in refused"), "{}", answer.body);
        assert!(answer.body.contains(&escape(reason)), "expected {reason:?} in:\n{}", answer.body);
        assert!(!answer.body.contains("&lt;saml"), "the page must not echo the XML");
        self.wait_for_log(reason);
    }
}

/// HTML-escapes like the service's pages.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// Percent-decodes a query value.
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            out.push(u8::from_str_radix(&raw[at + 1..at + 3], 16).unwrap());
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The value of query parameter `name` in `url`.
fn query_value(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    percent_decode(query.split('&').find_map(|p| p.strip_prefix(&format!("{name}="))).unwrap())
}

/// The AuthnRequest XML of an HTTP-Redirect URL.
fn authn_request(location: &str) -> String {
    let deflated = Base64::decode_to_vec(query_value(location, "SAMLRequest"), None).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice()).read_to_string(&mut xml).unwrap();
    xml
}

#[test]
fn sp_metadata_names_the_entity_id_and_the_post_consumer() {
    let h = Harness::new("metadata");
    let answer = h.get("/saml/corp/metadata");
    assert_eq!(answer.status, 200);
    let document = roxmltree::Document::parse(&answer.body).unwrap();
    let root = document.root_element();
    assert_eq!(root.attribute("entityID"), Some("https://warden.test/saml/corp"));
    let acs = document.descendants().find(|n| n.has_tag_name("AssertionConsumerService")).unwrap();
    assert_eq!(acs.attribute("Location"), Some("https://warden.test/saml/corp/acs"));
    assert_eq!(acs.attribute("Binding"), Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"));
    let sp = document.descendants().find(|n| n.has_tag_name("SPSSODescriptor")).unwrap();
    assert_eq!(sp.attribute("WantAssertionsSigned"), Some("true"));
    assert_eq!(h.get("/saml/nobody/metadata").status, 404);
}

#[test]
fn login_redirects_to_the_provider_with_a_fresh_request_and_the_login_as_relay_state() {
    let h = Harness::new("login");
    let answer = h.get("/saml/lax/login?login=abc-123");
    assert_eq!(answer.status, 303);
    assert!(answer.location.starts_with("https://idp.test/sso?app=warden&SAMLRequest="), "{}", answer.location);
    assert_eq!(query_value(&answer.location, "RelayState"), "abc-123");
    let request = authn_request(&answer.location);
    let document = roxmltree::Document::parse(&request).unwrap();
    let root = document.root_element();
    assert_eq!(root.attribute("AssertionConsumerServiceURL"), Some("https://warden.test/saml/lax/acs"));
    assert_eq!(root.attribute("Destination"), Some("https://idp.test/sso?app=warden"));
    let first = root.attribute("ID").unwrap().to_string();
    assert_ne!(first, h.start_login("lax", "abc-123"), "every request gets a new id");
    assert_eq!(h.get("/saml/corp/login?login=").status, 400);
    assert_eq!(h.get("/saml/corp/login?login=a%20b").status, 400);
}

#[test]
fn a_signed_assertion_in_an_unsigned_response_is_accepted() {
    let h = Harness::new("assertion-signed");
    let response = h.fresh("corp", "login-a");
    let answer = h.post("corp", &h.idp.sign(&response.xml(Signed::Assertion)), "login-a");
    h.assert_verified(&answer, "alice@corp.com");
    h.wait_for_log("alice@corp.com (groups: eng, leads) verified");
}

#[test]
fn a_response_signed_over_its_unsigned_assertion_needs_require_signed_assertion_off() {
    let h = Harness::new("response-signed");
    let response = h.fresh("corp", "login-a");
    let answer = h.post("corp", &h.idp.sign(&response.xml(Signed::Response)), "login-a");
    h.assert_refused(&answer, "the assertion is not signed itself");

    let mut response = h.fresh("lax", "login-b");
    response.groups_attribute = ENTRA_GROUPS.to_string();
    response.groups = vec!["a1b2-object-id".to_string()];
    let answer = h.post("lax", &h.idp.sign(&response.xml(Signed::Response)), "login-b");
    h.assert_verified(&answer, "alice@corp.com");
    h.wait_for_log("alice@corp.com (groups: a1b2-object-id) verified");
}

#[test]
fn a_response_with_both_signed_is_accepted() {
    let h = Harness::new("both-signed");
    let response = h.fresh("corp", "login-a");
    let answer = h.post("corp", &h.idp.sign(&response.xml(Signed::Both)), "login-a");
    h.assert_verified(&answer, "alice@corp.com");
}

#[test]
fn an_unsigned_response_is_refused() {
    let h = Harness::new("unsigned");
    let response = h.fresh("lax", "login-a");
    h.assert_refused(&h.post("lax", &response.xml(Signed::Nothing), "login-a"), "the response is not signed");
}

#[test]
fn a_response_signed_by_another_key_is_refused_even_with_its_certificate_inside() {
    let h = Harness::new("other-key");
    let response = h.fresh("corp", "login-a");
    let signed = h.idp.sign_with(&response.xml(Signed::Assertion), &h.idp.other_key, &h.idp.other_cert);
    h.assert_refused(&h.post("corp", &signed, "login-a"), "does not verify with the identity provider");
}

#[test]
fn a_signed_assertion_changed_after_signing_is_refused() {
    let h = Harness::new("tampered");
    let response = h.fresh("corp", "login-a");
    let signed = h.idp.sign(&response.xml(Signed::Assertion)).replace("alice@corp.com", "mallory@corp.com");
    h.assert_refused(&h.post("corp", &signed, "login-a"), "does not verify");
}

#[test]
fn an_unsigned_assertion_beside_a_signed_one_is_refused() {
    let h = Harness::new("wrap-sibling");
    let response = h.fresh("corp", "login-a");
    let signed = h.idp.sign(&response.xml(Signed::Assertion));
    let mut forged = response.clone();
    forged.assertion_id = "_forged".to_string();
    forged.name_id = "mallory@corp.com".to_string();
    let forged_assertion = forged.assertion(false);
    for wrapped in [
        signed.replace("<saml:Assertion ", &format!("{forged_assertion}<saml:Assertion ")),
        signed.replace("</samlp:Response>", &format!("{forged_assertion}</samlp:Response>")),
    ] {
        h.assert_refused(&h.post("corp", &wrapped, "login-a"), "more than one assertion");
    }
    assert!(!h.serve.log().contains("mallory"), "{}", h.serve.log());
}

#[test]
fn a_signed_assertion_moved_into_extensions_with_a_forged_one_in_its_place_is_refused() {
    let h = Harness::new("wrap-moved");
    let response = h.fresh("corp", "login-a");
    let signed = h.idp.sign(&response.xml(Signed::Assertion));
    let start = signed.find("<saml:Assertion ").unwrap();
    let end = signed.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
    let original = &signed[start..end];
    let mut forged = response.clone();
    forged.name_id = "mallory@corp.com".to_string();
    // Same ID as the signed one: a reference by ID could then resolve to either.
    let moved = response.xml_with(Signed::Nothing, original, &forged.assertion(false));
    h.assert_refused(&h.post("corp", &moved, "login-a"), "the response's structure is refused");
    // The signed one kept inside the forged one's Advice (where an ID lookup would still find it).
    forged.assertion_id = "_forged".to_string();
    let advised = forged
        .assertion(false)
        .replace("<saml:AuthnStatement", &format!("<saml:Advice>{original}</saml:Advice><saml:AuthnStatement"));
    let inside = signed.replace(original, &advised);
    h.assert_refused(&h.post("corp", &inside, "login-a"), "the response's structure is refused");
    assert!(!h.serve.log().contains("mallory"), "{}", h.serve.log());
}

#[test]
fn a_signed_response_wrapped_inside_a_forged_one_is_refused() {
    let h = Harness::new("wrap-response");
    let response = h.fresh("lax", "login-a");
    let signed = h.idp.sign(&response.xml(Signed::Response));
    let inner = signed.split_once("?>").unwrap().1.trim().to_string();
    let mut forged = response.clone();
    forged.response_id = "_outer".to_string();
    forged.assertion_id = "_forged".to_string();
    forged.name_id = "mallory@corp.com".to_string();
    let wrapped = forged.xml_with(Signed::Nothing, &inner, &forged.assertion(false));
    h.assert_refused(&h.post("lax", &wrapped, "login-a"), "the response holds more than one assertion");
    assert!(!h.serve.log().contains("mallory"), "{}", h.serve.log());
}

#[test]
fn a_comment_inside_the_signed_name_id_is_refused_not_truncated() {
    let h = Harness::new("comment");
    let mut response = h.fresh("corp", "login-a");
    response.name_id = "alice@corp.com.evil.com".to_string();
    let signed = h.idp.sign(&response.xml(Signed::Assertion));
    let commented = signed.replace("alice@corp.com.evil.com", "alice@corp.com<!---->.evil.com");
    // libxmlsec1 verifies it (exclusive c14n drops comments from the digest); the reduction to
    // the signed content refuses it, and Warden's own text reading would too.
    h.assert_refused(&h.post("corp", &commented, "login-a"), "refused");
    assert!(!h.serve.log().contains("alice@corp.com (groups"), "{}", h.serve.log());
}

#[test]
fn expired_and_not_yet_valid_assertions_are_refused() {
    let h = Harness::new("times");
    let mut expired = h.fresh("corp", "login-a");
    expired.not_before = now() - 900;
    expired.not_on_or_after = now() - 120;
    h.assert_refused(&h.post("corp", &h.idp.sign(&expired.xml(Signed::Assertion)), "login-a"), "has expired");

    let mut early = h.fresh("corp", "login-b");
    early.not_before = now() + 600;
    early.not_on_or_after = now() + 900;
    h.assert_refused(&h.post("corp", &h.idp.sign(&early.xml(Signed::Assertion)), "login-b"), "is not valid yet");
}

#[test]
fn wrong_audience_recipient_destination_and_issuer_are_refused() {
    let h = Harness::new("targets");
    type Change = fn(&mut Response);
    let cases: [(Change, &str); 5] = [
        (|r| r.audience = "https://other.test/saml/corp".to_string(), "Audience is not this service"),
        (|r| r.recipient = "https://other.test/acs".to_string(), "Recipient is not this service"),
        (|r| r.destination = "https://other.test/acs".to_string(), "Destination is not this service"),
        (|r| r.assertion_issuer = "https://evil.test".to_string(), "the assertion's Issuer is not idp_entity_id"),
        (|r| r.status = "urn:oasis:names:tc:SAML:2.0:status:Requester".to_string(), "did not report success"),
    ];
    for (index, (change, reason)) in cases.into_iter().enumerate() {
        let login = format!("login-{index}");
        let mut response = h.fresh("corp", &login);
        change(&mut response);
        h.assert_refused(&h.post("corp", &h.idp.sign(&response.xml(Signed::Both)), &login), reason);
    }
}

#[test]
fn an_assertion_is_accepted_once() {
    let h = Harness::new("replay");
    let response = h.fresh("corp", "login-a");
    let signed = h.idp.sign(&response.xml(Signed::Assertion));
    h.assert_verified(&h.post("corp", &signed, "login-a"), "alice@corp.com");
    h.assert_refused(&h.post("corp", &signed, "login-a"), "already answered");
    // The same assertion id in an answer to a new request.
    let mut again = h.fresh("corp", "login-b");
    again.assertion_id = response.assertion_id.clone();
    h.assert_refused(&h.post("corp", &h.idp.sign(&again.xml(Signed::Assertion)), "login-b"), "already used (replayed)");
}

#[test]
fn in_response_to_must_name_an_unanswered_request_of_this_provider() {
    let h = Harness::new("in-response-to");
    let unknown = Response::new("corp", "_never-issued");
    h.assert_refused(
        &h.post("corp", &h.idp.sign(&unknown.xml(Signed::Assertion)), "login-a"),
        "answers no sign-in request",
    );

    let other_provider = h.start_login("lax", "login-b");
    let misdirected = Response::new("corp", &other_provider);
    h.assert_refused(
        &h.post("corp", &h.idp.sign(&misdirected.xml(Signed::Assertion)), "login-b"),
        "answers no sign-in request",
    );

    let mut mismatch = h.fresh("corp", "login-c");
    mismatch.response_in_response_to = Some("_another".to_string());
    h.assert_refused(&h.post("corp", &h.idp.sign(&mismatch.xml(Signed::Both)), "login-c"), "answer different requests");

    let mut idp_initiated = h.fresh("corp", "login-d");
    idp_initiated.in_response_to = String::new();
    idp_initiated.response_in_response_to = None;
    let xml = h.idp.sign(&idp_initiated.xml(Signed::Assertion).replace(r#" InResponseTo="""#, ""));
    h.assert_refused(&h.post("corp", &xml, "login-d"), "answers no request");

    let reused = h.start_login("corp", "login-e");
    h.assert_verified(
        &h.post("corp", &h.idp.sign(&Response::new("corp", &reused).xml(Signed::Assertion)), "login-e"),
        "alice@corp.com",
    );
    h.assert_refused(
        &h.post("corp", &h.idp.sign(&Response::new("corp", &reused).xml(Signed::Assertion)), "login-e"),
        "already answered",
    );
}

#[test]
fn relay_state_must_be_the_login_that_started_the_request() {
    let h = Harness::new("relay-state");
    let response = h.fresh("corp", "login-a");
    h.assert_refused(&h.post("corp", &h.idp.sign(&response.xml(Signed::Assertion)), "login-b"), "RelayState is not");
}

#[test]
fn doctypes_entities_and_garbage_are_refused() {
    let h = Harness::new("doctype");
    let response = h.fresh("corp", "login-a");
    let signed = h.idp.sign(&response.xml(Signed::Assertion));
    let body = signed.split_once("?>").unwrap().1;
    let laughs = format!(
        r#"<?xml version="1.0"?><!DOCTYPE samlp:Response [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>{}"#,
        body.replace("alice@corp.com", "&c;")
    );
    h.assert_refused(&h.post("corp", &laughs, "login-a"), "DOCTYPE or entity declaration");
    let xxe = format!(r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>{}"#, body.replace("eng", "&e;"));
    h.assert_refused(&h.post("corp", &xxe, "login-a"), "DOCTYPE or entity declaration");
    h.assert_refused(&h.post("corp", "<samlp:Response", "login-a"), "not acceptable XML");
    let garbage = Harness::answer(
        h.agent
            .post(&format!("{}/saml/corp/acs", h.serve.base))
            .send_form([("SAMLResponse", "%%%"), ("RelayState", "x")]),
    );
    h.assert_refused(&garbage, "not base64");
    let huge = "A".repeat(300 * 1024);
    let too_big = Harness::answer(
        h.agent.post(&format!("{}/saml/corp/acs", h.serve.base)).send_form([("SAMLResponse", huge.as_str())]),
    );
    assert_eq!(too_big.status, 413);
    // The request is still unanswered: the real response is accepted.
    h.assert_verified(&h.post("corp", &signed, "login-a"), "alice@corp.com");
}

#[test]
fn a_service_running_only_the_token_service_keeps_its_saml_requests() {
    let policy = format!(
        "version: 1
identity:
  providers:
    - {{ name: demo, issuer: warden-demo, audiences: [warden], jwks: {{ file: jwks.json }} }}
credentials:
  anthropic: {{ env: ANTHROPIC_API_KEY }}
bindings:
  - {{ group: eng, role: developer }}
roles:
  developer: {{ credential: anthropic, models: [\"claude-*\"] }}
token_service:
  issuer: {ISSUER}
  saml:
    - {{ name: corp, idp_entity_id: \"{IDP}\", idp_sso_url: \"https://idp.test/sso\", idp_certificate: idp-cert.pem }}
"
    );
    let ws = Workspace::new("saml", "tokens-only", &policy);
    let idp = Idp::new(&ws.dir);
    let key = ws.path("tokens-signing-key.pem");
    let serve = ws.start(&["--token-signing-key", key.to_str().unwrap()]);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let h = Harness { serve, idp, agent, _ws: ws };
    let response = h.fresh("corp", "login-a");
    h.assert_verified(&h.post("corp", &h.idp.sign(&response.xml(Signed::Assertion)), "login-a"), "alice@corp.com");
}

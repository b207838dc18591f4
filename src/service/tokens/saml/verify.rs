//! Verifies a SAML 2.0 `Response` (HTTP-POST binding) from an organisation's identity provider
//! into the facts a sign-in needs: who, which groups, which request it answers, which assertion
//! id must never be accepted again.
//!
//! Algorithm ([`verify`]):
//! 1. Refuse any `<!DOCTYPE`/`<!ENTITY` before parsing (XXE, billion laughs: SAML never needs a
//!    DTD) and any declared encoding but UTF-8 (both parsers must read the same characters),
//!    then parse with roxmltree (DTDs refused again, a node limit) and check the shape of what
//!    was received: the root is a `samlp:Response`; the document holds exactly one
//!    `saml:Assertion` element anywhere, as a direct child of the root, and no
//!    `EncryptedAssertion` (not supported); every `ds:Signature` is a child of the response or of
//!    the assertion, with exactly one Reference, to `#` + its parent's `ID` (enveloped, as the
//!    SAML profile requires). A second assertion — unsigned beside a signed one, or a signed one
//!    moved into `Extensions`/`Advice`/`Object` with a forged one in its place — is refused here,
//!    whatever the signatures say.
//! 2. The signatures are verified by libxmlsec1 through samael
//!    (`reduce_xml_to_signed_with_allowed_algorithms`): every `ds:Signature` in the document must
//!    verify with the configured certificate (a certificate inside the response is never
//!    trusted; SHA-2 RSA/ECDSA only), and the document is reduced to the content the verified
//!    References cover, rooted at the signed element. Everything below reads that reduced
//!    document only.
//! 3. The reduced root must be the received root (a signed `Response`) or the received assertion
//!    (only the assertion signed), matched by `ID`. The assertion counts as signed when it is the
//!    reduced root or keeps its own (verified) signature inside the signed response;
//!    `require_signed_assertion` demands that, otherwise a signed response over it is enough.
//! 4. Protocol checks: `Status` Success; `Destination` (required when the response is signed)
//!    is the ACS URL; `Issuer` of the response (when present) and of the assertion (required) is
//!    the provider's entity id; a bearer `SubjectConfirmation` whose data has `Recipient` = the
//!    ACS URL, an `InResponseTo`, a `NotOnOrAfter` in the future and no `NotBefore` in the
//!    future; `Conditions` within their times and every `AudienceRestriction` naming the
//!    service's entity id; an `AuthnStatement`. Times allow [`CLOCK_SKEW_SECONDS`] either way.
//!    Response-level facts of an unsigned response (status, destination) can only refuse.
//! 5. The subject (`NameID`, or the configured attribute's single value) and the groups (the
//!    configured attribute's values) come from the verified assertion. Text is read only from
//!    elements whose children are all text: a comment inside `NameID`
//!    (`alice@corp.com<!---->.evil.com`, which the exclusive canonicalization leaves out of the
//!    digest) is refused rather than read as `alice@corp.com`.
//!
//! Not here (the caller, with SQLite): that `InResponseTo` names a request this service issued
//! and has not seen answered, and that the assertion id was never accepted before
//! ([`super::store`]). Limits: no encrypted assertions, no IdP-initiated sign-in, no SHA-1
//! signatures; at most [`MAX_GROUPS`] groups of at most [`MAX_VALUE_CHARS`] characters, and no
//! control characters in a subject or group name.

use std::fmt;

use roxmltree::{Document, Node, NodeType, ParsingOptions};
use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec};

/// SAML 2.0 protocol namespace.
const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// SAML 2.0 assertion namespace.
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// XML-DSig namespace.
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// The status a successful response carries.
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// The subject confirmation method of the browser SSO profile.
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// Allowed clock difference with the identity provider, seconds, either way.
pub const CLOCK_SKEW_SECONDS: i64 = 60;
/// Most XML nodes a response may have (a real one has well under a thousand).
const MAX_NODES: u32 = 20_000;
/// Most groups read from one assertion.
pub const MAX_GROUPS: usize = 512;
/// Longest subject or group name, characters.
pub const MAX_VALUE_CHARS: usize = 512;
/// Signature algorithms accepted (SHA-2 only; SHA-1 is refused).
const ALGORITHMS: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// What a response is checked against: one `token_service.saml` entry, resolved.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// The identity provider's entity id (`Issuer`).
    pub idp_entity_id: String,
    /// The provider's signing certificate, DER.
    pub certificate_der: Vec<u8>,
    /// The service's entity id (`Audience`).
    pub sp_entity_id: String,
    /// The assertion consumer URL (`Destination`, `Recipient`).
    pub acs_url: String,
    /// Attribute holding the groups.
    pub groups_attribute: String,
    /// Attribute naming the person; `None`: the `NameID`.
    pub subject_attribute: Option<String>,
    /// Whether the assertion must carry its own signature.
    pub require_signed_assertion: bool,
}

/// What a verified response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedResponse {
    /// The assertion's `ID` (one-time).
    pub assertion_id: String,
    /// The id of the AuthnRequest it answers.
    pub in_response_to: String,
    /// The person.
    pub subject: String,
    /// Their groups, as the provider sent them, duplicates removed.
    pub groups: Vec<String>,
    /// Until when (seconds since the epoch) the assertion id must be remembered: its latest
    /// `NotOnOrAfter` plus the clock skew.
    pub remember_until: i64,
}

/// Why a response was refused. Messages say what failed and never quote the XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A DOCTYPE or entity declaration.
    Doctype,
    /// Not well-formed XML, or over the node limit.
    Malformed(String),
    /// Wrong structure (root, assertion count, encrypted assertion, moved elements).
    Structure(&'static str),
    /// No signature at all.
    Unsigned,
    /// A signature does not verify with the configured certificate (or uses a refused
    /// algorithm, or signs something else than its parent).
    BadSignature,
    /// The response is signed but the assertion is not, and the policy requires it signed.
    AssertionUnsigned,
    /// A protocol check failed (issuer, destination, audience, status, subject confirmation).
    Check(String),
    /// A time window check failed.
    Time(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Doctype => f.write_str("the response carries a DOCTYPE or entity declaration, which SAML never uses"),
            Self::Malformed(why) => write!(f, "the response is not acceptable XML: {why}"),
            Self::Structure(why) => write!(f, "the response's structure is refused: {why}"),
            Self::Unsigned => f.write_str("the response is not signed"),
            Self::BadSignature => {
                f.write_str("a signature does not verify with the identity provider's certificate (idp_certificate)")
            }
            Self::AssertionUnsigned => f.write_str(
                "the assertion is not signed itself and require_signed_assertion is on (sign assertions at the provider)",
            ),
            Self::Check(why) | Self::Time(why) => f.write_str(why),
        }
    }
}

/// Verifies `xml` (the decoded `SAMLResponse`) against `expected` at `now` (seconds since the
/// epoch); see the module comment for every check.
pub fn verify(xml: &str, expected: &Expectations, now: i64) -> Result<VerifiedResponse, Refusal> {
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err(Refusal::Doctype);
    }
    if !declares_utf8_or_nothing(xml) {
        return Err(Refusal::Malformed("only UTF-8 is accepted".to_string()));
    }
    let received = parse(xml)?;
    let shape = Shape::of(&received)?;
    if !received.descendants().any(|n| is(n, DSIG, "Signature")) {
        return Err(Refusal::Unsigned);
    }
    let reduced_text = XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &[CertificateDer::from(expected.certificate_der.clone())],
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(ALGORITHMS),
    )
    .map_err(|_| Refusal::BadSignature)?;
    let reduced = parse(&reduced_text)?;
    let root = reduced.root_element();
    let (signed_response, assertion) = if is(root, PROTOCOL, "Response") {
        if root.attribute("ID") != Some(shape.response_id) {
            return Err(Refusal::Structure("the signed response is not the one received"));
        }
        let mut assertions = root.children().filter(|n| is(*n, ASSERTION, "Assertion"));
        match (assertions.next(), assertions.next()) {
            (Some(assertion), None) => (Some(root), assertion),
            _ => return Err(Refusal::Structure("the signed response does not hold exactly one assertion")),
        }
    } else if is(root, ASSERTION, "Assertion") {
        (None, root)
    } else {
        return Err(Refusal::Structure("the signature covers neither the response nor its assertion"));
    };
    if assertion.attribute("ID") != Some(shape.assertion_id) {
        return Err(Refusal::Structure("the signed assertion is not the one received"));
    }
    // The reduction drops the signature of the element it is rooted at (the enveloped
    // transform leaves it out of the digest) and keeps those it covers; every one was verified.
    let assertion_signed = assertion == root || assertion.children().any(|n| is(n, DSIG, "Signature"));
    if !assertion_signed && expected.require_signed_assertion {
        return Err(Refusal::AssertionUnsigned);
    }
    if signed_response.is_none() && !assertion_signed {
        return Err(Refusal::Unsigned);
    }
    // The response element's own facts: read from the verified response when it is signed;
    // otherwise from the received one, where they can only refuse.
    let response_in_response_to = match signed_response {
        Some(response) => check_response(response, expected, true)?,
        None => check_response(received.root_element(), expected, false)?,
    };
    let mut verified = check_assertion(assertion, expected, now)?;
    if let Some(id) = response_in_response_to {
        if id != verified.in_response_to {
            return Err(Refusal::Check("the response and its assertion answer different requests".to_string()));
        }
    }
    verified.assertion_id = shape.assertion_id.to_string();
    Ok(verified)
}

/// What the received (unverified) document looks like: ids of its response and its one assertion.
struct Shape<'a> {
    response_id: &'a str,
    assertion_id: &'a str,
}

impl<'a> Shape<'a> {
    fn of(document: &'a Document<'a>) -> Result<Self, Refusal> {
        let root = document.root_element();
        if !is(root, PROTOCOL, "Response") {
            return Err(Refusal::Structure("the root element is not a SAML 2.0 Response"));
        }
        if document.descendants().any(|n| is(n, ASSERTION, "EncryptedAssertion")) {
            return Err(Refusal::Structure("encrypted assertions are not supported"));
        }
        let mut assertions = document.descendants().filter(|n| is(*n, ASSERTION, "Assertion"));
        let assertion = match (assertions.next(), assertions.next()) {
            (Some(assertion), None) => assertion,
            (None, _) => return Err(Refusal::Structure("the response holds no assertion")),
            (Some(_), Some(_)) => return Err(Refusal::Structure("the response holds more than one assertion")),
        };
        if assertion.parent_element() != Some(root) {
            return Err(Refusal::Structure("the assertion is not a direct child of the response"));
        }
        for signature in document.descendants().filter(|n| is(*n, DSIG, "Signature")) {
            let parent = signature.parent_element();
            if parent != Some(root) && parent != Some(assertion) {
                return Err(Refusal::Structure("a signature is neither the response's nor the assertion's"));
            }
            signs_its_parent(signature)?;
        }
        let response_id = root.attribute("ID").ok_or(Refusal::Structure("the response has no ID"))?;
        let assertion_id = assertion.attribute("ID").ok_or(Refusal::Structure("the assertion has no ID"))?;
        Ok(Self { response_id, assertion_id })
    }
}

/// Whether the XML declaration, if any, names no encoding or UTF-8: both parsers then read the
/// same characters (another declared encoding would make libxml2 decode the bytes differently).
fn declares_utf8_or_nothing(xml: &str) -> bool {
    let Some(declaration) = xml.trim_start_matches('\u{feff}').strip_prefix("<?xml") else { return true };
    let declaration = declaration.split("?>").next().unwrap_or_default();
    match declaration.split_once("encoding") {
        None => true,
        Some((_, rest)) => {
            let value = rest.trim_start().trim_start_matches('=').trim_start();
            let value = value.trim_start_matches(['"', '\'']);
            value.get(..5).is_some_and(|v| v.eq_ignore_ascii_case("utf-8"))
                && value.get(5..6).is_some_and(|quote| quote == "\"" || quote == "'")
        }
    }
}

fn parse(xml: &str) -> Result<Document<'_>, Refusal> {
    let options = ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES };
    Document::parse_with_options(xml, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => Refusal::Doctype,
        // The position only: the error's own text may quote the document.
        other => Refusal::Malformed(format!("not well-formed at {}", other.pos())),
    })
}

/// Whether `node` is element `name` in namespace `namespace`.
fn is(node: Node<'_, '_>, namespace: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(namespace)
}

/// The child elements of `node` named `name` in `namespace`.
fn children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    namespace: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |n| is(*n, namespace, name))
}

fn child<'a, 'input: 'a>(node: Node<'a, 'input>, namespace: &'a str, name: &'a str) -> Option<Node<'a, 'input>> {
    children(node, namespace, name).next()
}

/// A signature whose one Reference is `#` + its parent element's `ID` (what the checks above
/// assume "signed" means).
fn signs_its_parent(signature: Node<'_, '_>) -> Result<(), Refusal> {
    let parent_id = signature.parent_element().and_then(|p| p.attribute("ID"));
    let references: Vec<_> = child(signature, DSIG, "SignedInfo")
        .map(|info| children(info, DSIG, "Reference").collect())
        .unwrap_or_default();
    let uri = match references.as_slice() {
        [reference] => reference.attribute("URI"),
        _ => None,
    };
    match (uri.and_then(|u| u.strip_prefix('#')), parent_id) {
        (Some(referenced), Some(parent)) if referenced == parent => Ok(()),
        _ => Err(Refusal::BadSignature),
    }
}

/// The text of an element whose children are all text (a comment, processing instruction or
/// element inside is refused), trimmed.
fn text_of(node: Node<'_, '_>, what: &str) -> Result<String, Refusal> {
    let mut text = String::new();
    for child in node.children() {
        match child.node_type() {
            NodeType::Text => text.push_str(child.text().unwrap_or_default()),
            _ => return Err(Refusal::Check(format!("{what} holds something other than text (a comment or element)"))),
        }
    }
    Ok(text.trim().to_string())
}

/// An `xs:dateTime` attribute as seconds since the epoch.
fn time_attribute(node: Node<'_, '_>, name: &str, what: &str) -> Result<Option<i64>, Refusal> {
    let Some(text) = node.attribute(name) else { return Ok(None) };
    if !text.contains('T') {
        return Err(Refusal::Time(format!("{what} {name} is not a date and time")));
    }
    crate::service::dates::parse_instant(text)
        .map(|ms| Some(ms.div_euclid(1000)))
        .map_err(|_| Refusal::Time(format!("{what} {name} is not a date and time")))
}

/// Checks `[not_before, not_on_or_after)` against `now` with the skew.
fn check_window(now: i64, not_before: Option<i64>, not_on_or_after: Option<i64>, what: &str) -> Result<(), Refusal> {
    if not_before.is_some_and(|t| now.saturating_add(CLOCK_SKEW_SECONDS) < t) {
        return Err(Refusal::Time(format!("{what} is not valid yet (NotBefore is in the future)")));
    }
    if not_on_or_after.is_some_and(|t| now.saturating_sub(CLOCK_SKEW_SECONDS) >= t) {
        return Err(Refusal::Time(format!("{what} has expired (NotOnOrAfter has passed)")));
    }
    Ok(())
}

fn check_issuer(node: Node<'_, '_>, expected: &Expectations, what: &str, required: bool) -> Result<(), Refusal> {
    match child(node, ASSERTION, "Issuer") {
        Some(issuer) if text_of(issuer, "Issuer")? == expected.idp_entity_id => Ok(()),
        Some(_) => Err(Refusal::Check(format!("the {what}'s Issuer is not idp_entity_id"))),
        None if required => Err(Refusal::Check(format!("the {what} has no Issuer"))),
        None => Ok(()),
    }
}

/// Checks the response element; returns its `InResponseTo`. `signed`: whether it is covered by a
/// verified signature (then `Destination` is required).
fn check_response(response: Node<'_, '_>, expected: &Expectations, signed: bool) -> Result<Option<String>, Refusal> {
    match response.attribute("Destination") {
        Some(destination) if destination == expected.acs_url => {}
        Some(_) => return Err(Refusal::Check("the response's Destination is not this service's ACS URL".to_string())),
        None if signed => return Err(Refusal::Check("the signed response has no Destination".to_string())),
        None => {}
    }
    check_issuer(response, expected, "response", false)?;
    let status = child(response, PROTOCOL, "Status")
        .and_then(|s| child(s, PROTOCOL, "StatusCode"))
        .and_then(|c| c.attribute("Value"));
    if status != Some(SUCCESS) {
        return Err(Refusal::Check("the identity provider did not report success (StatusCode)".to_string()));
    }
    Ok(response.attribute("InResponseTo").map(str::to_string))
}

fn check_assertion(assertion: Node<'_, '_>, expected: &Expectations, now: i64) -> Result<VerifiedResponse, Refusal> {
    if assertion.attribute("Version") != Some("2.0") {
        return Err(Refusal::Check("the assertion is not SAML 2.0".to_string()));
    }
    check_issuer(assertion, expected, "assertion", true)?;
    let subject =
        child(assertion, ASSERTION, "Subject").ok_or(Refusal::Check("the assertion has no Subject".into()))?;
    let (in_response_to, confirmed_until) = confirm_bearer(subject, expected, now)?;

    let conditions =
        child(assertion, ASSERTION, "Conditions").ok_or(Refusal::Check("the assertion has no Conditions".into()))?;
    let conditions_until = time_attribute(conditions, "NotOnOrAfter", "the assertion's Conditions")?;
    check_window(
        now,
        time_attribute(conditions, "NotBefore", "the assertion's Conditions")?,
        conditions_until,
        "the assertion",
    )?;
    let restrictions: Vec<_> = children(conditions, ASSERTION, "AudienceRestriction").collect();
    if restrictions.is_empty() {
        return Err(Refusal::Check("the assertion names no Audience".to_string()));
    }
    for restriction in restrictions {
        let mut audiences = children(restriction, ASSERTION, "Audience").map(|a| text_of(a, "Audience"));
        if !audiences.any(|a| a.is_ok_and(|a| a == expected.sp_entity_id)) {
            return Err(Refusal::Check("the assertion's Audience is not this service's entity id".to_string()));
        }
    }
    if child(assertion, ASSERTION, "AuthnStatement").is_none() {
        return Err(Refusal::Check("the assertion has no AuthnStatement".to_string()));
    }

    let subject_text = match &expected.subject_attribute {
        None => child(subject, ASSERTION, "NameID")
            .map(|n| text_of(n, "NameID"))
            .transpose()?
            .ok_or(Refusal::Check("the assertion has no NameID".into()))?,
        Some(name) => match attribute_values(assertion, name)?.as_slice() {
            [one] => one.clone(),
            _ => return Err(Refusal::Check(format!("the subject attribute {name:?} does not have exactly one value"))),
        },
    };
    if !acceptable_value(&subject_text) {
        return Err(Refusal::Check(format!(
            "the subject is empty, longer than {MAX_VALUE_CHARS} characters or holds control characters"
        )));
    }
    let mut groups = Vec::new();
    for group in attribute_values(assertion, &expected.groups_attribute)? {
        if !group.is_empty() && !acceptable_value(&group) {
            return Err(Refusal::Check(format!(
                "a group name is longer than {MAX_VALUE_CHARS} characters or holds control characters"
            )));
        }
        if !group.is_empty() && !groups.contains(&group) {
            groups.push(group);
        }
    }
    if groups.len() > MAX_GROUPS {
        return Err(Refusal::Check(format!("more than {MAX_GROUPS} groups")));
    }
    let until = conditions_until.unwrap_or(confirmed_until).max(confirmed_until);
    Ok(VerifiedResponse {
        assertion_id: String::new(),
        in_response_to,
        subject: subject_text,
        groups,
        remember_until: until.saturating_add(CLOCK_SKEW_SECONDS),
    })
}

/// Whether a subject or group name is 1–[`MAX_VALUE_CHARS`] characters without control
/// characters (a newline would forge log lines and records).
fn acceptable_value(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= MAX_VALUE_CHARS && !value.chars().any(char::is_control)
}

/// Finds a bearer `SubjectConfirmation` valid for this service now; returns its `InResponseTo`
/// and `NotOnOrAfter`.
fn confirm_bearer(subject: Node<'_, '_>, expected: &Expectations, now: i64) -> Result<(String, i64), Refusal> {
    let mut last_refusal = Refusal::Check("the assertion has no bearer SubjectConfirmation".to_string());
    for confirmation in children(subject, ASSERTION, "SubjectConfirmation") {
        if confirmation.attribute("Method") != Some(BEARER) {
            continue;
        }
        let Some(data) = child(confirmation, ASSERTION, "SubjectConfirmationData") else {
            last_refusal = Refusal::Check("the bearer SubjectConfirmation has no data".to_string());
            continue;
        };
        match confirm_data(data, expected, now) {
            Ok(confirmed) => return Ok(confirmed),
            Err(refusal) => last_refusal = refusal,
        }
    }
    Err(last_refusal)
}

fn confirm_data(data: Node<'_, '_>, expected: &Expectations, now: i64) -> Result<(String, i64), Refusal> {
    if data.attribute("Recipient") != Some(expected.acs_url.as_str()) {
        return Err(Refusal::Check(
            "the SubjectConfirmationData's Recipient is not this service's ACS URL".to_string(),
        ));
    }
    let what = "the subject confirmation";
    let until = time_attribute(data, "NotOnOrAfter", what)?
        .ok_or_else(|| Refusal::Time("the SubjectConfirmationData has no NotOnOrAfter".to_string()))?;
    check_window(now, time_attribute(data, "NotBefore", what)?, Some(until), what)?;
    let in_response_to = data.attribute("InResponseTo").filter(|id| !id.is_empty()).ok_or_else(|| {
        Refusal::Check(
            "the assertion answers no request (no InResponseTo; IdP-initiated sign-in is refused)".to_string(),
        )
    })?;
    Ok((in_response_to.to_string(), until))
}

/// The values of the attribute `name` (every `Attribute` of that `Name` in every
/// `AttributeStatement`), trimmed.
fn attribute_values(assertion: Node<'_, '_>, name: &str) -> Result<Vec<String>, Refusal> {
    let mut values = Vec::new();
    for statement in children(assertion, ASSERTION, "AttributeStatement") {
        for attribute in children(statement, ASSERTION, "Attribute").filter(|a| a.attribute("Name") == Some(name)) {
            for value in children(attribute, ASSERTION, "AttributeValue") {
                values.push(text_of(value, "an AttributeValue")?);
                if values.len() > MAX_GROUPS.saturating_mul(2) {
                    return Err(Refusal::Check(format!("the attribute {name:?} has too many values")));
                }
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expectations() -> Expectations {
        Expectations {
            idp_entity_id: "https://idp.example.com".to_string(),
            certificate_der: Vec::new(),
            sp_entity_id: "https://warden.example.com/saml/corp".to_string(),
            acs_url: "https://warden.example.com/saml/corp/acs".to_string(),
            groups_attribute: "groups".to_string(),
            subject_attribute: None,
            require_signed_assertion: true,
        }
    }

    #[test]
    fn doctypes_and_entities_are_refused_before_parsing() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>"#;
        assert_eq!(verify(laughs, &expectations(), 0), Err(Refusal::Doctype));
        let xxe = r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert_eq!(verify(xxe, &expectations(), 0), Err(Refusal::Doctype));
    }

    #[test]
    fn only_utf8_documents_are_read() {
        assert!(declares_utf8_or_nothing("<r/>"));
        assert!(declares_utf8_or_nothing(r#"<?xml version="1.0"?><r/>"#));
        assert!(declares_utf8_or_nothing(r#"<?xml version="1.0" encoding="UTF-8"?><r/>"#));
        assert!(declares_utf8_or_nothing("<?xml version='1.0' encoding = 'utf-8'?><r/>"));
        assert!(!declares_utf8_or_nothing(r#"<?xml version="1.0" encoding="ISO-8859-1"?><r/>"#));
        assert!(!declares_utf8_or_nothing(r#"<?xml version="1.0" encoding="UTF-16"?><r/>"#));
        assert!(!declares_utf8_or_nothing(r#"<?xml version="1.0" encoding="utf-8x"?><r/>"#));
        let latin = r#"<?xml version="1.0" encoding="ISO-8859-1"?><samlp:Response/>"#;
        assert_eq!(verify(latin, &expectations(), 0), Err(Refusal::Malformed("only UTF-8 is accepted".to_string())));
    }

    #[test]
    fn the_root_must_be_a_response_with_exactly_one_assertion_child() {
        let not_response = r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="a"/>"#;
        assert!(matches!(verify(not_response, &expectations(), 0), Err(Refusal::Structure(_))));
        let two = format!(
            r#"<samlp:Response xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="r"><saml:Assertion ID="a"/><saml:Assertion ID="b"/></samlp:Response>"#
        );
        assert_eq!(
            verify(&two, &expectations(), 0),
            Err(Refusal::Structure("the response holds more than one assertion"))
        );
        let nested = format!(
            r#"<samlp:Response xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="r"><samlp:Extensions><saml:Assertion ID="a"/></samlp:Extensions></samlp:Response>"#
        );
        assert_eq!(
            verify(&nested, &expectations(), 0),
            Err(Refusal::Structure("the assertion is not a direct child of the response"))
        );
        let encrypted = format!(
            r#"<samlp:Response xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="r"><saml:EncryptedAssertion/></samlp:Response>"#
        );
        assert_eq!(
            verify(&encrypted, &expectations(), 0),
            Err(Refusal::Structure("encrypted assertions are not supported"))
        );
    }

    #[test]
    fn a_signature_must_sign_its_own_parent_and_sit_in_the_response_or_the_assertion() {
        let signature = |uri: &str| {
            format!(
                r#"<ds:Signature xmlns:ds="{DSIG}"><ds:SignedInfo><ds:Reference URI="{uri}"/></ds:SignedInfo></ds:Signature>"#
            )
        };
        let response = |in_response: &str, in_assertion: &str, in_extensions: &str| {
            format!(
                r#"<samlp:Response xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="r">{in_response}<samlp:Extensions>{in_extensions}</samlp:Extensions><saml:Assertion ID="a" Version="2.0">{in_assertion}</saml:Assertion></samlp:Response>"#
            )
        };
        let refused = [
            response(&signature("#a"), "", ""),
            response("", &signature("#r"), ""),
            response("", &signature(""), ""),
            response(&signature("#r").replace("<ds:Reference", r##"<ds:Reference URI="#a"/><ds:Reference"##), "", ""),
            response("", "", &signature("#r")),
        ];
        for xml in refused {
            let refusal = verify(&xml, &expectations(), 0).unwrap_err();
            assert!(
                matches!(
                    refusal,
                    Refusal::BadSignature
                        | Refusal::Structure("a signature is neither the response's nor the assertion's")
                ),
                "{xml}: {refusal:?}"
            );
        }
    }

    #[test]
    fn a_response_without_any_signature_is_refused_as_unsigned() {
        let unsigned = format!(
            r#"<samlp:Response xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="r"><saml:Assertion ID="a" Version="2.0"/></samlp:Response>"#
        );
        assert_eq!(verify(&unsigned, &expectations(), 0), Err(Refusal::Unsigned));
    }

    #[test]
    fn text_with_a_comment_inside_is_refused_not_truncated() {
        let xml = format!(r#"<saml:NameID xmlns:saml="{ASSERTION}">alice@corp.com<!---->.evil.com</saml:NameID>"#);
        let document = Document::parse(&xml).unwrap();
        assert!(text_of(document.root_element(), "NameID").is_err());
        let plain = format!(r#"<saml:NameID xmlns:saml="{ASSERTION}"> alice@corp.com </saml:NameID>"#);
        let document = Document::parse(&plain).unwrap();
        assert_eq!(text_of(document.root_element(), "NameID").unwrap(), "alice@corp.com");
    }

    #[test]
    fn subjects_and_groups_are_short_printable_text() {
        assert!(acceptable_value("alice@corp.com"));
        assert!(acceptable_value("Zoë Ñandú"));
        assert!(!acceptable_value(""));
        assert!(!acceptable_value("alice\n2026-12-07T00:00:00Z warden serve: forged"));
        assert!(!acceptable_value("a\u{7}b"));
        assert!(!acceptable_value(&"x".repeat(MAX_VALUE_CHARS + 1)));
    }

    #[test]
    fn parse_errors_give_a_position_not_the_text() {
        let refusal = parse("<r>&secret-entity-name;</r>").unwrap_err();
        assert!(matches!(&refusal, Refusal::Malformed(why) if why.starts_with("not well-formed at 1:")), "{refusal:?}");
        assert!(!refusal.to_string().contains("secret"));
    }

    #[test]
    fn time_windows_allow_sixty_seconds_of_skew_either_way() {
        assert!(check_window(1000, Some(1060), Some(2000), "x").is_ok());
        assert!(check_window(1000, Some(1061), Some(2000), "x").is_err());
        assert!(check_window(1000, None, Some(941), "x").is_ok());
        assert!(check_window(1000, None, Some(940), "x").is_err());
        assert!(check_window(i64::MAX, Some(i64::MIN), Some(i64::MIN), "x").is_err());
    }

    #[test]
    fn times_are_xml_date_times_only() {
        let xml = r#"<d a="2026-12-07T16:49:28Z" b="2026-12-07T16:49:28.123+01:00" c="1700000000" e="2026-12-07"/>"#;
        let document = Document::parse(xml).unwrap();
        let node = document.root_element();
        assert_eq!(time_attribute(node, "a", "x").unwrap(), Some(1_796_662_168));
        assert_eq!(time_attribute(node, "b", "x").unwrap(), Some(1_796_662_168 - 3600));
        assert!(time_attribute(node, "c", "x").is_err());
        assert!(time_attribute(node, "e", "x").is_err());
        assert_eq!(time_attribute(node, "missing", "x").unwrap(), None);
    }
}

//! The catalog's tables: a true positive with its exact span and a near miss for every detector,
//! collected from the families' `cases` modules, and the checks every detector must pass.

use super::*;
use crate::core::dlp::engine::tests::ids;
use crate::core::dlp::engine::Engine;
use crate::core::dlp::pii::email;
use std::collections::{BTreeMap, BTreeSet};

// Every test value is fabricated: generated from a seed with the alphabet and length of the
// format, never copied from a real credential.
pub(super) const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(super) const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub(super) const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub(super) const HEX: &str = "0123456789abcdef";
pub(super) const HEX_UPPER: &str = "0123456789ABCDEF";
pub(super) const DIGITS: &str = "0123456789";
pub(super) const URL_SAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
pub(super) const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(super) const BECH32: &str = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";
pub(super) const MIXED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!%*+-_=~";

/// `len` characters of `alphabet`, pseudo-random from `seed` (xorshift over an FNV hash).
pub(super) fn f(seed: &str, alphabet: &str, len: usize) -> String {
    let mut state =
        seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let chars: Vec<char> = alphabet.chars().collect();
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chars[(state % chars.len() as u64) as usize]
        })
        .collect()
}

pub(super) fn uuid(seed: &str) -> String {
    let h = f(seed, HEX, 32);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// `digits` followed by its Luhn check digit.
pub(super) fn with_luhn(digits: &str) -> String {
    let sum: u32 = digits
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).unwrap();
            if i % 2 == 0 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

/// An IBAN for `country` and `bban` with correct check digits.
pub(super) fn iban_for(country: &str, bban: &str) -> String {
    let rearranged = format!("{bban}{country}00");
    let mut rem = 0u32;
    for c in rearranged.chars() {
        let v = c.to_digit(36).unwrap();
        rem = if v < 10 { (rem * 10 + v) % 97 } else { (rem * 100 + v) % 97 };
    }
    format!("{country}{:02}{bban}", 98 - rem)
}

pub(super) fn grouped(compact: &str, size: usize) -> String {
    compact.as_bytes().chunks(size).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ")
}

/// A true positive: `template` with `{}` replaced by `secret`, which must be found as `id`.
pub(super) struct Case {
    pub id: &'static str,
    pub text: String,
    pub secret: String,
}

pub(super) fn p(id: &'static str, template: &str, secret: String) -> Case {
    assert!(template.contains("{}"), "{id}: template without {{}}");
    Case { id, text: template.replacen("{}", &secret, 1), secret }
}

pub(super) fn n(id: &'static str, text: impl Into<String>) -> (&'static str, String) {
    (id, text.into())
}

pub(super) fn pem_lines(seed: &str, lines: usize, sep: &str) -> String {
    (0..lines).map(|i| f(&format!("{seed}{i}"), B64, 64)).collect::<Vec<_>>().join(sep)
}

fn positives() -> Vec<Case> {
    let mut all = Vec::new();
    for family in [
        cloud::cases::positives,
        devtools::cases::positives,
        ai::cases::positives,
        business::cases::positives,
        structured::cases::positives,
        generic::cases::positives,
        personal::cases::positives,
    ] {
        all.extend(family());
    }
    all
}

fn negatives() -> Vec<(&'static str, String)> {
    let mut all = Vec::new();
    for family in [
        cloud::cases::negatives,
        devtools::cases::negatives,
        ai::cases::negatives,
        business::cases::negatives,
        structured::cases::negatives,
        generic::cases::negatives,
        personal::cases::negatives,
    ] {
        all.extend(family());
    }
    all
}

fn engine() -> Engine {
    Engine::new(builtin()).unwrap_or_else(|errors| panic!("catalog does not compile: {errors:?}"))
}

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && id
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

#[test]
fn catalog_is_well_formed() {
    let specs = builtin();
    let mut ids = BTreeSet::new();
    for spec in &specs {
        assert!(is_kebab(&spec.id), "{}: not kebab-case", spec.id);
        assert!(ids.insert(spec.id.clone()), "{}: duplicate id", spec.id);
        assert!(!spec.description.trim().is_empty() && !spec.description.contains('\n'), "{}: description", spec.id);
        assert!(regex_automata::meta::Regex::new(&spec.pattern).is_ok(), "{}: pattern does not compile", spec.id);
        assert!(spec.max_len > 0, "{}", spec.id);
        let expected_priority = match (spec.category, spec.id.as_str()) {
            (Category::Pii, _) => 20,
            (
                _,
                "url-password"
                | "http-authorization"
                | "session-cookie"
                | "netrc-password"
                | "registry-auth"
                | "xml-password"
                | "cli-password"
                | "jdbc-oracle-password",
            ) => 25,
            (_, id) if id.starts_with("generic-") => 10,
            _ => 30,
        };
        assert_eq!(spec.priority, expected_priority, "{}", spec.id);
        match &spec.trigger {
            Trigger::Prefix(literals) | Trigger::Infix { literals, .. } => {
                assert!(!literals.is_empty(), "{}", spec.id);
                assert!(literals.iter().all(|l| !l.is_empty() && l.is_ascii()), "{}", spec.id);
            }
            Trigger::Digits { min_digits, .. } => assert!(*min_digits > 0, "{}", spec.id),
        }
    }
    let credentials = specs.iter().filter(|s| s.category == Category::Credential).count();
    let pii = specs.len() - credentials;
    assert!(credentials >= 60, "{credentials} credential detectors");
    assert!(specs.len() >= 80, "{} detectors", specs.len());
    assert!(pii >= 5, "{pii} personal-data detectors");
    // The engine compiles every pattern, including the lazy DFA used while streaming.
    assert_eq!(engine().specs().len(), specs.len());
}

#[test]
fn every_detector_has_a_positive_and_a_negative_case() {
    let positive: BTreeSet<&str> = positives().iter().map(|c| c.id).collect();
    let negative: BTreeSet<&str> = negatives().iter().map(|(id, _)| *id).collect();
    for spec in builtin() {
        assert!(positive.contains(spec.id.as_str()), "{}: no true positive", spec.id);
        assert!(negative.contains(spec.id.as_str()), "{}: no near miss", spec.id);
    }
    let ids: BTreeSet<String> = builtin().into_iter().map(|s| s.id).collect();
    for id in positive.iter().chain(&negative) {
        assert!(ids.contains(*id), "table names unknown detector {id}");
    }
}

#[test]
fn true_positives_are_found_with_the_exact_span() {
    let engine = engine();
    let mut failures = Vec::new();
    for case in positives() {
        let findings = ids(&engine, &case.text);
        if !findings.contains(&(case.id.to_string(), case.secret.clone())) {
            failures.push(format!("{}: expected {:?} in {:?}, found {findings:?}", case.id, case.secret, case.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn near_misses_are_not_found() {
    let engine = engine();
    let mut failures = Vec::new();
    for (id, text) in negatives() {
        let findings = ids(&engine, &text);
        if findings.iter().any(|(found, _)| found == id) {
            failures.push(format!("{id}: false positive in {text:?}: {findings:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Each `Prefix` pattern starts with its literals: every unanchored match in the positive
/// texts begins at a literal, and every literal starts a match with the expected span.
#[test]
fn prefix_literals_agree_with_patterns() {
    let specs = builtin();
    let mut covered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for case in positives() {
        let spec = specs.iter().find(|s| s.id == case.id).unwrap();
        let Trigger::Prefix(literals) = &spec.trigger else { continue };
        let regex = regex_automata::meta::Regex::new(&spec.pattern).unwrap();
        let lower = case.text.to_ascii_lowercase();
        let starts_literal =
            |at: usize| literals.iter().find(|l| lower[at..].starts_with(&l.to_ascii_lowercase())).cloned();
        for m in regex.find_iter(&case.text) {
            assert!(starts_literal(m.start()).is_some(), "{}: match at {} of {:?}", spec.id, m.start(), case.text);
        }
        let expected_start = case.text.find(&case.secret).unwrap();
        let expected = (expected_start, expected_start + case.secret.len());
        let mut caps = regex.create_captures();
        for at in 0..case.text.len() {
            let Some(literal) = starts_literal(at) else { continue };
            let input = regex_automata::Input::new(&case.text).range(at..).anchored(regex_automata::Anchored::Yes);
            regex.search_captures(&input, &mut caps);
            let span = caps.get_group_by_name("secret").or_else(|| caps.get_match().map(|m| m.span()));
            if span.is_some_and(|s| (s.start, s.end) == expected) {
                covered.entry(spec.id.clone()).or_default().insert(literal);
            }
        }
    }
    for spec in &specs {
        let Trigger::Prefix(literals) = &spec.trigger else { continue };
        for literal in literals {
            assert!(
                covered.get(&spec.id).is_some_and(|c| c.contains(literal)),
                "{}: no positive case starts at literal {literal:?}",
                spec.id
            );
        }
    }
}

/// Streaming: at every split point of a true positive, the settled text never holds part
/// of the secret unmasked, and what is settled is what the complete text gives.
#[test]
fn streamed_positives_never_settle_a_partial_secret() {
    use crate::core::dlp::engine::{Action, Scratch};
    let engine = engine();
    let active = vec![Action::Mask; engine.specs().len()];
    let mut failures = Vec::new();
    for case in positives() {
        let start = case.text.find(&case.secret).unwrap();
        let end = start + case.secret.len();
        // A visible trigger literal (`ghp_`) may be delivered before the rest is decided.
        let spec = engine.spec(engine.index_of(case.id).unwrap()).unwrap();
        let revealed = match &spec.trigger {
            Trigger::Prefix(literals) if spec.reveal_trigger => literals
                .iter()
                .filter(|l| case.secret.get(..l.len()).is_some_and(|p| p.eq_ignore_ascii_case(l)))
                .map(String::len)
                .max()
                .unwrap_or(0),
            _ => 0,
        };
        let complete = engine.find_all(&case.text);
        let step = (case.text.len() / 150).max(1);
        let mut scratch = Scratch::default();
        for cut in (0..case.text.len()).step_by(step).filter(|&c| case.text.is_char_boundary(c)) {
            let scan = engine.scan(&case.text[..cut], 0, false, &active, &mut scratch);
            let masked = scan.findings.iter().any(|x| x.start == start && x.end == end);
            if scan.settled > start + revealed && !masked {
                failures.push(format!("{}: cut {cut} settles {} of {:?}", case.id, scan.settled, case.text));
                break;
            }
            if let Some(x) = scan.findings.iter().find(|x| !complete.contains(x)) {
                failures.push(format!("{}: cut {cut} finds {x:?} that the complete text does not", case.id));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn specific_detectors_win_over_generic_and_personal_ones() {
    let engine = engine();
    let ghp = format!("ghp_{}", f("overlap-ghp", ALNUM, 36));
    assert_eq!(ids(&engine, &format!("GITHUB_TOKEN={ghp}")), vec![("github-pat".into(), ghp.clone())]);
    assert_eq!(ids(&engine, &format!("token = \"{ghp}\"")), vec![("github-pat".into(), ghp)]);
    // The password of a URL is masked, not the "pass@host" email it resembles.
    let text = "https://deploy:Zq81mVx0pL@git.acme.io/infra.git";
    assert_eq!(ids(&engine, text), vec![("url-password".into(), "Zq81mVx0pL".into())]);
    // A GCP service-account file: the JSON-escaped key is one private-key finding; the key id
    // is not a secret name; the service account's address is an email.
    let key = format!("-----BEGIN PRIVATE KEY-----\\nMIIEvQ{}\\n-----END PRIVATE KEY-----", pem_lines("sa", 6, "\\n"));
    let json = format!(
        r#"{{"type": "service_account", "private_key_id": "{}", "private_key": "{key}\n", "client_email": "ci@acme-prod.iam.gserviceaccount.com"}}"#,
        f("sa-id", HEX, 40)
    );
    assert_eq!(
        ids(&engine, &json),
        vec![("private-key".into(), key), ("email".into(), "ci@acme-prod.iam.gserviceaccount.com".into())]
    );
}

#[test]
fn email_validator_rejects_non_personal_addresses() {
    for personal in ["jane.doe@acmecorp.io", "a.b+c@mail.acme.co.uk", "dev@examples.com"] {
        assert!(email(personal), "{personal}");
    }
    for not_personal in [
        "user@example.com",
        "x@mail.example.net",
        "git@github.com",
        "noreply@anthropic.com",
        "a@b.test",
        "icon@2x.png",
        "x@host.localhost",
        "no-at-sign",
    ] {
        assert!(!email(not_personal), "{not_personal}");
    }
}

#[test]
fn phone_validator_counts_digits() {
    use crate::core::dlp::pii::phone;
    for plausible in ["+44 20 7946 0958", "+14155550132", "(415) 555-0132", "1-800-555-0199"] {
        assert!(phone(plausible), "{plausible}");
    }
    for implausible in ["+1 2345", "+1234567890123456", "555-0132", "+11111111111", "12 345 678 9012"] {
        assert!(!phone(implausible), "{implausible}");
    }
}

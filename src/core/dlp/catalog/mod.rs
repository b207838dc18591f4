//! The built-in detector catalog: every kind of credential and personal data Warden looks for
//! out of the box.
//!
//! [`builtin`] returns the detectors in a stable order, one module per family: [`cloud`] (clouds,
//! infrastructure, secrets managers, databases as a service), [`devtools`] (source hosts, CI/CD,
//! package registries, observability), [`ai`] (model providers), [`business`] (messaging,
//! payments, CRM, productivity), [`structured`] (private keys, JWTs, URL passwords,
//! `Authorization` headers, credential files), [`generic`] (`name = value` assignments), then
//! [`personal`] data (emails, phone numbers, payment cards, national ids, IBANs). Each family
//! module keeps its table of true positives and near misses (`cases`); [`tests`] checks them
//! all.
//!
//! **Ids** are kebab-case and vendor-first: `github-pat`, `aws-access-key`, `slack-bot-token`;
//! detectors that are not tied to a vendor say what they find (`private-key`, `jwt`,
//! `url-password`, `generic-secret`, `email`). Ids are stable: they appear in masks, counts and
//! policy profiles, so renaming one is a breaking change.
//!
//! **Priorities** settle overlapping findings: vendor formats 30, structural credentials (URL
//! passwords, `Authorization` headers) 25, personal data 20, generic assignments 10. So
//! `GITHUB_TOKEN=ghp_…` is reported as `github-pat`, not as the generic assignment, and the
//! password of `https://user:pass@host.com` is a `url-password`, not the start of an email.
//!
//! **Adding a detector**: pick the cheapest trigger that every match starts with (a literal
//! prefix such as `ghp_`; an infix literal such as `@` with the run of characters before it;
//! or a number-like run), write the pattern so that it begins exactly there (see
//! [`super::detector`]), end it with a guard so that a longer token is not cut short (the
//! `END`-style guards below, with a `secret` group around the value), give it a one-line
//! description, and add at least one true positive and one near miss to its family's `cases`. Test values must be fabricated (the tests generate them from a seed). An `Infix`
//! detector whose match starts before its literal must not use a `secret` group: a stream holds
//! back the run before a pending literal only for detectors that mask it whole.
//!
//! **Limits** (deliberate, to keep false positives down):
//! - Bare high-entropy strings are not secrets by themselves: a 40-character hex or base64
//!   string (an AWS secret key, a Twilio or Heroku key, an Okta or Cohere token, a Mailgun
//!   "new" key) is only found next to a name that says what it is (`aws_secret_access_key = …`),
//!   or through the generic assignments.
//! - Formats without a distinctive shape are not covered on their own (Travis CI and Datadog
//!   values only after their vendor's names, see [`devtools`]): Cloudflare, OpenAI-compatible `sk-…` keys of other providers, Discord bot tokens of bots
//!   created before 2022 (they do not start with `MT`).
//! - Generic assignments need a known name (`password`, `secret`, `token`, `api_key`, …), an
//!   `=`/`:`-style operator and a value of 8+ characters on the same line; an unquoted value
//!   must also contain a symbol, or be letters and digits with at least one digit, so that
//!   identifiers, dotted paths and constants (`userPassword`, `self.password`, `WBEM_128BITS`)
//!   are not values, and code (`os.environ[…]`, `getenv(…)`, `${VAR}`) never is. Letters-only
//!   unquoted values, XML elements and `.netrc` lines are not found.
//! - Email addresses at `example.com`/`.org`/`.net`, reserved TLDs (`.test`, `.example`,
//!   `.invalid`, `.localhost`), hosts without a dot (`user@localhost`), `git@…` ssh users,
//!   `noreply@` senders and retina asset names (`icon@2x.png`) are not personal data.
//! - Phone numbers need a `+` country code or the separated North-American shape
//!   (`(415) 555-0132`, `415-555-0132`); bare digit strings, dates, times, versions and IPs are
//!   not phones. Patterns cannot see the character before a token start, so a number right
//!   after `-` or `.` (`12-415-555-0132`) can still match.
//! - Payment cards: 16-digit numbers with a card-network prefix, 15-digit Amex, 14-digit Diners
//!   only when grouped; 13- and 19-digit cards are not looked for (19-digit integers are common
//!   in code). A 16-digit integer constant with a card prefix still passes Luhn one time in ten.
//! - IBANs are upper-case, optionally in groups of four; an IBAN whose length is a multiple of
//!   four followed by a four-character upper-case word is read as one longer (invalid) IBAN.

mod ai;
mod business;
mod cloud;
mod devtools;
mod generic;
mod personal;
mod structured;
#[cfg(test)]
mod tests;

pub(crate) use personal::{email, phone};

use super::detector::{Category, CharClass, DetectorSpec, Trigger};

/// Guard after a token made of `[A-Za-z0-9_-]`: the next character is not part of it.
pub(super) const END: &str = r"(?:[^A-Za-z0-9_-]|$)";
/// Guard after a base64 value (`+`, `/` and `=` belong to it too).
pub(super) const END_B64: &str = r"(?:[^A-Za-z0-9+/=_-]|$)";

/// Every built-in detector, in a stable order.
pub fn builtin() -> Vec<DetectorSpec> {
    let mut all = Vec::with_capacity(256);
    all.extend(cloud::detectors());
    all.extend(devtools::detectors());
    all.extend(ai::detectors());
    all.extend(business::detectors());
    all.extend(structured::detectors());
    all.extend(generic::detectors());
    all.extend(personal::detectors());
    // Vendor prefixes and assignment names stay visible (`ghp_[REDACTED:…]`): streams then never
    // hold back text that merely starts like one. An `Infix` detector keeps its literal visible
    // when it says so (`.reveal_trigger()`: its value follows the literal).
    for spec in &mut all {
        spec.reveal_trigger = match spec.trigger {
            Trigger::Prefix(_) => spec.category == Category::Credential,
            Trigger::Infix { .. } => spec.reveal_trigger,
            Trigger::Digits { .. } => false,
        };
    }
    all
}

/// A vendor token that starts with one of `prefixes`: `body` between a word boundary and `end`.
pub(super) fn vendor(id: &str, description: &str, prefixes: &[&str], body: &str, end: &str) -> DetectorSpec {
    DetectorSpec::prefixed(id, description, prefixes, &format!(r"(?-u:\b)(?P<secret>{body}){end}"))
}

/// A value assigned to a name: `name` (a case-insensitive regex, matched from the trigger
/// literal), an optional closing quote, `=`, `:`, `:=` or `=>`, an optional opening quote, then
/// `value` (the secret) and `end`.
pub(super) fn assigned(name: &str, value: &str, end: &str) -> String {
    format!(r#"(?i:{name})["'`]?[ \t]*(?::=|=>|=|:)[ \t]*["'`]?(?P<secret>{value}){end}"#)
}

/// A detector with any trigger; like [`DetectorSpec::prefixed`], no validator, `max_len` 512 and
/// priority 30 until the builder methods say otherwise.
pub(super) fn detector(
    id: &str,
    category: Category,
    description: &str,
    trigger: Trigger,
    pattern: &str,
) -> DetectorSpec {
    DetectorSpec::prefixed(id, description, &[], pattern).trigger(trigger).category(category)
}

/// A trigger on one infix `literal` preceded by a run of `run` characters.
pub(super) fn infix(literal: &str, run: CharClass, max_back: usize) -> Trigger {
    Trigger::Infix { literals: vec![literal.to_string()], run, max_back }
}

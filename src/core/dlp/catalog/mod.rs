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
//! passwords, `Authorization` headers, passwords named by a file or command line) 25, personal
//! data 20, generic assignments 10. So
//! `GITHUB_TOKEN=ghp_…` is reported as `github-pat`, not as the generic assignment, and the
//! password of `https://user:pass@host.com` is a `url-password`, not the start of an email.
//!
//! **Adding a detector**: pick the cheapest trigger that every match starts with (a literal
//! prefix such as `ghp_`; an infix literal such as `@` with the run of characters before it;
//! or a number-like run), write the pattern so that it begins exactly there (see
//! [`super::detector`]), end it with a guard so that a longer token is not cut short (the
//! `END`-style guards below, with a `secret` group around the value), give it a one-line
//! description, and add at least one true positive and one near miss to its family's `cases` (the
//! one place a detector's cases live). A format that is only recognisable by the name it is
//! assigned to is built with [`named`] and [`assigned`] (add [`Assigned::or_bare`] when it also
//! has a prefix of its own). Test values must be fabricated (the tests generate them from a seed). An `Infix`
//! detector whose match starts before its literal must not use a `secret` group: a stream holds
//! back the run before a pending literal only for detectors that mask it whole.
//!
//! **Limits** (deliberate, to keep false positives down):
//! - Bare high-entropy strings are not secrets by themselves: a 40-character hex or base64
//!   string (an AWS secret key, a Twilio or Heroku key, an Okta or Cohere token, a Mailgun
//!   "new" key) is only found next to a name that says what it is (`aws_secret_access_key = …`),
//!   or through the generic assignments.
//! - Formats without a distinctive shape are not covered on their own: they are found only
//!   assigned to one of their vendor's names ([`named`] with [`assigned`]: `CLOUDFLARE_API_TOKEN=…`,
//!   `DEEPSEEK_API_KEY=sk-…`, `linode.token: …`), where the name and the value share a line,
//!   or by the generic assignments. Discord bot tokens of bots created before 2022 (they do not
//!   start with `MT`) are not covered.
//! - Generic assignments need a name whose last word names a secret (`password`, `secret`,
//!   `token`, `credentials`, `*_key`, `auth`, …), an operator (or a flag's blank) and a value
//!   on the same line that fits the name's strength; identifiers, words joined, paths, URLs,
//!   versions and code are not values, and names such as `public_key` or `next_page_token` are
//!   not secret names ([`generic`] has the rules). `.netrc` lines and letters-only unquoted
//!   values are not found.
//! - Email addresses at `example.com`/`.org`/`.net`, reserved TLDs (`.test`, `.example`,
//!   `.invalid`, `.localhost`), hosts without a dot (`user@localhost`), `git@…` ssh users,
//!   `noreply@` senders and retina asset names (`icon@2x.png`) are not personal data.
//! - Phone numbers need a `+`/`00` country code, the separated North-American shape
//!   (`(415) 555-0132`, `415-555-0132`), a distinctive national shape or a phone label
//!   ([`personal`]); bare digit strings, dates, times, versions, IPs and hex dumps' bytes
//!   (`00 49 30 12 34 56 78 90`) are not phones. Patterns cannot see the character before a token start, so a number right
//!   after `-` or `.` (`12-415-555-0132`) can still match.
//! - Payment cards: 16-digit numbers with a card-network prefix, 15-digit Amex, 14-digit Diners
//!   only when grouped; 13- and 19-digit cards are not looked for (19-digit integers are common
//!   in code). A 16-digit integer constant with a card prefix still passes Luhn one time in ten.
//! - IBANs are upper-case, optionally in groups of four, of their country's registered length; an IBAN whose length is a multiple of
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

/// What joins a name to its value: an optional closing quote (also JSON-escaped, `\"`) and `]`,
/// then `=`, `:`, `:=` or `=>` between optional blanks, or blanks alone (`--token v`,
/// `wandb login v`), then an optional opening quote. So `NAME=v`, `NAME: v`, `"name": "v"`,
/// `name = 'v'`, `config["name"] = "v"`, `--name v`, `--name=v` and `export NAME="v"` all assign.
pub(super) const ASSIGN: &str = r#"(?:\\?["'`])?\]?(?:[ \t]*(?::=|=>|=|:)[ \t]*|[ \t]+)(?:\\?["'`])?"#;

/// The characters that may stand between a vendor's name and the kind of secret in a name:
/// `DATADOG_API_KEY`, `datadog.api_key`, `Mistral(api_key=`.
pub(super) const NAME_GAP: &str = "[a-z0-9_.(-]{0,24}";

/// A credential found where it is assigned to a name: the one builder for every name-dependent
/// format. `names` (a case-insensitive regex, matched from the trigger literal), then [`ASSIGN`],
/// then `value` (the `secret` group, the only part masked) and `end`. Options:
/// [`Assigned::or_bare`] also finds the value by its own prefix anywhere, without a name.
/// [`named`] turns it into a detector.
#[derive(Debug, Clone, Copy)]
pub(super) struct Assigned<'a> {
    names: &'a str,
    value: &'a str,
    end: &'a str,
    bare: bool,
}

/// `value` assigned to one of `names`, followed by `end`: see [`Assigned`].
pub(super) fn assigned<'a>(names: &'a str, value: &'a str, end: &'a str) -> Assigned<'a> {
    Assigned { names, value, end, bare: false }
}

impl Assigned<'_> {
    /// Also matches the value alone at a word start: for a credential with its own prefix that
    /// older, unprefixed versions only show next to a name (the detector's literals are then the
    /// prefixes and the names' first words). Every unprefixed alternative of `value` must be
    /// unable to match at a name literal (hex, a UUID): a trigger on a name whose assignment
    /// does not follow tries `value` right there.
    pub(super) fn or_bare(self) -> Self {
        Self { bare: true, ..self }
    }

    /// The detector's regex.
    pub(super) fn pattern(&self) -> String {
        let Self { names, value, end, bare } = *self;
        if bare {
            format!(r#"(?:(?i:{names}){ASSIGN}|(?-u:\b))(?P<secret>{value}){end}"#)
        } else {
            format!(r#"(?i:{names}){ASSIGN}(?P<secret>{value}){end}"#)
        }
    }
}

/// A credential without a distinctive shape (or found also by its name), triggered by
/// `literals` (the names' first words, and the prefixes of an [`Assigned::or_bare`] value).
pub(super) fn named(id: &str, description: &str, literals: &[&str], format: Assigned<'_>) -> DetectorSpec {
    DetectorSpec::prefixed(id, description, literals, &format.pattern())
}

/// A UUID (hex digits of either case).
pub(super) const UUID: &str = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

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

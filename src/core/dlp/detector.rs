//! What a detector is: the declarative shape of one kind of secret or personal data.
//!
//! A detector is found in three steps, cheapest first:
//! 1. **Trigger** — where a match may start. [`Trigger::Prefix`] and [`Trigger::Infix`] name
//!    literals (ASCII case-insensitive) that one multi-literal pass over the text finds for every
//!    detector at once; [`Trigger::Digits`] starts at runs of digits. Text without a trigger costs
//!    nothing more.
//! 2. **Pattern** — a regex searched *anchored* at each candidate start, with the whole text as
//!    context (so `\b` and look-arounds see the characters around the candidate). A named group
//!    `secret` selects the span to mask (`password = "(?P<secret>…)"` keeps the key name);
//!    without it the whole match is masked.
//! 3. **Validator** — a check on the masked span that rejects false positives: checksums,
//!    issued ranges, entropy. Every credential detector also rejects placeholders and documented
//!    example values ([`super::validators::is_placeholder`]).
//!
//! Candidate starts are what make streaming precise: a stream redactor only holds back text from
//! a candidate start whose match is still undecided, so text without triggers flows at once.
//! Patterns must therefore begin where their trigger says: a `Prefix` pattern with its literal,
//! an `Infix` pattern with the run of `run` characters before its literal, a `Digits` pattern at
//! the first character of the number-like run.

/// What a detector finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Keys, tokens, passwords, private keys.
    Credential,
    /// Personal data: emails, phone numbers, payment cards, national ids, bank accounts.
    Pii,
}

impl Category {
    /// The selector name of the category in profiles (`credentials`, `pii`).
    pub fn selector(self) -> &'static str {
        match self {
            Self::Credential => "credentials",
            Self::Pii => "pii",
        }
    }
}

/// A class of ASCII characters that may precede an [`Trigger::Infix`] literal or make up a
/// [`Trigger::Digits`] run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharClass {
    /// Characters of an email local part: `A-Z a-z 0-9 . _ % + -`.
    EmailLocal,
    /// Characters of a URL scheme: `A-Z a-z 0-9 + . -`.
    UrlScheme,
    /// Digits and the separators of written numbers: `0-9`, space, `-`, `.`, `(`, `)`, `+`, `/`.
    Number,
    /// Digits, upper-case letters and spaces (account numbers such as IBANs).
    UpperAlnum,
}

impl CharClass {
    /// Whether `byte` belongs to the class.
    pub fn contains(self, byte: u8) -> bool {
        match self {
            Self::EmailLocal => byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'%' | b'+' | b'-'),
            Self::UrlScheme => byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'.' | b'-'),
            Self::Number => byte.is_ascii_digit() || matches!(byte, b' ' | b'-' | b'.' | b'(' | b')' | b'+' | b'/'),
            Self::UpperAlnum => byte.is_ascii_digit() || byte.is_ascii_uppercase() || byte == b' ',
        }
    }
}

/// Where a detector's matches may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The match starts with one of these literals (compared ASCII case-insensitively).
    Prefix(Vec<String>),
    /// The match contains one of these literals and starts at the beginning of the run of `run`
    /// characters right before it (at most `max_back` bytes back), e.g. an email's local part
    /// before `@`.
    Infix {
        /// The literals.
        literals: Vec<String>,
        /// Characters that may precede a literal within the match.
        run: CharClass,
        /// Longest run looked back over, in bytes.
        max_back: usize,
    },
    /// The match starts a maximal run of `run` characters holding at least `min_digits` digits
    /// (phone numbers, card numbers, national ids).
    Digits {
        /// Characters the run is made of.
        run: CharClass,
        /// Fewest digits in a run worth searching.
        min_digits: usize,
    },
}

/// A check of the masked span that rejects false positives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validator {
    /// No check beyond the pattern (and the placeholder check for credentials).
    None,
    /// Payment card number: Luhn checksum.
    Luhn,
    /// IBAN: ISO 7064 mod-97 and the country's registered length.
    Iban,
    /// US social security number: issued ranges.
    UsSsn,
    /// At least this many bits of Shannon entropy per character.
    MinEntropy(f64),
    /// Email address: not an example or reserved domain, not an ssh user such as `git@`, not a
    /// `noreply@` sender ([`super::pii::email`]).
    Email,
    /// Phone number: an assigned country code and a national number of a length used there,
    /// a North-American number, or a national `0…` number that is not a date
    /// ([`super::pii::phone`]).
    Phone,
    /// A value a structure calls a password: not the name of one (`PASSWORD`, `db_pass`,
    /// `yourPassword`), the placeholder of a documentation example
    /// ([`super::validators::not_a_name`]).
    NotAName,
    /// Base64 of `user:password`, as in Docker's `config.json` `"auth"` and `.npmrc` `_auth`
    /// ([`super::validators::basic_credentials`]).
    BasicCredentials,
    /// A value assigned to a name (generic assignments): the whole name, the operator and the
    /// value's shape together must say it is a secret ([`super::validators::assignment`]). Needs
    /// the text before the value: see [`Validator::accepts_after`].
    Assignment,
    /// UK National Insurance number: allocated prefix letters ([`super::pii::uk_nino`]).
    UkNino,
    /// German tax id: digit-repetition rule and MOD 11,10 ([`super::pii::de_tax_id`]).
    DeTaxId,
    /// French NIR: mod-97 key ([`super::pii::fr_nir`]).
    FrNir,
    /// Indian Aadhaar: Verhoeff ([`super::pii::in_aadhaar`]).
    InAadhaar,
    /// Brazilian CPF: two mod-11 digits ([`super::pii::br_cpf`]).
    BrCpf,
    /// Spanish DNI/NIE: mod-23 letter ([`super::pii::es_dni`]).
    EsDni,
    /// Italian codice fiscale: check letter ([`super::pii::it_codice_fiscale`]).
    ItCodiceFiscale,
    /// Chinese resident id: birth date and MOD 11-2 ([`super::pii::cn_resident_id`]).
    CnResidentId,
    /// A labelled national id: the check of an id of its length
    /// ([`super::pii::labelled_national_id`]).
    LabelledNationalId,
    /// GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`) and npm (`npm_`) token checksum: the
    /// last 6 base62 characters of the 36 after the prefix are the CRC-32 of the first 30. A
    /// valid checksum makes the match certain ([`Validator::certifies`]); a token without one
    /// (fabricated, or of another length) is still a finding unless it looks typed
    /// ([`super::validators::looks_typed`]) or is a placeholder.
    Crc32Base62,
}

impl Validator {
    /// Whether `value` (the span to be masked) passes.
    pub fn accepts(self, value: &str) -> bool {
        use super::validators::{basic_credentials, entropy_bits_per_char, iban, luhn_card, not_a_name, us_ssn};
        match self {
            Self::None => true,
            Self::Luhn => luhn_card(value),
            Self::Iban => iban(value) && super::pii::iban_length(value),
            Self::UsSsn => us_ssn(value),
            Self::MinEntropy(bits) => entropy_bits_per_char(value) >= bits,
            Self::Email => super::pii::email(value),
            Self::Phone => super::pii::phone(value),
            Self::UkNino => super::pii::uk_nino(value),
            Self::DeTaxId => super::pii::de_tax_id(value),
            Self::FrNir => super::pii::fr_nir(value),
            Self::InAadhaar => super::pii::in_aadhaar(value),
            Self::BrCpf => super::pii::br_cpf(value),
            Self::EsDni => super::pii::es_dni(value),
            Self::ItCodiceFiscale => super::pii::it_codice_fiscale(value),
            Self::CnResidentId => super::pii::cn_resident_id(value),
            Self::LabelledNationalId => super::pii::labelled_national_id(value),
            Self::NotAName => not_a_name(value),
            Self::BasicCredentials => basic_credentials(value),
            Self::Assignment => false,
            Self::Crc32Base62 => {
                let body = value.rsplit_once('_').map_or(value, |(_, body)| body);
                !super::validators::looks_typed(body)
            }
        }
    }

    /// Whether `value` passes, given `context`: the text from the start of the identifier run
    /// that holds the trigger (`STRIPE_` of `STRIPE_KEY`) up to the value. Only
    /// [`Self::Assignment`] reads the context.
    pub fn accepts_after(self, context: &str, value: &str) -> bool {
        match self {
            Self::Assignment => super::validators::assignment(context, value),
            other => other.accepts(value),
        }
    }

    /// Whether `value` proves itself real, so that the placeholder check and [`Self::accepts`]
    /// are skipped: a valid checksum. Validators without a checksum never certify.
    pub fn certifies(self, value: &str) -> bool {
        match self {
            Self::Crc32Base62 => super::validators::crc32_base62_tail(value) == Some(true),
            _ => false,
        }
    }
}

/// The declarative description of one detector, built in ([`super::catalog`]) or from the
/// policy's `dlp.detectors`.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorSpec {
    /// Stable kebab-case id shown in masks (`[REDACTED:aws-access-key:3f2a9c]`), counts and
    /// profiles.
    pub id: String,
    /// Credential or personal data.
    pub category: Category,
    /// One line for humans (`warden redact --list`, docs).
    pub description: String,
    /// Where matches may start.
    pub trigger: Trigger,
    /// The regex (regex-automata syntax), searched anchored at each candidate start. It must begin
    /// where the trigger says; a named group `secret` selects the span to mask.
    pub pattern: String,
    /// Check of the masked span.
    pub validator: Validator,
    /// Longest span a match may cover, in bytes: bounds how much a stream holds back.
    pub max_len: usize,
    /// Among overlapping findings the highest priority wins (specific vendor formats 30, generic
    /// assignments 10, personal data 20), then the longer one.
    pub priority: u8,
    /// Whether the trigger literal stays visible: the mask covers only what follows it
    /// (`ghp_[REDACTED:github-pat:…]`, `password = "[REDACTED:…]"`). A stream then delivers a
    /// literal, or the beginning of one, at once instead of holding it back until the match is
    /// decided — so plain text that merely starts like a vendor prefix is never delayed.
    pub reveal_trigger: bool,
}

impl DetectorSpec {
    /// A credential detector that starts with one of `prefixes`, masked whole; defaults
    /// `max_len` 512 and priority 30.
    pub fn prefixed(id: &str, description: &str, prefixes: &[&str], pattern: &str) -> Self {
        Self {
            id: id.to_string(),
            category: Category::Credential,
            description: description.to_string(),
            trigger: Trigger::Prefix(prefixes.iter().map(|p| p.to_string()).collect()),
            pattern: pattern.to_string(),
            validator: Validator::None,
            max_len: 512,
            priority: 30,
            reveal_trigger: false,
        }
    }

    /// The same detector with a validator.
    pub fn validated(mut self, validator: Validator) -> Self {
        self.validator = validator;
        self
    }

    /// The same detector with another `max_len`.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The same detector with another priority.
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// The same detector, keeping its trigger literal visible.
    pub fn reveal_trigger(mut self) -> Self {
        self.reveal_trigger = true;
        self
    }

    /// The same detector in another category.
    pub fn category(mut self, category: Category) -> Self {
        self.category = category;
        self
    }

    /// The same detector with another trigger.
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }
}

//! Personal data: email addresses, phone numbers, payment cards, national ids and bank accounts,
//! with the validators that tell them from other numbers ([`crate::core::dlp::pii`]).
//!
//! How each is found: numbers start at number-like runs (`Trigger::Digits`), a pattern gives the
//! written shape and a validator the checksum or numbering plan. Shapes that read as nothing
//! else (a `+` country code, `123.456.789-09`, `AB 12 34 56 C`) or strong checks (the German tax
//! id's repetition rule and MOD 11,10, the NIR's mod-97 key) need no context; weak checks on
//! plain digit strings (Verhoeff, Luhn, the 11-test) are only trusted after a label
//! (`national-id`, `phone-national`), whose word stays visible.
//!
//! Limits: lower-case IBANs, PANs and NINOs are not looked for; a number that runs on into
//! another (`+44 20 7946 0958 2024`) is read as one number and usually fails its length check;
//! compact US SSNs (`123456789`) are not found; a codice fiscale whose digits were all replaced
//! by letters (omocodia) is missed.

use super::{detector, infix};
use crate::core::dlp::detector::{Category, CharClass, DetectorSpec, Trigger, Validator};

/// Guard after a number written with spaces, dots, dashes or slashes: the number does not go on
/// (`123-45-6789` is not the start of `123-45-67890`).
const NUMBER_END: &str = r"(?:$|[^0-9 ./-]|[ ./-]$|[ ./-][^0-9])";

/// Words that name a phone number (ASCII case-insensitive; `phone` also finds `telephone`,
/// `téléphone`, `phone_number`, `mobil` finds `mobile` and `Mobilnummer`, `portable` is French).
const PHONE_LABELS: [&str; 10] =
    ["phone", "tel:", "tel.", "tel ", "tel=", "telefon", "mobil", "handy", "portable", "fax"];

/// Labels of national ids that are only found next to one (a 9- to 12-digit number on its own
/// is too common): Aadhaar, CPF, BSN, SIN.
const NATIONAL_ID_LABELS: [&str; 10] =
    ["aadhaar", "aadhar", "uidai", "cpf", "bsn", "burgerservicenummer", "social insurance", "sin:", "sin=", "sin "];

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
    vec![
        detector(
            "email",
            Category::Pii,
            "Email address (not example or reserved domains, git@ ssh users or noreply@ senders)",
            infix("@", CharClass::EmailLocal, 64),
            r"[A-Za-z0-9._%+-]*[A-Za-z0-9_-]@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?-u:\b)",
)
        .validated(Validator::Email)
        .max_len(320)
        .priority(20),
        // International (`+` or `00` and a country code, any grouping, a trunk `(0)`), North
        // American, and national shapes that read as nothing else: French pairs
        // (`06 12 34 56 78`), UK mobile and London (`07700 900123`, `020 7946 0958`), German
        // mobile (`0151 23456789`). The validator checks the country code and the length of the
        // national number.
        detector(
            "phone",
            Category::Pii,
            "Phone number: international (+44 20 7946 0958, 0049 30 1234567) with an assigned country code and a national number of a valid length, North American ((415) 555-0132), or a distinctive national shape (06 12 34 56 78, 07700 900123)",
            Trigger::Digits { run: CharClass::Number, min_digits: 8 },
            r"(?P<secret>\+[1-9][0-9]{0,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}|(?-u:\b)00 ?[1-9][0-9]{0,3}[ -](?:\([0-9]{1,4}\) ?)?[0-9]{1,5}(?:[ .-]?[0-9]{1,5}){0,5}|(?:(?-u:\b)1[ .-]?)?(?:\([2-9][0-9]{2}\)[ .-]?|(?-u:\b)[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}|(?-u:\b)0[1-9](?: [0-9]{2}){4}|(?-u:\b)0[1-9](?:\.[0-9]{2}){4}|(?-u:\b)07[0-9]{3} [0-9]{6}|(?-u:\b)0[1-9][0-9] [0-9]{4} [0-9]{4}|(?-u:\b)01[5-7][0-9]{1,2} [0-9]{7,8})(?:$|[^0-9.-]|[.-]$|[.-][^0-9])",
        )
        .validated(Validator::Phone)
        .max_len(44)
        .priority(20),
        // A national number (`0…`) in any grouping, right after a word that names a phone
        // number: the word stays visible, the number is masked.
        detector(
            "phone-national",
            Category::Pii,
            "National phone number (030 12345678, 07700900123) written after a phone label (phone, tel:, Telefon, mobile, Handy, portable, fax)",
            Trigger::Prefix(PHONE_LABELS.iter().map(|l| l.to_string()).collect()),
            r"(?i:phone|tel[:. =]|telefon|mobil|handy|portable|fax)[^0-9+\n]{0,24}?(?P<secret>0[1-9][0-9]{1,4}(?:[ /.-]?[0-9]{2,8}){1,4})(?:$|[^0-9])",
        )
        .validated(Validator::Phone)
        .max_len(72)
        .priority(20),
        detector(
            "payment-card",
            Category::Pii,
            "Payment card number passing Luhn: 16-digit Visa, Mastercard, Discover, JCB, UnionPay; 15-digit Amex; grouped Diners",
            Trigger::Digits { run: CharClass::Number, min_digits: 13 },
            r"(?-u:\b)(?:(?:4[0-9]{3}|5[1-5][0-9]{2}|2(?:22[1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720)|6(?:011|5[0-9]{2}|4[4-9][0-9]|2[0-9]{2})|35(?:2[89]|[3-8][0-9]))(?:[ -]?[0-9]{4}){3}|3[47][0-9]{2}[ -]?[0-9]{6}[ -]?[0-9]{5}|3(?:0[0-5]|[689][0-9])[0-9][ -][0-9]{6}[ -][0-9]{4})(?-u:\b)",
)
        .validated(Validator::Luhn)
        .max_len(32)
        .priority(20),
        detector(
            "us-ssn",
            Category::Pii,
            "US social security number written AAA-GG-SSSS or AAA GG SSSS, in an issued range",
            Trigger::Digits { run: CharClass::Number, min_digits: 9 },
            r"(?-u:\b)(?P<secret>[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4})(?:$|[^0-9 -]|[ -]$|[ -][^0-9])",
)
        .validated(Validator::UsSsn)
        .max_len(16)
        .priority(20),
        // A number-like run of upper-case letters, digits and spaces starts at the country code
        // (or at a later word of the run: every token start is a candidate). Four digits are
        // enough: the check digits and a few more (Latvian, Gibraltar and Maltese accounts are
        // mostly letters).
        detector(
            "iban",
            Category::Pii,
            "International bank account number (IBAN), compact or in groups of four, of its country's registered length, passing mod-97",
            Trigger::Digits { run: CharClass::UpperAlnum, min_digits: 4 },
            r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?-u:\b)",
)
        .validated(Validator::Iban)
        .max_len(48)
        .priority(20),
        // National ids. Strong checks or distinctive shapes are found on their own; the rest
        // (compact Aadhaar and CPF, BSN, SIN) only after a label (`national-id`).
        detector(
            "uk-nino",
            Category::Pii,
            "UK National Insurance number (AB 12 34 56 C): allocated prefix letters, six digits, suffix A-D",
            Trigger::Digits { run: CharClass::UpperAlnum, min_digits: 6 },
            r"(?-u:\b)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?-u:\b)",
        )
        .validated(Validator::UkNino)
        .max_len(16)
        .priority(20),
        detector(
            "de-tax-id",
            Category::Pii,
            "German tax id (Steuer-ID, 11 digits, 12 345 678 901): digit-repetition rule and ISO 7064 MOD 11,10 check digit",
            Trigger::Digits { run: CharClass::Number, min_digits: 11 },
            &format!(r"(?-u:\b)(?P<secret>[1-9][0-9] ?[0-9]{{3}} ?[0-9]{{3}} ?[0-9]{{3}}){NUMBER_END}"),
        )
        .validated(Validator::DeTaxId)
        .max_len(18)
        .priority(20),
        detector(
            "fr-nir",
            Category::Pii,
            "French social security number (NIR, numéro INSEE, 1 85 05 78 006 084 91, Corsica 2A/2B): key 97 - n mod 97",
            Trigger::Digits { run: CharClass::UpperAlnum, min_digits: 13 },
            r"(?-u:\b)[1-478] ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}(?-u:\b)",
        )
        .validated(Validator::FrNir)
        .max_len(24)
        .priority(20),
        detector(
            "in-aadhaar",
            Category::Pii,
            "Indian Aadhaar number in groups (2345 6789 0123 or with dashes): first digit 2-9, Verhoeff check digit",
            Trigger::Digits { run: CharClass::Number, min_digits: 12 },
            &format!(r"(?-u:\b)(?P<secret>[2-9][0-9]{{3}}(?: [0-9]{{4}} [0-9]{{4}}|-[0-9]{{4}}-[0-9]{{4}})){NUMBER_END}"),
        )
        .validated(Validator::InAadhaar)
        .max_len(17)
        .priority(20),
        detector(
            "in-pan",
            Category::Pii,
            "Indian Permanent Account Number (ABCPE1234F): five letters with a holder-type fourth letter, four digits, a letter",
            Trigger::Digits { run: CharClass::UpperAlnum, min_digits: 4 },
            r"(?-u:\b)[A-Z]{3}[PCHFATBLJG][A-Z][0-9]{4}[A-Z](?-u:\b)",
        )
        .max_len(12)
        .priority(20),
        detector(
            "br-cpf",
            Category::Pii,
            "Brazilian CPF written 123.456.789-09: two mod-11 check digits",
            Trigger::Digits { run: CharClass::Number, min_digits: 11 },
            &format!(r"(?-u:\b)(?P<secret>[0-9]{{3}}\.[0-9]{{3}}\.[0-9]{{3}}-[0-9]{{2}}){NUMBER_END}"),
        )
        .validated(Validator::BrCpf)
        .max_len(16)
        .priority(20),
        detector(
            "es-dni",
            Category::Pii,
            "Spanish DNI (12345678Z) or NIE (X1234567L): mod-23 check letter",
            Trigger::Digits { run: CharClass::UpperAlnum, min_digits: 7 },
            r"(?-u:\b)(?:[0-9]{8}|[XYZ][0-9]{7})-?[A-Z](?-u:\b)",
        )
        .validated(Validator::EsDni)
        .max_len(12)
        .priority(20),
        detector(
            "it-codice-fiscale",
            Category::Pii,
            "Italian codice fiscale (RSSMRA85T10A562S): name letters, birth date and place, check letter",
            Trigger::Digits { run: CharClass::UpperAlnum, min_digits: 4 },
            r"(?-u:\b)[A-Z]{6}[0-9LMNP-V]{2}[ABCDEHLMPRST][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z](?-u:\b)",
        )
        .validated(Validator::ItCodiceFiscale)
        .max_len(18)
        .priority(20),
        detector(
            "cn-resident-id",
            Category::Pii,
            "Chinese resident identity number (18 characters): a real birth date and the ISO 7064 MOD 11-2 check character",
            Trigger::Digits { run: CharClass::Number, min_digits: 17 },
            r"(?-u:\b)[1-9][0-9]{5}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?-u:\b)",
        )
        .validated(Validator::CnResidentId)
        .max_len(20)
        .priority(20),
        detector(
            "national-id",
            Category::Pii,
            "National id number written compact (or 123 456 789) after its label (Aadhaar, CPF, BSN, social insurance number), passing the check of an id of its length",
            Trigger::Prefix(NATIONAL_ID_LABELS.iter().map(|l| l.to_string()).collect()),
            r"(?i:aadhaar|aadhar|uidai|cpf|bsn|burgerservicenummer|social insurance|sin[:= ])[^0-9\n]{0,24}?(?P<secret>[0-9]{9,15}|[0-9]{3}[ -][0-9]{3}[ -][0-9]{3})(?:$|[^0-9])",
        )
        .validated(Validator::LabelledNationalId)
        .max_len(80)
        .priority(20),
    ]
}

#[cfg(test)]
pub(super) mod cases {
    //! True positives and near misses of this family, checked by [`super::super::tests`].
    //! Every number is fabricated: random digits with their check digits computed
    //! (`tests/dlp-corpus/kinds/personal.py` generates more of them).
    use super::super::tests::{f, grouped, iban_for, n, p, with_luhn, Case, DIGITS, UPPER};

    /// True positives with their exact span.
    pub fn positives() -> Vec<Case> {
        let visa = with_luhn(&format!("4{}", f("visa", DIGITS, 14)));
        let amex = with_luhn(&format!("37{}", f("amex", DIGITS, 12)));
        let mastercard = with_luhn(&format!("53{}", f("mc", DIGITS, 13)));
        let de_iban = iban_for("DE", &f("de-iban", DIGITS, 18));
        let gb_iban =
            iban_for("GB", &format!("{}{}", f("gb-bank", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4), f("gb-acct", DIGITS, 14)));
        let nl_iban = iban_for("NL", &format!("ABNA{}", f("nl-iban", DIGITS, 10)));
        let no_iban = iban_for("NO", &f("no-iban", DIGITS, 11));
        let mt_iban = iban_for("MT", &format!("MALT{}{}", f("mt-bank", DIGITS, 5), f("mt-acct", UPPER, 18)));
        vec![
            p("email", "Contact: {} for access", "jane.doe@acmecorp.io".to_string()),
            p("email", r#"{"email": "{}"}"#, "r.okafor+billing@mail.northwind-logistics.co.uk".to_string()),
            p("phone", "Call {} today", "(415) 555-0132".to_string()),
            p("phone", "tel: {}.", "+44 20 7946 0958".to_string()),
            p("phone", "phone={}", "415-555-0132".to_string()),
            p("phone", r#"{"phone": "{}"}"#, "+14155550132".to_string()),
            p("phone", "support: {}", "1-800-555-0199".to_string()),
            p("payment-card", "card: {} exp 12/29", grouped(&visa, 4)),
            p("payment-card", "amex {}", format!("{} {} {}", &amex[..4], &amex[4..10], &amex[10..])),
            p("payment-card", r#"{"pan": "{}"}"#, mastercard),
            p("us-ssn", "SSN: {}", "536-22-8190".to_string()),
            p("us-ssn", "ssn {} on file", "287 65 4310".to_string()),
            p("iban", "IBAN: {}", grouped(&de_iban, 4)),
            p("iban", "pay to {}.", gb_iban),
            p("email", "mailto:{}?subject=hi", "li.wei+alerts@mail.globex.co.uk".to_string()),
            p("email", "From: Ana Silva <{}>", "ana_silva@umbrella-labs.fr".to_string()),
            p("phone", "Ring me on {} tomorrow", "+49 (0)30 1234567".to_string()),
            p("phone", "mobile {}", "+33 6 12 34 56 78".to_string()),
            p("phone", "{}", "+91 98765 43210".to_string()),
            p("phone", "whatsapp: {}.", "+55 11 91234-5678".to_string()),
            p("phone", "Tokyo office {}", "+81 3-1234-5678".to_string()),
            p("phone", "dial {} from abroad", "0044 20 7946 0958".to_string()),
            p("phone", "<a href=\"tel:{}\">call</a>", "+14155550132".to_string()),
            p("phone", "Appelez le {} !", "06 12 34 56 78".to_string()),
            p("phone", "cell {}", "07700 900123".to_string()),
            p("phone", "office {}, ask for Sam", "020 7946 0958".to_string()),
            p("phone", "Ruf an: {}", "0151 23456789".to_string()),
            p("phone-national", "Tel: {}", "030 12345678".to_string()),
            p("phone-national", "Tel. {}", "089 123 4567".to_string()),
            p("phone-national", "Tel {} (Zentrale)", "0201 7654321".to_string()),
            p("phone-national", r#"{"phone_number": "{}"}"#, "07700900123".to_string()),
            p("phone-national", "Telefon: {}", "040/1234567".to_string()),
            p("phone-national", "mobile: {}", "0612345678".to_string()),
            p("phone-national", "Handy {}", "0171-2345678".to_string()),
            p("phone-national", "Fax: {}", "0221 987654".to_string()),
            p("phone-national", "Tel={}", "0476784533".to_string()),
            p("phone-national", "Portable : {}", "0612345678".to_string()),
            p("iban", "Kontonummer (IBAN) {}", nl_iban),
            p("iban", r#"{"iban":"{}"}"#, no_iban),
            p("iban", "MT: {}", grouped(&mt_iban, 4)),
            p("iban", "LV: {}", iban_for("LV", "VQFMRZM08WRDXUMGM")),
            p("uk-nino", "National Insurance number: {}", "JG 10 37 93 D".to_string()),
            p("uk-nino", "NINO={}", "RP632122B".to_string()),
            p("de-tax-id", "Steuer-ID: {}", "67 013 432 591".to_string()),
            p("de-tax-id", "IdNr {}", "67013432591".to_string()),
            p("fr-nir", "n° de sécurité sociale : {}", "1 13 10 92 655 193 38".to_string()),
            p("fr-nir", "NIR={}", "212092A57806268".to_string()),
            p("in-aadhaar", "Aadhaar {}", "5786 5797 5438".to_string()),
            p("in-aadhaar", "uid: {}", "5786-5797-5438".to_string()),
            p("in-pan", "PAN: {}", "VHALS2440E".to_string()),
            p("br-cpf", "CPF {}", "529.982.247-25".to_string()),
            p("es-dni", "DNI {}", "11862527R".to_string()),
            p("es-dni", "NIE: {}", "Y0189555A".to_string()),
            p("it-codice-fiscale", "Codice fiscale: {}", "OLFTDP07D37E366N".to_string()),
            p("cn-resident-id", "身份证号: {}", "412768197503276849".to_string()),
            p("national-id", "Aadhaar: {}", "578657975438".to_string()),
            p("national-id", "aadhar no {}", "578657975438".to_string()),
            p("national-id", "UIDAI {}", "578657975438".to_string()),
            p("national-id", "cpf={}", "52998224725".to_string()),
            p("national-id", "BSN: {}", "897114711".to_string()),
            p("national-id", "burgerservicenummer {}", "897114711".to_string()),
            p("national-id", "Social Insurance Number: {}", "149 746 505".to_string()),
            p("national-id", "SIN: {}", "149-746-505".to_string()),
            p("national-id", "SIN={}", "149746505".to_string()),
            p("national-id", "SIN {}", "149 746 505".to_string()),
            p(
                "payment-card",
                "card {} exp 04/30",
                grouped(&with_luhn(&format!("6011{}", f("discover", DIGITS, 11))), 4),
            ),
        ]
    }

    /// Texts in which the named detector must find nothing.
    pub fn negatives() -> Vec<(&'static str, String)> {
        let de = iban_for("DE", &f("de-len", DIGITS, 18));
        vec![
            n("email", "    @property\n    def name(self):"),
            n("email", "import type { Node } from \"@types/node\"; npm i lodash@4.17.21"),
            n("email", "git clone git@github.com:acme/infra.git; ssh://git@gitlab.acme.io/x.git"),
            n("email", "user@example.com, ops@mail.example.org, admin@localhost, qa@staging.test"),
            n("email", "icon@2x.png Co-Authored-By: Claude <noreply@anthropic.com>"),
            n("phone", "released 2024-11-29 at 10:30:00, version 1.2.3"),
            n("phone", "host 10.0.0.1 and 192.168.100.200, ts 1700000000"),
            n("phone", "pages 1200-1350, id 123-456-7890, +1 2"),
            n("payment-card", {
                let bad = with_luhn(&format!("4{}", f("visa-bad", DIGITS, 14)));
                let last = (bad.as_bytes()[15] - b'0' + 1) % 10;
                format!("card {}{last}", &bad[..15])
            }),
            n(
                "payment-card",
                format!("id 99{} and ts 1700000000000", with_luhn(&format!("4{}", f("visa-emb", DIGITS, 14)))),
            ),
            n("payment-card", format!("const MAGIC: u64 = {};", with_luhn(&format!("52{}", f("u64", DIGITS, 16))))),
            n("us-ssn", "SSN 666-12-3456, 900-12-3456, 536-00-8190, 536-22-0000"),
            n("us-ssn", "id 536228190, part 536-22-81901"),
            n("iban", {
                let good = iban_for("DE", &f("de-bad", DIGITS, 18));
                let bad_check = (good[2..4].parse::<u32>().unwrap() + 1) % 100;
                format!("IBAN: DE{bad_check:02}{} iban: {}", &good[4..], good.to_ascii_lowercase())
            }),
            n("email", "https://docs.rs/regex@1.10.0 and pkg:npm/left-pad@1.3.0"),
            n("phone", "+999 1234 5678, +1 123 555 0132, +44 20 7946 09581234"),
            n("phone", "2024-11-29T10:30:00+01:00 at 1700000000123 ms, v2.3.14, 10.20.30.40"),
            n("phone", "ISBN 978-3-16-148410-0, order 0012345678, invoice 2024-000123"),
            n("phone", "x = 1+12345678; y = 0.0012345678901; 00 00 00 00 00"),
            n("phone-national", "phone: 01.02.2024 10:30, Tel: 0800, mobile 0 0 0"),
            n("phone-national", "telephone support from 08:00 to 18:00, iPhone 15"),
            n("iban", format!("IBAN {de}0 and {}", &de[..21])),
            n("uk-nino", "QQ123456C GB123456A AB123456E DA123456A ab123456c"),
            n("de-tax-id", "67013432592 07013432591 12345678903 ts 17000000001"),
            n("fr-nir", "113109265519339 513109265519338 1 13 13 92 655 193 38"),
            n("in-aadhaar", "5786 5797 5439 1786 5797 5438 4111 1111 1111 1111"),
            n("in-aadhaar", "build 2345-6789-0124-7777, 578657975438"),
            n("in-pan", "ABCDE1234F ABCPE12345F abcpe1234f"),
            n("br-cpf", "529.982.247-26 111.111.111-11 version 1.2.3-4"),
            n("es-dni", "12345678A X1234567A 1234567Z"),
            n("it-codice-fiscale", "RSSMRA85T10A562T"),
            n("cn-resident-id", "11010519491331002X 110105194912310021 snowflake 1234567890123456789"),
            n("national-id", "Aadhaar: 578657975439, CPF 52998224726, BSN 897114712, SIN 149 746 506"),
            n("national-id", "cpf cache hit ratio 0.999999999, bsn build 2024-11-29"),
            n("national-id", "y = sin x + 123456789; sin (0.5) = 0.479425538"),
        ]
    }
}

//! Structured credentials: private key blocks, JWTs, passwords in URLs and connection strings,
//! `Authorization` headers and credential files (kubeconfig, `.npmrc`, Docker `config.json`, …).

use super::{detector, infix, vendor, END};
use crate::core::dlp::detector::{Category, CharClass, DetectorSpec};

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
    // Key blocks: from the BEGIN line through the first END line, with real line breaks or the
    // two characters `\n` of a JSON string (a GCP service-account file's "private_key").
    const PEM_TYPES: &str = "(?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?";
    vec![
        DetectorSpec::prefixed(
            "private-key",
            "PEM or OpenSSH private key block (RSA, EC, DSA, PKCS#8, encrypted), also JSON-escaped",
            &["-----BEGIN "],
            &format!(
                r"-----BEGIN {PEM_TYPES}PRIVATE KEY-----(?:[A-Za-z0-9+/=:,.\s-]|\\[nrt/])+?-----END {PEM_TYPES}PRIVATE KEY-----"
            ),
        )
        .max_len(16384),
        DetectorSpec::prefixed(
            "pgp-private-key",
            "PGP private key block (-----BEGIN PGP PRIVATE KEY BLOCK-----), also JSON-escaped",
            &["-----BEGIN "],
            r"-----BEGIN PGP PRIVATE KEY BLOCK-----(?:[A-Za-z0-9+/=:,.()<>@'_!?;\s-]|\\[nrt/])+?-----END PGP PRIVATE KEY BLOCK-----",
        )
        .max_len(16384),
        DetectorSpec::prefixed(
            "jwt",
            "JSON Web Token (eyJ….eyJ….signature)",
            &["eyJ"],
            r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*",
        )
        .max_len(8192),
        detector(
            "url-password",
            Category::Credential,
            "Password in a URL or connection string (postgres://, mysql://, mongodb+srv://, redis://, amqp://, https://user:password@host…)",
            infix("://", CharClass::UrlScheme, 32),
            r#"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@"'<>\\{}()\[\]]{0,128}:(?P<secret>[^\s/?#"'<>\\{}()\[\]$][^\s/?#"'<>\\{}()\[\]]{2,255})@[A-Za-z0-9\[]"#,
)
        .max_len(512)
        .reveal_trigger()
        .priority(25),
        DetectorSpec::prefixed(
            "http-authorization",
            "Credential in an HTTP Authorization header (Bearer, Basic or Token scheme)",
            &["authorization"],
            r#"(?i:authorization)["'`]?[ \t]*[:=][ \t]*["'`]?(?i:bearer|basic|token)[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{12,}=*)(?:[^A-Za-z0-9._~+/=-]|$)"#,
        )
        .max_len(4096)
        .priority(25),
        vendor(
            "age-secret-key",
            "age encryption secret key (AGE-SECRET-KEY-1…)",
            &["AGE-SECRET-KEY-1"],
            "AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
            END,
        ),
    ]
}

#[cfg(test)]
pub(super) mod cases {
    //! True positives and near misses of this family, checked by [`super::super::tests`].
    use super::super::tests::Case;

    /// True positives with their exact span.
    pub fn positives() -> Vec<Case> {
        Vec::new()
    }

    /// Texts in which the named detector must find nothing.
    pub fn negatives() -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

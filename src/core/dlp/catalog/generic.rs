//! Generic assignments: a value of a variable, key or field whose name says it is a secret
//! (`password`, `secret`, `token`, `api_key`, …), when no vendor format recognises it.

use crate::core::dlp::detector::{DetectorSpec, Validator};

/// Names whose value is a secret (case-insensitive); the trigger literals below start them.
const SECRET_NAMES: &str = "pass(?:word|wd|phrase)?|pwd|secret|private[_-]?key|api[_-]?key|token";
/// What may follow such a name and still name a secret: `SECRET_KEY`, `tokenSecret`, `PASSWORD2`.
const SECRET_NAME_TAIL: &str = "(?:[_-]?(?:access[_-]?key|key|token|secret|value|[0-9]))?";
const SECRET_NAME_LITERALS: [&str; 10] =
    ["pass", "pwd", "secret", "private_key", "private-key", "privatekey", "api_key", "api-key", "apikey", "token"];

/// An unquoted value of 8+ characters that is not code: it starts with a letter or digit, has no
/// quotes, brackets, parentheses, `:`, `,`, `;`, `&`, `|`, backslash or `…` (a documentation
/// ellipsis), and either contains a symbol (`s3cr3t-V4lue!`, base64) or is letters and digits
/// with at least one digit (`hunter2hunter2`, hex and alphanumeric keys). Identifiers, dotted
/// paths and constants (`userPassword`, `self.password`, `node.colon2_token`, `WBEM_128BITS`)
/// are neither.
fn unquoted_value() -> String {
    const FIRST: &str = "[A-Za-z0-9]";
    const CHAR: &str = r#"[^\s"'`(){}\[\]<>\\,;:&|…]"#;
    const SYMBOL: &str = "[!@#$%^*+=/?~-]";
    let with_symbol = at_least_one(FIRST, CHAR, SYMBOL);
    let with_digit = at_least_one(FIRST, FIRST, "[0-9]");
    format!("{with_symbol}|[0-9]{FIRST}{{7,}}|{with_digit}")
}

/// 8+ characters: `first`, then `rest` characters of which at least one is `needed` (a subset of
/// `rest`).
fn at_least_one(first: &str, rest: &str, needed: &str) -> String {
    let mut alternatives: Vec<String> =
        (0..6).map(|before| format!("{first}{rest}{{{before}}}{needed}{rest}{{{},}}", 6 - before)).collect();
    alternatives.push(format!("{first}{rest}{{6,}}{needed}{rest}*"));
    alternatives.join("|")
}

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
    let name = format!(r#"(?i:{SECRET_NAMES})(?i:{SECRET_NAME_TAIL})["'`]?\]?"#);
    // `password: str = "…"`, `const API_KEY: &str = "…"`. A quoted value does not start like a
    // path, a format string or a template, and does not end like a prefix being concatenated
    // (`"sk-ant-bench-" + suffix`).
    let annotation = r"(?:[ \t]*:[ \t]*[A-Za-z_&][A-Za-z0-9_.&|\[\] ]{0,40}?)?";
    let quoted = format!(
        r#"{name}{annotation}[ \t]*(?::=|=>|==|=|:)[ \t]*[bBrRuU]?["'](?P<secret>[^\s"'`\\{{}}<>…$/~.%#][^\s"'`\\{{}}<>…]{{6,254}}[^\s"'`\\{{}}<>…/._-])["']"#
    );
    let unquoted =
        format!(r#"{name}[ \t]*(?::=|=>|=|:)[ \t]*(?P<secret>{}){}"#, unquoted_value(), r#"(?:[\s,;)}\]"'`\\&]|$)"#);
    vec![
        DetectorSpec::prefixed(
            "generic-secret",
            "Quoted value assigned to a password, secret, token, API-key or private-key name in code, config or JSON",
            &SECRET_NAME_LITERALS,
            &quoted,
        )
        .validated(Validator::MinEntropy(2.5))
        .priority(10),
        DetectorSpec::prefixed(
            "generic-env-secret",
            "Unquoted value assigned to a password, secret, token or API-key name (.env files, YAML, headers, flags, URLs)",
            &SECRET_NAME_LITERALS,
            &unquoted,
        )
        .validated(Validator::MinEntropy(2.5))
        .priority(10),
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

//! Shape errors in the user's language: turns what serde and the YAML parser say about a policy
//! that does not fit the [`super::config`] model into one [`PolicyError`] a policy author reads
//! without knowing Rust.
//!
//! Algorithm, on the parser's message (never on the policy text itself):
//! 1. The field path comes from `serde_path_to_error`; the YAML parser's own copy of a path at the
//!    start of its message (`roles.dev: …`, often the parent's) and its position suffix
//!    (` at line 13 column 17`) are cut, and the position is put back once at the end as
//!    `(line 13, column 17)`.
//! 2. `unknown field `x`` is reported at the mapping holding it (the path without `x`), so the
//!    name appears once.
//! 3. `invalid type: FOUND, expected WANTED` becomes `expected WANTED, found FOUND`, both sides
//!    translated by small tables: `struct CapConfig` → "a mapping with `limit` and …", `u64` →
//!    "a whole number (0 or more)", `sequence` → "a list", and so on. A Rust type name no table
//!    knows becomes "a mapping of fields" / "one of the allowed names" — never the type's name.
//!
//! Limits: the translation reads serde's message formats (`invalid type: …, expected …`,
//! `unknown variant …`); a message in another shape passes through with only steps 1–2 applied.
//! The tests below pin every format the policy loader produces.

use super::PolicyError;

/// One shape error from deserializing the policy: `path` as `serde_path_to_error` printed it
/// (`.` for the document itself), `message` as the YAML deserializer printed it, `line`/`column`
/// where it points (1-based), when known.
pub(super) fn shape_error(path: &str, message: &str, position: Option<(usize, usize)>) -> PolicyError {
    let mut path = if path == "." { String::new() } else { path.to_string() };
    let mut message = message.to_string();
    if let Some((line, column)) = position {
        message = message.replace(&format!(" at line {line} column {column}"), "");
    }
    message = strip_repeated_path(&message, &path).to_string();
    if message.starts_with("unknown field `") {
        path = parent(&path).to_string();
    }
    let mut message = plain(&message);
    if let Some((line, column)) = position {
        message.push_str(&format!(" (line {line}, column {column})"));
    }
    PolicyError { path, message }
}

/// The message of an empty policy file (nothing but blanks and comments).
pub(super) const EMPTY_POLICY: &str =
    "the policy is empty: it needs at least `version: 1`, an `identity` section and a `roles` section";

/// `message` without a leading `P: ` where `P` is `path` or one of its ancestors (the YAML
/// parser names the mapping it was reading, which may be the parent of the field at fault).
fn strip_repeated_path<'a>(message: &'a str, path: &str) -> &'a str {
    let Some((head, rest)) = message.split_once(": ") else { return message };
    let is_ancestor = head == "."
        || (!path.is_empty()
            && path.starts_with(head)
            && matches!(path.as_bytes().get(head.len()), None | Some(b'.') | Some(b'[')));
    if is_ancestor {
        rest
    } else {
        message
    }
}

/// The path of the mapping or list holding the field at `path` (`roles.a.x` → `roles.a`,
/// `models[2]` → `models`, `x` → ``).
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(at) => path.get(..at).unwrap_or_default(),
        None => "",
    }
}

/// Serde's wording made plain (see the module header, step 3).
fn plain(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((found, wanted)) = rest.rsplit_once(", expected ") {
                return format!("expected {}, found {}", wanted_in_words(wanted), found_in_words(found));
            }
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return format!("unknown value {rest}");
    }
    if let Some(rest) = message.strip_prefix("duplicate entry with key ") {
        return format!("the key {rest} appears twice (each key may appear once in a mapping)");
    }
    if let Some(rest) = message.strip_prefix("duplicate field ") {
        return format!("the field {rest} appears twice");
    }
    message.to_string()
}

/// What serde expected, in words.
fn wanted_in_words(wanted: &str) -> String {
    let known = match wanted {
        "struct PolicyFile" => "a policy: a mapping with `version: 1`, `identity`, `roles` and the optional sections",
        "struct CapConfig" => "a mapping with `limit` (a whole number) and optionally `action` (`deny` or `clamp`)",
        "struct IdentityConfig" => "a mapping with `providers` and the optional identity fields",
        "struct RoleConfig" => "a mapping of the role's fields (`credential`, `models`, …)",
        "struct CredentialConfig" => "a mapping with `env` (the environment variable holding the key)",
        "struct BindingConfig" => "a mapping with `role` and `group` or `claims`",
        "struct JwksSource" => "a mapping with `file` (a JWKS file) or `uri` (an https:// URL)",
        "a map" => "a mapping (`key: value` lines, or `{ key: value }`)",
        "a sequence" => "a list (`- item` lines, or `[a, b]`)",
        "a boolean" => "`true` or `false`",
        "a string" => "a text",
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        _ => "",
    };
    if !known.is_empty() {
        known.to_string()
    } else if wanted.starts_with("struct ") {
        "a mapping of fields".to_string()
    } else if wanted.starts_with("enum ") {
        "one of the allowed names".to_string()
    } else {
        wanted.to_string()
    }
}

/// What the policy held instead, in words.
fn found_in_words(found: &str) -> String {
    let value = |kind: &str| found.strip_prefix(kind).map(|v| v.split(" as ").next().unwrap_or(v).to_string());
    if let Some(text) = found.strip_prefix("string ") {
        format!("the text {text}")
    } else if let Some(number) = value("integer ").or_else(|| value("floating point ")) {
        format!("the number {}", number.trim_matches('`'))
    } else if let Some(boolean) = found.strip_prefix("boolean ") {
        boolean.to_string()
    } else {
        match found {
            "sequence" => "a list".to_string(),
            "map" => "a mapping".to_string(),
            "unit value" => "an empty value".to_string(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::policy::Policy;

    /// A policy with one role `dev`, whose last line is the role's `models`; `extra` follows it.
    fn policy_with(extra: &str) -> String {
        format!(
            "version: 1\nidentity:\n  providers:\n    - {{ name: d, issuer: i, audiences: [w], jwks: {{ file: j.json }} }}\n\
             credentials:\n  k: {{ env: K }}\nbindings:\n  - {{ group: eng, role: dev }}\nroles:\n  dev:\n    credential: k\n    \
             models: [\"claude-*\"]\n{extra}"
        )
    }

    fn errors_of(text: &str) -> Vec<String> {
        match Policy::parse(text) {
            Ok(_) => vec![],
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn shape_errors_name_the_field_once_and_speak_no_rust() {
        let cases: &[(&str, &str)] = &[
            ("", "the policy is empty: it needs at least `version: 1`, an `identity` section and a `roles` section"),
            ("# only a comment\n", "the policy is empty: it needs at least `version: 1`, an `identity` section and a `roles` section"),
            ("- a\n- b\n", "expected a policy: a mapping with `version: 1`, `identity`, `roles` and the optional sections, found a list (line 1, column 1)"),
            ("hello", "expected a policy: a mapping with `version: 1`, `identity`, `roles` and the optional sections, found the text \"hello\" (line 1, column 1)"),
            ("version: two\nidentity: {}\nroles: {}\n", "version: expected a whole number (0 or more), found the text \"two\" (line 1, column 10)"),
            ("version: 1\nidentity: x\nroles: {}\n", "identity: expected a mapping with `providers` and the optional identity fields, found the text \"x\" (line 2, column 11)"),
            ("version: 1\nidentity: {}\nroles: [a]\n", "roles: expected a mapping (`key: value` lines, or `{ key: value }`), found a list (line 3, column 8)"),
            ("version: 1\nidentity: {}\nroles: {}\nrules: []\n", "unknown field `rules`, expected one of `version`, `identity`, `credentials`, `bindings`, `roles`, `limits`, `dlp`, `approvals`, `audit`, `pricing`, `accounting`, `token_service` (line 4, column 1)"),
            ("version: 1\nidentity: {}\nidentity: {}\nroles: {}\n", "the key \"identity\" appears twice (each key may appear once in a mapping) (line 1, column 1)"),
            (&policy_with("    max_tokens: 100\n"), "roles.dev.max_tokens: expected a mapping with `limit` (a whole number) and optionally `action` (`deny` or `clamp`), found the number 100 (line 13, column 17)"),
            (&policy_with("    max_tokens: [1]\n"), "roles.dev.max_tokens: expected a mapping with `limit` (a whole number) and optionally `action` (`deny` or `clamp`), found a list (line 13, column 17)"),
            (&policy_with("    max_tokens: { limit: -5 }\n"), "roles.dev.max_tokens.limit: expected a whole number (0 or more), found the number -5 (line 13, column 26)"),
            (&policy_with("    max_tokens: { limit: 99999999999999999999999 }\n"), "roles.dev.max_tokens.limit: expected a whole number (0 or more), found the number 99999999999999999999999 (line 13, column 26)"),
            (&policy_with("    max_tokens: { limit: 1.5 }\n"), "roles.dev.max_tokens.limit: expected a whole number (0 or more), found the number 1.5 (line 13, column 26)"),
            (&policy_with("    max_tokens: { limit: 5, action: explode }\n"), "roles.dev.max_tokens.action: unknown value `explode`, expected `deny` or `clamp` (line 13, column 37)"),
            (&policy_with("    modles: []\n"), "roles.dev: unknown field `modles`, expected one of `credential`, `endpoints`, `models`, `max_tokens`, `thinking_budget`, `tools`, `mcp_servers`, `betas`, `streaming`, `max_body_bytes`, `dlp`, `approval`, `budgets` (line 13, column 5)"),
            (&policy_with("    streaming: maybe\n"), "roles.dev.streaming: expected `true` or `false`, found the text \"maybe\" (line 13, column 16)"),
            (&policy_with("    budgets: { window: day }\n"), "roles.dev.budgets: expected a list (`- item` lines, or `[a, b]`), found a mapping (line 13, column 14)"),
            (&policy_with("    tools: { rules: [{ id: x, tools: Bash, command: { program: [1] }, action: deny }] }\n"), "roles.dev.tools.rules[0].command.program: a string or a list of strings (quote numbers: \"1\") (line 13, column 53)"),
            (&policy_with("  dev:\n    credential: k\n"), "roles: the key \"dev\" appears twice (each key may appear once in a mapping) (line 10, column 3)"),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter(|(text, want)| errors_of(text) != vec![want.to_string()])
            .map(|(text, want)| format!("policy:\n{text}\n  got:  {:?}\n  want: {want:?}", errors_of(text)))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn no_shape_error_names_a_rust_type() {
        let texts = [
            "version: 1\nidentity: []\nroles: {}\n".to_string(),
            policy_with("    tools: 5\n"),
            policy_with("    approval: []\n"),
            policy_with("    budgets: [5]\n"),
            policy_with("    thinking_budget: yes\n"),
            "version: 1\nidentity: {}\nroles: {}\ncredentials: { k: 5 }\n".to_string(),
            "version: 1\nidentity: {}\nroles: {}\nbindings: [5]\n".to_string(),
            "version: 1\nidentity: {}\nroles: {}\naudit: 5\n".to_string(),
            "version: 1\nidentity: {}\nroles: {}\npricing: 5\n".to_string(),
            "version: 1\nidentity: {}\nroles: {}\ndlp: 5\n".to_string(),
            "version: 1\nidentity: {}\nroles: {}\naccounting: 5\n".to_string(),
            "version: 1\nidentity: {}\nroles: {}\ntoken_service: 5\n".to_string(),
            "version: 1\nidentity: { providers: [5] }\nroles: {}\n".to_string(),
        ];
        for text in texts {
            let errors = errors_of(&text);
            assert_eq!(errors.len(), 1, "{errors:?}");
            let [error] = errors.as_slice() else { continue };
            for rust in ["struct ", "enum ", "u64", "u32", "usize", "Config", "a map,", "sequence"] {
                assert!(!error.contains(rust), "{error:?} names `{rust}`");
            }
            let path_end = error.find(": ").unwrap_or(0);
            let path = error.get(..path_end).unwrap_or_default();
            let rest = error.get(path_end + 1..).unwrap_or_default();
            assert!(path.is_empty() || !rest.contains(&format!("{path}: ")), "{error:?} repeats its path");
        }
    }
}

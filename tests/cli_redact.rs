//! `warden redact` as a user runs it: stdin → stdout, counts on stderr, exit statuses.
//!
//! Secret-looking values here are fabricated (not the documented AWS example key, which the
//! detectors deliberately skip).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fabricated AWS access key id.
const AWS: &str = "AKIA7QK2M9XZ4B8T1VWE";
/// A fabricated email address (not at a reserved domain, which is not personal data).
const EMAIL: &str = "jane.roe@acme-corp.io";
/// The credential variable of the test policies.
const KEY_VAR: &str = "WARDEN_REDACT_TEST_UPSTREAM";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `warden redact ARGS` with `stdin`; the mask and credential variables are cleared, then
/// `env` is set.
fn redact(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command
        .arg("redact")
        .args(args)
        .env_remove("WARDEN_MASK_KEY")
        .env_remove(KEY_VAR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("run warden");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin); // the process may exit before reading everything
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Writes `text` to a fresh file in a directory unique to this test process and call.
fn write_temp(name: &str, text: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("warden-cli-redact-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A one-role policy whose `strict` profile blocks AWS keys in responses and masks the rest;
/// requests mask everything.
fn block_policy(extra_roles: &str) -> PathBuf {
    let text = format!(
        r#"version: 1
identity: {{}}
credentials:
  main: {{ env: {KEY_VAR} }}
roles:
  dev:
    credential: main
    models: ["*"]
    dlp: strict
{extra_roles}
dlp:
  profiles:
    strict:
      request:
        - {{ detectors: ["*"], action: mask }}
      response:
        - {{ detectors: [aws-access-key], action: block }}
        - {{ detectors: ["*"], action: mask }}
"#
    );
    write_temp("policy.yaml", &text)
}

/// Strips a `[REDACTED:<id>:<6 hex>]` mask from the start of `text` (after the vendor prefix an
/// AWS key id keeps visible), returning it and the rest.
fn take_mask<'t>(text: &'t str, id: &str) -> (&'t str, &'t str) {
    let text = if id == "aws-access-key" { text.strip_prefix("AKIA").unwrap_or(text) } else { text };
    let prefix = format!("[REDACTED:{id}:");
    assert!(text.starts_with(&prefix), "expected a {id} mask at {text:?}");
    let len = prefix.len() + 7;
    let mask = &text[..len];
    assert!(mask.ends_with(']') && mask[prefix.len()..len - 1].chars().all(|c| c.is_ascii_hexdigit()), "{mask}");
    (mask, &text[len..])
}

/// Checks that `out` is `before` + AWS mask + `middle` + email mask + `after`; returns the masks.
fn assert_masked_only_at_the_matches(out: &str, before: &str, middle: &str, after: &str) -> (String, String) {
    let rest = out.strip_prefix(before).unwrap_or_else(|| panic!("prefix changed: {out:?}"));
    let (aws_mask, rest) = take_mask(rest, "aws-access-key");
    let rest = rest.strip_prefix(middle).unwrap_or_else(|| panic!("middle changed: {out:?}"));
    let (email_mask, rest) = take_mask(rest, "email");
    assert_eq!(rest, after, "suffix changed: {out:?}");
    (aws_mask.to_string(), email_mask.to_string())
}

#[test]
fn plain_text_is_masked_only_at_the_matches() {
    let before = "Deploy notes — café ☕\n\taws_access_key_id = ";
    let middle = "\r\nping ";
    for after in [" if the build fails.\n", " then stop", "\n\n"] {
        let input = format!("{before}{AWS}{middle}{EMAIL}{after}");
        let run = redact(&[], input.as_bytes(), &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_masked_only_at_the_matches(&run.stdout, before, middle, after);
        assert!(run.stderr.contains("warden redact: masks are not keyed (set WARDEN_MASK_KEY"), "{}", run.stderr);
        assert_eq!(run.stderr.matches("not keyed").count(), 1, "{}", run.stderr);
    }
    // Nothing found: the bytes come back unchanged, and there is no count line.
    let input = "nothing to see here\nstill nothing";
    let run = redact(&[], input.as_bytes(), &[("WARDEN_MASK_KEY", "k")]);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, input, ""));
}

#[test]
fn masks_are_deterministic_and_keyed() {
    let input = format!("first {AWS}, again {AWS}.");
    let masks = |key: &str| {
        let run = redact(&[], input.as_bytes(), &[("WARDEN_MASK_KEY", key)]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!run.stderr.contains("not keyed"), "a key is set: {}", run.stderr);
        let (first, rest) = take_mask(run.stdout.strip_prefix("first ").unwrap(), "aws-access-key");
        let (second, rest) = take_mask(rest.strip_prefix(", again ").unwrap(), "aws-access-key");
        assert_eq!(rest, ".");
        assert_eq!(first, second, "the same value gets the same mask");
        first.to_string()
    };
    let a = masks("a");
    assert_eq!(a, masks("a"), "the same key gives the same mask in another run");
    assert_ne!(a, masks("b"), "another key gives another mask");
    // The variable can be renamed.
    let run = redact(&["--mask-key-env", "MY_KEY"], input.as_bytes(), &[("MY_KEY", "a")]);
    assert!(run.stdout.contains(&a), "{}", run.stdout);
}

#[test]
fn masks_match_the_gateway_masks_for_the_same_secret() {
    // What the gateway masks with: the policy's key derivation, through the library.
    let policy_path = block_policy("");
    let policy = warden::core::policy::Policy::parse(&std::fs::read_to_string(&policy_path).unwrap()).unwrap();
    let keys = policy.resolve_credentials(|name| (name == KEY_VAR).then(|| "sk-ant-fabricated-1".to_string())).unwrap();
    // The vendor prefix stays visible in front of the mask.
    let gateway_mask = format!("AKIA{}", keys.mask[0].mask("aws-access-key", AWS));
    let input = format!("key {AWS}");
    // The policy's credential variable keys the masks when WARDEN_MASK_KEY is unset ...
    let path = policy_path.to_str().unwrap();
    let run =
        redact(&["--policy", path, "--direction", "request"], input.as_bytes(), &[(KEY_VAR, "sk-ant-fabricated-1")]);
    assert_eq!((run.code, run.stdout.clone()), (0, format!("key {gateway_mask}")), "{}", run.stderr);
    assert!(!run.stderr.contains("not keyed"), "{}", run.stderr);
    // ... and WARDEN_MASK_KEY set to the same secret gives the same masks, with or without policy.
    let run = redact(&[], input.as_bytes(), &[("WARDEN_MASK_KEY", "sk-ant-fabricated-1")]);
    assert_eq!(run.stdout, format!("key {gateway_mask}"), "{}", run.stderr);
}

#[test]
fn jsonl_keeps_ids_and_order() {
    let input = format!(
        "{{\"id\": 1, \"text\": \"key {AWS}\"}}\n\n{{\"text\": \"mail {EMAIL}\", \"id\": \"two\", \"meta\": {{\"x\": 1}}}}\n   \n\
         {{\"id\": 3.50, \"text\": \"plain\"}}\r\n{{\"id\": null, \"text\": \"\"}}\n{{\"id\": [\"a\", {{\"b\": 2}}], \"text\": \"é {AWS}\"}}"
    );
    let run = redact(&["--jsonl"], input.as_bytes(), &[("WARDEN_MASK_KEY", "k")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<serde_json::Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5, "{}", run.stdout);
    let ids: Vec<String> = lines.iter().map(|l| l["id"].to_string()).collect();
    assert_eq!(ids, ["1", "\"two\"", "3.5", "null", "[\"a\",{\"b\":2}]"]);
    // Ids come back exactly as written (not re-formatted numbers).
    assert!(run.stdout.contains("\"id\":3.50"), "{}", run.stdout);
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    take_mask(texts[0].strip_prefix("key ").unwrap(), "aws-access-key");
    take_mask(texts[1].strip_prefix("mail ").unwrap(), "email");
    assert_eq!(&texts[2..4], ["plain", ""]);
    assert_eq!(texts[4].strip_prefix("é ").map(|t| take_mask(t, "aws-access-key").1), Some(""));
    assert!(lines.iter().all(|l| l.as_object().unwrap().len() == 2), "only id and text: {}", run.stdout);
    assert!(!run.stdout.contains(AWS) && !run.stdout.contains(EMAIL));
    assert_eq!(run.stderr.trim(), "warden redact: masked aws-access-key=2 email=1");
}

#[test]
fn malformed_jsonl_line_is_named_and_stops_the_batch() {
    let good = format!("{{\"id\": 1, \"text\": \"{AWS}\"}}");
    for (bad, what) in [
        ("{\"id\": 2, \"text\": \"unterminated".to_string(), "invalid JSON"),
        ("{\"text\": \"no id\"}".to_string(), "expected a JSON object"),
        ("{\"id\": 2, \"text\": 42}".to_string(), "expected a JSON object"),
        (format!("\"{AWS}\""), "expected a JSON object"),
        (format!("[2, \"{AWS}\"]"), "expected a JSON object"),
    ] {
        let input = format!("{good}\n\n{bad}\n{good}\n");
        let run = redact(&["--jsonl"], input.as_bytes(), &[("WARDEN_MASK_KEY", "k")]);
        assert_eq!(run.code, 1, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("warden redact: line 3: "), "{bad}: {}", run.stderr);
        assert!(run.stderr.contains(what), "{bad}: {}", run.stderr);
        assert!(!run.stderr.contains(AWS), "the error must not quote the line: {}", run.stderr);
        assert_eq!(run.stdout.lines().count(), 1, "the line before was written: {}", run.stdout);
        assert!(!run.stdout.contains(AWS));
    }
    let run = redact(&["--jsonl"], b"{\"id\": 1, \"text\": \"caf\xe9\"}\n", &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("line 1: not UTF-8"), "{}", run.stderr);
}

#[test]
fn invalid_utf8_input_is_an_error() {
    let run = redact(&[], b"caf\xe9 au lait", &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("not UTF-8"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
}

#[test]
fn check_exits_3_when_anything_is_found_and_still_writes() {
    let input = format!("mail {EMAIL}\n");
    let run = redact(&["--check"], input.as_bytes(), &[("WARDEN_MASK_KEY", "k")]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    take_mask(run.stdout.strip_prefix("mail ").unwrap(), "email");
    let run = redact(&["--check"], b"all clear\n", &[("WARDEN_MASK_KEY", "k")]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "all clear\n"));
    let lines = format!("{{\"id\": 1, \"text\": \"fine\"}}\n{{\"id\": 2, \"text\": \"{EMAIL}\"}}\n");
    let run = redact(&["--check", "--jsonl"], lines.as_bytes(), &[("WARDEN_MASK_KEY", "k")]);
    assert_eq!((run.code, run.stdout.lines().count()), (3, 2), "{}", run.stderr);
    let run = redact(&["--check", "--jsonl"], b"{\"id\": 1, \"text\": \"fine\"}\n", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn list_prints_every_detector() {
    let run = redact(&["--list"], b"", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines.len() >= 60, "{} detectors", lines.len());
    for line in &lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 3, "{line:?}");
        assert!(["credential", "pii"].contains(&fields[1]), "{line:?}");
        assert!(!fields[2].is_empty(), "{line:?}");
    }
    assert!(lines.iter().any(|l| l.starts_with("aws-access-key\tcredential\t")));
    assert!(lines.iter().any(|l| l.starts_with("email\tpii\t")));
}

#[test]
fn a_block_profile_withholds_the_text_and_exits_4() {
    let policy = block_policy("");
    let path = policy.to_str().unwrap();
    let input = format!("mail {EMAIL} and key {AWS}\n");
    let run = redact(&["--policy", path], input.as_bytes(), &[("WARDEN_MASK_KEY", "k")]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(run.stdout, "", "nothing is written");
    assert!(run.stderr.contains("warden redact: blocked: aws-access-key"), "{}", run.stderr);
    assert!(!run.stderr.contains(AWS) && !run.stderr.contains(EMAIL), "{}", run.stderr);
    // JSONL: the blocked line says so, the others go on; exit 4 at the end (3 with --check).
    let lines = format!(
        "{{\"id\": \"a\", \"text\": \"{EMAIL}\"}}\n{{\"id\": \"b\", \"text\": \"key {AWS}\"}}\n{{\"id\": \"c\", \"text\": \"ok\"}}\n"
    );
    let run = redact(&["--policy", path, "--jsonl"], lines.as_bytes(), &[("WARDEN_MASK_KEY", "k")]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let out: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(out.len(), 3, "{}", run.stdout);
    assert!(out[0].starts_with("{\"id\":\"a\",\"text\":\"[REDACTED:email:"), "{}", out[0]);
    assert_eq!(out[1], "{\"id\":\"b\",\"blocked\":\"aws-access-key\"}");
    assert_eq!(out[2], "{\"id\":\"c\",\"text\":\"ok\"}");
    assert!(run.stderr.contains("blocked aws-access-key=1"), "{}", run.stderr);
    let run = redact(&["--policy", path, "--jsonl", "--check"], lines.as_bytes(), &[("WARDEN_MASK_KEY", "k")]);
    assert_eq!(run.code, 3, "{}", run.stderr);
}

#[test]
fn direction_request_uses_the_request_actions() {
    // The profile that blocks AWS keys in responses masks them in requests.
    let policy = block_policy("");
    let input = format!("a {AWS} b");
    let run = redact(&["--policy", policy.to_str().unwrap(), "--direction", "request"], input.as_bytes(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (_, rest) = take_mask(run.stdout.strip_prefix("a ").unwrap(), "aws-access-key");
    assert_eq!(rest, " b");
    assert!(run.stderr.contains("not keyed"), "no key at all: {}", run.stderr);
}

#[test]
fn role_is_required_with_a_multi_role_policy() {
    let analyst = "  analyst:\n    credential: main\n    models: [\"claude-haiku-*\"]\n";
    let policy = block_policy(analyst);
    let path = policy.to_str().unwrap();
    let input = format!("key {AWS}\n");
    let run = redact(&["--policy", path], input.as_bytes(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("--role") && run.stderr.contains("analyst, dev"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    // `analyst` has the built-in default profile: responses mask credentials.
    let run = redact(&["--policy", path, "--role", "analyst"], input.as_bytes(), &[("WARDEN_MASK_KEY", "k")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    take_mask(run.stdout.strip_prefix("key ").unwrap(), "aws-access-key");
    let run = redact(&["--policy", path, "--role", "dev"], input.as_bytes(), &[("WARDEN_MASK_KEY", "k")]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let run = redact(&["--policy", path, "--role", "ghost"], input.as_bytes(), &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("unknown role \"ghost\""), "{}", run.stderr);
    // --role and --direction mean nothing without a policy.
    let run = redact(&["--role", "dev"], input.as_bytes(), &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("need --policy"), "{}", run.stderr);
}

#[test]
fn policy_errors_are_printed_with_their_path() {
    let path = write_temp("bad.yaml", "version: 1\nidentity: {}\nroles: {}\n");
    let run = redact(&["--policy", path.to_str().unwrap()], b"text", &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("bad.yaml: roles: at least one role is required"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let run = redact(&["--policy", "/nonexistent/policy.yaml"], b"text", &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
}

#[test]
fn the_tally_counts_without_showing_values() {
    let input = format!("{AWS} {EMAIL} {AWS}");
    let run = redact(&[], input.as_bytes(), &[("WARDEN_MASK_KEY", "k")]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stderr, "warden redact: masked aws-access-key=2 email=1\n");
    for part in [AWS, &AWS[4..], EMAIL, "jane.roe"] {
        assert!(!run.stderr.contains(part), "{}", run.stderr);
        assert!(!run.stdout.contains(part), "{}", run.stdout);
    }
}

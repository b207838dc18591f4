//! The `warden` binary as a user runs it: `warden check` output and exit status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn warden(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_warden")).args(args).output().expect("run warden");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_prints_ok_for_the_demo_policy() {
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/policy.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_warden")).args(["check", policy]).output().unwrap();
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()), (Some(0), "OK\n"));
}

#[test]
fn check_flags_a_missing_jwks_file_and_fails_on_it_when_checking_for_deployment() {
    let text = "version: 1\nidentity:\n  providers:\n    - { name: d, issuer: i, audiences: [w], jwks: { file: absent.json } }\n\
                credentials: { k: { env: K } }\nroles: { r: { credential: k, models: [\"claude-*\"] } }\n";
    let path = write("jwks.yaml", text);
    let out = Command::new(env!("CARGO_BIN_EXE_warden")).args(["check", path.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning: identity.providers[0].jwks.file: cannot read \"absent.json\""), "{stderr}");
    let (code, out) = warden(&["check", "--require-credentials", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("identity.providers[0].jwks.file: cannot read \"absent.json\""), "{out}");
    assert!(!out.contains("OK"), "{out}");
    std::fs::write(path.with_file_name("absent.json"), "{\"not\": \"a jwks\"}").unwrap();
    let (code, out) = warden(&["check", "--require-credentials", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"absent.json\" (") && out.contains("is not a JWKS"), "{out}");
}

#[test]
fn check_lists_every_error_with_its_path_and_exits_1() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/policy.yaml"))
        .unwrap()
        .replace("role: analyst", "role: ghost")
        .replace(r#"models: ["claude-haiku-*"]"#, r#"models: ["claude-[h]*"]"#);
    let path = write("broken.yaml", &text);
    let (code, out) = warden(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bindings[1].role: unknown role \"ghost\""), "{out}");
    assert!(out.contains("roles.analyst.models[0]: invalid glob"), "{out}");
    assert!(!out.contains("OK"));
}

#[test]
fn check_refuses_claim_bindings_anyone_could_satisfy() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/policy.yaml")).unwrap().replace(
        "bindings:\n",
        "bindings:\n  - { claims: { repository: org/app }, role: analyst }\n  \
         - { claims: { ref: \"**\" }, issuer: warden-demo, role: analyst }\n",
    );
    assert!(text.contains("claims: { repository"), "the demo policy changed: update this test");
    let path = write("claims.yaml", &text);
    let (code, out) = warden(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bindings[0].issuer: a claim binding must name the issuer"), "{out}");
    assert!(out.contains("bindings[1].claims.ref: \"**\" matches any value"), "{out}");
}

#[test]
fn check_reports_unknown_fields_and_unreadable_files() {
    let path = write("typo.yaml", "version: 1\nidentity: {}\nroles: {}\nrules: []\n");
    let (code, out) = warden(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("unknown field `rules`"), "{out}");
    let (code, out) = warden(&["check", "/nonexistent/policy.yaml"]);
    assert_eq!(code, 1);
    assert!(out.contains("cannot read"), "{out}");
}

#[test]
fn check_can_require_the_credentials_without_printing_them() {
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/policy.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["check", "--require-credentials", policy])
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ANTHROPIC_API_KEY is not set"));
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["check", "--require-credentials", policy])
        .env("ANTHROPIC_API_KEY", "sk-ant-secret-value")
        .env("WARDEN_APPROVALS_TOKEN", "approvals-token-value")
        .env("WARDEN_APPROVALS_VERDICT_KEY", "A".repeat(43))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("sk-ant-secret-value") && !stdout.contains("approvals-token-value"), "{stdout}");
}

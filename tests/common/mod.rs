//! The harness `tests/serve.rs` and `tests/audit.rs` share: a temporary workspace with the demo
//! issuer's keys, the service's keys (`warden serve init`) and a policy, and the real
//! `warden serve` on a free 127.0.0.1 port. [`exchange`]: one exchange driven through the core,
//! for the scenario tests.

// Each test crate uses part of it.
#![allow(dead_code)]

pub mod exchange;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use ct_codecs::{Base64, Decoder};

/// A policy with the demo issuer, approvals and an auditor group `audit` (the audit trail's and
/// usage tests').
pub const AUDIT_POLICY: &str = include_str!("../fixtures/audit-policy.yaml");

/// The `warden` binary under test.
pub const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

/// Runs `warden ARGS` with `env` added (and the reviews CLI's own variables removed); returns
/// (exit code, stdout, stderr).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(WARDEN);
    command.args(args).env_remove("WARDEN_TOKEN").env_remove("WARDEN_SERVICE");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// POSTs an NDJSON batch of audit records to the service at `base` with the gateway `token`;
/// (status, answer body).
pub fn post_records(base: &str, body: &str, token: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let mut response = agent
        .post(&format!("{base}/v1/audit/records"))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/x-ndjson")
        .send(body)
        .unwrap();
    (response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default())
}

/// A temporary directory with the demo issuer's keys, the service's keys and a policy; removed
/// when dropped.
pub struct Workspace {
    /// The directory.
    pub dir: PathBuf,
}

impl Workspace {
    /// A fresh workspace named `<suite>-<name>` holding `policy_text` as `policy.yaml`.
    pub fn new(suite: &str, name: &str, policy_text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("warden-{suite}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap();
        assert_eq!(run(&["token", "init", "--dir", d], &[]).0, 0);
        let (code, out, err) = run(&["serve", "init", "--dir", d], &[]);
        assert_eq!(code, 0, "{out}{err}");
        std::fs::write(dir.join("policy.yaml"), policy_text).unwrap();
        Self { dir }
    }

    /// A file in the workspace.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A demo approver's token for `sub` in `groups` (comma-separated), with the approvers'
    /// audience (`approvals.approver_audience`'s default).
    pub fn mint(&self, sub: &str, groups: &str) -> String {
        let dir = self.dir.to_str().unwrap();
        let args = ["token", "mint", "--dir", dir, "--sub", sub, "--groups", groups, "--audience", "warden-approvals"];
        let (code, out, err) = run(&args, &[]);
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    }

    /// The gateway's bearer token for the service.
    pub fn gateway_token(&self) -> String {
        std::fs::read_to_string(self.path("approvals-token")).unwrap().trim().to_string()
    }

    /// The service's Ed25519 public key.
    pub fn verdict_key(&self) -> Vec<u8> {
        let text = std::fs::read_to_string(self.path("approvals-verdict-key.pub")).unwrap();
        Base64::decode_to_vec(text.trim(), None).unwrap()
    }

    /// `warden serve` on this workspace (database `approvals.db`), with `extra` flags.
    pub fn start(&self, extra: &[&str]) -> Serve {
        Serve::start(self, extra)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `warden serve`; killed when dropped.
pub struct Serve {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Serve {
    /// Starts the service with the workspace's verdict key and gateway token, and waits for its
    /// "listening on" line.
    pub fn start(ws: &Workspace, extra: &[&str]) -> Self {
        let signing_key = ws.path("approvals-signing-key.pem");
        let token = ws.path("approvals-token");
        let keys = ["--signing-key", signing_key.to_str().unwrap(), "--gateway-token-file", token.to_str().unwrap()];
        Self::start_with(ws, &[&keys, extra].concat())
    }

    /// Starts the service with only the flags `flags` besides the policy, address and database.
    pub fn start_with(ws: &Workspace, flags: &[&str]) -> Self {
        let mut child = Command::new(WARDEN)
            .args(["serve", "--policy"])
            .arg(ws.path("policy.yaml"))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(ws.path("approvals.db"))
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let mut base = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(rest) = line.split("listening on ").nth(1) {
                base = rest.split_whitespace().next().map(str::to_string);
                break;
            }
        }
        let Some(base) = base else {
            let _ = child.wait();
            panic!("warden serve did not start:\n{}", log.lock().unwrap());
        };
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Self { child, base, log }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Kills it at once.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it with SIGTERM (the service signs the chain head on its way out).
    pub fn terminate(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `params` as an `application/x-www-form-urlencoded` body.
pub fn form(params: &[(&str, &str)]) -> String {
    params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// `text` percent-encoded (everything but RFC 3986's unreserved characters).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A small policy: the workspace's demo issuer as the provider, the credentials the gateway's
/// sections name, `eng` bound to a `developer` role, and `sections` (top-level YAML:
/// `approvals`, `audit`, `accounting`, `token_service`) appended.
pub fn demo_policy(sections: &str) -> String {
    format!(
        r#"version: 1
identity:
  providers:
    - {{ name: demo, issuer: warden-demo, audiences: [warden], jwks: {{ file: jwks.json }} }}
credentials:
  anthropic: {{ env: ANTHROPIC_API_KEY }}
  approvals-token: {{ env: WARDEN_APPROVALS_TOKEN }}
  approvals-verdict-key: {{ env: WARDEN_APPROVALS_VERDICT_KEY }}
bindings:
  - {{ group: eng, role: developer }}
roles:
  developer:
    credential: anthropic
    models: ["claude-*"]
{sections}"#
    )
}

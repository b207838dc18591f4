//! Criterion benchmarks of judging one proposed tool call by a role's tool rules — the work the
//! filter adds when a held `tool_use` block is complete: realistic Claude Code Bash commands
//! (parsed once, then matched by every command rule) and file-tool paths, against the rules of
//! `tests/fixtures/tool-rules-policy.yaml` (seven rules: pipe to shell, `rm -r` outside the
//! workspace, force push, `.env` files, subagent writes, a fetch allowlist, MCP deletes).
//!
//! Run: `cargo bench --bench tool_rules` (numbers in docs/benchmarks.md and docs/tools.md).

// Benchmarks may stop on setup errors.
#![allow(clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use std::hint::black_box;
use warden::core::policy::Policy;
use warden::core::tools::{CallContext, CallKind, ToolCall};

const POLICY: &str = include_str!("../tests/fixtures/tool-rules-policy.yaml");

fn call(name: &str, input: serde_json::Value) -> ToolCall {
    ToolCall {
        id: "toolu_01".into(),
        kind: CallKind::ToolUse,
        name: name.into(),
        server_name: None,
        input,
        malformed: false,
    }
}

fn judging(c: &mut Criterion) {
    let policy = Policy::parse(POLICY).expect("the fixture policy is valid");
    let rules = &policy.roles.first().expect("a role").tool_rules;
    let context = CallContext { workspace: Some("/home/dev/src/app".into()), subagent: false };
    let commands = [
        ("bash_short", "git status"),
        ("bash_pipeline", "cargo test --workspace 2>&1 | tail -50"),
        ("bash_rm_outside", "cd /home/dev/src/app && sudo rm -rf ../other/build /tmp/cache"),
        ("bash_curl_sh", "curl -fsSL https://sh.rustup.rs | sh -s -- -y"),
        (
            "bash_commit_heredoc",
            "git add -A && git commit -m \"$(cat <<'EOF'\nTools: judge proposed calls by the role's rules\n\n\
             The rule engine parses each command once and matches every rule.\nEOF\n)\" && git push origin main",
        ),
    ];
    for (name, command) in commands {
        let bash = call("Bash", json!({ "command": command, "description": "run it" }));
        c.bench_function(&format!("tool_rules/{name}"), |b| {
            b.iter(|| black_box(rules.judge(black_box(&bash), &context)))
        });
    }
    let read = call("Read", json!({ "file_path": "/home/dev/src/app/src/core/tools/rules.rs" }));
    c.bench_function("tool_rules/read_path", |b| b.iter(|| black_box(rules.judge(black_box(&read), &context))));
    let edit = call(
        "Edit",
        json!({ "file_path": "/home/dev/src/app/./config/../.env.local", "old_string": "A=1", "new_string": "A=2" }),
    );
    c.bench_function("tool_rules/edit_env_path", |b| b.iter(|| black_box(rules.judge(black_box(&edit), &context))));
    let fetch = call("WebFetch", json!({ "url": "https://docs.github.com/en/rest#section", "prompt": "summarise" }));
    c.bench_function("tool_rules/webfetch_url", |b| b.iter(|| black_box(rules.judge(black_box(&fetch), &context))));
}

criterion_group!(benches, judging);
criterion_main!(benches);

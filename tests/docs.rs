//! The docs tell the truth: every file path they name exists, every policy they show validates,
//! the complete example is the demo policy, the `warden check` sessions they show print exactly
//! that, and every `warden` flag they use is one the command knows.
//!
//! How examples are marked (docs/policy.md, "Examples in these docs"): a fenced block's info
//! string says what it is —
//! - ```` ```yaml policy ```` a whole policy; it must pass `Policy::parse` (what `warden check` and
//!   the filter run);
//! - ```` ```yaml policy-part ```` a part of one, merged into the demo policy (envoy/policy.yaml)
//!   at the root or at `at=roles.developer` (mappings merge key by key, anything else replaces),
//!   then validated. The demo policy gets what the docs' examples assume: the roles `ci` and
//!   `ci-review` (the analyst's role without its budget) and the identity providers of a
//!   corporate IdP (`https://login.corp.example`), GitHub Actions and Kubernetes (docs/identity.md);
//! - ```` ```yaml file=broken.yaml ```` a file a following ```` ```console ```` block uses;
//! - ```` ```console ```` blocks whose lines start with `$ warden check` are run (in a temporary
//!   directory holding the `file=` blocks of the same page; other paths are the repository's)
//!   and must print the lines that follow on stdout, exactly.
//!
//! A ```` ```yaml ```` block that starts with a policy section (`roles:`, `identity:`, …) or a tool
//! rule (`- id:`) must carry one of these marks: an unmarked policy example fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_yaml_ng::{Mapping, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use warden::core::policy::Policy;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The top-level sections of a policy: a yaml block starting with one of them is a policy example.
const SECTIONS: &[&str] = &[
    "version", "identity", "credentials", "bindings", "roles", "limits", "dlp", "approvals", "audit", "pricing",
    "accounting", "token_service",
];

/// One fenced block of a page.
struct Block {
    page: String,
    /// 1-based line of the opening fence.
    line: usize,
    /// The words after the fence (`yaml`, `policy`, `at=…`, `file=…`).
    info: Vec<String>,
    text: String,
}

impl Block {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.info.iter().find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
    }
    fn at(&self) -> String {
        format!("{}:{}", self.page, self.line)
    }
}

/// docs/*.md and README.md, as (repository-relative name, text).
fn pages() -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .map(|path| format!("docs/{}", path.file_name().unwrap().to_string_lossy()))
        .collect();
    names.sort();
    names.push("README.md".to_string());
    names.into_iter().map(|name| (name.clone(), std::fs::read_to_string(Path::new(ROOT).join(&name)).unwrap())).collect()
}

fn blocks(page: &str, text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                let info = info.split_whitespace().map(str::to_string).collect();
                open = Some(Block { page: page.to_string(), line: i + 1, info, text: String::new() });
            }
            (Some(_), Some(_)) => found.extend(open.take()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    found
}

fn demo_policy() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("envoy/policy.yaml")).unwrap()
}

/// The demo policy with the roles and providers the docs' examples bind to (module header).
fn demo_with_example_roles() -> Value {
    let mut document: Value = serde_yaml_ng::from_str(&demo_policy()).unwrap();
    let mut analyst = document["roles"]["analyst"].clone();
    analyst.as_mapping_mut().unwrap().remove("budgets");
    let roles = document["roles"].as_mapping_mut().unwrap();
    for name in ["ci", "ci-review"] {
        roles.insert(Value::String(name.to_string()), analyst.clone());
    }
    let workloads: Value = serde_yaml_ng::from_str(
        "- { name: corp, issuer: https://login.corp.example, audiences: [warden], jwks: { uri: https://login.corp.example/keys } }\n\
         - { name: github, issuer: https://token.actions.githubusercontent.com, audiences: [warden], \
             jwks: { uri: https://token.actions.githubusercontent.com/.well-known/jwks } }\n\
         - { name: cluster, issuer: https://kubernetes.default.svc.cluster.local, audiences: [warden], \
             jwks: { file: cluster-jwks.json } }\n",
    )
    .unwrap();
    let providers = document["identity"]["providers"].as_sequence_mut().unwrap();
    providers.extend(workloads.as_sequence().unwrap().iter().cloned());
    document
}

fn validate(text: &str) -> Result<(), String> {
    Policy::parse(text).map(|_| ()).map_err(|errors| errors.to_string())
}

/// `fragment` put into `document` at the dotted `path` (mappings merge key by key).
fn merge_at(document: &mut Value, path: &str, fragment: Value) {
    let mut target = document;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        let map = target.as_mapping_mut().expect("`at=` names a path of mappings");
        target = map.entry(Value::String(key.to_string())).or_insert(Value::Mapping(Mapping::new()));
    }
    merge(target, fragment);
}

fn merge(target: &mut Value, fragment: Value) {
    match (target, fragment) {
        (Value::Mapping(into), Value::Mapping(from)) => {
            for (key, value) in from {
                match into.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        into.insert(key, value);
                    }
                }
            }
        }
        (target, fragment) => *target = fragment,
    }
}

fn first_key(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim_end).find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    if line.starts_with("- id:") {
        return Some("- id".to_string());
    }
    line.split_once(':').map(|(key, _)| key.to_string())
}

#[test]
fn every_policy_example_in_the_docs_validates() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (page, text) in pages() {
        for block in blocks(&page, &text).into_iter().filter(|b| b.info.first().is_some_and(|l| l == "yaml")) {
            let is_policy = block.info.iter().any(|w| w == "policy" || w == "policy-part");
            if !is_policy {
                let looks_like_one = first_key(&block.text)
                    .is_some_and(|key| key == "- id" || SECTIONS.contains(&key.as_str()));
                if looks_like_one && block.attribute("file").is_none() {
                    problems.push(format!("{}: a policy example without the `policy` marker", block.at()));
                }
                continue;
            }
            checked += 1;
            let result = match block.info.iter().any(|w| w == "policy-part") {
                false => validate(&block.text),
                true => {
                    let path = block.attribute("at").unwrap_or_default();
                    let mut document = demo_with_example_roles();
                    match serde_yaml_ng::from_str::<Value>(&block.text) {
                        Ok(fragment) => {
                            merge_at(&mut document, path, fragment);
                            validate(&serde_yaml_ng::to_string(&document).unwrap())
                        }
                        Err(e) => Err(e.to_string()),
                    }
                }
            };
            if let Err(e) = result {
                problems.push(format!("{}: {e}", block.at()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 20, "only {checked} policy examples found: are the markers still there?");
}

#[test]
fn the_complete_example_is_the_demo_policy() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("docs/policy.md")).unwrap();
    let section = text.split("## A complete example").nth(1).expect("docs/policy.md has a complete example");
    let block = blocks("docs/policy.md", section).into_iter().next().expect("a fenced block");
    assert_eq!(block.text, demo_policy(), "docs/policy.md's complete example is not envoy/policy.yaml");
}

#[test]
fn the_warden_check_sessions_in_the_docs_print_what_they_show() {
    let mut problems = Vec::new();
    let mut runs = 0;
    for (page, text) in pages() {
        let page_blocks = blocks(&page, &text);
        let dir = std::env::temp_dir().join(format!("warden-docs-{}-{}", std::process::id(), page.replace('/', "-")));
        std::fs::create_dir_all(&dir).unwrap();
        for block in &page_blocks {
            if let Some(name) = block.attribute("file") {
                std::fs::write(dir.join(name), &block.text).unwrap();
            }
        }
        for block in page_blocks.iter().filter(|b| b.info.first().is_some_and(|l| l == "console")) {
            let lines: Vec<&str> = block.text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let line = line.replace("$ target/release/warden ", "$ warden ");
                let Some(args) = line.strip_prefix("$ warden check ") else { continue };
                let shown: Vec<&str> = lines[i + 1..].iter().take_while(|l| !l.starts_with("$ ")).copied().collect();
                let args: Vec<String> = args
                    .split_whitespace()
                    .map(|a| {
                        let written = dir.join(a);
                        if written.exists() { written } else { PathBuf::from(ROOT).join(a) }
                    })
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                let out = Command::new(env!("CARGO_BIN_EXE_warden")).arg("check").args(&args).current_dir(&dir).output().unwrap();
                // The doc writes the file as it names it; the command prints the path it was given.
                let printed = String::from_utf8_lossy(&out.stdout)
                    .replace(&format!("{}/", dir.display()), "")
                    .replace(&format!("{ROOT}/"), "");
                runs += 1;
                if printed.lines().collect::<Vec<_>>() != shown {
                    problems.push(format!("{}: `warden check {}` prints\n{printed}\nthe doc shows\n{}", block.at(), line, shown.join("\n")));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(runs >= 2, "only {runs} `$ warden check` sessions found");
}

/// Paths the docs name: words starting with one of the repository's top-level directories.
fn named_paths(text: &str) -> Vec<String> {
    const DIRS: &[&str] = &["src/", "scripts/", "docs/", "tests/", "envoy/", "deploy/", "benches/"];
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "_./-*{}<>…".contains(c);
    let mut paths = Vec::new();
    for (start, _) in text.char_indices() {
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || "_./-".contains(c)) {
            continue;
        }
        let rest = &text[start..];
        if !DIRS.iter().any(|dir| rest.starts_with(dir)) {
            continue;
        }
        let end = rest.find(|c: char| !is_path_char(c)).unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches(['.', ',', ':', ')']);
        if !path.contains(['*', '{', '<', '…']) {
            paths.push(path.to_string());
        }
    }
    paths
}

/// Targets of relative Markdown links (`[text](../envoy/policy.yaml)`), resolved from the page.
fn linked_paths(page: &str, text: &str) -> Vec<String> {
    let base = Path::new(page).parent().unwrap_or(Path::new(""));
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split('#').next().unwrap_or_default())
        .filter(|target| !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:"))
        .map(|target| base.join(target).to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_path_the_docs_name_exists() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for (page, text) in pages() {
        for path in named_paths(&text).into_iter().chain(linked_paths(&page, &text)) {
            checked += 1;
            let normal = Path::new(ROOT).join(&path);
            if !normal.exists() {
                missing.push(format!("{page}: {path}"));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "paths named in the docs that do not exist:\n{}", missing.join("\n"));
    assert!(checked > 100, "only {checked} paths found");
}

/// `warden …` command lines in the docs: console blocks and inline code.
fn warden_commands(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    for block in blocks("", text) {
        if matches!(block.info.first().map(String::as_str), Some("console" | "sh" | "bash" | "shell")) {
            for line in block.text.lines() {
                let line = line.trim_start().trim_start_matches("$ ");
                let line = line.strip_prefix("target/release/").unwrap_or(line);
                if line.starts_with("warden ") {
                    commands.push(line.to_string());
                }
            }
        }
    }
    for piece in text.split('`').skip(1).step_by(2) {
        if piece.starts_with("warden ") && !piece.contains('\n') {
            commands.push(piece.to_string());
        }
    }
    commands
}

fn help_of(words: &[&str]) -> Option<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_warden")).args(words).arg("--help").output().unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn every_warden_flag_the_docs_use_is_known_to_the_command() {
    let mut unknown = Vec::new();
    let mut helps: std::collections::BTreeMap<String, Option<String>> = Default::default();
    let mut checked = 0;
    for (page, text) in pages() {
        for command in warden_commands(&text) {
            let words: Vec<&str> = command.split_whitespace().skip(1).collect();
            let subcommands: Vec<&str> = words
                .iter()
                .take_while(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-'))
                .copied()
                .collect();
            let flags = words
                .iter()
                .filter(|w| w.starts_with("--") || w.starts_with("[--"))
                .flat_map(|w| w.trim_start_matches('[').split('/'))
                .map(|w| w.split(['=', ']', '|', ',', '`', ')']).next().unwrap_or_default().to_string());
            // The deepest subcommand chain `warden` knows (documents write `warden audit replay
            // --session ID`, `warden token mint`, …).
            let help = (1..=subcommands.len()).rev().find_map(|n| {
                let key = subcommands[..n].join(" ");
                helps.entry(key).or_insert_with(|| help_of(&subcommands[..n])).clone()
            });
            let Some(help) = help else { continue };
            // `warden reviews list | show ID | approve ID [--comment …]` names several
            // subcommands on one line: a flag may belong to any subcommand the line names.
            let named: Vec<String> = words
                .iter()
                .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-' || c == '|') && !w.starts_with('-'))
                .flat_map(|w| w.split('|'))
                .filter(|w| !w.is_empty())
                .map(|w| format!("{} {w}", subcommands[0]))
                .collect();
            let others: Vec<String> = named
                .iter()
                .filter_map(|key| {
                    let words: Vec<&str> = key.split(' ').collect();
                    helps.entry(key.clone()).or_insert_with(|| help_of(&words)).clone()
                })
                .collect();
            for flag in flags.filter(|f| f.len() > 2) {
                checked += 1;
                if !help.contains(&flag) && !others.iter().any(|h| h.contains(&flag)) {
                    unknown.push(format!("{page}: `{command}`: {flag}"));
                }
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(unknown.is_empty(), "flags the docs use that `warden … --help` does not mention:\n{}", unknown.join("\n"));
    assert!(checked > 20, "only {checked} flags found");
}

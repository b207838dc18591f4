//! No module imports another in a loop: the layers of `src/` stay layers.
//!
//! The test reads every `src/**/*.rs`, builds the module dependency graph and fails naming each
//! loop it finds. The algorithm:
//!
//! - **Nodes** are files: a folder's `mod.rs` and each of its children are separate nodes
//!   (`src/core/policy/mod.rs`, `src/core/policy/config.rs`). Each crate (the library at
//!   `src/lib.rs`, each binary under `src/bin/<name>/`) has its own namespace; a binary's
//!   `warden::…` paths name the library, which never depends on a binary, so they add no edge.
//! - **Edges** come from every path that names a module of the same crate: `use` trees (braces,
//!   renames, globs, `self` inside braces) and paths written inline (`crate::core::hex::hex(…)`),
//!   starting with `crate::`, `super::`, `self::` or a child module's name. A path is attributed
//!   to the longest module prefix that is a file. A `mod child;` declaration is not an import.
//! - **Not counted**: code under `#[cfg(test)]` (test modules may reach anywhere, and test-only
//!   module files are skipped), comments and string literals, and a file's use of its own
//!   ancestors (`super::Checker` from `policy/config.rs` to `policy/mod.rs`): a child is part of
//!   its parent, and a folder's `mod.rs` is the root its children build on. A parent's use of its
//!   children does count, so the loop `policy/mod.rs → policy/approvals.rs → approval/mod.rs →
//!   identity.rs → policy/mod.rs` is seen.
//! - **Loops** are the strongly connected components of that graph (Tarjan); for each, the
//!   failure names one concrete cycle through it.
//!
//! Limits: it reads the source text with a small tokenizer, not the compiler's resolution, so a
//! path produced by a macro, or a glob import's names used later, count only where written (the
//! glob import itself is an edge to the module it names); a loop that runs only through a
//! child's use of its own parent is not seen.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// One source token: the cleaned text keeps identifiers and punctuation only.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Punct(char),
    PathSep,
}

/// Removes comments, string and character literals (nested block comments and raw strings
/// included) and splits the rest into tokens.
fn tokenize(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' || ((c == 'r' || c == 'b') && raw_or_byte_string_start(&chars, i)) {
            i = skip_string(&chars, i);
        } else if c == '\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a): a literal closes
            // within a few characters.
            if at(i + 1) == '\\' {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && at(i + 1) == ':' {
            tokens.push(Token::PathSep);
            i += 2;
        } else if c.is_whitespace() || c.is_ascii_digit() {
            i += 1;
        } else {
            tokens.push(Token::Punct(c));
            i += 1;
        }
    }
    tokens
}

/// Whether a string literal with a `r`/`b`/`br` prefix starts at `i`.
fn raw_or_byte_string_start(chars: &[char], i: usize) -> bool {
    let before_is_ident = i > 0 && chars.get(i - 1).is_some_and(|c| c.is_alphanumeric() || *c == '_');
    if before_is_ident {
        return false;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) == Some(&'r') {
        j += 1;
        while chars.get(j) == Some(&'#') {
            j += 1;
        }
    }
    j > i && chars.get(j) == Some(&'"')
}

/// The index just past the string literal starting at `i`.
fn skip_string(chars: &[char], mut i: usize) -> usize {
    let mut raw = false;
    let mut hashes = 0;
    while chars[i] != '"' {
        if chars[i] == 'r' {
            raw = true;
        } else if chars[i] == '#' {
            hashes += 1;
        }
        i += 1;
    }
    i += 1;
    while i < chars.len() {
        if !raw && chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// What one file says about modules: the paths it names (each with the module it was written
/// in, which differs from the file's own inside an inline `mod x { … }`), and its test-only
/// child modules.
#[derive(Debug, Default)]
struct FileFacts {
    paths: Vec<(Vec<String>, Vec<String>)>,
    test_only_children: BTreeSet<String>,
    children: BTreeSet<String>,
}

/// Reads the tokens of the file of module `module`.
fn file_facts(module: &[String], tokens: &[Token]) -> FileFacts {
    let mut facts = FileFacts::default();
    // Inline modules open at a brace depth; the current module is `module` + their names.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let current = |inline: &[(String, usize)]| {
        let mut m = module.to_vec();
        m.extend(inline.iter().map(|(name, _)| name.clone()));
        m
    };
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('#') if is_cfg_test(tokens, i) => {
                i = skip_item(tokens, i, &mut facts);
            }
            Token::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Token::Punct('}') => {
                if inline.last().is_some_and(|(_, at)| *at == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Token::Ident(word) if word == "mod" => {
                if let Some(Token::Ident(name)) = tokens.get(i + 1) {
                    match tokens.get(i + 2) {
                        Some(Token::Punct('{')) => {
                            depth += 1;
                            inline.push((name.clone(), depth));
                            i += 3;
                            continue;
                        }
                        Some(Token::Punct(';')) if inline.is_empty() => {
                            facts.children.insert(name.clone());
                        }
                        _ => {}
                    }
                }
                i += 2;
            }
            Token::Ident(word) if word == "pub" && tokens.get(i + 1) == Some(&Token::Punct('(')) => {
                // A visibility (`pub(super)`, `pub(in crate::core)`) is not an import.
                while i < tokens.len() && tokens[i] != Token::Punct(')') {
                    i += 1;
                }
                i += 1;
            }
            Token::Ident(word) if word == "use" => {
                let end = (i..tokens.len()).find(|&j| tokens[j] == Token::Punct(';')).unwrap_or(tokens.len());
                let here = current(&inline);
                for path in use_tree_paths(&tokens[i + 1..end]) {
                    facts.paths.push((here.clone(), path));
                }
                i = end + 1;
            }
            Token::Ident(word)
                if matches!(word.as_str(), "crate" | "super" | "self") && tokens.get(i + 1) == Some(&Token::PathSep) =>
            {
                let mut path = vec![word.clone()];
                let mut j = i + 1;
                while tokens.get(j) == Some(&Token::PathSep) {
                    match tokens.get(j + 1) {
                        Some(Token::Ident(segment)) => path.push(segment.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                facts.paths.push((current(&inline), path));
                i = j;
            }
            _ => i += 1,
        }
    }
    facts
}

/// Whether the attribute starting at `i` is exactly `#[cfg(test)]`.
fn is_cfg_test(tokens: &[Token], i: usize) -> bool {
    let expected = [
        Token::Punct('#'),
        Token::Punct('['),
        Token::Ident("cfg".into()),
        Token::Punct('('),
        Token::Ident("test".into()),
        Token::Punct(')'),
        Token::Punct(']'),
    ];
    tokens.get(i..i + expected.len()) == Some(&expected[..])
}

/// Skips the item under the `#[cfg(test)]` at `i` (its other attributes included) and returns
/// the index after it (a braced item ends at its closing brace, others at `;`); a `mod name;` so skipped is a test-only module file.
fn skip_item(tokens: &[Token], mut i: usize, facts: &mut FileFacts) -> usize {
    while tokens.get(i) == Some(&Token::Punct('#')) {
        let mut brackets = 0usize;
        i += 1;
        while i < tokens.len() {
            match tokens[i] {
                Token::Punct('[') => brackets += 1,
                Token::Punct(']') => {
                    brackets -= 1;
                    if brackets == 0 {
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    let mut depth = 0usize;
    let start = i;
    while i < tokens.len() {
        match tokens[i] {
            Token::Punct(';') if depth == 0 => {
                if let [.., Token::Ident(m), Token::Ident(name)] = &tokens[start..i] {
                    if m == "mod" {
                        facts.test_only_children.insert(name.clone());
                    }
                }
                return i + 1;
            }
            // A field, variant or argument under `#[cfg(test)]` ends at its list's `,` or `}`.
            Token::Punct(',') if depth == 0 => return i + 1,
            Token::Punct('}') if depth == 0 => return i,
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// The paths a `use` tree names (without the `use` and the `;`): `a::{b::C, d as e, f::*}`
/// names `a::b::C`, `a::d`, `a::f`; `a::{self}` names `a`.
fn use_tree_paths(tokens: &[Token]) -> Vec<Vec<String>> {
    fn walk(tokens: &[Token], prefix: &[String], out: &mut Vec<Vec<String>>) {
        // Split at top-level commas.
        let mut depth = 0usize;
        let mut start = 0;
        for i in 0..=tokens.len() {
            let at_end = i == tokens.len();
            if !at_end {
                match tokens[i] {
                    Token::Punct('{') => depth += 1,
                    Token::Punct('}') => depth -= 1,
                    _ => {}
                }
            }
            if at_end || (depth == 0 && tokens[i] == Token::Punct(',')) {
                one(&tokens[start..i], prefix, out);
                start = i + 1;
            }
        }
    }
    fn one(tokens: &[Token], prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                Token::Ident(word) if word == "as" => break,
                Token::Ident(word) if word == "self" && !path.is_empty() => {}
                Token::Ident(word) => path.push(word.clone()),
                Token::Punct('{') => {
                    let inner_end = tokens.len().saturating_sub(1);
                    walk(&tokens[i + 1..inner_end], &path, out);
                    return;
                }
                _ => {}
            }
            i += 1;
        }
        if !path.is_empty() {
            out.push(path);
        }
    }
    let mut out = Vec::new();
    walk(tokens, &[], &mut out);
    out
}

/// A crate's files by module path (`["core", "policy"]` → `src/core/policy/mod.rs`).
type Modules = BTreeMap<Vec<String>, String>;

/// The module dependency graph of the given files (path, text): node → the nodes it uses.
fn graph(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    // Crate name and module path of each file.
    let mut located: Vec<(String, Vec<String>, &str, &str)> = Vec::new();
    for (path, text) in files {
        if let Some((krate, module)) = locate(path) {
            located.push((krate, module, path.as_str(), text.as_str()));
        }
    }
    let mut modules: BTreeMap<String, Modules> = BTreeMap::new();
    let mut facts: BTreeMap<&str, FileFacts> = BTreeMap::new();
    for (krate, module, path, text) in &located {
        modules.entry(krate.clone()).or_default().insert(module.clone(), path.to_string());
        facts.insert(path, file_facts(module, &tokenize(text)));
    }
    // Files declared test-only by their parent are not part of the graph.
    let mut test_only: BTreeSet<String> = BTreeSet::new();
    for (krate, module, path, _) in &located {
        for child in &facts[path].test_only_children {
            let mut m = module.clone();
            m.push(child.clone());
            if let Some(file) = modules[krate].get(&m) {
                test_only.insert(file.clone());
            }
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (krate, module, path, _) in &located {
        if test_only.contains(*path) {
            continue;
        }
        let crate_modules = &modules[krate];
        let targets = edges.entry(path.to_string()).or_default();
        for (written_in, written) in &facts[path].paths {
            let Some(absolute) = absolute(written_in, written, &facts[path].children, module) else {
                continue;
            };
            let Some(target) = longest_module(crate_modules, &absolute) else { continue };
            let is_self_or_ancestor = module.starts_with(&target);
            if !is_self_or_ancestor && !test_only.contains(&crate_modules[&target]) {
                targets.insert(crate_modules[&target].clone());
            }
        }
    }
    edges
}

/// The crate and module path of a source file, or `None` for a file outside `src/`.
fn locate(path: &str) -> Option<(String, Vec<String>)> {
    let rest = path.strip_prefix("src/")?.strip_suffix(".rs")?;
    let mut segments: Vec<String> = rest.split('/').map(String::from).collect();
    let krate = if segments.first().is_some_and(|s| s == "bin") && segments.len() > 2 {
        let name = segments[1].clone();
        segments.drain(..2);
        format!("bin {name}")
    } else {
        "lib".to_string()
    };
    if segments.last().is_some_and(|s| s == "mod" || s == "lib" || s == "main") {
        segments.pop();
    }
    Some((krate, segments))
}

/// The absolute module path of `written`, written in module `here` of the file of module
/// `file_module` (whose `mod child;` declarations are `children`); `None` for another crate.
fn absolute(here: &[String], written: &[String], children: &BTreeSet<String>, file_module: &[String]) -> Option<Vec<String>> {
    let (first, rest) = written.split_first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => here.to_vec(),
        "super" => here.get(..here.len().checked_sub(1)?)?.to_vec(),
        child if here == file_module && children.contains(child) => {
            let mut base = here.to_vec();
            base.push(child.to_string());
            base
        }
        _ => return None,
    };
    for segment in rest {
        if segment == "super" {
            base.pop()?;
        } else {
            base.push(segment.clone());
        }
    }
    Some(base)
}

/// The longest prefix of `path` that is a module of the crate.
fn longest_module(modules: &Modules, path: &[String]) -> Option<Vec<String>> {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|prefix| modules.contains_key(prefix))
}

/// Every loop of the graph, each as one concrete cycle `[a, b, …, a]`.
fn loops(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        edges: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        components: Vec<Vec<&'g str>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, node: &'g str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.edges.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top);
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.components.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in edges.keys() {
        if !tarjan.index.contains_key(node.as_str()) {
            tarjan.visit(node);
        }
    }
    tarjan.components.iter().map(|component| one_cycle(edges, component)).collect()
}

/// A shortest cycle through the first node of a strongly connected component (breadth-first
/// inside it).
fn one_cycle(edges: &BTreeMap<String, BTreeSet<String>>, component: &[&str]) -> Vec<String> {
    let inside: BTreeSet<&str> = component.iter().copied().collect();
    let mut start: Vec<&str> = component.to_vec();
    start.sort();
    let from = start[0];
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(node) = queue.pop_front() {
        for next in edges.get(node).into_iter().flatten() {
            let next = next.as_str();
            if next == from {
                let mut cycle = vec![from.to_string(), node.to_string()];
                let mut at = node;
                while at != from {
                    at = came_from[at];
                    cycle.push(at.to_string());
                }
                cycle.reverse();
                return cycle;
            }
            if inside.contains(next) && !came_from.contains_key(next) && next != from {
                came_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    start.iter().map(|s| s.to_string()).collect()
}

/// Every `.rs` file under `dir`, as (path relative to the crate root, text).
fn read_sources(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir).expect("source folder readable").map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            out.push((relative, fs::read_to_string(&path).unwrap()));
        }
    }
}

fn render(cycle: &[String]) -> String {
    cycle.join(" → ")
}

/// Loops that remain, each as the test renders it; the test fails when one is broken, so that
/// the list only shrinks. The service's one: `revocations.rs` holds both the kill switch's store
/// (which the approval service checks holds against) and its HTTP handlers (which use the
/// service's error plumbing); it goes when the store and the handlers are separate modules.
const KNOWN_LOOPS: &[&str] = &[
    "src/service/approvals/http.rs → src/service/approvals/service.rs → src/service/revocations.rs → src/service/approvals/http.rs",
];

#[test]
fn no_module_imports_another_in_a_loop() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    read_sources(root, &root.join("src"), &mut files);
    let edges = graph(&files);
    assert!(edges.len() > 100, "the graph covers the source tree ({} files read)", edges.len());
    assert!(
        edges["src/core/exchange.rs"].contains("src/core/policy/mod.rs"),
        "the graph sees the exchange use the policy"
    );
    let found = loops(&edges);
    let known = |cycle: &[String]| KNOWN_LOOPS.iter().any(|known| render(cycle) == *known);
    let new: Vec<String> = found.iter().filter(|cycle| !known(cycle)).map(|cycle| render(cycle)).collect();
    assert!(new.is_empty(), "modules import each other in a loop:\n{}", new.join("\n"));
    let gone: Vec<&str> =
        KNOWN_LOOPS.iter().copied().filter(|known| !found.iter().any(|cycle| render(cycle) == *known)).collect();
    assert!(gone.is_empty(), "these loops are broken now; remove them from KNOWN_LOOPS:\n{}", gone.join("\n"));
}

fn sources(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files.iter().map(|(path, text)| (path.to_string(), text.to_string())).collect()
}

#[test]
fn a_loop_through_a_parent_and_another_folder_is_named() {
    let files = sources(&[
        ("src/lib.rs", "pub mod core;"),
        ("src/core/mod.rs", "pub mod approval;\npub mod identity;\npub mod policy;"),
        ("src/core/policy/mod.rs", "pub mod approvals;\nuse approvals::Trigger;\npub struct Policy;"),
        ("src/core/policy/approvals.rs", "use crate::core::approval::{Condition, self};\nuse super::Checker;"),
        ("src/core/approval.rs", "pub fn f(c: &crate::core::identity::Caller) {}"),
        ("src/core/identity.rs", "use crate::core::policy::Policy;"),
    ]);
    let found = loops(&graph(&files));
    assert_eq!(
        found,
        vec![vec![
            "src/core/approval.rs".to_string(),
            "src/core/identity.rs".into(),
            "src/core/policy/mod.rs".into(),
            "src/core/policy/approvals.rs".into(),
            "src/core/approval.rs".into(),
        ]]
    );
}

#[test]
fn children_using_their_parent_test_code_comments_and_strings_make_no_loop() {
    let files = sources(&[
        ("src/lib.rs", "pub mod a;\npub mod b;"),
        ("src/a/mod.rs", "pub mod child;\npub use child::X;\npub struct Y;"),
        ("src/a/child.rs", "use super::Y; pub struct X;"),
        (
            "src/b.rs",
            "// crate::a::child\nconst S: &str = \"crate::a::Y\";\nconst R: &str = r#\"use crate::a;\"#;\n\
             pub(in crate::a) fn f() {}\n#[cfg(test)]\nmod tests { use crate::a::Y; }\n#[cfg(test)]\nmod fixtures;",
        ),
        ("src/b/fixtures.rs", "use crate::a::Y;"),
        ("src/a/other.rs", "use crate::b;"),
    ]);
    let edges = graph(&files);
    assert!(loops(&edges).is_empty());
    assert!(edges["src/b.rs"].is_empty(), "nothing in b.rs is an import: {:?}", edges["src/b.rs"]);
    assert!(edges["src/a/mod.rs"].contains("src/a/child.rs"), "a parent's use of its child counts");
    assert!(!edges.contains_key("src/b/fixtures.rs"), "a test-only module file is skipped");
}

#[test]
fn a_sibling_loop_and_an_inline_module_resolve_like_the_compiler() {
    let files = sources(&[
        ("src/lib.rs", "pub mod budget;"),
        ("src/budget/mod.rs", "pub mod lease;\npub mod ledger;"),
        ("src/budget/lease.rs", "mod wire { use super::super::ledger::Entry; }"),
        ("src/budget/ledger.rs", "fn g() -> super::lease::Grant { todo!() }"),
    ]);
    let found = loops(&graph(&files));
    assert_eq!(found.len(), 1);
    assert_eq!(render(&found[0]), "src/budget/lease.rs → src/budget/ledger.rs → src/budget/lease.rs");
}

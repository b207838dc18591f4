//! docs/architecture.md names only files and folders that exist.
//!
//! Every backticked path in the page that starts with `src/`, `tests/`, `benches/`, `scripts/`,
//! `envoy/` or `docs/` is looked up from the crate root (a trailing `/` names a folder). Limits:
//! file names written alone inside a row (`config.rs`) are not resolved against their folder.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

const ROOTS: &[&str] = &["src/", "tests/", "benches/", "scripts/", "envoy/", "docs/"];

/// The backticked spans of `text` that look like repository paths.
fn named_paths(text: &str) -> Vec<&str> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| ROOTS.iter().any(|root| span.starts_with(root)))
        .filter(|span| !span.contains(['*', ' ', '<', '{']))
        .collect()
}

#[test]
fn every_path_the_architecture_page_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let paths = named_paths(&page);
    assert!(paths.contains(&"src/core/exchange.rs"), "the page names the exchange: {paths:?}");
    let missing: Vec<&str> = paths.iter().copied().filter(|path| !root.join(path).exists()).collect();
    assert!(missing.is_empty(), "docs/architecture.md names paths that do not exist: {missing:?}");
}

#[test]
fn only_backticked_repository_paths_are_checked() {
    let text = "see `src/core/a.rs`, `config.rs`, `tests/e2e/*.py` and src/core/b.rs; `docs/x.md`";
    assert_eq!(named_paths(text), vec!["src/core/a.rs", "docs/x.md"]);
}

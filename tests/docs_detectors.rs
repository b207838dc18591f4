//! docs/dlp.md's "Built-in detectors" table is the catalog: one row per built-in detector, in the
//! catalog's order, with its id, category and description (which states the source format and the
//! checksum, if any). `python3 scripts/dlp_detector_table.py` rewrites the table from
//! `warden redact --list` after the catalog changes.
#![allow(clippy::expect_used)]

use warden::core::dlp::catalog;
use warden::core::dlp::detector::Category;

const HEADING: &str = "## Built-in detectors";

fn expected_rows() -> Vec<String> {
    catalog::builtin()
        .iter()
        .map(|spec| {
            let category = match spec.category {
                Category::Credential => "credential",
                Category::Pii => "pii",
            };
            format!("| `{}` | {category} | {} |", spec.id, spec.description.replace('|', "\\|"))
        })
        .collect()
}

fn documented_rows() -> Vec<String> {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/dlp.md")).expect("docs/dlp.md");
    let section = docs.split_once(HEADING).map(|(_, rest)| rest).expect("docs/dlp.md has no detector table");
    // The table is the first run of rows after the heading; later sections have tables of their own.
    section
        .lines()
        .skip_while(|line| !line.starts_with("| `"))
        .take_while(|line| line.starts_with("| `"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_detector_table_in_the_docs_is_the_catalog() {
    let expected = expected_rows();
    let documented = documented_rows();
    let missing: Vec<&String> = expected.iter().filter(|row| !documented.contains(row)).collect();
    let stale: Vec<&String> = documented.iter().filter(|row| !expected.contains(row)).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/dlp.md is out of date (run `python3 scripts/dlp_detector_table.py`)\nmissing:\n{}\nstale:\n{}",
        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
        stale.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
    );
    assert_eq!(documented, expected, "docs/dlp.md lists the detectors in another order");
}

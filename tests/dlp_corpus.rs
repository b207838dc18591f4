//! The DLP evaluation set as a regression test (docs/dlp.md, "Evaluation").
//!
//! Each test regenerates the set with `python3 tests/dlp-corpus/generate.py` (standard library
//! only; a missing `python3` fails the test, it is not skipped) into its own directory under the
//! system temp dir, then scores it with `warden redact --eval DIR --json`:
//!
//! * the default detectors hold `tests/dlp-corpus/baseline.json`: no category's or kind's recall
//!   below its floor, no clean category with more false positives than its ceiling, no streamed
//!   output different from the one-shot output;
//! * the generator writes the same bytes on every run and the set has its promised size;
//! * the scorer itself: caught / partial / missed / false positive on a hand-written set, and the
//!   generator's own sample kinds (`selftest_kinds.py`) through every wrapper.
//!
//! After an intended change of the numbers: `make eval-dlp UPDATE_BASELINE=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The generator's promises (generate.py: TARGET_SECRETS, MIN_PER_KIND; clean.py's categories).
const MIN_SECRETS: usize = 2000;
const MIN_PER_KIND: usize = 10;
const MIN_CLEAN: usize = 1000;

/// A fresh, empty directory for one test.
fn scratch_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warden-dlp-corpus-{}-{name}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the generator into `out` with extra arguments; panics with its stderr when it fails.
fn generate(out: &Path, extra: &[&str]) {
    let output = Command::new("python3")
        .arg(Path::new(ROOT).join("tests/dlp-corpus/generate.py"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("python3 is required to generate the DLP evaluation set (tests/dlp-corpus): {e}"));
    assert!(output.status.success(), "generate.py failed:\n{}", String::from_utf8_lossy(&output.stderr));
}

/// `warden redact --eval DIR --json`: the exit code and the report.
fn evaluate(dir: &Path) -> (i32, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["redact", "--json", "--eval"])
        .arg(dir)
        .env_remove("WARDEN_MASK_KEY")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr:\n{}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code().unwrap_or(-1), report)
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn count(value: &Value, field: &str) -> u64 {
    value[field].as_u64().unwrap_or_else(|| panic!("{field} missing in {value}"))
}

/// `a/b ≥ c/d` without rounding.
fn at_least(a: u64, b: u64, c: u64, d: u64) -> bool {
    u128::from(a) * u128::from(d) >= u128::from(c) * u128::from(b)
}

/// Every way the report falls short of the baseline.
fn regressions(report: &Value, baseline: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for (category, floor) in baseline["recall"].as_object().unwrap() {
        let now = &report["categories"][category];
        let (caught, total) = (count(now, "caught"), count(now, "total"));
        if !at_least(caught, total, count(floor, "caught"), count(floor, "total")) {
            found.push(format!(
                "{category} recall fell: {caught}/{total}, floor {}/{}",
                floor["caught"], floor["total"]
            ));
        }
    }
    for (kind, floor) in baseline["kinds"].as_object().unwrap() {
        let Some(now) = report["kinds"].get(kind) else {
            found.push(format!("kind {kind} is no longer in the set (renamed? update the baseline)"));
            continue;
        };
        let (caught, total) = (count(now, "caught"), count(now, "total"));
        let (floor_caught, floor_total) = (count(floor, "caught"), count(floor, "total"));
        // Same samples: the same count. Rescaled set (more kinds, fewer samples each): the same
        // rate, give or take one sample.
        let holds = if total == floor_total {
            caught >= floor_caught
        } else {
            at_least(caught + 1, total, floor_caught, floor_total)
        };
        if !holds {
            found.push(format!("kind {kind}: {caught}/{total} caught, floor {floor_caught}/{floor_total}"));
        }
    }
    for (category, ceiling) in baseline["false_positives"].as_object().unwrap() {
        let Some(now) = report["clean"].get(category) else {
            found.push(format!("clean category {category} is no longer in the set"));
            continue;
        };
        let (changed, total) = (count(now, "changed"), count(now, "total"));
        if at_least(changed, total, count(ceiling, "changed") + 1, count(ceiling, "total")) {
            found.push(format!(
                "{category}: {changed}/{total} clean texts changed, ceiling {}/{}",
                ceiling["changed"], ceiling["total"]
            ));
        }
    }
    let differences = report["streaming"]["differences"].as_array().unwrap();
    if !differences.is_empty() {
        found.push(format!("streaming differs from one-shot for {differences:?}"));
    }
    found
}

#[test]
fn the_default_detectors_hold_the_baseline_on_the_evaluation_set() {
    let dir = scratch_dir("baseline");
    generate(&dir, &[]);
    let (code, report) = evaluate(&dir);
    let baseline: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(ROOT).join("tests/dlp-corpus/baseline.json")).unwrap())
            .unwrap();
    let found = regressions(&report, &baseline);
    assert!(
        found.is_empty(),
        "the evaluation set regressed (after an intended change: make eval-dlp UPDATE_BASELINE=1):\n  {}",
        found.join("\n  ")
    );
    assert_eq!(code, 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_generator_writes_the_same_bytes_on_every_run() {
    let (first, second) = (scratch_dir("first"), scratch_dir("second"));
    generate(&first, &[]);
    generate(&second, &[]);
    for file in ["secrets.jsonl", "clean.jsonl"] {
        let (a, b) = (std::fs::read(first.join(file)).unwrap(), std::fs::read(second.join(file)).unwrap());
        assert!(!a.is_empty());
        assert!(a == b, "{file} differs between two runs of generate.py");
    }
    let _ = std::fs::remove_dir_all(first);
    let _ = std::fs::remove_dir_all(second);
}

#[test]
fn the_set_has_its_promised_size_and_every_kind_its_samples() {
    let dir = scratch_dir("size");
    generate(&dir, &[]);
    let secrets = lines(&dir.join("secrets.jsonl"));
    let clean = lines(&dir.join("clean.jsonl"));
    assert!(secrets.len() >= MIN_SECRETS, "{} secrets", secrets.len());
    assert!(clean.len() >= MIN_CLEAN, "{} clean texts", clean.len());
    let kinds: BTreeSet<&str> = secrets.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    for kind in &kinds {
        let n = secrets.iter().filter(|s| s["kind"] == *kind).count();
        assert!(n >= MIN_PER_KIND, "{kind}: {n} samples");
    }
    let categories: BTreeSet<&str> = clean.iter().map(|c| c["category"].as_str().unwrap()).collect();
    assert!(categories.len() >= 10, "{categories:?}");
    let ids: BTreeSet<&str> = secrets.iter().chain(&clean).map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), secrets.len() + clean.len(), "ids are unique");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_sample_kinds_go_through_every_wrapper_with_exact_spans() {
    let dir = scratch_dir("selftest");
    let kinds = Path::new(ROOT).join("tests/dlp-corpus/selftest_kinds.py");
    generate(&dir, &["--families", "", "--extra", kinds.to_str().unwrap()]);
    let secrets = lines(&dir.join("secrets.jsonl"));
    let wrappers = |kind: &str| {
        secrets
            .iter()
            .filter(|s| s["kind"] == kind)
            .map(|s| s["wrapper"].as_str().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(wrappers("selftest-named").len(), 12, "a value goes through every secret wrapper");
    assert_eq!(wrappers("selftest-pem").len(), 5, "a multi-line snippet through every snippet wrapper");
    for sample in &secrets {
        let text = sample["text"].as_str().unwrap();
        for span in sample["secrets"].as_array().unwrap() {
            let part = text.get(count(span, "start") as usize..count(span, "end") as usize);
            assert!(part.is_some_and(|p| !p.is_empty()), "span {span} of {}", sample["id"]);
        }
        // The connection string's two private parts are listed separately, in text order.
        if sample["kind"] == "selftest-connection" {
            let spans = sample["secrets"].as_array().unwrap();
            assert_eq!(spans.len(), 2);
            assert!(count(&spans[0], "end") < count(&spans[1], "start"));
            assert!(text[count(&spans[0], "start") as usize..].starts_with("svc_"));
        }
    }
    let (code, report) = evaluate(&dir);
    assert_eq!(code, 0, "streaming differs: {}", report["streaming"]);
    assert_eq!(report["kinds"].as_object().unwrap().len(), 5, "two shapes of one kind are scored as one kind");
    assert!(secrets.iter().any(|s| s["id"] == "selftest-prefixed#2/0" && s["kind"] == "selftest-prefixed"));
    for kind in ["selftest-pem", "selftest-prefixed"] {
        let score = &report["kinds"][kind];
        assert_eq!(count(score, "caught"), count(score, "total"), "{kind}: {score}");
    }
    let pem = &report["kinds"]["selftest-pem"];
    assert_eq!(count(&pem["detectors"], "private-key"), count(pem, "total"));
    // Where only the password is masked (the URL detector keeps the user name visible), the
    // catch is partial; a wrapper that assigns the whole URL to a secret name masks it all.
    let connection = &report["kinds"]["selftest-connection"];
    assert!(count(connection, "partial") > 0, "{connection}");
    assert!(count(connection, "caught") < count(connection, "total"), "{connection}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_scorer_tells_caught_partial_missed_and_false_positives_apart() {
    let dir = scratch_dir("scorer");
    let key = "AKIA7QK2M9XZ4B8T1VWE";
    let sample = |id: &str, text: &str, start: usize, end: usize| {
        serde_json::json!({"id": id, "kind": id, "category": "credential", "wrapper": "plain", "text": text, "secrets": [{"start": start, "end": end}]}).to_string()
    };
    let caught = format!("é aws_access_key_id = {key}");
    let caught_at = caught.find(key).unwrap() + 4;
    let partial = format!("key {key} zzzzzzzzzz");
    let missed = "the word is correcthorsebatterystaple ok";
    let secrets = [
        sample("caught", &caught, caught_at, caught.len()),
        sample("partial", &partial, 8, partial.len()),
        sample("missed", missed, 12, 37),
    ];
    std::fs::write(dir.join("secrets.jsonl"), secrets.join("\n") + "\n").unwrap();
    let clean = [
        serde_json::json!({"id": "c1", "category": "prose", "text": "nothing to see here"}).to_string(),
        serde_json::json!({"id": "c2", "category": "prose", "text": format!("id {key}")}).to_string(),
        serde_json::json!({"id": "c3", "category": "code", "text": "let x = 1;"}).to_string(),
    ];
    std::fs::write(dir.join("clean.jsonl"), clean.join("\n") + "\n").unwrap();
    let (code, report) = evaluate(&dir);
    assert_eq!(code, 0);
    let kinds = &report["kinds"];
    assert_eq!((count(&kinds["caught"], "caught"), count(&kinds["caught"], "total")), (1, 1));
    assert_eq!(count(&kinds["caught"]["detectors"], "aws-access-key"), 1);
    assert_eq!(count(&kinds["partial"], "partial"), 1);
    assert_eq!(count(&kinds["missed"], "missed"), 1);
    assert_eq!(kinds["missed"]["not_caught"], serde_json::json!(["missed"]));
    assert_eq!(count(&report["categories"]["credential"], "caught"), 1);
    assert_eq!(count(&report["clean"]["prose"], "changed"), 1);
    assert_eq!(report["clean"]["prose"]["changed_ids"], serde_json::json!(["c2"]));
    assert_eq!(count(&report["clean"]["code"], "changed"), 0);
    assert_eq!(count(&report["clean"]["all"], "total"), 3);
    assert_eq!(count(&report["streaming"], "texts"), 6);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_span_off_a_character_boundary_is_an_error_naming_the_line() {
    let dir = scratch_dir("bad-span");
    let line = serde_json::json!({"id": "x", "kind": "k", "category": "pii", "wrapper": "plain", "text": "Zoë", "secrets": [{"start": 0, "end": 3}]});
    std::fs::write(dir.join("secrets.jsonl"), format!("{line}\n")).unwrap();
    std::fs::write(dir.join("clean.jsonl"), "").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_warden")).args(["redact", "--eval"]).arg(&dir).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("secrets.jsonl:1:") && stderr.contains("character boundaries"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_drop_in_recall_or_a_rise_in_false_positives_is_a_regression() {
    let baseline = serde_json::json!({
        "recall": {"credential": {"caught": 9, "total": 10}},
        "kinds": {"a": {"caught": 9, "total": 10}, "b": {"caught": 10, "total": 10}},
        "false_positives": {"code": {"changed": 1, "total": 100}},
    });
    let report = |credential: u64, a: (u64, u64), code: u64, differences: Value| {
        serde_json::json!({
            "categories": {"credential": {"caught": credential, "total": 10}},
            "kinds": {"a": {"caught": a.0, "total": a.1}, "b": {"caught": 10, "total": 10}, "new": {"caught": 0, "total": 10}},
            "clean": {"code": {"changed": code, "total": 100}},
            "streaming": {"differences": differences},
        })
    };
    assert!(regressions(&report(9, (9, 10), 1, serde_json::json!([])), &baseline).is_empty());
    assert!(regressions(&report(10, (10, 10), 0, serde_json::json!([])), &baseline).is_empty());
    assert_eq!(regressions(&report(8, (9, 10), 1, serde_json::json!([])), &baseline).len(), 1);
    assert_eq!(regressions(&report(9, (8, 10), 1, serde_json::json!([])), &baseline).len(), 1);
    assert_eq!(regressions(&report(9, (9, 10), 2, serde_json::json!([])), &baseline).len(), 1);
    assert_eq!(regressions(&report(9, (9, 10), 1, serde_json::json!(["x/1"])), &baseline).len(), 1);
    // A rescaled set keeps the rate, give or take one sample.
    assert!(regressions(&report(9, (17, 20), 1, serde_json::json!([])), &baseline).is_empty());
    assert_eq!(regressions(&report(9, (16, 20), 1, serde_json::json!([])), &baseline).len(), 1);
    let mut renamed = report(9, (9, 10), 1, serde_json::json!([]));
    renamed["kinds"].as_object_mut().unwrap().remove("b");
    assert_eq!(regressions(&renamed, &baseline).len(), 1);
}

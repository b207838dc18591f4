//! Spend as people see it: the real `warden serve` ingests records carrying usage and cost over
//! HTTP, then `warden usage` reads its database (table and JSON, windows, grouping, unpriced
//! records, bad arguments) and an auditor reads the `/usage` page (others are refused; every
//! label is escaped).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::{json, Value};

mod common;

use common::{run, Serve, Workspace};

const POLICY: &str = common::AUDIT_POLICY;

/// 2026-12-07T00:00:00Z in ms.
const DEC_7: i64 = 1_796_601_600_000;
const HOUR: i64 = 3_600_000;
const EVIL: &str = r#"<img src=x onerror=alert(1)>"#;

/// A record as the gateway writes it, with usage and (unless `null`) a cost.
fn record(seq: i64, time: i64, subject: &str, role: &str, model: &str, usage: Value, cost: Value) -> Value {
    json!({"version": 1, "source": "gw-usage", "seq": seq, "id": format!("gw-usage-{seq}"),
           "session_id": format!("s-{subject}"), "job_id": if subject == "ci-bot" { json!("org/app#7") } else { json!(null) },
           "identity": {"subject": subject, "role": role, "issuer": "warden-demo", "groups": [], "job": {}},
           "model": model, "endpoint": "messages", "method": "POST", "path": "/v1/messages",
           "decision": {"allowed": true}, "outcome": "completed",
           "timings": {"start": time, "end": time + 5}, "usage": usage, "cost_nanos": cost})
}

fn records() -> Vec<Value> {
    let sonnet = "claude-sonnet-4-6";
    vec![
        record(
            1,
            DEC_7 + HOUR,
            "alice",
            "developer",
            sonnet,
            json!({"input_tokens": 1000, "output_tokens": 200}),
            json!(6_000_000),
        ),
        record(
            2,
            DEC_7 + 2 * HOUR,
            "alice",
            "developer",
            sonnet,
            json!({"input_tokens": 10, "output_tokens": 50, "cache_read_input_tokens": 5000, "cache_creation_input_tokens": 100}),
            json!(2_500_000),
        ),
        record(
            3,
            DEC_7 + 3 * HOUR,
            "bob",
            "analyst",
            "claude-haiku-4-5",
            json!({"input_tokens": 300, "output_tokens": 30}),
            json!(450_000),
        ),
        // Not priced: its tokens count, its cost does not.
        record(
            4,
            DEC_7 + 4 * HOUR,
            "bob",
            "analyst",
            "claude-haiku-4-5",
            json!({"input_tokens": 70, "output_tokens": 7}),
            json!(null),
        ),
        record(
            5,
            DEC_7 + 25 * HOUR,
            "ci-bot",
            "developer",
            sonnet,
            json!({"input_tokens": 5, "output_tokens": 5}),
            json!(90_000_000),
        ),
        // The day before the window the tests look at.
        record(
            6,
            DEC_7 - HOUR,
            "alice",
            "developer",
            sonnet,
            json!({"input_tokens": 1, "output_tokens": 1}),
            json!(1_000_000_000),
        ),
        record(7, DEC_7 + 5 * HOUR, EVIL, EVIL, sonnet, json!({"input_tokens": 1}), json!(1)),
    ]
}

/// A service that stored [`records`]; (workspace, running service).
fn stored(name: &str) -> (Workspace, Serve) {
    let ws = Workspace::new("usage", name, POLICY);
    let serve = ws.start(&[]);
    let body: String = records().iter().map(|r| format!("{r}\n")).collect();
    let (status, answer) = common::post_records(&serve.base, &body, &ws.gateway_token());
    assert_eq!(status, 200, "{answer}");
    (ws, serve)
}

fn usage(ws: &Workspace, args: &[&str]) -> (i32, String, String) {
    let db = ws.path("approvals.db");
    let mut all = vec!["usage", "--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all, &[])
}

fn usage_json(ws: &Workspace, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = usage(ws, &all);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn page(serve: &Serve, path: &str, token: Option<&str>) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let mut request = agent.get(&format!("{}{path}", serve.base));
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let mut response = request.call().unwrap();
    let csp =
        response.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default(), csp)
}

#[test]
fn usage_sums_tokens_and_cost_per_subject_over_a_window_as_json() {
    let (ws, _serve) = stored("json");
    let report = usage_json(&ws, &["--since", "2026-12-07", "--until", "2026-12-08"]);
    assert_eq!(report["since"], "2026-12-07T00:00:00Z");
    assert_eq!(report["until"], "2026-12-09T00:00:00Z", "a plain --until date includes its day");
    let rows = report["rows"].as_array().unwrap();
    let subjects: Vec<&str> = rows.iter().map(|r| r["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["ci-bot", "alice", "bob", EVIL], "most expensive first");
    let alice = &rows[1];
    assert_eq!(alice["requests"], 2);
    assert_eq!((alice["input_tokens"].as_u64(), alice["output_tokens"].as_u64()), (Some(1010), Some(250)));
    assert_eq!((alice["cache_read_tokens"].as_u64(), alice["cache_creation_tokens"].as_u64()), (Some(5000), Some(100)));
    assert_eq!((alice["cost_nanos"].as_u64(), alice["cost"].as_str()), (Some(8_500_000), Some("0.008500000")));
    let bob = &rows[2];
    assert_eq!(
        (bob["input_tokens"].as_u64(), bob["cost_nanos"].as_u64(), bob["unpriced_requests"].as_u64()),
        (Some(370), Some(450_000), Some(1))
    );
    assert_eq!(report["total"]["requests"], 6);
    assert_eq!(report["total"]["cost_nanos"], 6_000_000 + 2_500_000 + 450_000 + 90_000_000 + 1);
    assert_eq!(report["total"]["unpriced_requests"], 1);
}

#[test]
fn usage_groups_by_role_model_job_and_day_in_a_chosen_zone() {
    let (ws, _serve) = stored("grouping");
    let by_role_model = usage_json(&ws, &["--by", "role,model"]);
    let keys: Vec<(String, String)> = by_role_model["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["role"].as_str().unwrap().to_string(), r["model"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(keys[0], ("developer".to_string(), "claude-sonnet-4-6".to_string()));
    assert!(keys.contains(&("analyst".to_string(), "claude-haiku-4-5".to_string())));
    let jobs = usage_json(&ws, &["--by", "job"]);
    let ci = jobs["rows"].as_array().unwrap().iter().find(|r| r["job"] == "org/app#7").unwrap();
    assert_eq!(ci["cost_nanos"], 90_000_000);
    // Days at UTC-02:00: 01:00Z on the 7th is the 6th there, 01:00Z on the 8th the 7th.
    let days = usage_json(&ws, &["--by", "day", "--utc-offset", "-02:00"]);
    let days: Vec<(String, u64)> = days["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["day"].as_str().unwrap().to_string(), r["requests"].as_u64().unwrap()))
        .collect();
    assert_eq!(days, [("2026-12-06".to_string(), 2), ("2026-12-07".to_string(), 5)]);
    let limited = usage_json(&ws, &["--by", "subject", "--limit", "1"]);
    assert_eq!((limited["rows"].as_array().unwrap().len(), limited["groups"].as_u64()), (1, Some(4)));
}

#[test]
fn the_usage_table_lines_up_and_flags_unpriced_requests() {
    let (ws, _serve) = stored("table");
    let (code, out, err) = usage(&ws, &["--since", "2026-12-07T00:00:00Z", "--until", "2026-12-07T12:00:00Z"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("Usage from 2026-12-07T00:00:00Z to 2026-12-07T12:00:00Z (end excluded), 3 groups"),
        "{out}"
    );
    assert!(lines[1].starts_with("SUBJECT") && lines[1].ends_with("COST"), "{out}");
    let alice = lines.iter().find(|l| l.starts_with("alice")).unwrap();
    assert!(alice.ends_with("0.0085"), "{out}");
    let bob = lines.iter().find(|l| l.starts_with("bob")).unwrap();
    assert!(bob.ends_with("0.0005*"), "{out}");
    assert!(out.contains("* 1 request(s) used tokens but carry no cost"), "{out}");
    let total = lines.iter().find(|l| l.starts_with("TOTAL")).unwrap();
    assert_eq!(total.len(), lines[1].len(), "the columns line up:\n{out}");
}

#[test]
fn usage_refuses_bad_arguments_and_databases_with_a_clear_message() {
    let (ws, _serve) = stored("errors");
    for (args, expected) in [
        (vec!["--since", "last tuesday"], "--since: \"last tuesday\" is not a time"),
        (vec!["--until", "2026-02-30"], "--until: \"2026-02-30\" is not a time"),
        (vec!["--since", "2026-12-08", "--until", "2026-12-07"], "--until must be after --since"),
        (vec!["--by", "team"], "--by: unknown dimension \"team\""),
        (vec!["--by", "role,role"], "--by: role is named twice"),
        (vec!["--utc-offset", "+15:00"], "--utc-offset"),
    ] {
        let (code, out, err) = usage(&ws, &args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let (code, _, err) = run(&["usage", "--db", "/nonexistent/warden.db"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn auditors_read_the_usage_page_and_others_are_refused() {
    let (ws, serve) = stored("page");
    let auditor = ws.mint("carol", "audit");
    let (status, html, csp) = page(&serve, "/usage?from=2026-12-07&to=2026-12-08&tz=0", Some(&auditor));
    assert_eq!(status, 200, "{html}");
    // The console's one script from this origin; nothing inline.
    assert!(csp.contains("; script-src 'self'; ") && csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(html.matches("<polyline").count(), 3, "developer, analyst and the injected role: {html}");
    assert!(html.contains(r#"data-role="developer""#) && html.contains(r#"data-role="analyst""#));
    assert!(
        html.contains(r#"<tr class="spender" data-subject="ci-bot" data-requests="1" data-cost-nanos="90000000">"#),
        "{html}"
    );
    assert!(!html.contains(EVIL) && html.contains("&lt;img src=x onerror=alert(1)&gt;"), "{html}");
    assert!(html.contains(r#"id="usage-unpriced""#));
    // A window without any request still draws (flat lines) and says so.
    let (status, empty, _) = page(&serve, "/usage?from=2025-01-01&to=2025-01-31&tz=60", Some(&auditor));
    assert_eq!(status, 200);
    assert!(empty.contains(r#"id="no-usage""#) && empty.contains("UTC+01:00"), "{empty}");
    let (status, bad, _) = page(&serve, "/usage?from=2026-12-09&to=2026-12-01&tz=0", Some(&auditor));
    assert_eq!(status, 400);
    assert!(bad.contains("the window&#39;s end must be after its start"), "{bad}");
    // Deciding reviews is not reading spend; nobody anonymous either.
    let (status, refused, _) = page(&serve, "/usage", Some(&ws.mint("dave", "leads")));
    assert_eq!(status, 403);
    assert!(refused.contains("approvals.auditors") && !refused.contains("ci-bot"), "{refused}");
    let (status, anonymous, _) = page(&serve, "/usage", None);
    assert_eq!(status, 200, "a same-site hop first");
    assert!(!anonymous.contains("ci-bot"));
    assert_eq!(page(&serve, "/usage?again=1", None).0, 303);
}

//! `warden serve` as the gateway and approvers use it: the real binary on a free 127.0.0.1 port,
//! driven over HTTP — holds answered by decisions, the reviews API's rules, the approver page's
//! login and form flow, the CLI, the webhook, restarts — with every verdict checked by the
//! filter's own verifier (`warden::core::approval::verdict::verify`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ct_codecs::{Base64, Decoder};
use serde_json::{json, Value};
use warden::core::approval::verdict::{verify, Decision};

mod common;

use common::{run, Serve as Server, Workspace};

const FP: &str = "5e3c0b1f9a7d2e4c6b8a0f1e3d5c7b9a1f2e3d4c5b6a7980a1b2c3d4e5f60718";
const FP2: &str = "aaaabbbbccccddddeeeeffff000011112222333344445555666677778888999f";

fn policy(two_person: bool, review_ttl: &str) -> String {
    format!(
        r#"version: 1
identity:
  providers:
    - {{ name: demo, issuer: warden-demo, audiences: [warden], jwks: {{ file: jwks.json }} }}
credentials:
  anthropic: {{ env: ANTHROPIC_API_KEY }}
  approvals-token: {{ env: WARDEN_APPROVALS_TOKEN }}
  approvals-verdict-key: {{ env: WARDEN_APPROVALS_VERDICT_KEY }}
approvals:
  service: {{ url: "http://127.0.0.1:8787", token: approvals-token, verdict_key: approvals-verdict-key }}
  hold: 30s
  review_ttl: {review_ttl}
  grant_ttl: 15m
bindings:
  - {{ group: eng, role: developer }}
roles:
  developer:
    credential: anthropic
    models: ["claude-*"]
    approval:
      approvers: [leads]
      two_person: {two_person}
      triggers: [{{ reason: opus_model, models: ["claude-opus-*"] }}]
"#
    )
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A plain HTTP answer.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    fn error_type(&self) -> String {
        self.json()["error"]["type"].as_str().unwrap_or_default().to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<(&str, String)>) -> Answer {
    let agent = agent();
    let response = match body {
        Some((content_type, body)) => {
            let mut req = agent.post(url).header("content-type", content_type);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.send(body.as_str())
        }
        None if method == "POST" => {
            let mut req = agent.post(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.send_empty()
        }
        None => {
            let mut req = agent.get(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        }
    };
    let mut response = response.unwrap();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Answer { status, headers, body }
}

fn hold_body(subject: &str, fingerprint: &str, hold_seconds: u64, excerpt: &str) -> Value {
    json!({
        "version": 1, "request_id": "req_warden_test", "fingerprint": fingerprint,
        "caller": {"subject": subject, "issuer": "warden-demo", "groups": ["eng"], "job": {"repository": "org/repo"}},
        "role": "developer", "reasons": ["opus_model"], "model": "claude-opus-4-1", "tools": ["Bash", "Read"],
        "max_tokens": 1024, "body_bytes": 5123, "mcp_servers": true, "excerpt": excerpt, "hold_seconds": hold_seconds,
        "mcp_server_urls": ["https://mcp.example.com/a?key=[REDACTED:x]"], "messages": 5,
        "system_excerpt": "You are <b>careful</b>", "prefill_excerpt": "Sure:"
    })
}

fn hold(server: &Server, ws: &Workspace, body: &Value) -> Answer {
    let auth = format!("Bearer {}", ws.gateway_token());
    request(
        "POST",
        &format!("{}/v1/holds", server.base),
        &[("authorization", &auth)],
        Some(("application/json", body.to_string())),
    )
}

/// The verdict of a hold answer, verified as the filter does.
fn verdict(ws: &Workspace, answer: &Answer, subject: &str, fingerprint: &str) -> Decision {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let token = answer.json()["verdict"].as_str().unwrap().to_string();
    verify(&token, &ws.verdict_key(), fingerprint, ("warden-demo", subject), now()).unwrap()
}

fn api(server: &Server, method: &str, path: &str, token: &str, body: Option<Value>) -> Answer {
    let auth = format!("Bearer {token}");
    request(
        method,
        &format!("{}{path}", server.base),
        &[("authorization", &auth)],
        body.map(|b| ("application/json", b.to_string())),
    )
}

/// Waits until a pending review exists for `subject` and returns its id.
fn pending_review(server: &Server, approver: &str, subject: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let answer = api(server, "GET", "/v1/reviews?status=pending", approver, None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let found = answer.json()["reviews"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["requester"]["subject"] == subject)
            .map(|r| r["id"].as_str().unwrap().to_string());
        if let Some(id) = found {
            return id;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no pending review for {subject}:\n{}", server.log());
}

fn in_background<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    std::thread::spawn(f)
}

#[test]
fn a_held_request_is_approved_while_it_waits_and_the_verdict_verifies_in_the_filter() {
    let ws = Arc::new(Workspace::new("serve", "approve", &policy(false, "1h")));
    let server = Arc::new(ws.start(&[]));
    let bob = ws.mint("bob", "leads");
    let (s, w) = (Arc::clone(&server), Arc::clone(&ws));
    let started = Instant::now();
    let waiting = in_background(move || hold(&s, &w, &hold_body("alice", FP, 30, "deploy to prod")));
    let id = pending_review(&server, &bob, "alice");
    assert!(id.starts_with("rev_") && id.len() == 20, "{id}");

    let detail = api(&server, "GET", &format!("/v1/reviews/{id}"), &bob, None).json()["review"].clone();
    assert_eq!(detail["status"], "pending");
    assert_eq!(detail["requester"]["job"]["repository"], "org/repo");
    assert_eq!(detail["excerpt"], "deploy to prod");
    assert_eq!(detail["url"], format!("{}/reviews/{id}", server.base));
    // What the approval covers, shown before anyone decides.
    assert_eq!(detail["system_excerpt"], "You are <b>careful</b>");
    assert_eq!(detail["prefill_excerpt"], "Sure:");
    assert_eq!(detail["mcp_server_urls"], json!(["https://mcp.example.com/a?key=[REDACTED:x]"]));
    assert_eq!((detail["messages"].as_u64(), detail["max_tokens"].as_u64()), (Some(5), Some(1024)));
    let page = api(&server, "GET", &format!("/reviews/{id}"), &bob, None);
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in [
        "You are &lt;b&gt;careful&lt;/b&gt;",
        "https://mcp.example.com/a?key=[REDACTED:x]",
        "5 messages",
        "max_tokens 1024, 5123 bytes",
        "opus_model",
        "Sure:",
    ] {
        assert!(page.body.contains(shown), "{shown} missing from the page");
    }

    let decided = api(&server, "POST", &format!("/v1/reviews/{id}/approve"), &bob, Some(json!({"comment": "ok"})));
    assert_eq!(decided.status, 200, "{}", decided.body);
    assert_eq!(decided.json()["outcome"], "approved");
    let answer = waiting.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "answered at the decision, not at the end of the hold");
    assert_eq!(verdict(&ws, &answer, "alice", FP), Decision::Approved { review: id.clone(), reviewer: "bob".into() });

    // The issued verdict is kept as evidence, and the single use is consumed.
    let detail = api(&server, "GET", &format!("/v1/reviews/{id}"), &bob, None).json()["review"].clone();
    assert_eq!(detail["status"], "approved");
    assert_eq!(detail["verdicts"][0]["decision"], "approved");
    assert_eq!(detail["grant_uses_left"], 0);

    let log = server.log();
    assert!(log.contains(&format!("review created {id}")), "{log}");
    assert!(log.contains(&format!("review approved {id}")), "{log}");
    for secret in [ws.gateway_token(), bob.clone()] {
        assert!(!log.contains(&secret), "a secret reached the log:\n{log}");
    }
}

#[test]
fn a_requester_cannot_flood_approvers_with_reviews() {
    let text =
        policy(false, "1h").replace("  grant_ttl: 15m\n", "  grant_ttl: 15m\n  review_rate: { reviews: 2, per: 1h }\n");
    let ws = Workspace::new("serve", "review-rate", &text);
    let server = ws.start(&[]);
    let fingerprints = [FP, FP2, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"];
    let answers: Vec<Answer> =
        fingerprints.iter().map(|fp| hold(&server, &ws, &hold_body("alice", fp, 1, "x"))).collect();
    assert_eq!((answers[0].status, answers[1].status), (200, 200));
    assert_eq!(answers[2].status, 429, "{}", answers[2].body);
    assert_eq!(answers[2].error_type(), "rate_limit_error");
    assert!(answers[2].body.contains("approvals.review_rate"), "{}", answers[2].body);
    // Re-sending a request whose review is pending attaches to it; another requester is not limited.
    assert_eq!(hold(&server, &ws, &hold_body("alice", FP, 1, "x")).status, 200);
    assert_eq!(hold(&server, &ws, &hold_body("carol", FP, 1, "x")).status, 200);
    assert!(server.log().contains("approvals.review_rate"));
}

#[test]
fn an_agents_token_never_decides_a_review() {
    let ws = Arc::new(Workspace::new("serve", "agent-token", &policy(false, "1h")));
    let server = Arc::new(ws.start(&[]));
    let bob = ws.mint("bob", "leads");
    // The same person's gateway token (the audience agents carry), e.g. read by a prompt-injected
    // agent: it verifies at the gateway, but it is not an approver's credential.
    let dir = ws.path("");
    let (code, agent_token, err) =
        common::run(&["token", "mint", "--dir", dir.to_str().unwrap(), "--sub", "bob", "--groups", "leads"], &[]);
    assert_eq!(code, 0, "{err}");
    let agent_token = agent_token.trim().to_string();
    let (s, w) = (Arc::clone(&server), Arc::clone(&ws));
    let waiting = in_background(move || hold(&s, &w, &hold_body("alice", FP, 5, "deploy to prod")));
    let id = pending_review(&server, &bob, "alice");
    for (method, path) in [("GET", "/v1/reviews".to_string()), ("POST", format!("/v1/reviews/{id}/approve"))] {
        let answer = api(&server, method, &path, &agent_token, None);
        assert_eq!(answer.status, 401, "{method} {path}: {}", answer.body);
        assert_eq!(answer.error_type(), "authentication_error");
    }
    assert_eq!(
        verdict(&ws, &waiting.join().unwrap(), "alice", FP),
        Decision::Pending { review: id.clone(), url: format!("{}/reviews/{id}", server.base) }
    );
}

#[test]
fn a_hold_nobody_decides_answers_pending_and_its_retry_passes_once_after_approval() {
    let ws = Workspace::new("serve", "pending", &policy(false, "1h"));
    let server = ws.start(&["--public-url", "https://warden.example/"]);
    let bob = ws.mint("bob", "leads");
    let started = Instant::now();
    let first = hold(&server, &ws, &hold_body("alice", FP, 1, "x"));
    assert!(started.elapsed() >= Duration::from_secs(1));
    let Decision::Pending { review, url } = verdict(&ws, &first, "alice", FP) else { panic!("not pending") };
    assert_eq!(url, format!("https://warden.example/reviews/{review}"));

    // The retry attaches to the same review.
    let Decision::Pending { review: again, .. } =
        verdict(&ws, &hold(&server, &ws, &hold_body("alice", FP, 0, "x")), "alice", FP)
    else {
        panic!("not pending")
    };
    assert_eq!(again, review);

    assert_eq!(api(&server, "POST", &format!("/v1/reviews/{review}/approve"), &bob, None).status, 200);
    let retry = hold(&server, &ws, &hold_body("alice", FP, 0, "x"));
    assert!(matches!(verdict(&ws, &retry, "alice", FP), Decision::Approved { .. }));
    // Single use: the next identical request opens a new review.
    let next = hold(&server, &ws, &hold_body("alice", FP, 0, "x"));
    assert!(matches!(verdict(&ws, &next, "alice", FP), Decision::Pending { review: r, .. } if r != review));
    // Another caller never rides on alice's approval.
    let carol = hold(&server, &ws, &hold_body("carol", FP, 0, "x"));
    assert!(matches!(verdict(&ws, &carol, "carol", FP), Decision::Pending { .. }));
}

#[test]
fn a_denial_answers_the_waiting_hold_and_stands_for_its_retries() {
    let ws = Arc::new(Workspace::new("serve", "deny", &policy(false, "1h")));
    let server = Arc::new(ws.start(&[]));
    let bob = ws.mint("bob", "leads");
    let (s, w) = (Arc::clone(&server), Arc::clone(&ws));
    let waiting = in_background(move || hold(&s, &w, &hold_body("alice", FP, 30, "drop tables")));
    let id = pending_review(&server, &bob, "alice");

    let reasonless = api(&server, "POST", &format!("/v1/reviews/{id}/deny"), &bob, Some(json!({"comment": " "})));
    assert_eq!((reasonless.status, reasonless.error_type().as_str()), (400, "invalid_request_error"));
    assert!(reasonless.json()["error"]["message"].as_str().unwrap().contains("reason"));

    let denied = api(
        &server,
        "POST",
        &format!("/v1/reviews/{id}/deny"),
        &bob,
        Some(json!({"comment": "use the migration tool"})),
    );
    assert_eq!(denied.status, 200, "{}", denied.body);
    let expected =
        Decision::Denied { review: id.clone(), reviewer: "bob".into(), comment: "use the migration tool".into() };
    assert_eq!(verdict(&ws, &waiting.join().unwrap(), "alice", FP), expected);
    assert_eq!(verdict(&ws, &hold(&server, &ws, &hold_body("alice", FP, 5, "drop tables")), "alice", FP), expected);

    let late = api(&server, "POST", &format!("/v1/reviews/{id}/approve"), &bob, None);
    assert_eq!((late.status, late.error_type().as_str()), (409, "conflict_error"));
}

#[test]
fn the_hold_endpoint_authenticates_the_gateway_and_validates_the_request() {
    let ws = Workspace::new("serve", "holdauth", &policy(false, "1h"));
    let server = ws.start(&[]);
    let url = format!("{}/v1/holds", server.base);
    let body = hold_body("alice", FP, 0, "x").to_string();
    let none = request("POST", &url, &[], Some(("application/json", body.clone())));
    assert_eq!((none.status, none.error_type().as_str()), (401, "authentication_error"));
    assert_eq!(none.header("www-authenticate"), ["Bearer"]);
    let wrong =
        request("POST", &url, &[("authorization", "Bearer not-the-gateway-token")], Some(("application/json", body)));
    assert_eq!(wrong.status, 401);

    for (bad, why) in [
        (json!({"version": 1}), "JSON"),
        (hold_body("alice", "ABC", 0, "x"), "fingerprint"),
        (
            {
                let mut b = hold_body("alice", FP, 0, "x");
                b["version"] = json!(2);
                b
            },
            "version",
        ),
        (
            {
                let mut b = hold_body("alice", FP, 0, "x");
                b["role"] = json!("analyst");
                b
            },
            "no approval rules",
        ),
        (
            {
                let mut b = hold_body("", FP, 0, "x");
                b["caller"]["subject"] = json!("");
                b
            },
            "subject",
        ),
    ] {
        let answer = hold(&server, &ws, &bad);
        assert_eq!(
            (answer.status, answer.error_type().as_str()),
            (400, "invalid_request_error"),
            "{bad}: {}",
            answer.body
        );
        assert!(answer.json()["error"]["message"].as_str().unwrap().contains(why), "{why}: {}", answer.body);
    }
    let health = request("GET", &format!("{}/healthz", server.base), &[], None);
    assert_eq!((health.status, health.json()["status"].as_str()), (200, Some("ok")));
    let missing = request("GET", &format!("{}/v1/nothing", server.base), &[], None);
    assert_eq!((missing.status, missing.error_type().as_str()), (404, "not_found_error"));
}

#[test]
fn the_reviews_api_refuses_bad_tokens_outsiders_self_approval_and_unknown_reviews() {
    let ws = Workspace::new("serve", "rules", &policy(false, "1h"));
    let server = ws.start(&[]);
    hold(&server, &ws, &hold_body("dana", FP, 0, "x"));
    let bob = ws.mint("bob", "leads");
    let id = pending_review(&server, &bob, "dana");

    let anonymous = request("GET", &format!("{}/v1/reviews", server.base), &[], None);
    assert_eq!((anonymous.status, anonymous.error_type().as_str()), (401, "authentication_error"));
    assert_eq!(api(&server, "GET", "/v1/reviews", "not-a-token", None).status, 401);

    let eve = ws.mint("eve", "eng");
    let outsider = api(&server, "POST", &format!("/v1/reviews/{id}/approve"), &eve, None);
    assert_eq!((outsider.status, outsider.error_type().as_str()), (403, "permission_error"));
    assert!(outsider.json()["error"]["message"].as_str().unwrap().contains("approver group"), "{}", outsider.body);
    assert_eq!(api(&server, "GET", "/v1/reviews", &eve, None).status, 403);

    let dana = ws.mint("dana", "eng,leads");
    let own = api(&server, "POST", &format!("/v1/reviews/{id}/approve"), &dana, Some(json!({"comment": "me"})));
    assert_eq!(own.status, 403);
    assert!(own.json()["error"]["message"].as_str().unwrap().contains("own request"), "{}", own.body);

    let unknown = api(&server, "POST", "/v1/reviews/rev_0000000000000000/approve", &bob, None);
    assert_eq!((unknown.status, unknown.error_type().as_str()), (404, "not_found_error"));
    let bad_status = api(&server, "GET", "/v1/reviews?status=maybe", &bob, None);
    assert_eq!(bad_status.status, 400);
    assert_eq!(api(&server, "GET", &format!("/v1/reviews/{id}"), &bob, None).json()["review"]["status"], "pending");
}

#[test]
fn two_person_reviews_need_two_different_approvers_and_name_both() {
    let ws = Arc::new(Workspace::new("serve", "two", &policy(true, "1h")));
    let server = Arc::new(ws.start(&[]));
    let (bob, carol) = (ws.mint("bob", "leads"), ws.mint("carol", "leads"));
    let (s, w) = (Arc::clone(&server), Arc::clone(&ws));
    let waiting = in_background(move || hold(&s, &w, &hold_body("alice", FP, 30, "x")));
    let id = pending_review(&server, &bob, "alice");
    let first = api(&server, "POST", &format!("/v1/reviews/{id}/approve"), &bob, Some(json!({"comment": "ok"})));
    assert_eq!(first.json()["outcome"], "awaiting_second_approver");
    assert_eq!(first.json()["review"]["approvals"], 1);
    let twice = api(&server, "POST", &format!("/v1/reviews/{id}/approve"), &bob, None);
    assert_eq!(twice.status, 409);
    let second = api(&server, "POST", &format!("/v1/reviews/{id}/approve"), &carol, Some(json!({"comment": "agreed"})));
    assert_eq!(second.json()["outcome"], "approved");
    assert_eq!(
        verdict(&ws, &waiting.join().unwrap(), "alice", FP),
        Decision::Approved { review: id, reviewer: "bob,carol".into() }
    );
}

#[test]
fn an_expired_review_cannot_be_decided_and_the_retry_opens_a_new_one() {
    let ws = Workspace::new("serve", "expiry", &policy(false, "1s"));
    let server = ws.start(&[]);
    let bob = ws.mint("bob", "leads");
    let Decision::Pending { review, .. } =
        verdict(&ws, &hold(&server, &ws, &hold_body("alice", FP, 0, "x")), "alice", FP)
    else {
        panic!("not pending")
    };
    std::thread::sleep(Duration::from_millis(2100));
    let late = api(&server, "POST", &format!("/v1/reviews/{review}/approve"), &bob, None);
    assert_eq!(late.status, 409, "{}", late.body);
    assert!(late.json()["error"]["message"].as_str().unwrap().contains("expired"));
    let Decision::Pending { review: fresh, .. } =
        verdict(&ws, &hold(&server, &ws, &hold_body("alice", FP, 0, "x")), "alice", FP)
    else {
        panic!("not pending")
    };
    assert_ne!(fresh, review);
    assert!(server.log().contains(&format!("review expired {review}")), "{}", server.log());
}

#[test]
fn pending_reviews_and_grants_survive_a_restart() {
    let ws = Workspace::new("serve", "restart", &policy(false, "1h"));
    let bob = ws.mint("bob", "leads");
    let server = ws.start(&[]);
    hold(&server, &ws, &hold_body("alice", FP, 0, "x"));
    hold(&server, &ws, &hold_body("carol", FP2, 0, "y"));
    let alice_review = pending_review(&server, &bob, "alice");
    let carol_review = pending_review(&server, &bob, "carol");
    assert_eq!(api(&server, "POST", &format!("/v1/reviews/{carol_review}/approve"), &bob, None).status, 200);
    server.stop();

    let server = ws.start(&[]);
    assert_eq!(pending_review(&server, &bob, "alice"), alice_review, "the retry re-attaches to the same review");
    let Decision::Pending { review, .. } =
        verdict(&ws, &hold(&server, &ws, &hold_body("alice", FP, 0, "x")), "alice", FP)
    else {
        panic!("not pending")
    };
    assert_eq!(review, alice_review);
    let granted = hold(&server, &ws, &hold_body("carol", FP2, 0, "y"));
    assert_eq!(
        verdict(&ws, &granted, "carol", FP2),
        Decision::Approved { review: carol_review, reviewer: "bob".into() }
    );
}

#[test]
fn the_webhook_announces_each_new_review_with_its_link() {
    let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hooks/secret-path", receiver.local_addr().unwrap());
    let received = in_background(move || {
        let (mut stream, _) = receiver.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut data = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).unwrap();
            data.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").unwrap();
                    return (head.to_string(), body.to_string());
                }
            }
            if n == 0 {
                panic!("the webhook request ended early");
            }
        }
    });
    let ws = Workspace::new("serve", "webhook", &policy(false, "1h"));
    let server = ws.start(&["--webhook", &hook]);
    let started = Instant::now();
    let Decision::Pending { review, url } =
        verdict(&ws, &hold(&server, &ws, &hold_body("alice", FP, 0, "x")), "alice", FP)
    else {
        panic!("not pending")
    };
    assert!(started.elapsed() < Duration::from_secs(2), "the webhook never delays the hold");
    let (head, body) = received.join().unwrap();
    assert!(head.starts_with("POST /hooks/secret-path"), "{head}");
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert!(payload["text"].as_str().unwrap().contains(&url), "{payload}");
    assert!(payload["blocks"].as_array().unwrap().iter().any(|b| b.to_string().contains(&review)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("webhook sent") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!server.log().contains("secret-path"), "the webhook URL is never logged:\n{}", server.log());
}

/// The session cookie's `name=value` from a login answer.
fn session_cookie(answer: &Answer) -> String {
    let cookie =
        answer.header("set-cookie").into_iter().find(|c| c.starts_with("warden_session=")).unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_string()
}

fn flash_cookie(answer: &Answer) -> Option<String> {
    answer
        .header("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("warden_flash="))
        .map(|c| c.split(';').next().unwrap().to_string())
}

/// Posts the sign-in form as a browser does: loads `/login` first (its cookie and form token),
/// then posts `fields` with them.
fn post_login(base: &str, fields: &str) -> Answer {
    let form_page = request("GET", &format!("{base}/login"), &[], None);
    let cookie = login_cookie(&form_page);
    let csrf = csrf_of(&form_page.body);
    request(
        "POST",
        &format!("{base}/login"),
        &[("cookie", &cookie)],
        Some(("application/x-www-form-urlencoded", format!("{fields}&csrf={csrf}"))),
    )
}

/// The sign-in form's cookie `name=value`.
fn login_cookie(answer: &Answer) -> String {
    let cookie = answer.header("set-cookie").into_iter().find(|c| c.starts_with("warden_login=")).unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_string()
}

/// The value of the hidden `csrf` field on a page.
fn csrf_of(page: &str) -> String {
    let start = page.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    page[start..].split('"').next().unwrap().to_string()
}

#[test]
fn an_approver_signs_in_on_the_page_and_approves_with_the_form() {
    let ws = Arc::new(Workspace::new("serve", "page", &policy(false, "1h")));
    let server = Arc::new(ws.start(&[]));
    let bob = ws.mint("bob", "leads");
    let (s, w) = (Arc::clone(&server), Arc::clone(&ws));
    let waiting = in_background(move || hold(&s, &w, &hold_body("alice", FP, 30, "<script>alert(1)</script> deploy")));
    let id = pending_review(&server, &bob, "alice");
    let base = server.base.clone();
    let form = "application/x-www-form-urlencoded";

    let root = request("GET", &format!("{base}/"), &[], None);
    assert_eq!((root.status, root.header("location")), (303, vec!["/reviews"]));
    // A link from a chat message arrives without the SameSite=Strict cookie: the page reloads
    // itself from this site once, then sends the anonymous visitor to sign in and come back.
    let anonymous = request("GET", &format!("{base}/reviews/{id}"), &[], None);
    assert_eq!(anonymous.status, 200);
    assert!(anonymous.body.contains(&format!(r#"http-equiv="refresh" content="0; url=/reviews/{id}?again=1""#)));
    let again = request("GET", &format!("{base}/reviews/{id}?again=1"), &[], None);
    assert_eq!((again.status, again.header("location")), (303, vec![format!("/login?next=/reviews/{id}").as_str()]));
    let login_next = request("GET", &format!("{base}/login?next=/reviews/{id}"), &[], None);
    assert!(login_next.body.contains(&format!(r#"name="next" value="/reviews/{id}""#)));
    let evil_next = request("GET", &format!("{base}/login?next=https://evil.example/"), &[], None);
    assert!(evil_next.body.contains(r#"name="next" value="/reviews""#), "only this site's review pages");
    let returned = post_login(&base, &format!("token={bob}&next=/reviews/{id}"));
    assert_eq!(returned.header("location"), [format!("/reviews/{id}").as_str()]);
    let login = request("GET", &format!("{base}/login"), &[], None);
    assert_eq!(login.status, 200);
    assert!(login.body.contains(r#"name="token""#) && login.body.contains(r#"id="login""#));

    let refused = post_login(&base, "token=not-a-token");
    assert_eq!(refused.status, 401);
    assert!(
        refused.body.contains(r#"id="flash" class="flash flash-error""#) && refused.body.contains("Sign-in failed")
    );
    let eve = ws.mint("eve", "eng");
    let outsider = post_login(&base, &format!("token={eve}"));
    assert_eq!(outsider.status, 403);
    assert!(outsider.body.contains("not in any approver group"));

    let signed_in = post_login(&base, &format!("token={bob}"));
    assert_eq!((signed_in.status, signed_in.header("location")), (303, vec!["/reviews"]));
    let session = session_cookie(&signed_in);
    let cookies = format!("{session}; {}", flash_cookie(&signed_in).unwrap());
    let page = request("GET", &format!("{base}/reviews"), &[("cookie", &cookies)], None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Signed in as bob."), "the flash message is shown once");
    assert!(page.header("content-security-policy")[0].contains("default-src 'none'"));
    for expected in [
        format!(r#"id="review-{id}""#),
        format!(r#"id="decide-{id}""#),
        format!(r#"id="approve-{id}""#),
        r#"name="comment""#.to_string(),
        r#"name="deny""#.to_string(),
        "opus_model".to_string(),
        "repository=org/repo".to_string(),
        "0 of 1 approval".to_string(),
        "&lt;script&gt;alert(1)&lt;/script&gt; deploy".to_string(),
    ] {
        assert!(page.body.contains(&expected), "{expected} missing from the page");
    }
    assert!(!page.body.contains("<script>alert(1)"), "the excerpt is escaped");

    let decide_url = format!("{base}/reviews/{id}/decide");
    let forged =
        request("POST", &decide_url, &[("cookie", &session)], Some((form, "csrf=1.00&approve=1&comment=x".into())));
    assert_eq!(forged.status, 403, "a form without the page's CSRF token is refused");

    let csrf = csrf_of(&page.body);
    let approved = request(
        "POST",
        &decide_url,
        &[("cookie", &session)],
        Some((form, format!("csrf={csrf}&back=list&comment=looks+fine&approve=1"))),
    );
    assert_eq!((approved.status, approved.header("location")), (303, vec!["/reviews"]));
    assert_eq!(
        verdict(&ws, &waiting.join().unwrap(), "alice", FP),
        Decision::Approved { review: id.clone(), reviewer: "bob".into() }
    );

    let cookies = format!("{session}; {}", flash_cookie(&approved).unwrap());
    let after = request("GET", &format!("{base}/reviews"), &[("cookie", &cookies)], None);
    assert!(after.body.contains(&format!("Approved {id} for alice.")), "flash after the decision");
    assert!(after.body.contains(&format!(r#"id="decision-{id}""#)) && after.body.contains("looks fine"));
    assert!(!after.body.contains(&format!(r#"id="review-{id}""#)), "no longer pending");

    let detail = request("GET", &format!("{base}/reviews/{id}"), &[("cookie", &session)], None);
    assert!(detail.status == 200 && detail.body.contains(r#"id="votes""#) && detail.body.contains("looks fine"));

    // An auth proxy's bearer header works without the cookie.
    let header_auth = format!("Bearer {bob}");
    assert_eq!(request("GET", &format!("{base}/reviews"), &[("authorization", &header_auth)], None).status, 200);

    let out = request("GET", &format!("{base}/logout"), &[("cookie", &session)], None);
    assert_eq!(out.header("location"), ["/login"]);
    assert!(out.header("set-cookie").iter().any(|c| c.starts_with("warden_session=;") && c.contains("Max-Age=0")));
}

#[test]
fn a_session_grant_from_the_page_survives_a_restart_and_its_end_needs_the_pages_csrf_token() {
    let ws = Workspace::new("serve", "session-grant", &policy(false, "1h"));
    let bob = ws.mint("bob", "leads");
    let server = ws.start(&[]);
    let in_session = |fingerprint: &str| {
        let mut body = hold_body("alice", fingerprint, 0, "push again");
        body["session_id"] = json!("sess-42");
        body
    };
    hold(&server, &ws, &in_session(FP));
    let id = pending_review(&server, &bob, "alice");
    let base = server.base.clone();
    let form = "application/x-www-form-urlencoded";
    let session = session_cookie(&post_login(&base, &format!("token={bob}")));
    let page = request("GET", &format!("{base}/reviews"), &[("cookie", &session)], None);
    assert!(page.body.contains(&format!(r#"id="approve-session-{id}""#)) && page.body.contains("sess-42"));
    let csrf = csrf_of(&page.body);
    let decided = request(
        "POST",
        &format!("{base}/reviews/{id}/decide"),
        &[("cookie", &session)],
        Some((form, format!("csrf={csrf}&back=list&session_minutes=20&approve_session=1"))),
    );
    assert_eq!(decided.status, 303);
    server.stop();

    // After a restart the grant still answers the session's next request at once.
    let server = ws.start(&[]);
    let base = server.base.clone();
    let answered = hold(&server, &ws, &in_session(FP2));
    assert_eq!(
        verdict(&ws, &answered, "alice", FP2),
        Decision::Approved { review: id.clone(), reviewer: "bob".into() }
    );
    let grants = api(&server, "GET", "/v1/grants", &bob, None);
    let grant = grants.json()["grants"][0]["id"].as_str().unwrap().to_string();
    let end_url = format!("{base}/grants/{grant}/end");
    let forged = request("POST", &end_url, &[("cookie", &session)], Some((form, "csrf=1.00".into())));
    assert_eq!(forged.status, 403, "ending without the page's CSRF token is refused");
    let page = request("GET", &format!("{base}/reviews"), &[("cookie", &session)], None);
    assert!(page.body.contains(&format!(r#"id="grant-{grant}""#)), "the live grant is listed");
    let ended =
        request("POST", &end_url, &[("cookie", &session)], Some((form, format!("csrf={}", csrf_of(&page.body)))));
    assert_eq!(ended.status, 303);
    let held = hold(&server, &ws, &in_session(FP2));
    assert!(matches!(verdict(&ws, &held, "alice", FP2), Decision::Pending { .. }), "the ended grant covers nothing");
}

#[test]
fn a_sign_in_posted_from_another_site_is_refused() {
    let ws = Workspace::new("serve", "login-csrf", &policy(false, "1h"));
    let server = ws.start(&[]);
    let base = server.base.clone();
    // The attacker's own approver token, posted into the victim's browser (login CSRF).
    let mallory = ws.mint("mallory", "leads");
    let form = "application/x-www-form-urlencoded";
    let form_page = request("GET", &format!("{base}/login"), &[], None);
    let (cookie, csrf) = (login_cookie(&form_page), csrf_of(&form_page.body));
    let fields = format!("token={mallory}&csrf={csrf}");
    type Attempt<'a> = (&'a str, Vec<(&'a str, &'a str)>, String);
    let attempts: Vec<Attempt> = vec![
        ("no form token, no cookie", vec![], format!("token={mallory}")),
        ("a form token without its cookie", vec![], fields.clone()),
        ("the cookie without a form token", vec![("cookie", &cookie)], format!("token={mallory}")),
        ("another site", vec![("cookie", &cookie), ("sec-fetch-site", "cross-site")], fields.clone()),
        ("another origin", vec![("cookie", &cookie), ("origin", "https://evil.example")], fields.clone()),
    ];
    for (case, headers, body) in attempts {
        let answer = request("POST", &format!("{base}/login"), &headers, Some((form, body)));
        assert_eq!(answer.status, 403, "{case}: {}", answer.body);
        assert!(answer.body.contains("Sign-in refused"), "{case}");
        assert!(!answer.header("set-cookie").iter().any(|c| c.starts_with("warden_session=ey")), "{case}: signed in");
    }
    // The page's own form, from this origin, signs in.
    let own = request(
        "POST",
        &format!("{base}/login"),
        &[("cookie", &cookie), ("origin", &base), ("sec-fetch-site", "same-origin")],
        Some((form, fields)),
    );
    assert_eq!(own.status, 303, "{}", own.body);
    session_cookie(&own);
    // Under the pages' no-referrer policy a browser's own form post says `Origin: null`.
    let private = request(
        "POST",
        &format!("{base}/login"),
        &[("cookie", &cookie), ("origin", "null"), ("sec-fetch-site", "same-origin")],
        Some((form, format!("token={mallory}&csrf={csrf}"))),
    );
    assert_eq!(private.status, 303, "{}", private.body);
}

#[test]
fn the_page_turns_a_failed_decision_into_a_flash_message() {
    let ws = Workspace::new("serve", "pageflash", &policy(false, "1h"));
    let server = ws.start(&[]);
    hold(&server, &ws, &hold_body("alice", FP, 0, "x"));
    let bob = ws.mint("bob", "leads");
    let id = pending_review(&server, &bob, "alice");
    let session = session_cookie(&post_login(&server.base, &format!("token={bob}")));
    let page = request("GET", &format!("{}/reviews/{id}", server.base), &[("cookie", &session)], None);
    let csrf = csrf_of(&page.body);
    let denied = request(
        "POST",
        &format!("{}/reviews/{id}/decide", server.base),
        &[("cookie", &session)],
        Some(("application/x-www-form-urlencoded", format!("csrf={csrf}&back=detail&comment=&deny=1"))),
    );
    assert_eq!(denied.header("location"), [format!("/reviews/{id}").as_str()]);
    let cookies = format!("{session}; {}", flash_cookie(&denied).unwrap());
    let shown = request("GET", &format!("{}/reviews/{id}", server.base), &[("cookie", &cookies)], None);
    assert!(shown.body.contains("flash-error") && shown.body.contains("a reason is required"), "{}", shown.body);
}

#[test]
fn the_reviews_cli_lists_shows_approves_and_denies_with_clear_exit_codes() {
    let ws = Workspace::new("serve", "cli", &policy(false, "1h"));
    let server = ws.start(&[]);
    hold(&server, &ws, &hold_body("alice", FP, 0, "deploy"));
    hold(&server, &ws, &hold_body("carol", FP2, 0, "drop"));
    let bob = ws.mint("bob", "leads");
    let alice_review = pending_review(&server, &bob, "alice");
    let carol_review = pending_review(&server, &bob, "carol");
    let env = [("WARDEN_TOKEN", bob.as_str()), ("WARDEN_SERVICE", server.base.as_str())];

    let (code, out, err) = run(&["reviews", "list"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&alice_review) && out.contains(&carol_review) && out.contains("opus_model"), "{out}");
    let (code, out, _) = run(&["reviews", "list", "--json"], &env);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().len(), 2);
    let (code, out, _) = run(&["reviews", "show", &alice_review], &env);
    assert!(code == 0 && out.contains("requester  alice") && out.contains("  | deploy"), "{out}");

    let (code, out, err) = run(&["reviews", "approve", &alice_review, "--comment", "ok"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("approved {alice_review}")), "{out}");
    let (code, _, err) = run(&["reviews", "deny", &carol_review], &env);
    assert_eq!(code, 2, "--reason is required: {err}");
    let (code, out, _) = run(&["reviews", "deny", &carol_review, "--reason", "no"], &env);
    assert!(code == 0 && out.starts_with("denied"), "{out}");

    let (code, _, err) = run(&["reviews", "approve", &alice_review], &env);
    assert_eq!(code, 5, "already decided: {err}");
    assert!(err.contains("already decided"), "{err}");
    let (code, _, _) = run(&["reviews", "show", "rev_0000000000000000"], &env);
    assert_eq!(code, 4);
    let (code, out, _) = run(&["reviews", "list", "--all"], &env);
    assert!(code == 0 && out.contains("approved") && out.contains("denied"), "{out}");

    let token_file = ws.path("eve.token");
    std::fs::write(&token_file, ws.mint("eve", "eng")).unwrap();
    let (code, _, err) =
        run(&["reviews", "list", "--token-file", token_file.to_str().unwrap(), "--service", &server.base], &[]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = run(&["reviews", "list", "--service", &server.base], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("WARDEN_TOKEN"), "{err}");
    let (code, _, err) = run(&["reviews", "list"], &[("WARDEN_TOKEN", &bob), ("WARDEN_SERVICE", "http://127.0.0.1:9")]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach") && !err.contains(&bob), "{err}");
}

#[test]
fn serve_init_writes_private_keys_and_keeps_them_unless_forced() {
    let dir = std::env::temp_dir().join(format!("warden-serve-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let (code, out, _) = run(&["serve", "init", "--dir", d], &[]);
    assert_eq!(code, 0);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let (key, public, token) =
        (read("approvals-signing-key.pem"), read("approvals-verdict-key.pub"), read("approvals-token"));
    assert!(key.contains("PRIVATE KEY"));
    assert_eq!(Base64::decode_to_vec(public.trim(), None).unwrap().len(), 32);
    assert!(token.trim().len() >= 32);
    assert!(!out.contains(key.trim()) && !out.contains(token.trim()), "secrets are never printed: {out}");
    assert!(out.contains(public.trim()), "the public key is printed: {out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| std::fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("approvals-signing-key.pem"), mode("approvals-token")), (0o600, 0o600));
    }
    assert_eq!(run(&["serve", "init", "--dir", d], &[]).0, 0);
    assert_eq!((read("approvals-signing-key.pem"), read("approvals-token")), (key.clone(), token.clone()), "kept");
    assert_eq!(run(&["serve", "init", "--dir", d, "--force"], &[]).0, 0);
    assert_ne!(read("approvals-signing-key.pem"), key);
    assert_ne!(read("approvals-token"), token);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_refuses_to_start_with_a_bad_setup_and_says_why() {
    let ws = Workspace::new("serve", "badstart", &policy(false, "1h"));
    let args = |policy: &Path, key: &Path| {
        vec![
            "serve".to_string(),
            "--policy".into(),
            policy.to_str().unwrap().into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--db".into(),
            ws.path("x.db").to_str().unwrap().into(),
            "--signing-key".into(),
            key.to_str().unwrap().into(),
            "--gateway-token-file".into(),
            ws.path("approvals-token").to_str().unwrap().into(),
        ]
    };
    let call = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs, &[])
    };
    let (code, _, err) = call(args(&ws.path("missing.yaml"), &ws.path("approvals-signing-key.pem")));
    assert!(code == 1 && err.contains("cannot read"), "{err}");
    std::fs::write(
        ws.path("plain.yaml"),
        policy(false, "1h").split("approvals:\n").next().unwrap().to_string()
            + "bindings: []\nroles:\n  analyst: { credential: anthropic, models: [\"claude-haiku-*\"] }\n",
    )
    .unwrap();
    let (code, _, err) = call(args(&ws.path("plain.yaml"), &ws.path("approvals-signing-key.pem")));
    assert!(code == 1 && err.contains("asks nothing of warden serve"), "{err}");
    let (code, _, err) = call(args(&ws.path("policy.yaml"), &ws.path("approvals-token")));
    assert!(code == 1 && err.contains("not a PKCS#8 PEM Ed25519 private key"), "{err}");
    assert!(!err.contains(&ws.gateway_token()), "the file's content is never echoed");
    let (code, _, err) = run(&["serve", "--listen", "127.0.0.1:0"], &[]);
    assert!(code == 2 && err.contains("--policy"), "{err}");
}

//! The session prefix memo across workers: two gateways (two Envoy workers) share one store (Envoy's
//! shared data), a Claude Code session grows over 20 turns landing on either worker, and hostile
//! sessions try to make a worker skip a scan. The memo may only save work: every forwarded body
//! must be byte for byte what a gateway with no memo at all forwards, and every record must name
//! the messages exactly as forwarded. No proxy involved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::exchange::{start, verified_as};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::rc::Rc;
use warden::core::audit::record::Record;
use warden::core::audit::trail::Ending;
use warden::core::budget::ledger::{MemoryStore, Store, StoreError};
use warden::core::dlp::memo::{SESSION_KEY_PREFIX, SESSION_SLOTS};
use warden::core::exchange::{BodyStep, Gateway};

const POLICY: &str = include_str!("../envoy/policy.yaml");
/// A fabricated GitHub token (never a real one).
const GITHUB_TOKEN: &str = "ghp_Q7rM2zXp9TlWb3KvN8yCd4Sj6Hf1Ga5Eu0Io";

/// One store seen by several gateways, as Envoy's shared data is by every worker.
#[derive(Debug, Clone, Default)]
struct Shared(Rc<MemoryStore>);

impl Store for Shared {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        self.0.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        self.0.set(key, value, cas)
    }
}

impl Shared {
    /// How many session slots hold a value.
    fn sessions(&self) -> usize {
        (0..SESSION_SLOTS).filter(|n| self.0.get(&format!("{SESSION_KEY_PREFIX}{n}")).unwrap().is_some()).count()
    }
}

fn gateway(store: Option<&Shared>) -> Gateway {
    let gateway = Gateway::new(POLICY, |name| match name {
        "ANTHROPIC_API_KEY" => Some("sk-ant-test-key-for-sessions".to_string()),
        "WARDEN_APPROVALS_TOKEN" => Some("approvals-token".to_string()),
        "WARDEN_APPROVALS_VERDICT_KEY" => Some("A".repeat(43)),
        _ => Some(format!("{name}-value")),
    })
    .unwrap();
    match store {
        Some(store) => gateway.with_ledger(Box::new(store.clone())),
        None => gateway,
    }
}

fn body(messages: &[Value]) -> String {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 512, "stream": true, "system": "You are Claude Code.",
           "messages": messages})
    .to_string()
}

/// `subject` sends `messages` in `session` through `gw`: the body forwarded and the record.
fn send(gw: &Gateway, subject: &str, session: &str, messages: &[Value]) -> (String, Record) {
    let headers: Vec<(String, String)> = [("content-type", "application/json"), ("x-claude-code-session-id", session)]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let token = verified_as(subject, "warden-demo", &["eng"], 605.0);
    let (mut exchange, _) = start(gw, "POST", "/v1/messages", &headers, token);
    let sent = body(messages);
    let forwarded = match exchange.on_body_complete(gw, sent.as_bytes()) {
        BodyStep::Forward => sent,
        BodyStep::Replace { body, .. } => String::from_utf8(body).unwrap(),
        other => panic!("the request must go upstream: {other:?}"),
    };
    let ending = Ending { at_ms: 1, response_complete: true, client_gone: false };
    (forwarded, exchange.finish_record(gw, ending).unwrap())
}

/// What a gateway with no memo (a fresh worker, its own store) forwards for the same request.
fn cold(subject: &str, session: &str, messages: &[Value]) -> String {
    send(&gateway(None), subject, session, messages).0
}

/// Sends on `gw` and checks the forwarded body against a memo-less gateway's; returns it.
fn same_as_cold(gw: &Gateway, subject: &str, session: &str, messages: &[Value]) -> String {
    let (forwarded, _) = send(gw, subject, session, messages);
    assert_eq!(forwarded, cold(subject, session, messages), "the memo changed what was forwarded");
    forwarded
}

/// The raw JSON of each forwarded message.
fn forwarded_messages(forwarded: &str) -> Vec<String> {
    let fields: BTreeMap<String, &RawValue> = serde_json::from_str(forwarded).unwrap();
    let messages: Vec<&RawValue> = serde_json::from_str(fields["messages"].get()).unwrap();
    messages.iter().map(|m| m.get().to_string()).collect()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": text}]})
}

fn assistant(text: &str) -> Value {
    json!({"role": "assistant", "content": [{"type": "text", "text": text}]})
}

#[test]
fn a_twenty_turn_session_on_two_workers_forwards_and_records_every_turn_exactly() {
    let store = Shared::default();
    let workers = [gateway(Some(&store)), gateway(Some(&store))];
    let mut history = Vec::new();
    let mut blobs = BTreeMap::new();
    for turn in 1..=20 {
        let text = match turn {
            5 => format!("turn {turn}: GITHUB_TOKEN={GITHUB_TOKEN}"),
            _ => format!("turn {turn}: {}", "read src/main.rs and explain it. ".repeat(20)),
        };
        history.push(user(&text));
        let worker = &workers[turn % 2];
        let (forwarded, record) = send(worker, "alice", "sess-20", &history);
        assert_eq!(forwarded, cold("alice", "sess-20", &history), "turn {turn}");
        assert!(!forwarded.contains(&GITHUB_TOKEN[4..]), "turn {turn} forwarded the token");
        // Replay: the record's names, resolved with every blob recorded so far, are the
        // messages exactly as forwarded.
        blobs.extend(record.blobs.clone());
        let request = record.request.as_ref().unwrap();
        let replayed: Vec<String> = request.messages.iter().map(|name| blobs[name].clone()).collect();
        assert_eq!(replayed, forwarded_messages(&forwarded), "turn {turn}");
        history.push(assistant(&format!("answer {turn}")));
    }
    assert_eq!(store.sessions(), 1, "one slot for the session");
}

#[test]
fn a_secret_put_into_history_after_the_memo_learned_it_is_masked_on_every_worker() {
    let store = Shared::default();
    let (one, two) = (gateway(Some(&store)), gateway(Some(&store)));
    let mut history = vec![user("hello"), assistant("hi"), user("list the files")];
    same_as_cold(&one, "alice", "sess-edit", &history);
    same_as_cold(&two, "alice", "sess-edit", &history);
    // The client rewrites its first message: it is scanned again and masked.
    history[0] = user(&format!("hello GITHUB_TOKEN={GITHUB_TOKEN}"));
    for gw in [&one, &two, &one] {
        let forwarded = same_as_cold(gw, "alice", "sess-edit", &history);
        assert!(!forwarded.contains(&GITHUB_TOKEN[4..]), "{forwarded}");
    }
    // An edit that keeps every length: only the bytes tell it apart.
    let padding = "x".repeat(GITHUB_TOKEN.len() + "GITHUB_TOKEN=".len());
    history[0] = user(&format!("hello {padding}"));
    same_as_cold(&one, "alice", "sess-edit", &history);
    history[0] = user(&format!("hello GITHUB_TOKEN={GITHUB_TOKEN}"));
    assert!(!same_as_cold(&two, "alice", "sess-edit", &history).contains(&GITHUB_TOKEN[4..]));
    // The edited message keeps its place in the record, by its new (masked) text.
    let (forwarded, record) = send(&two, "alice", "sess-edit", &history);
    let first = &record.request.as_ref().unwrap().messages[0];
    assert_eq!(record.blobs.get(first).cloned(), Some(forwarded_messages(&forwarded)[0].clone()));
}

#[test]
fn callers_sharing_or_forging_a_session_id_never_skip_each_others_scans() {
    let store = Shared::default();
    let (one, two) = (gateway(Some(&store)), gateway(Some(&store)));
    let clean = vec![user("hello"), assistant("hi"), user("go on")];
    same_as_cold(&one, "alice", "shared-id", &clean);
    // Mallory uses Alice's session id with her own history, and with Alice's history plus a
    // secret: each is scanned and masked.
    let mut forged = vec![user(&format!("GITHUB_TOKEN={GITHUB_TOKEN}")), assistant("hi")];
    let forwarded = same_as_cold(&two, "mallory", "shared-id", &forged);
    assert!(!forwarded.contains(&GITHUB_TOKEN[4..]));
    forged = clean.clone();
    forged.push(user(&format!("and GITHUB_TOKEN={GITHUB_TOKEN}")));
    let forwarded = same_as_cold(&one, "mallory", "shared-id", &forged);
    assert!(!forwarded.contains(&GITHUB_TOKEN[4..]));
    // Alice goes on, on either worker, unharmed.
    let mut next = clean.clone();
    next.push(assistant("done"));
    same_as_cold(&two, "alice", "shared-id", &next);
    same_as_cold(&one, "alice", "shared-id", &next);
}

#[test]
fn a_reordered_or_truncated_history_or_a_huge_session_id_is_judged_like_a_new_one() {
    let store = Shared::default();
    let (one, two) = (gateway(Some(&store)), gateway(Some(&store)));
    let secret = user(&format!("GITHUB_TOKEN={GITHUB_TOKEN}"));
    let history = vec![user("a"), assistant("b"), user("c"), assistant("d")];
    same_as_cold(&one, "alice", "sess-order", &history);
    let reordered = vec![history[1].clone(), history[0].clone(), secret.clone(), history[3].clone()];
    assert!(!same_as_cold(&two, "alice", "sess-order", &reordered).contains(&GITHUB_TOKEN[4..]));
    same_as_cold(&one, "alice", "sess-order", &history);
    let truncated = vec![history[0].clone(), secret.clone()];
    assert!(!same_as_cold(&two, "alice", "sess-order", &truncated).contains(&GITHUB_TOKEN[4..]));
    let huge = "s".repeat(10 << 10);
    same_as_cold(&one, "alice", &huge, &history);
    let mut longer = history.clone();
    longer.push(secret);
    assert!(!same_as_cold(&two, "alice", &huge, &longer).contains(&GITHUB_TOKEN[4..]));
}

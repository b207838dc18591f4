//! `warden reviews`: approvers' command line for `warden serve`'s reviews API.
//!
//! `list [--all] [--json]`, `show ID [--json]`, `approve ID [--comment TEXT]`,
//! `deny ID --reason TEXT`. The service is `--service URL` (env `WARDEN_SERVICE`, default
//! `http://127.0.0.1:8787`); the approver's OIDC token comes from `--token-file FILE` or the
//! environment variable `WARDEN_TOKEN` and is sent as `Authorization: Bearer`. It is never
//! printed.
//!
//! Exit status: 0 success; 1 the service is unreachable or answered unexpectedly (or 400);
//! 2 usage error (including no token); 3 authentication or permission refused (401/403);
//! 4 no such review (404); 5 the review is no longer pending, or you already approved (409).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{finish, format_duration, format_utc, pretty, unix_now, Failure};

/// Environment variable holding the approver's token when `--token-file` is not given.
const TOKEN_ENV: &str = "WARDEN_TOKEN";

/// Arguments of `warden reviews`.
#[derive(clap::Args, Debug)]
pub struct ReviewsArgs {
    /// Base URL of `warden serve`.
    #[arg(long, env = "WARDEN_SERVICE", value_name = "URL", default_value = "http://127.0.0.1:8787", global = true)]
    pub service: String,

    /// File holding your OIDC token [default: the WARDEN_TOKEN environment variable].
    #[arg(long, value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: ReviewsCommand,
}

/// Subcommands of `warden reviews`.
#[derive(clap::Subcommand, Debug)]
pub enum ReviewsCommand {
    /// List pending reviews you may decide (with --all, decided and expired ones too).
    List {
        /// Include decided and expired reviews.
        #[arg(long)]
        all: bool,
        /// Print the service's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one review with its context and votes.
    Show {
        /// Review id (`rev_…`).
        id: String,
        /// Print the service's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a review.
    Approve {
        /// Review id (`rev_…`).
        id: String,
        /// A comment recorded with your approval and shown to the requester.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Deny a review (a reason is required; the requester sees it).
    Deny {
        /// Review id (`rev_…`).
        id: String,
        /// Why the request is denied.
        #[arg(long)]
        reason: String,
    },
}

/// Runs `warden reviews`.
pub fn run(args: &ReviewsArgs) -> ExitCode {
    finish("warden reviews", execute(args))
}

fn execute(args: &ReviewsArgs) -> Result<String, Failure> {
    let token = read_token(args)?;
    let client = Client::new(&args.service, token)?;
    match &args.command {
        ReviewsCommand::List { all, json } => {
            let status = if *all { "all" } else { "pending" };
            let answer = client.call("GET", &format!("/v1/reviews?status={status}"), None)?;
            let reviews = answer.get("reviews").and_then(Value::as_array).cloned().unwrap_or_default();
            if *json {
                return Ok(pretty(&Value::Array(reviews)));
            }
            Ok(list_text(&reviews, *all))
        }
        ReviewsCommand::Show { id, json } => {
            let answer = client.call("GET", &format!("/v1/reviews/{}", checked_id(id)?), None)?;
            let review = answer.get("review").cloned().unwrap_or(Value::Null);
            Ok(if *json { pretty(&review) } else { detail_text(&review) })
        }
        ReviewsCommand::Approve { id, comment } => {
            let answer = client.call(
                "POST",
                &format!("/v1/reviews/{}/approve", checked_id(id)?),
                Some(json!({ "comment": comment })),
            )?;
            Ok(outcome_text(&answer))
        }
        ReviewsCommand::Deny { id, reason } => {
            if reason.trim().is_empty() {
                return Err(Failure::new(2, "--reason must not be empty: the requester is told why"));
            }
            let answer = client.call(
                "POST",
                &format!("/v1/reviews/{}/deny", checked_id(id)?),
                Some(json!({ "comment": reason })),
            )?;
            Ok(outcome_text(&answer))
        }
    }
}

fn read_token(args: &ReviewsArgs) -> Result<String, Failure> {
    let token = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::new(2, format!("cannot read the token file {}: {e}", path.display())))?,
        None => std::env::var(TOKEN_ENV).unwrap_or_default(),
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(Failure::new(
            2,
            format!("no approver token: pass --token-file FILE or set {TOKEN_ENV} (e.g. from `warden token mint`)"),
        ));
    }
    Ok(token)
}

/// A review id safe to put in a URL path.
fn checked_id(id: &str) -> Result<&str, Failure> {
    let valid =
        !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(id)
    } else {
        Err(Failure::new(2, format!("{id:?} is not a review id (rev_…)")))
    }
}

pub(crate) struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    pub(crate) fn new(service: &str, token: String) -> Result<Self, Failure> {
        let base = service.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Failure::new(2, "--service must be an http:// or https:// URL"));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self { base, token, agent })
    }

    /// Calls the API; a non-2xx answer becomes a failure carrying the service's message.
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let authorization = format!("Bearer {}", self.token);
        let unreachable = |e: ureq::Error| {
            Failure::new(1, format!("cannot reach {}: {}", self.base, warden::service::approvals::webhook::describe_http_error(&e)))
        };
        let response = match (method, body) {
            ("POST", body) => self
                .agent
                .post(&url)
                .header("authorization", &authorization)
                .header("content-type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string().as_str()),
            _ => self.agent.get(&url).header("authorization", &authorization).call(),
        };
        let mut response = response.map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let message = value
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("unexpected answer from {}", self.base));
        let exit = match status {
            401 | 403 => 3,
            404 => 4,
            409 => 5,
            _ => 1,
        };
        Err(Failure::new(exit, format!("{message} (HTTP {status})")))
    }
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn strings(value: &Value, key: &str) -> String {
    let items: Vec<&str> = value
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(",")
    }
}

fn list_text(reviews: &[Value], all: bool) -> String {
    if reviews.is_empty() {
        return if all { "no reviews\n".to_string() } else { "no pending reviews\n".to_string() };
    }
    let now = unix_now();
    let mut rows = vec![[
        "ID".to_string(),
        "STATUS".to_string(),
        "REQUESTER".to_string(),
        "ROLE".to_string(),
        "REASONS".to_string(),
        "MODEL".to_string(),
        "AGE".to_string(),
        "APPROVALS".to_string(),
    ]];
    for review in reviews {
        let created = review.get("created_at").and_then(Value::as_i64).unwrap_or(now);
        rows.push([
            text(review, "id"),
            text(review, "status"),
            review.pointer("/requester/subject").and_then(Value::as_str).unwrap_or("-").to_string(),
            text(review, "role"),
            strings(review, "reasons"),
            text(review, "model"),
            format_duration(now - created),
            format!("{}/{}", text(review, "approvals"), text(review, "approvals_needed")),
        ]);
    }
    let widths: Vec<usize> =
        (0..8).map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn detail_text(review: &Value) -> String {
    let time = |key: &str| review.get(key).and_then(Value::as_i64).map(format_utc).unwrap_or_else(|| "-".to_string());
    let requester = review.get("requester").cloned().unwrap_or(Value::Null);
    let job: Vec<String> = requester
        .get("job")
        .and_then(Value::as_object)
        .map(|o| o.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    let mut out = format!(
        "review     {}\nstatus     {}\nurl        {}\nrequester  {} (issuer {})\ngroups     {}\n",
        text(review, "id"),
        text(review, "status"),
        text(review, "url"),
        text(&requester, "subject"),
        text(&requester, "issuer"),
        strings(&requester, "groups"),
    );
    if !job.is_empty() {
        out.push_str(&format!("job        {}\n", job.join(", ")));
    }
    out.push_str(&format!(
        "role       {}\nreasons    {}\nmodel      {}\ntools      {}\nmax_tokens {}\nbody       {} bytes{}\nmessages   {}\ncreated    {}\nexpires    {}\napprovals  {} of {}\n",
        text(review, "role"),
        strings(review, "reasons"),
        text(review, "model"),
        strings(review, "tools"),
        text(review, "max_tokens"),
        text(review, "body_bytes"),
        if review.get("mcp_servers").and_then(Value::as_bool).unwrap_or(false) { ", lists MCP servers" } else { "" },
        text(review, "messages"),
        time("created_at"),
        time("expires_at"),
        text(review, "approvals"),
        text(review, "approvals_needed"),
    ));
    for vote in review.get("votes").and_then(Value::as_array).into_iter().flatten() {
        let at = vote.get("at").and_then(Value::as_i64).map(format_utc).unwrap_or_default();
        out.push_str(&format!(
            "vote       {} {} at {at}: {}\n",
            text(vote, "reviewer"),
            text(vote, "decision"),
            text(vote, "comment")
        ));
    }
    for url in review.get("mcp_server_urls").and_then(Value::as_array).into_iter().flatten() {
        out.push_str(&format!("mcp server {}\n", url.as_str().unwrap_or_default()));
    }
    for (field, label) in
        [("system_excerpt", "system prompt"), ("excerpt", "newest turn"), ("prefill_excerpt", "prefill")]
    {
        let excerpt = text(review, field);
        if !excerpt.is_empty() {
            out.push_str(&format!("{label}\n"));
            for line in excerpt.lines() {
                out.push_str(&format!("  | {line}\n"));
            }
        }
    }
    out
}

fn outcome_text(answer: &Value) -> String {
    let review = answer.get("review").cloned().unwrap_or(Value::Null);
    let id = text(&review, "id");
    let who = review.pointer("/requester/subject").and_then(Value::as_str).unwrap_or("-").to_string();
    match answer.get("outcome").and_then(Value::as_str) {
        Some("approved") => format!("approved {id} ({who}, role {})\n", text(&review, "role")),
        Some("denied") => format!("denied {id} ({who}, role {})\n", text(&review, "role")),
        Some("awaiting_second_approver") => {
            format!("recorded your approval of {id}; a second approver is needed (two-person rule)\n")
        }
        _ => pretty(answer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review() -> Value {
        json!({"id": "rev_0123456789abcdef", "status": "pending", "url": "http://x/reviews/rev_0123456789abcdef",
               "requester": {"subject": "alice", "issuer": "warden-demo", "groups": ["eng"], "job": {"repository": "org/repo"}},
               "role": "developer", "reasons": ["opus_model"], "model": "claude-opus-4-1", "tools": ["Bash"],
               "max_tokens": 1024, "body_bytes": 10, "mcp_servers": true, "excerpt": "line 1\nline 2",
               "mcp_server_urls": ["https://mcp.example/a"], "messages": 3, "system_excerpt": "be careful",
               "prefill_excerpt": "",
               "approvals": 1, "approvals_needed": 2, "created_at": unix_now() - 120, "expires_at": unix_now() + 3000,
               "votes": [{"reviewer": "bob", "decision": "approve", "comment": "ok", "at": unix_now()}]})
    }

    #[test]
    fn lists_are_aligned_tables() {
        let out = list_text(&[review()], false);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("ID "));
        assert!(lines[1].contains("rev_0123456789abcdef  pending  alice"));
        assert!(lines[1].contains("opus_model"));
        assert!(lines[1].ends_with("1/2"));
        assert_eq!(list_text(&[], false), "no pending reviews\n");
    }

    #[test]
    fn details_show_context_votes_and_excerpt() {
        let out = detail_text(&review());
        for expected in [
            "requester  alice (issuer warden-demo)",
            "job        repository=org/repo",
            "approvals  1 of 2",
            "vote       bob approve",
            "messages   3",
            "mcp server https://mcp.example/a",
            "system prompt\n  | be careful",
            "newest turn\n  | line 1\n  | line 2",
        ] {
            assert!(out.contains(expected), "{expected}\n{out}");
        }
    }

    #[test]
    fn outcomes_are_one_line() {
        assert_eq!(
            outcome_text(&json!({"outcome": "approved", "review": review()})),
            "approved rev_0123456789abcdef (alice, role developer)\n"
        );
        assert!(outcome_text(&json!({"outcome": "awaiting_second_approver", "review": review()}))
            .contains("second approver"));
    }

    #[test]
    fn review_ids_are_checked_before_they_reach_a_url() {
        assert!(checked_id("rev_0123456789abcdef").is_ok());
        for bad in ["", "../x", "rev_1?x=1", "a/b"] {
            assert_eq!(checked_id(bad).unwrap_err().status, 2, "{bad}");
        }
    }
}

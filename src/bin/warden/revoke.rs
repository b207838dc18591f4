//! `warden revoke`: the kill switch's command line for `warden serve` (docs/identity.md, "The
//! kill switch").
//!
//! `subject|group|token VALUE [--reason TEXT] [--for DURATION]`, `job CLAIM=VALUE…` (every pair
//! must match), `list [--json]`, `lift ID`. The service is `--service URL` (env `WARDEN_SERVICE`,
//! default `http://127.0.0.1:8787`). The credential is a revoker's approver token
//! (`--token-file FILE` or `WARDEN_TOKEN`), or the gateway token (`--gateway-token-file FILE`:
//! the operator's break-glass, recorded as `gateway-token`); it is sent as
//! `Authorization: Bearer` and never printed.
//!
//! Exit status as `warden reviews`: 0 success; 1 unreachable or an unexpected answer (or 400);
//! 2 usage error; 3 authentication or permission refused; 4 no such revocation; 5 already
//! lifted, or too many active revocations.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::reviews::Client;
use crate::util::{finish, format_utc, pretty, Failure};

/// Environment variable holding the approver's token when no file is given.
const TOKEN_ENV: &str = "WARDEN_TOKEN";

/// Arguments of `warden revoke`.
#[derive(clap::Args, Debug)]
pub struct RevokeArgs {
    /// Base URL of `warden serve`.
    #[arg(long, env = "WARDEN_SERVICE", value_name = "URL", default_value = "http://127.0.0.1:8787", global = true)]
    pub service: String,

    /// File holding your (revoker's) approver token [default: the WARDEN_TOKEN environment variable].
    #[arg(long, value_name = "FILE", global = true, conflicts_with = "gateway_token_file")]
    pub token_file: Option<PathBuf>,

    /// File holding the gateway token (`warden serve init`'s `approvals-token`): revoke as the
    /// operator when no revoker group is configured.
    #[arg(long, value_name = "FILE", global = true)]
    pub gateway_token_file: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: RevokeCommand,
}

/// Options of a revocation.
#[derive(clap::Args, Debug)]
pub struct RevokeOptions {
    /// Why (the refused caller reads it; at most 200 characters).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Lapse after this long (`90s`, `15m`, `12h`) [default: until lifted].
    #[arg(long = "for", value_name = "DURATION",
          value_parser = |text: &str| warden::core::policy::units::parse_duration(text).map(|s| s.0))]
    pub duration: Option<u64>,
}

/// Subcommands of `warden revoke`.
#[derive(clap::Subcommand, Debug)]
pub enum RevokeCommand {
    /// Revoke every token of a subject (`sub`).
    Subject {
        /// The subject, exactly as tokens carry it.
        value: String,
        #[command(flatten)]
        options: RevokeOptions,
    },
    /// Revoke every token carrying a group.
    Group {
        /// The group, exactly as the groups claim carries it.
        value: String,
        #[command(flatten)]
        options: RevokeOptions,
    },
    /// Revoke every token carrying all these claims (a CI job: `repository=acme/app run_id=77`).
    Job {
        /// `CLAIM=VALUE` pairs, all of which must match.
        #[arg(required = true, value_name = "CLAIM=VALUE")]
        pairs: Vec<String>,
        #[command(flatten)]
        options: RevokeOptions,
    },
    /// Revoke one token by its `jti`.
    Token {
        /// The token's `jti`.
        value: String,
        #[command(flatten)]
        options: RevokeOptions,
    },
    /// List the active revocations.
    List {
        /// Print the service's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lift a revocation: its identity gets access again.
    Lift {
        /// The revocation's number (`warden revoke list`).
        id: u64,
    },
}

/// Runs `warden revoke`.
pub fn run(args: &RevokeArgs) -> ExitCode {
    finish("warden revoke", execute(args))
}

fn execute(args: &RevokeArgs) -> Result<String, Failure> {
    let request = match &args.command {
        RevokeCommand::Subject { value, options } => Some(revocation("subject", Some(value), None, options)),
        RevokeCommand::Group { value, options } => Some(revocation("group", Some(value), None, options)),
        RevokeCommand::Token { value, options } => Some(revocation("token", Some(value), None, options)),
        RevokeCommand::Job { pairs, options } => Some(revocation("job", None, Some(job_claims(pairs)?), options)),
        RevokeCommand::List { .. } | RevokeCommand::Lift { .. } => None,
    };
    let client = Client::new(&args.service, read_token(args)?)?;
    if let Some(request) = request {
        let answer = client.call("POST", "/v1/revocations", Some(request))?;
        return Ok(format!("revoked {}\n", one_line(answer.get("revocation").unwrap_or(&Value::Null))));
    }
    match &args.command {
        RevokeCommand::Lift { id } => {
            let answer = client.call("POST", &format!("/v1/revocations/{id}/lift"), None)?;
            Ok(format!("lifted {}\n", one_line(answer.get("revocation").unwrap_or(&Value::Null))))
        }
        RevokeCommand::List { json } => {
            let answer = client.call("GET", "/v1/revocations", None)?;
            if *json {
                return Ok(pretty(&answer));
            }
            Ok(list_text(&answer))
        }
        _ => Ok(String::new()),
    }
}

fn revocation(
    kind: &str,
    value: Option<&str>,
    claims: Option<BTreeMap<String, String>>,
    options: &RevokeOptions,
) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("kind".into(), json!(kind));
    body.insert("reason".into(), json!(options.reason));
    if let Some(value) = value {
        body.insert("value".into(), json!(value));
    }
    if let Some(claims) = claims {
        body.insert("claims".into(), json!(claims));
    }
    if let Some(seconds) = options.duration {
        body.insert("expires_in".into(), json!(seconds));
    }
    Value::Object(body)
}

/// `CLAIM=VALUE` arguments as a claims map (a value may hold `=` and `,`).
fn job_claims(pairs: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .filter(|(claim, _)| !claim.is_empty())
                .map(|(claim, value)| (claim.to_string(), value.to_string()))
                .ok_or_else(|| Failure::new(2, format!("{pair:?} is not CLAIM=VALUE")))
        })
        .collect()
}

fn read_token(args: &RevokeArgs) -> Result<String, Failure> {
    let (token, what) = match (&args.gateway_token_file, &args.token_file) {
        (Some(path), _) | (None, Some(path)) => (
            std::fs::read_to_string(path)
                .map_err(|e| Failure::new(2, format!("cannot read the token file {}: {e}", path.display())))?,
            "token file",
        ),
        (None, None) => (std::env::var(TOKEN_ENV).unwrap_or_default(), TOKEN_ENV),
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(Failure::new(
            2,
            format!(
                "no credential ({what} is empty): pass --token-file FILE, --gateway-token-file FILE or set {TOKEN_ENV}"
            ),
        ));
    }
    Ok(token)
}

/// `#7 subject "alice" (left the company) by bob, until lifted`.
fn one_line(entry: &Value) -> String {
    let value = match entry.get("claims").and_then(Value::as_object) {
        Some(claims) => {
            claims.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(", ")
        }
        None => entry["value"].as_str().unwrap_or_default().to_string(),
    };
    let reason = entry["reason"].as_str().filter(|r| !r.is_empty()).unwrap_or("no reason given");
    let until =
        entry["expires_at"].as_i64().map_or("until lifted".to_string(), |at| format!("until {}", format_utc(at)));
    format!(
        "#{} {} {value:?} ({reason}) by {}, {until}",
        entry["id"],
        entry["kind"].as_str().unwrap_or("?"),
        entry["revoked_by"].as_str().unwrap_or("?")
    )
}

fn list_text(answer: &Value) -> String {
    let entries = answer["revocations"].as_array().cloned().unwrap_or_default();
    let mut text = format!("list version {}: {} active revocations\n", answer["version"], entries.len());
    for entry in &entries {
        text.push_str(&one_line(entry));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_pairs_split_at_the_first_equals_sign_and_need_a_claim() {
        let claims = job_claims(&["repository=acme/app".into(), "ref=refs/heads/a=b,c".into()]).unwrap();
        assert_eq!(claims["ref"], "refs/heads/a=b,c");
        assert_eq!(claims["repository"], "acme/app");
        assert_eq!(job_claims(&["=x".into()]).unwrap_err().status, 2);
        assert_eq!(job_claims(&["nothing".into()]).unwrap_err().status, 2);
    }

    #[test]
    fn entries_read_as_one_line_each() {
        let answer = json!({"version": 3, "revocations": [
            {"id": 1, "kind": "subject", "value": "alice", "reason": "left", "expires_at": null, "revoked_by": "bob"},
            {"id": 2, "kind": "job", "claims": {"repository": "acme/app", "run_id": "7"}, "reason": "",
             "expires_at": 1796601600, "revoked_by": "gateway-token"}]});
        assert_eq!(
            list_text(&answer),
            "list version 3: 2 active revocations\n\
             #1 subject \"alice\" (left) by bob, until lifted\n\
             #2 job \"repository=acme/app, run_id=7\" (no reason given) by gateway-token, until 2026-12-07T00:00:00Z\n"
        );
    }
}

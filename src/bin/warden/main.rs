//! `warden`: the native command-line companion of the Warden filter.
//!
//! - `warden check FILE` validates a policy exactly as the filter does at start-up and prints
//!   `OK` or every error with its field path (exit status 0 or 1); a JWKS file Envoy could not
//!   load is a warning, an error with `--require-credentials` (docs/policy.md).
//! - `warden token init|mint` creates a demo signing key and mints short-lived test tokens.
//! - `warden login` signs a person in at `warden serve`'s token service (browser with PKCE, or
//!   `--device`) and keeps the sign-in; `warden token` (no subcommand) prints a fresh token from it
//!   (Claude Code's `apiKeyHelper`); `warden logout` forgets it (docs/identity.md).
//! - `warden redact` runs the filter's DLP engine on stdin → stdout: masks secrets and personal
//!   data in a text (or a `--jsonl` batch) with the built-in detectors or a policy role's profile,
//!   prints the counts per detector on stderr; `--check` lints, `--list` lists the detectors.
//! - `warden serve` runs the approval service (holds, reviews, the approvers' page); `warden
//!   serve init` writes its key pair and the gateway token (docs/approvals.md).
//! - `warden reviews list|show|approve|deny` is the approvers' command line for that service.
//! - `warden audit verify|export|replay` reads the audit trail `warden serve` stores: checks its
//!   hash chain and signed checkpoints, exports it as JSONL, replays a session (docs/audit.md).
//! - `warden usage` sums tokens and cost per subject, role, job, model, day or hour over a window
//!   from that database (docs/usage.md).
//! - `warden revoke subject|group|job|token|list|lift` is the kill switch's command line
//!   (docs/identity.md, "The kill switch").
//! - `warden budget leases` lists the budget ledger gateways lease from `warden serve`
//!   (docs/budgets.md).
//! - `warden tools test` judges a tool call (JSON) by a policy role's tool rules (docs/tools.md).

mod audit;
mod budget;
mod login;
mod redact;
mod reviews;
mod revoke;
mod token;
mod tools;
mod usage;
mod util;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use warden::core::policy::{Jwks, Policy, PolicyError};

/// Warden: identity-aware gateway for Claude API traffic.
#[derive(Parser, Debug)]
#[command(name = "warden", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a policy file offline (same rules as the filter); prints OK or the errors.
    Check(CheckArgs),
    /// A fresh token from your `warden login` sign-in (Claude Code's apiKeyHelper); `init|mint`:
    /// the demo issuer's signing key and test tokens.
    Token(token::TokenArgs),
    /// Sign in at `warden serve`'s token service (browser, or --device) and keep the sign-in.
    Login(login::LoginArgs),
    /// Forget the stored sign-in (and revoke it at the service when it can).
    Logout(login::LogoutArgs),
    /// Mask secrets and personal data on stdin → stdout with the filter's DLP engine.
    Redact(redact::RedactArgs),
    /// Run the approval service (`warden serve init` writes its keys).
    Serve(warden::service::ServeArgs),
    /// Decide approval reviews: list, show, approve, deny.
    Reviews(reviews::ReviewsArgs),
    /// The audit trail: verify its chain, export it, replay a session.
    Audit(audit::AuditArgs),
    /// Spend per subject, role, job, model, day or hour over a window, from the audit store.
    Usage(usage::UsageArgs),
    /// The budget ledger `warden serve` keeps for gateways that share budgets (leases).
    Budget(budget::BudgetArgs),
    /// The kill switch: revoke a subject, group, job or token on every gateway; list; lift.
    Revoke(revoke::RevokeArgs),
    /// Tool rules: `test` judges a tool call (JSON) by a role's rules, offline.
    Tools(tools::ToolsArgs),
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// Policy file (YAML or JSON).
    file: std::path::PathBuf,
    /// Check as the gateway loads the policy on this machine: every credential's environment
    /// variable must be set and every JWKS file readable (without it, a JWKS problem is a warning).
    #[arg(long)]
    require_credentials: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check(&args),
        Command::Token(token::TokenArgs { command: None, fresh }) => login::print_fresh_token(&fresh),
        Command::Token(token::TokenArgs { command: Some(command), .. }) => match token::run(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("warden token: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Login(args) => login::login(&args),
        Command::Logout(args) => login::logout(&args),
        Command::Redact(args) => redact::run(&args),
        Command::Serve(args) => warden::service::run(args),
        Command::Reviews(args) => reviews::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Usage(args) => usage::run(&args),
        Command::Budget(args) => budget::run(&args),
        Command::Revoke(args) => revoke::run(&args),
        Command::Tools(args) => tools::run(&args),
    }
}

fn check(args: &CheckArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let mut file_problems = Vec::new();
    let result = Policy::parse(&text).and_then(|policy| {
        file_problems = missing_jwks_files(&policy, &args.file);
        if args.require_credentials {
            policy.resolve_credentials(|name| std::env::var(name).ok()).map(|_| ())
        } else {
            Ok(())
        }
    });
    let file = args.file.display();
    match result {
        // Offline (no --require-credentials) a JWKS file mounted only where Envoy runs is no
        // error: the problem is shown as a warning and the policy is still OK.
        Ok(()) if file_problems.is_empty() || !args.require_credentials => {
            for problem in &file_problems {
                eprintln!("{file}: warning: {problem}");
            }
            println!("OK");
            ExitCode::SUCCESS
        }
        Ok(()) => {
            for problem in &file_problems {
                println!("{file}: {problem}");
            }
            ExitCode::FAILURE
        }
        Err(errors) => {
            for error in errors.0.iter().chain(&file_problems) {
                println!("{file}: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The providers' `jwks: { file: … }` that Envoy could not load: missing, unreadable, or not a
/// JWKS (a JSON object with a `keys` list). Relative paths are relative to the policy file, as
/// scripts/render_envoy.py resolves them.
fn missing_jwks_files(policy: &Policy, policy_file: &std::path::Path) -> Vec<PolicyError> {
    let base = policy_file.parent().unwrap_or(std::path::Path::new("."));
    let mut problems = Vec::new();
    for (i, provider) in policy.identity.providers.iter().enumerate() {
        let Jwks::File(name) = &provider.jwks else { continue };
        let path = base.join(name);
        let problem = match std::fs::read_to_string(&path) {
            Err(e) => format!("cannot read {name:?} ({}): {e}; Envoy will not start without it", path.display()),
            Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(jwks) if jwks.get("keys").is_some_and(serde_json::Value::is_array) => continue,
                _ => format!("{name:?} ({}) is not a JWKS: a JSON object with a `keys` list", path.display()),
            },
        };
        problems.push(PolicyError { path: format!("identity.providers[{i}].jwks.file"), message: problem });
    }
    problems
}

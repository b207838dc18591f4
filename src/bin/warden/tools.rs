//! `warden tools test`: judge one tool call by a policy role's tool rules, offline.
//!
//! People try rules before deploying them: the call is given as JSON — a content block as Claude
//! sends it (`{"type": "tool_use", "id": …, "name": "Bash", "input": {…}}`, also
//! `server_tool_use` and `mcp_tool_use` with its `server_name`) or just `{"name", "input"}` — in a
//! file or on stdin, and judged by exactly the engine the filter runs
//! ([`warden::core::tools::rules::ToolRules::judge`]) with the workspace and subagent flag given
//! on the command line. The verdict is printed as `action`, `rule` and `reason` lines (or one
//! JSON object with `--json`).
//!
//! Exit status: 0 allow, 3 deny, 4 approve; 1 an error (unreadable or invalid policy, unknown
//! role, a call that is not such JSON); 2 a usage error.

use serde::Deserialize;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use warden::core::policy::Policy;
use warden::core::tools::{CallContext, CallKind, Judgement, ToolAction, ToolCall};

/// Exit status of a call the rules deny.
const EXIT_DENY: u8 = 3;
/// Exit status of a call the rules hold for approval.
const EXIT_APPROVE: u8 = 4;

/// Shown after the options in `warden tools test --help`.
const AFTER_HELP: &str = "The call is a tool_use content block as Claude sends it, or just \
    {\"name\": …, \"input\": {…}}; an mcp_tool_use block names its server_name.\n\
    Exit status: 0 allow, 3 deny, 4 approve, 1 error (policy, role or call), 2 usage error. \
    Reference: docs/tools.md.";

/// Arguments of `warden tools`.
#[derive(clap::Args, Debug)]
pub struct ToolsArgs {
    #[command(subcommand)]
    command: ToolsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ToolsCommand {
    /// Judge a tool call (JSON, a file or stdin) by a role's tool rules; prints the verdict.
    Test(TestArgs),
}

/// Arguments of `warden tools test`.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
struct TestArgs {
    /// Policy file (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Role whose rules judge the call.
    #[arg(long)]
    role: String,
    /// Judge the call as a subagent's (rules with `agents: subagent` apply).
    #[arg(long)]
    subagent: bool,
    /// The agent's working directory (for `outside_workspace` conditions and relative paths).
    /// Default: unknown.
    #[arg(long, value_name = "DIR")]
    workspace: Option<String>,
    /// Print the verdict as one JSON object.
    #[arg(long)]
    json: bool,
    /// The call as JSON; `-` or nothing reads stdin.
    #[arg(value_name = "CALL.json")]
    call: Option<PathBuf>,
}

/// A call as given: a content block or its `name` and `input`.
#[derive(Deserialize)]
struct CallInput {
    #[serde(rename = "type", default)]
    block_type: Option<String>,
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    input: Value,
}

/// Runs `warden tools …`.
pub fn run(args: &ToolsArgs) -> ExitCode {
    match &args.command {
        ToolsCommand::Test(test) => match judge(test) {
            Ok(judgement) => {
                print_judgement(&judgement, test.json);
                match judgement.action {
                    ToolAction::Allow => ExitCode::SUCCESS,
                    ToolAction::Deny => ExitCode::from(EXIT_DENY),
                    ToolAction::Approve => ExitCode::from(EXIT_APPROVE),
                }
            }
            Err(message) => {
                eprintln!("warden tools test: {message}");
                ExitCode::FAILURE
            }
        },
    }
}

fn judge(args: &TestArgs) -> Result<Judgement, String> {
    let text =
        std::fs::read_to_string(&args.policy).map_err(|e| format!("{}: cannot read: {e}", args.policy.display()))?;
    let policy = Policy::parse(&text).map_err(|errors| {
        let lines: Vec<String> = errors.0.iter().map(|e| format!("{}: {e}", args.policy.display())).collect();
        format!("the policy is invalid:\n{}", lines.join("\n"))
    })?;
    let role = policy
        .role_index(&args.role)
        .and_then(|i| policy.roles.get(i))
        .ok_or_else(|| format!("the policy has no role {:?}", args.role))?;
    let call = read_call(args.call.as_deref())?;
    let context = CallContext { workspace: args.workspace.clone(), subagent: args.subagent };
    Ok(role.tool_rules.judge(&call, &context))
}

fn read_call(path: Option<&std::path::Path>) -> Result<ToolCall, String> {
    let text = match path.filter(|p| p.as_os_str() != "-") {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read stdin: {e}"))?;
            text
        }
    };
    let given: CallInput = serde_json::from_str(&text)
        .map_err(|e| format!("the call is not a JSON tool_use block or {{\"name\", \"input\"}}: {e}"))?;
    let kind = match given.block_type.as_deref() {
        None => CallKind::ToolUse,
        Some(block_type) => CallKind::of_block_type(block_type)
            .ok_or_else(|| format!("type {block_type:?} is not tool_use, server_tool_use or mcp_tool_use"))?,
    };
    if !given.input.is_object() {
        return Err("the call's input must be a JSON object".to_string());
    }
    Ok(ToolCall {
        id: given.id.unwrap_or_else(|| "toolu_test".to_string()),
        kind,
        name: given.name,
        server_name: given.server_name,
        input: given.input,
        malformed: false,
    })
}

fn print_judgement(judgement: &Judgement, json: bool) {
    if json {
        let verdict = serde_json::json!({
            "action": judgement.action.as_str(),
            "rule": judgement.rule,
            "reason": judgement.reason,
        });
        println!("{verdict}");
    } else {
        println!("action: {}", judgement.action.as_str());
        println!("rule: {}", judgement.rule.as_deref().unwrap_or("(none: no rule matched)"));
        if !judgement.reason.is_empty() {
            println!("reason: {}", judgement.reason);
        }
    }
}

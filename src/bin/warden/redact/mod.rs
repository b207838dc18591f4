//! `warden redact`: the filter's DLP engine on stdin → stdout.
//!
//! Redacts a transcript, a log or a batch of texts offline with exactly the detectors, actions
//! and masks the gateway uses ([`warden::core::dlp::text::redact`] over the same [`Engine`]):
//!
//! * without `--policy`, every built-in detector masks;
//! * with `--policy`, the detectors (built-in plus the policy's own) and the actions of the
//!   role's profile for one direction apply — including `block` and `audit-only`;
//! * masks are keyed like the gateway's (see [`mask_key`]), so a value masked here gets the same
//!   `[REDACTED:<id>:<hash>]` as in the gateway's traffic when the same secret keys both.
//!
//! Plain mode rewrites all of stdin; `--jsonl` streams `{"id", "text"}` lines; `--eval DIR`
//! scores the same redaction on an evaluation set ([`eval`]). Findings are
//! counted (never shown) and the count goes to stderr. Exit status: 0 done, 1 error, 2 a usage error, 4 a `block`
//! detector matched, 3 with `--check` when anything was found.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use warden::core::dlp::catalog;
use warden::core::dlp::detector::{Category, DetectorSpec};
use warden::core::dlp::engine::{Action, Engine};
use warden::core::dlp::mask::{MaskKey, Tally};
use warden::core::dlp::text::{redact, Blocked, Redaction};
use warden::core::policy::Policy;

mod eval;

/// Environment variable holding the mask secret unless `--mask-key-env` names another.
const DEFAULT_MASK_KEY_ENV: &str = "WARDEN_MASK_KEY";
/// Exit status when a `block` detector matched.
const EXIT_BLOCKED: u8 = 4;
/// Exit status of `--check` when anything was found.
const EXIT_FOUND: u8 = 3;

/// Shown after the options in `warden redact --help`.
const AFTER_HELP: &str = "Reads stdin and writes it to stdout with every finding masked as \
    [REDACTED:<detector>:<hash>], byte-identical elsewhere; the counts per detector go to stderr \
    (never the values).\n\
    Exit status: 0 done, 1 error, 2 usage error, 4 a block detector matched (nothing written in plain mode), \
    3 with --check when anything was found, 5 with --eval when streaming differs from one-shot. Reference: docs/dlp.md.";

/// Arguments of `warden redact`.
///
/// Reads stdin, writes the redacted text to stdout (byte-identical except at matched spans) and
/// prints what was found, as counts per detector, on stderr (`warden redact: masked email=2`).
/// Exit status: 0 done, 1 error, 2 a usage error, 4 a `block` detector matched, 3 with `--check` when anything
/// was found.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct RedactArgs {
    /// Policy file (YAML or JSON) whose detectors and DLP profile apply. Without it, every
    /// built-in detector masks.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Role whose DLP profile applies; required when the policy has more than one role.
    #[arg(long)]
    pub role: Option<String>,
    /// Which of the profile's action tables applies: `request` (what clients send) or
    /// `response` (what Claude returns; the built-in default profile masks personal data there
    /// too). Default: response.
    #[arg(long, value_enum)]
    pub direction: Option<Direction>,
    /// Environment variable holding the mask secret: the same value as the credential that keys
    /// the gateway's masks (the policy's `dlp.mask_key` credential, else the role's upstream key),
    /// so masks match the gateway's. When it is unset and `--policy` is given, the policy's own
    /// credential variables are read instead; otherwise masks are unkeyed (a warning says so).
    #[arg(long, value_name = "VAR", default_value = DEFAULT_MASK_KEY_ENV)]
    pub mask_key_env: String,
    /// Batch mode: every input line is a JSON object `{"id": <any JSON>, "text": "<string>"}`
    /// (other fields ignored, blank lines skipped); every output line is `{"id", "text"}` with the
    /// same id, in the same order, or `{"id", "blocked": "<detector>"}` when a `block` detector
    /// matched (exit status 4 at the end). Streams line by line; stops at the first malformed
    /// line with an error naming it (exit status 1).
    #[arg(long, conflicts_with = "list")]
    pub jsonl: bool,
    /// Lint mode: exit status 3 when anything was found (masked, blocked or audited), else 0; the
    /// output is still written.
    #[arg(long, conflicts_with = "list")]
    pub check: bool,
    /// Evaluation mode: redact every text of DIR/secrets.jsonl and DIR/clean.jsonl (the shapes
    /// are in docs/dlp.md, "Evaluation") and print recall per kind and category, false positives
    /// per clean category, one-shot MB/s and whether streaming gives the one-shot output.
    /// Exit status 5 when a streamed output differs.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["list", "jsonl", "check"])]
    pub eval: Option<PathBuf>,
    /// With `--eval`: print the report as JSON instead of tables.
    #[arg(long, requires = "eval")]
    pub json: bool,
    /// Print the detectors (`id<TAB>category<TAB>description`, one per line) and exit; with
    /// `--policy`, including the policy's own detectors.
    #[arg(long)]
    pub list: bool,
}

/// A direction of traffic, picking one action table of a profile.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// What clients send to Claude.
    Request,
    /// What Claude returns.
    Response,
}

/// Runs `warden redact`.
pub fn run(args: &RedactArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("warden redact: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What to redact with: the compiled detectors, the actions and the key.
struct Setup {
    engine: Engine,
    actions: Vec<Action>,
    key: MaskKey,
}

fn run_inner(args: &RedactArgs) -> Result<ExitCode, String> {
    if args.policy.is_none() && (args.role.is_some() || args.direction.is_some()) {
        return Err("--role and --direction need --policy".into());
    }
    let policy = match &args.policy {
        Some(path) => match load_policy(path) {
            Some(policy) => Some(policy),
            None => return Ok(ExitCode::FAILURE),
        },
        None => None,
    };
    if args.list {
        let specs = match &policy {
            Some(policy) => policy.dlp.engine.specs().to_vec(),
            None => catalog::builtin(),
        };
        return list(&specs).map(|()| ExitCode::SUCCESS);
    }
    let setup = match policy {
        Some(policy) => with_policy(args, policy)?,
        None => without_policy(args)?,
    };
    let redaction = Redaction { engine: &setup.engine, actions: &setup.actions, key: &setup.key };
    if let Some(dir) = &args.eval {
        return eval::run(&redaction, dir, args.json);
    }
    let mut tally = Tally::default();
    let outcome = if args.jsonl { jsonl(&redaction, &mut tally) } else { plain(&redaction, &mut tally) };
    if !tally.is_empty() {
        eprintln!("warden redact: {tally}");
    }
    let blocked = outcome?;
    Ok(if args.check && !tally.is_empty() {
        ExitCode::from(EXIT_FOUND)
    } else if blocked {
        ExitCode::from(EXIT_BLOCKED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads and validates the policy, printing every error like `warden check` (on stderr).
fn load_policy(path: &std::path::Path) -> Option<Policy> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", path.display());
            return None;
        }
    };
    match Policy::parse(&text) {
        Ok(policy) => Some(policy),
        Err(errors) => {
            for error in &errors.0 {
                eprintln!("{}: {error}", path.display());
            }
            None
        }
    }
}

fn list(specs: &[DetectorSpec]) -> Result<(), String> {
    let mut out = BufWriter::new(io::stdout().lock());
    for spec in specs {
        let category = match spec.category {
            Category::Credential => "credential",
            Category::Pii => "pii",
        };
        writeln!(out, "{}\t{category}\t{}", spec.id, spec.description).map_err(write_error)?;
    }
    out.flush().map_err(write_error)
}

/// Every built-in detector masks.
fn without_policy(args: &RedactArgs) -> Result<Setup, String> {
    let engine = Engine::new(catalog::builtin()).map_err(|errors| {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("built-in detectors do not compile: {}", errors.join("; "))
    })?;
    let actions = vec![Action::Mask; engine.specs().len()];
    let key = env_mask_key(&args.mask_key_env).unwrap_or_else(|| unkeyed(&args.mask_key_env));
    Ok(Setup { engine, actions, key })
}

/// The role's profile for the direction, keyed like the gateway when the keys are at hand.
fn with_policy(args: &RedactArgs, policy: Policy) -> Result<Setup, String> {
    let names = || policy.roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ");
    let role = match (&args.role, policy.roles.len()) {
        (Some(name), _) => {
            policy.role_index(name).ok_or_else(|| format!("unknown role {name:?} (the policy has: {})", names()))?
        }
        (None, 1) => 0,
        (None, _) => return Err(format!("the policy has several roles ({}): choose one with --role", names())),
    };
    let profile = policy
        .roles
        .get(role)
        .and_then(|r| policy.dlp.profiles.get(r.dlp_profile))
        .ok_or_else(|| "the role's DLP profile is missing".to_string())?;
    let actions = match args.direction.unwrap_or(Direction::Response) {
        Direction::Request => profile.request.clone(),
        Direction::Response => profile.response.clone(),
    };
    let key = match env_mask_key(&args.mask_key_env) {
        Some(key) => key,
        None => match policy.resolve_credentials(|name| std::env::var(name).ok()) {
            Ok(keys) => keys.mask.get(role).cloned().unwrap_or_else(|| unkeyed(&args.mask_key_env)),
            Err(_) if actions.contains(&Action::Mask) => unkeyed(&args.mask_key_env),
            Err(_) => MaskKey::new(Vec::new()),
        },
    };
    Ok(Setup { engine: policy.dlp.engine, actions, key })
}

/// The mask key from the secret in `variable`, derived like the gateway derives it from a
/// credential (the value trimmed; unset or blank is no key).
fn env_mask_key(variable: &str) -> Option<MaskKey> {
    let value = std::env::var(variable).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| MaskKey::derived_from(value))
}

/// The empty key, after the one warning that masks will not match a gateway's.
fn unkeyed(variable: &str) -> MaskKey {
    eprintln!("warden redact: masks are not keyed (set {variable} to match a gateway's masks)");
    MaskKey::new(Vec::new())
}

fn write_error(e: io::Error) -> String {
    format!("cannot write the output: {e}")
}

/// Redacts all of stdin. Returns whether a `block` detector matched (then nothing is written).
fn plain(redaction: &Redaction, tally: &mut Tally) -> Result<bool, String> {
    let mut input = Vec::new();
    io::stdin().lock().read_to_end(&mut input).map_err(|e| format!("cannot read stdin: {e}"))?;
    let text = String::from_utf8(input)
        .map_err(|e| format!("stdin is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))?;
    match redact(redaction, &text, tally) {
        Ok(out) => {
            let mut stdout = io::stdout().lock();
            stdout.write_all(out.as_bytes()).map_err(write_error)?;
            stdout.flush().map_err(write_error)?;
            Ok(false)
        }
        Err(Blocked { detector }) => {
            eprintln!("warden redact: blocked: {detector}");
            Ok(true)
        }
    }
}

/// One input line of `--jsonl`.
#[derive(Deserialize)]
struct InputLine<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
    text: String,
}

/// One output line of `--jsonl`.
#[derive(Serialize)]
struct OutputLine<'a> {
    id: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked: Option<&'a str>,
}

/// Redacts stdin line by line. Returns whether any line was blocked.
fn jsonl(redaction: &Redaction, tally: &mut Tally) -> Result<bool, String> {
    let mut reader = BufReader::with_capacity(1 << 16, io::stdin());
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut line = Vec::new();
    let mut number = 0usize;
    let mut blocked = false;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|e| format!("cannot read stdin: {e}"));
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                out.flush().map_err(write_error)?;
                return Err(e);
            }
        };
        if read == 0 {
            break;
        }
        number += 1;
        match jsonl_line(redaction, &line, tally, &mut out) {
            Ok(was_blocked) => blocked |= was_blocked,
            Err(LineError::Input(message)) => {
                out.flush().map_err(write_error)?;
                return Err(format!("line {number}: {message}"));
            }
            Err(LineError::Output(e)) => return Err(write_error(e)),
        }
        // Let interactive pipelines see each result; batch the writes while input is queued.
        if reader.buffer().is_empty() {
            out.flush().map_err(write_error)?;
        }
    }
    out.flush().map_err(write_error)?;
    Ok(blocked)
}

enum LineError {
    /// The line is not a valid input line (the message never quotes its content).
    Input(String),
    Output(io::Error),
}

/// Redacts one `--jsonl` line (with its newline, if any). Returns whether it was blocked.
fn jsonl_line(redaction: &Redaction, line: &[u8], tally: &mut Tally, out: &mut impl Write) -> Result<bool, LineError> {
    let line = std::str::from_utf8(line).map_err(|_| LineError::Input("not UTF-8 text".into()))?;
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(false);
    }
    let shape = r#"expected a JSON object {"id": <any JSON value>, "text": "<string>"}"#;
    if !trimmed.starts_with('{') {
        return Err(LineError::Input(shape.into()));
    }
    let input: InputLine = serde_json::from_str(trimmed).map_err(|e| {
        LineError::Input(match e.classify() {
            // Syntax messages are fixed texts with a position; data errors can quote values.
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => format!("invalid JSON: {e}"),
            _ => shape.into(),
        })
    })?;
    let result = redact(redaction, &input.text, tally);
    let output = match &result {
        Ok(text) => OutputLine { id: input.id, text: Some(text), blocked: None },
        Err(Blocked { detector }) => OutputLine { id: input.id, text: None, blocked: Some(detector) },
    };
    serde_json::to_writer(&mut *out, &output).map_err(|e| LineError::Output(e.into()))?;
    out.write_all(b"\n").map_err(LineError::Output)?;
    Ok(result.is_err())
}

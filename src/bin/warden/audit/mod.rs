//! `warden audit verify|export|replay`: the audit trail `warden serve` stores (docs/audit.md),
//! read from its SQLite database (read-only) or from an export.
//!
//! Modules: [`chain`] (canonical bytes, hashes, record parsing), [`store`] (the [`store::AuditStore`]
//! trait and SQLite backend), [`verify`] (tamper and loss detection), [`export`] (JSONL),
//! [`replay`] (conversations).
//!
//! Exit codes: 0 success (verify: intact), 1 verify found tampering or loss, 2 usage or I/O error.

pub mod access_log;
pub mod chain;
pub mod export;
pub mod replay;
pub mod store;
pub mod usage;
pub mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use ct_codecs::{Base64, Decoder};

use store::{RecordFilter, SqliteAuditStore};

/// Arguments of `warden audit`.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// Subcommands of `warden audit`.
#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Recompute the hash chain, blob names and checkpoint signatures; report the first break and
    /// every sequence gap (exit 0 intact, 1 tampering or loss found, 2 error).
    Verify(VerifyArgs),
    /// Write records (with chain fields), the blobs they reference and the checkpoints as JSONL.
    Export(ExportArgs),
    /// Print a session's conversation turn by turn.
    Replay(ReplayArgs),
}

/// Arguments of `warden audit verify`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["db", "export"])))]
pub struct VerifyArgs {
    /// The `warden serve` database.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// An export written by `warden audit export`.
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// The service's public key (standard base64 of 32 bytes, `approvals-verdict-key.pub`);
    /// without it checkpoint signatures are not checked.
    #[arg(long, value_name = "BASE64", conflicts_with = "public_key_file")]
    pub public_key: Option<String>,
    /// A file holding the public key.
    #[arg(long, value_name = "FILE")]
    pub public_key_file: Option<PathBuf>,
    /// Envoy's access log: every record it names (`audit_record=`, `audit_hash=`) must be stored
    /// with that hash.
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
}

/// Arguments of `warden audit export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The `warden serve` database.
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// Only records whose time is at or after this (ms since the epoch).
    #[arg(long, value_name = "MS")]
    pub since: Option<i64>,
    /// Only this session's records.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Arguments of `warden audit replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The `warden serve` database.
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// The session id (`X-Claude-Code-Session-Id`).
    #[arg(long, value_name = "ID")]
    pub session: String,
    /// Sleep the original gaps between requests (each at most 5 s).
    #[arg(long)]
    pub pace: bool,
}

/// Runs `warden audit …`.
pub fn run(args: &AuditArgs) -> ExitCode {
    let result = match &args.command {
        AuditCommand::Verify(a) => verify_command(a),
        AuditCommand::Export(a) => export_command(a),
        AuditCommand::Replay(a) => replay_command(a),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("warden audit: {message}");
            ExitCode::from(2)
        }
    }
}

fn public_key(args: &VerifyArgs) -> Result<Option<[u8; 32]>, String> {
    let text = match (&args.public_key, &args.public_key_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        (None, None) => return Ok(None),
    };
    let bytes = Base64::decode_to_vec(text.trim(), None).map_err(|_| "the public key is not base64".to_string())?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Some)
        .map_err(|_| "the public key must be 32 bytes (an Ed25519 public key)".to_string())
}

fn verify_command(args: &VerifyArgs) -> Result<ExitCode, String> {
    let key = public_key(args)?;
    let trail: Box<dyn verify::Trail> = match (&args.db, &args.export) {
        (Some(db), _) => Box::new(SqliteAuditStore::open_read_only(db).map_err(|e| format!("{}: {e}", db.display()))?),
        (None, Some(path)) => Box::new(verify::ExportFile::open(path).map_err(|e| e.to_string())?),
        (None, None) => return Err("give --db FILE or --export FILE".to_string()),
    };
    let mut report = verify::verify(trail.as_ref(), key.as_ref()).map_err(|e| e.to_string())?;
    if let Some(path) = &args.access_log {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let entries = access_log::parse(&text);
        report.problems.extend(access_log::cross_check(trail.as_ref(), &entries).map_err(|e| e.to_string())?);
        report.access_log_entries = Some(entries.len() as u64);
    }
    print!("{}", report.render());
    Ok(if report.intact() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn export_command(args: &ExportArgs) -> Result<ExitCode, String> {
    let store = SqliteAuditStore::open_read_only(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    let filter = RecordFilter { since: args.since, session: args.session.clone() };
    let mut out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let count = export::export(&store, &filter, &mut out).map_err(|e| e.to_string())?;
    eprintln!("warden audit: exported {count} records");
    Ok(ExitCode::SUCCESS)
}

fn replay_command(args: &ReplayArgs) -> Result<ExitCode, String> {
    let store = SqliteAuditStore::open_read_only(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    let mut out = std::io::stdout().lock();
    let count = replay::replay(&store, &args.session, args.pace, &mut out).map_err(|e| e.to_string())?;
    if count == 0 {
        return Err(format!("no records for session {:?}", args.session));
    }
    Ok(ExitCode::SUCCESS)
}

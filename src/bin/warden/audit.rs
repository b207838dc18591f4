//! `warden audit verify|export|replay|prune`: the audit trail `warden serve` stores
//! (docs/audit.md), read from its SQLite database (read-only) or from an export; `prune` is the
//! one command that writes (retention).
//!
//! The storage and the chain rules are the service's ([`warden::service::audit`]: chain, store,
//! verify, export, replay, retention); this module parses the arguments, calls them and prints.
//!
//! Exit codes: 0 success (verify: intact), 1 verify found tampering or loss, 2 usage or I/O error.

use std::path::PathBuf;
use std::process::ExitCode;

use ct_codecs::{Base64, Decoder};

use warden::service::audit::store::{AuditStore, RecordFilter, SqliteAuditStore};
use warden::service::audit::{access_log, export, replay, retention, verify};

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
    /// Remove the records stored before a date and the blobs no remaining record references,
    /// leaving a signed prune statement the remaining chain verifies from (safe while `warden
    /// serve` runs).
    Prune(PruneArgs),
}

/// Arguments of `warden audit prune`.
#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// The `warden serve` database.
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,
    /// Remove the records stored before the first one at or after this time: a UTC date
    /// (`2026-09-01`), a UTC time (`2026-09-01T12:00:00Z`), an age (`90d`, `36h`) or ms since
    /// the epoch.
    #[arg(long, value_name = "DATE")]
    pub before: String,
    /// The service's Ed25519 private key (`approvals-signing-key.pem`), which signs the prune.
    #[arg(long, value_name = "FILE")]
    pub signing_key: PathBuf,
    /// Only report what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Allow a cut less than a day old. Gateway workers name a stored text without carrying it
    /// again for up to an hour; pruning records that recent may leave a later record naming a
    /// blob no longer stored (`verify` reports it missing).
    #[arg(long)]
    pub allow_recent: bool,
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
    /// Only records whose time is at or after this: a date (2026-12-07), a date and time
    /// (2026-12-07T14:30, UTC unless it ends with an offset such as Z or +01:00) or ms since the
    /// epoch.
    #[arg(long, value_name = "WHEN", value_parser = warden::service::dates::parse_instant_arg)]
    pub since: Option<i64>,
    /// Only records whose time is before this (same forms as `--since`; a plain date means its
    /// midnight, so `--until 2026-12-08` ends with the 7th).
    #[arg(long, value_name = "WHEN", value_parser = warden::service::dates::parse_instant_arg)]
    pub until: Option<i64>,
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
        AuditCommand::Prune(a) => prune_command(a),
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
        let checked =
            access_log::cross_check(trail.as_ref(), &entries, &report.pruned_seqs).map_err(|e| e.to_string())?;
        report.problems.extend(checked.problems);
        report.access_log_pruned = checked.pruned;
        report.access_log_entries = Some(entries.len() as u64);
    }
    print!("{}", report.render());
    Ok(if report.intact() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn export_command(args: &ExportArgs) -> Result<ExitCode, String> {
    let store = SqliteAuditStore::open_read_only(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    let filter = RecordFilter { since: args.since, until: args.until, session: args.session.clone() };
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
    let pruned = store.pruned_session(&args.session).map_err(|e| e.to_string())?;
    if let Some(pruned) = &pruned {
        use std::io::Write as _;
        writeln!(out, "({})\n", retention::session_note(pruned)).map_err(|e| format!("cannot write: {e}"))?;
    }
    let count = replay::replay(&store, &args.session, args.pace, &mut out).map_err(|e| e.to_string())?;
    if count == 0 && pruned.is_none() {
        return Err(format!("no records for session {:?}", args.session));
    }
    Ok(ExitCode::SUCCESS)
}

fn prune_command(args: &PruneArgs) -> Result<ExitCode, String> {
    let now = crate::util::unix_now_millis();
    let before = retention::parse_before(&args.before, now).map_err(|e| format!("--before: {e}"))?;
    if before > now.saturating_sub(retention::MIN_CUT_AGE_MS) && !args.allow_recent {
        return Err("--before: the cut is less than a day old; gateways may still name blobs of records \
             that recent (add --allow-recent to prune anyway)"
            .to_string());
    }
    if !args.db.exists() {
        return Err(format!("{} does not exist", args.db.display()));
    }
    let signer = warden::service::approvals::signer::VerdictSigner::load(&args.signing_key)?;
    // Opening it as `warden serve` does applies the retention migration to an older database.
    drop(warden::service::store::Store::open(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?);
    let store = SqliteAuditStore::open(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    let pruned = retention::prune(&store, before, now, &signer, args.dry_run).map_err(|e| e.to_string())?;
    println!("warden audit prune: {pruned}");
    Ok(ExitCode::SUCCESS)
}

//! `warden serve`: the approval service (docs/approvals.md), and `warden serve init`, which writes
//! its key pair and the gateway token.
//!
//! Start-up reads everything that can be wrong before listening — the policy (the gateway's own
//! file, parsed by the same code), the approver rules in it, the identity providers' JWKS, the
//! verdict signing key, the gateway token, the SQLite database (migrated) — and exits with a
//! clear message on the first problem. It then serves HTTP/1 on `--listen` with tokio + axum,
//! sweeps expired reviews every 15 s, and stops at SIGINT/SIGTERM without waiting for held
//! requests (a hold cut short fails closed at the gateway, and its retry re-attaches to the same
//! pending review, which the database kept).
//!
//! Modules: [`service`] (holds and decisions), [`store`] (SQLite), [`rules`] (approver rules),
//! [`auth`] (gateway token, approvers' OIDC tokens, CSRF), [`signer`] (verdicts), [`api`] (JSON
//! endpoints), [`console`] (the pages' shared layout and navigation), [`page`] (review pages), [`webhook`] (notifications), [`audit`] (the audit trail's ingest
//! endpoint and signed checkpoints, docs/audit.md), [`sessions`] (the audit trail's pages),
//! [`usage`] (the usage page, docs/usage.md), [`leases`] (the budget ledger gateways lease
//! from, docs/budgets.md), [`util`].
//!
//! Logs: one line per event on stderr (start, review created / decided / expired, holds,
//! webhook failures). Tokens, keys and the webhook URL are never logged.

pub mod api;
pub mod audit;
pub mod auth;
pub mod cards;
pub mod console;
pub mod jwt;
pub mod leases;
pub mod page;
pub mod rules;
pub mod service;
pub mod sessions;
pub mod signer;
pub mod store;
#[allow(dead_code)] // the skeleton of the token service: its routes arrive with the slices of issue 13
pub mod tokens;
pub mod usage;
pub mod util;
pub mod webhook;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use warden::core::policy::Policy;

use audit::{AuditState, Ledger};
use auth::{GatewayToken, OidcVerifier};
use leases::{LeaseLedger, LeaseState};
use rules::Rules;
use service::{Service, ServiceParts};
use sessions::SessionPages;
use signer::VerdictSigner;
use store::Store;
use util::log_event;
use webhook::Webhook;

/// File names `warden serve init` writes.
pub const SIGNING_KEY_FILE: &str = "approvals-signing-key.pem";
/// The public key file (`approvals.service.verdict_key` credential's value).
pub const VERDICT_KEY_FILE: &str = "approvals-verdict-key.pub";
/// The gateway token file (`approvals.service.token` credential's value).
pub const GATEWAY_TOKEN_FILE: &str = "approvals-token";

/// Largest request body accepted (holds carry at most a few KB).
const MAX_BODY_BYTES: usize = 1 << 20;
/// How often expired reviews are swept.
const SWEEP_PERIOD: Duration = Duration::from_secs(15);

/// Arguments of `warden serve`.
#[derive(clap::Args, Debug)]
#[command(subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    /// Key and token set-up.
    #[command(subcommand)]
    pub command: Option<ServeCommand>,

    /// The policy file (the gateway's own; approver rules, lifetimes and identity providers
    /// come from it).
    #[arg(long, env = "WARDEN_POLICY", value_name = "FILE", required = true)]
    pub policy: Option<PathBuf>,

    /// Address to listen on (`127.0.0.1:0` picks a free port; the log says which).
    #[arg(long, env = "WARDEN_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,

    /// SQLite database file (created if missing).
    #[arg(long, env = "WARDEN_DB", value_name = "PATH", default_value = "warden-approvals.db")]
    pub db: PathBuf,

    /// Ed25519 private key (PKCS#8 PEM) that signs verdicts (`warden serve init` writes one).
    #[arg(long, env = "WARDEN_SIGNING_KEY", value_name = "FILE", required = true)]
    pub signing_key: Option<PathBuf>,

    /// File holding the bearer token the gateway presents on `POST /v1/holds`.
    #[arg(long, env = "WARDEN_GATEWAY_TOKEN_FILE", value_name = "FILE", required = true)]
    pub gateway_token_file: Option<PathBuf>,

    /// Base URL approvers reach the service at, for links [default: http://<listen address>].
    #[arg(long, env = "WARDEN_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Sign an audit checkpoint (the chain head) after at least this many new records; the head
    /// is also signed at shutdown.
    #[arg(long, env = "WARDEN_CHECKPOINT_EVERY", value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: u64,

    /// Audit retention: prune records older than this (`90d`, `36h`; at least `1d`) — at start
    /// and hourly — and the blobs no remaining record references, under a signed prune
    /// statement (docs/audit.md, "Retention") [default: keep forever].
    #[arg(long, env = "WARDEN_AUDIT_RETENTION", value_name = "AGE",
          value_parser = |text: &str| crate::audit::retention::parse_retention(text))]
    pub audit_retention: Option<i64>,

    /// Slack-compatible incoming-webhook URL notified of each new review (a secret: prefer the
    /// environment variable).
    #[arg(long, env = "WARDEN_WEBHOOK", value_name = "URL", hide_env_values = true)]
    pub webhook: Option<String>,

    /// Budget leases: a gateway instance's lease shows as expired when it was not renewed for
    /// this many seconds (gateways renew every 5 s; expiry takes no grant back).
    #[arg(long, env = "WARDEN_LEASE_TTL", value_name = "SECONDS", default_value_t = leases::DEFAULT_TTL_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub lease_ttl: u64,

    /// ES256 private key (PKCS#8 PEM) the token service signs Warden tokens with; required when
    /// the policy has a `token_service` section (`warden serve init` writes one).
    #[arg(long, env = "WARDEN_TOKEN_SIGNING_KEY", value_name = "FILE")]
    pub token_signing_key: Option<PathBuf>,
}

/// Subcommands of `warden serve`.
#[derive(clap::Subcommand, Debug)]
pub enum ServeCommand {
    /// Write the verdict key pair and the gateway token into a directory.
    Init(InitArgs),
}

/// Arguments of `warden serve init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Directory to write the files into (created with mode 0700 if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Replace existing files (a new key invalidates the gateways' `verdict_key`).
    #[arg(long)]
    pub force: bool,
}

/// Runs `warden serve` or `warden serve init`.
pub fn run(args: ServeArgs) -> ExitCode {
    let result = match args.command {
        Some(ServeCommand::Init(ref init_args)) => init(init_args),
        None => serve(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("warden serve: {message}");
            ExitCode::FAILURE
        }
    }
}

fn required<'a>(value: &'a Option<PathBuf>, flag: &str) -> Result<&'a Path, String> {
    value.as_deref().ok_or_else(|| format!("{flag} is required"))
}

fn serve(args: &ServeArgs) -> Result<(), String> {
    let policy_path = required(&args.policy, "--policy")?;
    let text =
        std::fs::read_to_string(policy_path).map_err(|e| format!("cannot read {}: {e}", policy_path.display()))?;
    let policy = Policy::parse(&text).map_err(|errors| {
        let lines: Vec<String> = errors.0.iter().map(|e| format!("{}: {e}", policy_path.display())).collect();
        format!("invalid policy:\n{}", lines.join("\n"))
    })?;
    let rules = Rules::from_policy(&policy).map_err(|e| format!("{}: {e}", policy_path.display()))?;
    let verifier = OidcVerifier::from_policy(&policy, policy_path)?;
    let signing_key = required(&args.signing_key, "--signing-key")?;
    let signer = VerdictSigner::load(signing_key)?;
    let gateway_token = GatewayToken::load(required(&args.gateway_token_file, "--gateway-token-file")?)?;
    let webhook = args.webhook.as_deref().filter(|u| !u.is_empty()).map(Webhook::new).transpose()?;
    let store = Store::open(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    let ledger = Arc::new(
        Ledger::open(&args.db, VerdictSigner::load(signing_key)?, args.checkpoint_every)
            .map_err(|e| format!("{}: {e}", args.db.display()))?,
    );

    let lease_ledger = Arc::new(LeaseLedger::open(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?);
    let retention = match args.audit_retention {
        Some(age) => Some((age, VerdictSigner::load(signing_key)?)),
        None => None,
    };
    let db = args.db.clone();
    let ttl_seconds = args.lease_ttl;
    let tokens = match &policy.token_service {
        Some(config) => {
            let path = args.token_signing_key.as_deref().ok_or(
                "the policy has a token_service section: --token-signing-key is required (`warden serve init` writes one)",
            )?;
            let key = crate::token::load_key(path).map_err(|e| e.to_string())?;
            let issuer = tokens::issuer::TokenIssuer::new(key, config);
            let sources = tokens::sources::Sources::new(config, policy_path, &policy.identity.groups_claim)?;
            let refresh =
                tokens::refresh::RefreshStore::open(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
            let console = policy.approvals.as_ref().map(|approvals| tokens::ConsoleSessions {
                audience: approvals.approver_audience.clone(),
                lifetime: policy.identity.max_token_lifetime.min(tokens::MAX_CONSOLE_SESSION_SECONDS),
            });
            Some(Arc::new(tokens::TokenService {
                config: config.clone(),
                issuer,
                sign_ins: Default::default(),
                sources,
                refresh,
                oidc_client: Default::default(),
                console,
            }))
        }
        None => None,
    };

    let listener =
        std::net::TcpListener::bind(args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    listener.set_nonblocking(true).map_err(|e| format!("cannot configure the listener: {e}"))?;
    let address = listener.local_addr().map_err(|e| format!("cannot read the listening address: {e}"))?;
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{address}"));
    if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
        return Err("--public-url must start with http:// or https://".to_string());
    }

    let roles: Vec<&str> = rules.roles.keys().map(String::as_str).collect();
    let summary = format!(
        "listening on http://{address} (public URL {public_url}; database {}; audit retention {}; roles with approval: {}; identity providers: {}; webhook {})",
        args.db.display(),
        args.audit_retention.map_or("off (keep forever)".to_string(), |ms| util::format_duration(ms / 1000)),
        roles.join(", "),
        verifier.describe().join(", "),
        if webhook.is_some() { "on" } else { "off" }
    );
    let mut service = Service::new(ServiceParts { store, rules, verifier, gateway_token, signer, public_url, webhook });
    if let Some(tokens) = tokens.as_ref().filter(|t| t.console.is_some()) {
        service.console_sign_in = tokens::flows::console_sources(tokens);
    }
    let service = Arc::new(service);
    let mut pages =
        SessionPages::open(Arc::clone(&service), &args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    pages.lease_ttl_seconds = args.lease_ttl;
    let pages = Arc::new(pages);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let served_ledger = Arc::clone(&ledger);
    let result = runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|e| format!("cannot use the listener: {e}"))?;
        tokio::spawn(Arc::clone(&service).sweep(SWEEP_PERIOD));
        tokio::spawn(leases::maintain(Arc::clone(&lease_ledger), leases::PRUNE_PERIOD));
        if let Some((age, signer)) = retention {
            tokio::spawn(audit::retain(db, signer, age, audit::RETENTION_PERIOD));
        }
        log_event(&summary);
        let leases = Arc::new(LeaseState { service: Arc::clone(&service), ledger: lease_ledger, ttl_seconds });
        let server = axum::serve(listener, router(service, served_ledger, pages, leases, tokens));
        tokio::select! {
            result = server => result.map_err(|e| format!("server error: {e}")),
            signal = shutdown_signal() => {
                log_event(&format!("stopping on {signal}; held requests are answered by the gateway (fail closed)"));
                Ok(())
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    if let Err(e) = ledger.checkpoint_now() {
        log_event(&format!("audit: the shutdown checkpoint failed: {e}"));
    }
    result
}

/// The service's routes.
pub fn router(
    service: Arc<Service>,
    ledger: Arc<Ledger>,
    pages: Arc<SessionPages>,
    leases: Arc<LeaseState>,
    tokens: Option<Arc<tokens::TokenService>>,
) -> Router {
    let audit_routes = Router::new()
        .route("/v1/audit/records", post(audit::ingest))
        .layer(DefaultBodyLimit::max(audit::MAX_AUDIT_BODY_BYTES))
        .with_state(Arc::new(AuditState { service: Arc::clone(&service), ledger }));
    let lease_routes =
        Router::new().route("/v1/budget/leases", post(leases::post_leases).get(leases::list_leases)).with_state(leases);
    let session_routes = Router::new()
        .route("/sessions", get(sessions::sessions))
        .route("/sessions/{id}", get(sessions::session))
        .route("/usage", get(usage::usage))
        .with_state(pages);
    let token_routes = tokens
        .map(|tokens| {
            let flows = tokens::flows::Flows { tokens: Arc::clone(&tokens), service: Arc::clone(&service) };
            tokens::routes(Arc::clone(&tokens))
                .merge(tokens::grants::routes(tokens))
                .merge(tokens::flows::routes(flows))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        })
        .unwrap_or_default();
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/v1/holds", post(api::hold))
        .route("/v1/reviews", get(api::list_reviews))
        .route("/v1/reviews/{id}", get(api::get_review))
        .route("/v1/reviews/{id}/approve", post(api::approve))
        .route("/v1/reviews/{id}/deny", post(api::deny))
        .route("/", get(page::root))
        .route("/console.js", get(console::script))
        .route("/login", get(page::login_form).post(page::login))
        .route("/logout", get(page::logout).post(page::logout))
        .route("/reviews", get(page::reviews))
        .route("/reviews/{id}", get(page::review))
        .route("/reviews/{id}/decide", post(page::decide))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
        .merge(audit_routes)
        .merge(session_routes)
        .merge(lease_routes)
        .merge(token_routes)
}

/// Resolves with the signal's name at SIGINT or SIGTERM.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// `warden serve init`: writes the key pair and the gateway token, keeping existing files
/// unless `--force`. Prints paths and the public key; never the private key or the token.
fn init(args: &InitArgs) -> Result<(), String> {
    use crate::token::{create_private_dir, write_file_atomically};
    create_private_dir(&args.dir).map_err(|e| e.to_string())?;
    let key_path = args.dir.join(SIGNING_KEY_FILE);
    let public_path = args.dir.join(VERDICT_KEY_FILE);
    let token_path = args.dir.join(GATEWAY_TOKEN_FILE);

    let (signer, key_note) = if key_path.exists() && !args.force {
        (VerdictSigner::load(&key_path)?, "kept (use --force to replace)")
    } else {
        let signer = VerdictSigner::generate()?;
        write_file_atomically(&key_path, signer.to_pem()?.as_bytes(), 0o600).map_err(|e| e.to_string())?;
        (signer, "created")
    };
    let public = signer.public_key_base64();
    write_file_atomically(&public_path, format!("{public}\n").as_bytes(), 0o644).map_err(|e| e.to_string())?;

    let token_note = if token_path.exists() && !args.force {
        "kept (use --force to replace)"
    } else {
        use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
        let token = Base64UrlSafeNoPadding::encode_to_string(util::random_bytes::<32>()?).map_err(|e| e.to_string())?;
        write_file_atomically(&token_path, format!("{token}\n").as_bytes(), 0o600).map_err(|e| e.to_string())?;
        "created"
    };
    let token_key_path = args.dir.join(tokens::TOKEN_SIGNING_KEY_FILE);
    let token_key_note = if token_key_path.exists() && !args.force {
        "kept (use --force to replace)"
    } else {
        let key = jwt_simple::prelude::ES256KeyPair::generate();
        let pem = key.to_pem().map_err(|e| format!("cannot encode the token signing key: {e}"))?;
        write_file_atomically(&token_key_path, pem.as_bytes(), 0o600).map_err(|e| e.to_string())?;
        "created"
    };
    println!("signing key:  {} ({key_note})", key_path.display());
    println!("token signing key: {} ({token_key_note})", token_key_path.display());
    println!("verdict key:  {} = {public}", public_path.display());
    println!("gateway token: {} ({token_note})", token_path.display());
    Ok(())
}

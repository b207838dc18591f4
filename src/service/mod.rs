//! `warden serve`: the approval service (docs/approvals.md), the audit trail's store, the budget
//! lease ledger and the token service (docs/identity.md), and `warden serve init`, which writes
//! its keys and the gateway token.
//!
//! Each part runs only when the policy asks for it ([`Parts`]): approvals with `approvals`, the
//! audit trail with `audit` (or `approvals`), budget leases with `accounting.leases` (or either
//! of those), the token service with `token_service`; a flag is required only when a running
//! part needs it, and a part that is off has no routes (404). Start-up reads everything that can
//! be wrong before listening — the policy (the gateway's own file, parsed by the same code), the
//! approver rules in it, the identity providers' and sign-in sources' JWKS, the signing keys, the
//! gateway token, the SQLite database (migrated) — and exits with a clear message on the first
//! problem. It then serves HTTP/1 on `--listen` with tokio + axum,
//! sweeps expired reviews every 15 s, and stops at SIGINT/SIGTERM without waiting for held
//! requests (a hold cut short fails closed at the gateway, and its retry re-attaches to the same
//! pending review, which the database kept).
//!
//! Modules, by part: [`approvals`] (holds and decisions, approver rules, verdict signing, the
//! JSON endpoints, review pages, session grants, the webhook), [`audit`] (the audit trail: ingest
//! and signed checkpoints, the hash chain, the SQLite store, verification, retention, replay,
//! export, docs/audit.md), [`console`] (the pages' shared layout and navigation, the audit
//! trail's pages and cards), [`usage`] (spend aggregation and the usage page, docs/usage.md),
//! [`leases`] (the budget ledger gateways lease from, docs/budgets.md), [`tokens`] (the token
//! service), [`revocations`] (the kill switch, docs/identity.md); shared by the parts:
//! [`store`] (SQLite and its migrations), [`auth`] (gateway token, approvers' OIDC tokens,
//! CSRF), [`jwt`] (the one JWT verifier: approvers' and sign-in sources' tokens), [`keys`] (key
//! files), [`dates`] (the date forms filters accept), [`util`] (clock, randomness, log lines,
//! time formats).
//!
//! Logs: one line per event on stderr (start, review created / decided / expired, holds,
//! webhook failures). Tokens, keys and the webhook URL are never logged.

pub mod approvals;
pub mod audit;
pub mod auth;
pub mod console;
pub mod dates;
pub mod jwt;
pub mod keys;
pub mod leases;
pub mod revocations;
pub mod schema;
pub mod store;
pub mod tokens;
pub mod usage;
pub mod util;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use crate::core::policy::Policy;

use approvals::rules::Rules;
use approvals::service::{Service, ServiceParts};
use approvals::signer::VerdictSigner;
use approvals::webhook::Webhook;
use approvals::{api, page};
use audit::ingest::{self as audit_ingest, AuditState, Ledger};
use auth::{GatewayToken, OidcVerifier};
use console::sessions::{self, SessionPages};
use leases::{LeaseLedger, LeaseState};
use store::Store;
use util::log_event;

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

    /// Ed25519 private key (PKCS#8 PEM) that signs verdicts and audit checkpoints; required when
    /// the policy has `approvals` or `audit` (`warden serve init` writes one).
    #[arg(long, env = "WARDEN_SIGNING_KEY", value_name = "FILE")]
    pub signing_key: Option<PathBuf>,

    /// File holding the bearer token gateways present (holds, audit records, budget leases);
    /// required when the policy has `approvals`, `audit` or `accounting.leases`.
    #[arg(long, env = "WARDEN_GATEWAY_TOKEN_FILE", value_name = "FILE")]
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
          value_parser = |text: &str| crate::service::audit::retention::parse_retention(text))]
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

    /// Another token signing key (private or public PEM) whose public key is published beside
    /// the current one but never signs: during a rotation, the next key before it signs, then
    /// the retired one until its tokens expire (docs/identity.md, "Rotating the token signing key").
    #[arg(long, env = "WARDEN_TOKEN_PREVIOUS_KEY", value_name = "FILE")]
    pub token_previous_key: Option<PathBuf>,
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

/// The parts of `warden serve` a policy asks for; each runs only when its section is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// Holds and reviews (`approvals`).
    pub approvals: bool,
    /// The audit trail's store and its pages (`audit`).
    pub audit: bool,
    /// The budget ledger gateways lease from (`accounting.leases`).
    pub leases: bool,
    /// The token service (`token_service`).
    pub tokens: bool,
    /// The kill switch's revocation list (`identity.revocation`).
    pub revocations: bool,
}

impl Parts {
    /// The parts `policy` asks for. The approval service keeps the audit trail and the lease
    /// ledger too, as it always has, and a service keeping the audit trail answers leases: one
    /// service per policy then does all its gateways ask. A policy with only `accounting.leases`
    /// runs just the lease ledger; one with only `token_service` just the token service.
    pub fn of(policy: &Policy) -> Self {
        let approvals = policy.approvals.is_some();
        let audit = approvals || policy.audit.is_some();
        Self {
            approvals,
            audit,
            leases: audit || policy.leases.is_some(),
            tokens: policy.token_service.is_some(),
            revocations: policy.revocation.is_some(),
        }
    }

    /// Names of the parts that run, for the start-up line and errors.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.approvals, "approvals"),
            (self.audit, "audit trail"),
            (self.leases, "budget leases"),
            (self.tokens, "token service"),
            (self.revocations, "revocations"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    /// Whether a part gateways call (with the gateway token) runs.
    fn gateway_facing(self) -> bool {
        self.approvals || self.audit || self.leases || self.revocations
    }

    /// The flag `flag` that `needed` parts (named) require, or a clear error.
    fn flag<'a>(
        value: &'a Option<PathBuf>,
        flag: &str,
        needed: &[(bool, &str)],
        what: &str,
    ) -> Result<Option<&'a Path>, String> {
        let needing: Vec<&str> = needed.iter().filter_map(|(on, name)| on.then_some(*name)).collect();
        match (value.as_deref(), needing.is_empty()) {
            (Some(path), false) => Ok(Some(path)),
            (_, true) => Ok(None),
            (None, false) => Err(format!("the policy runs {}: {flag} is required ({what})", needing.join(" and "))),
        }
    }
}

fn serve(args: &ServeArgs) -> Result<(), String> {
    let policy_path = required(&args.policy, "--policy")?;
    let text =
        std::fs::read_to_string(policy_path).map_err(|e| format!("cannot read {}: {e}", policy_path.display()))?;
    let policy = Policy::parse(&text).map_err(|errors| {
        let lines: Vec<String> = errors.0.iter().map(|e| format!("{}: {e}", policy_path.display())).collect();
        format!("invalid policy:\n{}", lines.join("\n"))
    })?;
    let parts = Parts::of(&policy);
    if parts.names().is_empty() {
        return Err(format!(
            "{}: the policy asks nothing of warden serve: it has no `approvals`, `audit`, `accounting.leases`, `token_service` or `identity.revocation` section",
            policy_path.display()
        ));
    }
    let signing_key = Parts::flag(
        &args.signing_key,
        "--signing-key",
        &[(parts.approvals, "approvals"), (parts.audit && !parts.approvals, "the audit trail")],
        "the key that signs verdicts and audit checkpoints; `warden serve init` writes one",
    )?;
    let gateway_token_file = Parts::flag(
        &args.gateway_token_file,
        "--gateway-token-file",
        &[
            (parts.approvals, "approvals"),
            (parts.audit && !parts.approvals, "the audit trail"),
            (parts.leases && !parts.audit, "budget leases"),
            (parts.revocations && !parts.leases, "revocations"),
        ],
        "the token gateways present; `warden serve init` writes one",
    )?;
    let token_signing_key = Parts::flag(
        &args.token_signing_key,
        "--token-signing-key",
        &[(parts.tokens, "the token service")],
        "the key that signs Warden tokens; `warden serve init` writes one",
    )?;
    if args.audit_retention.is_some() && !parts.audit {
        return Err("--audit-retention needs the policy's `audit` section".to_string());
    }
    if args.token_previous_key.is_some() && !parts.tokens {
        return Err("--token-previous-key needs the policy's `token_service` section".to_string());
    }
    let webhook = args.webhook.as_deref().filter(|u| !u.is_empty()).map(Webhook::new).transpose()?;
    let revocation_store = match parts.revocations {
        true => Some(Arc::new(
            revocations::RevocationStore::open(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?,
        )),
        false => None,
    };
    let tokens = match (&policy.token_service, token_signing_key) {
        (Some(config), Some(path)) => {
            Some(Arc::new(token_service(config, &policy, policy_path, path, args, revocation_store.clone())?))
        }
        _ => None,
    };

    let listener =
        std::net::TcpListener::bind(args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    listener.set_nonblocking(true).map_err(|e| format!("cannot configure the listener: {e}"))?;
    let address = listener.local_addr().map_err(|e| format!("cannot read the listening address: {e}"))?;
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{address}"));
    if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
        return Err("--public-url must start with http:// or https://".to_string());
    }

    let mut details = vec![format!("database {}", args.db.display())];
    let mut served = Served {
        service: None,
        approvals: parts.approvals,
        audit: None,
        leases: None,
        tokens: tokens.clone(),
        revocations: None,
    };
    let mut retention = None;
    if let Some(gateway_token_file) = gateway_token_file.filter(|_| parts.gateway_facing()) {
        let rules = if parts.approvals {
            Rules::from_policy(&policy).map_err(|e| format!("{}: {e}", policy_path.display()))?
        } else {
            Rules::none()
        };
        let verifier = OidcVerifier::from_policy(&policy, policy_path)?;
        // Without a part that signs, the key only derives the pages' CSRF secret: a fresh one per
        // start (open forms then need a reload after a restart).
        let signer = match signing_key {
            Some(path) => VerdictSigner::load(path)?,
            None => VerdictSigner::generate()?,
        };
        let gateway_token = GatewayToken::load(gateway_token_file)?;
        let store = Store::open(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
        let roles: Vec<&str> = rules.roles.keys().map(String::as_str).collect();
        if parts.approvals {
            details.push(format!("roles with approval: {}", roles.join(", ")));
            details.push(format!("webhook {}", if webhook.is_some() { "on" } else { "off" }));
        }
        details.push(format!("identity providers: {}", verifier.describe().join(", ")));
        let mut service = Service::new(ServiceParts {
            store,
            rules,
            verifier,
            gateway_token,
            signer,
            public_url: public_url.clone(),
            webhook,
        });
        if let Some(tokens) = tokens.as_ref().filter(|t| t.console.is_some()) {
            service.console_sign_in = tokens::flows::console_sources(tokens);
        }
        service.revocations = revocation_store.clone();
        let service = Arc::new(service);
        if let (true, Some(signing_key)) = (parts.audit, signing_key) {
            let ledger = Arc::new(
                Ledger::open(&args.db, VerdictSigner::load(signing_key)?, args.checkpoint_every)
                    .map_err(|e| format!("{}: {e}", args.db.display()))?,
            );
            let mut pages = SessionPages::open(Arc::clone(&service), &args.db)
                .map_err(|e| format!("{}: {e}", args.db.display()))?;
            pages.lease_ttl_seconds = args.lease_ttl;
            served.audit = Some((ledger, Arc::new(pages)));
            if let Some(age) = args.audit_retention {
                retention = Some((age, VerdictSigner::load(signing_key)?));
            }
            details.push(format!(
                "audit retention {}",
                args.audit_retention.map_or("off (keep forever)".to_string(), |ms| util::format_duration(ms / 1000))
            ));
        }
        if parts.leases {
            let ledger = Arc::new(LeaseLedger::open(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?);
            served.leases =
                Some(Arc::new(LeaseState { service: Arc::clone(&service), ledger, ttl_seconds: args.lease_ttl }));
        }
        if let (Some(store), Some(settings)) = (&revocation_store, &policy.revocation) {
            served.revocations = Some(Arc::new(revocations::RevocationState::new(
                Arc::clone(&service),
                Arc::clone(store),
                settings.revokers.clone(),
                policy.identity.groups_claim.clone(),
            )));
        }
        served.service = Some(service);
    }
    if let Some(tokens) = &tokens {
        details.push(format!("token issuer {} (key {})", tokens.config.issuer, tokens.issuer.key_id()));
        details.push(format!("sign-in sources: {}", tokens.sources.describe().join(", ")));
    }
    let summary = format!(
        "listening on http://{address} (public URL {public_url}); running: {}; {}",
        parts.names().join(", "),
        details.join("; ")
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let audit_ledger = served.audit.as_ref().map(|(ledger, _)| Arc::clone(ledger));
    let db = args.db.clone();
    let result = runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|e| format!("cannot use the listener: {e}"))?;
        if let (true, Some(service)) = (served.approvals, &served.service) {
            tokio::spawn(Arc::clone(service).sweep(SWEEP_PERIOD));
        }
        if let Some(leases) = &served.leases {
            tokio::spawn(leases::maintain(Arc::clone(&leases.ledger), leases::PRUNE_PERIOD));
        }
        if let Some((age, signer)) = retention {
            tokio::spawn(audit_ingest::retain(db, signer, age, audit_ingest::RETENTION_PERIOD));
        }
        log_event(&summary);
        let server = axum::serve(listener, router(served));
        tokio::select! {
            result = server => result.map_err(|e| format!("server error: {e}")),
            signal = shutdown_signal() => {
                log_event(&format!("stopping on {signal}; held requests are answered by the gateway (fail closed)"));
                Ok(())
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    if let Some(ledger) = audit_ledger {
        if let Err(e) = ledger.checkpoint_now() {
            log_event(&format!("audit: the shutdown checkpoint failed: {e}"));
        }
    }
    result
}

/// The token service of `config`: its signing key (and the previous one, after a rotation) and
/// its sign-in sources (JWKS read now); `revocations` stops it minting for revoked identities.
fn token_service(
    config: &crate::core::policy::token_service::TokenServiceConfig,
    policy: &Policy,
    policy_path: &Path,
    key_path: &Path,
    args: &ServeArgs,
    revocations: Option<Arc<revocations::RevocationStore>>,
) -> Result<tokens::TokenService, String> {
    let key = crate::service::keys::load_key(key_path).map_err(|e| e.to_string())?;
    let mut issuer = tokens::issuer::TokenIssuer::new(key, config);
    if let Some(previous) = &args.token_previous_key {
        issuer = issuer.with_previous_key(tokens::issuer::load_public_key(previous)?);
    }
    let sources = tokens::sources::Sources::new(config, policy_path, &policy.identity.groups_claim)?;
    let saml = tokens::saml::SamlSignIns::load(config, policy_path, &args.db)?;
    let refresh = tokens::refresh::RefreshStore::open(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    let console = policy.approvals.as_ref().map(|approvals| tokens::ConsoleSessions {
        audience: approvals.approver_audience.clone(),
        lifetime: policy.identity.max_token_lifetime.min(tokens::MAX_CONSOLE_SESSION_SECONDS),
    });
    Ok(tokens::TokenService {
        config: config.clone(),
        issuer,
        sign_ins: Default::default(),
        sources,
        saml,
        refresh,
        oidc_client: Default::default(),
        console,
        csrf: auth::CsrfKey::new(util::random_bytes::<32>()?),
        revocations,
    })
}

/// What the router serves: each part's state, `None` (or `false`) when the policy leaves the
/// part off — its routes then answer 404 like any unknown path.
pub struct Served {
    /// Shared state of the parts gateways call and of the console (sign-in, CSRF); present when
    /// approvals, the audit trail or budget leases run.
    pub service: Option<Arc<Service>>,
    /// Whether holds and reviews are served.
    pub approvals: bool,
    /// The audit trail's ledger and pages.
    pub audit: Option<(Arc<Ledger>, Arc<SessionPages>)>,
    /// The budget ledger.
    pub leases: Option<Arc<LeaseState>>,
    /// The token service.
    pub tokens: Option<Arc<tokens::TokenService>>,
    /// The kill switch's routes.
    pub revocations: Option<Arc<revocations::RevocationState>>,
}

/// The service's routes: `/healthz` always, then each part's that runs.
pub fn router(served: Served) -> Router {
    let mut app = Router::new().route("/healthz", get(api::healthz));
    if let Some(service) = &served.service {
        let mut console = Router::new()
            .route("/console.js", get(console::script))
            .route("/login", get(page::login_form).post(page::login))
            .route("/logout", get(page::logout).post(page::logout));
        console = if served.approvals {
            console
                .route("/", get(page::root))
                .route("/v1/holds", post(api::hold))
                .route("/v1/reviews", get(api::list_reviews))
                .route("/v1/reviews/{id}", get(api::get_review))
                .route("/v1/reviews/{id}/approve", post(api::approve))
                .route("/v1/reviews/{id}/deny", post(api::deny))
                .route("/reviews", get(page::reviews))
                .route("/reviews/{id}", get(page::review))
                .route("/reviews/{id}/decide", post(page::decide))
                .route("/v1/grants", get(api::list_grants))
                .route("/v1/grants/{id}/end", post(api::end_grant))
                .route("/grants/{id}/end", post(page::end_grant_form))
        } else {
            console.route("/", get(|| async { axum::response::Redirect::to("/sessions") }))
        };
        app = app.merge(console.layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(Arc::clone(service)));
    }
    if let (Some(service), Some((ledger, pages))) = (&served.service, served.audit) {
        let audit_routes = Router::new()
            .route("/v1/audit/records", post(audit_ingest::ingest))
            .layer(DefaultBodyLimit::max(audit_ingest::MAX_AUDIT_BODY_BYTES))
            .with_state(Arc::new(AuditState { service: Arc::clone(service), ledger }));
        let session_routes = Router::new()
            .route("/sessions", get(sessions::sessions))
            .route("/sessions/{id}", get(sessions::session))
            .route("/usage", get(usage::page::usage))
            .with_state(pages);
        app = app.merge(audit_routes).merge(session_routes);
    }
    if let Some(leases) = served.leases {
        app = app.merge(
            Router::new()
                .route("/v1/budget/leases", post(leases::post_leases).get(leases::list_leases))
                .with_state(leases),
        );
    }
    if let Some(tokens) = served.tokens {
        let flows = tokens::flows::Flows { tokens: Arc::clone(&tokens), console: served.service.clone() };
        app = app
            .merge(tokens::routes(Arc::clone(&tokens)))
            .merge(tokens::grants::routes(tokens))
            .merge(tokens::flows::routes(flows).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)));
    }
    if let Some(revocations) = served.revocations {
        app = app.merge(revocations::routes(revocations));
    }
    app.fallback(api::not_found)
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
    use keys::{create_private_dir, write_file_atomically};
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

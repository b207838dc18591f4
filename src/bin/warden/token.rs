//! `warden token`: a small local token issuer for demos and tests.
//!
//! Warden's Envoy `jwt_authn` filter checks bearer tokens against a JWKS. This
//! module is the issuer side of that story, for local use only:
//!
//! * `warden token init` creates a demo directory (mode 0700), generates an
//!   ES256 (ECDSA P-256) signing key, stores it as a PKCS#8 PEM file
//!   (`signing-key.pem`, mode 0600) and writes the matching public key set
//!   (`jwks.json`, RFC 7517 / RFC 7518 §6.2 form with `kty`, `crv`, `x`, `y`,
//!   `alg`, `use` and `kid`) that Envoy can load as `local_jwks`.
//!   Running it again keeps an existing key unless `--force` is given.
//! * `warden token mint` signs a short-lived ES256 JWT with that key. The
//!   header `kid` is derived from the public key exactly as in `jwks.json`, so
//!   Envoy selects the right key. The token is the only thing printed on
//!   stdout, followed by a newline.
//!
//! The `kid` is the first 16 characters of jwt-simple's key id for the public
//! key, `base64url(SHA-256(SEC1 compressed point))`, so it is short, stable for
//! a given key and independent of file contents.
//!
//! Works with jwt-simple 0.12 through 0.15 (built with `pure-rust`, no BoringSSL).
//!
//! Private key material is never printed, logged or included in error messages.

use std::collections::BTreeMap;
#[cfg(test)]
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jwt_simple::prelude::{Claims, ECDSAP256KeyPairLike, ES256KeyPair};
use jwt_simple::reexports::coarsetime;
use serde::Serialize;
use warden::core::policy::units::{parse_duration, Seconds};
pub use warden::service::keys::TokenError;
use warden::service::keys::{create_private_dir, jwks_json, key_id, load_key, write_file_atomically, KEY_FILE};
#[cfg(test)]
use warden::service::keys::KID_LEN;

/// Environment variable that overrides the default demo directory.
const DEMO_DIR_ENV: &str = "WARDEN_DEMO_DIR";
/// Demo directory used when neither `--dir` nor `WARDEN_DEMO_DIR` is set.
const DEFAULT_DEMO_DIR: &str = ".demo";
/// File name of the public JWKS inside the demo directory.
const JWKS_FILE: &str = "jwks.json";
/// Longest lifetime a minted token may have.
const MAX_TTL_SECS: u64 = 24 * 60 * 60;
/// Claim names that `--claim` may not override.
const RESERVED_CLAIMS: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "nonce", "groups"];

/// Arguments of `warden token`: a subcommand for the demo issuer, or none for a fresh token
/// from `warden login`'s sign-in (`crate::login`).
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TokenArgs {
    /// What to do with demo signing keys and tokens.
    #[command(subcommand)]
    pub command: Option<TokenCommand>,
    /// Without a subcommand: print a fresh token from the stored sign-in.
    #[command(flatten)]
    pub fresh: crate::login::FreshTokenArgs,
}

/// Subcommands of `warden token`.
#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Create the demo directory with an ES256 signing key and its JWKS.
    Init(InitArgs),
    /// Print a signed ES256 JWT for the demo key on stdout.
    Mint(MintArgs),
}

/// Arguments of `warden token init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Demo directory to create [default: $WARDEN_DEMO_DIR, else .demo].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Replace an existing signing key with a new one (tokens signed with the
    /// old key stop verifying once Envoy reloads the JWKS).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `warden token mint`.
#[derive(clap::Args, Debug)]
pub struct MintArgs {
    /// Subject (`sub` claim): who the token speaks for.
    #[arg(long, value_name = "SUB")]
    pub sub: String,

    /// Comma-separated groups for the `groups` claim; empty entries are
    /// dropped, so `--groups ""` gives an empty list (also the default).
    #[arg(long, value_name = "A,B", default_value = "")]
    pub groups: String,

    /// Token lifetime: plain seconds or units h/m/s such as `90s`, `15m`,
    /// `1h`, `2h30m`. Must be above zero and at most 24h.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_ttl)]
    pub ttl: Duration,

    /// Issuer (`iss` claim); must match the issuer Envoy is configured with.
    #[arg(long, value_name = "ISS", default_value = "warden-demo")]
    pub issuer: String,

    /// Audience (`aud` claim, a single string).
    #[arg(long, value_name = "AUD", default_value = "warden")]
    pub audience: String,

    /// Extra string claim as `key=value` (e.g. `repository=org/repo`); may be
    /// repeated. Registered claims and `groups` cannot be overridden.
    #[arg(long = "claim", value_name = "KEY=VALUE", value_parser = parse_claim)]
    pub claims: Vec<(String, String)>,

    /// Demo directory holding `signing-key.pem` [default: $WARDEN_DEMO_DIR,
    /// else .demo].
    #[arg(long, value_name = "DIR", conflicts_with = "key")]
    pub dir: Option<PathBuf>,

    /// Sign with this PKCS#8 PEM private key file instead of the demo
    /// directory's key.
    #[arg(long, value_name = "PEMFILE")]
    pub key: Option<PathBuf>,
}


/// Runs `warden token init` or `warden token mint`, writing results to stdout.
pub fn run(command: TokenCommand) -> Result<(), TokenError> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match command {
        TokenCommand::Init(init_args) => {
            let dir = resolve_dir(init_args.dir);
            let outcome = init(&dir, init_args.force)?;
            let key_note = if outcome.created { "created" } else { "already exists; kept, use --force to replace it" };
            let text = format!(
                "signing key: {} ({key_note})\njwks: {}\nkid: {}\n",
                outcome.key_path.display(),
                outcome.jwks_path.display(),
                outcome.kid
            );
            write_stdout(&mut out, &text)
        }
        TokenCommand::Mint(mint_args) => {
            let token = mint(&mint_args, unix_now()?)?;
            write_stdout(&mut out, &format!("{token}\n"))
        }
    }
}

/// Writes `text` to stdout, turning a closed pipe into an error instead of a panic.
fn write_stdout(out: &mut impl Write, text: &str) -> Result<(), TokenError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| TokenError::Io { context: "writing to stdout".to_string(), source })
}

/// Picks the demo directory: `--dir`, else `$WARDEN_DEMO_DIR` (if non-empty), else `.demo`.
fn resolve_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os(DEMO_DIR_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DEMO_DIR))
}

/// Current Unix time in whole seconds.
fn unix_now() -> Result<u64, TokenError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| TokenError::Crypto("system clock is before 1970".to_string()))
}

/// What `init` did.
struct InitOutcome {
    key_path: PathBuf,
    jwks_path: PathBuf,
    kid: String,
    /// True when a new key was generated, false when an existing one was kept.
    created: bool,
}

/// Ensures `dir` holds a signing key and a JWKS matching it.
///
/// An existing key is kept (and the JWKS rewritten from it) unless `force`.
fn init(dir: &Path, force: bool) -> Result<InitOutcome, TokenError> {
    create_private_dir(dir)?;
    let key_path = dir.join(KEY_FILE);
    let jwks_path = dir.join(JWKS_FILE);

    let exists = key_path
        .try_exists()
        .map_err(|source| TokenError::Io { context: format!("checking {}", key_path.display()), source })?;

    let (key, created) = if exists && !force {
        (load_key(&key_path)?, false)
    } else {
        let key = ES256KeyPair::generate();
        let pem = key.to_pem().map_err(|e| TokenError::Crypto(format!("encoding the new key as PEM: {e}")))?;
        write_file_atomically(&key_path, pem.as_bytes(), 0o600)?;
        (key, true)
    };

    let public = key.public_key();
    let kid = key_id(&public);
    let jwks = jwks_json(&public, &kid)?;
    write_file_atomically(&jwks_path, jwks.as_bytes(), 0o644)?;

    Ok(InitOutcome { key_path, jwks_path, kid, created })
}


/// Private (non-registered) claims carried by a minted token.
#[derive(Serialize)]
struct WardenClaims {
    /// Group memberships, always present (possibly empty).
    groups: Vec<String>,
    /// `--claim key=value` pairs.
    #[serde(flatten)]
    extra: BTreeMap<String, String>,
}

/// Signs a token as described by `args`, issued at Unix time `now`.
fn mint(args: &MintArgs, now: u64) -> Result<String, TokenError> {
    non_empty("--sub", &args.sub)?;
    non_empty("--issuer", &args.issuer)?;
    non_empty("--audience", &args.audience)?;
    let ttl = check_ttl(args.ttl.as_secs())?;
    let groups = parse_groups(&args.groups);
    let extra = collect_claims(&args.claims)?;

    let key_path = match &args.key {
        Some(path) => path.clone(),
        None => resolve_dir(args.dir.clone()).join(KEY_FILE),
    };
    let key = load_key(&key_path)?;
    let kid = key_id(&key.public_key());
    let key = key.with_key_id(&kid);

    let exp =
        now.checked_add(ttl).ok_or_else(|| TokenError::InvalidTtl("TTL makes the expiry time overflow".to_string()))?;
    let mut claims = Claims::with_custom_claims(WardenClaims { groups, extra }, coarsetime::Duration::from_secs(ttl))
        .with_issuer(&args.issuer)
        .with_subject(&args.sub)
        .with_audience(&args.audience);
    // jwt-simple's nonce generator gives 24 random bytes, base64url; use them as
    // the jti rather than as a nonce (no direct dependency on a `rand` version).
    let jti = claims.create_nonce();
    claims.nonce = None;
    claims.jwt_id = Some(jti);
    // Whole-second timestamps from one clock reading, so exp - iat == ttl exactly.
    claims.issued_at = Some(coarsetime::Duration::from_secs(now));
    claims.expires_at = Some(coarsetime::Duration::from_secs(exp));
    claims.invalid_before = None;

    key.sign(claims).map_err(|e| TokenError::Crypto(format!("signing the token: {e}")))
}

/// Rejects an empty or all-blank value for `flag`.
fn non_empty(flag: &str, value: &str) -> Result<(), TokenError> {
    if value.trim().is_empty() {
        Err(TokenError::InvalidArgument(format!("{flag} must not be empty")))
    } else {
        Ok(())
    }
}

/// Splits `a,b` into groups, trimming blanks, dropping empty entries and duplicates.
fn parse_groups(raw: &str) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for group in raw.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        if !groups.iter().any(|g| g == group) {
            groups.push(group.to_string());
        }
    }
    groups
}

/// Parses one `--claim key=value` (split at the first `=`).
fn parse_claim(raw: &str) -> Result<(String, String), TokenError> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| TokenError::InvalidArgument(format!("--claim {raw:?} is not of the form key=value")))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(TokenError::InvalidArgument(format!("--claim {raw:?} has an empty key")));
    }
    if RESERVED_CLAIMS.contains(&key) {
        return Err(TokenError::InvalidArgument(format!(
            "--claim cannot set {key:?}; it is set by warden (use the dedicated flag)"
        )));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Turns the `--claim` list into a map, rejecting repeated keys.
fn collect_claims(pairs: &[(String, String)]) -> Result<BTreeMap<String, String>, TokenError> {
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
        // Also re-checks pairs that did not come through clap's parser.
        let (key, value) = parse_claim(&format!("{key}={value}"))?;
        if map.contains_key(&key) {
            return Err(TokenError::InvalidArgument(format!("--claim {key:?} given more than once")));
        }
        map.insert(key, value);
    }
    Ok(map)
}

/// Parses a token lifetime with the policy's duration syntax (`90s`, `15m`, `1h`, `2h30m`,
/// plain seconds; see `warden::core::policy::units`). It must be above zero and at most 24h.
fn parse_ttl(raw: &str) -> Result<Duration, TokenError> {
    let Seconds(secs) = parse_duration(raw).map_err(|why| TokenError::InvalidTtl(format!("TTL {raw:?}: {why}")))?;
    check_ttl(secs).map(Duration::from_secs)
}

/// Enforces 0 < ttl <= 24h.
fn check_ttl(secs: u64) -> Result<u64, TokenError> {
    if secs == 0 {
        Err(TokenError::InvalidTtl("TTL must be greater than zero".to_string()))
    } else if secs > MAX_TTL_SECS {
        Err(TokenError::InvalidTtl(format!("TTL of {secs}s exceeds the maximum of 24h ({MAX_TTL_SECS}s)")))
    } else {
        Ok(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_simple::prelude::{HashSet, JWTClaims, VerificationOptions};
    use jwt_simple::prelude::{ECDSAP256PublicKeyLike, ES256PublicKey};
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh scratch directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let path = std::env::temp_dir().join(format!("warden-token-test-{}-{tag}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mint_args(dir: &Path) -> MintArgs {
        MintArgs {
            sub: "alice".to_string(),
            groups: "eng, ml ,eng".to_string(),
            ttl: Duration::from_secs(900),
            issuer: "warden-demo".to_string(),
            audience: "warden".to_string(),
            claims: vec![("repository".to_string(), "org/repo".to_string()), ("run_id".to_string(), "123".to_string())],
            dir: Some(dir.to_path_buf()),
            key: None,
        }
    }

    fn b64url_decode(s: &str) -> Vec<u8> {
        let mut buf = vec![0u8; s.len()];
        let n = Base64UrlSafeNoPadding::decode(&mut buf, s, None).expect("valid base64url").len();
        buf.truncate(n);
        buf
    }

    /// Rebuilds the verification key from the JWKS x/y coordinates only.
    fn public_key_from_jwks(dir: &Path) -> (ES256PublicKey, String) {
        let text = fs::read_to_string(dir.join(JWKS_FILE)).expect("jwks readable");
        let jwks: serde_json::Value = serde_json::from_str(&text).expect("jwks is JSON");
        let key = &jwks["keys"][0];
        let x = b64url_decode(key["x"].as_str().expect("x"));
        let y = b64url_decode(key["y"].as_str().expect("y"));
        assert_eq!((x.len(), y.len()), (32, 32));
        let mut point = vec![0x04];
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        let pk = ES256PublicKey::from_bytes(&point).expect("valid P-256 point");
        (pk, key["kid"].as_str().expect("kid").to_string())
    }

    fn payload_json(token: &str) -> serde_json::Value {
        let payload = token.split('.').nth(1).expect("three parts");
        serde_json::from_slice(&b64url_decode(payload)).expect("payload is JSON")
    }

    fn header_json(token: &str) -> serde_json::Value {
        let header = token.split('.').next().expect("header part");
        serde_json::from_slice(&b64url_decode(header)).expect("header is JSON")
    }

    #[test]
    fn ttl_parsing_table() {
        let ok: &[(&str, u64)] = &[
            ("90s", 90),
            ("15m", 900),
            ("1h", 3600),
            ("2h30m", 9000),
            ("1h0m5s", 3605),
            ("1m30s", 90),
            ("900", 900),
            ("1", 1),
            (" 15m ", 900),
            ("24h", 86_400),
            ("86400", 86_400),
            ("1440m", 86_400),
            ("0h10m", 600),
        ];
        for (input, secs) in ok {
            assert_eq!(parse_ttl(input).map(|d| d.as_secs()).ok(), Some(*secs), "input {input:?}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("0", "greater than zero"),
            ("0s", "greater than zero"),
            ("0h0m", "greater than zero"),
            ("-5m", "positive"),
            ("-1", "positive"),
            ("abc", "expected digits"),
            ("15x", "expected digits"),
            ("1.5h", "expected digits"),
            ("15 m", "expected digits"),
            ("m", "must follow a number"),
            ("h30", "must follow a number"),
            ("30m1h", "order"),
            ("1h1h", "order"),
            ("1h30", "needs a unit"),
            ("25h", "maximum of 24h"),
            ("24h1s", "maximum of 24h"),
            ("86401", "maximum of 24h"),
            ("99999999999999999999", "too large"),
            ("99999999999999999h", "too large"),
        ];
        for (input, why) in bad {
            let err = parse_ttl(input).expect_err(input).to_string();
            assert!(err.contains(why), "input {input:?}: {err}");
            assert!(err.starts_with("TTL "), "input {input:?}: {err}");
        }
    }

    #[test]
    fn init_writes_key_and_jwks_with_private_modes() {
        let tmp = TempDir::new("init");
        let dir = tmp.0.join("nested").join("demo");
        let outcome = init(&dir, false).expect("init");
        assert!(outcome.created);
        assert_eq!(outcome.key_path, dir.join(KEY_FILE));
        assert_eq!(outcome.kid.len(), KID_LEN);

        let pem = fs::read_to_string(dir.join(KEY_FILE)).expect("key");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");

        let jwks: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join(JWKS_FILE)).expect("jwks")).expect("json");
        let keys = jwks["keys"].as_array().expect("keys array");
        assert_eq!(keys.len(), 1);
        let key = keys[0].as_object().expect("object");
        let mut names: Vec<&str> = key.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["crv"], "P-256");
        assert_eq!(key["alg"], "ES256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], outcome.kid.as_str());
        for coord in ["x", "y"] {
            let s = key[coord].as_str().expect("string");
            assert_eq!(s.len(), 43, "32 bytes, base64url without padding");
            assert!(!s.contains(['=', '+', '/']));
        }
        // The JWKS point is the key pair's public key.
        let (rebuilt, _) = public_key_from_jwks(&dir);
        let key = load_key(&dir.join(KEY_FILE)).expect("key loads");
        assert_eq!(key.public_key().to_bytes(), rebuilt.to_bytes());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
            assert_eq!(mode(&dir.join(JWKS_FILE)), 0o644);
        }
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "no temp files left behind");
    }

    #[test]
    fn init_is_idempotent_and_force_rotates() {
        let tmp = TempDir::new("idem");
        let first = init(&tmp.0, false).expect("first init");
        let key1 = fs::read(tmp.0.join(KEY_FILE)).expect("key");
        let jwks1 = fs::read(tmp.0.join(JWKS_FILE)).expect("jwks");

        let second = init(&tmp.0, false).expect("second init");
        assert!(first.created);
        assert!(!second.created);
        assert_eq!(first.kid, second.kid);
        assert_eq!(fs::read(tmp.0.join(KEY_FILE)).expect("key"), key1);
        assert_eq!(fs::read(tmp.0.join(JWKS_FILE)).expect("jwks"), jwks1);

        // A deleted JWKS is restored from the kept key.
        fs::remove_file(tmp.0.join(JWKS_FILE)).expect("rm");
        let third = init(&tmp.0, false).expect("third init");
        assert!(!third.created);
        assert_eq!(fs::read(tmp.0.join(JWKS_FILE)).expect("jwks"), jwks1);

        let forced = init(&tmp.0, true).expect("forced init");
        assert!(forced.created);
        assert_ne!(forced.kid, first.kid);
        assert_ne!(fs::read(tmp.0.join(KEY_FILE)).expect("key"), key1);
    }

    #[test]
    fn init_rejects_garbage_key_without_echoing_it() {
        let tmp = TempDir::new("garbage");
        fs::create_dir_all(&tmp.0).expect("mkdir");
        fs::write(tmp.0.join(KEY_FILE), "SECRET-GARBAGE").expect("write");
        let err = init(&tmp.0, false).err().expect("must fail").to_string();
        assert!(err.contains("--force"), "{err}");
        assert!(!err.contains("SECRET-GARBAGE"), "{err}");
        init(&tmp.0, true).expect("--force replaces it");
    }

    #[test]
    fn mint_verifies_against_jwks_key_and_carries_claims() {
        let tmp = TempDir::new("mint");
        init(&tmp.0, false).expect("init");
        let now = unix_now().expect("clock");
        let token = mint(&mint_args(&tmp.0), now).expect("mint");
        assert_eq!(token.split('.').count(), 3);
        assert!(!token.contains(['\n', ' ']));

        let (pk, kid) = public_key_from_jwks(&tmp.0);
        let header = header_json(&token);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], kid.as_str());

        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from(["warden-demo".to_string()])),
            allowed_audiences: Some(HashSet::from(["warden".to_string()])),
            required_key_id: Some(kid.clone()),
            required_subject: Some("alice".to_string()),
            ..Default::default()
        };
        let verified: JWTClaims<serde_json::Map<String, serde_json::Value>> =
            pk.verify_token(&token, Some(options)).expect("verifies");
        assert_eq!(verified.subject.as_deref(), Some("alice"));
        assert_eq!(verified.custom["groups"], serde_json::json!(["eng", "ml"]));
        assert_eq!(verified.custom["repository"], "org/repo");
        assert_eq!(verified.custom["run_id"], "123");

        let payload = payload_json(&token);
        assert_eq!(payload["iss"], "warden-demo");
        assert_eq!(payload["aud"], "warden", "aud is a plain string");
        assert_eq!(payload["sub"], "alice");
        assert_eq!(payload["iat"], now);
        assert_eq!(payload["exp"], now + 900);
        assert!(payload.get("nbf").is_none());
        let jti = payload["jti"].as_str().expect("jti");
        assert_eq!(b64url_decode(jti).len(), 24);
        assert!(payload.get("nonce").is_none());

        // A second token has a different jti.
        let again = mint(&mint_args(&tmp.0), now).expect("mint");
        assert_ne!(payload_json(&again)["jti"], payload["jti"]);

        // A token from another key does not verify with this JWKS key.
        let other = TempDir::new("other");
        init(&other.0, false).expect("init other");
        let foreign = mint(&mint_args(&other.0), now).expect("mint other");
        let foreign_result = pk.verify_token::<serde_json::Value>(&foreign, None);
        assert!(foreign_result.is_err());
    }

    #[test]
    fn mint_group_less_token_and_key_flag() {
        let tmp = TempDir::new("nogroups");
        init(&tmp.0, false).expect("init");
        let mut args = mint_args(&tmp.0);
        args.groups = String::new();
        args.claims.clear();
        args.dir = None;
        args.key = Some(tmp.0.join(KEY_FILE));
        args.ttl = parse_ttl("24h").expect("ttl");
        let now = unix_now().expect("clock");
        let token = mint(&args, now).expect("mint");
        let payload = payload_json(&token);
        assert_eq!(payload["groups"], serde_json::json!([]));
        assert_eq!(payload["exp"], now + 86_400);
        let (pk, _) = public_key_from_jwks(&tmp.0);
        pk.verify_token::<serde_json::Value>(&token, None).expect("verifies");
    }

    #[test]
    fn mint_errors_are_clear() {
        let tmp = TempDir::new("errors");
        let missing = mint(&mint_args(&tmp.0), 1_700_000_000).expect_err("no key yet").to_string();
        assert!(missing.contains("warden token init"), "{missing}");

        init(&tmp.0, false).expect("init");
        let mut args = mint_args(&tmp.0);
        args.sub = " ".to_string();
        let empty_sub = mint(&args, 1).expect_err("empty sub").to_string();
        assert!(empty_sub.contains("--sub"), "{empty_sub}");

        let mut args = mint_args(&tmp.0);
        args.claims.push(("run_id".to_string(), "456".to_string()));
        let dup = mint(&args, 1).expect_err("dup claim").to_string();
        assert!(dup.contains("more than once"), "{dup}");

        let mut args = mint_args(&tmp.0);
        args.ttl = Duration::from_secs(MAX_TTL_SECS + 1);
        assert!(mint(&args, 1).is_err(), "ttl cap also enforced outside clap");
    }

    #[test]
    fn claim_and_group_parsing() {
        assert_eq!(parse_claim("repository=org/repo").ok(), Some(("repository".to_string(), "org/repo".to_string())));
        assert_eq!(parse_claim("q=a=b").ok(), Some(("q".to_string(), "a=b".to_string())));
        assert_eq!(parse_claim("k=").ok(), Some(("k".to_string(), String::new())));
        for bad in ["novalue", "=v", "sub=bob", "groups=x", "exp=1", "iss=x"] {
            assert!(parse_claim(bad).is_err(), "{bad}");
        }
        assert!(parse_groups("").is_empty());
        assert!(parse_groups(" , ,").is_empty());
        assert_eq!(parse_groups("a,b"), ["a", "b"]);
        assert_eq!(parse_groups(" b , a ,b"), ["b", "a"]);
    }

    #[test]
    fn resolve_dir_precedence() {
        // Only the flag case is env-independent; the env var is read at run time.
        assert_eq!(resolve_dir(Some(PathBuf::from("x"))), PathBuf::from("x"));
    }

    #[test]
    fn clap_wiring() {
        use clap::Parser;
        #[derive(clap::Parser, Debug)]
        struct Cli {
            #[command(subcommand)]
            command: Top,
        }
        #[derive(clap::Subcommand, Debug)]
        enum Top {
            Token(TokenArgs),
        }
        use clap::CommandFactory;
        Cli::command().debug_assert();

        let cli = Cli::try_parse_from([
            "warden", "token", "mint", "--sub", "bob", "--groups", "", "--ttl", "2h30m", "--claim", "run_id=7",
            "--key", "k.pem",
        ])
        .expect("parses");
        let Top::Token(TokenArgs { command: Some(TokenCommand::Mint(m)), .. }) = cli.command else {
            panic!("expected mint");
        };
        assert_eq!(m.ttl, Duration::from_secs(9000));
        assert_eq!(m.groups, "");
        assert_eq!(m.issuer, "warden-demo");
        assert_eq!(m.audience, "warden");
        assert_eq!(m.claims, [("run_id".to_string(), "7".to_string())]);

        let defaults = Cli::try_parse_from(["warden", "token", "mint", "--sub", "bob"]).expect("parses");
        let Top::Token(TokenArgs { command: Some(TokenCommand::Mint(m)), .. }) = defaults.command else {
            panic!("expected mint");
        };
        assert_eq!(m.ttl, Duration::from_secs(900));

        for bad in [
            vec!["warden", "token", "mint", "--sub", "b", "--ttl", "25h"],
            vec!["warden", "token", "mint", "--sub", "b", "--claim", "sub=x"],
            vec!["warden", "token", "mint", "--sub", "b", "--dir", "d", "--key", "k"],
            vec!["warden", "token", "mint"],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
        }
        let init = Cli::try_parse_from(["warden", "token", "init", "--force"]).expect("init");
        assert!(matches!(
            init.command,
            Top::Token(TokenArgs { command: Some(TokenCommand::Init(InitArgs { force: true, dir: None })), .. })
        ));
    }
}

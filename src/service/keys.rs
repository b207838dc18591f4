//! Key files of the token issuers (`warden token init|mint`, `warden serve init` and the token
//! service): the private directory they live in, atomic writes with exact modes, loading a
//! PKCS#8 PEM ES256 key, its short key id and the JWKS that publishes it.
//!
//! The `kid` is the first 16 characters of jwt-simple's key id for the public key,
//! `base64url(SHA-256(SEC1 compressed point))`, so it is short, stable for a given key and
//! independent of file contents. Writes go to a temporary file next to the target, created with
//! the final mode, synced and renamed over it, so a reader never sees half a file and a private
//! key never exists with looser permissions. Private key material is never printed, logged or
//! included in error messages (a key that does not parse is reported by path only).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use jwt_simple::prelude::{ECDSAP256PublicKeyLike, ES256KeyPair, ES256PublicKey};
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use serde::Serialize;

/// File name of the PKCS#8 PEM signing key inside the demo directory (`warden token init`).
pub const KEY_FILE: &str = "signing-key.pem";
/// Length of the `kid` (a prefix of the base64url SHA-256 of the public key).
pub const KID_LEN: usize = 16;

/// Why a key file or a `warden token` command failed. Messages never contain key material.
#[derive(Debug)]
pub enum TokenError {
    /// A file or directory operation failed.
    Io {
        /// What was being done, including the path involved.
        context: String,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// A key file exists but does not hold a usable ES256 private key.
    InvalidKey {
        /// The key file that could not be used.
        path: PathBuf,
    },
    /// No signing key was found where one was expected.
    MissingKey {
        /// Where the key was looked for.
        path: PathBuf,
    },
    /// The `--ttl` value was rejected; the message starts with "TTL".
    InvalidTtl(String),
    /// Another argument was rejected.
    InvalidArgument(String),
    /// Generating, encoding or signing failed inside the JWT library.
    Crypto(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Io { context, source } => write!(f, "{context}: {source}"),
            TokenError::InvalidKey { path } => {
                write!(f, "{} is not a PKCS#8 PEM ES256 (P-256) private key", path.display())?;
                if path.file_name().is_some_and(|n| n == KEY_FILE) {
                    f.write_str("; run `warden token init --force` to replace it")?;
                }
                Ok(())
            }
            TokenError::MissingKey { path } => {
                write!(f, "no signing key at {}; run `warden token init` first", path.display())
            }
            TokenError::InvalidTtl(msg) => f.write_str(msg),
            TokenError::InvalidArgument(msg) => f.write_str(msg),
            TokenError::Crypto(msg) => write!(f, "crypto error: {msg}"),
        }
    }
}

impl std::error::Error for TokenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TokenError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Creates `dir` (and missing parents) with mode 0700; an existing directory is left as is.
pub fn create_private_dir(dir: &Path) -> Result<(), TokenError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|source| TokenError::Io { context: format!("creating directory {}", dir.display()), source })
}

/// Writes `contents` to a temporary file next to `path` with `mode`, then
/// renames it over `path`, so readers never see a half-written file and a
/// private key never exists with looser permissions.
pub fn write_file_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), TokenError> {
    let io_err = |what: &str, p: &Path| {
        let context = format!("{what} {}", p.display());
        move |source| TokenError::Io { context, source }
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    // A leftover from an interrupted earlier run with the same pid; ignore "not found".
    let _ = fs::remove_file(&tmp);

    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp).map_err(io_err("creating", &tmp))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The umask may have narrowed the mode; set it exactly.
            file.set_permissions(fs::Permissions::from_mode(mode)).map_err(io_err("setting permissions on", &tmp))?;
        }
        file.write_all(contents).map_err(io_err("writing", &tmp))?;
        file.sync_all().map_err(io_err("syncing", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err("replacing", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a PKCS#8 PEM ES256 private key from `path`.
pub fn load_key(path: &Path) -> Result<ES256KeyPair, TokenError> {
    let pem = fs::read_to_string(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            TokenError::MissingKey { path: path.to_path_buf() }
        } else {
            TokenError::Io { context: format!("reading {}", path.display()), source }
        }
    })?;
    // The parse error is dropped on purpose: it could echo parts of the file.
    ES256KeyPair::from_pem(&pem).map_err(|_| TokenError::InvalidKey { path: path.to_path_buf() })
}

/// Short, stable key id: a prefix of base64url(SHA-256(compressed public point)).
pub fn key_id(public: &ES256PublicKey) -> String {
    let mut public = public.clone();
    public.create_key_id().chars().take(KID_LEN).collect()
}

/// Encodes bytes as unpadded base64url.
fn b64url(bytes: &[u8]) -> Result<String, TokenError> {
    Base64UrlSafeNoPadding::encode_to_string(bytes).map_err(|e| TokenError::Crypto(format!("base64url encoding: {e}")))
}

/// One public key in `jwks.json` (RFC 7517 §4, RFC 7518 §6.2.1).
#[derive(Serialize)]
struct Jwk<'a> {
    kty: &'a str,
    crv: &'a str,
    x: String,
    y: String,
    alg: &'a str,
    #[serde(rename = "use")]
    use_: &'a str,
    kid: &'a str,
}

/// A JWK Set (RFC 7517 §5).
#[derive(Serialize)]
struct Jwks<'a> {
    keys: Vec<Jwk<'a>>,
}

/// The pretty-printed JWKS holding `public` under `kid`, with a trailing newline.
pub fn jwks_json(public: &ES256PublicKey, kid: &str) -> Result<String, TokenError> {
    jwks_json_of(&[(public, kid)])
}

/// The JWKS of several keys (the current one first), each with its key id.
pub fn jwks_json_of(keys: &[(&ES256PublicKey, &str)]) -> Result<String, TokenError> {
    let mut jwks = Jwks { keys: Vec::with_capacity(keys.len()) };
    for (public, kid) in keys {
        // SEC1 uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes), zero-padded,
        // which is exactly the fixed-length coordinate form RFC 7518 requires.
        let point = public.public_key().to_bytes_uncompressed();
        let (x, y) = match point.as_slice() {
            [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => {
                return Err(TokenError::Crypto("unexpected P-256 public key encoding".to_string()));
            }
        };
        jwks.keys.push(Jwk { kty: "EC", crv: "P-256", x: b64url(x)?, y: b64url(y)?, alg: "ES256", use_: "sig", kid });
    }
    let mut text =
        serde_json::to_string_pretty(&jwks).map_err(|e| TokenError::Crypto(format!("serializing JWKS: {e}")))?;
    text.push('\n');
    Ok(text)
}

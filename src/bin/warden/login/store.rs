//! Where `warden login` keeps a sign-in, and how `warden token` reads it safely.
//!
//! Layout: `$XDG_CONFIG_HOME/warden/services/<slug>/` (else `~/.config/warden/services/<slug>/`),
//! one directory per service, mode 0700, holding `credentials.json` (mode 0600: the service URL,
//! its token endpoint, the refresh token, the current access token and its expiry) and
//! `credentials.lock`. The slug is the service's host and port plus a hash of its whole URL, so
//! two services never share a file and the name still says which service it is.
//!
//! - Writes are atomic (a temporary file in the same directory, synced, then renamed over), so a
//!   reader sees the old sign-in or the new one, never half of one.
//! - Because a rename replaces the file, the lock cannot live on `credentials.json` itself: an
//!   exclusive `flock` on the sibling `credentials.lock` serialises everything that rewrites the
//!   sign-in (a refresh, a new login, a logout). Reading a still-valid token takes no lock.
//! - Reading refuses a credentials file that is a symbolic link, is not owned by the current user,
//!   or that group or others may read or write, and a service directory others may write: the
//!   refresh token is a long-lived secret and someone who could swap the file could steer
//!   `warden token` to another token endpoint.
//!
//! Limits: Unix only (the modes and `flock`); `flock` is advisory and may not work on some network
//! file systems.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use warden::service::keys::{create_private_dir, write_file_atomically};

/// Name of the file holding a sign-in.
pub const CREDENTIALS_FILE: &str = "credentials.json";
/// Name of the lock file beside it.
const LOCK_FILE: &str = "credentials.lock";
/// Longest credentials file read (a sign-in is well under 20 KiB).
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// A stored sign-in. Its `Debug` never shows the tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The `warden serve` base URL the user signed into.
    pub service: String,
    /// Its token endpoint (from discovery at sign-in), used to refresh.
    pub token_endpoint: String,
    /// Its revocation endpoint (RFC 7009), when discovery announced one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Refresh token (a secret); absent when the service issued none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The current Warden access token (a secret).
    pub access_token: String,
    /// When the access token expires, Unix seconds.
    pub expires_at: u64,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("service", &self.service)
            .field("token_endpoint", &self.token_endpoint)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why the stored sign-in could not be read or written.
#[derive(Debug)]
pub enum StoreError {
    /// Neither `XDG_CONFIG_HOME` nor `HOME` is set.
    NoConfigDir,
    /// A file operation failed.
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The credentials file or its directory is unsafe to trust.
    Unsafe {
        /// The offending path.
        path: PathBuf,
        /// Why, and what to do.
        why: String,
    },
    /// Writing or creating a file or directory failed.
    Write(warden::service::keys::TokenError),
    /// The credentials file is not a sign-in this version can read.
    Corrupt {
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoConfigDir => f.write_str("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the sign-in"),
            Self::Io { context, source } => write!(f, "{context}: {source}"),
            Self::Write(e) => write!(f, "{e}"),
            Self::Unsafe { path, why } => write!(f, "refusing to use {}: {why}", path.display()),
            Self::Corrupt { path } => {
                write!(f, "{} is not a Warden sign-in; run `warden login` again", path.display())
            }
        }
    }
}

impl std::error::Error for StoreError {}

fn io_error(context: String) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Io { context, source }
}

/// The directory holding every stored sign-in: `$XDG_CONFIG_HOME/warden/services`, else
/// `$HOME/.config/warden/services`. Relative or empty values are ignored, as the XDG spec says.
pub fn services_dir(xdg_config_home: Option<&str>, home: Option<&str>) -> Result<PathBuf, StoreError> {
    let absolute = |v: Option<&str>| v.filter(|v| v.starts_with('/')).map(PathBuf::from);
    let base = absolute(xdg_config_home)
        .or_else(|| absolute(home).map(|home| home.join(".config")))
        .ok_or(StoreError::NoConfigDir)?;
    Ok(base.join("warden").join("services"))
}

/// [`services_dir`] from the process environment.
pub fn services_dir_from_env() -> Result<PathBuf, StoreError> {
    let var = |name| std::env::var(name).ok();
    services_dir(var("XDG_CONFIG_HOME").as_deref(), var("HOME").as_deref())
}

/// The directory name for `service`: `<host>_<port>-<16 hex of SHA-256(url)>`, only `[a-z0-9._-]`,
/// never starting with a dot.
pub fn slug(service: &str) -> String {
    let authority = service.split_once("://").map_or(service, |(_, rest)| rest);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
    let readable: String = authority
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c.to_ascii_lowercase() } else { '_' })
        .collect();
    // Never a hidden or parent-looking name.
    let readable = readable.replacen('.', "_", usize::from(readable.starts_with('.')));
    let digest = hmac_sha256::Hash::hash(service.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{readable}-{hex}")
}

/// One service's stored sign-in.
#[derive(Debug, Clone)]
pub struct ServiceStore {
    dir: PathBuf,
}

/// An exclusive hold on a service's sign-in; released when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl ServiceStore {
    /// The store of `service` inside `services_dir`.
    pub fn new(services_dir: &Path, service: &str) -> Self {
        Self { dir: services_dir.join(slug(service)) }
    }

    /// The credentials file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CREDENTIALS_FILE)
    }

    /// Takes the exclusive lock, creating the directory (0700) if needed; blocks while another
    /// `warden` holds it.
    pub fn lock(&self) -> Result<Lock, StoreError> {
        self.ensure_dir()?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(io_error(format!("opening {}", path.display())))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| StoreError::Io { context: format!("locking {}", path.display()), source: e.into() })?;
        Ok(Lock { _file: file })
    }

    /// Reads the sign-in; `Ok(None)` when there is none. Refuses unsafe files (module header).
    pub fn load(&self) -> Result<Option<Credentials>, StoreError> {
        let path = self.path();
        let link = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Io { context: format!("reading {}", path.display()), source: e }),
        };
        if link.file_type().is_symlink() {
            return Err(unsafe_file(&path, "it is a symbolic link; remove it and run `warden login`"));
        }
        check_dir(&self.dir)?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(io_error(format!("reading {}", path.display())))?;
        let meta = file.metadata().map_err(io_error(format!("reading {}", path.display())))?;
        check_private_file(&path, &meta)?;
        let mut text = String::new();
        io::Read::read_to_string(&mut io::Read::take(file, MAX_FILE_BYTES), &mut text)
            .map_err(|_| StoreError::Corrupt { path: path.clone() })?;
        serde_json::from_str(&text).map(Some).map_err(|_| StoreError::Corrupt { path })
    }

    /// Writes the sign-in atomically with mode 0600. Call it holding [`Self::lock`].
    pub fn save(&self, _lock: &Lock, credentials: &Credentials) -> Result<(), StoreError> {
        self.ensure_dir()?;
        let text = serde_json::to_vec_pretty(credentials).map_err(|e| StoreError::Io {
            context: "encoding the sign-in".to_string(),
            source: io::Error::other(e.to_string()),
        })?;
        write_file_atomically(&self.path(), &text, 0o600).map_err(StoreError::Write)
    }

    /// Forgets the sign-in (the directory and lock stay). Call it holding [`Self::lock`].
    /// Returns whether there was one.
    pub fn remove(&self, _lock: &Lock) -> Result<bool, StoreError> {
        let path = self.path();
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::Io { context: format!("removing {}", path.display()), source: e }),
        }
    }

    /// Creates the service directory with mode 0700 (and narrows an existing one to 0700).
    fn ensure_dir(&self) -> Result<(), StoreError> {
        create_private_dir(&self.dir).map_err(StoreError::Write)?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(io_error(format!("setting the mode of {}", self.dir.display())))
    }
}

/// Every stored sign-in under `services_dir`. Garbled files are skipped; an unsafe one is an
/// error (it must be seen, not silently ignored).
pub fn stored_services(services_dir: &Path) -> Result<Vec<String>, StoreError> {
    let Ok(entries) = fs::read_dir(services_dir) else { return Ok(Vec::new()) };
    let mut services = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        match (ServiceStore { dir: entry.path() }).load() {
            Ok(Some(credentials)) => services.push(credentials.service),
            Err(unsafe_file @ StoreError::Unsafe { .. }) => return Err(unsafe_file),
            Ok(None) | Err(_) => {}
        }
    }
    services.sort();
    services.dedup();
    Ok(services)
}

fn unsafe_file(path: &Path, why: &str) -> StoreError {
    StoreError::Unsafe { path: path.to_path_buf(), why: why.to_string() }
}

/// The file must be a regular file owned by the current user with no group/other permission.
fn check_private_file(path: &Path, meta: &fs::Metadata) -> Result<(), StoreError> {
    if !meta.is_file() {
        return Err(unsafe_file(path, "it is not a regular file"));
    }
    if meta.uid() != rustix::process::getuid().as_raw() {
        return Err(unsafe_file(path, "it belongs to another user; remove it and run `warden login`"));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(unsafe_file(
            path,
            &format!(
                "others may read or write it (mode {mode:03o}); it holds your refresh token: run \
                 `chmod 600 {}` if nobody else used it, else `warden logout` and `warden login`",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The service directory must not be writable by group or others (they could swap the file).
fn check_dir(dir: &Path) -> Result<(), StoreError> {
    let meta = fs::symlink_metadata(dir).map_err(io_error(format!("reading {}", dir.display())))?;
    let mode = meta.mode() & 0o777;
    if !meta.is_dir() || mode & 0o022 != 0 {
        return Err(unsafe_file(
            dir,
            &format!("others may write this directory (mode {mode:03o}); run `chmod 700` on it"),
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    pub(crate) struct TempDir(pub PathBuf);
    impl TempDir {
        pub fn new(name: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("warden-store-{name}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn sample() -> Credentials {
        Credentials {
            service: "http://127.0.0.1:8787".to_string(),
            token_endpoint: "http://127.0.0.1:8787/oauth/token".to_string(),
            revocation_endpoint: None,
            refresh_token: Some("refresh-secret".to_string()),
            access_token: "access-secret".to_string(),
            expires_at: 1_700_000_600,
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn config_dir_follows_xdg_then_home_and_ignores_relative_values() {
        assert_eq!(services_dir(Some("/x"), Some("/h")).unwrap(), PathBuf::from("/x/warden/services"));
        assert_eq!(services_dir(None, Some("/h")).unwrap(), PathBuf::from("/h/.config/warden/services"));
        assert_eq!(services_dir(Some("rel"), Some("/h")).unwrap(), PathBuf::from("/h/.config/warden/services"));
        assert_eq!(services_dir(Some(""), Some("/h")).unwrap(), PathBuf::from("/h/.config/warden/services"));
        assert!(matches!(services_dir(None, None), Err(StoreError::NoConfigDir)));
    }

    #[test]
    fn slugs_name_the_service_and_never_collide_or_escape() {
        assert!(slug("http://127.0.0.1:8787").starts_with("127.0.0.1_8787-"));
        assert_ne!(slug("http://127.0.0.1:8787"), slug("https://127.0.0.1:8787"));
        assert_ne!(slug("https://a.example/x"), slug("https://a.example/y"));
        for hostile in ["https://../../etc", "https://a/..%2f", "http://[::1]:1/", "https://é.example", ""] {
            let s = slug(hostile);
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')), "{s}");
            assert!(!s.starts_with('.'), "{s}");
        }
    }

    #[test]
    fn saved_sign_in_reads_back_with_private_modes_and_a_debug_without_secrets() {
        let tmp = TempDir::new("save");
        let store = ServiceStore::new(&tmp.0.join("warden/services"), "http://127.0.0.1:8787");
        assert_eq!(store.load().unwrap(), None);
        let lock = store.lock().unwrap();
        store.save(&lock, &sample()).unwrap();
        assert_eq!(store.load().unwrap(), Some(sample()));
        assert_eq!(mode(&store.path()), 0o600);
        assert_eq!(mode(store.path().parent().unwrap()), 0o700);
        let debug = format!("{:?}", sample());
        assert!(!debug.contains("secret"), "{debug}");
        assert_eq!(stored_services(&tmp.0.join("warden/services")).unwrap(), ["http://127.0.0.1:8787"]);
        assert!(store.remove(&lock).unwrap());
        assert!(!store.remove(&lock).unwrap());
        assert_eq!(store.load().unwrap(), None);
    }

    #[test]
    fn a_file_others_can_read_or_write_is_refused_with_a_fix() {
        let tmp = TempDir::new("modes");
        let store = ServiceStore::new(&tmp.0, "http://127.0.0.1:8787");
        let lock = store.lock().unwrap();
        store.save(&lock, &sample()).unwrap();
        for bad in [0o644, 0o640, 0o602, 0o660] {
            fs::set_permissions(store.path(), fs::Permissions::from_mode(bad)).unwrap();
            let err = store.load().unwrap_err().to_string();
            assert!(err.contains("others may read or write"), "{err}");
            assert!(err.contains("chmod 600"), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o400)).unwrap();
        assert!(store.load().unwrap().is_some(), "read-only for the owner is fine");
    }

    #[test]
    fn a_directory_others_can_write_and_a_symlinked_file_are_refused() {
        let tmp = TempDir::new("dir");
        let store = ServiceStore::new(&tmp.0, "http://127.0.0.1:8787");
        let lock = store.lock().unwrap();
        store.save(&lock, &sample()).unwrap();
        let dir = store.path().parent().unwrap().to_path_buf();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(store.load().unwrap_err().to_string().contains("others may write this directory"));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();

        let elsewhere = tmp.0.join("planted.json");
        fs::rename(store.path(), &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, store.path()).unwrap();
        assert!(store.load().unwrap_err().to_string().contains("symbolic link"));
    }

    #[test]
    fn a_garbled_file_says_to_sign_in_again_without_echoing_it() {
        let tmp = TempDir::new("corrupt");
        let store = ServiceStore::new(&tmp.0, "http://127.0.0.1:8787");
        store.lock().unwrap();
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true).mode(0o600);
        io::Write::write_all(&mut options.open(store.path()).unwrap(), b"{\"refresh_token\":\"leak-me\"").unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("warden login"), "{err}");
        assert!(!err.contains("leak-me"), "{err}");
    }

    #[test]
    fn the_lock_is_exclusive_across_open_files() {
        let tmp = TempDir::new("lock");
        let store = Arc::new(ServiceStore::new(&tmp.0, "http://127.0.0.1:8787"));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (store, inside, most) = (store.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _lock = store.lock().unwrap();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "never two holders at once");
    }
}

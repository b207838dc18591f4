//! File paths as the rules see them: normalisation (`~`, `.`, `..`, repeated separators) and
//! matching against globs and the agent's declared workspace.
//!
//! A path is normalised lexically, the way the rules reason about it — the gateway never touches
//! the file system:
//! - `~` and `~user` stay a literal prefix (the gateway does not know the agent's home): `~/.ssh/x`
//!   is [`NormalPath::Home`];
//! - an absolute path has its `.` segments and repeated `/` dropped and each `..` removes the
//!   segment before it (never above `/`): [`NormalPath::Absolute`];
//! - a relative path is resolved against the working directory when it is known, else it stays
//!   [`NormalPath::Relative`] (collapsed; leading `..` kept).
//!
//! Answers are three-valued (`Option<bool>`, `None` = cannot tell): whether a path is outside the
//! workspace cannot be told for a `~` path, nor for a relative one without a working directory.
//! Symbolic links cannot be resolved at the gateway: `/repo/link/../../etc` is judged as the
//! lexical `/etc`, and a link inside the workspace that points outside it is judged inside.
//!
//! Path globs ([`PathGlobs`]) are the policy's globs (`*` within a segment, `**` across) over the
//! normal form; they must start with `/`, `~/` or `*`. A glob starting with `~/` also matches the
//! usual spellings of a home directory (`/home/*/…`, `/Users/*/…`, `/root/…`).

use crate::core::policy::glob::{Glob, GlobError};
use serde_json::Value;

/// The longest path looked at, in bytes; longer ones cannot be judged.
pub const MAX_PATH_BYTES: usize = 4096;

/// A path in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NormalPath {
    /// `/…`, collapsed.
    Absolute(String),
    /// `~/…` or `~user/…`, collapsed after the prefix.
    Home(String),
    /// A relative path whose base is unknown, collapsed (may start with `..`).
    Relative(String),
}

/// The lexical collapse of `path`'s segments: `.` and empty segments dropped, `..` removing the
/// segment before it (kept at the start of a relative path, dropped at the root).
fn collapse(path: &str, absolute: bool) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => match segments.last() {
                Some(&last) if last != ".." => {
                    segments.pop();
                }
                _ if absolute => {}
                _ => segments.push(".."),
            },
            other => segments.push(other),
        }
    }
    let joined = segments.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// The normal form of a workspace or working directory: an absolute path, collapsed, without a
/// trailing `/`; `None` for anything else.
pub fn normal_directory(directory: &str) -> Option<String> {
    (directory.starts_with('/') && directory.len() <= MAX_PATH_BYTES && !directory.contains('\0'))
        .then(|| collapse(directory, true))
}

/// Normalises `path`, resolving a relative one against `cwd` (a [`normal_directory`]); `None`
/// for an empty, over-long or NUL-carrying path.
pub fn normalize(path: &str, cwd: Option<&str>) -> Option<NormalPath> {
    if path.is_empty() || path.len() > MAX_PATH_BYTES || path.contains('\0') {
        return None;
    }
    if let Some(after) = path.strip_prefix('~') {
        let (user, rest) = after.split_once('/').unwrap_or((after, ""));
        let tail = collapse(rest, true);
        let tail = if tail == "/" { String::new() } else { tail };
        return Some(NormalPath::Home(format!("~{user}{tail}")));
    }
    if path.starts_with('/') {
        return Some(NormalPath::Absolute(collapse(path, true)));
    }
    Some(match cwd {
        Some(cwd) => NormalPath::Absolute(collapse(&format!("{cwd}/{path}"), true)),
        None => NormalPath::Relative(collapse(path, false)),
    })
}

/// Whether a normal path is outside `workspace` (a [`normal_directory`]); `None` when it cannot
/// be told.
pub fn outside(path: &NormalPath, workspace: Option<&str>) -> Option<bool> {
    match (path, workspace) {
        (NormalPath::Absolute(path), Some(workspace)) => Some(!is_within(path, workspace)),
        _ => None,
    }
}

/// Whether `path` is `directory` or below it (both normal and absolute).
fn is_within(path: &str, directory: &str) -> bool {
    if directory == "/" {
        return true;
    }
    path.strip_prefix(directory).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Why a path pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathGlobError {
    /// Neither absolute, nor under `~`, nor starting with `*` (the pattern).
    NotAbsolute(String),
    /// Not a glob.
    Glob(GlobError),
}

impl std::fmt::Display for PathGlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAbsolute(pattern) => write!(
                f,
                "path glob {pattern:?} must start with '/', '~/' or '*' (paths are matched in their absolute form)"
            ),
            Self::Glob(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for PathGlobError {}

/// Path globs from the policy (see the module header).
#[derive(Debug, Clone, Default)]
pub struct PathGlobs {
    globs: Vec<Glob>,
}

impl PathGlobs {
    /// Compiles one pattern into the set, or says why it is not one.
    pub fn add(&mut self, pattern: &str) -> Result<(), PathGlobError> {
        if !(pattern.starts_with('/') || pattern.starts_with("~/") || pattern == "~" || pattern.starts_with('*')) {
            return Err(PathGlobError::NotAbsolute(pattern.to_string()));
        }
        self.globs.push(Glob::parse_text(pattern).map_err(PathGlobError::Glob)?);
        if let Some(rest) = pattern.strip_prefix("~/") {
            for home in ["/home/*/", "/Users/*/", "/root/"] {
                self.globs.push(Glob::parse_text(&format!("{home}{rest}")).map_err(PathGlobError::Glob)?);
            }
        }
        Ok(())
    }

    /// Whether any glob matches the path; `None` when that depends on the unknown base of a
    /// relative path.
    pub fn matches(&self, path: &NormalPath) -> Option<bool> {
        let any = |text: &str| self.globs.iter().any(|g| g.matches(text));
        match path {
            NormalPath::Absolute(text) | NormalPath::Home(text) => Some(any(text)),
            NormalPath::Relative(text) => {
                // Two unrelated bases: where they agree, the base does not matter.
                let at_root = any(&format!("/{text}"));
                let deeper = any(&format!("/\u{1}base/\u{1}dir/{text}"));
                (at_root == deeper).then_some(at_root)
            }
        }
    }
}

/// The input fields that hold paths, for any tool.
pub const PATH_FIELDS: [&str; 4] = ["file_path", "path", "notebook_path", "pattern"];

/// The path fields of a file tool's input: Claude Code's `Read`/`Write`/`Edit`/`MultiEdit`
/// (`file_path`), `NotebookEdit`/`NotebookRead` (`notebook_path`), `Glob` (`path` and `path/pattern`),
/// `Grep`/`LS` (`path`); any other tool: whichever of `file_path`, `path` and `notebook_path` it
/// has (the text editor tool, MCP file servers).
pub fn tool_paths(tool: &str, input: &Value) -> Vec<String> {
    let field = |name: &str| input.get(name).and_then(Value::as_str);
    match tool {
        "Glob" => {
            let base = field("path");
            let mut paths: Vec<String> = base.iter().map(|b| b.to_string()).collect();
            if let Some(pattern) = field("pattern") {
                paths.push(match base {
                    Some(base) if !pattern.starts_with('/') && !pattern.starts_with('~') => format!("{base}/{pattern}"),
                    _ => pattern.to_string(),
                });
            }
            paths
        }
        _ => ["file_path", "path", "notebook_path"].iter().filter_map(|name| field(name)).map(str::to_string).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn absolute(text: &str) -> NormalPath {
        NormalPath::Absolute(text.to_string())
    }

    #[test]
    fn paths_are_collapsed_lexically() {
        let ws = Some("/repo");
        assert_eq!(normalize("/repo/./src//main.rs", ws), Some(absolute("/repo/src/main.rs")));
        assert_eq!(normalize("/repo/src/../../etc/passwd", ws), Some(absolute("/etc/passwd")));
        assert_eq!(normalize("/../../etc", ws), Some(absolute("/etc")));
        assert_eq!(normalize("src/../.env", ws), Some(absolute("/repo/.env")));
        assert_eq!(normalize("../../etc/shadow", ws), Some(absolute("/etc/shadow")));
        assert_eq!(normalize("~/.ssh/../.ssh/id_rsa", ws), Some(NormalPath::Home("~/.ssh/id_rsa".into())));
        assert_eq!(normalize("~", ws), Some(NormalPath::Home("~".into())));
        assert_eq!(normalize("~root/.bashrc", ws), Some(NormalPath::Home("~root/.bashrc".into())));
        assert_eq!(normalize("../x/./y", None), Some(NormalPath::Relative("../x/y".into())));
        assert_eq!(normalize("", ws), None);
        assert_eq!(normalize("a\0b", ws), None);
        assert_eq!(normal_directory("/repo/sub/../"), Some("/repo".into()));
        assert_eq!(normal_directory("repo"), None);
    }

    #[test]
    fn outside_the_workspace_is_lexical_and_unknown_when_it_cannot_be_told() {
        let ws = Some("/repo");
        let out = |p: &str, ws: Option<&str>| normalize(p, ws).and_then(|n| outside(&n, ws));
        assert_eq!(out("/repo/src/x", ws), Some(false));
        assert_eq!(out("/repo", ws), Some(false));
        assert_eq!(out("/repository/x", ws), Some(true));
        assert_eq!(out("/repo/../etc", ws), Some(true));
        assert_eq!(out("src/../../x", ws), Some(true));
        // A link inside the workspace cannot be followed: judged by its own path.
        assert_eq!(out("/repo/link-to-root/etc/passwd", ws), Some(false));
        assert_eq!(out("~/.bashrc", ws), None);
        assert_eq!(out("src/x", None), None);
        assert_eq!(out("/anything", Some("/")), Some(false));
    }

    #[test]
    fn path_globs_match_normal_forms_and_home_spellings() {
        let mut globs = PathGlobs::default();
        globs.add("**/.env").unwrap();
        globs.add("~/.ssh/**").unwrap();
        let m = |p: &str| normalize(p, Some("/repo")).and_then(|n| globs.matches(&n));
        assert_eq!(m("/repo/.env"), Some(true));
        assert_eq!(m("/repo/app/.env"), Some(true));
        assert_eq!(m(".env"), Some(true));
        assert_eq!(m("/repo/.env.example"), Some(false));
        assert_eq!(m("/repo/./x/../.env"), Some(true));
        assert_eq!(m("~/.ssh/id_ed25519"), Some(true));
        assert_eq!(m("/home/alice/.ssh/id_ed25519"), Some(true));
        assert_eq!(m("/Users/alice/.ssh/config"), Some(true));
        assert_eq!(m("/root/.ssh/authorized_keys"), Some(true));
        assert_eq!(m("/repo/.ssh/x"), Some(false));
        let relative = |p: &str| normalize(p, None).and_then(|n| globs.matches(&n));
        assert_eq!(relative(".env"), Some(true));
        assert_eq!(relative("src/main.rs"), Some(false));
        let mut etc = PathGlobs::default();
        etc.add("/etc/**").unwrap();
        assert_eq!(normalize("etc/passwd", None).and_then(|n| etc.matches(&n)), None);
        assert!(PathGlobs::default().add(".env").is_err());
        assert!(PathGlobs::default().add("src/**").is_err());
    }

    #[test]
    fn file_tools_name_their_paths() {
        let input = serde_json::json!({"file_path": "/repo/a", "content": "x"});
        assert_eq!(tool_paths("Write", &input), vec!["/repo/a"]);
        let glob = serde_json::json!({"pattern": "**/*.env", "path": "/repo"});
        assert_eq!(tool_paths("Glob", &glob), vec!["/repo", "/repo/**/*.env"]);
        let notebook = serde_json::json!({"notebook_path": "/n.ipynb"});
        assert_eq!(tool_paths("NotebookEdit", &notebook), vec!["/n.ipynb"]);
        assert!(tool_paths("Bash", &serde_json::json!({"command": "ls"})).is_empty());
    }
}

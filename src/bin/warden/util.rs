//! What the `warden` commands share: a command's failure with its exit status and the one way
//! to print its result ([`finish`]), pretty JSON, and the service's clock and time formats the
//! commands print with (re-exported from [`warden::service::util`], so a command and the
//! console show a time the same way).

use std::io::Write;
use std::process::ExitCode;

use serde_json::Value;

pub use warden::service::util::{format_duration, format_utc, unix_now, unix_now_millis};

/// Why a command failed, with its exit status.
#[derive(Debug)]
pub struct Failure {
    /// The process's exit status (each command documents its own).
    pub status: u8,
    /// What went wrong, for the person at the terminal.
    pub message: String,
}

impl Failure {
    /// A failure with exit status `status`.
    pub fn new(status: u8, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

/// Prints a command's text, or its failure (prefixed with `command`) with its exit status.
pub fn finish(command: &str, result: Result<String, Failure>) -> ExitCode {
    match result {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) is not an error worth reporting.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("{command}: {}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}

/// `value` as indented JSON with a trailing newline.
pub fn pretty(value: &Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(value).unwrap_or_default())
}

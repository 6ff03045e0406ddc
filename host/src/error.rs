//! The host's error type: each variant names what failed and where.

use std::path::PathBuf;
use std::sync::Arc;

use plugboard_api::{ErrorKind, PluginError};

/// Everything that can go wrong in the host.
///
/// Messages are one line and never contain a secret value: plugin messages (panics
/// included) are passed through the connection's redactor, and the secrets of every
/// connection of that plugin, before they are wrapped here ([`Error::plugin`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("{}:{line}:{column}: {message}", path.display())]
    Toml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },

    #[error("plugin {}: {reason}", path.display())]
    Load { path: PathBuf, reason: String },

    #[error("two plugins are named {name:?}: {} and {}", first.display(), second.display())]
    DuplicatePlugin {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },

    #[error("unknown connection {name:?}{hint}")]
    UnknownConnection { name: String, hint: String },

    #[error("connection {connection:?}: {message}")]
    Connection { connection: String, message: String },

    #[error("connection {connection:?}: {message}")]
    UnknownType { connection: String, message: String },

    #[error("connection {connection:?} (plugin {plugin}): {kind} error: {message}{}", attempts_note(*attempts))]
    Plugin {
        connection: String,
        plugin: String,
        kind: ErrorKind,
        retryable: bool,
        message: String,
        attempts: u32,
    },

    /// An isolated plugin's worker failed: it crashed, exited, or did not answer in time
    /// (and was stopped).
    #[error("plugin {plugin:?} {failure} while {during} connection {connection:?}{}", if *stopped { "; its worker was stopped" } else { "" })]
    Worker {
        plugin: String,
        connection: String,
        failure: String,
        during: &'static str,
        stopped: bool,
    },

    /// The connection's plugin lacks a capability the call needs: it was built against a
    /// plugboard-api older than the one that brought it.
    #[error(
        "connection {connection:?}: {what} is not supported by plugin {plugin} (built against plugboard-api {api}; {what} came in {since})"
    )]
    Unsupported {
        connection: String,
        /// Name and version: `sqlite 0.1.0`.
        plugin: String,
        api: String,
        what: &'static str,
        since: &'static str,
    },

    #[error("invalid argument: {0}")]
    Argument(String),

    /// The cache folder cannot be trusted (another user's, or writable by others).
    #[error("cache: {0}")]
    Cache(String),

    #[error("{context}: {error}")]
    Polars {
        context: String,
        error: polars::prelude::PolarsError,
    },

    #[error("cannot write {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },

    /// An error shared by the callers of one single-flight read.
    #[error("{0}")]
    Shared(Arc<Error>),
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl Error {
    /// The plugin's error kind, when the error came from a plugin.
    pub fn plugin_kind(&self) -> Option<ErrorKind> {
        match self {
            Error::Plugin { kind, .. } => Some(*kind),
            Error::Shared(inner) => inner.plugin_kind(),
            _ => None,
        }
    }

    /// Whether the call was stopped by [`crate::Connection::cancel`].
    pub fn is_cancelled(&self) -> bool {
        self.plugin_kind() == Some(ErrorKind::CANCELLED)
    }

    /// How many attempts were made, for an error that came from a plugin.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::Plugin { attempts, .. } => Some(*attempts),
            Error::Shared(inner) => inner.attempts(),
            _ => None,
        }
    }

    /// Unwraps an error shared by single-flight waiters; plugin errors (plain data) are
    /// rebuilt so callers can match on them, others stay shared.
    pub(crate) fn from_shared(e: Arc<Error>) -> Error {
        match Arc::try_unwrap(e) {
            Ok(e) => e,
            Err(shared) => match &*shared {
                Error::Plugin {
                    connection,
                    plugin,
                    kind,
                    retryable,
                    message,
                    attempts,
                } => Error::Plugin {
                    connection: connection.clone(),
                    plugin: plugin.clone(),
                    kind: *kind,
                    retryable: *retryable,
                    message: message.clone(),
                    attempts: *attempts,
                },
                _ => Error::Shared(shared),
            },
        }
    }

    /// A plugin's error (a panic's message included) as the host shows it: redacted by
    /// `redact` (the caller's: the connection's secrets, and those of every connection
    /// the plugin was handed, since a message may name another), folded onto one line,
    /// and redacted again in case folding joined a secret's lines.
    pub(crate) fn plugin(
        connection: &str,
        plugin: &str,
        e: &PluginError,
        redact: impl Fn(&str) -> String,
    ) -> Error {
        Error::Plugin {
            connection: connection.to_owned(),
            plugin: plugin.to_owned(),
            kind: e.kind,
            retryable: e.retryable,
            message: redact(&one_line(&redact(e.message()))),
            attempts: 1,
        }
    }
}

/// Folds a multi-line message onto one line.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push_str(" | ");
        }
        out.push_str(line);
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_panic_is_redacted_before_display() {
        let table: toml::Table =
            toml::from_str("password = \"S3cr3t-panic\"\n[other]\ntoken = \"S3cr3t-other\"\n")
                .expect("toml");
        let r = crate::config::secrets::Redactor::new(&table, &[]);
        crate::config::secrets::register_plugin_secrets("error-test", &r);
        let e = PluginError::new(
            ErrorKind::PANIC,
            "plugin panicked during the call: bad S3cr3t-panic\n  and S3cr3t-other\n at https://u:S3cr3t-url@h/ (at src/lib.rs:1)",
        );
        // Even if the connection's redactor missed them, the plugin's registry does not.
        let registry = |m: &str| crate::config::secrets::redact_plugin_text("error-test", m);
        let shown = Error::plugin("c", "error-test", &e, registry).to_string();
        assert_eq!(
            shown,
            "connection \"c\" (plugin error-test): panic error: plugin panicked during the call: \
             bad *** | and *** | at https://u:***@h/ (at src/lib.rs:1)"
        );
        let shown = Error::plugin("c", "error-none", &e, |m| r.redact(m)).to_string();
        assert!(!shown.contains("S3cr3t"), "{shown}");
    }
}

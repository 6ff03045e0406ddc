//! The exception hierarchy: `plugboard.Error` and one subclass per kind of failure, each
//! with the host's one-line message (which never holds a secret: the host redacts plugin
//! messages before they reach an `Error`).
//!
//! ```text
//! Error
//! ├── ConfigError    a secrets file, plugins.toml, a setting or an argument is wrong
//! ├── AuthError      the source refused the credentials
//! ├── ConnectError   the source could not be reached
//! ├── QueryError     the source refused or failed a query or statement (cancelled too)
//! └── PluginError    a plugin failed to load, crashed, panicked or lacks a capability
//! ```

use plugboard::Error as E;
use plugboard_api::ErrorKind;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    plugboard,
    Error,
    PyException,
    "Every error plugboard raises."
);
create_exception!(
    plugboard,
    ConfigError,
    Error,
    "A secrets file, plugins.toml, a connection setting or an argument is wrong."
);
create_exception!(
    plugboard,
    AuthError,
    Error,
    "The source refused the credentials."
);
create_exception!(
    plugboard,
    ConnectError,
    Error,
    "The source could not be reached."
);
create_exception!(
    plugboard,
    QueryError,
    Error,
    "The source refused or failed a query or a statement, or it was cancelled."
);
create_exception!(
    plugboard,
    PluginError,
    Error,
    "A plugin failed to load, crashed, panicked, or lacks the capability a call needs."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("AuthError", py.get_type::<AuthError>())?;
    m.add("ConnectError", py.get_type::<ConnectError>())?;
    m.add("QueryError", py.get_type::<QueryError>())?;
    m.add("PluginError", py.get_type::<PluginError>())?;
    Ok(())
}

/// The exception for a host error, with its message.
pub fn to_py(e: &E) -> PyErr {
    let message = e.to_string();
    match class(e) {
        Class::Config => ConfigError::new_err(message),
        Class::Auth => AuthError::new_err(message),
        Class::Connect => ConnectError::new_err(message),
        Class::Query => QueryError::new_err(message),
        Class::Plugin => PluginError::new_err(message),
        Class::Other => Error::new_err(message),
    }
}

/// A wrong argument from Python (a parameter that cannot be bound, a bad `ttl`).
pub fn argument(message: impl Into<String>) -> PyErr {
    ConfigError::new_err(message.into())
}

enum Class {
    Config,
    Auth,
    Connect,
    Query,
    Plugin,
    Other,
}

fn class(e: &E) -> Class {
    match e {
        E::Read { .. }
        | E::Toml { .. }
        | E::Config { .. }
        | E::UnknownConnection { .. }
        | E::Connection { .. }
        | E::UnknownType { .. }
        | E::Argument(_)
        | E::Cache(_) => Class::Config,
        E::Load { .. } | E::DuplicatePlugin { .. } | E::Worker { .. } | E::Unsupported { .. } => {
            Class::Plugin
        }
        E::Plugin { kind, .. } => match *kind {
            ErrorKind::CONFIG => Class::Config,
            ErrorKind::AUTH => Class::Auth,
            ErrorKind::CONNECT => Class::Connect,
            ErrorKind::QUERY | ErrorKind::CANCELLED => Class::Query,
            _ => Class::Plugin,
        },
        E::Shared(inner) => class(inner),
        E::Polars { .. } | E::Write { .. } => Class::Other,
    }
}

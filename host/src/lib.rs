//! # plugboard: a host for dynamically loaded data connectors
//!
//! What Streamlit's `st.connection` is to Python apps, as a native plugin host: connectors
//! are shared libraries found through `plugins.toml`, each connection is a section of a
//! Streamlit-compatible secrets file, and every read goes through one shared TTL cache and
//! comes back as a polars `DataFrame`.
//!
//! ```no_run
//! use std::time::Duration;
//! # fn main() -> Result<(), plugboard::Error> {
//! let host = plugboard::Host::builder()
//!     .plugins_file("plugins.toml")
//!     .secrets_file("examples/secrets.toml")
//!     .build()?;
//! let pets = host.connection("pets_db")?;
//! let df = pets
//!     .query("SELECT * FROM pet_owners WHERE owner = :owner")
//!     .param("owner", "Barbara")
//!     .ttl(Duration::from_secs(600))
//!     .fetch()?;
//! println!("{df}");
//! # Ok(()) }
//! ```
//!
//! Modules, one idea each: [`config`] (plugins.toml), [`secrets`] (the secrets file,
//! precedence, redaction), `sys` (the only `unsafe`: libraries, the Arrow import, mapped
//! cache files), [`cache`] (results, in memory and on disk), `connection` (the API above), [`output`] (formats), `cli`.
#![deny(unsafe_code)]

pub mod cache;
pub mod cli;
pub mod config;
mod connection;
pub mod disk;
pub mod duration;
mod error;
mod host;
pub mod output;
mod schema;
pub mod secrets;
mod sys;
mod state;

use crate::sys::loader;

pub use plugboard_api::{Params, Value};
pub use polars::prelude::DataFrame;

pub use crate::cache::{Cleared, DiskCache, DiskStats, MemoryStats, Outcome, Stats, Usage};
pub use crate::connection::{Connection, Execute, MAX_ATTEMPTS, Read, Stream};
pub use crate::disk::{CACHE_DIR_ENV, CACHE_MAX_ENV, OpenError};
pub use crate::error::{Error, Result};
pub use crate::host::{
    ConnectOptions, ConnectionInfo, Host, HostBuilder, PLUGIN_PATH_ENV, PLUGINS_ENV, PluginInfo,
    RESERVED_KEYS, SECRETS_ENV,
};

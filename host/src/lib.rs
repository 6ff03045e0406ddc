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
//! The layout, one concern per folder; imports point one way (`cli` → `client` →
//! `plugin`, `cache`, `config`, `export` → `sys`, with `util` and `error` below all):
//!
//! * [`config`]: `plugins.toml`, the secrets files and their precedence, the plugins'
//!   config schemas, redaction;
//! * `plugin`: the registry that loads plugins and picks the one serving a connection;
//! * [`cache`]: keys and generations, the memory tier, the tiers below it (disk);
//! * `client`: [`Host`], [`Connection`], the read, stream and execute builders;
//! * [`export`]: the output formats, the terminal table, atomic writes;
//! * [`cli`]: the command line: arguments (`mod.rs`), what a user types for a connection
//!   (`params`), the commands (`commands`);
//! * `sys`: the only `unsafe`: plugin libraries and their Arrow streams, mapped files.
#![deny(unsafe_code)]

pub mod cache;
pub mod cli;
mod client;
pub mod config;
pub mod duration;
mod error;
pub mod export;
pub mod fuzzing;
mod plugin;
mod sys;
mod util;

/// The disk tier, also at its old path.
pub use crate::cache::disk;
/// The secrets files, also at their old path.
pub use crate::config::secrets;
/// The output formats, also at their old path.
pub use crate::export as output;

pub use plugboard_api::{Params, Value};
pub use polars::prelude::DataFrame;

pub use crate::cache::disk::{CACHE_DIR_ENV, CACHE_MAX_ENV};
/// The Redis tier's settings.
pub use crate::cache::redis::{
    REDIS_CA_ENV, REDIS_CHUNK_ENV, REDIS_ENV, REDIS_INVALIDATION_ENV, REDIS_LOCK_ENV,
    REDIS_PREFIX_ENV, REDIS_RETRY_ENV, REDIS_STALENESS_ENV, REDIS_TIMEOUT_ENV,
};
pub use crate::cache::{
    Cleared, DiskCache, DiskStats, Invalidation, MemoryStats, OpenError, Outcome, RedisConfig,
    RedisStats, Stats, Usage,
};
pub use crate::client::{
    ConnectOptions, Connection, ConnectionInfo, Execute, Host, HostBuilder, MAX_ATTEMPTS,
    PLUGIN_PATH_ENV, PLUGINS_ENV, RESERVED_KEYS, Read, SECRETS_ENV, Stream,
};
pub use crate::config::plugins::{Isolation, PLUGIN_PATH_ISOLATION_ENV};
pub use crate::error::{Error, Result};
pub use crate::plugin::PluginInfo;
pub use crate::plugin::conformance::{conformance_isolated, conformance_isolated_basic};
pub use crate::plugin::worker::WORKER_ENV;

//! Configuration: `plugins.toml` ([`plugins`]), the secrets files, their precedence and
//! redaction ([`secrets`]), and the plugins' declared config schemas (`schema`).

pub mod plugins;
pub(crate) mod schema;
pub mod secrets;

pub use self::plugins::{PluginEntry, PluginsFile, pin};

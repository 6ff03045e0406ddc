//! The host: loaded plugins, the secrets, the caches, and resolving a connection by name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::connection::{ConnShared, Connection, Resolved, RetryPolicy};
use crate::cache::{
    Cleared, DEFAULT_MAX_BYTES, DiskCache, RedisConfig, RedisTier, ResultCache, Stats,
};
use crate::config::PluginsFile;
use crate::config::plugins::{Isolation, PLUGIN_PATH_ISOLATION_ENV, PluginDir, Settings};
use crate::config::secrets::{self, EnvOverrides, Redactor, Secrets};
use crate::error::{Error, Result};
use crate::plugin::PluginInfo;
use crate::plugin::registry::Registry;
use crate::util::{canonical_json, closest};

/// Keys the host takes out of a connection's table before the plugin sees it:
///
/// * `type`: the connector kind;
/// * `ttl`: the default TTL of the connection's reads;
/// * `connection_ttl`: reconnect on the next use after this long;
/// * `retry_attempts` (default 3) and `retry_backoff` (default `50ms`, doubling up to 5 s, jittered):
///   how `retryable` plugin errors are retried;
/// * `read_timeout`: a shorter `read_timeout` than the plugin's (isolated plugins only);
/// * `stale_if_error`: when a read with a TTL fails, serve the last good result from
///   the disk or Redis tier, up to this long past its TTL, with a warning;
/// * `refresh_ahead`: a memory hit with less than this left of its TTL is returned at
///   once and read again in the background, once;
/// * `max_entries`: accepted for Streamlit compatibility; the cache is bounded by bytes.
pub const RESERVED_KEYS: &[&str] = &[
    "type",
    "ttl",
    "stale_if_error",
    "refresh_ahead",
    "connection_ttl",
    "retry_attempts",
    "retry_backoff",
    "read_timeout",
    "max_entries",
];

/// The longest `retry_backoff` a connection may set.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);

/// The environment variable naming `plugins.toml`.
pub const PLUGINS_ENV: &str = "PLUGBOARD_PLUGINS";
/// The environment variable listing drop-in plugin folders (`:`-separated, like `PATH`).
pub const PLUGIN_PATH_ENV: &str = "PLUGBOARD_PLUGIN_PATH";
/// The environment variable naming the secrets file.
pub const SECRETS_ENV: &str = "PLUGBOARD_SECRETS";

/// A configured connection, fit for display: secrets are `***`.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub name: String,
    /// The plugin that would serve it, or why none does.
    pub plugin: std::result::Result<String, String>,
    pub table: toml::Table,
}

/// Options for [`Host::connection_with`]: the highest-precedence layer of a connection's
/// parameters, like `st.connection(name, type=..., **kwargs)`.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    kind: Option<String>,
    set: Vec<(Vec<String>, secrets::SetValue)>,
}

impl ConnectOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// The connector kind (`sql`, `sqlite`, ...), overriding the section's `type`.
    #[must_use]
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Sets a key (dotted for nested tables: `query.sslmode`).
    #[must_use]
    pub fn set(mut self, key: &str, value: impl Into<toml::Value>) -> Self {
        self.set.push((
            key.split('.').map(str::to_owned).collect(),
            secrets::SetValue::Value(value.into()),
        ));
        self
    }

    /// Sets a key from text, as `--set KEY=VALUE` does: typed by the type the plugin
    /// declares for the key (a declared string is the exact text), else by its look.
    #[must_use]
    pub fn set_text(mut self, key: &str, text: impl Into<String>) -> Self {
        self.set.push((
            key.split('.').map(str::to_owned).collect(),
            secrets::SetValue::Text(text.into()),
        ));
        self
    }
}

/// Builds a [`Host`]: where `plugins.toml` and the secrets are, and how big the cache is.
#[derive(Debug, Clone)]
pub struct HostBuilder {
    plugins_file: Option<PathBuf>,
    secrets_files: Option<Vec<PathBuf>>,
    project_dir: PathBuf,
    user_config_dir: Option<PathBuf>,
    use_env: bool,
    cache_max_bytes: u64,
    /// `None`: from the environment; `Some(None)`: no disk tier.
    cache_dir: Option<Option<PathBuf>>,
    disk_max_bytes: Option<u64>,
    /// `None`: from the environment (`PLUGBOARD_CACHE_REDIS`); `Some(None)`: no Redis tier.
    redis: Option<Option<RedisConfig>>,
    worker_program: Option<PathBuf>,
}

impl Default for HostBuilder {
    fn default() -> Self {
        Self {
            plugins_file: None,
            secrets_files: None,
            project_dir: PathBuf::from("."),
            user_config_dir: directories::BaseDirs::new().map(|d| d.config_dir().to_path_buf()),
            use_env: true,
            cache_max_bytes: DEFAULT_MAX_BYTES,
            cache_dir: None,
            disk_max_bytes: None,
            redis: None,
            worker_program: None,
        }
    }
}

impl HostBuilder {
    /// `plugins.toml` to load; default: `$PLUGBOARD_PLUGINS`, else `./plugins.toml`.
    #[must_use]
    pub fn plugins_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.plugins_file = Some(path.into());
        self
    }

    /// The secrets file to use instead of the default lookup.
    #[must_use]
    pub fn secrets_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.secrets_files = Some(vec![path.into()]);
        self
    }

    /// The secrets files to use, lowest precedence first, instead of the default lookup;
    /// none at all is a host whose connections all come from [`ConnectOptions`].
    #[must_use]
    pub fn secrets_files(mut self, paths: impl IntoIterator<Item = PathBuf>) -> Self {
        self.secrets_files = Some(paths.into_iter().collect());
        self
    }

    /// Where the project secrets (`.plugboard/`, `.streamlit/`) are looked for; default `.`.
    #[must_use]
    pub fn project_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.project_dir = dir.into();
        self
    }

    /// The user config folder (default: `~/.config`); `None` skips the user file.
    #[must_use]
    pub fn user_config_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.user_config_dir = dir;
        self
    }

    /// Whether `PLUGBOARD_*` environment variables apply (default: yes).
    #[must_use]
    pub fn use_env(mut self, yes: bool) -> Self {
        self.use_env = yes;
        self
    }

    /// The memory bound of the result cache, in bytes.
    #[must_use]
    pub fn cache_max_bytes(mut self, bytes: u64) -> Self {
        self.cache_max_bytes = bytes;
        self
    }

    /// The Redis tier; `None` turns it off. Default: `$PLUGBOARD_CACHE_REDIS` (with
    /// `PLUGBOARD_CACHE_REDIS_PREFIX`, `_TIMEOUT`, `_RETRY`, `_CHUNK_BYTES`), else none.
    #[must_use]
    pub fn redis(mut self, config: Option<RedisConfig>) -> Self {
        self.redis = Some(config);
        self
    }

    /// The disk tier's folder; `None` turns the disk tier off. Default:
    /// `$PLUGBOARD_CACHE_DIR`, else `$XDG_CACHE_HOME/plugboard` (`~/.cache/plugboard`).
    #[must_use]
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = Some(dir);
        self
    }

    /// The disk tier's byte bound. Default: `$PLUGBOARD_CACHE_MAX_BYTES`, else 2 GiB.
    #[must_use]
    pub fn disk_cache_max_bytes(mut self, bytes: u64) -> Self {
        self.disk_max_bytes = Some(bytes);
        self
    }

    /// Reads the configuration and loads the plugins. A plugin that fails to load is
    /// recorded in [`Host::load_errors`] and does not stop the others.
    /// The program that runs isolated plugins' workers (`plugboard`, which has a hidden
    /// worker mode). Default: `$PLUGBOARD_WORKER`, else this executable when it is the
    /// CLI, else a `plugboard` beside this executable or in its parent folder.
    #[must_use]
    pub fn worker_program(mut self, path: impl Into<PathBuf>) -> Self {
        self.worker_program = Some(path.into());
        self
    }

    pub fn build(self) -> Result<Host> {
        let env_path = |name: &str| {
            self.use_env
                .then(|| std::env::var_os(name))
                .flatten()
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let mut plugins_file = match self.plugins_file.clone().or_else(|| env_path(PLUGINS_ENV)) {
            Some(path) => PluginsFile::read(&path)?,
            None => {
                let default = self.project_dir.join("plugins.toml");
                if default.is_file() {
                    PluginsFile::read(&default)?
                } else {
                    PluginsFile::default()
                }
            }
        };
        // Drop-in folders from the environment, like PATH: loaded after plugins.toml's,
        // isolated unless `PLUGBOARD_PLUGIN_PATH_ISOLATION=none`.
        if let Some(path) = env_path(PLUGIN_PATH_ENV) {
            let isolation = match std::env::var(PLUGIN_PATH_ISOLATION_ENV) {
                Ok(v) if !v.trim().is_empty() => v
                    .trim()
                    .parse()
                    .map_err(|e| Error::Argument(format!("{PLUGIN_PATH_ISOLATION_ENV} {e}")))?,
                _ => Isolation::Process,
            };
            let settings = Settings {
                isolation,
                ..Settings::default()
            };
            plugins_file.dirs.extend(
                std::env::split_paths(&path)
                    .filter(|d| !d.as_os_str().is_empty())
                    .map(|path| PluginDir { path, settings }),
            );
        }
        let secret_files = match self.secrets_files.clone() {
            Some(files) => files,
            None => match env_path(SECRETS_ENV) {
                Some(p) => vec![p],
                None => secrets::default_files(&self.project_dir, self.user_config_dir.as_deref()),
            },
        };
        let secrets = Secrets::load(&secret_files)?;
        let env = if self.use_env {
            EnvOverrides::from_env()
        } else {
            EnvOverrides::default()
        };
        let disk = match &self.cache_dir {
            Some(dir) => dir.clone(),
            None if self.use_env => crate::cache::disk::default_dir(),
            None => directories::BaseDirs::new().map(|d| d.cache_dir().join("plugboard")),
        };
        let disk = match disk {
            None => None,
            Some(dir) => {
                let max = match self.disk_max_bytes {
                    Some(m) => m,
                    None if self.use_env => {
                        crate::cache::disk::default_max_bytes().map_err(Error::Argument)?
                    }
                    None => crate::cache::disk::DEFAULT_DISK_MAX_BYTES,
                };
                match DiskCache::open(&dir, max) {
                    Ok(disk) => Some(disk),
                    Err(crate::cache::disk::OpenError::Refused(reason)) => {
                        return Err(Error::Cache(reason));
                    }
                    Err(crate::cache::disk::OpenError::Unavailable(reason)) => {
                        tracing::warn!("disk cache off: {reason}");
                        None
                    }
                }
            }
        };
        let redis = match &self.redis {
            Some(config) => config.clone(),
            None if self.use_env => {
                RedisConfig::over_file(plugins_file.redis.clone()).map_err(Error::Argument)?
            }
            None => plugins_file.redis.clone(),
        };
        let redis = redis
            .map(RedisTier::new)
            .transpose()
            .map_err(Error::Argument)?;
        Ok(Host {
            inner: Arc::new(HostInner {
                registry: Registry::load(plugins_file, self.worker_program.as_deref()),
                secrets,
                env,
                results: Arc::new(ResultCache::new(self.cache_max_bytes, disk, redis)),
                connections: moka::sync::Cache::builder().build(),
            }),
        })
    }
}

pub(crate) struct HostInner {
    registry: Registry,
    secrets: Secrets,
    env: EnvOverrides,
    pub(crate) results: Arc<ResultCache>,
    connections: moka::sync::Cache<String, Arc<ConnShared>>,
}

/// The plugin host. Cheap to clone; all clones share plugins and caches.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field(
                "plugins",
                &self
                    .inner
                    .registry
                    .plugins
                    .iter()
                    .map(|p| &p.manifest.name)
                    .collect::<Vec<_>>(),
            )
            .field("secrets", &self.inner.secrets)
            .finish_non_exhaustive()
    }
}

impl Host {
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// A host with the default lookup rules (see [`HostBuilder`]).
    pub fn from_env() -> Result<Self> {
        HostBuilder::default().build()
    }

    /// The plugins that loaded, in load order.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.inner
            .registry
            .plugins
            .iter()
            .map(|p| p.info())
            .collect()
    }

    /// Plugins that failed to load, each naming its path and the reason.
    pub fn load_errors(&self) -> &[Error] {
        &self.inner.registry.errors
    }

    /// Where `plugins.toml` was read from.
    pub fn plugins_file(&self) -> Option<&Path> {
        self.inner.registry.file.path.as_deref()
    }

    /// The secrets files that were read, lowest precedence first.
    pub fn secrets_files(&self) -> &[PathBuf] {
        self.inner.secrets.files()
    }

    /// Configured connection names (files and environment), sorted.
    pub fn connection_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.secrets.names().map(str::to_owned).collect();
        for n in self.inner.env.names() {
            if !names
                .iter()
                .any(|m| m.to_ascii_uppercase().replace('-', "_") == n.to_ascii_uppercase())
            {
                names.push(n);
            }
        }
        names.sort();
        names
    }

    /// Every configured connection with its redacted table and the plugin that serves it.
    pub fn describe_connections(&self) -> Vec<ConnectionInfo> {
        self.connection_names()
            .into_iter()
            .map(|name| {
                let (s, env) = (&self.inner.secrets, &self.inner.env);
                let table =
                    secrets::effective_table(&name, s, env, &[], |_| None).unwrap_or_default();
                let plugin = self.inner.registry.select(&name, None, &table);
                // Environment text typed by the plugin's schema, as `resolve` does.
                let table = match &plugin {
                    Ok(p) => secrets::effective_table(&name, s, env, &[], |k| {
                        crate::config::schema::declared_type(&p.manifest, k)
                    })
                    .unwrap_or(table),
                    Err(_) => table,
                };
                let redactor = match &plugin {
                    Ok(p) => crate::config::schema::redactor(&p.manifest, &table),
                    Err(_) => Redactor::new(&table, &[]),
                };
                ConnectionInfo {
                    table: redactor.redact_table(&table),
                    plugin: plugin
                        .map(|p| p.manifest.name.clone())
                        .map_err(|e| e.to_string()),
                    name,
                }
            })
            .collect()
    }

    /// Opens (or returns the cached) connection `name`, as `st.connection(name)` does.
    pub fn connection(&self, name: &str) -> Result<Connection> {
        self.connection_with(name, ConnectOptions::default())
    }

    /// Opens a connection with explicit parameters layered over its configuration.
    ///
    /// A name `env:VAR` is the connection named by the environment variable `VAR`, as in
    /// Streamlit (`st.connection("env:DB_CONN")`).
    pub fn connection_with(&self, name: &str, options: ConnectOptions) -> Result<Connection> {
        let name = named(name)?;
        let resolved = self.resolve(&name, &options)?;
        let (identity, portable) = identity(&resolved, self.inner.results.state());
        let shared = self
            .inner
            .connections
            .try_get_with(identity.clone(), || {
                ConnShared::open(
                    resolved,
                    identity.clone(),
                    portable,
                    Arc::clone(&self.inner.results),
                )
                .map(Arc::new)
            })
            .map_err(Error::from_shared)?;
        Ok(Connection::new(shared))
    }

    /// What the result cache holds, in memory and on disk, by connection.
    pub fn cache_stats(&self) -> Stats {
        self.inner.results.stats()
    }

    /// Drops cached results in both tiers and makes sure no process serves them again:
    /// every one, or those of the connection this host resolves `connection` to (another
    /// project's connection of the same name keeps its own). Connects to nothing.
    pub fn clear_cache(&self, connection: Option<&str>) -> Result<Cleared> {
        let Some(name) = connection else {
            return Ok(self.inner.results.clear());
        };
        let name = &*named(name)?;
        let resolved = self.resolve(name, &ConnectOptions::default())?;
        let (identity, portable) = identity(&resolved, self.inner.results.state());
        let identity: Arc<str> = identity.into();
        let scope = self.inner.results.state().slot(identity.as_bytes());
        Ok(self
            .inner
            .results
            .clear_connection(&identity, &[scope], &[portable]))
    }

    /// The disk tier, if it is on.
    pub fn disk_cache(&self) -> Option<&DiskCache> {
        self.inner.results.disk()
    }

    fn resolve(&self, name: &str, options: &ConnectOptions) -> Result<Resolved> {
        let (s, env) = (&self.inner.secrets, &self.inner.env);
        // Keys nested past any config's depth would overflow the stack as tables.
        let too_deep = |message: String| Error::Connection {
            connection: name.to_owned(),
            message,
        };
        env.check_depth(name).map_err(too_deep)?;
        if let Some((path, _)) = options
            .set
            .iter()
            .find(|(path, _)| path.len() > secrets::MAX_KEY_DEPTH)
        {
            return Err(too_deep(format!(
                "`{}.…`: the key nests {} tables deep; at most {}",
                path[0],
                path.len(),
                secrets::MAX_KEY_DEPTH
            )));
        }
        let table = secrets::effective_table(name, s, env, &options.set, |_| None)
            .ok_or_else(|| self.unknown_connection(name))?;
        let plugin = self
            .inner
            .registry
            .select(name, options.kind.as_deref(), &table)?;
        // What the plugin was chosen for, for one that serves several kinds; `sql` chose
        // it by the URL's scheme or dialect instead.
        let kind = crate::plugin::recognize::asked_kind(name, options.kind.as_deref(), &table)
            .ok()
            .flatten()
            .map(|a| a.kind)
            .filter(|k| k != "sql")
            .unwrap_or_default();
        // Text from the environment and `--set`, typed by the plugin's schema.
        let table = secrets::effective_table(name, s, env, &options.set, |k| {
            crate::config::schema::declared_type(&plugin.manifest, k)
        })
        .unwrap_or(table);
        let bad = |key: &str, message: String| Error::Connection {
            connection: name.to_owned(),
            message: format!("`{key}`: {message}"),
        };
        let duration = |key: &str| {
            table
                .get(key)
                .map(|v| crate::duration::from_toml(v).map_err(|e| bad(key, e)))
                .transpose()
        };
        let ttl = duration("ttl")?;
        let connection_ttl = duration("connection_ttl")?.filter(|d| !d.is_zero());
        let stale_if_error = duration("stale_if_error")?.filter(|d| !d.is_zero());
        let refresh_ahead = duration("refresh_ahead")?.filter(|d| !d.is_zero());
        let mut retry = RetryPolicy::default();
        if let Some(backoff) = duration("retry_backoff")? {
            // A longer wait between attempts is a hung host, not a retry.
            if backoff > MAX_RETRY_BACKOFF {
                return Err(bad(
                    "retry_backoff",
                    format!(
                        "{backoff:?} is longer than the {MAX_RETRY_BACKOFF:?} a retry may wait"
                    ),
                ));
            }
            retry.backoff = backoff;
        }
        if let Some(v) = table.get("retry_attempts") {
            retry.attempts = v
                .as_integer()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    bad(
                        "retry_attempts",
                        format!("expected a whole number from 1 to 100, got {v}"),
                    )
                })?;
        }
        let read_timeout = duration("read_timeout")?;
        if read_timeout.is_some() && plugin.isolation() == Isolation::None {
            return Err(bad(
                "read_timeout",
                format!(
                    "plugin {} runs in the host's process, where a call cannot be timed out; give it `isolation = \"process\"` in plugins.toml",
                    plugin.manifest.name
                ),
            ));
        }
        if read_timeout.is_some_and(|t| t.is_zero()) {
            return Err(bad("read_timeout", "must be longer than zero".to_owned()));
        }
        let redactor = crate::config::schema::redactor(&plugin.manifest, &table);
        // Before the plugin is handed them: its own log records are redacted with them.
        secrets::register_plugin_secrets(&plugin.manifest.name, &redactor);
        let mut table = table;
        // A Google key file's `type` is the plugin's to read; a kind is the host's.
        let keep_type = crate::plugin::recognize::type_is_credential(&table);
        for k in RESERVED_KEYS {
            if !(keep_type && *k == "type") {
                table.remove(*k);
            }
        }
        crate::config::schema::check(&plugin.manifest, &table).map_err(|message| {
            Error::Connection {
                connection: name.to_owned(),
                message,
            }
        })?;
        Ok(Resolved {
            kind,
            name: name.to_owned(),
            plugin,
            table,
            ttl,
            connection_ttl,
            stale_if_error,
            refresh_ahead,
            retry,
            read_timeout,
            redactor,
        })
    }

    fn unknown_connection(&self, name: &str) -> Error {
        let names = self.connection_names();
        let hint = if names.is_empty() {
            let files = self.inner.secrets.files();
            if files.is_empty() {
                "; no secrets file was found (looked for ./.plugboard/secrets.toml, ./.streamlit/secrets.toml, ~/.config/plugboard/secrets.toml; or pass --secrets)".to_owned()
            } else {
                format!(
                    "; {} defines no [connections.<name>] section",
                    show_paths(files)
                )
            }
        } else {
            let closest = closest(name, names.iter().map(String::as_str))
                .map(|c| format!("; did you mean {c:?}?"))
                .unwrap_or_default();
            format!("{closest} (configured: {})", names.join(", "))
        };
        Error::UnknownConnection {
            name: name.to_owned(),
            hint,
        }
    }
}

/// The connection a name stands for: itself, or for `env:VAR` the value of `$VAR`.
fn named(name: &str) -> Result<std::borrow::Cow<'_, str>> {
    let Some(var) = name.strip_prefix("env:") else {
        return Ok(name.into());
    };
    let missing = |why: &str| Error::Connection {
        connection: name.to_owned(),
        message: format!("names its connection by ${var}, which {why}"),
    };
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned().into()),
        Ok(_) => Err(missing("is empty")),
        Err(std::env::VarError::NotPresent) => Err(missing("is not set")),
        Err(std::env::VarError::NotUnicode(_)) => Err(missing("is not valid UTF-8")),
    }
}

fn show_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A connection's identity: name, plugin and its version, and a keyed digest of its
/// final config and of the working directory (plugins resolve relative paths, such as
/// `sqlite:///pets.db`, against it). Secrets enter only through the digest, which is an
/// HMAC under the cache's secret key: an identity on disk allows no offline guessing.
///
/// Also returns the identity every host computes alike (the disk key differs per
/// machine), for the Redis tier's keys: name, plugin and version, and the SHA-256 of the
/// same config. It stays in memory; the Redis tier uses it only under its HMAC.
fn identity(r: &Resolved, state: &crate::cache::state::State) -> (String, Vec<u8>) {
    // A TOML table always converts; if it ever did not, `Null` would give every such
    // table one identity, so use its TOML text instead.
    let canonical =
        serde_json::to_value(&r.table).map_or_else(|_| r.table.to_string(), |v| canonical_json(&v));
    let cwd = std::env::current_dir().unwrap_or_default();
    let digest =
        hex::encode(state.keyed([canonical.as_bytes(), cwd.as_os_str().as_encoded_bytes()]));
    let portable = crate::cache::key::key([
        b"connection".as_slice(),
        r.name.as_bytes(),
        r.plugin.manifest.name.as_bytes(),
        r.plugin.manifest.version.as_bytes(),
        canonical.as_bytes(),
        cwd.as_os_str().as_encoded_bytes(),
    ]);
    let identity = format!(
        "{}|{}@{}|{}",
        r.name,
        r.plugin.manifest.name,
        r.plugin.manifest.version,
        &digest[..32]
    );
    (identity, portable.to_vec())
}

//! `plugins.toml`: which connector libraries this host loads.
//!
//! ```toml
//! # Paths are relative to this file.
//! dirs = ["plugins.d"]                     # every library in these folders is loaded
//! # or, with settings of their own: dirs = [{ path = "vendor.d", isolation = "process" }]
//!
//! isolation = "none"                       # the default for every plugin of this file
//!
//! [[plugin]]
//! path = "target/debug/libplugboard_sqlite.so"
//! sha256 = "…"                             # optional pin: a library that differs is refused
//!
//! [[plugin]]
//! path = "target/debug/libplugboard_duckdb.so"
//! optional = true                          # absent (not built): skipped without a warning
//!
//! [[plugin]]
//! path = "vendor/libacme.so"
//! isolation = "process"                    # run it in a worker process of its own
//! read_timeout = "30s"                     # the longest it may take to answer one call
//! memory_limit = "1GB"                     # its worker's data segment (RLIMIT_DATA)
//! ```
//!
//! This module only reads the file; loading is the loader's job.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The parsed `plugins.toml`, with paths made absolute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginsFile {
    /// Where the file was read from (`None` when no file was found).
    pub path: Option<PathBuf>,
    pub plugins: Vec<PluginEntry>,
    pub dirs: Vec<PluginDir>,
    /// The `[cache]` table's Redis tier (`redis = "redis://host:6379/0"` and
    /// `redis_prefix`, `redis_timeout`, `redis_retry`, `redis_chunk_bytes`,
    /// `redis_lock`, `redis_invalidation`, `redis_staleness`, `redis_ca`). A URL with a
    /// password is refused: this file is not for secrets.
    pub redis: Option<crate::cache::RedisConfig>,
}

/// One `[[plugin]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEntry {
    pub path: PathBuf,
    pub sha256: Option<String>,
    pub settings: Settings,
    /// A library that may be absent (one `cargo build` does not build): then it is
    /// skipped quietly instead of reported as failing to load. A library that is there
    /// and fails to load is still an error.
    pub optional: bool,
}

/// A folder of drop-in libraries, and the settings of every plugin found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDir {
    pub path: PathBuf,
    pub settings: Settings,
}

/// Where a plugin runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// In the host's process: the fastest, and a crash in the plugin is the host's.
    #[default]
    None,
    /// In a worker process of its own: a crash, a hang or a runaway allocation fails that
    /// plugin's calls, never the host.
    Process,
}

impl std::str::FromStr for Isolation {
    type Err = String;

    /// `none` or `process`; anything else is refused, quoting it.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "none" => Ok(Isolation::None),
            "process" => Ok(Isolation::Process),
            other => Err(format!("must be \"none\" or \"process\", got {other:?}")),
        }
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Isolation::None => "none",
            Isolation::Process => "process",
        })
    }
}

/// How a plugin runs, and its limits when it runs in a worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub isolation: Isolation,
    /// The longest an isolated plugin may take to answer one call (to connect, to send
    /// the next batch, …) before its worker is stopped and the call fails.
    pub read_timeout: Option<Duration>,
    /// The most memory an isolated plugin's worker may allocate, in bytes.
    pub memory_limit: Option<u64>,
}

/// The settings of folders named by `PLUGBOARD_PLUGIN_PATH`: drop-ins are the likeliest to
/// be untrusted, so they run isolated unless `PLUGBOARD_PLUGIN_PATH_ISOLATION` says `none`.
pub const PLUGIN_PATH_ISOLATION_ENV: &str = "PLUGBOARD_PLUGIN_PATH_ISOLATION";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    plugin: Vec<RawEntry>,
    #[serde(default)]
    dirs: Vec<toml::Value>,
    isolation: Option<String>,
    read_timeout: Option<toml::Value>,
    memory_limit: Option<toml::Value>,
    cache: Option<RawCache>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    redis: Option<String>,
    redis_prefix: Option<String>,
    redis_timeout: Option<toml::Value>,
    redis_retry: Option<toml::Value>,
    redis_chunk_bytes: Option<toml::Value>,
    redis_lock: Option<toml::Value>,
    redis_invalidation: Option<String>,
    redis_staleness: Option<toml::Value>,
    redis_ca: Option<PathBuf>,
}

impl RawCache {
    /// The tier's configuration; `dir` (the file's folder) is what a relative
    /// `redis_ca` is relative to.
    fn resolve(self, dir: &Path) -> std::result::Result<Option<crate::cache::RedisConfig>, String> {
        let Some(url) = self.redis else {
            return Ok(None);
        };
        let mut c = crate::cache::RedisConfig::new(&url).map_err(|e| {
            format!(
                "[cache] redis: {}",
                e.trim_start_matches(crate::cache::redis::REDIS_ENV)
                    .trim_start_matches(": ")
            )
        })?;
        if c.has_password() {
            return Err(format!(
                "[cache] redis: the URL holds a password, and this file is not for secrets; set {} to the whole URL instead",
                crate::cache::redis::REDIS_ENV
            ));
        }
        let duration = |key: &str, v: &toml::Value| {
            crate::duration::from_toml(v).map_err(|e| format!("[cache] {key}: {e}"))
        };
        if let Some(p) = self.redis_prefix {
            c.prefix = p;
        }
        if let Some(v) = &self.redis_timeout {
            c.timeout = duration("redis_timeout", v)?.max(std::time::Duration::from_millis(1));
        }
        if let Some(v) = &self.redis_retry {
            c.retry_after = duration("redis_retry", v)?;
        }
        if let Some(v) = &self.redis_lock {
            c.lock_ttl = duration("redis_lock", v)?.max(std::time::Duration::from_millis(10));
        }
        if let Some(m) = &self.redis_invalidation {
            c.invalidation = crate::cache::redis::Invalidation::parse(m)
                .map_err(|e| format!("[cache] redis_invalidation: {e}"))?;
        }
        if let Some(v) = &self.redis_staleness {
            c.staleness = duration("redis_staleness", v)?.max(std::time::Duration::from_millis(1));
        }
        if let Some(ca) = self.redis_ca {
            let ca = dir.join(ca);
            crate::cache::redis::read_ca(&ca).map_err(|e| format!("[cache] redis_ca: {e}"))?;
            c.ca = Some(ca);
        }
        if let Some(v) = &self.redis_chunk_bytes {
            let n = match v {
                toml::Value::Integer(n) => u64::try_from(*n).unwrap_or(0),
                toml::Value::String(s) => crate::cache::disk::parse_bytes(s)
                    .map_err(|e| format!("[cache] redis_chunk_bytes: {e}"))?,
                other => {
                    return Err(format!(
                        "[cache] redis_chunk_bytes: expected a size such as \"64MiB\", got {other}"
                    ));
                }
            };
            c.set_chunk_bytes(n)
                .map_err(|e| format!("[cache] redis_chunk_bytes: {e}"))?;
        }
        Ok(Some(c))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    path: PathBuf,
    sha256: Option<String>,
    #[serde(default)]
    optional: bool,
    isolation: Option<String>,
    read_timeout: Option<toml::Value>,
    memory_limit: Option<toml::Value>,
}

/// A `dirs` entry written as a table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    path: PathBuf,
    isolation: Option<String>,
    read_timeout: Option<toml::Value>,
    memory_limit: Option<toml::Value>,
}

/// The settings keys of a file, an entry or a folder, as written.
#[derive(Default)]
struct RawSettings {
    isolation: Option<String>,
    read_timeout: Option<toml::Value>,
    memory_limit: Option<toml::Value>,
}

impl RawSettings {
    /// These settings over `defaults`, checked: limits apply to isolated plugins only.
    fn resolve(&self, defaults: &Settings, what: &str) -> std::result::Result<Settings, String> {
        let isolation = match self.isolation.as_deref() {
            None => defaults.isolation,
            Some(text) => text
                .parse()
                .map_err(|e| format!("{what}: `isolation` {e}"))?,
        };
        let read_timeout = match &self.read_timeout {
            None => defaults.read_timeout,
            Some(v) => {
                let d = crate::duration::from_toml(v)
                    .map_err(|e| format!("{what}: `read_timeout`: {e}"))?;
                if d.is_zero() {
                    return Err(format!("{what}: `read_timeout` must be longer than zero"));
                }
                Some(d)
            }
        };
        let memory_limit = match &self.memory_limit {
            None => defaults.memory_limit,
            Some(v) => Some(memory_limit(v).map_err(|e| format!("{what}: `memory_limit`: {e}"))?),
        };
        if isolation == Isolation::None {
            for (key, set) in [
                ("read_timeout", self.read_timeout.is_some()),
                ("memory_limit", self.memory_limit.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "{what}: `{key}` needs `isolation = \"process\"` (a plugin in the host's process cannot be limited)"
                    ));
                }
            }
        }
        Ok(Settings {
            isolation,
            read_timeout: read_timeout.filter(|_| isolation == Isolation::Process),
            memory_limit: memory_limit.filter(|_| isolation == Isolation::Process),
        })
    }
}

/// The smallest `memory_limit`: a worker needs some room to load a library at all.
const MIN_MEMORY_LIMIT: u64 = 32 << 20;

fn memory_limit(v: &toml::Value) -> std::result::Result<u64, String> {
    let bytes = match v {
        toml::Value::Integer(n) => {
            u64::try_from(*n).map_err(|_| format!("expected a size, got {n}"))?
        }
        toml::Value::String(s) => crate::cache::disk::parse_bytes(s)?,
        other => return Err(format!("expected a size such as \"1GB\", got {other}")),
    };
    if bytes < MIN_MEMORY_LIMIT {
        return Err(format!(
            "{} is too small for a worker to load a library; at least {}",
            crate::cache::disk::show_bytes(bytes),
            crate::cache::disk::show_bytes(MIN_MEMORY_LIMIT)
        ));
    }
    Ok(bytes)
}

impl PluginsFile {
    /// Reads and parses a `plugins.toml`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = read_text(path)?;
        Self::parse(&text, path)
    }

    /// Parses `plugins.toml` text; `path` is used for messages and to resolve relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let raw: RawFile = parse_toml(text, path)?;
        let redis = match raw.cache {
            Some(c) => c
                .resolve(path.parent().unwrap_or(Path::new(".")))
                .map_err(|message| Error::Config {
                    path: path.to_path_buf(),
                    message,
                })?,
            None => None,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
        let config = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        let defaults = RawSettings {
            isolation: raw.isolation.clone(),
            read_timeout: raw.read_timeout.clone(),
            memory_limit: raw.memory_limit.clone(),
        }
        .resolve(&Settings::default(), "the file's defaults")
        .map_err(config)?;
        let plugins = raw
            .plugin
            .into_iter()
            .map(|e| {
                if let Some(pin) = &e.sha256
                    && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    return Err(Error::Config {
                        path: path.to_path_buf(),
                        message: format!(
                            "plugin {}: sha256 must be 64 hex digits, got {pin:?}",
                            e.path.display()
                        ),
                    });
                }
                let settings = RawSettings {
                    isolation: e.isolation,
                    read_timeout: e.read_timeout,
                    memory_limit: e.memory_limit,
                }
                .resolve(&defaults, &format!("plugin {}", e.path.display()))
                .map_err(config)?;
                Ok(PluginEntry {
                    path: base.join(&e.path),
                    sha256: e.sha256.map(|s| s.to_ascii_lowercase()),
                    settings,
                    optional: e.optional,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let dirs = raw
            .dirs
            .into_iter()
            .enumerate()
            .map(|(i, d)| match d {
                toml::Value::String(p) => Ok(PluginDir {
                    path: base.join(p),
                    settings: defaults,
                }),
                toml::Value::Table(t) => {
                    let d: RawDir =
                        toml::Value::Table(t)
                            .try_into()
                            .map_err(|e: toml::de::Error| {
                                config(format!(
                                    "dirs[{i}]: {}",
                                    crate::error::one_line(e.message())
                                ))
                            })?;
                    let settings = RawSettings {
                        isolation: d.isolation,
                        read_timeout: d.read_timeout,
                        memory_limit: d.memory_limit,
                    }
                    .resolve(&defaults, &format!("folder {}", d.path.display()))
                    .map_err(config)?;
                    Ok(PluginDir {
                        path: base.join(d.path),
                        settings,
                    })
                }
                other => Err(config(format!(
                    "dirs[{i}]: expected a folder's path or a table with `path`, got {other}"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            path: Some(path.to_path_buf()),
            plugins,
            dirs,
            redis,
        })
    }
}

/// Reads a configuration file, of at most [`MAX_CONFIG_BYTES`]: a pipe (`--secrets
/// <(sops -d …)`) works, `/dev/zero` is an error rather than a host that reads forever.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let failed = |error| Error::Read {
        path: path.to_path_buf(),
        error,
    };
    let bytes = crate::util::read_at_most(path, MAX_CONFIG_BYTES)
        .map_err(failed)?
        .ok_or_else(|| {
            failed(std::io::Error::other(
                "larger than 64 MiB: not a configuration file",
            ))
        })?;
    String::from_utf8(bytes).map_err(|_| {
        failed(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

/// The largest `plugins.toml` or secrets file read.
pub(crate) const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// Parses TOML, reporting errors as `file:line:column: message` on one line.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        Error::Toml {
            path: path.to_path_buf(),
            line,
            column,
            message: crate::error::one_line(e.message()),
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// Writes a `sha256` pin for every `[[plugin]]` of the file at `path`, keeping its comments
/// and layout, atomically. Returns each library and its digest. Libraries found through
/// `dirs` are not listed in the file, so they are not pinned; nor is an `optional` one
/// that is not built yet.
pub fn pin(path: &Path) -> Result<Vec<(PathBuf, String)>> {
    use sha2::{Digest, Sha256};

    let text = read_text(path)?;
    let parsed = PluginsFile::parse(&text, path)?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| Error::Config {
                path: path.to_path_buf(),
                message: crate::error::one_line(&e.to_string()),
            })?;
    let mut pins = Vec::new();
    if let Some(entries) = doc
        .get_mut("plugin")
        .and_then(toml_edit::Item::as_array_of_tables_mut)
    {
        for (table, entry) in entries.iter_mut().zip(&parsed.plugins) {
            // Not built: nothing to pin yet (pin again once it is).
            if entry.optional && !entry.path.exists() {
                continue;
            }
            let bytes = std::fs::read(&entry.path).map_err(|error| Error::Read {
                path: entry.path.clone(),
                error,
            })?;
            let digest = hex::encode(Sha256::digest(&bytes));
            table["sha256"] = toml_edit::value(digest.clone());
            pins.push((entry.path.clone(), digest));
        }
    }
    let text = doc.to_string();
    crate::export::write_atomically(path, |out| {
        out.write_all(text.as_bytes())
            .map_err(|error| Error::Write {
                path: path.to_path_buf(),
                error,
            })
    })?;
    Ok(pins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_file() {
        let f = PluginsFile::parse(
            "dirs = [\"d\"]\n[[plugin]]\npath = \"lib/x.so\"\n",
            Path::new("/etc/pb/plugins.toml"),
        )
        .expect("parse");
        assert_eq!(f.plugins[0].path, PathBuf::from("/etc/pb/lib/x.so"));
        assert_eq!(f.dirs[0].path, PathBuf::from("/etc/pb/d"));
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = PluginsFile::parse("[[plugin]]\npath = \n", Path::new("p.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("p.toml:2:"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn optional_libraries_are_marked() {
        let f = PluginsFile::parse(
            "[[plugin]]\npath = \"a.so\"\noptional = true\n\n[[plugin]]\npath = \"b.so\"\n",
            Path::new("/p/plugins.toml"),
        )
        .expect("parses");
        assert!(f.plugins[0].optional);
        assert!(
            !f.plugins[1].optional,
            "a library is required unless marked"
        );
        let e = PluginsFile::parse(
            "[[plugin]]\npath = \"a.so\"\noptional = \"yes\"\n",
            Path::new("p.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("p.toml:3:"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_pins_are_refused() {
        let e = PluginsFile::parse("[[plugin]]\npaht = \"x\"\n", Path::new("p.toml")).unwrap_err();
        assert!(e.to_string().contains("paht"), "{e}");
        let e = PluginsFile::parse(
            "[[plugin]]\npath = \"x\"\nsha256 = \"abc\"\n",
            Path::new("p.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("64 hex digits"), "{e}");
    }

    #[test]
    fn isolation_settings_inherit_and_limits_need_a_worker() {
        let f = PluginsFile::parse(
            "isolation = \"process\"\nread_timeout = \"5s\"\n\
             dirs = [\"a\", { path = \"b\", isolation = \"none\" }]\n\
             [[plugin]]\npath = \"x.so\"\nmemory_limit = \"1GB\"\n\
             [[plugin]]\npath = \"y.so\"\nisolation = \"none\"\n",
            Path::new("/p/plugins.toml"),
        )
        .expect("parse");
        let x = &f.plugins[0].settings;
        assert_eq!(x.isolation, Isolation::Process);
        assert_eq!(x.read_timeout, Some(Duration::from_secs(5)));
        assert_eq!(x.memory_limit, Some(1_000_000_000));
        // A plugin taken out of isolation keeps no limits.
        assert_eq!(f.plugins[1].settings, Settings::default());
        assert_eq!(f.dirs[0].settings.isolation, Isolation::Process);
        assert_eq!(f.dirs[1].path, PathBuf::from("/p/b"));
        assert_eq!(f.dirs[1].settings, Settings::default());

        for (text, says) in [
            (
                "[[plugin]]\npath = \"x\"\nisolation = \"sandbox\"\n",
                "sandbox",
            ),
            (
                "[[plugin]]\npath = \"x\"\nread_timeout = \"5s\"\n",
                "`read_timeout` needs `isolation = \"process\"`",
            ),
            ("memory_limit = \"1GB\"\n", "`memory_limit` needs"),
            (
                "[[plugin]]\npath = \"x\"\nisolation = \"process\"\nmemory_limit = \"1kB\"\n",
                "too small",
            ),
            (
                "[[plugin]]\npath = \"x\"\nisolation = \"process\"\nread_timeout = \"0s\"\n",
                "longer than zero",
            ),
            (
                "dirs = [{ path = \"d\", isolation = \"jail\" }]\n",
                "folder d: `isolation` must be \"none\" or \"process\", got \"jail\"",
            ),
            ("dirs = [3]\n", "dirs[0]"),
            ("dirs = [{ paht = \"d\" }]\n", "dirs[0]"),
        ] {
            let e = PluginsFile::parse(text, Path::new("p.toml")).expect_err(text);
            let msg = e.to_string();
            assert!(msg.starts_with("p.toml"), "{msg}");
            assert!(msg.contains(says), "{text:?}: {msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
    }
}

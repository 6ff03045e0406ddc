//! The connection's table: a SQLAlchemy URL (`sqlite:///pets.db`) or a `database` path,
//! plus the SQLite options users expect.

use std::path::PathBuf;
use std::time::Duration;

use plugboard_api::PluginError;
use serde::Deserialize;

/// The keys a `[connections.x]` section may hold for SQLite.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite:///relative.db`, `sqlite:////abs/path.db`, `sqlite://` (in memory).
    pub url: Option<String>,
    /// SQLAlchemy's URL parts, as Streamlit accepts them: `dialect = "sqlite"`, `database`.
    pub dialect: Option<String>,
    /// A path (relative to the working directory) or `:memory:`.
    pub database: Option<String>,
    /// SQLAlchemy's URL `query` part: `mode = "ro"`, `timeout = "5"` (seconds), `uri = "true"`.
    #[serde(default)]
    pub query: std::collections::BTreeMap<String, String>,
    /// Open the database read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Create the file if it does not exist (SQLite's and SQLAlchemy's default).
    pub create: Option<bool>,
    /// How long to wait for a lock held by another writer: milliseconds, or `"5s"`.
    pub busy_timeout: Option<DurationSetting>,
    /// How many SQLite connections this connection may open for concurrent reads.
    pub pool_size: Option<usize>,
    /// Bytes of the file SQLite may memory-map for reads (`PRAGMA mmap_size`); 0 turns it off.
    pub mmap_size: Option<u64>,
}

/// A duration written as a number of milliseconds or as text with a unit (`"250ms"`, `"5s"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DurationSetting {
    Millis(u64),
    Text(String),
}

impl DurationSetting {
    fn to_duration(&self, key: &str) -> Result<Duration, PluginError> {
        match self {
            Self::Millis(ms) => Ok(Duration::from_millis(*ms)),
            Self::Text(t) => plugboard_api::parse_duration(t).ok_or_else(|| {
                PluginError::config(format!(
                    "`{key}`: {t:?} is not a duration (write 5000, \"250ms\" or \"5s\")"
                ))
            }),
        }
    }
}

/// SQLite takes the busy timeout as an `int` of milliseconds (rusqlite panics past it):
/// a longer one is a config error naming the key.
fn check_busy_timeout(timeout: Duration, key: &str) -> Result<(), PluginError> {
    let max = Duration::from_millis(i32::MAX as u64);
    if timeout > max {
        return Err(PluginError::config(format!(
            "`{key}`: {timeout:?} is longer than SQLite can wait ({max:?}, about 24 days)"
        )));
    }
    Ok(())
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Memory,
    File(PathBuf),
    /// A `file:` URI passed to SQLite as is (`uri = "true"`).
    Uri(String),
}

/// The resolved settings a pool opens connections with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub location: Location,
    pub read_only: bool,
    pub create: bool,
    pub busy_timeout: Duration,
    pub pool_size: usize,
    pub mmap_size: u64,
}

pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_POOL_SIZE: usize = 4;

impl Config {
    pub fn resolve(self) -> Result<Settings, PluginError> {
        if let Some(d) = &self.dialect {
            let base = d.split('+').next().unwrap_or(d);
            if base != "sqlite" {
                return Err(PluginError::config(format!(
                    "`dialect`: {d:?} is not served by the sqlite connector (expected \"sqlite\")"
                )));
            }
        }
        let mut query = self.query;
        let location = match (&self.url, &self.database) {
            (Some(_), Some(_)) => {
                return Err(PluginError::config(
                    "give either `url` or `database`, not both",
                ));
            }
            (Some(url), None) => {
                let (path, url_query) = parse_url(url)?;
                for (k, v) in url_query {
                    query.entry(k).or_insert(v);
                }
                path
            }
            (None, Some(db)) => Some(db.clone()),
            (None, None) => {
                return Err(PluginError::config(
                    "missing `url` (e.g. \"sqlite:///pets.db\") or `database` (a file path)",
                ));
            }
        };
        let uri = match query.remove("uri").as_deref() {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => {
                return Err(PluginError::config(format!(
                    "`query.uri`: expected \"true\" or \"false\", got {other:?}"
                )));
            }
        };
        let location = match location.as_deref() {
            None | Some("" | ":memory:") => Location::Memory,
            Some(p) if uri => Location::Uri(p.to_owned()),
            Some(p) => Location::File(PathBuf::from(p)),
        };
        let mut read_only = self.read_only;
        match query.remove("mode").as_deref() {
            None | Some("rw" | "rwc") => {}
            Some("ro") => read_only = true,
            Some(other) => {
                return Err(PluginError::config(format!(
                    "`query.mode`: expected \"ro\", \"rw\" or \"rwc\", got {other:?}"
                )));
            }
        }
        let mut busy_timeout = DEFAULT_BUSY_TIMEOUT;
        if let Some(t) = query.remove("timeout") {
            // pysqlite's `timeout` is in seconds.
            busy_timeout = t
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| {
                    PluginError::config(format!(
                        "`query.timeout`: {t:?} is not a number of seconds"
                    ))
                })?;
        }
        if let Some(t) = &self.busy_timeout {
            busy_timeout = t.to_duration("busy_timeout")?;
        }
        let key = match self.busy_timeout {
            Some(_) => "busy_timeout",
            None => "query.timeout",
        };
        check_busy_timeout(busy_timeout, key)?;
        if let Some(key) = query.keys().next() {
            return Err(PluginError::config(format!(
                "`query.{key}`: unknown SQLite URL option (known: mode, timeout, uri)"
            )));
        }
        let pool_size = match (self.pool_size, &location) {
            (Some(0), _) => return Err(PluginError::config("`pool_size`: must be at least 1")),
            // Every connection to `:memory:` is a different database: share one.
            (_, Location::Memory) => 1,
            (Some(n), _) => n,
            (None, _) => DEFAULT_POOL_SIZE,
        };
        // Off unless asked for: another process truncating a mapped file is a SIGBUS in
        // the host rather than an error, and mapped pages count in the host's memory. A
        // 1M-row read measured the same speed either way (and 2.45x the frame's size in
        // peak RSS with 1 GiB mapped, against 1.52x without).
        let mmap_size = self.mmap_size.unwrap_or(0);
        Ok(Settings {
            location,
            read_only,
            create: self.create.unwrap_or(!read_only),
            busy_timeout,
            pool_size,
            mmap_size,
        })
    }
}

/// Splits `sqlite:///path?k=v` into its path and query, as SQLAlchemy reads it.
/// A URL's database path (`None`: in memory) and its query pairs.
type UrlParts = (Option<String>, Vec<(String, String)>);

fn parse_url(url: &str) -> Result<UrlParts, PluginError> {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        let scheme = url.split("://").next().unwrap_or(url);
        return Err(PluginError::config(format!(
            "`url`: scheme {scheme:?} is not sqlite (expected \"sqlite:///path.db\")"
        )));
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    // `sqlite://` + `/path`: after the host part (always empty for SQLite) comes `/`.
    let path = match rest {
        "" => None,
        r => match r.strip_prefix('/') {
            Some(p) => Some(p.to_owned()),
            None => {
                return Err(PluginError::config(
                    "`url`: SQLite URLs have no host: write sqlite:///relative.db or sqlite:////abs/path.db",
                ));
            }
        },
    };
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((k.to_owned(), v.to_owned()));
    }
    Ok((path, pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> Result<Settings, PluginError> {
        Config {
            url: Some(u.into()),
            ..Config::default()
        }
        .resolve()
    }

    #[test]
    fn sqlalchemy_url_forms() {
        assert_eq!(url("sqlite://").unwrap().location, Location::Memory);
        assert_eq!(
            url("sqlite:///:memory:").unwrap().location,
            Location::Memory
        );
        assert_eq!(
            url("sqlite:///pets.db").unwrap().location,
            Location::File("pets.db".into())
        );
        assert_eq!(
            url("sqlite:////abs/pets.db").unwrap().location,
            Location::File("/abs/pets.db".into())
        );
        let s = url("sqlite:///pets.db?mode=ro&timeout=2.5").unwrap();
        assert!(s.read_only && !s.create);
        assert_eq!(s.busy_timeout, Duration::from_millis(2500));
        assert_eq!(
            url("sqlite:///file:x.db?mode=ro&uri=true")
                .unwrap()
                .location,
            Location::Uri("file:x.db".into())
        );
    }

    #[test]
    fn a_busy_timeout_sqlite_cannot_take_is_a_config_error() {
        let e = Config {
            url: Some("sqlite://".into()),
            busy_timeout: Some(DurationSetting::Millis(1 << 31)),
            ..Config::default()
        }
        .resolve()
        .expect_err("past i32 ms");
        assert!(e.message().starts_with("`busy_timeout`:"), "{e}");
        let e = url("sqlite:///x.db?timeout=99999999999").expect_err("past i32 ms");
        assert!(e.message().starts_with("`query.timeout`:"), "{e}");
        let ok = Config {
            url: Some("sqlite://".into()),
            busy_timeout: Some(DurationSetting::Millis(i32::MAX as u64)),
            ..Config::default()
        }
        .resolve();
        assert!(ok.is_ok());
    }

    #[test]
    fn bad_urls_name_the_key() {
        assert!(
            url("postgresql://x/y")
                .unwrap_err()
                .message()
                .contains("`url`")
        );
        assert!(
            url("sqlite://host/x.db")
                .unwrap_err()
                .message()
                .contains("no host")
        );
        assert!(
            url("sqlite:///x.db?mod=ro")
                .unwrap_err()
                .message()
                .contains("query.mod")
        );
    }

    #[test]
    fn busy_timeout_forms() {
        let c = |t: DurationSetting| {
            Config {
                database: Some("x.db".into()),
                busy_timeout: Some(t),
                ..Config::default()
            }
            .resolve()
        };
        assert_eq!(
            c(DurationSetting::Millis(250)).unwrap().busy_timeout,
            Duration::from_millis(250)
        );
        assert_eq!(
            c(DurationSetting::Text("2s".into())).unwrap().busy_timeout,
            Duration::from_secs(2)
        );
        assert!(
            c(DurationSetting::Text("soon".into()))
                .unwrap_err()
                .message()
                .contains("busy_timeout")
        );
    }

    #[test]
    fn busy_timeout_reads_durations_as_the_host_does() {
        let c = DurationSetting::Text("1d".into());
        assert_eq!(
            c.to_duration("busy_timeout").expect("1d"),
            Duration::from_secs(86_400),
            "`busy_timeout = \"1d\"` works like `ttl = \"1d\"`"
        );
        let c = DurationSetting::Text("1h 30m".into());
        assert_eq!(
            c.to_duration("busy_timeout").expect("1h 30m"),
            Duration::from_secs(5400)
        );
    }
    #[test]
    fn memory_databases_share_one_connection() {
        assert_eq!(url("sqlite://").unwrap().pool_size, 1);
        assert_eq!(url("sqlite:///x.db").unwrap().pool_size, DEFAULT_POOL_SIZE);
    }
}

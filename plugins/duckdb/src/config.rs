//! The connection's table: a duckdb-engine URL (`duckdb:///trips.duckdb`) or a `database`
//! path, `read_only`, and DuckDB's own settings under `config`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use plugboard_api::PluginError;
use serde::Deserialize;

/// The keys a `[connections.x]` section may hold for DuckDB.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `duckdb:///relative.duckdb`, `duckdb:////abs/path.duckdb`, `duckdb:///:memory:` or
    /// `duckdb://` (in memory); `?read_only=true` and other DuckDB settings as its query.
    pub url: Option<String>,
    /// SQLAlchemy's URL parts, as Streamlit accepts them: `dialect = "duckdb"`, `database`.
    pub dialect: Option<String>,
    /// A path (relative to the working directory) or `:memory:`.
    pub database: Option<String>,
    /// Open the file read-only: other processes may read it at the same time.
    pub read_only: Option<bool>,
    /// DuckDB's settings (`threads = 4`, `memory_limit = "2GB"`, …), applied when the
    /// database is opened; DuckDB checks the names and values.
    #[serde(default)]
    pub config: BTreeMap<String, Setting>,
}

/// One DuckDB setting's value as TOML writes it; DuckDB takes them all as text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Setting {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Memory,
    File(PathBuf),
}

/// The resolved settings the database is opened with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub location: Location,
    pub read_only: bool,
    /// DuckDB settings, by name, with this connector's defaults filled in.
    pub config: BTreeMap<String, String>,
    /// Where each setting came from, for errors: `config.threads` or `url`.
    pub origin: BTreeMap<String, &'static str>,
}

/// Settings this connector chooses unless the connection sets them.
///
/// * A query should not download code (and there may be no network): extensions that are
///   not built in (parquet and json are) fail with DuckDB's own "not installed" error.
/// * Strings and BLOBs come as Arrow views, which the host's DataFrame holds without a
///   copy. Views need Arrow format 1.4; 1.5 would also make small DECIMALs 32 and 64 bits
///   wide, which the host does not take.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("autoinstall_known_extensions", "false"),
    ("produce_arrow_string_view", "true"),
    ("arrow_output_version", "1.4"),
];

impl Config {
    pub fn resolve(self) -> Result<Settings, PluginError> {
        if let Some(d) = &self.dialect {
            let base = d.split('+').next().unwrap_or(d);
            if base != "duckdb" {
                return Err(PluginError::config(format!(
                    "`dialect`: {d:?} is not served by the duckdb connector (expected \"duckdb\")"
                )));
            }
        }
        let mut config = BTreeMap::new();
        let mut origin = BTreeMap::new();
        for (k, v) in self.config {
            let key = k.to_ascii_lowercase();
            if key == "access_mode" {
                return Err(PluginError::config(
                    "`config.access_mode`: use `read_only = true` instead",
                ));
            }
            config.insert(key.clone(), v.to_string());
            origin.insert(key, "config");
        }
        let mut read_only = self.read_only;
        let location = match (&self.url, &self.database) {
            (Some(_), Some(_)) => {
                return Err(PluginError::config(
                    "give either `url` or `database`, not both",
                ));
            }
            (Some(url), None) => {
                let (path, query) = parse_url(url)?;
                for (k, v) in query {
                    if k == "read_only" {
                        let flag = match v.as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            other => {
                                return Err(PluginError::config(format!(
                                    "`url`: read_only={other:?}: expected true or false"
                                )));
                            }
                        };
                        if read_only.is_some_and(|r| r != flag) {
                            return Err(PluginError::config(
                                "`url` says read_only and `read_only` disagree",
                            ));
                        }
                        read_only = Some(flag);
                    } else if let std::collections::btree_map::Entry::Vacant(e) =
                        config.entry(k.clone())
                    {
                        // duckdb-engine passes the rest of the query to DuckDB as settings.
                        e.insert(v);
                        origin.insert(k, "url");
                    }
                }
                path
            }
            (None, Some(db)) => Some(db.clone()),
            (None, None) => {
                return Err(PluginError::config(
                    "missing `url` (e.g. \"duckdb:///trips.duckdb\") or `database` (a file path or \":memory:\")",
                ));
            }
        };
        let location = match location.as_deref() {
            None | Some("" | ":memory:") => Location::Memory,
            Some(p) => Location::File(PathBuf::from(p)),
        };
        let read_only = read_only.unwrap_or(false);
        if read_only && location == Location::Memory {
            return Err(PluginError::config(
                "`read_only`: an in-memory database cannot be read-only (it starts empty)",
            ));
        }
        for (k, v) in DEFAULTS {
            config
                .entry((*k).to_owned())
                .or_insert_with(|| (*v).to_owned());
        }
        Ok(Settings {
            location,
            read_only,
            config,
            origin,
        })
    }
}

/// A URL's database path (`None`: in memory) and its query pairs.
type UrlParts = (Option<String>, Vec<(String, String)>);

/// Splits `duckdb:///path?k=v` into its path and query, as duckdb-engine reads it.
fn parse_url(url: &str) -> Result<UrlParts, PluginError> {
    let Some(rest) = url.strip_prefix("duckdb://") else {
        let scheme = url.split("://").next().unwrap_or(url);
        return Err(PluginError::config(format!(
            "`url`: scheme {scheme:?} is not duckdb (expected \"duckdb:///path.duckdb\")"
        )));
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = match rest {
        "" => None,
        r => match r.strip_prefix('/') {
            Some(p) => Some(p.to_owned()),
            None => {
                return Err(PluginError::config(
                    "`url`: DuckDB URLs have no host: write duckdb:///relative.duckdb or duckdb:////abs/path.duckdb",
                ));
            }
        },
    };
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((k.to_ascii_lowercase(), v.to_owned()));
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
    fn duckdb_engine_url_forms() {
        assert_eq!(url("duckdb://").unwrap().location, Location::Memory);
        assert_eq!(
            url("duckdb:///:memory:").unwrap().location,
            Location::Memory
        );
        assert_eq!(
            url("duckdb:///trips.duckdb").unwrap().location,
            Location::File("trips.duckdb".into())
        );
        assert_eq!(
            url("duckdb:////abs/trips.duckdb").unwrap().location,
            Location::File("/abs/trips.duckdb".into())
        );
        let s = url("duckdb:///t.duckdb?read_only=true&threads=2").unwrap();
        assert!(s.read_only);
        assert_eq!(s.config.get("threads").map(String::as_str), Some("2"));
        assert_eq!(s.origin.get("threads"), Some(&"url"));
        assert!(!url("duckdb:///t.duckdb?read_only=false").unwrap().read_only);
    }

    #[test]
    fn settings_are_text_and_autoinstall_is_off_unless_asked() {
        let s = Config {
            database: Some("x.duckdb".into()),
            config: [
                ("threads".to_owned(), Setting::Int(4)),
                ("memory_limit".to_owned(), Setting::Text("2GB".into())),
                ("enable_progress_bar".to_owned(), Setting::Bool(false)),
            ]
            .into(),
            ..Config::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(s.config["threads"], "4");
        assert_eq!(s.config["memory_limit"], "2GB");
        assert_eq!(s.config["enable_progress_bar"], "false");
        assert_eq!(s.config["autoinstall_known_extensions"], "false");
        let s = url("duckdb:///x.duckdb?autoinstall_known_extensions=true").unwrap();
        assert_eq!(s.config["autoinstall_known_extensions"], "true");
    }

    #[test]
    fn bad_tables_name_the_key() {
        let msg = |r: Result<Settings, PluginError>| r.unwrap_err().message().to_owned();
        assert!(msg(url("sqlite:///x.db")).contains("`url`"));
        assert!(msg(url("duckdb://host/x.duckdb")).contains("no host"));
        assert!(msg(url("duckdb:///x.duckdb?read_only=maybe")).contains("read_only"));
        assert!(msg(Config::default().resolve()).contains("missing `url`"));
        assert!(
            msg(Config {
                url: Some("duckdb://".into()),
                database: Some("x".into()),
                ..Config::default()
            }
            .resolve())
            .contains("not both")
        );
        assert!(
            msg(Config {
                database: Some(":memory:".into()),
                read_only: Some(true),
                ..Config::default()
            }
            .resolve())
            .contains("`read_only`")
        );
        assert!(
            msg(Config {
                dialect: Some("sqlite".into()),
                database: Some("x".into()),
                ..Config::default()
            }
            .resolve())
            .contains("`dialect`")
        );
        assert!(
            msg(Config {
                database: Some("x".into()),
                config: [("access_mode".to_owned(), Setting::Text("READ_ONLY".into()))].into(),
                ..Config::default()
            }
            .resolve())
            .contains("read_only = true")
        );
    }
}

//! The connection's table, the way PostgreSQL users already write it: a URL
//! (`postgresql://user:pass@host:5432/db?sslmode=require`), SQLAlchemy's parts (`dialect`,
//! `username`, `password`, `host`, `port`, `database`, `query`), and, at the lowest
//! precedence, libpq's environment (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
//! `PGDATABASE`, `PGSSLMODE`, `PGCONNECT_TIMEOUT`, `PGAPPNAME`) and password file
//! (`PGPASSFILE`, else `~/.pgpass`).
//!
//! Precedence, per setting: the section's parts > the section's `url` > the environment >
//! libpq's defaults (`localhost:5432`, the OS user, a database named like the user).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use plugboard_api::PluginError;
use serde::Deserialize;

/// The keys a `[connections.x]` section may hold for PostgreSQL.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `postgresql://user:pass@host:port/db?sslmode=…` (also `postgres://`,
    /// `postgresql+psycopg2://`).
    pub url: Option<String>,
    /// SQLAlchemy's parts, as Streamlit's `SQLConnection` takes them.
    pub dialect: Option<String>,
    /// Accepted for Streamlit compatibility (`psycopg2`, ...); this connector is its own driver.
    pub driver: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    /// URL query options: `sslmode`, `sslrootcert`, `connect_timeout` (seconds),
    /// `application_name`, `options`.
    #[serde(default)]
    pub query: BTreeMap<String, serde_json::Value>,
    /// `disable`, `allow`, `prefer` (default), `require`, `verify-ca`, `verify-full`.
    pub sslmode: Option<String>,
    /// A PEM file of CA certificates to trust.
    pub sslrootcert: Option<PathBuf>,
    /// How long a connection attempt may take: seconds, or `"500ms"`, `"5s"` (default 10 s).
    pub connect_timeout: Option<serde_json::Value>,
    /// How many server connections this connection may hold (default 4).
    pub pool_size: Option<usize>,
    pub application_name: Option<String>,
    /// Accepted for Streamlit compatibility and ignored (SQLAlchemy engine options).
    pub create_engine_kwargs: Option<serde_json::Value>,
}

/// How TLS is used, as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// `allow` and `prefer`: TLS if the server offers it, certificates not checked.
    Prefer,
    /// TLS required, certificates not checked (libpq's `require` without a root cert).
    Require,
    /// TLS with the server certificate checked against the trusted CAs.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

/// Everything needed to open server connections.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub application_name: String,
    pub options: Option<String>,
    pub pool_size: usize,
}

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_POOL_SIZE: usize = 4;

/// Where libpq-style settings come from: the process environment, or a fixed map (tests).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for BTreeMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| (*v).to_owned())
    }
}

/// The settings one layer (URL, parts, environment) gives; later layers fill the gaps.
#[derive(Debug, Default)]
struct Layer {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    options: BTreeMap<String, String>,
}

impl Layer {
    fn under(self, lower: Layer) -> Layer {
        let mut options = lower.options;
        options.extend(self.options);
        Layer {
            host: self.host.or(lower.host),
            port: self.port.or(lower.port),
            user: self.user.or(lower.user),
            password: self.password.or(lower.password),
            dbname: self.dbname.or(lower.dbname),
            options,
        }
    }
}

fn option_text(key: &str, v: &serde_json::Value) -> Result<String, PluginError> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        other => Err(PluginError::config(format!(
            "`{key}`: expected text or a number, got {other}"
        ))),
    }
}

impl Config {
    /// Resolves the settings with the process environment and `~/.pgpass`.
    pub fn resolve(self) -> Result<Settings, PluginError> {
        self.resolve_with(&ProcessEnv)
    }

    pub fn resolve_with(self, env: &dyn Env) -> Result<Settings, PluginError> {
        if let Some(d) = &self.dialect {
            let base = d.split('+').next().unwrap_or(d);
            if !matches!(base, "postgresql" | "postgres") {
                return Err(PluginError::config(format!(
                    "`dialect`: {d:?} is not served by the postgres connector (expected \"postgresql\")"
                )));
            }
        }
        let url = match &self.url {
            Some(u) => parse_url(u)?,
            None => Layer::default(),
        };
        let mut parts = Layer {
            host: self.host.clone(),
            port: self.port,
            user: self.username.clone(),
            password: self.password.clone(),
            dbname: self.database.clone(),
            options: BTreeMap::new(),
        };
        for (k, v) in &self.query {
            parts
                .options
                .insert(k.clone(), option_text(&format!("query.{k}"), v)?);
        }
        for (key, value) in [
            ("sslmode", self.sslmode.clone()),
            ("application_name", self.application_name.clone()),
            (
                "sslrootcert",
                self.sslrootcert.as_ref().map(|p| p.display().to_string()),
            ),
        ] {
            if let Some(v) = value {
                parts.options.insert(key.to_owned(), v);
            }
        }
        if let Some(t) = &self.connect_timeout {
            parts.options.insert(
                "connect_timeout".to_owned(),
                match t {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            );
        }
        let mut environment = Layer {
            host: env.var("PGHOST"),
            port: match env.var("PGPORT") {
                Some(p) => Some(p.parse().map_err(|_| {
                    PluginError::config(format!("PGPORT: {p:?} is not a port number"))
                })?),
                None => None,
            },
            user: env.var("PGUSER"),
            password: env.var("PGPASSWORD"),
            dbname: env.var("PGDATABASE"),
            options: BTreeMap::new(),
        };
        for (var, key) in [
            ("PGSSLMODE", "sslmode"),
            ("PGSSLROOTCERT", "sslrootcert"),
            ("PGCONNECT_TIMEOUT", "connect_timeout"),
            ("PGAPPNAME", "application_name"),
            ("PGOPTIONS", "options"),
        ] {
            if let Some(v) = env.var(var) {
                environment.options.insert(key.to_owned(), v);
            }
        }
        let mut merged = parts.under(url).under(environment);

        let host = merged.host.unwrap_or_else(|| "localhost".to_owned());
        let port = merged.port.unwrap_or(5432);
        let user = match merged.user {
            Some(u) => u,
            None => env
                .var("USER")
                .or_else(|| env.var("LOGNAME"))
                .ok_or_else(|| {
                    PluginError::config("no user: set `username`, a user in `url`, or PGUSER")
                })?,
        };
        let dbname = merged.dbname.unwrap_or_else(|| user.clone());
        let password = match merged.password {
            Some(p) => Some(p),
            None => pgpass(env).and_then(|text| pgpass_lookup(&text, &host, port, &dbname, &user)),
        };

        let sslmode = match merged.options.remove("sslmode").as_deref() {
            None | Some("prefer" | "allow") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => {
                return Err(PluginError::config(format!(
                    "`sslmode`: {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
        };
        let connect_timeout = match merged.options.remove("connect_timeout") {
            None => DEFAULT_CONNECT_TIMEOUT,
            Some(t) => match t.trim().parse::<f64>() {
                // libpq's connect_timeout is in seconds.
                Ok(secs) => Duration::try_from_secs_f64(secs).ok(),
                Err(_) => plugboard_api::parse_duration(&t),
            }
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                PluginError::config(format!(
                    "`connect_timeout`: {t:?} is not a positive duration (seconds, or \"500ms\", \"5s\")"
                ))
            })?,
        };
        let sslrootcert = merged.options.remove("sslrootcert").map(PathBuf::from);
        let application_name = merged
            .options
            .remove("application_name")
            .unwrap_or_else(|| "plugboard".to_owned());
        let options = merged.options.remove("options");
        if let Some(key) = merged.options.keys().next() {
            return Err(PluginError::config(format!(
                "`query.{key}`: unknown PostgreSQL option (known: sslmode, sslrootcert, connect_timeout, application_name, options)"
            )));
        }
        let pool_size = match self.pool_size {
            Some(0) => return Err(PluginError::config("`pool_size`: must be at least 1")),
            Some(n) => n,
            None => DEFAULT_POOL_SIZE,
        };
        Ok(Settings {
            host,
            port,
            user,
            password,
            dbname,
            sslmode,
            sslrootcert,
            connect_timeout,
            application_name,
            options,
            pool_size,
        })
    }
}

impl Settings {
    /// What these settings connect to, for the host's cache keys: the server (host or
    /// socket folder, and port), the database and the user, and the server `options`
    /// (`-c search_path=…` changes what a query reads). After the environment,
    /// `~/.pgpass` and libpq's defaults were applied, so `PGDATABASE=a` and
    /// `PGDATABASE=b` are two targets. No password; TLS, timeouts, the application name
    /// and the pool size do not change results and are left out.
    ///
    /// Why from the settings and not from the server (`current_database()`,
    /// `current_user`): the server connects to exactly the database and user it is asked
    /// for (there is no fallback), and a `role` set through `options` is in `options`, so
    /// asking costs a round trip per connect and tells nothing more. (Its address,
    /// `inet_server_addr()`, would split one database's cache between the addresses a host
    /// name resolves to, and is null over a Unix socket.)
    pub fn target(&self) -> plugboard_api::Target {
        let host = if self.host.starts_with('/') {
            // A Unix socket folder: a path, case and all.
            self.host.clone()
        } else {
            // Host names are case-insensitive.
            self.host.to_ascii_lowercase()
        };
        plugboard_api::Target::new()
            .with("host", host)
            .with("port", self.port)
            .with("database", self.dbname.clone())
            .with("user", self.user.clone())
            .with("options", self.options.clone())
    }
}

/// Reads a PostgreSQL URL the way libpq and SQLAlchemy do.
fn parse_url(text: &str) -> Result<Layer, PluginError> {
    let bad = |why: &str| PluginError::config(format!("`url`: {why}"));
    let (scheme, _) = text
        .split_once("://")
        .ok_or_else(|| bad("expected postgresql://user:password@host:port/database"))?;
    let base = scheme.split('+').next().unwrap_or(scheme);
    if !matches!(base, "postgresql" | "postgres") {
        return Err(bad(&format!(
            "scheme {scheme:?} is not postgresql (expected postgresql://…)"
        )));
    }
    // `url` parses non-special schemes generically; give it one without the driver suffix.
    let normalized = format!("postgresql://{}", &text[scheme.len() + 3..]);
    let url = url::Url::parse(&normalized).map_err(|e| bad(&e.to_string()))?;
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut layer = Layer {
        host: url
            .host_str()
            .filter(|h| !h.is_empty())
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned()),
        port: url.port(),
        user: Some(decode(url.username())).filter(|u| !u.is_empty()),
        password: url.password().map(decode),
        dbname: Some(decode(url.path().trim_start_matches('/'))).filter(|d| !d.is_empty()),
        options: BTreeMap::new(),
    };
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            // libpq spells some parts as query options too.
            "host" => layer.host = Some(v.into_owned()),
            "port" => {
                layer.port = Some(
                    v.parse()
                        .map_err(|_| bad(&format!("port {v:?} is not a number")))?,
                );
            }
            "user" => layer.user = Some(v.into_owned()),
            "password" => layer.password = Some(v.into_owned()),
            "dbname" => layer.dbname = Some(v.into_owned()),
            _ => {
                layer.options.insert(k.into_owned(), v.into_owned());
            }
        }
    }
    Ok(layer)
}

/// The password file's text, if it exists and only its owner can read it (as libpq insists).
fn pgpass(env: &dyn Env) -> Option<String> {
    let path = match env.var("PGPASSFILE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env.var("HOME")?).join(".pgpass"),
    };
    let meta = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    std::fs::read_to_string(path).ok()
}

/// The first `host:port:database:user:password` line that matches (`*` matches anything;
/// `\:` and `\\` are escapes), as libpq reads it.
fn pgpass_lookup(text: &str, host: &str, port: u16, dbname: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    // libpq matches a Unix-socket connection against `localhost`.
    let host = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .find_map(|line| {
            let fields = split_pgpass(line);
            let [h, p, d, u, password] = fields.as_slice() else {
                return None;
            };
            let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
            (matches(h, host) && matches(p, &port) && matches(d, dbname) && matches(u, user))
                .then(|| password.clone())
        })
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next()
                    && let Some(f) = fields.last_mut()
                {
                    f.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> BTreeMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    fn url(u: &str, e: &[(&'static str, &'static str)]) -> Result<Settings, PluginError> {
        Config {
            url: Some(u.into()),
            ..Config::default()
        }
        .resolve_with(&env(e))
    }

    #[test]
    fn urls_as_libpq_and_sqlalchemy_write_them() {
        let s = url(
            "postgresql+psycopg2://al%40ice:p%3Ass@db.example:6543/sales?sslmode=require&connect_timeout=3&application_name=x",
            &[],
        )
        .expect("url");
        assert_eq!(
            (
                s.host.as_str(),
                s.port,
                s.user.as_str(),
                s.password.as_deref()
            ),
            ("db.example", 6543, "al@ice", Some("p:ss"))
        );
        assert_eq!(s.dbname, "sales");
        assert_eq!(s.sslmode, SslMode::Require);
        assert_eq!(s.connect_timeout, Duration::from_secs(3));
        assert_eq!(s.application_name, "x");
        let s = url("postgres://[::1]/d", &[("USER", "me")]).expect("ipv6");
        assert_eq!((s.host.as_str(), s.user.as_str()), ("::1", "me"));
        let e = url("mysql://x/y", &[]).unwrap_err();
        assert!(e.message().starts_with("`url`: scheme \"mysql\""), "{e}");
        let e = url("postgresql://h/d?sslmod=require", &[("USER", "me")]).unwrap_err();
        assert!(e.message().contains("`query.sslmod`"), "{e}");
    }

    #[test]
    fn parts_over_url_over_environment() {
        let config = Config {
            url: Some("postgresql://u:pw@urlhost/urldb".into()),
            host: Some("parthost".into()),
            query: [("sslmode".to_owned(), serde_json::json!("disable"))].into(),
            ..Config::default()
        };
        let s = config
            .resolve_with(&env(&[
                ("PGHOST", "envhost"),
                ("PGPORT", "7777"),
                ("PGDATABASE", "envdb"),
                ("PGSSLMODE", "require"),
            ]))
            .expect("resolve");
        assert_eq!(s.host, "parthost");
        assert_eq!(
            s.port, 7777,
            "the environment fills what the section leaves out"
        );
        assert_eq!(s.dbname, "urldb");
        assert_eq!(s.sslmode, SslMode::Disable);

        let only_env = Config::default()
            .resolve_with(&env(&[
                ("PGHOST", "h"),
                ("PGUSER", "u"),
                ("PGPASSWORD", "secret"),
            ]))
            .expect("env");
        assert_eq!(
            (
                only_env.host.as_str(),
                only_env.user.as_str(),
                only_env.dbname.as_str()
            ),
            ("h", "u", "u")
        );
        assert_eq!(only_env.password.as_deref(), Some("secret"));
        assert_eq!(only_env.sslmode, SslMode::Prefer);
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "# comment\nother:*:*:*:nope\nlocalhost:5432:db:al\\:ice:first\n*:*:*:bob:pa\\\\ss:word\n";
        assert_eq!(
            pgpass_lookup(text, "localhost", 5432, "db", "al:ice").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_lookup(text, "/var/run/postgresql", 5432, "db", "al:ice").as_deref(),
            Some("first"),
            "a socket matches localhost"
        );
        assert_eq!(
            pgpass_lookup(text, "anywhere", 1, "x", "bob").as_deref(),
            Some("pa\\ss:word")
        );
        assert_eq!(pgpass_lookup(text, "anywhere", 1, "x", "carol"), None);
    }

    #[test]
    fn the_target_is_what_the_environment_resolved_without_the_password() {
        let config = || Config {
            host: Some("DB.Example".into()),
            password: Some("hunter2".into()),
            ..Config::default()
        };
        let a = config()
            .resolve_with(&env(&[("PGDATABASE", "a"), ("PGUSER", "u")]))
            .expect("a");
        let b = config()
            .resolve_with(&env(&[("PGDATABASE", "b"), ("PGUSER", "u")]))
            .expect("b");
        assert_eq!(
            a.target().to_json(),
            r#"{"database":"a","host":"db.example","options":null,"port":5432,"user":"u"}"#
        );
        assert_ne!(a.target(), b.target(), "PGDATABASE changes the target");
        assert!(!a.target().to_json().contains("hunter2"));
        let with_options = config()
            .resolve_with(&env(&[
                ("PGUSER", "u"),
                ("PGOPTIONS", "-c search_path=other"),
                ("PGAPPNAME", "ignored"),
                ("PGCONNECT_TIMEOUT", "3"),
            ]))
            .expect("options");
        assert_eq!(
            with_options.target().get("options"),
            Some(&serde_json::json!("-c search_path=other"))
        );
        assert!(!with_options.target().to_json().contains("ignored"));
        // A socket folder keeps its case; the default database is the user's.
        let socket = Config::default()
            .resolve_with(&env(&[("PGHOST", "/run/PG"), ("USER", "me")]))
            .expect("socket");
        assert_eq!(
            socket.target().get("host"),
            Some(&serde_json::json!("/run/PG"))
        );
        assert_eq!(
            socket.target().get("database"),
            Some(&serde_json::json!("me"))
        );
    }

    #[test]
    fn bad_settings_name_their_key() {
        let e = Config {
            dialect: Some("mysql".into()),
            ..Config::default()
        }
        .resolve_with(&env(&[("USER", "u")]))
        .unwrap_err();
        assert!(e.message().starts_with("`dialect`"), "{e}");
        let e = Config {
            connect_timeout: Some(serde_json::json!("soon")),
            ..Config::default()
        }
        .resolve_with(&env(&[("USER", "u")]))
        .unwrap_err();
        assert!(e.message().starts_with("`connect_timeout`"), "{e}");
        let e = Config::default()
            .resolve_with(&env(&[("USER", "u"), ("PGPORT", "x")]))
            .unwrap_err();
        assert!(e.message().starts_with("PGPORT"), "{e}");
    }
}

//! The connection's table, the way PostgreSQL users already write it: a URL
//! (`postgresql://user:pass@host:5432/db?sslmode=require`), SQLAlchemy's parts (`dialect`,
//! `username`, `password`, `host`, `port`, `database`, `query`), SQLAlchemy's
//! `create_engine_kwargs` (its `connect_args` are libpq keywords, as psycopg2 takes them),
//! and, at the lowest precedence, libpq's environment (`PGHOST`, `PGPORT`, `PGUSER`,
//! `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`,
//! `PGCONNECT_TIMEOUT`, `PGAPPNAME`, `PGOPTIONS`) and password file (`PGPASSFILE`, else
//! `~/.pgpass`).
//!
//! Precedence, per setting: `create_engine_kwargs.connect_args` > the section's parts (and
//! its `query` table over them) > the section's `url` (its query over its parts) > the
//! environment > libpq's defaults (`localhost:5432`, the OS user, a database named like the
//! user). `connect_args` win because psycopg2 merges them over everything the URL gives,
//! so a Streamlit file means the same here as there.
//!
//! Nothing is dropped silently: a key this connector has no meaning for, in any of these
//! tables, is a config error naming it. What it does not do: read `~/.postgresql/`'s default
//! certificate files, or decrypt an encrypted client key (`sslpassword`); both are refused
//! or left to the explicit keys.

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
    /// A number, or text holding one (`port = "5432"`), as SQLAlchemy's `URL.create()`
    /// coerces it.
    pub port: Option<serde_json::Value>,
    pub database: Option<String>,
    /// URL query parameters: libpq keywords ([`OPTIONS`], and `host`, `port`, `user`,
    /// `password`, `dbname`, which override the parts).
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
    /// SQLAlchemy's engine options, as Streamlit passes them: `connect_args` (libpq
    /// keywords: [`OPTIONS`] and `host`, `port`, `user`, `password`, `dbname`/`database`),
    /// `pool_size`, `pool_pre_ping`, `echo = false`. Any other key is an error.
    pub create_engine_kwargs: Option<serde_json::Value>,
}

/// The libpq connection options this connector has, beside the URL's parts (`host`,
/// `port`, `user`, `password`, `dbname`).
pub const OPTIONS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "connect_timeout",
    "application_name",
    "options",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
];

/// The `create_engine_kwargs` keys this connector has a meaning for.
const ENGINE_KWARGS: &str = "connect_args, pool_size, pool_pre_ping, echo = false";

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
    /// A client certificate (PEM) and its key (unencrypted PKCS#8 PEM), given together.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    pub connect_timeout: Duration,
    pub application_name: String,
    pub options: Option<String>,
    pub keepalives: Keepalives,
    pub pool_size: usize,
}

/// TCP keepalives, as libpq's `keepalives*` keywords; `None` keeps the driver's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keepalives {
    pub enabled: Option<bool>,
    pub idle: Option<Duration>,
    pub interval: Option<Duration>,
    pub count: Option<u32>,
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
    /// Sets one libpq keyword: a part of the URL (`host`, `port`, `user`, `password`,
    /// `dbname`) or an option ([`OPTIONS`]). `name` says where the key is, for errors.
    fn set(
        &mut self,
        key: &str,
        value: String,
        name: &dyn Fn(&str) -> String,
    ) -> Result<(), PluginError> {
        match key {
            "host" => self.host = Some(value),
            "port" => {
                self.port = Some(port_number(&value).ok_or_else(|| {
                    PluginError::config(format!(
                        "{}: {value:?} is not a port number (1-65535)",
                        name(key)
                    ))
                })?);
            }
            "user" => self.user = Some(value),
            "password" => self.password = Some(value),
            "dbname" => self.dbname = Some(value),
            k if OPTIONS.contains(&k) => {
                self.options.insert(k.to_owned(), value);
            }
            _ => {
                return Err(PluginError::config(format!(
                    "{}: unknown PostgreSQL option (known: host, port, user, password, dbname, {})",
                    name(key),
                    OPTIONS.join(", ")
                )));
            }
        }
        Ok(())
    }

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

/// A port given as text: 1 to 65535, spaces around it allowed.
fn port_number(text: &str) -> Option<u16> {
    text.trim().parse().ok().filter(|p| *p != 0)
}

/// What kind of JSON value `v` is, for errors that must not print it (it may be a secret).
fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "nothing",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "text",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "a table",
    }
}

/// A libpq keyword's value as text. `name` is the key's place, for the error, which
/// never quotes the value: it may be a password.
fn option_text(name: &str, v: &serde_json::Value) -> Result<String, PluginError> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        other => Err(PluginError::config(format!(
            "{name}: expected text or a number, got {}",
            kind_of(other)
        ))),
    }
}

/// What `create_engine_kwargs` gives: `connect_args` as a layer, and the pool's size.
#[derive(Debug, Default)]
struct EngineKwargs {
    connect_args: Layer,
    pool_size: Option<usize>,
}

/// Reads `create_engine_kwargs`: every key is honoured with SQLAlchemy's meaning or refused
/// by name, never ignored.
fn engine_kwargs(value: &serde_json::Value) -> Result<EngineKwargs, PluginError> {
    let serde_json::Value::Object(kwargs) = value else {
        return Err(PluginError::config(format!(
            "`create_engine_kwargs`: expected a table, got {}",
            kind_of(value)
        )));
    };
    let mut out = EngineKwargs::default();
    for (key, v) in kwargs {
        let bad = |why: &str| PluginError::config(format!("`create_engine_kwargs.{key}`: {why}"));
        match key.as_str() {
            "connect_args" => {
                let serde_json::Value::Object(args) = v else {
                    return Err(bad(&format!("expected a table, got {}", kind_of(v))));
                };
                let name = |k: &str| format!("`create_engine_kwargs.connect_args.{k}`");
                for (k, v) in args {
                    let text = option_text(&name(k), v)?;
                    // psycopg2 takes `database` for `dbname` too.
                    let keyword = if k == "database" {
                        "dbname"
                    } else {
                        k.as_str()
                    };
                    out.connect_args.set(keyword, text, &|_| name(k))?;
                }
            }
            "pool_size" => match v.as_u64() {
                Some(n) if n >= 1 => {
                    out.pool_size = Some(usize::try_from(n).map_err(|_| bad("too large"))?);
                }
                _ => return Err(bad("expected a whole number of connections, at least 1")),
            },
            // The connector checks a connection before reusing it and the host retries a
            // read on a connection the server dropped: what pre-ping is for.
            "pool_pre_ping" => {
                if !v.is_boolean() {
                    return Err(bad(&format!("expected true or false, got {}", kind_of(v))));
                }
            }
            "echo" | "echo_pool" => match v {
                serde_json::Value::Bool(false) => {}
                _ => {
                    return Err(bad(
                        "the connector does not echo SQL; the host logs each read at debug \
                         (`-vv` or PLUGBOARD_LOG=debug): remove it or set it to false",
                    ));
                }
            },
            "max_overflow" => {
                return Err(bad(
                    "the pool has no overflow: `pool_size` is the most server connections \
                     it holds",
                ));
            }
            _ => {
                return Err(bad(&format!(
                    "not an engine option the postgres connector has (it takes {ENGINE_KWARGS})"
                )));
            }
        }
    }
    Ok(out)
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
        let port = match &self.port {
            None => None,
            Some(serde_json::Value::Number(n)) => Some(
                n.as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        PluginError::config(format!("`port`: {n} is not a port number (1-65535)"))
                    })?,
            ),
            Some(serde_json::Value::String(s)) => Some(port_number(s).ok_or_else(|| {
                PluginError::config(format!("`port`: {s:?} is not a port number (1-65535)"))
            })?),
            Some(other) => {
                return Err(PluginError::config(format!(
                    "`port`: expected a number or text holding one, got {}",
                    kind_of(other)
                )));
            }
        };
        let kwargs = match &self.create_engine_kwargs {
            Some(v) => engine_kwargs(v)?,
            None => EngineKwargs::default(),
        };
        let mut parts = Layer {
            host: self.host.clone(),
            port,
            user: self.username.clone(),
            password: self.password.clone(),
            dbname: self.database.clone(),
            options: BTreeMap::new(),
        };
        // The `query` table holds URL query parameters, which override the parts.
        let query_name = |k: &str| format!("`query.{k}`");
        for (k, v) in &self.query {
            parts.set(k, option_text(&query_name(k), v)?, &query_name)?;
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
            ("PGSSLCERT", "sslcert"),
            ("PGSSLKEY", "sslkey"),
            ("PGCONNECT_TIMEOUT", "connect_timeout"),
            ("PGAPPNAME", "application_name"),
            ("PGOPTIONS", "options"),
        ] {
            if let Some(v) = env.var(var) {
                environment.options.insert(key.to_owned(), v);
            }
        }
        let mut merged = kwargs
            .connect_args
            .under(parts)
            .under(url)
            .under(environment);

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
            Some(t) => seconds_or_duration(&t)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    PluginError::config(format!(
                        "`connect_timeout`: {t:?} is not a positive duration (seconds, or \"500ms\", \"5s\")"
                    ))
                })?,
        };
        let sslrootcert = merged.options.remove("sslrootcert").map(PathBuf::from);
        // libpq: with a root certificate, `require` checks the chain, as `verify-ca`.
        let sslmode = match (sslmode, &sslrootcert) {
            (SslMode::Require, Some(_)) => SslMode::VerifyCa,
            (mode, _) => mode,
        };
        let sslcert = merged.options.remove("sslcert").map(PathBuf::from);
        let sslkey = merged.options.remove("sslkey").map(PathBuf::from);
        let sslpassword = merged.options.remove("sslpassword");
        let client_identity = match (sslcert, sslkey) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(PluginError::config(
                    "`sslcert`: a client certificate needs its key: set `sslkey` too",
                ));
            }
            (None, Some(_)) => {
                return Err(PluginError::config(
                    "`sslkey`: a client key needs its certificate: set `sslcert` too",
                ));
            }
        };
        if sslpassword.is_some() && client_identity.is_none() {
            return Err(PluginError::config(
                "`sslpassword`: given without `sslkey` (it is the passphrase of the client key)",
            ));
        }
        let application_name = merged
            .options
            .remove("application_name")
            .unwrap_or_else(|| "plugboard".to_owned());
        let options = merged.options.remove("options");
        let keepalives = Keepalives {
            enabled: match merged
                .options
                .remove("keepalives")
                .as_deref()
                .map(str::trim)
            {
                None => None,
                Some("1" | "true" | "on") => Some(true),
                Some("0" | "false" | "off") => Some(false),
                Some(other) => {
                    return Err(PluginError::config(format!(
                        "`keepalives`: {other:?} is not 1 or 0"
                    )));
                }
            },
            idle: keepalive_seconds(&mut merged.options, "keepalives_idle")?,
            interval: keepalive_seconds(&mut merged.options, "keepalives_interval")?,
            count: match merged.options.remove("keepalives_count") {
                None => None,
                Some(n) => match n.trim().parse::<u32>() {
                    // libpq: zero is the system's default.
                    Ok(0) => None,
                    Ok(n) => Some(n),
                    Err(_) => {
                        return Err(PluginError::config(format!(
                            "`keepalives_count`: {n:?} is not a whole number"
                        )));
                    }
                },
            },
        };
        debug_assert!(
            merged.options.is_empty(),
            "every option in OPTIONS is read: {:?}",
            merged.options.keys()
        );
        let pool_size = match (self.pool_size, kwargs.pool_size) {
            (Some(0), _) => return Err(PluginError::config("`pool_size`: must be at least 1")),
            (Some(a), Some(b)) if a != b => {
                return Err(PluginError::config(format!(
                    "`create_engine_kwargs.pool_size`: {b} disagrees with `pool_size = {a}`; keep one"
                )));
            }
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => DEFAULT_POOL_SIZE,
        };
        Ok(Settings {
            host,
            port,
            user,
            password,
            dbname,
            sslmode,
            sslrootcert,
            client_identity,
            connect_timeout,
            application_name,
            options,
            keepalives,
            pool_size,
        })
    }
}

/// libpq's seconds (`10`, `2.5`), or a duration with a unit (`"500ms"`, `"5s"`).
fn seconds_or_duration(text: &str) -> Option<Duration> {
    match text.trim().parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs).ok(),
        Err(_) => plugboard_api::parse_duration(text),
    }
}

/// A `keepalives_idle`/`keepalives_interval` option: seconds; zero is the system's default.
fn keepalive_seconds(
    options: &mut BTreeMap<String, String>,
    key: &str,
) -> Result<Option<Duration>, PluginError> {
    let Some(text) = options.remove(key) else {
        return Ok(None);
    };
    match seconds_or_duration(&text) {
        Some(d) if d.is_zero() => Ok(None),
        Some(d) => Ok(Some(d)),
        None => Err(PluginError::config(format!(
            "`{key}`: {text:?} is not a number of seconds"
        ))),
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
    // libpq spells the parts as query parameters too; they override the parts.
    let name = |k: &str| format!("`url`: query parameter `{k}`");
    for (k, v) in url.query_pairs() {
        layer.set(&k, v.into_owned(), &name)?;
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
        assert!(
            e.message().starts_with("`url`: query parameter `sslmod`"),
            "{e}"
        );
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
    fn section(toml_like: serde_json::Value) -> Result<Settings, PluginError> {
        let config: Config = serde_json::from_value(toml_like).expect("config");
        config.resolve_with(&env(&[("USER", "me")]))
    }

    #[test]
    fn streamlit_parts_coerce_the_port_as_url_create_does() {
        // Streamlit's PostgreSQL tutorial writes the port as text.
        let s = section(serde_json::json!({
            "dialect": "postgresql", "driver": "psycopg2", "host": "localhost",
            "port": "5432", "database": "db", "username": "u", "password": "pw"
        }))
        .expect("tutorial");
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_str()),
            ("localhost", 5432, "u")
        );
        assert_eq!(
            section(serde_json::json!({"port": 6543}))
                .expect("int")
                .port,
            6543
        );
        for bad in [
            serde_json::json!("54x"),
            serde_json::json!(""),
            serde_json::json!(70000),
            serde_json::json!(0),
            serde_json::json!([5432]),
        ] {
            let e = section(serde_json::json!({ "port": bad })).unwrap_err();
            assert!(e.message().starts_with("`port`:"), "{e}");
        }
        for scheme in [
            "postgresql+psycopg2",
            "postgresql+psycopg",
            "postgresql+pg8000",
            "postgresql+asyncpg",
        ] {
            let s = url(&format!("{scheme}://u@h:1/d"), &[]).expect(scheme);
            assert_eq!((s.host.as_str(), s.port, s.dbname.as_str()), ("h", 1, "d"));
        }
        let s = section(serde_json::json!({ "query": { "host": "/run/pg", "port": "6000" } }))
            .expect("query parts");
        assert_eq!((s.host.as_str(), s.port), ("/run/pg", 6000));
    }

    #[test]
    fn connect_args_win_over_the_url_and_the_parts() {
        let s = section(serde_json::json!({
            "url": "postgresql://urluser:urlpw@urlhost:1/urldb?sslmode=disable&application_name=url",
            "host": "parthost",
            "query": { "options": "-c search_path=part" },
            "create_engine_kwargs": { "connect_args": {
                "sslmode": "verify-full", "sslrootcert": "ca.pem",
                "host": "kwhost", "port": 7, "user": "kwuser", "password": "kwpw",
                "database": "kwdb", "application_name": "kw", "options": "-c search_path=kw",
                "connect_timeout": 3, "keepalives": 1, "keepalives_idle": 30,
                "keepalives_interval": "5", "keepalives_count": 4,
                "sslcert": "c.pem", "sslkey": "k.pem", "sslpassword": "kp"
            }, "pool_size": 2, "pool_pre_ping": true, "echo": false }
        }))
        .expect("connect_args");
        assert_eq!(s.sslmode, SslMode::VerifyFull);
        assert_eq!(s.sslrootcert, Some(PathBuf::from("ca.pem")));
        assert_eq!((s.host.as_str(), s.port), ("kwhost", 7));
        assert_eq!(
            (s.user.as_str(), s.password.as_deref()),
            ("kwuser", Some("kwpw"))
        );
        assert_eq!(s.dbname, "kwdb");
        assert_eq!(s.application_name, "kw");
        assert_eq!(s.options.as_deref(), Some("-c search_path=kw"));
        assert_eq!(s.connect_timeout, Duration::from_secs(3));
        assert_eq!(
            s.keepalives,
            Keepalives {
                enabled: Some(true),
                idle: Some(Duration::from_secs(30)),
                interval: Some(Duration::from_secs(5)),
                count: Some(4),
            }
        );
        assert_eq!(
            s.client_identity,
            Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")))
        );
        assert_eq!(s.pool_size, 2);
        // libpq: `require` with a root certificate checks the chain.
        let s = section(
            serde_json::json!({ "query": { "sslmode": "require", "sslrootcert": "ca.pem" } }),
        )
        .expect("require");
        assert_eq!(s.sslmode, SslMode::VerifyCa);
        let s = section(serde_json::json!({ "url": "postgresql://h/d?sslmode=require" }))
            .expect("neon");
        assert_eq!(s.sslmode, SslMode::Require);
    }

    #[test]
    fn engine_kwargs_without_a_meaning_here_are_refused_by_name() {
        for (kwargs, named) in [
            (
                serde_json::json!({ "max_overflow": 10 }),
                "`create_engine_kwargs.max_overflow`",
            ),
            (
                serde_json::json!({ "isolation_level": "AUTOCOMMIT" }),
                "`create_engine_kwargs.isolation_level`",
            ),
            (
                serde_json::json!({ "pool_recycle": 300 }),
                "`create_engine_kwargs.pool_recycle`",
            ),
            (
                serde_json::json!({ "echo": true }),
                "`create_engine_kwargs.echo`",
            ),
            (
                serde_json::json!({ "pool_size": 0 }),
                "`create_engine_kwargs.pool_size`",
            ),
            (
                serde_json::json!({ "pool_pre_ping": "yes" }),
                "`create_engine_kwargs.pool_pre_ping`",
            ),
            (
                serde_json::json!({ "connect_args": "sslmode=require" }),
                "`create_engine_kwargs.connect_args`",
            ),
            (
                serde_json::json!({ "connect_args": { "sslmod": "require" } }),
                "`create_engine_kwargs.connect_args.sslmod`",
            ),
            (
                serde_json::json!({ "connect_args": { "ssl": true } }),
                "`create_engine_kwargs.connect_args.ssl`",
            ),
            (
                serde_json::json!({ "connect_args": { "port": "x" } }),
                "`create_engine_kwargs.connect_args.port`",
            ),
            (
                serde_json::json!({ "connect_args": { "sslmode": "verify" } }),
                "`sslmode`",
            ),
            (
                serde_json::json!({ "connect_args": { "keepalives": 2 } }),
                "`keepalives`",
            ),
            (
                serde_json::json!({ "connect_args": { "sslpassword": "S3cr3t" } }),
                "`sslpassword`",
            ),
            (
                serde_json::json!({ "connect_args": { "sslcert": "c.pem" } }),
                "`sslcert`",
            ),
            (
                serde_json::json!({ "connect_args": { "sslkey": "k.pem" } }),
                "`sslkey`",
            ),
            (
                serde_json::json!({ "connect_args": { "password": { "v": "S3cr3t" } } }),
                "`create_engine_kwargs.connect_args.password`",
            ),
        ] {
            let e = section(serde_json::json!({ "create_engine_kwargs": kwargs })).unwrap_err();
            assert!(e.message().starts_with(named), "{named}: {e}");
            assert!(!e.message().contains("S3cr3t"), "a secret in {e}");
            assert!(!e.message().contains('\n'), "one line: {e}");
        }
        let e = section(serde_json::json!({
            "pool_size": 3, "create_engine_kwargs": { "pool_size": 5 }
        }))
        .unwrap_err();
        assert!(
            e.message().starts_with("`create_engine_kwargs.pool_size`"),
            "{e}"
        );
        let e = section(serde_json::json!({ "create_engine_kwargs": [] })).unwrap_err();
        assert!(e.message().starts_with("`create_engine_kwargs`"), "{e}");
    }
}

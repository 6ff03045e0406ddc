//! The connection's table, the way MySQL and MariaDB users already write it: a URL
//! (`mysql://user:pass@host:3306/db?charset=utf8mb4`, also `mysql+pymysql://`,
//! `mysql+mysqldb://`, `mariadb://`, `mariadb+mariadbconnector://`), SQLAlchemy's parts
//! (`dialect = "mysql"`, `username`, `password`, `host`, `port`, `database`, `query`),
//! SQLAlchemy's `create_engine_kwargs` (its `connect_args` are the driver's: pymysql's and
//! mysqlclient's keywords, `ssl = {ca, cert, key, check_hostname}` included), and, below
//! them, MySQL's own configuration: the `[client]` group of `~/.my.cnf` (or the
//! `read_default_file`/`read_default_group` a section names, as pymysql reads them), then
//! the environment (`MYSQL_HOST`, `MYSQL_TCP_PORT`, `MYSQL_PWD`, `MYSQL_UNIX_PORT`, and
//! `USER` for the user name).
//!
//! Precedence, per setting: `create_engine_kwargs.connect_args` > the section's parts (its
//! `query` table over them) > the section's `url` (its query over its parts) > the option
//! file > the environment > MySQL's defaults (`localhost:3306`, the OS user, no default
//! database). An option file and the environment only fill what the section leaves out,
//! as the `mysql` client reads them.
//!
//! TLS follows MySQL's `ssl_mode`: `DISABLED`, `PREFERRED` (the default: TLS when the
//! server has it, certificate unchecked), `REQUIRED` (TLS, unchecked), `VERIFY_CA` (the
//! chain checked against `ssl_ca`) and `VERIFY_IDENTITY` (and the host name). As in the
//! `mysql` client, `ssl_ca` without a mode means `VERIFY_CA`, and both `VERIFY_*` modes
//! refuse to connect without a CA. pymysql's `ssl = {ca = …}` means `VERIFY_IDENTITY`
//! (its `check_hostname` defaults to true).
//!
//! Nothing in the section is dropped silently: a key this connector has no meaning for is
//! a config error naming it. An option file's other keys (it is shared by every MySQL
//! program) are left alone.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::percent_decode_str;
use plugboard_api::PluginError;
use serde::Deserialize;

use crate::types::ZeroDates;

/// The keys a `[connections.x]` section may hold for MySQL.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `mysql://user:pass@host:port/db?…` (also `mariadb://`, `mysql+pymysql://`, …).
    pub url: Option<String>,
    /// SQLAlchemy's parts, as Streamlit's `SQLConnection` takes them.
    pub dialect: Option<String>,
    /// Accepted for Streamlit compatibility (`pymysql`, `mysqldb`, …): this connector is
    /// its own driver.
    pub driver: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub host: Option<String>,
    /// A number, or text holding one (`port = "3306"`), as SQLAlchemy's `URL.create()`
    /// coerces it.
    pub port: Option<serde_json::Value>,
    pub database: Option<String>,
    /// URL query parameters: the driver's keywords ([`OPTIONS`]).
    #[serde(default)]
    pub query: BTreeMap<String, serde_json::Value>,
    pub unix_socket: Option<String>,
    pub ssl_mode: Option<String>,
    pub ssl_ca: Option<String>,
    pub ssl_cert: Option<String>,
    pub ssl_key: Option<String>,
    /// Seconds, or `"500ms"`, `"5s"` (default 10 s).
    pub connect_timeout: Option<serde_json::Value>,
    /// Server connections this connection may hold (default 4).
    pub pool_size: Option<usize>,
    /// `utf8mb4` (the default), `utf8mb3` or `utf8`.
    pub charset: Option<String>,
    /// A statement each new server connection runs first (pymysql's `init_command`).
    pub init_command: Option<String>,
    /// `"error"` (default) or `"null"`: what a zero date (`0000-00-00`) reads as.
    pub zero_dates: Option<String>,
    /// SQLAlchemy's engine options: `connect_args`, `pool_size`, `pool_pre_ping`,
    /// `pool_recycle`, `echo = false`.
    pub create_engine_kwargs: Option<serde_json::Value>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL, the password and the tables may all hold the password.
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// The driver keywords this connector has, beside the URL's parts (`host`, `port`, `user`,
/// `password`, `database`), wherever they stand: the URL's query, the `query` table,
/// `connect_args` and (dashes for underscores) an option file.
pub const OPTIONS: &[&str] = &[
    "unix_socket",
    "charset",
    "ssl_mode",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "ssl_check_hostname",
    "ssl_verify_cert",
    "ssl_verify_identity",
    "ssl_disabled",
    "connect_timeout",
    "init_command",
    "read_default_file",
    "read_default_group",
];

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_POOL_SIZE: usize = 4;
pub const DEFAULT_PORT: u16 = 3306;

/// How TLS is used, as MySQL's `ssl_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl SslMode {
    /// MySQL's name for the mode.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disabled => "DISABLED",
            Self::Preferred => "PREFERRED",
            Self::Required => "REQUIRED",
            Self::VerifyCa => "VERIFY_CA",
            Self::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }

    fn parse(text: &str, name: &str) -> Result<Self, PluginError> {
        Ok(
            match text.trim().to_ascii_uppercase().replace('-', "_").as_str() {
                "DISABLED" => Self::Disabled,
                "PREFERRED" => Self::Preferred,
                "REQUIRED" => Self::Required,
                "VERIFY_CA" => Self::VerifyCa,
                "VERIFY_IDENTITY" => Self::VerifyIdentity,
                _ => {
                    return Err(PluginError::config(format!(
                        "{name}: {text:?} is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, \
                     VERIFY_IDENTITY"
                    )));
                }
            },
        )
    }
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp { host: String, port: u16 },
    Socket(PathBuf),
}

/// Everything needed to open server connections.
#[derive(Clone)]
pub struct Settings {
    pub address: Address,
    pub user: String,
    pub password: Option<String>,
    pub database: Option<String>,
    pub ssl_mode: SslMode,
    pub ssl_ca: Option<PathBuf>,
    /// A client certificate and its key (PEM), given together.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    pub connect_timeout: Duration,
    pub charset: String,
    pub init_command: Option<String>,
    pub zero_dates: ZeroDates,
    pub pool_size: usize,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("address", &self.address)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("database", &self.database)
            .field("ssl_mode", &self.ssl_mode)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// What these settings connect to, for the host's cache keys: the server (host and
    /// port, or socket), the default database and the user, after the option file, the
    /// environment and the defaults were applied. No password; TLS, timeouts and the pool
    /// do not change results. The character set and the zero-date rule change what a read
    /// returns, and `init_command` may (`SET sql_mode …`): they are in it too.
    pub fn target(&self) -> plugboard_api::Target {
        let target = match &self.address {
            Address::Tcp { host, port } => plugboard_api::Target::new()
                .with("host", host.to_ascii_lowercase())
                .with("port", *port),
            Address::Socket(path) => {
                plugboard_api::Target::new().with("socket", path.display().to_string())
            }
        };
        target
            .with("database", self.database.clone())
            .with("user", self.user.clone())
            .with("charset", self.charset.clone())
            .with("init_command", self.init_command.clone())
            .with(
                "zero_dates",
                match self.zero_dates {
                    ZeroDates::Error => "error",
                    ZeroDates::Null => "null",
                },
            )
    }

    /// `user@host:port/database`, for messages.
    pub fn describe(&self) -> String {
        let at = match &self.address {
            Address::Tcp { host, port } => format!("{host}:{port}"),
            Address::Socket(path) => path.display().to_string(),
        };
        format!(
            "{}@{at}/{}",
            self.user,
            self.database.as_deref().unwrap_or_default()
        )
    }
}

/// Where settings come from besides the section: the process environment, or a fixed map
/// (tests).
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

/// The settings one layer gives; lower layers fill its gaps.
#[derive(Default)]
struct Layer {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    options: BTreeMap<String, String>,
    /// Set by `ssl = {…}` in `connect_args`: pymysql's meaning of its keys.
    ssl_table: bool,
}

impl Layer {
    /// Sets one keyword: a part (`host`, `port`, `user`, `password`, `database`, with the
    /// drivers' other spellings) or an option ([`OPTIONS`]). `name` says where it is.
    fn set(
        &mut self,
        key: &str,
        value: String,
        name: &dyn Fn(&str) -> String,
    ) -> Result<(), PluginError> {
        match canonical(key) {
            "host" => self.host = Some(value),
            "port" => self.port = Some(port_number(&value, &name(key))?),
            "user" => self.user = Some(value),
            "password" => self.password = Some(value),
            "database" => self.database = Some(value),
            k if OPTIONS.contains(&k) => {
                self.options.insert(k.to_owned(), value);
            }
            "local_infile" if matches!(value.trim(), "0" | "false" | "False") => {}
            "local_infile" => {
                return Err(PluginError::config(format!(
                    "{}: LOAD DATA LOCAL is not served (the connector never sends a local file)",
                    name(key)
                )));
            }
            _ => {
                return Err(PluginError::config(format!(
                    "{}: unknown MySQL option (known: host, port, user, password, database, {})",
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
            database: self.database.or(lower.database),
            options,
            ssl_table: self.ssl_table || lower.ssl_table,
        }
    }
}

/// One spelling per keyword: the drivers', the option files' (`ssl-ca`) and MySQL's own
/// (`socket`, `passwd`, `db`, `default-character-set`).
fn canonical(key: &str) -> &str {
    match key {
        "username" => "user",
        "passwd" | "pass" => "password",
        "db" | "dbname" => "database",
        "socket" | "unix-socket" => "unix_socket",
        "default-character-set" | "default_character_set" => "charset",
        "ssl-ca" => "ssl_ca",
        "ssl-cert" => "ssl_cert",
        "ssl-key" => "ssl_key",
        "ssl-mode" => "ssl_mode",
        "connect-timeout" => "connect_timeout",
        "init-command" => "init_command",
        other => other,
    }
}

fn port_number(text: &str, name: &str) -> Result<u16, PluginError> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            PluginError::config(format!("{name}: {text:?} is not a port number (1-65535)"))
        })
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

/// A keyword's value as text; the error never quotes it (it may be a password).
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
#[derive(Default)]
struct EngineKwargs {
    connect_args: Layer,
    pool_size: Option<usize>,
}

const ENGINE_KWARGS: &str = "connect_args, pool_size, pool_pre_ping, pool_recycle, echo = false";

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
                    if k == "ssl" {
                        ssl_table(&mut out.connect_args, v)?;
                        continue;
                    }
                    out.connect_args
                        .set(k, option_text(&name(k), v)?, &|_| name(k))?;
                }
            }
            "pool_size" => match v.as_u64() {
                Some(n) if n >= 1 => {
                    out.pool_size = Some(usize::try_from(n).map_err(|_| bad("too large"))?);
                }
                _ => return Err(bad("expected a whole number of connections, at least 1")),
            },
            // A connection the server dropped (wait_timeout, KILL, a restart) is replaced on
            // use and the host retries the read: what pre-ping and recycling are for.
            "pool_pre_ping" => {
                if !v.is_boolean() {
                    return Err(bad(&format!("expected true or false, got {}", kind_of(v))));
                }
            }
            "pool_recycle" => {
                if !v.is_number() {
                    return Err(bad(&format!("expected seconds, got {}", kind_of(v))));
                }
            }
            "echo" | "echo_pool" => {
                if v != &serde_json::Value::Bool(false) {
                    return Err(bad(
                        "the connector does not echo SQL; the host logs each read at debug \
                         (`-vv` or PLUGBOARD_LOG=debug): remove it or set it to false",
                    ));
                }
            }
            "max_overflow" => {
                return Err(bad(
                    "the pool has no overflow: `pool_size` is the most server connections \
                     it holds",
                ));
            }
            _ => {
                return Err(bad(&format!(
                    "not an engine option the mysql connector has (it takes {ENGINE_KWARGS})"
                )));
            }
        }
    }
    Ok(out)
}

/// pymysql's and mysqlclient's `ssl = {ca, cert, key, check_hostname, verify_cert}`.
fn ssl_table(layer: &mut Layer, v: &serde_json::Value) -> Result<(), PluginError> {
    let name = |k: &str| format!("`create_engine_kwargs.connect_args.ssl.{k}`");
    let serde_json::Value::Object(ssl) = v else {
        return Err(PluginError::config(format!(
            "`create_engine_kwargs.connect_args.ssl`: expected a table (ca, cert, key, \
             check_hostname), got {}",
            kind_of(v)
        )));
    };
    layer.ssl_table = true;
    for (k, v) in ssl {
        let option = match k.as_str() {
            "ca" => "ssl_ca",
            "cert" => "ssl_cert",
            "key" => "ssl_key",
            "check_hostname" => "ssl_check_hostname",
            "verify_cert" => "ssl_verify_cert",
            "mode" => "ssl_mode",
            _ => {
                return Err(PluginError::config(format!(
                    "{}: not an ssl option the mysql connector has (it takes ca, cert, key, \
                     check_hostname, verify_cert, mode)",
                    name(k)
                )));
            }
        };
        layer
            .options
            .insert(option.to_owned(), option_text(&name(k), v)?);
    }
    Ok(())
}

/// A boolean keyword: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
fn flag(options: &mut BTreeMap<String, String>, key: &str) -> Result<Option<bool>, PluginError> {
    let Some(text) = options.remove(key) else {
        return Ok(None);
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        _ => Err(PluginError::config(format!(
            "`{key}`: {text:?} is not true or false"
        ))),
    }
}

impl Config {
    /// Resolves the settings with the process environment and the option file.
    pub fn resolve(self) -> Result<Settings, PluginError> {
        self.resolve_with(&ProcessEnv)
    }

    pub fn resolve_with(self, env: &dyn Env) -> Result<Settings, PluginError> {
        if let Some(d) = &self.dialect {
            let base = d.split('+').next().unwrap_or(d);
            if !matches!(base, "mysql" | "mariadb") {
                return Err(PluginError::config(format!(
                    "`dialect`: {d:?} is not served by the mysql connector (expected \"mysql\" \
                     or \"mariadb\")"
                )));
            }
        }
        let url = match &self.url {
            Some(u) => parse_url(u)?,
            None => Layer::default(),
        };
        let port = match &self.port {
            None => None,
            Some(serde_json::Value::Number(n)) => Some(port_number(&n.to_string(), "`port`")?),
            Some(serde_json::Value::String(s)) => Some(port_number(s, "`port`")?),
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
            database: self.database.clone(),
            ..Layer::default()
        };
        let query_name = |k: &str| format!("`query.{k}`");
        for (k, v) in &self.query {
            parts.set(k, option_text(&query_name(k), v)?, &query_name)?;
        }
        for (key, value) in [
            ("unix_socket", &self.unix_socket),
            ("ssl_mode", &self.ssl_mode),
            ("ssl_ca", &self.ssl_ca),
            ("ssl_cert", &self.ssl_cert),
            ("ssl_key", &self.ssl_key),
            ("charset", &self.charset),
            ("init_command", &self.init_command),
        ] {
            if let Some(v) = value {
                parts.options.insert(key.to_owned(), v.clone());
            }
        }
        if let Some(t) = &self.connect_timeout {
            let text = match t {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parts.options.insert("connect_timeout".to_owned(), text);
        }
        let section = kwargs.connect_args.under(parts).under(url);

        // The option file: the one the section names, else ~/.my.cnf.
        let (file, required) = match section.options.get("read_default_file") {
            Some(path) => (Some(expand_home(path, env)), true),
            None => (
                env.var("HOME").map(|h| PathBuf::from(h).join(".my.cnf")),
                false,
            ),
        };
        let group = section
            .options
            .get("read_default_group")
            .cloned()
            .unwrap_or_else(|| "client".to_owned());
        let option_file = match file {
            Some(path) => option_file(&path, &group, required)?,
            None => Layer::default(),
        };
        let mut environment = Layer {
            host: env.var("MYSQL_HOST"),
            port: match env.var("MYSQL_TCP_PORT") {
                Some(p) => Some(port_number(&p, "MYSQL_TCP_PORT")?),
                None => None,
            },
            password: env.var("MYSQL_PWD"),
            ..Layer::default()
        };
        if let Some(socket) = env.var("MYSQL_UNIX_PORT") {
            environment.options.insert("unix_socket".to_owned(), socket);
        }
        let mut merged = section.under(option_file).under(environment);
        let mut options = std::mem::take(&mut merged.options);
        options.remove("read_default_file");
        options.remove("read_default_group");

        // A socket is used when one is given and no host is, or the host is `localhost`
        // (the `mysql` client's rule); a host name alone is TCP.
        let socket = options.remove("unix_socket");
        let address = match (merged.host.as_deref(), socket) {
            (None | Some("localhost" | ""), Some(path)) => Address::Socket(PathBuf::from(path)),
            (host, _) => Address::Tcp {
                host: host
                    .filter(|h| !h.is_empty())
                    .unwrap_or("localhost")
                    .to_owned(),
                port: merged.port.unwrap_or(DEFAULT_PORT),
            },
        };
        let user = match merged.user {
            Some(u) => u,
            None => env
                .var("USER")
                .or_else(|| env.var("LOGNAME"))
                .ok_or_else(|| {
                    PluginError::config(
                        "no user: set `username`, a user in `url`, or `user` in ~/.my.cnf",
                    )
                })?,
        };

        let ssl_ca = options.remove("ssl_ca").map(PathBuf::from);
        let ssl_cert = options.remove("ssl_cert").map(PathBuf::from);
        let ssl_key = options.remove("ssl_key").map(PathBuf::from);
        let check_hostname = flag(&mut options, "ssl_check_hostname")?;
        let verify_cert = flag(&mut options, "ssl_verify_cert")?;
        let verify_identity = flag(&mut options, "ssl_verify_identity")?;
        let disabled = flag(&mut options, "ssl_disabled")?;
        let ssl_mode = match options.remove("ssl_mode") {
            Some(mode) => SslMode::parse(&mode, "`ssl_mode`")?,
            None if disabled == Some(true) => SslMode::Disabled,
            None if verify_identity == Some(true) => SslMode::VerifyIdentity,
            // pymysql: an `ssl` table with a CA checks the chain, and the host name unless
            // `check_hostname = false`.
            None if merged.ssl_table && ssl_ca.is_some() => {
                if check_hostname == Some(false) {
                    SslMode::VerifyCa
                } else {
                    SslMode::VerifyIdentity
                }
            }
            None if merged.ssl_table => SslMode::Required,
            None if verify_cert == Some(true) => SslMode::VerifyCa,
            // The `mysql` client: a CA without a mode means VERIFY_CA.
            None if ssl_ca.is_some() => SslMode::VerifyCa,
            None => SslMode::Preferred,
        };
        if matches!(ssl_mode, SslMode::VerifyCa | SslMode::VerifyIdentity) && ssl_ca.is_none() {
            return Err(PluginError::config(format!(
                "`ssl_mode` {}: a CA certificate is required to verify the server; set \
                 `ssl_ca` (a PEM file of trusted CAs)",
                ssl_mode.name()
            )));
        }
        if ssl_mode == SslMode::Disabled && (ssl_ca.is_some() || ssl_cert.is_some()) {
            return Err(PluginError::config(
                "`ssl_mode` DISABLED, yet `ssl_ca`/`ssl_cert` are set: remove one or the other",
            ));
        }
        let client_identity = match (ssl_cert, ssl_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(PluginError::config(
                    "`ssl_cert`: a client certificate needs its key: set `ssl_key` too",
                ));
            }
            (None, Some(_)) => {
                return Err(PluginError::config(
                    "`ssl_key`: a client key needs its certificate: set `ssl_cert` too",
                ));
            }
        };
        let connect_timeout = match options.remove("connect_timeout") {
            None => DEFAULT_CONNECT_TIMEOUT,
            Some(t) => seconds_or_duration(&t)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    PluginError::config(format!(
                        "`connect_timeout`: {t:?} is not a positive duration (seconds, or \
                         \"500ms\", \"5s\")"
                    ))
                })?,
        };
        let charset = match options.remove("charset") {
            None => "utf8mb4".to_owned(),
            Some(c) => match c.trim().to_ascii_lowercase().as_str() {
                c @ ("utf8mb4" | "utf8mb3" | "utf8") => c.to_owned(),
                _ => {
                    return Err(PluginError::config(format!(
                        "`charset`: {c:?}: the connector reads text as UTF-8; use utf8mb4 \
                         (the server converts from the columns' own character sets)"
                    )));
                }
            },
        };
        let init_command = options.remove("init_command");
        let zero_dates = match self.zero_dates.as_deref() {
            None | Some("error") => ZeroDates::Error,
            Some("null") => ZeroDates::Null,
            Some(other) => {
                return Err(PluginError::config(format!(
                    "`zero_dates`: {other:?} is not \"error\" or \"null\""
                )));
            }
        };
        debug_assert!(
            options.is_empty(),
            "every option in OPTIONS is read: {:?}",
            options.keys()
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
            address,
            user,
            password: merged.password,
            database: merged.database.filter(|d| !d.is_empty()),
            ssl_mode,
            ssl_ca,
            client_identity,
            connect_timeout,
            charset,
            init_command,
            zero_dates,
            pool_size,
        })
    }
}

/// Seconds (`10`, `2.5`), or a duration with a unit (`"500ms"`, `"5s"`).
fn seconds_or_duration(text: &str) -> Option<Duration> {
    match text.trim().parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs).ok(),
        Err(_) => plugboard_api::parse_duration(text),
    }
}

fn expand_home(path: &str, env: &dyn Env) -> PathBuf {
    match (path.strip_prefix("~/"), env.var("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Reads a MySQL URL the way SQLAlchemy's mysql dialects do.
fn parse_url(text: &str) -> Result<Layer, PluginError> {
    let bad = |why: &str| PluginError::config(format!("`url`: {why}"));
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| bad("expected mysql://user:password@host:port/database"))?;
    let base = scheme.split('+').next().unwrap_or(scheme);
    if !matches!(base, "mysql" | "mariadb") {
        return Err(bad(&format!(
            "scheme {scheme:?} is not mysql or mariadb (expected mysql://…)"
        )));
    }
    // `url` parses non-special schemes generically; give it one without the driver suffix.
    let url = url::Url::parse(&format!("mysql://{rest}")).map_err(|e| bad(&e.to_string()))?;
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut layer = Layer {
        host: url
            .host_str()
            .filter(|h| !h.is_empty())
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned()),
        port: url.port(),
        user: Some(decode(url.username())).filter(|u| !u.is_empty()),
        password: url.password().map(decode),
        database: Some(decode(url.path().trim_start_matches('/'))).filter(|d| !d.is_empty()),
        ..Layer::default()
    };
    let name = |k: &str| format!("`url`: query parameter `{k}`");
    for (k, v) in url.query_pairs() {
        layer.set(&k, v.into_owned(), &name)?;
    }
    Ok(layer)
}

/// The settings in group `group` of a MySQL option file (`!include` and `!includedir`
/// followed). A missing `~/.my.cnf` is no error; a missing `read_default_file` is.
fn option_file(path: &Path, group: &str, required: bool) -> Result<Layer, PluginError> {
    let mut layer = Layer::default();
    let mut values = BTreeMap::new();
    read_option_file(path, group, required, 0, &mut values)?;
    let name = |k: &str| format!("{}: [{group}] {k}", path.display());
    for (key, value) in values {
        let key = key.replace('-', "_");
        let key = match key.as_str() {
            "socket" => "unix_socket",
            "default_character_set" => "charset",
            other => other,
        };
        // The group is shared by every MySQL program: options for others are theirs.
        let known = ["host", "port", "user", "password", "database"].contains(&key)
            || OPTIONS.contains(&key);
        if known {
            layer.set(key, value, &name)?;
        }
    }
    Ok(layer)
}

fn read_option_file(
    path: &Path,
    group: &str,
    required: bool,
    depth: usize,
    values: &mut BTreeMap<String, String>,
) -> Result<(), PluginError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(PluginError::config(format!(
                "option file {}: cannot read it: {e}",
                path.display()
            )));
        }
    };
    let mut in_group = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(include) = line.strip_prefix("!include ") {
            if depth < 8 {
                read_option_file(Path::new(include.trim()), group, true, depth + 1, values)?;
            }
            continue;
        }
        if let Some(dir) = line.strip_prefix("!includedir ") {
            if depth < 8
                && let Ok(entries) = std::fs::read_dir(dir.trim())
            {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "cnf"))
                    .collect();
                files.sort();
                for file in files {
                    read_option_file(&file, group, true, depth + 1, values)?;
                }
            }
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_group = name.trim() == group;
            continue;
        }
        if !in_group {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), unquote(v.trim())),
            None => (line, String::new()),
        };
        values.insert(key.to_owned(), value);
    }
    Ok(())
}

/// An option file's value: quoted (with `\n`, `\t`, `\\`, `\s` escapes) or bare, where `#`
/// starts a comment.
fn unquote(value: &str) -> String {
    let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return value
            .split_once(" #")
            .map_or(value, |(v, _)| v)
            .trim()
            .to_owned();
    };
    let mut out = String::new();
    let mut chars = value[1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('s') => out.push(' '),
                Some(other) => out.push(other),
                None => break,
            },
            c if c == quote => break,
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(toml: &str, env: &[(&str, &str)]) -> Result<Settings, PluginError> {
        let config: Config =
            serde_json::from_value(serde_json::to_value(toml_like(toml)).expect("json"))
                .map_err(|e| PluginError::config(e.to_string()))?;
        config.resolve_with(&env.iter().copied().collect::<BTreeMap<_, _>>())
    }

    /// `key = value` lines (values are JSON) as a table.
    fn toml_like(text: &str) -> serde_json::Map<String, serde_json::Value> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').expect("key = value");
                (
                    k.trim().to_owned(),
                    serde_json::from_str(v.trim()).expect("a JSON value"),
                )
            })
            .collect()
    }

    const NO_HOME: &[(&str, &str)] = &[("USER", "os_user")];

    #[test]
    fn urls_of_every_driver() {
        for scheme in [
            "mysql",
            "mysql+pymysql",
            "mysql+mysqldb",
            "mariadb",
            "mariadb+mariadbconnector",
        ] {
            let s = resolve(
                &format!(r#"url = "{scheme}://me:p%40ss@db.example:3307/sales?charset=utf8mb4""#),
                NO_HOME,
            )
            .expect(scheme);
            assert_eq!(
                s.address,
                Address::Tcp {
                    host: "db.example".into(),
                    port: 3307
                }
            );
            assert_eq!(s.user, "me");
            assert_eq!(s.password.as_deref(), Some("p@ss"));
            assert_eq!(s.database.as_deref(), Some("sales"));
        }
        let err = resolve(r#"url = "postgresql://x@h/d""#, NO_HOME).unwrap_err();
        assert!(err.message().contains("not mysql"), "{err}");
        let err = resolve(r#"url = "mysql://x@h/d?sslmod=REQUIRED""#, NO_HOME).unwrap_err();
        assert!(err.message().contains("query parameter `sslmod`"), "{err}");
    }

    #[test]
    fn parts_query_and_connect_args_in_their_order() {
        let s = resolve(
            r#"dialect = "mysql"
               url = "mysql://u@urlhost/urldb"
               host = "parthost"
               port = "3310"
               query = {"database": "querydb"}
               create_engine_kwargs = {"connect_args": {"user": "argsuser"}, "pool_size": 2}"#,
            NO_HOME,
        )
        .expect("settings");
        assert_eq!(
            s.address,
            Address::Tcp {
                host: "parthost".into(),
                port: 3310
            }
        );
        assert_eq!(s.database.as_deref(), Some("querydb"));
        assert_eq!(s.user, "argsuser");
        assert_eq!(s.pool_size, 2);
        let err = resolve(r#"dialect = "postgresql""#, NO_HOME).unwrap_err();
        assert!(err.message().contains("`dialect`"), "{err}");
    }

    #[test]
    fn environment_fills_gaps_and_user_defaults_to_the_os_user() {
        let s = resolve(
            "",
            &[
                ("USER", "os_user"),
                ("MYSQL_HOST", "envhost"),
                ("MYSQL_TCP_PORT", "3399"),
                ("MYSQL_PWD", "envpw"),
            ],
        )
        .expect("settings");
        assert_eq!(
            s.address,
            Address::Tcp {
                host: "envhost".into(),
                port: 3399
            }
        );
        assert_eq!(s.user, "os_user");
        assert_eq!(s.password.as_deref(), Some("envpw"));
        assert_eq!(s.database, None);
        let s = resolve(
            r#"host = "given""#,
            &[("USER", "u"), ("MYSQL_HOST", "envhost")],
        )
        .expect("settings");
        assert!(matches!(s.address, Address::Tcp { ref host, .. } if host == "given"));
    }

    #[test]
    fn option_file_under_the_section_over_the_environment() {
        let dir = std::env::temp_dir().join(format!("plugboard-mycnf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join(".my.cnf"),
            "[mysqld]\nport = 1\n[client]\nuser = cnf_user\npassword = \"cnf # pw\"\n\
             host = cnfhost # a comment\nport=3390\nmax_allowed_packet = 16M\n",
        )
        .expect("write");
        let home = dir.display().to_string();
        let env = [
            ("HOME", home.as_str()),
            ("USER", "os"),
            ("MYSQL_PWD", "envpw"),
        ];
        let s = resolve("", &env).expect("settings");
        assert_eq!(s.user, "cnf_user");
        assert_eq!(s.password.as_deref(), Some("cnf # pw"));
        assert_eq!(
            s.address,
            Address::Tcp {
                host: "cnfhost".into(),
                port: 3390
            }
        );
        let s = resolve(r#"url = "mysql://urluser:urlpw@h/d""#, &env).expect("settings");
        assert_eq!(s.user, "urluser");
        assert_eq!(s.password.as_deref(), Some("urlpw"));
        // pymysql's read_default_file and read_default_group.
        std::fs::write(dir.join("other.cnf"), "[app]\nuser = app_user\n").expect("write");
        let s = resolve(
            &format!(
                r#"query = {{"read_default_file": "{}", "read_default_group": "app"}}"#,
                dir.join("other.cnf").display()
            ),
            &env,
        )
        .expect("settings");
        assert_eq!(s.user, "app_user");
        let err = resolve(
            r#"query = {"read_default_file": "/nonexistent/x.cnf"}"#,
            &env,
        )
        .unwrap_err();
        assert!(err.message().contains("/nonexistent/x.cnf"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sockets() {
        let s = resolve(r#"unix_socket = "/run/mysqld/mysqld.sock""#, NO_HOME).expect("s");
        assert_eq!(s.address, Address::Socket("/run/mysqld/mysqld.sock".into()));
        let s = resolve(
            r#"url = "mysql://u@localhost/d?unix_socket=/tmp/m.sock""#,
            NO_HOME,
        )
        .expect("s");
        assert_eq!(s.address, Address::Socket("/tmp/m.sock".into()));
        // A host name is TCP even with a socket in the environment.
        let s = resolve(
            r#"host = "127.0.0.1""#,
            &[("USER", "u"), ("MYSQL_UNIX_PORT", "/tmp/m.sock")],
        )
        .expect("s");
        assert!(matches!(s.address, Address::Tcp { .. }));
    }

    #[test]
    fn tls_modes() {
        let mode = |t: &str| resolve(t, NO_HOME).map(|s| s.ssl_mode);
        assert_eq!(mode("").expect("default"), SslMode::Preferred);
        assert_eq!(
            mode(r#"ssl_mode = "disabled""#).expect("lowercase"),
            SslMode::Disabled
        );
        assert_eq!(
            mode(r#"ssl_ca = "/ca.pem""#).expect("a CA alone"),
            SslMode::VerifyCa
        );
        assert_eq!(
            mode(r#"create_engine_kwargs = {"connect_args": {"ssl": {"ca": "/ca.pem"}}}"#)
                .expect("pymysql"),
            SslMode::VerifyIdentity
        );
        assert_eq!(
            mode(
                r#"create_engine_kwargs = {"connect_args": {"ssl": {"ca": "/ca.pem", "check_hostname": false}}}"#
            )
            .expect("pymysql without the host check"),
            SslMode::VerifyCa
        );
        assert_eq!(
            mode(r#"create_engine_kwargs = {"connect_args": {"ssl": {}}}"#).expect("ssl {}"),
            SslMode::Required
        );
        for refused in [
            r#"ssl_mode = "VERIFY_CA""#,
            r#"ssl_mode = "VERIFY_IDENTITY""#,
            r#"query = {"ssl_mode": "VERIFY_CA"}"#,
        ] {
            let err = mode(refused).unwrap_err();
            assert!(err.message().contains("set `ssl_ca`"), "{refused}: {err}");
        }
        assert!(mode(r#"ssl_mode = "SOMETIMES""#).is_err());
        assert!(mode(r#"ssl_cert = "/c.pem""#).is_err());
        let err = mode(r#"create_engine_kwargs = {"connect_args": {"ssl": {"cipher": "x"}}}"#)
            .unwrap_err();
        assert!(err.message().contains("ssl.cipher"), "{err}");
    }

    #[test]
    fn other_keys_are_checked() {
        let s = resolve(r#"connect_timeout = "1.5s""#, NO_HOME).expect("s");
        assert_eq!(s.connect_timeout, Duration::from_millis(1500));
        assert!(resolve(r#"connect_timeout = 0"#, NO_HOME).is_err());
        assert!(resolve(r#"charset = "latin1""#, NO_HOME).is_err());
        assert!(resolve(r#"query = {"charset": "utf8mb4"}"#, NO_HOME).is_ok());
        assert!(resolve(r#"zero_dates = "maybe""#, NO_HOME).is_err());
        assert!(resolve(r#"create_engine_kwargs = {"max_overflow": 3}"#, NO_HOME).is_err());
        assert!(resolve(r#"create_engine_kwargs = {"echo": true}"#, NO_HOME).is_err());
        assert!(
            resolve(
                r#"create_engine_kwargs = {"pool_pre_ping": true, "pool_recycle": 3600}"#,
                NO_HOME
            )
            .is_ok()
        );
        assert!(resolve(r#"query = {"local_infile": "1"}"#, NO_HOME).is_err());
        assert!(resolve(r#"pool_size = 0"#, NO_HOME).is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let s = resolve(r#"url = "mysql://u:SECRET-PW@h/d""#, NO_HOME).expect("s");
        assert!(!format!("{s:?}").contains("SECRET-PW"));
        let err = resolve(
            r#"create_engine_kwargs = {"connect_args": {"password": ["SECRET-PW"]}}"#,
            NO_HOME,
        )
        .unwrap_err();
        assert!(!err.message().contains("SECRET-PW"), "{err}");
        let config: Config =
            serde_json::from_str(r#"{"url": "mysql://u:SECRET-PW@h/d", "password": "SECRET-PW"}"#)
                .expect("config");
        assert!(!format!("{config:?}").contains("SECRET-PW"));
    }
}

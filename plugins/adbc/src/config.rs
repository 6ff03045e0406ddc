//! A connection's section, as the user wrote it ([`Config`]), and what it means for an ADBC
//! driver ([`Settings`]): which driver, and every database option by its ADBC name.
//!
//! Four kinds of section:
//!
//! * `type = "adbc"`: `driver`, `entrypoint`, `uri`, `username`, `password` and
//!   `options = {"adbc.…" = …}`, passed to the driver as they are;
//! * `type = "snowflake"` (or a section named `snowflake`): Streamlit's SnowflakeConnection
//!   keys, and `connection_name` from `~/.snowflake/connections.toml`;
//! * `type = "bigquery"`: a service-account key's fields, `credentials_file` or
//!   `credentials`, with `project_id`, `location`, `dataset_id`;
//! * `type = "flightsql"`: a `grpc://` or `grpc+tls://` `uri` with its auth options.
//!
//! Every kind also takes `driver` (another library for it), `entrypoint`, `python` and
//! `options`, which go last and so win.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use adbc_core::options::OptionValue;
use plugboard_api::{PluginError, Target, parse_duration};
use serde::Deserialize;
use serde_json::Value as Json;

/// The kinds this plugin serves, as a connection's `type` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Adbc,
    Snowflake,
    BigQuery,
    FlightSql,
}

impl Kind {
    /// The kind the host chose this plugin for (plugboard-api 1.5 says), else what the
    /// section looks like: a host before 1.5 passes no kind.
    pub fn of(asked: &str, name: &str, config: &Config) -> Result<Self, PluginError> {
        match asked {
            "adbc" => return Ok(Self::Adbc),
            "snowflake" => return Ok(Self::Snowflake),
            "bigquery" => return Ok(Self::BigQuery),
            "flightsql" => return Ok(Self::FlightSql),
            _ => {}
        }
        if config.driver.is_some()
            || config
                .uri_text()
                .is_some_and(|u| u.starts_with("profile://"))
        {
            let flight = config
                .uri_text()
                .is_some_and(|u| u.starts_with("grpc://") || u.starts_with("grpc+"));
            return Ok(if flight && config.driver.is_none() {
                Self::FlightSql
            } else {
                Self::Adbc
            });
        }
        if name.eq_ignore_ascii_case("snowflake")
            || config.account.is_some()
            || config.connection_name.is_some()
        {
            return Ok(Self::Snowflake);
        }
        if config.project_id.is_some()
            || config.credentials_file.is_some()
            || config.client_email.is_some()
        {
            return Ok(Self::BigQuery);
        }
        if config.uri_text().is_some_and(|u| u.starts_with("grpc")) {
            return Ok(Self::FlightSql);
        }
        Err(PluginError::config(
            "say which driver: `driver` (a driver name, a library path or a manifest), or a \
             Snowflake, BigQuery or Flight SQL section (`type = \"snowflake\"`, …)",
        ))
    }

    /// The name the driver manager and `pip` know the kind's driver by.
    pub fn default_driver(self) -> Option<&'static str> {
        match self {
            Self::Adbc => None,
            Self::Snowflake => Some("snowflake"),
            Self::BigQuery => Some("bigquery"),
            Self::FlightSql => Some("flightsql"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Adbc => "ADBC",
            Self::Snowflake => "Snowflake",
            Self::BigQuery => "BigQuery",
            Self::FlightSql => "Flight SQL",
        }
    }
}

/// A connection's section. The host checks its keys against the manifest first.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    // -- every kind
    /// A driver name (`sqlite`, `adbc_driver_postgresql`), a library path, or a manifest.
    pub driver: Option<String>,
    pub entrypoint: Option<String>,
    /// A Python interpreter, or an environment's folder, whose `adbc-driver-*` packages
    /// and `etc/adbc/drivers` manifests are searched; `$VIRTUAL_ENV` when not set.
    pub python: Option<String>,
    pub uri: Option<String>,
    /// Streamlit's spelling of `uri`.
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Driver options by their ADBC names, given last.
    pub options: BTreeMap<String, Json>,
    pub pool_size: Option<u64>,

    // -- Snowflake (SnowflakeConnection's keys)
    pub account: Option<String>,
    pub user: Option<String>,
    pub authenticator: Option<String>,
    pub private_key_file: Option<String>,
    pub private_key_file_pwd: Option<String>,
    pub private_key_passphrase: Option<String>,
    pub private_key: Option<String>,
    pub token: Option<String>,
    pub role: Option<String>,
    pub warehouse: Option<String>,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub connection_name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub protocol: Option<String>,
    pub region: Option<String>,
    pub login_timeout: Option<Json>,

    // -- BigQuery (a service-account key's fields, or a file of them)
    #[serde(rename = "type")]
    pub credential_type: Option<String>,
    pub project_id: Option<String>,
    pub private_key_id: Option<String>,
    pub client_email: Option<String>,
    pub client_id: Option<String>,
    pub auth_uri: Option<String>,
    pub token_uri: Option<String>,
    pub auth_provider_x509_cert_url: Option<String>,
    pub client_x509_cert_url: Option<String>,
    pub universe_domain: Option<String>,
    pub credentials_file: Option<String>,
    pub credentials: Option<Json>,
    pub location: Option<String>,
    pub dataset_id: Option<String>,

    // -- Flight SQL
    pub headers: BTreeMap<String, String>,
    pub tls_skip_verify: Option<bool>,
    pub tls_root_certs: Option<String>,
    pub timeout: Option<Json>,
}

/// Which driver to load, and how to set it up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub kind: Kind,
    /// What `driver` named (or the kind's driver); `None` with a `profile://` URI, whose
    /// profile names the driver.
    pub driver: Option<String>,
    pub entrypoint: Option<String>,
    pub python: Option<PathBuf>,
    /// The `profile://` URI, when the section uses a connection profile.
    pub profile: Option<String>,
    /// Database options, in the order they are set.
    pub options: Vec<(String, OptionValue)>,
    /// Every secret value of the section, to scrub from what the driver says.
    pub secrets: Vec<String>,
    /// How errors name the connection: `Snowflake account "acme" (user "bob")`.
    pub shown: String,
    /// What a read reaches, for the host's cache keys (no secrets).
    pub target: Target,
    pub pool_size: usize,
}

/// Option names that hold a secret or say nothing about what a read returns; left out of
/// the target. Secrets are found by their look too (see [`looks_secret`]).
const NOT_TARGET: &[&str] = &[
    "timeout",
    "concurrency",
    "queue_size",
    "app_name",
    "telemetry",
];

impl Config {
    fn uri_text(&self) -> Option<&str> {
        self.uri.as_deref().or(self.url.as_deref())
    }

    /// What the section means for `kind`. `home` is where `~/.snowflake` is looked up.
    pub fn resolve(self, kind: Kind, home: Option<&Path>) -> Result<Settings, PluginError> {
        let mut s = Builder::default();
        let python = self
            .python
            .clone()
            .map(|p| expand_home(&p, home))
            .or_else(|| std::env::var_os("VIRTUAL_ENV").map(PathBuf::from));
        let uri = self.uri_text().map(str::to_owned);
        let profile = uri.clone().filter(|u| u.starts_with("profile://"));
        let shown = match kind {
            Kind::Adbc => self.resolve_generic(&mut s, uri.filter(|_| profile.is_none()))?,
            Kind::Snowflake => self.resolve_snowflake(&mut s, home)?,
            Kind::BigQuery => self.resolve_bigquery(&mut s, home)?,
            Kind::FlightSql => self.resolve_flight(&mut s, uri)?,
        };
        for (key, value) in &self.options {
            let value = option_value(&format!("options.{key:?}"), value)?;
            s.set(key, value);
        }
        let driver = match (&self.driver, kind.default_driver(), &profile) {
            (Some(d), _, _) => Some(d.clone()),
            (None, Some(d), _) => Some(d.to_owned()),
            (None, None, Some(_)) => None,
            (None, None, None) => {
                return Err(PluginError::config(
                    "`driver` is missing: a driver name (`sqlite`, `postgresql`, …), the path \
                     of a driver library, or a driver manifest (.toml); or `uri = \"profile://NAME\"`",
                ));
            }
        };
        let pool_size = match self.pool_size {
            None => 4,
            Some(n @ 1..=64) => n as usize,
            Some(n) => {
                return Err(PluginError::config(format!(
                    "`pool_size`: expected 1 to 64 connections, got {n}"
                )));
            }
        };
        let mut target = Target::new();
        if let Some(p) = &profile {
            target.set("profile", p.clone());
        }
        for (key, value) in &s.options {
            if looks_secret(key) || NOT_TARGET.iter().any(|w| key.contains(w)) {
                continue;
            }
            let shown = match value {
                OptionValue::String(v) if key == "uri" => Json::from(target_uri(v)),
                OptionValue::String(v) => Json::from(v.clone()),
                OptionValue::Int(v) => Json::from(*v),
                OptionValue::Double(v) => Json::from(*v),
                OptionValue::Bytes(v) => Json::from(format!("<{} bytes>", v.len())),
                _ => continue,
            };
            target.set(key.clone(), shown);
        }
        Ok(Settings {
            kind,
            driver,
            entrypoint: self.entrypoint,
            python,
            profile,
            options: s.options,
            secrets: s.secrets,
            shown,
            target,
            pool_size,
        })
    }

    fn resolve_generic(&self, s: &mut Builder, uri: Option<String>) -> Result<String, PluginError> {
        if let Some(uri) = &uri {
            s.set("uri", OptionValue::String(uri.clone()));
            if let Ok(u) = url::Url::parse(uri)
                && let Some(p) = u.password()
            {
                s.secret(percent_decode(p));
            }
        }
        if let Some(user) = &self.username {
            s.set("username", OptionValue::String(user.clone()));
        }
        if let Some(p) = &self.password {
            s.secret(p.clone());
            s.set("password", OptionValue::String(p.clone()));
        }
        Ok(match (&self.driver, &uri) {
            (Some(d), Some(u)) => format!("ADBC driver {d:?} at {}", target_uri(u)),
            (Some(d), None) => format!("ADBC driver {d:?}"),
            (None, _) => format!("ADBC profile {:?}", self.uri_text().unwrap_or_default()),
        })
    }

    fn resolve_snowflake(
        &self,
        s: &mut Builder,
        home: Option<&Path>,
    ) -> Result<String, PluginError> {
        // `connection_name` (or, for a section without an account, the default connection)
        // from ~/.snowflake/connections.toml; the section's own keys win.
        let mut me = self.clone();
        if let Some(file) = snowflake_connection(self, home)? {
            me = me.fill_from(file);
        }
        let account = me.account.clone().ok_or_else(|| {
            PluginError::config(
                "a Snowflake section needs `account` (or `connection_name`, a connection of \
                 ~/.snowflake/connections.toml)",
            )
        })?;
        const SQL: &str = "adbc.snowflake.sql.";
        const CLIENT: &str = "adbc.snowflake.sql.client_option.";
        s.set(&format!("{SQL}account"), account.clone().into());
        let user = me.user.clone().or(me.username.clone());
        if let Some(u) = &user {
            s.set("username", u.clone().into());
        }
        if let Some(p) = &me.password {
            s.secret(p.clone());
            s.set("password", p.clone().into());
        }
        for (key, value) in [
            ("role", &me.role),
            ("warehouse", &me.warehouse),
            ("db", &me.database),
            ("schema", &me.schema),
            ("region", &me.region),
            ("uri.host", &me.host),
            ("uri.protocol", &me.protocol),
        ] {
            if let Some(v) = value {
                s.set(&format!("{SQL}{key}"), v.clone().into());
            }
        }
        if let Some(port) = me.port {
            s.set(&format!("{SQL}uri.port"), port.to_string().into());
        }
        let key_given = me.private_key_file.is_some() || me.private_key.is_some();
        let auth = match me
            .authenticator
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None if key_given => Some("auth_jwt"),
            None => None,
            Some("snowflake") => Some("auth_snowflake"),
            Some("snowflake_jwt" | "jwt") => Some("auth_jwt"),
            Some("externalbrowser") => Some("auth_ext_browser"),
            Some("oauth") => Some("auth_oauth"),
            Some("username_password_mfa") => Some("auth_mfa"),
            Some("programmatic_access_token") => Some("auth_pat"),
            Some("workload_identity") => Some("auth_wif"),
            Some(okta) if okta.starts_with("https://") => {
                s.set(&format!("{CLIENT}okta_url"), okta.to_owned().into());
                Some("auth_okta")
            }
            Some(other) => {
                return Err(PluginError::config(format!(
                    "`authenticator`: {other:?} is not one the ADBC Snowflake driver takes \
                     (snowflake, snowflake_jwt, externalbrowser, oauth, username_password_mfa, \
                     programmatic_access_token, workload_identity, or an https:// Okta URL)"
                )));
            }
        };
        if let Some(a) = auth {
            s.set(&format!("{SQL}auth_type"), a.to_owned().into());
        }
        if let Some(path) = &me.private_key_file {
            let path = expand_home(path, home);
            s.set(
                &format!("{CLIENT}jwt_private_key"),
                path.display().to_string().into(),
            );
        }
        if let Some(pem) = &me.private_key {
            s.secret(pem.clone());
            s.set(
                &format!("{CLIENT}jwt_private_key_pkcs8_value"),
                pem.clone().into(),
            );
        }
        if let Some(p) = me
            .private_key_file_pwd
            .as_ref()
            .or(me.private_key_passphrase.as_ref())
        {
            s.secret(p.clone());
            s.set(
                &format!("{CLIENT}jwt_private_key_pkcs8_password"),
                p.clone().into(),
            );
        }
        if let Some(t) = &me.token {
            s.secret(t.clone());
            s.set(&format!("{CLIENT}auth_token"), t.clone().into());
        }
        if let Some(t) = &me.login_timeout {
            let t = duration("login_timeout", t)?;
            s.set(&format!("{CLIENT}login_timeout"), go_duration(t).into());
        }
        Ok(match user {
            Some(u) => format!("Snowflake account {account:?} (user {u:?})"),
            None => format!("Snowflake account {account:?}"),
        })
    }

    fn fill_from(mut self, file: Config) -> Config {
        macro_rules! fill {
            ($($f:ident),*) => {$( if self.$f.is_none() { self.$f = file.$f; } )*};
        }
        fill!(
            account,
            user,
            password,
            authenticator,
            private_key_file,
            private_key_file_pwd,
            private_key_passphrase,
            private_key,
            token,
            role,
            warehouse,
            database,
            schema,
            host,
            port,
            protocol,
            region,
            login_timeout
        );
        self
    }

    fn resolve_bigquery(
        &self,
        s: &mut Builder,
        home: Option<&Path>,
    ) -> Result<String, PluginError> {
        const SQL: &str = "adbc.bigquery.sql.";
        let key_fields = self.private_key.is_some() || self.client_email.is_some();
        let (auth, credentials) = match (&self.credentials_file, &self.credentials, key_fields) {
            (Some(path), None, false) => {
                let path = expand_home(path, home);
                ("json_credential_file", Some(path.display().to_string()))
            }
            (None, Some(Json::String(text)), false) => {
                s.secret(text.clone());
                ("json_credential_string", Some(text.clone()))
            }
            (None, Some(table @ Json::Object(_)), false) => {
                let text = table.to_string();
                for v in table.as_object().into_iter().flat_map(|t| t.values()) {
                    if let Json::String(v) = v
                        && v.len() > 20
                    {
                        s.secret(v.clone());
                    }
                }
                ("json_credential_string", Some(text))
            }
            (None, None, true) => {
                let text = self.key_file_json()?;
                ("json_credential_string", Some(text))
            }
            (None, None, false) => ("auth_bigquery", None),
            (None, Some(other), false) => {
                return Err(PluginError::config(format!(
                    "`credentials`: expected a service-account key as a table or as JSON text, got {other}"
                )));
            }
            _ => {
                return Err(PluginError::config(
                    "give one of `credentials_file`, `credentials`, or the key file's fields \
                     (`private_key`, `client_email`, …), not several",
                ));
            }
        };
        s.set(
            &format!("{SQL}auth_type"),
            format!("{SQL}auth_type.{auth}").into(),
        );
        if let Some(c) = credentials {
            s.set(&format!("{SQL}auth_credentials"), c.into());
        }
        let project = self.project_id.clone().or_else(|| {
            // A key table given as `credentials` names its project too.
            self.credentials
                .as_ref()
                .and_then(|c| c.get("project_id"))
                .and_then(Json::as_str)
                .map(str::to_owned)
        });
        if let Some(p) = &project {
            s.set(&format!("{SQL}project_id"), p.clone().into());
        }
        if let Some(l) = &self.location {
            s.set(&format!("{SQL}location"), l.clone().into());
        }
        if let Some(d) = &self.dataset_id {
            s.set(&format!("{SQL}dataset_id"), d.clone().into());
        }
        Ok(match (&project, &self.client_email) {
            (Some(p), Some(e)) => format!("BigQuery project {p:?} (service account {e})"),
            (Some(p), None) => format!("BigQuery project {p:?}"),
            (None, _) => "BigQuery (the credentials' project)".to_owned(),
        })
    }

    /// The service-account key file a Streamlit section spells out field by field.
    fn key_file_json(&self) -> Result<String, PluginError> {
        let missing = |k: &str| {
            PluginError::config(format!(
                "a service-account key needs `{k}` beside `private_key` and `client_email`"
            ))
        };
        let mut key = serde_json::Map::new();
        key.insert(
            "type".into(),
            self.credential_type
                .clone()
                .unwrap_or_else(|| "service_account".into())
                .into(),
        );
        let private_key = self
            .private_key
            .clone()
            .ok_or_else(|| missing("private_key"))?;
        let email = self
            .client_email
            .clone()
            .ok_or_else(|| missing("client_email"))?;
        key.insert("private_key".into(), private_key.into());
        key.insert("client_email".into(), email.into());
        for (name, value) in [
            ("project_id", &self.project_id),
            ("private_key_id", &self.private_key_id),
            ("client_id", &self.client_id),
            ("auth_uri", &self.auth_uri),
            ("token_uri", &self.token_uri),
            (
                "auth_provider_x509_cert_url",
                &self.auth_provider_x509_cert_url,
            ),
            ("client_x509_cert_url", &self.client_x509_cert_url),
            ("universe_domain", &self.universe_domain),
        ] {
            if let Some(v) = value {
                key.insert(name.into(), v.clone().into());
            }
        }
        Ok(Json::Object(key).to_string())
    }

    fn resolve_flight(&self, s: &mut Builder, uri: Option<String>) -> Result<String, PluginError> {
        const FLIGHT: &str = "adbc.flight.sql.";
        let uri = uri.ok_or_else(|| {
            PluginError::config(
                "a Flight SQL section needs `uri` (grpc://host:port or grpc+tls://host:port)",
            )
        })?;
        s.set("uri", uri.clone().into());
        if let Some(u) = &self.username {
            s.set("username", u.clone().into());
        }
        if let Some(p) = &self.password {
            s.secret(p.clone());
            s.set("password", p.clone().into());
        }
        if let Some(t) = &self.token {
            s.secret(t.clone());
            s.set(
                &format!("{FLIGHT}authorization_header"),
                format!("Bearer {t}").into(),
            );
        }
        for (name, value) in &self.headers {
            if looks_secret(name) || name.eq_ignore_ascii_case("authorization") {
                s.secret(value.clone());
            }
            s.set(
                &format!("{FLIGHT}rpc.call_header.{}", name.to_ascii_lowercase()),
                value.clone().into(),
            );
        }
        if let Some(v) = self.tls_skip_verify {
            s.set(
                &format!("{FLIGHT}client_option.tls_skip_verify"),
                v.to_string().into(),
            );
        }
        if let Some(certs) = &self.tls_root_certs {
            let pem = if certs.contains("-----BEGIN") {
                certs.clone()
            } else {
                std::fs::read_to_string(certs).map_err(|e| {
                    PluginError::config(format!("`tls_root_certs`: cannot read {certs}: {e}"))
                })?
            };
            s.set(&format!("{FLIGHT}client_option.tls_root_certs"), pem.into());
        }
        if let Some(t) = &self.timeout {
            let secs = duration("timeout", t)?.as_secs_f64();
            for call in ["fetch", "query", "update"] {
                s.set(
                    &format!("{FLIGHT}rpc.timeout_seconds.{call}"),
                    OptionValue::Double(secs),
                );
            }
        }
        Ok(format!("Flight SQL server {}", target_uri(&uri)))
    }
}

/// Options in order, and the secrets among them.
#[derive(Default)]
struct Builder {
    options: Vec<(String, OptionValue)>,
    secrets: Vec<String>,
}

impl Builder {
    /// Sets `key`, replacing an earlier value (so `options` win over the mapped keys).
    fn set(&mut self, key: &str, value: OptionValue) {
        if looks_secret(key)
            && let OptionValue::String(v) = &value
        {
            self.secrets.push(v.clone());
        }
        match self.options.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.options.push((key.to_owned(), value)),
        }
    }

    fn secret(&mut self, value: String) {
        if !value.is_empty() {
            self.secrets.push(value);
        }
    }
}

/// An option's value from TOML: text and numbers as they are, booleans as the `"true"` and
/// `"false"` text ADBC drivers take.
fn option_value(at: &str, value: &Json) -> Result<OptionValue, PluginError> {
    Ok(match value {
        Json::String(s) => OptionValue::String(s.clone()),
        Json::Bool(b) => OptionValue::String(b.to_string()),
        Json::Number(n) => match n.as_i64() {
            Some(i) => OptionValue::Int(i),
            None => OptionValue::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => {
            return Err(PluginError::config(format!(
                "`{at}`: expected text, a number or a boolean, got {other}"
            )));
        }
    })
}

fn duration(key: &str, value: &Json) -> Result<Duration, PluginError> {
    let d = match value {
        Json::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
            .map(Duration::from_secs_f64),
        Json::String(s) => parse_duration(s),
        _ => None,
    };
    d.ok_or_else(|| {
        PluginError::config(format!(
            "`{key}`: expected seconds or a duration such as \"30s\", got {value}"
        ))
    })
}

/// A duration as Go's `time.ParseDuration` reads it (the Go drivers' timeouts).
fn go_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Whether an option or key names a secret (the host's rule, in short: its words).
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "credential",
        "private_key",
        "passphrase",
        "authorization",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// A URI without its password or secret-looking query parameters, a local file's path
/// made absolute: the form that goes into the target and into messages.
pub fn target_uri(uri: &str) -> String {
    if let Ok(mut u) = url::Url::parse(uri)
        && u.has_host()
    {
        if u.password().is_some() {
            let _ = u.set_password(None);
        }
        let query: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(k, _)| !looks_secret(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if u.query().is_some() {
            if query.is_empty() {
                u.set_query(None);
            } else {
                u.query_pairs_mut().clear().extend_pairs(query);
            }
        }
        return u.to_string();
    }
    // A file (SQLite's `file:x.db`, `x.db`): the same file however it is reached.
    let (scheme, path) = match uri.strip_prefix("file:") {
        Some(rest) => ("file:", rest.split('?').next().unwrap_or(rest)),
        None => ("", uri),
    };
    let p = Path::new(path);
    if !path.is_empty() && path != ":memory:" && p.exists() {
        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        return format!("{scheme}{}", abs.display());
    }
    uri.to_owned()
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(path),
    }
}

/// The connection of `~/.snowflake/connections.toml` (or `$SNOWFLAKE_HOME`'s) that the
/// section names with `connection_name`; for a section without `account`, the default one
/// (`$SNOWFLAKE_DEFAULT_CONNECTION_NAME`, `default_connection_name` of `config.toml`, else
/// `default`) if that file has it.
fn snowflake_connection(
    config: &Config,
    home: Option<&Path>,
) -> Result<Option<Config>, PluginError> {
    let dir = match std::env::var_os("SNOWFLAKE_HOME") {
        Some(d) => PathBuf::from(d),
        None => match home {
            Some(h) => h.join(".snowflake"),
            None => return Ok(None),
        },
    };
    let file = dir.join("connections.toml");
    let (name, required) = match &config.connection_name {
        Some(n) => (n.clone(), true),
        None if config.account.is_none() => (default_connection_name(&dir), false),
        None => return Ok(None),
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(_) if !required => return Ok(None),
        Err(e) => {
            return Err(PluginError::config(format!(
                "`connection_name` {name:?}: cannot read {}: {e}",
                file.display()
            )));
        }
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        PluginError::config(format!("{}: {}", file.display(), one_line(&e.to_string())))
    })?;
    let Some(section) = table.get(&name) else {
        if !required {
            return Ok(None);
        }
        let names: Vec<&str> = table.keys().map(String::as_str).collect();
        return Err(PluginError::config(format!(
            "`connection_name` {name:?}: {} has no such connection (it has {})",
            file.display(),
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )));
    };
    let Some(section) = section.as_table() else {
        return Err(PluginError::config(format!(
            "`connection_name` {name:?}: [{name}] of {} is not a table",
            file.display()
        )));
    };
    // The Python connector takes more keys than the ADBC driver has options for: those
    // are left out, and said so.
    let mut known = toml::Table::new();
    for (key, value) in section {
        if SNOWFLAKE_FILE_KEYS.contains(&key.as_str()) {
            known.insert(key.clone(), value.clone());
        } else {
            plugboard_api::log::warn!(
                "{} [{name}]: `{key}` is not used by the ADBC Snowflake driver; set the \
                 driver's own option in `options` instead",
                file.display()
            );
        }
    }
    let json = serde_json::to_value(known)
        .map_err(|e| PluginError::config(format!("{} [{name}]: {e}", file.display())))?;
    let conn: Config = serde_json::from_value(json)
        .map_err(|e| PluginError::config(format!("{} [{name}]: {e}", file.display())))?;
    Ok(Some(conn))
}

/// The keys of a `connections.toml` connection that map to the driver's options.
const SNOWFLAKE_FILE_KEYS: &[&str] = &[
    "account",
    "user",
    "password",
    "authenticator",
    "private_key_file",
    "private_key_file_pwd",
    "private_key_passphrase",
    "private_key",
    "token",
    "role",
    "warehouse",
    "database",
    "schema",
    "host",
    "port",
    "protocol",
    "region",
    "login_timeout",
];

fn default_connection_name(dir: &Path) -> String {
    if let Ok(n) = std::env::var("SNOWFLAKE_DEFAULT_CONNECTION_NAME") {
        return n;
    }
    std::fs::read_to_string(dir.join("config.toml"))
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
        .and_then(|t| {
            t.get("default_connection_name")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "default".to_owned())
}

pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: Json) -> Config {
        serde_json::from_value(json).expect("config")
    }

    fn option<'a>(s: &'a Settings, key: &str) -> Option<&'a OptionValue> {
        s.options.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn text(s: &Settings, key: &str) -> String {
        match option(s, key) {
            Some(OptionValue::String(v)) => v.clone(),
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn snowflake_keys_map_to_the_drivers_options() {
        let c = config(serde_json::json!({
            "account": "acme-xy123", "user": "bob", "password": "hunter2",
            "role": "ANALYST", "warehouse": "WH", "database": "SALES", "schema": "PUBLIC",
            "login_timeout": 5, "options": {"adbc.snowflake.sql.client_option.app_name": "me"}
        }));
        let s = c.resolve(Kind::Snowflake, None).expect("resolve");
        assert_eq!(text(&s, "adbc.snowflake.sql.account"), "acme-xy123");
        assert_eq!(text(&s, "username"), "bob");
        assert_eq!(text(&s, "password"), "hunter2");
        assert_eq!(text(&s, "adbc.snowflake.sql.role"), "ANALYST");
        assert_eq!(text(&s, "adbc.snowflake.sql.warehouse"), "WH");
        assert_eq!(text(&s, "adbc.snowflake.sql.db"), "SALES");
        assert_eq!(text(&s, "adbc.snowflake.sql.schema"), "PUBLIC");
        assert_eq!(
            text(&s, "adbc.snowflake.sql.client_option.login_timeout"),
            "5000ms"
        );
        assert_eq!(text(&s, "adbc.snowflake.sql.client_option.app_name"), "me");
        assert!(option(&s, "adbc.snowflake.sql.auth_type").is_none());
        assert_eq!(s.shown, "Snowflake account \"acme-xy123\" (user \"bob\")");
        assert!(s.secrets.contains(&"hunter2".to_owned()));
        let target = s.target.to_json();
        assert!(
            !target.contains("hunter2") && target.contains("acme-xy123"),
            "{target}"
        );
    }

    #[test]
    fn snowflake_key_pair_and_authenticators() {
        let c = config(serde_json::json!({
            "account": "a", "user": "u", "private_key_file": "/k/rsa_key.p8",
            "private_key_file_pwd": "pw"
        }));
        let s = c.resolve(Kind::Snowflake, None).expect("resolve");
        assert_eq!(text(&s, "adbc.snowflake.sql.auth_type"), "auth_jwt");
        assert_eq!(
            text(&s, "adbc.snowflake.sql.client_option.jwt_private_key"),
            "/k/rsa_key.p8"
        );
        assert_eq!(
            text(
                &s,
                "adbc.snowflake.sql.client_option.jwt_private_key_pkcs8_password"
            ),
            "pw"
        );
        for (given, want) in [
            ("externalbrowser", "auth_ext_browser"),
            ("oauth", "auth_oauth"),
            ("SNOWFLAKE_JWT", "auth_jwt"),
            ("programmatic_access_token", "auth_pat"),
            ("https://acme.okta.com", "auth_okta"),
        ] {
            let c =
                config(serde_json::json!({"account": "a", "authenticator": given, "token": "t0k"}));
            let s = c.resolve(Kind::Snowflake, None).expect("resolve");
            assert_eq!(text(&s, "adbc.snowflake.sql.auth_type"), want, "{given}");
            assert_eq!(
                text(&s, "adbc.snowflake.sql.client_option.auth_token"),
                "t0k"
            );
        }
        let e = config(serde_json::json!({"account": "a", "authenticator": "magic"}))
            .resolve(Kind::Snowflake, None)
            .unwrap_err();
        assert!(e.message().contains("`authenticator`: \"magic\""), "{e}");
        let e = config(serde_json::json!({"user": "u"}))
            .resolve(Kind::Snowflake, None)
            .unwrap_err();
        assert!(e.message().contains("needs `account`"), "{e}");
    }

    #[test]
    fn snowflake_connections_toml_by_name_and_default() {
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(home.path().join(".snowflake")).expect("mkdir");
        std::fs::write(
            home.path().join(".snowflake/connections.toml"),
            "[default]\naccount = \"dflt\"\nuser = \"d\"\n\n[prod]\naccount = \"prod-acct\"\nuser = \"p\"\nwarehouse = \"BIG\"\nclient_session_keep_alive = true\n",
        )
        .expect("write");
        let by_name = config(serde_json::json!({"connection_name": "prod", "warehouse": "SMALL"}))
            .resolve(Kind::Snowflake, Some(home.path()))
            .expect("resolve");
        assert_eq!(text(&by_name, "adbc.snowflake.sql.account"), "prod-acct");
        assert_eq!(text(&by_name, "username"), "p");
        assert_eq!(
            text(&by_name, "adbc.snowflake.sql.warehouse"),
            "SMALL",
            "the section wins"
        );
        let default = config(serde_json::json!({}))
            .resolve(Kind::Snowflake, Some(home.path()))
            .expect("resolve");
        assert_eq!(text(&default, "adbc.snowflake.sql.account"), "dflt");
        let e = config(serde_json::json!({"connection_name": "nope"}))
            .resolve(Kind::Snowflake, Some(home.path()))
            .unwrap_err();
        assert!(
            e.message()
                .contains("has no such connection (it has default, prod)"),
            "{e}"
        );
    }

    #[test]
    fn bigquery_key_fields_file_and_default_credentials() {
        let c = config(serde_json::json!({
            "type": "service_account", "project_id": "proj-1", "private_key_id": "abc",
            "private_key": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n",
            "client_email": "sa@proj-1.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token",
            "location": "EU"
        }));
        let s = c.resolve(Kind::BigQuery, None).expect("resolve");
        assert_eq!(
            text(&s, "adbc.bigquery.sql.auth_type"),
            "adbc.bigquery.sql.auth_type.json_credential_string"
        );
        let key: Json =
            serde_json::from_str(&text(&s, "adbc.bigquery.sql.auth_credentials")).expect("json");
        assert_eq!(key["type"], "service_account");
        assert_eq!(key["client_email"], "sa@proj-1.iam.gserviceaccount.com");
        assert_eq!(text(&s, "adbc.bigquery.sql.project_id"), "proj-1");
        assert_eq!(text(&s, "adbc.bigquery.sql.location"), "EU");
        assert!(
            s.shown.contains("proj-1") && s.shown.contains("sa@proj-1"),
            "{}",
            s.shown
        );
        let target = s.target.to_json();
        assert!(
            !target.contains("PRIVATE KEY") && !target.contains("auth_credentials"),
            "{target}"
        );
        assert!(s.secrets.iter().any(|v| v.contains("PRIVATE KEY")));

        let f = config(serde_json::json!({"credentials_file": "/keys/sa.json", "project_id": "p"}))
            .resolve(Kind::BigQuery, None)
            .expect("resolve");
        assert_eq!(
            text(&f, "adbc.bigquery.sql.auth_type"),
            "adbc.bigquery.sql.auth_type.json_credential_file"
        );
        assert_eq!(
            text(&f, "adbc.bigquery.sql.auth_credentials"),
            "/keys/sa.json"
        );
        let adc = config(serde_json::json!({"project_id": "p"}))
            .resolve(Kind::BigQuery, None)
            .expect("resolve");
        assert_eq!(
            text(&adc, "adbc.bigquery.sql.auth_type"),
            "adbc.bigquery.sql.auth_type.auth_bigquery"
        );
        let e = config(serde_json::json!({"credentials_file": "/a", "client_email": "x"}))
            .resolve(Kind::BigQuery, None)
            .unwrap_err();
        assert!(e.message().contains("not several"), "{e}");
    }

    #[test]
    fn flight_sql_uri_token_headers_and_timeout() {
        let c = config(serde_json::json!({
            "uri": "grpc+tls://flight.example:443", "token": "s3cr3t",
            "headers": {"x-tenant": "t1"}, "timeout": "2s", "tls_skip_verify": true
        }));
        let s = c.resolve(Kind::FlightSql, None).expect("resolve");
        assert_eq!(text(&s, "uri"), "grpc+tls://flight.example:443");
        assert_eq!(
            text(&s, "adbc.flight.sql.authorization_header"),
            "Bearer s3cr3t"
        );
        assert_eq!(text(&s, "adbc.flight.sql.rpc.call_header.x-tenant"), "t1");
        assert_eq!(
            text(&s, "adbc.flight.sql.client_option.tls_skip_verify"),
            "true"
        );
        assert!(matches!(
            option(&s, "adbc.flight.sql.rpc.timeout_seconds.query"),
            Some(OptionValue::Double(v)) if (*v - 2.0).abs() < 1e-9
        ));
        assert!(!s.target.to_json().contains("s3cr3t"));
        assert!(s.secrets.iter().any(|v| v.contains("s3cr3t")));
    }

    #[test]
    fn generic_options_and_targets() {
        let c = config(serde_json::json!({
            "driver": "postgresql", "uri": "postgresql://u:p%40ss@db.example:5432/sales?sslpassword=x&application_name=a",
            "options": {"adbc.postgresql.batch_size_hint_bytes": 1024, "flag": true}
        }));
        let s = c.resolve(Kind::Adbc, None).expect("resolve");
        assert_eq!(s.driver.as_deref(), Some("postgresql"));
        assert!(s.secrets.contains(&"p@ss".to_owned()), "{:?}", s.secrets);
        assert!(matches!(
            option(&s, "adbc.postgresql.batch_size_hint_bytes"),
            Some(OptionValue::Int(1024))
        ));
        assert_eq!(text(&s, "flag"), "true");
        let target = s.target.to_json();
        assert!(
            target.contains("postgresql://u@db.example:5432/sales?application_name=a"),
            "{target}"
        );
        assert!(
            !target.contains("p%40ss") && !target.contains("sslpassword"),
            "{target}"
        );
        let e = config(serde_json::json!({"uri": "x"}))
            .resolve(Kind::Adbc, None)
            .unwrap_err();
        assert!(e.message().contains("`driver` is missing"), "{e}");
        let e = config(serde_json::json!({"driver": "d", "options": {"a": [1]}}))
            .resolve(Kind::Adbc, None)
            .unwrap_err();
        assert!(e.message().contains("`options.\"a\"`"), "{e}");
    }

    #[test]
    fn kinds_inferred_for_a_host_before_1_5() {
        let k = |name: &str, json: Json| Kind::of("", name, &config(json));
        assert_eq!(
            k("x", serde_json::json!({"driver": "sqlite"})).ok(),
            Some(Kind::Adbc)
        );
        assert_eq!(
            k("snowflake", serde_json::json!({})).ok(),
            Some(Kind::Snowflake)
        );
        assert_eq!(
            k("x", serde_json::json!({"account": "a"})).ok(),
            Some(Kind::Snowflake)
        );
        assert_eq!(
            k("x", serde_json::json!({"project_id": "p"})).ok(),
            Some(Kind::BigQuery)
        );
        assert_eq!(
            k("x", serde_json::json!({"uri": "grpc://h:1"})).ok(),
            Some(Kind::FlightSql)
        );
        assert!(k("x", serde_json::json!({})).is_err());
        assert_eq!(
            Kind::of("bigquery", "x", &Config::default()).ok(),
            Some(Kind::BigQuery)
        );
    }
}

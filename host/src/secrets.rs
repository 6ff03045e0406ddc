//! The secrets file: finding it, merging it, layering environment and arguments over it,
//! and keeping secret values out of everything the host prints.
//!
//! The format is Streamlit's: each connection is a `[connections.<name>]` table. Other
//! top-level keys are ignored (they are the app's own secrets, never handed to a plugin).
//!
//! Where the file is found: an explicit path (`--secrets`, `PLUGBOARD_SECRETS`) alone; else
//! the project file (`./.plugboard/secrets.toml`, then `./.streamlit/secrets.toml`) merged
//! over the user file (`~/.config/plugboard/secrets.toml`). Merging is per connection and
//! per key: a project file does not hide the user's other connections.
//!
//! Precedence for one connection's keys, highest first: explicit arguments, then
//! `PLUGBOARD_CONNECTIONS__<NAME>__<KEY>` environment variables, then the files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{parse_toml, read_text};
use crate::error::{Error, Result};

/// A secret value: prints as `***` in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; call only where it is handed to the driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The environment variable prefix for per-connection overrides.
pub const ENV_PREFIX: &str = "PLUGBOARD_CONNECTIONS__";

/// Connection sections merged from the secrets files.
#[derive(Clone, Default)]
pub struct Secrets {
    files: Vec<PathBuf>,
    connections: BTreeMap<String, toml::Table>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and files only: the values are secrets.
        f.debug_struct("Secrets")
            .field("files", &self.files)
            .field("connections", &self.connections.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The files to read, lowest precedence first, following the lookup rules above.
pub fn default_files(project_dir: &Path, user_config_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(dir) = user_config_dir {
        let user = dir.join("plugboard").join("secrets.toml");
        if user.is_file() {
            files.push(user);
        }
    }
    let project = [".plugboard/secrets.toml", ".streamlit/secrets.toml"]
        .iter()
        .map(|p| project_dir.join(p))
        .find(|p| p.is_file());
    files.extend(project);
    files
}

impl Secrets {
    /// Reads and merges files, later files winning per connection and key.
    pub fn load(files: &[PathBuf]) -> Result<Self> {
        let mut secrets = Secrets::default();
        for file in files {
            let text = read_text(file)?;
            secrets.merge_text(&text, file)?;
        }
        Ok(secrets)
    }

    /// Merges one file's text over what is already loaded.
    pub fn merge_text(&mut self, text: &str, path: &Path) -> Result<()> {
        let mut doc: toml::Table = parse_toml(text, path)?;
        self.files.push(path.to_path_buf());
        let Some(connections) = doc.remove("connections") else {
            return Ok(());
        };
        let toml::Value::Table(connections) = connections else {
            return Err(config_error(
                path,
                "`connections` must be a table of [connections.<name>] sections",
            ));
        };
        for (name, section) in connections {
            let toml::Value::Table(section) = section else {
                return Err(config_error(
                    path,
                    &format!("`connections.{name}` must be a table ([connections.{name}])"),
                ));
            };
            self.connections.entry(name).or_default().extend(section);
        }
        Ok(())
    }

    /// The files that were read, lowest precedence first.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Configured connection names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.connections.keys().map(String::as_str)
    }

    pub fn section(&self, name: &str) -> Option<&toml::Table> {
        self.connections.get(name)
    }
}

fn config_error(path: &Path, message: &str) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        message: message.to_owned(),
    }
}

/// Environment overrides: `PLUGBOARD_CONNECTIONS__PETS_DB__PASSWORD=…` sets `password` of
/// the connection whose name, upper-cased with `-` as `_`, is `PETS_DB`. A further `__`
/// nests (`…__QUERY__SSLMODE` sets `query.sslmode`).
#[derive(Debug, Clone, Default)]
pub struct EnvOverrides {
    by_connection: BTreeMap<String, Vec<(Vec<String>, toml::Value)>>,
}

impl EnvOverrides {
    pub fn from_env() -> Self {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut by_connection: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (key, value) in vars {
            let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let mut parts = rest.split("__");
            let Some(conn) = parts.next().filter(|c| !c.is_empty()) else {
                continue;
            };
            let path: Vec<String> = parts.map(str::to_ascii_lowercase).collect();
            if path.is_empty() || path.iter().any(String::is_empty) {
                continue;
            }
            by_connection
                .entry(conn.to_owned())
                .or_default()
                .push((path, parse_value(&value)));
        }
        Self { by_connection }
    }

    fn env_name(connection: &str) -> String {
        connection.to_ascii_uppercase().replace('-', "_")
    }

    /// Connections named only by the environment (lower-cased), for listings.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.by_connection.keys().map(|k| k.to_ascii_lowercase())
    }

    fn for_connection(&self, connection: &str) -> &[(Vec<String>, toml::Value)] {
        self.by_connection
            .get(&Self::env_name(connection))
            .map_or(&[], Vec::as_slice)
    }
}

/// Reads a value given as text (environment, `--set`): a TOML number, boolean, quoted
/// string, array or inline table when it is one, else the text itself. Quote a value to
/// keep it a string (`--set 'password="1234"'`).
pub fn parse_value(text: &str) -> toml::Value {
    let doc = format!("v = {text}");
    match toml::from_str::<toml::Table>(&doc)
        .ok()
        .and_then(|mut t| t.remove("v"))
    {
        Some(
            v @ (toml::Value::Integer(_)
            | toml::Value::Float(_)
            | toml::Value::Boolean(_)
            | toml::Value::String(_)
            | toml::Value::Array(_)
            | toml::Value::Table(_)),
        ) => v,
        _ => toml::Value::String(text.to_owned()),
    }
}

/// Sets `path` (dotted keys already split) in a table, creating sub-tables as needed.
pub fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(inner) = entry else {
            return;
        };
        t = inner;
    }
    t.insert(last.clone(), value);
}

/// A connection's table after precedence: files < environment < arguments.
/// `None` when no layer mentions the connection.
pub fn effective_table(
    name: &str,
    secrets: &Secrets,
    env: &EnvOverrides,
    overrides: &[(Vec<String>, toml::Value)],
) -> Option<toml::Table> {
    let from_env = env.for_connection(name);
    let base = secrets.section(name);
    if base.is_none() && from_env.is_empty() && overrides.is_empty() {
        return None;
    }
    let mut table = base.cloned().unwrap_or_default();
    for (path, value) in from_env.iter().chain(overrides) {
        set_path(&mut table, path, value.clone());
    }
    Some(table)
}

/// Key names treated as secret whatever the plugin declares.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "credential",
    "passphrase",
];

fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| k.contains(w))
}

/// Knows a connection's secret values and hides them.
#[derive(Clone, Default)]
pub struct Redactor {
    secret_keys: Vec<String>,
    /// Whether keys that look secret count too (for plugins that declare no config schema).
    heuristic: bool,
    values: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secret_keys", &self.secret_keys)
            .field("values", &format_args!("[{} hidden]", self.values.len()))
            .finish()
    }
}

impl Redactor {
    /// `secret_keys` are the plugin's declared secret keys; keys that look secret
    /// (`password`, `token`, ...) and passwords inside URLs are always included.
    pub fn new(table: &toml::Table, secret_keys: &[String]) -> Self {
        Self::build(table, secret_keys, true)
    }

    /// Exactly `secret_keys` (a plugin's config schema says which keys are secret), plus
    /// passwords inside URLs.
    pub fn exact(table: &toml::Table, secret_keys: &[String]) -> Self {
        Self::build(table, secret_keys, false)
    }

    fn build(table: &toml::Table, secret_keys: &[String], heuristic: bool) -> Self {
        let mut r = Redactor {
            secret_keys: secret_keys.to_vec(),
            heuristic,
            values: Vec::new(),
        };
        r.collect(table);
        // Longest first, so a secret that contains another is replaced whole.
        r.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        r.values.dedup();
        r
    }

    fn is_secret_key(&self, key: &str) -> bool {
        (self.heuristic && looks_secret(key)) || self.secret_keys.iter().any(|k| k == key)
    }

    fn collect(&mut self, table: &toml::Table) {
        for (k, v) in table {
            if self.is_secret_key(k) {
                self.collect_value(v);
            } else if let toml::Value::Table(t) = v {
                self.collect(t);
            } else if let toml::Value::String(s) = v
                && let Some(p) = url_password(s)
            {
                self.values.push(p.to_owned());
            }
        }
    }

    fn collect_value(&mut self, v: &toml::Value) {
        match v {
            toml::Value::String(s) if !s.is_empty() => {
                self.values.push(s.clone());
                if let Some(p) = url_password(s) {
                    self.values.push(p.to_owned());
                }
            }
            toml::Value::Integer(i) => self.values.push(i.to_string()),
            toml::Value::Float(f) => self.values.push(f.to_string()),
            toml::Value::Array(a) => a.iter().for_each(|v| self.collect_value(v)),
            toml::Value::Table(t) => t.values().for_each(|v| self.collect_value(v)),
            _ => {}
        }
    }

    /// Replaces every secret value in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for v in &self.values {
            // Very short values would blank out ordinary words; they are masked in
            // listings by key, which is what matters there.
            if v.len() >= 3 {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }

    /// A copy of the table fit for display: secret keys and URL passwords as `***`.
    pub fn redact_table(&self, table: &toml::Table) -> toml::Table {
        table
            .iter()
            .map(|(k, v)| {
                let shown = if self.is_secret_key(k) {
                    toml::Value::String("***".into())
                } else {
                    match v {
                        toml::Value::Table(t) => toml::Value::Table(self.redact_table(t)),
                        toml::Value::String(s) => toml::Value::String(self.redact(s)),
                        other => other.clone(),
                    }
                };
                (k.clone(), shown)
            })
            .collect()
    }
}

/// The password in `scheme://user:password@host/...`, if any.
pub fn url_password(s: &str) -> Option<&str> {
    let (_, rest) = s.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(files: &[(&str, &str)]) -> Secrets {
        let mut s = Secrets::default();
        for (name, text) in files {
            s.merge_text(text, Path::new(name)).expect("parse");
        }
        s
    }

    #[test]
    fn secret_prints_stars() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn files_merge_per_connection_and_key() {
        let s = secrets(&[
            (
                "user.toml",
                "[connections.a]\nurl = \"u\"\npassword = \"p\"\n[connections.b]\nurl = \"b\"\n",
            ),
            (
                "project.toml",
                "api_key = \"not a connection\"\n[connections.a]\nurl = \"project\"\n",
            ),
        ]);
        assert_eq!(s.names().collect::<Vec<_>>(), ["a", "b"]);
        let a = s.section("a").expect("a");
        assert_eq!(a["url"].as_str(), Some("project"));
        assert_eq!(
            a["password"].as_str(),
            Some("p"),
            "keys the project file lacks survive"
        );
    }

    #[test]
    fn precedence_is_arguments_then_env_then_files() {
        let s = secrets(&[(
            "s.toml",
            "[connections.pets-db]\nhost = \"file\"\nport = 1\nuser = \"file\"\n",
        )]);
        let env = EnvOverrides::from_vars([
            (
                "PLUGBOARD_CONNECTIONS__PETS_DB__HOST".to_owned(),
                "env".to_owned(),
            ),
            (
                "PLUGBOARD_CONNECTIONS__PETS_DB__PORT".to_owned(),
                "5432".to_owned(),
            ),
            (
                "PLUGBOARD_CONNECTIONS__PETS_DB__QUERY__SSLMODE".to_owned(),
                "require".to_owned(),
            ),
            (
                "PLUGBOARD_CONNECTIONS__OTHER__HOST".to_owned(),
                "x".to_owned(),
            ),
        ]);
        let args = vec![(vec!["host".to_owned()], toml::Value::String("arg".into()))];
        let t = effective_table("pets-db", &s, &env, &args).expect("table");
        assert_eq!(t["host"].as_str(), Some("arg"));
        assert_eq!(t["port"].as_integer(), Some(5432));
        assert_eq!(t["user"].as_str(), Some("file"));
        assert_eq!(t["query"]["sslmode"].as_str(), Some("require"));
        assert!(effective_table("missing", &s, &env, &[]).is_none());
    }

    #[test]
    fn values_from_text() {
        assert_eq!(parse_value("5432"), toml::Value::Integer(5432));
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(parse_value("\"5432\""), toml::Value::String("5432".into()));
        assert_eq!(
            parse_value("hello world"),
            toml::Value::String("hello world".into())
        );
        assert_eq!(
            parse_value("1979-05-27"),
            toml::Value::String("1979-05-27".into())
        );
    }

    #[test]
    fn redactor_hides_declared_and_obvious_secrets() {
        let t: toml::Table = toml::from_str(
            "url = \"postgresql://bob:s3cret@db/x\"\napi = \"tok-123\"\npassword = \"hunter2\"\nhost = \"db\"\n",
        )
        .expect("toml");
        let r = Redactor::new(&t, &["api".to_owned()]);
        let msg = r.redact("failed for bob:s3cret with tok-123 and hunter2 on db");
        assert_eq!(msg, "failed for bob:*** with *** and *** on db");
        let shown = r.redact_table(&t);
        assert_eq!(shown["url"].as_str(), Some("postgresql://bob:***@db/x"));
        assert_eq!(shown["api"].as_str(), Some("***"));
        assert_eq!(shown["password"].as_str(), Some("***"));
        assert_eq!(shown["host"].as_str(), Some("db"));
        assert!(!format!("{r:?}").contains("hunter2"));
    }
}

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
//! `PLUGBOARD_CONNECTIONS__<NAME>__<KEY>` environment variables, then the files. Values
//! given as text (environment, `--set`) take the type the plugin declares for the key: a
//! `password` declared a string stays exactly the text typed, `007`, `0x1F`, `1e3` or
//! `true` alike; an undeclared key is read by its look ([`parse_value`]).
//!
//! # What is secret
//!
//! A [`Redactor`] learns a connection's secret values from its table, and hides them in
//! listings and in every message the host prints (errors, logs, a plugin's own log records
//! and panics). A value is secret when it sits:
//!
//! * under a key the plugin declares secret (its config schema, or `secret_keys`);
//! * under a key that looks secret ([`looks_secret`]), at any depth: `password`,
//!   `create_engine_kwargs.connect_args.password`, `[connections.x.credentials]` (a whole
//!   table or array under such a key is secret);
//! * inside any string, whatever its key: the password of a URL's userinfo
//!   (`scheme://user:PASSWORD@host`), the whole userinfo of a web URL
//!   (`https://TOKEN@host`), and the value of a parameter whose name looks secret, in a URL
//!   query (`?sslpassword=…&sig=…&X-Amz-Signature=…`), a libpq DSN (`password=… `) or a
//!   connection string (`AccountKey=…;`).
//!
//! Every value is hidden in the forms a message may carry it: as is, percent-encoded and
//! -decoded, JSON-, Rust- and SQL-escaped. In listings a secret key's value is replaced
//! whole, whatever its length. In free text a value of four or more characters is replaced
//! wherever it occurs; a shorter one only where it stands as a word of its own (not inside
//! a longer run of letters and digits), so that a one-letter password does not blank every
//! such letter of a message, which would also give it away. URLs in free text are scrubbed
//! by their shape too, so a credential the host never saw (a presigned URL in a driver's
//! error) is hidden as well.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use plugboard_api::KeyType;

use super::plugins::{parse_toml, read_text};
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
/// nests (`…__QUERY__SSLMODE` sets `query.sslmode`). Values are kept as text until the
/// plugin's schema says what type each key is (see [`SetValue`]).
#[derive(Clone, Default)]
pub struct EnvOverrides {
    by_connection: BTreeMap<String, Vec<(Vec<String>, SetValue)>>,
    /// Variables whose key nests deeper than [`MAX_KEY_DEPTH`], by connection: refused
    /// when that connection is resolved (building the table would overflow the stack).
    too_deep: BTreeMap<String, usize>,
}

/// How many levels a key from the environment or `--set` may nest (`a.b.c` is 3): far
/// more than any connector's config, far fewer than would overflow the stack.
pub const MAX_KEY_DEPTH: usize = 64;

impl fmt::Debug for EnvOverrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Connection names only: the values may be secrets.
        f.debug_struct("EnvOverrides")
            .field(
                "connections",
                &self.by_connection.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
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
        let mut too_deep = BTreeMap::new();
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
            if path.len() > MAX_KEY_DEPTH {
                let deepest = too_deep.entry(conn.to_owned()).or_insert(0);
                *deepest = (*deepest).max(path.len());
                continue;
            }
            by_connection
                .entry(conn.to_owned())
                .or_default()
                .push((path, SetValue::Text(value)));
        }
        Self {
            by_connection,
            too_deep,
        }
    }

    /// Refuses a connection one of whose variables nests deeper than [`MAX_KEY_DEPTH`].
    pub fn check_depth(&self, connection: &str) -> Result<(), String> {
        match self.too_deep.get(&Self::env_name(connection)) {
            None => Ok(()),
            Some(depth) => Err(format!(
                "{ENV_PREFIX}{}__…: the key nests {depth} tables deep; at most {MAX_KEY_DEPTH}",
                Self::env_name(connection)
            )),
        }
    }

    fn env_name(connection: &str) -> String {
        connection.to_ascii_uppercase().replace('-', "_")
    }

    /// Connections named only by the environment (lower-cased), for listings.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.by_connection.keys().map(|k| k.to_ascii_lowercase())
    }

    fn for_connection(&self, connection: &str) -> &[(Vec<String>, SetValue)] {
        self.by_connection
            .get(&Self::env_name(connection))
            .map_or(&[], Vec::as_slice)
    }
}

/// A connection key's value from outside the files. `Debug` hides it: it may be a secret.
#[derive(Clone, PartialEq)]
pub enum SetValue {
    /// Text from the environment or `--set`, typed by the key's declared type.
    Text(String),
    /// A value its caller typed already (`ConnectOptions::set` in the library).
    Value(toml::Value),
}

impl SetValue {
    /// The value for a key of the `declared` type (`None`: the plugin does not say). Text
    /// for a key declared a string is that exact text: a password `0x1F`, `1979-05-27`,
    /// `1e3`, `true` or `"quoted"` is what was typed, quotes included. Otherwise text is
    /// read by its look, as [`parse_value`] does; the schema check then names a key whose
    /// value has the wrong type.
    pub fn typed(&self, declared: Option<KeyType>) -> toml::Value {
        match self {
            SetValue::Value(v) => v.clone(),
            SetValue::Text(t) if declared == Some(KeyType::String) => {
                toml::Value::String(t.clone())
            }
            SetValue::Text(t) => parse_value(t),
        }
    }
}

impl From<toml::Value> for SetValue {
    fn from(v: toml::Value) -> Self {
        SetValue::Value(v)
    }
}

impl fmt::Debug for SetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetValue::Text(_) => f.write_str("Text(***)"),
            SetValue::Value(_) => f.write_str("Value(***)"),
        }
    }
}

/// Reads a value given as text for a key whose type is not declared: a TOML number,
/// boolean, quoted string, array or inline table when it is one, else the text itself.
/// Quote a value to keep it a string (`--set 'token="1234"'`); a key the plugin declares
/// a string needs no quotes (see [`SetValue::typed`]).
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

/// A connection's table after precedence: files < environment < arguments. `declared`
/// gives the type the plugin declares for a key path, if any, to type text values by
/// ([`SetValue::typed`]); pass `|_| None` before the plugin is known. `None` when no layer
/// mentions the connection.
pub fn effective_table(
    name: &str,
    secrets: &Secrets,
    env: &EnvOverrides,
    overrides: &[(Vec<String>, SetValue)],
    declared: impl Fn(&[String]) -> Option<KeyType>,
) -> Option<toml::Table> {
    let from_env = env.for_connection(name);
    let base = secrets.section(name);
    if base.is_none() && from_env.is_empty() && overrides.is_empty() {
        return None;
    }
    let mut table = base.cloned().unwrap_or_default();
    for (path, value) in from_env.iter().chain(overrides) {
        set_path(&mut table, path, value.typed(declared(path)));
    }
    Some(table)
}

// ---------------------------------------------------------------------------------------
// Which names are secret

/// Words that make a name secret wherever they appear in it (separators ignored):
/// `sslpassword`, `client_secret`, `aws_secret_access_key`, `X-Amz-Security-Token`,
/// `private_key_id`. `token` anywhere also catches `token_uri`: a false positive that only
/// hides a harmless value.
const SECRET_ANYWHERE: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "credential",
    "apikey",
    "privatekey",
    "accesskey",
    // Azure's `connection_string` (`…;AccountKey=…`), ODBC's `conn_str`: whole strings of
    // settings, secrets among them.
    "connectionstring",
    "connstr",
    // ADBC Flight SQL's `adbc.flight.sql.authorization_header` (`Bearer …`).
    "authorizationheader",
];

/// Words that make a name secret as its last word: `auth`, `basic_auth`, `sig`,
/// `X-Amz-Signature`, `sas`, `pin`. (`auth_source`, `signature_version` are not secret.)
const SECRET_LAST: &[&str] = &[
    "auth",
    "authorization",
    "sig",
    "signature",
    "sas",
    "cookie",
    "pass",
    "pw",
    "jwt",
    "bearer",
    "pin",
];

/// What comes before `_key` in names of keys that are data, not secrets: `primary_key`,
/// `partition_key`, `sort_key`.
const DATA_KEYS: &[&str] = &[
    "primary",
    "foreign",
    "partition",
    "sort",
    "shard",
    "cluster",
    "distribution",
    "hash",
    "range",
    "join",
    "unique",
    "dedup",
    "group",
    "order",
    "index",
    "cache",
];

/// Whether a name (a config key, a URL query parameter, a DSN keyword) names a secret,
/// case-insensitively, by its words (split at `_`, `-`, `.`, and camelCase):
///
/// * [`SECRET_ANYWHERE`] words anywhere: `password`, `pwd`, `secret`, `token`,
///   `credential(s)`, `api_key`, `private_key`, `access_key`, `passphrase`;
/// * a last word in [`SECRET_LAST`] (`auth`, `sig`, `signature`, `sas`, `pin`, …), or one that
///   ends in `key` (`key`, `api_key`, `AccountKey`, `sslkey`), except data keys such as
///   `primary_key` or `partition_key` ([`DATA_KEYS`]);
/// * the word `sas` anywhere (`sas_url`).
///
/// `key_column`, `keys`, `key_file`, `keyspace` and `auth_source` are not secret: a key's
/// *name* or a path to a key file is not the key. Hiding too much costs a `***` where a
/// harmless value was; hiding too little leaks, so the rules lean to hiding.
pub fn looks_secret(name: &str) -> bool {
    let words = name_words(name);
    let Some(last) = words.last() else {
        return false;
    };
    let squashed = words.concat();
    if SECRET_ANYWHERE.iter().any(|w| squashed.contains(w)) {
        return true;
    }
    if SECRET_LAST.contains(&last.as_str()) || words.iter().any(|w| w == "sas") {
        return true;
    }
    let data = words.len() >= 2 && DATA_KEYS.contains(&words[words.len() - 2].as_str());
    last.ends_with("key") && !data
}

/// A name's words, lower-cased: split at anything not a letter or digit, and where a
/// lower-case letter or digit is followed by an upper-case one (`accessToken`).
fn name_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut after_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            after_lower = false;
            continue;
        }
        if c.is_uppercase() && after_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.extend(c.to_lowercase());
        after_lower = c.is_lowercase() || c.is_numeric();
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

// ---------------------------------------------------------------------------------------
// Secrets found by their place inside a string

/// Whether a URL scheme is a web one, whose lone userinfo is a credential
/// (`https://TOKEN@host`). A database URL's lone userinfo is a user name.
fn is_web_scheme(scheme: &str) -> bool {
    let last = scheme.rsplit('+').next().unwrap_or(scheme);
    ["http", "https", "ws", "wss", "ftp", "ftps"]
        .iter()
        .any(|s| last.eq_ignore_ascii_case(s))
}

/// Where a URL (or a token holding one) ends in text.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>')
}

/// Byte ranges of `text` that hold a secret by their place: URL userinfo passwords (read
/// both as RFC 3986 does and as SQLAlchemy does, up to the first `@`, so an unescaped `/`
/// or `?` in a password is covered), a web URL's lone userinfo, and the values of
/// parameters whose name looks secret. An unquoted parameter value ends where `stop` says
/// (see [`value_end`]); a quoted one at its closing quote.
fn secret_spans(text: &str, stop: fn(char) -> bool) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    url_spans(text, &mut spans);
    param_spans(text, stop, &mut spans);
    spans.retain(|r| !r.is_empty());
    spans
}

fn url_spans(text: &str, spans: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let at = from + found;
        from = at + 3;
        // Just past the last character that cannot be in a scheme (which may be wider
        // than one byte).
        let scheme_start = text[..at]
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(p, c)| p + c.len_utf8());
        let scheme = &text[scheme_start..at];
        if scheme.is_empty() {
            continue;
        }
        let start = at + 3;
        let end = text[start..]
            .find(ends_url)
            .map_or(text.len(), |p| start + p);
        let rest = &text[start..end];
        // RFC 3986: the authority ends at the first `/`, `?` or `#`; the userinfo is what
        // comes before its last `@`.
        let authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at_sign) = rest[..authority].rfind('@') {
            match rest[..at_sign].find(':') {
                Some(colon) => spans.push(start + colon + 1..start + at_sign),
                None if is_web_scheme(scheme) => spans.push(start..start + at_sign),
                None => {}
            }
        }
        // SQLAlchemy: a user of no `:` or `/`, then `:password` up to the first `@`.
        if let Some(colon) = rest.find([':', '/'])
            && rest[colon..].starts_with(':')
            && let Some(at_sign) = rest[colon + 1..].find('@')
        {
            spans.push(start + colon + 1..start + colon + 1 + at_sign);
        }
    }
}

fn param_spans(text: &str, stop: fn(char) -> bool, spans: &mut Vec<Range<usize>>) {
    let is_name = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '%');
    for (eq, _) in text.match_indices('=') {
        // The name, with spaces allowed around `=` (libpq: `password = x`).
        let before = text[..eq].trim_end_matches(' ');
        let name_start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !is_name(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let name = &before[name_start..];
        if name.is_empty() || !looks_secret(&percent_decode(name).unwrap_or_default()) {
            continue;
        }
        let after = &text[eq + 1..];
        let value_start = eq + 1 + (after.len() - after.trim_start_matches(' ').len());
        let value = &text[value_start..];
        match value.chars().next() {
            Some(q @ ('\'' | '"')) => {
                // Quoted (libpq, connection strings): up to the unescaped closing quote.
                let mut escaped = false;
                let close = value[1..].char_indices().find(|(_, c)| {
                    let close = !escaped && *c == q;
                    escaped = !escaped && *c == '\\';
                    close
                });
                let end = close.map_or(value.len(), |(i, _)| i + 1);
                spans.push(value_start + 1..value_start + end);
            }
            _ => {
                let end = value.find(stop).unwrap_or(value.len());
                spans.push(value_start..value_start + end);
            }
        }
    }
}

/// Where a parameter's value ends in free text and in URLs: at a space, a quote, `&` or `;`.
fn ends_param(c: char) -> bool {
    ends_url(c) || matches!(c, '&' | ';')
}

/// Where an unquoted parameter value ends in a config string, by the string's shape: in a
/// URL's query at `&` (see [`ends_param`]); in a connection string (`k=v;k=v`, whose
/// values may hold spaces) at `;`; in a libpq DSN (`k=v k=v`, whose values may hold `&`
/// and `;`) at a space.
fn value_end(s: &str) -> fn(char) -> bool {
    if s.contains("://") {
        ends_param
    } else if s.contains(';') {
        |c| c == ';'
    } else {
        ends_url
    }
}

/// `%XX` sequences decoded, if there are any and the result is UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes every byte `keep` does not accept, with upper-case hex digits.
fn percent_encode(s: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The forms a message may carry `value` in: as is, percent-encoded (strictly, and only
/// what URLs must escape; either hex case; `+` for a space), percent-decoded, escaped as
/// JSON (also ASCII-only, as Python writes it), as Rust's `{:?}`, and as a SQL literal.
fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_owned()];
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    let strict = percent_encode(value, unreserved);
    out.push(strict.replace("%20", "+"));
    out.push(lower_hex_escapes(&strict));
    out.push(strict);
    let minimal = percent_encode(value, |b| {
        b.is_ascii_graphic()
            && !matches!(
                b,
                b'%' | b':' | b'/' | b'?' | b'#' | b'@' | b'&' | b'=' | b'+'
            )
    });
    out.push(lower_hex_escapes(&minimal));
    out.push(minimal);
    if let Some(decoded) = percent_decode(value) {
        out.push(decoded);
    }
    if value.contains('+')
        && let Some(decoded) = percent_decode(&value.replace('+', " "))
    {
        out.push(decoded);
    }
    if let Ok(json) = serde_json::to_string(value) {
        let json = json[1..json.len() - 1].to_owned();
        let mut ascii = String::with_capacity(json.len());
        for c in json.chars() {
            if c.is_ascii() {
                ascii.push(c);
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    ascii.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
        out.push(ascii.clone());
        out.push(upper_unicode_escapes(&ascii));
        out.push(json);
    }
    let debug = format!("{value:?}");
    out.push(debug[1..debug.len() - 1].to_owned());
    out.push(value.replace('\'', "''"));
    out.retain(|f| !f.is_empty());
    out
}

fn lower_hex_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
}

fn upper_unicode_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\u") {
        out.push_str(&rest[..i + 2]);
        let hex: String = rest[i + 2..].chars().take(4).collect();
        out.push_str(&hex.to_ascii_uppercase());
        rest = &rest[i + 2 + hex.len()..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------
// The redactor

/// What replaces a secret, unless a secret contains `*`.
pub const MASK: &str = "***";

/// Values shorter than this (in characters) are replaced in free text only where they
/// stand as a word of their own.
const SHORT: usize = 4;

/// Knows a connection's secret values and hides them.
#[derive(Clone)]
pub struct Redactor {
    secret_keys: Vec<String>,
    /// Every secret value in every form, longest first, so that a secret containing
    /// another is replaced whole.
    values: Vec<String>,
    /// `***`, or a mask made of a character no secret contains: a mask must never spell
    /// a secret, nor join with the text around it into one.
    mask: String,
}

impl Default for Redactor {
    fn default() -> Self {
        Self {
            secret_keys: Vec::new(),
            values: Vec::new(),
            mask: MASK.to_owned(),
        }
    }
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
    /// The redactor of a connection's table. `secret_keys` are the keys its plugin
    /// declares secret (a name matches at any depth; a dotted path, such as
    /// `connect_args.password`, matches that place); keys that look secret
    /// ([`looks_secret`]) and secrets inside strings count too (see the module docs).
    pub fn new(table: &toml::Table, secret_keys: &[String]) -> Self {
        let mut r = Redactor {
            secret_keys: secret_keys.to_vec(),
            ..Self::default()
        };
        let mut found = Vec::new();
        r.collect(table, "", &mut found);
        for v in &found {
            r.values.extend(forms(v));
        }
        r.finish();
        r
    }

    /// What this redactor puts in place of a secret.
    pub fn mask(&self) -> &str {
        &self.mask
    }

    /// Adds `other`'s secrets to this one's.
    pub fn merge(&mut self, other: &Redactor) {
        let new: Vec<&String> = other
            .values
            .iter()
            .filter(|v| !self.values.contains(v))
            .collect();
        if new.is_empty() {
            return;
        }
        self.values.extend(new.into_iter().cloned());
        for k in &other.secret_keys {
            if !self.secret_keys.contains(k) {
                self.secret_keys.push(k.clone());
            }
        }
        self.finish();
    }

    fn finish(&mut self) {
        self.values
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.values.dedup();
        self.mask = choose_mask(&self.values);
    }

    fn is_secret_key(&self, key: &str, path: &str) -> bool {
        looks_secret(key) || self.secret_keys.iter().any(|k| k == key || k == path)
    }

    fn collect(&self, table: &toml::Table, prefix: &str, found: &mut Vec<String>) {
        for (k, v) in table {
            let path = join_path(prefix, k);
            if self.is_secret_key(k, &path) {
                collect_secret(v, found);
            } else {
                self.collect_shown(v, &path, found);
            }
        }
    }

    fn collect_shown(&self, v: &toml::Value, path: &str, found: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => self.collect(t, path, found),
            toml::Value::Array(a) => a.iter().for_each(|v| self.collect_shown(v, path, found)),
            toml::Value::String(s) => collect_embedded(s, found),
            _ => {}
        }
    }

    /// Replaces every secret in `text` with the mask: the values this redactor knows (see
    /// the module docs for short ones), and URL credentials and secret-named parameters by
    /// their shape.
    pub fn redact(&self, text: &str) -> String {
        // Each pass only turns text into masks, and a mask holds no character of any
        // secret, so this settles; a second pass catches a short secret that a mask next
        // to it made a word of its own.
        let mut out = self.pass(text);
        for _ in 0..8 {
            let next = self.pass(&out);
            if next == out {
                break;
            }
            out = next;
        }
        if out != text {
            let twice = self.mask.repeat(2);
            while out.contains(&twice) {
                out = out.replace(&twice, &self.mask);
            }
        }
        out
    }

    fn pass(&self, text: &str) -> String {
        let replaced = self.replace_values(text);
        let spans = secret_spans(&replaced, ends_param);
        mask_spans(&replaced, spans, &self.mask)
    }

    fn replace_values(&self, text: &str) -> String {
        if self.values.is_empty() {
            return text.to_owned();
        }
        let mut firsts = [false; 256];
        for v in &self.values {
            firsts[usize::from(v.as_bytes()[0])] = true;
        }
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while let Some(c) = text[i..].chars().next() {
            let rest = &text[i..];
            let hit = firsts[usize::from(rest.as_bytes()[0])]
                .then(|| {
                    self.values.iter().find(|v| {
                        rest.starts_with(v.as_str())
                            && stands_alone(
                                v,
                                out.chars().next_back(),
                                rest[v.len()..].chars().next(),
                            )
                    })
                })
                .flatten();
            match hit {
                Some(v) => {
                    out.push_str(&self.mask);
                    i += v.len();
                }
                None => {
                    out.push(c);
                    i += c.len_utf8();
                }
            }
        }
        out
    }

    /// A copy of the table fit for display: a secret key's value (of any type, a whole
    /// table or array included) is the mask; other strings are redacted as text.
    pub fn redact_table(&self, table: &toml::Table) -> toml::Table {
        self.redact_table_at(table, "")
    }

    fn redact_table_at(&self, table: &toml::Table, prefix: &str) -> toml::Table {
        table
            .iter()
            .map(|(k, v)| {
                let path = join_path(prefix, k);
                let shown = if self.is_secret_key(k, &path) {
                    toml::Value::String(self.mask.clone())
                } else {
                    self.redact_shown(v, &path)
                };
                (k.clone(), shown)
            })
            .collect()
    }

    fn redact_shown(&self, v: &toml::Value, path: &str) -> toml::Value {
        match v {
            toml::Value::Table(t) => toml::Value::Table(self.redact_table_at(t, path)),
            toml::Value::Array(a) => {
                toml::Value::Array(a.iter().map(|v| self.redact_shown(v, path)).collect())
            }
            toml::Value::String(s) => toml::Value::String(self.redact(s)),
            toml::Value::Boolean(_) => v.clone(),
            other => {
                // A number or date that equals a secret (a PIN in `port`) is one.
                let text = other.to_string();
                if self.values.contains(&text) {
                    toml::Value::String(self.mask.clone())
                } else {
                    other.clone()
                }
            }
        }
    }
}

fn join_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Everything under a secret key: strings (and what they hold), numbers and dates; not
/// booleans (`true` is no secret, and hiding every "true" would say nothing).
fn collect_secret(v: &toml::Value, found: &mut Vec<String>) {
    match v {
        toml::Value::String(s) => {
            found.push(s.clone());
            collect_embedded(s, found);
        }
        toml::Value::Integer(i) => found.push(i.to_string()),
        toml::Value::Float(f) => {
            found.push(f.to_string());
            found.push(format!("{f:?}"));
            found.push(v.to_string());
        }
        toml::Value::Datetime(d) => found.push(d.to_string()),
        toml::Value::Boolean(_) => {}
        toml::Value::Array(a) => a.iter().for_each(|v| collect_secret(v, found)),
        toml::Value::Table(t) => t.values().for_each(|v| collect_secret(v, found)),
    }
}

/// The secrets inside a string by their place (URL userinfo, secret-named parameters),
/// raw and unescaped.
fn collect_embedded(s: &str, found: &mut Vec<String>) {
    for span in secret_spans(s, value_end(s)) {
        let value = &s[span];
        found.push(value.to_owned());
        if value.contains('\\') {
            found.push(
                value
                    .replace("\\'", "'")
                    .replace("\\\"", "\"")
                    .replace("\\\\", "\\"),
            );
        }
    }
}

/// Whether a match of `value` between `before` and `after` is a secret to replace: always
/// for a long value; for a short one, only where it is not part of a longer word.
fn stands_alone(value: &str, before: Option<char>, after: Option<char>) -> bool {
    if value.chars().count() >= SHORT {
        return true;
    }
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let first = value.chars().next();
    let last = value.chars().next_back();
    let joined = (word(first) && word(before)) || (word(last) && word(after));
    !joined
}

fn mask_spans(text: &str, mut spans: Vec<Range<usize>>, mask: &str) -> String {
    if spans.is_empty() {
        return text.to_owned();
    }
    spans.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in spans {
        if r.end <= at {
            continue;
        }
        let start = r.start.max(at);
        out.push_str(&text[at..start]);
        out.push_str(mask);
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

/// `***`, unless a secret holds a `*`: then three of the first character (a symbol, never
/// a letter or digit) that no secret holds.
fn choose_mask(values: &[String]) -> String {
    let unused = |c: &char| !values.iter().any(|v| v.contains(*c));
    [
        '*', '#', '~', '^', '!', '?', '+', '=', '@', '$', '%', '&', '|', '/', ':', ';',
    ]
    .into_iter()
    .chain((0x2580..0x2600).filter_map(char::from_u32))
    .chain((0x2190..0x2580).filter_map(char::from_u32))
    .find(unused)
    .map_or_else(|| MASK.to_owned(), |c| c.to_string().repeat(3))
}

// ---------------------------------------------------------------------------------------
// What a plugin says on its own

/// Every connection's secrets, by the name of the plugin that was handed them.
static BY_PLUGIN: RwLock<BTreeMap<String, Redactor>> = RwLock::new(BTreeMap::new());

/// Remembers a connection's secrets under its plugin's name, before the plugin is handed
/// them, so that what the plugin says outside a connection's calls (its log records) is
/// redacted too: see [`redact_plugin_text`].
pub fn register_plugin_secrets(plugin: &str, redactor: &Redactor) {
    let mut all = BY_PLUGIN.write().unwrap_or_else(|p| p.into_inner());
    all.entry(plugin.to_owned()).or_default().merge(redactor);
}

/// `text` from `plugin` with the secrets of every connection it was handed redacted (and
/// URL credentials by their shape, even if the plugin was handed none).
pub fn redact_plugin_text(plugin: &str, text: &str) -> String {
    let all = BY_PLUGIN.read().unwrap_or_else(|p| p.into_inner());
    match all.get(plugin) {
        Some(r) => r.redact(text),
        None => Redactor::default().redact(text),
    }
}

/// A plugin's message that is redacted when it is displayed, so a log record the
/// subscriber drops costs nothing.
pub struct PluginText<'a> {
    pub plugin: &'a str,
    pub text: &'a str,
}

impl fmt::Display for PluginText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_plugin_text(self.plugin, self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_after_a_wide_character_is_still_scanned() {
        // Found by the secrets_toml fuzz target: slicing inside a 3-byte character panicked.
        let text = "postgres\u{fffd}ql://user:p%40s@host:5432/db?sslmode=require&sslpassword=x";
        let spans = secret_spans(text, |c| c.is_whitespace());
        assert!(
            spans
                .iter()
                .all(|r| text.is_char_boundary(r.start) && text.is_char_boundary(r.end))
        );
        let hidden: Vec<&str> = spans.iter().map(|r| &text[r.clone()]).collect();
        assert!(hidden.contains(&"p%40s"), "{hidden:?}");
    }

    fn secrets(files: &[(&str, &str)]) -> Secrets {
        let mut s = Secrets::default();
        for (name, text) in files {
            s.merge_text(text, Path::new(name)).expect("parse");
        }
        s
    }

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).expect("toml")
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

    fn env(vars: &[(&str, &str)]) -> EnvOverrides {
        EnvOverrides::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn precedence_is_arguments_then_env_then_files() {
        let s = secrets(&[(
            "s.toml",
            "[connections.pets-db]\nhost = \"file\"\nport = 1\nuser = \"file\"\n",
        )]);
        let env = env(&[
            ("PLUGBOARD_CONNECTIONS__PETS_DB__HOST", "env"),
            ("PLUGBOARD_CONNECTIONS__PETS_DB__PORT", "5432"),
            ("PLUGBOARD_CONNECTIONS__PETS_DB__QUERY__SSLMODE", "require"),
            ("PLUGBOARD_CONNECTIONS__OTHER__HOST", "x"),
        ]);
        let args = vec![(vec!["host".to_owned()], SetValue::Text("arg".into()))];
        let t = effective_table("pets-db", &s, &env, &args, |_| None).expect("table");
        assert_eq!(t["host"].as_str(), Some("arg"));
        assert_eq!(t["port"].as_integer(), Some(5432));
        assert_eq!(t["user"].as_str(), Some("file"));
        assert_eq!(t["query"]["sslmode"].as_str(), Some("require"));
        assert!(effective_table("missing", &s, &env, &[], |_| None).is_none());
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
        let deep = "[".repeat(100_000);
        assert_eq!(parse_value(&deep), toml::Value::String(deep.clone()));
    }

    #[test]
    fn text_for_a_key_declared_a_string_is_kept_exactly() {
        let s = Secrets::default();
        let declared = |path: &[String]| match path.join(".").as_str() {
            "password" | "user" => Some(KeyType::String),
            "port" => Some(KeyType::Integer),
            _ => None,
        };
        for text in [
            "0x1F",
            "1979-05-27",
            "1e3",
            "true",
            "007",
            "\"q\"",
            "[1]",
            "{a=1}",
            "5432",
        ] {
            let env = env(&[("PLUGBOARD_CONNECTIONS__DB__PASSWORD", text)]);
            let t = effective_table("db", &s, &env, &[], declared).expect("table");
            assert_eq!(t["password"].as_str(), Some(text), "env {text}");
            let set = [(vec!["user".to_owned()], SetValue::Text(text.to_owned()))];
            let t =
                effective_table("db", &s, &EnvOverrides::default(), &set, declared).expect("table");
            assert_eq!(t["user"].as_str(), Some(text), "--set {text}");
        }
        // Undeclared and non-string keys keep reading text by its look.
        let env = env(&[
            ("PLUGBOARD_CONNECTIONS__DB__PORT", "5432"),
            ("PLUGBOARD_CONNECTIONS__DB__TOKEN", "0x1F"),
            ("PLUGBOARD_CONNECTIONS__DB__QUERY__PASSWORD", "1e3"),
        ]);
        let t = effective_table("db", &s, &env, &[], declared).expect("table");
        assert_eq!(t["port"].as_integer(), Some(5432));
        assert_eq!(t["token"].as_integer(), Some(31));
        assert_eq!(t["query"]["password"].as_float(), Some(1000.0));
        // A value the library's caller typed stays as typed.
        let set = [(
            vec!["password".to_owned()],
            SetValue::from(toml::Value::Integer(7)),
        )];
        let t = effective_table("db", &s, &EnvOverrides::default(), &set, declared).expect("t");
        assert_eq!(t["password"].as_integer(), Some(7));
    }

    #[test]
    fn overrides_hide_their_values_in_debug() {
        let e = env(&[("PLUGBOARD_CONNECTIONS__DB__PASSWORD", "S3cr3t-env")]);
        let shown = format!("{e:?} {:?}", SetValue::Text("S3cr3t-set".into()));
        assert!(!shown.contains("S3cr3t"), "{shown}");
        assert!(shown.contains("DB"), "{shown}");
    }

    #[test]
    fn names_that_look_secret() {
        for name in [
            "password",
            "PASSWORD",
            "passwd",
            "pwd",
            "db_pwd",
            "sslpassword",
            "secret",
            "client_secret",
            "aws_secret_access_key",
            "token",
            "access_token",
            "accessToken",
            "X-Amz-Security-Token",
            "key",
            "api_key",
            "apiKey",
            "api-key",
            "private_key",
            "private_key_id",
            "AccountKey",
            "sslkey",
            "credentials",
            "credential",
            "X-Amz-Credential",
            "auth",
            "basic_auth",
            "Authorization",
            "sas",
            "sas_url",
            "sig",
            "X-Amz-Signature",
            "passphrase",
            "cookie",
            "SUPABASE_KEY",
            "motherduck_token",
            "private_key_file_pwd",
            "client_secret",
            "account_key",
            "connection_string",
            "AZURE_STORAGE_CONNECTION_STRING",
            "conn_str",
            "adbc.flight.sql.authorization_header",
            "adbc.snowflake.sql.client_option.jwt_private_key_pkcs8_value",
            "adbc.snowflake.sql.client_option.auth_token",
        ] {
            assert!(looks_secret(name), "{name} should look secret");
        }
        for name in [
            "key_column",
            "keys",
            "key_file",
            "keyspace",
            "primary_key",
            "partition_key",
            "sort_key",
            "auth_source",
            "authentication",
            "signature_version",
            "host",
            "user",
            "username",
            "database",
            "url",
            "sslmode",
            "sslrootcert",
            "application_name",
            "",
        ] {
            assert!(!looks_secret(name), "{name} should not look secret");
        }
    }

    #[test]
    fn redactor_hides_declared_and_obvious_secrets() {
        let t = table(
            "url = \"postgresql://bob:s3cret@db/x\"\napi = \"tok-123\"\npassword = \"hunter2\"\nhost = \"db\"\n",
        );
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

    /// Every place a secret can sit, each value marked `S3cr3t`.
    const EVERYWHERE: &str = r#"
        url = "postgresql://bob:S3cr3t-url@db:5432/x?sslmode=require&sslpassword=S3cr3t-sslpw"
        odd = "postgresql://bob:S3cr3t/with?slash@db/x"
        endpoint = "https://api.example.com/v1?access_token=S3cr3t-qs&X-Amz-Signature=S3cr3t-sig&ok=1"
        web = "https://S3cr3t-ghp@github.com/o/r.git"
        dsn = "host=db password=S3cr3t-dsn dbname=x"
        quoted_dsn = "host=db password = 'S3cr3t q\\'uote' dbname=x"
        azure = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=S3cr3t-az==;EndpointSuffix=core"
        declared = "S3cr3t-declared"
        Api_Token = "S3cr3t-token"
        auth = "S3cr3t-auth"
        pin = 271828
        mirrors = ["https://u:S3cr3t-arr@m.example.com/", "plain"]
        servers = [{ host = "a", password = "S3cr3t-aot" }]
        key_column = "id"
        host = "db"
        [create_engine_kwargs.connect_args]
        password = "S3cr3t-kw"
        sslmode = "require"
        [credentials]
        client_id = "S3cr3t-cid"
        nested = { deep = "S3cr3t-deep", n = 4242 }
    "#;

    #[test]
    fn every_place_a_secret_sits_is_hidden_in_listings() {
        let t = table(EVERYWHERE);
        let r = Redactor::new(&t, &["declared".to_owned(), "pin".to_owned()]);
        let shown = toml::to_string(&r.redact_table(&t)).expect("toml");
        assert!(!shown.contains("S3cr3t"), "{shown}");
        assert!(
            !shown.contains("271828") && !shown.contains("4242"),
            "{shown}"
        );
        for kept in [
            "sslmode=require",
            "postgresql://bob:***@db:5432/x",
            "ok=1",
            "host=db",
            "dbname=x",
            "AccountName=a",
            "key_column = \"id\"",
            "host = \"db\"",
            "plain",
        ] {
            assert!(shown.contains(kept), "{kept} missing from {shown}");
        }
        let shown = r.redact_table(&t);
        assert_eq!(shown["credentials"].as_str(), Some("***"), "a whole table");
        assert_eq!(
            shown["create_engine_kwargs"]["connect_args"]["password"].as_str(),
            Some("***")
        );
        assert_eq!(
            shown["create_engine_kwargs"]["connect_args"]["sslmode"].as_str(),
            Some("require")
        );
        assert_eq!(
            shown["web"].as_str(),
            Some("https://***@github.com/o/r.git")
        );
    }

    #[test]
    fn every_place_a_secret_sits_is_hidden_in_messages() {
        let t = table(EVERYWHERE);
        let r = Redactor::new(&t, &["declared".to_owned()]);
        for secret in [
            "S3cr3t-url",
            "S3cr3t/with?slash",
            "S3cr3t-sslpw",
            "S3cr3t-qs",
            "S3cr3t-sig",
            "S3cr3t-ghp",
            "S3cr3t-dsn",
            "S3cr3t q'uote",
            "S3cr3t-az==",
            "S3cr3t-declared",
            "S3cr3t-token",
            "S3cr3t-auth",
            "S3cr3t-arr",
            "S3cr3t-aot",
            "S3cr3t-kw",
            "S3cr3t-cid",
            "S3cr3t-deep",
        ] {
            let msg = r.redact(&format!("driver said: {secret}; bye"));
            assert_eq!(msg, "driver said: ***; bye", "{secret}");
        }
    }

    #[test]
    fn values_are_hidden_in_every_form() {
        let t = table(r#"password = "p@ss w/\"q\"é""#);
        let r = Redactor::new(&t, &[]);
        for form in [
            "p@ss w/\"q\"é",
            "p%40ss%20w%2F%22q%22%C3%A9",
            "p%40ss+w%2F%22q%22%C3%A9",
            "p%40ss%20w%2f%22q%22%c3%a9",
            "p%40ss%20w%2F\"q\"%C3%A9",
            r#"p@ss w/\"q\"é"#,
            r#"p@ss w/\"q\"\u00e9"#,
        ] {
            let msg = r.redact(&format!("<{form}>"));
            assert_eq!(msg, "<***>", "{form}");
        }
        // A password written percent-encoded in a URL is hidden decoded too.
        let t = table(r#"url = "postgresql://u:p%40ss%2Fw@h/d""#);
        let r = Redactor::new(&t, &[]);
        assert_eq!(r.redact("auth failed: p@ss/w"), "auth failed: ***");
    }

    #[test]
    fn short_values_are_hidden_in_listings_and_as_words() {
        let t = table("password = \"x\"\napi_key = \"ab\"\ntoken = \"007\"\nhost = \"xab\"\n");
        let r = Redactor::new(&t, &[]);
        let shown = r.redact_table(&t);
        for k in ["password", "api_key", "token"] {
            assert_eq!(shown[k].as_str(), Some("***"), "{k}");
        }
        assert_eq!(shown["host"].as_str(), Some("xab"), "not a word of its own");
        assert_eq!(
            r.redact("syntax error near x; key 'ab' and pin=007 in xab, box"),
            "syntax error near ***; key '***' and pin=*** in xab, box"
        );
        // A mask next to a short secret does not make it stand out.
        let t = table("password = \"Longer-secret\"\npwd = \"ab\"\n");
        let r = Redactor::new(&t, &[]);
        assert_eq!(
            r.redact("Longer-secretab and abLonger-secret"),
            "*** and ***"
        );
    }

    #[test]
    fn a_secret_holding_the_mask_gets_another_mask() {
        let t = table("password = \"**\"\ntoken = \"a*#\"\n");
        let r = Redactor::new(&t, &[]);
        assert_eq!(r.mask(), "~~~");
        let msg = r.redact("got ** and a*# here ***");
        assert!(!msg.contains("**") && !msg.contains("a*#"), "{msg}");
        assert_eq!(r.redact_table(&t)["password"].as_str(), Some("~~~"));
    }

    #[test]
    fn urls_in_free_text_are_scrubbed_by_their_shape() {
        let r = Redactor::default();
        assert_eq!(
            r.redact("GET https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=abcdef&x=1 failed"),
            "GET https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&x=1 failed"
        );
        assert_eq!(
            r.redact("cannot reach postgresql://bob:unknown@db/x (refused)"),
            "cannot reach postgresql://bob:***@db/x (refused)"
        );
        assert_eq!(
            r.redact("\"https://tok@h/x?sig=q\""),
            "\"https://***@h/x?sig=***\""
        );
        assert_eq!(
            r.redact("no secrets here: a=b, key_column=id"),
            "no secrets here: a=b, key_column=id"
        );
    }

    #[test]
    fn the_schema_path_of_a_declared_key_counts() {
        let t = table("[connect_args]\nopaque = \"S3cr3t-opaque\"\nother = \"shown\"\n");
        let r = Redactor::new(&t, &["connect_args.opaque".to_owned()]);
        let shown = r.redact_table(&t);
        assert_eq!(shown["connect_args"]["opaque"].as_str(), Some("***"));
        assert_eq!(shown["connect_args"]["other"].as_str(), Some("shown"));
        assert_eq!(r.redact("S3cr3t-opaque"), "***");
    }

    #[test]
    fn plugin_text_is_redacted_with_its_connections_secrets() {
        let a = Redactor::new(&table("password = \"S3cr3t-reg-a\""), &[]);
        let b = Redactor::new(&table("token = \"S3cr3t-reg-b\""), &[]);
        register_plugin_secrets("registry-test", &a);
        register_plugin_secrets("registry-test", &b);
        register_plugin_secrets("registry-test", &a);
        let text = "connected with S3cr3t-reg-a and S3cr3t-reg-b to postgresql://u:pw@h/";
        let shown = PluginText {
            plugin: "registry-test",
            text,
        }
        .to_string();
        assert_eq!(shown, "connected with *** and *** to postgresql://u:***@h/");
        assert_eq!(
            redact_plugin_text("registry-other", "S3cr3t-reg-a at https://u:pw@h/"),
            "S3cr3t-reg-a at https://u:***@h/",
            "another plugin was not handed it; URLs are scrubbed regardless"
        );
    }

    #[test]
    fn deeply_nested_files_are_one_line_errors() {
        let n = 100_000;
        for text in [
            format!("[connections.x]\na = {}{}\n", "[".repeat(n), "]".repeat(n)),
            format!(
                "[connections.x]\na = {}1{}\n",
                "{b = ".repeat(n),
                "}".repeat(n)
            ),
            format!("[connections.x]\n{} = 1\n", vec!["a"; n].join(".")),
            format!("a = {}", "[{b = ".repeat(n)),
        ] {
            let mut s = Secrets::default();
            let e = s.merge_text(&text, Path::new("deep.toml")).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("deep.toml:"), "{msg}");
            assert!(!msg.contains('\n') && msg.len() < 200, "{msg}");
        }
    }
}

//! Parsing what a user types for a connection: `--set KEY=VALUE`, `-p NAME[:TYPE]=VALUE`,
//! `-x KEY=VALUE`.

use anyhow::{Context, bail};
use plugboard_api::Value;

use super::ConnArgs;
use crate::{ConnectOptions, Host};

pub(super) fn connect(host: &Host, args: &ConnArgs) -> anyhow::Result<crate::Connection> {
    let mut options = ConnectOptions::new();
    if let Some(k) = &args.kind {
        options = options.kind(k);
    }
    for s in &args.set {
        let (key, value) = parse_set(s).map_err(super::exit::usage)?;
        // Typed by the key's declared type once the plugin is known (a declared string
        // is the exact text), else by its look.
        options = options.set_text(key, value);
    }
    let conn = host.connection_with(&args.connection, options)?;
    super::interrupt::cancel_on_interrupt(&conn);
    Ok(conn)
}

/// `--set KEY=VALUE`, refused when the key is empty or nests too deep.
fn parse_set(s: &str) -> anyhow::Result<(&str, &str)> {
    let (key, value) = s
        .split_once('=')
        // Not shown: a value typed without its key may be a password.
        .context(
            "--set takes KEY=VALUE; one argument has no `=` (not shown, in case it is a secret)",
        )?;
    if key.is_empty() {
        // Not the argument itself: what follows `=` may be a password.
        bail!("--set =…: the key before `=` is empty");
    }
    // Each `.` is a level of nested tables; tens of thousands of them overflowed the
    // stack (dropping the nested TOML value recurses) and aborted the process.
    let depth = key.split('.').count();
    if depth > MAX_SET_DEPTH {
        let shown: String = s.chars().take(40).collect();
        bail!(
            "--set {shown:?}…: the key nests {depth} tables deep; at most {MAX_SET_DEPTH} \
             (a.b.c is 3)"
        );
    }
    Ok((key, value))
}

/// How many `.`-separated parts a `--set` key may have: far more than any connector's
/// config nests.
const MAX_SET_DEPTH: usize = crate::config::secrets::MAX_KEY_DEPTH;

/// Parses `NAME=VALUE` or `NAME:TYPE=VALUE`.
pub(super) fn parse_param(text: &str) -> anyhow::Result<(String, Value)> {
    let (name, value) = text
        .split_once('=')
        .with_context(|| format!("--param {text:?}: expected NAME=VALUE"))?;
    // The sigil first: `:owner=x` is the name `owner`, and `:n:int=5` the name `n`.
    let name = name.trim_start_matches([':', '@', '$']);
    let (name, kind) = match name.split_once(':') {
        Some((n, k)) => (n, Some(k)),
        None => (name, None),
    };
    if name.is_empty() {
        bail!("--param {text:?}: the name is empty");
    }
    let bad = |t: &str| anyhow::anyhow!("--param {text:?}: {value:?} is not {t}");
    let value = match kind {
        None => infer_value(value),
        Some("str" | "string" | "text") => Value::String(value.to_owned()),
        Some("int") => Value::Int(value.parse().map_err(|_| bad("an integer"))?),
        Some("float") => Value::Float(value.parse().map_err(|_| bad("a number"))?),
        Some("bool") => Value::Bool(value.parse().map_err(|_| bad("true or false"))?),
        Some("null") => Value::Null,
        Some("hex" | "bytes") => Value::Bytes(unhex(value).ok_or_else(|| bad("hex bytes"))?),
        Some(other) => {
            bail!("--param {text:?}: unknown type {other:?} (str, int, float, bool, null, hex)")
        }
    };
    Ok((name.to_owned(), value))
}

/// A read option's value, typed by its look like a parameter's (`5`, `true`, else text).
pub(super) fn option_value(v: &str) -> serde_json::Value {
    match infer_value(v) {
        Value::Int(i) => i.into(),
        Value::Float(f) => f.into(),
        Value::Bool(b) => b.into(),
        _ => v.into(),
    }
}

fn infer_value(v: &str) -> Value {
    if let Ok(i) = v.parse::<i64>() {
        // Keep leading zeros ("007") as text: they are identifiers, not numbers.
        if !(v.starts_with('+') || v.len() > 1 && v.starts_with('0')) {
            return Value::Int(i);
        }
    }
    if let Ok(f) = v.parse::<f64>()
        && f.is_finite()
        && v.contains(['.', 'e', 'E'])
    {
        return Value::Float(f);
    }
    match v {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(v.to_owned()),
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()
}

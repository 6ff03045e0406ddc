//! Python values into plugboard's: query parameters (`Value`), connection settings (TOML),
//! read options (JSON), durations and paths.
//!
//! Dates, times and `Decimal`s arrive as text: the package's Python side turns them into
//! ISO 8601 and exact decimal strings before they get here (the limited API that abi3
//! builds against has no datetime struct access).

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PySequence, PyString, PyTuple,
};

use plugboard::{Params, Value};

use crate::errors::argument;

/// Parameters: a dict binds by name (`:owner`; the host drops the sigil), a list or tuple
/// by position (`?`, `$1`), the first value as `1`. None binds nothing.
pub fn params(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Params> {
    let mut out = Params::new();
    let Some(obj) = obj else {
        return Ok(out);
    };
    if let Ok(dict) = obj.cast::<PyDict>() {
        for (k, v) in dict.iter() {
            let name: String = k.extract().map_err(|_| {
                argument(format!(
                    "parameter names are strings, got {}",
                    type_name(&k)
                ))
            })?;
            let value = value(&name, &v)?;
            out.insert(name, value);
        }
    } else if is_sequence(obj) {
        let seq = obj.cast::<PySequence>()?;
        for (i, v) in seq.try_iter()?.enumerate() {
            let name = (i + 1).to_string();
            let value = value(&name, &v?)?;
            out.insert(name, value);
        }
    } else {
        return Err(argument(format!(
            "params must be a dict (by name) or a list (by position), got {}",
            type_name(obj)
        )));
    }
    Ok(out)
}

/// One parameter's value.
fn value(name: &str, v: &Bound<'_, PyAny>) -> PyResult<Value> {
    if v.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = v.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if v.is_instance_of::<PyInt>() {
        v.extract::<i64>().map(Value::Int).map_err(|_| {
            argument(format!(
                "parameter {name}: {} does not fit in a 64-bit integer",
                v.str().map(|s| s.to_string()).unwrap_or_default()
            ))
        })
    } else if let Ok(f) = v.cast::<PyFloat>() {
        Ok(Value::Float(f.value()))
    } else if let Ok(s) = v.cast::<PyString>() {
        Ok(Value::String(s.to_cow()?.into_owned()))
    } else if let Ok(b) = v.cast::<PyBytes>() {
        Ok(Value::Bytes(b.as_bytes().to_vec()))
    } else if let Ok(b) = v.cast::<PyByteArray>() {
        Ok(Value::Bytes(b.to_vec()))
    } else {
        Err(argument(format!(
            "parameter {name}: cannot bind a {} (use None, bool, int, float, str, bytes, \
             datetime, date, time or Decimal)",
            type_name(v)
        )))
    }
}

/// A connection setting, as its TOML value: what `kwargs` of `connection()` become.
pub fn setting(key: &str, v: &Bound<'_, PyAny>) -> PyResult<toml::Value> {
    if let Ok(b) = v.cast::<PyBool>() {
        Ok(toml::Value::Boolean(b.is_true()))
    } else if v.is_instance_of::<PyInt>() {
        v.extract::<i64>().map(toml::Value::Integer).map_err(|_| {
            argument(format!(
                "setting {key:?}: the integer does not fit in 64 bits"
            ))
        })
    } else if let Ok(f) = v.cast::<PyFloat>() {
        Ok(toml::Value::Float(f.value()))
    } else if let Ok(s) = v.cast::<PyString>() {
        Ok(toml::Value::String(s.to_cow()?.into_owned()))
    } else if let Ok(d) = v.cast::<PyDict>() {
        let mut table = toml::Table::new();
        for (k, item) in d.iter() {
            let k: String = k
                .extract()
                .map_err(|_| argument(format!("setting {key:?}: its keys must be strings")))?;
            if item.is_none() {
                continue;
            }
            let nested = format!("{key}.{k}");
            table.insert(k, setting(&nested, &item)?);
        }
        Ok(toml::Value::Table(table))
    } else if is_sequence(v) {
        let seq = v.cast::<PySequence>()?;
        let items = seq
            .try_iter()?
            .map(|item| setting(key, &item?))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(toml::Value::Array(items))
    } else {
        Err(argument(format!(
            "setting {key:?}: cannot use a {} (use str, int, float, bool, list or dict)",
            type_name(v)
        )))
    }
}

/// A read option, as JSON.
pub fn json(key: &str, v: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    let toml = if v.is_none() {
        return Ok(serde_json::Value::Null);
    } else {
        setting(key, v)?
    };
    serde_json::to_value(&toml).map_err(|e| argument(format!("option {key:?}: {e}")))
}

/// A TTL: seconds (int or float), a `timedelta` (anything with `total_seconds()`), or
/// text as plugboard reads it (`"10m"`, `"1h"`, `"1d"`).
pub fn ttl(v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let bad = |why: String| argument(format!("ttl: {why}"));
    if v.is_instance_of::<PyBool>() {
        return Err(bad(
            "expected seconds, a timedelta or a duration like \"10m\", got a bool".into(),
        ));
    }
    let seconds: f64 = if let Ok(s) = v.cast::<PyString>() {
        return plugboard::duration::parse(&s.to_cow()?).map_err(bad);
    } else if v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>() {
        v.extract()?
    } else if v.hasattr("total_seconds")? {
        v.call_method0("total_seconds")?.extract()?
    } else {
        return Err(bad(format!(
            "expected seconds, a timedelta or a duration like \"10m\", got {}",
            type_name(v)
        )));
    };
    if seconds < 0.0 {
        return Err(bad(format!("{seconds} is negative")));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| bad(format!("{seconds}: {e}")))
}

/// Secrets files: one path, or a list of them.
pub fn paths(v: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if is_sequence(v) {
        v.extract()
    } else {
        Ok(vec![v.extract()?])
    }
}

/// A list or a tuple (not any sequence: a str is one too).
pub fn is_sequence(v: &Bound<'_, PyAny>) -> bool {
    v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "value".into())
}

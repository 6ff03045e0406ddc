//! What crosses the boundary as serialized JSON: requests, parameters and the manifest.
//!
//! These are plain serde types, not ABI mirrors, so they can gain fields in a minor
//! version: every field has a default and unknown fields are ignored.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A typed parameter value, bound by the driver and never spliced into query text.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// NaN and the infinities cross as the strings `"NaN"`, `"Infinity"` and
    /// `"-Infinity"` (JSON has no such numbers; before 1.3 they became `null`).
    #[serde(with = "non_finite")]
    Float(f64),
    String(String),
    Bytes(Vec<u8>),
}

/// JSON for every `f64`: finite values as numbers, the rest as strings.
mod non_finite {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("Infinity"),
            _ => s.serialize_str("-Infinity"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Float {
            Number(f64),
            Text(String),
        }
        match Float::deserialize(d)? {
            Float::Number(v) => Ok(v),
            Float::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(D::Error::custom(format!(
                    "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", got {t:?}"
                ))),
            },
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Int(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v:?}"),
            Self::String(v) => write!(f, "{v:?}"),
            Self::Bytes(v) => write!(f, "<{} bytes>", v.len()),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::$variant((v $(as $cast)?).into()) }
        }
    )*};
}
value_from!(
    bool => Bool, i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int,
    u8 => Int as i64, u16 => Int as i64, u32 => Int as i64, f32 => Float as f64, f64 => Float,
    String => String, &str => String, Vec<u8> => Bytes, &[u8] => Bytes,
);

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Named parameters, ordered by name so that equal parameter sets serialize equally.
///
/// Names are stored without a leading `:`, `$` or `@`.
pub type Params = BTreeMap<String, Value>;

/// What `connect` receives: the connection's name (for messages) and its own merged table,
/// with the host's reserved keys (`type`, `ttl`, `max_entries`) already removed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectRequest {
    pub name: String,
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Since 1.5: the kind the host chose the plugin for (the section's `type`, the kind
    /// of a Streamlit class it names, or the one Streamlit infers from its name, such as
    /// `snowflake`), for a plugin that serves several. Empty from an older host, or when
    /// the plugin was chosen by the section's URL scheme or dialect.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

/// A request to read a table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReadRequest {
    /// The query text (SQL for a database) or the target (a path for a file connector).
    pub query: String,
    /// Named parameters bound by the driver.
    pub params: Params,
    /// Stop after this many rows.
    pub limit: Option<u64>,
    /// Rows per record batch the host would like; a connector may round it.
    pub batch_size: Option<usize>,
    /// Connector-specific read options (for example a file format), passed through as given.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// Since 1.2: the host writes the batches out as they arrive (an export) instead of
    /// keeping the table, so the connector should hand each batch over as soon as it is
    /// read, with the schema fixed before the first one (see [`crate::stream`]). A
    /// connector that ignores it is still correct, only not flat in memory.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Since 1.6: instead of running `query`, list the connection's tables or one table's
    /// columns (see [`crate::catalog`]). The host sends it only to a plugin built against
    /// 1.6 or later; [`crate::export_connector!`] answers it from
    /// [`Connector::tables`](crate::Connector::tables) and
    /// [`Connector::describe`](crate::Connector::describe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<crate::catalog::Catalog>,
}

/// One statement of a write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Statement {
    pub sql: String,
    pub params: Params,
}

/// A request to run statements as one transaction: all of them or none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecuteRequest {
    pub statements: Vec<Statement>,
    /// Parameters shared by every statement; each statement binds the ones it uses, and
    /// one that no statement uses is an error.
    pub params: Params,
}

/// What a connector says about itself; read by the host right after loading.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    /// The plugin's unique name (`sqlite`, `postgres`, ...).
    pub name: String,
    /// The plugin's own version; part of every cache key.
    pub version: String,
    pub description: String,
    /// Connector kinds it serves: a connection's `type` (`sqlite`, `sql`, ...).
    pub kinds: Vec<String>,
    /// URL schemes it accepts (`sqlite`, `postgresql`, ...), chosen when `type = "sql"`.
    pub schemes: Vec<String>,
    /// Config keys whose values are secret: printed as `***` everywhere.
    pub secret_keys: Vec<String>,
    /// Since 1.1: the keys a connection's table may hold. When present, the host checks a
    /// table against it before `connect` (unknown keys, missing required keys, types), and
    /// redacts exactly the keys marked secret. Empty: the plugin checks its own config.
    pub config: Vec<ConfigKey>,
}

/// The type of a config key's value, as the host checks it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    String,
    Integer,
    /// An integer or a float.
    Number,
    Boolean,
    /// Seconds as a number, or text with a unit (`"5s"`).
    Duration,
    Table,
    Array,
    #[default]
    Any,
}

/// One key of a connector's config, declared in its [`Manifest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigKey {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: KeyType,
    pub required: bool,
    pub secret: bool,
    pub description: String,
}

impl ConfigKey {
    pub fn new(name: impl Into<String>, kind: KeyType) -> Self {
        Self {
            name: name.into(),
            kind,
            ..Self::default()
        }
    }

    pub fn string(name: impl Into<String>) -> Self {
        Self::new(name, KeyType::String)
    }

    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    #[must_use]
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    #[must_use]
    pub fn describe(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }
}

impl Manifest {
    /// A manifest with the name and version, everything else empty.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            ..Self::default()
        }
    }

    #[must_use]
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }

    #[must_use]
    pub fn kinds<S: Into<String>>(mut self, kinds: impl IntoIterator<Item = S>) -> Self {
        self.kinds = kinds.into_iter().map(Into::into).collect();
        self
    }

    #[must_use]
    pub fn schemes<S: Into<String>>(mut self, schemes: impl IntoIterator<Item = S>) -> Self {
        self.schemes = schemes.into_iter().map(Into::into).collect();
        self
    }

    #[must_use]
    pub fn secret_keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.secret_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Declares a config key (see [`Manifest::config`]).
    #[must_use]
    pub fn key(mut self, key: ConfigKey) -> Self {
        self.config.push(key);
        self
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_float_crosses_as_json_and_back() {
        for v in [
            0.0,
            -0.0,
            1.5,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let json = serde_json::to_string(&super::Value::Float(v)).expect("json");
            let back: super::Value = serde_json::from_str(&json).expect("parse");
            let super::Value::Float(b) = back else {
                panic!("{json} is not a float");
            };
            assert_eq!(b.to_bits(), v.to_bits(), "{json}");
        }
        let nan = serde_json::to_string(&super::Value::Float(f64::NAN)).expect("json");
        assert_eq!(nan, r#"{"type":"float","value":"NaN"}"#);
        let back: super::Value = serde_json::from_str(&nan).expect("parse");
        assert!(matches!(back, super::Value::Float(v) if v.is_nan()));
        let bad = serde_json::from_str::<super::Value>(r#"{"type":"float","value":"lots"}"#);
        assert!(bad.is_err());
    }

    use super::*;

    #[test]
    fn values_round_trip_with_their_types() {
        let mut params = Params::new();
        params.insert("a".into(), Value::Int(1));
        params.insert("b".into(), Value::String("1".into()));
        params.insert("c".into(), Value::Bytes(vec![0, 255]));
        params.insert("d".into(), Value::Null);
        let text = serde_json::to_string(&params).expect("serialize");
        let back: Params = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, params);
        assert_ne!(back["a"], back["b"], "an int and a string stay distinct");
    }

    #[test]
    fn unknown_request_fields_are_ignored() {
        let r: ReadRequest =
            serde_json::from_str(r#"{"query":"select 1","future_field":true}"#).expect("parse");
        assert_eq!(r.query, "select 1");
        assert!(!r.stream);
    }

    #[test]
    fn a_request_that_does_not_stream_serializes_as_before_1_2() {
        let r = ReadRequest {
            query: "q".into(),
            ..ReadRequest::default()
        };
        let text = serde_json::to_string(&r).expect("serialize");
        assert!(!text.contains("stream"), "{text}");
        let streaming = ReadRequest { stream: true, ..r };
        let text = serde_json::to_string(&streaming).expect("serialize");
        assert!(text.contains(r#""stream":true"#), "{text}");
    }
}

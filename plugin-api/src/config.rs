//! Turning a connection's table into a connector's typed config, with errors that name the key.

use serde::de::DeserializeOwned;

use crate::PluginError;

/// Deserializes a connector's `Config` from its connection table.
///
/// Errors are `config` errors that name the offending key, e.g.
/// ``busy_timeout: invalid type: string "x", expected u64``.
pub fn from_table<T: DeserializeOwned>(
    table: serde_json::Map<String, serde_json::Value>,
) -> Result<T, PluginError> {
    serde_path_to_error::deserialize(serde_json::Value::Object(table)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            PluginError::config(inner.to_string())
        } else {
            PluginError::config(format!("`{path}`: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        path: String,
        #[serde(default)]
        timeout_ms: u64,
    }

    fn table(json: &str) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(json).expect("test json")
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = from_table::<Config>(table(r#"{"path":"a","timeout_ms":"x"}"#)).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::CONFIG);
        assert!(e.message().starts_with("`timeout_ms`:"), "{e}");
    }

    #[test]
    fn unknown_and_missing_keys_are_named() {
        let e = from_table::<Config>(table(r#"{"path":"a","tiemout_ms":1}"#)).unwrap_err();
        assert!(e.message().contains("tiemout_ms"), "{e}");
        let e = from_table::<Config>(table(r#"{}"#)).unwrap_err();
        assert!(e.message().contains("path"), "{e}");
    }
}

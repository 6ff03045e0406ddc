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

/// Parses a duration written with units, the one parser the host and every plugin use:
/// `"250ms"`, `"5s"`, `"10m"`, `"1h"`, `"1d"`, `"2w"`, `"1h 30m"` (humantime's units), and
/// one decimal number with a unit (`"1.5s"`, `"0.5d"`). A bare number is left to the
/// caller, whose key decides its unit (seconds for a TTL, milliseconds for SQLite's
/// `busy_timeout`).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    if let Ok(d) = humantime::parse_duration(text) {
        return Some(d);
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        "d" => number * 86_400.0,
        "w" => number * 604_800.0,
        _ => return None,
    };
    std::time::Duration::try_from_secs_f64(secs).ok()
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
    fn durations_with_units() {
        use std::time::Duration;
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0.5d"), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2w"), Some(Duration::from_secs(1_209_600)));
        assert_eq!(parse_duration("5 parsecs"), None);
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

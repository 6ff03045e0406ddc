//! Durations as users write them: `600` (seconds), `"10m"`, `"1h"`, `"1d"`, `"250ms"`.

use std::time::Duration;

/// Parses a duration: a bare number is seconds, otherwise a number and a unit.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"));
    }
    // The same parser every plugin uses, so `busy_timeout = "1d"` reads like `ttl = "1d"`.
    plugboard_api::parse_duration(t)
        .ok_or_else(|| format!("{text:?} is not a duration; write 600, \"10m\", \"1h\" or \"1d\""))
}

/// Reads a duration from a TOML value: an integer or float of seconds, or a string.
pub fn from_toml(value: &toml::Value) -> Result<Duration, String> {
    match value {
        toml::Value::Integer(i) => u64::try_from(*i)
            .map(Duration::from_secs)
            .map_err(|_| format!("{i} is negative")),
        toml::Value::Float(f) => Duration::try_from_secs_f64(*f).map_err(|e| format!("{f}: {e}")),
        toml::Value::String(s) => parse(s),
        other => Err(format!(
            "expected seconds or a duration like \"10m\", got {other}"
        )),
    }
}

/// A duration as a person reads it: `2s`, `500ms`, `1.5s`, `10m`, `1h 30m`.
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        return if ms.is_multiple_of(1000) {
            format!("{secs}s")
        } else {
            format!("{:.1}s", d.as_secs_f64())
        };
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = Vec::new();
    if h > 0 {
        out.push(format!("{h}h"));
    }
    if m > 0 {
        out.push(format!("{m}m"));
    }
    if s > 0 {
        out.push(format!("{s}s"));
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse("soon").unwrap_err().contains("soon"));
        assert_eq!(
            from_toml(&toml::Value::Integer(5)),
            Ok(Duration::from_secs(5))
        );
        assert!(from_toml(&toml::Value::Integer(-5)).is_err());
    }

    #[test]
    fn shown() {
        assert_eq!(show(Duration::from_millis(250)), "250ms");
        assert_eq!(show(Duration::from_secs(2)), "2s");
        assert_eq!(show(Duration::from_millis(1500)), "1.5s");
        assert_eq!(show(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(show(Duration::from_secs(61)), "1m 1s");
    }
}

//! What a connection actually connected to (since plugin-api 1.3).
//!
//! A connection's table often leaves things out: a PostgreSQL section without `database`
//! takes it from `PGDATABASE`, a SQLite path is relative to the working directory. Two runs
//! with the same table can then read two different sources, and a cache keyed on the table
//! alone would hand the second run the first one's rows. So a connector reports, after
//! `connect`, the identity it resolved — host, port, database and user; a canonical file
//! path; a bucket and endpoint — and the host keys cached results on it.
//!
//! A target is never a secret: no password, token or key, and nothing from which one can be
//! read. The host logs it and keeps it in cache keys in the clear.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The resolved, secret-free identity of what a connection reads: equal targets (and equal
/// requests) mean equal results.
///
/// Put in it everything that decides what a read returns, after your connector resolved
/// its defaults and its environment, and nothing else: not timeouts, pool sizes, TLS modes
/// or credentials.
///
/// ```
/// use plugboard_api::Target;
///
/// let target = Target::new()
///     .with("host", "db.example")
///     .with("port", 5432)
///     .with("database", "sales")
///     .with("user", "reporting");
/// assert_eq!(
///     target.to_json(),
///     r#"{"database":"sales","host":"db.example","port":5432,"user":"reporting"}"#
/// );
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Target(BTreeMap<String, serde_json::Value>);

impl Target {
    /// A target with no parts. An empty target reports nothing: the host keys on the
    /// connection's table alone, as for a plugin older than 1.3.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a part (`host`, `port`, `database`, `path`, `bucket`, …); `None` is `null`.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.set(key, value);
        self
    }

    /// Sets a part in place.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) {
        self.0.insert(key.into(), value.into());
    }

    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.get(key)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Marks the source as this connection's alone (an in-memory database, a temporary
    /// file): adds an `instance` part no other connection — in this process, another
    /// process, or after a reconnect — ever reports, so no one else is served its results.
    #[must_use]
    pub fn private(self) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let instance = format!(
            "{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.with("instance", instance)
    }

    /// Canonical JSON: one object, keys sorted at every level, no whitespace. Equal targets
    /// give equal text.
    pub fn to_json(&self) -> String {
        canonical_json(&serde_json::Value::Object(
            self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ))
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// `value` as JSON text with object keys sorted at every level (whatever order serde_json
/// keeps them in, which depends on its `preserve_order` feature), so equal values give
/// equal text. The host keys its caches with the same function.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let sorted: BTreeMap<&String, serde_json::Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_targets_give_equal_text_whatever_the_order() {
        let a = Target::new()
            .with("b", serde_json::json!({"y": 1, "x": [{"q": 1, "p": 2}]}))
            .with("a", "1");
        let b = Target::new()
            .with("a", "1")
            .with("b", serde_json::json!({"x": [{"p": 2, "q": 1}], "y": 1}));
        assert_eq!(a.to_json(), b.to_json());
        assert_eq!(a.to_json(), r#"{"a":"1","b":{"x":[{"p":2,"q":1}],"y":1}}"#);
        assert_eq!(
            Target::new().with("port", None::<u16>).to_json(),
            r#"{"port":null}"#
        );
    }

    #[test]
    fn a_private_target_is_never_reported_twice() {
        let a = Target::new().with("database", ":memory:").private();
        let b = Target::new().with("database", ":memory:").private();
        assert_ne!(a, b);
        assert!(a.get("instance").is_some());
    }
}

//! Checking a connection's table against the config schema its plugin declares, before
//! `connect`: unknown keys (with the closest valid one), missing required keys, and types.

use plugboard_api::{KeyType, Manifest};

use super::secrets::Redactor;

/// The problem with `table`, if any, as a message that names the key.
pub(crate) fn check(manifest: &Manifest, table: &toml::Table) -> Result<(), String> {
    let schema = &manifest.config;
    if schema.is_empty() {
        return Ok(());
    }
    for (key, value) in table {
        let Some(declared) = schema.iter().find(|k| &k.name == key) else {
            let names: Vec<&str> = schema.iter().map(|k| k.name.as_str()).collect();
            let guess = crate::util::closest(key, names.iter().copied())
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            return Err(format!(
                "unknown key `{key}` for the {} connector{guess} (its keys: {})",
                manifest.name,
                names.join(", ")
            ));
        };
        if !accepts(declared.kind, value) {
            return Err(format!(
                "`{key}` must be {}, got {}",
                describe(declared.kind),
                value.type_str()
            ));
        }
    }
    if let Some(missing) = schema
        .iter()
        .find(|k| k.required && !table.contains_key(&k.name))
    {
        let about = if missing.description.is_empty() {
            String::new()
        } else {
            format!(" ({})", missing.description)
        };
        return Err(format!("missing required key `{}`{about}", missing.name));
    }
    Ok(())
}

fn accepts(kind: KeyType, v: &toml::Value) -> bool {
    use toml::Value as V;
    match kind {
        KeyType::Any => true,
        KeyType::String => matches!(v, V::String(_)),
        KeyType::Integer => matches!(v, V::Integer(_)),
        KeyType::Number => matches!(v, V::Integer(_) | V::Float(_)),
        KeyType::Boolean => matches!(v, V::Boolean(_)),
        KeyType::Duration => matches!(v, V::Integer(_) | V::Float(_) | V::String(_)),
        KeyType::Table => matches!(v, V::Table(_)),
        KeyType::Array => matches!(v, V::Array(_)),
    }
}

fn describe(kind: KeyType) -> &'static str {
    match kind {
        KeyType::Any => "any value",
        KeyType::String => "a string",
        KeyType::Integer => "an integer",
        KeyType::Number => "a number",
        KeyType::Boolean => "true or false",
        KeyType::Duration => "a duration (seconds, or text like \"5s\")",
        KeyType::Table => "a table",
        KeyType::Array => "an array",
    }
}

/// The type the plugin declares for a key path (`None` for a path the schema does not
/// describe: a nested key, or any key of a plugin without a schema). Text from the
/// environment and `--set` is typed by it.
pub(crate) fn declared_type(manifest: &Manifest, path: &[String]) -> Option<KeyType> {
    let [key] = path else {
        return None;
    };
    manifest
        .config
        .iter()
        .find(|k| &k.name == key)
        .map(|k| k.kind)
}

/// The redactor for a connection: the keys its plugin declares secret (in its schema, or
/// in `secret_keys`), and always, schema or not, keys that look secret and secrets inside
/// strings (see [`crate::secrets`]). A schema can add secrets, never make a `password`
/// printable: the promise is the host's, not each plugin's.
pub(crate) fn redactor(manifest: &Manifest, table: &toml::Table) -> Redactor {
    let keys: Vec<String> = manifest
        .config
        .iter()
        .filter(|k| k.secret)
        .map(|k| k.name.clone())
        .chain(manifest.secret_keys.iter().cloned())
        .collect();
    Redactor::new(table, &keys)
}

#[cfg(test)]
mod tests {
    use plugboard_api::ConfigKey;

    use super::*;

    fn manifest() -> Manifest {
        Manifest::new("demo", "1")
            .key(ConfigKey::string("url").describe("where it is"))
            .key(ConfigKey::string("mode").required().describe("ro or rw"))
            .key(ConfigKey::new("port", KeyType::Integer))
            .key(ConfigKey::string("password").secret())
            .key(ConfigKey::new("timeout", KeyType::Duration))
    }

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).expect("toml")
    }

    #[test]
    fn unknown_missing_and_mistyped_keys_are_named() {
        let m = manifest();
        assert_eq!(
            check(&m, &table("mode = \"ro\"\nurl = \"x\"\ntimeout = \"5s\"")),
            Ok(())
        );
        let e = check(&m, &table("mode = \"ro\"\nurll = \"x\"")).unwrap_err();
        assert!(
            e.starts_with("unknown key `urll` for the demo connector; did you mean `url`?"),
            "{e}"
        );
        let e = check(&m, &table("url = \"x\"")).unwrap_err();
        assert_eq!(e, "missing required key `mode` (ro or rw)");
        let e = check(&m, &table("mode = \"ro\"\nport = \"5432\"")).unwrap_err();
        assert_eq!(e, "`port` must be an integer, got string");
        assert_eq!(
            check(&Manifest::new("free", "1"), &table("anything = 1")),
            Ok(())
        );
    }

    #[test]
    fn the_schema_adds_secrets_and_never_removes_them() {
        let m = manifest().key(ConfigKey::string("opaque").secret());
        let t = table(
            "mode = \"s3cret-mode\"\npassword = \"pw-123456\"\ntoken = \"tok-abcdef\"\nopaque = \"op-123456\"",
        );
        let r = redactor(&m, &t);
        let shown = r.redact("pw-123456 tok-abcdef op-123456 s3cret-mode");
        assert_eq!(shown, "*** *** *** s3cret-mode");
        let free = Manifest::new("free", "1").secret_keys(["opaque"]);
        let shown = redactor(&free, &t).redact("tok-abcdef op-123456");
        assert_eq!(shown, "*** ***");
    }

    #[test]
    fn declared_types_are_found_by_top_level_key() {
        let m = manifest();
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(declared_type(&m, &path("password")), Some(KeyType::String));
        assert_eq!(declared_type(&m, &path("port")), Some(KeyType::Integer));
        assert_eq!(declared_type(&m, &path("query.password")), None);
        assert_eq!(declared_type(&m, &path("nope")), None);
        assert_eq!(
            declared_type(&Manifest::new("free", "1"), &path("port")),
            None
        );
    }
}

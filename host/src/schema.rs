//! Checking a connection's table against the config schema its plugin declares, before
//! `connect`: unknown keys (with the closest valid one), missing required keys, and types.

use plugboard_api::{KeyType, Manifest};

use crate::secrets::Redactor;

/// The problem with `table`, if any, as a message that names the key.
pub(crate) fn check(manifest: &Manifest, table: &toml::Table) -> Result<(), String> {
    let schema = &manifest.config;
    if schema.is_empty() {
        return Ok(());
    }
    for (key, value) in table {
        let Some(declared) = schema.iter().find(|k| &k.name == key) else {
            let names: Vec<&str> = schema.iter().map(|k| k.name.as_str()).collect();
            let guess = crate::host::closest(key, names.iter().copied())
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

/// The redactor for a connection: with a schema, exactly its secret keys (and passwords
/// inside URLs); without one, the declared secret keys and keys that look secret.
pub(crate) fn redactor(manifest: &Manifest, table: &toml::Table) -> Redactor {
    if manifest.config.is_empty() {
        return Redactor::new(table, &manifest.secret_keys);
    }
    let keys: Vec<String> = manifest
        .config
        .iter()
        .filter(|k| k.secret)
        .map(|k| k.name.clone())
        .chain(manifest.secret_keys.iter().cloned())
        .collect();
    Redactor::exact(table, &keys)
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
    fn the_schema_decides_what_is_secret() {
        let m = manifest();
        let t = table("mode = \"s3cret-mode\"\npassword = \"pw-123456\"\ntoken = \"tok-abcdef\"");
        let r = redactor(&m, &t);
        let shown = r.redact("pw-123456 tok-abcdef");
        assert!(
            shown.contains("***") && !shown.contains("pw-123456"),
            "{shown}"
        );
        assert!(
            shown.contains("tok-abcdef"),
            "not declared secret: shown as is"
        );
        let free = Manifest::new("free", "1");
        let shown = redactor(&free, &t).redact("tok-abcdef");
        assert!(
            !shown.contains("tok-abcdef"),
            "without a schema, looks-secret keys hide"
        );
    }
}

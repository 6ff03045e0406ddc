//! Matching a statement's placeholders with the parameters a read or an execute was given,
//! for SQL connectors: each placeholder's value in order, or an error that names the
//! unknown or missing parameter and lists the statement's own.

use std::collections::HashSet;

use crate::{Params, PluginError, Value};

/// The value of each placeholder in `names` (in order; a name may repeat), from `params`,
/// else from `shared` (an execute's parameters for every statement). With `strict`, a
/// parameter the statement does not use is an error too. `show` writes a name as the
/// connector's SQL spells it (`:a`, `?1`), for the errors.
pub fn values<'p>(
    names: &[String],
    params: &'p Params,
    shared: Option<&'p Params>,
    strict: bool,
    show: fn(&str) -> String,
) -> Result<Vec<&'p Value>, PluginError> {
    let expected = || {
        let mut seen = HashSet::new();
        let distinct: Vec<&String> = names.iter().filter(|n| seen.insert(*n)).collect();
        if distinct.is_empty() {
            return "it takes none".to_owned();
        }
        // `$65535` takes 65535 parameters: name a few, not all, on the one line.
        const SHOWN: usize = 10;
        let more = match distinct.len() {
            n if n > SHOWN => format!(", … ({n} in all)"),
            _ => String::new(),
        };
        let shown: Vec<String> = distinct.iter().take(SHOWN).map(|n| show(n)).collect();
        format!("it takes {}{more}", shown.join(", "))
    };
    if strict && let Some(unknown) = params.keys().find(|k| !names.contains(k)) {
        return Err(PluginError::query(format!(
            "unknown parameter {unknown:?}: {}",
            expected()
        )));
    }
    names
        .iter()
        .map(|n| {
            params
                .get(n)
                .or_else(|| shared.and_then(|s| s.get(n)))
                .ok_or_else(|| {
                    PluginError::query(format!("missing parameter {n:?}: {}", expected()))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_order_shared_fallback_and_errors() {
        let colon = |n: &str| format!(":{n}");
        let params: Params = [("a".to_owned(), Value::Int(1))].into();
        let shared: Params = [("b".to_owned(), Value::Int(2))].into();
        let names: Vec<String> = ["a", "b", "a"].map(String::from).to_vec();
        let got = values(&names, &params, Some(&shared), true, colon).expect("values");
        assert_eq!(got, [&Value::Int(1), &Value::Int(2), &Value::Int(1)]);
        let e = values(&names[..1], &shared, None, true, colon).unwrap_err();
        assert!(
            e.message().contains("unknown parameter \"b\": it takes :a"),
            "{e}"
        );
        let e = values(&names, &params, None, false, colon).unwrap_err();
        assert!(
            e.message()
                .contains("missing parameter \"b\": it takes :a, :b"),
            "{e}"
        );
        let many: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
        let e = values(&many, &Params::new(), None, false, colon).unwrap_err();
        assert!(e.message().ends_with(":10, … (20 in all)"), "{e}");
    }
}

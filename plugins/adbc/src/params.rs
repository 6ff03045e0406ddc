//! Parameters as ADBC binds them: one Arrow batch of one row, a column per placeholder in
//! the order the statement numbers them. The values are bound by the driver, never
//! spliced into the text.
//!
//! * Positional parameters (`?` for SQLite, Snowflake and BigQuery, `$1` for PostgreSQL)
//!   are named `1`, `2`, …: column *i* is parameter *i*.
//! * Named parameters (`:name`, `@name`, `$name`, as SQLite and BigQuery spell them) are
//!   bound in the order the names first appear in the statement, outside string literals,
//!   quoted identifiers and comments, which is how SQLite numbers them; each column is
//!   named after its parameter, for drivers that bind by name. Only the given names are
//!   looked for, so `col:field` paths and `::` casts are left alone; a given name that the
//!   statement does not use is an error.

use std::sync::Arc;

use plugboard_api::arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, NullArray, RecordBatch,
    StringArray,
};
use plugboard_api::arrow_schema::{Field, Schema};
use plugboard_api::{Params, PluginError, Value};

/// The batch to bind for `sql`, from `params` then `shared`; `None` without parameters.
/// Returns the names it bound too.
pub fn batch(
    sql: &str,
    params: &Params,
    shared: Option<&Params>,
    strict: bool,
) -> Result<Option<(RecordBatch, Vec<String>)>, PluginError> {
    let given: Vec<&String> = params
        .keys()
        .chain(shared.into_iter().flat_map(|s| s.keys()))
        .collect();
    if given.is_empty() {
        return Ok(None);
    }
    let numbered: Vec<Option<u64>> = given.iter().map(|n| n.parse::<u64>().ok()).collect();
    let names: Vec<String> = if numbered.iter().all(Option::is_some) {
        let mut numbers: Vec<u64> = numbered.into_iter().flatten().collect();
        numbers.sort_unstable();
        numbers.dedup();
        if let Some((i, n)) = numbers
            .iter()
            .enumerate()
            .find(|(i, n)| **n != *i as u64 + 1)
        {
            return Err(PluginError::query(format!(
                "positional parameters are numbered from 1 without gaps: {} is missing \
                 (got {})",
                i + 1,
                n
            )));
        }
        numbers.iter().map(u64::to_string).collect()
    } else if numbered.iter().any(Option::is_some) {
        return Err(PluginError::query(
            "the parameters mix numbered (1, 2, …) and named ones; use one style",
        ));
    } else {
        let mut found = first_uses(sql, &given);
        if strict && let Some(unused) = params.keys().find(|k| !found.contains(k)) {
            return Err(PluginError::query(format!(
                "unknown parameter {unused:?}: the statement has no :{unused}, @{unused} or ${unused}"
            )));
        }
        found.dedup();
        found
    };
    if names.is_empty() {
        return Ok(None);
    }
    let values = plugboard_api::bind::values(&names, params, shared, false, |n| format!(":{n}"))?;
    let mut fields = Vec::with_capacity(names.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(names.len());
    for (name, value) in names.iter().zip(values) {
        let array: ArrayRef = match value {
            Value::Null => Arc::new(NullArray::new(1)),
            Value::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
            Value::Int(i) => Arc::new(Int64Array::from(vec![*i])),
            Value::Float(f) => Arc::new(Float64Array::from(vec![*f])),
            Value::String(s) => Arc::new(StringArray::from(vec![s.as_str()])),
            Value::Bytes(b) => Arc::new(BinaryArray::from(vec![b.as_slice()])),
        };
        fields.push(Field::new(name, array.data_type().clone(), true));
        columns.push(array);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| PluginError::internal(format!("cannot build the parameter batch: {e}")))?;
    Ok(Some((batch, names)))
}

/// The given names, in the order of their first `:name`, `@name` or `$name` in `sql`.
fn first_uses(sql: &str, given: &[&String]) -> Vec<String> {
    let b = sql.as_bytes();
    let mut found: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_quoted(b, i, q),
            b'-' if b.get(i + 1) == Some(&b'-') => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = b[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(b.len(), |p| i + 2 + p + 2);
            }
            b':' | b'@' | b'$'
                if i + 1 < b.len() && !(i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b':')) =>
            {
                let len = b[i + 1..].iter().take_while(|c| is_ident(**c)).count();
                let name = &sql[i + 1..i + 1 + len];
                if len > 0
                    && given.iter().any(|g| g.as_str() == name)
                    && !found.iter().any(|f| f == name)
                {
                    found.push(name.to_owned());
                }
                i += 1 + len;
            }
            _ => i += 1,
        }
    }
    found
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn line_end(b: &[u8], start: usize) -> usize {
    b[start..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| start + p + 1)
}

/// The index after a quoted literal or identifier: a doubled quote stays inside.
fn skip_quoted(b: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, Value)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn names(sql: &str, p: &Params) -> Vec<String> {
        batch(sql, p, None, true)
            .expect("batch")
            .map(|(_, n)| n)
            .unwrap_or_default()
    }

    #[test]
    fn positional_in_number_order() {
        let p = params(&[
            ("2", Value::Int(2)),
            ("1", Value::String("a".into())),
            ("10", Value::Null),
        ]);
        let e = batch("select ?", &p, None, true).unwrap_err();
        assert!(e.message().contains("3 is missing"), "{e}");
        let p = params(&[("2", Value::Int(2)), ("1", Value::String("a".into()))]);
        let (b, n) = batch("select $1, $2", &p, None, true)
            .expect("ok")
            .expect("some");
        assert_eq!(n, ["1", "2"]);
        assert_eq!(
            b.schema().field(0).data_type(),
            &plugboard_api::arrow_schema::DataType::Utf8
        );
        assert_eq!(b.num_rows(), 1);
    }

    #[test]
    fn named_in_order_of_first_use_outside_literals_and_comments() {
        let p = params(&[
            ("a", Value::Int(1)),
            ("b", Value::Int(2)),
            ("c", Value::Int(3)),
        ]);
        assert_eq!(
            names("select @b, ':a' /* :a */ -- :a\n, x::int, :c, $a, :b", &p),
            ["b", "c", "a"]
        );
        let e = batch("select :a, :b", &p, None, true).unwrap_err();
        assert!(e.message().contains("unknown parameter \"c\""), "{e}");
        // Not strict: an execute's shared parameters may be for another statement.
        let shared = params(&[("z", Value::Int(9))]);
        let got = batch(
            "select :a",
            &params(&[("a", Value::Int(1))]),
            Some(&shared),
            true,
        )
        .expect("ok")
        .map(|(_, n)| n);
        assert_eq!(got, Some(vec!["a".to_owned()]));
        let mixed = params(&[("1", Value::Int(1)), ("a", Value::Int(2))]);
        assert!(batch("select ?", &mixed, None, true).is_err());
        assert!(
            batch("select 1", &Params::new(), None, true)
                .expect("ok")
                .is_none()
        );
    }
}

//! Writes, as gsheets-connection's `update`, `create` and `clear` do them. Each statement
//! of an execute request is one of
//!
//! ```text
//! update <worksheet>     clear the worksheet, then write `data` from A1 (header row first)
//! create <worksheet>     add the worksheet (batchUpdate addSheet), then write `data` if given
//! clear <worksheet>      clear the worksheet's values
//! ```
//!
//! with the worksheet's title (or, for `update` and `clear`, its gid), quoted with `"` or `'`
//! when it has spaces at its ends. Parameters: `data`, the table — CSV text (a header row,
//! then the rows, as `plugboard read … --format csv` writes it) or JSON (an array of row
//! objects, as `--format json` writes it, or of arrays with the header first);
//! `spreadsheet`, another spreadsheet than the section's; `value_input_option`, `RAW`
//! (default: text stays text, nothing is parsed as a formula or a date) or `USER_ENTERED`
//! (parsed as if typed into the sheet). CSV cells are written typed by their look (numbers,
//! `TRUE`/`FALSE`, else text); JSON values as they are, `null` as an empty cell.
//!
//! Sheets has no transactions: statements run in order and one that fails stops the rest,
//! leaving those before it applied (the error names the failing statement). The rows
//! affected are the data rows written (not counting the header).

use std::collections::BTreeSet;

use plugboard_api::{ExecuteRequest, PluginError, Value};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

use crate::Gsheets;
use crate::grid::{Cell, Worksheet};
use crate::sheets::Api;

/// The parameters a statement may bind.
const PARAMS: &[&str] = &["data", "spreadsheet", "value_input_option"];

#[derive(Debug, PartialEq, Eq)]
enum Verb {
    Update,
    Create,
    Clear,
}

/// Runs the statements in order; returns the data rows written.
pub(crate) fn execute(
    conn: &Gsheets,
    api: &Api,
    request: &ExecuteRequest,
) -> Result<u64, PluginError> {
    if request.statements.is_empty() {
        return Err(PluginError::query("no statement to run"));
    }
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut plan = Vec::new();
    for (i, s) in request.statements.iter().enumerate() {
        let n = i + 1;
        let (verb, title) = parse(&s.sql)
            .map_err(|e| PluginError::query(format!("statement {n} ({:?}): {e}", s.sql)))?;
        if let Some(p) = s.params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
            return Err(PluginError::query(format!(
                "statement {n}: unknown parameter :{p} (the parameters: {})",
                PARAMS.join(", ")
            )));
        }
        // A statement's own parameter, else the shared one (which it then uses).
        let mut param = |name: &'static str| match s.params.get(name) {
            Some(v) => Some(v),
            None => {
                let v = request.params.get(name);
                if v.is_some() {
                    used.insert(name);
                }
                v
            }
        };
        let data = match verb {
            Verb::Clear if s.params.contains_key("data") => {
                return Err(PluginError::query(format!(
                    "statement {n}: `clear` writes no :data"
                )));
            }
            Verb::Clear => None,
            _ => match param("data") {
                Some(v) => Some(rows(v).map_err(|e| {
                    PluginError::query(format!("statement {n}: parameter :data: {e}"))
                })?),
                None if verb == Verb::Update => {
                    return Err(PluginError::query(format!(
                        "statement {n}: `update` needs the table to write as parameter :data \
                         (CSV text with a header row, or JSON rows)"
                    )));
                }
                None => None,
            },
        };
        let input = match param("value_input_option") {
            None => "RAW",
            Some(Value::String(v)) if v.eq_ignore_ascii_case("raw") => "RAW",
            Some(Value::String(v)) if v.eq_ignore_ascii_case("user_entered") => "USER_ENTERED",
            Some(v) => {
                return Err(PluginError::query(format!(
                    "statement {n}: parameter :value_input_option is RAW or USER_ENTERED, got {v:?}"
                )));
            }
        };
        let spreadsheet = match param("spreadsheet") {
            None => conn.spreadsheet_for(None)?,
            Some(Value::String(s)) => conn.spreadsheet_for(Some(s))?,
            Some(v) => {
                return Err(PluginError::query(format!(
                    "statement {n}: parameter :spreadsheet is a URL or id, got {v:?}"
                )));
            }
        };
        plan.push((n, verb, title, data, input, spreadsheet));
    }
    // A shared parameter no statement took (every one overrode it, or only `clear`s ran).
    if let Some(p) = request.params.keys().find(|k| !used.contains(k.as_str())) {
        return Err(PluginError::query(format!(
            "parameter :{p} is used by no statement"
        )));
    }
    let http = &conn.http;
    let mut written = 0;
    for (n, verb, title, data, input, spreadsheet) in plan {
        let id = &spreadsheet.id;
        let at = |e: PluginError| PluginError {
            message: format!("statement {n}: {}", e.message()).into(),
            ..e
        };
        match verb {
            Verb::Create => {
                let (r, c) = data.as_ref().map_or((0, 0), |d| {
                    (d.len(), d.iter().map(Vec::len).max().unwrap_or(0))
                });
                api.add_sheet(http, id, &title, r, c).map_err(at)?;
                if let Some(d) = &data {
                    api.update(http, id, &title, d, input).map_err(at)?;
                    written += d.len().saturating_sub(1) as u64;
                }
            }
            Verb::Update | Verb::Clear => {
                let sheet = api
                    .resolve(http, id, Some(&Worksheet::Name(title.clone())))
                    .map_err(at)?;
                api.clear(http, id, &sheet.title).map_err(at)?;
                if let Some(d) = &data {
                    api.update(http, id, &sheet.title, d, input).map_err(at)?;
                    written += d.len().saturating_sub(1) as u64;
                }
            }
        }
        plugboard_api::log::debug!(
            "statement {n}: {verb:?} worksheet {title:?} of spreadsheet {id}"
        );
    }
    Ok(written)
}

/// `update Sheet1`, `create "New sheet"`, `clear 0`.
fn parse(sql: &str) -> Result<(Verb, String), String> {
    let sql = sql.trim();
    let (verb, rest) = sql.split_once(char::is_whitespace).unwrap_or((sql, ""));
    let verb = match verb.to_ascii_lowercase().as_str() {
        "update" => Verb::Update,
        "create" => Verb::Create,
        "clear" => Verb::Clear,
        _ => {
            return Err(
                "expected `update <worksheet>`, `create <worksheet>` or `clear <worksheet>`"
                    .to_owned(),
            );
        }
    };
    let rest = rest.trim();
    let title = ['"', '\'']
        .iter()
        .find_map(|q| rest.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)))
        .unwrap_or(rest);
    if title.is_empty() {
        return Err("name the worksheet after the verb".to_owned());
    }
    Ok((verb, title.to_owned()))
}

/// The `data` parameter as rows of cell values, the header first.
fn rows(v: &Value) -> Result<Vec<Vec<Json>>, String> {
    let text = match v {
        Value::String(s) => s.as_str(),
        Value::Bytes(b) => {
            std::str::from_utf8(b).map_err(|_| "the bytes are not UTF-8 text".to_owned())?
        }
        other => return Err(format!("expected CSV or JSON text, got {other:?}")),
    };
    let rows = if text.trim_start().starts_with('[') {
        json_rows(text)?
    } else {
        crate::csv::parse(text)?
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.into_iter()
                    .map(|t| if i == 0 { Json::String(t) } else { typed(&t) })
                    .collect()
            })
            .collect()
    };
    if rows.is_empty() {
        return Err("the table is empty (not even a header row)".to_owned());
    }
    Ok(rows)
}

/// A CSV cell as the value written: a number, a boolean, else the text.
fn typed(text: &str) -> Json {
    match Cell::from_text(text) {
        Cell::Empty => Json::String(String::new()),
        Cell::Bool(b) => Json::Bool(b),
        Cell::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => Json::from(n as i64),
        Cell::Number(n) => Json::from(n),
        _ => Json::String(text.to_owned()),
    }
}

/// A JSON array of row objects (keys in their written order) or of arrays.
fn json_rows(text: &str) -> Result<Vec<Vec<Json>>, String> {
    let items: Vec<Item> = serde_json::from_str(text).map_err(|e| format!("not JSON rows: {e}"))?;
    let cell = |v: Json| match v {
        Json::Null => Json::String(String::new()),
        v @ (Json::Bool(_) | Json::Number(_) | Json::String(_)) => v,
        nested => Json::String(nested.to_string()),
    };
    if items.iter().all(|i| matches!(i, Item::Row(_))) {
        return Ok(items
            .into_iter()
            .map(|i| match i {
                Item::Row(r) => r.into_iter().map(cell).collect(),
                Item::Record(_) => Vec::new(),
            })
            .collect());
    }
    let mut header: Vec<String> = Vec::new();
    let mut records = Vec::with_capacity(items.len());
    for item in items {
        let Item::Record(fields) = item else {
            return Err("mixes row objects and arrays".to_owned());
        };
        for (k, _) in &fields {
            if !header.contains(k) {
                header.push(k.clone());
            }
        }
        records.push(fields);
    }
    let mut rows = vec![header.iter().cloned().map(Json::String).collect::<Vec<_>>()];
    for mut fields in records {
        rows.push(
            header
                .iter()
                .map(|h| {
                    fields
                        .iter()
                        .position(|(k, _)| k == h)
                        .map_or(Json::String(String::new()), |at| {
                            cell(fields.swap_remove(at).1)
                        })
                })
                .collect(),
        );
    }
    Ok(rows)
}

/// One element of JSON rows: an array, or an object with its keys in order (serde_json's
/// own map sorts them).
enum Item {
    Row(Vec<Json>),
    Record(Vec<(String, Json)>),
}

impl<'de> serde::Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a row: an object or an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
                let mut row = Vec::new();
                while let Some(v) = seq.next_element::<Json>()? {
                    row.push(v);
                }
                Ok(Item::Row(row))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    fields.push((k, v));
                }
                Ok(Item::Record(fields))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_a_verb_and_a_worksheet() {
        assert_eq!(parse("update Sheet1"), Ok((Verb::Update, "Sheet1".into())));
        assert_eq!(
            parse("CREATE \"New sheet\""),
            Ok((Verb::Create, "New sheet".into()))
        );
        assert_eq!(parse("clear  0 "), Ok((Verb::Clear, "0".into())));
        assert!(parse("delete Sheet1").is_err());
        assert!(parse("update").is_err());
    }

    #[test]
    fn data_is_csv_or_json_rows() {
        let csv = rows(&Value::String("name,n,ok\nx,1,TRUE\ny,2.5,\n".into())).expect("csv");
        assert_eq!(
            csv,
            vec![
                vec![Json::from("name"), Json::from("n"), Json::from("ok")],
                vec![Json::from("x"), Json::from(1), Json::from(true)],
                vec![Json::from("y"), Json::from(2.5), Json::from("")],
            ]
        );
        let json = rows(&Value::String(
            r#"[{"z":1,"a":null},{"a":"q","b":[1]}]"#.into(),
        ))
        .expect("json");
        assert_eq!(
            json,
            vec![
                vec![Json::from("z"), Json::from("a"), Json::from("b")],
                vec![Json::from(1), Json::from(""), Json::from("")],
                vec![Json::from(""), Json::from("q"), Json::from("[1]")],
            ]
        );
        let arrays = rows(&Value::String(r#"[["a","b"],[1,2]]"#.into())).expect("arrays");
        assert_eq!(arrays.len(), 2);
        assert!(rows(&Value::Int(3)).is_err());
        assert!(rows(&Value::String(String::new())).is_err());
    }
}

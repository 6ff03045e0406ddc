//! Schema discovery on the host's side: table names out of a [`Connection::tables`]
//! result, `tables PATTERN`'s filter, and the closest name for a table that is not there.

use polars::prelude::{BooleanChunked, DataFrame, NewChunkedArray};

use super::connection::Connection;
use crate::error::{Error, Result};

/// One row of a table list: its schema (if the source has them) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

impl TableName {
    /// `schema.name`, or the name alone.
    pub fn qualified(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The rows of a table list (see [`plugboard_api::catalog::TABLES_COLUMNS`]).
pub fn names(tables: &DataFrame) -> Result<Vec<TableName>> {
    let text = |column: &str| -> Result<Vec<Option<String>>> {
        let values = tables
            .column(column)
            .and_then(|c| c.str().cloned())
            .map_err(|error| Error::Polars {
                context: format!("the table list's {column:?} column"),
                error,
            })?;
        Ok(values.iter().map(|v| v.map(str::to_owned)).collect())
    };
    let schemas = text("schema")?;
    let names = text("name")?;
    Ok(schemas
        .into_iter()
        .zip(names)
        .filter_map(|(schema, name)| {
            Some(TableName {
                schema,
                name: name?,
            })
        })
        .collect())
}

/// The rows of a table list whose name, or `schema.name`, matches `pattern` (`*` any
/// text, `?` one character, case ignored).
pub fn matching(tables: &DataFrame, pattern: &str) -> Result<DataFrame> {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let keep: Vec<bool> = names(tables)?
        .iter()
        .map(|t| {
            glob(&pattern, &t.name.to_lowercase()) || glob(&pattern, &t.qualified().to_lowercase())
        })
        .collect();
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    tables.filter(&mask).map_err(|error| Error::Polars {
        context: "filtering the table list".to_owned(),
        error,
    })
}

/// A table list as a terminal table shows it: without the `schema` column when no row
/// has one (a SQLite file, a folder of files).
pub fn for_display(tables: DataFrame) -> DataFrame {
    let unused = tables
        .column("schema")
        .is_ok_and(|c| c.null_count() == c.len());
    if unused {
        tables.drop("schema").unwrap_or(tables)
    } else {
        tables
    }
}

/// Whether `text` matches the glob `pattern` (`*`, `?`), by the classic greedy walk with
/// one backtrack point: linear in practice, never exponential.
fn glob(pattern: &[char], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// `e`, from describing `table`, with the closest table the connection lists when the
/// source said it has no such table (a query error). Other errors pass unchanged.
pub fn with_suggestion(conn: &Connection, table: &str, e: Error) -> Error {
    let Error::Plugin {
        connection,
        plugin,
        kind: plugboard_api::ErrorKind::QUERY,
        retryable,
        message,
        attempts,
    } = e
    else {
        return e;
    };
    let e = |message: String| Error::Plugin {
        connection: connection.clone(),
        plugin: plugin.clone(),
        kind: plugboard_api::ErrorKind::QUERY,
        retryable,
        message,
        attempts,
    };
    let Some(tables) = conn.tables().fetch().ok().and_then(|df| names(&df).ok()) else {
        return e(message);
    };
    let qualified: Vec<String> = tables.iter().map(TableName::qualified).collect();
    let candidates = tables
        .iter()
        .map(|t| t.name.as_str())
        .chain(qualified.iter().map(String::as_str));
    match crate::util::closest(table, candidates) {
        Some(near) if near != table => e(format!("{message}; did you mean {near:?}?")),
        _ => e(message),
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_as_a_shell_does() {
        let m = |p: &str, t: &str| glob(&p.chars().collect::<Vec<_>>(), t);
        assert!(m("*", ""));
        assert!(m("in*", "invoice"));
        assert!(m("*line", "invoiceline"));
        assert!(m("i?voice", "invoice"));
        assert!(m("*o*e*", "invoiceline"));
        assert!(!m("in*", "album"));
        assert!(!m("i?voice", "ivoice"));
        assert!(!m("", "a"));
        // No exponential blow-up on many stars.
        assert!(!m(&"*a".repeat(30), &"a".repeat(29)));
    }
}

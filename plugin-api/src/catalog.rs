//! Since 1.6: schema discovery. A connection lists the tables it can see
//! ([`crate::Connector::tables`]) and describes one table's columns
//! ([`crate::Connector::describe`]).
//!
//! Both cross the boundary as ordinary reads (a [`ReadRequest`](crate::ReadRequest) whose
//! [`catalog`](crate::ReadRequest::catalog) says which list), so they are cached and
//! isolated like any read and need no new symbol. Their results have fixed columns:
//!
//! | list | columns |
//! |---|---|
//! | tables | `schema` (text, null when the source has none), `name` (text), `kind` (text: `table`, `view`, `file`, …) |
//! | columns | `column` (text), `type` (text: the Arrow type a read gives it, as arrow-rs prints it), `nullable` (boolean), `native_type` (text: the source's own name for the type, or null) |
//!
//! A host older than 1.6 never asks; the host does not ask a plugin built against an older
//! plugboard-api (it would read `query` instead) and says the plugin lacks the capability.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::PluginError;

/// What a catalog read lists instead of running the request's query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "list", rename_all = "lowercase")]
pub enum Catalog {
    /// The schemas, tables and views the connection can see: [`TABLES_COLUMNS`].
    Tables,
    /// The columns of `table`, named as the user wrote it (maybe `schema.table`, maybe
    /// quoted): [`COLUMNS_COLUMNS`].
    Columns { table: String },
}

/// The columns of a table list, in order.
pub const TABLES_COLUMNS: [&str; 3] = ["schema", "name", "kind"];
/// The columns of a table's description, in order.
pub const COLUMNS_COLUMNS: [&str; 4] = ["column", "type", "nullable", "native_type"];

/// One table, view or file a connection can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// The schema (or database, or attached file) it lives in; `None` where the source has
    /// no such level.
    pub schema: Option<String>,
    pub name: String,
    /// `table`, `view`, `file`, or the source's own word (`materialized view`, `foreign
    /// table`, …), lower case.
    pub kind: String,
}

impl TableInfo {
    /// A table of that name, in no schema.
    pub fn table(name: impl Into<String>) -> Self {
        Self {
            schema: None,
            name: name.into(),
            kind: "table".to_owned(),
        }
    }

    /// A view of that name, in no schema.
    pub fn view(name: impl Into<String>) -> Self {
        Self {
            kind: "view".to_owned(),
            ..Self::table(name)
        }
    }

    /// A file that reads as a table, by its path relative to the connection's root.
    pub fn file(path: impl Into<String>) -> Self {
        Self {
            kind: "file".to_owned(),
            ..Self::table(path)
        }
    }

    /// The same in `schema`.
    #[must_use]
    pub fn in_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The same with another kind.
    #[must_use]
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }
}

/// One column of a described table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    /// The Arrow type a read of this column gives.
    pub data_type: DataType,
    pub nullable: bool,
    /// The source's own name for the type (`varchar(40)`, `INTEGER`), if it has one.
    pub native_type: Option<String>,
}

impl ColumnInfo {
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Self {
        Self {
            name: name.into(),
            data_type,
            nullable,
            native_type: None,
        }
    }

    /// The same with the source's name for the type.
    #[must_use]
    pub fn native(mut self, native_type: impl Into<String>) -> Self {
        self.native_type = Some(native_type.into());
        self
    }

    /// The columns of an Arrow schema (what a zero-row read returned), without native types.
    pub fn from_schema(schema: &Schema) -> Vec<Self> {
        schema
            .fields()
            .iter()
            .map(|f| Self::new(f.name(), f.data_type().clone(), f.is_nullable()))
            .collect()
    }
}

fn text(values: impl IntoIterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(values.into_iter().collect::<StringArray>())
}

/// The schema of a table list.
pub fn tables_schema() -> SchemaRef {
    let [schema, name, kind] = TABLES_COLUMNS;
    Arc::new(Schema::new(vec![
        Field::new(schema, DataType::Utf8, true),
        Field::new(name, DataType::Utf8, false),
        Field::new(kind, DataType::Utf8, false),
    ]))
}

/// The schema of a table's description.
pub fn columns_schema() -> SchemaRef {
    let [column, data_type, nullable, native] = COLUMNS_COLUMNS;
    Arc::new(Schema::new(vec![
        Field::new(column, DataType::Utf8, false),
        Field::new(data_type, DataType::Utf8, false),
        Field::new(nullable, DataType::Boolean, false),
        Field::new(native, DataType::Utf8, true),
    ]))
}

/// A table list as one batch, in the order given.
pub fn tables_batch(tables: Vec<TableInfo>) -> Result<RecordBatch, PluginError> {
    let mut schemas = Vec::with_capacity(tables.len());
    let mut names = Vec::with_capacity(tables.len());
    let mut kinds = Vec::with_capacity(tables.len());
    for t in tables {
        schemas.push(t.schema);
        names.push(Some(t.name));
        kinds.push(Some(t.kind));
    }
    Ok(RecordBatch::try_new(
        tables_schema(),
        vec![text(schemas), text(names), text(kinds)],
    )?)
}

/// A table's description as one batch, in the order given.
pub fn columns_batch(columns: Vec<ColumnInfo>) -> Result<RecordBatch, PluginError> {
    let mut names = Vec::with_capacity(columns.len());
    let mut types = Vec::with_capacity(columns.len());
    let mut nullable = Vec::with_capacity(columns.len());
    let mut native = Vec::with_capacity(columns.len());
    for c in columns {
        names.push(Some(c.name));
        types.push(Some(c.data_type.to_string()));
        nullable.push(Some(c.nullable));
        native.push(c.native_type);
    }
    Ok(RecordBatch::try_new(
        columns_schema(),
        vec![
            text(names),
            text(types),
            Arc::new(BooleanArray::from(nullable)),
            text(native),
        ],
    )?)
}

/// Splits `schema.table` at its last unquoted dot, unquoting each part (`"a.b"`, `` `x` ``
/// and `[x]` are one part): how the SQL connectors read the name a user gives `describe`.
/// `None` for the schema when there is no dot.
pub fn split_qualified(name: &str) -> (Option<String>, String) {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = name.trim().chars().peekable();
    while let Some(c) = chars.next() {
        let close = match c {
            '"' => Some('"'),
            '`' => Some('`'),
            '[' => Some(']'),
            _ => None,
        };
        match close {
            Some(close) => {
                while let Some(c) = chars.next() {
                    if c == close {
                        // A doubled closing quote is the quote itself.
                        if chars.peek() == Some(&close) && close != ']' {
                            current.push(c);
                            chars.next();
                            continue;
                        }
                        break;
                    }
                    current.push(c);
                }
            }
            None if c == '.' => parts.push(std::mem::take(&mut current)),
            None => current.push(c),
        }
    }
    let table = current;
    if parts.is_empty() {
        (None, table)
    } else {
        (Some(parts.join(".")), table)
    }
}

/// The error for a table the connection cannot see: a `query` error naming it (the host
/// adds the closest names the connection lists).
pub fn unknown_table(table: &str) -> PluginError {
    PluginError::query(format!("no table or view named {table:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_cross_as_tagged_json() {
        let json = serde_json::to_string(&Catalog::Columns { table: "t".into() }).expect("json");
        assert_eq!(json, r#"{"list":"columns","table":"t"}"#);
        let back: Catalog = serde_json::from_str(r#"{"list":"tables"}"#).expect("parse");
        assert_eq!(back, Catalog::Tables);
    }

    #[test]
    fn batches_have_the_documented_columns() {
        let tables = tables_batch(vec![
            TableInfo::table("a").in_schema("main"),
            TableInfo::view("v"),
        ])
        .expect("batch");
        let names: Vec<_> = tables
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, TABLES_COLUMNS);
        assert_eq!(tables.num_rows(), 2);
        assert!(tables.column(0).is_null(1), "no schema is null");

        let columns = columns_batch(vec![
            ColumnInfo::new("id", DataType::Int64, false).native("INTEGER"),
        ])
        .expect("batch");
        let names: Vec<_> = columns
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, COLUMNS_COLUMNS);
        let types = columns
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("text");
        assert_eq!(types.value(0), "Int64");
    }

    #[test]
    fn qualified_names_split_at_the_last_unquoted_dot() {
        let split = |s: &str| split_qualified(s);
        assert_eq!(split("t"), (None, "t".into()));
        assert_eq!(split("s.t"), (Some("s".into()), "t".into()));
        assert_eq!(
            split(r#""my.schema"."a""b""#),
            (Some("my.schema".into()), r#"a"b"#.into())
        );
        assert_eq!(split("`db`.`t`"), (Some("db".into()), "t".into()));
        assert_eq!(split("[dbo].[T x]"), (Some("dbo".into()), "T x".into()));
        assert_eq!(split("cat.s.t"), (Some("cat.s".into()), "t".into()));
    }
}

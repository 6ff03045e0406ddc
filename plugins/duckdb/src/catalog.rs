//! Schema discovery from DuckDB's own catalog functions: the tables and views of every
//! attached database (system ones left out), and a table's columns with DuckDB's type
//! name, nullability and the Arrow type this connector's read gives each (from a zero-row
//! read of the table).

use plugboard_api::arrow_array::RecordBatch;
use plugboard_api::arrow_array::cast::AsArray;
use plugboard_api::catalog::{self, ColumnInfo, TableInfo};
use plugboard_api::{PluginError, ReadRequest, RecordBatchReader, Value};

use crate::DuckDb;

/// `schema`, or `database.schema` outside the current database; `None` for `main` of the
/// current database, where a bare name finds it.
fn shown_schema(database: String, schema: String, current: &str) -> Option<String> {
    match (database == current, schema == "main") {
        (true, true) => None,
        (true, false) => Some(schema),
        (false, _) => Some(format!("{database}.{schema}")),
    }
}

/// Runs `sql` through this connector's own read and returns its batches: DuckDB hands
/// text over as Arrow views, which its row API cannot read.
fn rows(
    db: &DuckDb,
    sql: &str,
    params: &[(&str, Option<&str>)],
) -> Result<Vec<RecordBatch>, PluginError> {
    let request = ReadRequest {
        query: sql.to_owned(),
        params: params
            .iter()
            .map(|(n, v)| {
                (
                    (*n).to_owned(),
                    v.map_or(Value::Null, |v| Value::String(v.to_owned())),
                )
            })
            .collect(),
        ..ReadRequest::default()
    };
    plugboard_api::Connector::read(db, &request)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PluginError::query(format!("reading the catalog: {e}")))
}

/// Column `i` of `batch` as text, whether DuckDB sent views or plain strings.
fn text(batch: &RecordBatch, i: usize) -> Vec<String> {
    let column = batch.column(i);
    if let Some(v) = column.as_string_view_opt() {
        return v.iter().map(|s| s.unwrap_or_default().to_owned()).collect();
    }
    if let Some(v) = column.as_string_opt::<i32>() {
        return v.iter().map(|s| s.unwrap_or_default().to_owned()).collect();
    }
    vec![String::new(); batch.num_rows()]
}

/// The first `n` columns of `batch` as text, row by row.
fn text_rows(batch: &RecordBatch, n: usize) -> Vec<Vec<String>> {
    let columns: Vec<Vec<String>> = (0..n).map(|i| text(batch, i)).collect();
    (0..batch.num_rows())
        .map(|r| columns.iter().map(|c| c[r].clone()).collect())
        .collect()
}

pub(crate) fn tables(db: &DuckDb) -> Result<Vec<TableInfo>, PluginError> {
    let batches = rows(
        db,
        "SELECT database_name, schema_name, table_name, 'table', current_database() \
         FROM duckdb_tables() WHERE NOT internal \
         UNION ALL \
         SELECT database_name, schema_name, view_name, 'view', current_database() \
         FROM duckdb_views() WHERE NOT internal \
         ORDER BY 1, 2, 3",
        &[],
    )?;
    let mut out = Vec::new();
    for batch in &batches {
        for row in text_rows(batch, 5) {
            let [database, schema, name, kind, current]: [String; 5] =
                row.try_into().unwrap_or_default();
            let table = TableInfo::table(name).kind(kind);
            out.push(match shown_schema(database, schema, &current) {
                Some(s) => table.in_schema(s),
                None => table,
            });
        }
    }
    Ok(out)
}

/// The columns of `table` (`name`, `schema.name` or `database.schema.name`; case is
/// ignored, as DuckDB ignores it).
pub(crate) fn describe(db: &DuckDb, table: &str) -> Result<Vec<ColumnInfo>, PluginError> {
    let (qualifier, name) = catalog::split_qualified(table);
    let (database, schema) = match qualifier.as_deref().map(|q| q.split_once('.')) {
        None => (None, None),
        Some(None) => (None, qualifier.clone()),
        Some(Some((d, s))) => (Some(d.to_owned()), Some(s.to_owned())),
    };
    let batches = rows(
        db,
        "SELECT database_name, schema_name, table_name, column_name, data_type, \
                CAST(is_nullable AS VARCHAR) \
         FROM duckdb_columns() \
         WHERE lower(table_name) = lower($name) \
           AND lower(schema_name) = lower(coalesce($schema, current_schema())) \
           AND lower(database_name) = lower(coalesce($database, current_database())) \
         ORDER BY column_index",
        &[
            ("name", Some(&name)),
            ("schema", schema.as_deref()),
            ("database", database.as_deref()),
        ],
    )?;
    let columns: Vec<[String; 6]> = batches
        .iter()
        .flat_map(|b| text_rows(b, 6))
        .map(|row| row.try_into().unwrap_or_default())
        .collect();
    let Some([database, schema, name, ..]) = columns.first() else {
        return Err(catalog::unknown_table(table));
    };
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let request = ReadRequest {
        query: format!(
            "SELECT * FROM {}.{}.{}",
            quote(database),
            quote(schema),
            quote(name)
        ),
        limit: Some(0),
        ..ReadRequest::default()
    };
    let schema = plugboard_api::Connector::read(db, &request)?.schema();
    Ok(columns
        .into_iter()
        .zip(schema.fields())
        .map(|([_, _, _, column, native, nullable], field)| {
            ColumnInfo::new(column, field.data_type().clone(), nullable == "true").native(native)
        })
        .collect())
}

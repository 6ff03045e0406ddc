//! Schema discovery: the tables and views of every attached database, and a table's
//! columns from `pragma_table_xinfo`, typed by their declared affinity (what a read of an
//! empty column gives; a column holding other values reads as what they are).

use plugboard_api::catalog::{self, ColumnInfo, TableInfo};
use plugboard_api::{PluginError, arrow_schema::DataType};

use crate::read::{declared_type, query_error};

/// The tables and views of `main` (no schema shown) and of each other attached
/// database (`temp` included when it has any), `sqlite_` internals left out.
pub(crate) fn tables(conn: &rusqlite::Connection) -> Result<Vec<TableInfo>, PluginError> {
    let mut schemas = conn
        .prepare("SELECT name FROM pragma_database_list ORDER BY seq")
        .map_err(query_error)?;
    let schemas: Vec<String> = schemas
        .query_map([], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(query_error)?;
    let mut out = Vec::new();
    for schema in schemas {
        let sql = format!(
            "SELECT name, type FROM {}.sqlite_schema \
             WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             ORDER BY name",
            crate::quote_ident(&schema)
        );
        let mut stmt = conn.prepare(&sql).map_err(query_error)?;
        let rows: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(query_error)?;
        for (name, kind) in rows {
            let table = TableInfo::table(name).kind(kind);
            out.push(if schema == "main" {
                table
            } else {
                table.in_schema(schema.clone())
            });
        }
    }
    Ok(out)
}

/// The columns of `table` (`name`, or `schema.name` for an attached database).
pub(crate) fn describe(
    conn: &rusqlite::Connection,
    table: &str,
) -> Result<Vec<ColumnInfo>, PluginError> {
    let (schema, name) = catalog::split_qualified(table);
    let mut stmt = conn
        .prepare(
            "SELECT name, type, \"notnull\", pk, hidden \
             FROM pragma_table_xinfo(?1, ?2) ORDER BY cid",
        )
        .map_err(query_error)?;
    let rows: Vec<(String, String, bool, i64, i64)> = stmt
        .query_map(
            rusqlite::params![name, schema.as_deref().unwrap_or("main")],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .and_then(Iterator::collect)
        .map_err(query_error)?;
    // A table always has a column: none means no such table.
    if rows.is_empty() {
        return Err(catalog::unknown_table(table));
    }
    Ok(rows
        .into_iter()
        // Hidden columns of virtual tables are not read by `SELECT *`.
        .filter(|(_, _, _, _, hidden)| *hidden != 1)
        .map(|(name, decl, not_null, pk, _)| {
            let data_type = match decl.trim() {
                // A view's expression column declares nothing: its values decide.
                "" => DataType::Null,
                d => declared_type(Some(d)),
            };
            // An INTEGER PRIMARY KEY is the rowid: never null.
            let rowid = pk > 0 && decl.eq_ignore_ascii_case("integer");
            let column = ColumnInfo::new(name, data_type, !(not_null || rowid));
            match decl.trim() {
                "" => column,
                d => column.native(d),
            }
        })
        .collect())
}

//! Schema discovery from `information_schema`: the tables and views of every database
//! the user can see (the server's own left out), and a table's columns with their
//! `COLUMN_TYPE`, nullability and the Arrow type this connector's read gives each (from a
//! zero-row read of the table).

use mysql::Conn;
use mysql::prelude::Queryable;
use plugboard_api::catalog::{self, ColumnInfo, TableInfo};
use plugboard_api::{PluginError, ReadRequest};

use crate::types::ZeroDates;
use crate::{Stage, classify};

fn established(e: mysql::Error) -> PluginError {
    classify(&e, Stage::Established)
}

pub(crate) fn tables(conn: &mut Conn) -> Result<Vec<TableInfo>, PluginError> {
    let rows: Vec<(String, String, String)> = conn
        .query(
            "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(TABLE_TYPE AS CHAR) \
             FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY 1, 2",
        )
        .map_err(established)?;
    Ok(rows
        .into_iter()
        .map(|(schema, name, kind)| {
            let kind = match kind.as_str() {
                "BASE TABLE" => "table".to_owned(),
                "VIEW" => "view".to_owned(),
                other => other.to_lowercase(),
            };
            TableInfo::table(name).in_schema(schema).kind(kind)
        })
        .collect())
}

/// The columns of `table`: `name` (in the connection's database) or `database.name`.
pub(crate) fn describe(
    conn: &mut Conn,
    table: &str,
    zero_dates: ZeroDates,
) -> Result<Vec<ColumnInfo>, PluginError> {
    let (schema, name) = catalog::split_qualified(table);
    let rows: Vec<(String, String, String, String)> = conn
        .exec(
            "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(COLUMN_NAME AS CHAR), \
                    CAST(COLUMN_TYPE AS CHAR), CAST(IS_NULLABLE AS CHAR) \
             FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
            (schema, name.clone()),
        )
        .map_err(established)?;
    let Some((schema, ..)) = rows.first() else {
        return Err(catalog::unknown_table(table));
    };
    let quote = |s: &str| format!("`{}`", s.replace('`', "``"));
    let request = ReadRequest {
        query: format!("SELECT * FROM {}.{}", quote(schema), quote(&name)),
        limit: Some(0),
        ..ReadRequest::default()
    };
    let read = crate::read(conn, &request, zero_dates, &mut |_| Ok(()))?;
    Ok(rows
        .iter()
        .zip(read.fields())
        .map(|((_, column, native, nullable), field)| {
            ColumnInfo::new(column, field.data_type().clone(), nullable == "YES").native(native)
        })
        .collect())
}

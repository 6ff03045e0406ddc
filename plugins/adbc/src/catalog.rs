//! Schema discovery through ADBC: `GetObjects` (to table depth) for the table list, and
//! `GetTableSchema` for a table's columns, as the driver reports them.

use adbc_core::Connection as _;
use adbc_core::error::Status;
use adbc_core::options::ObjectDepth;
use plugboard_api::PluginError;
use plugboard_api::arrow_array::cast::AsArray;
use plugboard_api::arrow_array::{Array, RecordBatch, StructArray};
use plugboard_api::catalog::{self, ColumnInfo, TableInfo};

use crate::Adbc;

/// A named child of a struct array, as text, or an error naming what the driver left out.
fn child<'a>(array: &'a StructArray, name: &str) -> Result<&'a dyn Array, PluginError> {
    array
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| PluginError::internal(format!("GetObjects: the driver sent no {name}")))
}

fn text(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    let strings = array.as_string_opt::<i32>()?;
    Some(strings.value(row).to_owned())
}

/// The tables of one `GetObjects` batch: catalog → schemas → tables.
fn tables_of(batch: &RecordBatch, out: &mut Vec<TableInfo>) -> Result<(), PluginError> {
    let catalogs = StructArray::from(batch.clone());
    let names = child(&catalogs, "catalog_name")?;
    let schemas = child(&catalogs, "catalog_db_schemas")?.as_list::<i32>();
    let several = catalogs.len() > 1;
    for c in 0..catalogs.len() {
        if schemas.is_null(c) {
            continue;
        }
        let catalog_name = text(names, c);
        let per_catalog = schemas.value(c);
        let per_catalog = per_catalog.as_struct();
        let schema_names = child(per_catalog, "db_schema_name")?;
        let tables = child(per_catalog, "db_schema_tables")?.as_list::<i32>();
        for s in 0..per_catalog.len() {
            if tables.is_null(s) {
                continue;
            }
            let schema = text(schema_names, s).filter(|s| !s.is_empty());
            // A catalog prefix only where there are several to tell apart.
            let shown = match (&catalog_name, schema) {
                (Some(c), Some(s)) if several => Some(format!("{c}.{s}")),
                (_, s) => s,
            };
            let per_schema = tables.value(s);
            let per_schema = per_schema.as_struct();
            let table_names = child(per_schema, "table_name")?;
            let table_types = child(per_schema, "table_type")?;
            for t in 0..per_schema.len() {
                let Some(name) = text(table_names, t) else {
                    continue;
                };
                let kind = text(table_types, t).map_or("table".to_owned(), |k| {
                    match k.to_lowercase().as_str() {
                        "base table" => "table".to_owned(),
                        other => other.to_owned(),
                    }
                });
                let table = TableInfo::table(name).kind(kind);
                out.push(match &shown {
                    Some(s) => table.in_schema(s.clone()),
                    None => table,
                });
            }
        }
    }
    Ok(())
}

pub(crate) fn tables(db: &Adbc) -> Result<Vec<TableInfo>, PluginError> {
    let context = &db.pool.manager().context;
    let conn = db.pool.get()?;
    let reader = conn
        .inner
        .get_objects(ObjectDepth::Tables, None, None, None, None, None)
        .map_err(|e| context.error(&e, "listing the tables", false))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| PluginError::query(format!("listing the tables: {e}")))?;
        tables_of(&batch, &mut out)?;
    }
    Ok(out)
}

/// `table`, `schema.table` or `catalog.schema.table`, through `GetTableSchema`.
pub(crate) fn describe(db: &Adbc, table: &str) -> Result<Vec<ColumnInfo>, PluginError> {
    let context = &db.pool.manager().context;
    let (qualifier, name) = catalog::split_qualified(table);
    let (catalog_name, schema) = match qualifier.as_deref().map(|q| q.split_once('.')) {
        None => (None, None),
        Some(None) => (None, qualifier.as_deref()),
        Some(Some((c, s))) => (Some(c), Some(s)),
    };
    let conn = db.pool.get()?;
    match conn.inner.get_table_schema(catalog_name, schema, &name) {
        Ok(schema) => Ok(ColumnInfo::from_schema(&schema)),
        Err(e) if e.status == Status::NotFound => Err(catalog::unknown_table(table)),
        Err(e) => Err(context.error(&e, &format!("describing {table}"), false)),
    }
}

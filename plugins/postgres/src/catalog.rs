//! Schema discovery from `pg_catalog`: the relations a connection can see (system schemas
//! left out), and a table's columns with `format_type`'s name, `NOT NULL`, and the Arrow
//! type this connector's own read gives each (from a zero-row read of the table).

use crate::client::Client;
use crate::established;
use plugboard_api::catalog::{self, ColumnInfo, TableInfo};
use plugboard_api::{PluginError, ReadRequest};

/// Tables, partitioned tables, views, materialized views and foreign tables, by schema
/// and name.
pub(crate) fn tables(client: &mut Client) -> Result<Vec<TableInfo>, PluginError> {
    let rows = client.run(|c| async move {
        c.query(
            "SELECT n.nspname::text, c.relname::text, c.relkind::text \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
               AND NOT c.relispartition \
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(established)
    })?;
    Ok(rows
        .iter()
        .map(|r| {
            let kind = match r.get::<_, String>(2).as_str() {
                "v" => "view",
                "m" => "materialized view",
                "f" => "foreign table",
                _ => "table",
            };
            TableInfo::table(r.get::<_, String>(1))
                .in_schema(r.get::<_, String>(0))
                .kind(kind)
        })
        .collect())
}

/// The columns of `table`, named as `psql`'s `\d` takes it: `orders`, `public.orders`,
/// `"Mixed Case"` (resolved by `to_regclass`, so the search path and quoting apply).
pub(crate) fn describe(client: &mut Client, table: &str) -> Result<Vec<ColumnInfo>, PluginError> {
    let found = client.run(|c| async move {
        c.query_one(
            "SELECT to_regclass($1::text)::oid, to_regclass($1::text)::text",
            &[&table],
        )
        .await
        .map_err(established)
    })?;
    let (Some(oid), Some(quoted)) = (
        found.get::<_, Option<u32>>(0),
        found.get::<_, Option<String>>(1),
    ) else {
        return Err(catalog::unknown_table(table));
    };
    let attributes = client.run(|c| async move {
        c.query(
            "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull \
             FROM pg_catalog.pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&oid],
        )
        .await
        .map_err(established)
    })?;
    // The types a read gives, from the read itself.
    let request = ReadRequest {
        query: format!("SELECT * FROM {quoted}"),
        limit: Some(0),
        ..ReadRequest::default()
    };
    let schema = crate::read(client, &request, &mut |_| Ok(()))?;
    Ok(attributes
        .iter()
        .zip(schema.fields())
        .map(|(a, field)| {
            ColumnInfo::new(
                a.get::<_, String>(0),
                field.data_type().clone(),
                !a.get::<_, bool>(2),
            )
            .native(a.get::<_, String>(1))
        })
        .collect())
}

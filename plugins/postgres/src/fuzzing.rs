//! Fuzz target body (issue 13): the PostgreSQL connector's placeholder handling, without a
//! server: `:name` rewritten to `$n` around literals, identifiers, comments, dollar quotes
//! and casts, `$n` queries, the `LIMIT` and `COPY` wrapping, partitioned reads' queries,
//! and binding (unknown, missing and shared parameters, each value's text form). A panic
//! is a finding. `fuzz/` runs it (target `postgres_placeholders`);
//! `tests/tests/fuzz_corpus.rs` replays the corpus on stable.
#![doc(hidden)]

pub use plugboard_api::fuzz_input::{Decoded, decode, encode};

use plugboard_api::Params;
use tokio_postgres::types::{ToSql, Type};

use crate::{TextParam, bind, sql};

/// Runs one input (see `plugboard_api::fuzz_input`): `mode` bit 0 binds strictly (as a
/// read does), bit 1 limits the read, the high bits pick the partition bounds.
pub fn placeholders(data: &[u8]) {
    plugboard_api::fuzz_input::placeholders(
        data,
        |c| format!("\"{}\"", c.replace('"', "\"\"")),
        &run,
    );
}

/// What a read or an execute does with one statement before sending it.
fn run(statement: &str, own: &Params, shared: &Params, mode: u8) {
    let _ = sql::is_copyable(statement);
    let _ = sql::trim_statement(statement);
    let Ok(rewritten) = sql::rewrite(statement) else {
        return;
    };
    if sql::is_copyable(&rewritten.sql) {
        let _ = format!(
            "SELECT * FROM ({}\n) AS plugboard_limited LIMIT 10",
            sql::trim_statement(&rewritten.sql)
        );
    }
    let strict = mode & 1 != 0;
    let Ok(bound) = bind(&rewritten.names, own, Some(shared), strict) else {
        return;
    };
    for param in &bound {
        for ty in [
            Type::TEXT,
            Type::INT8,
            Type::BYTEA,
            Type::FLOAT8,
            Type::BOOL,
        ] {
            let mut out = tokio_postgres::types::private::BytesMut::new();
            let _ = param.to_sql_checked(&ty, &mut out);
        }
    }
    let _: Vec<&TextParam<'_>> = bound.iter().collect();
}

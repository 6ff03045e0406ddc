//! Fuzz target body (issue 13): the PostgreSQL connector's placeholder handling, without a
//! server: `:name` rewritten to `$n` around literals, identifiers, comments, dollar quotes
//! and casts, `$n` queries, the `LIMIT` and `COPY` wrapping, partitioned reads' queries,
//! and binding (unknown, missing and shared parameters, each value's text form). A panic
//! is a finding. `fuzz/` runs it (target `postgres_placeholders`);
//! `tests/tests/fuzz_corpus.rs` replays the corpus on stable.
#![doc(hidden)]

pub use plugboard_api::fuzz_input::{Decoded, decode, encode};
use plugboard_api::fuzz_input::{all_params, params_at, with_options};

use plugboard_api::partition::Partitioning;
use plugboard_api::{Params, ReadRequest};
use postgres::types::{ToSql, Type};

use crate::{TextParam, bind, sql};

/// Runs one input: see [`decode`] for its layout; `mode` bit 0 binds strictly (as a read
/// does), bit 1 limits the read, the high bits pick the partition bounds.
pub fn placeholders(data: &[u8]) {
    let input = decode(data);
    let shared = params_at(&input, 0);
    for (i, statement) in input.statements.iter().enumerate() {
        let own = if i == 0 {
            all_params(&input)
        } else {
            params_at(&input, i + 1)
        };
        run(statement, &own, &shared, input.mode);
    }
    let Some(query) = input.statements.first() else {
        return;
    };
    let request = ReadRequest {
        query: query.clone(),
        params: all_params(&input),
        limit: (input.mode & 2 != 0).then_some(10),
        ..ReadRequest::default()
    };
    let request = with_options(request, &input.options);
    if let Ok(Some(partitioning)) = Partitioning::from_request(&request) {
        let column = format!("\"{}\"", partitioning.column.replace('"', "\"\""));
        for wrapped in partitioning.bounds_sql(query, &column) {
            run(&wrapped, &request.params, &shared, input.mode);
        }
        let (min, max) = match input.mode >> 5 {
            0 => (i64::MIN, i64::MAX),
            1 => (0, 0),
            2 => (-5, 5),
            _ => (1, 1_000_000),
        };
        for part in partitioning
            .queries(query, &column, min, max)
            .into_iter()
            .take(300)
        {
            run(&part, &request.params, &shared, input.mode);
        }
    }
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
            let mut out = postgres::types::private::BytesMut::new();
            let _ = param.to_sql_checked(&ty, &mut out);
        }
    }
    let _: Vec<&TextParam<'_>> = bound.iter().collect();
}

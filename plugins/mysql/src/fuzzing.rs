//! Fuzz target body (issue 13): the MySQL connector's placeholder handling, without a
//! server: `:name` and `?` rewritten around literals, quoted identifiers, comments and `:=`,
//! the `LIMIT` wrapping, partitioned reads' queries, and binding (unknown, missing and
//! shared parameters, each value as the server gets it). A panic is a finding. `fuzz/` runs
//! it (target `mysql_placeholders`); `tests/tests/fuzz_corpus_mysql.rs` replays the corpus
//! on stable. The input layout is `plugboard_api::fuzz_input`'s, as for the other SQL
//! connectors.
#![doc(hidden)]

pub use plugboard_api::fuzz_input::{Decoded, decode, encode};
use plugboard_api::fuzz_input::{all_params, params_at, with_options};
use plugboard_api::partition::Partitioning;
use plugboard_api::{Params, ReadRequest};

use crate::{bind, sql};

/// Runs one input; `mode` bit 0 binds strictly (as a read does), bit 1 limits the read, the
/// high bits pick the partition bounds.
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
        let column = format!("`{}`", partitioning.column.replace('`', "``"));
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
    let Ok(rewritten) = sql::rewrite(statement) else {
        return;
    };
    assert!(
        rewritten.sql.bytes().filter(|b| *b == b'?').count() >= rewritten.names.len(),
        "every bound name has its placeholder"
    );
    if sql::is_query(&rewritten.sql) {
        let _ = format!(
            "SELECT * FROM ({}\n) AS plugboard_limited LIMIT 10",
            sql::trim_statement(&rewritten.sql)
        );
    }
    let strict = mode & 1 != 0;
    if let Ok(bound) = bind(&rewritten.names, own, Some(shared), strict) {
        assert_eq!(bound.len(), rewritten.names.len());
    }
}

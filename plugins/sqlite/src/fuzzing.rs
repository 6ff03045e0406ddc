//! Fuzz target body (issue 13): the SQLite connector's placeholder handling and parameter
//! binding, through its own `read` and `execute` on a fresh in-memory database: named
//! (`:a`, `@a`, `$a`), numbered (`?1`) and anonymous (`?`) placeholders, statement and
//! shared parameters, unused and missing ones, partitioned reads (whose queries wrap the
//! user's). A panic is a finding. `fuzz/` runs it (target `sqlite_params`);
//! `tests/tests/fuzz_corpus.rs` replays the corpus on stable.
//!
//! Statements that could touch files (`ATTACH`, `VACUUM INTO`) or loop without end
//! (`RECURSIVE`) are skipped: they test SQLite, not the connector.
#![doc(hidden)]

pub use plugboard_api::fuzz_input::{Decoded, decode, encode};
use plugboard_api::fuzz_input::{all_params, params_at, with_options};

use plugboard_api::{Connector, ExecuteRequest, Params, ReadRequest, Statement, from_table};

use crate::Sqlite;

/// Runs one input: see [`decode`] for its layout; `mode` bit 0 reads the first statement,
/// bit 1 executes them all, bit 2 limits the read, bit 3 streams it, bits 4–5 set the
/// batch size.
pub fn params(data: &[u8]) {
    let input = decode(data);
    let skip = ["attach", "vacuum", "recursive", "load_extension"];
    if input.statements.iter().any(|s| {
        let lower = s.to_ascii_lowercase();
        skip.iter().any(|w| lower.contains(w))
    }) {
        return;
    }
    let Some(db) = database() else {
        return;
    };
    if input.mode & 1 != 0
        && let Some(query) = input.statements.first()
    {
        let request = ReadRequest {
            query: query.clone(),
            params: all_params(&input),
            limit: (input.mode & 4 != 0).then_some(u64::from(input.mode >> 6)),
            batch_size: Some(1 + usize::from(input.mode >> 4 & 3)),
            stream: input.mode & 8 != 0,
            ..ReadRequest::default()
        };
        let request = with_options(request, &input.options);
        if let Ok(reader) = db.read(&request) {
            for batch in reader.take(1000) {
                if batch.is_err() {
                    break;
                }
            }
        }
    }
    if input.mode & 2 != 0 {
        let request = ExecuteRequest {
            statements: input
                .statements
                .iter()
                .enumerate()
                .map(|(i, sql)| Statement {
                    sql: sql.clone(),
                    params: params_at(&input, i + 1),
                })
                .collect(),
            params: params_at(&input, 0),
        };
        let _ = db.execute(&request);
    }
}

/// A fresh in-memory database with a small table `t(a, b, c)` of every storage class.
fn database() -> Option<Sqlite> {
    // A JSON object, as the host hands a connection's table over.
    let mut table = ReadRequest::default().options;
    table.insert("url".to_owned(), "sqlite://".into());
    let db = Sqlite::connect(from_table(table).ok()?).ok()?;
    db.execute(&ExecuteRequest {
        statements: vec![Statement {
            // A heap limit (process-wide) turns a runaway allocation into an error.
            sql: "PRAGMA hard_heap_limit = 268435456; \
                  CREATE TABLE t(a, b, c); \
                  INSERT INTO t VALUES (1, 'x', x'00ff'), (2, NULL, 2.5), (NULL, 'y', NULL), (3, 'z', 7)"
                .into(),
            params: Params::new(),
        }],
        params: Params::new(),
    })
    .ok()?;
    Some(db)
}

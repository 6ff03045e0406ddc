//! Fuzz target body (issue 13): the MySQL connector's placeholder handling, without a
//! server: `:name` and `?` rewritten around literals, quoted identifiers, comments and `:=`,
//! the `LIMIT` wrapping, partitioned reads' queries, and binding (unknown, missing and
//! shared parameters, each value as the server gets it). A panic is a finding. `fuzz/` runs
//! it (target `mysql_placeholders`); `tests/tests/fuzz_corpus_mysql.rs` replays the corpus
//! on stable. The input layout is `plugboard_api::fuzz_input`'s, as for the other SQL
//! connectors.
#![doc(hidden)]

use plugboard_api::Params;
pub use plugboard_api::fuzz_input::{Decoded, decode, encode};

use crate::{bind, sql};

/// Runs one input (see `plugboard_api::fuzz_input`): `mode` bit 0 binds strictly (as a
/// read does), bit 1 limits the read, the high bits pick the partition bounds.
pub fn placeholders(data: &[u8]) {
    plugboard_api::fuzz_input::placeholders(data, |c| format!("`{}`", c.replace('`', "``")), &run);
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

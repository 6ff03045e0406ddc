//! The PostgreSQL connector's fuzz corpus, replayed on stable: see `fuzz_corpus.rs` (a
//! test binary links one connector).

mod fuzz_replay;

use fuzz_replay::{replay, sql_seeds, write_seed};

#[test]
fn postgres_placeholders() {
    replay(
        "postgres_placeholders",
        plugboard_postgres::fuzzing::placeholders,
    );
}

#[test]
/// The hand-made seeds are what their generators make (`PLUGBOARD_WRITE_SEEDS=1`
/// rewrites them).
fn seeds_are_current() {
    for (i, (mode, params, options, statements)) in sql_seeds().iter().enumerate() {
        let p = plugboard_postgres::fuzzing::encode(*mode, params, options, statements);
        write_seed("postgres_placeholders", &format!("sql-{i}"), &p);
    }
}

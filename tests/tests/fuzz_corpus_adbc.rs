//! The ADBC connector's fuzz corpus, replayed on stable: see `fuzz_corpus.rs` (a test
//! binary links one connector).

mod fuzz_replay;

use fuzz_replay::{SqlSeed, replay, sql_seeds, write_seed};
use plugboard_api::Value;

#[test]
fn adbc_placeholders() {
    replay("adbc_placeholders", plugboard_adbc::fuzzing::placeholders);
}

/// The corners of binding by first use, beside the seeds every SQL target shares.
fn adbc_seeds() -> Vec<SqlSeed> {
    vec![
        (
            1,
            vec![(0, "a", Value::Int(1)), (0, "b", Value::String("x".into()))],
            "",
            vec!["SELECT @b, ':a' /* :a */ -- :a\n, x::int, $a, :b, src:a FROM t"],
        ),
        (
            0,
            vec![(0, "1", Value::Null), (0, "3", Value::Float(f64::NAN))],
            "",
            vec!["SELECT $1, $3"],
        ),
        (
            1,
            vec![
                (0, "1", Value::Int(1)),
                (0, "n", Value::Bytes(vec![0, 255])),
            ],
            "",
            vec!["SELECT ?, :n"],
        ),
    ]
}

#[test]
/// The hand-made seeds are what their generators make (`PLUGBOARD_WRITE_SEEDS=1`
/// rewrites them).
fn seeds_are_current() {
    for (i, (mode, params, options, statements)) in
        sql_seeds().iter().chain(&adbc_seeds()).enumerate()
    {
        let p = plugboard_adbc::fuzzing::encode(*mode, params, options, statements);
        write_seed("adbc_placeholders", &format!("sql-{i}"), &p);
    }
}

//! The MySQL connector's fuzz corpus, replayed on stable: see `fuzz_corpus.rs` (a test
//! binary links one connector).

mod fuzz_replay;

use fuzz_replay::{SqlSeed, replay, sql_seeds, write_seed};
use plugboard_api::Value;

#[test]
fn mysql_placeholders() {
    replay("mysql_placeholders", plugboard_mysql::fuzzing::placeholders);
}

/// MySQL's own lexical corners, beside the seeds every SQL target shares.
fn mysql_seeds() -> Vec<SqlSeed> {
    vec![
        (
            1,
            vec![(0, "1", Value::Int(1)), (0, "2", Value::String("x".into()))],
            "",
            vec!["SELECT `a?`, 'it\\'s :no', \"?\" FROM t WHERE a = ? AND b = ?"],
        ),
        (
            0,
            vec![(0, "v", Value::Int(3))],
            "",
            vec!["SELECT @x := :v # :no ?\n, 1--:v\n", "SET @y = :v; -- :z"],
        ),
        (
            3,
            vec![(1, "a", Value::Bytes(vec![0, 255]))],
            "partition_on=id;partitions=4",
            vec!["SELECT /*! STRAIGHT_JOIN */ id FROM t WHERE b = :a;"],
        ),
    ]
}

#[test]
/// The hand-made seeds are what their generators make (`PLUGBOARD_WRITE_SEEDS=1`
/// rewrites them).
fn seeds_are_current() {
    for (i, (mode, params, options, statements)) in
        sql_seeds().iter().chain(&mysql_seeds()).enumerate()
    {
        let p = plugboard_mysql::fuzzing::encode(*mode, params, options, statements);
        write_seed("mysql_placeholders", &format!("sql-{i}"), &p);
    }
}

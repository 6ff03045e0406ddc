//! The SQLite connector through the real `.so` and the real loader.

use std::time::Instant;

use plugboard::{Error, Host, Value};
use plugboard_tests::{Project, chinook};
use polars::prelude::*;

fn project() -> Project {
    Project::new(
        &["plugboard_sqlite"],
        &format!(
            "[connections.pets_db]\nurl = \"sqlite:///pets.db\"\n\n\
             [connections.chinook]\ntype = \"sql\"\nurl = \"sqlite:///{}?mode=ro\"\n\n\
             [connections.mem]\ntype = \"sqlite\"\ndatabase = \":memory:\"\n",
            chinook().display()
        ),
    )
}

fn host_in(p: &Project) -> Host {
    // `sqlite:///pets.db` is relative to the working directory, as in SQLAlchemy; give it
    // an absolute path instead of changing the test process's directory.
    p.builder().build().expect("host")
}

#[test]
fn the_pets_example() {
    let p = project();
    let host = host_in(&p);
    let db = p.path("pets.db");
    let pets = host
        .connection_with(
            "pets_db",
            plugboard::ConnectOptions::new().set("url", format!("sqlite:///{}", db.display())),
        )
        .expect("connect");
    pets.execute("CREATE TABLE IF NOT EXISTS pet_owners (person TEXT, pet TEXT)")
        .statement("DELETE FROM pet_owners")
        .run()
        .expect("create");
    for (owner, pet) in [("jerry", "fish"), ("barbara", "cat"), ("alex", "puppy")] {
        let n = pets
            .execute("INSERT INTO pet_owners (person, pet) VALUES (:owner, :pet)")
            .param("owner", owner)
            .param("pet", pet)
            .run()
            .expect("insert");
        assert_eq!(n, 1);
    }
    let df = pets
        .query("SELECT * FROM pet_owners")
        .fetch()
        .expect("query");
    let expected = df!("person" => ["jerry", "barbara", "alex"], "pet" => ["fish", "cat", "puppy"])
        .expect("df");
    assert!(df.equals_missing(&expected), "{df}");

    let cat = pets
        .query("SELECT person FROM pet_owners WHERE pet = :pet")
        .param(":pet", "cat")
        .fetch()
        .expect("param query");
    assert_eq!(
        cat.column("person")
            .expect("col")
            .str()
            .expect("str")
            .get(0),
        Some("barbara")
    );
}

#[test]
fn chinook_joins_nulls_and_params() {
    let host = host_in(&project());
    let c = host.connection("chinook").expect("connect");
    let df = c
        .query(
            "SELECT ar.Name AS artist, count(*) AS tracks, sum(t.Milliseconds) AS ms \
             FROM Track t JOIN Album al ON al.AlbumId = t.AlbumId \
             JOIN Artist ar ON ar.ArtistId = al.ArtistId \
             WHERE ar.Name = :name GROUP BY ar.Name",
        )
        .param("name", "AC/DC")
        .fetch()
        .expect("join");
    assert_eq!(df.height(), 1);
    assert_eq!(
        df.column("tracks")
            .expect("tracks")
            .i64()
            .expect("i64")
            .get(0),
        Some(18)
    );

    // Composer is NULL for many tracks: NULLs survive as nulls, not empty strings.
    let df = c
        .query("SELECT TrackId, Composer FROM Track ORDER BY TrackId")
        .fetch()
        .expect("tracks");
    assert_eq!(df.height(), 3503);
    let nulls = df.column("Composer").expect("Composer").null_count();
    assert_eq!(nulls, 977, "Chinook has 977 tracks without a composer");

    // `SELECT *` over a join repeats column names; polars needs unique ones.
    let df = c
        .query("SELECT * FROM Album a JOIN Artist b ON a.ArtistId = b.ArtistId LIMIT 3")
        .fetch()
        .expect("select *");
    let names: Vec<&str> = df
        .get_column_names()
        .into_iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(
        names,
        ["AlbumId", "Title", "ArtistId", "ArtistId_2", "Name"]
    );
}

#[test]
fn every_sqlite_type_maps_to_arrow() {
    let host = host_in(&project());
    let m = host.connection("mem").expect("connect");
    m.execute("CREATE TABLE t(i INTEGER, r REAL, s TEXT, b BLOB, n NUMERIC, z)")
        .statement("INSERT INTO t VALUES (1, 1.5, 'x', x'00ff', 2, NULL), (NULL, NULL, NULL, NULL, NULL, NULL)")
        .run()
        .expect("setup");
    let df = m
        .query("SELECT * FROM t")
        .ttl(std::time::Duration::ZERO)
        .fetch()
        .expect("read");
    let types: Vec<DataType> = df.dtypes();
    assert_eq!(
        types,
        [
            DataType::Int64,
            DataType::Float64,
            DataType::String,
            DataType::Binary,
            DataType::Int64,
            DataType::Null
        ]
    );
    assert_eq!(
        df.column("b").expect("b").binary().expect("bin").get(0),
        Some(b"\x00\xff".as_slice())
    );
    for c in df.columns() {
        assert!(
            c.get(1).expect("row 1").is_null(),
            "{} keeps its NULL",
            c.name()
        );
    }

    // Typed params bind as their types.
    let df = m
        .query("SELECT typeof(:i) AS i, typeof(:f) AS f, typeof(:s) AS s, typeof(:b) AS b, typeof(:n) AS n")
        .params([
            ("i", Value::Int(1)),
            ("f", Value::Float(1.0)),
            ("s", Value::String("1".into())),
            ("b", Value::Bytes(vec![1])),
            ("n", Value::Null),
        ])
        .fetch()
        .expect("typeof");
    let row: Vec<String> = df
        .columns()
        .iter()
        .map(|c| c.get(0).expect("v").str_value().into_owned())
        .collect();
    assert_eq!(row, ["integer", "real", "text", "blob", "null"]);
}

#[test]
fn empty_results_have_a_schema() {
    let host = host_in(&project());
    let c = host.connection("chinook").expect("connect");
    let df = c
        .query("SELECT TrackId, Name, UnitPrice FROM Track WHERE 0")
        .fetch()
        .expect("empty");
    assert_eq!(df.height(), 0);
    assert_eq!(
        df.dtypes(),
        [DataType::Int64, DataType::String, DataType::Float64]
    );
}

#[test]
fn bad_sql_and_wrong_params_are_query_errors() {
    let host = host_in(&project());
    let c = host.connection("chinook").expect("connect");
    let e = c.query("SELEC 1").fetch().unwrap_err();
    assert_eq!(e.plugin_kind(), Some(plugboard_api_kind::QUERY));
    assert!(
        e.to_string()
            .contains("connection \"chinook\" (plugin sqlite)"),
        "{e}"
    );
    let e = c.query("SELECT :a").param("b", 1).fetch().unwrap_err();
    assert!(
        e.to_string().contains("missing value for parameter :a"),
        "{e}"
    );
    let e = c
        .query("SELECT :a")
        .param("a", 1)
        .param("ab", 2)
        .fetch()
        .unwrap_err();
    assert!(e.to_string().contains("unknown parameter \"ab\""), "{e}");
    let e = c.execute("DELETE FROM Track").run().unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
    // The connection still serves reads after errors.
    assert_eq!(
        c.query("SELECT 1 AS one")
            .fetch()
            .expect("still fine")
            .height(),
        1
    );
}

mod plugboard_api_kind {
    pub const QUERY: plugboard_api::ErrorKind = plugboard_api::ErrorKind::QUERY;
}

#[test]
fn a_million_rows() {
    let p = project();
    let host = host_in(&p);
    let db = p.path("big.db");
    let big = host
        .connection_with(
            "mem",
            plugboard::ConnectOptions::new().set("database", db.display().to_string()),
        )
        .expect("connect");
    big.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, label TEXT, x REAL)")
        .statement(
            "INSERT INTO big SELECT value, 'row ' || value, value * 0.5 \
             FROM (WITH RECURSIVE c(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM c WHERE value < 1000000) SELECT value FROM c)",
        )
        .run()
        .expect("fill");
    let started = Instant::now();
    let df = big.query("SELECT * FROM big").fetch().expect("read");
    eprintln!("1M rows (debug build): {:?}", started.elapsed());
    assert_eq!(df.shape(), (1_000_000, 3));
    let ids = df.column("id").expect("id").i64().expect("i64");
    assert_eq!(ids.sum(), Some(500_000_500_000));
    assert_eq!(
        df.column("label")
            .expect("label")
            .str()
            .expect("str")
            .get(999_999),
        Some("row 1000000")
    );
    assert!(matches!(
        big.query("SELECT nope FROM big").fetch(),
        Err(Error::Plugin { .. })
    ));
}

#[test]
fn a_successful_write_drops_cached_reads() {
    let host = host_in(&project());
    let m = host.connection("mem").expect("connect");
    m.execute("CREATE TABLE w(x INTEGER)")
        .run()
        .expect("create");
    let count = || {
        let (df, outcome) = m
            .query("SELECT count(*) AS n FROM w")
            .fetch_shared()
            .expect("count");
        (
            df.column("n").expect("n").i64().expect("i64").get(0),
            outcome,
        )
    };
    assert_eq!(count(), (Some(0), plugboard::Outcome::Miss));
    assert_eq!(count(), (Some(0), plugboard::Outcome::MemoryHit));
    m.execute("INSERT INTO w VALUES (1)").run().expect("insert");
    assert_eq!(
        count(),
        (Some(1), plugboard::Outcome::Miss),
        "the write invalidated the cached count"
    );
    // A failed write leaves the cache (and the table) as they were.
    assert!(
        m.execute("INSERT INTO w VALUES (2)")
            .statement("INSERT INTO nope VALUES (1)")
            .run()
            .is_err()
    );
    assert_eq!(count(), (Some(1), plugboard::Outcome::MemoryHit));
}

/// `id`-sorted copy of a frame, so that partitioned and plain reads compare row for row.
fn by_id(df: DataFrame) -> DataFrame {
    df.sort(["id"], SortMultipleOptions::default())
        .expect("sort")
}

#[test]
fn partitioned_reads_return_every_row_once() {
    let p = project();
    let db = p.path("parts.db");
    let host = host_in(&p);
    let conn = host
        .connection_with(
            "pets_db",
            plugboard::ConnectOptions::new().set("url", format!("sqlite:///{}", db.display())),
        )
        .expect("connect");
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, label TEXT)")
        .statement(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
             INSERT INTO t SELECT i, CASE WHEN i % 97 = 0 THEN NULL ELSE i % 1000 - 300 END, \
             'row ' || i FROM n",
        )
        .run()
        .expect("fill");
    let sql = "SELECT id, grp, label FROM t WHERE id > :from";
    let plain = conn.query(sql).param("from", 10).fetch().expect("plain");
    assert_eq!(plain.height(), 4990);
    for (column, parts) in [("id", 2), ("grp", 3), ("grp", 64), ("id", 1)] {
        let got = conn
            .query(sql)
            .param("from", 10)
            .option("partition_on", column)
            .option("partitions", parts)
            .fetch()
            .unwrap_or_else(|e| panic!("{column}/{parts}: {e}"));
        assert!(
            by_id(got).equals_missing(&plain),
            "{column} in {parts} parts differs from the plain read"
        );
    }
    // Partitions come back in range order: by id, the result is already sorted.
    let got = conn
        .query(sql)
        .param("from", 10)
        .option("partition_on", "id")
        .option("partitions", 4)
        .fetch()
        .expect("ordered");
    assert!(got.equals_missing(&plain));
    // A range given up front, and a result with no rows.
    let got = conn
        .query("SELECT * FROM t")
        .option("partition_on", "id")
        .option("partition_range", serde_json::json!([1, 5000]))
        .fetch()
        .expect("range");
    assert_eq!(got.height(), 5000);
    let empty = conn
        .query("SELECT * FROM t WHERE id < 0")
        .option("partition_on", "id")
        .option("partitions", 2)
        .fetch()
        .expect("empty");
    assert_eq!((empty.height(), empty.width()), (0, 3));

    let err = conn
        .query("SELECT * FROM t")
        .option("partition_on", "label")
        .option("partitions", 2)
        .fetch()
        .expect_err("text column")
        .to_string();
    assert!(
        err.contains("partition_on") && err.contains("not an integer"),
        "{err}"
    );
    let err = conn
        .query("SELECT * FROM t")
        .option("partitions", 2)
        .fetch()
        .expect_err("no column")
        .to_string();
    assert!(err.contains("need partition_on"), "{err}");
}

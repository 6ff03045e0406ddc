//! The DuckDB connector through the real `.so` and the real loader: its config forms,
//! parameters, Parquet, streamed exports, transactions, extensions, a second process, the
//! cache's key, and every type a query returns, value by value against Python's `duckdb`.
//!
//! Python's `duckdb` (the release the crate bundles) comes from `$PLUGBOARD_PYTHON`, else
//! from the virtualenv `<target dir>/duckdb-venv` that `.ci/run` makes:
//! `python3 -m venv target/duckdb-venv && target/duckdb-venv/bin/pip install duckdb==2.0.0 pytz`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plugboard::Host;
use plugboard_tests::{Project, cli, deps_dir};
use polars::prelude::*;
use serde_json::{Value as Json, json};

const BIN: &str = env!("CARGO_BIN_EXE_plugboard-under-test");

fn project(secrets: &str) -> Project {
    Project::new(&["plugboard_duckdb"], secrets)
}

/// A project whose connection `d` is the file `d.duckdb` in it (an absolute path).
fn file_project() -> Project {
    let p = project("");
    p.write(
        "secrets.toml",
        &format!(
            "[connections.d]\ntype = \"duckdb\"\ndatabase = {:?}\n",
            p.path("d.duckdb").display().to_string()
        ),
    );
    p
}

fn memory(host: &Host) -> plugboard::Connection {
    host.connection_with(
        "m",
        plugboard::ConnectOptions::new()
            .kind("duckdb")
            .set("database", ":memory:"),
    )
    .expect("connect to :memory:")
}

fn one_str(df: &DataFrame, column: &str) -> String {
    df.column(column)
        .unwrap_or_else(|e| panic!("no column {column}: {e}"))
        .str()
        .unwrap_or_else(|e| panic!("{column} is not text: {e}"))
        .get(0)
        .unwrap_or_else(|| panic!("{column} is null"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------
// Config

#[test]
fn config_forms_type_url_database_relative_and_settings() {
    let p = project(
        "[connections.by_type]\ntype = \"duckdb\"\ndatabase = \":memory:\"\n\
         config = { threads = 3, memory_limit = \"1GB\" }\n\n\
         [connections.by_url]\nurl = \"duckdb:///rel.duckdb?threads=2\"\n\n\
         [connections.by_url_ro]\ntype = \"sql\"\nurl = \"duckdb:///rel.duckdb?read_only=true\"\n\n\
         [connections.ro_key]\ntype = \"duckdb\"\ndatabase = \"rel.duckdb\"\nread_only = true\n\n\
         [connections.bad_setting]\ntype = \"duckdb\"\ndatabase = \":memory:\"\nconfig = { threads = \"many\" }\n\n\
         [connections.unknown_setting]\ntype = \"duckdb\"\ndatabase = \":memory:\"\nconfig = { no_such_setting = 1 }\n",
    );
    // `config = {...}` is applied: DuckDB reports the settings back.
    let out = cli!(
        p,
        [
            "query",
            "by_type",
            "SELECT current_setting('threads') AS t, current_setting('memory_limit') AS m, \
             current_setting('autoinstall_known_extensions') AS ai",
            "--format",
            "csv"
        ]
    )
    .ok();
    let row = out.lines().nth(1).expect("a row");
    let cells: Vec<&str> = row.split(',').collect();
    assert_eq!(cells[0], "3", "{out}");
    assert!(
        cells[1].contains("GiB") || cells[1].contains("MiB") || cells[1].contains("GB"),
        "{out}"
    );
    assert_eq!(cells[2], "false", "autoinstall is off: {out}");

    // A relative path is relative to the working directory, as in duckdb-engine.
    cli!(p, ["exec", "by_url", "CREATE TABLE t AS SELECT 42 AS x"]).ok();
    assert!(
        p.path("rel.duckdb").exists(),
        "created in the working directory"
    );
    let out = cli!(
        p,
        [
            "query",
            "by_url",
            "SELECT x, current_setting('threads') AS t FROM t",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out, "x,t\n42,2\n", "the URL's query is DuckDB settings too");

    // ?read_only=true and read_only = true both open it read-only.
    for name in ["by_url_ro", "ro_key"] {
        let out = cli!(p, ["query", name, "SELECT x FROM t", "--format", "csv"]).ok();
        assert_eq!(out, "x\n42\n", "{name}");
        let e = cli!(p, ["exec", name, "INSERT INTO t VALUES (1)"]).fails();
        assert!(e.contains("read-only"), "{name}: {e}");
    }

    // Bad settings name the key at fault, on one line.
    let e = cli!(p, ["query", "bad_setting", "SELECT 1"]).fails();
    assert!(e.contains("`config.threads`"), "{e}");
    let e = cli!(p, ["query", "unknown_setting", "SELECT 1"]).fails();
    assert!(e.contains("no_such_setting"), "{e}");
    // A misspelt key is the host's usual config error, with a suggestion.
    p.write(
        "secrets.toml",
        "[connections.typo]\ntype = \"duckdb\"\ndatabse = \":memory:\"\n",
    );
    let e = cli!(p, ["query", "typo", "SELECT 1"]).fails();
    assert!(e.contains("databse") && e.contains("database"), "{e}");
}

#[test]
fn a_missing_read_only_file_is_a_clear_connect_error() {
    let p = project(
        "[connections.gone]\ntype = \"duckdb\"\ndatabase = \"nope/none.duckdb\"\nread_only = true\n",
    );
    let e = cli!(p, ["query", "gone", "SELECT 1"]).fails();
    assert!(
        e.contains("none.duckdb") && e.contains("does not exist"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Reads

#[test]
fn parameters_of_every_form_are_bound_by_duckdb() {
    let p = project("");
    let host = p.host();
    let m = memory(&host);
    let df = m
        .query("SELECT $1 + 1 AS a, $2 AS b")
        .param("1", 41)
        .param("2", "it's")
        .fetch()
        .expect("$1");
    assert_eq!(plugboard_tests::int(&df, "a"), 42);
    assert_eq!(one_str(&df, "b"), "it's");
    let df = m
        .query("SELECT ? AS a, ? AS b")
        .param("1", "x'); DROP TABLE t; --")
        .param("2", 2.5)
        .fetch()
        .expect("?");
    assert_eq!(one_str(&df, "a"), "x'); DROP TABLE t; --");
    let df = m
        .query("SELECT $name AS n, $flag AS f, $nothing AS z")
        .param("name", "duck")
        .param("flag", true)
        .param("nothing", plugboard::Value::Null)
        .fetch()
        .expect("$name");
    assert_eq!(one_str(&df, "n"), "duck");
    assert_eq!(
        df.column("f").expect("f").bool().expect("bool").get(0),
        Some(true)
    );
    assert_eq!(df.column("z").expect("z").null_count(), 1);

    let e = m.query("SELECT $a AS x").fetch().expect_err("missing");
    assert!(
        e.to_string().contains("missing value for parameter $a"),
        "{e}"
    );
    let e = m
        .query("SELECT $a AS x")
        .param("a", 1)
        .param("b", 2)
        .fetch()
        .expect_err("unknown");
    assert!(e.to_string().contains("unknown parameter \"b\""), "{e}");

    // Through the CLI too.
    p.write(
        "secrets.toml",
        "[connections.m]\ntype = \"duckdb\"\ndatabase = \":memory:\"\n",
    );
    let out = cli!(
        p,
        [
            "query",
            "m",
            "SELECT $who AS who",
            "-p",
            "who=cli",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out, "who\ncli\n");
    let out = cli!(
        p,
        [
            "query",
            "m",
            "SELECT ? * 2 AS n",
            "-p",
            "1=21",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out, "n\n42\n");
}

#[test]
fn parquet_files_are_read_with_select_star_from_a_path() {
    let p = file_project();
    let host = p.host();
    let d = host.connection("d").expect("connect");
    let parquet = p.path("trips.parquet");
    d.execute(format!(
        "COPY (SELECT i AS id, 'v' || (i % 10) AS vendor, i * 0.25 AS fare FROM range(100000) t(i)) \
         TO '{}' (FORMAT parquet)",
        parquet.display()
    ))
    .run()
    .expect("write parquet with DuckDB");
    let df = d
        .query(format!(
            "SELECT count(*) AS n, sum(fare) AS fares, count(DISTINCT vendor) AS vendors FROM '{}'",
            parquet.display()
        ))
        .fetch()
        .expect("read parquet");
    assert_eq!(plugboard_tests::int(&df, "n"), 100_000);
    assert_eq!(plugboard_tests::int(&df, "vendors"), 10);
    // Relative to the working directory, through the CLI (another process: this one lets
    // go of the file first).
    drop(d);
    drop(host);
    let out = cli!(
        p,
        [
            "query",
            "d",
            "SELECT id, vendor FROM 'trips.parquet' WHERE id < 3 ORDER BY id",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out, "id,vendor\n0,v0\n1,v1\n2,v2\n");
}

#[test]
fn a_stream_comes_in_duckdbs_chunks_and_exports_equal_the_whole_read() {
    let p = file_project();
    let host = p.host();
    let d = host.connection("d").expect("connect");
    d.execute("CREATE TABLE trips AS SELECT i AS id, 'v' || (i % 10) AS vendor, CASE WHEN i % 7 = 0 THEN NULL ELSE i * 0.25 END AS fare FROM range(100000) t(i)")
        .run()
        .expect("fill");
    let query = "SELECT * FROM trips ORDER BY id";
    let stream = d.query(query).ttl(Duration::ZERO).stream().expect("stream");
    let frames: Vec<DataFrame> = stream.collect::<Result<_, _>>().expect("batches");
    assert!(
        frames.len() > 1,
        "batch by batch, not one table: {}",
        frames.len()
    );
    let mut streamed = frames[0].clone();
    for f in &frames[1..] {
        streamed.vstack_mut(f).expect("vstack");
    }
    let fetched = d.query(query).ttl(Duration::ZERO).fetch().expect("fetch");
    assert_eq!(fetched.height(), 100_000);
    assert!(streamed.equals_missing(&fetched));

    // A limit stops the stream early, and the connection serves the next read.
    let limited = d.query(query).limit(5000).fetch().expect("limit");
    assert_eq!(limited.height(), 5000);

    drop(d);
    drop(host);
    cli!(p, ["query", "d", query, "--output", "out.parquet"]).ok();
    let back = ParquetReader::new(std::fs::File::open(p.path("out.parquet")).expect("open"))
        .finish()
        .expect("parquet");
    assert!(back.equals_missing(&fetched), "{back}");
}

#[test]
fn extensions_that_need_a_download_fail_clearly_and_at_once() {
    let p = project("[connections.m]\ntype = \"duckdb\"\ndatabase = \":memory:\"\n");
    for sql in [
        "LOAD spatial",
        "SELECT * FROM 'https://example.invalid/trips.parquet'",
    ] {
        let started = Instant::now();
        let e = cli!(p, ["query", "m", sql]).fails();
        assert!(
            e.contains("not installed") || e.contains("not found") || e.contains("download"),
            "{sql}: {e}"
        );
        assert!(e.contains("built in"), "names what is built in: {e}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{sql} took {:?}",
            started.elapsed()
        );
    }
    // The built-in ones work without a download.
    let out = cli!(
        p,
        [
            "query",
            "m",
            "SELECT json_extract('{\"a\": 7}', '$.a')::INT AS a",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out, "a\n7\n");
}

// ---------------------------------------------------------------------------------------
// Writes and other processes

fn file_bytes(p: &Project) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        std::fs::read(p.path("d.duckdb")).expect("the database file"),
        std::fs::read(p.path("d.duckdb.wal")).ok(),
    )
}

#[test]
fn writes_are_one_transaction_and_a_failing_statement_leaves_the_file_as_it_was() {
    let p = file_project();
    cli!(
        p,
        [
            "exec",
            "d",
            "CREATE TABLE t(x INTEGER NOT NULL); INSERT INTO t VALUES (1)"
        ]
    )
    .ok();
    let before = file_bytes(&p);
    let e = cli!(
        p,
        [
            "exec",
            "d",
            "INSERT INTO t VALUES (2)",
            "CREATE TABLE u(y INTEGER)",
            "INSERT INTO t VALUES (NULL)"
        ]
    )
    .fails();
    assert!(e.contains("statement 3:") && e.contains("NOT NULL"), "{e}");
    assert_eq!(
        file_bytes(&p),
        before,
        "the file is byte for byte as it was"
    );
    let out = cli!(
        p,
        ["query", "d", "SELECT count(*) AS n, (SELECT count(*) FROM duckdb_tables() WHERE table_name = 'u') AS u FROM t", "--format", "csv"]
    )
    .ok();
    assert_eq!(out, "n,u\n1,0\n", "neither the insert nor the table stayed");

    // Parameters, per statement and shared; rows affected add up.
    let out = cli!(
        p,
        [
            "exec",
            "d",
            "INSERT INTO t SELECT * FROM range($n) r(x)",
            "UPDATE t SET x = x + 100 WHERE x < $n",
            "-p",
            "n=3"
        ]
    )
    .ok();
    assert!(
        out.contains("7 rows affected"),
        "3 inserted + 4 updated: {out}"
    );
}

/// Waits for `child` at most `limit`; kills it past that.
fn wait(mut child: Child, limit: Duration) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "still running after {limit:?} (a hang): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn a_second_process_gets_a_clear_lock_error_while_one_writes() {
    let p = file_project();
    cli!(p, ["exec", "d", "CREATE TABLE t AS SELECT 1 AS x"]).ok();
    // The writer: a statement that runs until it is stopped, holding the file.
    let mut writer = p
        .command(
            BIN,
            &[
                "exec",
                "d",
                "INSERT INTO t SELECT count(*) FROM range(1000000000000) a(i) WHERE i % 7 = 99",
            ],
            &[],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the writer");
    // Both a second writer and a reader are refused while it runs, at once and clearly.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::sleep(Duration::from_millis(500));
    for args in [
        // Harmless if it ran before the writer took the file.
        ["exec", "d", "CREATE TABLE IF NOT EXISTS t(x INTEGER)"],
        ["query", "d", "SELECT count(*) FROM t"],
    ] {
        loop {
            assert!(
                writer.try_wait().expect("writer").is_none(),
                "the writer ended early"
            );
            let second = p
                .command(BIN, &args, &[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the second process");
            let started = Instant::now();
            let out = wait(second, Duration::from_secs(30));
            if out.status.success() {
                // The writer has not opened the file yet.
                assert!(Instant::now() < deadline, "the writer never took the file");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let run = plugboard_tests::Run(out);
            let e = run.fails();
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{:?}",
                started.elapsed()
            );
            assert!(
                e.contains("Could not set lock") && e.contains("one process to write"),
                "{args:?}: {e}"
            );
            seen.push(e);
            break;
        }
    }
    assert_eq!(seen.len(), 2);
    writer.kill().expect("stop the writer");
    let _ = writer.wait();
    // The file is intact: the writer's statement never committed.
    let out = cli!(
        p,
        [
            "query",
            "d",
            "SELECT count(*) AS n FROM t",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out, "n\n1\n");
}

// ---------------------------------------------------------------------------------------
// Cache and plugins.toml

#[test]
fn cached_results_are_keyed_on_the_database_file_not_the_relative_path() {
    let p = project("[connections.rel]\ntype = \"duckdb\"\ndatabase = \"x.duckdb\"\n");
    for (dir, v) in [("a", 1), ("b", 2)] {
        std::fs::create_dir(p.path(dir)).expect("dir");
        let out = p
            .command(
                BIN,
                &["exec", "rel", &format!("CREATE TABLE t AS SELECT {v} AS v")],
                &[
                    ("PLUGBOARD_PLUGINS", "../plugins.toml"),
                    ("PLUGBOARD_SECRETS", "../secrets.toml"),
                ],
            )
            .current_dir(p.path(dir))
            .output()
            .expect("exec");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let read = |dir: &str| {
        let out = p
            .command(
                BIN,
                &[
                    "-v",
                    "query",
                    "rel",
                    "SELECT v FROM t",
                    "--ttl",
                    "1h",
                    "--format",
                    "csv",
                ],
                &[
                    ("PLUGBOARD_PLUGINS", "../plugins.toml"),
                    ("PLUGBOARD_SECRETS", "../secrets.toml"),
                ],
            )
            .current_dir(p.path(dir))
            .output()
            .expect("query");
        let run = plugboard_tests::Run(out);
        (run.ok(), run.outcome())
    };
    assert_eq!(read("a"), ("v\n1\n".to_owned(), "miss"));
    assert_eq!(
        read("b"),
        ("v\n2\n".to_owned(), "miss"),
        "another file, another entry"
    );
    assert_eq!(read("a"), ("v\n1\n".to_owned(), "disk hit"));
}

#[test]
fn an_optional_library_that_is_not_built_is_skipped_quietly() {
    let p = project("[connections.m]\ntype = \"duckdb\"\ndatabase = \":memory:\"\n");
    let lib = plugboard_tests::lib("plugboard_duckdb");
    p.write(
        "plugins.toml",
        &format!(
            "[[plugin]]\npath = {:?}\n\n[[plugin]]\npath = \"not-built/libplugboard_x.so\"\noptional = true\n",
            lib.display().to_string()
        ),
    );
    let run = cli!(p, ["query", "m", "SELECT 1 AS one", "--format", "csv"]);
    assert_eq!(run.ok(), "one\n1\n");
    assert!(
        !run.stderr().contains("libplugboard_x"),
        "no warning: {}",
        run.stderr()
    );
    cli!(p, ["plugins", "list"]).ok();
    // Without `optional`, a missing library is still reported.
    p.write(
        "plugins.toml",
        &format!(
            "[[plugin]]\npath = {:?}\n\n[[plugin]]\npath = \"not-built/libplugboard_x.so\"\n",
            lib.display().to_string()
        ),
    );
    let run = cli!(p, ["query", "m", "SELECT 1 AS one", "--format", "csv"]);
    assert!(
        run.stderr().contains("cargo build -p plugboard-x"),
        "{}",
        run.stderr()
    );
    let e = cli!(p, ["plugins", "list"]).fails();
    assert!(e.contains("libplugboard_x"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Types, value by value against Python's duckdb

/// The Python that has `duckdb`: `$PLUGBOARD_PYTHON`, else `<target dir>/duckdb-venv`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PLUGBOARD_PYTHON") {
        return p.into();
    }
    let venv = deps_dir().join("../../duckdb-venv");
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "Python's duckdb is missing: run `python3 -m venv {0} && {0}/bin/pip install duckdb==2.0.0 pytz` \
         (.ci/run does), or set PLUGBOARD_PYTHON",
        venv.display()
    );
    python
}

/// Renders a query's result the way `render` below renders the DataFrame: JSON, one
/// array of values per column; integers past 64 bits, DECIMALs and HUGEINTs as text,
/// times as microseconds, BLOBs as hex, MAPs as [key, value] pairs.
const PYTHON_RENDER: &str = r#"
import datetime, decimal, json, sys, uuid, duckdb
con = duckdb.connect()
rel = con.sql(sys.argv[1])
types = [str(t) for t in rel.types]
rows = rel.fetchall()
EPOCH = datetime.datetime(1970, 1, 1)
UTC_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
US = datetime.timedelta(microseconds=1)
def r(v, t):
    if v is None: return None
    if t.startswith(("DECIMAL", "HUGEINT", "UHUGEINT")): return str(v)
    if t.endswith("]"):
        inner = t[: t.rindex("[")]
        return [r(x, inner) for x in v]
    if t.startswith("MAP("):
        kt, vt = t[4:-1].split(", ", 1)
        return [[r(k, kt), r(x, vt)] for k, x in v.items()]
    if isinstance(v, bool): return v
    if isinstance(v, int): return v if -2**63 <= v < 2**63 else str(v)
    if isinstance(v, (float, str)): return v
    if isinstance(v, decimal.Decimal): return str(v)
    if isinstance(v, bytes): return v.hex()
    if isinstance(v, uuid.UUID): return str(v)
    if isinstance(v, datetime.datetime):
        return (v - (UTC_EPOCH if v.tzinfo else EPOCH)) // US
    if isinstance(v, datetime.date): return (v - EPOCH.date()).days
    if isinstance(v, datetime.time):
        return ((v.hour * 60 + v.minute) * 60 + v.second) * 1000000 + v.microsecond
    if isinstance(v, datetime.timedelta): return v // US
    if isinstance(v, dict): return {k: r(x, "") for k, x in v.items()}
    if isinstance(v, (list, tuple)): return [r(x, "") for x in v]
    raise TypeError(f"{type(v)} of {t}")
names = [d[0] for d in rel.description]
out = {n: [r(row[i], types[i]) for row in rows] for i, n in enumerate(names)}
print(json.dumps({"version": con.sql("SELECT version()").fetchall()[0][0], "types": dict(zip(names, types)), "columns": out}))
"#;

fn python_render(sql: &str) -> Json {
    let out = Command::new(python())
        .args(["-c", PYTHON_RENDER, sql])
        .env("TZ", "UTC")
        .output()
        .expect("run Python");
    assert!(
        out.status.success(),
        "Python's duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("Python printed JSON")
}

fn micros(v: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Nanoseconds => v / 1000,
        TimeUnit::Microseconds => v,
        TimeUnit::Milliseconds => v * 1000,
    }
}

fn decimal_text(v: i128, scale: usize) -> String {
    if scale == 0 {
        return v.to_string();
    }
    let sign = if v < 0 { "-" } else { "" };
    let digits = format!("{:0>width$}", v.unsigned_abs(), width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    format!("{sign}{int}.{frac}")
}

fn render_value(v: AnyValue<'_>) -> Json {
    match v {
        AnyValue::Null => Json::Null,
        AnyValue::Boolean(b) => json!(b),
        AnyValue::String(s) => json!(s),
        AnyValue::StringOwned(s) => json!(s.as_str()),
        AnyValue::UInt8(x) => json!(x),
        AnyValue::UInt16(x) => json!(x),
        AnyValue::UInt32(x) => json!(x),
        // As Python's rendering: integers past 64 signed bits as text.
        AnyValue::UInt64(x) => match i64::try_from(x) {
            Ok(x) => json!(x),
            Err(_) => json!(x.to_string()),
        },
        AnyValue::Int8(x) => json!(x),
        AnyValue::Int16(x) => json!(x),
        AnyValue::Int32(x) => json!(x),
        AnyValue::Int64(x) => json!(x),
        AnyValue::Int128(x) => json!(x.to_string()),
        AnyValue::UInt128(x) => json!(x.to_string()),
        AnyValue::Float32(x) => json!(f64::from(x)),
        AnyValue::Float64(x) => json!(x),
        AnyValue::Date(d) => json!(d),
        AnyValue::Datetime(v, unit, _) | AnyValue::DatetimeOwned(v, unit, _) => {
            json!(micros(v, unit))
        }
        AnyValue::Duration(v, unit) => json!(micros(v, unit)),
        AnyValue::Time(ns) => json!(ns / 1000),
        AnyValue::Binary(b) => json!(hex(b)),
        AnyValue::BinaryOwned(b) => json!(hex(&b)),
        AnyValue::Decimal(v, _, scale) => json!(decimal_text(v, scale)),
        other => panic!("no rendering for {other:?}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A column's values, as [`PYTHON_RENDER`] renders them.
fn render(s: &Series) -> Vec<Json> {
    match s.dtype() {
        polars::prelude::DataType::List(_) => {
            let ca = s.list().expect("list");
            (0..s.len())
                .map(|i| match ca.get_as_series(i) {
                    None => Json::Null,
                    Some(inner) => Json::Array(render(&inner)),
                })
                .collect()
        }
        polars::prelude::DataType::Struct(_) => {
            let ca = s.struct_().expect("struct");
            let fields: Vec<(String, Vec<Json>)> = ca
                .fields_as_series()
                .iter()
                .map(|f| (f.name().to_string(), render(f)))
                .collect();
            let nulls = s.is_null();
            (0..s.len())
                .map(|i| {
                    if nulls.get(i) == Some(true) {
                        return Json::Null;
                    }
                    Json::Object(
                        fields
                            .iter()
                            .map(|(name, values)| (name.clone(), values[i].clone()))
                            .collect(),
                    )
                })
                .collect()
        }
        _ => s.iter().map(render_value).collect(),
    }
}

/// Every DuckDB type a query returns, with NULLs, as Python's duckdb sees them.
const ALL_TYPES: &str = "SELECT \
    i::TINYINT AS tinyint, (i * 1000)::SMALLINT AS smallint, (i * 100000)::INTEGER AS integer, \
    (i * 10000000000)::BIGINT AS bigint, i::UTINYINT AS utinyint, (i * 20000)::USMALLINT AS usmallint, \
    (i * 4000000)::UINTEGER AS uinteger, (i::UBIGINT * 4000000000000000000) AS ubigint, \
    i::HUGEINT * 1000000000000000000000000000000::HUGEINT AS hugeint, -i::HUGEINT * 170141183460469231731687303715884105 AS hugeint_neg, \
    (i * 1.25)::FLOAT AS float, i / 3 AS double, (i * 123.456)::DECIMAL(18, 3) AS dec18, \
    (i * -1.5)::DECIMAL(4, 1) AS dec4, (i * 12345678901234567890.123456789)::DECIMAL(38, 9) AS dec38, \
    i % 2 = 0 AS boolean, 'text ' || i || ' ünï' AS varchar, \
    ('00000000-0000-0000-0000-00000000000' || i)::UUID AS uuid, \
    to_months(i) + to_days(i * 2) + to_microseconds(i * 1500001) AS interval, \
    DATE '2024-01-01' + i::INTEGER AS date, TIME '12:34:56.789012' AS time, \
    TIMESTAMP '2024-03-10 01:02:03.456789' + to_hours(i) AS timestamp, \
    (TIMESTAMP '1969-07-20 20:17:40.123456' + to_hours(i))::TIMESTAMPTZ AS timestamptz, \
    (TIMESTAMP '2024-03-10 01:02:03.456789' + to_hours(i))::TIMESTAMP_NS AS timestamp_ns, \
    (TIMESTAMP '2024-03-10 01:02:03.456' + to_hours(i))::TIMESTAMP_MS AS timestamp_ms, \
    (TIMESTAMP '2024-03-10 01:02:03' + to_hours(i))::TIMESTAMP_S AS timestamp_s, \
    (['sad', 'ok', 'happy'])[i]::ENUM('sad', 'ok', 'happy') AS enum, \
    ('\\xAA\\x00' || i::VARCHAR)::BLOB AS blob, \
    [i, NULL, i * 2]::INTEGER[] AS list, [['a' || i], []] AS list_of_lists, \
    {'a': i, 'b': 'x' || i, 'c': [i]} AS struct, \
    MAP {'k' || coalesce(i, 0): i, 'z': NULL} AS map, \
    [i, i + 1, i + 2]::INTEGER[3] AS array, \
    [{'n': i}] AS list_of_structs, \
    (CASE i WHEN 1 THEN '1' WHEN 2 THEN '0101' ELSE '111000111' END)::BIT AS bit \
  FROM (SELECT i FROM range(1, 4) t(i) UNION ALL SELECT NULL) ORDER BY i NULLS LAST";

#[test]
fn every_type_matches_python_duckdb_value_by_value() {
    let python = python_render(ALL_TYPES);
    let p = project("");
    let host = p.host();
    let m = memory(&host);
    let version = m.query("SELECT version() AS v").fetch().expect("version");
    assert_eq!(
        json!(one_str(&version, "v")),
        python["version"],
        "Python's duckdb is the release the crate bundles"
    );
    let df = m.query(ALL_TYPES).fetch().expect("every type");
    let columns = python["columns"].as_object().expect("columns");
    let mut names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    names.sort();
    // (serde_json's map is sorted by name.)
    assert_eq!(names, columns.keys().cloned().collect::<Vec<_>>());
    let mut checked = 0;
    for column in df.columns() {
        let name = column.name().to_string();
        let mut ours = render(column.as_materialized_series());
        if python["types"][&name]
            .as_str()
            .is_some_and(|t| t.starts_with("MAP("))
        {
            // A MAP arrives as its entries: List(Struct{key, value}).
            for row in &mut ours {
                if let Json::Array(entries) = row {
                    for e in entries.iter_mut() {
                        *e = json!([e["key"], e["value"]]);
                    }
                }
            }
        }
        assert_eq!(
            Json::Array(ours),
            columns[&name],
            "column {name} ({}, {:?} in the DataFrame)",
            python["types"][&name],
            column.dtype()
        );
        checked += 1;
    }
    assert_eq!(checked, columns.len());
    assert_eq!(checked, 35, "every column of ALL_TYPES was compared");
}

#[test]
fn types_a_dataframe_cannot_hold_are_errors_that_name_the_column_and_the_cast() {
    let p = project("");
    let host = p.host();
    let m = memory(&host);
    for (sql, column, says) in [
        (
            "SELECT 170141183460469231731687303715884105727::HUGEINT AS big",
            "big",
            "CAST it to VARCHAR",
        ),
        (
            "SELECT union_value(n := 1)::UNION(n INTEGER, s VARCHAR) AS u",
            "u",
            "union_extract",
        ),
    ] {
        let e = m.query(sql).fetch().expect_err(sql).to_string();
        assert!(
            e.contains(&format!("column \"{column}\"")) && e.contains(says),
            "{sql}: {e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }
    // Their casts work.
    let df = m
        .query("SELECT 170141183460469231731687303715884105727::HUGEINT::VARCHAR AS big")
        .fetch()
        .expect("cast");
    assert_eq!(
        one_str(&df, "big"),
        "170141183460469231731687303715884105727"
    );
}

#[test]
fn the_connector_is_written_as_the_guide_tells_a_third_party() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest =
        std::fs::read_to_string(repo.join("plugins/duckdb/Cargo.toml")).expect("Cargo.toml");
    let deps: Vec<&str> = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] table")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split(['=', '.']).next().map(str::trim))
        .collect();
    assert_eq!(
        deps,
        ["plugboard-api", "duckdb", "serde"],
        "only the API and the driver"
    );
    let guide = std::fs::read_to_string(repo.join("docs/writing-a-connector.md")).expect("guide");
    assert!(guide.contains("## 5. A real-world example: `plugins/duckdb`"));
    let plugins = std::fs::read_to_string(repo.join("plugins.toml")).expect("plugins.toml");
    assert!(
        plugins.contains("path = \"target/debug/libplugboard_duckdb.so\"\noptional = true"),
        "plugins.toml lists DuckDB, optional since `cargo build` leaves it out"
    );
    let root = std::fs::read_to_string(repo.join("Cargo.toml")).expect("Cargo.toml");
    let default_members = root
        .lines()
        .find(|l| l.starts_with("default-members"))
        .expect("default-members");
    assert!(
        !default_members.contains("duckdb"),
        "./demo.sh's `cargo build` does not build DuckDB"
    );
}

#[test]
fn plugins_check_loads_the_library_and_lists_its_keys() {
    let p = project("");
    let lib = plugboard_tests::lib("plugboard_duckdb")
        .display()
        .to_string();
    let out = cli!(p, ["plugins", "check", &lib]).ok();
    for line in [
        "plugin:      duckdb",
        "conformance of duckdb: 2 of 2 checks passed",
        "config keys: url, dialect, database, read_only, config",
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }
}

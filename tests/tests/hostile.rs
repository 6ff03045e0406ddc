//! No input a user can type, no value a source returns and no plugin error ends the host
//! with a panic, a signal or an abort: each prints, or is one line of error naming what is
//! at fault, with exit code 1. Every case runs the real CLI binary against the real
//! plugins, the way a user meets it; each one crashed, hung or misprinted before its fix.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use plugboard_tests::{Project, Run, cli, pg};
use polars::prelude::*;

fn project() -> Project {
    let p = Project::new(
        &["plugboard_sqlite", "plugboard_postgres", "plugboard_files"],
        "",
    );
    let data = p.path("data");
    std::fs::create_dir_all(&data).expect("mkdir data");
    p.write(
        "secrets.toml",
        &format!(
            "[connections.db]\nurl = \"sqlite:///t.db\"\n\n\
             [connections.pg]\nurl = \"{}\"\n\n\
             [connections.files]\ntype = \"files\"\nroot = {:?}\n",
            pg::url(pg::scratch()),
            data.display().to_string()
        ),
    );
    p
}

/// The process ended by itself (no signal, no abort), with 0 or a documented error code
/// (1 to 4), and printed no panic.
fn survived(run: &Run) {
    let status = run.0.status;
    assert_eq!(
        status.signal(),
        None,
        "killed by a signal: {status:?}\nstderr: {}",
        run.stderr()
    );
    assert!(
        matches!(status.code(), Some(0..=4)),
        "exit {status:?} (101 is a panic)\nstderr: {}",
        run.stderr()
    );
    assert!(
        !run.stderr().contains("panicked"),
        "a panic was printed: {}",
        run.stderr()
    );
}

/// A one-line error (exit 1) that says each of `says`; returns it.
fn refused(run: &Run, says: &[&str]) -> String {
    survived(run);
    let line = run.fails();
    for s in says {
        assert!(line.contains(s), "{s:?} missing from: {line}");
    }
    assert!(
        !line.contains("panic"),
        "a panic reported as an error: {line}"
    );
    line
}

/// Success; returns standard output.
fn printed(run: &Run) -> String {
    survived(run);
    run.ok()
}

const TEXT: [&str; 4] = ["table", "csv", "json", "ndjson"];

/// `query CONN SQL` in every text format (the output of each) and written as Parquet and
/// as Arrow IPC (read back with polars).
fn every_format(p: &Project, conn: &str, sql: &str) -> (Vec<String>, Vec<DataFrame>) {
    let texts = TEXT
        .iter()
        .map(|f| printed(&cli!(p, ["query", conn, sql, "--format", f])))
        .collect();
    let frames = ["out.parquet", "out.arrow"]
        .iter()
        .map(|name| {
            let path = p.path(name);
            let out = path.display().to_string();
            printed(&cli!(p, ["query", conn, sql, "--output", &out]));
            let file = std::fs::File::open(&path).expect("open the export");
            if name.ends_with("parquet") {
                ParquetReader::new(file).finish()
            } else {
                IpcReader::new(file).finish()
            }
            .expect("read the export back")
        })
        .collect();
    (texts, frames)
}

#[test]
fn enormous_placeholder_numbers_are_refused_in_each_sql_plugin() {
    let p = project();
    // `$99999999999` asked for a bound-value list of 2.4 TB: the allocator aborted the host.
    for (sql, says) in [
        ("SELECT $99999999999", "placeholder $99999999999"),
        (
            "SELECT $18446744073709551616",
            "placeholder $18446744073709551616",
        ),
        ("SELECT $65536", "at most 65535"),
        ("SELECT $0", "placeholder $0"),
    ] {
        refused(
            &cli!(p, ["query", "pg", sql, "-p", "1=5"]),
            &["connection \"pg\"", says],
        );
    }
    let long = format!("SELECT ${}", "9".repeat(100_000));
    let line = refused(&cli!(p, ["query", "pg", &long]), &["placeholder $999"]);
    assert!(line.len() < 300, "{line}");
    // 65535 parameters are allowed; the error for the missing ones names a few, not all.
    let line = refused(
        &cli!(p, ["query", "pg", "SELECT $65535::int", "-p", "1=5"]),
        &["missing parameter \"2\"", "(65535 in all)"],
    );
    assert!(line.len() < 300, "{line}");
    for sql in [
        "SELECT ?99999999999",
        "SELECT ?0",
        "SELECT $0",
        "SELECT ?32767",
    ] {
        refused(
            &cli!(p, ["query", "db", sql, "-p", "1=5"]),
            &["connection \"db\""],
        );
    }
    let huge = format!("SELECT :{}", "a".repeat(100_000));
    refused(&cli!(p, ["query", "db", &huge]), &["missing value"]);
    refused(&cli!(p, ["query", "pg", &huge]), &["missing parameter"]);
}

#[test]
fn a_set_key_nested_past_reason_is_refused() {
    let p = project();
    // 20000 levels of nested tables overflowed the stack when dropped: SIGABRT.
    let key = vec!["a"; 20_000].join(".");
    let set = format!("{key}=1");
    refused(
        &cli!(p, ["query", "db", "SELECT 1", "--set", &set]),
        &["--set", "20000 tables deep", "at most 64"],
    );
    // Within reason it reaches the plugin, which names the key it does not know.
    let set = format!("{}=1", vec!["a"; 64].join("."));
    refused(
        &cli!(p, ["query", "db", "SELECT 1", "--set", &set]),
        &["unknown key `a`"],
    );
}

#[test]
fn a_busy_timeout_sqlite_cannot_take_is_a_config_error() {
    let p = project();
    // rusqlite panicked ("too big") past i32::MAX milliseconds, inside the plugin.
    for (setting, key) in [
        ("busy_timeout = 2147483648", "`busy_timeout`"),
        ("busy_timeout = \"1000h\"", "`busy_timeout`"),
        ("busy_timeout = \"99999999999h\"", "`busy_timeout`"),
        (
            "url = \"sqlite:///t.db?timeout=99999999999\"",
            "`query.timeout`",
        ),
    ] {
        let url = if setting.starts_with("url") {
            String::new()
        } else {
            "url = \"sqlite:///t.db\"\n".to_owned()
        };
        p.write("s.toml", &format!("[connections.slow]\n{url}{setting}\n"));
        refused(
            &cli!(p, ["--secrets", "s.toml", "query", "slow", "SELECT 1"]),
            &["connection \"slow\"", key, "longer than SQLite can wait"],
        );
    }
}

#[test]
fn huge_limits_are_no_limit_and_negative_ones_are_refused() {
    let p = project();
    for limit in [
        "18446744073709551615",
        "9223372036854775808",
        "9223372036854775807",
    ] {
        for conn in ["pg", "db"] {
            // PostgreSQL said "bigint out of range" past i64::MAX.
            let out = printed(&cli!(
                p,
                [
                    "query",
                    conn,
                    "SELECT 1 AS v",
                    "--limit",
                    limit,
                    "--format",
                    "csv"
                ]
            ));
            assert_eq!(out, "v\n1\n", "{conn} --limit {limit}");
        }
    }
    // A usage error was clap's three lines and exit code 2.
    refused(
        &cli!(p, ["query", "db", "SELECT 1", "--limit", "-1"]),
        &["--limit", "-1 is negative"],
    );
    refused(
        &cli!(
            p,
            ["query", "db", "SELECT 1", "--limit", "99999999999999999999"]
        ),
        &["--limit", "more rows than"],
    );
    refused(
        &cli!(p, ["query", "db", "SELECT 1", "--bogus"]),
        &["--bogus"],
    );
}

#[test]
fn parameters_that_cannot_be_bound_are_refused_naming_the_parameter() {
    let p = project();
    // NaN and the infinities bind (they cross as strings since plugboard-api 1.3; they were
    // JSON nulls, "internal error: malformed read request").
    for (param, shown) in [
        ("x:float=nan", "NaN"),
        ("x:float=inf", "inf"),
        ("x:float=-inf", "-inf"),
        ("x:float=1e999", "inf"),
    ] {
        let out = printed(&cli!(
            p,
            [
                "query",
                "pg",
                "SELECT :x::float8 AS v",
                "-p",
                param,
                "--format",
                "csv"
            ]
        ));
        assert_eq!(out, format!("v\n{shown}\n"), "{param}");
        // SQLite stores a NaN as NULL.
        printed(&cli!(p, ["query", "db", "SELECT :x AS v", "-p", param]));
    }
    for (param, says) in [
        ("x:int=99999999999999999999", "not an integer"),
        ("x:hex=zz", "not hex bytes"),
        ("x:hex=\u{e9}0", "not hex bytes"),
        ("x:wat=1", "unknown type"),
    ] {
        refused(
            &cli!(p, ["query", "db", "SELECT :x AS v", "-p", param]),
            &[&format!("--param {param:?}"), says],
        );
    }
    // `:n:int=5` binds `n`, typed (it bound a parameter named "n:int").
    let out = printed(&cli!(
        p,
        [
            "query",
            "db",
            "SELECT typeof(:n) AS t",
            "-p",
            ":n:int=5",
            "--format",
            "csv"
        ]
    ));
    assert_eq!(out, "t\ninteger\n");
}

/// PostgreSQL's extreme dates and timestamps printed as chrono could not: polars panicked
/// formatting any of them, and a time zone in a table ("activate 'timezones' feature").
#[test]
fn postgresql_extreme_dates_and_timestamps_print_in_every_format() {
    let p = project();
    let sql = "SELECT 'infinity'::timestamp AS t, '-infinity'::timestamptz AS tz, \
               'infinity'::date AS d, '5874897-12-31'::date AS last, \
               '4713-01-01 BC'::date AS first, '262143-01-01'::date AS past_chrono, \
               '2024-05-06 07:08:09.5+00'::timestamptz AS utc";
    let (texts, frames) = every_format(&p, "pg", sql);
    let [table, csv, json, ndjson] = &texts[..] else {
        panic!("four formats")
    };
    for shown in [
        "infinity",
        "-infinity",
        "+5874897-12-31",
        "-4712-01-01",
        "+262143-01-01",
        "2024-05-06 07:08:09.500 UTC",
    ] {
        assert!(table.contains(shown), "{shown} missing from\n{table}");
    }
    assert!(
        csv.contains("infinity,-infinity,infinity,+5874897-12-31,-4712-01-01,+262143-01-01,"),
        "{csv}"
    );
    assert!(csv.contains("2024-05-06T07:08:09.500000"), "{csv}");
    let rows: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
    let row = &rows[0];
    assert_eq!(row["t"], "infinity");
    assert_eq!(row["tz"], "-infinity");
    assert_eq!(row["d"], "infinity");
    assert_eq!(row["last"], "+5874897-12-31");
    assert_eq!(row["utc"], "2024-05-06T07:08:09.500+00:00");
    let line: serde_json::Value = serde_json::from_str(ndjson.trim()).expect("ndjson");
    assert_eq!(&line, row);
    // The binary formats carry the values themselves.
    for df in &frames {
        let t = df.column("t").expect("t").as_materialized_series();
        assert_eq!(
            t.to_physical_repr().i64().expect("i64").get(0),
            Some(i64::MAX)
        );
        let d = df.column("d").expect("d").as_materialized_series();
        assert_eq!(
            d.to_physical_repr().i32().expect("i32").get(0),
            Some(i32::MAX)
        );
    }
}

#[test]
fn postgresql_values_past_arrows_range_are_refused_naming_the_column() {
    let p = project();
    for (sql, says) in [
        // An i64 overflow in the plugin: a panic in debug builds, a wrong date in release.
        (
            "SELECT '294276-12-31 23:59:59.999999'::timestamp AS late",
            "column \"late\": timestamp after 294247-01-10",
        ),
        (
            "SELECT '294270-01-01 00:00:00+00'::timestamptz AS late",
            "column \"late\": timestamp after 294247-01-10",
        ),
        // Read back as a null, silently.
        (
            "SELECT '24:00:00'::time AS midnight",
            "column \"midnight\": time 24:00:00",
        ),
        (
            "SELECT '178000000 years'::interval AS long",
            "column \"long\": interval longer than",
        ),
    ] {
        for args in [
            vec!["query", "pg", sql, "--format", "table"],
            vec!["query", "pg", sql, "--format", "csv"],
        ] {
            refused(
                &p.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &args, &[]),
                &[says, "cast it"],
            );
        }
    }
}

/// Nested values, binary ones and durations in the text formats: JSON panicked on a list
/// of bytea ("not yet implemented: Writing BinaryView to JSON"), CSV refused intervals and
/// lists without naming the column.
#[test]
fn nested_binary_and_interval_values_print_or_are_refused_naming_the_column() {
    let p = project();
    let sql = "SELECT ARRAY['\\x00ff'::bytea, NULL] AS blobs, \
               ARRAY[now(), 'infinity'] AS stamps, ARRAY[]::int[] AS empty";
    for format in ["json", "ndjson"] {
        let out = printed(&cli!(p, ["query", "pg", sql, "--format", format]));
        assert!(out.contains(r#""blobs":["00ff",null]"#), "{out}");
        assert!(out.contains(r#""empty":[]"#), "{out}");
        assert!(out.contains(r#""infinity"]"#), "{out}");
    }
    let table = printed(&cli!(p, ["query", "pg", sql, "--format", "table"]));
    assert!(table.contains("UTC\", \"infinity\"]"), "{table}");
    refused(
        &cli!(p, ["query", "pg", sql, "--format", "csv"]),
        &["column \"blobs\"", "CSV"],
    );
    let csv = printed(&cli!(
        p,
        [
            "query",
            "pg",
            "SELECT '1 day 00:00:01.5'::interval AS i, '-106751991 days -4:00:54.775808'::interval AS low",
            "--format",
            "csv"
        ]
    ));
    assert_eq!(csv, "i,low\nPT86401.5S,-PT9223372036854.775808S\n");
}

#[test]
fn sqlite_extremes_and_huge_values_print_in_every_format() {
    let p = project();
    printed(&cli!(
        p,
        [
            "exec",
            "db",
            "CREATE TABLE e (i INTEGER, r REAL, b BLOB, t TEXT)",
            "INSERT INTO e VALUES (-9223372036854775808, 9e999, zeroblob(2000000), \
             replace(hex(zeroblob(2500000)), '00', 'xy')), \
             (9223372036854775807, -9e999, x'00ff', '')"
        ]
    ));
    let started = Instant::now();
    let (texts, frames) = every_format(&p, "db", "SELECT * FROM e");
    // A table of a 5 MB text took minutes (comfy-table lays out every character).
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let [table, csv, json, _] = &texts[..] else {
        panic!("four formats")
    };
    assert!(table.contains("-9223372036854775808"), "{}", &table[..500]);
    // With no width to fit (a pipe, no $COLUMNS), cells are whole, as in a file…
    assert!(table.contains(&"xy".repeat(2_500_000)), "the text, whole");
    assert!(
        table.contains(&"0".repeat(4_000_000)),
        "the blob's hex, whole"
    );
    // …and fitted to a width, they are cut to the line.
    let fitted = printed(&cli!(
        p,
        [
            "query",
            "db",
            "SELECT * FROM e",
            "-m",
            "table",
            "--max-width",
            "80"
        ]
    ));
    assert!(fitted.lines().all(|l| l.chars().count() <= 80), "{fitted}");
    assert!(
        fitted.contains("xyxy…") && fitted.len() < 10_000,
        "{fitted}"
    );
    assert!(
        csv.contains("9223372036854775807,-inf,00ff,"),
        "{}",
        &csv[csv.len() - 80..]
    );
    assert!(csv.len() > 9_000_000, "CSV holds every byte");
    let rows: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
    assert_eq!(rows[0]["i"], i64::MIN);
    // JSON has no infinity: polars writes null.
    assert_eq!(rows[0]["r"], serde_json::Value::Null);
    assert_eq!(rows[0]["t"].as_str().map(str::len), Some(5_000_000));
    for df in &frames {
        let r = df.column("r").expect("r").f64().expect("f64");
        assert_eq!(r.get(0), Some(f64::INFINITY));
    }
}

/// Parquet files with timestamps and dates at the edges of their types, read through the
/// files plugin: polars panicked printing them, and on any named or odd time zone.
#[test]
fn parquet_files_with_extreme_timestamps_print_in_every_format() {
    let p = project();
    let stamps = |name: &str, unit: TimeUnit, tz: Option<&str>, values: &[i64]| {
        let tz = polars::prelude::TimeZone::opt_try_new(tz).expect("zone");
        Int64Chunked::from_slice(name.into(), values)
            .into_datetime(unit, tz)
            .into_series()
            .into_column()
    };
    let mut df = DataFrame::new(
        3,
        vec![
            stamps("ms", TimeUnit::Milliseconds, None, &[i64::MAX, i64::MIN, 0]),
            stamps(
                "us_ny",
                TimeUnit::Microseconds,
                Some("America/New_York"),
                &[i64::MAX, 1_700_000_000_000_000, -1],
            ),
            stamps(
                "ns_odd",
                TimeUnit::Nanoseconds,
                Some("99:00"),
                &[i64::MAX, i64::MIN, 0],
            ),
            Int32Chunked::from_slice("d".into(), &[i32::MIN, 2_000_000_000, 0])
                .into_date()
                .into_series()
                .into_column(),
            Int64Chunked::from_slice("dur".into(), &[i64::MIN, i64::MAX, 1])
                .into_duration(TimeUnit::Milliseconds)
                .into_series()
                .into_column(),
        ],
    )
    .expect("frame");
    let file = std::fs::File::create(p.path("data/edges.parquet")).expect("create");
    ParquetWriter::new(file)
        .finish(&mut df)
        .expect("write parquet");

    let mut texts = Vec::new();
    for format in TEXT {
        texts.push(printed(&cli!(
            p,
            ["read", "files", "edges.parquet", "--format", format]
        )));
    }
    let [table, csv, json, ndjson] = &texts[..] else {
        panic!("four formats")
    };
    assert!(table.contains("2023-11-14 22:13:20 UTC"), "{table}");
    assert!(table.contains("+5477784-01-06"), "{table}");
    assert!(
        csv.starts_with("ms,us_ny,ns_odd,d,dur\ninfinity,infinity,2262-04-11T23:47:16.854775807,-infinity,-PT9223372036854775.808S\n"),
        "{csv}"
    );
    let rows: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
    assert_eq!(rows[1]["us_ny"], "2023-11-14T22:13:20+00:00");
    assert_eq!(rows[2]["ns_odd"], "1970-01-01T00:00:00+00:00");
    assert_eq!(rows[1]["ms"], "-infinity");
    assert_eq!(ndjson.lines().count(), 3);
    for name in ["out.parquet", "out.arrow"] {
        let out = p.path(name).display().to_string();
        printed(&cli!(
            p,
            ["read", "files", "edges.parquet", "--output", &out]
        ));
    }
}

#[test]
fn a_huge_infer_schema_length_reads_instead_of_aborting() {
    let p = project();
    std::fs::write(p.path("data/t.csv"), "a,b\n1,x\n2,y\n").expect("write");
    // polars set aside 24 bytes a row before reading one: the allocator aborted the host.
    for n in ["100000000000", "18446744073709551615"] {
        let option = format!("infer_schema_length={n}");
        let out = printed(&cli!(
            p,
            ["read", "files", "t.csv", "-x", &option, "--format", "csv"]
        ));
        assert_eq!(out, "a,b\n1,x\n2,y\n");
    }
}

/// Through the library: a batch size is rows per batch, and the SQL plugins reserved room
/// for that many rows before reading one (`usize::MAX`: a capacity-overflow panic; 2⁴⁰: an
/// allocation the host died of).
#[test]
fn an_enormous_batch_size_reads_instead_of_aborting() {
    let p = project();
    // A library host resolves `sqlite:///t.db` against this process's working directory:
    // point it at the project's folder, so the test leaves no file behind.
    let db = p.path("t.db");
    p.write(
        "secrets.toml",
        &format!(
            "[connections.db]\nurl = \"sqlite:///{}\"\n\n[connections.pg]\nurl = \"{}\"\n",
            db.display(),
            pg::url(pg::scratch())
        ),
    );
    let host = p.host();
    for conn in ["db", "pg"] {
        let c = host.connection(conn).expect(conn);
        for rows in [usize::MAX, 1 << 40] {
            let df = c
                .query("SELECT 1 AS v")
                .batch_size(rows)
                .fetch()
                .unwrap_or_else(|e| panic!("{conn} batch_size {rows}: {e}"));
            assert_eq!(df.height(), 1);
            let frames = c
                .query("SELECT 2 AS v")
                .batch_size(rows)
                .ttl(Duration::ZERO)
                .stream()
                .unwrap_or_else(|e| panic!("{conn} stream batch_size {rows}: {e}"))
                .collect::<Result<Vec<_>, _>>()
                .unwrap_or_else(|e| panic!("{conn} stream batch_size {rows}: {e}"));
            assert_eq!(frames.iter().map(DataFrame::height).sum::<usize>(), 1);
        }
    }
}

/// A key from the environment or the library's options nested 30,000 levels deep
/// overflowed the stack (SIGABRT) as its table was built or dropped.
#[test]
fn keys_nested_past_any_config_are_refused_naming_the_variable() {
    let p = project();
    let deep = format!("PLUGBOARD_CONNECTIONS__DB{}", "__A".repeat(30_000));
    let err = refused(
        &cli!(p, ["query", "db", "SELECT 1"], env = [deep.as_str() => "1"]),
        &[
            "connection \"db\"",
            "PLUGBOARD_CONNECTIONS__DB__",
            "30000 tables deep",
            "at most 64",
        ],
    );
    assert!(err.len() < 300, "one short line: {err}");
    let other =
        cli!(p, ["query", "pg", "SELECT 1 AS x", "--format", "csv"], env = [deep.as_str() => "1"]);
    assert_eq!(
        printed(&other),
        "x\n1\n",
        "other connections are unaffected"
    );

    let host = p.host();
    let key = vec!["a"; 30_000].join(".");
    let e = host
        .connection_with("db", plugboard::ConnectOptions::new().set_text(&key, "1"))
        .expect_err("refused");
    assert!(e.to_string().contains("30000 tables deep"), "{e}");
}

/// A `retry_backoff` of years would hang the host on its first retryable error.
#[test]
fn a_retry_backoff_past_a_minute_is_refused() {
    let p = project();
    p.write(
        "s.toml",
        "[connections.slow]\nurl = \"sqlite:///t.db\"\nretry_backoff = \"999999999d\"\n",
    );
    refused(
        &cli!(p, ["--secrets", "s.toml", "query", "slow", "SELECT 1"]),
        &[
            "connection \"slow\"",
            "`retry_backoff`",
            "longer than the 60s a retry may wait",
        ],
    );
}

#[test]
fn a_target_that_cannot_be_an_s3_bucket_is_refused_not_a_panic() {
    // `[connections.s3]` with no root takes the bucket from the target: a query's text
    // there was a URI panic inside object_store.
    let p = project();
    p.write(
        "secrets.toml",
        "[connections.s3]\nkey = \"AKIAEXAMPLE\"\nsecret = \"MARKER-hostile-s3\"\nendpoint_url = \"http://127.0.0.1:9\"\n",
    );
    for target in ["SELECT 1", "Upper/x.csv", "a b/c.csv"] {
        let line = refused(
            &cli!(p, ["read", "s3", target]),
            &["connection \"s3\"", "not an S3 bucket name"],
        );
        assert!(!line.contains("MARKER-hostile-s3"), "{line}");
    }
}

/// A secrets or plugins file that never ends (`/dev/zero`) is refused after 64 MiB, naming
/// the file, instead of being read until memory runs out; one that arrives through a pipe
/// (`--secrets <(sops -d …)`) is read as usual.
#[test]
fn an_endless_config_file_is_refused_and_a_pipe_is_read() {
    let p = project();
    for flag in ["--secrets", "--plugins"] {
        refused(
            &cli!(p, [flag, "/dev/zero", "query", "db", "SELECT 1"]),
            &["/dev/zero", "larger than 64 MiB"],
        );
    }
    let fifo = p.path("secrets.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::fs::write(&fifo, "[connections.piped]\nurl = \"sqlite:///t.db\"\n")
                .expect("write the fifo");
        })
    };
    let out = printed(&cli!(
        p,
        [
            "--secrets",
            &fifo.to_string_lossy(),
            "query",
            "piped",
            "SELECT 7 AS n",
            "--format",
            "csv"
        ]
    ));
    writer.join().expect("writer");
    assert_eq!(out.trim(), "n\n7");
}

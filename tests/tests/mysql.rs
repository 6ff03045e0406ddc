//! The MySQL connector through the real `.so`, against the machine's MariaDB on
//! 127.0.0.1:3306, compared with what the `mariadb` client returns; and against private
//! servers (`my::Server`) for passwords and restarts.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use plugboard::{ConnectOptions, Host};
use plugboard_api::ErrorKind;
use plugboard_tests::{Project, capture_logs, cli, int, my};
use polars::prelude::*;

fn project() -> Project {
    let chinook = my::chinook();
    let scratch = my::scratch();
    Project::new(
        &["plugboard_mysql", "plugboard_sqlite"],
        &format!(
            "[connections.chinook]\ntype = \"sql\"\nurl = \"{}\"\n\n\
             [connections.scratch]\nurl = \"{}\"\npool_size = 1\n\n\
             [connections.streamlit]\ntype = \"sql\"\ndialect = \"mysql\"\ndriver = \"pymysql\"\n\
             username = \"root\"\nhost = \"127.0.0.1\"\nport = \"3306\"\ndatabase = \"{chinook}\"\n\
             query = {{ charset = \"utf8mb4\" }}\n",
            my::url(chinook).replace("mysql://", "mysql+pymysql://"),
            my::url(scratch),
        ),
    )
}

/// The integer in row 0 of `column`, whatever its width: MariaDB types an expression by
/// its length (`SELECT 7` is an INT, `CONNECTION_ID()` an unsigned BIGINT).
fn number(df: &DataFrame, column: &str) -> i64 {
    df.column(column)
        .unwrap_or_else(|e| panic!("no column {column}: {e}"))
        .cast(&DataType::Int64)
        .expect("an integer column")
        .i64()
        .expect("i64")
        .get(0)
        .unwrap_or_else(|| panic!("{column} is empty or null"))
}

fn host(p: &Project) -> Host {
    p.builder().build().expect("host")
}

/// A cell as the `mariadb` client prints it in batch mode.
fn cell(v: AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => "NULL".to_owned(),
        AnyValue::String(s) => s.to_owned(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Datetime(..) | AnyValue::DatetimeOwned(..) => {
            // polars prints `2009-01-01 00:00:00`; MariaDB leaves out a zero fraction too.
            v.to_string()
        }
        other => other.to_string(),
    }
}

fn rows(df: &DataFrame) -> Vec<Vec<String>> {
    let mut out = vec![
        df.get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
    ];
    for i in 0..df.height() {
        out.push(
            df.columns()
                .iter()
                .map(|c| cell(c.get(i).expect("cell")))
                .collect(),
        );
    }
    out
}

#[test]
fn chinook_reads_as_the_mariadb_client_prints_it() {
    let p = project();
    let h = host(&p);
    let c = h.connection("chinook").expect("connect");
    for table in [
        "Artist",
        "Album",
        "Genre",
        "MediaType",
        "Playlist",
        "PlaylistTrack",
        "Track",
        "Invoice",
        "InvoiceLine",
        "Customer",
        "Employee",
    ] {
        let sql = format!("SELECT * FROM {table} ORDER BY 1, 2");
        let ours = rows(&c.query(&sql).fetch().expect(table));
        let theirs = my::rows(my::chinook(), &sql);
        assert_eq!(ours.len(), theirs.len(), "{table}: row count");
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a, b, "{table}, row {i}: ours, then the mariadb client's");
        }
    }
    // A Streamlit section with SQLAlchemy's parts (port as text) and the CLI's CSV.
    let c = h
        .connection("streamlit")
        .expect("a Streamlit section works unchanged");
    let df = c
        .query("SELECT COUNT(*) AS n, SUM(Milliseconds) AS ms, SUM(UnitPrice) AS price FROM Track")
        .fetch()
        .expect("aggregate");
    let expected = my::value(
        my::chinook(),
        "SELECT CONCAT(COUNT(*), ',', SUM(Milliseconds), ',', SUM(UnitPrice)) FROM Track",
    );
    assert_eq!(
        format!(
            "{},{},{}",
            int(&df, "n"),
            cell(df.column("ms").expect("ms").get(0).expect("ms")),
            cell(df.column("price").expect("price").get(0).expect("price"))
        ),
        expected
    );
    let csv = cli!(
        p,
        [
            "query",
            "streamlit",
            "SELECT ArtistId, Name FROM Artist WHERE ArtistId IN (1, 2) ORDER BY 1",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(csv, "ArtistId,Name\n1,AC/DC\n2,Accept\n");
}

#[test]
fn every_type_maps_with_nulls() {
    let p = project();
    let db = my::scratch();
    my::exec(
        db,
        "DROP TABLE IF EXISTS types_all; \
         CREATE TABLE types_all (k INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, \
           si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, i INT, iu INT UNSIGNED, \
           bi BIGINT, bu BIGINT UNSIGNED, f FLOAT, d DOUBLE, n DECIMAL(12,3), \
           nbig DECIMAL(38,0), bit1 BIT(1), bit9 BIT(9), b BOOL, y YEAR, dt DATE, \
           dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME, tm6 TIME(6), \
           c CHAR(3), v VARCHAR(20), t TEXT, bin BINARY(3), vb VARBINARY(10), bl BLOB, \
           e ENUM('sad','happy'), s SET('a','b','c'), j JSON) CHARACTER SET utf8mb4; \
         INSERT INTO types_all VALUES \
          (1, -128, 255, -32768, 65535, -8388608, -2147483648, 4294967295, \
           -9223372036854775808, 18446744073709551615, 1.5, -2.25, -123456789.125, \
           99999999999999999999999999999999999999, b'1', b'100000001', TRUE, 2155, \
           '2024-02-29', '1000-01-01 00:00:00', '9999-12-31 23:59:59.999999', \
           '2038-01-19 03:14:07.499', '-838:59:59', '838:59:59.000001', 'ab', 'héllo 😀', \
           'long\\ttext\\nlines', 'a\\0b', x'00ff10', x'deadbeef', 'happy', 'a,c', \
           '{\"a\": [1, 2]}'), \
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
           NULL, NULL, NULL, NULL, NULL), \
          (3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'0', b'0', FALSE, 1901, '1970-01-01', \
           '1970-01-01 00:00:00', '1970-01-01 00:00:00', '1970-01-01 00:00:01', '00:00:00', \
           '-00:00:00.5', '', '', '', '', '', '', 'sad', '', '[]')",
    );
    let h = host(&p);
    let c = h.connection("scratch").expect("connect");
    let df = c
        .query("SELECT * FROM types_all ORDER BY k")
        .fetch()
        .expect("read every type");
    let dtype = |name: &str| df.column(name).expect(name).dtype().clone();
    let us = TimeUnit::Microseconds;
    for (name, expected) in [
        ("ti", DataType::Int8),
        ("tu", DataType::UInt8),
        ("si", DataType::Int16),
        ("su", DataType::UInt16),
        ("mi", DataType::Int32),
        ("i", DataType::Int32),
        ("iu", DataType::UInt32),
        ("bi", DataType::Int64),
        ("bu", DataType::UInt64),
        ("f", DataType::Float32),
        ("d", DataType::Float64),
        ("n", DataType::Decimal(12, 3)),
        ("nbig", DataType::Decimal(38, 0)),
        ("bit1", DataType::Boolean),
        ("bit9", DataType::UInt64),
        ("b", DataType::Int8),
        ("y", DataType::Int16),
        ("dt", DataType::Date),
        ("dtm", DataType::Datetime(us, None)),
        ("dtm6", DataType::Datetime(us, None)),
        (
            "ts",
            DataType::Datetime(us, Some(polars::prelude::TimeZone::UTC)),
        ),
        ("tm", DataType::Duration(us)),
        ("tm6", DataType::Duration(us)),
        ("c", DataType::String),
        ("v", DataType::String),
        ("t", DataType::String),
        ("bin", DataType::Binary),
        ("vb", DataType::Binary),
        ("bl", DataType::Binary),
        ("e", DataType::String),
        ("s", DataType::String),
        ("j", DataType::String),
    ] {
        assert_eq!(dtype(name), expected, "column {name}");
    }
    // Row 2 is NULL everywhere but its key.
    for column in df.columns().iter().skip(1) {
        assert_eq!(
            column.get(1).expect("row 2"),
            AnyValue::Null,
            "{}",
            column.name()
        );
    }
    let get = |name: &str, row: usize| df.column(name).expect(name).get(row).expect("cell");
    assert_eq!(get("bu", 0), AnyValue::UInt64(u64::MAX));
    assert_eq!(get("bi", 0), AnyValue::Int64(i64::MIN));
    assert_eq!(get("iu", 0), AnyValue::UInt32(u32::MAX));
    assert_eq!(get("bit9", 0), AnyValue::UInt64(0b1_0000_0001));
    assert_eq!(get("bit1", 0), AnyValue::Boolean(true));
    assert_eq!(get("bit1", 2), AnyValue::Boolean(false));
    assert_eq!(get("y", 0), AnyValue::Int16(2155));
    assert_eq!(get("bin", 0), AnyValue::Binary(b"a\0b"));
    assert_eq!(get("vb", 0), AnyValue::Binary(&[0x00, 0xff, 0x10]));
    assert_eq!(get("bl", 0), AnyValue::Binary(&[0xde, 0xad, 0xbe, 0xef]));
    assert_eq!(get("v", 0), AnyValue::String("héllo 😀"));
    assert_eq!(get("t", 0), AnyValue::String("long\ttext\nlines"));
    assert_eq!(get("c", 0), AnyValue::String("ab"));
    assert_eq!(get("e", 0), AnyValue::String("happy"));
    assert_eq!(get("s", 0), AnyValue::String("a,c"));
    assert_eq!(get("j", 0), AnyValue::String("{\"a\": [1, 2]}"));
    let micros = |name: &str, row: usize| match get(name, row) {
        AnyValue::Duration(v, _) | AnyValue::Datetime(v, _, _) => v,
        AnyValue::DatetimeOwned(v, _, _) => v,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(micros("tm", 0), -(838 * 3600 + 59 * 60 + 59) * 1_000_000);
    assert_eq!(
        micros("tm6", 0),
        (838 * 3600 + 59 * 60 + 59) * 1_000_000 + 1
    );
    assert_eq!(micros("tm6", 2), -500_000);
    assert_eq!(micros("dtm6", 0), 253_402_300_799_999_999);
    assert_eq!(micros("dtm", 0), -30_610_224_000_000_000);
    // TIMESTAMP is an instant: 2038-01-19 03:14:07.499 UTC, whatever the server's zone.
    assert_eq!(micros("ts", 0), 2_147_483_647_499_000);
    assert_eq!(micros("ts", 2), 1_000_000);
    // Decimals are exact: the text the client prints; floats the numbers it prints.
    let expected = my::rows(db, "SELECT n, nbig, dt, f, d FROM types_all ORDER BY k");
    for (row, theirs) in expected.iter().skip(1).enumerate() {
        let ours: Vec<String> = ["n", "nbig", "dt"]
            .iter()
            .map(|n| cell(get(n, row)))
            .collect();
        assert_eq!(ours, theirs[..3], "row {row}");
        for (i, name) in ["f", "d"].into_iter().enumerate() {
            let ours = get(name, row).extract::<f64>();
            let theirs = theirs[3 + i].parse::<f64>().ok();
            assert_eq!(ours, theirs, "row {row}, column {name}");
        }
    }
}

#[test]
fn zero_dates_fail_naming_the_column_unless_asked_to_read_as_null() {
    let p = project();
    let db = my::scratch();
    my::exec(
        db,
        "SET SESSION sql_mode = ''; DROP TABLE IF EXISTS zero_dates; \
         CREATE TABLE zero_dates (k INT, d DATE, t DATETIME); \
         INSERT INTO zero_dates VALUES (1, '2024-01-02', '2024-01-02 03:04:05'), \
           (2, '0000-00-00', '0000-00-00 00:00:00')",
    );
    let h = host(&p);
    let e = h
        .connection("scratch")
        .expect("connect")
        .query("SELECT * FROM zero_dates ORDER BY k")
        .fetch()
        .expect_err("a zero date");
    let text = e.to_string();
    assert!(
        text.contains("column \"d\", row 2") && text.contains("zero_dates"),
        "{text}"
    );
    let nulls = h
        .connection_with("scratch", ConnectOptions::new().set("zero_dates", "null"))
        .expect("connect")
        .query("SELECT * FROM zero_dates ORDER BY k")
        .fetch()
        .expect("zero dates as NULL");
    assert_eq!(nulls.column("d").expect("d").null_count(), 1);
    assert_eq!(nulls.column("t").expect("t").null_count(), 1);
    assert_eq!(nulls.height(), 2);
}

#[test]
fn params_are_bound_by_the_server() {
    let p = project();
    let h = host(&p);
    let c = h.connection("chinook").expect("connect");
    let names = |df: DataFrame| -> Vec<String> {
        let col = df.column("Name").expect("Name").str().expect("str").clone();
        (0..col.len())
            .map(|i| col.get(i).unwrap_or_default().to_owned())
            .collect()
    };
    let named = c
        .query("SELECT Name FROM Artist WHERE ArtistId = :id OR ArtistId = :id + 1 ORDER BY 1")
        .param("id", 1)
        .fetch()
        .expect("named");
    assert_eq!(names(named), ["AC/DC", "Accept"]);
    let positional = c
        .query("SELECT Name FROM Artist WHERE ArtistId = ? OR ArtistId = ? ORDER BY 1")
        .param("1", 2)
        .param("2", "3")
        .fetch()
        .expect("?, one given as text");
    assert_eq!(names(positional), ["Accept", "Aerosmith"]);
    let hostile = c
        .query("SELECT Name FROM Artist WHERE Name = :n")
        .param("n", "x'; DROP TABLE Artist; -- ")
        .fetch()
        .expect("a value, not SQL");
    assert_eq!(hostile.height(), 0);
    assert_eq!(
        my::value(my::chinook(), "SELECT COUNT(*) FROM Artist"),
        "275"
    );
    let like = c
        .query("SELECT COUNT(*) AS n FROM Track WHERE Name LIKE :p AND UnitPrice > :price")
        .param("p", "%Love%")
        .param("price", 0.5)
        .fetch()
        .expect("like");
    assert_eq!(
        int(&like, "n").to_string(),
        my::value(
            my::chinook(),
            "SELECT COUNT(*) FROM Track WHERE Name LIKE '%Love%' AND UnitPrice > 0.5"
        )
    );
    let limited = c
        .query("SELECT * FROM Track ORDER BY TrackId;")
        .limit(7)
        .fetch()
        .expect("limit");
    assert_eq!(limited.height(), 7);
    let duplicate_names = c
        .query(
            "SELECT a.ArtistId, b.ArtistId FROM Artist a JOIN Album b ON a.ArtistId = b.ArtistId",
        )
        .limit(3)
        .fetch()
        .expect("a limit on columns of one name");
    assert_eq!(duplicate_names.height(), 3);

    let e = c
        .query("SELECT :a")
        .param("b", 1)
        .fetch()
        .expect_err("unknown");
    assert!(
        e.to_string()
            .contains("unknown parameter \"b\": it takes :a"),
        "{e}"
    );
    let e = c.query("SELECT :a").fetch().expect_err("missing");
    assert!(e.to_string().contains("missing parameter \"a\""), "{e}");
    let e = c.query("SELEC 1").fetch().expect_err("syntax");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::QUERY));
    assert_eq!(e.attempts(), Some(1), "a syntax error is not retried");
    assert!(
        e.to_string().contains("ERROR 1064 (42000)"),
        "the error number and SQLSTATE are shown: {e}"
    );
    let e = c
        .query("SELECT * FROM NoSuchTable")
        .fetch()
        .expect_err("table");
    assert!(e.to_string().contains("ERROR 1146 (42S02)"), "{e}");
}

#[test]
fn a_transaction_that_fails_halfway_leaves_nothing() {
    let p = project();
    let db = my::scratch();
    my::exec(
        db,
        "DROP TABLE IF EXISTS tx_t; CREATE TABLE tx_t (x INT PRIMARY KEY) ENGINE = InnoDB",
    );
    let h = host(&p);
    let c = h.connection("scratch").expect("connect");
    let n = c
        .execute("INSERT INTO tx_t VALUES (:a), (:b)")
        .param("a", 1)
        .param("b", 2)
        .statement("UPDATE tx_t SET x = x + 10 WHERE x = 2; INSERT INTO tx_t VALUES (3)")
        .run()
        .expect("write");
    assert_eq!(n, 4, "2 inserted, 1 updated, 1 inserted");
    let e = c
        .execute("INSERT INTO tx_t VALUES (100)")
        .statement("INSERT INTO tx_t VALUES (1)") // a duplicate key
        .run()
        .expect_err("fails halfway");
    assert!(e.to_string().contains("ERROR 1062 (23000)"), "{e}");
    assert_eq!(
        my::value(db, "SELECT GROUP_CONCAT(x ORDER BY x) FROM tx_t"),
        "1,3,12",
        "the first statement of the failed transaction was rolled back"
    );
    let df = c
        .query("SELECT COUNT(*) AS n FROM tx_t")
        .fetch()
        .expect("the connection is still usable");
    assert_eq!(int(&df, "n"), 3);
    c.ping().expect("ping, the health check");
}

#[test]
fn a_killed_connection_is_reset_and_retried() {
    let p = project();
    let h = host(&p);
    let c = h.connection("scratch").expect("connect");
    let id = |c: &plugboard::Connection| {
        let df = c
            .query("SELECT CONNECTION_ID() AS id")
            .ttl(Duration::ZERO)
            .fetch()
            .expect("id");
        number(&df, "id")
    };
    let first = id(&c);
    my::exec("mysql", &format!("KILL {first}"));
    let (second, log) = capture_logs(|| id(&c));
    assert_ne!(second, first, "a new server connection served the retry");
    let resets = log.matches("resetting the connection").count();
    assert_eq!(resets, 1, "one reset in the log:\n{log}");
}

#[test]
fn a_connection_past_wait_timeout_is_reset_and_retried() {
    let p = project();
    let h = host(&p);
    // The server closes a session idle for a second (init_command runs on every new one).
    let c = h
        .connection_with(
            "scratch",
            ConnectOptions::new().set("init_command", "SET SESSION wait_timeout = 1"),
        )
        .expect("connect");
    let id = |c: &plugboard::Connection| {
        number(
            &c.query("SELECT CONNECTION_ID() AS id")
                .ttl(Duration::ZERO)
                .fetch()
                .expect("id"),
            "id",
        )
    };
    let first = id(&c);
    std::thread::sleep(Duration::from_millis(2500));
    let (second, log) = capture_logs(|| id(&c));
    assert_ne!(second, first, "a new server connection served the retry");
    assert_eq!(
        log.matches("resetting the connection").count(),
        1,
        "one reset in the log:\n{log}"
    );
}

#[test]
fn partitioned_reads_match_the_plain_read() {
    let p = project();
    let h = host(&p);
    let c = h.connection("chinook").expect("connect");
    let sql = "SELECT TrackId, Name, Milliseconds, UnitPrice FROM Track";
    let sorted = |df: DataFrame| {
        df.sort(["TrackId"], SortMultipleOptions::default())
            .expect("sort")
    };
    let plain = sorted(c.query(sql).fetch().expect("plain"));
    for parts in [2, 3, 16] {
        let got = c
            .query(sql)
            .option("partition_on", "TrackId")
            .option("partitions", parts)
            .fetch()
            .unwrap_or_else(|e| panic!("{parts} parts: {e}"));
        assert!(sorted(got).equals_missing(&plain), "{parts} parts differ");
    }
    let err = c
        .query(sql)
        .option("partition_on", "Name")
        .option("partitions", 2)
        .fetch()
        .expect_err("text")
        .to_string();
    assert!(err.contains("not an integer"), "{err}");
}

#[test]
fn a_streamed_read_comes_in_batches_and_exports_flat() {
    let p = project();
    let h = host(&p);
    let c = h.connection("scratch").expect("connect");
    // MariaDB's sequence engine: 150,000 generated rows.
    let sql =
        "SELECT seq AS id, seq * 0.5 AS half, CONCAT('row ', seq) AS label FROM seq_1_to_150000";
    let frames: Vec<DataFrame> = c
        .query(sql)
        .stream()
        .expect("stream")
        .collect::<Result<_, _>>()
        .expect("batches");
    assert_eq!(
        frames.iter().map(DataFrame::height).collect::<Vec<_>>(),
        [65_536, 65_536, 18_928]
    );
    let mut streamed = frames[0].clone();
    for f in &frames[1..] {
        streamed.vstack_mut(f).expect("vstack");
    }
    assert!(streamed.equals_missing(&c.query(sql).fetch().expect("fetch")));

    // The export through the CLI: the file holds every row.
    let out = p.path("rows.parquet");
    cli!(
        p,
        [
            "query",
            "scratch",
            sql,
            "--output",
            &out.display().to_string()
        ]
    )
    .ok();
    let back = ParquetReader::new(std::fs::File::open(&out).expect("open"))
        .finish()
        .expect("read back");
    assert_eq!(back.height(), 150_000);

    // The server fails at row 100,000, after the first batch went out.
    let failing =
        "SELECT seq, IF(seq = 100000, (SELECT 1 UNION SELECT 2), seq) AS x FROM seq_1_to_150000";
    let mut stream = c.query(failing).stream().expect("the first batch is fine");
    assert_eq!(
        stream.next().expect("a batch").expect("ok").height(),
        65_536
    );
    let err = stream
        .next()
        .expect("then the error")
        .expect_err("subquery returns more than 1 row")
        .to_string();
    assert!(err.contains("ERROR 1242"), "{err}");
    assert!(stream.next().is_none(), "nothing after the error");
    assert_eq!(
        number(&c.query("SELECT 7 AS n").fetch().expect("after"), "n"),
        7,
        "the connection still works"
    );
}

#[test]
fn my_cnf_and_the_environment_fill_in() {
    let db = my::chinook();
    let p = Project::new(
        &["plugboard_mysql"],
        &format!("[connections.db]\ntype = \"mysql\"\ndatabase = \"{db}\"\n"),
    );
    let sql = "SELECT CURRENT_USER() AS u, @@port AS port";
    // The CLI's HOME is the project's folder: no ~/.my.cnf yet, and no USER: refused.
    let err = cli!(p, ["query", "db", sql], env = ["USER" => "", "LOGNAME" => ""]).fails();
    assert!(err.contains("no user"), "{err}");
    // The environment: MYSQL_HOST and MYSQL_TCP_PORT, and USER for the user name.
    let out = cli!(
        p,
        ["query", "db", sql, "--format", "csv"],
        env = ["USER" => "root", "MYSQL_HOST" => "127.0.0.1", "MYSQL_TCP_PORT" => "3306"]
    )
    .ok();
    assert!(out.contains("root@"), "{out}");
    // ~/.my.cnf's [client] group, over the environment.
    p.write(
        ".my.cnf",
        "[mysqld]\nport = 1\n\n[client]\nuser = root\nhost = 127.0.0.1\nport = 3306\n",
    );
    let out = cli!(
        p,
        ["query", "db", sql, "--format", "csv"],
        env = ["USER" => "nobody", "MYSQL_TCP_PORT" => "1"]
    )
    .ok();
    assert!(out.contains("root@") && out.contains(",3306"), "{out}");
    // The section over the option file.
    p.write(
        "secrets.toml",
        &format!("[connections.db]\ntype = \"mysql\"\ndatabase = \"{db}\"\nport = 1\n"),
    );
    let err = cli!(p, ["query", "db", sql]).fails();
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn tls_is_refused_without_what_it_needs() {
    let p = project();
    let h = host(&p);
    let e = h
        .connection_with(
            "scratch",
            ConnectOptions::new().set("ssl_mode", "VERIFY_CA"),
        )
        .expect_err("no CA");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::CONFIG));
    assert!(
        e.to_string().contains("VERIFY_CA") && e.to_string().contains("ssl_ca"),
        "{e}"
    );
    // The machine's server has no TLS: REQUIRED cannot be met; PREFERRED goes on in the clear.
    let e = h
        .connection_with("scratch", ConnectOptions::new().set("ssl_mode", "REQUIRED"))
        .expect_err("no TLS on the server");
    assert!(e.to_string().contains("does not offer TLS"), "{e}");
    h.connection_with(
        "scratch",
        ConnectOptions::new().set("ssl_mode", "PREFERRED"),
    )
    .expect("preferred")
    .query("SELECT 1 AS x")
    .fetch()
    .expect("read in the clear");
}

#[test]
fn unreachable_servers_fail_within_the_timeout() {
    let p = project();
    let h = host(&p);
    // A port that accepts connections but never greets: the handshake times out.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let started = Instant::now();
    let e = h
        .connection_with(
            "scratch",
            ConnectOptions::new()
                .set("port", i64::from(port))
                .set("connect_timeout", 1),
        )
        .expect_err("silent");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::CONNECT));
    assert_eq!(e.attempts(), Some(1), "connecting is not retried: {e}");
    assert!(e.to_string().contains("connect_timeout"), "{e}");
    drop(silent);

    let started = Instant::now();
    let e = h
        .connection_with("scratch", ConnectOptions::new().set("port", 1))
        .expect_err("closed port");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
}

/// On a private server: a user with a password, and a restart between two queries.
#[test]
fn private_server_passwords_and_restarts() {
    let mut server = my::Server::start(&[]);
    let (user, password) = my::PASSWORD_USER;
    let p = Project::new(
        &["plugboard_mysql"],
        &format!(
            "[connections.private]\nurl = \"mysql://{user}@127.0.0.1:{}/test\"\n\n\
             [connections.root]\nurl = \"{}\"\npool_size = 1\n",
            server.port(),
            server.url("test")
        ),
    );
    let h = host(&p);
    let e = h
        .connection_with(
            "private",
            ConnectOptions::new().set("password", "wrong-one"),
        )
        .expect_err("wrong password");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::AUTH));
    assert_eq!(e.attempts(), Some(1));
    let text = e.to_string();
    assert!(text.contains("ERROR 1045 (28000)"), "{text}");
    assert!(
        !text.contains("wrong-one"),
        "the password is not echoed: {text}"
    );
    let ok = h
        .connection_with("private", ConnectOptions::new().set("password", password))
        .expect("right password");
    let df = ok
        .query("SELECT CURRENT_USER() AS u")
        .fetch()
        .expect("read");
    assert_eq!(
        df.column("u").expect("u").str().expect("str").get(0),
        Some(format!("{user}@%").as_str())
    );

    let c = h.connection("root").expect("connect");
    let read = |c: &plugboard::Connection| {
        number(
            &c.query("SELECT 41 + 1 AS n")
                .ttl(Duration::ZERO)
                .fetch()
                .expect("read"),
            "n",
        )
    };
    assert_eq!(read(&c), 42);
    server.restart();
    let (n, log) = capture_logs(|| read(&c));
    assert_eq!(n, 42, "the query after the restart succeeded");
    assert!(log.contains("resetting the connection"), "{log}");
}

/// On a private server with TLS (`my::private_tls`): each `ssl_mode`, pymysql's `ssl` table
/// and a client certificate, and the checks failing where they must.
#[test]
fn tls_modes_against_a_server_that_has_it() {
    let (server, certs) = my::private_tls();
    let ca = certs.path("ca.pem").display().to_string();
    let p = Project::new(
        &["plugboard_mysql"],
        &format!(
            "[connections.tls]\nurl = \"mysql://root@localhost:{port}/test\"\n\n\
             [connections.at_ip]\nurl = \"mysql://root@127.0.0.1:{port}/test\"\n",
            port = server.port()
        ),
    );
    let h = host(&p);
    let cipher = |name: &str, options: ConnectOptions| -> Result<String, plugboard::Error> {
        let df = h
            .connection_with(name, options)?
            .query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .ttl(Duration::ZERO)
            .fetch()?;
        Ok(df
            .column("Value")
            .expect("Value")
            .str()
            .expect("str")
            .get(0)
            .unwrap_or_default()
            .to_owned())
    };
    let opts = |mode: &str| {
        ConnectOptions::new()
            .set("ssl_mode", mode)
            .set("ssl_ca", ca.as_str())
    };
    // REQUIRED: TLS, certificate unchecked. PREFERRED (the default) moves to the server's
    // Unix socket on this machine, as DISABLED does: local, and in the clear.
    let c = cipher("at_ip", ConnectOptions::new().set("ssl_mode", "REQUIRED")).expect("TLS");
    assert!(!c.is_empty(), "the session is encrypted: {c:?}");
    for mode in ["PREFERRED", "DISABLED"] {
        let c = cipher("at_ip", ConnectOptions::new().set("ssl_mode", mode)).expect(mode);
        assert_eq!(c, "", "{mode}: over the socket");
    }
    // VERIFY_CA at the IP: the chain is checked, the name is not.
    assert!(
        !cipher("at_ip", opts("VERIFY_CA"))
            .expect("verify-ca")
            .is_empty()
    );
    // VERIFY_IDENTITY: the certificate names localhost, not 127.0.0.1.
    assert!(
        !cipher("tls", opts("VERIFY_IDENTITY"))
            .expect("verify-identity")
            .is_empty()
    );
    let e = cipher("at_ip", opts("VERIFY_IDENTITY")).expect_err("the name differs");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::CONNECT));
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // A CA that did not sign it: the system's public roots.
    let e = cipher(
        "tls",
        ConnectOptions::new()
            .set("ssl_mode", "VERIFY_CA")
            .set("ssl_ca", "/etc/ssl/certs/ca-certificates.crt"),
    )
    .expect_err("another CA");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // pymysql's form: connect_args.ssl = {ca}, which checks the name too.
    let pymysql = |name: &str| {
        cipher(
            name,
            ConnectOptions::new().set("create_engine_kwargs.connect_args.ssl.ca", ca.as_str()),
        )
    };
    assert!(!pymysql("tls").expect("pymysql ssl.ca").is_empty());
    assert!(pymysql("at_ip").is_err(), "pymysql checks the host name");
    // A user who must show a certificate: refused without one, served with one.
    let x509 = |with_cert: bool| {
        let mut o = opts("VERIFY_IDENTITY").set("username", "plugboard_x509");
        if with_cert {
            o = o
                .set("ssl_cert", certs.path("client.pem").display().to_string())
                .set("ssl_key", certs.path("client.key").display().to_string());
        }
        cipher("tls", o)
    };
    let e = x509(false).expect_err("no client certificate");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::AUTH), "{e}");
    assert!(!x509(true).expect("client certificate").is_empty());
}

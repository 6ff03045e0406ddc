//! The PostgreSQL connector through the real `.so`, against the real server on
//! 127.0.0.1:5432, compared with what `psql` returns.

use std::time::{Duration, Instant};

use plugboard::{ConnectOptions, Error, Host};
use plugboard_api::ErrorKind;
use plugboard_tests::{Project, capture_logs, cli, int, pg};
use polars::prelude::*;

fn project() -> Project {
    let chinook = pg::chinook();
    let scratch = pg::scratch();
    Project::new(
        &["plugboard_postgres", "plugboard_sqlite"],
        &format!(
            "[connections.chinook]\ntype = \"sql\"\nurl = \"{}\"\n\n\
             [connections.scratch]\nurl = \"{}\"\n\n\
             [connections.streamlit]\ntype = \"sql\"\ndialect = \"postgresql\"\nusername = \"postgres\"\n\
             host = \"127.0.0.1\"\nport = 5432\ndatabase = \"{chinook}\"\n",
            pg::url(chinook),
            pg::url(scratch),
        ),
    )
}

fn host(p: &Project) -> Host {
    p.builder().build().expect("host")
}

#[test]
fn chinook_reads_as_psql_prints_it() {
    let p = project();
    for table in [
        "artist",
        "album",
        "genre",
        "media_type",
        "playlist",
        "playlist_track",
        "track",
        "invoice_line",
        "customer",
    ] {
        let sql = format!("SELECT * FROM {table} ORDER BY 1, 2");
        let ours = cli!(p, ["query", "chinook", &sql, "--format", "csv"]).ok();
        let theirs = pg::csv(pg::chinook(), &sql);
        assert_eq!(ours, theirs, "{table}: the CLI's CSV differs from psql's");
    }
    // The same through the library, with SQLAlchemy-style parts instead of a URL.
    let h = host(&p);
    let c = h
        .connection("streamlit")
        .expect("a Streamlit section works unchanged");
    let df = c
        .query("SELECT count(*) AS n, sum(milliseconds) AS ms FROM track")
        .fetch()
        .expect("aggregate");
    let expected = pg::value(
        pg::chinook(),
        "SELECT count(*) || ',' || sum(milliseconds) FROM track",
    );
    assert_eq!(format!("{},{}", int(&df, "n"), int(&df, "ms")), expected);
}

#[test]
fn every_type_maps_with_nulls_and_arrays() {
    let p = project();
    let db = pg::scratch();
    pg::psql(
        db,
        &[
            "-c",
            "DROP TABLE IF EXISTS types_all; DROP TYPE IF EXISTS mood; \
             CREATE TYPE mood AS ENUM ('sad', 'happy'); \
             CREATE TABLE types_all (k int, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, \
               n numeric(12,3), nbig numeric, b bool, t text, v varchar(10), c char(3), \
               by bytea, d date, tm time, ts timestamp, tz timestamptz, iv interval, u uuid, \
               j json, jb jsonb, m mood, ai int4[], at text[], an numeric[]); \
             INSERT INTO types_all VALUES \
              (1, -2, 40000, 9007199254740993, 1.5, -2.25, 12345.678, 123456789012345678901234567890123456789012.5, \
               true, 'héllo', 'vc', 'ab', '\\x00ff', '2024-02-29', '13:45:56.789', '2024-02-29 13:45:56.789', \
               '2024-02-29 13:45:56.789+02', '1 day 2 hours 3.5 seconds', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', \
               '{\"a\": [1, 2]}', '{\"b\": true}', 'happy', '{1,NULL,3}', '{x,\"y z\"}', '{1.5,NULL}'), \
              (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), \
              (3, 0, 0, 0, 0, 0, -0.001, 0, false, '', '', '', '', '1970-01-01', '00:00', '1970-01-01', \
               '1970-01-01 00:00+00', '-1 month', '00000000-0000-0000-0000-000000000000', 'null', '[]', 'sad', \
               '{}', '{}', '{}')",
        ],
    );
    let h = host(&p);
    let c = h.connection("scratch").expect("connect");
    let read = |protocol: &str| {
        c.query("SELECT * FROM types_all ORDER BY k")
            .option("protocol", protocol)
            .fetch()
            .expect("read every type")
    };
    let df = read("copy");
    assert!(
        df.equals_missing(&read("rows")),
        "binary COPY and binary rows decode alike"
    );
    let dtype = |name: &str| df.column(name).expect(name).dtype().clone();
    let expected = [
        ("i2", DataType::Int16),
        ("i4", DataType::Int32),
        ("i8", DataType::Int64),
        ("f4", DataType::Float32),
        ("f8", DataType::Float64),
        ("n", DataType::Decimal(38, 3)),
        ("nbig", DataType::String),
        ("b", DataType::Boolean),
        ("t", DataType::String),
        ("by", DataType::Binary),
        ("d", DataType::Date),
        ("tm", DataType::Time),
        ("ts", DataType::Datetime(TimeUnit::Microseconds, None)),
        ("iv", DataType::Duration(TimeUnit::Microseconds)),
        ("u", DataType::String),
        ("m", DataType::String),
        ("ai", DataType::List(Box::new(DataType::Int32))),
        ("at", DataType::List(Box::new(DataType::String))),
    ];
    for (name, dt) in expected {
        assert_eq!(dtype(name), dt, "{name}");
    }
    assert!(matches!(
        dtype("tz"),
        DataType::Datetime(TimeUnit::Microseconds, Some(_))
    ));
    assert!(matches!(dtype("an"), DataType::List(_)));

    // Every column of row 2 is null, and only there.
    for col in df.columns().iter().filter(|c| c.name() != "k") {
        assert_eq!(
            col.null_count(),
            1,
            "{}: only the NULL row is null",
            col.name()
        );
        assert!(col.get(1).expect("row 2").is_null(), "{}", col.name());
    }

    // Values, compared with what psql prints for the same cells.
    let row1 = |sql: &str| pg::value(db, &format!("SELECT {sql} FROM types_all WHERE k = 1"));
    let s = |name: &str, i: usize| -> String {
        df.column(name)
            .expect(name)
            .cast(&DataType::String)
            .expect("cast")
            .str()
            .expect("str")
            .get(i)
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert_eq!(s("i8", 0), row1("i8"), "int8 beyond 2^53 stays exact");
    assert_eq!(s("n", 0), row1("n"));
    assert_eq!(s("n", 2), "-0.001");
    assert_eq!(
        s("nbig", 0),
        row1("nbig"),
        "too wide for Decimal128: exact text"
    );
    assert_eq!(s("t", 0), "héllo");
    assert_eq!(
        s("c", 0),
        "ab ",
        "char(n) keeps its padding, as the server sends it"
    );
    assert_eq!(row1("octet_length(c)"), "3");
    assert_eq!(s("u", 0), row1("u"));
    assert_eq!(s("j", 0), row1("j"));
    assert_eq!(s("jb", 0), row1("jb"));
    assert_eq!(s("m", 0), "happy");
    assert_eq!(s("d", 0), "2024-02-29");
    let tm = df
        .column("tm")
        .expect("tm")
        .cast(&DataType::Int64)
        .expect("cast");
    assert_eq!(
        tm.i64().expect("i64").get(0),
        Some(49_556_789_000_000),
        "13:45:56.789 in nanoseconds, as polars holds times"
    );
    assert_eq!(s("ts", 0), "2024-02-29 13:45:56.789000");
    let tz_micros = pg::value(
        db,
        "SELECT (extract(epoch FROM tz) * 1000000)::bigint FROM types_all WHERE k = 1",
    );
    let tz = df
        .column("tz")
        .expect("tz")
        .cast(&DataType::Int64)
        .expect("cast");
    assert_eq!(
        tz.i64().expect("i64").get(0).map(|v| v.to_string()),
        Some(tz_micros)
    );
    let iv = df
        .column("iv")
        .expect("iv")
        .cast(&DataType::Int64)
        .expect("cast");
    let iv = iv.i64().expect("i64");
    assert_eq!(iv.get(0), Some(86_400_000_000 + 7_200_000_000 + 3_500_000));
    assert_eq!(iv.get(2), Some(-30 * 86_400_000_000), "a month is 30 days");
    let by = df.column("by").expect("by");
    assert_eq!(
        by.binary().expect("binary").get(0),
        Some([0u8, 255].as_slice())
    );
    let ai = df.column("ai").expect("ai");
    let first = ai.list().expect("list").get_as_series(0).expect("row 1");
    assert_eq!(
        (0..first.len())
            .map(|i| first.i32().expect("i32").get(i))
            .collect::<Vec<_>>(),
        vec![Some(1), None, Some(3)]
    );
    let empty = ai.list().expect("list").get_as_series(2).expect("row 3");
    assert_eq!(empty.len(), 0, "an empty array is an empty list, not null");
    let at = df.column("at").expect("at");
    let words = at.list().expect("list").get_as_series(0).expect("row 1");
    assert_eq!(
        (0..words.len())
            .map(|i| words.str().expect("str").get(i))
            .collect::<Vec<_>>(),
        vec![Some("x"), Some("y z")]
    );

    // A type with no mapping is an error that names the column and the type.
    let e = c
        .query("SELECT '10.0.0.1'::inet AS addr")
        .fetch()
        .expect_err("inet");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::UNSUPPORTED));
    assert!(
        e.to_string().contains("column \"addr\" has type inet")
            && e.to_string().contains("addr::text"),
        "{e}"
    );
    let e = c
        .query("SELECT ARRAY[[1,2],[3,4]] AS grid")
        .fetch()
        .expect_err("2-D array");
    assert!(e.to_string().contains("multi-dimensional"), "{e}");
}

#[test]
fn params_are_bound_by_the_server() {
    let p = project();
    let h = host(&p);
    let c = h.connection("chinook").expect("connect");
    let names = |df: DataFrame| -> Vec<String> {
        let col = df.column("name").expect("name").str().expect("str").clone();
        (0..col.len())
            .map(|i| col.get(i).unwrap_or_default().to_owned())
            .collect()
    };
    let named = c
        .query("SELECT name FROM artist WHERE artist_id = :id OR artist_id = :id + 1 ORDER BY 1")
        .param("id", 1)
        .fetch()
        .expect("named");
    assert_eq!(names(named), ["AC/DC", "Accept"]);
    let positional = c
        .query("SELECT name FROM artist WHERE artist_id = $1")
        .param("1", "2")
        .fetch()
        .expect("$1, given as text: the server parses it as int");
    assert_eq!(names(positional), ["Accept"]);
    let hostile = c
        .query("SELECT name FROM artist WHERE name = :n")
        .param("n", "x'; DROP TABLE artist; --")
        .fetch()
        .expect("a value, not SQL");
    assert_eq!(hostile.height(), 0);
    assert_eq!(
        pg::value(pg::chinook(), "SELECT count(*) FROM artist"),
        "275"
    );
    let like = c
        .query("SELECT count(*) AS n FROM track WHERE name LIKE :p AND unit_price > :price")
        .param("p", "%Love%")
        .param("price", 0.5)
        .fetch()
        .expect("like");
    assert_eq!(
        int(&like, "n").to_string(),
        pg::value(
            pg::chinook(),
            "SELECT count(*) FROM track WHERE name LIKE '%Love%' AND unit_price > 0.5"
        )
    );
    let limited = c
        .query("SELECT * FROM track ORDER BY track_id;")
        .limit(7)
        .fetch()
        .expect("limit");
    assert_eq!(limited.height(), 7);

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
    let e = c.query("SELECT :a::int").fetch().expect_err("missing");
    assert!(e.to_string().contains("missing parameter \"a\""), "{e}");
    let e = c.query("SELEC 1").fetch().expect_err("syntax");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::QUERY));
    assert_eq!(e.attempts(), Some(1), "a syntax error is not retried");
    assert!(
        e.to_string().contains("42601"),
        "the SQLSTATE is shown: {e}"
    );
}

#[test]
fn a_transaction_that_fails_halfway_leaves_nothing() {
    let p = project();
    let db = pg::scratch();
    pg::psql(
        db,
        &[
            "-c",
            "DROP TABLE IF EXISTS tx_t; CREATE TABLE tx_t (x int PRIMARY KEY)",
        ],
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
    assert!(e.to_string().contains("23505"), "{e}");
    assert_eq!(
        pg::value(db, "SELECT string_agg(x::text, ',' ORDER BY x) FROM tx_t"),
        "1,3,12",
        "the first statement of the failed transaction was rolled back"
    );
    let df = c
        .query("SELECT count(*) AS n FROM tx_t")
        .fetch()
        .expect("the connection is still usable");
    assert_eq!(int(&df, "n"), 3);
    c.ping().expect("ping, the health check");
}

#[test]
fn a_terminated_backend_is_reset_and_retried() {
    let p = project();
    let h = host(&p);
    let c = h.connection("chinook").expect("connect");
    let pid = |c: &plugboard::Connection| {
        let df = c
            .query("SELECT pg_backend_pid()::int8 AS pid")
            .ttl(Duration::ZERO)
            .fetch()
            .expect("pid");
        int(&df, "pid")
    };
    let first = pid(&c);
    let killed = pg::value("postgres", &format!("SELECT pg_terminate_backend({first})"));
    assert_eq!(killed, "t");
    let (second, log) = capture_logs(|| pid(&c));
    assert_ne!(second, first, "a new backend served the retry");
    let resets = log.matches("resetting the connection").count();
    assert_eq!(resets, 1, "one reset in the log:\n{log}");
    assert!(log.contains("57P01") || log.contains("closed"), "{log}");
}

/// On the private server (`pg::private`), whose `pg_hba.conf` asks this role for a password.
#[test]
fn wrong_password_is_an_auth_error_and_not_retried() {
    let server = pg::private();
    let (user, password) = server.password_role();
    let p = Project::new(
        &["plugboard_postgres"],
        &format!(
            "[connections.private]\nurl = \"{}\"\n",
            server.url("postgres")
        ),
    );
    let h = host(&p);
    let with = |pw: &str| {
        h.connection_with(
            "private",
            ConnectOptions::new()
                .set("username", user)
                .set("password", pw),
        )
    };
    let e = with("wrong").expect_err("wrong password");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::AUTH));
    assert_eq!(e.attempts(), Some(1));
    let text = e.to_string();
    assert!(
        text.contains("28P01") && text.contains("password authentication failed"),
        "{text}"
    );
    assert!(
        !text.contains("wrong"),
        "the password is not echoed: {text}"
    );
    let ok = with(password).expect("right password");
    let df = ok
        .query("SELECT current_user::text AS u")
        .fetch()
        .expect("read");
    assert_eq!(
        df.column("u").expect("u").str().expect("str").get(0),
        Some(user)
    );
}

#[test]
fn unreachable_hosts_fail_within_the_timeout() {
    let p = project();
    let h = host(&p);
    let started = Instant::now();
    let e = h
        .connection_with(
            "scratch",
            ConnectOptions::new()
                .set("host", "10.255.255.1")
                .set("connect_timeout", 1),
        )
        .expect_err("unreachable");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::CONNECT));
    assert_eq!(e.attempts(), Some(1), "connecting is not retried: {e}");
    assert!(e.to_string().contains("10.255.255.1"), "{e}");

    let started = Instant::now();
    let e = h
        .connection_with("scratch", ConnectOptions::new().set("port", 1))
        .expect_err("closed port");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
}

/// The password half runs on the private server (`pg::private`), which asks for one.
#[test]
fn libpq_environment_and_pgpass_fill_in() {
    let p = project();
    p.write(
        "secrets.toml",
        "[connections.bare]\ntype = \"postgresql\"\n\n[connections.pw]\ntype = \"postgresql\"\nhost = \"127.0.0.1\"\n",
    );
    let count = cli!(
        p,
        ["query", "bare", "SELECT count(*) AS n FROM album"],
        env = [
            "PGHOST" => "127.0.0.1",
            "PGPORT" => "5432",
            "PGUSER" => "postgres",
            "PGDATABASE" => pg::chinook(),
        ]
    )
    .ok();
    assert_eq!(count, "n\n347\n");

    // ~/.pgpass (HOME is the project folder) supplies the password, if only the owner can
    // read it.
    let server = pg::private();
    let (user, password) = server.password_role();
    let port = server.port().to_string();
    let pgpass = p.write(
        ".pgpass",
        &format!("127.0.0.1:{port}:*:{user}:{password}\n"),
    );
    let query = || {
        cli!(
            p,
            ["query", "pw", "SELECT current_user AS u"],
            env = ["PGPORT" => port.as_str(), "PGUSER" => user, "PGDATABASE" => "postgres"]
        )
    };
    set_mode(&pgpass, 0o644);
    let e = query().fails();
    assert!(
        e.contains("28P01") || e.contains("password"),
        "a readable .pgpass is ignored: {e}"
    );
    set_mode(&pgpass, 0o600);
    assert_eq!(query().ok(), format!("u\n{user}\n"));
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn tls_when_sslmode_asks_for_it() {
    let p = project();
    let h = host(&p);
    let ssl = |mode: &str| {
        let c = h
            .connection_with("scratch", ConnectOptions::new().set("sslmode", mode))
            .map_err(|e| e.to_string())?;
        let df = c
            .query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch()
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(df.column("ssl").expect("ssl").bool().expect("bool").get(0))
    };
    assert_eq!(ssl("require"), Ok(Some(true)));
    assert_eq!(ssl("disable"), Ok(Some(false)));
    let e = ssl("verify-full").expect_err("the server's certificate is self-signed");
    assert!(e.contains("certificate"), "{e}");
    let e = ssl("sometimes").expect_err("bad mode");
    assert!(e.contains("`sslmode`"), "{e}");
}

#[test]
fn errors_name_the_connection_and_keep_secrets_out() {
    let p = project();
    let h = host(&p);
    let e = h
        .connection_with(
            "scratch",
            ConnectOptions::new().set("database", "no_such_database_here"),
        )
        .expect_err("no database");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::CONFIG));
    assert!(
        e.to_string().contains("3D000") && e.to_string().contains("connection \"scratch\""),
        "{e}"
    );
    let e = h
        .connection_with(
            "scratch",
            ConnectOptions::new().set("url", "postgresql://u:s3cr3t-pw@127.0.0.1:1/x"),
        )
        .expect_err("bad");
    assert!(!e.to_string().contains("s3cr3t-pw"), "{e}");
    assert!(matches!(e, Error::Plugin { .. }));
}

#[test]
fn partitioned_reads_match_the_plain_read() {
    let p = project();
    let host = host(&p);
    let conn = host.connection("chinook").expect("connect");
    let sql = "SELECT track_id, name, milliseconds, unit_price FROM track";
    let plain = conn.query(sql).fetch().expect("plain");
    for parts in [2, 3, 16] {
        let got = conn
            .query(sql)
            .option("partition_on", "track_id")
            .option("partitions", parts)
            .fetch()
            .unwrap_or_else(|e| panic!("{parts} parts: {e}"));
        let got = got
            .sort(["track_id"], SortMultipleOptions::default())
            .expect("sort");
        let plain = plain
            .clone()
            .sort(["track_id"], SortMultipleOptions::default())
            .expect("sort");
        assert!(got.equals_missing(&plain), "{parts} parts differ");
    }
    let err = conn
        .query(sql)
        .option("partition_on", "name")
        .option("partitions", 2)
        .fetch()
        .expect_err("text")
        .to_string();
    assert!(err.contains("not an integer"), "{err}");
}

#[test]
fn a_streamed_read_comes_in_batches_and_an_error_midway_ends_it() {
    let p = project();
    let host = host(&p);
    let conn = host.connection("chinook").expect("connect");
    let sql = "SELECT g AS id, g * 0.5 AS half, 'row ' || g AS label FROM generate_series(1, 150000) AS g";
    let stream = conn.query(sql).stream().expect("stream");
    let frames: Vec<DataFrame> = stream.collect::<Result<_, _>>().expect("batches");
    assert_eq!(
        frames.iter().map(DataFrame::height).collect::<Vec<_>>(),
        [65_536, 65_536, 18_928]
    );
    let mut streamed = frames[0].clone();
    for f in &frames[1..] {
        streamed.vstack_mut(f).expect("vstack");
    }
    let fetched = conn.query(sql).fetch().expect("fetch");
    assert!(streamed.equals_missing(&fetched));

    // The server fails at row 100,000, after the first batch went out.
    let failing = "SELECT g, 1 / (100000 - g) AS x FROM generate_series(1, 150000) AS g";
    let mut stream = conn
        .query(failing)
        .stream()
        .expect("the first batch is fine");
    assert_eq!(
        stream.next().expect("a batch").expect("ok").height(),
        65_536
    );
    let err = stream
        .next()
        .expect("then the error")
        .expect_err("division by zero")
        .to_string();
    assert!(
        err.contains(r#"connection "chinook" (plugin postgres): query error"#)
            && err.contains("division by zero"),
        "{err}"
    );
    assert!(stream.next().is_none(), "nothing after the error");
    assert_eq!(
        int(
            &conn.query("SELECT 7::bigint AS n").fetch().expect("after"),
            "n"
        ),
        7,
        "the connection still works"
    );
}

//! Schema discovery (plugboard-api 1.6): `Connection::tables`/`describe` and `plugboard
//! tables`/`describe`, through every connector of this repository, for real: SQLite's
//! Chinook file, the machine's PostgreSQL and MariaDB, DuckDB in memory, a folder of files,
//! and a plugin in a worker process.

use plugboard::{ConnectOptions, Host};
use plugboard_tests::{Project, chinook, cli, lib, my, pg};
use polars::prelude::*;

/// The rows of a table list as `schema.name kind` (or `name kind`).
fn listed(df: &DataFrame) -> Vec<String> {
    let text = |c: &str| -> Vec<Option<String>> {
        df.column(c)
            .unwrap_or_else(|e| panic!("no column {c}: {e}"))
            .str()
            .expect("text")
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    };
    let (schemas, names, kinds) = (text("schema"), text("name"), text("kind"));
    schemas
        .into_iter()
        .zip(names)
        .zip(kinds)
        .map(|((s, n), k)| {
            let n = n.expect("a name");
            let k = k.expect("a kind");
            match s {
                Some(s) => format!("{s}.{n} {k}"),
                None => format!("{n} {k}"),
            }
        })
        .collect()
}

/// A description as `column type nullable native` lines.
fn described(df: &DataFrame) -> Vec<String> {
    assert_eq!(
        df.get_column_names()
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["column", "type", "nullable", "native_type"]
    );
    (0..df.height())
        .map(|i| {
            df.columns()
                .iter()
                .map(|c| match c.get(i).expect("cell") {
                    AnyValue::Null => "-".to_owned(),
                    AnyValue::String(s) => s.to_owned(),
                    AnyValue::StringOwned(s) => s.to_string(),
                    v => v.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn sqlite_project() -> Project {
    let p = Project::new(&["plugboard_sqlite", "fixture_echo"], "");
    p.write(
        "secrets.toml",
        &format!(
            "[connections.chinook]\ntype = \"sql\"\nurl = \"sqlite:///{}?mode=ro\"\n\n\
             [connections.pets]\ntype = \"sqlite\"\ndatabase = {:?}\n\n\
             [connections.echo]\ntype = \"echo\"\ntoken = \"tok\"\nhost = \"file\"\n",
            chinook().display(),
            p.path("pets.db").display().to_string()
        ),
    );
    p
}

#[test]
fn sqlite_lists_chinook_and_describes_a_table_with_its_declared_types() {
    let p = sqlite_project();
    let host = p.host();
    let c = host.connection("chinook").expect("connect");
    let tables = listed(&c.tables().fetch().expect("tables"));
    assert_eq!(
        tables,
        [
            "Album table",
            "Artist table",
            "Customer table",
            "Employee table",
            "Genre table",
            "Invoice table",
            "InvoiceLine table",
            "MediaType table",
            "Playlist table",
            "PlaylistTrack table",
            "Track table"
        ]
    );
    let album = described(&c.describe("Album").fetch().expect("describe"));
    assert_eq!(
        album,
        [
            "AlbumId Int64 false INTEGER",
            "Title Utf8View false NVARCHAR(160)",
            "ArtistId Int64 false INTEGER"
        ]
    );
    // The types are the ones a read gives.
    let read = c.query("SELECT * FROM Album").fetch().expect("read");
    assert_eq!(read.dtypes()[0], DataType::Int64);
    assert_eq!(read.dtypes()[1], DataType::String);
    // Case is SQLite's: ignored.
    assert_eq!(
        described(&c.describe("album").fetch().expect("describe"))[0],
        "AlbumId Int64 false INTEGER"
    );
    let e = c.describe("Albun").fetch().expect_err("no such table");
    assert_eq!(e.plugin_kind(), Some(plugboard_api::ErrorKind::QUERY));
    assert!(
        e.to_string().contains("no table or view named \"Albun\""),
        "{e}"
    );
}

#[test]
fn sqlite_views_attached_databases_and_writes_that_change_the_list() {
    let p = sqlite_project();
    let host = p.host();
    let pets = host.connection("pets").expect("connect");
    assert!(listed(&pets.tables().fetch().expect("tables")).is_empty());
    pets.execute("CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT NOT NULL, pet)")
        .statement("CREATE VIEW names AS SELECT name FROM owners")
        .run()
        .expect("create");
    // The list was cached (no TTL: until a write); the write through this connection
    // invalidated it.
    assert_eq!(
        listed(&pets.tables().fetch().expect("tables")),
        ["names view", "owners table"]
    );
    assert_eq!(
        described(&pets.describe("owners").fetch().expect("describe")),
        [
            "id Int64 false INTEGER",
            "name Utf8View false TEXT",
            "pet Null true -"
        ]
    );
    // `main.` and quoting as SQL writes them.
    assert_eq!(
        described(&pets.describe("main.\"owners\"").fetch().expect("describe")).len(),
        3
    );
    let (_, outcome) = pets.tables().fetch_shared().expect("tables");
    assert_eq!(outcome, plugboard::Outcome::MemoryHit);
}

#[test]
fn the_cli_lists_filters_and_describes_and_suggests_a_close_name() {
    let p = sqlite_project();
    let out = cli!(p, ["tables", "chinook", "in*", "-m", "csv"]).ok();
    assert_eq!(
        out,
        "schema,name,kind\n,Invoice,table\n,InvoiceLine,table\n"
    );
    let out = cli!(p, ["tables", "chinook", "*TRACK", "-m", "csv"]).ok();
    assert_eq!(
        out,
        "schema,name,kind\n,PlaylistTrack,table\n,Track,table\n"
    );
    let out = cli!(p, ["tables", "chinook", "nothing*", "-m", "csv"]).ok();
    assert_eq!(out, "schema,name,kind\n");

    let out = cli!(p, ["describe", "chinook", "Track", "-m", "csv"]).ok();
    assert!(
        out.starts_with("column,type,nullable,native_type\nTrackId,Int64,false,INTEGER\n"),
        "{out}"
    );
    assert!(out.contains("Milliseconds,Int64,false,INTEGER\n"), "{out}");
    let table = cli!(p, ["describe", "chinook", "Track", "--max-width", "80"]).ok();
    assert!(table.contains("│ Composer "), "{table}");

    let err = cli!(p, ["describe", "chinook", "Trak"]).fails_with(4);
    assert_eq!(
        err,
        "error: connection \"chinook\" (plugin sqlite): query error: no table or view named \
         \"Trak\"; did you mean \"Track\"?"
    );
    let err = cli!(p, ["describe", "chinook", "Zebra"]).fails_with(4);
    assert!(!err.contains("did you mean"), "{err}");
    let err = cli!(p, ["tables", "nope"]).fails_with(3);
    assert!(err.contains("unknown connection \"nope\""), "{err}");
}

#[test]
fn a_plugin_without_the_capability_says_so_in_one_line() {
    let p = sqlite_project();
    // fixture_echo is built against today's plugboard-api but implements neither method:
    // the SDK's defaults answer.
    let err = cli!(p, ["tables", "echo"]).fails_with(4);
    assert_eq!(
        err,
        "error: connection \"echo\" (plugin echo): unsupported error: this connector cannot \
         list its tables"
    );
    let err = cli!(p, ["describe", "echo", "t"]).fails_with(4);
    assert!(
        err.ends_with("this connector cannot describe a table"),
        "{err}"
    );
}

#[test]
fn postgres_lists_schemas_and_describes_through_the_search_path() {
    let db = pg::scratch();
    pg::psql(
        db,
        &[
            "-c",
            "DROP SCHEMA IF EXISTS cat_s CASCADE; CREATE SCHEMA cat_s; \
             CREATE TABLE cat_s.\"Mixed Case\" (id bigint PRIMARY KEY, note varchar(20), \
             price numeric(10,2) NOT NULL, at timestamptz); \
             CREATE VIEW cat_s.v AS SELECT id FROM cat_s.\"Mixed Case\"; \
             CREATE MATERIALIZED VIEW cat_s.mv AS SELECT 1 AS one;",
        ],
    );
    let p = Project::new(
        &["plugboard_postgres"],
        &format!(
            "[connections.pg]\nurl = \"{}\"\n\n[connections.chinook]\nurl = \"{}\"\n",
            pg::url(db),
            pg::url(pg::chinook())
        ),
    );
    let host = p.host();
    let c = host.connection("pg").expect("connect");
    let tables = listed(&c.tables().fetch().expect("tables"));
    for t in [
        "cat_s.Mixed Case table",
        "cat_s.v view",
        "cat_s.mv materialized view",
    ] {
        assert!(tables.contains(&t.to_owned()), "{t} not in {tables:?}");
    }
    assert!(
        !tables.iter().any(|t| t.starts_with("pg_catalog.")),
        "{tables:?}"
    );
    let d = described(
        &c.describe("cat_s.\"Mixed Case\"")
            .fetch()
            .expect("describe"),
    );
    assert_eq!(d[0], "id Int64 false bigint");
    assert_eq!(d[1], "note Utf8View true character varying(20)");
    assert!(
        d[2].starts_with("price Decimal128(") && d[2].ends_with(" false numeric(10,2)"),
        "{d:?}"
    );
    assert_eq!(
        d[3],
        "at Timestamp(µs, \"UTC\") true timestamp with time zone"
    );
    let e = c.describe("cat_s.nope").fetch().expect_err("missing");
    assert!(
        e.to_string()
            .contains("no table or view named \"cat_s.nope\""),
        "{e}"
    );

    // Chinook's tables, in `public`, found by a bare name.
    let chinook = host.connection("chinook").expect("connect");
    let d = described(&chinook.describe("artist").fetch().expect("describe"));
    assert_eq!(d[0].split(' ').next(), Some("artist_id"), "{d:?}");
    let out = cli!(p, ["tables", "chinook", "public.al*", "-m", "csv"]).ok();
    assert_eq!(out, "schema,name,kind\npublic,album,table\n");
}

#[test]
fn mysql_lists_databases_tables_and_describes_column_types() {
    let db = my::scratch();
    my::exec(
        db,
        "DROP TABLE IF EXISTS cat_t; DROP VIEW IF EXISTS cat_v; \
         CREATE TABLE cat_t (id INT UNSIGNED NOT NULL PRIMARY KEY, name VARCHAR(40), \
         amount DECIMAL(8,2) NOT NULL); CREATE VIEW cat_v AS SELECT id FROM cat_t;",
    );
    let p = Project::new(
        &["plugboard_mysql"],
        &format!("[connections.m]\nurl = \"{}\"\n", my::url(db)),
    );
    let host = p.host();
    let c = host.connection("m").expect("connect");
    let tables = listed(&c.tables().fetch().expect("tables"));
    assert!(tables.contains(&format!("{db}.cat_t table")), "{tables:?}");
    assert!(tables.contains(&format!("{db}.cat_v view")), "{tables:?}");
    assert!(
        !tables.iter().any(|t| t.starts_with("mysql.")),
        "{tables:?}"
    );
    let d = described(&c.describe("cat_t").fetch().expect("describe"));
    assert_eq!(
        d,
        [
            "id UInt32 false int(10) unsigned",
            "name Utf8View true varchar(40)",
            "amount Decimal128(8, 2) false decimal(8,2)"
        ]
    );
    assert_eq!(
        described(
            &c.describe(format!("`{db}`.cat_t"))
                .fetch()
                .expect("describe")
        )
        .len(),
        3
    );
    let e = c.describe("cat_nope").fetch().expect_err("missing");
    assert!(e.to_string().contains("no table or view named"), "{e}");
}

#[test]
fn duckdb_lists_and_describes_with_the_types_a_read_gives() {
    let p = Project::new(&["plugboard_duckdb"], "");
    let host = p.host();
    let c = host
        .connection_with(
            "d",
            ConnectOptions::new()
                .kind("duckdb")
                .set("database", ":memory:"),
        )
        .expect("connect");
    c.execute("CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR, seen TIMESTAMP)")
        .statement("CREATE SCHEMA s")
        .statement("CREATE VIEW s.v AS SELECT id FROM t")
        .run()
        .expect("create");
    assert_eq!(
        listed(&c.tables().fetch().expect("tables")),
        ["t table", "s.v view"]
    );
    let d = described(&c.describe("T").fetch().expect("describe"));
    let read = c.query("SELECT * FROM t").fetch().expect("read");
    assert_eq!(
        read.dtypes()[2],
        DataType::Datetime(TimeUnit::Microseconds, None)
    );
    assert_eq!(d[0], "id Int64 false BIGINT");
    assert!(
        d[1].starts_with("name Utf8") && d[1].ends_with(" true VARCHAR"),
        "{d:?}"
    );
    assert_eq!(d[2], "seen Timestamp(µs) true TIMESTAMP");
    assert_eq!(
        described(&c.describe("s.v").fetch().expect("view")),
        ["id Int64 true BIGINT"]
    );
    // A name is quoted, never spliced: this is one strange name, not two statements.
    let e = c
        .describe("t; DROP TABLE t")
        .fetch()
        .expect_err("no such table");
    assert!(e.to_string().contains("no table or view named"), "{e}");
    assert_eq!(
        c.query("SELECT count(*) AS n FROM t")
            .fetch()
            .expect("still there")
            .height(),
        1
    );
}

#[test]
fn files_lists_the_readable_files_under_the_root_and_describes_one() {
    let p = Project::new(&["plugboard_files"], "");
    let root = p.path("lake");
    std::fs::create_dir_all(root.join("2024")).expect("mkdir");
    std::fs::write(root.join("trips.csv"), "id,city,km\n1,Oslo,2.5\n2,Rome,\n").expect("csv");
    std::fs::write(root.join("2024/a.ndjson"), "{\"x\": 1}\n").expect("ndjson");
    std::fs::write(root.join("README"), "not data").expect("readme");
    std::fs::write(root.join(".hidden.csv"), "a\n1\n").expect("hidden");
    p.write(
        "secrets.toml",
        &format!(
            "[connections.lake]\ntype = \"files\"\nroot = {:?}\n\n\
             [connections.empty]\ntype = \"files\"\nroot = {:?}\n",
            root.display().to_string(),
            {
                let e = p.path("empty");
                std::fs::create_dir_all(&e).expect("mkdir");
                e.display().to_string()
            }
        ),
    );
    let host = p.host();
    let c = host.connection("lake").expect("connect");
    assert_eq!(
        listed(&c.tables().fetch().expect("tables")),
        ["2024/a.ndjson file", "trips.csv file"]
    );
    assert_eq!(
        described(&c.describe("trips.csv").fetch().expect("describe")),
        [
            "id Int64 true -",
            "city Utf8View true -",
            "km Float64 true -"
        ]
    );
    let e = c.describe("trip.csv").fetch().expect_err("missing");
    assert!(e.to_string().contains("trip.csv: file not found"), "{e}");
    let err = cli!(p, ["describe", "lake", "trip.csv"]).fails_with(4);
    assert!(err.ends_with("did you mean \"trips.csv\"?"), "{err}");
    let empty = host.connection("empty").expect("connect");
    assert!(listed(&empty.tables().fetch().expect("tables")).is_empty());
}

#[test]
fn discovery_works_through_a_plugin_in_a_worker_process() {
    let p = Project::new(
        &[],
        &format!(
            "[connections.chinook]\ntype = \"sql\"\nurl = \"sqlite:///{}?mode=ro\"\n",
            chinook().display()
        ),
    );
    p.write(
        "plugins.toml",
        &format!(
            "[[plugin]]\npath = {:?}\nisolation = \"process\"\n",
            lib("plugboard_sqlite").display().to_string()
        ),
    );
    // The worker program is named: a clean build has no `target/debug/plugboard`.
    let host: Host = p
        .builder()
        .worker_program(env!("CARGO_BIN_EXE_plugboard-under-test"))
        .build()
        .expect("host");
    let c = host.connection("chinook").expect("connect");
    assert_eq!(listed(&c.tables().fetch().expect("tables")).len(), 11);
    assert_eq!(
        described(&c.describe("Genre").fetch().expect("describe")),
        [
            "GenreId Int64 false INTEGER",
            "Name Utf8View true NVARCHAR(120)"
        ]
    );
}

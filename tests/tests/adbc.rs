//! The ADBC connector through the real `.so` and the CLI, with the drivers published on
//! PyPI: SQLite and PostgreSQL compared frame by frame with plugboard's own connectors on
//! Chinook; drivers found by path, manifest and Python environment; the Snowflake,
//! BigQuery and Flight SQL drivers given Streamlit-style sections and failing to connect
//! clearly; and no secret in any output, the drivers' own messages included.
//!
//! Every address used is on this machine: the Go drivers are pointed at closed local ports.
//! The drivers come from the Python environment `$PLUGBOARD_ADBC_PYTHON`, else
//! `<target dir>/adbc-venv`, which `.ci/run` makes:
//! `python3 -m venv target/adbc-venv && target/adbc-venv/bin/pip install adbc-driver-sqlite==1.13.0 …`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use plugboard::Host;
use plugboard_api::ErrorKind;
use plugboard_tests::{Project, cli, deps_dir, lib, pg};
use polars::prelude::*;

/// The Python environment with the ADBC driver wheels.
fn venv() -> PathBuf {
    if let Some(p) = std::env::var_os("PLUGBOARD_ADBC_PYTHON") {
        return p.into();
    }
    let venv = deps_dir().join("../../adbc-venv");
    assert!(
        venv.join("bin/python").exists(),
        "the ADBC drivers are missing: make {0} as .ci/run does (python3 -m venv {0} && \
         {0}/bin/pip install adbc-driver-sqlite adbc-driver-postgresql …), or set PLUGBOARD_ADBC_PYTHON",
        venv.display()
    );
    venv.canonicalize().expect("canonical venv")
}

/// The library the pip package `adbc-driver-NAME` ships.
fn driver_lib(name: &str) -> PathBuf {
    let site = std::fs::read_dir(venv().join("lib"))
        .expect("lib/")
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("site-packages");
    let lib = site.join(format!("adbc_driver_{name}/libadbc_driver_{name}.so"));
    assert!(lib.exists(), "{} is missing", lib.display());
    lib
}

/// The Snowflake driver probes the cloud metadata servers (169.254.169.254, and
/// `metadata.google.internal` through DNS) at login to report its platform; this
/// environment variable, the driver's own, turns that off, so that the tests reach
/// nothing beyond this machine.
const NO_PROBES: (&str, &str) = ("SNOWFLAKE_DISABLE_PLATFORM_DETECTION", "true");

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn python() -> String {
    venv().display().to_string()
}

/// A project with the native SQLite and PostgreSQL connectors beside the ADBC one, each
/// reading Chinook.
fn chinook_project() -> Project {
    let chinook = plugboard_tests::chinook();
    let pg_db = pg::chinook();
    Project::new(
        &["plugboard_adbc", "plugboard_sqlite", "plugboard_postgres"],
        &format!(
            "[connections.native_sqlite]\ntype = \"sqlite\"\ndatabase = {chinook:?}\n\n\
             [connections.adbc_sqlite]\ntype = \"adbc\"\ndriver = \"sqlite\"\npython = {py:?}\n\
             uri = \"file:{chinook}?mode=ro\"\n\n\
             [connections.native_pg]\nurl = \"{pg_url}\"\n\n\
             [connections.adbc_pg]\ntype = \"adbc\"\ndriver = \"postgresql\"\npython = {py:?}\n\
             uri = \"{pg_url}\"\n",
            chinook = chinook.display().to_string(),
            py = python(),
            pg_url = pg::url(pg_db),
        ),
    )
}

fn host(p: &Project) -> Host {
    p.builder().build().expect("host")
}

fn fetch(h: &Host, conn: &str, sql: &str) -> DataFrame {
    h.connection(conn)
        .unwrap_or_else(|e| panic!("connect {conn}: {e}"))
        .query(sql)
        .fetch()
        .unwrap_or_else(|e| panic!("{conn}: {sql}: {e}"))
}

/// Asserts two frames are equal, column by column, naming the first difference.
fn assert_same(what: &str, native: &DataFrame, adbc: &DataFrame) {
    assert_eq!(native.shape(), adbc.shape(), "{what}: shape");
    for (n, a) in native.columns().iter().zip(adbc.columns()) {
        assert_eq!(n.name(), a.name(), "{what}: column names");
        assert_eq!(n.dtype(), a.dtype(), "{what}: type of {}", n.name());
        assert_eq!(
            n.null_count(),
            a.null_count(),
            "{what}: NULLs in {}",
            n.name()
        );
        assert!(
            n.as_materialized_series()
                .equals_missing(a.as_materialized_series()),
            "{what}: values of {}:\nnative {:?}\nadbc {:?}",
            n.name(),
            n.as_materialized_series(),
            a.as_materialized_series()
        );
    }
}

// ---------------------------------------------------------------------------------------
// SQLite and PostgreSQL: the same frames as the native connectors

#[test]
fn chinook_through_the_sqlite_driver_is_the_native_frame() {
    let p = chinook_project();
    let h = host(&p);
    for sql in [
        "SELECT ArtistId, Name FROM Artist ORDER BY ArtistId",
        // Composer has NULLs; Milliseconds and Bytes are integers; UnitPrice a real.
        "SELECT TrackId, Name, Composer, Milliseconds, Bytes FROM Track ORDER BY TrackId",
        "SELECT CustomerId, Company, Fax, SupportRepId FROM Customer ORDER BY CustomerId",
        "SELECT BillingCountry, COUNT(*) AS n, SUM(Total) AS total FROM Invoice GROUP BY 1 ORDER BY 1",
    ] {
        assert_same(
            sql,
            &fetch(&h, "native_sqlite", sql),
            &fetch(&h, "adbc_sqlite", sql),
        );
    }
    // An empty result keeps its columns.
    let empty = fetch(
        &h,
        "adbc_sqlite",
        "SELECT ArtistId, Name FROM Artist WHERE 0",
    );
    assert_eq!(empty.height(), 0);
    assert_eq!(empty.get_column_names(), ["ArtistId", "Name"]);
}

#[test]
fn chinook_through_the_postgresql_driver_is_the_native_frame() {
    let p = chinook_project();
    let h = host(&p);
    for sql in [
        "SELECT artist_id, name FROM artist ORDER BY artist_id",
        "SELECT track_id, name, composer, milliseconds, bytes FROM track ORDER BY track_id",
        "SELECT customer_id, company, fax, support_rep_id FROM customer ORDER BY customer_id",
        "SELECT invoice_id, invoice_date FROM invoice ORDER BY invoice_id",
        "SELECT billing_country, count(*) AS n FROM invoice GROUP BY 1 ORDER BY 1",
    ] {
        assert_same(
            sql,
            &fetch(&h, "native_pg", sql),
            &fetch(&h, "adbc_pg", sql),
        );
    }
    let empty = fetch(
        &h,
        "adbc_pg",
        "SELECT artist_id, name FROM artist WHERE false",
    );
    assert_eq!(empty.height(), 0);
    assert_eq!(empty.get_column_names(), ["artist_id", "name"]);
}

#[test]
fn parameters_are_bound_by_the_driver_and_limit_stops_the_read() {
    let p = chinook_project();
    let h = host(&p);
    let names = |df: &DataFrame| -> Vec<String> {
        let col = df
            .column(df.get_column_names()[0].as_str())
            .expect("col")
            .str()
            .expect("str")
            .clone();
        (0..col.len())
            .map(|i| col.get(i).unwrap_or_default().to_owned())
            .collect()
    };
    let sqlite = h.connection("adbc_sqlite").expect("connect");
    let named = sqlite
        .query("SELECT Name FROM Artist WHERE ArtistId = :id OR ArtistId = :id + :step ORDER BY 1")
        .param("step", 1)
        .param("id", 1)
        .fetch()
        .expect("named");
    assert_eq!(names(&named), ["AC/DC", "Accept"]);
    let positional = sqlite
        .query("SELECT Name FROM Artist WHERE ArtistId IN (?, ?) ORDER BY 1")
        .param("1", 2)
        .param("2", 3)
        .fetch()
        .expect("positional");
    assert_eq!(names(&positional), ["Accept", "Aerosmith"]);
    let hostile = sqlite
        .query("SELECT Name FROM Artist WHERE Name = :n")
        .param("n", plugboard_api::conformance::HOSTILE)
        .fetch()
        .expect("a value, not SQL");
    assert_eq!(hostile.height(), 0);
    let e = sqlite
        .query("SELECT :a")
        .param("b", 1)
        .fetch()
        .expect_err("unknown");
    assert!(e.to_string().contains("unknown parameter \"b\""), "{e}");

    let pg = h.connection("adbc_pg").expect("connect");
    let by_number = pg
        .query("SELECT name FROM artist WHERE artist_id = $1 OR name = $2 ORDER BY 1")
        .param("1", 1)
        .param("2", "Aerosmith")
        .fetch()
        .expect("$1, $2");
    assert_eq!(names(&by_number), ["AC/DC", "Aerosmith"]);
    let limited = pg
        .query("SELECT * FROM track ORDER BY track_id")
        .limit(7)
        .fetch()
        .expect("limit");
    assert_eq!(limited.height(), 7);
    let e = pg
        .query("SELECT * FROM no_such_table")
        .fetch()
        .expect_err("no table");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::QUERY));
    assert!(
        e.to_string().contains("SQLSTATE 42P01"),
        "the driver's SQLSTATE is kept: {e}"
    );
    assert_eq!(e.attempts(), Some(1), "a query error is not retried");

    // The CLI: parameters, a limit, and an export.
    let out = cli!(
        p,
        [
            "query",
            "adbc_sqlite",
            "SELECT Name FROM Artist WHERE ArtistId = :id",
            "-p",
            "id=3",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out, "Name\nAerosmith\n");
    let out = cli!(
        p,
        [
            "query",
            "adbc_pg",
            "SELECT track_id FROM track ORDER BY 1",
            "--limit",
            "3",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out, "track_id\n1\n2\n3\n");
    cli!(
        p,
        [
            "query",
            "adbc_pg",
            "SELECT * FROM track",
            "--output",
            "tracks.parquet"
        ]
    )
    .ok();
    let back = fetch(&h, "native_sqlite", "SELECT COUNT(*) AS n FROM Track");
    let exported =
        ParquetReader::new(std::fs::File::open(p.path("tracks.parquet")).expect("parquet"))
            .finish()
            .expect("read parquet");
    assert_eq!(exported.height() as i64, plugboard_tests::int(&back, "n"));
}

#[test]
fn writes_are_one_transaction_rolled_back_on_error() {
    let db = pg::scratch();
    pg::psql(
        db,
        &[
            "-c",
            "DROP TABLE IF EXISTS adbc_tx; CREATE TABLE adbc_tx (x int PRIMARY KEY)",
        ],
    );
    let p = Project::new(
        &["plugboard_adbc"],
        &format!(
            "[connections.w]\ntype = \"adbc\"\ndriver = \"postgresql\"\npython = {:?}\nuri = \"{}\"\n\n\
             [connections.lite]\ntype = \"adbc\"\ndriver = \"sqlite\"\npython = {:?}\nuri = \"lite.db\"\n",
            python(),
            pg::url(db),
            python()
        ),
    );
    let h = host(&p);
    let w = h.connection("w").expect("connect");
    let n = w
        .execute("INSERT INTO adbc_tx VALUES ($1), ($2)")
        .param("1", 1)
        .param("2", 2)
        .run()
        .expect("insert");
    assert_eq!(n, 2);
    let e = w
        .execute("INSERT INTO adbc_tx VALUES (100)")
        .statement("INSERT INTO adbc_tx VALUES (1)")
        .run()
        .expect_err("a duplicate key");
    assert!(
        e.to_string().contains("statement 2") && e.to_string().contains("SQLSTATE 23505"),
        "{e}"
    );
    assert_eq!(
        pg::value(
            db,
            "SELECT string_agg(x::text, ',' ORDER BY x) FROM adbc_tx"
        ),
        "1,2",
        "rolled back"
    );
    let df = w
        .query("SELECT count(*) AS n FROM adbc_tx")
        .fetch()
        .expect("still usable");
    assert_eq!(
        df.column("n")
            .expect("n")
            .get(0)
            .expect("v")
            .try_extract::<i64>()
            .expect("int"),
        2
    );

    // SQLite through ADBC: a relative file is the working directory's; the same rules.
    cli!(
        p,
        ["exec", "lite", "CREATE TABLE t (x INTEGER PRIMARY KEY)"]
    )
    .ok();
    assert!(p.path("lite.db").exists());
    let e = cli!(
        p,
        [
            "exec",
            "lite",
            "INSERT INTO t VALUES (1)",
            "INSERT INTO t VALUES (1)"
        ]
    )
    .fails();
    assert!(e.contains("statement 2"), "{e}");
    let out = cli!(
        p,
        [
            "query",
            "lite",
            "SELECT count(*) AS n FROM t",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out, "n\n0\n", "the first insert was rolled back");
}

// ---------------------------------------------------------------------------------------
// Finding drivers

#[test]
fn drivers_are_found_by_path_manifest_and_python_environment() {
    let chinook = plugboard_tests::chinook().display().to_string();
    let sqlite = driver_lib("sqlite").display().to_string();
    let p = Project::new(&["plugboard_adbc"], "");
    std::fs::create_dir(p.path("drivers")).expect("mkdir");
    p.write(
        "drivers/lite.toml",
        &format!("name = \"SQLite, by manifest\"\n\n[Driver]\nshared = {sqlite:?}\n"),
    );
    p.write(
        "secrets.toml",
        &format!(
            "[connections.by_path]\ntype = \"adbc\"\ndriver = {sqlite:?}\nuri = {chinook:?}\n\n\
             [connections.by_manifest_file]\ntype = \"adbc\"\ndriver = {manifest:?}\nuri = {chinook:?}\n\n\
             [connections.by_manifest_name]\ntype = \"adbc\"\ndriver = \"lite\"\nuri = {chinook:?}\n\n\
             [connections.by_virtualenv]\ntype = \"adbc\"\ndriver = \"adbc_driver_sqlite\"\nuri = {chinook:?}\n\n\
             [connections.by_interpreter]\ntype = \"adbc\"\ndriver = \"sqlite\"\npython = {interp:?}\nuri = {chinook:?}\n\n\
             [connections.by_profile]\ntype = \"adbc\"\nuri = \"profile://chinook\"\n",
            manifest = p.path("drivers/lite.toml").display().to_string(),
            interp = venv().join("bin/python").display().to_string(),
        ),
    );
    // An ADBC connection profile names the driver and its options.
    std::fs::create_dir(p.path("profiles")).expect("mkdir");
    p.write(
        "profiles/chinook.toml",
        &format!("profile_version = 1\ndriver = {sqlite:?}\n\n[Options]\nuri = {chinook:?}\n"),
    );
    let sql = "SELECT COUNT(*) AS n FROM Artist";
    let drivers = p.path("drivers").display().to_string();
    let profiles = p.path("profiles").display().to_string();
    let v = venv().display().to_string();
    for (conn, env) in [
        ("by_path", vec![]),
        ("by_manifest_file", vec![]),
        (
            "by_manifest_name",
            vec![("ADBC_DRIVER_PATH", drivers.as_str())],
        ),
        ("by_virtualenv", vec![("VIRTUAL_ENV", v.as_str())]),
        ("by_interpreter", vec![]),
        ("by_profile", vec![("ADBC_PROFILE_PATH", profiles.as_str())]),
    ] {
        let out = p
            .cli(
                env!("CARGO_BIN_EXE_plugboard-under-test"),
                &["query", conn, sql, "--format", "csv"],
                &env,
            )
            .ok();
        assert_eq!(out, "n\n275\n", "{conn}");
    }
    // Without ADBC_DRIVER_PATH the manifest's name is not found, and the error says where
    // it looked and how to install a driver.
    let e = cli!(p, ["query", "by_manifest_name", sql]).fails();
    assert!(
        e.contains("\"lite\" is not installed") && e.contains("pip install adbc-driver-lite"),
        "{e}"
    );
    assert!(
        e.contains("ADBC_DRIVER_PATH") && e.contains("/etc/adbc/drivers"),
        "{e}"
    );
}

#[test]
fn a_bad_driver_is_one_clear_line_and_the_host_keeps_working() {
    let not_a_driver = lib("fixture_not_a_plugin").display().to_string();
    let sqlite = driver_lib("sqlite").display().to_string();
    let p = Project::new(
        &["plugboard_adbc"],
        &format!(
            "[connections.wrong_path]\ntype = \"adbc\"\ndriver = \"/no/such/libadbc_driver_x.so\"\n\n\
             [connections.not_a_driver]\ntype = \"adbc\"\ndriver = {not_a_driver:?}\n\n\
             [connections.wrong_entrypoint]\ntype = \"adbc\"\ndriver = {sqlite:?}\nentrypoint = \"AdbcNoSuchInit\"\n\n\
             [connections.not_installed]\ntype = \"snowflake\"\naccount = \"a\"\npython = {py:?}\n\n\
             [connections.good]\ntype = \"adbc\"\ndriver = {sqlite:?}\nuri = \":memory:\"\n",
            py = p_empty_env(),
        ),
    );
    for (conn, want) in [
        ("wrong_path", "/no/such/libadbc_driver_x.so does not exist"),
        ("not_a_driver", "is not an ADBC driver: it exports neither"),
        ("wrong_entrypoint", "has no function AdbcNoSuchInit"),
        ("not_installed", "pip install adbc-driver-snowflake"),
    ] {
        let e = cli!(p, ["query", conn, "SELECT 1"]).fails();
        assert!(e.contains(want) && e.contains(conn), "{conn}: {e}");
    }
    // In one process: after every failure, a good driver still serves.
    let h = host(&p);
    for conn in [
        "wrong_path",
        "not_a_driver",
        "wrong_entrypoint",
        "not_installed",
    ] {
        let e = h.connection(conn).expect_err("fails");
        assert_eq!(e.plugin_kind(), Some(ErrorKind::CONFIG), "{conn}: {e}");
    }
    let df = fetch(&h, "good", "SELECT 41 + 1 AS x");
    assert_eq!(plugboard_tests::int(&df, "x"), 42);
}

/// A Python environment with no drivers in it.
fn p_empty_env() -> String {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("lib/python3.11/site-packages")).expect("mkdir");
        d
    });
    dir.path().display().to_string()
}

// ---------------------------------------------------------------------------------------
// Snowflake, BigQuery, Flight SQL: Streamlit's sections, no network

#[test]
fn snowflake_sections_connect_as_mapped_and_fail_naming_the_account() {
    let port = closed_port();
    let p = Project::new(
        &["plugboard_adbc"],
        &format!(
            // A section named `snowflake` is a SnowflakeConnection, as Streamlit infers it.
            "[connections.snowflake]\naccount = \"acme-xy12345\"\nuser = \"analyst\"\n\
             password = \"hunter2-snow\"\nwarehouse = \"COMPUTE_WH\"\nrole = \"ANALYST\"\n\
             database = \"SALES\"\nschema = \"PUBLIC\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             protocol = \"http\"\nlogin_timeout = 3\npython = {py:?}\n\n\
             [connections.sf_typed]\ntype = \"snowflake\"\naccount = \"typed-acct\"\nuser = \"u\"\n\
             password = \"hunter2-snow\"\nhost = \"127.0.0.1\"\nport = {port}\nprotocol = \"http\"\n\
             login_timeout = 3\npython = {py:?}\n",
            py = python(),
        ),
    );
    for (conn, account) in [("snowflake", "acme-xy12345"), ("sf_typed", "typed-acct")] {
        let started = Instant::now();
        let run = cli!(p, ["query", conn, "SELECT 1"], env = [NO_PROBES.0 => NO_PROBES.1]);
        let e = run.fails();
        assert!(
            e.contains(&format!("Snowflake account \"{account}\"")),
            "{conn}: {e}"
        );
        assert!(e.contains("127.0.0.1"), "the driver's own reason: {e}");
        assert!(
            !run.stderr().contains("hunter2") && !run.stdout().contains("hunter2"),
            "{conn}: {}",
            run.stderr()
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{conn} took {:?}",
            started.elapsed()
        );
    }
    let listing = cli!(p, ["connections", "list"]).ok();
    assert!(
        listing.contains("snowflake") && !listing.contains("hunter2"),
        "{listing}"
    );
}

#[test]
fn bigquery_section_fails_naming_the_project_and_service_account() {
    // A key that does not parse: the driver refuses it while connecting, before any
    // request. (A well-formed key would send the driver to Google's endpoints, which it
    // has no option to move, so no test here gives it one.)
    let body_line = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-MARKER-KEY-BODY";
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{body_line}\n-----END PRIVATE KEY-----\n");
    let p = Project::new(
        &["plugboard_adbc"],
        &format!(
            "[connections.bq]\ntype = \"bigquery\"\nproject_id = \"proj-123\"\nprivate_key_id = \"k1\"\n\
             private_key = {pem:?}\nclient_email = \"reader@proj-123.iam.gserviceaccount.com\"\n\
             client_id = \"1\"\ntoken_uri = \"http://127.0.0.1:9/token\"\npython = {py:?}\n",
            py = python(),
        ),
    );
    let started = Instant::now();
    let run = cli!(p, ["-v", "query", "bq", "SELECT 1"]);
    let e = run.fails();
    assert!(
        e.contains("BigQuery project \"proj-123\"") && e.contains("reader@proj-123"),
        "{e}"
    );
    assert!(e.contains("private key"), "the driver's own reason: {e}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        !all.contains("MARKER-KEY-BODY"),
        "the private key leaked: {all}"
    );
    let listing = cli!(p, ["connections", "list"]).ok();
    assert!(!listing.contains("MARKER-KEY-BODY"), "{listing}");
}

#[test]
fn flight_sql_to_a_closed_port_fails_fast_and_clearly() {
    let port = closed_port();
    let p = Project::new(
        &["plugboard_adbc"],
        &format!(
            "[connections.flight]\ntype = \"flightsql\"\nuri = \"grpc://127.0.0.1:{port}\"\n\
             token = \"bearer-s3cret\"\npython = {:?}\n",
            python()
        ),
    );
    let started = Instant::now();
    let run = cli!(p, ["query", "flight", "SELECT 1"]);
    let e = run.fails();
    assert!(
        e.contains(&format!("127.0.0.1:{port}")) && e.contains("connection refused"),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(!run.stderr().contains("bearer-s3cret"), "{}", run.stderr());
}

// ---------------------------------------------------------------------------------------
// Secrets and isolation

#[test]
fn the_built_library_conforms_in_process_and_isolated() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/adbc/conformance.json");
    let mut case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("conformance.json"))
            .expect("JSON");
    case["config"]["python"] = python().into();
    case["bad_config"][0]["python"] = python().into();
    let case: plugboard_api::conformance::Case = serde_json::from_value(case).expect("case");
    let lib = lib("plugboard_adbc");
    let module = plugboard_api::ffi::Module::load(&lib).expect("load");
    let in_process = plugboard_api::conformance::run(module, &case);
    assert!(in_process.passed(), "in process: {in_process}");
    let worker = std::path::Path::new(env!("CARGO_BIN_EXE_plugboard-under-test"));
    let isolated =
        plugboard::conformance_isolated(&lib, &case, Some(worker)).expect("the worker loads it");
    assert!(isolated.passed(), "isolated: {isolated}");
    assert_eq!(isolated.checks.len(), 8, "{isolated}");
}

#[test]
fn a_driver_that_echoes_a_secret_is_scrubbed_everywhere() {
    let p = Project::new(
        &["plugboard_adbc"],
        &format!(
            // The SQLite driver takes no password, and says so with the value in its message.
            "[connections.echo]\ntype = \"adbc\"\ndriver = \"sqlite\"\npython = {py:?}\n\
             uri = \":memory:\"\npassword = \"hunter2-sqlite\"\n\n\
             [connections.opt]\ntype = \"adbc\"\ndriver = \"sqlite\"\npython = {py:?}\n\
             uri = \":memory:\"\noptions = {{ \"adbc.sqlite.query.batch_rows\" = \"hunter2-opt\", \"my_token\" = \"x\" }}\n",
            py = python(),
        ),
    );
    let run = cli!(p, ["-v", "query", "echo", "SELECT 1"]);
    let e = run.fails();
    assert!(e.contains("password='***'"), "{e}");
    assert!(!run.stderr().contains("hunter2-sqlite"), "{}", run.stderr());
    let listing = cli!(p, ["connections", "list"]).ok();
    assert!(!listing.contains("hunter2-sqlite"), "{listing}");
}

#[test]
fn isolated_in_a_worker_process_the_drivers_work_the_same() {
    let chinook = plugboard_tests::chinook().display().to_string();
    let port = closed_port();
    let p = Project::new(&[], "");
    p.write(
        "plugins.toml",
        &format!(
            "[[plugin]]\npath = {:?}\nisolation = \"process\"\n",
            lib("plugboard_adbc").display().to_string()
        ),
    );
    p.write(
        "secrets.toml",
        &format!(
            "[connections.lite]\ntype = \"adbc\"\ndriver = \"sqlite\"\npython = {py:?}\nuri = {chinook:?}\n\n\
             [connections.flight]\ntype = \"flightsql\"\nuri = \"grpc://127.0.0.1:{port}\"\npython = {py:?}\n",
            py = python(),
        ),
    );
    let out = cli!(
        p,
        [
            "query",
            "lite",
            "SELECT COUNT(*) AS n FROM Track",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out, "n\n3503\n");
    let e = cli!(p, ["query", "flight", "SELECT 1"]).fails();
    assert!(e.contains("connection refused"), "{e}");
}

/// Streamlit's own Snowflake sections (the corpus of `streamlit_sections.rs`), served by
/// this plugin: each connects as far as this machine allows, pointed at a closed local
/// port with `--set`, and fails in one line naming its account; no secret of the corpus
/// (its `MARKER-…` strings) appears in any output.
#[test]
fn streamlits_snowflake_sections_reach_the_snowflake_driver() {
    let corpus = |file: &str| {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("streamlit")
                .join(file),
        )
        .expect("corpus file")
    };
    let port = closed_port().to_string();
    let overrides = [
        format!("python={}", python()),
        "host=127.0.0.1".to_owned(),
        format!("port={port}"),
        "protocol=http".to_owned(),
        "login_timeout=3".to_owned(),
    ];
    for (file, conn, account) in [
        ("snowflake.toml", "snowflake", "xxxxxxx-xxxxxxx"),
        (
            "snowflake-connection-forms.toml",
            "my_connection",
            "xxx-xxx",
        ),
        ("snowflake-connection-forms.toml", "sso", "xxx-xxx"),
        ("snowpark.toml", "snowpark", "<account-id>"),
        (
            "snowflake-connection-name.toml",
            "snowflake",
            "from-the-file",
        ),
    ] {
        let text = corpus(file);
        let p = Project::new(&["plugboard_adbc"], &text);
        // Example 4's ~/.snowflake/connections.toml (HOME is the project's folder).
        std::fs::create_dir_all(p.path(".snowflake")).expect("mkdir");
        p.write(
            ".snowflake/connections.toml",
            "[my_connection]\naccount = \"from-the-file\"\nuser = \"u\"\npassword = \"MARKER-PW-FILE\"\n",
        );
        let mut args = vec!["query", conn, "SELECT 1"];
        for s in &overrides {
            args.extend(["--set", s.as_str()]);
        }
        let run = p.cli(
            env!("CARGO_BIN_EXE_plugboard-under-test"),
            &args,
            &[NO_PROBES],
        );
        let e = run.fails();
        assert!(
            e.contains(&format!("Snowflake account \"{account}\"")),
            "{file} [{conn}]: {e}"
        );
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(
            !all.contains("MARKER-"),
            "{file} [{conn}]: a secret leaked: {all}"
        );
    }
}

#[test]
fn tables_and_describe_go_through_get_objects_and_get_table_schema() {
    let p = chinook_project();
    let h = host(&p);
    let c = h.connection("adbc_sqlite").expect("connect");
    let tables = c.tables().fetch().expect("tables");
    let names: Vec<String> = tables
        .column("name")
        .expect("name")
        .str()
        .expect("text")
        .iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    assert!(
        names.contains(&"Album".to_owned()) && names.contains(&"Track".to_owned()),
        "{names:?}"
    );
    let columns = c.describe("Album").fetch().expect("describe");
    let column = |name: &str| -> Vec<String> {
        columns
            .column(name)
            .expect(name)
            .str()
            .expect("text")
            .iter()
            .map(|v| v.unwrap_or("-").to_owned())
            .collect()
    };
    assert_eq!(column("column"), ["AlbumId", "Title", "ArtistId"]);
    assert_eq!(column("type")[0], "Int64");

    let pg = h.connection("adbc_pg").expect("connect");
    let tables = pg.tables().fetch().expect("tables");
    assert!(
        tables
            .column("name")
            .expect("name")
            .str()
            .expect("text")
            .iter()
            .any(|n| n == Some("artist")),
        "{tables}"
    );
    let e = pg.describe("no_such_table").fetch().expect_err("missing");
    assert_eq!(e.plugin_kind(), Some(ErrorKind::QUERY), "{e}");
}

//! Streamlit's own secrets sections, as Streamlit's docs tutorials and the connection
//! libraries write them (the corpus in `tests/streamlit/`, each file naming its source),
//! through the real CLI and the real `.so`s. Each section either works, pointed at this
//! machine's PostgreSQL (its shape kept, its host, database and user overridden with
//! `--set`), a private MariaDB with TLS holding the sections' own users and databases, a
//! SQLite file or an S3 server (moto), or is refused with one line that names the
//! connection, the data source it looks like and, where plugboard knows one, the kind of
//! plugin that would serve it. Every section is listed by `connections list` with its secrets
//! hidden, and no marker string (`MARKER-…`, one per secret value in the corpus) appears in
//! any output of any run, at `-v` too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use plugboard_tests::{Project, Run, my, pg, servers};

const BIN: &str = env!("CARGO_BIN_EXE_plugboard-under-test");

/// Streamlit's `type=FilesConnection`, as the app passes it in code.
const FILES_CONNECTION: &str = "st_files_connection.FilesConnection";

/// Every section of the corpus and what its test expects of it: `works` or `refused`.
const SECTIONS: &[(&str, &str, &str)] = &[
    ("postgresql.toml", "postgresql", "works"),
    ("neon.toml", "neon", "works"),
    ("supabase.toml", "supabase", "refused"),
    ("supabase.toml", "supabase_client", "refused"),
    ("supabase.toml", "supabase_db", "works"),
    (
        "clickhouse-managed-postgres.toml",
        "clickhouse_managed_postgres",
        "works",
    ),
    ("connecting-to-data.toml", "pets_db", "works"),
    ("connecting-to-data.toml", "local", "works"),
    ("connecting-to-data.toml", "staging", "works"),
    ("connecting-to-data.toml", "snowflake", "refused"),
    ("mysql.toml", "mysql", "works"),
    ("tidb.toml", "tidb", "works"),
    ("tidb.toml", "tidb_pymysql", "works"),
    ("snowflake.toml", "snowflake", "refused"),
    ("snowflake-connection-forms.toml", "sso", "refused"),
    (
        "snowflake-connection-forms.toml",
        "my_connection",
        "refused",
    ),
    ("snowflake-connection-name.toml", "snowflake", "refused"),
    ("snowpark.toml", "snowpark", "refused"),
    ("snowpark-tutorial.toml", "snowpark", "refused"),
    ("bigquery.toml", "bigquery", "refused"),
    ("bigquery.toml", "bigquery_sql", "refused"),
    ("gsheets-public.toml", "gsheets", "refused"),
    ("gsheets-private.toml", "gsheets", "refused"),
    ("gsheets-connection.toml", "gsheets", "refused"),
    ("gcs.toml", "gcs", "refused"),
    ("aws-s3.toml", "s3", "works"),
    ("files-connection.toml", "s3", "works"),
    ("mssql.toml", "mssql", "refused"),
    ("clickhouse.toml", "clickhouse", "refused"),
    ("duckdb.toml", "duckdb", "refused"),
    ("motherduck.toml", "motherduck", "refused"),
    ("mongodb.toml", "mongo", "refused"),
    ("mongodb.toml", "mongo_uri", "refused"),
    ("tableau.toml", "tableau", "refused"),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("streamlit")
}

/// The text of a corpus file.
fn corpus(file: &str) -> String {
    let path = corpus_dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `[connections.<name>]` sections a corpus file defines, in order (a line-wise read:
/// the corpus writes each section as a table header).
fn sections(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.trim().strip_prefix("[connections.") {
            let name: String = rest
                .chars()
                .take_while(|c| !matches!(c, '.' | ']'))
                .collect();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// Every marker string in `text` (`MARKER-<WORD>-<n>`).
fn markers(text: &str) -> Vec<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("MARKER-") {
        let tail = &rest[at..];
        let end = tail
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-'))
            .map_or(tail.len(), |(i, _)| i);
        found.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    found.into_iter().collect()
}

/// A project holding one corpus file as its secrets file, with the three real connectors.
struct Corpus {
    project: Project,
    file: &'static str,
    /// The corpus file's markers, and any other secret this test hands the CLI.
    secrets: Vec<String>,
}

impl Corpus {
    fn new(file: &'static str) -> Self {
        let text = corpus(file);
        let secrets = markers(&text);
        let project = Project::new(
            &[
                "plugboard_sqlite",
                "plugboard_postgres",
                "plugboard_files",
                "plugboard_mysql",
            ],
            &text,
        );
        Self {
            project,
            file,
            secrets,
        }
    }

    /// Runs the CLI with `args`, then again at `-v`; asserts that neither run printed a
    /// secret, and returns the plain run.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let run = self.project.cli(BIN, args, env);
        self.assert_no_leak(args, &run);
        let mut verbose = vec!["-v"];
        verbose.extend(args);
        let loud = self.project.cli(BIN, &verbose, env);
        self.assert_no_leak(&verbose, &loud);
        assert_eq!(
            run.0.status.code(),
            loud.0.status.code(),
            "{}: {args:?} ends differently at -v:\n{}\n{}",
            self.file,
            run.stderr(),
            loud.stderr()
        );
        run
    }

    /// Asserts that `run` printed no secret, and that the project's disk cache holds none.
    #[track_caller]
    fn assert_no_leak(&self, args: &[&str], run: &Run) {
        for (stream, text) in [("stdout", run.stdout()), ("stderr", run.stderr())] {
            for secret in &self.secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{}: {args:?} printed the secret {secret:?} on {stream}:\n{text}",
                    self.file
                );
            }
        }
        for file in files_under(&self.project.cache_dir()) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            for secret in &self.secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{}: after {args:?}, the cache file {} holds the secret {secret:?}",
                    self.file,
                    file.display()
                );
            }
        }
    }

    /// `connections list` (and at `-v`) succeeds and shows every section of the file, each
    /// marker hidden.
    fn assert_listed(&self) {
        let text = corpus(self.file);
        let listed = self.run(&["connections", "list"], &[]).ok();
        for name in sections(&text) {
            assert!(
                listed.lines().any(|l| l.contains(&format!(" {name} "))),
                "{}: `connections list` does not show {name:?}:\n{listed}",
                self.file
            );
        }
        if !markers(&text).is_empty() {
            assert!(listed.contains("***"), "{}: {listed}", self.file);
        }
    }

    /// The one error line of `args` on connection `name`, which must fail with exit code 1
    /// and start `error: connection "<name>"`.
    fn refusal(&self, name: &str, args: &[&str]) -> String {
        let err = self.run(args, &[]).fails();
        assert!(
            err.starts_with(&format!("error: connection \"{name}\"")),
            "{}: {err}",
            self.file
        );
        err
    }

    /// Asserts that a query on `name` is refused in one line naming `source` and, when
    /// `kind` is given, the kind of plugin that would serve it (and none when it is not).
    #[track_caller]
    fn refused(&self, name: &str, extra: &[&str], source: &str, kind: Option<&str>) -> String {
        let mut args = vec!["query", name, "SELECT 1"];
        args.extend(extra);
        let err = self.refusal(name, &args);
        assert!(
            err.contains(source),
            "{} [connections.{name}]: expected the refusal to name {source:?}, got: {err}",
            self.file
        );
        match kind {
            Some(k) => assert!(
                err.contains(&format!("load a plugin of kind \"{k}\""))
                    || err.contains(&format!("give it a `type` (\"{k}\")")),
                "{} [connections.{name}]: expected the refusal to name the kind {k:?}, got: {err}",
                self.file
            ),
            None => assert!(
                !err.contains("load a plugin of kind"),
                "{} [connections.{name}]: no plugboard kind serves this, got: {err}",
                self.file
            ),
        }
        err
    }

    /// Runs `sql` on `name` with `sets` as `--set` and returns the CSV it printed.
    fn csv(&self, name: &str, sql: &str, sets: &[String]) -> String {
        let mut args = vec!["query", name, sql, "--format", "csv"];
        for s in sets {
            args.extend(["--set", s.as_str()]);
        }
        self.run(&args, &[]).ok()
    }
}

/// Every file under `dir` (none if it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Overrides pointing a PostgreSQL section at this machine's server (trust auth for
/// `postgres`, so a marker password is sent nowhere that checks it).
fn local_pg(host: &str) -> Vec<String> {
    vec![
        format!("host={host}"),
        format!("database={}", pg::scratch()),
        "username=postgres".to_owned(),
    ]
}

/// Who and where a PostgreSQL session is, and whether it runs over TLS.
const SESSION: &str = "SELECT current_user AS u, current_database() AS d, \
     (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl";

fn session(ssl: bool) -> String {
    format!("u,d,ssl\npostgres,{},{ssl}\n", pg::scratch())
}

/// The machine's server offers TLS (`ssl = on`), with a self-signed certificate for
/// `localhost`; the sslmode=require sections depend on it.
fn server_offers_tls() -> bool {
    pg::value("postgres", "SHOW ssl") == "on"
}

#[test]
fn every_corpus_section_has_an_expected_outcome() {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(corpus_dir()).expect("tests/streamlit") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let file = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let text = corpus(&file);
            assert!(
                text.starts_with("# Source: "),
                "{file} must open with a comment naming its source"
            );
            for name in sections(&text) {
                files.insert((file.clone(), name));
            }
        }
    }
    let listed: BTreeSet<(String, String)> = SECTIONS
        .iter()
        .map(|(f, n, _)| ((*f).to_owned(), (*n).to_owned()))
        .collect();
    assert_eq!(files, listed, "the corpus and SECTIONS differ");
    assert!(SECTIONS.len() >= 24, "{}", SECTIONS.len());
    // One distinct marker per secret value, across the whole corpus.
    let mut seen = BTreeSet::new();
    let names: BTreeSet<&String> = files.iter().map(|(f, _)| f).collect();
    for file in names {
        for m in markers(&corpus(file)) {
            let count = corpus(file).matches(&m).count();
            assert_eq!(count, 1, "{file}: {m} is used {count} times");
            assert!(seen.insert(m.clone()), "{m} is used in two files");
        }
    }
    let works = SECTIONS.iter().filter(|s| s.2 == "works").count();
    eprintln!(
        "{} sections: {works} work, {} are refused",
        SECTIONS.len(),
        SECTIONS.len() - works
    );
}

#[test]
fn the_postgresql_tutorial_section_works_with_its_port_as_text() {
    let c = Corpus::new("postgresql.toml");
    c.assert_listed();
    // host, database and username overridden; `port = "5432"` (text) and the dialect as
    // written.
    let out = c.csv(
        "postgresql",
        "SELECT current_user AS u, current_database() AS d, inet_server_port() AS port",
        &local_pg("127.0.0.1"),
    );
    assert_eq!(out, format!("u,d,port\npostgres,{},5432\n", pg::scratch()));
}

#[test]
fn the_neon_and_supabase_urls_with_sslmode_require_work_over_tls() {
    assert!(
        server_offers_tls(),
        "this machine's PostgreSQL offers no TLS: the sslmode=require sections cannot work"
    );
    let c = Corpus::new("neon.toml");
    c.assert_listed();
    // The URL's userinfo, host and database overridden; its ?sslmode=require kept.
    assert_eq!(
        c.csv("neon", SESSION, &local_pg("127.0.0.1")),
        session(true)
    );

    let c = Corpus::new("supabase.toml");
    c.assert_listed();
    // postgresql+psycopg2 names a Python driver: the same PostgreSQL connector serves it.
    assert_eq!(
        c.csv("supabase_db", SESSION, &local_pg("127.0.0.1")),
        session(true)
    );
}

#[test]
fn the_supabase_client_sections_are_refused_naming_supabase() {
    let c = Corpus::new("supabase.toml");
    for name in ["supabase", "supabase_client"] {
        c.refused(name, &[], "a Supabase client", Some("supabase"));
    }
    // As the tutorial's app asks for it: st.connection("supabase", type=SupabaseConnection).
    c.refused(
        "supabase",
        &["--type", "SupabaseConnection"],
        "a Supabase client",
        Some("supabase"),
    );
}

#[test]
fn the_clickhouse_managed_postgres_section_verifies_the_server_certificate() {
    assert!(
        server_offers_tls(),
        "this machine's PostgreSQL offers no TLS"
    );
    let c = Corpus::new("clickhouse-managed-postgres.toml");
    c.assert_listed();
    // `sslrootcert = "ca-certificate.pem"`, relative to the working directory as on
    // Community Cloud: the server's own self-signed certificate (CN and SAN localhost).
    let cert = pg::value("postgres", "SHOW ssl_cert_file");
    let ca = c.project.path("ca-certificate.pem");
    std::fs::copy(&cert, &ca).unwrap_or_else(|e| panic!("copy {cert}: {e}"));
    let name = "clickhouse_managed_postgres";
    let mut sets = local_pg("localhost");
    sets.retain(|s| !s.starts_with("username="));
    assert_eq!(c.csv(name, SESSION, &sets), session(true));

    // verify-full checks the name: the certificate names localhost, not 127.0.0.1.
    let mut args = vec!["query", name, "SELECT 1"];
    let at_ip = [
        "host=127.0.0.1".to_owned(),
        format!("database={}", pg::scratch()),
    ];
    for s in &at_ip {
        args.extend(["--set", s.as_str()]);
    }
    let err = c.refusal(name, &args);
    assert!(err.contains("certificate"), "{err}");

    // And the chain: CAs that did not sign the server's certificate (the system's public
    // roots) refuse it. Dropping connect_args silently would connect here.
    std::fs::copy("/etc/ssl/certs/ca-certificates.crt", &ca).expect("copy the system CAs");
    let mut args = vec!["query", name, "SELECT 1"];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let err = c.refusal(name, &args);
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn the_connecting_to_data_sections() {
    let c = Corpus::new("connecting-to-data.toml");
    c.assert_listed();
    // pets_db: `url = "sqlite:///pets.db"`, relative to the working directory, with the
    // page's pet_owners table.
    let db = rusqlite::Connection::open(c.project.path("pets.db")).expect("pets.db");
    db.execute_batch(
        "CREATE TABLE pet_owners (person TEXT, pet TEXT);
         INSERT INTO pet_owners VALUES ('jerry', 'fish'), ('barbara', 'cat'), ('alex', 'puppy');",
    )
    .expect("pet_owners");
    drop(db);
    assert_eq!(
        c.csv("pets_db", "select * from pet_owners", &[]),
        "person,pet\njerry,fish\nbarbara,cat\nalex,puppy\n"
    );
    // local and staging: two MySQL URLs, served by the private MariaDB (`mysql_server`),
    // where their users, passwords and databases exist; host and port overridden.
    let (server, _) = mysql_server();
    for (name, user, db) in [
        ("local", "me", "local_db"),
        ("staging", "jdoe", "staging_db"),
    ] {
        let sets = [
            "host=127.0.0.1".to_owned(),
            format!("port={}", server.port()),
        ];
        assert_eq!(
            c.csv(name, MYSQL_SESSION, &sets),
            format!("u,d\n{user}@%,{db}\n"),
            "{name}"
        );
        // As the page's app asks for them: st.connection("env:DB_CONN", "sql").
        let mut args = vec![
            "query",
            "env:DB_CONN",
            MYSQL_SESSION,
            "--type",
            "sql",
            "--format",
            "csv",
        ];
        for s in &sets {
            args.extend(["--set", s.as_str()]);
        }
        assert_eq!(
            c.run(&args, &[("DB_CONN", name)]).ok(),
            format!("u,d\n{user}@%,{db}\n")
        );
    }
    // st.connection("snowflake", "sql"): Snowflake through SQLAlchemy.
    for extra in [&[][..], &["--type", "sql"][..]] {
        c.refused(
            "snowflake",
            extra,
            "a Snowflake connection (its URL scheme snowflake)",
            Some("snowflake"),
        );
    }
}

#[test]
fn env_names_pick_the_section_their_variable_names() {
    let c = Corpus::new("connecting-to-data.toml");
    let db = rusqlite::Connection::open(c.project.path("pets.db")).expect("pets.db");
    db.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (42);")
        .expect("t");
    drop(db);
    // DB_CONN=pets_db: the SQLite section.
    let out = c
        .run(
            &["query", "env:DB_CONN", "SELECT x FROM t", "--format", "csv"],
            &[("DB_CONN", "pets_db")],
        )
        .ok();
    assert_eq!(out, "x\n42\n");
    // DB_CONN=staging: the MySQL section, by its own name, at its own (unknown) host.
    let err = c
        .run(
            &["query", "env:DB_CONN", "SELECT 1"],
            &[("DB_CONN", "staging")],
        )
        .fails();
    assert!(
        err.starts_with("error: connection \"staging\" (plugin mysql)")
            && err.contains("staging.acmecorp.com"),
        "{err}"
    );
    // Unset, and empty: one line naming the variable.
    let unset = without(&c.project, "DB_CONN", &["query", "env:DB_CONN", "SELECT 1"]);
    c.assert_no_leak(&["env:DB_CONN unset"], &unset);
    let err = unset.fails();
    assert_eq!(
        err,
        "error: connection \"env:DB_CONN\": names its connection by $DB_CONN, which is not set"
    );
    let err = c
        .run(&["query", "env:DB_CONN", "SELECT 1"], &[("DB_CONN", "")])
        .fails();
    assert_eq!(
        err,
        "error: connection \"env:DB_CONN\": names its connection by $DB_CONN, which is empty"
    );
    // A name that is no section.
    let err = c
        .run(
            &["query", "env:DB_CONN", "SELECT 1"],
            &[("DB_CONN", "nowhere")],
        )
        .fails();
    assert!(err.contains("\"nowhere\""), "{err}");
}

/// The CLI as [`Project::cli`] runs it, with `var` removed from its environment.
fn without(p: &Project, var: &str, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .current_dir(p.dir.path())
        .env("PLUGBOARD_PLUGINS", "plugins.toml")
        .env("PLUGBOARD_SECRETS", "secrets.toml")
        .env_remove("PLUGBOARD_LOG")
        .env("HOME", p.dir.path())
        .env("XDG_CONFIG_HOME", p.path("config"))
        .env("PLUGBOARD_CACHE_DIR", p.cache_dir())
        .env_remove(var)
        .args(args)
        .output()
        .expect("run the CLI");
    Run(out)
}

/// The private MariaDB with TLS (`my::private_tls`) and its CA, with the users, passwords
/// and databases the MySQL sections of the corpus name.
fn mysql_server() -> &'static (my::Server, plugboard_tests::pg_tls::Certs) {
    static USERS: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let tls = my::private_tls();
    USERS.get_or_init(|| {
        let mut sql = String::new();
        for (user, password, db) in [
            ("xxx", "MARKER-PW-4", "xxx"),
            ("<TiDB_cluster_user>", "MARKER-PW-5", "pets"),
            ("tidb6", "MARKER-PW-6", "pets"),
            ("me", "MARKER-PW-7", "local_db"),
            ("jdoe", "MARKER-PW-8", "staging_db"),
        ] {
            sql.push_str(&format!(
                "CREATE DATABASE IF NOT EXISTS `{db}`; \
                 CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; \
                 GRANT ALL ON `{db}`.* TO '{user}'@'%'; "
            ));
        }
        tls.0.socket_client(&["-e", &sql]);
    });
    tls
}

/// Who and which database a MySQL session is.
const MYSQL_SESSION: &str = "SELECT CURRENT_USER() AS u, DATABASE() AS d";

#[test]
fn the_mysql_and_tidb_sections_work_against_mariadb() {
    let (server, certs) = mysql_server();
    let port = format!("port={}", server.port());
    let c = Corpus::new("mysql.toml");
    c.assert_listed();
    // The tutorial's section, its password and database as written; its placeholder
    // `query = { charset = "xxx" }` is refused by name until it names a character set.
    let at = ["host=127.0.0.1".to_owned(), port.clone()];
    let mut args = vec!["query", "mysql", "SELECT 1"];
    for s in &at {
        args.extend(["--set", s.as_str()]);
    }
    let err = c.refusal("mysql", &args);
    assert!(
        err.contains("`charset`") && err.contains("utf8mb4"),
        "{err}"
    );
    let mut sets = at.to_vec();
    sets.push("query.charset=utf8mb4".to_owned());
    assert_eq!(c.csv("mysql", MYSQL_SESSION, &sets), "u,d\nxxx@%,xxx\n");

    let c = Corpus::new("tidb.toml");
    c.assert_listed();
    assert_eq!(
        c.csv("tidb", MYSQL_SESSION, &at),
        "u,d\n<TiDB_cluster_user>@%,pets\n"
    );
    // connect_args = { ssl = { ca = … } }: pymysql's TLS with the server's certificate and
    // host name checked (the certificate names localhost).
    let ca = format!(
        "create_engine_kwargs.connect_args.ssl.ca={}",
        certs.path("ca.pem").display()
    );
    let sets = [
        "host=localhost".to_owned(),
        port.clone(),
        "username=tidb6".to_owned(),
        ca.clone(),
    ];
    let out = c.csv(
        "tidb_pymysql",
        "SELECT CURRENT_USER() AS u, VARIABLE_VALUE <> '' AS tls FROM \
         information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'",
        &sets,
    );
    assert_eq!(out, "u,tls\ntidb6@%,1\n");
    let mut args = vec!["query", "tidb_pymysql", "SELECT 1"];
    let at_ip = [
        "host=127.0.0.1".to_owned(),
        port,
        "username=tidb6".to_owned(),
        ca,
    ];
    for s in &at_ip {
        args.extend(["--set", s.as_str()]);
    }
    let err = c.refusal("tidb_pymysql", &args);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // As written, its CA path is a placeholder: one line naming the file it cannot read.
    let mut args = vec!["query", "tidb_pymysql", "SELECT 1"];
    let sets = [
        "host=localhost".to_owned(),
        format!("port={}", server.port()),
    ];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let err = c.refusal("tidb_pymysql", &args);
    assert!(err.contains("<path_to_CA_store>"), "{err}");
}

#[test]
fn the_snowflake_sections_are_refused_naming_snowflake() {
    let inferred = |name: &str| {
        format!("a Snowflake connection (from its name \"{name}\", as Streamlit infers it)")
    };
    // st.connection("snowflake"): the kind from the name alone.
    for file in ["snowflake.toml", "snowflake-connection-name.toml"] {
        let c = Corpus::new(file);
        c.assert_listed();
        c.refused("snowflake", &[], &inferred("snowflake"), Some("snowflake"));
        c.refused(
            "snowflake",
            &["--type", "SnowflakeConnection"],
            "a Snowflake connection",
            Some("snowflake"),
        );
    }
    let c = Corpus::new("snowflake-connection-forms.toml");
    c.assert_listed();
    for name in ["sso", "my_connection"] {
        c.refused(
            name,
            &[],
            "a Snowflake connection (its type \"snowflake\")",
            Some("snowflake"),
        );
    }
    // st.experimental_connection("snowpark"), the deprecated name.
    for file in ["snowpark.toml", "snowpark-tutorial.toml"] {
        let c = Corpus::new(file);
        c.assert_listed();
        c.refused("snowpark", &[], &inferred("snowpark"), Some("snowflake"));
    }
}

#[test]
fn the_google_service_account_sections_are_refused_naming_their_source() {
    let c = Corpus::new("bigquery.toml");
    c.assert_listed();
    // `type = "service_account"` is the key file's field, not an unknown connector kind.
    let err = c.refused(
        "bigquery",
        &[],
        "a Google service-account key (for Google Sheets, Cloud Storage or BigQuery)",
        None,
    );
    assert!(!err.contains("unknown type"), "{err}");
    c.refused(
        "bigquery_sql",
        &[],
        "a BigQuery connection (its URL scheme bigquery)",
        Some("bigquery"),
    );

    let from_name =
        "a Google Sheets connection (from its name \"gsheets\", as Streamlit infers it)";
    for file in [
        "gsheets-public.toml",
        "gsheets-private.toml",
        "gsheets-connection.toml",
    ] {
        let c = Corpus::new(file);
        c.assert_listed();
        let err = c.refused("gsheets", &[], from_name, Some("gsheets"));
        assert!(!err.contains("unknown type"), "{file}: {err}");
        // As the tutorials' apps ask for it: st.connection("gsheets", type=GSheetsConnection).
        c.refused(
            "gsheets",
            &["--type", "GSheetsConnection"],
            "a Google Sheets connection",
            Some("gsheets"),
        );
    }

    // st.connection('gcs', type=FilesConnection): the files connector serves the kind and
    // Google Cloud Storage; the corpus's private key is a marker, not an RSA key, so the
    // store is refused when it is set up, naming the fields at fault, before any request
    // (files_streamlit.rs reads the same section with a real key).
    let c = Corpus::new("gcs.toml");
    c.assert_listed();
    for extra in [&[][..], &["--type", FILES_CONNECTION][..]] {
        let mut args = vec!["read", "gcs", "streamlit-bucket/myfile.csv"];
        args.extend(extra);
        let err = c.refusal("gcs", &args);
        assert!(
            err.contains("cannot set up gs://streamlit-bucket with the service-account fields"),
            "{err}"
        );
    }
}

#[test]
fn the_sql_server_clickhouse_and_mongodb_sections_are_refused_naming_them() {
    let c = Corpus::new("mssql.toml");
    c.assert_listed();
    c.refused(
        "mssql",
        &[],
        "a SQL Server database (its dialect mssql)",
        None,
    );
    let c = Corpus::new("clickhouse.toml");
    c.assert_listed();
    c.refused(
        "clickhouse",
        &["--type", "sql"],
        "a ClickHouse database (its dialect clickhousedb)",
        None,
    );
    let c = Corpus::new("mongodb.toml");
    c.assert_listed();
    // pymongo's keyword arguments say nothing of MongoDB: a section with no dialect.
    let err = c.refused("mongo", &[], "dialect is not given", None);
    assert!(err.contains("`type`"), "{err}");
    c.refused(
        "mongo_uri",
        &[],
        "a MongoDB database (its URL scheme mongodb)",
        None,
    );
}

#[test]
fn the_tableau_section_is_refused_naming_tableau() {
    // tableauserverclient's keys (token_name, token_secret, server_url, site_id) are
    // recognizable: the refusal names Tableau rather than only a missing `type`.
    let c = Corpus::new("tableau.toml");
    c.assert_listed();
    c.refused("tableau", &[], "Tableau", None);
}

#[test]
fn the_duckdb_and_motherduck_sections_are_refused_naming_duckdb() {
    let c = Corpus::new("duckdb.toml");
    c.assert_listed();
    // As the page's app asks for it: st.connection("duckdb", type=DuckDBConnection).
    c.refused(
        "duckdb",
        &["--type", "DuckDBConnection"],
        "a DuckDB database",
        Some("duckdb"),
    );
    // The section alone (`database = "file.db"`) names no dialect: the refusal says what the
    // file may be and asks for a type.
    let err = c.refused("duckdb", &[], "a database file (DuckDB or SQLite)", None);
    assert!(err.contains("`type`"), "{err}");
    let c = Corpus::new("motherduck.toml");
    c.assert_listed();
    c.refused(
        "motherduck",
        &["--type", "sql"],
        "a DuckDB database (its URL scheme duckdb)",
        Some("duckdb"),
    );
}

/// `myfile.csv` of Streamlit's S3 tutorial (`/images/databases/myfile.csv`).
const MYFILE_CSV: &str = "Owner,Pet\nMary,dog\nJohn,cat\nRobert,bird\n";

#[test]
fn the_s3_sections_read_from_an_s3_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let myfile = dir.path().join("myfile.csv");
    std::fs::write(&myfile, MYFILE_CSV).expect("write");
    let bucket = "testbucket-jrieke";
    let (server, key_id, secret) = servers::s3(bucket, &[("myfile.csv", &myfile)]);
    let endpoint = format!("endpoint_url={}", server.url());
    let target = format!("{bucket}/myfile.csv");

    for (file, id_key, secret_key, extra) in [
        // The tutorial's names, the kind from the name `s3`.
        (
            "aws-s3.toml",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            &[][..],
        ),
        // s3fs's names, with the class the README's app passes.
        (
            "files-connection.toml",
            "key",
            "secret",
            &["--type", FILES_CONNECTION][..],
        ),
    ] {
        let mut c = Corpus::new(file);
        c.secrets.extend([key_id.clone(), secret.clone()]);
        c.assert_listed();
        // As written (marker credentials), pointed at the server: signed with the markers,
        // which the server does not know, the read is refused; nothing leaks.
        let mut args = vec!["read", "s3", &target, "--set", &endpoint];
        args.extend(extra);
        let err = c.refusal("s3", &args);
        assert!(err.contains("access denied"), "{file}: {err}");
        // With the server's credentials over the markers: `conn.read("testbucket-jrieke/
        // myfile.csv", input_format="csv")`.
        let id = format!("{id_key}={key_id}");
        let sec = format!("{secret_key}={secret}");
        let mut args = vec![
            "read",
            "s3",
            &target,
            "--set",
            &endpoint,
            "--set",
            &id,
            "--set",
            &sec,
            "-x",
            "format=csv",
            "--format",
            "csv",
        ];
        args.extend(extra);
        let out = c.run(&args, &[]).ok();
        assert_eq!(out, MYFILE_CSV, "{file}");
    }
}

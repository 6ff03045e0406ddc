//! Streamlit's `.streamlit/secrets.toml` PostgreSQL sections, copied from Streamlit's (and
//! its partners') tutorials, work unchanged through the real CLI and `.so`, with
//! SQLAlchemy's meaning, against real servers: the machine's PostgreSQL, and private ones
//! (password auth; TLS with certificates made here). Nothing in them is dropped silently:
//! what the connector has no meaning for is a one-line error naming the key, and no
//! password, `sslpassword` or key file ever shows in an output or a cache entry.

use std::path::Path;
use std::sync::OnceLock;

use plugboard_tests::pg_tls::{self, Certs};
use plugboard_tests::{Project, Run, cli, pg};

/// The certificates of every TLS test: `ca.pem` signed `server` (127.0.0.1, localhost),
/// `other` (db.other.example only) and `client` (CN=postgres); `wrong-ca.pem` signed nothing.
fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let certs = Certs::new();
        certs.issue("server", "127.0.0.1", "IP:127.0.0.1,DNS:localhost");
        certs.issue("other", "db.other.example", "DNS:db.other.example");
        let (_, client_key) = certs.issue("client", "postgres", "");
        certs.encrypt(&client_key, "client-encrypted.key", "S3cr3t-keypass");
        let wrong = Certs::new();
        std::fs::copy(wrong.path("ca.pem"), certs.path("wrong-ca.pem")).expect("copy");
        certs
    })
}

/// This binary's private server (password auth for roles other than `postgres`), with TLS
/// on: the certificate for 127.0.0.1, and clients' certificates checked against the CA.
fn tls_server() -> &'static pg::Server {
    static ON: OnceLock<()> = OnceLock::new();
    let server = pg::private();
    ON.get_or_init(|| {
        let c = certs();
        pg_tls::enable(
            server,
            &c.path("server.pem"),
            &c.path("server.key"),
            Some(&c.path("ca.pem")),
        );
    });
    server
}

/// A second private server whose certificate names another host.
fn other_host_server() -> &'static pg::Server {
    static SERVER: OnceLock<pg::Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = pg::Server::start();
        let c = certs();
        pg_tls::enable(&server, &c.path("other.pem"), &c.path("other.key"), None);
        server
    })
}

fn project(secrets: &str) -> Project {
    Project::new(&["plugboard_postgres"], secrets)
}

/// Runs `sql` on the connection `name` and returns its CSV without the header.
fn csv(p: &Project, name: &str, sql: &str) -> String {
    let out = cli!(p, ["query", name, sql, "--format", "csv"]).ok();
    out.lines().skip(1).collect::<Vec<_>>().join("\n")
}

/// What a session of `name` is: `user,database,ssl` (ssl `true`/`false`).
fn session(p: &Project, name: &str) -> String {
    csv(
        p,
        name,
        &format!(
            "SELECT current_user AS u, current_database() AS d, s.ssl, '{name}' AS c \
             FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()"
        ),
    )
    .rsplit_once(',')
    .map(|(s, _)| s.to_owned())
    .unwrap_or_default()
}

/// The one error line of a failing query on `name`.
fn refusal(p: &Project, name: &str) -> String {
    cli!(p, ["query", name, "SELECT 1"]).fails()
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn the_postgresql_tutorial_section_works_with_its_port_as_text() {
    let server = tls_server();
    let (user, password) = server.password_role();
    let p = project(&format!(
        // Streamlit docs, "Connect Streamlit to PostgreSQL" (tutorials/databases/postgresql):
        // the port is text there. The first points at the machine's server, as written
        // (`localhost`); the second at a server that checks the password.
        r#"
[connections.postgresql]
dialect = "postgresql"
host = "localhost"
port = "5432"
database = "{db}"
username = "postgres"
password = "xxx"

[connections.password]
dialect = "postgresql"
host = "127.0.0.1"
port = "{port}"
database = "postgres"
username = "{user}"
password = "{password}"

[connections.drivers]
type = "sql"
dialect = "postgresql"
driver = "psycopg2"
host = "127.0.0.1"
port = " 5432 "
database = "{db}"
username = "postgres"

[connections.bad_port]
dialect = "postgresql"
host = "127.0.0.1"
port = "54x2"
username = "postgres"
"#,
        db = pg::scratch(),
        port = server.port(),
    ));
    // The machine's server may offer TLS (`prefer` takes it): not asserted there.
    let machine = format!("postgres,{},", pg::scratch());
    assert!(session(&p, "postgresql").starts_with(&machine));
    assert_eq!(session(&p, "password"), format!("{user},postgres,true"));
    assert!(session(&p, "drivers").starts_with(&machine));
    let err = refusal(&p, "bad_port");
    assert!(
        err.contains("`port`: \"54x2\" is not a port number"),
        "{err}"
    );
}

#[test]
fn every_driver_scheme_is_accepted_and_changes_nothing() {
    let db = pg::scratch();
    let mut secrets = String::new();
    for (name, scheme) in [
        ("psycopg2", "postgresql+psycopg2"),
        ("psycopg", "postgresql+psycopg"),
        ("pg8000", "postgresql+pg8000"),
        ("asyncpg", "postgresql+asyncpg"),
        ("short", "postgres"),
    ] {
        secrets.push_str(&format!(
            "[connections.{name}]\nurl = \"{scheme}://postgres@127.0.0.1:5432/{db}\"\n\n"
        ));
    }
    let p = project(&secrets);
    for name in ["psycopg2", "psycopg", "pg8000", "asyncpg", "short"] {
        let s = session(&p, name);
        assert!(s.starts_with(&format!("postgres,{db},")), "{name}: {s}");
    }
}

#[test]
fn neon_and_supabase_urls_with_sslmode_require_connect_over_tls_without_a_ca() {
    let server = tls_server();
    let (user, password) = server.password_role();
    let port = server.port();
    let p = project(&format!(
        // Streamlit docs, "Connect Streamlit to Neon" (tutorials/databases/neon):
        // url="postgresql://neondb_owner:<password>@<host>.neon.tech/neondb?sslmode=require"
        // Supabase's "Connect to your database" connection string (session pooler), with
        // the sslmode its docs add for Streamlit and SQLAlchemy.
        r#"
[connections.neon]
url = "postgresql://{user}:{password}@127.0.0.1:{port}/postgres?sslmode=require"

[connections.supabase]
type = "sql"
url = "postgresql+psycopg2://{user}:{password}@127.0.0.1:{port}/postgres?sslmode=require"
"#
    ));
    assert_eq!(session(&p, "neon"), format!("{user},postgres,true"));
    assert_eq!(session(&p, "supabase"), format!("{user},postgres,true"));
}

#[test]
fn verify_full_connects_with_the_right_ca_and_refuses_a_wrong_one_or_another_host() {
    let server = tls_server();
    let other = other_host_server();
    let c = certs();
    let (ca, wrong) = (path(&c.path("ca.pem")), path(&c.path("wrong-ca.pem")));
    let p = project(&format!(
        r#"
[connections.right_ca]
url = "postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={ca}"

[connections.by_name]
url = "postgresql://postgres@localhost:{port}/postgres"
query = {{ sslmode = "verify-full", sslrootcert = "{ca}" }}

[connections.wrong_ca]
url = "postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={wrong}"

[connections.require_wrong_ca]
url = "postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=require&sslrootcert={wrong}"

[connections.other_host]
url = "postgresql://postgres@127.0.0.1:{other}/postgres?sslmode=verify-full&sslrootcert={ca}"

[connections.other_host_ca_only]
url = "postgresql://postgres@127.0.0.1:{other}/postgres?sslmode=verify-ca&sslrootcert={ca}"
"#,
        port = server.port(),
        other = other.port(),
    ));
    assert_eq!(session(&p, "right_ca"), "postgres,postgres,true");
    assert_eq!(session(&p, "by_name"), "postgres,postgres,true");
    // verify-ca checks the chain, not the name.
    assert_eq!(session(&p, "other_host_ca_only"), "postgres,postgres,true");
    for name in ["wrong_ca", "require_wrong_ca", "other_host"] {
        let err = refusal(&p, name);
        assert!(
            err.contains("cannot connect to postgres@127.0.0.1"),
            "{name}: {err}"
        );
        assert!(err.contains("certificate verify failed"), "{name}: {err}");
    }
}

/// The regression test for the hole: `sslmode` and `sslrootcert` given only inside
/// `create_engine_kwargs.connect_args` were ignored, and a wrong CA connected.
#[test]
fn sslmode_only_in_connect_args_is_honoured() {
    let server = tls_server();
    let c = certs();
    let (ca, wrong) = (path(&c.path("ca.pem")), path(&c.path("wrong-ca.pem")));
    let p = project(&format!(
        r#"
[connections.kwargs_right]
url = "postgresql://postgres@127.0.0.1:{port}/postgres"
create_engine_kwargs = {{ connect_args = {{ sslmode = "verify-full", sslrootcert = "{ca}" }} }}

[connections.kwargs_wrong]
url = "postgresql://postgres@127.0.0.1:{port}/postgres"
create_engine_kwargs = {{ connect_args = {{ sslmode = "verify-full", sslrootcert = "{wrong}" }} }}

# connect_args win over the URL's own sslmode, as psycopg2 merges them.
[connections.kwargs_over_url]
url = "postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"

[connections.kwargs_over_url.create_engine_kwargs.connect_args]
sslmode = "verify-full"
sslrootcert = "{wrong}"

[connections.kwargs_disable]
url = "postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=require"
create_engine_kwargs = {{ connect_args = {{ sslmode = "disable" }} }}
"#,
        port = server.port(),
    ));
    assert_eq!(session(&p, "kwargs_right"), "postgres,postgres,true");
    assert_eq!(session(&p, "kwargs_disable"), "postgres,postgres,false");
    for name in ["kwargs_wrong", "kwargs_over_url"] {
        let err = refusal(&p, name);
        assert!(err.contains("certificate verify failed"), "{name}: {err}");
    }
}

#[test]
fn connect_args_are_libpq_keywords_over_the_url_and_its_parts() {
    let server = tls_server();
    let (user, password) = server.password_role();
    let p = project(&format!(
        // The form Streamlit's SQLConnection docs give for driver options, with psycopg2's
        // keywords.
        r#"
[connections.kwargs]
dialect = "postgresql"
host = "127.0.0.1"
port = "{port}"
database = "postgres"
username = "nobody"
password = "wrong"

[connections.kwargs.create_engine_kwargs]
pool_size = 2
pool_pre_ping = true
echo = false

[connections.kwargs.create_engine_kwargs.connect_args]
user = "{user}"
password = "{password}"
application_name = "streamlit-app"
options = "-c search_path=kw_schema"
connect_timeout = 5
keepalives = 1
keepalives_idle = 30
keepalives_interval = 10
keepalives_count = 3
sslmode = "require"
"#,
        port = server.port(),
    ));
    assert_eq!(
        csv(
            &p,
            "kwargs",
            "SELECT current_user, current_setting('application_name'), \
             current_setting('search_path'), (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())"
        ),
        format!("{user},streamlit-app,kw_schema,true")
    );
}

#[test]
fn a_client_certificate_from_connect_args_is_presented() {
    let server = tls_server();
    let c = certs();
    let p = project(&format!(
        r#"
[connections.client_cert]
url = "postgresql://postgres@127.0.0.1:{port}/postgres"
create_engine_kwargs = {{ connect_args = {{ sslmode = "verify-full", sslrootcert = "{ca}", sslcert = "{cert}", sslkey = "{key}" }} }}

[connections.no_cert]
url = "postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=require"
"#,
        port = server.port(),
        ca = path(&c.path("ca.pem")),
        cert = path(&c.path("client.pem")),
        key = path(&c.path("client.key")),
    ));
    let dn = "SELECT coalesce(client_dn, 'none') FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    assert_eq!(csv(&p, "client_cert", dn), "/CN=postgres");
    assert_eq!(csv(&p, "no_cert", dn), "none");
}

#[test]
fn what_the_connector_has_no_meaning_for_is_refused_by_name() {
    let c = certs();
    let db = pg::scratch();
    let base = format!("url = \"postgresql://postgres@127.0.0.1:5432/{db}\"");
    let p = project(&format!(
        r#"
[connections.max_overflow]
{base}
create_engine_kwargs = {{ pool_size = 5, max_overflow = 10 }}

[connections.isolation]
{base}
create_engine_kwargs = {{ isolation_level = "AUTOCOMMIT" }}

[connections.echo]
{base}
create_engine_kwargs = {{ echo = true }}

[connections.asyncpg_ssl]
{base}
create_engine_kwargs = {{ connect_args = {{ ssl = "require" }} }}

[connections.encrypted_key]
{base}
create_engine_kwargs = {{ connect_args = {{ sslmode = "require", sslcert = "{cert}", sslkey = "{encrypted}", sslpassword = "S3cr3t-keypass" }} }}

[connections.sslpassword_alone]
{base}
create_engine_kwargs = {{ connect_args = {{ sslpassword = "S3cr3t-keypass" }} }}
"#,
        cert = path(&c.path("client.pem")),
        encrypted = path(&c.path("client-encrypted.key")),
    ));
    for (name, named) in [
        ("max_overflow", "`create_engine_kwargs.max_overflow`:"),
        ("isolation", "`create_engine_kwargs.isolation_level`:"),
        ("echo", "`create_engine_kwargs.echo`:"),
        (
            "asyncpg_ssl",
            "`create_engine_kwargs.connect_args.ssl`: unknown PostgreSQL option",
        ),
        ("encrypted_key", "`sslkey`:"),
        ("sslpassword_alone", "`sslpassword`: given without `sslkey`"),
    ] {
        let err = refusal(&p, name);
        assert!(err.contains(named), "{name}: {err}");
        assert!(!err.contains("S3cr3t"), "{name}: {err}");
    }
    assert!(refusal(&p, "encrypted_key").contains("is encrypted"));
}

/// Asserts that no output of `run` holds the marker.
fn assert_hidden(what: &str, run: &Run, marker: &str) {
    for (stream, text) in [("stdout", run.stdout()), ("stderr", run.stderr())] {
        assert!(
            !text.contains(marker),
            "{what}: a secret on {stream}:\n{text}"
        );
    }
}

#[test]
fn passwords_sslpassword_and_key_files_never_show() {
    let server = tls_server();
    let (user, _) = server.password_role();
    let c = certs();
    let marker = format!("S3cr3t{:x}", std::process::id());
    // A key file that is not a key, holding the marker: its contents must not be quoted.
    let bad_key = c.write(
        &format!("bad-{}.key", std::process::id()),
        &format!("-----BEGIN PRIVATE KEY-----\n{marker}\n-----END PRIVATE KEY-----\n"),
    );
    let p = project(&format!(
        r#"
[connections.wrong_password]
url = "postgresql://{user}:{marker}-url@127.0.0.1:{port}/postgres"
create_engine_kwargs = {{ connect_args = {{ password = "{marker}-kw" }} }}

[connections.sslpassword]
url = "postgresql://postgres@127.0.0.1:{port}/postgres"
create_engine_kwargs = {{ connect_args = {{ sslmode = "require", sslcert = "{cert}", sslkey = "{key}", sslpassword = "{marker}-sslpw" }} }}

[connections.bad_key]
url = "postgresql://postgres@127.0.0.1:{port}/postgres"
create_engine_kwargs = {{ connect_args = {{ sslmode = "require", sslcert = "{cert}", sslkey = "{bad_key}" }} }}

[connections.trusted]
url = "postgresql://postgres:{marker}-trusted@127.0.0.1:{port}/postgres"
create_engine_kwargs = {{ connect_args = {{ password = "{marker}-trusted-kw", sslpassword = "{marker}-unused", sslcert = "{cert}", sslkey = "{key}" }} }}
"#,
        port = server.port(),
        cert = path(&c.path("client.pem")),
        key = path(&c.path("client.key")),
        bad_key = path(&bad_key),
    ));
    for v in ["", "-v", "-vv"] {
        let args: Vec<&str> = [v].into_iter().filter(|a| !a.is_empty()).collect();
        let list = p.cli(
            env!("CARGO_BIN_EXE_plugboard-under-test"),
            &[args.as_slice(), &["connections", "list"]].concat(),
            &[],
        );
        list.ok();
        assert_hidden("connections list", &list, &marker);
        for name in ["wrong_password", "bad_key"] {
            let run = p.cli(
                env!("CARGO_BIN_EXE_plugboard-under-test"),
                &[args.as_slice(), &["query", name, "SELECT 1"]].concat(),
                &[],
            );
            let err = run.fails();
            assert_hidden(name, &run, &marker);
            assert!(!err.contains(&marker), "{err}");
        }
        let run = p.cli(
            env!("CARGO_BIN_EXE_plugboard-under-test"),
            &[
                args.as_slice(),
                &["query", "trusted", "SELECT 1 AS one", "--ttl", "1h"],
            ]
            .concat(),
            &[],
        );
        run.ok();
        assert_hidden("trusted", &run, &marker);
    }
    // The cached result and its target hold none of them either.
    for entry in p.cache_entries() {
        let bytes = std::fs::read(&entry).expect("read a cache entry");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&marker),
            "{}",
            entry.display()
        );
    }
    assert!(!p.cache_entries().is_empty(), "the trusted read was cached");
    let err = refusal(&p, "wrong_password");
    assert!(
        err.contains("28P01"),
        "the connect_args password was sent: {err}"
    );
}

//! The promise that a secret never leaves its section, tested the way an attacker would:
//! secrets in every place a secrets file can hold one, through the real CLI binary and the
//! real plugin libraries, in listings, errors, plugin log records and panics, at every log
//! level; and no file, however deeply nested, crashes the host.

use plugboard_tests::{Project, Run, cli, pg};

/// A marker unique to this run, so that a leak cannot be a coincidence.
fn marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{:08x}{:06x}", nanos, std::process::id() & 0xff_ffff)
}

/// Every kind of place, for the `echo` fixture (no config schema; it declares `token`
/// secret and hands back what it was given) and the `postgres` connector (a schema).
fn secrets_file(m: &str) -> String {
    // A private server, whose pg_hba.conf asks this role for a password over TCP.
    let server = pg::private();
    let (pw_user, _) = server.password_role();
    let pw_port = server.port();
    format!(
        r#"
[connections.echo]
type = "echo"
# declared secret by the plugin, with a quote (escaped when echoed as Debug or JSON)
token = "S3cr3t-{m}-tok\"q"
# the same value under a key that is not secret: echo logs it when it connects
tag = "S3cr3t-{m}-tok\"q"
# keys that look secret, of one and two characters
api_key = "k"
pwd = "ab"
auth = "S3cr3t-{m}-auth"
Client_Secret = "S3cr3t-{m}-cs"
# secrets inside strings of keys that are not secret
dsn = "host=db password=S3cr3t-{m}-dsn dbname=x"
endpoint = "https://api.example.com/v1?access_token=S3cr3t-{m}-qs&X-Amz-Signature=S3cr3t-{m}-sig&ok=1"
web = "https://S3cr3t-{m}-ghp@github.com/o/r.git"
mirrors = ["https://u:S3cr3t-{m}-arr@m.example.com/", "plain"]
servers = [{{ host = "a", password = "S3cr3t-{m}-aot" }}]
pin = 4{m_digits}

[connections.echo.credentials]
client_id = "S3cr3t-{m}-cid"
nested = {{ deep = "S3cr3t-{m}-deep" }}

[connections.echo.create_engine_kwargs.connect_args]
password = "S3cr3t-{m}-kw"

[connections.echo_connect]
type = "echo"
password = "S3cr3t-{m}-ecpw"
fail_connect = "refused S3cr3t-{m}-ecpw at https://u:S3cr3t-{m}-ecurl@h.example/ (login)"

[connections.pg]
url = "postgresql://postgres:S3cr3t%2F{m}%40url@127.0.0.1:5432/test?sslmode=disable"
password = "S3cr3t-{m}-pgpw"
application_name = "https://h/?token=S3cr3t-{m}-app"
create_engine_kwargs = {{ connect_args = {{ password = "S3cr3t-{m}-pgkw" }} }}

[connections.pg_auth]
url = "postgresql://{pw_user}:S3cr3t-{m}-wrong@127.0.0.1:{pw_port}/postgres"

[connections.pg_query]
url = "postgresql://postgres@127.0.0.1:5432/test?sslpassword=S3cr3t-{m}-sslpw"
"#,
        m_digits = m
            .bytes()
            .map(|b| b % 10)
            .map(|d| d.to_string())
            .collect::<String>(),
    )
}

fn project(m: &str) -> Project {
    Project::new(&["plugboard_postgres", "fixture_echo"], &secrets_file(m))
}

/// The log settings every command runs under: none, `-v`, `-vv`, and `PLUGBOARD_LOG=trace`.
const LOGGING: &[(&str, &str)] = &[("", ""), ("-v", ""), ("-vv", ""), ("", "trace")];

fn run(p: &Project, args: &[&str], verbose: &str, log: &str, env: &[(&str, &str)]) -> Run {
    let mut all: Vec<&str> = Vec::new();
    if !verbose.is_empty() {
        all.push(verbose);
    }
    all.extend(args);
    let mut vars: Vec<(&str, &str)> = env.to_vec();
    if !log.is_empty() {
        vars.push(("PLUGBOARD_LOG", log));
    }
    p.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &all, &vars)
}

/// Asserts that no output of `run` holds the marker (every long secret holds it), nor
/// the digits of the secret number.
fn assert_no_leak(what: &str, run: &Run, m: &str) {
    let digits: String = m.bytes().map(|b| (b % 10).to_string()).collect();
    for (stream, text) in [("stdout", run.stdout()), ("stderr", run.stderr())] {
        assert!(
            !text.contains(m) && !text.contains(&digits),
            "{what}: a secret leaked on {stream}:\n{text}"
        );
    }
}

#[test]
fn listings_hide_every_kind_of_secret() {
    let m = marker();
    let p = project(&m);
    for (v, log) in LOGGING {
        let env = [("PLUGBOARD_CONNECTIONS__ECHO__SESSION_TOKEN", "S3cr3t-env")];
        let r = run(&p, &["connections", "list"], v, log, &env);
        let out = r.ok();
        assert_no_leak(&format!("connections list {v}{log}"), &r, &m);
        assert!(!out.contains("S3cr3t-env"), "{out}");
        for shown in [
            r#"api_key = "***""#,
            r#"pwd = "***""#,
            r#"token = "***""#,
            r#"credentials = "***""#,
            "access_token=***&X-Amz-Signature=***&ok=1",
            "host=db password=*** dbname=x",
            "https://***@github.com/o/r.git",
            "https://u:***@m.example.com/",
            "plain",
            "postgresql://postgres:***@127.0.0.1:5432/test?sslmode=disable",
            "sslpassword=***",
            r#"session_token = "***""#,
        ] {
            assert!(out.contains(shown), "{shown:?} missing from:\n{out}");
        }
    }
}

#[test]
fn errors_and_logs_hide_every_kind_of_secret() {
    let m = marker();
    let p = project(&m);
    let token = format!("S3cr3t-{m}-tok\"q");
    let auth = format!("S3cr3t-{m}-auth");
    let pgpw = format!("'S3cr3t-{m}-pgpw'::int");
    let pgpw = format!("SELECT {pgpw}");
    let commands: Vec<Vec<&str>> = vec![
        // The plugin quotes the declared secret in its error.
        vec!["query", "echo", "fail"],
        // Logs it (as the connection's `tag`) at info when it connects; succeeds.
        vec!["query", "echo", "log"],
        vec!["query", "echo", "panic"],
        vec!["query", "echo", "panic_in_stream", "--format", "csv"],
        // A secret pasted as the query: the plugin echoes it, escaped.
        vec!["query", "echo", &token],
        vec!["query", "echo", &auth],
        // A connect error quoting a password and a URL with one.
        vec!["query", "echo_connect", "count"],
        // The server echoes a secret it was handed (application_name) in its error.
        vec![
            "query",
            "pg",
            "SELECT current_setting('application_name')::int",
        ],
        // ... and one pasted into the SQL.
        vec!["query", "pg", &pgpw],
        vec!["query", "pg_auth", "SELECT 1"],
        vec!["query", "pg_query", "SELECT 1"],
        vec![
            "exec",
            "pg",
            "SELECT current_setting('application_name')::int",
        ],
    ];
    for args in &commands {
        for (v, log) in LOGGING {
            let r = run(&p, args, v, log, &[]);
            let what = format!("{args:?} {v}{log}");
            let ok = args[2] == "log";
            assert_eq!(r.0.status.success(), ok, "{what}: {r:?}");
            assert_no_leak(&what, &r, &m);
        }
    }
    // What the host shows in their place.
    let r = run(&p, &["query", "echo", "fail"], "", "", &[]);
    assert!(
        r.stderr().contains("the server rejected token ***"),
        "{}",
        r.stderr()
    );
    let r = run(&p, &["query", "echo", "log"], "-v", "", &[]);
    assert!(
        r.stderr().contains("echo connected (tag \"***\")"),
        "{}",
        r.stderr()
    );
    let r = run(
        &p,
        &[
            "query",
            "pg",
            "SELECT current_setting('application_name')::int",
        ],
        "",
        "",
        &[],
    );
    assert!(
        r.stderr().contains("https://h/?token=***"),
        "{}",
        r.stderr()
    );
}

#[test]
fn short_secrets_are_hidden_where_they_stand_alone_in_messages() {
    let m = marker();
    let p = project(&m);
    // `api_key = "k"`, `pwd = "ab"`: the plugin echoes the query text, quoted.
    for (query, hidden) in [
        ("k", r#"echo does not know "***""#),
        ("ab", r#"does not know "***""#),
    ] {
        let r = run(&p, &["query", "echo", query], "", "", &[]);
        let err = r.fails();
        assert!(err.contains(hidden), "{err}");
    }
    // ... and not inside other words, which would give them away.
    let r = run(&p, &["query", "echo", "kab"], "", "", &[]);
    assert!(
        r.fails().contains(r#"does not know "kab""#),
        "{}",
        r.stderr()
    );
}

#[test]
fn env_and_set_text_keep_a_declared_string_exact() {
    let m = marker();
    let p = project(&m);
    // `password` is declared a string by the postgres connector; the server trusts
    // `postgres`, so any password connects, if it reaches the plugin as a string.
    for text in ["0x1F", "1979-05-27", "1e3", "true", "007", "5432"] {
        let r = run(
            &p,
            &["query", "pg", "SELECT 1 AS one", "--format", "csv"],
            "",
            "",
            &[("PLUGBOARD_CONNECTIONS__PG__PASSWORD", text)],
        );
        assert_eq!(r.ok(), "one\n1\n", "env {text}");
        let set = format!("password={text}");
        let r = run(
            &p,
            &[
                "query",
                "pg",
                "SELECT 1 AS one",
                "--set",
                &set,
                "--format",
                "csv",
            ],
            "",
            "",
            &[],
        );
        assert_eq!(r.ok(), "one\n1\n", "--set {text}");
    }
    // An undeclared type still reads by its look: `port` is declared an integer.
    let r = run(
        &p,
        &[
            "query",
            "pg",
            "SELECT 1 AS one",
            "--set",
            "port=5432",
            "--format",
            "csv",
        ],
        "",
        "",
        &[],
    );
    assert_eq!(r.ok(), "one\n1\n");
}

#[test]
fn deeply_nested_files_are_one_line_errors() {
    let n = 100_000;
    let deep = [
        format!("a = {}{}\n", "[".repeat(n), "]".repeat(n)),
        format!("a = {}1{}\n", "{b = ".repeat(n), "}".repeat(n)),
        format!("{} = 1\n", vec!["a"; n].join(".")),
        format!("[{}]\n", vec!["a"; n].join(".")),
        format!("a = {}", "[{b = ".repeat(n)),
    ];
    for text in &deep {
        let p = Project::new(&["fixture_echo"], &format!("[connections.x]\n{text}"));
        let err = cli!(p, ["connections", "list"]).fails();
        assert!(err.contains("secrets.toml:"), "{err}");
        assert!(err.len() < 300, "{err}");
        let p = Project::new(&["fixture_echo"], "");
        p.write("plugins.toml", text);
        for args in [["plugins", "list"], ["plugins", "pin"]] {
            let err = p
                .cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &args, &[])
                .fails();
            assert!(err.contains("plugins.toml:"), "{args:?}: {err}");
            assert!(err.len() < 300, "{err}");
        }
    }
}

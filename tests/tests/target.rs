//! A connection reports what it actually connected to (plugin-api 1.3), and the host keys
//! its cache on that: a table that leaves a setting to the environment (`PGDATABASE`) and
//! the same table pointing elsewhere are two sources, not one cache entry.
//!
//! Every test loads the real libraries: through the host's loader (whose log says what a
//! plugin reported), through plugboard-api's own `Module::load`, and through the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use plugboard_api::ConnectRequest;
use plugboard_api::ffi::Module;
use plugboard_tests::{Project, capture_logs, lib, pg};

/// What the host's loader logs when a plugin reports its target.
const REPORTED: &str = "the plugin reports what it connected to";

fn connect(module: &Module, config: serde_json::Value) -> plugboard_api::ffi::ModuleConnection {
    module
        .connect(&ConnectRequest {
            name: "t".to_owned(),
            config: config.as_object().cloned().unwrap_or_default(),
            ..ConnectRequest::default()
        })
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

fn target_json(module: &Module, config: serde_json::Value) -> Option<serde_json::Value> {
    let conn = connect(module, config);
    let target = conn
        .target()
        .map(|t| serde_json::from_str(t).expect("a target is JSON"));
    conn.close();
    target
}

/// Builds tests/compat/legacy-echo, a connector built against the frozen plugboard-api
/// 1.0.0 (as tests/tests/compat.rs does).
fn legacy_plugin() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = repo.join("target").join("compat");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(repo.join("tests/compat/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building tests/compat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug").join(format!(
        "{}legacy_echo{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

#[test]
fn a_1_3_plugin_reports_its_target_through_the_host_loader() {
    let p = Project::new(
        &["fixture_echo"],
        "[connections.reports]\ntype = \"echo\"\ntarget = { database = \"sales\", port = 5432 }\n\n\
         [connections.silent]\ntype = \"echo\"\n",
    );
    let host = p.host();
    let ((), log) = capture_logs(|| {
        let c = host.connection("reports").expect("connect");
        c.query("count").fetch().expect("read");
    });
    assert!(
        log.contains(REPORTED) && log.contains(r#"{"database":"sales","port":5432}"#),
        "the loader carries the canonical target: {log}"
    );
    let ((), log) = capture_logs(|| {
        let c = host.connection("silent").expect("connect");
        c.query("count").fetch().expect("read");
    });
    assert!(
        !log.contains(REPORTED),
        "a connector that reports nothing has no target: {log}"
    );

    let module = Module::load(&lib("fixture_echo")).expect("load");
    assert!(module.reports_targets());
    assert_eq!(
        target_json(
            &module,
            serde_json::json!({"target": {"port": 5432, "database": "sales"}})
        ),
        Some(serde_json::json!({"database": "sales", "port": 5432}))
    );
    let conn = connect(&module, serde_json::json!({"target": {"b": 1, "a": 2}}));
    assert_eq!(
        conn.target(),
        Some(r#"{"a":2,"b":1}"#),
        "canonical text: keys sorted"
    );
    assert_eq!(target_json(&module, serde_json::json!({})), None);
    assert_eq!(
        target_json(&module, serde_json::json!({"target": {}})),
        None,
        "an empty target says nothing"
    );
}

#[test]
fn a_plugin_built_against_plugin_api_1_0_loads_and_reports_no_target() {
    let legacy = legacy_plugin();
    let module = Module::load(&legacy).expect("the 1.0 plugin loads");
    assert!(!module.reports_targets(), "1.0 has no plugboard_connect_v2");
    let conn = connect(&module, serde_json::json!({"greeting": "hi"}));
    assert_eq!(conn.target(), None);
    conn.close();

    let p = Project::new(
        &[],
        "[connections.old]\ntype = \"legacy\"\ngreeting = \"hello\"\n",
    );
    p.write(
        "plugins.toml",
        &format!("[[plugin]]\npath = {:?}\n", legacy.display().to_string()),
    );
    let host = p.host();
    assert!(host.load_errors().is_empty(), "{:?}", host.load_errors());
    let (df, log) = capture_logs(|| {
        let c = host.connection("old").expect("connect");
        c.query("rows").param("n", 2).fetch().expect("read")
    });
    assert_eq!(
        df.height(),
        2,
        "connects through the 1.0 root module and reads"
    );
    assert!(!log.contains(REPORTED), "{log}");
}

#[test]
fn the_real_plugins_report_resolved_secret_free_targets() {
    // SQLite: the file SQLite opened, symlinks resolved; `:memory:` is private.
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real.db");
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let sqlite = Module::load(&lib("plugboard_sqlite")).expect("load sqlite");
    let canonical = real
        .parent()
        .and_then(|d| d.canonicalize().ok())
        .expect("canonical dir")
        .join("real.db");
    for db in [&real, &link] {
        assert_eq!(
            target_json(
                &sqlite,
                serde_json::json!({"url": format!("sqlite:///{}", db.display())})
            ),
            Some(serde_json::json!({"path": canonical.display().to_string()}))
        );
    }
    let memory = || target_json(&sqlite, serde_json::json!({"url": "sqlite://"}));
    assert_ne!(memory(), memory(), "each in-memory database is its own");

    // PostgreSQL: what the URL, the environment and the defaults resolved to; no password.
    let postgres = Module::load(&lib("plugboard_postgres")).expect("load postgres");
    let password = "pw-that-must-not-appear";
    let target = target_json(
        &postgres,
        serde_json::json!({
            "url": format!("postgresql://postgres:{password}@127.0.0.1:5432/{}", pg::scratch()),
            "application_name": "irrelevant",
        }),
    )
    .expect("postgres reports a target");
    assert_eq!(
        target,
        serde_json::json!({
            "host": "127.0.0.1", "port": 5432, "database": pg::scratch(),
            "user": "postgres", "options": null,
        })
    );
    assert!(!target.to_string().contains(password));

    // Files: the canonical root; never a key.
    let files = Module::load(&lib("plugboard_files")).expect("load files");
    let target = target_json(
        &files,
        serde_json::json!({"root": link.parent().map(|d| d.display().to_string()), "format": "csv"}),
    )
    .expect("files reports a target");
    assert_eq!(
        target,
        serde_json::json!({
            "protocol": "file",
            "root": canonical.parent().map(|d| d.display().to_string()),
            "format": "csv",
        })
    );
}

/// Runs `query echo value -p v=1 --ttl 1h -v` with `ECHO_TARGET` set to `env`; returns the
/// cache outcome and the pid of the process that read the row.
fn echo_value(p: &Project, env: &str) -> (&'static str, String) {
    let run = p.cli(
        env!("CARGO_BIN_EXE_plugboard-under-test"),
        &[
            "query", "echo", "value", "-p", "v=1", "--ttl", "1h", "-v", "--format", "csv",
        ],
        &[("ECHO_TARGET", env)],
    );
    let out = run.ok();
    let pid = out
        .lines()
        .nth(1)
        .and_then(|row| row.rsplit(',').next())
        .unwrap_or_default()
        .to_owned();
    (run.outcome(), pid)
}

#[test]
fn the_disk_cache_keys_on_what_the_environment_resolved() {
    let p = Project::new(
        &["fixture_echo"],
        "[connections.echo]\ntype = \"echo\"\ntarget_env = \"ECHO_TARGET\"\n",
    );
    let (first, a_pid) = echo_value(&p, "a");
    assert_eq!(first, "miss");
    let (second, b_pid) = echo_value(&p, "b");
    assert_eq!(
        second, "miss",
        "the same table resolved to another source is another entry"
    );
    assert_ne!(b_pid, a_pid);
    let (third, again) = echo_value(&p, "a");
    assert_eq!(
        third, "disk hit",
        "and the first source's entry is still there"
    );
    assert_eq!(again, a_pid);
}

/// Two databases with a table `t` of one row each, dropped when the test ends.
struct Databases(Vec<String>);

impl Databases {
    fn create(names: &[String]) -> Self {
        let dbs = Self(names.to_vec());
        for name in names {
            pg::psql(
                "postgres",
                &[
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ],
            );
            pg::psql("postgres", &["-c", &format!("CREATE DATABASE {name}")]);
            pg::psql(
                name,
                &[
                    "-c",
                    &format!("CREATE TABLE t (v text); INSERT INTO t VALUES ('rows of {name}')"),
                ],
            );
        }
        dbs
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("psql")
                .args([
                    "-X",
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .args([
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .output();
        }
    }
}

#[test]
fn postgres_pgdatabase_picks_the_database_and_the_cache_entry() {
    let pid = std::process::id();
    let (a, b) = (format!("pb_target_a_{pid}"), format!("pb_target_b_{pid}"));
    let _dbs = Databases::create(&[a.clone(), b.clone()]);
    // No `database`: the plugin takes it from PGDATABASE, as libpq does.
    let p = Project::new(
        &["plugboard_postgres"],
        "[connections.pg]\ntype = \"postgresql\"\nhost = \"127.0.0.1\"\nport = 5432\nusername = \"postgres\"\n",
    );
    let query = |db: &str| {
        p.cli(
            env!("CARGO_BIN_EXE_plugboard-under-test"),
            &[
                "query",
                "pg",
                "select v from t",
                "--ttl",
                "1h",
                "-v",
                "--format",
                "csv",
            ],
            &[("PGDATABASE", db)],
        )
    };
    let run = query(&a);
    assert_eq!(run.ok(), format!("v\nrows of {a}\n"));
    assert_eq!(run.outcome(), "miss");
    let run = query(&b);
    assert_eq!(
        run.ok(),
        format!("v\nrows of {b}\n"),
        "PGDATABASE={b} reads {b}, not a's cached rows"
    );
    assert_eq!(run.outcome(), "miss");
    let run = query(&a);
    assert_eq!(run.ok(), format!("v\nrows of {a}\n"));
    assert_eq!(run.outcome(), "disk hit", "a's entry is still a's");
}

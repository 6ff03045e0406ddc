//! Cancelling at the source (plugin-api 1.7): `Connection::cancel` from another thread,
//! and Ctrl-C in `plugboard query`, stop the statement at the server, not only in the
//! host. Checked where it shows: PostgreSQL's `pg_stat_activity` and MariaDB's process
//! list, which would show a statement the host gave up on still running.

use std::time::{Duration, Instant};

use plugboard_tests::{Project, marker, my, pg, until_running, until_stopped};

const BIN: &str = env!("CARGO_BIN_EXE_plugboard-under-test");

fn project() -> Project {
    Project::new(
        &["plugboard_postgres", "plugboard_mysql", "plugboard_files"],
        &format!(
            "[connections.pg]\nurl = \"{}\"\n\n\
             [connections.my]\nurl = \"{}\"\n",
            pg::url(pg::scratch()),
            my::url(my::scratch()),
        ),
    )
}

#[test]
fn cancel_stops_a_postgresql_read_at_the_server_caches_nothing_and_the_connection_goes_on() {
    let p = project();
    let host = p.host();
    let conn = host.connection("pg").expect("connect");
    let mark = marker("pg-read");
    let sql = format!("SELECT pg_sleep(:s)::text AS slept /* {mark} */");
    let slow = || {
        conn.query(sql.clone())
            .param("s", 60)
            .ttl(Duration::from_secs(3600))
            .fetch()
    };
    for attempt in ["first", "again: not served from a cache"] {
        let (result, took) = std::thread::scope(|s| {
            let read = s.spawn(|| {
                let started = Instant::now();
                (slow(), started.elapsed())
            });
            until_running(|| pg::running(&mark));
            assert!(
                conn.cancel().expect("cancel"),
                "the postgres plugin cancels"
            );
            read.join().expect("the read's thread")
        });
        let e = result.expect_err(attempt);
        assert!(e.is_cancelled(), "{attempt}: {e}");
        assert!(took < Duration::from_secs(10), "{attempt}: took {took:?}");
        assert_eq!(pg::running(&mark), 0, "{attempt}: the server stopped it");
    }
    // The same connection reads on, and a cancel with nothing running stops nothing later.
    assert!(conn.cancel().expect("idle cancel"));
    let df = conn
        .query("SELECT (6 * 7)::bigint AS answer")
        .fetch()
        .expect("next read");
    assert_eq!(plugboard_tests::int(&df, "answer"), 42);
}

#[test]
fn a_plugin_that_cannot_cancel_says_so_and_its_read_runs_to_the_end() {
    let p = project();
    p.write("t.csv", "a\n1\n2\n");
    p.write(
        "secrets.toml",
        &format!(
            "[connections.files]\ntype = \"files\"\nroot = {:?}\n",
            p.path("").display().to_string()
        ),
    );
    let host = p.host();
    let conn = host.connection("files").expect("connect");
    assert!(
        !conn.cancel().expect("cancel"),
        "the files connector has no way to cancel"
    );
    assert_eq!(conn.read("t.csv").fetch().expect("read").height(), 2);
}

/// Ctrl-C ends `plugboard query` with 130; before exiting it cancels the statement,
/// which the server would otherwise run on (PostgreSQL notices a client that left only
/// when it next writes to it; MariaDB not before the statement ends).
#[test]
fn ctrl_c_in_query_stops_the_statement_at_the_server() {
    let p = project();
    type Running = fn(&str) -> usize;
    let cases: [(&str, &str, Running); 2] = [
        ("pg", "SELECT pg_sleep(60)::text AS slept", pg::running),
        ("my", "SELECT SLEEP(60) AS slept", my::running),
    ];
    for (conn, sql, running) in cases {
        let mark = marker(conn);
        let sql = format!("{sql} /* {mark} */");
        let child = p
            .command(BIN, &["query", conn, &sql], &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        until_running(|| running(&mark));
        let sent = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let run = plugboard_tests::Run(child.wait_with_output().expect("wait"));
        assert_eq!(run.0.status.code(), Some(130), "{conn}: {:?}", run.0);
        assert_eq!(run.stderr(), "interrupted\n", "{conn}");
        let stopped = until_stopped(|| running(&mark));
        assert!(
            stopped.is_some(),
            "{conn}: the server still runs the statement 5 s after Ctrl-C"
        );
    }
}

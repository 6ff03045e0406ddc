//! A PostgreSQL server restart between two queries of one host. Its own test binary, so
//! that no other test is using the server while it restarts.

use std::process::Command;
use std::time::Duration;

use plugboard_tests::{Project, capture_logs, int, pg};

fn restart_server() {
    let versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql: the Debian PostgreSQL cluster layout")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(
        versions.len(),
        1,
        "one cluster version expected: {versions:?}"
    );
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &versions[0], "main", "restart"])
        .status()
        .expect("run pg_ctlcluster");
    assert!(status.success(), "restarting PostgreSQL failed: {status}");
}

#[test]
fn a_server_restart_between_two_queries() {
    let db = pg::chinook();
    let p = Project::new(
        &["plugboard_postgres"],
        &format!("[connections.pg]\nurl = \"{}\"\n", pg::url(db)),
    );
    let host = p.host();
    let c = host.connection("pg").expect("connect");
    let read = || {
        c.query("SELECT pg_backend_pid()::int8 AS pid, count(*) AS n FROM album")
            .ttl(Duration::ZERO)
            .fetch()
            .expect("read")
    };
    let before = read();
    restart_server();
    let (after, log) = capture_logs(read);
    assert_eq!(
        int(&after, "n"),
        347,
        "the query after the restart succeeded"
    );
    assert_ne!(int(&after, "pid"), int(&before, "pid"));
    assert_eq!(
        log.matches("resetting the connection").count(),
        1,
        "one reset:\n{log}"
    );
}

//! A PostgreSQL server restart between two queries of one host, on a private server of
//! this test's own (`pg::Server`): the machine's server is never restarted.

use std::time::Duration;

use plugboard_tests::{Project, capture_logs, int, pg};

#[test]
fn a_server_restart_between_two_queries() {
    let server = pg::Server::start();
    let db = server.chinook();
    let p = Project::new(
        &["plugboard_postgres"],
        &format!("[connections.pg]\nurl = \"{}\"\n", server.url(db)),
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
    server.restart();
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

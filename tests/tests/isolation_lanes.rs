//! An isolated plugin under normal work: concurrent calls on lanes of their own, streams
//! that interleave or are dropped early, and results equal to the in-process plugin's.
//! Real threads, the real sqlite `.so` in a real worker process.

use std::time::Duration;

use plugboard::{Host, Isolation};
use plugboard_tests::{Project, chinook, lib};

const WORKER: &str = env!("CARGO_BIN_EXE_plugboard-under-test");

fn project(isolation: &str) -> Project {
    let p = Project::new(
        &[],
        &format!(
            "[connections.chinook]\ntype = \"sqlite\"\ndatabase = {:?}\nread_only = true\n",
            chinook().display().to_string()
        ),
    );
    p.write(
        "plugins.toml",
        &format!(
            "[[plugin]]\npath = {:?}\nisolation = {isolation:?}\n",
            lib("plugboard_sqlite").display().to_string()
        ),
    );
    p
}

fn host(p: &Project) -> Host {
    p.builder().worker_program(WORKER).build().expect("host")
}

const BY_ALBUM: &str =
    "SELECT TrackId, Name, Milliseconds, UnitPrice FROM Track WHERE AlbumId = :a ORDER BY TrackId";

#[test]
fn concurrent_reads_run_on_lanes_of_their_own_and_match_in_process() {
    let (isolated, local) = (project("process"), project("none"));
    let (isolated, local) = (host(&isolated), host(&local));
    assert_eq!(isolated.plugins()[0].isolation, Isolation::Process);
    assert_eq!(local.plugins()[0].isolation, Isolation::None);
    let (ci, cl) = (
        isolated.connection("chinook").expect("isolated"),
        local.connection("chinook").expect("local"),
    );
    std::thread::scope(|s| {
        for t in 0..8i64 {
            let (ci, cl) = (&ci, &cl);
            s.spawn(move || {
                for i in 0..15i64 {
                    let album = 1 + (t * 15 + i) % 300;
                    let read = |c: &plugboard::Connection| {
                        c.query(BY_ALBUM)
                            .param("a", album)
                            .ttl(Duration::ZERO)
                            .fetch()
                            .expect("read")
                    };
                    let (a, b) = (read(ci), read(cl));
                    assert!(a.equals_missing(&b), "album {album}: {a} != {b}");
                }
            });
        }
    });
}

#[test]
fn interleaved_and_abandoned_streams_do_not_disturb_one_another() {
    let p = project("process");
    let host = host(&p);
    let conn = host.connection("chinook").expect("conn");
    let whole = conn
        .query("SELECT TrackId, Name FROM Track ORDER BY TrackId")
        .ttl(Duration::ZERO)
        .fetch()
        .expect("whole");
    // Two streams open at once, read alternately, each a lane of its own.
    let open = || {
        conn.query("SELECT TrackId, Name FROM Track ORDER BY TrackId")
            .batch_size(500)
            .ttl(Duration::ZERO)
            .stream()
            .expect("stream")
    };
    let (mut a, mut b) = (open(), open());
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    loop {
        let (x, y) = (a.next(), b.next());
        if x.is_none() && y.is_none() {
            break;
        }
        fa.extend(x.map(|r| r.expect("a")));
        fb.extend(y.map(|r| r.expect("b")));
    }
    for frames in [fa, fb] {
        assert!(frames.len() >= 7, "{} batches", frames.len());
        let mut joined = frames[0].clone();
        for f in &frames[1..] {
            joined.vstack_mut(f).expect("vstack");
        }
        assert!(joined.equals_missing(&whole));
    }
    // A stream dropped after one batch closes its lane; the worker and the connection
    // carry on.
    for _ in 0..5 {
        let mut s = open();
        assert_eq!(s.next().expect("a batch").expect("ok").height(), 500);
        drop(s);
    }
    let again = conn
        .query("SELECT count(*) AS n FROM Track")
        .ttl(Duration::ZERO)
        .fetch()
        .expect("after");
    assert_eq!(plugboard_tests::int(&again, "n"), 3503);
}

#[test]
fn writes_pings_and_errors_cross_the_worker_as_in_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let p = Project::new(
        &[],
        &format!(
            "[connections.scratch]\ntype = \"sqlite\"\ndatabase = {:?}\n",
            db.display().to_string()
        ),
    );
    p.write(
        "plugins.toml",
        &format!(
            "[[plugin]]\npath = {:?}\nisolation = \"process\"\n",
            lib("plugboard_sqlite").display().to_string()
        ),
    );
    let host = host(&p);
    let c = host.connection("scratch").expect("conn");
    c.ping().expect("ping");
    let n = c
        .execute("CREATE TABLE t (id INTEGER, v TEXT)")
        .statement("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        .run()
        .expect("execute");
    assert_eq!(n, 2);
    let df = c
        .query("SELECT v FROM t ORDER BY id")
        .ttl(Duration::from_secs(60))
        .fetch()
        .expect("read");
    assert_eq!(df.height(), 2);
    // A plugin's own error is the same error as in process: kind, message, connection.
    let e = c
        .query("SELECT nope FROM t")
        .ttl(Duration::ZERO)
        .fetch()
        .expect_err("bad column");
    let shown = e.to_string();
    assert!(
        shown.starts_with("connection \"scratch\" (plugin sqlite): query error:"),
        "{shown}"
    );
    assert!(shown.contains("nope"), "{shown}");
    // A write invalidates the cached read, through the worker as in process.
    c.execute("INSERT INTO t VALUES (3, 'c')")
        .run()
        .expect("insert");
    let (df, outcome) = c
        .query("SELECT v FROM t ORDER BY id")
        .ttl(Duration::from_secs(60))
        .fetch_shared()
        .expect("read again");
    assert_eq!(df.height(), 3, "{outcome}");
}

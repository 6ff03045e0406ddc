//! Invalidation wins every race: a read that began before a write, `reset()` or `cache
//! clear` finished is never served to a caller who began after it, by joining it or from
//! either tier, in this process or another. Real threads against the real PostgreSQL,
//! real CLI processes, the real `.so` files.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use plugboard_tests::{Project, cli, int, pg};

fn pg_project(table: &str) -> Project {
    let db = pg::scratch();
    pg::psql(
        db,
        &[
            "-c",
            &format!(
                "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (v int8); \
                 INSERT INTO {table} VALUES (0)"
            ),
        ],
    );
    Project::new(
        &["plugboard_postgres"],
        &format!(
            "[connections.pg]\nurl = \"{}\"\nttl = \"1h\"\n",
            pg::url(db)
        ),
    )
}

/// The issue's own scenario: six threads read a slow query with a TTL in a loop while a
/// seventh writes and then reads. Every read that starts after `execute()` returned must
/// see that write (146 of 150 did not: they joined a read that began before it).
#[test]
fn six_readers_and_a_writer_never_see_a_value_from_before_a_finished_write() {
    const WRITES: i64 = 40;
    let p = pg_project("race_gen");
    let host = p.host();
    let conn = host.connection("pg").expect("connect");
    // Slow enough that a read is nearly always in flight when a write lands.
    let sql = "SELECT v FROM race_gen CROSS JOIN pg_sleep(0.01)";
    let done = AtomicI64::new(0); // the last write whose execute() has returned
    let stale = AtomicUsize::new(0);
    let reads = AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let start = Barrier::new(7);
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                let conn = host.connection("pg").expect("connect");
                start.wait();
                while !stop.load(Ordering::SeqCst) {
                    let before = done.load(Ordering::SeqCst);
                    let df = conn.query(sql).fetch().expect("read");
                    reads.fetch_add(1, Ordering::Relaxed);
                    if int(&df, "v") < before {
                        stale.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        start.wait();
        let mut wrong_after_write = Vec::new();
        for i in 1..=WRITES {
            std::thread::sleep(Duration::from_millis(3));
            conn.execute("UPDATE race_gen SET v = :v")
                .param("v", i)
                .run()
                .expect("write");
            done.store(i, Ordering::SeqCst);
            let v = int(&conn.query(sql).fetch().expect("read"), "v");
            if v != i {
                wrong_after_write.push((i, v));
            }
        }
        stop.store(true, Ordering::SeqCst);
        assert!(
            wrong_after_write.is_empty(),
            "reads right after execute() returned the pre-write rows: {wrong_after_write:?}"
        );
    });
    assert_eq!(
        stale.load(Ordering::SeqCst),
        0,
        "of {} concurrent reads, some that began after a write returned older rows",
        reads.load(Ordering::Relaxed)
    );
}

/// `reset()` and `clear_cache` win the same race as a write.
#[test]
fn reset_and_clear_win_against_a_read_in_flight() {
    let p = pg_project("race_reset");
    let host = p.host();
    let conn = host.connection("pg").expect("connect");
    let slow = "SELECT v FROM race_reset CROSS JOIN pg_sleep(0.4)";
    for (n, invalidate) in [
        (1, &(|| conn.reset()) as &(dyn Fn() + Sync)),
        (2, &|| {
            host.clear_cache(Some("pg")).expect("clear");
        }),
        (3, &|| {
            host.clear_cache(None).expect("clear");
        }),
    ] {
        std::thread::scope(|s| {
            let in_flight = s.spawn(|| conn.query(slow).fetch().expect("read"));
            std::thread::sleep(Duration::from_millis(150)); // the read is under way
            // Written behind the host's back (by psql), then invalidated: a caller who
            // starts after the invalidation must see it.
            pg::psql(
                pg::scratch(),
                &["-c", &format!("UPDATE race_reset SET v = {n}")],
            );
            invalidate();
            let after = conn.query(slow).fetch().expect("read");
            assert_eq!(
                int(&after, "v"),
                n,
                "invalidation {n} lost to the read in flight"
            );
            in_flight.join().expect("join");
        });
    }
}

/// A memory entry in a long-running process is not served after another process wrote
/// through the same connection: the generations are shared through the cache folder.
#[test]
fn a_write_in_another_process_invalidates_this_process_memory() {
    let p = pg_project("race_cross");
    let host = p.host();
    let conn = host.connection("pg").expect("connect");
    let sql = "SELECT v FROM race_cross";
    let (df, _) = conn.query(sql).fetch_shared().expect("read");
    assert_eq!(int(&df, "v"), 0);
    let (_, o) = conn.query(sql).fetch_shared().expect("read");
    assert_eq!(o.to_string(), "memory hit");
    cli!(p, ["exec", "pg", "UPDATE race_cross SET v = 7"]).ok();
    let (df, o) = conn.query(sql).fetch_shared().expect("read");
    assert_eq!((int(&df, "v"), o.to_string().as_str()), (7, "miss"));

    // And `plugboard cache clear pg` in another process, after a write behind our back.
    pg::psql(pg::scratch(), &["-c", "UPDATE race_cross SET v = 8"]);
    let (df, _) = conn.query(sql).fetch_shared().expect("read");
    assert_eq!(int(&df, "v"), 7, "cached until cleared");
    // From this process's working directory: a connection's identity includes it.
    let cwd = std::env::current_dir().expect("cwd");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plugboard-under-test"))
        .current_dir(&cwd)
        .env("PLUGBOARD_PLUGINS", p.path("plugins.toml"))
        .env("PLUGBOARD_SECRETS", p.path("secrets.toml"))
        .env("PLUGBOARD_CACHE_DIR", p.cache_dir())
        .env("HOME", p.dir.path())
        .args(["cache", "clear", "pg"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (df, o) = conn.query(sql).fetch_shared().expect("read");
    assert_eq!((int(&df, "v"), o.to_string().as_str()), (8, "miss"));
}

/// Three processes: A starts a slow read; B writes while A is still reading; C starts
/// after B finished and must not get what A stores when it ends.
#[test]
fn a_slow_read_in_one_process_is_not_served_after_a_write_in_another() {
    let p = Arc::new(pg_project("race_procs"));
    let slow = "SELECT v FROM race_procs CROSS JOIN pg_sleep(0.8)";
    let a = {
        let p = Arc::clone(&p);
        std::thread::spawn(move || cli!(p, ["query", "pg", slow, "--format", "csv", "-v"]))
    };
    std::thread::sleep(Duration::from_millis(300));
    cli!(p, ["exec", "pg", "UPDATE race_procs SET v = 5"]).ok();
    let a = a.join().expect("join");
    assert_eq!(a.ok(), "v\n0\n", "A read before the write");
    assert_eq!(a.outcome(), "miss");
    let c = cli!(p, ["query", "pg", slow, "--format", "csv", "-v"]);
    assert_eq!(c.ok(), "v\n5\n", "C began after the write: {}", c.stderr());
    assert_eq!(c.outcome(), "miss");
}

/// `cache clear db` drops this project's `db`, not another project's connection that is
/// also called `db`, though both share the user's cache folder.
#[test]
fn cache_clear_drops_only_this_projects_connection() {
    let a = Project::new(
        &["plugboard_sqlite"],
        "[connections.db]\nurl = \"sqlite:///a.db\"\n",
    );
    let b = Project::new(
        &["plugboard_sqlite"],
        "[connections.db]\nurl = \"sqlite:///b.db\"\n",
    );
    let shared = tempfile::tempdir().expect("tempdir");
    let cache = shared.path().join("cache");
    let env = [("PLUGBOARD_CACHE_DIR", cache.to_str().expect("utf-8"))];
    let bin = env!("CARGO_BIN_EXE_plugboard-under-test");
    for p in [&a, &b] {
        p.cli(
            bin,
            &[
                "exec",
                "db",
                "CREATE TABLE t (x)",
                "INSERT INTO t VALUES (1)",
            ],
            &env,
        )
        .ok();
        let run = p.cli(
            bin,
            &["query", "db", "SELECT x FROM t", "--ttl", "1h", "-v"],
            &env,
        );
        run.ok();
        assert_eq!(run.outcome(), "miss");
    }
    let out = a.cli(bin, &["cache", "clear", "db"], &env).ok();
    assert!(
        out.starts_with("removed 1 cached result of \"db\""),
        "{out}"
    );
    let query = ["query", "db", "SELECT x FROM t", "--ttl", "1h", "-v"];
    assert_eq!(
        b.cli(bin, &query, &env).outcome(),
        "disk hit",
        "b's db keeps its entry"
    );
    assert_eq!(
        a.cli(bin, &query, &env).outcome(),
        "miss",
        "a's db was cleared"
    );
    // A name this project does not configure is an error, not a silent no-op.
    let err = a.cli(bin, &["cache", "clear", "dbb"], &env).fails();
    assert!(
        err.contains("\"dbb\"") && err.contains("did you mean \"db\""),
        "{err}"
    );
}

/// NaN, +inf, -inf and null are four different parameters, with four different keys.
#[test]
fn non_finite_parameters_do_not_share_a_key() {
    let p = Project::new(
        &["plugboard_sqlite"],
        "[connections.mem]\nurl = \"sqlite://\"\n",
    );
    let mut seen = Vec::new();
    for v in [
        "x:float=nan",
        "x:float=inf",
        "x:float=-inf",
        "x:null=",
        "x:float=0",
    ] {
        let run = cli!(
            p,
            [
                "query",
                "mem",
                "SELECT typeof(:x) AS t, :x AS x",
                "-p",
                v,
                "--ttl",
                "1h",
                "--format",
                "csv",
                "-v"
            ]
        );
        let out = run.ok();
        assert_eq!(
            run.outcome(),
            "miss",
            "{v} was served another parameter's result: {out}"
        );
        seen.push(out);
    }
    seen.dedup();
    assert!(seen.len() >= 4, "{seen:?}");
}

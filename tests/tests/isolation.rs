//! Plugins in worker processes (issue 15). A plugin with `isolation = "process"` that
//! segfaults, aborts, calls `exit(42)`, overflows its stack, hangs, allocates without bound
//! or panics — in `connect`, in a read, or midway through a stream — fails that one call
//! with one line naming the plugin, the connection and what happened. The host keeps
//! running, the next call gets a fresh worker, and every other connection keeps serving.
//!
//! Everything here is real: the `misbehave` fixture's `.so` through the real loader, the
//! `plugboard` binary as the worker, real signals, real exit codes, real clocks.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plugboard::{Connection, Host, Isolation, Outcome};
use plugboard_tests::{Project, Run, chinook, cli, int, lib};
use polars::prelude::*;

/// The `secret_token` of every misbehave connection: it must never be printed.
const SECRET: &str = "tok-ISOLATED-secret-4711";

/// The plugin's name, as errors quote it.
const PLUGIN: &str = "plugin \"misbehave\"";

/// Tracks in the Chinook sample.
const TRACKS: i64 = 3503;

/// The ways the fixture fails (its `Failure`, named as a test writes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Segv,
    Abort,
    Exit,
    Stack,
    Hang,
    Alloc,
    Panic,
}

impl Fail {
    fn name(self) -> &'static str {
        match self {
            Fail::Segv => "segv",
            Fail::Abort => "abort",
            Fail::Exit => "exit",
            Fail::Stack => "stack",
            Fail::Hang => "hang",
            Fail::Alloc => "alloc",
            Fail::Panic => "panic",
        }
    }

    /// The misbehave entry's limits for this failure: a hang is stopped after 1 s, the
    /// allocation by a 256 MB limit; the others get a timeout they never need.
    fn limits(self) -> &'static str {
        match self {
            Fail::Hang => "read_timeout = \"1s\"\n",
            Fail::Alloc => "read_timeout = \"60s\"\nmemory_limit = \"256MB\"\n",
            _ => "read_timeout = \"60s\"\n",
        }
    }

    /// Whether the worker dies (or is stopped): all but a panic, which the SDK catches.
    fn ends_the_worker(self) -> bool {
        self != Fail::Panic
    }

    /// Checks the error `line` of this failure during `during` (`while reading connection
    /// "bad"`): one line, naming the plugin, the connection and what happened.
    fn check(self, line: &str, during: &str) {
        assert!(!line.contains('\n'), "more than one line: {line}");
        assert!(
            !line.contains(SECRET),
            "the secret token is in the error: {line}"
        );
        let has = |s: &str| assert!(line.contains(s), "{s:?} missing from: {line}");
        match self {
            Fail::Segv => has(&format!("{PLUGIN} crashed (SIGSEGV) {during}")),
            Fail::Abort => {
                has(&format!("{PLUGIN} crashed (SIGABRT"));
                has(&format!(") {during}"));
            }
            Fail::Exit => has(&format!("{PLUGIN} exited with status 42 {during}")),
            Fail::Stack => {
                has(&format!("{PLUGIN} crashed (SIGABRT"));
                // What the worker's runtime printed as it died says why.
                has("stack overflow");
                has(&format!(") {during}"));
            }
            Fail::Hang => has(&format!(
                "{PLUGIN} did not answer within 1s {during}; its worker was stopped"
            )),
            Fail::Alloc => {
                has(PLUGIN);
                has(during);
                assert!(
                    line.contains("crashed") || line.contains("memory"),
                    "neither a crash nor memory in: {line}"
                );
            }
            Fail::Panic => {
                // Not a crash: the plugin's own error, naming the connection as any does.
                let connection = during.rsplit_once("connection ").map_or(during, |(_, c)| c);
                has(&format!("connection {connection}"));
                has("misbehave was told to panic");
            }
        }
    }
}

/// A project: the misbehave plugin isolated (with `limits`) beside SQLite in process, and
/// connections `bad` and `good` (two sections of misbehave), `on_connect` (misbehave,
/// failing with `on_connect` inside connect) and `chinook` (SQLite).
fn project(limits: &str, on_connect: Fail) -> Project {
    let secrets = format!(
        "[connections.bad]\ntype = \"misbehave\"\nsecret_token = \"{SECRET}\"\n\n\
         [connections.good]\ntype = \"misbehave\"\nsecret_token = \"{SECRET}\"\n\n\
         [connections.on_connect]\ntype = \"misbehave\"\ncrash_on_connect = \"{}\"\n\
         secret_token = \"{SECRET}\"\n\n\
         [connections.chinook]\ntype = \"sql\"\nurl = \"sqlite:///{}?mode=ro\"\n",
        on_connect.name(),
        chinook().display()
    );
    let p = Project::new(&[], &secrets);
    plugins(&p, &format!("isolation = \"process\"\n{limits}"));
    p
}

/// Writes the project's plugins.toml: misbehave with `settings`, SQLite in process.
fn plugins(p: &Project, settings: &str) {
    p.write(
        "plugins.toml",
        &format!(
            "[[plugin]]\npath = {:?}\n{settings}\n[[plugin]]\npath = {:?}\n",
            lib("fixture_misbehave").display().to_string(),
            lib("plugboard_sqlite").display().to_string()
        ),
    );
}

/// The project's host, with the CLI binary of this crate as its worker program.
fn host(p: &Project) -> Host {
    p.builder()
        .worker_program(env!("CARGO_BIN_EXE_plugboard-under-test"))
        .build()
        .expect("host")
}

/// An error and its sources on one line, the way the CLI prints them.
fn line(e: &plugboard::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// The id of the process the connection's plugin runs in (read uncached).
fn pid(c: &Connection) -> i64 {
    let df = c
        .query("pid")
        .ttl(Duration::ZERO)
        .fetch()
        .unwrap_or_else(|e| panic!("a pid read on {:?} failed: {}", c.name(), line(&e)));
    int(&df, "pid")
}

/// This test process's id, as the fixture reports one.
fn me() -> i64 {
    i64::from(std::process::id())
}

/// The `rows` table: `id` 1, 2, 3 and `name` "a", "b", "c".
fn rows() -> DataFrame {
    df!("id" => [1_i64, 2, 3], "name" => ["a", "b", "c"]).expect("frame")
}

/// The connections that must keep serving: `good` (the same plugin) and `chinook`.
fn others_serve(host: &Host) {
    let good = host.connection("good").expect("connect good");
    let df = good
        .query("rows")
        .ttl(Duration::ZERO)
        .fetch()
        .unwrap_or_else(|e| panic!("good: {}", line(&e)));
    assert!(df.equals(&rows()), "good read {df}");
    assert_eq!(tracks(host), TRACKS);
}

fn tracks(host: &Host) -> i64 {
    let db = host.connection("chinook").expect("connect chinook");
    let df = db
        .query("SELECT count(*) AS n FROM Track")
        .ttl(Duration::ZERO)
        .fetch()
        .unwrap_or_else(|e| panic!("chinook: {}", line(&e)));
    int(&df, "n")
}

/// The error of connecting `name` (or, if connecting is lazy, of its first read).
fn connect_error(host: &Host, name: &str) -> String {
    match host.connection(name) {
        Err(e) => line(&e),
        Ok(c) => line(
            &c.query("rows")
                .ttl(Duration::ZERO)
                .fetch()
                .expect_err("connect fails"),
        ),
    }
}

/// Times `f`, checking that a hang took the 1 s timeout and not much longer.
fn timed<T>(fail: Fail, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    if fail == Fail::Hang {
        assert!(
            took >= Duration::from_millis(900),
            "a hang was given up after {took:?}, before its 1s timeout"
        );
    }
    assert!(took < Duration::from_secs(30), "{fail:?} took {took:?}");
    out
}

/// Through the library, in one host: `fail` in a read, midway through a stream (batch by
/// batch, then whole with a TTL) and in connect. After each, the same connection serves
/// again from a fresh worker, the other section of the plugin and SQLite serve, and no
/// cache entry was kept. Meanwhile a thread reads Chinook without a single failure.
fn survives_in_the_library(fail: Fail) {
    let p = project(fail.limits(), fail);
    let host = host(&p);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Stops the reader however this scope ends, so that a failed check is reported
        // instead of waiting for the reader forever.
        let _stop = StopOnDrop(&stop);
        let reader = s.spawn(|| {
            let mut reads = 0_u32;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(tracks(&host), TRACKS, "chinook while {fail:?} happened");
                reads += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            reads
        });

        let bad = host.connection("bad").expect("connect bad");
        let mut worker = pid(&bad);
        assert_ne!(worker, me(), "the plugin runs in a worker, not in the host");
        let mut replaced = |c: &Connection, what: &str| {
            let now = pid(c);
            assert_ne!(
                now,
                me(),
                "after {fail:?} {what}: the plugin ran in the host"
            );
            if fail.ends_the_worker() {
                assert_ne!(
                    now, worker,
                    "after {fail:?} {what}: the worker was not replaced"
                );
            }
            worker = now;
        };

        // In a read.
        let e = timed(fail, || {
            bad.query(fail.name())
                .ttl(Duration::ZERO)
                .fetch()
                .expect_err("the read fails")
        });
        fail.check(&line(&e), "while reading connection \"bad\"");
        replaced(&bad, "in a read");
        others_serve(&host);

        // Midway through a stream: the first batch arrives, the second is the error.
        let mut stream = bad
            .query(format!("stream:{}", fail.name()))
            .ttl(Duration::ZERO)
            .stream()
            .unwrap_or_else(|e| panic!("the stream starts: {}", line(&e)));
        let first = stream
            .next()
            .expect("a first batch")
            .unwrap_or_else(|e| panic!("the first batch: {}", line(&e)));
        assert_eq!(first.height(), 1);
        let e = timed(fail, || {
            stream
                .next()
                .expect("a second item")
                .expect_err("the stream fails midway")
        });
        fail.check(&line(&e), "while reading connection \"bad\"");
        assert!(stream.next().is_none(), "the stream ended with its error");
        drop(stream);
        replaced(&bad, "midway through a stream");
        others_serve(&host);

        // Whole, with a TTL: nothing is cached, in memory or on disk.
        let e = timed(fail, || {
            bad.query(format!("stream:{}", fail.name()))
                .ttl(Duration::from_secs(3600))
                .fetch()
                .expect_err("the read fails midway")
        });
        fail.check(&line(&e), "while reading connection \"bad\"");
        assert_eq!(p.cache_entries(), Vec::<std::path::PathBuf>::new());
        replaced(&bad, "midway through a cached read");

        // In connect.
        let e = timed(fail, || connect_error(&host, "on_connect"));
        fail.check(&e, "while connecting to connection \"on_connect\"");
        assert_ne!(pid(&bad), me());
        others_serve(&host);

        // The same read with a TTL that works is kept: the checks above could fail.
        let (_, outcome) = bad
            .query("rows")
            .ttl(Duration::from_secs(3600))
            .fetch_shared()
            .unwrap_or_else(|e| panic!("rows: {}", line(&e)));
        assert_eq!(outcome, Outcome::Miss);
        assert_eq!(p.cache_entries().len(), 1, "a good read is stored on disk");

        stop.store(true, Ordering::Relaxed);
        let reads = reader.join().expect("the chinook reader");
        assert!(reads > 0, "chinook was read while {fail:?} happened");
    });
}

/// Sets its flag when dropped, also while unwinding from a failed assertion.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The process ended by itself with exit code 1 and one `error:` line, printed no panic
/// and no secret; returns the line.
fn failed(run: &Run) -> String {
    let status = run.0.status;
    assert_eq!(
        status.signal(),
        None,
        "the CLI was killed by a signal: {status:?}\nstderr: {}",
        run.stderr()
    );
    no_secret(run);
    let line = run.fails();
    assert!(
        !run.stderr().contains("panicked at"),
        "a panic was printed: {}",
        run.stderr()
    );
    line
}

fn no_secret(run: &Run) {
    assert!(
        !run.stdout().contains(SECRET) && !run.stderr().contains(SECRET),
        "the secret token was printed:\nstdout: {}\nstderr: {}",
        run.stdout(),
        run.stderr()
    );
}

/// The files in a folder.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Through the CLI, a process per run: `fail` in a read, midway through an export to a
/// file (CSV and Parquet, with a TTL) and in connect is one `error:` line with exit code
/// 1; the export leaves no file, temporary or final, and no cache entry; the secret token
/// is never printed; the project then works as before.
fn survives_in_the_cli(fail: Fail) {
    let p = project(fail.limits(), fail);
    let out = p.path("out");
    std::fs::create_dir(&out).expect("mkdir out");

    let run = timed(fail, || cli!(p, ["-v", "query", "bad", fail.name()]));
    let line = failed(&run);
    assert!(line.starts_with("error: "), "{line}");
    fail.check(&line, "while reading connection \"bad\"");

    for name in ["x.csv", "x.parquet"] {
        let path = out.join(name).display().to_string();
        let query = format!("stream:{}", fail.name());
        let run = timed(fail, || {
            cli!(
                p,
                [
                    "-v", "query", "bad", &query, "--ttl", "1h", "--output", &path
                ]
            )
        });
        fail.check(&failed(&run), "while reading connection \"bad\"");
        assert_eq!(files(&out), Vec::<String>::new(), "left behind by {name}");
        assert_eq!(p.cache_entries(), Vec::<std::path::PathBuf>::new());
    }

    // Over an older export: it stays as it was.
    let old = out.join("old.csv");
    std::fs::write(&old, "old\n").expect("write old.csv");
    let path = old.display().to_string();
    let query = format!("stream:{}", fail.name());
    let run = timed(fail, || {
        cli!(p, ["query", "bad", &query, "--output", &path])
    });
    fail.check(&failed(&run), "while reading connection \"bad\"");
    assert_eq!(std::fs::read_to_string(&old).expect("old.csv"), "old\n");
    assert_eq!(files(&out), ["old.csv"]);
    std::fs::remove_file(&old).expect("remove old.csv");

    // With every log line the host and the worker write: still no secret.
    let run = timed(fail, || {
        cli!(
            p,
            ["-v", "query", "on_connect", "rows"],
            env = ["PLUGBOARD_LOG" => "debug"]
        )
    });
    fail.check(
        &failed(&run),
        "while connecting to connection \"on_connect\"",
    );

    // The same export that works leaves its file and its entry: the checks above could fail.
    let path = out.join("x.csv").display().to_string();
    let run = cli!(
        p,
        ["query", "bad", "rows", "--ttl", "1h", "--output", &path]
    );
    no_secret(&run);
    run.ok();
    assert_eq!(
        std::fs::read_to_string(&path).expect("the export"),
        "id,name\n1,a\n2,b\n3,c\n"
    );
    assert_eq!(files(&out), ["x.csv"]);
    assert_eq!(p.cache_entries().len(), 1);
    let listed = cli!(p, ["connections", "list"]);
    no_secret(&listed);
    assert!(listed.ok().contains("***"), "the token is listed as ***");
}

#[test]
fn a_segfault_fails_one_call_and_the_host_serves_on() {
    survives_in_the_library(Fail::Segv);
}

#[test]
fn an_abort_fails_one_call_and_the_host_serves_on() {
    survives_in_the_library(Fail::Abort);
}

#[test]
fn an_exit_fails_one_call_and_the_host_serves_on() {
    survives_in_the_library(Fail::Exit);
}

#[test]
fn a_stack_overflow_fails_one_call_and_the_host_serves_on() {
    survives_in_the_library(Fail::Stack);
}

#[test]
fn a_hang_is_stopped_at_the_read_timeout_and_the_host_serves_on() {
    survives_in_the_library(Fail::Hang);
}

#[test]
fn a_runaway_allocation_fails_alone_under_the_memory_limit() {
    survives_in_the_library(Fail::Alloc);
}

#[test]
fn a_panic_in_a_worker_is_an_error_and_the_host_serves_on() {
    survives_in_the_library(Fail::Panic);
}

#[test]
fn cli_a_segfault_is_one_error_line_and_leaves_nothing_behind() {
    survives_in_the_cli(Fail::Segv);
}

#[test]
fn cli_an_abort_is_one_error_line_and_leaves_nothing_behind() {
    survives_in_the_cli(Fail::Abort);
}

#[test]
fn cli_an_exit_is_one_error_line_and_leaves_nothing_behind() {
    survives_in_the_cli(Fail::Exit);
}

#[test]
fn cli_a_stack_overflow_is_one_error_line_and_leaves_nothing_behind() {
    survives_in_the_cli(Fail::Stack);
}

#[test]
fn cli_a_hang_is_one_error_line_and_leaves_nothing_behind() {
    survives_in_the_cli(Fail::Hang);
}

#[test]
fn cli_a_runaway_allocation_is_one_error_line_and_leaves_nothing_behind() {
    survives_in_the_cli(Fail::Alloc);
}

#[test]
fn cli_a_panic_is_one_error_line_and_leaves_nothing_behind() {
    survives_in_the_cli(Fail::Panic);
}

#[test]
fn a_crash_fails_the_calls_in_flight_on_its_worker_each_naming_its_own_connection() {
    let p = project(Fail::Segv.limits(), Fail::Segv);
    let host = host(&p);
    let (good, bad) = (
        host.connection("good").expect("connect good"),
        host.connection("bad").expect("connect bad"),
    );
    const N: usize = 2_000_000;
    // A long read of `good`, open while `bad` crashes the plugin.
    let mut stream = good
        .query(format!("big:{N}"))
        .batch_size(1000)
        .ttl(Duration::ZERO)
        .stream()
        .expect("the stream starts");
    let mut rows = stream
        .next()
        .expect("a batch")
        .expect("the first batch")
        .height();
    let e = bad
        .query("segv")
        .ttl(Duration::ZERO)
        .fetch()
        .expect_err("segv");
    Fail::Segv.check(&line(&e), "while reading connection \"bad\"");
    // The stream either goes on (its worker lives) or ends in one error naming `good`;
    // it does not hang.
    let started = Instant::now();
    for batch in stream {
        match batch {
            Ok(df) => rows += df.height(),
            Err(e) => {
                Fail::Segv.check(&line(&e), "while reading connection \"good\"");
                rows = N;
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{rows} rows");
    }
    assert_eq!(rows, N);
    others_serve(&host);
    assert_ne!(pid(&bad), me());
}

#[test]
fn execute_and_ping_name_what_the_plugin_was_doing() {
    let p = project(Fail::Segv.limits(), Fail::Segv);
    p.write(
        "secrets.toml",
        &format!(
            "{}\n[connections.pinger]\ntype = \"misbehave\"\ncrash_on_ping = \"segv\"\n",
            std::fs::read_to_string(p.path("secrets.toml")).expect("secrets")
        ),
    );
    let host = host(&p);
    let bad = host.connection("bad").expect("connect bad");
    let e = bad.execute("segv").run().expect_err("execute crashes");
    Fail::Segv.check(&line(&e), "while executing on connection \"bad\"");
    assert_eq!(bad.execute("fine").run().expect("execute again"), 1);

    let pinger = host.connection("pinger").expect("connect pinger");
    let e = pinger.ping().expect_err("ping crashes");
    Fail::Segv.check(&line(&e), "while pinging connection \"pinger\"");
    assert_ne!(pid(&pinger), me());
    others_serve(&host);

    let run = cli!(p, ["exec", "bad", "exit"]);
    Fail::Exit.check(&failed(&run), "while executing on connection \"bad\"");
}

#[test]
fn a_warm_worker_serves_read_after_read_as_the_plugin_does_in_process() {
    let isolated = project(Fail::Segv.limits(), Fail::Segv);
    let in_process = project("", Fail::Segv);
    plugins(&in_process, "isolation = \"none\"\n");
    let (isolated_host, in_process_host) = (host(&isolated), host(&in_process));
    let c = isolated_host.connection("good").expect("connect");
    let local = in_process_host.connection("good").expect("connect");

    // One worker, reused: two uncached reads come from the same process, not this one.
    let worker = pid(&c);
    assert_ne!(worker, me());
    assert_eq!(pid(&c), worker, "a second read started another worker");
    assert_eq!(
        pid(&local),
        me(),
        "isolation = \"none\" runs in this process"
    );

    // The same table, whole and batch by batch.
    let whole = c.query("rows").ttl(Duration::ZERO).fetch().expect("rows");
    assert!(whole.equals(&rows()), "{whole}");
    let here = local
        .query("rows")
        .ttl(Duration::ZERO)
        .fetch()
        .expect("rows");
    assert_eq!(whole.schema(), here.schema());
    assert!(whole.equals(&here));
    let heights = |c: &Connection| -> Vec<usize> {
        c.query("rows")
            .batch_size(1)
            .ttl(Duration::ZERO)
            .stream()
            .expect("stream")
            .map(|b| b.expect("batch").height())
            .collect()
    };
    assert_eq!(heights(&c), heights(&local));
    assert_eq!(heights(&c), [1, 1, 1]);

    // The cache in front of the worker: the second read is not the plugin's.
    let ttl = Duration::from_secs(3600);
    let (first, o1) = c.query("rows").ttl(ttl).fetch_shared().expect("rows");
    let (second, o2) = c.query("rows").ttl(ttl).fetch_shared().expect("rows");
    assert_eq!((o1, o2), (Outcome::Miss, Outcome::MemoryHit));
    assert!(first.equals(&second));
    assert_eq!(pid(&c), worker, "still the same warm worker");
}

#[test]
fn a_big_read_streams_through_the_worker_into_exports_and_the_disk_cache() {
    let p = project(Fail::Segv.limits(), Fail::Segv);
    const N: i64 = 200_000;
    let query = format!("big:{N}");
    let path = p.path("big.parquet").display().to_string();
    cli!(p, ["query", "good", &query, "--output", &path]).ok();
    let file = std::fs::File::open(&path).expect("the export");
    let df = ParquetReader::new(file).finish().expect("read it back");
    assert_eq!(df.height(), N as usize);
    let ids = df.column("id").expect("id").i64().expect("i64");
    assert_eq!(ids.sum(), Some(N * (N + 1) / 2));
    assert_eq!(ids.get(N as usize - 1), Some(N));

    let csv = cli!(p, ["query", "good", &query, "--format", "csv"]).ok();
    assert_eq!(csv.lines().count(), N as usize + 1);
    assert_eq!(csv.lines().nth(1), Some("1,a"));
    assert_eq!(csv.lines().last(), Some("200000,n200000"));

    // Across CLI runs, the disk cache serves what the worker read.
    let run = cli!(p, ["-v", "query", "good", "rows", "--ttl", "1h"]);
    assert_eq!(run.outcome(), "miss");
    let again = cli!(p, ["-v", "query", "good", "rows", "--ttl", "1h"]);
    assert_eq!(again.outcome(), "disk hit");
    assert_eq!(run.ok(), again.ok());
}

#[test]
fn crashes_in_a_row_back_off_and_then_a_fresh_worker_serves() {
    let p = project(Fail::Segv.limits(), Fail::Segv);
    let host = host(&p);
    let bad = host.connection("bad").expect("connect bad");
    let first = pid(&bad);
    for attempt in 1..=4 {
        let e = bad
            .query("segv")
            .ttl(Duration::ZERO)
            .fetch()
            .expect_err("segv fails");
        let e = line(&e);
        // The crash itself, or the refusal to start a worker that keeps crashing.
        assert!(e.contains("crashed"), "crash {attempt}: {e}");
        assert!(e.contains("connection \"bad\""), "crash {attempt}: {e}");
    }
    // The host is up, and a plugin in process serves meanwhile.
    assert_eq!(tracks(&host), TRACKS);
    // After a short while the connection serves again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let worker = loop {
        match bad.query("pid").ttl(Duration::ZERO).fetch() {
            Ok(df) => break int(&df, "pid"),
            Err(e) => {
                let e = line(&e);
                assert!(
                    e.contains("crashed") && e.contains("in a row"),
                    "while backing off: {e}"
                );
                assert!(Instant::now() < deadline, "still refused after 20s: {e}");
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    };
    assert_ne!(worker, first);
    assert_ne!(worker, me());
    assert_eq!(pid(&bad), worker, "and that worker stays");
}

#[test]
fn plugins_list_shows_each_plugins_isolation() {
    let p = project(Fail::Segv.limits(), Fail::Segv);
    let out = cli!(p, ["plugins", "list"]).ok();
    let row = |name: &str| {
        out.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no row for {name}: {out}"))
            .to_owned()
    };
    assert!(row("misbehave").contains("process"), "{out}");
    let sqlite = row("libplugboard_sqlite");
    assert!(
        sqlite.contains("none") && !sqlite.contains("process"),
        "{out}"
    );

    let isolation = |name: &str| {
        host(&p)
            .plugins()
            .into_iter()
            .find(|i| i.manifest.name == name)
            .unwrap_or_else(|| panic!("no plugin {name}"))
            .isolation
    };
    assert_eq!(isolation("misbehave"), Isolation::Process);
    assert_eq!(isolation("sqlite"), Isolation::None);
}

#[test]
fn plugin_path_folders_run_isolated_unless_the_environment_says_none() {
    let p = Project::new(
        &[],
        &format!("[connections.bad]\ntype = \"misbehave\"\nsecret_token = \"{SECRET}\"\n"),
    );
    let dir = p.path("drop-in");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::copy(lib("fixture_misbehave"), dir.join("libmisbehave.so")).expect("copy");
    let path = dir.display().to_string();

    let list = cli!(p, ["plugins", "list"], env = ["PLUGBOARD_PLUGIN_PATH" => &path]).ok();
    let row = list
        .lines()
        .find(|l| l.contains("misbehave"))
        .expect("listed");
    assert!(row.contains("process"), "{list}");
    let run = cli!(p, ["query", "bad", "exit"], env = ["PLUGBOARD_PLUGIN_PATH" => &path]);
    Fail::Exit.check(&failed(&run), "while reading connection \"bad\"");

    // Turned off, the plugin runs in the CLI's own process: its exit(42) is the CLI's.
    let none = [
        ("PLUGBOARD_PLUGIN_PATH", path.as_str()),
        ("PLUGBOARD_PLUGIN_PATH_ISOLATION", "none"),
    ];
    let bin = env!("CARGO_BIN_EXE_plugboard-under-test");
    let list = p.cli(bin, &["plugins", "list"], &none).ok();
    let row = list
        .lines()
        .find(|l| l.contains("misbehave"))
        .expect("listed");
    assert!(row.contains("none") && !row.contains("process"), "{list}");
    let run = p.cli(bin, &["query", "bad", "exit"], &none);
    assert_eq!(run.0.status.code(), Some(42), "in process: {:?}", run.0);
}

#[test]
fn folders_and_the_whole_file_set_isolation_and_limits() {
    let p = Project::new(
        &[],
        &format!("[connections.bad]\ntype = \"misbehave\"\nsecret_token = \"{SECRET}\"\n"),
    );
    let vendor = p.path("vendor.d");
    std::fs::create_dir(&vendor).expect("mkdir");
    std::fs::copy(lib("fixture_misbehave"), vendor.join("libmisbehave.so")).expect("copy");
    let misbehave = format!(
        "[[plugin]]\npath = {:?}\n",
        lib("fixture_misbehave").display().to_string()
    );
    let hangs_for_1s = |p: &Project| {
        let run = timed(Fail::Hang, || cli!(p, ["query", "bad", "hang"]));
        Fail::Hang.check(&failed(&run), "while reading connection \"bad\"");
    };
    let mode = |p: &Project| {
        let list = cli!(p, ["plugins", "list"]).ok();
        let row = list
            .lines()
            .find(|l| l.contains("misbehave"))
            .unwrap_or_else(|| panic!("not listed: {list}"))
            .to_owned();
        match (row.contains("process"), row.contains("none")) {
            (true, false) => Isolation::Process,
            (false, true) => Isolation::None,
            _ => panic!("no one mode in: {row}"),
        }
    };

    // A folder with settings of its own.
    p.write(
        "plugins.toml",
        "dirs = [{ path = \"vendor.d\", isolation = \"process\", read_timeout = \"1s\" }]\n",
    );
    assert_eq!(mode(&p), Isolation::Process);
    hangs_for_1s(&p);

    // Defaults for the whole file, a memory limit in bytes.
    p.write(
        "plugins.toml",
        &format!(
            "isolation = \"process\"\nread_timeout = \"1s\"\nmemory_limit = 268435456\n\n{misbehave}"
        ),
    );
    assert_eq!(mode(&p), Isolation::Process);
    hangs_for_1s(&p);
    // The memory limit, with time enough to reach it on a loaded machine.
    p.write(
        "plugins.toml",
        &format!(
            "isolation = \"process\"\nread_timeout = \"60s\"\nmemory_limit = 268435456\n\n{misbehave}"
        ),
    );
    let run = cli!(p, ["query", "bad", "alloc"]);
    Fail::Alloc.check(&failed(&run), "while reading connection \"bad\"");

    // A folder written as a string takes the file's default.
    p.write(
        "plugins.toml",
        "isolation = \"process\"\nread_timeout = \"1s\"\ndirs = [\"vendor.d\"]\n",
    );
    assert_eq!(mode(&p), Isolation::Process);
    hangs_for_1s(&p);

    // An entry can run in process against the file's default.
    p.write(
        "plugins.toml",
        &format!("isolation = \"process\"\n\n{misbehave}isolation = \"none\"\n"),
    );
    assert_eq!(mode(&p), Isolation::None);
    assert_eq!(
        cli!(p, ["query", "bad", "rows", "--format", "csv"]).ok(),
        "id,name\n1,a\n2,b\n3,c\n"
    );
}

#[test]
fn bad_isolation_settings_are_one_line_errors_naming_the_file_and_key() {
    let p = Project::new(&[], "");
    std::fs::create_dir(p.path("d")).expect("mkdir");
    std::fs::copy(lib("fixture_misbehave"), p.path("d/libmisbehave.so")).expect("copy");
    let entry = format!(
        "[[plugin]]\npath = {:?}\n",
        lib("fixture_misbehave").display().to_string()
    );
    // Every case is tried, and every miss reported together.
    let mut wrong = Vec::new();
    for (text, key) in [
        (format!("{entry}isolation = \"sandbox\"\n"), "isolation"),
        ("isolation = \"sandbox\"\n".to_owned(), "isolation"),
        (
            "dirs = [{ path = \"d\", isolation = \"sandbox\" }]\n".to_owned(),
            "isolation",
        ),
        // Limits are for isolated plugins: by default, and said outright.
        (format!("{entry}read_timeout = \"2s\"\n"), "read_timeout"),
        (
            format!("{entry}isolation = \"none\"\nmemory_limit = \"256MB\"\n"),
            "memory_limit",
        ),
        (
            "read_timeout = \"2s\"\ndirs = [\"d\"]\n".to_owned(),
            "read_timeout",
        ),
        (
            format!("{entry}isolation = \"process\"\nread_timeout = \"soon\"\n"),
            "read_timeout",
        ),
        (
            format!("{entry}isolation = \"process\"\nmemory_limit = \"lots\"\n"),
            "memory_limit",
        ),
    ] {
        p.write("plugins.toml", &text);
        let printed = cli!(p, ["plugins", "list"]).fails();
        // The library says the same, when it builds the host or as a load error.
        let said = match host_or_error(&p) {
            Err(e) => line_of(&e),
            Ok(h) => h
                .load_errors()
                .iter()
                .map(line)
                .collect::<Vec<_>>()
                .join("; "),
        };
        for (who, error) in [("the CLI", &printed), ("the library", &said)] {
            for says in ["plugins.toml", key] {
                if !error.contains(says) {
                    wrong.push(format!("{who}: {says:?} missing for {text:?}: {error}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn host_or_error(p: &Project) -> plugboard::Result<Host> {
    p.builder()
        .worker_program(env!("CARGO_BIN_EXE_plugboard-under-test"))
        .build()
}

fn line_of(e: &plugboard::Error) -> String {
    let l = line(e);
    assert!(!l.contains('\n'), "more than one line: {l}");
    l
}

#[test]
fn a_connection_lowers_its_plugins_read_timeout_and_an_in_process_one_cannot_set_it() {
    let p = project(Fail::Segv.limits(), Fail::Segv);
    p.write(
        "secrets.toml",
        &format!(
            "{}\n[connections.quick]\ntype = \"misbehave\"\nread_timeout = \"1s\"\n\n\
             [connections.local_quick]\ntype = \"sql\"\nurl = \"sqlite:///{}?mode=ro\"\n\
             read_timeout = \"1s\"\n",
            std::fs::read_to_string(p.path("secrets.toml")).expect("secrets"),
            chinook().display()
        ),
    );
    let host = host(&p);
    // The key is the host's: the plugin (which refuses keys it does not know) never sees it.
    let quick = host.connection("quick").expect("connect quick");
    assert_ne!(pid(&quick), me());
    let e = timed(Fail::Hang, || {
        quick
            .query("hang")
            .ttl(Duration::ZERO)
            .fetch()
            .expect_err("the hang is stopped")
    });
    Fail::Hang.check(&line(&e), "while reading connection \"quick\"");
    assert_ne!(pid(&quick), me(), "quick serves again");

    let e = connect_error(&host, "local_quick");
    for says in ["connection \"local_quick\"", "read_timeout"] {
        assert!(e.contains(says), "{says:?} missing from: {e}");
    }
    let line = failed(&cli!(p, ["query", "local_quick", "SELECT 1"]));
    for says in ["connection \"local_quick\"", "read_timeout"] {
        assert!(line.contains(says), "{says:?} missing from: {line}");
    }
    assert_eq!(tracks(&host), TRACKS);
}

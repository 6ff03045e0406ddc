//! The Redis tier against real `redis-server`s the tests start on free ports: hosts with
//! their own memory and disk tiers (separate processes, separate cache folders) share
//! results and invalidations through it, and a Redis that is down, stopped, restarted,
//! full, refusing the password or holding damaged values costs nothing but speed.

use std::time::{Duration, Instant};

use plugboard::{Outcome, Value};
use plugboard_tests::redis_server::Server;
use plugboard_tests::{Project, Run, chinook};

fn project() -> Project {
    Project::new(
        &["plugboard_sqlite", "fixture_echo"],
        &format!(
            "[connections.echo]\ntype = \"echo\"\n\n\
             [connections.db]\nurl = \"sqlite:///w.db\"\n\n\
             [connections.chinook]\nurl = \"sqlite:///{}?mode=ro\"\n",
            chinook().display()
        ),
    )
}

/// Runs the CLI as host `host` (its own disk cache folder) with Redis at `url`.
fn cli(p: &Project, host: &str, url: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = p.path(&format!("cache-{host}"));
    let dir = dir.to_string_lossy().into_owned();
    let mut all = vec![
        ("PLUGBOARD_CACHE_DIR", dir.as_str()),
        ("PLUGBOARD_CACHE_REDIS", url),
        ("PLUGBOARD_CACHE_REDIS_PREFIX", "pbtest"),
    ];
    all.extend_from_slice(env);
    p.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), args, &all)
}

/// `query echo value -p v=V --ttl 1h` as `host`: returns the pid that read it, and the run.
fn echo(p: &Project, host: &str, url: &str, v: &str) -> (String, Run) {
    let param = format!("v={v}");
    let run = cli(
        p,
        host,
        url,
        &[
            "query", "echo", "value", "-p", &param, "--ttl", "1h", "-v", "--format", "csv",
        ],
        &[],
    );
    let out = run.ok();
    let row = out.lines().nth(1).unwrap_or_default().to_owned();
    let pid = row.rsplit(',').next().unwrap_or_default().to_owned();
    assert!(!pid.is_empty(), "no pid in {out:?}");
    (pid, run)
}

fn keys(server: &Server, pattern: &str) -> Vec<String> {
    let mut c = server.client(None);
    redis::cmd("KEYS").arg(pattern).query(&mut c).expect("KEYS")
}

#[test]
fn two_hosts_share_results_and_reads_without_ttl_stay_local() {
    let server = Server::start(&[]);
    let p = project();
    let url = server.url();
    let (a, run) = echo(&p, "a", &url, "1");
    assert_eq!(run.outcome(), "miss");
    let (b, run) = echo(&p, "b", &url, "1");
    assert_eq!(
        run.outcome(),
        "redis hit",
        "host b's memory and disk are empty"
    );
    assert_eq!(b, a, "b got what a read");
    assert_eq!(keys(&server, "pbtest:e:*").len(), 1);
    assert!(
        keys(&server, "pbtest:*")
            .iter()
            .all(|k| !k.contains("echo")),
        "no names in keys"
    );

    // The TTL is Redis's own expiry.
    let mut c = server.client(None);
    let name = keys(&server, "pbtest:e:*").remove(0);
    let pttl: i64 = redis::cmd("PTTL").arg(&name).query(&mut c).expect("PTTL");
    assert!(pttl > 3_500_000 && pttl <= 3_600_000, "{pttl}");

    // Without a TTL nothing reaches Redis.
    let run = cli(
        &p,
        "a",
        &url,
        &["query", "echo", "value", "-p", "v=2", "-v"],
        &[],
    );
    run.ok();
    assert_eq!(keys(&server, "pbtest:e:*").len(), 1);

    let stats = cli(&p, "b", &url, &["cache", "stats"], &[]).ok();
    assert!(
        stats.contains("connection (redis)") && stats.contains("echo"),
        "{stats}"
    );
    let cleared = cli(&p, "b", &url, &["cache", "clear"], &[]).ok();
    assert!(
        cleared.contains("removed 1 cached result") && cleared.contains("from redis"),
        "{cleared}"
    );
    assert!(keys(&server, "pbtest:e:*").is_empty());
    let (_, run) = echo(&p, "a", &url, "1");
    assert_eq!(
        run.outcome(),
        "miss",
        "a clear on b reaches a's disk keys too"
    );
}

#[test]
fn a_write_on_one_host_is_seen_by_the_others_next_read() {
    let server = Server::start(&[]);
    let p = project();
    let url = server.url();
    cli(
        &p,
        "a",
        &url,
        &["exec", "db", "create table t (x int)"],
        &[],
    )
    .ok();
    let count = |host: &str| {
        let run = cli(
            &p,
            host,
            &url,
            &[
                "query",
                "db",
                "select count(*) as n from t",
                "--ttl",
                "1h",
                "-v",
                "--format",
                "csv",
            ],
            &[],
        );
        let out = run.ok();
        (
            out.lines().nth(1).unwrap_or_default().to_owned(),
            run.outcome(),
        )
    };
    assert_eq!(count("a"), ("0".to_owned(), "miss"));
    assert_eq!(count("b"), ("0".to_owned(), "redis hit"));
    assert_eq!(count("b"), ("0".to_owned(), "redis hit"));
    cli(
        &p,
        "a",
        &url,
        &["exec", "db", "insert into t values (1)"],
        &[],
    )
    .ok();
    assert_eq!(
        count("b"),
        ("1".to_owned(), "miss"),
        "b does not serve the pre-write result"
    );
    assert_eq!(count("a"), ("1".to_owned(), "redis hit"));
}

/// A project whose `db` is a SQLite file named by its path (in process, a relative path
/// would be the test's folder).
fn db_project() -> Project {
    let p = project();
    let db = p.path("w.db");
    p.write(
        "secrets.toml",
        &format!("[connections.db]\nurl = \"sqlite:///{}\"\n", db.display()),
    );
    p
}

/// A host of `p` in this process with its own disk folder, and Redis as `config` says.
fn db_host(p: &Project, name: &str, config: &plugboard::RedisConfig) -> plugboard::Host {
    p.builder()
        .cache_dir(Some(p.path(&format!("cache-{name}"))))
        .redis(Some(config.clone()))
        .build()
        .expect("host")
}

fn exec(h: &plugboard::Host, sql: &str) {
    h.connection("db")
        .expect("db")
        .execute(sql)
        .run()
        .expect(sql);
}

/// `select count(*) from t` with a TTL of an hour: the count, and where it came from.
fn count_t(h: &plugboard::Host) -> (i64, Outcome) {
    let (df, outcome) = h
        .connection("db")
        .expect("db")
        .query("select count(*) as n from t")
        .ttl(Duration::from_secs(3600))
        .fetch_shared()
        .expect("read");
    (plugboard_tests::int(&df, "n"), outcome)
}

/// Two hosts in one process (each its own memory and disk): a write through one means the
/// other's next read, memory hit or not, does not serve what was read before it.
#[test]
fn a_write_on_one_host_invalidates_the_others_memory() {
    let server = Server::start(&[]);
    let p = db_project();
    let config = plugboard::RedisConfig::new(&server.url()).expect("url");
    let (a, b) = (db_host(&p, "a", &config), db_host(&p, "b", &config));
    exec(&a, "create table t (x int)");
    let count = count_t;
    assert_eq!(count(&a), (0, Outcome::Miss));
    assert_eq!(count(&b), (0, Outcome::RedisHit));
    assert_eq!(count(&b), (0, Outcome::MemoryHit));
    exec(&a, "insert into t values (1)");
    assert_eq!(
        count(&b),
        (1, Outcome::Miss),
        "b's memory entry is not served"
    );
    assert_eq!(count(&b), (1, Outcome::MemoryHit));
    // reset() on a: the same.
    a.connection("db").expect("a").reset();
    assert_eq!(count(&b).1, Outcome::Miss);
    // cache clear on a: every host's memory too.
    a.clear_cache(None).expect("clear");
    assert_eq!(count(&b).1, Outcome::Miss);
}

#[test]
fn large_results_are_chunked_and_damage_is_a_miss() {
    let server = Server::start(&[]);
    let p = project();
    let url = server.url();
    let tracks = |host: &str| {
        let run = cli(
            &p,
            host,
            &url,
            &[
                "query",
                "chinook",
                "select * from Track order by TrackId",
                "--ttl",
                "1h",
                "-v",
                "--format",
                "csv",
            ],
            &[("PLUGBOARD_CACHE_REDIS_CHUNK_BYTES", "4096")],
        );
        let out = run.ok();
        (out, run.outcome())
    };
    let (want, o) = tracks("a");
    assert_eq!(o, "miss");
    assert!(want.lines().count() > 3000);
    let chunks = keys(&server, "pbtest:c:*");
    // Enough chunks that a read fetches them on several connections at once.
    assert!(chunks.len() > 32, "split into chunks of 4 KiB: {chunks:?}");
    assert_eq!(tracks("b"), (want.clone(), "redis hit"));

    let mut c = server.client(None);
    let manifest = keys(&server, "pbtest:e:*").remove(0);
    let good: Vec<u8> = redis::cmd("GET").arg(&manifest).query(&mut c).expect("GET");
    let set = |c: &mut redis::Connection, k: &str, v: &[u8]| {
        redis::cmd("SET").arg(k).arg(v).query::<()>(c).expect("SET");
    };
    // A damaged chunk, a missing chunk, a truncated manifest, another version's manifest,
    // a foreign value: each a miss with the right rows, never an error.
    let mut damaged: Vec<u8> = redis::cmd("GET")
        .arg(&chunks[2])
        .query(&mut c)
        .expect("GET");
    // Past the codec byte: a chunk holds at least one payload byte behind it.
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    set(&mut c, &chunks[2], &damaged);
    let mut host = 0;
    let mut fresh = || {
        host += 1;
        format!("fresh{host}")
    };
    assert_eq!(tracks(&fresh()), (want.clone(), "miss"), "damaged chunk");
    let manifest = keys(&server, "pbtest:e:*").remove(0);
    let good_again: Vec<u8> = redis::cmd("GET").arg(&manifest).query(&mut c).expect("GET");
    assert_ne!(good, good_again, "the miss stored a new entry");
    assert_eq!(tracks(&fresh()), (want.clone(), "redis hit"));

    let chunks = keys(&server, "pbtest:c:*");
    redis::cmd("DEL")
        .arg(&chunks[0])
        .query::<()>(&mut c)
        .expect("DEL");
    assert_eq!(tracks(&fresh()), (want.clone(), "miss"), "missing chunk");

    let good: Vec<u8> = redis::cmd("GET").arg(&manifest).query(&mut c).expect("GET");
    set(&mut c, &manifest, &good[..good.len() / 2]);
    assert_eq!(
        tracks(&fresh()),
        (want.clone(), "miss"),
        "truncated manifest"
    );

    let good: Vec<u8> = redis::cmd("GET").arg(&manifest).query(&mut c).expect("GET");
    let mut other = good.clone();
    other[8] = 99; // the format version; the checksum no longer matches either
    set(&mut c, &manifest, &other);
    assert_eq!(tracks(&fresh()), (want.clone(), "miss"), "another version");

    set(&mut c, &manifest, b"{\"not\": \"ours\"}");
    assert_eq!(tracks(&fresh()), (want.clone(), "miss"), "foreign value");
    redis::cmd("DEL")
        .arg(&manifest)
        .query::<()>(&mut c)
        .expect("DEL");
    redis::cmd("RPUSH")
        .arg(&manifest)
        .arg("a list")
        .query::<()>(&mut c)
        .expect("RPUSH");
    assert_eq!(tracks(&fresh()), (want, "miss"), "a value of another type");
}

/// What a host does when Redis fails it: the reads are right, one warning, no error, and a
/// dead Redis costs one timeout, not one per read.
fn reads_survive(server_url: &str, why: &str) -> String {
    let p = project();
    let run = cli(
        &p,
        "a",
        server_url,
        &[
            "query", "echo", "value", "-p", "v=7", "--ttl", "1h", "-v", "--format", "csv",
        ],
        &[],
    );
    let out = run.ok();
    assert!(
        out.lines().nth(1).is_some_and(|l| l.starts_with("7,")),
        "{why}: {out}"
    );
    let err = run.stderr();
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("WARN") && l.contains("redis cache"))
            .count(),
        1,
        "{why}: one warning: {err}"
    );
    assert!(!err.contains("error:"), "{why}: {err}");
    err
}

#[test]
fn a_redis_that_is_down_stopped_restarted_or_refuses_auth_costs_only_speed() {
    // Nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    reads_survive(&format!("redis://127.0.0.1:{port}/"), "nothing listens");

    // A wrong password: refused, and the password is in no message.
    let server = Server::start(&["--requirepass", "right-horse-battery"]);
    let err = reads_survive(
        &format!("redis://:wrong-staple-secret@127.0.0.1:{}/", server.port),
        "wrong password",
    );
    assert!(!err.contains("wrong-staple-secret"), "{err}");

    // The right password works.
    let p = project();
    let url = format!("redis://:right-horse-battery@127.0.0.1:{}/", server.port);
    assert_eq!(echo(&p, "a", &url, "1").1.outcome(), "miss");
    let (_, run) = echo(&p, "b", &url, "1");
    assert_eq!(run.outcome(), "redis hit");
    assert!(!run.stderr().contains("right-horse-battery"));
    drop(server);

    // Stopped (accepts, never answers): bounded by the timeout, once per host.
    let server = Server::start(&[]);
    let config = plugboard::RedisConfig::new(&server.url()).expect("url");
    let host = p
        .builder()
        .cache_dir(Some(p.path("cache-lib")))
        .redis(Some(config))
        .build()
        .expect("host");
    let conn = host.connection("echo").expect("echo");
    let read = |v: i64| {
        conn.query("value")
            .param("v", Value::Int(v))
            .ttl(Duration::from_secs(3600))
            .fetch()
            .expect("read")
    };
    read(1);
    server.pause(true);
    let started = Instant::now();
    for v in 0..20 {
        assert_eq!(plugboard_tests::int(&read(100 + v), "v"), 100 + v);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "20 reads with a stopped Redis took {took:?}: more than one timeout"
    );
    server.pause(false);
    drop(server);

    // Killed mid-use, then restarted empty on the same port.
    let mut server = Server::start(&[]);
    let url = server.url();
    let p = project();
    let (a, _) = echo(&p, "a", &url, "1");
    server.kill();
    reads_survive(&url, "killed");
    server.restart();
    let (b, run) = echo(&p, "b", &url, "1");
    assert_eq!(run.outcome(), "miss", "a restarted Redis is empty");
    assert_ne!(a, b);
    let (c, run) = echo(&p, "c", &url, "1");
    assert_eq!((run.outcome(), c), ("redis hit", b), "and in use again");
}

#[test]
fn a_full_redis_is_skipped() {
    let server = Server::start(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    let p = project();
    let url = server.url();
    // The generation tokens and the key exist before it fills up.
    assert_eq!(echo(&p, "a", &url, "1").1.outcome(), "miss");
    let mut c = server.client(None);
    let junk = vec![7u8; 100_000];
    for i in 0..1000 {
        if redis::cmd("SET")
            .arg(format!("junk:{i}"))
            .arg(&junk)
            .query::<()>(&mut c)
            .is_err()
        {
            break;
        }
    }
    let run = cli(
        &p,
        "b",
        &url,
        &[
            "query",
            "chinook",
            "select * from Track",
            "--ttl",
            "1h",
            "-v",
            "--format",
            "csv",
        ],
        &[],
    );
    let out = run.ok();
    assert!(out.lines().count() > 3000);
    assert_eq!(run.outcome(), "miss");
    assert!(
        run.stderr().contains("OOM") || run.stderr().contains("maxmemory"),
        "{}",
        run.stderr()
    );
    // Reads of what is there still hit.
    assert_eq!(echo(&p, "c", &url, "1").1.outcome(), "redis hit");
}

/// Eight processes (eight hosts: each its own memory and disk) missing the same key at once
/// run the plugin's read once; the others take what it stored.
#[test]
fn eight_hosts_missing_at_once_read_once() {
    let server = Server::start(&[]);
    let p = project();
    let url = server.url();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let dir = p.path(&format!("cache-{i}"));
            p.command(
                env!("CARGO_BIN_EXE_plugboard-under-test"),
                &[
                    "query",
                    "echo",
                    "value",
                    "-p",
                    "v=1",
                    "-p",
                    "sleep_ms=700",
                    "--ttl",
                    "1h",
                    "-v",
                    "--format",
                    "csv",
                ],
                &[
                    ("PLUGBOARD_CACHE_DIR", &dir.to_string_lossy()),
                    ("PLUGBOARD_CACHE_REDIS", &url),
                    ("PLUGBOARD_CACHE_REDIS_PREFIX", "pbtest"),
                ],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run(c.wait_with_output().expect("wait")))
        .collect();
    let pids: std::collections::BTreeSet<String> = runs
        .iter()
        .map(|r| {
            let out = r.ok();
            out.lines()
                .nth(1)
                .and_then(|l| l.rsplit(',').next())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(pids.len(), 1, "one plugin read for eight hosts: {pids:?}");
    let misses = runs.iter().filter(|r| r.outcome() == "miss").count();
    assert_eq!(misses, 1);
    assert!(
        runs.iter()
            .all(|r| matches!(r.outcome(), "miss" | "redis hit"))
    );
}

/// A host that dies holding the claim to read a key delays the others by at most the
/// claim's expiry (1s here) before one of them reads (2s here).
#[test]
fn a_crashed_holder_s_claim_expires() {
    let server = Server::start(&[]);
    let p = project();
    let url = server.url();
    let args = [
        "query",
        "echo",
        "value",
        "-p",
        "v=1",
        "-p",
        "sleep_ms=2000",
        "--ttl",
        "1h",
        "-v",
        "--format",
        "csv",
    ];
    let env = |host: &str| {
        vec![
            (
                "PLUGBOARD_CACHE_DIR".to_owned(),
                p.path(host).to_string_lossy().into_owned(),
            ),
            ("PLUGBOARD_CACHE_REDIS".to_owned(), url.clone()),
            ("PLUGBOARD_CACHE_REDIS_LOCK".to_owned(), "1s".to_owned()),
        ]
    };
    let bin = env!("CARGO_BIN_EXE_plugboard-under-test");
    let mut holder = p
        .command(bin, &args, &[])
        .envs(env("a"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Until it holds the claim.
    let started = Instant::now();
    while keys(&server, "plugboard:l:*").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no claim appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    holder.kill().expect("kill");
    holder.wait().expect("wait");
    assert_eq!(
        keys(&server, "plugboard:l:*").len(),
        1,
        "the dead holder's claim"
    );
    let started = Instant::now();
    let run = Run(p
        .command(bin, &args, &[])
        .envs(env("b"))
        .output()
        .expect("run"));
    run.ok();
    assert_eq!(run.outcome(), "miss");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2000) && took < Duration::from_millis(4500),
        "waited at most for the claim to expire (1s), then read (2s): {took:?}"
    );
    assert!(keys(&server, "plugboard:l:*").is_empty(), "released");
}

/// What strict invalidation costs a memory hit: one Redis round trip for the generations.
/// Prints the medians (debug build; `bench/run` measures the release build).
#[test]
fn memory_hit_cost_with_redis_configured() {
    let server = Server::start(&[]);
    let p = project();
    let median = |redis: Option<plugboard::RedisConfig>| {
        let host = p
            .builder()
            .cache_dir(None)
            .redis(redis)
            .build()
            .expect("host");
        let conn = host.connection("echo").expect("echo");
        let read = || {
            conn.query("value")
                .param("v", Value::Int(1))
                .ttl(Duration::from_secs(3600))
                .fetch_shared()
                .expect("read")
                .1
        };
        assert_eq!(read(), Outcome::Miss);
        let mut times: Vec<Duration> = (0..300)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(read(), Outcome::MemoryHit);
                t.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    };
    let without = median(None);
    let with = median(Some(
        plugboard::RedisConfig::new(&server.url()).expect("url"),
    ));
    println!("memory hit: {without:?} without Redis, {with:?} with Redis (strict)");
    assert!(with < Duration::from_millis(5), "{with:?}");
}

/// A result past Redis's 512 MB cap for one value (600 MB of random bytes: LZ4 cannot
/// shrink it) is split into chunks of the default size, and another host reads it whole.
#[test]
fn a_600_mb_result_is_chunked() {
    let server = Server::start(&[]);
    let p = project();
    let db = p.path("big.db");
    p.write(
        "secrets.toml",
        &format!("[connections.big]\nurl = \"sqlite:///{}\"\n", db.display()),
    );
    let config = plugboard::RedisConfig::new(&server.url()).expect("url");
    let host = |name: &str| {
        p.builder()
            .cache_dir(Some(p.path(&format!("cache-{name}"))))
            .redis(Some(config.clone()))
            .build()
            .expect("host")
    };
    let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600000) \
               SELECT i, randomblob(1000) AS b FROM n";
    let hour = Duration::from_secs(3600);
    let (a, o) = host("a")
        .connection("big")
        .expect("big")
        .query(sql)
        .ttl(hour)
        .fetch_shared()
        .expect("read");
    assert_eq!(o, Outcome::Miss);
    let chunks = keys(&server, "pbtest:c:*").len() + keys(&server, "plugboard:c:*").len();
    assert!(chunks >= 570, "600 MB in chunks of 1 MiB: {chunks}");
    let (b, o) = host("b")
        .connection("big")
        .expect("big")
        .query(sql)
        .ttl(hour)
        .fetch_shared()
        .expect("read");
    assert_eq!(o, Outcome::RedisHit);
    assert!(a.equals(&b), "the same 600 MB");
}

/// `stale_if_error`: a read that fails serves the last good result, from any tier below
/// memory (disk on the host that stored it, Redis on another), up to that long past its
/// TTL, with a warning; past it, or without the setting, the error.
#[test]
fn stale_if_error_serves_the_last_good_result_for_a_while() {
    let server = Server::start(&[]);
    let p = Project::new(
        &["plugboard_sqlite"],
        "[connections.long]\nurl = \"sqlite:///s.db\"\nstale_if_error = \"1h\"\n\n\
         [connections.short]\nurl = \"sqlite:///s.db\"\nstale_if_error = \"1s\"\n\n\
         [connections.plain]\nurl = \"sqlite:///s.db\"\n",
    );
    // And one for the library (in process, a relative path would be the test's folder).
    let secrets = std::fs::read_to_string(p.path("secrets.toml")).expect("secrets");
    p.write(
        "secrets.toml",
        &format!(
            "{secrets}\n[connections.lib]\nurl = \"sqlite:///{}\"\nstale_if_error = \"1h\"\n",
            p.path("s.db").display()
        ),
    );
    let db = rusqlite::Connection::open(p.path("s.db")).expect("open");
    db.execute_batch("create table t (x int); insert into t values (1);")
        .expect("create");
    let lib = p
        .builder()
        .cache_dir(Some(p.path("cache-lib")))
        .redis(Some(
            plugboard::RedisConfig::new(&server.url()).expect("url"),
        ))
        .build()
        .expect("host");
    let lib_read = || {
        lib.connection("lib")
            .expect("lib")
            .query("select x from t")
            .ttl(Duration::from_secs(1))
            .fetch_shared()
    };
    assert_eq!(lib_read().expect("read").1, Outcome::Miss);
    let url = server.url();
    let read = |host: &str, conn: &str| {
        cli(
            &p,
            host,
            &url,
            &[
                "query",
                conn,
                "select x from t",
                "--ttl",
                "1s",
                "-v",
                "--format",
                "csv",
            ],
            &[],
        )
    };
    for conn in ["long", "short", "plain"] {
        assert_eq!(read("a", conn).outcome(), "miss");
    }
    std::thread::sleep(Duration::from_millis(1200));
    // The source breaks behind plugboard's back: every read of it fails now.
    db.execute_batch("drop table t").expect("drop");
    for host in ["a", "b"] {
        let run = read(host, "long");
        assert_eq!(run.ok(), "x\n1\n", "{}", run.stderr());
        assert_eq!(run.outcome(), "stale hit");
        let err = run.stderr();
        assert!(
            err.contains("WARN") && err.contains("stale_if_error") && err.contains("no such table"),
            "{err}"
        );
    }
    assert_eq!(read("b", "short").outcome(), "stale hit");
    let (df, outcome) = lib_read().expect("the last good result");
    assert_eq!(
        (plugboard_tests::int(&df, "x"), outcome),
        (1, Outcome::StaleHit)
    );
    assert!(read("a", "plain").fails().contains("no such table"));
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        read("a", "short").fails().contains("no such table"),
        "past its 1s"
    );
    assert!(
        read("b", "short").fails().contains("no such table"),
        "past its 1s"
    );
    assert_eq!(read("b", "long").outcome(), "stale hit");
}

/// Refresh-ahead (a long-running host, the library): a memory hit in the last part of its
/// TTL is returned at once and read again in the background, once; the next read gets the
/// new result. A real clock: TTL 2s, refresh in the last 1s.
#[test]
fn refresh_ahead_returns_at_once_and_refreshes_once() {
    let server = Server::start(&[]);
    let p = Project::new(
        &["fixture_echo"],
        "[connections.echo]\ntype = \"echo\"\nrefresh_ahead = \"1s\"\n",
    );
    let host = p
        .builder()
        .cache_dir(Some(p.path("cache-a")))
        .redis(Some(
            plugboard::RedisConfig::new(&server.url()).expect("url"),
        ))
        .build()
        .expect("host");
    let conn = host.connection("echo").expect("echo");
    let read = || {
        let t = Instant::now();
        let (df, outcome) = conn
            .query("value")
            .param("v", Value::Int(1))
            .param("sleep_ms", Value::Int(300))
            .ttl(Duration::from_secs(2))
            .fetch_shared()
            .expect("read");
        (plugboard_tests::int(&df, "reads"), outcome, t.elapsed())
    };
    let (first, outcome, _) = read();
    assert_eq!(outcome, Outcome::Miss);
    let (n, outcome, _) = read();
    assert_eq!(
        (n, outcome),
        (first, Outcome::MemoryHit),
        "2s left: no refresh"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let (n, outcome, took) = read();
    assert_eq!(
        (n, outcome),
        (first, Outcome::MemoryHit),
        "returned at once…"
    );
    assert!(
        took < Duration::from_millis(250),
        "without waiting for the read: {took:?}"
    );
    let (n, _, took) = read();
    assert_eq!(n, first, "…while the one refresh runs");
    assert!(took < Duration::from_millis(250), "{took:?}");
    std::thread::sleep(Duration::from_millis(600));
    let (n, outcome, _) = read();
    assert_eq!(
        (n, outcome),
        (first + 1, Outcome::MemoryHit),
        "the refreshed result, read once"
    );
}

/// The file setting: `[cache]` in `plugins.toml` configures the tier (the environment's
/// URL wins); a URL with a password there, or a bad value, is a one-line error naming the
/// file and key.
#[test]
fn plugins_toml_configures_the_tier_and_refuses_a_password() {
    let server = Server::start(&[]);
    let p = project();
    let plugins = std::fs::read_to_string(p.path("plugins.toml")).expect("plugins.toml");
    p.write(
        "plugins.toml",
        &format!(
            "[cache]\nredis = \"{}\"\nredis_prefix = \"fromfile\"\nredis_timeout = \"200ms\"\n\n{plugins}",
            server.url()
        ),
    );
    let run = |host: &str| {
        let dir = p.path(&format!("cache-{host}"));
        p.cli(
            env!("CARGO_BIN_EXE_plugboard-under-test"),
            &[
                "query", "echo", "value", "-p", "v=1", "--ttl", "1h", "-v", "--format", "csv",
            ],
            &[("PLUGBOARD_CACHE_DIR", &dir.to_string_lossy())],
        )
    };
    assert_eq!(run("a").outcome(), "miss");
    assert_eq!(run("b").outcome(), "redis hit");
    assert_eq!(keys(&server, "fromfile:e:*").len(), 1);
    let stats = p
        .cli(
            env!("CARGO_BIN_EXE_plugboard-under-test"),
            &["cache", "stats"],
            &[],
        )
        .ok();
    assert!(stats.contains("prefix \"fromfile\""), "{stats}");

    // Pub/sub mode from the file: the writes' announcements channel gets a subscriber
    // while the host reads.
    p.write(
        "plugins.toml",
        &format!(
            "[cache]\nredis = \"{}\"\nredis_prefix = \"fromfile\"\n\
             redis_invalidation = \"pubsub\"\nredis_staleness = \"2s\"\n\n{plugins}",
            server.url()
        ),
    );
    let cli = env!("CARGO_BIN_EXE_plugboard-under-test");
    let mut reader = p
        .command(
            cli,
            &[
                "query",
                "echo",
                "value",
                "-p",
                "v=1",
                "-p",
                "sleep_ms=1500",
                "--ttl",
                "1h",
            ],
            &[(
                "PLUGBOARD_CACHE_DIR",
                &p.path("cache-pubsub").to_string_lossy(),
            )],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut c = server.client(None);
    let started = Instant::now();
    loop {
        let subscribers: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("fromfile:inv")
            .query(&mut c)
            .expect("PUBSUB NUMSUB");
        if subscribers.first().is_some_and(|(_, n)| *n == 1) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no subscriber: {subscribers:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(reader.wait().expect("wait").success());

    for (bad, what) in [
        (
            format!("redis = \"redis://:hunter2@127.0.0.1:{}/\"", server.port),
            "holds a password",
        ),
        (
            "redis = \"http://x\"".to_owned(),
            "not a redis:// or rediss:// URL",
        ),
        (
            format!("redis = \"{}\"\nredis_timeout = \"soon\"", server.url()),
            "redis_timeout",
        ),
        (
            format!(
                "redis = \"{}\"\nredis_invalidation = \"eventual\"",
                server.url()
            ),
            "redis_invalidation",
        ),
        (
            format!("redis = \"{}\"\nredis_staleness = \"-1s\"", server.url()),
            "redis_staleness",
        ),
        (
            format!(
                "redis = \"{}\"\nredis_ca = \"missing-ca.pem\"",
                server.url()
            ),
            "missing-ca.pem",
        ),
        (
            format!("redis = \"{}\"\nredis_ca = \"/dev/zero\"", server.url()),
            "/dev/zero is not a file",
        ),
        ("colour = \"blue\"".to_owned(), "colour"),
    ] {
        p.write("plugins.toml", &format!("[cache]\n{bad}\n\n{plugins}"));
        let err = run("c").fails();
        assert!(
            err.contains("plugins.toml") && err.contains(what),
            "{bad}: {err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
}

/// `rediss://` goes through rustls: against a server that speaks no TLS the handshake
/// fails, and the read goes on without Redis (no panic, no error). (A TLS server with a
/// trusted certificate is not tested here.)
#[test]
fn a_tls_url_to_a_plain_server_costs_only_speed() {
    let server = Server::start(&[]);
    reads_survive(
        &format!("rediss://127.0.0.1:{}/", server.port),
        "TLS to a plain server",
    );
}

/// How many times the server ran `command` (INFO commandstats).
fn calls(server: &Server, command: &str) -> u64 {
    let mut c = server.client(None);
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut c)
        .expect("INFO");
    let tag = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&tag))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// Pub/sub mode: a memory hit asks Redis nothing; a write on one host is announced and
/// the other's next read does not serve the pre-write result; a token changed without an
/// announcement (a lost message) is seen within the staleness window, not later.
#[test]
fn pubsub_mode_hits_memory_without_redis_and_stays_within_its_window() {
    let server = Server::start(&[]);
    let p = db_project();
    let mut config = plugboard::RedisConfig::new(&server.url()).expect("url");
    config.invalidation = plugboard::Invalidation::PubSub;
    config.staleness = Duration::from_millis(1500);
    let (a, b) = (db_host(&p, "a", &config), db_host(&p, "b", &config));
    exec(&a, "create table t (x int)");
    let count = count_t;
    assert_eq!(count(&a), (0, Outcome::Miss));
    assert_eq!(count(&b), (0, Outcome::RedisHit));
    assert_eq!(count(&b), (0, Outcome::MemoryHit));

    // Memory hits within the window: no generation fetched (once b's subscription is
    // up and it holds the tokens).
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(count(&b), (0, Outcome::MemoryHit));
    let before = calls(&server, "mget");
    for _ in 0..200 {
        assert_eq!(count(&b), (0, Outcome::MemoryHit));
    }
    assert_eq!(calls(&server, "mget"), before, "memory hits asked Redis");

    // A write on a, announced: b's next read is fresh (after the announcement's
    // delivery, which takes far less than the window).
    exec(&a, "insert into t values (1)");
    let started = Instant::now();
    loop {
        let (n, outcome) = count(&b);
        if n == 1 {
            assert!(matches!(outcome, Outcome::Miss | Outcome::RedisHit));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "the announced write was not seen within the window"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let seen = started.elapsed();
    assert!(seen < Duration::from_millis(1000), "{seen:?}");
    // The writer itself never serves its pre-write result.
    exec(&a, "insert into t values (2)");
    assert_eq!(count(&a).0, 2, "the writing host is strict");

    // A token replaced without an announcement: b may keep the old key for at most the
    // window. The data changes behind plugboard's back (no invalidation at all), then
    // every generation token is replaced directly.
    let started = Instant::now();
    while count(&b).0 != 2 {
        assert!(started.elapsed() < Duration::from_secs(3));
        std::thread::sleep(Duration::from_millis(5));
    }
    let plain = p
        .builder()
        .cache_dir(None)
        .redis(None)
        .build()
        .expect("host without redis");
    let mut c = server.client(None);
    // Past the window of what b holds now, so that it fetches the tokens afresh.
    std::thread::sleep(Duration::from_millis(1600));
    let fetched = Instant::now();
    assert_eq!(count(&b), (2, Outcome::MemoryHit));
    exec(&plain, "insert into t values (3)");
    for name in keys(&server, "pbtest:g:*")
        .into_iter()
        .chain(keys(&server, "plugboard:g:*"))
    {
        let _: () = redis::cmd("SET")
            .arg(&name)
            .arg("replaced-without-an-announcement")
            .query(&mut c)
            .expect("SET");
    }
    let (n, outcome) = count(&b);
    if fetched.elapsed() < Duration::from_millis(1000) {
        assert_eq!(
            (n, outcome),
            (2, Outcome::MemoryHit),
            "within the window, b keeps its tokens"
        );
    }
    std::thread::sleep(Duration::from_millis(1600).saturating_sub(fetched.elapsed()));
    assert_eq!(
        count(&b),
        (3, Outcome::Miss),
        "past the window, b fetches the tokens again"
    );
}

/// What pub/sub mode saves a memory hit, against strict mode, in the same run (debug
/// build; `bench/run` measures the release build). Only printed: the counts of MGETs are
/// what is checked.
#[test]
fn memory_hit_cost_in_both_invalidation_modes() {
    let server = Server::start(&[]);
    let p = project();
    let median = |invalidation: plugboard::Invalidation| {
        let mut config = plugboard::RedisConfig::new(&server.url()).expect("url");
        config.invalidation = invalidation;
        let host = p
            .builder()
            .cache_dir(None)
            .redis(Some(config))
            .build()
            .expect("host");
        let conn = host.connection("echo").expect("echo");
        let read = || {
            conn.query("value")
                .param("v", Value::Int(1))
                .ttl(Duration::from_secs(3600))
                .fetch_shared()
                .expect("read")
                .1
        };
        read();
        // Until a pub/sub host's subscription is up and it holds the tokens.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(read(), Outcome::MemoryHit);
        let before = calls(&server, "mget");
        let mut times: Vec<Duration> = (0..300)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(read(), Outcome::MemoryHit);
                t.elapsed()
            })
            .collect();
        times.sort();
        (times[times.len() / 2], calls(&server, "mget") - before)
    };
    let (strict, strict_mgets) = median(plugboard::Invalidation::Strict);
    let (pubsub, pubsub_mgets) = median(plugboard::Invalidation::PubSub);
    println!("memory hit with Redis: strict {strict:?}, pubsub {pubsub:?}");
    assert_eq!(strict_mgets, 300, "strict: one MGET per memory hit");
    assert!(
        pubsub_mgets <= 2,
        "pubsub: tokens held for the window (1s): {pubsub_mgets}"
    );
}

/// `cache clear NAME` removes that connection's entries from Redis (every host's), and
/// no other connection's.
#[test]
fn cache_clear_name_removes_its_entries_from_redis() {
    let server = Server::start(&[]);
    let p = project();
    let url = server.url();
    echo(&p, "a", &url, "1");
    echo(&p, "b", &url, "2");
    cli(
        &p,
        "a",
        &url,
        &[
            "query",
            "chinook",
            "select count(*) from Artist",
            "--ttl",
            "1h",
        ],
        &[],
    )
    .ok();
    assert_eq!(keys(&server, "pbtest:e:*").len(), 3);
    let cleared = cli(&p, "b", &url, &["cache", "clear", "echo"], &[]).ok();
    assert!(
        cleared.contains("2 cached result") && cleared.contains("redis"),
        "{cleared}"
    );
    assert_eq!(keys(&server, "pbtest:e:*").len(), 1, "chinook's stays");
    let stats = cli(&p, "a", &url, &["cache", "stats"], &[]).ok();
    let redis_part = stats.split("in redis").next().unwrap_or_default();
    assert!(
        redis_part.contains("chinook") && !redis_part.contains("echo"),
        "{stats}"
    );
    let (_, run) = echo(&p, "a", &url, "1");
    assert_eq!(run.outcome(), "miss");
}

/// `rediss://` against a real TLS server: with its CA configured, hosts share results over
/// TLS (and the password stays out of every message); with a CA that did not sign it, the
/// handshake fails and reads go on without Redis.
#[test]
fn tls_with_a_trusted_ca_shares_results_and_an_unknown_one_costs_only_speed() {
    let certs = plugboard_tests::pg_tls::Certs::new();
    let (cert, key) = certs.issue("redis", "127.0.0.1", "IP:127.0.0.1");
    let server = Server::start_tls(
        &cert,
        &key,
        &certs.path("ca.pem"),
        &["--requirepass", "tls-hunter2"],
    );
    let p = project();
    let url = format!("rediss://:tls-hunter2@127.0.0.1:{}/", server.port);
    let ca = certs.path("ca.pem");
    let ca = ca.to_string_lossy();
    let read = |host: &str, ca: &str| {
        let run = cli(
            &p,
            host,
            &url,
            &[
                "query", "echo", "value", "-p", "v=5", "--ttl", "1h", "-v", "--format", "csv",
            ],
            &[("PLUGBOARD_CACHE_REDIS_CA", ca)],
        );
        let out = run.ok();
        assert!(
            out.lines().nth(1).is_some_and(|l| l.starts_with("5,")),
            "{out}"
        );
        assert!(!run.stderr().contains("tls-hunter2"), "{}", run.stderr());
        run
    };
    assert_eq!(read("a", &ca).outcome(), "miss");
    let run = read("b", &ca);
    assert_eq!(run.outcome(), "redis hit", "{}", run.stderr());
    assert!(!run.stderr().contains("WARN"), "{}", run.stderr());

    // A CA of its own that did not sign the server's certificate.
    let other = plugboard_tests::pg_tls::Certs::new();
    let run = read("c", &other.path("ca.pem").to_string_lossy());
    assert_eq!(run.outcome(), "miss");
    let err = run.stderr();
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("WARN") && l.contains("redis cache"))
            .count(),
        1,
        "{err}"
    );

    // A CA file that is not one: a one-line error naming the setting and the file.
    let bogus = p.write("not-a-ca.pem", "hello");
    let run = cli(
        &p,
        "d",
        &url,
        &["query", "echo", "value", "--ttl", "1h"],
        &[("PLUGBOARD_CACHE_REDIS_CA", &bogus.to_string_lossy())],
    );
    let err = run.fails();
    assert!(
        err.contains("PLUGBOARD_CACHE_REDIS_CA") && err.contains("not-a-ca.pem"),
        "{err}"
    );
    assert!(!err.contains("tls-hunter2"), "{err}");
}

/// Redis killed (SIGKILL) in the middle of sending an entry's chunks: the read goes to the
/// source and returns its rows, with one warning and no error.
#[test]
fn redis_killed_in_the_middle_of_a_read_costs_only_speed() {
    let server = Server::start(&[]);
    let p = project();
    let url = server.url();
    // About 20 MB of text that LZ4 cannot shrink much, in 256 KiB chunks.
    let sql = "with recursive n(i) as (select 1 union all select i + 1 from n where i < 200000) \
               select i, hex(randomblob(48)) as r from n";
    let env = [("PLUGBOARD_CACHE_REDIS_CHUNK_BYTES", "256KiB")];
    let read = |host: &str, url: &str| {
        cli(
            &p,
            host,
            url,
            &[
                "query",
                "chinook",
                sql,
                "--ttl",
                "1h",
                "-v",
                "--format",
                "csv",
                "-o",
                &p.path(&format!("{host}.csv")).to_string_lossy(),
            ],
            &env,
        )
    };
    let run = read("a", &url);
    run.ok();
    assert_eq!(run.outcome(), "miss");
    assert!(keys(&server, "pbtest:c:*").len() > 20, "chunked");

    let server = std::sync::Arc::new(server);
    let victim = std::sync::Arc::clone(&server);
    let relay = plugboard_tests::redis_server::Relay::start(server.port, 3 << 20, move || {
        victim.kill_now()
    });
    let run = read("b", &relay.url());
    run.ok();
    assert_eq!(run.outcome(), "miss", "{}", run.stderr());
    let relayed = relay.relayed.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        relayed > 3 << 20,
        "the kill came mid-entry: {relayed} bytes"
    );
    let err = run.stderr();
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("WARN") && l.contains("redis cache"))
            .count(),
        1,
        "{err}"
    );
    let rows = std::fs::read_to_string(p.path("b.csv")).expect("b.csv");
    assert_eq!(rows.lines().count(), 200_001, "every row, from the source");
    assert!(
        rows.lines()
            .nth(200_000)
            .is_some_and(|l| l.starts_with("200000,"))
    );
}

/// A claim is extended while its holder reads, however long: with a 300ms claim and a
/// 2s read, a second host waits for the result instead of reading too.
#[test]
fn a_long_read_keeps_its_claim() {
    let server = Server::start(&[]);
    let p = project();
    let url = server.url();
    let bin = env!("CARGO_BIN_EXE_plugboard-under-test");
    let spawn = |host: &str| {
        p.command(
            bin,
            &[
                "query",
                "echo",
                "value",
                "-p",
                "v=1",
                "-p",
                "sleep_ms=2000",
                "--ttl",
                "1h",
                "-v",
                "--format",
                "csv",
            ],
            &[
                ("PLUGBOARD_CACHE_DIR", &p.path(host).to_string_lossy()),
                ("PLUGBOARD_CACHE_REDIS", &url),
                ("PLUGBOARD_CACHE_REDIS_LOCK", "300ms"),
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn")
    };
    let holder = spawn("a");
    let started = Instant::now();
    while keys(&server, "plugboard:l:*").is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "no claim");
        std::thread::sleep(Duration::from_millis(10));
    }
    let waiter = spawn("b");
    let runs = [holder, waiter].map(|c| Run(c.wait_with_output().expect("wait")));
    let pid = |r: &Run| {
        r.ok()
            .lines()
            .nth(1)
            .and_then(|l| l.rsplit(',').next())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(runs[0].outcome(), "miss");
    assert_eq!(runs[1].outcome(), "redis hit", "{}", runs[1].stderr());
    assert_eq!(pid(&runs[0]), pid(&runs[1]), "one plugin read");
    assert!(keys(&server, "plugboard:l:*").is_empty(), "released");
}

//! The result cache with real threads and a real clock, against the real echo plugin.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use plugboard::{Connection, Outcome};
use plugboard_tests::{Project, int};

fn project() -> Project {
    Project::new(
        &["fixture_echo"],
        "[connections.e]\ntype = \"echo\"\n\n[connections.f]\ntype = \"echo\"\nttl = \"300ms\"\n",
    )
}

/// How many reads this connection's plugin instance has served (itself included).
fn reads(c: &Connection) -> i64 {
    let df = c.query("count").ttl(Duration::ZERO).fetch().expect("count");
    int(&df, "reads")
}

fn value(c: &Connection, v: i64) -> (i64, Outcome) {
    let (df, outcome) = c
        .query("value")
        .param("v", v)
        .fetch_shared()
        .expect("value");
    (int(&df, "reads"), outcome)
}

#[test]
fn a_hit_does_not_call_the_plugin() {
    let host = project().host();
    let c = host.connection("e").expect("connect");
    let (first, o1) = value(&c, 7);
    let (second, o2) = value(&c, 7);
    assert_eq!((o1, o2), (Outcome::Miss, Outcome::MemoryHit));
    assert_eq!(first, second, "the same result, served from the cache");
    assert_eq!(
        reads(&c),
        2,
        "one `value` read and this count: the hit never reached the plugin"
    );
    let (_, o3) = value(&c, 8);
    assert_eq!(o3, Outcome::Miss, "another param is another key");
    // Another handle to the same connection shares the cache.
    let again = host.connection("e").expect("again");
    assert_eq!(value(&again, 7).1, Outcome::MemoryHit);
}

#[test]
fn entries_expire_after_their_ttl() {
    let host = project().host();
    let c = host.connection("e").expect("connect");
    let read = |ttl| {
        c.query("value")
            .param("v", 1)
            .ttl(ttl)
            .fetch_shared()
            .expect("read")
            .1
    };
    assert_eq!(read(Duration::from_millis(300)), Outcome::Miss);
    assert_eq!(read(Duration::from_millis(300)), Outcome::MemoryHit);
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(read(Duration::from_millis(300)), Outcome::Miss, "expired");

    // The connection's own `ttl` is the default.
    let f = host.connection("f").expect("f");
    assert_eq!(value(&f, 1).1, Outcome::Miss);
    assert_eq!(value(&f, 1).1, Outcome::MemoryHit);
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(value(&f, 1).1, Outcome::Miss);
}

#[test]
fn thirty_two_threads_one_read() {
    let host = project().host();
    let c = host.connection("e").expect("connect");
    let barrier = Arc::new(Barrier::new(32));
    let results: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|_| {
                let c = c.clone();
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    barrier.wait();
                    let df = c
                        .query("value")
                        .param("v", 1)
                        .param("sleep_ms", 200)
                        .fetch()
                        .expect("read");
                    int(&df, "reads")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(
        results.iter().all(|&n| n == 1),
        "every thread got the one read: {results:?}"
    );
    assert_eq!(
        reads(&c),
        2,
        "exactly one plugin read for 32 callers (plus this count)"
    );
}

#[test]
fn errors_are_not_cached() {
    let host = project().host();
    let c = host.connection("e").expect("connect");
    assert!(c.query("fail").fetch().is_err());
    assert!(c.query("fail").fetch().is_err());
    assert_eq!(reads(&c), 3, "both failing reads reached the plugin");
}

#[test]
fn reset_and_writes_drop_cached_results() {
    let host = project().host();
    let c = host.connection("e").expect("connect");
    assert_eq!(value(&c, 1).1, Outcome::Miss);
    assert_eq!(value(&c, 1).1, Outcome::MemoryHit);
    c.reset();
    assert_eq!(
        value(&c, 1).1,
        Outcome::Miss,
        "reset drops the connection's results"
    );
    assert_eq!(reads(&c), 2, "and reconnects: a fresh plugin connection");
}

/// A project whose echo connections count connects and calls under their own tag.
fn tagged(tag: &str, extra: &str) -> Project {
    Project::new(
        &["fixture_echo"],
        &format!("[connections.t]\ntype = \"echo\"\ntag = \"{tag}\"\n{extra}\n"),
    )
}

/// `(connects, calls)` for the connection's tag, across reconnects.
fn counters(c: &Connection) -> (i64, i64) {
    let df = c
        .query("counters")
        .ttl(Duration::ZERO)
        .fetch()
        .expect("counters");
    (int(&df, "connects"), int(&df, "calls"))
}

#[test]
fn a_retryable_error_resets_and_retries() {
    let host = tagged("flaky-2", "fail_times = 2").host();
    let c = host.connection("t").expect("connect");
    let df = c.query("flaky").fetch().expect("third attempt succeeds");
    assert_eq!(int(&df, "attempts"), 3, "one result, from the third call");
    assert_eq!(
        counters(&c),
        (3, 3),
        "3 calls; each failure reset the connection (1 connect + 2 reconnects)"
    );
}

#[test]
fn a_connection_that_stays_stale_fails_after_three_attempts() {
    let host = tagged("stale-3", "").host();
    let c = host.connection("t").expect("connect");
    let started = std::time::Instant::now();
    let err = c.query("stale").fetch().expect_err("always fails");
    assert_eq!(err.attempts(), Some(3));
    let text = err.to_string();
    assert!(
        text.contains("after 3 attempts") && text.contains("(call 3)"),
        "{text}"
    );
    // Waits of 50 ms then 100 ms, each jittered into its upper half.
    assert!(
        started.elapsed() >= Duration::from_millis(75),
        "backoff 25–50 ms then 50–100 ms"
    );
    assert_eq!(counters(&c).1, 3);
}

#[test]
fn retries_are_configurable_per_connection() {
    let more = tagged(
        "flaky-4",
        "fail_times = 4\nretry_attempts = 5\nretry_backoff = \"1ms\"",
    );
    let c = more.host().connection("t").expect("connect");
    let df = c.query("flaky").fetch().expect("fifth attempt succeeds");
    assert_eq!(int(&df, "attempts"), 5);

    let once = tagged("stale-1", "retry_attempts = 1");
    let c = once.host().connection("t").expect("connect");
    let err = c.query("stale").fetch().expect_err("fails");
    assert_eq!(err.attempts(), Some(1));
    assert_eq!(
        counters(&c),
        (2, 1),
        "no retry; the retryable error still reset it"
    );

    let bad = tagged("bad", "retry_attempts = 0");
    let err = bad.host().connection("t").expect_err("invalid");
    assert!(
        err.to_string()
            .contains("`retry_attempts`: expected a whole number from 1 to 100, got 0"),
        "{err}"
    );
}

#[test]
fn a_non_retryable_error_fails_at_once_without_a_reset() {
    let host = tagged("plain-fail", "").host();
    let c = host.connection("t").expect("connect");
    let err = c.query("fail").fetch().expect_err("query error");
    assert_eq!(err.attempts(), Some(1));
    assert!(!err.to_string().contains("attempts"), "{err}");
    assert_eq!(counters(&c).0, 1, "the connection was kept");
}

#[test]
fn connection_ttl_reconnects_on_the_next_use() {
    let host = tagged("conn-ttl", "connection_ttl = \"300ms\"").host();
    let c = host.connection("t").expect("connect");
    assert_eq!(counters(&c).0, 1);
    assert_eq!(counters(&c).0, 1, "within the TTL the connection is reused");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(counters(&c).0, 2, "after it, the next use reconnected");
}

#[test]
fn concurrent_first_uses_build_one_connection() {
    let host = tagged("concurrent-connect", "").host();
    let barrier = Barrier::new(16);
    let connections: Vec<Connection> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    host.connection("t").expect("connect")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for c in &connections {
        assert_eq!(counters(c).0, 1, "one plugin connection for 16 first uses");
    }
}

#[test]
fn keys_cover_params_options_limits_secrets_and_the_connection() {
    let p = Project::new(
        &["fixture_echo"],
        "[connections.a]\ntype = \"echo\"\ntoken = \"one\"\n\n[connections.b]\ntype = \"echo\"\ntoken = \"one\"\n",
    );
    let host = p.host();
    let a = host.connection("a").expect("a");
    let read = |c: &Connection, f: &dyn Fn(plugboard::Read<'_>) -> plugboard::Read<'_>| {
        f(c.query("value")).fetch_shared().expect("read").1
    };
    assert_eq!(read(&a, &|r| r.param("v", 1).param("w", 2)), Outcome::Miss);
    assert_eq!(
        read(&a, &|r| r.param("w", 2).param(":v", 1)),
        Outcome::MemoryHit,
        "parameter order and sigils do not change the key"
    );
    assert_eq!(read(&a, &|r| r.param("v", 1).param("w", 3)), Outcome::Miss);
    assert_eq!(
        read(&a, &|r| r.param("v", 1).param("w", "2")),
        Outcome::Miss,
        "a text \"2\" is not the integer 2"
    );
    assert_eq!(
        read(&a, &|r| r.param("v", 1).param("w", 2).limit(5)),
        Outcome::Miss
    );
    assert_eq!(
        read(&a, &|r| r.param("v", 1).param("w", 2).option("x", true)),
        Outcome::Miss
    );

    // Same name, another secret: another connection, another key.
    let other = host
        .connection_with("a", plugboard::ConnectOptions::new().set("token", "two"))
        .expect("a with another token");
    assert_eq!(
        read(&other, &|r| r.param("v", 1).param("w", 2)),
        Outcome::Miss
    );

    // Same SQL on two connections never shares a result.
    let b = host.connection("b").expect("b");
    let config = |c: &Connection| {
        let df = c.query("config").fetch().expect("config");
        df.column("config")
            .expect("config")
            .str()
            .expect("str")
            .get(0)
            .map(str::to_owned)
    };
    assert_eq!(config(&a), config(&b), "identical configs...");
    assert_eq!(
        read(&b, &|r| r.param("v", 1).param("w", 2)),
        Outcome::Miss,
        "...but different connections"
    );
}

/// `(reads, pid)` of a `value` read and where it came from.
fn value_with(c: &Connection, v: i64, ttl: Duration, refresh: bool) -> ((i64, i64), Outcome) {
    let (df, outcome) = c
        .query("value")
        .param("v", v)
        .ttl(ttl)
        .refresh(refresh)
        .fetch_shared()
        .expect("value");
    ((int(&df, "reads"), int(&df, "pid")), outcome)
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_new_host_finds_the_result_on_disk() {
    let p = project();
    let first = p.host();
    let a = first.connection("e").expect("connect");
    let (stored, o) = value_with(&a, 1, HOUR, false);
    assert_eq!(o, Outcome::Miss);
    assert_eq!(
        p.cache_entries().len(),
        1,
        "a read with a TTL is stored on disk"
    );
    value(&a, 2); // no TTL: memory only
    assert_eq!(p.cache_entries().len(), 1);

    // A second host is what a second process sees: an empty memory tier.
    let second = p.host();
    let b = second.connection("e").expect("connect");
    let (got, o) = value_with(&b, 1, HOUR, false);
    assert_eq!((got, o), (stored, Outcome::DiskHit));
    assert_eq!(reads(&b), 1, "the disk hit never reached the plugin");
    assert_eq!(value_with(&b, 1, HOUR, false).1, Outcome::MemoryHit);
    let stats = second.cache_stats();
    assert_eq!(stats.disk.expect("disk tier").connections["e"].entries, 1);
    assert_eq!(stats.memory.connections["e"].entries, 1);

    // --refresh reads again and replaces the entry in both tiers.
    let (fresh, o) = value_with(&b, 1, HOUR, true);
    assert_eq!(o, Outcome::Miss);
    assert_ne!(fresh, stored);
    let third = p.host();
    let c = third.connection("e").expect("connect");
    assert_eq!(value_with(&c, 1, HOUR, false), (fresh, Outcome::DiskHit));

    // A zero TTL is no caching at all.
    value_with(&c, 9, Duration::ZERO, false);
    assert_eq!(p.cache_entries().len(), 1);
}

#[test]
fn disk_entries_expire() {
    let p = project();
    let a = p.host().connection("e").expect("connect");
    value_with(&a, 1, Duration::from_millis(400), false);
    let b = p.host().connection("e").expect("connect");
    assert_eq!(
        value_with(&b, 1, Duration::from_millis(400), false).1,
        Outcome::DiskHit
    );
    std::thread::sleep(Duration::from_millis(500));
    let c = p.host().connection("e").expect("connect");
    assert_eq!(
        value_with(&c, 1, Duration::from_millis(400), false).1,
        Outcome::Miss
    );
    // The entry was stored with a 1 h TTL, but this reader accepts 100 ms at most.
    value_with(&c, 2, HOUR, false);
    std::thread::sleep(Duration::from_millis(150));
    let d = p.host().connection("e").expect("connect");
    assert_eq!(
        value_with(&d, 2, Duration::from_millis(100), false).1,
        Outcome::Miss
    );
}

#[test]
fn reset_drops_the_results_in_both_tiers() {
    let p = project();
    let host = p.host();
    let a = host.connection("e").expect("connect");
    value_with(&a, 1, HOUR, false);
    let f = host.connection("f").expect("f");
    value_with(&f, 1, HOUR, false);
    assert_eq!(p.cache_entries().len(), 2);
    a.reset();
    assert_eq!(p.cache_entries().len(), 1, "only e's entry went");
    assert_eq!(value_with(&a, 1, HOUR, false).1, Outcome::Miss);
    let other = p.host().connection("f").expect("f");
    assert_eq!(value_with(&other, 1, HOUR, false).1, Outcome::DiskHit);

    let cleared = host.clear_cache(None).expect("clear");
    assert_eq!((cleared.memory, cleared.disk.entries), (2, 2));
    assert!(p.cache_entries().is_empty());
}

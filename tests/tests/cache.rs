//! The result cache with real threads and a real clock, against the real echo plugin.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use plugboard::{Connection, Outcome};
use plugboard_tests::Project;

fn project() -> Project {
    Project::new(
        &["fixture_echo"],
        "[connections.e]\ntype = \"echo\"\n\n[connections.f]\ntype = \"echo\"\nttl = \"300ms\"\n",
    )
}

/// How many reads this connection's plugin instance has served (itself included).
fn reads(c: &Connection) -> i64 {
    let df = c.query("count").ttl(Duration::ZERO).fetch().expect("count");
    df.column("reads")
        .expect("reads")
        .i64()
        .expect("i64")
        .get(0)
        .expect("value")
}

fn value(c: &Connection, v: i64) -> (i64, Outcome) {
    let (df, outcome) = c
        .query("value")
        .param("v", v)
        .fetch_shared()
        .expect("value");
    (
        df.column("reads")
            .expect("reads")
            .i64()
            .expect("i64")
            .get(0)
            .expect("n"),
        outcome,
    )
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
                    df.column("reads")
                        .expect("reads")
                        .i64()
                        .expect("i64")
                        .get(0)
                        .expect("n")
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

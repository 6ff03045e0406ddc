//! The disk cache through the real CLI: separate processes sharing, racing, and recovering
//! from damaged entries.

use std::time::Duration;

use plugboard_tests::{Project, Run, chinook, cli};

fn project() -> Project {
    Project::new(
        &["plugboard_sqlite", "fixture_echo"],
        &format!(
            "[connections.echo]\ntype = \"echo\"\n\n\
             [connections.other]\ntype = \"echo\"\n\n\
             [connections.db]\nurl = \"sqlite:///w.db\"\n\n\
             [connections.chinook]\nurl = \"sqlite:///{}?mode=ro\"\nttl = \"1h\"\n",
            chinook().display()
        ),
    )
}

/// Runs `query echo value -p v=V` and returns `(pid of the process that read it, run)`.
fn echo_value(p: &Project, v: &str, extra: &[&str]) -> (String, Run) {
    let param = format!("v={v}");
    let mut args = vec![
        "query", "echo", "value", "-p", &param, "-v", "--format", "csv",
    ];
    args.extend_from_slice(extra);
    let run = p.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &args, &[]);
    let out = run.ok();
    let row = out.lines().nth(1).unwrap_or_default().to_owned();
    let pid = row.rsplit(',').next().unwrap_or_default().to_owned();
    assert!(!pid.is_empty(), "no pid in {out:?}");
    (pid, run)
}

#[test]
fn two_processes_share_a_disk_entry_until_its_ttl() {
    let p = project();
    let (first, run) = echo_value(&p, "1", &["--ttl", "1h"]);
    assert_eq!(run.outcome(), "miss");
    let (second, run) = echo_value(&p, "1", &["--ttl", "1h"]);
    assert_eq!(run.outcome(), "disk hit");
    assert_eq!(second, first, "served what the first process read");
    let log = run.stderr();
    assert!(
        log.contains("read \"echo\": disk hit, 1 rows × 3 columns in "),
        "-v says where the result came from and how long it took: {log}"
    );

    // Another param is another key; a read without a TTL is not cached across runs.
    assert_eq!(echo_value(&p, "2", &["--ttl", "1h"]).1.outcome(), "miss");
    assert_eq!(echo_value(&p, "3", &[]).1.outcome(), "miss");
    assert_eq!(echo_value(&p, "3", &[]).1.outcome(), "miss");

    // After the TTL the next process reads again.
    let (a, _) = echo_value(&p, "4", &["--ttl", "1s"]);
    let (b, run) = echo_value(&p, "4", &["--ttl", "1s"]);
    assert_eq!((run.outcome(), &b), ("disk hit", &a));
    std::thread::sleep(Duration::from_millis(1100));
    let (c, run) = echo_value(&p, "4", &["--ttl", "1s"]);
    assert_eq!(run.outcome(), "miss");
    assert_ne!(c, a);

    // --refresh reads again and replaces the entry.
    let (d, run) = echo_value(&p, "1", &["--ttl", "1h", "--refresh"]);
    assert_eq!(run.outcome(), "miss");
    assert_ne!(d, first);
    let (e, run) = echo_value(&p, "1", &["--ttl", "1h"]);
    assert_eq!((run.outcome(), e), ("disk hit", d));
}

#[test]
fn damaged_entries_are_misses_and_are_replaced() {
    let p = project();
    let (first, _) = echo_value(&p, "1", &["--ttl", "1h"]);
    let entries = p.cache_entries();
    assert_eq!(entries.len(), 1);
    let path = &entries[0];
    let good = std::fs::read(path).expect("read entry");

    let mut damages: Vec<(&str, Vec<u8>)> = vec![
        ("truncated to half", good[..good.len() / 2].to_vec()),
        ("truncated inside the header", good[..40].to_vec()),
        ("empty", Vec::new()),
    ];
    for at in [3, 20, good.len() / 2, good.len() - 3] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        damages.push(("a flipped bit", bad));
    }
    let mut last = first;
    for (what, bytes) in damages {
        std::fs::write(path, &bytes).expect("damage the entry");
        let (pid, run) = echo_value(&p, "1", &["--ttl", "1h"]);
        assert_eq!(run.outcome(), "miss", "{what}: a miss, not an error");
        assert_ne!(pid, last, "{what}: read again");
        assert!(
            run.stderr().contains("ignoring damaged entry"),
            "{what}: the damage is reported: {}",
            run.stderr()
        );
        let (again, run) = echo_value(&p, "1", &["--ttl", "1h"]);
        assert_eq!(
            (run.outcome(), &again),
            ("disk hit", &pid),
            "{what}: the entry was replaced"
        );
        last = pid;
    }
}

/// The header fields a forger rewrites (see `host/src/cache/disk.rs`): the header's length,
/// the payload's length and xxh3-128, and the header's own xxh3-64.
const H_LEN: usize = 12;
const H_PAYLOAD_LEN: usize = 32;
const H_CHECKSUM: usize = 40;
const H_SUM: usize = 100;

/// `entry` with its payload changed by `forge` and every checksum recomputed, as someone
/// who can write the cache folder could: xxh3 is not keyed.
fn forged(entry: &[u8], forge: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let header_len = u32::from_le_bytes(entry[H_LEN..H_LEN + 4].try_into().expect("len")) as usize;
    let (mut header, mut payload) = (entry[..header_len].to_vec(), entry[header_len..].to_vec());
    forge(&mut payload);
    header[H_PAYLOAD_LEN..H_PAYLOAD_LEN + 8].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let sum = xxhash_rust::xxh3::xxh3_128(&payload);
    header[H_CHECKSUM..H_CHECKSUM + 16].copy_from_slice(&sum.to_le_bytes());
    header[H_SUM..H_SUM + 8].fill(0);
    let sum = xxhash_rust::xxh3::xxh3_64(&header);
    header[H_SUM..H_SUM + 8].copy_from_slice(&sum.to_le_bytes());
    [header, payload].concat()
}

/// A change to an entry's payload.
type Forgery<'a> = Box<dyn FnOnce(&mut Vec<u8>) + 'a>;

/// A cache entry forged with valid checksums but arrays that lie about their buffers: the
/// host must not read past them (before the check, a debug build aborted here and a release
/// build read out of bounds). Each forgery is a miss with the source's rows, reported.
#[test]
fn forged_entries_with_valid_checksums_are_misses_not_crashes() {
    let p = project();
    let query = || {
        let run = cli!(
            p,
            [
                "query",
                "chinook",
                "select Name, Composer from Track where TrackId = 1",
                "-v",
                "--format",
                "csv"
            ]
        );
        (run.ok(), run.outcome(), run.stderr())
    };
    let (want, outcome, _) = query();
    assert_eq!(outcome, "miss");
    assert!(
        want.contains("For Those About To Rock (We Salute You)"),
        "{want}"
    );
    assert_eq!(query().1, "disk hit");
    let path = p.cache_entries().remove(0);
    let good = std::fs::read(&path).expect("entry");
    // The view of the track's name (39 bytes, too long to sit inline): length, prefix,
    // buffer index, offset.
    let name = b"For Those About To Rock (We Salute You)";
    let mut view = (name.len() as u32).to_le_bytes().to_vec();
    view.extend_from_slice(&name[..4]);
    let at = |payload: &[u8]| {
        let found: Vec<usize> = payload
            .windows(8)
            .enumerate()
            .filter(|(_, w)| *w == view.as_slice())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(found.len(), 1, "one view of the name in the payload");
        found[0]
    };
    let forgeries: Vec<(&str, Forgery<'_>)> = vec![
        (
            "a view past its data buffer",
            Box::new(|p: &mut Vec<u8>| {
                let v = at(p);
                p[v + 12..v + 16].copy_from_slice(&0x0fff_0000u32.to_le_bytes());
            }),
        ),
        (
            "a view into a buffer that is not there",
            Box::new(|p: &mut Vec<u8>| {
                let v = at(p);
                p[v + 8..v + 12].copy_from_slice(&7u32.to_le_bytes());
            }),
        ),
        (
            "a view longer than its data",
            Box::new(|p: &mut Vec<u8>| {
                let v = at(p);
                p[v..v + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
            }),
        ),
        (
            "text that is not UTF-8",
            Box::new(|p: &mut Vec<u8>| {
                let text = p
                    .windows(name.len())
                    .position(|w| w == name)
                    .expect("the name's bytes");
                p[text + 10] = 0xff;
            }),
        ),
    ];
    for (what, forge) in forgeries {
        std::fs::write(&path, forged(&good, forge)).expect("forge the entry");
        let (got, outcome, log) = query();
        assert_eq!(
            (got.as_str(), outcome),
            (want.as_str(), "miss"),
            "{what}: {log}"
        );
        assert!(
            log.contains("ignoring damaged entry"),
            "{what}: reported: {log}"
        );
        assert_eq!(query().1, "disk hit", "{what}: the entry was replaced");
    }
    // And the untouched entry, with its checksums recomputed, is still a hit: the check
    // refuses forgeries, not entries.
    std::fs::write(&path, forged(&good, |_| {})).expect("rewrite the entry");
    assert_eq!(query().1, "disk hit");
}

#[test]
fn the_byte_bound_evicts_the_oldest_entries() {
    let p = project();
    echo_value(&p, "0", &["--ttl", "1h"]);
    let one = std::fs::metadata(&p.cache_entries()[0])
        .expect("entry")
        .len();
    let bound = (one * 5 / 2).to_string();
    let env = [("PLUGBOARD_CACHE_MAX_BYTES", bound.as_str())];
    let run = |v: &str| {
        let param = format!("v={v}");
        p.cli(
            env!("CARGO_BIN_EXE_plugboard-under-test"),
            &["query", "echo", "value", "-p", &param, "--ttl", "1h", "-v"],
            &env,
        )
    };
    for v in ["1", "2", "3", "4"] {
        std::thread::sleep(Duration::from_millis(20)); // distinct write times
        run(v).ok();
    }
    assert_eq!(p.cache_entries().len(), 2, "2.5 entries' worth keeps 2");
    assert_eq!(run("4").outcome(), "disk hit", "the newest stays");
    assert_eq!(run("3").outcome(), "disk hit");
    assert_eq!(run("1").outcome(), "miss", "the oldest went first");

    let stats = p
        .cli(
            env!("CARGO_BIN_EXE_plugboard-under-test"),
            &["cache", "stats"],
            &env,
        )
        .ok();
    assert!(stats.contains("echo") && stats.contains(" 2 "), "{stats}");

    let bad = p
        .cli(
            env!("CARGO_BIN_EXE_plugboard-under-test"),
            &["query", "echo", "value", "--ttl", "1h"],
            &[("PLUGBOARD_CACHE_MAX_BYTES", "lots")],
        )
        .fails();
    assert!(
        bad.contains("PLUGBOARD_CACHE_MAX_BYTES: \"lots\" is not a size"),
        "{bad}"
    );
}

#[test]
fn exec_drops_the_cached_results_for_the_next_process() {
    let p = project();
    cli!(
        p,
        [
            "exec",
            "db",
            "CREATE TABLE t(x INTEGER)",
            "INSERT INTO t VALUES (1)"
        ]
    )
    .ok();
    let count = || {
        let run = cli!(
            p,
            [
                "query",
                "db",
                "SELECT count(*) AS n FROM t",
                "--ttl",
                "1h",
                "-v"
            ]
        );
        (run.ok(), run.outcome())
    };
    assert_eq!(count(), ("n\n1\n".to_owned(), "miss"));
    assert_eq!(count(), ("n\n1\n".to_owned(), "disk hit"));
    cli!(p, ["exec", "db", "INSERT INTO t VALUES (2)"]).ok();
    assert_eq!(
        count(),
        ("n\n2\n".to_owned(), "miss"),
        "not the stale count"
    );
    // A failed write drops nothing.
    cli!(p, ["exec", "db", "INSERT INTO nope VALUES (1)"]).fails();
    assert_eq!(count(), ("n\n2\n".to_owned(), "disk hit"));
}

#[test]
fn cache_stats_and_clear() {
    let p = project();
    echo_value(&p, "1", &["--ttl", "1h"]);
    echo_value(&p, "2", &["--ttl", "1h"]);
    cli!(p, ["query", "other", "value", "--ttl", "1h"]).ok();
    cli!(p, ["query", "chinook", "SELECT * FROM Genre"]).ok(); // the section's ttl

    let stats = cli!(p, ["cache", "stats"]).ok();
    let row = |name: &str| {
        stats
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no {name} row in\n{stats}"))
            .split(['│', '┆'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("echo")[1], "2");
    assert_eq!(row("other")[1], "1");
    assert_eq!(row("chinook")[1], "1");
    assert_eq!(row("total")[1], "4");
    assert!(
        stats.contains(&p.cache_dir().display().to_string()),
        "{stats}"
    );

    let out = cli!(p, ["cache", "clear", "echo"]).ok();
    assert!(
        out.starts_with("removed 2 cached results of \"echo\""),
        "{out}"
    );
    assert_eq!(p.cache_entries().len(), 2);
    // A name this project does not configure names nothing to clear.
    let err = cli!(p, ["cache", "clear", "echoo"]).fails();
    assert!(
        err.contains("unknown connection \"echoo\"; did you mean \"echo\"?"),
        "{err}"
    );
    let out = cli!(p, ["cache", "clear"]).ok();
    assert!(out.starts_with("removed 2 cached results ("), "{out}");
    assert!(p.cache_entries().is_empty());
    let stats = cli!(p, ["cache"]).ok();
    assert!(stats.contains("total"), "{stats}");
}

/// 8 processes at a time, 400 runs in all, read the same key while others replace it
/// (`--refresh`) and clear the cache; every run must print the whole, right table.
#[test]
fn eight_processes_race_on_one_key() {
    let p = project();
    let sql = "SELECT * FROM Track ORDER BY TrackId";
    let expected = cli!(
        p,
        ["query", "chinook", sql, "--ttl", "0", "--format", "csv"]
    )
    .ok();
    assert!(expected.lines().count() > 3000);
    let bin = env!("CARGO_BIN_EXE_plugboard-under-test");
    let outcomes: Vec<&'static str> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (p, expected) = (&p, &expected);
                s.spawn(move || {
                    let mut seen = Vec::new();
                    for i in 0..50 {
                        if w == 0 && i % 10 == 5 {
                            p.cli(bin, &["cache", "clear"], &[]).ok();
                        }
                        let mut args = vec!["query", "chinook", sql, "--format", "csv", "-v"];
                        if (w + i) % 7 == 3 {
                            args.push("--refresh");
                        }
                        let run = p.cli(bin, &args, &[]);
                        assert_eq!(&run.ok(), expected, "worker {w} run {i}: a wrong result");
                        assert!(
                            !run.stderr().contains("damaged"),
                            "worker {w} run {i} saw a torn entry: {}",
                            run.stderr()
                        );
                        seen.push(run.outcome());
                    }
                    seen
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    let hits = outcomes.iter().filter(|o| **o == "disk hit").count();
    let misses = outcomes.iter().filter(|o| **o == "miss").count();
    assert_eq!(hits + misses, 400);
    assert!(
        hits > 100 && misses > 5,
        "{hits} disk hits, {misses} misses"
    );
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(p.cache_dir().join("results-v1"))
        .expect("cache dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

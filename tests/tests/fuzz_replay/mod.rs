//! Shared by the fuzz replay tests (`fuzz_corpus.rs`, `fuzz_corpus_postgres.rs`: one test
//! binary cannot link two connectors, each exports the same entry points).
#![allow(dead_code)]
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

thread_local! {
    /// `Some` while a body runs: where its panic's message goes.
    static PANIC: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Keeps each panic's message and location for the report instead of printing it (the
/// fuzz targets' inputs panic on purpose until they are fixed).
fn capture_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if PANIC.with(|p| p.borrow().is_none()) {
                return default(info);
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let first_line = message.lines().next().unwrap_or_default().to_owned();
            PANIC.with(|p| *p.borrow_mut() = Some(Some(format!("{first_line}{at}"))));
        }));
    });
}

/// Runs every file of the target's corpus (in this process) and of its artifacts (each in
/// a child process, since a crash may be an abort or a signal, which no `catch_unwind`
/// survives), and fails naming every file that panics or dies.
pub fn replay(target: &str, body: fn(&[u8])) {
    if let Some(one) = std::env::var_os(ONE) {
        // The child: run the one file, with the default panic hook (its message goes to
        // stderr, where the parent reads it).
        let data = std::fs::read(&one).expect("read the file to replay");
        body(&data);
        return;
    }
    capture_panics();
    let root = fuzz_dir();
    let mut failures = Vec::new();
    let mut count = 0;
    for folder in ["corpus", "artifacts"] {
        for file in files(&root.join(folder).join(target)) {
            count += 1;
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            let failed = if folder == "corpus" {
                in_process(body, &file)
            } else {
                in_child(target, &file)
            };
            if let Some(why) = failed {
                failures.push(format!("fuzz/{folder}/{target}/{name}: {why}"));
            }
        }
    }
    assert!(
        count > 0,
        "no corpus for {target} in {}: the fuzz/ folder is part of the repository",
        root.display()
    );
    assert!(
        failures.is_empty(),
        "{} of {count} inputs of fuzz target {target} fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The environment variable that makes a replay test run one file (in a child).
const ONE: &str = "PLUGBOARD_FUZZ_REPLAY_ONE";

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

fn in_process(body: fn(&[u8]), file: &Path) -> Option<String> {
    let data = std::fs::read(file).expect("read a corpus file");
    PANIC.with(|p| *p.borrow_mut() = Some(None));
    let result = panic::catch_unwind(AssertUnwindSafe(|| body(&data)));
    let message = PANIC.with(|p| p.borrow_mut().take()).flatten();
    result
        .is_err()
        .then(|| message.unwrap_or_else(|| "panicked".to_owned()))
}

fn in_child(target: &str, file: &Path) -> Option<String> {
    let exe = std::env::current_exe().expect("current_exe");
    let out = std::process::Command::new(exe)
        .args(["--exact", target, "--nocapture", "--test-threads=1"])
        .env(ONE, file)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the replay test for one file");
    if out.status.success() {
        return None;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The panic's first line: "thread '…' panicked at FILE:LINE:COL:" then the message.
    let mut lines = stderr.lines();
    let panic = lines
        .by_ref()
        .find(|l| l.contains("panicked at"))
        .map(|at| {
            let location = at.rsplit("panicked at ").next().unwrap_or_default();
            let message = lines.next().unwrap_or_default();
            format!("{message} at {}", location.trim_end_matches(':'))
        });
    use std::os::unix::process::ExitStatusExt;
    let how = match out.status.signal() {
        Some(6) => "aborted (SIGABRT)".to_owned(),
        Some(s) => format!("killed by signal {s}"),
        None => format!("exit status {}", out.status.code().unwrap_or(-1)),
    };
    Some(match panic {
        Some(p) if out.status.signal().is_some() => format!("{p}; {how}"),
        Some(p) => p,
        None => how,
    })
}

// Seeds: real examples to start each corpus from.

/// Checks that the hand-made seed `seed-NAME` of `target` is what its generator makes now;
/// with `PLUGBOARD_WRITE_SEEDS=1`, writes it instead.
pub fn write_seed(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    let path = dir.join(format!("seed-{name}"));
    if std::env::var_os("PLUGBOARD_WRITE_SEEDS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).expect("corpus folder");
        std::fs::write(&path, data).expect("write a seed");
        return;
    }
    let on_disk = std::fs::read(&path).unwrap_or_default();
    // A disk entry carries the time it was made: the same seed, never the same bytes.
    let timed = target == "disk_entry";
    assert!(
        on_disk == data || (timed && !on_disk.is_empty()),
        "{} is not what its generator makes; rewrite the seeds with PLUGBOARD_WRITE_SEEDS=1",
        path.display()
    );
}

/// A deterministic byte stream for the seeds of the binary targets.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

/// SQL with each placeholder style, for both connectors' targets: mode, params, options,
/// statements (see their `fuzzing::decode`).
pub type SqlSeed = (
    u8,
    Vec<(usize, &'static str, plugboard_api::Value)>,
    &'static str,
    Vec<&'static str>,
);

pub fn sql_seeds() -> Vec<SqlSeed> {
    use plugboard_api::Value;
    vec![
        (
            1,
            vec![(0, "a", Value::Int(1))],
            "",
            vec!["SELECT * FROM t WHERE a = :a"],
        ),
        (
            1,
            vec![(0, "1", Value::String("x".into())), (0, "2", Value::Null)],
            "",
            vec!["SELECT ?1, ?2, $1"],
        ),
        (
            5,
            vec![(0, "b", Value::String("x".into()))],
            "",
            vec!["SELECT @b, $b, :b FROM t LIMIT 2"],
        ),
        (
            1,
            vec![],
            "partition_on=a;partitions=3",
            vec!["SELECT * FROM t;"],
        ),
        (
            1,
            vec![],
            "partition_on=a;partitions=2;partition_range=[0,10]",
            vec!["SELECT a, b FROM t -- :x\n"],
        ),
        (
            3,
            vec![
                (1, "x", Value::Bytes(vec![0, 255])),
                (0, "y", Value::Float(2.5)),
            ],
            "",
            vec![
                "INSERT INTO t VALUES (:x, :y, NULL)",
                "UPDATE t SET b = :y WHERE a = ?",
            ],
        ),
        (
            2,
            vec![(0, "p", Value::Bool(true))],
            "",
            vec![
                "CREATE TABLE u(x); INSERT INTO u VALUES (:p)",
                "DELETE FROM u",
            ],
        ),
        (
            1,
            vec![(0, "k", Value::Int(7))],
            "",
            vec![
                "SELECT ':x', E'\\':y', \":z\", x::int, $$ :w $$, $t$ :v $t$ -- :c\n/* :d /* :e */ */ FROM t WHERE k = :k",
            ],
        ),
        (1, vec![], "", vec!["SELECT $1::int + $2"]),
    ]
}

//! The table: every tool's min/median/max per case, the ratio of plugboard to each peer,
//! and the targets, printed and written to `bench/RESULTS.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::measure::{
    ADBC_POSTGRES, ADBC_SQLITE, CLI, CLI_ISOLATED, ISOLATED, LOAD, LOAD_ISOLATED, Sample,
    WorkerUse, fmt_secs, mb,
};

/// The isolated twin of each case's reference (for the ratio column against the peers).
fn isolated_reference(case: &str) -> Option<&'static str> {
    match case {
        "sqlite" | "postgres" | "lookup_sqlite" | "lookup_postgres" => Some(ISOLATED),
        "cli_sqlite" | "cli_postgres" => Some(CLI_ISOLATED),
        _ => None,
    }
}

/// Isolated against in process, per case: the goal is a ratio (`Some(limit)`) or an
/// absolute time (`None` here, set in [`targets`]).
const ISOLATION: &[(&str, &str, &str, &str, Option<f64>)] = &[
    (
        "sqlite",
        "SQLite 1M rows, cold",
        "plugboard",
        ISOLATED,
        Some(1.3),
    ),
    (
        "postgres",
        "PostgreSQL 1M rows, cold",
        "plugboard",
        ISOLATED,
        Some(1.3),
    ),
    (
        "lookup_sqlite",
        "SQLite 10-row lookup",
        "plugboard",
        ISOLATED,
        None,
    ),
    (
        "lookup_postgres",
        "PostgreSQL 10-row lookup",
        "plugboard",
        ISOLATED,
        None,
    ),
    (
        "cli_sqlite",
        "CLI, SQLite 1M rows → Arrow IPC (worker start included)",
        CLI,
        CLI_ISOLATED,
        None,
    ),
    (
        "cli_postgres",
        "CLI, PostgreSQL 1M rows → Arrow IPC (worker start included)",
        CLI,
        CLI_ISOLATED,
        None,
    ),
    (
        "load",
        "Building a host (isolated: starting 2 workers)",
        LOAD,
        LOAD_ISOLATED,
        None,
    ),
];

/// Python's duckdb, as peers.py names it.
const DUCKDB_PL: &str = "duckdb .pl() (polars DataFrame)";
const DUCKDB_ARROW: &str = "duckdb .arrow().read_all() (pyarrow Table)";

/// The goal of an isolated lookup: a warm worker answers in under a millisecond.
const LOOKUP_GOAL: f64 = 1e-3;

const CASES: &[(&str, &str, &str)] = &[
    (
        "sqlite",
        "SQLite `SELECT *`, 1M rows, cold, into a DataFrame (in process)",
        "plugboard",
    ),
    (
        "postgres",
        "PostgreSQL `SELECT *`, 1M rows, cold, into a DataFrame (in process)",
        "plugboard",
    ),
    (
        "mysql",
        "MySQL (MariaDB) `SELECT *`, 1M rows, cold, into a DataFrame (in process)",
        "plugboard",
    ),
    (
        "parquet",
        "Parquet file, 1M rows, into a DataFrame (in process)",
        "plugboard (files plugin)",
    ),
    (
        "duckdb",
        "DuckDB table `SELECT *`, 1M rows, cold, into a DataFrame (in process)",
        "plugboard",
    ),
    (
        "duckdb_parquet",
        "DuckDB `SELECT * FROM 'trips.parquet'`, 1M rows, into a DataFrame (in process)",
        "plugboard",
    ),
    (
        "lookup_sqlite",
        "SQLite 10-row lookup with a parameter (latency)",
        "plugboard",
    ),
    (
        "lookup_postgres",
        "PostgreSQL 10-row lookup with a parameter (latency)",
        "plugboard",
    ),
    (
        "lookup_mysql",
        "MySQL (MariaDB) 10-row lookup with a parameter (latency)",
        "plugboard",
    ),
    (
        "cache",
        "Cache hit of the 1M-row SQLite result",
        "plugboard memory hit",
    ),
    ("load", "Loading the plugins", ""),
    (
        "cli_sqlite",
        "Whole process: SQLite 1M rows → Arrow IPC file",
        "plugboard CLI → Arrow IPC file",
    ),
    (
        "cli_postgres",
        "Whole process: PostgreSQL 1M rows → Arrow IPC file",
        "plugboard CLI → Arrow IPC file",
    ),
    (
        "cli_files",
        "Whole process: Parquet 1M rows → Arrow IPC file",
        "plugboard CLI → Arrow IPC file",
    ),
];

const REDIS_HIT: &str = "plugboard redis hit (a new host's first read, loopback)";

/// A ratio with two significant digits however small (a cache hit against a read).
fn ratio(r: f64) -> String {
    if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.1e}×")
    }
}

struct Stats {
    min: f64,
    median: f64,
    max: f64,
}

fn stats(runs: &[f64]) -> Option<Stats> {
    let mut xs = runs.to_vec();
    xs.sort_by(f64::total_cmp);
    Some(Stats {
        min: *xs.first()?,
        median: xs[xs.len() / 2],
        max: *xs.last()?,
    })
}

fn find<'a>(samples: &'a [Sample], case: &str, tool: &str) -> Option<&'a Sample> {
    samples.iter().find(|s| s.case == case && s.tool == tool)
}

fn median_of(samples: &[Sample], case: &str, tool: &str) -> Option<f64> {
    find(samples, case, tool)
        .and_then(|s| stats(&s.runs))
        .map(|s| s.median)
}

pub fn write(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let mut samples: Vec<Sample> = serde_json::from_slice(
        &std::fs::read(dir.join("rust.json")).context("rust.json: run `measure` first")?,
    )?;
    let python: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("python.json")).context("python.json: run bench/peers.py first")?,
    )?;
    samples.extend(serde_json::from_value::<Vec<Sample>>(
        python["samples"].clone(),
    )?);

    let mut md = String::new();
    writeln!(md, "# plugboard benchmark results\n")?;
    writeln!(
        md,
        "Made by `bench/run` (see `bench/README.md`); every number below comes from one run, on one machine, all tools side by side.\n"
    )?;
    writeln!(md, "## Machine and versions\n")?;
    for line in machine(&python)? {
        writeln!(md, "- {line}")?;
    }
    writeln!(md)?;

    for (case, title, reference) in CASES {
        let rows: Vec<&Sample> = samples.iter().filter(|s| s.case == *case).collect();
        if rows.is_empty() {
            continue;
        }
        let reference = median_of(&samples, case, reference);
        let isolated = isolated_reference(case).and_then(|t| median_of(&samples, case, t));
        writeln!(md, "## {title}\n")?;
        if isolated.is_some() {
            writeln!(
                md,
                "| tool | min | median | max | plugboard ÷ tool | plugboard (isolated) ÷ tool |"
            )?;
            writeln!(md, "|---|---:|---:|---:|---:|---:|")?;
        } else {
            writeln!(md, "| tool | min | median | max | plugboard ÷ tool |")?;
            writeln!(md, "|---|---:|---:|---:|---:|")?;
        }
        for s in rows {
            let Some(st) = stats(&s.runs) else { continue };
            let peer = !s.tool.starts_with("plugboard");
            let versus = |r: Option<f64>| match r {
                Some(r) if peer => ratio(r / st.median),
                _ => String::new(),
            };
            let extra = match isolated {
                Some(_) => format!(" {} |", versus(isolated)),
                None => String::new(),
            };
            writeln!(
                md,
                "| {} | {} | {} | {} | {} |{extra}",
                s.tool,
                fmt_secs(st.min),
                fmt_secs(st.median),
                fmt_secs(st.max),
                versus(reference)
            )?;
        }
        writeln!(md)?;
    }

    isolation(&mut md, &samples)?;

    writeln!(
        md,
        "## Peak memory of one 1M-row read (above the process's baseline)\n\n\
         Peak RSS (`VmHWM`, reset just before the read) against the frame as laid out in \
         memory: a string column takes 16 bytes of view per value plus the bytes of values \
         longer than 12 (polars' `estimated_size` counts the string bytes only, \
         not the views). pandas frames are `memory_usage(deep=True)`, pyarrow tables `nbytes`.\n"
    )?;
    writeln!(
        md,
        "| case | tool | peak | the frame as laid out | peak ÷ frame |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|")?;
    for s in samples.iter().filter(|s| s.case.starts_with("peak_")) {
        if let (Some(p), Some(f)) = (s.peak_bytes, s.frame_bytes) {
            writeln!(
                md,
                "| {} | {} | {} | {} | {:.2}× |",
                &s.case[5..],
                s.tool,
                mb(p),
                mb(f),
                p as f64 / f as f64
            )?;
        }
    }
    writeln!(md)?;
    writeln!(md, "## Exports stream: whole-process peak memory\n")?;
    writeln!(md, "| export | time | peak RSS |")?;
    writeln!(md, "|---|---:|---:|")?;
    for s in samples.iter().filter(|s| s.case.starts_with("export_")) {
        writeln!(
            md,
            "| {} | {} | {} |",
            s.tool,
            fmt_secs(s.runs.first().copied().unwrap_or_default()),
            mb(s.peak_bytes.unwrap_or_default())
        )?;
    }
    writeln!(md)?;

    writeln!(md, "## Targets\n")?;
    writeln!(md, "| target | measured | |")?;
    writeln!(md, "|---|---:|---|")?;
    for (name, measured, met) in targets(&samples) {
        writeln!(
            md,
            "| {name} | {measured} | {} |",
            if met { "met" } else { "**missed**" }
        )?;
    }

    print!("{md}");
    std::fs::write(out, &md).with_context(|| format!("write {}", out.display()))?;
    eprintln!("\nwritten to {}", out.display());
    Ok(())
}

fn workers(samples: &[Sample]) -> Vec<&WorkerUse> {
    samples
        .iter()
        .filter(|s| s.case == "workers")
        .filter_map(|s| s.workers.as_ref())
        .collect()
}

/// The isolated mode against the in-process one, case by case, and the worker processes
/// that served the isolated reads.
fn isolation(md: &mut String, samples: &[Sample]) -> anyhow::Result<()> {
    if !samples.iter().any(|s| s.tool == ISOLATED) {
        return Ok(());
    }
    writeln!(
        md,
        "## Isolation: plugins in a worker process against in process\n\n\
         The same plugins and data through two hosts in one process: one loads sqlite and \
         postgres into its own process, the other (`isolation = \"process\"`) runs each in a \
         worker process and receives the tables as Arrow IPC over a Unix socket. Each pair \
         was timed alternately (in process, isolated, in process, …). The CLI rows are whole \
         processes, where the isolated CLI also starts its workers.\n"
    )?;
    writeln!(
        md,
        "| case | in process (median) | isolated (median) | isolated ÷ in process | goal | |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---|---|")?;
    for (case, title, inproc, iso, limit) in ISOLATION {
        let (Some(a), Some(b)) = (
            median_of(samples, case, inproc),
            median_of(samples, case, iso),
        ) else {
            continue;
        };
        let r = b / a;
        let (goal, met) = match (limit, case.starts_with("lookup_")) {
            (Some(l), _) => (format!("≤ {l}×"), Some(r <= *l)),
            (None, true) => (
                format!("< {}", fmt_secs(LOOKUP_GOAL)),
                Some(b < LOOKUP_GOAL),
            ),
            (None, false) => (String::new(), None),
        };
        let met = match met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "",
        };
        writeln!(
            md,
            "| {title} | {} | {} | {:.2}× | {goal} | {met} |",
            fmt_secs(a),
            fmt_secs(b),
            r
        )?;
    }
    writeln!(md)?;
    let start = median_of(samples, "load", LOAD_ISOLATED)
        .zip(median_of(samples, "load", LOAD))
        .map(|(iso, inproc)| (iso - inproc) / 2.0);
    for w in workers(samples) {
        writeln!(
            md,
            "- {}: {} worker process{} (pid {}) served all {} isolated reads (warm-ups included), \
             looked up in `/proc` after each.",
            w.plugin,
            w.pids.len(),
            if w.pids.len() == 1 { "" } else { "es" },
            w.pids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            w.reads
        )?;
    }
    if let Some(start) = start {
        writeln!(
            md,
            "- Starting a worker (spawn `plugboard __worker`, load and check the library, hello) \
             costs about {} (the isolated host build's extra time, per worker): a process per \
             read would add that to every lookup above.",
            fmt_secs(start)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn targets(samples: &[Sample]) -> Vec<(String, String, bool)> {
    let m = |case: &str, tool: &str| median_of(samples, case, tool);
    let mut out = Vec::new();
    let mut ratio = |name: &str, a: Option<f64>, b: Option<f64>, limit: f64| {
        if let (Some(a), Some(b)) = (a, b) {
            out.push((name.to_owned(), format!("{:.2}×", a / b), a / b <= limit));
        } else {
            out.push((name.to_owned(), "not measured".to_owned(), false));
        }
    };
    ratio(
        "SQLite cold ≤ 1.2× the rusqlite loop (step, read every value)",
        m("sqlite", "plugboard"),
        m("sqlite", crate::measure::FLOOR),
        1.2,
    );
    ratio(
        "SQLite, 2 partitions ≤ 0.8× connectorx with 2 partitions",
        m("sqlite", "plugboard, 2 partitions"),
        m("sqlite", "connectorx, 2 partitions"),
        0.8,
    );
    ratio(
        "PostgreSQL cold ≤ 1.0× connectorx",
        m("postgres", "plugboard"),
        m("postgres", "connectorx, 1 partition"),
        1.0,
    );
    ratio(
        "PostgreSQL cold ≤ 0.8× ADBC's PostgreSQL driver (from Python)",
        m("postgres", "plugboard"),
        m("postgres", "ADBC (PostgreSQL driver) → polars"),
        0.8,
    );
    ratio(
        "PostgreSQL cold ≤ 0.8× ADBC's PostgreSQL driver (through plugboard, timed in turn)",
        m("postgres", "plugboard"),
        m("postgres", ADBC_POSTGRES),
        0.8,
    );
    ratio(
        "PostgreSQL cold ≤ 1.25× the server's binary COPY floor (timed in turn)",
        m("postgres", "plugboard"),
        m("postgres", crate::measure::PG_FLOOR),
        1.25,
    );
    ratio(
        "PostgreSQL, 2 partitions ≤ 0.8× connectorx with 2 partitions",
        m("postgres", "plugboard, 2 partitions"),
        m("postgres", "connectorx, 2 partitions"),
        0.8,
    );
    ratio(
        "MySQL cold ≤ 0.8× connectorx",
        m("mysql", "plugboard"),
        m("mysql", "connectorx, 1 partition"),
        0.8,
    );
    // The lookup against the fastest peer.
    let fastest = samples
        .iter()
        .filter(|s| s.case == "lookup_mysql" && !s.tool.starts_with("plugboard"))
        .filter_map(|s| stats(&s.runs).map(|st| st.median))
        .min_by(f64::total_cmp);
    ratio(
        "MySQL 10-row lookup faster than every peer (÷ the fastest < 1)",
        m("lookup_mysql", "plugboard"),
        fastest,
        0.999,
    );
    ratio(
        "Parquet through the files plugin ≤ 1.1× polars reading the file",
        m("parquet", "plugboard (files plugin)"),
        m("parquet", "polars.read_parquet"),
        1.1,
    );
    for (case, what) in [("duckdb", "a DuckDB table"), ("duckdb_parquet", "Parquet")] {
        for peer in [DUCKDB_PL, DUCKDB_ARROW] {
            ratio(
                &format!("DuckDB, 1M rows from {what} ≤ 1.0× Python's {peer}"),
                m(case, "plugboard"),
                m(case, peer),
                1.0,
            );
        }
    }
    for (case, tool, peer, what) in [
        (
            "sqlite",
            ADBC_SQLITE,
            "ADBC (SQLite driver) → polars",
            "SQLite",
        ),
        (
            "postgres",
            ADBC_POSTGRES,
            "ADBC (PostgreSQL driver) → polars",
            "PostgreSQL",
        ),
    ] {
        ratio(
            &format!(
                "ADBC bridge: the {what} driver through plugboard ≤ 1.05× the driver from Python"
            ),
            m(case, tool),
            m(case, peer),
            1.05,
        );
    }
    ratio(
        "Isolated SQLite 1M-row read ≤ 1.3× in process",
        m("sqlite", ISOLATED),
        m("sqlite", "plugboard"),
        1.3,
    );
    ratio(
        "Isolated PostgreSQL 1M-row read ≤ 1.3× in process",
        m("postgres", ISOLATED),
        m("postgres", "plugboard"),
        1.3,
    );
    ratio(
        "Disk-cache hit ≤ 0.1× the cold read",
        m("cache", "plugboard disk hit (a new host's first read)"),
        m("sqlite", "plugboard"),
        0.1,
    );
    ratio(
        "Redis hit (loopback) ≤ 0.15× the cold SQLite read",
        m("cache", REDIS_HIT),
        m("sqlite", "plugboard"),
        0.15,
    );
    ratio(
        "Redis hit (loopback) ≤ 0.5× the cold PostgreSQL read",
        m("cache", REDIS_HIT),
        m("postgres", "plugboard"),
        0.5,
    );
    let mut absolute = |name: &str, v: Option<f64>, limit: f64| match v {
        Some(v) => out.push((name.to_owned(), fmt_secs(v), v < limit)),
        None => out.push((name.to_owned(), "not measured".to_owned(), false)),
    };
    absolute(
        "Isolated SQLite lookup < 1 ms",
        m("lookup_sqlite", ISOLATED),
        LOOKUP_GOAL,
    );
    absolute(
        "Isolated PostgreSQL lookup < 1 ms",
        m("lookup_postgres", ISOLATED),
        LOOKUP_GOAL,
    );
    absolute(
        "Memory-cache hit < 10 µs",
        m("cache", "plugboard memory hit"),
        10e-6,
    );
    // Strict cross-host invalidation asks Redis for the generations on every read with a
    // TTL: a loopback round trip. Pub/sub mode holds them: no round trip.
    absolute(
        "Memory-cache hit with Redis configured (strict) < 1 ms",
        m("cache", "plugboard memory hit, Redis configured (strict)"),
        1e-3,
    );
    absolute(
        "Memory-cache hit with Redis configured (pubsub) < 10 µs",
        m("cache", "plugboard memory hit, Redis configured (pubsub)"),
        10e-6,
    );
    // The case loads all four plugins (sqlite, postgres, files, mysql) in one host; the
    // target is for one.
    absolute(
        "Plugin load < 5 ms (each; the case loads 4)",
        m("load", LOAD).map(|t| t / 4.0),
        5e-3,
    );
    for w in workers(samples) {
        out.push((
            format!(
                "A warm {} worker serves every isolated read (one process)",
                w.plugin
            ),
            format!("{} process(es) for {} reads", w.pids.len(), w.reads),
            w.pids.len() == 1,
        ));
    }
    for case in ["peak_sqlite", "peak_postgres", "peak_mysql", "peak_parquet"] {
        if let Some(s) = find(samples, case, "plugboard")
            && let (Some(p), Some(f)) = (s.peak_bytes, s.frame_bytes)
        {
            let r = p as f64 / f as f64;
            out.push((
                format!("Peak memory ({}) ≤ 1.5× the frame", &case[5..]),
                format!("{r:.2}×"),
                r <= 1.5,
            ));
        }
    }
    for ext in ["parquet", "csv"] {
        let peak = |rows: &str| {
            samples
                .iter()
                .find(|s| s.case == format!("export_{ext}") && s.tool.ends_with(rows))
                .and_then(|s| s.peak_bytes)
        };
        if let (Some(small), Some(big)) = (peak(", 1M rows"), peak(", 10M rows")) {
            let r = big as f64 / small as f64;
            out.push((
                format!("--output x.{ext}: peak at 10M rows ≈ peak at 1M rows (≤ 1.25×)"),
                format!("{} vs {} ({r:.2}×)", mb(big), mb(small)),
                r <= 1.25,
            ));
        }
    }
    out
}

fn machine(python: &serde_json::Value) -> anyhow::Result<Vec<String>> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo.lines().next().unwrap_or("").trim().to_owned();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let pg = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            "SHOW server_version",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut lines = vec![
        format!("CPU: {cpu}, {cores} cores; {mem}"),
        format!(
            "Kernel: {}",
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
        ),
        format!(
            "{rustc}; plugboard {} (release build); polars 0.55.2 (Rust); SQLite {}",
            env!("CARGO_PKG_VERSION"),
            rusqlite::version()
        ),
        format!("PostgreSQL server {pg} on 127.0.0.1"),
        format!(
            "MySQL server {} on 127.0.0.1",
            Command::new("mariadb")
                .args(["--no-defaults", "-h", "127.0.0.1", "-u", "root", "-N", "-B"])
                .args(["-e", "SELECT VERSION()"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        ),
    ];
    if let Some(py) = python["python"].as_str() {
        lines.push(format!("Python {py}"));
    }
    if let Some(versions) = python["versions"].as_object() {
        let list: Vec<String> = versions
            .iter()
            .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("?")))
            .collect();
        lines.push(format!("Peers: {}", list.join(", ")));
    }
    if let Some(rows) = python["rows"].as_u64() {
        lines.push(format!(
            "Data: `trips`, {rows} rows, seed {}",
            crate::data::SEED
        ));
    }
    Ok(lines)
}

//! plugboard's side of the benchmark, timed in this process and as whole CLI processes.
//!
//! Each SQLite and PostgreSQL case that isolation can change runs twice in one run: in the
//! host's process, and isolated (`isolation = "process"`, the plugin in a worker process
//! of its own), the two timed alternately against the same data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use plugboard::{Host, Outcome};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data;

/// One measured line of the table: a tool doing a case, timed over several runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// The case: `sqlite`, `postgres`, `parquet`, `lookup_sqlite`, `cache`, `load`, `cli`, …
    pub case: String,
    pub tool: String,
    /// Seconds, one per run.
    #[serde(default)]
    pub runs: Vec<f64>,
    /// Peak memory of one read above the process's baseline, and the frame's own size.
    #[serde(default)]
    pub peak_bytes: Option<u64>,
    #[serde(default)]
    pub frame_bytes: Option<u64>,
    #[serde(default)]
    pub note: Option<String>,
    /// For the isolated cases: the worker processes seen across the reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<WorkerUse>,
}

/// The worker processes one isolated plugin ran in, looked up after every isolated read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerUse {
    pub plugin: String,
    /// Isolated reads (warm-up included) after which the workers were looked up.
    pub reads: u64,
    /// Every worker pid seen: one means one warm worker served them all.
    pub pids: Vec<u32>,
}

const SELECT: &str = "SELECT * FROM trips";
/// The floor a SQLite read is held to: rusqlite stepping every row and reading every value.
pub const FLOOR: &str = "rusqlite: step the rows, read every value (floor)";
/// The floor of a MySQL read: the server's binary result (the prepared statement every
/// tool here runs) read off the socket and dropped by a minimal client.
pub const MYSQL_FLOOR: &str = "MariaDB's binary result, read and dropped (floor)";
/// The floor of a PostgreSQL read: the server's binary COPY of the same rows, read off the
/// socket and dropped by a minimal client ([`crate::floor::PgFloor`]).
pub const PG_FLOOR: &str = "PostgreSQL's binary COPY, read and dropped (floor)";
/// The same through psql, a whole process (its start and connection included).
pub const PSQL_FLOOR: &str = "psql -c \"COPY … (FORMAT binary)\" > /dev/null";
/// The floor of a Redis hit, see [`redis_floor`].
pub const REDIS_FLOOR: &str =
    "Redis: the entry's chunks fetched and dropped, 2 connections (floor)";
const LOOKUP: &str = "SELECT * FROM trips WHERE id BETWEEN :lo AND :lo + 9";
/// The tool name of a read through an isolated plugin (`isolation = "process"`).
pub const ISOLATED: &str = "plugboard (isolated)";
pub const CLI: &str = "plugboard CLI → Arrow IPC file";
pub const CLI_ISOLATED: &str = "plugboard CLI (isolated) → Arrow IPC file";
pub const LOAD: &str = "plugboard: open, ABI check, manifest (4 plugins)";
pub const LOAD_ISOLATED: &str =
    "plugboard (isolated): start 2 workers (sqlite, postgres), open files in process";
/// The DuckDB cases' own plugins file and database (the Parquet file's rows, as a table).
const DUCKDB_PLUGINS: &str = "plugins-duckdb.toml";
const DUCKDB_FILE: &str = "trips.duckdb";
/// The ADBC plugin in a host of its own too, its drivers from the peers' environment.
const ADBC_PLUGINS: &str = "plugins-adbc.toml";
/// The tools of the ADBC bridge's cases; peers.py reads the same drivers from Python.
pub const ADBC_SQLITE: &str = "plugboard → ADBC SQLite driver";
pub const ADBC_POSTGRES: &str = "plugboard → ADBC PostgreSQL driver";
/// The Parquet file as DuckDB reads it: relative to the working directory, so absolute.
fn duckdb_parquet_select(dir: &Path) -> String {
    format!("SELECT * FROM '{}'", dir.join("trips.parquet").display())
}
/// The plugins that run in a worker in the isolated cases.
const ISOLATED_PLUGINS: [&str; 2] = ["sqlite", "postgres"];

fn release_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().context("exe folder")?.to_path_buf())
}

fn lib(name: &str) -> anyhow::Result<PathBuf> {
    let path = release_dir()?.join(format!("libplugboard_{name}.so"));
    if !path.exists() {
        bail!(
            "{} is missing: build with `cargo build --release` first",
            path.display()
        );
    }
    Ok(path)
}

/// The worker program for isolated plugins: the release build's `plugboard`.
fn worker_program() -> anyhow::Result<PathBuf> {
    let path = release_dir()?.join("plugboard");
    if !path.exists() {
        bail!(
            "{} is missing: build with `cargo build --release` first",
            path.display()
        );
    }
    Ok(path)
}

/// The plugins file of one mode: `plugins.toml` runs every plugin in the host's process,
/// `plugins-isolated.toml` the same libraries with sqlite and postgres isolated.
fn plugins_file(isolated: bool) -> &'static str {
    if isolated {
        "plugins-isolated.toml"
    } else {
        "plugins.toml"
    }
}

/// plugins.toml, plugins-isolated.toml and secrets.toml for the bench's connections, in
/// `dir`.
fn project(dir: &Path) -> anyhow::Result<()> {
    for isolated in [false, true] {
        let mut plugins = String::new();
        for name in ["sqlite", "postgres", "files", "mysql"] {
            plugins.push_str(&format!(
                "[[plugin]]\npath = {:?}\n",
                lib(name)?.display().to_string()
            ));
            if isolated && ISOLATED_PLUGINS.contains(&name) {
                plugins.push_str("isolation = \"process\"\n");
            }
            plugins.push('\n');
        }
        std::fs::write(dir.join(plugins_file(isolated)), plugins)?;
    }
    // DuckDB in a host of its own, so that the other cases (plugin load above all) load
    // the same three plugins as before.
    // Without the DuckDB plugin (`bench/run` with PLUGBOARD_BENCH_DUCKDB=0 skips its long
    // release build), the DuckDB cases are not measured, and the report says so.
    let _ = std::fs::remove_file(dir.join(DUCKDB_PLUGINS));
    if let Ok(duckdb) = lib("duckdb") {
        std::fs::write(
            dir.join(DUCKDB_PLUGINS),
            format!("[[plugin]]\npath = {:?}\n", duckdb.display().to_string()),
        )?;
    }
    std::fs::write(
        dir.join(ADBC_PLUGINS),
        format!(
            "[[plugin]]\npath = {:?}\n",
            lib("adbc")?.display().to_string()
        ),
    )?;
    // The drivers the Python peers use: the same libraries on both sides.
    let venv = std::env::var("PLUGBOARD_BENCH_VENV")
        .context("PLUGBOARD_BENCH_VENV (bench/run sets it): the peers' environment")?;
    std::fs::write(
        dir.join("secrets.toml"),
        format!(
            "[connections.sqlite]\ntype = \"sqlite\"\ndatabase = {:?}\nread_only = true\n\n\
             [connections.postgres]\nurl = \"{}\"\n\n\
             [connections.files]\ntype = \"files\"\nroot = {:?}\n\n\
             [connections.mysql]\nurl = \"{}\"\n\n\
             [connections.duckdb]\ntype = \"duckdb\"\ndatabase = {:?}\nread_only = true\n\n\
             [connections.duckdb_fill]\ntype = \"duckdb\"\ndatabase = {:?}\n\n\
             [connections.duckdb_memory]\ntype = \"duckdb\"\ndatabase = \":memory:\"\n\n\
             [connections.adbc_sqlite]\ntype = \"adbc\"\ndriver = \"sqlite\"\npython = {venv:?}\nuri = {:?}\n\n\
             [connections.adbc_postgres]\ntype = \"adbc\"\ndriver = \"postgresql\"\npython = {venv:?}\nuri = \"{}\"\n",
            dir.join("trips.sqlite").display().to_string(),
            data::pg_url(),
            dir.display().to_string(),
            data::my_url(),
            dir.join(DUCKDB_FILE).display().to_string(),
            dir.join(DUCKDB_FILE).display().to_string(),
            dir.join("trips.sqlite").display().to_string(),
            data::pg_url(),
        ),
    )?;
    Ok(())
}

fn host(dir: &Path) -> anyhow::Result<Host> {
    host_in(dir, false)
}

/// A host of one mode; the isolated one runs its workers with the release `plugboard`.
fn host_in(dir: &Path, isolated: bool) -> anyhow::Result<Host> {
    let mut builder = Host::builder()
        .plugins_file(dir.join(plugins_file(isolated)))
        .secrets_file(dir.join("secrets.toml"))
        .use_env(false)
        .user_config_dir(None)
        .cache_dir(Some(dir.join("cache")));
    if isolated {
        builder = builder.worker_program(worker_program()?);
    }
    let host = builder.build()?;
    if let Some(e) = host.load_errors().first() {
        bail!("{}: {e}", plugins_file(isolated));
    }
    Ok(host)
}

fn time<T>(runs: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<Vec<f64>> {
    f()?; // warm: page cache, prepared statements, the connection
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let out = f()?;
            let secs = t.elapsed().as_secs_f64();
            drop(out);
            Ok(secs)
        })
        .collect()
}

/// Times `a` and `b` alternately (a, b, a, b, …), each warmed once first, so that drift
/// in the machine's load (a build, another process) falls on both alike. `after_b` runs,
/// untimed, after every call of `b`.
fn time_pair<A, B>(
    runs: usize,
    mut a: impl FnMut() -> anyhow::Result<A>,
    mut b: impl FnMut() -> anyhow::Result<B>,
    mut after_b: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    a()?;
    b()?;
    after_b()?;
    let (mut ta, mut tb) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        let t = Instant::now();
        drop(a()?);
        ta.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let out = b()?;
        tb.push(t.elapsed().as_secs_f64());
        drop(out);
        after_b()?;
    }
    Ok((ta, tb))
}

/// A timed call; what it returns is dropped after its time is taken.
type Timed<'a> = Box<dyn FnMut() -> anyhow::Result<Box<dyn std::any::Any>> + 'a>;

/// Times `cases` in rounds (a, b, c, a, b, c, …), each warmed once first, so that drift in
/// the machine's load falls on every case alike; `after(i)` runs, untimed, after case `i`.
fn time_rounds<const N: usize>(
    runs: usize,
    cases: &mut [Timed<'_>; N],
    mut after: impl FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<[Vec<f64>; N]> {
    for (i, case) in cases.iter_mut().enumerate() {
        drop(case()?);
        after(i)?;
    }
    let mut times: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(runs));
    for _ in 0..runs {
        for (i, case) in cases.iter_mut().enumerate() {
            let t = Instant::now();
            let out = case()?;
            times[i].push(t.elapsed().as_secs_f64());
            drop(out);
            after(i)?;
        }
    }
    Ok(times)
}

fn sample(case: &str, tool: &str, runs: Vec<f64>) -> Sample {
    Sample {
        case: case.into(),
        tool: tool.into(),
        runs,
        peak_bytes: None,
        frame_bytes: None,
        note: None,
        workers: None,
    }
}

/// This process's worker children, by plugin library (`libplugboard_sqlite.so` → `sqlite`):
/// the processes whose parent is this one and whose command line is `… __worker --plugin
/// PATH …`.
fn worker_pids() -> anyhow::Result<BTreeMap<String, BTreeSet<u32>>> {
    let me = std::process::id();
    let mut out: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may end between the listing and the reads: skip it.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(me) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !args.iter().any(|a| a == "__worker") {
            continue;
        }
        let plugin = args
            .iter()
            .position(|a| a == "--plugin")
            .and_then(|i| args.get(i + 1))
            .and_then(|p| Path::new(p).file_stem()?.to_str().map(str::to_owned))
            .map(|stem| stem.trim_start_matches("libplugboard_").to_owned())
            .unwrap_or_else(|| "?".to_owned());
        out.entry(plugin).or_default().insert(pid);
    }
    Ok(out)
}

/// Worker pids seen after each isolated read, per plugin.
#[derive(Default)]
struct Workers {
    seen: BTreeMap<String, (u64, BTreeSet<u32>)>,
}

impl Workers {
    /// Looks the workers of `plugin` up after one of its reads; its worker must be running.
    fn after_read(&mut self, plugin: &str) -> anyhow::Result<()> {
        let now = worker_pids()?;
        let pids = now.get(plugin).cloned().unwrap_or_default();
        anyhow::ensure!(
            !pids.is_empty(),
            "no worker process of {plugin} after an isolated read"
        );
        let (reads, seen) = self.seen.entry(plugin.to_owned()).or_default();
        *reads += 1;
        seen.extend(pids);
        Ok(())
    }

    fn samples(&self) -> Vec<Sample> {
        self.seen
            .iter()
            .map(|(plugin, (reads, pids))| Sample {
                workers: Some(WorkerUse {
                    plugin: plugin.clone(),
                    reads: *reads,
                    pids: pids.iter().copied().collect(),
                }),
                ..sample("workers", ISOLATED, Vec::new())
            })
            .collect()
    }
}

/// A host with only the DuckDB plugin.
fn duckdb_host(dir: &Path) -> anyhow::Result<Host> {
    host_of(dir, DUCKDB_PLUGINS)
}

/// A host with the plugins of `plugins` (a file in `dir`) alone, in process.
fn host_of(dir: &Path, plugins: &str) -> anyhow::Result<Host> {
    let host = Host::builder()
        .plugins_file(dir.join(plugins))
        .secrets_file(dir.join("secrets.toml"))
        .use_env(false)
        .user_config_dir(None)
        .cache_dir(Some(dir.join("cache")))
        .build()?;
    if let Some(e) = host.load_errors().first() {
        bail!("{plugins}: {e}");
    }
    Ok(host)
}

/// DuckDB: 1M rows from a DuckDB table (made once from the Parquet file) and from the
/// Parquet file itself, cold, into a DataFrame. Python's duckdb does the same in peers.py.
fn duckdb(dir: &Path, runs: usize, push: &mut impl FnMut(Sample)) -> anyhow::Result<()> {
    let file = dir.join(DUCKDB_FILE);
    if !dir.join(DUCKDB_PLUGINS).exists() {
        // Nor by the peers: peers.py reads the file this would make.
        let _ = std::fs::remove_file(&file);
        eprintln!("  duckdb: not measured (the release build has no DuckDB plugin)");
        return Ok(());
    }
    let marker = dir.join(format!(".{DUCKDB_FILE}-from-parquet"));
    if !marker.exists() || !file.exists() {
        let _ = std::fs::remove_file(&file);
        // Its own host, dropped before the read-only one opens the file: one process may
        // hold a DuckDB file read-write, or read-only, not both.
        let host = duckdb_host(dir)?;
        host.connection("duckdb_fill")?
            .execute(format!(
                "CREATE TABLE trips AS {}",
                duckdb_parquet_select(dir)
            ))
            .run()?;
        drop(host);
        std::fs::write(&marker, "")?;
    }
    let host = duckdb_host(dir)?;
    let cold = |conn: &plugboard::Connection, q: &str| conn.query(q).ttl(Duration::ZERO).fetch();
    let table = host.connection("duckdb")?;
    push(sample(
        "duckdb",
        "plugboard",
        time(runs, || Ok(cold(&table, SELECT)?))?,
    ));
    let memory = host.connection("duckdb_memory")?;
    let parquet = duckdb_parquet_select(dir);
    push(sample(
        "duckdb_parquet",
        "plugboard",
        time(runs, || Ok(cold(&memory, &parquet)?))?,
    ));
    Ok(())
}

/// The ADBC bridge: 1M rows through the ADBC SQLite and PostgreSQL drivers, cold, into a
/// DataFrame. peers.py reads the same drivers from Python (`fetch_arrow_table` → polars).
fn adbc(dir: &Path, runs: usize, push: &mut impl FnMut(Sample)) -> anyhow::Result<()> {
    let host = host_of(dir, ADBC_PLUGINS)?;
    let cold = |conn: &plugboard::Connection| conn.query(SELECT).ttl(Duration::ZERO).fetch();
    // (PostgreSQL's driver is timed beside plugboard's own read, in `all`.)
    let c = host.connection("adbc_sqlite")?;
    push(sample("sqlite", ADBC_SQLITE, time(runs, || Ok(cold(&c)?))?));
    Ok(())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

pub fn all(dir: &Path, runs: usize) -> anyhow::Result<()> {
    project(dir)?;
    let mut out: Vec<Sample> = Vec::new();
    let mut push = |s: Sample| {
        if let Some(w) = &s.workers {
            eprintln!(
                "  {:<14} {:<44} {:>10}",
                s.case,
                format!("{}: worker pids {:?}", w.plugin, w.pids),
                format!("{} reads", w.reads)
            );
        } else {
            let m = median(s.runs.clone());
            eprintln!("  {:<14} {:<44} {:>10}", s.case, s.tool, fmt_secs(m));
        }
        out.push(s);
    };
    let cold = |conn: &plugboard::Connection, q: &str| conn.query(q).ttl(Duration::ZERO).fetch();

    // SQLite: the floor (rusqlite stepping every row, building nothing) and plugboard.
    let db = dir.join("trips.sqlite");
    let raw = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    push(sample(
        "sqlite",
        "rusqlite: step the rows only",
        time(runs, || {
            let mut stmt = raw.prepare_cached(SELECT)?;
            let mut rows = stmt.query([])?;
            let mut n = 0u64;
            while rows.next()?.is_some() {
                n += 1;
            }
            Ok(n)
        })?,
    ));
    // SQLite decodes a row's values only when asked: a reader has to ask for every one.
    push(sample(
        "sqlite",
        FLOOR,
        time(runs, || {
            let mut stmt = raw.prepare_cached(SELECT)?;
            let columns = stmt.column_count();
            let mut rows = stmt.query([])?;
            let mut bytes = 0usize;
            while let Some(row) = rows.next()? {
                for i in 0..columns {
                    bytes += match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Text(t) => t.len(),
                        _ => 8,
                    };
                }
            }
            Ok(bytes)
        })?,
    ));
    drop(raw);

    // The same plugins in two hosts: one loads them into this process, the other runs
    // sqlite and postgres in worker processes. Each isolated case is timed alternately
    // with its in-process twin.
    let host = host(dir)?;
    let isolated = host_in(dir, true)?;
    let mut workers = Workers::default();
    let sqlite = host.connection("sqlite")?;
    let sqlite_iso = isolated.connection("sqlite")?;
    let (inproc, iso) = time_pair(
        runs,
        || Ok(cold(&sqlite, SELECT)?),
        || Ok(cold(&sqlite_iso, SELECT)?),
        || workers.after_read("sqlite"),
    )?;
    push(sample("sqlite", "plugboard", inproc));
    push(sample("sqlite", ISOLATED, iso));
    push(sample(
        "sqlite",
        "plugboard, 2 partitions",
        time(runs, || {
            Ok(sqlite
                .query(SELECT)
                .ttl(Duration::ZERO)
                .option("partition_on", "id")
                .option("partitions", 2)
                .fetch()?)
        })?,
    ));
    let lookup = |conn: &plugboard::Connection, lo: &mut i64| {
        *lo = (*lo + 7919) % 999_000;
        conn.query(LOOKUP)
            .param("lo", *lo)
            .ttl(Duration::ZERO)
            .fetch()
    };
    let (mut lo, mut lo_iso) = (0i64, 0i64);
    let (inproc, iso) = time_pair(
        runs * 20,
        || Ok(lookup(&sqlite, &mut lo)?),
        || Ok(lookup(&sqlite_iso, &mut lo_iso)?),
        || workers.after_read("sqlite"),
    )?;
    push(sample("lookup_sqlite", "plugboard", inproc));
    push(sample("lookup_sqlite", ISOLATED, iso));

    // PostgreSQL: plugboard, in process and isolated, the same ADBC driver that peers.py
    // runs (through plugboard's bridge), and the server's floor, taken in turn round after
    // round, so that a noisy minute falls on every one of them alike.
    let pg = host.connection("postgres")?;
    let pg_iso = isolated.connection("postgres")?;
    let adbc_host = host_of(dir, ADBC_PLUGINS)?;
    let adbc_pg = adbc_host.connection("adbc_postgres")?;
    let rows = cold(&pg, SELECT)?.height() as u64;
    let mut floor =
        crate::floor::PgFloor::connect("127.0.0.1:5432", "postgres", crate::data::PG_DB)?;
    let mut cases: [Timed<'_>; 5] = [
        Box::new(|| Ok(Box::new(cold(&pg, SELECT)?))),
        Box::new(|| Ok(Box::new(cold(&pg_iso, SELECT)?))),
        Box::new(|| Ok(Box::new(cold(&adbc_pg, SELECT)?))),
        Box::new(|| {
            let copied = floor.copy(SELECT)?;
            anyhow::ensure!(
                copied == rows,
                "the floor copied {copied} rows, plugboard read {rows}"
            );
            Ok(Box::new(()))
        }),
        Box::new(|| {
            let status = data::psql_command(data::PG_DB)
                .arg("-c")
                .arg(format!("COPY ({SELECT}) TO STDOUT (FORMAT binary)"))
                .stdout(std::process::Stdio::null())
                .status()?;
            anyhow::ensure!(status.success(), "psql's COPY failed");
            Ok(Box::new(()))
        }),
    ];
    let [inproc, iso, adbc_pg_runs, floor_runs, psql_runs] = time_rounds(runs, &mut cases, |i| {
        if i == 1 {
            workers.after_read("postgres")
        } else {
            Ok(())
        }
    })?;
    drop(cases);
    drop((adbc_pg, adbc_host));
    push(sample("postgres", "plugboard", inproc));
    push(sample("postgres", ISOLATED, iso));
    push(sample("postgres", ADBC_POSTGRES, adbc_pg_runs));
    push(sample("postgres", PG_FLOOR, floor_runs));
    push(sample("postgres", PSQL_FLOOR, psql_runs));
    push(sample(
        "postgres",
        "plugboard, 2 partitions",
        time(runs, || {
            Ok(pg
                .query(SELECT)
                .ttl(Duration::ZERO)
                .option("partition_on", "id")
                .option("partitions", 2)
                .fetch()?)
        })?,
    ));
    let (inproc, iso) = time_pair(
        runs * 20,
        || Ok(lookup(&pg, &mut lo)?),
        || Ok(lookup(&pg_iso, &mut lo_iso)?),
        || workers.after_read("postgres"),
    )?;
    push(sample("lookup_postgres", "plugboard", inproc));
    push(sample("lookup_postgres", ISOLATED, iso));
    for s in workers.samples() {
        push(s);
    }
    drop((sqlite_iso, pg_iso, isolated));

    // MySQL (MariaDB), in process.
    let my = host.connection("mysql")?;
    push(sample(
        "mysql",
        "plugboard",
        time(runs, || Ok(cold(&my, SELECT)?))?,
    ));
    let rows = cold(&my, SELECT)?.height() as u64;
    push(sample("mysql", MYSQL_FLOOR, mysql_floor(runs, Some(rows))?));
    push(sample(
        "mysql",
        "plugboard, 2 partitions",
        time(runs, || {
            Ok(my
                .query(SELECT)
                .ttl(Duration::ZERO)
                .option("partition_on", "id")
                .option("partitions", 2)
                .fetch()?)
        })?,
    ));
    push(sample(
        "lookup_mysql",
        "plugboard",
        time(runs * 20, || Ok(lookup(&my, &mut lo)?))?,
    ));

    let files = host.connection("files")?;
    push(sample(
        "parquet",
        "plugboard (files plugin)",
        time(runs, || {
            Ok(files.read("trips.parquet").ttl(Duration::ZERO).fetch()?)
        })?,
    ));
    let parquet = dir.join("trips.parquet");
    push(sample(
        "parquet",
        "polars ParquetReader, same process",
        time(runs, || {
            Ok(ParquetReader::new(std::fs::File::open(&parquet)?).finish()?)
        })?,
    ));

    duckdb(dir, runs, &mut push)?;
    adbc(dir, runs, &mut push)?;

    // Cache hits of the 1M-row SQLite result.
    let hour = Duration::from_secs(3600);
    let (_, outcome) = sqlite
        .query(SELECT)
        .ttl(hour)
        .refresh(true)
        .fetch_shared()?;
    assert_eq!(outcome, Outcome::Miss);
    push(sample(
        "cache",
        "plugboard memory hit",
        time(runs * 100, || {
            let (df, outcome) = sqlite.query(SELECT).ttl(hour).fetch_shared()?;
            anyhow::ensure!(outcome == Outcome::MemoryHit, "expected a memory hit");
            Ok(df)
        })?,
    ));
    push(sample(
        "cache",
        "plugboard disk hit (a new host's first read)",
        disk_hits(dir, runs)?,
    ));
    redis_cases(dir, runs, &mut push)?;

    // Plugin load, each in a fresh process (a loaded library is not loaded again); the
    // isolated host's load is its workers' start: spawn, load and check, hello.
    let exe = std::env::current_exe()?;
    let load = |isolated: bool| -> anyhow::Result<f64> {
        let mut cmd = Command::new(&exe);
        cmd.arg("load").arg(dir);
        if isolated {
            cmd.arg("--isolated");
        }
        let out = cmd.output()?;
        anyhow::ensure!(
            out.status.success(),
            "load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    let (inproc, iso) = time_pair(runs, || load(false), || load(true), || Ok(()))?;
    push(sample("load", LOAD, inproc));
    push(sample("load", LOAD_ISOLATED, iso));

    // Whole CLI processes writing Arrow IPC; for SQLite and PostgreSQL also with the
    // plugin isolated (the CLI starts its workers: a cold read includes their start).
    let bin = release_dir()?.join("plugboard");
    let arrow_out = dir.join("out.arrow");
    let cli = |plugins: &str, verb: &str, conn: &str, target: &str| -> anyhow::Result<()> {
        let status = Command::new(&bin)
            .current_dir(dir)
            .env("PLUGBOARD_CACHE_DIR", dir.join("cache"))
            .args([
                "--plugins",
                plugins,
                "--secrets",
                "secrets.toml",
                verb,
                conn,
                target,
            ])
            .arg("--output")
            .arg(&arrow_out)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "plugboard --plugins {plugins} {verb} {conn} failed"
        );
        Ok(())
    };
    for (conn, verb, target) in [
        ("sqlite", "query", SELECT),
        ("postgres", "query", SELECT),
        ("files", "read", "trips.parquet"),
    ] {
        let case = format!("cli_{conn}");
        if ISOLATED_PLUGINS.contains(&conn) {
            let (inproc, iso) = time_pair(
                runs,
                || cli(plugins_file(false), verb, conn, target),
                || cli(plugins_file(true), verb, conn, target),
                || Ok(()),
            )?;
            push(sample(&case, CLI, inproc));
            push(sample(&case, CLI_ISOLATED, iso));
        } else {
            let runs = time(runs, || cli(plugins_file(false), verb, conn, target))?;
            push(sample(&case, CLI, runs));
        }
    }

    // Peak memory of one cold read, each in a fresh process.
    for case in ["sqlite", "postgres", "mysql", "parquet"] {
        let out = Command::new(&exe).arg("peak").arg(dir).arg(case).output()?;
        anyhow::ensure!(
            out.status.success(),
            "peak {case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (peak, frame): (u64, u64) = serde_json::from_slice(&out.stdout)?;
        eprintln!(
            "  peak_{case:<9} plugboard: {} above baseline for a {} frame ({:.2}×)",
            mb(peak),
            mb(frame),
            peak as f64 / frame as f64
        );
        push(Sample {
            peak_bytes: Some(peak),
            frame_bytes: Some(frame),
            ..sample(&format!("peak_{case}"), "plugboard", vec![0.0])
        });
    }

    // Exports stream: peak memory of `--output x.parquet` / `.csv` at 1M and 10M rows.
    for rows in [1_000_000u64, 10_000_000] {
        for ext in ["parquet", "csv"] {
            let generated = format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
                 SELECT i AS id, 'vendor ' || (i % 10) AS vendor, i * 0.5 AS fare FROM n"
            );
            let target = dir.join(format!("export.{ext}"));
            let t = Instant::now();
            let out = Command::new("/usr/bin/time")
                .args(["-f", "%M"])
                .arg(&bin)
                .current_dir(dir)
                .args([
                    "--plugins",
                    "plugins.toml",
                    "--secrets",
                    "secrets.toml",
                    "query",
                    "sqlite",
                ])
                .arg(&generated)
                .arg("--output")
                .arg(&target)
                .output()?;
            let secs = t.elapsed().as_secs_f64();
            anyhow::ensure!(
                out.status.success(),
                "export: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let kb: u64 = String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .context("time's output")?
                .trim()
                .parse()?;
            let _ = std::fs::remove_file(&target);
            push(Sample {
                peak_bytes: Some(kb * 1024),
                note: Some(format!("{rows} rows, whole-process peak RSS")),
                ..sample(
                    &format!("export_{ext}"),
                    &format!("plugboard CLI --output x.{ext}, {}M rows", rows / 1_000_000),
                    vec![secs],
                )
            });
        }
    }

    std::fs::write(dir.join("rust.json"), serde_json::to_vec_pretty(&out)?)?;
    Ok(())
}

/// Disk hits, each from a new host (as a new CLI process would see them): only the read
/// is timed, not building the host.
fn disk_hits(dir: &Path, runs: usize) -> anyhow::Result<Vec<f64>> {
    let hour = Duration::from_secs(3600);
    (0..runs)
        .map(|_| {
            let fresh = host(dir)?;
            let conn = fresh.connection("sqlite")?;
            let t = Instant::now();
            let (_df, outcome) = conn.query(SELECT).ttl(hour).fetch_shared()?;
            let secs = t.elapsed().as_secs_f64();
            anyhow::ensure!(
                outcome == Outcome::DiskHit,
                "expected a disk hit, got {outcome:?}"
            );
            Ok(secs)
        })
        .collect()
}

/// A private `redis-server` on a free loopback port, killed on drop.
struct RedisServer(std::process::Child, u16);

impl RedisServer {
    fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("start redis-server")?;
        let server = Self(child, port);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Redis tier: a hit of the 1M-row SQLite result that another host stored, each in a
/// fresh host with empty memory and disk tiers (only the read is timed); and what a
/// memory hit costs with Redis configured, in both invalidation modes (strict: one `MGET`
/// per read; pub/sub: none while the tokens are held).
fn redis_cases(dir: &Path, runs: usize, push: &mut impl FnMut(Sample)) -> anyhow::Result<()> {
    let server = RedisServer::start(dir)?;
    let config = plugboard::RedisConfig::new(&format!("redis://127.0.0.1:{}/", server.1))
        .map_err(anyhow::Error::msg)?;
    let hour = Duration::from_secs(3600);
    // Another host stores it.
    let writer = redis_host(dir, None, &config)?;
    let conn = writer.connection("sqlite")?;
    conn.query(SELECT).ttl(hour).refresh(true).fetch_shared()?;
    push(sample(
        "cache",
        "plugboard memory hit, Redis configured (strict)",
        time(runs * 100, || {
            let (df, outcome) = conn.query(SELECT).ttl(hour).fetch_shared()?;
            anyhow::ensure!(outcome == Outcome::MemoryHit, "expected a memory hit");
            Ok(df)
        })?,
    ));
    // The same in pub/sub mode: the generations are held in memory, no round trip.
    let mut pubsub = config.clone();
    pubsub.invalidation = plugboard::Invalidation::PubSub;
    let listener = redis_host(dir, None, &pubsub)?;
    let conn = listener.connection("sqlite")?;
    conn.query(SELECT).ttl(hour).fetch_shared()?;
    // Until the subscription is up and the tokens are held.
    std::thread::sleep(Duration::from_millis(300));
    conn.query(SELECT).ttl(hour).fetch_shared()?;
    push(sample(
        "cache",
        "plugboard memory hit, Redis configured (pubsub)",
        time(runs * 100, || {
            let (df, outcome) = conn.query(SELECT).ttl(hour).fetch_shared()?;
            anyhow::ensure!(outcome == Outcome::MemoryHit, "expected a memory hit");
            Ok(df)
        })?,
    ));
    let hits = redis_hits(dir, &config, runs)?;
    push(sample(
        "cache",
        "plugboard redis hit (a new host's first read, loopback)",
        hits,
    ));
    push(sample("cache", REDIS_FLOOR, redis_floor(server.1, runs)?));
    Ok(())
}

/// The floor of a Redis hit: the stored entry's chunks (all of the server's `c:` keys,
/// one entry's) fetched on two new connections at once, every `GET` sent before the
/// first reply is read, each value dropped. No decompression, no checks, no frame.
fn redis_floor(port: u16, runs: usize) -> anyhow::Result<Vec<f64>> {
    let keys = crate::floor::RedisFloor::connect(port)?.keys("plugboard:c:*")?;
    anyhow::ensure!(!keys.is_empty(), "no chunks stored for the Redis floor");
    let (a, b) = keys.split_at(keys.len() / 2);
    time(runs, || {
        let bytes = std::thread::scope(|s| {
            let other = s.spawn(|| crate::floor::RedisFloor::connect(port)?.fetch(b));
            let mine = crate::floor::RedisFloor::connect(port)?.fetch(a)?;
            let theirs = other
                .join()
                .map_err(|_| anyhow::anyhow!("a floor thread panicked"))??;
            anyhow::Ok(mine + theirs)
        })?;
        anyhow::ensure!(bytes > 0, "the Redis floor read nothing");
        Ok(())
    })
}

/// A host of the bench project with Redis configured and `cache` as its disk tier.
fn redis_host(
    dir: &Path,
    cache: Option<PathBuf>,
    redis: &plugboard::RedisConfig,
) -> anyhow::Result<Host> {
    Ok(Host::builder()
        .plugins_file(dir.join(plugins_file(false)))
        .secrets_file(dir.join("secrets.toml"))
        .use_env(false)
        .user_config_dir(None)
        .cache_dir(cache)
        .redis(Some(redis.clone()))
        .build()?)
}

/// `runs` Redis hits of the 1M-row SQLite result (stored once before), each the first read
/// of a fresh host with empty memory and disk tiers; only the read is timed.
fn redis_hits(
    dir: &Path,
    config: &plugboard::RedisConfig,
    runs: usize,
) -> anyhow::Result<Vec<f64>> {
    let hour = Duration::from_secs(3600);
    redis_host(dir, None, config)?
        .connection("sqlite")?
        .query(SELECT)
        .ttl(hour)
        .fetch_shared()?;
    (0..runs)
        .map(|_| {
            let empty = tempfile_dir(dir)?;
            let fresh = redis_host(dir, Some(empty.clone()), config)?;
            let conn = fresh.connection("sqlite")?;
            let t = Instant::now();
            let (_df, outcome) = conn.query(SELECT).ttl(hour).fetch_shared()?;
            let secs = t.elapsed().as_secs_f64();
            let _ = std::fs::remove_dir_all(&empty);
            anyhow::ensure!(
                outcome == Outcome::RedisHit,
                "expected a redis hit, got {outcome:?}"
            );
            Ok(secs)
        })
        .collect()
}

/// A new, empty folder under `dir`.
fn tempfile_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let d = dir.join(format!("redis-host-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Resident memory now and its peak since the last reset, in bytes.
fn rss() -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .context("no such field")?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()?;
        Ok(kb * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

pub fn peak(dir: &Path, case: &str) -> anyhow::Result<()> {
    let host = host(dir)?;
    let (conn, verb_read, target) = match case {
        "sqlite" => ("sqlite", false, SELECT),
        "postgres" => ("postgres", false, SELECT),
        "mysql" => ("mysql", false, SELECT),
        "parquet" => ("files", true, "trips.parquet"),
        other => bail!("unknown case {other}"),
    };
    let conn = host.connection(conn)?;
    // Warm the connection with a tiny read, then reset the peak to what is resident now.
    let warm = if verb_read {
        conn.read(target).limit(1)
    } else {
        conn.query(target).limit(1)
    };
    warm.ttl(Duration::ZERO).fetch()?;
    std::fs::write("/proc/self/clear_refs", "5").context("reset the peak (clear_refs)")?;
    let (base, _) = rss()?;
    let read = if verb_read {
        conn.read(target)
    } else {
        conn.query(target)
    };
    let df = read.ttl(Duration::ZERO).fetch()?;
    let (_, peak) = rss()?;
    let frame = frame_bytes(&df);
    println!(
        "{}",
        serde_json::to_string(&(peak.saturating_sub(base), frame))?
    );
    Ok(())
}

/// The frame's size as laid out. polars' `estimated_size` counts a view column's string
/// bytes only, not its 16-byte views; a string of at most 12 bytes lives inside its view.
/// `bench/peers.py` measures polars frames the same way.
fn frame_bytes(df: &DataFrame) -> u64 {
    let mut size = 0u64;
    for column in df.columns() {
        let lens: Option<Vec<usize>> = match column.dtype() {
            DataType::String => column.str().ok().map(|s| {
                s.downcast_iter()
                    .flat_map(|a| a.iter().map(|v| v.map_or(0, str::len)))
                    .collect()
            }),
            DataType::Binary => column.binary().ok().map(|b| {
                b.downcast_iter()
                    .flat_map(|a| a.iter().map(|v| v.map_or(0, <[u8]>::len)))
                    .collect()
            }),
            _ => None,
        };
        size += match lens {
            Some(lens) => {
                let long: usize = lens.iter().filter(|&&n| n > 12).sum();
                let validity = if column.null_count() > 0 {
                    column.len().div_ceil(8)
                } else {
                    0
                };
                (16 * column.len() + long + validity) as u64
            }
            None => column.as_materialized_series().estimated_size() as u64,
        };
    }
    size
}

/// Reads `case` `runs` times (after one warm-up) through one host and prints each time
/// and the median: a loop for `perf record`, and a quick look at one case outside a run.
pub fn repeat(dir: &Path, case: &str, isolated: bool, runs: usize) -> anyhow::Result<()> {
    project(dir)?;
    if case == "redis_hit" {
        let server = RedisServer::start(dir)?;
        let config = plugboard::RedisConfig::new(&format!("redis://127.0.0.1:{}/", server.1))
            .map_err(anyhow::Error::msg)?;
        let times = redis_hits(dir, &config, runs)?;
        print_times(times)?;
        println!("floor:");
        return print_times(redis_floor(server.1, runs)?);
    }
    if case == "mysql_floor" {
        return print_times(mysql_floor(runs, None)?);
    }
    let host = host_in(dir, isolated)?;
    let (conn, query) = match case {
        "sqlite" => ("sqlite", SELECT),
        "postgres" => ("postgres", SELECT),
        "lookup_sqlite" => ("sqlite", LOOKUP),
        "lookup_postgres" => ("postgres", LOOKUP),
        "mysql" => ("mysql", SELECT),
        "lookup_mysql" => ("mysql", LOOKUP),
        other => bail!("unknown case {other}"),
    };
    let conn = host.connection(conn)?;
    let mut lo = 0i64;
    let times = time(runs, || {
        lo = (lo + 7919) % 999_000;
        let mut read = conn.query(query).ttl(Duration::ZERO);
        if query == LOOKUP {
            read = read.param("lo", lo);
        }
        Ok(read.fetch()?)
    })?;
    print_times(times)
}

/// The MySQL floor's times: [`SELECT`] on one connection, its rows counted (they must be
/// the `expected` plugboard read, when given) and dropped.
fn mysql_floor(runs: usize, expected: Option<u64>) -> anyhow::Result<Vec<f64>> {
    let mut floor =
        crate::floor::MySqlFloor::connect("127.0.0.1:3306", "root", crate::data::PG_DB)?;
    time(runs, || {
        let rows = floor.rows(SELECT)?;
        if expected.is_some_and(|n| n != rows) || rows == 0 {
            bail!("the MySQL floor read {rows} rows, plugboard {expected:?}");
        }
        Ok(())
    })
}

fn print_times(times: Vec<f64>) -> anyhow::Result<()> {
    for t in &times {
        println!("{}", fmt_secs(*t));
    }
    println!("median {}", fmt_secs(median(times)));
    Ok(())
}

pub fn load_once(dir: &Path, isolated: bool) -> anyhow::Result<()> {
    let t = Instant::now();
    let host = host_in(dir, isolated)?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(host.plugins().len() == 4, "expected 4 plugins");
    println!("{secs}");
    Ok(())
}

pub fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

pub fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

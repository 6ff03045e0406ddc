//! plugboard's benchmark against its peers: the Rust side.
//!
//! `bench/run` drives it; see `bench/README.md`. Subcommands:
//!
//! * `prepare DIR` generates the data with a fixed seed: `trips` (1M rows by default) as a
//!   SQLite file, a Parquet file, and a table in the local PostgreSQL (`plugboard_bench`).
//! * `measure DIR` times plugboard's cases in this process (and whole CLI processes), with
//!   the plugins in process and, for SQLite and PostgreSQL, isolated in worker processes,
//!   and writes `DIR/rust.json`.
//! * `peak DIR CASE` runs one read and prints its peak memory (used by `measure`).
//! * `load DIR [--isolated]` builds a host once and prints the time (used by `measure`).
//! * `repeat DIR CASE [--isolated]` reads one case over and over, for a profiler.
//! * `report DIR` merges `rust.json` with the peers' `python.json`, prints the table and
//!   writes `bench/RESULTS.md`.

mod data;
mod floor;
mod measure;
mod report;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "plugboard's benchmark against its peers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the data (skipped when DIR already holds data of this size and seed)
    Prepare {
        dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
    },
    /// Time plugboard's cases; writes DIR/rust.json
    Measure {
        dir: PathBuf,
        #[arg(long, default_value_t = 7)]
        runs: usize,
    },
    /// One read of CASE in a fresh process: prints its peak memory as JSON
    Peak { dir: PathBuf, case: String },
    /// Open the plugins once in a fresh process: prints the time as JSON
    Load {
        dir: PathBuf,
        /// With sqlite and postgres isolated: the time includes starting their workers
        #[arg(long)]
        isolated: bool,
    },
    /// Read CASE (sqlite, postgres, mysql, lookup_sqlite, lookup_postgres, lookup_mysql)
    /// RUNS times in one host and print each time: a loop to run under `perf record`.
    /// redis_hit: RUNS Redis hits of the SQLite read, each in a fresh host (a private
    /// redis-server)
    Repeat {
        dir: PathBuf,
        case: String,
        /// Through the isolated plugin (a worker process)
        #[arg(long)]
        isolated: bool,
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// Merge DIR/rust.json and DIR/python.json into a table and bench/RESULTS.md
    Report {
        dir: PathBuf,
        #[arg(long, default_value = "bench/RESULTS.md")]
        out: PathBuf,
    },
}

/// The data folder as an absolute path: the CLI runs in it, and the secrets name files in it.
fn absolute(dir: PathBuf) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&dir)?;
    Ok(dir.canonicalize()?)
}

fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    match &mut cli.command {
        Command::Prepare { dir, .. }
        | Command::Measure { dir, .. }
        | Command::Peak { dir, .. }
        | Command::Load { dir, .. }
        | Command::Repeat { dir, .. }
        | Command::Report { dir, .. } => *dir = absolute(std::mem::take(dir))?,
    }
    match cli.command {
        Command::Prepare { dir, rows } => data::prepare(&dir, rows),
        Command::Measure { dir, runs } => measure::all(&dir, runs),
        Command::Peak { dir, case } => measure::peak(&dir, &case),
        Command::Load { dir, isolated } => measure::load_once(&dir, isolated),
        Command::Repeat {
            dir,
            case,
            isolated,
            runs,
        } => measure::repeat(&dir, &case, isolated, runs),
        Command::Report { dir, out } => report::write(&dir, &out),
    }
}

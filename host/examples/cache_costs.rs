//! What a cache hit costs against the read it saves, in one run, through the real SQLite
//! plugin: a cold read, a memory hit and a disk hit of the same result.
//!
//! ```sh
//! cargo build --release -p plugboard-sqlite
//! cargo run --release -p plugboard --example cache_costs -- [ROWS]   # default 1000000
//! ```
//!
//! The table `trips` (id, ts, vendor, distance, fare, passengers) is generated in a
//! temporary SQLite file; the disk tier lives in a temporary folder (warm page cache,
//! as for a second `plugboard query` right after the first).

use std::time::{Duration, Instant};

use plugboard::{Host, Outcome};

const RUNS: usize = 7;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .ok_or("cannot find the target folder")?;
    let lib = profile_dir.join(format!(
        "{}plugboard_sqlite{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    if !lib.exists() {
        return Err(format!(
            "{} is missing: run `cargo build --release -p plugboard-sqlite` first",
            lib.display()
        )
        .into());
    }
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("trips.db");
    std::fs::write(
        dir.path().join("plugins.toml"),
        format!("[[plugin]]\npath = {:?}\n", lib.display().to_string()),
    )?;
    std::fs::write(
        dir.path().join("secrets.toml"),
        format!(
            "[connections.trips]\ntype = \"sqlite\"\ndatabase = {:?}\n",
            db.display().to_string()
        ),
    )?;
    let builder = || {
        Host::builder()
            .plugins_file(dir.path().join("plugins.toml"))
            .secrets_file(dir.path().join("secrets.toml"))
            .use_env(false)
            .cache_dir(Some(dir.path().join("cache")))
    };
    let host = builder().build()?;
    let conn = host.connection("trips")?;
    conn.execute(
        "CREATE TABLE trips(id INTEGER PRIMARY KEY, ts TEXT, vendor TEXT, distance REAL, \
         fare REAL, passengers INTEGER)",
    )
    .statement(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows) \
         INSERT INTO trips SELECT i, datetime(1700000000 + i * 37, 'unixepoch'), \
         'vendor_' || (i % 10), (i % 1000) / 10.0, (i % 5000) / 100.0, i % 6 FROM n",
    )
    .param("rows", rows as i64)
    .run()?;

    let sql = "SELECT * FROM trips";
    let hour = Duration::from_secs(3600);

    let cold = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let df = conn.query(sql).ttl(Duration::ZERO).fetch_shared();
                let e = t.elapsed();
                assert_eq!(df.expect("read").1, Outcome::Miss);
                e
            })
            .collect(),
    );

    let t = Instant::now();
    let (df, outcome) = conn.query(sql).ttl(hour).fetch_shared()?;
    let store = t.elapsed();
    assert_eq!(outcome, Outcome::Miss);
    let size = df.estimated_size();
    let file = host
        .disk_cache()
        .map(|d| d.stats().total.bytes)
        .unwrap_or_default();

    let memory = median(
        (0..1000)
            .map(|_| {
                let t = Instant::now();
                let (_, o) = conn.query(sql).ttl(hour).fetch_shared().expect("hit");
                let e = t.elapsed();
                assert_eq!(o, Outcome::MemoryHit);
                e
            })
            .collect(),
    );

    // A fresh host per run: an empty memory tier, as in a new `plugboard` process.
    let disk = median(
        (0..RUNS)
            .map(|_| {
                let host = builder().build().expect("host");
                let conn = host.connection("trips").expect("connect");
                let t = Instant::now();
                let (df, o) = conn.query(sql).ttl(hour).fetch_shared().expect("hit");
                let e = t.elapsed();
                assert_eq!((o, df.height() as u64), (Outcome::DiskHit, rows));
                e
            })
            .collect(),
    );

    let ms = |d: Duration| {
        let us = d.as_secs_f64() * 1e6;
        if us < 1000.0 {
            format!("{us:8.1} µs")
        } else {
            format!("{:8.1} ms", us / 1000.0)
        }
    };
    println!(
        "{rows} rows × {} columns; DataFrame {:.1} MB, disk entry {:.1} MB",
        df.width(),
        size as f64 / 1e6,
        file as f64 / 1e6
    );
    println!("median of {RUNS} runs (memory hit: of 1000)");
    println!("  cold read (ttl 0)        {}", ms(cold));
    println!(
        "  miss + disk store        {}   ({:.2}× the cold read)",
        ms(store),
        store.as_secs_f64() / cold.as_secs_f64()
    );
    println!(
        "  memory hit               {}   ({:.2e}× the cold read)",
        ms(memory),
        memory.as_secs_f64() / cold.as_secs_f64()
    );
    println!(
        "  disk hit (new host)      {}   ({:.3}× the cold read)",
        ms(disk),
        disk.as_secs_f64() / cold.as_secs_f64()
    );
    Ok(())
}

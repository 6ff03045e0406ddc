//! Times cold reads (no cache) of one query through the real plugin boundary, in process.
//!
//! ```sh
//! cargo build --release -p plugboard-postgres   # or the plugin you time
//! cargo run --release -p plugboard --example read_time -- \
//!     --plugins plugins.toml --secrets secrets.toml CONNECTION "SELECT * FROM trips" [RUNS]
//! ```
//!
//! Prints rows, columns, the DataFrame's size, and min / median / max over RUNS (default 5)
//! after one warm-up read.

use std::time::{Duration, Instant};

use plugboard::Host;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut builder = Host::builder();
    let mut rest = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--plugins" => builder = builder.plugins_file(args.next().ok_or("--plugins PATH")?),
            "--secrets" => builder = builder.secrets_file(args.next().ok_or("--secrets PATH")?),
            _ => rest.push(a),
        }
    }
    let [conn, sql, runs @ ..] = rest.as_slice() else {
        return Err("usage: read_time [--plugins P] [--secrets S] CONNECTION SQL [RUNS]".into());
    };
    let runs: usize = runs.first().map(|r| r.parse()).transpose()?.unwrap_or(5);
    let host = builder.cache_dir(None).build()?;
    for e in host.load_errors() {
        eprintln!("warning: {e}");
    }
    let c = host.connection(conn)?;
    let read = || c.query(sql.as_str()).ttl(Duration::ZERO).fetch();
    let df = read()?; // warm-up: connection, server caches
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let df = read().expect("read");
            let e = t.elapsed();
            drop(df);
            e
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} rows × {} columns, {:.1} MB: min {:.1} ms, median {:.1} ms, max {:.1} ms ({runs} runs)",
        df.height(),
        df.width(),
        df.estimated_size() as f64 / 1e6,
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
    );
    Ok(())
}

//! The benchmark's data: one table `trips`, generated with a fixed seed, written as a
//! SQLite file, a Parquet file, a PostgreSQL table and a MySQL (MariaDB) table.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use chrono::DateTime;
use polars::prelude::*;

pub const SEED: u64 = 20_240_101;
pub const PG_DB: &str = "plugboard_bench";
const VENDORS: [&str; 10] = [
    "Yellow Cab",
    "Green Taxi",
    "Uber",
    "Lyft",
    "Via",
    "Curb",
    "Arro",
    "Juno",
    "Gett",
    "Bolt",
];

/// The MySQL server's database of the same name (MariaDB on 127.0.0.1:3306, `root`).
pub fn my_url() -> String {
    format!("mysql://root@127.0.0.1:3306/{PG_DB}")
}

pub fn pg_url() -> String {
    format!("postgresql://postgres@127.0.0.1:5432/{PG_DB}")
}

/// The table as a DataFrame: id, ts (text), vendor (~10 values), distance, fare, passengers.
pub fn trips(rows: usize) -> PolarsResult<DataFrame> {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let start = 1_704_067_200_i64; // 2024-01-01 00:00:00 UTC
    let mut ts = Vec::with_capacity(rows);
    let mut vendor = Vec::with_capacity(rows);
    let mut distance = Vec::with_capacity(rows);
    let mut fare = Vec::with_capacity(rows);
    let mut passengers = Vec::with_capacity(rows);
    for i in 0..rows as i64 {
        let t = start + i * 30 + rng.i64(0..30);
        ts.push(
            DateTime::from_timestamp(t, 0)
                .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default(),
        );
        vendor.push(VENDORS[rng.usize(..VENDORS.len())]);
        let d = (rng.f64() * 20.0 * 100.0).round() / 100.0;
        distance.push(d);
        fare.push(((2.5 + d * 1.75 + rng.f64() * 5.0) * 100.0).round() / 100.0);
        passengers.push(rng.i64(1..=6));
    }
    df!(
        "id" => (1..=rows as i64).collect::<Vec<_>>(),
        "ts" => ts,
        "vendor" => vendor,
        "distance" => distance,
        "fare" => fare,
        "passengers" => passengers,
    )
}

pub fn prepare(dir: &Path, rows: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let marker = dir.join(format!(".prepared-{rows}-{SEED}"));
    if marker.exists() && pg_rows()? == Some(rows) && my_rows()? == Some(rows) {
        eprintln!(
            "data: {} already holds {rows} rows (seed {SEED})",
            dir.display()
        );
        return Ok(());
    }
    let t = std::time::Instant::now();
    let mut df = trips(rows)?;
    ParquetWriter::new(std::fs::File::create(dir.join("trips.parquet"))?)
        .finish(&mut df)
        .map_err(|e| anyhow::anyhow!("write trips.parquet: {e}"))?;
    let csv = dir.join("trips.csv");
    CsvWriter::new(std::fs::File::create(&csv)?)
        .finish(&mut df)
        .map_err(|e| anyhow::anyhow!("write trips.csv: {e}"))?;

    let db = dir.join("trips.sqlite");
    let _ = std::fs::remove_file(&db);
    let mut conn = rusqlite::Connection::open(&db)?;
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         CREATE TABLE trips(id INTEGER PRIMARY KEY, ts TEXT, vendor TEXT, distance REAL,
                            fare REAL, passengers INTEGER);",
    )?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare("INSERT INTO trips VALUES (?, ?, ?, ?, ?, ?)")?;
        let col = |name: &str| df.column(name).map(|c| c.as_materialized_series().clone());
        let (id, ts, vendor) = (col("id")?, col("ts")?, col("vendor")?);
        let (distance, fare, passengers) = (col("distance")?, col("fare")?, col("passengers")?);
        let (id, ts, vendor) = (id.i64()?, ts.str()?, vendor.str()?);
        let (distance, fare, passengers) = (distance.f64()?, fare.f64()?, passengers.i64()?);
        for i in 0..rows {
            insert.execute(rusqlite::params![
                id.get(i),
                ts.get(i),
                vendor.get(i),
                distance.get(i),
                fare.get(i),
                passengers.get(i)
            ])?;
        }
    }
    tx.commit()?;
    drop(conn);

    if psql(
        "postgres",
        &format!("SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'"),
    )?
    .is_empty()
    {
        psql("postgres", &format!("CREATE DATABASE {PG_DB}"))?;
    }
    psql(
        PG_DB,
        "DROP TABLE IF EXISTS trips; CREATE TABLE trips(id bigint PRIMARY KEY, ts text, \
         vendor text, distance double precision, fare double precision, passengers bigint)",
    )?;
    psql(
        PG_DB,
        &format!("\\copy trips FROM '{}' CSV HEADER", csv.display()),
    )?;
    psql(PG_DB, "VACUUM ANALYZE trips")?;
    mariadb(&format!(
        "CREATE DATABASE IF NOT EXISTS {PG_DB}; USE {PG_DB}; DROP TABLE IF EXISTS trips; \
         CREATE TABLE trips(id BIGINT PRIMARY KEY, ts TEXT, vendor TEXT, distance DOUBLE, \
         fare DOUBLE, passengers BIGINT) ENGINE = InnoDB; \
         LOAD DATA LOCAL INFILE '{}' INTO TABLE trips FIELDS TERMINATED BY ',' \
         OPTIONALLY ENCLOSED BY '\"' IGNORE 1 LINES; ANALYZE TABLE trips",
        csv.display()
    ))?;
    std::fs::write(&marker, "")?;
    eprintln!(
        "data: {rows} rows as SQLite, Parquet, PostgreSQL and MySQL in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn pg_rows() -> anyhow::Result<Option<usize>> {
    if psql(
        "postgres",
        &format!("SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'"),
    )?
    .is_empty()
    {
        return Ok(None);
    }
    let n = psql(
        PG_DB,
        "SELECT CASE WHEN to_regclass('trips') IS NULL THEN -1 ELSE (SELECT count(*) FROM trips) END",
    )?;
    Ok(n.parse::<usize>().ok())
}

fn my_rows() -> anyhow::Result<Option<usize>> {
    let n = mariadb(&format!(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = '{PG_DB}' AND table_name = 'trips'"
    ))?;
    if n != "1" {
        return Ok(None);
    }
    Ok(mariadb(&format!("SELECT COUNT(*) FROM {PG_DB}.trips"))?
        .parse::<usize>()
        .ok())
}

/// Runs `sql` with the `mariadb` client as `root` on 127.0.0.1:3306; returns what it printed.
fn mariadb(sql: &str) -> anyhow::Result<String> {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--local-infile=1",
            "--batch",
            "--skip-column-names",
            "-h",
            "127.0.0.1",
            "-P",
            "3306",
            "-u",
            "root",
            "-e",
            sql,
        ])
        .output()
        .context("run the mariadb client")?;
    if !out.status.success() {
        bail!("mariadb: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `psql` on the bench's server and database `db`, without the user's `.psqlrc`, stopping
/// at the first error.
pub fn psql_command(db: &str) -> Command {
    let mut cmd = Command::new("psql");
    cmd.args([
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        db,
    ]);
    cmd
}

fn psql(db: &str, sql: &str) -> anyhow::Result<String> {
    let out = psql_command(db)
        .args(["-A", "-t", "-c", sql])
        .output()
        .context("run psql")?;
    if !out.status.success() {
        bail!(
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

//! Streamed reads and exports through the real SQLite `.so`: batch by batch, equal to the
//! cached read, written atomically, cached on disk only when whole.

use std::time::Duration;

use plugboard::output::{self, Format};
use plugboard::{Host, Outcome};
use plugboard_tests::{Project, cli};
use polars::prelude::*;

/// 200,000 rows: four batches of the default 65,536.
const ROWS: i64 = 200_000;
const QUERY: &str = "SELECT * FROM trips ORDER BY id";

fn project() -> Project {
    let p = Project::new(&["plugboard_sqlite"], "");
    p.write(
        "secrets.toml",
        &format!(
            "[connections.trips]\ntype = \"sqlite\"\ndatabase = {:?}\npool_size = 1\n",
            p.path("trips.db").display().to_string()
        ),
    );
    let db = rusqlite::Connection::open(p.path("trips.db")).expect("open");
    db.execute_batch(&format!(
        "CREATE TABLE trips(id INTEGER PRIMARY KEY, vendor TEXT, fare REAL, note BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
         INSERT INTO trips SELECT i, 'v' || (i % 10), CASE WHEN i % 7 = 0 THEN NULL ELSE i * 0.25 END,
                                  CASE WHEN i % 5 = 0 THEN x'00ff' END FROM n;"
    ))
    .expect("fill");
    p
}

fn host(p: &Project) -> Host {
    p.host()
}

fn concat(frames: Vec<DataFrame>) -> DataFrame {
    let mut frames = frames.into_iter();
    let mut all = frames.next().expect("at least one batch");
    for f in frames {
        all.vstack_mut(&f).expect("vstack");
    }
    all
}

#[test]
fn a_stream_comes_batch_by_batch_and_equals_the_cached_read() {
    let p = project();
    let host = host(&p);
    let conn = host.connection("trips").expect("connect");
    let stream = conn
        .query(QUERY)
        .ttl(Duration::ZERO)
        .stream()
        .expect("stream");
    assert_eq!(stream.outcome(), Outcome::Miss);
    let schema = stream.schema().clone();
    let frames: Vec<DataFrame> = stream.collect::<Result<_, _>>().expect("batches");
    assert_eq!(
        frames.iter().map(DataFrame::height).collect::<Vec<_>>(),
        [65_536, 65_536, 65_536, 3_392]
    );
    assert!(frames.iter().all(|f| f.schema().as_ref() == &schema));
    let streamed = concat(frames);
    let fetched = conn
        .query(QUERY)
        .ttl(Duration::ZERO)
        .fetch()
        .expect("fetch");
    assert!(streamed.equals_missing(&fetched));

    // Stopping early hands the pooled connection back (the pool has one): the next read
    // on the same connection does not wait forever.
    let mut stream = conn.query(QUERY).stream().expect("stream");
    assert!(stream.next().is_some());
    drop(stream);
    let n = conn
        .query("SELECT count(*) AS n FROM trips")
        .fetch()
        .expect("count");
    assert_eq!(plugboard_tests::int(&n, "n"), ROWS);
}

#[test]
fn a_stream_with_a_ttl_fills_the_disk_cache_and_a_cached_result_streams_from_it() {
    let p = project();
    let hour = Duration::from_secs(3600);
    let streamed = {
        let host = host(&p);
        let conn = host.connection("trips").expect("connect");
        let frames: Vec<DataFrame> = conn
            .query(QUERY)
            .ttl(hour)
            .stream()
            .expect("stream")
            .collect::<Result<_, _>>()
            .expect("batches");
        concat(frames)
    };
    assert_eq!(p.cache_entries().len(), 1, "stored on disk as it passed");

    let host = host(&p);
    let conn = host.connection("trips").expect("connect");
    let (cached, outcome) = conn.query(QUERY).ttl(hour).fetch_shared().expect("fetch");
    assert_eq!(
        outcome,
        Outcome::DiskHit,
        "a fetch finds what the stream stored"
    );
    assert!(cached.equals_missing(&streamed));
    let again = conn.query(QUERY).ttl(hour).stream().expect("stream");
    assert_eq!(again.outcome(), Outcome::MemoryHit);
    let frames: Vec<DataFrame> = again.collect::<Result<_, _>>().expect("batches");
    assert!(concat(frames).equals_missing(&streamed));
}

#[test]
fn exports_stream_into_every_batch_format_and_equal_the_whole_write() {
    let p = project();
    let fetched = host(&p)
        .connection("trips")
        .expect("connect")
        .query(QUERY)
        .fetch()
        .expect("fetch");
    for (file, format) in [
        ("x.csv", Format::Csv),
        ("x.ndjson", Format::Ndjson),
        ("x.parquet", Format::Parquet),
        ("x.arrow", Format::Arrow),
    ] {
        cli!(p, ["query", "trips", QUERY, "--output", file]).ok();
        let written = std::fs::read(p.path(file)).expect("read the export");
        match format {
            Format::Csv | Format::Ndjson => {
                let mut whole = Vec::new();
                output::write(&fetched, format, &mut whole).expect("write");
                assert!(
                    written == whole,
                    "{file} differs from writing the whole frame"
                );
            }
            Format::Parquet => {
                let back = ParquetReader::new(std::io::Cursor::new(written))
                    .finish()
                    .expect("parquet");
                assert!(back.equals_missing(&fetched), "{file}");
            }
            _ => {
                let back = IpcReader::new(std::io::Cursor::new(written))
                    .finish()
                    .expect("ipc");
                assert!(back.equals_missing(&fetched), "{file}");
            }
        }
    }
    // Standard output streams too.
    let csv = cli!(p, ["query", "trips", QUERY, "--format", "csv"]).ok();
    assert_eq!(csv.lines().count(), ROWS as usize + 1);
}

#[test]
fn a_stream_that_fails_midway_leaves_the_old_file_and_no_cache_entry() {
    let p = project();
    // The first batch fixes `fare` as Float64; a later batch holds text in it.
    let db = rusqlite::Connection::open(p.path("trips.db")).expect("open");
    db.execute("UPDATE trips SET fare = 'n/a' WHERE id = 150000", [])
        .expect("update");
    std::fs::write(p.path("old.parquet"), b"the previous export").expect("write");
    let err = cli!(
        p,
        [
            "query",
            "trips",
            QUERY,
            "--output",
            "old.parquet",
            "--ttl",
            "1h"
        ]
    )
    .fails();
    assert!(
        err.contains(r#"column "fare": rows 131073..196608 need Utf8View, but the first 65536 rows fixed it as Float64"#)
            && err.contains("CAST"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(p.path("old.parquet")).expect("old file"),
        b"the previous export",
        "the old file is untouched"
    );
    let leftovers: Vec<_> = std::fs::read_dir(p.dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".plugboard-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file is left: {leftovers:?}"
    );
    assert!(
        p.cache_entries().is_empty(),
        "a failed read is never cached"
    );

    // The cast the message suggests works.
    cli!(
        p,
        [
            "query",
            "trips",
            "SELECT id, CAST(fare AS TEXT) AS fare FROM trips ORDER BY id",
            "--output",
            "old.parquet"
        ]
    )
    .ok();
    let back = ParquetReader::new(std::fs::File::open(p.path("old.parquet")).expect("open"))
        .finish()
        .expect("parquet");
    assert_eq!(back.height(), ROWS as usize);
}

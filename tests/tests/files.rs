//! The files connector through the real `.so`: every format against a reference frame,
//! globs and folders, read options, root confinement, damaged files, and the same reads
//! from a real HTTP server, a real S3 server (moto, with IAM checks), Google Cloud Storage's
//! XML API (moto again: see `servers::gcs_xml`) and Azure Blob Storage (Azurite, with Shared
//! Key and SAS checks), all on 127.0.0.1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use plugboard::Host;
use plugboard_tests::{Project, cli, servers};
use polars::prelude::*;

const ROWS: usize = 1000;

/// The frame every file holds: ints, text, floats with nulls, bools.
fn reference() -> DataFrame {
    df!(
        "id" => (0..ROWS as i64).collect::<Vec<_>>(),
        "vendor" => (0..ROWS).map(|i| format!("vendor-{}", i % 7)).collect::<Vec<_>>(),
        "distance" => (0..ROWS)
            .map(|i| (i % 11 != 3).then_some(i as f64 * 0.25))
            .collect::<Vec<_>>(),
        "passengers" => (0..ROWS as i64).map(|i| i % 5 + 1).collect::<Vec<_>>(),
        "paid" => (0..ROWS).map(|i| i % 3 != 0).collect::<Vec<_>>(),
    )
    .expect("reference frame")
}

fn create(path: &Path) -> std::fs::File {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::File::create(path).expect("create")
}

fn write_csv(df: &DataFrame, path: &Path, separator: u8) {
    CsvWriter::new(create(path))
        .with_separator(separator)
        .finish(&mut df.clone())
        .expect("write csv");
}

fn write_parquet(df: &DataFrame, path: &Path) {
    ParquetWriter::new(create(path))
        .finish(&mut df.clone())
        .expect("write parquet");
}

fn write_json(df: &DataFrame, path: &Path, format: JsonFormat) {
    JsonWriter::new(create(path))
        .with_json_format(format)
        .finish(&mut df.clone())
        .expect("write json");
}

fn write_ipc(df: &DataFrame, path: &Path) {
    IpcWriter::new(create(path))
        .finish(&mut df.clone())
        .expect("write ipc");
}

fn gzip(path: &Path) -> PathBuf {
    let out = PathBuf::from(format!("{}.gz", path.display()));
    let mut enc = flate2::write::GzEncoder::new(create(&out), flate2::Compression::default());
    enc.write_all(&std::fs::read(path).expect("read"))
        .expect("gzip");
    enc.finish().expect("gzip");
    out
}

fn zstd(path: &Path) -> PathBuf {
    let out = PathBuf::from(format!("{}.zst", path.display()));
    let data = zstd::encode_all(&std::fs::read(path).expect("read")[..], 3).expect("zstd");
    std::fs::write(&out, data).expect("write zst");
    out
}

/// The reference in every format, plain and compressed, in `dir`; returns the file names.
fn every_format(dir: &Path) -> Vec<String> {
    let df = reference();
    write_csv(&df, &dir.join("trips.csv"), b',');
    write_csv(&df, &dir.join("trips.tsv"), b'\t');
    write_parquet(&df, &dir.join("trips.parquet"));
    write_json(&df, &dir.join("trips.json"), JsonFormat::Json);
    write_json(&df, &dir.join("trips.ndjson"), JsonFormat::JsonLines);
    write_ipc(&df, &dir.join("trips.arrow"));
    std::fs::copy(dir.join("trips.arrow"), dir.join("trips.feather")).expect("copy");
    gzip(&dir.join("trips.csv"));
    gzip(&dir.join("trips.json"));
    zstd(&dir.join("trips.tsv"));
    zstd(&dir.join("trips.ndjson"));
    [
        "trips.csv",
        "trips.tsv",
        "trips.parquet",
        "trips.json",
        "trips.ndjson",
        "trips.arrow",
        "trips.feather",
        "trips.csv.gz",
        "trips.json.gz",
        "trips.tsv.zst",
        "trips.ndjson.zst",
    ]
    .map(String::from)
    .to_vec()
}

/// `df` split into `parts` Parquet files `dir/part-<i>.parquet`.
fn parts(df: &DataFrame, dir: &Path, parts: usize) {
    let size = df.height().div_ceil(parts);
    for i in 0..parts {
        write_parquet(
            &df.slice((i * size) as i64, size),
            &dir.join(format!("part-{i}.parquet")),
        );
    }
}

fn project(secrets: &str) -> Project {
    Project::new(&["plugboard_files"], secrets)
}

fn local(p: &Project) -> Host {
    std::fs::create_dir_all(p.path("data")).expect("mkdir");
    p.builder().build().expect("host")
}

fn local_project() -> Project {
    // The root is the project's own `data` folder, given as an absolute path so that the
    // library tests do not depend on the working directory.
    let p = project("");
    let root = p.path("data");
    std::fs::create_dir_all(&root).expect("mkdir");
    p.write(
        "secrets.toml",
        &format!(
            "[connections.files]\ntype = \"files\"\nroot = {:?}\n",
            root.display().to_string()
        ),
    );
    p
}

#[track_caller]
fn assert_frame(got: &DataFrame, want: &DataFrame, what: &str) {
    assert_eq!(got.schema(), want.schema(), "{what}: schema");
    assert!(
        got.equals_missing(want),
        "{what}: values differ\n got: {got}\nwant: {want}"
    );
}

#[test]
fn every_format_reads_as_the_reference() {
    let p = local_project();
    let files = every_format(&p.path("data"));
    let host = local(&p);
    let conn = host.connection("files").expect("connect");
    let want = reference();
    for name in &files {
        let got = conn
            .read(name)
            .fetch()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_frame(&got, &want, name);
    }
    // The CLI prints what polars would write: the CSV file itself, byte for byte.
    let csv = std::fs::read_to_string(p.path("data/trips.csv")).expect("read");
    for name in ["trips.parquet", "trips.ndjson.zst", "trips.csv.gz"] {
        let out = cli!(p, ["read", "files", name, "--format", "csv"]).ok();
        assert!(
            out == csv,
            "{name}: CLI output differs from the reference CSV"
        );
    }
}

#[test]
fn read_options_override_what_the_name_says() {
    let p = local_project();
    let data = p.path("data");
    let want = reference();
    write_csv(&want, &data.join("trips.data"), b';');
    std::fs::write(data.join("raw.txt"), "x|y\n1|NA\n2|b\n").expect("write");
    let host = local(&p);
    let conn = host.connection("files").expect("connect");

    let err = conn
        .read("trips.data")
        .fetch()
        .expect_err("no format")
        .to_string();
    assert!(err.contains("trips.data: cannot tell the format"), "{err}");
    let got = conn
        .read("trips.data")
        .option("format", "csv")
        .option("delimiter", ";")
        .fetch()
        .expect("csv with ;");
    assert_frame(&got, &want, "format + delimiter");

    let got = conn
        .read("trips.data")
        .option("format", "csv")
        .option("delimiter", ";")
        .option("columns", serde_json::json!(["paid", "id"]))
        .limit(10)
        .fetch()
        .expect("columns + limit");
    assert_frame(
        &got,
        &want.select(["paid", "id"]).expect("select").head(Some(10)),
        "columns",
    );

    let got = conn
        .read("raw.txt")
        .option("format", "csv")
        .option("delimiter", "|")
        .option("header", false)
        .option("skip_rows", 1)
        .option("null_values", "NA")
        .fetch()
        .expect("headerless");
    let expected = df!("column_1" => [1i64, 2], "column_2" => [None, Some("b")]).expect("df");
    assert_frame(&got, &expected, "header = false, null_values");

    // The same through the CLI: -O KEY=VALUE.
    let out = cli!(
        p,
        [
            "read",
            "files",
            "data/raw.txt",
            "-x",
            "format=csv",
            "-x",
            "delimiter=|",
            "-x",
            "columns=y"
        ]
    );
    // The CLI's connection has its root as an absolute path, so data/ is not under it.
    assert!(out.fails().contains("data/raw.txt: file not found"));
    let out = cli!(
        p,
        [
            "read",
            "files",
            "raw.txt",
            "-x",
            "format=csv",
            "-x",
            "delimiter=|",
            "-x",
            "columns=y"
        ]
    )
    .ok();
    assert_eq!(out, "y\nNA\nb\n");
    let out = cli!(
        p,
        [
            "read",
            "files",
            "raw.txt",
            "-x",
            "format=csv",
            "-x",
            "delimiter=|",
            "-x",
            "null_values=NA"
        ]
    )
    .ok();
    assert_eq!(out, "x,y\n1,\n2,b\n");
    let err = cli!(p, ["read", "files", "raw.txt", "-x", "fromat=csv"]).fails();
    assert!(err.contains("unknown read option \"fromat\""), "{err}");
    let err = cli!(p, ["read", "files", "raw.txt", "-p", "v=1"]).fails();
    assert!(err.contains("takes no parameters"), "{err}");
}

#[test]
fn globs_and_folders_read_as_one_table() {
    let p = local_project();
    let data = p.path("data");
    let want = reference();
    parts(&want, &data.join("trips"), 4);
    std::fs::write(data.join("trips/_SUCCESS"), "").expect("write");
    std::fs::write(data.join("trips/.part-0.parquet.crc"), "junk").expect("write");
    std::fs::write(data.join("trips/README.md"), "# not data").expect("write");
    let host = local(&p);
    let conn = host.connection("files").expect("connect");

    for target in [
        "trips/*.parquet",
        "trips/part-?.parquet",
        "trips",
        "trips/",
        "trips/**/*.parquet",
    ] {
        let got = conn
            .read(target)
            .fetch()
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_frame(&got, &want, target);
    }
    // A limit stops reading files once it is met, in file order.
    let got = conn
        .read("trips/*.parquet")
        .limit(300)
        .fetch()
        .expect("limit");
    assert_frame(&got, &want.head(Some(300)), "limit across files");

    let err = conn
        .read("trips/*.csv")
        .fetch()
        .expect_err("no match")
        .to_string();
    assert!(err.contains("trips/*.csv: no files match"), "{err}");
    // A glob names its files: README.md matched by * is not skipped silently.
    let err = conn
        .read("trips/*")
        .fetch()
        .expect_err("README")
        .to_string();
    assert!(
        err.contains("trips/README.md: cannot tell the format"),
        "{err}"
    );

    // Files that disagree on a type, or on the columns, are named with the column.
    let other = data.join("mixed");
    write_parquet(&want.head(Some(5)), &other.join("a.parquet"));
    let mut changed = want.head(Some(5));
    changed
        .replace(
            "passengers",
            changed
                .column("passengers")
                .expect("col")
                .cast(&DataType::Float64)
                .expect("cast"),
        )
        .expect("replace");
    write_parquet(&changed, &other.join("b.parquet"));
    let err = conn
        .read("mixed/*.parquet")
        .fetch()
        .expect_err("mismatch")
        .to_string();
    assert!(
        err.contains("schema mismatch: column passengers is f64 in mixed/b.parquet but i64 in mixed/a.parquet"),
        "{err}"
    );
    write_parquet(
        &want.head(Some(5)).drop("paid").expect("drop"),
        &other.join("b.parquet"),
    );
    let err = conn
        .read("mixed")
        .fetch()
        .expect_err("mismatch")
        .to_string();
    assert!(
        err.contains("schema mismatch: mixed/b.parquet has columns"),
        "{err}"
    );
}

#[test]
fn paths_that_leave_the_root_are_refused() {
    let p = local_project();
    let data = p.path("data");
    let want = reference();
    write_csv(&want, &data.join("trips.csv"), b',');
    std::fs::write(p.path("outside.csv"), "secret\n42\n").expect("write");
    std::fs::create_dir_all(p.path("elsewhere")).expect("mkdir");
    std::fs::write(p.path("elsewhere/x.csv"), "secret\n42\n").expect("write");
    std::os::unix::fs::symlink(p.path("outside.csv"), data.join("link.csv")).expect("symlink");
    std::os::unix::fs::symlink(p.path("elsewhere"), data.join("linkdir")).expect("symlink");
    std::os::unix::fs::symlink(data.join("trips.csv"), data.join("alias.csv")).expect("symlink");
    let host = local(&p);
    let conn = host.connection("files").expect("connect");

    let absolute = data.join("trips.csv").display().to_string();
    let outside = p.path("outside.csv").display().to_string();
    for target in [
        "../outside.csv",
        "trips/../../outside.csv",
        outside.as_str(),
        absolute.as_str(),
        "/etc/passwd",
        "file:///etc/passwd",
        "link.csv",
        "linkdir/x.csv",
        "linkdir/*.csv",
        "linkdir",
        "*.csv",
    ] {
        let err = conn.read(target).fetch().expect_err(target).to_string();
        assert!(err.contains("refused"), "{target}: {err}");
        assert!(!err.contains("42"), "{target}: {err}");
    }
    // A symlink that stays inside the root is fine.
    let got = conn.read("alias.csv").fetch().expect("alias");
    assert_frame(&got, &want, "symlink inside the root");

    let err = cli!(p, ["read", "files", "../outside.csv"]).fails();
    assert!(err.contains("../outside.csv: refused"), "{err}");
}

#[test]
fn damaged_files_are_errors_naming_the_file_and_format() {
    let p = local_project();
    let data = p.path("data");
    let want = reference();
    write_parquet(&want, &data.join("good.parquet"));
    write_ipc(&want, &data.join("good.arrow"));
    let parquet = std::fs::read(data.join("good.parquet")).expect("read");
    let ipc = std::fs::read(data.join("good.arrow")).expect("read");
    std::fs::write(
        data.join("truncated.parquet"),
        &parquet[..parquet.len() / 2],
    )
    .expect("write");
    let mut flipped = parquet.clone();
    let middle = flipped.len() / 2;
    flipped[middle - 64..middle + 64].fill(0xA5);
    std::fs::write(data.join("scribbled.parquet"), &flipped).expect("write");
    std::fs::write(
        data.join("noise.parquet"),
        b"PAR1 this is not a parquet file",
    )
    .expect("write");
    std::fs::write(data.join("truncated.arrow"), &ipc[..ipc.len() / 3]).expect("write");
    std::fs::write(data.join("bad.json"), "[{\"a\": 1}, {\"a\": ").expect("write");
    std::fs::write(data.join("bad.csv.gz"), "plain text, not gzip").expect("write");
    std::fs::write(data.join("bad.ndjson.zst"), "not zstd").expect("write");
    std::fs::write(data.join("empty.parquet"), "").expect("write");
    let host = local(&p);
    let conn = host.connection("files").expect("connect");

    for (name, format) in [
        ("truncated.parquet", "parquet"),
        ("scribbled.parquet", "parquet"),
        ("noise.parquet", "parquet"),
        ("empty.parquet", "parquet"),
        ("truncated.arrow", "ipc"),
        ("bad.json", "json"),
        ("bad.csv.gz", "csv"),
        ("bad.ndjson.zst", "ndjson"),
    ] {
        match conn.read(name).fetch() {
            Ok(df) => {
                // A scribble may land in values rather than structure; it must not be the
                // reference then (decoding it must at least have noticed nothing wrong).
                assert_eq!(
                    name, "scribbled.parquet",
                    "{name} read without an error: {df}"
                );
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("{name}: cannot read as {format}")),
                    "{name}: {msg}"
                );
                assert!(!msg.contains("panic"), "{name}: {msg}");
            }
        }
    }
    let err = conn
        .read("missing.parquet")
        .fetch()
        .expect_err("missing")
        .to_string();
    assert!(err.contains("missing.parquet: file not found"), "{err}");
    // The connection is still good.
    assert_frame(
        &conn.read("good.parquet").fetch().expect("good"),
        &want,
        "after errors",
    );
    let err = cli!(p, ["read", "files", "truncated.parquet"]).fails();
    assert!(
        err.contains("truncated.parquet: cannot read as parquet"),
        "{err}"
    );
}

#[test]
fn reads_go_through_the_shared_cache() {
    let p = local_project();
    let data = p.path("data");
    std::fs::write(data.join("t.csv"), "a\n1\n").expect("write");
    let host = local(&p);
    let conn = host.connection("files").expect("connect");
    let hour = Duration::from_secs(3600);
    let first = conn.read("t.csv").ttl(hour).fetch().expect("read");
    std::fs::write(data.join("t.csv"), "a\n2\n").expect("write");
    let cached = conn.read("t.csv").ttl(hour).fetch().expect("read");
    assert!(cached.equals(&first), "served from the cache: {cached}");
    let fresh = conn
        .read("t.csv")
        .ttl(hour)
        .refresh(true)
        .fetch()
        .expect("read");
    assert_eq!(
        fresh.column("a").expect("a").i64().expect("i64").get(0),
        Some(2)
    );
    // Options are part of the key.
    let other = conn
        .read("t.csv")
        .ttl(hour)
        .option("header", false)
        .fetch()
        .expect("read");
    assert_eq!(other.height(), 2);

    // A second process finds the entry on disk.
    assert!(
        cli!(p, ["read", "files", "t.csv", "--ttl", "1h"])
            .ok()
            .contains('2')
    );
    let run = cli!(p, ["-v", "read", "files", "t.csv", "--ttl", "1h"]);
    assert!(run.stderr().contains("disk hit"), "{}", run.stderr());
}

#[test]
fn files_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let want = reference();
    every_format(dir.path());
    parts(&want, &dir.path().join("trips"), 3);
    let server = servers::http(dir.path());
    let p = project(&format!(
        "[connections.web]\ntype = \"files\"\nroot = \"{url}/trips/\"\n\n\
         [connections.anyweb]\ntype = \"files\"\nprotocol = \"http\"\ntimeout = 10\n",
        url = server.url()
    ));
    let host = p.host();
    let web = host.connection("web").expect("connect");
    assert_frame(
        &web.read("part-1.parquet").fetch().expect("read"),
        &want.slice(334, 334),
        "part-1",
    );
    let anyweb = host.connection("anyweb").expect("connect");
    for name in [
        "trips.csv.gz",
        "trips.parquet",
        "trips.ndjson.zst",
        "trips.arrow",
    ] {
        let url = format!("{}/{name}", server.url());
        let got = anyweb
            .read(&url)
            .fetch()
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_frame(&got, &want, &url);
    }
    let err = web
        .read("missing.csv")
        .fetch()
        .expect_err("404")
        .to_string();
    assert!(err.contains("missing.csv: file not found"), "{err}");
    let err = web.read("*.parquet").fetch().expect_err("glob").to_string();
    assert!(err.contains("cannot be listed"), "{err}");
    let err = web
        .read("../trips.csv")
        .fetch()
        .expect_err("escape")
        .to_string();
    assert!(err.contains("refused"), "{err}");
    let err = web
        .read(format!("{}/trips.csv", server.url()))
        .fetch()
        .expect_err("outside")
        .to_string();
    assert!(err.contains("outside the connection's root"), "{err}");
    let err = anyweb
        .read("trips.csv")
        .fetch()
        .expect_err("relative")
        .to_string();
    assert!(err.contains("give a full URL"), "{err}");

    let out = cli!(
        p,
        [
            "read",
            "web",
            "part-0.parquet",
            "--limit",
            "2",
            "--format",
            "csv"
        ]
    )
    .ok();
    assert_eq!(out.lines().count(), 3, "{out}");
    drop(server);
    let err = cli!(p, ["read", "web", "part-2.parquet"]).fails();
    assert!(err.contains("part-2.parquet"), "{err}");
}

/// What the cloud tests put in their bucket, made in `dir`: the reference in four Parquet
/// parts under `trips/2024/` with a `_SUCCESS` marker, a gzipped CSV at `trips/flat.csv.gz`,
/// and `private/secret.csv` outside the roots they read under.
fn cloud_uploads(dir: &Path) -> Vec<(String, PathBuf)> {
    parts(&reference(), dir, 4);
    every_format(dir);
    let part = |i: usize| dir.join(format!("part-{i}.parquet"));
    (0..4)
        .map(|i| (format!("trips/2024/part-{i}.parquet"), part(i)))
        .chain([
            ("trips/2024/_SUCCESS".to_owned(), dir.join("trips.csv")),
            ("trips/flat.csv.gz".to_owned(), dir.join("trips.csv.gz")),
            ("private/secret.csv".to_owned(), dir.join("trips.csv")),
        ])
        .collect()
}

/// The reads every cloud store must serve alike, on `lake` (rooted at `<scheme>://lake/trips`)
/// and `buckets` (no root: `bucket/key` paths): globs, folders with and without a slash,
/// compression, URLs of the store's other schemes, root confinement, missing files.
fn same_as_s3(host: &Host, scheme: &str, other_schemes: &[&str]) {
    let want = reference();
    let lake = host.connection("lake").expect("connect lake");
    for target in [
        "2024/*.parquet".to_owned(),
        "2024".to_owned(),
        "2024/".to_owned(),
        format!("{scheme}://lake/trips/2024/*.parquet"),
    ] {
        let got = lake
            .read(&target)
            .fetch()
            .unwrap_or_else(|e| panic!("{scheme}: {target}: {e}"));
        assert_frame(&got, &want, &target);
    }
    assert_frame(
        &lake.read("flat.csv.gz").fetch().expect("csv.gz"),
        &want,
        "csv.gz",
    );
    for other in other_schemes {
        let target = format!("{other}://lake/trips/2024/part-1.parquet");
        let got = lake
            .read(&target)
            .fetch()
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_frame(&got, &want.slice(250, 250), &target);
    }
    let buckets = host.connection("buckets").expect("connect buckets");
    assert_frame(
        &buckets
            .read("lake/trips/2024/part-3.parquet")
            .fetch()
            .expect("bucket/key"),
        &want.slice(750, 250),
        "bucket/key",
    );
    assert_frame(
        &buckets
            .read(format!("{scheme}://lake/private/secret.csv"))
            .fetch()
            .expect("url"),
        &want,
        "URL",
    );
    for target in [
        "../private/secret.csv".to_owned(),
        format!("{scheme}://lake/private/secret.csv"),
        format!("{scheme}://other/x.csv"),
        "/private/secret.csv".to_owned(),
        "2024/../../private/secret.csv".to_owned(),
    ] {
        let err = lake.read(&target).fetch().expect_err(&target).to_string();
        assert!(err.contains("refused"), "{scheme}: {target}: {err}");
    }
    let err = lake
        .read("2024/missing.parquet")
        .fetch()
        .expect_err("missing")
        .to_string();
    assert!(
        err.contains(&format!(
            "{scheme}://lake/trips/2024/missing.parquet: file not found"
        )),
        "{err}"
    );
    let err = lake
        .read("2025/*.parquet")
        .fetch()
        .expect_err("no match")
        .to_string();
    assert!(err.contains("no files match"), "{err}");
}

/// Asserts that none of `secrets` appears in what `run` printed, on either stream.
#[track_caller]
fn assert_hidden(run: &plugboard_tests::Run, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !run.stdout().contains(secret) && !run.stderr().contains(secret),
            "a secret leaked:\n{}\n{}",
            run.stdout(),
            run.stderr()
        );
    }
}

#[test]
fn files_on_gcs_with_a_service_account_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uploads = cloud_uploads(dir.path());
    let uploads: Vec<(&str, &Path)> = uploads
        .iter()
        .map(|(k, p)| (k.as_str(), p.as_path()))
        .collect();
    let server = servers::gcs_xml("lake", &uploads);
    // A real RSA key: object_store signs a JWT with it for every request (GCS takes a
    // service account's self-signed JWT as its bearer token). The XML server checks no
    // token (see `servers::gcs_xml`), so a gate in front of it checks each one as GCS
    // does: signature against the key's public half, key id, account, scope and times.
    let key_id = "S3cr3t-gcs-key-id-1f2e";
    let email = "reader@plugboard-test.iam.gserviceaccount.com";
    let gate = plugboard_tests::google::GcsGate::start(
        server.port,
        plugboard_tests::google::key(0),
        key_id,
        email,
    );
    let base = gate.url();
    let private_key = plugboard_tests::google::key(0).pem.clone();
    let forged_key = plugboard_tests::google::key(1).pem.clone();
    let key_file = serde_json::json!({
        "type": "service_account",
        "project_id": "plugboard-test",
        "private_key_id": key_id,
        "private_key": private_key,
        "client_email": "reader@plugboard-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "http://127.0.0.1:9/token",
    });
    let key_path = dir.path().join("sa.json");
    std::fs::write(&key_path, key_file.to_string()).expect("write the key file");
    let key_path = key_path.display().to_string();
    let p = project(&format!(
        r#"
# The key file's fields inline, as Streamlit's GCS tutorial writes them (its `type =
# "service_account"` is left out here: the section's type says which connector; the
# tutorial's own section is read in files_streamlit.rs).
[connections.lake]
type = "files"
root = "gs://lake/trips"
google_base_url = "{base}"
project_id = "plugboard-test"
private_key_id = "{key_id}"
private_key = {private_key:?}
client_email = "reader@plugboard-test.iam.gserviceaccount.com"
client_id = "1234567890"
auth_uri = "http://127.0.0.1:9/auth"
token_uri = "http://127.0.0.1:9/token"

# The key file's path, in gcsfs's name; bucket/key paths.
[connections.buckets]
type = "files"
protocol = "gcs"
token = {key_path:?}
endpoint_url = "{base}"

# object_store's names: the key file as application default credentials, and as a path.
[connections.adc]
type = "files"
root = "gcs://lake/trips"
google_application_credentials = {key_path:?}
google_base_url = "{base}"

[connections.path]
type = "files"
root = "gs://lake/trips/2024"
google_service_account_path = {key_path:?}
google_base_url = "{base}"

# Anonymous requests, as for a public bucket: this one is private.
[connections.anon]
type = "files"
root = "gs://lake/trips"
token = "anon"
endpoint_url = "{base}"

# The account's email and key id with another key: its signatures do not verify.
[connections.forged]
type = "files"
root = "gs://lake/trips"
google_base_url = "{base}"
private_key_id = "{key_id}"
private_key = {forged_key:?}
client_email = "{email}"
"#
    ));
    let host = p.host();
    same_as_s3(&host, "gs", &["gcs"]);
    let want = reference();
    for (name, target) in [("adc", "2024/"), ("path", "*.parquet")] {
        let conn = host.connection(name).expect(name);
        let got = conn
            .read(target)
            .fetch()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_frame(&got, &want, name);
    }
    assert_eq!(gate.refused(), 0, "every signed request was taken");
    for name in ["anon", "forged"] {
        let conn = host.connection(name).expect(name);
        let before = gate.refused();
        for target in ["2024/part-0.parquet", "2024/*.parquet"] {
            let err = conn.read(target).fetch().expect_err(target).to_string();
            assert!(
                err.contains("auth error") && err.contains("access denied") && !err.contains('\n'),
                "{name} {target}: {err}"
            );
        }
        assert!(gate.refused() > before, "{name}: refused by the gate");
    }

    // The private key, its id and the key file's JSON are secrets: never printed.
    let pem_line = private_key.lines().nth(1).expect("a PEM body line");
    let secrets = [key_id, pem_line];
    let listed = cli!(p, ["connections", "list"]);
    assert_hidden(&listed, &secrets);
    assert!(listed.ok().contains("lake"));
    let run = cli!(
        p,
        [
            "-vv",
            "read",
            "lake",
            "2024/part-0.parquet",
            "--format",
            "csv",
            "--limit",
            "3"
        ]
    );
    assert_hidden(&run, &secrets);
    assert_eq!(run.ok().lines().count(), 4);
    let run = cli!(p, ["-vv", "read", "lake", "../private/secret.csv"]);
    assert_hidden(&run, &secrets);
    assert!(run.fails().contains("refused"));

    // A key that is not one is refused when the store is set up, naming where it came from.
    let bad = project(&format!(
        "[connections.bad]\ntype = \"files\"\nroot = \"gs://lake/x\"\n\
         google_base_url = \"{base}\"\nprivate_key_id = \"{key_id}\"\n\
         private_key = \"-----BEGIN PRIVATE KEY-----\\nS3cr3tNotAKey\\n-----END PRIVATE KEY-----\\n\"\n\
         client_email = \"x@y.iam.gserviceaccount.com\"\n"
    ));
    let run = cli!(bad, ["-vv", "read", "bad", "a.csv"]);
    assert_hidden(&run, &[key_id, "S3cr3tNotAKey"]);
    let err = run.fails();
    assert!(
        err.contains("connection \"bad\"") && err.contains("the service-account fields"),
        "{err}"
    );
}

#[test]
fn files_on_azure_with_keys_sas_tokens_and_connection_strings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uploads = cloud_uploads(dir.path());
    let uploads: Vec<(&str, &Path)> = uploads
        .iter()
        .map(|(k, p)| (k.as_str(), p.as_path()))
        .collect();
    let az = servers::azure("lake", &uploads);
    let (endpoint, account, key, sas) = (
        az.endpoint.clone(),
        az.account.clone(),
        az.key.clone(),
        az.sas.clone(),
    );
    // A key of the right shape that is not the account's, and the SAS token with its
    // signature changed.
    let wrong_key = "0123456789abcdef".repeat(4);
    let (sas_head, _) = sas.split_once("sig=").expect("a SAS token has a sig");
    let forged = format!("{sas_head}sig=Zm9yZ2VkLXNpZ25hdHVyZQ%3D%3D");
    let connection_string = format!(
        "DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};BlobEndpoint={endpoint};"
    );
    let p = project(&format!(
        r#"
# adlfs's names, an az:// root.
[connections.lake]
type = "files"
root = "az://lake/trips"
account_name = "{account}"
account_key = "{key}"
azure_storage_endpoint = "{endpoint}"

# A connection string (Azurite's shape), and bucket/key paths.
[connections.buckets]
type = "files"
protocol = "azure"
connection_string = "{connection_string}"

# A SAS token for the container, an abfs:// root, object_store's names.
[connections.sas]
type = "files"
root = "abfs://lake/trips"
azure_storage_account_name = "{account}"
azure_storage_sas_key = "{sas}"
azure_storage_endpoint = "{endpoint}"

# The wrong key, a forged SAS token.
[connections.intruder]
type = "files"
root = "az://lake/trips"
account_name = "{account}"
account_key = "{wrong_key}"
endpoint_url = "{endpoint}"

[connections.forged]
type = "files"
root = "abfss://lake/trips"
account_name = "{account}"
sas_token = "{forged}"
endpoint_url = "{endpoint}"
"#
    ));
    let host = p.host();
    same_as_s3(&host, "az", &["abfs", "abfss"]);
    let want = reference();
    let conn = host.connection("sas").expect("sas");
    for target in ["2024/*.parquet", "2024"] {
        let got = conn
            .read(target)
            .fetch()
            .unwrap_or_else(|e| panic!("sas {target}: {e}"));
        assert_frame(&got, &want, target);
    }

    // Azurite checks Shared Key and SAS signatures: the wrong key and the forged token are
    // refused, as auth errors, on a listing and on a read.
    let sig = sas
        .split("sig=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("a SAS token has a sig");
    let secrets = [
        key.as_str(),
        wrong_key.as_str(),
        sig,
        "Zm9yZ2VkLXNpZ25hdHVyZQ",
    ];
    for name in ["intruder", "forged"] {
        let conn = host.connection(name).expect(name);
        for target in ["2024/part-0.parquet", "2024/*.parquet"] {
            let err = conn.read(target).fetch().expect_err(name);
            let text = err.to_string();
            assert!(
                text.contains("access denied") && !text.contains('\n'),
                "{name} {target}: {text}"
            );
            for secret in &secrets {
                assert!(!text.contains(secret), "{name}: {text}");
            }
        }
        let run = cli!(p, ["-vv", "read", name, "2024/part-0.parquet"]);
        assert_hidden(&run, &secrets);
        let err = run.fails();
        assert!(
            err.contains(&format!("connection \"{name}\"")) && err.contains("access denied"),
            "{err}"
        );
    }

    // Keys, SAS tokens and connection strings are secrets: never printed.
    let listed = cli!(p, ["connections", "list"]);
    assert_hidden(&listed, &secrets);
    assert!(listed.ok().contains("buckets"));
    for name in ["lake", "sas"] {
        let run = cli!(
            p,
            [
                "-vv",
                "read",
                name,
                "2024/part-0.parquet",
                "--format",
                "csv",
                "--limit",
                "3"
            ]
        );
        assert_hidden(&run, &secrets);
        assert_eq!(run.ok().lines().count(), 4, "{name}");
    }
    // A connection whose server is gone fails in one line with its URL, and no SAS token.
    drop(az);
    let run = cli!(p, ["-vv", "read", "sas", "2024/part-0.parquet"]);
    assert_hidden(&run, &secrets);
    let err = run.fails();
    assert!(err.contains("connection \"sas\""), "{err}");
}

#[test]
fn files_on_s3_with_credentials_from_the_secrets_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let want = reference();
    parts(&want, dir.path(), 4);
    every_format(dir.path());
    let part = |i: usize| dir.path().join(format!("part-{i}.parquet"));
    let uploads: Vec<(String, PathBuf)> = (0..4)
        .map(|i| (format!("trips/2024/part-{i}.parquet"), part(i)))
        .chain([
            (
                "trips/2024/_SUCCESS".to_owned(),
                dir.path().join("trips.csv"),
            ),
            (
                "trips/flat.csv.gz".to_owned(),
                dir.path().join("trips.csv.gz"),
            ),
            (
                "private/secret.csv".to_owned(),
                dir.path().join("trips.csv"),
            ),
        ])
        .collect();
    let uploads: Vec<(&str, &Path)> = uploads
        .iter()
        .map(|(k, p)| (k.as_str(), p.as_path()))
        .collect();
    let (server, key_id, secret) = servers::s3("lake", &uploads);

    let section = |name: &str, extra: &str, secret: &str| {
        format!(
            "[connections.{name}]\ntype = \"files\"\n{extra}\naws_endpoint = \"{}\"\n\
             aws_region = \"us-east-1\"\naws_access_key_id = \"{key_id}\"\naws_secret_access_key = \"{secret}\"\n\n",
            server.url()
        )
    };
    let p = project(&format!(
        "{}{}{}",
        section("lake", "root = \"s3://lake/trips\"", &secret),
        section("buckets", "protocol = \"s3\"", &secret),
        section("intruder", "root = \"s3://lake/trips\"", "not-the-secret"),
    ));
    let host = p.host();
    let lake = host.connection("lake").expect("connect");
    for target in [
        "2024/*.parquet",
        "2024",
        "2024/",
        "s3://lake/trips/2024/*.parquet",
    ] {
        let got = lake
            .read(target)
            .fetch()
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_frame(&got, &want, target);
    }
    assert_frame(
        &lake.read("flat.csv.gz").fetch().expect("csv.gz"),
        &want,
        "csv.gz on s3",
    );
    let buckets = host.connection("buckets").expect("connect");
    assert_frame(
        &buckets
            .read("lake/trips/2024/part-3.parquet")
            .fetch()
            .expect("bucket/key"),
        &want.slice(750, 250),
        "bucket/key",
    );
    assert_frame(
        &buckets
            .read("s3://lake/private/secret.csv")
            .fetch()
            .expect("url"),
        &want,
        "s3 URL",
    );

    for target in [
        "../private/secret.csv",
        "s3://lake/private/secret.csv",
        "s3://other/x.csv",
        "/private/secret.csv",
    ] {
        let err = lake.read(target).fetch().expect_err(target).to_string();
        assert!(err.contains("refused"), "{target}: {err}");
    }
    let err = lake
        .read("2024/missing.parquet")
        .fetch()
        .expect_err("missing")
        .to_string();
    assert!(
        err.contains("s3://lake/trips/2024/missing.parquet: file not found"),
        "{err}"
    );
    let err = lake
        .read("2025/*.parquet")
        .fetch()
        .expect_err("no match")
        .to_string();
    assert!(err.contains("no files match"), "{err}");

    // The server checks signatures: the wrong secret is refused, as an auth error.
    let intruder = host.connection("intruder").expect("connect");
    let err = intruder
        .read("2024/part-0.parquet")
        .fetch()
        .expect_err("wrong secret")
        .to_string();
    assert!(
        err.contains("auth") || err.contains("access denied"),
        "{err}"
    );
    assert!(!err.contains("not-the-secret"), "{err}");

    // Credentials are secrets: never printed.
    let listed = cli!(p, ["connections", "list"]).ok();
    assert!(listed.contains("lake"), "{listed}");
    assert!(
        !listed.contains(&secret) && !listed.contains(&key_id),
        "{listed}"
    );
    let out = cli!(
        p,
        [
            "read",
            "lake",
            "2024/part-0.parquet",
            "--format",
            "csv",
            "--limit",
            "3"
        ]
    )
    .ok();
    assert_eq!(out.lines().count(), 4, "{out}");
    let run = cli!(p, ["-vv", "read", "intruder", "2024/part-0.parquet"]);
    run.fails();
    assert!(!run.stderr().contains("not-the-secret"), "{}", run.stderr());
}

#[test]
fn bad_connection_sections_are_config_errors() {
    let p = project(
        "[connections.nowhere]\ntype = \"files\"\nroot = \"does/not/exist\"\n\n\
         [connections.ftp]\ntype = \"files\"\nprotocol = \"ftp\"\n\n\
         [connections.local_keys]\ntype = \"files\"\naws_region = \"eu-west-1\"\n\n\
         [connections.mixed]\ntype = \"files\"\nprotocol = \"s3\"\nroot = \"https://example.invalid/\"\n\n\
         [connections.typo]\ntype = \"files\"\nroot = \".\"\naws_secret_acess_key = \"x\"\n",
    );
    for (name, expect) in [
        ("nowhere", "root = \"does/not/exist\""),
        ("ftp", "protocol = \"ftp\": not supported"),
        ("local_keys", "aws_region applies to remote stores"),
        ("mixed", "but root is a http(s) URL"),
        ("typo", "aws_secret_acess_key"),
    ] {
        let err = cli!(p, ["read", name, "x.csv"]).fails();
        assert!(err.contains(name) && err.contains(expect), "{name}: {err}");
    }
}

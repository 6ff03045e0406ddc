//! The fuzz corpus and every crash the fuzzers found, replayed on stable (issue 13): each
//! file of `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` goes through its target's
//! body, and the target's test fails naming every file that panics, with the panic's
//! message and location. A crash stays in `fuzz/artifacts/` once fixed, so a regression
//! fails here. See the README's "Fuzzing" for running the fuzzers themselves.
//!
//! `seeds_are_current` checks the hand-made seeds (`seed-*` files) of every corpus but
//! PostgreSQL's (`fuzz_corpus_postgres.rs`); `PLUGBOARD_WRITE_SEEDS=1` rewrites them.

mod fuzz_replay;

use std::path::Path;

use fuzz_replay::{fuzz_dir, noise, replay, write_seed};

macro_rules! replays {
    ($($name:ident: $body:path,)*) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name), $body);
            }
        )*

        /// Every target of `fuzz/` has its test here.
        #[test]
        fn every_fuzz_target_is_replayed() {
            // PostgreSQL's, MySQL's and ADBC's are in fuzz_corpus_{postgres,mysql,adbc}.rs.
            let replayed = [
                $(stringify!($name),)* "postgres_placeholders", "mysql_placeholders",
                "adbc_placeholders",
            ];
            let targets = std::fs::read_dir(fuzz_dir().join("fuzz_targets")).expect("fuzz_targets");
            for t in targets.filter_map(Result::ok) {
                let path = t.path();
                let name = path.file_stem().unwrap_or_default().to_string_lossy();
                assert!(replayed.contains(&name.as_ref()), "fuzz target {name} is not replayed");
            }
        }
    };
}

replays! {
    secrets_toml: plugboard::fuzzing::secrets_toml,
    plugins_toml: plugboard::fuzzing::plugins_toml,
    env_overrides: plugboard::fuzzing::env_overrides,
    cli_params: plugboard::fuzzing::cli_params,
    disk_entry: plugboard::fuzzing::disk_entry,
    redis_entry: plugboard::fuzzing::redis_entry,
    output_formats: plugboard::fuzzing::output_formats,
    arrow_import: plugboard::fuzzing::arrow_import,
    sqlite_params: plugboard_sqlite::fuzzing::params,
}

// ----------------------------------------------------------------------------------------
#[test]
/// The hand-made seeds are what their generators make (`PLUGBOARD_WRITE_SEEDS=1`
/// rewrites them).
fn seeds_are_current() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Secrets files: the example, and the README's sections.
    let example = std::fs::read(repo.join("examples/secrets.toml")).expect("example secrets");
    write_seed("secrets_toml", "example", &example);
    for (name, text) in [
        (
            "files",
            "[connections.lake]\ntype = \"files\"\nroot = \"s3://trips/2024\"\naws_access_key_id = \"AKIA\"\naws_secret_access_key = \"abc/def+ghi\"\naws_region = \"eu-west-1\"\n",
        ),
        (
            "url-password",
            "[connections.pg]\nurl = \"postgresql://user:p%40ss@host:5432/db?sslmode=require&sslpassword=x\"\nretry_attempts = 5\nretry_backoff = \"1s\"\nconnection_ttl = 3600\nttl = 0.5\n",
        ),
        (
            "nested",
            "title = \"app\"\n[connections.a]\ntype = \"sqlite\"\n[connections.a.query]\nmode = \"ro\"\n[connections.a.create_engine_kwargs.connect_args]\npassword = \"pw\"\n[connections.\"b-c\"]\ndialect = \"postgres\"\nhosts = [\"h1\", \"h2\"]\nwhen = 1979-05-27T07:32:00Z\n",
        ),
        ("not-a-table", "connections = 5\n"),
        ("empty", ""),
    ] {
        write_seed("secrets_toml", name, text.as_bytes());
    }
    // plugins.toml: the checkout's, and pinned, folder and local forms.
    let plugins = std::fs::read(repo.join("plugins.toml")).expect("plugins.toml");
    write_seed("plugins_toml", "checkout", &plugins);
    for (name, text) in [
        (
            "local",
            "# a comment\n[[plugin]]\npath = \"liba.so\"\n\n[[plugin]]\npath = \"libb.so\" # trailing\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
        ),
        ("dirs", "dirs = [\"plugins.d\", \"/usr/lib/plugboard\"]\n"),
        ("inline", "plugin = [{ path = \"liba.so\" }]\n"),
        ("unknown-key", "[[plugin]]\npaht = \"x\"\n"),
    ] {
        write_seed("plugins_toml", name, text.as_bytes());
    }
    // Environment overrides (the prefix is added to each line's name).
    write_seed(
        "env_overrides",
        "readme",
        b"PETS_DB__URL=sqlite:///other.db\nWAREHOUSE__PASSWORD=\"1234\"\nWAREHOUSE__QUERY__SSLMODE=verify-full\nLAKE__AWS_REGION=eu-west-1\nNEW_CONN__TYPE=sqlite\nNEW_CONN__PORT=5432\nNEW_CONN__HOSTS=[\"a\", \"b\"]\nNEW_CONN__TTL=10m\n!PATH=/usr/bin\n",
    );
    write_seed(
        "env_overrides",
        "odd",
        b"__X=1\nA____B=2\npets-db__url=x\nWAREHOUSE__RETRY_ATTEMPTS=1e3\nWAREHOUSE__TIMEOUT={ a = 1 }\n",
    );
    // Command lines, as the README types them.
    let lines: &[&[&str]] = &[
        &[
            "query",
            "pets_db",
            "SELECT * FROM pet_owners WHERE pet = :pet",
            "-p",
            "pet=cat",
        ],
        &[
            "query",
            "chinook",
            "SELECT Name FROM Track WHERE AlbumId = :album",
            "-p",
            "album=1",
            "--ttl",
            "1h",
            "-v",
        ],
        &[
            "query",
            "warehouse",
            "SELECT 1",
            "-p",
            "n:int=5",
            "-p",
            "x=2.5",
            "-p",
            "zip=02134",
            "-p",
            "b:hex=00ff",
            "-p",
            "x:null=",
            "--limit",
            "10",
        ],
        &[
            "query",
            "lake",
            "SELECT 1",
            "--set",
            "query.sslmode=require",
            "--set",
            "password=\"1234\"",
            "--type",
            "sqlite",
            "--refresh",
        ],
        &[
            "read",
            "lake",
            "march/*.parquet",
            "-x",
            "partition_on=TrackId",
            "-x",
            "partitions=2",
            "--format",
            "csv",
        ],
        &[
            "query",
            "chinook",
            "SELECT * FROM Invoice",
            "--output",
            "invoices.parquet",
        ],
        &[
            "exec",
            "pets_db",
            "INSERT INTO pet_owners VALUES (:owner, :pet)",
            "-p",
            "owner=kim",
            "-p",
            "pet=cat",
        ],
        &["connections", "list"],
        &["plugins"],
        &["cache", "stats"],
        &["query", "--help"],
        &["--version"],
    ];
    for (i, line) in lines.iter().enumerate() {
        write_seed(
            "cli_params",
            &format!("readme-{i}"),
            line.join("\0").as_bytes(),
        );
    }
    // Disk entries as the disk tier writes them (first byte: times fixed up to now).
    use polars::prelude::*;
    let frames = [
        df!("id" => [1i64, 2, 3], "name" => [Some("a"), None, Some("ç")]).expect("df"),
        df!("x" => [1.5f64, f64::NAN], "b" => [true, false], "blob" => [Some(b"\x00\xff".as_slice()), None]).expect("df"),
        DataFrame::empty(),
    ];
    for (i, df) in frames.iter().enumerate() {
        let entry = plugboard::fuzzing::disk_entry_seed(df).expect("a stored entry");
        write_seed("disk_entry", &format!("stored-{i}"), &entry);
        // The same as Redis holds them: in one chunk, and in chunks of 100 bytes.
        for frame in [1 << 20, 100] {
            let entry = plugboard::fuzzing::redis_entry_seed(df, frame).expect("an entry");
            write_seed("redis_entry", &format!("stored-{i}-{frame}"), &entry);
        }
    }
    // The binary targets: each type code, with noise for everything after it.
    for t in 0..29u8 {
        let mut data = vec![1, 2, 5, t];
        data.extend(noise(u64::from(t), 160));
        write_seed("output_formats", &format!("type-{t}"), &data);
    }
    let mut wide = vec![5, 3, 120];
    wide.extend(noise(99, 600));
    write_seed("output_formats", "wide", &wide);
    for (name, data) in plugboard::fuzzing::arrow_import_seeds() {
        write_seed("arrow_import", name, &data);
    }
    for (i, (mode, params, options, statements)) in fuzz_replay::sql_seeds().iter().enumerate() {
        let s = plugboard_sqlite::fuzzing::encode(*mode, params, options, statements);
        write_seed("sqlite_params", &format!("sql-{i}"), &s);
    }
}

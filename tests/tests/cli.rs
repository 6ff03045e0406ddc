//! The `plugboard` command line, run as a real process against real plugins.

use plugboard_tests::{Project, chinook, cli};

fn project() -> Project {
    Project::new(
        &["plugboard_sqlite", "fixture_echo"],
        &format!(
            "[connections.pets_db]\nurl = \"sqlite:///pets.db\"\n\n\
             [connections.chinook]\ntype = \"sql\"\nurl = \"sqlite:///{}?mode=ro\"\n\n\
             [connections.echo]\ntype = \"echo\"\ntoken = \"tok-CLI-secret\"\nhost = \"file\"\n",
            chinook().display()
        ),
    )
}

#[test]
fn the_pets_flow() {
    let p = project();
    let out = cli!(
        p,
        [
            "exec",
            "pets_db",
            "CREATE TABLE pet_owners (person TEXT, pet TEXT)",
            "DELETE FROM pet_owners"
        ]
    )
    .ok();
    assert_eq!(out, "0 rows affected\n");
    for (owner, pet) in [("jerry", "fish"), ("barbara", "cat"), ("alex", "puppy")] {
        let owner = format!("owner={owner}");
        let pet = format!("pet={pet}");
        let out = cli!(
            p,
            [
                "exec",
                "pets_db",
                "INSERT INTO pet_owners VALUES (:owner, :pet)",
                "-p",
                &owner,
                "--param",
                &pet
            ]
        )
        .ok();
        assert_eq!(out, "1 row affected\n");
    }
    let table = cli!(
        p,
        [
            "query",
            "pets_db",
            "SELECT * FROM pet_owners",
            "--format",
            "table"
        ]
    )
    .ok();
    for word in [
        "person",
        "pet",
        "str",
        "jerry",
        "fish",
        "barbara",
        "alex",
        "puppy",
        "3 rows × 2 columns",
    ] {
        assert!(table.contains(word), "{word} missing from\n{table}");
    }
    // Piped output defaults to CSV.
    let csv = cli!(
        p,
        [
            "query",
            "pets_db",
            "SELECT * FROM pet_owners WHERE pet = :pet",
            "-p",
            "pet=cat"
        ]
    )
    .ok();
    assert_eq!(csv, "person,pet\nbarbara,cat\n");
}

#[test]
fn output_formats_and_files() {
    let p = project();
    let q = "SELECT TrackId, Composer FROM Track WHERE TrackId IN (1, 63) ORDER BY TrackId";
    let json = cli!(p, ["query", "chinook", q, "-f", "json"]).ok();
    assert_eq!(
        json.trim(),
        r#"[{"TrackId":1,"Composer":"Angus Young, Malcolm Young, Brian Johnson"},{"TrackId":63,"Composer":null}]"#
    );
    let ndjson = cli!(p, ["query", "chinook", q, "-f", "ndjson"]).ok();
    assert_eq!(ndjson.lines().count(), 2);
    let csv = cli!(p, ["query", "chinook", q, "--format", "csv"]).ok();
    assert_eq!(csv.lines().nth(2), Some("63,"), "NULL is an empty field");

    for name in ["out.parquet", "out.arrow", "out.csv"] {
        cli!(p, ["query", "chinook", q, "--output", name]).ok();
        assert!(
            p.path(name).metadata().expect("written").len() > 0,
            "{name}"
        );
    }
    let e = cli!(p, ["query", "chinook", q, "--output", "out.xyz"]).fails();
    assert!(e.contains("out.xyz") && e.contains("--format"), "{e}");
    let e = cli!(p, ["query", "chinook", "SELEC", "--output", "bad.csv"]).fails();
    assert!(e.contains("syntax error"), "{e}");
    assert!(!p.path("bad.csv").exists(), "a failed query writes nothing");
}

#[test]
fn bad_input_gives_one_line_naming_the_culprit() {
    let p = project();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["query", "chinok", "SELECT 1"],
            "unknown connection \"chinok\"; did you mean \"chinook\"?",
        ),
        (
            vec!["query", "chinook", "SELEC 1"],
            "connection \"chinook\" (plugin sqlite): query error: near \"SELEC\"",
        ),
        (
            vec!["query", "chinook", "SELECT :a", "-p", "b=1"],
            "missing value for parameter :a",
        ),
        (
            vec!["query", "chinook", "SELECT :a", "-p", "a=1", "-p", "c=2"],
            "unknown parameter \"c\"",
        ),
        (
            vec!["query", "chinook", "SELECT 1", "--ttl", "soon"],
            "--ttl",
        ),
        (
            vec!["query", "chinook", "SELECT 1", "--type", "nosql"],
            "unknown type \"nosql\"",
        ),
        (
            vec!["query", "chinook", "SELECT 1", "-p", "novalue"],
            "expected NAME=VALUE",
        ),
        (
            vec!["--secrets", "missing.toml", "connections"],
            "cannot read missing.toml",
        ),
        (
            vec!["--plugins", "missing.toml", "plugins"],
            "cannot read missing.toml",
        ),
    ];
    for (args, expect) in cases {
        let e = p
            .cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &args, &[])
            .fails();
        assert!(e.contains(expect), "{args:?}: expected {expect:?} in {e:?}");
    }

    p.write(
        "broken.toml",
        "[connections.x]\nurl = \"sqlite://\"\nport = \n",
    );
    let e = cli!(p, ["--secrets", "broken.toml", "query", "x", "SELECT 1"]).fails();
    assert!(e.contains("broken.toml:3:"), "{e}");
    p.write("badplugins.toml", "[[plugin]]\npath = 5\n");
    let e = cli!(p, ["--plugins", "badplugins.toml", "plugins", "list"]).fails();
    assert!(e.contains("badplugins.toml:2:"), "{e}");
}

#[test]
fn secrets_stay_hidden_and_env_sits_between_file_and_arguments() {
    let p = project();
    let list = cli!(p, ["connections", "list"]).ok();
    assert!(
        list.contains("token = \"***\"") && !list.contains("tok-CLI"),
        "{list}"
    );

    let read_config = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["query", "echo", "config", "-f", "ndjson"];
        args.extend_from_slice(extra);
        let out = p
            .cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &args, env)
            .ok();
        let row: serde_json::Value = serde_json::from_str(out.trim()).expect("json row");
        serde_json::from_str::<serde_json::Value>(row["config"].as_str().expect("config"))
            .expect("config json")
    };
    assert_eq!(read_config(&[], &[])["host"], "file");
    let env = [
        ("PLUGBOARD_CONNECTIONS__ECHO__HOST", "env"),
        ("PLUGBOARD_CONNECTIONS__ECHO__PORT", "5432"),
    ];
    let c = read_config(&[], &env);
    assert_eq!(
        (c["host"].as_str(), c["port"].as_i64()),
        (Some("env"), Some(5432))
    );
    assert_eq!(read_config(&["--set", "host=arg"], &env)["host"], "arg");

    let e = cli!(p, ["query", "echo", "fail"]).fails();
    assert!(e.contains("***") && !e.contains("tok-CLI"), "{e}");
}

#[test]
fn plugins_list_and_check() {
    let p = project();
    let out = cli!(p, ["plugins", "list"]).ok();
    assert!(out.contains("sqlite") && out.contains("echo"), "{out}");
    let lib = plugboard_tests::lib("plugboard_sqlite");
    let out = cli!(p, ["plugins", "check", lib.to_str().expect("utf8")]).ok();
    assert!(out.contains("plugin:      sqlite"), "{out}");
    let bad = plugboard_tests::lib("fixture_not_a_plugin");
    let e = cli!(p, ["plugins", "check", bad.to_str().expect("utf8")]).fails();
    assert!(e.contains("not a plugboard plugin"), "{e}");
}

/// `table` output against its snapshots in `tests/snapshots/` (set `PLUGBOARD_BLESS=1` to
/// write them anew, then read the diff): a result wider than 80 columns leaves out middle
/// columns and cuts long cells; at 200 every column shows; a long result shows its first
/// and last rows. The footer's time is the one thing that differs between runs.
#[test]
fn tables_fit_80_and_200_columns() {
    let p = project();
    let q = "SELECT * FROM Track ORDER BY TrackId";
    for (width, rows, snapshot) in [("80", "10", "track-80.txt"), ("200", "6", "track-200.txt")] {
        let out = cli!(
            p,
            [
                "query",
                "chinook",
                q,
                "-f",
                "table",
                "--max-width",
                width,
                "--max-rows",
                rows
            ]
        )
        .ok();
        let (table, time) = out
            .trim_end()
            .rsplit_once(" · ")
            .expect("a time in the footer");
        assert!(time.ends_with(" ms") || time.ends_with(" s"), "{time}");
        let table = format!("{table}\n");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("snapshots")
            .join(snapshot);
        if std::env::var_os("PLUGBOARD_BLESS").is_some() {
            std::fs::write(&path, &table).expect("bless");
        }
        let expected = std::fs::read_to_string(&path).expect("the snapshot");
        assert_eq!(table, expected, "{snapshot}");
        let limit: usize = width.parse().expect("width");
        for line in table.lines() {
            assert!(line.chars().count() <= limit, "{line}");
        }
    }
    // Without --max-width, $COLUMNS is the width of a terminal it cannot ask.
    let out = cli!(p, ["query", "chinook", q, "-f", "table"], env = ["COLUMNS" => "100"]).ok();
    assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
    assert!(out.contains("3503 rows (40 shown) × 9 columns ("), "{out}");
    // A table in a file is whole, and has no time in it.
    cli!(
        p,
        ["query", "chinook", q, "-f", "table", "-o", "tracks.txt"]
    )
    .ok();
    let file = std::fs::read_to_string(p.path("tracks.txt")).expect("written");
    assert!(
        file.ends_with("\n3503 rows × 9 columns\n"),
        "{}",
        &file[file.len() - 200..]
    );
    assert!(file.contains("Quintet for Horn, Violin, 2 Violas, and Cello in E Flat Major"));
    assert!(!file.contains('…'));
    // The two settings are the table's.
    let e = cli!(p, ["query", "chinook", q, "-f", "csv", "--max-rows", "5"]).fails();
    assert!(e.contains("--max-rows") && e.contains("table"), "{e}");
}

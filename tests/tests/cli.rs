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
    let json = cli!(p, ["query", "chinook", q, "-m", "json"]).ok();
    assert_eq!(
        json.trim(),
        r#"[{"TrackId":1,"Composer":"Angus Young, Malcolm Young, Brian Johnson"},{"TrackId":63,"Composer":null}]"#
    );
    let ndjson = cli!(p, ["query", "chinook", q, "-m", "ndjson"]).ok();
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
    // With the exit code the README documents: 2 usage, 3 connection, 4 query, 1 other.
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (
            vec!["query", "chinok", "SELECT 1"],
            "unknown connection \"chinok\"; did you mean \"chinook\"?",
            3,
        ),
        (
            vec!["query", "chinook", "SELEC 1"],
            "connection \"chinook\" (plugin sqlite): query error: near \"SELEC\"",
            4,
        ),
        (
            vec!["query", "chinook", "SELECT :a", "-p", "b=1"],
            "missing value for parameter :a",
            4,
        ),
        (
            vec!["query", "chinook", "SELECT :a", "-p", "a=1", "-p", "c=2"],
            "unknown parameter \"c\"",
            4,
        ),
        (
            vec!["query", "chinook", "SELECT 1", "--ttl", "soon"],
            "--ttl",
            2,
        ),
        (
            vec!["query", "chinook", "SELECT 1", "--type", "nosql"],
            "unknown type \"nosql\"",
            3,
        ),
        (
            vec!["query", "chinook", "SELECT 1", "-p", "novalue"],
            "expected NAME=VALUE",
            2,
        ),
        (
            vec!["--secrets", "missing.toml", "connections"],
            "cannot read missing.toml",
            1,
        ),
        (
            vec!["--plugins", "missing.toml", "plugins"],
            "cannot read missing.toml",
            1,
        ),
    ];
    for (args, expect, code) in cases {
        let e = p
            .cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &args, &[])
            .fails_with(code);
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
        let mut args = vec!["query", "echo", "config", "-m", "ndjson"];
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
                "-m",
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
    let out = cli!(p, ["query", "chinook", q, "-m", "table"], env = ["COLUMNS" => "100"]).ok();
    assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
    assert!(out.contains("3503 rows (40 shown) × 9 columns"), "{out}");
    // A table in a file is whole, and has no time in it.
    cli!(
        p,
        ["query", "chinook", q, "-m", "table", "-o", "tracks.txt"]
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
    // Asking for a shape asks for a table, in a pipe too.
    let out = cli!(p, ["query", "chinook", q, "--max-rows", "2"]).ok();
    assert!(
        out.contains("… 3501 rows …") && out.contains("3503 rows (2 shown)"),
        "{out}"
    );
    // The two settings are the table's.
    let e = cli!(p, ["query", "chinook", q, "-m", "csv", "--max-rows", "5"]).fails();
    assert!(e.contains("--max-rows") && e.contains("table"), "{e}");
}

/// `-f FILE` and `-` (or `-f -`) read the query from a file or standard input; a file that
/// is missing, empty, endless or not text is one line naming it, and nothing runs.
#[test]
fn queries_from_a_file_or_standard_input() {
    use std::io::Write;
    let p = project();
    let sql = "SELECT Name FROM Artist WHERE ArtistId = :id;\n";
    p.write("report.sql", &format!("\n  {sql}\n"));
    let out = cli!(p, ["query", "chinook", "-f", "report.sql", "-p", "id=1"]).ok();
    assert_eq!(out, "Name\nAC/DC\n");
    let out = cli!(
        p,
        ["query", "chinook", "--file", "report.sql", "-p", "id=2"]
    )
    .ok();
    assert_eq!(out, "Name\nAccept\n");

    let bin = env!("CARGO_BIN_EXE_plugboard-under-test");
    for args in [
        &["query", "chinook", "-", "-p", "id=3"][..],
        &["query", "chinook", "-f", "-", "-p", "id=3"][..],
    ] {
        let mut child = p
            .command(bin, args, &[])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(sql.as_bytes())
            .expect("write the query");
        let run = plugboard_tests::Run(child.wait_with_output().expect("wait"));
        assert_eq!(run.ok(), "Name\nAerosmith\n", "{args:?}");
    }

    p.write("empty.sql", " \n\t\n");
    std::fs::write(p.path("latin1.sql"), b"SELECT 'caf\xe9'").expect("write");
    for (args, expect, code) in [
        (
            &["query", "chinook", "-f", "missing.sql"][..],
            "cannot read the query from missing.sql",
            1,
        ),
        (
            &["query", "chinook", "-f", "empty.sql"],
            "no query in empty.sql: it is empty",
            1,
        ),
        (
            &["query", "chinook", "-f", "/dev/zero"],
            "the query in /dev/zero is longer than 16.0 MiB",
            1,
        ),
        (
            &["query", "chinook", "-f", "latin1.sql"],
            "the query in latin1.sql is not UTF-8 text (bad byte at offset 11)",
            1,
        ),
        (
            &["query", "chinook", "-f", "."],
            "cannot read the query from .",
            1,
        ),
        (
            &["query", "chinook", "SELECT 1", "-f", "report.sql"],
            "cannot be used with",
            2,
        ),
        (&["query", "chinook"], "required", 2),
    ] {
        let e = p.cli(bin, args, &[]).fails_with(code);
        assert!(e.contains(expect), "{args:?}: expected {expect:?} in {e:?}");
    }
    // Standard input that is empty is refused the same way.
    let run = p
        .command(bin, &["query", "chinook", "-"], &[])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    let e = plugboard_tests::Run(run).fails();
    assert!(e.contains("no query in standard input"), "{e}");
}

/// The exit code tells a script what kind of failure it was; `--help` lists the codes.
#[test]
fn exit_codes_tell_usage_connection_and_query_errors_apart() {
    let p = project();
    let gone = p.path("no/such/folder/x.db");
    p.write(
        "gone.toml",
        &format!(
            "[connections.gone]\ntype = \"sqlite\"\ndatabase = \"{}\"\n",
            gone.display()
        ),
    );
    let bin = env!("CARGO_BIN_EXE_plugboard-under-test");
    for (args, code) in [
        (&["query", "chinook", "SELECT 1", "--nope"][..], 2),
        (&["query", "chinook", "SELECT 1", "-O", "format=csv"], 2),
        (&["query", "chinook", "SELECT 1", "-x", "novalue"], 2),
        (&["query", "chinook", "SELECT 1", "--set", "=1"], 2),
        (&["query", "chinook", "SELECT 1", "-o", "out.xyz"], 2),
        (&["qurey"], 2),
        // Not a command: a connection, for the shell (`plugboard CONN`).
        (&["nope"], 3),
        (&["--secrets", "gone.toml", "query", "gone", "SELECT 1"], 3),
        (&["query", "chinook", "SELECT * FROM NoSuchTable"], 4),
        (&["exec", "chinook", "DELETE FROM NoSuchTable"], 4),
        (
            &["query", "chinook", "SELECT 1", "-o", "no/such/dir/out.csv"],
            1,
        ),
    ] {
        p.cli(bin, args, &[]).fails_with(code);
    }
    // The value of a --set that is refused may be a password: it is not echoed.
    let e = cli!(p, ["query", "chinook", "SELECT 1", "--set", "=hunter2"]).fails_with(2);
    assert!(
        e.contains("the key before `=` is empty") && !e.contains("hunter2"),
        "{e}"
    );
    let e = cli!(p, ["query", "chinook", "SELECT 1", "--set", "hunter2"]).fails_with(2);
    assert!(
        e.contains("--set takes KEY=VALUE") && !e.contains("hunter2"),
        "{e}"
    );
    // A write to a read-only database is the source refusing the statement.
    cli!(p, ["exec", "chinook", "DELETE FROM Track"]).fails_with(4);

    let help = cli!(p, ["--help"]).ok();
    for line in [
        "Exit codes:",
        "2    usage",
        "3    connection",
        "4    query",
        "130  interrupted",
    ] {
        assert!(help.contains(line), "{line:?} missing from\n{help}");
    }
}

/// Every subcommand's `--help` ends with examples; `query`'s show the file and stdin forms.
#[test]
fn help_ends_with_examples() {
    let p = project();
    let bin = env!("CARGO_BIN_EXE_plugboard-under-test");
    for command in [
        "query",
        "read",
        "exec",
        "plugins",
        "connections",
        "cache",
        "completions",
    ] {
        let help = p.cli(bin, &[command, "--help"], &[]).ok();
        let (_, examples) = help
            .split_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("no examples in `{command} --help`:\n{help}"));
        assert!(
            examples
                .lines()
                .all(|l| l.starts_with("  ") && l.contains("plugboard ") || l.is_empty()),
            "{command}: {examples}"
        );
    }
    let help = cli!(p, ["query", "--help"]).ok();
    for flag in ["-f report.sql", "plugboard query chinook -\n", "-m ndjson"] {
        assert!(help.contains(flag), "{flag:?} missing from\n{help}");
    }
    // Read options and the output file are no longer one letter apart.
    assert!(
        help.contains("-x, --option") && help.contains("-o, --output"),
        "{help}"
    );
    assert!(!help.contains("-O,"), "{help}");
}

/// `plugboard completions SHELL` prints a script that the shell accepts and that knows
/// the subcommands and options.
#[test]
fn completion_scripts_for_each_shell() {
    let p = project();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = cli!(p, ["completions", shell]).ok();
        for word in ["query", "connections", "max-width", "file"] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
    }
    // bash parses its script without running it.
    let script = cli!(p, ["completions", "bash"]).ok();
    p.write("plugboard.bash", &script);
    let check = std::process::Command::new("bash")
        .args(["-n", "plugboard.bash"])
        .current_dir(p.path(""))
        .output()
        .expect("bash");
    assert!(check.status.success(), "{check:?}");
    // And it completes: `plugboard qu<Tab>` offers `query`.
    let complete = std::process::Command::new("bash")
        .args([
            "-c",
            "source plugboard.bash; COMP_WORDS=(plugboard qu); COMP_CWORD=1; \
             _plugboard plugboard qu plugboard; printf '%s\\n' \"${COMPREPLY[@]}\"",
        ])
        .current_dir(p.path(""))
        .output()
        .expect("bash");
    let offered = String::from_utf8_lossy(&complete.stdout);
    assert!(offered.lines().any(|l| l == "query"), "{complete:?}");
    let e = cli!(p, ["completions", "tcsh"]).fails_with(2);
    assert!(e.contains("tcsh"), "{e}");
}

/// Ctrl-C during an export ends the process with 130 and removes the unfinished file;
/// during a table on standard output, the same exit and no error line.
#[test]
fn ctrl_c_stops_an_export_with_130_and_leaves_no_file() {
    let p = project();
    let bin = env!("CARGO_BIN_EXE_plugboard-under-test");
    // Endless: rows until interrupted.
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c";
    let unfinished = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(p.path(""))
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| {
                f.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".plugboard-"))
            })
            .collect()
    };
    let interrupt = |child: &std::process::Child| {
        let sent = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    };

    let spawn = |how: &[&str]| {
        let mut args = vec!["query", "chinook", endless];
        args.extend_from_slice(how);
        p.command(bin, &args, &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };

    let child = spawn(&["-o", "out.csv"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Until the export has written something to its temporary file.
    while !unfinished()
        .iter()
        .any(|f| f.metadata().is_ok_and(|m| m.len() > 1 << 20))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no temporary file appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    interrupt(&child);
    let run = plugboard_tests::Run(child.wait_with_output().expect("wait"));
    assert_eq!(run.0.status.code(), Some(130), "{:?}", run.0);
    assert_eq!(run.stderr(), "interrupted\n");
    assert_eq!(unfinished(), Vec::<std::path::PathBuf>::new());
    assert!(!p.path("out.csv").exists());

    // An existing file is left as it was.
    p.write("out.csv", "old\n");
    let child = spawn(&["-o", "out.csv"]);
    while unfinished().is_empty() {
        assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    interrupt(&child);
    let run = plugboard_tests::Run(child.wait_with_output().expect("wait"));
    assert_eq!(run.0.status.code(), Some(130), "{:?}", run.0);
    assert_eq!(
        std::fs::read_to_string(p.path("out.csv")).expect("kept"),
        "old\n"
    );
    assert!(unfinished().is_empty());

    // A table holds a head and a tail however long the result: it is still reading.
    let child = spawn(&["-m", "table"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    interrupt(&child);
    let run = plugboard_tests::Run(child.wait_with_output().expect("wait"));
    assert_eq!(run.0.status.code(), Some(130), "{:?}", run.0);
    assert_eq!(run.stderr(), "interrupted\n");
}

/// Progress shows on standard error when it is a terminal (here a pseudo-terminal from
/// `script`), and the line is wiped when the read ends; never with --quiet, in a pipe,
/// or while the rows themselves stream to that terminal.
#[test]
fn progress_shows_on_a_terminal_only() {
    let p = project();
    let bin = env!("CARGO_BIN_EXE_plugboard-under-test");
    let on_terminal = |args: &str| -> String {
        let line = format!("'{bin}' {args}");
        let out = p
            .command("script", &["-qefc", &line, "/dev/null"], &[])
            .output()
            .expect("script");
        assert!(out.status.success(), "{args}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Before the first batch: a spinner and the time.
    let slow = "query echo value -p sleep_ms=1600 -o v.csv";
    let shown = on_terminal(slow);
    assert!(shown.contains("reading \"echo\" · 1."), "{shown:?}");
    assert!(shown.ends_with("\r\x1b[2K"), "the line is wiped: {shown:?}");
    assert!(!on_terminal(&format!("-q {slow}")).contains("reading"));
    // Rows streaming to the terminal itself: no line over them.
    let streamed = on_terminal("query echo value -p sleep_ms=1600 -m csv");
    assert!(!streamed.contains("reading"), "{streamed:?}");
    // Once batches arrive: rows, bytes and the rate.
    let many = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 20000000) \
                SELECT x FROM c";
    let shown = on_terminal(&format!("query chinook '{many}' -o n.csv"));
    assert!(
        shown.contains(" rows · ") && shown.contains(" rows/s · "),
        "{shown:?}"
    );
    // In a pipe, nothing at all.
    let run = cli!(
        p,
        [
            "query",
            "echo",
            "value",
            "-p",
            "sleep_ms=1600",
            "-o",
            "w.csv"
        ]
    );
    run.ok();
    assert_eq!(run.stderr(), "");
}

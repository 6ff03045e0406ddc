//! The plugin boundary: what a plugin receives, and what happens when one misbehaves.
//! Every test loads real libraries through the real loader.

use plugboard::{ConnectOptions, Error, Host};
use plugboard_api::ErrorKind;
use plugboard_tests::{Project, lib};
use polars::prelude::*;

const SECRETS: &str = r#"
top_level_api_key = "app-secret-not-for-plugins"

[connections.a]
type = "echo"
token = "tok-AAA-secret"
host = "a.example"
ttl = "1h"
max_entries = 10

[connections.b]
type = "echo"
token = "tok-BBB-secret"
nested = { level = 1 }

[connections.pets]
url = "sqlite://"

[connections.boom]
type = "echo"
panic_in_connect = true

[connections.raw]
type = "raw"
mode = "strict"
"#;

fn project() -> Project {
    Project::new(
        &["fixture_echo", "plugboard_sqlite", "fixture_raw"],
        SECRETS,
    )
}

/// What the echo plugin received at connect, as JSON.
fn received(host: &Host, name: &str, options: ConnectOptions) -> serde_json::Value {
    let c = host.connection_with(name, options).expect("connect");
    let df = c
        .query("config")
        .ttl(std::time::Duration::ZERO)
        .fetch()
        .expect("config read");
    let text = df
        .column("config")
        .expect("col")
        .str()
        .expect("str")
        .get(0)
        .expect("row")
        .to_owned();
    serde_json::from_str(&text).expect("json")
}

#[test]
fn a_plugin_receives_only_its_own_section() {
    let host = project().host();
    let a = received(&host, "a", ConnectOptions::new());
    assert_eq!(
        a,
        serde_json::json!({"token": "tok-AAA-secret", "host": "a.example"}),
        "own keys only: no other connection, no top-level secret, no reserved keys"
    );
    let b = received(&host, "b", ConnectOptions::new());
    assert_eq!(
        b,
        serde_json::json!({"token": "tok-BBB-secret", "nested": {"level": 1}})
    );
}

#[test]
fn arguments_override_the_file() {
    let host = project().host();
    let a = received(
        &host,
        "a",
        ConnectOptions::new()
            .set("host", "arg.example")
            .set("nested.x", 2),
    );
    assert_eq!(a["host"], "arg.example");
    assert_eq!(a["nested"]["x"], 2);
    assert_eq!(a["token"], "tok-AAA-secret");
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let host = project().host();
    let a = host.connection("a").expect("connect");
    let e = a.query("fail").fetch().unwrap_err().to_string();
    assert!(e.contains("rejected token ***"), "{e}");
    assert!(!e.contains("tok-AAA"), "{e}");
    for text in [format!("{host:?}"), format!("{a:?}")] {
        assert!(!text.contains("tok-"), "{text}");
    }
    for info in host.describe_connections() {
        let shown = format!("{:?}", info.table);
        assert!(
            !shown.contains("tok-") && !shown.contains("app-secret"),
            "{shown}"
        );
    }
}

#[test]
fn zero_copy_import_of_fixed_width_columns() {
    let host = project().host();
    let a = host.connection("a").expect("connect");
    let df = a.query("zero_copy").fetch().expect("read");
    let x = df.column("x").expect("x").i64().expect("i64");
    let host_ptr = x
        .downcast_iter()
        .next()
        .expect("one chunk")
        .values()
        .as_ptr() as i64;
    let plugin_ptr = df
        .column("ptr")
        .expect("ptr")
        .i64()
        .expect("i64")
        .get(0)
        .expect("value");
    assert_eq!(
        host_ptr, plugin_ptr,
        "the DataFrame reads the plugin's own buffer"
    );
}

fn load_error(p: &Project, host: &Host, library: &std::path::Path) -> String {
    let _ = p;
    host.load_errors()
        .iter()
        .map(ToString::to_string)
        .find(|e| e.contains(&library.display().to_string()))
        .unwrap_or_else(|| {
            panic!(
                "no load error for {}: {:?}",
                library.display(),
                host.load_errors()
            )
        })
}

#[test]
fn bad_libraries_are_reported_and_the_rest_still_work() {
    let p = project();
    let text_file = p.write("libtext.so", "this is not a shared library");
    let missing = p.path("libplugboard_nothing.so");
    let mut toml = std::fs::read_to_string(p.path("plugins.toml")).expect("read");
    for path in [
        lib("fixture_not_a_plugin"),
        lib("fixture_wrong_api"),
        text_file.clone(),
        missing.clone(),
    ] {
        toml.push_str(&format!(
            "[[plugin]]\npath = {:?}\n",
            path.display().to_string()
        ));
    }
    p.write("plugins.toml", &toml);
    let host = p.host();

    let not_plugin = load_error(&p, &host, &lib("fixture_not_a_plugin"));
    assert!(
        not_plugin.contains("not a plugboard plugin"),
        "{not_plugin}"
    );
    let wrong = load_error(&p, &host, &lib("fixture_wrong_api"));
    assert!(
        wrong.contains("built for plugin-api 999, this host speaks 1"),
        "{wrong}"
    );
    let text = load_error(&p, &host, &text_file);
    assert!(text.contains("cannot open the library"), "{text}");
    let gone = load_error(&p, &host, &missing);
    assert!(
        gone.contains("no such file; build it with `cargo build -p plugboard-nothing`"),
        "{gone}"
    );
    for e in host.load_errors() {
        assert!(!e.to_string().contains('\n'), "one line: {e}");
    }

    let names: Vec<String> = host
        .plugins()
        .into_iter()
        .map(|p| p.manifest.name)
        .collect();
    assert_eq!(names, ["echo", "sqlite", "raw"]);
    let pets = host.connection("pets").expect("sqlite still works");
    assert_eq!(
        pets.query("SELECT 42 AS x").fetch().expect("read").height(),
        1
    );
}

#[test]
fn panics_become_errors_and_the_host_keeps_serving() {
    let host = project().host();
    let pets = host.connection("pets").expect("pets");
    let works = || {
        let df = pets
            .query("SELECT 1 AS x")
            .ttl(std::time::Duration::ZERO)
            .fetch()
            .expect("pets still served");
        assert_eq!(df.height(), 1);
    };

    let e = host.connection("boom").unwrap_err();
    assert_eq!(e.plugin_kind(), Some(ErrorKind::PANIC), "{e}");
    assert!(
        e.to_string().contains("echo was told to panic in connect"),
        "{e}"
    );
    works();

    let a = host.connection("a").expect("a");
    let e = a.query("panic").fetch().unwrap_err();
    assert_eq!(e.plugin_kind(), Some(ErrorKind::PANIC), "{e}");
    works();

    let e = a.query("panic_in_stream").fetch().unwrap_err();
    assert_eq!(e.plugin_kind(), Some(ErrorKind::PANIC), "{e}");
    assert!(e.to_string().contains("panic inside the stream"), "{e}");
    works();

    // After a panic the connection was dropped; the next call reconnects (fresh counter).
    let n = a
        .query("count")
        .ttl(std::time::Duration::ZERO)
        .fetch()
        .expect("count");
    assert_eq!(
        n.column("reads").expect("reads").i64().expect("i64").get(0),
        Some(1)
    );

    let e = a.query("mismatch").fetch().unwrap_err();
    assert!(
        e.to_string().contains("does not match the stream's schema"),
        "{e}"
    );
    works();
}

#[test]
fn malformed_streams_from_a_raw_plugin_are_errors() {
    let project = project();
    let host = project.host();
    let raw = host.connection("raw").expect("raw");
    let ok = raw.query("ok").fetch().expect("a hand-built valid stream");
    assert_eq!(
        ok.column("x").expect("x").i64().expect("i64").sum(),
        Some(6)
    );

    for (query, expect) in [
        ("bad_children", "declared 1 children"),
        ("bad_utf8_error", "bad \u{FFFD}"),
        ("null_error", "no message"),
        ("not_struct", "stream of struct arrays"),
        (
            "negative_offsets",
            "batch.t: offset 1 is negative (-1000000000)",
        ),
        (
            "decreasing_offsets",
            "batch.b: offset 2 (1) is smaller than the one before (4)",
        ),
        ("misaligned_offsets", "is not aligned to 4 bytes"),
        (
            "misaligned_view_sizes",
            "batch.t: variadic buffer sizes at 0x",
        ),
        ("bad_utf8_text", "batch.t: value 0 is not UTF-8"),
        ("bad_utf8_view", "batch.t: value 0 is not UTF-8"),
        ("split_char_text", "batch.t: value 1 is not UTF-8"),
        ("split_char_view", "batch.t: value 0 is not UTF-8"),
        ("bad_utf8_long_view", "batch.t: value 0 is not UTF-8"),
        (
            "view_padding",
            "batch.t: value 0 is inline but not zero-padded",
        ),
        (
            "view_prefix",
            "batch.t: value 0's prefix is not its first 4 bytes",
        ),
        (
            "view_buffer_index",
            "batch.t: value 0 points into data buffer 3, of 1",
        ),
        (
            "view_past_buffer",
            "batch.t: value 0 ends at byte 30 of data buffer 0, which holds 20",
        ),
        (
            "interval",
            "column \"iv\" has Arrow type Interval(MonthDayNano), which this host cannot hold",
        ),
    ] {
        let e = raw.query(query).fetch().unwrap_err();
        assert!(matches!(e, Error::Plugin { .. }), "{query}: {e:?}");
        assert!(e.to_string().contains(expect), "{query}: {e}");
    }
    // Where a user meets it: one line, exit 1, no signal (an abort before the offsets
    // were checked: fuzz/artifacts/arrow_import/crash-4a33dee…).
    // And a misaligned offsets buffer, which polars read through an aligned pointer
    // (fuzz/artifacts/arrow_import/crash-6bb7d8b…).
    for query in [
        "negative_offsets",
        "decreasing_offsets",
        "misaligned_offsets",
        "bad_utf8_text",
        "bad_utf8_view",
        "split_char_text",
        "split_char_view",
        "bad_utf8_long_view",
        "view_padding",
        "view_prefix",
        "view_buffer_index",
        "view_past_buffer",
        // polars took the sizes as an aligned slice: a debug build aborted on its
        // precondition check (fuzz/artifacts/arrow_import/crash-a7b3c95…).
        "misaligned_view_sizes",
    ] {
        let e = plugboard_tests::cli!(project, ["query", "raw", query]).fails();
        assert!(e.contains("malformed Arrow stream: batch."), "{query}: {e}");
    }
    let pets = host.connection("pets").expect("pets");
    assert_eq!(
        pets.query("SELECT 1 AS x")
            .fetch()
            .expect("still serving")
            .height(),
        1
    );
}

#[test]
fn a_sliced_list_of_structs_prints_its_own_nulls() {
    // polars' JSON writer took a struct's nulls from the start of its values, not from the
    // list's first offset: a valid sliced column printed other rows' nulls
    // (fuzz/artifacts/output_formats/crash-65276c4…).
    let project = project();
    let ndjson = plugboard_tests::cli!(
        project,
        ["query", "raw", "sliced_struct_list", "--format", "ndjson"]
    )
    .ok();
    assert_eq!(
        ndjson,
        "{\"l\":[{\"a\":3},{\"a\":4}]}\n{\"l\":[null,{\"a\":6}]}\n"
    );
    let json = plugboard_tests::cli!(
        project,
        ["query", "raw", "sliced_struct_list", "--format", "json"]
    )
    .ok();
    let rows: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        rows,
        serde_json::json!([{"l": [{"a": 3}, {"a": 4}]}, {"l": [null, {"a": 6}]}]),
        "{json}"
    );

    // And through the library's writer.
    let df = project
        .host()
        .connection("raw")
        .expect("raw")
        .query("sliced_struct_list")
        .fetch()
        .expect("a valid stream");
    let mut out = Vec::new();
    plugboard::output::write(&df, plugboard::output::Format::Ndjson, &mut out).expect("write");
    assert_eq!(String::from_utf8(out).expect("UTF-8"), ndjson);
}

#[test]
fn unknown_names_list_what_exists() {
    let host = project().host();
    let e = host.connection("pet").unwrap_err().to_string();
    assert!(
        e.contains("unknown connection \"pet\"; did you mean \"pets\"?"),
        "{e}"
    );
    assert!(e.contains("configured: a, b, boom, pets, raw"), "{e}");
    let e = host
        .connection_with("a", ConnectOptions::new().kind("echoo"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown type \"echoo\"; did you mean \"echo\"?"),
        "{e}"
    );
    assert!(
        e.contains("the loaded plugins serve: echo, raw, sql, sqlite"),
        "{e}"
    );
    let e = host
        .connection_with("pets", ConnectOptions::new().set("url", "mysql://x/y"))
        .unwrap_err()
        .to_string();
    // What the section is, and what would serve it.
    assert!(
        e.contains("a MySQL database (its URL scheme mysql); no loaded plugin serves it: load a plugin of kind \"mysql\" (loaded schemes: echo, sqlite)"),
        "{e}"
    );
}

#[test]
fn pins_are_checked_before_loading_and_dirs_load_every_library() {
    let p = project();
    let sqlite = lib("plugboard_sqlite");
    let wrong_pin = "0".repeat(64);
    let folder = p.path("plugins.d");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::copy(lib("fixture_echo"), folder.join("libecho_copy.so")).expect("copy");
    p.write(
        "plugins.toml",
        &format!(
            "dirs = [\"plugins.d\"]\n\n[[plugin]]\npath = {:?}\nsha256 = \"{wrong_pin}\"\n",
            sqlite.display().to_string()
        ),
    );
    let host = p.host();
    let e = load_error(&p, &host, &sqlite);
    assert!(e.contains("does not match the pin"), "{e}");
    let names: Vec<String> = host
        .plugins()
        .into_iter()
        .map(|p| p.manifest.name)
        .collect();
    assert_eq!(
        names,
        ["echo"],
        "the folder's library loaded; the mispinned one did not"
    );
}

#[test]
fn plugin_logs_reach_the_host_log_under_the_plugins_name() {
    let p = Project::new(
        &["fixture_echo"],
        "[connections.e]\ntype = \"echo\"\ntag = \"logs\"\n",
    );
    let host = p.host();
    let (_, log) = plugboard_tests::capture_logs(|| {
        let c = host.connection("e").expect("connect");
        c.query("log").fetch().expect("read");
    });
    assert!(
        log.contains("INFO echo: echo connected (tag \"logs\")"),
        "connect's log, targeted `echo`:\n{log}"
    );
    assert!(
        log.contains("WARN echo: echo was asked to log (read 1)"),
        "{log}"
    );

    // Through the CLI, plugins' records show with -v.
    let run = plugboard_tests::cli!(p, ["query", "e", "log", "-v"]);
    run.ok();
    assert!(
        run.stderr().contains("echo was asked to log"),
        "{}",
        run.stderr()
    );
    let quiet = plugboard_tests::cli!(p, ["query", "e", "log"]);
    quiet.ok();
    assert!(
        quiet.stderr().contains("echo was asked to log"),
        "warnings show without -v too: {}",
        quiet.stderr()
    );
}

#[test]
fn a_declared_config_schema_is_checked_before_connect() {
    let p = Project::new(
        &["fixture_raw", "plugboard_sqlite"],
        "[connections.typo]\ntype = \"raw\"\nmode = \"x\"\nmod = \"y\"\n\n\
         [connections.missing]\ntype = \"raw\"\n\n\
         [connections.mistyped]\ntype = \"sqlite\"\ndatabase = \":memory:\"\npool_size = \"4\"\n\n\
         [connections.secrets]\ntype = \"raw\"\nmode = \"m\"\napi_key = \"key-123456\"\ntoken = \"tok-visible\"\npassword = \"pw-visible\"\n",
    );
    let host = p.host();
    let e = host
        .connection("typo")
        .expect_err("unknown key")
        .to_string();
    assert!(
        e.contains(
            "connection \"typo\": unknown key `mod` for the raw connector; did you mean `mode`?"
        ),
        "{e}"
    );
    let e = host.connection("missing").expect_err("missing").to_string();
    assert!(e.contains("missing required key `mode` (any text)"), "{e}");
    let e = host.connection("mistyped").expect_err("type").to_string();
    assert!(
        e.contains("`pool_size` must be an integer, got string"),
        "{e}"
    );

    // `connections list` hides what the schema marks secret, and keys that look secret
    // whatever the schema says: a schema adds secrets, it never makes a `password` printable.
    let out = plugboard_tests::cli!(p, ["connections", "list"]).ok();
    assert!(!out.contains("key-123456"), "{out}");
    assert!(out.contains("api_key = \"***\""), "{out}");
    assert!(
        !out.contains("tok-visible") && !out.contains("pw-visible"),
        "keys that look secret are hidden whatever the schema says: {out}"
    );
}

#[test]
fn plugboard_plugin_path_drops_in_folders_and_duplicates_name_both_paths() {
    let p = Project::new(
        &[],
        "[connections.m]\ntype = \"sqlite\"\ndatabase = \":memory:\"\n",
    );
    let (a, b) = (p.path("org-a"), p.path("org-b"));
    std::fs::create_dir(&a).expect("mkdir");
    std::fs::create_dir(&b).expect("mkdir");
    std::fs::copy(lib("plugboard_sqlite"), a.join("libsqlite.so")).expect("copy");
    std::fs::copy(lib("fixture_echo"), a.join("libecho.so")).expect("copy");
    std::fs::copy(lib("fixture_echo"), b.join("libecho_again.so")).expect("copy");
    let path = std::env::join_paths([&a, &b]).expect("join");
    let path = path.to_string_lossy();
    let run = plugboard_tests::cli!(
        p,
        ["query", "m", "SELECT 7 AS x"],
        env = ["PLUGBOARD_PLUGIN_PATH" => &path]
    );
    assert_eq!(
        run.ok(),
        "x\n7\n",
        "a plugin found only through the path serves"
    );
    let e = plugboard_tests::cli!(p, ["plugins", "list"], env = ["PLUGBOARD_PLUGIN_PATH" => &path])
        .fails();
    assert!(
        e.contains(&format!(
            "two plugins are named \"echo\": {} and {}",
            a.join("libecho.so").display(),
            b.join("libecho_again.so").display()
        )),
        "{e}"
    );
}

#[test]
fn plugins_pin_writes_pins_that_the_loader_enforces() {
    let p = Project::new(
        &[],
        "[connections.m]\ntype = \"sqlite\"\ndatabase = \":memory:\"\n",
    );
    let copy = p.path("libsqlite.so");
    std::fs::copy(lib("plugboard_sqlite"), &copy).expect("copy");
    p.write(
        "plugins.toml",
        "# our connectors\n[[plugin]]\npath = \"libsqlite.so\"   # the embedded default\n",
    );
    let out = plugboard_tests::cli!(p, ["plugins", "pin"]).ok();
    assert!(out.contains("pinned 1 plugin in plugins.toml"), "{out}");
    let text = std::fs::read_to_string(p.path("plugins.toml")).expect("read");
    assert!(
        text.starts_with("# our connectors\n") && text.contains("# the embedded default"),
        "comments kept: {text}"
    );
    let digest = out.split_whitespace().next().expect("digest").to_owned();
    assert_eq!(digest.len(), 64);
    assert!(text.contains(&format!("sha256 = \"{digest}\"")), "{text}");
    plugboard_tests::cli!(p, ["query", "m", "SELECT 1 AS x"]).ok();

    // Another library under the pinned name is refused before it is opened.
    std::fs::copy(lib("fixture_echo"), &copy).expect("swap the library");
    let e = plugboard_tests::cli!(p, ["query", "m", "SELECT 1 AS x"]).fails();
    assert!(e.contains("does not match the pin"), "{e}");

    let e = plugboard_tests::cli!(p, ["plugins", "pin", "--plugins", "nope.toml"]).fails();
    assert!(e.contains("nope.toml"), "{e}");
}

#[test]
fn a_decimal_past_its_precision_is_refused_naming_the_column() {
    // polars asserts a decimal's precision when it rebuilds a column (a one-row one becomes
    // a scalar): a plugin's 38-digit value in a Decimal(37, 0) ended the host.
    let p = Project::new(
        &["fixture_misbehave"],
        "[connections.m]\ntype = \"misbehave\"\n",
    );
    let host = p.host();
    let m = host.connection("m").expect("connect");
    let fits = m.query("decimal:37").fetch().expect("37 digits fit");
    assert_eq!(fits.height(), 1);
    let e = m
        .query("decimal:38")
        .fetch()
        .expect_err("38 digits do not")
        .to_string();
    assert!(
        e.contains("column \"d\" holds a decimal with more digits than its precision 37"),
        "{e}"
    );
    // And in every output format of the CLI.
    for format in ["table", "csv", "json", "parquet"] {
        let run = plugboard_tests::cli!(p, ["query", "m", "decimal:38", "--format", format]);
        let line = run.fails();
        assert!(line.contains("precision 37"), "{format}: {line}");
    }
}

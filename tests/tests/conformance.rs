//! Every connector of this repository passes the conformance suite again, as the built
//! `.so`, in both of the ways a host runs it: loaded into this process through abi_stable,
//! and isolated in a worker process (the `plugboard` binary's worker mode).

use std::path::Path;

use plugboard_api::conformance::{Case, Report, run, run_basic};
use plugboard_api::ffi::Module;
use plugboard_tests::{Project, cli, lib};

/// The program isolated plugins run in.
fn worker() -> Option<&'static Path> {
    Some(Path::new(env!("CARGO_BIN_EXE_plugboard-under-test")))
}

fn isolated(name: &str, case: &Case) -> Report {
    plugboard::conformance_isolated(&lib(name), case, worker()).expect("the worker loads it")
}

/// Each check's name and whether it passed.
fn outcomes(report: &Report) -> Vec<(&'static str, bool)> {
    report
        .checks
        .iter()
        .map(|c| (c.name, c.outcome.is_ok()))
        .collect()
}

fn outcome<'r>(report: &'r Report, name: &str) -> &'r Result<(), String> {
    &report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name:?} in\n{report}"))
        .outcome
}

fn case(json: serde_json::Value) -> Case {
    serde_json::from_value(json).expect("a conformance case")
}

#[test]
fn the_built_libraries_conform_in_process_and_isolated() {
    for (name, dir) in [
        ("plugboard_sqlite", "sqlite"),
        ("plugboard_postgres", "postgres"),
        ("plugboard_mysql", "mysql"),
        ("plugboard_duckdb", "duckdb"),
    ] {
        // The same case file the connector's own conformance test reads.
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins")
            .join(dir)
            .join("conformance.json");
        let text = std::fs::read_to_string(&path).expect("conformance.json");
        let case = serde_json::from_str(&text).expect("a conformance case");

        let in_process = run(Module::load(&lib(name)).expect("load"), &case);
        assert!(in_process.passed(), "{name} in process: {in_process}");
        let isolated = isolated(name, &case);
        assert!(isolated.passed(), "{name} isolated: {isolated}");
        // The same checks ran, not fewer.
        assert_eq!(outcomes(&isolated), outcomes(&in_process), "{name}");
        assert_eq!(isolated.checks.len(), 9, "{name}: {isolated}");
        assert_eq!(isolated.plugin, in_process.plugin);
    }
}

#[test]
fn the_echo_fixture_fails_the_bad_config_check_in_both_modes() {
    const BAD: &str = "a bad config is a config error naming the key";
    // The basic checks, as `plugins check` runs them.
    let in_process = run_basic(Module::load(&lib("fixture_echo")).expect("load"));
    let isolated_basic =
        plugboard::conformance_isolated_basic(&lib("fixture_echo"), worker()).expect("loads");
    for report in [&in_process, &isolated_basic] {
        assert_eq!(report.checks.len(), 2, "{report}");
        let why = outcome(report, BAD)
            .as_ref()
            .expect_err("echo accepts any key");
        assert!(
            why.contains("connect accepted the bad `plugboard_conformance_unknown_key`"),
            "{report}"
        );
        assert!(
            outcome(
                report,
                "the manifest is valid and declares what the plugin serves"
            )
            .is_ok(),
            "{report}"
        );
    }

    // The full suite: both modes reach the same verdict on every check (echo passes some,
    // and fails others besides this one).
    let case = case(serde_json::json!({
        "rows": {"query": "zero_copy"},
        "empty": {"query": "zero_copy", "limit": 0},
        "echo_param": {"query": "value"},
        "echo_column": "v",
        "failing": {"query": "fail"},
        "bad_config": [{"whatever": 1}, "whatever"],
    }));
    let in_process = run(Module::load(&lib("fixture_echo")).expect("load"), &case);
    let isolated = isolated("fixture_echo", &case);
    assert!(outcome(&in_process, BAD).is_err(), "{in_process}");
    assert!(outcome(&isolated, BAD).is_err(), "{isolated}");
    assert_eq!(
        outcomes(&isolated),
        outcomes(&in_process),
        "in process: {in_process}\nisolated: {isolated}"
    );
}

/// In process, each of these would end the test's own process: isolated, it is one failed
/// check, with what happened to the worker.
#[test]
fn a_plugin_that_crashes_in_connect_fails_a_check_instead_of_ending_the_caller() {
    for (failure, how) in [
        ("segv", "crashed (SIGSEGV"),
        ("abort", "crashed (SIGABRT"),
        ("exit", "exited with status 42"),
    ] {
        let case = case(serde_json::json!({
            "config": {"crash_on_connect": failure},
            "bad_config": [{"nope": 1}, "nope"],
        }));
        let report = isolated("fixture_misbehave", &case);
        let why = outcome(&report, "the working config connects")
            .as_ref()
            .expect_err("its worker died");
        assert!(
            why.contains("panic error: the plugin's worker process") && why.contains(how),
            "{failure}: {why}"
        );
        // The checks before it ran in a worker that lived.
        assert!(
            outcome(&report, "a bad config is a config error naming the key").is_ok(),
            "{report}"
        );
        assert_eq!(report.checks.len(), 3, "{report}");
    }
}

#[test]
fn a_read_that_crashes_the_plugin_fails_its_check_and_the_checks_after_it() {
    let case = case(serde_json::json!({
        "rows": {"query": "rows"},
        "empty": {"query": "big:0"},
        "failing": {"query": "segv"},
        "bad_config": [{"nope": 1}, "nope"],
    }));
    let report = isolated("fixture_misbehave", &case);
    for ok in [
        "the manifest is valid and declares what the plugin serves",
        "a bad config is a config error naming the key",
        "the schema is the same in every batch",
        "an empty result still has a schema",
    ] {
        assert!(outcome(&report, ok).is_ok(), "{ok}: {report}");
    }
    let why = outcome(&report, "a failing read is an error, not a panic")
        .as_ref()
        .expect_err("a crash is no error");
    assert!(
        why.contains("the plugin's worker process crashed (SIGSEGV"),
        "{report}"
    );
    // Its connection lived in the worker that died.
    assert!(
        outcome(&report, "a stream dropped early is released").is_err(),
        "{report}"
    );
    // misbehave takes parameters and ignores them, which the suite refuses.
    assert!(
        outcome(&report, "parameters are bound, not spliced into the query").is_err(),
        "{report}"
    );
}

#[test]
fn a_library_no_worker_can_load_is_an_error_naming_it() {
    let e = plugboard::conformance_isolated_basic(&lib("fixture_wrong_api"), worker())
        .expect_err("another major");
    let text = e.to_string();
    assert!(text.contains("fixture_wrong_api"), "{text}");
}

#[test]
fn plugins_check_reports_manifest_api_version_and_conformance() {
    let p = Project::new(&[], "");
    let sqlite = lib("plugboard_sqlite").display().to_string();
    let out = cli!(p, ["plugins", "check", &sqlite]).ok();
    for line in [
        "plugin:      sqlite",
        "api version: 1",
        "conformance of sqlite: 2 of 2 checks passed",
        "ok    a bad config is a config error naming the key",
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }
    assert!(out.contains("config keys: url, dialect, database"), "{out}");

    // The echo fixture accepts any key: check says so, and fails.
    let echo = lib("fixture_echo").display().to_string();
    let run_ = cli!(p, ["plugins", "check", &echo]);
    assert!(
        run_.stdout()
            .contains("FAIL  a bad config is a config error naming the key"),
        "{}",
        run_.stdout()
    );
    let e = run_.fails();
    assert!(e.contains("echo failed 1 conformance check"), "{e}");
}

#[test]
fn plugins_check_runs_the_checks_in_a_worker_when_asked() {
    let p = Project::new(&[], "");
    let sqlite = lib("plugboard_sqlite").display().to_string();
    let out = cli!(p, ["plugins", "check", &sqlite, "--isolation", "process"]).ok();
    assert!(
        out.contains("conformance of sqlite: 2 of 2 checks passed"),
        "{out}"
    );
    let echo = lib("fixture_echo").display().to_string();
    let run_ = cli!(p, ["plugins", "check", &echo, "--isolation", "process"]);
    assert!(
        run_.stdout()
            .contains("FAIL  a bad config is a config error naming the key"),
        "{}",
        run_.stdout()
    );
    assert!(
        run_.fails().contains("echo failed 1 conformance check"),
        "{}",
        run_.stdout()
    );
    let e = cli!(p, ["plugins", "check", &sqlite, "--isolation", "thread"]).fails();
    assert!(e.contains("thread"), "{e}");
}

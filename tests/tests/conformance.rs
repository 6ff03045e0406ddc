//! Every connector of this repository passes the conformance suite again, as the built
//! `.so` loaded through abi_stable, the way a host sees it.

use plugboard_api::conformance::{run, run_basic};
use plugboard_api::ffi::Module;
use plugboard_tests::{Project, cli, lib};

#[test]
fn the_built_libraries_conform() {
    for (name, dir) in [
        ("plugboard_sqlite", "sqlite"),
        ("plugboard_postgres", "postgres"),
    ] {
        // The same case file the connector's own conformance test reads.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins")
            .join(dir)
            .join("conformance.json");
        let text = std::fs::read_to_string(&path).expect("conformance.json");
        let case = serde_json::from_str(&text).expect("a conformance case");
        let module = Module::load(&lib(name)).expect("load");
        let report = run(module, &case);
        assert!(report.passed(), "{name}: {report}");
    }
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
    assert_eq!(
        run_basic(Module::load(&lib("fixture_echo")).expect("load"))
            .checks
            .len(),
        2
    );
}

//! The DuckDB connector passes plugboard's conformance suite, in process.

use plugboard_api::conformance::run;
use plugboard_api::ffi::Module;

#[test]
fn duckdb_conforms() {
    let report = run(
        Module::of::<plugboard_duckdb::DuckDb>(),
        &serde_json::from_str(include_str!("../conformance.json")).expect("conformance.json"),
    );
    assert!(report.passed(), "{report}");
    assert_eq!(report.checks.len(), 9);
}

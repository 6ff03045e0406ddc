//! The PostgreSQL connector passes plugboard's conformance suite, in process, against the server on 127.0.0.1:5432.

use plugboard_api::conformance::run;
use plugboard_api::ffi::Module;

#[test]
fn postgres_conforms() {
    let report = run(
        Module::of::<plugboard_postgres::Postgres>(),
        &serde_json::from_str(include_str!("../conformance.json")).expect("conformance.json"),
    );
    assert!(report.passed(), "{report}");
    assert_eq!(report.checks.len(), 9);
}

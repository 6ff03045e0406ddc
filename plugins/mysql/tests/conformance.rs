//! The MySQL connector passes plugboard's conformance suite, in process, against the
//! MariaDB server on 127.0.0.1:3306.

use plugboard_api::conformance::run;
use plugboard_api::ffi::Module;

#[test]
fn mysql_conforms() {
    let report = run(
        Module::of::<plugboard_mysql::Mysql>(),
        &serde_json::from_str(include_str!("../conformance.json")).expect("conformance.json"),
    );
    assert!(report.passed(), "{report}");
    assert_eq!(report.checks.len(), 9);
}

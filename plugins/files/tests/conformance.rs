//! The files connector passes plugboard's conformance suite, in process, on local files.

use plugboard_api::conformance::run;
use plugboard_api::ffi::Module;

#[test]
fn files_conforms() {
    let report = run(
        Module::of::<plugboard_files::Files>(),
        &serde_json::from_str(include_str!("../conformance.json")).expect("conformance.json"),
    );
    assert!(report.passed(), "{report}");
    assert_eq!(report.checks.len(), 8);
}

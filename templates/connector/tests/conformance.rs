//! Passes plugboard's conformance suite: run `cargo test` after every change.

use plugboard_api::conformance::run;
use plugboard_api::ffi::Module;

#[test]
fn series_conforms() {
    let case = serde_json::from_str(include_str!("../conformance.json")).expect("conformance.json");
    let report = run(Module::of::<plugboard_series::Series>(), &case);
    assert!(report.passed(), "{report}");
}

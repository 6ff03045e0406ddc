//! The ADBC connector passes plugboard's conformance suite in process, with the SQLite
//! ADBC driver from PyPI (`adbc-driver-sqlite`).
//!
//! The driver comes from the Python environment `$PLUGBOARD_ADBC_PYTHON`, else
//! `<target dir>/adbc-venv`, which `.ci/run` makes (see the README's Connectors section).

use plugboard_api::conformance::{Case, run};
use plugboard_api::ffi::Module;

mod common;
use common::adbc_python;

#[test]
fn adbc_conforms_with_the_sqlite_driver() {
    // The same case the tests of the built library read; the drivers' environment is
    // this machine's, so it is added here.
    let mut case: serde_json::Value =
        serde_json::from_str(include_str!("../conformance.json")).expect("conformance.json");
    let python = adbc_python().display().to_string();
    case["config"]["python"] = python.clone().into();
    case["bad_config"][0]["python"] = python.into();
    let case: Case = serde_json::from_value(case).expect("case");
    let report = run(Module::of::<plugboard_adbc::Adbc>(), &case);
    assert!(report.passed(), "{report}");
    assert_eq!(report.checks.len(), 8);
}

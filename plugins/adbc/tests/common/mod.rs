//! What the plugin's own tests share: the Python environment with the driver wheels.

use std::path::PathBuf;

/// The Python environment holding the ADBC driver wheels: `$PLUGBOARD_ADBC_PYTHON`, else
/// `<target dir>/adbc-venv` (which `.ci/run` makes).
pub fn adbc_python() -> PathBuf {
    if let Some(p) = std::env::var_os("PLUGBOARD_ADBC_PYTHON") {
        return PathBuf::from(p);
    }
    // CARGO_TARGET_TMPDIR is <target dir>/tmp.
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../adbc-venv");
    assert!(
        venv.join("bin/python").exists(),
        "no ADBC driver environment at {} (make it as .ci/run does, or set PLUGBOARD_ADBC_PYTHON)",
        venv.display()
    );
    venv
}

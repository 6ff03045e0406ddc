//! The Python package (`python/`): its pytest suites, run against the extension module
//! that `cargo test` built (`lib_plugboard.so`, a dev-dependency of this crate) and the real
//! connector libraries beside it.
//!
//! The module is put beside the package's Python sources in a temporary folder, as
//! `plugboard/_plugboard.abi3.so`, the name maturin gives it in a wheel. The Python comes
//! from `$PLUGBOARD_TEST_PYTHON`, else `<target dir>/python-venv`, which the first run
//! fills from PyPI with `python/requirements-test.txt`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use plugboard_tests::{chinook, deps_dir, lib, pg};

/// The Python the suites run with: `$PLUGBOARD_TEST_PYTHON`, else the virtualenv
/// `<target dir>/python-venv`, made on first use from `python/requirements-test.txt` (and
/// made again when that file changes).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Some(p) = std::env::var_os("PLUGBOARD_TEST_PYTHON") {
            return p.into();
        }
        let venv = deps_dir().join("../../python-venv");
        let requirements = python_dir().join("requirements-test.txt");
        let wanted = std::fs::read_to_string(&requirements).expect("python/requirements-test.txt");
        let requirements = requirements.display().to_string();
        plugboard_tests::venv(&venv, &wanted, &["-r", &requirements]);
        venv.join("bin/python")
    })
}

/// The package as a wheel would install it: the sources and the extension module.
fn package() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let pkg = dir.path().join("plugboard");
    std::fs::create_dir(&pkg).expect("package folder");
    let src = python_dir().join("plugboard");
    for entry in std::fs::read_dir(&src).expect("python/plugboard") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "py" || e == "typed") {
            std::fs::copy(&path, pkg.join(path.file_name().expect("name"))).expect("copy source");
        }
    }
    std::os::unix::fs::symlink(lib("_plugboard"), pkg.join("_plugboard.abi3.so"))
        .expect("link the module");
    dir
}

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../python")
}

/// Runs one pytest file; fails with pytest's report unless every test passed.
fn pytest(file: &str) {
    let package = package();
    let (user, password) = pg::password_role();
    let out = Command::new(python())
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
        ])
        .arg(python_dir().join("tests").join(file))
        .env("PYTHONPATH", package.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PLUGBOARD_TEST_DEPS", deps_dir())
        .env("PLUGBOARD_TEST_CHINOOK", chinook())
        .env("PLUGBOARD_TEST_PG_CHINOOK", pg::url(pg::chinook()))
        .env("PLUGBOARD_TEST_PG_SCRATCH", pg::url(pg::scratch()))
        .env(
            "PLUGBOARD_TEST_PG_PRIVATE_PORT",
            pg::private().port().to_string(),
        )
        .env("PLUGBOARD_TEST_PG_PRIVATE_USER", user)
        .env("PLUGBOARD_TEST_PG_PRIVATE_PASSWORD", password)
        .current_dir(package.path()) // not python/: its sources lack the module
        .output()
        .expect("run pytest");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pytest {file} failed:\n{report}");
    // A suite that collected nothing passes too: make sure it ran.
    assert!(
        report.contains(" passed"),
        "pytest {file} ran no test:\n{report}"
    );
    assert!(
        !report.contains(" skipped"),
        "pytest {file} skipped tests:\n{report}"
    );
}

#[test]
fn the_package_against_the_real_connectors() {
    pytest("test_plugboard.py");
}

#[test]
fn a_streamlit_app_through_plugboard_connection() {
    pytest("test_streamlit.py");
}

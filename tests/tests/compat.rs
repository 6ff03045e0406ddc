//! The compatibility promise (docs/compatibility.md): a plugin built against an earlier
//! plugboard-api minor of the same major loads and works in today's host.
//!
//! `tests/compat/` holds a frozen copy of plugboard-api 1.0.0 and a connector built
//! against it, in a workspace of their own (the frozen crate has the same package name as
//! today's). This test builds it with the same cargo, then loads the library for real.

use std::path::{Path, PathBuf};
use std::process::Command;

use plugboard_tests::{Project, cli, int};

fn legacy_plugin() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = repo.join("target").join("compat");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(repo.join("tests/compat/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building tests/compat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug").join(format!(
        "{}legacy_echo{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

#[test]
fn a_plugin_built_against_plugin_api_1_0_loads_and_works() {
    let lib = legacy_plugin();
    let p = Project::new(
        &[],
        "[connections.old]\ntype = \"legacy\"\ngreeting = \"hello\"\n",
    );
    p.write(
        "plugins.toml",
        &format!("[[plugin]]\npath = {:?}\n", lib.display().to_string()),
    );
    let host = p.host();
    assert!(host.load_errors().is_empty(), "{:?}", host.load_errors());
    let c = host.connection("old").expect("connect");
    let df = c.query("rows").param("n", 3).fetch().expect("read");
    assert_eq!(df.height(), 3);
    assert_eq!(
        df.column("greeting")
            .expect("greeting")
            .str()
            .expect("str")
            .get(2),
        Some("hello")
    );
    assert_eq!(int(&df, "i"), 0);
    // Its errors cross the boundary as they did.
    let e = c.query("rows").fetch().expect_err("no n");
    assert!(e.to_string().contains("bind :n"), "{e}");

    let out = cli!(p, ["plugins", "check", &lib.display().to_string()]).ok();
    assert!(out.contains("legacy 1.0.0"), "{out}");
}

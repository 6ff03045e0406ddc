//! The compatibility promise (docs/compatibility.md): a plugin built against an earlier
//! plugboard-api minor of the same major loads and works in today's host.
//!
//! `tests/compat/` holds a frozen copy of plugboard-api 1.0.0 and a connector built
//! against it, in a workspace of their own (the frozen crate has the same package name as
//! today's). This test builds it with the same cargo, then loads the library for real.
//!
//! `tests/compat/vtable/` settles what abi_stable does with a connection vtable of another
//! length than the host's: a plugin with fewer methods (an imagined older minor) and one
//! with an extra method appended (an imagined newer minor), both on 1.0's root module.

use std::path::{Path, PathBuf};
use std::process::Command;

use plugboard_tests::{Project, cli, int};

/// Builds `package` of the workspace at `tests/compat/<workspace>` and returns its library.
fn build(workspace: &str, package: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = repo.join("target").join("compat");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(repo.join("tests/compat").join(workspace).join("Cargo.toml"))
        .args(["-p", package])
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building {package} in tests/compat/{workspace} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug").join(format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        package.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    ))
}

fn legacy_plugin() -> PathBuf {
    build("", "legacy-echo")
}

fn project_with(lib: &Path, secrets: &str) -> Project {
    let p = Project::new(&[], secrets);
    p.write(
        "plugins.toml",
        &format!("[[plugin]]\npath = {:?}\n", lib.display().to_string()),
    );
    p
}

#[test]
fn a_plugin_built_against_plugin_api_1_0_loads_and_works() {
    let lib = legacy_plugin();
    let p = project_with(
        &lib,
        "[connections.old]\ntype = \"legacy\"\ngreeting = \"hello\"\n",
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
    // It has no cancel symbol (1.7): the host says it cannot, and asks nothing.
    assert!(!c.cancel().expect("cancel"), "a 1.0 plugin cannot cancel");
    assert_eq!(
        c.query("rows")
            .param("n", 1)
            .fetch()
            .expect("read")
            .height(),
        1
    );

    let out = cli!(p, ["plugins", "check", &lib.display().to_string()]).ok();
    assert!(out.contains("legacy 1.0.0"), "{out}");
}

/// Schema discovery came in 1.6 as a field of the read request, which a 1.0 plugin would
/// ignore (running the empty query instead): the host does not ask it, and says why.
#[test]
fn a_plugin_built_before_1_6_is_not_asked_for_its_tables() {
    let lib = legacy_plugin();
    let p = project_with(
        &lib,
        "[connections.old]\ntype = \"legacy\"\ngreeting = \"hello\"\n",
    );
    let host = p.host();
    let c = host.connection("old").expect("connect");
    let e = c.tables().fetch().expect_err("not supported");
    assert_eq!(
        e.to_string(),
        "connection \"old\": listing tables is not supported by plugin legacy 1.0.0 (built \
         against plugboard-api 1.0 (inferred); listing tables came in plugboard-api 1.6)"
    );
    let e = c.describe("t").fetch().expect_err("not supported");
    assert!(
        e.to_string().starts_with(
            "connection \"old\": describing a table is not supported by plugin legacy 1.0.0"
        ),
        "{e}"
    );
    let err = cli!(p, ["tables", "old"]).fails_with(4);
    assert!(
        err.contains("not supported by plugin legacy 1.0.0"),
        "{err}"
    );
    // Reads still work.
    assert_eq!(
        c.query("rows")
            .param("n", 2)
            .fetch()
            .expect("read")
            .height(),
        2
    );
}

/// The question `tests/compat/vtable` settles: can a minor append a method to the
/// connection vtable (`FfiConnection`) and still load plugins built before it? No: a plugin
/// whose vtable is shorter than the host's is refused when it is loaded, by abi_stable's
/// layout check, before any of its code runs. The methods after `read` are therefore part
/// of the 1.x layout for good, and a new connection capability must be a versioned symbol.
#[test]
fn a_plugin_whose_connection_vtable_is_shorter_than_the_hosts_is_refused_at_load() {
    let lib = build("vtable", "short-vtable");

    // abi_stable's own report: the vtable, reached through the root module's `connect`,
    // has 3 fields (2 of abi_stable's, `read`) where the host's has 6 (`execute`, `ping`,
    // `close` too). Its wording for "fewer than expected" is "too many fields".
    let report = plugboard_api::ffi::Module::load(&lib).expect_err("refused");
    assert!(
        report.contains("Error:too many fields\nExpected:\n    6\nFound:\n    3"),
        "{report}"
    );
    assert!(
        report.contains("type:VTable")
            && report.contains("mod:plugboard_api::ffi::FfiConnection_trait"),
        "{report}"
    );

    // The host refuses it the same way, with one line naming the library and the type.
    let p = project_with(&lib, "[connections.s]\ntype = \"short\"\n");
    let host = p.host();
    let errors: Vec<String> = host.load_errors().iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("libshort_vtable")
            && errors[0].contains(
                "incompatible plugin ABI: plugboard_api::ffi::FfiConnection_trait::VTable: \
                 too many fields Expected: 6 Found: 3"
            ),
        "{errors:?}"
    );
    assert!(host.plugins().is_empty());
    let e = host.connection("s").expect_err("no plugin serves it");
    assert!(e.to_string().contains("short"), "{e}");

    let e = cli!(p, ["plugins", "check", &lib.display().to_string()]).fails();
    assert!(e.contains("incompatible plugin ABI"), "{e}");
}

/// The other direction, for the record: a vtable *longer* than the host's (a method
/// appended after `close`, as a newer minor would) loads, and the host calls the four
/// methods it knows at their 1.0 places; it never sees the fifth. abi_stable's prefix
/// types let the library be newer than the host, not older, which is not what plugins
/// need (a new host must load old plugins).
#[test]
fn a_plugin_whose_connection_vtable_is_longer_loads_and_its_known_methods_work() {
    let lib = build("vtable", "long-vtable");
    let p = project_with(&lib, "[connections.l]\ntype = \"long\"\n");
    let host = p.host();
    assert!(host.load_errors().is_empty(), "{:?}", host.load_errors());
    let c = host.connection("l").expect("connect");
    let df = c.query("rows").fetch().expect("read");
    assert_eq!(df.height(), 3);
    assert_eq!(c.execute("anything").run().expect("execute"), 7);
    let e = c.ping().expect_err("its ping fails on purpose");
    assert!(
        e.to_string().contains("long-vtable's ping was called"),
        "{e}"
    );

    // It has none of the 1.1+ symbols: its release is inferred, and an error inside its
    // stream is read back from the text (kind and flag included), as before 1.4.
    let info = &host.plugins()[0];
    assert_eq!(info.api.to_string(), "1.0 (inferred)");
    let e = c.query("fail_midway").fetch().expect_err("fails midway");
    assert_eq!(
        e.plugin_kind(),
        Some(plugboard_api::ErrorKind::CONNECT),
        "{e}"
    );
    assert_eq!(e.attempts(), Some(3), "retryable, so retried: {e}");
}

/// Which plugboard-api a plugin was built against: recorded since 1.4 (plugboard-api's
/// own version, whatever the plugin's), inferred from its symbols before.
#[test]
fn the_api_release_a_plugin_was_built_against_is_recorded_or_inferred() {
    let legacy = legacy_plugin();
    let echo = plugboard_tests::lib("fixture_echo");
    let sqlite = plugboard_tests::lib("plugboard_sqlite");
    let p = Project::new(
        &["fixture_echo", "plugboard_sqlite"],
        "[connections.old]\ntype = \"legacy\"\ngreeting = \"hi\"\n",
    );
    p.write(
        "plugins.toml",
        &[&legacy, &echo, &sqlite]
            .iter()
            .map(|l| format!("[[plugin]]\npath = {:?}\n", l.display().to_string()))
            .collect::<String>(),
    );
    let host = p.host();
    assert!(host.load_errors().is_empty(), "{:?}", host.load_errors());
    let api = |name: &str| {
        host.plugins()
            .into_iter()
            .find(|i| i.manifest.name == name)
            .map(|i| i.api)
            .unwrap_or_else(|| panic!("{name} did not load"))
    };
    // The 1.0 plugin records nothing and exports no capability symbol.
    assert_eq!(
        api("legacy"),
        plugboard_api::ApiRelease::Inferred {
            major: 1,
            from: 0,
            to: 0
        }
    );
    // Today's plugins record this plugboard-api's version: not echo's crate version
    // (0.0.0) or manifest version (0.0.1), not sqlite's (0.1.0).
    for name in ["echo", "sqlite"] {
        assert_eq!(
            api(name),
            plugboard_api::ApiRelease::Recorded(plugboard_api::API_RELEASE.to_owned()),
            "{name}"
        );
    }
    assert_eq!(api("echo").minor(), Some(7));

    let list = cli!(p, ["plugins", "list"]).ok();
    let row = |name: &str| {
        list.lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no {name} row in\n{list}"))
            .to_owned()
    };
    assert!(list.contains(" api "), "{list}");
    assert!(row("legacy").contains("1.0 (inferred)"), "{list}");
    assert!(row("echo").contains(plugboard_api::API_RELEASE), "{list}");

    let out = cli!(p, ["plugins", "check", &legacy.display().to_string()]).ok();
    assert!(
        out.contains("api version: 1, built with plugboard-api 1.0 (inferred)"),
        "{out}"
    );
    let out = cli!(p, ["plugins", "check", &sqlite.display().to_string()]).ok();
    assert!(
        out.contains(&format!(
            "api version: 1, built with plugboard-api {}",
            plugboard_api::API_RELEASE
        )),
        "{out}"
    );
}

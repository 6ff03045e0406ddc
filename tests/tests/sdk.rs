//! The connector in docs/writing-a-connector.md, built exactly as the guide writes it and
//! outside this workspace, loads into the host, answers queries and passes conformance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use plugboard_api::conformance::run;
use plugboard_api::ffi::Module;
use plugboard_tests::{Project, cli};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repo")
}

/// The guide's files: each fenced block after a `<!-- file: PATH -->` line.
fn guide_files() -> BTreeMap<String, String> {
    let guide = std::fs::read_to_string(repo().join("docs/writing-a-connector.md")).expect("guide");
    let mut files = BTreeMap::new();
    let mut lines = guide.lines();
    while let Some(line) = lines.next() {
        if let Some(name) = line
            .strip_prefix("<!-- file: ")
            .and_then(|l| l.strip_suffix(" -->"))
        {
            assert!(
                lines.next().is_some_and(|f| f.starts_with("```")),
                "{name}: no fence"
            );
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            files.insert(name.to_owned(), body.join("\n") + "\n");
        }
    }
    files
}

fn cargo(dir: &Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .current_dir(dir)
        .args(args)
        .arg("--target-dir")
        .arg(repo().join("target/sdk"))
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_guides_connector_builds_outside_the_workspace_loads_and_conforms() {
    let files = guide_files();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "Cargo.toml",
            "conformance.json",
            "src/lib.rs",
            "tests/conformance.rs"
        ]
    );
    // The template crate is the guide's code (the guide is what newcomers read).
    let template =
        std::fs::read_to_string(repo().join("templates/connector/src/lib.rs")).expect("template");
    let template: String = template
        .lines()
        .filter(|l| !l.starts_with("//!"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        template.trim(),
        files["src/lib.rs"].trim(),
        "templates/connector/src/lib.rs drifted from the guide"
    );

    let outside = tempfile::tempdir().expect("tempdir");
    let krate = outside.path().join("plugboard-series");
    for (name, text) in &files {
        let text = text.replace(
            "../plugboard/plugin-api",
            &repo().join("plugin-api").display().to_string(),
        );
        let path = krate.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    cargo(&krate, &["test", "--quiet"]); // the guide's own conformance test, in process
    cargo(&krate, &["build", "--quiet"]);
    let lib = repo().join("target/sdk/debug").join(format!(
        "{}plugboard_series{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));

    let case = serde_json::from_str(&files["conformance.json"]).expect("case");
    let report = run(Module::load(&lib).expect("load"), &case);
    assert!(report.passed(), "{report}");

    let p = Project::new(
        &[],
        "[connections.numbers]\ntype = \"series\"\noffset = 100\n",
    );
    p.write(
        "plugins.toml",
        &format!("[[plugin]]\npath = {:?}\n", lib.display().to_string()),
    );
    let out = cli!(
        p,
        [
            "query",
            "numbers",
            "series",
            "-p",
            "count=3",
            "-p",
            "label=hello"
        ]
    )
    .ok();
    assert_eq!(out, "value,label\n100,hello\n101,hello\n102,hello\n");
    let e = cli!(p, ["query", "numbers", "series"]).fails();
    assert!(e.contains("bind :count"), "{e}");
}

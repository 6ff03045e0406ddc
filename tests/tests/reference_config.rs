//! The checked-in `plugins.toml` and `examples/secrets.toml` are documentation: parse them
//! so they cannot drift from what the host accepts.

use std::path::Path;

use plugboard::config::PluginsFile;
use plugboard::secrets::Secrets;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn plugins_toml_names_the_connectors() {
    let f = PluginsFile::read(&repo("plugins.toml")).expect("plugins.toml parses");
    for lib in [
        "libplugboard_sqlite.so",
        "libplugboard_postgres.so",
        "libplugboard_gsheets.so",
    ] {
        assert!(
            f.plugins
                .iter()
                .any(|p| p.path.ends_with(format!("target/debug/{lib}"))),
            "{lib} missing: {f:?}"
        );
    }
}

#[test]
fn example_secrets_define_the_demo_connections() {
    let s = Secrets::load(&[repo("examples/secrets.toml")]).expect("secrets parse");
    assert_eq!(
        s.names().collect::<Vec<_>>(),
        ["chinook", "chinook_pg", "pets_db"]
    );
    assert_eq!(
        s.section("pets_db").and_then(|t| t["url"].as_str()),
        Some("sqlite:///pets.db")
    );
}

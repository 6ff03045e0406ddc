//! A library pinned by sha256 is verified on the very bytes that get loaded: the host reads
//! it once into a sealed memfd, hashes the sealed copy and loads that copy, so swapping the
//! file at its path after the check changes nothing that runs.
//!
//! The proof is the process's own view: `/proc/self/maps` shows the library mapped from the
//! memfd and never from its path, the memfd holds exactly the pinned bytes and refuses
//! writes, and a swapped file is what the *next* load refuses.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use plugboard_tests::{Project, cli, lib};

/// A project with one `[[plugin]]`: a copy of the echo fixture named `file`, pinned by
/// `plugboard plugins pin`. Returns the project, the copy's path and its pin.
fn pinned_echo(file: &str) -> (Project, PathBuf, String) {
    let p = Project::new(&[], "[connections.e]\ntype = \"echo\"\n");
    let copy = p.path(file);
    std::fs::copy(lib("fixture_echo"), &copy).expect("copy the library");
    p.write("plugins.toml", &format!("[[plugin]]\npath = {file:?}\n"));
    let out = cli!(p, ["plugins", "pin"]).ok();
    let pin = out.split_whitespace().next().expect("digest").to_owned();
    assert_eq!(pin.len(), 64, "{out}");
    let text = std::fs::read_to_string(p.path("plugins.toml")).expect("read plugins.toml");
    assert!(text.contains(&pin), "{text}");
    (p, copy, pin)
}

/// The lines of /proc/self/maps that map `needle`.
fn mappings(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// The descriptor of this process whose target is `link` (as `readlink` shows it).
fn fd_linking_to(link: &str) -> Option<PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|fd| std::fs::read_link(fd).is_ok_and(|t| t == Path::new(link)))
}

#[test]
fn a_pinned_library_runs_from_the_sealed_copy_that_was_hashed() {
    let file = "libpin_sealed_echo.so";
    let (p, copy, _pin) = pinned_echo(file);
    let original = std::fs::read(&copy).expect("read the library");
    let host = p.host();
    assert!(host.load_errors().is_empty(), "{:?}", host.load_errors());
    let plugins = host.plugins();
    assert_eq!(plugins.len(), 1);
    assert_eq!(
        plugins[0].path, copy,
        "the plugin is reported by the user's path, not /proc/self/fd"
    );

    let memfd = format!("/memfd:plugboard-pinned:{file} (deleted)");
    assert!(
        !mappings(&memfd).is_empty(),
        "the library is mapped from its sealed copy: {:?}",
        mappings(file)
    );
    assert_eq!(
        mappings(&copy.display().to_string()),
        Vec::<String>::new(),
        "and never from the file at its path"
    );

    // The copy holds exactly the bytes that were pinned, and nothing can change them.
    let fd = fd_linking_to(&memfd).expect("the sealed copy stays open");
    assert!(
        std::fs::read(&fd).expect("read the copy") == original,
        "the loaded copy is byte for byte the pinned file"
    );
    let write = std::fs::OpenOptions::new()
        .write(true)
        .open(&fd)
        .and_then(|mut f| f.write_all(b"\x7fELF tampered"));
    assert!(write.is_err(), "the copy is sealed against writes");

    // Swap the file at the path for another library: what runs is still the pinned one.
    std::fs::copy(lib("fixture_raw"), &copy).expect("swap the library");
    let c = host.connection("e").expect("connect");
    let df = c.query("count").fetch().expect("read");
    assert!(df.column("reads").is_ok(), "echo answered: {df}");

    // The next load checks the new bytes, and refuses them in one line naming the file.
    let again = p.host();
    assert!(again.plugins().is_empty());
    let errors: Vec<String> = again.load_errors().iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(file) && errors[0].contains("does not match the pin"),
        "{errors:?}"
    );
}

#[test]
fn a_wrong_pin_is_refused_in_one_line_naming_the_file() {
    let file = "libpin_wrong_echo.so";
    let p = Project::new(&[], "[connections.e]\ntype = \"echo\"\n");
    std::fs::copy(lib("fixture_echo"), p.path(file)).expect("copy the library");
    let wrong = "ab".repeat(32);
    p.write(
        "plugins.toml",
        &format!("[[plugin]]\npath = {file:?}\nsha256 = \"{wrong}\"\n"),
    );
    let e = cli!(p, ["query", "e", "count"]).fails();
    assert!(
        e.contains(file) && e.contains(&format!("does not match the pin {wrong}")),
        "{e}"
    );
    // Refused before any of its code ran: not even its sealed copy is kept.
    let host = p.host();
    assert!(host.plugins().is_empty());
    assert_eq!(
        mappings(&format!("plugboard-pinned:{file}")),
        Vec::<String>::new()
    );
    assert!(fd_linking_to(&format!("/memfd:plugboard-pinned:{file} (deleted)")).is_none());
}

#[test]
fn an_unpinned_library_still_loads_by_its_path() {
    let file = "libpin_unpinned_echo.so";
    let p = Project::new(&[], "[connections.e]\ntype = \"echo\"\n");
    let copy = p.path(file);
    std::fs::copy(lib("fixture_echo"), &copy).expect("copy the library");
    p.write("plugins.toml", &format!("[[plugin]]\npath = {file:?}\n"));
    let host = p.host();
    assert!(host.load_errors().is_empty(), "{:?}", host.load_errors());
    assert!(!mappings(&copy.display().to_string()).is_empty());
    assert!(mappings(&format!("plugboard-pinned:{file}")).is_empty());
    host.connection("e")
        .expect("connect")
        .query("count")
        .fetch()
        .expect("read");
}

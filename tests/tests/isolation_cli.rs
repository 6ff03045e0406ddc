//! The CLI with an isolated plugin: Ctrl-C stops the worker's work with the host, and the
//! worker sees none of the host's `PLUGBOARD_*` settings (other connections' secrets).
//! Real processes, real signals.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plugboard_tests::{Project, lib};

const BIN: &str = env!("CARGO_BIN_EXE_plugboard-under-test");

fn project() -> Project {
    let p = Project::new(&[], "[connections.m]\ntype = \"misbehave\"\n");
    p.write(
        "plugins.toml",
        &format!(
            "[[plugin]]\npath = {:?}\nisolation = \"process\"\n",
            lib("fixture_misbehave").display().to_string()
        ),
    );
    p
}

/// The pids of the workers whose parent is `host` (they name it in `--parent`).
fn workers_of(host: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let worker = args.iter().any(|a| *a == b"__worker");
        let parent = args
            .windows(2)
            .any(|w| w[0] == b"--parent" && w[1] == host.to_string().as_bytes());
        if worker && parent {
            found.push(pid);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    // A zombie has exited: only its entry is left for its parent to reap.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn ctrl_c_stops_the_host_and_its_worker() {
    let p = project();
    // Its own process group, as a shell's foreground job: Ctrl-C signals the group.
    let mut child = Command::new(BIN)
        .current_dir(p.dir.path())
        .env("PLUGBOARD_PLUGINS", "plugins.toml")
        .env("PLUGBOARD_SECRETS", "secrets.toml")
        .env("PLUGBOARD_CACHE_DIR", p.cache_dir())
        .env("HOME", p.dir.path())
        .args(["query", "m", "hang"])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the CLI");
    let host = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    let worker = loop {
        if let Some(w) = workers_of(host).first() {
            break *w;
        }
        assert!(Instant::now() < deadline, "no worker started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let the read reach the plugin, which then hangs forever.
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(worker));
    let status = Command::new("kill")
        .args(["-INT", "--", &format!("-{host}")])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = Instant::now();
    let exited = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the CLI did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!exited.success());
    while alive(worker) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "worker {worker} outlived its host"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_worker_never_sees_the_hosts_plugboard_variables() {
    let p = project();
    // The fixture reads its own environment: a variable the host had must be gone.
    let run = p.cli(
        BIN,
        &[
            "query",
            "m",
            "env:PLUGBOARD_CONNECTIONS__OTHER__PASSWORD",
            "--format",
            "csv",
        ],
        &[(
            "PLUGBOARD_CONNECTIONS__OTHER__PASSWORD",
            "S3cret-of-another",
        )],
    );
    let out = run.ok();
    assert!(!out.contains("S3cret-of-another"), "{out}");
    // …while the worker is a real process with the rest of the environment.
    let run = p.cli(
        BIN,
        &["query", "m", "env:PB_TEST_PLAIN", "--format", "csv"],
        &[("PB_TEST_PLAIN", "plain-value")],
    );
    assert!(run.ok().contains("plain-value"));
}

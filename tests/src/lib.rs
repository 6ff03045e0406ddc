//! Helpers for the integration tests: find the real plugin libraries that `cargo test`
//! built, and lay out a throwaway project (plugins.toml + secrets.toml) around them.
//!
//! The plugin crates are dev-dependencies of this crate, which makes cargo build their
//! `cdylib`s into `target/<profile>/deps/` (without a hash in the name), next to the test
//! executables.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use plugboard::{Host, HostBuilder};

pub mod google;

/// The folder holding the test executables and the plugin libraries.
pub fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("exe has a parent");
    // Test executables live in deps/; the `plugboard-under-test` binary one level up.
    if dir.ends_with("deps") {
        dir.to_path_buf()
    } else {
        dir.join("deps")
    }
}

/// The built library of a plugin crate (`plugboard_sqlite`, `fixture_echo`, ...).
pub fn lib(crate_name: &str) -> PathBuf {
    let path = deps_dir().join(format!(
        "{}{crate_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        path.display()
    );
    path
}

/// The Chinook sample database shipped beside this repository.
pub fn chinook() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/chinook/chinook.sqlite");
    assert!(
        p.exists(),
        "{} is missing: ../shared must sit beside the repository",
        p.display()
    );
    p.canonicalize().expect("canonical chinook path")
}

/// Makes a virtualenv at `dir` with `pip install ARGS`, unless its `.installed` already
/// holds `stamp` (what was installed the last time).
pub fn venv(dir: &Path, stamp: &str, args: &[impl AsRef<std::ffi::OsStr>]) {
    let marker = dir.join(".installed");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(stamp) {
        return;
    }
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("run python3");
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(dir));
    run(Command::new(dir.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(args));
    std::fs::write(&marker, stamp).expect("write the venv marker");
}

/// The integer in row 0 of `column`.
pub fn int(df: &polars::prelude::DataFrame, column: &str) -> i64 {
    df.column(column)
        .unwrap_or_else(|e| panic!("no column {column}: {e}"))
        .i64()
        .unwrap_or_else(|e| panic!("{column} is not i64: {e}"))
        .get(0)
        .unwrap_or_else(|| panic!("{column} is empty or null"))
}

/// A temporary project: a plugins.toml naming real libraries, a secrets file, a work dir.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// `plugins` are crate names (`plugboard_sqlite`); `secrets` is the secrets file text.
    pub fn new(plugins: &[&str], secrets: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut toml = String::new();
        for p in plugins {
            toml.push_str(&format!(
                "[[plugin]]\npath = {:?}\n\n",
                lib(p).display().to_string()
            ));
        }
        std::fs::write(dir.path().join("plugins.toml"), toml).expect("write plugins.toml");
        std::fs::write(dir.path().join("secrets.toml"), secrets).expect("write secrets.toml");
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    /// A host configured from this project only (no environment, no user file).
    pub fn builder(&self) -> HostBuilder {
        Host::builder()
            .plugins_file(self.path("plugins.toml"))
            .secrets_file(self.path("secrets.toml"))
            .project_dir(self.dir.path())
            .user_config_dir(None)
            .use_env(false)
            .cache_dir(Some(self.cache_dir()))
    }

    /// The project's own disk cache (the CLI gets it through `PLUGBOARD_CACHE_DIR`).
    pub fn cache_dir(&self) -> PathBuf {
        self.path("cache")
    }

    /// The disk cache's entry files.
    pub fn cache_entries(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.cache_dir().join("results-v1"))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "entry"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    pub fn host(&self) -> Host {
        self.builder().build().expect("host")
    }

    /// Runs the CLI binary in this project's folder with its plugins.toml and secrets.
    pub fn cli(&self, bin: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run(self.command(bin, args, env).output().expect("run the CLI"))
    }

    /// The command [`Project::cli`] runs, to start it in the background or elsewhere.
    pub fn command(&self, bin: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(bin);
        cmd.current_dir(self.dir.path())
            // Through the environment, so a test can still pass --plugins/--secrets.
            .env("PLUGBOARD_PLUGINS", "plugins.toml")
            .env("PLUGBOARD_SECRETS", "secrets.toml")
            .env_remove("PLUGBOARD_LOG")
            .env_remove("PLUGBOARD_CACHE_MAX_BYTES")
            // Tables fit $COLUMNS when standard output is not a terminal.
            .env_remove("COLUMNS")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("PLUGBOARD_CACHE_DIR", self.cache_dir())
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// A finished CLI run.
#[derive(Debug)]
pub struct Run(pub Output);

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Where `-v` says the read's result came from: `memory hit`, `disk hit`,
    /// `redis hit`, `stale hit` or `miss` (asserting it says exactly one).
    pub fn outcome(&self) -> &'static str {
        let err = self.stderr();
        let found: Vec<&str> = ["memory hit", "disk hit", "redis hit", "stale hit", "miss"]
            .into_iter()
            .filter(|o| err.contains(&format!(": {o}")))
            .collect();
        assert_eq!(found.len(), 1, "expected one outcome in the log: {err}");
        found[0]
    }

    /// Asserts success and returns stdout.
    pub fn ok(&self) -> String {
        assert!(
            self.0.status.success(),
            "expected success, got {:?}\nstderr: {}",
            self.0.status,
            self.stderr()
        );
        self.stdout()
    }

    /// Asserts a failure with one of the documented error codes (1 to 4: not a signal,
    /// not 0) and a one-line `error:`; returns it.
    pub fn fails(&self) -> String {
        let code = self.0.status.code();
        assert!(
            matches!(code, Some(1..=4)),
            "expected exit 1 to 4, got {:?}\nstdout: {}\nstderr: {}",
            self.0.status,
            self.stdout(),
            self.stderr()
        );
        let err = self.stderr();
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
        lines[0].to_owned()
    }

    /// As [`Run::fails`], with exactly this exit code.
    pub fn fails_with(&self, code: i32) -> String {
        let line = self.fails();
        assert_eq!(self.0.status.code(), Some(code), "{line}");
        line
    }
}

/// Runs the CLI of this crate's `plugboard-under-test` binary.
#[macro_export]
macro_rules! cli {
    ($project:expr, [$($arg:expr),* $(,)?]) => {
        $project.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &[$($arg),*], &[])
    };
    ($project:expr, [$($arg:expr),* $(,)?], env = [$($k:expr => $v:expr),* $(,)?]) => {
        $project.cli(env!("CARGO_BIN_EXE_plugboard-under-test"), &[$($arg),*], &[$(($k, $v)),*])
    };
}

/// PostgreSQL for the tests, driven with `psql`: the machine's server on 127.0.0.1:5432
/// (trust auth, user `postgres`) for the tests that only read and write their own databases,
/// and private servers ([`pg::Server`]) for the tests that need a server configured or
/// restarted: those never touch the machine's configuration or its server.
/// A text no other statement holds, to find one's own at a server (`pg::running`).
pub fn marker(what: &str) -> String {
    format!(
        "plugboard-{what}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    )
}

/// Waits until `running` says a statement runs (it reached the server), 10 s at most.
pub fn until_running(running: impl Fn() -> usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while running() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the statement never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits until `running` says the statement stopped: how long that took, or `None`
/// after 5 s.
pub fn until_stopped(running: impl Fn() -> usize) -> Option<std::time::Duration> {
    let since = std::time::Instant::now();
    while running() > 0 {
        if since.elapsed() > std::time::Duration::from_secs(5) {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Some(since.elapsed())
}

pub mod pg {
    use std::net::TcpListener;
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::OnceLock;
    use std::time::Instant;

    /// A URL for one of the server's databases, as the `postgres` superuser.
    pub fn url(db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:5432/{db}")
    }

    /// Runs `psql` with `args` against `db`; returns its standard output, panics on failure.
    pub fn psql(db: &str, args: &[&str]) -> String {
        run_psql(&["-h", "127.0.0.1"], db, args)
    }

    /// `psql` as `postgres`, connected through `connect` (`-h`, `-p`) to `db`.
    fn run_psql(connect: &[&str], db: &str, args: &[&str]) -> String {
        let out = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(connect)
            .args(["-U", "postgres", "-d", db])
            .args(args)
            .output()
            .expect("run psql (is the PostgreSQL client installed?)");
        assert!(
            out.status.success(),
            "psql {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One value, as psql prints it unaligned.
    pub fn value(db: &str, sql: &str) -> String {
        psql(db, &["-A", "-t", "-c", sql]).trim().to_owned()
    }

    /// A query's result as CSV, the way psql writes it.
    pub fn csv(db: &str, sql: &str) -> String {
        psql(db, &["--csv", "-c", sql])
    }

    /// How many statements whose text holds `marker` the server is running (for any
    /// database), this one not counted.
    pub fn running(marker: &str) -> usize {
        value(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
                 AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
            ),
        )
        .parse()
        .expect("a count")
    }

    /// The database holding Chinook, loaded once from `../shared/data/chinook/`.
    pub fn chinook() -> &'static str {
        static DB: OnceLock<()> = OnceLock::new();
        DB.get_or_init(|| {
            let loaded = value(
                "postgres",
                &format!("SELECT count(*) FROM pg_database WHERE datname = '{CHINOOK}'"),
            ) == "1"
                && value(CHINOOK, "SELECT to_regclass('public.track') IS NOT NULL") == "t"
                && value(CHINOOK, "SELECT count(*) FROM track") == "3503";
            if !loaded {
                load_chinook(psql);
            }
        });
        CHINOOK
    }

    const CHINOOK: &str = "plugboard_chinook";

    /// (Re)creates the [`CHINOOK`] database through `psql` and loads the script into it.
    fn load_chinook(psql: impl Fn(&str, &[&str]) -> String) {
        psql(
            "postgres",
            &[
                "-c",
                &format!("DROP DATABASE IF EXISTS {CHINOOK} WITH (FORCE)"),
            ],
        );
        psql("postgres", &["-c", &format!("CREATE DATABASE {CHINOOK}")]);
        let script =
            std::fs::read_to_string(super::chinook().with_file_name("chinook_postgres.sql"))
                .expect("chinook_postgres.sql beside chinook.sqlite");
        // The script creates and switches to its own database; load it into ours.
        let body: String = script
            .lines()
            .filter(|l| {
                !(l.starts_with("DROP DATABASE")
                    || l.starts_with("CREATE DATABASE")
                    || l.starts_with("\\c "))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), body).expect("write script");
        psql(CHINOOK, &["-f", &file.path().display().to_string()]);
    }

    /// A database for tests' own tables (each test uses table names of its own).
    pub fn scratch() -> &'static str {
        static DB: OnceLock<()> = OnceLock::new();
        const NAME: &str = "plugboard_scratch";
        DB.get_or_init(|| {
            if value(
                "postgres",
                &format!("SELECT count(*) FROM pg_database WHERE datname = '{NAME}'"),
            ) != "1"
            {
                psql("postgres", &["-c", &format!("CREATE DATABASE {NAME}")]);
            }
        });
        NAME
    }

    /// The password role's name on a [`Server`] (see [`Server::password_role`]).
    pub const PASSWORD_USER: &str = "plugboard_pw";
    const PASSWORD: &str = "right-password";

    /// The password role of the shared [`private`] server: connect to its port
    /// ([`Server::port`]), not to the machine's server, which trusts every role.
    pub fn password_role() -> (&'static str, &'static str) {
        private().password_role()
    }

    /// This test binary's private server, started on first use and shared by its tests.
    /// It stops when the test process ends, however it ends (see [`Server`]).
    pub fn private() -> &'static Server {
        static SERVER: OnceLock<Server> = OnceLock::new();
        SERVER.get_or_init(Server::start)
    }

    /// A PostgreSQL server of the tests' own: a fresh cluster (`initdb`) in a temporary
    /// folder, with its own `pg_hba.conf` (`postgres` is trusted over the unix socket and
    /// 127.0.0.1; every other role logs in with a `scram-sha-256` password), listening on
    /// 127.0.0.1 on a free port and on a unix socket inside the folder.
    ///
    /// Dropping it stops the server (`pg_ctl stop -m immediate`) and removes the folder. A
    /// watchdog process does the same when the test process ends without dropping it (a
    /// `static`, an abort, a signal): it holds the read end of a pipe that only this process
    /// writes to, and cleans up when the pipe closes.
    ///
    /// As root, the server runs as the OS user `postgres` (`initdb` and `postgres` refuse
    /// to run as root), through `runuser`.
    pub struct Server {
        root: PathBuf,
        bin: PathBuf,
        port: u16,
        watchdog: Option<(Child, ChildStdin)>,
        password_role: OnceLock<()>,
        chinook: OnceLock<()>,
    }

    impl Server {
        /// Creates and starts a server; panics (with its log) if it cannot.
        pub fn start() -> Self {
            let started = Instant::now();
            let bin = bin_dir();
            let root = make_root();
            let mut server = Server {
                watchdog: Some(watchdog(&root, &bin)),
                root,
                bin,
                port: 0,
                password_role: OnceLock::new(),
                chinook: OnceLock::new(),
            };
            server.initdb();
            // Another process may take the free port before the server binds it: retry.
            for attempt in 1.. {
                server.port = free_port();
                match server.pg_ctl_start() {
                    Ok(()) => break,
                    Err(log) if attempt < 5 && log.contains("Address already in use") => {}
                    Err(log) => panic!("the private PostgreSQL did not start:\n{log}"),
                }
            }
            eprintln!(
                "private PostgreSQL on 127.0.0.1:{} in {}, started in {:?}",
                server.port,
                server.root.display(),
                started.elapsed()
            );
            server
        }

        /// The TCP port on 127.0.0.1.
        pub fn port(&self) -> u16 {
            self.port
        }

        /// A URL for one of the server's databases, as the `postgres` superuser (trusted).
        pub fn url(&self, db: &str) -> String {
            format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
        }

        /// Runs `psql` as `postgres` over the unix socket; panics on failure.
        pub fn psql(&self, db: &str, args: &[&str]) -> String {
            let socket = self.socket_dir().display().to_string();
            let port = self.port.to_string();
            run_psql(&["-h", &socket, "-p", &port], db, args)
        }

        /// One value, as psql prints it unaligned.
        pub fn value(&self, db: &str, sql: &str) -> String {
            self.psql(db, &["-A", "-t", "-c", sql]).trim().to_owned()
        }

        /// A role that logs in only with its password (`scram-sha-256` over TCP), created on
        /// first use: `(user, password)`.
        pub fn password_role(&self) -> (&'static str, &'static str) {
            self.password_role.get_or_init(|| {
                self.psql(
                    "postgres",
                    &[
                        "-c",
                        &format!(
                            "SET password_encryption = 'scram-sha-256'; \
                             CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'"
                        ),
                    ],
                );
            });
            (PASSWORD_USER, PASSWORD)
        }

        /// The database holding Chinook on this server, loaded on first use.
        pub fn chinook(&self) -> &'static str {
            self.chinook
                .get_or_init(|| load_chinook(|db, args| self.psql(db, args)));
            CHINOOK
        }

        /// Stops the server the way `pg_ctlcluster restart` does (`-m fast`: sessions are
        /// terminated), then starts it again on the same port.
        pub fn restart(&self) {
            let out = self
                .pg_ctl()
                .args(["-m", "fast", "stop"])
                .output()
                .expect("run pg_ctl stop");
            assert!(
                out.status.success(),
                "pg_ctl stop failed: {}{}",
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
            if let Err(log) = self.pg_ctl_start() {
                panic!("the private PostgreSQL did not start again:\n{log}");
            }
        }

        /// The server's log so far.
        pub fn log(&self) -> String {
            std::fs::read_to_string(self.root.join("log")).unwrap_or_default()
        }

        fn data_dir(&self) -> PathBuf {
            self.root.join("data")
        }

        fn socket_dir(&self) -> PathBuf {
            self.root.join("socket")
        }

        fn initdb(&self) {
            let out = as_server_user(&self.bin.join("initdb"))
                .arg("-D")
                .arg(self.data_dir())
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"])
                .arg("--no-sync")
                .output()
                .expect("run initdb");
            assert!(
                out.status.success(),
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let hba = "local all postgres trust\n\
                       host all postgres 127.0.0.1/32 trust\n\
                       host all all 127.0.0.1/32 scram-sha-256\n";
            // Overwritten in place, so it keeps initdb's owner and mode.
            std::fs::write(self.data_dir().join("pg_hba.conf"), hba)
                .expect("write the private pg_hba.conf");
            let out = as_server_user(Path::new("mkdir"))
                .arg(self.socket_dir())
                .output()
                .expect("mkdir the socket folder");
            assert!(out.status.success(), "mkdir: {out:?}");
        }

        /// `pg_ctl start` on `self.port`; `Err` holds what this start wrote to the log.
        fn pg_ctl_start(&self) -> Result<(), String> {
            let before = self.log().len();
            let socket = self.socket_dir().display().to_string();
            assert!(
                !socket.contains(['\'', '\\']),
                "an unusual temporary folder: {socket}"
            );
            // Passed through a shell by pg_ctl: the folder is quoted.
            let options = format!(
                "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories='{socket}' \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c shared_buffers=8MB -c autovacuum=off",
                self.port
            );
            let out = self
                .pg_ctl()
                .arg("-l")
                .arg(self.root.join("log"))
                .args(["-o", &options, "start"])
                .output()
                .expect("run pg_ctl start");
            if out.status.success() {
                return Ok(());
            }
            let log = self.log();
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                log.get(before..).unwrap_or(&log)
            ))
        }

        /// `pg_ctl` for this server's data folder, waiting (`-w`) up to a minute.
        fn pg_ctl(&self) -> Command {
            let mut cmd = as_server_user(&self.bin.join("pg_ctl"));
            cmd.arg("-D")
                .arg(self.data_dir())
                .args(["-w", "-t", "60", "-s"]);
            cmd
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.pg_ctl().args(["-m", "immediate", "stop"]).output();
            let _ = std::fs::remove_dir_all(&self.root);
            // Closing the pipe ends the watchdog, which finds nothing left to do.
            if let Some((mut child, stdin)) = self.watchdog.take() {
                drop(stdin);
                let _ = child.wait();
            }
        }
    }

    /// Whether this process runs as root (`initdb` and `postgres` refuse to).
    fn is_root() -> bool {
        static ROOT: OnceLock<bool> = OnceLock::new();
        *ROOT.get_or_init(|| {
            Command::new("id")
                .arg("-u")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
                .unwrap_or(false)
        })
    }

    /// `program` run as the server's OS user: `postgres` under root, else this process's.
    fn as_server_user(program: &Path) -> Command {
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// The folder of `initdb`, `pg_ctl` and `postgres`: `$PLUGBOARD_PG_BIN`, else the newest
    /// `/usr/lib/postgresql/<version>/bin` (Debian's layout), else the one `pg_config` names.
    fn bin_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("PLUGBOARD_PG_BIN") {
            return PathBuf::from(dir);
        }
        let newest = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let version: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .max();
        if let Some((_, bin)) = newest {
            return bin;
        }
        let out = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .expect("no /usr/lib/postgresql/*/bin/initdb and no pg_config: set PLUGBOARD_PG_BIN");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }

    /// A new temporary folder owned by the server's OS user.
    fn make_root() -> PathBuf {
        let template = std::env::temp_dir().join("plugboard-pg-XXXXXX");
        let out = as_server_user(Path::new("mktemp"))
            .arg("-d")
            .arg(&template)
            .output()
            .expect("run mktemp");
        assert!(
            out.status.success(),
            "mktemp -d {} as the server's user: {}",
            template.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }

    /// A process that stops the server and removes `root` once this process's end of its
    /// stdin closes: at the latest when this process exits, however it exits. It runs in a
    /// process group of its own and ignores the signals a terminal or `timeout` sends, so
    /// that it outlives this process.
    fn watchdog(root: &Path, bin: &Path) -> (Child, ChildStdin) {
        use std::os::unix::process::CommandExt;
        let stop = as_server_user(&bin.join("pg_ctl"));
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            r#"trap '' INT TERM HUP PIPE; cat >/dev/null; root=$1; shift; "$@" -D "$root/data" -m immediate stop; rm -rf "$root""#,
            "plugboard-pg-watchdog",
        ])
        .arg(root)
        .arg(stop.get_program())
        .args(stop.get_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
        let mut child = cmd.spawn().expect("start the private server's watchdog");
        let stdin = child.stdin.take().expect("the watchdog's stdin");
        (child, stdin)
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port on 127.0.0.1")
    }
}

/// Runs `f` with a tracing subscriber on this thread that records the host's log lines and
/// its plugins' (debug and up); returns `f`'s result and the log.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let log =
        String::from_utf8_lossy(&buffer.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    (result, log)
}

/// Real servers on 127.0.0.1 for the files connector: Python's `http.server`, moto's S3
/// server from PyPI in a virtual environment of the tests' own, and Azurite from npm in a
/// folder of the tests' own (each installed on first use, once per target folder).
pub mod servers {
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// What the tests' Python environment holds, pinned: moto, and Azure's SDK for setting
    /// up Azurite.
    const PYTHON_PACKAGES: &[&str] = &["moto[server]==5.2.5", "azure-storage-blob==12.31.1"];

    /// Azurite, pinned.
    const AZURITE: &str = "azurite@3.37.0";

    /// A server process, killed when dropped.
    pub struct Server {
        child: Child,
        pub port: u16,
    }

    impl Server {
        pub fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port on 127.0.0.1")
    }

    fn start(mut cmd: Command, port: u16, what: &str) -> Server {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let mut server = Server { child, port };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{what} exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `python3 -m http.server` serving `dir`.
    pub fn http(dir: &Path) -> Server {
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir);
        start(cmd, port, "python3 -m http.server")
    }

    /// The tests' Python environment with moto and azure-storage-blob, made once per
    /// target folder.
    fn venv() -> &'static Path {
        static VENV: OnceLock<PathBuf> = OnceLock::new();
        VENV.get_or_init(|| {
            let dir = std::env::var_os("PLUGBOARD_TEST_VENV")
                .map(PathBuf::from)
                .unwrap_or_else(|| super::deps_dir().join("../../test-venv"));
            super::venv(&dir, &PYTHON_PACKAGES.join(" "), PYTHON_PACKAGES);
            dir
        })
    }

    /// An S3 server (moto) with IAM checks, a bucket, and `uploads` (key, local file) in it;
    /// returns the server and the access key id and secret that are allowed in.
    pub fn s3(bucket: &str, uploads: &[(&str, &Path)]) -> (Server, String, String) {
        let venv = venv();
        let port = free_port();
        let mut cmd = Command::new(venv.join("bin/moto_server"));
        cmd.args(["-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "4");
        let server = start(cmd, port, "moto_server");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/s3_setup.py");
        let out = Command::new(venv.join("bin/python"))
            .arg(script)
            .arg(server.url())
            .arg(bucket)
            .args(uploads.iter().map(|(k, p)| format!("{k}={}", p.display())))
            .output()
            .expect("run s3_setup.py");
        assert!(
            out.status.success(),
            "s3_setup.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let (id, secret) = text.trim().split_once(' ').expect("key id and secret");
        (server, id.to_owned(), secret.to_owned())
    }

    /// An S3 server (moto) without IAM checks, with a bucket and `uploads` in it, to stand
    /// in for Google Cloud Storage's XML API, which object_store's GCS store speaks and which
    /// is S3's (paths, listing, headers). moto takes the Google bearer token and does not
    /// check it. (gcp-storage-emulator, from PyPI, serves GCS's JSON API: its object
    /// downloads carry no ETag or Last-Modified, which object_store requires, HEAD is not
    /// served, and it has no XML listing, so object_store's GCS store cannot read from it.)
    pub fn gcs_xml(bucket: &str, uploads: &[(&str, &Path)]) -> Server {
        let venv = venv();
        let port = free_port();
        let mut cmd = Command::new(venv.join("bin/moto_server"));
        cmd.args(["-H", "127.0.0.1", "-p"]).arg(port.to_string());
        let server = start(cmd, port, "moto_server");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/s3_setup.py");
        let out = Command::new(venv.join("bin/python"))
            .arg(script)
            .arg(server.url())
            .arg(bucket)
            .args(uploads.iter().map(|(k, p)| format!("{k}={}", p.display())))
            .output()
            .expect("run s3_setup.py");
        assert!(
            out.status.success(),
            "s3_setup.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server
    }

    /// Azurite's blob server, installed with npm once per target folder.
    fn azurite_bin() -> &'static Path {
        static BIN: OnceLock<PathBuf> = OnceLock::new();
        BIN.get_or_init(|| {
            let dir = std::env::var_os("PLUGBOARD_TEST_AZURITE")
                .map(PathBuf::from)
                .unwrap_or_else(|| super::deps_dir().join("../../test-azurite"));
            let marker = dir.join(format!(".installed-{}", AZURITE.replace('@', "-")));
            if !marker.exists() {
                let out = Command::new("npm")
                    .args([
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                        "--prefix",
                    ])
                    .arg(&dir)
                    .arg(AZURITE)
                    .output()
                    .expect("run npm");
                assert!(
                    out.status.success(),
                    "npm install {AZURITE} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::fs::write(&marker, "").expect("write the azurite marker");
            }
            dir.join("node_modules/.bin/azurite-blob")
        })
    }

    /// An Azurite blob server and what it lets in.
    pub struct Azure {
        pub server: Server,
        /// The account's blob endpoint: `http://127.0.0.1:PORT/ACCOUNT`.
        pub endpoint: String,
        pub account: String,
        /// The account's key, random per server.
        pub key: String,
        /// A SAS token for the container (read and list).
        pub sas: String,
        /// Azurite's working folder (it keeps its data in memory).
        _dir: tempfile::TempDir,
    }

    /// A random text that is valid base64 (hex digits are base64 digits): an account key.
    fn random_key() -> String {
        use std::hash::{BuildHasher, Hasher};
        (0..4)
            .map(|i| {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u64(i);
                format!("{:016x}", h.finish())
            })
            .collect()
    }

    /// Azurite (Shared Key and SAS checks on) with an account of its own, a random key,
    /// a container, and `uploads` (blob, local file) in it.
    pub fn azure(container: &str, uploads: &[(&str, &Path)]) -> Azure {
        let bin = azurite_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let account = "plugboard".to_owned();
        let key = random_key();
        let mut cmd = Command::new(bin);
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(port.to_string())
            .current_dir(dir.path())
            // Azurite sends telemetry unless told not to: no traffic leaves this machine.
            .args(["--disableTelemetry", "--inMemoryPersistence", "--silent"])
            .arg("--skipApiVersionCheck")
            .env("AZURITE_ACCOUNTS", format!("{account}:{key}"));
        let server = start(cmd, port, "azurite-blob");
        let endpoint = format!("{}/{account}", server.url());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/azure_setup.py");
        let out = Command::new(venv().join("bin/python"))
            .arg(script)
            .args([&endpoint, &account, &key, container])
            .args(uploads.iter().map(|(k, p)| format!("{k}={}", p.display())))
            .output()
            .expect("run azure_setup.py");
        assert!(
            out.status.success(),
            "azure_setup.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sas = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Azure {
            server,
            endpoint,
            account,
            key,
            sas,
            _dir: dir,
        }
    }

    /// An RSA key in PKCS#8 PEM, made with the `openssl` CLI: a service account's
    /// `private_key`.
    pub fn rsa_key() -> String {
        let out = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl genpkey failed");
        String::from_utf8(out.stdout).expect("PEM is text")
    }
}

/// TLS for the PostgreSQL tests: certificates made with the `openssl` CLI, and a
/// [`pg::Server`] switched to `ssl = on` with them (`ALTER SYSTEM`, then a reload).
pub mod pg_tls {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::pg;

    /// A folder of PEM files: a CA and certificates it signed (P-256 keys, valid two days).
    pub struct Certs {
        pub dir: tempfile::TempDir,
    }

    impl Certs {
        /// A new CA, `ca.pem` (its key `ca.key`), in a folder the server's user can read.
        pub fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            set_mode(dir.path(), 0o755);
            let certs = Certs { dir };
            certs.write(
                "ca.ext",
                "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
            );
            certs.request("ca.key", "ca.csr", "plugboard test CA");
            certs.openssl(&[
                "x509", "-req", "-in", "ca.csr", "-signkey", "ca.key", "-extfile", "ca.ext",
                "-days", "2", "-out", "ca.pem",
            ]);
            certs
        }

        /// A new P-256 key (unencrypted PKCS#8) at `key` and a signing request for the
        /// subject `CN=cn` at `csr`.
        fn request(&self, key: &str, csr: &str, cn: &str) {
            self.openssl(&[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                key,
                "-out",
                csr,
                "-subj",
                &format!("/CN={cn}"),
            ]);
        }

        /// A path in the folder.
        pub fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        /// `<name>.pem` and `<name>.key` (unencrypted PKCS#8), signed by the CA, for the
        /// subject `cn` and the subjectAltNames `san` (`IP:127.0.0.1,DNS:localhost`; none if
        /// empty). Returns (certificate, key).
        pub fn issue(&self, name: &str, cn: &str, san: &str) -> (PathBuf, PathBuf) {
            let ext = format!("{name}.ext");
            let mut text = String::from("basicConstraints=CA:FALSE\n");
            if !san.is_empty() {
                text.push_str(&format!("subjectAltName={san}\n"));
            }
            self.write(&ext, &text);
            let (key, csr, pem) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
            );
            self.request(&key, &csr, cn);
            let serial = format!("{}", std::process::id() ^ name.len() as u32 ^ 0x5eed);
            self.openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &serial,
                "-extfile",
                &ext,
                "-days",
                "2",
                "-out",
                &pem,
            ]);
            set_mode(&self.path(&pem), 0o644);
            (self.path(&pem), self.path(&key))
        }

        /// `key` encrypted with `passphrase` (PKCS#8, `ENCRYPTED PRIVATE KEY`), as `name`.
        pub fn encrypt(&self, key: &Path, name: &str, passphrase: &str) -> PathBuf {
            self.openssl(&[
                "pkcs8",
                "-topk8",
                "-in",
                &key.display().to_string(),
                "-out",
                name,
                "-passout",
                &format!("pass:{passphrase}"),
            ]);
            self.path(name)
        }

        pub fn write(&self, name: &str, text: &str) -> PathBuf {
            let p = self.path(name);
            std::fs::write(&p, text).expect("write");
            p
        }

        fn openssl(&self, args: &[&str]) {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(self.dir.path())
                .output()
                .expect("run openssl (is the openssl CLI installed?)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    impl Default for Certs {
        fn default() -> Self {
            Self::new()
        }
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Turns TLS on in `server` with this certificate and key; with `client_ca`, the server
    /// also asks clients for a certificate signed by it (and checks one that is sent; the
    /// trusted `postgres` logs in with or without). Waits until the server runs with it.
    pub fn enable(server: &pg::Server, cert: &Path, key: &Path, client_ca: Option<&Path>) {
        // PostgreSQL wants its key readable by its own user alone.
        set_mode(key, 0o600);
        if Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"))
        {
            let out = Command::new("chown")
                .arg("postgres")
                .arg(key)
                .output()
                .expect("chown the server key");
            assert!(out.status.success(), "chown: {out:?}");
        }
        let quote = |p: &Path| {
            let text = p.display().to_string();
            assert!(!text.contains('\''), "an unusual path: {text}");
            text
        };
        let mut sql = format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'; ALTER SYSTEM SET ssl_key_file = '{}'; ",
            quote(cert),
            quote(key)
        );
        if let Some(ca) = client_ca {
            sql.push_str(&format!("ALTER SYSTEM SET ssl_ca_file = '{}'; ", quote(ca)));
        }
        sql.push_str("ALTER SYSTEM SET ssl = on;");
        for statement in sql.split_inclusive(';') {
            server.psql("postgres", &["-c", statement.trim()]);
        }
        server.psql("postgres", &["-c", "SELECT pg_reload_conf()"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.value("postgres", "SHOW ssl") != "on" {
            assert!(
                Instant::now() < deadline,
                "the server did not turn TLS on:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// MySQL for the tests, driven with the `mariadb` client: the machine's MariaDB on
/// 127.0.0.1:3306 (`root`, no password) for tests that only read and write their own
/// databases, and private servers ([`my::Server`]) for tests that need users with
/// passwords, TLS or a restart: those never touch the machine's server.
pub mod my {
    use std::net::TcpListener;
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// A URL for one of the machine's databases, as `root`.
    pub fn url(db: &str) -> String {
        format!("mysql://root@127.0.0.1:3306/{db}")
    }

    /// Runs the `mariadb` client with `args` against the machine's server; returns its
    /// standard output, panics on failure.
    pub fn client(db: &str, args: &[&str]) -> String {
        run_client(&["-h", "127.0.0.1", "-P", "3306"], db, args)
    }

    fn run_client(connect: &[&str], db: &str, args: &[&str]) -> String {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .args(connect)
            .args(["-u", "root", "--default-character-set=utf8mb4"])
            .args(args)
            .arg(db)
            .output()
            .expect("run mariadb (is the MariaDB client installed?)");
        assert!(
            out.status.success(),
            "mariadb {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs statements; returns what they print.
    pub fn exec(db: &str, sql: &str) -> String {
        client(db, &["-e", sql])
    }

    /// One value, as the client prints it (`--batch --skip-column-names`).
    pub fn value(db: &str, sql: &str) -> String {
        client(db, &["--batch", "--skip-column-names", "-e", sql])
            .trim_end_matches('\n')
            .to_owned()
    }

    /// How many statements whose text holds `marker` the server is running, this one
    /// not counted.
    pub fn running(marker: &str) -> usize {
        value(
            "test",
            &format!(
                "SELECT count(*) FROM information_schema.processlist \
                 WHERE info LIKE '%{marker}%' AND id <> connection_id()"
            ),
        )
        .trim()
        .parse()
        .expect("a count")
    }

    /// A query's rows as the client prints them in batch mode (tab-separated, `NULL` for
    /// null, `\t` `\n` `\\` escaped), header first.
    pub fn rows(db: &str, sql: &str) -> Vec<Vec<String>> {
        client(db, &["--batch", "-e", sql])
            .lines()
            .map(|l| l.split('\t').map(unescape).collect())
            .collect()
    }

    fn unescape(field: &str) -> String {
        let mut out = String::new();
        let mut chars = field.chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('t') => out.push('\t'),
                    Some('n') => out.push('\n'),
                    Some('0') => out.push('\0'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                },
                (c, false) => out.push(c),
            }
        }
        out
    }

    /// The database holding Chinook, loaded once from `../shared/data/chinook/`.
    pub fn chinook() -> &'static str {
        static DB: OnceLock<()> = OnceLock::new();
        DB.get_or_init(|| {
            let loaded = value(
                "mysql",
                &format!(
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = '{CHINOOK}' AND table_name = 'Track'"
                ),
            ) == "1"
                && value(CHINOOK, "SELECT COUNT(*) FROM Track") == "3503";
            if !loaded {
                load_chinook(client);
            }
        });
        CHINOOK
    }

    const CHINOOK: &str = "plugboard_chinook";

    /// (Re)creates [`CHINOOK`] and loads the script into it.
    fn load_chinook(client: impl Fn(&str, &[&str]) -> String) {
        let script = std::fs::read_to_string(super::chinook().with_file_name("chinook_mysql.sql"))
            .expect("chinook_mysql.sql beside chinook.sqlite");
        // The script creates and switches to its own database `Chinook`; load it into ours.
        let body = script
            .replace("DROP DATABASE IF EXISTS `Chinook`;", "")
            .replace("CREATE DATABASE `Chinook`;", "")
            .replace("USE `Chinook`;", "");
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(
            file.path(),
            format!(
                "DROP DATABASE IF EXISTS {CHINOOK}; CREATE DATABASE {CHINOOK} \
                 CHARACTER SET utf8mb4; USE {CHINOOK};\n{body}"
            ),
        )
        .expect("write script");
        client(
            "mysql",
            &["-e", &format!("source {}", file.path().display())],
        );
    }

    /// A database for tests' own tables (each test uses table names of its own).
    pub fn scratch() -> &'static str {
        static DB: OnceLock<()> = OnceLock::new();
        const NAME: &str = "plugboard_scratch";
        DB.get_or_init(|| {
            exec(
                "mysql",
                &format!("CREATE DATABASE IF NOT EXISTS {NAME} CHARACTER SET utf8mb4"),
            );
        });
        NAME
    }

    /// The user with a password on a [`Server`]: `(user, password)`.
    pub const PASSWORD_USER: (&str, &str) = ("plugboard_pw", "right-password");

    /// This test binary's private server with TLS, started on first use: its certificate,
    /// signed by the returned CA folder's `ca.pem`, names `localhost` only (DNS, no IP), so
    /// that host-name checks can be seen to fail at 127.0.0.1. Also makes `client.pem` and
    /// `client.key`, and the user `plugboard_x509`, who must show a certificate.
    pub fn private_tls() -> &'static (Server, super::pg_tls::Certs) {
        static SERVER: OnceLock<(Server, super::pg_tls::Certs)> = OnceLock::new();
        SERVER.get_or_init(|| {
            let certs = super::pg_tls::Certs::new();
            let (cert, key) = certs.issue("server", "localhost", "DNS:localhost");
            certs.issue("client", "plugboard client", "");
            let server = Server::start(&[
                format!("--ssl-ca={}", certs.path("ca.pem").display()),
                format!("--ssl-cert={}", cert.display()),
                format!("--ssl-key={}", key.display()),
            ]);
            server.socket_client(&[
                "-e",
                "CREATE USER plugboard_x509@'%' REQUIRE X509; \
                 GRANT ALL ON *.* TO plugboard_x509@'%'",
            ]);
            (server, certs)
        })
    }

    /// A MariaDB server of the tests' own: a fresh data folder (`mariadb-install-db`) in a
    /// temporary folder, listening on 127.0.0.1 on a free port and on a socket inside the
    /// folder, with `root` (no password, any host) and [`PASSWORD_USER`].
    ///
    /// Dropping it kills the server and removes the folder; a watchdog process does the
    /// same when the test process ends without dropping it (see `pg::Server`).
    pub struct Server {
        root: PathBuf,
        port: u16,
        extra: Vec<String>,
        child: Option<Child>,
        watchdog: Option<(Child, ChildStdin)>,
    }

    impl Server {
        /// Creates and starts a server; `extra` are more `mariadbd` options (TLS files).
        pub fn start(extra: &[String]) -> Self {
            let started = Instant::now();
            let root = tempfile::Builder::new()
                .prefix("plugboard-my-")
                .tempdir()
                .expect("tempdir")
                .keep();
            let out = Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", root.join("data").display()))
                .args([
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--skip-name-resolve",
                ])
                .output()
                .expect("run mariadb-install-db");
            assert!(
                out.status.success(),
                "mariadb-install-db failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let mut server = Server {
                watchdog: Some(watchdog(&root)),
                root,
                port: 0,
                extra: extra.to_vec(),
                child: None,
            };
            for attempt in 1.. {
                server.port = free_port();
                match server.launch() {
                    Ok(()) => break,
                    Err(log) if attempt < 5 && log.contains("Address already in use") => {}
                    Err(log) => panic!("the private MariaDB did not start:\n{log}"),
                }
            }
            server.socket_client(&[
                "-e",
                &format!(
                    "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' \
                     WITH GRANT OPTION; CREATE USER '{0}'@'%' IDENTIFIED BY '{1}'; \
                     GRANT ALL ON *.* TO '{0}'@'%'; CREATE DATABASE test",
                    PASSWORD_USER.0, PASSWORD_USER.1
                ),
            ]);
            eprintln!(
                "private MariaDB on 127.0.0.1:{} in {}, started in {:?}",
                server.port,
                server.root.display(),
                started.elapsed()
            );
            server
        }

        pub fn port(&self) -> u16 {
            self.port
        }

        /// A URL for one of the server's databases, as `root`.
        pub fn url(&self, db: &str) -> String {
            format!("mysql://root@127.0.0.1:{}/{db}", self.port)
        }

        /// The `mariadb` client as `root` over the socket; panics on failure.
        pub fn socket_client(&self, args: &[&str]) -> String {
            let socket = self.socket().display().to_string();
            run_client(&["-S", &socket], "", args)
        }

        pub fn value(&self, sql: &str) -> String {
            self.socket_client(&["--batch", "--skip-column-names", "-e", sql])
                .trim_end_matches('\n')
                .to_owned()
        }

        fn socket(&self) -> PathBuf {
            self.root.join("sock")
        }

        /// The server's error log so far.
        pub fn log(&self) -> String {
            std::fs::read_to_string(self.root.join("log")).unwrap_or_default()
        }

        /// Starts `mariadbd` on `self.port` and waits until it answers.
        fn launch(&mut self) -> Result<(), String> {
            let before = self.log().len();
            let mut child = Command::new("mariadbd")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", self.root.join("data").display()))
                .arg(format!("--socket={}", self.socket().display()))
                .arg(format!("--pid-file={}", self.root.join("pid").display()))
                .arg(format!("--log-error={}", self.root.join("log").display()))
                .arg(format!("--port={}", self.port))
                .args([
                    "--bind-address=127.0.0.1",
                    "--user=root",
                    "--skip-name-resolve",
                    "--innodb-buffer-pool-size=16M",
                    "--innodb-log-file-size=8M",
                    "--skip-log-bin",
                    "--performance-schema=OFF",
                ])
                .args(&self.extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot run mariadbd: {e}"))?;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = self.log();
                    return Err(format!(
                        "mariadbd exited ({status}):\n{}",
                        log.get(before..).unwrap_or(&log)
                    ));
                }
                let ping = Command::new("mariadb-admin")
                    .arg("--no-defaults")
                    .arg(format!("--socket={}", self.socket().display()))
                    .args(["-u", "root", "ping"])
                    .output();
                if ping.is_ok_and(|o| o.status.success()) {
                    self.child = Some(child);
                    return Ok(());
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    return Err(format!(
                        "mariadbd did not answer within 60 s:\n{}",
                        self.log()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        /// Shuts the server down (`mariadb-admin shutdown`: sessions are ended), then
        /// starts it again on the same port.
        pub fn restart(&mut self) {
            self.socket_client(&["-e", "SHUTDOWN"]);
            if let Some(mut child) = self.child.take() {
                let _ = child.wait();
            }
            if let Err(log) = self.launch() {
                panic!("the private MariaDB did not start again:\n{log}");
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_dir_all(&self.root);
            if let Some((mut child, stdin)) = self.watchdog.take() {
                drop(stdin);
                let _ = child.wait();
            }
        }
    }

    /// Kills the server (by its pid file) and removes `root` once this process's end of its
    /// stdin closes, however this process ends.
    fn watchdog(root: &Path) -> (Child, ChildStdin) {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("sh")
            .args([
                "-c",
                r#"trap '' INT TERM HUP PIPE; cat >/dev/null; root=$1; [ -f "$root/pid" ] && kill -9 "$(cat "$root/pid")" 2>/dev/null; sleep 0.2; rm -rf "$root""#,
                "plugboard-my-watchdog",
            ])
            .arg(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the private server's watchdog");
        let stdin = child.stdin.take().expect("the watchdog's stdin");
        (child, stdin)
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port on 127.0.0.1")
    }
}

/// A private `redis-server` on a free 127.0.0.1 port, in a temporary folder, killed on drop.
/// (Never the machine's own server.)
pub mod redis_server {
    use std::io::{Read, Write};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    pub struct Server {
        pub port: u16,
        child: Option<Child>,
        dir: tempfile::TempDir,
        args: Vec<String>,
    }

    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }

    impl Server {
        /// Starts a server; `args` are extra `redis-server` options (`--requirepass x`).
        pub fn start(args: &[&str]) -> Self {
            let mut s = Self {
                port: free_port(),
                child: None,
                dir: tempfile::tempdir().expect("tempdir"),
                args: args.iter().map(|a| (*a).to_owned()).collect(),
            };
            s.restart();
            s
        }

        pub fn dir(&self) -> PathBuf {
            self.dir.path().to_path_buf()
        }

        /// A server that speaks only TLS, on its port, with the certificate `cert`
        /// (key `key`, chain `ca`); clients need no certificate of their own.
        pub fn start_tls(cert: &Path, key: &Path, ca: &Path, args: &[&str]) -> Self {
            let port = free_port();
            let mut all: Vec<String> = vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.to_string(),
                "--tls-cert-file".into(),
                cert.display().to_string(),
                "--tls-key-file".into(),
                key.display().to_string(),
                "--tls-ca-cert-file".into(),
                ca.display().to_string(),
                "--tls-auth-clients".into(),
                "no".into(),
            ];
            all.extend(args.iter().map(|a| (*a).to_owned()));
            let mut s = Self {
                port,
                child: None,
                dir: tempfile::tempdir().expect("tempdir"),
                args: all,
            };
            s.restart();
            s
        }

        /// Sends SIGKILL now (the server may be in the middle of answering).
        pub fn kill_now(&self) {
            if let Some(c) = &self.child {
                let _ = Command::new("kill")
                    .args(["-KILL", &c.id().to_string()])
                    .status();
            }
        }

        /// `redis://127.0.0.1:PORT/`
        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/", self.port)
        }

        /// (Re)starts the server on the same port, empty.
        pub fn restart(&mut self) {
            self.kill();
            let child = Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(self.dir.path())
                .args(&self.args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed");
            self.child = Some(child);
            let started = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "redis-server did not start"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        /// Kills the server (as a crash would).
        pub fn kill(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }

        /// Sends SIGSTOP / SIGCONT: a server that accepts connections and never answers.
        pub fn pause(&self, stop: bool) {
            if let Some(c) = &self.child {
                let _ = Command::new("kill")
                    .arg(if stop { "-STOP" } else { "-CONT" })
                    .arg(c.id().to_string())
                    .status();
            }
        }

        /// A client connection (with `password`, if the server wants one).
        pub fn client(&self, password: Option<&str>) -> redis::Connection {
            let url = match password {
                Some(p) => format!("redis://:{p}@127.0.0.1:{}/", self.port),
                None => self.url(),
            };
            redis::Client::open(url)
                .and_then(|c| c.get_connection())
                .expect("connect to the test redis")
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.pause(false);
            self.kill();
        }
    }

    /// A TCP relay in front of a server that runs `trip` once, when more than `after`
    /// bytes have come back from the server: a failure at an exact point of a reply.
    pub struct Relay {
        pub port: u16,
        /// Bytes relayed from the server so far.
        pub relayed: Arc<AtomicU64>,
    }

    impl Relay {
        pub fn start(to: u16, after: u64, trip: impl FnOnce() + Send + 'static) -> Self {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let relayed = Arc::new(AtomicU64::new(0));
            let trip = Arc::new(std::sync::Mutex::new(Some(
                Box::new(trip) as Box<dyn FnOnce() + Send>
            )));
            let count = Arc::clone(&relayed);
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { return };
                    let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", to)) else {
                        continue;
                    };
                    let (mut c_in, mut s_out) = (
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    );
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c_in, &mut s_out);
                        let _ = s_out.shutdown(std::net::Shutdown::Write);
                    });
                    let (mut s_in, mut c_out) = (server, client);
                    let count = Arc::clone(&count);
                    let trip = Arc::clone(&trip);
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 << 10];
                        loop {
                            let n = match s_in.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if c_out.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            let total = count.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                            if total > after {
                                let f = trip.lock().unwrap_or_else(|p| p.into_inner()).take();
                                if let Some(f) = f {
                                    f();
                                }
                            }
                        }
                        let _ = c_out.shutdown(std::net::Shutdown::Both);
                    });
                }
            });
            Self { port, relayed }
        }

        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/", self.port)
        }
    }
}

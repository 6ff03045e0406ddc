//! Helpers for the integration tests: find the real plugin libraries that `cargo test`
//! built, and lay out a throwaway project (plugins.toml + secrets.toml) around them.
//!
//! The plugin crates are dev-dependencies of this crate, which makes cargo build their
//! `cdylib`s into `target/<profile>/deps/` (without a hash in the name), next to the test
//! executables.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use plugboard::{Host, HostBuilder};

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
        let mut cmd = Command::new(bin);
        cmd.current_dir(self.dir.path())
            // Through the environment, so a test can still pass --plugins/--secrets.
            .env("PLUGBOARD_PLUGINS", "plugins.toml")
            .env("PLUGBOARD_SECRETS", "secrets.toml")
            .env_remove("PLUGBOARD_LOG")
            .env_remove("PLUGBOARD_CACHE_MAX_BYTES")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("PLUGBOARD_CACHE_DIR", self.cache_dir())
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run(cmd.output().expect("run the CLI"))
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

    /// Asserts a failure with exit code 1 (not a signal) and a one-line `error:`; returns it.
    pub fn fails(&self) -> String {
        assert_eq!(
            self.0.status.code(),
            Some(1),
            "expected exit 1, got {:?}\nstdout: {}\nstderr: {}",
            self.0.status,
            self.stdout(),
            self.stderr()
        );
        let err = self.stderr();
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
        lines[0].to_owned()
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

/// The PostgreSQL server on 127.0.0.1:5432 (trust auth, user `postgres`), driven with `psql`.
pub mod pg {
    use std::process::Command;
    use std::sync::OnceLock;

    /// A URL for one of the server's databases, as the `postgres` superuser.
    pub fn url(db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:5432/{db}")
    }

    /// Runs `psql` with `args` against `db`; returns its standard output, panics on failure.
    pub fn psql(db: &str, args: &[&str]) -> String {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-d", db])
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

    /// The database holding Chinook, loaded once from `../shared/data/chinook/`.
    pub fn chinook() -> &'static str {
        static DB: OnceLock<()> = OnceLock::new();
        const NAME: &str = "plugboard_chinook";
        DB.get_or_init(|| {
            let loaded = value(
                "postgres",
                &format!("SELECT count(*) FROM pg_database WHERE datname = '{NAME}'"),
            ) == "1"
                && value(NAME, "SELECT to_regclass('public.track') IS NOT NULL") == "t"
                && value(NAME, "SELECT count(*) FROM track") == "3503";
            if loaded {
                return;
            }
            psql(
                "postgres",
                &[
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {NAME} WITH (FORCE)"),
                ],
            );
            psql("postgres", &["-c", &format!("CREATE DATABASE {NAME}")]);
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
            psql(NAME, &["-f", &file.path().display().to_string()]);
        });
        NAME
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

    /// A role that must log in with a password (`scram-sha-256` over TCP), for the tests of
    /// authentication: the server trusts everyone else. Adds its `pg_hba.conf` lines once.
    pub fn password_role() -> (&'static str, &'static str) {
        static ROLE: OnceLock<()> = OnceLock::new();
        const USER: &str = "plugboard_pw";
        const PASSWORD: &str = "right-password";
        ROLE.get_or_init(|| {
            psql(
                "postgres",
                &[
                    "-c",
                    &format!(
                        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{USER}') \
                         THEN CREATE ROLE {USER} LOGIN; END IF; END $$; \
                         SET password_encryption = 'scram-sha-256'; \
                         ALTER ROLE {USER} PASSWORD '{PASSWORD}'"
                    ),
                ],
            );
            let hba = value("postgres", "SHOW hba_file");
            let text = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
            let lines = format!(
                "host all {USER} 127.0.0.1/32 scram-sha-256\nhost all {USER} ::1/128 scram-sha-256\n"
            );
            if !text.contains(&lines) {
                std::fs::write(&hba, format!("{lines}{text}")).expect("write pg_hba.conf");
                value("postgres", "SELECT pg_reload_conf()");
                // The postmaster rereads the file asynchronously.
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
        });
        (USER, PASSWORD)
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

/// Real servers on 127.0.0.1 for the files connector: Python's `http.server`, and moto's S3
/// server from PyPI in a virtual environment of the tests' own (created on first use).
pub mod servers {
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// moto, pinned: the version the tests were written against.
    const MOTO: &str = "moto[server]==5.2.5";

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

    /// The tests' Python environment with moto, made once per target folder.
    fn venv() -> &'static Path {
        static VENV: OnceLock<PathBuf> = OnceLock::new();
        VENV.get_or_init(|| {
            let dir = std::env::var_os("PLUGBOARD_TEST_VENV")
                .map(PathBuf::from)
                .unwrap_or_else(|| super::deps_dir().join("../../test-venv"));
            let marker = dir.join(format!(".installed-{}", MOTO.replace(['[', ']', '='], "_")));
            if !marker.exists() {
                let run = |cmd: &mut Command| {
                    let out = cmd.output().expect("run python3");
                    assert!(
                        out.status.success(),
                        "{cmd:?} failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                };
                run(Command::new("python3").args(["-m", "venv"]).arg(&dir));
                run(Command::new(dir.join("bin/pip")).args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    MOTO,
                ]));
                std::fs::write(&marker, "").expect("write the venv marker");
            }
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
}

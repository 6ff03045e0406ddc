//! `plugboard shell` in a real pseudo-terminal: tmux runs it, the tests type keys (Tab,
//! Enter, Ctrl-C, Ctrl-D) and read the screen. Scripts (`-c`, piped input) run as plain
//! processes.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use plugboard_tests::{Project, chinook, cli};

const BIN: &str = env!("CARGO_BIN_EXE_plugboard-under-test");

fn project() -> Project {
    let p = Project::new(&["plugboard_sqlite", "fixture_echo"], "");
    p.write(
        "secrets.toml",
        &format!(
            "[connections.chinook]\ntype = \"sql\"\nurl = \"sqlite:///{}?mode=ro\"\n\n\
             [connections.pets]\ntype = \"sqlite\"\ndatabase = {:?}\n\n\
             [connections.echo]\ntype = \"echo\"\ntoken = \"tok-SHELL-secret\"\nhost = \"file\"\n",
            chinook().display(),
            p.path("pets.db").display().to_string()
        ),
    );
    p
}

/// A tmux server of its own, with one window running the shell.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `plugboard ARGS` in the project, in a 120×50 terminal.
    fn start(p: &Project, args: &[&str]) -> Self {
        Self::start_with(p, args, &[("PLUGBOARD_HISTORY", "history")])
    }

    /// As [`Tmux::start`], with these environment variables.
    fn start_with(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "plugboard-shell-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        // The project's environment, through `env`: tmux starts the command in its own.
        let cmd = p.command(BIN, args, env);
        let mut env_args: Vec<String> = vec!["-i".into()];
        for var in ["PATH", "LANG", "LC_ALL", "RUST_BACKTRACE"] {
            if let Ok(v) = std::env::var(var) {
                env_args.push(format!("{var}={v}"));
            }
        }
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                env_args.push(format!("{}={}", k.to_string_lossy(), v.to_string_lossy()));
            }
        }
        env_args.push("TERM=xterm-256color".into());
        let dir = cmd.get_current_dir().expect("a project dir").to_path_buf();
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
            ])
            .args(["-x", "120", "-y", "50", "-c"])
            .arg(&dir)
            .arg("env")
            .args(&env_args)
            // The exit status, printed when the shell ends (the window stays open).
            .args([
                "sh",
                "-c",
                "trap : INT; \"$0\" \"$@\"; echo \"[exit $?]\"; sleep 600",
            ])
            .arg(BIN)
            .args(args)
            .stdin(Stdio::null())
            .status()
            .expect("run tmux (the shell tests need it: apt-get install tmux)");
        assert!(status.success(), "tmux new-session failed");
        Self { socket }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally (tmux would take a `;` at the end of an argument for its
    /// own separator, so it is escaped).
    fn type_text(&self, text: &str) {
        let escaped = text.replace(';', "\\;");
        self.tmux(&["send-keys", "-t", "t", "-l", &escaped]);
    }

    /// The CPU time (user and system, in clock ticks) the shell's process has used: the
    /// child of the pane's `sh`.
    fn cpu_ticks(&self) -> u64 {
        let pane = self.tmux(&["list-panes", "-t", "t", "-F", "#{pane_pid}"]);
        let pane = pane.trim();
        let children = std::fs::read_to_string(format!("/proc/{pane}/task/{pane}/children"))
            .expect("the pane's children");
        let pid = children
            .split_whitespace()
            .next()
            .expect("the shell's process");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("its stat");
        // The fields after the command's name (in parentheses): state is the first,
        // utime and stime the 12th and 13th.
        let fields: Vec<u64> = stat[stat.rfind(')').expect("a stat line") + 2..]
            .split(' ')
            .skip(11)
            .take(2)
            .map(|f| f.parse().expect("a tick count"))
            .collect();
        fields.iter().sum()
    }

    /// Presses keys by tmux's names: `Enter`, `Tab`, `C-c`, `C-d`, `Up`.
    fn press(&self, key: &str) {
        self.tmux(&["send-keys", "-t", "t", key]);
    }

    /// Waits until the shell is at its prompt (the screen ends with `NAME>`), as a user
    /// does before typing: keys typed while a statement runs reach the terminal before
    /// the line editor takes it over.
    fn wait_prompt(&self) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            let last = screen
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            let last = last.trim_end();
            if let Some(name) = last.strip_suffix('>')
                && !name.is_empty()
                && name.chars().all(|c| c.is_alphanumeric() || c == '_')
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no prompt:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// At the prompt, types a line and presses Enter.
    fn line(&self, text: &str) {
        self.wait_prompt();
        self.type_text(text);
        self.press("Enter");
    }

    /// At the prompt, presses `key`.
    fn at_prompt(&self, key: &str) {
        self.wait_prompt();
        self.press(key);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-200", "-t", "t"])
    }

    /// Waits until the screen holds `text` (10 s at most) and returns it.
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the screen never showed {text:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen holds `text` `n` times.
    fn wait_count(&self, text: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= n {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the screen never showed {text:?} {n} times:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the `n`-th prompt of `name`.
    fn prompt(&self, name: &str, n: usize) -> String {
        let prompt = format!("{name}> ");
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.matches(&prompt).count() >= n {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "prompt {n} never came:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status once the shell has ended (`None` while it runs).
    fn exit_status(&self) -> Option<i32> {
        let screen = self.screen();
        let at = screen.rfind("[exit ")?;
        screen[at + 6..].split(']').next()?.parse().ok()
    }

    fn wait_exit(&self) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exit_status() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the shell did not end:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn a_new_user_finds_the_tables_describes_one_and_runs_a_join_with_completion() {
    let p = project();
    let t = Tmux::start(&p, &["chinook"]);
    t.wait_for("connected to \"chinook\" (sqlite");
    t.prompt("chinook", 1);

    // Dot-commands complete, and so do table names after them.
    t.type_text(".tab");
    t.press("Tab");
    t.press("Enter");
    let screen = t.wait_for("PlaylistTrack");
    assert!(screen.contains("chinook> .tables"), "{screen}");
    assert!(screen.contains("11 rows × 2 columns"), "{screen}");
    t.prompt("chinook", 2);
    t.type_text(".schema Tra");
    t.press("Tab");
    t.press("Enter");
    let screen = t.wait_for("Milliseconds");
    assert!(screen.contains("chinook> .schema Track"), "{screen}");
    assert!(screen.contains("NVARCHAR(200)"), "{screen}");
    t.prompt("chinook", 3);

    // A join over two lines: the first Enter only starts a new line; table and column
    // names complete from the catalog.
    t.type_text("SELECT t.Name, a.Title FROM Track t JOIN Alb");
    t.press("Tab");
    t.type_text(" a ON a.AlbumId = t.AlbumId");
    t.press("Enter");
    t.type_text("WHERE t.Milli");
    t.press("Tab");
    t.type_text(" > 300000 ORDER BY t.Name LIMIT 3;");
    t.press("Enter");
    let screen = t.wait_for("3 rows × 2 columns");
    assert!(
        screen.contains("FROM Track t JOIN Album a ON a.AlbumId = t.AlbumId"),
        "{screen}"
    );
    assert!(screen.contains("WHERE t.Milliseconds > 300000"), "{screen}");
    assert!(screen.contains("│ Name "), "{screen}");
    t.prompt("chinook", 4);

    // Ctrl-D leaves, exit 0, and the history holds what was typed.
    t.at_prompt("C-d");
    assert_eq!(t.wait_exit(), 0);
    let history = std::fs::read_to_string(p.path("history")).expect("history");
    assert!(history.contains(".tables"), "{history}");
    assert!(history.contains("JOIN Album a"), "{history}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p.path("history"))
        .expect("history")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the history is its owner's only");

    // A new shell finds it: Up brings the last statement back.
    let t = Tmux::start(&p, &["shell", "chinook"]);
    t.prompt("chinook", 1);
    t.press("Up");
    t.wait_for("ORDER BY t.Name LIMIT 3;");
}

#[test]
fn ctrl_c_cancels_the_running_statement_and_the_shell_goes_on() {
    let p = project();
    let t = Tmux::start(&p, &["chinook"]);
    t.prompt("chinook", 1);
    // Ctrl-C while typing drops the line.
    t.type_text("SELECT 'dropped'");
    t.press("C-c");
    t.prompt("chinook", 2);
    t.line(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) \
         SELECT count(*) AS n FROM c;",
    );
    std::thread::sleep(Duration::from_millis(700));
    let ticks = |over: Duration| {
        let before = t.cpu_ticks();
        std::thread::sleep(over);
        t.cpu_ticks() - before
    };
    let busy = ticks(Duration::from_millis(500));
    assert!(busy >= 20, "the statement runs: {busy} ticks in 0.5 s");
    let started = Instant::now();
    t.press("C-c");
    let screen = t.wait_for("cancelled");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cancelling took {:?}",
        started.elapsed()
    );
    // Stopped in SQLite itself (sqlite3_interrupt), not left running on a thread.
    assert!(!screen.contains("runs on"), "{screen}");
    t.prompt("chinook", 3);
    let idle = ticks(Duration::from_secs(1));
    assert!(
        idle < 30,
        "the cancelled statement still runs: {idle} ticks in 1 s"
    );
    t.line("SELECT 7 * 6 AS answer;");
    let screen = t.wait_for("1 row × 1 column");
    assert!(screen.contains("42"), "{screen}");
    assert!(!screen.contains("dropped │"), "{screen}");
    assert_eq!(t.exit_status(), None, "the shell is still running");
    t.line(".quit");
    assert_eq!(t.wait_exit(), 0);
}

/// PostgreSQL runs a query on after its client stops waiting: the shell's Ctrl-C sends
/// the server a cancel request, and the same connection serves the next statement.
#[test]
fn ctrl_c_cancels_a_postgresql_statement_at_the_server() {
    let p = Project::new(
        &["plugboard_postgres"],
        &format!(
            "[connections.pg]\nurl = \"{}\"\n",
            plugboard_tests::pg::url(plugboard_tests::pg::scratch())
        ),
    );
    let t = Tmux::start(&p, &["pg"]);
    t.prompt("pg", 1);
    let mark = plugboard_tests::marker("shell");
    t.line(&format!("SELECT pg_sleep(60)::text AS slept /* {mark} */;"));
    let running = || plugboard_tests::pg::running(&mark);
    plugboard_tests::until_running(running);
    t.press("C-c");
    let screen = t.wait_for("cancelled");
    assert!(!screen.contains("runs on"), "{screen}");
    assert!(
        plugboard_tests::until_stopped(running).is_some(),
        "the server still runs the statement"
    );
    t.prompt("pg", 2);
    t.line("SELECT 5 AS five;");
    let screen = t.wait_for("1 row × 1 column");
    assert!(!screen.contains("error"), "{screen}");
    t.line(".quit");
    assert_eq!(t.wait_exit(), 0);
}

#[test]
fn ctrl_c_stops_an_isolated_plugin_at_its_source_and_the_next_statement_reconnects() {
    let p = project();
    p.write(
        "plugins.toml",
        &format!(
            "[[plugin]]\npath = {:?}\nisolation = \"process\"\n",
            plugboard_tests::lib("plugboard_sqlite")
                .display()
                .to_string()
        ),
    );
    let t = Tmux::start(&p, &["chinook"]);
    t.line(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) \
         SELECT count(*) AS n FROM c;",
    );
    std::thread::sleep(Duration::from_millis(700));
    t.press("C-c");
    let screen = t.wait_for("cancelled");
    assert!(!screen.contains("error:"), "{screen}");
    t.line("SELECT 5 AS five;");
    let screen = t.wait_for("1 row × 1 column");
    // The prompt is whole: nothing drew over it.
    assert!(screen.contains("chinook> SELECT 5 AS five;"), "{screen}");
    t.line(".quit");
    assert_eq!(t.wait_exit(), 0);
}

#[test]
fn dot_commands_do_what_sqlite3_users_expect() {
    let p = project();
    p.write(
        "report.sql",
        "-- a report\n.mode csv\nSELECT Name FROM Genre WHERE GenreId = 1;\n",
    );
    let t = Tmux::start(&p, &["chinook"]);
    t.prompt("chinook", 1);

    t.line(".help");
    let screen = t.wait_for("Ctrl-C cancels a running statement");
    for command in [
        ".tables", ".schema", ".use", ".mode", ".output", ".timer", ".ttl", ".param",
    ] {
        assert!(screen.contains(command), "{command}: {screen}");
    }

    t.line(".mode csv");
    t.line("SELECT ArtistId, Name FROM Artist WHERE ArtistId = 1;");
    t.wait_for("1,AC/DC");

    t.line(".param set id 3");
    t.line(".param list");
    t.wait_for(":id = 3");
    t.line("SELECT Name FROM Artist WHERE ArtistId = :id;");
    t.wait_for("\nAerosmith");

    // The timer says where the result came from: a re-run is a memory hit.
    t.line(".timer on");
    t.line("SELECT count(*) AS n FROM Track;");
    t.wait_for("(miss)");
    t.line("SELECT count(*) AS n FROM Track;");
    t.wait_for("(memory hit)");
    t.line(".refresh");
    t.line("SELECT count(*) AS n FROM Track;");
    let screen = t.wait_count("(miss)", 2);
    assert_eq!(screen.matches("(memory hit)").count(), 1, "{screen}");
    t.line(".ttl 10m");
    t.line(".timer off");

    let out = p.path("out.csv");
    t.line(&format!(".output {}", out.display()));
    t.line("SELECT 'to the file' AS where_;");
    t.line(".output");
    t.line("SELECT 'to the screen' AS where_;");
    t.wait_for("to the screen");
    let written = std::fs::read_to_string(&out).expect("out.csv");
    assert_eq!(written, "where_\nto the file\n");
    assert!(
        !t.screen().lines().any(|l| l.trim() == "to the file"),
        "{}",
        t.screen()
    );

    t.line(".read report.sql");
    t.wait_for("\nRock");

    t.line(".mode table");
    t.line(".maxrows 4");
    t.line("SELECT TrackId FROM Track;");
    t.wait_for("3503 rows (4 shown)");

    t.line(".describe Genre");
    t.wait_for("NVARCHAR(120)");
    t.line(".maxwidth 40");
    t.line("SELECT * FROM Track WHERE TrackId = 1;");
    let screen = t.wait_for("1 row × 9 columns (");
    let grid: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("WHERE TrackId = 1;"))
        .skip(1)
        .take_while(|l| l.starts_with(['┌', '│', '╞', '└']))
        .collect();
    assert!(!grid.is_empty(), "{screen}");
    for line in &grid {
        assert!(
            line.chars().count() <= 40,
            "{line:?} is wider than .maxwidth 40"
        );
    }
    assert!(grid.iter().any(|l| l.contains('…')), "{screen}");
    t.line(".maxwidth 0");

    t.line(".connections");
    let screen = t.wait_for("* chinook");
    assert!(screen.contains("  pets"), "{screen}");

    // Bad input: one line each, and the shell goes on.
    t.line(".frobnicate");
    t.wait_for("error: unknown command .frobnicate (.help lists them)");
    t.line(".tabels");
    t.wait_for("did you mean .tables?");
    t.line(".schema Trak");
    t.wait_for("no table or view named \"Trak\"; did you mean \"Track\"?");
    t.line(".use nowhere");
    t.wait_for("unknown connection \"nowhere\"");
    t.line("SELEC 1;");
    t.wait_for("query error");
    t.line(".use echo");
    t.prompt("echo", 1);
    t.line(".tables");
    t.wait_for("this connector cannot list its tables");
    assert!(!t.screen().contains("tok-SHELL-secret"));

    // .use switches, and writes go to execute.
    t.line(".use pets");
    t.prompt("pets", 1);
    t.line("CREATE TABLE owners (name TEXT, pet TEXT);");
    t.wait_for("0 rows affected");
    t.line("INSERT INTO owners VALUES ('kim', 'cat');");
    t.wait_for("1 row affected");
    t.line("SELECT pet FROM owners;");
    t.wait_for("│ cat");
    t.line(".tables");
    t.wait_for("owners");
    t.line("BEGIN;");
    t.wait_for("each statement runs in a transaction of its own");
    t.line(".exit");
    assert_eq!(t.wait_exit(), 0);
}

#[test]
fn scripts_run_without_a_prompt_and_stop_at_the_first_error() {
    let p = project();
    let out = cli!(
        p,
        [
            "chinook",
            "-c",
            ".mode csv\nSELECT Name FROM Genre WHERE GenreId < 3;\n.tables Pl*"
        ]
    )
    .ok();
    assert_eq!(
        out,
        "Name\nRock\nJazz\nschema,name,kind\n,Playlist,table\n,PlaylistTrack,table\n"
    );

    // Standard input is a script when it is not a terminal; the last statement may lack
    // its `;`.
    let mut child = p
        .command(BIN, &["shell", "chinook"], &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"SELECT 1 AS a;\nSELECT 2 AS b")
            .expect("write");
    }
    let done = child.wait_with_output().expect("wait");
    assert!(done.status.success(), "{done:?}");
    assert_eq!(String::from_utf8_lossy(&done.stdout), "a\n1\nb\n2\n");
    assert!(
        !String::from_utf8_lossy(&done.stderr).contains("connected to"),
        "no banner in a script"
    );

    let err = cli!(
        p,
        [
            "chinook",
            "-c",
            "SELECT 1;\nSELECT nope FROM Track;\nSELECT 3;"
        ]
    )
    .fails_with(4);
    assert!(
        err.starts_with("error: in -c: connection \"chinook\""),
        "{err}"
    );
    let run = cli!(
        p,
        ["chinook", "-c", "SELECT 1 AS one;\n.nonsense\nSELECT 3;"]
    );
    assert_eq!(run.stdout(), "one\n1\n", "stops before the third");
    let err = run.fails_with(1);
    assert_eq!(
        err,
        "error: in -c: unknown command .nonsense (.help lists them)"
    );

    // `.read` of a file that reads itself stops, and says why.
    p.write("loop.sql", ".read loop.sql\n");
    let err = cli!(p, ["chinook", "-c", ".read loop.sql"]).fails();
    assert!(err.contains("more than 16 deep"), "{err}");
    let err = cli!(p, ["chinook", "-c", ".read missing.sql"]).fails();
    assert!(err.contains("cannot read missing.sql"), "{err}");

    // An unknown connection is a connection error before any prompt.
    let err = cli!(p, ["shell", "nowhere"]).fails_with(3);
    assert!(err.contains("unknown connection \"nowhere\""), "{err}");
    let err = cli!(p, ["nowhere"]).fails_with(3);
    assert!(err.contains("unknown connection \"nowhere\""), "{err}");
}

#[test]
fn ttl_keeps_a_result_on_disk_for_the_next_shell() {
    let p = project();
    let first = cli!(
        p,
        ["chinook", "-c", ".ttl 10m\n.timer on\nSELECT 'kept' AS k;"]
    );
    assert_eq!(first.ok(), "k\nkept\n");
    assert!(first.stderr().contains("(miss)"), "{}", first.stderr());
    let second = cli!(
        p,
        ["chinook", "-c", ".ttl 10m\n.timer on\nSELECT 'kept' AS k;"]
    );
    assert_eq!(second.ok(), "k\nkept\n");
    assert!(
        second.stderr().contains("(disk hit)"),
        "{}",
        second.stderr()
    );
    // --ttl sets it from the start.
    let third = cli!(
        p,
        [
            "shell",
            "chinook",
            "--ttl",
            "10m",
            "-c",
            ".timer on\nSELECT 'kept' AS k;"
        ]
    );
    assert!(third.stderr().contains("(disk hit)"), "{}", third.stderr());
    // Without a TTL nothing is kept between processes.
    let fourth = cli!(p, ["chinook", "-c", ".timer on\nSELECT 'kept' AS k;"]);
    assert!(fourth.stderr().contains("(miss)"), "{}", fourth.stderr());
}

#[test]
fn without_plugboard_history_the_history_goes_to_the_state_folder() {
    let p = project();
    let state = p.path("state");
    let state_var = state.display().to_string();
    // Scripts leave no history.
    let out =
        cli!(p, ["chinook", "-c", "SELECT 1 AS a;"], env = ["XDG_STATE_HOME" => &state_var]).ok();
    assert_eq!(out, "a\n1\n");
    assert!(!state.join("plugboard/history").exists());

    let t = Tmux::start_with(&p, &["chinook"], &[("XDG_STATE_HOME", &state_var)]);
    t.prompt("chinook", 1);
    t.line("SELECT 'kept' AS k;");
    t.wait_for("1 row × 1 column");
    t.at_prompt("C-d");
    assert_eq!(t.wait_exit(), 0);
    let history = std::fs::read_to_string(state.join("plugboard/history")).expect("history");
    assert!(history.contains("SELECT 'kept' AS k;"), "{history}");
}

//! `plugboard shell CONN` (and `plugboard CONN`): an interactive SQL shell.
//!
//! A line editor (rustyline) with history in a file, statements ended by `;` over as
//! many lines as they take, Tab completion from the connection's own catalog, and the
//! dot-commands of `sqlite3` and the `duckdb` CLI ([`dot`]). Every read goes through the
//! host's cache, memory tier included (a shell's results are whole frames, as in
//! Streamlit), so running a query again is a memory hit. Ctrl-C cancels the running
//! statement and the shell goes on; Ctrl-D leaves.
//!
//! Without a terminal (`plugboard shell db < script.sql`, or `-c TEXT`) the input runs as
//! a script: no prompt, and the first error stops it with that error's exit code.

mod complete;
mod dot;
mod split;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use plugboard_api::{Params, Value};
use polars::prelude::DataFrame;

use self::complete::{Known, ShellHelper};
use self::dot::Dot;
use self::split::Piece;
use super::ShellArgs;
use super::interrupt;
use super::params::connect;
use super::progress::Progress;
use crate::export::{self as output, Format, TableLayout};
use crate::{Connection, Host, Outcome};

/// Where the history is kept unless `$PLUGBOARD_HISTORY` says.
pub const HISTORY_ENV: &str = "PLUGBOARD_HISTORY";
/// How deep `.read` may nest (a file that reads itself stops here).
const MAX_READ_DEPTH: usize = 16;

/// Whether `shell` was implied (`plugboard CONN`) rather than typed.
pub(super) static IMPLIED: AtomicBool = AtomicBool::new(false);

pub(super) fn run(host: &Host, args: &ShellArgs, quiet: bool) -> anyhow::Result<()> {
    let conn = match connect(host, &args.conn) {
        Ok(conn) => conn,
        Err(e) => return Err(misspelt_command(&args.conn.connection, e)),
    };
    let ttl = args
        .ttl
        .as_deref()
        .map(crate::duration::parse)
        .transpose()
        .map_err(|e| super::exit::usage(anyhow::anyhow!("--ttl: {e}")))?;
    let interactive = args.command.is_none() && std::io::stdin().is_terminal();
    let mut shell = Shell::new(host, args.conn.connection.clone(), conn, ttl, quiet);
    if let Some(text) = &args.command {
        return shell.script(text, "-c").map(drop);
    }
    if !interactive {
        let text = super::commands::read_text(None, "", "")?;
        return shell.script(&text, "standard input").map(drop);
    }
    let result = shell.interactive();
    if shell.abandoned {
        // A cancelled read may still be running at the source (a driver that cannot be
        // interrupted), holding its connection: closing the host would wait for it.
        // Nothing is being written (writes are never cancelled), so leave now.
        let _ = std::io::stdout().flush();
        std::process::exit(i32::from(result.is_err()));
    }
    result
}

/// `plugboard qurey`: no connection has that name, and a command nearly does. A usage
/// error naming the command, rather than an unknown connection.
fn misspelt_command(word: &str, e: anyhow::Error) -> anyhow::Error {
    use clap::CommandFactory;
    let unknown = matches!(
        e.downcast_ref::<crate::Error>(),
        Some(crate::Error::UnknownConnection { .. })
    );
    if !unknown || !IMPLIED.load(Ordering::Relaxed) {
        return e;
    }
    let command = super::Cli::command();
    let names: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    match crate::util::closest(word, names.iter().map(String::as_str)) {
        Some(near) => super::exit::usage(anyhow::anyhow!(
            "{word:?} is neither a command nor a connection; did you mean the command {near}?"
        )),
        None => e,
    }
}

/// What a piece of input asks of the loop.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Continue,
    Quit,
}

/// The shell's settings and connection.
struct Shell<'h> {
    host: &'h Host,
    name: String,
    conn: Connection,
    mode: Format,
    layout: TableLayout,
    /// `.output FILE`: results are appended there.
    output: Option<(PathBuf, Arc<Mutex<std::fs::File>>)>,
    timer: bool,
    ttl: Option<Duration>,
    refresh_next: bool,
    refresh_always: bool,
    params: Params,
    known: Arc<Mutex<Known>>,
    quiet: bool,
    /// How deep in `.read` files the shell is.
    depth: usize,
    /// Whether a cancelled read was left running.
    abandoned: bool,
}

impl<'h> Shell<'h> {
    fn new(
        host: &'h Host,
        name: String,
        conn: Connection,
        ttl: Option<Duration>,
        quiet: bool,
    ) -> Self {
        let mut known = Known::default();
        known.connections = host.connection_names();
        known.switch(conn.clone());
        let to_terminal = std::io::stdout().is_terminal();
        Self {
            host,
            name,
            conn,
            mode: if to_terminal {
                Format::Table
            } else {
                Format::Csv
            },
            layout: TableLayout::for_stdout(),
            output: None,
            timer: false,
            ttl,
            refresh_next: false,
            refresh_always: false,
            params: Params::new(),
            known: Arc::new(Mutex::new(known)),
            quiet,
            depth: 0,
            abandoned: false,
        }
    }

    /// The prompt loop.
    fn interactive(&mut self) -> anyhow::Result<()> {
        use rustyline::error::ReadlineError;
        let config = rustyline::Config::builder()
            .auto_add_history(false)
            .history_ignore_space(true)
            .max_history_size(10_000)
            .context("the shell's history size")?
            .completion_type(rustyline::CompletionType::List)
            .build();
        let mut editor: rustyline::Editor<ShellHelper, rustyline::history::DefaultHistory> =
            rustyline::Editor::with_config(config).context("cannot start the line editor")?;
        editor.set_helper(Some(ShellHelper::new(Arc::clone(&self.known))));
        let history = history_path();
        if let Some(path) = &history
            && path.exists()
            && let Err(e) = editor.load_history(path)
        {
            eprintln!(
                "warning: cannot read the history in {}: {e}",
                path.display()
            );
        }
        eprintln!(
            "plugboard {}: connected to {:?} ({} {}). End statements with ; — .help for more, Ctrl-D to leave.",
            env!("CARGO_PKG_VERSION"),
            self.name,
            self.conn.plugin(),
            self.conn.plugin_version(),
        );
        interrupt::cancel_instead_of_exit(true);
        loop {
            let prompt = format!("{}> ", self.name);
            match editor.readline(&prompt) {
                Ok(text) => {
                    if text.trim().is_empty() {
                        continue;
                    }
                    let _ = editor.add_history_entry(text.trim());
                    if let Some(path) = &history {
                        save_history(&mut editor, path);
                    }
                    match self.pieces(&text) {
                        Ok(Next::Quit) => break,
                        Ok(Next::Continue) => {}
                        Err(e) => eprintln!("error: {}", crate::error::one_line(&format!("{e:#}"))),
                    }
                }
                // Ctrl-C at the prompt drops the line, as in sqlite3 and psql.
                Err(ReadlineError::Interrupted) => {}
                Err(ReadlineError::Eof) => break,
                Err(e) => bail!("the line editor failed: {e}"),
            }
        }
        interrupt::cancel_instead_of_exit(false);
        Ok(())
    }

    /// Runs `text` as a script (`-c`, piped input, `.read`): stops at the first error.
    fn script(&mut self, text: &str, from: &str) -> anyhow::Result<Next> {
        self.pieces(text).with_context(|| format!("in {from}"))
    }

    /// Runs every piece of `text`; the last statement may lack its `;`.
    fn pieces(&mut self, text: &str) -> anyhow::Result<Next> {
        let (mut pieces, rest) = split::split(text);
        if !rest.is_empty() {
            pieces.push(Piece::Sql(rest));
        }
        for piece in pieces {
            let next = match piece {
                Piece::Dot(line) => self.dot(&line)?,
                Piece::Sql(sql) => {
                    self.statement(&sql)?;
                    Next::Continue
                }
            };
            if next == Next::Quit {
                return Ok(Next::Quit);
            }
        }
        Ok(Next::Continue)
    }

    fn dot(&mut self, line: &str) -> anyhow::Result<Next> {
        match dot::parse(line)? {
            Dot::Tables(pattern) => {
                let conn = self.conn.clone();
                let read = self.cached(conn.tables());
                let (df, _) = read.fetch_shared()?;
                let df = match pattern {
                    Some(p) => crate::client::catalog::matching(&df, &p)?,
                    None => df.as_ref().clone(),
                };
                let df = match self.mode {
                    Format::Table => crate::client::catalog::for_display(df),
                    _ => df,
                };
                self.write_frame(&df)?;
            }
            Dot::Describe(table) => {
                let conn = self.conn.clone();
                let read = self.cached(conn.describe(&table));
                let (df, _) = read
                    .fetch_shared()
                    .map_err(|e| crate::client::catalog::with_suggestion(&self.conn, &table, e))?;
                self.write_frame(&df)?;
            }
            Dot::Connections => {
                for name in self.host.connection_names() {
                    let mark = if name == self.name { "*" } else { " " };
                    self.write_text(&format!("{mark} {name}\n"))?;
                }
            }
            Dot::Use(name) => {
                let conn = self.host.connection(&name)?;
                self.known
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .switch(conn.clone());
                self.conn = conn;
                self.name = name;
            }
            Dot::Mode(format) => self.mode = format,
            Dot::Output(None) => self.output = None,
            Dot::Output(Some(path)) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("cannot open {} for .output", path.display()))?;
                self.output = Some((path, Arc::new(Mutex::new(file))));
            }
            Dot::Timer(on) => self.timer = on,
            Dot::Ttl(ttl) => self.ttl = ttl,
            Dot::Refresh(None) => self.refresh_next = true,
            Dot::Refresh(Some(on)) => self.refresh_always = on,
            Dot::ParamSet(name, value) => {
                self.params.insert(name, value);
            }
            Dot::ParamUnset(name) => {
                if self.params.remove(&name).is_none() {
                    bail!("no parameter :{name} is set; .param list shows them");
                }
            }
            Dot::ParamList => {
                let mut text = String::new();
                for (name, value) in &self.params {
                    text.push_str(&format!(":{name} = {value:?}\n"));
                }
                if text.is_empty() {
                    text.push_str("no parameters; set one with .param set NAME VALUE\n");
                }
                self.write_text(&text)?;
            }
            Dot::ParamClear => self.params.clear(),
            Dot::MaxRows(n) => self.layout.max_rows = n,
            Dot::MaxWidth(n) => self.layout.max_width = n,
            Dot::Read(path) => return self.read_file(&path),
            Dot::Help => self.write_text(&format!("{}\n", dot::help()))?,
            Dot::Quit => return Ok(Next::Quit),
        }
        Ok(Next::Continue)
    }

    fn read_file(&mut self, path: &Path) -> anyhow::Result<Next> {
        if self.depth >= MAX_READ_DEPTH {
            bail!(
                ".read {}: files read each other more than {MAX_READ_DEPTH} deep",
                path.display()
            );
        }
        let text = super::commands::read_text(Some(path), "", "")?;
        self.depth += 1;
        let next = self.script(&text, &path.display().to_string());
        self.depth -= 1;
        next
    }

    /// The shell's TTL and refresh applied to a read.
    fn cached<'c>(&mut self, read: crate::Read<'c>) -> crate::Read<'c> {
        let read = match self.ttl {
            Some(ttl) => read.ttl(ttl),
            None => read,
        };
        let refresh = self.refresh_always || std::mem::take(&mut self.refresh_next);
        read.refresh(refresh)
    }

    /// The parameters `sql` names (`:id`, `$id`, `@id`): binding one it does not use is
    /// an error for most drivers.
    fn params_for(&self, sql: &str) -> Vec<(String, Value)> {
        self.params
            .iter()
            .filter(|(name, _)| {
                [':', '$', '@']
                    .iter()
                    .any(|sigil| mentions(sql, &format!("{sigil}{name}")))
            })
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    fn statement(&mut self, sql: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        match kind_of(sql) {
            Kind::Transaction => bail!(
                "each statement runs in a transaction of its own; BEGIN, COMMIT and ROLLBACK \
                 are not needed (plugboard exec runs several in one)"
            ),
            Kind::Write => {
                let mut exec = self.conn.execute(sql);
                for (name, value) in self.params_for(sql) {
                    exec = exec.param(&name, value);
                }
                let n = exec.run()?;
                self.known
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .forget();
                self.write_text(&format!(
                    "{n} row{} affected\n",
                    if n == 1 { "" } else { "s" }
                ))?;
                if self.timer {
                    eprintln!("time: {:.3?}", started.elapsed());
                }
                Ok(())
            }
            Kind::Read => {
                let outcome = self.read(sql)?;
                if self.timer
                    && let Some(outcome) = outcome
                {
                    eprintln!("time: {:.3?} ({outcome})", started.elapsed());
                }
                Ok(())
            }
        }
    }

    /// Runs a read on a thread of its own and waits for it, or for Ctrl-C: then the
    /// plugin is asked to cancel the statement at its source and the shell waits for it
    /// to stop. A plugin that cannot cancel (or a source that does not stop) is left to
    /// finish on its own and its output is dropped. `None` when cancelled.
    fn read(&mut self, sql: &str) -> anyhow::Result<Option<Outcome>> {
        let conn = self.conn.clone();
        let sql = sql.to_owned();
        let params = self.params_for(&sql);
        let ttl = self.ttl;
        let refresh = self.refresh_always || std::mem::take(&mut self.refresh_next);
        let mode = self.mode;
        let layout = self.layout;
        let (tx, rx) = mpsc::channel();
        interrupt::take_cancel();
        let spawned = std::thread::Builder::new()
            .name("plugboard-shell-read".to_owned())
            .spawn(move || {
                let mut read = conn.query(sql).params(params).refresh(refresh);
                if let Some(ttl) = ttl {
                    read = read.ttl(ttl);
                }
                let _ = tx.send(render(read, mode, layout));
            });
        spawned.context("cannot start a thread for the statement")?;
        // The progress line is this thread's, so that a cancelled read cannot draw over
        // the next prompt; the result is written here too, after the line is wiped.
        let progress =
            Progress::start("reading".to_owned(), Progress::wanted(self.quiet, 0, false));
        let mut cancel: Option<Cancelling> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(result) => {
                    progress.finish();
                    let cancelled = cancel.is_some() || interrupt::take_cancel();
                    return match result {
                        Err(e) if interrupt::stopped_by_sigint(&e) => {
                            // An isolated plugin's worker shares the terminal: Ctrl-C
                            // stopped it. The next statement starts a new worker.
                            eprintln!("cancelled (the plugin's worker stopped with it)");
                            Ok(None)
                        }
                        _ if cancelled => {
                            eprintln!("cancelled");
                            Ok(None)
                        }
                        result => {
                            let (text, outcome) = result?;
                            self.with_writer(|out| Ok(out.write_all(&text)?))?;
                            Ok(Some(outcome))
                        }
                    };
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let pressed = interrupt::take_cancel();
                    if pressed || cancel.as_ref().is_some_and(Cancelling::ask_again) {
                        let c = cancel.get_or_insert_with(Cancelling::new);
                        c.ask(&self.conn);
                    }
                    if cancel.as_ref().is_some_and(Cancelling::gave_up) {
                        progress.finish();
                        self.abandoned = true;
                        eprintln!(
                            "cancelled; {}",
                            cancel.as_ref().map_or("", Cancelling::why_still_running)
                        );
                        return Ok(None);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("the statement's thread ended without an answer")
                }
            }
        }
    }

    fn write_frame(&self, df: &DataFrame) -> anyhow::Result<()> {
        let mode = self.mode;
        let layout = self.layout;
        self.with_writer(|out| {
            if mode == Format::Table {
                writeln!(out, "{}", output::render_table(df, layout)?)?;
            } else {
                output::write(df, mode, out)?;
            }
            Ok(())
        })
    }

    fn write_text(&self, text: &str) -> anyhow::Result<()> {
        self.with_writer(|out| Ok(out.write_all(text.as_bytes())?))
    }

    fn with_writer(
        &self,
        f: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        with_writer(self.output.as_ref().map(|(_, f)| &**f), f)
    }
}

/// Writes to `.output`'s file, else standard output, flushing after.
fn with_writer(
    file: Option<&Mutex<std::fs::File>>,
    f: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match file {
        Some(file) => {
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            let mut out = std::io::BufWriter::new(&mut *file);
            f(&mut out)?;
            out.flush().context("writing to the .output file")
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            f(&mut out)?;
            out.flush().context("writing to standard output")
        }
    }
}

/// A Ctrl-C the shell is acting on: the plugin is asked to cancel (again every
/// [`Cancelling::AGAIN`], in case the statement had not reached its source yet), and the
/// shell waits for the read to end, [`Cancelling::PATIENCE`] at most.
struct Cancelling {
    since: Instant,
    asked: Instant,
    /// Why the statement may go on: the plugin cannot cancel, or the cancel failed.
    cannot: Option<String>,
}

impl Cancelling {
    const AGAIN: Duration = Duration::from_millis(250);
    const PATIENCE: Duration = Duration::from_secs(3);
    /// How long to wait when the plugin cannot cancel: an isolated plugin's worker,
    /// stopped by the same Ctrl-C, reports that within it.
    const GRACE: Duration = Duration::from_millis(300);

    fn new() -> Self {
        let now = Instant::now();
        Self {
            since: now,
            asked: now,
            cannot: None,
        }
    }

    fn ask(&mut self, conn: &Connection) {
        self.asked = Instant::now();
        if self.cannot.is_some() {
            return;
        }
        match conn.cancel() {
            Ok(true) => {}
            Ok(false) => {
                self.cannot = Some(format!(
                    "plugin {} {} cannot stop a running statement, so it runs on at the source until it ends",
                    conn.plugin(),
                    conn.plugin_version()
                ));
            }
            Err(e) => {
                self.cannot = Some(format!(
                    "the statement may run on at the source (cancelling failed: {e})"
                ));
            }
        }
    }

    fn ask_again(&self) -> bool {
        self.cannot.is_none() && self.asked.elapsed() >= Self::AGAIN
    }

    fn gave_up(&self) -> bool {
        let patience = if self.cannot.is_some() {
            Self::GRACE
        } else {
            Self::PATIENCE
        };
        self.since.elapsed() >= patience
    }

    fn why_still_running(&self) -> &str {
        self.cannot
            .as_deref()
            .unwrap_or("the source did not stop the statement in time, so it runs on until it ends")
    }
}

/// Runs `read` through the memory tier (so running it again is a memory hit) and renders
/// its result in `mode`.
fn render(
    read: crate::Read<'_>,
    mode: Format,
    layout: TableLayout,
) -> anyhow::Result<(Vec<u8>, Outcome)> {
    let started = Instant::now();
    let (df, outcome) = read.fetch_shared()?;
    let mut out = Vec::new();
    match mode {
        Format::Table => {
            let mut table = output::TableRows::new(df.schema(), layout);
            table.push(&df)?;
            writeln!(out, "{}", table.render(Some(started.elapsed())))?;
        }
        mode => output::write(&df, mode, &mut out)?,
    }
    Ok((out, outcome))
}

/// What a statement does, by its first word.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Transaction,
}

fn kind_of(sql: &str) -> Kind {
    let mut text = sql.trim_start();
    // Leading comments and parentheses say nothing.
    loop {
        if let Some(rest) = text.strip_prefix("--") {
            text = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = text.strip_prefix('(') {
            text = rest.trim_start();
        } else {
            break;
        }
    }
    let word: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    match word.as_str() {
        "insert" | "update" | "delete" | "merge" | "upsert" | "replace" | "create" | "drop"
        | "alter" | "truncate" | "grant" | "revoke" | "comment" | "vacuum" | "analyze"
        | "attach" | "detach" | "reindex" | "refresh" | "call" | "set" | "reset" | "load"
        | "install" | "use" => Kind::Write,
        "begin" | "commit" | "rollback" | "start" | "end" | "savepoint" | "release" => {
            Kind::Transaction
        }
        _ => Kind::Read,
    }
}

/// Whether `sql` holds `name` followed by a character that cannot continue it.
fn mentions(sql: &str, name: &str) -> bool {
    sql.match_indices(name).any(|(i, _)| {
        sql[i + name.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// `$PLUGBOARD_HISTORY`, else `$XDG_STATE_HOME/plugboard/history`, else
/// `~/.local/state/plugboard/history`; `None` (no history kept) without a home.
fn history_path() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(path) = var(HISTORY_ENV) {
        return Some(PathBuf::from(path));
    }
    let state = var("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("plugboard").join("history"))
}

/// Saves the history after every entry, readable by its owner only (a statement may hold
/// a literal the user would not share).
fn save_history(
    editor: &mut rustyline::Editor<ShellHelper, rustyline::history::DefaultHistory>,
    path: &Path,
) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = editor.save_history(path) {
        tracing::warn!("cannot save the history in {}: {e}", path.display());
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_told_apart_by_their_first_word() {
        assert_eq!(kind_of("SELECT 1"), Kind::Read);
        assert_eq!(
            kind_of("  with x as (select 1) select * from x"),
            Kind::Read
        );
        assert_eq!(kind_of("-- note\n/* c */ (SELECT 1)"), Kind::Read);
        assert_eq!(kind_of("PRAGMA table_info(t)"), Kind::Read);
        assert_eq!(kind_of("data/file.csv"), Kind::Read);
        assert_eq!(kind_of("insert into t values (1)"), Kind::Write);
        assert_eq!(kind_of("CREATE TABLE t (a int)"), Kind::Write);
        assert_eq!(kind_of("BEGIN"), Kind::Transaction);
    }

    #[test]
    fn parameters_are_bound_only_where_named() {
        assert!(mentions("select :id", ":id"));
        assert!(mentions("select * from t where a = :id and b", ":id"));
        assert!(!mentions("select :identity", ":id"));
        assert!(!mentions("select 1", ":id"));
    }
}

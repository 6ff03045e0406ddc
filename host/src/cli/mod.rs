//! The `plugboard` command line: a thin layer over the library.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use self::commands::{
    cache_clear, cache_stats, check_plugin, describe, disk_cache, exec, list_connections,
    list_plugins, pin_plugins, read, redis_cache, tables,
};
use crate::export::Format;
use crate::{Host, HostBuilder};

mod commands;
mod interrupt;
mod params;
mod progress;
mod shell;

/// Query data sources through connector plugins, with a shared cache.
#[derive(Debug, Parser)]
#[command(
    name = "plugboard",
    version,
    about,
    max_term_width = 100,
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// The plugins.toml to load [default: ./plugins.toml]
    #[arg(long, global = true, env = "PLUGBOARD_PLUGINS", value_name = "PATH")]
    plugins: Option<PathBuf>,

    /// The secrets file [default: ./.plugboard/secrets.toml or ./.streamlit/secrets.toml
    /// over ~/.config/plugboard/secrets.toml]
    #[arg(long, global = true, env = "PLUGBOARD_SECRETS", value_name = "PATH")]
    secrets: Option<PathBuf>,

    /// Log what happens (-v: cache hits and misses, timings, plugins' logs; -vv: more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// No progress line and no warnings: only results and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a query and print the table
    #[command(after_help = QUERY_EXAMPLES)]
    Query(ReadArgs),
    /// Read a target (a file connector's path, an API's resource) and print the table
    #[command(after_help = READ_EXAMPLES)]
    Read(ReadArgs),
    /// Run statements in one transaction and print the rows affected
    #[command(after_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
    /// List the schemas, tables and views a connection can see
    #[command(after_help = TABLES_EXAMPLES)]
    Tables(TablesArgs),
    /// Show a table's columns: their types and whether they may be null
    #[command(after_help = DESCRIBE_EXAMPLES)]
    Describe(DescribeArgs),
    /// An interactive SQL shell on a connection (also: plugboard CONN)
    #[command(after_help = SHELL_EXAMPLES)]
    Shell(ShellArgs),
    /// Show the loaded plugins
    #[command(after_help = PLUGINS_EXAMPLES)]
    Plugins {
        #[command(subcommand)]
        action: Option<PluginsAction>,
    },
    /// Show the configured connections (secrets as ***)
    #[command(after_help = CONNECTIONS_EXAMPLES)]
    Connections {
        #[command(subcommand)]
        action: Option<ConnectionsAction>,
    },
    /// Show or clear the disk cache shared by plugboard processes
    #[command(after_help = CACHE_EXAMPLES)]
    Cache {
        #[command(subcommand)]
        action: Option<CacheAction>,
    },
    /// Print a completion script for a shell
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// bash, zsh, fish, powershell or elvish
        shell: clap_complete::Shell,
    },
}

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    an error of another kind: a config file, a plugin, the cache, an output file
  2    usage: the command line is wrong (an unknown option, a bad --param)
  3    connection: unknown, misconfigured, refused or unreachable
  4    query: the source refused the query or statement
  130  interrupted (Ctrl-C)";

const QUERY_EXAMPLES: &str = "\
Examples:
  plugboard query chinook \"SELECT * FROM Album WHERE ArtistId = :id\" -p id=1
  plugboard query chinook -f report.sql -o report.parquet
  echo \"SELECT count(*) FROM Track\" | plugboard query chinook -
  plugboard query chinook \"SELECT * FROM Track\" --ttl 1h --max-width 80 --max-rows 10
  plugboard query pg \"SELECT * FROM orders\" -m ndjson | jq .id";

const READ_EXAMPLES: &str = "\
Examples:
  plugboard read files data/trips.parquet --limit 10
  plugboard read files raw/export.txt -x format=csv -x delimiter=';' -o trips.csv
  plugboard read gsheets Sheet1 -x usecols=0,1";

const EXEC_EXAMPLES: &str = "\
Examples:
  plugboard exec pets_db \"INSERT INTO pet_owners VALUES (:owner, :pet)\" -p owner=kim -p pet=cat
  plugboard exec pg \"UPDATE t SET v = 1\" \"DELETE FROM log\"    # one transaction";

const TABLES_EXAMPLES: &str = "\
Examples:
  plugboard tables chinook
  plugboard tables chinook 'in*'          # Invoice, InvoiceLine
  plugboard tables pg 'public.*' -m csv";

const DESCRIBE_EXAMPLES: &str = "\
Examples:
  plugboard describe chinook Track
  plugboard describe pg public.orders -m json";

const SHELL_EXAMPLES: &str = "\
Examples:
  plugboard shell chinook
  plugboard chinook                       # the same
  plugboard shell chinook -c '.tables'
  plugboard shell chinook < report.sql    # statements from a file, no prompt

In the shell, end a statement with ; and type .help for the dot-commands.";

const PLUGINS_EXAMPLES: &str = "\
Examples:
  plugboard plugins list
  plugboard plugins check target/debug/libplugboard_sqlite.so --isolation process
  plugboard plugins pin";

const CONNECTIONS_EXAMPLES: &str = "\
Examples:
  plugboard connections list
  plugboard --secrets .streamlit/secrets.toml connections";

const CACHE_EXAMPLES: &str = "\
Examples:
  plugboard cache stats
  plugboard cache clear chinook
  plugboard cache clear";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  plugboard completions bash > ~/.local/share/bash-completion/completions/plugboard
  plugboard completions zsh > \"${fpath[1]}/_plugboard\"
  plugboard completions fish > ~/.config/fish/completions/plugboard.fish
  plugboard completions powershell >> $PROFILE";

#[derive(Debug, Subcommand)]
enum CacheAction {
    /// Entries and bytes, per connection [default]
    Stats,
    /// Remove cached results: all, or one connection's
    Clear {
        /// Only this connection's results
        connection: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PluginsAction {
    /// List the plugins from plugins.toml, and those that failed to load
    List,
    /// Load one library on its own and report its manifest
    Check {
        path: PathBuf,
        /// Where the conformance checks run: `process` runs them in a worker process
        #[arg(long, value_parser = ["none", "process"], default_value = "none")]
        isolation: String,
    },
    /// Write a sha256 pin for every [[plugin]] in plugins.toml (comments are kept)
    Pin,
}

#[derive(Debug, Subcommand)]
enum ConnectionsAction {
    /// List connections, the plugin serving each, and their keys
    List,
}

#[derive(Debug, Args)]
struct ConnArgs {
    /// The connection's name ([connections.<name>] in the secrets file)
    connection: String,

    /// Set a connection key, over the secrets file and environment (KEY=VALUE; a.b=VALUE nests)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,

    /// The connector kind, over the section's `type` (e.g. sql, sqlite)
    #[arg(long = "type", value_name = "KIND")]
    kind: Option<String>,
}

#[derive(Debug, Args)]
struct ReadArgs {
    #[command(flatten)]
    conn: ConnArgs,

    /// The query (SQL) or target (path); `-` reads it from standard input
    #[arg(required_unless_present = "file")]
    query: Option<String>,

    /// Read the query from this file (`-`: standard input)
    #[arg(long, short, value_name = "PATH", conflicts_with = "query")]
    file: Option<PathBuf>,

    /// Bind a parameter: NAME=VALUE (typed by its look: 5, 2.5, true, else text),
    /// or NAME:TYPE=VALUE with TYPE one of str, int, float, bool, null, hex
    #[arg(short, long = "param", value_name = "NAME=VALUE")]
    param: Vec<String>,

    #[command(flatten)]
    cache: CacheArgs,

    /// Return at most N rows
    #[arg(long, value_name = "N", value_parser = parse_row_count, allow_hyphen_values = true)]
    limit: Option<u64>,

    /// A connector read option, KEY=VALUE (typed like --param): for files, format=csv,
    /// delimiter=';', header=false, columns=a,b, ...
    #[arg(short = 'x', long = "option", value_name = "KEY=VALUE")]
    option: Vec<String>,

    #[command(flatten)]
    out: OutputArgs,
}

/// How long a result may come from the cache.
#[derive(Debug, Args)]
struct CacheArgs {
    /// Serve from the cache for this long (600, 10m, 1h, 1d; 0 = no caching)
    #[arg(long, value_name = "DURATION")]
    ttl: Option<String>,

    /// Read again even if a cached result is fresh, and replace it
    #[arg(long)]
    refresh: bool,
}

/// Where a result goes and in what shape.
#[derive(Debug, Args)]
struct OutputArgs {
    /// Output format: table, csv, json, ndjson, parquet, arrow
    /// [default: from --output's extension, else table on a terminal, csv otherwise]
    #[arg(long, short = 'm', visible_alias = "mode", value_name = "FORMAT")]
    format: Option<Format>,

    /// Write to this file (atomically) instead of standard output
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,

    /// Table output: show at most N rows, the first and last halves (0 = all)
    /// [default: 40 on standard output, all in a file]
    #[arg(long, value_name = "N")]
    max_rows: Option<usize>,

    /// Table output: fit lines in N characters, leaving out middle columns and cutting
    /// long cells with … (0 = no limit, cells whole)
    /// [default: the terminal's width, else $COLUMNS, else no limit; no limit in a file]
    #[arg(long, value_name = "N")]
    max_width: Option<usize>,
}

#[derive(Debug, Args)]
struct TablesArgs {
    #[command(flatten)]
    conn: ConnArgs,

    /// Only names that match this pattern: * any text, ? one character, case ignored;
    /// matched against the name and against schema.name
    pattern: Option<String>,

    #[command(flatten)]
    cache: CacheArgs,

    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
struct DescribeArgs {
    #[command(flatten)]
    conn: ConnArgs,

    /// The table or view (schema.table where the source has schemas)
    table: String,

    #[command(flatten)]
    cache: CacheArgs,

    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
struct ShellArgs {
    #[command(flatten)]
    conn: ConnArgs,

    /// Serve reads from the cache for this long (600, 10m, 1h; 0 = no caching); `.ttl`
    /// changes it in the shell
    #[arg(long, value_name = "DURATION")]
    ttl: Option<String>,

    /// Run these statements and dot-commands, then leave (as `.read FILE` would)
    #[arg(long, short = 'c', value_name = "TEXT")]
    command: Option<String>,
}

#[derive(Debug, Args)]
struct ExecArgs {
    #[command(flatten)]
    conn: ConnArgs,

    /// One or more statements, run in one transaction
    #[arg(required = true)]
    statements: Vec<String>,

    /// Bind a parameter shared by the statements (see `query --help`)
    #[arg(short, long = "param", value_name = "NAME=VALUE")]
    param: Vec<String>,
}

/// The whole program: parse arguments, run, print any error on one line, exit non-zero.
///
/// The process never ends by a panic: one is caught here and reported as a one-line
/// internal error with exit code 1 (a bug to fix at its cause; `RUST_BACKTRACE=1` shows
/// where). Panics inside plugins never get this far: the plugin boundary turns them into
/// errors.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(main_with(std::env::args_os().collect()))
}

/// The whole program on `argv` (its first item the program's name), as its exit code:
/// what [`main`] runs, and what a launcher other than this binary runs (the Python
/// package's `plugboard` command, which is also the worker program of its isolated plugins).
pub fn main_with(argv: Vec<std::ffi::OsString>) -> u8 {
    use std::process::ExitCode;
    let mut args = argv.iter().skip(1);
    if args
        .next()
        .is_some_and(|a| a == crate::plugin::serve::WORKER_COMMAND)
    {
        let worker = crate::plugin::serve::main(args.cloned());
        return if worker == ExitCode::SUCCESS { 0 } else { 1 };
    }
    RUNNING.store(true, std::sync::atomic::Ordering::Relaxed);
    panic_report::install();
    interrupt::install();
    let outcome = std::panic::catch_unwind(move || {
        let cli = match Cli::try_parse_from(shell_by_default(argv)) {
            Ok(cli) => cli,
            Err(e) => return usage_error(e),
        };
        match run(cli) {
            Ok(()) => 0,
            Err(e) if is_broken_pipe(&e) => 0,
            Err(e) => {
                interrupt::wait_if_interrupted(&e);
                eprintln!("error: {}", crate::error::one_line(&format!("{e:#}")));
                exit::code_of(&e)
            }
        }
    });
    outcome.unwrap_or_else(|payload| {
        eprintln!("error: {}", panic_report::describe(payload.as_ref()));
        1
    })
}

/// `plugboard CONN` is `plugboard shell CONN`: when the first word after the global
/// options is not a command, `shell` goes before it (and a connection of that name that
/// does not exist but looks like a misspelt command is a usage error: see `shell::run`).
fn shell_by_default(mut argv: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let command = Cli::command();
    let mut i = 1;
    while let Some(arg) = argv.get(i).and_then(|a| a.to_str()) {
        match arg {
            "--plugins" | "--secrets" => i += 2,
            _ if arg.starts_with('-') => i += 1,
            _ => {
                let known = command.find_subcommand(arg).is_some() || arg == "help";
                if !known {
                    argv.insert(i, "shell".into());
                    shell::IMPLIED.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                break;
            }
        }
    }
    argv
}

static RUNNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process is the CLI (whose executable can also run plugin workers).
pub(crate) fn is_running() -> bool {
    RUNNING.load(std::sync::atomic::Ordering::Relaxed)
}

/// A mistyped command line: clap's first line (what is wrong, naming the argument) and
/// exit code 2. Help and version requests print as clap prints them.
fn usage_error(e: clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            let text = e.to_string();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let first = first.trim().trim_start_matches("error:").trim();
            eprintln!(
                "error: {}; see plugboard --help",
                crate::error::one_line(first)
            );
            exit::USAGE
        }
    }
}

/// The exit codes, which `plugboard --help` and the README list: a script can tell a typo
/// from a source that is down from a query the source refused.
pub(crate) mod exit {
    use plugboard_api::ErrorKind;

    use crate::Error;

    /// Any other error: a config file, a plugin that failed, the cache, an output file.
    pub const ERROR: u8 = 1;
    /// The command line is wrong: an unknown option, a bad `--param`, a missing argument.
    pub const USAGE: u8 = 2;
    /// The connection could not be made: unknown, misconfigured, refused or unreachable.
    pub const CONNECTION: u8 = 3;
    /// The source refused the query or statement (bad SQL, a missing table or parameter).
    pub const QUERY: u8 = 4;
    /// Ctrl-C (SIGINT) stopped it.
    pub const INTERRUPTED: u8 = 130;

    /// A command-line mistake found after parsing (a `--param` that does not parse): exit
    /// code [`USAGE`], its message as given.
    #[derive(Debug)]
    pub struct Usage(pub String);

    impl std::fmt::Display for Usage {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Usage {}

    /// The error as a usage error, keeping its whole message.
    pub fn usage(e: anyhow::Error) -> anyhow::Error {
        anyhow::Error::new(Usage(format!("{e:#}")))
    }

    /// The exit code for an error: the first cause in its chain that tells.
    pub fn code_of(e: &anyhow::Error) -> u8 {
        e.chain()
            .find_map(|c| {
                c.downcast_ref::<Usage>()
                    .map(|_| USAGE)
                    .or_else(|| c.downcast_ref::<Error>().and_then(of_host_error))
            })
            .unwrap_or(ERROR)
    }

    fn of_host_error(e: &Error) -> Option<u8> {
        match e {
            Error::UnknownConnection { .. }
            | Error::Connection { .. }
            | Error::UnknownType { .. } => Some(CONNECTION),
            Error::Plugin { kind, .. } => match *kind {
                ErrorKind::CONFIG | ErrorKind::AUTH | ErrorKind::CONNECT => Some(CONNECTION),
                ErrorKind::QUERY | ErrorKind::UNSUPPORTED => Some(QUERY),
                ErrorKind::CANCELLED => Some(INTERRUPTED),
                _ => None,
            },
            Error::Unsupported { .. } => Some(QUERY),
            Error::Shared(inner) => of_host_error(inner),
            _ => None,
        }
    }
}

/// Turns a panic into the CLI's one line: the hook keeps the message and where it happened
/// (printing nothing, unless `RUST_BACKTRACE` asks for the usual report), and
/// [`describe`](panic_report::describe) reads it back once `catch_unwind` has the payload.
mod panic_report {
    use std::sync::Mutex;

    static LAST: Mutex<Option<String>> = Mutex::new(None);

    pub fn install() {
        let default = std::panic::take_hook();
        let verbose = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
        std::panic::set_hook(Box::new(move |info| {
            let message = payload_text(info.payload());
            let at = info
                .location()
                .map(|l| format!(" (at {}:{})", l.file(), l.line()))
                .unwrap_or_default();
            let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
            // The first panic is the cause; a second one on the way out is noise.
            if last.is_none() {
                *last = Some(format!("{message}{at}"));
            }
            drop(last);
            if verbose {
                default(info);
            }
        }));
    }

    fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    }

    /// The one-line report of a caught panic.
    pub fn describe(payload: &(dyn std::any::Any + Send)) -> String {
        let what = LAST
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| payload_text(payload));
        format!(
            "internal error: plugboard panicked: {}; this is a bug, please report it \
             (RUST_BACKTRACE=1 shows where)",
            crate::error::one_line(&what)
        )
    }
}

/// `--limit`: a row count, 0 or more.
fn parse_row_count(text: &str) -> Result<u64, String> {
    let t = text.trim();
    t.parse::<u64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow => format!("{t} is more rows than {}", u64::MAX),
        _ if t.starts_with('-') => format!("{t} is negative; give a row count, 0 or more"),
        _ => format!("{t:?} is not a row count"),
    })
}

/// `plugboard query … | head` closing the pipe early is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<crate::Error>().is_some_and(|p| {
                matches!(p, crate::Error::Write { error, .. } if error.kind() == std::io::ErrorKind::BrokenPipe)
            })
    })
}

/// Runs the CLI; `Ok` means exit 0.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    init_logging(cli.verbose, cli.quiet);
    let build_host = || -> anyhow::Result<Host> {
        let mut b = HostBuilder::default();
        if let Some(p) = &cli.plugins {
            b = b.plugins_file(p);
        }
        if let Some(s) = &cli.secrets {
            b = b.secrets_file(s);
        }
        let host = b.build()?;
        for e in host.load_errors() {
            tracing::warn!("{e}");
        }
        Ok(host)
    };
    match &cli.command {
        Command::Query(args) | Command::Read(args) => {
            read(&build_host()?, args, (cli.quiet, cli.verbose))
        }
        Command::Exec(args) => exec(&build_host()?, args),
        Command::Tables(args) => tables(&build_host()?, args, (cli.quiet, cli.verbose)),
        Command::Describe(args) => describe(&build_host()?, args, (cli.quiet, cli.verbose)),
        Command::Shell(args) => shell::run(&build_host()?, args, cli.quiet),
        Command::Plugins { action } => match action {
            None | Some(PluginsAction::List) => list_plugins(&build_host()?),
            Some(PluginsAction::Check { path, isolation }) => {
                check_plugin(path, isolation == "process")
            }
            Some(PluginsAction::Pin) => pin_plugins(cli.plugins.as_deref()),
        },
        Command::Connections {
            action: None | Some(ConnectionsAction::List),
        } => list_connections(&build_host()?),
        Command::Cache { action } => {
            let disk = disk_cache()?;
            let redis = redis_cache(cli.plugins.as_deref())?;
            match action {
                None | Some(CacheAction::Stats) => cache_stats(&disk, redis.as_ref()),
                // Which connection a name means depends on this project's secrets.
                Some(CacheAction::Clear {
                    connection: Some(name),
                }) => cache_clear(&disk, redis.as_ref(), Some((&build_host()?, name))),
                Some(CacheAction::Clear { connection: None }) => {
                    cache_clear(&disk, redis.as_ref(), None)
                }
            }
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = std::io::stdout().lock();
            clap_complete::generate(*shell, &mut Cli::command(), "plugboard", &mut out);
            std::io::Write::flush(&mut out).context("writing to standard output")
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("PLUGBOARD_LOG") {
        Ok(f) if !f.is_empty() => EnvFilter::new(f),
        _ => EnvFilter::new(match verbose {
            0 if quiet => "error",
            0 => "warn",
            // Plugins log under their own names (`sqlite`, `postgres`): info and up.
            1 => "info,plugboard=debug",
            _ => "debug",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use plugboard_api::Value;

    use super::params::parse_param;
    use super::*;

    #[test]
    fn params_are_typed_by_look_or_by_name() {
        assert_eq!(
            parse_param("owner=Alice").unwrap(),
            ("owner".into(), Value::String("Alice".into()))
        );
        assert_eq!(parse_param(":n=5").unwrap(), ("n".into(), Value::Int(5)));
        assert_eq!(parse_param("x=2.5").unwrap().1, Value::Float(2.5));
        assert_eq!(
            parse_param("zip=02134").unwrap().1,
            Value::String("02134".into())
        );
        assert_eq!(parse_param("b=true").unwrap().1, Value::Bool(true));
        assert_eq!(parse_param("n:str=5").unwrap().1, Value::String("5".into()));
        assert_eq!(parse_param("n:null=").unwrap().1, Value::Null);
        assert_eq!(
            parse_param("b:hex=00ff").unwrap().1,
            Value::Bytes(vec![0, 255])
        );
        assert!(
            parse_param("n:int=x")
                .unwrap_err()
                .to_string()
                .contains("not an integer")
        );
        assert!(parse_param("novalue").is_err());
    }

    #[test]
    fn params_that_cannot_be_bound_are_refused_naming_the_param() {
        assert_eq!(
            parse_param(":n:int=5").unwrap(),
            ("n".into(), Value::Int(5))
        );
        for bad in [
            "x:int=99999999999999999999",
            "x:float=one",
            "b:hex=zz",
            "b:hex=0",
            "b:hex=\u{e9}0",
            ":=5",
        ] {
            let e = parse_param(bad).expect_err(bad).to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        // NaN and the infinities are floats when asked for (they cross as "NaN" and
        // "Infinity" since plugboard-api 1.3); untyped, they and numbers too big for an
        // i64 are text.
        assert!(matches!(parse_param("x:float=nan").unwrap().1, Value::Float(f) if f.is_nan()));
        assert_eq!(
            parse_param("x:float=1e999").unwrap().1,
            Value::Float(f64::INFINITY)
        );
        assert_eq!(
            parse_param("x=99999999999999999999").unwrap().1,
            Value::String("99999999999999999999".into())
        );
        assert_eq!(
            parse_param("x=1e999").unwrap().1,
            Value::String("1e999".into())
        );
    }

    #[test]
    fn a_caught_panic_is_one_line_naming_it_a_bug() {
        let payload: Box<dyn std::any::Any + Send> = Box::new("index out of bounds\nat x");
        let line = panic_report::describe(payload.as_ref());
        assert!(
            line.starts_with("internal error: plugboard panicked: index out of bounds | at x;"),
            "{line}"
        );
        assert!(
            line.contains("this is a bug") && !line.contains('\n'),
            "{line}"
        );
        let opaque: Box<dyn std::any::Any + Send> = Box::new(5u8);
        assert!(panic_report::describe(opaque.as_ref()).contains("a panic without a message"));
    }

    #[test]
    fn row_counts() {
        assert_eq!(parse_row_count("18446744073709551615"), Ok(u64::MAX));
        assert!(parse_row_count("-1").unwrap_err().contains("negative"));
        assert!(
            parse_row_count("18446744073709551616")
                .unwrap_err()
                .contains("more rows")
        );
        assert!(parse_row_count("ten").unwrap_err().contains("\"ten\""));
    }
}

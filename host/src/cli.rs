//! The `plugboard` command line: a thin layer over the library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use plugboard_api::Value;

use crate::export::{self as output, Format};
use crate::{ConnectOptions, Host, HostBuilder};

/// Query data sources through connector plugins, with a shared cache.
#[derive(Debug, Parser)]
#[command(name = "plugboard", version, about, max_term_width = 100)]
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

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a query and print the table
    Query(ReadArgs),
    /// Read a target (a file connector's path, an API's resource) and print the table
    Read(ReadArgs),
    /// Run statements in one transaction and print the rows affected
    Exec(ExecArgs),
    /// Show the loaded plugins
    Plugins {
        #[command(subcommand)]
        action: Option<PluginsAction>,
    },
    /// Show the configured connections (secrets as ***)
    Connections {
        #[command(subcommand)]
        action: Option<ConnectionsAction>,
    },
    /// Show or clear the disk cache shared by plugboard processes
    Cache {
        #[command(subcommand)]
        action: Option<CacheAction>,
    },
}

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
    Check { path: PathBuf },
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

    /// The query (SQL) or target (path)
    query: String,

    /// Bind a parameter: NAME=VALUE (typed by its look: 5, 2.5, true, else text),
    /// or NAME:TYPE=VALUE with TYPE one of str, int, float, bool, null, hex
    #[arg(short, long = "param", value_name = "NAME=VALUE")]
    param: Vec<String>,

    /// Serve from the cache for this long (600, 10m, 1h, 1d; 0 = no caching)
    #[arg(long, value_name = "DURATION")]
    ttl: Option<String>,

    /// Return at most N rows
    #[arg(long, value_name = "N", value_parser = parse_row_count, allow_hyphen_values = true)]
    limit: Option<u64>,

    /// A connector read option, KEY=VALUE (typed like --param): for files, format=csv,
    /// delimiter=';', header=false, columns=a,b, ...
    #[arg(short = 'O', long = "option", value_name = "KEY=VALUE")]
    option: Vec<String>,

    /// Read again even if a cached result is fresh, and replace it
    #[arg(long)]
    refresh: bool,

    /// Output format: table, csv, json, ndjson, parquet, arrow
    /// [default: from --output's extension, else table on a terminal, csv otherwise]
    #[arg(long, short, value_name = "FORMAT")]
    format: Option<Format>,

    /// Write to this file (atomically) instead of standard output
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,
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
    use std::process::ExitCode;
    panic_report::install();
    let outcome = std::panic::catch_unwind(|| {
        let cli = match Cli::try_parse() {
            Ok(cli) => cli,
            Err(e) => return usage_error(e),
        };
        match run(cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}", crate::error::one_line(&format!("{e:#}")));
                ExitCode::FAILURE
            }
        }
    });
    outcome.unwrap_or_else(|payload| {
        eprintln!("error: {}", panic_report::describe(payload.as_ref()));
        ExitCode::FAILURE
    })
}

/// A mistyped command line: clap's first line (what is wrong, naming the argument) and exit
/// code 1, like every other error. Help and version requests print as clap prints them.
fn usage_error(e: clap::Error) -> std::process::ExitCode {
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
            std::process::ExitCode::FAILURE
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
    init_logging(cli.verbose);
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
        Command::Query(args) | Command::Read(args) => read(&build_host()?, args),
        Command::Exec(args) => exec(&build_host()?, args),
        Command::Plugins { action } => match action {
            None | Some(PluginsAction::List) => list_plugins(&build_host()?),
            Some(PluginsAction::Check { path }) => check_plugin(path),
            Some(PluginsAction::Pin) => pin_plugins(cli.plugins.as_deref()),
        },
        Command::Connections {
            action: None | Some(ConnectionsAction::List),
        } => list_connections(&build_host()?),
        Command::Cache { action } => {
            let disk = disk_cache()?;
            match action {
                None | Some(CacheAction::Stats) => cache_stats(&disk),
                // Which connection a name means depends on this project's secrets.
                Some(CacheAction::Clear {
                    connection: Some(name),
                }) => cache_clear(&disk, Some((&build_host()?, name))),
                Some(CacheAction::Clear { connection: None }) => cache_clear(&disk, None),
            }
        }
    }
}

/// The disk tier as the environment configures it; `cache` commands need no plugins.
fn disk_cache() -> anyhow::Result<crate::DiskCache> {
    let dir = crate::disk::default_dir()
        .context("cannot tell where the cache is: set PLUGBOARD_CACHE_DIR or HOME")?;
    let max = crate::disk::default_max_bytes().map_err(anyhow::Error::msg)?;
    crate::DiskCache::open(dir, max).map_err(|e| anyhow::anyhow!("cache: {e}"))
}

fn cache_stats(disk: &crate::DiskCache) -> anyhow::Result<()> {
    use crate::disk::show_bytes;
    let stats = disk.stats();
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["connection", "entries", "size"]);
    for (name, usage) in &stats.connections {
        table.add_row([
            name.clone(),
            usage.entries.to_string(),
            show_bytes(usage.bytes),
        ]);
    }
    table.add_row([
        "total".to_owned(),
        stats.total.entries.to_string(),
        format!(
            "{} of {}",
            show_bytes(stats.total.bytes),
            show_bytes(stats.max_bytes)
        ),
    ]);
    for column in 1..3 {
        if let Some(c) = table.column_mut(column) {
            c.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    println!("{table}");
    let expired = match stats.expired {
        0 => String::new(),
        n => format!(
            "; {n} expired entr{} awaiting removal",
            if n == 1 { "y" } else { "ies" }
        ),
    };
    println!("in {}{expired}", stats.dir.display());
    Ok(())
}

fn cache_clear(
    disk: &crate::DiskCache,
    connection: Option<(&crate::Host, &str)>,
) -> anyhow::Result<()> {
    let cached: Vec<String> = match connection {
        Some(_) => disk.stats().connections.into_keys().collect(),
        None => Vec::new(),
    };
    let removed = match connection {
        Some((host, name)) => host.clear_cache(Some(name))?.disk,
        None => disk.clear(),
    };
    let connection = connection.map(|(_, name)| name);
    let what = match connection {
        Some(c) => format!(" of {c:?}"),
        None => String::new(),
    };
    println!(
        "removed {} cached result{}{what} ({}) from {}",
        removed.entries,
        if removed.entries == 1 { "" } else { "s" },
        crate::disk::show_bytes(removed.bytes),
        disk.dir().display()
    );
    if let Some(c) = connection
        && removed.entries == 0
        && !cached.is_empty()
    {
        println!(
            "nothing is cached for {c:?}; cached connections: {}",
            cached.join(", ")
        );
    }
    Ok(())
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("PLUGBOARD_LOG") {
        Ok(f) if !f.is_empty() => EnvFilter::new(f),
        _ => EnvFilter::new(match verbose {
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

fn connect(host: &Host, args: &ConnArgs) -> anyhow::Result<crate::Connection> {
    let mut options = ConnectOptions::new();
    if let Some(k) = &args.kind {
        options = options.kind(k);
    }
    for s in &args.set {
        let (key, value) = s
            .split_once('=')
            .with_context(|| format!("--set {s:?}: expected KEY=VALUE"))?;
        if key.is_empty() {
            bail!("--set {s:?}: the key is empty");
        }
        // Each `.` is a level of nested tables; tens of thousands of them overflowed the
        // stack (dropping the nested TOML value recurses) and aborted the process.
        let depth = key.split('.').count();
        if depth > MAX_SET_DEPTH {
            let shown: String = s.chars().take(40).collect();
            bail!(
                "--set {shown:?}…: the key nests {depth} tables deep; at most {MAX_SET_DEPTH} \
                 (a.b.c is 3)"
            );
        }
        // Typed by the key's declared type once the plugin is known (a declared string
        // is the exact text), else by its look.
        options = options.set_text(key, value);
    }
    Ok(host.connection_with(&args.connection, options)?)
}

/// How many `.`-separated parts a `--set` key may have: far more than any connector's
/// config nests.
const MAX_SET_DEPTH: usize = crate::config::secrets::MAX_KEY_DEPTH;

/// Parses `NAME=VALUE` or `NAME:TYPE=VALUE`.
fn parse_param(text: &str) -> anyhow::Result<(String, Value)> {
    let (name, value) = text
        .split_once('=')
        .with_context(|| format!("--param {text:?}: expected NAME=VALUE"))?;
    // The sigil first: `:owner=x` is the name `owner`, and `:n:int=5` the name `n`.
    let name = name.trim_start_matches([':', '@', '$']);
    let (name, kind) = match name.split_once(':') {
        Some((n, k)) => (n, Some(k)),
        None => (name, None),
    };
    if name.is_empty() {
        bail!("--param {text:?}: the name is empty");
    }
    let bad = |t: &str| anyhow::anyhow!("--param {text:?}: {value:?} is not {t}");
    let value = match kind {
        None => infer_value(value),
        Some("str" | "string" | "text") => Value::String(value.to_owned()),
        Some("int") => Value::Int(value.parse().map_err(|_| bad("an integer"))?),
        Some("float") => Value::Float(value.parse().map_err(|_| bad("a number"))?),
        Some("bool") => Value::Bool(value.parse().map_err(|_| bad("true or false"))?),
        Some("null") => Value::Null,
        Some("hex" | "bytes") => Value::Bytes(unhex(value).ok_or_else(|| bad("hex bytes"))?),
        Some(other) => {
            bail!("--param {text:?}: unknown type {other:?} (str, int, float, bool, null, hex)")
        }
    };
    Ok((name.to_owned(), value))
}

/// A read option's value, typed by its look like a parameter's (`5`, `true`, else text).
fn option_value(v: &str) -> serde_json::Value {
    match infer_value(v) {
        Value::Int(i) => i.into(),
        Value::Float(f) => f.into(),
        Value::Bool(b) => b.into(),
        _ => v.into(),
    }
}

fn infer_value(v: &str) -> Value {
    if let Ok(i) = v.parse::<i64>() {
        // Keep leading zeros ("007") as text: they are identifiers, not numbers.
        if !(v.starts_with('+') || v.len() > 1 && v.starts_with('0')) {
            return Value::Int(i);
        }
    }
    if let Ok(f) = v.parse::<f64>()
        && f.is_finite()
        && v.contains(['.', 'e', 'E'])
    {
        return Value::Float(f);
    }
    match v {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(v.to_owned()),
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()
}

fn read(host: &Host, args: &ReadArgs) -> anyhow::Result<()> {
    let format = match (args.format, &args.output) {
        (Some(f), _) => f,
        (None, Some(path)) => Format::from_path(path).with_context(|| {
            format!(
                "cannot tell the format of {} from its extension; pass --format",
                path.display()
            )
        })?,
        (None, None) if std::io::stdout().is_terminal() => Format::Table,
        (None, None) => Format::Csv,
    };
    if format.is_binary() && args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("{format:?} output is binary: write it to a file with --output PATH, or pipe it");
    }
    let params = args
        .param
        .iter()
        .map(|p| parse_param(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ttl: Option<Duration> = args
        .ttl
        .as_deref()
        .map(crate::duration::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;

    let conn = connect(host, &args.conn)?;
    let mut read = conn.query(&args.query).params(params);
    if let Some(ttl) = ttl {
        read = read.ttl(ttl);
    }
    if let Some(n) = args.limit {
        read = read.limit(n);
    }
    for option in &args.option {
        let (key, value) = option
            .split_once('=')
            .with_context(|| format!("--option {option:?}: expected KEY=VALUE"))?;
        read = read.option(key.trim(), option_value(value));
    }
    read = read.refresh(args.refresh);
    if format.streams() {
        // Batch by batch: an export of any size holds one batch at a time.
        let mut stream = read.stream()?;
        let schema = stream.schema().clone();
        match &args.output {
            Some(path) => {
                output::write_stream_file(&mut stream, &schema, format, path)?;
            }
            None => {
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                output::write_stream(&mut stream, &schema, format, &mut out)?;
                out.flush().context("writing to standard output")?;
            }
        }
        return Ok(());
    }
    let (df, _) = read.fetch_shared()?;
    match &args.output {
        Some(path) => output::write_file(&df, format, path)?,
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            output::write(&df, format, &mut out)?;
            out.flush().context("writing to standard output")?;
        }
    }
    Ok(())
}

fn exec(host: &Host, args: &ExecArgs) -> anyhow::Result<()> {
    let conn = connect(host, &args.conn)?;
    let mut statements = args.statements.iter();
    let first = statements.next().context("no statement given")?;
    let mut exec = conn.execute(first.as_str());
    for s in statements {
        exec = exec.statement(s.as_str());
    }
    for p in &args.param {
        let (name, value) = parse_param(p)?;
        exec = exec.param(&name, value);
    }
    let n = exec.run()?;
    println!("{n} row{} affected", if n == 1 { "" } else { "s" });
    Ok(())
}

fn list_plugins(host: &Host) -> anyhow::Result<()> {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["plugin", "version", "api", "kinds", "schemes", "path"]);
    for p in host.plugins() {
        table.add_row([
            p.manifest.name.clone(),
            p.manifest.version.clone(),
            // The plugboard-api it was built against; "(inferred)" before 1.4 recorded it.
            p.api.to_string(),
            p.manifest.kinds.join(", "),
            p.manifest.schemes.join(", "),
            p.path.display().to_string(),
        ]);
    }
    println!("{table}");
    match host.plugins_file() {
        Some(f) => println!("from {}", f.display()),
        None => println!("no plugins.toml found (pass --plugins or set PLUGBOARD_PLUGINS)"),
    }
    let errors = host.load_errors();
    if !errors.is_empty() {
        bail!(
            "{} plugin{} failed to load: {}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

fn pin_plugins(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let path = path.map_or_else(
        || PathBuf::from("plugins.toml"),
        std::path::Path::to_path_buf,
    );
    let pins = crate::config::pin(&path)?;
    for (lib, digest) in &pins {
        println!("{digest}  {}", lib.display());
    }
    println!(
        "pinned {} plugin{} in {}; a library that changes will be refused until pinned again",
        pins.len(),
        if pins.len() == 1 { "" } else { "s" },
        path.display()
    );
    Ok(())
}

fn check_plugin(path: &std::path::Path) -> anyhow::Result<()> {
    let plugin = crate::sys::loader::load(path).map_err(|reason| crate::Error::Load {
        path: path.to_path_buf(),
        reason,
    })?;
    let m = &plugin.manifest;
    println!("path:        {}", plugin.path.display());
    println!("plugin:      {} {}", m.name, m.version);
    // The major is the host's (a plugin of another major does not load); the release is
    // the plugin's own record (1.4+), else what its capabilities say.
    println!(
        "api version: {}, built with plugboard-api {}",
        plugboard_api::API_VERSION,
        plugin.api
    );
    println!("kinds:       {}", m.kinds.join(", "));
    println!("schemes:     {}", m.schemes.join(", "));
    if m.config.is_empty() {
        println!("config keys: (not declared; the plugin checks its own config)");
    } else {
        let keys: Vec<&str> = m.config.iter().map(|k| k.name.as_str()).collect();
        println!("config keys: {}", keys.join(", "));
        let secret: Vec<&str> = m
            .config
            .iter()
            .filter(|k| k.secret)
            .map(|k| k.name.as_str())
            .collect();
        println!("secret keys: {}", secret.join(", "));
    }
    if !m.description.is_empty() {
        println!("description: {}", m.description);
    }
    // The checks that need no inputs from the plugin; each connector's own tests run the
    // full suite with its working config and queries.
    let module = plugboard_api::ffi::Module::load(&plugin.path).map_err(anyhow::Error::msg)?;
    let report = plugboard_api::conformance::run_basic(module);
    print!("{report}");
    let failed = report.checks.iter().filter(|c| c.outcome.is_err()).count();
    if failed > 0 {
        bail!(
            "{} failed {failed} conformance check{}",
            m.name,
            if failed == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

fn list_connections(host: &Host) -> anyhow::Result<()> {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["connection", "plugin", "settings"]);
    for c in host.describe_connections() {
        let settings = c
            .table
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join("\n");
        let plugin = match c.plugin {
            Ok(p) => p,
            Err(e) => format!("none: {e}"),
        };
        table.add_row([c.name, plugin, settings]);
    }
    println!("{table}");
    let files = host.secrets_files();
    if files.is_empty() {
        println!("no secrets file found");
    } else {
        let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        println!("from {}", shown.join(" < "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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

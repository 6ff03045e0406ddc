//! The commands: `query`/`read`, `exec`, `plugins`, `connections`, `cache`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::exit::usage;
use super::params::{connect, option_value, parse_param};
use super::progress::Progress;
use super::{CacheArgs, DescribeArgs, ExecArgs, OutputArgs, ReadArgs, TablesArgs};
use crate::Host;
use crate::export::{self as output, Format};

/// The disk tier as the environment configures it; `cache` commands need no plugins.
pub(super) fn disk_cache() -> anyhow::Result<crate::DiskCache> {
    let dir = crate::disk::default_dir()
        .context("cannot tell where the cache is: set PLUGBOARD_CACHE_DIR or HOME")?;
    let max = crate::disk::default_max_bytes().map_err(anyhow::Error::msg)?;
    crate::DiskCache::open(dir, max).map_err(|e| anyhow::anyhow!("cache: {e}"))
}

/// The Redis tier as the environment and `plugins.toml`'s `[cache]` table configure it,
/// if they do (`plugins`: `--plugins`, else `$PLUGBOARD_PLUGINS`, else `./plugins.toml`).
pub(super) fn redis_cache(
    plugins: Option<&std::path::Path>,
) -> anyhow::Result<Option<crate::cache::RedisTier>> {
    let path = plugins.map(PathBuf::from).or_else(|| {
        std::env::var_os(crate::PLUGINS_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let file = match path {
        Some(p) => Some(crate::config::PluginsFile::read(&p)?),
        None => {
            let default = PathBuf::from("plugins.toml");
            default
                .is_file()
                .then(|| crate::config::PluginsFile::read(&default))
                .transpose()?
        }
    };
    crate::cache::RedisConfig::over_file(file.and_then(|f| f.redis))
        .and_then(|c| c.map(crate::cache::RedisTier::new).transpose())
        .map_err(anyhow::Error::msg)
}

/// A tier's usage by connection, with a total row whose size cell is `total_size`.
fn usage_table<'a>(
    header: &str,
    connections: impl IntoIterator<Item = (&'a String, &'a crate::cache::Usage)>,
    total: &crate::cache::Usage,
    total_size: String,
) -> comfy_table::Table {
    use crate::disk::show_bytes;
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([header, "entries", "size"]);
    for (name, usage) in connections {
        table.add_row([
            name.clone(),
            usage.entries.to_string(),
            show_bytes(usage.bytes),
        ]);
    }
    table.add_row(["total".to_owned(), total.entries.to_string(), total_size]);
    for column in 1..3 {
        if let Some(c) = table.column_mut(column) {
            c.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    table
}

fn print_redis_stats(redis: &crate::cache::RedisTier) {
    let stats = redis.stats();
    if !stats.reachable {
        println!(
            "redis {} (prefix {:?}): not reachable",
            stats.server, stats.prefix
        );
        return;
    }
    let table = usage_table(
        "connection (redis)",
        &stats.connections,
        &stats.total,
        crate::disk::show_bytes(stats.total.bytes),
    );
    println!("{table}");
    println!("in redis {} (prefix {:?})", stats.server, stats.prefix);
}

pub(super) fn cache_stats(
    disk: &crate::DiskCache,
    redis: Option<&crate::cache::RedisTier>,
) -> anyhow::Result<()> {
    if let Some(r) = redis {
        print_redis_stats(r);
    }
    use crate::disk::show_bytes;
    let stats = disk.stats();
    let table = usage_table(
        "connection",
        &stats.connections,
        &stats.total,
        format!(
            "{} of {}",
            show_bytes(stats.total.bytes),
            show_bytes(stats.max_bytes)
        ),
    );
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

pub(super) fn cache_clear(
    disk: &crate::DiskCache,
    redis: Option<&crate::cache::RedisTier>,
    connection: Option<(&crate::Host, &str)>,
) -> anyhow::Result<()> {
    let cached: Vec<String> = match connection {
        Some(_) => disk.stats().connections.into_keys().collect(),
        None => Vec::new(),
    };
    let what = match connection {
        Some((_, c)) => format!(" of {c:?}"),
        None => String::new(),
    };
    let say = |removed: &crate::cache::Removed, place: &str| {
        println!(
            "removed {} cached result{}{what} ({}) from {place}",
            removed.entries,
            if removed.entries == 1 { "" } else { "s" },
            crate::disk::show_bytes(removed.bytes),
        );
    };
    let in_redis = |r: &crate::cache::RedisTier| format!("redis {}", r.stats().server);
    let removed = match connection {
        // Through the host: it replaces the connection's generation in Redis too, and
        // removes its entries there.
        Some((host, name)) => {
            let cleared = host.clear_cache(Some(name))?;
            if let Some(r) = redis {
                say(&cleared.redis, &in_redis(r));
            }
            cleared.disk
        }
        None => {
            if let Some(r) = redis {
                say(&r.clear_all(), &in_redis(r));
            }
            disk.clear()
        }
    };
    let connection = connection.map(|(_, name)| name);
    say(&removed, &disk.dir().display().to_string());
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

/// Where a result goes and in what shape, resolved from the command line: the format
/// (from `--format`, else `--output`'s extension, else a table on a terminal and CSV in a
/// pipe) and the table's layout.
pub(super) struct Sink {
    pub format: Format,
    pub output: Option<PathBuf>,
    pub layout: output::TableLayout,
    /// Whether the result goes to a terminal.
    pub to_terminal: bool,
}

impl Sink {
    pub(super) fn from_args(args: &OutputArgs) -> anyhow::Result<Self> {
        let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
        let format = match (args.format, &args.output) {
            (Some(f), _) => f,
            (None, Some(path)) => Format::from_path(path)
                .with_context(|| {
                    format!(
                        "cannot tell the format of {} from its extension; pass --format",
                        path.display()
                    )
                })
                .map_err(usage)?,
            // Asking for a table's shape asks for a table, in a pipe too.
            (None, None) if to_terminal || args.max_rows.is_some() || args.max_width.is_some() => {
                Format::Table
            }
            (None, None) => Format::Csv,
        };
        if format.is_binary() && to_terminal {
            bail!("{format:?} output is binary: write it to a file with --output PATH, or pipe it");
        }
        if format != Format::Table && (args.max_rows.is_some() || args.max_width.is_some()) {
            return Err(usage(anyhow::anyhow!(
                "--max-rows and --max-width shape table output, not {}",
                format!("{format:?}").to_lowercase()
            )));
        }
        let default = match args.output {
            Some(_) => output::TableLayout::WHOLE,
            None => output::TableLayout::for_stdout(),
        };
        Ok(Self {
            format,
            output: args.output.clone(),
            layout: output::TableLayout {
                max_width: args.max_width.unwrap_or(default.max_width),
                max_rows: args.max_rows.unwrap_or(default.max_rows),
            },
            to_terminal,
        })
    }

    /// Runs `read` and writes its result: batch by batch where the format allows (a
    /// table keeps only the rows it shows), atomically into `--output`.
    pub(super) fn emit(&self, read: crate::Read<'_>, progress: Progress) -> anyhow::Result<()> {
        let format = self.format;
        if format == Format::Table {
            let mut stream = read.stream()?;
            let schema = stream.schema().clone();
            let batches = counted(&mut stream, &progress);
            let table = output::table_of_stream(batches, &schema, self.layout)?;
            let elapsed = progress.elapsed();
            progress.finish();
            return match &self.output {
                Some(path) => Ok(output::write_text_file(&table.render(None), path)?),
                None => {
                    let text = table.render(Some(elapsed));
                    let stdout = std::io::stdout();
                    let mut out = stdout.lock();
                    writeln!(out, "{text}")
                        .and_then(|()| out.flush())
                        .context("writing to standard output")
                }
            };
        }
        if format.streams() {
            let mut stream = read.stream()?;
            let schema = stream.schema().clone();
            let batches = counted(&mut stream, &progress);
            return match &self.output {
                Some(path) => output::write_stream_file(batches, &schema, format, path)
                    .map(drop)
                    .map_err(Into::into),
                None => {
                    let stdout = std::io::stdout();
                    let mut out = std::io::BufWriter::new(stdout.lock());
                    output::write_stream(batches, &schema, format, &mut out)?;
                    out.flush().context("writing to standard output")
                }
            };
        }
        let (df, _) = read.fetch_shared()?;
        progress.batch(&df);
        progress.finish();
        self.write_frame(&df)
    }

    /// Writes a table already in hand.
    pub(super) fn write_frame(&self, df: &polars::prelude::DataFrame) -> anyhow::Result<()> {
        match (&self.output, self.format) {
            (Some(path), Format::Table) => Ok(output::write_text_file(
                &output::render_table(df, self.layout)?,
                path,
            )?),
            (Some(path), format) => Ok(output::write_file(df, format, path)?),
            (None, format) => {
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                match format {
                    Format::Table => writeln!(out, "{}", output::render_table(df, self.layout)?)?,
                    format => output::write(df, format, &mut out)?,
                }
                out.flush().context("writing to standard output")
            }
        }
    }
}

/// `--ttl` and `--refresh` applied to a read.
fn with_cache<'c>(mut read: crate::Read<'c>, args: &CacheArgs) -> anyhow::Result<crate::Read<'c>> {
    if let Some(ttl) = &args.ttl {
        let ttl = crate::duration::parse(ttl).map_err(|e| usage(anyhow::anyhow!("--ttl: {e}")))?;
        read = read.ttl(ttl);
    }
    Ok(read.refresh(args.refresh))
}

/// `query` and `read`; `(quiet, verbose)` decide whether progress shows.
pub(super) fn read(
    host: &Host,
    args: &ReadArgs,
    (quiet, verbose): (bool, u8),
) -> anyhow::Result<()> {
    let sink = Sink::from_args(&args.out)?;
    let params = args
        .param
        .iter()
        .map(|p| parse_param(p))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(usage)?;
    let query = &query_text(args.query.as_deref(), args.file.as_deref())?;
    let show = Progress::wanted(quiet, verbose, sink.to_terminal && sink.format.streams());
    let progress = Progress::start(format!("reading {:?}", args.conn.connection), show);
    let conn = connect(host, &args.conn)?;
    let mut read = with_cache(conn.query(query).params(params), &args.cache)?;
    if let Some(n) = args.limit {
        read = read.limit(n);
    }
    for option in &args.option {
        let (key, value) = option
            .split_once('=')
            .with_context(|| format!("--option {option:?}: expected KEY=VALUE"))
            .map_err(usage)?;
        read = read.option(key.trim(), option_value(value));
    }
    sink.emit(read, progress)
}

/// `tables CONN [PATTERN]`.
pub(super) fn tables(
    host: &Host,
    args: &TablesArgs,
    (quiet, verbose): (bool, u8),
) -> anyhow::Result<()> {
    let sink = Sink::from_args(&args.out)?;
    let progress = Progress::start(
        format!("listing the tables of {:?}", args.conn.connection),
        Progress::wanted(quiet, verbose, false),
    );
    let conn = connect(host, &args.conn)?;
    let (df, _) = with_cache(conn.tables(), &args.cache)?.fetch_shared()?;
    progress.finish();
    let df = match &args.pattern {
        Some(pattern) => crate::client::catalog::matching(&df, pattern)?,
        None => df.as_ref().clone(),
    };
    let df = match sink.format {
        Format::Table => crate::client::catalog::for_display(df),
        _ => df,
    };
    sink.write_frame(&df)
}

/// `describe CONN TABLE`; an unknown table's error names the closest table there is.
pub(super) fn describe(
    host: &Host,
    args: &DescribeArgs,
    (quiet, verbose): (bool, u8),
) -> anyhow::Result<()> {
    let sink = Sink::from_args(&args.out)?;
    let progress = Progress::start(
        format!("describing {:?}", args.table),
        Progress::wanted(quiet, verbose, false),
    );
    let conn = connect(host, &args.conn)?;
    let described = with_cache(conn.describe(&args.table), &args.cache)?.fetch_shared();
    progress.finish();
    let df = match described {
        Ok((df, _)) => df,
        Err(e) => {
            return Err(crate::client::catalog::with_suggestion(&conn, &args.table, e).into());
        }
    };
    sink.write_frame(&df)
}

/// The batches of `stream`, each counted by `progress` as it passes.
fn counted<'a>(
    stream: &'a mut crate::Stream,
    progress: &'a Progress,
) -> impl Iterator<Item = crate::Result<polars::prelude::DataFrame>> + 'a {
    stream.inspect(|batch| {
        if let Ok(df) = batch {
            progress.batch(df);
        }
    })
}

/// The most a query file (or standard input) may hold: `-f /dev/zero` is an error, not a
/// process that reads until memory runs out.
const MAX_QUERY_BYTES: u64 = 16 << 20;

/// The text of `path` (`None`: standard input), at most [`MAX_QUERY_BYTES`] of UTF-8; the
/// errors name it, after `in_` (`the query in x.sql is not UTF-8 text`) or `from` (`cannot
/// read the query from x.sql`).
pub(super) fn read_text(
    path: Option<&std::path::Path>,
    in_: &str,
    from: &str,
) -> anyhow::Result<String> {
    let name = path.map_or_else(|| "standard input".to_owned(), |p| p.display().to_string());
    let read = match path {
        Some(p) => crate::util::read_at_most(p, MAX_QUERY_BYTES),
        None => crate::util::read_at_most_from(std::io::stdin().lock(), MAX_QUERY_BYTES),
    };
    let Some(bytes) = read.with_context(|| format!("cannot read {from}{name}"))? else {
        bail!(
            "{in_}{name} is longer than {}; is it the right file?",
            crate::disk::show_bytes(MAX_QUERY_BYTES)
        );
    };
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{in_}{name} is not UTF-8 text (bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The query: the argument itself, or the text of `--file` (`-`, or a `-` argument, reads
/// standard input), without the whitespace around it.
fn query_text(arg: Option<&str>, file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let path = match (arg, file) {
        (Some(q), None) if q != "-" => return Ok(q.to_owned()),
        (Some(_), None) => None,
        (None, Some(p)) if p.as_os_str() == "-" => None,
        (None, Some(p)) => Some(p),
        (None, None) | (Some(_), Some(_)) => bail!("give the query as an argument or --file"),
    };
    let text = read_text(path, "the query in ", "the query from ")?;
    let name = path.map_or_else(|| "standard input".to_owned(), |p| p.display().to_string());
    match text.trim() {
        "" => bail!("no query in {name}: it is empty"),
        q => Ok(q.to_owned()),
    }
}

pub(super) fn exec(host: &Host, args: &ExecArgs) -> anyhow::Result<()> {
    let conn = connect(host, &args.conn)?;
    let mut statements = args.statements.iter();
    let first = statements.next().context("no statement given")?;
    let mut exec = conn.execute(first.as_str());
    for s in statements {
        exec = exec.statement(s.as_str());
    }
    for p in &args.param {
        let (name, value) = parse_param(p).map_err(usage)?;
        exec = exec.param(&name, value);
    }
    let n = exec.run()?;
    println!("{n} row{} affected", if n == 1 { "" } else { "s" });
    Ok(())
}

pub(super) fn list_plugins(host: &Host) -> anyhow::Result<()> {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "plugin",
        "version",
        "api",
        "kinds",
        "schemes",
        "isolation",
        "path",
    ]);
    for p in host.plugins() {
        table.add_row([
            p.manifest.name.clone(),
            p.manifest.version.clone(),
            // The plugboard-api it was built against; "(inferred)" before 1.4 recorded it.
            p.api.to_string(),
            p.manifest.kinds.join(", "),
            p.manifest.schemes.join(", "),
            // `process`: in a worker process of its own; `none`: in this one.
            p.isolation.to_string(),
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

pub(super) fn pin_plugins(path: Option<&std::path::Path>) -> anyhow::Result<()> {
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

pub(super) fn check_plugin(path: &std::path::Path, isolated: bool) -> anyhow::Result<()> {
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
    let report = if isolated {
        crate::conformance_isolated_basic(&plugin.path, None)?
    } else {
        let module = plugboard_api::ffi::Module::load(&plugin.path).map_err(anyhow::Error::msg)?;
        plugboard_api::conformance::run_basic(module)
    };
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

pub(super) fn list_connections(host: &Host) -> anyhow::Result<()> {
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

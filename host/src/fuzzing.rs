//! Fuzz target bodies (issue 13, "Trust"): no input a user can type, no value a source
//! returns and no plugin error may end the host with a panic, a signal or an abort.
//!
//! Each function takes arbitrary bytes, decodes them into what the host reads from users
//! and plugins, and runs the host's own code on it; it may only fail by returning, so a
//! panic is a finding. `fuzz/` runs them under libFuzzer on nightly (see the README's
//! "Fuzzing"); `tests/tests/fuzz_corpus.rs` replays the kept corpus and every crash found
//! through them on stable, in `cargo test`. The decoders accept every input: bytes that
//! run out read as zeros.
//!
//! Not part of the library's API (hidden from its docs), and it reads and writes only
//! temporary folders of its own.
#![doc(hidden)]

use std::cell::RefCell;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use plugboard_api::{ConfigKey, KeyType, Manifest};
use polars::prelude::{Column, DataFrame, PlSmallStr, Series};
use polars_arrow::array::{
    Array, BinaryArray, BinaryViewArray, BooleanArray, FixedSizeBinaryArray, ListArray, NullArray,
    PrimitiveArray, StructArray, Utf8Array, Utf8ViewArray,
};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::datatypes::{ArrowDataType, Field as ArrowField, TimeUnit};
use polars_arrow::offset::Offsets;
use polars_arrow::types::NativeType;

use crate::config::PluginsFile;
use crate::export::{self as output, Format};
use crate::secrets::{self, EnvOverrides, Secrets};
use crate::sys::fuzz_stream::{ArraySpec, BufferSpec, SchemaSpec, Step, StreamSpec};

/// A fuzz target's body.
pub type Body = fn(&[u8]);

/// Every body, by the name of its fuzz target (`fuzz/fuzz_targets/<name>.rs`) and corpus
/// folder (`fuzz/corpus/<name>/`).
pub const TARGETS: &[(&str, Body)] = &[
    ("secrets_toml", secrets_toml),
    ("plugins_toml", plugins_toml),
    ("env_overrides", env_overrides),
    ("cli_params", cli_params),
    ("disk_entry", disk_entry),
    ("redis_entry", redis_entry),
    ("output_formats", output_formats),
    ("arrow_import", arrow_import),
];

/// For a fuzz target whose body imports through the host's `catch_unwind` guards
/// (`arrow_import`, `disk_entry`, `redis_entry`): replaces libfuzzer-sys's panic hook, which aborts before
/// any `catch_unwind` runs, with one that prints nothing. A panic the host guards is then
/// caught as in production; any other still unwinds to libfuzzer-sys's own `catch_unwind`,
/// which aborts and saves the input. Call it first in the target; only the first call acts.
pub fn let_guarded_panics_unwind() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

// ----------------------------------------------------------------------------------------
// Configuration: the secrets file, plugins.toml, the environment, the command line.

/// A secrets file: parsed, merged, and every connection resolved as the host resolves it
/// (precedence, host keys, schema checks, redaction, listing).
pub fn secrets_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parsed = Secrets::default();
    if parsed.merge_text(&text, Path::new("secrets.toml")).is_err() {
        return;
    }
    // The same file as the user file under a project file: merged per connection and key.
    let _ = parsed.merge_text(&text, Path::new("user/secrets.toml"));
    let env = EnvOverrides::default();
    let names: Vec<String> = parsed.names().map(str::to_owned).collect();
    for name in &names {
        if let Some(table) = secrets::effective_table(name, &parsed, &env, &[], declared) {
            connection_table(&table, &text);
        }
    }
    // Through a real host (no plugins): `plugboard connections list`, and opening each.
    let dir = scratch();
    let file = dir.join("secrets.toml");
    if std::fs::write(&file, text.as_bytes()).is_err() {
        return;
    }
    let host = crate::Host::builder()
        .plugins_file(empty_plugins_file())
        .secrets_file(&file)
        .project_dir(&dir)
        .user_config_dir(None)
        .use_env(false)
        .cache_dir(None)
        .build();
    if let Ok(host) = host {
        for info in host.describe_connections() {
            let _ = toml::to_string(&info.table);
        }
        for name in host.connection_names() {
            if let Err(e) = host.connection(&name) {
                let _ = crate::error::one_line(&e.to_string());
            }
        }
    }
}

/// What the host does with one connection's table before `connect`.
/// `message` stands for free text the host prints (an error, a plugin's log record).
fn connection_table(table: &toml::Table, message: &str) {
    for key in ["ttl", "connection_ttl", "retry_backoff"] {
        if let Some(v) = table.get(key) {
            let _ = crate::duration::from_toml(v);
        }
    }
    let mut plugin_table = table.clone();
    for k in crate::RESERVED_KEYS {
        plugin_table.remove(*k);
    }
    for manifest in manifests() {
        let redactor = crate::config::schema::redactor(manifest, table);
        let _ = crate::config::schema::check(manifest, &plugin_table);
        let shown = redactor.redact_table(table);
        let _ = toml::to_string(&shown);
        if let Ok(text) = toml::to_string(table) {
            let _ = redactor.redact(&text);
        }
        let _ = redactor.redact(message);
    }
    if let Ok(json) = serde_json::to_value(&plugin_table) {
        let _ = crate::util::canonical_json(&json);
    }
}

/// The type the typed manifest declares for a key (what `--set` and environment values
/// are read as once the plugin is known).
fn declared(path: &[String]) -> Option<KeyType> {
    let [key] = path else { return None };
    manifests()[1]
        .config
        .iter()
        .find(|k| &k.name == key)
        .map(|k| k.kind)
}

/// Config schemas like the connectors': none, and one with every key type.
fn manifests() -> &'static [Manifest] {
    static MANIFESTS: std::sync::OnceLock<Vec<Manifest>> = std::sync::OnceLock::new();
    MANIFESTS.get_or_init(|| {
        vec![
            Manifest::new("free", "1"),
            Manifest::new("typed", "1")
                .key(ConfigKey::string("url").describe("where it is"))
                .key(ConfigKey::string("mode").required().describe("ro or rw"))
                .key(ConfigKey::string("password").secret())
                .key(ConfigKey::new("port", KeyType::Integer))
                .key(ConfigKey::new("ratio", KeyType::Number))
                .key(ConfigKey::new("read_only", KeyType::Boolean))
                .key(ConfigKey::new("timeout", KeyType::Duration))
                .key(ConfigKey::new("query", KeyType::Table))
                .key(ConfigKey::new("hosts", KeyType::Array))
                .key(ConfigKey::new("extra", KeyType::Any)),
        ]
    })
}

/// A `plugins.toml`: parsed, and pinned the way `plugboard plugins pin` rewrites it, which
/// must leave a file that reads back with each library's own digest.
pub fn plugins_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let dir = scratch().join("plugins");
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let path = dir.join("plugins.toml");
    let Ok(parsed) = PluginsFile::parse(&text, &path) else {
        return;
    };
    // Pin only when every library is a plain file beside plugins.toml: those are made here,
    // and nothing else on the machine is read.
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let local = parsed.plugins.iter().all(|p| {
        p.path.parent() == Some(dir.as_path())
            && p.path
                .file_name()
                .is_some_and(|n| n != "plugins.toml" && !n.is_empty())
    });
    if !local || parsed.plugins.len() > 16 {
        return;
    }
    if std::fs::write(&path, text.as_bytes()).is_err() {
        return;
    }
    for p in &parsed.plugins {
        // Distinct contents, so that a pin written to the wrong entry shows.
        if std::fs::write(&p.path, p.path.as_os_str().as_encoded_bytes()).is_err() {
            return;
        }
    }
    let Ok(pins) = crate::config::pin(&path) else {
        return;
    };
    let Ok(again) = std::fs::read_to_string(&path) else {
        return;
    };
    let reread = PluginsFile::parse(&again, &path);
    let Ok(reread) = reread else {
        panic!(
            "`plugins pin` wrote a plugins.toml it cannot read back: {}\n--- before\n{text}\n--- after\n{again}",
            reread.err().map(|e| e.to_string()).unwrap_or_default()
        );
    };
    for (lib, digest) in &pins {
        use sha2::Digest;
        let bytes = std::fs::read(lib).unwrap_or_default();
        assert_eq!(
            *digest,
            hex::encode(sha2::Sha256::digest(&bytes)),
            "`plugins pin` reported the wrong digest for {}",
            lib.display()
        );
    }
    for p in &reread.plugins {
        if let Some(pin) = &p.sha256 {
            use sha2::Digest;
            let bytes = std::fs::read(&p.path).unwrap_or_default();
            assert_eq!(
                *pin,
                hex::encode(sha2::Sha256::digest(&bytes)),
                "`plugins pin` wrote another library's digest for {}\n--- before\n{text}\n--- after\n{again}",
                p.path.display()
            );
        }
    }
}

/// `PLUGBOARD_CONNECTIONS__<NAME>__<KEY>=VALUE` variables, one per line (`KEY=VALUE`, the
/// prefix added; a line starting with `!` is a variable name as is), over a secrets file.
pub fn env_overrides(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let vars: Vec<(String, String)> = text
        .split('\n')
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            let key = match key.strip_prefix('!') {
                Some(raw) => raw.to_owned(),
                None => format!("{}{key}", secrets::ENV_PREFIX),
            };
            Some((key, value.to_owned()))
        })
        .collect();
    for (_, value) in &vars {
        let _ = secrets::parse_value(value);
    }
    let env = EnvOverrides::from_vars(vars);
    let files = base_secrets();
    let mut names: Vec<String> = env.names().collect();
    names.extend(files.names().map(str::to_owned));
    for name in &names {
        if let Some(table) = secrets::effective_table(name, files, &env, &[], declared) {
            connection_table(&table, &text);
        }
    }
}

/// The secrets file the environment and command-line targets layer over.
const BASE_SECRETS: &str = r#"
[connections.pets_db]
url = "sqlite:///pets.db"
ttl = "10m"

[connections.warehouse]
type = "postgresql"
host = "db.example.com"
password = "hunter22"
query = { sslmode = "require" }

[connections.lake]
type = "files"
root = "s3://bucket/key"
aws_secret_access_key = "abc123secret"
"#;

fn base_secrets() -> &'static Secrets {
    static SECRETS: std::sync::OnceLock<Secrets> = std::sync::OnceLock::new();
    SECRETS.get_or_init(|| {
        let mut s = Secrets::default();
        let _ = s.merge_text(BASE_SECRETS, Path::new("base.toml"));
        s
    })
}

/// A command line: arguments separated by NUL bytes (as the kernel hands them over, none
/// can hold one), parsed as typed; and run, with `--plugins` and `--secrets` fixed to
/// files of this target's own, when the command is one that only reads them (query, read,
/// exec, connections list, plugins list): with no plugins, every one of them ends in an
/// error after the parameters, TTLs and `--set` keys are parsed.
pub fn cli_params(data: &[u8]) {
    use std::os::unix::ffi::OsStringExt;
    let args: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    for arg in &args {
        if let Some(text) = arg.to_str() {
            let _ = crate::duration::parse(text);
            let _ = crate::disk::parse_bytes(text);
            let _ = secrets::parse_value(text);
            let _ = secrets::looks_secret(text);
            let _ = text.parse::<Format>();
        }
        let _ = Format::from_path(Path::new(arg));
    }
    let typed = std::iter::once(OsString::from("plugboard")).chain(args.iter().cloned());
    if let Err(e) = crate::cli::Cli::try_parse_from(typed) {
        let _ = e.render().to_string();
    }
    let plugins = empty_plugins_file();
    let secrets_file = cli_secrets_file();
    let fixed = [
        OsString::from("plugboard"),
        OsString::from("--plugins"),
        plugins.clone().into_os_string(),
        OsString::from("--secrets"),
        secrets_file.clone().into_os_string(),
    ];
    let cli = match crate::cli::Cli::try_parse_from(fixed.into_iter().chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.render().to_string();
            return;
        }
    };
    if only_reads(&format!("{cli:?}"), &plugins, &secrets_file)
        && let Err(e) = crate::cli::run(cli)
    {
        let _ = crate::error::one_line(&format!("{e:#}"));
    }
}

/// Whether a parsed command line (its `Debug` text) still names this target's files and is
/// a command that does not write, delete or load anything.
fn only_reads(debug: &str, plugins: &Path, secrets_file: &Path) -> bool {
    let head =
        format!("Cli {{ plugins: Some({plugins:?}), secrets: Some({secrets_file:?}), verbose: ");
    let Some(rest) = debug.strip_prefix(&head) else {
        return false;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(command) = rest.strip_prefix(", command: ") else {
        return false;
    };
    [
        "Query(",
        "Read(",
        "Exec(",
        "Connections {",
        "Plugins { action: None",
        "Plugins { action: Some(List)",
    ]
    .iter()
    .any(|c| command.starts_with(c))
}

fn empty_plugins_file() -> PathBuf {
    let path = scratch().join("no-plugins.toml");
    if !path.is_file() {
        let _ = std::fs::write(&path, "# no plugins: every connection fails to find one\n");
    }
    path
}

fn cli_secrets_file() -> PathBuf {
    let path = scratch().join("cli-secrets.toml");
    if !path.is_file() {
        let _ = std::fs::write(&path, BASE_SECRETS);
    }
    path
}

thread_local! {
    /// A temporary folder per thread (the replay test runs targets on several threads).
    static SCRATCH: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

fn scratch() -> PathBuf {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = tempfile::Builder::new()
                .prefix("plugboard-fuzz-")
                .tempdir()
                .ok();
        }
        s.as_ref()
            .map_or_else(std::env::temp_dir, |d| d.path().to_path_buf())
    })
}

// ----------------------------------------------------------------------------------------
// The disk tier.

/// Offsets in an entry's header (see `disk.rs`): the fixer-ups below use them to get past
/// the checksums, which a damaged file does not get past, so that the fuzzer reaches the
/// header's other checks and the mapped IPC payload.
const H_LEN: usize = 12;
const H_CREATED: usize = 16;
const H_EXPIRES: usize = 24;
const H_PAYLOAD_LEN: usize = 32;
const H_CHECKSUM: usize = 40;
const H_KEY: usize = 64;
const H_SUM: usize = 100;
const H_FIXED: usize = 108;

/// A disk-cache entry file: the first byte says which checksums and times to fix up (bit
/// 0: the header's checksum, 1: the payload's length and checksum, 2: created now and
/// fresh for an hour), the rest is the file, read through `DiskCache::load` under its own
/// key. A hit is written out as a table and CSV, which reads every buffer.
pub fn disk_entry(data: &[u8]) {
    let (flags, file) = data.split_first().unwrap_or((&0, &[]));
    let mut entry = file.to_vec();
    fix_up_entry(&mut entry, *flags);
    let mut key = [0u8; 32];
    if let Some(k) = entry.get(H_KEY..H_KEY + 32) {
        key.copy_from_slice(k);
    }
    with_disk(|disk| {
        let path = disk
            .dir()
            .join("results-v1")
            .join(format!("{}.entry", hex::encode(key)));
        if std::fs::write(&path, &entry).is_err() {
            return;
        }
        if let Some(hit) = disk.load(&key, Duration::from_secs(3600)) {
            for format in [Format::Table, Format::Csv] {
                let _ = output::write(&hit.df, format, &mut Vec::new());
            }
        }
        let _ = std::fs::remove_file(&path);
    });
}

/// A Redis entry: a manifest and its chunks, through the checks and the decoding a hit
/// from Redis passes (see `cache::redis::fuzz_entry` for the input's layout and the flags
/// that fix up its checksums and times). A hit is written out as a table and CSV.
pub fn redis_entry(data: &[u8]) {
    if let Some(df) = crate::cache::redis::fuzz_entry(data) {
        for format in [Format::Table, Format::Csv] {
            let _ = output::write(&df, format, &mut Vec::new());
        }
    }
}

fn fix_up_entry(entry: &mut [u8], flags: u8) {
    if entry.len() < H_FIXED {
        return;
    }
    let u32_at = |e: &[u8], at: usize| {
        u32::from_le_bytes(e[at..at + 4].try_into().unwrap_or_default()) as usize
    };
    if flags & 4 != 0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        entry[H_CREATED..H_CREATED + 8].copy_from_slice(&(now - 1000).to_le_bytes());
        entry[H_EXPIRES..H_EXPIRES + 8].copy_from_slice(&(now + 3_600_000).to_le_bytes());
    }
    let header_len = u32_at(entry, H_LEN);
    if flags & 2 != 0 && header_len <= entry.len() {
        let payload = &entry[header_len..];
        let len = payload.len() as u64;
        let sum = xxhash_rust::xxh3::xxh3_128(payload);
        entry[H_PAYLOAD_LEN..H_PAYLOAD_LEN + 8].copy_from_slice(&len.to_le_bytes());
        entry[H_CHECKSUM..H_CHECKSUM + 16].copy_from_slice(&sum.to_le_bytes());
    }
    if flags & 1 != 0 && header_len >= H_FIXED && header_len <= entry.len() {
        entry[H_SUM..H_FIXED].fill(0);
        let sum = xxhash_rust::xxh3::xxh3_64(&entry[..header_len]);
        entry[H_SUM..H_FIXED].copy_from_slice(&sum.to_le_bytes());
    }
}

thread_local! {
    static DISK: RefCell<Option<crate::DiskCache>> = const { RefCell::new(None) };
}

fn with_disk(f: impl FnOnce(&crate::DiskCache)) {
    DISK.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = crate::DiskCache::open(scratch().join("cache"), 1 << 30).ok();
        }
        if let Some(disk) = d.as_ref() {
            f(disk);
        }
    });
}

// ----------------------------------------------------------------------------------------
// Output formats.

/// An arbitrary DataFrame, of columns of every Arrow type a plugin can hand over (the types
/// the loader accepts, nested too, in several chunks, sliced, with nulls), written in every
/// output format, whole and batch by batch, and stored in and loaded from the disk tier,
/// which must give back the same frame.
pub fn output_formats(data: &[u8]) {
    let mut input = Input::new(data);
    let Some(df) = frame(&mut input) else {
        return;
    };
    let batch = 1 + input.below(64);
    write_everything(&df, batch);
    disk_round_trip(&df);
}

fn write_everything(df: &DataFrame, batch: usize) {
    for format in [
        Format::Table,
        Format::Csv,
        Format::Json,
        Format::Ndjson,
        Format::Parquet,
        Format::Arrow,
    ] {
        let _ = output::write(df, format, &mut Vec::new());
    }
    // At most 8 batches: a batched Parquet writer per row is slow, not more thorough.
    let height = df.height();
    let batch = batch.max(height.div_ceil(8));
    for format in [Format::Csv, Format::Ndjson, Format::Parquet, Format::Arrow] {
        let batches = (0..height.max(1))
            .step_by(batch)
            .map(|at| Ok(df.slice(at as i64, batch)));
        let _ = output::write_stream(batches, df.schema(), format, &mut Vec::new());
    }
}

/// What the disk tier gives back for a stored frame must be that frame.
fn disk_round_trip(df: &DataFrame) {
    // One key: each store replaces the last, so the folder does not grow.
    let key = crate::cache::key::key([b"fuzz".as_slice()]);
    let ttl = Duration::from_secs(3600);
    with_disk(|disk| {
        if disk.store(&key, "fuzz", "fuzz|id", df, ttl).is_err() {
            return;
        }
        let hit = disk.load(&key, ttl);
        let Some(hit) = hit else {
            panic!("the disk tier stored a frame it then could not load: {df:?}");
        };
        assert_eq!(
            hit.df.schema(),
            df.schema(),
            "a disk hit has another schema than the frame stored"
        );
        assert_eq!(
            hit.df.height(),
            df.height(),
            "a disk hit has another height"
        );
        let text = |d: &DataFrame| {
            let mut out = Vec::new();
            output::write(d, Format::Ndjson, &mut out)
                .ok()
                .map(|()| out)
        };
        if let (Some(stored), Some(loaded)) = (text(df), text(&hit.df)) {
            assert!(
                stored == loaded,
                "a disk hit has other values than the frame stored:\n{}\n{}",
                String::from_utf8_lossy(&stored),
                String::from_utf8_lossy(&loaded)
            );
        }
    });
}

/// Past the 100 rows a table shows in full (it then shows a head and a tail).
const MAX_ROWS: usize = 120;

fn frame(input: &mut Input<'_>) -> Option<DataFrame> {
    let columns = input.below(6);
    let height = match input.below(4) {
        0 => 0,
        1 => input.below(4),
        2 => input.below(24),
        _ => input.below(MAX_ROWS + 1),
    };
    let mut names: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for i in 0..columns {
        let dtype = arrow_type(input, 0);
        // Only what the loader lets through reaches the output formats.
        if crate::sys::loader::refuses(&dtype) {
            return None;
        }
        let mut name = String::from_utf8_lossy(input.short(6)).into_owned();
        if names.contains(&name) {
            name = format!("{name}_{i}");
        }
        names.push(name.clone());
        let chunks = 1 + input.below(3);
        let mut cuts: Vec<usize> = (1..chunks).map(|_| input.below(height + 1)).collect();
        cuts.sort_unstable();
        cuts.push(height);
        let mut start = 0;
        let mut arrays = Vec::new();
        for cut in cuts {
            let a = array(input, &dtype, cut - start)?;
            // Nor a decimal with more digits than its precision (the loader's value check).
            if crate::sys::loader::decimal_overflow(a.as_ref()).is_some() {
                return None;
            }
            arrays.push(a);
            start = cut;
        }
        // What the loader does with an imported column (`to_column`).
        let series = Series::try_from((PlSmallStr::from(name), arrays)).ok()?;
        out.push(Column::from(series));
    }
    DataFrame::new(height, out).ok()
}

fn unit(input: &mut Input<'_>) -> TimeUnit {
    [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ][input.below(4)]
}

fn time_zone(input: &mut Input<'_>) -> Option<PlSmallStr> {
    match input.below(7) {
        0 | 1 => None,
        2 => Some("UTC".into()),
        3 => Some("Europe/Amsterdam".into()),
        4 => Some("+05:30".into()),
        5 => Some("".into()),
        _ => Some(String::from_utf8_lossy(input.short(12)).as_ref().into()),
    }
}

/// An Arrow type the loader lets into a DataFrame (see `loader::unsupported`), as the C
/// interface can express it (so no `Time32` in microseconds).
fn arrow_type(input: &mut Input<'_>, depth: usize) -> ArrowDataType {
    use ArrowDataType as A;
    let choices = if depth < 3 { 29 } else { 26 };
    match input.below(choices) {
        0 => A::Null,
        1 => A::Boolean,
        2 => A::Int8,
        3 => A::Int16,
        4 => A::Int32,
        5 => A::Int64,
        6 => A::UInt8,
        7 => A::UInt16,
        8 => A::UInt32,
        9 => A::UInt64,
        10 => A::Float32,
        11 => A::Float64,
        12 => A::Utf8,
        13 => A::LargeUtf8,
        14 => A::Utf8View,
        15 => A::Binary,
        16 => A::LargeBinary,
        17 => A::BinaryView,
        18 => A::FixedSizeBinary(1 + input.below(4)),
        19 => A::Date32,
        20 => A::Date64,
        21 => A::Timestamp(unit(input), time_zone(input)),
        22 => A::Duration(unit(input)),
        23 => A::Time32(if input.bool() {
            TimeUnit::Second
        } else {
            TimeUnit::Millisecond
        }),
        24 => A::Time64(if input.bool() {
            TimeUnit::Microsecond
        } else {
            TimeUnit::Nanosecond
        }),
        25 => A::Decimal(input.below(39), input.below(41)),
        26 => A::List(Box::new(field(input, depth))),
        27 => A::LargeList(Box::new(field(input, depth))),
        _ => A::Struct(
            (0..1 + input.below(3))
                .map(|_| field(input, depth))
                .collect(),
        ),
    }
}

fn field(input: &mut Input<'_>, depth: usize) -> ArrowField {
    let name = String::from_utf8_lossy(input.short(4)).into_owned();
    let dtype = arrow_type(input, depth + 1);
    ArrowField::new(name.into(), dtype, !input.byte().is_multiple_of(4))
}

fn validity(input: &mut Input<'_>, len: usize) -> Option<Bitmap> {
    (input.byte().is_multiple_of(3)).then(|| Bitmap::from_u8_vec(input.bytes(len.div_ceil(8)), len))
}

fn primitive<T: NativeType>(
    input: &mut Input<'_>,
    dtype: &ArrowDataType,
    len: usize,
) -> Option<Box<dyn Array>> {
    let size = std::mem::size_of::<T>();
    let bytes = input.bytes(len * size);
    let values: Vec<T> = bytes
        .chunks_exact(size)
        .map(|c| Some(T::from_le_bytes(c.try_into().ok()?)))
        .collect::<Option<Vec<T>>>()?;
    let validity = validity(input, len);
    PrimitiveArray::try_new(dtype.clone(), values.into(), validity)
        .ok()
        .map(|a| Box::new(a) as Box<dyn Array>)
}

/// Values as text or bytes, `None` for nulls.
fn values(input: &mut Input<'_>, len: usize) -> Vec<Option<Vec<u8>>> {
    let nulls = input.byte();
    (0..len)
        .map(|i| {
            let null = nulls != 0 && input.byte().is_multiple_of(nulls % 7 + 2);
            let long = i % 5 == 4 && input.byte().is_multiple_of(4);
            let n = if long {
                13 + input.below(40)
            } else {
                input.below(8)
            };
            (!null).then(|| input.take(n).to_vec())
        })
        .collect()
}

fn text(values: Vec<Option<Vec<u8>>>) -> Vec<Option<String>> {
    values
        .into_iter()
        .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
        .collect()
}

/// A valid array of `dtype`, `len` long; sometimes a slice of a longer one.
fn array(input: &mut Input<'_>, dtype: &ArrowDataType, len: usize) -> Option<Box<dyn Array>> {
    use ArrowDataType as A;
    let extra = if input.byte().is_multiple_of(4) {
        input.below(3)
    } else {
        0
    };
    let full = len + extra;
    let a: Box<dyn Array> = match dtype {
        A::Null => Box::new(NullArray::new(dtype.clone(), full)),
        A::Boolean => {
            let values = Bitmap::from_u8_vec(input.bytes(full.div_ceil(8)), full);
            let validity = validity(input, full);
            Box::new(BooleanArray::try_new(dtype.clone(), values, validity).ok()?)
        }
        A::Int8 => primitive::<i8>(input, dtype, full)?,
        A::Int16 => primitive::<i16>(input, dtype, full)?,
        A::Int32 | A::Date32 | A::Time32(_) => primitive::<i32>(input, dtype, full)?,
        A::Int64 | A::Date64 | A::Timestamp(..) | A::Duration(_) | A::Time64(_) => {
            primitive::<i64>(input, dtype, full)?
        }
        A::UInt8 => primitive::<u8>(input, dtype, full)?,
        A::UInt16 => primitive::<u16>(input, dtype, full)?,
        A::UInt32 => primitive::<u32>(input, dtype, full)?,
        A::UInt64 => primitive::<u64>(input, dtype, full)?,
        A::Float32 => primitive::<f32>(input, dtype, full)?,
        A::Float64 => primitive::<f64>(input, dtype, full)?,
        A::Decimal(..) => primitive::<i128>(input, dtype, full)?,
        A::Utf8 => Box::new(Utf8Array::<i32>::from(text(values(input, full)))),
        A::LargeUtf8 => Box::new(Utf8Array::<i64>::from(text(values(input, full)))),
        A::Utf8View => Box::new(Utf8ViewArray::from_slice(text(values(input, full)))),
        A::Binary => Box::new(BinaryArray::<i32>::from(values(input, full))),
        A::LargeBinary => Box::new(BinaryArray::<i64>::from(values(input, full))),
        A::BinaryView => Box::new(BinaryViewArray::from_slice(values(input, full))),
        A::FixedSizeBinary(size) => {
            let bytes = input.bytes(full * size);
            let validity = validity(input, full);
            Box::new(FixedSizeBinaryArray::try_new(dtype.clone(), bytes.into(), validity).ok()?)
        }
        A::List(f) | A::LargeList(f) => {
            let lengths: Vec<usize> = (0..full).map(|_| input.below(4)).collect();
            let total = lengths.iter().sum();
            let child = array(input, &f.dtype, total)?;
            let validity = validity(input, full);
            if matches!(dtype, A::List(_)) {
                let offsets = Offsets::<i32>::try_from_lengths(lengths.into_iter()).ok()?;
                Box::new(
                    ListArray::<i32>::try_new(dtype.clone(), offsets.into(), child, validity)
                        .ok()?,
                )
            } else {
                let offsets = Offsets::<i64>::try_from_lengths(lengths.into_iter()).ok()?;
                Box::new(
                    ListArray::<i64>::try_new(dtype.clone(), offsets.into(), child, validity)
                        .ok()?,
                )
            }
        }
        A::Struct(fields) => {
            let children = fields
                .iter()
                .map(|f| array(input, &f.dtype, full))
                .collect::<Option<Vec<_>>>()?;
            let validity = validity(input, full);
            Box::new(StructArray::try_new(dtype.clone(), full, children, validity).ok()?)
        }
        _ => return None,
    };
    Some(if extra > 0 { a.sliced(extra, len) } else { a })
}

// ----------------------------------------------------------------------------------------
// The Arrow C stream import.

/// A plugin's Arrow C stream, made by hand from the bytes (see `sys::fuzz_stream` for what
/// it may and may not lie about), imported as a read imports it, checked, and written in
/// every output format (which reads every buffer the import let through).
pub fn arrow_import(data: &[u8]) {
    let mut input = Input::new(data);
    let Ok(frames) = import(&mut input) else {
        return;
    };
    for df in &frames {
        check_imported(df);
        write_everything(df, 1 + input.below(8));
    }
}

/// Decodes a stream from `input` and imports it.
fn import(input: &mut Input<'_>) -> Result<Vec<DataFrame>, plugboard_api::PluginError> {
    let (stream, by_batch) = stream_spec(input);
    crate::sys::fuzz_stream::import(stream, by_batch)
}

/// What an `arrow_import` input hands the host: the stream it describes, for whoever
/// investigates a crash.
pub fn describe_arrow_import(data: &[u8]) -> String {
    let (stream, by_batch) = stream_spec(&mut Input::new(data));
    format!("imported by batch: {by_batch}\n{stream:#?}")
}

fn stream_spec(input: &mut Input<'_>) -> (StreamSpec, bool) {
    let flags = input.byte();
    let by_batch = flags & 1 != 0;
    let (spec, table) = if flags & 0xC0 == 0xC0 {
        (raw_schema(input), None)
    } else {
        let table = if input.byte().is_multiple_of(8) {
            stream_type(input, 1)
        } else {
            CType::Struct(
                (0..input.below(5))
                    .map(|_| (child_name(input), stream_type(input, 1)))
                    .collect(),
            )
        };
        (schema_spec(input, &table, true), Some(table))
    };
    let schema = if flags & 2 != 0 {
        Err((1 + input.below(100) as i32, error_message(input)))
    } else {
        Ok(spec)
    };
    let mut steps = Vec::new();
    for _ in 0..input.below(5) {
        steps.push(match (input.below(8), &table) {
            (0, _) | (_, None) => Step::Fail(1 + input.below(100) as i32, error_message(input)),
            (1, _) => Step::End,
            (_, Some(t)) => Step::Batch(array_spec(input, t, None)),
        });
    }
    let stream = StreamSpec {
        schema,
        steps,
        no_get_schema: flags & 0x3C == 0x04,
        no_get_next: flags & 0x3C == 0x08,
        no_get_last_error: flags & 0x10 != 0,
        released: flags & 0x3C == 0x0C,
    };
    (stream, by_batch)
}

/// What the import let through must be what polars can trust: UTF-8 text, and null counts
/// that match the validity bits.
fn check_imported(df: &DataFrame) {
    for column in df.columns() {
        let series = column.as_materialized_series();
        for chunk in series.chunks() {
            check_array(chunk.as_ref(), series.name());
        }
    }
}

fn check_array(array: &dyn Array, name: &str) {
    if let Some(v) = array.validity() {
        let counted = v.iter().filter(|b| !*b).count();
        assert_eq!(
            v.unset_bits(),
            counted,
            "column {name:?}: the imported null count is not the number of nulls"
        );
        assert!(v.len() == array.len(), "column {name:?}: validity length");
    }
    let any = array.as_any();
    if let Some(a) = any.downcast_ref::<Utf8ViewArray>() {
        for s in a.values_iter() {
            assert!(
                std::str::from_utf8(s.as_bytes()).is_ok(),
                "column {name:?}: imported text is not UTF-8"
            );
        }
    } else if let Some(a) = any.downcast_ref::<Utf8Array<i64>>() {
        for s in a.values_iter() {
            assert!(
                std::str::from_utf8(s.as_bytes()).is_ok(),
                "column {name:?}: imported text is not UTF-8"
            );
        }
    } else if let Some(a) = any.downcast_ref::<StructArray>() {
        for child in a.values() {
            check_array(child.as_ref(), name);
        }
    } else if let Some(a) = any.downcast_ref::<ListArray<i64>>() {
        check_array(a.values().as_ref(), name);
    }
}

/// A column type as the C interface spells it, and how its arrays are laid out.
#[derive(Debug, Clone)]
enum CType {
    Null,
    Bool,
    /// Fixed-width values: the format, and bytes per value.
    Fixed(String, usize),
    /// Offsets and data: `u`, `U`, `z`, `Z`.
    Var {
        format: &'static str,
        large: bool,
    },
    /// Views: `vu`, `vz`.
    View {
        format: &'static str,
    },
    List {
        large: bool,
        child: Box<(Vec<u8>, CType)>,
    },
    Struct(Vec<(Vec<u8>, CType)>),
    /// A type the loader must refuse at the schema (dictionary, map, union, …): no arrays.
    Other {
        format: String,
        children: Vec<(Vec<u8>, CType)>,
        dictionary: Option<Box<CType>>,
    },
}

fn stream_type(input: &mut Input<'_>, depth: usize) -> CType {
    let choices = if depth < 4 { 30 } else { 24 };
    let unit = |input: &mut Input<'_>| ["s", "m", "u", "n"][input.below(4)];
    match input.below(choices) {
        0 => CType::Null,
        1 => CType::Bool,
        n @ 2..=11 => {
            let (f, w) = [
                ("c", 1),
                ("C", 1),
                ("s", 2),
                ("S", 2),
                ("i", 4),
                ("I", 4),
                ("l", 8),
                ("L", 8),
                ("f", 4),
                ("g", 8),
            ][n - 2];
            CType::Fixed(f.to_owned(), w)
        }
        12 => CType::Fixed("tdD".to_owned(), 4),
        13 => CType::Fixed("tdm".to_owned(), 8),
        14 => {
            let tz = match input.below(5) {
                0 => String::new(),
                1 => "UTC".to_owned(),
                2 => "America/New_York".to_owned(),
                3 => "+01:00".to_owned(),
                _ => String::from_utf8_lossy(input.short(10)).into_owned(),
            };
            CType::Fixed(format!("ts{}:{tz}", unit(input)), 8)
        }
        15 => CType::Fixed(format!("tD{}", unit(input)), 8),
        16 => CType::Fixed(if input.bool() { "tts" } else { "ttm" }.to_owned(), 4),
        17 => CType::Fixed(if input.bool() { "ttu" } else { "ttn" }.to_owned(), 8),
        18 => {
            let (p, s) = (input.below(42), input.below(44));
            let format = match input.below(4) {
                0 => format!("d:{p},{s},128"),
                1 => format!("d:{p},-{s}"),
                _ => format!("d:{p},{s}"),
            };
            CType::Fixed(format, 16)
        }
        19 => {
            let size = input.below(6);
            CType::Fixed(format!("w:{size}"), size)
        }
        20 => CType::Var {
            format: ["u", "z"][input.below(2)],
            large: false,
        },
        21 => CType::Var {
            format: ["U", "Z"][input.below(2)],
            large: true,
        },
        22 => CType::View {
            format: ["vu", "vz"][input.below(2)],
        },
        23 => CType::Other {
            format: [
                "e",
                "tiM",
                "tiD",
                "tin",
                "_pli128",
                "d:40,2,256",
                "ttu:x",
                "n:",
                "+",
            ][input.below(9)]
            .to_owned(),
            children: Vec::new(),
            dictionary: None,
        },
        24 | 25 => CType::List {
            large: input.bool(),
            child: Box::new((child_name(input), stream_type(input, depth + 1))),
        },
        26 | 27 => CType::Struct(
            (0..input.below(4))
                .map(|_| (child_name(input), stream_type(input, depth + 1)))
                .collect(),
        ),
        28 => {
            let keys = ["c", "s", "i", "l", "C", "I"][input.below(6)];
            CType::Other {
                format: keys.to_owned(),
                children: Vec::new(),
                dictionary: Some(Box::new(stream_type(input, depth + 1))),
            }
        }
        _ => {
            let format = ["+m", "+w:2", "+us:0,1", "+ud:0", "+r", "+vl", "+vL"][input.below(7)];
            CType::Other {
                format: format.to_owned(),
                children: (0..input.below(3))
                    .map(|_| (child_name(input), stream_type(input, depth + 1)))
                    .collect(),
                dictionary: None,
            }
        }
    }
}

fn child_name(input: &mut Input<'_>) -> Vec<u8> {
    match input.below(8) {
        0 => input.short(6).to_vec(),
        1 => Vec::new(),
        n => vec![b'a' + n as u8],
    }
}

fn error_message(input: &mut Input<'_>) -> Option<Vec<u8>> {
    match input.below(6) {
        0 => None,
        1 => Some(b"query error: no such table: t".to_vec()),
        2 => Some(b"External error: connect error (retryable): reset".to_vec()),
        3 => Some(b"plugin panicked: boom".to_vec()),
        _ => Some(input.short(40).to_vec()),
    }
}

/// The `ArrowSchema` of a column type; `input` adds what a careless producer gets wrong
/// without lying about sizes: flags, names, metadata, the number of children.
fn schema_spec(input: &mut Input<'_>, t: &CType, top: bool) -> SchemaSpec {
    let (format, children, dictionary): (String, Vec<SchemaSpec>, Option<Box<SchemaSpec>>) = match t
    {
        CType::Null => ("n".into(), vec![], None),
        CType::Bool => ("b".into(), vec![], None),
        CType::Fixed(f, _) => (f.clone(), vec![], None),
        CType::Var { format, .. } | CType::View { format } => ((*format).into(), vec![], None),
        CType::List { large, child } => (
            if *large { "+L" } else { "+l" }.into(),
            vec![named(schema_spec(input, &child.1, false), &child.0)],
            None,
        ),
        CType::Struct(fields) => (
            "+s".into(),
            fields
                .iter()
                .map(|(n, c)| named(schema_spec(input, c, false), n))
                .collect(),
            None,
        ),
        CType::Other {
            format,
            children,
            dictionary,
        } => (
            format.clone(),
            children
                .iter()
                .map(|(n, c)| named(schema_spec(input, c, false), n))
                .collect(),
            dictionary
                .as_deref()
                .map(|d| Box::new(schema_spec(input, d, false))),
        ),
    };
    let mut spec = SchemaSpec {
        format: format.into_bytes(),
        name: Some(if top { Vec::new() } else { b"x".to_vec() }),
        metadata: None,
        flags: 2,
        children,
        dictionary,
        null_children: false,
    };
    match input.below(24) {
        0 => spec.flags = i64::from(input.byte()) - 128,
        1 => spec.name = None,
        2 => spec.metadata = Some(metadata(input)),
        3 => {
            spec.children.pop();
        }
        4 => spec.children.push(SchemaSpec {
            format: b"i".to_vec(),
            name: Some(b"extra".to_vec()),
            flags: 2,
            ..SchemaSpec::default()
        }),
        5 => spec.null_children = true,
        6 => {
            spec.dictionary = Some(Box::new(SchemaSpec {
                format: b"u".to_vec(),
                name: Some(Vec::new()),
                ..SchemaSpec::default()
            }))
        }
        _ => {}
    }
    spec
}

fn named(mut spec: SchemaSpec, name: &[u8]) -> SchemaSpec {
    spec.name = Some(name.to_vec());
    spec
}

/// Metadata in the C interface's encoding, which carries its own lengths: honest ones.
fn metadata(input: &mut Input<'_>) -> Vec<u8> {
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..input.below(3))
        .map(|_| {
            let key = match input.below(4) {
                0 => b"ARROW:extension:name".to_vec(),
                1 => b"ARROW:extension:metadata".to_vec(),
                2 => b"_PL_".to_vec(),
                _ => input.short(8).to_vec(),
            };
            let value = match input.below(4) {
                0 => b"arrow.uuid".to_vec(),
                1 => b"polars.maintain_order".to_vec(),
                _ => input.short(12).to_vec(),
            };
            (key, value)
        })
        .collect();
    let mut out = (pairs.len() as i32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as i32).to_le_bytes());
        out.extend_from_slice(&k);
        out.extend_from_slice(&(v.len() as i32).to_le_bytes());
        out.extend_from_slice(&v);
    }
    out
}

/// A schema of arbitrary bytes: the format, names and children as the bytes say. No
/// batches follow (their layout would be unknown), so this exercises the schema import.
fn raw_schema(input: &mut Input<'_>) -> SchemaSpec {
    fn node(input: &mut Input<'_>, depth: usize) -> SchemaSpec {
        let format = input.short(12).to_vec();
        let name = if input.byte().is_multiple_of(5) {
            None
        } else {
            Some(input.short(6).to_vec())
        };
        let metadata = (input.byte().is_multiple_of(7)).then(|| metadata(input));
        let flags = i64::from(input.byte() & 7);
        let n = if depth < 3 { input.below(4) } else { 0 };
        let children = (0..n).map(|_| node(input, depth + 1)).collect();
        let dictionary =
            (depth < 3 && input.byte().is_multiple_of(9)).then(|| Box::new(node(input, depth + 1)));
        SchemaSpec {
            format,
            name,
            metadata,
            flags,
            children,
            dictionary,
            null_children: false,
        }
    }
    node(input, 0)
}

/// Lengths and offsets stay small: a consumer cannot check a length against a buffer it
/// cannot see, so a large one would be a lie about sizes. Negative ones are checkable.
fn c_length(input: &mut Input<'_>) -> i64 {
    match input.below(32) {
        0 => -1,
        1 => i64::MIN,
        2..=9 => 0,
        10..=13 => 1 + input.below(300) as i64,
        n => (n - 13) as i64,
    }
}

fn c_offset(input: &mut Input<'_>) -> i64 {
    match input.below(16) {
        0 => -1 - input.below(3) as i64,
        1..=3 => 1 + input.below(8) as i64,
        _ => 0,
    }
}

const MAX_DATA: i64 = 4096;

/// Offsets into a data buffer or a child: mostly valid, sometimes anything (non-monotonic,
/// negative, past the end), never so large that the buffer they imply cannot be made.
fn c_offsets(input: &mut Input<'_>, slots: usize) -> Vec<i64> {
    match input.below(4) {
        0 => (0..=slots)
            .map(|_| {
                let v = input.u32() as i32 as i64;
                if v > MAX_DATA { v % MAX_DATA } else { v }
            })
            .collect(),
        _ => {
            let mut at = input.below(3) as i64;
            (0..=slots)
                .map(|_| {
                    let here = at;
                    at += input.below(6) as i64;
                    here
                })
                .collect()
        }
    }
}

/// Offsets as the buffer holds them: `i64`, or `i32` (truncated, as a careless producer
/// would).
fn pack(values: &[i64], large: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 8);
    for &v in values {
        if large {
            out.extend_from_slice(&v.to_le_bytes());
        } else {
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
    }
    out
}

fn buffer(bytes: Vec<u8>, input: &mut Input<'_>) -> BufferSpec {
    match input.below(40) {
        0 => BufferSpec {
            bytes: None,
            misaligned: false,
        },
        1 => BufferSpec {
            bytes: Some(bytes),
            misaligned: true,
        },
        _ => BufferSpec {
            bytes: Some(bytes),
            misaligned: false,
        },
    }
}

/// An `ArrowArray` of a column type, every buffer as long as its lengths, offsets, views
/// and sizes imply, and everything else as the bytes say. `length`: what the parent needs
/// (a struct's field, a list's values), which the bytes override now and then.
fn array_spec(input: &mut Input<'_>, t: &CType, length: Option<i64>) -> ArraySpec {
    let length = match length {
        Some(l) if !input.byte().is_multiple_of(6) => l,
        _ => c_length(input),
    };
    let offset = c_offset(input);
    let slots = (length.max(0) + offset.max(0)) as usize;
    let bits = slots.div_ceil(8);
    let validity = if input.byte().is_multiple_of(3) {
        None
    } else {
        Some(input.bytes(bits))
    };
    let nulls_in_range = validity.as_ref().map_or(0, |v| {
        (offset.max(0) as usize..slots)
            .filter(|&i| v[i / 8] & (1 << (i % 8)) == 0)
            .count() as i64
    });
    let null_count = match input.below(12) {
        0 => -1,
        1 => 0,
        2 => input.below(8) as i64,
        3 => length + 1,
        4 => i64::MAX,
        _ if validity.is_none() => 0,
        _ => nulls_in_range,
    };
    let validity = buffer(validity.unwrap_or_default(), input);
    let validity = match validity.bytes {
        Some(b) if b.is_empty() => BufferSpec {
            bytes: None,
            misaligned: false,
        },
        _ => validity,
    };
    let mut children = Vec::new();
    let mut buffers = match t {
        CType::Null => Vec::new(),
        CType::Bool => vec![validity, buffer(input.bytes(bits), input)],
        CType::Fixed(_, width) => vec![validity, buffer(input.bytes(slots * width), input)],
        CType::Var { large, format } => {
            let offsets = c_offsets(input, slots);
            let data_len = offsets.iter().copied().max().unwrap_or(0).max(0) as usize;
            let mut data = input.bytes(data_len);
            if format.starts_with(['u', 'U']) && !input.byte().is_multiple_of(4) {
                data.iter_mut().for_each(|b| *b &= 0x7f);
            }
            let packed = pack(&offsets, *large);
            vec![validity, buffer(packed, input), buffer(data, input)]
        }
        CType::View { format } => {
            let sizes: Vec<usize> = (0..input.below(4)).map(|_| input.below(64)).collect();
            let mut views = Vec::with_capacity(slots * 16);
            for _ in 0..slots {
                let raw = input.below(8) == 0;
                let len = if raw {
                    input.u32()
                } else if input.bool() {
                    input.below(13) as u32
                } else {
                    13 + input.below(24) as u32
                };
                views.extend_from_slice(&len.to_le_bytes());
                if len <= 12 {
                    let mut inline = input.bytes(12);
                    if format == &"vu" && !raw {
                        inline.iter_mut().for_each(|b| *b &= 0x7f);
                    }
                    views.extend_from_slice(&inline);
                } else {
                    views.extend_from_slice(&input.bytes(4));
                    let (index, at) = if raw || sizes.is_empty() {
                        (input.u32(), input.u32())
                    } else {
                        let index = input.below(sizes.len());
                        let room = sizes[index].saturating_sub(len as usize);
                        (index as u32, input.below(room + 1) as u32)
                    };
                    views.extend_from_slice(&index.to_le_bytes());
                    views.extend_from_slice(&at.to_le_bytes());
                }
            }
            let mut buffers = vec![validity, buffer(views, input)];
            for &size in &sizes {
                let mut data = input.bytes(size);
                if format == &"vu" && !input.byte().is_multiple_of(4) {
                    data.iter_mut().for_each(|b| *b &= 0x7f);
                }
                buffers.push(buffer(data, input));
            }
            // The variadic sizes: the real ones, or smaller (a lie that only hides bytes).
            let claimed: Vec<i64> = sizes
                .iter()
                .map(|&s| if input.below(8) == 0 { input.below(s + 1) } else { s } as i64)
                .collect();
            // Left out (a lie about the buffer count) only where no buffer would then be
            // read as the sizes: with two data buffers or more, the last would be, and it
            // is shorter than the sizes a consumer would read from it (an allocation's size,
            // which the C interface gives no way to check).
            let keep = input.below(10) != 0;
            if keep || sizes.len() > 1 {
                buffers.push(buffer(pack(&claimed, true), input));
            }
            buffers
        }
        CType::List { large, child } => {
            let offsets = c_offsets(input, slots);
            let last = offsets.last().copied().unwrap_or(0).max(0);
            children.push(array_spec(input, &child.1, Some(last)));
            let packed = pack(&offsets, *large);
            vec![validity, buffer(packed, input)]
        }
        CType::Struct(fields) => {
            for (_, f) in fields {
                children.push(array_spec(input, f, Some(slots as i64)));
            }
            vec![validity]
        }
        CType::Other { .. } => Vec::new(),
    };
    let mut spec = ArraySpec {
        length,
        null_count,
        offset,
        buffers: Vec::new(),
        null_buffers: false,
        children: Vec::new(),
        null_children: false,
        dictionary: None,
    };
    // The lies about counts and pointers that a consumer can check. Not a buffer more or
    // less in a view array with data buffers: it reads its last buffer as their sizes, so
    // either would hand over a buffer shorter than the sizes read from it (the view branch
    // above makes the count lies that stay checkable). The bytes are consumed all the same,
    // so that the rest of an input decodes as it did.
    let sizes_last = matches!(t, CType::View { .. });
    match input.below(32) {
        0 if !sizes_last || buffers.len() <= 4 => {
            buffers.pop();
        }
        1 => {
            let n = input.below(64);
            let extra = buffer(input.bytes(n), input);
            if !sizes_last {
                buffers.push(extra);
            }
        }
        2 => spec.null_buffers = true,
        3 => {
            children.pop();
        }
        4 => children.push(array_spec(
            input,
            &CType::Fixed("i".into(), 4),
            Some(slots as i64),
        )),
        5 => spec.null_children = true,
        6 => {
            spec.dictionary = Some(Box::new(array_spec(
                input,
                &CType::Var {
                    format: "u",
                    large: false,
                },
                None,
            )))
        }
        _ => {}
    }
    spec.buffers = buffers;
    spec.children = children;
    spec
}

// ----------------------------------------------------------------------------------------
// Seeds: real inputs for the corpora, written by `tests/tests/fuzz_corpus.rs`.

/// A disk-cache entry of `df` as the disk tier writes it, as a `disk_entry` input (its
/// times fixed up to now when replayed, so that it stays fresh).
pub fn disk_entry_seed(df: &DataFrame) -> Option<Vec<u8>> {
    let key = crate::cache::key::key([b"seed".as_slice()]);
    let mut entry = None;
    with_disk(|disk| {
        let ttl = Duration::from_secs(3600);
        if disk.store(&key, "seed", "seed|id", df, ttl).is_ok() {
            let path = disk
                .dir()
                .join("results-v1")
                .join(format!("{}.entry", hex::encode(key)));
            entry = std::fs::read(&path).ok();
            let _ = std::fs::remove_file(&path);
        }
    });
    entry.map(|e| [&[5u8][..], &e].concat())
}

/// `df` as a Redis entry in chunks of `frame` payload bytes, as a `redis_entry` input
/// (its times fixed up to now when replayed).
pub fn redis_entry_seed(df: &DataFrame, frame: usize) -> Option<Vec<u8>> {
    crate::cache::redis::fuzz_seed(df, frame)
}

/// The `raw` test fixture's hand-made streams, as `arrow_import` inputs: `ok` (a table of
/// one int64 column, 1, 2, 3), `bad_children` (a batch with more columns than the schema),
/// `not_struct` (a stream of int64 arrays), `interval` (a type polars cannot hold),
/// `null_error` and `bad_utf8_error` (a failing batch without a message, and with one that
/// is not UTF-8), plus a failing `get_schema` and a text column.
pub fn arrow_import_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let ints: Vec<u8> = [1i64, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
    let cat = |parts: &[&[u8]]| parts.concat();
    // Flags, a struct of one field `c` of int64 (`l`), schemas unchanged.
    let table: &[u8] = &[0, 1, 1, 2, 8, 23, 23];
    // Two steps: a batch of 3 rows (no validity, null count 0), then the end.
    let batch: &[u8] = &[2, 2, 16, 4, 0, 5, 2, 1, 4, 0, 5, 2];
    let column_end: &[u8] = &[2, 31];
    vec![
        ("ok", cat(&[table, batch, &ints, column_end, &[31, 1, 0]])),
        (
            "bad_children",
            cat(&[
                table,
                batch,
                &ints,
                column_end,
                &[4, 1, 4, 0, 5, 2],
                &[2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0],
                &[2, 31, 1, 0],
            ]),
        ),
        (
            "not_struct",
            cat(&[&[0, 0, 8, 23, 2, 2, 16, 4, 0, 5, 2], &ints, &[2, 31, 1, 0]]),
        ),
        ("interval", vec![0, 1, 1, 2, 23, 3, 23, 23, 0]),
        ("null_error", cat(&[table, &[1, 0, 4, 0]])),
        (
            "bad_utf8_error",
            cat(&[table, &[1, 0, 4, 5, 6], b"bad \xff\xfe"]),
        ),
        ("schema_error", vec![2, 1, 1, 2, 8, 23, 23, 4, 1, 0]),
        (
            "text",
            cat(&[
                &[
                    0, 1, 1, 2, 20, 0, 23, 23, 2, 2, 16, 4, 0, 5, 2, 1, 4, 0, 5, 2,
                ],
                &[1, 0, 2, 3, 1, 0],
                b"abcdef",
                &[1, 2, 2, 31, 31, 1, 0],
            ]),
        ),
    ]
}

// ----------------------------------------------------------------------------------------

/// Bytes read from the front; past the end, zeros.
pub(crate) struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self(data)
    }

    pub(crate) fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub(crate) fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        match n {
            0 | 1 => 0,
            2..=256 => usize::from(self.byte()) % n,
            _ => self.u32() as usize % n,
        }
    }

    pub(crate) fn u32(&mut self) -> u32 {
        let b = self.bytes(4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Up to `n` bytes, fewer at the end.
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    /// Exactly `n` bytes, zeros past the end.
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = self.take(n).to_vec();
        v.resize(n, 0);
        v
    }

    /// A short run of bytes, up to `max` long.
    pub(crate) fn short(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max + 1);
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imported(name: &str) -> Result<Vec<DataFrame>, String> {
        let seeds = arrow_import_seeds();
        let (_, data) = seeds.iter().find(|(n, _)| *n == name).expect("a seed");
        import(&mut Input::new(data)).map_err(|e| e.to_string())
    }

    #[test]
    fn the_raw_fixtures_streams_decode_as_they_say() {
        let ok = imported("ok").expect("ok imports");
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].height(), 3);
        let c = ok[0].column("c").expect("column c");
        assert_eq!(
            c.i64().expect("int64").to_vec(),
            [Some(1), Some(2), Some(3)]
        );
        let text = imported("text").expect("text imports");
        let c = text[0].column("c").expect("column c");
        let values: Vec<Option<&str>> = c.str().expect("text").iter().collect();
        assert_eq!(values, [Some("ab"), Some("cde"), Some("f")]);
        for (name, says) in [
            ("bad_children", "children"),
            ("not_struct", "struct"),
            ("interval", "cannot hold"),
            ("null_error", "no message"),
            ("bad_utf8_error", "bad"),
            ("schema_error", "no such table"),
        ] {
            let e = imported(name).expect_err(name);
            assert!(e.contains(says), "{name}: {e}");
        }
    }

    #[test]
    fn every_body_takes_every_short_input() {
        for (_, body) in TARGETS {
            for data in [&[][..], &[0], &[0xff; 7], b"\0\0\0"] {
                body(data);
            }
        }
    }
}

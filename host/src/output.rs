//! Writing a DataFrame as a terminal table, CSV, JSON, NDJSON, Parquet or Arrow IPC.
//!
//! Files are written atomically: to a temporary file beside the target, renamed into place
//! only when complete, so a failed export never leaves a half-written file behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use comfy_table::{Cell, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use polars::prelude::*;

use crate::error::{Error, Result};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
    Arrow,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "table" => Self::Table,
            "csv" => Self::Csv,
            "json" => Self::Json,
            "ndjson" | "jsonl" => Self::Ndjson,
            "parquet" => Self::Parquet,
            "arrow" | "ipc" | "feather" => Self::Arrow,
            other => {
                return Err(format!(
                    "unknown format {other:?} (expected table, csv, json, ndjson, parquet or arrow)"
                ));
            }
        })
    }
}

impl Format {
    /// The format a file name implies (`x.parquet` → Parquet).
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?;
        match ext.to_ascii_lowercase().as_str() {
            "txt" => Some(Self::Table),
            "arrows" => None,
            e => e.parse().ok(),
        }
    }

    /// Formats that are bytes, not text: refused on a terminal.
    pub fn is_binary(self) -> bool {
        matches!(self, Self::Parquet | Self::Arrow)
    }
}

/// Writes `df` to `out` in `format`.
pub fn write(df: &DataFrame, format: Format, out: &mut dyn Write) -> Result<()> {
    let polars_err = |error| Error::Polars {
        context: "writing the result".to_owned(),
        error,
    };
    match format {
        Format::Table => {
            writeln!(out, "{}", render_table(df)).map_err(stdout_error)?;
        }
        Format::Csv => {
            let mut df = text_safe(df)?;
            CsvWriter::new(out)
                .include_header(true)
                .finish(&mut df)
                .map_err(polars_err)?;
        }
        Format::Json | Format::Ndjson => {
            let mut df = text_safe(df)?;
            let fmt = if format == Format::Json {
                JsonFormat::Json
            } else {
                JsonFormat::JsonLines
            };
            JsonWriter::new(&mut *out)
                .with_json_format(fmt)
                .finish(&mut df)
                .map_err(polars_err)?;
            if format == Format::Json {
                writeln!(out).map_err(stdout_error)?;
            }
        }
        Format::Parquet => {
            let mut df = df.clone();
            ParquetWriter::new(out)
                .finish(&mut df)
                .map_err(polars_err)?;
        }
        Format::Arrow => {
            let mut df = df.clone();
            IpcWriter::new(out).finish(&mut df).map_err(polars_err)?;
        }
    }
    Ok(())
}

/// Arrow IPC (file format), writing batch by batch: shared by exports and the disk cache.
pub(crate) fn ipc_writer<W: Write>(
    out: W,
    schema: &Schema,
) -> PolarsResult<polars::io::ipc::BatchedWriter<W>> {
    let fields = schema.to_arrow(CompatLevel::newest());
    IpcWriter::new(out)
        .with_compat_level(CompatLevel::newest())
        .batched(
            schema,
            polars_arrow::io::ipc::write::default_ipc_fields(fields.iter_values()),
        )
}

/// One chunk per column, aligned across columns: what the batched writers require.
pub(crate) fn aligned(df: &DataFrame) -> std::borrow::Cow<'_, DataFrame> {
    if df.should_rechunk() {
        let mut aligned = df.clone();
        aligned.align_chunks();
        std::borrow::Cow::Owned(aligned)
    } else {
        std::borrow::Cow::Borrowed(df)
    }
}

impl Format {
    /// Whether the format can be written batch by batch: all but a terminal table (which
    /// shows a head and a tail) and a JSON array.
    pub fn streams(self) -> bool {
        matches!(self, Self::Csv | Self::Ndjson | Self::Parquet | Self::Arrow)
    }
}

/// A format's writer, fed batch by batch.
enum BatchWriter<'w> {
    Csv(polars::io::csv::write::BatchedWriter<&'w mut dyn Write>),
    Ndjson(polars::io::json::BatchedWriter<&'w mut dyn Write>),
    Parquet(Box<polars::io::parquet::write::BatchedWriter<&'w mut dyn Write>>),
    Arrow(polars::io::ipc::BatchedWriter<&'w mut dyn Write>),
}

/// Writes batches to `out` in `format` as they arrive, holding one at a time; returns the
/// rows written. `format` must be one that [`Format::streams`].
pub fn write_stream(
    batches: impl Iterator<Item = Result<DataFrame>>,
    schema: &Schema,
    format: Format,
    out: &mut dyn Write,
) -> Result<u64> {
    let polars_err = |error| Error::Polars {
        context: "writing the result".to_owned(),
        error,
    };
    // Binary columns are written as hex text in the text formats.
    let text_schema: Schema = schema
        .iter()
        .map(|(name, dtype)| {
            let dtype = match dtype {
                DataType::Binary => DataType::String,
                other => other.clone(),
            };
            Field::new(name.clone(), dtype)
        })
        .collect();
    let mut writer = match format {
        Format::Csv => BatchWriter::Csv(
            CsvWriter::new(out)
                .include_header(true)
                .batched(&text_schema)
                .map_err(polars_err)?,
        ),
        Format::Ndjson => BatchWriter::Ndjson(polars::io::json::BatchedWriter::new(out)),
        Format::Parquet => BatchWriter::Parquet(Box::new(
            ParquetWriter::new(out)
                .batched(schema)
                .map_err(polars_err)?,
        )),
        Format::Arrow => BatchWriter::Arrow(ipc_writer(out, schema).map_err(polars_err)?),
        Format::Table | Format::Json => {
            return Err(Error::Argument(format!(
                "{format:?} output cannot be streamed"
            )));
        }
    };
    let mut rows = 0u64;
    for batch in batches {
        let batch = batch?;
        rows += batch.height() as u64;
        let batch = aligned(&batch);
        match &mut writer {
            BatchWriter::Csv(w) => w.write_batch(&text_safe(&batch)?),
            BatchWriter::Ndjson(w) => w.write_batch(&text_safe(&batch)?),
            BatchWriter::Parquet(w) => w.write_batch(&batch),
            BatchWriter::Arrow(w) => w.write_batch(&batch),
        }
        .map_err(polars_err)?;
    }
    match &mut writer {
        BatchWriter::Csv(w) => w.finish(),
        BatchWriter::Ndjson(_) => Ok(()),
        BatchWriter::Parquet(w) => w.finish().map(drop),
        BatchWriter::Arrow(w) => w.finish(),
    }
    .map_err(polars_err)?;
    Ok(rows)
}

/// Writes batches to `path` atomically (see [`write_atomically`]); returns the rows.
pub fn write_stream_file(
    batches: impl Iterator<Item = Result<DataFrame>>,
    schema: &Schema,
    format: Format,
    path: &Path,
) -> Result<u64> {
    let mut rows = 0;
    write_atomically(path, |out| {
        rows = write_stream(batches, schema, format, out)?;
        Ok(())
    })?;
    Ok(rows)
}

fn stdout_error(error: std::io::Error) -> Error {
    Error::Write {
        path: PathBuf::from("<stdout>"),
        error,
    }
}

/// Writes `df` to `path` atomically.
pub fn write_file(df: &DataFrame, format: Format, path: &Path) -> Result<()> {
    write_atomically(path, |out| write(df, format, out))
}

/// Writes a file through a temporary file in the same folder, renamed into place once
/// whole and synced: a failure leaves the old file (or none), never half of a new one.
pub(crate) fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let write_err = |error| Error::Write {
        path: path.to_path_buf(),
        error,
    };
    // An export is the user's file: the mode a new file gets (0666 less the umask), or
    // the one the file it replaces had; not the temporary file's private 0600.
    let mut builder = tempfile::Builder::new();
    builder.prefix(".plugboard-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(write_err)?;
    if let Ok(existing) = std::fs::metadata(path) {
        tmp.as_file()
            .set_permissions(existing.permissions())
            .map_err(write_err)?;
    }
    {
        let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut buffered).map_err(|e| match e {
            Error::Write { error, .. } => write_err(error),
            other => other,
        })?;
        buffered.flush().map_err(write_err)?;
    }
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

/// Binary columns become hex text for the text formats.
fn text_safe(df: &DataFrame) -> Result<DataFrame> {
    let mut df = df.clone();
    let binary: Vec<PlSmallStr> = df
        .columns()
        .iter()
        .filter(|c| c.dtype() == &DataType::Binary)
        .map(|c| c.name().clone())
        .collect();
    for name in binary {
        let hexed: StringChunked = df
            .column(&name)
            .and_then(|c| c.binary().cloned())
            .map_err(|error| Error::Polars {
                context: format!("column {name}"),
                error,
            })?
            .iter()
            .map(|v| v.map(hex))
            .collect();
        df.with_column(hexed.with_name(name.clone()).into_column())
            .map_err(|error| Error::Polars {
                context: format!("column {name}"),
                error,
            })?;
    }
    Ok(df)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rows shown in full before the table is cut to its head and tail.
const MAX_ROWS: usize = 100;
const HEAD_ROWS: usize = 50;
const TAIL_ROWS: usize = 10;

/// A table for a terminal: column names with their types, `null` for missing values.
pub fn render_table(df: &DataFrame) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(
        df.columns()
            .iter()
            .map(|c| Cell::new(format!("{}\n{}", c.name(), c.dtype()))),
    );
    let height = df.height();
    let rows: Vec<Option<usize>> = if height <= MAX_ROWS {
        (0..height).map(Some).collect()
    } else {
        (0..HEAD_ROWS)
            .map(Some)
            .chain([None])
            .chain((height - TAIL_ROWS..height).map(Some))
            .collect()
    };
    for row in rows {
        match row {
            Some(i) => {
                table.add_row(df.columns().iter().map(|c| Cell::new(cell(c.get(i).ok()))));
            }
            None => {
                table.add_row(df.columns().iter().map(|_| Cell::new("…")));
            }
        }
    }
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    format!(
        "{table}\n({} × {})",
        plural(height, "row"),
        plural(df.width(), "column")
    )
}

fn cell(v: Option<AnyValue<'_>>) -> String {
    match v {
        None | Some(AnyValue::Null) => "null".to_owned(),
        Some(AnyValue::String(s)) => s.to_owned(),
        Some(AnyValue::StringOwned(s)) => s.to_string(),
        Some(AnyValue::Binary(b)) => format!("0x{}", hex(b)),
        Some(AnyValue::BinaryOwned(b)) => format!("0x{}", hex(&b)),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DataFrame {
        df!(
            "id" => [1i64, 2],
            "name" => [Some("a"), None],
            "blob" => [Some(b"\x00\xff".as_slice()), None],
        )
        .expect("df")
    }

    fn text(format: Format) -> String {
        let mut out = Vec::new();
        write(&sample(), format, &mut out).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn csv_has_a_header_and_empty_nulls() {
        assert_eq!(text(Format::Csv), "id,name,blob\n1,a,00ff\n2,,\n");
    }

    #[test]
    fn json_and_ndjson_write_row_objects_with_null() {
        assert_eq!(
            text(Format::Json).trim(),
            r#"[{"id":1,"name":"a","blob":"00ff"},{"id":2,"name":null,"blob":null}]"#
        );
        assert_eq!(
            text(Format::Ndjson),
            "{\"id\":1,\"name\":\"a\",\"blob\":\"00ff\"}\n{\"id\":2,\"name\":null,\"blob\":null}\n"
        );
    }

    #[test]
    fn table_shows_types_nulls_and_shape() {
        let t = text(Format::Table);
        assert!(
            t.contains("i64") && t.contains("null") && t.contains("0x00ff"),
            "{t}"
        );
        assert!(t.trim_end().ends_with("(2 rows × 3 columns)"), "{t}");
    }

    #[test]
    fn formats_from_paths() {
        assert_eq!(
            Format::from_path(Path::new("x.parquet")),
            Some(Format::Parquet)
        );
        assert_eq!(
            Format::from_path(Path::new("x.feather")),
            Some(Format::Arrow)
        );
        assert_eq!(
            Format::from_path(Path::new("x.jsonl")),
            Some(Format::Ndjson)
        );
        assert_eq!(Format::from_path(Path::new("x.xyz")), None);
    }

    #[test]
    fn files_round_trip_and_failed_writes_leave_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        for (name, format) in [("a.parquet", Format::Parquet), ("a.arrow", Format::Arrow)] {
            let path = dir.path().join(name);
            write_file(&sample(), format, &path).expect("write");
            let back = match format {
                Format::Parquet => {
                    ParquetReader::new(std::fs::File::open(&path).expect("open")).finish()
                }
                _ => IpcReader::new(std::fs::File::open(&path).expect("open")).finish(),
            }
            .expect("read back");
            assert!(back.equals_missing(&sample()), "{name}");
        }
        let missing = dir.path().join("no/such/dir/x.csv");
        assert!(write_file(&sample(), Format::Csv, &missing).is_err());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(leftovers.len(), 2, "no temporary files left behind");
    }

    #[cfg(unix)]
    #[test]
    fn an_export_gets_a_normal_files_mode_or_keeps_the_one_it_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.csv");
        write_file(&sample(), Format::Csv, &path).expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        // Whatever the umask, a new export is not private to its owner like a temp file.
        let fresh = std::fs::File::create(dir.path().join("plain")).expect("create");
        drop(fresh);
        assert_eq!(mode(&path), mode(&dir.path().join("plain")));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        write_file(&sample(), Format::Csv, &path).expect("rewrite");
        assert_eq!(mode(&path), 0o640);
    }
}

//! File formats, compression, read options, and polars' readers.

use std::fmt;
use std::io::{Cursor, Read};
use std::sync::Arc;

use plugboard_api::{PluginError, ReadRequest};
use polars::io::mmap::MmapBytesReader;
use polars::prelude::*;
use serde_json::Value as Json;

/// The table formats this connector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    Parquet,
    /// One JSON array of records.
    Json,
    /// One JSON record per line.
    Ndjson,
    /// The Arrow IPC file format (Feather v2).
    Ipc,
}

impl Format {
    pub const NAMES: &str = "csv, tsv, parquet, json, ndjson, ipc";

    /// A format by its name or one of its usual extensions.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "csv" => Self::Csv,
            "tsv" | "tab" => Self::Tsv,
            "parquet" | "pq" => Self::Parquet,
            "json" => Self::Json,
            "ndjson" | "jsonl" | "jsonlines" => Self::Ndjson,
            "ipc" | "arrow" | "feather" => Self::Ipc,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Tsv => "tsv",
            Self::Parquet => "parquet",
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::Ipc => "ipc",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A whole-file compression, told by the last extension (`x.csv.gz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "none" => Self::None,
            "gz" | "gzip" => Self::Gzip,
            "zst" | "zstd" => Self::Zstd,
            _ => return None,
        })
    }

    fn decompress(self, raw: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(raw.len() * 4);
        match self {
            Self::None => out.extend_from_slice(raw),
            Self::Gzip => {
                flate2::read::MultiGzDecoder::new(raw).read_to_end(&mut out)?;
            }
            Self::Zstd => {
                zstd::stream::read::Decoder::new(raw)?.read_to_end(&mut out)?;
            }
        }
        Ok(out)
    }
}

/// What a file's name says: its compression and, under that, its format.
pub fn sniff(name: &str) -> (Option<Format>, Compression) {
    let base = name.rsplit('/').next().unwrap_or(name);
    let mut parts = base.rsplit('.');
    let last = parts.next().filter(|_| base.contains('.'));
    match last.and_then(Compression::parse) {
        Some(c) if c != Compression::None => {
            let inner = parts.next().filter(|_| base.matches('.').count() > 1);
            (inner.and_then(Format::parse), c)
        }
        _ => (last.and_then(Format::parse), Compression::None),
    }
}

/// The read options a request may carry, checked by name.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub format: Option<Format>,
    pub compression: Option<Compression>,
    /// CSV: the field separator (default `,`, or a tab for TSV).
    pub delimiter: Option<u8>,
    /// CSV: whether the first line names the columns.
    pub header: bool,
    /// CSV: lines to skip before the header.
    pub skip_rows: usize,
    /// CSV: texts that mean null.
    pub null_values: Option<Vec<String>>,
    /// CSV and JSON: rows read to infer column types (`None`: all of them).
    pub infer_schema_length: Option<usize>,
    /// The columns to keep, in this order.
    pub columns: Option<Vec<String>>,
    pub limit: Option<usize>,
}

/// The largest `infer_schema_length` passed to polars as is; more means all rows.
const MAX_INFER_ROWS: usize = 1 << 20;

const OPTIONS: &str = "format, compression, delimiter, header, skip_rows, null_values, \
                       infer_schema_length, columns";

impl ReadOptions {
    pub fn from_request(
        request: &ReadRequest,
        default: Option<Format>,
    ) -> Result<Self, PluginError> {
        let mut opts = ReadOptions {
            format: default,
            compression: None,
            delimiter: None,
            header: true,
            skip_rows: 0,
            null_values: None,
            infer_schema_length: Some(100),
            columns: None,
            limit: request
                .limit
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        };
        for (key, value) in &request.options {
            let bad = |what: &str| {
                PluginError::query(format!("read option {key} = {value}: expected {what}"))
            };
            match key.as_str() {
                "format" => {
                    let name = value.as_str().ok_or_else(|| bad("a format name"))?;
                    opts.format = Some(Format::parse(name).ok_or_else(|| {
                        PluginError::query(format!(
                            "read option format = {name:?}: unknown format; use one of {}",
                            Format::NAMES
                        ))
                    })?);
                }
                "compression" => {
                    let name = value.as_str().unwrap_or_default();
                    opts.compression =
                        Some(Compression::parse(name).ok_or_else(|| bad("gzip, zstd or none"))?);
                }
                "delimiter" | "separator" | "sep" => {
                    let text = value.as_str().ok_or_else(|| bad("one character"))?;
                    opts.delimiter = Some(match text {
                        "\\t" | "tab" => b'\t',
                        t if t.len() == 1 => t.as_bytes()[0],
                        _ => return Err(bad("one ASCII character (or \\t)")),
                    });
                }
                "header" | "has_header" => {
                    opts.header = as_bool(value).ok_or_else(|| bad("true or false"))?;
                }
                "skip_rows" => {
                    opts.skip_rows = as_count(value).ok_or_else(|| bad("a row count"))?;
                }
                "null_values" | "null_value" => {
                    opts.null_values =
                        Some(as_names(value).ok_or_else(|| bad("a text or a list of texts"))?);
                }
                "infer_schema_length" => {
                    opts.infer_schema_length = match as_count(value) {
                        // polars sets aside room for that many rows before reading one (an
                        // `infer_schema_length=100000000000` aborted the host); past a
                        // million rows, "all of them" reads the same types and only costs
                        // the room the file needs.
                        Some(0) => None,
                        Some(n) if n > MAX_INFER_ROWS => None,
                        Some(n) => Some(n),
                        None if value.is_null() => None,
                        None => return Err(bad("a row count (0: all rows)")),
                    };
                }
                "columns" => {
                    let names = as_names(value).ok_or_else(|| bad("a list of column names"))?;
                    if names.is_empty() {
                        return Err(bad("at least one column name"));
                    }
                    opts.columns = Some(names);
                }
                _ => {
                    return Err(PluginError::query(format!(
                        "unknown read option {key:?}; the files connector knows {OPTIONS}"
                    )));
                }
            }
        }
        Ok(opts)
    }
}

fn as_bool(value: &Json) -> Option<bool> {
    match value {
        Json::Bool(b) => Some(*b),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_count(value: &Json) -> Option<usize> {
    match value {
        Json::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A list of names: a JSON array of strings, or one text with commas (`"a,b"`).
fn as_names(value: &Json) -> Option<Vec<String>> {
    match value {
        Json::String(s) => Some(
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        ),
        Json::Array(items) => items.iter().map(|v| v.as_str().map(String::from)).collect(),
        _ => None,
    }
}

/// A file's bytes: an open local file (which polars maps) or bytes in memory.
pub enum Input {
    File(std::fs::File),
    Bytes(bytes::Bytes),
}

/// Reads one file with polars. `n_rows` caps the rows read.
pub fn read(
    input: Input,
    format: Format,
    compression: Compression,
    opts: &ReadOptions,
    n_rows: Option<usize>,
) -> Result<DataFrame, String> {
    let input = match (compression, input) {
        (Compression::None, input) => input,
        (c, Input::File(mut file)) => {
            let mut raw = Vec::new();
            file.read_to_end(&mut raw).map_err(|e| e.to_string())?;
            Input::Bytes(decompress(c, &raw)?.into())
        }
        (c, Input::Bytes(raw)) => Input::Bytes(decompress(c, &raw)?.into()),
    };
    let df = match input {
        Input::File(file) => read_with(file, format, opts, n_rows),
        Input::Bytes(bytes) => read_with(Cursor::new(bytes), format, opts, n_rows),
    }
    .map_err(|e| e.to_string())?;
    finish(df, opts, n_rows).map_err(|e| e.to_string())
}

fn decompress(compression: Compression, raw: &[u8]) -> Result<Vec<u8>, String> {
    let name = match compression {
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
        Compression::None => "none",
    };
    compression
        .decompress(raw)
        .map_err(|e| format!("not valid {name} data: {e}"))
}

fn read_with<R: MmapBytesReader + 'static>(
    reader: R,
    format: Format,
    opts: &ReadOptions,
    n_rows: Option<usize>,
) -> PolarsResult<DataFrame> {
    let columns = opts.columns.clone();
    match format {
        Format::Csv | Format::Tsv => {
            let separator =
                opts.delimiter
                    .unwrap_or(if format == Format::Tsv { b'\t' } else { b',' });
            let null_values = opts
                .null_values
                .clone()
                .map(|v| NullValues::AllColumns(v.into_iter().map(PlSmallStr::from).collect()));
            CsvReadOptions::default()
                .with_has_header(opts.header)
                .with_skip_rows(opts.skip_rows)
                .with_n_rows(n_rows)
                .with_infer_schema_length(opts.infer_schema_length)
                .with_columns(
                    columns.map(|c| c.into_iter().map(PlSmallStr::from).collect::<Arc<[_]>>()),
                )
                .map_parse_options(|p| {
                    p.with_separator(separator)
                        .with_null_values(null_values.clone())
                })
                .into_reader_with_file_handle(reader)
                .finish()
        }
        Format::Parquet => ParquetReader::new(reader)
            .with_columns(columns)
            .with_slice(n_rows.map(|n| (0, n)))
            .finish(),
        Format::Ipc => IpcReader::new(reader)
            .with_columns(columns)
            .with_n_rows(n_rows)
            .finish(),
        Format::Json | Format::Ndjson => {
            let json_format = if format == Format::Json {
                JsonFormat::Json
            } else {
                JsonFormat::JsonLines
            };
            JsonReader::new(reader)
                .with_json_format(json_format)
                .infer_schema_len(
                    opts.infer_schema_length
                        .and_then(std::num::NonZeroUsize::new),
                )
                .finish()
        }
    }
}

/// Column order and row cap as asked, whatever the reader honoured; categoricals as text.
fn finish(mut df: DataFrame, opts: &ReadOptions, n_rows: Option<usize>) -> PolarsResult<DataFrame> {
    if let Some(columns) = &opts.columns {
        df = df.select(columns.iter().map(String::as_str))?;
    }
    if let Some(n) = n_rows.filter(|n| *n < df.height()) {
        df = df.head(Some(n));
    }
    let categorical: Vec<PlSmallStr> = df
        .columns()
        .iter()
        .filter(|c| matches!(c.dtype(), DataType::Categorical(..) | DataType::Enum(..)))
        .map(|c| c.name().clone())
        .collect();
    for name in categorical {
        let text = df.column(&name)?.cast(&DataType::String)?;
        df.replace(&name, text)?;
    }
    Ok(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_compression_from_names() {
        assert_eq!(
            sniff("a/b/trips.parquet"),
            (Some(Format::Parquet), Compression::None)
        );
        assert_eq!(sniff("x.CSV"), (Some(Format::Csv), Compression::None));
        assert_eq!(sniff("x.tsv.gz"), (Some(Format::Tsv), Compression::Gzip));
        assert_eq!(
            sniff("x.jsonl.zst"),
            (Some(Format::Ndjson), Compression::Zstd)
        );
        assert_eq!(sniff("x.feather"), (Some(Format::Ipc), Compression::None));
        assert_eq!(sniff("data.gz"), (None, Compression::Gzip));
        assert_eq!(sniff("gz"), (None, Compression::None));
        assert_eq!(sniff("README"), (None, Compression::None));
        assert_eq!(sniff("dir.csv/file"), (None, Compression::None));
    }

    fn request(options: Json) -> ReadRequest {
        ReadRequest {
            options: options.as_object().cloned().unwrap_or_default(),
            ..ReadRequest::default()
        }
    }

    #[test]
    fn options_are_checked_by_name() {
        let opts = ReadOptions::from_request(
            &request(serde_json::json!({
                "format": "TSV", "delimiter": "\\t", "header": "false",
                "columns": "a, b", "infer_schema_length": 0, "null_values": ["NA", ""]
            })),
            None,
        )
        .expect("valid options");
        assert_eq!(opts.format, Some(Format::Tsv));
        assert_eq!(opts.delimiter, Some(b'\t'));
        assert!(!opts.header);
        assert_eq!(
            opts.columns.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        assert_eq!(opts.infer_schema_length, None);

        let err = |o: Json| {
            ReadOptions::from_request(&request(o), None)
                .expect_err("invalid")
                .message()
                .to_string()
        };
        assert!(
            err(serde_json::json!({"fromat": "csv"})).contains("unknown read option \"fromat\"")
        );
        assert!(err(serde_json::json!({"format": "xlsx"})).contains("unknown format"));
        assert!(err(serde_json::json!({"delimiter": ";;"})).contains("delimiter"));
        assert!(err(serde_json::json!({"columns": []})).contains("columns"));
    }

    #[test]
    fn a_huge_infer_schema_length_means_all_rows() {
        let opts = |n: u64| {
            ReadOptions::from_request(
                &request(serde_json::json!({ "infer_schema_length": n })),
                None,
            )
            .expect("valid")
            .infer_schema_length
        };
        assert_eq!(opts(1000), Some(1000));
        assert_eq!(opts(100_000_000_000), None);
        assert_eq!(opts(u64::MAX), None);
    }

    #[test]
    fn damaged_compressed_data_is_an_error() {
        assert!(decompress(Compression::Gzip, b"not gzip at all").is_err());
        assert!(decompress(Compression::Zstd, b"not zstd either").is_err());
    }
}

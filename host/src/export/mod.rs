//! Writing a DataFrame as a terminal table, CSV, JSON, NDJSON, Parquet or Arrow IPC.
//!
//! Files are written atomically: to a temporary file beside the target, renamed into place
//! only when complete, so a failed export never leaves a half-written file behind.
//!
//! Every value a source can return prints, or is refused in one line naming its column;
//! none ends the process. polars formats dates and times through chrono, which stops at
//! the years -262143 and +262142 and panics past them (PostgreSQL's `infinity`,
//! `5874897-12-31`, a Parquet file's extremes), and it panics on any time zone in a table
//! (its `timezones` feature is off). So before a text format (table, CSV, JSON, NDJSON)
//! sees a frame, [`printable`] turns each column it would crash on into text, formatted
//! here the way polars formats the values it can: the largest and smallest value of a
//! date or timestamp type print as `infinity` and `-infinity` (PostgreSQL's arrive as
//! those), any other date by the proleptic Gregorian calendar, with a sign past year
//! 9999. Parquet and Arrow IPC carry the values as they are.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use polars::prelude::*;

pub(crate) use self::atomic::{remove_unfinished, write_atomically};
pub use self::table::{DEFAULT_MAX_ROWS, TableLayout, TableRows, render_table};
use crate::error::{Error, Result};

mod atomic;
mod table;

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
            writeln!(out, "{}", render_table(df, TableLayout::WHOLE)?).map_err(stdout_error)?;
        }
        Format::Csv => {
            let mut df = printable(df, Style::Csv)?;
            CsvWriter::new(out)
                .include_header(true)
                .finish(&mut df)
                .map_err(polars_err)?;
        }
        Format::Json | Format::Ndjson => {
            let mut df = printable(df, Style::Json)?;
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
    compression: Option<polars::prelude::IpcCompression>,
) -> PolarsResult<polars::io::ipc::BatchedWriter<W>> {
    let fields = schema.to_arrow(CompatLevel::newest());
    IpcWriter::new(out)
        .with_compat_level(CompatLevel::newest())
        .with_compression(compression)
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
        Format::Arrow => BatchWriter::Arrow(ipc_writer(out, schema, None).map_err(polars_err)?),
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
            // The printable columns are chunked as their conversion left them: aligned
            // again, since the batched writers take one chunk layout for every column.
            BatchWriter::Csv(w) => w.write_batch(&aligned(&printable(&batch, Style::Csv)?)),
            BatchWriter::Ndjson(w) => w.write_batch(&aligned(&printable(&batch, Style::Json)?)),
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

/// A table of `batches` laid out by `layout`, holding only the cells it shows.
pub fn table_of_stream(
    batches: impl Iterator<Item = Result<DataFrame>>,
    schema: &Schema,
    layout: TableLayout,
) -> Result<TableRows> {
    let mut table = TableRows::new(schema, layout);
    for batch in batches {
        table.push(&batch?)?;
    }
    Ok(table)
}

/// Writes `text` and a line break to `path` atomically.
pub fn write_text_file(text: &str, path: &Path) -> Result<()> {
    write_atomically(path, |out| {
        writeln!(out, "{text}").map_err(|error| Error::Write {
            path: path.to_path_buf(),
            error,
        })
    })
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

/// Whose conventions a frame is made printable for: each writer shows dates and times in
/// its own way, and refuses different things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Table,
    Csv,
    Json,
}

/// `df` with every column the `style`'s writer would panic on or refuse made text (see the
/// module docs), and binary columns as hex for CSV and JSON. A column that cannot be shown
/// at all is an error naming it. Columns that print as they are are shared, not copied.
pub(crate) fn printable(df: &DataFrame, style: Style) -> Result<DataFrame> {
    let mut out: Option<DataFrame> = None;
    for (i, column) in df.columns().iter().enumerate() {
        let name = column.name();
        let converted = printable_series(column.as_materialized_series(), style)
            .map_err(|message| column_error(name, message))?;
        if let Some(series) = converted {
            let target = out.get_or_insert_with(|| df.clone());
            target
                .replace_column(i, series.with_name(name.clone()).into_column())
                .map_err(|error| Error::Polars {
                    context: format!("column {name:?}"),
                    error,
                })?;
        }
    }
    Ok(out.unwrap_or_else(|| df.clone()))
}

fn column_error(name: &str, message: String) -> Error {
    Error::Polars {
        context: format!("column {name:?}"),
        error: PolarsError::ComputeError(message.into()),
    }
}

/// One column made printable: `None` when it prints as it is.
fn printable_series(s: &Series, style: Style) -> std::result::Result<Option<Series>, String> {
    let polars = |e: PolarsError| e.to_string();
    Ok(match s.dtype() {
        DataType::Binary if style != Style::Table => Some(
            s.binary()
                .map_err(polars)?
                .iter()
                .map(|v| v.map(hex::encode))
                .collect::<StringChunked>()
                .into_series(),
        ),
        DataType::Date => {
            let days = s.to_physical_repr();
            let days = days.i32().map_err(polars)?;
            let fits = |d: Option<i32>| d.is_none_or(|d| chrono_days(i64::from(d)));
            if fits(days.min()) && fits(days.max()) {
                return Ok(None);
            }
            Some(strings(days.iter().map(|d| d.map(show_date))))
        }
        DataType::Datetime(unit, tz) => {
            let values = s.to_physical_repr();
            let values = values.i64().map_err(polars)?;
            let fits = |v: Option<i64>| v.is_none_or(|v| chrono_days(split(v, *unit, 0).0));
            let in_range = fits(values.min()) && fits(values.max());
            let tz: Option<&str> = tz.as_ref().map(|z| z.as_str());
            // Without its `timezones` feature polars panics on a zone in a table, and in
            // JSON on any zone but UTC and an offset it parses (or panics parsing).
            let zone_ok = match style {
                Style::Table => tz.is_none(),
                Style::Json => tz.is_none_or(|z| z == "UTC"),
                Style::Csv => true,
            };
            if in_range && zone_ok {
                return Ok(None);
            }
            let unit = *unit;
            Some(strings(
                values
                    .iter()
                    .map(|v| v.map(|v| show_datetime(v, unit, tz, style))),
            ))
        }
        DataType::Time => {
            let nanos = s.to_physical_repr();
            let nanos = nanos.i64().map_err(polars)?;
            let fits = |v: Option<i64>| v.is_none_or(|v| (0..NANOS_PER_DAY).contains(&v));
            if fits(nanos.min()) && fits(nanos.max()) {
                return Ok(None);
            }
            Some(strings(
                nanos.iter().map(|v| v.map(|v| show_time(v, style))),
            ))
        }
        DataType::Duration(unit) => {
            let values = s.to_physical_repr();
            let values = values.i64().map_err(polars)?;
            // polars' CSV writer refuses durations; its JSON one panics on the one
            // millisecond value chrono cannot hold.
            let needed = match style {
                Style::Csv => true,
                Style::Json => *unit == TimeUnit::Milliseconds && values.min() == Some(i64::MIN),
                Style::Table => false,
            };
            if !needed {
                return Ok(None);
            }
            let unit = *unit;
            Some(strings(
                values.iter().map(|v| v.map(|v| iso_duration(v, unit))),
            ))
        }
        DataType::List(_) | DataType::Struct(_) if style == Style::Csv => {
            return Err(format!(
                "{} values do not fit CSV's cells; write json, ndjson, parquet or arrow",
                s.dtype()
            ));
        }
        DataType::List(inner) => {
            // polars' JSON writer reads a struct's row nulls from the start of its array,
            // not from where a list's values begin (polars-json's `struct_serializer`
            // drops its offset): a struct in a list whose offsets do not start at 0 (a
            // sliced batch) printed other rows' nulls. A trimmed list starts at 0, its
            // struct sliced to where its rows begin.
            let trimmed = if style == Style::Json && holds_struct(inner) {
                s.trim_lists_to_normalized_offsets()
            } else {
                None
            };
            let s = trimmed.as_ref().unwrap_or(s);
            if !has_values_to_check(inner) {
                return Ok(trimmed);
            }
            // polars' JSON writer formats the values under a null list entry or a null
            // struct row too (and drops them), but the series polars builds of a list's
            // values hides them (a struct series takes its rows' nulls into its fields):
            // unless the nulls are pushed down first, a date out of chrono's range under
            // a null struct in a list is not seen here and ends the writer.
            let propagated = s.propagate_nulls();
            let s = propagated.as_ref().unwrap_or(s);
            let list = s.list().map_err(polars)?;
            let changed = std::cell::Cell::new(false);
            let out = list
                .apply_to_inner(&|values| match printable_series(&values, style) {
                    Ok(Some(v)) => {
                        changed.set(true);
                        Ok(v)
                    }
                    Ok(None) => Ok(values),
                    Err(message) => Err(PolarsError::ComputeError(message.into())),
                })
                .map_err(polars)?;
            if changed.get() {
                Some(out.into_series())
            } else {
                propagated.or(trimmed)
            }
        }
        DataType::Struct(fields) => {
            let check = |f: &Field| {
                has_values_to_check(f.dtype()) || (style == Style::Json && trims(f.dtype()))
            };
            if !fields.iter().any(check) {
                return Ok(None);
            }
            // As for a list: the fields checked must be the ones the writer formats.
            let propagated = s.propagate_nulls();
            let s = propagated.as_ref().unwrap_or(s);
            let ca = s.struct_().map_err(polars)?;
            let mut changed = false;
            let mut series = Vec::with_capacity(fields.len());
            for field in ca.fields_as_series() {
                match printable_series(&field, style)
                    .map_err(|m| format!("field {:?}: {m}", field.name()))?
                {
                    Some(v) => {
                        changed = true;
                        series.push(v.with_name(field.name().clone()));
                    }
                    None => series.push(field),
                }
            }
            if !changed {
                return Ok(propagated);
            }
            let rebuilt = StructChunked::from_series(s.name().clone(), s.len(), series.iter())
                .map_err(polars)?
                .with_outer_validity(ca.rechunk_validity());
            Some(rebuilt.into_series())
        }
        _ => None,
    })
}

/// Whether a nested type holds values [`printable_series`] may have to change.
fn has_values_to_check(dtype: &DataType) -> bool {
    match dtype {
        DataType::Binary
        | DataType::Date
        | DataType::Datetime(..)
        | DataType::Time
        | DataType::Duration(_) => true,
        DataType::List(inner) => has_values_to_check(inner),
        DataType::Struct(fields) => fields.iter().any(|f| has_values_to_check(f.dtype())),
        _ => false,
    }
}

/// Whether a list's values hold a struct, at any depth of lists.
fn holds_struct(dtype: &DataType) -> bool {
    match dtype {
        DataType::Struct(_) => true,
        DataType::List(inner) => holds_struct(inner),
        _ => false,
    }
}

/// Whether a column holds a list of structs that the JSON writer needs trimmed, see
/// [`printable_series`].
fn trims(dtype: &DataType) -> bool {
    match dtype {
        DataType::List(inner) => holds_struct(inner),
        DataType::Struct(fields) => fields.iter().any(|f| trims(f.dtype())),
        _ => false,
    }
}

fn strings(values: impl Iterator<Item = Option<String>>) -> Series {
    values.collect::<StringChunked>().into_series()
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// The days (since 1970-01-01) of chrono's first and last date, -262143-01-01 and
/// +262142-12-31: polars formats dates and timestamps in this range and panics outside it.
const CHRONO_DAYS: std::ops::RangeInclusive<i64> = -96_465_292..=95_026_236;

fn chrono_days(days: i64) -> bool {
    CHRONO_DAYS.contains(&days)
}

/// `v` in `unit`, shifted by `offset_secs`: days since 1970-01-01 and nanoseconds into
/// the day. In i128, so no value overflows.
fn split(v: i64, unit: TimeUnit, offset_secs: i64) -> (i64, i64) {
    let per_unit: i128 = match unit {
        TimeUnit::Nanoseconds => 1,
        TimeUnit::Microseconds => 1_000,
        TimeUnit::Milliseconds => 1_000_000,
    };
    let nanos = i128::from(v) * per_unit + i128::from(offset_secs) * 1_000_000_000;
    let per_day = i128::from(NANOS_PER_DAY);
    // Both fit: |days| ≤ i64::MAX µs / a day, and the remainder is under a day.
    (
        nanos.div_euclid(per_day) as i64,
        nanos.rem_euclid(per_day) as i64,
    )
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, in i64 so that any day count works).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A date as chrono writes one: four-digit years, and a sign past 9999 or before 0.
fn show_days(days: i64) -> String {
    let (y, m, d) = civil(days);
    if (0..=9999).contains(&y) {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        format!("{y:+05}-{m:02}-{d:02}")
    }
}

fn show_date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".to_owned(),
        i32::MIN => "-infinity".to_owned(),
        d => show_days(i64::from(d)),
    }
}

/// A time of day as chrono writes one: `HH:MM:SS`, then a fraction of 3, 6 or 9 digits if
/// there is one (`fixed`: always that many). Hours past 23, or a sign, for a value outside
/// the day (which no valid time is, but a file may hold).
fn show_clock(nanos: i64, fixed: Option<usize>) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let secs = n / 1_000_000_000;
    let frac = n % 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let fraction = match fixed {
        Some(digits) => {
            let digits = digits.min(9);
            format!(".{:0digits$}", frac / 10u64.pow(9 - digits as u32))
        }
        None if frac == 0 => String::new(),
        None if frac.is_multiple_of(1_000_000) => format!(".{:03}", frac / 1_000_000),
        None if frac.is_multiple_of(1_000) => format!(".{:06}", frac / 1_000),
        None => format!(".{frac:09}"),
    };
    format!("{sign}{h:02}:{m:02}:{s:02}{fraction}")
}

fn show_time(nanos: i64, style: Style) -> String {
    match style {
        // polars' CSV writer: `%T%.9f`.
        Style::Csv => show_clock(nanos, Some(9)),
        Style::Table | Style::Json => show_clock(nanos, None),
    }
}

/// `"UTC"` or a `±HH:MM` offset, in seconds east; `None` for a named zone (which needs a
/// time zone database this build does not carry) or anything else.
fn fixed_offset(tz: &str) -> Option<i64> {
    if tz == "UTC" {
        return Some(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => (1, tz),
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    let secs = h.checked_mul(3600)?.checked_add(m.checked_mul(60)?)?;
    ((0..24 * 3600).contains(&secs) && (0..60).contains(&m)).then_some(sign * secs)
}

fn show_offset(secs: i64) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
}

/// A timestamp the way `style`'s polars writer shows one in range.
fn show_datetime(v: i64, unit: TimeUnit, tz: Option<&str>, style: Style) -> String {
    match v {
        i64::MAX => return "infinity".to_owned(),
        i64::MIN => return "-infinity".to_owned(),
        _ => {}
    }
    let digits = match unit {
        TimeUnit::Nanoseconds => 9,
        TimeUnit::Microseconds => 6,
        TimeUnit::Milliseconds => 3,
    };
    match (style, tz) {
        // `%FT%H:%M:%S.%6f` (by unit), in UTC: polars' CSV writer without time zones.
        (Style::Csv, _) => {
            let (days, nanos) = split(v, unit, 0);
            format!("{}T{}", show_days(days), show_clock(nanos, Some(digits)))
        }
        (_, None) => {
            let (days, nanos) = split(v, unit, 0);
            format!("{} {}", show_days(days), show_clock(nanos, None))
        }
        (Style::Table, Some(tz)) => {
            // A named zone is shown in UTC, and says so.
            let (offset, label) = match fixed_offset(tz) {
                Some(secs) => (secs, tz),
                None => (0, "UTC"),
            };
            let (days, nanos) = split(v, unit, offset);
            format!("{} {} {label}", show_days(days), show_clock(nanos, None))
        }
        // RFC 3339, as chrono's `to_rfc3339`.
        (Style::Json, Some(tz)) => {
            let offset = fixed_offset(tz).unwrap_or(0);
            let (days, nanos) = split(v, unit, offset);
            format!(
                "{}T{}{}",
                show_days(days),
                show_clock(nanos, None),
                show_offset(offset)
            )
        }
    }
}

/// An ISO 8601 duration as chrono writes one (`PT86400S`, `-PT1.5S`, `P0D`).
fn iso_duration(v: i64, unit: TimeUnit) -> String {
    let per_unit: i128 = match unit {
        TimeUnit::Nanoseconds => 1,
        TimeUnit::Microseconds => 1_000,
        TimeUnit::Milliseconds => 1_000_000,
    };
    let nanos = i128::from(v) * per_unit;
    if nanos == 0 {
        return "P0D".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let a = nanos.unsigned_abs();
    let (secs, frac) = (a / 1_000_000_000, a % 1_000_000_000);
    let fraction = if frac == 0 {
        String::new()
    } else {
        let text = format!("{frac:09}");
        format!(".{}", text.trim_end_matches('0'))
    };
    format!("{sign}PT{secs}{fraction}S")
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

    /// `[[{a: 1}, null], [{a: 3}, {a: 4}], [null, {a: 6}]]` sliced to its last two rows:
    /// list offsets that start at 2, under a struct with row nulls, as a sliced batch has.
    fn sliced_lists_of_structs() -> DataFrame {
        use polars_arrow::array::{Array, Int32Array, ListArray, StructArray};
        use polars_arrow::bitmap::Bitmap;
        use polars_arrow::datatypes::{ArrowDataType, Field as ArrowField};
        use polars_arrow::offset::Offsets;

        let fields = vec![ArrowField::new("a".into(), ArrowDataType::Int32, true)];
        let values = StructArray::try_new(
            ArrowDataType::Struct(fields),
            6,
            vec![Int32Array::from_slice([1, 2, 3, 4, 5, 6]).boxed()],
            Some(Bitmap::from([true, false, true, true, false, true])),
        )
        .expect("struct");
        let item = ArrowField::new("item".into(), values.dtype().clone(), true);
        let offsets = Offsets::<i64>::try_from_lengths([2, 2, 2].into_iter()).expect("offsets");
        let list = ListArray::<i64>::try_new(
            ArrowDataType::LargeList(Box::new(item)),
            offsets.into(),
            values.boxed(),
            None,
        )
        .expect("list")
        .sliced(1, 2);
        let lists = Series::try_from((PlSmallStr::from("l"), vec![list.boxed()])).expect("series");
        let ids = Series::new("id".into(), [1i64, 2]);
        let nested = StructChunked::from_series("s".into(), 2, [lists.clone(), ids].iter())
            .expect("struct of a list")
            .into_series();
        DataFrame::new(2, vec![lists.into_column(), nested.into_column()]).expect("df")
    }

    #[test]
    fn json_prints_the_nulls_of_structs_in_sliced_lists() {
        let df = sliced_lists_of_structs();
        let expected = concat!(
            r#"{"l":[{"a":3},{"a":4}],"s":{"l":[{"a":3},{"a":4}],"id":1}}"#,
            "\n",
            r#"{"l":[null,{"a":6}],"s":{"l":[null,{"a":6}],"id":2}}"#,
            "\n"
        );
        let mut whole = Vec::new();
        write(&df, Format::Ndjson, &mut whole).expect("ndjson");
        assert_eq!(String::from_utf8_lossy(&whole), expected);
        // Batch by batch, each batch a slice of the frame.
        let mut batched = Vec::new();
        let batches = (0..2).map(|at| Ok(df.slice(at, 1)));
        write_stream(batches, df.schema(), Format::Ndjson, &mut batched).expect("ndjson stream");
        assert_eq!(String::from_utf8_lossy(&batched), expected);
        let mut json = Vec::new();
        write(&df, Format::Json, &mut json).expect("json");
        let json = String::from_utf8_lossy(&json);
        assert!(
            json.contains(r#"[null,{"a":6}]"#) && !json.contains(r#"{"a":5}"#),
            "{json}"
        );
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
        assert!(t.trim_end().ends_with("\n2 rows × 3 columns"), "{t}");
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

/// Every value at the edges of every type, printed in every format: each prints, and in
/// range exactly as polars prints it.
#[cfg(test)]
mod edges {
    use polars_arrow::temporal_conversions as tc;

    use super::*;

    const UNITS: [TimeUnit; 3] = [
        TimeUnit::Milliseconds,
        TimeUnit::Microseconds,
        TimeUnit::Nanoseconds,
    ];

    /// Values in range of every unit: around 1970, year 0, fractions of each size.
    const STAMPS: [i64; 10] = [
        0,
        1,
        -1,
        999,
        1_500,
        1_700_000_000_123,
        -62_167_219_200_000,
        253_402_300_799_999,
        -1_000_000_007,
        123_456_789,
    ];

    fn text(df: &DataFrame, format: Format) -> String {
        let mut out = Vec::new();
        write(df, format, &mut out).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    fn datetimes(values: &[i64], unit: TimeUnit, tz: Option<&str>) -> DataFrame {
        let tz = polars::prelude::TimeZone::opt_try_new(tz).expect("zone");
        let s = Int64Chunked::from_slice("t".into(), values)
            .into_datetime(unit, tz)
            .into_series();
        DataFrame::new(values.len(), vec![s.into_column()]).expect("df")
    }

    /// The cells of a one-column CSV, after its header.
    fn csv_cells(df: &DataFrame) -> Vec<String> {
        text(df, Format::Csv)
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect()
    }

    fn ndjson_cells(df: &DataFrame) -> Vec<serde_json::Value> {
        text(df, Format::Ndjson)
            .lines()
            .map(|l| {
                let row: serde_json::Value = serde_json::from_str(l).expect("json");
                row["t"].clone()
            })
            .collect()
    }

    #[test]
    fn chronos_range_is_the_one_polars_formats() {
        let (lo, hi) = (*CHRONO_DAYS.start(), *CHRONO_DAYS.end());
        for d in [lo, hi, 0, 10_957] {
            let d32 = i32::try_from(d).expect("i32");
            assert_eq!(
                tc::date32_to_date_opt(d32).map(|x| x.to_string()),
                Some(show_days(d)),
                "{d}"
            );
        }
        assert!(tc::date32_to_date_opt(i32::try_from(hi + 1).expect("i32")).is_none());
        assert!(tc::date32_to_date_opt(i32::try_from(lo - 1).expect("i32")).is_none());
        let day_us = 86_400_000_000i64;
        assert!(tc::timestamp_us_to_datetime_opt(hi * day_us + day_us - 1).is_some());
        assert!(tc::timestamp_us_to_datetime_opt((hi + 1) * day_us).is_none());
        assert!(tc::timestamp_us_to_datetime_opt(lo * day_us).is_some());
        assert!(tc::timestamp_us_to_datetime_opt(lo * day_us - 1).is_none());
    }

    #[test]
    fn dates_print_as_chrono_prints_them() {
        for d in [
            0,
            -1,
            -719_528,
            -719_529,
            2_932_896,
            2_932_897,
            95_026_236,
            -96_465_292,
            -2_440_588,
        ] {
            let d32 = i32::try_from(d).expect("i32");
            assert_eq!(
                tc::date32_to_date_opt(d32).map(|x| x.to_string()),
                Some(show_days(d))
            );
        }
        assert_eq!(civil(0), (1970, 1, 1));
        // PostgreSQL's last date, past chrono's.
        assert_eq!(show_days(2_145_042_905), "+5874897-12-31");
    }

    #[test]
    fn in_range_timestamps_print_as_polars_prints_them() {
        for unit in UNITS {
            let df = datetimes(&STAMPS, unit, None);
            let ours: Vec<String> = STAMPS
                .iter()
                .map(|v| show_datetime(*v, unit, None, Style::Csv))
                .collect();
            assert_eq!(csv_cells(&df), ours, "{unit:?} csv");
            let ours: Vec<serde_json::Value> = STAMPS
                .iter()
                .map(|v| show_datetime(*v, unit, None, Style::Json).into())
                .collect();
            assert_eq!(ndjson_cells(&df), ours, "{unit:?} json");
            let column = df.column("t").expect("t");
            for (i, v) in STAMPS.iter().enumerate() {
                let polars = column.get(i).expect("value").to_string();
                assert_eq!(polars, show_datetime(*v, unit, None, Style::Table));
            }
            let utc = datetimes(&STAMPS, unit, Some("UTC"));
            let ours: Vec<serde_json::Value> = STAMPS
                .iter()
                .map(|v| show_datetime(*v, unit, Some("UTC"), Style::Json).into())
                .collect();
            assert_eq!(ndjson_cells(&utc), ours, "{unit:?} json UTC");
            let ours: Vec<String> = STAMPS
                .iter()
                .map(|v| show_datetime(*v, unit, Some("UTC"), Style::Csv))
                .collect();
            assert_eq!(csv_cells(&utc), ours, "{unit:?} csv UTC");
        }
    }

    #[test]
    fn times_and_durations_print_as_polars_prints_them() {
        let nanos = [
            0i64,
            1,
            1_000,
            1_000_000,
            86_399_999_999_999,
            45_296_500_000_000,
        ];
        let s = Int64Chunked::from_slice("t".into(), &nanos)
            .into_series()
            .cast(&DataType::Time)
            .expect("time");
        let df = DataFrame::new(nanos.len(), vec![s.into_column()]).expect("df");
        let ours: Vec<String> = nanos.iter().map(|v| show_time(*v, Style::Csv)).collect();
        assert_eq!(csv_cells(&df), ours);
        let ours: Vec<serde_json::Value> = nanos
            .iter()
            .map(|v| show_time(*v, Style::Json).into())
            .collect();
        assert_eq!(ndjson_cells(&df), ours);
        // Outside the day (no polars time is, but a file may hold one): still text.
        assert_eq!(show_clock(NANOS_PER_DAY, None), "24:00:00");
        assert_eq!(show_clock(-1, Some(9)), "-00:00:00.000000001");
        for unit in UNITS {
            let values = [
                0i64,
                1,
                -1,
                1_500,
                -1_500,
                86_400_000,
                i64::MAX,
                i64::MIN + 1,
            ];
            let s = Int64Chunked::from_slice("t".into(), &values)
                .into_series()
                .cast(&DataType::Duration(unit))
                .expect("duration");
            let df = DataFrame::new(values.len(), vec![s.into_column()]).expect("df");
            let ours: Vec<serde_json::Value> = values
                .iter()
                .map(|v| iso_duration(*v, unit).into())
                .collect();
            assert_eq!(ndjson_cells(&df), ours, "{unit:?}");
        }
    }

    #[test]
    fn extremes_print_in_every_format() {
        let day_us = 86_400_000_000i64;
        let stamps = [
            i64::MAX,
            i64::MIN,
            // 294276-12-31, PostgreSQL's last year, is past i64 µs; this is past chrono's.
            (95_026_236 + 1) * day_us,
            1_700_000_000_000_000,
        ];
        let dates = [i32::MAX, i32::MIN, 2_145_042_905, -2_440_588 - 1, 19_000];
        let df = DataFrame::new(
            4,
            vec![
                datetimes(&stamps, TimeUnit::Microseconds, None)
                    .column("t")
                    .expect("t")
                    .clone(),
                datetimes(&stamps, TimeUnit::Microseconds, Some("UTC"))
                    .column("t")
                    .expect("t")
                    .clone()
                    .with_name("tz".into()),
                Int32Chunked::from_slice("d".into(), &dates[..4])
                    .into_series()
                    .cast(&DataType::Date)
                    .expect("date")
                    .into_column(),
                // (polars makes a time outside the day null: none reaches a writer.)
                Int64Chunked::from_slice("at".into(), &[0, NANOS_PER_DAY - 1, 5, 1_000])
                    .into_time()
                    .into_series()
                    .into_column(),
                Int64Chunked::from_slice("dur".into(), &[i64::MIN, i64::MAX, 0, -1])
                    .into_series()
                    .cast(&DataType::Duration(TimeUnit::Milliseconds))
                    .expect("duration")
                    .into_column(),
            ],
        )
        .expect("df");
        let csv = text(&df, Format::Csv);
        assert!(
            csv.starts_with("t,tz,d,at,dur\ninfinity,infinity,infinity,00:00:00.000000000,"),
            "{csv}"
        );
        assert!(csv.contains("+262143-01-01T00:00:00.000000"), "{csv}");
        assert!(csv.contains("+5874897-12-31"), "{csv}");
        let json = text(&df, Format::Json);
        let rows: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(rows[1]["t"], "-infinity");
        assert_eq!(rows[1]["d"], "-infinity");
        assert_eq!(rows[2]["tz"], "+262143-01-01T00:00:00+00:00");
        assert_eq!(rows[3]["tz"], "2023-11-14T22:13:20+00:00");
        assert_eq!(rows[1]["at"], "23:59:59.999999999");
        assert_eq!(rows[0]["dur"], "-PT9223372036854775.808S");
        assert_eq!(text(&df, Format::Ndjson).lines().count(), 4);
        let table = text(&df, Format::Table);
        for shown in [
            "infinity",
            "-infinity",
            "+262143-01-01 00:00:00",
            "2023-11-14 22:13:20 UTC",
            "-4713-11-23",
        ] {
            assert!(table.contains(shown), "{shown} in\n{table}");
        }
        for format in [Format::Parquet, Format::Arrow] {
            let mut out = Vec::new();
            write(&df, format, &mut out).expect("binary formats carry the values as they are");
        }
    }

    #[test]
    fn zones_print_without_a_zone_database() {
        for (zone, table, json) in [
            (
                "UTC",
                "2023-11-14 22:13:20 UTC",
                "2023-11-14T22:13:20+00:00",
            ),
            (
                "+05:30",
                "2023-11-15 03:43:20 +05:30",
                "2023-11-15T03:43:20+05:30",
            ),
            (
                "-01:00",
                "2023-11-14 21:13:20 -01:00",
                "2023-11-14T21:13:20-01:00",
            ),
            (
                "America/New_York",
                "2023-11-14 22:13:20 UTC",
                "2023-11-14T22:13:20+00:00",
            ),
            (
                "99:00",
                "2023-11-14 22:13:20 UTC",
                "2023-11-14T22:13:20+00:00",
            ),
        ] {
            let df = datetimes(&[1_700_000_000_000], TimeUnit::Milliseconds, Some(zone));
            let t = text(&df, Format::Table);
            assert!(t.contains(table), "{zone}: {t}");
            assert_eq!(
                ndjson_cells(&df),
                vec![serde_json::Value::from(json)],
                "{zone}"
            );
            assert_eq!(csv_cells(&df), vec!["2023-11-14T22:13:20.000".to_owned()]);
        }
    }

    #[test]
    fn nested_values_are_made_printable_or_refused_by_csv() {
        let stamps = datetimes(&[i64::MAX, 0], TimeUnit::Microseconds, Some("UTC"));
        let list = stamps
            .column("t")
            .expect("t")
            .as_materialized_series()
            .implode()
            .expect("list")
            .into_series()
            .with_name("l".into());
        let blobs = BinaryChunked::from_slice("b".into(), &[b"\x00\xff".as_slice()])
            .into_series()
            .implode()
            .expect("list")
            .into_series()
            .with_name("b".into());
        let df = DataFrame::new(1, vec![list.into_column(), blobs.into_column()]).expect("df");
        let json = text(&df, Format::Json);
        assert_eq!(
            json.trim(),
            r#"[{"l":["infinity","1970-01-01T00:00:00+00:00"],"b":["00ff"]}]"#
        );
        let table = text(&df, Format::Table);
        assert!(table.contains("infinity"), "{table}");
        let mut out = Vec::new();
        let e = write(&df, Format::Csv, &mut out).expect_err("lists are not CSV");
        assert!(e.to_string().contains("column \"l\""), "{e}");
    }

    #[test]
    /// output_formats fuzz finding (crash-08fc447e…): polars' JSON writer formats the
    /// fields of a null struct row in a list, which the check did not see.
    fn a_date_under_a_null_struct_in_a_list_prints() {
        use polars_arrow::array::{ListArray, PrimitiveArray, StructArray};
        use polars_arrow::bitmap::Bitmap;
        use polars_arrow::datatypes::{ArrowDataType as A, Field as F};
        use polars_arrow::offset::OffsetsBuffer;

        // Day 1,369,449,648 is past chrono's last date.
        let days = PrimitiveArray::<i32>::from_vec(vec![1_369_449_648]).to(A::Date32);
        let fields = vec![F::new("d".into(), A::Date32, true)];
        let rows = StructArray::new(
            A::Struct(fields.clone()),
            1,
            vec![days.boxed()],
            Some(Bitmap::from([false])),
        );
        let item = F::new("item".into(), A::Struct(fields), true);
        let offsets = OffsetsBuffer::try_from(vec![0i64, 1]).expect("offsets");
        let list = ListArray::<i64>::new(A::LargeList(Box::new(item)), offsets, rows.boxed(), None);
        let s = Series::try_from((PlSmallStr::from("l"), list.boxed())).expect("series");
        let df = DataFrame::new(1, vec![s.into_column()]).expect("df");
        assert_eq!(text(&df, Format::Json).trim(), r#"[{"l":[null]}]"#);
        assert_eq!(text(&df, Format::Ndjson).trim(), r#"{"l":[null]}"#);
        text(&df, Format::Table);
    }

    #[test]
    fn a_huge_cell_is_cut_to_the_line_in_a_table() {
        let long = "x".repeat(5_000_000);
        let df = df!("t" => [long.as_str()]).expect("df");
        let layout = TableLayout {
            max_width: 80,
            max_rows: DEFAULT_MAX_ROWS,
        };
        let table = render_table(&df, layout).expect("table");
        assert!(table.lines().all(|l| l.chars().count() <= 80), "{table}");
        assert!(table.contains("xxx…"), "{table}");
    }
}

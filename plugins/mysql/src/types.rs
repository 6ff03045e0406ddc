//! MySQL's column types as Arrow types, and the builders that decode values into them.
//!
//! The type comes from the result's column metadata (the prepared statement's, so it is
//! known even when no row comes back), never from the values:
//!
//! | MySQL | Arrow |
//! | --- | --- |
//! | `TINYINT` … `BIGINT` | `Int8` … `Int64`; `UNSIGNED`: `UInt8` … `UInt64` |
//! | `BOOL` (an alias of `TINYINT(1)`, which holds -128…127) | `Int8`, 0 and 1, as pymysql gives |
//! | `FLOAT`, `DOUBLE` | `Float32`, `Float64` |
//! | `DECIMAL(p, s)` | `Decimal128(p, s)`, exact; a value past 38 digits is an error |
//! | `BIT(1)` | `Boolean`; `BIT(n)`: `UInt64` holding the bits |
//! | `YEAR` | `Int16` |
//! | `DATE` | `Date32` |
//! | `DATETIME(fsp)` | `Timestamp(µs)`, no time zone: MySQL stores none |
//! | `TIMESTAMP(fsp)` | `Timestamp(µs, "UTC")`: the session runs in UTC (`time_zone = '+00:00'`) |
//! | `TIME(fsp)` | `Duration(µs)`: negative and past 24 hours (-838:59:59 … 838:59:59) |
//! | `CHAR`, `VARCHAR`, `TEXT`, `ENUM`, `SET`, `JSON` | `Utf8View` (the session is utf8mb4) |
//! | `BINARY`, `VARBINARY`, `BLOB`, `GEOMETRY` | `BinaryView` (geometry as MySQL's SRID + WKB) |
//!
//! Text and bytes are views, as polars holds them (and as the other connectors send them):
//! the host hands them over as they are, where `Utf8` would be copied into views again.
//!
//! MySQL's zero dates (`0000-00-00`, `0000-00-00 00:00:00`) and dates with a zero month or
//! day (`2024-00-10`, allowed by some SQL modes) have no Arrow value. A read that meets
//! one fails, naming the column and the row, unless the connection says
//! `zero_dates = "null"`, which reads them as NULL (as Connector/J's
//! `zeroDateTimeBehavior=CONVERT_TO_NULL` does).

use std::sync::Arc;

use mysql::Value;
use mysql::consts::{ColumnFlags, ColumnType};
use plugboard_api::arrow_array::builder::{
    BinaryViewBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    DurationMicrosecondBuilder, Float32Builder, Float64Builder, Int8Builder, Int16Builder,
    Int32Builder, Int64Builder, StringViewBuilder, TimestampMicrosecondBuilder, UInt8Builder,
    UInt16Builder, UInt32Builder, UInt64Builder,
};
use plugboard_api::arrow_array::{ArrayRef, RecordBatch};
use plugboard_api::arrow_schema::{DataType, Field, Schema, SchemaRef};

/// The character set number of binary strings: `BINARY`, `VARBINARY`, `BLOB`.
const BINARY_CHARSET: u16 = 63;

/// Decimal128 holds 38 digits.
pub const MAX_PRECISION: u8 = 38;

/// What to do with a date that has no calendar value (`0000-00-00`, a zero month or day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroDates {
    /// Fail the read, naming the column and row.
    #[default]
    Error,
    /// Read it as NULL.
    Null,
}

/// How one column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// `BIT(n)`, n > 1: the bits as an unsigned number.
    Bits,
    Year,
    Date,
    DateTime,
    Timestamp,
    Time,
    Utf8,
    Binary,
}

impl Kind {
    /// The Arrow type of a column of this kind.
    pub fn data_type(self) -> DataType {
        use plugboard_api::arrow_schema::TimeUnit::Microsecond;
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int8 => DataType::Int8,
            Kind::Int16 | Kind::Year => DataType::Int16,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::UInt8 => DataType::UInt8,
            Kind::UInt16 => DataType::UInt16,
            Kind::UInt32 => DataType::UInt32,
            Kind::UInt64 | Kind::Bits => DataType::UInt64,
            Kind::Float32 => DataType::Float32,
            Kind::Float64 => DataType::Float64,
            Kind::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            Kind::Date => DataType::Date32,
            Kind::DateTime => DataType::Timestamp(Microsecond, None),
            Kind::Timestamp => DataType::Timestamp(Microsecond, Some("UTC".into())),
            Kind::Time => DataType::Duration(Microsecond),
            Kind::Utf8 => DataType::Utf8View,
            Kind::Binary => DataType::BinaryView,
        }
    }
}

/// The kind of a result column, from its metadata.
pub fn column_kind(column: &mysql::Column) -> Result<Kind, String> {
    use ColumnType as T;
    let unsigned = column.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    let pick = |signed: Kind, unsigned_kind: Kind| if unsigned { unsigned_kind } else { signed };
    Ok(match column.column_type() {
        T::MYSQL_TYPE_TINY => pick(Kind::Int8, Kind::UInt8),
        T::MYSQL_TYPE_SHORT => pick(Kind::Int16, Kind::UInt16),
        T::MYSQL_TYPE_INT24 | T::MYSQL_TYPE_LONG => pick(Kind::Int32, Kind::UInt32),
        T::MYSQL_TYPE_LONGLONG => pick(Kind::Int64, Kind::UInt64),
        T::MYSQL_TYPE_FLOAT => Kind::Float32,
        T::MYSQL_TYPE_DOUBLE => Kind::Float64,
        T::MYSQL_TYPE_DECIMAL | T::MYSQL_TYPE_NEWDECIMAL => {
            let scale = column.decimals();
            if scale > MAX_PRECISION {
                return Err(format!(
                    "DECIMAL with scale {scale} has no Arrow type (at most {MAX_PRECISION} \
                     digits); CAST it to DECIMAL(38, 10) or to DOUBLE"
                ));
            }
            // The display length counts the digits, the point and (if signed) the sign.
            let digits = column
                .column_length()
                .saturating_sub(u32::from(scale > 0))
                .saturating_sub(u32::from(!unsigned));
            let precision = digits.clamp(u32::from(scale.max(1)), u32::from(MAX_PRECISION)) as u8;
            Kind::Decimal {
                precision,
                scale: scale as i8,
            }
        }
        T::MYSQL_TYPE_BIT if column.column_length() == 1 => Kind::Bool,
        T::MYSQL_TYPE_BIT => Kind::Bits,
        T::MYSQL_TYPE_YEAR => Kind::Year,
        T::MYSQL_TYPE_DATE | T::MYSQL_TYPE_NEWDATE => Kind::Date,
        T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_DATETIME2 => Kind::DateTime,
        T::MYSQL_TYPE_TIMESTAMP | T::MYSQL_TYPE_TIMESTAMP2 => Kind::Timestamp,
        T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => Kind::Time,
        T::MYSQL_TYPE_GEOMETRY | T::MYSQL_TYPE_VECTOR => Kind::Binary,
        T::MYSQL_TYPE_JSON | T::MYSQL_TYPE_ENUM | T::MYSQL_TYPE_SET | T::MYSQL_TYPE_NULL => {
            Kind::Utf8
        }
        T::MYSQL_TYPE_VARCHAR
        | T::MYSQL_TYPE_VAR_STRING
        | T::MYSQL_TYPE_STRING
        | T::MYSQL_TYPE_TINY_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_LONG_BLOB
        | T::MYSQL_TYPE_BLOB => {
            if column.character_set() == BINARY_CHARSET {
                Kind::Binary
            } else {
                Kind::Utf8
            }
        }
        other => return Err(format!("MySQL type {other:?} has no Arrow type here")),
    })
}

/// The schema of a result whose columns have these kinds.
pub fn schema(names: &[String], kinds: &[Kind]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .zip(kinds)
            .map(|(n, k)| Field::new(n, k.data_type(), true))
            .collect::<Vec<_>>(),
    ))
}

/// An Arrow builder for one column.
pub enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    UInt8(UInt8Builder),
    UInt16(UInt16Builder),
    UInt32(UInt32Builder),
    UInt64(UInt64Builder),
    Bits(UInt64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Time(DurationMicrosecondBuilder),
    Utf8(StringViewBuilder),
    Binary(BinaryViewBuilder),
}

/// Why a value could not be decoded; the caller adds the column and row.
pub type ValueError = String;

impl ColumnBuilder {
    pub fn new(kind: Kind, capacity: usize) -> Self {
        match kind {
            Kind::Bool => Self::Bool(BooleanBuilder::with_capacity(capacity)),
            Kind::Int8 => Self::Int8(Int8Builder::with_capacity(capacity)),
            Kind::Int16 | Kind::Year => Self::Int16(Int16Builder::with_capacity(capacity)),
            Kind::Int32 => Self::Int32(Int32Builder::with_capacity(capacity)),
            Kind::Int64 => Self::Int64(Int64Builder::with_capacity(capacity)),
            Kind::UInt8 => Self::UInt8(UInt8Builder::with_capacity(capacity)),
            Kind::UInt16 => Self::UInt16(UInt16Builder::with_capacity(capacity)),
            Kind::UInt32 => Self::UInt32(UInt32Builder::with_capacity(capacity)),
            Kind::UInt64 => Self::UInt64(UInt64Builder::with_capacity(capacity)),
            Kind::Bits => Self::Bits(UInt64Builder::with_capacity(capacity)),
            Kind::Float32 => Self::Float32(Float32Builder::with_capacity(capacity)),
            Kind::Float64 => Self::Float64(Float64Builder::with_capacity(capacity)),
            Kind::Decimal { precision, scale } => {
                Self::Decimal(Decimal128Builder::with_capacity(capacity), precision, scale)
            }
            Kind::Date => Self::Date(Date32Builder::with_capacity(capacity)),
            Kind::DateTime => {
                Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity), None)
            }
            Kind::Timestamp => Self::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity),
                Some("UTC".into()),
            ),
            Kind::Time => Self::Time(DurationMicrosecondBuilder::with_capacity(capacity)),
            Kind::Utf8 => Self::Utf8(StringViewBuilder::with_capacity(capacity)),
            Kind::Binary => Self::Binary(BinaryViewBuilder::with_capacity(capacity)),
        }
    }

    /// Appends one value: typed (the binary protocol) or text (the text protocol).
    pub fn push(&mut self, value: &Value, zero_dates: ZeroDates) -> Result<(), ValueError> {
        if matches!(value, Value::NULL) {
            self.push_null();
            return Ok(());
        }
        match self {
            Self::Bool(b) => b.append_value(bits(value)? != 0),
            Self::Bits(b) => b.append_value(bits(value)?),
            Self::Int8(b) => b.append_value(narrow(signed(value)?)?),
            Self::Int16(b) => b.append_value(narrow(signed(value)?)?),
            Self::Int32(b) => b.append_value(narrow(signed(value)?)?),
            Self::Int64(b) => b.append_value(signed(value)?),
            Self::UInt8(b) => b.append_value(narrow(unsigned(value)?)?),
            Self::UInt16(b) => b.append_value(narrow(unsigned(value)?)?),
            Self::UInt32(b) => b.append_value(narrow(unsigned(value)?)?),
            Self::UInt64(b) => b.append_value(unsigned(value)?),
            Self::Float32(b) => b.append_value(float(value)? as f32),
            Self::Float64(b) => b.append_value(float(value)?),
            Self::Decimal(b, precision, scale) => {
                b.append_value(decimal(bytes(value)?, *precision, *scale)?)
            }
            Self::Date(b) => match date_parts(value)? {
                Some((y, m, d, ..)) => b.append_value(days_from_civil(y, m, d)),
                None => return zero(zero_dates, || b.append_null()),
            },
            Self::Timestamp(b, _) => match date_parts(value)? {
                Some((y, m, d, h, mi, s, us)) => b.append_value(
                    i64::from(days_from_civil(y, m, d)) * 86_400_000_000
                        + (i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) * 1_000_000
                        + i64::from(us),
                ),
                None => return zero(zero_dates, || b.append_null()),
            },
            Self::Time(b) => b.append_value(time_micros(value)?),
            Self::Utf8(b) => b.append_value(
                std::str::from_utf8(bytes(value)?)
                    .map_err(|_| "not valid UTF-8 (the session's character set is utf8mb4)")?,
            ),
            Self::Binary(b) => b.append_value(bytes(value)?),
        }
        Ok(())
    }

    pub fn push_null(&mut self) {
        match self {
            Self::Bool(b) => b.append_null(),
            Self::Int8(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::UInt8(b) => b.append_null(),
            Self::UInt16(b) => b.append_null(),
            Self::UInt32(b) => b.append_null(),
            Self::UInt64(b) | Self::Bits(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Decimal(b, ..) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Timestamp(b, _) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
        }
    }

    /// The column built so far; the builder starts empty again.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Int8(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::UInt8(b) => Arc::new(b.finish()),
            Self::UInt16(b) => Arc::new(b.finish()),
            Self::UInt32(b) => Arc::new(b.finish()),
            Self::UInt64(b) | Self::Bits(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Decimal(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale were checked by column_kind"),
            ),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Timestamp(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
        }
    }
}

/// Builders for a whole result, filled row by row and emptied into record batches.
pub struct Columns {
    pub schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    kinds: Vec<Kind>,
    pub rows: usize,
}

impl Columns {
    pub fn new(schema: SchemaRef, kinds: Vec<Kind>, capacity: usize) -> Self {
        Self {
            builders: kinds
                .iter()
                .map(|k| ColumnBuilder::new(*k, capacity))
                .collect(),
            schema,
            kinds,
            rows: 0,
        }
    }

    pub fn builders(&mut self) -> &mut [ColumnBuilder] {
        &mut self.builders
    }

    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }

    /// The rows built so far as one batch.
    pub fn batch(&mut self) -> Result<RecordBatch, String> {
        let arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        self.rows = 0;
        RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .map_err(|e| format!("cannot assemble the result: {e}"))
    }
}

fn zero(policy: ZeroDates, null: impl FnOnce()) -> Result<(), ValueError> {
    match policy {
        ZeroDates::Null => {
            null();
            Ok(())
        }
        ZeroDates::Error => Err("a zero date (0000-00-00, or a zero month or day) has no \
             calendar value; set zero_dates = \"null\" on the connection to read such dates \
             as NULL, or NULLIF the column in the query"
            .to_owned()),
    }
}

fn bytes(value: &Value) -> Result<&[u8], ValueError> {
    match value {
        Value::Bytes(b) => Ok(b),
        other => Err(format!("expected text or bytes, the server sent {other:?}")),
    }
}

fn text(value: &Value) -> Result<&str, ValueError> {
    std::str::from_utf8(bytes(value)?).map_err(|_| "a number that is not text".to_owned())
}

fn signed(value: &Value) -> Result<i64, ValueError> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::UInt(u) => i64::try_from(*u).map_err(|_| format!("{u} is out of range")),
        Value::Bytes(_) => text(value)?
            .parse()
            .map_err(|_| format!("{:?} is not an integer", text(value).unwrap_or_default())),
        other => Err(format!("expected an integer, the server sent {other:?}")),
    }
}

fn unsigned(value: &Value) -> Result<u64, ValueError> {
    match value {
        Value::UInt(u) => Ok(*u),
        Value::Int(i) => u64::try_from(*i).map_err(|_| format!("{i} is out of range")),
        Value::Bytes(_) => text(value)?
            .parse()
            .map_err(|_| format!("{:?} is not an integer", text(value).unwrap_or_default())),
        other => Err(format!("expected an integer, the server sent {other:?}")),
    }
}

/// `BIT(n)`: big-endian bytes in either protocol.
fn bits(value: &Value) -> Result<u64, ValueError> {
    match value {
        Value::Bytes(b) if b.len() <= 8 => Ok(b.iter().fold(0u64, |n, c| (n << 8) | u64::from(*c))),
        Value::Int(_) | Value::UInt(_) => unsigned(value),
        other => Err(format!(
            "expected the bits of a BIT column, the server sent {other:?}"
        )),
    }
}

fn narrow<T: TryFrom<U>, U: Copy + std::fmt::Display>(v: U) -> Result<T, ValueError> {
    T::try_from(v).map_err(|_| format!("{v} is out of the column's range"))
}

fn float(value: &Value) -> Result<f64, ValueError> {
    match value {
        Value::Float(f) => Ok(f64::from(*f)),
        Value::Double(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::UInt(u) => Ok(*u as f64),
        Value::Bytes(_) => text(value)?
            .parse()
            .map_err(|_| format!("{:?} is not a number", text(value).unwrap_or_default())),
        other => Err(format!("expected a number, the server sent {other:?}")),
    }
}

/// A decimal's text (`-12.340`) as an integer scaled by `scale`, exactly.
pub fn decimal(text: &[u8], precision: u8, scale: i8) -> Result<i128, ValueError> {
    let shown = || String::from_utf8_lossy(text).into_owned();
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let (whole, fraction) = match body.iter().position(|c| *c == b'.') {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, &[][..]),
    };
    let scale = scale.max(0) as usize;
    if whole.is_empty() && fraction.is_empty()
        || !whole.iter().chain(fraction).all(u8::is_ascii_digit)
    {
        return Err(format!("{:?} is not a decimal number", shown()));
    }
    // Trailing zeros past the scale are harmless; other digits there would be lost.
    if fraction.len() > scale && fraction[scale..].iter().any(|c| *c != b'0') {
        return Err(format!(
            "{} has more than the column's {scale} decimal places",
            shown()
        ));
    }
    let too_many = || {
        format!(
            "{} has more than {precision} digits, the most this column holds as an exact \
             decimal (Arrow's is 38); CAST it to a smaller DECIMAL or to DOUBLE",
            shown()
        )
    };
    let fraction = &fraction[..fraction.len().min(scale)];
    let padding = std::iter::repeat_n(&b'0', scale - fraction.len());
    let mut n: i128 = 0;
    for c in whole.iter().chain(fraction).chain(padding) {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(i128::from(c - b'0')))
            .ok_or_else(too_many)?;
    }
    if n >= 10i128.pow(u32::from(precision.min(MAX_PRECISION))) {
        return Err(too_many());
    }
    Ok(if negative { -n } else { n })
}

/// `(y, m, d, h, mi, s, µs)`, or `None` for a date without a calendar value.
type DateParts = (i32, u32, u32, u32, u32, u32, u32);

fn date_parts(value: &Value) -> Result<Option<DateParts>, ValueError> {
    let (y, m, d, h, mi, s, us) = match value {
        Value::Date(y, m, d, h, mi, s, us) => (
            i32::from(*y),
            u32::from(*m),
            u32::from(*d),
            u32::from(*h),
            u32::from(*mi),
            u32::from(*s),
            *us,
        ),
        Value::Bytes(_) => parse_datetime(text(value)?)?,
        other => return Err(format!("expected a date, the server sent {other:?}")),
    };
    if m == 0 || d == 0 {
        return Ok(None);
    }
    if m > 12 || d > days_in_month(y, m) || h > 23 || mi > 59 || s > 59 || us > 999_999 {
        return Err(format!(
            "{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06} is not a valid date and time"
        ));
    }
    Ok(Some((y, m, d, h, mi, s, us)))
}

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]`, as the text protocol sends dates.
fn parse_datetime(t: &str) -> Result<DateParts, ValueError> {
    let bad = || format!("{t:?} is not a date");
    let (date, time) = t.split_once([' ', 'T']).unwrap_or((t, ""));
    let mut d = date
        .splitn(3, '-')
        .map(|p| p.parse::<u32>().map_err(|_| bad()));
    let (y, m, day) = (
        d.next().ok_or_else(bad)??,
        d.next().ok_or_else(bad)??,
        d.next().ok_or_else(bad)??,
    );
    let (h, mi, s, us) = if time.is_empty() {
        (0, 0, 0, 0)
    } else {
        let (h, mi, s, us, negative) = parse_time(time).map_err(|_| bad())?;
        if negative || h > 23 {
            return Err(bad());
        }
        (h, mi, s, us)
    };
    Ok((i32::try_from(y).map_err(|_| bad())?, m, day, h, mi, s, us))
}

/// `[-]H…H:MM:SS[.ffffff]`: hours may pass 24.
fn parse_time(t: &str) -> Result<(u32, u32, u32, u32, bool), ValueError> {
    let bad = || format!("{t:?} is not a time");
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (hms, fraction) = t.split_once('.').unwrap_or((t, ""));
    let mut parts = hms
        .splitn(3, ':')
        .map(|p| p.parse::<u32>().map_err(|_| bad()));
    let h = parts.next().ok_or_else(bad)??;
    let mi = parts.next().ok_or_else(bad)??;
    let s = parts.next().ok_or_else(bad)??;
    if fraction.len() > 6 || !fraction.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let us = format!("{fraction:0<6}")
        .parse::<u32>()
        .map_err(|_| bad())?;
    Ok((h, mi, s, us, negative))
}

fn time_micros(value: &Value) -> Result<i64, ValueError> {
    let (negative, days, h, mi, s, us) = match value {
        Value::Time(neg, days, h, mi, s, us) => (
            *neg,
            *days,
            u32::from(*h),
            u32::from(*mi),
            u32::from(*s),
            *us,
        ),
        Value::Bytes(_) => {
            let (h, mi, s, us, neg) = parse_time(text(value)?)?;
            (neg, 0, h, mi, s, us)
        }
        other => return Err(format!("expected a time, the server sent {other:?}")),
    };
    let micros = ((i64::from(days) * 24 + i64::from(h)) * 3600 + i64::from(mi) * 60 + i64::from(s))
        * 1_000_000
        + i64::from(us);
    Ok(if negative { -micros } else { micros })
}

fn is_leap(y: i32) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_and_checked() {
        assert_eq!(decimal(b"-12.340", 10, 3), Ok(-12340));
        assert_eq!(decimal(b"0.5", 3, 2), Ok(50));
        assert_eq!(decimal(b"7", 5, 2), Ok(700));
        assert_eq!(decimal(b"0.00", 2, 2), Ok(0));
        assert_eq!(
            decimal(b"99999999999999999999999999999999999999", 38, 0),
            Ok(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
        assert!(decimal(b"123", 2, 0).is_err());
        assert!(decimal(b"1.25", 5, 1).is_err());
        assert!(decimal(b"1e5", 5, 0).is_err());
        assert!(decimal(b"", 5, 0).is_err());
        let long = "9".repeat(65);
        assert!(decimal(long.as_bytes(), 38, 0).is_err());
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
        assert_eq!(
            time_micros(&Value::Bytes(b"-838:59:59.000000".to_vec())),
            Ok(-(838 * 3600 + 59 * 60 + 59) * 1_000_000)
        );
        assert_eq!(
            time_micros(&Value::Time(true, 34, 22, 59, 59, 5)),
            Ok(-(((34 * 24 + 22) * 3600 + 59 * 60 + 59) * 1_000_000 + 5))
        );
        assert_eq!(
            date_parts(&Value::Bytes(b"2024-02-29 23:59:59.5".to_vec())),
            Ok(Some((2024, 2, 29, 23, 59, 59, 500_000)))
        );
        assert_eq!(date_parts(&Value::Date(0, 0, 0, 0, 0, 0, 0)), Ok(None));
        assert_eq!(date_parts(&Value::Bytes(b"2024-00-10".to_vec())), Ok(None));
        assert!(date_parts(&Value::Bytes(b"2023-02-29".to_vec())).is_err());
    }

    #[test]
    fn zero_dates_fail_or_read_as_null() {
        let mut b = ColumnBuilder::new(Kind::Date, 2);
        let zero_date = Value::Date(0, 0, 0, 0, 0, 0, 0);
        let err = b.push(&zero_date, ZeroDates::Error).unwrap_err();
        assert!(err.contains("zero_dates = \"null\""), "{err}");
        b.push(&zero_date, ZeroDates::Null).expect("null");
        b.push(&Value::Date(2024, 5, 6, 0, 0, 0, 0), ZeroDates::Error)
            .expect("a date");
        let a = b.finish();
        assert_eq!(a.len(), 2);
        assert_eq!(a.null_count(), 1);
    }

    #[test]
    fn bits_and_integers() {
        assert_eq!(bits(&Value::Bytes(vec![0x01, 0x02])), Ok(258));
        assert_eq!(bits(&Value::Bytes(b"1".to_vec())), Ok(0x31));
        assert_eq!(unsigned(&Value::Bytes(b"42".to_vec())), Ok(42));
        assert_eq!(signed(&Value::Bytes(b"-42".to_vec())), Ok(-42));
        assert!(narrow::<i8, i64>(300).is_err());
    }
}

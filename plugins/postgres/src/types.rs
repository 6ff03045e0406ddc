//! PostgreSQL types to Arrow, decoded from the binary wire format (the same bytes binary
//! COPY and binary result rows carry).
//!
//! | PostgreSQL | Arrow |
//! |---|---|
//! | `bool` | Boolean |
//! | `int2`, `int4`, `int8`, `oid` | Int16, Int32, Int64, Int64 |
//! | `float4`, `float8` | Float32, Float64 |
//! | `numeric` | Decimal128(38, s) when every value fits (s = the largest scale); else exact text |
//! | `text`, `varchar`, `char`, `name`, enums, `json`, `jsonb`, `uuid` | Utf8View |
//! | `bytea` | BinaryView |
//! | `date` | Date32 |
//! | `time` | Time64(µs) |
//! | `timestamp`, `timestamptz` | Timestamp(µs), Timestamp(µs, "UTC") |
//! | `interval` | Duration(µs), a month counted as 30 days (PostgreSQL's `justify_days`) |
//! | one-dimensional arrays of the above | List |
//!
//! Domains map as their base type. Anything else is an error naming the column and type:
//! cast it in the query (`x::text`).

use std::sync::Arc;

use arrow_buffer::{NullBuffer, OffsetBuffer};
use plugboard_api::arrow_array::builder::{
    BinaryViewBuilder, BooleanBuilder, Date32Builder, DurationMicrosecondBuilder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringViewBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use plugboard_api::arrow_array::{Array, ArrayRef, Decimal128Array, ListArray, StringViewArray};
use plugboard_api::arrow_schema::{DataType, Field};
use tokio_postgres::types::{Kind, Type};

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// How one value is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Bool,
    I16,
    I32,
    I64,
    Oid,
    F32,
    F64,
    Numeric,
    Text,
    Jsonb,
    Uuid,
    Bytes,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
}

/// How one column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Scalar(Scalar),
    List(Scalar),
}

fn scalar(ty: &Type) -> Option<Scalar> {
    if let Kind::Domain(base) = ty.kind() {
        return scalar(base);
    }
    if let Kind::Enum(_) = ty.kind() {
        return Some(Scalar::Text);
    }
    Some(match *ty {
        Type::BOOL => Scalar::Bool,
        Type::INT2 => Scalar::I16,
        Type::INT4 => Scalar::I32,
        Type::INT8 => Scalar::I64,
        Type::OID => Scalar::Oid,
        Type::FLOAT4 => Scalar::F32,
        Type::FLOAT8 => Scalar::F64,
        Type::NUMERIC => Scalar::Numeric,
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::CHAR
        | Type::UNKNOWN
        | Type::JSON => Scalar::Text,
        Type::JSONB => Scalar::Jsonb,
        Type::UUID => Scalar::Uuid,
        Type::BYTEA => Scalar::Bytes,
        Type::DATE => Scalar::Date,
        Type::TIME => Scalar::Time,
        Type::TIMESTAMP => Scalar::Timestamp,
        Type::TIMESTAMPTZ => Scalar::TimestampTz,
        Type::INTERVAL => Scalar::Interval,
        _ => return None,
    })
}

/// The decoding of a column of type `ty`, or a message naming what is not supported.
pub fn column_kind(name: &str, ty: &Type) -> Result<ColumnKind, String> {
    let unsupported = || {
        format!(
            "column {name:?} has type {}, which the postgres connector cannot map; cast it in the query (for example {name}::text)",
            ty.name()
        )
    };
    match ty.kind() {
        Kind::Array(elem) => scalar(elem).map(ColumnKind::List).ok_or_else(unsupported),
        _ => scalar(ty).map(ColumnKind::Scalar).ok_or_else(unsupported),
    }
}

fn be<const N: usize>(b: &[u8]) -> Result<[u8; N], String> {
    b.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", b.len()))
}

/// A numeric value: its exact digits at `scale`, or text when it does not fit an i128 (or is
/// NaN or infinite).
#[derive(Debug, Clone, PartialEq)]
enum Num {
    Fits(i128, u16),
    Text(String),
}

fn numeric(b: &[u8]) -> Result<Num, String> {
    if b.len() < 8 {
        return Err("short numeric".to_owned());
    }
    let word = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let ndigits = word(0) as usize;
    let weight = i16::from_be_bytes([b[2], b[3]]) as i32;
    let sign = word(4);
    let dscale = word(6);
    match sign {
        0xC000 => return Ok(Num::Text("NaN".to_owned())),
        0xD000 => return Ok(Num::Text("Infinity".to_owned())),
        0xF000 => return Ok(Num::Text("-Infinity".to_owned())),
        _ => {}
    }
    if b.len() != 8 + 2 * ndigits {
        return Err("numeric length mismatch".to_owned());
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(8 + 2 * i)).collect();
    let negative = sign == 0x4000;
    // The mantissa at `dscale`: Σ d_k × 10^(4 (weight − k) + dscale).
    let mut mantissa: Option<i128> = Some(0);
    for (k, &d) in digits.iter().enumerate() {
        let exp = 4 * (weight - k as i32) + i32::from(dscale);
        mantissa = mantissa.and_then(|m| {
            let term = if exp >= 0 {
                10i128
                    .checked_pow(exp as u32)
                    .and_then(|p| p.checked_mul(i128::from(d)))?
            } else {
                let p = 10i128.checked_pow((-exp) as u32)?;
                (i128::from(d) % p == 0).then_some(i128::from(d) / p)?
            };
            m.checked_add(term)
        });
    }
    Ok(match mantissa {
        Some(m) => Num::Fits(if negative { -m } else { m }, dscale),
        None => Num::Text(numeric_text(negative, weight, dscale, &digits)),
    })
}

fn numeric_text(negative: bool, weight: i32, dscale: u16, digits: &[u16]) -> String {
    let digit = |k: i32| {
        usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k))
            .copied()
            .unwrap_or(0)
    };
    let mut s = String::new();
    if negative {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for k in 0..=weight {
            let d = digit(k);
            if k == 0 {
                s.push_str(&d.to_string());
            } else {
                s.push_str(&format!("{d:04}"));
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut k = weight + 1;
        while frac.len() < usize::from(dscale) {
            frac.push_str(&format!("{:04}", digit(k)));
            k += 1;
        }
        frac.truncate(usize::from(dscale));
        s.push_str(&frac);
    }
    s
}

fn mantissa_text(m: i128, scale: u16) -> String {
    let digits = m.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let sign = if m < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

fn uuid_text(b: &[u8]) -> Result<String, String> {
    let b: [u8; 16] = be(b)?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

fn text(b: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(b).map_err(|e| format!("invalid UTF-8: {e}"))
}

/// Appends values of one scalar type.
enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Numeric(Vec<Option<Num>>),
    Text(StringViewBuilder),
    Bytes(BinaryViewBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Interval(DurationMicrosecondBuilder),
}

struct ScalarColumn {
    scalar: Scalar,
    builder: Builder,
}

impl ScalarColumn {
    fn new(scalar: Scalar, capacity: usize) -> Self {
        let builder = match scalar {
            Scalar::Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            Scalar::I16 => Builder::I16(Int16Builder::with_capacity(capacity)),
            Scalar::I32 => Builder::I32(Int32Builder::with_capacity(capacity)),
            Scalar::I64 | Scalar::Oid => Builder::I64(Int64Builder::with_capacity(capacity)),
            Scalar::F32 => Builder::F32(Float32Builder::with_capacity(capacity)),
            Scalar::F64 => Builder::F64(Float64Builder::with_capacity(capacity)),
            Scalar::Numeric => Builder::Numeric(Vec::with_capacity(capacity)),
            Scalar::Text | Scalar::Jsonb | Scalar::Uuid => {
                Builder::Text(StringViewBuilder::with_capacity(capacity))
            }
            Scalar::Bytes => Builder::Bytes(BinaryViewBuilder::with_capacity(capacity)),
            Scalar::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
            Scalar::Time => Builder::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            Scalar::Timestamp => {
                Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            Scalar::TimestampTz => Builder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            Scalar::Interval => {
                Builder::Interval(DurationMicrosecondBuilder::with_capacity(capacity))
            }
        };
        Self { scalar, builder }
    }

    fn push(&mut self, value: Option<&[u8]>) -> Result<(), String> {
        let Some(b) = value else {
            match &mut self.builder {
                Builder::Bool(x) => x.append_null(),
                Builder::I16(x) => x.append_null(),
                Builder::I32(x) => x.append_null(),
                Builder::I64(x) => x.append_null(),
                Builder::F32(x) => x.append_null(),
                Builder::F64(x) => x.append_null(),
                Builder::Numeric(x) => x.push(None),
                Builder::Text(x) => x.append_null(),
                Builder::Bytes(x) => x.append_null(),
                Builder::Date(x) => x.append_null(),
                Builder::Time(x) => x.append_null(),
                Builder::Timestamp(x) => x.append_null(),
                Builder::Interval(x) => x.append_null(),
            }
            return Ok(());
        };
        match (&mut self.builder, self.scalar) {
            (Builder::Bool(x), _) => x.append_value(be::<1>(b)?[0] != 0),
            (Builder::I16(x), _) => x.append_value(i16::from_be_bytes(be(b)?)),
            (Builder::I32(x), _) => x.append_value(i32::from_be_bytes(be(b)?)),
            (Builder::I64(x), Scalar::Oid) => x.append_value(i64::from(u32::from_be_bytes(be(b)?))),
            (Builder::I64(x), _) => x.append_value(i64::from_be_bytes(be(b)?)),
            (Builder::F32(x), _) => x.append_value(f32::from_be_bytes(be(b)?)),
            (Builder::F64(x), _) => x.append_value(f64::from_be_bytes(be(b)?)),
            (Builder::Numeric(x), _) => x.push(Some(numeric(b)?)),
            (Builder::Text(x), Scalar::Jsonb) => match b.split_first() {
                Some((1, rest)) => x.append_value(text(rest)?),
                _ => return Err("unknown jsonb format version".to_owned()),
            },
            (Builder::Text(x), Scalar::Uuid) => x.append_value(uuid_text(b)?),
            (Builder::Text(x), _) => x.append_value(text(b)?),
            (Builder::Bytes(x), _) => x.append_value(b),
            (Builder::Date(x), _) => {
                let d = i32::from_be_bytes(be(b)?);
                // ±infinity are i32::MAX/MIN: kept as the extremes, not shifted.
                x.append_value(if d == i32::MAX || d == i32::MIN {
                    d
                } else {
                    // Always fits for dates PostgreSQL stores; a server sending more is an
                    // error, not an overflow.
                    d.checked_add(PG_EPOCH_DAYS)
                        .ok_or("date past the last one Arrow's days since 1970 can hold")?
                });
            }
            (Builder::Time(x), _) => {
                let t = i64::from_be_bytes(be(b)?);
                // PostgreSQL allows 24:00:00; an Arrow time of day stops before it (and
                // polars reads it back as a null, silently).
                if !(0..MICROS_PER_DAY).contains(&t) {
                    return Err(format!(
                        "time {:02}:{:02}:{:02} is past the end of the day an Arrow time can \
                         hold; cast it in the query (for example to text)",
                        t.div_euclid(3_600_000_000),
                        t.div_euclid(60_000_000).rem_euclid(60),
                        t.div_euclid(1_000_000).rem_euclid(60),
                    ));
                }
                x.append_value(t);
            }
            (Builder::Timestamp(x), _) => {
                let t = i64::from_be_bytes(be(b)?);
                x.append_value(if t == i64::MAX || t == i64::MIN {
                    t
                } else {
                    // The last 29 years PostgreSQL can store (294247 to 294276 AD) are past
                    // what microseconds since 1970 hold in an i64.
                    t.checked_add(PG_EPOCH_MICROS).ok_or(
                        "timestamp after 294247-01-10, the last one Arrow's microseconds \
                         since 1970 can hold; cast it in the query (for example to text)",
                    )?
                });
            }
            (Builder::Interval(x), _) => {
                let b: [u8; 16] = be(b)?;
                let micros = i64::from_be_bytes(b[0..8].try_into().unwrap_or_default());
                let days = i64::from(i32::from_be_bytes(b[8..12].try_into().unwrap_or_default()));
                let months =
                    i64::from(i32::from_be_bytes(b[12..16].try_into().unwrap_or_default()));
                let total = (months * 30 + days)
                    .checked_mul(MICROS_PER_DAY)
                    .and_then(|d| d.checked_add(micros))
                    .ok_or(
                        "interval longer than Arrow's microsecond duration holds (about 292,000 \
                         years, a month counted as 30 days); cast it in the query (for example \
                         to text)",
                    )?;
                x.append_value(total);
            }
        }
        Ok(())
    }

    /// The values so far; `fixed` is the type a streamed read's first batch gave the
    /// column, which a numeric column keeps (or fails to, with the reason).
    fn finish(&mut self, fixed: Option<&DataType>) -> Result<ArrayRef, String> {
        Ok(match &mut self.builder {
            Builder::Bool(x) => Arc::new(x.finish()),
            Builder::I16(x) => Arc::new(x.finish()),
            Builder::I32(x) => Arc::new(x.finish()),
            Builder::I64(x) => Arc::new(x.finish()),
            Builder::F32(x) => Arc::new(x.finish()),
            Builder::F64(x) => Arc::new(x.finish()),
            Builder::Numeric(values) => finish_numeric(std::mem::take(values), fixed)?,
            Builder::Text(x) => Arc::new(x.finish()),
            Builder::Bytes(x) => Arc::new(x.finish()),
            Builder::Date(x) => Arc::new(x.finish()),
            Builder::Time(x) => Arc::new(x.finish()),
            Builder::Timestamp(x) => Arc::new(x.finish()),
            Builder::Interval(x) => Arc::new(x.finish()),
        })
    }
}

/// Decimal128(38, s) when every value fits at the largest scale; exact text otherwise.
/// With a `fixed` type (a streamed read's later batch), that type or an error.
fn finish_numeric(values: Vec<Option<Num>>, fixed: Option<&DataType>) -> Result<ArrayRef, String> {
    const MAX: i128 = 10i128.pow(38);
    let natural = values
        .iter()
        .flatten()
        .map(|n| match n {
            Num::Fits(_, s) => *s,
            Num::Text(_) => u16::MAX,
        })
        .max()
        .unwrap_or(0);
    let scale = match fixed {
        None => natural,
        Some(DataType::Decimal128(_, s)) => {
            let s = u16::try_from(*s).unwrap_or(0);
            if natural > s {
                return Err(if natural == u16::MAX {
                    "a value does not fit Decimal128".to_owned()
                } else {
                    format!("a value has scale {natural}")
                });
            }
            s
        }
        Some(_) => u16::MAX, // text
    };
    if scale <= 38 {
        let rescaled: Option<Vec<Option<i128>>> = values
            .iter()
            .map(|v| match v {
                None => Some(None),
                Some(Num::Fits(m, s)) => 10i128
                    .checked_pow(u32::from(scale - s))
                    .and_then(|p| m.checked_mul(p))
                    .filter(|m| m.abs() < MAX)
                    .map(Some),
                Some(Num::Text(_)) => None,
            })
            .collect();
        if let Some(rescaled) = rescaled
            && let Ok(array) =
                Decimal128Array::from(rescaled).with_precision_and_scale(38, scale as i8)
        {
            return Ok(Arc::new(array));
        }
        if fixed.is_some() {
            return Err(format!("a value does not fit Decimal128(38, {scale})"));
        }
    }
    Ok(Arc::new(StringViewArray::from_iter(
        values.into_iter().map(|v| {
            v.map(|n| match n {
                Num::Fits(m, s) => mantissa_text(m, s),
                Num::Text(t) => t,
            })
        }),
    )))
}

/// Builds one column from binary values.
pub struct ColumnBuilder {
    name: String,
    kind: ColumnKind,
    values: ScalarColumn,
    /// For lists: the end offset of each row in `values`, and whether the row is present.
    offsets: Vec<i32>,
    valid: Vec<bool>,
}

impl ColumnBuilder {
    pub fn new(name: &str, kind: ColumnKind, capacity: usize) -> Self {
        let (scalar, offsets) = match kind {
            ColumnKind::Scalar(s) => (s, Vec::new()),
            ColumnKind::List(s) => (s, {
                let mut o = Vec::with_capacity(capacity + 1);
                o.push(0);
                o
            }),
        };
        Self {
            name: name.to_owned(),
            kind,
            values: ScalarColumn::new(scalar, capacity),
            offsets,
            valid: Vec::new(),
        }
    }

    /// Appends one value in PostgreSQL's binary format (`None` is NULL).
    pub fn push(&mut self, value: Option<&[u8]>) -> Result<(), String> {
        let result = match self.kind {
            ColumnKind::Scalar(_) => self.values.push(value),
            ColumnKind::List(_) => self.push_array(value),
        };
        result.map_err(|e| format!("column {:?}: {e}", self.name))
    }

    fn push_array(&mut self, value: Option<&[u8]>) -> Result<(), String> {
        let last = self.offsets.last().copied().unwrap_or(0);
        let Some(b) = value else {
            self.offsets.push(last);
            self.valid.push(false);
            return Ok(());
        };
        let int = |at: usize| -> Result<i32, String> {
            b.get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .map(i32::from_be_bytes)
                .ok_or_else(|| "short array".to_owned())
        };
        let ndim = int(0)?;
        let mut count = 0i32;
        if ndim > 1 {
            return Err("multi-dimensional arrays are not supported; unnest them".to_owned());
        }
        if ndim == 1 {
            let len = int(12)?;
            let mut at = 20usize;
            for _ in 0..len {
                let n = int(at)?;
                at += 4;
                if n < 0 {
                    self.values.push(None)?;
                } else {
                    let n = n as usize;
                    let v = b.get(at..at + n).ok_or("short array element")?;
                    self.values.push(Some(v))?;
                    at += n;
                }
            }
            count = len;
        }
        self.offsets.push(last + count);
        self.valid.push(true);
        Ok(())
    }

    /// The column so far, as one array; the builder is left empty.
    pub fn finish(&mut self) -> ArrayRef {
        match self.finish_as(None) {
            Ok(a) => a,
            // Without a fixed type every value has a representation; an error is a bug.
            Err(e) => Arc::new(StringViewArray::from(vec![Some(format!(
                "internal error building column {:?}: {e}",
                self.name
            ))])),
        }
    }

    /// Like [`ColumnBuilder::finish`], keeping the type `fixed` (a streamed read's first
    /// batch decided it): an error says why a value does not fit it.
    pub fn finish_as(&mut self, fixed: Option<&DataType>) -> Result<ArrayRef, String> {
        let fixed_values = match (self.kind, fixed) {
            (ColumnKind::List(_), Some(DataType::List(f))) => Some(f.data_type()),
            (ColumnKind::Scalar(_), fixed) => fixed,
            _ => None,
        };
        let values = self.values.finish(fixed_values)?;
        match self.kind {
            ColumnKind::Scalar(_) => Ok(values),
            ColumnKind::List(_) => {
                let offsets = std::mem::replace(&mut self.offsets, vec![0]);
                let valid = std::mem::take(&mut self.valid);
                let field = Arc::new(Field::new("item", values.data_type().clone(), true));
                let array = ListArray::try_new(
                    field,
                    OffsetBuffer::new(offsets.into()),
                    values,
                    Some(NullBuffer::from(valid)),
                )
                .map_err(|e| format!("building a list: {e}"))?;
                Ok(Arc::new(array))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(words: &[i16]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn numerics_decode_exactly() {
        // 12345.678 = digits [1, 2345, 6780], weight 1, dscale 3.
        let b = num(&[3, 1, 0, 3, 1, 2345, 6780]);
        assert_eq!(numeric(&b), Ok(Num::Fits(12_345_678, 3)));
        // -0.05 = digits [500], weight -1, dscale 2.
        let b = num(&[1, -1, 0x4000u16 as i16, 2, 500]);
        assert_eq!(numeric(&b), Ok(Num::Fits(-5, 2)));
        // 1e40: does not fit an i128 at any scale → exact text.
        let b = num(&[1, 10, 0, 0, 1]);
        assert_eq!(numeric(&b), Ok(Num::Text(format!("1{}", "0".repeat(40)))));
        assert_eq!(
            numeric(&num(&[0, 0, 0xC000u16 as i16, 0])),
            Ok(Num::Text("NaN".into()))
        );
        assert_eq!(mantissa_text(-5, 2), "-0.05");
        assert_eq!(mantissa_text(12_345_678, 3), "12345.678");
        assert_eq!(numeric_text(true, -1, 2, &[500]), "-0.05");
    }

    #[test]
    fn numeric_columns_widen_to_the_largest_scale_or_fall_back_to_text() {
        let a = finish_numeric(
            vec![Some(Num::Fits(15, 1)), None, Some(Num::Fits(2, 0))],
            None,
        )
        .expect("decimal");
        let d = a
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .expect("decimal");
        assert_eq!(
            (d.scale(), d.value(0), d.is_null(1), d.value(2)),
            (1, 15, true, 20)
        );
        let t = finish_numeric(
            vec![Some(Num::Fits(15, 1)), Some(Num::Text("NaN".into()))],
            None,
        )
        .expect("text");
        let s = t.as_any().downcast_ref::<StringViewArray>().expect("text");
        assert_eq!((s.value(0), s.value(1)), ("1.5", "NaN"));
    }

    #[test]
    fn a_fixed_numeric_type_rescales_up_and_refuses_what_it_cannot_hold() {
        let two = DataType::Decimal128(38, 2);
        let a = finish_numeric(vec![Some(Num::Fits(15, 1)), None], Some(&two)).expect("fits");
        let d = a
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .expect("decimal");
        assert_eq!((d.scale(), d.value(0)), (2, 150));
        let e = finish_numeric(vec![Some(Num::Fits(1_234, 3))], Some(&two)).expect_err("scale 3");
        assert_eq!(e, "a value has scale 3");
        let e = finish_numeric(vec![Some(Num::Text("NaN".into()))], Some(&two)).expect_err("NaN");
        assert_eq!(e, "a value does not fit Decimal128");
        let text = finish_numeric(vec![Some(Num::Fits(5, 0))], Some(&DataType::Utf8View))
            .expect("text stays text");
        assert_eq!(text.data_type(), &DataType::Utf8View);
    }

    #[test]
    fn temporal_values_past_arrows_range_are_errors_naming_the_column() {
        // '294276-12-31 23:59:59.999999', PostgreSQL's last timestamp: past i64 µs since 1970.
        let last = 9_223_371_331_199_999_999i64.to_be_bytes();
        let mut c = ColumnBuilder::new("t", ColumnKind::Scalar(Scalar::Timestamp), 1);
        let e = c.push(Some(&last)).expect_err("past Arrow's range");
        assert!(e.starts_with("column \"t\": timestamp after 294247"), "{e}");
        // ±infinity stay the extremes.
        c.push(Some(&i64::MAX.to_be_bytes())).expect("infinity");
        // 24:00:00 is a PostgreSQL time, not an Arrow one.
        let mut c = ColumnBuilder::new("at", ColumnKind::Scalar(Scalar::Time), 1);
        let e = c
            .push(Some(&MICROS_PER_DAY.to_be_bytes()))
            .expect_err("24:00");
        assert!(e.contains("\"at\": time 24:00:00"), "{e}");
        c.push(Some(&(MICROS_PER_DAY - 1).to_be_bytes()))
            .expect("23:59:59.999999");
        let mut c = ColumnBuilder::new("d", ColumnKind::Scalar(Scalar::Date), 1);
        let e = c
            .push(Some(&(i32::MAX - 1).to_be_bytes()))
            .expect_err("past i32 days");
        assert!(e.contains("\"d\""), "{e}");
    }

    #[test]
    fn arrays_become_lists() {
        let mut c = ColumnBuilder::new("xs", ColumnKind::List(Scalar::I32), 2);
        // ndim 1, has nulls, elem oid 23, len 3, lbound 1; values 7, NULL, 9.
        let mut b = Vec::new();
        for v in [1i32, 1, 23, 3, 1, 4, 7, -1, 4, 9] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        c.push(Some(&b)).expect("array");
        c.push(None).expect("null");
        let empty: Vec<u8> = [0i32, 0, 23].iter().flat_map(|v| v.to_be_bytes()).collect();
        c.push(Some(&empty)).expect("empty");
        let a = c.finish();
        let l = a.as_any().downcast_ref::<ListArray>().expect("list");
        assert_eq!(l.len(), 3);
        assert!(l.is_null(1));
        assert_eq!(l.value(0).len(), 3);
        assert_eq!(l.value(2).len(), 0);
    }
}

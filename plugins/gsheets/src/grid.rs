//! From a worksheet's cells to an Arrow table: the read options (pandas' `skiprows`,
//! `header`, `nrows`, `usecols`, as gsheets-connection passes them on), column names, and
//! one type per column.
//!
//! **The type rule.** A column's type is what all its non-empty data cells agree on:
//! booleans → Boolean; numbers → Int64 when every one is a whole number of at most 2^53 in
//! magnitude, else Float64; dates → Date; dates and date-times → Datetime (ms, no time
//! zone); times → Time. Empty cells (and empty text) are NULL; a column with no value is
//! text. Any other mix (numbers and text, numbers and dates, booleans and numbers, an error
//! value such as `#N/A` among numbers) falls back to text: every cell as written — a
//! public sheet's cells as the CSV export holds them, a private sheet's numbers in their
//! shortest form (`5`, `2.5`), booleans as `TRUE`/`FALSE`, dates as `2024-01-31`,
//! date-times as `2024-01-31 08:30:00` and times as `08:30:00`.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use plugboard_api::PluginError;
use plugboard_api::arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    Time64NanosecondArray, TimestampMillisecondArray,
};
use plugboard_api::arrow_schema::{Field, Schema};
use serde_json::Value as Json;

/// Days from Sheets' epoch (1899-12-30) to Unix's (1970-01-01).
const SERIAL_UNIX: f64 = 25_569.0;
const MS_PER_DAY: f64 = 86_400_000.0;
/// Whole numbers up to this magnitude are exact in a double, and so become Int64.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// One cell: what the sheet holds. Dates, date-times and times are Sheets serial numbers
/// (days since 1899-12-30, the time of day as the fraction).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Empty,
    Bool(bool),
    Number(f64),
    Date(f64),
    DateTime(f64),
    Time(f64),
    Text(String),
}

impl Cell {
    /// A value of `spreadsheets.values.get` with `UNFORMATTED_VALUE`.
    pub fn from_api(v: &Json) -> Self {
        match v {
            Json::Bool(b) => Cell::Bool(*b),
            Json::Number(n) => n.as_f64().map_or(Cell::Empty, Cell::Number),
            Json::String(s) if s.is_empty() => Cell::Empty,
            Json::String(s) => Cell::Text(s.clone()),
            Json::Null => Cell::Empty,
            other => Cell::Text(other.to_string()),
        }
    }

    /// A number typed by its cell's `numberFormat.type` (DATE, DATE_TIME, TIME).
    pub fn apply_format(&mut self, kind: &str) {
        if let Cell::Number(n) = *self {
            *self = match kind {
                "DATE" => Cell::Date(n),
                "DATE_TIME" => Cell::DateTime(n),
                "TIME" => Cell::Time(n),
                _ => return,
            };
        }
    }

    /// A cell of a CSV export, typed by its look: `TRUE`/`FALSE`, a number (no leading
    /// zeros or `+`, no thousands separators), an ISO date or date-time, else text.
    pub fn from_text(text: &str) -> Self {
        let t = text.trim();
        if t.is_empty() {
            return Cell::Empty;
        }
        if t.eq_ignore_ascii_case("true") {
            return Cell::Bool(true);
        }
        if t.eq_ignore_ascii_case("false") {
            return Cell::Bool(false);
        }
        if let Some(n) = number(t) {
            return Cell::Number(n);
        }
        if let Some(days) = iso_date(t) {
            return Cell::Date(days as f64 + SERIAL_UNIX);
        }
        if let Some(serial) = iso_datetime(t) {
            return Cell::DateTime(serial);
        }
        Cell::Text(text.to_owned())
    }

    /// The cell as text, for a text column (see the module's type rule).
    pub fn render(&self) -> Option<String> {
        Some(match self {
            Cell::Empty => return None,
            Cell::Bool(true) => "TRUE".to_owned(),
            Cell::Bool(false) => "FALSE".to_owned(),
            Cell::Number(n) => render_number(*n),
            Cell::Date(s) => render_date(s.floor() - SERIAL_UNIX),
            Cell::DateTime(s) => {
                let ms = serial_ms(*s);
                let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
                format!("{} {}", render_date(days as f64), render_time(rest))
            }
            Cell::Time(s) => render_time((s.rem_euclid(1.0) * MS_PER_DAY).round() as i64),
            Cell::Text(t) => t.clone(),
        })
    }
}

fn number(t: &str) -> Option<f64> {
    let digits = t.strip_prefix('-').unwrap_or(t);
    let first = digits.chars().next()?;
    let leading_zero =
        digits.len() > 1 && digits.starts_with('0') && !digits[1..].starts_with(['.', 'e', 'E']);
    if !first.is_ascii_digit() || leading_zero {
        return None;
    }
    if !digits
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn render_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() <= MAX_EXACT {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn serial_ms(serial: f64) -> i64 {
    ((serial - SERIAL_UNIX) * MS_PER_DAY).round() as i64
}

fn render_date(unix_days: f64) -> String {
    let (y, m, d) = civil_from_days(unix_days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

fn render_time(ms: i64) -> String {
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if milli == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}.{milli:03}")
    }
}

/// `YYYY-MM-DD` as days since 1970-01-01.
fn iso_date(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = t[..4].parse().ok()?;
    let m: u32 = t[5..7].parse().ok()?;
    let d: u32 = t[8..10].parse().ok()?;
    let days = days_from_civil(y, m, d);
    // A date that does not exist (02-30) does not round-trip.
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

/// `YYYY-MM-DD HH:MM[:SS]` (or with a `T`) as a serial number.
fn iso_datetime(t: &str) -> Option<f64> {
    let (date, time) = t.split_once([' ', 'T'])?;
    let days = iso_date(date)?;
    let mut parts = time.split(':');
    let h: u32 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let s: f64 = match parts.next() {
        Some(s) => s.parse().ok()?,
        None => 0.0,
    };
    if parts.next().is_some() || h > 23 || m > 59 || !(0.0..60.0).contains(&s) {
        return None;
    }
    let day_ms = (f64::from(h) * 3600.0 + f64::from(m) * 60.0 + s) * 1000.0;
    Some(days as f64 + SERIAL_UNIX + day_ms / MS_PER_DAY)
}

/// Howard Hinnant's `days_from_civil`: a proleptic Gregorian date as days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A worksheet's cells, by row; for a CSV export also the text of each cell as exported,
/// which a text column keeps as it is.
pub(crate) struct Grid {
    pub rows: Vec<Vec<Cell>>,
    pub raw: Option<Vec<Vec<String>>>,
}

/// A worksheet as a call names it: by title (or, when the text is a number no title
/// matches, by gid) or by gid (an integer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Worksheet {
    Name(String),
    Gid(i64),
}

impl Worksheet {
    /// From a config or option value: text (empty: none) or an integer gid.
    pub fn from_json(v: &Json) -> Result<Option<Self>, String> {
        match v {
            Json::String(s) if s.trim().is_empty() => Ok(None),
            Json::String(s) => Ok(Some(Worksheet::Name(s.clone()))),
            Json::Number(n) => n
                .as_i64()
                .map(|g| Some(Worksheet::Gid(g)))
                .ok_or_else(|| format!("{n} is not a gid (a whole number)")),
            other => Err(format!("expected a worksheet's title or gid, got {other}")),
        }
    }

    /// The gid it can stand for: an integer, or text that is one.
    pub fn gid(&self) -> Option<i64> {
        match self {
            Worksheet::Gid(g) => Some(*g),
            Worksheet::Name(n) => n.parse().ok(),
        }
    }
}

impl fmt::Display for Worksheet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Worksheet::Name(n) => write!(f, "{n:?}"),
            Worksheet::Gid(g) => write!(f, "with gid {g}"),
        }
    }
}

/// Which rows `skiprows` drops, before the header.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Skip {
    First(usize),
    Rows(BTreeSet<usize>),
}

/// A column `usecols` keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Col {
    Position(usize),
    Name(String),
}

/// A read's options, from its target and `options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadOptions {
    pub spreadsheet: Option<String>,
    pub worksheet: Option<Worksheet>,
    pub range: Option<String>,
    pub evaluate_formulas: bool,
    /// The header's row (after `skiprows`); `None` for none.
    header: Option<usize>,
    skip: Skip,
    nrows: Option<usize>,
    usecols: Option<Vec<Col>>,
}

/// The read options this connector takes.
const OPTIONS: &[&str] = &[
    "spreadsheet",
    "worksheet",
    "range",
    "header",
    "skiprows",
    "nrows",
    "usecols",
    "evaluate_formulas",
];

impl ReadOptions {
    /// The target is a worksheet: `Sheet1`, `Sheet1!A1:C20`, `'It''s'!A:C`, a gid, or empty.
    pub fn parse(
        target: &str,
        options: &serde_json::Map<String, Json>,
        limit: Option<u64>,
    ) -> Result<Self, PluginError> {
        let bad =
            |key: &str, why: String| PluginError::query(format!("read option `{key}`: {why}"));
        if let Some(k) = options.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
            return Err(PluginError::query(format!(
                "unknown read option `{k}` for Google Sheets (its options: {})",
                OPTIONS.join(", ")
            )));
        }
        let (mut worksheet, mut range) = split_target(target);
        if let Some(v) = options.get("worksheet") {
            if worksheet.is_some() {
                return Err(bad(
                    "worksheet",
                    format!("the target already names worksheet {target:?}; give it once"),
                ));
            }
            worksheet = Worksheet::from_json(v).map_err(|e| bad("worksheet", e))?;
        }
        if let Some(v) = options.get("range") {
            if range.is_some() {
                return Err(bad(
                    "range",
                    format!("the target already holds a range ({target:?}); give it once"),
                ));
            }
            range = Some(
                text(v).ok_or_else(|| bad("range", format!("expected A1 notation, got {v}")))?,
            );
        }
        let spreadsheet = match options.get("spreadsheet") {
            None => None,
            Some(v) => Some(
                text(v)
                    .ok_or_else(|| bad("spreadsheet", format!("expected a URL or id, got {v}")))?,
            ),
        };
        let header = match options.get("header") {
            None | Some(Json::Bool(true)) => Some(0),
            Some(Json::Null | Json::Bool(false)) => None,
            Some(Json::String(s)) if s.eq_ignore_ascii_case("none") => None,
            Some(v) => Some(count(v).ok_or_else(|| {
                bad(
                    "header",
                    format!("expected a row number (0 = the first), false or none, got {v}"),
                )
            })?),
        };
        let skip = match options.get("skiprows") {
            None => Skip::First(0),
            Some(v) => skip_rows(v).ok_or_else(|| {
                bad(
                    "skiprows",
                    format!("expected a number of rows or a list of row numbers, got {v}"),
                )
            })?,
        };
        let mut nrows = match options.get("nrows") {
            None => None,
            Some(v) => Some(
                count(v)
                    .ok_or_else(|| bad("nrows", format!("expected a number of rows, got {v}")))?,
            ),
        };
        if let Some(l) = limit {
            let l = usize::try_from(l).unwrap_or(usize::MAX);
            nrows = Some(nrows.map_or(l, |n| n.min(l)));
        }
        let usecols = match options.get("usecols") {
            None => None,
            Some(v) => Some(columns(v).ok_or_else(|| {
                bad(
                    "usecols",
                    format!("expected column positions (0 = the first) or names, got {v}"),
                )
            })?),
        };
        let evaluate_formulas = match options.get("evaluate_formulas") {
            None => true,
            Some(Json::Bool(b)) => *b,
            Some(v) => {
                return Err(bad(
                    "evaluate_formulas",
                    format!("expected true or false, got {v}"),
                ));
            }
        };
        Ok(Self {
            spreadsheet,
            worksheet,
            range,
            evaluate_formulas,
            header,
            skip,
            nrows,
            usecols,
        })
    }
}

/// A target's worksheet and range: the range is what follows the last `!` when it looks
/// like A1 notation (letters, digits and `:`).
fn split_target(target: &str) -> (Option<Worksheet>, Option<String>) {
    let target = target.trim();
    if target.is_empty() {
        return (None, None);
    }
    let (sheet, range) = match target.rsplit_once('!') {
        Some((s, r))
            if !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == ':') =>
        {
            (s, Some(r.to_owned()))
        }
        _ => (target, None),
    };
    let sheet = match sheet.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(quoted) => quoted.replace("''", "'"),
        None => sheet.to_owned(),
    };
    let worksheet = (!sheet.is_empty()).then_some(Worksheet::Name(sheet));
    (worksheet, range)
}

fn text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn count(v: &Json) -> Option<usize> {
    match v {
        Json::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn skip_rows(v: &Json) -> Option<Skip> {
    match v {
        Json::Array(items) => items
            .iter()
            .map(count)
            .collect::<Option<_>>()
            .map(Skip::Rows),
        Json::String(s) if s.contains(',') => s
            .split(',')
            .map(|p| p.trim().parse().ok())
            .collect::<Option<_>>()
            .map(Skip::Rows),
        other => count(other).map(Skip::First),
    }
}

fn columns(v: &Json) -> Option<Vec<Col>> {
    let one = |v: &Json| match v {
        Json::Number(n) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Col::Position),
        Json::String(s) => Some(match s.trim().parse() {
            Ok(p) => Col::Position(p),
            Err(_) => Col::Name(s.trim().to_owned()),
        }),
        _ => None,
    };
    match v {
        Json::Array(items) => items.iter().map(one).collect(),
        Json::String(s) => s
            .split(',')
            .map(|p| one(&Json::String(p.to_owned())))
            .collect(),
        other => one(other).map(|c| vec![c]),
    }
}

/// A row's cells, and for a CSV export their text.
type Row = (Vec<Cell>, Option<Vec<String>>);

/// The table the options make of `grid`; `None` for a worksheet with no cell at all.
pub(crate) fn table(grid: Grid, options: &ReadOptions) -> Result<Option<RecordBatch>, PluginError> {
    let Grid { rows, raw } = grid;
    let mut raw_rows = raw.map(IntoIterator::into_iter);
    let mut kept: Vec<Row> = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        let raw = raw_rows.as_mut().and_then(Iterator::next);
        let skipped = match &options.skip {
            Skip::First(n) => i < *n,
            Skip::Rows(set) => set.contains(&i),
        };
        if !skipped {
            kept.push((row, raw));
        }
    }
    let (header, data): (Option<Row>, Vec<Row>) = match options.header {
        None => (None, kept),
        Some(h) => {
            let mut rest = kept.into_iter().skip(h);
            (rest.next(), rest.collect())
        }
    };
    let data: Vec<_> = match options.nrows {
        Some(n) => data.into_iter().take(n).collect(),
        None => data,
    };
    let width = header
        .iter()
        .chain(&data)
        .map(|(r, _)| r.len())
        .max()
        .unwrap_or(0);
    if width == 0 {
        return Ok(None);
    }
    let names = names(header.as_ref(), width);
    let chosen: Vec<usize> = match &options.usecols {
        None => (0..width).collect(),
        Some(cols) => {
            let mut set = BTreeSet::new();
            for c in cols {
                let at = match c {
                    Col::Position(p) if *p < width => *p,
                    Col::Position(p) => {
                        return Err(PluginError::query(format!(
                            "read option `usecols`: column {p} is past the last one ({} columns, counted from 0)",
                            width
                        )));
                    }
                    Col::Name(n) => names.iter().position(|x| x == n).ok_or_else(|| {
                        PluginError::query(format!(
                            "read option `usecols`: no column {n:?} (the columns: {})",
                            names.join(", ")
                        ))
                    })?,
                };
                set.insert(at);
            }
            // As pandas keeps them: in the sheet's order.
            set.into_iter().collect()
        }
    };
    let mut fields = Vec::with_capacity(chosen.len());
    let mut arrays = Vec::with_capacity(chosen.len());
    for &c in &chosen {
        let cells: Vec<(&Cell, Option<&str>)> = data
            .iter()
            .map(|(row, raw)| {
                let cell = row.get(c).unwrap_or(&Cell::Empty);
                let text = raw.as_ref().and_then(|r| r.get(c)).map(String::as_str);
                (cell, text)
            })
            .collect();
        let array = column(&cells);
        fields.push(Field::new(
            names[c].clone(),
            array.data_type().clone(),
            true,
        ));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, arrays)
        .map(Some)
        .map_err(|e| PluginError::internal(format!("building the table: {e}")))
}

/// Column names: the header's cells as text; an empty one is `column_<n>` (from 1), and a
/// repeated name gets `.1`, `.2`, … as pandas gives it.
fn names(header: Option<&Row>, width: usize) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(width);
    for i in 0..width {
        let name = header.and_then(|(cells, raw)| {
            let text = match raw {
                Some(r) => r.get(i).cloned(),
                None => cells.get(i).and_then(Cell::render),
            };
            text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
        });
        let base = name.unwrap_or_else(|| format!("column_{}", i + 1));
        let mut name = base.clone();
        let mut n = 0;
        while names.contains(&name) {
            n += 1;
            name = format!("{base}.{n}");
        }
        names.push(name);
    }
    names
}

/// A column of cells, typed by the module's rule.
fn column(cells: &[(&Cell, Option<&str>)]) -> ArrayRef {
    #[derive(PartialEq)]
    enum Kind {
        Bool,
        Number,
        Date,
        DateTime,
        Time,
        Text,
    }
    let mut kinds: Vec<Kind> = Vec::new();
    for (cell, _) in cells {
        let k = match cell {
            Cell::Empty => continue,
            Cell::Bool(_) => Kind::Bool,
            Cell::Number(_) => Kind::Number,
            Cell::Date(_) => Kind::Date,
            Cell::DateTime(_) => Kind::DateTime,
            Cell::Time(_) => Kind::Time,
            Cell::Text(_) => Kind::Text,
        };
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let all = |k: &[Kind]| !kinds.is_empty() && kinds.iter().all(|x| k.contains(x));
    if all(&[Kind::Bool]) {
        return Arc::new(BooleanArray::from(
            cells
                .iter()
                .map(|(c, _)| match c {
                    Cell::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ));
    }
    if all(&[Kind::Number]) {
        let numbers: Vec<Option<f64>> = cells
            .iter()
            .map(|(c, _)| match c {
                Cell::Number(n) => Some(*n),
                _ => None,
            })
            .collect();
        let whole = numbers
            .iter()
            .flatten()
            .all(|n| n.fract() == 0.0 && n.abs() <= MAX_EXACT);
        if whole {
            return Arc::new(Int64Array::from(
                numbers
                    .iter()
                    .map(|n| n.map(|n| n as i64))
                    .collect::<Vec<_>>(),
            ));
        }
        return Arc::new(Float64Array::from(numbers));
    }
    if all(&[Kind::Date]) {
        return Arc::new(Date32Array::from(
            cells
                .iter()
                .map(|(c, _)| match c {
                    Cell::Date(s) => i32::try_from((s.floor() - SERIAL_UNIX) as i64).ok(),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ));
    }
    if all(&[Kind::Date, Kind::DateTime]) {
        return Arc::new(TimestampMillisecondArray::from(
            cells
                .iter()
                .map(|(c, _)| match c {
                    Cell::Date(s) | Cell::DateTime(s) => Some(serial_ms(*s)),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ));
    }
    if all(&[Kind::Time]) {
        return Arc::new(Time64NanosecondArray::from(
            cells
                .iter()
                .map(|(c, _)| match c {
                    Cell::Time(s) => {
                        Some((s.rem_euclid(1.0) * MS_PER_DAY).round() as i64 * 1_000_000)
                    }
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ));
    }
    Arc::new(StringArray::from(
        cells
            .iter()
            .map(|(c, raw)| match (c, raw) {
                (Cell::Empty, _) => None,
                (_, Some(r)) => Some((*r).to_owned()),
                (c, None) => c.render(),
            })
            .collect::<Vec<_>>(),
    ))
}

/// The Arrow type a column of these cells gets (for tests and docs).
#[cfg(test)]
fn type_of(cells: &[Cell]) -> plugboard_api::arrow_schema::DataType {
    let pairs: Vec<(&Cell, Option<&str>)> = cells.iter().map(|c| (c, None)).collect();
    column(&pairs).data_type().clone()
}

#[cfg(test)]
mod tests {
    use plugboard_api::arrow_schema::{DataType, TimeUnit};

    use super::*;

    #[test]
    fn columns_are_typed_by_what_their_cells_agree_on() {
        use Cell::*;
        assert_eq!(
            type_of(&[Bool(true), Empty, Bool(false)]),
            DataType::Boolean
        );
        assert_eq!(type_of(&[Number(1.0), Number(-3.0)]), DataType::Int64);
        assert_eq!(type_of(&[Number(1.0), Number(2.5)]), DataType::Float64);
        assert_eq!(type_of(&[Number(1e300)]), DataType::Float64);
        assert_eq!(type_of(&[Date(45_000.0)]), DataType::Date32);
        assert_eq!(
            type_of(&[Date(45_000.0), DateTime(45_000.5)]),
            DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        assert_eq!(
            type_of(&[Time(0.25)]),
            DataType::Time64(TimeUnit::Nanosecond)
        );
        assert_eq!(type_of(&[Number(1.0), Text("x".into())]), DataType::Utf8);
        assert_eq!(type_of(&[Number(1.0), Bool(true)]), DataType::Utf8);
        assert_eq!(type_of(&[Number(1.0), Date(45_000.0)]), DataType::Utf8);
        assert_eq!(type_of(&[Empty, Empty]), DataType::Utf8);
    }

    #[test]
    fn cells_render_as_the_sheet_shows_them() {
        assert_eq!(Cell::Number(5.0).render().as_deref(), Some("5"));
        assert_eq!(Cell::Number(2.5).render().as_deref(), Some("2.5"));
        assert_eq!(Cell::Bool(true).render().as_deref(), Some("TRUE"));
        // 45322 is 2024-01-31 in Sheets' serial numbers.
        assert_eq!(Cell::Date(45_322.0).render().as_deref(), Some("2024-01-31"));
        assert_eq!(
            Cell::DateTime(45_322.354_166_666_67).render().as_deref(),
            Some("2024-01-31 08:30:00")
        );
        assert_eq!(Cell::Time(0.5).render().as_deref(), Some("12:00:00"));
        assert_eq!(Cell::Empty.render(), None);
    }

    #[test]
    fn csv_text_is_typed_by_its_look() {
        assert_eq!(Cell::from_text(""), Cell::Empty);
        assert_eq!(Cell::from_text("TRUE"), Cell::Bool(true));
        assert_eq!(Cell::from_text("-2.5"), Cell::Number(-2.5));
        assert_eq!(Cell::from_text("0.5"), Cell::Number(0.5));
        assert_eq!(Cell::from_text("007"), Cell::Text("007".into()));
        assert_eq!(Cell::from_text("1,234"), Cell::Text("1,234".into()));
        assert_eq!(Cell::from_text("2024-01-31"), Cell::Date(45_322.0));
        assert_eq!(
            Cell::from_text("2024-02-30"),
            Cell::Text("2024-02-30".into())
        );
        assert!(matches!(
            Cell::from_text("2024-01-31 08:30:00"),
            Cell::DateTime(_)
        ));
        assert_eq!(Cell::from_text("NaN"), Cell::Text("NaN".into()));
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 1, 19_753, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn targets_name_a_worksheet_and_a_range() {
        assert_eq!(split_target(""), (None, None));
        assert_eq!(
            split_target("Sheet1!A1:C3"),
            (Some(Worksheet::Name("Sheet1".into())), Some("A1:C3".into()))
        );
        assert_eq!(
            split_target("'Bob''s'!A:B"),
            (Some(Worksheet::Name("Bob's".into())), Some("A:B".into()))
        );
        assert_eq!(
            split_target("Wow! Sales"),
            (Some(Worksheet::Name("Wow! Sales".into())), None)
        );
    }

    fn grid(rows: &[&[&str]]) -> Grid {
        Grid {
            rows: rows
                .iter()
                .map(|r| r.iter().map(|t| Cell::from_text(t)).collect())
                .collect(),
            raw: Some(
                rows.iter()
                    .map(|r| r.iter().map(|t| (*t).to_owned()).collect())
                    .collect(),
            ),
        }
    }

    fn options(json: &str) -> ReadOptions {
        let map: serde_json::Map<String, Json> = serde_json::from_str(json).expect("json");
        ReadOptions::parse("", &map, None).expect("options")
    }

    #[test]
    fn read_options_pick_rows_and_columns_as_pandas_does() {
        let g = || {
            grid(&[
                &["a title row"],
                &["name", "n", "", "name"],
                &["x", "1", "", "y"],
                &["z", "2"],
                &["w", "3"],
            ])
        };
        let t = table(g(), &options(r#"{"skiprows": 1}"#))
            .expect("ok")
            .expect("rows");
        let names: Vec<String> = t
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["name", "n", "column_3", "name.1"]);
        assert_eq!(t.num_rows(), 3);
        assert_eq!(t.column(1).data_type(), &DataType::Int64);
        let t = table(
            g(),
            &options(r#"{"header": 1, "nrows": 2, "usecols": "n,0"}"#),
        )
        .expect("ok")
        .expect("rows");
        let names: Vec<String> = t
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["name", "n"]);
        assert_eq!(t.num_rows(), 2);
        let t = table(g(), &options(r#"{"header": false, "skiprows": [0, 1]}"#))
            .expect("ok")
            .expect("rows");
        assert_eq!(t.schema().field(0).name(), "column_1");
        assert_eq!(t.num_rows(), 3);
        let err =
            table(g(), &options(r#"{"skiprows": 1, "usecols": ["nope"]}"#)).expect_err("unknown");
        assert!(err.message().contains("\"nope\""), "{err}");
        let map: serde_json::Map<String, Json> =
            serde_json::from_str(r#"{"nrow": 1}"#).expect("json");
        let err = ReadOptions::parse("", &map, None).expect_err("unknown option");
        assert!(err.message().contains("`nrow`"), "{err}");
    }
}

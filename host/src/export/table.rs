//! The table a terminal shows: column names with their types, long results cut to their
//! head and tail, long cells cut.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, ContentArrangement, Table};
use polars::prelude::{AnyValue, DataFrame};

use super::{Style, printable};
use crate::error::Result;

/// Rows shown in full before the table is cut to its head and tail.
const MAX_ROWS: usize = 100;
const HEAD_ROWS: usize = 50;
const TAIL_ROWS: usize = 10;

/// Characters of a cell (or a column name) a table shows; the rest is cut to `…`. A
/// terminal shows no more, and laying out a cell of millions costs minutes.
const MAX_CELL_CHARS: usize = 1000;

/// A table for a terminal: column names with their types, `null` for missing values.
pub fn render_table(df: &DataFrame) -> Result<String> {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(df.columns().iter().map(|c| {
        Cell::new(format!(
            "{}\n{}",
            cut(c.name().as_str()),
            cut(&c.dtype().to_string())
        ))
    }));
    let height = df.height();
    // Only the rows shown are made printable.
    let parts: Vec<DataFrame> = if height <= MAX_ROWS {
        vec![printable(df, Style::Table)?]
    } else {
        vec![
            printable(&df.slice(0, HEAD_ROWS), Style::Table)?,
            printable(&df.slice(-(TAIL_ROWS as i64), TAIL_ROWS), Style::Table)?,
        ]
    };
    for (k, part) in parts.iter().enumerate() {
        if k > 0 {
            table.add_row(df.columns().iter().map(|_| Cell::new("…")));
        }
        for i in 0..part.height() {
            table.add_row(
                part.columns()
                    .iter()
                    .map(|c| Cell::new(cut(&cell(c.get(i).ok())))),
            );
        }
    }
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    Ok(format!(
        "{table}\n({} × {})",
        plural(height, "row"),
        plural(df.width(), "column")
    ))
}

/// `text`, cut to [`MAX_CELL_CHARS`] characters.
fn cut(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_CELL_CHARS) {
        None => text.into(),
        Some((end, _)) => format!("{}… ({} characters)", &text[..end], text.chars().count()).into(),
    }
}

fn cell(v: Option<AnyValue<'_>>) -> String {
    match v {
        None | Some(AnyValue::Null) => "null".to_owned(),
        Some(AnyValue::String(s)) => s.to_owned(),
        Some(AnyValue::StringOwned(s)) => s.to_string(),
        Some(AnyValue::Binary(b)) => format!("0x{}", hex::encode(b)),
        Some(AnyValue::BinaryOwned(b)) => format!("0x{}", hex::encode(&b)),
        Some(other) => other.to_string(),
    }
}

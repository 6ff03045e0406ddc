//! The table a terminal shows, fitted to it as the `duckdb` CLI fits its own: column names
//! with their types, columns that do not fit elided in the middle, long cells cut with `…`,
//! a long result cut to its first and last rows, and a footer with the counts.
//!
//! [`TableRows`] takes a result batch by batch and keeps only the cells it will show, as
//! text: a table of a billion rows holds its first and last rows, not the result.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use polars::prelude::{AnyValue, DataFrame, Schema};
use unicode_width::UnicodeWidthChar;

use super::{Style, printable};
use crate::error::Result;

/// Rows a table shows by default: past it, the first and last halves.
pub const DEFAULT_MAX_ROWS: usize = 40;

/// The narrowest a column is cut to before columns are left out instead: its name's
/// width, within these bounds (or its natural width, when that is less).
const MIN_COLUMN_WIDTH: usize = 5;
const MAX_KEPT_NAME: usize = 16;

/// How a table is fitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableLayout {
    /// Characters a line takes at most; 0: no limit, every column, cells whole.
    pub max_width: usize,
    /// Rows shown at most; past it, the first and last halves around a line saying how
    /// many are left out. 0: every row.
    pub max_rows: usize,
}

impl TableLayout {
    /// Every row and column, each cell whole: a table for a file.
    pub const WHOLE: Self = Self {
        max_width: 0,
        max_rows: 0,
    };

    /// The layout for standard output: as wide as the terminal when it is one (else
    /// `$COLUMNS`, else no limit), and [`DEFAULT_MAX_ROWS`] rows.
    pub fn for_stdout() -> Self {
        use std::io::IsTerminal;
        let stdout = std::io::stdout();
        let terminal = stdout
            .is_terminal()
            .then(|| terminal_size::terminal_size_of(&stdout));
        let width = match terminal.flatten() {
            Some((terminal_size::Width(w), _)) => Some(usize::from(w)),
            None => std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse().ok()),
        };
        Self {
            max_width: width.unwrap_or(0),
            max_rows: DEFAULT_MAX_ROWS,
        }
    }
}

/// A result's shown rows, gathered batch by batch: the first `head` rows and a window of
/// the last rows, each cell already text.
pub struct TableRows {
    columns: Vec<(String, String, bool)>,
    layout: TableLayout,
    head: Vec<Vec<String>>,
    tail: VecDeque<Vec<String>>,
    rows: u64,
}

impl TableRows {
    /// An empty table of `schema`'s columns.
    pub fn new(schema: &Schema, layout: TableLayout) -> Self {
        let columns = schema
            .iter()
            .map(|(name, dtype)| {
                let right = dtype.is_primitive_numeric() || dtype.is_decimal();
                (
                    escape(name, layout.max_width),
                    escape(&dtype.to_string(), layout.max_width),
                    right,
                )
            })
            .collect();
        Self {
            columns,
            layout,
            head: Vec::new(),
            tail: VecDeque::new(),
            rows: 0,
        }
    }

    /// Rows kept from the start (the rest of the budget is the end's).
    fn head_rows(&self) -> usize {
        match self.layout.max_rows {
            0 => usize::MAX,
            n => n.div_ceil(2),
        }
    }

    fn tail_rows(&self) -> usize {
        self.layout.max_rows - self.layout.max_rows.div_ceil(2)
    }

    /// Takes the next batch, keeping the cells of the rows that may be shown.
    pub fn push(&mut self, batch: &DataFrame) -> Result<()> {
        let height = batch.height();
        self.rows += height as u64;
        let to_head = self.head_rows().saturating_sub(self.head.len()).min(height);
        if to_head > 0 {
            let part = printable(&batch.slice(0, to_head), Style::Table)?;
            self.head.extend(self.text_rows(&part));
        }
        let keep = self.tail_rows().min(height - to_head);
        if keep > 0 {
            let from = (height - keep) as i64;
            let part = printable(&batch.slice(from, keep), Style::Table)?;
            self.tail.extend(self.text_rows(&part));
            while self.tail.len() > self.tail_rows() {
                self.tail.pop_front();
            }
        }
        Ok(())
    }

    fn text_rows(&self, part: &DataFrame) -> Vec<Vec<String>> {
        let limit = self.layout.max_width;
        (0..part.height())
            .map(|i| {
                part.columns()
                    .iter()
                    .map(|c| escape(&cell(c.get(i).ok()), limit))
                    .collect()
            })
            .collect()
    }

    /// The table, with `elapsed` in its footer when given.
    pub fn render<'a>(&'a self, elapsed: Option<Duration>) -> String {
        let n = self.columns.len();
        let natural: Vec<usize> = (0..n)
            .map(|c| {
                let (name, dtype, _) = &self.columns[c];
                self.head
                    .iter()
                    .chain(&self.tail)
                    .map(|row| width(&row[c]))
                    .chain([width(name), width(dtype)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let floor: Vec<usize> = (0..n)
            .map(|c| {
                let name = width(&self.columns[c].0).clamp(MIN_COLUMN_WIDTH, MAX_KEPT_NAME);
                natural[c].min(name)
            })
            .collect();
        let (shown, gap) = choose_columns(&floor, self.layout.max_width);
        let mut widths = fit_widths(&shown, &natural, &floor, gap, self.layout.max_width);
        let kept = (self.head.len() + self.tail.len()) as u64;
        let left_out = (self.rows > kept).then(|| format!("… {} rows …", self.rows - kept));
        if let Some(text) = &left_out {
            // Room for the line saying so, where the terminal has it.
            let inner = inner_width(&widths);
            let mut more = width(text).saturating_sub(inner);
            if self.layout.max_width > 0 {
                more = more.min(self.layout.max_width.saturating_sub(inner + 4));
            }
            if let Some(last) = widths.last_mut() {
                *last += more;
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, [left, mid, fill, right]: [char; 4]| {
            out.push(left);
            for (k, w) in widths.iter().enumerate() {
                if k > 0 {
                    out.push(mid);
                }
                out.extend(std::iter::repeat_n(fill, w + 2));
            }
            out.push(right);
            out.push('\n');
        };
        let row = |out: &mut String, text: &dyn Fn(usize) -> &'a str| {
            out.push('│');
            for (k, &w) in widths.iter().enumerate() {
                if k > 0 {
                    out.push('│');
                }
                let (text, right) = match gap {
                    Some(g) if k == g => ("…", false),
                    _ => {
                        let c = shown[k - usize::from(gap.is_some_and(|g| k > g))];
                        (text(c), self.columns[c].2)
                    }
                };
                out.push(' ');
                pad(out, text, w, right);
                out.push(' ');
            }
            out.push_str("│\n");
        };
        line(&mut out, ['┌', '┬', '─', '┐']);
        row(&mut out, &|c| self.columns[c].0.as_str());
        row(&mut out, &|c| self.columns[c].1.as_str());
        line(&mut out, ['╞', '╪', '═', '╡']);
        for r in &self.head {
            row(&mut out, &|c| r[c].as_str());
        }
        if let Some(text) = &left_out {
            out.push_str("│ ");
            pad_centred(&mut out, text, inner_width(&widths));
            out.push_str(" │\n");
        }
        for r in &self.tail {
            row(&mut out, &|c| r[c].as_str());
        }
        line(&mut out, ['└', '┴', '─', '┘']);
        let plural = |n: u64, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        out.push_str(&plural(self.rows, "row"));
        if self.rows > kept {
            let _ = write!(out, " ({kept} shown)");
        }
        out.push_str(" × ");
        out.push_str(&plural(n as u64, "column"));
        if shown.len() < n {
            let _ = write!(out, " ({} shown)", shown.len());
        }
        if let Some(t) = elapsed {
            let _ = write!(out, " · {}", show_elapsed(t));
        }
        out
    }
}

/// The characters between a row's outer `│ ` and ` │`: the columns and the ` │ ` between
/// them.
fn inner_width(widths: &[usize]) -> usize {
    widths.iter().map(|w| w + 3).sum::<usize>() - 3
}

/// A table of `df` laid out by `layout`, without a time in its footer.
pub fn render_table(df: &DataFrame, layout: TableLayout) -> Result<String> {
    let mut rows = TableRows::new(df.schema(), layout);
    rows.push(df)?;
    Ok(rows.render(None))
}

/// The columns shown in `max_width` characters, in order, for columns of the narrowest
/// widths `floor`, and where the `…` column of those left out goes (its index among the
/// shown ones). Columns are taken from both ends towards the middle while each fits at
/// its narrowest; the first always is.
fn choose_columns(floor: &[usize], max_width: usize) -> (Vec<usize>, Option<usize>) {
    let n = floor.len();
    let narrowest = |c: usize| floor[c] + 3;
    // The left border, then each column at its narrowest.
    let whole = 1 + (0..n).map(narrowest).sum::<usize>();
    if max_width == 0 || whole <= max_width {
        return ((0..n).collect(), None);
    }
    // The border, and the `…` column.
    let mut used = 1 + 4;
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let c = if left.len() <= right.len() {
            lo
        } else {
            hi - 1
        };
        if used + narrowest(c) > max_width && !(left.is_empty() && c == 0) {
            break;
        }
        used += narrowest(c);
        if c == lo {
            left.push(c);
            lo += 1;
        } else {
            right.push(c);
            hi -= 1;
        }
    }
    let gap = (left.len() + right.len() < n).then_some(left.len());
    left.extend(right.into_iter().rev());
    (left, gap)
}

/// The width of each shown column (and of the `…` one at `gap`): their natural widths,
/// the widest cut down first (none below its `floor`), so the line fits in `max_width`.
fn fit_widths(
    shown: &[usize],
    natural: &[usize],
    floor: &[usize],
    gap: Option<usize>,
    max_width: usize,
) -> Vec<usize> {
    let want: Vec<usize> = shown.iter().map(|&c| natural[c]).collect();
    let floor: Vec<usize> = shown.iter().map(|&c| floor[c]).collect();
    let columns = shown.len() + usize::from(gap.is_some());
    let budget = max_width.saturating_sub(1 + 3 * columns + usize::from(gap.is_some()));
    let mut widths = want.clone();
    if max_width > 0 && want.iter().sum::<usize>() > budget {
        // The largest cap that fits: every column at min(natural, cap), none below its floor.
        let total = |cap: usize| -> usize {
            want.iter()
                .zip(&floor)
                .map(|(&w, &f)| w.min(cap).max(f))
                .sum()
        };
        let (mut lo, mut hi) = (0, want.iter().copied().max().unwrap_or(0));
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if total(mid) <= budget {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        widths = want
            .iter()
            .zip(&floor)
            .map(|(&w, &f)| w.min(lo).max(f))
            .collect();
        // What the cap leaves over goes to the columns it cut, from the left.
        let mut spare = budget.saturating_sub(widths.iter().sum());
        for (w, &full) in widths.iter_mut().zip(&want) {
            if spare == 0 {
                break;
            }
            if *w < full {
                *w += 1;
                spare -= 1;
            }
        }
    }
    if let Some(g) = gap {
        widths.insert(g, 1);
    }
    widths
}

/// Columns `text` takes on a terminal.
fn width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `text` into `out`, cut with `…` or padded to `w` columns, on the right when `right`.
fn pad(out: &mut String, text: &str, w: usize, right: bool) {
    let full = width(text);
    if full <= w {
        if right {
            out.extend(std::iter::repeat_n(' ', w - full));
        }
        out.push_str(text);
        if !right {
            out.extend(std::iter::repeat_n(' ', w - full));
        }
        return;
    }
    let mut used = 0;
    for ch in text.chars() {
        let cw = ch.width().unwrap_or(0);
        if used + cw + 1 > w {
            break;
        }
        out.push(ch);
        used += cw;
    }
    if w > 0 {
        out.push('…');
        used += 1;
    }
    out.extend(std::iter::repeat_n(' ', w - used));
}

fn pad_centred(out: &mut String, text: &str, w: usize) {
    let before = w.saturating_sub(width(text)) / 2;
    out.extend(std::iter::repeat_n(' ', before));
    pad(out, text, w - before.min(w), false);
}

/// A cell's text as one line a terminal shows as it is: line breaks, tabs and other
/// control characters (which could move the cursor or recolour the terminal) escaped.
/// When `limit` is not 0, cut past that many characters: no line shows more.
fn escape(text: &str, limit: usize) -> String {
    let mut out = String::with_capacity(text.len().min(limit.max(64)));
    for (n, ch) in text.chars().enumerate() {
        if limit > 0 && n > limit {
            out.push('…');
            break;
        }
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn show_elapsed(t: Duration) -> String {
    let ms = t.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", t.as_secs_f64())
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

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;

    fn layout(max_width: usize, max_rows: usize) -> TableLayout {
        TableLayout {
            max_width,
            max_rows,
        }
    }

    /// Every line of `table` but the footer, and each one's width on a terminal.
    fn box_lines(table: &str) -> Vec<(&str, usize)> {
        let lines: Vec<&str> = table.lines().collect();
        lines[..lines.len() - 1]
            .iter()
            .map(|l| (*l, width(l)))
            .collect()
    }

    #[test]
    fn a_small_table_looks_like_this() {
        let df = df!(
            "id" => [1i64, 20, 300],
            "name" => [Some("ann"), None, Some("bob")],
        )
        .expect("df");
        let t = render_table(&df, layout(80, 40)).expect("table");
        assert_eq!(
            t,
            "┌─────┬──────┐\n\
             │  id │ name │\n\
             │ i64 │ str  │\n\
             ╞═════╪══════╡\n\
             │   1 │ ann  │\n\
             │  20 │ null │\n\
             │ 300 │ bob  │\n\
             └─────┴──────┘\n\
             3 rows × 2 columns"
        );
    }

    #[test]
    fn a_narrow_terminal_leaves_out_middle_columns_from_both_ends_inwards() {
        let columns: Vec<Column> = (0..12)
            .map(|c| Column::new(format!("column_{c}").into(), [format!("value {c}")]))
            .collect();
        let df = DataFrame::new_infer_height(columns).expect("df");
        let t = render_table(&df, layout(60, 40)).expect("table");
        for (line, w) in box_lines(&t) {
            assert!(w <= 60, "{w} columns: {line}\n{t}");
        }
        let header = t.lines().nth(1).expect("header");
        let shown: Vec<&str> = header
            .split('│')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        // The first columns and the last ones, the marker between them.
        assert_eq!(shown.first(), Some(&"column_0"), "{t}");
        assert_eq!(shown.last(), Some(&"column_11"), "{t}");
        let gap = shown.iter().position(|c| *c == "…").expect("a marker");
        assert!(gap >= 2 && gap <= shown.len() - 2, "{t}");
        assert!(
            t.ends_with(&format!("1 row × 12 columns ({} shown)", shown.len() - 1)),
            "{t}"
        );
    }

    #[test]
    fn the_widest_cells_are_cut_first_and_short_ones_stay_whole() {
        let long = "word ".repeat(40);
        let df = df!(
            "id" => [7i64],
            "text" => [long.as_str()],
            "flag" => [true],
        )
        .expect("df");
        let t = render_table(&df, layout(50, 40)).expect("table");
        let lines = box_lines(&t);
        assert!(lines.iter().all(|(_, w)| *w == 50), "{t}");
        let row = lines[4].0;
        assert!(row.contains("│   7 │") && row.contains("│ true │"), "{t}");
        assert!(row.contains("│ word word") && row.contains("… │"), "{t}");
        // No limit: the cell whole.
        let whole = render_table(&df, TableLayout::WHOLE).expect("table");
        assert!(whole.contains(long.trim_end()), "{whole}");
        assert!(!whole.contains('…'), "{whole}");
    }

    #[test]
    fn a_long_result_shows_its_first_and_last_rows_whatever_its_batches() {
        let df = df!("n" => (0..1000i64).collect::<Vec<_>>()).expect("df");
        let whole = render_table(&df, layout(80, 40)).expect("table");
        let mut streamed = TableRows::new(df.schema(), layout(80, 40));
        for start in (0..1000).step_by(7) {
            streamed.push(&df.slice(start, 7)).expect("batch");
        }
        assert_eq!(streamed.render(None), whole);
        let cells: Vec<&str> = whole
            .lines()
            .skip(4)
            .filter_map(|l| l.strip_prefix('│'))
            .map(|l| l.trim_matches(|c| c == '│' || c == ' '))
            .collect();
        let expected: Vec<String> = (0..20)
            .map(|n| n.to_string())
            .chain(["… 960 rows …".to_owned()])
            .chain((980..1000).map(|n| n.to_string()))
            .collect();
        assert_eq!(cells, expected, "{whole}");
        assert!(
            whole.ends_with("1000 rows (40 shown) × 1 column"),
            "{whole}"
        );
        // It kept 40 rows of text, not the result.
        assert_eq!(streamed.head.len() + streamed.tail.len(), 40);
        // Every row when asked, and an odd budget splits with the extra row first.
        let all = render_table(&df, layout(80, 0)).expect("table");
        assert!(all.contains("│ 999 │") && !all.contains("rows …"));
        let odd = render_table(&df, layout(80, 5)).expect("table");
        assert!(
            odd.contains("│            2 │\n│ … 995 rows … │\n│          998 │"),
            "{odd}"
        );
    }

    #[test]
    fn wide_and_control_characters_keep_the_box_straight() {
        let df = df!(
            "s" => ["日本語のテキストです", "\u{1b}[31mred\u{1b}[0m", "two\nlines\ttab"],
        )
        .expect("df");
        for max_width in [0, 80, 12] {
            let t = render_table(&df, layout(max_width, 40)).expect("table");
            let lines = box_lines(&t);
            let w = lines[0].1;
            assert!(lines.iter().all(|(_, lw)| *lw == w), "{t}");
            assert!(!t.contains('\u{1b}') && !t.contains('\t'), "{t}");
            if max_width == 0 {
                assert!(t.contains(r"\u{1b}[31mred\u{1b}[0m"), "{t}");
                assert!(t.contains(r"two\nlines\ttab"), "{t}");
            } else {
                assert!(w <= max_width, "{t}");
            }
        }
    }

    #[test]
    fn an_empty_result_and_a_terminal_too_narrow_for_anything_still_draw() {
        let df = df!("a" => Vec::<i64>::new(), "b" => Vec::<String>::new()).expect("df");
        let t = render_table(&df, layout(80, 40)).expect("table");
        assert!(t.ends_with("0 rows × 2 columns"), "{t}");
        let wide = df!("only_column_here" => ["a value wider than the terminal"]).expect("df");
        let t = render_table(&wide, layout(3, 40)).expect("table");
        assert!(t.contains("│ only…"), "{t}");
        assert!(!t.contains("(0 shown)"), "{t}");
    }

    #[test]
    fn columns_are_chosen_from_both_ends_and_cut_to_fit() {
        assert_eq!(choose_columns(&[5, 5, 5], 0), (vec![0, 1, 2], None));
        assert_eq!(choose_columns(&[5, 5, 5], 25), (vec![0, 1, 2], None));
        // 1 + 4 for the border and marker, 8 a column at its narrowest.
        assert_eq!(choose_columns(&[5; 6], 29), (vec![0, 1, 5], Some(2)));
        assert_eq!(choose_columns(&[5; 6], 28), (vec![0, 5], Some(1)));
        assert_eq!(choose_columns(&[5; 6], 5), (vec![0], Some(1)));
        // Natural widths when they fit; else the widest is cut first, none below its floor.
        let f = [5; 3];
        assert_eq!(fit_widths(&[0, 1], &[3, 4], &[3, 4], None, 80), vec![3, 4]);
        assert_eq!(
            fit_widths(&[0, 1], &[3, 40], &[3, 5], None, 20),
            vec![3, 10]
        );
        assert_eq!(fit_widths(&[0, 1], &[30, 40], &f, None, 27), vec![10, 10]);
        assert_eq!(
            fit_widths(&[0, 1], &[30, 40], &[12, 5], None, 27),
            vec![12, 8]
        );
        assert_eq!(
            fit_widths(&[0, 2], &[30, 1, 40], &f, Some(1), 27),
            vec![8, 1, 8]
        );
    }
}

//! Cutting the shell's input into dot-commands and SQL statements.
//!
//! A dot-command is a line that starts with `.` outside a statement. A statement ends at
//! a `;` outside quotes (`'…'`, `"…"`, `` `…` ``, PostgreSQL's `$tag$…$tag$`) and comments
//! (`-- …`, `/* … */`), as `psql`, `sqlite3` and the `duckdb` CLI cut them.

/// One piece of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    /// A dot-command line, without the leading `.`: `mode csv`.
    Dot(String),
    /// A statement without its `;`, trimmed.
    Sql(String),
}

/// Where a scan of SQL text stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Code,
    Quoted(char),
    LineComment,
    BlockComment,
    Dollar(String),
}

/// The pieces of `text`, and what is left after the last complete one (a statement
/// still missing its `;`, trimmed; empty if none).
pub(super) fn split(text: &str) -> (Vec<Piece>, String) {
    let mut pieces = Vec::new();
    let mut rest = text;
    loop {
        let trimmed = skip_comments(rest);
        if trimmed.is_empty() {
            return (pieces, String::new());
        }
        if let Some(dot) = trimmed.strip_prefix('.') {
            let (line, after) = dot.split_once('\n').unwrap_or((dot, ""));
            pieces.push(Piece::Dot(line.trim().to_owned()));
            rest = after;
            continue;
        }
        match statement_end(trimmed) {
            Some(end) => {
                let sql = trimmed[..end].trim();
                if !sql.is_empty() {
                    pieces.push(Piece::Sql(sql.to_owned()));
                }
                rest = &trimmed[end + 1..];
            }
            None => return (pieces, trimmed.trim().to_owned()),
        }
    }
}

/// `text` after the blanks and comments it starts with: a comment line before a
/// dot-command does not make the dot-command SQL.
fn skip_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("--") {
            text = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = text.strip_prefix("/*") {
            match rest.split_once("*/") {
                Some((_, r)) => text = r,
                // Unclosed: the statement is still being typed.
                None => return text,
            }
        } else {
            return text;
        }
    }
}

/// Whether the editor's buffer is ready to run: empty, a dot-command, or SQL whose last
/// statement is closed by `;` (with only blanks or comments after it).
pub(super) fn is_complete(text: &str) -> bool {
    let (_, rest) = split(text);
    rest.is_empty() || only_comments(&rest)
}

fn only_comments(text: &str) -> bool {
    let mut state = State::Code;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match state {
            State::Code if c == '-' && next == Some('-') => state = State::LineComment,
            State::Code if c == '/' && next == Some('*') => {
                state = State::BlockComment;
                i += 1;
            }
            State::Code if c.is_whitespace() => {}
            State::Code => return false,
            State::LineComment if c == '\n' => state = State::Code,
            State::BlockComment if c == '*' && next == Some('/') => {
                state = State::Code;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    // An unclosed block comment still waits for its end.
    state != State::BlockComment
}

/// The byte offset of the `;` that ends the first statement of `text`, if any.
fn statement_end(text: &str) -> Option<usize> {
    let mut state = State::Code;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        match &state {
            State::Code => match c {
                ';' => return Some(i),
                '\'' | '"' | '`' => state = State::Quoted(c),
                '-' if next == Some('-') => state = State::LineComment,
                '/' if next == Some('*') => {
                    chars.next();
                    state = State::BlockComment;
                }
                '$' => {
                    // `$tag$` or `$$`; `$1` and `$name` (a parameter) are not quotes.
                    let tail = &text[i + 1..];
                    if let Some(close) = tail.find('$') {
                        let tag = &tail[..close];
                        if tag.chars().all(|t| t.is_alphanumeric() || t == '_')
                            && !tag.starts_with(|t: char| t.is_ascii_digit())
                        {
                            for _ in 0..=tag.chars().count() {
                                chars.next();
                            }
                            state = State::Dollar(format!("${tag}$"));
                        }
                    }
                }
                _ => {}
            },
            State::Quoted(q) => {
                if c == *q {
                    // A doubled quote stays inside.
                    if next == Some(*q) {
                        chars.next();
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if c == '*' && next == Some('/') {
                    chars.next();
                    state = State::Code;
                }
            }
            State::Dollar(tag) => {
                if text[i..].starts_with(tag.as_str()) {
                    for _ in 1..tag.chars().count() {
                        chars.next();
                    }
                    state = State::Code;
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(s: &str) -> Piece {
        Piece::Sql(s.to_owned())
    }

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        let (pieces, rest) = split(
            "SELECT 1; SELECT ';' AS a -- not; here\n, \"x;y\" /* ; */ FROM t;\nSELECT $$a;b$$, $f$;$f$;",
        );
        assert_eq!(
            pieces,
            [
                sql("SELECT 1"),
                sql("SELECT ';' AS a -- not; here\n, \"x;y\" /* ; */ FROM t"),
                sql("SELECT $$a;b$$, $f$;$f$"),
            ]
        );
        assert_eq!(rest, "");
    }

    #[test]
    fn dot_commands_are_lines_between_statements() {
        let (pieces, rest) =
            split("-- setup\n.mode csv\nSELECT 1;\n /* c */ .tables Al*\nSELECT\n 2");
        assert_eq!(
            pieces,
            [
                Piece::Dot("mode csv".into()),
                sql("SELECT 1"),
                Piece::Dot("tables Al*".into())
            ]
        );
        assert_eq!(rest, "SELECT\n 2");
    }

    #[test]
    fn a_statement_is_complete_only_with_its_semicolon() {
        assert!(is_complete(""));
        assert!(is_complete(".tables"));
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT ';"));
        assert!(!is_complete("SELECT 1; /* open"));
        assert!(!is_complete("SELECT $$;"));
        // Parameters are not dollar quotes.
        assert!(is_complete("SELECT $1, $name;"));
        // Doubled quotes stay inside the string.
        assert!(is_complete("SELECT 'it''s';"));
    }
}

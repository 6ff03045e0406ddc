//! Named parameters (`:name`) rewritten to PostgreSQL's positional ones (`$1`), without
//! touching string literals, quoted identifiers, comments, dollar-quoted bodies or `::`
//! casts. Values are never spliced into the text: they are bound by the server.

use plugboard_api::PluginError;

/// A statement ready for the server: its text with `$n` placeholders, and the name bound to
/// each position (`"1"`, `"2"` for queries already written with `$1`, `$2`).
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub sql: String,
    pub names: Vec<String>,
}

/// Rewrites `:name` placeholders to `$n`; a query that uses `$n` itself keeps them, bound
/// from params named `"1"`, `"2"`, …. Mixing the two styles is an error.
pub fn rewrite(sql: &str) -> Result<Rewritten, PluginError> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut names: Vec<String> = Vec::new();
    // Each name's position, so that 65535 distinct names cost no quadratic search.
    let mut numbers: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut max_positional = 0usize;
    let mut copied = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        match b[i] {
            b'\'' => i = skip_quoted(b, i, b'\'', is_escape_string(b, i)),
            b'"' => i = skip_quoted(b, i, b'"', false),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i),
            b'$' => {
                if let Some(end) = dollar_quote_end(b, i) {
                    i = end;
                } else {
                    let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    if digits > 0 {
                        let text = &sql[i + 1..i + 1 + digits];
                        max_positional = max_positional.max(positional(text)?);
                    }
                    i += 1 + digits;
                }
            }
            b':' if b.get(i + 1) == Some(&b':') => i += 2, // a cast
            b':' if b
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
                && (i == 0 || !is_ident(b[i - 1])) =>
            {
                let len = b[i + 1..].iter().take_while(|c| is_ident(**c)).count();
                let name = &sql[i + 1..i + 1 + len];
                let n = match numbers.get(name) {
                    Some(&n) => n,
                    None if names.len() >= MAX_PARAMS => {
                        return Err(PluginError::query(format!(
                            "the query names more than {MAX_PARAMS} parameters, the most \
                             PostgreSQL binds in one statement"
                        )));
                    }
                    None => {
                        names.push(name.to_owned());
                        numbers.insert(name, names.len());
                        names.len()
                    }
                };
                out.push_str(&sql[copied..i]);
                out.push('$');
                out.push_str(&n.to_string());
                i += 1 + len;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    if max_positional > 0 {
        if !names.is_empty() {
            return Err(PluginError::query(
                "the query mixes $n and :name parameters; use one style",
            ));
        }
        names = (1..=max_positional).map(|n| n.to_string()).collect();
    }
    Ok(Rewritten { sql: out, names })
}

/// The most parameters one statement can bind: the wire protocol counts them in 16 bits.
pub const MAX_PARAMS: usize = u16::MAX as usize;

/// The number of a `$n` placeholder, checked against what the server can bind: `$0` and
/// numbers past [`MAX_PARAMS`] are errors naming the placeholder, not a bound value list of
/// that length (a `$99999999999` once asked for terabytes and aborted the host).
fn positional(digits: &str) -> Result<usize, PluginError> {
    match digits.parse::<usize>() {
        Ok(0) => Err(PluginError::query(
            "placeholder $0: PostgreSQL numbers parameters from $1",
        )),
        Ok(n) if n <= MAX_PARAMS => Ok(n),
        _ => {
            // A placeholder of a thousand digits is shown by its start.
            let shown: String = digits.chars().take(24).collect();
            let more = if shown.len() < digits.len() {
                "…"
            } else {
                ""
            };
            Err(PluginError::query(format!(
                "placeholder ${shown}{more}: PostgreSQL binds at most {MAX_PARAMS} parameters \
                 ($1 to ${MAX_PARAMS})"
            )))
        }
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// `E'...'` strings treat backslashes as escapes.
fn is_escape_string(b: &[u8], quote: usize) -> bool {
    quote > 0 && matches!(b[quote - 1], b'E' | b'e') && (quote == 1 || !is_ident(b[quote - 2]))
}

/// The index after the closing quote (a doubled quote is part of the text).
fn skip_quoted(b: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// Block comments nest in PostgreSQL.
fn skip_block_comment(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < b.len() {
        if b[i] == b'/' && b[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// For `$tag$ ... $tag$` (tag possibly empty) starting at `start`, the index after the end.
fn dollar_quote_end(b: &[u8], start: usize) -> Option<usize> {
    let tag_len = b[start + 1..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    if b.get(start + 1 + tag_len) != Some(&b'$') || b.get(start + 1).is_some_and(u8::is_ascii_digit)
    {
        return None;
    }
    let tag = &b[start..start + tag_len + 2];
    let body = start + tag.len();
    let end = b[body..].windows(tag.len()).position(|w| w == tag)?;
    Some(body + end + tag.len())
}

/// Whether the statement is a plain query that `COPY (…) TO STDOUT` can wrap.
pub fn is_copyable(sql: &str) -> bool {
    let head = skip_leading_comments(sql);
    let word: String = head
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(word.as_str(), "SELECT" | "WITH" | "VALUES" | "TABLE")
}

fn skip_leading_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if s.starts_with("/*") {
            let end = skip_block_comment(s.as_bytes(), 0);
            s = &s[end..];
        } else {
            return s;
        }
    }
}

/// The statement without trailing semicolons and blanks, for wrapping in `COPY (…)`.
pub fn trim_statement(sql: &str) -> &str {
    sql.trim_end().trim_end_matches(';').trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> (String, Vec<String>) {
        let r = rewrite(sql).expect("rewrite");
        (r.sql, r.names)
    }

    #[test]
    fn named_become_positional_once_per_name() {
        assert_eq!(
            names("SELECT * FROM t WHERE a = :a AND b = :b OR a = :a"),
            (
                "SELECT * FROM t WHERE a = $1 AND b = $2 OR a = $1".into(),
                vec!["a".into(), "b".into()]
            )
        );
    }

    #[test]
    fn literals_comments_casts_and_dollar_quotes_are_left_alone() {
        let sql = "SELECT ':x', E'\\':y', \":z\", x::int, $$ :w $$, $t$ :v $t$ -- :c\n/* :d /* :e */ */ FROM t WHERE k = :k";
        let (out, n) = names(sql);
        assert_eq!(n, vec!["k".to_owned()]);
        assert!(out.ends_with("WHERE k = $1"), "{out}");
        assert!(
            out.starts_with("SELECT ':x', E'\\':y', \":z\", x::int, $$ :w $$"),
            "{out}"
        );
    }

    #[test]
    fn positional_queries_bind_by_number() {
        assert_eq!(
            names("SELECT $1::int + $2"),
            ("SELECT $1::int + $2".into(), vec!["1".into(), "2".into()])
        );
        assert!(rewrite("SELECT $1, :a").is_err());
        assert_eq!(names("SELECT 1").1, Vec::<String>::new());
    }

    #[test]
    fn placeholder_numbers_are_checked_before_anything_is_allocated() {
        for (sql, says) in [
            ("SELECT $0", "$0"),
            ("SELECT $65536", "$65536"),
            ("SELECT $99999999999", "$99999999999"),
            ("SELECT $18446744073709551616", "$18446744073709551616"),
        ] {
            let e = rewrite(sql).expect_err(sql);
            assert!(e.message().contains(says), "{sql}: {e}");
        }
        let long = format!("SELECT ${}", "9".repeat(5000));
        let e = rewrite(&long).expect_err("long");
        assert!(e.message().len() < 200, "{e}");
        assert_eq!(names("SELECT $65535").1.len(), MAX_PARAMS);
        // Inside literals, comments and dollar quotes a `$0` is text.
        assert!(rewrite("SELECT '$0', \"$0\" -- $0\n").is_ok());
        let many: String = (0..=MAX_PARAMS).map(|i| format!(":p{i},")).collect();
        assert!(rewrite(&format!("SELECT {many}")).is_err());
    }

    #[test]
    fn copyable_statements() {
        assert!(is_copyable("  -- c\n/* x */ select 1"));
        assert!(is_copyable("WITH a AS (SELECT 1) SELECT * FROM a"));
        assert!(!is_copyable("SHOW search_path"));
        assert!(!is_copyable("INSERT INTO t VALUES (1) RETURNING *"));
        assert_eq!(trim_statement("SELECT 1 ; \n"), "SELECT 1");
    }
}

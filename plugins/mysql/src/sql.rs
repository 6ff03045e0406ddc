//! Placeholders: `:name` and `?`, rewritten to the `?` a MySQL prepared statement takes,
//! without touching string literals (`'…'`, `"…"`, with backslash escapes), quoted
//! identifiers (`` `…` ``), comments (`-- `, `#`, `/* */`) or `:=` assignments. Values are
//! never spliced into the text: the server binds them.

use plugboard_api::PluginError;

/// The most placeholders one MySQL statement binds (the protocol counts them in 16 bits).
pub const MAX_PARAMS: usize = u16::MAX as usize;

/// A statement ready for the server: its text with `?` placeholders, and the parameter
/// bound at each one, in order. A name used twice is bound twice. Queries written with `?`
/// bind params named `"1"`, `"2"`, … in order.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub sql: String,
    pub names: Vec<String>,
}

pub fn rewrite(sql: &str) -> Result<Rewritten, PluginError> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut names: Vec<String> = Vec::new();
    let (mut named, mut positional) = (false, 0usize);
    let mut copied = 0usize;
    let mut i = 0usize;
    let push = |names: &mut Vec<String>, name: String| {
        if names.len() >= MAX_PARAMS {
            return Err(PluginError::query(format!(
                "the query has more than {MAX_PARAMS} placeholders, the most MySQL binds in \
                 one statement"
            )));
        }
        names.push(name);
        Ok(())
    };
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_quoted(b, i, q),
            b'#' => i = line_end(b, i),
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                i = line_end(b, i);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = b[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(b.len(), |p| i + 2 + p + 2);
            }
            b'?' => {
                positional += 1;
                push(&mut names, positional.to_string())?;
                i += 1;
            }
            b':' if b
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
                && (i == 0 || !is_ident(b[i - 1]) && b[i - 1] != b':') =>
            {
                let len = b[i + 1..].iter().take_while(|c| is_ident(**c)).count();
                named = true;
                push(&mut names, sql[i + 1..i + 1 + len].to_owned())?;
                out.push_str(&sql[copied..i]);
                out.push('?');
                i += 1 + len;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    if named && positional > 0 {
        return Err(PluginError::query(
            "the query mixes ? and :name parameters; use one style",
        ));
    }
    Ok(Rewritten { sql: out, names })
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn line_end(b: &[u8], start: usize) -> usize {
    b[start..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| start + p + 1)
}

/// The index after a quoted literal or identifier starting at `start`: a doubled quote
/// stays inside, and so does a backslash-escaped character (not in identifiers).
fn skip_quoted(b: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if quote != b'`' => i += 2,
            c if c == quote && b.get(i + 1) == Some(&quote) => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The statement without trailing semicolons and spaces, to nest it in another.
pub fn trim_statement(sql: &str) -> &str {
    sql.trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

/// Whether the statement is a query that can stand as a derived table (`SELECT`, `WITH`,
/// `VALUES`, `TABLE`), after leading comments: a row limit then wraps it in the server.
pub fn is_query(sql: &str) -> bool {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("/*") {
            s = rest.find("*/").map_or("", |p| &rest[p + 2..]).trim_start();
        } else if s.starts_with('#') || s.starts_with("-- ") {
            s = s.find('\n').map_or("", |p| &s[p + 1..]).trim_start();
        } else {
            break;
        }
    }
    let word: String = s
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(word.as_str(), "SELECT" | "WITH" | "VALUES" | "TABLE") && !s.contains(';')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> (String, Vec<String>) {
        let r = rewrite(sql).expect("rewrite");
        (r.sql, r.names)
    }

    #[test]
    fn named_placeholders_bind_at_each_use() {
        assert_eq!(
            names("SELECT * FROM t WHERE a = :a AND b > :b OR a = :a"),
            (
                "SELECT * FROM t WHERE a = ? AND b > ? OR a = ?".to_owned(),
                vec!["a".into(), "b".into(), "a".into()]
            )
        );
    }

    #[test]
    fn positional_placeholders_bind_by_number() {
        assert_eq!(
            names("SELECT ?, ?"),
            ("SELECT ?, ?".to_owned(), vec!["1".into(), "2".into()])
        );
        assert!(rewrite("SELECT ?, :a").is_err());
    }

    #[test]
    fn literals_comments_and_assignments_are_left_alone() {
        for sql in [
            "SELECT ':no', \"?\", `:id?` FROM t",
            "SELECT 'it\\'s :x', 'a''b :y'",
            "SELECT 1 -- :x ?\n",
            "SELECT 1 # :x ?\n",
            "SELECT /* :x ? */ 1",
            "SELECT @v := 1",
            "SELECT TIME '10:20:30'",
        ] {
            assert_eq!(names(sql), (sql.to_owned(), vec![]), "{sql}");
        }
        // `--` without a space after it is two minus signs, not a comment.
        assert_eq!(names("SELECT 1--:x").1, vec!["x".to_owned()]);
    }

    #[test]
    fn queries_that_can_be_wrapped() {
        assert!(is_query("  /* c */ select 1"));
        assert!(is_query("WITH a AS (SELECT 1) SELECT * FROM a"));
        assert!(!is_query("SHOW TABLES"));
        assert!(!is_query("SELECT 1; SELECT 2"));
    }
}

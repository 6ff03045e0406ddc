//! The shell's line editor helper: Tab completes dot-commands, SQL keywords, the
//! connection's tables (from `tables`) and the columns of the tables the line names (from
//! `describe`, cached); Enter runs the input only once its statement has its `;`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::dot::COMMANDS;
use crate::Connection;
use crate::client::catalog::{self, TableName};

/// Keywords offered after any word that is not a table or column.
const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "FULL",
    "CROSS",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "LIKE",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "WITH",
    "UNION",
    "ALL",
    "EXCEPT",
    "INTERSECT",
    "INSERT",
    "INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE",
    "CREATE",
    "TABLE",
    "VIEW",
    "DROP",
    "ALTER",
    "ASC",
    "DESC",
    "CAST",
    "EXISTS",
];

/// What completion knows about the current connection, loaded on first use.
#[derive(Default)]
pub(super) struct Known {
    conn: Option<Connection>,
    tables: Option<Vec<TableName>>,
    columns: HashMap<String, Vec<String>>,
    /// Every configured connection's name, for `.use`.
    pub(super) connections: Vec<String>,
}

impl Known {
    /// Forget what was learnt about the old connection.
    pub(super) fn switch(&mut self, conn: Connection) {
        self.conn = Some(conn);
        self.tables = None;
        self.columns.clear();
    }

    /// Forget the tables and columns (after a statement that may have changed them).
    pub(super) fn forget(&mut self) {
        self.tables = None;
        self.columns.clear();
    }

    fn tables(&mut self) -> &[TableName] {
        if self.tables.is_none() {
            let listed = self
                .conn
                .as_ref()
                .and_then(|c| c.tables().fetch().ok())
                .and_then(|df| catalog::names(&df).ok());
            self.tables = Some(listed.unwrap_or_default());
        }
        self.tables.as_deref().unwrap_or_default()
    }

    fn columns_of(&mut self, table: &str) -> &[String] {
        if !self.columns.contains_key(table) {
            let described = self
                .conn
                .as_ref()
                .and_then(|c| c.describe(table).fetch().ok())
                .and_then(|df| {
                    let column = df.column("column").ok()?.str().ok()?.clone();
                    Some(column.iter().flatten().map(str::to_owned).collect())
                });
            self.columns
                .insert(table.to_owned(), described.unwrap_or_default());
        }
        self.columns.get(table).map_or(&[], Vec::as_slice)
    }
}

pub(super) struct ShellHelper {
    pub(super) known: Arc<Mutex<Known>>,
    files: FilenameCompleter,
}

impl ShellHelper {
    pub(super) fn new(known: Arc<Mutex<Known>>) -> Self {
        Self {
            known,
            files: FilenameCompleter::new(),
        }
    }
}

/// The word before the cursor: from the last character that cannot be in a name.
fn word_start(line: &str, pos: usize) -> usize {
    line[..pos]
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '"'))
        .map_or(0, |(i, c)| i + c.len_utf8())
}

/// `candidate` as the user is typing it: upper case for a keyword typed in upper case.
fn in_case_of(typed: &str, candidate: &str, keyword: bool) -> String {
    if keyword && !typed.chars().any(char::is_uppercase) {
        candidate.to_lowercase()
    } else {
        candidate.to_owned()
    }
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text
            .char_indices()
            .nth(prefix.chars().count())
            .map_or(text, |(i, _)| &text[..i])
            .eq_ignore_ascii_case(prefix)
}

impl ShellHelper {
    /// Candidates for `typed` inside SQL: tables, then the columns of the tables the
    /// line names, then keywords.
    fn sql_candidates(&self, line: &str, typed: &str) -> Vec<String> {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let tables: Vec<TableName> = known.tables().to_vec();
        let lower = line.to_lowercase();
        let mut out: Vec<String> = Vec::new();
        let mut push = |c: String| {
            if !out.contains(&c) {
                out.push(c);
            }
        };
        for t in &tables {
            for name in [t.name.clone(), t.qualified()] {
                if starts_with_ignoring_case(&name, typed) {
                    push(name);
                }
            }
        }
        // The columns of every table the line mentions.
        for t in &tables {
            if !contains_word(&lower, &t.name.to_lowercase()) {
                continue;
            }
            let (qualifier, column_prefix) = match typed.rsplit_once('.') {
                Some((q, c)) => (Some(q), c),
                None => (None, typed),
            };
            for column in known.columns_of(&t.qualified()).to_vec() {
                if starts_with_ignoring_case(&column, column_prefix) {
                    match qualifier {
                        Some(q) => push(format!("{q}.{column}")),
                        None => push(column),
                    }
                }
            }
        }
        for k in KEYWORDS {
            if starts_with_ignoring_case(k, typed) {
                push(in_case_of(typed, k, true));
            }
        }
        out
    }
}

/// Whether `word` appears in `text` as a whole word.
fn contains_word(text: &str, word: &str) -> bool {
    let name = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back().is_none_or(|c| !name(c));
        let after = text[i + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !name(c));
        before && after
    })
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let pair = |s: String| Pair {
            display: s.clone(),
            replacement: s,
        };
        let head = &line[..pos];
        if let Some(dot) = head.trim_start().strip_prefix('.') {
            let (command, arg) = match dot.split_once(char::is_whitespace) {
                None => {
                    let start = pos - dot.len();
                    let names = COMMANDS
                        .iter()
                        .map(|c| c.name)
                        .filter(|n| n.starts_with(dot))
                        .map(|n| pair(format!("{n} ")))
                        .collect();
                    return Ok((start, names));
                }
                Some((c, a)) => (c, a.trim_start()),
            };
            let start = pos - arg.len();
            let choices: Vec<String> = match command {
                "read" | "output" => return self.files.complete(line, pos, ctx),
                "use" => {
                    let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
                    known.connections.clone()
                }
                "mode" => super::dot::MODES.iter().map(|m| (*m).to_owned()).collect(),
                "timer" | "refresh" => vec!["on".into(), "off".into()],
                "schema" | "describe" | "tables" => {
                    let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
                    known.tables().iter().map(TableName::qualified).collect()
                }
                "param" => vec!["set".into(), "unset".into(), "list".into(), "clear".into()],
                _ => Vec::new(),
            };
            let matches = choices
                .into_iter()
                .filter(|c| starts_with_ignoring_case(c, arg))
                .map(pair)
                .collect();
            return Ok((start, matches));
        }
        let start = word_start(line, pos);
        let typed = &line[start..pos];
        let candidates = self.sql_candidates(line, typed);
        Ok((start, candidates.into_iter().map(pair).collect()))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Validator for ShellHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if super::split::is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_start_after_the_last_separator() {
        assert_eq!(word_start("SELECT * FROM Tra", 17), 14);
        assert_eq!(word_start("SELECT t.Na", 11), 7);
        assert_eq!(word_start("Al", 2), 0);
    }

    #[test]
    fn keywords_keep_the_case_typed_and_prefixes_ignore_it() {
        assert_eq!(in_case_of("sel", "SELECT", true), "select");
        assert_eq!(in_case_of("SEL", "SELECT", true), "SELECT");
        assert_eq!(in_case_of("alb", "Album", false), "Album");
        assert!(starts_with_ignoring_case("Album", "alb"));
        assert!(!starts_with_ignoring_case("Al", "alb"));
    }

    #[test]
    fn table_names_are_found_as_whole_words() {
        assert!(contains_word("select * from track t", "track"));
        assert!(!contains_word("select * from tracks", "track"));
        assert!(contains_word("from invoiceline,track", "track"));
    }
}

//! Writes: [`Execute`] builds statements that run in one transaction.

use std::time::Instant;

use plugboard_api::{ErrorKind, ExecuteRequest, Params, Statement, Value};

use super::connection::{Connection, param_name};
use crate::error::Result;

impl Connection {
    /// Starts a write: one statement (more with [`Execute::statement`]), in one transaction.
    pub fn execute(&self, sql: impl Into<String>) -> Execute<'_> {
        Execute::new(self, sql.into())
    }
}

/// A write being built; finish it with [`Execute::run`].
#[derive(Debug)]
#[must_use = "a write does nothing until .run()"]
pub struct Execute<'c> {
    conn: &'c Connection,
    request: ExecuteRequest,
}

impl<'c> Execute<'c> {
    pub(super) fn new(conn: &'c Connection, sql: String) -> Self {
        Self {
            conn,
            request: ExecuteRequest {
                statements: vec![Statement {
                    sql,
                    params: Params::new(),
                }],
                params: Params::new(),
            },
        }
    }

    /// Binds a parameter shared by every statement (each binds the ones it uses).
    pub fn param(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.request.params.insert(param_name(name), value.into());
        self
    }

    /// Adds another statement to the same transaction.
    pub fn statement(mut self, sql: impl Into<String>) -> Self {
        self.request.statements.push(Statement {
            sql: sql.into(),
            params: Params::new(),
        });
        self
    }

    /// Adds a statement with its own parameters.
    pub fn statement_with(mut self, sql: impl Into<String>, params: Params) -> Self {
        self.request.statements.push(Statement {
            sql: sql.into(),
            params,
        });
        self
    }

    /// Runs every statement in one transaction; returns the rows affected. A successful
    /// write drops the connection's cached results.
    pub fn run(self) -> Result<u64> {
        let shared = &self.conn.shared;
        let started = Instant::now();
        // Writes are not retried: a retry after a lost commit acknowledgement could apply
        // the write twice.
        let handle = shared
            .handle()
            .map_err(|e| shared.error(&e, 1, "execute"))?;
        let result = handle.execute(&self.request);
        match result {
            Ok(n) => {
                // After the commit, before returning: every read that starts from here on
                // builds a key no earlier read used.
                shared.invalidate();
                tracing::debug!(connection = %shared.name, rows = n, elapsed = ?started.elapsed(), "execute");
                Ok(n)
            }
            Err(e) => {
                // A statement the source refused changed nothing; but a write whose
                // connection broke or whose plugin panicked may have committed (a lost
                // acknowledgement), so what is cached may no longer be what the source says.
                let refused = [ErrorKind::QUERY, ErrorKind::CONFIG, ErrorKind::UNSUPPORTED]
                    .contains(&e.kind)
                    && !e.retryable;
                if !refused {
                    shared.invalidate();
                }
                if e.kind == ErrorKind::PANIC || e.retryable {
                    shared.drop_handle();
                }
                Err(shared.error(&e, 1, "execute"))
            }
        }
    }
}

//! A connection and its reads and writes, in the shape of Streamlit's API:
//! `host.connection("pets_db")?.query(sql).param("owner", "Alice").ttl(ttl).fetch()?`.
//!
//! Every read goes through the host's result cache. A `retryable` plugin error resets the
//! connection and tries again (3 attempts, short backoff; `retry_attempts` and
//! `retry_backoff` per connection); a panic inside the plugin drops the connection, and
//! the next call reconnects. So does the first call after `connection_ttl`.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use plugboard_api::{
    ErrorKind, ExecuteRequest, Params, PluginError, ReadRequest, Statement, Value,
};
use polars::prelude::{DataFrame, Schema};

use crate::cache::{Lookup, Outcome, ResultCache, canonical_read};
use crate::disk::Pending;
use crate::error::{Error, Result};
use crate::host::Resolved;
use crate::state::Slot;
use crate::loader::{Batches, LoadedPlugin, PluginConnection};
use crate::secrets::Redactor;

/// Attempts for a call that keeps failing with `retryable` errors, unless the connection
/// sets `retry_attempts`.
pub const MAX_ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(50);

/// How `retryable` errors are retried: `attempts` in all, waiting `backoff × n` after the
/// n-th failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: MAX_ATTEMPTS,
            backoff: BACKOFF,
        }
    }
}

type Handle = Arc<dyn PluginConnection>;

/// What the host shares between every handle to one connection.
pub(crate) struct ConnShared {
    name: Arc<str>,
    plugin: Arc<LoadedPlugin>,
    /// Name, plugin and a keyed digest of the config: what the host knows before
    /// connecting. Invalidation and `cache clear NAME` go by it.
    identity: Arc<str>,
    /// Where this connection's generation is kept.
    scope: Slot,
    /// What the plugin last reported it connected to (since plugin-api 1.3): the
    /// database a read really reaches, which its config alone may not say (`PGDATABASE`,
    /// `~/.pgpass`, …). Part of every key, with its own generation, so a write through
    /// any connection to the same database invalidates them all.
    target: RwLock<Option<(Arc<str>, Slot)>>,
    /// The JSON `ConnectRequest`; holds secrets, so it is never logged.
    connect_request: String,
    redactor: Redactor,
    default_ttl: Option<Duration>,
    connection_ttl: Option<Duration>,
    retry: RetryPolicy,
    /// The plugin's connection and when it was opened.
    handle: Mutex<Option<(Handle, Instant)>>,
    results: Arc<ResultCache>,
}

impl ConnShared {
    /// Connects eagerly, so configuration errors surface where the connection is named.
    pub(crate) fn open(r: Resolved, identity: String, results: Arc<ResultCache>) -> Result<Self> {
        let request = plugboard_api::ConnectRequest {
            name: r.name.clone(),
            config: serde_json::to_value(&r.table)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default(),
        };
        let shared = Self {
            connect_request: serde_json::to_string(&request).unwrap_or_default(),
            name: r.name.into(),
            plugin: r.plugin,
            scope: results.state().slot(identity.as_bytes()),
            target: RwLock::new(None),
            identity: identity.into(),
            redactor: r.redactor,
            default_ttl: r.ttl,
            connection_ttl: r.connection_ttl,
            retry: r.retry,
            handle: Mutex::new(None),
            results,
        };
        shared.with_retry("connect", |_| Ok(()))?;
        Ok(shared)
    }

    fn lock(&self) -> MutexGuard<'_, Option<(Handle, Instant)>> {
        self.handle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The plugin's connection: the open one, or a new one if there is none or it is older
    /// than `connection_ttl`. Concurrent first uses wait on the lock and share one connect.
    fn handle(&self) -> std::result::Result<Handle, PluginError> {
        let mut slot = self.lock();
        if let Some((h, opened)) = &*slot {
            if self.connection_ttl.is_none_or(|ttl| opened.elapsed() < ttl) {
                return Ok(Arc::clone(h));
            }
            tracing::debug!(connection = %self.name, "connection_ttl passed; reconnecting");
            if let Some((old, _)) = slot.take() {
                old.close();
            }
        }
        let started = Instant::now();
        let h: Handle = Arc::from(self.plugin.connect(&self.connect_request)?);
        tracing::debug!(connection = %self.name, plugin = %self.plugin.manifest.name, elapsed = ?started.elapsed(), "connected");
        let target = h.target().map(|t| {
            let slot = self.results.state().slot(t.as_bytes());
            (Arc::<str>::from(t), slot)
        });
        *self.target.write().unwrap_or_else(|p| p.into_inner()) = target;
        *slot = Some((Arc::clone(&h), Instant::now()));
        Ok(h)
    }

    /// What the plugin last reported it connected to.
    fn target(&self) -> Option<(Arc<str>, Slot)> {
        self.target
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The cache key of a request of `method`.
    fn key(&self, method: &[u8], request: &[u8]) -> crate::cache::Key {
        let target = self.target();
        let target = target.as_ref().map(|(t, slot)| (&**t, *slot));
        self.results
            .key(&self.identity, self.scope, target, method, request)
    }

    /// Makes every cached result of this connection, and of every connection that reached
    /// the same database, unreachable in every process.
    fn invalidate(&self) {
        self.results.invalidate(&self.identity, &self.slots());
    }

    /// The generations this connection's keys are built with.
    fn slots(&self) -> Vec<Slot> {
        let mut slots = vec![self.scope];
        slots.extend(self.target().map(|(_, slot)| slot));
        slots
    }

    /// Closes the plugin's handle; the next call reconnects.
    fn drop_handle(&self) {
        let old = self.lock().take();
        if let Some((h, _)) = old {
            h.close();
        }
    }

    fn error(&self, e: &PluginError, attempts: u32) -> Error {
        let mut err = Error::plugin(&self.name, &self.plugin.manifest.name, e, |m| {
            self.redactor.redact(m)
        });
        if let Error::Plugin { attempts: a, .. } = &mut err {
            *a = attempts;
        }
        err
    }

    /// Runs `op` on the plugin connection, resetting and retrying on `retryable` errors.
    fn with_retry<T>(
        &self,
        what: &str,
        op: impl Fn(&dyn PluginConnection) -> std::result::Result<T, PluginError>,
    ) -> Result<T> {
        let mut attempt = 1;
        loop {
            let result = self.handle().and_then(|h| op(h.as_ref()));
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.retryable && attempt < self.retry.attempts => {
                    tracing::warn!(
                        connection = %self.name, attempt, error = %self.redactor.redact(e.message()),
                        "{what} failed with a retryable error; resetting the connection"
                    );
                    self.drop_handle();
                    std::thread::sleep(crate::duration::saturating_mul(self.retry.backoff, attempt));
                    attempt += 1;
                }
                Err(e) => {
                    if e.kind == ErrorKind::PANIC {
                        tracing::warn!(connection = %self.name, "the plugin panicked; dropping the connection");
                        self.drop_handle();
                    } else if e.retryable {
                        self.drop_handle();
                    }
                    return Err(self.error(&e, attempt));
                }
            }
        }
    }
}

/// A handle to an open connection. Cheap to clone; clones share the plugin connection.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<ConnShared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.shared.name)
            .field("plugin", &self.shared.plugin.manifest.name)
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(shared: Arc<ConnShared>) -> Self {
        Self { shared }
    }

    /// The connection's name, as configured.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The name of the plugin serving it.
    pub fn plugin(&self) -> &str {
        &self.shared.plugin.manifest.name
    }

    /// Starts a query: SQL for a database connector.
    pub fn query(&self, sql: impl Into<String>) -> Read<'_> {
        Read::new(self, sql.into())
    }

    /// Starts a read of a target: a path for a file connector, a resource for an API.
    pub fn read(&self, target: impl Into<String>) -> Read<'_> {
        Read::new(self, target.into())
    }

    /// Starts a write: one statement (more with [`Execute::statement`]), in one transaction.
    pub fn execute(&self, sql: impl Into<String>) -> Execute<'_> {
        Execute {
            conn: self,
            request: ExecuteRequest {
                statements: vec![Statement {
                    sql: sql.into(),
                    params: Params::new(),
                }],
                params: Params::new(),
            },
        }
    }

    /// A cheap health check through the plugin.
    pub fn ping(&self) -> Result<()> {
        self.shared.with_retry("ping", |c| c.ping())
    }

    /// Closes the plugin's connection and drops this connection's cached results, in
    /// memory and on disk; the next call reconnects.
    pub fn reset(&self) {
        let shared = &self.shared;
        shared.drop_handle();
        shared
            .results
            .clear_connection(&shared.identity, &shared.slots());
    }
}

/// A read being built; finish it with [`Read::fetch`].
#[derive(Debug)]
#[must_use = "a read does nothing until .fetch()"]
pub struct Read<'c> {
    conn: &'c Connection,
    request: ReadRequest,
    ttl: Option<Duration>,
    refresh: bool,
}

/// Parameter names are stored without their sigil: `:owner`, `@owner` and `$owner` are `owner`.
fn param_name(name: &str) -> String {
    name.trim_start_matches([':', '@', '$']).to_owned()
}

impl<'c> Read<'c> {
    fn new(conn: &'c Connection, query: String) -> Self {
        Self {
            conn,
            request: ReadRequest {
                query,
                ..ReadRequest::default()
            },
            ttl: None,
            refresh: false,
        }
    }

    /// Binds a named parameter (`:owner` in the query is `param("owner", ...)`).
    pub fn param(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.request.params.insert(param_name(name), value.into());
        self
    }

    /// Binds several parameters.
    pub fn params<K: AsRef<str>, V: Into<Value>>(
        mut self,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in params {
            self.request.params.insert(param_name(k.as_ref()), v.into());
        }
        self
    }

    /// How long the result may be served from the cache; zero disables caching for this
    /// read. Default: the connection's `ttl`, else until reset.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Reads again even if a cached result is fresh, and replaces it (in both tiers).
    pub fn refresh(mut self, yes: bool) -> Self {
        self.refresh = yes;
        self
    }

    /// Returns at most `n` rows.
    pub fn limit(mut self, n: u64) -> Self {
        self.request.limit = Some(n);
        self
    }

    /// A connector-specific read option (e.g. a file format).
    pub fn option(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.request.options.insert(key.to_owned(), value.into());
        self
    }

    /// Rows per batch the connector should produce.
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.request.batch_size = Some(rows);
        self
    }

    /// Runs the read through the cache and returns the table.
    pub fn fetch(self) -> Result<DataFrame> {
        self.fetch_shared().map(|(df, _)| df.as_ref().clone())
    }

    /// The cache key: connection identity and target, their generations, the method, and
    /// the whole canonical request (see [`canonical_read`]).
    fn lookup(&self) -> Lookup<'c> {
        let shared = &self.conn.shared;
        Lookup {
            key: shared.key(b"read", &canonical_read(&self.request)),
            connection: &shared.name,
            identity: &shared.identity,
            ttl: self.ttl.or(shared.default_ttl),
            refresh: self.refresh,
        }
    }

    /// Like [`Read::fetch`], returning the cached frame itself and where it came from.
    pub fn fetch_shared(self) -> Result<(Arc<DataFrame>, Outcome)> {
        let shared = &self.conn.shared;
        let lookup = self.lookup();
        let started = Instant::now();
        let (df, outcome) = shared.results.get_or_read(&lookup, || {
            shared.with_retry("read", |c| c.read(&self.request))
        })?;
        tracing::debug!(
            "read {:?}: {outcome}{}, {} rows × {} columns in {:.2?}",
            &*shared.name,
            if self.refresh { " (refresh)" } else { "" },
            df.height(),
            df.width(),
            started.elapsed()
        );
        Ok((df, outcome))
    }
}

impl Read<'_> {
    /// Runs the read batch by batch, for a result too big to hold: an export writes each
    /// batch and drops it, so memory stays flat however many rows there are.
    ///
    /// A fresh cached result is served from the cache, whole. Otherwise the connector
    /// streams (see [`ReadRequest::stream`]): its first batch fixes the column types, and
    /// a later value that would need another type is an error. When the read has a TTL
    /// the batches are also written to the disk tier as they pass, so the next read of
    /// the same query is a cache hit; the memory tier is left alone.
    ///
    /// Opening the stream is retried like any read; an error after the first batch ends
    /// the stream with that error, and nothing is cached.
    pub fn stream(mut self) -> Result<Stream> {
        let lookup = self.lookup();
        let shared = Arc::clone(&self.conn.shared);
        let started = Instant::now();
        if let Some((df, outcome)) = shared.results.cached(&lookup) {
            tracing::debug!(
                "read {:?}: {outcome}, {} rows × {} columns in {:.2?} (streamed)",
                &*shared.name,
                df.height(),
                df.width(),
                started.elapsed()
            );
            return Ok(Stream {
                schema: df.schema().as_ref().clone(),
                outcome,
                source: Source::Cached(Some(df)),
            });
        }
        self.request.stream = true;
        let batches = shared.with_retry("read", |c| c.stream(&self.request))?;
        let store = shared.results.begin_store(&lookup, batches.schema());
        Ok(Stream {
            schema: batches.schema().clone(),
            outcome: Outcome::Miss,
            source: Source::Plugin(Box::new(Live {
                batches,
                store,
                started,
                rows: 0,
                shared,
            })),
        })
    }
}

/// A read's result batch by batch, from [`Read::stream`]: an iterator of DataFrames that
/// all have [`Stream::schema`].
#[must_use = "a stream reads nothing until iterated"]
pub struct Stream {
    schema: Schema,
    outcome: Outcome,
    source: Source,
}

enum Source {
    /// A cached result, served as one batch.
    Cached(Option<Arc<DataFrame>>),
    Plugin(Box<Live>),
    Done,
}

/// A stream from the plugin, still running.
struct Live {
    batches: Batches,
    /// The disk-tier entry being written alongside, if any.
    store: Option<Pending>,
    started: Instant,
    rows: u64,
    shared: Arc<ConnShared>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("schema", &self.schema)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// The columns and types of every batch.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Whether the batches come from the cache or from the source.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
}

impl Iterator for Stream {
    type Item = Result<DataFrame>;

    fn next(&mut self) -> Option<Result<DataFrame>> {
        let live = match &mut self.source {
            Source::Plugin(live) => live,
            Source::Cached(df) => {
                let df = df.take();
                self.source = Source::Done;
                return df.map(|df| Ok(df.as_ref().clone()));
            }
            Source::Done => return None,
        };
        match live.batches.next_frame() {
            Ok(Some(df)) => {
                live.rows += df.height() as u64;
                if let Some(pending) = &mut live.store
                    && let Err(e) = pending.write(&df)
                {
                    tracing::warn!(
                        "disk cache: cannot store a result of {:?}: {e}",
                        &*live.shared.name
                    );
                    live.store = None;
                }
                Some(Ok(df))
            }
            Ok(None) => {
                let Source::Plugin(live) = std::mem::replace(&mut self.source, Source::Done) else {
                    return None;
                };
                let Live {
                    store,
                    started,
                    rows,
                    shared,
                    ..
                } = *live;
                tracing::debug!(
                    "read {:?}: {}, {rows} rows × {} columns in {:.2?} (streamed)",
                    &*shared.name,
                    Outcome::Miss,
                    self.schema.len(),
                    started.elapsed()
                );
                if let Some(pending) = store
                    && let Err(e) = pending.commit()
                {
                    tracing::warn!(
                        "disk cache: cannot store a result of {:?}: {e}",
                        &*shared.name
                    );
                }
                None
            }
            Err(e) => {
                if e.kind == ErrorKind::PANIC || e.retryable {
                    live.shared.drop_handle();
                }
                let err = live.shared.error(&e, 1);
                self.source = Source::Done;
                Some(Err(err))
            }
        }
    }
}

/// A write being built; finish it with [`Execute::run`].
#[derive(Debug)]
#[must_use = "a write does nothing until .run()"]
pub struct Execute<'c> {
    conn: &'c Connection,
    request: ExecuteRequest,
}

impl Execute<'_> {
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
        let handle = shared.handle().map_err(|e| shared.error(&e, 1))?;
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
                Err(shared.error(&e, 1))
            }
        }
    }
}

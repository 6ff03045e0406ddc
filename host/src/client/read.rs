//! Reads: [`Read`] builds one and runs it through the result cache, whole
//! ([`Read::fetch`]) or batch by batch ([`Read::stream`], a [`Stream`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use plugboard_api::{Catalog, ErrorKind, ReadRequest, Value};
use polars::prelude::{DataFrame, Schema};

use super::connection::{ConnShared, Connection, param_name};
use crate::cache::{Lookup, Outcome, Store, canonical_read};
use crate::error::{Error, Result};
use crate::plugin::Batches;

impl Connection {
    /// Starts a query: SQL for a database connector.
    pub fn query(&self, sql: impl Into<String>) -> Read<'_> {
        Read::new(self, sql.into())
    }

    /// Starts a read of a target: a path for a file connector, a resource for an API.
    pub fn read(&self, target: impl Into<String>) -> Read<'_> {
        Read::new(self, target.into())
    }

    /// The schemas, tables and views the connection can see: a table with the columns
    /// `schema` (null where the source has none), `name` and `kind` (`table`, `view`,
    /// `file`, …). Cached like any read (`.ttl`, `.refresh`); a write through the
    /// connection invalidates it. Needs a plugin built against plugboard-api 1.6 or later.
    pub fn tables(&self) -> Read<'_> {
        Read::catalog(self, Catalog::Tables)
    }

    /// The columns of `table` (`schema.table` where the source has schemas): a table with
    /// the columns `column`, `type` (the Arrow type a read gives it), `nullable` and
    /// `native_type`. Cached like [`Connection::tables`].
    pub fn describe(&self, table: impl Into<String>) -> Read<'_> {
        Read::catalog(
            self,
            Catalog::Columns {
                table: table.into(),
            },
        )
    }
}

/// The first plugboard-api minor whose plugins answer catalog reads.
const CATALOG_SINCE: u32 = 6;

/// A read being built; finish it with [`Read::fetch`].
#[derive(Debug)]
#[must_use = "a read does nothing until .fetch()"]
pub struct Read<'c> {
    conn: &'c Connection,
    request: ReadRequest,
    ttl: Option<Duration>,
    refresh: bool,
}

impl<'c> Read<'c> {
    pub(super) fn new(conn: &'c Connection, query: String) -> Self {
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

    fn catalog(conn: &'c Connection, catalog: Catalog) -> Self {
        let mut read = Self::new(conn, String::new());
        read.request.catalog = Some(catalog);
        read
    }

    /// Refuses a catalog read to a plugin built before catalog reads existed: it would
    /// ignore the field and run the empty query instead.
    fn check_supported(&self) -> Result<()> {
        if self.request.catalog.is_none() {
            return Ok(());
        }
        let plugin = &self.conn.shared.plugin;
        if plugin
            .api
            .minor()
            .is_some_and(|minor| minor >= CATALOG_SINCE)
        {
            return Ok(());
        }
        Err(Error::Unsupported {
            connection: self.conn.shared.name.to_string(),
            plugin: format!("{} {}", plugin.manifest.name, plugin.manifest.version),
            api: plugin.api.to_string(),
            what: match self.request.catalog {
                Some(Catalog::Columns { .. }) => "describing a table",
                _ => "listing tables",
            },
            since: "plugboard-api 1.6",
        })
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
        let ttl = self.ttl.or(shared.default_ttl);
        let below = ttl.is_some_and(|t| !t.is_zero());
        let (key, shared_key) = shared.key(b"read", &canonical_read(&self.request), below);
        Lookup {
            key,
            shared: shared_key,
            connection: &shared.name,
            identity: &shared.identity,
            portable: &shared.portable,
            stale: shared.stale_if_error,
            ttl,
            refresh: self.refresh,
        }
    }

    /// Like [`Read::fetch`], returning the cached frame itself and where it came from.
    pub fn fetch_shared(self) -> Result<(Arc<DataFrame>, Outcome)> {
        self.check_supported()?;
        let shared = &self.conn.shared;
        let lookup = self.lookup();
        let started = Instant::now();
        let (df, outcome) = shared.results.get_or_read(&lookup, || {
            shared.with_retry("read", |c| c.read(&self.request))
        })?;
        if outcome == Outcome::MemoryHit
            && let Some(window) = shared.refresh_ahead
            && shared.results.claim_refresh(&lookup, window)
        {
            refresh_in_background(
                Arc::clone(shared),
                self.request.clone(),
                lookup.ttl,
                lookup.key,
            );
        }
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

/// Refresh-ahead: reads `request` again on a thread of its own and replaces the cached
/// entry (keys built anew, so a write meanwhile is respected). A failure only warns: the
/// entry stays until its TTL.
/// `claimed` is the key [`crate::cache::ResultCache::claim_refresh`] was claimed under.
fn refresh_in_background(
    shared: Arc<ConnShared>,
    request: ReadRequest,
    ttl: Option<Duration>,
    claimed: crate::cache::Key,
) {
    let spawned = std::thread::Builder::new()
        .name("plugboard-refresh".to_owned())
        .spawn(move || {
            let below = ttl.is_some_and(|t| !t.is_zero());
            let (key, shared_key) = shared.key(b"read", &canonical_read(&request), below);
            let lookup = Lookup {
                key,
                shared: shared_key,
                connection: &shared.name,
                identity: &shared.identity,
                portable: &shared.portable,
                stale: None,
                ttl,
                refresh: true,
            };
            let started = Instant::now();
            match shared
                .results
                .get_or_read(&lookup, || shared.with_retry("read", |c| c.read(&request)))
            {
                Ok((df, _)) => tracing::debug!(
                    "read {:?}: refreshed ahead of its TTL, {} rows in {:.2?}",
                    &*shared.name,
                    df.height(),
                    started.elapsed()
                ),
                Err(e) => tracing::warn!(
                    "cannot refresh a result of {:?} ahead of its TTL: {e}",
                    &*shared.name
                ),
            }
            shared.results.refreshed(&claimed);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start a refresh: {e}");
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
        self.check_supported()?;
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
        let claim = match shared.results.flight(&lookup) {
            Ok(df) => {
                tracing::debug!(
                    "read {:?}: {}, {} rows × {} columns in {:.2?} (streamed, after waiting for another host)",
                    &*shared.name,
                    Outcome::RedisHit,
                    df.height(),
                    df.width(),
                    started.elapsed()
                );
                return Ok(Stream {
                    schema: df.schema().as_ref().clone(),
                    outcome: Outcome::RedisHit,
                    source: Source::Cached(Some(df)),
                });
            }
            Err(claim) => claim,
        };
        self.request.stream = true;
        let batches = match shared.with_retry("read", |c| c.stream(&self.request)) {
            Ok(b) => b,
            Err(e) => match shared.results.stale(&lookup, &e) {
                Some(df) => {
                    tracing::debug!(
                        "read {:?}: {}, {} rows × {} columns in {:.2?} (streamed)",
                        &*shared.name,
                        Outcome::StaleHit,
                        df.height(),
                        df.width(),
                        started.elapsed()
                    );
                    return Ok(Stream {
                        schema: df.schema().as_ref().clone(),
                        outcome: Outcome::StaleHit,
                        source: Source::Cached(Some(df)),
                    });
                }
                None => return Err(e),
            },
        };
        let store = shared.results.begin_store(&lookup, batches.schema(), claim);
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
    store: Option<Store>,
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
                if let Some(store) = &mut live.store {
                    store.write(&df);
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
                if let Some(store) = store {
                    store.commit();
                }
                None
            }
            Err(e) => {
                if e.kind == ErrorKind::PANIC
                    || e.retryable
                    || e.kind == crate::plugin::worker::DIED
                    || e.kind == crate::plugin::worker::TIMED_OUT
                {
                    live.shared.drop_handle();
                }
                let err = live.shared.error(&e, 1, "read");
                self.source = Source::Done;
                Some(Err(err))
            }
        }
    }
}

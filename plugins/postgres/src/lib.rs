//! # plugboard-postgres: PostgreSQL, read with binary COPY
//!
//! Serves `type = "postgresql"` (or `postgres`), and `type = "sql"` with a `postgresql://`
//! URL or `dialect = "postgresql"`: a Streamlit `[connections.x]` section for PostgreSQL
//! works unchanged, `create_engine_kwargs.connect_args` included. See [`config`] for the
//! keys, their precedence, the libpq environment and `~/.pgpass`, and [`tls`] for TLS.
//!
//! * `read` without parameters streams `COPY (query) TO STDOUT (FORMAT binary)` and
//!   decodes it straight into Arrow builders; with parameters (`:name` or `$1`) it binds
//!   them on the server (sent as text, so the server parses them as the types it inferred)
//!   and reads binary result rows. [`types`] has the type mapping.
//! * `execute` runs the statements in one transaction: all or nothing.
//! * A small pool of server connections per connection (`pool_size`, default 4).
//! * Errors carry their SQLSTATE. A connection the server dropped (terminated backend,
//!   restart, network) is a `retryable` error, so the host resets and retries; a wrong
//!   password is an `auth` error, never retried; a host that does not answer fails after
//!   `connect_timeout` (default 10 s).
#![forbid(unsafe_code)]

mod catalog;
mod client;
pub mod config;
mod copy;
pub mod fuzzing;
mod sql;
pub mod tls;
pub mod types;

use std::collections::BTreeSet;
use std::pin::pin;
use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};

use plugboard_api::arrow_array::{ArrayRef, RecordBatch, RecordBatchIterator};
use plugboard_api::arrow_schema::{ArrowError, Field, Schema, SchemaRef};
use plugboard_api::partition::Partitioning;
use plugboard_api::pool::{self, Manage, Pool};
use plugboard_api::stream;
use plugboard_api::{
    Connector, ErrorKind, ExecuteRequest, Manifest, Params, PluginError, ReadRequest,
    RecordBatchReader, Value, export_connector,
};
use tokio_postgres::Statement;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::client::Client;

pub use crate::config::Config;
use crate::config::{Settings, SslMode};
use crate::types::{ColumnBuilder, ColumnKind, Scalar, column_kind};

/// Rows per record batch unless the host asks for another size.
pub const DEFAULT_BATCH_SIZE: usize = 64 * 1024;

/// Opens server connections with the resolved settings.
pub struct Manager {
    settings: Settings,
    config: tokio_postgres::Config,
    tls: postgres_native_tls::MakeTlsConnector,
}

impl Manager {
    pub fn new(settings: Settings) -> Result<Self, PluginError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&settings.host)
            .port(settings.port)
            .user(&settings.user)
            .dbname(&settings.dbname)
            .application_name(&settings.application_name)
            .connect_timeout(settings.connect_timeout)
            .ssl_mode(match settings.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                    tokio_postgres::config::SslMode::Require
                }
            });
        if let Some(p) = &settings.password {
            config.password(p);
        }
        if let Some(o) = &settings.options {
            config.options(o);
        }
        if let Some(on) = settings.keepalives.enabled {
            config.keepalives(on);
        }
        if let Some(d) = settings.keepalives.idle {
            config.keepalives_idle(d);
        }
        if let Some(d) = settings.keepalives.interval {
            config.keepalives_interval(d);
        }
        if let Some(n) = settings.keepalives.count {
            config.keepalives_retries(n);
        }
        let tls = tls::connector(&settings)?;
        Ok(Self {
            settings,
            config,
            tls: postgres_native_tls::MakeTlsConnector::new(tls),
        })
    }

    /// What a failed certificate check checked, for its error.
    fn verify_hint(&self) -> String {
        let cas = match &self.settings.sslrootcert {
            Some(path) => format!("the CAs in {}", path.display()),
            None => "the system's CAs".to_owned(),
        };
        match self.settings.sslmode {
            SslMode::VerifyFull => format!(
                "; sslmode verify-full wants a certificate from {cas} that names {}",
                self.settings.host
            ),
            _ => format!("; sslmode verify-ca wants a certificate from {cas}"),
        }
    }

    fn target(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.settings.user, self.settings.host, self.settings.port, self.settings.dbname
        )
    }
}

impl Manage for Manager {
    type Conn = Client;

    fn connect(&self) -> Result<Client, PluginError> {
        Client::connect(&self.config, self.tls.clone())?.map_err(|e| {
            let err = classify(&e, Stage::Connect);
            let mut message = format!("cannot connect to {}: {}", self.target(), err.message());
            if message.contains("certificate verify failed") {
                message.push_str(&self.verify_hint());
            }
            PluginError::new(err.kind, message)
        })
    }

    fn reusable(&self, conn: &mut Client) -> bool {
        !conn.is_closed()
    }

    /// PostgreSQL's cancel request: a new connection to the server, naming the backend
    /// by its key, stops the query it runs (with SQLSTATE 57014), if any. The server
    /// cancels only what is running when the request arrives; the pool holds this
    /// connection until the request is sent, so it cannot reach the next caller's query.
    fn canceller(&self, conn: &Client) -> Option<pool::Canceller> {
        let token = conn.cancel_token()?;
        let tls = self.tls.clone();
        let target = self.target();
        Some(Box::new(move || {
            client::cancel(&token, tls.clone())
                .map_err(|e| PluginError::connect(format!("cannot cancel on {target}: {e}")))
        }))
    }
}

/// Where an error happened: a failure to connect is not a stale connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connect,
    Established,
}

/// Turns a driver error into a plugin error: its SQLSTATE decides the kind, and whether
/// resetting the connection may help.
fn classify(e: &tokio_postgres::Error, stage: Stage) -> PluginError {
    let established = stage == Stage::Established;
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let mut message = format!("{} {code}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            message.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            message.push_str(&format!("; hint: {hint}"));
        }
        let (kind, retryable) = match code {
            c if c.starts_with("28") => (ErrorKind::AUTH, false),
            "3D000" => (ErrorKind::CONFIG, false),
            // Terminated backend, server shutting down or starting, lost connection.
            c if c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300") => {
                (ErrorKind::CONNECT, established)
            }
            // Cancelled by a cancel request; a statement_timeout raises the same code, and
            // is the query's own failure (the server's text says which, in English; in
            // another lc_messages a timeout reads as a cancel).
            "57014" if !message.contains("statement timeout") => (ErrorKind::CANCELLED, false),
            // Serialization failures and deadlocks: a retry of the read can succeed.
            "40001" | "40P01" => (ErrorKind::QUERY, true),
            _ => (ErrorKind::QUERY, false),
        };
        let err = PluginError::new(kind, message);
        return if retryable { err.retryable() } else { err };
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        source = s.source();
    }
    let err = PluginError::connect(message);
    if established { err.retryable() } else { err }
}

/// [`classify`] for an error on an open connection.
fn established(e: tokio_postgres::Error) -> PluginError {
    classify(&e, Stage::Established)
}

/// A parameter sent in text format: the server parses it as the type it inferred for the
/// placeholder, as psql and libpq do.
#[derive(Debug)]
struct TextParam<'a>(&'a Value);

impl ToSql for TextParam<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let text = match self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Bool(b) => if *b { "t" } else { "f" }.to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) if f.is_nan() => "NaN".to_owned(),
            Value::Float(f) if f.is_infinite() => {
                if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
            }
            Value::Float(f) => f.to_string(),
            Value::String(s) => s.clone(),
            Value::Bytes(b) => {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                format!("\\x{hex}")
            }
        };
        out.extend_from_slice(text.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> tokio_postgres::types::Format {
        tokio_postgres::types::Format::Text
    }

    to_sql_checked!();
}

/// A value's raw binary bytes.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The values for a statement's placeholders, in order (see `plugboard_api::bind`).
fn bind<'p>(
    names: &[String],
    params: &'p Params,
    shared: Option<&'p Params>,
    strict: bool,
) -> Result<Vec<TextParam<'p>>, PluginError> {
    let values = plugboard_api::bind::values(names, params, shared, strict, |n| format!(":{n}"))?;
    Ok(values.into_iter().map(TextParam).collect())
}

/// A connection to one PostgreSQL database.
pub struct Postgres {
    pool: Arc<Pool<Manager>>,
    /// What the settings resolved to (see [`Settings::target`]).
    target: plugboard_api::Target,
}

type Batches = RecordBatchIterator<std::vec::IntoIter<Result<RecordBatch, ArrowError>>>;

impl Connector for Postgres {
    type Config = Config;

    fn manifest() -> Manifest {
        use plugboard_api::{ConfigKey, KeyType};
        let s = ConfigKey::string;
        Manifest::new("postgres", env!("CARGO_PKG_VERSION"))
            .description("PostgreSQL databases: binary COPY reads, server-side parameters")
            .kinds(["postgresql", "postgres"])
            .schemes(["postgresql"])
            .key(s("url").describe("postgresql://user:password@host:port/database?sslmode=…"))
            .key(s("dialect").describe("SQLAlchemy's dialect: postgresql"))
            .key(s("driver").describe("SQLAlchemy's driver (psycopg2, …): accepted, changes nothing"))
            .key(s("username"))
            .key(s("password").secret())
            .key(s("host"))
            .key(ConfigKey::new("port", KeyType::Any).describe("5432, or text holding it: \"5432\""))
            .key(s("database"))
            .key(ConfigKey::new("query", KeyType::Table).describe("URL options"))
            .key(s("sslmode").describe("disable, allow, prefer, require, verify-ca, verify-full"))
            .key(s("sslrootcert").describe("a PEM file of trusted CAs"))
            .key(
                ConfigKey::new("connect_timeout", KeyType::Duration)
                    .describe("seconds, or \"5s\" (default 10 s)"),
            )
            .key(
                ConfigKey::new("pool_size", KeyType::Integer)
                    .describe("server connections (default 4)"),
            )
            .key(s("application_name"))
            .key(ConfigKey::new("create_engine_kwargs", KeyType::Table).describe(
                "SQLAlchemy's: connect_args (libpq keywords), pool_size, pool_pre_ping, echo = false",
            ))
            // Wherever they stand (`query`, `create_engine_kwargs.connect_args`).
            .secret_keys(["password", "sslpassword"])
    }

    fn connect(config: Config) -> Result<Self, PluginError> {
        let settings = config.resolve()?;
        let size = settings.pool_size;
        let target = settings.target();
        Ok(Self {
            pool: Arc::new(Pool::open(Manager::new(settings)?, size)?),
            target,
        })
    }

    fn target(&self) -> Option<plugboard_api::Target> {
        Some(self.target.clone())
    }

    fn read(
        &self,
        request: &ReadRequest,
    ) -> Result<impl plugboard_api::RecordBatchReader + Send + 'static, PluginError> {
        Ok(match Partitioning::from_request(request)? {
            Some(partitioning) => Box::new(self.read_partitioned(request, &partitioning)?)
                as Box<dyn RecordBatchReader + Send>,
            None if request.stream => Box::new(self.stream(request)?),
            None => Box::new(self.read_one(request)?),
        })
    }

    fn execute(&self, request: &ExecuteRequest) -> Result<u64, PluginError> {
        let mut conn = self.pool.get()?;
        let result = execute(&mut conn, request);
        if conn.is_closed() {
            conn.discard();
        }
        result
    }

    fn tables(&self) -> Result<Vec<plugboard_api::TableInfo>, PluginError> {
        catalog::tables(&mut *self.pool.get()?)
    }

    fn describe(&self, table: &str) -> Result<Vec<plugboard_api::ColumnInfo>, PluginError> {
        catalog::describe(&mut *self.pool.get()?, table)
    }

    fn cancel(&self) -> Result<(), PluginError> {
        self.pool.cancel().map(drop)
    }

    fn ping(&self) -> Result<(), PluginError> {
        self.pool
            .get()?
            .run(|c| async move { c.simple_query("").await.map(drop).map_err(established) })
    }

    fn close(&self) {
        self.pool.clear();
    }
}

impl Postgres {
    fn read_one(&self, request: &ReadRequest) -> Result<Batches, PluginError> {
        let mut conn = self.pool.get()?;
        let size = request.batch_size.unwrap_or(DEFAULT_BATCH_SIZE).max(1);
        let mut batches = Vec::new();
        let result = read(&mut conn, request, &mut |b| {
            let rows = b.num_rows();
            batches.extend(
                (0..rows)
                    .step_by(size)
                    .map(|start| Ok(b.slice(start, size.min(rows - start)))),
            );
            Ok(())
        });
        if conn.is_closed() {
            conn.discard();
        }
        Ok(RecordBatchIterator::new(batches.into_iter(), result?))
    }

    /// A streamed read (an export): read on a thread of its own, each batch handed to the
    /// host as soon as it is full, two at most waiting.
    fn stream(&self, request: &ReadRequest) -> Result<stream::ThreadReader, PluginError> {
        let pool = Arc::clone(&self.pool);
        let request = request.clone();
        stream::spawn(2, move |sink| {
            let mut conn = pool.get_owned()?;
            let result = read(&mut conn, &request, &mut |b| Ok(sink.send(b)?));
            if conn.is_closed() {
                conn.discard();
            }
            sink.schema(result?)?;
            Ok(())
        })
    }

    /// The ranges of `partition_on`, each read (by COPY where it can) on its own server
    /// connection and thread, concatenated in order.
    fn read_partitioned(
        &self,
        request: &ReadRequest,
        partitioning: &Partitioning,
    ) -> Result<Batches, PluginError> {
        let column = format!("\"{}\"", partitioning.column.replace('"', "\"\""));
        let parts = partitioning.read(request, &column, |part| {
            self.read_one(part)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| PluginError::internal(e.to_string()))
        })?;
        let Some(batches) = parts else {
            return self.read_one(request);
        };
        let schema = batches[0].schema();
        Ok(RecordBatchIterator::new(
            batches.into_iter().map(Ok).collect::<Vec<_>>().into_iter(),
            schema,
        ))
    }
}

/// Runs a read, handing each batch of `batch_size` rows to `emit` as soon as it is full.
/// Returns the schema (known from the prepared statement, rows or not).
fn read(
    client: &mut Client,
    request: &ReadRequest,
    emit: &mut dyn FnMut(RecordBatch) -> Result<(), PluginError>,
) -> Result<SchemaRef, PluginError> {
    let rewritten = sql::rewrite(&request.query)?;
    let params = bind(&rewritten.names, &request.params, None, true)?;
    let copyable = sql::is_copyable(&rewritten.sql);
    let text = match (request.limit, copyable) {
        // LIMIT is a bigint: a larger limit is no limit, not "bigint out of range".
        (Some(n), true) => format!(
            "SELECT * FROM ({}\n) AS plugboard_limited LIMIT {n}",
            sql::trim_statement(&rewritten.sql),
            n = n.min(i64::MAX as u64)
        ),
        _ => rewritten.sql.clone(),
    };
    let statement = client.run(|c| async { c.prepare(&text).await.map_err(established) })?;
    let kinds = statement
        .columns()
        .iter()
        .map(|c| column_kind(c.name(), c.type_()).map_err(PluginError::unsupported))
        .collect::<Result<Vec<_>, _>>()?;
    // A streamed read hands over every `batch_size` rows. A cached read with a numeric
    // column is one batch, sliced afterwards, so that the column's scale comes from all
    // its values; without one, batches of `batch_size` rows spare growing one batch of
    // every row (and copying it at each doubling).
    let batch_size = request.batch_size.unwrap_or(DEFAULT_BATCH_SIZE).max(1);
    let numeric = kinds.iter().any(|k| {
        matches!(
            k,
            ColumnKind::Scalar(Scalar::Numeric) | ColumnKind::List(Scalar::Numeric)
        )
    });
    // A streamed read has room for a default batch up front, not for `usize::MAX` rows;
    // a cached read may be a lookup of a few rows, and starts small (a batch's builders,
    // the next batch's included, cost their allocation even when no row comes).
    let (size, capacity) = if request.stream {
        (batch_size, batch_size.min(DEFAULT_BATCH_SIZE))
    } else if numeric {
        (usize::MAX, 1024)
    } else {
        (batch_size, 1024)
    };
    let builders = |capacity| {
        statement
            .columns()
            .iter()
            .zip(&kinds)
            .map(|(c, kind)| ColumnBuilder::new(c.name(), *kind, capacity))
            .collect::<Vec<_>>()
    };
    // The schema, from the types of empty columns; a numeric column's scale comes from
    // the first batch.
    let fields: Vec<Field> = statement
        .columns()
        .iter()
        .zip(builders(0).iter_mut().map(ColumnBuilder::finish))
        .map(|(c, a)| Field::new(c.name(), a.data_type().clone(), true))
        .collect();
    let mut batcher = Batcher {
        schema: Arc::new(Schema::new(fields)),
        fixed: false,
        columns: builders(capacity),
        fresh: &|| builders(capacity),
        size,
        rows: 0,
        read: 0,
        emit,
    };
    let protocol = request
        .options
        .get("protocol")
        .and_then(|v| v.as_str())
        .unwrap_or("auto");
    let use_copy = match protocol {
        "auto" => copyable && params.is_empty(),
        "copy" if copyable && params.is_empty() => true,
        "copy" => {
            return Err(PluginError::query(
                "protocol \"copy\" needs a SELECT without parameters",
            ));
        }
        "rows" => false,
        other => {
            return Err(PluginError::query(format!(
                "option protocol: {other:?} is not auto, copy or rows"
            )));
        }
    };
    if use_copy {
        read_copy(client, &text, &mut batcher)?;
    } else {
        read_rows(client, &statement, &params, request.limit, &mut batcher)?;
    }
    batcher.flush()?;
    Ok(batcher.schema)
}

/// Builders for one batch, and where full batches go.
struct Batcher<'a> {
    schema: SchemaRef,
    /// Whether a batch went out: its types are the stream's from then on.
    fixed: bool,
    columns: Vec<ColumnBuilder>,
    /// New, empty builders for the next batch.
    fresh: &'a dyn Fn() -> Vec<ColumnBuilder>,
    size: usize,
    rows: usize,
    /// Rows handed over so far.
    read: u64,
    emit: &'a mut dyn FnMut(RecordBatch) -> Result<(), PluginError>,
}

impl Batcher<'_> {
    /// One more row is complete in every column.
    fn row_done(&mut self) -> Result<(), PluginError> {
        self.rows += 1;
        if self.rows == self.size {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands over the rows built so far as one batch.
    fn flush(&mut self) -> Result<(), PluginError> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut columns = std::mem::replace(&mut self.columns, (self.fresh)());
        let arrays = columns
            .iter_mut()
            .zip(self.schema.fields())
            .map(|(c, f)| {
                let fixed = self.fixed.then(|| f.data_type());
                c.finish_as(fixed).map_err(|e| {
                    PluginError::query(format!(
                        "column {:?}: {e} in rows {}..{}, but the first {} rows fixed it as \
                         {} for this streamed read; CAST the column in the query \
                         (a numeric one with a scale: ::numeric(38, 10))",
                        f.name(),
                        self.read + 1,
                        self.read + self.rows as u64,
                        self.size,
                        f.data_type()
                    ))
                })
            })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        if !self.fixed {
            let fields: Vec<Field> = self
                .schema
                .fields()
                .iter()
                .zip(&arrays)
                .map(|(f, a)| Field::new(f.name(), a.data_type().clone(), true))
                .collect();
            self.schema = Arc::new(Schema::new(fields));
            self.fixed = true;
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .map_err(|e| PluginError::internal(format!("cannot assemble the result: {e}")))?;
        self.read += self.rows as u64;
        self.rows = 0;
        (self.emit)(batch)
    }
}

/// Streams `COPY (query) TO STDOUT (FORMAT binary)` into the builders: one runtime
/// entry for the whole read, each message decoded as it arrives.
fn read_copy(
    client: &mut Client,
    query: &str,
    batcher: &mut Batcher<'_>,
) -> Result<(), PluginError> {
    let copy = format!(
        "COPY ({}\n) TO STDOUT (FORMAT binary)",
        sql::trim_statement(query)
    );
    client.run(|c| async move {
        let mut messages = pin!(c.copy_out(copy.as_str()).await.map_err(established)?);
        let mut decoder = copy::Decoder::new();
        while let Some(message) = messages.next().await {
            decoder.feed(&message.map_err(established)?, batcher)?;
        }
        decoder.finish()
    })
}

/// Binds the parameters on the server and reads binary result rows.
fn read_rows(
    client: &mut Client,
    statement: &Statement,
    params: &[TextParam<'_>],
    limit: Option<u64>,
    batcher: &mut Batcher<'_>,
) -> Result<(), PluginError> {
    client.run(|c| async move {
        let values = params.iter().map(|p| p as &dyn ToSql);
        let mut rows = pin!(c.query_raw(statement, values).await.map_err(established)?);
        let mut n = 0u64;
        while let Some(row) = rows.try_next().await.map_err(established)? {
            if limit.is_some_and(|l| n >= l) {
                continue; // the rest of the result is drained, not kept
            }
            for (i, column) in batcher.columns.iter_mut().enumerate() {
                let raw: Option<Raw<'_>> = row
                    .try_get(i)
                    .map_err(|e| PluginError::internal(e.to_string()))?;
                column
                    .push(raw.map(|r| r.0))
                    .map_err(PluginError::internal)?;
            }
            n += 1;
            batcher.row_done()?;
        }
        Ok(())
    })
}

fn execute(client: &mut Client, request: &ExecuteRequest) -> Result<u64, PluginError> {
    client.run(|c| async move {
        let tx = c.transaction().await.map_err(established)?;
        let mut total = 0u64;
        let mut used = BTreeSet::new();
        for statement in &request.statements {
            let rewritten = sql::rewrite(&statement.sql)?;
            used.extend(rewritten.names.iter().cloned());
            if rewritten.names.is_empty() {
                // No parameters: the simple protocol, which also runs several statements.
                for message in tx.simple_query(&rewritten.sql).await.map_err(established)? {
                    if let tokio_postgres::SimpleQueryMessage::CommandComplete(n) = message {
                        total += n;
                    }
                }
            } else {
                let params = bind(
                    &rewritten.names,
                    &statement.params,
                    Some(&request.params),
                    false,
                )?;
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                total += tx
                    .execute(rewritten.sql.as_str(), &refs)
                    .await
                    .map_err(established)?;
            }
        }
        if let Some(unknown) = request.params.keys().find(|k| !used.contains(*k)) {
            return Err(PluginError::query(format!(
                "unknown parameter {unknown:?}: no statement uses it"
            )));
        }
        tx.commit().await.map_err(established)?;
        Ok(total)
    })
}

export_connector!(Postgres);

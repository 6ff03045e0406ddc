//! # plugboard-mysql: MySQL and MariaDB, read through the binary protocol
//!
//! Serves `type = "mysql"` (or `mariadb`), and `type = "sql"` with a `mysql://` or
//! `mariadb://` URL (any `+driver`) or `dialect = "mysql"`: a Streamlit `[connections.x]`
//! section for MySQL works unchanged, `create_engine_kwargs.connect_args` included. See
//! [`config`] for the keys, their precedence, `~/.my.cnf` and the environment, and TLS.
//!
//! * `read` prepares the query on the server and binds its parameters there (`:name` or
//!   `?`, never spliced); the rows come through the binary protocol and are decoded
//!   straight into Arrow builders as they arrive, `batch_size` rows a batch, so an export
//!   holds one batch at a time, whatever the result's size. [`types`] has the type mapping.
//!   A statement the server cannot prepare (some `SHOW`s in older servers) is read through
//!   the text protocol instead, when it has no parameters.
//! * `execute` runs the statements in one transaction: all or nothing (MySQL itself
//!   commits around DDL such as `CREATE TABLE`; keep DDL out of a batch that must be atomic).
//! * A TCP address on this machine (`127.0.0.1`, `localhost`) moves to the server's Unix
//!   socket when it can, as the driver does, unless `ssl_mode` asks for TLS.
//! * A small pool of server connections per connection (`pool_size`, default 4). Each
//!   session runs in UTC (`time_zone = '+00:00'`, so `TIMESTAMP`s read as instants) with
//!   the configured character set (utf8mb4).
//! * Errors carry the MySQL error number and SQLSTATE (`ERROR 1146 (42S02): …`). A
//!   connection the server dropped (`KILL`, `wait_timeout`, a restart) is a `retryable`
//!   error, so the host resets and retries; a wrong password is an `auth` error, never
//!   retried; a server that does not answer fails after `connect_timeout` (default 10 s).
#![forbid(unsafe_code)]

mod catalog;
pub mod config;
pub mod fuzzing;
mod sql;
pub mod types;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder, SslOpts};
use plugboard_api::arrow_array::{RecordBatch, RecordBatchIterator};
use plugboard_api::arrow_schema::{ArrowError, SchemaRef};
use plugboard_api::partition::Partitioning;
use plugboard_api::pool::{self, Manage, Pool};
use plugboard_api::stream;
use plugboard_api::{
    Connector, ErrorKind, ExecuteRequest, Manifest, Params, PluginError, ReadRequest,
    RecordBatchReader, Value, export_connector,
};

pub use crate::config::Config;
use crate::config::{Address, Settings, SslMode};
use crate::types::{Columns, ZeroDates, column_kind};

/// Rows per record batch unless the host asks for another size.
pub const DEFAULT_BATCH_SIZE: usize = 64 * 1024;

/// MySQL's error numbers this connector treats specially.
mod code {
    pub const ACCESS_DENIED_DB: u16 = 1044;
    pub const ACCESS_DENIED: u16 = 1045;
    pub const BAD_DB: u16 = 1049;
    pub const SERVER_SHUTDOWN: u16 = 1053;
    pub const DUP_FIELDNAME: u16 = 1060;
    pub const NO_SUCH_THREAD: u16 = 1094;
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    pub const DEADLOCK: u16 = 1213;
    pub const UNSUPPORTED_PS: u16 = 1295;
    pub const ACCESS_DENIED_NO_PASSWORD: u16 = 1698;
    pub const QUERY_INTERRUPTED: u16 = 1317;
    pub const CONNECTION_KILLED: u16 = 1927;
    pub const CLIENT_INTERACTION_TIMEOUT: u16 = 4031;
}

/// One server connection, and whether it failed in a way that leaves it unusable.
pub struct Server {
    conn: Conn,
    broken: bool,
}

/// Opens server connections with the resolved settings.
pub struct Manager {
    settings: Settings,
    opts: OptsBuilder,
    /// `PREFERRED` TLS found a server without TLS: connect in the clear from then on.
    no_tls: AtomicBool,
}

impl Manager {
    pub fn new(settings: Settings) -> Self {
        let mut init = vec![
            "SET time_zone = '+00:00'".to_owned(),
            format!("SET NAMES {}", settings.charset),
        ];
        init.extend(settings.init_command.clone());
        let mut opts = OptsBuilder::new()
            .user(Some(&settings.user))
            .pass(settings.password.clone())
            .db_name(settings.database.clone())
            .tcp_connect_timeout(Some(settings.connect_timeout))
            .init(init);
        opts = match &settings.address {
            Address::Tcp { host, port } => opts.ip_or_hostname(Some(host)).tcp_port(*port),
            Address::Socket(path) => opts.socket(Some(path.display().to_string())),
        };
        // As the driver does by default, a TCP connection to this machine moves to the
        // server's Unix socket (`@@socket`) when it can: the faster transport, and as
        // private. Not when the settings ask for TLS: a socket has none.
        opts = opts.prefer_socket(matches!(
            settings.ssl_mode,
            SslMode::Disabled | SslMode::Preferred
        ));
        if settings.ssl_mode != SslMode::Disabled {
            let mut ssl = SslOpts::default()
                .with_danger_accept_invalid_certs(matches!(
                    settings.ssl_mode,
                    SslMode::Preferred | SslMode::Required
                ))
                .with_danger_skip_domain_validation(settings.ssl_mode != SslMode::VerifyIdentity);
            if let Some(ca) = &settings.ssl_ca {
                ssl = ssl.with_root_cert_path(Some(ca.clone()));
            }
            if let Some((cert, key)) = &settings.client_identity {
                ssl = ssl.with_client_identity(Some(mysql::ClientIdentity::new(
                    cert.clone(),
                    key.clone(),
                )));
            }
            opts = opts.ssl_opts(Some(ssl));
        }
        Self {
            settings,
            opts,
            no_tls: AtomicBool::new(false),
        }
    }

    /// Opens one server connection, the handshake included, within `connect_timeout`:
    /// the driver's own timeout covers only the TCP connect, and a server (or a port
    /// forward) that accepts and then never greets would hold the caller forever. The
    /// attempt runs on a thread of its own; one that is given up on ends with its socket.
    fn open(&self, opts: OptsBuilder) -> Result<Conn, mysql::Error> {
        open_within(opts, self.settings.connect_timeout)
    }

    /// The options a new connection uses now (in the clear once `PREFERRED` found no TLS).
    fn current_opts(&self) -> OptsBuilder {
        if self.no_tls.load(Ordering::Relaxed) {
            self.opts.clone().ssl_opts(None::<SslOpts>)
        } else {
            self.opts.clone()
        }
    }

    fn connect_error(&self, e: &mysql::Error) -> PluginError {
        let err = classify(e, Stage::Connect);
        PluginError::new(
            err.kind,
            format!(
                "cannot connect to {}: {}",
                self.settings.describe(),
                err.message()
            ),
        )
    }
}

impl Manage for Manager {
    type Conn = Server;

    fn connect(&self) -> Result<Server, PluginError> {
        let plain = || self.opts.clone().ssl_opts(None::<SslOpts>);
        let opts = self.current_opts();
        let conn = match self.open(opts) {
            Ok(conn) => conn,
            Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported))
                if self.settings.ssl_mode == SslMode::Preferred =>
            {
                self.no_tls.store(true, Ordering::Relaxed);
                self.open(plain()).map_err(|e| self.connect_error(&e))?
            }
            Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported)) => {
                return Err(PluginError::connect(format!(
                    "cannot connect to {}: the server does not offer TLS, which ssl_mode \
                     {} requires",
                    self.settings.describe(),
                    self.settings.ssl_mode.name()
                )));
            }
            Err(e) => return Err(self.connect_error(&e)),
        };
        Ok(Server {
            conn,
            broken: false,
        })
    }

    fn reusable(&self, server: &mut Server) -> bool {
        !server.broken
    }

    /// `KILL QUERY id` from a second connection: the server stops the statement that
    /// connection runs (ERROR 1317), if any, and keeps the connection. The pool holds
    /// this connection until the KILL has returned, so it cannot hit the next caller's
    /// statement.
    fn canceller(&self, server: &Server) -> Option<pool::Canceller> {
        let id = server.conn.connection_id();
        let opts = self.current_opts();
        let timeout = self.settings.connect_timeout;
        let target = self.settings.describe();
        Some(Box::new(move || {
            let cannot =
                |e: mysql::Error| PluginError::connect(format!("cannot cancel on {target}: {e}"));
            let mut side = open_within(opts.clone(), timeout).map_err(cannot)?;
            match side.query_drop(format!("KILL QUERY {id}")) {
                // The connection has gone since: nothing of it is running.
                Err(mysql::Error::MySqlError(e)) if e.code == code::NO_SUCH_THREAD => Ok(()),
                other => other.map_err(cannot),
            }
        }))
    }
}

/// Opens one server connection, the handshake included, within `timeout` (see
/// [`Manager::open`]).
fn open_within(opts: OptsBuilder, timeout: std::time::Duration) -> Result<Conn, mysql::Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("plugboard-mysql-connect".into())
        .spawn(move || {
            let _ = tx.send(Conn::new(opts));
        })
        .map_err(mysql::Error::IoError)?;
    rx.recv_timeout(timeout)
        .unwrap_or(Err(mysql::Error::DriverError(
            mysql::DriverError::ConnectTimeout,
        )))
}

/// Where an error happened: a failure to connect is not a stale connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connect,
    Established,
}

/// Turns a driver error into a plugin error: the MySQL error number decides the kind, and
/// whether resetting the connection may help.
fn classify(e: &mysql::Error, stage: Stage) -> PluginError {
    let established = stage == Stage::Established;
    match e {
        mysql::Error::MySqlError(db) => {
            let message = format!("ERROR {} ({}): {}", db.code, db.state, db.message);
            let (kind, retryable) = match db.code {
                code::ACCESS_DENIED | code::ACCESS_DENIED_DB | code::ACCESS_DENIED_NO_PASSWORD => {
                    (ErrorKind::AUTH, false)
                }
                code::BAD_DB => (ErrorKind::CONFIG, false),
                code::CONNECTION_KILLED
                | code::SERVER_SHUTDOWN
                | code::CLIENT_INTERACTION_TIMEOUT => (ErrorKind::CONNECT, established),
                _ if db.state.starts_with("08") => (ErrorKind::CONNECT, established),
                code::DEADLOCK | code::LOCK_WAIT_TIMEOUT => (ErrorKind::QUERY, true),
                code::QUERY_INTERRUPTED => (ErrorKind::CANCELLED, false),
                _ => (ErrorKind::QUERY, false),
            };
            let err = PluginError::new(kind, message);
            if retryable { err.retryable() } else { err }
        }
        mysql::Error::DriverError(mysql::DriverError::ConnectTimeout) => PluginError::connect(
            "the server did not answer within connect_timeout (a closed port behind a \
             firewall, or the wrong host)",
        ),
        mysql::Error::DriverError(
            d @ (mysql::DriverError::MismatchedStmtParams(..)
            | mysql::DriverError::Params(_)
            | mysql::DriverError::MixedParams),
        ) => PluginError::query(d.to_string()),
        mysql::Error::TlsError(t) => PluginError::connect(format!("TLS: {t}")),
        other => {
            // The driver's own Display shows its enum (`IoError { … }`): the cause reads better.
            let mut message = match other {
                mysql::Error::IoError(e) => e.to_string(),
                mysql::Error::DriverError(d) => d.to_string(),
                mysql::Error::CodecError(c) => c.to_string(),
                e => e.to_string(),
            };
            let mut source = std::error::Error::source(other);
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
    }
}

/// A parameter for the server to bind.
fn to_mysql(v: &Value) -> mysql::Value {
    match v {
        Value::Null => mysql::Value::NULL,
        Value::Bool(b) => mysql::Value::Int(i64::from(*b)),
        Value::Int(i) => mysql::Value::Int(*i),
        Value::Float(f) => mysql::Value::Double(*f),
        Value::String(s) => mysql::Value::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => mysql::Value::Bytes(b.clone()),
    }
}

/// The values for a statement's placeholders, in order (see `plugboard_api::bind`); a
/// `?` placeholder's parameter is shown as `?1`, `?2`, ….
fn bind(
    names: &[String],
    params: &Params,
    shared: Option<&Params>,
    strict: bool,
) -> Result<Vec<mysql::Value>, PluginError> {
    let show = |n: &str| {
        if n.bytes().all(|c| c.is_ascii_digit()) {
            format!("?{n}")
        } else {
            format!(":{n}")
        }
    };
    let values = plugboard_api::bind::values(names, params, shared, strict, show)?;
    Ok(values.into_iter().map(to_mysql).collect())
}

/// A connection to one MySQL or MariaDB server (and default database).
pub struct Mysql {
    pool: Arc<Pool<Manager>>,
    target: plugboard_api::Target,
}

type Batches = RecordBatchIterator<std::vec::IntoIter<Result<RecordBatch, ArrowError>>>;

impl Connector for Mysql {
    type Config = Config;

    fn manifest() -> Manifest {
        use plugboard_api::{ConfigKey, KeyType};
        let s = ConfigKey::string;
        Manifest::new("mysql", env!("CARGO_PKG_VERSION"))
            .description("MySQL and MariaDB: binary-protocol reads, server-side parameters")
            .kinds(["mysql", "mariadb"])
            .schemes(["mysql", "mariadb"])
            .key(s("url").describe("mysql://user:password@host:port/database?charset=utf8mb4"))
            .key(s("dialect").describe("SQLAlchemy's dialect: mysql or mariadb"))
            .key(s("driver").describe("SQLAlchemy's driver (pymysql, mysqldb, …): accepted, changes nothing"))
            .key(s("username"))
            .key(s("password").secret())
            .key(s("host"))
            .key(ConfigKey::new("port", KeyType::Any).describe("3306, or text holding it: \"3306\""))
            .key(s("database"))
            .key(ConfigKey::new("query", KeyType::Table).describe("URL options: charset, ssl_mode, ssl_ca, unix_socket, …"))
            .key(s("unix_socket").describe("the server's Unix socket, instead of host and port"))
            .key(s("ssl_mode").describe("DISABLED, PREFERRED (default), REQUIRED, VERIFY_CA, VERIFY_IDENTITY"))
            .key(s("ssl_ca").describe("a PEM file of trusted CAs"))
            .key(s("ssl_cert").describe("a client certificate (PEM), with ssl_key"))
            .key(s("ssl_key").describe("the client certificate's key (PEM)"))
            .key(
                ConfigKey::new("connect_timeout", KeyType::Duration)
                    .describe("seconds, or \"5s\" (default 10 s)"),
            )
            .key(
                ConfigKey::new("pool_size", KeyType::Integer)
                    .describe("server connections (default 4)"),
            )
            .key(s("charset").describe("utf8mb4 (default), utf8mb3 or utf8"))
            .key(s("init_command").describe("a statement each new server connection runs first"))
            .key(s("zero_dates").describe("\"error\" (default) or \"null\": what 0000-00-00 reads as"))
            .key(ConfigKey::new("create_engine_kwargs", KeyType::Table).describe(
                "SQLAlchemy's: connect_args (pymysql's keywords, ssl = {ca, cert, key}), pool_size, pool_pre_ping, pool_recycle, echo = false",
            ))
            // Wherever they stand (`query`, `create_engine_kwargs.connect_args`).
            .secret_keys(["password", "passwd", "pass"])
    }

    fn connect(config: Config) -> Result<Self, PluginError> {
        let settings = config.resolve()?;
        // The driver reports an unreadable file without its name.
        let files = [
            ("ssl_ca", settings.ssl_ca.as_ref()),
            (
                "ssl_cert",
                settings.client_identity.as_ref().map(|(c, _)| c),
            ),
            ("ssl_key", settings.client_identity.as_ref().map(|(_, k)| k)),
        ];
        for (key, path) in files {
            if let Some(path) = path
                && let Err(e) = std::fs::File::open(path)
            {
                return Err(PluginError::config(format!(
                    "`{key}`: cannot read {}: {e}",
                    path.display()
                )));
            }
        }
        let size = settings.pool_size;
        let target = settings.target();
        Ok(Self {
            pool: Arc::new(Pool::open(Manager::new(settings), size)?),
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
        let mut server = self.pool.get()?;
        let result = execute(&mut server.conn, request);
        mark(&mut server, &result);
        result
    }

    fn tables(&self) -> Result<Vec<plugboard_api::TableInfo>, PluginError> {
        let mut server = self.pool.get()?;
        let result = catalog::tables(&mut server.conn);
        mark(&mut server, &result);
        result
    }

    fn describe(&self, table: &str) -> Result<Vec<plugboard_api::ColumnInfo>, PluginError> {
        let mut server = self.pool.get()?;
        let zero_dates = self.pool.manager().settings.zero_dates;
        let result = catalog::describe(&mut server.conn, table, zero_dates);
        mark(&mut server, &result);
        result
    }

    fn cancel(&self) -> Result<(), PluginError> {
        self.pool.cancel().map(drop)
    }

    fn ping(&self) -> Result<(), PluginError> {
        let mut server = self.pool.get()?;
        let result = server
            .conn
            .ping()
            .map_err(|e| classify(&e, Stage::Established));
        mark(&mut server, &result);
        result
    }

    fn close(&self) {
        self.pool.clear();
    }
}

/// A connection whose call failed with a lost connection does not go back to the pool.
fn mark<T>(server: &mut Server, result: &Result<T, PluginError>) {
    if let Err(e) = result
        && e.kind == ErrorKind::CONNECT
    {
        server.broken = true;
    }
}

impl Mysql {
    fn read_one(&self, request: &ReadRequest) -> Result<Batches, PluginError> {
        let mut server = self.pool.get()?;
        let mut batches = Vec::new();
        let result = read(
            &mut server.conn,
            request,
            self.pool.manager().settings.zero_dates,
            &mut |b| {
                batches.push(Ok(b));
                Ok(())
            },
        );
        mark(&mut server, &result);
        Ok(RecordBatchIterator::new(batches.into_iter(), result?))
    }

    /// A streamed read (an export): read on a thread of its own, each batch handed to the
    /// host as soon as it is full, two at most waiting.
    fn stream(&self, request: &ReadRequest) -> Result<stream::ThreadReader, PluginError> {
        let pool = Arc::clone(&self.pool);
        let request = request.clone();
        stream::spawn(2, move |sink| {
            let mut server = pool.get_owned()?;
            let zero_dates = pool.manager().settings.zero_dates;
            let result = read(&mut server.conn, &request, zero_dates, &mut |b| {
                Ok(sink.send(b)?)
            });
            mark(&mut server, &result);
            sink.schema(result?)?;
            Ok(())
        })
    }

    /// The ranges of `partition_on`, each read on its own server connection and thread,
    /// concatenated in order.
    fn read_partitioned(
        &self,
        request: &ReadRequest,
        partitioning: &Partitioning,
    ) -> Result<Batches, PluginError> {
        let column = format!("`{}`", partitioning.column.replace('`', "``"));
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
/// Returns the schema (known from the result's metadata, rows or not).
fn read(
    conn: &mut Conn,
    request: &ReadRequest,
    zero_dates: ZeroDates,
    emit: &mut dyn FnMut(RecordBatch) -> Result<(), PluginError>,
) -> Result<SchemaRef, PluginError> {
    if let Some(key) = request.options.keys().find(|k| {
        !matches!(
            k.as_str(),
            "partition_on" | "partitions" | "partition_range"
        )
    }) {
        return Err(PluginError::query(format!(
            "unknown read option {key:?}: the mysql connector takes partition_on, partitions, \
             partition_range"
        )));
    }
    let rewritten = sql::rewrite(&request.query)?;
    let params = bind(&rewritten.names, &request.params, None, true)?;
    let size = request.batch_size.unwrap_or(DEFAULT_BATCH_SIZE).max(1);
    let error = |e: mysql::Error| classify(&e, Stage::Established);
    // A row limit runs in the server when the query can be nested; else the rows past it
    // are read and dropped.
    let limited = match request.limit {
        Some(n) if sql::is_query(&rewritten.sql) => Some(format!(
            "SELECT * FROM ({}\n) AS plugboard_limited LIMIT {n}",
            sql::trim_statement(&rewritten.sql),
            n = n.min(i64::MAX as u64)
        )),
        _ => None,
    };
    let statement = match limited.as_deref().map(|text| conn.prep(text)) {
        Some(Ok(statement)) => Ok(statement),
        // Two result columns of one name cannot be nested in a derived table.
        Some(Err(mysql::Error::MySqlError(e))) if e.code == code::DUP_FIELDNAME => {
            conn.prep(&rewritten.sql)
        }
        Some(Err(e)) => Err(e),
        None => conn.prep(&rewritten.sql),
    };
    match statement {
        Ok(statement) => {
            let mut result = conn.exec_iter(&statement, params).map_err(error)?;
            decode(&mut result, request.limit, size, zero_dates, emit)
        }
        Err(mysql::Error::MySqlError(e)) if e.code == code::UNSUPPORTED_PS && params.is_empty() => {
            let mut result = conn.query_iter(&rewritten.sql).map_err(error)?;
            decode(&mut result, request.limit, size, zero_dates, emit)
        }
        Err(e) => Err(error(e)),
    }
}

/// Decodes the first result set's rows into batches; the rest of the result is drained.
fn decode<P: mysql::prelude::Protocol>(
    result: &mut mysql::QueryResult<'_, '_, '_, P>,
    limit: Option<u64>,
    size: usize,
    zero_dates: ZeroDates,
    emit: &mut dyn FnMut(RecordBatch) -> Result<(), PluginError>,
) -> Result<SchemaRef, PluginError> {
    let columns = result.columns();
    let meta: &[mysql::Column] = columns.as_ref();
    let names: Vec<String> = meta.iter().map(|c| c.name_str().into_owned()).collect();
    let kinds = meta
        .iter()
        .zip(&names)
        .map(|(c, n)| {
            column_kind(c).map_err(|e| PluginError::unsupported(format!("column {n:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let schema = types::schema(&names, &kinds);
    let mut columns = Columns::new(Arc::clone(&schema), kinds, size.min(DEFAULT_BATCH_SIZE));
    let mut read = 0u64;
    let Some(set) = result.iter() else {
        return Ok(schema);
    };
    for row in set {
        let row = row.map_err(|e| classify(&e, Stage::Established))?;
        if limit.is_some_and(|l| read >= l) {
            continue; // the rest of the result is drained, not kept
        }
        for (i, builder) in columns.builders().iter_mut().enumerate() {
            let value = row.as_ref(i).unwrap_or(&mysql::Value::NULL);
            builder.push(value, zero_dates).map_err(|why| {
                PluginError::query(format!("column {:?}, row {}: {why}", names[i], read + 1))
            })?;
        }
        read += 1;
        columns.rows += 1;
        if columns.rows == size {
            emit(columns.batch().map_err(PluginError::internal)?)?;
        }
    }
    if columns.rows > 0 {
        emit(columns.batch().map_err(PluginError::internal)?)?;
    }
    Ok(schema)
}

fn execute(conn: &mut Conn, request: &ExecuteRequest) -> Result<u64, PluginError> {
    let error = |e: mysql::Error| classify(&e, Stage::Established);
    let mut tx = conn
        .start_transaction(mysql::TxOpts::default())
        .map_err(error)?;
    let mut total = 0u64;
    let mut used = std::collections::BTreeSet::new();
    for statement in &request.statements {
        let rewritten = sql::rewrite(&statement.sql)?;
        used.extend(rewritten.names.iter().cloned());
        if rewritten.names.is_empty() {
            // No parameters: the text protocol, which also runs several statements.
            let mut result = tx.query_iter(&rewritten.sql).map_err(error)?;
            while let Some(set) = result.iter() {
                total += set.affected_rows();
                for row in set {
                    row.map_err(error)?;
                }
            }
        } else {
            let params = bind(
                &rewritten.names,
                &statement.params,
                Some(&request.params),
                false,
            )?;
            let result = tx.exec_iter(&rewritten.sql, params).map_err(error)?;
            total += result.affected_rows();
        }
    }
    if let Some(unknown) = request.params.keys().find(|k| !used.contains(*k)) {
        return Err(PluginError::query(format!(
            "unknown parameter {unknown:?}: no statement uses it"
        )));
    }
    tx.commit().map_err(error)?;
    Ok(total)
}

export_connector!(Mysql);

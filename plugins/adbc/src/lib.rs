//! # plugboard-adbc: every ADBC driver as a plugboard connector
//!
//! ADBC (Arrow Database Connectivity) drivers are shared libraries with a C entry point
//! that return Arrow streams: Snowflake, BigQuery, Flight SQL, PostgreSQL, SQLite, DuckDB
//! and more. This connector loads them with the ADBC driver manager (`adbc_driver_manager`)
//! and puts plugboard's secrets, cache and CLI in front.
//!
//! ```toml
//! [connections.warehouse]          # Streamlit's SnowflakeConnection section, unchanged
//! type = "snowflake"
//! account = "xy12345.eu-west-1"
//! user = "analyst"
//! password = "…"
//! warehouse = "COMPUTE_WH"
//! database = "SALES"
//!
//! [connections.chinook]            # any driver, by name, path or manifest
//! type = "adbc"
//! driver = "sqlite"                # or "/opt/drivers/libadbc_driver_sqlite.so", "x.toml"
//! uri = "file:chinook.db"
//! options = { "adbc.sqlite.query.batch_rows" = 65536 }
//! ```
//!
//! * [`config`] maps the sections (`adbc`, `snowflake`, `bigquery`, `flightsql`) to a
//!   driver and its options by their ADBC names; [`driver`] finds and loads the driver.
//! * `read` runs one ADBC statement; parameters are bound as an Arrow batch
//!   ([`params`]), never spliced; the driver's stream goes to the host batch by batch,
//!   unconverted (its arrays are the batches the host imports). `--limit` stops reading.
//!   Read options named `adbc.…` are set on the statement.
//! * `execute` turns autocommit off and runs every statement in one transaction, rolled
//!   back on error; a driver without transactions runs a single statement on its own.
//! * Errors keep the driver's SQLSTATE and vendor code; I/O and timeouts are retryable,
//!   authentication failures are not. Secrets of the section are scrubbed from every
//!   message the driver writes.
//!
//! Drivers written in Go (Snowflake, BigQuery, Flight SQL) each carry a Go runtime; two in
//! one process is fragile. Give this plugin `isolation = "process"` in `plugins.toml` and
//! each connection runs in a worker process of its own, so a driver that crashes takes
//! down only its worker.

mod catalog;
pub mod config;
pub mod driver;
pub mod fuzzing;
pub mod params;
mod sys;

use std::path::PathBuf;
use std::sync::Arc;

use adbc_core::error::{Error as AdbcError, Status};
use adbc_core::options::{
    AdbcVersion, OptionConnection, OptionDatabase, OptionStatement, OptionValue,
};
use adbc_core::{Connection, Database, Driver, LOAD_FLAG_DEFAULT, Optionable, Statement};
use adbc_driver_manager::{ManagedConnection, ManagedDatabase, ManagedStatement};
use plugboard_api::arrow_array::RecordBatch;
use plugboard_api::arrow_schema::{ArrowError, SchemaRef};
use plugboard_api::pool::{self, Manage, Pooled};
use plugboard_api::{
    ConfigKey, Connector, ExecuteRequest, KeyType, Manifest, PluginError, ReadRequest,
    RecordBatchReader, Target, export_connector,
};

pub use crate::config::Config;
use crate::config::{Kind, Settings, one_line};
use crate::driver::PythonEnv;

/// A connection to one ADBC database (a driver and its options), with a pool of its
/// connections.
pub struct Adbc {
    pool: Arc<Pool>,
    target: Target,
}

/// What every message about the connection needs: its name, and the secrets to hide.
pub struct Context {
    shown: String,
    secrets: Vec<String>,
}

impl Context {
    /// `text` with every secret of the section replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        let mut secrets: Vec<&String> = self.secrets.iter().filter(|s| s.len() >= 3).collect();
        // The longest first, so that a secret inside another leaves nothing behind.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in secrets {
            text = text.replace(s.as_str(), "***");
        }
        text
    }

    /// A driver error as a plugboard error: one line, secrets scrubbed, its kind by its
    /// status. `connecting`: the error came from opening a connection.
    fn error(&self, e: &AdbcError, what: &str, connecting: bool) -> PluginError {
        let message = self.scrub(&format!("{what}: {}", driver::message(e)));
        match e.status {
            Status::Unauthenticated | Status::Unauthorized => PluginError::auth(message),
            Status::IO | Status::Timeout => PluginError::connect(message).retryable(),
            Status::NotImplemented => PluginError::unsupported(message),
            Status::Cancelled => PluginError::cancelled(message),
            Status::InvalidArguments if connecting => PluginError::config(message),
            _ if connecting => PluginError::connect(message),
            _ => PluginError::query(message),
        }
    }
}

/// One driver connection, and whether it may serve another call.
pub struct Conn {
    inner: ManagedConnection,
    broken: bool,
    /// The cancel handle of the statement a read runs, for [`Manage::canceller`].
    statement: Arc<std::sync::Mutex<Option<Box<dyn adbc_core::CancelHandle>>>>,
}

impl Conn {
    /// Makes the statement that cancelling this connection stops.
    fn new_statement(&mut self) -> Result<ManagedStatement, AdbcError> {
        let statement = self.inner.new_statement()?;
        *self.statement.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(statement.get_cancel_handle());
        Ok(statement)
    }
}

/// Opens connections to the database.
pub struct Manager {
    database: ManagedDatabase,
    context: Arc<Context>,
}

impl Manage for Manager {
    type Conn = Conn;

    fn connect(&self) -> Result<Conn, PluginError> {
        let inner = self.database.new_connection().map_err(|e| {
            self.context.error(
                &e,
                &format!("cannot connect to {}", self.context.shown),
                true,
            )
        })?;
        Ok(Conn {
            inner,
            broken: false,
            statement: Arc::default(),
        })
    }

    /// Also forgets the statement of the call that ends: the next checkout's cancel
    /// starts from the connection's own.
    fn reusable(&self, conn: &mut Conn) -> bool {
        conn.statement
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        !conn.broken
    }

    /// ADBC 1.1's cancel (`AdbcStatementCancel` on the read's statement,
    /// `AdbcConnectionCancel` for catalog calls), which the driver implements or not: a
    /// 1.0 driver, or one without it, answers `unsupported`. The handles hold the
    /// statement and connection weakly; one that has gone does nothing.
    fn canceller(&self, conn: &Conn) -> Option<pool::Canceller> {
        let statement = Arc::clone(&conn.statement);
        let connection = conn.inner.get_cancel_handle();
        let context = Arc::clone(&self.context);
        Some(Box::new(move || {
            let running = statement.lock().unwrap_or_else(|p| p.into_inner());
            let tried = match &*running {
                Some(s) => s.try_cancel(),
                None => connection.try_cancel(),
            };
            tried.map_err(|e| context.error(&e, "cannot cancel", false))
        }))
    }
}

pub type Pool = pool::Pool<Manager>;

fn keys() -> Vec<ConfigKey> {
    let s = |name: &str, what: &str| ConfigKey::string(name).describe(what);
    let secret = |name: &str, what: &str| ConfigKey::string(name).describe(what).secret();
    vec![
        s(
            "driver",
            "a driver name (sqlite, postgresql, snowflake, …), a driver library's path, or its manifest .toml",
        ),
        s(
            "entrypoint",
            "the driver's init function, when not AdbcDriver<Name>Init or AdbcDriverInit",
        ),
        s(
            "python",
            "a Python interpreter or environment whose adbc-driver-* packages to use (default: $VIRTUAL_ENV)",
        ),
        s(
            "uri",
            "the driver's URI, or profile://NAME (an ADBC connection profile)",
        ),
        s("url", "the same as uri"),
        s("username", "the user"),
        secret("password", "the password"),
        ConfigKey::new("options", KeyType::Table).describe("driver options by their ADBC names"),
        ConfigKey::new("pool_size", KeyType::Integer).describe("connections kept open (default 4)"),
        s("account", "Snowflake: the account identifier"),
        s("user", "Snowflake: the user"),
        s(
            "authenticator",
            "Snowflake: snowflake, snowflake_jwt, externalbrowser, oauth, …",
        ),
        s(
            "private_key_file",
            "Snowflake: the key pair's private key file",
        ),
        secret(
            "private_key_file_pwd",
            "Snowflake: the private key file's passphrase",
        ),
        secret(
            "private_key_passphrase",
            "Snowflake: the same as private_key_file_pwd",
        ),
        secret(
            "private_key",
            "Snowflake: a PEM private key; BigQuery: the service account's key",
        ),
        secret(
            "token",
            "Snowflake: an OAuth or programmatic access token; Flight SQL: a bearer token",
        ),
        s("role", "Snowflake: the role"),
        s("warehouse", "Snowflake: the warehouse"),
        s("database", "Snowflake: the database"),
        s("schema", "Snowflake: the schema"),
        s(
            "connection_name",
            "Snowflake: a connection of ~/.snowflake/connections.toml",
        ),
        s(
            "host",
            "Snowflake: the host, when not <account>.snowflakecomputing.com",
        ),
        ConfigKey::new("port", KeyType::Integer).describe("Snowflake: the port"),
        s("protocol", "Snowflake: https or http"),
        s("region", "Snowflake: the region"),
        ConfigKey::new("login_timeout", KeyType::Duration)
            .describe("Snowflake: how long a login may take"),
        s("type", "BigQuery: the key file's type (service_account)"),
        s("project_id", "BigQuery: the project"),
        secret("private_key_id", "BigQuery: the key's id"),
        s("client_email", "BigQuery: the service account"),
        s("client_id", "BigQuery: the service account's client id"),
        s("auth_uri", "BigQuery: the key file's auth_uri"),
        s("token_uri", "BigQuery: the key file's token_uri"),
        s(
            "auth_provider_x509_cert_url",
            "BigQuery: the key file's field",
        ),
        s("client_x509_cert_url", "BigQuery: the key file's field"),
        s("universe_domain", "BigQuery: the key file's field"),
        s("credentials_file", "BigQuery: a service-account key file"),
        ConfigKey::new("credentials", KeyType::Any)
            .describe("BigQuery: a service-account key, as a table or JSON text")
            .secret(),
        s("location", "BigQuery: the location (US, EU, …)"),
        s("dataset_id", "BigQuery: the dataset"),
        ConfigKey::new("headers", KeyType::Table)
            .describe("Flight SQL: headers sent with every call"),
        ConfigKey::new("tls_skip_verify", KeyType::Boolean)
            .describe("Flight SQL: do not verify the server's certificate"),
        s(
            "tls_root_certs",
            "Flight SQL: the CA certificates (PEM, or a file of them)",
        ),
        ConfigKey::new("timeout", KeyType::Duration)
            .describe("Flight SQL: how long a call may take"),
    ]
}

impl Connector for Adbc {
    type Config = Config;

    fn manifest() -> Manifest {
        let mut m = Manifest::new("adbc", env!("CARGO_PKG_VERSION"))
            .description("ADBC drivers: Snowflake, BigQuery, Flight SQL, PostgreSQL, SQLite, …")
            .kinds(["adbc", "snowflake", "bigquery", "flightsql"]);
        for key in keys() {
            m = m.key(key);
        }
        m
    }

    fn connect(config: Config) -> Result<Self, PluginError> {
        Self::connect_as("", "", config)
    }

    fn connect_as(name: &str, kind: &str, config: Config) -> Result<Self, PluginError> {
        let opened = Opened::open(name, kind, config)?;
        let mut target = opened.settings.target.clone();
        if let Some(lib) = opened.library.as_ref().and_then(|p| p.file_name()) {
            target.set("driver", lib.to_string_lossy().into_owned());
        }
        if target
            .get("uri")
            .and_then(|u| u.as_str())
            .is_some_and(|u| u.contains(":memory:"))
        {
            target = target.private();
        }
        let pool_size = opened.settings.pool_size;
        let manager = Manager {
            database: opened.database,
            context: opened.context,
        };
        Ok(Self {
            pool: Arc::new(Pool::open(manager, pool_size)?),
            target,
        })
    }

    fn target(&self) -> Option<Target> {
        Some(self.target.clone())
    }

    fn read(
        &self,
        request: &ReadRequest,
    ) -> Result<impl RecordBatchReader + Send + 'static, PluginError> {
        let context = Arc::clone(&self.pool.manager().context);
        let mut conn = self.pool.get_owned()?;
        let mut statement = conn
            .new_statement()
            .map_err(|e| fail(&mut conn, &context, &e, "cannot make a statement"))?;
        for (key, value) in &request.options {
            if !key.starts_with("adbc.") {
                let why = if key.starts_with("partition") {
                    "an ADBC driver reads in parallel itself"
                } else {
                    "the adbc connector takes the driver's statement options (adbc.…) only"
                };
                return Err(PluginError::query(format!("read option {key}: {why}")));
            }
            let value = statement_value(key, value)?;
            statement
                .set_option(OptionStatement::Other(key.clone()), value)
                .map_err(|e| context.error(&e, &format!("read option {key}"), false))?;
        }
        statement
            .set_sql_query(&request.query)
            .map_err(|e| fail(&mut conn, &context, &e, "the query"))?;
        if let Some((batch, _)) = params::batch(&request.query, &request.params, None, true)? {
            statement
                .bind(batch)
                .map_err(|e| fail(&mut conn, &context, &e, "cannot bind the parameters"))?;
        }
        let reader = statement
            .execute()
            .map_err(|e| fail(&mut conn, &context, &e, "the query failed"))?;
        let (schema, plain) = without_opaque(reader.schema());
        Ok(Rows {
            schema,
            plain,
            reader,
            left: request.limit,
            context,
            _statement: statement,
            _conn: conn,
        })
    }

    fn tables(&self) -> Result<Vec<plugboard_api::TableInfo>, PluginError> {
        catalog::tables(self)
    }

    fn describe(&self, table: &str) -> Result<Vec<plugboard_api::ColumnInfo>, PluginError> {
        catalog::describe(self, table)
    }

    fn execute(&self, request: &ExecuteRequest) -> Result<u64, PluginError> {
        let context = Arc::clone(&self.pool.manager().context);
        let mut conn = self.pool.get()?;
        let single = request.statements.len() == 1;
        let transaction = match conn.inner.set_option(
            OptionConnection::AutoCommit,
            OptionValue::String("false".into()),
        ) {
            Ok(()) => true,
            Err(e) if e.status == Status::NotImplemented && single => false,
            Err(e) => {
                return Err(PluginError::unsupported(context.scrub(&format!(
                    "the driver cannot turn autocommit off ({}), so it cannot run several \
                     statements as one transaction; run them one at a time",
                    driver::message(&e)
                ))));
            }
        };
        let outcome = run_all(&mut conn.inner, &context, request);
        let end = if transaction {
            let ended = match &outcome {
                Ok(_) => conn.inner.commit(),
                Err(_) => conn.inner.rollback(),
            };
            let restored = conn.inner.set_option(
                OptionConnection::AutoCommit,
                OptionValue::String("true".into()),
            );
            if ended.is_err() || restored.is_err() {
                conn.broken = true;
            }
            ended.map_err(|e| context.error(&e, "cannot commit", false))
        } else {
            Ok(())
        };
        let affected = outcome?;
        end?;
        Ok(affected)
    }

    fn cancel(&self) -> Result<(), PluginError> {
        self.pool.cancel().map(drop)
    }

    fn ping(&self) -> Result<(), PluginError> {
        let context = Arc::clone(&self.pool.manager().context);
        let mut conn = self.pool.get()?;
        let mut statement = conn
            .inner
            .new_statement()
            .map_err(|e| context.error(&e, "ping", false))?;
        let done = statement
            .set_sql_query("SELECT 1")
            .and_then(|()| statement.execute())
            .map(|rows| rows.for_each(drop));
        done.map_err(|e| {
            conn.broken = true;
            let e = context.error(&e, &format!("{} does not answer", context.shown), true);
            PluginError::connect(e.message()).retryable()
        })
    }
}

/// Runs every statement of `request`; the rows they affected (those the driver counts).
fn run_all(
    conn: &mut ManagedConnection,
    context: &Context,
    request: &ExecuteRequest,
) -> Result<u64, PluginError> {
    let mut affected = 0u64;
    let mut used = std::collections::BTreeSet::new();
    let several = request.statements.len() > 1;
    for (i, statement) in request.statements.iter().enumerate() {
        let at = |e: PluginError| match several {
            true => PluginError::new(e.kind, format!("statement {}: {}", i + 1, e.message())),
            false => e,
        };
        let mut stmt = conn
            .new_statement()
            .map_err(|e| at(context.error(&e, "cannot make a statement", false)))?;
        stmt.set_sql_query(&statement.sql)
            .map_err(|e| at(context.error(&e, "the statement", false)))?;
        if let Some((batch, names)) = params::batch(
            &statement.sql,
            &statement.params,
            Some(&request.params),
            true,
        )
        .map_err(at)?
        {
            used.extend(
                names
                    .into_iter()
                    .filter(|n| !statement.params.contains_key(n)),
            );
            stmt.bind(batch)
                .map_err(|e| at(context.error(&e, "cannot bind the parameters", false)))?;
        }
        let n = stmt
            .execute_update()
            .map_err(|e| at(context.error(&e, "the statement failed", false)))?;
        affected += n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    }
    if let Some(unused) = request.params.keys().find(|k| !used.contains(*k)) {
        return Err(PluginError::query(format!(
            "unknown parameter {unused:?}: no statement uses it"
        )));
    }
    Ok(affected)
}

/// The error of a call on `conn`; a connection-level one leaves `conn` out of the pool.
fn fail(
    conn: &mut Pooled<'static, Manager>,
    context: &Context,
    e: &AdbcError,
    what: &str,
) -> PluginError {
    if matches!(e.status, Status::IO | Status::Timeout) {
        conn.broken = true;
    }
    context.error(e, what, false)
}

fn statement_value(key: &str, value: &serde_json::Value) -> Result<OptionValue, PluginError> {
    Ok(match value {
        serde_json::Value::String(s) => OptionValue::String(s.clone()),
        serde_json::Value::Bool(b) => OptionValue::String(b.to_string()),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => OptionValue::Int(i),
            None => OptionValue::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => {
            return Err(PluginError::query(format!(
                "read option {key}: expected text, a number or a boolean, got {other}"
            )));
        }
    })
}

/// A section's database: its driver loaded and its options set, not yet connected.
pub struct Opened {
    database: ManagedDatabase,
    context: Arc<Context>,
    pub settings: Settings,
    /// The driver library, when plugboard found it (not the one a profile names).
    pub library: Option<PathBuf>,
}

impl Opened {
    /// Opens connection `name`'s database for `kind` (see [`Kind::of`]).
    pub fn open(name: &str, kind: &str, config: Config) -> Result<Self, PluginError> {
        let kind = Kind::of(kind, name, &config)?;
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let settings = config.resolve(kind, home.as_deref())?;
        let context = Arc::new(Context {
            shown: settings.shown.clone(),
            secrets: settings.secrets.clone(),
        });
        let (database, library) = open(&settings, &context)?;
        Ok(Self {
            database,
            context,
            settings,
            library,
        })
    }

    /// A database option as the driver holds it: what it was given.
    pub fn option(&self, key: &str) -> Result<String, PluginError> {
        self.database
            .get_option_string(OptionDatabase::Other(key.to_owned()))
            .map_err(|e| self.context.error(&e, &format!("option {key}"), false))
    }

    /// The connection's context: how it is named, and the secrets scrubbed from messages.
    pub fn context(&self) -> &Context {
        &self.context
    }
}

/// Loads the driver (or the profile's) and sets its options; returns the driver library's
/// path, when plugboard found it.
fn open(
    settings: &Settings,
    context: &Context,
) -> Result<(ManagedDatabase, Option<PathBuf>), PluginError> {
    let env = PythonEnv::find(settings.python.as_deref());
    let options = || {
        settings.options.iter().map(|(k, v)| {
            let key = match k.as_str() {
                "uri" => OptionDatabase::Uri,
                "username" => OptionDatabase::Username,
                "password" => OptionDatabase::Password,
                other => OptionDatabase::Other(other.to_owned()),
            };
            (key, v.clone())
        })
    };
    let opening = format!("cannot open {}", settings.shown);
    if let (Some(profile), None) = (&settings.profile, &settings.driver) {
        let extra: Vec<PathBuf> = env
            .prefix
            .iter()
            .map(|p| p.join("etc/adbc/drivers"))
            .collect();
        let mut last = None;
        for version in [AdbcVersion::V110, AdbcVersion::V100] {
            let entrypoint = settings.entrypoint.as_deref().map(str::as_bytes);
            match ManagedDatabase::from_uri_with_opts(
                profile,
                entrypoint,
                version,
                LOAD_FLAG_DEFAULT,
                Some(extra.clone()),
                options(),
            ) {
                Ok(db) => return Ok((db, None)),
                Err(e) if e.status == Status::NotImplemented => last = Some(e),
                Err(e) => return Err(context.error(&e, &format!("profile {profile}"), true)),
            }
        }
        let e = last.unwrap_or_else(|| {
            AdbcError::with_message_and_status("no ADBC version", Status::Unknown)
        });
        return Err(context.error(&e, &format!("profile {profile}"), true));
    }
    let name = settings.driver.as_deref().unwrap_or_default();
    let mut loaded = driver::load(name, settings.entrypoint.as_deref(), &env).map_err(|e| {
        let message = match settings.kind {
            Kind::Adbc => e.message().to_owned(),
            k => format!(
                "{} needs the ADBC {} driver: {}",
                settings.shown,
                k.label(),
                e.message()
            ),
        };
        PluginError::config(context.scrub(&message))
    })?;
    let database = loaded
        .driver
        .new_database_with_opts(options())
        .map_err(|e| context.error(&e, &opening, true))?;
    Ok((database, Some(loaded.path)))
}

/// A read in progress: the driver's stream, cut at the request's `limit`. Holds the
/// statement and the pooled connection until the host is done with it (fields drop in
/// order: the stream first).
pub struct Rows {
    reader: Box<dyn RecordBatchReader + Send>,
    schema: SchemaRef,
    /// Whether [`without_opaque`] changed the schema: each batch then takes it on.
    plain: bool,
    left: Option<u64>,
    context: Arc<Context>,
    _statement: ManagedStatement,
    _conn: Pooled<'static, Manager>,
}

impl Iterator for Rows {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == Some(0) {
            return None;
        }
        let batch = match self.reader.next()? {
            Ok(b) => b,
            Err(e) => {
                let message = self.context.scrub(&one_line(&e.to_string()));
                self.left = Some(0);
                return Some(Err(PluginError::query(message).into()));
            }
        };
        let batch = match self.plain {
            true => {
                match RecordBatch::try_new(Arc::clone(&self.schema), batch.columns().to_vec()) {
                    Ok(b) => b,
                    Err(e) => return Some(Err(e)),
                }
            }
            false => batch,
        };
        let Some(left) = &mut self.left else {
            return Some(Ok(batch));
        };
        let rows = batch.num_rows() as u64;
        if rows <= *left {
            *left -= rows;
            return Some(Ok(batch));
        }
        let keep = usize::try_from(*left).unwrap_or(usize::MAX);
        *left = 0;
        Some(Ok(batch.slice(0, keep)))
    }
}

/// The keys that make a field an Arrow extension type.
const EXTENSION_NAME: &str = "ARROW:extension:name";
const EXTENSION_METADATA: &str = "ARROW:extension:metadata";

/// `schema` with each `arrow.opaque` column (a type the driver could not map, such as
/// PostgreSQL's NUMERIC through the PostgreSQL driver) made its storage type, the driver's
/// text of the value, which a DataFrame holds; the database's type name stays in the
/// field's metadata (`adbc.type_name`). Whether anything changed.
fn without_opaque(schema: SchemaRef) -> (SchemaRef, bool) {
    let opaque = |f: &plugboard_api::arrow_schema::Field| {
        f.metadata()
            .get(EXTENSION_NAME)
            .is_some_and(|n| n == "arrow.opaque")
    };
    if !schema.fields().iter().any(|f| opaque(f)) {
        return (schema, false);
    }
    let fields: Vec<plugboard_api::arrow_schema::Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if !opaque(f) {
                return f.as_ref().clone();
            }
            let mut metadata = f.metadata().clone();
            let type_name = metadata
                .remove(EXTENSION_METADATA)
                .and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok())
                .and_then(|m| m.get("type_name")?.as_str().map(str::to_owned));
            metadata.remove(EXTENSION_NAME);
            if let Some(t) = type_name {
                metadata.insert("adbc.type_name".to_owned(), t);
            }
            f.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    let schema =
        plugboard_api::arrow_schema::Schema::new_with_metadata(fields, schema.metadata().clone());
    (Arc::new(schema), true)
}

impl RecordBatchReader for Rows {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

export_connector!(Adbc);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_hides_every_secret_longest_first() {
        let c = Context {
            shown: "x".into(),
            secrets: vec!["abc".into(), "abcdef".into(), "zz".into()],
        };
        assert_eq!(
            c.scrub("login abcdef failed for abc, zz"),
            "login *** failed for ***, zz"
        );
    }

    #[test]
    fn errors_keep_state_and_kind() {
        let c = Context {
            shown: "x".into(),
            secrets: vec!["hunter2".into()],
        };
        let mut e = AdbcError::with_message_and_status(
            "password hunter2 rejected",
            Status::Unauthenticated,
        );
        e.sqlstate = [b'2' as _, b'8' as _, b'P' as _, b'0' as _, b'1' as _];
        e.vendor_code = 7;
        let p = c.error(&e, "connect", true);
        assert_eq!(p.kind, plugboard_api::ErrorKind::AUTH);
        assert!(!p.retryable);
        assert_eq!(
            p.message(),
            "connect: password *** rejected (SQLSTATE 28P01, vendor code 7)"
        );
        let io = c.error(
            &AdbcError::with_message_and_status("reset", Status::IO),
            "read",
            false,
        );
        assert!(io.retryable && io.kind == plugboard_api::ErrorKind::CONNECT);
    }
}

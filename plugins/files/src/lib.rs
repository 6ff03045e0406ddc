//! # plugboard-files: files as tables
//!
//! plugboard's answer to Streamlit's `FilesConnection`: CSV, TSV, Parquet, JSON (an array of
//! records), NDJSON and Arrow IPC (Feather v2) files, plain or `.gz`/`.zst`-compressed, read
//! with polars' readers from a local folder, an HTTP(S) server or S3 (through `object_store`).
//!
//! ```toml
//! [connections.lake]
//! type = "files"
//! root = "s3://trips/2024"          # or a local folder, or https://host/folder/
//! aws_access_key_id = "…"           # object_store's own option names; secrets are redacted
//! aws_secret_access_key = "…"
//! aws_region = "eu-west-1"
//! ```
//!
//! `plugboard read lake 'march/*.parquet'` then reads every matching file as one table. The
//! target is a file, a folder (every file under it, hidden and `_`-prefixed ones skipped) or
//! a glob; with a `root`, a target that leaves it (`../`, an absolute path, a symlink out) is
//! refused. Read options: `format`, `compression`, `delimiter`, `header`, `skip_rows`,
//! `null_values`, `infer_schema_length`, `columns`, and the request's row limit.

mod bridge;
mod format;
mod location;

use plugboard_api::arrow_array::{RecordBatch, RecordBatchIterator};
use plugboard_api::arrow_schema::ArrowError;
use plugboard_api::{
    ConfigKey, Connector, KeyType, Manifest, PluginError, ReadRequest, export_connector,
};
use polars::prelude::DataFrame;
use serde_json::Value as Json;

use crate::format::{Format, ReadOptions};
use crate::location::{Location, Protocol};

/// A files connection.
pub struct Files {
    location: Location,
    format: Option<Format>,
}

/// object_store's S3 options this connector passes through: (name, type, secret, what).
const S3_KEYS: &[(&str, KeyType, bool, &str)] = &[
    (
        "aws_access_key_id",
        KeyType::String,
        true,
        "S3 access key id",
    ),
    (
        "aws_secret_access_key",
        KeyType::String,
        true,
        "S3 secret access key",
    ),
    (
        "aws_session_token",
        KeyType::String,
        true,
        "S3 session token",
    ),
    ("aws_region", KeyType::String, false, "S3 region"),
    (
        "aws_endpoint",
        KeyType::String,
        false,
        "S3-compatible endpoint URL (MinIO, moto, R2, …)",
    ),
    (
        "aws_virtual_hosted_style_request",
        KeyType::Boolean,
        false,
        "bucket in the host name",
    ),
    (
        "aws_skip_signature",
        KeyType::Boolean,
        false,
        "anonymous requests (public buckets)",
    ),
    (
        "aws_request_payer",
        KeyType::Boolean,
        false,
        "requester-pays buckets",
    ),
    (
        "aws_unsigned_payload",
        KeyType::Boolean,
        false,
        "do not sign the payload",
    ),
    (
        "aws_server_side_encryption",
        KeyType::String,
        false,
        "AES256, aws:kms, …",
    ),
    (
        "aws_sse_kms_key_id",
        KeyType::String,
        false,
        "KMS key for server-side encryption",
    ),
    (
        "aws_sse_customer_key_base64",
        KeyType::String,
        true,
        "SSE-C key",
    ),
];

/// object_store's HTTP client options, for http(s) and s3.
const CLIENT_KEYS: &[(&str, KeyType, bool, &str)] = &[
    (
        "allow_http",
        KeyType::Boolean,
        false,
        "allow plain http:// endpoints",
    ),
    (
        "allow_invalid_certificates",
        KeyType::Boolean,
        false,
        "skip TLS certificate checks",
    ),
    (
        "timeout",
        KeyType::Duration,
        false,
        "per-request timeout (default 30s)",
    ),
    (
        "connect_timeout",
        KeyType::Duration,
        false,
        "connect timeout (default 5s)",
    ),
    (
        "proxy_url",
        KeyType::String,
        true,
        "HTTP proxy (may carry credentials)",
    ),
    ("user_agent", KeyType::String, false, "User-Agent header"),
    ("http1_only", KeyType::Boolean, false, "never use HTTP/2"),
];

impl Connector for Files {
    type Config = serde_json::Map<String, Json>;

    fn manifest() -> Manifest {
        let mut manifest = Manifest::new("files", env!("CARGO_PKG_VERSION"))
            .description("CSV, TSV, Parquet, JSON, NDJSON and Arrow IPC files: local, HTTP(S), S3")
            .kinds(["files"])
            .key(ConfigKey::string("protocol").describe("file (default), http, https or s3"))
            .key(ConfigKey::string("root").describe(
                "folder or URL (s3://bucket/prefix, https://host/dir/) that paths are read under",
            ))
            .key(ConfigKey::string("format").describe(
                "format for files whose extension does not tell: csv, tsv, parquet, json, ndjson, ipc",
            ))
            .key(
                ConfigKey::string("bearer_token")
                    .secret()
                    .describe("sent as Authorization: Bearer … to an HTTP(S) server"),
            );
        for (name, kind, secret, what) in S3_KEYS.iter().chain(CLIENT_KEYS) {
            let key = ConfigKey::new(*name, *kind).describe(*what);
            manifest = manifest.key(if *secret { key.secret() } else { key });
        }
        manifest
    }

    fn connect(mut config: Self::Config) -> Result<Self, PluginError> {
        let mut text = |key: &str| -> Result<Option<String>, PluginError> {
            match config.remove(key) {
                None => Ok(None),
                Some(Json::String(s)) => Ok(Some(s)),
                Some(other) => Err(PluginError::config(format!(
                    "{key} = {other}: expected text"
                ))),
            }
        };
        let protocol = text("protocol")?
            .map(|p| {
                Protocol::parse(&p).ok_or_else(|| {
                    PluginError::config(format!(
                        "protocol = {p:?}: not supported; use file, http, https or s3"
                    ))
                })
            })
            .transpose()?;
        let root = text("root")?;
        let format = text("format")?
            .map(|f| {
                Format::parse(&f).ok_or_else(|| {
                    PluginError::config(format!("format = {f:?}: use one of {}", Format::NAMES))
                })
            })
            .transpose()?;
        let bearer_token = text("bearer_token")?;
        let mut options = Vec::new();
        for (key, value) in config {
            let known = S3_KEYS
                .iter()
                .chain(CLIENT_KEYS)
                .find(|(name, ..)| *name == key);
            let Some((_, kind, ..)) = known else {
                return Err(PluginError::config(format!(
                    "unknown key {key:?} for a files connection"
                )));
            };
            let value = match (kind, value) {
                (_, Json::String(s)) => s,
                (KeyType::Duration, Json::Number(n)) => format!("{n}s"),
                (_, Json::Bool(b)) => b.to_string(),
                (_, other) => {
                    return Err(PluginError::config(format!(
                        "{key} = {other}: expected text"
                    )));
                }
            };
            options.push((key, value));
        }
        Ok(Files {
            location: Location::new(protocol, root.as_deref(), options, bearer_token)?,
            format,
        })
    }

    fn read(
        &self,
        request: &ReadRequest,
    ) -> Result<impl plugboard_api::RecordBatchReader + Send + 'static, PluginError> {
        if let Some(name) = request.params.keys().next() {
            return Err(PluginError::query(format!(
                "parameter :{name}: the files connector takes no parameters (read options go \
                 in the request's options)"
            )));
        }
        let opts = ReadOptions::from_request(request, self.format)?;
        let target = request.query.trim();
        let mut sources = self.location.resolve(target)?;
        if opts.format.is_none() && sources.iter().any(|s| s.listed) {
            // A folder may hold a README or a `.crc` next to its data: read what has a format.
            sources.retain(|s| format::sniff(&s.name).0.is_some());
            if sources.is_empty() {
                return Err(PluginError::query(format!(
                    "{target}: the folder holds no file of a known format ({}); pass the read \
                     option format",
                    Format::NAMES
                )));
            }
        }
        let inputs = self.location.open(sources)?;

        let mut frames: Vec<(String, DataFrame)> = Vec::with_capacity(inputs.len());
        let mut remaining = opts.limit;
        for (name, input) in inputs {
            if remaining == Some(0) && !frames.is_empty() {
                break;
            }
            let (sniffed, compression) = format::sniff(&name);
            let format = opts.format.or(sniffed).ok_or_else(|| {
                PluginError::query(format!(
                    "{name}: cannot tell the format from the name; pass the read option format \
                     ({})",
                    Format::NAMES
                ))
            })?;
            let compression = opts.compression.unwrap_or(compression);
            let df = format::read(input, format, compression, &opts, remaining)
                .map_err(|e| PluginError::query(format!("{name}: cannot read as {format}: {e}")))?;
            if let Some((first, first_df)) = frames.first() {
                check_same_schema(target, (first, first_df), (&name, &df))?;
            }
            remaining = remaining.map(|n| n.saturating_sub(df.height()));
            frames.push((name, df));
        }

        let schema = bridge::schema(&frames[0].1)?;
        let batch_rows = request.batch_size.filter(|n| *n > 0).unwrap_or(usize::MAX);
        let mut batches: Vec<RecordBatch> = Vec::new();
        for (_, df) in &mut frames {
            batches.extend(bridge::batches(df, &schema, batch_rows)?);
        }
        plugboard_api::log::debug!(
            "{target}: {} file(s), {} rows",
            frames.len(),
            batches.iter().map(RecordBatch::num_rows).sum::<usize>()
        );
        Ok(RecordBatchIterator::new(
            batches.into_iter().map(Ok::<_, ArrowError>),
            schema,
        ))
    }

    fn ping(&self) -> Result<(), PluginError> {
        self.location.ping()
    }

    /// Where the files are (see `Location::target`), and the connection's default format,
    /// which decides how a file whose name does not tell is read.
    fn target(&self) -> Option<plugboard_api::Target> {
        let target = self.location.target();
        Some(match self.format {
            Some(format) => target.with("format", format.to_string()),
            None => target,
        })
    }
}

/// The files of one read must agree on column names, order and types.
fn check_same_schema(
    target: &str,
    (a, a_df): (&str, &DataFrame),
    (b, b_df): (&str, &DataFrame),
) -> Result<(), PluginError> {
    let names = |df: &DataFrame| -> Vec<String> {
        df.get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect()
    };
    if names(a_df) != names(b_df) {
        return Err(PluginError::query(format!(
            "{target}: schema mismatch: {b} has columns {:?}, {a} has {:?}",
            names(b_df),
            names(a_df)
        )));
    }
    for (x, y) in a_df.columns().iter().zip(b_df.columns()) {
        if x.dtype() != y.dtype() {
            return Err(PluginError::query(format!(
                "{target}: schema mismatch: column {} is {} in {b} but {} in {a}",
                x.name(),
                y.dtype(),
                x.dtype()
            )));
        }
    }
    Ok(())
}

export_connector!(Files);

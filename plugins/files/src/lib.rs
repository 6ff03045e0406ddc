//! # plugboard-files: files as tables
//!
//! plugboard's answer to Streamlit's `FilesConnection`: CSV, TSV, Parquet, JSON (an array of
//! records), NDJSON and Arrow IPC (Feather v2) files, plain or `.gz`/`.zst`-compressed, read
//! with polars' readers from a local folder, an HTTP(S) server, S3, Google Cloud Storage or
//! Azure Blob Storage (through `object_store`).
//!
//! ```toml
//! [connections.lake]
//! type = "files"
//! root = "s3://trips/2024"          # or gs://…, az://…, a local folder, https://host/folder/
//! aws_access_key_id = "…"           # object_store's own option names; secrets are redacted
//! aws_secret_access_key = "…"
//! aws_region = "eu-west-1"
//! ```
//!
//! Sections written for st-files-connection work as they stand: `type =
//! "st_files_connection.FilesConnection"`, s3fs's, gcsfs's, adlfs's and the AWS CLI's option
//! names (`key`, `secret`, `endpoint_url`, `AWS_ACCESS_KEY_ID`, `token`, `account_name`,
//! `account_key`, `connection_string`, …; see `names.rs`), a Google service-account key's
//! fields inline, and the protocol taken from the connection's name (`[connections.s3]`,
//! `[connections.gcs]`) when neither `protocol` nor a root URL gives it.
//!
//! `plugboard read lake 'march/*.parquet'` then reads every matching file as one table. The
//! target is a file, a folder (every file under it, hidden and `_`-prefixed ones skipped) or
//! a glob; with a `root`, a target that leaves it (`../`, an absolute path, a symlink out) is
//! refused. Read options: `format`, `compression`, `delimiter`, `header`, `skip_rows`,
//! `null_values`, `infer_schema_length`, `columns`, and the request's row limit.

mod bridge;
mod format;
mod location;
mod names;

use plugboard_api::arrow_array::{RecordBatch, RecordBatchIterator};
use plugboard_api::arrow_schema::ArrowError;
use plugboard_api::{ConfigKey, Connector, KeyType, Manifest, PluginError, ReadRequest};
use polars::prelude::DataFrame;
use serde_json::Value as Json;

use crate::format::{Format, ReadOptions};
use crate::location::Location;

/// A files connection.
pub struct Files {
    location: Location,
    format: Option<Format>,
}

/// object_store's S3, GCS and Azure options this connector passes through: (name, type,
/// secret, what).
const OWN_KEYS: &[(&str, KeyType, bool, &str)] = &[
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
    (
        "google_service_account",
        KeyType::String,
        false,
        "GCS: a service-account key file's path",
    ),
    (
        "google_service_account_key",
        KeyType::String,
        true,
        "GCS: a service-account key file's JSON",
    ),
    (
        "google_application_credentials",
        KeyType::String,
        false,
        "GCS: an application-default credentials file's path (else Google's default \
         places)",
    ),
    (
        "google_base_url",
        KeyType::String,
        false,
        "GCS: the server's base URL (an emulator's; default https://storage.googleapis.com)",
    ),
    (
        "google_skip_signature",
        KeyType::Boolean,
        false,
        "GCS: anonymous requests (public buckets, emulators)",
    ),
    (
        "azure_storage_account_name",
        KeyType::String,
        false,
        "Azure: the storage account",
    ),
    (
        "azure_storage_account_key",
        KeyType::String,
        true,
        "Azure: the account's shared key",
    ),
    (
        "azure_storage_sas_key",
        KeyType::String,
        true,
        "Azure: a SAS token (sv=…&sig=…)",
    ),
    (
        "azure_storage_token",
        KeyType::String,
        true,
        "Azure: a bearer token",
    ),
    (
        "azure_storage_client_id",
        KeyType::String,
        false,
        "Azure: a service principal's client id",
    ),
    (
        "azure_storage_client_secret",
        KeyType::String,
        true,
        "Azure: a service principal's secret",
    ),
    (
        "azure_storage_tenant_id",
        KeyType::String,
        false,
        "Azure: a service principal's tenant",
    ),
    (
        "azure_storage_endpoint",
        KeyType::String,
        false,
        "Azure: the blob endpoint (Azurite's http://HOST:PORT/devstoreaccount1; default \
         https://ACCOUNT.blob.core.windows.net)",
    ),
    (
        "azure_storage_use_emulator",
        KeyType::Boolean,
        false,
        "Azure: Azurite at http://127.0.0.1:10000 with its well-known account",
    ),
    (
        "azure_use_azure_cli",
        KeyType::Boolean,
        false,
        "Azure: the az CLI's login",
    ),
    (
        "azure_skip_signature",
        KeyType::Boolean,
        false,
        "Azure: anonymous requests (public containers)",
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
            .description(
                "CSV, TSV, Parquet, JSON, NDJSON and Arrow IPC files: local, HTTP(S), S3, GCS, \
                 Azure",
            )
            // `type = "st_files_connection.FilesConnection"` names its last part.
            .kinds(["files", "FilesConnection"])
            .key(ConfigKey::string("protocol").describe(
                "file (default), http, https, s3, gcs or azure; else the root's scheme, else \
                 the connection's name (s3, gcs, …), else the cloud whose credentials the \
                 section holds",
            ))
            .key(ConfigKey::string("root").describe(
                "folder or URL (s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, \
                 https://host/dir/) that paths are read under",
            ))
            .key(ConfigKey::string("format").describe(
                "format for files whose extension does not tell: csv, tsv, parquet, json, ndjson, ipc",
            ))
            .key(
                ConfigKey::string("bearer_token")
                    .secret()
                    .describe("sent as Authorization: Bearer … to an HTTP(S) server"),
            );
        for (name, kind, secret, what) in OWN_KEYS.iter().chain(CLIENT_KEYS) {
            let key = ConfigKey::new(*name, *kind).describe(*what);
            manifest = manifest.key(if *secret { key.secret() } else { key });
        }
        // One declaration per name: `token` is s3fs's, gcsfs's and adlfs's.
        let mut declared: Vec<&str> = Vec::new();
        for alias in names::ALIASES {
            if declared.contains(&alias.name) {
                continue;
            }
            declared.push(alias.name);
            let meanings: Vec<String> = names::ALIASES
                .iter()
                .filter(|a| a.name == alias.name)
                .map(|a| format!("{}'s name for {}", a.from, a.own))
                .collect();
            let secret = names::ALIASES
                .iter()
                .any(|a| a.name == alias.name && a.secret);
            let key = ConfigKey::new(alias.name, alias.kind).describe(meanings.join("; "));
            manifest = manifest.key(if secret { key.secret() } else { key });
        }
        manifest = manifest.key(ConfigKey::new("client_kwargs", KeyType::Table).describe(
            "boto3's client arguments, as s3fs takes them: region_name, endpoint_url, \
             aws_access_key_id, aws_secret_access_key, aws_session_token",
        ));
        for (name, secret) in names::GCS_KEYS {
            if declared.contains(name) {
                continue;
            }
            let key = ConfigKey::string(*name)
                .describe("GCS: a field of a service-account key file, as the file has it");
            manifest = manifest.key(if *secret { key.secret() } else { key });
        }
        manifest = manifest.key(
            ConfigKey::string("connection_string")
                .secret()
                .describe("Azure: a storage connection string (AccountName=…;AccountKey=…;…)"),
        );
        manifest
    }

    fn connect(config: Self::Config) -> Result<Self, PluginError> {
        Self::open("", config)
    }

    /// FilesConnection takes the protocol from the connection's name (`s3`).
    fn connect_named(name: &str, config: Self::Config) -> Result<Self, PluginError> {
        Self::open(name, config)
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

    /// Every file under the root (a folder's listing: hidden and `_`-prefixed ones
    /// skipped) that reads as a table: its format known from its name, or the
    /// connection's `format` set. Named by its path under the root, as `read` takes it.
    fn tables(&self) -> Result<Vec<plugboard_api::TableInfo>, PluginError> {
        let sources = match self.location.resolve(".") {
            Ok(sources) => sources,
            // An empty folder has no tables; it is not an error to ask.
            Err(e) if e.message().ends_with("the folder holds no files") => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(sources
            .into_iter()
            .filter(|s| self.format.is_some() || format::sniff(&s.name).0.is_some())
            .map(|s| plugboard_api::TableInfo::file(s.name))
            .collect())
    }

    /// The columns a read of `path` (a file, folder or glob) gives: the schema of a
    /// zero-row read, so types are what the reader infers.
    fn describe(&self, path: &str) -> Result<Vec<plugboard_api::ColumnInfo>, PluginError> {
        let request = ReadRequest {
            query: path.to_owned(),
            limit: Some(0),
            ..ReadRequest::default()
        };
        let reader = self.read(&request)?;
        Ok(plugboard_api::ColumnInfo::from_schema(
            &plugboard_api::RecordBatchReader::schema(&reader),
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

impl Files {
    /// Opens the connection `name` (the protocol may come from it, as FilesConnection's
    /// does) from its section.
    pub fn open(
        name: &str,
        mut config: serde_json::Map<String, Json>,
    ) -> Result<Self, PluginError> {
        let mut text = |key: &str| -> Result<Option<String>, PluginError> {
            match config.remove(key) {
                None => Ok(None),
                Some(Json::String(s)) => Ok(Some(s)),
                Some(other) => Err(PluginError::config(format!(
                    "{key} = {other}: expected text"
                ))),
            }
        };
        let protocol = text("protocol")?;
        let root = text("root")?;
        let format = text("format")?
            .map(|f| {
                Format::parse(&f).ok_or_else(|| {
                    PluginError::config(format!("format = {f:?}: use one of {}", Format::NAMES))
                })
            })
            .transpose()?;
        let bearer_token = text("bearer_token")?;
        let protocol = names::protocol(name, protocol.as_deref(), root.as_deref(), &config)?;
        let options = names::settings(protocol, config, |key| {
            OWN_KEYS
                .iter()
                .chain(CLIENT_KEYS)
                .find(|(name, ..)| *name == key)
                .map(|(_, kind, ..)| *kind)
        })?;
        Ok(Files {
            location: Location::new(protocol, root.as_deref(), options, bearer_token)?,
            format,
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

plugboard_api::export_connector!(Files);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn open(name: &str, config: Json) -> Result<Files, String> {
        let Json::Object(config) = config else {
            unreachable!("a table")
        };
        Files::open(name, config).map_err(|e| e.message().to_owned())
    }

    fn refused(name: &str, config: Json) -> String {
        match open(name, config) {
            Ok(_) => panic!("{name}: connected"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_section_named_s3_reads_a_bare_root_as_bucket_and_prefix() {
        let files = open(
            "s3",
            json!({"root": "trips/2024", "endpoint_url": "http://127.0.0.1:9", "anon": true}),
        )
        .expect("s3 by name");
        assert_eq!(
            files.location.target().to_json(),
            r#"{"aws_endpoint":"http://127.0.0.1:9","prefix":"2024","protocol":"s3","store":"s3://trips"}"#
        );
    }

    #[test]
    fn s3_names_elsewhere_are_errors_naming_them_as_written() {
        let err = refused("web", json!({"root": "https://h/d/", "key": "x"}));
        assert_eq!(err, "key applies to protocol = \"s3\" only");
        let err = refused(
            "web",
            json!({"root": "https://h/d/", "client_kwargs": {"region_name": "eu"}}),
        );
        assert_eq!(
            err,
            "client_kwargs.region_name applies to protocol = \"s3\" only"
        );
        let err = refused("lake", json!({"AWS_DEFAULT_REGION": "eu"}));
        assert!(
            err.starts_with("AWS_DEFAULT_REGION applies to remote stores"),
            "{err}"
        );
    }

    #[test]
    fn gcs_and_azure_sections_connect_and_name_their_place() {
        let files = open(
            "gcs",
            json!({"root": "st-bucket/data", "endpoint_url": "http://127.0.0.1:9", "token": "anon"}),
        )
        .expect("gcs by name");
        assert_eq!(
            files.location.target().to_json(),
            r#"{"google_base_url":"http://127.0.0.1:9","prefix":"data","protocol":"gcs","store":"gs://st-bucket"}"#
        );
        let files = open(
            "blobs",
            json!({
                "root": "abfs://container/prefix",
                "connection_string": "AccountName=acct;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/acct",
            }),
        )
        .expect("azure");
        let target = files.location.target().to_json();
        assert_eq!(
            target,
            r#"{"azure_storage_account_name":"acct","azure_storage_endpoint":"http://127.0.0.1:9/acct","prefix":"prefix","protocol":"azure","store":"az://container"}"#
        );
        for (name, section, says) in [
            (
                "x",
                json!({"root": "s3://b/p", "google_base_url": "http://h"}),
                "google_base_url applies to protocol = \"gcs\" only",
            ),
            (
                "x",
                json!({"root": "gs://b/p", "account_name": "a"}),
                "account_name applies to protocol = \"azure\" only",
            ),
            (
                "x",
                json!({"root": "gs://b", "token": "/k.json", "google_service_account_key": "{}"}),
                "token and google_service_account_key both give a service-account key",
            ),
            (
                "x",
                json!({"root": "az://c", "azure_storage_use_emulator": true, "endpoint_url": "http://h"}),
                "azure_storage_use_emulator and endpoint_url are both given",
            ),
            (
                "x",
                json!({"root": "az://my_container", "azure_storage_use_emulator": true}),
                "is not an Azure container name",
            ),
            (
                "x",
                json!({"root": "az://lake", "account_name": "a", "endpoint_url": "127.0.0.1:10000"}),
                "endpoint_url = \"127.0.0.1:10000\": not an http(s) URL",
            ),
            (
                "x",
                json!({"root": "gs://lake", "google_base_url": "localhost"}),
                "google_base_url = \"localhost\": not an http(s) URL",
            ),
            (
                "x",
                json!({"protocol": "ftp"}),
                "protocol = \"ftp\": not supported; use file, http, https, s3, gcs",
            ),
        ] {
            let err = refused(name, section);
            assert!(err.contains(says), "{says}: {err}");
        }
    }

    #[test]
    fn the_manifest_declares_every_alias_and_marks_credentials_secret() {
        let manifest = Files::manifest();
        assert!(manifest.kinds.iter().any(|k| k == "FilesConnection"));
        let secret = |name: &str| {
            manifest
                .config
                .iter()
                .find(|k| k.name == name)
                .map(|k| k.secret)
        };
        for name in [
            "key",
            "secret",
            "token",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "private_key",
            "private_key_id",
            "account_key",
            "connection_string",
            "sas_token",
        ] {
            assert_eq!(secret(name), Some(true), "{name}");
        }
        for name in [
            "endpoint_url",
            "anon",
            "AWS_DEFAULT_REGION",
            "client_kwargs",
        ] {
            assert_eq!(secret(name), Some(false), "{name}");
        }
    }
}

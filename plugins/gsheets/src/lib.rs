//! # plugboard-gsheets: Google Sheets as tables
//!
//! plugboard's answer to Streamlit's `GSheetsConnection` (streamlit/gsheets-connection), with
//! the sections its tutorials write working as they stand:
//!
//! ```toml
//! [connections.gsheets]            # a public sheet ("Anyone with the link can view")
//! spreadsheet = "https://docs.google.com/spreadsheets/d/<id>/edit#gid=0"
//!
//! [connections.private]            # a private one, shared with a service account
//! spreadsheet = "https://docs.google.com/spreadsheets/d/<id>/edit#gid=0"
//! type = "service_account"         # the key file's fields, as Google writes them
//! client_email = "reader@project.iam.gserviceaccount.com"
//! private_key = "-----BEGIN PRIVATE KEY-----\n…"
//! token_uri = "https://oauth2.googleapis.com/token"
//! ```
//!
//! * **Public sheets** (no `type`, or `type = ""`) are read through their CSV export, typed
//!   from the text the sheet displays (see `grid.rs`).
//! * **Service accounts** sign an RS256 JWT assertion with the key, exchange it at
//!   `token_uri` for an access token (kept until shortly before it expires), and read with
//!   the Sheets API v4 (`spreadsheets.get` for the worksheets and cell formats,
//!   `spreadsheets.values.get` for the values, unformatted), so numbers, booleans and dates
//!   come back as the sheet holds them. Writes (`execute`): `update`, `create` and `clear`
//!   a worksheet, as gsheets-connection's methods of those names do (see `write.rs`).
//!
//! The target of a read is the worksheet (`Sheet1`, a gid, `Sheet1!A1:D20`, or empty for the
//! section's `worksheet`, else the URL's `#gid=`, else the first); read options `worksheet`,
//! `spreadsheet`, `range`, `header`, `skiprows`, `nrows`, `usecols` and `evaluate_formulas`
//! are gsheets-connection's (pandas') names. What this does not do: open a spreadsheet by
//! its title (that needs the Drive API), SQL over worksheets (gsheets-connection's
//! `query`), or cell formatting on write.
//!
//! The private key and the access token never leave this crate: no message, log record or
//! `Debug` output holds either (the host redacts the section's key fields as well).

mod auth;
mod csv;
mod grid;
mod http;
mod public;
mod sheets;
mod write;

use std::time::Duration;

use plugboard_api::arrow_array::{RecordBatch, RecordBatchIterator};
use plugboard_api::arrow_schema::{ArrowError, Schema};
use plugboard_api::{
    ConfigKey, Connector, ExecuteRequest, KeyType, Manifest, PluginError, ReadRequest, Target,
};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::grid::ReadOptions;

/// Where Google's Sheets API answers; `sheets_base_url` points elsewhere (a stand-in).
const SHEETS_BASE_URL: &str = "https://sheets.googleapis.com";
/// Where public sheets' CSV exports are; `export_base_url` points elsewhere.
const EXPORT_BASE_URL: &str = "https://docs.google.com";
/// Google's token endpoint, when a key file leaves `token_uri` out.
const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Each request's deadline, unless `timeout` says otherwise.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The connection's table. The key file's fields are those Google writes into a service
/// account's JSON key; the ones this connector does not need are accepted and ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    spreadsheet: Option<String>,
    worksheet: Option<Json>,
    #[serde(rename = "type")]
    credential: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
    sheets_base_url: Option<String>,
    export_base_url: Option<String>,
    timeout: Option<Json>,
    #[serde(default, rename = "project_id")]
    _project_id: Option<Json>,
    #[serde(default, rename = "client_id")]
    _client_id: Option<Json>,
    #[serde(default, rename = "auth_uri")]
    _auth_uri: Option<Json>,
    #[serde(default, rename = "auth_provider_x509_cert_url")]
    _auth_provider_x509_cert_url: Option<Json>,
    #[serde(default, rename = "client_x509_cert_url")]
    _client_x509_cert_url: Option<Json>,
    #[serde(default, rename = "universe_domain")]
    _universe_domain: Option<Json>,
}

/// A Google Sheets connection: public (CSV export) or through a service account.
pub struct Gsheets {
    name: String,
    /// The section's spreadsheet (id) and its URL's `#gid=`, the default for every call.
    spreadsheet: Option<sheets::SpreadsheetRef>,
    worksheet: Option<grid::Worksheet>,
    http: http::Http,
    mode: Mode,
}

enum Mode {
    Public { export_base: String },
    Account(Box<sheets::Api>),
}

impl Connector for Gsheets {
    type Config = Config;

    fn manifest() -> Manifest {
        let s = |name: &str, what: &str| ConfigKey::string(name).describe(what);
        let ignored = "a field of the service account's key file (not needed, accepted)";
        Manifest::new("gsheets", env!("CARGO_PKG_VERSION"))
            .description("Google Sheets: public sheets (CSV export) and service accounts (Sheets API v4)")
            .kinds(["gsheets", "GSheetsConnection"])
            .key(s(
                "spreadsheet",
                "the spreadsheet's URL (https://docs.google.com/spreadsheets/d/<id>/edit#gid=0) or id",
            ))
            .key(
                ConfigKey::new("worksheet", KeyType::Any)
                    .describe("the worksheet read by default: its title, or its gid (a number)"),
            )
            .key(s(
                "type",
                "\"service_account\" to read with the key below; empty or absent for a public sheet",
            ))
            .key(s("client_email", "the service account's email"))
            .key(
                s("private_key", "the service account's PKCS#8 private key (PEM)").secret(),
            )
            .key(s("private_key_id", "the key's id, sent as the JWT's kid").secret())
            .key(s(
                "token_uri",
                "where the signed assertion is exchanged for a token (default https://oauth2.googleapis.com/token)",
            ))
            .key(s(
                "sheets_base_url",
                "the Sheets API's base URL (default https://sheets.googleapis.com)",
            ))
            .key(s(
                "export_base_url",
                "where public sheets' CSV exports are (default https://docs.google.com)",
            ))
            .key(
                ConfigKey::new("timeout", KeyType::Duration)
                    .describe("each HTTP request's deadline (default 60s)"),
            )
            .key(s("project_id", ignored))
            .key(s("client_id", ignored))
            .key(s("auth_uri", ignored))
            .key(s("auth_provider_x509_cert_url", ignored))
            .key(s("client_x509_cert_url", ignored))
            .key(s("universe_domain", ignored))
    }

    fn connect(config: Config) -> Result<Self, PluginError> {
        Self::connect_named("gsheets", config)
    }

    fn connect_named(name: &str, config: Config) -> Result<Self, PluginError> {
        let timeout = match &config.timeout {
            None => TIMEOUT,
            Some(Json::Number(n)) => n
                .as_f64()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| PluginError::config(format!("`timeout`: {n} is not a duration")))?,
            Some(Json::String(t)) => plugboard_api::parse_duration(t).ok_or_else(|| {
                PluginError::config(format!("`timeout`: {t:?} is not a duration (\"30s\")"))
            })?,
            Some(other) => {
                return Err(PluginError::config(format!(
                    "`timeout`: expected a duration, got {other}"
                )));
            }
        };
        let spreadsheet = config
            .spreadsheet
            .as_deref()
            .map(sheets::SpreadsheetRef::parse)
            .transpose()
            .map_err(|e| PluginError::config(format!("`spreadsheet`: {e}")))?;
        let worksheet = config
            .worksheet
            .as_ref()
            .map(grid::Worksheet::from_json)
            .transpose()
            .map_err(|e| PluginError::config(format!("`worksheet`: {e}")))?
            .flatten();
        let http = http::Http::new(timeout);
        let base = |key: &str, value: Option<String>, default: &str| {
            let url = value.unwrap_or_else(|| default.to_owned());
            http::check_base(&url).map_err(|e| PluginError::config(format!("`{key}`: {e}")))?;
            Ok::<_, PluginError>(url.trim_end_matches('/').to_owned())
        };
        let mode = match config.credential.as_deref().unwrap_or("") {
            "" => Mode::Public {
                export_base: base("export_base_url", config.export_base_url, EXPORT_BASE_URL)?,
            },
            "service_account" => {
                let email = config
                    .client_email
                    .filter(|e| !e.is_empty())
                    .ok_or_else(|| {
                        PluginError::config(
                            "`client_email`: a service account needs its email (the key file's client_email)",
                        )
                    })?;
                let key = config.private_key.filter(|k| !k.is_empty()).ok_or_else(|| {
                    PluginError::config(format!(
                        "`private_key`: service account {email} needs its private key (the key file's private_key)"
                    ))
                })?;
                let token_uri = base(
                    "token_uri",
                    config.token_uri.filter(|t| !t.is_empty()),
                    TOKEN_URI,
                )?;
                let account = auth::ServiceAccount::new(
                    email,
                    &key,
                    config.private_key_id.filter(|k| !k.is_empty()),
                    token_uri,
                )?;
                Mode::Account(Box::new(sheets::Api::new(
                    base("sheets_base_url", config.sheets_base_url, SHEETS_BASE_URL)?,
                    account,
                )))
            }
            other => {
                return Err(PluginError::config(format!(
                    "`type`: {other:?} credentials are not supported; use a service account's key \
                     (type = \"service_account\") or a public sheet (no type)"
                )));
            }
        };
        Ok(Self {
            name: name.to_owned(),
            spreadsheet,
            worksheet,
            http,
            mode,
        })
    }

    fn target(&self) -> Option<Target> {
        let mut t = Target::new().with(
            "spreadsheet",
            self.spreadsheet.as_ref().map(|s| s.id.clone()),
        );
        match &self.mode {
            Mode::Public { export_base } => {
                t.set("export_base_url", export_base.clone());
            }
            Mode::Account(api) => {
                t.set("sheets_base_url", api.base().to_owned());
                t.set("client_email", api.email().to_owned());
            }
        }
        Some(t)
    }

    fn read(
        &self,
        request: &ReadRequest,
    ) -> Result<impl plugboard_api::RecordBatchReader + Send + 'static, PluginError> {
        if let Some(p) = request.params.keys().next() {
            return Err(PluginError::query(format!(
                "Google Sheets reads take no parameters (got :{p}); pass read options instead \
                 (worksheet, range, header, skiprows, nrows, usecols)"
            )));
        }
        let options = ReadOptions::parse(&request.query, &request.options, request.limit)?;
        let spreadsheet = self.spreadsheet_for(options.spreadsheet.as_deref())?;
        let worksheet = options
            .worksheet
            .clone()
            .or_else(|| self.worksheet.clone())
            .or_else(|| spreadsheet.gid.map(grid::Worksheet::Gid));
        let grid = match &self.mode {
            Mode::Public { export_base } => public::read(
                &self.http,
                export_base,
                &spreadsheet.id,
                worksheet.as_ref(),
                options.range.as_deref(),
            )?,
            Mode::Account(api) => api.read(
                &self.http,
                &spreadsheet.id,
                worksheet.as_ref(),
                options.range.as_deref(),
                options.evaluate_formulas,
            )?,
        };
        let batch = grid::table(grid, &options)?;
        let (schema, batches): (_, Vec<Result<RecordBatch, ArrowError>>) = match batch {
            Some(b) => (b.schema(), vec![Ok(b)]),
            None => (std::sync::Arc::new(Schema::empty()), vec![]),
        };
        Ok(RecordBatchIterator::new(batches, schema))
    }

    fn execute(&self, request: &ExecuteRequest) -> Result<u64, PluginError> {
        let Mode::Account(api) = &self.mode else {
            return Err(PluginError::unsupported(format!(
                "connection {:?} reads a public sheet, which cannot be written to; use a service \
                 account (type = \"service_account\") to update, create or clear worksheets",
                self.name
            )));
        };
        write::execute(self, api, request)
    }
}

impl Gsheets {
    /// The spreadsheet a call is for: its own (`spreadsheet` option or parameter), else the
    /// section's.
    fn spreadsheet_for(&self, given: Option<&str>) -> Result<sheets::SpreadsheetRef, PluginError> {
        match given {
            Some(s) => sheets::SpreadsheetRef::parse(s)
                .map_err(|e| PluginError::query(format!("spreadsheet: {e}"))),
            None => self.spreadsheet.clone().ok_or_else(|| {
                PluginError::config(format!(
                    "connection {:?} names no spreadsheet: set `spreadsheet` (its URL or id) in \
                     the section, or pass the option spreadsheet=…",
                    self.name
                ))
            }),
        }
    }
}

plugboard_api::export_connector!(Gsheets);

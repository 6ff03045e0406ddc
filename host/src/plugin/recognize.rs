//! What a connection section is, as Streamlit would take it: the kind it asks for (its
//! `type`, a Streamlit class name, or what Streamlit infers from the connection's name), and,
//! for a section no loaded plugin serves, what it looks like (a dialect, a URL scheme, or
//! keys that only one kind of source uses) so that the error can say what would serve it.

/// Google credential types: in a Streamlit section, `type = "service_account"` is a field
/// of the key file the section holds (Sheets, GCS and BigQuery tutorials put it there),
/// not a connector kind.
const CREDENTIAL_TYPES: &[&str] = &[
    "",
    "service_account",
    "authorized_user",
    "external_account",
    "impersonated_service_account",
];

/// Whether `type` in this section is a credential field, which the plugin gets as is.
pub(crate) fn type_is_credential(table: &toml::Table) -> bool {
    matches!(table.get("type"), Some(toml::Value::String(s)) if CREDENTIAL_TYPES.contains(&s.as_str()))
}

/// A kind a section asks for, and how it asks: `its type "…"`, `from its name "…", as
/// Streamlit infers it`, or `the type asked for, "…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asked {
    pub kind: String,
    pub how: String,
    /// Inferred from the connection's name, not asked for: a URL says more.
    pub by_name: bool,
}

/// The kind a section asks for, without looking at plugins: the `kind` the caller named
/// (`--type`, `ConnectOptions::kind`), else its `type` (a credential type does not count),
/// else what Streamlit infers from the connection's name (`sql`, `snowflake`, …). A
/// Streamlit class name (`st_files_connection.FilesConnection`) names its kind.
pub(crate) fn asked_kind(
    name: &str,
    kind: Option<&str>,
    table: &toml::Table,
) -> Result<Option<Asked>, String> {
    let (written, how) = match kind {
        Some(k) => (Some(k.to_owned()), format!("the type asked for, {k:?}")),
        None => match table.get("type") {
            Some(toml::Value::String(s)) if !type_is_credential(table) => {
                (Some(s.clone()), format!("its type {s:?}"))
            }
            Some(toml::Value::String(_)) | None => (None, String::new()),
            Some(other) => return Err(format!("`type` must be a string, got {other}")),
        },
    };
    if let Some(k) = written {
        let last = k.rsplit('.').next().unwrap_or(&k);
        let kind = class_kind(last).unwrap_or(last).to_owned();
        return Ok(Some(Asked {
            kind,
            how,
            by_name: false,
        }));
    }
    Ok(name_kind(name).map(|k| Asked {
        kind: k.to_owned(),
        how: format!("from its name {name:?}, as Streamlit infers it"),
        by_name: true,
    }))
}

/// The plugboard kind of a Streamlit connection class.
fn class_kind(class: &str) -> Option<&'static str> {
    Some(match class {
        "SQLConnection" => "sql",
        "SnowflakeConnection" | "SnowparkConnection" | "SnowflakeCallersRightsConnection" => {
            "snowflake"
        }
        "FilesConnection" => "files",
        "GSheetsConnection" => "gsheets",
        "SupabaseConnection" => "supabase",
        "DuckDBConnection" => "duckdb",
        "BigQueryConnection" => "bigquery",
        _ => return None,
    })
}

/// What Streamlit (and st-files-connection) infer from a connection's name alone.
fn name_kind(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "sql" => "sql",
        "snowflake" | "snowpark" | "snowflake-callers-rights" => "snowflake",
        "s3" | "gcs" | "gs" | "azure" | "abfs" | "az" => "files",
        "gsheets" => "gsheets",
        _ => return None,
    })
}

/// What a section looks like, for an error: `a MySQL database (its URL scheme
/// mysql+pymysql)`, and the kind of plugin that would serve it, if plugboard knows one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Looks {
    pub what: String,
    pub kind: Option<&'static str>,
}

impl Looks {
    fn new(what: String, kind: Option<&'static str>) -> Self {
        Self { what, kind }
    }
}

/// Recognizes a section by its URL scheme or dialect, its kind, its keys, then its name.
pub(crate) fn looks(asked: Option<&Asked>, table: &toml::Table) -> Option<Looks> {
    let text = |k: &str| table.get(k).and_then(toml::Value::as_str);
    let has = |k: &str| table.contains_key(k);
    // The kind asked for says most: a `--type snowflake` is a Snowflake connection,
    // whatever else the section holds.
    if let Some(a) = asked.filter(|a| !a.by_name)
        && let Some((source, kind)) = kind_source(&a.kind)
    {
        return Some(Looks::new(format!("{source} ({})", a.how), Some(kind)));
    }
    if let Some(url) = text("url")
        && let Some((scheme, _)) = url.split_once("://")
        && let Some((source, kind)) = source_of(scheme)
    {
        return Some(Looks::new(
            format!("{source} (its URL scheme {scheme})"),
            kind,
        ));
    }
    if let Some(dialect) = text("dialect")
        && let Some((source, kind)) = source_of(dialect)
    {
        return Some(Looks::new(
            format!("{source} (its dialect {dialect})"),
            kind,
        ));
    }
    // A kind from the name, once the URL and the dialect had nothing to say.
    if let Some(a) = asked.filter(|a| a.by_name)
        && let Some((source, kind)) = kind_source(&a.kind)
    {
        return Some(Looks::new(format!("{source} ({})", a.how), Some(kind)));
    }
    let keys = |ks: &[&str]| -> Vec<String> {
        ks.iter()
            .filter(|k| has(k))
            .map(|k| (*k).to_owned())
            .collect()
    };
    let service_account = type_is_credential(table) && (has("private_key") || has("client_email"));
    if has("spreadsheet") || has("worksheet") {
        let mut why = keys(&["spreadsheet", "worksheet"]);
        if service_account {
            why.push("a service-account key".to_owned());
        }
        return Some(Looks::new(
            format!("a Google Sheets connection ({})", why.join(", ")),
            Some("gsheets"),
        ));
    }
    if has("account") && (has("user") || has("warehouse") || has("authenticator")) {
        let why = keys(&["account", "user", "warehouse", "role", "authenticator"]);
        return Some(Looks::new(
            format!("a Snowflake connection (its keys {})", why.join(", ")),
            Some("snowflake"),
        ));
    }
    if has("SUPABASE_URL") || has("SUPABASE_KEY") {
        return Some(Looks::new(
            "a Supabase client (its keys SUPABASE_URL, SUPABASE_KEY)".to_owned(),
            Some("supabase"),
        ));
    }
    if service_account {
        return Some(Looks::new(
            "a Google service-account key (for Google Sheets, Cloud Storage or BigQuery)"
                .to_owned(),
            None,
        ));
    }
    let fsspec = keys(&[
        "protocol",
        "root",
        "endpoint_url",
        "client_kwargs",
        "anon",
        "AWS_ACCESS_KEY_ID",
        "aws_access_key_id",
    ]);
    if !fsspec.is_empty() || (has("key") && has("secret")) {
        let why = if fsspec.is_empty() {
            "key, secret".to_owned()
        } else {
            fsspec.join(", ")
        };
        return Some(Looks::new(
            format!("a FilesConnection (fsspec) section (its keys {why})"),
            Some("files"),
        ));
    }
    if has("token_name") || has("token_secret") || has("personal_access_token_name") {
        let why = keys(&["token_name", "token_secret", "server_url", "site_id"]);
        return Some(Looks::new(
            format!("a Tableau Server connection (its keys {})", why.join(", ")),
            None,
        ));
    }
    if !has("host")
        && let Some(db) = text("database")
        && let Some(ext) = std::path::Path::new(db)
            .extension()
            .and_then(|e| e.to_str())
        && ["db", "duckdb", "ddb", "sqlite", "sqlite3"].contains(&ext.to_ascii_lowercase().as_str())
    {
        let kind = if ext.eq_ignore_ascii_case("duckdb") || ext.eq_ignore_ascii_case("ddb") {
            "a DuckDB database file"
        } else {
            "a database file (DuckDB or SQLite)"
        };
        return Some(Looks::new(
            format!("{kind} (its database {db:?}, with no type to say which)"),
            None,
        ));
    }
    if has("host") || has("database") {
        return Some(Looks::new(
            "a SQL database whose dialect is not given (write a `url`, a `dialect` or a `type`)"
                .to_owned(),
            None,
        ));
    }
    None
}

/// The source a SQLAlchemy dialect (or URL scheme) names, and plugboard's kind for it.
fn source_of(scheme: &str) -> Option<(&'static str, Option<&'static str>)> {
    let dialect = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    Some(match dialect.as_str() {
        "postgresql" | "postgres" | "psql" => ("a PostgreSQL database", Some("postgres")),
        "cockroachdb" => ("a CockroachDB database", Some("postgres")),
        "redshift" => ("an Amazon Redshift database", Some("postgres")),
        "mysql" => ("a MySQL database", Some("mysql")),
        "mariadb" => ("a MariaDB database", Some("mysql")),
        "tidb" => ("a TiDB database", Some("mysql")),
        "sqlite" => ("a SQLite database", Some("sqlite")),
        "duckdb" | "md" | "motherduck" => ("a DuckDB database", Some("duckdb")),
        "snowflake" => ("a Snowflake connection", Some("snowflake")),
        "bigquery" => ("a BigQuery connection", Some("bigquery")),
        "mssql" => ("a SQL Server database", None),
        "oracle" => ("an Oracle database", None),
        "databricks" => ("a Databricks connection", None),
        "trino" | "presto" => ("a Trino/Presto connection", None),
        "clickhouse" | "clickhousedb" => ("a ClickHouse database", None),
        "awsathena" => ("an Amazon Athena connection", None),
        "hana" => ("an SAP HANA database", None),
        "db2" | "ibm_db_sa" => ("an IBM Db2 database", None),
        "mongodb" | "mongodb+srv" => ("a MongoDB database", None),
        "redis" | "rediss" => ("a Redis server", None),
        "s3" | "s3a" => ("files on S3", Some("files")),
        "gs" | "gcs" => ("files on Google Cloud Storage", Some("files")),
        "az" | "abfs" | "abfss" | "adl" => ("files on Azure storage", Some("files")),
        "http" | "https" | "file" => ("files", Some("files")),
        _ => return None,
    })
}

/// Whether plugboard knows `kind` as a source's (served or not yet): not a typo.
pub(crate) fn known_kind(kind: &str) -> bool {
    kind_source(kind).is_some()
}

/// The source a plugboard kind (or Streamlit's name for it) stands for.
fn kind_source(kind: &str) -> Option<(&'static str, &'static str)> {
    let k = kind.to_ascii_lowercase();
    let (source, kind) = match k.as_str() {
        "snowflake" | "snowpark" => ("a Snowflake connection", "snowflake"),
        "gsheets" => ("a Google Sheets connection", "gsheets"),
        "bigquery" => ("a BigQuery connection", "bigquery"),
        "mysql" | "mariadb" => ("a MySQL database", "mysql"),
        "duckdb" => ("a DuckDB database", "duckdb"),
        "supabase" => ("a Supabase client", "supabase"),
        "files" => ("a FilesConnection (fsspec) section", "files"),
        _ => return None,
    };
    Some((source, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> toml::Table {
        toml::from_str(s).expect("toml")
    }

    #[test]
    fn kinds_come_from_the_caller_the_type_a_class_or_the_name() {
        let kind = |name: &str, k: Option<&str>, s: &str| {
            asked_kind(name, k, &t(s)).map(|a| a.map(|a| a.kind))
        };
        assert_eq!(
            kind("x", Some("sqlite"), "type = \"postgres\""),
            Ok(Some("sqlite".into()))
        );
        assert_eq!(
            kind("x", None, "type = \"st_files_connection.FilesConnection\""),
            Ok(Some("files".into()))
        );
        assert_eq!(
            kind("x", None, "type = \"streamlit.connections.SQLConnection\""),
            Ok(Some("sql".into()))
        );
        assert_eq!(kind("snowflake", None, ""), Ok(Some("snowflake".into())));
        assert_eq!(kind("SQL", None, ""), Ok(Some("sql".into())));
        // A credential type is the key file's, not a kind; the name decides then.
        let sa = "type = \"service_account\"\nprivate_key = \"k\"";
        assert!(type_is_credential(&t(sa)));
        assert_eq!(kind("gsheets", None, sa), Ok(Some("gsheets".into())));
        assert_eq!(kind("mine", None, sa), Ok(None));
        let how = asked_kind("snowflake", None, &t(""))
            .expect("ok")
            .expect("a kind")
            .how;
        assert_eq!(how, "from its name \"snowflake\", as Streamlit infers it");
        assert!(asked_kind("x", None, &t("type = 3")).is_err());
    }

    #[test]
    fn sections_are_recognized_by_scheme_dialect_keys_and_name() {
        let what = |name: &str, s: &str| {
            let table = t(s);
            let asked = asked_kind(name, None, &table).expect("kind");
            looks(asked.as_ref(), &table).map(|l| (l.what, l.kind))
        };
        assert_eq!(
            what("db", "url = \"mysql+pymysql://u:p@h/d\""),
            Some((
                "a MySQL database (its URL scheme mysql+pymysql)".into(),
                Some("mysql")
            ))
        );
        assert_eq!(
            what("db", "dialect = \"mssql\"\nhost = \"h\""),
            Some(("a SQL Server database (its dialect mssql)".into(), None))
        );
        assert_eq!(
            what("sf", "account = \"a\"\nuser = \"u\"\nwarehouse = \"w\"").map(|w| w.1),
            Some(Some("snowflake"))
        );
        assert_eq!(
            what("g", "spreadsheet = \"https://docs.google.com/x\"\ntype = \"service_account\"\nprivate_key = \"k\"")
                .map(|w| w.0),
            Some("a Google Sheets connection (spreadsheet, a service-account key)".into())
        );
        assert_eq!(
            what("snowflake", "").map(|w| w.0),
            Some(
                "a Snowflake connection (from its name \"snowflake\", as Streamlit infers it)"
                    .into()
            )
        );
        assert_eq!(
            what("s3", "key = \"k\"\nsecret = \"s\"").map(|w| w.1),
            Some(Some("files"))
        );
        assert_eq!(
            what("x", "SUPABASE_URL = \"u\"").map(|w| w.1),
            Some(Some("supabase"))
        );
        assert_eq!(what("x", "colour = \"red\""), None);
        assert_eq!(
            what(
                "t",
                "token_name = \"n\"\ntoken_secret = \"s\"\nserver_url = \"u\""
            )
            .map(|w| w.0),
            Some(
                "a Tableau Server connection (its keys token_name, token_secret, server_url)"
                    .into()
            )
        );
        assert_eq!(
            what("d", "database = \"file.db\"").map(|w| w.0),
            Some("a database file (DuckDB or SQLite) (its database \"file.db\", with no type to say which)".into())
        );
    }
}

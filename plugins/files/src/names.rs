//! FilesConnection's names. st-files-connection hands a Streamlit section to fsspec as it
//! stands, so the sections Streamlit apps hold use the fsspec filesystems' option names:
//! s3fs's (`key`, `secret`, `token`, `endpoint_url`, `anon`, `client_kwargs = { region_name,
//! endpoint_url }`) or the AWS CLI's environment names (`AWS_ACCESS_KEY_ID`, …) for S3,
//! gcsfs's (`token`, `endpoint_url`, and the fields of a service-account key file inline, as
//! Streamlit's GCS tutorial writes them) for Google Cloud Storage, adlfs's (`account_name`,
//! `account_key`, `sas_token`, `connection_string`, …) for Azure. This module maps them onto
//! the connector's own names (object_store's), and finds the protocol a section asks for the
//! way FilesConnection does: its `protocol`, else the scheme of its root, else the
//! connection's name (`st.connection("s3", type=FilesConnection)`), and, past what
//! FilesConnection does, else the cloud whose credentials the section holds.
//!
//! One fsspec name can mean different things on different stores (`token` is s3fs's session
//! token, gcsfs's key file, adlfs's bearer token), so an alias belongs to a protocol.

use std::collections::BTreeMap;

use plugboard_api::{KeyType, PluginError};
use serde_json::{Map, Value as Json};

use crate::location::{Protocol, Setting};

/// Another name for one of the connector's own options, on one protocol.
pub struct Alias {
    pub name: &'static str,
    /// The connector's own name for the option.
    pub own: &'static str,
    pub kind: KeyType,
    pub secret: bool,
    /// Whose name it is.
    pub from: &'static str,
    pub protocol: Protocol,
}

const fn alias(
    protocol: Protocol,
    name: &'static str,
    own: &'static str,
    kind: KeyType,
    secret: bool,
    from: &'static str,
) -> Alias {
    Alias {
        name,
        own,
        kind,
        secret,
        from,
        protocol,
    }
}

const S3FS: &str = "s3fs";
const AWS: &str = "the AWS CLI's environment";
const GCSFS: &str = "gcsfs";
const ADLFS: &str = "adlfs";
const OBJECT_STORE: &str = "object_store";
use KeyType::{Boolean, String as Text};
use Protocol::{Azure, Gcs, S3};

/// The top-level names Streamlit sections use for store options. Where one name serves
/// several protocols, the first is the one named when it turns up on another protocol.
pub const ALIASES: &[Alias] = &[
    alias(S3, "key", "aws_access_key_id", Text, true, S3FS),
    alias(S3, "secret", "aws_secret_access_key", Text, true, S3FS),
    alias(S3, "token", "aws_session_token", Text, true, S3FS),
    alias(S3, "endpoint_url", "aws_endpoint", Text, false, S3FS),
    alias(S3, "anon", "aws_skip_signature", Boolean, false, S3FS),
    alias(
        S3,
        "requester_pays",
        "aws_request_payer",
        Boolean,
        false,
        S3FS,
    ),
    alias(
        S3,
        "AWS_ACCESS_KEY_ID",
        "aws_access_key_id",
        Text,
        true,
        AWS,
    ),
    alias(
        S3,
        "AWS_SECRET_ACCESS_KEY",
        "aws_secret_access_key",
        Text,
        true,
        AWS,
    ),
    alias(
        S3,
        "AWS_SESSION_TOKEN",
        "aws_session_token",
        Text,
        true,
        AWS,
    ),
    alias(S3, "AWS_DEFAULT_REGION", "aws_region", Text, false, AWS),
    alias(S3, "AWS_REGION", "aws_region", Text, false, AWS),
    alias(S3, "AWS_ENDPOINT_URL", "aws_endpoint", Text, false, AWS),
    alias(S3, "AWS_ENDPOINT_URL_S3", "aws_endpoint", Text, false, AWS),
    // gcsfs's `token` is a key file's path, or "anon" / "google_default" (see
    // `gcs_token`); its `endpoint_url` is the emulator's or a proxy's base URL.
    alias(Gcs, "token", "google_service_account", Text, true, GCSFS),
    alias(Gcs, "endpoint_url", "google_base_url", Text, false, GCSFS),
    alias(
        Gcs,
        "google_service_account_path",
        "google_service_account",
        Text,
        false,
        OBJECT_STORE,
    ),
    alias(
        Azure,
        "account_name",
        "azure_storage_account_name",
        Text,
        false,
        ADLFS,
    ),
    alias(
        Azure,
        "account_key",
        "azure_storage_account_key",
        Text,
        true,
        ADLFS,
    ),
    alias(
        Azure,
        "sas_token",
        "azure_storage_sas_key",
        Text,
        true,
        ADLFS,
    ),
    alias(
        Azure,
        "client_id",
        "azure_storage_client_id",
        Text,
        false,
        ADLFS,
    ),
    alias(
        Azure,
        "client_secret",
        "azure_storage_client_secret",
        Text,
        true,
        ADLFS,
    ),
    alias(
        Azure,
        "tenant_id",
        "azure_storage_tenant_id",
        Text,
        false,
        ADLFS,
    ),
    alias(Azure, "anon", "azure_skip_signature", Boolean, false, ADLFS),
    alias(
        Azure,
        "token",
        "azure_storage_token",
        Text,
        true,
        OBJECT_STORE,
    ),
    alias(
        Azure,
        "endpoint_url",
        "azure_storage_endpoint",
        Text,
        false,
        OBJECT_STORE,
    ),
];

/// What `client_kwargs` (boto3's client arguments, which s3fs passes on) may hold: its name
/// there, and the connector's own.
pub const CLIENT_KWARGS: &[(&str, &str)] = &[
    ("region_name", "aws_region"),
    ("endpoint_url", "aws_endpoint"),
    ("aws_access_key_id", "aws_access_key_id"),
    ("aws_secret_access_key", "aws_secret_access_key"),
    ("aws_session_token", "aws_session_token"),
];

/// The fields of a Google service-account key file, which Streamlit's GCS tutorial puts in
/// the section (gcsfs gets them as its `token`): (name, secret). On GCS they make the key
/// object_store signs with; `type` reaches the plugin when it is a credential type
/// (`service_account`), not a connector kind.
pub const GCS_KEYS: &[(&str, bool)] = &[
    ("type", false),
    ("project_id", false),
    ("private_key_id", true),
    ("private_key", true),
    ("client_email", false),
    ("client_id", false),
    ("auth_uri", false),
    ("token_uri", false),
    ("auth_provider_x509_cert_url", false),
    ("client_x509_cert_url", false),
    ("universe_domain", false),
];

/// The key-file fields that say a section holds a Google service account.
const GCS_MARKS: &[&str] = &["private_key", "private_key_id", "client_email"];

/// adlfs's credential names that say a section is for Azure.
const AZURE_MARKS: &[&str] = &[
    "account_name",
    "account_key",
    "connection_string",
    "sas_token",
];

/// The protocol a section asks for: `protocol`, else the scheme of `root` (which
/// [`crate::location::Location`] checks against `protocol`), else the connection's name when
/// it is a protocol's (`s3`, `gcs`, `azure`, …), else the cloud whose credentials the
/// section holds (a service-account key: GCS; adlfs's account names and keys: Azure).
/// `None`: local files (or a root scheme nothing serves, which `Location` reports).
pub fn protocol(
    name: &str,
    protocol: Option<&str>,
    root: Option<&str>,
    config: &Map<String, Json>,
) -> Result<Option<Protocol>, PluginError> {
    let scheme = root.and_then(|r| r.split_once("://")).map(|(s, _)| s);
    if let Some(p) = protocol {
        return Protocol::parse(p).map(Some).ok_or_else(|| {
            PluginError::config(format!(
                "protocol = {p:?}: not supported; use {}",
                Protocol::NAMES
            ))
        });
    }
    if let Some(s) = scheme {
        return Ok(Protocol::parse(s));
    }
    if let Some(p) = Protocol::parse(name) {
        return Ok(Some(p));
    }
    let held = |keys: &[&'static str]| -> Vec<&'static str> {
        keys.iter()
            .copied()
            .filter(|k| config.contains_key(*k))
            .collect()
    };
    match (held(GCS_MARKS), held(AZURE_MARKS)) {
        (google, azure) if !google.is_empty() && !azure.is_empty() => {
            Err(PluginError::config(format!(
                "the section holds both Google service-account fields ({}) and Azure \
                 credentials ({}): set protocol = \"gcs\" or \"azure\"",
                google.join(", "),
                azure.join(", ")
            )))
        }
        (google, _) if !google.is_empty() => Ok(Some(Protocol::Gcs)),
        (_, azure) if !azure.is_empty() => Ok(Some(Protocol::Azure)),
        _ => Ok(None),
    }
}

/// gcsfs's `token` on GCS: a key file's path, or one of its words. Returns the own setting
/// it stands for, or `None` for the default credentials.
fn gcs_token(value: &str) -> Option<(&'static str, Json)> {
    match value {
        "anon" => Some(("google_skip_signature", Json::Bool(true))),
        "google_default" | "cloud" => None,
        path => Some(("google_service_account", Json::String(path.to_owned()))),
    }
}

/// The service-account key the section's key-file fields make, as object_store reads it
/// (the key file's JSON), with `written` for messages. Every field must be text, and
/// `private_key`, `private_key_id` and `client_email` must be there.
fn service_account_key(fields: Map<String, Json>) -> Result<String, PluginError> {
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    for (name, value) in &fields {
        if !value.is_string() {
            return Err(PluginError::config(format!(
                "{name}: a service-account field is text (a key file's field, as written \
                 there)"
            )));
        }
    }
    if let Some(Json::String(kind)) = fields.get("type")
        && !kind.is_empty()
        && kind != "service_account"
    {
        return Err(PluginError::config(format!(
            "type = {kind:?}: the key-file fields in a section make a service-account key \
             (type = \"service_account\"); for {kind} credentials give \
             google_application_credentials, the file's path"
        )));
    }
    let missing: Vec<&str> = GCS_MARKS
        .iter()
        .copied()
        .filter(|k| !fields.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(PluginError::config(format!(
            "the service-account fields ({}) lack {}: copy every field of the key file",
            names.join(", "),
            missing.join(", ")
        )));
    }
    Ok(Json::Object(fields).to_string())
}

/// Splits an Azure connection string (`AccountName=…;AccountKey=…;BlobEndpoint=…`) into the
/// own settings it stands for: (own key, its part's name, value). A part's value is never
/// named in an error: the string holds a key.
fn connection_string(text: &str) -> Result<Vec<(&'static str, String, Json)>, PluginError> {
    let mut parts: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (i, part) in text.split(';').map(str::trim).enumerate() {
        if part.is_empty() {
            continue;
        }
        let Some((name, value)) = part.split_once('=') else {
            return Err(PluginError::config(format!(
                "connection_string: part {} is not Name=value",
                i + 1
            )));
        };
        parts.insert(
            name.trim().to_ascii_lowercase(),
            (name.trim().to_owned(), value.trim().to_owned()),
        );
    }
    let mut out = Vec::new();
    let mut take = |part: &str, own: &'static str| {
        if let Some((name, value)) = parts.remove(part) {
            out.push((
                own,
                format!("connection_string's {name}"),
                Json::String(value),
            ));
        }
    };
    take("accountname", "azure_storage_account_name");
    take("accountkey", "azure_storage_account_key");
    take("sharedaccesssignature", "azure_storage_sas_key");
    take("blobendpoint", "azure_storage_endpoint");
    let protocol = parts.remove("defaultendpointsprotocol");
    let suffix = parts.remove("endpointsuffix");
    if let Some((name, value)) = parts.remove("usedevelopmentstorage") {
        out.push((
            "azure_storage_use_emulator",
            format!("connection_string's {name}"),
            Json::String(value.to_ascii_lowercase()),
        ));
    }
    // The other services' endpoints say nothing about blobs.
    for other in ["queueendpoint", "tableendpoint", "fileendpoint"] {
        parts.remove(other);
    }
    if let Some((name, _)) = parts.into_values().next() {
        return Err(PluginError::config(format!(
            "connection_string: {name} is not a part the files connector reads (it reads \
             AccountName, AccountKey, SharedAccessSignature, BlobEndpoint, \
             DefaultEndpointsProtocol, EndpointSuffix, UseDevelopmentStorage)"
        )));
    }
    // Without BlobEndpoint, the blob endpoint is made of the account, the protocol and the
    // suffix, as Azure's SDKs make it; the default (https, core.windows.net) is
    // object_store's own.
    let has_endpoint = out.iter().any(|(k, ..)| *k == "azure_storage_endpoint");
    let account = out
        .iter()
        .find(|(k, ..)| *k == "azure_storage_account_name")
        .and_then(|(_, _, v)| v.as_str().map(str::to_owned));
    if !has_endpoint
        && (suffix.is_some() || protocol.as_ref().is_some_and(|(_, p)| p != "https"))
        && let Some(account) = account
    {
        let scheme = protocol.map_or("https".to_owned(), |(_, p)| p);
        let suffix = suffix.map_or("core.windows.net".to_owned(), |(_, s)| s);
        out.push((
            "azure_storage_endpoint",
            "connection_string's DefaultEndpointsProtocol and EndpointSuffix".to_owned(),
            Json::String(format!("{scheme}://{account}.blob.{suffix}")),
        ));
    }
    Ok(out)
}

/// The section's store options under the connector's own names, for `protocol`. `own`
/// gives the type of each of them (`None`: not an option). An alias and the name it stands
/// for, or two aliases of one option, may both be given only with the same value. On GCS
/// the key-file fields make one `google_service_account_key`; on Azure a
/// `connection_string` gives the account, key, SAS token and endpoint it holds.
pub fn settings(
    protocol: Option<Protocol>,
    mut config: Map<String, Json>,
    own: impl Fn(&str) -> Option<KeyType>,
) -> Result<Vec<Setting>, PluginError> {
    let mut found: BTreeMap<String, Setting> = BTreeMap::new();
    let mut add = |key: &str, written: String, value: Json| -> Result<(), PluginError> {
        let Some(kind) = own(key) else {
            return Err(PluginError::config(format!(
                "unknown key {written:?} for a files connection"
            )));
        };
        let value = match (kind, value) {
            (_, Json::String(s)) => s,
            (KeyType::Duration, Json::Number(n)) => format!("{n}s"),
            (_, Json::Bool(b)) => b.to_string(),
            (_, other) => {
                return Err(PluginError::config(format!(
                    "{written} = {other}: expected text"
                )));
            }
        };
        let setting = Setting {
            key: key.to_owned(),
            written,
            value,
        };
        match found.get(key) {
            Some(first) if first.value != setting.value => {
                // The connector's own name first, if it is one of the two.
                let (mut a, mut b) = (&first.written, &setting.written);
                if b == key || (a != key && b < a) {
                    (a, b) = (b, a);
                }
                Err(PluginError::config(format!(
                    "{a} and {b} are both given, with different values, and are one setting \
                     ({key}): keep one"
                )))
            }
            Some(_) => Ok(()),
            None => {
                found.insert(key.to_owned(), setting);
                Ok(())
            }
        }
    };
    match protocol {
        Some(Protocol::Gcs) => {
            let mut fields = Map::new();
            for (name, _) in GCS_KEYS {
                if let Some(value) = config.remove(*name) {
                    fields.insert((*name).to_owned(), value);
                }
            }
            // gcsfs's `token` may also be the key's fields as a table.
            let token = match config.remove("token") {
                Some(Json::Object(table)) if fields.is_empty() => {
                    fields = table;
                    None
                }
                other => other,
            };
            if !fields.is_empty() {
                let key = service_account_key(fields)?;
                add(
                    "google_service_account_key",
                    "the service-account fields".to_owned(),
                    Json::String(key),
                )?;
            }
            match token {
                None => {}
                Some(Json::String(text)) => {
                    if let Some((key, value)) = gcs_token(&text) {
                        add(key, "token".to_owned(), value)?;
                    }
                }
                Some(_) => {
                    return Err(PluginError::config(
                        "token: gcsfs's token is a key file's path, \"anon\" or \
                         \"google_default\" (or the key file's fields, once)",
                    ));
                }
            }
        }
        Some(Protocol::Azure) => match config.remove("connection_string") {
            None => {}
            Some(Json::String(text)) => {
                for (key, written, value) in connection_string(&text)? {
                    add(key, written, value)?;
                }
            }
            Some(_) => return Err(PluginError::config("connection_string: expected text")),
        },
        _ => {}
    }
    for (written, value) in config {
        if written == "client_kwargs" {
            let Json::Object(table) = value else {
                return Err(PluginError::config(
                    "client_kwargs: expected a table, such as client_kwargs = { region_name = \
                     \"eu-west-1\" }",
                ));
            };
            for (name, value) in table {
                let Some((_, key)) = CLIENT_KWARGS.iter().find(|(n, _)| *n == name) else {
                    let read: Vec<&str> = CLIENT_KWARGS.iter().map(|(n, _)| *n).collect();
                    return Err(PluginError::config(format!(
                        "client_kwargs.{name}: not read by the files connector (it reads {} \
                         there)",
                        read.join(", ")
                    )));
                };
                add(key, format!("client_kwargs.{name}"), value)?;
            }
            continue;
        }
        let here = ALIASES
            .iter()
            .find(|a| a.name == written && Some(a.protocol) == protocol);
        if here.is_none() {
            if GCS_KEYS.iter().any(|(k, _)| *k == written) {
                return Err(PluginError::config(format!(
                    "{written} is a field of a Google service-account key, which applies to \
                     protocol = \"gcs\" only"
                )));
            }
            if written == "connection_string" {
                return Err(PluginError::config(
                    "connection_string applies to protocol = \"azure\" only",
                ));
            }
        }
        // A name of another protocol's: its own name there, which `Location` refuses here
        // naming the protocol it applies to.
        let key = here
            .or_else(|| ALIASES.iter().find(|a| a.name == written))
            .map_or(written.as_str(), |a| a.own)
            .to_owned();
        add(&key, written, value)?;
    }
    Ok(found.into_values().collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn table(json: Json) -> Map<String, Json> {
        match json {
            Json::Object(map) => map,
            _ => unreachable!("a table"),
        }
    }

    fn own(key: &str) -> Option<KeyType> {
        crate::OWN_KEYS
            .iter()
            .chain(crate::CLIENT_KEYS)
            .find(|(name, ..)| *name == key)
            .map(|(_, kind, ..)| *kind)
    }

    fn fold(json: Json) -> Result<Vec<(String, String, String)>, String> {
        fold_on(Protocol::S3, json)
    }

    fn fold_on(protocol: Protocol, json: Json) -> Result<Vec<(String, String, String)>, String> {
        settings(Some(protocol), table(json), own)
            .map(|s| s.into_iter().map(|s| (s.key, s.written, s.value)).collect())
            .map_err(|e| e.message().to_owned())
    }

    fn asked(name: &str, json: Json) -> Result<Option<Protocol>, String> {
        let mut config = table(json);
        let text = |v: Option<Json>| v.and_then(|v| v.as_str().map(str::to_owned));
        let protocol = text(config.remove("protocol"));
        let root = text(config.remove("root"));
        super::protocol(name, protocol.as_deref(), root.as_deref(), &config)
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn every_alias_names_an_own_option() {
        for alias in ALIASES {
            assert_eq!(own(alias.own), Some(alias.kind), "{}", alias.name);
        }
        for (name, key) in CLIENT_KWARGS {
            assert!(own(key).is_some(), "client_kwargs.{name}");
        }
    }

    #[test]
    fn filesconnection_names_fold_onto_the_own_ones() {
        let got = fold(json!({
            "key": "id",
            "secret": "s",
            "token": "t",
            "anon": true,
            "client_kwargs": { "region_name": "eu-west-1", "endpoint_url": "http://h:9" },
        }))
        .expect("fold");
        let want = [
            ("aws_access_key_id", "key", "id"),
            ("aws_endpoint", "client_kwargs.endpoint_url", "http://h:9"),
            ("aws_region", "client_kwargs.region_name", "eu-west-1"),
            ("aws_secret_access_key", "secret", "s"),
            ("aws_session_token", "token", "t"),
            ("aws_skip_signature", "anon", "true"),
        ];
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        assert_eq!(got, want);
        let got = fold(json!({
            "AWS_ACCESS_KEY_ID": "id",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "aws_region": "us-east-1",
        }))
        .expect("one value under three names");
        assert_eq!(got.len(), 2, "{got:?}");
    }

    #[test]
    fn an_alias_and_its_own_name_may_not_disagree() {
        for (json, a, b) in [
            (
                json!({"aws_access_key_id": "A1", "key": "B2"}),
                "aws_access_key_id",
                "key",
            ),
            (
                json!({"AWS_DEFAULT_REGION": "eu-west-1", "client_kwargs": {"region_name": "us-east-1"}}),
                "AWS_DEFAULT_REGION",
                "client_kwargs.region_name",
            ),
            (
                json!({"anon": true, "aws_skip_signature": false}),
                "aws_skip_signature",
                "anon",
            ),
        ] {
            let err = fold(json).expect_err(a);
            assert!(
                err.starts_with(&format!(
                    "{a} and {b} are both given, with different values"
                )),
                "{err}"
            );
            assert!(!err.contains("A1") && !err.contains("B2"), "{err}");
        }
        let err = fold(json!({"client_kwargs": {"verify": false}})).expect_err("verify");
        assert!(err.starts_with("client_kwargs.verify: not read"), "{err}");
        let err = fold(json!({"client_kwargs": "eu"})).expect_err("not a table");
        assert!(err.starts_with("client_kwargs: expected a table"), "{err}");
    }

    #[test]
    fn the_protocol_comes_from_protocol_then_root_then_name() {
        assert_eq!(
            asked("s3", json!({"root": "bucket/prefix"})),
            Ok(Some(Protocol::S3))
        );
        assert_eq!(asked("s3", json!({})), Ok(Some(Protocol::S3)));
        assert_eq!(asked("lake", json!({"root": "bucket/prefix"})), Ok(None));
        // A root URL says more than the name; `Location` checks it against `protocol`.
        assert_eq!(
            asked("s3", json!({"root": "https://h/d/"})),
            Ok(Some(Protocol::Http))
        );
        assert_eq!(
            asked("s3", json!({"protocol": "file", "root": "."})),
            Ok(Some(Protocol::File))
        );
        let err = asked("x", json!({"protocol": "sftp"})).expect_err("sftp");
        assert!(err.contains("protocol = \"sftp\": not supported"), "{err}");
    }

    #[test]
    fn gcs_and_azure_come_from_protocol_root_name_or_credentials() {
        for (name, section, want) in [
            ("gcs", json!({}), Some(Protocol::Gcs)),
            ("gs", json!({"root": "bucket/x"}), Some(Protocol::Gcs)),
            ("x", json!({"protocol": "gcs"}), Some(Protocol::Gcs)),
            ("x", json!({"root": "gs://b/p"}), Some(Protocol::Gcs)),
            ("x", json!({"root": "gcs://b/p"}), Some(Protocol::Gcs)),
            (
                "x",
                json!({"project_id": "p", "private_key": "k", "client_email": "e"}),
                Some(Protocol::Gcs),
            ),
            ("azure", json!({}), Some(Protocol::Azure)),
            ("abfs", json!({}), Some(Protocol::Azure)),
            ("x", json!({"protocol": "az"}), Some(Protocol::Azure)),
            ("x", json!({"root": "abfss://c/p"}), Some(Protocol::Azure)),
            (
                "x",
                json!({"account_name": "a", "account_key": "k"}),
                Some(Protocol::Azure),
            ),
            (
                "x",
                json!({"connection_string": "AccountName=a"}),
                Some(Protocol::Azure),
            ),
            // A client_id alone says nothing: both clouds have one.
            ("x", json!({"client_id": "c"}), None),
        ] {
            assert_eq!(asked(name, section.clone()), Ok(want), "{name} {section}");
        }
        let err = asked("x", json!({"private_key": "k", "account_key": "a"})).expect_err("both");
        assert!(err.contains("set protocol = \"gcs\" or \"azure\""), "{err}");
        assert!(!err.contains("\"k\"") && !err.contains("\"a\""), "{err}");
    }

    #[test]
    fn one_fsspec_name_means_what_its_protocol_says() {
        let got = fold_on(
            Protocol::Gcs,
            json!({"token": "/keys/sa.json", "endpoint_url": "http://h:1"}),
        )
        .expect("gcs");
        assert_eq!(
            got,
            [
                ("google_base_url", "endpoint_url", "http://h:1"),
                ("google_service_account", "token", "/keys/sa.json"),
            ]
            .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
        );
        let got = fold_on(Protocol::Gcs, json!({"token": "anon"})).expect("anon");
        assert_eq!(got[0].0, "google_skip_signature");
        assert!(
            fold_on(Protocol::Gcs, json!({"token": "google_default"}))
                .expect("adc")
                .is_empty()
        );
        let got = fold_on(
            Protocol::Azure,
            json!({"account_name": "acct", "account_key": "k", "token": "t", "anon": true}),
        )
        .expect("azure");
        let keys: Vec<&str> = got.iter().map(|(k, ..)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "azure_skip_signature",
                "azure_storage_account_key",
                "azure_storage_account_name",
                "azure_storage_token"
            ]
        );
        // Another protocol's name is its own name there, which `Location` refuses.
        let got = fold_on(Protocol::Http, json!({"token": "t"})).expect("http");
        assert_eq!(got[0].0, "aws_session_token");
        let err = fold_on(Protocol::S3, json!({"private_key": "k"})).expect_err("s3");
        assert!(err.contains("applies to protocol = \"gcs\" only"), "{err}");
        let err = fold_on(Protocol::Gcs, json!({"connection_string": "x"})).expect_err("gcs");
        assert!(
            err.contains("applies to protocol = \"azure\" only"),
            "{err}"
        );
    }

    #[test]
    fn the_key_file_fields_make_one_service_account_key() {
        let got = fold_on(
            Protocol::Gcs,
            json!({
                "type": "service_account",
                "project_id": "p",
                "private_key_id": "kid",
                "private_key": "PEM",
                "client_email": "sa@p.iam.gserviceaccount.com",
                "token_uri": "https://oauth2.googleapis.com/token",
            }),
        )
        .expect("key");
        assert_eq!(got.len(), 1, "{got:?}");
        let (key, written, value) = &got[0];
        assert_eq!(
            (key.as_str(), written.as_str()),
            ("google_service_account_key", "the service-account fields")
        );
        let json: Json = serde_json::from_str(value).expect("json");
        assert_eq!(json["private_key"], "PEM");
        assert_eq!(json["client_email"], "sa@p.iam.gserviceaccount.com");

        let err = fold_on(
            Protocol::Gcs,
            json!({"private_key": "S3CRET", "client_email": "e"}),
        )
        .expect_err("no key id");
        assert!(err.contains("lack private_key_id"), "{err}");
        assert!(!err.contains("S3CRET"), "{err}");
        let err = fold_on(
            Protocol::Gcs,
            json!({"type": "authorized_user", "private_key": "k", "private_key_id": "i", "client_email": "e"}),
        )
        .expect_err("user");
        assert!(err.contains("google_application_credentials"), "{err}");
        let err = fold_on(Protocol::Gcs, json!({"private_key": 7})).expect_err("number");
        assert!(
            err.starts_with("private_key: a service-account field is text"),
            "{err}"
        );
    }

    #[test]
    fn a_connection_string_gives_account_key_sas_and_endpoint() {
        let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
        let got = fold_on(
            Protocol::Azure,
            json!({"connection_string": format!(
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};\
                 BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
            )}),
        )
        .expect("azurite's");
        let want = [
            (
                "azure_storage_account_key",
                "connection_string's AccountKey",
                key,
            ),
            (
                "azure_storage_account_name",
                "connection_string's AccountName",
                "devstoreaccount1",
            ),
            (
                "azure_storage_endpoint",
                "connection_string's BlobEndpoint",
                "http://127.0.0.1:10000/devstoreaccount1",
            ),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
        assert_eq!(got, want);
        let got = fold_on(
            Protocol::Azure,
            json!({"connection_string": "AccountName=acct;SharedAccessSignature=sv=1&sig=x%3D;EndpointSuffix=core.chinacloudapi.cn"}),
        )
        .expect("sas");
        assert!(
            got.contains(&(
                "azure_storage_endpoint".to_owned(),
                "connection_string's DefaultEndpointsProtocol and EndpointSuffix".to_owned(),
                "https://acct.blob.core.chinacloudapi.cn".to_owned()
            )),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|(k, _, v)| k == "azure_storage_sas_key" && v == "sv=1&sig=x%3D")
        );
        // A key given twice, differently, names both places and neither value.
        let err = fold_on(
            Protocol::Azure,
            json!({"account_key": "K1", "connection_string": "AccountName=a;AccountKey=K2"}),
        )
        .expect_err("two keys");
        assert!(
            err.starts_with("account_key and connection_string's AccountKey are both given"),
            "{err}"
        );
        for (bad, says) in [
            ("AccountName=a;K2", "part 2 is not Name=value"),
            ("AccountName=a;Secret=K2", "Secret is not a part"),
        ] {
            let err = fold_on(Protocol::Azure, json!({"connection_string": bad})).expect_err(bad);
            assert!(err.contains(says) && !err.contains("K2"), "{err}");
        }
    }
}

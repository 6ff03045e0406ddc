//! FilesConnection's names. st-files-connection hands a Streamlit section to fsspec as it
//! stands, so the sections Streamlit apps hold use s3fs's option names (`key`, `secret`,
//! `token`, `endpoint_url`, `anon`, `client_kwargs = { region_name, endpoint_url }`) or the
//! AWS CLI's environment names (`AWS_ACCESS_KEY_ID`, `AWS_DEFAULT_REGION`, …). This module
//! maps them onto the connector's own names (object_store's), and finds the protocol a
//! section asks for the way FilesConnection does: its `protocol`, else the scheme of its
//! root, else the connection's name (`st.connection("s3", type=FilesConnection)`).
//!
//! Google Cloud Storage and Azure are recognized here only to be refused, in one line that
//! says what the section is: the connector does not serve them yet.

use std::collections::BTreeMap;

use plugboard_api::{KeyType, PluginError};
use serde_json::{Map, Value as Json};

use crate::location::{Protocol, Setting};

/// Another name for one of the connector's own options.
pub struct Alias {
    pub name: &'static str,
    /// The connector's own name for the option.
    pub own: &'static str,
    pub kind: KeyType,
    pub secret: bool,
    /// Whose name it is.
    pub from: &'static str,
}

const fn alias(
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
    }
}

const S3FS: &str = "s3fs";
const AWS: &str = "the AWS CLI's environment";

/// The top-level names Streamlit sections use for S3 options.
pub const ALIASES: &[Alias] = &[
    alias("key", "aws_access_key_id", KeyType::String, true, S3FS),
    alias(
        "secret",
        "aws_secret_access_key",
        KeyType::String,
        true,
        S3FS,
    ),
    alias("token", "aws_session_token", KeyType::String, true, S3FS),
    alias("endpoint_url", "aws_endpoint", KeyType::String, false, S3FS),
    alias("anon", "aws_skip_signature", KeyType::Boolean, false, S3FS),
    alias(
        "requester_pays",
        "aws_request_payer",
        KeyType::Boolean,
        false,
        S3FS,
    ),
    alias(
        "AWS_ACCESS_KEY_ID",
        "aws_access_key_id",
        KeyType::String,
        true,
        AWS,
    ),
    alias(
        "AWS_SECRET_ACCESS_KEY",
        "aws_secret_access_key",
        KeyType::String,
        true,
        AWS,
    ),
    alias(
        "AWS_SESSION_TOKEN",
        "aws_session_token",
        KeyType::String,
        true,
        AWS,
    ),
    alias(
        "AWS_DEFAULT_REGION",
        "aws_region",
        KeyType::String,
        false,
        AWS,
    ),
    alias("AWS_REGION", "aws_region", KeyType::String, false, AWS),
    alias(
        "AWS_ENDPOINT_URL",
        "aws_endpoint",
        KeyType::String,
        false,
        AWS,
    ),
    alias(
        "AWS_ENDPOINT_URL_S3",
        "aws_endpoint",
        KeyType::String,
        false,
        AWS,
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
/// the section (gcsfs gets them as its `token`): (name, secret). `type` reaches the plugin
/// when it is a credential type (`service_account`), not a connector kind.
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

/// adlfs's credential options for Azure: (name, secret). `client_id` is shared with the
/// Google key file, and counts for Azure when one of these is there.
pub const AZURE_KEYS: &[(&str, bool)] = &[
    ("account_name", false),
    ("account_key", true),
    ("connection_string", true),
    ("sas_token", true),
    ("tenant_id", false),
    ("client_secret", true),
];

/// A cloud store that fsspec serves and this connector does not, yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Gcs,
    Azure,
}

impl Cloud {
    /// The store an fsspec protocol (or FilesConnection connection name) stands for.
    pub fn of(protocol: &str) -> Option<Self> {
        match protocol.to_ascii_lowercase().as_str() {
            "gcs" | "gs" => Some(Self::Gcs),
            "azure" | "az" | "abfs" | "abfss" | "adl" => Some(Self::Azure),
            _ => None,
        }
    }

    /// The one-line refusal: what the section is, why it looks so, and what serves it.
    fn refusal(self, why: &str) -> PluginError {
        let (what, instead) = match self {
            Self::Gcs => (
                "Google Cloud Storage",
                "until it does, GCS's S3-compatible XML API reads as S3: protocol = \"s3\", \
                 endpoint_url = \"https://storage.googleapis.com\", and an HMAC key as key and \
                 secret",
            ),
            Self::Azure => (
                "Azure Blob Storage",
                "until it does, a public container's blobs read over HTTPS: root = \
                 \"https://ACCOUNT.blob.core.windows.net/CONTAINER/\"",
            ),
        };
        PluginError::unsupported(format!(
            "{what} ({why}) is not served yet by the files connector, which reads local files, \
             HTTP(S) and S3; {instead}"
        ))
    }
}

/// The protocol a section asks for: `protocol`, else the scheme of `root` (left to
/// [`crate::location::Location`], which also checks the two agree), else the connection's
/// name when it is a protocol's (`s3`, `http`, …). `None`: local files, or what the root
/// says. GCS and Azure are refused, whichever of these names them, and so is a section
/// holding their credentials.
pub fn protocol(
    name: &str,
    protocol: Option<&str>,
    root: Option<&str>,
    config: &Map<String, Json>,
) -> Result<Option<Protocol>, PluginError> {
    let scheme = root.and_then(|r| r.split_once("://")).map(|(s, _)| s);
    let asked = match (protocol, scheme) {
        (Some(p), _) => {
            if let Some(cloud) = Cloud::of(p) {
                return Err(cloud.refusal(&format!("protocol = {p:?}")));
            }
            Some(Protocol::parse(p).ok_or_else(|| {
                PluginError::config(format!(
                    "protocol = {p:?}: not supported; use file, http, https or s3"
                ))
            })?)
        }
        (None, Some(s)) => {
            if let Some(cloud) = Cloud::of(s) {
                let root = root.unwrap_or_default();
                return Err(cloud.refusal(&format!("root = {root:?}")));
            }
            None
        }
        (None, None) => {
            if let Some(cloud) = Cloud::of(name) {
                return Err(cloud.refusal(&format!("the connection's name {name:?}")));
            }
            Protocol::parse(name)
        }
    };
    let held = |keys: &'static [(&'static str, bool)]| -> Vec<&'static str> {
        keys.iter()
            .map(|(k, _)| *k)
            .filter(|k| config.contains_key(*k))
            .collect()
    };
    let azure = held(AZURE_KEYS);
    if !azure.is_empty() {
        let mut keys = azure;
        keys.extend(config.contains_key("client_id").then_some("client_id"));
        return Err(Cloud::Azure.refusal(&format!("its Azure keys {}", keys.join(", "))));
    }
    let google = held(GCS_KEYS);
    if !google.is_empty() {
        return Err(Cloud::Gcs.refusal(&format!(
            "its Google service-account fields {}",
            google.join(", ")
        )));
    }
    Ok(asked)
}

/// The section's store options under the connector's own names. `own` gives the type of
/// each of them (`None`: not an option). An alias and the name it stands for, or two
/// aliases of one option, may both be given only with the same value.
pub fn settings(
    config: Map<String, Json>,
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
        let key = ALIASES
            .iter()
            .find(|a| a.name == written)
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
        settings(table(json), own)
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
        // A root URL says more than the name; `Location` takes the protocol from it.
        assert_eq!(asked("s3", json!({"root": "https://h/d/"})), Ok(None));
        assert_eq!(
            asked("s3", json!({"protocol": "file", "root": "."})),
            Ok(Some(Protocol::File))
        );
        let err = asked("x", json!({"protocol": "sftp"})).expect_err("sftp");
        assert!(err.contains("protocol = \"sftp\": not supported"), "{err}");
    }

    #[test]
    fn gcs_and_azure_are_refused_saying_what_the_section_is() {
        for (name, section, what, why) in [
            (
                "gcs",
                json!({}),
                "Google Cloud Storage",
                "the connection's name \"gcs\"",
            ),
            (
                "gs",
                json!({"root": "bucket/x"}),
                "Google Cloud Storage",
                "name \"gs\"",
            ),
            (
                "x",
                json!({"protocol": "gcs"}),
                "Google Cloud Storage",
                "protocol = \"gcs\"",
            ),
            (
                "x",
                json!({"root": "gs://b/p"}),
                "Google Cloud Storage",
                "root = \"gs://b/p\"",
            ),
            (
                "x",
                json!({"project_id": "p", "private_key": "k", "client_email": "e"}),
                "Google Cloud Storage",
                "fields project_id, private_key, client_email",
            ),
            ("azure", json!({}), "Azure Blob Storage", "name \"azure\""),
            ("abfs", json!({}), "Azure Blob Storage", "name \"abfs\""),
            (
                "x",
                json!({"protocol": "az"}),
                "Azure Blob Storage",
                "protocol = \"az\"",
            ),
            (
                "x",
                json!({"root": "abfs://c/p"}),
                "Azure Blob Storage",
                "root = \"abfs://c/p\"",
            ),
            (
                "x",
                json!({"account_name": "a", "account_key": "k"}),
                "Azure Blob Storage",
                "keys account_name, account_key",
            ),
        ] {
            let err = asked(name, section).expect_err(why);
            assert!(
                err.starts_with(what)
                    && err.contains(why)
                    && err.contains("is not served yet by the files connector")
                    && !err.contains('\n'),
                "{why}: {err}"
            );
        }
    }
}

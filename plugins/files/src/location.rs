//! Where files are: a local folder, an HTTP(S) server, an S3 or Google Cloud Storage bucket
//! or an Azure Blob Storage container, and the rules that keep a path inside the
//! connection's `root`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path as Key;
use object_store::{ClientConfigKey, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use plugboard_api::{PluginError, Target};
use url::Url;

use crate::format::Input;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    File,
    Http,
    S3,
    Gcs,
    Azure,
}

impl Protocol {
    /// The names `protocol` takes, for messages.
    pub const NAMES: &str = "file, http, https, s3, gcs (gs) or azure (az, abfs, abfss)";

    /// A protocol by its fsspec name or URL scheme.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "file" | "local" => Self::File,
            "http" | "https" => Self::Http,
            "s3" | "s3a" => Self::S3,
            "gs" | "gcs" => Self::Gcs,
            "az" | "abfs" | "abfss" | "azure" | "adl" => Self::Azure,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Http => "http(s)",
            Self::S3 => "s3",
            Self::Gcs => "gcs",
            Self::Azure => "azure",
        }
    }

    /// The scheme of this protocol's store names (`s3://bucket`, `gs://bucket`,
    /// `az://container`), for a cloud store.
    fn scheme(self) -> Option<&'static str> {
        match self {
            Self::S3 => Some("s3"),
            Self::Gcs => Some("gs"),
            Self::Azure => Some("az"),
            Self::File | Self::Http => None,
        }
    }

    /// The protocol whose object_store options start as `key` does (`aws_`, `google_`,
    /// `azure_`).
    fn of_key(key: &str) -> Option<Self> {
        [
            ("aws_", Self::S3),
            ("google_", Self::Gcs),
            ("azure_", Self::Azure),
        ]
        .into_iter()
        .find(|(prefix, _)| key.starts_with(prefix))
        .map(|(_, p)| p)
    }
}

/// One object_store option: its name, the name the section gave it under (an alias such as
/// `key` or `client_kwargs.region_name`, for messages), and its value as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub written: String,
    pub value: String,
}

/// One file to read: the name it is reported by, and where its bytes are.
pub struct Source {
    pub name: String,
    /// Found by listing a folder rather than named or matched by a glob.
    pub listed: bool,
    kind: SourceKind,
}

enum SourceKind {
    Local(PathBuf),
    Remote(Arc<dyn ObjectStore>, Key),
}

enum Root {
    /// Canonical: symlinks resolved, so that a file's canonical path can be checked against it.
    Local(PathBuf),
    /// The store (`s3://bucket`, `gs://bucket`, `az://container`, `https://host:port`) and
    /// the key prefix under it.
    Remote { store: String, prefix: String },
}

/// A connection's place: protocol, root, and the object stores it has built.
pub struct Location {
    protocol: Protocol,
    root: Option<Root>,
    /// object_store settings (`aws_region`, `google_base_url`, `allow_http`, ...), checked
    /// when a store is built.
    options: Vec<Setting>,
    bearer_token: Option<String>,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Location {
    pub fn new(
        protocol: Option<Protocol>,
        root: Option<&str>,
        options: Vec<Setting>,
        bearer_token: Option<String>,
    ) -> Result<Self, PluginError> {
        let root_url = root.filter(|r| r.contains("://")).map(|r| {
            Url::parse(r).map_err(|e| PluginError::config(format!("root = {r:?}: not a URL: {e}")))
        });
        let root_url = root_url.transpose()?;
        let implied = match &root_url {
            Some(url) => Some(Protocol::parse(url.scheme()).ok_or_else(|| {
                PluginError::config(format!(
                    "root = {:?}: the {} scheme is not supported; use file, http, https, s3, gs \
                     or az (abfs, abfss)",
                    url.as_str(),
                    url.scheme()
                ))
            })?),
            None => None,
        };
        let protocol = match (protocol, implied) {
            (Some(p), Some(i)) if p != i => {
                return Err(PluginError::config(format!(
                    "protocol = {:?} but root is a {} URL",
                    p.name(),
                    i.name()
                )));
            }
            (p, i) => p.or(i).unwrap_or(Protocol::File),
        };
        if protocol == Protocol::File
            && let Some(setting) = options.first()
        {
            return Err(PluginError::config(format!(
                "{} applies to remote stores; this connection reads local files \
                 (set protocol or a root URL)",
                setting.written
            )));
        }
        for setting in &options {
            if let Some(wants) = Protocol::of_key(&setting.key)
                && wants != protocol
            {
                return Err(PluginError::config(format!(
                    "{} applies to protocol = \"{}\" only",
                    setting.written,
                    wants.name()
                )));
            }
        }
        check_credentials(&options)?;
        let root = match (root, root_url) {
            (None, _) => None,
            (Some(_), Some(url)) if url.scheme() == "file" => {
                Some(local_root(&url.to_file_path().map_err(|()| {
                    PluginError::config(format!("root = {:?}: not a local path", url.as_str()))
                })?)?)
            }
            (Some(_), Some(url)) => {
                let (store, prefix) = split_url(&url)?;
                Some(Root::Remote { store, prefix })
            }
            (Some(_), None) if protocol == Protocol::File => {
                Some(local_root(Path::new(root.unwrap_or_default()))?)
            }
            (Some(r), None) if protocol.scheme().is_some() => {
                let (store, prefix) = split_url(&bare_url(protocol, r)?)?;
                Some(Root::Remote { store, prefix })
            }
            (Some(r), None) => {
                return Err(PluginError::config(format!(
                    "root = {r:?}: an http(s) root must be a URL (https://host/folder/)"
                )));
            }
        };
        let runtime = match protocol {
            Protocol::File => None,
            _ => Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("plugboard-files")
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        PluginError::internal(format!("cannot start an I/O runtime: {e}"))
                    })?,
            ),
        };
        let location = Location {
            protocol,
            root,
            options,
            bearer_token,
            stores: Mutex::new(HashMap::new()),
            runtime,
        };
        // Build the root's store now, so that a bad option is reported by connect.
        if let Some(Root::Remote { store, .. }) = &location.root {
            location.store(store)?;
        }
        Ok(location)
    }

    /// The files a target names: one file, every file a glob matches, or every file under a
    /// folder (hidden and `_`-prefixed ones skipped), sorted by name.
    pub fn resolve(&self, target: &str) -> Result<Vec<Source>, PluginError> {
        let target = target.trim();
        if target.is_empty() {
            return Err(PluginError::query(
                "no path given: read a file, a folder or a glob",
            ));
        }
        match self.protocol {
            Protocol::File => self.resolve_local(target),
            _ => self.resolve_remote(target),
        }
    }

    fn resolve_local(&self, target: &str) -> Result<Vec<Source>, PluginError> {
        let target = target.strip_prefix("file://").unwrap_or(target);
        let (path, root) = match &self.root {
            Some(Root::Local(root)) => (root.join(confine(target)?), Some(root)),
            _ => (PathBuf::from(target), None),
        };
        let shown = |p: &Path| match root {
            Some(root) => p.strip_prefix(root).unwrap_or(p).display().to_string(),
            None => p.display().to_string(),
        };
        let folder = !has_glob(target) && path.is_dir();
        let paths = if has_glob(target) {
            let pattern = path.to_string_lossy().into_owned();
            let options = glob::MatchOptions {
                require_literal_leading_dot: true,
                ..glob::MatchOptions::new()
            };
            let matches = glob::glob_with(&pattern, options)
                .map_err(|e| PluginError::query(format!("{target}: not a valid glob: {e}")))?;
            let mut files: Vec<PathBuf> = matches
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(PluginError::query(format!("{target}: no files match")));
            }
            files
        } else if path.is_dir() {
            let mut files = Vec::new();
            walk(&path, &mut files).map_err(|e| {
                PluginError::query(format!("{target}: cannot list the folder: {e}"))
            })?;
            files.sort();
            if files.is_empty() {
                return Err(PluginError::query(format!(
                    "{target}: the folder holds no files"
                )));
            }
            files
        } else if path.exists() {
            vec![path]
        } else {
            return Err(PluginError::query(format!("{target}: file not found")));
        };
        paths
            .into_iter()
            .map(|path| {
                if let Some(root) = root {
                    let real = path.canonicalize().map_err(|e| {
                        PluginError::query(format!("{}: cannot open: {e}", shown(&path)))
                    })?;
                    if !real.starts_with(root) {
                        return Err(PluginError::query(format!(
                            "{}: refused: it leads outside the connection's root (to {})",
                            shown(&path),
                            real.display()
                        )));
                    }
                }
                Ok(Source {
                    name: shown(&path),
                    listed: folder,
                    kind: SourceKind::Local(path),
                })
            })
            .collect()
    }

    fn resolve_remote(&self, target: &str) -> Result<Vec<Source>, PluginError> {
        let (store_name, key) = if target.contains("://") {
            let url = Url::parse(target)
                .map_err(|e| PluginError::query(format!("{target}: not a URL: {e}")))?;
            if Protocol::parse(url.scheme()) != Some(self.protocol) {
                return Err(PluginError::query(format!(
                    "{target}: this connection reads {} paths, not {} URLs",
                    self.protocol.name(),
                    url.scheme()
                )));
            }
            let (store, key) = split_url(&url)?;
            match &self.root {
                Some(Root::Remote {
                    store: root,
                    prefix,
                }) => {
                    let inside = store == *root
                        && (prefix.is_empty()
                            || key == *prefix
                            || key.starts_with(&format!("{prefix}/")));
                    if !inside {
                        return Err(PluginError::query(format!(
                            "{target}: refused: it is outside the connection's root"
                        )));
                    }
                    let rest = key[prefix.len()..].trim_start_matches('/');
                    (store, join(prefix, &confine(rest)?))
                }
                _ => (store, key),
            }
        } else {
            match &self.root {
                Some(Root::Remote { store, prefix }) => {
                    (store.clone(), join(prefix, &confine(target)?))
                }
                _ if self.protocol.scheme().is_some() => {
                    let path = confine(target)?;
                    let (bucket, key) = path.split_once('/').unwrap_or((&path, ""));
                    let scheme = self.protocol.scheme().unwrap_or_default();
                    (format!("{scheme}://{bucket}"), key.to_string())
                }
                _ => {
                    return Err(PluginError::query(format!(
                        "{target}: give a full URL, or set the connection's root to a URL"
                    )));
                }
            }
        };
        let store = self.store(&store_name)?;
        let shown = |key: &str| format!("{store_name}/{key}");
        let mut folder = false;
        let keys = if has_glob(&key) {
            let pattern = glob::Pattern::new(&key)
                .map_err(|e| PluginError::query(format!("{target}: not a valid glob: {e}")))?;
            let fixed: Vec<&str> = key.split('/').take_while(|part| !has_glob(part)).collect();
            let options = glob::MatchOptions {
                require_literal_separator: true,
                require_literal_leading_dot: true,
                ..glob::MatchOptions::new()
            };
            let keys: Vec<String> = self
                .list(&store, target, &fixed.join("/"))?
                .into_iter()
                .filter(|k| pattern.matches_with(k, options))
                .collect();
            if keys.is_empty() {
                return Err(PluginError::query(format!("{target}: no files match")));
            }
            keys
        } else if key.is_empty()
            || key.ends_with('/')
            || self.is_folder(&store, &shown(&key), &key)?
        {
            let keys: Vec<String> = self
                .list(&store, target, key.trim_end_matches('/'))?
                .into_iter()
                .filter(|k| !hidden(k))
                .collect();
            if keys.is_empty() {
                return Err(PluginError::query(format!(
                    "{target}: the folder holds no files"
                )));
            }
            folder = true;
            keys
        } else {
            vec![key]
        };
        Ok(keys
            .into_iter()
            .map(|key| Source {
                name: shown(&key),
                listed: folder,
                kind: SourceKind::Remote(store.clone(), Key::from(key.as_str())),
            })
            .collect())
    }

    /// Lists every key under a prefix (a folder, recursively), sorted.
    fn list(
        &self,
        store: &Arc<dyn ObjectStore>,
        target: &str,
        prefix: &str,
    ) -> Result<Vec<String>, PluginError> {
        if self.protocol == Protocol::Http {
            return Err(PluginError::unsupported(format!(
                "{target}: an HTTP server cannot be listed; name each file (globs and folders \
                 need s3, gcs, azure or local files)"
            )));
        }
        let prefix = (!prefix.is_empty()).then(|| Key::from(prefix));
        let listing = self.block_on(store.list(prefix.as_ref()).try_collect::<Vec<_>>());
        let mut keys: Vec<String> = listing
            .map_err(|e| remote_error(target, e))?
            .into_iter()
            .map(|meta| meta.location.to_string())
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Whether a bucket's key that names no object is a folder of objects.
    fn is_folder(
        &self,
        store: &Arc<dyn ObjectStore>,
        target: &str,
        key: &str,
    ) -> Result<bool, PluginError> {
        if self.protocol.scheme().is_none() {
            return Ok(false);
        }
        match self.block_on(store.head(&Key::from(key))) {
            Ok(_) => Ok(false),
            Err(object_store::Error::NotFound { .. }) => {
                let under = self.list(store, target, key)?;
                if under.is_empty() {
                    Err(PluginError::query(format!("{target}: file not found")))
                } else {
                    Ok(true)
                }
            }
            Err(e) => Err(remote_error(target, e)),
        }
    }

    /// Opens the sources: local files as handles, remote ones fetched, eight at a time.
    pub fn open(&self, sources: Vec<Source>) -> Result<Vec<(String, Input)>, PluginError> {
        let remote: Vec<(String, Arc<dyn ObjectStore>, Key)> = sources
            .iter()
            .filter_map(|s| match &s.kind {
                SourceKind::Remote(store, key) => {
                    Some((s.name.clone(), store.clone(), key.clone()))
                }
                SourceKind::Local(_) => None,
            })
            .collect();
        let mut fetched = if remote.is_empty() {
            Vec::new()
        } else {
            self.block_on(
                futures::stream::iter(remote)
                    .map(|(name, store, key)| async move {
                        let bytes = match store.get(&key).await {
                            Ok(got) => got.bytes().await,
                            Err(e) => Err(e),
                        };
                        bytes.map_err(|e| remote_error(&name, e))
                    })
                    .buffered(8)
                    .collect::<Vec<_>>(),
            )
        }
        .into_iter();
        sources
            .into_iter()
            .map(|source| {
                let input = match source.kind {
                    SourceKind::Local(path) => {
                        Input::File(std::fs::File::open(&path).map_err(|e| {
                            PluginError::query(format!("{}: cannot open: {e}", source.name))
                        })?)
                    }
                    SourceKind::Remote(..) => {
                        Input::Bytes(fetched.next().ok_or_else(|| {
                            PluginError::internal("a fetched file went missing")
                        })??)
                    }
                };
                Ok((source.name, input))
            })
            .collect()
    }

    /// What this location reads, for the host's cache keys: the protocol; the root (a
    /// canonical folder, or a store and key prefix); for local files without a root, the
    /// working directory relative paths resolve against; and the settings that choose
    /// which server and bucket answer (S3's endpoint, region and addressing style, GCS's
    /// base URL, Azure's account, endpoint and emulator). Never a key, token or proxy URL;
    /// timeouts and TLS checks do not change what is read.
    pub fn target(&self) -> Target {
        let protocol = match self.protocol {
            Protocol::File => "file",
            Protocol::Http => "http",
            Protocol::S3 => "s3",
            Protocol::Gcs => "gcs",
            Protocol::Azure => "azure",
        };
        let mut target = Target::new().with("protocol", protocol);
        match &self.root {
            Some(Root::Local(root)) => target.set("root", root.to_string_lossy().into_owned()),
            Some(Root::Remote { store, prefix }) => {
                target.set("store", store.clone());
                target.set("prefix", prefix.clone());
            }
            None if self.protocol == Protocol::File => {
                let cwd = std::env::current_dir().and_then(|d| d.canonicalize());
                target.set("cwd", cwd.ok().map(|d| d.to_string_lossy().into_owned()));
            }
            None => {}
        }
        for Setting { key, value, .. } in &self.options {
            if matches!(
                key.as_str(),
                "aws_endpoint"
                    | "aws_region"
                    | "aws_virtual_hosted_style_request"
                    | "google_base_url"
                    | "azure_storage_account_name"
                    | "azure_storage_endpoint"
                    | "azure_storage_use_emulator"
            ) {
                target.set(key.clone(), value.clone());
            }
        }
        target
    }

    /// A cheap check that the root is there.
    pub fn ping(&self) -> Result<(), PluginError> {
        match &self.root {
            Some(Root::Local(root)) if !root.is_dir() => Err(PluginError::connect(format!(
                "root {} is no longer a folder",
                root.display()
            ))),
            _ => Ok(()),
        }
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime
            .as_ref()
            .expect("remote protocols have a runtime")
            .block_on(future)
    }

    fn store(&self, name: &str) -> Result<Arc<dyn ObjectStore>, PluginError> {
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = stores.get(name) {
            return Ok(store.clone());
        }
        // An http:// URL written in the section (the root, the endpoint) or read is consent
        // to plain HTTP; object_store would otherwise refuse it.
        let plain_http = name.starts_with("http://")
            || self.options.iter().any(|s| {
                matches!(
                    s.key.as_str(),
                    "aws_endpoint" | "google_base_url" | "azure_storage_endpoint"
                ) && s.value.starts_with("http://")
            });
        let mut client = ClientOptions::new().with_allow_http(plain_http);
        let mut own = Vec::new();
        for setting in &self.options {
            match setting.key.parse::<ClientConfigKey>() {
                Ok(k) => client = client.with_config(k, &setting.value),
                Err(_) => own.push(setting),
            }
        }
        if let Some(token) = &self.bearer_token {
            let mut headers = http::HeaderMap::new();
            let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| PluginError::config("bearer_token: not valid in an HTTP header"))?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
            client = client.with_default_headers(headers);
        }
        // A refused connection fails in seconds, not after object_store's default 3 minutes.
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: std::time::Duration::from_secs(15),
            ..RetryConfig::default()
        };
        let built: object_store::Result<Arc<dyn ObjectStore>> = match name.split_once("://") {
            Some(("s3", bucket)) => {
                check_bucket(Protocol::S3, bucket)?;
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_client_options(client)
                    .with_retry(retry);
                for setting in own {
                    let k = setting.key.parse::<AmazonS3ConfigKey>().map_err(|_| {
                        PluginError::config(format!(
                            "{}: not an object_store S3 option",
                            setting.written
                        ))
                    })?;
                    builder = builder.with_config(k, &setting.value);
                }
                builder.build().map(|s| Arc::new(s) as _)
            }
            Some(("gs", bucket)) => {
                check_bucket(Protocol::Gcs, bucket)?;
                let mut builder = GoogleCloudStorageBuilder::new()
                    .with_bucket_name(bucket)
                    .with_client_options(client)
                    .with_retry(retry);
                for setting in own {
                    let k = setting.key.parse::<GoogleConfigKey>().map_err(|_| {
                        PluginError::config(format!(
                            "{}: not an object_store GCS option",
                            setting.written
                        ))
                    })?;
                    builder = builder.with_config(k, &setting.value);
                }
                builder.build().map(|s| Arc::new(s) as _)
            }
            Some((scheme, container)) if Protocol::parse(scheme) == Some(Protocol::Azure) => {
                let mut builder = MicrosoftAzureBuilder::new();
                // `abfss://container@account.dfs.core.windows.net` names the account too.
                builder = match container.split_once('@') {
                    Some((container, _)) => {
                        check_bucket(Protocol::Azure, container)?;
                        builder.with_url(name)
                    }
                    None => {
                        check_bucket(Protocol::Azure, container)?;
                        builder.with_container_name(container)
                    }
                };
                builder = builder.with_client_options(client).with_retry(retry);
                for setting in own {
                    let k = setting.key.parse::<AzureConfigKey>().map_err(|_| {
                        PluginError::config(format!(
                            "{}: not an object_store Azure option",
                            setting.written
                        ))
                    })?;
                    builder = builder.with_config(k, &setting.value);
                }
                builder.build().map(|s| Arc::new(s) as _)
            }
            _ => HttpBuilder::new()
                .with_url(name)
                .with_client_options(client)
                .with_retry(retry)
                .build()
                .map(|s| Arc::new(s) as _),
        };
        let store = built.map_err(|e| {
            // Name the credentials it was given: most set-up failures are theirs.
            let given: Vec<&str> = self
                .options
                .iter()
                .filter(|s| CREDENTIALS.contains(&s.key.as_str()))
                .map(|s| s.written.as_str())
                .collect();
            let with = if given.is_empty() {
                String::new()
            } else {
                format!(" with {}", given.join(", "))
            };
            PluginError::config(format!(
                "cannot set up {name}{with}: {}",
                one_line(&e.to_string())
            ))
        })?;
        stores.insert(name.to_string(), store.clone());
        Ok(store)
    }
}

/// The settings that are credentials, named when a store cannot be set up with them.
const CREDENTIALS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "google_service_account",
    "google_service_account_key",
    "google_application_credentials",
    "azure_storage_account_key",
    "azure_storage_sas_key",
    "azure_storage_token",
    "azure_storage_client_secret",
];

fn local_root(root: &Path) -> Result<Root, PluginError> {
    let canonical = root.canonicalize().map_err(|e| {
        PluginError::config(format!("root = {:?}: {e}", root.display().to_string()))
    })?;
    if !canonical.is_dir() {
        return Err(PluginError::config(format!(
            "root = {:?}: not a folder",
            root.display().to_string()
        )));
    }
    Ok(Root::Local(canonical))
}

/// A bucket (container) name by its store's rules: S3's 3 to 63 lowercase letters, digits,
/// dots and hyphens; GCS's also underscores, and up to 222 with dots; Azure's 3 to 63
/// lowercase letters, digits and hyphens. Each starts and ends with a letter or digit.
/// Anything else is refused here, before object_store would build a request URL from it
/// (an invalid one is a panic there for S3).
fn check_bucket(protocol: Protocol, bucket: &str) -> Result<(), PluginError> {
    let (len, extra, what): (std::ops::RangeInclusive<usize>, &[u8], &str) = match protocol {
        Protocol::Gcs => (
            3..=222,
            b".-_",
            "a GCS bucket name (3 to 63 lowercase letters, digits, dots, hyphens and underscores)",
        ),
        Protocol::Azure => (
            3..=63,
            b"-",
            "an Azure container name (3 to 63 lowercase letters, digits and hyphens)",
        ),
        _ => (
            3..=63,
            b".-",
            "an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)",
        ),
    };
    let ok = len.contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
        && bucket
            .bytes()
            .next()
            .zip(bucket.bytes().last())
            .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(PluginError::query(format!(
            "{bucket:?} is not {what}; read bucket/key, or set the connection's root"
        )))
    }
}

/// `bucket/prefix` (a cloud root given without its scheme) as a URL.
fn bare_url(protocol: Protocol, root: &str) -> Result<Url, PluginError> {
    let scheme = protocol.scheme().unwrap_or("s3");
    Url::parse(&format!("{scheme}://{}", root.trim_start_matches('/')))
        .map_err(|e| PluginError::config(format!("root = {root:?}: not a bucket/prefix: {e}")))
}

/// A URL as its store and the key under it. A cloud store is named by its protocol's scheme
/// (`s3://bucket` for s3a:// too, `gs://bucket` for gcs://, `az://container` for abfs://),
/// so that one bucket is one store and a root compares equal however it was written;
/// `abfss://container@account.dfs.core.windows.net` keeps its account. A server is
/// `http://host:port`.
fn split_url(url: &Url) -> Result<(String, String), PluginError> {
    let host = url
        .host_str()
        .ok_or_else(|| PluginError::query(format!("{url}: the URL names no host or bucket")))?;
    let scheme = Protocol::parse(url.scheme())
        .and_then(Protocol::scheme)
        .unwrap_or(url.scheme());
    let store = match (url.port(), url.username()) {
        (_, user) if !user.is_empty() && scheme == "az" => {
            format!("{}://{user}@{host}", url.scheme())
        }
        (Some(port), _) => format!("{scheme}://{host}:{port}"),
        (None, _) => format!("{scheme}://{host}"),
    };
    let key = Key::from_url_path(url.path())
        .map_err(|e| PluginError::query(format!("{url}: {e}")))?
        .to_string();
    Ok((store, key))
}

/// Credentials given twice over: object_store would take one silently, or refuse in its
/// own words.
fn check_credentials(options: &[Setting]) -> Result<(), PluginError> {
    let given = |key: &str| options.iter().find(|s| s.key == key);
    // object_store joins paths onto these; a URL that cannot take a path (`host:port`
    // without a scheme parses as one) would be a panic there, at the first read.
    for key in ["google_base_url", "azure_storage_endpoint"] {
        if let Some(setting) = given(key) {
            let ok = Url::parse(&setting.value).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base() && u.has_host()
            });
            if !ok {
                return Err(PluginError::config(format!(
                    "{} = {:?}: not an http(s) URL (http://HOST:PORT/…)",
                    setting.written, setting.value
                )));
            }
        }
    }
    if let (Some(path), Some(key)) = (
        given("google_service_account"),
        given("google_service_account_key"),
    ) {
        return Err(PluginError::config(format!(
            "{} and {} both give a service-account key: keep one",
            path.written, key.written
        )));
    }
    if let (Some(emulator), Some(endpoint)) = (
        given("azure_storage_use_emulator"),
        given("azure_storage_endpoint"),
    ) && emulator.value == "true"
    {
        return Err(PluginError::config(format!(
            "{} and {} are both given: the emulator setting reads Azurite at \
             http://127.0.0.1:10000 (or $AZURITE_BLOB_STORAGE_URL) and ignores the endpoint; \
             for Azurite elsewhere, drop it and give the endpoint \
             (http://HOST:PORT/devstoreaccount1) with the account name and key",
            emulator.written, endpoint.written
        )));
    }
    Ok(())
}

/// A relative path, normalized, that cannot leave the folder it is joined to.
fn confine(path: &str) -> Result<String, PluginError> {
    let escape = || {
        PluginError::query(format!(
            "{path}: refused: paths are read under the connection's root and may not leave it"
        ))
    };
    if path.starts_with('/') || path.starts_with('\\') || Path::new(path).is_absolute() {
        return Err(escape());
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(escape)?;
            }
            _ => parts.push(part),
        }
    }
    let mut joined = parts.join("/");
    if path.ends_with('/') && !joined.is_empty() {
        joined.push('/');
    }
    Ok(joined)
}

fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (false, true) => format!("{prefix}/"),
        (false, false) => format!("{prefix}/{rest}"),
    }
}

fn has_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// `.hidden` and `_SUCCESS`-style files that a folder read skips.
fn hidden(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with(['.', '_']))
}

fn walk(folder: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if hidden(&path.file_name().unwrap_or_default().to_string_lossy()) {
            continue;
        }
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

fn remote_error(name: &str, error: object_store::Error) -> PluginError {
    let text = one_line(&error.to_string());
    // object_store's Azure listing reports a refusal as a generic error carrying the
    // status; a refusal is a refusal, whichever call met it.
    let refused = text.contains("status code: 401") || text.contains("status code: 403");
    match error {
        object_store::Error::NotFound { .. } => {
            PluginError::query(format!("{name}: file not found"))
        }
        object_store::Error::Unauthenticated { .. }
        | object_store::Error::PermissionDenied { .. } => {
            PluginError::auth(format!("{name}: access denied: {text}"))
        }
        _ if refused => PluginError::auth(format!("{name}: access denied: {text}")),
        _ => PluginError::connect(format!("{name}: {text}")),
    }
}

/// An object_store message on one line, with every URL's query string cut: an Azure SAS
/// token travels there (`…?sv=…&sig=…`), and so would a signed URL's signature.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, url) = rest.split_at(at);
        out.push_str(before);
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | '<'))
            .unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        match url.split_once('?') {
            Some((path, _)) => {
                out.push_str(path);
                out.push_str("?…");
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confine_keeps_paths_inside() {
        assert_eq!(confine("a/b.csv").ok().as_deref(), Some("a/b.csv"));
        assert_eq!(confine("./a//b/../c.csv").ok().as_deref(), Some("a/c.csv"));
        assert_eq!(confine("trips/").ok().as_deref(), Some("trips/"));
        for escape in [
            "../x.csv",
            "a/../../x.csv",
            "/etc/passwd",
            "..",
            "a\\..\\..\\x",
            "*/../../x",
        ] {
            let err = confine(escape).expect_err(escape);
            assert!(
                err.message().contains("refused"),
                "{escape}: {}",
                err.message()
            );
        }
    }

    #[test]
    fn targets_name_the_place_and_never_a_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = Location::new(None, dir.path().to_str(), Vec::new(), None).expect("local");
        let canonical = dir.path().canonicalize().expect("canonical");
        assert_eq!(
            local.target().get("root"),
            Some(&serde_json::json!(canonical.to_string_lossy()))
        );
        let s3 = Location::new(
            None,
            Some("s3://trips/2024"),
            [
                ("aws_region", "eu-west-1"),
                ("aws_endpoint", "http://127.0.0.1:9"),
                ("aws_secret_access_key", "very-secret"),
                ("aws_access_key_id", "AKIDSECRET"),
            ]
            .into_iter()
            .map(|(key, value)| Setting {
                key: key.into(),
                written: key.into(),
                value: value.into(),
            })
            .collect(),
            Some("bearer-secret".into()),
        )
        .expect("s3");
        let text = s3.target().to_json();
        assert_eq!(
            text,
            r#"{"aws_endpoint":"http://127.0.0.1:9","aws_region":"eu-west-1","prefix":"2024","protocol":"s3","store":"s3://trips"}"#
        );
        let rootless = Location::new(None, None, Vec::new(), None).expect("no root");
        assert!(
            rootless.target().get("cwd").is_some(),
            "relative paths resolve there"
        );
    }

    #[test]
    fn urls_split_into_store_and_key() {
        assert!(check_bucket(Protocol::S3, "my-bucket.v2").is_ok());
        assert!(check_bucket(Protocol::Gcs, "my_bucket.v2").is_ok());
        assert!(check_bucket(Protocol::Azure, "my-container").is_ok());
        for (protocol, bad) in [
            (Protocol::Gcs, "Bucket"),
            (Protocol::Azure, "my.container"),
            (Protocol::Azure, "my_container"),
        ] {
            let e = check_bucket(protocol, bad).expect_err(bad);
            assert!(e.message().contains("is not a"), "{e}");
        }
        for bad in [
            "SELECT 1",
            "ab",
            "Bucket",
            "-x-y",
            "x".repeat(64).as_str(),
            "a b c",
        ] {
            let e = check_bucket(Protocol::S3, bad).expect_err(bad);
            assert!(e.message().contains("not an S3 bucket name"), "{e}");
        }
        let url = Url::parse("s3://bucket/a/b%20c.csv").expect("url");
        assert_eq!(
            split_url(&url).ok(),
            Some(("s3://bucket".into(), "a/b c.csv".into()))
        );
        for (url, store, key) in [
            ("s3a://bucket/k", "s3://bucket", "k"),
            ("gcs://bucket/a/b.csv", "gs://bucket", "a/b.csv"),
            ("gs://bucket", "gs://bucket", ""),
            ("abfs://container/x", "az://container", "x"),
            (
                "abfss://container@acct.dfs.core.windows.net/x",
                "abfss://container@acct.dfs.core.windows.net",
                "x",
            ),
        ] {
            let url = Url::parse(url).expect("url");
            assert_eq!(
                split_url(&url).ok(),
                Some((store.into(), key.into())),
                "{url}"
            );
        }
        let url = Url::parse("http://127.0.0.1:8080/data/x.csv").expect("url");
        assert_eq!(
            split_url(&url).ok(),
            Some(("http://127.0.0.1:8080".into(), "data/x.csv".into()))
        );
    }

    #[test]
    fn error_text_is_one_line_without_query_strings() {
        let text = "Error performing GET http://127.0.0.1:1/acct/c/x.csv?sv=2022&sig=S3CRET in 1s\n\
                    - error sending request (http://127.0.0.1:1/acct/c?restype=container&sig=S3CRET)";
        let got = one_line(text);
        assert!(!got.contains("S3CRET") && !got.contains('\n'), "{got}");
        assert!(
            got.contains("http://127.0.0.1:1/acct/c/x.csv?… in 1s"),
            "{got}"
        );
    }

    #[test]
    fn folder_reads_skip_hidden_files() {
        assert!(hidden("trips/_SUCCESS"));
        assert!(hidden(".DS_Store"));
        assert!(!hidden("trips/part-0.parquet"));
    }
}

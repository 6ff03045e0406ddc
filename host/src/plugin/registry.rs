//! The plugin registry: which libraries to load (plugins.toml, its `dirs`, and
//! `$PLUGBOARD_PLUGIN_PATH`), loading them (pins checked on the bytes that are loaded, see
//! `crate::sys::loader`), and choosing the plugin that serves a connection (by `type`, or
//! by its URL's scheme).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::worker::{Limits, Worker};
use super::{Plugin, recognize};
use crate::config::PluginsFile;
use crate::config::plugins::{Isolation, Settings};
use crate::error::{Error, Result};
use crate::sys::loader;

/// The loaded plugins, and why the others did not load.
pub(crate) struct Registry {
    pub plugins: Vec<Arc<Plugin>>,
    pub errors: Vec<Error>,
    pub file: PluginsFile,
}

impl Registry {
    /// Loads every library `file` names; isolated ones in workers run with `program`
    /// (default: see [`super::worker::default_program`]). A plugin that fails to load is
    /// recorded in `errors` and does not stop the others.
    pub(crate) fn load(file: PluginsFile, program: Option<&Path>) -> Self {
        let (plugins, errors) = load_all(&file, program);
        Self {
            plugins,
            errors,
            file,
        }
    }

    /// The plugin that serves connection `name`: by the kind asked for (`kind`, else the
    /// section's `type`, else what Streamlit infers from the name; see
    /// [`recognize::asked_kind`]), else by the URL's scheme or `dialect`. An error says what
    /// the section looks like and what would serve it.
    pub(crate) fn select(
        &self,
        name: &str,
        kind: Option<&str>,
        table: &toml::Table,
    ) -> Result<Arc<Plugin>> {
        let type_err = |message: String| Error::UnknownType {
            connection: name.to_owned(),
            message,
        };
        let asked = recognize::asked_kind(name, kind, table).map_err(type_err)?;
        let looks = || recognize::looks(asked.as_ref(), table);
        let plugins = &self.plugins;
        if plugins.is_empty() {
            let why = match &self.file.path {
                None => {
                    "no plugins.toml was found (pass --plugins or set PLUGBOARD_PLUGINS)".to_owned()
                }
                Some(p) if self.errors.is_empty() => {
                    format!("{} lists no plugins", p.display())
                }
                Some(_) => format!(
                    "no plugin loaded: {}",
                    self.errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            };
            return Err(type_err(match looks() {
                Some(l) => format!("{}; {why}", l.what),
                None => why,
            }));
        }
        let unserved = |loaded: String| match looks() {
            Some(l) => {
                let load = l
                    .kind
                    .map(|k| format!(": load a plugin of kind {k:?}"))
                    .unwrap_or_default();
                format!("{}; no loaded plugin serves it{load} ({loaded})", l.what)
            }
            None => loaded,
        };
        match asked.as_ref().map(|a| a.kind.as_str()) {
            Some(k) if k != "sql" => plugins
                .iter()
                .find(|p| p.manifest.kinds.iter().any(|x| x == k) || p.manifest.name == k)
                .cloned()
                .ok_or_else(|| {
                    let mut kinds: Vec<&str> = plugins
                        .iter()
                        .flat_map(|p| p.manifest.kinds.iter().map(String::as_str))
                        .chain(["sql"])
                        .collect();
                    kinds.sort_unstable();
                    kinds.dedup();
                    let loaded = format!("the loaded plugins serve: {}", kinds.join(", "));
                    // A kind plugboard knows (`snowflake`, `mysql`) is unserved; any other is
                    // unknown, likely a typo.
                    if recognize::known_kind(k) && looks().is_some() {
                        return type_err(unserved(loaded));
                    }
                    let guess = crate::util::closest(k, kinds.iter().copied())
                        .map(|c| format!("did you mean {c:?}? "))
                        .unwrap_or_default();
                    type_err(format!("unknown type {k:?}; {guess}{loaded}"))
                }),
            _ => {
                let Some(scheme) = url_scheme(table) else {
                    return Err(type_err(match looks() {
                        Some(l) => format!(
                            "{}; give it a `type`{}, or a `url` or `dialect`",
                            l.what,
                            l.kind.map(|k| format!(" ({k:?})")).unwrap_or_default()
                        ),
                        None => "no `type`, and no `url` or `dialect` to choose a connector by"
                            .to_owned(),
                    }));
                };
                plugins
                    .iter()
                    .find(|p| p.manifest.schemes.iter().any(|s| s == &scheme))
                    .cloned()
                    .ok_or_else(|| {
                        let mut schemes: Vec<&str> = plugins
                            .iter()
                            .flat_map(|p| p.manifest.schemes.iter().map(String::as_str))
                            .collect();
                        schemes.sort_unstable();
                        schemes.dedup();
                        let loaded = format!("loaded schemes: {}", schemes.join(", "));
                        match looks() {
                            Some(_) => type_err(unserved(loaded)),
                            None => type_err(format!(
                                "no loaded plugin serves URL scheme {scheme:?}; {loaded}"
                            )),
                        }
                    })
            }
        }
    }
}

type Candidate = (PathBuf, Option<String>, Settings);

fn load_all(file: &PluginsFile, program: Option<&Path>) -> (Vec<Arc<Plugin>>, Vec<Error>) {
    let mut candidates: Vec<Candidate> = file
        .plugins
        .iter()
        .filter(|e| {
            let skip = e.optional && !e.path.exists();
            if skip {
                tracing::debug!(path = %e.path.display(), "optional plugin not built; skipped");
            }
            !skip
        })
        .map(|e| (e.path.clone(), e.sha256.clone(), e.settings))
        .collect();
    let mut errors = Vec::new();
    for dir in &file.dirs {
        match std::fs::read_dir(&dir.path) {
            Ok(entries) => {
                let mut libs: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.extension()
                            .is_some_and(|x| x == std::env::consts::DLL_EXTENSION)
                    })
                    .collect();
                libs.sort();
                candidates.extend(libs.into_iter().map(|p| (p, None, dir.settings)));
            }
            Err(e) => errors.push(Error::Load {
                path: dir.path.clone(),
                reason: format!("cannot list the plugin folder: {e}"),
            }),
        }
    }
    let mut plugins: Vec<Arc<Plugin>> = Vec::new();
    for (path, pin, settings) in candidates {
        match load_one(&path, pin.as_deref(), &settings, program) {
            Ok(p) => {
                if let Some(first) = plugins.iter().find(|q| q.manifest.name == p.manifest.name) {
                    errors.push(Error::DuplicatePlugin {
                        name: p.manifest.name.clone(),
                        first: first.path.clone(),
                        second: p.path.clone(),
                    });
                } else {
                    tracing::debug!(plugin = %p.manifest.name, path = %p.path.display(), isolation = %p.isolation(), "loaded");
                    plugins.push(Arc::new(p));
                }
            }
            Err(reason) => errors.push(Error::Load { path, reason }),
        }
    }
    (plugins, errors)
}

fn load_one(
    path: &Path,
    pin: Option<&str>,
    settings: &Settings,
    program: Option<&Path>,
) -> std::result::Result<Plugin, String> {
    if !path.exists() {
        return Err(missing_library_hint(path));
    }
    let started = std::time::Instant::now();
    // A pinned library is hashed and loaded from one sealed copy of its bytes, here or in
    // its worker.
    let plugin = match settings.isolation {
        Isolation::None => Plugin::in_process(loader::load_pinned(path, pin)?),
        Isolation::Process => {
            let path = std::path::absolute(path).map_err(|e| e.to_string())?;
            Plugin::isolated(Worker::start(&path, pin, Limits::from(settings), program)?)
        }
    };
    tracing::debug!(elapsed = ?started.elapsed(), "plugin opened and checked");
    Ok(plugin)
}

fn missing_library_hint(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    match file
        .strip_prefix(std::env::consts::DLL_PREFIX)
        .and_then(|f| f.strip_suffix(std::env::consts::DLL_SUFFIX))
    {
        Some(lib) if lib.starts_with("plugboard_") => format!(
            "no such file; build it with `cargo build -p {}`",
            lib.replace('_', "-")
        ),
        _ => "no such file".to_owned(),
    }
}

/// The scheme that picks a plugin: the URL's (`postgresql+psycopg2://` → `postgresql`),
/// else `dialect`.
fn url_scheme(table: &toml::Table) -> Option<String> {
    let raw = table
        .get("url")
        .and_then(|u| u.as_str())
        .and_then(|u| u.split_once("://").map(|(s, _)| s))
        .or_else(|| table.get("dialect").and_then(|d| d.as_str()))?;
    let scheme = raw.split('+').next().unwrap_or(raw).to_ascii_lowercase();
    Some(match scheme.as_str() {
        "postgres" => "postgresql".to_owned(),
        _ => scheme,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).expect("toml")
    }

    #[test]
    fn schemes_follow_sqlalchemy() {
        assert_eq!(
            url_scheme(&table("url = \"sqlite:///x.db\"")).as_deref(),
            Some("sqlite")
        );
        assert_eq!(
            url_scheme(&table("url = \"postgresql+psycopg2://u@h/d\"")).as_deref(),
            Some("postgresql")
        );
        assert_eq!(
            url_scheme(&table("dialect = \"postgres\"")).as_deref(),
            Some("postgresql")
        );
        assert_eq!(url_scheme(&table("host = \"h\"")), None);
    }
}

//! `plugins.toml`: which connector libraries this host loads.
//!
//! ```toml
//! # Paths are relative to this file.
//! dirs = ["plugins.d"]                     # every library in these folders is loaded
//!
//! [[plugin]]
//! path = "target/debug/libplugboard_sqlite.so"
//! sha256 = "…"                             # optional pin: a library that differs is refused
//! ```
//!
//! This module only reads the file; loading is the loader's job.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The parsed `plugins.toml`, with paths made absolute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginsFile {
    /// Where the file was read from (`None` when no file was found).
    pub path: Option<PathBuf>,
    pub plugins: Vec<PluginEntry>,
    pub dirs: Vec<PathBuf>,
}

/// One `[[plugin]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEntry {
    pub path: PathBuf,
    pub sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    plugin: Vec<RawEntry>,
    #[serde(default)]
    dirs: Vec<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    path: PathBuf,
    sha256: Option<String>,
}

impl PluginsFile {
    /// Reads and parses a `plugins.toml`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = read_text(path)?;
        Self::parse(&text, path)
    }

    /// Parses `plugins.toml` text; `path` is used for messages and to resolve relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let raw: RawFile = parse_toml(text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
        let plugins = raw
            .plugin
            .into_iter()
            .map(|e| {
                if let Some(pin) = &e.sha256
                    && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    return Err(Error::Config {
                        path: path.to_path_buf(),
                        message: format!(
                            "plugin {}: sha256 must be 64 hex digits, got {pin:?}",
                            e.path.display()
                        ),
                    });
                }
                Ok(PluginEntry {
                    path: base.join(&e.path),
                    sha256: e.sha256.map(|s| s.to_ascii_lowercase()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            path: Some(path.to_path_buf()),
            plugins,
            dirs: raw.dirs.iter().map(|d| base.join(d)).collect(),
        })
    }
}

pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|error| Error::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// Parses TOML, reporting errors as `file:line:column: message` on one line.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        Error::Toml {
            path: path.to_path_buf(),
            line,
            column,
            message: crate::error::one_line(e.message()),
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// Writes a `sha256` pin for every `[[plugin]]` of the file at `path`, keeping its comments
/// and layout, atomically. Returns each library and its digest. Libraries found through
/// `dirs` are not listed in the file, so they are not pinned.
pub fn pin(path: &Path) -> Result<Vec<(PathBuf, String)>> {
    use sha2::{Digest, Sha256};

    let text = read_text(path)?;
    let parsed = PluginsFile::parse(&text, path)?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| Error::Config {
                path: path.to_path_buf(),
                message: crate::error::one_line(&e.to_string()),
            })?;
    let mut pins = Vec::new();
    if let Some(entries) = doc
        .get_mut("plugin")
        .and_then(toml_edit::Item::as_array_of_tables_mut)
    {
        for (table, entry) in entries.iter_mut().zip(&parsed.plugins) {
            let bytes = std::fs::read(&entry.path).map_err(|error| Error::Read {
                path: entry.path.clone(),
                error,
            })?;
            let digest = hex::encode(Sha256::digest(&bytes));
            table["sha256"] = toml_edit::value(digest.clone());
            pins.push((entry.path.clone(), digest));
        }
    }
    let text = doc.to_string();
    crate::export::write_atomically(path, |out| {
        out.write_all(text.as_bytes())
            .map_err(|error| Error::Write {
                path: path.to_path_buf(),
                error,
            })
    })?;
    Ok(pins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_file() {
        let f = PluginsFile::parse(
            "dirs = [\"d\"]\n[[plugin]]\npath = \"lib/x.so\"\n",
            Path::new("/etc/pb/plugins.toml"),
        )
        .expect("parse");
        assert_eq!(f.plugins[0].path, PathBuf::from("/etc/pb/lib/x.so"));
        assert_eq!(f.dirs, [PathBuf::from("/etc/pb/d")]);
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let e = PluginsFile::parse("[[plugin]]\npath = \n", Path::new("p.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("p.toml:2:"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn unknown_keys_and_bad_pins_are_refused() {
        let e = PluginsFile::parse("[[plugin]]\npaht = \"x\"\n", Path::new("p.toml")).unwrap_err();
        assert!(e.to_string().contains("paht"), "{e}");
        let e = PluginsFile::parse(
            "[[plugin]]\npath = \"x\"\nsha256 = \"abc\"\n",
            Path::new("p.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("64 hex digits"), "{e}");
    }
}

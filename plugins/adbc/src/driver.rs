//! Finding and loading an ADBC driver.
//!
//! `driver` is a path (to a driver library or to its manifest `.toml`) or a name. A name is
//! looked up the way the ADBC driver manager looks it up — a manifest `NAME.toml` (or a
//! library) in `ADBC_DRIVER_PATH`, the Python environment's `etc/adbc/drivers`,
//! `~/.config/adbc/drivers` and `/etc/adbc/drivers`, then the system's library path — and
//! then as the library a pip-installed `adbc-driver-NAME` package ships in that Python
//! environment (`python`, else `$VIRTUAL_ENV`).
//!
//! The driver is initialized for ADBC 1.1.0, and for 1.0.0 when it is older.

use std::path::{Path, PathBuf};
use std::process::Command;

use adbc_core::LOAD_FLAG_DEFAULT;
use adbc_core::error::Status;
use adbc_core::options::AdbcVersion;
use adbc_driver_manager::ManagedDriver;
use adbc_driver_manager::search::DriverLibrary;
use plugboard_api::PluginError;

use crate::config::one_line;

/// A driver, ready to open databases.
pub struct Loaded {
    pub driver: ManagedDriver,
    /// The library it was loaded from, canonical.
    pub path: PathBuf,
    pub version: AdbcVersion,
}

/// A Python environment's folders that hold drivers.
#[derive(Debug, Default, Clone)]
pub struct PythonEnv {
    /// The environment's root (`sys.prefix`).
    pub prefix: Option<PathBuf>,
    /// Its `site-packages` folders.
    pub site_packages: Vec<PathBuf>,
    /// Why there is none, for the "not found" message.
    pub missing: Option<String>,
}

impl PythonEnv {
    /// The environment of `python`: an interpreter (asked for its folders), or an
    /// environment's folder (its `lib/python3*/site-packages`). `None`: none is set.
    pub fn find(python: Option<&Path>) -> Self {
        let Some(python) = python else {
            return Self {
                missing: Some(
                    "no Python environment to look in (set `python`, or activate a virtualenv)"
                        .to_owned(),
                ),
                ..Self::default()
            };
        };
        if python.is_dir() {
            let mut site = Vec::new();
            for lib in ["lib", "lib64"] {
                if let Ok(entries) = std::fs::read_dir(python.join(lib)) {
                    let mut found: Vec<PathBuf> = entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| {
                            p.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with("python3"))
                        })
                        .map(|p| p.join("site-packages"))
                        .filter(|p| p.is_dir())
                        .collect();
                    found.sort();
                    site.extend(found);
                }
            }
            return Self {
                prefix: Some(python.to_path_buf()),
                site_packages: site,
                missing: None,
            };
        }
        let asked = Command::new(python)
            .args([
                "-c",
                "import sys, sysconfig; p = sysconfig.get_paths(); \
                 print(sys.prefix); print(p['purelib']); print(p['platlib'])",
            ])
            .output();
        match asked {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                let mut lines = text.lines().map(PathBuf::from);
                let prefix = lines.next();
                let mut site: Vec<PathBuf> = lines.collect();
                site.dedup();
                Self {
                    prefix,
                    site_packages: site,
                    missing: None,
                }
            }
            Ok(out) => Self {
                missing: Some(format!(
                    "`python` {} failed: {}",
                    python.display(),
                    one_line(&String::from_utf8_lossy(&out.stderr))
                )),
                ..Self::default()
            },
            Err(e) => Self {
                missing: Some(format!("`python` {}: {e}", python.display())),
                ..Self::default()
            },
        }
    }

    fn manifest_dir(&self) -> Option<PathBuf> {
        self.prefix.as_ref().map(|p| p.join("etc/adbc/drivers"))
    }

    /// The library of the pip package `adbc-driver-NAME`, if installed here.
    fn package_library(&self, name: &str) -> Option<PathBuf> {
        let module = format!("adbc_driver_{name}");
        let file = format!("libadbc_driver_{name}{}", std::env::consts::DLL_SUFFIX);
        self.site_packages
            .iter()
            .map(|s| s.join(&module).join(&file))
            .find(|p| p.is_file())
    }
}

/// `sqlite`, `adbc_driver_sqlite`, `adbc-driver-sqlite`, `libadbc_driver_sqlite` → `sqlite`.
pub fn short_name(name: &str) -> String {
    let n = name.to_ascii_lowercase().replace('-', "_");
    let n = n.strip_prefix("lib").unwrap_or(&n);
    n.strip_prefix("adbc_driver_").unwrap_or(n).to_owned()
}

/// Whether `driver` names a file rather than a driver by name.
fn is_path(driver: &str) -> bool {
    driver.contains('/')
        || driver.starts_with('~')
        || Path::new(driver).extension().is_some_and(|e| {
            e == "toml"
                || e == "so"
                || e == "dylib"
                || e == "dll"
                || e.to_str()
                    .is_some_and(|e| e.chars().all(|c| c.is_ascii_digit()))
        })
}

/// A driver library found: its path, the library when the search already loaded it, and
/// the manifest's entrypoint, if it gave one.
type Located = (PathBuf, Option<libloading::Library>, Option<Vec<u8>>);

/// Finds the library `driver` names.
fn locate(driver: &str, env: &PythonEnv) -> Result<Located, PluginError> {
    if is_path(driver) {
        let path = Path::new(driver);
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if !path.exists() {
            return Err(PluginError::config(format!(
                "`driver`: {} does not exist (a driver library, or its manifest .toml)",
                path.display()
            )));
        }
        let hit = DriverLibrary::search(&path, LOAD_FLAG_DEFAULT, None).map_err(|e| {
            PluginError::config(format!("`driver` {}: {}", path.display(), message(&e)))
        })?;
        return Ok((hit.lib_path, Some(hit.library), hit.entrypoint));
    }
    let extra: Vec<PathBuf> = env.manifest_dir().into_iter().collect();
    let searched = DriverLibrary::search(driver, LOAD_FLAG_DEFAULT, Some(extra.clone()));
    let first_error = match searched {
        Ok(hit) => return Ok((hit.lib_path, Some(hit.library), hit.entrypoint)),
        Err(e) if e.status == Status::NotFound => None,
        Err(e) => Some(e),
    };
    let short = short_name(driver);
    if let Some(lib) = env.package_library(&short) {
        return Ok((lib, None, None));
    }
    if let Some(e) = first_error {
        return Err(PluginError::config(format!(
            "`driver` {driver:?}: {}",
            message(&e)
        )));
    }
    let mut places = vec!["ADBC_DRIVER_PATH".to_owned()];
    places.extend(extra.iter().map(|p| p.display().to_string()));
    places.push("~/.config/adbc/drivers".to_owned());
    places.push("/etc/adbc/drivers".to_owned());
    let python = match (&env.missing, env.site_packages.first()) {
        (Some(why), _) => why.clone(),
        (None, Some(site)) => format!("no adbc_driver_{short} package in {}", site.display()),
        (None, None) => format!(
            "no site-packages in the Python environment {}",
            env.prefix.as_deref().unwrap_or(Path::new("?")).display()
        ),
    };
    Err(PluginError::config(format!(
        "ADBC driver {driver:?} is not installed: no manifest {driver}.toml in {}, {python}, \
         no libadbc_driver_{short}{} on the library path; install it with `pip install \
         adbc-driver-{}` (into the environment `python` or $VIRTUAL_ENV names), or set \
         `driver` to the library's path or its manifest",
        places.join(", "),
        std::env::consts::DLL_SUFFIX,
        short.replace('_', "-"),
    )))
}

/// The init function name the driver manager derives from a library's file name:
/// `libadbc_driver_sqlite.so` → `AdbcDriverSqliteInit`.
fn derived_entrypoint(path: &Path) -> String {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    let base = file.split('.').next().unwrap_or(file);
    let base = base
        .strip_prefix(std::env::consts::DLL_PREFIX)
        .unwrap_or(base);
    let mut name = String::new();
    for part in base.split(['-', '_']).filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            name.extend(c.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    if !name.starts_with("Adbc") {
        name.insert_str(0, "Adbc");
    }
    format!("{name}Init")
}

/// Loads the driver `driver` names, through its `entrypoint` (else the manifest's, else
/// the one derived from the file name, else `AdbcDriverInit`).
pub fn load(
    driver: &str,
    entrypoint: Option<&str>,
    env: &PythonEnv,
) -> Result<Loaded, PluginError> {
    let (path, found, manifest_entrypoint) = locate(driver, env)?;
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    let shown = path.display().to_string();
    // The search loads what it finds; a Python package's library is loaded here.
    let library = match found {
        Some(library) => library,
        None => DriverLibrary::load_library(&path).map_err(|e| {
            PluginError::config(format!("`driver` {shown}: cannot load it: {}", message(&e)))
        })?,
    };
    let entrypoint: String = match (entrypoint, manifest_entrypoint) {
        (Some(e), _) => {
            if !crate::sys::exports(&library, e.as_bytes()) {
                return Err(PluginError::config(format!(
                    "`entrypoint`: the driver {shown} has no function {e}"
                )));
            }
            e.to_owned()
        }
        (None, Some(e)) => String::from_utf8_lossy(&e).into_owned(),
        (None, None) => {
            let derived = derived_entrypoint(&path);
            if crate::sys::exports(&library, derived.as_bytes()) {
                derived
            } else if crate::sys::exports(&library, b"AdbcDriverInit") {
                "AdbcDriverInit".to_owned()
            } else {
                return Err(PluginError::config(format!(
                    "`driver` {shown} is not an ADBC driver: it exports neither {derived} nor \
                     AdbcDriverInit (set `entrypoint` if its init function has another name)"
                )));
            }
        }
    };
    drop(library);
    let mut last = None;
    for version in [AdbcVersion::V110, AdbcVersion::V100] {
        match ManagedDriver::load_dynamic_from_filename(&path, Some(entrypoint.as_bytes()), version)
        {
            Ok(driver) => {
                return Ok(Loaded {
                    driver,
                    path,
                    version,
                });
            }
            Err(e) if e.status == Status::NotImplemented => last = Some(e),
            Err(e) => {
                return Err(PluginError::config(format!(
                    "`driver` {shown}: {entrypoint} failed: {}",
                    message(&e)
                )));
            }
        }
    }
    Err(PluginError::config(format!(
        "`driver` {shown} supports neither ADBC 1.1.0 nor 1.0.0: {}",
        last.map(|e| message(&e)).unwrap_or_default()
    )))
}

/// An ADBC error as one line: its message, SQLSTATE and vendor code when it has them.
pub fn message(e: &adbc_core::error::Error) -> String {
    let mut text = one_line(&e.message);
    let state: String = e
        .sqlstate
        .iter()
        .map(|&c| c as u8)
        .filter(|c| c.is_ascii_alphanumeric())
        .map(char::from)
        .collect();
    let mut extra = Vec::new();
    if state.len() == 5 && state != "00000" {
        extra.push(format!("SQLSTATE {state}"));
    }
    if e.vendor_code != 0 && e.vendor_code != i32::MIN {
        extra.push(format!("vendor code {}", e.vendor_code));
    }
    if text.is_empty() {
        text = format!("{:?}", e.status);
    }
    if !extra.is_empty() {
        text.push_str(&format!(" ({})", extra.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_entrypoints() {
        for n in [
            "sqlite",
            "adbc_driver_sqlite",
            "adbc-driver-sqlite",
            "libadbc_driver_sqlite",
            "SQLite",
        ] {
            assert_eq!(short_name(n), "sqlite", "{n}");
        }
        assert_eq!(
            derived_entrypoint(Path::new("/x/libadbc_driver_sqlite.so")),
            "AdbcDriverSqliteInit"
        );
        assert_eq!(
            derived_entrypoint(Path::new("proprietary_driver.so.1")),
            "AdbcProprietaryDriverInit"
        );
        assert!(is_path("./x.so") && is_path("/a/b") && is_path("d.toml") && is_path("libx.so.1"));
        assert!(!is_path("sqlite") && !is_path("adbc_driver_postgresql"));
    }

    #[test]
    fn a_missing_driver_says_how_to_install_it() {
        let e = load("nosuchdriver", None, &PythonEnv::find(None))
            .err()
            .expect("not found");
        let m = e.message();
        assert!(m.contains("pip install adbc-driver-nosuchdriver"), "{m}");
        assert!(m.contains("no Python environment"), "{m}");
        let e = load("/nope/libx.so", None, &PythonEnv::default())
            .err()
            .expect("no file");
        assert!(e.message().contains("/nope/libx.so does not exist"), "{e}");
    }
}

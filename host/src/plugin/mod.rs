//! Plugins: the registry that loads and selects them ([`registry`]). The libraries
//! themselves are opened and their ABI checked in `crate::sys::loader`, the only place
//! that touches abi_stable.

pub(crate) mod registry;

use std::path::PathBuf;

use plugboard_api::Manifest;

/// What a loaded plugin says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// The plugboard-api release it was built against: recorded by the plugin since 1.4
    /// (`1.4.0`), else inferred from the capabilities it exports (`1.3 (inferred)`).
    pub api: plugboard_api::ApiRelease,
}

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
}

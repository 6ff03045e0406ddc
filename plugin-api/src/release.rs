//! Which plugboard-api a plugin library was built against.
//!
//! Since 1.4 every library exported with [`crate::export_connector!`] or
//! [`crate::export_plugin_module!`] records it: the symbol
//! [`API_RELEASE_SYMBOL`](crate::ffi::API_RELEASE_SYMBOL) returns the version of the
//! plugboard-api crate it was compiled with ([`API_RELEASE`]), whatever the plugin's own
//! version. A library built before 1.4 records nothing; what it exports bounds it, and
//! [`ApiRelease::Inferred`] says so rather than guess one number.

use std::fmt;

/// The version of this plugboard-api crate (`1.7.0`), as its `Cargo.toml` says.
///
/// `env!` is expanded when this crate is compiled, so a plugin that reports it reports the
/// plugboard-api it was built against, not its own version.
pub const API_RELEASE: &str = env!("CARGO_PKG_VERSION");

/// Which plugboard-api release a plugin library was built against, as far as the host can
/// tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiRelease {
    /// Recorded by the library (plugboard-api 1.4 and later): that crate's exact version,
    /// such as `"1.4.0"`.
    Recorded(String),
    /// The library records nothing, so it was built before 1.4; the capabilities it
    /// exports bound its minor: `from..=to` of `major`. Assumes the library was exported
    /// with plugboard-api's macros (they add every capability symbol of their release).
    Inferred { major: u32, from: u32, to: u32 },
}

/// The first minor that records its release.
const RECORDING_SINCE: u32 = 4;

impl ApiRelease {
    /// What the host can tell from a library's `api_version` (the major), its recorded
    /// release if any, and which capability symbols it exports: the 1.1 log sink
    /// (`plugboard_set_log_sink_v1`) and the 1.3 connect (`plugboard_connect_v2`).
    ///
    /// Without a record: a 1.3 connect means 1.3 (`export_connector!` adds it since 1.3);
    /// a log sink alone means 1.1 to 1.3 (1.1 and 1.2 added no symbol of their own, and a
    /// raw-ABI 1.3 plugin may export no connect_v2); neither means 1.0.
    pub fn infer(major: u32, recorded: Option<&str>, log_sink: bool, connect_v2: bool) -> Self {
        if let Some(version) = recorded.filter(|v| !v.is_empty()) {
            return Self::Recorded(version.to_owned());
        }
        let (from, to) = match (connect_v2, log_sink) {
            (true, _) => (3, 3),
            (false, true) => (1, RECORDING_SINCE - 1),
            (false, false) => (0, 0),
        };
        Self::Inferred { major, from, to }
    }

    /// The release of a connector built with this crate, in this process.
    pub fn this_crate() -> Self {
        Self::Recorded(API_RELEASE.to_owned())
    }

    /// The minor, when it is known exactly (recorded, or inferred to a single one).
    pub fn minor(&self) -> Option<u32> {
        match self {
            Self::Recorded(v) => v.split('.').nth(1)?.parse().ok(),
            Self::Inferred { from, to, .. } => (from == to).then_some(*from),
        }
    }

    /// Whether the library recorded its release (rather than the host inferring it).
    pub fn is_recorded(&self) -> bool {
        matches!(self, Self::Recorded(_))
    }
}

impl fmt::Display for ApiRelease {
    /// `1.4.0`; inferred ones say so: `1.3 (inferred)`, `1.1–1.3 (inferred)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Recorded(v) => f.write_str(v),
            Self::Inferred { major, from, to } if from == to => {
                write!(f, "{major}.{from} (inferred)")
            }
            Self::Inferred { major, from, to } => {
                write!(f, "{major}.{from}–{major}.{to} (inferred)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_release_wins_and_an_absent_one_is_bounded_by_the_capabilities() {
        let recorded = ApiRelease::infer(1, Some("1.4.0"), true, true);
        assert_eq!(recorded.to_string(), "1.4.0");
        assert_eq!(recorded.minor(), Some(4));
        assert!(recorded.is_recorded());

        let v13 = ApiRelease::infer(1, None, true, true);
        assert_eq!(v13.to_string(), "1.3 (inferred)");
        assert_eq!(v13.minor(), Some(3));

        let v11 = ApiRelease::infer(1, None, true, false);
        assert_eq!(v11.to_string(), "1.1–1.3 (inferred)");
        assert_eq!(v11.minor(), None, "1.1, 1.2 or a raw-ABI 1.3");

        let v10 = ApiRelease::infer(1, None, false, false);
        assert_eq!(v10.to_string(), "1.0 (inferred)");
        assert_eq!(v10.minor(), Some(0));
        assert!(!v10.is_recorded());

        assert_eq!(ApiRelease::infer(1, Some(""), false, false), v10);
    }

    #[test]
    fn this_crate_records_its_own_cargo_version() {
        assert_eq!(ApiRelease::this_crate().to_string(), API_RELEASE);
        assert_eq!(
            ApiRelease::this_crate().minor(),
            API_RELEASE.split('.').nth(1).and_then(|m| m.parse().ok())
        );
    }
}

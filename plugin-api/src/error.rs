//! The one error type that crosses the boundary: plain data, no vtable to downcast.

use std::fmt;

use abi_stable::{StableAbi, std_types::RString};

/// What went wrong, as an extensible number: new kinds can be added without an ABI break,
/// and a host that does not know a kind treats it like [`ErrorKind::INTERNAL`].
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorKind(pub u8);

impl ErrorKind {
    /// The connection's configuration is wrong (a missing or unknown key, a bad value).
    pub const CONFIG: Self = Self(1);
    /// The source refused the credentials.
    pub const AUTH: Self = Self(2);
    /// The source could not be reached or opened.
    pub const CONNECT: Self = Self(3);
    /// The request itself is wrong (bad SQL, a missing parameter, a missing table).
    pub const QUERY: Self = Self(4);
    /// The connector does not offer this operation.
    pub const UNSUPPORTED: Self = Self(5);
    /// The connector panicked; the host drops the connection and reconnects next time.
    pub const PANIC: Self = Self(6);
    /// A bug or an unexpected state inside the connector.
    pub const INTERNAL: Self = Self(7);
    /// The statement was stopped by [`crate::Connector::cancel`] (since 1.7); never
    /// retried. A host older than 1.7 reads it as [`ErrorKind::INTERNAL`].
    pub const CANCELLED: Self = Self(8);

    /// A lowercase name for messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::CONFIG => "config",
            Self::AUTH => "auth",
            Self::CONNECT => "connect",
            Self::QUERY => "query",
            Self::UNSUPPORTED => "unsupported",
            Self::PANIC => "panic",
            Self::CANCELLED => "cancelled",
            _ => "internal",
        }
    }

    /// The kind a [`name`](Self::name) stands for; `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::CONFIG,
            Self::AUTH,
            Self::CONNECT,
            Self::QUERY,
            Self::UNSUPPORTED,
            Self::PANIC,
            Self::INTERNAL,
            Self::CANCELLED,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

impl fmt::Debug for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error reported by a connector.
///
/// `retryable` is how a connector says "this connection went stale": the host resets the
/// connection and tries again only for those errors.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub kind: ErrorKind,
    pub retryable: bool,
    pub message: RString,
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            retryable: false,
            message: RString::from(message.into()),
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::CONFIG, message)
    }

    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AUTH, message)
    }

    pub fn connect(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::CONNECT, message)
    }

    pub fn query(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::QUERY, message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UNSUPPORTED, message)
    }

    /// A statement that [`crate::Connector::cancel`] stopped. Not retryable.
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::CANCELLED, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INTERNAL, message)
    }

    /// Marks the error as "the connection went stale; reconnect and try again".
    #[must_use]
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    pub fn message(&self) -> &str {
        self.message.as_str()
    }

    /// Reads back an error from its [`Display`](fmt::Display) text (`query error: …`), as
    /// it arrives when it crossed as a string (an Arrow stream's last error). `None` when
    /// the text is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, message) = text.split_once(" error: ")?;
        let kind = ErrorKind::from_name(kind)?;
        let (message, retryable) = match message.strip_suffix(" (retryable)") {
            Some(m) => (m, true),
            None => (message, false),
        };
        let mut e = Self::new(kind, message);
        e.retryable = retryable;
        Some(e)
    }
}

impl fmt::Debug for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginError")
            .field("kind", &self.kind)
            .field("retryable", &self.retryable)
            .field("message", &self.message.as_str())
            .finish()
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {}", self.kind, self.message)?;
        if self.retryable {
            f.write_str(" (retryable)")?;
        }
        Ok(())
    }
}

impl std::error::Error for PluginError {}

impl From<arrow_schema::ArrowError> for PluginError {
    /// A [`PluginError`] that travelled as an Arrow error (see the `From` below) comes back
    /// as itself; any other Arrow error is an `internal` one.
    fn from(e: arrow_schema::ArrowError) -> Self {
        match e {
            arrow_schema::ArrowError::ExternalError(inner) => match inner.downcast::<Self>() {
                Ok(e) => *e,
                Err(other) => Self::internal(format!(
                    "arrow: {}",
                    arrow_schema::ArrowError::ExternalError(other)
                )),
            },
            e => Self::internal(format!("arrow: {e}")),
        }
    }
}

/// How a reader (whose items are `Result<RecordBatch, ArrowError>`) fails with a
/// `PluginError`: `Err(PluginError::connect("server closed").retryable().into())`. The
/// error reaches the host with its kind and `retryable` flag as data (since 1.4; see
/// `ffi::STREAM_ERROR_SYMBOL`), and as its text for older hosts.
impl From<PluginError> for arrow_schema::ArrowError {
    fn from(e: PluginError) -> Self {
        Self::ExternalError(Box::new(e))
    }
}

impl PluginError {
    /// The `PluginError` an Arrow error carries, if it is one (wrapped as by the `From`
    /// above, or by [`crate::stream`]).
    pub(crate) fn carried_by(e: &arrow_schema::ArrowError) -> Option<&Self> {
        match e {
            arrow_schema::ArrowError::ExternalError(inner) => inner.downcast_ref::<Self>(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_back_from_their_text() {
        for e in [
            PluginError::query("no such table: trips"),
            PluginError::connect("server closed: a error: b").retryable(),
            PluginError::new(ErrorKind::PANIC, "plugin panicked during x"),
        ] {
            assert_eq!(PluginError::parse(&e.to_string()), Some(e));
        }
        assert_eq!(PluginError::parse("no kind here"), None);
        assert_eq!(PluginError::parse("weird error: x"), None);
    }

    #[test]
    fn a_plugin_error_survives_a_trip_through_an_arrow_error() {
        let e = PluginError::connect("server closed").retryable();
        let arrow: arrow_schema::ArrowError = e.clone().into();
        assert_eq!(PluginError::carried_by(&arrow), Some(&e));
        assert_eq!(PluginError::from(arrow), e);
        let other = arrow_schema::ArrowError::ComputeError("overflow".into());
        assert_eq!(PluginError::carried_by(&other), None);
        assert_eq!(
            PluginError::from(other).to_string(),
            "internal error: arrow: Compute error: overflow"
        );
    }
}

//! The API that applications use, in the shape of Streamlit's `st.connection`: a [`Host`]
//! resolves a connection by name ([`host`]), and a [`Connection`] ([`connection`]) reads
//! ([`read`]: [`Read`], [`Stream`]) and writes ([`execute`]: [`Execute`]) through the
//! host's result cache.

pub(crate) mod catalog;
pub(crate) mod connection;
pub(crate) mod execute;
pub(crate) mod host;
pub(crate) mod read;

pub use self::connection::{Connection, MAX_ATTEMPTS};
pub use self::execute::Execute;
pub use self::host::{
    ConnectOptions, ConnectionInfo, Host, HostBuilder, PLUGIN_PATH_ENV, PLUGINS_ENV, RESERVED_KEYS,
    SECRETS_ENV,
};
pub use self::read::{Read, Stream};

//! SQLite connections for `plugboard_api::pool`.
//!
//! Thread safety: a `rusqlite::Connection` is `Send` but not `Sync`, so each call checks one
//! connection out for its whole duration. Up to `pool_size` calls run at once (SQLite allows
//! concurrent readers); further callers wait. A `:memory:` database has a pool of one, since
//! every connection to `:memory:` would be a different, empty database.

use plugboard_api::PluginError;
use plugboard_api::pool::{self, Manage};
use rusqlite::{Connection, OpenFlags};

use crate::config::{Location, Settings};

/// Opens SQLite connections with the connection's settings.
pub struct Manager(pub Settings);

impl Manage for Manager {
    type Conn = Connection;

    fn connect(&self) -> Result<Connection, PluginError> {
        open_connection(&self.0)
    }

    /// Left inside a transaction (by a panic): do not hand it to the next caller.
    fn reusable(&self, conn: &mut Connection) -> bool {
        conn.is_autocommit()
    }

    /// `sqlite3_interrupt`: the running statement fails with SQLITE_INTERRUPT at its next
    /// step. With no statement running it does nothing (SQLite clears the flag when the
    /// next one starts), and it is safe from any thread while the connection is open.
    fn canceller(&self, conn: &Connection) -> Option<pool::Canceller> {
        let handle = conn.get_interrupt_handle();
        Some(Box::new(move || {
            handle.interrupt();
            Ok(())
        }))
    }
}

pub type Pool = pool::Pool<Manager>;

fn open_connection(settings: &Settings) -> Result<Connection, PluginError> {
    let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    if settings.read_only {
        flags |= OpenFlags::SQLITE_OPEN_READ_ONLY;
    } else {
        flags |= OpenFlags::SQLITE_OPEN_READ_WRITE;
        if settings.create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
    }
    let (conn, shown) = match &settings.location {
        Location::Memory => (
            Connection::open_in_memory_with_flags(flags),
            ":memory:".to_owned(),
        ),
        Location::File(path) => {
            let shown = std::path::absolute(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string();
            // Not a URI: make sure a path containing `?` or `#` is taken literally.
            let flags = flags - OpenFlags::SQLITE_OPEN_URI;
            (Connection::open_with_flags(path, flags), shown)
        }
        Location::Uri(uri) => (Connection::open_with_flags(uri, flags), uri.clone()),
    };
    let conn = conn.map_err(|e| {
        let hint = match &settings.location {
            Location::File(p) if !p.exists() && !settings.create => {
                " (the file does not exist; check the path, or set create = true)"
            }
            _ => "",
        };
        PluginError::connect(format!("cannot open SQLite database {shown}: {e}{hint}"))
    })?;
    conn.busy_timeout(settings.busy_timeout)
        .map_err(|e| PluginError::connect(format!("cannot set busy_timeout on {shown}: {e}")))?;
    if settings.mmap_size > 0 {
        conn.pragma_update(
            None,
            "mmap_size",
            i64::try_from(settings.mmap_size).unwrap_or(i64::MAX),
        )
        .map_err(|e| PluginError::connect(format!("cannot set mmap_size on {shown}: {e}")))?;
    }
    // Prepared statements are reused across calls: lookups skip the parse.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

//! A small blocking pool of SQLite connections.
//!
//! Thread safety: a `rusqlite::Connection` is `Send` but not `Sync`, so each call checks one
//! connection out for its whole duration. Up to `pool_size` calls run at once (SQLite allows
//! concurrent readers); further callers wait. A `:memory:` database has a pool of one, since
//! every connection to `:memory:` would be a different, empty database.

use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard};

use plugboard_api::PluginError;
use rusqlite::{Connection, OpenFlags};

use crate::config::{Location, Settings};

pub struct Pool {
    settings: Settings,
    state: Mutex<State>,
    returned: Condvar,
}

struct State {
    idle: Vec<Connection>,
    open: usize,
}

pub struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Pool {
    /// Opens the first connection eagerly, so a bad path fails at connect time.
    pub fn open(settings: Settings) -> Result<Self, PluginError> {
        let first = open_connection(&settings)?;
        Ok(Self {
            settings,
            state: Mutex::new(State {
                idle: vec![first],
                open: 1,
            }),
            returned: Condvar::new(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another call panicked while holding it; the idle list
        // is still consistent (connections are pushed whole).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self) -> Result<Pooled<'_>, PluginError> {
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < self.settings.pool_size {
                state.open += 1;
                drop(state);
                return match open_connection(&self.settings) {
                    Ok(conn) => Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            state = self.returned.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until drop")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut state = self.pool.lock();
            if std::thread::panicking() || !conn.is_autocommit() {
                // Left inside a transaction by a panic: do not hand it to the next caller.
                state.open -= 1;
            } else {
                state.idle.push(conn);
            }
            drop(state);
            self.pool.returned.notify_one();
        }
    }
}

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
    // Prepared statements are reused across calls: lookups skip the parse.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

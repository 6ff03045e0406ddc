//! A small blocking connection pool for connectors whose driver connections are `Send` but
//! not `Sync` (SQLite, PostgreSQL, most client libraries).
//!
//! Each call checks one connection out for its whole duration. Up to `max` connections are
//! open at once; further callers wait for one to come back. A connection is opened only when
//! no idle one is left, and one that comes back broken (or while its thread panics) is
//! closed instead of handed to the next caller.
//!
//! ```
//! use plugboard_api::PluginError;
//! use plugboard_api::pool::{Manage, Pool};
//!
//! struct Numbers;
//! impl Manage for Numbers {
//!     type Conn = Vec<u32>;
//!     fn connect(&self) -> Result<Vec<u32>, PluginError> {
//!         Ok(Vec::new())
//!     }
//! }
//!
//! let pool = Pool::open(Numbers, 2)?;
//! pool.get()?.push(7);
//! assert_eq!(*pool.get()?, vec![7]); // the same connection came back
//! # Ok::<(), PluginError>(())
//! ```

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::PluginError;

/// How a pool opens and checks its connections.
pub trait Manage: Send + Sync {
    type Conn: Send;

    /// Opens a new connection.
    fn connect(&self) -> Result<Self::Conn, PluginError>;

    /// Whether a connection that comes back may serve the next caller (default: yes). Say no
    /// for one that is closed or was left inside a transaction.
    fn reusable(&self, _conn: &mut Self::Conn) -> bool {
        true
    }

    /// How to stop, from another thread, whatever statement `conn` is running: the
    /// driver's interrupt handle, cancel token or connection id, taken once, when `conn`
    /// is opened. `None` (the default) when the driver has no way; [`Pool::cancel`]
    /// then leaves it running.
    ///
    /// The canceller may be called when `conn` is between statements, or after its
    /// statement ended: it must then do nothing, and must never stop the *next*
    /// statement (SQLite's interrupt flag is cleared when a statement starts; a
    /// PostgreSQL or MySQL cancel names the statement running at the server, if any).
    fn canceller(&self, _conn: &Self::Conn) -> Option<Canceller> {
        None
    }
}

/// Stops the statement one checked-out connection is running (see [`Manage::canceller`]).
pub type Canceller = Box<dyn Fn() -> Result<(), PluginError> + Send + Sync>;

/// A pool of at most `max` connections.
pub struct Pool<M: Manage> {
    manager: M,
    max: usize,
    state: Mutex<State<M::Conn>>,
    returned: Condvar,
}

struct State<C> {
    /// Each idle connection with its canceller, made when it was opened.
    idle: Vec<(C, Option<Canceller>)>,
    open: usize,
    /// The cancellers of the checked-out connections, by checkout; one goes back to
    /// `idle` with its connection.
    busy: Vec<(u64, Canceller)>,
    checkouts: u64,
}

/// A checked-out connection; it goes back to the pool when dropped.
///
/// [`Pool::get`] borrows the pool; [`Pool::get_owned`] gives a `Pooled<'static, M>` that
/// keeps the pool alive itself, to move to another thread (see [`crate::stream`]).
pub struct Pooled<'a, M: Manage> {
    pool: PoolRef<'a, M>,
    conn: Option<M::Conn>,
    /// This checkout's number, when its connection has a canceller.
    checkout: Option<u64>,
}

enum PoolRef<'a, M: Manage> {
    Borrowed(&'a Pool<M>),
    Shared(Arc<Pool<M>>),
}

impl<M: Manage> Deref for PoolRef<'_, M> {
    type Target = Pool<M>;
    fn deref(&self) -> &Pool<M> {
        match self {
            Self::Borrowed(p) => p,
            Self::Shared(p) => p,
        }
    }
}

impl<M: Manage> Pool<M> {
    /// A pool that opens its first connection now, so bad settings fail at connect time.
    pub fn open(manager: M, max: usize) -> Result<Self, PluginError> {
        let first = manager.connect()?;
        let canceller = manager.canceller(&first);
        Ok(Self {
            manager,
            max: max.max(1),
            state: Mutex::new(State {
                idle: vec![(first, canceller)],
                open: 1,
                busy: Vec::new(),
                checkouts: 0,
            }),
            returned: Condvar::new(),
        })
    }

    pub fn manager(&self) -> &M {
        &self.manager
    }

    fn lock(&self) -> MutexGuard<'_, State<M::Conn>> {
        // A poisoned lock only means a caller panicked while holding it; the idle list is
        // still consistent (connections are pushed whole).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection, a new one if fewer than `max` are open, else the next one back.
    pub fn get(&self) -> Result<Pooled<'_, M>, PluginError> {
        let (conn, checkout) = self.checkout()?;
        Ok(Pooled {
            checkout,
            conn: Some(conn),
            pool: PoolRef::Borrowed(self),
        })
    }

    /// Like [`Pool::get`], for a pool behind an `Arc`: the checkout holds the pool itself,
    /// so it can outlive the call that took it (a reader producing batches on a thread).
    pub fn get_owned(self: &Arc<Self>) -> Result<Pooled<'static, M>, PluginError> {
        let (conn, checkout) = self.checkout()?;
        Ok(Pooled {
            checkout,
            conn: Some(conn),
            pool: PoolRef::Shared(Arc::clone(self)),
        })
    }

    /// Stops the statements of every checked-out connection that has a canceller, now;
    /// their calls fail with the driver's error, which the connector reports as
    /// [`PluginError::cancelled`]. Idle connections are untouched. Returns how many
    /// were asked; the first canceller's error, if one failed (the others still ran).
    pub fn cancel(&self) -> Result<usize, PluginError> {
        // Under the lock, so that no connection goes back and serves the next caller
        // while it is being cancelled: a cancel that reached the server late would stop
        // the next caller's statement. Returns wait for it (a network round trip at most).
        let state = self.lock();
        let mut first_error = None;
        for (_, canceller) in &state.busy {
            if let Err(e) = canceller() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(state.busy.len()), Err)
    }

    /// A connection, and its checkout's number when it has a canceller (now among the
    /// busy ones).
    fn checkout(&self) -> Result<(M::Conn, Option<u64>), PluginError> {
        let mut state = self.lock();
        loop {
            if let Some((conn, canceller)) = state.idle.pop() {
                let checkout = state.busy_with(canceller);
                return Ok((conn, checkout));
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                let conn = self.manager.connect().inspect_err(|_| {
                    self.lock().open -= 1;
                    self.returned.notify_one();
                })?;
                let canceller = self.manager.canceller(&conn);
                let checkout = self.lock().busy_with(canceller);
                return Ok((conn, checkout));
            }
            state = self.returned.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Closes every idle connection; checked-out ones close when they come back broken or
    /// stay for the next caller.
    pub fn clear(&self) {
        let mut state = self.lock();
        let n = state.idle.len();
        state.idle.clear();
        state.open -= n;
        drop(state);
        self.returned.notify_all();
    }
}

impl<M: Manage> Pooled<'_, M> {
    /// Closes this connection instead of returning it (after an error that broke it).
    pub fn discard(mut self) {
        if self.conn.take().is_some() {
            let mut state = self.pool.lock();
            state.open -= 1;
            state.unbusy(self.checkout.take());
            drop(state);
            self.pool.returned.notify_one();
        }
    }
}

impl<C> State<C> {
    /// Records a checked-out connection's canceller; its checkout's number.
    fn busy_with(&mut self, canceller: Option<Canceller>) -> Option<u64> {
        let canceller = canceller?;
        self.checkouts += 1;
        self.busy.push((self.checkouts, canceller));
        Some(self.checkouts)
    }

    /// The canceller of a checkout that ends, no longer busy.
    fn unbusy(&mut self, checkout: Option<u64>) -> Option<Canceller> {
        let at = self.busy.iter().position(|(n, _)| Some(*n) == checkout)?;
        Some(self.busy.swap_remove(at).1)
    }
}

impl<M: Manage> Deref for Pooled<'_, M> {
    type Target = M::Conn;
    fn deref(&self) -> &M::Conn {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until drop")
    }
}

impl<M: Manage> DerefMut for Pooled<'_, M> {
    fn deref_mut(&mut self) -> &mut M::Conn {
        self.conn
            .as_mut()
            .expect("a pooled connection is present until drop")
    }
}

impl<M: Manage> Drop for Pooled<'_, M> {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let keep = !std::thread::panicking() && self.pool.manager.reusable(&mut conn);
            let mut state = self.pool.lock();
            let canceller = state.unbusy(self.checkout.take());
            if keep {
                state.idle.push((conn, canceller));
            } else {
                state.open -= 1;
            }
            drop(state);
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counting(AtomicUsize);

    impl Manage for Counting {
        type Conn = (usize, bool);
        fn connect(&self) -> Result<(usize, bool), PluginError> {
            Ok((self.0.fetch_add(1, Ordering::SeqCst), false))
        }
        fn reusable(&self, conn: &mut (usize, bool)) -> bool {
            !conn.1
        }
    }

    #[test]
    fn reuses_bounds_and_drops_broken_connections() {
        let pool = Pool::open(Counting(AtomicUsize::new(0)), 2).expect("pool");
        let a = pool.get().expect("a");
        let b = pool.get().expect("b");
        assert_eq!((a.0, b.0), (0, 1));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| pool.get().expect("c").0);
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "a third caller waits at max 2");
            drop(a);
            assert_eq!(waiter.join().expect("join"), 0, "and gets the returned one");
        });
        let mut b = b;
        b.1 = true; // broken
        drop(b);
        assert_eq!(pool.get().expect("d").0, 0);
        let (x, y) = (pool.get().expect("x"), pool.get().expect("y"));
        assert_eq!(
            (x.0, y.0),
            (0, 2),
            "the broken one was replaced by a new connection"
        );
        y.discard();

        let shared = Arc::new(Pool::open(Counting(AtomicUsize::new(0)), 1).expect("pool"));
        let owned = shared.get_owned().expect("owned");
        let moved = std::thread::spawn(move || owned.0).join().expect("join");
        assert_eq!(moved, 0);
        assert_eq!(
            shared.get().expect("again").0,
            0,
            "an owned checkout goes back to its pool from another thread"
        );
        drop(x);
        pool.clear();
        assert_eq!(pool.get().expect("z").0, 3);
    }

    /// A connection whose canceller counts the cancels it was given.
    struct Cancellable;

    impl Manage for Cancellable {
        type Conn = Arc<AtomicUsize>;
        fn connect(&self) -> Result<Arc<AtomicUsize>, PluginError> {
            Ok(Arc::new(AtomicUsize::new(0)))
        }
        fn canceller(&self, conn: &Arc<AtomicUsize>) -> Option<Canceller> {
            let conn = Arc::clone(conn);
            Some(Box::new(move || {
                conn.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }))
        }
    }

    #[test]
    fn cancel_reaches_exactly_the_checked_out_connections() {
        let pool = Arc::new(Pool::open(Cancellable, 3).expect("pool"));
        let a = pool.get().expect("a");
        let b = pool.get_owned().expect("b");
        let idle = pool.get().expect("c");
        let idle_count = Arc::clone(&idle);
        drop(idle);
        assert_eq!(pool.cancel().expect("cancel"), 2);
        assert_eq!((a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)), (1, 1));
        assert_eq!(
            idle_count.load(Ordering::SeqCst),
            0,
            "an idle one is left alone"
        );
        let b_count = Arc::clone(&b);
        std::thread::spawn(move || drop(b)).join().expect("join");
        a.discard();
        assert_eq!(
            pool.cancel().expect("cancel"),
            0,
            "returned and discarded ones are not busy"
        );
        assert_eq!(b_count.load(Ordering::SeqCst), 1);

        let plain = Pool::open(Counting(AtomicUsize::new(0)), 1).expect("pool");
        let _held = plain.get().expect("held");
        assert_eq!(
            plain.cancel().expect("cancel"),
            0,
            "no canceller, nothing asked"
        );
    }
}

//! A connection and its reads and writes, in the shape of Streamlit's API:
//! `host.connection("pets_db")?.query(sql).param("owner", "Alice").ttl(ttl).fetch()?`.
//!
//! Every read goes through the host's result cache. A `retryable` plugin error resets the
//! connection and tries again (3 attempts, short backoff; `retry_attempts` and
//! `retry_backoff` per connection); a panic inside the plugin drops the connection, and
//! the next call reconnects. So does the first call after `connection_ttl`.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use plugboard_api::{ErrorKind, PluginError};

use crate::cache::ResultCache;
use crate::cache::state::Slot;
use crate::config::secrets::{self, Redactor};
use crate::error::{Error, Result};
use crate::plugin::{Plugin, PluginConnection, worker};

/// Attempts for a call that keeps failing with `retryable` errors, unless the connection
/// sets `retry_attempts`.
pub const MAX_ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two attempts, unless `retry_backoff` itself is longer.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// How `retryable` errors are retried: `attempts` in all; after the n-th failure, a wait
/// of `backoff × 2ⁿ⁻¹`, capped, with jitter (see [`RetryPolicy::delay`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: MAX_ATTEMPTS,
            backoff: BACKOFF,
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempt`-th failure (from 1): exponential from `backoff`,
    /// capped at [`BACKOFF_CAP`] (or at `backoff`, if that is longer), and drawn at random
    /// from its upper half ("equal jitter"), so that many clients that failed together do
    /// not all retry in the same instant. Never overflows, whatever the inputs.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let cap = BACKOFF_CAP.max(self.backoff);
        let grown = 2u32
            .checked_pow(attempt.saturating_sub(1))
            .and_then(|factor| self.backoff.checked_mul(factor))
            .map_or(cap, |d| d.min(cap));
        let half = grown / 2;
        half.saturating_add(half.mul_f64(fastrand::f64()))
    }
}

/// The resolved parameters of a connection.
pub(crate) struct Resolved {
    pub name: String,
    pub plugin: Arc<Plugin>,
    pub table: toml::Table,
    pub ttl: Option<Duration>,
    pub connection_ttl: Option<Duration>,
    /// How long past its TTL a result may be served when a read fails.
    pub stale_if_error: Option<Duration>,
    /// Refresh a memory hit in the background when less than this is left of its TTL.
    pub refresh_ahead: Option<Duration>,
    pub retry: RetryPolicy,
    /// The connection's own, shorter `read_timeout` (isolated plugins only).
    pub read_timeout: Option<Duration>,
    pub redactor: Redactor,
    /// The kind the plugin was chosen for (`ConnectRequest::kind`); empty when the URL's
    /// scheme or dialect chose it.
    pub kind: String,
}

type Handle = Arc<dyn PluginConnection>;

/// What the host shares between every handle to one connection.
pub(crate) struct ConnShared {
    pub(super) name: Arc<str>,
    pub(super) plugin: Arc<Plugin>,
    /// Name, plugin and a keyed digest of the config: what the host knows before
    /// connecting. Invalidation and `cache clear NAME` go by it.
    pub(super) identity: Arc<str>,
    /// Where this connection's generation is kept.
    pub(super) scope: Slot,
    /// The identity every host computes alike (see `identity` in `host.rs`): the scope
    /// of its generation in Redis. Never leaves memory but under an HMAC.
    pub(super) portable: Vec<u8>,
    /// What the plugin last reported it connected to (since plugin-api 1.3): the
    /// database a read really reaches, which its config alone may not say (`PGDATABASE`,
    /// `~/.pgpass`, …). Part of every key, with its own generation, so a write through
    /// any connection to the same database invalidates them all.
    pub(super) target: RwLock<Option<(Arc<str>, Slot)>>,
    /// The JSON `ConnectRequest`; holds secrets, so it is never logged.
    pub(super) connect_request: String,
    pub(super) redactor: Redactor,
    pub(super) default_ttl: Option<Duration>,
    pub(super) stale_if_error: Option<Duration>,
    pub(super) refresh_ahead: Option<Duration>,
    pub(super) connection_ttl: Option<Duration>,
    pub(super) retry: RetryPolicy,
    pub(super) read_timeout: Option<Duration>,
    /// The plugin's connection and when it was opened.
    pub(super) handle: Mutex<Option<(Handle, Instant)>>,
    pub(super) results: Arc<ResultCache>,
}

impl ConnShared {
    /// Connects eagerly, so configuration errors surface where the connection is named.
    pub(crate) fn open(
        r: Resolved,
        identity: String,
        portable: Vec<u8>,
        results: Arc<ResultCache>,
    ) -> Result<Self> {
        let request = plugboard_api::ConnectRequest {
            name: r.name.clone(),
            config: serde_json::to_value(&r.table)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default(),
            kind: r.kind.clone(),
        };
        let shared = Self {
            connect_request: serde_json::to_string(&request).unwrap_or_default(),
            name: r.name.into(),
            plugin: r.plugin,
            scope: results.state().slot(identity.as_bytes()),
            portable,
            target: RwLock::new(None),
            identity: identity.into(),
            redactor: r.redactor,
            default_ttl: r.ttl,
            stale_if_error: r.stale_if_error,
            refresh_ahead: r.refresh_ahead,
            connection_ttl: r.connection_ttl,
            retry: r.retry,
            read_timeout: r.read_timeout,
            handle: Mutex::new(None),
            results,
        };
        shared.with_retry("connect", |_| Ok(()))?;
        Ok(shared)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Option<(Handle, Instant)>> {
        self.handle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The plugin's connection: the open one, or a new one if there is none or it is older
    /// than `connection_ttl`. Concurrent first uses wait on the lock and share one connect.
    pub(super) fn handle(&self) -> std::result::Result<Handle, PluginError> {
        let mut slot = self.lock();
        if let Some((h, opened)) = &*slot {
            if !h.is_live() {
                tracing::debug!(connection = %self.name, "the plugin's worker was replaced; reconnecting");
                slot.take();
            } else if self.connection_ttl.is_none_or(|ttl| opened.elapsed() < ttl) {
                return Ok(Arc::clone(h));
            } else {
                tracing::debug!(connection = %self.name, "connection_ttl passed; reconnecting");
                if let Some((old, _)) = slot.take() {
                    old.close();
                }
            }
        }
        let started = Instant::now();
        let h: Handle = Arc::from(
            self.plugin
                .connect(&self.connect_request, self.read_timeout)?,
        );
        tracing::debug!(connection = %self.name, plugin = %self.plugin.manifest.name, elapsed = ?started.elapsed(), "connected");
        let target = h.target().map(|t| {
            let slot = self.results.state().slot(t.as_bytes());
            (Arc::<str>::from(t), slot)
        });
        *self.target.write().unwrap_or_else(|p| p.into_inner()) = target;
        *slot = Some((Arc::clone(&h), Instant::now()));
        Ok(h)
    }

    /// What the plugin last reported it connected to.
    pub(super) fn target(&self) -> Option<(Arc<str>, Slot)> {
        self.target
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The cache keys of a request of `method`: this host's, and Redis's when `below`
    /// (the read has a TTL) and Redis answers.
    pub(super) fn key(
        &self,
        method: &[u8],
        request: &[u8],
        below: bool,
    ) -> (crate::cache::Key, Option<crate::cache::Key>) {
        let target = self.target();
        let scopes = self.shared_scopes();
        let target = target.as_ref().map(|(t, slot)| (&**t, *slot));
        self.results.key(
            &self.identity,
            self.scope,
            target,
            method,
            request,
            below.then_some(scopes.as_slice()),
        )
    }

    /// Makes every cached result of this connection, and of every connection that reached
    /// the same database, unreachable in every process and host.
    pub(super) fn invalidate(&self) {
        self.results
            .invalidate(&self.identity, &self.slots(), &self.shared_scopes());
    }

    /// What this connection's generations in Redis are kept under: its portable
    /// identity, and the target it reached.
    pub(super) fn shared_scopes(&self) -> Vec<Vec<u8>> {
        let mut scopes = vec![self.portable.clone()];
        scopes.extend(
            self.target()
                .map(|(t, _)| [b"target:".as_slice(), t.as_bytes()].concat()),
        );
        scopes
    }

    /// The generations this connection's keys are built with.
    pub(super) fn slots(&self) -> Vec<Slot> {
        let mut slots = vec![self.scope];
        slots.extend(self.target().map(|(_, slot)| slot));
        slots
    }

    /// Closes the plugin's handle; the next call reconnects.
    pub(super) fn drop_handle(&self) {
        let old = self.lock().take();
        if let Some((h, _)) = old {
            h.close();
        }
    }

    /// The host's error for `e`, which the plugin returned (or its worker's failure) while
    /// `during` the call (`"read"`, `"connect"`, …).
    pub(super) fn error(&self, e: &PluginError, attempts: u32, during: &str) -> Error {
        let plugin = &self.plugin.manifest.name;
        if e.kind == worker::DIED || e.kind == worker::TIMED_OUT {
            let redact = |m: &str| secrets::redact_plugin_text(plugin, &self.redactor.redact(m));
            return Error::Worker {
                plugin: plugin.clone(),
                connection: self.name.to_string(),
                failure: redact(&crate::error::one_line(e.message())),
                during: during_phrase(during),
                stopped: e.kind == worker::TIMED_OUT,
            };
        }
        let mut err = Error::plugin(&self.name, plugin, e, |m| {
            // This connection's secrets, then those of every connection of the plugin.
            secrets::redact_plugin_text(plugin, &self.redactor.redact(m))
        });
        if let Error::Plugin { attempts: a, .. } = &mut err {
            *a = attempts;
        }
        err
    }

    /// Runs `op` on the plugin connection, resetting and retrying on `retryable` errors.
    pub(super) fn with_retry<T>(
        &self,
        what: &str,
        op: impl Fn(&dyn PluginConnection) -> std::result::Result<T, PluginError>,
    ) -> Result<T> {
        let mut attempt = 1;
        loop {
            let result = self.handle().and_then(|h| op(h.as_ref()));
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.retryable && attempt < self.retry.attempts => {
                    tracing::warn!(
                        connection = %self.name, attempt, error = %self.redactor.redact(e.message()),
                        "{what} failed with a retryable error; resetting the connection"
                    );
                    self.drop_handle();
                    std::thread::sleep(self.retry.delay(attempt));
                    attempt += 1;
                }
                Err(e) => {
                    if e.kind == ErrorKind::PANIC {
                        tracing::warn!(connection = %self.name, "the plugin panicked; dropping the connection");
                        self.drop_handle();
                    } else if e.retryable || e.kind == worker::DIED || e.kind == worker::TIMED_OUT {
                        self.drop_handle();
                    }
                    return Err(self.error(&e, attempt, what));
                }
            }
        }
    }
}

/// A handle to an open connection. Cheap to clone; clones share the plugin connection.
#[derive(Clone)]
pub struct Connection {
    pub(super) shared: Arc<ConnShared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.shared.name)
            .field("plugin", &self.shared.plugin.manifest.name)
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(shared: Arc<ConnShared>) -> Self {
        Self { shared }
    }

    /// The connection's name, as configured.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The name of the plugin serving it.
    pub fn plugin(&self) -> &str {
        &self.shared.plugin.manifest.name
    }

    /// The version of the plugin serving it.
    pub fn plugin_version(&self) -> &str {
        &self.shared.plugin.manifest.version
    }

    /// A cheap health check through the plugin.
    pub fn ping(&self) -> Result<()> {
        self.shared.with_retry("ping", |c| c.ping())
    }

    /// Stops what this connection is running, now, from any thread: the reads (and their
    /// streams), executes and catalog calls under way fail with an error whose
    /// [`Error::is_cancelled`] is true. They are not retried, and nothing of them is
    /// cached. With nothing running it does nothing, and it never stops a call that
    /// starts after it.
    ///
    /// `Ok(false)` when nothing can be stopped this way: the plugin was built before
    /// plugboard-api 1.7 or its connector has no way to cancel (the calls then run to
    /// their end), or the connection is being opened. An isolated plugin is asked in its
    /// worker, on a channel of its own.
    pub fn cancel(&self) -> Result<bool> {
        let shared = &self.shared;
        let slot = match shared.handle.try_lock() {
            Ok(slot) => slot,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            // A connect is under way; nothing runs on it yet, and a connect cannot be
            // cancelled.
            Err(std::sync::TryLockError::WouldBlock) => return Ok(false),
        };
        let handle = slot.as_ref().map(|(h, _)| Arc::clone(h));
        drop(slot);
        let Some(handle) = handle else {
            return Ok(true);
        };
        match handle.cancel() {
            Ok(()) => Ok(true),
            Err(e) if e.kind == ErrorKind::UNSUPPORTED => {
                tracing::debug!(connection = %shared.name, why = %e.message(), "cannot cancel");
                Ok(false)
            }
            Err(e) => Err(shared.error(&e, 1, "cancel")),
        }
    }

    /// Closes the plugin's connection and drops this connection's cached results, in
    /// memory and on disk; the next call reconnects.
    pub fn reset(&self) {
        let shared = &self.shared;
        shared.drop_handle();
        shared
            .results
            .clear_connection(&shared.identity, &shared.slots(), &shared.shared_scopes());
    }
}

/// How an error message names a call: `while reading connection "c"`.
fn during_phrase(what: &str) -> &'static str {
    match what {
        "connect" => "connecting to",
        "execute" => "executing on",
        "ping" => "pinging",
        "cancel" => "cancelling on",
        _ => "reading",
    }
}

/// Parameter names are stored without their sigil: `:owner`, `@owner` and `$owner` are `owner`.
pub(super) fn param_name(name: &str) -> String {
    name.trim_start_matches([':', '@', '$']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy::default();
        for attempt in 1..=40 {
            let full = BACKOFF
                .checked_mul(2u32.saturating_pow(attempt - 1))
                .map_or(BACKOFF_CAP, |d| d.min(BACKOFF_CAP));
            let draws: Vec<Duration> = (0..50).map(|_| policy.delay(attempt)).collect();
            for d in &draws {
                assert!(
                    *d >= full / 2 && *d <= full,
                    "attempt {attempt}: {d:?} of {full:?}"
                );
            }
            if full >= Duration::from_millis(10) {
                assert!(
                    draws.iter().any(|d| *d != draws[0]),
                    "attempt {attempt}: no jitter"
                );
            }
        }
        assert!(policy.delay(3) <= Duration::from_millis(200));
        // Enormous settings saturate at their own size instead of overflowing.
        let huge = RetryPolicy {
            attempts: 100,
            backoff: Duration::MAX,
        };
        for attempt in [1, 2, 64, u32::MAX] {
            assert!(huge.delay(attempt) >= Duration::MAX / 2);
        }
    }
}

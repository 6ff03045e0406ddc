//! What a tier below memory is: a store of whole results by key that outlives this
//! process (the disk tier today; a Redis tier shared by machines next). The cache walks
//! memory, then each tier in order, then the source; a tier that fails to store is
//! skipped with a warning, and only the source can fail a read.

use std::time::{Duration, SystemTime};

use polars::prelude::{DataFrame, Schema};

use super::key::Key;
use super::{Outcome, Removed};

/// The keys of one read: this host's (memory's and disk's), and the one every host
/// shares (Redis's), when Redis answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keys {
    pub local: Key,
    pub shared: Option<Key>,
}

/// A cached result found in a tier.
pub(crate) struct Hit {
    pub df: DataFrame,
    pub created: SystemTime,
    pub expires: SystemTime,
}

/// Whose result an entry is: recorded with it, for statistics and invalidation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    /// The connection's name.
    pub connection: &'a str,
    /// The connection's identity (a keyed digest, never its config).
    pub identity: &'a str,
    /// The connection's identity as every host computes it (no secret in it): what
    /// the Redis tier's entries are owned by.
    pub portable: &'a [u8],
    /// How long past its TTL the entry may still be served (`stale_if_error`): a tier
    /// that expires entries itself keeps them this much longer.
    pub keep: Duration,
}

/// A result being stored batch by batch (a streamed read); nothing is visible until
/// [`Pending::commit`], and dropping it unfinished leaves nothing behind.
pub(crate) trait Pending: Send {
    fn write(&mut self, df: &DataFrame) -> Result<(), String>;
    fn commit(self: Box<Self>) -> Result<(), String>;
}

/// A tier below memory.
pub(crate) trait Tier: Send + Sync {
    /// What a hit from this tier is called in logs and [`Outcome`].
    fn outcome(&self) -> Outcome;
    /// The entry for `key`, if it is whole, unexpired and younger than `max_age`.
    fn load(&self, keys: &Keys, max_age: Duration) -> Option<Hit>;
    /// The entry for `key`, if it is whole and expired less than `grace` ago (or not
    /// at all): the last good result, for `stale_if_error`.
    fn load_stale(&self, keys: &Keys, grace: Duration) -> Option<Hit>;
    /// Stores a whole result.
    fn store(
        &self,
        keys: &Keys,
        owner: Owner<'_>,
        df: &DataFrame,
        ttl: Duration,
    ) -> Result<(), String>;
    /// Starts storing a result that arrives batch by batch.
    fn begin(
        &self,
        keys: &Keys,
        owner: Owner<'_>,
        ttl: Duration,
        schema: &Schema,
    ) -> Result<Box<dyn Pending>, String>;
    /// Removes one connection's entries (by identity).
    fn clear_identity(&self, identity: &str) -> Removed;
    /// Removes every entry.
    fn clear(&self) -> Removed;
}

//! API keys recently found in the database, so that a client sending many requests does not pay
//! a database round trip for each: at a thousand requests a second, that lookup was most of
//! the gateway's own CPU time.
//!
//! An entry lives for `auth.api_key_cache` (a few seconds). Changes made through this process
//! (revoking a key, disabling, demoting or deleting its user) drop the affected entries at
//! once; changes made by another process sharing the database take effect when the entry
//! expires. Only keys that were found are cached: a wrong key always reaches the database and
//! the client-failure limiter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kai_core::{ApiKey, ApiKeyId, User, UserId};

/// Entries kept at most; past this, expired ones are dropped, and if none have, all of them.
/// A node with this many keys in active use is far beyond what the cache is for.
const CAPACITY: usize = 10_000;

#[derive(Debug, Clone)]
pub(crate) struct CachedKey {
    pub(crate) api_key: ApiKey,
    pub(crate) user: User,
}

#[derive(Debug)]
struct Entry {
    key: CachedKey,
    fetched: Instant,
}

#[derive(Debug)]
pub(crate) struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl KeyCache {
    /// A cache whose entries live for `ttl`; zero turns caching off.
    pub(crate) fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, digest: &[u8; 32]) -> Option<CachedKey> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.lock();
        entries
            .get(digest)
            .filter(|entry| entry.fetched.elapsed() < self.ttl)
            .map(|entry| entry.key.clone())
    }

    pub(crate) fn put(&self, digest: [u8; 32], key: CachedKey) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, entry| entry.fetched.elapsed() < ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            digest,
            Entry {
                key,
                fetched: Instant::now(),
            },
        );
    }

    /// Records a use written to the database, so the entry does not ask for another one.
    pub(crate) fn touched(&self, digest: &[u8; 32], at: time::OffsetDateTime) {
        if let Some(entry) = self.lock().get_mut(digest) {
            entry.key.api_key.last_used_at = Some(at);
        }
    }

    pub(crate) fn forget_key(&self, id: ApiKeyId) {
        self.lock().retain(|_, entry| entry.key.api_key.id != id);
    }

    pub(crate) fn forget_user(&self, id: UserId) {
        self.lock().retain(|_, entry| entry.key.user.id != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // A panic while holding this lock leaves a map that is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

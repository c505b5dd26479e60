//! The shared HTTP cache (RFC 9111), built up in parts: [`control`] parses `Cache-Control`,
//! [`rules`] decides what may be stored and reused, [`key`] makes primary keys and matches
//! `Vary` variants, [`coalesce`] makes concurrent misses share one origin fetch, [`memory`] is
//! the memory tier with its purges, [`disk`] the disk tier shared by the workers, and
//! [`record`] its checked file format; [`status`] writes `Cache-Status` (RFC 9211); [`store`]
//! puts them together behind lookup, store, refresh, invalidate and purge. Not yet wired into
//! the proxy path (issue #6).

use std::time::Duration;

pub mod coalesce;
pub mod control;
pub mod disk;
pub mod handler;
pub mod key;
pub mod memory;
pub mod purge;
pub mod record;
pub mod rules;
pub mod status;
pub mod store;
pub mod unkeyed;

/// The resolved `[cache]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Bytes of the memory tier, per worker process.
    pub memory_bytes: usize,
    /// How long a request waits for another's fill.
    pub lock_timeout: Duration,
    /// How long past freshness a response may be served when the origin fails.
    pub grace: Duration,
    /// Clients allowed to send `PURGE` and read purge statuses.
    pub purge_allow: Vec<ipnet::IpNet>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            memory_bytes: 64 << 20,
            lock_timeout: Duration::from_secs(10),
            grace: Duration::ZERO,
            purge_allow: crate::admin::loopback(),
        }
    }
}

impl Settings {
    /// The cache these settings describe (memory tier only).
    pub fn build(&self) -> store::Cache {
        store::Cache {
            memory: memory::MemoryStore::new(self.memory_bytes, (self.memory_bytes / 8192).max(64)),
            disk: None,
            coalescer: Default::default(),
            lock_timeout: self.lock_timeout,
            grace: self.grace,
        }
    }
}

/// Request or response fields from `(name, value)` pairs, for the cache's tests.
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    map
}

//! The shared HTTP cache (RFC 9111), built up in parts: [`control`] parses `Cache-Control`,
//! [`rules`] decides what may be stored and reused, [`key`] makes primary keys and matches
//! `Vary` variants, [`coalesce`] makes concurrent misses share one origin fetch, [`memory`] is
//! the memory tier with its purges, [`disk`] the disk tier shared by the workers, and
//! [`record`] its checked file format; [`status`] writes `Cache-Status` (RFC 9211); [`store`]
//! puts them together behind lookup, store, refresh, invalidate and purge, and [`handler`] is
//! what a `proxy` route with `cache = true` runs.
//!
//! Each worker builds its own [`store::Cache`] from [`Settings`] (`edge::server`): its own
//! memory tier and coalescer, and — when `disk` is set — the disk tier on the folder every
//! worker opens, so they share it through the file system. The file system is only touched
//! off the async runtime (`spawn_blocking`); the express lane uses the memory tier only. The
//! disk tier's byte bound is kept by one process, the master (or the single process), with
//! [`disk::keep_bound`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    /// The disk tier, when `disk` is above zero.
    pub disk: Option<Disk>,
}

/// The resolved `disk` and `disk_path` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Bytes of stored files the folder is trimmed down to, every [`disk::TRIM_PERIOD`].
    pub max_bytes: u64,
    /// The folder (absolute, or as the data directory was given). `None` until
    /// `Config::attach` sets the default, `DATA_DIR/cache`.
    pub path: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            memory_bytes: 64 << 20,
            lock_timeout: Duration::from_secs(10),
            grace: Duration::ZERO,
            purge_allow: crate::admin::loopback(),
            disk: None,
        }
    }
}

impl Settings {
    /// The cache these settings describe. The disk tier's folder is created when absent; if
    /// it cannot be, the error is logged and this cache has the memory tier only (the server
    /// keeps serving).
    pub fn build(&self) -> store::Cache {
        let disk = self.disk.as_ref().and_then(|disk| {
            let Some(path) = &disk.path else {
                tracing::error!("the disk cache has no folder (no data directory): memory only");
                return None;
            };
            match disk::DiskStore::open(path) {
                Ok(store) => Some(Arc::new(store)),
                Err(e) => {
                    tracing::error!(folder = %path.display(), error = %e, "cannot open the disk cache: memory only");
                    None
                }
            }
        });
        store::Cache {
            memory: memory::MemoryStore::new(self.memory_bytes, (self.memory_bytes / 8192).max(64)),
            disk,
            coalescer: Default::default(),
            lock_timeout: self.lock_timeout,
            grace: self.grace,
            disk_writes: Default::default(),
            family: Default::default(),
        }
    }

    /// Sets the disk tier's default folder, `DATA_DIR/cache`, unless `disk_path` named one.
    pub fn attach(&mut self, data_dir: &Path) {
        if let Some(disk) = &mut self.disk
            && disk.path.is_none()
        {
            disk.path = Some(data_dir.join("cache"));
        }
    }

    /// The task that keeps the disk tier under its bound (the master's, or the single
    /// process's: one per server); `None` without a disk tier.
    pub fn keep_disk_bound(&self) -> Option<tokio::task::JoinHandle<()>> {
        let disk = self.disk.as_ref()?;
        let path = disk.path.clone()?;
        Some(tokio::spawn(disk::keep_bound(path, disk.max_bytes)))
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

//! Logging set-up ([`logging`]), the access log writer ([`access_log`]) and the counters
//! workers share with the master ([`counters`]) in a shared-memory region ([`shm`]).
//!
//! The error log is `tracing` to stderr; the access log is a product feature with its own
//! writer and formats, fed one record per request by the edge.

pub mod access_log;
pub mod counters;
pub mod logging;
pub mod shm;

use std::path::PathBuf;

/// Settings for logs.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// A `tracing` filter (`info`, `portico=debug`); `RUST_LOG` wins when set. Default `info`.
    pub log_level: Option<String>,
    /// Where and how to write the access log; `None` = no access log.
    pub access_log: Option<AccessLog>,
}

/// The access log's destination and format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    pub target: LogTarget,
    pub format: LogFormat,
}

/// Where a log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
    File(PathBuf),
}

/// Access log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// nginx/Apache combined, plus the request time in seconds.
    Combined,
    /// One JSON object per line.
    Json,
}

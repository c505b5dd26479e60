//! The shared HTTP cache (RFC 9111), built up in parts: [`control`] parses `Cache-Control`,
//! [`rules`] decides what may be stored and reused, [`key`] makes primary keys and matches
//! `Vary` variants, [`coalesce`] makes concurrent misses share one origin fetch, [`memory`] is
//! the memory tier with its purges, [`record`] is the disk tier's checked file format. The
//! disk tier's index joins as the cache is wired into the proxy path.

pub mod coalesce;
pub mod control;
pub mod key;
pub mod memory;
pub mod record;
pub mod rules;

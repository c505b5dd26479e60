//! The shared HTTP cache (RFC 9111), built up in parts: [`control`] parses `Cache-Control`,
//! [`rules`] decides what may be stored and reused, [`key`] makes primary keys and matches
//! `Vary` variants, [`coalesce`] makes concurrent misses share one origin fetch, [`memory`] is
//! the memory tier with its purges, [`disk`] the disk tier shared by the workers, and
//! [`record`] its checked file format; [`status`] writes `Cache-Status` (RFC 9211); [`store`]
//! puts them together behind lookup, store, refresh, invalidate and purge. Not yet wired into
//! the proxy path (issue #6).

pub mod coalesce;
pub mod control;
pub mod disk;
pub mod key;
pub mod memory;
pub mod record;
pub mod rules;
pub mod status;
pub mod store;

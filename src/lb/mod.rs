//! Upstream pools: members, the balancing policies that choose among them ([`policy`]:
//! weighted round robin, least connections, consistent hashing, power of two choices), sticky
//! sessions by cookie, and member health ([`health`]: active and passive checks).
//!
//! Shared machinery below `proxy`, which asks a [`Pool`] for a member per request attempt and
//! reports how it went through the [`Lease`]. Nothing here does HTTP forwarding; the only I/O
//! is the active checks' own requests. One pool per upstream per worker process: in-flight
//! counts, latency averages and health are per worker (see [`health`] for why).

pub mod hash;
pub mod health;
pub mod policy;
pub mod pool;
pub mod settings;

pub use pool::{Lease, Member, Pool, Subject};
pub use settings::{ActiveHealth, HashKey, MemberSettings, PassiveHealth, Policy, Settings};

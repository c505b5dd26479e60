//! Balancing policies: one file per policy, each an implementation of [`Policy`] over the
//! pool's members.
//!
//! A policy sees the members with their live state and a predicate telling which it may
//! choose (healthy, not ejected, not already tried for this request); it never sees health
//! rules itself. Choices are lock-free: atomics only.

mod consistent_hash;
mod least_conn;
mod p2c;
mod round_robin;

pub use consistent_hash::Ring;
pub use round_robin::RoundRobin;

use super::pool::{Member, Subject};
use super::settings::{MemberSettings, Policy as Kind};

/// How a member is chosen.
pub trait Policy: Send + Sync {
    /// The request's hash key, for policies that hash one.
    fn key(&self, _subject: &Subject<'_>) -> Option<u64> {
        None
    }

    /// An available member (`available(i)`), or `None` when there is none.
    fn pick(
        &self,
        members: &[Member],
        key: Option<u64>,
        available: &dyn Fn(usize) -> bool,
    ) -> Option<usize>;
}

/// The policy `kind` for `members`.
pub fn build(kind: &Kind, members: &[MemberSettings]) -> Box<dyn Policy> {
    match kind {
        Kind::RoundRobin => Box::new(RoundRobin::new(members)),
        Kind::LeastConn => Box::new(least_conn::LeastConn::default()),
        Kind::Hash(key) => Box::new(consistent_hash::ConsistentHash::new(key.clone(), members)),
        Kind::P2c => Box::new(p2c::P2c),
    }
}

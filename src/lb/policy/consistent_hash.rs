//! Consistent hashing on a ring with virtual nodes (Karger et al.; ketama's layout): each
//! member owns 1000 points per unit of weight, placed by hashing its address and the point's
//! number; a key goes to the member owning the first point at or after the key's hash.
//!
//! A member's points depend only on its own address, so removing a member (or taking it out
//! for health) moves exactly the keys it owned, about 1/N of them, to the members after its
//! points; every other key stays. An unavailable member is skipped by walking on along the
//! ring, which is the same as removing it. A request without the key (no such header or
//! cookie) is balanced round robin instead.

use std::net::IpAddr;

use super::{Policy, RoundRobin};
use crate::lb::hash::hash;
use crate::lb::pool::{Member, Subject, cookie};
use crate::lb::settings::{HashKey, MemberSettings};

/// Points per unit of weight. ketama's 160 leave members' shares ±20 % apart (measured with
/// five members); 1000 bring that to ±5 %, for 16 KB per member and two more steps of binary
/// search.
const POINTS_PER_WEIGHT: u32 = 1000;

/// At most this many points in a ring (4 MiB; weights are scaled down to fit).
const MAX_POINTS: usize = 1 << 18;

/// The policy: a key, the ring, and round robin for requests without the key.
pub struct ConsistentHash {
    key: HashKey,
    ring: Ring,
    fallback: RoundRobin,
}

/// Points on the ring, sorted, each naming a member.
pub struct Ring {
    points: Vec<(u64, u32)>,
}

impl ConsistentHash {
    pub fn new(key: HashKey, members: &[MemberSettings]) -> Self {
        let named: Vec<(&str, u32)> = members
            .iter()
            .map(|m| (m.authority.as_str(), m.weight))
            .collect();
        ConsistentHash {
            key,
            ring: Ring::new(&named),
            fallback: RoundRobin::new(members),
        }
    }
}

impl Policy for ConsistentHash {
    fn key(&self, subject: &Subject<'_>) -> Option<u64> {
        let parts = subject.parts;
        match &self.key {
            HashKey::Uri => Some(hash(
                parts
                    .uri
                    .path_and_query()
                    .map_or(parts.uri.path(), |pq| pq.as_str())
                    .as_bytes(),
            )),
            HashKey::Header(name) => parts.headers.get(name).map(|v| hash(v.as_bytes())),
            HashKey::Cookie(name) => cookie(&parts.headers, name).map(|v| hash(v.as_bytes())),
            HashKey::ClientIp => Some(match subject.client_ip {
                IpAddr::V4(ip) => hash(&ip.octets()),
                IpAddr::V6(ip) => hash(&ip.octets()),
            }),
        }
    }

    fn pick(
        &self,
        _members: &[Member],
        key: Option<u64>,
        available: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        match key {
            Some(key) => self.ring.lookup(key, available),
            None => self.fallback.next(available),
        }
    }
}

impl Ring {
    /// A ring of members given as (name, weight); a member's points depend on its name only.
    pub fn new(members: &[(&str, u32)]) -> Self {
        let total: u64 = members.iter().map(|&(_, w)| u64::from(w)).sum();
        let per_weight = if total * u64::from(POINTS_PER_WEIGHT) > MAX_POINTS as u64 {
            (MAX_POINTS as u64 / total.max(1)).max(1) as u32
        } else {
            POINTS_PER_WEIGHT
        };
        let mut points = Vec::new();
        for (index, &(name, weight)) in members.iter().enumerate() {
            for n in 0..weight * per_weight {
                points.push((hash(format!("{name}#{n}").as_bytes()), index as u32));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// The member owning `key`: the first available one at or after the key on the ring.
    pub fn lookup(&self, key: u64, available: &dyn Fn(usize) -> bool) -> Option<usize> {
        let len = self.points.len();
        let start = self.points.partition_point(|&(point, _)| point < key);
        (0..len)
            .map(|k| self.points[(start + k) % len].1 as usize)
            .find(|&i| available(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: u64 = 20_000;

    fn owners(ring: &Ring, available: &dyn Fn(usize) -> bool) -> Vec<usize> {
        (0..KEYS)
            .map(|k| ring.lookup(hash(&k.to_le_bytes()), available).unwrap())
            .collect()
    }

    #[test]
    fn removing_one_of_n_moves_only_its_keys_about_one_nth() {
        let names = [
            "10.0.0.1:80",
            "10.0.0.2:80",
            "10.0.0.3:80",
            "10.0.0.4:80",
            "10.0.0.5:80",
        ];
        let n = names.len();
        let ring = Ring::new(&names.map(|name| (name, 1)));
        let before = owners(&ring, &|_| true);
        // Each member owns about 1/N of the keys.
        for member in 0..n {
            let share = before.iter().filter(|&&m| m == member).count() as f64 / KEYS as f64;
            assert!((share - 0.2).abs() < 0.03, "member {member} owns {share}");
        }
        for removed in 0..n {
            // Taken out for health: skipped on the ring.
            let after = owners(&ring, &|i| i != removed);
            let moved: Vec<usize> = (0..KEYS as usize)
                .filter(|&k| before[k] != after[k])
                .collect();
            assert!(
                moved.iter().all(|&k| before[k] == removed),
                "a key of another member moved"
            );
            let fraction = moved.len() as f64 / KEYS as f64;
            assert!(fraction <= 1.0 / n as f64 + 0.03, "{fraction} moved");
            // Removed from the configuration: the same owners as skipping it.
            let rest: Vec<(&str, u32)> = names
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != removed)
                .map(|(_, &name)| (name, 1))
                .collect();
            let smaller = owners(&Ring::new(&rest), &|_| true);
            let renumber = |i: usize| if i > removed { i - 1 } else { i };
            assert!(
                (0..KEYS as usize).all(|k| smaller[k] == renumber(after[k])),
                "removal and ejection disagree"
            );
        }
    }

    #[test]
    fn weights_scale_the_share() {
        let ring = Ring::new(&[("a:1", 1), ("b:1", 3)]);
        let owned = owners(&ring, &|_| true);
        let share = owned.iter().filter(|&&m| m == 1).count() as f64 / KEYS as f64;
        assert!((share - 0.75).abs() < 0.05, "{share}");
    }

    #[test]
    fn nothing_available_is_none() {
        let ring = Ring::new(&[("a:1", 1)]);
        assert_eq!(ring.lookup(42, &|_| false), None);
        assert_eq!(Ring::new(&[]).lookup(42, &|_| true), None);
    }
}

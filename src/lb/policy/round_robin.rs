//! Weighted round robin, nginx's smooth variant: over `sum(weights)` picks each member is
//! chosen exactly `weight` times, spread out (weights 5, 1, 1 give `a a b a c a a`, not
//! `a a a a a b c`).
//!
//! The sequence is computed once into a schedule, and a pick is one atomic increment and a
//! table read; unavailable members are skipped by taking the next entry. Each worker counts
//! from the start of the schedule, so N workers together stay within N picks of exact.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::Policy;
use crate::lb::pool::Member;
use crate::lb::settings::MemberSettings;

/// The schedule and the position in it.
pub struct RoundRobin {
    schedule: Vec<u32>,
    next: AtomicUsize,
}

impl RoundRobin {
    pub fn new(members: &[MemberSettings]) -> Self {
        RoundRobin {
            schedule: schedule(&members.iter().map(|m| m.weight).collect::<Vec<_>>()),
            next: AtomicUsize::new(0),
        }
    }

    /// The next available member in the schedule.
    pub fn next(&self, available: &dyn Fn(usize) -> bool) -> Option<usize> {
        let len = self.schedule.len();
        if len == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..len)
            .map(|k| self.schedule[(start + k) % len] as usize)
            .find(|&i| available(i))
    }
}

impl Policy for RoundRobin {
    fn pick(
        &self,
        _members: &[Member],
        _key: Option<u64>,
        available: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        self.next(available)
    }
}

/// nginx's smooth weighted round robin, run for one period (`sum(weights)` picks): each step
/// every member's current weight grows by its weight, the largest is chosen and loses the
/// total. Weights are divided by their greatest common divisor first, so 2:2 is 1:1.
fn schedule(weights: &[u32]) -> Vec<u32> {
    let divisor = weights.iter().copied().fold(0, gcd).max(1);
    let weights: Vec<i64> = weights.iter().map(|&w| i64::from(w / divisor)).collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    let mut schedule = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&weights) {
            *c += w;
        }
        // The first of the largest, so equal weights go in configuration order.
        let (best, _) =
            current.iter().enumerate().fold(
                (0, i64::MIN),
                |(bi, bc), (i, &c)| if c > bc { (i, c) } else { (bi, bc) },
            );
        current[best] -= total;
        schedule.push(best as u32);
    }
    schedule
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_smooth_and_exact() {
        assert_eq!(schedule(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(schedule(&[1, 1, 1]), vec![0, 1, 2]);
        assert_eq!(schedule(&[2, 2]), vec![0, 1]);
        let s = schedule(&[3, 1]);
        assert_eq!(s.iter().filter(|&&i| i == 0).count(), 3);
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn picks_cycle_and_skip_unavailable_members() {
        let rr = RoundRobin {
            schedule: schedule(&[1, 1, 1]),
            next: AtomicUsize::new(0),
        };
        let all = |_| true;
        let picks: Vec<_> = (0..6).map(|_| rr.next(&all).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        let not_one = |i| i != 1;
        let picks: Vec<_> = (0..4).map(|_| rr.next(&not_one).unwrap()).collect();
        assert_eq!(picks, vec![0, 2, 2, 0]);
        assert_eq!(rr.next(&|_| false), None);
    }

    #[test]
    fn counts_over_many_periods_follow_the_weights() {
        let rr = RoundRobin {
            schedule: schedule(&[1, 2, 3]),
            next: AtomicUsize::new(0),
        };
        let mut counts = [0; 3];
        for _ in 0..600 {
            counts[rr.next(&|_| true).unwrap()] += 1;
        }
        assert_eq!(counts, [100, 200, 300]);
    }
}

//! Least connections: the available member with the fewest requests in flight relative to its
//! weight (nginx `least_conn`). Ties go round robin, so an idle pool still spreads requests.
//!
//! Requests in flight are this worker's own (see `lb::pool`): with several workers each
//! balances what it carries.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::Policy;
use crate::lb::pool::Member;

/// Where the scan for ties starts next.
#[derive(Default)]
pub struct LeastConn {
    next: AtomicUsize,
}

impl Policy for LeastConn {
    fn pick(
        &self,
        members: &[Member],
        _key: Option<u64>,
        available: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let load = |i: usize| (members[i].in_flight(), members[i].settings.weight);
        least(
            members.len(),
            &load,
            self.next.fetch_add(1, Ordering::Relaxed),
            available,
        )
    }
}

/// Of `n` members with `load(i)` = (in flight, weight), the available index with the lowest
/// in-flight/weight, scanning from `start` so that the first of equals rotates.
fn least(
    n: usize,
    load: &dyn Fn(usize) -> (usize, u32),
    start: usize,
    available: &dyn Fn(usize) -> bool,
) -> Option<usize> {
    let mut best: Option<(usize, (usize, u32))> = None;
    for k in 0..n {
        let i = (start + k) % n;
        if !available(i) {
            continue;
        }
        let here = load(i);
        best = match best {
            // a/wa < b/wb  ⇔  a·wb < b·wa (weights are positive).
            Some((b, there))
                if (here.0 as u64) * u64::from(there.1) >= (there.0 as u64) * u64::from(here.1) =>
            {
                Some((b, there))
            }
            _ => Some((i, here)),
        };
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(
        loads: &[(usize, u32)],
        start: usize,
        available: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        least(loads.len(), &|i| loads[i], start, available)
    }

    #[test]
    fn the_least_loaded_member_wins() {
        let all = |_| true;
        assert_eq!(pick(&[(3, 1), (1, 1), (2, 1)], 0, &all), Some(1));
        // Weight 4 with 3 in flight (0.75) beats weight 1 with 1 (1.0).
        assert_eq!(pick(&[(1, 1), (3, 4)], 0, &all), Some(1));
        assert_eq!(pick(&[(0, 1), (0, 1)], 1, &|i| i == 0), Some(0));
        assert_eq!(pick(&[(0, 1)], 0, &|_| false), None);
    }

    #[test]
    fn ties_rotate() {
        let all = |_| true;
        let picks: Vec<_> = (0..3)
            .map(|start| pick(&[(0, 1), (0, 1), (0, 1)], start, &all).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 1, 2]);
    }
}

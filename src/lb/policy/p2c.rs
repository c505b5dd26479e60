//! Power of two choices on a moving average of latency (Mitzenmacher; linkerd's and Finagle's
//! "P2C + EWMA"): two distinct members drawn at random, and the one with the lower cost wins,
//! cost = (average time to a response head + 1 µs) × (requests in flight + 1) / weight.
//!
//! Two random choices avoid both the herd that "always the best" causes (every worker piles
//! on the same member until its average catches up) and the blindness of pure randomness. A
//! member without a sample yet costs only its in-flight count, so it gets tried.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

use super::Policy;
use crate::lb::pool::Member;

/// The policy has no state of its own: the averages live on the members.
pub struct P2c;

impl Policy for P2c {
    fn pick(
        &self,
        members: &[Member],
        _key: Option<u64>,
        available: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let n = members.len();
        let cost = |i: usize| {
            let m = &members[i];
            (m.latency_us() + 1.0) * (m.in_flight() as f64 + 1.0) / f64::from(m.settings.weight)
        };
        if n >= 2 {
            // A few draws usually find two available members; else the full scan below.
            for _ in 0..4 {
                let a = random_below(n);
                let mut b = random_below(n - 1);
                if b >= a {
                    b += 1;
                }
                if available(a) && available(b) {
                    return Some(if cost(b) < cost(a) { b } else { a });
                }
            }
        }
        (0..n)
            .filter(|&i| available(i))
            .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
    }
}

thread_local! {
    /// xorshift64* state, seeded per thread from std's random hasher keys.
    static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0u64) | 1);
}

/// A number in `0..n` (`n` > 0); not for anything secret.
fn random_below(n: usize) -> usize {
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_numbers_stay_in_range_and_vary() {
        let mut seen = [0; 5];
        for _ in 0..1000 {
            seen[random_below(5)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 100), "{seen:?}");
    }
}

//! Passive health: consecutive failures of real requests (connection errors, timeouts, broken
//! responses) eject a member for a back-off period, nginx's `max_fails`/`fail_timeout` with
//! a growing period.
//!
//! After `max_fails` failures in a row the member is out for `fail_timeout`. When the period
//! ends it gets requests again, but on probation: one more failure ejects it again, for twice
//! as long (at most [`MAX_EJECTION`]). One success ends probation and resets everything.
//! Times are milliseconds on the pool's clock, passed in, so the rules are tested without one.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::lb::settings::{MAX_EJECTION, PassiveHealth};

/// How a request to a member ended, as passive checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response head came.
    Success,
    /// A connection error, a timeout or a broken response.
    Failure,
}

/// One member's passive state. Concurrent updates may race (two failures counted as one, an
/// ejection stretched by a moment); none can leave a member out for good, which is what
/// matters.
pub struct Passive {
    settings: PassiveHealth,
    /// Failures since the last success.
    failures: AtomicU32,
    /// Ejections since the last success (the back-off doubles with each).
    ejections: AtomicU32,
    /// Out until this time (ms on the pool's clock); 0 = not ejected.
    until_ms: AtomicU64,
}

impl Passive {
    pub fn new(settings: PassiveHealth) -> Self {
        Passive {
            settings,
            failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            until_ms: AtomicU64::new(0),
        }
    }

    pub fn is_ejected(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms.load(Ordering::Relaxed)
    }

    /// Records an outcome at `now_ms`; true when this failure ejected the member.
    pub fn record(&self, outcome: Outcome, now_ms: u64) -> bool {
        let max_fails = self.settings.max_fails;
        match outcome {
            Outcome::Success => {
                if self.failures.load(Ordering::Relaxed) != 0
                    || self.ejections.load(Ordering::Relaxed) != 0
                {
                    self.failures.store(0, Ordering::Relaxed);
                    self.ejections.store(0, Ordering::Relaxed);
                    self.until_ms.store(0, Ordering::Relaxed);
                }
                false
            }
            Outcome::Failure if max_fails == 0 => false,
            Outcome::Failure => {
                if self.is_ejected(now_ms) {
                    // Requests sent before the ejection still fail; they do not extend it.
                    return false;
                }
                let on_probation = self.ejections.load(Ordering::Relaxed) > 0;
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures < max_fails && !on_probation {
                    return false;
                }
                let ejections = self.ejections.fetch_add(1, Ordering::Relaxed) + 1;
                let factor = 1u32 << (ejections - 1).min(16);
                let period = self
                    .settings
                    .fail_timeout
                    .saturating_mul(factor)
                    .min(MAX_EJECTION);
                self.until_ms
                    .store(now_ms + period.as_millis() as u64, Ordering::Relaxed);
                self.failures.store(0, Ordering::Relaxed);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn passive() -> Passive {
        Passive::new(PassiveHealth {
            max_fails: 3,
            fail_timeout: Duration::from_secs(10),
        })
    }

    #[test]
    fn consecutive_failures_eject_for_the_back_off() {
        let p = passive();
        assert!(!p.record(Outcome::Failure, 0));
        assert!(!p.record(Outcome::Failure, 0));
        assert!(p.record(Outcome::Failure, 1_000));
        assert!(p.is_ejected(1_000));
        assert!(p.is_ejected(10_999));
        assert!(!p.is_ejected(11_000));
    }

    #[test]
    fn a_success_in_between_restarts_the_count() {
        let p = passive();
        p.record(Outcome::Failure, 0);
        p.record(Outcome::Failure, 0);
        p.record(Outcome::Success, 0);
        assert!(!p.record(Outcome::Failure, 0));
        assert!(!p.record(Outcome::Failure, 0));
        assert!(!p.is_ejected(0));
    }

    #[test]
    fn on_probation_one_failure_ejects_for_twice_as_long() {
        let p = passive();
        for _ in 0..3 {
            p.record(Outcome::Failure, 0);
        }
        // Back after 10 s; one failure: out for 20 s.
        assert!(p.record(Outcome::Failure, 10_000));
        assert!(p.is_ejected(29_999));
        assert!(!p.is_ejected(30_000));
        // Then 40 s; a success ends it all.
        assert!(p.record(Outcome::Failure, 30_000));
        assert!(p.is_ejected(69_999));
        p.record(Outcome::Success, 70_000);
        assert!(!p.record(Outcome::Failure, 70_000));
    }

    #[test]
    fn the_back_off_is_capped_and_zero_max_fails_turns_it_off() {
        let p = passive();
        let mut now = 0;
        for _ in 0..3 {
            p.record(Outcome::Failure, now);
        }
        for _ in 0..20 {
            now += MAX_EJECTION.as_millis() as u64;
            p.record(Outcome::Failure, now);
        }
        assert!(!p.is_ejected(now + MAX_EJECTION.as_millis() as u64));
        let off = Passive::new(PassiveHealth {
            max_fails: 0,
            fail_timeout: Duration::from_secs(10),
        });
        for _ in 0..10 {
            assert!(!off.record(Outcome::Failure, 0));
        }
        assert!(!off.is_ejected(0));
    }
}

//! Member health: active checks ([`active`]: a request to each member at an interval, with
//! rise and fall counts) and passive ones ([`passive`]: consecutive failures of real requests
//! eject a member for a back-off period). A member is available when both agree.
//!
//! Per worker process: each worker checks each member itself and keeps what it learned (as
//! HAProxy's processes and nginx without `zone` do). The cost is one check per member per
//! worker per interval; the gain is that no state crosses processes and a worker never waits
//! on another to decide. A member a check just took out is still tried by a worker whose own
//! check has not run yet, and its passive checks cover the gap.

pub mod active;
pub mod passive;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::settings::PassiveHealth;

pub use passive::Outcome;

/// What one worker knows about one member's health.
pub struct Health {
    /// The active checks' verdict (true until they say otherwise, and when there are none).
    up: AtomicBool,
    /// Consecutive check results that disagree with `up` (towards `rise` or `fall`).
    streak: AtomicU32,
    passive: passive::Passive,
}

impl Health {
    pub fn new(passive: PassiveHealth) -> Self {
        Health {
            up: AtomicBool::new(true),
            streak: AtomicU32::new(0),
            passive: passive::Passive::new(passive),
        }
    }

    /// Healthy by the active checks and not ejected by the passive ones at `now_ms`.
    pub fn is_available(&self, now_ms: u64) -> bool {
        self.up.load(Ordering::Relaxed) && !self.passive.is_ejected(now_ms)
    }

    /// Whether the active checks hold the member healthy.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// One active check's result; the verdict flips after `rise` passes (when down) or `fall`
    /// failures (when up) in a row. Returns the new verdict when it flipped. Only the member's
    /// own check task calls this, so the read-modify-write needs no lock.
    pub fn record_check(&self, passed: bool, rise: u32, fall: u32) -> Option<bool> {
        let up = self.up.load(Ordering::Relaxed);
        if passed == up {
            self.streak.store(0, Ordering::Relaxed);
            return None;
        }
        let streak = self.streak.fetch_add(1, Ordering::Relaxed) + 1;
        let needed = if up { fall } else { rise };
        if streak < needed.max(1) {
            return None;
        }
        self.streak.store(0, Ordering::Relaxed);
        self.up.store(passed, Ordering::Relaxed);
        if passed {
            // Back by the active checks: forget an ejection, as a success would.
            self.passive.record(Outcome::Success, 0);
        }
        Some(passed)
    }

    /// A real request's outcome at `now_ms`; true when it ejected the member.
    pub fn record(&self, outcome: Outcome, now_ms: u64) -> bool {
        self.passive.record(outcome, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_then_rise_in_a_row() {
        let health = Health::new(PassiveHealth::default());
        assert!(health.is_up());
        assert_eq!(health.record_check(false, 2, 3), None);
        assert_eq!(health.record_check(false, 2, 3), None);
        // A pass in between restarts the count.
        assert_eq!(health.record_check(true, 2, 3), None);
        assert_eq!(health.record_check(false, 2, 3), None);
        assert_eq!(health.record_check(false, 2, 3), None);
        assert_eq!(health.record_check(false, 2, 3), Some(false));
        assert!(!health.is_available(0));
        assert_eq!(health.record_check(true, 2, 3), None);
        assert_eq!(health.record_check(true, 2, 3), Some(true));
        assert!(health.is_available(0));
    }
}

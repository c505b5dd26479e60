//! Handing freed memory back to the operating system.
//!
//! When thousands of connections go idle at once, each frees the buffers it used, but glibc's
//! allocator keeps freed memory on its free lists: the process stays as large as at its busiest
//! moment. [`Reclaimer`] watches how many connections were parked and, after a wave of them,
//! asks the allocator to return whole free pages (`malloc_trim`), at most every
//! [`PERIOD`]. The call takes about a millisecond per hundred MiB of heap and runs on the
//! blocking pool, off the async threads.

use std::time::Duration;

/// How often the reclaimer looks.
pub const PERIOD: Duration = Duration::from_millis(200);
/// Parks since the last trim that make a trim worth it.
const PARKS_PER_TRIM: u64 = 32;

/// Returns free memory of every allocator arena to the OS.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free chunks; it takes the
    // arena locks itself and is safe to call from any thread at any time.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Decides when to trim from a running count of parked connections.
#[derive(Debug, Default)]
pub struct Reclaimer {
    parks_at_last_trim: u64,
}

impl Reclaimer {
    /// True when enough connections were parked since the last trim; records the trim.
    pub fn should_trim(&mut self, parks: u64) -> bool {
        if parks.saturating_sub(self.parks_at_last_trim) >= PARKS_PER_TRIM {
            self.parks_at_last_trim = parks;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_a_wave_of_parks_only() {
        let mut r = Reclaimer::default();
        assert!(!r.should_trim(10));
        assert!(r.should_trim(40));
        assert!(!r.should_trim(60));
        assert!(r.should_trim(72));
        trim();
    }
}

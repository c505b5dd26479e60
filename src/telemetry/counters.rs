//! Counters every worker adds to and the master reads: connections open and by state,
//! requests by status class, bytes in and out, requests in flight, TCP round-trip times and
//! retransmissions. They live in the shared-memory region (`telemetry::shm`), one slot per
//! worker process, so counting is an uncontended atomic add on the worker's own cache lines,
//! and reading is a sum over slots that needs nothing from the workers.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::telemetry::shm::Region;

/// The meaning of each cell of a slot (the index is the cell; see `telemetry::shm` for the
/// versioning rule: never reuse or renumber a cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// Connections accepted (total).
    Accepted = 0,
    /// Connections open now (gauge).
    Open = 1,
    /// Of those, idle keep-alive connections in the parking lot (gauge).
    Idle = 2,
    /// Responses by status class (totals).
    Status1xx = 3,
    Status2xx = 4,
    Status3xx = 5,
    Status4xx = 6,
    Status5xx = 7,
    /// Bytes read from clients (total).
    BytesIn = 8,
    /// Response body bytes sent (total).
    BytesOut = 9,
    /// Requests being answered now (gauge).
    InFlight = 10,
    /// Sum of the smoothed round-trip times sampled at connection close, microseconds.
    RttMicrosSum = 11,
    /// Number of those samples.
    RttSamples = 12,
    /// Retransmitted segments, summed over closed connections.
    Retransmits = 13,
    /// Shared cache (`cache::handler`): answered from a fresh stored response (total).
    CacheHit = 14,
    /// Answered from a stale stored response: while revalidating, on an origin error, or
    /// after the origin confirmed it with a 304 (total).
    CacheStale = 15,
    /// Forwarded for want of a usable stored response (total).
    CacheMiss = 16,
    /// Forwarded without looking in the cache: an unsafe method (total).
    CacheBypass = 17,
}

/// Counters that only go up: kept, not zeroed, when their worker exits.
const TOTALS: &[Counter] = &[
    Counter::Accepted,
    Counter::Status1xx,
    Counter::Status2xx,
    Counter::Status3xx,
    Counter::Status4xx,
    Counter::Status5xx,
    Counter::BytesIn,
    Counter::BytesOut,
    Counter::RttMicrosSum,
    Counter::RttSamples,
    Counter::Retransmits,
    Counter::CacheHit,
    Counter::CacheStale,
    Counter::CacheMiss,
    Counter::CacheBypass,
];

/// Cells with a meaning (the last counter's index plus one).
const KNOWN: usize = Counter::CacheBypass as usize + 1;

/// One worker's counters: its slot of the region.
#[derive(Clone)]
pub struct Counters {
    region: Arc<Region>,
    slot: usize,
}

impl Counters {
    /// The counters of slot `slot` (1 or more; 0 holds exited workers' totals).
    pub fn new(region: Arc<Region>, slot: usize) -> Self {
        Counters { region, slot }
    }

    /// Counters in a region of their own (tests, or when no region could be made).
    pub fn detached() -> Option<Self> {
        Region::create()
            .ok()
            .map(|region| Counters::new(Arc::new(region), 1))
    }

    /// This slot's counters with the exited workers' totals (a single process's whole view).
    pub fn totals(&self) -> Totals {
        Totals::read(&self.region, [self.slot])
    }

    fn cell(&self, counter: Counter) -> &AtomicU64 {
        &self.region.slot(self.slot)[counter as usize]
    }

    pub fn add(&self, counter: Counter, n: u64) {
        self.cell(counter).fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(&self, counter: Counter, n: u64) {
        self.cell(counter).fetch_sub(n, Ordering::Relaxed);
    }

    /// A response finished: its status class and body bytes.
    pub fn response(&self, status: u16, body_bytes: u64) {
        let class = match status {
            100..=199 => Counter::Status1xx,
            200..=299 => Counter::Status2xx,
            300..=399 => Counter::Status3xx,
            400..=499 => Counter::Status4xx,
            _ => Counter::Status5xx,
        };
        self.add(class, 1);
        self.add(Counter::BytesOut, body_bytes);
    }
}

/// Sums of the counters over slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    cells: [u64; KNOWN],
}

impl Totals {
    /// The sum over slot 0 (exited workers) and the given live slots.
    pub fn read(region: &Region, live: impl IntoIterator<Item = usize>) -> Totals {
        let mut totals = Totals::default();
        for slot in std::iter::once(0).chain(live) {
            let cells = region.slot(slot);
            for (sum, cell) in totals.cells.iter_mut().zip(cells) {
                *sum = sum.wrapping_add(cell.load(Ordering::Relaxed));
            }
        }
        totals
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.cells[counter as usize]
    }

    /// Responses of every class.
    pub fn requests(&self) -> u64 {
        (Counter::Status1xx as usize..=Counter::Status5xx as usize)
            .map(|i| self.cells[i])
            .sum()
    }
}

/// After worker `slot` exited: adds its totals to slot 0, then clears the slot for reuse (its
/// gauges die with its connections).
pub fn retire(region: &Region, slot: usize) {
    let (retired, cells) = (region.slot(0), region.slot(slot));
    for &counter in TOTALS {
        let i = counter as usize;
        retired[i].fetch_add(cells[i].load(Ordering::Relaxed), Ordering::Relaxed);
    }
    for cell in cells {
        cell.store(0, Ordering::Relaxed);
    }
}

impl fmt::Display for Totals {
    /// The lines `portico ctl status` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = self.get(Counter::Open);
        let idle = self.get(Counter::Idle);
        writeln!(
            f,
            "connections: open {open} (active {}, idle {idle}), accepted {}",
            open.saturating_sub(idle),
            self.get(Counter::Accepted)
        )?;
        writeln!(
            f,
            "requests: total {} (1xx {}, 2xx {}, 3xx {}, 4xx {}, 5xx {}), in flight {}",
            self.requests(),
            self.get(Counter::Status1xx),
            self.get(Counter::Status2xx),
            self.get(Counter::Status3xx),
            self.get(Counter::Status4xx),
            self.get(Counter::Status5xx),
            self.get(Counter::InFlight)
        )?;
        writeln!(
            f,
            "bytes: in {}, out {}",
            self.get(Counter::BytesIn),
            self.get(Counter::BytesOut)
        )?;
        let samples = self.get(Counter::RttSamples);
        let rtt = self
            .get(Counter::RttMicrosSum)
            .checked_div(samples)
            .unwrap_or(0);
        writeln!(
            f,
            "tcp: mean rtt {rtt} us over {samples} closed connections, retransmits {}",
            self.get(Counter::Retransmits)
        )?;
        writeln!(
            f,
            "cache: hit {}, stale {}, miss {}, bypass {}",
            self.get(Counter::CacheHit),
            self.get(Counter::CacheStale),
            self.get(Counter::CacheMiss),
            self.get(Counter::CacheBypass)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_live_slots_and_keep_exited_workers_totals() {
        let region = Arc::new(Region::create().unwrap());
        let a = Counters::new(region.clone(), 1);
        let b = Counters::new(region.clone(), 2);
        a.add(Counter::Open, 2);
        a.response(200, 100);
        b.response(404, 10);
        b.response(503, 5);
        b.add(Counter::Open, 1);
        let totals = Totals::read(&region, [1, 2]);
        assert_eq!(totals.requests(), 3);
        assert_eq!(totals.get(Counter::BytesOut), 115);
        assert_eq!(totals.get(Counter::Open), 3);
        retire(&region, 2);
        let totals = Totals::read(&region, [1]);
        assert_eq!(
            totals.requests(),
            3,
            "an exited worker's requests still count"
        );
        assert_eq!(totals.get(Counter::Open), 2, "its connections do not");
        assert_eq!(Totals::read(&region, [2]).get(Counter::Status4xx), 1);
        let text = totals.to_string();
        assert!(
            text.contains("requests: total 3 (1xx 0, 2xx 1, 3xx 0, 4xx 1, 5xx 1)"),
            "{text}"
        );
    }
}

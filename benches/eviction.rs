//! Hit ratio of the cache's eviction policy (TinyUFO: S3-FIFO with TinyLFU admission) against
//! plain LRU on Zipf-distributed traces, at several cache sizes. Deterministic (a fixed seed),
//! so it measures policies, not the machine.
//!
//! `cargo bench --bench eviction` runs 2,000,000 requests per trace; under `cargo test` it runs
//! a short trace as a smoke test. Results go to BENCHMARKS.md § Cache eviction.

use std::num::NonZeroUsize;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};

const KEYS: u64 = 100_000;

fn trace(requests: usize, exponent: f64, seed: u64) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(KEYS as f64, exponent).expect("a valid Zipf distribution");
    // Ranks are scrambled so that popular keys are not also small numbers.
    (0..requests)
        .map(|_| (zipf.sample(&mut rng) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect()
}

fn lru_hit_ratio(trace: &[u64], capacity: usize) -> f64 {
    let mut cache = lru::LruCache::new(NonZeroUsize::new(capacity).unwrap());
    let mut hits = 0usize;
    for key in trace {
        if cache.get(key).is_some() {
            hits += 1;
        } else {
            cache.put(*key, ());
        }
    }
    hits as f64 / trace.len() as f64
}

fn tinyufo_hit_ratio(trace: &[u64], capacity: usize) -> f64 {
    let cache = tinyufo::TinyUfo::new(capacity, capacity);
    let mut hits = 0usize;
    for key in trace {
        if cache.get(key).is_some() {
            hits += 1;
        } else {
            cache.put(*key, (), 1);
        }
    }
    hits as f64 / trace.len() as f64
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let requests = if full { 2_000_000 } else { 50_000 };
    println!(
        "| Zipf s | cache size (objects, % of {KEYS}) | LRU hit ratio | TinyUFO hit ratio | TinyUFO / LRU |"
    );
    println!("|---|---|---|---|---|");
    for exponent in [0.8, 1.0, 1.2] {
        let trace = trace(requests, exponent, 7);
        for percent in [0.1, 1.0, 5.0, 10.0, 20.0] {
            let capacity = ((KEYS as f64) * percent / 100.0) as usize;
            let lru = lru_hit_ratio(&trace, capacity);
            let ufo = tinyufo_hit_ratio(&trace, capacity);
            println!(
                "| {exponent} | {capacity} ({percent} %) | {:.2} % | {:.2} % | {:.3} |",
                lru * 100.0,
                ufo * 100.0,
                ufo / lru
            );
        }
    }
}

//! A stable 64-bit hash for balancing keys, ring points and sticky-cookie member ids.
//!
//! Every worker process must map a key to the same member, and a member's id in a cookie must
//! mean the same member after a restart, so the hash may not be seeded per process (std's
//! `RandomState` is). FNV-1a over the bytes, then the SplitMix64 finaliser so that keys that
//! differ in one byte land far apart on the ring. Not for hash tables fed by clients (no
//! flooding resistance is needed: a ring lookup is a binary search).

/// Hashes `bytes`.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// SplitMix64's finaliser: spreads every input bit over the whole output.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_spreads_close_keys() {
        // Fixed values: a change would move every key and break sticky cookies.
        assert_eq!(hash(b""), mix(0xcbf2_9ce4_8422_2325));
        assert_eq!(hash(b"a"), hash(b"a"));
        let (a, b) = (hash(b"key-1"), hash(b"key-2"));
        assert!((a ^ b).count_ones() > 16, "{a:x} {b:x}");
    }
}

//! A fast hasher for the exporters' own lookup tables (open files by path,
//! interned metric names, failing collectors), which are keyed by what the
//! exporter itself builds, not by what a client sends: std's SipHash is
//! made to resist chosen keys and costs several times more per lookup.
//! Never use it for keys a remote party controls.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Multiply-rotate hashing of eight bytes at a time (the scheme of
/// rustc's FxHasher: good enough spread for short keys, few instructions).
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

/// An odd constant with well-mixed bits (2^64 divided by the golden ratio).
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_finds_what_it_holds_and_spreads_paths() {
        let mut map: FastMap<String, usize> = FastMap::default();
        let paths: Vec<String> = (0..2000)
            .map(|i| {
                format!("/sys/class/net/eth{}/statistics/rx_bytes", i % 97) + &"x".repeat(i % 13)
            })
            .collect();
        for (i, p) in paths.iter().enumerate() {
            map.entry(p.clone()).or_insert(i);
        }
        for p in &paths {
            assert!(map.contains_key(p));
        }
        assert!(!map.contains_key("/sys/class/net/eth0/statistics/rx_bytesy"));
        // Distinct keys get distinct hashes (no bucket of colliding keys).
        let mut hashes: Vec<u64> = map
            .keys()
            .map(|k| {
                let mut h = FastHasher::default();
                h.write(k.as_bytes());
                h.finish()
            })
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), map.len());
    }
}

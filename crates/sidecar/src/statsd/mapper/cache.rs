//! The mapping result cache (`--statsd.cache-size`, `--statsd.cache-type`):
//! a bounded map from a sample's type and name to what the mapper made of
//! it, hits and misses alike, evicting the least recently used entry
//! (`lru`) or a random one (`random`) when full. Size 0 turns it off.

use std::collections::HashMap;

/// Eviction policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheType {
    /// Evict the least recently used entry.
    Lru,
    /// Evict a random entry.
    Random,
}

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Slot<V> {
    key: Box<str>,
    value: V,
    prev: usize,
    next: usize,
}

/// The cache.
#[derive(Debug)]
pub struct Cache<V> {
    map: HashMap<Box<str>, usize>,
    slots: Vec<Slot<V>>,
    /// Most recently used.
    head: usize,
    /// Least recently used.
    tail: usize,
    capacity: usize,
    kind: CacheType,
    rng: u64,
}

impl<V> Cache<V> {
    /// A cache of at most `capacity` entries.
    pub fn new(capacity: usize, kind: CacheType) -> Self {
        Cache {
            map: HashMap::with_capacity(capacity.min(1 << 16)),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
            kind,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Drops every entry (after a mapping reload).
    pub fn clear(&mut self) {
        self.map.clear();
        self.slots.clear();
        self.head = NIL;
        self.tail = NIL;
    }

    /// The value for `key`, marking it recently used.
    pub fn get(&mut self, key: &str) -> Option<&V> {
        let i = *self.map.get(key)?;
        if self.kind == CacheType::Lru {
            self.unlink(i);
            self.push_front(i);
        }
        Some(&self.slots[i].value)
    }

    /// Stores `value` for `key` (which must not be present).
    pub fn insert(&mut self, key: &str, value: V) {
        if self.capacity == 0 {
            return;
        }
        if self.slots.len() < self.capacity {
            self.slots.push(Slot {
                key: key.into(),
                value,
                prev: NIL,
                next: NIL,
            });
            let i = self.slots.len() - 1;
            self.push_front(i);
            self.map.insert(key.into(), i);
            return;
        }
        let victim = match self.kind {
            CacheType::Lru => self.tail,
            CacheType::Random => {
                // xorshift64: cheap and good enough to spread evictions.
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                (self.rng % self.slots.len() as u64) as usize
            }
        };
        self.unlink(victim);
        let old = std::mem::replace(&mut self.slots[victim].key, key.into());
        self.map.remove(&old);
        self.slots[victim].value = value;
        self.push_front(victim);
        self.map.insert(key.into(), victim);
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.slots[i].prev, self.slots[i].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next].prev = prev;
        }
    }

    fn push_front(&mut self, i: usize) {
        self.slots[i].prev = NIL;
        self.slots[i].next = self.head;
        if self.head != NIL {
            self.slots[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut c = Cache::new(2, CacheType::Lru);
        c.insert("a", 1);
        c.insert("b", 2);
        assert_eq!(c.get("a"), Some(&1));
        c.insert("c", 3);
        assert_eq!(c.get("b"), None);
        assert_eq!(c.get("a"), Some(&1));
        assert_eq!(c.get("c"), Some(&3));
        c.insert("d", 4);
        assert_eq!(c.get("a"), None);
        assert_eq!(c.len(), 2);
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.get("c"), None);
    }

    #[test]
    fn random_stays_bounded_and_consistent() {
        let mut c = Cache::new(8, CacheType::Random);
        for i in 0..1000 {
            let k = format!("k{i}");
            c.insert(&k, i);
            assert_eq!(c.get(&k), Some(&i));
        }
        assert_eq!(c.len(), 8);
        assert_eq!(c.map.len(), 8);
        let zero = &mut Cache::new(0, CacheType::Lru);
        zero.insert("a", 1);
        assert_eq!(zero.get("a"), None);
    }
}

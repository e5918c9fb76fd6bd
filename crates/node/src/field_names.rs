//! Metric names derived from kernel field names (meminfo, vmstat, NUMA
//! fields), built once instead of formatted on every scrape.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

use oxmon_core::sync::LockExt;

/// The `(name, help)` pair for `field` within `scope`, built by `make` the
/// first time and kept for the life of the process: the set is small and
/// fixed by the kernel. Never use it for user-controlled names (textfile).
pub fn intern_pair(
    scope: &'static str,
    field: &str,
    make: impl FnOnce(&str) -> (String, String),
) -> (&'static str, &'static str) {
    type Table = HashMap<&'static str, HashMap<String, (&'static str, &'static str)>>;
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    let mut table = TABLE.get_or_init(Default::default).lock_unpoisoned();
    let scoped = table.entry(scope).or_default();
    if let Some(pair) = scoped.get(field) {
        return *pair;
    }
    let (name, help) = make(field);
    let pair: (&'static str, &'static str) = (name.leak(), help.leak());
    scoped.insert(field.to_string(), pair);
    pair
}

/// Metric names remembered by line position, for files whose field order
/// the kernel keeps fixed (`/proc/meminfo`, `/proc/vmstat`): a line whose
/// key equals the key seen at that position on the previous scrape reuses
/// its names (or its "not exported" verdict) without hashing, regex
/// matching or formatting.
#[derive(Default)]
pub struct FieldNames(Mutex<NameTable>);

/// `(key, names)` by line position; `None` names: not exported.
pub type NameTable = Vec<(String, Option<(&'static str, &'static str)>)>;

impl FieldNames {
    /// The table, for one scrape.
    pub fn lock(&self) -> MutexGuard<'_, NameTable> {
        self.0.lock_unpoisoned()
    }
}

/// The names for `key` at position `i` of `table`, computed by `make` (and
/// remembered) when the position held another key.
pub fn names_at(
    table: &mut NameTable,
    i: usize,
    key: &str,
    make: impl FnOnce(&str) -> Option<(&'static str, &'static str)>,
) -> Option<(&'static str, &'static str)> {
    if let Some((k, v)) = table.get(i) {
        if k == key {
            return *v;
        }
    }
    let v = make(key);
    if table.len() <= i {
        table.resize(i + 1, (String::new(), None));
    }
    table[i] = (key.to_string(), v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_key_at_each_position() {
        let names = FieldNames::default();
        let mut table = names.lock();
        let mut made = 0;
        let mut make = |k: &str| {
            made += 1;
            Some(intern_pair("test", k, |f| {
                (format!("m_{f}"), f.to_string())
            }))
        };
        assert_eq!(names_at(&mut table, 0, "a", &mut make), Some(("m_a", "a")));
        assert_eq!(names_at(&mut table, 0, "a", &mut make), Some(("m_a", "a")));
        assert_eq!(names_at(&mut table, 2, "b", &mut make), Some(("m_b", "b")));
        assert_eq!(names_at(&mut table, 0, "b", &mut make), Some(("m_b", "b")));
        assert_eq!(made, 3, "the repeated key at position 0 was not rebuilt");
        assert_eq!(names_at(&mut table, 1, "skip", |_| None), None);
    }
}

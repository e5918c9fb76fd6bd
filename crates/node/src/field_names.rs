//! Metric names derived from kernel field names (meminfo, vmstat, NUMA
//! fields), built once instead of formatted on every scrape.
//!
//! What is remembered is bounded, so a file whose field names change on
//! every read (a fake or broken procfs) cannot grow memory: at most
//! [`MAX_INTERNED`] names per scope are kept for the life of the process
//! (the kernel has a few hundred at most), and a [`NameTable`] remembers
//! at most [`MAX_POSITIONS`] lines; names beyond either are built on every
//! scrape instead.

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard, OnceLock};

use oxmon_core::hash::FastMap;
use oxmon_core::sync::LockExt;

/// `field` as part of a metric name: every character but ASCII letters,
/// digits and `_` becomes `_`, so a field name read from a file (`Bad
/// Name`, `a-b.c`) cannot make an exposition line that Prometheus rejects
/// with the whole scrape. node_exporter rewrites only meminfo's
/// parentheses and panics on any other character.
pub fn name_part(field: &str) -> Cow<'_, str> {
    if field
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Cow::Borrowed(field);
    }
    Cow::Owned(
        field
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect(),
    )
}

/// The most names kept per scope.
pub const MAX_INTERNED: usize = 2048;

/// The most line positions a [`NameTable`] remembers.
pub const MAX_POSITIONS: usize = 1024;

/// A metric name and its help text.
pub type Names = (Cow<'static, str>, Cow<'static, str>);

/// The `(name, help)` pair for `field` within `scope`, built by `make` the
/// first time and kept for the life of the process (up to
/// [`MAX_INTERNED`] per scope; later ones are built on each call). Never
/// use it for user-controlled names (textfile).
pub fn intern_pair(
    scope: &'static str,
    field: &str,
    make: impl FnOnce(&str) -> (String, String),
) -> Names {
    type Table = FastMap<&'static str, FastMap<String, (&'static str, &'static str)>>;
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    let mut table = TABLE.get_or_init(Default::default).lock_unpoisoned();
    let scoped = table.entry(scope).or_default();
    if let Some((name, help)) = scoped.get(field) {
        return (Cow::Borrowed(*name), Cow::Borrowed(*help));
    }
    let (name, help) = make(field);
    if scoped.len() >= MAX_INTERNED {
        return (Cow::Owned(name), Cow::Owned(help));
    }
    let pair: (&'static str, &'static str) = (name.leak(), help.leak());
    scoped.insert(field.to_string(), pair);
    (Cow::Borrowed(pair.0), Cow::Borrowed(pair.1))
}

/// Metric names remembered by line position, for files whose field order
/// the kernel keeps fixed (`/proc/meminfo`, `/proc/vmstat`): a line whose
/// key equals the key seen at that position on the previous scrape reuses
/// its names (or its "not exported" verdict) without hashing, regex
/// matching or formatting.
#[derive(Default)]
pub struct FieldNames(Mutex<NameTable>);

/// `(key, names)` by line position; `None` names: not exported.
pub type NameTable = Vec<(String, Option<Names>)>;

impl FieldNames {
    /// The table, for one scrape.
    pub fn lock(&self) -> MutexGuard<'_, NameTable> {
        self.0.lock_unpoisoned()
    }
}

/// The names for `key` at position `i` of `table`, computed by `make` (and
/// remembered, below [`MAX_POSITIONS`]) when the position held another key.
pub fn names_at(
    table: &mut NameTable,
    i: usize,
    key: &str,
    make: impl FnOnce(&str) -> Option<Names>,
) -> Option<Names> {
    if let Some((k, v)) = table.get(i) {
        if k == key {
            return v.clone();
        }
    }
    let v = make(key);
    if i >= MAX_POSITIONS {
        return v;
    }
    if table.len() <= i {
        table.resize(i + 1, (String::new(), None));
    }
    table[i] = (key.to_string(), v.clone());
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
        let pair = |n: &'static str, h: &'static str| Some((Cow::Borrowed(n), Cow::Borrowed(h)));
        assert_eq!(names_at(&mut table, 0, "a", &mut make), pair("m_a", "a"));
        assert_eq!(names_at(&mut table, 0, "a", &mut make), pair("m_a", "a"));
        assert_eq!(names_at(&mut table, 2, "b", &mut make), pair("m_b", "b"));
        assert_eq!(names_at(&mut table, 0, "b", &mut make), pair("m_b", "b"));
        assert_eq!(made, 3, "the repeated key at position 0 was not rebuilt");
        assert_eq!(names_at(&mut table, 1, "skip", |_| None), None);
    }

    #[test]
    fn name_parts_are_valid_metric_name_characters() {
        assert!(matches!(name_part("pgfault"), Cow::Borrowed("pgfault")));
        assert_eq!(name_part("Bad Name"), "Bad_Name");
        assert_eq!(name_part("a-b.c:d"), "a_b_c_d");
        assert_eq!(name_part("é\"{}"), "____");
    }

    /// Field names that change on every read (a broken or fake procfs)
    /// are built each time beyond the bounds instead of being kept.
    #[test]
    fn what_is_remembered_is_bounded() {
        for i in 0..MAX_INTERNED + 10 {
            let (name, _) = intern_pair("bounded-test", &format!("f{i}"), |f| {
                (format!("m_{f}"), String::new())
            });
            assert_eq!(name, format!("m_f{i}"));
            assert_eq!(matches!(name, Cow::Borrowed(_)), i < MAX_INTERNED, "{i}");
        }
        let names = FieldNames::default();
        let mut table = names.lock();
        for i in [0, MAX_POSITIONS - 1, MAX_POSITIONS, 10 * MAX_POSITIONS] {
            let got = names_at(&mut table, i, "k", |_| None);
            assert_eq!(got, None);
        }
        assert_eq!(table.len(), MAX_POSITIONS);
    }
}

//! Owned metric families: what a collector returns for one scrape.
//!
//! Names are written the way the classic text format (0.0.4) shows them, the
//! way the Go exporters name them: a counter is `node_cpu_seconds_total`, an
//! info family is `node_uname_info`. The OpenMetrics encoder derives the
//! family names OpenMetrics wants from those (see [`crate::encode`]).
//!
//! ```
//! use oxmon_core::{MetricFamily, MetricType};
//!
//! let mut load = MetricFamily::gauge("node_load1", "1m load average.");
//! load.add(&[], 0.25);
//! let mut cpu = MetricFamily::counter("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.");
//! cpu.add(&[("cpu", "0"), ("mode", "idle")], 1234.5);
//! assert_eq!(cpu.kind, MetricType::Counter);
//! assert_eq!(cpu.metrics[0].labels[1].1, "idle");
//! ```
//!
//! A series may carry OpenMetrics [`Exemplar`]s (a trace id for one
//! observation); only the OpenMetrics encoder writes them.

use std::borrow::Cow;

/// A label name, usually a `&'static str`.
pub type LabelName = Cow<'static, str>;

/// A label value. Values up to 24 bytes (device names, CPU numbers, modes:
/// nearly all of them) are stored inline, so adding a series does not
/// allocate for each value. It derefs to `str` and converts from `&str`
/// and `String` with `into()`.
pub type LabelValue = compact_str::CompactString;

/// A label pair.
pub type Label = (LabelName, LabelValue);

/// How many label pairs a series keeps without a heap allocation.
const INLINE_LABELS: usize = 2;

/// An empty pair, for the unused inline slots.
const NO_LABEL: Label = (Cow::Borrowed(""), LabelValue::const_new(""));

/// The label pairs of one series. Up to two are stored inline (most series
/// have one or two: `device`; `cpu` and `mode`), so adding such a series
/// allocates nothing for its labels; more go to the heap. It derefs to a
/// slice of pairs and converts from a `Vec` or an array with `into()`.
#[derive(Clone)]
pub struct Labels(LabelsRepr);

#[derive(Clone)]
enum LabelsRepr {
    Inline(u8, [Label; INLINE_LABELS]),
    Heap(Vec<Label>),
}

impl Labels {
    /// No labels.
    pub const fn new() -> Self {
        Labels(LabelsRepr::Inline(0, [NO_LABEL, NO_LABEL]))
    }

    /// Adds a pair at the end.
    pub fn push(&mut self, label: Label) {
        match &mut self.0 {
            LabelsRepr::Inline(n, slots) if usize::from(*n) < INLINE_LABELS => {
                slots[usize::from(*n)] = label;
                *n += 1;
            }
            LabelsRepr::Inline(n, slots) => {
                let mut heap = Vec::with_capacity(usize::from(*n) + 2);
                heap.extend(slots.iter_mut().map(std::mem::take));
                heap.push(label);
                self.0 = LabelsRepr::Heap(heap);
            }
            LabelsRepr::Heap(v) => v.push(label),
        }
    }

    /// Inserts a pair at `at` (at most the length).
    pub fn insert(&mut self, at: usize, label: Label) {
        self.push(label);
        self[at..].rotate_right(1);
    }

    /// Keeps the pairs `keep` says yes to, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) {
        let old = std::mem::take(self);
        for label in old {
            if keep(&label) {
                self.push(label);
            }
        }
    }

    /// Removes every pair.
    pub fn clear(&mut self) {
        *self = Labels::new();
    }
}

impl Default for Labels {
    fn default() -> Self {
        Labels::new()
    }
}

impl std::ops::Deref for Labels {
    type Target = [Label];

    fn deref(&self) -> &[Label] {
        match &self.0 {
            LabelsRepr::Inline(n, slots) => &slots[..usize::from(*n)],
            LabelsRepr::Heap(v) => v,
        }
    }
}

impl std::ops::DerefMut for Labels {
    fn deref_mut(&mut self) -> &mut [Label] {
        match &mut self.0 {
            LabelsRepr::Inline(n, slots) => &mut slots[..usize::from(*n)],
            LabelsRepr::Heap(v) => v,
        }
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        **self == **other
    }
}

impl PartialEq<Vec<Label>> for Labels {
    fn eq(&self, other: &Vec<Label>) -> bool {
        **self == **other
    }
}

impl<const N: usize> PartialEq<[Label; N]> for Labels {
    fn eq(&self, other: &[Label; N]) -> bool {
        **self == *other
    }
}

impl PartialEq<[Label]> for Labels {
    fn eq(&self, other: &[Label]) -> bool {
        **self == *other
    }
}

impl From<Vec<Label>> for Labels {
    fn from(v: Vec<Label>) -> Self {
        if v.len() > INLINE_LABELS {
            return Labels(LabelsRepr::Heap(v));
        }
        v.into_iter().collect()
    }
}

impl<const N: usize> From<[Label; N]> for Labels {
    fn from(pairs: [Label; N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl FromIterator<Label> for Labels {
    fn from_iter<I: IntoIterator<Item = Label>>(iter: I) -> Self {
        let mut labels = Labels::new();
        labels.extend(iter);
        labels
    }
}

impl Extend<Label> for Labels {
    fn extend<I: IntoIterator<Item = Label>>(&mut self, iter: I) {
        for label in iter {
            self.push(label);
        }
    }
}

impl IntoIterator for Labels {
    type Item = Label;
    type IntoIter = std::vec::IntoIter<Label>;

    fn into_iter(self) -> Self::IntoIter {
        match self.0 {
            LabelsRepr::Inline(n, slots) => {
                let mut v = Vec::from(slots);
                v.truncate(usize::from(n));
                v.into_iter()
            }
            LabelsRepr::Heap(v) => v.into_iter(),
        }
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The type of a metric family, as both text formats know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricType {
    /// A value that goes up and down.
    Gauge,
    /// A monotonically increasing value; the name should end in `_total`.
    Counter,
    /// A value of unknown type (`untyped` in 0.0.4, `unknown` in OpenMetrics).
    Untyped,
    /// Cumulative buckets, a sum and a count.
    Histogram,
    /// Quantiles, a sum and a count.
    Summary,
    /// Constant value 1 carrying labels; the name should end in `_info`.
    Info,
}

/// The value of one series (or of one histogram/summary).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A gauge, counter, untyped or info value.
    Single(f64),
    /// Cumulative histogram buckets `(upper bound, count)`, in increasing
    /// order; a `+Inf` bucket is added by the encoder when missing.
    Histogram {
        /// `(le, cumulative count)` pairs.
        buckets: Vec<(f64, u64)>,
        /// Sum of all observations.
        sum: f64,
        /// Number of observations.
        count: u64,
    },
    /// Summary quantiles `(quantile, value)`.
    Summary {
        /// `(quantile, value)` pairs.
        quantiles: Vec<(f64, f64)>,
        /// Sum of all observations.
        sum: f64,
        /// Number of observations.
        count: u64,
    },
}

/// An OpenMetrics exemplar: one observation of a series with labels that
/// point elsewhere, usually `trace_id`, so a latency bucket links to a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// Its labels (`trace_id`, `span_id`). OpenMetrics allows at most 128
    /// characters of names and values together; the encoder leaves out an
    /// exemplar with more.
    pub labels: Vec<(LabelName, LabelValue)>,
    /// The observed value (for a histogram it selects the bucket).
    pub value: f64,
    /// When it was observed, in seconds since the Unix epoch.
    pub timestamp: Option<f64>,
}

/// One series of a family: its labels, its value and its exemplars.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Label pairs. The encoder sorts them by name.
    pub labels: Labels,
    /// The value.
    pub value: Value,
    /// Exemplars, written in OpenMetrics only and only where it allows them:
    /// a counter whose name ends in `_total` shows the last one on its
    /// sample; a histogram shows on each bucket the last one whose value
    /// falls in it (above the previous bound, at most its own). Other types
    /// show none.
    pub exemplars: Vec<Exemplar>,
}

impl Metric {
    /// A series without exemplars.
    pub fn new(labels: impl Into<Labels>, value: Value) -> Self {
        Metric {
            labels: labels.into(),
            value,
            exemplars: Vec::new(),
        }
    }
}

/// A metric family: name, help, type and its series.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    /// Full name as in the classic text format (`..._total` for counters).
    pub name: Cow<'static, str>,
    /// Help text.
    pub help: Cow<'static, str>,
    /// The type.
    pub kind: MetricType,
    /// The series.
    pub metrics: Vec<Metric>,
}

impl MetricFamily {
    /// An empty family.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        help: impl Into<Cow<'static, str>>,
        kind: MetricType,
    ) -> Self {
        MetricFamily {
            name: name.into(),
            help: help.into(),
            kind,
            metrics: Vec::new(),
        }
    }

    /// An empty gauge family.
    pub fn gauge(name: impl Into<Cow<'static, str>>, help: impl Into<Cow<'static, str>>) -> Self {
        Self::new(name, help, MetricType::Gauge)
    }

    /// An empty counter family (name it `..._total`).
    pub fn counter(name: impl Into<Cow<'static, str>>, help: impl Into<Cow<'static, str>>) -> Self {
        Self::new(name, help, MetricType::Counter)
    }

    /// An empty untyped family.
    pub fn untyped(name: impl Into<Cow<'static, str>>, help: impl Into<Cow<'static, str>>) -> Self {
        Self::new(name, help, MetricType::Untyped)
    }

    /// An empty info family (name it `..._info`; values are 1).
    pub fn info(name: impl Into<Cow<'static, str>>, help: impl Into<Cow<'static, str>>) -> Self {
        Self::new(name, help, MetricType::Info)
    }

    /// An empty histogram family.
    pub fn histogram(
        name: impl Into<Cow<'static, str>>,
        help: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(name, help, MetricType::Histogram)
    }

    /// An empty summary family.
    pub fn summary(name: impl Into<Cow<'static, str>>, help: impl Into<Cow<'static, str>>) -> Self {
        Self::new(name, help, MetricType::Summary)
    }

    /// Adds a series with static label names.
    pub fn add(&mut self, labels: &[(&'static str, &str)], value: f64) -> &mut Self {
        self.metrics
            .push(Metric::new(static_labels(labels), Value::Single(value)));
        self
    }

    /// Adds a series with owned (dynamic) label names.
    pub fn add_owned(&mut self, labels: impl Into<Labels>, value: f64) -> &mut Self {
        self.metrics.push(Metric::new(labels, Value::Single(value)));
        self
    }

    /// Adds a histogram series; `buckets` are cumulative `(le, count)`.
    pub fn add_histogram(
        &mut self,
        labels: &[(&'static str, &str)],
        buckets: Vec<(f64, u64)>,
        sum: f64,
        count: u64,
    ) -> &mut Self {
        self.metrics.push(Metric::new(
            static_labels(labels),
            Value::Histogram {
                buckets,
                sum,
                count,
            },
        ));
        self
    }

    /// Adds a summary series.
    pub fn add_summary(
        &mut self,
        labels: &[(&'static str, &str)],
        quantiles: Vec<(f64, f64)>,
        sum: f64,
        count: u64,
    ) -> &mut Self {
        self.metrics.push(Metric::new(
            static_labels(labels),
            Value::Summary {
                quantiles,
                sum,
                count,
            },
        ));
        self
    }

    /// Adds a fully built series.
    pub fn push(&mut self, metric: Metric) -> &mut Self {
        self.metrics.push(metric);
        self
    }

    /// True when the family has no series.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }
}

fn static_labels(labels: &[(&'static str, &str)]) -> Labels {
    labels
        .iter()
        .map(|(k, v)| (Cow::Borrowed(*k), LabelValue::from(*v)))
        .collect()
}

/// Shorthand: a family with a single unlabelled gauge sample.
pub fn gauge(
    name: impl Into<Cow<'static, str>>,
    help: impl Into<Cow<'static, str>>,
    value: f64,
) -> MetricFamily {
    let mut f = MetricFamily::gauge(name, help);
    f.add(&[], value);
    f
}

/// Shorthand: a family with a single unlabelled counter sample.
pub fn counter(
    name: impl Into<Cow<'static, str>>,
    help: impl Into<Cow<'static, str>>,
    value: f64,
) -> MetricFamily {
    let mut f = MetricFamily::counter(name, help);
    f.add(&[], value);
    f
}

/// Sorts labels inside each series and series inside each family, merges
/// families of the same name (the first family's help and type win, a
/// conflicting type drops the later family's series) and drops duplicate
/// series, keeping the first. Families come out sorted by name.
///
/// Returns the number of series dropped as duplicates or type conflicts.
pub fn normalize(families: &mut Vec<MetricFamily>) -> usize {
    normalize_remembering(families, None)
}

/// The order the families of the previous scrape came in and the
/// permutation that sorted them. Collectors produce the same families in
/// the same order scrape after scrape, so [`normalize_remembering`] checks
/// the names against the last ones (by address for `&'static` names) and
/// reuses the permutation instead of sorting again.
#[derive(Default)]
pub struct NameOrder(std::sync::Mutex<(Vec<Cow<'static, str>>, Vec<u32>)>);

/// [`normalize`], reusing the sort of the previous scrape whose families
/// came in the same order.
pub fn normalize_remembering(families: &mut Vec<MetricFamily>, order: Option<&NameOrder>) -> usize {
    let mut dropped = 0;
    for f in families.iter_mut() {
        for m in f.metrics.iter_mut() {
            if !m.labels.is_sorted_by(|a, b| a.0 <= b.0) {
                m.labels.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
    }
    match order {
        Some(order) => sort_remembering(families, order),
        None => sort_by_name(families),
    }
    let mut out: Vec<MetricFamily> = Vec::with_capacity(families.len());
    for f in families.drain(..) {
        match out.last_mut() {
            Some(last) if last.name == f.name => dropped += absorb(last, f),
            _ => out.push(f),
        }
    }
    for f in out.iter_mut() {
        dropped += sort_series(f);
    }
    out.retain(|f| !f.metrics.is_empty());
    *families = out;
    dropped
}

/// Adds `more` to `families`, which [`normalize`] already returned, with
/// the same result as normalizing both together, but without sorting the
/// first list again: `more` is normalized alone and merged in by name.
///
/// Returns the number of series dropped.
pub fn extend_normalized(families: &mut Vec<MetricFamily>, mut more: Vec<MetricFamily>) -> usize {
    let mut dropped = normalize(&mut more);
    if more.is_empty() {
        return dropped;
    }
    let mut out = Vec::with_capacity(families.len() + more.len());
    let mut first = std::mem::take(families).into_iter().peekable();
    let mut second = more.into_iter().peekable();
    loop {
        let order = match (first.peek(), second.peek()) {
            (Some(a), Some(b)) => a.name.cmp(&b.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => break,
        };
        match order {
            std::cmp::Ordering::Less => out.extend(first.next()),
            std::cmp::Ordering::Greater => out.extend(second.next()),
            std::cmp::Ordering::Equal => {
                let (Some(mut a), Some(b)) = (first.next(), second.next()) else {
                    break;
                };
                dropped += absorb(&mut a, b);
                dropped += sort_series(&mut a);
                out.push(a);
            }
        }
    }
    *families = out;
    dropped
}

/// Same name, same text: `&'static` names are compared by address first.
// The `Cow` itself is needed: only a borrowed `&'static str` can be
// compared by address.
#[allow(clippy::ptr_arg)]
fn same_name(a: &Cow<'static, str>, b: &Cow<'static, str>) -> bool {
    match (a, b) {
        (Cow::Borrowed(a), Cow::Borrowed(b)) if std::ptr::eq(*a, *b) => true,
        _ => a == b,
    }
}

/// [`sort_by_name`] through the permutation remembered in `order` when
/// the names came in the same order as last time; otherwise sorts and
/// remembers.
fn sort_remembering(families: &mut Vec<MetricFamily>, order: &NameOrder) {
    use crate::sync::LockExt;
    let mut last = order.0.lock_unpoisoned();
    let (names, perm) = &mut *last;
    let same = names.len() == families.len()
        && names
            .iter()
            .zip(families.iter())
            .all(|(n, f)| same_name(n, &f.name));
    if !same {
        *names = families.iter().map(|f| f.name.clone()).collect();
        *perm = sort_order(families);
    }
    apply_order(families, perm);
}

/// Sorts families by name, keeping the order of equal names.
fn sort_by_name(families: &mut Vec<MetricFamily>) {
    if families.is_sorted_by(|a, b| a.name <= b.name) {
        return;
    }
    let perm = sort_order(families);
    apply_order(families, &perm);
}

/// The indices of `families` in name order, equal names in their order. A
/// scrape has a few hundred families whose names mostly share a prefix
/// (`node_`), and many share a longer one (`node_network_receive_`): this
/// orders 24 bytes after the prefix all names share, as three integers,
/// with the index as the last key, and compares whole names only within a
/// run whose 24 bytes are equal.
fn sort_order(families: &[MetricFamily]) -> Vec<u32> {
    let Some(first) = families.first() else {
        return Vec::new();
    };
    let first = first.name.as_bytes();
    let shared = families.iter().fold(first.len(), |n, f| {
        let name = f.name.as_bytes();
        n.min(first.iter().zip(name).take_while(|(a, b)| a == b).count())
    });
    // Padding with zero bytes keeps the order: a name that ends first is
    // smaller, and equal keys fall back to the names.
    let key = |name: &str| -> [u64; 3] {
        let rest = &name.as_bytes()[shared..];
        let mut k = [0u8; 24];
        let n = rest.len().min(24);
        k[..n].copy_from_slice(&rest[..n]);
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&k[i * 8..i * 8 + 8]);
            u64::from_be_bytes(w)
        };
        [word(0), word(1), word(2)]
    };
    let mut order: Vec<([u64; 3], u32)> = families
        .iter()
        .enumerate()
        .map(|(i, f)| (key(&f.name), i as u32))
        .collect();
    order.sort_unstable();
    let mut at = 0;
    while at < order.len() {
        let run = order[at..]
            .iter()
            .take_while(|o| o.0 == order[at].0)
            .count();
        if run > 1 {
            order[at..at + run].sort_by(|a, b| {
                families[a.1 as usize]
                    .name
                    .cmp(&families[b.1 as usize].name)
                    .then(a.1.cmp(&b.1))
            });
        }
        at += run;
    }
    order.into_iter().map(|(_, i)| i).collect()
}

/// Puts `families` in the order of `perm`, a permutation of its indices.
fn apply_order(families: &mut Vec<MetricFamily>, perm: &[u32]) {
    let mut slots: Vec<Option<MetricFamily>> = families.drain(..).map(Some).collect();
    families.extend(
        perm.iter()
            .filter_map(|&i| slots.get_mut(i as usize).and_then(Option::take)),
    );
}

/// Orders label sets the way `Vec`'s own `Ord` does (pair by pair, name
/// then value), but takes two names at the same address as equal without
/// comparing their bytes: label names are nearly always the same
/// `&'static str`.
fn cmp_labels(a: &[Label], b: &[Label]) -> std::cmp::Ordering {
    for ((an, av), (bn, bv)) in a.iter().zip(b) {
        let names = if std::ptr::eq(an.as_ref(), bn.as_ref()) {
            std::cmp::Ordering::Equal
        } else {
            an.as_ref().cmp(bn.as_ref())
        };
        let pair = names.then_with(|| av.as_bytes().cmp(bv.as_bytes()));
        if pair.is_ne() {
            return pair;
        }
    }
    a.len().cmp(&b.len())
}

/// Moves the series of `later` (a family of the same name) into `first`,
/// or drops them when the types differ; returns how many were dropped.
fn absorb(first: &mut MetricFamily, later: MetricFamily) -> usize {
    if first.kind == later.kind {
        first.metrics.extend(later.metrics);
        0
    } else {
        later.metrics.len()
    }
}

/// Sorts a family's series by labels and drops repeated label sets,
/// keeping the first; returns how many were dropped.
fn sort_series(f: &mut MetricFamily) -> usize {
    // Many collectors already emit in label order, without repeats.
    if f.metrics
        .windows(2)
        .all(|w| cmp_labels(&w[0].labels, &w[1].labels).is_lt())
    {
        return 0;
    }
    f.metrics.sort_by(|a, b| cmp_labels(&a.labels, &b.labels));
    let before = f.metrics.len();
    f.metrics
        .dedup_by(|a, b| cmp_labels(&a.labels, &b.labels).is_eq());
    before - f.metrics.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_sorts_merges_and_dedups() {
        let mut b = MetricFamily::gauge("b", "B");
        b.add(&[("z", "1"), ("a", "2")], 1.0);
        b.add(&[("a", "1"), ("z", "1")], 2.0);
        let mut a1 = MetricFamily::counter("a_total", "A");
        a1.add(&[("x", "2")], 1.0);
        let mut a2 = MetricFamily::counter("a_total", "A again");
        a2.add(&[("x", "1")], 1.0);
        a2.add(&[("x", "2")], 9.0);
        let mut conflict = MetricFamily::gauge("a_total", "wrong type");
        conflict.add(&[("x", "3")], 1.0);
        let empty = MetricFamily::gauge("c", "empty");
        let mut v = vec![b, a1, a2, conflict, empty];
        let dropped = normalize(&mut v);
        assert_eq!(dropped, 2);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "a_total");
        assert_eq!(v[0].help, "A");
        let xs: Vec<_> = v[0]
            .metrics
            .iter()
            .map(|m| m.labels[0].1.as_str())
            .collect();
        assert_eq!(xs, ["1", "2"]);
        assert_eq!(v[0].metrics[1].value, Value::Single(1.0));
        assert_eq!(v[1].metrics[0].labels[0], (Cow::Borrowed("a"), "1".into()));
        assert_eq!(v[1].metrics[1].labels[1], (Cow::Borrowed("z"), "1".into()));
    }

    fn family(name: &str, kind: MetricType, series: &[(&str, f64)]) -> MetricFamily {
        let mut f = MetricFamily::new(name.to_string(), "help", kind);
        for (x, v) in series {
            f.add(&[("x", x)], *v);
        }
        f
    }

    #[test]
    fn labels_grow_past_the_inline_pairs_and_keep_their_order() {
        let pair = |k: &'static str, v: &str| (Cow::Borrowed(k), LabelValue::from(v));
        let mut l = Labels::new();
        assert!(l.is_empty());
        l.push(pair("a", "1"));
        l.push(pair("b", "2"));
        assert_eq!(l, [pair("a", "1"), pair("b", "2")]);
        l.push(pair("c", "3"));
        l.insert(0, pair("z", "0"));
        assert_eq!(l.len(), 4);
        assert_eq!(l[0], pair("z", "0"));
        assert_eq!(l[3], pair("c", "3"));
        l.retain(|(k, _)| k != "b");
        assert_eq!(l, vec![pair("z", "0"), pair("a", "1"), pair("c", "3")]);
        l.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<_> = l.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(names, ["a", "c", "z"]);
        let mut small = Labels::from(vec![pair("x", "1")]);
        small.insert(0, pair("w", "0"));
        assert_eq!(
            small.clone().into_iter().collect::<Vec<_>>(),
            [pair("w", "0"), pair("x", "1")]
        );
        assert_eq!(format!("{small:?}"), r#"[("w", "0"), ("x", "1")]"#);
        small.clear();
        assert_eq!(small, Labels::default());
        let many: Labels = (0..5).map(|i| pair("n", &i.to_string())).collect();
        assert_eq!(
            many.iter().map(|(_, v)| v.as_str()).collect::<String>(),
            "01234"
        );
    }

    /// Seeded xorshift.
    fn rng(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn families_sort_like_a_stable_sort_by_name() {
        let parts = [
            "node_",
            "network_receive_",
            "net",
            "a",
            "b",
            "_total",
            "x",
            "",
        ];
        let mut next = rng(0x2545_F491_4F6C_DD1D);
        for round in 0..300 {
            let n = 1 + (next() % 60) as usize;
            let mut fams: Vec<MetricFamily> = (0..n)
                .map(|i| {
                    let pieces = 1 + next() % 4;
                    let name: String = (0..pieces)
                        .map(|_| parts[(next() % parts.len() as u64) as usize])
                        .collect();
                    // The help tells equal names apart, to check stability.
                    MetricFamily::gauge(name, format!("{i}"))
                })
                .collect();
            if round % 3 == 0 {
                // Most scrapes share a long prefix.
                for f in fams.iter_mut() {
                    f.name = format!("node_{}", f.name).into();
                }
            }
            let mut expected = fams.clone();
            expected.sort_by(|a, b| a.name.cmp(&b.name));
            sort_by_name(&mut fams);
            assert_eq!(fams, expected, "round {round}");
        }
    }

    #[test]
    fn a_remembered_order_sorts_like_a_fresh_one() {
        let order = NameOrder::default();
        let make = |names: &[&'static str]| -> Vec<MetricFamily> {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| family(n, MetricType::Gauge, &[(&i.to_string(), 1.0)]))
                .collect()
        };
        for names in [
            &["c", "a", "b", "a"][..],
            &["c", "a", "b", "a"][..],
            &["c", "b", "a", "a"][..],
            &["c", "b", "a"][..],
            &["c", "b", "a"][..],
        ] {
            let mut fresh = make(names);
            let mut remembered = make(names);
            assert_eq!(
                normalize(&mut fresh),
                normalize_remembering(&mut remembered, Some(&order))
            );
            assert_eq!(remembered, fresh, "{names:?}");
        }
        // Owned names with the text of the last ones count as the same.
        let mut owned: Vec<MetricFamily> = ["c", "b", "a"]
            .iter()
            .map(|n| MetricFamily::gauge(n.to_string(), "h"))
            .collect();
        for f in owned.iter_mut() {
            f.add(&[], 1.0);
        }
        normalize_remembering(&mut owned, Some(&order));
        let names: Vec<_> = owned.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn label_order_is_vec_order() {
        let mut next = rng(0x9E37_79B9_7F4A_7C15);
        let names = ["a", "b", "device", "mode"];
        let values = ["", "0", "1", "10", "idle", "user"];
        let mut set = || -> Vec<(LabelName, LabelValue)> {
            (0..next() % 4)
                .map(|_| {
                    let name = names[(next() % 4) as usize];
                    // Borrowed and owned names mix: equal text at another address.
                    let name = if next() % 2 == 0 {
                        Cow::Borrowed(name)
                    } else {
                        Cow::Owned(name.to_string())
                    };
                    (name, LabelValue::from(values[(next() % 6) as usize]))
                })
                .collect()
        };
        for _ in 0..20_000 {
            let (a, b) = (set(), set());
            assert_eq!(cmp_labels(&a, &b), a.cmp(&b), "{a:?} {b:?}");
        }
    }

    #[test]
    fn extending_a_normalized_list_equals_normalizing_everything() {
        let first = || {
            vec![
                family("b", MetricType::Gauge, &[("2", 1.0), ("1", 2.0)]),
                family("d", MetricType::Counter, &[("1", 1.0)]),
                family("f", MetricType::Gauge, &[("1", 1.0)]),
            ]
        };
        let more = || {
            vec![
                family("g", MetricType::Gauge, &[("1", 1.0)]),
                family("a", MetricType::Gauge, &[("1", 1.0)]),
                // Merged into b: a new series and a repeat of the first one.
                family("b", MetricType::Gauge, &[("3", 3.0), ("1", 9.0)]),
                // A type conflict with d: dropped.
                family("d", MetricType::Gauge, &[("5", 1.0)]),
                family("e", MetricType::Gauge, &[]),
            ]
        };
        let mut together = first();
        together.extend(more());
        let dropped_together = normalize(&mut together);

        let mut merged = first();
        assert_eq!(normalize(&mut merged), 0);
        let dropped = extend_normalized(&mut merged, more());
        assert_eq!(merged, together);
        assert_eq!((dropped, dropped_together), (2, 2));
        let names: Vec<_> = merged.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(names, ["a", "b", "d", "f", "g"]);
        assert_eq!(merged[1].metrics.len(), 3);
        assert_eq!(merged[1].metrics[0].value, Value::Single(2.0));
    }
}

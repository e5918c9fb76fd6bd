//! The live metric store every source of the sidecar feeds: counters,
//! gauges, histograms and summaries keyed by (name, label set), turned into
//! core [`MetricFamily`] values at each scrape.
//!
//! ## Why core's types and not `prometheus-client`
//! `prometheus-client` has no summary (StatsD timers default to summaries),
//! appends `_total` to counter names itself (statsd_exporter counters keep
//! the name the mapping gives them) and fixes a family's label names at
//! registration (statsd_exporter accepts several label-name sets under one
//! name). The store keeps its own compact series and hands the scrape an
//! owned snapshot in core's model, which core encodes in both formats.
//!
//! ## Rules
//! - A name is registered with one type by its first update. An update of
//!   another type for that name is rejected ([`Rejected::Conflict`]), and so
//!   is a new histogram `x` while `x_sum`, `x_count` or `x_bucket` exists with
//!   another type (a new summary checks `x_sum` and `x_count`), as
//!   statsd_exporter's registry does. Several label-name sets under one name
//!   are accepted, as there.
//! - At most `max_series_per_metric` series per name; updates that would
//!   create more are dropped ([`Rejected::OverLimit`]) and counted in
//!   `app_series_dropped_total{metric}`.
//! - A series not updated for its TTL (from the update, else the store's
//!   default; none means never) is removed at the next [`Store::expire`] or
//!   scrape. A name stays registered with its type after its series expire.
//! - Histogram buckets and summary settings belong to a name's label-name
//!   set: they are fixed by the update that created the first series with
//!   those label names.
//!
//! ## Concurrency
//! One mutex guards the store. A source takes a [`Writer`] for a whole batch
//! (a StatsD packet) so the lock is taken once per batch; an update of an
//! existing series hashes the label set once and allocates nothing. A scrape
//! holds the lock while it copies the series out.
//!
//! ## Exemplars
//! A histogram observation may carry an exemplar
//! ([`Writer::update_with_exemplar`]: labels such as `trace_id` and a wall
//! clock timestamp). Each bucket keeps the latest exemplar that fell in it;
//! the scrape hands them to core, which writes them in OpenMetrics only.
//! Storage for them is allocated on a series' first exemplar, and replacing
//! one with the same label names reuses its strings.

mod summary;

pub use summary::{SummaryConfig, DEFAULT_OBJECTIVES, MAX_REPEATS};

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use oxmon_core::collector::{CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::metrics::{Exemplar, LabelValue, Metric, MetricFamily, MetricType, Value};

use self::summary::Summary;

/// The family counting updates dropped by the series limit.
pub const SERIES_DROPPED: &str = "app_series_dropped_total";

/// Limits that apply to every name in the store.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most series per metric name.
    pub max_series_per_metric: usize,
    /// How long an idle series lives when its update names no TTL; `None`
    /// keeps it forever.
    pub default_ttl: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series_per_metric: 10_000,
            default_ttl: None,
        }
    }
}

/// The store's flags; each wins over the config file's `limits` section.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// Most series per metric name; updates that would create more are
    /// dropped and counted in app_series_dropped_total{metric} [default:
    /// 10000].
    #[arg(long = "store.max-series-per-metric")]
    pub max_series_per_metric: Option<usize>,

    /// Remove a series not updated for this long (0: keep) [default: 0s]. A
    /// StatsD mapping's ttl takes precedence.
    #[arg(long = "store.series-ttl", value_parser = oxmon_core::parse_duration)]
    pub series_ttl: Option<Duration>,
}

/// The collector exposing the store at each scrape.
pub struct StoreCollector(pub Arc<Store>);

impl SyncCollector for StoreCollector {
    fn name(&self) -> &'static str {
        "store"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        self.0.collect(Instant::now(), out);
        Ok(())
    }
}

/// The type of a metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Set or moved up and down.
    Gauge,
    /// Observations counted in buckets.
    Histogram,
    /// Observations summarised by quantiles.
    Summary,
}

/// What an observation is recorded into, with its settings (used when the
/// update creates the first series of a label-name set).
#[derive(Debug, Clone, Copy)]
pub enum Observer<'a> {
    /// Buckets: strictly increasing upper bounds, `+Inf` implied.
    Histogram(&'a Arc<[f64]>),
    /// Quantile settings.
    Summary(&'a Arc<SummaryConfig>),
}

/// One update.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Adds to a counter (the caller keeps it non-negative).
    CounterAdd(f64),
    /// Sets a gauge.
    GaugeSet(f64),
    /// Adds to a gauge.
    GaugeAdd(f64),
    /// Records `value`, `weight` times.
    Observe {
        /// The observed value.
        value: f64,
        /// How many observations it stands for.
        weight: u64,
        /// Where it goes.
        observer: Observer<'a>,
    },
}

impl Op<'_> {
    /// The type of name this update needs.
    pub fn kind(&self) -> Kind {
        match self {
            Op::CounterAdd(_) => Kind::Counter,
            Op::GaugeSet(_) | Op::GaugeAdd(_) => Kind::Gauge,
            Op::Observe {
                observer: Observer::Histogram(_),
                ..
            } => Kind::Histogram,
            Op::Observe {
                observer: Observer::Summary(_),
                ..
            } => Kind::Summary,
        }
    }
}

/// The series an update goes to.
#[derive(Debug, Clone, Copy)]
pub struct SeriesId<'a> {
    /// Metric name (valid Prometheus name).
    pub name: &'a str,
    /// Help text, used when the update registers the name.
    pub help: &'a str,
    /// Labels in any order; for a repeated name the last value wins.
    pub labels: &'a [(&'a str, &'a str)],
    /// Idle time after which the series is removed; `None` takes the
    /// store's default.
    pub ttl: Option<Duration>,
}

/// An update that was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// An existing series changed.
    Updated,
    /// A series was created; `new_label_names` when it is the first with its
    /// name and label-name set.
    Created {
        /// First series of this name and label-name set.
        new_label_names: bool,
    },
}

/// An update that was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The name (or a name its histogram/summary would expose) is registered
    /// with another type.
    Conflict,
    /// The name already has the maximum number of series.
    OverLimit,
}

/// An exemplar for one observation: labels pointing elsewhere (`trace_id`)
/// and when it was observed.
#[derive(Debug, Clone, Copy)]
pub struct ExemplarRef<'a> {
    /// Its labels; OpenMetrics allows 128 characters of names and values
    /// together (longer ones are kept but not written).
    pub labels: &'a [(&'a str, &'a str)],
    /// Seconds since the Unix epoch.
    pub timestamp: f64,
}

/// The latest exemplar of one histogram bucket.
#[derive(Debug, Clone)]
struct StoredExemplar {
    labels: Vec<(String, String)>,
    value: f64,
    timestamp: f64,
}

impl StoredExemplar {
    fn new(e: ExemplarRef<'_>, value: f64) -> Self {
        StoredExemplar {
            labels: e
                .labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            value,
            timestamp: e.timestamp,
        }
    }

    /// Takes `e`'s place, reusing the strings when the label names match.
    fn replace(&mut self, e: ExemplarRef<'_>, value: f64) {
        let same_names = self.labels.len() == e.labels.len()
            && self
                .labels
                .iter()
                .zip(e.labels)
                .all(|((k, _), (n, _))| k == n);
        if same_names {
            for ((_, v), (_, new)) in self.labels.iter_mut().zip(e.labels) {
                v.clear();
                v.push_str(new);
            }
            self.value = value;
            self.timestamp = e.timestamp;
        } else {
            *self = StoredExemplar::new(e, value);
        }
    }

    fn to_core(&self) -> Exemplar {
        Exemplar {
            labels: self
                .labels
                .iter()
                .map(|(k, v)| (Cow::Owned(k.clone()), v.as_str().into()))
                .collect(),
            value: self.value,
            timestamp: Some(self.timestamp),
        }
    }
}

/// Histogram counts of one series.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: Arc<[f64]>,
    /// Per-bucket (not cumulative) counts; the last is the `+Inf` bucket.
    counts: Box<[u64]>,
    sum: f64,
    count: u64,
    /// The latest exemplar per bucket, once there has been one.
    exemplars: Option<Box<[Option<StoredExemplar>]>>,
}

impl Histogram {
    fn new(bounds: Arc<[f64]>) -> Self {
        let counts = vec![0; bounds.len() + 1].into_boxed_slice();
        Histogram {
            bounds,
            counts,
            sum: 0.0,
            count: 0,
            exemplars: None,
        }
    }

    fn observe(&mut self, value: f64, weight: u64, exemplar: Option<ExemplarRef<'_>>) {
        // The first bucket whose bound is >= value; NaN lands in +Inf as in
        // the Go client.
        let i = if value.is_nan() {
            self.bounds.len()
        } else {
            self.bounds.partition_point(|b| *b < value)
        };
        if let Some(e) = exemplar {
            let buckets = self.counts.len();
            let slot = &mut self
                .exemplars
                .get_or_insert_with(|| vec![None; buckets].into_boxed_slice())[i];
            match slot {
                Some(stored) => stored.replace(e, value),
                None => *slot = Some(StoredExemplar::new(e, value)),
            }
        }
        self.counts[i] += weight;
        self.count += weight;
        // Repeated additions round like the Go client's repeated
        // observations; huge weights are multiplied.
        let repeats = weight.min(MAX_REPEATS);
        for _ in 0..repeats {
            self.sum += value;
        }
        if weight > repeats {
            self.sum += value * (weight - repeats) as f64;
        }
    }

    fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            acc += c;
            out.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), acc));
        }
        out
    }
}

#[derive(Debug)]
enum SeriesValue {
    Number(f64),
    Histogram(Histogram),
    Summary(Box<Summary>),
}

#[derive(Debug)]
struct Series {
    hash: u64,
    /// Next series with the same hash (a true hash collision).
    next: Option<u32>,
    labels: Box<[(Box<str>, Box<str>)]>,
    value: SeriesValue,
    last_update: Instant,
    ttl: Option<Duration>,
}

/// A label-name set of a family with the observer settings it was created
/// with.
#[derive(Debug)]
struct LabelNames {
    names: Box<[Box<str>]>,
    shape: Shape,
}

#[derive(Debug, Clone)]
enum Shape {
    Number,
    Histogram(Arc<[f64]>),
    Summary(Arc<SummaryConfig>),
}

#[derive(Debug)]
struct Family {
    name: Box<str>,
    help: Box<str>,
    kind: Kind,
    label_names: Vec<LabelNames>,
    slots: Vec<Option<Series>>,
    free: Vec<u32>,
    index: HashMap<u64, u32, BuildHasherDefault<PrehashedKey>>,
    live: usize,
    dropped: u64,
}

/// A `Hasher` for keys that are already hashes.
#[derive(Default)]
struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Family {
    fn find(&self, hash: u64, labels: &[(&str, &str)], order: &[usize]) -> Option<u32> {
        let mut cur = self.index.get(&hash).copied();
        while let Some(slot) = cur {
            let s = self.slots[slot as usize].as_ref()?;
            if s.hash == hash
                && s.labels.len() == order.len()
                && s.labels.iter().zip(order).all(|((k, v), &i)| {
                    let (ik, iv) = labels[i];
                    **k == *ik && **v == *iv
                })
            {
                return Some(slot);
            }
            cur = s.next;
        }
        None
    }

    fn insert(&mut self, mut series: Series) {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        series.next = self.index.insert(series.hash, slot);
        self.slots[slot as usize] = Some(series);
        self.live += 1;
    }

    fn remove(&mut self, slot: u32) {
        let Some(series) = self.slots[slot as usize].take() else {
            return;
        };
        match self.index.get(&series.hash).copied() {
            Some(head) if head == slot => match series.next {
                Some(next) => {
                    self.index.insert(series.hash, next);
                }
                None => {
                    self.index.remove(&series.hash);
                }
            },
            Some(mut cur) => {
                while let Some(s) = self.slots[cur as usize].as_mut() {
                    if s.next == Some(slot) {
                        s.next = series.next;
                        break;
                    }
                    match s.next {
                        Some(n) => cur = n,
                        None => break,
                    }
                }
            }
            None => {}
        }
        self.free.push(slot);
        self.live -= 1;
    }

    fn expire(&mut self, now: Instant) {
        for slot in 0..self.slots.len() {
            let expired = self.slots[slot]
                .as_ref()
                .is_some_and(|s| s.ttl.is_some_and(|ttl| s.last_update + ttl < now));
            if expired {
                self.remove(slot as u32);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    limits: Limits,
    families: Vec<Family>,
    by_name: HashMap<Box<str>, usize>,
    /// Scratch: label indexes sorted by name, reused by every update.
    order: Vec<usize>,
}

impl Inner {
    fn kind_of(&self, name: &str) -> Option<Kind> {
        self.by_name.get(name).map(|&i| self.families[i].kind)
    }

    /// Whether `name` registered as `kind` would clash with the names its
    /// samples use (`_sum`, `_count`, `_bucket`).
    fn suffix_conflict(&self, name: &str, kind: Kind) -> bool {
        let suffixes: &[&str] = match kind {
            Kind::Histogram => &["_sum", "_count", "_bucket"],
            Kind::Summary => &["_sum", "_count"],
            Kind::Counter | Kind::Gauge => &[],
        };
        let mut buf = String::with_capacity(name.len() + 7);
        suffixes.iter().any(|suffix| {
            buf.clear();
            buf.push_str(name);
            buf.push_str(suffix);
            self.kind_of(&buf).is_some_and(|k| k != kind)
        })
    }
}

/// The store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
    hasher: RandomState,
}

impl Store {
    /// An empty store.
    pub fn new(limits: Limits) -> Self {
        Store {
            inner: Mutex::new(Inner {
                limits,
                ..Inner::default()
            }),
            hasher: RandomState::new(),
        }
    }

    /// Replaces the limits (a config reload). The series cap applies to
    /// series created from now on (a name already above a lowered cap keeps
    /// its series until they expire); the default TTL applies to series
    /// created from now on.
    pub fn set_limits(&self, limits: Limits) {
        self.lock().limits = limits;
    }

    /// Whether `name` is registered (has had a series, even if they all
    /// expired since).
    pub fn is_registered(&self, name: &str) -> bool {
        self.lock().by_name.contains_key(name)
    }

    /// The hash of a label set whose indexes sorted by name are `order`.
    fn label_hash(&self, labels: &[(&str, &str)], order: &[usize]) -> u64 {
        let mut h = self.hasher.build_hasher();
        for &i in order {
            let (k, v) = labels[i];
            h.write(k.as_bytes());
            h.write_u8(0xff);
            h.write(v.as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
    }

    /// Locks the store for a batch of updates stamped `now`.
    pub fn writer(&self, now: Instant) -> Writer<'_> {
        Writer {
            inner: self.lock(),
            store: self,
            now,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes series idle for longer than their TTL.
    pub fn expire(&self, now: Instant) {
        for f in &mut self.lock().families {
            f.expire(now);
        }
    }

    /// Expires idle series, then writes every live series as of `now`, and
    /// `app_series_dropped_total` for names that hit the series limit.
    pub fn collect(&self, now: Instant, out: &mut Vec<MetricFamily>) {
        let mut inner = self.lock();
        let mut dropped = MetricFamily::counter(
            SERIES_DROPPED,
            "Updates dropped because their metric already had the maximum number of series.",
        );
        for f in &mut inner.families {
            f.expire(now);
            if f.dropped > 0 {
                dropped.add_owned(
                    vec![(Cow::Borrowed("metric"), f.name.as_ref().into())],
                    f.dropped as f64,
                );
            }
            if f.live == 0 {
                continue;
            }
            let kind = match f.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
                Kind::Summary => MetricType::Summary,
            };
            let mut family = MetricFamily::new(f.name.to_string(), f.help.to_string(), kind);
            family.metrics.reserve(f.live);
            for s in f.slots.iter_mut().flatten() {
                let labels = s
                    .labels
                    .iter()
                    .map(|(k, v)| (Cow::Owned(k.to_string()), LabelValue::from(v.as_ref())))
                    .collect();
                let mut exemplars = Vec::new();
                let value = match &mut s.value {
                    SeriesValue::Number(v) => Value::Single(*v),
                    SeriesValue::Histogram(h) => {
                        if let Some(stored) = &h.exemplars {
                            exemplars.extend(stored.iter().flatten().map(StoredExemplar::to_core));
                        }
                        Value::Histogram {
                            buckets: h.cumulative(),
                            sum: h.sum,
                            count: h.count,
                        }
                    }
                    SeriesValue::Summary(sm) => {
                        let (quantiles, sum, count) = sm.read(now);
                        Value::Summary {
                            quantiles,
                            sum,
                            count,
                        }
                    }
                };
                family.push(Metric {
                    labels,
                    value,
                    exemplars,
                });
            }
            out.push(family);
        }
        if !dropped.is_empty() {
            out.push(dropped);
        }
    }
}

/// The locked store, for a batch of updates.
pub struct Writer<'a> {
    inner: MutexGuard<'a, Inner>,
    store: &'a Store,
    now: Instant,
}

impl Writer<'_> {
    /// Applies one update.
    pub fn update(&mut self, id: &SeriesId<'_>, op: Op<'_>) -> Result<Applied, Rejected> {
        self.apply(id, op, None)
    }

    /// Applies one update whose observation carries `exemplar`, kept as its
    /// histogram bucket's latest; other kinds of update ignore it.
    pub fn update_with_exemplar(
        &mut self,
        id: &SeriesId<'_>,
        op: Op<'_>,
        exemplar: ExemplarRef<'_>,
    ) -> Result<Applied, Rejected> {
        self.apply(id, op, Some(exemplar))
    }

    fn apply(
        &mut self,
        id: &SeriesId<'_>,
        op: Op<'_>,
        exemplar: Option<ExemplarRef<'_>>,
    ) -> Result<Applied, Rejected> {
        let kind = op.kind();
        let inner = &mut *self.inner;
        let family = inner.by_name.get(id.name).copied();
        if let Some(fi) = family {
            if inner.families[fi].kind != kind {
                return Err(Rejected::Conflict);
            }
        }

        let mut order = std::mem::take(&mut inner.order);
        sort_labels(id.labels, &mut order);
        let hash = self.store.label_hash(id.labels, &order);

        let result = 'apply: {
            if let Some(fi) = family {
                let f = &mut inner.families[fi];
                if let Some(slot) = f.find(hash, id.labels, &order) {
                    let s = f.slots[slot as usize]
                        .as_mut()
                        .expect("indexed slot is live");
                    s.last_update = self.now;
                    apply(&mut s.value, op, exemplar, self.now);
                    break 'apply Ok(Applied::Updated);
                }
            }
            if inner.suffix_conflict(id.name, kind) {
                break 'apply Err(Rejected::Conflict);
            }
            let fi = match family {
                Some(fi) => fi,
                None => {
                    inner.families.push(Family {
                        name: id.name.into(),
                        help: id.help.into(),
                        kind,
                        label_names: Vec::new(),
                        slots: Vec::new(),
                        free: Vec::new(),
                        index: HashMap::default(),
                        live: 0,
                        dropped: 0,
                    });
                    inner
                        .by_name
                        .insert(id.name.into(), inner.families.len() - 1);
                    inner.families.len() - 1
                }
            };
            let f = &mut inner.families[fi];
            if f.live >= inner.limits.max_series_per_metric {
                f.dropped += 1;
                break 'apply Err(Rejected::OverLimit);
            }
            let existing = f.label_names.iter().position(|ln| {
                ln.names.len() == order.len()
                    && ln
                        .names
                        .iter()
                        .zip(&order)
                        .all(|(n, &i)| **n == *id.labels[i].0)
            });
            let (shape, new_label_names) = match existing {
                Some(i) => (f.label_names[i].shape.clone(), false),
                None => {
                    let shape = match op {
                        Op::Observe {
                            observer: Observer::Histogram(b),
                            ..
                        } => Shape::Histogram(b.clone()),
                        Op::Observe {
                            observer: Observer::Summary(c),
                            ..
                        } => Shape::Summary(c.clone()),
                        _ => Shape::Number,
                    };
                    f.label_names.push(LabelNames {
                        names: order.iter().map(|&i| id.labels[i].0.into()).collect(),
                        shape: shape.clone(),
                    });
                    (shape, true)
                }
            };
            let mut value = match shape {
                Shape::Number => SeriesValue::Number(0.0),
                Shape::Histogram(b) => SeriesValue::Histogram(Histogram::new(b)),
                Shape::Summary(c) => SeriesValue::Summary(Box::new(Summary::new(c, self.now))),
            };
            apply(&mut value, op, exemplar, self.now);
            f.insert(Series {
                hash,
                next: None,
                labels: order
                    .iter()
                    .map(|&i| (id.labels[i].0.into(), id.labels[i].1.into()))
                    .collect(),
                value,
                last_update: self.now,
                ttl: id.ttl.or(inner.limits.default_ttl),
            });
            Ok(Applied::Created { new_label_names })
        };
        inner.order = order;
        result
    }

    /// Removes one series (a health component that is no longer reported);
    /// the name stays registered. Returns whether it existed.
    pub fn remove(&mut self, name: &str, labels: &[(&str, &str)]) -> bool {
        let inner = &mut *self.inner;
        let Some(&fi) = inner.by_name.get(name) else {
            return false;
        };
        let mut order = std::mem::take(&mut inner.order);
        sort_labels(labels, &mut order);
        let hash = self.store.label_hash(labels, &order);
        let family = &mut inner.families[fi];
        let found = family.find(hash, labels, &order);
        if let Some(slot) = found {
            family.remove(slot);
        }
        inner.order = order;
        found.is_some()
    }
}

fn apply(value: &mut SeriesValue, op: Op<'_>, exemplar: Option<ExemplarRef<'_>>, now: Instant) {
    match (value, op) {
        (SeriesValue::Number(v), Op::CounterAdd(x) | Op::GaugeAdd(x)) => *v += x,
        (SeriesValue::Number(v), Op::GaugeSet(x)) => *v = x,
        (SeriesValue::Histogram(h), Op::Observe { value, weight, .. }) => {
            h.observe(value, weight, exemplar)
        }
        (SeriesValue::Summary(s), Op::Observe { value, weight, .. }) => {
            s.observe(value, weight, now)
        }
        // The family's kind was checked against the op's.
        _ => {}
    }
}

/// Fills `order` with the indexes of `labels` sorted by name, keeping only
/// the last of repeated names.
fn sort_labels(labels: &[(&str, &str)], order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..labels.len());
    // Stable: among equal names the later index stays last.
    order.sort_by(|&a, &b| labels[a].0.cmp(labels[b].0));
    let mut w = 0;
    for r in 0..order.len() {
        if r + 1 < order.len() && labels[order[r]].0 == labels[order[r + 1]].0 {
            continue;
        }
        order[w] = order[r];
        w += 1;
    }
    order.truncate(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id<'a>(name: &'a str, labels: &'a [(&'a str, &'a str)]) -> SeriesId<'a> {
        SeriesId {
            name,
            help: "help",
            labels,
            ttl: None,
        }
    }

    fn collect(store: &Store, now: Instant) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        store.collect(now, &mut out);
        oxmon_core::metrics::normalize(&mut out);
        out
    }

    fn value(fams: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<Value> {
        let f = fams.iter().find(|f| f.name == name)?;
        f.metrics
            .iter()
            .find(|m| {
                m.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| m.labels.iter().any(|(mk, mv)| mk == k && mv == v))
            })
            .map(|m| m.value.clone())
    }

    #[test]
    fn removal_registration_and_new_limits() {
        let store = Store::new(Limits::default());
        let now = Instant::now();
        let mut w = store.writer(now);
        let (a, b) = ([("component", "db")], [("component", "cache")]);
        w.update(&id("up", &a), Op::GaugeSet(1.0)).unwrap();
        w.update(&id("up", &b), Op::GaugeSet(0.0)).unwrap();
        assert!(w.remove("up", &a));
        assert!(!w.remove("up", &a));
        assert!(!w.remove("nope", &a));
        drop(w);
        let fams = collect(&store, now);
        assert_eq!(value(&fams, "up", &a), None);
        assert_eq!(value(&fams, "up", &b), Some(Value::Single(0.0)));
        assert!(store.is_registered("up") && !store.is_registered("down"));

        // New limits apply to series created from now on.
        store.set_limits(Limits {
            max_series_per_metric: 1,
            default_ttl: Some(Duration::from_secs(1)),
        });
        let mut w = store.writer(now);
        assert_eq!(
            w.update(&id("up", &a), Op::GaugeSet(1.0)),
            Err(Rejected::OverLimit)
        );
        w.update(&id("fresh", &[]), Op::GaugeSet(1.0)).unwrap();
        drop(w);
        let later = collect(&store, now + Duration::from_secs(2));
        assert_eq!(value(&later, "fresh", &[]), None);
        assert_eq!(value(&later, "up", &b), Some(Value::Single(0.0)));
        // Removed and expired names stay registered.
        assert!(store.is_registered("fresh"));
    }

    #[test]
    fn counters_and_gauges_by_label_set() {
        let store = Store::new(Limits::default());
        let now = Instant::now();
        let mut w = store.writer(now);
        let a = [("code", "200"), ("method", "get")];
        let a_reordered = [("method", "get"), ("code", "200")];
        assert_eq!(
            w.update(&id("req", &a), Op::CounterAdd(1.0)),
            Ok(Applied::Created {
                new_label_names: true
            })
        );
        assert_eq!(
            w.update(&id("req", &a_reordered), Op::CounterAdd(2.0)),
            Ok(Applied::Updated)
        );
        assert_eq!(
            w.update(
                &id("req", &[("code", "500"), ("method", "get")]),
                Op::CounterAdd(1.0)
            ),
            Ok(Applied::Created {
                new_label_names: false
            })
        );
        // Another label-name set under the same name is accepted.
        assert_eq!(
            w.update(&id("req", &[("code", "200")]), Op::CounterAdd(1.0)),
            Ok(Applied::Created {
                new_label_names: true
            })
        );
        w.update(&id("temp", &[]), Op::GaugeSet(5.0)).unwrap();
        w.update(&id("temp", &[]), Op::GaugeAdd(-7.5)).unwrap();
        drop(w);
        let fams = collect(&store, now);
        assert_eq!(value(&fams, "req", &a), Some(Value::Single(3.0)));
        assert_eq!(
            value(&fams, "req", &[("code", "500"), ("method", "get")]),
            Some(Value::Single(1.0))
        );
        assert_eq!(value(&fams, "temp", &[]), Some(Value::Single(-2.5)));
        assert_eq!(
            fams.iter().find(|f| f.name == "req").unwrap().metrics.len(),
            3
        );
    }

    #[test]
    fn repeated_label_names_keep_the_last_value() {
        let store = Store::new(Limits::default());
        let now = Instant::now();
        let mut w = store.writer(now);
        w.update(
            &id("x", &[("a", "1"), ("b", "2"), ("a", "3")]),
            Op::GaugeSet(1.0),
        )
        .unwrap();
        assert_eq!(
            w.update(&id("x", &[("b", "2"), ("a", "3")]), Op::GaugeSet(2.0)),
            Ok(Applied::Updated)
        );
        drop(w);
        let fams = collect(&store, now);
        assert_eq!(
            value(&fams, "x", &[("a", "3"), ("b", "2")]),
            Some(Value::Single(2.0))
        );
    }

    #[test]
    fn type_conflicts_follow_statsd_exporter() {
        let store = Store::new(Limits::default());
        let now = Instant::now();
        let buckets: Arc<[f64]> = Arc::from(vec![1.0, 10.0]);
        let summary = Arc::new(SummaryConfig::default());
        let hist = |v| Op::Observe {
            value: v,
            weight: 1,
            observer: Observer::Histogram(&buckets),
        };
        let summ = |v| Op::Observe {
            value: v,
            weight: 1,
            observer: Observer::Summary(&summary),
        };
        let mut w = store.writer(now);
        w.update(&id("cvg", &[]), Op::CounterAdd(1.0)).unwrap();
        assert_eq!(
            w.update(&id("cvg", &[]), Op::GaugeSet(2.0)),
            Err(Rejected::Conflict)
        );
        // Different labels do not help: the name has one type.
        assert_eq!(
            w.update(&id("cvg", &[("tag", "1")]), Op::GaugeSet(2.0)),
            Err(Rejected::Conflict)
        );
        w.update(&id("h1_sum", &[]), Op::CounterAdd(1.0)).unwrap();
        assert_eq!(w.update(&id("h1", &[]), hist(2.0)), Err(Rejected::Conflict));
        w.update(&id("h2_count", &[]), Op::CounterAdd(1.0)).unwrap();
        assert_eq!(w.update(&id("h2", &[]), hist(2.0)), Err(Rejected::Conflict));
        w.update(&id("h3_bucket", &[]), Op::CounterAdd(1.0))
            .unwrap();
        assert_eq!(w.update(&id("h3", &[]), hist(2.0)), Err(Rejected::Conflict));
        // A summary only checks _sum and _count.
        assert!(w.update(&id("h3", &[]), summ(2.0)).is_ok());
        w.update(&id("s_sum", &[]), Op::GaugeSet(1.0)).unwrap();
        assert_eq!(w.update(&id("s", &[]), summ(2.0)), Err(Rejected::Conflict));
        // The suffix names of a histogram registered as histograms are fine.
        w.update(&id("hh_sum", &[]), hist(1.0)).unwrap();
        assert!(w.update(&id("hh", &[]), hist(1.0)).is_ok());
        drop(w);
        let fams = collect(&store, now);
        assert_eq!(value(&fams, "cvg", &[]), Some(Value::Single(1.0)));
        assert!(!fams.iter().any(|f| f.name == "h1"));
    }

    #[test]
    fn histogram_buckets_are_inclusive_and_fixed_per_label_names() {
        let store = Store::new(Limits::default());
        let now = Instant::now();
        let b1: Arc<[f64]> = Arc::from(vec![1.0, 10.0]);
        let b2: Arc<[f64]> = Arc::from(vec![5.0]);
        let mut w = store.writer(now);
        for (v, b) in [(1.0, &b1), (10.0, &b2), (11.0, &b1), (f64::NAN, &b1)] {
            w.update(
                &id("lat", &[("a", "x")]),
                Op::Observe {
                    value: v,
                    weight: 2,
                    observer: Observer::Histogram(b),
                },
            )
            .unwrap();
        }
        drop(w);
        let fams = collect(&store, now);
        let Some(Value::Histogram { buckets, count, .. }) = value(&fams, "lat", &[("a", "x")])
        else {
            panic!("no histogram")
        };
        assert_eq!(count, 8);
        assert_eq!(buckets, vec![(1.0, 2), (10.0, 4), (f64::INFINITY, 8)]);
    }

    #[test]
    fn each_histogram_bucket_keeps_its_latest_exemplar() {
        let store = Store::new(Limits::default());
        let now = Instant::now();
        let bounds: Arc<[f64]> = Arc::from(vec![0.1, 1.0]);
        let observe = |v| Op::Observe {
            value: v,
            weight: 1,
            observer: Observer::Histogram(&bounds),
        };
        let lat = id("lat", &[("route", "/users/{id}")]);
        let mut w = store.writer(now);
        w.update(&lat, observe(0.05)).unwrap();
        for (value, trace, ts) in [(0.5, "aaa", 10.0), (0.7, "bbb", 11.0), (5.0, "ccc", 12.0)] {
            w.update_with_exemplar(
                &lat,
                observe(value),
                ExemplarRef {
                    labels: &[("trace_id", trace)],
                    timestamp: ts,
                },
            )
            .unwrap();
        }
        // Other label names replace the stored ones.
        w.update_with_exemplar(
            &lat,
            observe(2.0),
            ExemplarRef {
                labels: &[("span_id", "s1"), ("trace_id", "ddd")],
                timestamp: 13.0,
            },
        )
        .unwrap();
        drop(w);
        let fams = collect(&store, now);
        let m = &fams.iter().find(|f| f.name == "lat").unwrap().metrics[0];
        let shown: Vec<_> = m
            .exemplars
            .iter()
            .map(|e| {
                let labels: Vec<_> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                (labels.join(","), e.value, e.timestamp)
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("trace_id=bbb".to_string(), 0.7, Some(11.0)),
                ("span_id=s1,trace_id=ddd".to_string(), 2.0, Some(13.0)),
            ]
        );
        let mut om = Vec::new();
        oxmon_core::encode::encode(&fams, oxmon_core::encode::Format::OpenMetrics, &mut om);
        let om = String::from_utf8(om).unwrap();
        assert!(
            om.contains(
                "lat_bucket{route=\"/users/{id}\",le=\"1\"} 3 # {trace_id=\"bbb\"} 0.7 11\n"
            ),
            "{om}"
        );
        assert!(om.contains(
            "lat_bucket{route=\"/users/{id}\",le=\"+Inf\"} 5 # {span_id=\"s1\",trace_id=\"ddd\"} 2 13\n"
        ), "{om}");
    }

    #[test]
    fn series_limit_drops_new_label_sets_and_counts_them() {
        let store = Store::new(Limits {
            max_series_per_metric: 2,
            default_ttl: None,
        });
        let now = Instant::now();
        let mut w = store.writer(now);
        for u in ["a", "b", "c", "d"] {
            let _ = w.update(&id("users", &[("user", u)]), Op::CounterAdd(1.0));
        }
        // Existing series still update.
        assert_eq!(
            w.update(&id("users", &[("user", "a")]), Op::CounterAdd(1.0)),
            Ok(Applied::Updated)
        );
        assert_eq!(
            w.update(&id("users", &[("user", "e")]), Op::CounterAdd(1.0)),
            Err(Rejected::OverLimit)
        );
        drop(w);
        let fams = collect(&store, now);
        assert_eq!(
            fams.iter()
                .find(|f| f.name == "users")
                .unwrap()
                .metrics
                .len(),
            2
        );
        assert_eq!(
            value(&fams, SERIES_DROPPED, &[("metric", "users")]),
            Some(Value::Single(3.0))
        );
    }

    #[test]
    fn idle_series_expire_after_their_ttl() {
        let store = Store::new(Limits {
            max_series_per_metric: 10,
            default_ttl: Some(Duration::from_secs(1)),
        });
        let t0 = Instant::now();
        let mut w = store.writer(t0);
        w.update(&id("short", &[]), Op::GaugeSet(1.0)).unwrap();
        w.update(
            &SeriesId {
                ttl: Some(Duration::from_secs(2)),
                ..id("long", &[])
            },
            Op::GaugeSet(1.0),
        )
        .unwrap();
        drop(w);
        let names = |t| {
            collect(&store, t)
                .iter()
                .map(|f| f.name.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(t0 + Duration::from_secs(1)), ["long", "short"]);
        assert_eq!(names(t0 + Duration::from_millis(1500)), ["long"]);
        // An update keeps a series alive.
        store
            .writer(t0 + Duration::from_millis(1900))
            .update(&id("long", &[]), Op::GaugeSet(2.0))
            .unwrap();
        assert_eq!(names(t0 + Duration::from_millis(3500)), ["long"]);
        store.expire(t0 + Duration::from_secs(4));
        assert!(names(t0 + Duration::from_secs(4)).is_empty());
        // The name keeps its type after its series are gone.
        assert_eq!(
            store
                .writer(t0)
                .update(&id("long", &[]), Op::CounterAdd(1.0)),
            Err(Rejected::Conflict)
        );
    }

    #[test]
    fn removal_keeps_colliding_chains_intact() {
        let mut f = Family {
            name: "x".into(),
            help: "".into(),
            kind: Kind::Gauge,
            label_names: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::default(),
            live: 0,
            dropped: 0,
        };
        let now = Instant::now();
        for v in ["a", "b", "c"] {
            f.insert(Series {
                hash: 7,
                next: None,
                labels: vec![("l".into(), v.into())].into_boxed_slice(),
                value: SeriesValue::Number(0.0),
                last_update: now,
                ttl: None,
            });
        }
        let order = [0];
        assert_eq!(f.find(7, &[("l", "b")], &order), Some(1));
        f.remove(1);
        assert_eq!(f.find(7, &[("l", "a")], &order), Some(0));
        assert_eq!(f.find(7, &[("l", "c")], &order), Some(2));
        assert_eq!(f.find(7, &[("l", "b")], &order), None);
        f.remove(2);
        f.remove(0);
        assert!(f.index.is_empty());
        assert_eq!(f.live, 0);
    }
}

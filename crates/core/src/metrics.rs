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
    pub labels: Vec<(LabelName, String)>,
    /// The observed value (for a histogram it selects the bucket).
    pub value: f64,
    /// When it was observed, in seconds since the Unix epoch.
    pub timestamp: Option<f64>,
}

/// One series of a family: its labels, its value and its exemplars.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Label pairs. The encoder sorts them by name.
    pub labels: Vec<(LabelName, String)>,
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
    pub fn new(labels: Vec<(LabelName, String)>, value: Value) -> Self {
        Metric {
            labels,
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
    pub fn add_owned(&mut self, labels: Vec<(LabelName, String)>, value: f64) -> &mut Self {
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

fn static_labels(labels: &[(&'static str, &str)]) -> Vec<(LabelName, String)> {
    labels
        .iter()
        .map(|(k, v)| (Cow::Borrowed(*k), (*v).to_string()))
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
    let mut dropped = 0;
    for f in families.iter_mut() {
        for m in f.metrics.iter_mut() {
            if !m.labels.is_sorted_by(|a, b| a.0 <= b.0) {
                m.labels.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
    }
    families.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out: Vec<MetricFamily> = Vec::with_capacity(families.len());
    for f in families.drain(..) {
        match out.last_mut() {
            Some(last) if last.name == f.name => {
                if last.kind == f.kind {
                    last.metrics.extend(f.metrics);
                } else {
                    dropped += f.metrics.len();
                }
            }
            _ => out.push(f),
        }
    }
    for f in out.iter_mut() {
        // Many collectors already emit in label order, without repeats.
        if f.metrics.windows(2).all(|w| w[0].labels < w[1].labels) {
            continue;
        }
        f.metrics.sort_by(|a, b| a.labels.cmp(&b.labels));
        let before = f.metrics.len();
        f.metrics.dedup_by(|a, b| a.labels == b.labels);
        dropped += before - f.metrics.len();
    }
    out.retain(|f| !f.metrics.is_empty());
    *families = out;
    dropped
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
}

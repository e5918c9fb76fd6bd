//! A parser for exposition text, the classic text format 0.0.4 and
//! OpenMetrics 1.0: what other programs hand an exporter (textfile
//! collector `*.prom` files, an application's own `/metrics` for a relay)
//! and what tests read back from the exporters.
//!
//! Samples are grouped into families by the `# TYPE` lines: a sample belongs
//! to the family whose name it matches exactly, else to the declared family it
//! matches after removing a suffix its type allows (`_total`, `_created`,
//! `_bucket`, `_sum`, `_count`, `_gcount`, `_gsum`, `_info`). A sample with
//! no declared family gets an `untyped` family of its own name.
//!
//! [`try_parse`] reports the first error with its line number: bad syntax,
//! an escape other than `\\`, `\"` and `\n` in a label value, a second
//! TYPE or HELP line, a TYPE line after the family's samples, a histogram
//! sample without its suffix or a bucket without `le`, a summary quantile
//! without `quantile`. It never panics, and its memory use is linear in the
//! input. [`parse`] panics with the error (for tests). Client-side
//! timestamps are kept per sample ([`Exposition::has_timestamps`]).
//!
//! [`Family::to_metric_family`] turns a parsed family into a core
//! [`MetricFamily`], assembling histograms and summaries from their
//! `_bucket`/`_sum`/`_count` and quantile samples:
//!
//! ```
//! use oxmon_core::expo::try_parse;
//! use oxmon_core::metrics::Value;
//!
//! let text = concat!(
//!     "# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\njobs_total{queue=\"a\"} 3\n",
//!     "# TYPE lat histogram\nlat_bucket{le=\"0.5\"} 1\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 0.7\nlat_count 2\n",
//! );
//! let parsed = try_parse(text).unwrap();
//! assert_eq!(parsed.value("jobs_total", &[("queue", "a")]), Some(3.0));
//! let families = parsed.to_metric_families().unwrap();
//! assert_eq!(families[0].name, "jobs_total");
//! assert_eq!(
//!     families[1].metrics[0].value,
//!     Value::Histogram { buckets: vec![(0.5, 1), (f64::INFINITY, 2)], sum: 0.7, count: 2 }
//! );
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::metrics::{LabelName, LabelValue, Metric, MetricFamily, MetricType, Value};

/// A parsed exposition: every family by its name (as written on its `# TYPE`
/// line, or the sample name for samples without one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Families by name.
    pub families: BTreeMap<String, Family>,
    /// Whether the text ended with `# EOF` (required by OpenMetrics).
    pub eof: bool,
}

/// One metric family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    /// The family name.
    pub name: String,
    /// `gauge`, `counter`, `untyped`, `unknown`, `histogram`, `summary`,
    /// `info`, `gaugehistogram`, `stateset`; `untyped` without a TYPE line.
    pub kind: String,
    /// The HELP text, unescaped; empty without a HELP line.
    pub help: String,
    /// The UNIT (OpenMetrics only).
    pub unit: Option<String>,
    /// The samples in input order.
    pub samples: Vec<Sample>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample name (for example `x_bucket` in family `x`).
    pub name: String,
    /// Labels, unescaped.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
    /// The timestamp as written (milliseconds in 0.0.4, seconds in
    /// OpenMetrics), if any.
    pub timestamp: Option<f64>,
}

impl Sample {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// Whether the sample carries every given `(label, value)` pair.
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels
            .iter()
            .all(|(k, v)| self.labels.get(*k).map(String::as_str) == Some(*v))
    }
}

/// A syntax error with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl Exposition {
    /// The family named `name`; failing that, the family that holds a sample
    /// named `name` (so `family("x_total")` finds OpenMetrics family `x`).
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.get(name).or_else(|| {
            self.families
                .values()
                .find(|f| f.samples.iter().any(|s| s.name == name))
        })
    }

    /// The value of the first sample named `sample_name` whose labels
    /// include all of `labels`.
    pub fn value(&self, sample_name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.all_samples()
            .find(|s| s.name == sample_name && s.has_labels(labels))
            .map(|s| s.value)
    }

    /// Every sample named `sample_name`.
    pub fn samples(&self, sample_name: &str) -> Vec<&Sample> {
        self.all_samples()
            .filter(|s| s.name == sample_name)
            .collect()
    }

    /// Every sample of every family, families in name order.
    pub fn all_samples(&self) -> impl Iterator<Item = &Sample> {
        self.families.values().flat_map(|f| f.samples.iter())
    }

    /// The family names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.families.keys().map(String::as_str).collect()
    }

    /// The distinct sample names, sorted.
    pub fn sample_names(&self) -> Vec<&str> {
        let set: std::collections::BTreeSet<&str> =
            self.all_samples().map(|s| s.name.as_str()).collect();
        set.into_iter().collect()
    }

    /// The number of samples.
    pub fn sample_count(&self) -> usize {
        self.families.values().map(|f| f.samples.len()).sum()
    }
}

/// A parsed family that has no core [`MetricFamily`] form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A type core families cannot carry (`gaugehistogram`).
    #[error("metric family {family}: type {kind} is not supported")]
    UnsupportedType {
        /// The family.
        family: String,
        /// Its type.
        kind: String,
    },
    /// A sample that does not fit the family's type.
    #[error("metric family {family}: unexpected sample {sample}")]
    UnexpectedSample {
        /// The family.
        family: String,
        /// The sample name.
        sample: String,
    },
    /// A bucket or quantile sample whose bound is missing or not a number.
    #[error("metric family {family}: sample {sample} has no valid {label} label")]
    BadBound {
        /// The family.
        family: String,
        /// The sample name.
        sample: String,
        /// `le` or `quantile`.
        label: &'static str,
    },
}

impl Exposition {
    /// Whether any sample carries a client-side timestamp.
    pub fn has_timestamps(&self) -> bool {
        self.all_samples().any(|s| s.timestamp.is_some())
    }

    /// Every family with samples as a core [`MetricFamily`], in name order
    /// (see [`Family::to_metric_family`]).
    pub fn to_metric_families(&self) -> Result<Vec<MetricFamily>, ConvertError> {
        self.families
            .values()
            .filter(|f| !f.samples.is_empty())
            .map(Family::to_metric_family)
            .collect()
    }
}

impl Family {
    /// The core type of this family: `unknown` is untyped and a stateset
    /// is a gauge (as Prometheus stores them); `None` for `gaugehistogram`.
    pub fn metric_type(&self) -> Option<MetricType> {
        Some(match self.kind.as_str() {
            "counter" => MetricType::Counter,
            "gauge" | "stateset" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "untyped" | "unknown" => MetricType::Untyped,
            _ => return None,
        })
    }

    /// Gives every series the same label names, adding missing ones with an
    /// empty value (as node_exporter's textfile collector does); `le` of
    /// histograms and `quantile` of summaries are left alone.
    pub fn fill_missing_labels(&mut self) {
        let names: std::collections::BTreeSet<String> = self
            .padded_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        for s in &mut self.samples {
            for n in &names {
                if !s.labels.contains_key(n) {
                    s.labels.insert(n.clone(), String::new());
                }
            }
        }
    }

    /// How many empty labels [`Family::fill_missing_labels`] would add:
    /// samples times distinct label names, less the labels already there.
    /// It grows with the product, so a short file of series that each use
    /// another label name asks for a huge padding; callers bound it with
    /// this count before filling.
    pub fn missing_label_count(&self) -> usize {
        let bound = self.bound_label();
        let present: usize = self
            .samples
            .iter()
            .map(|s| {
                s.labels
                    .keys()
                    .filter(|k| Some(k.as_str()) != bound)
                    .count()
            })
            .sum();
        let names = self.padded_names().len();
        self.samples
            .len()
            .saturating_mul(names)
            .saturating_sub(present)
    }

    /// Every label name of the samples, but `le`/`quantile` of histograms
    /// and summaries.
    fn padded_names(&self) -> std::collections::BTreeSet<&str> {
        let bound = self.bound_label();
        self.samples
            .iter()
            .flat_map(|s| s.labels.keys())
            .map(String::as_str)
            .filter(|k| Some(*k) != bound)
            .collect()
    }

    fn bound_label(&self) -> Option<&'static str> {
        match self.kind.as_str() {
            "histogram" => Some("le"),
            "summary" => Some("quantile"),
            _ => None,
        }
    }

    /// Converts to a core [`MetricFamily`] named the way the 0.0.4 format
    /// names it: an OpenMetrics counter `x` becomes `x_total` and an info
    /// family `x` becomes `x_info`. Histogram and summary series are
    /// assembled per label set (first appearance order) from their
    /// `_bucket`/quantile, `_sum` and `_count` samples; counts are rounded
    /// down to integers; a missing `_sum`/`_count` is 0. `_created`
    /// samples and timestamps are dropped.
    pub fn to_metric_family(&self) -> Result<MetricFamily, ConvertError> {
        let kind = self
            .metric_type()
            .ok_or_else(|| ConvertError::UnsupportedType {
                family: self.name.clone(),
                kind: self.kind.clone(),
            })?;
        let unexpected = |s: &Sample| ConvertError::UnexpectedSample {
            family: self.name.clone(),
            sample: s.name.clone(),
        };
        let samples = self
            .samples
            .iter()
            .filter(|s| !(s.name.len() > self.name.len() && s.name.ends_with("_created")));
        match kind {
            MetricType::Histogram | MetricType::Summary => {
                let mut family = MetricFamily::new(self.name.clone(), self.help.clone(), kind);
                let bound = self.bound_label().unwrap_or("le");
                // Series in order of first appearance, found by label set
                // through an index (a scan per sample is quadratic).
                let mut series: Vec<(Vec<(LabelName, LabelValue)>, Assembled)> = Vec::new();
                let mut index: HashMap<Vec<(LabelName, LabelValue)>, usize> = HashMap::new();
                for s in samples {
                    let key = labels_without(&s.labels, bound);
                    let at = match index.get(&key) {
                        Some(&at) => at,
                        None => {
                            index.insert(key.clone(), series.len());
                            series.push((key, Assembled::default()));
                            series.len() - 1
                        }
                    };
                    let part = &mut series[at].1;
                    match s.name.strip_prefix(self.name.as_str()) {
                        Some("_sum") => part.sum = s.value,
                        Some("_count") => part.count = to_count(s.value),
                        Some("_bucket") if kind == MetricType::Histogram => {
                            part.points.push((self.bound(s, bound)?, s.value))
                        }
                        Some("") if kind == MetricType::Summary => {
                            part.points.push((self.bound(s, bound)?, s.value))
                        }
                        _ => return Err(unexpected(s)),
                    }
                }
                for (labels, mut part) in series {
                    part.points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let value = if kind == MetricType::Histogram {
                        Value::Histogram {
                            buckets: part
                                .points
                                .into_iter()
                                .map(|(le, n)| (le, to_count(n)))
                                .collect(),
                            sum: part.sum,
                            count: part.count,
                        }
                    } else {
                        Value::Summary {
                            quantiles: part.points,
                            sum: part.sum,
                            count: part.count,
                        }
                    };
                    family.push(Metric::new(labels, value));
                }
                Ok(family)
            }
            _ => {
                let suffix = match kind {
                    MetricType::Counter => "_total",
                    MetricType::Info => "_info",
                    _ => "",
                };
                let samples: Vec<&Sample> = samples.collect();
                let bare = samples.iter().all(|s| s.name == self.name);
                let name = if self.name.ends_with(suffix) || bare {
                    self.name.clone()
                } else {
                    format!("{}{suffix}", self.name)
                };
                let mut family = MetricFamily::new(name.clone(), self.help.clone(), kind);
                for s in samples {
                    if s.name != name {
                        return Err(unexpected(s));
                    }
                    family.add_owned(labels_without(&s.labels, ""), s.value);
                }
                Ok(family)
            }
        }
    }

    fn bound(&self, s: &Sample, label: &'static str) -> Result<f64, ConvertError> {
        s.label(label)
            .and_then(parse_float)
            .filter(|b| !b.is_nan())
            .ok_or_else(|| ConvertError::BadBound {
                family: self.name.clone(),
                sample: s.name.clone(),
                label,
            })
    }
}

/// The parts of one histogram or summary series.
#[derive(Default)]
struct Assembled {
    points: Vec<(f64, f64)>,
    sum: f64,
    count: u64,
}

fn labels_without(labels: &BTreeMap<String, String>, skip: &str) -> Vec<(LabelName, LabelValue)> {
    labels
        .iter()
        .filter(|(k, _)| k.as_str() != skip)
        .map(|(k, v)| (Cow::Owned(k.clone()), LabelValue::from(v.as_str())))
        .collect()
}

/// A count written as a float; negative and NaN become 0, as `as` does.
fn to_count(v: f64) -> u64 {
    v as u64
}

/// Parses exposition text, panicking with the line number on a syntax error.
pub fn parse(text: &str) -> Exposition {
    match try_parse(text) {
        Ok(e) => e,
        Err(e) => panic!(
            "invalid exposition text: {e}\n--- text ---\n{}",
            excerpt(text, e.line)
        ),
    }
}

fn excerpt(text: &str, line: usize) -> String {
    let start = line.saturating_sub(3);
    text.lines()
        .enumerate()
        .skip(start)
        .take(5)
        .map(|(i, l)| format!("{:>5}: {}\n", i + 1, l))
        .collect()
}

/// Parses exposition text; the error names the first bad line.
pub fn try_parse(text: &str) -> Result<Exposition, ParseError> {
    let mut p = Parser::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        p.line(line).map_err(|message| ParseError {
            line: line_no,
            message,
        })?;
    }
    Ok(p.finish())
}

#[derive(Default)]
struct Parser {
    declared: BTreeMap<String, Family>,
    help_seen: std::collections::BTreeSet<String>,
    undeclared: BTreeMap<String, Family>,
    eof: bool,
}

/// Suffixes a sample may carry beyond its family name, and the family types
/// that allow each.
const SUFFIXES: &[(&str, &[&str])] = &[
    ("_total", &["counter"]),
    (
        "_created",
        &["counter", "histogram", "summary", "gaugehistogram"],
    ),
    ("_bucket", &["histogram", "gaugehistogram"]),
    ("_sum", &["histogram", "summary"]),
    ("_count", &["histogram", "summary"]),
    ("_gcount", &["gaugehistogram"]),
    ("_gsum", &["gaugehistogram"]),
    ("_info", &["info"]),
];

const KINDS: &[&str] = &[
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "summary",
    "untyped",
    "unknown",
    "info",
    "stateset",
];

impl Parser {
    fn line(&mut self, line: &str) -> Result<(), String> {
        if self.eof {
            return Err("content after # EOF".into());
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            return Ok(());
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            return self.comment(comment);
        }
        self.sample(trimmed)
    }

    fn comment(&mut self, comment: &str) -> Result<(), String> {
        let comment = comment.trim_start();
        if comment == "EOF" {
            self.eof = true;
            return Ok(());
        }
        let mut parts = comment.splitn(2, [' ', '\t']);
        let keyword = parts.next().unwrap_or("");
        let rest = parts.next().unwrap_or("").trim_start();
        match keyword {
            "TYPE" => {
                let (name, kind) = split_name(rest)?;
                let kind = kind.trim();
                if !KINDS.contains(&kind) {
                    return Err(format!("unknown metric type {kind:?} for {name}"));
                }
                let fam = self
                    .declared
                    .entry(name.to_string())
                    .or_insert_with(|| Family {
                        name: name.to_string(),
                        ..Family::default()
                    });
                if !fam.kind.is_empty() {
                    return Err(format!("second TYPE line for {name}"));
                }
                if !fam.samples.is_empty() || self.undeclared.contains_key(name) {
                    return Err(format!("TYPE line for {name} after its samples"));
                }
                fam.kind = kind.to_string();
                Ok(())
            }
            "HELP" => {
                let (name, help) = split_name(rest)?;
                if !self.help_seen.insert(name.to_string()) {
                    return Err(format!("second HELP line for {name}"));
                }
                // Kept raw: unescaped in `finish`, once the format is known.
                let help = help.strip_prefix(' ').unwrap_or(help).to_string();
                let fam = self
                    .declared
                    .entry(name.to_string())
                    .or_insert_with(|| Family {
                        name: name.to_string(),
                        ..Family::default()
                    });
                fam.help = help;
                Ok(())
            }
            "UNIT" => {
                let (name, unit) = split_name(rest)?;
                let fam = self
                    .declared
                    .entry(name.to_string())
                    .or_insert_with(|| Family {
                        name: name.to_string(),
                        ..Family::default()
                    });
                fam.unit = Some(unit.trim().to_string());
                Ok(())
            }
            // Any other comment is allowed in 0.0.4 and ignored.
            _ => Ok(()),
        }
    }

    fn sample(&mut self, line: &str) -> Result<(), String> {
        let mut cur = Cursor::new(line);
        let name = cur.name()?;
        let before = cur.pos;
        cur.spaces(false)?;
        let labels = if cur.peek() == Some('{') {
            let labels = cur.labels()?;
            cur.spaces(true)?;
            labels
        } else if cur.pos == before && !cur.at_end() {
            return Err(format!("invalid character after metric name {name}"));
        } else {
            BTreeMap::new()
        };
        let value_text = cur.token();
        if value_text.is_empty() {
            return Err(format!("missing value for {name}"));
        }
        let value = parse_float(value_text)
            .ok_or_else(|| format!("invalid value {value_text:?} for {name}"))?;
        let mut timestamp = None;
        cur.spaces(false)?;
        if !cur.at_end() && cur.peek() != Some('#') {
            let ts = cur.token();
            timestamp = Some(
                parse_float(ts)
                    .filter(|t| t.is_finite())
                    .ok_or_else(|| format!("invalid timestamp {ts:?} for {name}"))?,
            );
            cur.spaces(false)?;
        }
        if cur.peek() == Some('#') {
            // An OpenMetrics exemplar: ` # {labels} value [timestamp]`.
            cur.advance(1);
            cur.spaces(true)?;
            if cur.peek() != Some('{') {
                return Err(format!("invalid exemplar for {name}"));
            }
            cur.labels()?;
            cur.spaces(true)?;
            let v = cur.token();
            parse_float(v).ok_or_else(|| format!("invalid exemplar value {v:?}"))?;
            cur.spaces(false)?;
            if !cur.at_end() {
                let ts = cur.token();
                parse_float(ts).ok_or_else(|| format!("invalid exemplar timestamp {ts:?}"))?;
                cur.spaces(false)?;
            }
        }
        if !cur.at_end() {
            return Err(format!(
                "unexpected text {:?} after sample {name}",
                cur.rest()
            ));
        }
        let sample = Sample {
            name: name.to_string(),
            labels,
            value,
            timestamp,
        };
        let family = self.family_of(name);
        check_shape(family, &sample)?;
        family.samples.push(sample);
        Ok(())
    }

    fn family_of(&mut self, sample: &str) -> &mut Family {
        let key = self.declared_family_key(sample);
        match key {
            Some(k) => self.declared.get_mut(&k).unwrap(),
            None => self
                .undeclared
                .entry(sample.to_string())
                .or_insert_with(|| Family {
                    name: sample.to_string(),
                    kind: "untyped".into(),
                    ..Family::default()
                }),
        }
    }

    fn declared_family_key(&self, sample: &str) -> Option<String> {
        // Exact names win: summary quantiles and OpenMetrics gauge histogram
        // and stateset samples carry the family name, and a gauge may well
        // be called `x_count`.
        if self.declared.contains_key(sample) {
            return Some(sample.to_string());
        }
        SUFFIXES.iter().find_map(|(suffix, kinds)| {
            let base = sample.strip_suffix(suffix)?;
            let fam = self.declared.get(base)?;
            kinds.contains(&fam.kind.as_str()).then(|| base.to_string())
        })
    }

    fn finish(self) -> Exposition {
        let mut families = self.declared;
        for fam in families.values_mut() {
            // OpenMetrics also escapes quotes in HELP; 0.0.4 does not.
            fam.help = unescape(&fam.help, self.eof);
            if fam.kind.is_empty() {
                fam.kind = "untyped".into();
            }
        }
        for (name, fam) in self.undeclared {
            match families.get_mut(&name) {
                Some(existing) => existing.samples.extend(fam.samples),
                None => {
                    families.insert(name, fam);
                }
            }
        }
        Exposition {
            families,
            eof: self.eof,
        }
    }
}

/// Rejects samples that cannot belong to their family's type: a histogram
/// sample without a histogram suffix, a bucket without `le`, a summary
/// sample of the family's own name without `quantile`.
fn check_shape(family: &Family, sample: &Sample) -> Result<(), String> {
    let name = &sample.name;
    let own_name = *name == family.name;
    match family.kind.as_str() {
        "histogram" | "gaugehistogram" if own_name => Err(format!(
            "{} sample {name} lacks _bucket, _sum or _count",
            family.kind
        )),
        "histogram" | "gaugehistogram"
            if name.ends_with("_bucket") && !sample.labels.contains_key("le") =>
        {
            Err(format!("histogram bucket {name} has no le label"))
        }
        "summary" if own_name && !sample.labels.contains_key("quantile") => {
            Err(format!("summary sample {name} has no quantile label"))
        }
        _ => Ok(()),
    }
}

/// Splits `name rest` after a TYPE/HELP/UNIT keyword.
fn split_name(rest: &str) -> Result<(&str, &str), String> {
    let end = rest.find([' ', '\t']).unwrap_or(rest.len());
    let name = &rest[..end];
    if !valid_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    Ok((name, &rest[end..]))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Unescapes HELP text (`\\`, `\n`) or, with `quotes`, a label value (also
/// `\"`). Unknown escapes are kept as written.
fn unescape(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Parses a float the way Go's `strconv.ParseFloat` reads exposition values:
/// decimal with optional exponent, `+Inf`, `-Inf`, `Inf`, `NaN` (any case).
pub fn parse_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let negative = s.starts_with('-');
    let lower = unsigned.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "infinity" => {
            return Some(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    let valid = !unsigned.is_empty()
        && unsigned
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-' | '_'))
        && unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if !valid {
        return None;
    }
    let cleaned: String = s.chars().filter(|c| *c != '_').collect();
    cleaned.parse::<f64>().ok()
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn advance(&mut self, n: usize) {
        self.pos += n;
    }

    /// Skips spaces and tabs; with `required`, at least one must be there.
    fn spaces(&mut self, required: bool) -> Result<(), String> {
        let start = self.pos;
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
        if required && start == self.pos {
            return Err(format!("expected a space before {:?}", self.rest()));
        }
        Ok(())
    }

    /// Reads up to the next space or tab.
    fn token(&mut self) -> &'a str {
        let rest = self.rest();
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        self.pos += end;
        &rest[..end]
    }

    fn name(&mut self) -> Result<&'a str, String> {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if !valid_name(name) {
            return Err(format!("invalid metric name at {rest:?}"));
        }
        self.pos += end;
        Ok(name)
    }

    fn labels(&mut self) -> Result<BTreeMap<String, String>, String> {
        let mut labels = BTreeMap::new();
        self.advance(1); // '{'
        loop {
            self.spaces(false)?;
            if self.peek() == Some('}') {
                self.advance(1);
                return Ok(labels);
            }
            let rest = self.rest();
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!("invalid label name at {rest:?}"));
            }
            self.advance(end);
            self.spaces(false)?;
            if self.peek() != Some('=') {
                return Err(format!("expected '=' after label {name}"));
            }
            self.advance(1);
            self.spaces(false)?;
            if self.peek() != Some('"') {
                return Err(format!("expected '\"' to open the value of label {name}"));
            }
            self.advance(1);
            let value = self.quoted()?;
            if labels.insert(name.to_string(), value).is_some() {
                return Err(format!("duplicate label {name}"));
            }
            self.spaces(false)?;
            match self.peek() {
                Some(',') => self.advance(1),
                Some('}') => {}
                _ => return Err(format!("expected ',' or '}}' after label {name}")),
            }
        }
    }

    /// Reads a label value after its opening quote, through the closing one.
    fn quoted(&mut self) -> Result<String, String> {
        let rest = self.rest();
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            if escaped {
                if !matches!(c, '\\' | '"' | 'n') {
                    return Err(format!("invalid escape sequence \\{c} in label value"));
                }
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                self.advance(i + 1);
                return Ok(unescape(&rest[..i], true));
            } else if c == '\n' {
                break;
            }
        }
        Err("unterminated label value".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASSIC: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 3.5e+03
node_cpu_seconds_total{cpu="0",mode="user"} 12.25
# HELP go_gc_duration_seconds A summary.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 1.2e-05
go_gc_duration_seconds{quantile="1"} NaN
go_gc_duration_seconds_sum 0.5
go_gc_duration_seconds_count 7
# HELP http_duration Latency.
# TYPE http_duration histogram
http_duration_bucket{le="0.1"} 1
http_duration_bucket{le="+Inf"} 3
http_duration_sum 0.7
http_duration_count 3
# TYPE weird gauge
weird{path="C:\\dir\"x\"\nnext"} -Inf 1700000000000
# some free comment
no_type_metric 42
# HELP pg_up Whether the last scrape could connect.\nSecond line with \\ backslash.
# TYPE pg_up gauge
pg_up 1
"#;

    #[test]
    fn parses_classic_text() {
        let e = parse(CLASSIC);
        let cpu = e.family("node_cpu_seconds_total").unwrap();
        assert_eq!(cpu.kind, "counter");
        assert_eq!(cpu.samples.len(), 2);
        assert_eq!(
            e.value("node_cpu_seconds_total", &[("mode", "idle")]),
            Some(3500.0)
        );
        assert_eq!(
            e.value("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")]),
            Some(12.25)
        );
        let gc = e.family("go_gc_duration_seconds").unwrap();
        assert_eq!(gc.kind, "summary");
        assert_eq!(gc.samples.len(), 4);
        assert!(e
            .value("go_gc_duration_seconds", &[("quantile", "1")])
            .unwrap()
            .is_nan());
        let h = e.family("http_duration").unwrap();
        assert_eq!(h.kind, "histogram");
        assert_eq!(h.samples.len(), 4);
        assert_eq!(
            e.value("http_duration_bucket", &[("le", "+Inf")]),
            Some(3.0)
        );
        let w = &e.family("weird").unwrap().samples[0];
        assert_eq!(w.label("path"), Some("C:\\dir\"x\"\nnext"));
        assert_eq!(w.value, f64::NEG_INFINITY);
        assert_eq!(w.timestamp, Some(1.7e12));
        let u = e.family("no_type_metric").unwrap();
        assert_eq!(u.kind, "untyped");
        assert_eq!(e.value("no_type_metric", &[]), Some(42.0));
        assert_eq!(
            e.family("pg_up").unwrap().help,
            "Whether the last scrape could connect.\nSecond line with \\ backslash."
        );
        assert!(!e.eof);
        assert_eq!(e.sample_count(), 13);
        assert_eq!(
            e.names(),
            vec![
                "go_gc_duration_seconds",
                "http_duration",
                "no_type_metric",
                "node_cpu_seconds_total",
                "pg_up",
                "weird"
            ]
        );
    }

    const OPENMETRICS: &str = r#"# TYPE node_cpu_seconds counter
# UNIT node_cpu_seconds seconds
# HELP node_cpu_seconds Seconds the CPUs spent in \"each\" mode.
node_cpu_seconds_total{cpu="0",mode="idle"} 3500.0
node_cpu_seconds_created{cpu="0",mode="idle"} 1.7e9
# TYPE thing unknown
thing 1
# TYPE node_exporter_build info
node_exporter_build_info{version="1.0"} 1
# TYPE foo histogram
foo_bucket{le="1.0"} 0 # {trace_id="abc"} 0.5 123.0
foo_bucket{le="+Inf"} 2
foo_count 2
foo_sum 3.5
# TYPE a_count gauge
a_count 5
# EOF
"#;

    #[test]
    fn parses_openmetrics() {
        let e = parse(OPENMETRICS);
        assert!(e.eof);
        let cpu = e.family("node_cpu_seconds").unwrap();
        assert_eq!(cpu.kind, "counter");
        assert_eq!(cpu.unit.as_deref(), Some("seconds"));
        assert_eq!(cpu.help, "Seconds the CPUs spent in \"each\" mode.");
        assert_eq!(cpu.samples.len(), 2);
        // The lookup by sample name finds the same family.
        assert_eq!(
            e.family("node_cpu_seconds_total").unwrap().name,
            "node_cpu_seconds"
        );
        assert_eq!(e.family("thing").unwrap().kind, "unknown");
        let info = e.family("node_exporter_build").unwrap();
        assert_eq!(info.kind, "info");
        assert_eq!(info.samples[0].name, "node_exporter_build_info");
        assert_eq!(e.family("foo").unwrap().samples.len(), 4);
        // A gauge whose name ends in _count stays its own family.
        assert_eq!(e.family("a_count").unwrap().kind, "gauge");
        assert_eq!(e.value("a_count", &[]), Some(5.0));
    }

    #[test]
    fn reports_errors_with_line_numbers() {
        let cases: &[(&str, usize)] = &[
            ("ok 1\nbad{ 1\n", 2),
            ("ok 1\n\nx{a=\"1\"}\n", 3),
            ("x{a=\"unterminated} 1\n", 1),
            ("x notanumber\n", 1),
            ("x 1 2 3\n", 1),
            ("# TYPE x gauge\n# TYPE x gauge\n", 2),
            ("# TYPE x wat\n", 1),
            ("# EOF\nx 1\n", 2),
            ("1x 3\n", 1),
            ("x{a=\"1\",a=\"2\"} 1\n", 1),
            ("x{a=\"1\" b=\"2\"} 1\n", 1),
            ("x 1 abc\n", 1),
            ("x{0a=\"1\"} 1\n", 1),
            ("x 1\n# TYPE x gauge\n", 2),
            ("ok 1\nx{a=\"\\q\"} 1\n", 2),
            ("# TYPE h histogram\nh_bucket{x=\"1\"} 1\n", 2),
            ("# TYPE h histogram\nh 1\n", 2),
            ("# TYPE s summary\ns{x=\"1\"} 1\n", 2),
        ];
        for (text, line) in cases {
            let err = try_parse(text).expect_err(text);
            assert_eq!(err.line, *line, "{text:?}: {err}");
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        let inputs = [
            "",
            "{",
            "}",
            "#",
            "# TYPE",
            "# HELP",
            "x{",
            "x{a",
            "x{a=",
            "x{a=\"",
            "x{a=\"\\",
            "x{a=\"b\"",
            "x{a=\"b\",",
            "x ",
            "x\t",
            "é 1",
            "x{é=\"1\"} 1",
            "x{a=\"é\"} é",
            "x 1 # {",
            "x 1 # {a=\"b\"}",
            "\u{0}",
            "x{a=\"b\"}} 1",
        ];
        for input in inputs {
            let _ = try_parse(input);
        }
    }

    #[test]
    fn go_float_syntax() {
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_float("NaN").unwrap().is_nan());
        assert_eq!(parse_float("1e-3"), Some(0.001));
        assert_eq!(parse_float("-1.5E+2"), Some(-150.0));
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("1_000"), Some(1000.0));
        assert_eq!(parse_float(""), None);
        assert_eq!(parse_float("0x10"), None);
        assert_eq!(parse_float("abc"), None);
    }

    #[test]
    fn values_with_spaces_and_empty_label_sets() {
        let e = parse("x{} 1\ny{a=\"b\",} 2\nz { a = \"c\" } 3\n");
        assert_eq!(e.value("x", &[]), Some(1.0));
        assert_eq!(e.value("y", &[("a", "b")]), Some(2.0));
        assert_eq!(e.value("z", &[("a", "c")]), Some(3.0));
    }

    #[test]
    fn converts_classic_families() {
        let fams = parse(CLASSIC).to_metric_families().unwrap();
        let names: Vec<&str> = fams.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "go_gc_duration_seconds",
                "http_duration",
                "no_type_metric",
                "node_cpu_seconds_total",
                "pg_up",
                "weird"
            ]
        );
        let gc = &fams[0];
        assert_eq!(gc.kind, MetricType::Summary);
        match &gc.metrics[0].value {
            Value::Summary {
                quantiles,
                sum,
                count,
            } => {
                assert_eq!(quantiles.len(), 2);
                assert_eq!(quantiles[0], (0.0, 1.2e-05));
                assert!(quantiles[1].1.is_nan());
                assert_eq!((*sum, *count), (0.5, 7));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fams[2].kind, MetricType::Untyped);
        let cpu = &fams[3];
        assert_eq!(cpu.kind, MetricType::Counter);
        assert_eq!(cpu.help, "Seconds the CPUs spent in each mode.");
        assert_eq!(
            cpu.metrics[1].labels,
            [
                (Cow::Borrowed("cpu"), "0".into()),
                (Cow::Borrowed("mode"), "user".into())
            ]
        );
        assert_eq!(cpu.metrics[1].value, Value::Single(12.25));
        assert!(parse(CLASSIC).has_timestamps());
        assert!(!parse("x 1\n").has_timestamps());
    }

    #[test]
    fn converts_openmetrics_names_to_classic_ones() {
        let fams = parse(OPENMETRICS).to_metric_families().unwrap();
        let by = |n: &str| fams.iter().find(|f| f.name == n).unwrap();
        // The counter's _created sample is dropped.
        assert_eq!(by("node_cpu_seconds_total").metrics.len(), 1);
        assert_eq!(by("node_exporter_build_info").kind, MetricType::Info);
        assert_eq!(by("thing").kind, MetricType::Untyped);
        assert_eq!(by("a_count").kind, MetricType::Gauge);
        assert_eq!(
            by("foo").metrics[0].value,
            Value::Histogram {
                buckets: vec![(1.0, 0), (f64::INFINITY, 2)],
                sum: 3.5,
                count: 2
            }
        );
    }

    #[test]
    fn histograms_group_by_labels_and_reject_bad_bounds() {
        let text = "# TYPE lat histogram\nlat_bucket{op=\"w\",le=\"+Inf\"} 4\nlat_bucket{op=\"r\",le=\"+Inf\"} 5\nlat_bucket{op=\"r\",le=\"0.1\"} 2\nlat_sum{op=\"r\"} 1.25\nlat_count{op=\"r\"} 5\n";
        let f = parse(text)
            .family("lat")
            .unwrap()
            .to_metric_family()
            .unwrap();
        assert_eq!(f.metrics.len(), 2);
        assert_eq!(f.metrics[0].labels, [(Cow::Borrowed("op"), "w".into())]);
        assert_eq!(
            f.metrics[1].value,
            Value::Histogram {
                buckets: vec![(0.1, 2), (f64::INFINITY, 5)],
                sum: 1.25,
                count: 5
            }
        );
        let bad = parse("# TYPE lat histogram\nlat_bucket{le=\"soon\"} 1\n");
        assert_eq!(
            bad.to_metric_families().unwrap_err(),
            ConvertError::BadBound {
                family: "lat".into(),
                sample: "lat_bucket".into(),
                label: "le"
            }
        );
        let gh = parse("# TYPE g gaugehistogram\ng_bucket{le=\"1\"} 1\ng_gcount 1\n# EOF\n");
        assert!(matches!(
            gh.to_metric_families(),
            Err(ConvertError::UnsupportedType { .. })
        ));
    }

    #[test]
    fn missing_labels_are_filled_with_empty_values() {
        let mut f = parse("y{a=\"1\"} 1\ny{b=\"2\"} 2\n")
            .family("y")
            .unwrap()
            .clone();
        f.fill_missing_labels();
        let m = f.to_metric_family().unwrap();
        assert_eq!(
            m.metrics[0].labels,
            [
                (Cow::Borrowed("a"), "1".into()),
                (Cow::Borrowed("b"), LabelValue::default())
            ]
        );
        assert_eq!(
            m.metrics[1].labels[0],
            (Cow::Borrowed("a"), LabelValue::default())
        );
    }

    #[test]
    fn missing_label_count_is_what_filling_adds() {
        let text = "# TYPE h histogram\nh_bucket{a=\"1\",le=\"1\"} 1\nh_bucket{b=\"2\",le=\"1\"} 1\nh_sum{a=\"1\"} 1\n";
        let mut f = parse(text).family("h").unwrap().clone();
        let before: usize = f.samples.iter().map(|s| s.labels.len()).sum();
        assert_eq!(f.missing_label_count(), 3, "le is not padded");
        f.fill_missing_labels();
        let after: usize = f.samples.iter().map(|s| s.labels.len()).sum();
        assert_eq!(after - before, 3);
        assert_eq!(f.missing_label_count(), 0);
        // n series with n different label names: n * (n - 1) to add.
        let text: String = (0..1000).map(|i| format!("y{{l{i}=\"x\"}} 1\n")).collect();
        assert_eq!(
            parse(&text).family("y").unwrap().missing_label_count(),
            999_000
        );
    }

    /// Assembling a histogram finds each sample's series through an index:
    /// 40,000 series took minutes with a scan per sample.
    #[test]
    fn many_histogram_series_assemble_in_linear_time() {
        let n = 40_000;
        let mut text = String::from("# TYPE h histogram\n");
        for i in 0..n {
            text.push_str(&format!(
                "h_bucket{{id=\"{i}\",le=\"1\"}} 1\nh_bucket{{id=\"{i}\",le=\"+Inf\"}} 2\nh_sum{{id=\"{i}\"}} 3\nh_count{{id=\"{i}\"}} 2\n"
            ));
        }
        let f = parse(&text).family("h").unwrap().clone();
        let started = std::time::Instant::now();
        let m = f.to_metric_family().unwrap();
        let took = started.elapsed();
        assert_eq!(m.metrics.len(), n);
        assert_eq!(m.metrics[n - 1].labels[0].1, (n - 1).to_string());
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }

    /// A tiny deterministic PRNG (xorshift64*): no dependency, and every
    /// failure is reproducible from its seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Bytes that matter to the grammar, plus a multi-byte character and
    /// an invalid UTF-8 byte (made lossy before parsing).
    const ALPHABET: &[u8] = b"{}\",=# \t\n\\_:.+-eE019aIfNnlqTYPEHELPUNITOF\xc3\xa9\xff";

    fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
        let mut v = base.to_vec();
        for _ in 0..1 + rng.below(30) {
            if v.is_empty() {
                v.push(b'#');
            }
            let at = rng.below(v.len());
            match rng.below(6) {
                0 => v[at] = ALPHABET[rng.below(ALPHABET.len())],
                1 => {
                    v.remove(at);
                }
                2 => v.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                3 => {
                    let len = rng.below(120).min(v.len() - at);
                    let chunk = v[at..at + len].to_vec();
                    let to = rng.below(v.len());
                    v.splice(to..to, chunk);
                }
                4 => {
                    let end = (at + rng.below(200)).min(v.len());
                    v.drain(at..end);
                }
                _ => v.truncate(at),
            }
        }
        v
    }

    #[test]
    fn randomized_mutations_never_panic() {
        let bases = [CLASSIC.as_bytes(), OPENMETRICS.as_bytes()];
        let (mut parsed, mut rejected) = (0, 0);
        for seed in 1..=4000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let base = bases[rng.below(bases.len())];
            let bytes = mutate(&mut rng, base);
            let text = String::from_utf8_lossy(&bytes);
            let outcome = std::panic::catch_unwind(|| {
                let e = try_parse(&text)?;
                // Conversion must not panic either; it may refuse.
                let _ = e.to_metric_families();
                Ok::<_, ParseError>(e)
            });
            match outcome {
                Err(_) => panic!("seed {seed} panicked on {text:?}"),
                Ok(Err(e)) => {
                    rejected += 1;
                    let lines = text.lines().count().max(1);
                    assert!(e.line >= 1 && e.line <= lines, "seed {seed}: {e}");
                }
                Ok(Ok(e)) => {
                    parsed += 1;
                    // Nothing is invented: every sample came from a line.
                    assert!(e.sample_count() <= text.lines().count(), "seed {seed}");
                    for name in e.sample_names() {
                        assert!(valid_name(name), "seed {seed}: {name:?}");
                    }
                }
            }
        }
        // The mutations exercise both outcomes.
        assert!(
            parsed > 100 && rejected > 100,
            "{parsed} parsed, {rejected} rejected"
        );
    }
}

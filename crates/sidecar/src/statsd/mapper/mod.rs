//! statsd_exporter's mapping file (`--statsd.mapping-config`): which StatsD
//! names become which Prometheus names and labels.
//!
//! ```yaml
//! defaults:
//!   observer_type: histogram        # or summary (the default); timer_type is the old name
//!   histogram_options: {buckets: [0.01, 0.1, 1]}
//!   summary_options: {quantiles: [{quantile: 0.99, error: 0.001}], max_age: 10m, age_buckets: 5, buf_cap: 500}
//!   match_type: glob                # or regex
//!   glob_disable_ordering: false
//!   ttl: 0                          # idle series expiry, 0 = never
//! mappings:
//! - match: "model.inference.*"      # glob: * is one dot-separated field
//!   name: "model_inference_duration_seconds"
//!   labels: {model: "$1"}           # $1 or ${1}
//!   observer_type: histogram
//!   histogram_options: {buckets: [0.005, 0.05, 0.5, 5]}
//!   match_metric_type: observer     # counter, gauge, observer (timer)
//!   help: "Inference time."
//!   honor_labels: false             # true: a tag wins over a mapping label
//!   scale: 1                        # multiplies every value
//!   ttl: 1m
//!   action: map                     # or drop
//! ```
//!
//! Matching follows statsd_exporter: glob mappings are tried first (see
//! [`fsm`]: with ordering, the earliest matching mapping wins), then regex
//! mappings in file order, each searched anywhere in the name, their
//! `$1`/`${name}` references expanded from the regex groups. Regexes use Go
//! syntax; `\d`, `\w`, `\s`, `\b` keep Go's ASCII meaning and `\Q…\E` is
//! supported. Defaults fill what a mapping leaves out, in statsd_exporter's
//! order (legacy `buckets`/`quantiles` included). Unknown keys are ignored,
//! as there, with a warning.
//!
//! Errors name the file, the line when it can be found, and the key.
//! Beyond statsd_exporter's checks, settings it would only fail on when the
//! first sample arrives (buckets not increasing, a quantile outside 0..1, a
//! negative `max_age` or `ttl`) are rejected at load.

mod cache;
mod fsm;
mod template;

pub use cache::{Cache, CacheType};

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use regex::Regex;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use self::fsm::Fsm;
use self::template::Template;
use super::gosyntax::parse_duration;
use crate::store::SummaryConfig;

/// Prometheus' default histogram buckets.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A StatsD sample's type as mappings see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `c`
    Counter,
    /// `g`
    Gauge,
    /// `ms`, `h`, `d`
    Observer,
}

impl MetricType {
    /// The name used in `match_metric_type` and in self-metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Observer => "observer",
        }
    }
}

/// What happens to a matched sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Record it under the mapped name.
    Map,
    /// Discard it.
    Drop,
}

/// Where observations of a name go, with their settings.
#[derive(Debug, Clone, PartialEq)]
pub enum ObserverSettings {
    /// A histogram with these buckets.
    Histogram(Arc<[f64]>),
    /// A summary.
    Summary(Arc<SummaryConfig>),
}

/// One loaded mapping.
#[derive(Debug)]
pub struct Mapping {
    /// The `match` text.
    pub pattern: String,
    /// Map or drop.
    pub action: Action,
    /// `help`, if given.
    pub help: Option<String>,
    /// Tags win over mapping labels of the same name.
    pub honor_labels: bool,
    /// Observations of matched timers, histograms and distributions.
    pub observer: ObserverSettings,
    /// Idle series expiry; `None` never.
    pub ttl: Option<Duration>,
    /// Multiplies every value.
    pub scale: Option<f64>,
    /// Only samples of this type match.
    pub match_metric_type: Option<MetricType>,
    matcher: Matcher,
}

#[derive(Debug)]
enum Matcher {
    Glob {
        name: Template,
        labels: Vec<(String, Template)>,
    },
    Regex {
        regex: Regex,
        name: String,
        labels: Vec<(String, String)>,
    },
}

/// A name that matched a mapping.
#[derive(Debug, PartialEq)]
pub struct Match {
    /// Index of the mapping in the file.
    pub mapping: usize,
    /// The expanded (not yet escaped) metric name.
    pub name: String,
    /// The expanded labels.
    pub labels: Vec<(String, String)>,
}

/// A loaded mapping file.
#[derive(Debug)]
pub struct Mapper {
    mappings: Vec<Mapping>,
    fsm: Option<Fsm>,
    has_regex: bool,
    unmapped_observer: ObserverSettings,
    unmapped_ttl: Option<Duration>,
}

/// A mapping file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("reading mapping config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not YAML of the expected shape (the message has line and column).
    #[error("mapping config {path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// What and where.
        message: String,
    },
    /// A value that is not allowed.
    #[error("mapping config {path}{}: {key}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: String,
        /// The 1-based line, when it could be found.
        line: Option<usize>,
        /// The key, as `mappings[3].match` or `defaults.histogram_options`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Mapper {
    /// The mapper without a file: every name is unmapped.
    pub fn empty() -> Self {
        Mapper {
            mappings: Vec::new(),
            fsm: None,
            has_regex: false,
            unmapped_observer: ObserverSettings::Summary(Arc::new(SummaryConfig::default())),
            unmapped_ttl: None,
        }
    }

    /// Loads a mapping file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Loads a mapping file's text; `path` names it in errors.
    pub fn from_yaml(text: &str, path: &str) -> Result<Self, ConfigError> {
        let raw: Option<RawConfig> =
            serde_yaml::from_str(text).map_err(|e| ConfigError::Syntax {
                path: path.to_string(),
                message: e.to_string(),
            })?;
        Loader { text, path }.build(raw.unwrap_or_default())
    }

    /// The number of mappings.
    pub fn len(&self) -> usize {
        self.mappings.len()
    }

    /// Whether there is no mapping.
    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }

    /// Mapping number `i`.
    pub fn mapping(&self, i: usize) -> &Mapping {
        &self.mappings[i]
    }

    /// Observer settings for names no mapping matches.
    pub fn unmapped_observer(&self) -> &ObserverSettings {
        &self.unmapped_observer
    }

    /// Expiry for names no mapping matches (`defaults.ttl`).
    pub fn unmapped_ttl(&self) -> Option<Duration> {
        self.unmapped_ttl
    }

    /// The mapping `name` of type `kind` matches, with its expanded name and
    /// labels.
    pub fn lookup(&self, name: &str, kind: MetricType) -> Option<Match> {
        if let Some(fsm) = &self.fsm {
            if let Some((i, captures)) = fsm.lookup(name, kind) {
                let Matcher::Glob {
                    name: name_template,
                    labels,
                } = &self.mappings[i].matcher
                else {
                    unreachable!("the state machine holds glob mappings only")
                };
                return Some(Match {
                    mapping: i,
                    name: name_template.expand(&captures),
                    labels: labels
                        .iter()
                        .map(|(k, t)| (k.clone(), t.expand(&captures)))
                        .collect(),
                });
            }
            if !self.has_regex {
                return None;
            }
        }
        for (i, m) in self.mappings.iter().enumerate() {
            let Matcher::Regex {
                regex,
                name: name_template,
                labels,
            } = &m.matcher
            else {
                continue;
            };
            let Some(caps) = regex.captures(name) else {
                continue;
            };
            if m.match_metric_type.is_some_and(|t| t != kind) {
                continue;
            }
            let mut expanded = String::new();
            caps.expand(name_template, &mut expanded);
            let labels = labels
                .iter()
                .map(|(k, t)| {
                    let mut v = String::new();
                    caps.expand(t, &mut v);
                    (k.clone(), v)
                })
                .collect();
            return Some(Match {
                mapping: i,
                name: expanded,
                labels,
            });
        }
        None
    }
}

// ---- The file's shape -------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    defaults: Option<RawDefaults>,
    mappings: Option<Vec<RawMapping>>,
}

#[derive(Debug, Default, Deserialize)]
struct RawDefaults {
    observer_type: Option<ObserverType>,
    timer_type: Option<ObserverType>,
    buckets: Option<Vec<f64>>,
    quantiles: Option<Vec<RawObjective>>,
    match_type: Option<MatchType>,
    glob_disable_ordering: Option<bool>,
    ttl: Option<GoDuration>,
    summary_options: Option<RawSummaryOptions>,
    histogram_options: Option<RawHistogramOptions>,
}

#[derive(Debug, Default, Deserialize)]
struct RawMapping {
    #[serde(rename = "match")]
    pattern: Option<Text>,
    name: Option<Text>,
    labels: Option<BTreeMap<String, Text>>,
    honor_labels: Option<bool>,
    observer_type: Option<ObserverType>,
    timer_type: Option<ObserverType>,
    buckets: Option<Vec<f64>>,
    quantiles: Option<Vec<RawObjective>>,
    match_type: Option<MatchType>,
    help: Option<Text>,
    action: Option<ActionName>,
    match_metric_type: Option<MetricTypeName>,
    ttl: Option<GoDuration>,
    summary_options: Option<RawSummaryOptions>,
    histogram_options: Option<RawHistogramOptions>,
    scale: Option<f64>,
}

const TOP_KEYS: &[&str] = &["defaults", "mappings"];
const DEFAULTS_KEYS: &[&str] = &[
    "observer_type",
    "timer_type",
    "buckets",
    "quantiles",
    "match_type",
    "glob_disable_ordering",
    "ttl",
    "summary_options",
    "histogram_options",
];
const MAPPING_KEYS: &[&str] = &[
    "match",
    "name",
    "labels",
    "honor_labels",
    "observer_type",
    "timer_type",
    "buckets",
    "quantiles",
    "match_type",
    "help",
    "action",
    "match_metric_type",
    "ttl",
    "summary_options",
    "histogram_options",
    "scale",
];

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct RawObjective {
    #[serde(default)]
    quantile: f64,
    #[serde(default)]
    error: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawSummaryOptions {
    quantiles: Option<Vec<RawObjective>>,
    max_age: Option<GoDuration>,
    age_buckets: Option<u32>,
    buf_cap: Option<u32>,
}

/// `histogram_options`; statsd_exporter's native-histogram settings are
/// accepted and ignored (classic buckets only).
#[derive(Debug, Clone, Default, Deserialize)]
struct RawHistogramOptions {
    buckets: Option<Vec<f64>>,
}

/// A scalar read as text, as Go's YAML library reads any scalar into a
/// string (`code: 200` is `"200"`).
#[derive(Debug, Clone, Default)]
struct Text(String);

/// Reads a scalar as text and hands it to `check`, inside the visitor so
/// that an error carries the scalar's position.
struct ScalarVisitor<F>(F);

impl<T, F: FnOnce(String) -> Result<T, String>> Visitor<'_> for ScalarVisitor<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v.to_string()).map_err(E::custom)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        (self.0)(v.to_string()).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        (self.0)(v.to_string()).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.0)(v.to_string()).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        (self.0)(v.to_string()).map_err(E::custom)
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        (self.0)(String::new()).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(|s| Ok(Text(s))))
    }
}

/// A duration: Go syntax (`1m30s`) or an integer of nanoseconds, as Go's
/// YAML library reads `time.Duration`.
#[derive(Debug, Clone, Copy, Default)]
struct GoDuration(i64);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s or 1m30s")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDuration, E> {
                parse_duration(v).map(GoDuration).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GoDuration, E> {
                Ok(GoDuration(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GoDuration, E> {
                i64::try_from(v)
                    .map(GoDuration)
                    .map_err(|_| E::custom("duration out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<GoDuration, E> {
                Ok(GoDuration(v as i64))
            }
        }
        d.deserialize_any(V)
    }
}

/// Defines a YAML enum of fixed words with statsd_exporter's error text.
macro_rules! yaml_words {
    ($name:ident, $what:literal, { $($word:literal => $value:expr),* $(,)? }) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(ScalarVisitor(|s: String| match s.as_str() {
                    $($word => Ok($value),)*
                    _ => Err(format!(concat!("invalid ", $what, " '{}'"), s)),
                }))
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObserverType {
    Histogram,
    Summary,
}
yaml_words!(ObserverType, "observer type", {
    "histogram" => ObserverType::Histogram,
    "summary" => ObserverType::Summary,
    "" => ObserverType::Summary,
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchType {
    Glob,
    Regex,
}
yaml_words!(MatchType, "match type", {
    "glob" => MatchType::Glob,
    "" => MatchType::Glob,
    "regex" => MatchType::Regex,
});

#[derive(Debug, Clone, Copy)]
struct ActionName(Action);
yaml_words!(ActionName, "action type", {
    "map" => ActionName(Action::Map),
    "" => ActionName(Action::Map),
    "drop" => ActionName(Action::Drop),
});

#[derive(Debug, Clone, Copy)]
struct MetricTypeName(MetricType);
yaml_words!(MetricTypeName, "metric type", {
    "counter" => MetricTypeName(MetricType::Counter),
    "gauge" => MetricTypeName(MetricType::Gauge),
    "observer" => MetricTypeName(MetricType::Observer),
    "timer" => MetricTypeName(MetricType::Observer),
});

// ---- Validation and defaults ------------------------------------------

fn glob_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(\*|[a-zA-Z_](-?[a-zA-Z0-9_])*)(\.\*|\.[a-zA-Z0-9_](-?[a-zA-Z0-9_])*)*$")
            .expect("valid regex")
    })
}

fn name_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^([a-zA-Z_]|\$\{?[0-9]+\}?)([a-zA-Z0-9_]|\$\{?[0-9]+\}?)*$")
            .expect("valid regex")
    })
}

fn label_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-zA-Z_][a-zA-Z0-9_]+$").expect("valid regex"))
}

/// The defaults after statsd_exporter's filling.
struct Defaults {
    observer: Option<ObserverType>,
    buckets: Vec<f64>,
    quantiles: Vec<(f64, f64)>,
    max_age: i64,
    age_buckets: u32,
    buf_cap: u32,
    match_type: MatchType,
    ordering_disabled: bool,
    ttl: i64,
}

fn objectives(raw: &[RawObjective]) -> Vec<(f64, f64)> {
    raw.iter().map(|o| (o.quantile, o.error)).collect()
}

fn non_empty<T: Clone>(v: &Option<Vec<T>>) -> Option<Vec<T>> {
    v.as_ref().filter(|v| !v.is_empty()).cloned()
}

struct Loader<'a> {
    text: &'a str,
    path: &'a str,
}

impl Loader<'_> {
    fn invalid(&self, line: Option<usize>, key: String, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_string(),
            line,
            key,
            message,
        }
    }

    fn mapping_error(&self, index: usize, key: &str, message: String) -> ConfigError {
        let line = locate(self.text, "mappings", Some(index), Some(key))
            .or_else(|| locate(self.text, "mappings", Some(index), None));
        self.invalid(line, format!("mappings[{index}].{key}"), message)
    }

    fn defaults_error(&self, key: &str, message: String) -> ConfigError {
        let line = locate(self.text, "defaults", None, Some(key));
        self.invalid(line, format!("defaults.{key}"), message)
    }

    /// Warns about keys statsd_exporter would silently ignore.
    fn warn_unknown_keys(&self) {
        let Ok(serde_yaml::Value::Mapping(top)) = serde_yaml::from_str(self.text) else {
            return;
        };
        let warn = |value: &serde_yaml::Value, known: &[&str], section: &str| {
            let serde_yaml::Value::Mapping(map) = value else {
                return;
            };
            for key in map.keys().filter_map(serde_yaml::Value::as_str) {
                if !known.contains(&key) {
                    tracing::warn!(file = self.path, key = %format!("{section}{key}"), "ignoring unknown key in mapping config");
                }
            }
        };
        warn(&serde_yaml::Value::Mapping(top.clone()), TOP_KEYS, "");
        if let Some(d) = top.get("defaults") {
            warn(d, DEFAULTS_KEYS, "defaults.");
        }
        if let Some(serde_yaml::Value::Sequence(items)) = top.get("mappings") {
            for (i, item) in items.iter().enumerate() {
                warn(item, MAPPING_KEYS, &format!("mappings[{i}]."));
            }
        }
    }

    fn defaults(&self, raw: RawDefaults) -> Result<Defaults, ConfigError> {
        let summary = raw.summary_options.unwrap_or_default();
        let histogram = raw.histogram_options.unwrap_or_default();
        // Legacy top-level quantiles and buckets replace the whole options
        // block when the block has none.
        let (quantiles, summary) = match (non_empty(&summary.quantiles), non_empty(&raw.quantiles))
        {
            (Some(q), _) => (q, summary),
            (None, Some(q)) => (q, RawSummaryOptions::default()),
            (None, None) => (Vec::new(), summary),
        };
        let buckets = non_empty(&histogram.buckets)
            .or_else(|| non_empty(&raw.buckets))
            .unwrap_or_else(|| DEFAULT_BUCKETS.to_vec());
        let quantiles = if quantiles.is_empty() {
            crate::store::DEFAULT_OBJECTIVES.to_vec()
        } else {
            objectives(&quantiles)
        };
        let d = Defaults {
            observer: raw.observer_type.or(raw.timer_type),
            buckets,
            quantiles,
            max_age: summary.max_age.unwrap_or_default().0,
            age_buckets: summary.age_buckets.unwrap_or(0),
            buf_cap: summary.buf_cap.unwrap_or(0),
            match_type: raw.match_type.unwrap_or(MatchType::Glob),
            ordering_disabled: raw.glob_disable_ordering.unwrap_or(false),
            ttl: raw.ttl.unwrap_or_default().0,
        };
        check_buckets(&d.buckets).map_err(|m| self.defaults_error("histogram_options", m))?;
        check_quantiles(&d.quantiles).map_err(|m| self.defaults_error("summary_options", m))?;
        if d.max_age < 0 {
            return Err(self.defaults_error("summary_options", "max_age is negative".into()));
        }
        if d.ttl < 0 {
            return Err(self.defaults_error("ttl", "ttl is negative".into()));
        }
        Ok(d)
    }

    fn build(&self, raw: RawConfig) -> Result<Mapper, ConfigError> {
        self.warn_unknown_keys();
        let d = self.defaults(raw.defaults.unwrap_or_default())?;
        let raws = raw.mappings.unwrap_or_default();
        let mut fsm = Fsm::new(d.ordering_disabled);
        let mut globs: Vec<String> = Vec::new();
        let mut has_regex = false;
        let mut mappings = Vec::with_capacity(raws.len());
        for (i, m) in raws.into_iter().enumerate() {
            let err = |key: &str, message: String| self.mapping_error(i, key, message);
            let labels: Vec<(String, String)> = m
                .labels
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            if let Some((k, _)) = labels.iter().find(|(k, _)| !label_re().is_match(k)) {
                return Err(err("labels", format!("invalid label key: {k}")));
            }
            let name = m.name.unwrap_or_default().0;
            if name.is_empty() {
                return Err(err(
                    "name",
                    "metric mapping didn't set a metric name".into(),
                ));
            }
            if !name_re().is_match(&name) {
                return Err(err(
                    "name",
                    format!("metric name '{name}' is not a valid name or $n template"),
                ));
            }
            let pattern = m.pattern.unwrap_or_default().0;
            let match_metric_type = m.match_metric_type.map(|t| t.0);
            let matcher = match m.match_type.unwrap_or(d.match_type) {
                MatchType::Glob => {
                    if !glob_re().is_match(&pattern) {
                        return Err(err("match", format!("invalid match: {pattern}")));
                    }
                    let captures = fsm.add(&pattern, match_metric_type, i);
                    globs.push(pattern.clone());
                    Matcher::Glob {
                        name: Template::new(&name, captures),
                        labels: labels
                            .into_iter()
                            .map(|(k, v)| (k, Template::new(&v, captures)))
                            .collect(),
                    }
                }
                MatchType::Regex => {
                    let regex = Regex::new(&go_regex(&pattern)).map_err(|e| {
                        err("match", format!("invalid regex {pattern} in mapping: {e}"))
                    })?;
                    has_regex = true;
                    Matcher::Regex {
                        regex,
                        name,
                        labels,
                    }
                }
            };
            let observer_type = m.observer_type.or(m.timer_type).or(d.observer);
            if m.quantiles.is_some()
                && m.summary_options
                    .as_ref()
                    .is_some_and(|s| s.quantiles.is_some())
            {
                return Err(err(
                    "quantiles",
                    format!("cannot use quantiles in both the top level and summary options at the same time in {pattern}"),
                ));
            }
            if m.buckets.is_some()
                && m.histogram_options
                    .as_ref()
                    .is_some_and(|h| h.buckets.is_some())
            {
                return Err(err(
                    "buckets",
                    format!("cannot use buckets in both the top level and histogram options at the same time in {pattern}"),
                ));
            }
            let observer = match observer_type {
                Some(ObserverType::Histogram) => {
                    if m.summary_options.is_some() {
                        return Err(err(
                            "summary_options",
                            "cannot use histogram observer and summary options at the same time"
                                .into(),
                        ));
                    }
                    let buckets = non_empty(&m.buckets)
                        .or_else(|| {
                            m.histogram_options
                                .as_ref()
                                .and_then(|h| non_empty(&h.buckets))
                        })
                        .unwrap_or_else(|| d.buckets.clone());
                    check_buckets(&buckets).map_err(|e| err("histogram_options", e))?;
                    ObserverSettings::Histogram(buckets.into())
                }
                Some(ObserverType::Summary) => {
                    if m.histogram_options.is_some() {
                        return Err(err(
                            "histogram_options",
                            "cannot use summary observer and histogram options at the same time"
                                .into(),
                        ));
                    }
                    let o = m.summary_options.clone().unwrap_or_default();
                    let quantiles = non_empty(&m.quantiles)
                        .or_else(|| non_empty(&o.quantiles))
                        .map(|q| objectives(&q))
                        .unwrap_or_else(|| d.quantiles.clone());
                    let max_age = match o.max_age.map(|a| a.0).unwrap_or(0) {
                        0 => d.max_age,
                        a => a,
                    };
                    let age_buckets = match o.age_buckets.unwrap_or(0) {
                        0 => d.age_buckets,
                        a => a,
                    };
                    let buf_cap = match o.buf_cap.unwrap_or(0) {
                        0 => d.buf_cap,
                        b => b,
                    };
                    self.summary(&quantiles, max_age, age_buckets, buf_cap)
                        .map_err(|e| err("summary_options", e))?
                }
                None => {
                    // Neither the mapping nor the defaults chose: a summary
                    // with the mapping's own options as given.
                    let o = m.summary_options.clone().unwrap_or_default();
                    let quantiles = non_empty(&o.quantiles)
                        .map(|q| objectives(&q))
                        .unwrap_or_else(|| d.quantiles.clone());
                    self.summary(
                        &quantiles,
                        o.max_age.unwrap_or_default().0,
                        o.age_buckets.unwrap_or(0),
                        o.buf_cap.unwrap_or(0),
                    )
                    .map_err(|e| err("summary_options", e))?
                }
            };
            let ttl = match m.ttl.map(|t| t.0).unwrap_or(0) {
                0 => d.ttl,
                t if t < 0 => return Err(err("ttl", "ttl is negative".into())),
                t => t,
            };
            mappings.push(Mapping {
                pattern,
                action: m.action.map_or(Action::Map, |a| a.0),
                help: m.help.map(|h| h.0).filter(|h| !h.is_empty()),
                honor_labels: m.honor_labels.unwrap_or(false),
                observer,
                ttl: (ttl > 0).then(|| Duration::from_nanos(ttl as u64)),
                scale: m.scale,
                match_metric_type,
                matcher,
            });
        }
        let fsm = (!globs.is_empty()).then(|| {
            let patterns: Vec<&str> = globs.iter().map(String::as_str).collect();
            fsm.set_backtracking(&patterns);
            fsm
        });
        let unmapped_observer = match d.observer {
            Some(ObserverType::Histogram) => ObserverSettings::Histogram(d.buckets.clone().into()),
            _ => ObserverSettings::Summary(Arc::new(SummaryConfig::new(
                &d.quantiles,
                Duration::ZERO,
                0,
                0,
            ))),
        };
        Ok(Mapper {
            mappings,
            fsm,
            has_regex,
            unmapped_observer,
            unmapped_ttl: (d.ttl > 0).then(|| Duration::from_nanos(d.ttl as u64)),
        })
    }

    fn summary(
        &self,
        quantiles: &[(f64, f64)],
        max_age: i64,
        age_buckets: u32,
        buf_cap: u32,
    ) -> Result<ObserverSettings, String> {
        check_quantiles(quantiles)?;
        if max_age < 0 {
            return Err("max_age is negative".into());
        }
        Ok(ObserverSettings::Summary(Arc::new(SummaryConfig::new(
            quantiles,
            Duration::from_nanos(max_age as u64),
            age_buckets,
            buf_cap,
        ))))
    }
}

fn check_buckets(buckets: &[f64]) -> Result<(), String> {
    if buckets.iter().any(|b| b.is_nan()) {
        return Err("a bucket is NaN".into());
    }
    if buckets.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("buckets must be in increasing order: {buckets:?}"));
    }
    Ok(())
}

fn check_quantiles(quantiles: &[(f64, f64)]) -> Result<(), String> {
    match quantiles
        .iter()
        .find(|(q, e)| !(0.0..=1.0).contains(q) || e.is_nan() || *e < 0.0)
    {
        Some((q, e)) => Err(format!(
            "quantile {q} with error {e}: quantiles must be within 0..1, errors not negative"
        )),
        None => Ok(()),
    }
}

/// Translates a Go regular expression into the `regex` crate's syntax:
/// Perl classes and word boundaries keep Go's ASCII meaning, `\Q…\E`
/// quotes literally.
fn go_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    // After `[` or `[^`, a `]` is a literal member.
    let mut class_start = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let replacement = match (e, in_class) {
                    ('d', false) => Some("[0-9]"),
                    ('D', false) => Some("[^0-9]"),
                    ('w', false) => Some("[0-9A-Za-z_]"),
                    ('W', false) => Some("[^0-9A-Za-z_]"),
                    ('s', false) => Some(r"[\t\n\f\r ]"),
                    ('S', false) => Some(r"[^\t\n\f\r ]"),
                    ('b', false) => Some(r"(?-u:\b)"),
                    ('B', false) => Some(r"(?-u:\B)"),
                    ('d', true) => Some("0-9"),
                    ('D', true) => Some("[:^digit:]"),
                    ('w', true) => Some("0-9A-Za-z_"),
                    ('W', true) => Some("[:^word:]"),
                    ('s', true) => Some(r"\t\n\f\r "),
                    ('S', true) => Some("[:^space:]"),
                    _ => None,
                };
                if e == 'Q' {
                    let mut literal = String::new();
                    while let Some(q) = chars.next() {
                        if q == '\\' && chars.peek() == Some(&'E') {
                            chars.next();
                            break;
                        }
                        literal.push(q);
                    }
                    out.push_str(&regex::escape(&literal));
                } else if let Some(r) = replacement {
                    out.push_str(r);
                } else {
                    out.push('\\');
                    out.push(e);
                }
                class_start = false;
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class like [:alpha:] inside a bracket.
                out.push('[');
                for p in chars.by_ref() {
                    out.push(p);
                    if p == ']' {
                        break;
                    }
                }
                class_start = false;
            }
            ']' if in_class && !class_start => {
                in_class = false;
                out.push(']');
            }
            _ => {
                class_start = false;
                out.push(c);
            }
        }
    }
    out
}

/// Finds the 1-based line of `section` (top level), of item `index` of its
/// block list, and of `key` within it, in block-style YAML. Best effort:
/// `None` when the layout is not the usual one.
fn locate(text: &str, section: &str, index: Option<usize>, key: Option<&str>) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let skip = |l: &str| {
        let t = l.trim_start();
        t.is_empty() || t.starts_with('#') || t == "---"
    };
    let header = format!("{section}:");
    let start = lines
        .iter()
        .position(|l| indent(l) == 0 && l.trim_end().starts_with(&header))?;
    // The section's lines end at the next top-level key.
    let end = (start + 1..lines.len())
        .find(|&i| !skip(lines[i]) && indent(lines[i]) == 0 && !lines[i].starts_with('-'))
        .unwrap_or(lines.len());
    let (mut from, mut to) = (start + 1, end);
    if let Some(index) = index {
        let items: Vec<usize> = (start + 1..end)
            .filter(|&i| lines[i].trim_start().starts_with('-'))
            .collect();
        let item_indent = indent(lines[*items.first()?]);
        let items: Vec<usize> = items
            .into_iter()
            .filter(|&i| indent(lines[i]) == item_indent)
            .collect();
        from = *items.get(index)?;
        to = items.get(index + 1).copied().unwrap_or(end);
        if key.is_none() {
            return Some(from + 1);
        }
    }
    let key = key?;
    let wanted = format!("{key}:");
    (from..to)
        .find(|&i| {
            let t = lines[i].trim_start();
            let t = t.strip_prefix('-').map_or(t, str::trim_start);
            t.starts_with(&wanted)
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests;

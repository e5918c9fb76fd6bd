//! What a parsed log line becomes: the HTTP request metrics the tap also
//! writes, a per-level message count, and the configured metrics, all into
//! the shared store. Compiled once from a [`LogsConfig`]; per line it
//! allocates nothing (labels are borrowed from the line and assembled in
//! fixed arrays on the stack).
//!
//! The built-in metrics of one read (up to 64 KiB of lines) are summed in a
//! [`Batch`] keyed by small integers and written to the store once per
//! series and read, which is most of what makes a line cheap. Durations are
//! summed per histogram bucket and written as one weighted observation of
//! their mean (kept within the bucket's smallest and largest value), so
//! bucket counts and `_count` are exact and `_sum` differs from adding one
//! by one only by rounding. Configured metrics go to the store line by
//! line.
//!
//! | metric | from |
//! |---|---|
//! | `http_requests_total{method,route,status}` | a line with method, path and status fields |
//! | `http_request_duration_seconds{method,route}` | the same line's `duration_ms` (or seconds) field; histogram |
//! | `app_log_messages_total{level}` | every parsed message; `level` lower-cased, `unknown` without one |
//! | `app_log_parse_errors_total{file}` | lines that are not in the format, or too long |
//! | `app_log_field_errors_total{metric}` | a value field that is not a number |
//! | configured counters, gauges, histograms | see [`MetricConfig`] |
//!
//! Methods other than the nine of RFC 9110/5789 become `other`, so do
//! statuses that are not three digits from 100 to 599, and level values
//! longer than 16 bytes or not alphanumeric; pino/bunyan numeric levels
//! (10 to 60) become their names.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;

use super::json::{Paths, Values};
use super::line::{Extractor, LineParser, Wrapper};
use super::{Error, Format, LogsConfig, MetricConfig, MetricKind};
use crate::route::{Routes, OTHER};
use crate::store::{ExemplarRef, Observer, Op, SeriesId, Writer};

/// HTTP requests counted from log lines.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// HTTP request durations from log lines.
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// Messages per level.
pub const MESSAGES: &str = "app_log_messages_total";
/// Lines that could not be parsed, per file.
pub const PARSE_ERRORS: &str = "app_log_parse_errors_total";
/// Value fields that are not numbers, per metric.
pub const FIELD_ERRORS: &str = "app_log_field_errors_total";

/// Most labels a configured metric may take from fields.
pub const MAX_LABELS: usize = 16;

/// Prometheus' default histogram buckets, the tap's too.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// A compiled line parser and the metrics its lines feed.
#[derive(Debug)]
pub struct Pipeline {
    /// Reads lines.
    pub parser: LineParser,
    /// Writes metrics.
    pub metrics: Metrics,
}

/// The metrics of parsed lines.
#[derive(Debug)]
pub struct Metrics {
    method: Option<usize>,
    path: Vec<usize>,
    status: Option<usize>,
    duration_ms: Vec<usize>,
    duration_seconds: Vec<usize>,
    level: Option<usize>,
    trace_id: Option<usize>,
    routes: Routes,
    buckets: Arc<[f64]>,
    custom: Vec<Custom>,
}

#[derive(Debug)]
struct Custom {
    name: Box<str>,
    help: Box<str>,
    kind: CustomKind,
    value: Option<usize>,
    scale: f64,
    labels: Vec<(Box<str>, usize)>,
    equals: Vec<(usize, Box<str>)>,
    matches: Vec<(usize, Regex)>,
}

#[derive(Debug)]
enum CustomKind {
    Counter,
    Gauge,
    Histogram(Arc<[f64]>),
}

/// Field names to slots.
#[derive(Default)]
struct Slots {
    names: Vec<String>,
    by_name: HashMap<String, usize>,
}

impl Slots {
    fn slot(&mut self, name: &str) -> usize {
        if let Some(&s) = self.by_name.get(name) {
            return s;
        }
        self.names.push(name.to_string());
        self.by_name.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    fn optional(&mut self, name: &str) -> Option<usize> {
        (!name.is_empty()).then(|| self.slot(name))
    }

    fn list(&mut self, names: &[String]) -> Vec<usize> {
        names
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| self.slot(n))
            .collect()
    }
}

fn invalid(what: impl Into<String>, message: impl ToString) -> Error {
    Error::Invalid {
        what: what.into(),
        message: message.to_string(),
    }
}

fn valid_metric_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !n.starts_with("__")
}

fn buckets(what: &str, b: &[f64]) -> Result<Arc<[f64]>, Error> {
    if b.is_empty() || b.iter().any(|x| !x.is_finite()) || b.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid(
            what,
            "buckets must be finite and strictly increasing, at least one",
        ));
    }
    Ok(Arc::from(b))
}

impl Pipeline {
    /// Compiles `config`, checking every name, regex and bucket list.
    pub fn compile(config: &LogsConfig) -> Result<Pipeline, Error> {
        let mut slots = Slots::default();
        let f = &config.fields;
        let mut metrics = Metrics {
            method: slots.optional(&f.method),
            path: slots.list(&f.path),
            status: slots.optional(&f.status),
            duration_ms: slots.list(&f.duration_ms),
            duration_seconds: slots.list(&f.duration_seconds),
            level: slots.optional(&f.level),
            trace_id: slots.optional(&f.trace_id),
            routes: Routes::new(&config.http.routes).map_err(|e| invalid("logs.http.routes", e))?,
            buckets: buckets("logs.http.buckets", &config.http.buckets)?,
            custom: Vec::new(),
        };
        if config.http.routes.len() > MAX_ROUTES {
            return Err(invalid(
                "logs.http.routes",
                format!("at most {MAX_ROUTES} patterns"),
            ));
        }
        // Fields named only by the built-in metrics may be absent from a
        // regex; fields of configured metrics must be there.
        let builtin_slots = slots.names.len();
        let reserved = [
            HTTP_REQUESTS,
            HTTP_DURATION,
            MESSAGES,
            PARSE_ERRORS,
            FIELD_ERRORS,
        ];
        for (i, m) in config.metrics.iter().enumerate() {
            let what = format!("logs.metrics[{i}] ({})", m.name);
            if reserved.contains(&m.name.as_str()) {
                return Err(invalid(what, "the name is one of the built-in log metrics"));
            }
            metrics.custom.push(compile_metric(&what, m, &mut slots)?);
        }

        if config.format == Format::Json && config.regex.is_some() {
            return Err(invalid(
                "logs.regex",
                "a regex needs format regex, cri or docker",
            ));
        }
        let regex = config
            .regex
            .as_deref()
            .map(|r| Regex::new(r).map_err(|e| invalid("logs.regex", e)))
            .transpose()?;
        let extractor = match (config.format, regex) {
            (Format::Regex, None) => {
                return Err(invalid("logs.regex", "the regex format needs a regex"))
            }
            (_, Some(re)) => {
                let names: Vec<&str> = re.capture_names().flatten().collect();
                if let Some(missing) = slots.names[builtin_slots..]
                    .iter()
                    .find(|n| !names.contains(&n.as_str()))
                {
                    return Err(invalid(
                        "logs.metrics",
                        format!("field {missing:?} is not a named group of logs.regex"),
                    ));
                }
                Extractor::regex(re, |name| slots.by_name.get(name).copied())
            }
            (_, None) => {
                let mut paths = Paths::default();
                for (slot, name) in slots.names.iter().enumerate() {
                    paths.add(name, slot);
                }
                Extractor::Json(paths)
            }
        };
        let wrapper = match config.format {
            Format::Json | Format::Regex => Wrapper::None,
            Format::Cri => Wrapper::Cri,
            Format::Docker => Wrapper::docker(),
        };
        if config.max_line_bytes == 0 {
            return Err(invalid("logs.max_line_bytes", "must be at least 1"));
        }
        Ok(Pipeline {
            parser: LineParser::new(wrapper, extractor, slots.names.len(), config.max_line_bytes),
            metrics,
        })
    }
}

fn compile_metric(what: &str, m: &MetricConfig, slots: &mut Slots) -> Result<Custom, Error> {
    if !valid_metric_name(&m.name) {
        return Err(invalid(what, "not a valid metric name"));
    }
    let kind = match m.kind {
        MetricKind::Counter => CustomKind::Counter,
        MetricKind::Gauge => CustomKind::Gauge,
        MetricKind::Histogram => CustomKind::Histogram(buckets(
            what,
            m.buckets.as_deref().unwrap_or(&DEFAULT_BUCKETS),
        )?),
    };
    if m.buckets.is_some() && !matches!(kind, CustomKind::Histogram(_)) {
        return Err(invalid(what, "buckets are for histograms"));
    }
    if m.value.is_none() && !matches!(kind, CustomKind::Counter) {
        return Err(invalid(what, "a gauge or histogram needs a value field"));
    }
    if !m.scale.is_finite() {
        return Err(invalid(what, "scale must be a finite number"));
    }
    if m.labels.len() > MAX_LABELS {
        return Err(invalid(what, format!("at most {MAX_LABELS} labels")));
    }
    let mut labels = Vec::with_capacity(m.labels.len());
    for (label, field) in &m.labels {
        if !valid_label_name(label) || (label == "le" && matches!(kind, CustomKind::Histogram(_))) {
            return Err(invalid(
                what,
                format!("{label:?} is not a usable label name"),
            ));
        }
        if field.is_empty() {
            return Err(invalid(what, format!("label {label:?} names no field")));
        }
        labels.push((label.as_str().into(), slots.slot(field)));
    }
    let mut matches = Vec::with_capacity(m.match_regex.len());
    for (field, re) in &m.match_regex {
        let re = Regex::new(&format!("^(?:{re})$"))
            .map_err(|e| invalid(format!("{what} match_regex.{field}"), e))?;
        matches.push((slots.slot(field), re));
    }
    Ok(Custom {
        name: m.name.as_str().into(),
        help: m.help.as_str().into(),
        kind,
        value: m.value.as_deref().map(|v| slots.slot(v)),
        scale: m.scale,
        labels,
        equals: m
            .match_equal
            .iter()
            .map(|(field, v)| (slots.slot(field), v.as_str().into()))
            .collect(),
        matches,
    })
}

/// The fields of one parsed message.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    /// The message the values were taken from.
    pub message: &'a str,
    /// The values.
    pub values: &'a Values,
}

impl<'a> Fields<'a> {
    fn get(&self, slot: Option<usize>) -> Option<&'a str> {
        self.values.get(self.message, slot?)
    }

    fn first(&self, slots: &[usize]) -> Option<&'a str> {
        slots.iter().find_map(|&s| self.values.get(self.message, s))
    }
}

/// Counts one line of `file` that could not be used.
pub fn count_parse_error(w: &mut Writer<'_>, file: &str) {
    let _ = w.update(
        &SeriesId {
            name: PARSE_ERRORS,
            help: "Log lines that could not be parsed (not in the configured format, or too long), by file.",
            labels: &[("file", file)],
            ttl: None,
        },
        Op::CounterAdd(1.0),
    );
}

fn count_field_error(w: &mut Writer<'_>, metric: &str) {
    let _ = w.update(
        &SeriesId {
            name: FIELD_ERRORS,
            help: "Log lines whose value field for a metric is not a number, by metric.",
            labels: &[("metric", metric)],
            ttl: None,
        },
        Op::CounterAdd(1.0),
    );
}

/// Most route patterns (route indexes are packed in 16 bits).
pub const MAX_ROUTES: usize = 1000;

/// Batched series beyond this many are forgotten after a flush, so a
/// stream of distinct statuses or levels cannot grow the batch for good.
const MAX_BATCH_KEYS: usize = 4096;

/// The built-in metrics of a batch of lines, summed before they reach the
/// store.
#[derive(Debug, Default)]
pub struct Batch {
    messages: Vec<(Level, u64)>,
    /// Packed (method, route, status) to count.
    requests: HashMap<u32, u64, BuildHasherDefault<PackedHasher>>,
    /// Packed (method, route) to per-bucket sums.
    durations: HashMap<u32, Box<[BucketSum]>, BuildHasherDefault<PackedHasher>>,
}

/// A level label, copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    bytes: [u8; 16],
    len: u8,
}

impl Level {
    fn new(s: &str) -> Level {
        let mut bytes = [0; 16];
        let len = s.len().min(16);
        bytes[..len].copy_from_slice(&s.as_bytes()[..len]);
        Level {
            bytes,
            len: len as u8,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or(OTHER)
    }
}

/// Observations of one histogram bucket in a batch.
#[derive(Debug, Clone, Copy, Default)]
struct BucketSum {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    trace_id: TraceId,
    /// The duration of the line `trace_id` came from.
    traced: f64,
}

/// The last trace id seen, copied when it fits in 64 bytes (a longer one
/// is no valid exemplar and clears it).
#[derive(Debug, Clone, Copy)]
struct TraceId {
    bytes: [u8; 64],
    len: u8,
}

impl Default for TraceId {
    fn default() -> Self {
        TraceId {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl TraceId {
    fn set(&mut self, id: &str) {
        match self.bytes.get_mut(..id.len()) {
            Some(to) => {
                to.copy_from_slice(id.as_bytes());
                self.len = id.len() as u8;
            }
            None => self.len = 0,
        }
    }

    /// The trace id, if it can be an exemplar.
    fn exemplar(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)])
            .ok()
            .filter(|t| exemplar_trace_id(t))
    }
}

/// A `Hasher` for packed integer keys: one multiply, high bits folded in.
#[derive(Default)]
pub struct PackedHasher(u64);

impl Hasher for PackedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u32(u32::from(*b) ^ (self.0 as u32));
        }
    }
    fn write_u32(&mut self, n: u32) {
        let x = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 29);
    }
}

/// Method index (9: other) | route index + 1 (0: other) << 4 | status
/// (0: other) << 20.
fn pack(method: usize, route: Option<usize>, status: u16) -> u32 {
    method as u32 | (route.map_or(0, |r| r as u32 + 1) << 4) | (u32::from(status) << 20)
}

fn unpack(key: u32) -> (usize, Option<usize>, u16) {
    let route = (key >> 4) & 0xffff;
    (
        (key & 0xf) as usize,
        route.checked_sub(1).map(|r| r as usize),
        (key >> 20) as u16,
    )
}

impl Metrics {
    /// Adds what one parsed message means: the built-in metrics to
    /// `batch`, configured metrics to `w`.
    pub fn record(&self, fields: Fields<'_>, batch: &mut Batch, w: &mut Writer<'_>) {
        let mut level_buf = [0u8; 16];
        let level = Level::new(level_label(fields.get(self.level), &mut level_buf));
        match batch.messages.iter_mut().find(|(l, _)| *l == level) {
            Some((_, n)) => *n += 1,
            None => batch.messages.push((level, 1)),
        }
        self.record_request(fields, batch, w);
        for m in &self.custom {
            m.record(fields, w);
        }
    }

    fn record_request(&self, fields: Fields<'_>, batch: &mut Batch, w: &mut Writer<'_>) {
        let (Some(method), Some(path), Some(status)) = (
            fields.get(self.method),
            fields.first(&self.path),
            fields.get(self.status),
        ) else {
            return;
        };
        let method = method_index(method);
        let route = self.routes.index(path);
        *batch
            .requests
            .entry(pack(method, route, status_code(status)))
            .or_default() += 1;
        let seconds = match (
            fields.first(&self.duration_ms),
            fields.first(&self.duration_seconds),
        ) {
            (Some(ms), _) => number(ms).map(|v| v / 1000.0),
            (None, Some(s)) => number(s),
            (None, None) => return,
        };
        let Some(seconds) = seconds.filter(|s| *s >= 0.0) else {
            count_field_error(w, HTTP_DURATION);
            return;
        };
        let buckets = batch
            .durations
            .entry(pack(method, route, 0))
            .or_insert_with(|| vec![BucketSum::default(); self.buckets.len() + 1].into());
        let b = &mut buckets[self.buckets.partition_point(|x| *x < seconds)];
        if b.count == 0 {
            b.min = seconds;
            b.max = seconds;
        } else {
            b.min = b.min.min(seconds);
            b.max = b.max.max(seconds);
        }
        b.count += 1;
        b.sum += seconds;
        // Copied as is; checked once per bucket when the batch is written.
        if let Some(id) = fields.get(self.trace_id) {
            b.trace_id.set(id);
            b.traced = seconds;
        }
    }

    /// Writes `batch` to the store and empties it.
    pub fn flush(&self, batch: &mut Batch, w: &mut Writer<'_>) {
        for (level, n) in batch.messages.iter_mut().filter(|(_, n)| *n > 0) {
            let _ = w.update(
                &SeriesId {
                    name: MESSAGES,
                    help: "Log messages read, by level.",
                    labels: &[("level", level.as_str())],
                    ttl: None,
                },
                Op::CounterAdd(std::mem::take(n) as f64),
            );
        }
        if batch.messages.len() > 64 {
            batch.messages.clear();
        }
        let mut status_buf = [0u8; 3];
        for (key, n) in batch.requests.iter_mut().filter(|(_, n)| **n > 0) {
            let (method, route, status) = unpack(*key);
            let _ = w.update(
                &SeriesId {
                    name: HTTP_REQUESTS,
                    help: "HTTP requests, from the application's log.",
                    labels: &[
                        ("method", method_name(method)),
                        ("route", self.routes.label(route)),
                        ("status", status_text(status, &mut status_buf)),
                    ],
                    ttl: None,
                },
                Op::CounterAdd(std::mem::take(n) as f64),
            );
        }
        if batch.requests.len() > MAX_BATCH_KEYS {
            batch.requests.clear();
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        for (key, buckets) in batch.durations.iter_mut() {
            let (method, route, _) = unpack(*key);
            let labels = [
                ("method", method_name(method)),
                ("route", self.routes.label(route)),
            ];
            for b in buckets.iter_mut().filter(|b| b.count > 0) {
                let observe = |w: &mut Writer<'_>, seconds, weight, exemplar| {
                    observe_durations(w, &labels, seconds, weight, &self.buckets, exemplar)
                };
                match b.trace_id.exemplar() {
                    // The traced line is observed on its own so that the
                    // exemplar's value is its duration; the others as
                    // their mean.
                    Some(trace_id) => {
                        if b.count > 1 {
                            let rest = (b.sum - b.traced) / (b.count - 1) as f64;
                            observe(w, rest.clamp(b.min, b.max), b.count - 1, None);
                        }
                        let exemplar = ExemplarRef {
                            labels: &[("trace_id", trace_id)],
                            timestamp: now,
                        };
                        observe(w, b.traced, 1, Some(exemplar));
                    }
                    None => {
                        let mean = (b.sum / b.count as f64).clamp(b.min, b.max);
                        observe(w, mean, b.count, None);
                    }
                }
                *b = BucketSum::default();
            }
        }
        // Each entry holds a bucket array; keep only what typical route
        // sets need.
        if batch.durations.len() > MAX_BATCH_KEYS / 16 {
            batch.durations.clear();
        }
    }
}

/// Records `weight` request durations of mean `seconds`, all in one
/// bucket, with the bucket's `exemplar` (`{trace_id="…"}`) if any.
fn observe_durations(
    w: &mut Writer<'_>,
    labels: &[(&str, &str)],
    seconds: f64,
    weight: u64,
    buckets: &Arc<[f64]>,
    exemplar: Option<ExemplarRef<'_>>,
) {
    let id = SeriesId {
        name: HTTP_DURATION,
        help: "HTTP request durations in seconds, from the application's log.",
        labels,
        ttl: None,
    };
    let op = Op::Observe {
        value: seconds,
        weight,
        observer: Observer::Histogram(buckets),
    };
    // Rejections are counted by the store.
    let _ = match exemplar {
        Some(e) => w.update_with_exemplar(&id, op, e),
        None => w.update(&id, op),
    };
}

/// Whether `id` can be an exemplar's `trace_id`: OpenMetrics caps an
/// exemplar's label set at 128 characters, and trace ids are hex or
/// base64url-ish tokens.
pub fn exemplar_trace_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Custom {
    fn record(&self, fields: Fields<'_>, w: &mut Writer<'_>) {
        if !self
            .equals
            .iter()
            .all(|(s, v)| fields.get(Some(*s)) == Some(&**v))
        {
            return;
        }
        if !self
            .matches
            .iter()
            .all(|(s, re)| fields.get(Some(*s)).is_some_and(|v| re.is_match(v)))
        {
            return;
        }
        let value = match self.value {
            None => 1.0,
            Some(slot) => match fields.get(Some(slot)).and_then(number) {
                Some(v) => v * self.scale,
                None => {
                    count_field_error(w, &self.name);
                    return;
                }
            },
        };
        let mut labels: [(&str, &str); MAX_LABELS] = [("", ""); MAX_LABELS];
        for (i, (label, slot)) in self.labels.iter().enumerate() {
            labels[i] = (label, fields.get(Some(*slot)).unwrap_or(""));
        }
        let id = SeriesId {
            name: &self.name,
            help: &self.help,
            labels: &labels[..self.labels.len()],
            ttl: None,
        };
        let op = match &self.kind {
            CustomKind::Counter if value >= 0.0 => Op::CounterAdd(value),
            CustomKind::Counter => {
                count_field_error(w, &self.name);
                return;
            }
            CustomKind::Gauge => Op::GaugeSet(value),
            CustomKind::Histogram(b) => Op::Observe {
                value,
                weight: 1,
                observer: Observer::Histogram(b),
            },
        };
        let _ = w.update(&id, op);
    }
}

/// A finite number written as JSON or text would write it (a quoted number
/// is accepted).
fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Index into [`METHODS`]; `METHODS.len()` for any other method.
fn method_index(m: &str) -> usize {
    METHODS
        .iter()
        .position(|k| k.eq_ignore_ascii_case(m))
        .unwrap_or(METHODS.len())
}

fn method_name(i: usize) -> &'static str {
    METHODS.get(i).copied().unwrap_or(OTHER)
}

/// A status from 100 to 599, or 0 for anything else.
fn status_code(s: &str) -> u16 {
    match s.as_bytes() {
        [a @ b'1'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => 0,
    }
}

fn status_text(code: u16, buf: &mut [u8; 3]) -> &str {
    if code == 0 {
        return OTHER;
    }
    *buf = [
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ];
    std::str::from_utf8(buf).unwrap_or(OTHER)
}

fn level_label<'b>(raw: Option<&str>, buf: &'b mut [u8; 16]) -> &'b str {
    let Some(raw) = raw else {
        return "unknown";
    };
    let named = match raw {
        "10" => Some("trace"),
        "20" => Some("debug"),
        "30" => Some("info"),
        "40" => Some("warn"),
        "50" => Some("error"),
        "60" => Some("fatal"),
        _ => None,
    };
    if let Some(n) = named {
        return n;
    }
    if raw.is_empty() || raw.len() > buf.len() || !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return OTHER;
    }
    let out = &mut buf[..raw.len()];
    out.copy_from_slice(raw.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).unwrap_or(OTHER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        let mut buf = [0u8; 16];
        assert_eq!(level_label(Some("INFO"), &mut buf), "info");
        assert_eq!(level_label(Some("Warning"), &mut buf), "warning");
        assert_eq!(level_label(Some("50"), &mut buf), "error");
        assert_eq!(level_label(Some("a b"), &mut buf), "other");
        assert_eq!(level_label(Some("xxxxxxxxxxxxxxxxx"), &mut buf), "other");
        assert_eq!(level_label(None, &mut buf), "unknown");
        assert_eq!(method_name(method_index("get")), "GET");
        assert_eq!(method_name(method_index("BREW")), "other");
        let mut buf = [0u8; 3];
        assert_eq!(status_text(status_code("404"), &mut buf), "404");
        assert_eq!(status_text(status_code("600"), &mut buf), "other");
        assert_eq!(status_text(status_code("20"), &mut buf), "other");
        assert_eq!(status_text(status_code("2000"), &mut buf), "other");
        for (m, r, s) in [(0, None, 0), (9, Some(999), 599), (3, Some(0), 100)] {
            assert_eq!(unpack(pack(m, r, s)), (m, r, s));
        }
        assert!(exemplar_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(!exemplar_trace_id("a\"b"));
        assert!(!exemplar_trace_id(""));
        assert_eq!(number(" 12.5 "), Some(12.5));
        assert_eq!(number("NaN"), None);
        assert_eq!(number("inf"), None);
    }
}

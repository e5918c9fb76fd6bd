//! The log-tailing source: follows the application's log files (globs)
//! through rotation and truncation, reads each line as JSON or with a
//! regex (unwrapping Kubernetes CRI and Docker json-file lines first) and
//! turns it into the same `http_*` metrics as the tap,
//! `app_log_messages_total{level}` and configured counters, gauges and
//! histograms, all in the shared store. Malformed lines are counted in
//! `app_log_parse_errors_total{file}` and skipped.
//!
//! One thread per source reads the files (never the runtime's threads):
//! it waits on inotify (see [`watch`]) and reads what was written, so a
//! line is counted within about [`COALESCE`]; every `poll_interval` it also reads
//! every file and expands the globs again. How files are followed, and
//! what happens on rotation and truncation, is in [`tail`]; line formats in
//! [`line`] and [`json`]; what a line becomes in [`pipeline`]; route
//! patterns in [`crate::route`]; globs in [`glob`].
//!
//! ## Flags
//!
//! | flag | default | |
//! |---|---|---|
//! | `--logs.path` | none (off) | a glob of files to follow; repeatable |
//! | `--logs.format` | `json` | `json`, `regex`, `cri`, `docker` |
//! | `--logs.regex` | none | named groups are the fields; required by `regex`; with `cri`/`docker` it reads the unwrapped messages (JSON otherwise) |
//! | `--logs.from-beginning` | off | read files present at start from their beginning, not their end |
//! | `--logs.route` | none | a route pattern (`/users/{id}`); repeatable; unmatched paths are `other` |
//!
//! ## Config file section
//!
//! ```yaml
//! logs:
//!   paths: ["/var/log/app/*.log"]      # globs; at least one
//!   format: json                       # json | regex | cri | docker
//!   regex: '^(?P<method>\S+) (?P<path>\S+) (?P<status>\d+) (?P<duration_ms>[\d.]+)$'
//!   from_beginning: false
//!   max_line_bytes: 65536              # longer lines: a parse error, skipped
//!   poll_interval: 1s                  # full re-read and glob expansion (250ms at most without inotify)
//!   rotate_wait: 5s                    # a rotated file is still read this long
//!   fields:                            # field names (dotted paths into JSON; group names for a regex); "" turns one off
//!     method: method
//!     path: [path, endpoint]           # the first present wins
//!     status: status
//!     duration_ms: [duration_ms]       # milliseconds
//!     duration_seconds: []             # seconds, for example [duration, latency]
//!     level: level
//!     trace_id: trace_id               # exemplar of the duration observation
//!   http:
//!     routes: ["/users/{id}", "/v1/models/{model}/predict", "/static/*"]
//!     buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
//!   metrics:
//!     - name: app_auth_failures_total
//!       type: counter                  # counter | gauge | histogram
//!       help: Failed logins.
//!       match: {event: login_failed}   # every field equal
//!       match_regex: {user: "svc-.*"}  # every field fully matching
//!       labels: {reason: reason}       # label: field (missing field: empty value)
//!     - name: model_inference_duration_seconds
//!       type: histogram
//!       value: metadata.inference_ms   # a counter without value adds 1
//!       scale: 0.001
//!       buckets: [0.01, 0.05, 0.1, 0.5, 1]
//!       labels: {model: metadata.model}
//! ```
//!
//! A line counts toward `http_requests_total` when it has a method, a path
//! and a status; its duration, when present, goes to
//! `http_request_duration_seconds`. Every parsed message counts in
//! `app_log_messages_total{level}`, so that family's sum plus the parse
//! errors is the number of non-empty lines read.

pub mod glob;
pub mod json;
pub mod line;
pub mod pipeline;
pub mod tail;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer};

use self::pipeline::{Pipeline, DEFAULT_BUCKETS};
use self::tail::{Pattern, Tailer};
use self::watch::{Wake, Waker, Watcher};
use crate::store::Store;

/// How lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Json,
    /// Matched by `regex`; named groups are the fields.
    Regex,
    /// Kubernetes CRI lines around JSON (or `regex`) messages.
    Cri,
    /// Docker json-file lines around JSON (or `regex`) messages.
    Docker,
}

/// A configured metric's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// Adds the value (1 without one) for each matching line.
    Counter,
    /// Set to the value of the last matching line.
    Gauge,
    /// Observes the value of each matching line.
    Histogram,
}

/// A metric taken from log fields.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// Metric name, as exposed (a counter keeps the name given).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: MetricKind,
    /// Help text.
    #[serde(default)]
    pub help: String,
    /// The field holding the value; required for gauges and histograms.
    #[serde(default)]
    pub value: Option<String>,
    /// Factor applied to the value (0.001 for milliseconds to seconds).
    #[serde(default = "one")]
    pub scale: f64,
    /// Label name to the field its value comes from.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Only lines whose fields equal these values.
    #[serde(default, rename = "match")]
    pub match_equal: BTreeMap<String, String>,
    /// Only lines whose fields fully match these regexes.
    #[serde(default)]
    pub match_regex: BTreeMap<String, String>,
    /// Histogram buckets (default: Prometheus' defaults).
    #[serde(default)]
    pub buckets: Option<Vec<f64>>,
}

fn one() -> f64 {
    1.0
}

/// Which fields hold what.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldNames {
    /// HTTP method.
    pub method: String,
    /// Request path; the first present wins.
    #[serde(deserialize_with = "one_or_many")]
    pub path: Vec<String>,
    /// HTTP status.
    pub status: String,
    /// Duration in milliseconds; the first present wins.
    #[serde(deserialize_with = "one_or_many")]
    pub duration_ms: Vec<String>,
    /// Duration in seconds, used when no millisecond field is present.
    #[serde(deserialize_with = "one_or_many")]
    pub duration_seconds: Vec<String>,
    /// Log level.
    pub level: String,
    /// Trace id, kept as the duration's exemplar.
    pub trace_id: String,
}

impl Default for FieldNames {
    fn default() -> Self {
        FieldNames {
            method: "method".into(),
            path: vec!["path".into(), "endpoint".into()],
            status: "status".into(),
            duration_ms: vec!["duration_ms".into()],
            duration_seconds: Vec::new(),
            level: "level".into(),
            trace_id: "trace_id".into(),
        }
    }
}

/// The HTTP request metrics' settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Route patterns, in match order.
    pub routes: Vec<String>,
    /// Duration histogram buckets.
    pub buckets: Vec<f64>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            routes: Vec::new(),
            buckets: DEFAULT_BUCKETS.to_vec(),
        }
    }
}

/// The `logs` section of the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// Globs of the files to follow.
    pub paths: Vec<String>,
    /// Line format.
    #[serde(default)]
    pub format: Format,
    /// Regex with named groups (format `regex`; optional for `cri` and
    /// `docker`).
    #[serde(default)]
    pub regex: Option<String>,
    /// Read files present at start from their beginning.
    #[serde(default)]
    pub from_beginning: bool,
    /// Longest line; longer ones are counted as parse errors and skipped.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Full re-read and glob expansion interval.
    #[serde(default = "default_poll_interval", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// How long a file that left its path is still read.
    #[serde(default = "default_rotate_wait", deserialize_with = "duration")]
    pub rotate_wait: Duration,
    /// Field names.
    #[serde(default)]
    pub fields: FieldNames,
    /// HTTP request metrics.
    #[serde(default)]
    pub http: HttpConfig,
    /// Metrics from fields.
    #[serde(default)]
    pub metrics: Vec<MetricConfig>,
}

/// Default longest line: 64 KiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

fn default_max_line_bytes() -> usize {
    DEFAULT_MAX_LINE_BYTES
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_rotate_wait() -> Duration {
    Duration::from_secs(5)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    oxmon_core::parse_duration(&s).map_err(serde::de::Error::custom)
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl LogsConfig {
    /// A section following `paths` with every other setting at its
    /// default.
    pub fn new(paths: Vec<String>) -> LogsConfig {
        LogsConfig {
            paths,
            format: Format::Json,
            regex: None,
            from_beginning: false,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            poll_interval: default_poll_interval(),
            rotate_wait: default_rotate_wait(),
            fields: FieldNames::default(),
            http: HttpConfig::default(),
            metrics: Vec::new(),
        }
    }
}

/// The log-tailing flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogsArgs {
    /// A glob of log files to follow (repeatable); files that appear later
    /// are picked up. Log tailing is off without one.
    #[arg(id = "logs.path", long = "logs.path")]
    pub paths: Vec<String>,

    /// How log lines are written: json, regex, cri (Kubernetes) or docker
    /// (json-file); cri and docker lines are unwrapped and their messages
    /// read as JSON, or with --logs.regex when given.
    #[arg(
        id = "logs.format",
        long = "logs.format",
        value_enum,
        default_value = "json"
    )]
    pub format: Format,

    /// A regex whose named groups (method, path, status, duration_ms,
    /// level, ...) are the fields of a line (Go/RE2 syntax).
    #[arg(id = "logs.regex", long = "logs.regex")]
    pub regex: Option<String>,

    /// Read log files present at start from their beginning instead of
    /// their end.
    #[arg(id = "logs.from-beginning", long = "logs.from-beginning")]
    pub from_beginning: bool,

    /// A route pattern for the route label, such as /users/{id}
    /// (repeatable, tried in order); paths matching none are "other".
    #[arg(id = "logs.route", long = "logs.route")]
    pub routes: Vec<String>,
}

impl LogsArgs {
    /// The section these flags describe; `None` without a path.
    pub fn section(&self) -> Option<LogsConfig> {
        if self.paths.is_empty() {
            return None;
        }
        let mut c = LogsConfig::new(self.paths.clone());
        c.format = self.format;
        c.regex = self.regex.clone();
        c.from_beginning = self.from_beginning;
        c.http.routes = self.routes.clone();
        Some(c)
    }
}

/// Why the log source could not start or take a new section.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is unusable.
    #[error("{what}: {message}")]
    Invalid {
        /// The setting (`logs.regex`, `logs.metrics[2] (name)`).
        what: String,
        /// Why.
        message: String,
    },
    /// The thread or its wait could not be set up.
    #[error("logs: cannot start the tailer: {0}")]
    Start(#[source] std::io::Error),
    /// The tailer thread is gone.
    #[error("logs: the tailer has stopped")]
    Stopped,
}

/// A validated section, ready for the tailer thread.
struct Compiled {
    patterns: Vec<Pattern>,
    pipeline: Pipeline,
    format: Format,
    from_beginning: bool,
    rotate_wait: Duration,
    poll_interval: Duration,
}

fn compile(section: &LogsConfig) -> Result<Compiled, Error> {
    if section.paths.is_empty() {
        return Err(Error::Invalid {
            what: "logs.paths".into(),
            message: "at least one path is needed".into(),
        });
    }
    let mut patterns = Vec::with_capacity(section.paths.len());
    for p in &section.paths {
        let glob = glob::Glob::new(p).map_err(|e| Error::Invalid {
            what: format!("logs.paths {p:?}"),
            message: e.to_string(),
        })?;
        patterns.push(Pattern::new(p.clone(), glob));
    }
    if section.poll_interval.is_zero() {
        return Err(Error::Invalid {
            what: "logs.poll_interval".into(),
            message: "must be more than 0".into(),
        });
    }
    Ok(Compiled {
        patterns,
        pipeline: Pipeline::compile(section)?,
        format: section.format,
        from_beginning: section.from_beginning,
        rotate_wait: section.rotate_wait,
        poll_interval: section.poll_interval,
    })
}

enum Command {
    Reconfigure(Box<Compiled>),
    Stop,
}

/// A running log source.
#[derive(Debug)]
pub struct Handle {
    commands: Sender<Command>,
    waker: Waker,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Reconfigure(_) => "Reconfigure",
            Command::Stop => "Stop",
        })
    }
}

impl Handle {
    /// Validates `section` and hands it to the tailer: files already
    /// followed keep their position; globs that are new read their
    /// present files from the end (or beginning, per the section); files
    /// no glob matches any more are finished like rotated ones. An invalid
    /// section is refused and the old one stays.
    pub fn reconfigure(&self, section: &LogsConfig) -> Result<(), Error> {
        let compiled = compile(section)?;
        self.commands
            .send(Command::Reconfigure(Box::new(compiled)))
            .map_err(|_| Error::Stopped)?;
        self.waker.wake();
        Ok(())
    }

    /// Stops the tailer thread; dropping the handle instead leaves it
    /// running for the life of the process.
    pub fn stop(self) {
        let _ = self.commands.send(Command::Stop);
        self.waker.wake();
    }
}

/// Checks `section` as [`start`] would, without starting anything.
pub fn validate(section: &LogsConfig) -> Result<(), Error> {
    compile(section).map(|_| ())
}

/// Starts following `section`'s files into `store` on a thread of its own.
pub fn start(section: &LogsConfig, store: Arc<Store>) -> Result<Handle, Error> {
    let compiled = compile(section)?;
    let watcher = Watcher::new().map_err(Error::Start)?;
    let waker = watcher.waker();
    let (commands, received) = channel();
    let tailer = Tailer::new(
        compiled.patterns,
        compiled.pipeline,
        store,
        compiled.from_beginning,
        compiled.rotate_wait,
    );
    let state = Thread {
        tailer,
        watcher,
        commands: received,
        format: compiled.format,
        poll_interval: compiled.poll_interval,
    };
    // The thread finds the files and positions them (at their end, unless
    // from_beginning) before this returns, so lines written after start
    // are counted; reading happens on the thread.
    let (positioned, wait) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("logs-tailer".into())
        .spawn(move || state.run(positioned))
        .map_err(Error::Start)?;
    if wait.recv_timeout(FIRST_SCAN_WAIT).is_err() {
        tracing::warn!("finding the log files takes long; continuing without waiting");
    }
    Ok(Handle { commands, waker })
}

/// The pause after each read pass, so an application writing line by line
/// wakes the reader at most 100 times a second, each time for everything
/// written meanwhile: the latency of a line, traded for CPU.
pub const COALESCE: Duration = Duration::from_millis(10);

/// How long [`start`] waits for the first expansion of the globs.
const FIRST_SCAN_WAIT: Duration = Duration::from_secs(10);

struct Thread {
    tailer: Tailer,
    watcher: Watcher,
    commands: Receiver<Command>,
    format: Format,
    poll_interval: Duration,
}

impl Thread {
    fn run(mut self, positioned: std::sync::mpsc::SyncSender<()>) {
        let dirs = self.tailer.rescan(&mut self.watcher, true);
        self.watcher.set_dirs(&dirs);
        let _ = positioned.send(());
        let mut wake = Wake::default();
        let mut poll = self.watcher.poll_interval(self.poll_interval);
        let mut next_full = Instant::now() + poll;
        // Read what the first scan found (from_beginning) at once.
        let mut more = true;
        loop {
            wake.clear();
            let timeout = if more {
                Duration::ZERO
            } else {
                next_full.saturating_duration_since(Instant::now())
            };
            self.watcher.wait(timeout, &mut wake);
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Reconfigure(c)) => {
                        let c = *c;
                        self.tailer.set_patterns(c.patterns);
                        self.tailer
                            .set_pipeline(c.pipeline, c.format != self.format);
                        self.tailer.from_beginning = c.from_beginning;
                        self.tailer.rotate_wait = c.rotate_wait;
                        self.format = c.format;
                        self.poll_interval = c.poll_interval;
                        poll = self.watcher.poll_interval(c.poll_interval);
                        wake.rescan = true;
                        tracing::info!("log tailing reconfigured");
                    }
                    Ok(Command::Stop) => {
                        self.tailer.close_all(&mut self.watcher);
                        return;
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            let now = Instant::now();
            let full = now >= next_full || wake.everything;
            more = if full || more {
                self.tailer.read(None)
            } else {
                self.tailer.read(Some(&wake.dirty))
            };
            self.tailer.follow_renames(&wake.renames, &mut self.watcher);
            if full || wake.rescan {
                let dirs = self.tailer.rescan(&mut self.watcher, false);
                self.watcher.set_dirs(&dirs);
            }
            if full {
                next_full = now + poll;
            }
            if !more {
                std::thread::sleep(COALESCE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        logs: LogsArgs,
    }

    #[test]
    fn flags_build_the_section() {
        assert!(Cli::parse_from(["x"]).logs.section().is_none());
        let cli = Cli::parse_from([
            "x",
            "--logs.path=/var/log/a/*.log",
            "--logs.path=/var/log/b.log",
            "--logs.format=cri",
            "--logs.regex=(?P<status>\\d+)",
            "--logs.from-beginning",
            "--logs.route=/users/{id}",
        ]);
        let s = cli.logs.section().unwrap();
        assert_eq!(s.paths, ["/var/log/a/*.log", "/var/log/b.log"]);
        assert_eq!(s.format, Format::Cri);
        assert_eq!(s.regex.as_deref(), Some("(?P<status>\\d+)"));
        assert!(s.from_beginning);
        assert_eq!(s.http.routes, ["/users/{id}"]);
        assert_eq!(s.fields, FieldNames::default());
        assert!(compile(&s).is_ok());
    }

    #[test]
    fn the_yaml_section_parses_with_defaults_and_rejects_unknown_keys() {
        let s: LogsConfig = serde_yaml::from_str(
            r#"
paths: ["/var/log/app/*.log"]
format: docker
poll_interval: 500ms
fields:
  path: url
  duration_seconds: [duration, latency]
  trace_id: ""
http:
  routes: ["/users/{id}"]
metrics:
  - name: app_auth_failures_total
    type: counter
    match: {event: login_failed}
    labels: {reason: reason}
  - name: model_inference_duration_seconds
    type: histogram
    value: metadata.inference_ms
    scale: 0.001
    buckets: [0.01, 0.1, 1]
"#,
        )
        .unwrap();
        assert_eq!(s.format, Format::Docker);
        assert_eq!(s.poll_interval, Duration::from_millis(500));
        assert_eq!(s.rotate_wait, Duration::from_secs(5));
        assert_eq!(s.max_line_bytes, DEFAULT_MAX_LINE_BYTES);
        assert_eq!(s.fields.path, ["url"]);
        assert_eq!(s.fields.method, "method");
        assert_eq!(s.fields.duration_seconds, ["duration", "latency"]);
        assert_eq!(s.http.buckets, DEFAULT_BUCKETS);
        assert_eq!(s.metrics[0].match_equal["event"], "login_failed");
        assert_eq!(s.metrics[1].scale, 0.001);
        assert!(compile(&s).is_ok());

        for bad in [
            "paths: [a]\nformat: xml\n",
            "paths: [a]\nunknown: 1\n",
            "paths: [a]\nfields: {verb: m}\n",
            "paths: [a]\nmetrics: [{name: x, type: counter, lables: {}}]\n",
            "paths: [a]\npoll_interval: soon\n",
        ] {
            assert!(serde_yaml::from_str::<LogsConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_sections_name_what_is_wrong() {
        let base = || LogsConfig::new(vec!["/tmp/*.log".into()]);
        let err = |c: LogsConfig| compile(&c).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(LogsConfig::new(vec![])).contains("logs.paths"));
        assert!(err(LogsConfig::new(vec!["/a/**/b".into()])).contains("/a/**/b"));
        let mut c = base();
        c.format = Format::Regex;
        assert!(err(c).contains("needs a regex"));
        let mut c = base();
        c.format = Format::Regex;
        c.regex = Some("(".into());
        assert!(err(c).starts_with("logs.regex"));
        let mut c = base();
        c.regex = Some("x".into());
        assert!(err(c).contains("format regex"));
        let mut c = base();
        c.http.routes = vec!["users".into()];
        assert!(err(c).contains("logs.http.routes"));
        let mut c = base();
        c.http.buckets = vec![1.0, 0.5];
        assert!(err(c).contains("logs.http.buckets"));
        let metric = |yaml: &str| -> MetricConfig { serde_yaml::from_str(yaml).unwrap() };
        for (yaml, message) in [
            ("{name: 1x, type: counter}", "not a valid metric name"),
            ("{name: x, type: gauge}", "needs a value field"),
            (
                "{name: x, type: counter, buckets: [1]}",
                "buckets are for histograms",
            ),
            (
                "{name: x, type: histogram, value: v, labels: {le: a}}",
                "\"le\"",
            ),
            ("{name: x, type: counter, labels: {__a: a}}", "\"__a\""),
            (
                "{name: x, type: counter, match_regex: {a: '('}}",
                "match_regex.a",
            ),
            ("{name: http_requests_total, type: counter}", "built-in"),
        ] {
            let mut c = base();
            c.metrics = vec![metric(yaml)];
            let e = err(c);
            assert!(
                e.contains(message) && e.contains("logs.metrics[0]"),
                "{yaml}: {e}"
            );
        }
        // A configured metric's field must be a group of the regex.
        let mut c = base();
        c.format = Format::Regex;
        c.regex = Some("(?P<status>\\d+)".into());
        c.metrics = vec![metric("{name: x, type: counter, labels: {user: user}}")];
        assert!(err(c).contains("\"user\" is not a named group"));
    }
}

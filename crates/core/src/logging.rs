//! Logging with `tracing`, written as logfmt (the Go exporters' default) or
//! JSON lines to stderr:
//!
//! ```text
//! time=2026-11-22T10:00:00.123Z level=info msg=listening address=[::]:9100 tls=false
//! ```
//!
//! Never log a secret: log targets through the exporters' redaction helpers.
//!
//! [`FailureLog`] keeps a failure that repeats every scrape from flooding
//! the log: it logs when a failure starts or changes, then only at debug
//! level, and logs the recovery.
//!
//! Every message and field value is cut to [`MAX_LOGGED_VALUE`] bytes in
//! the written line (with a note of how much was left out), so a hostile
//! `/probe?target=` or `/scrape?target=` of megabytes cannot make log lines
//! of megabytes, whichever code logs it.
//!
//! ```
//! use oxmon_core::logging::{FailureLog, FailureSubject};
//!
//! let log = FailureLog::new(FailureSubject::Target);
//! log.record("redis://cache:6379", Err("connection refused")); // warn
//! log.record("redis://cache:6379", Err("connection refused")); // debug
//! assert_eq!(log.failing(), 1);
//! log.record("redis://cache:6379", Ok(())); // info: recovered
//! assert_eq!(log.failing(), 0);
//! ```

use crate::hash::FastMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::flags::LogArgs;
use crate::sync::LockExt;

/// Installs the global subscriber. Safe to call more than once (later calls
/// do nothing).
pub fn init(args: &LogArgs) {
    let level = match args.level.as_str() {
        "debug" => Level::DEBUG,
        "warn" => Level::WARN,
        "error" => Level::ERROR,
        _ => Level::INFO,
    };
    let format = LineFormat {
        json: args.format == "json",
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(format)
        .try_init();
}

/// What a [`FailureLog`] tracks; sets the field that names it in each log
/// line and how loud a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureSubject {
    /// A collector of the registry (`collector=<name>`). A failure starts
    /// at error level: the exporter could not produce some of its metrics.
    Collector,
    /// A multi-target endpoint's target (`target=<address>`, which must
    /// already be redacted). A failure starts at warn level: the monitored
    /// service is down or refuses us, which its `up` metric reports.
    Target,
}

/// Failures remembered at most. Beyond this a new failure is logged at
/// debug only (after one warning that the log is full), so a flood of
/// distinct failing targets cannot flood the log; those targets' `up`
/// metrics still report them.
const MAX_REMEMBERED: usize = 1024;

/// The longest message or field value written to a log line, in bytes;
/// longer ones are cut at a character boundary and end with
/// `…[N more bytes]`.
pub const MAX_LOGGED_VALUE: usize = 512;

/// Logs failures keyed by name without repeating them every scrape.
///
/// A failure is logged (error for collectors, warn for targets) when it
/// starts or its message changes, then at debug while it repeats; the
/// first success after it is logged at info.
#[derive(Debug)]
pub struct FailureLog {
    subject: FailureSubject,
    last: Mutex<FastMap<String, String>>,
}

/// Whether a failure is news (logged at its subject's level) or a
/// repetition, or a failure the full log cannot remember (debug).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loudness {
    News,
    Quiet,
}

impl FailureLog {
    /// An empty log for one kind of subject.
    pub fn new(subject: FailureSubject) -> Self {
        FailureLog {
            subject,
            last: Mutex::new(FastMap::default()),
        }
    }

    /// Records the outcome of one attempt for `key`.
    pub fn record(&self, key: &str, outcome: Result<(), &str>) {
        match outcome {
            Ok(()) => self.succeeded(key),
            Err(err) => self.failed(key, err),
        }
    }

    /// Records a failure of `key`.
    pub fn failed(&self, key: &str, err: &str) {
        let mut last = self.last.lock_unpoisoned();
        let loudness = if last.get(key).is_some_and(|prev| prev == err) {
            Loudness::Quiet
        } else if last.len() < MAX_REMEMBERED || last.contains_key(key) {
            last.insert(key.to_string(), err.to_string());
            if last.len() == MAX_REMEMBERED {
                tracing::warn!(
                    remembered = MAX_REMEMBERED,
                    "many failing at once: further new failures are logged at debug level"
                );
            }
            Loudness::News
        } else {
            Loudness::Quiet
        };
        drop(last);
        match (self.subject, loudness) {
            (FailureSubject::Collector, Loudness::News) => {
                tracing::error!(collector = key, err, "collector failed")
            }
            (FailureSubject::Collector, Loudness::Quiet) => {
                tracing::debug!(collector = key, err, "collector still failing")
            }
            (FailureSubject::Target, Loudness::News) => {
                tracing::warn!(target = key, err, "target failed")
            }
            (FailureSubject::Target, Loudness::Quiet) => {
                tracing::debug!(target = key, err, "target still failing")
            }
        }
    }

    /// Records a success of `key`.
    pub fn succeeded(&self, key: &str) {
        if self.last.lock_unpoisoned().remove(key).is_some() {
            match self.subject {
                FailureSubject::Collector => tracing::info!(collector = key, "collector recovered"),
                FailureSubject::Target => tracing::info!(target = key, "target recovered"),
            }
        }
    }

    /// Forgets `key` without logging (a target dropped from a cache).
    pub fn forget(&self, key: &str) {
        self.last.lock_unpoisoned().remove(key);
    }

    /// How many keys are failing now.
    pub fn failing(&self) -> usize {
        self.last.lock_unpoisoned().len()
    }

    /// The last error remembered for `key`, if it is failing.
    pub fn last_error(&self, key: &str) -> Option<String> {
        self.last.lock_unpoisoned().get(key).cloned()
    }
}

struct LineFormat {
    json: bool,
}

#[derive(Default)]
struct Fields {
    msg: String,
    pairs: Vec<(&'static str, String)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: &str) {
        let value = clipped(value);
        if field.name() == "message" {
            self.msg = value;
        } else {
            self.pairs.push((field.name(), value));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, &format!("{value:?}"));
    }
}

/// `value` cut to [`MAX_LOGGED_VALUE`] bytes at a character boundary, with
/// a note of how many bytes were left out.
fn clipped(value: &str) -> String {
    if value.len() <= MAX_LOGGED_VALUE {
        return value.to_string();
    }
    let cut = (0..=MAX_LOGGED_VALUE)
        .rev()
        .find(|&i| value.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…[{} more bytes]", &value[..cut], value.len() - cut)
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            _ => "debug",
        };
        let time = rfc3339_now();
        let mut line = String::with_capacity(128);
        if self.json {
            line.push('{');
            let mut put = |k: &str, v: &str, first: bool| {
                if !first {
                    line.push(',');
                }
                json_string(k, &mut line);
                line.push(':');
                json_string(v, &mut line);
            };
            put("time", &time, true);
            put("level", level, false);
            put("msg", &fields.msg, false);
            for (k, v) in &fields.pairs {
                put(k, v, false);
            }
            line.push('}');
        } else {
            let _ = write!(line, "time={time} level={level} msg=");
            logfmt_value(&fields.msg, &mut line);
            for (k, v) in &fields.pairs {
                let _ = write!(line, " {k}=");
                logfmt_value(v, &mut line);
            }
        }
        writeln!(writer, "{line}")
    }
}

fn logfmt_value(v: &str, out: &mut String) {
    let needs_quotes = v.is_empty()
        || v.chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control());
    if !needs_quotes {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_string(v: &str, out: &mut String) {
    out.push_str(&serde_json::Value::String(v.to_string()).to_string());
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_millis())
}

fn rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_305_600, 5), "2026-11-22T00:00:00.005Z");
        assert_eq!(rfc3339(951_782_400 + 3661, 0), "2000-02-29T01:01:01.000Z");
    }

    #[test]
    fn failure_log_remembers_changes_and_recoveries() {
        let log = FailureLog::new(FailureSubject::Collector);
        log.failed("a", "no such file");
        log.failed("a", "no such file");
        log.failed("b", "timed out");
        assert_eq!(log.failing(), 2);
        log.failed("a", "permission denied");
        assert_eq!(log.last_error("a").as_deref(), Some("permission denied"));
        log.record("a", Ok(()));
        assert_eq!(log.last_error("a"), None);
        log.forget("b");
        assert_eq!(log.failing(), 0);
    }

    #[test]
    fn failure_log_is_bounded() {
        let log = FailureLog::new(FailureSubject::Target);
        for i in 0..MAX_REMEMBERED + 10 {
            log.failed(&format!("redis://h{i}:6379"), "refused");
        }
        assert_eq!(log.failing(), MAX_REMEMBERED);
        // A remembered key still updates when the map is full.
        log.failed("redis://h0:6379", "timeout");
        assert_eq!(
            log.last_error("redis://h0:6379").as_deref(),
            Some("timeout")
        );
    }

    /// The lines (info and above, logfmt) that `f` logs.
    fn logged_lines(f: impl FnOnce()) -> Vec<String> {
        use std::sync::Arc;
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock_unpoisoned().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::INFO)
            .with_writer(move || writer.clone())
            .event_format(LineFormat { json: false })
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.0.lock_unpoisoned().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn hostile_targets_are_clipped_and_repeats_are_quiet() {
        let hostile = format!("redis://{}:6379", "a".repeat(100_000));
        let lines = logged_lines(|| {
            let log = FailureLog::new(FailureSubject::Target);
            for _ in 0..20 {
                log.failed(&hostile, "connection refused");
                log.failed("redis://down:6379", "connection refused");
            }
            tracing::warn!(target = %hostile, "refused");
        });
        assert_eq!(lines.len(), 3, "{lines:?}");
        for l in &lines {
            assert!(l.len() < 2 * MAX_LOGGED_VALUE, "{} bytes", l.len());
        }
        assert!(lines[0].contains("more bytes]"), "{}", lines[0]);
    }

    #[test]
    fn long_values_are_clipped_at_a_character_boundary() {
        assert_eq!(clipped("short"), "short");
        let hostile = format!("redis://{}", "é".repeat(5000));
        let c = clipped(&hostile);
        assert!(c.len() <= MAX_LOGGED_VALUE + 32, "{}", c.len());
        assert!(c.starts_with("redis://éé"));
        assert!(c.ends_with(&format!("…[{} more bytes]", hostile.len() - 512)));
    }

    #[test]
    fn a_full_failure_log_logs_new_failures_quietly() {
        let log = FailureLog::new(FailureSubject::Target);
        for i in 0..MAX_REMEMBERED {
            log.failed(&format!("t{i}"), "refused");
        }
        assert_eq!(log.failing(), MAX_REMEMBERED);
        // Not remembered, and not news either.
        let lines = logged_lines(|| log.failed("one-too-many", "refused"));
        assert_eq!(log.last_error("one-too-many"), None);
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn logfmt_quoting() {
        let mut s = String::new();
        logfmt_value("plain", &mut s);
        s.push(' ');
        logfmt_value("has space \"q\"", &mut s);
        s.push(' ');
        logfmt_value("", &mut s);
        assert_eq!(s, "plain \"has space \\\"q\\\"\" \"\"");
    }
}

//! Logging with `tracing`, written as logfmt (the Go exporters' default) or
//! JSON lines to stderr:
//!
//! ```text
//! time=2026-11-22T10:00:00.123Z level=info msg=listening address=[::]:9100 tls=false
//! ```
//!
//! Never log a secret: log targets through the exporters' redaction helpers.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::flags::LogArgs;

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

struct LineFormat {
    json: bool,
}

#[derive(Default)]
struct Fields {
    msg: String,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.pairs.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.msg = text;
        } else {
            self.pairs.push((field.name(), text));
        }
    }
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

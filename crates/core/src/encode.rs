//! Encoding of [`MetricFamily`] snapshots into the classic text format
//! (0.0.4) or OpenMetrics 1.0, chosen from the request's `Accept` header.
//!
//! Why our own encoder: the Go exporters we replace expose `untyped` and
//! `summary` families and counters whose names do not end in `_total`
//! (postgres_exporter's `pg_stat_database_xact_commit`). `prometheus-client`
//! has no summary or untyped type, writes only OpenMetrics and appends
//! `_total` itself, which would rename series and break dashboards.
//!
//! Names are kept identical in both formats so a dashboard sees the same
//! series whichever format Prometheus negotiates:
//! - a counter named `x_total` becomes the OpenMetrics family `x` with
//!   sample `x_total`; a counter whose name lacks `_total` is written as
//!   `unknown` in OpenMetrics (OpenMetrics would force a `_total` suffix);
//! - an info family `x_info` becomes family `x` of type `info`; in 0.0.4 it
//!   is a gauge;
//! - untyped is `untyped` in 0.0.4 and `unknown` in OpenMetrics.
//!
//! Values use Go's shortest `%g` formatting (`1e+06`, `0.001`, `+Inf`), so
//! output matches the Go exporters byte for byte.
//!
//! ```
//! use oxmon_core::encode::{encode, Format};
//! use oxmon_core::MetricFamily;
//!
//! let mut f = MetricFamily::counter("demo_requests_total", "Requests.");
//! f.add(&[("code", "200")], 1500000.0);
//! let mut text = Vec::new();
//! encode(&[f.clone()], Format::Text, &mut text);
//! assert_eq!(String::from_utf8(text).unwrap(),
//!     "# HELP demo_requests_total Requests.\n# TYPE demo_requests_total counter\ndemo_requests_total{code=\"200\"} 1.5e+06\n");
//! let mut om = Vec::new();
//! encode(&[f], Format::OpenMetrics, &mut om);
//! assert_eq!(String::from_utf8(om).unwrap(),
//!     "# HELP demo_requests Requests.\n# TYPE demo_requests counter\ndemo_requests_total{code=\"200\"} 1.5e+06\n# EOF\n");
//! ```

use std::io::Write;

use crate::metrics::{Metric, MetricFamily, MetricType, Value};

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The classic Prometheus text format, version 0.0.4.
    Text,
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The exact `Content-Type` header value for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Chooses a format from an `Accept` header: OpenMetrics when it is
    /// accepted with a higher quality than plain text, else 0.0.4.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut best_om = -1.0f32;
        let mut best_text = -1.0f32;
        for part in accept.split(',') {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0f32;
            let mut version = None;
            for p in params {
                if let Some((k, v)) = p.split_once('=') {
                    match k.trim().to_ascii_lowercase().as_str() {
                        "q" => q = v.trim().parse().unwrap_or(0.0),
                        "version" => version = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
            }
            match media.as_str() {
                "application/openmetrics-text" => {
                    if matches!(version.as_deref(), None | Some("1.0.0") | Some("0.0.1")) {
                        best_om = best_om.max(q);
                    }
                }
                "text/plain" | "text/*" | "*/*" => {
                    if matches!(version.as_deref(), None | Some("0.0.4") | Some("1.0.0")) {
                        best_text = best_text.max(q);
                    }
                }
                _ => {}
            }
        }
        if best_om > 0.0 && best_om > best_text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// Encodes already normalized families (see [`crate::metrics::normalize`]).
pub fn encode(families: &[MetricFamily], format: Format, out: &mut Vec<u8>) {
    for f in families {
        match format {
            Format::Text => encode_text_family(f, out),
            Format::OpenMetrics => encode_om_family(f, out),
        }
    }
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
}

fn encode_text_family(f: &MetricFamily, out: &mut Vec<u8>) {
    let name = f.name.as_ref();
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    escape_help(&f.help, false, out);
    out.push(b'\n');
    let ty = match f.kind {
        MetricType::Gauge | MetricType::Info => "gauge",
        MetricType::Counter => "counter",
        MetricType::Untyped => "untyped",
        MetricType::Histogram => "histogram",
        MetricType::Summary => "summary",
    };
    let _ = writeln!(out, "# TYPE {name} {ty}");
    for m in &f.metrics {
        write_samples(name, m, out);
    }
}

fn encode_om_family(f: &MetricFamily, out: &mut Vec<u8>) {
    let name = f.name.as_ref();
    let (family, ty) = match f.kind {
        MetricType::Counter => match name.strip_suffix("_total") {
            Some(base) if !base.is_empty() => (base, "counter"),
            _ => (name, "unknown"),
        },
        MetricType::Info => match name.strip_suffix("_info") {
            Some(base) if !base.is_empty() => (base, "info"),
            _ => (name, "gauge"),
        },
        MetricType::Gauge => (name, "gauge"),
        MetricType::Untyped => (name, "unknown"),
        MetricType::Histogram => (name, "histogram"),
        MetricType::Summary => (name, "summary"),
    };
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(family.as_bytes());
    out.push(b' ');
    escape_help(&f.help, true, out);
    out.push(b'\n');
    let _ = writeln!(out, "# TYPE {family} {ty}");
    for m in &f.metrics {
        write_samples(name, m, out);
    }
}

fn write_samples(name: &str, m: &Metric, out: &mut Vec<u8>) {
    match &m.value {
        Value::Single(v) => write_sample(name, "", &m.labels, None, *v, out),
        Value::Histogram {
            buckets,
            sum,
            count,
        } => {
            let mut saw_inf = false;
            for (le, c) in buckets {
                saw_inf |= le.is_infinite() && *le > 0.0;
                write_sample(
                    name,
                    "_bucket",
                    &m.labels,
                    Some(("le", *le)),
                    *c as f64,
                    out,
                );
            }
            if !saw_inf {
                write_sample(
                    name,
                    "_bucket",
                    &m.labels,
                    Some(("le", f64::INFINITY)),
                    *count as f64,
                    out,
                );
            }
            write_sample(name, "_sum", &m.labels, None, *sum, out);
            write_sample(name, "_count", &m.labels, None, *count as f64, out);
        }
        Value::Summary {
            quantiles,
            sum,
            count,
        } => {
            for (q, v) in quantiles {
                write_sample(name, "", &m.labels, Some(("quantile", *q)), *v, out);
            }
            write_sample(name, "_sum", &m.labels, None, *sum, out);
            write_sample(name, "_count", &m.labels, None, *count as f64, out);
        }
    }
}

fn write_sample(
    name: &str,
    suffix: &str,
    labels: &[(crate::metrics::LabelName, String)],
    extra: Option<(&str, f64)>,
    value: f64,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    if !labels.is_empty() || extra.is_some() {
        out.push(b'{');
        let mut first = true;
        for (k, v) in labels {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"=\"");
            escape_label_value(v, out);
            out.push(b'"');
        }
        if let Some((k, v)) = extra {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"=\"");
            format_float(v, out);
            out.push(b'"');
        }
        out.push(b'}');
    }
    out.push(b' ');
    format_float(value, out);
    out.push(b'\n');
}

fn escape_help(help: &str, quote: bool, out: &mut Vec<u8>) {
    for b in help.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quote => out.extend_from_slice(b"\\\""),
            _ => out.push(b),
        }
    }
}

fn escape_label_value(v: &str, out: &mut Vec<u8>) {
    for b in v.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' => out.extend_from_slice(b"\\\""),
            _ => out.push(b),
        }
    }
}

/// Writes `v` the way Go's `strconv.FormatFloat(v, 'g', -1, 64)` does,
/// which is what the Go exporters' output shows: shortest round-trip
/// digits, exponent form when the decimal exponent is below -4 or at least 6
/// (`123456`, `1e+06`, `1.234567e+06`, `0.0001`, `1e-05`).
pub fn format_float(v: f64, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    // Integers that fit print without going through the digit split.
    if v.fract() == 0.0 && v.abs() < 1e6 {
        let _ = write!(out, "{}", v as i64);
        return;
    }
    // Shortest round-trip digits from Rust's `{:e}`: "d.ddde[-]x".
    let mut buf = String::with_capacity(32);
    use std::fmt::Write as _;
    let _ = write!(buf, "{:e}", v);
    let (mantissa, exp) = buf.split_once('e').unwrap_or((&buf, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if neg {
        out.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        go_exponent(&digits, exp, out);
    } else if exp < 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..(-exp - 1) {
            out.push(b'0');
        }
        out.extend_from_slice(digits.as_bytes());
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.extend_from_slice(digits.as_bytes());
            for _ in digits.len()..int_len {
                out.push(b'0');
            }
        } else {
            out.extend_from_slice(&digits.as_bytes()[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits.as_bytes()[int_len..]);
        }
    }
}

fn go_exponent(digits: &str, exp: i32, out: &mut Vec<u8>) {
    let (first, rest) = digits.split_at(1);
    out.extend_from_slice(first.as_bytes());
    if !rest.is_empty() {
        out.push(b'.');
        out.extend_from_slice(rest.as_bytes());
    }
    let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut out = Vec::new();
        format_float(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_match_go() {
        // Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) prints.
        assert_eq!(f(0.0), "0");
        assert_eq!(f(1.0), "1");
        assert_eq!(f(-3.0), "-3");
        assert_eq!(f(123456.0), "123456");
        assert_eq!(f(1e6), "1e+06");
        assert_eq!(f(1234567.0), "1.234567e+06");
        assert_eq!(f(1.6042172416e10), "1.6042172416e+10");
        assert_eq!(f(0.25), "0.25");
        assert_eq!(f(0.0001), "0.0001");
        assert_eq!(f(0.00001), "1e-05");
        assert_eq!(f(1.5e-7), "1.5e-07");
        assert_eq!(f(123.456), "123.456");
        assert_eq!(f(999999.5), "999999.5");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(12345678.9), "1.23456789e+07");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(-0.5), "-0.5");
    }

    #[test]
    fn negotiation() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0;q=0.1,text/plain;q=0.9"
            )),
            Format::Text
        );
        assert_eq!(Format::negotiate(Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; version=2.0.0")),
            Format::Text
        );
    }

    #[test]
    fn all_types_both_formats() {
        let mut fams = vec![];
        let mut c = MetricFamily::counter("pg_xact_commit", "No _total \"here\".");
        c.add(&[("datname", "a\"b\\c\nd")], 5.0);
        fams.push(c);
        let mut u = MetricFamily::untyped("node_netstat_Tcp_InSegs", "Statistic TcpInSegs.");
        u.add(&[], 7.0);
        fams.push(u);
        let mut i = MetricFamily::info("node_uname_info", "Uname.");
        i.add(&[("sysname", "Linux")], 1.0);
        fams.push(i);
        let mut h = MetricFamily::histogram("req_seconds", "Latency.");
        h.add_histogram(&[("m", "GET")], vec![(0.1, 1), (1.0, 3)], 1.5, 4);
        fams.push(h);
        let mut s = MetricFamily::summary("rpc_seconds", "RPC.");
        s.add_summary(&[], vec![(0.5, 0.2), (0.99, 1.0)], 10.0, 20);
        fams.push(s);

        let mut text = Vec::new();
        encode(&fams, Format::Text, &mut text);
        let text = String::from_utf8(text).unwrap();
        assert_eq!(
            text,
            r#"# HELP pg_xact_commit No _total "here".
# TYPE pg_xact_commit counter
pg_xact_commit{datname="a\"b\\c\nd"} 5
# HELP node_netstat_Tcp_InSegs Statistic TcpInSegs.
# TYPE node_netstat_Tcp_InSegs untyped
node_netstat_Tcp_InSegs 7
# HELP node_uname_info Uname.
# TYPE node_uname_info gauge
node_uname_info{sysname="Linux"} 1
# HELP req_seconds Latency.
# TYPE req_seconds histogram
req_seconds_bucket{m="GET",le="0.1"} 1
req_seconds_bucket{m="GET",le="1"} 3
req_seconds_bucket{m="GET",le="+Inf"} 4
req_seconds_sum{m="GET"} 1.5
req_seconds_count{m="GET"} 4
# HELP rpc_seconds RPC.
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.2
rpc_seconds{quantile="0.99"} 1
rpc_seconds_sum 10
rpc_seconds_count 20
"#
        );

        let mut om = Vec::new();
        encode(&fams, Format::OpenMetrics, &mut om);
        let om = String::from_utf8(om).unwrap();
        assert!(om.contains("# HELP pg_xact_commit No _total \\\"here\\\".\n# TYPE pg_xact_commit unknown\npg_xact_commit{"));
        assert!(om.contains("# TYPE node_netstat_Tcp_InSegs unknown\n"));
        assert!(om.contains("# TYPE node_uname info\nnode_uname_info{sysname=\"Linux\"} 1\n"));
        assert!(om.contains("# TYPE req_seconds histogram\n"));
        assert!(om.ends_with("rpc_seconds_count 20\n# EOF\n"));
    }
}

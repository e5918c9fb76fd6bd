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
//! Exemplars ([`crate::metrics::Exemplar`]) are written only in OpenMetrics,
//! after the sample they belong to (`x_bucket{le="0.5"} 3 # {trace_id="…"}
//! 0.42 1.7e+09`): on a histogram's buckets and on a `_total` counter's
//! sample, the only places OpenMetrics allows them. The 0.0.4 parser of
//! older Prometheus servers would reject them.
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

use crate::metrics::{Exemplar, Label, Metric, MetricFamily, MetricType, Value};

/// OpenMetrics' limit on an exemplar's label names and values together, in
/// characters.
const EXEMPLAR_MAX_LABEL_CHARS: usize = 128;

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
    write_type_line(name, ty, out);
    for m in &f.metrics {
        write_samples(name, m, ExemplarsOn::Nothing, out);
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
    let exemplars = match ty {
        "counter" => ExemplarsOn::Sample,
        "histogram" => ExemplarsOn::Buckets,
        _ => ExemplarsOn::Nothing,
    };
    write_type_line(family, ty, out);
    for m in &f.metrics {
        write_samples(name, m, exemplars, out);
    }
}

/// `# TYPE name type`, a line per family: written without `fmt`.
fn write_type_line(name: &str, ty: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(ty.as_bytes());
    out.push(b'\n');
}

/// Which samples of a series show its exemplars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExemplarsOn {
    /// None (the 0.0.4 format; types OpenMetrics gives no exemplars).
    Nothing,
    /// The single sample (an OpenMetrics counter).
    Sample,
    /// Each histogram bucket.
    Buckets,
}

fn write_samples(name: &str, m: &Metric, exemplars: ExemplarsOn, out: &mut Vec<u8>) {
    let writable = || m.exemplars.iter().rev().filter(|e| exemplar_fits(e));
    match &m.value {
        Value::Single(v) => {
            let exemplar = match exemplars {
                ExemplarsOn::Sample => writable().next(),
                _ => None,
            };
            write_sample(name, "", &m.labels, None, *v, exemplar, out)
        }
        Value::Histogram {
            buckets,
            sum,
            count,
        } => {
            let mut saw_inf = false;
            let mut below: Option<f64> = None;
            let mut bucket_exemplar = |le: f64| {
                let lower = below.replace(le);
                if exemplars != ExemplarsOn::Buckets {
                    return None;
                }
                writable().find(|e| e.value <= le && lower.is_none_or(|l| e.value > l))
            };
            for (le, c) in buckets {
                saw_inf |= le.is_infinite() && *le > 0.0;
                let exemplar = bucket_exemplar(*le);
                write_sample(
                    name,
                    "_bucket",
                    &m.labels,
                    Some(("le", *le)),
                    *c as f64,
                    exemplar,
                    out,
                );
            }
            if !saw_inf {
                let exemplar = bucket_exemplar(f64::INFINITY);
                write_sample(
                    name,
                    "_bucket",
                    &m.labels,
                    Some(("le", f64::INFINITY)),
                    *count as f64,
                    exemplar,
                    out,
                );
            }
            write_sample(name, "_sum", &m.labels, None, *sum, None, out);
            write_sample(name, "_count", &m.labels, None, *count as f64, None, out);
        }
        Value::Summary {
            quantiles,
            sum,
            count,
        } => {
            for (q, v) in quantiles {
                write_sample(name, "", &m.labels, Some(("quantile", *q)), *v, None, out);
            }
            write_sample(name, "_sum", &m.labels, None, *sum, None, out);
            write_sample(name, "_count", &m.labels, None, *count as f64, None, out);
        }
    }
}

/// Whether OpenMetrics allows the exemplar's label set.
fn exemplar_fits(e: &Exemplar) -> bool {
    let chars: usize = e
        .labels
        .iter()
        .map(|(k, v)| k.chars().count() + v.chars().count())
        .sum();
    chars <= EXEMPLAR_MAX_LABEL_CHARS
}

fn write_sample(
    name: &str,
    suffix: &str,
    labels: &[Label],
    extra: Option<(&str, f64)>,
    value: f64,
    exemplar: Option<&Exemplar>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    if !labels.is_empty() || extra.is_some() {
        write_labels(labels, extra, out);
    }
    out.push(b' ');
    format_float(value, out);
    if let Some(e) = exemplar {
        out.extend_from_slice(b" # ");
        write_labels(&e.labels, None, out);
        out.push(b' ');
        format_float(e.value, out);
        if let Some(ts) = e.timestamp {
            out.push(b' ');
            format_float(ts, out);
        }
    }
    out.push(b'\n');
}

/// Writes `{k="v",…}` with `extra` (a bound: `le`, `quantile`) last.
fn write_labels(labels: &[Label], extra: Option<(&str, f64)>, out: &mut Vec<u8>) {
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

/// Appends `text` with backslash and newline escaped, and the double quote
/// too when `quote` (label values, OpenMetrics help). Runs without escapes
/// are copied whole: help texts are most of a response's bytes.
fn escape_help(text: &str, quote: bool, out: &mut Vec<u8>) {
    let mut rest = text.as_bytes();
    loop {
        let found = if quote {
            memchr::memchr3(b'\\', b'\n', b'"', rest)
        } else {
            memchr::memchr2(b'\\', b'\n', rest)
        };
        let Some(at) = found else {
            out.extend_from_slice(rest);
            return;
        };
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(match rest[at] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            _ => b"\\\"",
        });
        rest = &rest[at + 1..];
    }
}

fn escape_label_value(v: &str, out: &mut Vec<u8>) {
    escape_help(v, true, out);
}

/// Appends the decimal digits of `n`.
fn write_u64(n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let at = u64_digits(n, &mut digits);
    out.extend_from_slice(&digits[at..]);
}

/// "00" to "99", for writing two digits at a time.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes the digits of `n` at the end of `buf`; returns where they start.
fn u64_digits(mut n: u64, buf: &mut [u8; 20]) -> usize {
    let mut at = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + n as u8;
    }
    at
}

/// Integers up to 2^53 are exact in an f64, and one apart at most: their
/// own digits are the shortest that read back as the same value.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

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
    if v < 0.0 {
        out.push(b'-');
    }
    let v = v.abs();
    // `as` saturates; an integer up to 2^53 converts back unchanged.
    let int = v as u64;
    if v <= EXACT_INTEGERS && int as f64 == v {
        if int < 1_000_000 {
            write_u64(int, out);
            return;
        }
        // Byte counters: the digits, less trailing zeros, in exponent form.
        let mut buf = [0u8; 20];
        let at = u64_digits(int, &mut buf);
        let exp = (buf.len() - at - 1) as i32;
        let end = buf
            .iter()
            .rposition(|&d| d != b'0')
            .map_or(at + 1, |i| i + 1);
        go_exponent(&buf[at..end], exp, out);
        return;
    }
    let mut ryu = ryu::Buffer::new();
    let mut digits = [0u8; 24];
    let (n, exp) = shortest_digits(ryu.format_finite(v).as_bytes(), &mut digits);
    write_go_digits(&digits[..n], exp, out);
}

/// The significant digits of a positive decimal number as ryu writes it
/// (`0.00012`, `1234.5`, `1.5e-7`, `1e30`), without leading or trailing
/// zeros, and the decimal exponent of the first one: (`12`, -4) for
/// `0.00012`. Returns the number of digits written to `digits`.
fn shortest_digits(text: &[u8], digits: &mut [u8; 24]) -> (usize, i32) {
    let (mantissa, exp10) = match text.iter().position(|&b| b == b'e' || b == b'E') {
        Some(at) => (&text[..at], parse_exponent(&text[at + 1..])),
        None => (text, 0),
    };
    let mut n = 0;
    // Position of the decimal point, counted in digits from the first kept one.
    let mut point: i32 = 0;
    let mut seen_point = false;
    for &b in mantissa {
        match b {
            b'.' => seen_point = true,
            // A leading zero after the point moves the first digit right.
            b'0' if n == 0 && seen_point => point -= 1,
            b'0' if n == 0 => {}
            b'0'..=b'9' => {
                if n < digits.len() {
                    digits[n] = b;
                    n += 1;
                }
                if !seen_point {
                    point += 1;
                }
            }
            _ => {}
        }
    }
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    (n, point - 1 + exp10)
}

/// Go's `%g` layout of significant `digits` whose first one has decimal
/// exponent `exp`.
fn write_go_digits(digits: &[u8], exp: i32, out: &mut Vec<u8>) {
    if !(-4..6).contains(&exp) {
        go_exponent(digits, exp, out);
    } else if exp < 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..(-exp - 1) {
            out.push(b'0');
        }
        out.extend_from_slice(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.extend_from_slice(digits);
            for _ in digits.len()..int_len {
                out.push(b'0');
            }
        } else {
            out.extend_from_slice(&digits[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits[int_len..]);
        }
    }
}

/// The exponent of an `e` form: optional sign, then digits.
fn parse_exponent(text: &[u8]) -> i32 {
    let (neg, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let magnitude = digits
        .iter()
        .fold(0i32, |acc, &d| acc * 10 + i32::from(d.wrapping_sub(b'0')));
    if neg {
        -magnitude
    } else {
        magnitude
    }
}

/// Go's exponent form: `d[.ddd]e±XX`, at least two exponent digits.
fn go_exponent(digits: &[u8], exp: i32, out: &mut Vec<u8>) {
    let (first, rest) = digits.split_at(1.min(digits.len()));
    out.extend_from_slice(first);
    if !rest.is_empty() {
        out.push(b'.');
        out.extend_from_slice(rest);
    }
    out.extend_from_slice(if exp < 0 { b"e-" } else { b"e+" });
    let magnitude = exp.unsigned_abs();
    if magnitude < 10 {
        out.push(b'0');
    }
    write_u64(u64::from(magnitude), out);
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
    fn integers_have_their_decimal_digits() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for i in 0..100_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = if i < 1000 { i } else { x >> (x % 64) };
            let mut out = Vec::new();
            write_u64(n, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
        let mut out = Vec::new();
        write_u64(u64::MAX, &mut out);
        assert_eq!(out, u64::MAX.to_string().as_bytes());
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
        assert_eq!(f(-1234567.0), "-1.234567e+06");
        assert_eq!(f(-999999.0), "-999999");
        assert_eq!(f(5e-324), "5e-324");
        assert_eq!(f(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(f(1e100), "1e+100");
        assert_eq!(f(0.000123), "0.000123");
        assert_eq!(f(18446744073709551616.0), "1.8446744073709552e+19");
        assert_eq!(f(9007199254740992.0), "9.007199254740992e+15");
        assert_eq!(f(9007199254740994.0), "9.007199254740994e+15");
        assert_eq!(f(1e15), "1e+15");
        assert_eq!(f(120000000.0), "1.2e+08");
    }

    /// Go's layout built from Rust's own shortest digits (`{:e}`), the
    /// slower way this encoder used to take.
    fn reference(v: f64) -> String {
        if !v.is_finite() || v == 0.0 {
            return f(v);
        }
        let sci = format!("{:e}", v.abs());
        let (mantissa, exp) = sci.split_once('e').unwrap();
        let digits: Vec<u8> = mantissa.bytes().filter(|&b| b != b'.').collect();
        let mut out = Vec::new();
        if v < 0.0 {
            out.push(b'-');
        }
        write_go_digits(&digits, exp.parse().unwrap(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_kind_of_float_matches_the_shortest_digits_reference() {
        // Seeded xorshift over raw bit patterns, plus integers, counters
        // and ratios of the sizes exporters write.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut ties = 0;
        for i in 0..200_000 {
            let r = next();
            let v = match i % 4 {
                0 => f64::from_bits(r),
                1 => (r >> (r % 64)) as f64,
                2 => (r % 10_000_000_000_000) as f64 / 1000.0,
                _ => (r % 1_000_000) as f64 * 10f64.powi((r % 40) as i32 - 20),
            };
            let (got, want) = (f(v), reference(v));
            if got == want {
                continue;
            }
            // Halfway cases: Go and ryu round the last digit to even,
            // Rust's `{:e}` rounds it up. Same length, same layout, and
            // the value reads back.
            let split = |s: &str| {
                let (m, e) = s.split_once('e').unwrap_or((s, ""));
                (m[..m.len() - 1].to_string(), e.to_string())
            };
            assert_eq!(split(&got), split(&want), "{v:?} (bits {:#x})", v.to_bits());
            assert_eq!(got.parse::<f64>().unwrap(), v, "{got} does not read back");
            ties += 1;
        }
        assert!(ties < 100, "{ties} values differ from the reference");
    }

    #[test]
    fn escapes_only_what_the_format_needs() {
        let esc = |text: &str, quote: bool| {
            let mut out = Vec::new();
            escape_help(text, quote, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(esc(r#"a\b"c"#, false), r#"a\\b"c"#);
        assert_eq!(esc("line\nnext", false), r"line\nnext");
        assert_eq!(esc(r#"say "hi"\"#, true), r#"say \"hi\"\\"#);
        assert_eq!(esc("plain ü", true), "plain ü");
        assert_eq!(esc("", true), "");
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

    fn exemplar(trace_id: &str, value: f64, timestamp: Option<f64>) -> Exemplar {
        Exemplar {
            labels: vec![("trace_id".into(), trace_id.into())],
            value,
            timestamp,
        }
    }

    #[test]
    fn exemplars_only_in_openmetrics_and_only_where_allowed() {
        let mut h = MetricFamily::histogram("http_request_duration_seconds", "Latency.");
        h.push(Metric {
            exemplars: vec![
                exemplar(
                    "0af7651916cd43dd8448eb211c80319c",
                    0.05,
                    Some(1712345678.125),
                ),
                // Replaced by the later one in the same bucket.
                exemplar("11111111111111111111111111111111", 0.3, None),
                exemplar("4bf92f3577b34da6a3ce929d0e0e4736", 0.25, Some(1712345679.5)),
                // Above every bound: the +Inf bucket the encoder adds.
                exemplar("22222222222222222222222222222222", 7.0, None),
                // Longer than OpenMetrics allows: left out.
                exemplar(&"f".repeat(121), 0.01, None),
            ],
            ..Metric::new(
                vec![("method".into(), "GET".into())],
                Value::Histogram {
                    buckets: vec![(0.1, 1), (0.5, 3), (1.0, 3)],
                    sum: 7.6,
                    count: 4,
                },
            )
        });
        let mut c = MetricFamily::counter("http_requests_total", "Requests.");
        c.push(Metric {
            exemplars: vec![exemplar("a\"b", 1.0, Some(2.0))],
            ..Metric::new(vec![], Value::Single(5.0))
        });
        // OpenMetrics types that take no exemplars: unknown (a counter
        // without _total) and gauge.
        let mut unknown = MetricFamily::counter("pg_xact_commit", "Commits.");
        unknown.push(Metric {
            exemplars: vec![exemplar("abc", 1.0, None)],
            ..Metric::new(vec![], Value::Single(3.0))
        });
        let mut g = MetricFamily::gauge("queue_length", "Queue.");
        g.push(Metric {
            exemplars: vec![exemplar("abc", 1.0, None)],
            ..Metric::new(vec![], Value::Single(2.0))
        });
        let fams = vec![h, c, unknown, g];

        let mut om = Vec::new();
        encode(&fams, Format::OpenMetrics, &mut om);
        assert_eq!(
            String::from_utf8(om).unwrap(),
            r#"# HELP http_request_duration_seconds Latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method="GET",le="0.1"} 1 # {trace_id="0af7651916cd43dd8448eb211c80319c"} 0.05 1.712345678125e+09
http_request_duration_seconds_bucket{method="GET",le="0.5"} 3 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.25 1.7123456795e+09
http_request_duration_seconds_bucket{method="GET",le="1"} 3
http_request_duration_seconds_bucket{method="GET",le="+Inf"} 4 # {trace_id="22222222222222222222222222222222"} 7
http_request_duration_seconds_sum{method="GET"} 7.6
http_request_duration_seconds_count{method="GET"} 4
# HELP http_requests Requests.
# TYPE http_requests counter
http_requests_total 5 # {trace_id="a\"b"} 1 2
# HELP pg_xact_commit Commits.
# TYPE pg_xact_commit unknown
pg_xact_commit 3
# HELP queue_length Queue.
# TYPE queue_length gauge
queue_length 2
# EOF
"#
        );

        let mut text = Vec::new();
        encode(&fams, Format::Text, &mut text);
        let text = String::from_utf8(text).unwrap();
        assert!(text.lines().all(|l| !l.contains(" # ")), "{text}");
        assert!(text.contains(
            "http_request_duration_seconds_bucket{method=\"GET\",le=\"0.1\"} 1\nhttp_request_duration_seconds_bucket{method=\"GET\",le=\"0.5\"} 3\n"
        ));
        assert!(text.contains("\nhttp_requests_total 5\n"));
    }

    #[test]
    fn exemplars_written_are_read_back_by_the_parser() {
        let mut h = MetricFamily::histogram("lat_seconds", "Latency.");
        h.push(Metric {
            exemplars: vec![exemplar("abc", 0.2, Some(1.5))],
            ..Metric::new(
                vec![],
                Value::Histogram {
                    buckets: vec![(0.5, 1)],
                    sum: 0.2,
                    count: 1,
                },
            )
        });
        let mut om = Vec::new();
        encode(&[h.clone()], Format::OpenMetrics, &mut om);
        let parsed = crate::expo::try_parse(&String::from_utf8(om).unwrap()).unwrap();
        assert_eq!(
            parsed.value("lat_seconds_bucket", &[("le", "0.5")]),
            Some(1.0)
        );
        assert_eq!(parsed.value("lat_seconds_count", &[]), Some(1.0));
    }
}

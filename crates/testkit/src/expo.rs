//! A parser for exposition text: the classic text format 0.0.4 and
//! OpenMetrics 1.0, for assertions in tests.
//!
//! Samples are grouped into families by the `# TYPE` lines: a sample belongs
//! to the family whose name it matches exactly, else to the declared family it
//! matches after removing a suffix its type allows (`_total`, `_created`,
//! `_bucket`, `_sum`, `_count`, `_gcount`, `_gsum`, `_info`). A sample with
//! no declared family gets an `untyped` family of its own name.
//!
//! [`try_parse`] reports the first syntax error with its line number; it
//! never panics. [`parse`] panics with that error (for tests).

use std::collections::BTreeMap;
use std::fmt;

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
                if !fam.samples.is_empty() {
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
}

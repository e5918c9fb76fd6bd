//! textfile — metrics written by other programs (cron jobs, scripts) as
//! `*.prom` files in the text exposition format 0.0.4, in the directories
//! given by `--collector.textfile.directory` (repeatable; `*` and `?`
//! globs allowed).
//!
//! Every file is parsed on each scrape. Families of the same name from
//! several files are merged. A file that cannot be read or parsed, or that
//! carries client-side timestamps, is skipped entirely; a family whose
//! type or help text conflicts with the same family from an earlier file
//! is dropped from the later file. Each of these is logged and sets
//! `node_textfile_scrape_error` to 1. Series of one family that use
//! different label names are padded with empty labels. A family without
//! help text gets "Metric read from <files>".
//!
//! Metrics: the files' own families, `node_textfile_mtime_seconds{file}`
//! (per file read successfully), `node_textfile_scrape_error`. On by
//! default (it reports only `node_textfile_scrape_error 0` when no
//! directory is given).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::metrics::{Metric, Value};
use oxmon_core::{Collector, MetricFamily, MetricType};

use crate::collectors::Ctx;

/// A parse error with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Line of the error.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Full sample name (`x_bucket`, `x_sum`, …).
    pub name: String,
    /// Labels in file order.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
    /// Client-side timestamp (ms), if present.
    pub timestamp: Option<i64>,
}

/// One family as parsed from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFamily {
    /// Family name.
    pub name: String,
    /// `# HELP` text (`None` when absent or empty).
    pub help: Option<String>,
    /// `# TYPE` (untyped when absent).
    pub kind: MetricType,
    /// The samples, in file order.
    pub samples: Vec<Sample>,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_name_start(b[0]) && b.iter().all(|c| is_name_char(*c))
}

fn valid_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Parses a float the way Go's `strconv.ParseFloat` reads exposition values.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses one sample line.
fn parse_sample(line: &str, n: usize) -> Result<Sample, ParseError> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() && is_name_char(b[i]) {
        i += 1;
    }
    let name = &line[..i];
    if !valid_metric_name(name) {
        return Err(err(n, format!("invalid metric name in {line:?}")));
    }
    let mut labels = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            skip_ws(&mut i);
            if i >= b.len() {
                return Err(err(n, "unterminated label set"));
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let lname = &line[start..i];
            if !valid_label_name(lname) {
                return Err(err(n, format!("invalid label name in {line:?}")));
            }
            skip_ws(&mut i);
            if i >= b.len() || b[i] != b'=' {
                return Err(err(n, format!("expected '=' after label {lname:?}")));
            }
            i += 1;
            skip_ws(&mut i);
            if i >= b.len() || b[i] != b'"' {
                return Err(err(
                    n,
                    format!("expected '\"' for the value of label {lname:?}"),
                ));
            }
            i += 1;
            let mut value = Vec::new();
            loop {
                match b.get(i) {
                    None => return Err(err(n, "unterminated label value")),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        match b.get(i + 1) {
                            Some(b'n') => value.push(b'\n'),
                            Some(b'\\') => value.push(b'\\'),
                            Some(b'"') => value.push(b'"'),
                            _ => return Err(err(n, "invalid escape in label value")),
                        }
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
            if labels.iter().any(|(k, _): &(String, String)| k == lname) {
                return Err(err(n, format!("duplicate label {lname:?}")));
            }
            labels.push((
                lname.to_string(),
                String::from_utf8(value).map_err(|_| err(n, "label value is not UTF-8"))?,
            ));
            skip_ws(&mut i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return Err(err(n, format!("expected ',' or '}}' in {line:?}"))),
            }
        }
    }
    let mut rest = line[i..].split_ascii_whitespace();
    let value_text = rest
        .next()
        .ok_or_else(|| err(n, format!("missing value in {line:?}")))?;
    let value =
        parse_value(value_text).ok_or_else(|| err(n, format!("invalid value {value_text:?}")))?;
    let timestamp = match rest.next() {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| err(n, format!("invalid timestamp {t:?}")))?,
        ),
    };
    if rest.next().is_some() {
        return Err(err(
            n,
            format!("unexpected text after the value in {line:?}"),
        ));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp,
    })
}

/// Parses exposition text 0.0.4 into families, in order of first
/// appearance. Any malformed line is an error for the whole text.
pub fn parse_exposition(text: &str) -> Result<Vec<ParsedFamily>, ParseError> {
    let mut families: Vec<ParsedFamily> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut help_seen: BTreeSet<String> = BTreeSet::new();
    let mut type_seen: BTreeSet<String> = BTreeSet::new();
    let family_at = |families: &mut Vec<ParsedFamily>,
                     index: &mut BTreeMap<String, usize>,
                     name: &str|
     -> usize {
        if let Some(i) = index.get(name) {
            return *i;
        }
        families.push(ParsedFamily {
            name: name.to_string(),
            help: None,
            kind: MetricType::Untyped,
            samples: Vec::new(),
        });
        index.insert(name.to_string(), families.len() - 1);
        families.len() - 1
    };
    for (lineno, raw) in text.lines().enumerate() {
        let n = lineno + 1;
        let line = raw.trim_end_matches('\r').trim_start_matches([' ', '\t']);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start_matches([' ', '\t']);
            let (keyword, rest) = comment.split_once([' ', '\t']).unwrap_or((comment, ""));
            if keyword != "HELP" && keyword != "TYPE" {
                continue;
            }
            let rest = rest.trim_start_matches([' ', '\t']);
            let (name, arg) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            if !valid_metric_name(name) {
                return Err(err(n, format!("invalid metric name in {keyword} line")));
            }
            let i = family_at(&mut families, &mut index, name);
            if keyword == "HELP" {
                if !help_seen.insert(name.to_string()) {
                    return Err(err(n, format!("second HELP line for metric name {name:?}")));
                }
                let help = unescape_help(arg);
                families[i].help = (!help.is_empty()).then_some(help);
            } else {
                if !type_seen.insert(name.to_string()) {
                    return Err(err(n, format!("second TYPE line for metric name {name:?}")));
                }
                if !families[i].samples.is_empty() {
                    return Err(err(n, format!("TYPE line for {name:?} after its samples")));
                }
                families[i].kind = match arg.trim() {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "untyped" => MetricType::Untyped,
                    "histogram" => MetricType::Histogram,
                    "summary" => MetricType::Summary,
                    other => return Err(err(n, format!("unknown metric type {other:?}"))),
                };
            }
            continue;
        }
        let sample = parse_sample(line, n)?;
        // A _bucket/_sum/_count sample belongs to a declared histogram or
        // summary of the base name.
        let mut target = sample.name.clone();
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = sample.name.strip_suffix(suffix) {
                if let Some(&i) = index.get(base) {
                    let kind = families[i].kind;
                    let fits = match suffix {
                        "_bucket" => kind == MetricType::Histogram,
                        _ => matches!(kind, MetricType::Histogram | MetricType::Summary),
                    };
                    if fits {
                        target = base.to_string();
                    }
                }
            }
        }
        let i = family_at(&mut families, &mut index, &target);
        let kind = families[i].kind;
        if kind == MetricType::Histogram && target == sample.name {
            return Err(err(
                n,
                format!(
                    "histogram sample {:?} without _bucket/_sum/_count",
                    sample.name
                ),
            ));
        }
        if kind == MetricType::Histogram
            && sample.name.ends_with("_bucket")
            && !sample.labels.iter().any(|(k, _)| k == "le")
        {
            return Err(err(n, "histogram bucket without an le label"));
        }
        if kind == MetricType::Summary
            && target == sample.name
            && !sample.labels.iter().any(|(k, _)| k == "quantile")
        {
            return Err(err(n, "summary sample without a quantile label"));
        }
        families[i].samples.push(sample);
    }
    Ok(families)
}

/// A family merged from one or more files.
struct Merged {
    help: Option<String>,
    kind: MetricType,
    files: Vec<String>,
    samples: Vec<Sample>,
}

/// Converts a merged family into a [`MetricFamily`], padding missing
/// labels with empty values. Histograms and summaries are assembled from
/// their `_bucket`/`_sum`/`_count` samples.
fn to_family(name: &str, m: Merged) -> MetricFamily {
    let help = m
        .help
        .unwrap_or_else(|| format!("Metric read from {}", m.files.join(", ")));
    let special = |k: &str| {
        (m.kind == MetricType::Histogram && k == "le")
            || (m.kind == MetricType::Summary && k == "quantile")
    };
    let label_names: BTreeSet<&str> = m
        .samples
        .iter()
        .flat_map(|s| s.labels.iter().map(|(k, _)| k.as_str()))
        .filter(|k| !special(k))
        .collect();
    let key_of = |s: &Sample| -> Vec<(Cow<'static, str>, String)> {
        label_names
            .iter()
            .map(|k| {
                let v = s
                    .labels
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                (Cow::Owned(k.to_string()), v)
            })
            .collect()
    };
    let mut family = MetricFamily::new(name.to_string(), help, m.kind);
    match m.kind {
        MetricType::Histogram | MetricType::Summary => {
            // (labels, (bound, value) points, sum, count) per series.
            type Group = (Vec<(Cow<'static, str>, String)>, Vec<(f64, f64)>, f64, f64);
            let mut groups: Vec<Group> = Vec::new();
            for s in &m.samples {
                let key = key_of(s);
                let gi = match groups.iter().position(|g| g.0 == key) {
                    Some(gi) => gi,
                    None => {
                        groups.push((key, Vec::new(), 0.0, 0.0));
                        groups.len() - 1
                    }
                };
                let g = &mut groups[gi];
                if s.name.ends_with("_sum") && s.name.len() == name.len() + 4 {
                    g.2 = s.value;
                } else if s.name.ends_with("_count") && s.name.len() == name.len() + 6 {
                    g.3 = s.value;
                } else {
                    let bound_label = if m.kind == MetricType::Histogram {
                        "le"
                    } else {
                        "quantile"
                    };
                    if let Some(b) = s
                        .labels
                        .iter()
                        .find(|(k, _)| k == bound_label)
                        .and_then(|(_, v)| parse_value(v))
                    {
                        g.1.push((b, s.value));
                    }
                }
            }
            for (labels, mut points, sum, count) in groups {
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                let value = if m.kind == MetricType::Histogram {
                    Value::Histogram {
                        buckets: points.into_iter().map(|(le, c)| (le, c as u64)).collect(),
                        sum,
                        count: count as u64,
                    }
                } else {
                    Value::Summary {
                        quantiles: points,
                        sum,
                        count: count as u64,
                    }
                };
                family.push(Metric::new(labels, value));
            }
        }
        _ => {
            for s in &m.samples {
                family.add_owned(key_of(s), s.value);
            }
        }
    }
    family
}

/// Expands `*` and `?` in the components of a directory pattern; a pattern
/// without wildcards is returned as is. Results are sorted.
pub fn expand_glob(pattern: &str) -> Vec<PathBuf> {
    if !pattern.contains(['*', '?']) {
        return vec![PathBuf::from(pattern)];
    }
    let absolute = pattern.starts_with('/');
    let mut current = vec![PathBuf::from(if absolute { "/" } else { "." })];
    for comp in pattern.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let mut next = Vec::new();
        for base in &current {
            if comp.contains(['*', '?']) {
                if let Ok(names) = crate::read::list_dir(base) {
                    for name in names {
                        if (!name.starts_with('.') || comp.starts_with('.'))
                            && wildcard_match(comp, &name)
                        {
                            next.push(base.join(name));
                        }
                    }
                }
            } else {
                let p = base.join(comp);
                if p.exists() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    if !absolute {
        current = current
            .into_iter()
            .map(|p| p.strip_prefix(".").map(Path::to_path_buf).unwrap_or(p))
            .collect();
    }
    current.sort();
    current
}

/// Matches `name` against a pattern of literal characters, `*` and `?`.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

struct Textfile {
    directories: Vec<String>,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Textfile {
        directories: ctx.flags.a.textfile_directory.clone(),
    }))
}

/// Joins a directory as given on the command line with a file name,
/// without doubling a trailing slash (the `file` label shows this path).
fn join_display(dir: &Path, name: &str) -> String {
    let d = dir.to_string_lossy();
    format!("{}/{}", d.trim_end_matches('/'), name)
}

impl SyncCollector for Textfile {
    fn name(&self) -> &'static str {
        "textfile"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut error = false;
        let mut merged: BTreeMap<String, Merged> = BTreeMap::new();
        let mut mtimes = MetricFamily::gauge(
            "node_textfile_mtime_seconds",
            "Unixtime mtime of textfiles successfully read.",
        );
        for pattern in &self.directories {
            let dirs = expand_glob(pattern);
            if dirs.is_empty() {
                tracing::error!(directory = %pattern, "textfile directory pattern matches nothing");
                error = true;
            }
            for dir in dirs {
                let names = match crate::read::list_dir(&dir) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::error!(directory = %dir.display(), err = %e, "failed to read textfile collector directory");
                        error = true;
                        continue;
                    }
                };
                for name in names.iter().filter(|n| n.ends_with(".prom")) {
                    let path = dir.join(name);
                    let shown = join_display(&dir, name);
                    match read_file(&path) {
                        Ok((text, mtime)) => match parse_exposition(&text) {
                            Ok(families) => {
                                if families
                                    .iter()
                                    .any(|f| f.samples.iter().any(|s| s.timestamp.is_some()))
                                {
                                    tracing::error!(file = %shown, "textfile contains unsupported client-side timestamps, skipping entire file");
                                    error = true;
                                    continue;
                                }
                                mtimes
                                    .add_owned(vec![(Cow::Borrowed("file"), shown.clone())], mtime);
                                for f in families {
                                    if f.samples.is_empty() {
                                        continue;
                                    }
                                    match merged.get_mut(&f.name) {
                                        None => {
                                            merged.insert(
                                                f.name,
                                                Merged {
                                                    help: f.help,
                                                    kind: f.kind,
                                                    files: vec![shown.clone()],
                                                    samples: f.samples,
                                                },
                                            );
                                        }
                                        Some(m) => {
                                            let help_conflict = matches!((&m.help, &f.help), (Some(a), Some(b)) if a != b);
                                            if m.kind != f.kind || help_conflict {
                                                tracing::error!(file = %shown, metric = %f.name, "metric family conflicts with the same family in an earlier file (type or help differs), dropped");
                                                error = true;
                                                continue;
                                            }
                                            if m.help.is_none() {
                                                m.help = f.help;
                                            }
                                            m.files.push(shown.clone());
                                            m.samples.extend(f.samples);
                                        }
                                    }
                                }
                            }
                            Err(e) => {
                                tracing::error!(file = %shown, err = %e, "failed to parse textfile, skipped");
                                error = true;
                            }
                        },
                        Err(e) => {
                            tracing::error!(file = %shown, err = %e, "failed to read textfile, skipped");
                            error = true;
                        }
                    }
                }
            }
        }
        for (name, m) in merged {
            out.push(to_family(&name, m));
        }
        out.push(mtimes);
        out.push(oxmon_core::gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            if error { 1.0 } else { 0.0 },
        ));
        Ok(())
    }
}

/// Reads a file and its mtime (seconds since the epoch).
fn read_file(path: &Path) -> std::io::Result<(String, f64)> {
    let meta = std::fs::metadata(path)?;
    let text = std::fs::read_to_string(path)?;
    let mtime = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    Ok((text, mtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_families_and_types() {
        let text = "# HELP jobs_done_total Jobs done.\n# TYPE jobs_done_total counter\njobs_done_total{queue=\"a\"} 3\njobs_done_total{queue=\"b\",} 4\n\n# some comment\nlast_run 1.5e9\n";
        let f = parse_exposition(text).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, "jobs_done_total");
        assert_eq!(f[0].kind, MetricType::Counter);
        assert_eq!(f[0].help.as_deref(), Some("Jobs done."));
        assert_eq!(f[0].samples.len(), 2);
        assert_eq!(f[1].kind, MetricType::Untyped);
        assert_eq!(f[1].samples[0].value, 1.5e9);
    }

    #[test]
    fn label_escapes_and_specials() {
        let f = parse_exposition("x{path=\"C:\\\\dir\",msg=\"say \\\"hi\\\"\\n\"} +Inf\n").unwrap();
        let s = &f[0].samples[0];
        assert_eq!(s.labels[0].1, "C:\\dir");
        assert_eq!(s.labels[1].1, "say \"hi\"\n");
        assert!(s.value.is_infinite());
    }

    #[test]
    fn rejects_malformed_input_without_panicking() {
        for bad in [
            "x{a=\"1\" 2\n",
            "x{a=1} 2\n",
            "x 1 2 3\n",
            "9x 1\n",
            "x abc\n",
            "# TYPE x bogus\n",
            "# TYPE x gauge\n# TYPE x gauge\n",
            "x 1\n# TYPE x gauge\n",
            "x{a=\"1\",a=\"2\"} 1\n",
            "x{a=\"\\q\"} 1\n",
            "# TYPE h histogram\nh_bucket{x=\"1\"} 1\n",
            "# TYPE s summary\ns{x=\"1\"} 1\n",
            "x{",
            "x{a",
            "x{a=",
            "x{a=\"",
        ] {
            let e = parse_exposition(bad).expect_err(bad);
            assert!(e.line >= 1, "{bad}");
        }
    }

    #[test]
    fn timestamps_are_reported() {
        let f = parse_exposition("x 1 1700000000000\n").unwrap();
        assert_eq!(f[0].samples[0].timestamp, Some(1_700_000_000_000));
    }

    #[test]
    fn histogram_assembly_and_label_padding() {
        let text = "# TYPE lat histogram\nlat_bucket{op=\"r\",le=\"0.1\"} 2\nlat_bucket{op=\"r\",le=\"+Inf\"} 5\nlat_sum{op=\"r\"} 1.25\nlat_count{op=\"r\"} 5\n";
        let f = parse_exposition(text).unwrap().remove(0);
        let fam = to_family(
            "lat",
            Merged {
                help: f.help,
                kind: f.kind,
                files: vec!["a.prom".into()],
                samples: f.samples,
            },
        );
        assert_eq!(fam.help, "Metric read from a.prom");
        assert_eq!(fam.metrics.len(), 1);
        assert_eq!(
            fam.metrics[0].value,
            Value::Histogram {
                buckets: vec![(0.1, 2), (f64::INFINITY, 5)],
                sum: 1.25,
                count: 5
            }
        );

        let f = parse_exposition("y{a=\"1\"} 1\ny{b=\"2\"} 2\n")
            .unwrap()
            .remove(0);
        let fam = to_family(
            "y",
            Merged {
                help: Some("h".into()),
                kind: f.kind,
                files: vec![],
                samples: f.samples,
            },
        );
        assert_eq!(fam.metrics[0].labels.len(), 2);
        assert_eq!(fam.metrics[0].labels[1].1, "");
        assert_eq!(fam.metrics[1].labels[0].1, "");
    }

    #[test]
    fn globs() {
        assert!(wildcard_match("*_dimension", "histogram_extra_dimension"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "abbc"));
        assert!(wildcard_match("*", ""));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("one_x")).unwrap();
        std::fs::create_dir(dir.path().join("two_x")).unwrap();
        std::fs::create_dir(dir.path().join("other")).unwrap();
        let got = expand_glob(&format!("{}/*_x", dir.path().display()));
        assert_eq!(
            got,
            vec![dir.path().join("one_x"), dir.path().join("two_x")]
        );
    }

    fn collect_dir(dir: &Path) -> Vec<MetricFamily> {
        let t = Textfile {
            directories: vec![dir.display().to_string()],
        };
        let mut out = Vec::new();
        let ctx = ScrapeContext::with_timeout(std::time::Duration::from_secs(1));
        SyncCollector::collect(&t, &ctx, &mut out).unwrap();
        out
    }

    fn error_value(fams: &[MetricFamily]) -> f64 {
        let f = fams
            .iter()
            .find(|f| f.name == "node_textfile_scrape_error")
            .unwrap();
        match f.metrics[0].value {
            Value::Single(v) => v,
            _ => unreachable!(),
        }
    }

    #[test]
    fn merges_files_and_reports_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.prom"),
            "# TYPE backups_total counter\nbackups_total{host=\"a\"} 1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.prom"),
            "# TYPE backups_total counter\nbackups_total{host=\"b\"} 2\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "garbage").unwrap();
        let fams = collect_dir(dir.path());
        assert_eq!(error_value(&fams), 0.0);
        let b = fams.iter().find(|f| f.name == "backups_total").unwrap();
        assert_eq!(b.metrics.len(), 2);
        assert!(b.help.starts_with("Metric read from "));
        assert!(b.help.contains("a.prom, "));

        std::fs::write(dir.path().join("c.prom"), "broken{ 1\n").unwrap();
        std::fs::write(
            dir.path().join("d.prom"),
            "# TYPE backups_total gauge\nbackups_total{host=\"d\"} 2\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("e.prom"), "stamped 1 1700000000000\n").unwrap();
        let fams = collect_dir(dir.path());
        assert_eq!(error_value(&fams), 1.0);
        let b = fams.iter().find(|f| f.name == "backups_total").unwrap();
        assert_eq!(b.metrics.len(), 2);
        assert!(!fams.iter().any(|f| f.name == "stamped"));
        let mtimes = fams
            .iter()
            .find(|f| f.name == "node_textfile_mtime_seconds")
            .unwrap();
        // a, b and d were read (d's only family was dropped).
        assert_eq!(mtimes.metrics.len(), 3);
    }

    #[test]
    fn missing_directory_is_an_error() {
        let fams = collect_dir(Path::new("/nonexistent/textfile/dir"));
        assert_eq!(error_value(&fams), 1.0);
    }
}

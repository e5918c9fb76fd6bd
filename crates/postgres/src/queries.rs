//! User queries from `--extend.query-path`, in postgres_exporter's
//! queries.yaml format:
//!
//! ```yaml
//! pg_replication_custom:            # metric prefix
//!   query: "SELECT datname, count(*) AS n FROM pg_stat_activity GROUP BY datname"
//!   master: true                    # only in the DSN's database (default: false)
//!   cache_seconds: 30               # reuse the result this long (default: 0)
//!   runonserver: ">=12.0.0"         # only on matching server versions
//!   metrics:
//!     - datname: {usage: LABEL, description: "Database"}
//!     - n: {usage: GAUGE, description: "Connections"}
//! ```
//!
//! Each column becomes `<prefix>_<column>`: COUNTER, GAUGE, MAPPEDMETRIC
//! (text mapped through `metric_mapping`), DURATION (an interval, as
//! `<prefix>_<column>_milliseconds`), LABEL or DISCARD; a numeric column the
//! file does not describe is exposed untyped, as postgres_exporter does.
//! Every series has the `server` label. This module reads the file and
//! maps result rows; `collectors::custom_queries` runs the queries.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use oxmon_core::metrics::{LabelName, LabelValue};
use oxmon_core::{MetricFamily, MetricType};
use serde::Deserialize;
use sha2::Digest;

/// How a column is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Usage {
    /// Ignored.
    Discard,
    /// A label of every series of the row.
    Label,
    /// A counter.
    Counter,
    /// A gauge.
    Gauge,
    /// Text mapped to a number through `metric_mapping`.
    #[serde(rename = "MAPPEDMETRIC")]
    MappedMetric,
    /// An interval, exposed in milliseconds.
    Duration,
}

#[derive(Debug, Deserialize)]
struct RawColumn {
    usage: Usage,
    #[serde(default)]
    description: String,
    #[serde(default)]
    metric_mapping: HashMap<String, f64>,
}

#[derive(Debug, Deserialize)]
struct RawQuery {
    query: String,
    #[serde(default)]
    metrics: Vec<BTreeMap<String, RawColumn>>,
    #[serde(default)]
    master: bool,
    #[serde(default)]
    cache_seconds: u64,
    #[serde(default)]
    runonserver: String,
}

/// One described column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Usage.
    pub usage: Usage,
    /// Family name (`<prefix>_<column>`, `_milliseconds` for DURATION).
    pub family: String,
    /// Help text.
    pub help: String,
    /// MAPPEDMETRIC values.
    pub mapping: HashMap<String, f64>,
}

/// One user query.
#[derive(Debug, Clone)]
pub struct UserQuery {
    /// The metric prefix (the YAML key).
    pub name: String,
    /// SQL.
    pub query: String,
    /// Only in the DSN's database.
    pub master: bool,
    /// Result reuse time.
    pub cache: Duration,
    /// Server versions to run on (empty: all).
    pub runonserver: VersionRange,
    /// Described columns.
    pub columns: Vec<Column>,
}

/// A parsed queries file.
#[derive(Debug, Clone)]
pub struct UserQueries {
    /// The file path, for `pg_exporter_user_queries_load_error{filename}`.
    pub path: String,
    /// SHA-256 of the file.
    pub hashsum: String,
    /// The queries, by prefix.
    pub queries: Vec<UserQuery>,
}

/// Reads and checks a queries file; the error names the file, and the
/// line, query and column where it can.
pub fn load(path: &std::path::Path) -> Result<UserQueries, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading queries file {}: {e}", path.display()))?;
    parse(&path.display().to_string(), &text)
}

/// Parses queries.yaml text (see [`load`]).
pub fn parse(path: &str, text: &str) -> Result<UserQueries, String> {
    let raw: BTreeMap<String, RawQuery> = if text.trim().is_empty() {
        BTreeMap::new()
    } else {
        serde_yaml::from_str(text).map_err(|e| format!("queries file {path}: {e}"))?
    };
    let mut queries = Vec::new();
    for (name, q) in raw {
        let at = |detail: String| {
            let line = text
                .lines()
                .position(|l| l.trim_end().starts_with(&format!("{name}:")))
                .map(|n| format!(" (line {})", n + 1))
                .unwrap_or_default();
            format!("queries file {path}: query {name:?}{line}: {detail}")
        };
        if q.query.trim().is_empty() {
            return Err(at("empty query".into()));
        }
        let runonserver =
            VersionRange::parse(&q.runonserver).map_err(|e| at(format!("runonserver: {e}")))?;
        let mut columns = Vec::new();
        for entry in q.metrics {
            for (col, spec) in entry {
                if spec.usage == Usage::MappedMetric && spec.metric_mapping.is_empty() {
                    return Err(at(format!(
                        "column {col:?}: MAPPEDMETRIC needs metric_mapping"
                    )));
                }
                if !valid_name(&col) {
                    return Err(at(format!(
                        "column {col:?}: not a valid metric or label name (letters, digits, _)"
                    )));
                }
                let family = match spec.usage {
                    Usage::Duration => format!("{name}_{col}_milliseconds"),
                    _ => format!("{name}_{col}"),
                };
                columns.push(Column {
                    name: col,
                    usage: spec.usage,
                    family,
                    help: spec.description,
                    mapping: spec.metric_mapping,
                });
            }
        }
        if !valid_name(&name) {
            return Err(at(
                "not a valid metric name prefix (letters, digits, _)".into()
            ));
        }
        queries.push(UserQuery {
            name,
            query: q.query,
            master: q.master,
            cache: Duration::from_secs(q.cache_seconds),
            runonserver,
            columns,
        });
    }
    Ok(UserQueries {
        path: path.to_owned(),
        hashsum: hex(&sha2::Sha256::digest(text.as_bytes())),
        queries,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A semver-style range (`>=10.0.0 <12.0.0 || >=14.0.0`); empty matches all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionRange(Vec<Vec<Constraint>>);

/// One `op version` term of a range.
type Constraint = (Op, (u32, u32, u32));

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

impl VersionRange {
    /// Parses a range.
    pub fn parse(s: &str) -> Result<VersionRange, String> {
        let mut alts = Vec::new();
        for alt in s.split("||").map(str::trim).filter(|a| !a.is_empty()) {
            let mut all = Vec::new();
            for term in alt.split_whitespace() {
                let (op, rest) = [
                    (">=", Op::Ge),
                    ("<=", Op::Le),
                    ("!=", Op::Ne),
                    (">", Op::Gt),
                    ("<", Op::Lt),
                    ("=", Op::Eq),
                ]
                .iter()
                .find_map(|(p, op)| term.strip_prefix(p).map(|r| (*op, r)))
                .unwrap_or((Op::Eq, term));
                let mut parts = rest.trim_start_matches('v').split('.');
                let mut next = || -> Result<u32, String> {
                    parts
                        .next()
                        .map(|p| {
                            p.parse::<u32>()
                                .map_err(|_| format!("bad version {term:?}"))
                        })
                        .unwrap_or(Ok(0))
                };
                all.push((op, (next()?, next()?, next()?)));
            }
            alts.push(all);
        }
        Ok(VersionRange(alts))
    }

    /// Whether a `server_version_num` matches.
    pub fn matches(&self, version_num: u32) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let v = if version_num >= 100000 {
            (version_num / 10000, version_num % 10000, 0)
        } else {
            (
                version_num / 10000,
                (version_num / 100) % 100,
                version_num % 100,
            )
        };
        self.0.iter().any(|all| {
            all.iter().all(|(op, want)| match op {
                Op::Ge => v >= *want,
                Op::Gt => v > *want,
                Op::Le => v <= *want,
                Op::Lt => v < *want,
                Op::Eq => v == *want,
                Op::Ne => v != *want,
            })
        })
    }
}

/// Turns a user query's text rows into families.
pub fn to_families(
    q: &UserQuery,
    server: &str,
    columns: &[String],
    rows: &[Vec<Option<String>>],
) -> Vec<MetricFamily> {
    let spec_of = |c: &str| q.columns.iter().find(|s| s.name == c);
    let label_idx: Vec<(usize, &Column)> = columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            spec_of(c)
                .filter(|s| s.usage == Usage::Label)
                .map(|s| (i, s))
        })
        .collect();
    let mut fams: Vec<Option<MetricFamily>> = columns
        .iter()
        .map(|c| match spec_of(c) {
            Some(s) => match s.usage {
                Usage::Label | Usage::Discard => None,
                Usage::Counter => Some(MetricFamily::new(
                    s.family.clone(),
                    s.help.clone(),
                    MetricType::Counter,
                )),
                _ => Some(MetricFamily::new(
                    s.family.clone(),
                    s.help.clone(),
                    MetricType::Gauge,
                )),
            },
            None => Some(MetricFamily::new(
                format!("{}_{c}", q.name),
                format!("Unknown metric from {}", q.name),
                MetricType::Untyped,
            )),
        })
        .collect();
    for row in rows {
        let labels: Vec<(LabelName, LabelValue)> = label_idx
            .iter()
            .map(|(i, s)| {
                (
                    Cow::Owned(s.name.clone()),
                    LabelValue::from(row.get(*i).cloned().flatten().unwrap_or_default()),
                )
            })
            .chain(std::iter::once((Cow::Borrowed("server"), server.into())))
            .collect();
        for (i, fam) in fams.iter_mut().enumerate() {
            let Some(fam) = fam else { continue };
            let text = row.get(i).cloned().flatten();
            let value = match spec_of(&columns[i]).map(|s| (s.usage, s)) {
                Some((Usage::MappedMetric, s)) => {
                    text.as_deref().and_then(|t| s.mapping.get(t).copied())
                }
                Some((Usage::Duration, _)) => match text.as_deref() {
                    None | Some("-1") => Some(f64::NAN),
                    Some(t) => parse_interval_ms(t),
                },
                _ => match text.as_deref() {
                    None => Some(f64::NAN),
                    Some(t) => text_to_f64(t),
                },
            };
            if let Some(v) = value {
                fam.add_owned(labels.clone(), v);
            }
        }
    }
    fams.into_iter()
        .flatten()
        .filter(|f| !f.metrics.is_empty())
        .collect()
}

/// A text result as a number: numbers, booleans, timestamps (Unix seconds).
pub fn text_to_f64(t: &str) -> Option<f64> {
    if let Ok(v) = t.trim().parse::<f64>() {
        return Some(v);
    }
    match t {
        "t" | "true" => Some(1.0),
        "f" | "false" => Some(0.0),
        _ => parse_timestamp(t),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.frac][+HH[:MM]]` → Unix seconds (UTC when no zone).
pub fn parse_timestamp(t: &str) -> Option<f64> {
    let t = t.trim();
    let (date, rest) = t.split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let zone_at = rest.find(['+', '-', 'Z']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let mut tp = time.split(':');
    let h: f64 = tp.next()?.parse().ok()?;
    let mi: f64 = tp.next()?.parse().ok()?;
    let s: f64 = tp.next().unwrap_or("0").parse().ok()?;
    let offset = match zone {
        "" | "Z" => 0.0,
        z => {
            let sign = if z.starts_with('-') { -1.0 } else { 1.0 };
            let mut zp = z[1..].split(':');
            let zh: f64 = zp.next()?.parse().ok()?;
            let zm: f64 = zp.next().unwrap_or("0").parse().ok()?;
            sign * (zh * 3600.0 + zm * 60.0)
        }
    };
    // Days from the civil date (proleptic Gregorian).
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days as f64 * 86400.0 + h * 3600.0 + mi * 60.0 + s - offset)
}

/// A PostgreSQL interval (`1 day 02:03:04.5`, `-00:00:01`, `3 mons`) or a
/// Go duration (`1h30m`) in milliseconds.
pub fn parse_interval_ms(t: &str) -> Option<f64> {
    let t = t.trim();
    if let Ok(d) = oxmon_core::parse_duration(t) {
        return Some(d.as_secs_f64() * 1000.0);
    }
    let mut secs = 0.0;
    let mut tokens = t.split_whitespace().peekable();
    let mut seen = false;
    while let Some(tok) = tokens.next() {
        if tok.contains(':') {
            let neg = tok.starts_with('-');
            let mut parts = tok.trim_start_matches(['-', '+']).split(':');
            let h: f64 = parts.next()?.parse().ok()?;
            let m: f64 = parts.next()?.parse().ok()?;
            let s: f64 = parts.next().unwrap_or("0").parse().ok()?;
            let v = h * 3600.0 + m * 60.0 + s;
            secs += if neg { -v } else { v };
            seen = true;
        } else {
            let n: f64 = tok.parse().ok()?;
            let unit = tokens.next()?;
            let per = match unit.trim_end_matches('s') {
                "year" => 365.25 * 86400.0,
                "mon" => 30.0 * 86400.0,
                "day" => 86400.0,
                "hour" => 3600.0,
                "min" => 60.0,
                "sec" => 1.0,
                _ => return None,
            };
            secs += n * per;
            seen = true;
        }
    }
    seen.then_some(secs * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
pg_custom:
  query: "SELECT datname, n, state, took FROM x"
  master: true
  cache_seconds: 30
  runonserver: ">=12.0.0"
  metrics:
    - datname:
        usage: "LABEL"
        description: "Database"
    - n:
        usage: "GAUGE"
        description: "Count"
    - state:
        usage: "MAPPEDMETRIC"
        description: "State"
        metric_mapping: {up: 1, down: 0}
    - took:
        usage: "DURATION"
        description: "Time"
"#;

    #[test]
    fn parses_the_postgres_exporter_format() {
        let q = parse("q.yaml", GOOD).unwrap();
        assert_eq!(q.queries.len(), 1);
        let p = &q.queries[0];
        assert!(p.master);
        assert_eq!(p.cache, Duration::from_secs(30));
        assert!(p.runonserver.matches(150004));
        assert!(!p.runonserver.matches(110000));
        assert_eq!(p.columns[3].family, "pg_custom_took_milliseconds");
        assert_eq!(q.hashsum.len(), 64);
    }

    #[test]
    fn errors_name_file_line_query_and_column() {
        let bad = GOOD.replace("\"GAUGE\"", "\"GAUGEE\"");
        let e = parse("/etc/q.yaml", &bad).unwrap_err();
        assert!(e.contains("/etc/q.yaml"), "{e}");
        assert!(e.contains("line 12"), "{e}");
        assert!(e.contains("GAUGEE"), "{e}");

        let bad = GOOD.replace("metric_mapping: {up: 1, down: 0}", "");
        let e = parse("/etc/q.yaml", &bad).unwrap_err();
        assert!(
            e.contains("query \"pg_custom\" (line 2)") && e.contains("column \"state\""),
            "{e}"
        );

        let e = parse("q.yaml", "pg_x:\n  metrics: []\n").unwrap_err();
        assert!(e.contains("q.yaml") && e.contains("query"), "{e}");
        let e = parse("q.yaml", "pg_x: [unclosed\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn maps_rows_to_families() {
        let q = parse("q.yaml", GOOD).unwrap();
        let cols: Vec<String> = ["datname", "n", "state", "took", "extra"]
            .map(String::from)
            .to_vec();
        let rows = vec![vec![
            Some("app".to_string()),
            Some("3".to_string()),
            Some("up".to_string()),
            Some("00:00:01.5".to_string()),
            Some("2024-01-01 00:00:00+00".to_string()),
        ]];
        let fams = to_families(&q.queries[0], "h:5432", &cols, &rows);
        let get = |n: &str| fams.iter().find(|f| f.name == n).unwrap();
        let n = get("pg_custom_n");
        assert_eq!(n.kind, MetricType::Gauge);
        assert_eq!(n.metrics[0].labels.len(), 2);
        assert_eq!(n.metrics[0].value, oxmon_core::metrics::Value::Single(3.0));
        assert_eq!(
            get("pg_custom_state").metrics[0].value,
            oxmon_core::metrics::Value::Single(1.0)
        );
        assert_eq!(
            get("pg_custom_took_milliseconds").metrics[0].value,
            oxmon_core::metrics::Value::Single(1500.0)
        );
        let extra = get("pg_custom_extra");
        assert_eq!(extra.kind, MetricType::Untyped);
        assert_eq!(
            extra.metrics[0].value,
            oxmon_core::metrics::Value::Single(1704067200.0)
        );
    }

    #[test]
    fn parses_intervals_and_timestamps() {
        assert_eq!(parse_interval_ms("1 day 02:00:00"), Some(93_600_000.0));
        assert_eq!(parse_interval_ms("-00:00:01"), Some(-1000.0));
        assert_eq!(parse_interval_ms("1h30m"), Some(5_400_000.0));
        assert_eq!(parse_interval_ms("nonsense"), None);
        assert_eq!(parse_timestamp("1970-01-02 00:00:00"), Some(86400.0));
        assert_eq!(
            parse_timestamp("2000-03-01 01:00:00.5+01"),
            Some(951868800.5)
        );
        assert_eq!(text_to_f64("t"), Some(1.0));
        assert_eq!(text_to_f64("abc"), None);
    }
}

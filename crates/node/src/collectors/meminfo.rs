//! meminfo — `/proc/meminfo`.
//!
//! Metrics: one gauge per field, `node_memory_<Field>` — `_bytes` appended
//! and the value multiplied by 1024 for fields given in kB; a parenthesised
//! part becomes an underscore suffix (`Active(anon)` → `Active_anon_bytes`),
//! as node_exporter names them, and any other character that cannot be in
//! a metric name becomes `_`. A line that does not parse (no colon, a value
//! that is not a number, an unknown unit) is left out and fails the
//! collector, naming the line, after the other fields are exported;
//! node_exporter fails the collector without exporting any. On by default.
//! No flags.

use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::parse_f64;
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::field_names::{intern_pair, name_part, names_at, FieldNames};
use crate::file_cache::{lines, read_optional, FileCache};
use crate::malformed::Malformed;

/// One `/proc/meminfo`-style line: the field name, its value in base units
/// (bytes for kB fields) and whether it was given in kB.
#[derive(Debug, Clone, PartialEq)]
pub struct MemField<'a> {
    /// Field name as written (`Active(anon)`).
    pub key: &'a str,
    /// Value, multiplied by 1024 when the unit was kB.
    pub value: f64,
    /// True when the line carried a `kB` unit.
    pub bytes: bool,
}

/// Parses one `Key:   value [kB]` line, or says why it is malformed.
pub fn parse_mem_line(line: &str) -> Result<MemField<'_>, &'static str> {
    let (key, rest) = line
        .split_once(':')
        .ok_or("no colon after the field name")?;
    let key = key.trim();
    if key.is_empty() {
        return Err("no field name");
    }
    let mut parts = rest.split_ascii_whitespace();
    let value: f64 =
        parse_f64(parts.next().ok_or("no value")?).map_err(|_| "the value is not a number")?;
    let bytes = match parts.next() {
        None => false,
        Some("kB") => true,
        Some(_) => return Err("unknown unit (only kB is known)"),
    };
    if parts.next().is_some() {
        return Err("text after the unit");
    }
    let value = if bytes { value * 1024.0 } else { value };
    Ok(MemField { key, value, bytes })
}

/// node_exporter's metric suffix for a field: `Active(anon)` →
/// `Active_anon`; other characters that cannot be in a metric name become
/// `_` (`Bad Name` → `Bad_Name`).
pub fn field_name(key: &str) -> String {
    let renamed = match (key.find('('), key.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            format!(
                "{}_{}{}",
                &key[..open],
                &key[open + 1..close],
                &key[close + 1..]
            )
        }
        _ => key.to_string(),
    };
    name_part(&renamed).into_owned()
}

/// The metric name suffix of a field: `Active(anon)` in kB →
/// `Active_anon_bytes`, `HugePages_Total` → `HugePages_Total`.
pub fn metric_field(key: &str, bytes: bool) -> String {
    let mut field = field_name(key);
    if bytes {
        field.push_str("_bytes");
    }
    field
}

struct Meminfo {
    path: std::path::PathBuf,
    cache: FileCache,
    /// Names of the fields given in kB, by line position.
    byte_names: FieldNames,
    /// Names of the fields without a unit, by line position.
    plain_names: FieldNames,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Meminfo {
        path: ctx.paths.proc("meminfo"),
        cache: FileCache::new().whole_in_one_read(),
        byte_names: FieldNames::default(),
        plain_names: FieldNames::default(),
    }))
}

impl SyncCollector for Meminfo {
    fn name(&self) -> &'static str {
        "meminfo"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "meminfo")? {
            return Ok(());
        }
        let mut byte_names = self.byte_names.lock();
        let mut plain_names = self.plain_names.lock();
        let mut bad = Malformed::default();
        for (i, line) in lines(&buf).enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let f = match parse_mem_line(line) {
                Ok(f) => f,
                Err(why) => {
                    bad.line(i + 1, line, why);
                    continue;
                }
            };
            let names = if f.bytes {
                &mut byte_names
            } else {
                &mut plain_names
            };
            let named = names_at(names, i, f.key, |key| {
                Some(intern_pair("meminfo", &metric_field(key, f.bytes), |f| {
                    (
                        format!("node_memory_{f}"),
                        format!("Memory information field {f}."),
                    )
                }))
            });
            if let Some((name, help)) = named {
                out.push(oxmon_core::gauge(name, help, f.value));
            }
        }
        bad.into_result(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renames_fields() {
        let text = "MemTotal:       16384000 kB\nActive(file):     2048 kB\nHugePages_Total:      4\nbroken line\nDirty: x kB\n";
        let got: Vec<(String, f64)> = text
            .lines()
            .filter_map(|l| parse_mem_line(l).ok())
            .map(|f| (metric_field(f.key, f.bytes), f.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("MemTotal_bytes".to_string(), 16384000.0 * 1024.0),
                ("Active_file_bytes".to_string(), 2048.0 * 1024.0),
                ("HugePages_Total".to_string(), 4.0),
            ]
        );
    }

    #[test]
    fn field_names() {
        assert_eq!(field_name("Inactive(anon)"), "Inactive_anon");
        assert_eq!(field_name("MemFree"), "MemFree");
        assert_eq!(field_name("Bad Name"), "Bad_Name");
    }

    #[test]
    fn malformed_lines_say_why() {
        for (line, why) in [
            ("MemTotal 1 kB", "no colon after the field name"),
            (": 1 kB", "no field name"),
            ("MemTotal:", "no value"),
            ("MemTotal: abc kB", "the value is not a number"),
            ("MemTotal: 1 MB", "unknown unit (only kB is known)"),
            ("MemTotal: 1 kB x", "text after the unit"),
        ] {
            assert_eq!(parse_mem_line(line), Err(why), "{line}");
        }
    }

    /// A field that is not a number fails the collector, naming the line,
    /// and is not exported; the other fields are. A field name that cannot
    /// be a metric name is rewritten, not written as is.
    #[test]
    fn corrupt_fields_fail_the_collector_and_names_are_sanitised() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::collectors::testing::paths_under(dir.path());
        let c = crate::collectors::testing::build("meminfo", &paths);
        std::fs::write(
            dir.path().join("meminfo"),
            "MemTotal:       abc kB\nMemFree:  100 kB\nBad Name:   3 kB\n",
        )
        .unwrap();
        let (out, result) = crate::collectors::testing::try_scrape(c.as_ref());
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("line 1 \"MemTotal:       abc kB\": the value is not a number"),
            "{err}"
        );
        let names: Vec<&str> = out.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(
            names,
            ["node_memory_MemFree_bytes", "node_memory_Bad_Name_bytes"]
        );
    }
}

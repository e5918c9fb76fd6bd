//! meminfo — `/proc/meminfo`.
//!
//! Metrics: one gauge per field, `node_memory_<Field>` — `_bytes` appended
//! and the value multiplied by 1024 for fields given in kB; a parenthesised
//! part becomes an underscore suffix (`Active(anon)` → `Active_anon_bytes`),
//! as node_exporter names them. On by default. No flags.

use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::field_names::{intern_pair, names_at, FieldNames};
use crate::file_cache::{read_optional, FileCache};

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

/// Parses one `Key:   value [kB]` line; `None` for malformed lines.
pub fn parse_mem_line(line: &str) -> Option<MemField<'_>> {
    let (key, rest) = line.split_once(':')?;
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    let mut parts = rest.split_ascii_whitespace();
    let value: f64 = parts.next()?.parse().ok()?;
    match parts.next() {
        None => Some(MemField {
            key,
            value,
            bytes: false,
        }),
        Some("kB") => Some(MemField {
            key,
            value: value * 1024.0,
            bytes: true,
        }),
        Some(_) => None,
    }
}

/// node_exporter's metric suffix for a field: `Active(anon)` → `Active_anon`.
pub fn field_name(key: &str) -> String {
    match (key.find('('), key.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            format!(
                "{}_{}{}",
                &key[..open],
                &key[open + 1..close],
                &key[close + 1..]
            )
        }
        _ => key.to_string(),
    }
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
    names: FieldNames,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Meminfo {
        path: ctx.paths.proc("meminfo"),
        cache: FileCache::new(),
        names: FieldNames::default(),
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
        let mut names = self.names.lock();
        for (i, f) in buf.lines().filter_map(parse_mem_line).enumerate() {
            let named = names_at(&mut names, i, f.key, |key| {
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
        Ok(())
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
            .filter_map(parse_mem_line)
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
    }
}

//! meminfo_numa — per-NUMA-node memory from sysfs
//! (`devices/system/node/node<N>/meminfo` and `numastat`).
//!
//! Metrics: `node_memory_numa_<Field>{node}` (gauges; kB fields in bytes,
//! without a `_bytes` suffix, as node_exporter names them) and
//! `node_memory_numa_<stat>_total{node}` (counters from `numastat`).
//! Field names are made valid metric names as meminfo's are; a line that
//! does not parse is left out and fails the collector after the rest is
//! exported (node_exporter fails without exporting). Off by default. No
//! flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::parse_f64;
use oxmon_core::{Collector, MetricFamily};

use super::meminfo::{field_name, parse_mem_line};
use crate::collectors::Ctx;
use crate::dir_listing::{numbered_entries, Refreshed};
use crate::field_names::{intern_pair, name_part};
use crate::file_cache::{read_optional, FileCache};
use crate::malformed::Malformed;

/// Parses a node's `meminfo` (`Node 0 MemTotal:  123 kB` lines) into
/// `(metric suffix, value in bytes or count)`, and what did not parse.
pub fn parse_node_meminfo(text: &str) -> (Vec<(String, f64)>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // Drop the "Node <n>" prefix.
        let Some(rest) = line.trim_start().strip_prefix("Node") else {
            bad.line(i + 1, line, "no \"Node <n>\" prefix");
            continue;
        };
        let rest = rest
            .trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit());
        match parse_mem_line(rest) {
            Ok(f) => out.push((field_name(f.key), f.value)),
            Err(why) => bad.line(i + 1, line, why),
        }
    }
    (out, bad)
}

/// Parses a node's `numastat` (`numa_hit 123` lines), and what did not
/// parse.
pub fn parse_numastat(text: &str) -> (Vec<(&str, f64)>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate() {
        let mut parts = line.split_ascii_whitespace();
        let Some(key) = parts.next() else { continue };
        match (parts.next().map(parse_f64), parts.next()) {
            (Some(Ok(v)), None) => out.push((key, v)),
            _ => bad.line(i + 1, line, "expected a name and a number"),
        }
    }
    (out, bad)
}

struct MeminfoNuma {
    dir: PathBuf,
    nodes: Refreshed<Vec<(u32, String)>>,
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(MeminfoNuma {
        dir: ctx.paths.sys("devices/system/node"),
        nodes: Refreshed::default(),
        cache: FileCache::new(),
    }))
}

impl SyncCollector for MeminfoNuma {
    fn name(&self) -> &'static str {
        "meminfo_numa"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let nodes = self.nodes.get(|| numbered_entries(&self.dir, "node"))?;
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        let mut result = Ok(());
        for (n, name) in nodes.iter() {
            let node = n.to_string();
            let base = self.dir.join(name);
            let path = base.join("meminfo");
            if read_optional(&mut scope, &path, &mut buf, "meminfo_numa")? {
                let (fields, bad) = parse_node_meminfo(&buf);
                for (field, v) in fields {
                    let (name, help) = intern_pair("meminfo_numa", &field, |f| {
                        (
                            format!("node_memory_numa_{f}"),
                            format!("Memory information field {f}."),
                        )
                    });
                    let mut fam = MetricFamily::gauge(name, help);
                    fam.add(&[("node", &node)], v);
                    out.push(fam);
                }
                result = result.and(bad.into_result(&path));
            }
            let path = base.join("numastat");
            if read_optional(&mut scope, &path, &mut buf, "meminfo_numa")? {
                let (fields, bad) = parse_numastat(&buf);
                for (field, v) in fields {
                    let (name, help) = intern_pair("meminfo_numa_stat", &name_part(field), |f| {
                        (
                            format!("node_memory_numa_{f}_total"),
                            format!("Memory information field {f}_total."),
                        )
                    });
                    let mut fam = MetricFamily::counter(name, help);
                    fam.add(&[("node", &node)], v);
                    out.push(fam);
                }
                result = result.and(bad.into_result(&path));
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_meminfo() {
        let text = "Node 1 MemTotal:       1000 kB\nNode 1 Inactive(file):  2 kB\nNode 1 HugePages_Free:     3\nNode 12 MemFree: 1 kB\nnonsense\n";
        let (fields, bad) = parse_node_meminfo(text);
        assert_eq!(
            fields,
            vec![
                ("MemTotal".into(), 1_024_000.0),
                ("Inactive_file".into(), 2048.0),
                ("HugePages_Free".into(), 3.0),
                ("MemFree".into(), 1024.0),
            ]
        );
        assert_eq!(bad.count(), 1, "nonsense: {bad}");
    }

    #[test]
    fn numastat() {
        let (fields, bad) = parse_numastat("numa_hit 10\nlocal_node 7\nother x\n");
        assert_eq!(fields, vec![("numa_hit", 10.0), ("local_node", 7.0)]);
        assert_eq!(
            bad.to_string(),
            "line 3 \"other x\": expected a name and a number"
        );
    }
}

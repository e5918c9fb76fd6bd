//! meminfo_numa — per-NUMA-node memory from sysfs
//! (`devices/system/node/node<N>/meminfo` and `numastat`).
//!
//! Metrics: `node_memory_numa_<Field>{node}` (gauges; kB fields in bytes,
//! without a `_bytes` suffix, as node_exporter names them) and
//! `node_memory_numa_<stat>_total{node}` (counters from `numastat`).
//! Off by default. No flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use super::meminfo::{field_name, parse_mem_line};
use crate::collectors::Ctx;
use crate::dir_listing::{numbered_entries, Refreshed};
use crate::field_names::intern_pair;
use crate::file_cache::FileCache;

/// Parses a node's `meminfo` (`Node 0 MemTotal:  123 kB` lines) into
/// `(metric suffix, value in bytes or count)`.
pub fn parse_node_meminfo(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|line| {
            // Drop the "Node <n>" prefix.
            let mut rest = line.trim_start().strip_prefix("Node")?.trim_start();
            rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            let f = parse_mem_line(rest)?;
            Some((field_name(f.key), f.value))
        })
        .collect()
}

/// Parses a node's `numastat` (`numa_hit 123` lines).
pub fn parse_numastat(text: &str) -> Vec<(&str, f64)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_ascii_whitespace();
            let key = parts.next()?;
            let v = parts.next()?.parse().ok()?;
            Some((key, v))
        })
        .collect()
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
        for (n, name) in nodes.iter() {
            let node = n.to_string();
            let base = self.dir.join(name);
            if scope.read_into(&base.join("meminfo"), &mut buf).is_ok() {
                for (field, v) in parse_node_meminfo(&buf) {
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
            }
            if scope.read_into(&base.join("numastat"), &mut buf).is_ok() {
                for (field, v) in parse_numastat(&buf) {
                    let (name, help) = intern_pair("meminfo_numa_stat", field, |f| {
                        (
                            format!("node_memory_numa_{f}_total"),
                            format!("Memory information field {f}_total."),
                        )
                    });
                    let mut fam = MetricFamily::counter(name, help);
                    fam.add(&[("node", &node)], v);
                    out.push(fam);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_meminfo() {
        let text = "Node 1 MemTotal:       1000 kB\nNode 1 Inactive(file):  2 kB\nNode 1 HugePages_Free:     3\nNode 12 MemFree: 1 kB\nnonsense\n";
        assert_eq!(
            parse_node_meminfo(text),
            vec![
                ("MemTotal".into(), 1_024_000.0),
                ("Inactive_file".into(), 2048.0),
                ("HugePages_Free".into(), 3.0),
                ("MemFree".into(), 1024.0),
            ]
        );
    }

    #[test]
    fn numastat() {
        assert_eq!(
            parse_numastat("numa_hit 10\nlocal_node 7\n"),
            vec![("numa_hit", 10.0), ("local_node", 7.0)]
        );
    }
}

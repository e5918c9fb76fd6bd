//! softirqs — per-CPU softirq counts from `/proc/softirqs`.
//!
//! Metric: `node_softirqs_functions_total{cpu,type}` (counter). Off by
//! default. No flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};

/// Parses `/proc/softirqs` into `(cpu number, type, count)`.
pub fn parse_softirqs(text: &str) -> Vec<(String, String, f64)> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cpus: Vec<String> = header
        .split_ascii_whitespace()
        .map(|c| c.strip_prefix("CPU").unwrap_or(c).to_string())
        .collect();
    let mut out = Vec::new();
    for line in lines {
        let Some((kind, counts)) = line.split_once(':') else {
            continue;
        };
        let kind = kind.trim();
        for (cpu, v) in cpus.iter().zip(counts.split_ascii_whitespace()) {
            if let Ok(v) = v.parse::<u64>() {
                out.push((cpu.clone(), kind.to_string(), v as f64));
            }
        }
    }
    out
}

struct Softirqs {
    path: PathBuf,
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Softirqs {
        path: ctx.paths.proc("softirqs"),
        cache: FileCache::new(),
    }))
}

impl SyncCollector for Softirqs {
    fn name(&self) -> &'static str {
        "softirqs"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "softirqs")? {
            return Ok(());
        }
        let mut f =
            MetricFamily::counter("node_softirqs_functions_total", "Softirq counts per CPU.");
        for (cpu, kind, v) in parse_softirqs(&buf) {
            f.add(&[("cpu", &cpu), ("type", &kind)], v);
        }
        out.push(f);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let text = "                    CPU0       CPU1\n          HI:          3          4\n       TIMER:        100 x\n";
        assert_eq!(
            parse_softirqs(text),
            vec![
                ("0".into(), "HI".into(), 3.0),
                ("1".into(), "HI".into(), 4.0),
                ("0".into(), "TIMER".into(), 100.0),
            ]
        );
    }
}

//! swap: swap devices and files.
//!
//! Source: `<procfs>/swaps` (`Filename Type Size Used Priority`, sizes in
//! KiB). Metrics: gauges `node_swap_size_bytes`, `node_swap_used_bytes` and
//! `node_swap_priority`, labelled `device` (the file name as the kernel
//! writes it) and `type` (`partition`, `file`). A line without five columns
//! or with non-integer numbers is left out and fails the collector after
//! the rest is exported. Off by default; no flags. Without the file it
//! reports nothing; with no swap configured, no series.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};
use crate::malformed::Malformed;

/// One swap area.
#[derive(Debug, PartialEq)]
pub struct SwapArea<'a> {
    /// Device or file name.
    pub device: &'a str,
    /// `partition` or `file`.
    pub kind: &'a str,
    /// Size in KiB.
    pub size_kib: i64,
    /// Used in KiB.
    pub used_kib: i64,
    /// Priority (negative when not set).
    pub priority: i64,
}

/// Parses `/proc/swaps` (the header line skipped), and what did not parse.
pub fn parse_swaps(text: &str) -> (Vec<SwapArea<'_>>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [device, kind, size, used, priority] = cols[..] else {
            bad.line(i + 1, line, format!("{} columns, expected 5", cols.len()));
            continue;
        };
        match (size.parse(), used.parse(), priority.parse()) {
            (Ok(size_kib), Ok(used_kib), Ok(priority)) => out.push(SwapArea {
                device,
                kind,
                size_kib,
                used_kib,
                priority,
            }),
            _ => bad.line(i + 1, line, "size, used or priority is not an integer"),
        }
    }
    (out, bad)
}

struct Swap {
    path: PathBuf,
    cache: FileCache,
}

impl SyncCollector for Swap {
    fn name(&self) -> &'static str {
        "swap"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "swap")? {
            return Ok(());
        }
        let (areas, bad) = parse_swaps(&buf);
        let mut size = MetricFamily::gauge("node_swap_size_bytes", "Swap device size in bytes.");
        let mut used = MetricFamily::gauge("node_swap_used_bytes", "Swap device used in bytes.");
        let mut priority = MetricFamily::gauge("node_swap_priority", "Swap device priority.");
        for a in &areas {
            let labels = [("device", a.device), ("type", a.kind)];
            size.add(&labels, a.size_kib as f64 * 1024.0);
            used.add(&labels, a.used_kib as f64 * 1024.0);
            priority.add(&labels, a.priority as f64);
        }
        out.extend([size, used, priority]);
        bad.into_result(&self.path)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Swap {
        path: ctx.paths.proc("swaps"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_and_bad_lines() {
        let (a, bad) = parse_swaps(
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/dm-1   partition\t16777212\t1024\t-2\n/swap\\040file file 1024 0 10\n/dev/sdb2 partition x 0 1\n/dev/sdb3 partition 1 2\n",
        );
        assert_eq!(
            a,
            [
                SwapArea {
                    device: "/dev/dm-1",
                    kind: "partition",
                    size_kib: 16777212,
                    used_kib: 1024,
                    priority: -2
                },
                SwapArea {
                    device: "/swap\\040file",
                    kind: "file",
                    size_kib: 1024,
                    used_kib: 0,
                    priority: 10
                },
            ]
        );
        assert_eq!(bad.count(), 2);
        assert!(parse_swaps("Filename Type Size Used Priority\n")
            .0
            .is_empty());
    }
}

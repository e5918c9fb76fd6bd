//! buddyinfo: free memory blocks per zone and order.
//!
//! Source: `<procfs>/buddyinfo` (`Node 0, zone   Normal  4381 1093 …`, one
//! count per block order). Metric: gauge
//! `node_buddyinfo_blocks{node,zone,size}` (`size` is the order). A line
//! that does not have that shape, or whose count of orders differs from
//! the first line's, is left out and fails the collector after the rest is
//! exported. Off by default; no flags. Without the file it reports
//! nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};
use crate::malformed::Malformed;

/// One zone's line.
#[derive(Debug, PartialEq)]
pub struct BuddyZone<'a> {
    /// NUMA node.
    pub node: &'a str,
    /// Zone name.
    pub zone: &'a str,
    /// Free blocks of each order.
    pub blocks: Vec<f64>,
}

/// Parses `/proc/buddyinfo`, and what did not parse.
pub fn parse_buddyinfo(text: &str) -> (Vec<BuddyZone<'_>>, Malformed) {
    let mut out: Vec<BuddyZone<'_>> = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 5 || cols[0] != "Node" || cols[2] != "zone" {
            bad.line(i + 1, line, "expected `Node <n>, zone <name> <counts>`");
            continue;
        }
        let Ok(blocks) = cols[4..]
            .iter()
            .map(|c| c.parse::<u64>().map(|v| v as f64))
            .collect::<Result<Vec<f64>, _>>()
        else {
            bad.line(i + 1, line, "a count is not an unsigned integer");
            continue;
        };
        if let Some(first) = out.first() {
            if first.blocks.len() != blocks.len() {
                bad.line(
                    i + 1,
                    line,
                    format!(
                        "{} orders, the first line has {}",
                        blocks.len(),
                        first.blocks.len()
                    ),
                );
                continue;
            }
        }
        out.push(BuddyZone {
            node: cols[1].trim_end_matches(','),
            zone: cols[3],
            blocks,
        });
    }
    (out, bad)
}

struct Buddyinfo {
    path: PathBuf,
    cache: FileCache,
}

impl SyncCollector for Buddyinfo {
    fn name(&self) -> &'static str {
        "buddyinfo"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "buddyinfo")? {
            return Ok(());
        }
        let (zones, bad) = parse_buddyinfo(&buf);
        let mut fam = MetricFamily::gauge(
            "node_buddyinfo_blocks",
            "Count of free blocks according to size.",
        );
        for z in &zones {
            for (size, &v) in z.blocks.iter().enumerate() {
                let size = size.to_string();
                fam.add(&[("node", z.node), ("zone", z.zone), ("size", &size)], v);
            }
        }
        out.push(fam);
        bad.into_result(&self.path)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Buddyinfo {
        path: ctx.paths.proc("buddyinfo"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_bad_lines() {
        let (z, bad) = parse_buddyinfo(
            "Node 0, zone      DMA      1      0      3\nNode 1, zone   Normal   4 5 6 \n",
        );
        assert!(bad.is_empty());
        assert_eq!(z.len(), 2);
        assert_eq!((z[1].node, z[1].zone), ("1", "Normal"));
        assert_eq!(z[0].blocks, [1.0, 0.0, 3.0]);
        let (z, bad) =
            parse_buddyinfo("Node 0, zone DMA 1 2\nNode 0, zone X 1\nNode 0 zone Y 1 x\nfoo\n");
        assert_eq!(z.len(), 1);
        assert_eq!(bad.count(), 3);
    }
}

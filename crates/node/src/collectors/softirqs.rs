//! softirqs — per-CPU softirq counts from `/proc/softirqs`.
//!
//! Metric: `node_softirqs_functions_total{cpu,type}` (counter). A row
//! whose counts are not numbers, or not one per CPU of the header, is left
//! out and fails the collector after the other rows are exported. Off by
//! default. No flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};
use crate::malformed::Malformed;

/// Parses `/proc/softirqs` into `(cpu number, type, count)`, and what did
/// not parse.
pub fn parse_softirqs(text: &str) -> (Vec<(String, String, f64)>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return (out, bad);
    };
    let cpus: Vec<String> = header
        .split_ascii_whitespace()
        .map(|c| c.strip_prefix("CPU").unwrap_or(c).to_string())
        .collect();
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        if line.trim().is_empty() {
            continue;
        }
        let Some((kind, counts)) = line.split_once(':') else {
            bad.line(line_no, line, "no colon after the softirq name");
            continue;
        };
        let counts: Result<Vec<u64>, _> = counts.split_ascii_whitespace().map(str::parse).collect();
        match counts {
            Ok(counts) if counts.len() == cpus.len() => {
                let kind = kind.trim();
                for (cpu, v) in cpus.iter().zip(counts) {
                    out.push((cpu.clone(), kind.to_string(), v as f64));
                }
            }
            Ok(counts) => bad.line(
                line_no,
                line,
                format!("{} counts for {} CPUs", counts.len(), cpus.len()),
            ),
            Err(_) => bad.line(line_no, line, "a count is not a number"),
        }
    }
    (out, bad)
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
        let (counts, bad) = parse_softirqs(&buf);
        for (cpu, kind, v) in counts {
            f.add(&[("cpu", &cpu), ("type", &kind)], v);
        }
        out.push(f);
        bad.into_result(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let text = "                    CPU0       CPU1\n          HI:          3          4\n       TIMER:        100 x\n       NET_TX:        100\n";
        let (counts, bad) = parse_softirqs(text);
        assert_eq!(
            counts,
            vec![
                ("0".into(), "HI".into(), 3.0),
                ("1".into(), "HI".into(), 4.0),
            ]
        );
        assert_eq!(bad.count(), 2, "{bad}");
    }
}

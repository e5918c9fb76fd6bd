//! schedstat — per-CPU scheduler statistics from `/proc/schedstat`.
//!
//! Metrics (counters, per `cpu`): `node_schedstat_running_seconds_total`,
//! `node_schedstat_waiting_seconds_total` (ns in the file),
//! `node_schedstat_timeslices_total`. On by default. No flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};

/// One CPU's line: `(cpu, running ns, waiting ns, timeslices)`.
pub type SchedCpu<'a> = (&'a str, f64, f64, f64);

/// Parses the `cpuN` lines of `/proc/schedstat` (fields 7, 8 and 9).
pub fn parse_schedstat(text: &str) -> Vec<SchedCpu<'_>> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_ascii_whitespace();
            let cpu = parts.next()?.strip_prefix("cpu")?;
            if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let fields: Vec<u64> = parts.map_while(|p| p.parse().ok()).collect();
            if fields.len() < 9 {
                return None;
            }
            Some((cpu, fields[6] as f64, fields[7] as f64, fields[8] as f64))
        })
        .collect()
}

struct Schedstat {
    path: PathBuf,
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Schedstat {
        path: ctx.paths.proc("schedstat"),
        cache: FileCache::new(),
    }))
}

impl SyncCollector for Schedstat {
    fn name(&self) -> &'static str {
        "schedstat"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "schedstat")? {
            return Ok(());
        }
        let mut running = MetricFamily::counter(
            "node_schedstat_running_seconds_total",
            "Number of seconds CPU spent running a process.",
        );
        let mut waiting = MetricFamily::counter(
            "node_schedstat_waiting_seconds_total",
            "Number of seconds spent by processing waiting for this CPU.",
        );
        let mut slices = MetricFamily::counter(
            "node_schedstat_timeslices_total",
            "Number of timeslices executed by CPU.",
        );
        for (cpu, run_ns, wait_ns, n) in parse_schedstat(&buf) {
            running.add(&[("cpu", cpu)], run_ns / 1e9);
            waiting.add(&[("cpu", cpu)], wait_ns / 1e9);
            slices.add(&[("cpu", cpu)], n);
        }
        out.extend([running, waiting, slices]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lines() {
        let text = "version 15\ntimestamp 4294\ncpu0 0 0 0 0 0 0 1500000000 250000000 42\ndomain0 3 1 2 3\ncpu1 1 2\n";
        assert_eq!(parse_schedstat(text), vec![("0", 1.5e9, 2.5e8, 42.0)]);
    }
}

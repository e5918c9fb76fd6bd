//! schedstat — per-CPU scheduler statistics from `/proc/schedstat`.
//!
//! Metrics (counters, per `cpu`): `node_schedstat_running_seconds_total`,
//! `node_schedstat_waiting_seconds_total` (ns in the file),
//! `node_schedstat_timeslices_total`. A `cpu<N>` line with fewer than nine
//! numbers is left out and fails the collector after the other CPUs are
//! exported (node_exporter fails). On by default. No flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{lines, read_optional, FileCache};
use crate::malformed::Malformed;

/// One CPU's line: `(cpu, running ns, waiting ns, timeslices)`.
pub type SchedCpu<'a> = (&'a str, f64, f64, f64);

/// Parses the `cpu<N>` lines of `/proc/schedstat` (the version, timestamp
/// and domain lines are skipped), and what did not parse.
pub fn parse_schedstat(text: &str) -> (Vec<SchedCpu<'_>>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate() {
        let mut parts = line.split_ascii_whitespace();
        let Some(cpu) = parts.next().and_then(|p| p.strip_prefix("cpu")) else {
            continue;
        };
        if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
            bad.line(i + 1, line, "the CPU number is not a number");
            continue;
        }
        match parts.map(str::parse).collect::<Result<Vec<u64>, _>>() {
            Ok(f) if f.len() >= 9 => out.push((cpu, f[6] as f64, f[7] as f64, f[8] as f64)),
            _ => bad.line(i + 1, line, "expected at least nine numbers"),
        }
    }
    (out, bad)
}

struct Schedstat {
    path: PathBuf,
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Schedstat {
        path: ctx.paths.proc("schedstat"),
        cache: FileCache::remembering_missing(),
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
        let (cpus, bad) = parse_schedstat(&buf);
        for (cpu, run_ns, wait_ns, n) in cpus {
            running.add(&[("cpu", cpu)], run_ns / 1e9);
            waiting.add(&[("cpu", cpu)], wait_ns / 1e9);
            slices.add(&[("cpu", cpu)], n);
        }
        out.extend([running, waiting, slices]);
        bad.into_result(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lines() {
        let text = "version 15\ntimestamp 4294\ncpu0 0 0 0 0 0 0 1500000000 250000000 42\ndomain0 3 1 2 3\ncpu1 1 2\n";
        let (cpus, bad) = parse_schedstat(text);
        assert_eq!(cpus, vec![("0", 1.5e9, 2.5e8, 42.0)]);
        assert_eq!(
            bad.to_string(),
            "line 5 \"cpu1 1 2\": expected at least nine numbers"
        );
    }
}

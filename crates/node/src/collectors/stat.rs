//! stat — kernel counters from `/proc/stat`.
//!
//! Metrics: `node_boot_time_seconds`, `node_context_switches_total`,
//! `node_forks_total`, `node_intr_total`, `node_procs_running`,
//! `node_procs_blocked`; with `--collector.stat.softirq` also
//! `node_softirqs_total{vector}`. A known line whose value is not a number
//! is left out and fails the collector after the rest is exported (as
//! node_exporter fails). On by default.

use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{lines, SharedRead};
use crate::malformed::Malformed;

/// Flags of the stat collector.
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Export softirq counts per vector from /proc/stat
    /// (node_softirqs_total{vector}).
    #[arg(id = "collector.stat.softirq", long = "collector.stat.softirq")]
    pub softirq: bool,
}

/// Softirq vector names in `/proc/stat` order, as node_exporter labels them.
pub const SOFTIRQ_VECTORS: [&str; 10] = [
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "block_iopoll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
];

/// The system-wide counters of `/proc/stat`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stat {
    /// `btime`.
    pub boot_time: Option<f64>,
    /// `ctxt`.
    pub context_switches: Option<f64>,
    /// `processes`.
    pub forks: Option<f64>,
    /// First number of `intr`.
    pub interrupts: Option<f64>,
    /// `procs_running`.
    pub procs_running: Option<f64>,
    /// `procs_blocked`.
    pub procs_blocked: Option<f64>,
    /// Per-vector counts of the `softirq` line (after its total).
    pub softirqs: Vec<f64>,
}

/// Parses `/proc/stat`, ignoring the per-CPU lines (see the cpu
/// collector) and lines it does not know; a known line whose value is not
/// a number is left out and noted.
pub fn parse_stat(text: &str) -> (Stat, Malformed) {
    let mut s = Stat::default();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate() {
        let mut parts = line.split_ascii_whitespace();
        let Some(key) = parts.next() else { continue };
        let slot = match key {
            "btime" => &mut s.boot_time,
            "ctxt" => &mut s.context_switches,
            "processes" => &mut s.forks,
            "intr" => &mut s.interrupts,
            "procs_running" => &mut s.procs_running,
            "procs_blocked" => &mut s.procs_blocked,
            "softirq" => {
                // The total, then the per-vector counts.
                let counts: Result<Vec<f64>, _> = parts.map(str::parse).collect();
                match counts {
                    Ok(counts) if !counts.is_empty() => s.softirqs = counts[1..].to_vec(),
                    _ => bad.line(i + 1, line, "the counts are not all numbers"),
                }
                continue;
            }
            _ => continue,
        };
        match parts.next().map(str::parse) {
            Some(Ok(v)) => *slot = Some(v),
            _ => bad.line(i + 1, line, "the value is not a number"),
        }
    }
    (s, bad)
}

struct StatCollector {
    path: std::path::PathBuf,
    /// Shared with the cpu collector: one read of `/proc/stat` per scrape.
    stat: Arc<SharedRead>,
    softirq: bool,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(StatCollector {
        path: ctx.paths.proc("stat"),
        stat: SharedRead::of(&ctx.paths.proc("stat")),
        softirq: ctx.options.stat.softirq,
    }))
}

impl SyncCollector for StatCollector {
    fn name(&self) -> &'static str {
        "stat"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let Some(buf) = self.stat.read_optional(ctx.id, &self.path, "stat")? else {
            return Ok(());
        };
        let (s, bad) = parse_stat(&buf);
        let mut push =
            |v: Option<f64>, f: fn(&'static str, &'static str, f64) -> MetricFamily, name, help| {
                if let Some(v) = v {
                    out.push(f(name, help, v));
                }
            };
        push(
            s.interrupts,
            counter,
            "node_intr_total",
            "Total number of interrupts serviced.",
        );
        push(
            s.context_switches,
            counter,
            "node_context_switches_total",
            "Total number of context switches.",
        );
        push(
            s.forks,
            counter,
            "node_forks_total",
            "Total number of forks.",
        );
        push(
            s.boot_time,
            gauge,
            "node_boot_time_seconds",
            "Node boot time, in unixtime.",
        );
        push(
            s.procs_running,
            gauge,
            "node_procs_running",
            "Number of processes in runnable state.",
        );
        push(
            s.procs_blocked,
            gauge,
            "node_procs_blocked",
            "Number of processes blocked waiting for I/O to complete.",
        );
        if self.softirq && !s.softirqs.is_empty() {
            let mut f = MetricFamily::counter("node_softirqs_total", "Number of softirq calls.");
            for (vector, v) in SOFTIRQ_VECTORS.iter().zip(&s.softirqs) {
                f.add(&[("vector", vector)], *v);
            }
            out.push(f);
        }
        bad.into_result(&self.path)
    }
}

fn counter(name: &'static str, help: &'static str, v: f64) -> MetricFamily {
    oxmon_core::counter(name, help, v)
}

fn gauge(name: &'static str, help: &'static str, v: f64) -> MetricFamily {
    oxmon_core::gauge(name, help, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "cpu  10 20 30 40 50 60 70 80 0 0
cpu0 10 20 30 40 50 60 70 80 0 0
intr 123456 12 0 7
ctxt 987654
btime 1700000000
processes 4242
procs_running 3
procs_blocked 1
softirq 1000 1 2 3 4 5 6 7 8 9 955
";

    #[test]
    fn parses_counters() {
        let (s, bad) = parse_stat(SAMPLE);
        assert!(bad.is_empty(), "{bad}");
        assert_eq!(s.interrupts, Some(123456.0));
        assert_eq!(s.context_switches, Some(987654.0));
        assert_eq!(s.boot_time, Some(1_700_000_000.0));
        assert_eq!(s.forks, Some(4242.0));
        assert_eq!(s.procs_running, Some(3.0));
        assert_eq!(s.procs_blocked, Some(1.0));
        assert_eq!(
            s.softirqs,
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 955.0]
        );
    }

    #[test]
    fn tolerates_garbage() {
        let (s, bad) = parse_stat("ctxt\nbtime abc\n\nintr 5\n  é\u{e9}x 1\nsoftirq 1 x\n");
        assert_eq!(s.context_switches, None);
        assert_eq!(s.boot_time, None);
        assert_eq!(s.interrupts, Some(5.0));
        assert!(s.softirqs.is_empty());
        assert_eq!(bad.count(), 3, "ctxt, btime and softirq: {bad}");
    }
}

//! pressure — pressure stall information from `/proc/pressure/{cpu,io,memory,irq}`
//! (Linux ≥ 4.20 with PSI enabled).
//!
//! Metrics (counters, seconds): `node_pressure_cpu_waiting_seconds_total`,
//! `node_pressure_io_waiting_seconds_total`,
//! `node_pressure_io_stalled_seconds_total`,
//! `node_pressure_memory_waiting_seconds_total`,
//! `node_pressure_memory_stalled_seconds_total`,
//! `node_pressure_irq_stalled_seconds_total`. "waiting" is the `some`
//! line's total, "stalled" the `full` line's. A line that is neither, or
//! whose `total=` is missing or not a number, is left out and fails the
//! collector after the rest is exported (node_exporter fails). On by
//! default. No flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{lines, read_optional, FileCache};
use crate::malformed::Malformed;

/// The `total=` values (µs) of a PSI file's `some` and `full` lines.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Psi {
    /// `some ... total=`.
    pub some_total_us: Option<f64>,
    /// `full ... total=`.
    pub full_total_us: Option<f64>,
}

/// Parses one PSI file (`some avg10=… total=<µs>` and `full …` lines), and
/// what did not parse.
pub fn parse_psi(text: &str) -> (Psi, Malformed) {
    let mut psi = Psi::default();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate() {
        let mut parts = line.split_ascii_whitespace();
        let slot = match parts.next() {
            None => continue,
            Some("some") => &mut psi.some_total_us,
            Some("full") => &mut psi.full_total_us,
            Some(_) => {
                bad.line(i + 1, line, "neither a some nor a full line");
                continue;
            }
        };
        match parts
            .find_map(|p| p.strip_prefix("total="))
            .map(str::parse::<u64>)
        {
            Some(Ok(us)) => *slot = Some(us as f64),
            _ => bad.line(i + 1, line, "no total= with a number"),
        }
    }
    (psi, bad)
}

/// resource, which line, metric name, help.
type Export = (&'static str, bool, &'static str, &'static str);

const EXPORTS: [Export; 6] = [
    (
        "cpu",
        false,
        "node_pressure_cpu_waiting_seconds_total",
        "Total time in seconds that processes have waited for CPU time",
    ),
    (
        "io",
        false,
        "node_pressure_io_waiting_seconds_total",
        "Total time in seconds that processes have waited due to IO congestion",
    ),
    (
        "io",
        true,
        "node_pressure_io_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IO congestion",
    ),
    (
        "memory",
        false,
        "node_pressure_memory_waiting_seconds_total",
        "Total time in seconds that processes have waited for memory",
    ),
    (
        "memory",
        true,
        "node_pressure_memory_stalled_seconds_total",
        "Total time in seconds no process could make progress due to memory congestion",
    ),
    (
        "irq",
        true,
        "node_pressure_irq_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IRQ congestion",
    ),
];

struct Pressure {
    dir: PathBuf,
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Pressure {
        dir: ctx.paths.proc("pressure"),
        cache: FileCache::remembering_missing().whole_in_one_read(),
    }))
}

impl SyncCollector for Pressure {
    fn name(&self) -> &'static str {
        "pressure"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        let mut result = Ok(());
        for resource in ["cpu", "io", "memory", "irq"] {
            let path = self.dir.join(resource);
            if !read_optional(&mut scope, &path, &mut buf, "pressure")? {
                continue;
            }
            let (psi, bad) = parse_psi(&buf);
            result = result.and(bad.into_result(&path));
            for (_, full, name, help) in EXPORTS.iter().filter(|e| e.0 == resource) {
                let total = if *full {
                    psi.full_total_us
                } else {
                    psi.some_total_us
                };
                if let Some(us) = total {
                    out.push(oxmon_core::counter(*name, *help, us / 1e6));
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_lines() {
        let (p, bad) = parse_psi("some avg10=1.00 avg60=0.50 avg300=0.10 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n");
        assert!(bad.is_empty(), "{bad}");
        assert_eq!(p.some_total_us, Some(2_500_000.0));
        assert_eq!(p.full_total_us, Some(1000.0));
        let (p, bad) = parse_psi("garbage\nsome avg10=1.00 total=x\n");
        assert_eq!(p, Psi::default());
        assert_eq!(bad.count(), 2, "{bad}");
    }
}

//! softnet: per-CPU packet processing statistics.
//!
//! Source: `<procfs>/net/softnet_stat` (hexadecimal columns, one line per
//! CPU). Metrics: counters `node_softnet_processed_total`,
//! `node_softnet_dropped_total`, `node_softnet_times_squeezed_total`,
//! `node_softnet_cpu_collision_total`, `node_softnet_received_rps_total`,
//! `node_softnet_flow_limit_count_total` and the gauge
//! `node_softnet_backlog_len`, all labelled `cpu` (0 where the kernel does
//! not write the backlog, before 5.10, as node_exporter reports it). A line
//! that is not at least 11
//! hexadecimal columns is left out and fails the collector after the other
//! CPUs are exported. On by default; no flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{is_missing, lines, FileCache};
use crate::malformed::Malformed;
use crate::paths::Paths;

/// One CPU's line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoftnetLine {
    /// CPU index: the 13th column when the kernel writes it, else the line
    /// number.
    pub cpu: u32,
    /// Packets processed.
    pub processed: u64,
    /// Packets dropped (backlog full).
    pub dropped: u64,
    /// Times net_rx_action ran out of budget or time.
    pub time_squeeze: u64,
    /// Times a CPU collided taking the transmit lock.
    pub cpu_collision: u64,
    /// Times the CPU was woken by an inter-processor interrupt for RPS.
    pub received_rps: u64,
    /// Times the flow limit was hit.
    pub flow_limit_count: u64,
    /// Current backlog length (kernels that write it).
    pub backlog_len: u64,
}

/// Parses `net/softnet_stat` (one line per CPU; the CPU number is the 13th
/// column where there is one, else the line's position), and what did not
/// parse.
pub fn parse_softnet(text: &str) -> (Vec<SoftnetLine>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate() {
        let cols: Vec<u64> = match line
            .split_ascii_whitespace()
            .map(|c| u64::from_str_radix(c, 16))
            .collect::<Result<_, _>>()
        {
            Ok(c) => c,
            Err(_) => {
                bad.line(i + 1, line, "a column is not hexadecimal");
                continue;
            }
        };
        if cols.len() < 11 {
            bad.line(
                i + 1,
                line,
                format!("{} columns, expected at least 11", cols.len()),
            );
            continue;
        }
        out.push(SoftnetLine {
            cpu: cols.get(12).map_or(i as u32, |&c| c as u32),
            processed: cols[0],
            dropped: cols[1],
            time_squeeze: cols[2],
            cpu_collision: cols[8],
            received_rps: cols[9],
            flow_limit_count: cols[10],
            // Before 5.10 there is no backlog column: node_exporter reports
            // 0, and so does this (its conformance output expects it).
            backlog_len: cols.get(11).copied().unwrap_or(0),
        });
    }
    (out, bad)
}

/// The softnet collector.
pub struct Softnet {
    path: PathBuf,
    cache: FileCache,
}

impl Softnet {
    /// Reads under the given procfs.
    pub fn new(paths: &Paths) -> Self {
        Softnet {
            path: paths.proc("net/softnet_stat"),
            cache: FileCache::remembering_missing(),
        }
    }
}

impl SyncCollector for Softnet {
    fn name(&self) -> &'static str {
        "softnet"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let (lines, bad) = match scope.read(&self.path) {
            Ok(b) => parse_softnet(&crate::file_cache::utf8_text(b)),
            Err(e) if is_missing(&e) => {
                tracing::debug!(path = %self.path.display(), "softnet_stat not available");
                return Ok(());
            }
            Err(e) => return Err(format!("reading {}: {e}", self.path.display()).into()),
        };
        let mut processed = MetricFamily::counter(
            "node_softnet_processed_total",
            "Number of processed packets",
        );
        let mut dropped =
            MetricFamily::counter("node_softnet_dropped_total", "Number of dropped packets");
        let mut squeezed = MetricFamily::counter(
            "node_softnet_times_squeezed_total",
            "Number of times processing packets ran out of quota",
        );
        let mut collision = MetricFamily::counter(
            "node_softnet_cpu_collision_total",
            "Number of collision occur while obtaining device lock while transmitting",
        );
        let mut rps = MetricFamily::counter(
            "node_softnet_received_rps_total",
            "Number of times cpu woken up received_rps",
        );
        let mut flow = MetricFamily::counter(
            "node_softnet_flow_limit_count_total",
            "Number of times flow limit has been reached",
        );
        let mut backlog = MetricFamily::gauge("node_softnet_backlog_len", "Softnet backlog status");
        for l in &lines {
            let cpu = l.cpu.to_string();
            let lab = [("cpu", cpu.as_str())];
            processed.add(&lab, l.processed as f64);
            dropped.add(&lab, l.dropped as f64);
            squeezed.add(&lab, l.time_squeeze as f64);
            collision.add(&lab, l.cpu_collision as f64);
            rps.add(&lab, l.received_rps as f64);
            flow.add(&lab, l.flow_limit_count as f64);
            backlog.add(&lab, l.backlog_len as f64);
        }
        out.extend([processed, dropped, squeezed, collision, rps, flow, backlog]);
        bad.into_result(&self.path)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Softnet::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_old_and_new_layouts() {
        let text = "0000000a 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000003 00000004 00000005\n\
                    000000ff 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000007 00000005\n\
                    zz\n";
        let (p, bad) = parse_softnet(text);
        assert_eq!(p.len(), 2);
        assert_eq!(
            bad.to_string(),
            "line 3 \"zz\": a column is not hexadecimal"
        );
        assert_eq!(
            p[0],
            SoftnetLine {
                cpu: 0,
                processed: 10,
                dropped: 1,
                time_squeeze: 2,
                cpu_collision: 3,
                received_rps: 4,
                flow_limit_count: 5,
                backlog_len: 0
            }
        );
        assert_eq!(p[1].cpu, 5);
        assert_eq!(p[1].backlog_len, 7);
        assert_eq!(p[1].processed, 255);
    }
}

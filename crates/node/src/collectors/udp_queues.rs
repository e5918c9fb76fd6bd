//! udp_queues: bytes waiting in UDP socket queues.
//!
//! Source: `<procfs>/net/udp` and `<procfs>/net/udp6` (the
//! `tx_queue:rx_queue` column, hexadecimal). Metric: gauge
//! `node_udp_queues{ip="v4"|"v6",queue="tx"|"rx"}`, summed over sockets.
//! On by default; no flags. A missing file (no IPv6) reports nothing for
//! that family.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::FileCache;
use crate::paths::Paths;

/// Sums `(tx, rx)` queue bytes over the socket lines; the header and
/// malformed lines are skipped.
pub fn parse_udp_queues(text: &str) -> (u64, u64) {
    let (mut tx, mut rx) = (0u64, 0u64);
    for line in text.lines().skip(1) {
        let Some(q) = line.split_whitespace().nth(4) else {
            continue;
        };
        let Some((t, r)) = q.split_once(':') else {
            continue;
        };
        if let (Ok(t), Ok(r)) = (u64::from_str_radix(t, 16), u64::from_str_radix(r, 16)) {
            tx = tx.saturating_add(t);
            rx = rx.saturating_add(r);
        }
    }
    (tx, rx)
}

/// The udp_queues collector.
pub struct UdpQueues {
    v4: PathBuf,
    v6: PathBuf,
    cache: FileCache,
}

impl UdpQueues {
    /// Reads under the given procfs.
    pub fn new(paths: &Paths) -> Self {
        UdpQueues {
            v4: paths.proc("net/udp"),
            v6: paths.proc("net/udp6"),
            cache: FileCache::remembering_missing(),
        }
    }
}

impl SyncCollector for UdpQueues {
    fn name(&self) -> &'static str {
        "udp_queues"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut fam = MetricFamily::gauge(
            "node_udp_queues",
            "Number of allocated memory in the kernel for UDP datagrams in bytes.",
        );
        for (ip, path) in [("v4", &self.v4), ("v6", &self.v6)] {
            match scope.read(path) {
                Ok(b) => {
                    let (tx, rx) = parse_udp_queues(&String::from_utf8_lossy(b));
                    fam.add(&[("ip", ip), ("queue", "tx")], tx as f64);
                    fam.add(&[("ip", ip), ("queue", "rx")], rx as f64);
                }
                Err(e) => {
                    tracing::debug!(path = %path.display(), err = %e, "udp socket table not available")
                }
            }
        }
        if !fam.is_empty() {
            out.push(fam);
        }
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(UdpQueues::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_queues() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   1: 0100007F:0035 00000000:0000 07 00000010:00000002 00:00000000 00000000   101        0 1 2 0\n\
   2: 00000000:0044 00000000:0000 07 00000001:000000A0 00:00000000 00000000     0        0 1 2 0\n\
   3: garbage\n";
        assert_eq!(parse_udp_queues(text), (17, 162));
        assert_eq!(parse_udp_queues(""), (0, 0));
    }
}

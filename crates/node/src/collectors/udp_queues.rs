//! udp_queues: bytes waiting in UDP socket queues.
//!
//! Source: `<procfs>/net/udp` and `<procfs>/net/udp6` (the
//! `tx_queue:rx_queue` column, hexadecimal). Metric: gauge
//! `node_udp_queues{ip="v4"|"v6",queue="tx"|"rx"}`, summed over sockets.
//! On by default; no flags. A missing file (no IPv6) reports nothing for
//! that family. A file without its header line, or a socket line whose
//! queue column is not `hex:hex`, fails the collector; the sums are then
//! not exported for that file (they would be too low).

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{is_missing, FileCache};
use crate::malformed::Malformed;
use crate::paths::Paths;

/// Sums the `tx_queue:rx_queue` column of a `net/udp` table, and what did
/// not parse (a missing header line, a malformed socket line).
pub fn parse_udp_queues(text: &str) -> ((u64, u64), Malformed) {
    let (mut tx, mut rx) = (0u64, 0u64);
    let mut bad = Malformed::default();
    let mut lines = text.lines();
    if !lines.next().is_some_and(|h| h.contains("tx_queue")) {
        bad.note("no header line with tx_queue");
    }
    for (i, line) in lines.enumerate() {
        let queues = line
            .split_ascii_whitespace()
            .nth(4)
            .and_then(|q| q.split_once(':'))
            .and_then(|(t, r)| {
                Some((
                    u64::from_str_radix(t, 16).ok()?,
                    u64::from_str_radix(r, 16).ok()?,
                ))
            });
        match queues {
            Some((t, r)) => {
                tx = tx.saturating_add(t);
                rx = rx.saturating_add(r);
            }
            None => bad.line(i + 2, line, "no tx_queue:rx_queue column"),
        }
    }
    ((tx, rx), bad)
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
        let mut result = Ok(());
        for (ip, path) in [("v4", &self.v4), ("v6", &self.v6)] {
            match scope.read(path) {
                Ok(b) => {
                    let ((tx, rx), bad) = parse_udp_queues(&crate::file_cache::utf8_text(b));
                    if bad.is_empty() {
                        fam.add(&[("ip", ip), ("queue", "tx")], tx as f64);
                        fam.add(&[("ip", ip), ("queue", "rx")], rx as f64);
                    }
                    result = result.and(bad.into_result(path));
                }
                Err(e) if is_missing(&e) => {
                    tracing::debug!(path = %path.display(), "udp socket table not available")
                }
                Err(e) => result = Err(format!("reading {}: {e}", path.display()).into()),
            }
        }
        if !fam.is_empty() {
            out.push(fam);
        }
        result
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
        let (sums, bad) = parse_udp_queues(text);
        assert_eq!(sums, (17, 162));
        assert_eq!(
            bad.to_string(),
            "line 4 \"3: garbage\": no tx_queue:rx_queue column"
        );
        let (sums, bad) = parse_udp_queues("");
        assert_eq!(sums, (0, 0));
        assert_eq!(bad.to_string(), "no header line with tx_queue");
    }
}

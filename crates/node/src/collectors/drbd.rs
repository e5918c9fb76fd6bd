//! drbd: DRBD replicated block devices (DRBD 8.x status file).
//!
//! Source: `<procfs>/drbd`, read as whitespace-separated `key:value`
//! words; `<N>:` starts device `drbd<N>`. Metrics, labelled `device`:
//! counters `node_drbd_{network_sent,network_received,disk_written,
//! disk_read}_bytes_total`, `node_drbd_{activitylog,bitmap}_writes_total`;
//! gauges `node_drbd_{local_pending,remote_pending,remote_unacknowledged,
//! application_pending,epochs,out_of_sync_bytes}`, `node_drbd_connected`;
//! and, labelled `device` and `node` (`local`/`remote`),
//! `node_drbd_node_role_is_primary` and `node_drbd_disk_state_is_up_to_date`.
//! The kernel writes sizes in KiB; they are multiplied by 1024, except `nr`
//! which node_exporter exports unscaled (kept for compatibility).
//! A value that does not parse is left out and fails the collector after
//! the rest is exported. Off by default; no flags. Without DRBD it reports
//! nothing (the missing file is looked for again once a minute).

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};
use crate::malformed::Malformed;

/// `(key, metric, help, is a counter, multiplier)` of the numeric fields.
const NUMERIC: &[(&str, &str, &str, bool, f64)] = &[
    ("ns", "node_drbd_network_sent_bytes_total", "Total number of bytes sent via the network.", true, 1024.0),
    ("nr", "node_drbd_network_received_bytes_total", "Total number of bytes received via the network.", true, 1.0),
    ("dw", "node_drbd_disk_written_bytes_total", "Net data written on local hard disk; in bytes.", true, 1024.0),
    ("dr", "node_drbd_disk_read_bytes_total", "Net data read from local hard disk; in bytes.", true, 1024.0),
    ("al", "node_drbd_activitylog_writes_total", "Number of updates of the activity log area of the meta data.", true, 1.0),
    ("bm", "node_drbd_bitmap_writes_total", "Number of updates of the bitmap area of the meta data.", true, 1.0),
    ("lo", "node_drbd_local_pending", "Number of open requests to the local I/O sub-system.", false, 1.0),
    ("pe", "node_drbd_remote_pending", "Number of requests sent to the peer, but that have not yet been answered by the latter.", false, 1.0),
    ("ua", "node_drbd_remote_unacknowledged", "Number of requests received by the peer via the network connection, but that have not yet been answered.", false, 1.0),
    ("ap", "node_drbd_application_pending", "Number of block I/O requests forwarded to DRBD, but not yet answered by DRBD.", false, 1.0),
    ("ep", "node_drbd_epochs", "Number of Epochs currently on the fly.", false, 1.0),
    ("oos", "node_drbd_out_of_sync_bytes", "Amount of data known to be out of sync; in bytes.", false, 1024.0),
];

/// `(key, metric, help, the value that counts as 1)` of the `local/remote`
/// pairs.
const PAIRS: &[(&str, &str, &str, &str)] = &[
    (
        "ro",
        "node_drbd_node_role_is_primary",
        "Whether the role of the node is in the primary state.",
        "Primary",
    ),
    (
        "ds",
        "node_drbd_disk_state_is_up_to_date",
        "Whether the disk of the node is up to date.",
        "UpToDate",
    ),
];

/// Parses `/proc/drbd` into its families (numeric ones in [`NUMERIC`]
/// order, then the pairs, then `node_drbd_connected`) and what did not
/// parse.
pub fn parse_drbd(text: &str) -> (Vec<MetricFamily>, Malformed) {
    let mut numeric: Vec<MetricFamily> = NUMERIC
        .iter()
        .map(|(_, name, help, counter, _)| {
            if *counter {
                MetricFamily::counter(*name, *help)
            } else {
                MetricFamily::gauge(*name, *help)
            }
        })
        .collect();
    let mut pairs: Vec<MetricFamily> = PAIRS
        .iter()
        .map(|(_, name, help, _)| MetricFamily::gauge(*name, *help))
        .collect();
    let mut connected = MetricFamily::gauge(
        "node_drbd_connected",
        "Whether DRBD is connected to the peer.",
    );
    let mut bad = Malformed::default();
    let mut device = "unknown".to_string();
    for (i, line) in text.lines().enumerate() {
        for word in line.split_whitespace() {
            let mut parts = word.split(':');
            let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if value.is_empty() {
                if let Ok(id) = key.parse::<u64>() {
                    device = format!("drbd{id}");
                }
                continue;
            }
            if let Some(n) = NUMERIC.iter().position(|(k, ..)| *k == key) {
                match value.parse::<f64>() {
                    Ok(v) => {
                        numeric[n].add(&[("device", &device)], v * NUMERIC[n].4);
                    }
                    Err(_) => bad.line(i + 1, line, format!("{key}: not a number")),
                }
            } else if let Some(n) = PAIRS.iter().position(|(k, ..)| *k == key) {
                let ok = PAIRS[n].3;
                match value.split_once('/') {
                    Some((local, remote)) => {
                        let is = |s: &str| if s == ok { 1.0 } else { 0.0 };
                        pairs[n].add(&[("device", &device), ("node", "local")], is(local));
                        let remote = remote.split('/').next().unwrap_or(remote);
                        pairs[n].add(&[("device", &device), ("node", "remote")], is(remote));
                    }
                    None => bad.line(i + 1, line, format!("{key}: not local/remote")),
                }
            } else if key == "cs" {
                let up = if value == "Connected" { 1.0 } else { 0.0 };
                connected.add(&[("device", &device)], up);
            }
        }
    }
    numeric.extend(pairs);
    numeric.push(connected);
    (numeric, bad)
}

/// The drbd collector.
pub struct Drbd {
    path: PathBuf,
    cache: FileCache,
}

impl SyncCollector for Drbd {
    fn name(&self) -> &'static str {
        "drbd"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut text = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut text, "drbd")? {
            return Ok(());
        }
        let (families, bad) = parse_drbd(&text);
        out.extend(families);
        bad.into_result(&self.path)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Drbd {
        path: ctx.paths.proc("drbd"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::single;

    #[test]
    fn parses_two_devices() {
        let text = "version: 8.4.11 (api:1/proto:86-101)\n\
                    0: cs:Connected ro:Secondary/Primary ds:UpToDate/Inconsistent C r-----\n    \
                    ns:0 nr:2048 dw:2048 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:4\n\
                    1: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r-----\n    \
                    ns:10 dw:x oos:0\n";
        let (fams, bad) = parse_drbd(text);
        assert_eq!(bad.count(), 1, "{bad}");
        let dev0 = [("device", "drbd0")];
        assert_eq!(
            single(&fams, "node_drbd_network_received_bytes_total", &dev0),
            Some(2048.0)
        );
        assert_eq!(
            single(&fams, "node_drbd_disk_written_bytes_total", &dev0),
            Some(2048.0 * 1024.0)
        );
        assert_eq!(
            single(&fams, "node_drbd_out_of_sync_bytes", &dev0),
            Some(4096.0)
        );
        assert_eq!(single(&fams, "node_drbd_connected", &dev0), Some(1.0));
        assert_eq!(
            single(
                &fams,
                "node_drbd_node_role_is_primary",
                &[("device", "drbd0"), ("node", "remote")]
            ),
            Some(1.0)
        );
        assert_eq!(
            single(
                &fams,
                "node_drbd_disk_state_is_up_to_date",
                &[("device", "drbd0"), ("node", "remote")]
            ),
            Some(0.0)
        );
        let dev1 = [("device", "drbd1")];
        assert_eq!(single(&fams, "node_drbd_connected", &dev1), Some(0.0));
        assert_eq!(
            single(&fams, "node_drbd_network_sent_bytes_total", &dev1),
            Some(10240.0)
        );
        assert!(single(&fams, "node_drbd_disk_written_bytes_total", &dev1).is_none());
    }
}

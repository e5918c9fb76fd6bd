//! qdisc: statistics of each device's root queueing discipline.
//!
//! Source: an rtnetlink `RTM_GETQDISC` dump (`TCA_KIND`, `TCA_STATS2`
//! basic and queue statistics, else the legacy `TCA_STATS`), or with
//! `--collector.qdisc.fixtures=<dir>` the JSON test fixture
//! `<dir>/results.json` (node_exporter's end-to-end format; a missing
//! file is nothing to report). Only root qdiscs (parent `TC_H_ROOT`) are
//! reported. Metrics, all labelled `{device,kind}`: counters
//! `node_qdisc_{bytes,packets,drops,requeues,overlimits}_total`, gauges
//! `node_qdisc_current_queue_length` and `node_qdisc_backlog`.
//! Flags: `--collector.qdisc.device-include` / `--collector.qdisc.device-exclude`
//! (hidden deprecated spellings `--collector.qdisk.*`), `--collector.qdisc.fixtures`.
//! Off by default.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{BoxFuture, CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::netdev::SharedLinks;
use crate::collectors::Ctx;
use crate::device_filter::DeviceFilter;
use crate::file_cache::{is_missing, FileCache};
use crate::go_json;
use crate::netlink::{self, attributes, text, u32_at, u64_at, Netlink};

/// Flags of the qdisc collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// test fixtures to use for qdisc collector end-to-end testing
    #[arg(
        id = "collector.qdisc.fixtures",
        long = "collector.qdisc.fixtures",
        value_name = "DIR",
        default_value = ""
    )]
    pub fixtures: String,
    /// Regexp of qdisc devices to include (mutually exclusive to device-exclude).
    #[arg(
        id = "collector.qdisc.device-include",
        long = "collector.qdisc.device-include",
        value_name = "REGEX"
    )]
    pub device_include: Option<String>,
    /// DEPRECATED: Use collector.qdisc.device-include
    #[arg(
        id = "collector.qdisk.device-include",
        long = "collector.qdisk.device-include",
        value_name = "REGEX",
        hide = true
    )]
    pub old_device_include: Option<String>,
    /// Regexp of qdisc devices to exclude (mutually exclusive to device-include).
    #[arg(
        id = "collector.qdisc.device-exclude",
        long = "collector.qdisc.device-exclude",
        value_name = "REGEX"
    )]
    pub device_exclude: Option<String>,
    /// DEPRECATED: Use collector.qdisc.device-exclude
    #[arg(
        id = "collector.qdisk.device-exclude",
        long = "collector.qdisk.device-exclude",
        value_name = "REGEX",
        hide = true
    )]
    pub old_device_exclude: Option<String>,
}

/// One qdisc's statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QdiscStats {
    /// Interface index (live dumps only).
    pub ifindex: u32,
    /// Interface name.
    pub device: String,
    /// Parent handle; 0 for a root qdisc (the kernel's `TC_H_ROOT`
    /// becomes 0, as node_exporter's qdisc library does).
    pub parent: u32,
    /// `TCA_KIND` (`fq_codel`, `pfifo_fast`, `noqueue`).
    pub kind: String,
    /// Bytes sent.
    pub bytes: f64,
    /// Packets sent.
    pub packets: f64,
    /// Packets dropped.
    pub drops: f64,
    /// Packets dequeued, not transmitted, and requeued.
    pub requeues: f64,
    /// Overlimit packets.
    pub overlimits: f64,
    /// Packets in the queue.
    pub qlen: f64,
    /// Bytes in the queue.
    pub backlog: f64,
}

const RTM_NEWQDISC: u16 = 36;
const RTM_GETQDISC: u16 = 38;
const TCA_KIND: u16 = 1;
const TCA_STATS: u16 = 3;
const TCA_STATS2: u16 = 7;
const TCA_STATS_BASIC: u16 = 1;
const TCA_STATS_QUEUE: u16 = 3;
const TC_H_ROOT: u32 = u32::MAX;
/// Length of `struct tcmsg`.
const TCMSG_LEN: usize = 20;

/// Parses an `RTM_NEWQDISC` payload (`struct tcmsg` + attributes); `None`
/// when it is shorter than a tcmsg. The device name is left empty.
pub fn parse_qdisc(p: &[u8]) -> Option<QdiscStats> {
    let parent = u32_at(p, 12)?;
    let mut q = QdiscStats {
        ifindex: u32_at(p, 4)?,
        parent: if parent == TC_H_ROOT { 0 } else { parent },
        ..QdiscStats::default()
    };
    let mut have_stats2 = false;
    let mut legacy = None;
    for (ty, val) in attributes(p.get(TCMSG_LEN..)?) {
        match ty {
            TCA_KIND => q.kind = text(val),
            TCA_STATS2 => {
                have_stats2 = true;
                for (ty, val) in attributes(val) {
                    match ty {
                        // gnet_stats_basic: u64 bytes, u32 packets.
                        TCA_STATS_BASIC => {
                            q.bytes = u64_at(val, 0).unwrap_or(0) as f64;
                            q.packets = f64::from(u32_at(val, 8).unwrap_or(0));
                        }
                        // gnet_stats_queue: qlen, backlog, drops, requeues, overlimits.
                        TCA_STATS_QUEUE => {
                            let at = |i| f64::from(u32_at(val, i).unwrap_or(0));
                            q.qlen = at(0);
                            q.backlog = at(4);
                            q.drops = at(8);
                            q.requeues = at(12);
                            q.overlimits = at(16);
                        }
                        _ => {}
                    }
                }
            }
            TCA_STATS => legacy = Some(val),
            _ => {}
        }
    }
    // tc_stats: u64 bytes, then u32 packets, drops, overlimits, bps, pps,
    // qlen, backlog. Only kernels without TCA_STATS2 need it.
    if let (false, Some(val)) = (have_stats2, legacy) {
        let at = |i| f64::from(u32_at(val, i).unwrap_or(0));
        q.bytes = u64_at(val, 0).unwrap_or(0) as f64;
        q.packets = at(8);
        q.drops = at(12);
        q.overlimits = at(16);
        q.qlen = at(28);
        q.backlog = at(32);
    }
    Some(q)
}

/// Parses a `results.json` fixture: an array of objects with Go's field
/// names (`IfaceName`, `Parent`, `Kind`, `Bytes`, …; missing ones are 0).
pub fn parse_fixture(text: &str) -> Result<Vec<QdiscStats>, String> {
    Ok(go_json::objects(text)?
        .iter()
        .map(|o| QdiscStats {
            ifindex: 0,
            device: go_json::string(o, "IfaceName"),
            parent: go_json::number(o, "Parent") as u32,
            kind: go_json::string(o, "Kind"),
            bytes: go_json::number(o, "Bytes"),
            packets: go_json::number(o, "Packets"),
            drops: go_json::number(o, "Drops"),
            requeues: go_json::number(o, "Requeues"),
            overlimits: go_json::number(o, "Overlimits"),
            qlen: go_json::number(o, "Qlen"),
            backlog: go_json::number(o, "Backlog"),
        })
        .collect())
}

/// The qdisc collector.
pub struct Qdisc {
    fixture: Option<PathBuf>,
    filter: DeviceFilter,
    nl: Netlink,
    cache: FileCache,
}

/// The new flag, else its deprecated spelling (with a warning); both is an
/// error, as in node_exporter.
fn pick(new: &Option<String>, old: &Option<String>, flag: &str) -> Result<Option<String>, String> {
    let new = new.clone().filter(|s| !s.is_empty());
    let old = old.clone().filter(|s| !s.is_empty());
    match (new, old) {
        (Some(_), Some(_)) => Err(format!(
            "--collector.qdisk.{flag} and --collector.qdisc.{flag} are mutually exclusive"
        )),
        (None, Some(o)) => {
            tracing::warn!("--collector.qdisk.{flag} is DEPRECATED, use --collector.qdisc.{flag}");
            Ok(Some(o))
        }
        (new, None) => Ok(new),
    }
}

impl Qdisc {
    /// Builds the collector from the flags.
    pub fn new(ctx: &Ctx<'_>) -> Result<Self, String> {
        let f = &ctx.options.qdisc;
        let include = pick(&f.device_include, &f.old_device_include, "device-include")?;
        let exclude = pick(&f.device_exclude, &f.old_device_exclude, "device-exclude")?;
        Ok(Qdisc {
            fixture: (!f.fixtures.is_empty())
                .then(|| PathBuf::from(&f.fixtures).join("results.json")),
            filter: DeviceFilter::new(
                "collector.qdisc.device",
                include.as_deref(),
                exclude.as_deref(),
            )?,
            nl: Netlink::new(netlink::ROUTE),
            cache: FileCache::remembering_missing(),
        })
    }

    async fn live(&self, ctx: &ScrapeContext) -> Result<Vec<QdiscStats>, CollectError> {
        let mut qdiscs = Vec::new();
        self.nl
            .dump(ctx.deadline, RTM_GETQDISC, &[0; TCMSG_LEN], |ty, p| {
                if ty == RTM_NEWQDISC {
                    qdiscs.extend(parse_qdisc(p).filter(|q| q.parent == 0));
                }
            })
            .await
            .map_err(|e| format!("rtnetlink qdisc dump: {e}"))?;
        let links = SharedLinks::get()
            .links(ctx)
            .await
            .map_err(|e| format!("rtnetlink link dump: {e}"))?;
        for q in &mut qdiscs {
            if let Some(l) = links.iter().find(|l| l.index == q.ifindex) {
                q.device = l.name.clone();
            }
        }
        // A qdisc of a link that went away between the two dumps.
        qdiscs.retain(|q| !q.device.is_empty());
        Ok(qdiscs)
    }

    fn read_fixture(&self, path: &std::path::Path) -> Result<Vec<QdiscStats>, CollectError> {
        let mut scope = self.cache.scope();
        match scope.read(path) {
            Ok(b) => parse_fixture(&String::from_utf8_lossy(b))
                .map_err(|e| format!("parsing {}: {e}", path.display()).into()),
            Err(e) if is_missing(&e) => Ok(Vec::new()),
            Err(e) => Err(format!("reading {}: {e}", path.display()).into()),
        }
    }
}

impl Collector for Qdisc {
    fn name(&self) -> &str {
        "qdisc"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let qdiscs = match &self.fixture {
                Some(path) => self.read_fixture(path)?,
                None => self.live(ctx).await?,
            };
            let mut fams = [
                MetricFamily::counter("node_qdisc_bytes_total", "Number of bytes sent."),
                MetricFamily::counter("node_qdisc_packets_total", "Number of packets sent."),
                MetricFamily::counter("node_qdisc_drops_total", "Number of packets dropped."),
                MetricFamily::counter(
                    "node_qdisc_requeues_total",
                    "Number of packets dequeued, not transmitted, and requeued.",
                ),
                MetricFamily::counter(
                    "node_qdisc_overlimits_total",
                    "Number of overlimit packets.",
                ),
                MetricFamily::gauge(
                    "node_qdisc_current_queue_length",
                    "Number of packets currently in queue to be sent.",
                ),
                MetricFamily::gauge(
                    "node_qdisc_backlog",
                    "Number of bytes currently in queue to be sent.",
                ),
            ];
            for q in &qdiscs {
                if q.parent != 0 || self.filter.ignored(&q.device) {
                    continue;
                }
                let labels = [("device", q.device.as_str()), ("kind", q.kind.as_str())];
                let values = [
                    q.bytes,
                    q.packets,
                    q.drops,
                    q.requeues,
                    q.overlimits,
                    q.qlen,
                    q.backlog,
                ];
                for (fam, v) in fams.iter_mut().zip(values) {
                    fam.add(&labels, v);
                }
            }
            out.extend(fams);
            Ok(())
        })
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(Arc::new(Qdisc::new(ctx)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build_with, paths_under, scrape, try_scrape};
    use crate::netlink::push_attr;

    #[test]
    fn parses_a_root_qdisc_with_stats2() {
        let mut p = vec![0u8; TCMSG_LEN];
        p[4..8].copy_from_slice(&2u32.to_ne_bytes());
        p[12..16].copy_from_slice(&TC_H_ROOT.to_ne_bytes());
        push_attr(&mut p, TCA_KIND, b"fq_codel\0");
        let mut basic = 123_456_789_012u64.to_ne_bytes().to_vec();
        basic.extend_from_slice(&900u32.to_ne_bytes());
        let mut queue = Vec::new();
        for v in [3u32, 4500, 7, 2, 11] {
            queue.extend_from_slice(&v.to_ne_bytes());
        }
        let mut stats2 = Vec::new();
        push_attr(&mut stats2, TCA_STATS_BASIC, &basic);
        push_attr(&mut stats2, TCA_STATS_QUEUE, &queue);
        push_attr(&mut p, 0x8000 | TCA_STATS2, &stats2);
        // A legacy block with other numbers must not override TCA_STATS2.
        push_attr(&mut p, TCA_STATS, &[0xff; 36]);
        let q = parse_qdisc(&p).unwrap();
        assert_eq!((q.ifindex, q.parent, q.kind.as_str()), (2, 0, "fq_codel"));
        assert_eq!((q.bytes, q.packets), (123_456_789_012.0, 900.0));
        assert_eq!(
            (q.qlen, q.backlog, q.drops, q.requeues, q.overlimits),
            (3.0, 4500.0, 7.0, 2.0, 11.0)
        );
        // A child qdisc keeps its parent handle.
        p[12..16].copy_from_slice(&0x0001_0001u32.to_ne_bytes());
        assert_eq!(parse_qdisc(&p).unwrap().parent, 0x0001_0001);
        assert!(parse_qdisc(&p[..10]).is_none());
    }

    #[test]
    fn legacy_stats_fill_in_without_stats2() {
        let mut p = vec![0u8; TCMSG_LEN];
        p[12..16].copy_from_slice(&TC_H_ROOT.to_ne_bytes());
        let mut st = 5000u64.to_ne_bytes().to_vec();
        for v in [50u32, 1, 2, 0, 0, 9, 800] {
            st.extend_from_slice(&v.to_ne_bytes());
        }
        push_attr(&mut p, TCA_STATS, &st);
        let q = parse_qdisc(&p).unwrap();
        assert_eq!(
            (q.bytes, q.packets, q.drops, q.overlimits),
            (5000.0, 50.0, 1.0, 2.0)
        );
        assert_eq!((q.qlen, q.backlog, q.requeues), (9.0, 800.0, 0.0));
    }

    #[test]
    fn fixture_mode_filters_and_skips_children() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("results.json"),
            r#"[{"IfaceName":"eno1","Kind":"mq","Bytes":10,"Packets":2,"Backlog":64},
                {"IfaceName":"eno1","Kind":"fq_codel","Parent":65537,"Bytes":5},
                {"IfaceName":"lo","Kind":"noqueue"}]"#,
        )
        .unwrap();
        let paths = paths_under(dir.path());
        let fixtures = format!("--collector.qdisc.fixtures={}", dir.path().display());
        let c = build_with(
            "qdisc",
            &paths,
            &[&fixtures, "--collector.qdisc.device-exclude=^lo$"],
        );
        let out = scrape(&*c);
        assert_eq!(out.len(), 7);
        let bytes = out
            .iter()
            .find(|f| f.name == "node_qdisc_bytes_total")
            .unwrap();
        assert_eq!(bytes.metrics.len(), 1);
        assert_eq!(bytes.metrics[0].labels[1].1, "mq");
        let backlog = out.iter().find(|f| f.name == "node_qdisc_backlog").unwrap();
        assert_eq!(
            backlog.metrics[0].value,
            oxmon_core::metrics::Value::Single(64.0)
        );
        // Broken JSON fails the scrape with the file named.
        std::fs::write(dir.path().join("results.json"), "[{").unwrap();
        let c = build_with("qdisc", &paths, &[&fixtures]);
        let (_, err) = try_scrape(&*c);
        assert!(err.unwrap_err().to_string().contains("results.json"));
    }

    #[test]
    fn live_dump_reports_the_loopback_root_qdisc_or_nothing() {
        let c = build_with(
            "qdisc",
            &paths_under(std::path::Path::new("/nonexistent")),
            &["--collector.qdisc.device-include=^lo$"],
        );
        let out = scrape(&*c);
        let bytes = out
            .iter()
            .find(|f| f.name == "node_qdisc_bytes_total")
            .unwrap();
        // lo has a root "noqueue" qdisc on current kernels.
        for m in &bytes.metrics {
            assert_eq!(m.labels[0].1, "lo");
        }
    }

    #[test]
    fn old_and_new_flag_spellings_are_exclusive() {
        let paths = paths_under(std::path::Path::new("/nonexistent"));
        let options = crate::collectors::testing::options(&[
            "--collector.qdisc.device-include=a",
            "--collector.qdisk.device-include=b",
        ]);
        let err = Qdisc::new(&Ctx {
            paths: &paths,
            options: &options,
        })
        .err()
        .unwrap();
        assert!(err.contains("mutually exclusive"), "{err}");
    }
}

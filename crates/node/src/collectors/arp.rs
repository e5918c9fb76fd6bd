//! arp: neighbour (ARP) table entries per device.
//!
//! Source: an rtnetlink `RTM_GETNEIGH` dump of IPv4 neighbours
//! (node_exporter's default), or with `--no-collector.arp.netlink`
//! `<procfs>/net/arp`. Metrics: `node_arp_entries{device}` (gauge) and,
//! from netlink only, `node_arp_states{device,state}` (gauge; `state` is
//! `incomplete`, `reachable`, `stale`, `delay`, `probe`, `failed` or
//! `permanent`). Entries in state `NUD_NOARP` are not counted, as
//! /proc/net/arp leaves them out. (node_exporter at recent master inverts
//! that test and counts only the `NUD_NOARP` entries, contrary to its own
//! comment; this follows the comment and /proc/net/arp.)
//! Flags: `--collector.arp.device-include` / `--collector.arp.device-exclude`
//! (regexps, mutually exclusive), `--[no-]collector.arp.netlink`. On by
//! default.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{BoxFuture, CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::netdev::SharedLinks;
use crate::collectors::Ctx;
use crate::device_filter::DeviceFilter;
use crate::file_cache::{is_missing, lines, FileCache};
use crate::malformed::Malformed;
use crate::netlink::{self, u16_at, u32_at, Netlink};

/// Flags of the arp collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regexp of arp devices to include (mutually exclusive to device-exclude).
    #[arg(
        id = "collector.arp.device-include",
        long = "collector.arp.device-include",
        value_name = "REGEX"
    )]
    pub device_include: Option<String>,
    /// Regexp of arp devices to exclude (mutually exclusive to device-include).
    #[arg(
        id = "collector.arp.device-exclude",
        long = "collector.arp.device-exclude",
        value_name = "REGEX"
    )]
    pub device_exclude: Option<String>,
    /// Use netlink to gather stats instead of /proc/net/arp (default: on).
    #[arg(
        id = "collector.arp.netlink",
        long = "collector.arp.netlink",
        overrides_with = "no-collector.arp.netlink"
    )]
    pub netlink: bool,
    /// Read /proc/net/arp instead of netlink (the later of the two flags wins).
    #[arg(
        id = "no-collector.arp.netlink",
        long = "no-collector.arp.netlink",
        overrides_with = "collector.arp.netlink"
    )]
    pub no_netlink: bool,
}

/// Entries per device of /proc/net/arp (the device is the last of its six
/// columns); the header line is skipped, a line of another width is left
/// out and noted.
pub fn parse_proc_net_arp(text: &str) -> (BTreeMap<String, u32>, Malformed) {
    let mut out = BTreeMap::new();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        match cols.as_slice() {
            [] => {}
            [_, _, _, _, _, device] => *out.entry((*device).to_string()).or_insert(0) += 1,
            _ => bad.line(i + 1, line, format!("{} columns, expected 6", cols.len())),
        }
    }
    (out, bad)
}

const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const AF_INET: u8 = 2;
const NUD_NOARP: u16 = 0x40;

/// node_exporter's name of a neighbour state (`NUD_*`); a combination of
/// bits has none.
pub fn state_name(state: u16) -> &'static str {
    match state {
        0x01 => "incomplete",
        0x02 => "reachable",
        0x04 => "stale",
        0x08 => "delay",
        0x10 => "probe",
        0x20 => "failed",
        0x80 => "permanent",
        _ => "",
    }
}

/// An `RTM_NEWNEIGH` payload (`struct ndmsg`): `(family, interface index,
/// state)`; `None` when it is too short.
pub fn parse_neighbour(p: &[u8]) -> Option<(u8, u32, u16)> {
    Some((*p.first()?, u32_at(p, 4)?, u16_at(p, 8)?))
}

/// The arp collector.
pub struct Arp {
    proc_net_arp: PathBuf,
    filter: DeviceFilter,
    netlink: bool,
    nl: Netlink,
    cache: FileCache,
}

/// Per device: entries, and entries by state name (netlink only).
type Counts = BTreeMap<String, (u32, BTreeMap<&'static str, u32>)>;

impl Arp {
    /// Builds the collector from the flags.
    pub fn new(ctx: &Ctx<'_>) -> Result<Self, String> {
        let f = &ctx.options.arp;
        Ok(Arp {
            proc_net_arp: ctx.paths.proc("net/arp"),
            filter: DeviceFilter::new(
                "collector.arp.device",
                f.device_include.as_deref(),
                f.device_exclude.as_deref(),
            )?,
            netlink: !f.no_netlink,
            nl: Netlink::new(netlink::ROUTE),
            cache: FileCache::remembering_missing(),
        })
    }

    async fn read_netlink(&self, ctx: &ScrapeContext) -> Result<Counts, CollectError> {
        let mut neighbours = Vec::new();
        // ndmsg: family AF_INET, everything else zero (all interfaces).
        let mut req = [0u8; 12];
        req[0] = AF_INET;
        self.nl
            .dump(ctx.deadline, RTM_GETNEIGH, &req, |ty, p| {
                if ty == RTM_NEWNEIGH {
                    neighbours.extend(parse_neighbour(p));
                }
            })
            .await
            .map_err(|e| format!("could not get ARP entries: rtnetlink neighbour dump: {e}"))?;
        let links = SharedLinks::get()
            .links(ctx)
            .await
            .map_err(|e| format!("could not get ARP entries: rtnetlink link dump: {e}"))?;
        let mut counts = Counts::new();
        for (family, index, state) in neighbours {
            if family != AF_INET || state & NUD_NOARP != 0 {
                continue;
            }
            let Some(link) = links.iter().find(|l| l.index == index) else {
                continue;
            };
            let c = counts.entry(link.name.clone()).or_default();
            c.0 += 1;
            *c.1.entry(state_name(state)).or_insert(0) += 1;
        }
        Ok(counts)
    }

    fn read_proc(&self) -> Result<(Counts, CollectResult), CollectError> {
        let mut scope = self.cache.scope();
        let text = match scope.read(&self.proc_net_arp) {
            Ok(b) => String::from_utf8_lossy(b).into_owned(),
            Err(e) if is_missing(&e) => return Ok((Counts::new(), Ok(()))),
            Err(e) => {
                return Err(format!(
                    "could not get ARP entries: reading {}: {e}",
                    self.proc_net_arp.display()
                )
                .into())
            }
        };
        let (entries, bad) = parse_proc_net_arp(&text);
        let counts = entries
            .into_iter()
            .map(|(dev, n)| (dev, (n, BTreeMap::new())))
            .collect();
        Ok((counts, bad.into_result(&self.proc_net_arp)))
    }
}

impl Collector for Arp {
    fn name(&self) -> &str {
        "arp"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let (counts, malformed) = if self.netlink {
                (self.read_netlink(ctx).await?, Ok(()))
            } else {
                self.read_proc()?
            };
            let mut entries = MetricFamily::gauge("node_arp_entries", "ARP entries by device");
            let mut states = MetricFamily::gauge("node_arp_states", "ARP states by device");
            for (dev, (n, by_state)) in &counts {
                if self.filter.ignored(dev) {
                    continue;
                }
                entries.add(&[("device", dev)], f64::from(*n));
                for (state, n) in by_state {
                    states.add(&[("device", dev), ("state", state)], f64::from(*n));
                }
            }
            out.push(entries);
            if self.netlink {
                out.push(states);
            }
            malformed
        })
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(Arc::new(Arp::new(ctx)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build_with, paths_under, scrape};

    #[test]
    fn counts_proc_net_arp_entries_per_device() {
        let text =
            "IP address       HW type     Flags       HW address            Mask     Device\n\
            10.1.0.1         0x1         0x2         52:54:00:12:34:01     *        br0\n\
            10.1.0.7         0x1         0x2         52:54:00:12:34:07     *        br0\n\
            \n\
            172.16.4.1       0x1         0x0         00:00:00:00:00:00     *        wg0\n\
            junk\n";
        let (got, bad) = parse_proc_net_arp(text);
        assert_eq!(got.get("br0"), Some(&2));
        assert_eq!(got.get("wg0"), Some(&1));
        assert_eq!(got.len(), 2);
        assert_eq!(bad.to_string(), "line 6 \"junk\": 1 columns, expected 6");
    }

    #[test]
    fn parses_neighbour_messages_and_names_states() {
        let mut ndmsg = vec![AF_INET, 0, 0, 0];
        ndmsg.extend_from_slice(&3u32.to_ne_bytes());
        ndmsg.extend_from_slice(&0x04u16.to_ne_bytes());
        ndmsg.extend_from_slice(&[0, 1]);
        assert_eq!(parse_neighbour(&ndmsg), Some((AF_INET, 3, 0x04)));
        assert_eq!(parse_neighbour(&ndmsg[..9]), None);
        assert_eq!(state_name(0x04), "stale");
        assert_eq!(state_name(0x80), "permanent");
        assert_eq!(state_name(0x06), "");
    }

    #[test]
    fn the_later_netlink_flag_wins_as_in_kingpin() {
        use crate::collectors::testing::options;
        assert!(!options(&[]).arp.no_netlink, "netlink by default");
        let f = options(&["--collector.arp.netlink", "--no-collector.arp.netlink"]);
        assert!(f.arp.no_netlink);
        let f = options(&["--no-collector.arp.netlink", "--collector.arp.netlink"]);
        assert!(!f.arp.no_netlink);
    }

    #[test]
    fn proc_mode_filters_devices_and_live_mode_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("net")).unwrap();
        std::fs::write(
            dir.path().join("net/arp"),
            "IP address HW type Flags HW address Mask Device\n\
             10.0.0.1 0x1 0x2 aa:bb:cc:dd:ee:01 * eth0\n\
             10.0.0.2 0x1 0x2 aa:bb:cc:dd:ee:02 * veth9\n",
        )
        .unwrap();
        let paths = paths_under(dir.path());
        let c = build_with(
            "arp",
            &paths,
            &[
                "--no-collector.arp.netlink",
                "--collector.arp.device-exclude=^veth",
            ],
        );
        let out = scrape(&*c);
        assert_eq!(out.len(), 1, "no states family without netlink");
        assert_eq!(out[0].metrics.len(), 1);
        assert_eq!(out[0].metrics[0].labels[0].1, "eth0");
        // The live neighbour dump answers (whatever the table holds), and
        // every device it names is a real link.
        let live = scrape(&*build_with("arp", &paths, &[]));
        assert_eq!(live.len(), 2);
        for m in &live[0].metrics {
            assert!(std::path::Path::new("/sys/class/net")
                .join(&m.labels[0].1)
                .exists());
        }
    }
}

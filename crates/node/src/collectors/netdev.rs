//! netdev: network interface traffic counters.
//!
//! Source: rtnetlink (`RTM_GETLINK` dump, one round trip for all
//! interfaces; node_exporter's default) or, with
//! `--no-collector.netdev.netlink`, `<procfs>/net/dev`. Metrics: counters
//! `node_network_{receive,transmit}_<stat>_total{device}` with
//! node_exporter's /proc/net/dev-style names (`receive_bytes`,
//! `receive_errs`, `receive_drop`, `transmit_colls`, …), or the kernel's
//! detailed names with `--collector.netdev.enable-detailed-metrics`.
//! `--collector.netdev.address-info` adds
//! `node_network_address_info{device,address,netmask,scope}`.
//! Flags: `--collector.netdev.device-include` / `--collector.netdev.device-exclude`
//! (regexps, mutually exclusive). On by default.
//!
//! The dumps go through the shared async client in `netlink.rs`: no
//! blocking thread, bounded by the scrape deadline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use oxmon_core::collector::{BoxFuture, CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::device_filter::DeviceFilter;
use crate::field_names;
use crate::file_cache::{is_missing, FileCache};
use crate::malformed::Malformed;
use crate::netlink::{self, attributes, text, u16_at, u32_at, u64_at, Netlink};

/// Flags of the netdev collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regexp of net devices to include (mutually exclusive to device-exclude).
    #[arg(
        id = "collector.netdev.device-include",
        long = "collector.netdev.device-include",
        value_name = "REGEX"
    )]
    pub device_include: Option<String>,
    /// DEPRECATED: use --collector.netdev.device-include.
    #[arg(
        id = "collector.netdev.device-whitelist",
        long = "collector.netdev.device-whitelist",
        value_name = "REGEX",
        hide = true
    )]
    pub device_whitelist: Option<String>,
    /// Regexp of net devices to exclude (mutually exclusive to device-include).
    #[arg(
        id = "collector.netdev.device-exclude",
        long = "collector.netdev.device-exclude",
        value_name = "REGEX"
    )]
    pub device_exclude: Option<String>,
    /// DEPRECATED: use --collector.netdev.device-exclude.
    #[arg(
        id = "collector.netdev.device-blacklist",
        long = "collector.netdev.device-blacklist",
        value_name = "REGEX",
        hide = true
    )]
    pub device_blacklist: Option<String>,
    /// Collect address-info for every device (node_network_address_info).
    #[arg(
        id = "collector.netdev.address-info",
        long = "collector.netdev.address-info"
    )]
    pub address_info: bool,
    /// Use (incompatible) metric names that provide more detailed stats on Linux.
    #[arg(
        id = "collector.netdev.enable-detailed-metrics",
        long = "collector.netdev.enable-detailed-metrics"
    )]
    pub detailed: bool,
    /// Use netlink to gather stats instead of /proc/net/dev (default: on).
    #[arg(id = "collector.netdev.netlink", long = "collector.netdev.netlink")]
    pub netlink: bool,
    /// Read /proc/net/dev instead of netlink.
    #[arg(
        id = "no-collector.netdev.netlink",
        long = "no-collector.netdev.netlink"
    )]
    pub no_netlink: bool,
}

/// The kernel's `rtnl_link_stats64` fields, in order (detailed names).
pub const LINK_STATS: [&str; 24] = [
    "receive_packets",
    "transmit_packets",
    "receive_bytes",
    "transmit_bytes",
    "receive_errors",
    "transmit_errors",
    "receive_dropped",
    "transmit_dropped",
    "multicast",
    "collisions",
    "receive_length_errors",
    "receive_over_errors",
    "receive_crc_errors",
    "receive_frame_errors",
    "receive_fifo_errors",
    "receive_missed_errors",
    "transmit_aborted_errors",
    "transmit_carrier_errors",
    "transmit_fifo_errors",
    "transmit_heartbeat_errors",
    "transmit_window_errors",
    "receive_compressed",
    "transmit_compressed",
    "receive_nohandler",
];

/// One interface as an `RTM_NEWLINK` message describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `ifi_type` (ARPHRD_*).
    pub kind: u16,
    /// `ifi_flags` (as `dev_get_flags`, not sysfs's `flags`).
    pub flags: u32,
    /// Counters in [`LINK_STATS`] order; `None` when the kernel sent no
    /// statistics, or fewer than the 23 every kernel sends.
    pub stats: Option<[u64; 24]>,
    /// How many of `stats` the kernel sent: 23 before Linux 4.6, which
    /// has no `rx_nohandler`; the rest are not exported.
    pub stats_sent: usize,
    /// Hardware address (`IFLA_ADDRESS`).
    pub address: Option<Vec<u8>>,
    /// Broadcast address (`IFLA_BROADCAST`).
    pub broadcast: Option<Vec<u8>>,
    /// `IFLA_MTU`.
    pub mtu: Option<u32>,
    /// `IFLA_LINK` (absent when equal to the index).
    pub link: Option<u32>,
    /// `IFLA_TXQLEN`.
    pub txqlen: Option<u32>,
    /// `IFLA_OPERSTATE` (RFC 2863 state, an index into [`OPERSTATES`]).
    pub operstate: Option<u8>,
    /// `IFLA_LINKMODE`.
    pub linkmode: Option<u8>,
    /// `IFLA_IFALIAS`.
    pub ifalias: Option<String>,
    /// `IFLA_GROUP`.
    pub group: Option<u32>,
    /// `IFLA_CARRIER`.
    pub carrier: Option<u8>,
    /// `IFLA_CARRIER_CHANGES`.
    pub carrier_changes: Option<u32>,
    /// `IFLA_CARRIER_UP_COUNT`.
    pub carrier_up: Option<u32>,
    /// `IFLA_CARRIER_DOWN_COUNT`.
    pub carrier_down: Option<u32>,
}

/// The kernel's names of the operational states, as sysfs `operstate`
/// writes them.
pub const OPERSTATES: [&str; 7] = [
    "unknown",
    "notpresent",
    "down",
    "lowerlayerdown",
    "testing",
    "dormant",
    "up",
];

/// A hardware address as sysfs writes it (`aa:bb:cc:dd:ee:ff`).
pub fn format_hwaddr(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 15)]));
    }
    s
}

/// The counters node_exporter reports by default, derived from the
/// detailed ones the way the kernel writes /proc/net/dev.
pub fn legacy(s: &[u64; 24]) -> [(&'static str, u64); 17] {
    [
        ("receive_bytes", s[2]),
        ("receive_packets", s[0]),
        ("receive_errs", s[4]),
        ("receive_drop", s[6] + s[15]),
        ("receive_fifo", s[14]),
        ("receive_frame", s[13] + s[10] + s[11] + s[12]),
        ("receive_multicast", s[8]),
        ("receive_compressed", s[21]),
        ("receive_nohandler", s[23]),
        ("transmit_bytes", s[3]),
        ("transmit_packets", s[1]),
        ("transmit_errs", s[5]),
        ("transmit_drop", s[7]),
        ("transmit_fifo", s[18]),
        ("transmit_colls", s[9]),
        ("transmit_carrier", s[17] + s[16] + s[19] + s[20]),
        ("transmit_compressed", s[22]),
    ]
}

/// One device of /proc/net/dev: its name and `(legacy name, value)` pairs.
pub type DeviceCounters = (String, Vec<(&'static str, u64)>);

/// Parses /proc/net/dev into devices; a line that is not a name and 16
/// numbers is left out and noted.
pub fn parse_proc_net_dev(text: &str) -> (Vec<DeviceCounters>, Malformed) {
    const RX: [&str; 8] = [
        "receive_bytes",
        "receive_packets",
        "receive_errs",
        "receive_drop",
        "receive_fifo",
        "receive_frame",
        "receive_compressed",
        "receive_multicast",
    ];
    const TX: [&str; 8] = [
        "transmit_bytes",
        "transmit_packets",
        "transmit_errs",
        "transmit_drop",
        "transmit_fifo",
        "transmit_colls",
        "transmit_carrier",
        "transmit_compressed",
    ];
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, rest)) = line.split_once(':') else {
            bad.line(i + 1, line, "no colon after the device name");
            continue;
        };
        let vals: Result<Vec<u64>, _> = rest.split_whitespace().map(str::parse).collect();
        match vals {
            Ok(vals) if vals.len() == 16 => {
                let fields = RX.iter().chain(TX.iter()).copied().zip(vals).collect();
                out.push((name.trim().to_string(), fields));
            }
            _ => bad.line(i + 1, line, "expected 16 numbers"),
        }
    }
    (out, bad)
}

// rtnetlink constants (linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h).
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_STATS: u16 = 7;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_IFALIAS: u16 = 20;
const IFLA_STATS64: u16 = 23;
const IFLA_GROUP: u16 = 27;
const IFLA_CARRIER: u16 = 33;
const IFLA_CARRIER_CHANGES: u16 = 35;
const IFLA_CARRIER_UP_COUNT: u16 = 47;
const IFLA_CARRIER_DOWN_COUNT: u16 = 48;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

/// The counters of an `IFLA_STATS64`/`IFLA_STATS` attribute of `width`-byte
/// fields, and how many it holds; none when it holds fewer than 23.
fn counters(
    val: &[u8],
    width: usize,
    at: impl Fn(&[u8], usize) -> Option<u64>,
) -> (Option<[u64; 24]>, usize) {
    let sent = (val.len() / width).min(24);
    if sent < 23 {
        return (None, 0);
    }
    let mut stats = [0u64; 24];
    for (i, v) in stats.iter_mut().enumerate().take(sent) {
        // Always there: `i` is below the number of fields sent.
        *v = at(val, i * width).unwrap_or_default();
    }
    (Some(stats), sent)
}

/// Parses an `RTM_NEWLINK` payload (ifinfomsg + attributes); `None` when
/// it is too short or the link has no name.
pub fn parse_link(p: &[u8]) -> Option<Link> {
    let mut l = Link {
        kind: u16_at(p, 2)?,
        index: u32_at(p, 4)?,
        flags: u32_at(p, 8)?,
        ..Link::default()
    };
    let mut name = None;
    let mut stats32 = None;
    for (ty, val) in attributes(p.get(16..)?) {
        match ty {
            IFLA_IFNAME => name = Some(text(val)),
            IFLA_ADDRESS => l.address = Some(val.to_vec()),
            IFLA_BROADCAST => l.broadcast = Some(val.to_vec()),
            IFLA_MTU => l.mtu = u32_at(val, 0),
            IFLA_LINK => l.link = u32_at(val, 0),
            IFLA_TXQLEN => l.txqlen = u32_at(val, 0),
            IFLA_OPERSTATE => l.operstate = val.first().copied(),
            IFLA_LINKMODE => l.linkmode = val.first().copied(),
            IFLA_IFALIAS => l.ifalias = Some(text(val)),
            IFLA_GROUP => l.group = u32_at(val, 0),
            IFLA_CARRIER => l.carrier = val.first().copied(),
            IFLA_CARRIER_CHANGES => l.carrier_changes = u32_at(val, 0),
            IFLA_CARRIER_UP_COUNT => l.carrier_up = u32_at(val, 0),
            IFLA_CARRIER_DOWN_COUNT => l.carrier_down = u32_at(val, 0),
            IFLA_STATS64 => (l.stats, l.stats_sent) = counters(val, 8, u64_at),
            IFLA_STATS => stats32 = Some(val),
            _ => {}
        }
    }
    if l.stats.is_none() {
        if let Some(s) = stats32 {
            (l.stats, l.stats_sent) = counters(s, 4, |b, i| u32_at(b, i).map(u64::from));
        }
    }
    l.name = name?;
    Some(l)
}

/// Parses an `RTM_NEWADDR` payload into `(interface index, address,
/// prefix length)`.
pub fn parse_addr(p: &[u8]) -> Option<(u32, IpAddr, u8)> {
    let family = *p.first()?;
    let prefix = *p.get(1)?;
    let index = u32_at(p, 4)?;
    let mut local = None;
    let mut address = None;
    for (ty, val) in attributes(p.get(8..)?) {
        let ip = match (family, val.len()) {
            (2, 4) => IpAddr::V4(Ipv4Addr::new(val[0], val[1], val[2], val[3])),
            (10, 16) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(val).ok()?)),
            _ => continue,
        };
        match ty {
            IFA_LOCAL => local = Some(ip),
            IFA_ADDRESS => address = Some(ip),
            _ => {}
        }
    }
    Some((index, local.or(address)?, prefix))
}

/// node_exporter's `scope` label of an address.
pub fn addr_scope(ip: &IpAddr) -> &'static str {
    let link_local = match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_link_local() || a.octets()[..3] == [224, 0, 0],
        IpAddr::V6(a) => {
            a.is_loopback()
                || (a.segments()[0] & 0xffc0) == 0xfe80
                || (a.segments()[0] & 0xff0f) == 0xff02
        }
    };
    if link_local {
        return "link-local";
    }
    if let IpAddr::V6(a) = ip {
        if (a.segments()[0] & 0xff0f) == 0xff01 {
            return "interface-local";
        }
    }
    let global = match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    };
    if global {
        "global"
    } else {
        ""
    }
}

/// One `RTM_GETLINK` dump per scrape, shared by netdev and netclass: the
/// first of them to run in a scrape (identified by its id) dumps, the
/// other waits for that dump and reuses it.
pub(crate) struct SharedLinks {
    nl: Netlink,
    last: tokio::sync::Mutex<Option<(u64, Arc<Vec<Link>>)>>,
}

impl Default for SharedLinks {
    fn default() -> Self {
        SharedLinks {
            nl: Netlink::new(netlink::ROUTE),
            last: tokio::sync::Mutex::new(None),
        }
    }
}

impl SharedLinks {
    /// The process-wide instance.
    pub(crate) fn get() -> &'static SharedLinks {
        static SHARED: OnceLock<SharedLinks> = OnceLock::new();
        SHARED.get_or_init(SharedLinks::default)
    }

    /// All links, dumped at most once per scrape.
    pub(crate) async fn links(&self, ctx: &ScrapeContext) -> std::io::Result<Arc<Vec<Link>>> {
        let mut last = tokio::time::timeout_at(ctx.deadline, self.last.lock())
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?;
        if let Some((scrape, links)) = &*last {
            if *scrape == ctx.id {
                return Ok(links.clone());
            }
        }
        let mut links = Vec::new();
        // An all-zero ifinfomsg asks for every link.
        self.nl
            .dump(ctx.deadline, RTM_GETLINK, &[0; 16], |ty, p| {
                if ty == RTM_NEWLINK {
                    links.extend(parse_link(p));
                }
            })
            .await?;
        // By name, the order the families' series are exported in (the
        // kernel dumps by index).
        links.sort_by(|a: &Link, b: &Link| a.name.cmp(&b.name));
        let links = Arc::new(links);
        *last = Some((ctx.id, links.clone()));
        Ok(links)
    }
}

/// The netdev collector.
pub struct NetDev {
    proc_net_dev: PathBuf,
    filter: DeviceFilter,
    netlink: bool,
    detailed: bool,
    address_info: bool,
    /// For the address dump of `--collector.netdev.address-info`.
    nl: Netlink,
    cache: FileCache,
}

impl NetDev {
    /// Builds the collector from the flags.
    pub fn new(ctx: &Ctx<'_>) -> Result<Self, String> {
        let f = &ctx.options.netdev;
        let include = pick(
            "collector.netdev.device-include",
            &f.device_include,
            &f.device_whitelist,
        )?;
        let exclude = pick(
            "collector.netdev.device-exclude",
            &f.device_exclude,
            &f.device_blacklist,
        )?;
        Ok(NetDev {
            proc_net_dev: ctx.paths.proc("net/dev"),
            filter: DeviceFilter::new("collector.netdev.device", include, exclude)?,
            netlink: !f.no_netlink,
            detailed: f.detailed,
            address_info: f.address_info,
            nl: Netlink::new(netlink::ROUTE),
            cache: FileCache::remembering_missing(),
        })
    }
}

fn pick<'a>(
    flag: &str,
    new: &'a Option<String>,
    old: &'a Option<String>,
) -> Result<Option<&'a str>, String> {
    match (new.as_deref(), old.as_deref()) {
        (Some(n), Some(o)) if !n.is_empty() && !o.is_empty() => Err(format!(
            "--{flag} and its deprecated spelling are mutually exclusive"
        )),
        (Some(n), _) if !n.is_empty() => Ok(Some(n)),
        (_, Some(o)) if !o.is_empty() => {
            tracing::warn!("a deprecated netdev flag was used; use --{flag}");
            Ok(Some(o))
        }
        _ => Ok(None),
    }
}

/// Families in a fixed order, created on first use, each with the counter
/// key it was made for.
struct Families(Vec<(&'static str, MetricFamily)>);

impl Families {
    fn add(&mut self, key: &'static str, dev: &str, v: u64) {
        let at = match self.0.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let (name, help) = field_names::intern_pair("netdev", key, |key| {
                    (
                        format!("node_network_{key}_total"),
                        format!("Network device statistic {key}."),
                    )
                });
                self.0.push((key, MetricFamily::counter(name, help)));
                self.0.len() - 1
            }
        };
        self.0[at].1.add(&[("device", dev)], v as f64);
    }
}

impl NetDev {
    /// Counters from the shared link dump; also the index to name map
    /// the address dump needs.
    async fn read_netlink(
        &self,
        ctx: &ScrapeContext,
        fams: &mut Families,
    ) -> Result<Vec<(u32, String)>, CollectError> {
        let links = SharedLinks::get()
            .links(ctx)
            .await
            .map_err(|e| format!("couldn't get netstats via netlink: {e}"))?;
        let mut names = Vec::with_capacity(links.len());
        for l in links.iter() {
            names.push((l.index, l.name.clone()));
            let Some(stats) = &l.stats else { continue };
            if self.filter.ignored(&l.name) {
                continue;
            }
            if self.detailed {
                for (key, v) in LINK_STATS.iter().zip(stats).take(l.stats_sent) {
                    fams.add(key, &l.name, *v);
                }
            } else {
                for (key, v) in legacy(stats) {
                    // The one counter older kernels do not send.
                    if key == "receive_nohandler" && l.stats_sent < 24 {
                        continue;
                    }
                    fams.add(key, &l.name, v);
                }
            }
        }
        Ok(names)
    }

    /// Counters from /proc/net/dev; nothing when it does not exist.
    fn read_proc(&self, fams: &mut Families) -> CollectResult {
        let mut scope = self.cache.scope();
        let text = match scope.read(&self.proc_net_dev) {
            Ok(b) => String::from_utf8_lossy(b).into_owned(),
            Err(e) if is_missing(&e) => {
                tracing::debug!(path = %self.proc_net_dev.display(), "no /proc/net/dev");
                return Ok(());
            }
            Err(e) => return Err(format!("reading {}: {e}", self.proc_net_dev.display()).into()),
        };
        let (devices, bad) = parse_proc_net_dev(&text);
        for (dev, fields) in devices {
            if self.filter.ignored(&dev) {
                continue;
            }
            for (key, v) in fields {
                fams.add(key, &dev, v);
            }
        }
        bad.into_result(&self.proc_net_dev)
    }

    /// `node_network_address_info` from an `RTM_GETADDR` dump.
    async fn address_info(
        &self,
        ctx: &ScrapeContext,
        mut names: Vec<(u32, String)>,
    ) -> Result<MetricFamily, CollectError> {
        if names.is_empty() {
            names = SharedLinks::get()
                .links(ctx)
                .await
                .map(|ls| ls.iter().map(|l| (l.index, l.name.clone())).collect())
                .unwrap_or_default();
        }
        let mut fam = MetricFamily::gauge(
            "node_network_address_info",
            "node network address by device",
        );
        // An all-zero ifaddrmsg asks for the addresses of every family.
        self.nl
            .dump(ctx.deadline, RTM_GETADDR, &[0; 8], |ty, p| {
                if ty != RTM_NEWADDR {
                    return;
                }
                let Some((index, ip, prefix)) = parse_addr(p) else {
                    return;
                };
                let Some((_, dev)) = names.iter().find(|(i, _)| *i == index) else {
                    return;
                };
                fam.add(
                    &[
                        ("device", dev),
                        ("address", &ip.to_string()),
                        ("netmask", &prefix.to_string()),
                        ("scope", addr_scope(&ip)),
                    ],
                    1.0,
                );
            })
            .await
            .map_err(|e| format!("could not get addresses via netlink: {e}"))?;
        Ok(fam)
    }
}

/// Runs on the scrape task: the netlink dumps are awaited on the runtime
/// (bounded by the scrape deadline) and /proc/net/dev is one quick read.
impl Collector for NetDev {
    fn name(&self) -> &str {
        "netdev"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let mut fams = Families(Vec::with_capacity(24));
            let mut names = Vec::new();
            let mut malformed = Ok(());
            if self.netlink {
                names = self.read_netlink(ctx, &mut fams).await?;
            } else {
                malformed = self.read_proc(&mut fams);
            }
            out.extend(fams.0.into_iter().map(|(_, f)| f));
            if self.address_info {
                out.push(self.address_info(ctx, names).await?);
            }
            malformed
        })
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(Arc::new(NetDev::new(ctx)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, val: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        netlink::push_attr(&mut v, ty, val);
        v
    }

    #[test]
    fn parses_a_link_dump() {
        let mut ifinfo = vec![0u8; 16];
        ifinfo[4..8].copy_from_slice(&7u32.to_ne_bytes());
        let mut stats = Vec::new();
        for i in 0..24u64 {
            stats.extend_from_slice(&(i + 1).to_ne_bytes());
        }
        let mut payload = ifinfo.clone();
        payload.extend(attr(IFLA_IFNAME, b"eth7\0"));
        payload.extend(attr(IFLA_MTU, &1400u32.to_ne_bytes()));
        payload.extend(attr(IFLA_OPERSTATE, &[6]));
        payload.extend(attr(IFLA_ADDRESS, &[2, 0, 10, 255, 0, 1]));
        payload.extend(attr(IFLA_STATS64, &stats));
        let l = parse_link(&payload).unwrap();
        assert_eq!((l.index, l.name.as_str()), (7, "eth7"));
        assert_eq!(l.mtu, Some(1400));
        assert_eq!(l.operstate.map(|o| OPERSTATES[o as usize]), Some("up"));
        assert_eq!(
            l.address.as_deref().map(format_hwaddr).as_deref(),
            Some("02:00:0a:ff:00:01")
        );
        assert_eq!(l.link, None);
        let stats = l.stats.unwrap();
        assert_eq!(stats[2], 3);
        let leg = legacy(&stats);
        let get = |k: &str| leg.iter().find(|(n, _)| *n == k).unwrap().1;
        assert_eq!(get("receive_bytes"), 3);
        assert_eq!(get("receive_drop"), 7 + 16);
        assert_eq!(get("receive_frame"), 14 + 11 + 12 + 13);
        assert_eq!(get("transmit_carrier"), 18 + 17 + 20 + 21);
        assert_eq!(get("receive_nohandler"), 24);
        // A link without statistics has none; one without a name is skipped.
        let mut nostats = ifinfo.clone();
        nostats.extend(attr(IFLA_IFNAME, b"x\0"));
        assert_eq!(parse_link(&nostats).unwrap().stats, None);
        assert!(parse_link(&ifinfo).is_none());
        // Too short for an ifinfomsg: nothing, not a panic.
        assert!(parse_link(&ifinfo[..10]).is_none());
    }

    #[test]
    fn parses_addresses_and_scopes() {
        let mut p = vec![2u8, 24, 0, 0];
        p.extend_from_slice(&3u32.to_ne_bytes());
        p.extend(attr(IFA_ADDRESS, &[10, 1, 2, 3]));
        p.extend(attr(IFA_LOCAL, &[10, 1, 2, 4]));
        let (i, ip, prefix) = parse_addr(&p).unwrap();
        assert_eq!((i, ip.to_string(), prefix), (3, "10.1.2.4".to_string(), 24));
        assert_eq!(addr_scope(&"127.0.0.1".parse().unwrap()), "link-local");
        assert_eq!(addr_scope(&"fe80::1".parse().unwrap()), "link-local");
        assert_eq!(addr_scope(&"192.168.1.1".parse().unwrap()), "global");
        assert_eq!(addr_scope(&"2001:db8::1".parse().unwrap()), "global");
        assert_eq!(addr_scope(&"ff01::1".parse().unwrap()), "interface-local");
        assert_eq!(addr_scope(&"0.0.0.0".parse().unwrap()), "");
    }

    #[test]
    fn parses_proc_net_dev() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n bad: 1 2\n";
        let (p, bad) = parse_proc_net_dev(text);
        assert_eq!(p.len(), 2);
        assert_eq!(bad.to_string(), "line 5 \" bad: 1 2\": expected 16 numbers");
        assert_eq!(p[1].0, "eth0");
        assert_eq!(p[1].1[7], ("receive_multicast", 8));
        assert_eq!(p[1].1[14], ("transmit_carrier", 15));
    }

    #[test]
    fn live_dump_lists_loopback_once_per_scrape() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let shared = SharedLinks::default();
            let ctx = ScrapeContext::with_timeout(std::time::Duration::from_secs(5));
            let links = shared.links(&ctx).await.unwrap();
            let lo = links.iter().find(|l| l.name == "lo").expect("lo");
            assert_eq!(lo.kind, 772, "ARPHRD_LOOPBACK");
            assert!(lo.stats.is_some());
            // Same scrape: the same dump.
            assert!(Arc::ptr_eq(&links, &shared.links(&ctx).await.unwrap()));
            // Next scrape: a new dump on the kept socket.
            let next = ScrapeContext::with_timeout(std::time::Duration::from_secs(6));
            let again = shared.links(&next).await.unwrap();
            assert!(!Arc::ptr_eq(&links, &again));
            assert_eq!(again.len(), links.len());
        });
    }
}

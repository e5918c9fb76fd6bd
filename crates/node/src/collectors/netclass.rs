//! netclass: network interface properties.
//!
//! Source: `<sysfs>/class/net/<iface>/*` (one value per file). Metrics
//! (label `device`): `node_network_info{address,adminstate,broadcast,duplex,ifalias,operstate}`
//! (always 1), `node_network_up` (operstate is `up`), gauges
//! `node_network_{address_assign_type,carrier,device_id,dormant,flags,iface_id,iface_link,iface_link_mode,mtu_bytes,name_assign_type,net_dev_group,protocol_type,speed_bytes,transmit_queue_length}`
//! and counters `node_network_carrier_{,up_,down_}changes_total`. An
//! attribute the device does not support (e.g. `speed` of a virtual
//! device) is left out. On by default. Flags:
//! `--collector.netclass.ignored-devices` (regexp, default `^$`),
//! `--collector.netclass.ignore-invalid-speed` (drop a speed of -1).
//!
//! Cost: node_exporter opens ~25 files per interface every scrape. Here,
//! with the default `--path.sysfs=/sys`, the interface list and the values
//! rtnetlink carries exactly as sysfs shows them (address, broadcast,
//! operstate, ifalias, mtu, carrier and its counters, ifindex, iflink,
//! link mode, group, type, tx queue length) come from the one
//! `RTM_GETLINK` dump per scrape that netdev also uses; the seven others
//! (`flags`, `speed`, `duplex`, `dormant`, `dev_id`, `addr_assign_type`,
//! `name_assign_type`) are read from sysfs through kept-open files. With
//! another sysfs root (a container's `/host/sys`, a fixture tree) every
//! value is read from that tree.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::blocking::Lane;
use oxmon_core::collector::{BoxFuture, CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};
use regex::Regex;

use super::netdev::{format_hwaddr, Link, SharedLinks, OPERSTATES};
use crate::collectors::Ctx;
use crate::device_filter::compile_regex;
use crate::dir_listing::dir_entries;
use crate::field_names;
use crate::file_cache::{CacheScope, FileCache};

/// Flags of the netclass collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regexp of net devices to ignore for netclass collector.
    #[arg(
        id = "collector.netclass.ignored-devices",
        long = "collector.netclass.ignored-devices",
        value_name = "REGEX",
        default_value = "^$"
    )]
    pub ignored_devices: String,
    /// Ignore devices where the speed is invalid.
    #[arg(
        id = "collector.netclass.ignore-invalid-speed",
        long = "collector.netclass.ignore-invalid-speed"
    )]
    pub ignore_invalid_speed: bool,
    /// Accepted for compatibility; oxmon-node always reads
    /// /sys/class/net (kept-open files make it cheap).
    #[arg(id = "collector.netclass.netlink", long = "collector.netclass.netlink")]
    pub netlink: bool,
    /// Accepted for compatibility (the default).
    #[arg(
        id = "no-collector.netclass.netlink",
        long = "no-collector.netclass.netlink",
        hide = true
    )]
    pub no_netlink: bool,
}

/// Numeric attributes: `(file, metric name, is counter)`.
const NUMERIC: [(&str, &str, bool); 17] = [
    (
        "addr_assign_type",
        "node_network_address_assign_type",
        false,
    ),
    ("carrier", "node_network_carrier", false),
    (
        "carrier_changes",
        "node_network_carrier_changes_total",
        true,
    ),
    (
        "carrier_up_count",
        "node_network_carrier_up_changes_total",
        true,
    ),
    (
        "carrier_down_count",
        "node_network_carrier_down_changes_total",
        true,
    ),
    ("dev_id", "node_network_device_id", false),
    ("dormant", "node_network_dormant", false),
    ("flags", "node_network_flags", false),
    ("ifindex", "node_network_iface_id", false),
    ("iflink", "node_network_iface_link", false),
    ("link_mode", "node_network_iface_link_mode", false),
    ("mtu", "node_network_mtu_bytes", false),
    ("name_assign_type", "node_network_name_assign_type", false),
    ("netdev_group", "node_network_net_dev_group", false),
    ("speed", "node_network_speed_bytes", false),
    ("tx_queue_len", "node_network_transmit_queue_length", false),
    ("type", "node_network_protocol_type", false),
];

const FLAGS_IDX: usize = 7;
const SPEED_IDX: usize = 14;

/// Files still read from sysfs when the rest comes from rtnetlink.
const SYSFS_ONLY: [usize; 6] = [0, 5, 6, 7, 12, 14];

/// One interface's values, however they were read.
struct Iface {
    name: String,
    address: String,
    broadcast: String,
    duplex: String,
    operstate: String,
    ifalias: String,
    values: [Option<i64>; NUMERIC.len()],
}

/// `adminstate` label from the interface flags (IFF_UP).
pub fn admin_state(flags: Option<i64>) -> &'static str {
    match flags {
        None => "unknown",
        Some(f) if f & 1 == 1 => "up",
        Some(_) => "down",
    }
}

/// The netclass collector.
pub struct NetClass {
    class: PathBuf,
    ignored: Regex,
    ignore_invalid_speed: bool,
    netlink: bool,
    cache: FileCache,
}

impl NetClass {
    /// Builds the collector from the flags.
    pub fn new(ctx: &Ctx<'_>) -> Result<Self, String> {
        let f = &ctx.options.netclass;
        if f.netlink {
            tracing::info!("--collector.netclass.netlink: oxmon-node reads /sys/class/net with kept-open files instead");
        }
        Ok(NetClass {
            class: ctx.paths.sys("class/net"),
            ignored: compile_regex("collector.netclass.ignored-devices", &f.ignored_devices)?,
            ignore_invalid_speed: f.ignore_invalid_speed,
            netlink: ctx.paths.sysfs == std::path::Path::new("/sys"),
            cache: FileCache::remembering_missing(),
        })
    }
}

impl NetClass {
    /// Every value from the sysfs tree.
    fn read_sysfs(&self, scope: &mut CacheScope<'_>) -> Result<Vec<Iface>, CollectError> {
        let Some(devices) = dir_entries(&self.class)? else {
            tracing::debug!(path = %self.class.display(), "no net class");
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(devices.len());
        let mut path = self.class.clone();
        for (dev, ft) in devices {
            if ft.is_file() || self.ignored.is_match(&dev) {
                continue;
            }
            path.push(&dev);
            let mut text = |file: &str| {
                path.push(file);
                let v = scope.attr_string(&path);
                path.pop();
                v.unwrap_or_default()
            };
            let mut iface = Iface {
                address: text("address"),
                broadcast: text("broadcast"),
                duplex: text("duplex"),
                operstate: text("operstate"),
                ifalias: text("ifalias"),
                name: dev,
                values: [None; NUMERIC.len()],
            };
            for (i, (file, _, _)) in NUMERIC.iter().enumerate() {
                path.push(file);
                iface.values[i] = scope.attr_i64(&path);
                path.pop();
            }
            path.pop();
            out.push(iface);
        }
        Ok(out)
    }

    /// Interface list and most values from the rtnetlink dump, the rest
    /// from sysfs.
    fn read_netlink(&self, links: &[Link], scope: &mut CacheScope<'_>) -> Vec<Iface> {
        let mut out = Vec::with_capacity(links.len());
        let mut path = self.class.clone();
        for l in links.iter() {
            if self.ignored.is_match(&l.name) {
                continue;
            }
            path.push(&l.name);
            path.push("duplex");
            let duplex = scope.attr_string(&path).unwrap_or_default();
            path.pop();
            let mut values = [None; NUMERIC.len()];
            for i in SYSFS_ONLY {
                path.push(NUMERIC[i].0);
                values[i] = scope.attr_i64(&path);
                path.pop();
            }
            path.pop();
            let running = l.flags & 1 == 1;
            // sysfs refuses `carrier` of a device that is not up.
            values[1] = l.carrier.filter(|_| running).map(i64::from);
            values[2] = l.carrier_changes.map(i64::from);
            values[3] = l.carrier_up.map(i64::from);
            values[4] = l.carrier_down.map(i64::from);
            values[8] = Some(i64::from(l.index));
            values[9] = Some(i64::from(l.link.unwrap_or(l.index)));
            values[10] = l.linkmode.map(i64::from);
            values[11] = l.mtu.map(i64::from);
            values[13] = l.group.map(|g| i64::from(g as i32));
            values[15] = l.txqlen.map(i64::from);
            values[16] = Some(i64::from(l.kind));
            out.push(Iface {
                name: l.name.clone(),
                address: l.address.as_deref().map(format_hwaddr).unwrap_or_default(),
                broadcast: l
                    .broadcast
                    .as_deref()
                    .map(format_hwaddr)
                    .unwrap_or_default(),
                duplex,
                operstate: l
                    .operstate
                    .and_then(|o| OPERSTATES.get(o as usize))
                    .unwrap_or(&"unknown")
                    .to_string(),
                ifalias: l.ifalias.clone().unwrap_or_default(),
                values,
            });
        }
        out
    }
}

/// The collector. sysfs reads of interface attributes (`speed`,
/// `duplex`) wait for the kernel's rtnl lock, so they run on a blocking
/// lane, bounded by the scrape deadline. The link dump they need is
/// awaited first on the runtime (netdev shares it), so the lane's thread
/// only reads files and is woken once per scrape.
struct NetClassCollector {
    inner: Arc<NetClass>,
    lane: Lane,
}

impl Collector for NetClassCollector {
    fn name(&self) -> &str {
        "netclass"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let links = if self.inner.netlink {
                let links = SharedLinks::get()
                    .links(ctx)
                    .await
                    .map_err(|e| format!("rtnetlink link dump: {e}"))?;
                Some(links)
            } else {
                None
            };
            let inner = Arc::clone(&self.inner);
            let ifaces = self
                .lane
                .run(ctx.deadline, move || {
                    let mut scope = inner.cache.scope();
                    match links {
                        Some(links) => Ok(inner.read_netlink(&links, &mut scope)),
                        // A boxed error need not be Send across the join.
                        None => inner.read_sysfs(&mut scope).map_err(|e| e.to_string()),
                    }
                })
                .await??;
            self.inner.families(&ifaces, out);
            Ok(())
        })
    }
}

impl NetClass {
    /// The families of one scrape's interfaces.
    fn families(&self, ifaces: &[Iface], out: &mut Vec<MetricFamily>) {
        let mut up = MetricFamily::gauge(
            "node_network_up",
            "Value is 1 if operstate is 'up', 0 otherwise.",
        );
        let mut info = MetricFamily::gauge(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
        );
        let mut fams: Vec<MetricFamily> = NUMERIC
            .iter()
            .map(|(_, name, counter)| {
                // Built once, not every scrape.
                let (_, help) = field_names::intern_pair("netclass", name, |name| {
                    let property = name.trim_start_matches("node_network_");
                    (
                        name.to_string(),
                        format!("Network device property: {property}"),
                    )
                });
                if *counter {
                    MetricFamily::counter(*name, help)
                } else {
                    MetricFamily::gauge(*name, help)
                }
            })
            .collect();
        for iface in ifaces {
            let lab = [("device", iface.name.as_str())];
            up.add(&lab, if iface.operstate == "up" { 1.0 } else { 0.0 });
            info.add(
                &[
                    ("device", &iface.name),
                    ("address", &iface.address),
                    ("broadcast", &iface.broadcast),
                    ("duplex", &iface.duplex),
                    ("operstate", &iface.operstate),
                    ("adminstate", admin_state(iface.values[FLAGS_IDX])),
                    ("ifalias", &iface.ifalias),
                ],
                1.0,
            );
            for (i, v) in iface.values.iter().enumerate() {
                let Some(v) = *v else { continue };
                if i == SPEED_IDX {
                    // Mbit/s to bytes/s; some drivers report -1 for unknown.
                    if v >= 0 || !self.ignore_invalid_speed {
                        fams[i].add(&lab, (v * 1000 * 1000 / 8) as f64);
                    }
                    continue;
                }
                fams[i].add(&lab, v as f64);
            }
        }
        out.push(up);
        out.push(info);
        out.extend(fams);
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(Arc::new(NetClassCollector {
        inner: Arc::new(NetClass::new(ctx)?),
        lane: Lane::new("netclass"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing;
    use oxmon_core::metrics::Value::Single;

    #[test]
    fn reads_interfaces() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("class/net");
        std::fs::create_dir_all(net.join("eth1")).unwrap();
        std::fs::create_dir_all(net.join("veth9")).unwrap();
        std::fs::create_dir_all(net.join("dummy0")).unwrap();
        std::fs::write(net.join("bonding_masters"), "bond0\n").unwrap();
        for (f, v) in [
            ("address", "aa:bb:cc:dd:ee:ff"),
            ("operstate", "up"),
            ("flags", "0x1003"),
            ("mtu", "9000"),
            ("speed", "10000"),
            ("carrier_changes", "3"),
            ("dev_id", "0x0"),
        ] {
            std::fs::write(net.join("eth1").join(f), format!("{v}\n")).unwrap();
        }
        std::fs::write(net.join("dummy0/speed"), "-1\n").unwrap();
        std::fs::write(net.join("dummy0/flags"), "0x82\n").unwrap();
        let paths = testing::paths_under(dir.path());
        let options = testing::options(&[
            "--collector.netclass.ignored-devices=^veth",
            "--collector.netclass.ignore-invalid-speed",
        ]);
        let c = build(&Ctx {
            paths: &paths,
            options: &options,
        })
        .unwrap();
        let out = testing::scrape(&*c);
        let fam = |n: &str| out.iter().find(|f| f.name == n).unwrap();
        assert_eq!(
            fam("node_network_up").metrics.len(),
            2,
            "veth9 ignored, bonding_masters skipped"
        );
        let speed = fam("node_network_speed_bytes");
        assert_eq!(speed.metrics.len(), 1, "dummy0's -1 dropped");
        assert_eq!(speed.metrics[0].value, Single(1.25e9));
        assert_eq!(fam("node_network_flags").metrics[1].value, Single(4099.0));
        let info = fam("node_network_info");
        let eth1 = &info.metrics[1].labels;
        assert!(eth1.iter().any(|(k, v)| k == "adminstate" && v == "up"));
        assert!(info.metrics[0]
            .labels
            .iter()
            .any(|(k, v)| k == "adminstate" && v == "down"));
        assert_eq!(fam("node_network_carrier_changes_total").metrics.len(), 1);
    }
}

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
//! Cost: node_exporter opens ~25 files per interface every scrape; here the
//! files stay open and are re-read with one `pread` each.

use std::path::PathBuf;

use oxmon_core::collector::{CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::MetricFamily;
use regex::Regex;

use super::{compile, dir_entries, AttrCache};
use crate::collectors::Ctx;

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
    cache: AttrCache,
}

impl NetClass {
    /// Builds the collector from the flags.
    pub fn new(ctx: &Ctx<'_>) -> Result<Self, String> {
        let f = &ctx.flags.b;
        if f.netclass_netlink {
            tracing::info!("--collector.netclass.netlink: oxmon-node reads /sys/class/net with kept-open files instead");
        }
        Ok(NetClass {
            class: ctx.paths.sys("class/net"),
            ignored: compile(
                "collector.netclass.ignored-devices",
                &f.netclass_ignored_devices,
            )?,
            ignore_invalid_speed: f.netclass_ignore_invalid_speed,
            cache: AttrCache::default(),
        })
    }
}

impl SyncCollector for NetClass {
    fn name(&self) -> &'static str {
        "netclass"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let Some(devices) = dir_entries(&self.class)? else {
            tracing::debug!(path = %self.class.display(), "no net class");
            return Ok(());
        };
        let mut scope = self.cache.scope();
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
                let help = format!(
                    "Network device property: {}",
                    name.trim_start_matches("node_network_")
                );
                if *counter {
                    MetricFamily::counter(*name, help)
                } else {
                    MetricFamily::gauge(*name, help)
                }
            })
            .collect();
        let mut path = self.class.clone();
        let mut values = [None; NUMERIC.len()];
        for (dev, ft) in devices {
            if ft.is_file() || self.ignored.is_match(&dev) {
                continue;
            }
            path.push(&dev);
            let mut text = |path: &mut PathBuf, file: &str| {
                path.push(file);
                let v = scope.attr_string(path);
                path.pop();
                v
            };
            let address = text(&mut path, "address").unwrap_or_default();
            let broadcast = text(&mut path, "broadcast").unwrap_or_default();
            let duplex = text(&mut path, "duplex").unwrap_or_default();
            let operstate = text(&mut path, "operstate").unwrap_or_default();
            let ifalias = text(&mut path, "ifalias").unwrap_or_default();
            for (i, (file, _, _)) in NUMERIC.iter().enumerate() {
                path.push(file);
                values[i] = scope.attr_i64(&path);
                path.pop();
            }
            path.pop();
            let lab = [("device", dev.as_str())];
            up.add(&lab, if operstate == "up" { 1.0 } else { 0.0 });
            info.add(
                &[
                    ("device", &dev),
                    ("address", &address),
                    ("broadcast", &broadcast),
                    ("duplex", &duplex),
                    ("operstate", &operstate),
                    ("adminstate", admin_state(values[FLAGS_IDX])),
                    ("ifalias", &ifalias),
                ],
                1.0,
            );
            for (i, v) in values.iter().enumerate() {
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::CollectorFlags;
    use crate::paths::Paths;
    use clap::Parser;
    use oxmon_core::metrics::Value::Single;

    #[derive(clap::Parser)]
    struct T {
        #[command(flatten)]
        f: CollectorFlags,
    }

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
        let p = dir.path().to_path_buf();
        let paths = Paths {
            procfs: p.clone(),
            sysfs: p.clone(),
            rootfs: p.clone(),
            udev_data: p,
        };
        let t = T::parse_from([
            "x",
            "--collector.netclass.ignored-devices=^veth",
            "--collector.netclass.ignore-invalid-speed",
        ]);
        let c = NetClass::new(&Ctx {
            paths: &paths,
            flags: &t.f,
        })
        .unwrap();
        let mut out = Vec::new();
        let ctx = ScrapeContext::with_timeout(std::time::Duration::from_secs(1));
        c.collect(&ctx, &mut out).unwrap();
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

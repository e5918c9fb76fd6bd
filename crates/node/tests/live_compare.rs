//! Live comparison with node_exporter on this host.
//!
//! Debian's `prometheus-node-exporter` (1.5.x) and `oxmon-node` are started
//! side by side with the same explicit collector set (every collector the
//! oxmon-node issue names that node_exporter 1.5 also has) and the same
//! textfile directory, and scraped once each. The test asserts:
//!
//! - every `node_*` family node_exporter emits is present in oxmon-node's
//!   output with the same type and the same label names (except the
//!   differences listed in [`KNOWN_DIFFERENCES`] and [`NEWER_LABELS`],
//!   each with its reason);
//! - values that cannot change between the two scrapes agree: total
//!   memory, the size of every filesystem both report (and the set of
//!   mount points), boot time, the number of CPUs, the set of network
//!   devices and every interface property of netclass, the routing table
//!   and the set of root qdiscs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use oxmon_testkit::{require_program, ExporterProcess, Exposition, Readiness, StartOptions};

/// Collectors started on both sides.
const COLLECTORS: &[&str] = &[
    "arp",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "edac",
    "entropy",
    "ethtool",
    "filefd",
    "filesystem",
    "hwmon",
    "loadavg",
    "mdadm",
    "meminfo",
    "meminfo_numa",
    "netclass",
    "netdev",
    "netstat",
    "network_route",
    "nvme",
    "os",
    "powersupplyclass",
    "pressure",
    "qdisc",
    "schedstat",
    "sockstat",
    "softnet",
    "stat",
    "tcpstat",
    "textfile",
    "thermal_zone",
    "time",
    "timex",
    "udp_queues",
    "uname",
    "vmstat",
];

/// Collectors of the issue that node_exporter 1.5 does not have (added in
/// later node_exporter releases), so they are enabled on oxmon-node only
/// and not compared: `softirqs` (1.6), `cpu_vulnerabilities` (1.8).
const OXMON_ONLY: &[&str] = &["softirqs", "cpu_vulnerabilities"];

/// Interface families whose every sample is compared (netclass, and
/// netdev's `--collector.netdev.address-info`).
const NETCLASS_FAMILIES: &[&str] = &[
    "node_network_address_info",
    "node_network_info",
    "node_network_up",
    "node_network_address_assign_type",
    "node_network_carrier",
    "node_network_carrier_changes_total",
    "node_network_carrier_up_changes_total",
    "node_network_carrier_down_changes_total",
    "node_network_device_id",
    "node_network_dormant",
    "node_network_flags",
    "node_network_iface_id",
    "node_network_iface_link",
    "node_network_iface_link_mode",
    "node_network_mtu_bytes",
    "node_network_name_assign_type",
    "node_network_net_dev_group",
    "node_network_protocol_type",
    "node_network_speed_bytes",
    "node_network_transmit_queue_length",
];

/// The mount-point exclusion both exporters get (Debian's default).
const MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// Labels oxmon-node adds to a family because later node_exporter
/// releases (whose output the conformance suite scores against) added
/// them; node_exporter 1.5 does not have them yet.
const NEWER_LABELS: &[(&str, &str, &str)] = &[
    (
        "node_network_info",
        "adminstate",
        "added in node_exporter 1.7 (IFF_UP of the interface flags)",
    ),
    (
        "node_disk_info",
        "rotational",
        "added in node_exporter 1.6 (queue/rotational)",
    ),
    (
        "node_tcp_connection_states",
        "port",
        "added with the per-port flags (--collector.tcpstat.port.*), after 1.5",
    ),
    (
        "node_tcp_connection_states",
        "direction",
        "added with the per-port flags (--collector.tcpstat.port.*), after 1.5",
    ),
];

/// node_exporter families that oxmon-node is allowed to expose differently,
/// and why.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "node_exporter_build_info",
    "Go's build info carries goversion/goarch/goos/branch/tags; oxmon-node's \
     carries rustversion (same family name, type gauge, value 1)",
)];

fn start_both(textfile_dir: &str) -> (ExporterProcess, ExporterProcess) {
    let peer_bin = require_program("prometheus-node-exporter", "prometheus-node-exporter");
    let textfile_flag = format!("--collector.textfile.directory={textfile_dir}");
    // Debian patches two of node_exporter's defaults (mount points: adds
    // /mnt, /media, /run; netdev: excludes `lo`); pass one value to both so
    // the comparison is about the implementation, not the packaging.
    let mut common = vec![
        "--collector.disable-defaults".to_string(),
        textfile_flag,
        format!("--collector.filesystem.mount-points-exclude={MOUNT_POINTS_EXCLUDE}"),
        "--collector.netdev.device-exclude=^lo$".to_string(),
        "--collector.netdev.address-info".to_string(),
    ];
    common.extend(COLLECTORS.iter().map(|c| format!("--collector.{c}")));
    let peer_args: Vec<&str> = common.iter().map(String::as_str).collect();
    // node_exporter 1.5 has no /-/ready; wait for its port instead.
    let peer = ExporterProcess::start_with(
        &peer_bin,
        &peer_args,
        &[],
        StartOptions {
            readiness: Readiness::TcpConnect,
            timeout: Duration::from_secs(30),
            ..StartOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("starting prometheus-node-exporter: {e}"));
    let mut ours_args = common.clone();
    ours_args.extend(OXMON_ONLY.iter().map(|c| format!("--collector.{c}")));
    let ours_args: Vec<&str> = ours_args.iter().map(String::as_str).collect();
    let ours = ExporterProcess::start(env!("CARGO_BIN_EXE_oxmon-node"), &ours_args, &[]);
    (peer, ours)
}

/// Union of the label names of a family's samples.
fn label_names(exp: &Exposition, family: &str) -> BTreeSet<String> {
    exp.families
        .get(family)
        .map(|f| {
            f.samples
                .iter()
                .flat_map(|s| s.labels.keys().cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// `label value → sample value` of a family keyed by one label.
fn by_label(exp: &Exposition, sample: &str, label: &str) -> BTreeMap<String, f64> {
    exp.samples(sample)
        .into_iter()
        .filter_map(|s| Some((s.label(label)?.to_string(), s.value)))
        .collect()
}

#[test]
fn families_types_labels_and_stable_values_match_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("live.prom"),
        "# HELP live_compare_marker A textfile metric.\n# TYPE live_compare_marker gauge\nlive_compare_marker{kind=\"test\"} 3\n",
    )
    .unwrap();
    let (peer, ours) = start_both(dir.path().to_str().unwrap());
    let theirs = peer.scrape();
    let mine = ours.scrape();

    // Families, types, label names.
    let mut problems = Vec::new();
    let mut compared = 0;
    for (name, fam) in &theirs.families {
        if !name.starts_with("node_") {
            continue;
        }
        if KNOWN_DIFFERENCES.iter().any(|(n, _)| n == name) {
            assert!(
                mine.family(name).is_some(),
                "{name} is missing from oxmon-node"
            );
            continue;
        }
        compared += 1;
        let Some(my) = mine.family(name) else {
            problems.push(format!("missing family {name} ({})", fam.kind));
            continue;
        };
        if my.kind != fam.kind {
            problems.push(format!(
                "{name}: type {} in oxmon-node, {} in node_exporter",
                my.kind, fam.kind
            ));
        }
        let want = label_names(&theirs, name);
        let mut got = label_names(&mine, name);
        for (fam, label, _why) in NEWER_LABELS {
            if fam == name && !want.contains(*label) {
                got.remove(*label);
            }
        }
        if want != got {
            problems.push(format!(
                "{name}: labels {got:?} in oxmon-node, {want:?} in node_exporter"
            ));
        }
    }
    assert!(
        compared > 100,
        "only {compared} node_* families from node_exporter: did it start with the collectors?"
    );
    assert!(
        problems.is_empty(),
        "{} differences from node_exporter:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // Stable values.
    let mem = |e: &Exposition| e.value("node_memory_MemTotal_bytes", &[]);
    assert!(mem(&theirs).is_some(), "node_exporter has no MemTotal");
    assert_eq!(mem(&mine), mem(&theirs), "node_memory_MemTotal_bytes");

    let boot = |e: &Exposition| e.value("node_boot_time_seconds", &[]);
    assert!(boot(&theirs).is_some(), "node_exporter has no boot time");
    assert_eq!(boot(&mine), boot(&theirs), "node_boot_time_seconds");

    let cpus = |e: &Exposition| -> BTreeSet<String> {
        e.samples("node_cpu_seconds_total")
            .into_iter()
            .filter_map(|s| s.label("cpu").map(str::to_string))
            .collect()
    };
    assert!(!cpus(&theirs).is_empty());
    assert_eq!(cpus(&mine), cpus(&theirs), "CPUs in node_cpu_seconds_total");

    let sizes = |e: &Exposition| -> BTreeMap<(String, String, String), f64> {
        e.samples("node_filesystem_size_bytes")
            .into_iter()
            .map(|s| {
                let l = |k: &str| s.label(k).unwrap_or_default().to_string();
                ((l("mountpoint"), l("device"), l("fstype")), s.value)
            })
            .collect()
    };
    let (their_fs, my_fs) = (sizes(&theirs), sizes(&mine));
    assert!(!their_fs.is_empty(), "node_exporter reports no filesystem");
    assert_eq!(
        my_fs.keys().collect::<Vec<_>>(),
        their_fs.keys().collect::<Vec<_>>(),
        "filesystems reported"
    );
    assert_eq!(my_fs, their_fs, "node_filesystem_size_bytes");

    let mtus = |e: &Exposition| by_label(e, "node_network_mtu_bytes", "device");
    assert!(
        !mtus(&theirs).is_empty(),
        "node_exporter reports no interface"
    );
    assert_eq!(mtus(&mine), mtus(&theirs), "node_network_mtu_bytes");

    // Every interface property: oxmon-node takes most of them from
    // rtnetlink, node_exporter from sysfs; they must agree.
    for fam in NETCLASS_FAMILIES {
        let all = |e: &Exposition| -> BTreeMap<String, f64> {
            e.samples(fam)
                .into_iter()
                .map(|s| {
                    let mut labels = s.labels.clone();
                    labels.remove("adminstate");
                    (format!("{labels:?}"), s.value)
                })
                .collect()
        };
        assert_eq!(all(&mine), all(&theirs), "{fam}");
    }

    let netdev = |e: &Exposition| -> BTreeSet<String> {
        by_label(e, "node_network_receive_bytes_total", "device")
            .into_keys()
            .collect()
    };
    assert_eq!(netdev(&mine), netdev(&theirs), "netdev devices");

    // Routes and root qdiscs do not change during the test; both read
    // them from rtnetlink.
    for fam in ["node_network_route_info", "node_network_routes"] {
        let all = |e: &Exposition| -> BTreeMap<String, f64> {
            e.samples(fam)
                .into_iter()
                .map(|s| (format!("{:?}", s.labels), s.value))
                .collect()
        };
        assert_eq!(all(&mine), all(&theirs), "{fam}");
    }
    let qdiscs = |e: &Exposition| -> BTreeSet<String> {
        e.samples("node_qdisc_packets_total")
            .into_iter()
            .map(|s| format!("{:?}", s.labels))
            .collect()
    };
    assert_eq!(qdiscs(&mine), qdiscs(&theirs), "root qdiscs");

    assert_eq!(
        mine.value("live_compare_marker", &[("kind", "test")]),
        Some(3.0)
    );
    assert_eq!(
        theirs.value("live_compare_marker", &[("kind", "test")]),
        Some(3.0)
    );
}

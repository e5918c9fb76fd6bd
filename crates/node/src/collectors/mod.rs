//! The collector table: every collector oxmon-node knows, whether it is on
//! by default (as in node_exporter), and how to build it from the flags.
//!
//! Adding a collector: write `collectors/<name>.rs` (its doc comment, pure
//! parse functions, a `build` function, a `Flags` struct if it has
//! options, tests), then add one row to [`TABLE`] and, for flags, one
//! field to [`CollectorOptions`].

use std::sync::Arc;

use oxmon_core::Collector;

use crate::paths::Paths;

pub mod arp;
pub mod bcache;
pub mod bcachefs;
pub mod bonding;
pub mod btrfs;
pub mod buddyinfo;
pub mod cgroups;
pub mod conntrack;
pub mod cpu;
pub mod cpu_vulnerabilities;
pub mod cpufreq;
pub mod diskstats;
pub mod dmi;
pub mod dmmultipath;
pub mod drbd;
pub mod drm;
pub mod edac;
pub mod entropy;
pub mod ethtool;
pub mod fibrechannel;
pub mod filefd;
pub mod filesystem;
pub mod hwmon;
pub mod infiniband;
pub mod interrupts;
pub mod ipvs;
pub mod kernel_hung;
pub mod ksmd;
pub mod lnstat;
pub mod loadavg;
pub mod logind;
pub mod mdadm;
pub mod meminfo;
pub mod meminfo_numa;
pub mod mountstats;
pub mod netclass;
pub mod netdev;
pub mod netstat;
pub mod network_route;
pub mod nfs;
pub mod nfsd;
pub mod nvme;
pub mod nvmesubsystem;
pub mod os;
pub mod pcidevice;
pub mod perf;
pub mod powersupplyclass;
pub mod pressure;
pub mod processes;
pub mod qdisc;
pub mod rapl;
pub mod schedstat;
pub mod selinux;
pub mod slabinfo;
pub mod sockstat;
pub mod softirqs;
pub mod softnet;
pub mod stat;
pub mod swap;
pub mod sysctl;
pub mod systemd;
pub mod tapestats;
pub mod tcpstat;
pub mod textfile;
pub mod thermal_zone;
pub mod time;
pub mod timex;
pub mod udp_queues;
pub mod uname;
pub mod vmstat;
pub mod watchdog;
pub mod wifi;
pub mod xfrm;
pub mod xfs;
pub mod zfs;
pub mod zoneinfo;

#[cfg(test)]
mod mutations;

/// The per-collector options (`--collector.<name>.<option>`), each struct
/// owned by its collector's module.
#[derive(clap::Args, Debug, Clone)]
pub struct CollectorOptions {
    /// arp.
    #[command(flatten)]
    pub arp: arp::Flags,
    /// bcache.
    #[command(flatten)]
    pub bcache: bcache::Flags,
    /// cpu.
    #[command(flatten)]
    pub cpu: cpu::Flags,
    /// diskstats.
    #[command(flatten)]
    pub diskstats: diskstats::Flags,
    /// ethtool.
    #[command(flatten)]
    pub ethtool: ethtool::Flags,
    /// filesystem.
    #[command(flatten)]
    pub filesystem: filesystem::Flags,
    /// hwmon.
    #[command(flatten)]
    pub hwmon: hwmon::Flags,
    /// interrupts.
    #[command(flatten)]
    pub interrupts: interrupts::Flags,
    /// ipvs.
    #[command(flatten)]
    pub ipvs: ipvs::Flags,
    /// netclass.
    #[command(flatten)]
    pub netclass: netclass::Flags,
    /// netdev.
    #[command(flatten)]
    pub netdev: netdev::Flags,
    /// netstat.
    #[command(flatten)]
    pub netstat: netstat::Flags,
    /// pcidevice.
    #[command(flatten)]
    pub pcidevice: pcidevice::Flags,
    /// perf.
    #[command(flatten)]
    pub perf: perf::Flags,
    /// powersupplyclass.
    #[command(flatten)]
    pub powersupplyclass: powersupplyclass::Flags,
    /// qdisc.
    #[command(flatten)]
    pub qdisc: qdisc::Flags,
    /// rapl.
    #[command(flatten)]
    pub rapl: rapl::Flags,
    /// slabinfo.
    #[command(flatten)]
    pub slabinfo: slabinfo::Flags,
    /// stat.
    #[command(flatten)]
    pub stat: stat::Flags,
    /// sysctl.
    #[command(flatten)]
    pub sysctl: sysctl::Flags,
    /// systemd.
    #[command(flatten)]
    pub systemd: systemd::Flags,
    /// tapestats.
    #[command(flatten)]
    pub tapestats: tapestats::Flags,
    /// tcpstat.
    #[command(flatten)]
    pub tcpstat: tcpstat::Flags,
    /// textfile.
    #[command(flatten)]
    pub textfile: textfile::Flags,
    /// vmstat.
    #[command(flatten)]
    pub vmstat: vmstat::Flags,
    /// wifi.
    #[command(flatten)]
    pub wifi: wifi::Flags,
}

/// What a collector constructor gets.
pub struct Ctx<'a> {
    /// The filesystem roots.
    pub paths: &'a Paths,
    /// The per-collector options.
    pub options: &'a CollectorOptions,
}

/// Builds a collector; an error stops start-up (bad flag values).
pub type Build = fn(&Ctx<'_>) -> Result<Arc<dyn Collector>, String>;

/// One row of the table.
pub struct Entry {
    /// Name used in `--collector.<name>`, `collect[]` and the
    /// `collector` label.
    pub name: &'static str,
    /// On unless disabled (node_exporter's default).
    pub default_enabled: bool,
    /// Constructor.
    pub build: Build,
}

impl Entry {
    const fn on(name: &'static str, build: Build) -> Self {
        Entry {
            name,
            default_enabled: true,
            build,
        }
    }

    const fn off(name: &'static str, build: Build) -> Self {
        Entry {
            name,
            default_enabled: false,
            build,
        }
    }
}

/// All collectors, sorted by name.
pub const TABLE: &[Entry] = &[
    Entry::on("arp", arp::build),
    Entry::on("bcache", bcache::build),
    Entry::on("bcachefs", bcachefs::build),
    Entry::on("bonding", bonding::build),
    Entry::on("btrfs", btrfs::build),
    Entry::off("buddyinfo", buddyinfo::build),
    Entry::off("cgroups", cgroups::build),
    Entry::on("conntrack", conntrack::build),
    Entry::on("cpu", cpu::build),
    Entry::off("cpu_vulnerabilities", cpu_vulnerabilities::build),
    Entry::on("cpufreq", cpufreq::build),
    Entry::on("diskstats", diskstats::build),
    Entry::on("dmi", dmi::build),
    Entry::off("dmmultipath", dmmultipath::build),
    Entry::off("drbd", drbd::build),
    Entry::off("drm", drm::build),
    Entry::on("edac", edac::build),
    Entry::on("entropy", entropy::build),
    Entry::off("ethtool", ethtool::build),
    Entry::on("fibrechannel", fibrechannel::build),
    Entry::on("filefd", filefd::build),
    Entry::on("filesystem", filesystem::build),
    Entry::on("hwmon", hwmon::build),
    Entry::on("infiniband", infiniband::build),
    Entry::off("interrupts", interrupts::build),
    Entry::on("ipvs", ipvs::build),
    Entry::off("kernel_hung", kernel_hung::build),
    Entry::off("ksmd", ksmd::build),
    Entry::off("lnstat", lnstat::build),
    Entry::on("loadavg", loadavg::build),
    Entry::off("logind", logind::build),
    Entry::on("mdadm", mdadm::build),
    Entry::on("meminfo", meminfo::build),
    Entry::off("meminfo_numa", meminfo_numa::build),
    Entry::off("mountstats", mountstats::build),
    Entry::on("netclass", netclass::build),
    Entry::on("netdev", netdev::build),
    Entry::on("netstat", netstat::build),
    Entry::off("network_route", network_route::build),
    Entry::on("nfs", nfs::build),
    Entry::on("nfsd", nfsd::build),
    Entry::on("nvme", nvme::build),
    Entry::off("nvmesubsystem", nvmesubsystem::build),
    Entry::on("os", os::build),
    Entry::off("pcidevice", pcidevice::build),
    Entry::off("perf", perf::build),
    Entry::on("powersupplyclass", powersupplyclass::build),
    Entry::on("pressure", pressure::build),
    Entry::off("processes", processes::build),
    Entry::off("qdisc", qdisc::build),
    Entry::on("rapl", rapl::build),
    Entry::on("schedstat", schedstat::build),
    Entry::on("selinux", selinux::build),
    Entry::off("slabinfo", slabinfo::build),
    Entry::on("sockstat", sockstat::build),
    Entry::off("softirqs", softirqs::build),
    Entry::on("softnet", softnet::build),
    Entry::on("stat", stat::build),
    Entry::off("swap", swap::build),
    Entry::off("sysctl", sysctl::build),
    Entry::off("systemd", systemd::build),
    Entry::on("tapestats", tapestats::build),
    Entry::off("tcpstat", tcpstat::build),
    Entry::on("textfile", textfile::build),
    Entry::on("thermal_zone", thermal_zone::build),
    Entry::on("time", time::build),
    Entry::on("timex", timex::build),
    Entry::on("udp_queues", udp_queues::build),
    Entry::on("uname", uname::build),
    Entry::on("vmstat", vmstat::build),
    Entry::on("watchdog", watchdog::build),
    Entry::off("wifi", wifi::build),
    Entry::off("xfrm", xfrm::build),
    Entry::on("xfs", xfs::build),
    Entry::on("zfs", zfs::build),
    Entry::off("zoneinfo", zoneinfo::build),
];

/// node_exporter collectors oxmon-node does not implement. Their
/// `--collector.<name>` / `--no-collector.<name>` flags are accepted so a
/// node_exporter command line keeps working; enabling one logs a warning.
pub const NOT_IMPLEMENTED: &[&str] = &["ntp", "runit", "supervisord", "thermal"];

/// `--collector.<name>`, `--no-collector.<name>` and
/// `--collector.disable-defaults` for [`TABLE`] and [`NOT_IMPLEMENTED`].
pub fn selection_flags() -> oxmon_core::collector_flags::CollectorFlags {
    oxmon_core::collector_flags::CollectorFlags::new(
        TABLE.iter().map(|e| (e.name, e.default_enabled)),
    )
    .not_implemented(NOT_IMPLEMENTED.iter().copied())
}

/// Helpers for collector tests: options as parsed from a command line, roots
/// that all point at one fixture directory, a scrape and a label lookup.
#[cfg(test)]
pub mod testing {
    use std::path::Path;

    use clap::Parser;
    use oxmon_core::collector::{CollectResult, ScrapeContext};
    use oxmon_core::{Collector, MetricFamily};

    use super::{CollectorOptions, Ctx, TABLE};
    use crate::paths::Paths;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: CollectorOptions,
    }

    /// The per-collector options parsed from `args`.
    pub fn options(args: &[&str]) -> CollectorOptions {
        Cli::try_parse_from(std::iter::once("oxmon-node").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .options
    }

    /// Writes `text` to `root/rel`, creating the directories on the way.
    pub fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// procfs, sysfs, rootfs and udev data all at `root`.
    pub fn paths_under(root: &Path) -> Paths {
        Paths {
            procfs: root.into(),
            sysfs: root.into(),
            rootfs: root.into(),
            udev_data: root.into(),
        }
    }

    /// The collector `name` of the table, built with default options.
    pub fn build(name: &str, paths: &Paths) -> std::sync::Arc<dyn Collector> {
        build_with(name, paths, &[])
    }

    /// The collector `name` of the table, built with the options of `args`.
    pub fn build_with(name: &str, paths: &Paths, args: &[&str]) -> std::sync::Arc<dyn Collector> {
        let options = options(args);
        let entry = TABLE.iter().find(|e| e.name == name).expect(name);
        (entry.build)(&Ctx {
            paths,
            options: &options,
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// One scrape of `collector`, which must succeed.
    pub fn scrape(collector: &dyn Collector) -> Vec<MetricFamily> {
        let (out, result) = try_scrape(collector);
        result.unwrap();
        out
    }

    /// One scrape of `collector`: the families it wrote (kept even when it
    /// fails, as the registry keeps them) and its result.
    pub fn try_scrape(collector: &dyn Collector) -> (Vec<MetricFamily>, CollectResult) {
        // I/O too: the netlink collectors await their sockets.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ctx = ScrapeContext::with_timeout(std::time::Duration::from_secs(5));
        let mut out = Vec::new();
        let result = rt.block_on(collector.collect(&ctx, &mut out));
        (out, result)
    }

    /// The value of `label` on the first series of family `name`.
    pub fn first_label(out: &[MetricFamily], name: &str, label: &str) -> String {
        let fam = out.iter().find(|f| f.name == name).expect(name);
        let series = fam.metrics.first().expect("one series");
        let (_, v) = series.labels.iter().find(|(k, _)| k == label).expect(label);
        v.to_string()
    }

    /// The value of the first series of family `name` that has all of
    /// `labels`, if any.
    pub fn single(out: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let fam = out.iter().find(|f| f.name == name)?;
        fam.metrics
            .iter()
            .find(|m| {
                labels
                    .iter()
                    .all(|(k, v)| m.labels.iter().any(|(mk, mv)| mk == k && mv == v))
            })
            .map(|m| match m.value {
                oxmon_core::metrics::Value::Single(v) => v,
                _ => f64::NAN,
            })
    }

    /// Writes `text` beside `path` and renames it over `path`, as package
    /// managers and udev replace files.
    pub fn replace_by_rename(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp-replace");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    /// Copies the committed fixture file `rel` (under `tests/fixtures`) to
    /// `root/rel`.
    pub fn copy_fixture(root: &Path, rel: &str) {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(rel);
        let to = root.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{options, paths_under};
    use super::*;

    fn build(name: &str, args: &[&str]) -> Result<(), String> {
        let paths = paths_under(std::path::Path::new("/nonexistent"));
        let options = options(args);
        let ctx = Ctx {
            paths: &paths,
            options: &options,
        };
        let entry = TABLE.iter().find(|e| e.name == name).unwrap();
        (entry.build)(&ctx).map(|_| ())
    }

    #[test]
    fn table_is_sorted_and_names_match_collectors() {
        assert!(TABLE.windows(2).all(|w| w[0].name < w[1].name));
        let paths = paths_under(std::path::Path::new("/nonexistent"));
        let options = options(&[]);
        let ctx = Ctx {
            paths: &paths,
            options: &options,
        };
        for e in TABLE {
            let c = (e.build)(&ctx).unwrap_or_else(|err| panic!("{}: {err}", e.name));
            assert_eq!(c.name(), e.name);
        }
    }

    /// The release link's hot-text script (scripts/hot-text) was measured
    /// with every default collector: one added since would have its code
    /// scattered through the binary again, and RSS would creep back up.
    #[test]
    fn hot_text_script_was_measured_with_every_default_collector() {
        let script = include_str!("../../hot-text.ld");
        assert!(script.contains("SECTIONS {") && script.ends_with("} INSERT BEFORE .text;\n"));
        let missing: Vec<&str> = TABLE
            .iter()
            .filter(|e| e.default_enabled)
            .map(|e| e.name)
            .filter(|name| {
                // Legacy symbols spell paths `10collectors3cpu`, or
                // `collectors..cpu..` inside an impl's type.
                let legacy = format!("10collectors{}{name}", name.len());
                !script.contains(&legacy) && !script.contains(&format!("collectors..{name}.."))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "hot-text.ld predates default collectors {missing:?}: \
             run scripts/hot-text --package oxmon-node"
        );
    }

    #[test]
    fn node_exporter_flag_names_and_defaults() {
        let f = options(&[]);
        assert_eq!(
            f.filesystem.mount_points_exclude,
            filesystem::DEFAULT_MOUNT_POINTS_EXCLUDE
        );
        assert_eq!(
            f.filesystem.fs_types_exclude,
            filesystem::DEFAULT_FS_TYPES_EXCLUDE
        );
        assert_eq!(
            f.filesystem.mount_timeout,
            std::time::Duration::from_secs(5)
        );
        assert_eq!(f.vmstat.fields, vmstat::DEFAULT_FIELDS);
        assert_eq!(f.netstat.fields, netstat::DEFAULT_FIELDS);
        assert_eq!(f.netclass.ignored_devices, "^$");
        assert_eq!(f.powersupplyclass.ignored_supplies, "^$");
        assert!(!f.cpu.info && !f.stat.softirq && !f.cpu.no_guest);
        assert_eq!(f.tapestats.ignored_devices, "^$");
        assert!(!f.pcidevice.names && f.pcidevice.ids_file.is_none());
        assert_eq!(f.slabinfo.slabs_include, ".*");
        assert!(f.slabinfo.slabs_exclude.is_empty());
        assert_eq!(f.ipvs.backend_labels, ipvs::BACKEND_LABELS.join(","));
        assert!(!f.interrupts.no_include_zeros && !f.rapl.enable_zone_label);
        assert!(f.sysctl.include.is_empty() && f.sysctl.include_info.is_empty());
        let g = options(&[
            "--collector.rapl.enable-zone-label",
            "--no-collector.interrupts.include-zeros",
            "--collector.sysctl.include=fs.file-nr",
            "--collector.sysctl.include=kernel.threads-max",
        ]);
        assert!(g.rapl.enable_zone_label && g.interrupts.no_include_zeros);
        assert_eq!(g.sysctl.include, ["fs.file-nr", "kernel.threads-max"]);
        let g = options(&[
            "--collector.rapl.enable-zone-label",
            "--no-collector.rapl.enable-zone-label",
        ]);
        assert!(!g.rapl.enable_zone_label, "the later flag wins");
        let f = options(&[
            "--collector.cpu.info",
            "--collector.stat.softirq",
            "--no-collector.cpu.guest",
            "--collector.filesystem.ignored-mount-points=^/x",
            "--collector.diskstats.ignored-devices=^loop",
            "--collector.filesystem.mount-timeout=250ms",
            "--collector.textfile.directory=/a",
            "--collector.textfile.directory=/b",
            "--collector.netdev.device-exclude=^veth",
            "--no-collector.netdev.netlink",
            "--collector.hwmon.chip-include=^coretemp",
            "--collector.tapestats.ignored-devices=^st1$",
            "--collector.pcidevice.names",
            "--collector.pcidevice.idsfile=/srv/pci.ids",
        ]);
        assert_eq!(f.tapestats.ignored_devices, "^st1$");
        assert!(f.pcidevice.names);
        assert_eq!(f.pcidevice.ids_file.as_deref(), Some("/srv/pci.ids"));
        assert!(f.cpu.info && f.stat.softirq && f.cpu.no_guest);
        assert_eq!(f.filesystem.mount_points_exclude, "^/x");
        assert_eq!(f.diskstats.device_exclude.as_deref(), Some("^loop"));
        assert_eq!(
            f.filesystem.mount_timeout,
            std::time::Duration::from_millis(250)
        );
        assert_eq!(f.textfile.directory, ["/a", "/b"]);
        assert_eq!(f.netdev.device_exclude.as_deref(), Some("^veth"));
        assert!(f.netdev.no_netlink);
        assert_eq!(f.hwmon.chip_include.as_deref(), Some("^coretemp"));
    }

    #[test]
    fn dbus_perf_and_ethtool_flags() {
        let f = options(&[]);
        assert_eq!(f.systemd.unit_include, ".+");
        assert_eq!(f.systemd.unit_exclude, systemd::DEFAULT_UNIT_EXCLUDE);
        assert!(!f.systemd.enable_task_metrics && !f.systemd.enable_restarts_metrics);
        assert!(!f.systemd.enable_start_time_metrics);
        assert_eq!(f.perf.cpus, "");
        assert!(f.perf.tracepoint.is_empty() && !f.perf.disable_hardware_profilers);
        assert_eq!(f.ethtool.metrics_include, ".*");
        assert_eq!(f.ethtool.device_include, None);
        let f = options(&[
            "--collector.systemd.unit-whitelist=ssh.*",
            "--collector.systemd.unit-blacklist=",
            "--collector.systemd.enable-task-metrics",
            "--collector.perf.cpus=0-3:2",
            "--collector.perf.tracepoint=sched:sched_switch",
            "--collector.perf.tracepoint=irq:irq_handler_entry",
            "--collector.perf.cache-profilers=L1DataReadHit",
            "--collector.perf.disable-hardware-profilers",
            "--collector.ethtool.device-exclude=^veth",
            "--collector.ethtool.metrics-include=allowance",
        ]);
        assert_eq!(f.systemd.unit_include, "ssh.*");
        assert_eq!(f.systemd.unit_exclude, "");
        assert!(f.systemd.enable_task_metrics);
        assert_eq!(f.perf.cpus, "0-3:2");
        assert_eq!(f.perf.tracepoint.len(), 2);
        assert_eq!(f.perf.cache_profilers, ["L1DataReadHit"]);
        assert!(f.perf.disable_hardware_profilers);
        assert_eq!(f.ethtool.device_exclude.as_deref(), Some("^veth"));
        assert_eq!(f.ethtool.metrics_include, "allowance");
        let e = build(
            "ethtool",
            &[
                "--collector.ethtool.device-include=^eth",
                "--collector.ethtool.device-exclude=^veth",
            ],
        )
        .err()
        .unwrap();
        assert!(e.contains("mutually exclusive"), "{e}");
        let e = build("systemd", &["--collector.systemd.unit-exclude=("])
            .err()
            .unwrap();
        assert!(e.contains("--collector.systemd.unit-exclude"), "{e}");
        let e = build("perf", &["--collector.perf.cpus=a-b"]).err().unwrap();
        assert!(e.contains("--collector.perf.cpus"), "{e}");
    }

    #[test]
    fn bad_flag_values_stop_start_up_with_the_flag_named() {
        let e = build(
            "diskstats",
            &[
                "--collector.diskstats.device-exclude=^sd",
                "--collector.diskstats.device-include=^nvme",
            ],
        )
        .unwrap_err();
        assert!(e.contains("mutually exclusive"), "{e}");
        let e = build("vmstat", &["--collector.vmstat.fields=("]).unwrap_err();
        assert!(e.contains("--collector.vmstat.fields"), "{e}");
        let e = build("cpu", &["--collector.cpu.info.flags-include=[a-"]).unwrap_err();
        assert!(e.contains("--collector.cpu.info.flags-include"), "{e}");
        let e = build("netstat", &["--collector.netstat.fields=("]).unwrap_err();
        assert!(e.contains("--collector.netstat.fields"), "{e}");
        let e = build("ipvs", &["--collector.ipvs.backend-labels=proto,port"]).unwrap_err();
        assert!(e.contains("--collector.ipvs.backend-labels"), "{e}");
        let e = build("slabinfo", &["--collector.slabinfo.slabs-exclude=("]).unwrap_err();
        assert!(e.contains("--collector.slabinfo.slabs-exclude"), "{e}");
        let e = build("hwmon", &["--collector.hwmon.sensor-include=("]).unwrap_err();
        assert!(e.contains("--collector.hwmon.sensor-include"), "{e}");
        let e = build("tapestats", &["--collector.tapestats.ignored-devices=("]).unwrap_err();
        assert!(e.contains("--collector.tapestats.ignored-devices"), "{e}");
    }

    /// Feeds every text parser pseudo-random text built from the
    /// characters their formats use (plus multi-byte ones): none may panic.
    #[test]
    fn parsers_never_panic_on_garbage() {
        const PIECES: &[&str] = &[
            "cpu",
            "cpu0",
            " ",
            "  ",
            "\t",
            "\n",
            ":",
            "=",
            ",",
            "-",
            ".",
            "{",
            "}",
            "\"",
            "\\",
            "#",
            "# HELP ",
            "# TYPE ",
            "counter",
            "histogram",
            "summary",
            "_bucket",
            "_sum",
            "le=\"",
            "quantile",
            "kB",
            "0",
            "1",
            "42",
            "18446744073709551616",
            "-7",
            "1e3",
            "NaN",
            "+Inf",
            "é",
            "€",
            "\u{1F600}",
            "some",
            "full",
            "total=",
            "Node",
            "E:",
            "TZif",
            "x",
            "_",
            "\\040",
            "processor",
            "flags",
            "Mitigation",
            "device ",
            " mounted on ",
            " with fstype nfs4 statvers=1.1",
            "xprt:",
            "per-op",
            "proc4ops",
            "GT/s PCIe",
            "0000:01:00.0",
            "Gb/sec",
            "N/A (no PMA)",
            "Vulnerable",
            "\0",
            "Node 0, zone",
            "protection: (",
            "->",
            "[",
            "]",
            ")",
            "(",
            "/",
            "FWM",
            "TCP",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let len = (next() % 40) as usize;
            let text: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let t = text.as_str();
            let _ = loadavg::parse_loadavg(t);
            let _ = t.lines().map(meminfo::parse_mem_line).count();
            let _ = stat::parse_stat(t);
            let _ = cpu::parse_cpu_times(t);
            let _ = cpu::parse_cpuinfo(t);
            let _ = cpu::parse_cpu_list(t);
            let _ = cpu_vulnerabilities::parse_vulnerability(t);
            let _ = cpufreq::parse_khz(t);
            let _ = diskstats::parse_diskstats(t);
            let _ = diskstats::parse_udev(t);
            let _ = filefd::parse_file_nr(t);
            let _ = filesystem::parse_mountinfo(t);
            let _ = filesystem::parse_mounts(t);
            let _ = filesystem::unescape_mount(t);
            let _ = meminfo_numa::parse_node_meminfo(t);
            let _ = meminfo_numa::parse_numastat(t);
            let _ = os::parse_os_release(t);
            let _ = os::major_minor(t);
            let _ = os::parse_date(t);
            let _ = pressure::parse_psi(t);
            let _ = schedstat::parse_schedstat(t);
            let _ = softirqs::parse_softirqs(t);
            let _ = textfile::parse_file(t);
            let _ = textfile::wildcard_match(t, t);
            let _ = vmstat::parse_vmstat(t);
            let _ = time::parse_tzif(t.as_bytes());
            let _ = time::parse_fixed_posix_tz(t);
            let _ = nfs::parse_rpc_lines(t);
            let _ = drbd::parse_drbd(t);
            let _ = mountstats::parse_mountstats(t);
            let _ = mountstats::mountinfo_addrs(t);
            let _ = infiniband::parse_state(t);
            let _ = infiniband::parse_rate(t);
            let _ = infiniband::parse_counter(t);
            let _ = fibrechannel::parse_statistic(t);
            let _ = fibrechannel::strip_hex_prefix(t);
            let _ = pcidevice::parse_location(t);
            let _ = pcidevice::parse_link_target(t);
            let _ = pcidevice::parse_link_speed(t);
            let _ = pcidevice::parse_pci_ids(t);
            let _ = nvmesubsystem::member(t);
            let _ = tapestats::is_drive(t);
            let _ = buddyinfo::parse_buddyinfo(t);
            let _ = cgroups::parse_cgroups(t);
            let _ = interrupts::parse_interrupts(t);
            let _ = ipvs::parse_ipvs_stats(t);
            let _ = ipvs::parse_ipvs_backends(t);
            let _ = ipvs::parse_addr_port(t);
            let _ = lnstat::parse_net_stat(t);
            let _ = processes::parse_stat(t);
            let _ = rapl::split_index(t);
            let _ = selinux::parse_avc_cache_stats(t);
            let _ = selinux::parse_avc_hash_stats(t);
            let _ = selinux::config_mode(t);
            let _ = slabinfo::parse_slabinfo(t);
            let _ = swap::parse_swaps(t);
            let _ = sysctl::sysctl_families(&sysctl::parse_include(t, true), t);
            let _ = sysctl::sysctl_families(&sysctl::parse_include(t, false), t);
            let _ = xfrm::parse_xfrm_stat(t);
            let _ = zoneinfo::parse_zoneinfo(t);
        }
    }
}

//! End-to-end test on a fake host: the real `oxmon-node` binary is started
//! on the procfs/sysfs/rootfs/udev tree under `tests/fixtures/` (written for
//! this project) with a fixed set of collectors, and its `/metrics` is
//! compared exactly with `tests/fixtures/golden.txt`.
//!
//! Samples that depend on the running process or the live host are dropped
//! first (see [`DROPPED`]); the absolute path of the fixture tree is
//! replaced by `FIXTURES`. Run with `UPDATE_GOLDEN=1` to rewrite the golden
//! file after an intended change, and review the diff.
//!
//! The golden file is then linted with `promtool check metrics`, and a
//! second run on an empty tree checks that absent sources make collectors
//! report nothing rather than fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use oxmon_testkit::{require_program, ExporterProcess};

/// Families left out of the comparison: process self-metrics, build info,
/// timings, the wall clock and time zone, file mtimes and the live kernel's
/// uname.
const DROPPED: &[&str] = &[
    "process_",
    "node_exporter_build_info",
    "node_scrape_collector_duration_seconds",
    "node_time_seconds",
    "node_time_zone_offset_seconds",
    "node_textfile_mtime_seconds",
    "node_uname_info",
];

/// Collectors exercised by the test: all of them (`uname` and parts of
/// `time` read the live system and are filtered above; netdev and arp read
/// `<procfs>` instead of rtnetlink, qdisc and wifi read JSON fixtures;
/// network_route and tcpstat read only the live kernel and have their own
/// tests).
const COLLECTORS: &[&str] = &[
    "arp",
    "bcache",
    "bcachefs",
    "bonding",
    "btrfs",
    "buddyinfo",
    "cgroups",
    "conntrack",
    "cpu",
    "cpu_vulnerabilities",
    "cpufreq",
    "diskstats",
    "dmi",
    "dmmultipath",
    "drbd",
    "drm",
    "edac",
    "entropy",
    "fibrechannel",
    "filefd",
    "filesystem",
    "hwmon",
    "infiniband",
    "interrupts",
    "ipvs",
    "kernel_hung",
    "ksmd",
    "lnstat",
    "loadavg",
    "mdadm",
    "meminfo",
    "meminfo_numa",
    "mountstats",
    "netclass",
    "netdev",
    "netstat",
    "nfs",
    "nfsd",
    "nvme",
    "nvmesubsystem",
    "os",
    "pcidevice",
    "powersupplyclass",
    "pressure",
    "processes",
    "qdisc",
    "rapl",
    "schedstat",
    "selinux",
    "slabinfo",
    "sockstat",
    "softirqs",
    "softnet",
    "stat",
    "swap",
    "sysctl",
    "tapestats",
    "textfile",
    "thermal_zone",
    "time",
    "udp_queues",
    "uname",
    "vmstat",
    "watchdog",
    "wifi",
    "xfrm",
    "xfs",
    "zfs",
    "zoneinfo",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The metric name a line of exposition text is about.
fn line_metric(line: &str) -> &str {
    if let Some(rest) = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
    {
        return rest.split(' ').next().unwrap_or("");
    }
    line.split(['{', ' ']).next().unwrap_or("")
}

fn keep(line: &str) -> bool {
    let name = line_metric(line);
    !DROPPED.iter().any(|d| {
        if d.ends_with('_') {
            name.starts_with(d)
        } else {
            name == *d
        }
    })
}

fn normalize(body: &str, fixtures: &Path) -> String {
    let root = fixtures.to_string_lossy();
    let mut out = String::new();
    for line in body.lines().filter(|l| keep(l)) {
        out.push_str(&line.replace(root.as_ref(), "FIXTURES"));
        out.push('\n');
    }
    out
}

/// A readable line diff (longest common subsequence), `-` expected, `+` got.
fn diff(expected: &str, got: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        }
    }
    out
}

fn scrape_fixture_host() -> String {
    let f = fixtures();
    let mut args: Vec<String> = vec![
        format!("--path.procfs={}", f.join("proc").display()),
        format!("--path.sysfs={}", f.join("sys").display()),
        format!("--path.rootfs={}", f.join("rootfs").display()),
        format!("--path.udev.data={}", f.join("udev/data").display()),
        format!(
            "--collector.textfile.directory={}",
            f.join("textfile").display()
        ),
        "--collector.disable-defaults".into(),
        "--collector.cpu.info".into(),
        "--collector.cpu.info.flags-include=^(aes|avx.*)$".into(),
        "--collector.cpu.info.bugs-include=^(spectre_.*|mds)$".into(),
        "--collector.stat.softirq".into(),
        "--collector.bcache.priorityStats".into(),
        "--no-collector.netdev.netlink".into(),
        "--no-collector.arp.netlink".into(),
        "--collector.arp.device-exclude=^veth".into(),
        format!("--collector.qdisc.fixtures={}", f.join("qdisc").display()),
        "--collector.qdisc.device-include=^(enp3s0|br-lan|wlp4s0)$".into(),
        format!("--collector.wifi.fixtures={}", f.join("wifi").display()),
        // The bonding fixture's master is a directory of class/net too;
        // netclass's own fixture devices stay eth0 and lo.
        "--collector.netclass.ignored-devices=^bond".into(),
        "--collector.sysctl.include=kernel.threads-max".into(),
        "--collector.sysctl.include=fs.file-nr:allocated,unused,maximum".into(),
        "--collector.sysctl.include-info=kernel.seccomp.actions_avail".into(),
    ];
    args.extend(COLLECTORS.iter().map(|c| format!("--collector.{c}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let exporter =
        ExporterProcess::start(env!("CARGO_BIN_EXE_oxmon-node"), &args, &[("TZ", "UTC")]);
    let resp = exporter.get_with("/metrics", &[("Accept", "text/plain;version=0.0.4")]);
    assert_eq!(resp.status, 200, "scrape failed:\n{}", exporter.log());
    normalize(&resp.body, &f)
}

#[test]
fn fixture_tree_matches_golden() {
    let golden_path = fixtures().join("golden.txt");
    let got = scrape_fixture_host();
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&golden_path, &got).unwrap();
        eprintln!("rewrote {}", golden_path.display());
        return;
    }
    let expected = std::fs::read_to_string(&golden_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            golden_path.display()
        )
    });
    if got != expected {
        panic!(
            "/metrics on the fixture tree differs from {} (-expected +got); \
             run with UPDATE_GOLDEN=1 if the change is intended:\n{}",
            golden_path.display(),
            diff(&expected, &got)
        );
    }
}

/// The golden file must pass `promtool check metrics`. promtool exits 3
/// when it only has lint findings; node_exporter's own names trigger some
/// (kernel field and SNMP counter names in camelCase, entropy in bits). Each finding must be
/// one of [`KNOWN_LINT`], each explained there; a parse error (exit 1) or
/// any other finding fails.
#[test]
fn golden_passes_promtool_check_metrics() {
    let promtool = require_program("promtool", "prometheus");
    let golden = std::fs::read_to_string(fixtures().join("golden.txt")).unwrap();
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(golden.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let unexpected: Vec<&&str> = findings
        .iter()
        .filter(|l| {
            !KNOWN_LINT
                .iter()
                .any(|(prefix, message, _why)| l.starts_with(prefix) && l.contains(message))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "promtool check metrics reported problems beyond the known ones:\n{}",
        unexpected
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    match out.status.code() {
        Some(0) => assert!(findings.is_empty()),
        Some(3) => assert!(!findings.is_empty(), "exit 3 without findings"),
        other => panic!("promtool check metrics exited with {other:?}:\n{text}"),
    }
}

/// Lint findings promtool reports on node_exporter-compatible output:
/// (metric name prefix, message, why it stays). Renaming any of these would
/// break the dashboards and alerts written for node_exporter.
const KNOWN_LINT: &[(&str, &str, &str)] = &[
    (
        "node_memory_",
        "should be written in 'snake_case' not 'camelCase'",
        "meminfo and NUMA metrics carry the kernel's field names (MemTotal, HugePages_Free) as node_exporter does",
    ),
    (
        "node_netstat_",
        "should be written in 'snake_case' not 'camelCase'",
        "netstat metrics carry the kernel's SNMP counter names (TcpExt_ListenDrops) as node_exporter does",
    ),
    (
        "node_entropy_",
        "use base unit \"bytes\" instead of \"bits\"",
        "node_entropy_available_bits / node_entropy_pool_size_bits are node_exporter's names",
    ),
    (
        "node_wifi_station_",
        "use base unit \"bytes\" instead of \"bits\"",
        "node_wifi_station_{receive,transmit}_bits_per_second are node_exporter's names",
    ),
];

/// On a host where none of the sources exist (an empty procfs, sysfs and
/// rootfs), every collector succeeds and reports nothing; only the
/// collectors that read the live kernel (uname, the clock) and the textfile
/// collector's error flag for its missing directory remain.
#[test]
fn empty_host_reports_nothing_and_every_collector_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut args: Vec<String> = vec![
        format!("--path.procfs={}", root.join("proc").display()),
        format!("--path.sysfs={}", root.join("sys").display()),
        format!("--path.rootfs={}", root.display()),
        format!("--path.udev.data={}", root.join("udev").display()),
        format!(
            "--collector.textfile.directory={}",
            root.join("textfile").display()
        ),
        "--collector.disable-defaults".into(),
        "--no-collector.netdev.netlink".into(),
        "--no-collector.arp.netlink".into(),
        format!(
            "--collector.qdisc.fixtures={}",
            root.join("qdisc").display()
        ),
        format!("--collector.wifi.fixtures={}", root.join("wifi").display()),
        // The bonding fixture's master is a directory of class/net too;
        // netclass's own fixture devices stay eth0 and lo.
        "--collector.netclass.ignored-devices=^bond".into(),
        "--collector.sysctl.include=kernel.threads-max".into(),
        "--collector.sysctl.include=fs.file-nr:allocated,unused,maximum".into(),
        "--collector.sysctl.include-info=kernel.seccomp.actions_avail".into(),
    ];
    args.extend(COLLECTORS.iter().map(|c| format!("--collector.{c}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let exporter = ExporterProcess::start(env!("CARGO_BIN_EXE_oxmon-node"), &args, &[]);
    let exp = exporter.scrape();

    let success = exp.samples("node_scrape_collector_success");
    let mut reported: Vec<&str> = success
        .iter()
        .map(|s| s.labels.get("collector").map(String::as_str).unwrap_or(""))
        .collect();
    reported.sort_unstable();
    assert_eq!(reported, COLLECTORS);
    for s in &success {
        assert_eq!(
            s.value, 1.0,
            "collector failed on an empty host: {:?}",
            s.labels
        );
    }
    let families: Vec<&str> = exp
        .names()
        .into_iter()
        .filter(|n| n.starts_with("node_") && !n.starts_with("node_scrape_collector_"))
        .filter(|n| *n != "node_exporter_build_info")
        .collect();
    assert_eq!(
        families,
        [
            // node_exporter reports SELinux as disabled rather than nothing.
            "node_selinux_enabled",
            "node_textfile_scrape_error",
            "node_time_seconds",
            "node_time_zone_offset_seconds",
            "node_uname_info"
        ]
    );
    assert_eq!(exp.value("node_textfile_scrape_error", &[]), Some(1.0));
}

#[test]
fn diff_is_readable() {
    let d = diff("a\nb\nc\n", "a\nx\nc\n");
    assert_eq!(d, "+x\n-b\n");
}

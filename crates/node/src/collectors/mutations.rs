//! Seeded mutation test of every collector that parses procfs, sysfs,
//! udev or rootfs files: the committed fixture files are corrupted (a
//! token replaced by odd text, bytes inserted or dropped, lines
//! duplicated, dropped, swapped or cut, invalid UTF-8), each collector
//! scrapes the corrupted tree, and whatever it exports — whether it
//! succeeds or fails — must encode to exposition text that oxmon-core's
//! parser (as strict as Prometheus') reads back, in both formats. Not only
//! "no panic": a field name that is no metric name, a duplicate label or a
//! broken escape fails it, naming the seed's collector, file and content.
//! textfile is left to oxmon-core's own mutation test of its parser;
//! timex and uname read no files.

use std::path::{Path, PathBuf};

use oxmon_core::encode::{encode, Format};
use oxmon_core::metrics::normalize;

use super::testing::{build_with, try_scrape};
use super::TABLE;
use crate::paths::Paths;

/// Each collector, the options it runs with (every parser on) and the
/// files or directories (relative to `tests/fixtures`) it reads.
const READS: &[(&str, &[&str], &[&str])] = &[
    (
        "bonding",
        &[],
        &["sys/class/net/bonding_masters", "sys/class/net/bond0"],
    ),
    ("buddyinfo", &[], &["proc/buddyinfo"]),
    ("cgroups", &[], &["proc/cgroups"]),
    (
        "conntrack",
        &[],
        &["proc/sys/net/netfilter", "proc/net/stat"],
    ),
    (
        "cpu",
        &[
            "--collector.cpu.info",
            "--collector.cpu.info.flags-include=.",
            "--collector.cpu.info.bugs-include=.",
        ],
        &["proc/stat", "proc/cpuinfo", "sys/devices/system/cpu"],
    ),
    (
        "cpu_vulnerabilities",
        &[],
        &["sys/devices/system/cpu/vulnerabilities"],
    ),
    (
        "cpufreq",
        &["--collector.cpu.info"],
        &["sys/devices/system/cpu", "proc/cpuinfo"],
    ),
    (
        "diskstats",
        &[],
        &["proc/diskstats", "udev/data", "sys/block"],
    ),
    ("dmi", &[], &["sys/class/dmi/id"]),
    ("drm", &[], &["sys/class/drm"]),
    ("edac", &[], &["sys/devices/system/edac"]),
    ("entropy", &[], &["proc/sys/kernel/random"]),
    ("filefd", &[], &["proc/sys/fs"]),
    ("filesystem", &[], &["proc/1/mountinfo"]),
    ("hwmon", &[], &["sys/class/hwmon"]),
    ("interrupts", &[], &["proc/interrupts"]),
    ("ipvs", &[], &["proc/net/ip_vs", "proc/net/ip_vs_stats"]),
    (
        "kernel_hung",
        &[],
        &["proc/sys/kernel/hung_task_detect_count"],
    ),
    ("ksmd", &[], &["sys/kernel/mm/ksm"]),
    ("lnstat", &[], &["proc/net/stat"]),
    ("loadavg", &[], &["proc/loadavg"]),
    ("mdadm", &[], &["proc/mdstat", "sys/block/md0"]),
    ("meminfo", &[], &["proc/meminfo"]),
    ("meminfo_numa", &[], &["sys/devices/system/node"]),
    ("netclass", &[], &["sys/class/net"]),
    (
        "netdev",
        &["--no-collector.netdev.netlink"],
        &["proc/net/dev"],
    ),
    (
        "netstat",
        &["--collector.netstat.fields=.*"],
        &["proc/net/netstat", "proc/net/snmp", "proc/net/snmp6"],
    ),
    ("nvme", &[], &["sys/class/nvme"]),
    ("os", &[], &["rootfs/etc"]),
    ("powersupplyclass", &[], &["sys/class/power_supply"]),
    ("pressure", &[], &["proc/pressure"]),
    ("processes", &[], &["proc/1", "proc/812", "proc/sys/kernel"]),
    (
        "rapl",
        &["--collector.rapl.enable-zone-label"],
        &["sys/class/powercap"],
    ),
    ("schedstat", &[], &["proc/schedstat"]),
    ("selinux", &[], &["sys/fs/selinux", "rootfs/etc/selinux"]),
    ("slabinfo", &[], &["proc/slabinfo"]),
    (
        "sockstat",
        &[],
        &["proc/net/sockstat", "proc/net/sockstat6"],
    ),
    ("softirqs", &[], &["proc/softirqs"]),
    ("softnet", &[], &["proc/net/softnet_stat"]),
    ("stat", &["--collector.stat.softirq"], &["proc/stat"]),
    ("swap", &[], &["proc/swaps"]),
    (
        "sysctl",
        &[
            "--collector.sysctl.include=fs.file-nr:a,b,c",
            "--collector.sysctl.include=kernel.threads-max",
            "--collector.sysctl.include-info=kernel.seccomp.actions_avail",
        ],
        &["proc/sys/fs", "proc/sys/kernel"],
    ),
    ("thermal_zone", &[], &["sys/class/thermal"]),
    ("time", &[], &["sys/devices/system/clocksource"]),
    ("udp_queues", &[], &["proc/net/udp", "proc/net/udp6"]),
    (
        "vmstat",
        &["--collector.vmstat.fields=.*"],
        &["proc/vmstat"],
    ),
    ("watchdog", &[], &["sys/class/watchdog"]),
    ("xfrm", &[], &["proc/net/xfrm_stat"]),
    ("zoneinfo", &[], &["proc/zoneinfo"]),
];

/// Collectors without files to corrupt.
const NOT_MUTATED: &[&str] = &["textfile", "timex", "uname"];

/// Corruptions per collector.
const ROUNDS: usize = 200;

/// Text the mutations put in: separators, numbers that do not fit, names
/// that are no metric names, escapes, multi-byte characters.
const PIECES: &[&[u8]] = &[
    b"",
    b" ",
    b"\t",
    b"\n",
    b":",
    b"=",
    b",",
    b"-",
    b".",
    b"(",
    b")",
    b"{",
    b"}",
    b"\"",
    b"\\",
    b"#",
    b"x",
    b"0",
    b"-1",
    b"0x1f",
    b"1e400",
    b"NaN",
    b"+Inf",
    b"18446744073709551616",
    b"Bad Name",
    b"a-b.c",
    b"kB",
    b"cpu",
    b"cpu7",
    b"Node 0",
    b"total=",
    b"E:",
    b"\xc3\xa9",
    b"\xf0\x9f\x98\x80",
    b"\xff",
    b"\0",
];

/// A tiny deterministic PRNG (xorshift64): a failure names its round and
/// is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The `(start, end)` byte ranges of the lines of `b`, newlines included.
fn lines(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in b.iter().enumerate() {
        if *c == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < b.len() {
        out.push((start, b.len()));
    }
    out
}

/// One to three random corruptions of `b`.
fn mutate(rng: &mut Rng, b: &[u8]) -> Vec<u8> {
    let mut b = b.to_vec();
    for _ in 0..1 + rng.below(3) {
        let piece = PIECES[rng.below(PIECES.len())];
        let at = rng.below(b.len() + 1);
        match rng.below(7) {
            // Replace the token at `at` (up to the next space or newline).
            0 => {
                let start = b[..at]
                    .iter()
                    .rposition(|c| c.is_ascii_whitespace())
                    .map_or(0, |p| p + 1);
                let end = b[at..]
                    .iter()
                    .position(|c| c.is_ascii_whitespace())
                    .map_or(b.len(), |p| at + p);
                b.splice(start..end, piece.iter().copied());
            }
            1 => {
                b.splice(at..at, piece.iter().copied());
            }
            2 => {
                let end = (at + 1 + rng.below(16)).min(b.len());
                b.drain(at.min(end)..end);
            }
            3 => b.truncate(at),
            op => {
                let ls = lines(&b);
                if ls.is_empty() {
                    continue;
                }
                let (s, e) = ls[rng.below(ls.len())];
                match op {
                    4 => {
                        let line = b[s..e].to_vec();
                        b.splice(s..s, line);
                    }
                    5 => {
                        b.drain(s..e);
                    }
                    _ => {
                        let (s2, e2) = ls[rng.below(ls.len())];
                        if s2 > e {
                            let second = b[s2..e2].to_vec();
                            let first = b[s..e].to_vec();
                            b.splice(s2..e2, first);
                            b.splice(s..e, second);
                        }
                    }
                }
            }
        }
    }
    b
}

/// Every regular file under `path` (or `path` itself).
fn files_under(path: &Path, out: &mut Vec<PathBuf>) {
    let meta =
        std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if meta.is_file() {
        out.push(path.to_path_buf());
    } else if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            files_under(&e, out);
        }
    }
}

/// A copy of the fixture tree.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// Encodes `families` as a scrape does and parses the text back.
fn check_exposition(families: &mut Vec<oxmon_core::MetricFamily>) -> Result<(), String> {
    normalize(families);
    for format in [Format::Text, Format::OpenMetrics] {
        let mut out = Vec::new();
        encode(families, format, &mut out);
        let text = String::from_utf8(out).map_err(|e| format!("{format:?}: not UTF-8: {e}"))?;
        if let Err(e) = oxmon_core::expo::try_parse(&text) {
            let line = text.lines().nth(e.line.saturating_sub(1)).unwrap_or("");
            return Err(format!("{format:?}: {e}: {line:?}"));
        }
    }
    Ok(())
}

#[test]
fn every_collector_is_listed() {
    let listed: Vec<&str> = READS
        .iter()
        .map(|r| r.0)
        .chain(NOT_MUTATED.iter().copied())
        .collect();
    for e in TABLE {
        assert!(listed.contains(&e.name), "{} reads which files?", e.name);
    }
}

#[test]
fn corrupted_files_always_give_valid_exposition() {
    let tree = fixture_copy();
    let root = tree.path();
    let paths = Paths {
        procfs: root.join("proc"),
        sysfs: root.join("sys"),
        rootfs: root.join("rootfs"),
        udev_data: root.join("udev/data"),
    };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for (name, args, reads) in READS {
        let collector = build_with(name, &paths, args);
        let mut files = Vec::new();
        for rel in *reads {
            files_under(&root.join(rel), &mut files);
        }
        assert!(!files.is_empty(), "{name}: no fixture files");
        let (mut clean, result) = try_scrape(collector.as_ref());
        result.unwrap_or_else(|e| panic!("{name} on the fixtures: {e}"));
        check_exposition(&mut clean).unwrap_or_else(|e| panic!("{name} on the fixtures: {e}"));
        for round in 0..ROUNDS {
            let file = &files[rng.below(files.len())];
            let original = std::fs::read(file).unwrap();
            let corrupted = mutate(&mut rng, &original);
            std::fs::write(file, &corrupted).unwrap();
            let (mut out, _) = try_scrape(collector.as_ref());
            if let Err(e) = check_exposition(&mut out) {
                panic!(
                    "{name}, round {round}, {} corrupted to {:?}:\n{e}",
                    file.display(),
                    String::from_utf8_lossy(&corrupted[..corrupted.len().min(400)])
                );
            }
            std::fs::write(file, &original).unwrap();
        }
    }
}

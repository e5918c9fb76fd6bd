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
//! timex and uname read no files; network_route and tcpstat read only
//! netlink. The netlink parsers get their own seeded test below: messages
//! built here are corrupted byte-wise and fed to every parser.

use std::path::{Path, PathBuf};

use oxmon_core::encode::{encode, Format};
use oxmon_core::metrics::normalize;

use super::testing::{build_with, try_scrape};
use super::TABLE;
use crate::paths::Paths;

/// Each collector, the options it runs with (every parser on) and the
/// files or directories (relative to `tests/fixtures`) it reads.
/// `@ROOT@` in an option stands for the fixture copy's root.
const READS: &[(&str, &[&str], &[&str])] = &[
    ("arp", &["--no-collector.arp.netlink"], &["proc/net/arp"]),
    (
        "bcache",
        &["--collector.bcache.priorityStats"],
        &["sys/fs/bcache"],
    ),
    ("bcachefs", &[], &["sys/fs/bcachefs"]),
    ("btrfs", &[], &["sys/fs/btrfs"]),
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
    (
        "dmmultipath",
        &[],
        &[
            "sys/block/dm-2",
            "sys/block/dm-3",
            "sys/block/sdc",
            "sys/block/sdd",
        ],
    ),
    ("drbd", &[], &["proc/drbd"]),
    ("dmi", &[], &["sys/class/dmi/id"]),
    ("drm", &[], &["sys/class/drm"]),
    ("edac", &[], &["sys/devices/system/edac"]),
    ("entropy", &[], &["proc/sys/kernel/random"]),
    ("fibrechannel", &[], &["sys/class/fc_host"]),
    ("filefd", &[], &["proc/sys/fs"]),
    ("filesystem", &[], &["proc/1/mountinfo"]),
    ("hwmon", &[], &["sys/class/hwmon"]),
    ("infiniband", &[], &["sys/class/infiniband"]),
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
    ("mountstats", &[], &["proc/self"]),
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
    ("nfs", &[], &["proc/net/rpc/nfs"]),
    ("nfsd", &[], &["proc/net/rpc/nfsd"]),
    ("nvme", &[], &["sys/class/nvme"]),
    ("nvmesubsystem", &[], &["sys/class/nvme-subsystem"]),
    ("os", &[], &["rootfs/etc"]),
    (
        "pcidevice",
        &["--collector.pcidevice.names"],
        &["sys/bus/pci/devices"],
    ),
    ("powersupplyclass", &[], &["sys/class/power_supply"]),
    ("pressure", &[], &["proc/pressure"]),
    ("processes", &[], &["proc/1", "proc/812", "proc/sys/kernel"]),
    (
        "qdisc",
        &["--collector.qdisc.fixtures=@ROOT@/qdisc"],
        &["qdisc"],
    ),
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
    ("tapestats", &[], &["sys/class/scsi_tape"]),
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
    (
        "wifi",
        &["--collector.wifi.fixtures=@ROOT@/wifi"],
        &["wifi"],
    ),
    ("xfs", &[], &["sys/fs/xfs"]),
    ("zfs", &[], &["proc/spl/kstat/zfs"]),
    ("watchdog", &[], &["sys/class/watchdog"]),
    ("xfrm", &[], &["proc/net/xfrm_stat"]),
    ("zoneinfo", &[], &["proc/zoneinfo"]),
];

/// Collectors without files to corrupt: textfile (see above), timex and
/// uname (system calls), network_route and tcpstat (netlink only), perf (counters), systemd and logind (D-Bus
/// replies, decoded by zbus against the expected signature; wrong types are
/// tested in `tests/dbus_services.rs`), ethtool (ioctl replies: its parsers
/// get their own mutation test below).
const NOT_MUTATED: &[&str] = &[
    "ethtool",
    "logind",
    "network_route",
    "perf",
    "systemd",
    "tcpstat",
    "textfile",
    "timex",
    "uname",
];

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
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("@ROOT@", &root.to_string_lossy()))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let collector = build_with(name, &paths, &args);
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

/// One message of each kind the netlink collectors parse, as the kernel
/// would send them in a dump with sequence number 1.
fn netlink_seed() -> Vec<u8> {
    use crate::netlink::{genl_header, push_attr, request_message};
    let attrs = |head: Vec<u8>, list: &[(u16, &[u8])]| {
        let mut p = head;
        for (t, v) in list {
            push_attr(&mut p, *t, v);
        }
        p
    };
    let mut stats = Vec::new();
    for i in 0..24u64 {
        stats.extend_from_slice(&(i * 1000).to_ne_bytes());
    }
    let link = attrs(
        vec![0; 16],
        &[
            (3, b"eth0\0"),
            (1, &[2, 0, 0, 0, 0, 1]),
            (16, &[6]),
            (23, &stats),
        ],
    );
    let addr = attrs(vec![2, 24, 0, 0, 1, 0, 0, 0], &[(2, &[10, 0, 0, 1])]);
    let neigh = vec![2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 1];
    let mut queue = Vec::new();
    for v in [1u32, 2, 3, 4, 5] {
        queue.extend_from_slice(&v.to_ne_bytes());
    }
    let stats2 = attrs(Vec::new(), &[(1, &[7; 12]), (3, &queue)]);
    let mut tcmsg = vec![0u8; 20];
    tcmsg[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
    let qdisc = attrs(tcmsg, &[(1, b"fq\0"), (0x8007, &stats2), (3, &[1; 36])]);
    let gw = attrs(Vec::new(), &[(5, &[10, 0, 0, 254])]);
    let mut hop = ((8 + gw.len()) as u16).to_ne_bytes().to_vec();
    hop.extend_from_slice(&[0, 1, 2, 0, 0, 0]);
    hop.extend(gw);
    let route = attrs(
        vec![2, 24, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0],
        &[
            (1, &[10, 1, 0, 0]),
            (7, &[10, 1, 0, 9]),
            (6, &[0, 1, 0, 0]),
            (9, &hop),
        ],
    );
    let mut diag = vec![2u8, 1, 0, 0, 0x01, 0xbb, 0xc3, 0x50];
    diag.resize(72, 3);
    let rate = attrs(Vec::new(), &[(1, &[10, 0]), (5, &[100, 0, 0, 0])]);
    let sta_info = attrs(
        Vec::new(),
        &[
            (1, &[1, 0, 0, 0]),
            (7, &[0xc4]),
            (8, &rate),
            (14, &rate),
            (23, &[9; 8]),
        ],
    );
    let station = attrs(
        genl_header(19, 1),
        &[(6, &[2, 0, 0, 0, 0, 2]), (21, &sta_info)],
    );
    let interface = attrs(
        genl_header(7, 1),
        &[
            (3, &[4, 0, 0, 0]),
            (4, b"wlan0\0"),
            (38, &[0x6c, 0x09, 0, 0]),
        ],
    );
    let bss_attrs = attrs(
        Vec::new(),
        &[
            (1, &[2, 0, 0, 0, 0, 3]),
            (6, &[0, 3, b'n', b'e', b't', 1, 1, 2]),
            (9, &[1, 0, 0, 0]),
        ],
    );
    let bss = attrs(genl_header(34, 1), &[(47, &bss_attrs)]);
    let mut buf = Vec::new();
    for (ty, payload) in [
        (16u16, link),
        (20, addr),
        (28, neigh),
        (36, qdisc),
        (24, route),
        (20, diag),
        (30, station),
        (30, interface),
        (30, bss),
        (2, 0i32.to_ne_bytes().to_vec()),
        (3, vec![0; 4]),
    ] {
        let mut m = request_message(ty, 2, 1, &payload);
        m.resize((m.len() + 3) & !3, 0);
        buf.extend(m);
    }
    buf
}

/// Every netlink payload parser on `p`.
fn parse_everything(p: &[u8]) {
    use super::{arp, netdev, network_route, qdisc, wifi};
    let _ = netdev::parse_link(p);
    let _ = netdev::parse_addr(p);
    let _ = arp::parse_neighbour(p);
    let _ = qdisc::parse_qdisc(p);
    let _ = network_route::parse_route(p);
    let _ = crate::netlink::parse_inet_diag(p);
    let _ = wifi::parse_interface(p);
    let _ = wifi::parse_station(p);
    let _ = wifi::parse_bss(p);
    let _ = crate::netlink::attributes(p).count();
}

/// Seeded byte-level corruption of netlink answers: a byte set to an odd
/// value (0, 0xff, a small length), a range dropped, bytes inserted, a
/// range repeated, the buffer cut. No parser may panic, and the splitter
/// must either refuse the buffer or return payloads inside it.
#[test]
fn corrupted_netlink_messages_never_panic() {
    let seed = netlink_seed();
    let msgs = crate::netlink::split_messages(&seed, 1).expect("the seed is well formed");
    assert_eq!(msgs.len(), 11, "every seed message is seen");
    // The seed is meaningful: each message parses as what it is.
    let payload = |i: usize| match msgs[i] {
        crate::netlink::NlMessage::Payload(_, p) => p,
        ref other => panic!("message {i}: {other:?}"),
    };
    use super::{arp, netdev, network_route, qdisc, wifi};
    assert_eq!(netdev::parse_link(payload(0)).unwrap().name, "eth0");
    assert!(netdev::parse_addr(payload(1)).is_some());
    assert_eq!(arp::parse_neighbour(payload(2)), Some((2, 1, 2)));
    assert_eq!(qdisc::parse_qdisc(payload(3)).unwrap().kind, "fq");
    assert_eq!(
        network_route::parse_route(payload(4)).unwrap().hops.len(),
        1
    );
    assert_eq!(
        crate::netlink::parse_inet_diag(payload(5))
            .unwrap()
            .source_port,
        443
    );
    assert_eq!(wifi::parse_station(payload(6)).unwrap().signal_dbm, -60.0);
    assert_eq!(wifi::parse_interface(payload(7)).unwrap().name, "wlan0");
    assert_eq!(wifi::parse_bss(payload(8)).unwrap().ssid, "net");
    assert_eq!(msgs[9], crate::netlink::NlMessage::Ack);
    assert_eq!(msgs[10], crate::netlink::NlMessage::Done);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let mut b = seed.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(b.len() + 1);
            match rng.below(5) {
                0 if at < b.len() => b[at] = [0u8, 0xff, 1, 3, 4, 8, 16][rng.below(7)],
                1 => {
                    let end = (at + 1 + rng.below(24)).min(b.len());
                    b.drain(at.min(end)..end);
                }
                2 => {
                    let n = rng.below(12);
                    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                    b.splice(at..at, bytes);
                }
                3 => {
                    let end = (at + rng.below(40)).min(b.len());
                    let dup = b[at.min(end)..end].to_vec();
                    b.splice(at..at, dup);
                }
                _ => b.truncate(at),
            }
        }
        if let Some(msgs) = crate::netlink::split_messages(&b, 1) {
            for m in msgs {
                if let crate::netlink::NlMessage::Payload(_, p) = m {
                    parse_everything(p);
                }
            }
        }
        // Also the raw bytes, as if a header had been mis-cut.
        parse_everything(&b);
        parse_everything(b.get(16..).unwrap_or(&[]));
    }
}

/// ethtool's replies (driver info, link modes, statistic names and values)
/// corrupted byte-wise, cut short and padded: the families built from them
/// always encode to valid exposition text.
#[test]
fn corrupted_ethtool_replies_always_give_valid_exposition() {
    use super::ethtool::{families, sample_replies, Replies};
    let include = regex::Regex::new(".*").unwrap();
    let clean = || Replies {
        link: Some(sample_replies::link_bytes()),
        info: Some(sample_replies::drvinfo_bytes()),
        stats: Some((
            sample_replies::strings_bytes(&["rx_bytes", "tx-errors", "queue_0 drops"]),
            sample_replies::stats_bytes(&[1, 2, 3]),
        )),
    };
    let mut fams = families(&[("eth0".into(), clean())], &include);
    check_exposition(&mut fams).unwrap();
    assert!(fams
        .iter()
        .any(|f| f.name == "node_ethtool_received_bytes_total"));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..2000 {
        let mut r = clean();
        let slot = match rng.below(4) {
            0 => r.link.as_mut().unwrap(),
            1 => r.info.as_mut().unwrap(),
            2 => &mut r.stats.as_mut().unwrap().0,
            _ => &mut r.stats.as_mut().unwrap().1,
        };
        let corrupted = match rng.below(3) {
            0 => {
                let mut b = slot.clone();
                for _ in 0..=rng.below(8) {
                    let at = rng.below(b.len().max(1));
                    if let Some(x) = b.get_mut(at) {
                        *x = rng.next() as u8;
                    }
                }
                b
            }
            1 => slot[..rng.below(slot.len() + 1)].to_vec(),
            _ => mutate(&mut rng, slot),
        };
        *slot = corrupted.clone();
        let mut out = families(&[("eth0".into(), r)], &include);
        if let Err(e) = check_exposition(&mut out) {
            panic!("ethtool round {round}, reply corrupted to {corrupted:?}:\n{e}");
        }
    }
}

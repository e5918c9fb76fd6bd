//! Parse cost of oxmon-node's `/proc` parsers against `procfs-core`'s types
//! for the files where those types could feed node_exporter's output,
//! on this host's live files. Each side starts from the bytes
//! of the file in memory, as the collectors get them from the file cache,
//! and produces the values a collector needs; both must agree.
//!
//! A measurement, not a check, so it is ignored by default. With both
//! crates optimised and the rest left as built:
//!
//! ```sh
//! cargo test -p oxmon-node \
//!   --config 'profile.test.package."oxmon-node".opt-level=3' \
//!   --config 'profile.test.package.procfs-core.opt-level=3' \
//!   procfs_core -- --ignored --nocapture
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use procfs_core::net::{InterfaceDeviceStatus, UdpNetEntries};
use procfs_core::{
    DiskStats, ExplicitSystemInfo, FromRead, FromReadSI, KernelStats, LoadAverage, VmStat,
};

use crate::collectors::{diskstats, loadavg, netdev, stat, udp_queues, vmstat};

/// Mean time of one call of `f`, over enough calls to take ~200 ms.
fn per_call<T>(mut f: impl FnMut() -> T) -> Duration {
    let started = Instant::now();
    let mut calls = 0u32;
    while started.elapsed() < Duration::from_millis(200) {
        for _ in 0..100 {
            black_box(f());
        }
        calls += 100;
    }
    started.elapsed() / calls
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
#[ignore = "measurement: prints the parse cost of both sides"]
fn procfs_core_parse_cost() {
    let read = |rel: &str| std::fs::read(std::path::Path::new("/proc").join(rel)).unwrap();
    let system = ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: cfg!(target_endian = "little"),
    };
    let mut rows: Vec<(&str, usize, Duration, Duration)> = Vec::new();

    let b = read("loadavg");
    let ours = loadavg::parse_loadavg(text(&b)).unwrap();
    let theirs = LoadAverage::from_read(&b[..]).unwrap();
    assert_eq!(ours[0] as f32, theirs.one, "procfs-core keeps f32 only");
    rows.push((
        "loadavg",
        b.len(),
        per_call(|| loadavg::parse_loadavg(text(&b))),
        per_call(|| LoadAverage::from_read(&b[..]).unwrap()),
    ));

    let b = read("diskstats");
    let (ours, bad) = diskstats::parse_diskstats(text(&b));
    assert!(bad.is_empty(), "{bad}");
    let theirs = DiskStats::from_read(&b[..]).unwrap().0;
    assert_eq!(ours.len(), theirs.len());
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(
            (o.device, o.stats[0], o.stats[10]),
            (&*t.name, t.reads, t.weighted_time_in_progress)
        );
    }
    rows.push((
        "diskstats",
        b.len(),
        per_call(|| diskstats::parse_diskstats(text(&b))),
        per_call(|| DiskStats::from_read(&b[..]).unwrap()),
    ));

    let b = read("net/dev");
    let (ours, bad) = netdev::parse_proc_net_dev(text(&b));
    assert!(bad.is_empty(), "{bad}");
    let theirs = InterfaceDeviceStatus::from_read(&b[..]).unwrap().0;
    assert_eq!(ours.len(), theirs.len());
    for (name, fields) in &ours {
        assert_eq!(fields[0].1, theirs[name].recv_bytes, "{name}");
        assert_eq!(fields[8].1, theirs[name].sent_bytes, "{name}");
    }
    rows.push((
        "net/dev",
        b.len(),
        per_call(|| netdev::parse_proc_net_dev(text(&b))),
        per_call(|| InterfaceDeviceStatus::from_read(&b[..]).unwrap()),
    ));

    let b = read("net/udp");
    let queues = |entries: &UdpNetEntries| {
        entries.0.iter().fold((0u64, 0u64), |(tx, rx), e| {
            (tx + u64::from(e.tx_queue), rx + u64::from(e.rx_queue))
        })
    };
    let theirs = UdpNetEntries::from_read(&b[..], &system).unwrap();
    assert_eq!(udp_queues::parse_udp_queues(text(&b)).0, queues(&theirs));
    rows.push((
        "net/udp",
        b.len(),
        per_call(|| udp_queues::parse_udp_queues(text(&b))),
        per_call(|| queues(&UdpNetEntries::from_read(&b[..], &system).unwrap())),
    ));

    let b = read("vmstat");
    let (ours, bad) = vmstat::parse_vmstat(text(&b));
    assert!(bad.is_empty(), "{bad}");
    let theirs = VmStat::from_read(&b[..]).unwrap().0;
    assert_eq!(ours.len(), theirs.len());
    for (name, v) in &ours {
        assert_eq!(*v, theirs[*name] as f64, "{name}");
    }
    rows.push((
        "vmstat",
        b.len(),
        per_call(|| vmstat::parse_vmstat(text(&b))),
        per_call(|| VmStat::from_read(&b[..]).unwrap()),
    ));

    let b = read("stat");
    let (ours, bad) = stat::parse_stat(text(&b));
    assert!(bad.is_empty(), "{bad}");
    let theirs = KernelStats::from_read(&b[..], &system).unwrap();
    assert_eq!(ours.context_switches, Some(theirs.ctxt as f64));
    rows.push((
        "stat",
        b.len(),
        per_call(|| stat::parse_stat(text(&b))),
        per_call(|| KernelStats::from_read(&b[..], &system).unwrap()),
    ));

    println!("| file | bytes | oxmon-node µs | procfs-core µs | ratio |");
    println!("|---|---|---|---|---|");
    for (file, bytes, ours, theirs) in rows {
        println!(
            "| {file} | {bytes} | {:.2} | {:.2} | {:.1}x |",
            ours.as_secs_f64() * 1e6,
            theirs.as_secs_f64() * 1e6,
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}

//! mountstats: per-mount NFS client statistics.
//!
//! Source: `<procfs>/self/mountstats` (the `device … with fstype nfs|nfs4
//! statvers=1.x` sections: `age:`, `bytes:`, `events:`, `xprt:` and the
//! per-operation lines) and `<procfs>/self/mountinfo` (the server address,
//! `addr=` of the super options, taken from the mount at the same
//! position). Metrics, labelled `export`, `protocol`, `mountaddr`:
//! `node_mountstats_nfs_age_seconds_total`, the byte and page counters
//! (`node_mountstats_nfs_{read,write,direct_read,direct_write,total_read,
//! total_write}_bytes_total`, `…_{read,write}_pages_total`), the event
//! counters `node_mountstats_nfs_event_*_total`; with `transport` (the
//! index of the `xprt:` line) the `node_mountstats_nfs_transport_*`
//! metrics; with `operation` the `node_mountstats_nfs_operations_*`
//! metrics (times in seconds; `…_errors_total` only where the kernel
//! writes the error count); and `node_mountstats_nfs_mountpoint_info`
//! with `mountpoint`.
//!
//! As in node_exporter, a second mount of the same export over the same
//! protocol and address adds only its mountpoint info; cumulative times
//! and the idle time are taken modulo 2^53 (a float's exact range). Unlike
//! node_exporter, an NFS-over-RDMA transport (`xprt: rdma`, common on GPU
//! clusters) is read like TCP instead of failing the whole collector.
//! A section that does not parse is left out and fails the collector after
//! the other mounts are exported. Off by default; no flags. Without the
//! file (no procfs) it reports nothing.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};
use crate::malformed::Malformed;

/// Values of a counter beyond this lose precision as a float; node_exporter
/// takes the cumulative times modulo it.
const FLOAT64_MANTISSA: u64 = 1 << 53;

/// The fields of the `xprt:` line after the protocol, in statvers 1.1
/// order (TCP; UDP lacks `connect`, `connect_time` and `idle_time`).
const TRANSPORT_FIELDS: usize = 13;

/// One `xprt:` line, normalised to the TCP layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Transport {
    /// `tcp`, `udp` or `rdma`.
    pub protocol: String,
    /// port, bind, connect, connect_time, idle_time, sends, receives,
    /// bad_xids, active, backlog, max_slots, sending, pending.
    pub values: [u64; TRANSPORT_FIELDS],
}

/// One per-operation line.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// `READ`, `GETATTR` …
    pub name: String,
    /// requests, transmissions, major timeouts, bytes sent, bytes
    /// received, queue ms, response ms, request ms.
    pub values: [u64; 8],
    /// Operations that ended in an error (kernels since 5.x).
    pub errors: Option<u64>,
}

/// The statistics of one NFS mount.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NfsStats {
    /// `age:` in seconds.
    pub age: Option<u64>,
    /// `bytes:` (8 values).
    pub bytes: Option<[u64; 8]>,
    /// `events:` (27 values).
    pub events: Option<[u64; 27]>,
    /// The `xprt:` lines.
    pub transports: Vec<Transport>,
    /// The per-operation lines.
    pub operations: Vec<Operation>,
}

/// A `device` entry of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct MountEntry {
    /// The export (`server:/path`).
    pub device: String,
    /// Where it is mounted.
    pub mount_point: String,
    /// NFS statistics, for NFS mounts that have them.
    pub nfs: Option<NfsStats>,
}

fn numbers<const N: usize>(fields: &[&str]) -> Option<[u64; N]> {
    if fields.len() != N {
        return None;
    }
    let mut out = [0u64; N];
    for (o, f) in out.iter_mut().zip(fields) {
        *o = f.parse().ok()?;
    }
    Some(out)
}

/// Parses the fields of an `xprt:` line after `xprt:` for stat version
/// `version`.
pub fn parse_transport(fields: &[&str], version: &str) -> Option<Transport> {
    let (&protocol, rest) = fields.split_first()?;
    let values: Vec<u64> = rest.iter().map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let expected = match (version, protocol) {
        ("1.0", "tcp") => 10,
        ("1.0", "udp") => 7,
        ("1.1", "tcp") => 13,
        ("1.1", "udp") => 10,
        // The RDMA line starts with the TCP fields and appends its own.
        ("1.0", "rdma") if values.len() >= 10 => values.len(),
        ("1.1", "rdma") if values.len() >= 13 => values.len(),
        _ => return None,
    };
    if values.len() != expected {
        return None;
    }
    let mut out = [0u64; TRANSPORT_FIELDS];
    if protocol == "udp" {
        // No connect count, connect time or idle time over UDP.
        out[..2].copy_from_slice(&values[..2]);
        for (o, v) in out[5..].iter_mut().zip(&values[2..]) {
            *o = *v;
        }
    } else {
        for (o, v) in out.iter_mut().zip(&values) {
            *o = *v;
        }
    }
    Some(Transport {
        protocol: protocol.to_string(),
        values: out,
    })
}

/// Parses a per-operation line (`READ: 1298 1298 0 …`).
pub fn parse_operation(fields: &[&str]) -> Option<Operation> {
    let (name, rest) = fields.split_first()?;
    if rest.len() < 8 {
        return None;
    }
    let values: Vec<u64> = rest.iter().map(|f| f.parse().ok()).collect::<Option<_>>()?;
    Some(Operation {
        name: name.trim_end_matches(':').to_string(),
        values: values[..8].try_into().ok()?,
        errors: values.get(8).copied(),
    })
}

/// Parses `/proc/<pid>/mountstats` and what did not parse.
pub fn parse_mountstats(text: &str) -> (Vec<MountEntry>, Malformed) {
    let mut mounts = Vec::new();
    let mut bad = Malformed::default();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() != Some(&"device") {
            continue;
        }
        if f.len() < 8 || f[2] != "mounted" || f[3] != "on" || f[5] != "with" || f[6] != "fstype" {
            bad.line(i + 1, line, "not a device line");
            continue;
        }
        let mut entry = MountEntry {
            device: f[1].to_string(),
            mount_point: f[4].to_string(),
            nfs: None,
        };
        let version = f.get(8).and_then(|v| v.strip_prefix("statvers="));
        let is_nfs = f[7] == "nfs" || f[7] == "nfs4";
        if let (Some(version), true) = (version, is_nfs) {
            let mut stats = NfsStats::default();
            let mut in_ops = false;
            while let Some((j, l)) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
                let s: Vec<&str> = l.split_whitespace().collect();
                if s[0] == "device" {
                    // A section without its closing blank line.
                    bad.line(j + 1, l, "device line inside a section");
                    break;
                }
                if in_ops {
                    match parse_operation(&s) {
                        Some(op) => stats.operations.push(op),
                        None => bad.line(j + 1, l, "not a per-operation line"),
                    }
                    continue;
                }
                let ok = match s[0] {
                    "age:" => s
                        .get(1)
                        .and_then(|a| a.parse().ok())
                        .map(|a| stats.age = Some(a))
                        .is_some(),
                    "bytes:" => numbers(&s[1..]).map(|b| stats.bytes = Some(b)).is_some(),
                    "events:" => numbers(&s[1..]).map(|e| stats.events = Some(e)).is_some(),
                    "xprt:" => parse_transport(&s[1..], version)
                        .map(|t| stats.transports.push(t))
                        .is_some(),
                    "per-op" => {
                        in_ops = true;
                        true
                    }
                    _ => true,
                };
                if !ok {
                    bad.line(j + 1, l, format!("{} does not parse", s[0]));
                }
            }
            entry.nfs = Some(stats);
        } else if version.is_some() {
            // Statistics of another filesystem: not read.
            while lines.next_if(|(_, l)| !l.trim().is_empty()).is_some() {}
        }
        mounts.push(entry);
    }
    (mounts, bad)
}

/// The `addr=` super option of each line of `mountinfo`, in order (`None`
/// for lines without one).
pub fn mountinfo_addrs(text: &str) -> Vec<Option<String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let sep = f.iter().position(|p| *p == "-")?;
            let super_opts = f.get(sep + 3)?;
            super_opts
                .split(',')
                .find_map(|o| o.strip_prefix("addr="))
                .map(str::to_string)
        })
        .collect()
}

/// `(name after node_mountstats_nfs_, help, is a counter)`; the order of
/// the value arrays.
const BYTES: &[(&str, &str)] = &[
    (
        "read_bytes_total",
        "Number of bytes read using the read() syscall.",
    ),
    (
        "write_bytes_total",
        "Number of bytes written using the write() syscall.",
    ),
    (
        "direct_read_bytes_total",
        "Number of bytes read using the read() syscall in O_DIRECT mode.",
    ),
    (
        "direct_write_bytes_total",
        "Number of bytes written using the write() syscall in O_DIRECT mode.",
    ),
    (
        "total_read_bytes_total",
        "Number of bytes read from the NFS server, in total.",
    ),
    (
        "total_write_bytes_total",
        "Number of bytes written to the NFS server, in total.",
    ),
    (
        "read_pages_total",
        "Number of pages read directly via mmap()'d files.",
    ),
    (
        "write_pages_total",
        "Number of pages written directly via mmap()'d files.",
    ),
];

/// The `events:` values exported, by position (position 18, congestion
/// waits, is not exported by node_exporter).
const EVENTS: &[(usize, &str, &str)] = &[
    (
        0,
        "event_inode_revalidate_total",
        "Number of times cached inode attributes are re-validated from the server.",
    ),
    (
        1,
        "event_dnode_revalidate_total",
        "Number of times cached dentry nodes are re-validated from the server.",
    ),
    (
        2,
        "event_data_invalidate_total",
        "Number of times an inode cache is cleared.",
    ),
    (
        3,
        "event_attribute_invalidate_total",
        "Number of times cached inode attributes are invalidated.",
    ),
    // node_exporter's help text (it repeats the one above).
    (
        4,
        "event_vfs_open_total",
        "Number of times cached inode attributes are invalidated.",
    ),
    (
        5,
        "event_vfs_lookup_total",
        "Number of times a directory lookup has occurred.",
    ),
    (
        6,
        "event_vfs_access_total",
        "Number of times permissions have been checked.",
    ),
    (
        7,
        "event_vfs_update_page_total",
        "Number of updates (and potential writes) to pages.",
    ),
    (
        8,
        "event_vfs_read_page_total",
        "Number of pages read directly via mmap()'d files.",
    ),
    (
        9,
        "event_vfs_read_pages_total",
        "Number of times a group of pages have been read.",
    ),
    (
        10,
        "event_vfs_write_page_total",
        "Number of pages written directly via mmap()'d files.",
    ),
    (
        11,
        "event_vfs_write_pages_total",
        "Number of times a group of pages have been written.",
    ),
    (
        12,
        "event_vfs_getdents_total",
        "Number of times directory entries have been read with getdents().",
    ),
    // node_exporter's help text (copied from getdents there).
    (
        13,
        "event_vfs_setattr_total",
        "Number of times directory entries have been read with getdents().",
    ),
    (
        14,
        "event_vfs_flush_total",
        "Number of pending writes that have been forcefully flushed to the server.",
    ),
    (
        15,
        "event_vfs_fsync_total",
        "Number of times fsync() has been called on directories and files.",
    ),
    (
        16,
        "event_vfs_lock_total",
        "Number of times locking has been attempted on a file.",
    ),
    (
        17,
        "event_vfs_file_release_total",
        "Number of times files have been closed and released.",
    ),
    (
        19,
        "event_truncation_total",
        "Number of times files have been truncated.",
    ),
    (
        20,
        "event_write_extension_total",
        "Number of times a file has been grown due to writes beyond its existing end.",
    ),
    (
        21,
        "event_silly_rename_total",
        "Number of times a file was removed while still open by another process.",
    ),
    (
        22,
        "event_short_read_total",
        "Number of times the NFS server gave less data than expected while reading.",
    ),
    (
        23,
        "event_short_write_total",
        "Number of times the NFS server wrote less data than expected while writing.",
    ),
    (
        24,
        "event_jukebox_delay_total",
        "Number of times the NFS server indicated EJUKEBOX; retrieving data from offline storage.",
    ),
    (
        25,
        "event_pnfs_read_total",
        "Number of NFS v4.1+ pNFS reads.",
    ),
    (
        26,
        "event_pnfs_write_total",
        "Number of NFS v4.1+ pNFS writes.",
    ),
];

/// The transport values exported: `(position, name, help, is a counter)`.
const TRANSPORT: &[(usize, &str, &str, bool)] = &[
    (1, "transport_bind_total", "Number of times the client has had to establish a connection from scratch to the NFS server.", true),
    (2, "transport_connect_total", "Number of times the client has made a TCP connection to the NFS server.", true),
    (4, "transport_idle_time_seconds", "Duration since the NFS mount last saw any RPC traffic, in seconds.", false),
    (5, "transport_sends_total", "Number of RPC requests for this mount sent to the NFS server.", true),
    (6, "transport_receives_total", "Number of RPC responses for this mount received from the NFS server.", true),
    (7, "transport_bad_transaction_ids_total", "Number of times the NFS server sent a response with a transaction ID unknown to this client.", true),
    (9, "transport_backlog_queue_total", "Total number of items added to the RPC backlog queue.", true),
    (10, "transport_maximum_rpc_slots", "Maximum number of simultaneously active RPC requests ever used.", false),
    (11, "transport_sending_queue_total", "Total number of items added to the RPC transmission sending queue.", true),
    (12, "transport_pending_queue_total", "Total number of items added to the RPC transmission pending queue.", true),
];

/// The per-operation values exported: `(position, name, help, divisor)`;
/// the times (divisor 1000) are taken modulo 2^53 first.
const OPERATIONS: &[(usize, &str, &str, f64)] = &[
    (0, "operations_requests_total", "Number of requests performed for a given operation.", 1.0),
    (1, "operations_transmissions_total", "Number of times an actual RPC request has been transmitted for a given operation.", 1.0),
    (2, "operations_major_timeouts_total", "Number of times a request has had a major timeout for a given operation.", 1.0),
    (3, "operations_sent_bytes_total", "Number of bytes sent for a given operation, including RPC headers and payload.", 1.0),
    (4, "operations_received_bytes_total", "Number of bytes received for a given operation, including RPC headers and payload.", 1.0),
    (5, "operations_queue_time_seconds_total", "Duration all requests spent queued for transmission for a given operation before they were sent, in seconds.", 1000.0),
    (6, "operations_response_time_seconds_total", "Duration all requests took to get a reply back after a request for a given operation was transmitted, in seconds.", 1000.0),
    (7, "operations_request_time_seconds_total", "Duration all requests took from when a request was enqueued to when it was completely handled for a given operation, in seconds.", 1000.0),
];

fn nfs_family(name: &str, help: &'static str, counter: bool) -> MetricFamily {
    let name = format!("node_mountstats_nfs_{name}");
    if counter {
        MetricFamily::counter(name, help)
    } else {
        MetricFamily::gauge(name, help)
    }
}

/// All families of one scrape.
struct Families {
    info: MetricFamily,
    age: MetricFamily,
    bytes: Vec<MetricFamily>,
    events: Vec<MetricFamily>,
    transport: Vec<MetricFamily>,
    operations: Vec<MetricFamily>,
    errors: MetricFamily,
}

impl Families {
    fn new() -> Self {
        Families {
            info: nfs_family(
                "mountpoint_info",
                "Info metric for an NFS mountpoint.",
                false,
            ),
            age: nfs_family(
                "age_seconds_total",
                "The age of the NFS mount in seconds.",
                true,
            ),
            bytes: BYTES.iter().map(|(n, h)| nfs_family(n, h, true)).collect(),
            events: EVENTS
                .iter()
                .map(|(_, n, h)| nfs_family(n, h, true))
                .collect(),
            transport: TRANSPORT
                .iter()
                .map(|(_, n, h, c)| nfs_family(n, h, *c))
                .collect(),
            operations: OPERATIONS
                .iter()
                .map(|(_, n, h, _)| nfs_family(n, h, true))
                .collect(),
            errors: nfs_family(
                "operations_errors_total",
                "Number of requests that complete with tk_status < 0 for a given operation.",
                true,
            ),
        }
    }

    /// The statistics of one mount under `labels` (export, protocol,
    /// mountaddr).
    fn add(&mut self, s: &NfsStats, labels: &[(&'static str, &str)]) {
        if let Some(age) = s.age {
            self.age.add(labels, age as f64);
        }
        if let Some(b) = &s.bytes {
            for (fam, v) in self.bytes.iter_mut().zip(b) {
                fam.add(labels, *v as f64);
            }
        }
        for (i, t) in s.transports.iter().enumerate() {
            let index = i.to_string();
            let mut l = labels.to_vec();
            l.push(("transport", &index));
            for (fam, (pos, ..)) in self.transport.iter_mut().zip(TRANSPORT) {
                let v = t.values[*pos];
                let v = if *pos == 4 { v % FLOAT64_MANTISSA } else { v };
                fam.add(&l, v as f64);
            }
        }
        for op in &s.operations {
            let mut l = labels.to_vec();
            l.push(("operation", &op.name));
            for (fam, (pos, _, _, div)) in self.operations.iter_mut().zip(OPERATIONS) {
                let v = op.values[*pos];
                let v = if *div == 1.0 {
                    v as f64
                } else {
                    (v % FLOAT64_MANTISSA) as f64 / div
                };
                fam.add(&l, v);
            }
            if let Some(e) = op.errors {
                self.errors.add(&l, (e % FLOAT64_MANTISSA) as f64);
            }
        }
        if let Some(e) = &s.events {
            for (fam, (pos, ..)) in self.events.iter_mut().zip(EVENTS) {
                fam.add(labels, e[*pos] as f64);
            }
        }
    }

    fn into_vec(self) -> Vec<MetricFamily> {
        let mut out = vec![self.info, self.age, self.errors];
        out.extend(self.bytes);
        out.extend(self.events);
        out.extend(self.transport);
        out.extend(self.operations);
        out
    }
}

/// Turns the parsed mounts into families, deduplicating as node_exporter
/// does: per transport, a mountpoint info series once per (export,
/// protocol, address, mountpoint), and the statistics once per (export,
/// protocol, address).
fn families(mounts: &[MountEntry], addrs: &[Option<String>]) -> Vec<MetricFamily> {
    let mut f = Families::new();
    let mut seen_mountpoints = HashSet::new();
    let mut seen_devices = HashSet::new();
    for (idx, m) in mounts.iter().enumerate() {
        let Some(stats) = &m.nfs else { continue };
        let addr = addrs.get(idx).cloned().flatten().unwrap_or_default();
        for t in &stats.transports {
            let proto = t.protocol.as_str();
            let mp_key = (
                m.device.clone(),
                proto.to_string(),
                addr.clone(),
                m.mount_point.clone(),
            );
            if seen_mountpoints.insert(mp_key) {
                f.info.add(
                    &[
                        ("export", &m.device),
                        ("protocol", proto),
                        ("mountaddr", &addr),
                        ("mountpoint", &m.mount_point),
                    ],
                    1.0,
                );
            }
            if !seen_devices.insert((m.device.clone(), proto.to_string(), addr.clone())) {
                break;
            }
            f.add(
                stats,
                &[
                    ("export", &m.device),
                    ("protocol", proto),
                    ("mountaddr", &addr),
                ],
            );
        }
    }
    f.into_vec()
}

/// The mountstats collector.
pub struct Mountstats {
    stats: PathBuf,
    info: PathBuf,
    cache: FileCache,
}

impl SyncCollector for Mountstats {
    fn name(&self) -> &'static str {
        "mountstats"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut text = String::new();
        if !read_optional(&mut scope, &self.stats, &mut text, "mountstats")? {
            return Ok(());
        }
        let (mounts, bad) = parse_mountstats(&text);
        if !mounts.iter().any(|m| m.nfs.is_some()) {
            return bad.into_result(&self.stats);
        }
        let mut info = String::new();
        let addrs = if read_optional(&mut scope, &self.info, &mut info, "mountstats")? {
            mountinfo_addrs(&info)
        } else {
            Vec::new()
        };
        out.extend(families(&mounts, &addrs));
        bad.into_result(&self.stats)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Mountstats {
        stats: ctx.paths.proc("self/mountstats"),
        info: ctx.paths.proc("self/mountinfo"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::single;

    const TEXT: &str = "device sysfs mounted on /sys with fstype sysfs\n\
device fs1:/home mounted on /home with fstype nfs4 statvers=1.1\n\
\topts:\trw,vers=4.2,proto=tcp\n\
\tage:\t500\n\
\tbytes:\t10 20 0 0 30 40 3 4\n\
\tevents:\t1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27\n\
\tRPC iostats version: 1.1  p/v: 100003/4 (nfs)\n\
\txprt:\ttcp 900 1 2 0 7 100 99 0 500 0 16 3 4\n\
\txprt:\ttcp 901 1 1 0 9 50 50 0 200 0 8 1 2\n\
\tper-op statistics\n\
\t        READ: 5 5 0 800 4000 12 3000 3100 1\n\
\t     GETATTR: 9 9 0 900 900 18446744073709551615 0 0\n\
\n\
device fs1:/home mounted on /home2 with fstype nfs4 statvers=1.1\n\
\tage:\t7\n\
\txprt:\ttcp 902 1 1 0 0 1 1 0 1 0 1 1 1\n\
\n\
device fs2:/scratch mounted on /scratch with fstype nfs statvers=1.1\n\
\txprt:\trdma 0 0 1 2 3 40 41 0 0 0 32 0 0 11 12 13 14\n\
\tper-op statistics\n\
\t       WRITE: 1 1\n\
\n";

    #[test]
    fn parses_sections() {
        let (mounts, bad) = parse_mountstats(TEXT);
        assert_eq!(mounts.len(), 4);
        assert_eq!(bad.count(), 1, "{bad}");
        assert!(bad.to_string().contains("WRITE"));
        let home = mounts[1].nfs.as_ref().unwrap();
        assert_eq!(home.age, Some(500));
        assert_eq!(home.transports.len(), 2);
        assert_eq!(home.operations[0].errors, Some(1));
        assert_eq!(home.operations[1].errors, None);
        let rdma = &mounts[3].nfs.as_ref().unwrap().transports[0];
        assert_eq!(rdma.protocol, "rdma");
        assert_eq!(rdma.values[5], 40);
    }

    #[test]
    fn transports_in_both_layouts() {
        let udp = parse_transport(
            &[
                "udp", "832", "0", "6428", "6428", "0", "12154", "0", "24", "26", "5726",
            ],
            "1.1",
        )
        .unwrap();
        assert_eq!(udp.values[2..5], [0, 0, 0]);
        assert_eq!(udp.values[5], 6428);
        assert_eq!(udp.values[12], 5726);
        let old = parse_transport(
            &["tcp", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
            "1.0",
        )
        .unwrap();
        assert_eq!(old.values[10..], [0, 0, 0]);
        assert!(parse_transport(&["tcp", "1"], "1.1").is_none());
        assert!(parse_transport(&["sctp", "1"], "1.1").is_none());
        assert!(parse_transport(
            &["tcp", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
            "2.0"
        )
        .is_none());
    }

    #[test]
    fn deduplicates_and_scales_like_node_exporter() {
        let (mounts, _) = parse_mountstats(TEXT);
        let addrs = mountinfo_addrs(
            "1 0 0:1 / /sys rw - sysfs sysfs rw\n\
             2 0 0:2 / /home rw - nfs4 fs1:/home rw,vers=4.2,addr=10.0.0.1\n\
             3 0 0:2 / /home2 rw - nfs4 fs1:/home rw,vers=4.2,addr=10.0.0.1\n\
             4 0 0:3 / /scratch rw - nfs fs2:/scratch rw,proto=rdma,addr=10.0.0.2\n",
        );
        assert_eq!(addrs[1].as_deref(), Some("10.0.0.1"));
        let out = families(&mounts, &addrs);
        let home = [("export", "fs1:/home"), ("protocol", "tcp")];
        let info = out
            .iter()
            .find(|f| f.name == "node_mountstats_nfs_mountpoint_info")
            .unwrap();
        assert_eq!(info.metrics.len(), 3, "both /home mountpoints and /scratch");
        assert_eq!(
            single(&out, "node_mountstats_nfs_age_seconds_total", &home),
            Some(500.0),
            "first mount wins"
        );
        let age = out
            .iter()
            .find(|f| f.name == "node_mountstats_nfs_age_seconds_total")
            .unwrap();
        assert_eq!(
            age.metrics.len(),
            1,
            "second mount of the export adds no stats; rdma has no age line"
        );
        assert_eq!(
            single(
                &out,
                "node_mountstats_nfs_transport_sends_total",
                &[("transport", "1")]
            ),
            Some(50.0)
        );
        assert_eq!(
            single(
                &out,
                "node_mountstats_nfs_operations_request_time_seconds_total",
                &[("operation", "READ")]
            ),
            Some(3.1)
        );
        assert_eq!(
            single(
                &out,
                "node_mountstats_nfs_operations_queue_time_seconds_total",
                &[("operation", "GETATTR")]
            ),
            Some(((u64::MAX % FLOAT64_MANTISSA) as f64) / 1000.0)
        );
        assert_eq!(
            single(
                &out,
                "node_mountstats_nfs_operations_errors_total",
                &[("operation", "READ")]
            ),
            Some(1.0)
        );
        assert!(single(
            &out,
            "node_mountstats_nfs_operations_errors_total",
            &[("operation", "GETATTR")]
        )
        .is_none());
        assert_eq!(
            single(&out, "node_mountstats_nfs_event_truncation_total", &home),
            Some(20.0)
        );
        assert_eq!(
            single(&out, "node_mountstats_nfs_total_write_bytes_total", &home),
            Some(40.0)
        );
        assert_eq!(
            single(
                &out,
                "node_mountstats_nfs_transport_sends_total",
                &[("protocol", "rdma"), ("mountaddr", "10.0.0.2")]
            ),
            Some(40.0)
        );
    }
}

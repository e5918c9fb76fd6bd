//! nfs: NFS client RPC statistics.
//!
//! Source: `<procfs>/net/rpc/nfs` (lines of a key and unsigned numbers:
//! `net`, `rpc`, `proc2`, `proc3`, `proc4`; the `procN` lines start with
//! their number of values). Metrics (counters):
//! `node_nfs_packets_total{protocol}`, `node_nfs_connections_total`,
//! `node_nfs_rpcs_total`, `node_nfs_rpc_retransmissions_total`,
//! `node_nfs_rpc_authentication_refreshes_total` and
//! `node_nfs_requests_total{proto,method}` (the method names are
//! node_exporter's). A kernel that writes fewer NFSv4 procedures than
//! [`CLIENT_V4_PROCS`] gets 0 for the rest, as node_exporter reports them.
//! A line that does not parse is left out and fails the collector after
//! the rest is exported. On by default; no flags. Without the NFS client
//! module it reports nothing (the missing file is looked for again once a
//! minute).
//!
//! The line parser and the NFSv2/v3 procedure tables are shared with the
//! nfsd collector, which reads the server's file of the same format.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};
use crate::malformed::Malformed;

/// NFSv2 procedures in the order of the `proc2` line.
pub const V2_PROCS: &[&str] = &[
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write",
    "Create", "Remove", "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];

/// NFSv3 procedures in the order of the `proc3` line.
pub const V3_PROCS: &[&str] = &[
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
];

/// NFSv4 client operations in the order of the client's `proc4` line
/// (node_exporter's names; later kernels append more, which are not read).
pub const CLIENT_V4_PROCS: &[&str] = &[
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "GetDeviceInfo",
    "LayoutGet",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
];

/// One line of an RPC statistics file: its key and numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcLine {
    /// 1-based line number, for error messages.
    pub number: usize,
    /// First field (`net`, `proc3` …).
    pub key: String,
    /// The unsigned numbers after it (for `th`, only the first two: the
    /// rest are decimal fractions).
    pub values: Vec<u64>,
}

/// Parses `net/rpc/nfs` or `net/rpc/nfsd` into lines; a line without a
/// value or with a value that is not an unsigned number is noted in the
/// returned [`Malformed`] and left out.
pub fn parse_rpc_lines(text: &str) -> (Vec<RpcLine>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        let taken: Vec<&str> = if key == "th" {
            fields.take(2).collect()
        } else {
            fields.collect()
        };
        if taken.is_empty() {
            bad.line(i + 1, line, "no values");
            continue;
        }
        match taken.iter().map(|v| v.parse::<u64>()).collect() {
            Ok(values) => out.push(RpcLine {
                number: i + 1,
                key: key.to_string(),
                values,
            }),
            Err(_) => bad.line(i + 1, line, "a value is not an unsigned number"),
        }
    }
    (out, bad)
}

/// The values of a `procN` line after its leading count, when the count
/// matches them and is at least `min`.
pub fn counted(line: &RpcLine, min: usize) -> Option<&[u64]> {
    let (&n, rest) = line.values.split_first()?;
    (n as usize == rest.len() && rest.len() >= min).then_some(rest)
}

/// The values of a line that must have exactly `n` of them.
pub fn exactly(line: &RpcLine, n: usize) -> Option<&[u64]> {
    (line.values.len() == n).then_some(&line.values[..])
}

/// Notes a line whose values do not have the expected shape.
pub fn wrong_shape(bad: &mut Malformed, line: &RpcLine, expected: &str) {
    bad.line(
        line.number,
        &line.key,
        format!("{} values, expected {expected}", line.values.len()),
    );
}

/// Adds one `requests_total` series per procedure of `names` from `values`
/// (missing trailing values count as 0).
pub fn add_procs(
    fam: &mut MetricFamily,
    proto: &str,
    names: &[&str],
    values: &[u64],
    skip_null: bool,
) {
    for (i, name) in names.iter().enumerate() {
        if skip_null && *name == "Null" {
            continue;
        }
        let v = values.get(i).copied().unwrap_or(0);
        fam.add(&[("proto", proto), ("method", name)], v as f64);
    }
}

/// The nfs collector.
pub struct Nfs {
    path: PathBuf,
    cache: FileCache,
}

impl SyncCollector for Nfs {
    fn name(&self) -> &'static str {
        "nfs"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut text = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut text, "nfs")? {
            return Ok(());
        }
        let (lines, mut bad) = parse_rpc_lines(&text);
        let mut packets = MetricFamily::counter(
            "node_nfs_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
        );
        let mut connections = MetricFamily::counter(
            "node_nfs_connections_total",
            "Total number of NFSd TCP connections.",
        );
        let mut rpcs =
            MetricFamily::counter("node_nfs_rpcs_total", "Total number of RPCs performed.");
        let mut retrans = MetricFamily::counter(
            "node_nfs_rpc_retransmissions_total",
            "Number of RPC transmissions performed.",
        );
        let mut refreshes = MetricFamily::counter(
            "node_nfs_rpc_authentication_refreshes_total",
            "Number of RPC authentication refreshes performed.",
        );
        let mut requests = MetricFamily::counter(
            "node_nfs_requests_total",
            "Number of NFS procedures invoked.",
        );
        for line in &lines {
            match line.key.as_str() {
                "net" => match exactly(line, 4) {
                    Some(v) => {
                        packets.add(&[("protocol", "udp")], v[1] as f64);
                        packets.add(&[("protocol", "tcp")], v[2] as f64);
                        connections.add(&[], v[3] as f64);
                    }
                    None => wrong_shape(&mut bad, line, "4"),
                },
                "rpc" => match exactly(line, 3) {
                    Some(v) => {
                        rpcs.add(&[], v[0] as f64);
                        retrans.add(&[], v[1] as f64);
                        refreshes.add(&[], v[2] as f64);
                    }
                    None => wrong_shape(&mut bad, line, "3"),
                },
                "proc2" => match counted(line, V2_PROCS.len()) {
                    Some(v) => add_procs(&mut requests, "2", V2_PROCS, v, false),
                    None => wrong_shape(&mut bad, line, "a count and at least 18"),
                },
                "proc3" => match counted(line, V3_PROCS.len()) {
                    Some(v) => add_procs(&mut requests, "3", V3_PROCS, v, false),
                    None => wrong_shape(&mut bad, line, "a count and at least 22"),
                },
                "proc4" => match counted(line, 0) {
                    Some(v) => add_procs(&mut requests, "4", CLIENT_V4_PROCS, v, false),
                    None => wrong_shape(&mut bad, line, "a count and as many values"),
                },
                // Lines a later kernel may add are not errors.
                _ => {}
            }
        }
        out.extend([packets, connections, rpcs, retrans, refreshes, requests]);
        bad.into_result(&self.path)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Nfs {
        path: ctx.paths.proc("net/rpc/nfs"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build, paths_under, scrape, single, try_scrape};

    #[test]
    fn tables_have_the_kernel_lengths() {
        assert_eq!(V2_PROCS.len(), 18);
        assert_eq!(V3_PROCS.len(), 22);
        assert_eq!(CLIENT_V4_PROCS.len(), 59);
    }

    #[test]
    fn lines_and_counts() {
        let (lines, bad) = parse_rpc_lines("net 1 2 3 4\n\nth 8 0 0.000 1.5\nproc2 x\nrpc\n");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].values, [8, 0]);
        assert_eq!(bad.count(), 2);
        let l = RpcLine {
            number: 1,
            key: "proc3".into(),
            values: vec![2, 5, 6],
        };
        assert_eq!(counted(&l, 2), Some(&[5, 6][..]));
        assert_eq!(counted(&l, 3), None);
        let short = RpcLine {
            values: vec![3, 5, 6],
            ..l
        };
        assert_eq!(counted(&short, 0), None);
    }

    #[test]
    fn reads_the_client_file_and_pads_old_v4_lines() {
        let dir = tempfile::tempdir().unwrap();
        let rpc = dir.path().join("net/rpc");
        std::fs::create_dir_all(&rpc).unwrap();
        let v2: String = (1..=18).map(|i| format!(" {i}")).collect();
        let v3: String = (1..=22).map(|i| format!(" {}", i * 10)).collect();
        std::fs::write(
            rpc.join("nfs"),
            format!(
                "net 9 1 8 2\nrpc 100 3 101\nproc2 18{v2}\nproc3 22{v3}\nproc4 3 7 8 9\nfuture 1\n"
            ),
        )
        .unwrap();
        let paths = paths_under(dir.path());
        let out = scrape(&*build("nfs", &paths));
        let req = "node_nfs_requests_total";
        assert_eq!(
            single(&out, req, &[("proto", "2"), ("method", "FsStat")]),
            Some(18.0)
        );
        assert_eq!(
            single(&out, req, &[("proto", "3"), ("method", "Commit")]),
            Some(220.0)
        );
        assert_eq!(
            single(&out, req, &[("proto", "4"), ("method", "Write")]),
            Some(9.0)
        );
        assert_eq!(
            single(&out, req, &[("proto", "4"), ("method", "Clone")]),
            Some(0.0)
        );
        assert_eq!(
            single(&out, "node_nfs_packets_total", &[("protocol", "tcp")]),
            Some(8.0)
        );
        assert_eq!(single(&out, "node_nfs_connections_total", &[]), Some(2.0));
        assert_eq!(
            single(&out, "node_nfs_rpc_retransmissions_total", &[]),
            Some(3.0)
        );

        std::fs::write(rpc.join("nfs"), "net 9 1 8\nrpc 100 3 101\n").unwrap();
        let (out, result) = try_scrape(&*build("nfs", &paths));
        assert!(result.unwrap_err().to_string().contains("line 1"));
        assert_eq!(single(&out, "node_nfs_rpcs_total", &[]), Some(100.0));
        assert!(single(&out, "node_nfs_connections_total", &[]).is_none());
    }
}

//! nfsd: NFS server (kernel nfsd) RPC statistics.
//!
//! Source: `<procfs>/net/rpc/nfsd` (the format of `net/rpc/nfs`, parsed by
//! [`crate::collectors::nfs::parse_rpc_lines`]; lines `rc`, `fh`, `io`,
//! `th`, `ra`, `net`, `rpc`, `proc2`, `proc3`, `proc4ops`,
//! `wdeleg_getattr`). Metrics: counters
//! `node_nfsd_reply_cache_{hits,misses,nocache}_total`,
//! `node_nfsd_file_handles_stale_total`,
//! `node_nfsd_disk_bytes_{read,written}_total`,
//! `node_nfsd_read_ahead_cache_not_found_total`,
//! `node_nfsd_packets_total{proto}`, `node_nfsd_connections_total`,
//! `node_nfsd_rpc_errors_total{error}`, `node_nfsd_server_rpcs_total`,
//! `node_nfsd_requests_total{proto,method}`; gauges
//! `node_nfsd_server_threads`, `node_nfsd_read_ahead_cache_size_blocks`.
//! The metrics of a line the kernel does not write (`ra` is gone since
//! Linux 5.x) are left out rather than reported as 0. A line that does not
//! parse is left out and fails the collector after the rest is exported.
//! On by default; no flags. Without nfsd it reports nothing (the missing
//! file is looked for again once a minute).

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::nfs::{
    add_procs, counted, exactly, parse_rpc_lines, wrong_shape, V2_PROCS, V3_PROCS,
};
use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};

/// The NFSv4 operations node_exporter reports, with their 1-based position
/// in the `proc4ops` line (after its count).
pub const V4_OPS: &[(usize, &str)] = &[
    (4, "Access"),
    (5, "Close"),
    (6, "Commit"),
    (7, "Create"),
    (8, "DelegPurge"),
    (9, "DelegReturn"),
    (10, "GetAttr"),
    (11, "GetFH"),
    (12, "Link"),
    (13, "Lock"),
    (14, "Lockt"),
    (15, "Locku"),
    (16, "Lookup"),
    (17, "LookupRoot"),
    (18, "Nverify"),
    (19, "Open"),
    (20, "OpenAttr"),
    (21, "OpenConfirm"),
    (22, "OpenDgrd"),
    (23, "PutFH"),
    (26, "Read"),
    (27, "ReadDir"),
    (28, "ReadLink"),
    (29, "Remove"),
    (30, "Rename"),
    (31, "Renew"),
    (32, "RestoreFH"),
    (33, "SaveFH"),
    (34, "SecInfo"),
    (35, "SetAttr"),
    (36, "SetClientID"),
    (37, "SetClientIDConfirm"),
    (38, "Verify"),
    (39, "Write"),
    // Kernels before 2.6 write 39 operations: RelLockOwner is then 0.
    (40, "RelLockOwner"),
];

/// The nfsd collector.
pub struct Nfsd {
    path: PathBuf,
    cache: FileCache,
}

fn counter(name: &'static str, help: &'static str) -> MetricFamily {
    MetricFamily::counter(name, help)
}

impl SyncCollector for Nfsd {
    fn name(&self) -> &'static str {
        "nfsd"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut text = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut text, "nfsd")? {
            return Ok(());
        }
        let (lines, mut bad) = parse_rpc_lines(&text);
        let mut rc_hits = counter(
            "node_nfsd_reply_cache_hits_total",
            "Total number of NFSd Reply Cache hits (client lost server response).",
        );
        let mut rc_misses = counter(
            "node_nfsd_reply_cache_misses_total",
            "Total number of NFSd Reply Cache an operation that requires caching (idempotent).",
        );
        let mut rc_nocache = counter(
            "node_nfsd_reply_cache_nocache_total",
            "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).",
        );
        let mut stale = counter(
            "node_nfsd_file_handles_stale_total",
            "Total number of NFSd stale file handles",
        );
        let mut read = counter("node_nfsd_disk_bytes_read_total", "Total NFSd bytes read.");
        let mut written = counter(
            "node_nfsd_disk_bytes_written_total",
            "Total NFSd bytes written.",
        );
        let mut threads = MetricFamily::gauge(
            "node_nfsd_server_threads",
            "Total number of NFSd kernel threads that are running.",
        );
        let mut ra_size = MetricFamily::gauge(
            "node_nfsd_read_ahead_cache_size_blocks",
            "How large the read ahead cache is in blocks.",
        );
        let mut ra_not_found = counter(
            "node_nfsd_read_ahead_cache_not_found_total",
            "Total number of NFSd read ahead cache not found.",
        );
        let mut packets = counter(
            "node_nfsd_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
        );
        let mut connections = counter(
            "node_nfsd_connections_total",
            "Total number of NFSd TCP connections.",
        );
        let mut rpc_errors = counter(
            "node_nfsd_rpc_errors_total",
            "Total number of NFSd RPC errors by error type.",
        );
        let mut rpcs = counter("node_nfsd_server_rpcs_total", "Total number of NFSd RPCs.");
        let mut requests = counter(
            "node_nfsd_requests_total",
            "Total number NFSd Requests by method and protocol.",
        );
        for line in &lines {
            match line.key.as_str() {
                "rc" => match exactly(line, 3) {
                    Some(v) => {
                        rc_hits.add(&[], v[0] as f64);
                        rc_misses.add(&[], v[1] as f64);
                        rc_nocache.add(&[], v[2] as f64);
                    }
                    None => wrong_shape(&mut bad, line, "3"),
                },
                "fh" => match exactly(line, 5) {
                    Some(v) => {
                        stale.add(&[], v[0] as f64);
                    }
                    None => wrong_shape(&mut bad, line, "5"),
                },
                "io" => match exactly(line, 2) {
                    Some(v) => {
                        read.add(&[], v[0] as f64);
                        written.add(&[], v[1] as f64);
                    }
                    None => wrong_shape(&mut bad, line, "2"),
                },
                "th" => match exactly(line, 2) {
                    Some(v) => {
                        threads.add(&[], v[0] as f64);
                    }
                    None => wrong_shape(&mut bad, line, "2"),
                },
                "ra" => match exactly(line, 12) {
                    Some(v) => {
                        ra_size.add(&[], v[0] as f64);
                        ra_not_found.add(&[], v[11] as f64);
                    }
                    None => wrong_shape(&mut bad, line, "12"),
                },
                "net" => match exactly(line, 4) {
                    Some(v) => {
                        packets.add(&[("proto", "udp")], v[1] as f64);
                        packets.add(&[("proto", "tcp")], v[2] as f64);
                        connections.add(&[], v[3] as f64);
                    }
                    None => wrong_shape(&mut bad, line, "4"),
                },
                "rpc" => match exactly(line, 5) {
                    Some(v) => {
                        rpcs.add(&[], v[0] as f64);
                        rpc_errors.add(&[("error", "fmt")], v[2] as f64);
                        rpc_errors.add(&[("error", "auth")], v[3] as f64);
                        rpc_errors.add(&[("error", "cInt")], v[4] as f64);
                    }
                    None => wrong_shape(&mut bad, line, "5"),
                },
                "proc2" => match counted(line, V2_PROCS.len()) {
                    Some(v) => add_procs(&mut requests, "2", V2_PROCS, v, true),
                    None => wrong_shape(&mut bad, line, "a count and at least 18"),
                },
                "proc3" => match counted(line, V3_PROCS.len()) {
                    Some(v) => add_procs(&mut requests, "3", V3_PROCS, v, true),
                    None => wrong_shape(&mut bad, line, "a count and at least 22"),
                },
                "proc4ops" => match counted(line, 39) {
                    Some(v) => {
                        for (pos, name) in V4_OPS {
                            let value = v.get(pos - 1).copied().unwrap_or(0);
                            requests.add(&[("proto", "4"), ("method", name)], value as f64);
                        }
                    }
                    None => wrong_shape(&mut bad, line, "a count and at least 39"),
                },
                "wdeleg_getattr" => match exactly(line, 1) {
                    Some(v) => {
                        requests.add(&[("proto", "4"), ("method", "WdelegGetattr")], v[0] as f64);
                    }
                    None => wrong_shape(&mut bad, line, "1"),
                },
                // `proc4` (null and compound counts) is not reported by
                // node_exporter; lines a later kernel may add are not errors.
                _ => {}
            }
        }
        out.extend([
            rc_hits,
            rc_misses,
            rc_nocache,
            stale,
            read,
            written,
            threads,
            ra_size,
            ra_not_found,
            packets,
            connections,
            rpc_errors,
            rpcs,
            requests,
        ]);
        bad.into_result(&self.path)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Nfsd {
        path: ctx.paths.proc("net/rpc/nfsd"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use crate::collectors::testing::{build, paths_under, scrape, single, try_scrape};

    #[test]
    fn reads_the_server_file() {
        let dir = tempfile::tempdir().unwrap();
        let rpc = dir.path().join("net/rpc");
        std::fs::create_dir_all(&rpc).unwrap();
        let ops: String = (1..=40).map(|i| format!(" {i}")).collect();
        let v3: String = (1..=22).map(|i| format!(" {i}")).collect();
        std::fs::write(
            rpc.join("nfsd"),
            format!(
                "rc 1 2 3\nfh 4 0 0 0 0\nio 10 20\nth 16 0 0.000 0.000\nnet 9 1 8 2\n\
                 rpc 50 6 1 2 3\nproc3 22{v3}\nproc4 2 0 5\nproc4ops 40{ops}\nwdeleg_getattr 7\n"
            ),
        )
        .unwrap();
        let paths = paths_under(dir.path());
        let out = scrape(&*build("nfsd", &paths));
        let req = "node_nfsd_requests_total";
        assert_eq!(
            single(&out, req, &[("proto", "4"), ("method", "Access")]),
            Some(4.0)
        );
        assert_eq!(
            single(&out, req, &[("proto", "4"), ("method", "RelLockOwner")]),
            Some(40.0)
        );
        assert_eq!(
            single(&out, req, &[("proto", "4"), ("method", "WdelegGetattr")]),
            Some(7.0)
        );
        assert_eq!(
            single(&out, req, &[("proto", "3"), ("method", "Commit")]),
            Some(22.0)
        );
        assert!(single(&out, req, &[("proto", "3"), ("method", "Null")]).is_none());
        assert_eq!(
            single(&out, "node_nfsd_rpc_errors_total", &[("error", "auth")]),
            Some(2.0)
        );
        assert_eq!(single(&out, "node_nfsd_server_threads", &[]), Some(16.0));
        assert!(
            single(&out, "node_nfsd_read_ahead_cache_size_blocks", &[]).is_none(),
            "no ra line, no made-up zero"
        );

        std::fs::write(rpc.join("nfsd"), "rc 1 2\nio 10 20\n").unwrap();
        let (out, result) = try_scrape(&*build("nfsd", &paths));
        assert!(result.unwrap_err().to_string().contains("line 1"));
        assert_eq!(
            single(&out, "node_nfsd_disk_bytes_read_total", &[]),
            Some(10.0)
        );
    }
}

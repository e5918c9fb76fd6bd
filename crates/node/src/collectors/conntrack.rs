//! conntrack: netfilter connection tracking table.
//!
//! Sources: `<procfs>/sys/net/netfilter/nf_conntrack_count` and
//! `nf_conntrack_max`, and the per-CPU table `<procfs>/net/stat/nf_conntrack`
//! (hexadecimal, summed over CPUs). Metrics (gauges):
//! `node_nf_conntrack_entries`, `node_nf_conntrack_entries_limit`,
//! `node_nf_conntrack_stat_{found,invalid,ignore,insert,insert_failed,drop,early_drop,search_restart}`.
//! On by default; no flags. Without the nf_conntrack module it reports
//! nothing. A value that is not a number, or a row of the per-CPU table
//! that does not match its header, is left out and fails the collector
//! after the rest is exported.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{is_missing, lines, read_number, FileCache};
use crate::malformed::Malformed;
use crate::paths::Paths;

/// The statistics node_exporter exposes, with their help text.
const STATS: [(&str, &str); 8] = [
    ("found", "Number of searched entries which were successful."),
    ("invalid", "Number of packets seen which can not be tracked."),
    ("ignore", "Number of packets seen which are already connected to a conntrack entry."),
    ("insert", "Number of entries inserted into the list."),
    ("insert_failed", "Number of entries for which list insertion was attempted but failed."),
    ("drop", "Number of packets dropped due to conntrack failure."),
    ("early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."),
    ("search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
];

/// Sums the per-CPU rows of `net/stat/nf_conntrack` by header column;
/// empty when there is no row. A row that is not one hexadecimal number
/// per column is left out and noted.
pub fn parse_conntrack_stat(text: &str) -> (Vec<(String, u64)>, Malformed) {
    let mut bad = Malformed::default();
    let mut lines = lines(text);
    let Some(header) = lines.next() else {
        return (Vec::new(), bad);
    };
    let mut sums: Vec<(String, u64)> = header
        .split_ascii_whitespace()
        .map(|h| (h.to_string(), 0))
        .collect();
    let mut rows = 0;
    for (i, line) in lines.enumerate() {
        let vals: Result<Vec<u64>, _> = line
            .split_ascii_whitespace()
            .map(|v| u64::from_str_radix(v, 16))
            .collect();
        match vals {
            Ok(v) if v.len() == sums.len() => {
                rows += 1;
                for (s, x) in sums.iter_mut().zip(v) {
                    s.1 = s.1.wrapping_add(x);
                }
            }
            _ => bad.line(i + 2, line, "not one hexadecimal number per column"),
        }
    }
    if rows == 0 {
        sums.clear();
    }
    (sums, bad)
}

/// The conntrack collector.
pub struct Conntrack {
    count: PathBuf,
    max: PathBuf,
    stat: PathBuf,
    cache: FileCache,
}

impl Conntrack {
    /// Reads under the given procfs.
    pub fn new(paths: &Paths) -> Self {
        Conntrack {
            count: paths.proc("sys/net/netfilter/nf_conntrack_count"),
            max: paths.proc("sys/net/netfilter/nf_conntrack_max"),
            stat: paths.proc("net/stat/nf_conntrack"),
            cache: FileCache::remembering_missing(),
        }
    }
}

impl SyncCollector for Conntrack {
    fn name(&self) -> &'static str {
        "conntrack"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let Some(count) = read_number(&mut scope, &self.count, "conntrack")? else {
            tracing::debug!("conntrack files not available (nf_conntrack not loaded?)");
            return Ok(());
        };
        out.push(oxmon_core::gauge(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            count,
        ));
        let mut result = Ok(());
        match read_number(&mut scope, &self.max, "conntrack") {
            Ok(Some(max)) => out.push(oxmon_core::gauge(
                "node_nf_conntrack_entries_limit",
                "Maximum size of connection tracking table.",
                max,
            )),
            Ok(None) => {}
            Err(e) => result = Err(e),
        }
        match scope.read(&self.stat) {
            Ok(b) => {
                let (sums, bad) = parse_conntrack_stat(&crate::file_cache::utf8_text(b));
                for (name, help) in STATS {
                    if let Some((_, v)) = sums.iter().find(|(k, _)| k == name) {
                        out.push(oxmon_core::gauge(
                            format!("node_nf_conntrack_stat_{name}"),
                            help,
                            *v as f64,
                        ));
                    }
                }
                result = result.and(bad.into_result(&self.stat));
            }
            Err(e) if is_missing(&e) => {}
            Err(e) => result = Err(format!("reading {}: {e}", self.stat.display()).into()),
        }
        result
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Conntrack::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_over_cpus() {
        let text = "entries  searched found new invalid ignore\n\
                    00000010  00000000 00000001 00000000 00000003 0000000a\n\
                    00000010  00000000 00000002 00000000 00000001 00000010\n\
                    bad line\n";
        let (s, bad) = parse_conntrack_stat(text);
        assert_eq!(bad.count(), 1, "{bad}");
        let get = |k: &str| s.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        assert_eq!(get("found"), Some(3));
        assert_eq!(get("invalid"), Some(4));
        assert_eq!(get("ignore"), Some(26));
        assert_eq!(get("drop"), None);
        assert!(parse_conntrack_stat("").0.is_empty());
        assert!(
            parse_conntrack_stat("entries found\n").0.is_empty(),
            "no rows: no made-up zeros"
        );
    }
}

//! ksmd: kernel samepage merging statistics.
//!
//! Source: `<sysfs>/kernel/mm/ksm/*` (one number per file). Metrics:
//! `node_ksmd_full_scans_total` (counter), gauges `node_ksmd_run`,
//! `node_ksmd_pages_{shared,sharing,to_scan,unshared,volatile}`,
//! `node_ksmd_merge_across_nodes`, `node_ksmd_sleep_seconds` (from
//! `sleep_millisecs`) and `node_ksmd_general_profit_bytes` (kernels since
//! 6.1; it can be negative). A file the kernel does not have (no NUMA: no
//! `merge_across_nodes`) is not exported; one that is not a number fails
//! the collector. Off by default; no flags. Without KSM it reports
//! nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_number, FileCache};

/// `(file, metric name, help, scale, is counter)`.
const FILES: [(&str, &str, &str, f64, bool); 10] = [
    (
        "full_scans",
        "node_ksmd_full_scans_total",
        "How many times all mergeable areas have been scanned.",
        1.0,
        true,
    ),
    (
        "general_profit",
        "node_ksmd_general_profit_bytes",
        "How effective is KSM. ksm_saved_pages * sizeof(page) - (all_rmap_items) * sizeof(rmap_item)",
        1.0,
        false,
    ),
    (
        "merge_across_nodes",
        "node_ksmd_merge_across_nodes",
        "Specifies if pages from different NUMA nodes can be merged.",
        1.0,
        false,
    ),
    (
        "pages_shared",
        "node_ksmd_pages_shared",
        "How many shared pages are being used.",
        1.0,
        false,
    ),
    (
        "pages_sharing",
        "node_ksmd_pages_sharing",
        "How many more sites are sharing them i.e. how much saved.",
        1.0,
        false,
    ),
    (
        "pages_to_scan",
        "node_ksmd_pages_to_scan",
        "How many pages to scan before ksmd goes to sleep.",
        1.0,
        false,
    ),
    (
        "pages_unshared",
        "node_ksmd_pages_unshared",
        "How many pages unique but repeatedly checked for merging.",
        1.0,
        false,
    ),
    (
        "pages_volatile",
        "node_ksmd_pages_volatile",
        "How many pages changing too fast to be placed in a tree.",
        1.0,
        false,
    ),
    (
        "run",
        "node_ksmd_run",
        "The status of ksmd. stopped = 0, running = 1",
        1.0,
        false,
    ),
    (
        "sleep_millisecs",
        "node_ksmd_sleep_seconds",
        "How many seconds ksmd should sleep before next scan.",
        0.001,
        false,
    ),
];

struct Ksmd {
    dir: PathBuf,
    cache: FileCache,
}

impl SyncCollector for Ksmd {
    fn name(&self) -> &'static str {
        "ksmd"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        for (file, name, help, scale, counter) in FILES {
            let Some(v) = read_number(&mut scope, &self.dir.join(file), "ksmd")? else {
                continue;
            };
            out.push(if counter {
                oxmon_core::counter(name, help, v * scale)
            } else {
                oxmon_core::gauge(name, help, v * scale)
            });
        }
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Ksmd {
        dir: ctx.paths.sys("kernel/mm/ksm"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build, paths_under, scrape, try_scrape};

    #[test]
    fn reads_present_files_scaled_and_fails_on_junk() {
        let dir = tempfile::tempdir().unwrap();
        let ksm = dir.path().join("kernel/mm/ksm");
        std::fs::create_dir_all(&ksm).unwrap();
        std::fs::write(ksm.join("sleep_millisecs"), "20\n").unwrap();
        std::fs::write(ksm.join("general_profit"), "-4096\n").unwrap();
        let c = build("ksmd", &paths_under(dir.path()));
        let out = scrape(c.as_ref());
        assert_eq!(out.len(), 2);
        let v = |n: &str| {
            out.iter().find(|f| f.name == n).unwrap().metrics[0]
                .value
                .clone()
        };
        assert_eq!(
            v("node_ksmd_sleep_seconds"),
            oxmon_core::metrics::Value::Single(0.02)
        );
        assert_eq!(
            v("node_ksmd_general_profit_bytes"),
            oxmon_core::metrics::Value::Single(-4096.0)
        );
        std::fs::write(ksm.join("run"), "yes\n").unwrap();
        let c = build("ksmd", &paths_under(dir.path()));
        assert!(try_scrape(c.as_ref()).1.is_err());
    }
}

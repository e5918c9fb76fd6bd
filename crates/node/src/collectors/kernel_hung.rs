//! kernel_hung: tasks the hung-task detector has reported.
//!
//! Source: `<procfs>/sys/kernel/hung_task_detect_count` (kernels since
//! 6.11). Metric: counter `node_kernel_hung_tasks_total`. Off by default;
//! no flags. Without the file (older kernel, no `CONFIG_DETECT_HUNG_TASK`)
//! it reports nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_number, FileCache};

struct KernelHung {
    path: PathBuf,
    cache: FileCache,
}

impl SyncCollector for KernelHung {
    fn name(&self) -> &'static str {
        "kernel_hung"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        if let Some(v) = read_number(&mut self.cache.scope(), &self.path, "kernel_hung")? {
            out.push(oxmon_core::counter(
                "node_kernel_hung_tasks_total",
                "Total number of tasks that have been detected as hung since the system booted.",
                v,
            ));
        }
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(KernelHung {
        path: ctx.paths.proc("sys/kernel/hung_task_detect_count"),
        cache: FileCache::remembering_missing(),
    }))
}

//! loadavg — `/proc/loadavg`.
//!
//! Metrics: `node_load1`, `node_load5`, `node_load15` (gauges).
//! On by default. No flags.

use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::parse_f64;
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};

/// Parses the three load averages from `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for slot in &mut out {
        *slot = parse_f64(it.next()?).ok()?;
    }
    Some(out)
}

struct Loadavg {
    path: std::path::PathBuf,
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Loadavg {
        path: ctx.paths.proc("loadavg"),
        cache: FileCache::new().whole_in_one_read(),
    }))
}

impl SyncCollector for Loadavg {
    fn name(&self) -> &'static str {
        "loadavg"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "loadavg")? {
            return Ok(());
        }
        let loads = parse_loadavg(&buf)
            .ok_or_else(|| format!("{}: unexpected content {buf:?}", self.path.display()))?;
        out.push(oxmon_core::gauge(
            "node_load1",
            "1m load average.",
            loads[0],
        ));
        out.push(oxmon_core::gauge(
            "node_load5",
            "5m load average.",
            loads[1],
        ));
        out.push(oxmon_core::gauge(
            "node_load15",
            "15m load average.",
            loads[2],
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loadavg() {
        assert_eq!(
            parse_loadavg("1.50 0.75 0.05 3/412 99871\n"),
            Some([1.5, 0.75, 0.05])
        );
        assert_eq!(parse_loadavg("1.0 x 2.0"), None);
        assert_eq!(parse_loadavg(""), None);
    }
}

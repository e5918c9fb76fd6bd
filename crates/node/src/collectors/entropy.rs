//! entropy — `/proc/sys/kernel/random/entropy_avail` and `poolsize`.
//!
//! Metrics: `node_entropy_available_bits`, `node_entropy_pool_size_bits`
//! (gauges). On by default. No flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::parse_f64;
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};

/// Parses a file holding one number.
pub fn parse_number(text: &str) -> Option<f64> {
    parse_f64(text.trim()).ok()
}

struct Entropy {
    avail: PathBuf,
    pool: PathBuf,
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Entropy {
        avail: ctx.paths.proc("sys/kernel/random/entropy_avail"),
        pool: ctx.paths.proc("sys/kernel/random/poolsize"),
        cache: FileCache::new().whole_in_one_read(),
    }))
}

impl SyncCollector for Entropy {
    fn name(&self) -> &'static str {
        "entropy"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        for (path, name, help) in [
            (
                &self.avail,
                "node_entropy_available_bits",
                "Bits of available entropy.",
            ),
            (
                &self.pool,
                "node_entropy_pool_size_bits",
                "Bits of entropy pool.",
            ),
        ] {
            if !read_optional(&mut scope, path, &mut buf, "entropy")? {
                continue;
            }
            let v = parse_number(&buf)
                .ok_or_else(|| format!("{}: not a number: {buf:?}", path.display()))?;
            out.push(oxmon_core::gauge(name, help, v));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("256\n"), Some(256.0));
        assert_eq!(parse_number(""), None);
    }
}

//! filefd — `/proc/sys/fs/file-nr`.
//!
//! Metrics: `node_filefd_allocated`, `node_filefd_maximum` (gauges).
//! On by default. No flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::parse_f64;
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};

/// Parses `file-nr` (`allocated unused maximum`) into `(allocated, maximum)`.
pub fn parse_file_nr(text: &str) -> Option<(f64, f64)> {
    let mut it = text.split_ascii_whitespace();
    let allocated = parse_f64(it.next()?).ok()?;
    let _unused = parse_f64(it.next()?).ok()?;
    let maximum = parse_f64(it.next()?).ok()?;
    Some((allocated, maximum))
}

struct Filefd {
    path: PathBuf,
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Filefd {
        path: ctx.paths.proc("sys/fs/file-nr"),
        cache: FileCache::new().whole_in_one_read(),
    }))
}

impl SyncCollector for Filefd {
    fn name(&self) -> &'static str {
        "filefd"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "filefd")? {
            return Ok(());
        }
        let (allocated, maximum) = parse_file_nr(&buf)
            .ok_or_else(|| format!("{}: unexpected content {buf:?}", self.path.display()))?;
        out.push(oxmon_core::gauge(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            allocated,
        ));
        out.push(oxmon_core::gauge(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            maximum,
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_nr() {
        assert_eq!(
            parse_file_nr("2048\t0\t9223372036854775807\n"),
            Some((2048.0, 9.223372036854776e18))
        );
        assert_eq!(parse_file_nr("12 0"), None);
    }
}

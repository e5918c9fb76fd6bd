//! bcache: block-layer cache statistics.
//!
//! Source: `<sysfs>/fs/bcache/<uuid>/` (cache set attributes and
//! `internal/`), its backing devices `bdev<N>/` (`dirty_data`,
//! `writeback_rate_debug`, `stats_total/`) and its cache devices
//! `cache<N>/` (`io_errors`, `metadata_written`, `written`,
//! `priority_stats`). Values are written by the kernel's `bch_hprint`
//! (`20.4G`, `1.1M/sec`), decoded by [`dehumanize`].
//!
//! Metrics (`node_bcache_*`, labelled `uuid`, plus `backing_device` or
//! `cache_device`): the cache set gauges and counters of [`SET_ATTRS`], the
//! backing device ones of [`BDEV_ATTRS`] and [`WRITEBACK_ATTRS`], and the
//! cache device ones of [`CACHE_ATTRS`]. `--collector.bcache.priorityStats`
//! (off by default: the kernel walks every bucket to write the file) adds
//! `node_bcache_priority_stats_{unused,metadata}_percent{cache_device}`.
//!
//! On by default. Without bcache (no `fs/bcache` in sysfs) it reports
//! nothing; the cache sets are listed again once a minute. An attribute a
//! kernel lacks is skipped; one that does not parse is left out and fails
//! the collector after the rest is exported.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::collector::{
    sync_collector, CollectError, CollectResult, ScrapeContext, SyncCollector,
};
use oxmon_core::metrics::MetricType::{self, Counter as C, Gauge as G};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{dir_entries, Refreshed};
use crate::file_cache::{FileCache, ScrapeReader};
use crate::paths::Paths;

/// bcache option flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Flags {
    /// Expose expensive priority stats.
    #[arg(
        id = "collector.bcache.priorityStats",
        long = "collector.bcache.priorityStats"
    )]
    pub priority_stats: bool,
}

/// Decodes a value written by the kernel's `bch_hprint`: an integer, or a
/// number with a binary unit suffix (`k`, `M`, `G`, … `Y`) whose
/// "fraction" is tenths of 1024ths (`1.1M` is 1 + 1/10.24 MiB). The result
/// is truncated to an integer, as node_exporter reads it.
pub fn dehumanize(s: &str) -> Option<f64> {
    let last = *s.as_bytes().last()?;
    if last.is_ascii_digit() {
        let v: f64 = s.parse().ok()?;
        return v.is_finite().then(|| v.max(0.0).trunc());
    }
    let exponent = b"kMGTPEZY".iter().position(|&u| u == last)? + 1;
    let number = &s[..s.len() - 1];
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (number, None),
    };
    let mut mantissa: f64 = int.parse().ok()?;
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        mantissa += frac.parse::<f64>().ok()? / 10.24;
    }
    let v = mantissa * 1024f64.powi(exponent as i32);
    v.is_finite().then(|| v.max(0.0).trunc())
}

/// [`dehumanize`] with an optional leading `-`.
pub fn dehumanize_signed(s: &str) -> Option<f64> {
    match s.strip_prefix('-') {
        Some(rest) => dehumanize(rest).map(|v| -v),
        None => dehumanize(s),
    }
}

/// The last field of a `key: value` line, without `suffix`.
fn last_field<'a>(line: &'a str, suffix: &str) -> Option<&'a str> {
    let last = line.split_whitespace().last()?;
    Some(last.strip_suffix(suffix).unwrap_or(last))
}

/// The values of a backing device's `writeback_rate_debug`, in
/// [`WRITEBACK_ATTRS`] order (`None` where a line is missing), or the
/// first line that does not parse.
pub fn parse_writeback_rate_debug(text: &str) -> Result<[Option<f64>; 5], String> {
    let mut out = [None; 5];
    for line in text.lines() {
        for (slot, (key, _, _)) in out.iter_mut().zip(WRITEBACK_ATTRS) {
            if line.starts_with(key) {
                let v = last_field(line, "/sec").and_then(dehumanize_signed);
                *slot = Some(v.ok_or_else(|| format!("cannot read {line:?}"))?);
            }
        }
    }
    Ok(out)
}

/// The values of a cache device's `priority_stats`, in [`PRIORITY_ATTRS`]
/// order (`None` where a line is missing), or the first line that does not
/// parse.
pub fn parse_priority_stats(text: &str) -> Result<[Option<f64>; 2], String> {
    let mut out = [None; 2];
    for line in text.lines() {
        for (slot, (key, _, _)) in out.iter_mut().zip(PRIORITY_ATTRS) {
            if line.starts_with(key) {
                let v = last_field(line, "%").and_then(|f| f.parse::<u64>().ok());
                *slot = Some(v.ok_or_else(|| format!("cannot read {line:?}"))? as f64);
            }
        }
    }
    Ok(out)
}

/// One attribute file: its path under the device directory, the metric, its
/// help text, its type and the factor its value is scaled by.
type Attr = (&'static str, &'static str, &'static str, MetricType, f64);

/// Cache set attributes (`<uuid>/`).
#[rustfmt::skip]
pub const SET_ATTRS: &[Attr] = &[
    ("average_key_size", "node_bcache_average_key_size_sectors", "Average data per key in the btree (sectors).", G, 1.0),
    ("btree_cache_size", "node_bcache_btree_cache_size_bytes", "Amount of memory currently used by the btree cache.", G, 1.0),
    ("cache_available_percent", "node_bcache_cache_available_percent", "Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).", G, 1.0),
    ("congested", "node_bcache_congested", "Congestion.", G, 1.0),
    ("root_usage_percent", "node_bcache_root_usage_percent", "Percentage of the root btree node in use (tree depth increases if too high).", G, 1.0),
    ("tree_depth", "node_bcache_tree_depth", "Depth of the btree.", G, 1.0),
    ("internal/active_journal_entries", "node_bcache_active_journal_entries", "Number of journal entries that are newer than the index.", G, 1.0),
    ("internal/btree_nodes", "node_bcache_btree_nodes", "Total nodes in the btree.", G, 1.0),
    // The file is in microseconds; node_exporter scales it as nanoseconds,
    // and dashboards built on it expect that value.
    ("internal/btree_read_average_duration_us", "node_bcache_btree_read_average_duration_seconds", "Average btree read duration.", G, 1e-9),
    ("internal/cache_read_races", "node_bcache_cache_read_races_total", "Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.", C, 1.0),
];

/// Backing device attributes (`<uuid>/bdev<N>/`).
#[rustfmt::skip]
pub const BDEV_ATTRS: &[Attr] = &[
    ("dirty_data", "node_bcache_dirty_data_bytes", "Amount of dirty data for this backing device in the cache.", G, 1.0),
    ("stats_total/bypassed", "node_bcache_bypassed_bytes_total", "Amount of IO (both reads and writes) that has bypassed the cache.", C, 1.0),
    ("stats_total/cache_hits", "node_bcache_cache_hits_total", "Hits counted per individual IO as bcache sees them.", C, 1.0),
    ("stats_total/cache_misses", "node_bcache_cache_misses_total", "Misses counted per individual IO as bcache sees them.", C, 1.0),
    ("stats_total/cache_bypass_hits", "node_bcache_cache_bypass_hits_total", "Hits for IO intended to skip the cache.", C, 1.0),
    ("stats_total/cache_bypass_misses", "node_bcache_cache_bypass_misses_total", "Misses for IO intended to skip the cache.", C, 1.0),
    ("stats_total/cache_miss_collisions", "node_bcache_cache_miss_collisions_total", "Instances where data insertion from cache miss raced with write (data already present).", C, 1.0),
    ("stats_total/cache_readaheads", "node_bcache_cache_readaheads_total", "Count of times readahead occurred.", C, 1.0),
];

/// The lines of `writeback_rate_debug` exported: line prefix, metric, help.
#[rustfmt::skip]
pub const WRITEBACK_ATTRS: [(&str, &str, &str); 5] = [
    ("target:", "node_bcache_dirty_target_bytes", "Current dirty data target threshold for this backing device in bytes."),
    ("rate:", "node_bcache_writeback_rate", "Current writeback rate for this backing device in bytes."),
    ("proportional:", "node_bcache_writeback_rate_proportional_term", "Current result of proportional controller, part of writeback rate"),
    ("integral:", "node_bcache_writeback_rate_integral_term", "Current result of integral controller, part of writeback rate"),
    ("change:", "node_bcache_writeback_change", "Last writeback rate change step for this backing device."),
];

/// Cache device attributes (`<uuid>/cache<N>/`).
#[rustfmt::skip]
pub const CACHE_ATTRS: &[Attr] = &[
    ("io_errors", "node_bcache_io_errors", "Number of errors that have occurred, decayed by io_error_halflife.", G, 1.0),
    ("metadata_written", "node_bcache_metadata_written_bytes_total", "Sum of all non data writes (btree writes and all other metadata).", C, 1.0),
    ("written", "node_bcache_written_bytes_total", "Sum of all data that has been written to the cache.", C, 1.0),
];

/// The lines of `priority_stats` exported: line prefix, metric, help.
#[rustfmt::skip]
pub const PRIORITY_ATTRS: [(&str, &str, &str); 2] = [
    ("Unused:", "node_bcache_priority_stats_unused_percent", "The percentage of the cache that doesn't contain any data."),
    ("Metadata:", "node_bcache_priority_stats_metadata_percent", "Bcache's metadata overhead."),
];

/// A cache set and its devices, as listed.
#[derive(Debug)]
struct CacheSet {
    uuid: String,
    dir: PathBuf,
    bdevs: Vec<String>,
    caches: Vec<String>,
}

/// True for `<prefix><digit>…`, the names node_exporter globs.
fn numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

fn list_sets(dir: &Path) -> Result<Vec<CacheSet>, CollectError> {
    let listing = |d: &Path| dir_entries(d).map_err(|e| format!("listing {}: {e}", d.display()));
    let mut sets = Vec::new();
    for (uuid, _) in listing(dir)?.unwrap_or_default() {
        if !uuid.contains('-') {
            continue;
        }
        let set_dir = dir.join(&uuid);
        let names: Vec<String> = listing(&set_dir)?
            .unwrap_or_default()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        sets.push(CacheSet {
            uuid,
            bdevs: names
                .iter()
                .filter(|n| numbered(n, "bdev"))
                .cloned()
                .collect(),
            caches: names
                .iter()
                .filter(|n| numbered(n, "cache"))
                .cloned()
                .collect(),
            dir: set_dir,
        });
    }
    Ok(sets)
}

/// The bcache collector.
pub struct Bcache {
    dir: PathBuf,
    priority_stats: bool,
    cache: FileCache,
    sets: Refreshed<Vec<CacheSet>>,
}

impl Bcache {
    /// Reads under the given sysfs.
    pub fn new(paths: &Paths, flags: &Flags) -> Self {
        Bcache {
            dir: paths.sys("fs/bcache"),
            priority_stats: flags.priority_stats,
            cache: FileCache::remembering_missing(),
            sets: Refreshed::default(),
        }
    }
}

/// The families of one scrape, in table order, and the first failure.
struct Scrape<'s, 'c> {
    files: ScrapeReader<'s, 'c>,
    families: Vec<MetricFamily>,
}

impl Scrape<'_, '_> {
    fn fail(&mut self, e: String) {
        self.files.fail(e);
    }

    /// The text of `path`; `None` when it is missing (a kernel without the
    /// attribute) or unreadable (noted).
    fn text(&mut self, path: &Path) -> Option<String> {
        self.files.text(path)
    }

    /// Adds one series of family `family` for each attribute of `attrs`.
    fn attrs(
        &mut self,
        first_family: usize,
        attrs: &[Attr],
        dir: &Path,
        labels: &[(&'static str, &str)],
    ) {
        for (i, &(file, _, _, _, scale)) in attrs.iter().enumerate() {
            let path = dir.join(file);
            let Some(text) = self.text(&path) else {
                continue;
            };
            match dehumanize(text.trim_end()) {
                Some(v) => {
                    self.families[first_family + i].add(labels, v * scale);
                }
                None => self.fail(format!(
                    "{}: not a bcache value: {:?}",
                    path.display(),
                    text.trim_end()
                )),
            }
        }
    }
}

impl SyncCollector for Bcache {
    fn name(&self) -> &'static str {
        "bcache"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let sets = self.sets.get(|| list_sets(&self.dir))?;
        if sets.is_empty() {
            return Ok(());
        }
        let attr_family = |&(_, name, help, kind, _): &Attr| MetricFamily::new(name, help, kind);
        let mut families: Vec<MetricFamily> = SET_ATTRS
            .iter()
            .chain(BDEV_ATTRS)
            .chain(CACHE_ATTRS)
            .map(attr_family)
            .collect();
        families.extend(
            WRITEBACK_ATTRS
                .iter()
                .chain(&PRIORITY_ATTRS)
                .map(|&(_, name, help)| MetricFamily::gauge(name, help)),
        );
        let bdev_first = SET_ATTRS.len();
        let cache_first = bdev_first + BDEV_ATTRS.len();
        let writeback_first = cache_first + CACHE_ATTRS.len();
        let priority_first = writeback_first + WRITEBACK_ATTRS.len();

        let mut scope = self.cache.scope();
        let mut s = Scrape {
            files: ScrapeReader::new(&mut scope),
            families,
        };
        let mut vanished = false;
        for set in sets.iter() {
            if !set.dir.exists() {
                vanished = true;
                continue;
            }
            let uuid = set.uuid.as_str();
            s.attrs(0, SET_ATTRS, &set.dir, &[("uuid", uuid)]);
            for bdev in &set.bdevs {
                let dir = set.dir.join(bdev);
                let labels = [("uuid", uuid), ("backing_device", bdev.as_str())];
                s.attrs(bdev_first, BDEV_ATTRS, &dir, &labels);
                let path = dir.join("writeback_rate_debug");
                if let Some(text) = s.text(&path) {
                    match parse_writeback_rate_debug(&text) {
                        Ok(values) => {
                            for (i, v) in values.into_iter().enumerate() {
                                if let Some(v) = v {
                                    s.families[writeback_first + i].add(&labels, v);
                                }
                            }
                        }
                        Err(e) => s.fail(format!("{}: {e}", path.display())),
                    }
                }
            }
            for cache in &set.caches {
                let dir = set.dir.join(cache);
                let labels = [("uuid", uuid), ("cache_device", cache.as_str())];
                s.attrs(cache_first, CACHE_ATTRS, &dir, &labels);
                if !self.priority_stats {
                    continue;
                }
                let path = dir.join("priority_stats");
                if let Some(text) = s.text(&path) {
                    match parse_priority_stats(&text) {
                        Ok(values) => {
                            for (i, v) in values.into_iter().enumerate() {
                                if let Some(v) = v {
                                    s.families[priority_first + i].add(&labels, v);
                                }
                            }
                        }
                        Err(e) => s.fail(format!("{}: {e}", path.display())),
                    }
                }
            }
        }
        if vanished {
            self.sets.invalidate();
        }
        out.extend(s.families);
        s.files.finish()
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Bcache::new(ctx.paths, &ctx.options.bcache)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build, build_with, paths_under, scrape, try_scrape, write};

    #[test]
    fn hprint_values() {
        assert_eq!(dehumanize("0"), Some(0.0));
        assert_eq!(dehumanize("546"), Some(546.0));
        assert_eq!(dehumanize("1.1M"), Some(1_150_976.0));
        assert_eq!(dehumanize("20.4G"), Some(21_894_266_880.0));
        assert_eq!(dehumanize("790.0k"), Some(808_960.0));
        assert_eq!(dehumanize("2k"), Some(2048.0));
        assert_eq!(dehumanize_signed("-321.5k"), Some(-329_204.0));
        for bad in ["", "k", "1.x", "1Q", "1.2.3M", "NaN"] {
            assert_eq!(dehumanize(bad), None, "{bad}");
        }
    }

    #[test]
    fn writeback_and_priority_files() {
        let text = "rate:\t\t1.1M/sec\ndirty:\t\t20.4G\ntarget:\t\t20.4G\n\
                    proportional:\t-427.5k\nintegral:\t790.0k\nchange:\t\t321.5k/sec\nnext io:\t17ms\n";
        let v = parse_writeback_rate_debug(text).unwrap();
        assert_eq!(
            v,
            [
                Some(21_894_266_880.0),
                Some(1_150_976.0),
                Some(-437_748.0),
                Some(808_960.0),
                Some(329_204.0)
            ]
        );
        assert!(parse_writeback_rate_debug("rate: fast\n").is_err());
        let ps = "Unused:\t\t97%\nMetadata:\t2%\nAverage:\t10473\n";
        assert_eq!(parse_priority_stats(ps), Ok([Some(97.0), Some(2.0)]));
        assert!(parse_priority_stats("Unused: many%\n").is_err());
    }

    #[test]
    fn reads_a_cache_set() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_under(dir.path());
        assert!(scrape(build("bcache", &paths).as_ref()).is_empty());
        let set = "fs/bcache/0aa1-bb2";
        write(dir.path(), &format!("{set}/tree_depth"), "2\n");
        write(dir.path(), &format!("{set}/btree_cache_size"), "1.5M\n");
        write(dir.path(), &format!("{set}/bdev0/dirty_data"), "3.0k\n");
        write(
            dir.path(),
            &format!("{set}/bdev0/stats_total/cache_hits"),
            "7\n",
        );
        write(dir.path(), &format!("{set}/cache0/written"), "1.0G\n");
        write(
            dir.path(),
            &format!("{set}/cache0/priority_stats"),
            "Unused: 5%\n",
        );
        let out = scrape(build("bcache", &paths).as_ref());
        let value = |out: &[MetricFamily], name: &str| {
            let f = out.iter().find(|f| f.name == name).unwrap();
            match f.metrics.first().map(|m| &m.value) {
                Some(oxmon_core::metrics::Value::Single(v)) => Some(*v),
                _ => None,
            }
        };
        assert_eq!(value(&out, "node_bcache_tree_depth"), Some(2.0));
        assert_eq!(
            value(&out, "node_bcache_btree_cache_size_bytes"),
            Some(1_560_576.0)
        );
        assert_eq!(value(&out, "node_bcache_dirty_data_bytes"), Some(3072.0));
        assert_eq!(value(&out, "node_bcache_cache_hits_total"), Some(7.0));
        assert_eq!(
            value(&out, "node_bcache_written_bytes_total"),
            Some(1_073_741_824.0)
        );
        assert_eq!(
            value(&out, "node_bcache_priority_stats_unused_percent"),
            None
        );
        let with_priority = ["--collector.bcache.priorityStats"];
        let out = scrape(build_with("bcache", &paths, &with_priority).as_ref());
        assert_eq!(
            value(&out, "node_bcache_priority_stats_unused_percent"),
            Some(5.0)
        );
        write(dir.path(), &format!("{set}/tree_depth"), "deep\n");
        let (out, result) = try_scrape(build("bcache", &paths).as_ref());
        assert!(result.is_err());
        assert_eq!(value(&out, "node_bcache_dirty_data_bytes"), Some(3072.0));
    }
}

//! xfs: per-filesystem XFS statistics.
//!
//! Source: `<sysfs>/fs/xfs/<device>/stats/stats` (one line per category: a
//! name, then counters). Metrics: the counters `node_xfs_<category>_<value>_total{device}`
//! of [`COUNTERS`] (extent allocation, allocation and block-map B-trees,
//! block mapping, directory operations, inode cache operations, read/write
//! calls, vnodes), as node_exporter names them. Lines of other categories
//! are not exported; a tracked line with too few or non-numeric values is
//! left out and fails the collector after the rest is exported.
//!
//! On by default; no flags. Without XFS (no `fs/xfs` in sysfs) it reports
//! nothing; the mounted filesystems are listed again once a minute.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::collector::{
    sync_collector, CollectError, CollectResult, ScrapeContext, SyncCollector,
};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{dir_entries, Refreshed};
use crate::file_cache::{is_missing, FileCache};
use crate::malformed::Malformed;
use crate::paths::Paths;

/// One exported counter: the stats line it is on, its position among that
/// line's values, the metric name and its help text.
pub struct Counter {
    /// The first word of the line.
    pub line: &'static str,
    /// Index of the value after the name.
    pub index: usize,
    /// Metric name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
}

const fn c(line: &'static str, index: usize, name: &'static str, help: &'static str) -> Counter {
    Counter {
        line,
        index,
        name,
        help,
    }
}

/// Every exported counter (the field order of the kernel's
/// `fs/xfs/xfs_stats.h`).
#[rustfmt::skip]
pub const COUNTERS: &[Counter] = &[
    c("extent_alloc", 0, "node_xfs_extent_allocation_extents_allocated_total", "Number of extents allocated for a filesystem."),
    c("extent_alloc", 1, "node_xfs_extent_allocation_blocks_allocated_total", "Number of blocks allocated for a filesystem."),
    c("extent_alloc", 2, "node_xfs_extent_allocation_extents_freed_total", "Number of extents freed for a filesystem."),
    c("extent_alloc", 3, "node_xfs_extent_allocation_blocks_freed_total", "Number of blocks freed for a filesystem."),
    c("abt", 0, "node_xfs_allocation_btree_lookups_total", "Number of allocation B-tree lookups for a filesystem."),
    c("abt", 1, "node_xfs_allocation_btree_compares_total", "Number of allocation B-tree compares for a filesystem."),
    c("abt", 2, "node_xfs_allocation_btree_records_inserted_total", "Number of allocation B-tree records inserted for a filesystem."),
    c("abt", 3, "node_xfs_allocation_btree_records_deleted_total", "Number of allocation B-tree records deleted for a filesystem."),
    c("blk_map", 0, "node_xfs_block_mapping_reads_total", "Number of block map for read operations for a filesystem."),
    c("blk_map", 1, "node_xfs_block_mapping_writes_total", "Number of block map for write operations for a filesystem."),
    c("blk_map", 2, "node_xfs_block_mapping_unmaps_total", "Number of block unmaps (deletes) for a filesystem."),
    c("blk_map", 3, "node_xfs_block_mapping_extent_list_insertions_total", "Number of extent list insertions for a filesystem."),
    c("blk_map", 4, "node_xfs_block_mapping_extent_list_deletions_total", "Number of extent list deletions for a filesystem."),
    c("blk_map", 5, "node_xfs_block_mapping_extent_list_lookups_total", "Number of extent list lookups for a filesystem."),
    c("blk_map", 6, "node_xfs_block_mapping_extent_list_compares_total", "Number of extent list compares for a filesystem."),
    c("bmbt", 0, "node_xfs_block_map_btree_lookups_total", "Number of block map B-tree lookups for a filesystem."),
    c("bmbt", 1, "node_xfs_block_map_btree_compares_total", "Number of block map B-tree compares for a filesystem."),
    c("bmbt", 2, "node_xfs_block_map_btree_records_inserted_total", "Number of block map B-tree records inserted for a filesystem."),
    c("bmbt", 3, "node_xfs_block_map_btree_records_deleted_total", "Number of block map B-tree records deleted for a filesystem."),
    c("dir", 0, "node_xfs_directory_operation_lookup_total", "Number of file name directory lookups which miss the operating systems directory name lookup cache."),
    c("dir", 1, "node_xfs_directory_operation_create_total", "Number of times a new directory entry was created for a filesystem."),
    c("dir", 2, "node_xfs_directory_operation_remove_total", "Number of times an existing directory entry was created for a filesystem."),
    c("dir", 3, "node_xfs_directory_operation_getdents_total", "Number of times the directory getdents operation was performed for a filesystem."),
    c("ig", 0, "node_xfs_inode_operation_attempts_total", "Number of times the OS looked for an XFS inode in the inode cache."),
    c("ig", 1, "node_xfs_inode_operation_found_total", "Number of times the OS looked for and found an XFS inode in the inode cache."),
    c("ig", 2, "node_xfs_inode_operation_recycled_total", "Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled."),
    c("ig", 3, "node_xfs_inode_operation_missed_total", "Number of times the OS looked for an XFS inode in the cache, but did not find it."),
    c("ig", 4, "node_xfs_inode_operation_duplicates_total", "Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process."),
    c("ig", 5, "node_xfs_inode_operation_reclaims_total", "Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose."),
    c("ig", 6, "node_xfs_inode_operation_attribute_changes_total", "Number of times the OS explicitly changed the attributes of an XFS inode."),
    // The kernel writes the write count first.
    c("rw", 0, "node_xfs_write_calls_total", "Number of write(2) system calls made to files in a filesystem."),
    c("rw", 1, "node_xfs_read_calls_total", "Number of read(2) system calls made to files in a filesystem."),
    c("vnodes", 0, "node_xfs_vnode_active_total", "Number of vnodes not on free lists for a filesystem."),
    c("vnodes", 1, "node_xfs_vnode_allocate_total", "Number of times vn_alloc called for a filesystem."),
    c("vnodes", 2, "node_xfs_vnode_get_total", "Number of times vn_get called for a filesystem."),
    c("vnodes", 3, "node_xfs_vnode_hold_total", "Number of times vn_hold called for a filesystem."),
    c("vnodes", 4, "node_xfs_vnode_release_total", "Number of times vn_rele called for a filesystem."),
    c("vnodes", 5, "node_xfs_vnode_reclaim_total", "Number of times vn_reclaim called for a filesystem."),
    c("vnodes", 6, "node_xfs_vnode_remove_total", "Number of times vn_remove called for a filesystem."),
];

/// How many values a tracked line must have: one past its highest index.
fn needed(line: &str) -> Option<usize> {
    COUNTERS
        .iter()
        .filter(|c| c.line == line)
        .map(|c| c.index + 1)
        .max()
}

/// Parses an XFS `stats` file into one value per entry of [`COUNTERS`]
/// (`None` where its line is absent or malformed), noting malformed
/// tracked lines.
pub fn parse_xfs_stats(text: &str) -> (Vec<Option<f64>>, Malformed) {
    let mut values = vec![None; COUNTERS.len()];
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let Some(key) = fields.next() else { continue };
        let Some(need) = needed(key) else { continue };
        let parsed: Option<Vec<u64>> = fields.map(|f| f.parse().ok()).collect();
        let Some(parsed) = parsed.filter(|p| p.len() >= need) else {
            bad.line(
                i + 1,
                line,
                format!("expected at least {need} unsigned integers"),
            );
            continue;
        };
        for (slot, counter) in values.iter_mut().zip(COUNTERS) {
            if counter.line == key {
                *slot = Some(parsed[counter.index] as f64);
            }
        }
    }
    (values, bad)
}

/// The xfs collector.
pub struct Xfs {
    dir: PathBuf,
    cache: FileCache,
    /// `(device, stats file)`, sorted by device.
    devices: Refreshed<Vec<(String, PathBuf)>>,
}

impl Xfs {
    /// Reads under the given sysfs.
    pub fn new(paths: &Paths) -> Self {
        Xfs {
            dir: paths.sys("fs/xfs"),
            cache: FileCache::new(),
            devices: Refreshed::default(),
        }
    }
}

fn list_devices(dir: &Path) -> Result<Vec<(String, PathBuf)>, CollectError> {
    let entries = dir_entries(dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
    Ok(entries
        .unwrap_or_default()
        .into_iter()
        .map(|(name, _)| {
            let stats = dir.join(&name).join("stats/stats");
            (name, stats)
        })
        .filter(|(_, stats)| stats.is_file())
        .collect())
}

impl SyncCollector for Xfs {
    fn name(&self) -> &'static str {
        "xfs"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let devices = self.devices.get(|| list_devices(&self.dir))?;
        if devices.is_empty() {
            return Ok(());
        }
        let mut families: Vec<MetricFamily> = COUNTERS
            .iter()
            .map(|c| MetricFamily::counter(c.name, c.help))
            .collect();
        let mut scope = self.cache.scope();
        let mut result = Ok(());
        for (device, path) in devices.iter() {
            let text = match scope.read(path) {
                Ok(b) => String::from_utf8_lossy(b).into_owned(),
                Err(e) if is_missing(&e) => {
                    // Unmounted since the listing.
                    self.devices.invalidate();
                    continue;
                }
                Err(e) => {
                    result = Err(format!("reading {}: {e}", path.display()).into());
                    continue;
                }
            };
            let (values, bad) = parse_xfs_stats(&text);
            for (family, value) in families.iter_mut().zip(values) {
                if let Some(v) = value {
                    family.add(&[("device", device)], v);
                }
            }
            if let Err(e) = bad.into_result(path) {
                result = Err(e);
            }
        }
        out.extend(families);
        result
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Xfs::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build, paths_under, scrape, try_scrape};

    const STATS: &str = "extent_alloc 2 900 1 8\n\
        abt 0 0 0 0\n\
        blk_map 70 30 2 2 1 95 0\n\
        bmbt 0 0 0 0\n\
        dir 4 3 1 60\n\
        trans 4 40 0\n\
        ig 6 2 0 4 0 0 3\n\
        rw 31 7\n\
        vnodes 5 0 0 0 2 2 2 0\n\
        xpc 3571712 3568056 0\n";

    #[test]
    fn every_counter_is_read() {
        let (values, bad) = parse_xfs_stats(STATS);
        assert!(bad.is_empty());
        assert!(values.iter().all(Option::is_some));
        let value = |name: &str| {
            let i = COUNTERS.iter().position(|c| c.name == name).unwrap();
            values[i].unwrap()
        };
        assert_eq!(value("node_xfs_write_calls_total"), 31.0);
        assert_eq!(value("node_xfs_read_calls_total"), 7.0);
        assert_eq!(
            value("node_xfs_inode_operation_attribute_changes_total"),
            3.0
        );
        assert_eq!(value("node_xfs_extent_allocation_blocks_freed_total"), 8.0);
        assert_eq!(value("node_xfs_vnode_remove_total"), 2.0);
    }

    #[test]
    fn short_lines_are_left_out() {
        let (values, bad) = parse_xfs_stats("rw 1\ndir 1 2 3 4\nig 1 x 3 4 5 6 7\n");
        assert_eq!(bad.count(), 2);
        assert_eq!(values.iter().filter(|v| v.is_some()).count(), 4);
    }

    #[test]
    fn reads_each_mounted_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_under(dir.path());
        assert!(scrape(build("xfs", &paths).as_ref()).is_empty());
        for dev in ["sda1", "dm-3"] {
            let stats = dir.path().join("fs/xfs").join(dev).join("stats");
            std::fs::create_dir_all(&stats).unwrap();
            std::fs::write(stats.join("stats"), STATS).unwrap();
        }
        let out = scrape(build("xfs", &paths).as_ref());
        assert_eq!(out.len(), COUNTERS.len());
        assert!(out.iter().all(|f| f.metrics.len() == 2));
        std::fs::write(dir.path().join("fs/xfs/sda1/stats/stats"), "rw x\n").unwrap();
        let (out, result) = try_scrape(build("xfs", &paths).as_ref());
        assert!(result.is_err());
        assert!(out.iter().all(|f| f.metrics.len() == 1));
    }
}

//! zoneinfo: per-zone memory statistics.
//!
//! Source: `<procfs>/zoneinfo`, one block per `Node <n>, zone <name>`. The
//! per-node counters the kernel prints under a node's first zone ("per-node
//! stats") count for that zone, as in node_exporter. Metrics: gauges
//! `node_zoneinfo_<field>_pages` and counters `node_zoneinfo_<field>_total`
//! for the fields in [`FIELDS`], and gauges `node_zoneinfo_protection_<i>`
//! for the `protection:` array, all labelled `node` and `zone`; a field a
//! zone does not list (or whose value is not an integer) is not exported for
//! that zone. Off by default; no flags. Without the file it reports nothing.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{parse_int_auto, read_optional, FileCache};

/// `(kernel field, metric name, help, is counter)`.
pub const FIELDS: &[(&str, &str, &str, bool)] = &[
    (
        "nr_free_pages",
        "node_zoneinfo_nr_free_pages",
        "Total number of free pages in the zone",
        false,
    ),
    (
        "min",
        "node_zoneinfo_min_pages",
        "Zone watermark pages_min",
        false,
    ),
    (
        "low",
        "node_zoneinfo_low_pages",
        "Zone watermark pages_low",
        false,
    ),
    (
        "high",
        "node_zoneinfo_high_pages",
        "Zone watermark pages_high",
        false,
    ),
    (
        "scanned",
        "node_zoneinfo_scanned_pages",
        "Pages scanned since last reclaim",
        false,
    ),
    (
        "spanned",
        "node_zoneinfo_spanned_pages",
        "Total pages spanned by the zone, including holes",
        false,
    ),
    (
        "present",
        "node_zoneinfo_present_pages",
        "Physical pages existing within the zone",
        false,
    ),
    (
        "managed",
        "node_zoneinfo_managed_pages",
        "Present pages managed by the buddy system",
        false,
    ),
    (
        "nr_active_anon",
        "node_zoneinfo_nr_active_anon_pages",
        "Number of anonymous pages recently more used",
        false,
    ),
    (
        "nr_inactive_anon",
        "node_zoneinfo_nr_inactive_anon_pages",
        "Number of anonymous pages recently less used",
        false,
    ),
    (
        "nr_isolated_anon",
        "node_zoneinfo_nr_isolated_anon_pages",
        "Temporary isolated pages from anon lru",
        false,
    ),
    (
        "nr_anon_pages",
        "node_zoneinfo_nr_anon_pages",
        "Number of anonymous pages currently used by the system",
        false,
    ),
    (
        "nr_anon_transparent_hugepages",
        "node_zoneinfo_nr_anon_transparent_hugepages",
        "Number of anonymous transparent huge pages currently used by the system",
        false,
    ),
    (
        "nr_active_file",
        "node_zoneinfo_nr_active_file_pages",
        "Number of active pages with file-backing",
        false,
    ),
    (
        "nr_inactive_file",
        "node_zoneinfo_nr_inactive_file_pages",
        "Number of inactive pages with file-backing",
        false,
    ),
    (
        "nr_isolated_file",
        "node_zoneinfo_nr_isolated_file_pages",
        "Temporary isolated pages from file lru",
        false,
    ),
    (
        "nr_file_pages",
        "node_zoneinfo_nr_file_pages",
        "Number of file pages",
        false,
    ),
    (
        "nr_slab_reclaimable",
        "node_zoneinfo_nr_slab_reclaimable_pages",
        "Number of reclaimable slab pages",
        false,
    ),
    (
        "nr_slab_unreclaimable",
        "node_zoneinfo_nr_slab_unreclaimable_pages",
        "Number of unreclaimable slab pages",
        false,
    ),
    (
        "nr_mlock_stack",
        "node_zoneinfo_nr_mlock_stack_pages",
        "mlock()ed pages found and moved off LRU",
        false,
    ),
    (
        "nr_kernel_stack",
        "node_zoneinfo_nr_kernel_stacks",
        "Number of kernel stacks",
        false,
    ),
    (
        "nr_mapped",
        "node_zoneinfo_nr_mapped_pages",
        "Number of mapped pages",
        false,
    ),
    (
        "nr_dirty",
        "node_zoneinfo_nr_dirty_pages",
        "Number of dirty pages",
        false,
    ),
    (
        "nr_writeback",
        "node_zoneinfo_nr_writeback_pages",
        "Number of writeback pages",
        false,
    ),
    (
        "nr_unevictable",
        "node_zoneinfo_nr_unevictable_pages",
        "Number of unevictable pages",
        false,
    ),
    (
        "nr_shmem",
        "node_zoneinfo_nr_shmem_pages",
        "Number of shmem pages (included tmpfs/GEM pages)",
        false,
    ),
    (
        "nr_dirtied",
        "node_zoneinfo_nr_dirtied_total",
        "Page dirtyings since bootup",
        true,
    ),
    (
        "nr_written",
        "node_zoneinfo_nr_written_total",
        "Page writings since bootup",
        true,
    ),
    (
        "numa_hit",
        "node_zoneinfo_numa_hit_total",
        "Allocated in intended node",
        true,
    ),
    (
        "numa_miss",
        "node_zoneinfo_numa_miss_total",
        "Allocated in non intended node",
        true,
    ),
    (
        "numa_foreign",
        "node_zoneinfo_numa_foreign_total",
        "Was intended here, hit elsewhere",
        true,
    ),
    (
        "numa_interleave",
        "node_zoneinfo_numa_interleave_total",
        "Interleaver preferred this zone",
        true,
    ),
    (
        "numa_local",
        "node_zoneinfo_numa_local_total",
        "Allocation from local node",
        true,
    ),
    (
        "numa_other",
        "node_zoneinfo_numa_other_total",
        "Allocation from other node",
        true,
    ),
];

/// One zone: its node and name, the value of each of [`FIELDS`] it
/// lists, and its protection array.
#[derive(Debug, Default, PartialEq)]
pub struct Zone<'a> {
    /// NUMA node number.
    pub node: &'a str,
    /// Zone name (`DMA`, `Normal` …).
    pub zone: &'a str,
    /// Values by index into [`FIELDS`].
    pub values: Vec<(usize, i64)>,
    /// The `protection:` array.
    pub protection: Vec<i64>,
}

fn field_index(key: &str) -> Option<usize> {
    FIELDS.iter().position(|f| f.0 == key)
}

/// `Node 0, zone   DMA` → `("0", "DMA")`.
fn zone_header(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("Node ")?;
    let (node, zone) = rest.split_once(',')?;
    let zone = zone.trim_start().strip_prefix("zone")?.trim();
    let node = node.trim();
    if node.is_empty() || !node.bytes().all(|b| b.is_ascii_digit()) || zone.is_empty() {
        return None;
    }
    Some((node, zone))
}

/// `protection: (0, 2039, 31932)` → the numbers; `None` when one is not
/// an integer (the array is then left out, as node_exporter does).
fn parse_protection(rest: &str) -> Option<Vec<i64>> {
    let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner.split(',').map(|v| parse_int_auto(v.trim())).collect()
}

/// Parses `/proc/zoneinfo` into its zones (lines before the first zone
/// header are ignored; a value that is not an integer is left out).
pub fn parse_zoneinfo(text: &str) -> Vec<Zone<'_>> {
    let mut zones: Vec<Zone<'_>> = Vec::new();
    for line in text.lines() {
        if let Some((node, zone)) = zone_header(line) {
            zones.push(Zone {
                node,
                zone,
                ..Zone::default()
            });
            continue;
        }
        let Some(current) = zones.last_mut() else {
            continue;
        };
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("protection:") {
            if let Some(p) = parse_protection(rest) {
                current.protection = p;
            }
            continue;
        }
        let mut cols = trimmed.split_whitespace();
        let (Some(key), Some(value)) = (cols.next(), cols.next()) else {
            continue;
        };
        let (Some(i), Some(v)) = (field_index(key), parse_int_auto(value)) else {
            continue;
        };
        match current.values.iter_mut().find(|(j, _)| *j == i) {
            Some(slot) => slot.1 = v,
            None => current.values.push((i, v)),
        }
    }
    zones
}

struct Zoneinfo {
    path: PathBuf,
    cache: FileCache,
}

impl SyncCollector for Zoneinfo {
    fn name(&self) -> &'static str {
        "zoneinfo"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "zoneinfo")? {
            return Ok(());
        }
        let zones = parse_zoneinfo(&buf);
        let mut families: Vec<Option<MetricFamily>> = (0..FIELDS.len()).map(|_| None).collect();
        let mut protection: Vec<MetricFamily> = Vec::new();
        for z in &zones {
            let labels = [("node", z.node), ("zone", z.zone)];
            for &(i, v) in &z.values {
                let (_, name, help, counter) = FIELDS[i];
                families[i]
                    .get_or_insert_with(|| {
                        if counter {
                            MetricFamily::counter(name, help)
                        } else {
                            MetricFamily::gauge(name, help)
                        }
                    })
                    .add(&labels, v as f64);
            }
            for (i, &v) in z.protection.iter().enumerate() {
                if protection.len() <= i {
                    protection.push(MetricFamily::gauge(
                        Cow::Owned(format!("node_zoneinfo_protection_{i}")),
                        Cow::Owned(format!("Protection array {i}. field")),
                    ));
                }
                protection[i].add(&labels, v as f64);
            }
        }
        out.extend(families.into_iter().flatten());
        out.extend(protection);
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Zoneinfo {
        path: ctx.paths.proc("zoneinfo"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Node 0, zone      DMA
  per-node stats
      nr_inactive_anon 7
      nr_dirtied   0x10
  pages free     5
        min      1
        protection: (0, 20, 30)
      nr_free_pages 5
      numa_hit     9
  pagesets
    cpu: 0
              high:  4
Node 1, zone   Normal
  pages free     3
        min      x
        protection: (0, a)
      nr_free_pages 3
";

    #[test]
    fn zones_fields_and_protection() {
        let z = parse_zoneinfo(TEXT);
        assert_eq!(z.len(), 2);
        assert_eq!((z[0].node, z[0].zone), ("0", "DMA"));
        let get = |z: &Zone<'_>, k: &str| {
            let i = field_index(k).unwrap();
            z.values.iter().find(|(j, _)| *j == i).map(|v| v.1)
        };
        assert_eq!(get(&z[0], "nr_inactive_anon"), Some(7));
        assert_eq!(get(&z[0], "nr_dirtied"), Some(16));
        assert_eq!(get(&z[0], "min"), Some(1));
        assert_eq!(
            get(&z[0], "high"),
            None,
            "pageset `high:` is not the watermark"
        );
        assert_eq!(z[0].protection, [0, 20, 30]);
        assert_eq!((z[1].node, z[1].zone), ("1", "Normal"));
        assert_eq!(get(&z[1], "min"), None);
        assert_eq!(get(&z[1], "nr_free_pages"), Some(3));
        assert!(z[1].protection.is_empty());
    }

    #[test]
    fn headers() {
        assert_eq!(
            zone_header("Node 12, zone  Movable"),
            Some(("12", "Movable"))
        );
        assert_eq!(zone_header("Node x, zone DMA"), None);
        assert_eq!(zone_header("Node 0, zone "), None);
        assert!(parse_zoneinfo("garbage\nmin 1\n").is_empty());
    }
}

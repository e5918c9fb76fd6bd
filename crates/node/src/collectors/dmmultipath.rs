//! dmmultipath: device-mapper multipath devices and the health of their
//! paths.
//!
//! Source: `<sysfs>/block/dm-*/` whose `dm/uuid` starts with `mpath-`
//! (`dm/name`, `dm/suspended`, `size` in 512-byte sectors, `slaves/`), and
//! each path's `<sysfs>/block/<path>/device/state` (`running` for SCSI,
//! `live` for NVMe, else `offline`, `blocked`, …). Metrics (gauges),
//! labelled `device` (the map name) and `sysfs_name` (`dm-5`):
//! `node_dmmultipath_device_info{uuid}`, `node_dmmultipath_device_active`
//! (0 while suspended), `node_dmmultipath_device_size_bytes`,
//! `node_dmmultipath_device_paths`, `node_dmmultipath_device_paths_active`,
//! `node_dmmultipath_device_paths_failed`; and
//! `node_dmmultipath_path_state{device,path,state}` (1, the state as the
//! kernel writes it, `unknown` when the path has none).
//! Off by default; no flags. Other device-mapper devices (LVM, crypt) are
//! skipped; a multipath device whose attributes do not parse is left out
//! and fails the collector after the others are exported.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{dir_entries, AbsentSource};
use crate::file_cache::{CacheScope, FileCache};

/// True for a path state that carries I/O: a running SCSI device or a
/// live NVMe controller.
pub fn is_active_state(state: &str) -> bool {
    matches!(state, "running" | "live")
}

/// True for the uuid of a multipath map (`mpath-3600508b…`).
pub fn is_multipath_uuid(uuid: &str) -> bool {
    uuid.starts_with("mpath-")
}

/// The dmmultipath collector.
pub struct DmMultipath {
    block: PathBuf,
    absent: AbsentSource,
    cache: FileCache,
}

struct Families {
    info: MetricFamily,
    active: MetricFamily,
    size: MetricFamily,
    paths: MetricFamily,
    paths_active: MetricFamily,
    paths_failed: MetricFamily,
    path_state: MetricFamily,
}

impl DmMultipath {
    fn device(
        &self,
        scope: &mut CacheScope<'_>,
        sysfs_name: &str,
        f: &mut Families,
    ) -> Result<(), String> {
        let dir = self.block.join(sysfs_name);
        let Some(uuid) = scope.attr_string(&dir.join("dm/uuid")) else {
            return Ok(());
        };
        if !is_multipath_uuid(&uuid) {
            return Ok(());
        }
        let name = scope
            .attr_string(&dir.join("dm/name"))
            .unwrap_or_else(|| sysfs_name.to_string());
        let suspended_path = dir.join("dm/suspended");
        let suspended = scope
            .attr_i64(&suspended_path)
            .ok_or_else(|| format!("{}: missing or not a number", suspended_path.display()))?;
        let size_path = dir.join("size");
        let sectors = scope
            .attr_i64(&size_path)
            .ok_or_else(|| format!("{}: missing or not a number", size_path.display()))?;
        let slaves = dir.join("slaves");
        let paths = dir_entries(&slaves)
            .map_err(|e| format!("listing {}: {e}", slaves.display()))?
            .unwrap_or_default();
        let labels = [("device", name.as_str()), ("sysfs_name", sysfs_name)];
        let mut active = 0;
        for (path, _) in &paths {
            let state = scope
                .attr_string(&self.block.join(path).join("device/state"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".to_string());
            if is_active_state(&state) {
                active += 1;
            }
            f.path_state
                .add(&[("device", &name), ("path", path), ("state", &state)], 1.0);
        }
        f.info.add(
            &[
                ("device", &name),
                ("sysfs_name", sysfs_name),
                ("uuid", &uuid),
            ],
            1.0,
        );
        f.active
            .add(&labels, if suspended == 0 { 1.0 } else { 0.0 });
        f.size.add(&labels, sectors as f64 * 512.0);
        f.paths.add(&labels, paths.len() as f64);
        f.paths_active.add(&labels, active as f64);
        f.paths_failed.add(&labels, (paths.len() - active) as f64);
        Ok(())
    }
}

impl SyncCollector for DmMultipath {
    fn name(&self) -> &'static str {
        "dmmultipath"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let Some(entries) = self.absent.entries(&self.block)? else {
            tracing::debug!(path = %self.block.display(), "no block devices");
            return Ok(());
        };
        let g = MetricFamily::gauge;
        let mut f = Families {
            info: g(
                "node_dmmultipath_device_info",
                "Non-numeric information about a DM-multipath device.",
            ),
            active: g(
                "node_dmmultipath_device_active",
                "Whether the multipath device-mapper device is active (1) or suspended (0).",
            ),
            size: g(
                "node_dmmultipath_device_size_bytes",
                "Size of the multipath device in bytes, read from /sys/block/<dm>/size.",
            ),
            paths: g(
                "node_dmmultipath_device_paths",
                "Number of paths for a multipath device.",
            ),
            paths_active: g(
                "node_dmmultipath_device_paths_active",
                "Number of paths in active state (SCSI running or NVMe live) for a multipath device.",
            ),
            paths_failed: g(
                "node_dmmultipath_device_paths_failed",
                "Number of paths not in active state for a multipath device.",
            ),
            path_state: g(
                "node_dmmultipath_path_state",
                "Reports the underlying device state for a multipath path, as read from /sys/block/<dev>/device/state.",
            ),
        };
        let mut scope = self.cache.scope();
        let mut result = Ok(());
        for (name, _) in entries.iter().filter(|(n, _)| n.starts_with("dm-")) {
            if let Err(e) = self.device(&mut scope, name, &mut f) {
                result = Err(e.into());
            }
        }
        out.extend([
            f.info,
            f.active,
            f.size,
            f.paths,
            f.paths_active,
            f.paths_failed,
            f.path_state,
        ]);
        result
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(DmMultipath {
        block: ctx.paths.sys("block"),
        absent: AbsentSource::default(),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build, paths_under, scrape, single, try_scrape, write};

    #[test]
    fn states() {
        assert!(is_active_state("running"));
        assert!(is_active_state("live"));
        assert!(!is_active_state("offline"));
        assert!(is_multipath_uuid("mpath-360014"));
        assert!(!is_multipath_uuid("LVM-abc"));
    }

    #[test]
    fn counts_paths_and_skips_other_dm_devices() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "block/dm-0/dm/uuid", "LVM-xyz\n");
        write(r, "block/dm-0/dm/name", "vg-root\n");
        write(r, "block/dm-1/dm/uuid", "mpath-36001\n");
        write(r, "block/dm-1/dm/name", "mpatha\n");
        write(r, "block/dm-1/dm/suspended", "1\n");
        write(r, "block/dm-1/size", "2048\n");
        std::fs::create_dir_all(r.join("block/dm-1/slaves")).unwrap();
        for (path, state) in [
            ("sdb", Some("running")),
            ("nvme1n1", Some("live")),
            ("sdc", Some("blocked")),
            ("sdd", None),
        ] {
            std::fs::create_dir_all(r.join("block/dm-1/slaves").join(path)).unwrap();
            if let Some(s) = state {
                write(r, &format!("block/{path}/device/state"), &format!("{s}\n"));
            }
        }
        let paths = paths_under(r);
        let out = scrape(&*build("dmmultipath", &paths));
        let dev = [("device", "mpatha")];
        assert_eq!(
            single(&out, "node_dmmultipath_device_paths", &dev),
            Some(4.0)
        );
        assert_eq!(
            single(&out, "node_dmmultipath_device_paths_active", &dev),
            Some(2.0)
        );
        assert_eq!(
            single(&out, "node_dmmultipath_device_paths_failed", &dev),
            Some(2.0)
        );
        assert_eq!(
            single(&out, "node_dmmultipath_device_active", &dev),
            Some(0.0)
        );
        assert_eq!(
            single(&out, "node_dmmultipath_device_size_bytes", &dev),
            Some(1_048_576.0)
        );
        assert_eq!(
            single(
                &out,
                "node_dmmultipath_path_state",
                &[("path", "sdd"), ("state", "unknown")]
            ),
            Some(1.0)
        );
        assert!(single(
            &out,
            "node_dmmultipath_device_info",
            &[("device", "vg-root")]
        )
        .is_none());

        write(r, "block/dm-1/size", "big\n");
        let (_, result) = try_scrape(&*build("dmmultipath", &paths));
        assert!(result.unwrap_err().to_string().contains("size"));
    }
}

//! nvme: NVMe controllers and namespaces.
//!
//! Source: `<sysfs>/class/nvme/<ctrl>/{serial,model,state,firmware_rev,cntlid}`
//! and the namespaces below it (`nvme0n1/{size,nuse,ana_state,queue/logical_block_size}`).
//! Metrics (gauges): `node_nvme_info{device,firmware_revision,model,serial,state,cntlid}`,
//! `node_nvme_namespace_info{device,nsid,ana_state}`,
//! `node_nvme_namespace_{capacity,size,used,logical_block_size}_bytes{device,nsid}`.
//! On by default; no flags. Without NVMe devices it reports nothing.
//! The attributes are read on the collector's blocking lane: reading a
//! namespace's `nuse` sends an Identify command to the controller, which a
//! failing controller answers only after the admin timeout (60 s).

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::blocking::{blocking_collector, BlockingCollector};
use oxmon_core::collector::{CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{dir_entries, AbsentSource};
use crate::file_cache::FileCache;
use crate::paths::Paths;

/// The namespace id of a namespace directory name (`nvme0n1` → `1`,
/// `nvme0c0n2` → `2`), or `None` for other entries.
pub fn namespace_id(controller: &str, entry: &str) -> Option<String> {
    let rest = entry.strip_prefix("nvme")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    if digits == 0 {
        return None;
    }
    let mut rest = &rest[digits..];
    if let Some(c) = rest.strip_prefix('c') {
        let d = c.find(|ch: char| !ch.is_ascii_digit())?;
        if d == 0 {
            return None;
        }
        rest = &c[d..];
    }
    let id = rest.strip_prefix('n')?;
    let _ = controller;
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// The nvme collector.
pub struct Nvme {
    class: PathBuf,
    cache: FileCache,
    /// No NVMe class without NVMe drives: looked for once a minute.
    absent: AbsentSource,
}

impl Nvme {
    /// Reads under the given sysfs.
    pub fn new(paths: &Paths) -> Self {
        Nvme {
            class: paths.sys("class/nvme"),
            cache: FileCache::remembering_missing(),
            absent: AbsentSource::default(),
        }
    }
}

impl BlockingCollector for Nvme {
    type Found = Vec<(String, std::fs::FileType)>;

    fn name(&self) -> &'static str {
        "nvme"
    }

    fn check(&self, _: &ScrapeContext) -> Result<Option<Self::Found>, CollectError> {
        match self.absent.entries(&self.class)? {
            Some(devices) if !devices.is_empty() => Ok(Some(devices)),
            _ => {
                tracing::debug!(path = %self.class.display(), "nvme statistics not found");
                Ok(None)
            }
        }
    }

    fn collect(
        &self,
        _: &ScrapeContext,
        devices: Self::Found,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut info = MetricFamily::gauge(
            "node_nvme_info",
            "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
        );
        let mut ns_info = MetricFamily::gauge(
            "node_nvme_namespace_info",
            "Information about NVMe namespaces. Value is always 1",
        );
        let mut capacity = MetricFamily::gauge(
            "node_nvme_namespace_capacity_bytes",
            "Capacity of the NVMe namespace in bytes. Computed as namespace_size * namespace_logical_block_size",
        );
        let mut size = MetricFamily::gauge(
            "node_nvme_namespace_size_bytes",
            "Size of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/size",
        );
        let mut used = MetricFamily::gauge(
            "node_nvme_namespace_used_bytes",
            "Used space of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/nuse",
        );
        let mut lbs_fam = MetricFamily::gauge(
            "node_nvme_namespace_logical_block_size_bytes",
            "Logical block size of the NVMe namespace in bytes. Usually 4Kb. Available in /sys/class/nvme/<device>/<namespace>/queue/logical_block_size",
        );
        for (name, ft) in devices {
            if ft.is_file() {
                continue;
            }
            let dir = self.class.join(&name);
            let mut attr = |f: &str| scope.attr_string(&dir.join(f)).unwrap_or_default();
            let (serial, model, state, fw, cntlid) = (
                attr("serial"),
                attr("model"),
                attr("state"),
                attr("firmware_rev"),
                attr("cntlid"),
            );
            info.add(
                &[
                    ("device", &name),
                    ("firmware_revision", &fw),
                    ("model", &model),
                    ("serial", &serial),
                    ("state", &state),
                    ("cntlid", &cntlid),
                ],
                1.0,
            );
            let Ok(Some(entries)) = dir_entries(&dir) else {
                continue;
            };
            for (entry, _) in entries {
                let Some(nsid) = namespace_id(&name, &entry) else {
                    continue;
                };
                let ns = dir.join(&entry);
                let Some(lbs) = scope.attr_f64(&ns.join("queue/logical_block_size")) else {
                    continue;
                };
                let blocks = scope.attr_f64(&ns.join("size"));
                let nuse = scope.attr_f64(&ns.join("nuse"));
                let ana = scope
                    .attr_string(&ns.join("ana_state"))
                    .unwrap_or_else(|| "unknown".to_string());
                let labels = [("device", name.as_str()), ("nsid", nsid.as_str())];
                ns_info.add(
                    &[("device", &name), ("nsid", &nsid), ("ana_state", &ana)],
                    1.0,
                );
                if let Some(b) = blocks {
                    capacity.add(&labels, b * lbs);
                    size.add(&labels, b * lbs);
                }
                if let Some(u) = nuse {
                    used.add(&labels, u * lbs);
                }
                lbs_fam.add(&labels, lbs);
            }
        }
        out.extend([info, ns_info, capacity, size, used, lbs_fam]);
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(blocking_collector(Nvme::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names() {
        assert_eq!(namespace_id("nvme0", "nvme0n1").as_deref(), Some("1"));
        assert_eq!(namespace_id("nvme0", "nvme0c0n12").as_deref(), Some("12"));
        assert_eq!(namespace_id("nvme0", "nvme0"), None);
        assert_eq!(namespace_id("nvme0", "model"), None);
        assert_eq!(namespace_id("nvme0", "nvme0n"), None);
        assert_eq!(namespace_id("nvme0", "nvmen1"), None);
    }
}

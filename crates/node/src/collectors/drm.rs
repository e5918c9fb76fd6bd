//! drm: AMD GPU card information and memory use.
//!
//! Source: `<sysfs>/class/drm/card<N>/device/` of cards whose
//! `device/uevent` names `DRIVER=amdgpu` (other drivers are skipped):
//! `gpu_busy_percent`, `mem_info_{gtt,vis_vram,vram}_{total,used}`,
//! `mem_info_vram_vendor`, `power_dpm_force_performance_level`,
//! `unique_id`, and the PCI path the `device` link points to. Metrics:
//! `node_drm_card_info{card,memory_vendor,power_performance_level,unique_id,vendor="amd"}`
//! (with `chip`, built from the PCI bridge and device names, when the link
//! resolves), and gauges `node_drm_gpu_busy_percent`,
//! `node_drm_memory_{gtt,vis_vram,vram}_{size,used}_bytes` labelled
//! `card` (0 for an attribute the card lacks, as node_exporter reports it).
//! A numeric attribute that is not a number fails the collector. Off by
//! default; no flags. The card list is re-read once a minute; without DRM
//! cards it reports nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::hwmon::clean_name;
use crate::collectors::Ctx;
use crate::dir_listing::{numbered_entries, Refreshed};
use crate::file_cache::{CacheScope, FileCache};

/// `(attribute, metric name, help)` of the numeric attributes.
const NUMERIC: [(&str, &str, &str); 7] = [
    (
        "gpu_busy_percent",
        "node_drm_gpu_busy_percent",
        "How busy the GPU is as a percentage.",
    ),
    (
        "mem_info_gtt_total",
        "node_drm_memory_gtt_size_bytes",
        "The size of the graphics translation table (GTT) block in bytes.",
    ),
    (
        "mem_info_gtt_used",
        "node_drm_memory_gtt_used_bytes",
        "The used amount of the graphics translation table (GTT) block in bytes.",
    ),
    (
        "mem_info_vis_vram_total",
        "node_drm_memory_vis_vram_size_bytes",
        "The size of visible VRAM in bytes.",
    ),
    (
        "mem_info_vis_vram_used",
        "node_drm_memory_vis_vram_used_bytes",
        "The used amount of visible VRAM in bytes.",
    ),
    (
        "mem_info_vram_total",
        "node_drm_memory_vram_size_bytes",
        "The size of VRAM in bytes.",
    ),
    (
        "mem_info_vram_used",
        "node_drm_memory_vram_used_bytes",
        "The used amount of VRAM in bytes.",
    ),
];

/// The chip label from the resolved `device` link
/// (`…/0000:00:01.1/0000:01:00.0`): bridge and device names cleaned as
/// hwmon chip names are, joined by `_`; `None` without a device name.
pub fn chip_name(device: &Path) -> Option<String> {
    let name = clean_name(&device.file_name()?.to_string_lossy());
    let bridge = device
        .parent()
        .and_then(Path::file_name)
        .map(|b| clean_name(&b.to_string_lossy()))
        .unwrap_or_default();
    match (bridge.is_empty(), name.is_empty()) {
        (_, true) => None,
        (true, false) => Some(name),
        (false, false) => Some(format!("{bridge}_{name}")),
    }
}

struct Drm {
    class: PathBuf,
    cards: Refreshed<Vec<(u32, String)>>,
    cache: FileCache,
}

impl Drm {
    fn card(
        &self,
        scope: &mut CacheScope<'_>,
        card: &str,
        numeric: &mut [MetricFamily; 7],
        info: &mut MetricFamily,
    ) -> Result<(), String> {
        let device = self.class.join(card).join("device");
        let Some(uevent) = scope.attr_string(&device.join("uevent")) else {
            return Ok(());
        };
        if !uevent.lines().any(|l| l.trim() == "DRIVER=amdgpu") {
            return Ok(());
        }
        let text = |scope: &mut CacheScope<'_>, attr: &str| {
            scope.attr_string(&device.join(attr)).unwrap_or_default()
        };
        let vendor = text(scope, "mem_info_vram_vendor");
        let level = text(scope, "power_dpm_force_performance_level");
        let unique_id = text(scope, "unique_id");
        let chip = std::fs::canonicalize(&device)
            .ok()
            .and_then(|p| chip_name(&p));
        let mut labels = vec![
            ("card", card),
            ("memory_vendor", vendor.as_str()),
            ("power_performance_level", level.as_str()),
            ("unique_id", unique_id.as_str()),
            ("vendor", "amd"),
        ];
        if let Some(chip) = &chip {
            labels.push(("chip", chip));
        }
        info.add(&labels, 1.0);
        for ((attr, _, _), fam) in NUMERIC.iter().zip(numeric.iter_mut()) {
            let path = device.join(attr);
            let v = match scope.attr(&path) {
                Ok(b) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .ok_or_else(|| format!("{}: not an unsigned integer", path.display()))?
                    as f64,
                Err(_) => 0.0,
            };
            fam.add(&[("card", card)], v);
        }
        Ok(())
    }
}

impl SyncCollector for Drm {
    fn name(&self) -> &'static str {
        "drm"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let cards = self.cards.get(|| numbered_entries(&self.class, "card"))?;
        if cards.is_empty() {
            return Ok(());
        }
        let mut scope = self.cache.scope();
        let mut numeric = NUMERIC.map(|(_, name, help)| MetricFamily::gauge(name, help));
        let mut info = MetricFamily::gauge("node_drm_card_info", "Card information");
        let mut errors = Vec::new();
        for (_, card) in cards.iter() {
            if let Err(e) = self.card(&mut scope, card, &mut numeric, &mut info) {
                errors.push(e);
            }
        }
        out.push(info);
        out.extend(numeric);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; ").into())
        }
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Drm {
        class: ctx.paths.sys("class/drm"),
        cards: Refreshed::default(),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build, first_label, paths_under, scrape};
    use super::*;

    #[test]
    fn chip_names() {
        assert_eq!(
            chip_name(Path::new(
                "/sys/devices/pci0000:00/0000:00:01.1/0000:01:00.0"
            ))
            .as_deref(),
            Some("0000:00:01_1_0000:01:00_0")
        );
        assert_eq!(chip_name(Path::new("/")), None);
    }

    #[test]
    fn amdgpu_cards_only() {
        let dir = tempfile::tempdir().unwrap();
        let w = |rel: &str, v: &str| {
            let p = dir.path().join("class/drm").join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        };
        w("card0/device/uevent", "DRIVER=amdgpu\nPCI_ID=1002:687F\n");
        w("card0/device/mem_info_vram_total", "8573157376\n");
        w("card0/device/mem_info_vram_vendor", "samsung\n");
        w("card1/device/uevent", "DRIVER=i915\n");
        w("card0-DP-1/status", "connected\n");
        let out = scrape(build("drm", &paths_under(dir.path())).as_ref());
        let fam = |n: &str| out.iter().find(|f| f.name == n).unwrap();
        assert_eq!(fam("node_drm_card_info").metrics.len(), 1);
        assert_eq!(
            first_label(&out, "node_drm_card_info", "memory_vendor"),
            "samsung"
        );
        assert_eq!(
            fam("node_drm_memory_vram_size_bytes").metrics[0].value,
            oxmon_core::metrics::Value::Single(8573157376.0)
        );
        assert_eq!(
            fam("node_drm_gpu_busy_percent").metrics[0].value,
            oxmon_core::metrics::Value::Single(0.0)
        );
    }
}

//! edac: memory controller error counters.
//!
//! Source: `<sysfs>/devices/system/edac/mc/mc<N>/` (`ce_count`, `ue_count`,
//! `ce_noinfo_count`, `ue_noinfo_count`, `csrow<M>/{ce,ue}_count`,
//! `csrow<M>/ch<K>_{ce,ue}_count`, `csrow<M>/ch<K>_dimm_label`).
//! Metrics (counters): `node_edac_{correctable,uncorrectable}_errors_total{controller}`,
//! `node_edac_csrow_{correctable,uncorrectable}_errors_total{controller,csrow}`
//! (errors without row information have `csrow="unknown"`), and
//! `node_edac_channel_{correctable,uncorrectable}_errors_total{controller,csrow,channel,dimm_label}`.
//! On by default; no flags. Without EDAC it reports nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{dir_entries, AbsentSource};
use crate::file_cache::{CacheScope, FileCache};
use crate::paths::Paths;

/// node_exporter's form of a DIMM label: `#` removed, an underscore before
/// `csrow` and `channel`.
pub fn dimm_label(raw: &str) -> String {
    raw.trim()
        .replace('#', "")
        .replace("csrow", "_csrow")
        .replace("channel", "_channel")
}

/// The edac collector.
pub struct Edac {
    mc: PathBuf,
    cache: FileCache,
    /// No EDAC on most virtual machines: looked for once a minute.
    absent: AbsentSource,
}

impl Edac {
    /// Reads under the given sysfs.
    pub fn new(paths: &Paths) -> Self {
        Edac {
            mc: paths.sys("devices/system/edac/mc"),
            cache: FileCache::remembering_missing(),
            absent: AbsentSource::default(),
        }
    }
}

struct Families {
    ce: MetricFamily,
    ue: MetricFamily,
    row_ce: MetricFamily,
    row_ue: MetricFamily,
    ch_ce: MetricFamily,
    ch_ue: MetricFamily,
}

fn count(scope: &mut CacheScope<'_>, p: &Path) -> Result<f64, String> {
    scope
        .attr_f64(p)
        .ok_or_else(|| format!("{}: missing or not a number", p.display()))
}

fn numbered(dir: &Path, prefix: &str) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = dir_entries(dir)
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(n, _)| Some((n.strip_prefix(prefix)?.parse().ok()?, n)))
        .collect();
    v.sort_unstable();
    v
}

impl Edac {
    fn controller(
        &self,
        scope: &mut CacheScope<'_>,
        id: &str,
        dir: &Path,
        f: &mut Families,
    ) -> Result<(), String> {
        let ce = count(scope, &dir.join("ce_count"))?;
        let ue = count(scope, &dir.join("ue_count"))?;
        let ce_noinfo = count(scope, &dir.join("ce_noinfo_count"))?;
        let ue_noinfo = count(scope, &dir.join("ue_noinfo_count"))?;
        f.ce.add(&[("controller", id)], ce);
        f.ue.add(&[("controller", id)], ue);
        f.row_ce
            .add(&[("controller", id), ("csrow", "unknown")], ce_noinfo);
        f.row_ue
            .add(&[("controller", id), ("csrow", "unknown")], ue_noinfo);
        for (row, row_name) in numbered(dir, "csrow") {
            let row_dir = dir.join(&row_name);
            let row = row.to_string();
            let rce = count(scope, &row_dir.join("ce_count"))?;
            let rue = count(scope, &row_dir.join("ue_count"))?;
            f.row_ce.add(&[("controller", id), ("csrow", &row)], rce);
            f.row_ue.add(&[("controller", id), ("csrow", &row)], rue);
            let mut channels: Vec<u32> = dir_entries(&row_dir)
                .ok()
                .flatten()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(n, _)| {
                    n.strip_prefix("ch")?
                        .strip_suffix("_ce_count")?
                        .parse()
                        .ok()
                })
                .collect();
            channels.sort_unstable();
            for ch in channels {
                let chs = ch.to_string();
                let label = scope
                    .attr_string(&row_dir.join(format!("ch{ch}_dimm_label")))
                    .map(|l| dimm_label(&l))
                    .unwrap_or_else(|| "unknown".to_string());
                let labels = [
                    ("controller", id),
                    ("csrow", row.as_str()),
                    ("channel", chs.as_str()),
                    ("dimm_label", label.as_str()),
                ];
                let cce = count(scope, &row_dir.join(format!("ch{ch}_ce_count")))?;
                f.ch_ce.add(&labels, cce);
                // Some hardware has no per-channel uncorrectable count.
                if let Some(cue) = scope.attr_f64(&row_dir.join(format!("ch{ch}_ue_count"))) {
                    f.ch_ue.add(&labels, cue);
                }
            }
        }
        Ok(())
    }
}

impl SyncCollector for Edac {
    fn name(&self) -> &'static str {
        "edac"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        if self.absent.entries(&self.mc)?.is_none() {
            return Ok(());
        }
        let controllers = numbered(&self.mc, "mc");
        if controllers.is_empty() {
            tracing::debug!(path = %self.mc.display(), "no EDAC memory controllers");
            return Ok(());
        }
        let mut scope = self.cache.scope();
        let mut f = Families {
            ce: MetricFamily::counter(
                "node_edac_correctable_errors_total",
                "Total correctable memory errors.",
            ),
            ue: MetricFamily::counter(
                "node_edac_uncorrectable_errors_total",
                "Total uncorrectable memory errors.",
            ),
            row_ce: MetricFamily::counter(
                "node_edac_csrow_correctable_errors_total",
                "Total correctable memory errors for this csrow.",
            ),
            row_ue: MetricFamily::counter(
                "node_edac_csrow_uncorrectable_errors_total",
                "Total uncorrectable memory errors for this csrow.",
            ),
            ch_ce: MetricFamily::counter(
                "node_edac_channel_correctable_errors_total",
                "Total correctable memory errors for this channel.",
            ),
            ch_ue: MetricFamily::counter(
                "node_edac_channel_uncorrectable_errors_total",
                "Total uncorrectable memory errors for this channel.",
            ),
        };
        let mut result = Ok(());
        for (n, name) in controllers {
            let id = n.to_string();
            if let Err(e) = self.controller(&mut scope, &id, &self.mc.join(&name), &mut f) {
                result = Err(e.into());
            }
        }
        out.extend([f.ce, f.ue, f.row_ce, f.row_ue, f.ch_ce, f.ch_ue]);
        result
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Edac::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimm_labels() {
        assert_eq!(
            dimm_label("CPU#1_csrow0_channel2\n"),
            "CPU1__csrow0__channel2"
        );
        assert_eq!(dimm_label("mc1csrow2channel0"), "mc1_csrow2_channel0");
    }

    #[test]
    fn reads_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let mc = dir.path().join("devices/system/edac/mc/mc0");
        std::fs::create_dir_all(mc.join("csrow0")).unwrap();
        for (f, v) in [
            ("ce_count", "1"),
            ("ue_count", "2"),
            ("ce_noinfo_count", "3"),
            ("ue_noinfo_count", "4"),
            ("csrow0/ce_count", "5"),
            ("csrow0/ue_count", "6"),
            ("csrow0/ch0_ce_count", "7"),
            ("csrow0/ch0_dimm_label", "DIMM#A"),
            ("csrow0/ch1_ce_count", "8"),
            ("csrow0/ch1_ue_count", "9"),
        ] {
            std::fs::write(mc.join(f), v).unwrap();
        }
        let paths = Paths {
            procfs: dir.path().into(),
            sysfs: dir.path().into(),
            rootfs: dir.path().into(),
            udev_data: dir.path().into(),
        };
        let c = Edac::new(&paths);
        let mut out = Vec::new();
        let ctx = ScrapeContext::with_timeout(std::time::Duration::from_secs(1));
        c.collect(&ctx, &mut out).unwrap();
        let fam = |n: &str| out.iter().find(|f| f.name == n).unwrap();
        assert_eq!(
            fam("node_edac_csrow_correctable_errors_total")
                .metrics
                .len(),
            2
        );
        let ch = fam("node_edac_channel_correctable_errors_total");
        assert_eq!(ch.metrics.len(), 2);
        assert!(ch.metrics[0]
            .labels
            .iter()
            .any(|(k, v)| k == "dimm_label" && v == "DIMMA"));
        assert!(ch.metrics[1]
            .labels
            .iter()
            .any(|(k, v)| k == "dimm_label" && v == "unknown"));
        assert_eq!(
            fam("node_edac_channel_uncorrectable_errors_total")
                .metrics
                .len(),
            1
        );
        // A controller missing a counter is an error, not a panic.
        std::fs::remove_file(mc.join("ue_noinfo_count")).unwrap();
        let mut out = Vec::new();
        assert!(Edac::new(&paths).collect(&ctx, &mut out).is_err());
    }
}

//! thermal_zone: kernel thermal zones and cooling devices.
//!
//! Source: `<sysfs>/class/thermal/thermal_zone<N>/{type,temp}` and
//! `<sysfs>/class/thermal/cooling_device<N>/{type,cur_state,max_state}`.
//! Metrics (gauges): `node_thermal_zone_temp{zone,type}` (°C),
//! `node_cooling_device_cur_state{name,type}`,
//! `node_cooling_device_max_state{name,type}`. On by default; no flags.
//! ACPI thermal zones can take long to read, so the files are read off the
//! runtime thread, bounded by the scrape deadline.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::blocking::{blocking_collector, BlockingCollector};
use oxmon_core::collector::{CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::dir_entries;
use crate::file_cache::FileCache;
use crate::paths::Paths;

/// The thermal_zone collector.
pub struct ThermalZone {
    class: PathBuf,
    cache: FileCache,
}

impl ThermalZone {
    /// Reads under the given sysfs.
    pub fn new(paths: &Paths) -> Self {
        ThermalZone {
            class: paths.sys("class/thermal"),
            cache: FileCache::remembering_missing(),
        }
    }
}

impl BlockingCollector for ThermalZone {
    type Found = Vec<(String, std::fs::FileType)>;

    fn name(&self) -> &'static str {
        "thermal_zone"
    }

    fn check(&self, _: &ScrapeContext) -> Result<Option<Self::Found>, CollectError> {
        match dir_entries(&self.class)? {
            Some(entries) if !entries.is_empty() => Ok(Some(entries)),
            _ => {
                tracing::debug!(path = %self.class.display(), "no thermal zones");
                Ok(None)
            }
        }
    }

    fn collect(
        &self,
        _: &ScrapeContext,
        entries: Self::Found,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut temp = MetricFamily::gauge("node_thermal_zone_temp", "Zone temperature in Celsius");
        let mut cur = MetricFamily::gauge(
            "node_cooling_device_cur_state",
            "Current throttle state of the cooling device",
        );
        let mut max = MetricFamily::gauge(
            "node_cooling_device_max_state",
            "Maximum throttle state of the cooling device",
        );
        for (name, _) in entries {
            let dir = self.class.join(&name);
            if let Some(zone) = name.strip_prefix("thermal_zone") {
                let (Some(kind), Some(t)) = (
                    scope.attr_string(&dir.join("type")),
                    scope.attr_i64(&dir.join("temp")),
                ) else {
                    tracing::debug!(zone = %name, "thermal zone unreadable, skipped");
                    continue;
                };
                temp.add(&[("zone", zone), ("type", &kind)], t as f64 / 1000.0);
            } else if let Some(dev) = name.strip_prefix("cooling_device") {
                let (Some(kind), Some(m)) = (
                    scope.attr_string(&dir.join("type")),
                    scope.attr_i64(&dir.join("max_state")),
                ) else {
                    continue;
                };
                max.add(&[("name", dev), ("type", &kind)], m as f64);
                if let Some(c) = scope.attr_i64(&dir.join("cur_state")) {
                    cur.add(&[("name", dev), ("type", &kind)], c as f64);
                }
            }
        }
        out.extend([temp, cur, max]);
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(blocking_collector(ThermalZone::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use crate::collectors::testing;

    #[test]
    fn reads_zones_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("class/thermal");
        std::fs::create_dir_all(t.join("thermal_zone3")).unwrap();
        std::fs::create_dir_all(t.join("cooling_device1")).unwrap();
        std::fs::create_dir_all(t.join("thermal_zone4")).unwrap();
        std::fs::write(t.join("thermal_zone3/type"), "x86_pkg_temp\n").unwrap();
        std::fs::write(t.join("thermal_zone3/temp"), "42500\n").unwrap();
        std::fs::write(t.join("thermal_zone4/type"), "broken\n").unwrap();
        std::fs::write(t.join("cooling_device1/type"), "Fan\n").unwrap();
        std::fs::write(t.join("cooling_device1/max_state"), "10\n").unwrap();
        std::fs::write(t.join("cooling_device1/cur_state"), "2\n").unwrap();
        let paths = testing::paths_under(dir.path());
        let out = testing::scrape(&*testing::build("thermal_zone", &paths));
        assert_eq!(out[0].metrics.len(), 1);
        assert_eq!(
            out[0].metrics[0].value,
            oxmon_core::metrics::Value::Single(42.5)
        );
        assert_eq!(out[1].metrics.len(), 1);
        assert_eq!(
            out[2].metrics[0].value,
            oxmon_core::metrics::Value::Single(10.0)
        );
    }
}

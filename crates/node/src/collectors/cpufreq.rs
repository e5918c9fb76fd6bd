//! cpufreq — CPU frequency scaling from sysfs
//! (`devices/system/cpu/cpu<N>/cpufreq/`).
//!
//! Metrics (per `cpu`): `node_cpu_frequency_hertz`,
//! `node_cpu_frequency_max_hertz`, `node_cpu_frequency_min_hertz` (from
//! `cpuinfo_*_freq`, readable by root only on most systems),
//! `node_cpu_scaling_frequency_hertz`, `node_cpu_scaling_frequency_max_hertz`,
//! `node_cpu_scaling_frequency_min_hertz`, and
//! `node_cpu_scaling_governor{cpu,governor}` (1 for the active governor,
//! 0 for the other available ones). Sysfs gives kHz; exported in Hz.
//!
//! node_exporter's cpu collector exports `node_cpu_frequency_hertz{package,
//! core,cpu}` from `/proc/cpuinfo` only when cpufreq is enabled and
//! `--collector.cpu.info` is set; here that family is written by this
//! collector under the same condition, which gives the same output.
//!
//! The attributes are read on the collector's blocking lane: reading the
//! current frequency asks the cpufreq driver, which on some systems waits
//! for a fresh sample from every CPU (milliseconds each).
//!
//! On by default. No flags of its own.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::blocking::{blocking_collector, BlockingCollector};
use oxmon_core::collector::{CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use super::cpu::parse_cpuinfo;
use crate::collectors::Ctx;
use crate::dir_listing::{numbered_entries, Refreshed};
use crate::file_cache::{read_optional, CacheScope, FileCache};

/// The numeric cpufreq attributes: file, metric name, help.
const FREQ_FILES: [(&str, &str, &str); 6] = [
    (
        "cpuinfo_cur_freq",
        "node_cpu_frequency_hertz",
        "Current CPU thread frequency in hertz.",
    ),
    (
        "cpuinfo_max_freq",
        "node_cpu_frequency_max_hertz",
        "Maximum CPU thread frequency in hertz.",
    ),
    (
        "cpuinfo_min_freq",
        "node_cpu_frequency_min_hertz",
        "Minimum CPU thread frequency in hertz.",
    ),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
];

/// Parses a kHz sysfs value into Hz.
pub fn parse_khz(text: &str) -> Option<f64> {
    text.trim()
        .parse::<u64>()
        .ok()
        .map(|khz| khz as f64 * 1000.0)
}

struct Cpufreq {
    cpu_dir: PathBuf,
    /// `(cpu label, cpufreq directory)` of the CPUs that have one.
    cpus: Refreshed<Vec<(String, PathBuf)>>,
    cpuinfo_path: PathBuf,
    cpu_info: bool,
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let cpu_info = ctx.options.cpu.info_requested();
    Ok(blocking_collector(Cpufreq {
        cpu_dir: ctx.paths.sys("devices/system/cpu"),
        cpus: Refreshed::default(),
        cpuinfo_path: ctx.paths.proc("cpuinfo"),
        cpu_info,
        cache: FileCache::new(),
    }))
}

impl Cpufreq {
    fn collect_cpuinfo(
        &self,
        scope: &mut CacheScope<'_>,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(scope, &self.cpuinfo_path, &mut buf, "cpufreq")? {
            return Ok(());
        }
        let mut f = MetricFamily::gauge(
            "node_cpu_frequency_hertz",
            "CPU frequency in hertz from /proc/cpuinfo.",
        );
        for c in parse_cpuinfo(&buf) {
            if let Some(mhz) = c.mhz {
                f.add(
                    &[
                        ("package", &c.physical_id),
                        ("core", &c.core_id),
                        ("cpu", &c.processor),
                    ],
                    mhz * 1e6,
                );
            }
        }
        out.push(f);
        Ok(())
    }
}

impl BlockingCollector for Cpufreq {
    /// The CPUs with a cpufreq directory: `(cpu label, directory)`.
    type Found = Arc<Vec<(String, PathBuf)>>;

    fn name(&self) -> &'static str {
        "cpufreq"
    }

    fn check(&self, _: &ScrapeContext) -> Result<Option<Self::Found>, CollectError> {
        let cpus = self.cpus.get(|| {
            Ok(numbered_entries(&self.cpu_dir, "cpu")?
                .into_iter()
                .map(|(n, name)| (n.to_string(), self.cpu_dir.join(name).join("cpufreq")))
                .filter(|(_, dir)| dir.is_dir())
                .collect())
        })?;
        if cpus.is_empty() && !self.cpu_info {
            tracing::debug!(path = %self.cpu_dir.display(), "no cpufreq directories");
            return Ok(None);
        }
        Ok(Some(cpus))
    }

    fn collect(
        &self,
        _: &ScrapeContext,
        cpus: Self::Found,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        let mut scope = self.cache.scope();
        if self.cpu_info {
            self.collect_cpuinfo(&mut scope, out)?;
        }
        let mut families: Vec<MetricFamily> = FREQ_FILES
            .iter()
            .map(|(_, name, help)| MetricFamily::gauge(*name, *help))
            .collect();
        let mut governors = MetricFamily::gauge(
            "node_cpu_scaling_governor",
            "Current enabled CPU frequency governor.",
        );
        let mut buf = String::new();
        let mut any_read = false;
        for (cpu, dir) in cpus.iter() {
            for ((file, _, _), family) in FREQ_FILES.iter().zip(families.iter_mut()) {
                if scope.read_into(&dir.join(file), &mut buf).is_ok() {
                    any_read = true;
                    if let Some(hz) = parse_khz(&buf) {
                        family.add(&[("cpu", cpu)], hz);
                    }
                }
            }
            if scope
                .read_into(&dir.join("scaling_governor"), &mut buf)
                .is_ok()
            {
                let current = buf.trim().to_string();
                let mut available = String::new();
                if scope
                    .read_into(&dir.join("scaling_available_governors"), &mut available)
                    .is_err()
                {
                    available.clear();
                }
                let mut any = false;
                for g in available.split_ascii_whitespace() {
                    any |= g == current;
                    governors.add(
                        &[("cpu", cpu), ("governor", g)],
                        if g == current { 1.0 } else { 0.0 },
                    );
                }
                if !any && !current.is_empty() {
                    governors.add(&[("cpu", cpu), ("governor", &current)], 1.0);
                }
            }
        }
        if !cpus.is_empty() && !any_read {
            // Every CPU's cpufreq directory vanished: list them again.
            self.cpus.invalidate();
        }
        out.extend(families);
        out.push(governors);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn khz_to_hz() {
        assert_eq!(parse_khz("2400000\n"), Some(2.4e9));
        assert_eq!(parse_khz("<unknown>"), None);
    }
}

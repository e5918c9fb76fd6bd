//! rapl: RAPL energy counters (Intel/AMD running average power limit).
//!
//! Source: `<sysfs>/class/powercap/<zone>/{name,energy_uj}` for every zone
//! directory that has a `name`. The zone's name gives the metric and an
//! index: `package-1` is name `package`, index 1; a name without a numeric
//! suffix (`core`, `dram`) is indexed by how often it was seen before.
//! Metrics: counters `node_rapl_<name>_joules_total{index,path}`, or with
//! `--collector.rapl.enable-zone-label` one family
//! `node_rapl_joules_total{index,path,rapl_zone}`. `path` is the zone's
//! directory under the configured sysfs. On by default. Without powercap
//! it reports nothing; so it does when `energy_uj` is readable by root only
//! (kernels since 5.10) and the exporter is not root, as node_exporter
//! does. The zone list is re-read once a minute.

use std::borrow::Cow;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{list_dir, Refreshed};
use crate::field_names::name_part;
use crate::file_cache::{is_missing, CacheScope, FileCache};

/// Flags of the rapl collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Enables RAPL zone labels: one node_rapl_joules_total family with a
    /// rapl_zone label instead of one family per zone name.
    #[arg(
        id = "collector.rapl.enable-zone-label",
        long = "collector.rapl.enable-zone-label"
    )]
    pub enable_zone_label: bool,
    /// The default: one family per zone name.
    #[arg(
        id = "no-collector.rapl.enable-zone-label",
        long = "no-collector.rapl.enable-zone-label",
        hide = true,
        overrides_with = "collector.rapl.enable-zone-label"
    )]
    pub no_enable_zone_label: bool,
}

/// One powercap zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Name without its index suffix (`package`, `core`, `dram`).
    pub name: String,
    /// Index (from the name's suffix, else by order of appearance).
    pub index: u32,
    /// The zone's directory.
    pub path: PathBuf,
}

/// Splits `package-0` into `("package", Some(0))`; other names have no
/// index.
pub fn split_index(name: &str) -> (&str, Option<u32>) {
    let mut parts = name.split('-');
    if let (Some(base), Some(idx), None) = (parts.next(), parts.next(), parts.next()) {
        if let Ok(i) = idx.parse() {
            return (base, Some(i));
        }
    }
    (name, None)
}

/// Gives each `(directory, raw name)` in order its name and index.
pub fn index_zones(raw: Vec<(PathBuf, String)>) -> Vec<Zone> {
    let mut seen: Vec<(String, u32)> = Vec::new();
    raw.into_iter()
        .map(|(path, raw_name)| {
            let (name, idx) = split_index(&raw_name);
            let count = seen.iter_mut().find(|(n, _)| n == name);
            let index = idx.unwrap_or_else(|| count.as_ref().map_or(0, |(_, c)| *c));
            match count {
                Some(slot) => slot.1 = index + 1,
                None => seen.push((name.to_string(), index + 1)),
            }
            Zone {
                name: name.to_string(),
                index,
                path,
            }
        })
        .collect()
}

struct Rapl {
    class: PathBuf,
    zones: Refreshed<Vec<Zone>>,
    cache: FileCache,
    zone_label: bool,
}

impl Rapl {
    fn load_zones(&self, scope: &mut CacheScope<'_>) -> Result<Vec<Zone>, String> {
        let names = match list_dir(&self.class) {
            Ok(n) => n,
            Err(e) if is_missing(&e) => return Ok(Vec::new()),
            Err(e) => return Err(format!("listing {}: {e}", self.class.display())),
        };
        let raw = names
            .into_iter()
            .filter_map(|d| {
                let dir = self.class.join(&d);
                let name = scope.attr_string(&dir.join("name"))?;
                Some((dir, name))
            })
            .collect();
        Ok(index_zones(raw))
    }
}

impl SyncCollector for Rapl {
    fn name(&self) -> &'static str {
        "rapl"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let zones = self
            .zones
            .get(|| self.load_zones(&mut scope).map_err(Into::into))?;
        let mut joined =
            MetricFamily::counter("node_rapl_joules_total", "Current RAPL value in joules");
        for z in zones.iter() {
            let energy = z.path.join("energy_uj");
            let uj: f64 = match scope.attr(&energy) {
                Ok(b) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .ok_or_else(|| format!("{}: not an unsigned integer", energy.display()))?
                    as f64,
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    tracing::debug!(path = %energy.display(), "energy_uj readable by root only, skipped");
                    continue;
                }
                Err(e) if is_missing(&e) => {
                    self.zones.invalidate();
                    continue;
                }
                Err(e) => return Err(format!("reading {}: {e}", energy.display()).into()),
            };
            let index = z.index.to_string();
            let path = z.path.to_string_lossy();
            let joules = uj / 1e6;
            if self.zone_label {
                joined.add(
                    &[("index", &index), ("path", &path), ("rapl_zone", &z.name)],
                    joules,
                );
            } else {
                let mut fam = MetricFamily::counter(
                    Cow::Owned(format!("node_rapl_{}_joules_total", name_part(&z.name))),
                    Cow::Owned(format!("Current RAPL {} value in joules", z.name)),
                );
                fam.add(&[("index", &index), ("path", &path)], joules);
                out.push(fam);
            }
        }
        if self.zone_label {
            out.push(joined);
        }
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Rapl {
        class: ctx.paths.sys("class/powercap"),
        zones: Refreshed::default(),
        cache: FileCache::remembering_missing(),
        zone_label: ctx.options.rapl.enable_zone_label,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build_with, first_label, paths_under, scrape};
    use super::*;

    #[test]
    fn names_and_indexes() {
        assert_eq!(split_index("package-1"), ("package", Some(1)));
        assert_eq!(split_index("psys"), ("psys", None));
        assert_eq!(split_index("a-b-1"), ("a-b-1", None));
        let z = index_zones(vec![
            ("a".into(), "package-0".into()),
            ("b".into(), "dram".into()),
            ("c".into(), "dram".into()),
            ("d".into(), "package-1".into()),
        ]);
        let got: Vec<(&str, u32)> = z.iter().map(|z| (z.name.as_str(), z.index)).collect();
        assert_eq!(
            got,
            [("package", 0), ("dram", 0), ("dram", 1), ("package", 1)]
        );
    }

    #[test]
    fn zone_label_mode() {
        let dir = tempfile::tempdir().unwrap();
        let z = dir.path().join("class/powercap/intel-rapl:0");
        std::fs::create_dir_all(&z).unwrap();
        std::fs::write(z.join("name"), "package-0\n").unwrap();
        std::fs::write(z.join("energy_uj"), "2500000\n").unwrap();
        std::fs::create_dir_all(dir.path().join("class/powercap/intel-rapl")).unwrap();
        let paths = paths_under(dir.path());
        let out = scrape(build_with("rapl", &paths, &[]).as_ref());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "node_rapl_package_joules_total");
        let out =
            scrape(build_with("rapl", &paths, &["--collector.rapl.enable-zone-label"]).as_ref());
        assert_eq!(
            first_label(&out, "node_rapl_joules_total", "rapl_zone"),
            "package"
        );
        assert!(first_label(&out, "node_rapl_joules_total", "path").ends_with("intel-rapl:0"));
    }
}

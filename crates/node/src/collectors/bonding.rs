//! bonding: bonded network interfaces and their slaves.
//!
//! Source: `<sysfs>/class/net/bonding_masters`, then for each master
//! `<master>/bonding/slaves` and each slave's
//! `<master>/lower_<slave>/bonding_slave/mii_status` (`slave_<slave>` on
//! older kernels). Metrics: gauges `node_bonding_slaves{master}` (configured
//! slaves) and `node_bonding_active{master}` (slaves whose MII status is
//! `up`). A master or slave whose files are missing fails the collector
//! after the others are exported. On by default; no flags. Without the
//! bonding driver (no `bonding_masters`) it reports nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{is_missing, read_optional, CacheScope, FileCache};

struct Bonding {
    net: PathBuf,
    cache: FileCache,
}

impl Bonding {
    /// `(configured, up)` slaves of `master`.
    fn master(&self, scope: &mut CacheScope<'_>, master: &str) -> Result<(u32, u32), String> {
        let dir = self.net.join(master);
        let mut slaves = String::new();
        let path = dir.join("bonding/slaves");
        scope
            .read_into(&path, &mut slaves)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let (mut configured, mut up) = (0, 0);
        for slave in slaves.split_ascii_whitespace() {
            let lower = dir.join(format!("lower_{slave}/bonding_slave/mii_status"));
            let state = match scope.attr(&lower) {
                Err(e) if is_missing(&e) => {
                    let older = dir.join(format!("slave_{slave}/bonding_slave/mii_status"));
                    scope
                        .attr(&older)
                        .map(|b| b == b"up")
                        .map_err(|e| format!("reading {}: {e}", older.display()))?
                }
                r => r
                    .map(|b| b == b"up")
                    .map_err(|e| format!("reading {}: {e}", lower.display()))?,
            };
            configured += 1;
            up += u32::from(state);
        }
        Ok((configured, up))
    }
}

impl SyncCollector for Bonding {
    fn name(&self) -> &'static str {
        "bonding"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut masters = String::new();
        if !read_optional(
            &mut scope,
            &self.net.join("bonding_masters"),
            &mut masters,
            "bonding",
        )? {
            return Ok(());
        }
        let mut slaves = MetricFamily::gauge(
            "node_bonding_slaves",
            "Number of configured slaves per bonding interface.",
        );
        let mut active = MetricFamily::gauge(
            "node_bonding_active",
            "Number of active slaves per bonding interface.",
        );
        let mut errors = Vec::new();
        for master in masters.split_ascii_whitespace() {
            match self.master(&mut scope, master) {
                Ok((configured, up)) => {
                    slaves.add(&[("master", master)], configured.into());
                    active.add(&[("master", master)], up.into());
                }
                Err(e) => errors.push(e),
            }
        }
        out.extend([slaves, active]);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; ").into())
        }
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Bonding {
        net: ctx.paths.sys("class/net"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build, paths_under, scrape, try_scrape};

    #[test]
    fn counts_configured_and_up_slaves() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("class/net");
        let w = |rel: &str, v: &str| {
            let p = net.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        };
        w("bonding_masters", "bond0 bond1\n");
        w("bond0/bonding/slaves", "eth0 eth1\n");
        w("bond0/lower_eth0/bonding_slave/mii_status", "up\n");
        w("bond0/slave_eth1/bonding_slave/mii_status", "down\n");
        w("bond1/bonding/slaves", "\n");
        let paths = paths_under(dir.path());
        let out = scrape(build("bonding", &paths).as_ref());
        let v = |n: &str, i: usize| match out.iter().find(|f| f.name == n).unwrap().metrics[i].value
        {
            oxmon_core::metrics::Value::Single(v) => v,
            _ => unreachable!(),
        };
        assert_eq!(
            (v("node_bonding_slaves", 0), v("node_bonding_active", 0)),
            (2.0, 1.0)
        );
        assert_eq!(
            (v("node_bonding_slaves", 1), v("node_bonding_active", 1)),
            (0.0, 0.0)
        );
        w("bond1/bonding/slaves", "eth9\n");
        assert!(try_scrape(build("bonding", &paths).as_ref()).1.is_err());
    }
}

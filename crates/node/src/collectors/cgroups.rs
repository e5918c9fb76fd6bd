//! cgroups: cgroup v1 controllers.
//!
//! Source: `<procfs>/cgroups` (`#subsys_name hierarchy num_cgroups
//! enabled`). Metrics: gauges `node_cgroups_cgroups{subsys_name}` (number
//! of cgroups) and `node_cgroups_enabled{subsys_name}`, with
//! node_exporter's help text (the same for both). A line without four
//! integer columns is left out and fails the collector after the rest is
//! exported. Off by default; no flags. Without the file it reports
//! nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};
use crate::malformed::Malformed;

/// One controller: name, number of cgroups, enabled.
#[derive(Debug, PartialEq)]
pub struct Controller<'a> {
    /// `subsys_name`.
    pub name: &'a str,
    /// `num_cgroups`.
    pub cgroups: u64,
    /// `enabled`.
    pub enabled: u64,
}

/// Parses `/proc/cgroups` (the `#` header skipped), and what did not parse.
pub fn parse_cgroups(text: &str) -> (Vec<Controller<'_>>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        let parsed = match cols[..] {
            [name, hierarchy, cgroups, enabled] => hierarchy
                .parse::<u64>()
                .and(cgroups.parse::<u64>())
                .and_then(|c| Ok((name, c, enabled.parse::<u64>()?)))
                .ok(),
            _ => None,
        };
        match parsed {
            Some((name, cgroups, enabled)) => out.push(Controller {
                name,
                cgroups,
                enabled,
            }),
            None => bad.line(i + 1, line, "expected a name and three integers"),
        }
    }
    (out, bad)
}

struct Cgroups {
    path: PathBuf,
    cache: FileCache,
}

impl SyncCollector for Cgroups {
    fn name(&self) -> &'static str {
        "cgroups"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "cgroups")? {
            return Ok(());
        }
        let (controllers, bad) = parse_cgroups(&buf);
        const HELP: &str = "Current cgroup number of the subsystem.";
        let mut cgroups = MetricFamily::gauge("node_cgroups_cgroups", HELP);
        let mut enabled = MetricFamily::gauge("node_cgroups_enabled", HELP);
        for c in &controllers {
            cgroups.add(&[("subsys_name", c.name)], c.cgroups as f64);
            enabled.add(&[("subsys_name", c.name)], c.enabled as f64);
        }
        out.extend([cgroups, enabled]);
        bad.into_result(&self.path)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Cgroups {
        path: ctx.paths.proc("cgroups"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_and_bad_lines() {
        let (c, bad) = parse_cgroups(
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t5\t47\t1\nmemory 0 1 0\nmisc x 1 1\nio 1 2\n",
        );
        assert_eq!(
            c,
            [
                Controller {
                    name: "cpuset",
                    cgroups: 47,
                    enabled: 1
                },
                Controller {
                    name: "memory",
                    cgroups: 1,
                    enabled: 0
                },
            ]
        );
        assert_eq!(bad.count(), 2);
    }
}

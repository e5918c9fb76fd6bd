//! sysctl: chosen kernel parameters.
//!
//! Source: `<procfs>/sys/<name with dots as slashes>` for each sysctl named
//! by a flag. Flags (repeatable, none by default):
//! - `--collector.sysctl.include=<name>` exports a numeric sysctl as
//!   untyped `node_sysctl_<name>` (characters other than letters, digits
//!   and `_` become `_`); one with several values gets an `index` label.
//!   `<name>:<a>,<b>,…` names the values instead:
//!   `node_sysctl_<name>_<a>`, … (the count must match).
//! - `--collector.sysctl.include-info=<name>` exports a text sysctl as
//!   `node_sysctl_info{name,value,index}` (one series per value).
//!
//! A sysctl this kernel does not have is left out (as an absent
//! subsystem is; node_exporter fails instead). One that is not numeric, or
//! has another number of values than named, fails the collector after the
//! others are exported. Off by default.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::field_names::name_part;
use crate::file_cache::{read_optional, FileCache};

/// Flags of the sysctl collector (node_exporter's names).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Select sysctl metrics to include.
    #[arg(
        id = "collector.sysctl.include",
        long = "collector.sysctl.include",
        value_name = "NAME[:KEYS]"
    )]
    pub include: Vec<String>,
    /// Select sysctl metrics to include as info metrics.
    #[arg(
        id = "collector.sysctl.include-info",
        long = "collector.sysctl.include-info",
        value_name = "NAME"
    )]
    pub include_info: Vec<String>,
}

/// One sysctl to export.
#[derive(Debug, Clone, PartialEq)]
pub struct Sysctl {
    /// Dotted name (`fs.file-nr`).
    pub name: String,
    /// Names of the values (`name:a,b,c`), empty when not given.
    pub keys: Vec<String>,
    /// Numeric (`include`) or text (`include-info`).
    pub numeric: bool,
}

/// Parses a flag value: `name` or `name:key1,key2`.
pub fn parse_include(flag: &str, numeric: bool) -> Sysctl {
    match flag.split_once(':') {
        Some((name, keys)) => Sysctl {
            name: name.to_string(),
            keys: keys.split(',').map(str::to_string).collect(),
            numeric,
        },
        None => Sysctl {
            name: flag.to_string(),
            keys: Vec::new(),
            numeric,
        },
    }
}

/// The families for one sysctl's content.
pub fn sysctl_families(s: &Sysctl, content: &str) -> Result<Vec<MetricFamily>, String> {
    let values: Vec<&str> = content.split_whitespace().collect();
    if values.is_empty() {
        return Err(format!("sysctl {} has no values", s.name));
    }
    if !s.numeric {
        let mut fam = MetricFamily::gauge("node_sysctl_info", "sysctl info");
        for (i, v) in values.iter().enumerate() {
            let i = i.to_string();
            fam.add(&[("name", &s.name), ("value", v), ("index", &i)], 1.0);
        }
        return Ok(vec![fam]);
    }
    let numbers = values
        .iter()
        .map(|v| v.parse::<i64>().map(|n| n as f64))
        .collect::<Result<Vec<f64>, _>>()
        .map_err(|_| format!("sysctl {}: {content:?} is not numeric", s.name.trim()))?;
    let base = format!("node_sysctl_{}", name_part(&s.name));
    let help = format!("sysctl {}", s.name);
    if numbers.len() == 1 {
        if !s.keys.is_empty() {
            return Err(format!(
                "sysctl {} has only one value, but expected {:?}",
                s.name, s.keys
            ));
        }
        let mut fam = MetricFamily::untyped(base, help);
        fam.add(&[], numbers[0]);
        return Ok(vec![fam]);
    }
    if s.keys.is_empty() {
        let mut fam = MetricFamily::untyped(base, help);
        for (i, v) in numbers.iter().enumerate() {
            fam.add(&[("index", &i.to_string())], *v);
        }
        return Ok(vec![fam]);
    }
    if s.keys.len() != numbers.len() {
        return Err(format!(
            "sysctl {} has {} values but {} keys were given",
            s.name,
            numbers.len(),
            s.keys.len()
        ));
    }
    Ok(s.keys
        .iter()
        .zip(&numbers)
        .enumerate()
        .map(|(i, (key, v))| {
            let mut fam = MetricFamily::untyped(
                Cow::Owned(format!("{base}_{}", name_part(key))),
                Cow::Owned(format!("sysctl {}, field {i}", s.name)),
            );
            fam.add(&[], *v);
            fam
        })
        .collect())
}

struct SysctlCollector {
    sysctls: Vec<(Sysctl, PathBuf)>,
    cache: FileCache,
}

impl SyncCollector for SysctlCollector {
    fn name(&self) -> &'static str {
        "sysctl"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        let mut errors = Vec::new();
        for (s, path) in &self.sysctls {
            // A sysctl this kernel lacks (its module is not loaded) is
            // left out like an absent subsystem (logged at debug level).
            if !read_optional(&mut scope, path, &mut buf, "sysctl")? {
                continue;
            }
            match sysctl_families(s, &buf) {
                Ok(fams) => out.extend(fams),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; ").into())
        }
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let f = &ctx.options.sysctl;
    let sysctls = f
        .include
        .iter()
        .map(|i| parse_include(i, true))
        .chain(f.include_info.iter().map(|i| parse_include(i, false)))
        .map(|s| {
            let path = ctx.paths.proc(&format!("sys/{}", s.name.replace('.', "/")));
            (s, path)
        })
        .collect();
    Ok(sync_collector(SysctlCollector {
        sysctls,
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(f: &MetricFamily) -> Vec<(Vec<(String, String)>, f64)> {
        f.metrics
            .iter()
            .map(|m| {
                let v = match m.value {
                    oxmon_core::metrics::Value::Single(v) => v,
                    _ => unreachable!(),
                };
                (
                    m.labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    v,
                )
            })
            .collect()
    }

    #[test]
    fn flag_forms() {
        assert_eq!(
            parse_include("fs.file-nr:total,current,max", true).keys,
            ["total", "current", "max"]
        );
        assert!(parse_include("kernel.threads-max", true).keys.is_empty());
    }

    #[test]
    fn single_indexed_and_keyed_values() {
        let single = sysctl_families(&parse_include("kernel.threads-max", true), "7801\n").unwrap();
        assert_eq!(single[0].name, "node_sysctl_kernel_threads_max");
        assert_eq!(samples(&single[0]), [(vec![], 7801.0)]);
        let indexed = sysctl_families(&parse_include("fs.file-nr", true), "1024\t0\t9\n").unwrap();
        assert_eq!(indexed[0].metrics.len(), 3);
        let keyed = sysctl_families(
            &parse_include("fs.file-nr:total,current,max", true),
            "1024\t0\t9\n",
        )
        .unwrap();
        assert_eq!(keyed[2].name, "node_sysctl_fs_file_nr_max");
        assert_eq!(keyed[2].help, "sysctl fs.file-nr, field 2");
        assert!(sysctl_families(&parse_include("fs.file-nr:a,b", true), "1 2 3").is_err());
        assert!(sysctl_families(&parse_include("x:a", true), "1").is_err());
        assert!(sysctl_families(&parse_include("x", true), "abc").is_err());
        assert!(sysctl_families(&parse_include("x", true), " \n").is_err());
    }

    #[test]
    fn info_values() {
        let info = sysctl_families(
            &parse_include("kernel.seccomp.actions_avail", false),
            "kill_process trap\n",
        )
        .unwrap();
        assert_eq!(info[0].name, "node_sysctl_info");
        assert_eq!(info[0].metrics.len(), 2);
        assert!(info[0].metrics[1]
            .labels
            .iter()
            .any(|(k, v)| k == "value" && v == "trap"));
    }
}

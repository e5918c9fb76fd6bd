//! slabinfo: kernel slab allocator caches.
//!
//! Source: `<procfs>/slabinfo` (version 2.1; readable by root only).
//! Metrics: gauges `node_slabinfo_active_objects`, `node_slabinfo_objects`,
//! `node_slabinfo_object_size_bytes`, `node_slabinfo_objects_per_slab` and
//! `node_slabinfo_pages_per_slab`, labelled `slab`. A cache line without
//! the 16 columns of version 2.1 is left out and fails the collector after
//! the rest is exported. Off by default. Flags:
//! `--collector.slabinfo.slabs-include` (regex, default `.*`) and
//! `--collector.slabinfo.slabs-exclude` (regex, default empty: none); a
//! cache is exported when it matches the include and not the exclude.
//! Without the file it reports nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};
use regex::Regex;

use crate::collectors::Ctx;
use crate::device_filter::compile_regex;
use crate::file_cache::{read_optional, FileCache};
use crate::malformed::Malformed;

/// Flags of the slabinfo collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regexp of slabs to include in slabinfo collector.
    #[arg(
        id = "collector.slabinfo.slabs-include",
        long = "collector.slabinfo.slabs-include",
        value_name = "REGEX",
        default_value = ".*"
    )]
    pub slabs_include: String,
    /// Regexp of slabs to exclude in slabinfo collector.
    #[arg(
        id = "collector.slabinfo.slabs-exclude",
        long = "collector.slabinfo.slabs-exclude",
        value_name = "REGEX",
        default_value = ""
    )]
    pub slabs_exclude: String,
}

/// One cache's line.
#[derive(Debug, PartialEq)]
pub struct Slab<'a> {
    /// Cache name.
    pub name: &'a str,
    /// `<active_objs>`, `<num_objs>`, `<objsize>`, `<objperslab>`,
    /// `<pagesperslab>`.
    pub values: [f64; 5],
}

/// Parses `/proc/slabinfo` (the version line and `#` header are skipped),
/// and what did not parse.
pub fn parse_slabinfo(text: &str) -> (Vec<Slab<'_>>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("slabinfo") || line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() != 16 {
            bad.line(i + 1, line, format!("{} columns, expected 16", cols.len()));
            continue;
        }
        let mut values = [0.0; 5];
        let mut ok = true;
        for (slot, col) in values.iter_mut().zip(&cols[1..6]) {
            match col.parse::<i64>() {
                Ok(v) => *slot = v as f64,
                Err(_) => ok = false,
            }
        }
        if !ok {
            bad.line(i + 1, line, "a count is not an integer");
            continue;
        }
        out.push(Slab {
            name: cols[0],
            values,
        });
    }
    (out, bad)
}

/// `(metric name, help)` for each of [`Slab::values`].
const METRICS: [(&str, &str); 5] = [
    (
        "node_slabinfo_active_objects",
        "The number of objects that are currently active (i.e., in use).",
    ),
    (
        "node_slabinfo_objects",
        "The total number of allocated objects (i.e., objects that are both in use and not in use).",
    ),
    (
        "node_slabinfo_object_size_bytes",
        "The size of objects in this slab, in bytes.",
    ),
    (
        "node_slabinfo_objects_per_slab",
        "The number of objects stored in each slab.",
    ),
    (
        "node_slabinfo_pages_per_slab",
        "The number of pages allocated for each slab.",
    ),
];

struct Slabinfo {
    path: PathBuf,
    cache: FileCache,
    include: Regex,
    exclude: Option<Regex>,
}

impl SyncCollector for Slabinfo {
    fn name(&self) -> &'static str {
        "slabinfo"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "slabinfo")? {
            return Ok(());
        }
        let (slabs, bad) = parse_slabinfo(&buf);
        let mut fams = METRICS.map(|(name, help)| MetricFamily::gauge(name, help));
        for s in &slabs {
            if !self.include.is_match(s.name)
                || self.exclude.as_ref().is_some_and(|e| e.is_match(s.name))
            {
                continue;
            }
            for (fam, &v) in fams.iter_mut().zip(&s.values) {
                fam.add(&[("slab", s.name)], v);
            }
        }
        out.extend(fams);
        bad.into_result(&self.path)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let f = &ctx.options.slabinfo;
    Ok(sync_collector(Slabinfo {
        path: ctx.paths.proc("slabinfo"),
        cache: FileCache::remembering_missing(),
        include: compile_regex("collector.slabinfo.slabs-include", &f.slabs_include)?,
        exclude: (!f.slabs_exclude.is_empty())
            .then(|| compile_regex("collector.slabinfo.slabs-exclude", &f.slabs_exclude))
            .transpose()?,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build_with, paths_under, scrape};
    use super::*;

    const TEXT: &str = "slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
ext4_inode_cache   5120   5200   1080   30    8 : tunables    0    0    0 : slabdata    170    170      0
kmalloc-64         900   1024     64   64    1 : tunables    0    0    0 : slabdata     16     16      0
broken 1 2 3
";

    #[test]
    fn caches_and_bad_lines() {
        let (s, bad) = parse_slabinfo(TEXT);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "ext4_inode_cache");
        assert_eq!(s[0].values, [5120.0, 5200.0, 1080.0, 30.0, 8.0]);
        assert_eq!(bad.count(), 1);
    }

    #[test]
    fn include_and_exclude_together() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("slabinfo"),
            TEXT.replace("broken 1 2 3\n", ""),
        )
        .unwrap();
        let c = build_with(
            "slabinfo",
            &paths_under(dir.path()),
            &[
                "--collector.slabinfo.slabs-include=^(ext4|kmalloc)",
                "--collector.slabinfo.slabs-exclude=^kmalloc",
            ],
        );
        let out = scrape(c.as_ref());
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|f| f.metrics.len() == 1));
    }
}

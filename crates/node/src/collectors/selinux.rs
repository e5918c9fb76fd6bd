//! selinux: SELinux status and access vector cache statistics.
//!
//! SELinux counts as enabled when selinuxfs is mounted at
//! `<sysfs>/fs/selinux` (its `enforce` file exists). Metrics:
//! - `node_selinux_enabled` (1 or 0), always.
//! - When enabled: `node_selinux_config_mode` (`SELINUX=` of
//!   `<rootfs>/etc/selinux/config`: enforcing 1, permissive 0, otherwise
//!   -1), `node_selinux_current_mode` (`enforce`: 1 enforcing, 0
//!   permissive), counters `node_selinux_avc_{lookups,hits,misses,
//!   allocations,reclaims,frees}_total` (`avc/cache_stats`, summed over its
//!   per-CPU lines), gauges `node_selinux_avc_hash_{entries,buckets_used,
//!   buckets_available,longest_chain}` (`avc/hash_stats`) and
//!   `node_selinux_avc_threshold` (`avc/cache_threshold`).
//!
//! An AVC file that is missing or does not parse fails the collector after
//! the rest is exported. On by default; no flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{
    is_missing, parse_int_auto, read_optional, read_regular, FileCache, OnLease,
};

/// Sums of the six columns of `avc/cache_stats` (lookups, hits, misses,
/// allocations, reclaims, frees) over its per-CPU lines; `None` when a
/// line does not hold six numbers.
pub fn parse_avc_cache_stats(text: &str) -> Option<[u64; 6]> {
    let mut sums = [0u64; 6];
    for line in text.lines().skip(1) {
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().ok())
            .collect::<Option<_>>()?;
        if numbers.len() != 6 {
            return None;
        }
        for (s, n) in sums.iter_mut().zip(numbers) {
            *s = s.wrapping_add(n);
        }
    }
    Some(sums)
}

/// `avc/hash_stats`: entries, buckets used, buckets available, longest
/// chain.
pub fn parse_avc_hash_stats(text: &str) -> Option<[u64; 4]> {
    let mut lines = text.lines();
    let entries = lines.next()?.strip_prefix("entries: ")?;
    let buckets = lines.next()?.split_once("buckets used: ")?.1;
    let (used, available) = buckets.split_once('/')?;
    let longest = lines.next()?.strip_prefix("longest chain: ")?;
    let num = |s: &str| parse_int_auto(s.trim()).and_then(|v| u64::try_from(v).ok());
    Some([num(entries)?, num(used)?, num(available)?, num(longest)?])
}

/// `SELINUX=` of `/etc/selinux/config`: 1 enforcing, 0 permissive, -1
/// anything else (disabled, missing).
pub fn config_mode(config: &str) -> f64 {
    let value = config
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("SELINUX="))
        .map(|v| v.trim().trim_matches('"'));
    match value {
        Some("enforcing") => 1.0,
        Some("permissive") => 0.0,
        _ => -1.0,
    }
}

struct Selinux {
    fs: PathBuf,
    config: PathBuf,
    cache: FileCache,
}

impl SyncCollector for Selinux {
    fn name(&self) -> &'static str {
        "selinux"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        const ENABLED_HELP: &str = "SELinux is enabled, 1 is true, 0 is false";
        if !read_optional(&mut scope, &self.fs.join("enforce"), &mut buf, "selinux")? {
            out.push(oxmon_core::gauge("node_selinux_enabled", ENABLED_HELP, 0.0));
            return Ok(());
        }
        out.push(oxmon_core::gauge("node_selinux_enabled", ENABLED_HELP, 1.0));
        let current = parse_int_auto(buf.trim()).map_or(-1.0, |v| v as f64);
        // A regular file, replaced by editors and package managers: read
        // afresh rather than through the cache of kept-open files.
        let config = match read_regular(&self.config, OnLease::Fail, 1 << 20) {
            Ok((bytes, _)) => config_mode(&String::from_utf8_lossy(&bytes)),
            Err(e) if is_missing(&e) => -1.0,
            Err(e) => return Err(format!("reading {}: {e}", self.config.display()).into()),
        };
        out.push(oxmon_core::gauge(
            "node_selinux_config_mode",
            "Configured SELinux enforcement mode",
            config,
        ));
        out.push(oxmon_core::gauge(
            "node_selinux_current_mode",
            "Current SELinux enforcement mode",
            current,
        ));
        let mut read = |rel: &str| -> Result<String, String> {
            let path = self.fs.join(rel);
            let mut text = String::new();
            scope
                .read_into(&path, &mut text)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            Ok(text)
        };
        let cache_stats = read("avc/cache_stats")?;
        let c = parse_avc_cache_stats(&cache_stats)
            .ok_or("avc/cache_stats: a line does not hold six numbers")?;
        for (v, (name, help)) in c.iter().zip([
            ("node_selinux_avc_lookups_total", "SELinux AVC lookups"),
            ("node_selinux_avc_hits_total", "SELinux AVC hits"),
            ("node_selinux_avc_misses_total", "SELinux AVC misses"),
            (
                "node_selinux_avc_allocations_total",
                "SELinux AVC allocations",
            ),
            ("node_selinux_avc_reclaims_total", "SELinux AVC reclaims"),
            ("node_selinux_avc_frees_total", "SELinux AVC frees"),
        ]) {
            out.push(oxmon_core::counter(name, help, *v as f64));
        }
        let hash_stats = read("avc/hash_stats")?;
        let h = parse_avc_hash_stats(&hash_stats).ok_or("avc/hash_stats: unexpected content")?;
        for (v, (name, help)) in h.iter().zip([
            ("node_selinux_avc_hash_entries", "SELinux AVC hash entries"),
            (
                "node_selinux_avc_hash_buckets_used",
                "SELinux AVC hash buckets used",
            ),
            (
                "node_selinux_avc_hash_buckets_available",
                "SELinux AVC hash buckets available",
            ),
            (
                "node_selinux_avc_hash_longest_chain",
                "SELinux AVC hash longest chain",
            ),
        ]) {
            out.push(oxmon_core::gauge(name, help, *v as f64));
        }
        let threshold = read("avc/cache_threshold")?;
        let t: f64 = threshold
            .trim()
            .parse()
            .map_err(|_| format!("avc/cache_threshold: {threshold:?} is not a number"))?;
        out.push(oxmon_core::gauge(
            "node_selinux_avc_threshold",
            "SELinux AVC threshold",
            t,
        ));
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Selinux {
        fs: ctx.paths.sys("fs/selinux"),
        config: ctx.paths.root("etc/selinux/config"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build, paths_under, scrape};
    use super::*;

    #[test]
    fn avc_files() {
        let cache = "lookups hits misses allocations reclaims frees\n10 8 2 2 0 1\n5 5 0 0 0 0\n";
        assert_eq!(parse_avc_cache_stats(cache), Some([15, 13, 2, 2, 0, 1]));
        assert_eq!(parse_avc_cache_stats("h\n1 2 3\n"), None);
        let hash = "entries: 503\nbuckets used: 270/512\nlongest chain: 5\n";
        assert_eq!(parse_avc_hash_stats(hash), Some([503, 270, 512, 5]));
        assert_eq!(parse_avc_hash_stats("entries: 1\n"), None);
        assert_eq!(
            config_mode("# c\nSELINUX=permissive\nSELINUXTYPE=targeted\n"),
            0.0
        );
        assert_eq!(config_mode("SELINUX=enforcing"), 1.0);
        assert_eq!(config_mode(""), -1.0);
    }

    #[test]
    fn disabled_and_enabled() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_under(dir.path());
        let out = scrape(build("selinux", &paths).as_ref());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "node_selinux_enabled");
        let fs = dir.path().join("fs/selinux/avc");
        std::fs::create_dir_all(&fs).unwrap();
        std::fs::write(dir.path().join("fs/selinux/enforce"), "1").unwrap();
        std::fs::write(
            fs.join("cache_stats"),
            "lookups hits misses allocations reclaims frees\n1 1 0 0 0 0\n",
        )
        .unwrap();
        std::fs::write(
            fs.join("hash_stats"),
            "entries: 3\nbuckets used: 2/512\nlongest chain: 1\n",
        )
        .unwrap();
        std::fs::write(fs.join("cache_threshold"), "512\n").unwrap();
        let out = scrape(build("selinux", &paths).as_ref());
        assert_eq!(out.len(), 14);
    }
}

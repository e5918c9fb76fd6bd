//! btrfs: Btrfs filesystem allocation and commit statistics.
//!
//! Source: `<sysfs>/fs/btrfs/<uuid>/` of each mounted filesystem: `label`,
//! `metadata_uuid`, `commit_stats`, `devices/<name>/size` (512-byte
//! sectors), `allocation/global_rsv_size` and, per block group type
//! (`data`, `metadata`, `system`), `allocation/<type>/bytes_reserved` and
//! per profile `allocation/<type>/<profile>/{total_bytes,used_bytes}`.
//!
//! Metrics (labelled `uuid`): `node_btrfs_info{label}`,
//! `node_btrfs_global_rsv_size_bytes`, `node_btrfs_commits_total`,
//! `node_btrfs_commit_seconds_total`, `node_btrfs_last_commit_seconds`,
//! `node_btrfs_max_commit_seconds`,
//! `node_btrfs_reserved_bytes{block_group_type}`,
//! `node_btrfs_{used_bytes,size_bytes,allocation_ratio}{block_group_type,mode}`
//! and `node_btrfs_device_size_bytes{device}`. A kernel without
//! `commit_stats` (older kernels) reports the commit metrics as 0, as
//! node_exporter does.
//!
//! Not read: the per-device error counters and unused bytes node_exporter
//! gets with `BTRFS_IOC_DEV_INFO`/`BTRFS_IOC_GET_DEV_STATS` ioctls on the
//! mounted filesystem (`node_btrfs_device_errors_total`,
//! `node_btrfs_device_unused_bytes`); without them `device_size_bytes` has
//! no `btrfs_dev_uuid` label, as node_exporter's own fallback has none.
//!
//! On by default; no flags. Without Btrfs (no `fs/btrfs` filesystems in
//! sysfs) it reports nothing; filesystems are listed again once a minute.
//! A value that is not a number is left out and fails the collector after
//! the rest is exported.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::collector::{
    sync_collector, CollectError, CollectResult, ScrapeContext, SyncCollector,
};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{dir_entries, Refreshed};
use crate::file_cache::{FileCache, ScrapeReader};
use crate::paths::Paths;

/// The block group types, as directories under `allocation/`.
pub const BLOCK_GROUP_TYPES: [&str; 3] = ["data", "metadata", "system"];

/// Bytes per sector in `devices/<name>/size` (always 512 on Linux).
const SECTOR_BYTES: f64 = 512.0;

/// The counters of `commit_stats` (milliseconds for the durations).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CommitStats {
    /// `commits`.
    pub commits: f64,
    /// `last_commit_ms`.
    pub last_commit_ms: f64,
    /// `max_commit_ms`.
    pub max_commit_ms: f64,
    /// `total_commit_ms`.
    pub total_commit_ms: f64,
}

/// Parses `commit_stats` (`key value` lines; unknown keys are skipped), or
/// names the first line that does not parse.
pub fn parse_commit_stats(text: &str) -> Result<CommitStats, String> {
    let mut s = CommitStats::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value)) = (fields.next(), fields.next()) else {
            continue;
        };
        let slot = match key {
            "commits" => &mut s.commits,
            "last_commit_ms" => &mut s.last_commit_ms,
            "max_commit_ms" => &mut s.max_commit_ms,
            "total_commit_ms" => &mut s.total_commit_ms,
            _ => continue,
        };
        *slot = value
            .parse::<u64>()
            .map_err(|_| format!("cannot read {line:?}"))? as f64;
    }
    Ok(s)
}

/// How many times a profile stores the data it holds: 1 for `single` and
/// `raid0`, 2 for `dup`, `raid1` and `raid10`, n/(n-1) and n/(n-2) for
/// `raid5` and `raid6` over `devices` devices; 0 for a profile
/// node_exporter does not know (`raid1c3`, `raid1c4`), as it reports them.
pub fn allocation_ratio(profile: &str, devices: usize) -> f64 {
    let n = devices as f64;
    match profile {
        "single" | "raid0" => 1.0,
        "dup" | "raid1" | "raid10" => 2.0,
        "raid5" => n / (n - 1.0),
        "raid6" => n / (n - 2.0),
        _ => 0.0,
    }
}

/// One filesystem's directory layout, as listed.
#[derive(Debug)]
struct Filesystem {
    /// The directory name (the filesystem UUID).
    name: String,
    dir: PathBuf,
    devices: Vec<String>,
    /// The profiles under each of [`BLOCK_GROUP_TYPES`].
    profiles: [Vec<String>; 3],
}

fn list_filesystems(root: &Path) -> Result<Vec<Filesystem>, CollectError> {
    let listing = |d: &Path| dir_entries(d).map_err(|e| format!("listing {}: {e}", d.display()));
    let mut out = Vec::new();
    for (name, _) in listing(root)?.unwrap_or_default() {
        if !name.contains('-') {
            continue;
        }
        let dir = root.join(&name);
        let devices = listing(&dir.join("devices"))?
            .unwrap_or_default()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let mut profiles: [Vec<String>; 3] = Default::default();
        for (kind, list) in BLOCK_GROUP_TYPES.iter().zip(profiles.iter_mut()) {
            *list = listing(&dir.join("allocation").join(kind))?
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, t)| t.is_dir())
                .map(|(n, _)| n)
                .collect();
        }
        out.push(Filesystem {
            name,
            dir,
            devices,
            profiles,
        });
    }
    Ok(out)
}

/// The btrfs collector.
pub struct Btrfs {
    root: PathBuf,
    cache: FileCache,
    filesystems: Refreshed<Vec<Filesystem>>,
}

impl Btrfs {
    /// Reads under the given sysfs.
    pub fn new(paths: &Paths) -> Self {
        Btrfs {
            root: paths.sys("fs/btrfs"),
            cache: FileCache::remembering_missing(),
            filesystems: Refreshed::default(),
        }
    }
}

struct Families {
    info: MetricFamily,
    global_rsv: MetricFamily,
    commits: MetricFamily,
    commit_seconds: MetricFamily,
    last_commit: MetricFamily,
    max_commit: MetricFamily,
    reserved: MetricFamily,
    used: MetricFamily,
    size: MetricFamily,
    ratio: MetricFamily,
    device_size: MetricFamily,
}

impl Families {
    fn new() -> Self {
        let g = MetricFamily::gauge;
        let c = MetricFamily::counter;
        Families {
            info: g("node_btrfs_info", "Filesystem information"),
            global_rsv: g(
                "node_btrfs_global_rsv_size_bytes",
                "Size of global reserve.",
            ),
            commits: c(
                "node_btrfs_commits_total",
                "The total number of commits that have occurred.",
            ),
            commit_seconds: c(
                "node_btrfs_commit_seconds_total",
                "Sum of the duration of all commits, in seconds.",
            ),
            last_commit: g(
                "node_btrfs_last_commit_seconds",
                "Duration of the most recent commit, in seconds.",
            ),
            max_commit: g(
                "node_btrfs_max_commit_seconds",
                "Duration of the slowest commit, in seconds.",
            ),
            reserved: g(
                "node_btrfs_reserved_bytes",
                "Amount of space reserved for a data type",
            ),
            used: g(
                "node_btrfs_used_bytes",
                "Amount of used space by a layout/data type",
            ),
            size: g(
                "node_btrfs_size_bytes",
                "Amount of space allocated for a layout/data type",
            ),
            ratio: g(
                "node_btrfs_allocation_ratio",
                "Data allocation ratio for a layout/data type",
            ),
            device_size: g(
                "node_btrfs_device_size_bytes",
                "Size of a device that is part of the filesystem.",
            ),
        }
    }

    fn into_vec(self) -> Vec<MetricFamily> {
        vec![
            self.info,
            self.global_rsv,
            self.commits,
            self.commit_seconds,
            self.last_commit,
            self.max_commit,
            self.reserved,
            self.used,
            self.size,
            self.ratio,
            self.device_size,
        ]
    }
}

/// Reads of one scrape: the first failure is kept, a missing file noted.
struct Reader<'s, 'c> {
    files: ScrapeReader<'s, 'c>,
    missing: bool,
}

impl Reader<'_, '_> {
    /// The trimmed text of `path`, `None` when missing or unreadable (the
    /// latter noted).
    fn text(&mut self, path: &Path) -> Option<String> {
        self.files.text(path).map(|t| t.trim().to_string())
    }

    /// An unsigned integer attribute; `None` when missing (noted: the
    /// filesystem may have gone) or not a number (noted as a failure).
    fn number(&mut self, path: &Path) -> Option<f64> {
        let Some(text) = self.text(path) else {
            self.missing = true;
            return None;
        };
        match text.parse::<u64>() {
            Ok(v) => Some(v as f64),
            Err(_) => {
                self.files
                    .fail(format!("{}: not a number: {text:?}", path.display()));
                None
            }
        }
    }
}

impl Btrfs {
    fn filesystem(&self, r: &mut Reader<'_, '_>, fs: &Filesystem, f: &mut Families) {
        let dir = &fs.dir;
        let uuid = r
            .text(&dir.join("metadata_uuid"))
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| fs.name.clone());
        let uuid = uuid.as_str();
        let label = r.text(&dir.join("label")).unwrap_or_default();
        f.info.add(&[("uuid", uuid), ("label", &label)], 1.0);
        if let Some(v) = r.number(&dir.join("allocation/global_rsv_size")) {
            f.global_rsv.add(&[("uuid", uuid)], v);
        }
        let commit_path = dir.join("commit_stats");
        let commits = match r.text(&commit_path).map(|t| parse_commit_stats(&t)) {
            Some(Ok(s)) => Some(s),
            None => Some(CommitStats::default()),
            Some(Err(e)) => {
                r.files.fail(format!("{}: {e}", commit_path.display()));
                None
            }
        };
        if let Some(s) = commits {
            f.commits.add(&[("uuid", uuid)], s.commits);
            f.commit_seconds
                .add(&[("uuid", uuid)], s.total_commit_ms / 1000.0);
            f.last_commit
                .add(&[("uuid", uuid)], s.last_commit_ms / 1000.0);
            f.max_commit
                .add(&[("uuid", uuid)], s.max_commit_ms / 1000.0);
        }
        for (kind, profiles) in BLOCK_GROUP_TYPES.iter().zip(&fs.profiles) {
            let kind_dir = dir.join("allocation").join(kind);
            if let Some(v) = r.number(&kind_dir.join("bytes_reserved")) {
                f.reserved
                    .add(&[("uuid", uuid), ("block_group_type", kind)], v);
            }
            for profile in profiles {
                let labels = [
                    ("uuid", uuid),
                    ("block_group_type", kind),
                    ("mode", profile.as_str()),
                ];
                let profile_dir = kind_dir.join(profile);
                if let Some(v) = r.number(&profile_dir.join("used_bytes")) {
                    f.used.add(&labels, v);
                }
                if let Some(v) = r.number(&profile_dir.join("total_bytes")) {
                    f.size.add(&labels, v);
                }
                f.ratio
                    .add(&labels, allocation_ratio(profile, fs.devices.len()));
            }
        }
        for device in &fs.devices {
            if let Some(v) = r.number(&dir.join("devices").join(device).join("size")) {
                f.device_size
                    .add(&[("uuid", uuid), ("device", device)], v * SECTOR_BYTES);
            }
        }
    }
}

impl SyncCollector for Btrfs {
    fn name(&self) -> &'static str {
        "btrfs"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let filesystems = self.filesystems.get(|| list_filesystems(&self.root))?;
        if filesystems.is_empty() {
            return Ok(());
        }
        let mut scope = self.cache.scope();
        let mut r = Reader {
            files: ScrapeReader::new(&mut scope),
            missing: false,
        };
        let mut f = Families::new();
        for fs in filesystems.iter() {
            self.filesystem(&mut r, fs, &mut f);
        }
        if r.missing && filesystems.iter().any(|fs| !fs.dir.exists()) {
            // Unmounted since the listing.
            self.filesystems.invalidate();
        }
        out.extend(f.into_vec());
        r.files.finish()
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Btrfs::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build, paths_under, scrape, try_scrape, write};

    #[test]
    fn commit_stats() {
        let s = parse_commit_stats(
            "commits 10\nlast_commit_ms 20\nmax_commit_ms 300\ntotal_commit_ms 4000\nnew_key 1\n",
        )
        .unwrap();
        assert_eq!(
            s,
            CommitStats {
                commits: 10.0,
                last_commit_ms: 20.0,
                max_commit_ms: 300.0,
                total_commit_ms: 4000.0
            }
        );
        assert!(parse_commit_stats("commits many\n").is_err());
    }

    #[test]
    fn ratios() {
        assert_eq!(allocation_ratio("single", 1), 1.0);
        assert_eq!(allocation_ratio("raid10", 4), 2.0);
        assert_eq!(allocation_ratio("raid5", 4), 4.0 / 3.0);
        assert_eq!(allocation_ratio("raid6", 4), 2.0);
        assert_eq!(allocation_ratio("raid1c3", 3), 0.0);
    }

    #[test]
    fn reads_a_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_under(dir.path());
        assert!(scrape(build("btrfs", &paths).as_ref()).is_empty());
        let fs = "fs/btrfs/1111-2222";
        for (rel, text) in [
            ("label", "home\n"),
            ("allocation/global_rsv_size", "1024\n"),
            ("allocation/data/bytes_reserved", "0\n"),
            ("allocation/data/single/total_bytes", "4096\n"),
            ("allocation/data/single/used_bytes", "2048\n"),
            ("allocation/metadata/bytes_reserved", "8\n"),
            ("allocation/metadata/dup/total_bytes", "100\n"),
            ("allocation/metadata/dup/used_bytes", "50\n"),
            ("devices/sda2/size", "2048\n"),
        ] {
            write(dir.path(), &format!("{fs}/{rel}"), text);
        }
        let out = scrape(build("btrfs", &paths).as_ref());
        let fam = |name: &str| out.iter().find(|f| f.name == name).unwrap();
        assert_eq!(fam("node_btrfs_info").metrics[0].labels[1].1, "home");
        assert_eq!(fam("node_btrfs_size_bytes").metrics.len(), 2);
        assert_eq!(
            fam("node_btrfs_device_size_bytes").metrics[0].value,
            oxmon_core::metrics::Value::Single(1_048_576.0)
        );
        assert_eq!(
            fam("node_btrfs_commits_total").metrics[0].value,
            oxmon_core::metrics::Value::Single(0.0)
        );
        write(
            dir.path(),
            &format!("{fs}/allocation/global_rsv_size"),
            "x\n",
        );
        let (_, result) = try_scrape(build("btrfs", &paths).as_ref());
        assert!(result.is_err());
    }
}

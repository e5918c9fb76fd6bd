//! diskstats — block device I/O from `/proc/diskstats`, device identity from
//! the udev database (`--path.udev.data`) and `<sysfs>/block/<dev>/queue/rotational`.
//!
//! Metrics (labels `device`): `node_disk_reads_completed_total`,
//! `node_disk_reads_merged_total`, `node_disk_read_bytes_total`,
//! `node_disk_read_time_seconds_total`, `node_disk_writes_completed_total`,
//! `node_disk_writes_merged_total`, `node_disk_written_bytes_total`,
//! `node_disk_write_time_seconds_total`, `node_disk_io_now` (gauge),
//! `node_disk_io_time_seconds_total`, `node_disk_io_time_weighted_seconds_total`,
//! and where the kernel has them (4.18+, 5.5+) `node_disk_discards_completed_total`,
//! `node_disk_discards_merged_total`, `node_disk_discarded_sectors_total`,
//! `node_disk_discard_time_seconds_total`, `node_disk_flush_requests_total`,
//! `node_disk_flush_requests_time_seconds_total` — only as many as the
//! kernel reports for that line. Sectors are 512 bytes, times are ms.
//! Info gauges: `node_disk_info{device,major,minor,path,wwn,model,serial,revision,rotational}`,
//! `node_disk_filesystem_info{device,type,usage,uuid,version}` (udev `ID_FS_*`),
//! `node_disk_device_mapper_info{device,name,uuid,vg_name,lv_name,lv_layer}`
//! (udev `DM_*`), and for ATA disks `node_disk_ata_write_cache`,
//! `node_disk_ata_write_cache_enabled`, `node_disk_ata_rotation_rate_rpm`.
//!
//! Flags: `--collector.diskstats.device-exclude` (default
//! `^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`) or
//! `--collector.diskstats.device-include` (mutually exclusive). On by default.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::parse_f64;
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::device_filter::DeviceFilter;
use crate::file_cache::{lines, read_optional, FileCache};
use crate::malformed::Malformed;
use crate::paths::Paths;

/// node_exporter's default for `--collector.diskstats.device-exclude`.
pub const DEFAULT_DEVICE_EXCLUDE: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";

/// Flags of the diskstats collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regex of block devices to ignore for diskstats
    /// [default: ^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$].
    #[arg(
        id = "collector.diskstats.device-exclude",
        long = "collector.diskstats.device-exclude",
        alias = "collector.diskstats.ignored-devices",
        value_name = "REGEX"
    )]
    pub device_exclude: Option<String>,

    /// Regex of block devices to include (mutually exclusive with
    /// --collector.diskstats.device-exclude).
    #[arg(
        id = "collector.diskstats.device-include",
        long = "collector.diskstats.device-include",
        value_name = "REGEX"
    )]
    pub device_include: Option<String>,
}

/// One `/proc/diskstats` line.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskLine<'a> {
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// Device name.
    pub device: &'a str,
    /// The statistic columns (11, 15 or 17 of them).
    pub stats: Vec<u64>,
}

/// Parses `/proc/diskstats`; a line that is not major, minor, name and at
/// least 11 numbers is left out and noted (node_exporter fails on it).
pub fn parse_diskstats(text: &str) -> (Vec<DiskLine<'_>>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_ascii_whitespace();
        let (Some(Ok(major)), Some(Ok(minor)), Some(device)) = (
            parts.next().map(str::parse),
            parts.next().map(str::parse),
            parts.next(),
        ) else {
            bad.line(i + 1, line, "expected major, minor and device name");
            continue;
        };
        match parts.map(str::parse).collect::<Result<Vec<u64>, _>>() {
            Ok(stats) if stats.len() >= 11 => out.push(DiskLine {
                major,
                minor,
                device,
                stats,
            }),
            Ok(stats) => bad.line(
                i + 1,
                line,
                format!("{} statistics, expected at least 11", stats.len()),
            ),
            Err(_) => bad.line(i + 1, line, "a statistic is not a number"),
        }
    }
    (out, bad)
}

/// Parses a udev database file: its `E:KEY=value` properties.
pub fn parse_udev(text: &str) -> HashMap<&str, &str> {
    lines(text)
        .filter_map(|l| l.strip_prefix("E:")?.split_once('='))
        .collect()
}

/// Column → metric: name, help, gauge?, scale.
type Column = (&'static str, &'static str, bool, f64);

const SECTOR: f64 = 512.0;
const MS: f64 = 0.001;

const COLUMNS: [Column; 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        false,
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        false,
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        false,
        SECTOR,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        false,
        MS,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        false,
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        false,
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        false,
        SECTOR,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        false,
        MS,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        true,
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        false,
        MS,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        false,
        MS,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        false,
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        false,
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        false,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        false,
        MS,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        false,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        false,
        MS,
    ),
];

const ATA: [(&str, &str, &str); 3] = [
    (
        "ID_ATA_WRITE_CACHE",
        "node_disk_ata_write_cache",
        "ATA disk has a write cache.",
    ),
    (
        "ID_ATA_WRITE_CACHE_ENABLED",
        "node_disk_ata_write_cache_enabled",
        "ATA disk has its write cache enabled.",
    ),
    (
        "ID_ATA_ROTATION_RATE_RPM",
        "node_disk_ata_rotation_rate_rpm",
        "ATA disk rotation rate in RPMs (0 for SSDs).",
    ),
];

struct Diskstats {
    paths: Paths,
    path: PathBuf,
    filter: DeviceFilter,
    udev_available: bool,
    cache: FileCache,
}

/// The device filter from the flags: node_exporter's default exclusion
/// applies unless an include is given.
fn device_filter(f: &Flags) -> Result<DeviceFilter, String> {
    let exclude = match (&f.device_exclude, &f.device_include) {
        (None, None) => Some(DEFAULT_DEVICE_EXCLUDE),
        (exclude, _) => exclude.as_deref(),
    };
    DeviceFilter::new(
        "collector.diskstats.device",
        f.device_include.as_deref(),
        exclude,
    )
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let filter = device_filter(&ctx.options.diskstats)?;
    let udev_available = ctx.paths.udev_data.is_dir();
    if !udev_available {
        tracing::info!(path = %ctx.paths.udev_data.display(), "udev data directory not readable: disk info labels will be empty");
    }
    Ok(sync_collector(Diskstats {
        paths: ctx.paths.clone(),
        path: ctx.paths.proc("diskstats"),
        filter,
        udev_available,
        cache: FileCache::new(),
    }))
}

impl SyncCollector for Diskstats {
    fn name(&self) -> &'static str {
        "diskstats"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        if !read_optional(&mut scope, &self.path, &mut buf, "diskstats")? {
            return Ok(());
        }
        let mut columns: Vec<MetricFamily> = COLUMNS
            .iter()
            .map(|(name, help, gauge, _)| {
                if *gauge {
                    MetricFamily::gauge(*name, *help)
                } else {
                    MetricFamily::counter(*name, *help)
                }
            })
            .collect();
        let mut info = MetricFamily::gauge("node_disk_info", "Info of /sys/block/<block_device>.");
        let mut fs_info =
            MetricFamily::gauge("node_disk_filesystem_info", "Info about disk filesystem.");
        let mut dm_info = MetricFamily::gauge(
            "node_disk_device_mapper_info",
            "Info about disk device mapper.",
        );
        let mut ata: Vec<MetricFamily> = ATA
            .iter()
            .map(|(_, name, help)| MetricFamily::gauge(*name, *help))
            .collect();
        let mut udev_buf = String::new();
        let mut rot_buf = String::new();
        let (disks, bad) = parse_diskstats(&buf);
        for d in disks {
            if self.filter.ignored(d.device) {
                continue;
            }
            udev_buf.clear();
            if self.udev_available {
                let p = self.paths.udev(&format!("b{}:{}", d.major, d.minor));
                if let Err(e) = scope.read_into(&p, &mut udev_buf) {
                    tracing::debug!(device = d.device, err = %e, "no udev info");
                    udev_buf.clear();
                }
            }
            let udev = parse_udev(&udev_buf);
            let get = |k: &str| udev.get(k).copied().unwrap_or("");
            let serial = ["SCSI_IDENT_SERIAL", "ID_SERIAL_SHORT", "ID_SERIAL"]
                .iter()
                .map(|k| get(k))
                .find(|v| !v.is_empty())
                .unwrap_or("");
            let rot_path = self
                .paths
                .sys(&format!("block/{}/queue/rotational", d.device));
            let rotational = match scope.read_into(&rot_path, &mut rot_buf) {
                Ok(()) if rot_buf.trim() == "1" => "1",
                _ => "0",
            };
            info.add(
                &[
                    ("device", d.device),
                    ("major", &d.major.to_string()),
                    ("minor", &d.minor.to_string()),
                    ("path", get("ID_PATH")),
                    ("wwn", get("ID_WWN")),
                    ("model", get("ID_MODEL")),
                    ("serial", serial),
                    ("revision", get("ID_REVISION")),
                    ("rotational", rotational),
                ],
                1.0,
            );
            for ((_, _, _, scale), (family, v)) in
                COLUMNS.iter().zip(columns.iter_mut().zip(&d.stats))
            {
                family.add(&[("device", d.device)], *v as f64 * scale);
            }
            let fs_type = get("ID_FS_TYPE");
            if !fs_type.is_empty() {
                fs_info.add(
                    &[
                        ("device", d.device),
                        ("type", fs_type),
                        ("usage", get("ID_FS_USAGE")),
                        ("uuid", get("ID_FS_UUID")),
                        ("version", get("ID_FS_VERSION")),
                    ],
                    1.0,
                );
            }
            let dm_name = get("DM_NAME");
            if !dm_name.is_empty() {
                dm_info.add(
                    &[
                        ("device", d.device),
                        ("name", dm_name),
                        ("uuid", get("DM_UUID")),
                        ("vg_name", get("DM_VG_NAME")),
                        ("lv_name", get("DM_LV_NAME")),
                        ("lv_layer", get("DM_LV_LAYER")),
                    ],
                    1.0,
                );
            }
            if !get("ID_ATA").is_empty() {
                for ((key, _, _), family) in ATA.iter().zip(ata.iter_mut()) {
                    let Some(raw) = udev.get(key) else { continue };
                    match parse_f64(raw) {
                        Ok(v) => {
                            family.add(&[("device", d.device)], v);
                        }
                        Err(_) => {
                            tracing::warn!(
                                device = d.device,
                                attribute = key,
                                value = raw,
                                "unparsable udev ATA value"
                            );
                        }
                    }
                }
            }
        }
        out.extend(columns);
        out.push(info);
        out.push(fs_info);
        out.push(dm_info);
        out.extend(ata);
        bad.into_result(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing;

    /// udev rewrites a device's database file by renaming a new one over
    /// it (a change event, a new partition table); the next scrape shows
    /// the new labels.
    #[test]
    fn udev_data_replaced_by_rename_shows_on_the_next_scrape() {
        let root = tempfile::tempdir().unwrap();
        testing::copy_fixture(root.path(), "proc/diskstats");
        testing::copy_fixture(root.path(), "udev/data/b8:0");
        let paths = Paths {
            procfs: root.path().join("proc"),
            udev_data: root.path().join("udev/data"),
            ..testing::paths_under(root.path())
        };
        let disks = testing::build("diskstats", &paths);
        let fs_type =
            |out: &[MetricFamily]| testing::first_label(out, "node_disk_filesystem_info", "type");
        assert_eq!(fs_type(&testing::scrape(&*disks)), "LVM2_member");
        let udev = root.path().join("udev/data/b8:0");
        let changed = std::fs::read_to_string(&udev)
            .unwrap()
            .replace("ID_FS_TYPE=LVM2_member", "ID_FS_TYPE=ext4");
        testing::replace_by_rename(&udev, &changed);
        assert_eq!(fs_type(&testing::scrape(&*disks)), "ext4");
    }

    #[test]
    fn diskstats_lines() {
        let text = " 259 0 nvme0n1 10 1 80 5 20 2 160 7 0 12 13 3 0 24 1 4 2\n   8  0 sdz 1 2 3 4 5 6 7 8 9 10 11\n 7 0 loop0 1 2\n";
        let (got, bad) = parse_diskstats(text);
        assert_eq!(got.len(), 2);
        assert_eq!(
            bad.to_string(),
            "line 3 \" 7 0 loop0 1 2\": 2 statistics, expected at least 11"
        );
        assert_eq!(got[0].device, "nvme0n1");
        assert_eq!(got[0].major, 259);
        assert_eq!(got[0].stats.len(), 17);
        assert_eq!(got[1].stats[10], 11);
    }

    #[test]
    fn udev_properties() {
        let u = parse_udev("S:disk/by-id/x\nE:ID_MODEL=Disk\nE:ID_FS_VERSION=1.0\nE:BROKEN\nW:3\n");
        assert_eq!(u.get("ID_MODEL"), Some(&"Disk"));
        assert_eq!(u.get("ID_FS_VERSION"), Some(&"1.0"));
        assert_eq!(u.len(), 2);
    }

    #[test]
    fn default_filter() {
        let f = device_filter(&testing::options(&[]).diskstats).unwrap();
        for dev in ["sda", "nvme0n1", "dm-0", "vda", "mmcblk0"] {
            assert!(!f.ignored(dev), "{dev}");
        }
        for dev in ["sda1", "nvme0n1p2", "loop3", "ram0", "zram0", "fd0"] {
            assert!(f.ignored(dev), "{dev}");
        }
        let args = ["--collector.diskstats.device-include=^sd"];
        let f = device_filter(&testing::options(&args).diskstats).unwrap();
        assert!(!f.ignored("sda1"), "no default exclusion with an include");
        assert!(f.ignored("nvme0n1"));
    }
}

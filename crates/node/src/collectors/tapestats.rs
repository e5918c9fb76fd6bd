//! tapestats: SCSI tape drive statistics.
//!
//! Source: `<sysfs>/class/scsi_tape/st<N>/stats/*` (only the `st<N>`
//! entries: `nst0`, `st0a` … are other views of the same drive). Metrics,
//! labelled `device`: the gauge `node_tape_io_now` and the counters
//! `node_tape_{io_time_seconds,io_others,read_bytes,reads_completed,
//! read_time_seconds,residual,write_time_seconds,writes_completed,
//! written_bytes}_total` (times converted from nanoseconds).
//! On by default. Flag: `--collector.tapestats.ignored-devices` (regex,
//! default `^$`). Without tape drives it reports nothing and looks for
//! `class/scsi_tape` again once a minute.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};
use regex::Regex;

use crate::collectors::Ctx;
use crate::device_filter::compile_regex;
use crate::dir_listing::AbsentSource;
use crate::file_cache::{is_missing, parse_uint_auto, FileCache};

/// Flags of the tapestats collector (node_exporter's name and default).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regexp of devices to ignore for tapestats.
    #[arg(
        id = "collector.tapestats.ignored-devices",
        long = "collector.tapestats.ignored-devices",
        value_name = "REGEX",
        default_value = "^$"
    )]
    pub ignored_devices: String,
}

/// `(stats file, metric name, help, factor)`; the first is a gauge, the
/// rest are counters.
pub const STATS: &[(&str, &str, &str, f64)] = &[
    ("in_flight", "node_tape_io_now", "The number of I/Os currently outstanding to this device.", 1.0),
    ("io_ns", "node_tape_io_time_seconds_total", "The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used.", 1e-9),
    ("other_cnt", "node_tape_io_others_total", "The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total", 1.0),
    ("read_byte_cnt", "node_tape_read_bytes_total", "The number of bytes read from the tape drive.", 1.0),
    ("read_cnt", "node_tape_reads_completed_total", "The number of read requests issued to the tape drive.", 1.0),
    ("read_ns", "node_tape_read_time_seconds_total", "The amount of time spent waiting for read requests to complete.", 1e-9),
    ("resid_cnt", "node_tape_residual_total", "The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape.", 1.0),
    ("write_byte_cnt", "node_tape_written_bytes_total", "The number of bytes written to the tape drive.", 1.0),
    ("write_cnt", "node_tape_writes_completed_total", "The number of write requests issued to the tape drive.", 1.0),
    ("write_ns", "node_tape_write_time_seconds_total", "The amount of time spent waiting for write requests to complete.", 1e-9),
];

/// True for the entries of `class/scsi_tape` that are drives (`st0`), not
/// their other device nodes (`nst0`, `st0a`, `st0l`, `st0m`).
pub fn is_drive(name: &str) -> bool {
    name.strip_prefix("st")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The tapestats collector.
pub struct Tapestats {
    class: PathBuf,
    ignored: Regex,
    absent: AbsentSource,
    cache: FileCache,
}

impl SyncCollector for Tapestats {
    fn name(&self) -> &'static str {
        "tapestats"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let Some(entries) = self.absent.entries(&self.class)? else {
            tracing::debug!(path = %self.class.display(), "scsi_tape stats not found");
            return Ok(());
        };
        let mut families: Vec<MetricFamily> = STATS
            .iter()
            .enumerate()
            .map(|(i, (_, name, help, _))| {
                if i == 0 {
                    MetricFamily::gauge(*name, *help)
                } else {
                    MetricFamily::counter(*name, *help)
                }
            })
            .collect();
        let mut scope = self.cache.scope();
        let mut result = Ok(());
        for (name, _) in entries {
            if !is_drive(&name) || self.ignored.is_match(&name) {
                continue;
            }
            let stats = self.class.join(&name).join("stats");
            for (i, (file, _, _, factor)) in STATS.iter().enumerate() {
                let path = stats.join(file);
                match scope.attr(&path) {
                    Ok(b) => match std::str::from_utf8(b).ok().and_then(parse_uint_auto) {
                        Some(v) => {
                            families[i].add(&[("device", &name)], v as f64 * factor);
                        }
                        None => {
                            result = Err(format!(
                                "{}: not a number: {:?}",
                                path.display(),
                                String::from_utf8_lossy(&b[..b.len().min(40)])
                            )
                            .into());
                        }
                    },
                    Err(e) if is_missing(&e) => {}
                    Err(e) => result = Err(format!("reading {}: {e}", path.display()).into()),
                }
            }
        }
        out.extend(families);
        result
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let flags = &ctx.options.tapestats;
    Ok(sync_collector(Tapestats {
        class: ctx.paths.sys("class/scsi_tape"),
        ignored: compile_regex(
            "collector.tapestats.ignored-devices",
            &flags.ignored_devices,
        )?,
        absent: AbsentSource::default(),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build_with, paths_under, scrape, try_scrape};

    #[test]
    fn drive_names() {
        assert!(is_drive("st0"));
        assert!(is_drive("st12"));
        assert!(!is_drive("nst0"));
        assert!(!is_drive("st0a"));
        assert!(!is_drive("st"));
    }

    #[test]
    fn reads_drives_scales_times_and_honours_the_ignore_flag() {
        let dir = tempfile::tempdir().unwrap();
        for drive in ["st0", "st1", "nst0"] {
            let stats = dir.path().join("class/scsi_tape").join(drive).join("stats");
            std::fs::create_dir_all(&stats).unwrap();
            std::fs::write(stats.join("io_ns"), "1500000000\n").unwrap();
            std::fs::write(stats.join("read_cnt"), "7\n").unwrap();
        }
        let paths = paths_under(dir.path());
        let out = scrape(&*build_with(
            "tapestats",
            &paths,
            &["--collector.tapestats.ignored-devices=^st1$"],
        ));
        let io = out
            .iter()
            .find(|f| f.name == "node_tape_io_time_seconds_total")
            .unwrap();
        assert_eq!(io.metrics.len(), 1, "only st0: nst0 is a view, st1 ignored");
        assert_eq!(io.metrics[0].value, oxmon_core::metrics::Value::Single(1.5));
        std::fs::write(dir.path().join("class/scsi_tape/st0/stats/read_cnt"), "x\n").unwrap();
        let (_, result) = try_scrape(&*build_with("tapestats", &paths, &[]));
        assert!(result.unwrap_err().to_string().contains("read_cnt"));
    }
}

//! fibrechannel: Fibre Channel host bus adapters.
//!
//! Source: `<sysfs>/class/fc_host/<host>/` (`speed`, `port_state`,
//! `port_type`, `port_id`, `port_name`, `fabric_name`, `symbolic_name`,
//! `supported_classes`, `supported_speeds`, `dev_loss_tmo`) and its
//! `statistics/` counters (hexadecimal).
//! Metrics, labelled `fc_host`: `node_fibrechannel_info{…}` (the attributes
//! above, `0x` dropped from the identifiers, empty when the driver does not
//! expose one) and the counters of [`COUNTERS`]
//! (`node_fibrechannel_rx_frames_total`, `…_link_failure_total` …). A
//! counter of all ones is one the HBA firmware does not implement and is
//! left out, as is a counter file the driver does not have.
//! On by default; no flags. Without Fibre Channel it reports nothing and
//! looks for `class/fc_host` again once a minute. Reading the statistics
//! makes the driver query the adapter, so the collector runs on its own
//! blocking lane.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::blocking::{blocking_collector, BlockingCollector};
use oxmon_core::collector::{CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::AbsentSource;
use crate::file_cache::{is_missing, parse_uint_auto, CacheScope, FileCache};
use crate::paths::Paths;

/// `(statistics file, metric name after node_fibrechannel_, help)`.
pub const COUNTERS: &[(&str, &str, &str)] = &[
    (
        "dumped_frames",
        "dumped_frames_total",
        "Number of dumped frames",
    ),
    (
        "error_frames",
        "error_frames_total",
        "Number of errors in frames",
    ),
    (
        "invalid_crc_count",
        "invalid_crc_total",
        "Invalid Cyclic Redundancy Check count",
    ),
    ("rx_frames", "rx_frames_total", "Number of frames received"),
    (
        "rx_words",
        "rx_words_total",
        "Number of words received by host port",
    ),
    (
        "tx_frames",
        "tx_frames_total",
        "Number of frames transmitted by host port",
    ),
    (
        "tx_words",
        "tx_words_total",
        "Number of words transmitted by host port",
    ),
    (
        "seconds_since_last_reset",
        "seconds_since_last_reset_total",
        "Number of seconds since last host port reset",
    ),
    (
        "invalid_tx_word_count",
        "invalid_tx_words_total",
        "Number of invalid words transmitted by host port",
    ),
    (
        "link_failure_count",
        "link_failure_total",
        "Number of times the host port link has failed",
    ),
    (
        "loss_of_sync_count",
        "loss_of_sync_total",
        "Number of failures on either bit or transmission word boundaries",
    ),
    (
        "loss_of_signal_count",
        "loss_of_signal_total",
        "Number of times signal has been lost",
    ),
    (
        "nos_count",
        "nos_total",
        "Number Not_Operational Primitive Sequence received by host port",
    ),
    (
        "fcp_packet_aborts",
        "fcp_packet_aborts_total",
        "Number of aborted packets",
    ),
];

/// The host attributes of the info metric, as `(file, label)`; the
/// identifiers among them lose their `0x` prefix.
const INFO: &[(&str, &str)] = &[
    ("speed", "speed"),
    ("port_state", "port_state"),
    ("port_type", "port_type"),
    ("port_id", "port_id"),
    ("port_name", "port_name"),
    ("fabric_name", "fabric_name"),
    ("symbolic_name", "symbolic_name"),
    ("supported_classes", "supported_classes"),
    ("supported_speeds", "supported_speeds"),
    ("dev_loss_tmo", "dev_loss_tmo"),
];

/// An identifier attribute (`0x1000e0071bce95f2`) without its `0x`, as
/// node_exporter shows it (it drops the first two characters of anything
/// longer than two).
pub fn strip_hex_prefix(value: &str) -> &str {
    if value.len() > 2 && value.is_char_boundary(2) {
        &value[2..]
    } else {
        value
    }
}

/// A statistics counter: `Ok(None)` for all ones (not implemented by the
/// firmware), an error when it is not a number.
pub fn parse_statistic(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    match parse_uint_auto(t) {
        Some(u64::MAX) => Ok(None),
        Some(v) => Ok(Some(v)),
        None => Err(format!(
            "not a counter: {:?}",
            t.chars().take(40).collect::<String>()
        )),
    }
}

/// The fibrechannel collector.
pub struct FibreChannel {
    class: PathBuf,
    absent: AbsentSource,
    cache: FileCache,
}

impl FibreChannel {
    /// Reads under the given sysfs.
    pub fn new(paths: &Paths) -> Self {
        FibreChannel {
            class: paths.sys("class/fc_host"),
            absent: AbsentSource::default(),
            cache: FileCache::remembering_missing(),
        }
    }

    fn host(
        &self,
        scope: &mut CacheScope<'_>,
        host: &str,
        info: &mut MetricFamily,
        counters: &mut [MetricFamily],
    ) -> Result<(), String> {
        let dir = self.class.join(host);
        let mut labels: Vec<(
            oxmon_core::metrics::LabelName,
            oxmon_core::metrics::LabelValue,
        )> = vec![("fc_host".into(), host.into())];
        for (file, label) in INFO {
            let path = dir.join(file);
            let value = match scope.attr(&path) {
                Ok(b) => String::from_utf8_lossy(b).trim().to_string(),
                // Drivers leave out attributes they do not support.
                Err(e) if is_missing(&e) => String::new(),
                Err(e) => return Err(format!("reading {}: {e}", path.display())),
            };
            let value = match *file {
                "port_id" | "port_name" | "fabric_name" => strip_hex_prefix(&value).to_string(),
                _ => value,
            };
            labels.push(((*label).into(), value.into()));
        }
        info.add_owned(labels, 1.0);
        let stats = dir.join("statistics");
        for (i, (file, _, _)) in COUNTERS.iter().enumerate() {
            let path = stats.join(file);
            let text = match scope.attr(&path) {
                Ok(b) => String::from_utf8_lossy(b).into_owned(),
                Err(e) if is_missing(&e) => continue,
                // Write-only or unsupported statistics.
                Err(e)
                    if e.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error())
                        || e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
                {
                    continue
                }
                Err(e) => return Err(format!("reading {}: {e}", path.display())),
            };
            if let Some(v) =
                parse_statistic(&text).map_err(|e| format!("{}: {e}", path.display()))?
            {
                counters[i].add(&[("fc_host", host)], v as f64);
            }
        }
        Ok(())
    }
}

impl BlockingCollector for FibreChannel {
    type Found = Vec<(String, std::fs::FileType)>;

    fn name(&self) -> &'static str {
        "fibrechannel"
    }

    fn check(&self, _: &ScrapeContext) -> Result<Option<Self::Found>, CollectError> {
        let found = self.absent.entries(&self.class)?;
        if found.is_none() {
            tracing::debug!(path = %self.class.display(), "fibrechannel statistics not found");
        }
        Ok(found.filter(|d| !d.is_empty()))
    }

    fn collect(
        &self,
        _: &ScrapeContext,
        hosts: Self::Found,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut info = MetricFamily::gauge(
            "node_fibrechannel_info",
            "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
        );
        let mut counters: Vec<MetricFamily> = COUNTERS
            .iter()
            .map(|(_, metric, help)| {
                MetricFamily::counter(format!("node_fibrechannel_{metric}"), *help)
            })
            .collect();
        let mut result = Ok(());
        for (host, _) in hosts {
            if let Err(e) = self.host(&mut scope, &host, &mut info, &mut counters) {
                result = Err(e.into());
            }
        }
        out.push(info);
        out.extend(counters);
        result
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(blocking_collector(FibreChannel::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{paths_under, scrape, single, try_scrape};

    #[test]
    fn identifiers_and_counters() {
        assert_eq!(strip_hex_prefix("0x000002"), "000002");
        assert_eq!(strip_hex_prefix("0x0"), "0");
        assert_eq!(strip_hex_prefix("0x"), "0x");
        assert_eq!(strip_hex_prefix("é€"), "€");
        assert_eq!(parse_statistic("0x13\n"), Ok(Some(19)));
        assert_eq!(parse_statistic("0xffffffffffffffff"), Ok(None));
        assert!(parse_statistic("0xzz").is_err());
    }

    #[test]
    fn reads_hosts_and_fails_on_a_bad_counter() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("class/fc_host/host3");
        std::fs::create_dir_all(host.join("statistics")).unwrap();
        std::fs::write(host.join("port_name"), "0x21000024ff7a1b2c\n").unwrap();
        std::fs::write(host.join("port_state"), "Linkdown\n").unwrap();
        std::fs::write(host.join("statistics/link_failure_count"), "0x2\n").unwrap();
        std::fs::write(host.join("statistics/nos_count"), "0xffffffffffffffff\n").unwrap();
        let c = blocking_collector(FibreChannel::new(&paths_under(dir.path())));
        let out = scrape(&*c);
        let fam = |n: &str| out.iter().find(|f| f.name == n);
        let info = &fam("node_fibrechannel_info").unwrap().metrics[0];
        assert!(info
            .labels
            .iter()
            .any(|(k, v)| k == "port_name" && v == "21000024ff7a1b2c"));
        assert!(info
            .labels
            .iter()
            .any(|(k, v)| k == "speed" && v.is_empty()));
        assert_eq!(
            fam("node_fibrechannel_link_failure_total")
                .unwrap()
                .metrics
                .len(),
            1
        );
        assert!(single(&out, "node_fibrechannel_nos_total", &[]).is_none());
        std::fs::write(host.join("statistics/rx_frames"), "many\n").unwrap();
        let c = blocking_collector(FibreChannel::new(&paths_under(dir.path())));
        let (out, result) = try_scrape(&*c);
        assert!(result.unwrap_err().to_string().contains("rx_frames"));
        assert!(out.iter().any(|f| f.name == "node_fibrechannel_info"));
    }
}

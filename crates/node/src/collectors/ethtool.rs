//! ethtool: driver information, link modes and driver statistics of each
//! network device, from the `SIOCETHTOOL` ioctl (through
//! `oxmon_sys::EthtoolSocket`); devices are the entries of
//! `<sysfs>/class/net`.
//!
//! Metrics (label `device`):
//! - `node_ethtool_info{bus_info,driver,expansion_rom_version,firmware_version,version}` (gauge 1);
//! - every driver statistic as `node_ethtool_<name>` (untyped), the name
//!   lower-cased with runs of other characters made `_` and `rx`/`tx` words
//!   spelled `received`/`transmitted`; `rx_bytes`, `rx_dropped`,
//!   `rx_errors`, `rx_packets`, `tx_bytes`, `tx_errors`, `tx_packets` get
//!   a `_total` suffix and node_exporter's help texts; names that clash
//!   after this on one device are all left out;
//! - from the legacy 32-bit link mode masks (`ETHTOOL_GSET`), gauges
//!   `node_network_supported_speed_bytes{duplex,mode}`,
//!   `node_network_advertised_speed_bytes{duplex,mode}`,
//!   `node_network_supported_port_info{type}`,
//!   `node_network_{autonegotiate,pause,asymmetricpause}_{supported,advertised}`
//!   and `node_network_autonegotiate`.
//!
//! Off by default. Flags: `--collector.ethtool.device-include` /
//! `--collector.ethtool.device-exclude` (mutually exclusive),
//! `--collector.ethtool.metrics-include` (default `.*`, matched against the
//! statistic's sanitized name). A driver without an operation
//! (`EOPNOTSUPP`, most virtual devices) is skipped quietly; other errors are
//! logged when they start or change, and the collector still succeeds, as
//! in node_exporter. No `<sysfs>/class/net` means nothing to report.
//! The ioctls take the kernel's RTNL lock, so the collector runs on its own
//! blocking lane.
//!
//! Differs from node_exporter on purpose: a statistic whose name needed
//! sanitizing is exported with its value (node_exporter looks the value up
//! under the sanitized name and exports 0).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use oxmon_core::blocking::{blocking_collector, BlockingCollector};
use oxmon_core::collector::{CollectError, CollectResult, ScrapeContext};
use oxmon_core::logging::{FailureLog, FailureSubject};
use oxmon_core::{Collector, MetricFamily};
use oxmon_sys::{EthtoolSocket, ETH_GSTRING_LEN};
use regex::Regex;

use crate::collectors::Ctx;
use crate::device_filter::{compile_regex, DeviceFilter};
use crate::dir_listing::dir_entries;

/// Flags of the ethtool collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regexp of ethtool devices to include (mutually exclusive to
    /// device-exclude).
    #[arg(
        id = "collector.ethtool.device-include",
        long = "collector.ethtool.device-include",
        value_name = "REGEX"
    )]
    pub device_include: Option<String>,
    /// Regexp of ethtool devices to exclude (mutually exclusive to
    /// device-include).
    #[arg(
        id = "collector.ethtool.device-exclude",
        long = "collector.ethtool.device-exclude",
        value_name = "REGEX"
    )]
    pub device_exclude: Option<String>,
    /// Regexp of ethtool stats to include.
    #[arg(
        id = "collector.ethtool.metrics-include",
        long = "collector.ethtool.metrics-include",
        value_name = "REGEX",
        default_value = ".*"
    )]
    pub metrics_include: String,
}

/// `struct ethtool_drvinfo`, the strings node_exporter labels with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriverInfo {
    /// Driver name.
    pub driver: String,
    /// Driver version.
    pub version: String,
    /// Firmware version.
    pub firmware_version: String,
    /// Bus address (`0000:00:03.0`).
    pub bus_info: String,
    /// Expansion ROM version.
    pub expansion_rom_version: String,
    /// Number of driver statistics.
    pub n_stats: u32,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A fixed-size C string field: up to the first NUL, invalid UTF-8 replaced.
fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Parses `struct ethtool_drvinfo`; `None` when shorter than the struct.
pub fn parse_driver_info(b: &[u8]) -> Option<DriverInfo> {
    let field = |at: usize| Some(c_string(b.get(at..at + 32)?));
    Some(DriverInfo {
        driver: field(4)?,
        version: field(36)?,
        firmware_version: field(68)?,
        bus_info: field(100)?,
        expansion_rom_version: field(132)?,
        n_stats: u32_at(b, 180)?,
    })
}

/// The parts of `struct ethtool_cmd` node_exporter reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkModes {
    /// Supported link modes (bits of `ethtool_link_mode_bit_indices`).
    pub supported: u32,
    /// Advertised link modes.
    pub advertising: u32,
    /// Autonegotiation in use (`AUTONEG_ENABLE` = 1).
    pub autoneg: u8,
}

/// Parses `struct ethtool_cmd`; `None` when too short.
pub fn parse_link_modes(b: &[u8]) -> Option<LinkModes> {
    Some(LinkModes {
        supported: u32_at(b, 4)?,
        advertising: u32_at(b, 8)?,
        autoneg: *b.get(18)?,
    })
}

/// Parses `struct ethtool_gstrings`: as many names as the header says and
/// the buffer holds.
pub fn parse_stat_names(b: &[u8]) -> Vec<String> {
    let n = u32_at(b, 8).unwrap_or(0) as usize;
    b.get(12..)
        .unwrap_or_default()
        .chunks_exact(ETH_GSTRING_LEN)
        .take(n)
        .map(c_string)
        .collect()
}

/// Parses `struct ethtool_stats`: as many values as the header says and
/// the buffer holds.
pub fn parse_stat_values(b: &[u8]) -> Vec<u64> {
    let n = u32_at(b, 4).unwrap_or(0) as usize;
    (0..n).map_while(|i| u64_at(b, 8 + i * 8)).collect()
}

/// Statistic names with their values, the last of repeated names winning
/// (as node_exporter's library builds its map).
pub fn pair_stats(names: Vec<String>, values: &[u64]) -> BTreeMap<String, u64> {
    names.into_iter().zip(values.iter().copied()).collect()
}

static NON_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"_*[^0-9A-Za-z_]+_*").expect("valid regex"));
static RX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(^|_)rx(_|$)").expect("valid regex"));
static TX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(^|_)tx(_|$)").expect("valid regex"));

/// node_exporter's sanitized statistic name (what `metrics-include` sees).
pub fn sanitize(name: &str) -> String {
    NON_WORD.replace_all(name, "_").into_owned()
}

/// The metric name of a sanitized statistic name.
pub fn metric_name(sanitized: &str) -> String {
    let lower = sanitized.to_lowercase();
    let trimmed = lower.trim_start_matches('_');
    let received = RX.replace_all(trimmed, "${1}received${2}");
    let named = TX.replace_all(&received, "${1}transmitted${2}");
    if named.is_empty() {
        "node_ethtool".to_string()
    } else {
        format!("node_ethtool_{named}")
    }
}

/// The statistics node_exporter names itself: sanitized name, metric, help.
const KNOWN_STATS: [(&str, &str, &str); 7] = [
    (
        "rx_bytes",
        "node_ethtool_received_bytes_total",
        "Network interface bytes received",
    ),
    (
        "rx_dropped",
        "node_ethtool_received_dropped_total",
        "Number of received frames dropped",
    ),
    (
        "rx_errors",
        "node_ethtool_received_errors_total",
        "Number of received frames with errors",
    ),
    (
        "rx_packets",
        "node_ethtool_received_packets_total",
        "Network interface packets received",
    ),
    (
        "tx_bytes",
        "node_ethtool_transmitted_bytes_total",
        "Network interface bytes sent",
    ),
    (
        "tx_errors",
        "node_ethtool_transmitted_errors_total",
        "Number of sent frames with errors",
    ),
    (
        "tx_packets",
        "node_ethtool_transmitted_packets_total",
        "Network interface packets sent",
    ),
];

/// One exported statistic: metric name, help text, value.
#[derive(Debug, Clone, PartialEq)]
pub struct StatSample {
    /// `node_ethtool_…`.
    pub metric: String,
    /// Help text.
    pub help: String,
    /// The counter's value.
    pub value: u64,
}

/// The statistics of one device as node_exporter exports them: filtered by
/// `include` on the sanitized name, renamed, clashing names dropped,
/// sorted by metric name.
pub fn stat_samples(stats: &BTreeMap<String, u64>, include: &Regex) -> Vec<StatSample> {
    let mut by_metric: BTreeMap<String, Option<StatSample>> = BTreeMap::new();
    for (raw, value) in stats {
        let sanitized = sanitize(raw);
        if !include.is_match(&sanitized) {
            continue;
        }
        let (metric, help) = match KNOWN_STATS.iter().find(|k| k.0 == sanitized) {
            Some((_, metric, help)) => (metric.to_string(), help.to_string()),
            None => (
                metric_name(&sanitized),
                format!("Network interface {sanitized}"),
            ),
        };
        let sample = StatSample {
            metric: metric.clone(),
            help,
            value: *value,
        };
        by_metric
            .entry(metric)
            .and_modify(|s| *s = None)
            .or_insert(Some(sample));
    }
    by_metric.into_values().flatten().collect()
}

const MBPS_IN_BYTES: f64 = 1_000_000.0 / 8.0;

/// Link modes in the 32-bit masks that node_exporter reports as speeds:
/// bit, speed in Mb/s, duplex, mode suffix. Bit 15 (2500baseX) is not
/// among them in node_exporter; modes above bit 31 need the newer
/// `ETHTOOL_GLINKSETTINGS`, which node_exporter does not use.
const SPEED_BITS: [(u32, u32, &str, &str); 22] = [
    (0, 10, "half", "T"),
    (1, 10, "full", "T"),
    (2, 100, "half", "T"),
    (3, 100, "full", "T"),
    (4, 1000, "half", "T"),
    (5, 1000, "full", "T"),
    (12, 10000, "full", "T"),
    (17, 1000, "full", "KX"),
    (18, 10000, "full", "KX4"),
    (19, 10000, "full", "KR"),
    (20, 10000, "full", "R_FEC"),
    (21, 20000, "full", "MLD2"),
    (22, 20000, "full", "KR2"),
    (23, 40000, "full", "KR4"),
    (24, 40000, "full", "CR4"),
    (25, 40000, "full", "SR4"),
    (26, 40000, "full", "LR4"),
    (27, 56000, "full", "KR4"),
    (28, 56000, "full", "CR4"),
    (29, 56000, "full", "SR4"),
    (30, 56000, "full", "LR4"),
    (31, 25000, "full", "CR"),
];

/// Port types: bit, `type` label.
const PORT_BITS: [(u32, &str); 6] = [
    (7, "TP"),
    (8, "AUI"),
    (9, "MII"),
    (10, "FIBRE"),
    (11, "BNC"),
    (16, "Backplane"),
];

const AUTONEG_BIT: u32 = 6;
const PAUSE_BIT: u32 = 13;
const ASYM_PAUSE_BIT: u32 = 14;

/// The speeds of a link mode mask: `(duplex, mode, bytes per second)`.
pub fn speeds(mask: u32) -> Vec<(&'static str, String, f64)> {
    SPEED_BITS
        .iter()
        .filter(|(bit, ..)| mask & (1 << bit) != 0)
        .map(|(_, speed, duplex, phy)| {
            (
                *duplex,
                format!("{speed}base{phy}"),
                f64::from(*speed) * MBPS_IN_BYTES,
            )
        })
        .collect()
}

/// The port types of a supported mask.
pub fn port_types(mask: u32) -> Vec<&'static str> {
    PORT_BITS
        .iter()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

fn bit(mask: u32, bit: u32) -> f64 {
    if mask & (1 << bit) != 0 {
        1.0
    } else {
        0.0
    }
}

/// All families of one scrape.
struct Families {
    info: MetricFamily,
    link: BTreeMap<&'static str, MetricFamily>,
    stats: BTreeMap<String, MetricFamily>,
}

impl Families {
    fn new() -> Self {
        Families {
            info: MetricFamily::gauge(
                "node_ethtool_info",
                "A metric with a constant '1' value labeled by bus_info, device, driver, expansion_rom_version, firmware_version, version.",
            ),
            link: BTreeMap::new(),
            stats: BTreeMap::new(),
        }
    }

    fn link(&mut self, name: &'static str, help: &'static str) -> &mut MetricFamily {
        self.link
            .entry(name)
            .or_insert_with(|| MetricFamily::gauge(name, help))
    }

    fn add_link(&mut self, device: &str, m: LinkModes) {
        for (prefix, mask) in [("supported", m.supported), ("advertised", m.advertising)] {
            let (speed, speed_help) = if prefix == "supported" {
                (
                    "node_network_supported_speed_bytes",
                    "Combination of speeds and features supported by network device",
                )
            } else {
                (
                    "node_network_advertised_speed_bytes",
                    "Combination of speeds and features offered by network device",
                )
            };
            for (duplex, mode, v) in speeds(mask) {
                self.link(speed, speed_help).add(
                    &[("device", device), ("duplex", duplex), ("mode", &mode)],
                    v,
                );
            }
            let caps: [(&'static str, &'static str, u32); 3] = if prefix == "supported" {
                [
                    (
                        "node_network_autonegotiate_supported",
                        "If this port device supports autonegotiate",
                        AUTONEG_BIT,
                    ),
                    (
                        "node_network_pause_supported",
                        "If this port device supports pause frames",
                        PAUSE_BIT,
                    ),
                    (
                        "node_network_asymmetricpause_supported",
                        "If this port device supports asymmetric pause frames",
                        ASYM_PAUSE_BIT,
                    ),
                ]
            } else {
                [
                    (
                        "node_network_autonegotiate_advertised",
                        "If this port device offers autonegotiate",
                        AUTONEG_BIT,
                    ),
                    (
                        "node_network_pause_advertised",
                        "If this port device offers pause capability",
                        PAUSE_BIT,
                    ),
                    (
                        "node_network_asymmetricpause_advertised",
                        "If this port device offers asymmetric pause capability",
                        ASYM_PAUSE_BIT,
                    ),
                ]
            };
            for (name, help, b) in caps {
                self.link(name, help)
                    .add(&[("device", device)], bit(mask, b));
            }
        }
        for port in port_types(m.supported) {
            self.link(
                "node_network_supported_port_info",
                "Type of ports or PHYs supported by network device",
            )
            .add(&[("device", device), ("type", port)], 1.0);
        }
        self.link(
            "node_network_autonegotiate",
            "If this port is using autonegotiate",
        )
        .add(&[("device", device)], f64::from(m.autoneg));
    }

    fn add_info(&mut self, device: &str, d: &DriverInfo) {
        self.info.add(
            &[
                ("bus_info", &d.bus_info),
                ("device", device),
                ("driver", &d.driver),
                ("expansion_rom_version", &d.expansion_rom_version),
                ("firmware_version", &d.firmware_version),
                ("version", &d.version),
            ],
            1.0,
        );
    }

    fn add_stats(&mut self, device: &str, samples: Vec<StatSample>) {
        for s in samples {
            self.stats
                .entry(s.metric.clone())
                .or_insert_with(|| MetricFamily::untyped(s.metric, s.help))
                .add(&[("device", device)], s.value as f64);
        }
    }

    fn into_vec(self) -> Vec<MetricFamily> {
        std::iter::once(self.info)
            .chain(self.link.into_values())
            .chain(self.stats.into_values())
            .filter(|f| !f.is_empty())
            .collect()
    }
}

/// The ethtool collector.
pub struct Ethtool {
    net_class: std::path::PathBuf,
    filter: DeviceFilter,
    include: Regex,
    socket: EthtoolSocket,
    failures: FailureLog,
}

impl Ethtool {
    /// Logs a failed request: quietly when the driver lacks the operation
    /// or the device vanished, else when the failure starts or changes.
    fn failed(&self, device: &str, what: &str, e: &std::io::Error) {
        let key = format!("ethtool {what} of {device}");
        match e.raw_os_error() {
            Some(code) if is_expected(code) => {
                tracing::debug!(device, error = %e, "ethtool {what} not available");
            }
            _ => self.failures.failed(&key, &e.to_string()),
        }
    }

    /// Sends the requests for one device; a failed one is logged and its
    /// reply left out.
    fn replies(&self, device: &str) -> Replies {
        let link = self
            .socket
            .link_settings(device)
            .map(|b| b.to_vec())
            .map_err(|e| self.failed(device, "link settings", &e))
            .ok();
        let info = self
            .socket
            .driver_info(device)
            .map(|b| b.to_vec())
            .map_err(|e| self.failed(device, "driver info", &e))
            .ok();
        let n_stats = info
            .as_deref()
            .and_then(parse_driver_info)
            .map_or(0, |i| i.n_stats);
        let stats = (n_stats > 0)
            .then(|| {
                let names = self.socket.stat_names(device, n_stats)?;
                Ok((names, self.socket.stat_values(device, n_stats)?))
            })
            .transpose()
            .map_err(|e: std::io::Error| self.failed(device, "statistics", &e))
            .ok()
            .flatten();
        Replies { link, info, stats }
    }
}

/// The kernel's replies for one device, each `None` when its request
/// failed: `ETHTOOL_GSET`, `ETHTOOL_GDRVINFO`, and `ETHTOOL_GSTRINGS` with
/// `ETHTOOL_GSTATS`.
#[derive(Debug, Clone, Default)]
pub struct Replies {
    /// `struct ethtool_cmd`.
    pub link: Option<Vec<u8>>,
    /// `struct ethtool_drvinfo`.
    pub info: Option<Vec<u8>>,
    /// `struct ethtool_gstrings` and `struct ethtool_stats`.
    pub stats: Option<(Vec<u8>, Vec<u8>)>,
}

/// The families of a scrape from each device's replies (pure: the
/// collector's whole output, tested and mutated without the kernel).
pub fn families(devices: &[(String, Replies)], include: &Regex) -> Vec<MetricFamily> {
    let mut f = Families::new();
    for (device, r) in devices {
        if let Some(m) = r.link.as_deref().and_then(parse_link_modes) {
            f.add_link(device, m);
        }
        if let Some(info) = r.info.as_deref().and_then(parse_driver_info) {
            f.add_info(device, &info);
        }
        if let Some((names, values)) = &r.stats {
            let stats = pair_stats(parse_stat_names(names), &parse_stat_values(values));
            f.add_stats(device, stat_samples(&stats, include));
        }
    }
    f.into_vec()
}

/// `EOPNOTSUPP` (the driver has no such operation) and `ENODEV` (the
/// device went away since the listing) are normal.
fn is_expected(code: i32) -> bool {
    const EOPNOTSUPP: i32 = 95;
    const ENODEV: i32 = 19;
    code == EOPNOTSUPP || code == ENODEV
}

impl BlockingCollector for Ethtool {
    type Found = Vec<String>;

    fn name(&self) -> &'static str {
        "ethtool"
    }

    fn check(&self, _: &ScrapeContext) -> Result<Option<Vec<String>>, CollectError> {
        let entries = dir_entries(&self.net_class)
            .map_err(|e| format!("listing {}: {e}", self.net_class.display()))?;
        let Some(entries) = entries else {
            return Ok(None);
        };
        if entries.is_empty() {
            return Err(format!("no network devices in {}", self.net_class.display()).into());
        }
        Ok(Some(
            entries
                .into_iter()
                .map(|(name, _)| name)
                .filter(|name| !self.filter.ignored(name))
                .collect(),
        ))
    }

    fn collect(
        &self,
        _ctx: &ScrapeContext,
        devices: Vec<String>,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        let replies: Vec<(String, Replies)> = devices
            .into_iter()
            .map(|d| {
                let r = self.replies(&d);
                (d, r)
            })
            .collect();
        out.extend(families(&replies, &self.include));
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let flags = &ctx.options.ethtool;
    Ok(blocking_collector(Ethtool {
        net_class: ctx.paths.sys("class/net"),
        filter: DeviceFilter::new(
            "collector.ethtool.device",
            flags.device_include.as_deref(),
            flags.device_exclude.as_deref(),
        )?,
        include: compile_regex("collector.ethtool.metrics-include", &flags.metrics_include)?,
        socket: EthtoolSocket::open().map_err(|e| format!("ethtool socket: {e}"))?,
        failures: FailureLog::new(FailureSubject::Target),
    }))
}

/// Kernel replies built by hand, for the tests here and the mutation test.
#[cfg(test)]
pub mod sample_replies {
    /// A `struct ethtool_drvinfo` as a virtio NIC answers it.
    pub fn drvinfo_bytes() -> Vec<u8> {
        let mut b = vec![0u8; oxmon_sys::ETHTOOL_DRVINFO_LEN];
        b[..4].copy_from_slice(&3u32.to_ne_bytes());
        for (at, s) in [
            (4, "virtio_net"),
            (36, "1.0.0"),
            (68, "fw 2.1"),
            (100, "0000:00:03.0"),
            (132, ""),
        ] {
            b[at..at + s.len()].copy_from_slice(s.as_bytes());
        }
        b[180..184].copy_from_slice(&3u32.to_ne_bytes());
        b
    }

    pub fn strings_bytes(names: &[&str]) -> Vec<u8> {
        let mut b = vec![0u8; 12 + names.len() * 32];
        b[..4].copy_from_slice(&0x1bu32.to_ne_bytes());
        b[4..8].copy_from_slice(&1u32.to_ne_bytes());
        b[8..12].copy_from_slice(&(names.len() as u32).to_ne_bytes());
        for (i, n) in names.iter().enumerate() {
            b[12 + i * 32..12 + i * 32 + n.len()].copy_from_slice(n.as_bytes());
        }
        b
    }

    pub fn stats_bytes(values: &[u64]) -> Vec<u8> {
        let mut b = vec![0u8; 8 + values.len() * 8];
        b[..4].copy_from_slice(&0x1du32.to_ne_bytes());
        b[4..8].copy_from_slice(&(values.len() as u32).to_ne_bytes());
        for (i, v) in values.iter().enumerate() {
            b[8 + i * 8..16 + i * 8].copy_from_slice(&v.to_ne_bytes());
        }
        b
    }

    /// A `struct ethtool_cmd`: 10/100/1000baseT, TP, autonegotiation.
    pub fn link_bytes() -> Vec<u8> {
        let mut b = vec![0u8; oxmon_sys::ETHTOOL_CMD_LEN];
        b[4..8].copy_from_slice(&0x60EFu32.to_ne_bytes());
        b[8..12].copy_from_slice(&0x2028u32.to_ne_bytes());
        b[18] = 1;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::sample_replies::*;
    use super::*;

    #[test]
    fn parses_driver_info() {
        let d = parse_driver_info(&drvinfo_bytes()).unwrap();
        assert_eq!(d.driver, "virtio_net");
        assert_eq!(d.version, "1.0.0");
        assert_eq!(d.firmware_version, "fw 2.1");
        assert_eq!(d.bus_info, "0000:00:03.0");
        assert_eq!(d.expansion_rom_version, "");
        assert_eq!(d.n_stats, 3);
        assert_eq!(parse_driver_info(&drvinfo_bytes()[..150]), None);
    }

    #[test]
    fn parses_link_modes() {
        let b = link_bytes();
        let m = parse_link_modes(&b).unwrap();
        assert_eq!((m.supported, m.advertising), (0x60EF, 0x2028));
        assert_eq!(m.autoneg, 1);
        let modes: Vec<String> = speeds(m.supported).into_iter().map(|s| s.1).collect();
        assert_eq!(
            modes,
            ["10baseT", "10baseT", "100baseT", "100baseT", "1000baseT"]
        );
        assert_eq!(
            speeds(m.advertising)[0],
            ("full", "100baseT".into(), 12_500_000.0)
        );
        assert_eq!(port_types(m.supported), ["TP"]);
        assert_eq!(bit(m.advertising, PAUSE_BIT), 1.0);
        assert_eq!(bit(m.supported, ASYM_PAUSE_BIT), 1.0);
        assert_eq!(speeds(1 << 31)[0].1, "25000baseCR");
        assert!(speeds(1 << 15).is_empty(), "2500baseX is not reported");
        assert_eq!(parse_link_modes(&b[..18]), None);
    }

    #[test]
    fn parses_statistics_within_the_buffer() {
        let names = parse_stat_names(&strings_bytes(&["rx_bytes", "tx_queue_0_packets", "x"]));
        assert_eq!(names, ["rx_bytes", "tx_queue_0_packets", "x"]);
        // A header claiming more than the buffer holds yields what is there.
        let mut short = strings_bytes(&["a", "b"]);
        short[8..12].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(parse_stat_names(&short).len(), 2);
        let mut values = stats_bytes(&[1, 2, 3]);
        assert_eq!(parse_stat_values(&values), [1, 2, 3]);
        values[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(parse_stat_values(&values), [1, 2, 3]);
        assert!(parse_stat_values(&[1, 2]).is_empty());
        let paired = pair_stats(vec!["a".into(), "a".into(), "b".into()], &[1, 2]);
        assert_eq!(paired.into_iter().collect::<Vec<_>>(), [("a".into(), 2)]);
    }

    #[test]
    fn names_as_node_exporter_builds_them() {
        assert_eq!(sanitize("rx-queue.0 bytes"), "rx_queue_0_bytes");
        assert_eq!(sanitize("a__-__b"), "a_b");
        assert_eq!(
            metric_name("rx_queue_0_bytes"),
            "node_ethtool_received_queue_0_bytes"
        );
        assert_eq!(
            metric_name("port_tx_ok"),
            "node_ethtool_port_transmitted_ok"
        );
        assert_eq!(metric_name("rx_tx"), "node_ethtool_received_transmitted");
        assert_eq!(metric_name("rxtx_X"), "node_ethtool_rxtx_x");
        assert_eq!(metric_name("_Align_Errors"), "node_ethtool_align_errors");
        assert_eq!(metric_name("___"), "node_ethtool");
    }

    #[test]
    fn samples_rename_filter_and_drop_clashes() {
        let stats: BTreeMap<String, u64> = [
            ("rx_bytes", 10),
            ("tx_packets", 2),
            ("rx-csum", 5),
            ("rx csum", 6),
            ("bw_in_allowance_exceeded", 7),
            ("Queue.drops", 8),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let all = stat_samples(&stats, &Regex::new(".*").unwrap());
        let got: Vec<(&str, u64)> = all.iter().map(|s| (s.metric.as_str(), s.value)).collect();
        assert_eq!(
            got,
            [
                ("node_ethtool_bw_in_allowance_exceeded", 7),
                ("node_ethtool_queue_drops", 8),
                ("node_ethtool_received_bytes_total", 10),
                ("node_ethtool_transmitted_packets_total", 2),
            ]
        );
        assert_eq!(all[1].help, "Network interface Queue_drops");
        assert_eq!(all[2].help, "Network interface bytes received");
        let some = stat_samples(&stats, &Regex::new("allowance").unwrap());
        assert_eq!(some.len(), 1);
    }

    /// Whatever this host's interfaces answer, the collector succeeds and
    /// loopback (present everywhere) has an info series when its driver
    /// answers GDRVINFO.
    #[test]
    fn live_interfaces() {
        use crate::collectors::testing::{build_with, scrape};
        let paths = crate::paths::Paths {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
            udev_data: "/run/udev/data".into(),
        };
        let c = build_with(
            "ethtool",
            &paths,
            &["--collector.ethtool.device-include=^(lo|eth0)$"],
        );
        let out = scrape(c.as_ref());
        let lo_info = EthtoolSocket::open().unwrap().driver_info("lo").is_ok();
        let info = out.iter().find(|f| f.name == "node_ethtool_info");
        println!(
            "families: {:?}",
            out.iter()
                .map(|f| (f.name.as_ref(), f.metrics.len()))
                .collect::<Vec<_>>()
        );
        if lo_info {
            let info = info.expect("node_ethtool_info");
            assert!(info
                .metrics
                .iter()
                .any(|m| m.labels.iter().any(|(k, v)| k == "device" && v == "lo")));
        }
        for f in &out {
            for m in &f.metrics {
                let dev = &m.labels.iter().find(|(k, _)| k == "device").unwrap().1;
                assert!(dev == "lo" || dev == "eth0", "{dev}");
            }
        }
    }
}

//! infiniband: InfiniBand (and RoCE/iWARP) adapters and their ports.
//!
//! Source: `<sysfs>/class/infiniband/<device>/{fw_ver,board_id,hca_type}`
//! and `ports/<port>/{state,phys_state,rate}`, `ports/<port>/counters/*`
//! and the pre-4.5 kernels' 64-bit `ports/<port>/counters_ext/*`.
//! Metrics, labelled `device` and `port`: gauges
//! `node_infiniband_{state_id,physical_state_id,rate_bytes_per_second}`,
//! the port counters (`node_infiniband_port_data_received_bytes_total`,
//! `node_infiniband_link_downed_total`, `node_infiniband_symbol_error_total`
//! …, see [`COUNTERS`]) and the `counters_ext` ones under
//! `node_infiniband_legacy_*`; plus
//! `node_infiniband_info{device,board_id,firmware_version,hca_type}`.
//! A counter the adapter does not implement (`N/A (no PMA)`) is left out.
//! The data counters count 32-bit words (octets divided by 4, one per lane
//! of a 4x link), so they are multiplied by 4 as node_exporter does.
//! On by default; no flags. Without InfiniBand it reports nothing and looks
//! for `class/infiniband` again once a minute.
//! Reading a port counter sends a query to the adapter's firmware, so the
//! collector runs on its own blocking lane.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::blocking::{blocking_collector, BlockingCollector};
use oxmon_core::collector::{CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{dir_entries, AbsentSource};
use crate::file_cache::{is_missing, parse_uint_auto, CacheScope, FileCache};
use crate::paths::Paths;

/// A counter file of `ports/<port>/counters` (or `counters_ext`): its file
/// name, the metric name after `node_infiniband_`, the help text and the
/// factor applied to its value.
pub struct Counter {
    /// File name.
    pub file: &'static str,
    /// Metric name after `node_infiniband_`.
    pub metric: &'static str,
    /// HELP text.
    pub help: &'static str,
    /// Multiplier (4 for the data counters, counted in 4-octet words).
    pub scale: u64,
}

const fn counter(
    file: &'static str,
    metric: &'static str,
    help: &'static str,
    scale: u64,
) -> Counter {
    Counter {
        file,
        metric,
        help,
        scale,
    }
}

/// The files of `ports/<port>/counters` that are exported.
pub const COUNTERS: &[Counter] = &[
    counter("excessive_buffer_overrun_errors", "excessive_buffer_overrun_errors_total", "Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.", 1),
    counter("link_downed", "link_downed_total", "Number of times the link failed to recover from an error state and went down", 1),
    counter("link_error_recovery", "link_error_recovery_total", "Number of times the link successfully recovered from an error state", 1),
    counter("local_link_integrity_errors", "local_link_integrity_errors_total", "Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.", 1),
    counter("multicast_rcv_packets", "multicast_packets_received_total", "Number of multicast packets received (including errors)", 1),
    counter("multicast_xmit_packets", "multicast_packets_transmitted_total", "Number of multicast packets transmitted (including errors)", 1),
    counter("port_rcv_constraint_errors", "port_constraint_errors_received_total", "Number of packets received on the switch physical port that are discarded", 1),
    counter("port_xmit_constraint_errors", "port_constraint_errors_transmitted_total", "Number of packets not transmitted from the switch physical port", 1),
    counter("port_rcv_data", "port_data_received_bytes_total", "Number of data octets received on all links", 4),
    counter("port_xmit_data", "port_data_transmitted_bytes_total", "Number of data octets transmitted on all links", 4),
    counter("port_rcv_discards", "port_discards_received_total", "Number of inbound packets discarded by the port because the port is down or congested", 1),
    counter("port_xmit_discards", "port_discards_transmitted_total", "Number of outbound packets discarded by the port because the port is down or congested", 1),
    counter("port_rcv_errors", "port_errors_received_total", "Number of packets containing an error that were received on this port", 1),
    counter("port_rcv_packets", "port_packets_received_total", "Number of packets received on all VLs by this port (including errors)", 1),
    counter("port_xmit_packets", "port_packets_transmitted_total", "Number of packets transmitted on all VLs from this port (including errors)", 1),
    counter("port_rcv_remote_physical_errors", "port_receive_remote_physical_errors_total", "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.", 1),
    counter("port_rcv_switch_relay_errors", "port_receive_switch_relay_errors_total", "Number of packets that could not be forwarded by the switch.", 1),
    counter("port_xmit_wait", "port_transmit_wait_total", "Number of ticks during which the port had data to transmit but no data was sent during the entire tick", 1),
    counter("symbol_error", "symbol_error_total", "Number of minor link errors detected on one or more physical lanes.", 1),
    counter("unicast_rcv_packets", "unicast_packets_received_total", "Number of unicast packets received (including errors)", 1),
    counter("unicast_xmit_packets", "unicast_packets_transmitted_total", "Number of unicast packets transmitted (including errors)", 1),
    counter("VL15_dropped", "vl15_dropped_total", "Number of incoming VL15 packets dropped due to resource limitations.", 1),
];

/// The files of `ports/<port>/counters_ext` (kernels before 4.5).
pub const LEGACY_COUNTERS: &[Counter] = &[
    counter(
        "port_multicast_rcv_packets",
        "legacy_multicast_packets_received_total",
        "Number of multicast packets received",
        1,
    ),
    counter(
        "port_multicast_xmit_packets",
        "legacy_multicast_packets_transmitted_total",
        "Number of multicast packets transmitted",
        1,
    ),
    counter(
        "port_rcv_data_64",
        "legacy_data_received_bytes_total",
        "Number of data octets received on all links",
        4,
    ),
    counter(
        "port_rcv_packets_64",
        "legacy_packets_received_total",
        "Number of data packets received on all links",
        1,
    ),
    counter(
        "port_unicast_rcv_packets",
        "legacy_unicast_packets_received_total",
        "Number of unicast packets received",
        1,
    ),
    counter(
        "port_unicast_xmit_packets",
        "legacy_unicast_packets_transmitted_total",
        "Number of unicast packets transmitted",
        1,
    ),
    counter(
        "port_xmit_data_64",
        "legacy_data_transmitted_bytes_total",
        "Number of data octets transmitted on all links",
        4,
    ),
    // node_exporter's help text says "received" here too.
    counter(
        "port_xmit_packets_64",
        "legacy_packets_transmitted_total",
        "Number of data packets received on all links",
        1,
    ),
];

/// A port state file (`4: ACTIVE`, `5: LinkUp`): the number before the
/// colon and the name after it.
pub fn parse_state(text: &str) -> Option<(u32, &str)> {
    let (id, name) = text.split_once(':')?;
    if name.contains(':') {
        return None;
    }
    Some((id.trim().parse().ok()?, name.trim()))
}

/// A port's `rate` (`40 Gb/sec (4X QDR)`, `2.5 Gb/sec (1X SDR)`) in bytes
/// per second.
pub fn parse_rate(text: &str) -> Option<f64> {
    let (gbits, _) = text.trim_start().split_once(' ')?;
    let gbits: f64 = gbits.parse().ok()?;
    // node_exporter parses the number as a 32-bit float and truncates the
    // product to an integer.
    (gbits.is_finite() && gbits >= 0.0).then(|| ((gbits as f32) as f64 * 125_000_000.0).trunc())
}

/// A counter file's value: `Ok(None)` for a counter the adapter does not
/// implement (`N/A (no PMA)`), an error for anything else that is not an
/// unsigned number.
pub fn parse_counter(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    match parse_uint_auto(t) {
        Some(v) => Ok(Some(v)),
        None if t.contains("N/A (no PMA)") => Ok(None),
        None => Err(format!(
            "not a counter: {:?}",
            t.chars().take(40).collect::<String>()
        )),
    }
}

/// The infiniband collector.
pub struct Infiniband {
    class: PathBuf,
    absent: AbsentSource,
    cache: FileCache,
}

impl Infiniband {
    /// Reads under the given sysfs.
    pub fn new(paths: &Paths) -> Self {
        Infiniband {
            class: paths.sys("class/infiniband"),
            absent: AbsentSource::default(),
            cache: FileCache::remembering_missing(),
        }
    }
}

/// The families of one scrape.
struct Families {
    info: MetricFamily,
    state: MetricFamily,
    phys_state: MetricFamily,
    rate: MetricFamily,
    counters: Vec<MetricFamily>,
    legacy: Vec<MetricFamily>,
}

impl Families {
    fn new() -> Self {
        let counters = |table: &[Counter]| {
            table
                .iter()
                .map(|c| MetricFamily::counter(format!("node_infiniband_{}", c.metric), c.help))
                .collect()
        };
        Families {
            info: MetricFamily::gauge(
                "node_infiniband_info",
                "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
            ),
            state: MetricFamily::gauge(
                "node_infiniband_state_id",
                "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)",
            ),
            phys_state: MetricFamily::gauge(
                "node_infiniband_physical_state_id",
                "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)",
            ),
            rate: MetricFamily::gauge(
                "node_infiniband_rate_bytes_per_second",
                "Maximum signal transfer rate",
            ),
            counters: counters(COUNTERS),
            legacy: counters(LEGACY_COUNTERS),
        }
    }
}

/// Reads the counter files of `dir` listed in `table` into `families`
/// (same order as `table`). A missing directory has no counters.
fn read_counters(
    scope: &mut CacheScope<'_>,
    dir: &Path,
    table: &[Counter],
    families: &mut [MetricFamily],
    labels: &[(&'static str, &str)],
) -> Result<(), String> {
    let Some(files) = dir_entries(dir).map_err(|e| format!("listing {}: {e}", dir.display()))?
    else {
        return Ok(());
    };
    for (name, _) in files {
        let Some(i) = table.iter().position(|c| c.file == name) else {
            continue;
        };
        let path = dir.join(&name);
        let text = match scope.attr(&path) {
            Ok(b) => String::from_utf8_lossy(b).into_owned(),
            // Some drivers list counters they refuse to read.
            Err(e) if is_missing(&e) || e.kind() == std::io::ErrorKind::PermissionDenied => {
                continue
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error()) => {
                continue
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => continue,
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        if let Some(v) = parse_counter(&text).map_err(|e| format!("{}: {e}", path.display()))? {
            families[i].add(labels, v.wrapping_mul(table[i].scale) as f64);
        }
    }
    Ok(())
}

impl Infiniband {
    fn device(
        &self,
        scope: &mut CacheScope<'_>,
        name: &str,
        f: &mut Families,
    ) -> Result<(), String> {
        let dir = self.class.join(name);
        let fw_path = dir.join("fw_ver");
        let fw = scope
            .attr_string(&fw_path)
            .ok_or_else(|| format!("{}: cannot be read", fw_path.display()))?;
        let board = scope.attr_string(&dir.join("board_id")).unwrap_or_default();
        let hca = scope.attr_string(&dir.join("hca_type")).unwrap_or_default();
        f.info.add(
            &[
                ("device", name),
                ("board_id", &board),
                ("firmware_version", &fw),
                ("hca_type", &hca),
            ],
            1.0,
        );
        let ports_dir = dir.join("ports");
        let ports = dir_entries(&ports_dir)
            .map_err(|e| format!("listing {}: {e}", ports_dir.display()))?
            .ok_or_else(|| format!("{}: missing", ports_dir.display()))?;
        let mut ports: Vec<(u32, String)> = ports
            .into_iter()
            .filter_map(|(n, _)| Some((n.parse().ok()?, n)))
            .collect();
        ports.sort_unstable();
        for (_, port) in ports {
            let pdir = ports_dir.join(&port);
            let labels = [("device", name), ("port", port.as_str())];
            let mut read_state = |file: &str| -> Result<u32, String> {
                let p = pdir.join(file);
                let text = scope
                    .attr_string(&p)
                    .ok_or_else(|| format!("{}: cannot be read", p.display()))?;
                parse_state(&text)
                    .map(|(id, _)| id)
                    .ok_or_else(|| format!("{}: not \"ID: NAME\": {text:?}", p.display()))
            };
            let state = read_state("state")?;
            let phys = read_state("phys_state")?;
            let rate_path = pdir.join("rate");
            let rate_text = scope
                .attr_string(&rate_path)
                .ok_or_else(|| format!("{}: cannot be read", rate_path.display()))?;
            let rate = parse_rate(&rate_text)
                .ok_or_else(|| format!("{}: not a rate: {rate_text:?}", rate_path.display()))?;
            f.state.add(&labels, state as f64);
            f.phys_state.add(&labels, phys as f64);
            f.rate.add(&labels, rate);
            read_counters(
                scope,
                &pdir.join("counters"),
                COUNTERS,
                &mut f.counters,
                &labels,
            )?;
            read_counters(
                scope,
                &pdir.join("counters_ext"),
                LEGACY_COUNTERS,
                &mut f.legacy,
                &labels,
            )?;
        }
        Ok(())
    }
}

impl BlockingCollector for Infiniband {
    type Found = Vec<(String, std::fs::FileType)>;

    fn name(&self) -> &'static str {
        "infiniband"
    }

    fn check(&self, _: &ScrapeContext) -> Result<Option<Self::Found>, CollectError> {
        let found = self.absent.entries(&self.class)?;
        if found.is_none() {
            tracing::debug!(path = %self.class.display(), "infiniband statistics not found");
        }
        Ok(found.filter(|d| !d.is_empty()))
    }

    fn collect(
        &self,
        _: &ScrapeContext,
        devices: Self::Found,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut f = Families::new();
        let mut result = Ok(());
        for (name, _) in devices {
            // A device that cannot be read fails the collector after the
            // others are exported.
            if let Err(e) = self.device(&mut scope, &name, &mut f) {
                result = Err(e.into());
            }
        }
        out.extend([f.info, f.state, f.phys_state, f.rate]);
        out.extend(f.counters);
        out.extend(f.legacy);
        result
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(blocking_collector(Infiniband::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{paths_under, scrape, try_scrape, write};

    #[test]
    fn states_and_rates() {
        assert_eq!(parse_state("4: ACTIVE\n"), Some((4, "ACTIVE")));
        assert_eq!(parse_state("5: LinkUp"), Some((5, "LinkUp")));
        assert_eq!(parse_state("ACTIVE"), None);
        assert_eq!(parse_state("x: ACTIVE"), None);
        assert_eq!(parse_state("1: a: b"), None);
        assert_eq!(parse_rate("40 Gb/sec (4X QDR)"), Some(5e9));
        assert_eq!(parse_rate("10 Gb/sec (4X)"), Some(1.25e9));
        assert_eq!(parse_rate("2.5 Gb/sec (1X SDR)"), Some(312_500_000.0));
        assert_eq!(parse_rate("400 Gb/sec (4X NDR)"), Some(5e10));
        assert_eq!(parse_rate("fast"), None);
        assert_eq!(parse_rate("-1 Gb/sec"), None);
    }

    #[test]
    fn counters_skip_unimplemented_and_refuse_junk() {
        assert_eq!(parse_counter("6825908347\n"), Ok(Some(6_825_908_347)));
        assert_eq!(parse_counter("N/A (no PMA)\n"), Ok(None));
        assert!(parse_counter("lots").is_err());
        assert!(parse_counter("-3").is_err());
    }

    fn value(out: &[MetricFamily], name: &str, port: &str) -> Option<f64> {
        let fam = out.iter().find(|f| f.name == name)?;
        fam.metrics
            .iter()
            .find(|m| m.labels.iter().any(|(k, v)| k == "port" && v == port))
            .map(|m| match m.value {
                oxmon_core::metrics::Value::Single(v) => v,
                _ => panic!("{name}: not a single value"),
            })
    }

    #[test]
    fn reads_a_device_with_scaled_and_missing_counters() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let dev = "class/infiniband/mlx5_0";
        write(r, &format!("{dev}/fw_ver"), "20.31.1014\n");
        write(r, &format!("{dev}/hca_type"), "MT4123\n");
        write(r, &format!("{dev}/ports/1/state"), "4: ACTIVE\n");
        write(r, &format!("{dev}/ports/1/phys_state"), "5: LinkUp\n");
        write(r, &format!("{dev}/ports/1/rate"), "200 Gb/sec (4X HDR)\n");
        write(r, &format!("{dev}/ports/1/counters/port_rcv_data"), "100\n");
        write(r, &format!("{dev}/ports/1/counters/symbol_error"), "3\n");
        write(
            r,
            &format!("{dev}/ports/1/counters/VL15_dropped"),
            "N/A (no PMA)\n",
        );
        write(
            r,
            &format!("{dev}/ports/1/counters/unknown_counter"),
            "junk\n",
        );
        let c = Infiniband::new(&paths_under(r));
        let out = scrape(&*blocking_collector(c));
        assert_eq!(
            value(&out, "node_infiniband_port_data_received_bytes_total", "1"),
            Some(400.0)
        );
        assert_eq!(
            value(&out, "node_infiniband_symbol_error_total", "1"),
            Some(3.0)
        );
        assert_eq!(value(&out, "node_infiniband_vl15_dropped_total", "1"), None);
        assert_eq!(
            value(&out, "node_infiniband_rate_bytes_per_second", "1"),
            Some(2.5e10)
        );
        assert_eq!(value(&out, "node_infiniband_state_id", "1"), Some(4.0));
        let info = out
            .iter()
            .find(|f| f.name == "node_infiniband_info")
            .unwrap();
        assert!(info.metrics[0]
            .labels
            .iter()
            .any(|(k, v)| k == "board_id" && v.is_empty()));

        // A counter that is neither a number nor "N/A" fails the collector,
        // with the file named, after the rest is exported.
        write(
            r,
            &format!("{dev}/ports/1/counters/symbol_error"),
            "broken\n",
        );
        let c = Infiniband::new(&paths_under(r));
        let (out, result) = try_scrape(&*blocking_collector(c));
        let e = result.unwrap_err().to_string();
        assert!(e.contains("symbol_error"), "{e}");
        assert!(out.iter().any(|f| f.name == "node_infiniband_info"));
    }

    #[test]
    fn no_infiniband_is_nothing_and_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = Infiniband::new(&paths_under(dir.path()));
        assert!(scrape(&*blocking_collector(c)).is_empty());
    }
}

//! wifi: WiFi interfaces, the BSS they are connected to, and their
//! stations.
//!
//! Source: nl80211 over generic netlink (`NL80211_CMD_GET_INTERFACE`,
//! `GET_SCAN` for the BSS with a status, `GET_STATION`), or with
//! `--collector.wifi.fixtures=<dir>` node_exporter's JSON test fixtures
//! (`interfaces.json`, `<device>/bss.json`, `<device>/stationinfo.json`).
//! A kernel without nl80211 (no WiFi driver loaded) is nothing to report;
//! that is remembered and re-checked once a minute. Metrics:
//! `node_wifi_interface_frequency_hertz{device}`,
//! `node_wifi_station_info{device,bssid,ssid,mode}`, and per station
//! `{device,mac_address}`: `node_wifi_station_connected_seconds_total`,
//! `_inactive_seconds`, `_receive_bits_per_second`,
//! `_transmit_bits_per_second`, `_receive_bytes_total`,
//! `_transmit_bytes_total`, `_received_packets_total`,
//! `_transmitted_packets_total`, `_signal_dbm`, `_transmit_retries_total`,
//! `_transmit_failed_total`, `_beacon_loss_total`.
//! Flag: `--collector.wifi.fixtures`. Off by default.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::collector::{BoxFuture, CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::netdev::format_hwaddr;
use crate::collectors::Ctx;
use crate::file_cache::{is_missing, FileCache};
use crate::go_json;
use crate::netlink::{
    self, attributes, genl_header, push_attr, text, u16_at, u32_at, u64_at, Absence, Netlink,
    GENL_HEADER_LEN,
};

/// Flags of the wifi collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// test fixtures to use for wifi collector metrics
    #[arg(
        id = "collector.wifi.fixtures",
        long = "collector.wifi.fixtures",
        value_name = "DIR",
        default_value = ""
    )]
    pub fixtures: String,
}

/// A WiFi interface.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interface {
    /// Interface index (live only).
    pub index: u32,
    /// Name; virtual devices without one are skipped.
    pub name: String,
    /// Operating frequency, MHz.
    pub frequency_mhz: f64,
}

/// The BSS an interface is connected to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bss {
    /// BSSID (a MAC address).
    pub bssid: Vec<u8>,
    /// SSID from the information elements.
    pub ssid: String,
    /// `NL80211_BSS_STATUS`; `None` for a BSS merely seen in a scan.
    pub status: Option<u32>,
}

/// One station of an interface, in the units the metrics use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Station {
    /// Station MAC address.
    pub mac: Vec<u8>,
    /// Seconds connected.
    pub connected_seconds: f64,
    /// Seconds since the last activity.
    pub inactive_seconds: f64,
    /// Receive bitrate, bits per second.
    pub receive_bitrate: f64,
    /// Transmit bitrate, bits per second.
    pub transmit_bitrate: f64,
    /// Bytes received.
    pub received_bytes: f64,
    /// Bytes transmitted.
    pub transmitted_bytes: f64,
    /// Packets received.
    pub received_packets: f64,
    /// Packets transmitted.
    pub transmitted_packets: f64,
    /// Signal strength, dBm.
    pub signal_dbm: f64,
    /// Transmit retries.
    pub transmit_retries: f64,
    /// Failed transmissions.
    pub transmit_failed: f64,
    /// Beacon losses.
    pub beacon_loss: f64,
}

// nl80211 (linux/nl80211.h).
const CMD_GET_INTERFACE: u8 = 5;
const CMD_NEW_INTERFACE: u8 = 7;
const CMD_GET_STATION: u8 = 17;
const CMD_NEW_STATION: u8 = 19;
const CMD_GET_SCAN: u8 = 32;
const CMD_NEW_SCAN_RESULTS: u8 = 34;
const ATTR_IFINDEX: u16 = 3;
const ATTR_IFNAME: u16 = 4;
const ATTR_MAC: u16 = 6;
const ATTR_STA_INFO: u16 = 21;
const ATTR_WIPHY_FREQ: u16 = 38;
const ATTR_BSS: u16 = 47;
const STA_INACTIVE_TIME: u16 = 1;
const STA_RX_BYTES: u16 = 2;
const STA_TX_BYTES: u16 = 3;
const STA_SIGNAL: u16 = 7;
const STA_TX_BITRATE: u16 = 8;
const STA_RX_PACKETS: u16 = 9;
const STA_TX_PACKETS: u16 = 10;
const STA_TX_RETRIES: u16 = 11;
const STA_TX_FAILED: u16 = 12;
const STA_RX_BITRATE: u16 = 14;
const STA_CONNECTED_TIME: u16 = 16;
const STA_BEACON_LOSS: u16 = 18;
const STA_RX_BYTES64: u16 = 23;
const STA_TX_BYTES64: u16 = 24;
const RATE_BITRATE: u16 = 1;
const RATE_BITRATE32: u16 = 5;
const BSS_BSSID: u16 = 1;
const BSS_INFORMATION_ELEMENTS: u16 = 6;
const BSS_STATUS: u16 = 9;

/// The attributes of an nl80211 message with command `cmd`; `None` for
/// another command or a message too short for its header.
fn genl_attrs(p: &[u8], cmd: u8) -> Option<&[u8]> {
    (*p.first()? == cmd).then_some(())?;
    p.get(GENL_HEADER_LEN..)
}

/// Parses a `NL80211_CMD_NEW_INTERFACE` message.
pub fn parse_interface(p: &[u8]) -> Option<Interface> {
    let mut ifi = Interface::default();
    for (ty, val) in attributes(genl_attrs(p, CMD_NEW_INTERFACE)?) {
        match ty {
            ATTR_IFINDEX => ifi.index = u32_at(val, 0)?,
            ATTR_IFNAME => ifi.name = text(val),
            ATTR_WIPHY_FREQ => ifi.frequency_mhz = f64::from(u32_at(val, 0)?),
            _ => {}
        }
    }
    Some(ifi)
}

/// Bits per second of a nested `nl80211_rate_info` (units of 100 kbit/s;
/// the 32-bit field when the kernel sends it).
fn bitrate(val: &[u8]) -> f64 {
    let mut rate = 0u32;
    for (ty, v) in attributes(val) {
        match ty {
            RATE_BITRATE32 => rate = u32_at(v, 0).unwrap_or(rate),
            RATE_BITRATE if rate == 0 => rate = u16_at(v, 0).map_or(0, u32::from),
            _ => {}
        }
    }
    f64::from(rate) * 100_000.0
}

/// Parses a `NL80211_CMD_NEW_STATION` message.
pub fn parse_station(p: &[u8]) -> Option<Station> {
    let mut st = Station::default();
    let mut info = None;
    for (ty, val) in attributes(genl_attrs(p, CMD_NEW_STATION)?) {
        match ty {
            ATTR_MAC => st.mac = val.to_vec(),
            ATTR_STA_INFO => info = Some(val),
            _ => {}
        }
    }
    let (mut rx64, mut tx64) = (None, None);
    for (ty, val) in attributes(info?) {
        let n = || u32_at(val, 0).map_or(0.0, f64::from);
        match ty {
            STA_INACTIVE_TIME => st.inactive_seconds = n() / 1000.0,
            STA_CONNECTED_TIME => st.connected_seconds = n(),
            STA_RX_BYTES => st.received_bytes = n(),
            STA_TX_BYTES => st.transmitted_bytes = n(),
            STA_RX_BYTES64 => rx64 = u64_at(val, 0),
            STA_TX_BYTES64 => tx64 = u64_at(val, 0),
            STA_RX_PACKETS => st.received_packets = n(),
            STA_TX_PACKETS => st.transmitted_packets = n(),
            STA_TX_RETRIES => st.transmit_retries = n(),
            STA_TX_FAILED => st.transmit_failed = n(),
            STA_BEACON_LOSS => st.beacon_loss = n(),
            STA_SIGNAL => st.signal_dbm = val.first().map_or(0.0, |&b| f64::from(b as i8)),
            STA_RX_BITRATE => st.receive_bitrate = bitrate(val),
            STA_TX_BITRATE => st.transmit_bitrate = bitrate(val),
            _ => {}
        }
    }
    if let Some(b) = rx64 {
        st.received_bytes = b as f64;
    }
    if let Some(b) = tx64 {
        st.transmitted_bytes = b as f64;
    }
    Some(st)
}

/// Parses a `NL80211_CMD_NEW_SCAN_RESULTS` message.
pub fn parse_bss(p: &[u8]) -> Option<Bss> {
    let (_, nested) =
        attributes(genl_attrs(p, CMD_NEW_SCAN_RESULTS)?).find(|(t, _)| *t == ATTR_BSS)?;
    let mut bss = Bss::default();
    for (ty, val) in attributes(nested) {
        match ty {
            BSS_BSSID => bss.bssid = val.to_vec(),
            BSS_STATUS => bss.status = u32_at(val, 0),
            BSS_INFORMATION_ELEMENTS => bss.ssid = ssid_of(val),
            _ => {}
        }
    }
    Some(bss)
}

/// The SSID element (id 0) of 802.11 information elements.
fn ssid_of(mut ies: &[u8]) -> String {
    while let [id, len, rest @ ..] = ies {
        let Some(data) = rest.get(..usize::from(*len)) else {
            break;
        };
        if *id == 0 {
            return String::from_utf8_lossy(data).into_owned();
        }
        ies = &rest[usize::from(*len)..];
    }
    String::new()
}

/// node_exporter's `mode` label of a BSS status.
pub fn bss_mode(status: Option<u32>) -> &'static str {
    match status {
        Some(0 | 1) => "client",
        Some(2) => "ad-hoc",
        _ => "unknown",
    }
}

/// Parses `interfaces.json`.
pub fn parse_interfaces_fixture(text: &str) -> Result<Vec<Interface>, String> {
    Ok(go_json::objects(text)?
        .iter()
        .map(|o| Interface {
            index: go_json::number(o, "Index") as u32,
            name: go_json::string(o, "Name"),
            frequency_mhz: go_json::number(o, "Frequency"),
        })
        .collect())
}

/// Parses `<device>/bss.json`.
pub fn parse_bss_fixture(text: &str) -> Result<Bss, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let o = v.as_object().ok_or("expected a JSON object")?;
    Ok(Bss {
        bssid: go_json::bytes(o, "BSSID"),
        ssid: go_json::string(o, "SSID"),
        status: Some(go_json::number(o, "Status") as u32),
    })
}

/// Parses `<device>/stationinfo.json` (durations in nanoseconds, as Go's
/// `time.Duration`).
pub fn parse_stations_fixture(text: &str) -> Result<Vec<Station>, String> {
    Ok(go_json::objects(text)?
        .iter()
        .map(|o| {
            let n = |k| go_json::number(o, k);
            Station {
                mac: go_json::bytes(o, "HardwareAddr"),
                connected_seconds: n("Connected") / 1e9,
                inactive_seconds: n("Inactive") / 1e9,
                receive_bitrate: n("ReceiveBitrate"),
                transmit_bitrate: n("TransmitBitrate"),
                received_bytes: n("ReceivedBytes"),
                transmitted_bytes: n("TransmittedBytes"),
                received_packets: n("ReceivedPackets"),
                transmitted_packets: n("TransmittedPackets"),
                signal_dbm: n("Signal"),
                transmit_retries: n("TransmitRetries"),
                transmit_failed: n("TransmitFailed"),
                beacon_loss: n("BeaconLoss"),
            }
        })
        .collect())
}

/// What one scrape found: each named interface with its BSS (if
/// connected) and stations.
type Found = Vec<(Interface, Option<Bss>, Vec<Station>)>;

/// The wifi collector.
pub struct Wifi {
    fixtures: Option<PathBuf>,
    nl: Netlink,
    absent: Absence,
    cache: FileCache,
}

fn parse_error(path: &Path, e: String) -> String {
    format!("parsing {}: {e}", path.display())
}

/// Errors that mean "this interface has no such information".
fn not_available(e: &io::Error) -> bool {
    use rustix::io::Errno;
    [Errno::NOENT, Errno::NODEV, Errno::OPNOTSUPP, Errno::NOLINK]
        .iter()
        .any(|n| e.raw_os_error() == Some(n.raw_os_error()))
}

impl Wifi {
    /// Builds the collector from the flags.
    pub fn new(ctx: &Ctx<'_>) -> Self {
        let f = &ctx.options.wifi;
        Wifi {
            fixtures: (!f.fixtures.is_empty()).then(|| PathBuf::from(&f.fixtures)),
            nl: Netlink::new(netlink::GENERIC),
            absent: Absence::default(),
            cache: FileCache::remembering_missing(),
        }
    }

    /// A fixture file's text; `None` when it does not exist.
    fn fixture(&self, path: &Path) -> Result<Option<String>, CollectError> {
        match self.cache.scope().read(path) {
            Ok(b) => Ok(Some(String::from_utf8_lossy(b).into_owned())),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(format!("reading {}: {e}", path.display()).into()),
        }
    }

    fn read_fixtures(&self, dir: &Path) -> Result<Found, CollectError> {
        let path = dir.join("interfaces.json");
        let Some(text) = self.fixture(&path)? else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for ifi in parse_interfaces_fixture(&text).map_err(|e| parse_error(&path, e))? {
            if ifi.name.is_empty() {
                continue;
            }
            let path = dir.join(&ifi.name).join("bss.json");
            let bss = match self.fixture(&path)? {
                Some(t) => Some(parse_bss_fixture(&t).map_err(|e| parse_error(&path, e))?),
                None => None,
            };
            let path = dir.join(&ifi.name).join("stationinfo.json");
            let stations = match self.fixture(&path)? {
                Some(t) => parse_stations_fixture(&t).map_err(|e| parse_error(&path, e))?,
                None => Vec::new(),
            };
            found.push((ifi, bss, stations));
        }
        Ok(found)
    }

    async fn live(&self, ctx: &ScrapeContext) -> Result<Found, CollectError> {
        if self.absent.known() {
            return Ok(Vec::new());
        }
        let family = self
            .nl
            .genl_family(ctx.deadline, "nl80211")
            .await
            .map_err(|e| format!("failed to access wifi data: {e}"))?;
        self.absent.set(family.is_none());
        let Some(family) = family else {
            tracing::debug!("no nl80211 generic netlink family: no WiFi to report");
            return Ok(Vec::new());
        };
        let mut interfaces = Vec::new();
        self.nl
            .dump(
                ctx.deadline,
                family,
                &genl_header(CMD_GET_INTERFACE, 1),
                |_, p| interfaces.extend(parse_interface(p)),
            )
            .await
            .map_err(|e| format!("failed to retrieve wifi interfaces: {e}"))?;
        let mut found = Vec::new();
        for ifi in interfaces {
            if ifi.name.is_empty() {
                continue;
            }
            let mut req = genl_header(CMD_GET_SCAN, 1);
            push_attr(&mut req, ATTR_IFINDEX, &ifi.index.to_ne_bytes());
            let mut bss = None;
            let scanned = self
                .nl
                .dump(ctx.deadline, family, &req, |_, p| {
                    if let Some(b) = parse_bss(p).filter(|b| b.status.is_some()) {
                        bss = Some(b);
                    }
                })
                .await;
            match scanned {
                Ok(()) => {}
                Err(e) if not_available(&e) => {}
                Err(e) => {
                    return Err(
                        format!("failed to retrieve BSS for device {}: {e}", ifi.name).into(),
                    )
                }
            }
            let mut req = genl_header(CMD_GET_STATION, 1);
            push_attr(&mut req, ATTR_IFINDEX, &ifi.index.to_ne_bytes());
            let mut stations = Vec::new();
            let listed = self
                .nl
                .dump(ctx.deadline, family, &req, |_, p| {
                    stations.extend(parse_station(p))
                })
                .await;
            match listed {
                Ok(()) => {}
                Err(e) if not_available(&e) => {}
                Err(e) => {
                    return Err(format!(
                        "failed to retrieve station info for device {:?}: {e}",
                        ifi.name
                    )
                    .into())
                }
            }
            found.push((ifi, bss, stations));
        }
        Ok(found)
    }
}

/// The per-station families: name, help, counter or gauge, and value.
type StationMetric = (&'static str, &'static str, bool, fn(&Station) -> f64);

const STATION_METRICS: [StationMetric; 12] = [
    (
        "node_wifi_station_connected_seconds_total",
        "The total number of seconds a station has been connected to an access point.",
        true,
        |s| s.connected_seconds,
    ),
    (
        "node_wifi_station_inactive_seconds",
        "The number of seconds since any wireless activity has occurred on a station.",
        false,
        |s| s.inactive_seconds,
    ),
    (
        "node_wifi_station_receive_bits_per_second",
        "The current WiFi receive bitrate of a station, in bits per second.",
        false,
        |s| s.receive_bitrate,
    ),
    (
        "node_wifi_station_transmit_bits_per_second",
        "The current WiFi transmit bitrate of a station, in bits per second.",
        false,
        |s| s.transmit_bitrate,
    ),
    (
        "node_wifi_station_receive_bytes_total",
        "The total number of bytes received by a WiFi station.",
        true,
        |s| s.received_bytes,
    ),
    (
        "node_wifi_station_transmit_bytes_total",
        "The total number of bytes transmitted by a WiFi station.",
        true,
        |s| s.transmitted_bytes,
    ),
    (
        "node_wifi_station_received_packets_total",
        "The total number of packets received by a station.",
        true,
        |s| s.received_packets,
    ),
    (
        "node_wifi_station_transmitted_packets_total",
        "The total number of packets transmitted by a station.",
        true,
        |s| s.transmitted_packets,
    ),
    (
        "node_wifi_station_signal_dbm",
        "The current WiFi signal strength, in decibel-milliwatts (dBm).",
        false,
        |s| s.signal_dbm,
    ),
    (
        "node_wifi_station_transmit_retries_total",
        "The total number of times a station has had to retry while sending a packet.",
        true,
        |s| s.transmit_retries,
    ),
    (
        "node_wifi_station_transmit_failed_total",
        "The total number of times a station has failed to send a packet.",
        true,
        |s| s.transmit_failed,
    ),
    (
        "node_wifi_station_beacon_loss_total",
        "The total number of times a station has detected a beacon loss.",
        true,
        |s| s.beacon_loss,
    ),
];

/// The families of what a scrape found.
pub fn families(found: &Found) -> Vec<MetricFamily> {
    let mut freq = MetricFamily::gauge(
        "node_wifi_interface_frequency_hertz",
        "The current frequency a WiFi interface is operating at, in hertz.",
    );
    let mut info = MetricFamily::gauge(
        "node_wifi_station_info",
        "Labeled WiFi interface station information as provided by the operating system.",
    );
    let mut per_station: Vec<MetricFamily> = STATION_METRICS
        .iter()
        .map(|(name, help, counter, _)| {
            if *counter {
                MetricFamily::counter(*name, *help)
            } else {
                MetricFamily::gauge(*name, *help)
            }
        })
        .collect();
    for (ifi, bss, stations) in found {
        freq.add(&[("device", &ifi.name)], ifi.frequency_mhz * 1e6);
        if let Some(b) = bss {
            info.add(
                &[
                    ("device", ifi.name.as_str()),
                    ("bssid", &format_hwaddr(&b.bssid)),
                    ("ssid", &b.ssid),
                    ("mode", bss_mode(b.status)),
                ],
                1.0,
            );
        }
        for st in stations {
            let mac = format_hwaddr(&st.mac);
            let labels = [("device", ifi.name.as_str()), ("mac_address", mac.as_str())];
            for (fam, (_, _, _, value)) in per_station.iter_mut().zip(STATION_METRICS.iter()) {
                fam.add(&labels, value(st));
            }
        }
    }
    let mut out = vec![freq, info];
    out.append(&mut per_station);
    out
}

impl Collector for Wifi {
    fn name(&self) -> &str {
        "wifi"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let found = match &self.fixtures {
                Some(dir) => self.read_fixtures(dir)?,
                None => self.live(ctx).await?,
            };
            out.extend(families(&found));
            Ok(())
        })
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(Arc::new(Wifi::new(ctx)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build_with, paths_under, scrape, try_scrape};

    fn nested(attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut v = Vec::new();
        for (t, val) in attrs {
            push_attr(&mut v, *t, val);
        }
        v
    }

    #[test]
    fn parses_nl80211_interface_station_and_bss() {
        let mut p = genl_header(CMD_NEW_INTERFACE, 1);
        p.extend(nested(&[
            (ATTR_IFINDEX, 4u32.to_ne_bytes().to_vec()),
            (ATTR_IFNAME, b"wlp2s0\0".to_vec()),
            (ATTR_WIPHY_FREQ, 5180u32.to_ne_bytes().to_vec()),
        ]));
        let ifi = parse_interface(&p).unwrap();
        assert_eq!(
            (ifi.index, ifi.name.as_str(), ifi.frequency_mhz),
            (4, "wlp2s0", 5180.0)
        );
        assert!(parse_interface(&genl_header(CMD_NEW_STATION, 1)).is_none());

        let rate = nested(&[
            (RATE_BITRATE, 65u16.to_ne_bytes().to_vec()),
            (RATE_BITRATE32, 8667u32.to_ne_bytes().to_vec()),
        ]);
        let info = nested(&[
            (STA_INACTIVE_TIME, 250u32.to_ne_bytes().to_vec()),
            (STA_CONNECTED_TIME, 3600u32.to_ne_bytes().to_vec()),
            (STA_RX_BYTES, 1u32.to_ne_bytes().to_vec()),
            (STA_RX_BYTES64, 5_000_000_000u64.to_ne_bytes().to_vec()),
            (STA_TX_BYTES, 77u32.to_ne_bytes().to_vec()),
            (STA_SIGNAL, vec![(-61i8) as u8]),
            (STA_RX_BITRATE, rate),
            (
                STA_TX_BITRATE,
                nested(&[(RATE_BITRATE, 65u16.to_ne_bytes().to_vec())]),
            ),
            (STA_TX_RETRIES, 9u32.to_ne_bytes().to_vec()),
            (STA_BEACON_LOSS, 1u32.to_ne_bytes().to_vec()),
        ]);
        let mut p = genl_header(CMD_NEW_STATION, 1);
        p.extend(nested(&[
            (ATTR_MAC, vec![0x02, 0, 0, 0, 0, 0x0b]),
            (ATTR_STA_INFO, info),
        ]));
        let st = parse_station(&p).unwrap();
        assert_eq!(format_hwaddr(&st.mac), "02:00:00:00:00:0b");
        assert_eq!((st.inactive_seconds, st.connected_seconds), (0.25, 3600.0));
        assert_eq!((st.received_bytes, st.transmitted_bytes), (5e9, 77.0));
        assert_eq!(st.signal_dbm, -61.0);
        assert_eq!(st.receive_bitrate, 866_700_000.0, "BITRATE32 wins");
        assert_eq!(st.transmit_bitrate, 6_500_000.0);
        assert_eq!((st.transmit_retries, st.beacon_loss), (9.0, 1.0));

        let ies = [&[0u8, 4][..], b"home", &[1, 2, 0x82, 0x84]].concat();
        let bss = nested(&[
            (BSS_BSSID, vec![0x10, 0x20, 0x30, 0x40, 0x50, 0x60]),
            (BSS_INFORMATION_ELEMENTS, ies),
            (BSS_STATUS, 1u32.to_ne_bytes().to_vec()),
        ]);
        let mut p = genl_header(CMD_NEW_SCAN_RESULTS, 1);
        p.extend(nested(&[(ATTR_BSS, bss)]));
        let b = parse_bss(&p).unwrap();
        assert_eq!((b.ssid.as_str(), b.status), ("home", Some(1)));
        assert_eq!(bss_mode(b.status), "client");
        assert_eq!(bss_mode(Some(2)), "ad-hoc");
        assert_eq!(bss_mode(None), "unknown");
        // An element that runs past the end ends the search.
        assert_eq!(ssid_of(&[0, 9, b'x']), "");
    }

    #[test]
    fn reads_fixtures_and_skips_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("interfaces.json"),
            r#"[{"name":"wlx0","frequency":5745},{"name":"wlx1","frequency":2437},{"type":10}]"#,
        )
        .unwrap();
        std::fs::create_dir(d.join("wlx0")).unwrap();
        std::fs::write(
            d.join("wlx0/bss.json"),
            r#"{"ssid":"lab","bssid":"AhEiM0RV","status":2}"#,
        )
        .unwrap();
        std::fs::write(
            d.join("wlx0/stationinfo.json"),
            r#"[{"hardwareaddr":"AgAAAAAB","connected":90000000000,"inactive":1500000000,"signal":-70,"receivedpackets":12}]"#,
        )
        .unwrap();
        let flag = format!("--collector.wifi.fixtures={}", d.display());
        let c = build_with("wifi", &paths_under(d), &[&flag]);
        let out = scrape(&*c);
        assert_eq!(out.len(), 14);
        let get = |n: &str| out.iter().find(|f| f.name == n).unwrap();
        assert_eq!(get("node_wifi_interface_frequency_hertz").metrics.len(), 2);
        let info = &get("node_wifi_station_info").metrics[0];
        assert!(info.labels.contains(&("mode".into(), "ad-hoc".into())));
        assert!(info
            .labels
            .contains(&("bssid".into(), "02:11:22:33:44:55".into())));
        let conn = &get("node_wifi_station_connected_seconds_total").metrics[0];
        assert_eq!(conn.value, oxmon_core::metrics::Value::Single(90.0));
        assert!(conn
            .labels
            .contains(&("mac_address".into(), "02:00:00:00:00:01".into())));
        let inactive = &get("node_wifi_station_inactive_seconds").metrics[0];
        assert_eq!(inactive.value, oxmon_core::metrics::Value::Single(1.5));
        // A broken file fails the scrape and names the file.
        std::fs::write(d.join("wlx0/bss.json"), "{").unwrap();
        let c = build_with("wifi", &paths_under(d), &[&flag]);
        let err = try_scrape(&*c).1.unwrap_err().to_string();
        assert!(err.contains("bss.json"), "{err}");
    }

    #[test]
    fn live_path_without_wifi_succeeds_quietly() {
        let paths = paths_under(Path::new("/nonexistent"));
        let options = crate::collectors::testing::options(&[]);
        let wifi = Wifi::new(&Ctx {
            paths: &paths,
            options: &options,
        });
        let out = scrape(&wifi);
        // Whatever this host has, every interface reported has a name.
        for m in &out[0].metrics {
            assert!(!m.labels[0].1.is_empty());
        }
        // Without a WiFi driver the kernel has no nl80211 family: nothing
        // is reported, and that is remembered so the next scrape asks no
        // one.
        if !Path::new("/sys/class/ieee80211").exists() {
            assert!(out.iter().all(|f| f.metrics.is_empty()));
            assert!(wifi.absent.known());
            assert!(scrape(&wifi).iter().all(|f| f.metrics.is_empty()));
        }
    }
}

//! pcidevice: PCI devices, their PCIe links, SR-IOV and power state.
//!
//! Source: `<sysfs>/bus/pci/devices/<location>` (a symlink whose target
//! names the parent bridge) and its attributes `class`, `vendor`,
//! `device`, `subsystem_{vendor,device}`, `revision`,
//! `{max,current}_link_{speed,width}`, `numa_node`, `sriov_*`,
//! `d3cold_allowed`, `power_state`. Metrics (gauges), labelled `segment`,
//! `bus`, `device`, `function`: `node_pcidevice_info` (with the parent's
//! location, `*` under a host bridge, and the ids; with
//! `--collector.pcidevice.names` also `vendor_name`, `device_name`,
//! `subsystem_vendor_name`, `subsystem_device_name`, `class_name` from
//! `pci.ids`), `node_pcidevice_{max,current}_link_transfers_per_second`,
//! `node_pcidevice_{max,current}_link_width` (-1 when the device has no
//! PCIe link), `node_pcidevice_d3cold_allowed`,
//! `node_pcidevice_sriov_{drivers_autoprobe,numvfs,totalvfs,vf_total_msix}`
//! (0 when absent, as node_exporter reports them),
//! `node_pcidevice_power_state{state}` (one series per state, 1 for the
//! current one) and `node_pcidevice_numa_node` (only when known).
//! Off by default. Flags: `--collector.pcidevice.names` (off) and
//! `--collector.pcidevice.idsfile` (default: the first of
//! `/usr/share/misc/pci.ids` and `/usr/share/hwdata/pci.ids`), read once
//! at start-up. A device whose attributes do not parse is left out and
//! fails the collector after the others are exported. The attributes are
//! read on the collector's own blocking lane: link attributes come from
//! the device's configuration space, which a device in error answers
//! slowly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::blocking::{blocking_collector, BlockingCollector};
use oxmon_core::collector::{CollectError, CollectResult, ScrapeContext};
use oxmon_core::metrics::{LabelName, LabelValue};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::AbsentSource;
use crate::file_cache::{is_missing, parse_int_auto, read_trimmed};

/// Where node_exporter looks for `pci.ids` when no file is named.
const DEFAULT_IDS_FILES: &[&str] = &["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"];

/// The power states node_exporter reports, one series each.
const POWER_STATES: &[&str] = &["D0", "D1", "D2", "D3hot", "D3cold", "unknown", "error"];

/// Flags of the pcidevice collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Path to pci.ids file to use for PCI device identification.
    #[arg(
        id = "collector.pcidevice.idsfile",
        long = "collector.pcidevice.idsfile",
        value_name = "PATH"
    )]
    pub ids_file: Option<String>,
    /// Enable PCI device name resolution (requires pci.ids file).
    #[arg(id = "collector.pcidevice.names", long = "collector.pcidevice.names")]
    pub names: bool,
}

/// A PCI location `segment:bus:device.function`, as the four label values
/// node_exporter writes (`0000`, `01`, `00`, `0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location([String; 4]);

/// Parses a location (`0000:01:00.0`); `None` when it is not one.
pub fn parse_location(text: &str) -> Option<Location> {
    let mut parts = text.split(':');
    let (Some(seg), Some(bus), Some(rest), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let (dev, func) = rest.split_once('.')?;
    let hex = |s: &str| -> Option<u32> {
        if s.is_empty() || s.starts_with(['+', '-']) {
            return None;
        }
        u32::from_str_radix(s, 16)
            .ok()
            .filter(|v| *v <= i32::MAX as u32)
    };
    Some(Location([
        format!("{:04x}", hex(seg)?),
        format!("{:02x}", hex(bus)?),
        format!("{:02x}", hex(dev)?),
        format!("{:x}", hex(func)?),
    ]))
}

/// The device's and its parent's location from the target of its
/// `bus/pci/devices` symlink (`../../../devices/pci0000:00/0000:00:02.1/0000:01:00.0`);
/// the parent is `None` under a host bridge (`pci0000:00`).
pub fn parse_link_target(target: &str) -> Option<(Location, Option<Location>)> {
    let mut parts = target.trim_end_matches('/').rsplit('/');
    let own = parse_location(parts.next()?)?;
    let parent = match parts.next() {
        Some(p) if !p.starts_with("pci") => Some(parse_location(p)?),
        _ => None,
    };
    Some((own, parent))
}

/// A link speed (`8.0 GT/s PCIe`) in transfers per second; `Ok(None)` for
/// an empty or `Unknown` value.
pub fn parse_link_speed(text: &str) -> Result<Option<f64>, String> {
    if text.is_empty() || text.starts_with("Unknown") {
        return Ok(None);
    }
    let (num, unit) = text
        .split_once(' ')
        .ok_or_else(|| format!("not a link speed: {text:?}"))?;
    if unit != "GT/s PCIe" {
        return Err(format!("unknown unit in link speed {text:?}"));
    }
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a link speed: {text:?}"))?;
    Ok(Some(v * 1e9))
}

/// Names from a `pci.ids` file.
#[derive(Debug, Default)]
pub struct PciIds {
    vendors: HashMap<String, String>,
    devices: HashMap<(String, String), String>,
    subsystems: HashMap<(String, String, String, String), String>,
    classes: HashMap<String, String>,
}

/// Splits an id line (`8086  Intel Corporation`) at its two-space
/// separator.
fn id_and_name(line: &str) -> Option<(&str, &str)> {
    let (id, name) = line.split_once("  ")?;
    Some((id.trim(), name.trim()))
}

/// Parses `pci.ids`: vendors with their devices and subsystems, then the
/// `C` class sections with subclasses and programming interfaces (kept
/// under their concatenated hex ids: `01`, `0108`, `010802`).
pub fn parse_pci_ids(text: &str) -> PciIds {
    let mut ids = PciIds::default();
    let (mut vendor, mut device) = (String::new(), String::new());
    let (mut class, mut subclass) = (String::new(), String::new());
    let mut in_classes = false;
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("C ") {
            if let Some((id, name)) = id_and_name(rest) {
                class = id.to_ascii_lowercase();
                ids.classes.insert(class.clone(), name.to_string());
                in_classes = true;
            }
            continue;
        }
        let depth = line.bytes().take_while(|b| *b == b'\t').count();
        let Some((id, name)) = id_and_name(&line[depth..]) else {
            continue;
        };
        let id = id.to_ascii_lowercase();
        match (depth, in_classes) {
            (0, _) => {
                in_classes = false;
                vendor = id;
                device.clear();
                ids.vendors.insert(vendor.clone(), name.to_string());
            }
            (1, true) if !class.is_empty() => {
                subclass = format!("{class}{id}");
                ids.classes.insert(subclass.clone(), name.to_string());
            }
            (2, true) if !subclass.is_empty() => {
                ids.classes
                    .insert(format!("{subclass}{id}"), name.to_string());
            }
            (1, false) if !vendor.is_empty() => {
                device = id;
                ids.devices
                    .insert((vendor.clone(), device.clone()), name.to_string());
            }
            (2, false) if !device.is_empty() => {
                let mut sub = id.split_whitespace();
                if let (Some(sv), Some(sd), None) = (sub.next(), sub.next(), sub.next()) {
                    ids.subsystems.insert(
                        (vendor.clone(), device.clone(), sv.into(), sd.into()),
                        name.to_string(),
                    );
                }
            }
            _ => {}
        }
    }
    ids
}

impl PciIds {
    fn vendor(&self, v: &str) -> String {
        self.vendors
            .get(v)
            .cloned()
            .unwrap_or_else(|| v.to_string())
    }

    fn device(&self, v: &str, d: &str) -> String {
        self.devices
            .get(&(v.to_string(), d.to_string()))
            .cloned()
            .unwrap_or_else(|| d.to_string())
    }

    fn subsystem(&self, v: &str, d: &str, sv: &str, sd: &str) -> String {
        self.subsystems
            .get(&(v.into(), d.into(), sv.into(), sd.into()))
            .cloned()
            .unwrap_or_else(|| sd.to_string())
    }

    /// The most specific name of a 6-digit class id: programming
    /// interface, else subclass, else base class.
    fn class(&self, class: &str) -> String {
        [6, 4, 2]
            .iter()
            .filter(|n| class.len() >= **n)
            .find_map(|n| self.classes.get(&class[..*n]).cloned())
            .unwrap_or_else(|| format!("Unknown class ({class})"))
    }
}

/// The families of one scrape.
struct Families {
    info: MetricFamily,
    max_speed: MetricFamily,
    max_width: MetricFamily,
    cur_speed: MetricFamily,
    cur_width: MetricFamily,
    d3cold: MetricFamily,
    autoprobe: MetricFamily,
    numvfs: MetricFamily,
    totalvfs: MetricFamily,
    vf_msix: MetricFamily,
    power: MetricFamily,
    numa: MetricFamily,
}

impl Families {
    fn new() -> Self {
        let g = MetricFamily::gauge;
        Families {
            info: g(
                "node_pcidevice_info",
                "Non-numeric data from /sys/bus/pci/devices/<location>, value is always 1.",
            ),
            max_speed: g(
                "node_pcidevice_max_link_transfers_per_second",
                "Value of maximum link's transfers per second (T/s)",
            ),
            max_width: g(
                "node_pcidevice_max_link_width",
                "Value of maximum link's width (number of lanes)",
            ),
            cur_speed: g(
                "node_pcidevice_current_link_transfers_per_second",
                "Value of current link's transfers per second (T/s)",
            ),
            cur_width: g(
                "node_pcidevice_current_link_width",
                "Value of current link's width (number of lanes)",
            ),
            d3cold: g(
                "node_pcidevice_d3cold_allowed",
                "Whether the PCIe device supports D3cold power state (0/1).",
            ),
            autoprobe: g(
                "node_pcidevice_sriov_drivers_autoprobe",
                "Whether SR-IOV drivers autoprobe is enabled for the device (0/1).",
            ),
            numvfs: g(
                "node_pcidevice_sriov_numvfs",
                "Number of Virtual Functions (VFs) currently enabled for SR-IOV.",
            ),
            totalvfs: g(
                "node_pcidevice_sriov_totalvfs",
                "Total number of Virtual Functions (VFs) supported by the device.",
            ),
            vf_msix: g(
                "node_pcidevice_sriov_vf_total_msix",
                "Total number of MSI-X vectors for Virtual Functions.",
            ),
            power: g(
                "node_pcidevice_power_state",
                "PCIe device power state, one of: D0, D1, D2, D3hot, D3cold, unknown or error.",
            ),
            numa: g(
                "node_pcidevice_numa_node",
                "NUMA node number for the PCI device. -1 indicates unknown or not available.",
            ),
        }
    }
}

/// The pcidevice collector.
pub struct PciDevice {
    dir: PathBuf,
    names: Option<PciIds>,
    absent: AbsentSource,
}

/// Reads an optional attribute, trimmed; `Ok(None)` when it is missing.
/// The attributes are opened for each read rather than kept open in a
/// [`crate::file_cache::FileCache`]: a host with SR-IOV has thousands of
/// PCI functions, twenty attributes each, which kept descriptors would
/// turn into more open files than the default limit of 1024.
fn optional(path: &Path) -> Result<Option<String>, String> {
    match read_trimmed(path) {
        Ok(t) => Ok(Some(t.trim().to_string())),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Parses an optional decimal attribute; empty is absent.
fn number(path: &Path) -> Result<Option<i64>, String> {
    match optional(path)? {
        Some(t) if !t.is_empty() => t
            .parse()
            .map(Some)
            .map_err(|_| format!("{}: not a number: {t:?}", path.display())),
        _ => Ok(None),
    }
}

impl PciDevice {
    fn device(&self, entry: &str, f: &mut Families) -> Result<(), String> {
        let path = self.dir.join(entry);
        let (own, parent) = match std::fs::read_link(&path) {
            Ok(target) => parse_link_target(&target.to_string_lossy()).ok_or_else(|| {
                format!(
                    "{}: no PCI location in {}",
                    path.display(),
                    target.display()
                )
            })?,
            // Not a symlink (a copied tree): the entry names the device,
            // its parent is unknown.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => (
                parse_location(entry)
                    .ok_or_else(|| format!("{}: not a PCI location", path.display()))?,
                None,
            ),
            Err(e) => return Err(format!("reading link {}: {e}", path.display())),
        };
        let mut ids = [0u32; 6];
        for (i, file) in [
            "class",
            "vendor",
            "device",
            "subsystem_vendor",
            "subsystem_device",
            "revision",
        ]
        .iter()
        .enumerate()
        {
            let p = path.join(file);
            let text = optional(&p)?.ok_or_else(|| format!("{}: missing", p.display()))?;
            ids[i] = parse_int_auto(&text)
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| format!("{}: not an id: {text:?}", p.display()))?
                as u32;
        }
        let mut link = [None; 4];
        for (i, file) in [
            "max_link_speed",
            "max_link_width",
            "current_link_speed",
            "current_link_width",
        ]
        .iter()
        .enumerate()
        {
            let p = path.join(file);
            let Some(text) = optional(&p)? else {
                continue;
            };
            link[i] = if i % 2 == 0 {
                parse_link_speed(&text).map_err(|e| format!("{}: {e}", p.display()))?
            } else if text.is_empty() || text.starts_with("Unknown") {
                None
            } else {
                Some(
                    text.parse::<i64>()
                        .map_err(|_| format!("{}: not a width: {text:?}", p.display()))?
                        as f64,
                )
            };
        }
        let numa = number(&path.join("numa_node"))?;
        let autoprobe = number(&path.join("sriov_drivers_autoprobe"))?;
        let numvfs = number(&path.join("sriov_numvfs"))?;
        let totalvfs = number(&path.join("sriov_totalvfs"))?;
        let vf_msix = number(&path.join("sriov_vf_total_msix"))?;
        let d3cold = number(&path.join("d3cold_allowed"))?;
        let power = optional(&path.join("power_state"))?.filter(|s| !s.is_empty());

        let [segment, bus, dev, func] = &own.0;
        let loc = [
            ("segment", segment.as_str()),
            ("bus", bus.as_str()),
            ("device", dev.as_str()),
            ("function", func.as_str()),
        ];
        let star = Location(["*".into(), "*".into(), "*".into(), "*".into()]);
        let parent = parent.unwrap_or(star);
        let hex = [
            format!("0x{:06x}", ids[0]),
            format!("0x{:04x}", ids[1]),
            format!("0x{:04x}", ids[2]),
            format!("0x{:04x}", ids[3]),
            format!("0x{:04x}", ids[4]),
            format!("0x{:02x}", ids[5]),
        ];
        let mut info: Vec<(LabelName, LabelValue)> = loc
            .iter()
            .map(|(k, v)| (LabelName::from(*k), LabelValue::from(*v)))
            .collect();
        for (k, v) in [
            "parent_segment",
            "parent_bus",
            "parent_device",
            "parent_function",
        ]
        .iter()
        .zip(parent.0)
        {
            info.push(((*k).into(), v.into()));
        }
        for (k, v) in [
            "class_id",
            "vendor_id",
            "device_id",
            "subsystem_vendor_id",
            "subsystem_device_id",
            "revision",
        ]
        .iter()
        .zip(&hex)
        {
            info.push(((*k).into(), v.as_str().into()));
        }
        if let Some(names) = &self.names {
            let bare: Vec<&str> = hex.iter().map(|h| &h[2..]).collect();
            info.push(("vendor_name".into(), names.vendor(bare[1]).into()));
            info.push(("device_name".into(), names.device(bare[1], bare[2]).into()));
            info.push(("subsystem_vendor_name".into(), names.vendor(bare[3]).into()));
            info.push((
                "subsystem_device_name".into(),
                names.subsystem(bare[1], bare[2], bare[3], bare[4]).into(),
            ));
            info.push(("class_name".into(), names.class(bare[0]).into()));
        }
        f.info.add_owned(info, 1.0);
        f.max_speed.add(&loc, link[0].unwrap_or(-1.0));
        f.max_width.add(&loc, link[1].unwrap_or(-1.0));
        f.cur_speed.add(&loc, link[2].unwrap_or(-1.0));
        f.cur_width.add(&loc, link[3].unwrap_or(-1.0));
        let flag = |v: Option<i64>| if v.unwrap_or(0) != 0 { 1.0 } else { 0.0 };
        f.d3cold.add(&loc, flag(d3cold));
        f.autoprobe.add(&loc, flag(autoprobe));
        f.numvfs.add(&loc, numvfs.unwrap_or(0) as f64);
        f.totalvfs.add(&loc, totalvfs.unwrap_or(0) as f64);
        f.vf_msix.add(&loc, vf_msix.unwrap_or(0) as f64);
        if let Some(current) = power {
            for state in POWER_STATES {
                let mut labels = loc.to_vec();
                labels.push(("state", state));
                f.power
                    .add(&labels, if *state == current { 1.0 } else { 0.0 });
            }
        }
        if let Some(n) = numa.filter(|n| *n != -1) {
            f.numa.add(&loc, n as f64);
        }
        Ok(())
    }
}

impl BlockingCollector for PciDevice {
    type Found = Vec<(String, std::fs::FileType)>;

    fn name(&self) -> &'static str {
        "pcidevice"
    }

    fn check(&self, _: &ScrapeContext) -> Result<Option<Self::Found>, CollectError> {
        let found = self.absent.entries(&self.dir)?;
        if found.is_none() {
            tracing::debug!(path = %self.dir.display(), "PCI devices not found");
        }
        Ok(found.filter(|d| !d.is_empty()))
    }

    fn collect(
        &self,
        _: &ScrapeContext,
        entries: Self::Found,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        let mut f = Families::new();
        let mut result = Ok(());
        for (entry, _) in entries {
            if let Err(e) = self.device(&entry, &mut f) {
                result = Err(e.into());
            }
        }
        out.extend([
            f.info,
            f.max_speed,
            f.max_width,
            f.cur_speed,
            f.cur_width,
            f.d3cold,
            f.autoprobe,
            f.numvfs,
            f.totalvfs,
            f.vf_msix,
            f.power,
            f.numa,
        ]);
        result
    }
}

/// Loads `pci.ids` for `--collector.pcidevice.names`: the named file, else
/// the first default that exists. Without one the ids stand in for the
/// names, as in node_exporter.
fn load_names(ids_file: Option<&str>) -> PciIds {
    let candidates: Vec<&str> = match ids_file {
        Some(f) => vec![f],
        None => DEFAULT_IDS_FILES.to_vec(),
    };
    for path in candidates {
        match read_trimmed(Path::new(path)) {
            Ok(text) => return parse_pci_ids(&text),
            Err(e) => tracing::debug!(path, error = %e, "pci.ids not read"),
        }
    }
    tracing::warn!("no pci.ids file found: PCI device names are their ids");
    PciIds::default()
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let flags = &ctx.options.pcidevice;
    Ok(blocking_collector(PciDevice {
        dir: ctx.paths.sys("bus/pci/devices"),
        names: flags.names.then(|| load_names(flags.ids_file.as_deref())),
        absent: AbsentSource::default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{
        build_with, first_label, paths_under, scrape, single, try_scrape,
    };

    #[test]
    fn locations_and_links() {
        let loc = |s| parse_location(s).map(|l| l.0);
        assert_eq!(
            loc("0000:01:00.0"),
            Some(["0000".into(), "01".into(), "00".into(), "0".into()])
        );
        assert_eq!(
            loc("0000:00:1f.6"),
            Some(["0000".into(), "00".into(), "1f".into(), "6".into()])
        );
        assert_eq!(loc("0000:01:00"), None);
        assert_eq!(loc("pci0000:00"), None);
        assert_eq!(loc("0000:0g:00.0"), None);
        let (own, parent) =
            parse_link_target("../../../devices/pci0000:00/0000:00:02.1/0000:01:00.0").unwrap();
        assert_eq!(own.0[1], "01");
        assert_eq!(parent.unwrap().0[3], "1");
        let (_, parent) = parse_link_target("../../../devices/pci0000:40/0000:40:01.3").unwrap();
        assert!(parent.is_none());
        assert_eq!(parse_link_speed("16.0 GT/s PCIe"), Ok(Some(1.6e10)));
        assert_eq!(parse_link_speed("Unknown"), Ok(None));
        assert!(parse_link_speed("8 Gb/s").is_err());
    }

    #[test]
    fn pci_ids_lookups_fall_back_to_the_ids() {
        let ids = parse_pci_ids(
            "# comment\n10de  NVIDIA Corporation\n\t2330  GH100 [H100 SXM5 80GB]\n\
             \t\t10de 16c1  H100 SXM5 80GB\n15b3  Mellanox Technologies\n\
             C 02  Network controller\n\t07  Infiniband controller\n\
             C 03  Display controller\n\t02  3D controller\n\t\t00  VGA\n",
        );
        assert_eq!(ids.vendor("10de"), "NVIDIA Corporation");
        assert_eq!(ids.device("10de", "2330"), "GH100 [H100 SXM5 80GB]");
        assert_eq!(
            ids.subsystem("10de", "2330", "10de", "16c1"),
            "H100 SXM5 80GB"
        );
        assert_eq!(ids.subsystem("10de", "2330", "1028", "0001"), "0001");
        assert_eq!(ids.device("15b3", "1021"), "1021");
        assert_eq!(ids.class("020700"), "Infiniband controller");
        assert_eq!(ids.class("030200"), "VGA");
        assert_eq!(ids.class("030100"), "Display controller");
        assert_eq!(ids.class("ff0000"), "Unknown class (ff0000)");
    }

    fn device(root: &Path, loc: &str, attrs: &[(&str, &str)]) {
        let dir = root.join("bus/pci/devices").join(loc);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, v) in attrs {
            std::fs::write(dir.join(f), format!("{v}\n")).unwrap();
        }
    }

    const IDS: &[(&str, &str)] = &[
        ("class", "0x030200"),
        ("vendor", "0x10de"),
        ("device", "0x2330"),
        ("subsystem_vendor", "0x10de"),
        ("subsystem_device", "0x16c1"),
        ("revision", "0xa1"),
    ];

    #[test]
    fn reads_devices_and_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut attrs = IDS.to_vec();
        attrs.extend([
            ("max_link_speed", "32.0 GT/s PCIe"),
            ("current_link_speed", "16.0 GT/s PCIe"),
            ("current_link_width", "16"),
            ("numa_node", "1"),
            ("power_state", "D3hot"),
        ]);
        device(dir.path(), "0000:1b:00.0", &attrs);
        let ids = dir.path().join("pci.ids");
        std::fs::write(&ids, "10de  NVIDIA Corporation\n\t2330  GH100\n").unwrap();
        let paths = paths_under(dir.path());
        let flag = format!("--collector.pcidevice.idsfile={}", ids.display());
        let out = scrape(&*build_with(
            "pcidevice",
            &paths,
            &["--collector.pcidevice.names", &flag],
        ));
        let at = [("bus", "1b")];
        assert_eq!(
            single(&out, "node_pcidevice_max_link_transfers_per_second", &at),
            Some(3.2e10)
        );
        assert_eq!(
            single(&out, "node_pcidevice_max_link_width", &at),
            Some(-1.0)
        );
        assert_eq!(
            single(&out, "node_pcidevice_current_link_width", &at),
            Some(16.0)
        );
        assert_eq!(single(&out, "node_pcidevice_numa_node", &at), Some(1.0));
        assert_eq!(
            single(&out, "node_pcidevice_power_state", &[("state", "D3hot")]),
            Some(1.0)
        );
        assert_eq!(
            single(&out, "node_pcidevice_power_state", &[("state", "D0")]),
            Some(0.0)
        );
        assert_eq!(
            first_label(&out, "node_pcidevice_info", "device_name"),
            "GH100"
        );
        assert_eq!(
            first_label(&out, "node_pcidevice_info", "class_name"),
            "Unknown class (030200)"
        );
        assert_eq!(first_label(&out, "node_pcidevice_info", "parent_bus"), "*");
        assert_eq!(first_label(&out, "node_pcidevice_info", "revision"), "0xa1");

        // Without --collector.pcidevice.names there are no name labels; a
        // device missing an id fails the collector, the other is exported.
        device(dir.path(), "0000:2a:00.0", &IDS[..3]);
        let (out, result) = try_scrape(&*build_with("pcidevice", &paths, &[]));
        assert!(result.unwrap_err().to_string().contains("subsystem_vendor"));
        let info = out
            .iter()
            .find(|f| f.name == "node_pcidevice_info")
            .unwrap();
        assert_eq!(info.metrics.len(), 1);
        assert!(!info.metrics[0]
            .labels
            .iter()
            .any(|(k, _)| k == "device_name"));
    }

    #[test]
    fn the_symlink_target_names_the_parent() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir
            .path()
            .join("devices/pci0000:00/0000:00:01.1/0000:03:00.0");
        std::fs::create_dir_all(&real).unwrap();
        for (f, v) in IDS {
            std::fs::write(real.join(f), v).unwrap();
        }
        let devices = dir.path().join("bus/pci/devices");
        std::fs::create_dir_all(&devices).unwrap();
        std::os::unix::fs::symlink(
            "../../../devices/pci0000:00/0000:00:01.1/0000:03:00.0",
            devices.join("0000:03:00.0"),
        )
        .unwrap();
        let out = scrape(&*build_with("pcidevice", &paths_under(dir.path()), &[]));
        assert_eq!(
            first_label(&out, "node_pcidevice_info", "parent_device"),
            "01"
        );
        assert_eq!(first_label(&out, "node_pcidevice_info", "bus"), "03");
    }
}

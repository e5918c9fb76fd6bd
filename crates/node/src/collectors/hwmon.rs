//! hwmon: hardware sensors (temperatures, voltages, fans, power, …).
//!
//! Source: `<sysfs>/class/hwmon/hwmon<N>/` and its `device/` directory
//! (files `<type><n>_<property>`, e.g. `temp1_input`, `fan2_min`).
//! Metrics (gauges, labels `chip`, `sensor`): `node_hwmon_temp_celsius`,
//! `node_hwmon_temp_{max,crit,…}_celsius`, `node_hwmon_in_volts`,
//! `node_hwmon_fan_rpm`, `node_hwmon_power_watt`, `node_hwmon_curr_amps`,
//! `node_hwmon_energy_joule_total` (counter), `node_hwmon_humidity`,
//! `node_hwmon_<type>_{alarm,fault}`, `node_hwmon_<type>_beep_enabled`,
//! `node_hwmon_freq_freq_mhz`, other properties as
//! `node_hwmon_<type>_<property>`; `node_hwmon_chip_names{chip,chip_name}`
//! and `node_hwmon_sensor_label{chip,sensor,label}`. The `chip` label is
//! derived from the device path as node_exporter does
//! (`platform_coretemp_0`), with the chip's name appended when several
//! chips sit on one device. On by default. Flags:
//! `--collector.hwmon.chip-include` / `--collector.hwmon.chip-exclude`,
//! `--collector.hwmon.sensor-include` / `--collector.hwmon.sensor-exclude`
//! (matched against `<chip>;<sensor>`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxmon_core::blocking::{blocking_collector, BlockingCollector};
use oxmon_core::collector::{CollectError, CollectResult, ScrapeContext};
use oxmon_core::sync::LockExt;
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::device_filter::DeviceFilter;
use crate::dir_listing::{dir_entries, AbsentSource};
use crate::file_cache::{CacheScope, FileCache};

/// Flags of the hwmon collector (node_exporter's names).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regexp of hwmon chip to include (mutually exclusive to chip-exclude).
    #[arg(
        id = "collector.hwmon.chip-include",
        long = "collector.hwmon.chip-include",
        value_name = "REGEX"
    )]
    pub chip_include: Option<String>,
    /// Regexp of hwmon chip to exclude (mutually exclusive to chip-include).
    #[arg(
        id = "collector.hwmon.chip-exclude",
        long = "collector.hwmon.chip-exclude",
        value_name = "REGEX"
    )]
    pub chip_exclude: Option<String>,
    /// Regexp of hwmon sensor (`<chip>;<sensor>`) to include.
    #[arg(
        id = "collector.hwmon.sensor-include",
        long = "collector.hwmon.sensor-include",
        value_name = "REGEX"
    )]
    pub sensor_include: Option<String>,
    /// Regexp of hwmon sensor (`<chip>;<sensor>`) to exclude.
    #[arg(
        id = "collector.hwmon.sensor-exclude",
        long = "collector.hwmon.sensor-exclude",
        value_name = "REGEX"
    )]
    pub sensor_exclude: Option<String>,
}

/// Sensor types node_exporter reads.
const SENSOR_TYPES: [&str; 14] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
    "freq",
];

/// Lower-cases a name and turns every character outside `[a-z0-9:_]`
/// into `_`, trimming leading and trailing underscores.
pub fn clean_name(s: &str) -> String {
    let mapped: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    mapped.trim_matches('_').to_string()
}

/// Splits a sensor file name into `(type, number, property)`:
/// `temp1_input` → `("temp", 1, "input")`, `beep_enable` →
/// `("beep_enable", 0, "")`.
pub fn explode_sensor_filename(name: &str) -> Option<(&str, u32, &str)> {
    let ty_end = name
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(name.len());
    if ty_end == 0 {
        return None;
    }
    let ty = &name[..ty_end];
    let rest = &name[ty_end..];
    let num_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let num = if num_end == 0 {
        0
    } else {
        rest[..num_end].parse().ok()?
    };
    let rest = &rest[num_end..];
    let prop = match rest.strip_prefix('_') {
        Some(p) if !p.is_empty() => p,
        _ if rest.is_empty() => "",
        _ => return None,
    };
    Some((ty, num, prop))
}

/// One sensor's values: property → raw text (`""` is the bare file such as
/// `pwm1`).
pub type SensorData = BTreeMap<String, String>;

/// Families of one scrape, created on first use in a stable order.
#[derive(Default)]
struct Out {
    fams: Vec<MetricFamily>,
    index: HashMap<String, usize>,
}

impl Out {
    fn family(&mut self, name: &str, help: String, counter: bool) -> &mut MetricFamily {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                let f = if counter {
                    MetricFamily::counter(name.to_string(), help)
                } else {
                    MetricFamily::gauge(name.to_string(), help)
                };
                self.fams.push(f);
                self.index.insert(name.to_string(), self.fams.len() - 1);
                self.fams.len() - 1
            }
        };
        &mut self.fams[i]
    }

    fn gauge(&mut self, name: &str, help: String, chip: &str, sensor: &str, v: f64) {
        self.family(name, help, false)
            .add(&[("chip", chip), ("sensor", sensor)], v);
    }
}

/// Turns one sensor's data into samples, following node_exporter's unit
/// rules.
/// A sensor attribute's value; one that is not a number is skipped (as
/// node_exporter skips it), logged at debug level.
fn number(chip: &str, sensor: &str, value: Option<&String>) -> Option<f64> {
    let value = value?;
    let v = value.trim().parse().ok();
    if v.is_none() {
        tracing::debug!(chip, sensor, value = %value, "hwmon value is not a number, skipped");
    }
    v
}

fn emit_sensor(out: &mut Out, chip: &str, sensor: &str, data: &SensorData) {
    let Some((ty, _, _)) = explode_sensor_filename(sensor) else {
        return;
    };
    if let Some(label) = data.get("label") {
        out.family(
            "node_hwmon_sensor_label",
            "Label for given chip and sensor".into(),
            false,
        )
        .add(&[("chip", chip), ("sensor", sensor), ("label", label)], 1.0);
    }
    let bare = data.get("");
    match ty {
        "beep_enable" => {
            if let Some(v) = number(chip, sensor, bare) {
                out.gauge(
                    "node_hwmon_beep_enabled",
                    "Hardware beep enabled".into(),
                    chip,
                    sensor,
                    v,
                );
            }
            return;
        }
        "vrm" => {
            if let Some(v) = number(chip, sensor, bare) {
                out.gauge(
                    "node_hwmon_voltage_regulator_version",
                    "Hardware voltage regulator".into(),
                    chip,
                    sensor,
                    v,
                );
            }
            return;
        }
        "update_interval" => {
            if let Some(v) = number(chip, sensor, bare) {
                out.gauge(
                    "node_hwmon_update_interval_seconds",
                    "Hardware monitor update interval".into(),
                    chip,
                    sensor,
                    v * 0.001,
                );
            }
            return;
        }
        _ => {}
    }
    let prefix = format!("node_hwmon_{ty}");
    for (element, value) in data {
        let element = element.as_str();
        if element == "label" {
            continue;
        }
        let mut name = prefix.clone();
        if element == "input" {
            if bare.is_some() {
                name.push_str("_input");
            }
        } else if !element.is_empty() {
            name.push('_');
            name.push_str(&clean_name(element));
        }
        let Some(v) = number(chip, sensor, Some(value)) else {
            continue;
        };
        if element == "fault" || element == "alarm" {
            let help = format!("Hardware sensor {element} status ({ty})");
            out.gauge(&name, help, chip, sensor, v);
            continue;
        }
        if element == "beep" {
            let help = "Hardware monitor sensor has beeping enabled".to_string();
            out.gauge(&format!("{name}_enabled"), help, chip, sensor, v);
            continue;
        }
        match ty {
            "in" | "cpu" => {
                let help = format!("Hardware monitor for voltage ({element})");
                out.gauge(&format!("{name}_volts"), help, chip, sensor, v * 0.001);
            }
            "temp" if element != "type" => {
                let e = if element.is_empty() { "input" } else { element };
                let help = format!("Hardware monitor for temperature ({e})");
                out.gauge(&format!("{name}_celsius"), help, chip, sensor, v * 0.001);
            }
            "curr" => {
                let help = format!("Hardware monitor for current ({element})");
                out.gauge(&format!("{name}_amps"), help, chip, sensor, v * 0.001);
            }
            "energy" => {
                let help = format!("Hardware monitor for joules used so far ({element})");
                out.family(&format!("{name}_joule_total"), help, true)
                    .add(&[("chip", chip), ("sensor", sensor)], v / 1e6);
            }
            "power" if element == "accuracy" => {
                let help = "Hardware monitor power meter accuracy, as a ratio".to_string();
                out.gauge(&name, help, chip, sensor, v / 1e6);
            }
            "power"
                if matches!(
                    element,
                    "average_interval" | "average_interval_min" | "average_interval_max"
                ) =>
            {
                let help = format!("Hardware monitor power usage update interval ({element})");
                out.gauge(&format!("{name}_seconds"), help, chip, sensor, v * 0.001);
            }
            "power" => {
                let help = format!("Hardware monitor for power usage in watts ({element})");
                out.gauge(&format!("{name}_watt"), help, chip, sensor, v / 1e6);
            }
            "humidity" => {
                let help = format!("Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ({element})");
                out.gauge(&name, help, chip, sensor, v / 1e6);
            }
            "fan" if matches!(element, "input" | "min" | "max" | "target") => {
                let help = format!("Hardware monitor for fan revolutions per minute ({element})");
                out.gauge(&format!("{name}_rpm"), help, chip, sensor, v);
            }
            "freq" if element == "input" => {
                if let Some(label) = data.get("label") {
                    let help = "Hardware monitor for GPU frequency in MHz".to_string();
                    out.gauge(
                        &format!("{name}_freq_mhz"),
                        help,
                        chip,
                        &clean_name(label),
                        v / 1e6,
                    );
                }
            }
            "freq" => {}
            _ => {
                let help = format!("Hardware monitor {ty} element {element}");
                out.gauge(&name, help, chip, sensor, v);
            }
        }
    }
}

/// The sensor files of one directory: `(path, sensor, property)`.
fn sensor_files(dir: &Path, out: &mut Vec<(PathBuf, String, String)>) -> std::io::Result<()> {
    let Some(entries) = dir_entries(dir)? else {
        return Ok(());
    };
    for (file, _) in entries {
        let Some((ty, num, prop)) = explode_sensor_filename(&file) else {
            continue;
        };
        if SENSOR_TYPES.contains(&ty) {
            out.push((dir.join(&file), format!("{ty}{num}"), prop.to_string()));
        }
    }
    Ok(())
}

/// A chip directory with the names derived for it and its sensor files.
struct Chip {
    /// The `chip` label.
    name: String,
    /// Cleaned content of the `name` file (`node_hwmon_chip_names`).
    human: Option<String>,
    /// Sensor files of the chip directory, then of its `device` directory
    /// (whose values win), as `(path, sensor, property)`.
    files: Vec<(PathBuf, String, String)>,
}

/// How long the chip layout (names, sensor file lists) is reused while the
/// list of hwmon entries stays the same. Deriving it resolves symlinks and
/// lists two directories per chip.
const LAYOUT_TTL: Duration = Duration::from_secs(60);

struct Layout {
    entries: Vec<String>,
    chips: Vec<Chip>,
    taken: Instant,
}

/// node_exporter's chip name: `<device type>_<device name>` from the
/// resolved `device` link, else the cleaned `name` file, else the
/// directory name.
fn base_chip_name(scope: &mut CacheScope<'_>, dir: &Path) -> Option<String> {
    if let Ok(dev) = std::fs::canonicalize(dir.join("device")) {
        let dev_name = dev.file_name().map(|n| clean_name(&n.to_string_lossy()));
        let dev_type = dev
            .parent()
            .and_then(Path::file_name)
            .map(|n| clean_name(&n.to_string_lossy()));
        match (dev_type, dev_name) {
            (Some(t), Some(n)) if !t.is_empty() && !n.is_empty() => {
                return Some(format!("{t}_{n}"))
            }
            (_, Some(n)) if !n.is_empty() => return Some(n),
            _ => {}
        }
    }
    if let Some(n) = human_name(scope, dir) {
        return Some(n);
    }
    let real = std::fs::canonicalize(dir).ok()?;
    let n = clean_name(&real.file_name()?.to_string_lossy());
    (!n.is_empty()).then_some(n)
}

fn human_name(scope: &mut CacheScope<'_>, dir: &Path) -> Option<String> {
    let raw = scope.attr_raw(&dir.join("name")).ok()?;
    let n = clean_name(&String::from_utf8_lossy(raw));
    (!n.is_empty()).then_some(n)
}

/// The reading half of the hwmon collector (runs on a blocking thread).
struct Reader {
    class: PathBuf,
    chips: DeviceFilter,
    sensors: DeviceFilter,
    cache: FileCache,
    layout: Mutex<Option<Layout>>,
}

impl Reader {
    fn new(ctx: &Ctx<'_>) -> Result<Self, String> {
        let f = &ctx.options.hwmon;
        Ok(Reader {
            class: ctx.paths.sys("class/hwmon"),
            chips: DeviceFilter::new(
                "collector.hwmon.chip",
                f.chip_include.as_deref(),
                f.chip_exclude.as_deref(),
            )?,
            sensors: DeviceFilter::new(
                "collector.hwmon.sensor",
                f.sensor_include.as_deref(),
                f.sensor_exclude.as_deref(),
            )?,
            cache: FileCache::remembering_missing(),
            layout: Mutex::new(None),
        })
    }

    fn chips(&self, scope: &mut CacheScope<'_>, entries: &[String]) -> Vec<Chip> {
        let mut chips = Vec::new();
        for entry in entries {
            let dir = self.class.join(entry);
            if !std::fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let Some(name) = base_chip_name(scope, &dir) else {
                tracing::debug!(dir = %dir.display(), "could not derive a hwmon chip name");
                continue;
            };
            let human = human_name(scope, &dir);
            let mut files = Vec::new();
            if let Err(e) = sensor_files(&dir, &mut files) {
                tracing::debug!(dir = %dir.display(), err = %e, "hwmon directory unreadable");
                continue;
            }
            let dev = dir.join("device");
            if dev.is_dir() {
                if let Err(e) = sensor_files(&dev, &mut files) {
                    tracing::debug!(dir = %dev.display(), err = %e, "hwmon device directory unreadable");
                    continue;
                }
            }
            chips.push(Chip { name, human, files });
        }
        // Several hwmon chips of one device (a Wi-Fi card's PHYs, ACPI
        // WMI sensors) would share a name; node_exporter tells them apart
        // by their own names.
        let mut counts: HashMap<String, usize> = HashMap::new();
        for c in &chips {
            *counts.entry(c.name.clone()).or_default() += 1;
        }
        for c in &mut chips {
            if counts[&c.name] > 1 {
                if let Some(h) = &c.human {
                    c.name = format!("{}_{h}", c.name);
                }
            }
        }
        chips
    }
}

impl Reader {
    fn collect(&self, entries: Vec<String>, out: &mut Vec<MetricFamily>) {
        let mut scope = self.cache.scope();
        let mut layout = self.layout.lock_unpoisoned();
        let fresh = layout
            .as_ref()
            .is_some_and(|l| l.entries == entries && l.taken.elapsed() < LAYOUT_TTL);
        if !fresh {
            let chips = self.chips(&mut scope, &entries);
            *layout = Some(Layout {
                entries,
                chips,
                taken: Instant::now(),
            });
        }
        let chips = &layout.as_ref().expect("set above").chips;
        let mut o = Out::default();
        for chip in chips {
            if self.chips.ignored(&chip.name) {
                continue;
            }
            let mut data: BTreeMap<String, SensorData> = BTreeMap::new();
            for (path, sensor, prop) in &chip.files {
                let Ok(raw) = scope.attr_raw(path) else {
                    continue;
                };
                let value = String::from_utf8_lossy(raw).trim_matches('\n').to_string();
                data.entry(sensor.clone())
                    .or_default()
                    .insert(prop.clone(), value);
            }
            if let Some(h) = &chip.human {
                o.family(
                    "node_hwmon_chip_names",
                    "Annotation metric for human-readable chip names".into(),
                    false,
                )
                .add(&[("chip", &chip.name), ("chip_name", h)], 1.0);
            }
            for (sensor, sd) in &data {
                if self.sensors.ignored(&format!("{};{sensor}", chip.name)) {
                    continue;
                }
                emit_sensor(&mut o, &chip.name, sensor, sd);
            }
        }
        out.extend(o.fams);
    }
}

/// The hwmon collector (run through [`off_thread`]: some hwmon
/// drivers answer slowly).
pub struct Hwmon {
    reader: Reader,
    /// No hwmon class on most virtual machines: looked for once a minute.
    absent: AbsentSource,
}

impl Hwmon {
    /// Builds the collector from the flags.
    pub fn new(ctx: &Ctx<'_>) -> Result<Self, String> {
        Ok(Hwmon {
            reader: Reader::new(ctx)?,
            absent: AbsentSource::default(),
        })
    }
}

impl BlockingCollector for Hwmon {
    type Found = Vec<String>;

    fn name(&self) -> &'static str {
        "hwmon"
    }

    fn check(&self, _: &ScrapeContext) -> Result<Option<Vec<String>>, CollectError> {
        match self.absent.entries(&self.reader.class)? {
            Some(l) if !l.is_empty() => Ok(Some(l.into_iter().map(|(n, _)| n).collect())),
            _ => {
                tracing::debug!(path = %self.reader.class.display(), "hwmon metrics are not available on this system");
                Ok(None)
            }
        }
    }

    fn collect(
        &self,
        _: &ScrapeContext,
        entries: Vec<String>,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        self.reader.collect(entries, out);
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(blocking_collector(Hwmon::new(ctx)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing;
    use oxmon_core::collector::ScrapeContext;
    use oxmon_core::metrics::Value::Single;

    #[test]
    fn sensor_file_names() {
        assert_eq!(
            explode_sensor_filename("temp1_input"),
            Some(("temp", 1, "input"))
        );
        assert_eq!(
            explode_sensor_filename("pwm1_auto_point1_pwm"),
            Some(("pwm", 1, "auto_point1_pwm"))
        );
        assert_eq!(explode_sensor_filename("pwm1"), Some(("pwm", 1, "")));
        assert_eq!(
            explode_sensor_filename("beep_enable"),
            Some(("beep_enable", 0, ""))
        );
        assert_eq!(explode_sensor_filename("temp1_"), None);
        assert_eq!(explode_sensor_filename("1abc"), None);
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("coretemp.0"), "coretemp_0");
        assert_eq!(clean_name("Asus-NB-WMI\n"), "asus_nb_wmi");
        assert_eq!(clean_name("--"), "");
    }

    #[test]
    fn units() {
        let mut o = Out::default();
        let mut d = SensorData::new();
        d.insert("input".into(), "45500".into());
        d.insert("crit_alarm".into(), "0".into());
        d.insert("label".into(), "Core 0".into());
        d.insert("type".into(), "3".into());
        emit_sensor(&mut o, "platform_coretemp_0", "temp2", &d);
        let mut fan = SensorData::new();
        fan.insert("input".into(), "1200".into());
        fan.insert("alarm".into(), "1".into());
        fan.insert("beep".into(), "0".into());
        fan.insert("div".into(), "x".into());
        emit_sensor(&mut o, "nct", "fan1", &fan);
        let mut pwr = SensorData::new();
        pwr.insert("average".into(), "2500000".into());
        pwr.insert("average_interval".into(), "1000".into());
        emit_sensor(&mut o, "acpi", "power1", &pwr);
        let mut e = SensorData::new();
        e.insert("input".into(), "3000000".into());
        emit_sensor(&mut o, "amd", "energy1", &e);
        let v = |n: &str| {
            o.fams
                .iter()
                .find(|f| f.name == n)
                .map(|f| f.metrics[0].value.clone())
        };
        assert_eq!(v("node_hwmon_temp_celsius"), Some(Single(45.5)));
        assert_eq!(v("node_hwmon_temp_crit_alarm_celsius"), Some(Single(0.0)));
        assert_eq!(v("node_hwmon_temp_type"), Some(Single(3.0)));
        assert!(v("node_hwmon_sensor_label").is_some());
        assert_eq!(v("node_hwmon_fan_rpm"), Some(Single(1200.0)));
        assert_eq!(v("node_hwmon_fan_alarm"), Some(Single(1.0)));
        assert_eq!(v("node_hwmon_fan_beep_enabled"), Some(Single(0.0)));
        assert_eq!(v("node_hwmon_fan_div"), None);
        assert_eq!(v("node_hwmon_power_average_watt"), Some(Single(2.5)));
        assert_eq!(
            v("node_hwmon_power_average_interval_seconds"),
            Some(Single(1.0))
        );
        assert_eq!(v("node_hwmon_energy_joule_total"), Some(Single(3.0)));
    }

    #[test]
    fn chips_named_from_device_links() {
        use std::os::unix::fs::symlink;

        let root = tempfile::tempdir().unwrap();
        let sys = root.path();
        let dev = sys.join("devices/platform/coretemp.0");
        let wifi = sys.join("devices/pci0000:00/0000:00:1c.0/ieee80211/phy0");
        let mut chips = Vec::new();
        for (n, parent, name) in [
            (0, &dev, "coretemp"),
            (1, &wifi, "mt_a"),
            (2, &wifi, "mt_b"),
        ] {
            let h = parent.join(format!("hwmon/hwmon{n}"));
            std::fs::create_dir_all(&h).unwrap();
            std::fs::write(h.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(h.join("temp1_input"), format!("{}000\n", 40 + n)).unwrap();
            symlink("../..", h.join("device")).unwrap();
            chips.push(h);
        }
        std::fs::write(chips[0].join("temp1_label"), "Package id 0\n").unwrap();
        let class = sys.join("class/hwmon");
        std::fs::create_dir_all(&class).unwrap();
        for (n, h) in chips.iter().enumerate() {
            symlink(h, class.join(format!("hwmon{n}"))).unwrap();
        }
        let paths = testing::paths_under(sys);
        let options = testing::options(&["--collector.hwmon.sensor-exclude=mt_b;temp1"]);
        let c = blocking_collector(
            Hwmon::new(&Ctx {
                paths: &paths,
                options: &options,
            })
            .unwrap(),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let scrape = |out: &mut Vec<MetricFamily>| {
            let ctx = ScrapeContext::with_timeout(std::time::Duration::from_secs(5));
            rt.block_on(c.collect(&ctx, out)).unwrap();
        };
        let mut out = Vec::new();
        scrape(&mut out);
        let temps = &out
            .iter()
            .find(|f| f.name == "node_hwmon_temp_celsius")
            .unwrap()
            .metrics;
        let chip_of = |i: usize| {
            temps[i]
                .labels
                .iter()
                .find(|(k, _)| k == "chip")
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(temps.len(), 2, "the excluded sensor is left out");
        assert_eq!(chip_of(0), "platform_coretemp_0");
        assert_eq!(chip_of(1), "ieee80211_phy0_mt_a", "two chips on one device");
        assert_eq!(temps[1].value, Single(41.0));
        // A new chip shows up on the next scrape (the listing changed).
        let h = dev.join("hwmon/hwmon3");
        std::fs::create_dir_all(&h).unwrap();
        std::fs::write(h.join("in0_input"), "1200\n").unwrap();
        symlink(&h, class.join("hwmon3")).unwrap();
        let mut out = Vec::new();
        scrape(&mut out);
        let volts = out
            .iter()
            .find(|f| f.name == "node_hwmon_in_volts")
            .unwrap();
        assert_eq!(volts.metrics[0].value, Single(1.2));
    }

    /// A FIFO where a sensor attribute should be (a copied tree) is
    /// refused when it is opened, so it cannot hold the collector's lane:
    /// the other sensors of the chip are read in the same scrape.
    #[test]
    fn a_fifo_sensor_is_skipped_without_waiting() {
        let root = tempfile::tempdir().unwrap();
        let chip = root.path().join("class/hwmon/hwmon0");
        std::fs::create_dir_all(&chip).unwrap();
        std::fs::write(chip.join("name"), "slow\n").unwrap();
        std::fs::write(chip.join("temp2_input"), "25000\n").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            chip.join("temp1_input"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from(0o644),
            0,
        )
        .unwrap();
        let paths = testing::paths_under(root.path());
        let c = testing::build("hwmon", &paths);
        let started = std::time::Instant::now();
        let out = testing::scrape(c.as_ref());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let temps = &out
            .iter()
            .find(|f| f.name == "node_hwmon_temp_celsius")
            .expect("temp2 is read")
            .metrics;
        assert_eq!(temps.len(), 1);
        assert_eq!(temps[0].value, Single(25.0));
    }
}

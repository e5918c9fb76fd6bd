//! powersupplyclass: batteries, AC adapters and UPSes known to the kernel.
//!
//! Source: `<sysfs>/class/power_supply/<name>/*`. Metrics (gauges, label
//! `power_supply`): the numeric attributes in node_exporter's units —
//! `node_power_supply_{capacity,cyclecount,online,present,…}` as read,
//! `node_power_supply_{energy_watthour,power_watt,voltage_volt,current_ampere,charge_ampere,…}`
//! (µ-units / 1e6), `node_power_supply_temp_celsius` and friends (tenths
//! of °C / 10), and `node_power_supply_info{power_supply,type,status,…}`
//! with every non-empty text attribute. On by default;
//! `--collector.powersupply.ignored-supplies` (regexp, default `^$`).
//! Battery attributes are ACPI calls that can take long, so the files are
//! read off the runtime thread, bounded by the scrape deadline.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::blocking::{blocking_collector, BlockingCollector};
use oxmon_core::collector::{CollectError, CollectResult, ScrapeContext};
use oxmon_core::metrics::{LabelName, LabelValue};
use oxmon_core::{Collector, MetricFamily};
use regex::Regex;

use crate::collectors::Ctx;
use crate::device_filter::compile_regex;
use crate::dir_listing::dir_entries;
use crate::file_cache::FileCache;

/// Flags of the powersupplyclass collector (node_exporter's names and
/// defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regexp of power supplies to ignore for powersupplyclass collector.
    #[arg(
        id = "collector.powersupply.ignored-supplies",
        long = "collector.powersupply.ignored-supplies",
        value_name = "REGEX",
        default_value = "^$"
    )]
    pub ignored_supplies: String,
}

/// `(sysfs attribute, metric suffix, divisor)` for numeric attributes.
const NUMERIC: &[(&str, &str, f64)] = &[
    ("authentic", "authentic", 1.0),
    ("calibrate", "calibrate", 1.0),
    ("capacity", "capacity", 1.0),
    ("capacity_alert_max", "capacity_alert_max", 1.0),
    ("capacity_alert_min", "capacity_alert_min", 1.0),
    ("cycle_count", "cyclecount", 1.0),
    ("online", "online", 1.0),
    ("present", "present", 1.0),
    ("time_to_empty_now", "time_to_empty_seconds", 1.0),
    ("time_to_full_now", "time_to_full_seconds", 1.0),
    ("current_boot", "current_boot", 1e6),
    ("current_max", "current_max", 1e6),
    ("current_now", "current_ampere", 1e6),
    ("energy_empty", "energy_empty", 1e6),
    ("energy_empty_design", "energy_empty_design", 1e6),
    ("energy_full", "energy_full", 1e6),
    ("energy_full_design", "energy_full_design", 1e6),
    ("energy_now", "energy_watthour", 1e6),
    ("voltage_boot", "voltage_boot", 1e6),
    ("voltage_max", "voltage_max", 1e6),
    ("voltage_max_design", "voltage_max_design", 1e6),
    ("voltage_min", "voltage_min", 1e6),
    ("voltage_min_design", "voltage_min_design", 1e6),
    ("voltage_now", "voltage_volt", 1e6),
    ("voltage_ocv", "voltage_ocv", 1e6),
    ("charge_control_limit", "charge_control_limit", 1e6),
    ("charge_control_limit_max", "charge_control_limit_max", 1e6),
    ("charge_counter", "charge_counter", 1e6),
    ("charge_empty", "charge_empty", 1e6),
    ("charge_empty_design", "charge_empty_design", 1e6),
    ("charge_full", "charge_full", 1e6),
    ("charge_full_design", "charge_full_design", 1e6),
    ("charge_now", "charge_ampere", 1e6),
    ("charge_term_current", "charge_term_current", 1e6),
    ("constant_charge_current", "constant_charge_current", 1e6),
    (
        "constant_charge_current_max",
        "constant_charge_current_max",
        1e6,
    ),
    ("constant_charge_voltage", "constant_charge_voltage", 1e6),
    (
        "constant_charge_voltage_max",
        "constant_charge_voltage_max",
        1e6,
    ),
    ("precharge_current", "precharge_current", 1e6),
    ("input_current_limit", "input_current_limit", 1e6),
    ("power_now", "power_watt", 1e6),
    ("temp", "temp_celsius", 10.0),
    ("temp_alert_max", "temp_alert_max_celsius", 10.0),
    ("temp_alert_min", "temp_alert_min_celsius", 10.0),
    ("temp_ambient", "temp_ambient_celsius", 10.0),
    ("temp_ambient_max", "temp_ambient_max_celsius", 10.0),
    ("temp_ambient_min", "temp_ambient_min_celsius", 10.0),
    ("temp_max", "temp_max_celsius", 10.0),
    ("temp_min", "temp_min_celsius", 10.0),
];

/// Text attributes that become labels of `node_power_supply_info`.
const TEXT: &[&str] = &[
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
    "scope",
];

/// The powersupplyclass collector.
pub struct PowerSupply {
    class: PathBuf,
    ignored: Regex,
    cache: FileCache,
}

impl PowerSupply {
    /// Builds the collector from the flags.
    pub fn new(ctx: &Ctx<'_>) -> Result<Self, String> {
        Ok(PowerSupply {
            class: ctx.paths.sys("class/power_supply"),
            ignored: compile_regex(
                "collector.powersupply.ignored-supplies",
                &ctx.options.powersupplyclass.ignored_supplies,
            )?,
            cache: FileCache::remembering_missing(),
        })
    }
}

impl BlockingCollector for PowerSupply {
    type Found = Vec<(String, std::fs::FileType)>;

    fn name(&self) -> &'static str {
        "powersupplyclass"
    }

    fn check(&self, _: &ScrapeContext) -> Result<Option<Self::Found>, CollectError> {
        match dir_entries(&self.class)? {
            Some(entries) if !entries.is_empty() => Ok(Some(entries)),
            _ => {
                tracing::debug!(path = %self.class.display(), "no power supplies");
                Ok(None)
            }
        }
    }

    fn collect(
        &self,
        _: &ScrapeContext,
        supplies: Self::Found,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut fams: Vec<Option<MetricFamily>> = vec![None; NUMERIC.len()];
        let mut info = MetricFamily::gauge(
            "node_power_supply_info",
            "info of /sys/class/power_supply/<power_supply>.",
        );
        for (name, ft) in supplies {
            if ft.is_file() || self.ignored.is_match(&name) {
                continue;
            }
            let dir = self.class.join(&name);
            for (i, (attr, metric, div)) in NUMERIC.iter().enumerate() {
                let Some(v) = scope.attr_i64(&dir.join(attr)) else {
                    continue;
                };
                fams[i]
                    .get_or_insert_with(|| {
                        MetricFamily::gauge(
                            format!("node_power_supply_{metric}"),
                            format!("{metric} value of /sys/class/power_supply/<power_supply>."),
                        )
                    })
                    .add(&[("power_supply", &name)], v as f64 / div);
            }
            let mut labels: Vec<(LabelName, LabelValue)> =
                vec![(LabelName::Borrowed("power_supply"), name.as_str().into())];
            for attr in TEXT {
                if let Some(v) = scope.attr_string(&dir.join(attr)) {
                    if !v.is_empty() {
                        labels.push((LabelName::Borrowed(attr), v.into()));
                    }
                }
            }
            info.add_owned(labels, 1.0);
        }
        out.extend(fams.into_iter().flatten());
        out.push(info);
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(blocking_collector(PowerSupply::new(ctx)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing;

    #[test]
    fn battery_units_and_info() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("class/power_supply/BAT1");
        std::fs::create_dir_all(&b).unwrap();
        std::fs::create_dir_all(dir.path().join("class/power_supply/hidden")).unwrap();
        for (f, v) in [
            ("energy_now", "36580000"),
            ("temp", "305"),
            ("cycle_count", "12"),
            ("status", "Discharging"),
            ("type", "Battery"),
            ("manufacturer", ""),
            ("voltage_now", "garbage"),
        ] {
            std::fs::write(b.join(f), format!("{v}\n")).unwrap();
        }
        let paths = testing::paths_under(dir.path());
        let options = testing::options(&["--collector.powersupply.ignored-supplies=^hidden$"]);
        let c = build(&Ctx {
            paths: &paths,
            options: &options,
        })
        .unwrap();
        let out = testing::scrape(&*c);
        let get = |n: &str| out.iter().find(|f| f.name == n).map(|f| f.metrics.clone());
        use oxmon_core::metrics::Value::Single;
        assert_eq!(
            get("node_power_supply_energy_watthour").unwrap()[0].value,
            Single(36.58)
        );
        assert_eq!(
            get("node_power_supply_temp_celsius").unwrap()[0].value,
            Single(30.5)
        );
        assert_eq!(
            get("node_power_supply_cyclecount").unwrap()[0].value,
            Single(12.0)
        );
        assert!(get("node_power_supply_voltage_volt").is_none());
        let info = get("node_power_supply_info").unwrap();
        assert_eq!(info.len(), 1);
        let names: Vec<&str> = info[0].labels.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(names, vec!["power_supply", "status", "type"]);
    }
}

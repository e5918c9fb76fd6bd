//! watchdog: hardware and software watchdog timers.
//!
//! Source: `<sysfs>/class/watchdog/<name>/` (`bootstatus`, `fw_version`,
//! `nowayout`, `timeleft`, `timeout`, `pretimeout`, `access_cs0`,
//! `options`, `identity`, `state`, `status`, `pretimeout_governor`).
//! Metrics: gauges `node_watchdog_{bootstatus,fw_version,nowayout,access_cs0}`
//! and `node_watchdog_{timeleft,timeout,pretimeout}_seconds`, labelled
//! `name`, for the attributes a driver provides, and
//! `node_watchdog_info{name,options,identity,state,status,pretimeout_governor}`
//! (empty for what the driver lacks). A numeric attribute that is not an
//! integer fails the collector after the rest is exported. On by default;
//! no flags. The device list is re-read once a minute; without watchdogs
//! it reports nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{list_dir, Refreshed};
use crate::file_cache::{is_missing, parse_int_auto, FileCache};

/// `(attribute, metric name, help)` of the numeric attributes.
const NUMERIC: [(&str, &str, &str); 7] = [
    (
        "bootstatus",
        "node_watchdog_bootstatus",
        "Value of /sys/class/watchdog/<watchdog>/bootstatus",
    ),
    (
        "fw_version",
        "node_watchdog_fw_version",
        "Value of /sys/class/watchdog/<watchdog>/fw_version",
    ),
    (
        "nowayout",
        "node_watchdog_nowayout",
        "Value of /sys/class/watchdog/<watchdog>/nowayout",
    ),
    (
        "timeleft",
        "node_watchdog_timeleft_seconds",
        "Value of /sys/class/watchdog/<watchdog>/timeleft",
    ),
    (
        "timeout",
        "node_watchdog_timeout_seconds",
        "Value of /sys/class/watchdog/<watchdog>/timeout",
    ),
    (
        "pretimeout",
        "node_watchdog_pretimeout_seconds",
        "Value of /sys/class/watchdog/<watchdog>/pretimeout",
    ),
    (
        "access_cs0",
        "node_watchdog_access_cs0",
        "Value of /sys/class/watchdog/<watchdog>/access_cs0",
    ),
];

/// `(attribute, label)` of the text attributes of `node_watchdog_info`.
const TEXT: [(&str, &str); 5] = [
    ("options", "options"),
    ("identity", "identity"),
    ("state", "state"),
    ("status", "status"),
    ("pretimeout_governor", "pretimeout_governor"),
];

struct Watchdog {
    class: PathBuf,
    devices: Refreshed<Vec<String>>,
    cache: FileCache,
}

impl SyncCollector for Watchdog {
    fn name(&self) -> &'static str {
        "watchdog"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let devices = self.devices.get(|| match list_dir(&self.class) {
            Ok(names) => Ok(names),
            Err(e) if is_missing(&e) => Ok(Vec::new()),
            Err(e) => Err(format!("listing {}: {e}", self.class.display()).into()),
        })?;
        if devices.is_empty() {
            return Ok(());
        }
        let mut scope = self.cache.scope();
        let mut numeric = NUMERIC.map(|(_, name, help)| MetricFamily::gauge(name, help));
        let mut info = MetricFamily::gauge(
            "node_watchdog_info",
            "Info of /sys/class/watchdog/<watchdog>",
        );
        let mut errors = Vec::new();
        for dev in devices.iter() {
            let dir = self.class.join(dev);
            for ((attr, _, _), fam) in NUMERIC.iter().zip(numeric.iter_mut()) {
                let path = dir.join(attr);
                let Ok(raw) = scope.attr(&path) else {
                    continue;
                };
                match std::str::from_utf8(raw)
                    .ok()
                    .and_then(|t| parse_int_auto(t.trim()))
                {
                    Some(v) => {
                        fam.add(&[("name", dev)], v as f64);
                    }
                    None => errors.push(format!("{}: not an integer", path.display())),
                }
            }
            let texts: Vec<String> = TEXT
                .iter()
                .map(|(attr, _)| scope.attr_string(&dir.join(attr)).unwrap_or_default())
                .collect();
            let mut labels: Vec<(&'static str, &str)> = vec![("name", dev)];
            labels.extend(TEXT.iter().zip(&texts).map(|((_, l), v)| (*l, v.as_str())));
            info.add(&labels, 1.0);
        }
        out.extend(numeric);
        out.push(info);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; ").into())
        }
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Watchdog {
        class: ctx.paths.sys("class/watchdog"),
        devices: Refreshed::default(),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build, first_label, paths_under, scrape, try_scrape};

    #[test]
    fn attributes_present_and_absent() {
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path().join("class/watchdog");
        std::fs::create_dir_all(wd.join("watchdog0")).unwrap();
        std::fs::create_dir_all(wd.join("watchdog1")).unwrap();
        for (f, v) in [
            ("timeout", "60\n"),
            ("identity", "iTCO_wdt\n"),
            ("state", "inactive\n"),
        ] {
            std::fs::write(wd.join("watchdog0").join(f), v).unwrap();
        }
        let paths = paths_under(dir.path());
        let out = scrape(build("watchdog", &paths).as_ref());
        let fam = |n: &str| out.iter().find(|f| f.name == n).unwrap();
        assert_eq!(fam("node_watchdog_timeout_seconds").metrics.len(), 1);
        assert!(fam("node_watchdog_bootstatus").metrics.is_empty());
        assert_eq!(fam("node_watchdog_info").metrics.len(), 2);
        assert_eq!(
            first_label(&out, "node_watchdog_info", "identity"),
            "iTCO_wdt"
        );
        std::fs::write(wd.join("watchdog1/nowayout"), "maybe").unwrap();
        assert!(try_scrape(build("watchdog", &paths).as_ref()).1.is_err());
    }
}

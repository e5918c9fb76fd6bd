//! systemd: unit states and manager facts from systemd over the D-Bus
//! system bus (`org.freedesktop.systemd1`).
//!
//! Reads `Manager.ListUnits`, the manager's `Version`, `Virtualization` and
//! `SystemState` properties, and per unit (`.service`, `.mount`, `.socket`,
//! `.timer`) the properties below. Metrics (all gauges unless named):
//! - `node_systemd_version{version}`, `node_systemd_virtualization_info{virtualization_type}`,
//!   `node_systemd_system_running` (systemd 212 and later);
//! - `node_systemd_units{state}`: every loaded unit counted by active state;
//! - `node_systemd_unit_state{name,state,type}`: one series per filtered unit
//!   and state (`active`, `activating`, `deactivating`, `inactive`,
//!   `failed`), `type` the service or mount `Type` (empty for other units);
//! - `node_systemd_timer_last_trigger_seconds{name}`;
//! - `node_systemd_socket_accepted_connections_total{name}` (counter),
//!   `node_systemd_socket_current_connections{name}`,
//!   `node_systemd_socket_refused_connections_total{name}` (a gauge, as in
//!   node_exporter);
//! - with `--collector.systemd.enable-restarts-metrics`:
//!   `node_systemd_service_restart_total{name}` (counter);
//! - with `--collector.systemd.enable-task-metrics`:
//!   `node_systemd_unit_tasks_current{name}`, `node_systemd_unit_tasks_max{name}`
//!   (left out when systemd reports no limit, `u64::MAX`);
//! - with `--collector.systemd.enable-start-time-metrics`:
//!   `node_systemd_unit_start_time_seconds{name}` (0 for units not active).
//!
//! Units are those whose load state is `loaded` and whose name matches
//! `^(?:<unit-include>)$` and not `^(?:<unit-exclude>)$`
//! (`--collector.systemd.unit-include`, default `.+`;
//! `--collector.systemd.unit-exclude`, default
//! `.+\.(automount|device|mount|scope|slice)`; hidden aliases
//! `unit-whitelist`/`unit-blacklist`). Off by default.
//!
//! A property systemd does not have (older versions) is skipped, as in
//! node_exporter; a reply of the wrong D-Bus type fails the collector. No
//! reachable system bus fails the collector too, as in node_exporter: the
//! collector is off unless asked for. Per-unit properties are requested
//! for up to 32 units at a time on one kept connection rather than one
//! after the other (the system bus allows 128 pending calls).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use oxmon_core::collector::{BoxFuture, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};
use regex::Regex;
use zbus::zvariant::OwnedObjectPath;
use zbus::Connection;

use crate::collectors::Ctx;
use crate::device_filter::compile_regex;
use crate::system_bus::{call, typed_property, BusError, SystemBus, MAX_IN_FLIGHT};

/// Flags of the systemd collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regexp of systemd units to include. Units must both match include
    /// and not match exclude to be included.
    #[arg(
        id = "collector.systemd.unit-include",
        long = "collector.systemd.unit-include",
        alias = "collector.systemd.unit-whitelist",
        value_name = "REGEX",
        default_value = ".+"
    )]
    pub unit_include: String,
    /// Regexp of systemd units to exclude. Units must both match include
    /// and not match exclude to be included.
    #[arg(
        id = "collector.systemd.unit-exclude",
        long = "collector.systemd.unit-exclude",
        alias = "collector.systemd.unit-blacklist",
        value_name = "REGEX",
        default_value = DEFAULT_UNIT_EXCLUDE
    )]
    pub unit_exclude: String,
    /// Enables service unit tasks metrics unit_tasks_current and
    /// unit_tasks_max.
    #[arg(
        id = "collector.systemd.enable-task-metrics",
        long = "collector.systemd.enable-task-metrics"
    )]
    pub enable_task_metrics: bool,
    /// Enables service unit metric service_restart_total.
    #[arg(
        id = "collector.systemd.enable-restarts-metrics",
        long = "collector.systemd.enable-restarts-metrics"
    )]
    pub enable_restarts_metrics: bool,
    /// Enables service unit metric unit_start_time_seconds.
    #[arg(
        id = "collector.systemd.enable-start-time-metrics",
        long = "collector.systemd.enable-start-time-metrics"
    )]
    pub enable_start_time_metrics: bool,
    /// Accepted for compatibility and ignored: oxmon-node always talks to
    /// systemd through the system bus, never its private root-only socket.
    #[arg(
        id = "collector.systemd.private",
        long = "collector.systemd.private",
        hide = true
    )]
    pub private: bool,
}

/// node_exporter's default `--collector.systemd.unit-exclude`.
pub const DEFAULT_UNIT_EXCLUDE: &str = r".+\.(automount|device|mount|scope|slice)";

/// The states every filtered unit gets a `node_systemd_unit_state` series
/// for, and that `node_systemd_units` always lists.
pub const UNIT_STATES: [&str; 5] = ["active", "activating", "deactivating", "inactive", "failed"];

/// systemd 212 added `SystemState` and the timers' `LastTriggerUSec`.
const MIN_VERSION_SYSTEM_STATE: f64 = 212.0;

const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
const MOUNT: &str = "org.freedesktop.systemd1.Mount";
const SOCKET: &str = "org.freedesktop.systemd1.Socket";
const TIMER: &str = "org.freedesktop.systemd1.Timer";

/// One row of `Manager.ListUnits` (`a(ssssssouso)`).
pub type ListedUnit = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// The fields of a listed unit the collector uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `sshd.service`.
    pub name: String,
    /// `loaded`, `not-found`, `masked` …
    pub load_state: String,
    /// `active`, `failed` …
    pub active_state: String,
    /// The unit's object path.
    pub path: String,
}

impl From<ListedUnit> for Unit {
    fn from(u: ListedUnit) -> Self {
        Unit {
            name: u.0,
            load_state: u.2,
            active_state: u.3,
            path: u.6.to_string(),
        }
    }
}

/// The number in a systemd version string (`"252.22-1~deb12u1"` → 252.22),
/// found as node_exporter finds it: the first run of three or more digits
/// with an optional `.digits` after it.
pub fn parse_version(version: &str) -> Option<f64> {
    let b = version.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i - start < 3 {
            continue;
        }
        let mut end = i;
        if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
            end = i + 1;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
        }
        return version[start..end].parse().ok();
    }
    None
}

/// Units per active state over all listed units; the five usual states are
/// always present.
pub fn summarize(units: &[Unit]) -> BTreeMap<&str, f64> {
    let mut m: BTreeMap<&str, f64> = UNIT_STATES.iter().map(|s| (*s, 0.0)).collect();
    for u in units {
        *m.entry(u.active_state.as_str()).or_default() += 1.0;
    }
    m
}

/// The unit-include/-exclude filter, anchored as node_exporter anchors it.
pub struct UnitFilter {
    include: Regex,
    exclude: Regex,
}

impl UnitFilter {
    /// Compiles the two flags.
    pub fn new(include: &str, exclude: &str) -> Result<Self, String> {
        Ok(UnitFilter {
            include: compile_regex(
                "collector.systemd.unit-include",
                &format!("^(?:{include})$"),
            )?,
            exclude: compile_regex(
                "collector.systemd.unit-exclude",
                &format!("^(?:{exclude})$"),
            )?,
        })
    }

    /// True for a loaded unit whose name passes both patterns.
    pub fn keeps(&self, u: &Unit) -> bool {
        u.load_state == "loaded"
            && self.include.is_match(&u.name)
            && !self.exclude.is_match(&u.name)
    }
}

/// What was read about one filtered unit.
#[derive(Default)]
struct UnitValues {
    kind: String,
    restarts: Option<u32>,
    start_time_usec: Option<u64>,
    tasks_current: Option<u64>,
    tasks_max: Option<u64>,
    last_trigger_usec: Option<u64>,
    accepted: Option<u32>,
    connections: Option<u32>,
    refused: Option<u32>,
}

/// Keeps a value systemd does not have (`Ok(None)`); any other failure is
/// the caller's.
fn optional<T>(r: Result<T, BusError>, unit: &str) -> Result<Option<T>, BusError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_refusal() => {
            tracing::debug!(unit, error = %e, "systemd unit property not available");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The systemd collector.
pub struct Systemd {
    filter: UnitFilter,
    flags: Flags,
    bus: SystemBus,
}

impl Systemd {
    async fn unit_values(
        &self,
        conn: &Connection,
        unit: &Unit,
        version: f64,
    ) -> Result<UnitValues, BusError> {
        let (name, path) = (unit.name.as_str(), unit.path.as_str());
        let mut v = UnitValues::default();
        let get_u32 = |iface, prop| typed_property::<u32>(conn, DEST, path, iface, prop);
        let get_u64 = |iface, prop| typed_property::<u64>(conn, DEST, path, iface, prop);
        let type_iface = if name.ends_with(".service") {
            Some(SERVICE)
        } else if name.ends_with(".mount") {
            Some(MOUNT)
        } else {
            None
        };
        if let Some(iface) = type_iface {
            let kind = typed_property::<String>(conn, DEST, path, iface, "Type").await;
            v.kind = optional(kind, name)?.unwrap_or_default();
        }
        if name.ends_with(".service") {
            if self.flags.enable_restarts_metrics {
                // NRestarts came with systemd 235.
                v.restarts = optional(get_u32(SERVICE, "NRestarts").await, name)?;
            }
            if self.flags.enable_task_metrics {
                v.tasks_current = optional(get_u64(SERVICE, "TasksCurrent").await, name)?;
                v.tasks_max = optional(get_u64(SERVICE, "TasksMax").await, name)?;
            }
        }
        if self.flags.enable_start_time_metrics {
            v.start_time_usec = if unit.active_state == "active" {
                optional(get_u64(UNIT, "ActiveEnterTimestamp").await, name)?
            } else {
                Some(0)
            };
        }
        if name.ends_with(".timer") && version >= MIN_VERSION_SYSTEM_STATE {
            v.last_trigger_usec = optional(get_u64(TIMER, "LastTriggerUSec").await, name)?;
        }
        if name.ends_with(".socket") {
            v.accepted = optional(get_u32(SOCKET, "NAccepted").await, name)?;
            if v.accepted.is_some() {
                v.connections = optional(get_u32(SOCKET, "NConnections").await, name)?;
            }
            if v.connections.is_some() {
                // NRefused came with systemd 239.
                v.refused = optional(get_u32(SOCKET, "NRefused").await, name)?;
            }
        }
        Ok(v)
    }

    async fn scrape(&self, out: &mut Vec<MetricFamily>) -> Result<(), BusError> {
        let conn = self.bus.connection().await?;
        let manager = |prop| typed_property::<String>(&conn, DEST, MANAGER_PATH, MANAGER, prop);

        let version_text = match manager("Version").await {
            Ok(v) => v,
            Err(e) if e.is_refusal() => {
                tracing::debug!(error = %e, "systemd version unknown, reporting 0");
                String::new()
            }
            Err(e) => return Err(e),
        };
        let (version, version_label) = match parse_version(&version_text) {
            Some(v) => (v, version_text.as_str()),
            None => (0.0, ""),
        };
        let mut f = MetricFamily::gauge("node_systemd_version", "Detected systemd version");
        f.add(&[("version", version_label)], version);
        out.push(f);

        let virt = match manager("Virtualization").await {
            Ok(v) if v.is_empty() => "none".to_string(),
            Ok(v) => v,
            Err(e) if e.is_refusal() => "unknown".to_string(),
            Err(e) => return Err(e),
        };
        let mut f = MetricFamily::gauge(
            "node_systemd_virtualization_info",
            "Detected virtualization technology",
        );
        f.add(&[("virtualization_type", &virt)], 1.0);
        out.push(f);

        let listed: Vec<ListedUnit> =
            call(&conn, DEST, MANAGER_PATH, MANAGER, "ListUnits", &()).await?;
        let units: Vec<Unit> = listed.into_iter().map(Unit::from).collect();
        let mut f = MetricFamily::gauge("node_systemd_units", "Summary of systemd unit states");
        for (state, n) in summarize(&units) {
            f.add(&[("state", state)], n);
        }
        out.push(f);

        let kept: Vec<&Unit> = units.iter().filter(|u| self.filter.keeps(u)).collect();
        // The futures are built first: a closure inside the stream would
        // make the boxed collect future fail the `Send` check.
        let pending: Vec<_> = kept
            .iter()
            .map(|u| self.unit_values(&conn, u, version))
            .collect();
        let values: Vec<_> = stream::iter(pending)
            .buffered(MAX_IN_FLIGHT)
            .collect()
            .await;
        let mut fams = UnitFamilies::new();
        let mut first_error = None;
        for (unit, v) in kept.iter().zip(values) {
            match v {
                Ok(v) => fams.add(unit, &v),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        out.extend(fams.into_families());

        if version >= MIN_VERSION_SYSTEM_STATE {
            let state = manager("SystemState").await?;
            out.push(oxmon_core::metrics::gauge(
                "node_systemd_system_running",
                "Whether the system is operational (see 'systemctl is-system-running')",
                if state == "running" { 1.0 } else { 0.0 },
            ));
        }
        first_error.map_or(Ok(()), Err)
    }
}

struct UnitFamilies {
    state: MetricFamily,
    restarts: MetricFamily,
    start_time: MetricFamily,
    tasks_current: MetricFamily,
    tasks_max: MetricFamily,
    last_trigger: MetricFamily,
    accepted: MetricFamily,
    connections: MetricFamily,
    refused: MetricFamily,
}

impl UnitFamilies {
    fn new() -> Self {
        UnitFamilies {
            state: MetricFamily::gauge("node_systemd_unit_state", "Systemd unit"),
            restarts: MetricFamily::counter(
                "node_systemd_service_restart_total",
                "Service unit count of Restart triggers",
            ),
            start_time: MetricFamily::gauge(
                "node_systemd_unit_start_time_seconds",
                "Start time of the unit since unix epoch in seconds.",
            ),
            tasks_current: MetricFamily::gauge(
                "node_systemd_unit_tasks_current",
                "Current number of tasks per Systemd unit",
            ),
            tasks_max: MetricFamily::gauge(
                "node_systemd_unit_tasks_max",
                "Maximum number of tasks per Systemd unit",
            ),
            last_trigger: MetricFamily::gauge(
                "node_systemd_timer_last_trigger_seconds",
                "Seconds since epoch of last trigger.",
            ),
            accepted: MetricFamily::counter(
                "node_systemd_socket_accepted_connections_total",
                "Total number of accepted socket connections",
            ),
            connections: MetricFamily::gauge(
                "node_systemd_socket_current_connections",
                "Current number of socket connections",
            ),
            refused: MetricFamily::gauge(
                "node_systemd_socket_refused_connections_total",
                "Total number of refused socket connections",
            ),
        }
    }

    fn add(&mut self, unit: &Unit, v: &UnitValues) {
        let name = unit.name.as_str();
        for state in UNIT_STATES {
            let on = if state == unit.active_state { 1.0 } else { 0.0 };
            self.state
                .add(&[("name", name), ("state", state), ("type", &v.kind)], on);
        }
        let l = [("name", name)];
        if let Some(n) = v.restarts {
            self.restarts.add(&l, f64::from(n));
        }
        if let Some(t) = v.start_time_usec {
            self.start_time.add(&l, t as f64 / 1e6);
        }
        if let Some(n) = v.tasks_current.filter(|n| *n != u64::MAX) {
            self.tasks_current.add(&l, n as f64);
        }
        if let Some(n) = v.tasks_max.filter(|n| *n != u64::MAX) {
            self.tasks_max.add(&l, n as f64);
        }
        if let Some(t) = v.last_trigger_usec {
            self.last_trigger.add(&l, t as f64 / 1e6);
        }
        if let Some(n) = v.accepted {
            self.accepted.add(&l, f64::from(n));
        }
        if let Some(n) = v.connections {
            self.connections.add(&l, f64::from(n));
        }
        if let Some(n) = v.refused {
            self.refused.add(&l, f64::from(n));
        }
    }

    fn into_families(self) -> impl Iterator<Item = MetricFamily> {
        [
            self.state,
            self.restarts,
            self.start_time,
            self.tasks_current,
            self.tasks_max,
            self.last_trigger,
            self.accepted,
            self.connections,
            self.refused,
        ]
        .into_iter()
        .filter(|f| !f.is_empty())
    }
}

impl Collector for Systemd {
    fn name(&self) -> &str {
        "systemd"
    }

    fn collect<'a>(
        &'a self,
        _ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let result = self.scrape(out).await;
            self.bus.forget_if_broken(&result).await;
            result.map_err(Into::into)
        })
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let flags = ctx.options.systemd.clone();
    if flags.private {
        tracing::warn!("--collector.systemd.private is ignored: oxmon-node reads systemd through the system bus");
    }
    Ok(Arc::new(Systemd {
        filter: UnitFilter::new(&flags.unit_include, &flags.unit_exclude)?,
        flags,
        bus: SystemBus::default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str, load: &str, active: &str) -> Unit {
        Unit {
            name: name.into(),
            load_state: load.into(),
            active_state: active.into(),
            path: String::new(),
        }
    }

    #[test]
    fn versions_as_node_exporter_reads_them() {
        assert_eq!(parse_version("252.22-1~deb12u1"), Some(252.22));
        assert_eq!(parse_version("v255"), Some(255.0));
        assert_eq!(parse_version("249"), Some(249.0));
        assert_eq!(parse_version("12 245.4"), Some(245.4));
        assert_eq!(parse_version("246."), Some(246.0));
        assert_eq!(parse_version("unknown"), None);
        assert_eq!(parse_version("24"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn default_filter_drops_mounts_devices_and_unloaded_units() {
        let f = UnitFilter::new(".+", DEFAULT_UNIT_EXCLUDE).unwrap();
        assert!(f.keeps(&unit("sshd.service", "loaded", "active")));
        assert!(f.keeps(&unit("logrotate.timer", "loaded", "inactive")));
        assert!(!f.keeps(&unit("home.mount", "loaded", "active")));
        assert!(!f.keeps(&unit("dev-sda.device", "loaded", "active")));
        assert!(!f.keeps(&unit("user.slice", "loaded", "active")));
        assert!(!f.keeps(&unit("gone.service", "not-found", "inactive")));
        // Anchored: the exclude pattern must match the whole name.
        assert!(f.keeps(&unit("x.mount.service", "loaded", "active")));
        let f = UnitFilter::new("ssh.*", "").unwrap();
        assert!(f.keeps(&unit("sshd.service", "loaded", "active")));
        assert!(!f.keeps(&unit("cron.service", "loaded", "active")));
        let e = UnitFilter::new("(", "").err().unwrap();
        assert!(e.contains("--collector.systemd.unit-include"), "{e}");
    }

    #[test]
    fn summary_counts_every_unit_by_state() {
        let units = [
            unit("a.service", "loaded", "active"),
            unit("b.service", "not-found", "inactive"),
            unit("c.mount", "loaded", "active"),
            unit("d.service", "loaded", "reloading"),
        ];
        let s = summarize(&units);
        assert_eq!(s["active"], 2.0);
        assert_eq!(s["inactive"], 1.0);
        assert_eq!(s["failed"], 0.0);
        assert_eq!(s["reloading"], 1.0);
        assert_eq!(s.len(), 6);
    }
}

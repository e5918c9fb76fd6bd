//! The health probe: polls the app's health URL(s) on an interval and
//! writes what it finds into the store.
//!
//! Metrics (gauges unless said), each with the label `target`:
//!
//! | metric | |
//! |---|---|
//! | `app_up` | 1 when the last check answered 2xx and the body's overall status (if it has one) is an up word |
//! | `app_health_check_duration_seconds` | how long the last check took |
//! | `app_health_status_code` | its HTTP status; 0 when there was no answer |
//! | `app_health_component_up{component}` | 1/0 per component found in the body |
//! | `app_health_parse_errors_total` (counter) | bodies that were not JSON or lacked `components_path` |
//!
//! `target` is the target's `name`, by default the URL's `host:port/path`
//! (never its userinfo or query). It is there even with one target, so a
//! second target adds series instead of renaming the first.
//!
//! Bodies understood: an object whose overall status sits at `status_path`
//! (default `status`) and whose components sit at `components_path`. Left
//! unset, the components are the first of `checks`, `components`,
//! `entries`, `details` found (Spring Boot, MicroProfile, ASP.NET Core,
//! FastAPI health libraries), and a body with none of them simply has no
//! components. Components may be an object (name → status) or a list of
//! objects with `name` and `status` (MicroProfile). A status is a word, a
//! boolean, an object with a `status`, or a list of such (all must be up,
//! as in the IETF health draft's check lists); an entry whose status
//! cannot be read (a number, null) is not a component. Up words
//! (`up_values`) compare ignoring ASCII case; the default is `UP`, `ok`,
//! `healthy`, `pass`, `true`.
//!
//! A body that is not JSON, or lacks a `components_path` that was set,
//! gives `app_up` from the status code alone and counts a parse error
//! (`parse_body: false` turns the body off for plain-text endpoints; an
//! empty body is not an error). A component no longer reported loses its
//! series; a check that gets no answer removes them all (`app_up` says
//! why). Bodies are read up to `max_body_bytes` (default 1 MiB); larger
//! counts as no answer.
//!
//! Config (`health` section; the endpoint settings `url`, `headers`, `tls`
//! are described in [`crate::fetch`]):
//!
//! ```yaml
//! health:
//!   interval: 15s          # --health.interval, default 15s
//!   timeout: 5s            # --health.timeout, default 5s; at most the interval
//!   targets:               # --health.url adds targets
//!   - url: http://127.0.0.1:8080/actuator/health
//!     name: api
//!     interval: 10s
//!     timeout: 2s
//!     headers: {Authorization: {file: /run/secrets/token, prefix: "Bearer "}}
//!     components_path: components     # dotted: details.components
//!     status_path: status
//!     up_values: [UP, ok]
//!     parse_body: true
//!     max_body_bytes: 1048576
//! ```
//!
//! Each target is polled by its own task; the first check runs at once. A
//! reload restarts the tasks; series of targets that are gone are removed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxmon_core::logging::{FailureLog, FailureSubject};
use oxmon_core::sync::LockExt;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::config::{self, FieldError, Problem, RawTarget};
use crate::fetch::{Endpoint, HeaderValueConfig, TlsConfig};
use crate::store::{Op, SeriesId, Store, Writer};

/// `app_up`.
pub const UP: &str = "app_up";
/// `app_health_check_duration_seconds`.
pub const DURATION: &str = "app_health_check_duration_seconds";
/// `app_health_status_code`.
pub const STATUS_CODE: &str = "app_health_status_code";
/// `app_health_component_up`.
pub const COMPONENT_UP: &str = "app_health_component_up";
/// `app_health_parse_errors_total`.
pub const PARSE_ERRORS: &str = "app_health_parse_errors_total";

const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_MAX_BODY: usize = 1 << 20;
const DEFAULT_UP_VALUES: [&str; 5] = ["up", "ok", "healthy", "pass", "true"];
/// Where components are looked for when `components_path` is not set.
const COMPONENT_KEYS: [&str; 4] = ["checks", "components", "entries", "details"];

/// The health probe's flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HealthArgs {
    /// A health URL of the app to poll (repeatable); adds to the config
    /// file's health targets.
    #[arg(id = "health.url", long = "health.url", value_name = "URL")]
    pub urls: Vec<String>,

    /// How often to poll each health URL [default: 15s]; wins over the
    /// file's health.interval.
    #[arg(id = "health.interval", long = "health.interval", value_name = "DURATION", value_parser = oxmon_core::parse_duration)]
    pub interval: Option<Duration>,

    /// How long one check may take [default: 5s]; wins over the file's
    /// health.timeout.
    #[arg(id = "health.timeout", long = "health.timeout", value_name = "DURATION", value_parser = oxmon_core::parse_duration)]
    pub timeout: Option<Duration>,
}

/// The `health` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Poll interval for targets that do not set one.
    pub interval: Option<String>,
    /// Check timeout for targets that do not set one.
    pub timeout: Option<String>,
    /// The health endpoints.
    #[serde(default)]
    pub targets: Vec<HealthTargetConfig>,
}

/// One health endpoint in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthTargetConfig {
    /// The URL to GET.
    pub url: String,
    /// The `target` label; default the URL's `host:port/path`.
    pub name: Option<String>,
    /// Poll interval.
    pub interval: Option<String>,
    /// Check timeout.
    pub timeout: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValueConfig>,
    /// TLS settings (https only).
    pub tls: Option<TlsConfig>,
    /// Dotted JSON path of the components.
    pub components_path: Option<String>,
    /// Dotted JSON path of the overall status.
    pub status_path: Option<String>,
    /// Status words that mean up.
    pub up_values: Option<Vec<String>>,
    /// Read the body as JSON (default true).
    pub parse_body: Option<bool>,
    /// The largest body read.
    pub max_body_bytes: Option<usize>,
}

impl RawTarget for HealthTargetConfig {
    fn from_url(url: &str) -> Self {
        HealthTargetConfig {
            url: url.to_string(),
            ..HealthTargetConfig::default()
        }
    }

    fn names_itself(&self) -> bool {
        self.name.is_some()
    }
}

/// Validated health settings.
#[derive(Debug, Clone, Default)]
pub struct HealthSettings {
    /// The targets, names unique.
    pub targets: Vec<HealthTarget>,
}

/// One validated health endpoint.
#[derive(Debug, Clone)]
pub struct HealthTarget {
    /// The `target` label.
    pub name: String,
    /// Where and how to GET.
    pub endpoint: Endpoint,
    /// Poll interval.
    pub interval: Duration,
    /// Check timeout.
    pub timeout: Duration,
    /// How the body is read; `None` ignores it.
    pub reader: Option<BodyReader>,
    /// The largest body read.
    pub max_body: usize,
}

/// Validates the `health` section merged with the flags (see
/// [`crate::config`] for the merge rules).
pub fn resolve(file: Option<&HealthConfig>, flags: &HealthArgs) -> Result<HealthSettings, Problem> {
    let section = file.cloned().unwrap_or_default();
    let interval = flag_or_file(
        (flags.interval, "--health.interval"),
        (section.interval.as_deref(), "interval"),
        DEFAULT_INTERVAL,
    )?;
    let timeout = flag_or_file(
        (flags.timeout, "--health.timeout"),
        (section.timeout.as_deref(), "timeout"),
        DEFAULT_TIMEOUT.min(interval),
    )?;
    let targets = config::resolve_targets(
        &section.targets,
        "--health.url",
        &flags.urls,
        |t| resolve_target(t, interval, timeout),
        |t| &t.name,
    )?;
    Ok(HealthSettings { targets })
}

/// A section-wide duration: the flag when given, else the file's key, else
/// `default`.
fn flag_or_file(
    (flag, flag_name): (Option<Duration>, &'static str),
    (text, key): (Option<&str>, &str),
    default: Duration,
) -> Result<Duration, Problem> {
    match (flag, text) {
        (Some(d), _) if d.is_zero() => Err(Problem::Flag {
            flag: flag_name,
            message: "must be more than 0".into(),
        }),
        (Some(d), _) => Ok(d),
        (None, Some(t)) => Ok(config::duration(key, t, false)?),
        (None, None) => Ok(default),
    }
}

fn resolve_target(
    t: &HealthTargetConfig,
    interval: Duration,
    timeout: Duration,
) -> Result<HealthTarget, FieldError> {
    let endpoint = Endpoint::new(&t.url, &t.headers, t.tls.as_ref())?;
    let name = endpoint.target_name(t.name.as_deref())?;
    let interval = match &t.interval {
        Some(text) => config::duration("interval", text, false)?,
        None => interval,
    };
    let timeout = match &t.timeout {
        Some(text) => config::duration("timeout", text, false)?,
        None => timeout.min(interval),
    };
    if timeout > interval {
        let key = if t.timeout.is_some() {
            "timeout"
        } else {
            "interval"
        };
        return Err(FieldError::new(
            key,
            format!("the timeout ({timeout:?}) must not exceed the interval ({interval:?})"),
        ));
    }
    let max_body = t.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
    if max_body == 0 {
        return Err(FieldError::new("max_body_bytes", "must be more than 0"));
    }
    let reader = if t.parse_body.unwrap_or(true) {
        Some(BodyReader::new(
            t.components_path.as_deref(),
            t.status_path.as_deref(),
            t.up_values.as_deref(),
        )?)
    } else {
        None
    };
    Ok(HealthTarget {
        name,
        endpoint,
        interval,
        timeout,
        reader,
        max_body,
    })
}

/// How a health body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyReader {
    /// Where the components are: a dotted path, or `None` for the usual
    /// keys.
    components_path: Option<Vec<String>>,
    status_path: Vec<String>,
    /// Compared ignoring ASCII case.
    up_values: Vec<String>,
}

/// What a health body says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BodyHealth {
    /// The overall status, when the body has a readable one.
    pub status_up: Option<bool>,
    /// Each component and whether it is up, sorted by name (a name listed
    /// twice counts once, its first entry).
    pub components: Vec<(String, bool)>,
}

/// Why a health body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// `components_path` is not in the body.
    #[error("the body has no {0:?}")]
    MissingPath(String),
}

fn dotted(key: &str, path: &str) -> Result<Vec<String>, FieldError> {
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(FieldError::new(
            key,
            format!("{path:?} is not a dotted path (like checks or details.components)"),
        ));
    }
    Ok(path.split('.').map(str::to_string).collect())
}

impl Default for BodyReader {
    fn default() -> Self {
        BodyReader {
            components_path: None,
            status_path: vec!["status".into()],
            up_values: DEFAULT_UP_VALUES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl BodyReader {
    /// A reader; `None` settings take the defaults. Error keys are
    /// `components_path`, `status_path`, `up_values`.
    pub fn new(
        components_path: Option<&str>,
        status_path: Option<&str>,
        up_values: Option<&[String]>,
    ) -> Result<BodyReader, FieldError> {
        let mut r = BodyReader::default();
        if let Some(p) = components_path {
            r.components_path = Some(dotted("components_path", p)?);
        }
        if let Some(p) = status_path {
            r.status_path = dotted("status_path", p)?;
        }
        if let Some(words) = up_values {
            if words.is_empty() {
                return Err(FieldError::new("up_values", "must list at least one word"));
            }
            r.up_values = words.to_vec();
        }
        Ok(r)
    }

    /// Reads a health body.
    pub fn read(&self, body: &[u8]) -> Result<BodyHealth, BodyError> {
        let json: Json =
            serde_json::from_slice(body).map_err(|e| BodyError::NotJson(e.to_string()))?;
        let status_up = follow(&json, &self.status_path).and_then(|s| self.status(s));
        let components = match &self.components_path {
            Some(path) => {
                Some(follow(&json, path).ok_or_else(|| BodyError::MissingPath(path.join(".")))?)
            }
            None => COMPONENT_KEYS
                .iter()
                .find_map(|k| json.get(k).filter(|v| v.is_object() || v.is_array())),
        };
        let mut out = Vec::new();
        match components {
            Some(Json::Object(map)) => {
                for (name, value) in map {
                    if let Some(up) = self.status(value) {
                        out.push((name.clone(), up));
                    }
                }
            }
            Some(Json::Array(items)) => {
                for item in items {
                    let name = item.get("name").and_then(Json::as_str);
                    if let (Some(name), Some(up)) = (name, self.status(item)) {
                        out.push((name.to_string(), up));
                    }
                }
            }
            _ => {}
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|later, first| later.0 == first.0);
        Ok(BodyHealth {
            status_up,
            components: out,
        })
    }

    /// Whether a status value means up; `None` when it is not a status. A
    /// list's items may not be lists, so the depth stays bounded.
    fn status(&self, value: &Json) -> Option<bool> {
        match value {
            Json::Object(map) => self.word(map.get("status")?),
            Json::Array(items) if !items.is_empty() => items
                .iter()
                .map(|item| match item {
                    Json::Array(_) => None,
                    other => self.status(other),
                })
                .collect::<Option<Vec<bool>>>()
                .map(|ups| ups.iter().all(|up| *up)),
            other => self.word(other),
        }
    }

    /// A status word or boolean.
    fn word(&self, value: &Json) -> Option<bool> {
        match value {
            Json::String(s) => Some(self.up_values.iter().any(|w| w.eq_ignore_ascii_case(s))),
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

fn follow<'a>(json: &'a Json, path: &[String]) -> Option<&'a Json> {
    path.iter().try_fold(json, |v, key| v.get(key.as_str()))
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// `app_up`.
    pub up: bool,
    /// The status code, 0 without an answer.
    pub status: u16,
    /// Components read from the body (empty without an answer).
    pub components: Vec<(String, bool)>,
    /// Whether the body counted as a parse error.
    pub parse_error: bool,
}

/// Judges an answer: `app_up` from the status code and the body's overall
/// status; the body's problems never fail the check beyond that.
pub fn judge(
    status: u16,
    body: &[u8],
    reader: Option<&BodyReader>,
) -> (CheckResult, Option<BodyError>) {
    let ok_status = (200..300).contains(&status);
    let read = match reader {
        Some(r) if !body.iter().all(u8::is_ascii_whitespace) => Some(r.read(body)),
        _ => None,
    };
    match read {
        Some(Ok(health)) => (
            CheckResult {
                up: ok_status && health.status_up != Some(false),
                status,
                components: health.components,
                parse_error: false,
            },
            None,
        ),
        Some(Err(e)) => (
            CheckResult {
                up: ok_status,
                status,
                components: Vec::new(),
                parse_error: true,
            },
            Some(e),
        ),
        None => (
            CheckResult {
                up: ok_status,
                status,
                components: Vec::new(),
                parse_error: false,
            },
            None,
        ),
    }
}

/// One target's state shared between its task and the handle.
#[derive(Debug, Default)]
struct ProbeState {
    /// Set (before taking the store lock) when the task is replaced; the
    /// task checks it under the store lock, so a retired task never
    /// writes after its series were removed.
    retired: AtomicBool,
    /// Components written by the last check.
    components: Mutex<Vec<String>>,
}

struct Probe {
    name: String,
    task: tokio::task::JoinHandle<()>,
    state: Arc<ProbeState>,
}

/// The running health probe.
pub struct Handle {
    store: Arc<Store>,
    runtime: tokio::runtime::Handle,
    failures: Arc<FailureLog>,
    probes: Mutex<Vec<Probe>>,
}

/// Starts one task per target; must run inside the Tokio runtime.
pub fn start(settings: &HealthSettings, store: Arc<Store>) -> Handle {
    let handle = Handle {
        store,
        runtime: tokio::runtime::Handle::current(),
        failures: Arc::new(FailureLog::new(FailureSubject::Target)),
        probes: Mutex::new(Vec::new()),
    };
    handle.reconfigure(settings);
    handle
}

impl Handle {
    /// Replaces every probe task with the new settings' ones (callable from
    /// any thread). Series of targets no longer configured are removed; a
    /// target kept by name keeps its series until its next check.
    pub fn reconfigure(&self, settings: &HealthSettings) {
        let mut probes = self.probes.lock_unpoisoned();
        let old: Vec<Probe> = std::mem::take(&mut *probes);
        for p in &old {
            p.state.retired.store(true, Ordering::SeqCst);
            p.task.abort();
        }
        let mut carried: BTreeMap<String, Vec<String>> = BTreeMap::new();
        {
            let mut w = self.store.writer(Instant::now());
            for p in old {
                let components = std::mem::take(&mut *p.state.components.lock_unpoisoned());
                if settings.targets.iter().any(|t| t.name == p.name) {
                    carried.insert(p.name, components);
                } else {
                    remove_target(&mut w, &p.name, &components);
                    self.failures.forget(&p.name);
                }
            }
        }
        for target in &settings.targets {
            let state = Arc::new(ProbeState {
                retired: AtomicBool::new(false),
                components: Mutex::new(carried.remove(&target.name).unwrap_or_default()),
            });
            let task = self.runtime.spawn(poll(
                target.clone(),
                self.store.clone(),
                state.clone(),
                self.failures.clone(),
            ));
            probes.push(Probe {
                name: target.name.clone(),
                task,
                state,
            });
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        for p in self.probes.lock_unpoisoned().iter() {
            p.task.abort();
        }
    }
}

fn remove_target(w: &mut Writer<'_>, target: &str, components: &[String]) {
    let labels = [("target", target)];
    for name in [UP, DURATION, STATUS_CODE, PARSE_ERRORS] {
        w.remove(name, &labels);
    }
    for c in components {
        w.remove(COMPONENT_UP, &[("target", target), ("component", c)]);
    }
}

async fn poll(
    target: HealthTarget,
    store: Arc<Store>,
    state: Arc<ProbeState>,
    failures: Arc<FailureLog>,
) {
    let mut ticks = tokio::time::interval(target.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Idle series must outlive the gap between checks whatever the store's
    // default TTL; a target that stopped being polled expires after a few.
    let ttl = Some((target.interval + target.timeout) * 3);
    loop {
        ticks.tick().await;
        let started = Instant::now();
        let fetched = tokio::time::timeout(
            target.timeout,
            target
                .endpoint
                .get("application/json, */*;q=0.5", target.max_body),
        )
        .await;
        let elapsed = started.elapsed();
        let (result, problem) = match fetched {
            Ok(Ok(r)) => {
                let (result, body_error) = judge(r.status, &r.body, target.reader.as_ref());
                (result, body_error.map(|e| e.to_string()))
            }
            Ok(Err(e)) => (no_answer(), Some(e.to_string())),
            Err(_) => (
                no_answer(),
                Some(format!(
                    "no answer from {} within {:?}",
                    target.endpoint.redacted(),
                    target.timeout
                )),
            ),
        };
        failures.record(&target.name, problem.as_deref().map_or(Ok(()), Err));
        record(&store, &state, &target.name, ttl, &result, elapsed);
    }
}

fn no_answer() -> CheckResult {
    CheckResult {
        up: false,
        status: 0,
        components: Vec::new(),
        parse_error: false,
    }
}

/// Writes one check's result for `target`, removing components no longer
/// reported.
fn record(
    store: &Store,
    state: &ProbeState,
    target: &str,
    ttl: Option<Duration>,
    result: &CheckResult,
    elapsed: Duration,
) {
    let mut w = store.writer(Instant::now());
    if state.retired.load(Ordering::SeqCst) {
        return;
    }
    let labels = [("target", target)];
    let id = |name, help| SeriesId {
        name,
        help,
        labels: &labels,
        ttl,
    };
    let gauges = [
        (
            UP,
            "Whether the app's last health check succeeded.",
            if result.up { 1.0 } else { 0.0 },
        ),
        (
            DURATION,
            "How long the last health check took.",
            elapsed.as_secs_f64(),
        ),
        (
            STATUS_CODE,
            "HTTP status of the last health check (0: no answer).",
            f64::from(result.status),
        ),
    ];
    // The store rejects only names of another type or over the series cap;
    // both are counted by the store itself.
    for (name, help, value) in gauges {
        let _ = w.update(&id(name, help), Op::GaugeSet(value));
    }
    let parse_error = if result.parse_error { 1.0 } else { 0.0 };
    let _ = w.update(
        &id(
            PARSE_ERRORS,
            "Health bodies that were not JSON or lacked the components path.",
        ),
        Op::CounterAdd(parse_error),
    );
    let mut known = state.components.lock_unpoisoned();
    for (component, up) in &result.components {
        let labels = [("target", target), ("component", component.as_str())];
        let _ = w.update(
            &SeriesId {
                name: COMPONENT_UP,
                help: "Whether a component of the app's health check is up.",
                labels: &labels,
                ttl,
            },
            Op::GaugeSet(if *up { 1.0 } else { 0.0 }),
        );
    }
    for old in known.iter() {
        if !result.components.iter().any(|(c, _)| c == old) {
            w.remove(COMPONENT_UP, &[("target", target), ("component", old)]);
        }
    }
    *known = result.components.iter().map(|(c, _)| c.clone()).collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Result<BodyHealth, BodyError> {
        BodyReader::default().read(body.as_bytes())
    }

    fn comps(list: &[(&str, bool)]) -> Vec<(String, bool)> {
        list.iter().map(|(n, u)| (n.to_string(), *u)).collect()
    }

    #[test]
    fn reads_the_usual_health_bodies() {
        // Spring Boot 2 / MicroProfile object form, as in the issue.
        let h = read(r#"{"status":"UP","checks":{"database":"UP","cache":{"status":"DOWN"}}}"#)
            .unwrap();
        assert_eq!(h.status_up, Some(true));
        assert_eq!(h.components, comps(&[("cache", false), ("database", true)]));
        // FastAPI-style.
        let h = read(r#"{"status":"healthy","components":{"model":"ok"}}"#).unwrap();
        assert_eq!(h.status_up, Some(true));
        assert_eq!(h.components, comps(&[("model", true)]));
        // ASP.NET Core.
        let h = read(r#"{"status":"Degraded","entries":{"db":{"status":"Healthy","duration":"00:00:00.01"},"queue":{"status":"Unhealthy"}}}"#).unwrap();
        assert_eq!(h.status_up, Some(false));
        assert_eq!(h.components, comps(&[("db", true), ("queue", false)]));
        // MicroProfile list form.
        let h = read(r#"{"status":"DOWN","checks":[{"name":"db","status":"UP"},{"name":"disk","status":"DOWN"},{"status":"UP"},{"name":"db","status":"DOWN"}]}"#).unwrap();
        assert_eq!(h.status_up, Some(false));
        assert_eq!(h.components, comps(&[("db", true), ("disk", false)]));
        // IETF health draft: lists of checks per component.
        let h = read(r#"{"status":"pass","checks":{"db:responseTime":[{"status":"pass"},{"status":"warn"}],"up:time":[{"status":"pass"}]}}"#).unwrap();
        assert_eq!(
            h.components,
            comps(&[("db:responseTime", false), ("up:time", true)])
        );
        // Booleans; entries without a status are not components.
        let h = read(
            r#"{"status":true,"details":{"a":true,"b":false,"n":3,"z":null,"o":{"x":1},"l":[]}}"#,
        )
        .unwrap();
        assert_eq!(h.status_up, Some(true));
        assert_eq!(h.components, comps(&[("a", true), ("b", false)]));
        // Status only: no components, no error.
        assert_eq!(
            read(r#"{"status":"UP"}"#).unwrap(),
            BodyHealth {
                status_up: Some(true),
                components: vec![]
            }
        );
        assert_eq!(read("[1,2]").unwrap(), BodyHealth::default());
    }

    #[test]
    fn paths_and_words_are_configurable() {
        let r = BodyReader::new(
            Some("details.components"),
            Some("health.state"),
            Some(&["Green".into()]),
        )
        .unwrap();
        let h = r
            .read(br#"{"health":{"state":"GREEN"},"details":{"components":{"gpu":"green","db":"UP"}}}"#)
            .unwrap();
        assert_eq!(h.status_up, Some(true));
        assert_eq!(h.components, comps(&[("db", false), ("gpu", true)]));
        assert_eq!(
            r.read(br#"{"status":"UP"}"#),
            Err(BodyError::MissingPath("details.components".into()))
        );
        assert!(matches!(read("OK"), Err(BodyError::NotJson(_))));
        assert_eq!(
            BodyReader::new(Some("a..b"), None, None).unwrap_err().key,
            "components_path"
        );
        assert_eq!(
            BodyReader::new(None, None, Some(&[])).unwrap_err().key,
            "up_values"
        );
    }

    #[test]
    fn judging_an_answer() {
        let r = BodyReader::default();
        let (c, e) = judge(200, br#"{"status":"UP","checks":{"db":"DOWN"}}"#, Some(&r));
        assert_eq!((c.up, c.status, c.parse_error, e), (true, 200, false, None));
        assert_eq!(c.components, comps(&[("db", false)]));
        // Spring answers 503 with the body.
        let (c, _) = judge(
            503,
            br#"{"status":"DOWN","checks":{"db":"DOWN"}}"#,
            Some(&r),
        );
        assert!(!c.up);
        assert_eq!(c.components, comps(&[("db", false)]));
        // 200 with an overall status that is not up.
        assert!(!judge(200, br#"{"status":"DOWN"}"#, Some(&r)).0.up);
        // Not JSON: the status code alone, and a parse error.
        let (c, e) = judge(200, b"OK", Some(&r));
        assert!(c.up && c.parse_error && e.is_some());
        let (c, _) = judge(500, b"<html>", Some(&r));
        assert!(!c.up && c.parse_error);
        // Empty body, or parsing off: no error.
        assert!(!judge(204, b" \n", Some(&r)).0.parse_error);
        assert!(judge(204, b"", Some(&r)).0.up);
        assert!(!judge(200, b"OK", None).0.parse_error);
    }

    #[test]
    fn store_series_follow_the_checks() {
        let store = Store::new(crate::store::Limits::default());
        let state = ProbeState::default();
        let ok = CheckResult {
            up: true,
            status: 200,
            components: comps(&[("db", true), ("cache", false)]),
            parse_error: false,
        };
        record(&store, &state, "api", None, &ok, Duration::from_millis(20));
        let bad = CheckResult {
            up: true,
            status: 200,
            components: comps(&[("db", false)]),
            parse_error: true,
        };
        record(&store, &state, "api", None, &bad, Duration::from_millis(30));
        let mut out = Vec::new();
        store.collect(Instant::now(), &mut out);
        let text = {
            oxmon_core::metrics::normalize(&mut out);
            let mut buf = Vec::new();
            oxmon_core::encode::encode(&out, oxmon_core::encode::Format::Text, &mut buf);
            String::from_utf8(buf).unwrap()
        };
        assert!(
            text.contains("app_health_component_up{component=\"db\",target=\"api\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("cache"), "{text}");
        assert!(
            text.contains("app_health_parse_errors_total{target=\"api\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("app_health_check_duration_seconds{target=\"api\"} 0.03\n"),
            "{text}"
        );
        assert!(text.contains("app_up{target=\"api\"} 1\n"), "{text}");

        // A retired probe writes nothing.
        state.retired.store(true, Ordering::SeqCst);
        record(&store, &state, "api", None, &no_answer(), Duration::ZERO);
        let mut out = Vec::new();
        store.collect(Instant::now(), &mut out);
        let up = out.iter().find(|f| f.name == UP).unwrap();
        assert_eq!(up.metrics[0].value, oxmon_core::metrics::Value::Single(1.0));
    }

    #[test]
    fn flags_and_section_merge() {
        let file: HealthConfig = serde_yaml::from_str(
            "interval: 30s\ntargets:\n- url: http://127.0.0.1:1/health\n- url: http://127.0.0.1:2/h\n  name: two\n  interval: 1m\n  timeout: 10s\n",
        )
        .unwrap();
        let flags = HealthArgs {
            urls: vec!["http://u:p@10.0.0.1:9000/ready?key=x".into()],
            interval: None,
            timeout: Some(Duration::from_secs(2)),
        };
        let s = resolve(Some(&file), &flags).unwrap();
        let view: Vec<_> = s
            .targets
            .iter()
            .map(|t| (t.name.as_str(), t.interval.as_secs(), t.timeout.as_secs()))
            .collect();
        assert_eq!(
            view,
            [
                ("127.0.0.1:1/health", 30, 2),
                ("two", 60, 10),
                ("10.0.0.1:9000/ready", 30, 2)
            ]
        );
        // Defaults without either.
        let s = resolve(
            None,
            &HealthArgs {
                urls: vec!["http://a/".into()],
                ..HealthArgs::default()
            },
        )
        .unwrap();
        assert_eq!(
            (s.targets[0].interval, s.targets[0].timeout),
            (DEFAULT_INTERVAL, DEFAULT_TIMEOUT)
        );
        assert_eq!(s.targets[0].name, "a:80/");
    }

    #[test]
    fn section_errors_name_the_key() {
        let err = |yaml: &str| match resolve(
            Some(&serde_yaml::from_str(yaml).unwrap()),
            &HealthArgs::default(),
        ) {
            Err(Problem::File(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(err("interval: 5x\n").key, "interval");
        assert_eq!(
            err("targets:\n- url: http://a/\n  timeout: 0s\n"),
            FieldError::new("targets[0].timeout", "must be more than 0")
        );
        assert_eq!(
            err("targets:\n- url: http://a/\n- url: http://a/\n").key,
            "targets[1].url"
        );
        assert_eq!(
            err("targets:\n- {url: http://a/, name: x}\n- {url: http://b/, name: x}\n").key,
            "targets[1].name"
        );
        assert_eq!(
            err("targets:\n- {url: http://a/, timeout: 20s}\n").key,
            "targets[0].timeout"
        );
        assert_eq!(
            err("targets:\n- {url: http://a/, max_body_bytes: 0}\n").key,
            "targets[0].max_body_bytes"
        );
        let flag = resolve(
            None,
            &HealthArgs {
                urls: vec!["nope".into()],
                ..HealthArgs::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                flag,
                Problem::Flag {
                    flag: "--health.url",
                    ..
                }
            ),
            "{flag:?}"
        );
    }
}

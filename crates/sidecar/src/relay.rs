//! The relay: at each scrape of the sidecar, scrapes the app's own
//! `/metrics` and serves those families in the same response, so the pod
//! has one scrape target.
//!
//! Each target is fetched concurrently within the scrape's deadline (at
//! most 90% of the time left, and at most the target's `timeout`), asking
//! for the classic text format, and parsed with core's exposition parser.
//! A target that is down, too slow, answers non-2xx, or answers something
//! that does not parse gives `app_relay_up{target} 0` and none of its
//! families — never a failed scrape.
//!
//! | metric (gauges) | |
//! |---|---|
//! | `app_relay_up{target}` | 1 when the target's families were relayed at this scrape |
//! | `app_relay_scrape_duration_seconds{target}` | how long fetching and parsing took |
//! | `app_relay_series_dropped{target,reason}` | series not relayed at this scrape: `name_collision`, `series_limit` |
//!
//! Relayed families keep their names, types, help and samples (client
//! timestamps and OpenMetrics `_created` samples are dropped), with
//! - `prefix` put before every family name;
//! - `labels` added to every series; a label the app already uses under
//!   such a name is kept as `exported_<name>`, as Prometheus does when it
//!   does not honor labels.
//!
//! Names the sidecar serves itself win: a relayed family whose final name
//! is a name of the sidecar's store (StatsD, tap, logs, health metrics —
//! once a name has been used it stays taken) or starts with one of the
//! sidecar's own prefixes (`app_up`, `app_health_`, `app_relay_`,
//! `app_config_`, `app_series_`, `app_scrape_collector_`, `app_exporter_`,
//! `process_`, `statsd_exporter_`) is dropped whole and counted as
//! `name_collision`.
//! Set `prefix` to keep it. Families of the same name from two targets are
//! merged; give the targets distinct `labels` so their series differ (the
//! first target's series wins where they do not).
//!
//! Cardinality: relayed series are not in the store, so the store's
//! per-metric cap does not apply to them. Instead each target relays at
//! most `max_series` series per scrape (default 10000; a histogram or
//! summary series counts once); families are taken whole in name order and
//! one that does not fit is dropped and counted as `series_limit`. The body
//! is read up to `max_body_bytes` (default 16 MiB); larger counts as down.
//!
//! ```yaml
//! relay:
//!   targets:                    # --relay.url adds targets
//!   - url: http://127.0.0.1:8080/metrics
//!     name: app                 # the `target` label; default host:port/path
//!     prefix: myapp_
//!     labels: {source: app}
//!     timeout: 10s
//!     max_series: 10000
//!     max_body_bytes: 16777216
//!     headers: {}               # and tls, as in crate::fetch
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use oxmon_core::collector::{BoxFuture, CollectResult, Collector, ScrapeContext};
use oxmon_core::logging::{FailureLog, FailureSubject};
use oxmon_core::metrics::{Labels, MetricFamily};
use oxmon_core::sync::RwLockExt;
use serde::Deserialize;

use crate::config::{self, FieldError, Problem, RawTarget};
use crate::fetch::{Endpoint, HeaderValueConfig, TlsConfig};
use crate::store::Store;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_SERIES: usize = 10_000;
const DEFAULT_MAX_BODY: usize = 16 << 20;
/// Name prefixes of the families the sidecar serves itself, whether or not
/// they are in the store yet (`app_up` and `app_health_*` reach the store at
/// the first health check).
pub const RESERVED_PREFIXES: [&str; 9] = [
    "app_up",
    "app_health_",
    "app_relay_",
    "app_config_",
    "app_series_",
    "app_scrape_collector_",
    "app_exporter_",
    "process_",
    "statsd_exporter_",
];
const ACCEPT: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

/// The relay's flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RelayArgs {
    /// A /metrics URL of the app whose families are served with the
    /// sidecar's (repeatable); adds to the config file's relay targets.
    #[arg(id = "relay.url", long = "relay.url", value_name = "URL")]
    pub urls: Vec<String>,
}

/// The `relay` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// The endpoints.
    #[serde(default)]
    pub targets: Vec<RelayTargetConfig>,
}

/// One relayed endpoint in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayTargetConfig {
    /// The URL to GET.
    pub url: String,
    /// The `target` label; default the URL's `host:port/path`.
    pub name: Option<String>,
    /// Put before every relayed family name.
    #[serde(default)]
    pub prefix: String,
    /// Added to every relayed series.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The longest a fetch may take (the scrape deadline may cut it
    /// shorter).
    pub timeout: Option<String>,
    /// Most series relayed per scrape.
    pub max_series: Option<usize>,
    /// The largest body read.
    pub max_body_bytes: Option<usize>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValueConfig>,
    /// TLS settings (https only).
    pub tls: Option<TlsConfig>,
}

impl RawTarget for RelayTargetConfig {
    fn from_url(url: &str) -> Self {
        RelayTargetConfig {
            url: url.to_string(),
            ..RelayTargetConfig::default()
        }
    }

    fn names_itself(&self) -> bool {
        self.name.is_some()
    }
}

/// Validated relay settings.
#[derive(Debug, Clone, Default)]
pub struct RelaySettings {
    /// The targets, names unique.
    pub targets: Vec<RelayTarget>,
}

/// One validated relay endpoint.
#[derive(Debug, Clone)]
pub struct RelayTarget {
    /// The `target` label.
    pub name: String,
    /// Where and how to GET.
    pub endpoint: Endpoint,
    /// Family name prefix.
    pub prefix: String,
    /// Extra labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Fetch timeout.
    pub timeout: Duration,
    /// Most series per scrape.
    pub max_series: usize,
    /// The largest body read.
    pub max_body: usize,
}

/// Validates the `relay` section merged with the flags.
pub fn resolve(file: Option<&RelayConfig>, flags: &RelayArgs) -> Result<RelaySettings, Problem> {
    let listed = file.map(|f| f.targets.as_slice()).unwrap_or_default();
    let targets =
        config::resolve_targets(listed, "--relay.url", &flags.urls, resolve_target, |t| {
            &t.name
        })?;
    Ok(RelaySettings { targets })
}

fn is_metric_name_prefix(s: &str) -> bool {
    s.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    })
}

fn is_label_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with("__")
        && s.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()))
}

fn resolve_target(t: &RelayTargetConfig) -> Result<RelayTarget, FieldError> {
    let endpoint = Endpoint::new(&t.url, &t.headers, t.tls.as_ref())?;
    let name = endpoint.target_name(t.name.as_deref())?;
    if !is_metric_name_prefix(&t.prefix) {
        return Err(FieldError::new(
            "prefix",
            format!("{:?} cannot start a metric name", t.prefix),
        ));
    }
    for name in t.labels.keys() {
        if !is_label_name(name) || name == "le" || name == "quantile" {
            return Err(FieldError::new(
                format!("labels.{name}"),
                format!("{name:?} is not a label name that can be added"),
            ));
        }
    }
    let timeout = match &t.timeout {
        Some(text) => config::duration("timeout", text, false)?,
        None => DEFAULT_TIMEOUT,
    };
    let max_series = t.max_series.unwrap_or(DEFAULT_MAX_SERIES);
    if max_series == 0 {
        return Err(FieldError::new("max_series", "must be more than 0"));
    }
    let max_body = t.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
    if max_body == 0 {
        return Err(FieldError::new("max_body_bytes", "must be more than 0"));
    }
    Ok(RelayTarget {
        name,
        endpoint,
        prefix: t.prefix.clone(),
        labels: t
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        timeout,
        max_series,
        max_body,
    })
}

/// What one target gave at one scrape.
#[derive(Debug, Default, PartialEq)]
pub struct Relayed {
    /// The families to serve.
    pub families: Vec<MetricFamily>,
    /// Series dropped because their name is the sidecar's.
    pub collisions: usize,
    /// Series dropped by `max_series`.
    pub over_limit: usize,
}

/// Why a target's answer cannot be relayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Not 2xx.
    #[error("HTTP status {0}")]
    Status(u16),
    /// Not UTF-8 text.
    #[error("the body is not UTF-8 text")]
    NotText,
    /// Not the exposition format.
    #[error("line {line}: {message}")]
    Parse {
        /// 1-based line of the body.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Parsed, but a family has no core form.
    #[error("{0}")]
    Convert(String),
}

/// Turns a target's exposition text into the families to serve: prefix,
/// extra labels, collisions with `taken` names, the series limit.
pub fn relay_text(
    text: &str,
    target: &RelayTarget,
    taken: impl Fn(&str) -> bool,
) -> Result<Relayed, RelayError> {
    let parsed = oxmon_core::expo::try_parse(text).map_err(|e| RelayError::Parse {
        line: e.line,
        message: e.message,
    })?;
    let families = parsed
        .to_metric_families()
        .map_err(|e| RelayError::Convert(e.to_string()))?;
    let mut out = Relayed::default();
    let mut budget = target.max_series;
    for mut family in families {
        if !target.prefix.is_empty() {
            family.name = Cow::Owned(format!("{}{}", target.prefix, family.name));
        }
        let series = family.metrics.len();
        if taken(&family.name) || RESERVED_PREFIXES.iter().any(|p| family.name.starts_with(p)) {
            out.collisions += series;
            continue;
        }
        if series > budget {
            out.over_limit += series;
            continue;
        }
        budget -= series;
        for metric in &mut family.metrics {
            add_labels(&mut metric.labels, &target.labels);
        }
        out.families.push(family);
    }
    Ok(out)
}

/// Adds `extra` to a series' labels; an existing label of the same name is
/// renamed `exported_<name>` (again, until the name is free).
fn add_labels(labels: &mut Labels, extra: &[(String, String)]) {
    for (name, value) in extra {
        if let Some(at) = labels.iter().position(|(k, _)| k == name) {
            let mut renamed = format!("exported_{name}");
            while labels.iter().any(|(k, _)| *k == renamed) {
                renamed.insert_str(0, "exported_");
            }
            labels[at].0 = Cow::Owned(renamed);
        }
        labels.push((Cow::Owned(name.clone()), value.as_str().into()));
    }
}

/// The relay: a collector whose targets a reload can replace.
#[derive(Clone)]
pub struct Handle(Arc<RelayCollector>);

struct RelayCollector {
    settings: RwLock<Arc<RelaySettings>>,
    store: Arc<Store>,
    failures: FailureLog,
}

/// Builds the relay; `store` tells which names the sidecar serves.
pub fn start(settings: &RelaySettings, store: Arc<Store>) -> Handle {
    Handle(Arc::new(RelayCollector {
        settings: RwLock::new(Arc::new(settings.clone())),
        store,
        failures: FailureLog::new(FailureSubject::Target),
    }))
}

impl Handle {
    /// Relays the new targets from the next scrape on.
    pub fn reconfigure(&self, settings: &RelaySettings) {
        *self.0.settings.write_unpoisoned() = Arc::new(settings.clone());
    }

    /// The collector to register.
    pub fn collector(&self) -> Arc<dyn Collector> {
        self.0.clone()
    }
}

impl RelayCollector {
    async fn relay_one(
        &self,
        target: &RelayTarget,
        ctx: &ScrapeContext,
    ) -> (Result<Relayed, String>, Duration) {
        let started = Instant::now();
        let budget = target.timeout.min(ctx.remaining().mul_f64(0.9));
        let fetched =
            tokio::time::timeout(budget, target.endpoint.get(ACCEPT, target.max_body)).await;
        let result = match fetched {
            Err(_) => Err(format!(
                "no answer from {} within {budget:?}",
                target.endpoint.redacted()
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(r)) => {
                let relayed = if (200..300).contains(&r.status) {
                    std::str::from_utf8(&r.body)
                        .map_err(|_| RelayError::NotText)
                        .and_then(|text| relay_text(text, target, |n| self.store.is_registered(n)))
                } else {
                    Err(RelayError::Status(r.status))
                };
                relayed.map_err(|e| format!("{}: {e}", target.endpoint.redacted()))
            }
        };
        (result, started.elapsed())
    }
}

impl Collector for RelayCollector {
    fn name(&self) -> &str {
        "relay"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let settings = self.settings.read_unpoisoned().clone();
            if settings.targets.is_empty() {
                return Ok(());
            }
            let runs = settings.targets.iter().map(|t| self.relay_one(t, ctx));
            let results = futures_util::future::join_all(runs).await;
            let mut up = MetricFamily::gauge(
                "app_relay_up",
                "Whether the app's metrics were relayed at this scrape.",
            );
            let mut duration = MetricFamily::gauge(
                "app_relay_scrape_duration_seconds",
                "How long fetching and parsing the app's metrics took.",
            );
            let mut dropped = MetricFamily::gauge(
                "app_relay_series_dropped",
                "Series of the app not relayed at this scrape, by reason.",
            );
            for (target, (result, took)) in settings.targets.iter().zip(results) {
                let t = target.name.as_str();
                duration.add(&[("target", t)], took.as_secs_f64());
                let (collisions, over_limit) = match result {
                    Ok(relayed) => {
                        self.failures.succeeded(t);
                        up.add(&[("target", t)], 1.0);
                        out.extend(relayed.families);
                        (relayed.collisions, relayed.over_limit)
                    }
                    Err(e) => {
                        self.failures.failed(t, &e);
                        up.add(&[("target", t)], 0.0);
                        (0, 0)
                    }
                };
                dropped.add(
                    &[("reason", "name_collision"), ("target", t)],
                    collisions as f64,
                );
                dropped.add(
                    &[("reason", "series_limit"), ("target", t)],
                    over_limit as f64,
                );
            }
            out.extend([up, duration, dropped]);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxmon_core::metrics::Value;

    fn target(yaml: &str) -> RelayTarget {
        resolve_target(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    const APP: &str = "# HELP req_total Requests.
# TYPE req_total counter
req_total{code=\"200\",source=\"web\"} 5
req_total{code=\"500\"} 1
# TYPE temp gauge
temp 21.5
# TYPE lat histogram
lat_bucket{le=\"0.1\"} 3
lat_bucket{le=\"+Inf\"} 4
lat_sum 0.9
lat_count 4
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 3
";

    #[test]
    fn prefix_labels_and_collisions() {
        let t = target("url: http://a/metrics\nprefix: app_\nlabels: {source: app}\n");
        let r = relay_text(APP, &t, |n| n == "app_temp").unwrap();
        let names: Vec<_> = r.families.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(
            names,
            ["app_lat", "app_process_cpu_seconds_total", "app_req_total"]
        );
        assert_eq!(r.collisions, 1);
        let req = &r.families[2];
        assert_eq!(
            req.metrics[0].labels,
            vec![
                (Cow::Borrowed("code"), "200".into()),
                (Cow::Borrowed("exported_source"), "web".into()),
                (Cow::Borrowed("source"), "app".into()),
            ]
        );
        assert_eq!(req.metrics[0].value, Value::Single(5.0));
        assert_eq!(
            r.families[0].metrics[0].value,
            Value::Histogram {
                buckets: vec![(0.1, 3), (f64::INFINITY, 4)],
                sum: 0.9,
                count: 4
            }
        );

        // Without a prefix the sidecar's own process_ metrics win.
        let t = target("url: http://a/metrics\n");
        let r = relay_text(APP, &t, |_| false).unwrap();
        assert_eq!(r.collisions, 1);
        assert_eq!(r.families.len(), 3);
    }

    #[test]
    fn series_limit_keeps_whole_families() {
        let t = target("url: http://a/metrics\nmax_series: 2\n");
        let r = relay_text(APP, &t, |_| false).unwrap();
        let names: Vec<_> = r.families.iter().map(|f| f.name.as_ref()).collect();
        // lat (1 series) fits, req_total (2) does not, temp (1) does.
        assert_eq!(names, ["lat", "temp"]);
        assert_eq!((r.over_limit, r.collisions), (2, 1));
    }

    #[test]
    fn garbage_is_an_error_not_a_partial_relay() {
        let t = target("url: http://a/metrics\n");
        assert!(matches!(
            relay_text("ok 1\nthis is not metrics\n", &t, |_| false),
            Err(RelayError::Parse { line: 2, .. })
        ));
        assert!(matches!(
            relay_text("# TYPE h histogram\nh_bucket 1\n", &t, |_| false),
            Err(RelayError::Parse { .. } | RelayError::Convert(_))
        ));
        assert_eq!(relay_text("", &t, |_| false).unwrap(), Relayed::default());
    }

    #[test]
    fn exported_labels_never_clash() {
        let mut labels = Labels::from([
            (Cow::Borrowed("job"), "a".into()),
            (Cow::Borrowed("exported_job"), "b".into()),
        ]);
        add_labels(&mut labels, &[("job".into(), "sidecar".into())]);
        let names: Vec<_> = labels.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(names, ["exported_exported_job", "exported_job", "job"]);
    }

    #[test]
    fn target_settings_are_checked() {
        let err = |yaml: &str| resolve_target(&serde_yaml::from_str(yaml).unwrap()).unwrap_err();
        assert_eq!(err("url: http://a/\nprefix: 1x\n").key, "prefix");
        assert_eq!(err("url: http://a/\nlabels: {le: x}\n").key, "labels.le");
        assert_eq!(err("url: http://a/\nlabels: {__x: x}\n").key, "labels.__x");
        assert_eq!(err("url: http://a/\nmax_series: 0\n").key, "max_series");
        assert_eq!(err("url: http://a/\ntimeout: soon\n").key, "timeout");
        assert_eq!(err("url: gopher://a/\n").key, "url");
        let file: RelayConfig = serde_yaml::from_str(
            "targets:\n- url: http://a/m\n- url: http://b/m\n  name: a:80/m\n",
        )
        .unwrap();
        match resolve(Some(&file), &RelayArgs::default()).unwrap_err() {
            Problem::File(e) => assert_eq!(e.key, "targets[1].name"),
            other => panic!("{other:?}"),
        }
        let dup = resolve(
            Some(&file),
            &RelayArgs {
                urls: vec!["http://x/".into(), "http://x/".into()],
            },
        );
        assert!(matches!(dup, Err(Problem::File(_))));
        let flags = RelayArgs {
            urls: vec!["http://x/".into(), "http://x/".into()],
        };
        assert!(matches!(
            resolve(None, &flags),
            Err(Problem::Flag {
                flag: "--relay.url",
                ..
            })
        ));
    }
}

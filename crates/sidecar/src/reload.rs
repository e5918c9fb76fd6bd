//! The running sidecar's sources and their one reload: SIGHUP (through
//! core's `Registry::on_reload`, after the web config) and `POST /-/reload`
//! re-read the config file, validate all of it, and only then hand each
//! source its new section. An invalid file changes nothing (the error, with
//! file, line and key, is logged, and answered to `/-/reload`).
//!
//! Metrics, in Prometheus' own naming for its config reloads:
//!
//! | metric | |
//! |---|---|
//! | `app_config_reloads_total{result}` (counter) | reloads, `result` `success` or `failure` (the load at start is not counted) |
//! | `app_config_last_reload_successful` (gauge) | 1 when the last load (at start or since) was applied |
//! | `app_config_last_reload_success_timestamp_seconds` (gauge) | when the config was last applied (start counts) |
//!
//! The StatsD mapping is part of the config, so
//! `statsd_exporter_config_reloads_total{outcome}` counts the same reloads.
//!
//! `/-/reload` answers 200 with an empty body, or 500 with the error. It is
//! served like the metric routes (same auth and TLS), for any method.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use oxmon_core::collector::{BoxFuture, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::server::{HttpError, Route, RouteRequest};
use oxmon_core::sync::LockExt;
use oxmon_core::MetricFamily;

use crate::config::{Config, ConfigError, Flags};
use crate::statsd::{self, StatsdArgs};
use crate::store::Store;
use crate::{health, logs, relay, tap};

/// Every running source, reconfigurable from a new [`Config`].
pub struct Sources {
    /// The store every source writes to.
    pub store: Arc<Store>,
    /// The health probe.
    pub health: health::Handle,
    /// The relay.
    pub relay: relay::Handle,
    /// StatsD, unless every listener is off.
    pub statsd: Option<statsd::Handle>,
    /// Log tailing, while the config has a `logs` section (or `--logs.path`).
    logs: Mutex<Option<logs::Handle>>,
    /// The HTTP tap, while the config has a `tap` section (or `--tap.*`).
    tap: Mutex<Option<tap::Handle>>,
}

impl Sources {
    /// Starts every source from `config`; must run inside the Tokio
    /// runtime. StatsD listeners come from the flags only; with every one
    /// turned off (`--statsd.listen-udp= --statsd.listen-tcp=`) StatsD is
    /// off.
    pub fn start(config: Config, statsd_args: &StatsdArgs) -> Result<Sources, StartError> {
        let store = Arc::new(Store::new(config.limits));
        let statsd = if statsd_args.enabled() {
            Some(statsd::start(statsd_args, config.statsd, store.clone())?)
        } else {
            None
        };
        let logs = match &config.logs {
            Some(section) => Some(logs::start(section, store.clone())?),
            None => None,
        };
        let tap = match &config.tap {
            Some(section) => Some(tap::start(section, store.clone())?),
            None => None,
        };
        Ok(Sources {
            health: health::start(&config.health, store.clone()),
            relay: relay::start(&config.relay, store.clone()),
            statsd,
            logs: Mutex::new(logs),
            tap: Mutex::new(tap),
            store,
        })
    }

    /// Hands each source its section of a validated config.
    fn apply(&self, config: Config) {
        self.store.set_limits(config.limits);
        self.health.reconfigure(&config.health);
        self.relay.reconfigure(&config.relay);
        if let Some(statsd) = &self.statsd {
            statsd.reconfigure(config.statsd);
        }
        // The section was validated with the rest of the config; what can
        // still fail here is setting up a new tailer thread.
        let mut logs = self.logs.lock_unpoisoned();
        match (logs.take(), &config.logs) {
            (Some(running), Some(section)) => {
                if let Err(e) = running.reconfigure(section) {
                    tracing::error!(err = %e, "logs: keeping the running section");
                }
                *logs = Some(running);
            }
            (Some(running), None) => running.stop(),
            (None, Some(section)) => match logs::start(section, self.store.clone()) {
                Ok(started) => *logs = Some(started),
                Err(e) => tracing::error!(err = %e, "logs: cannot start"),
            },
            (None, None) => {}
        }
        drop(logs);
        let mut tap = self.tap.lock_unpoisoned();
        match (tap.take(), &config.tap) {
            (Some(running), Some(section)) => {
                if let Err(e) = running.reconfigure(section) {
                    tracing::error!(err = %e, "tap: keeping the running section");
                }
                *tap = Some(running);
            }
            (Some(running), None) => running.stop(),
            (None, Some(section)) => match tap::start(section, self.store.clone()) {
                Ok(started) => *tap = Some(started),
                Err(e) => tracing::error!(err = %e, "tap: cannot start"),
            },
            (None, None) => {}
        }
    }
}

/// Why the sources could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// StatsD's listeners.
    #[error(transparent)]
    Statsd(#[from] statsd::StartError),
    /// The log tailer.
    #[error(transparent)]
    Logs(#[from] logs::Error),
    /// The HTTP tap.
    #[error(transparent)]
    Tap(#[from] tap::Error),
}

/// Reloads the config into the sources and counts the outcomes.
pub struct Reloader {
    file: Option<PathBuf>,
    flags: Flags,
    sources: Sources,
    /// One reload at a time (SIGHUP and /-/reload may race).
    running: Mutex<()>,
    successes: AtomicU64,
    failures: AtomicU64,
    last_successful: AtomicBool,
    /// f64 bits of the Unix time of the last applied config.
    last_success: AtomicU64,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Reloader {
    /// A reloader for sources started from the config that `file` and
    /// `flags` gave just now.
    pub fn new(file: Option<PathBuf>, flags: Flags, sources: Sources) -> Arc<Reloader> {
        Arc::new(Reloader {
            file,
            flags,
            sources,
            running: Mutex::new(()),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_successful: AtomicBool::new(true),
            last_success: AtomicU64::new(unix_now().to_bits()),
        })
    }

    /// The running sources.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Re-reads and validates the config, then applies it; an invalid one
    /// keeps what runs. Blocking (file reads): call it off the runtime's
    /// threads. The caller logs the outcome (core's reload hook does).
    pub fn reload(&self) -> Result<(), ConfigError> {
        let _one = self.running.lock_unpoisoned();
        match Config::load(self.file.as_deref(), &self.flags) {
            Ok(config) => {
                self.sources.apply(config);
                self.successes.fetch_add(1, Ordering::Relaxed);
                self.last_successful.store(true, Ordering::Relaxed);
                self.last_success
                    .store(unix_now().to_bits(), Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                if let Some(statsd) = &self.sources.statsd {
                    statsd.reload_failed();
                }
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.last_successful.store(false, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// `/-/reload`.
    pub fn route(self: &Arc<Self>) -> Arc<dyn Route> {
        Arc::new(ReloadRoute(Arc::clone(self)))
    }

    /// The reload metrics.
    pub fn collector(self: &Arc<Self>) -> ReloadCollector {
        ReloadCollector(Arc::clone(self))
    }
}

struct ReloadRoute(Arc<Reloader>);

impl Route for ReloadRoute {
    fn handle<'a>(
        &'a self,
        _: &'a RouteRequest,
    ) -> BoxFuture<'a, Result<Vec<MetricFamily>, HttpError>> {
        Box::pin(async move {
            let reloader = Arc::clone(&self.0);
            let outcome =
                tokio::task::spawn_blocking(move || reloader.reload().map_err(|e| e.to_string()))
                    .await
                    .unwrap_or_else(|_| Err("the reload panicked".into()));
            match outcome {
                Ok(()) => {
                    tracing::info!("/-/reload: config reloaded");
                    Ok(Vec::new())
                }
                Err(e) => {
                    tracing::error!(err = %e, "/-/reload: reloading the config failed; keeping the running config");
                    Err(HttpError {
                        status: 500,
                        message: format!("failed to reload config: {e}"),
                    })
                }
            }
        })
    }
}

/// Writes the reload metrics.
pub struct ReloadCollector(Arc<Reloader>);

impl SyncCollector for ReloadCollector {
    fn name(&self) -> &'static str {
        "config"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let r = &self.0;
        let mut reloads = MetricFamily::counter(
            "app_config_reloads_total",
            "Config reloads (SIGHUP, POST /-/reload) by result.",
        );
        reloads.add(
            &[("result", "success")],
            r.successes.load(Ordering::Relaxed) as f64,
        );
        reloads.add(
            &[("result", "failure")],
            r.failures.load(Ordering::Relaxed) as f64,
        );
        out.push(reloads);
        out.push(oxmon_core::gauge(
            "app_config_last_reload_successful",
            "Whether the last config load was applied.",
            if r.last_successful.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            },
        ));
        out.push(oxmon_core::gauge(
            "app_config_last_reload_success_timestamp_seconds",
            "Unix time the config was last applied.",
            f64::from_bits(r.last_success.load(Ordering::Relaxed)),
        ));
        Ok(())
    }
}

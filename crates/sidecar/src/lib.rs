//! # oxmon-sidecar
//!
//! A Prometheus exporter that runs beside an application and turns what the
//! application emits into metrics on one scrape target (default port 9102).
//! Every source feeds one live [`store`]; the scrape snapshots it.
//!
//! Sources:
//! - [`health`]: polls the app's health URL(s); `app_up`, component status.
//! - [`relay`]: the app's own `/metrics`, served in the same scrape.
//! - [`statsd`]: statsd_exporter's line protocol, mapping file and flags
//!   over UDP, TCP and unixgram (default `:9125`).
//! - [`logs`]: log files followed through rotation and truncation (JSON,
//!   regex, Kubernetes CRI, Docker json-file) into `http_*` and log metrics.
//! - [`tap`]: a reverse proxy in front of the application recording
//!   `http_requests_total`, latency and size histograms (with trace
//!   exemplars) and requests in flight.
//!
//! [`logs`] and [`tap`] label requests by the same [`route`] patterns.
//!
//! [`config`] reads the one config file (`--config.file`) and merges the
//! flags; [`reload`] holds the running sources and reloads them all on
//! SIGHUP and `POST /-/reload`. [`fetch`] is the HTTP GET the health probe
//! and the relay share.
//!
//! The sidecar's own metrics use the namespace `app`
//! (`app_series_dropped_total`, `app_config_reloads_total`); the StatsD
//! source's self-metrics keep statsd_exporter's names (`statsd_exporter_*`)
//! so its dashboards work.

pub mod config;
pub mod fetch;
pub mod health;
pub mod listen;
pub mod logs;
pub mod relay;
pub mod reload;
pub mod route;
pub mod statsd;
pub mod store;
pub mod tap;

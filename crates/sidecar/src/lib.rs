//! # oxmon-sidecar
//!
//! A Prometheus exporter that runs beside an application and turns what the
//! application emits into metrics on one scrape target (default port 9102).
//! Every source feeds one live [`store`]; the scrape snapshots it.
//!
//! Sources:
//! - [`statsd`]: statsd_exporter's line protocol, mapping file and flags
//!   over UDP, TCP and unixgram (default `:9125`).
//! - [`logs`]: log files followed through rotation and truncation (JSON,
//!   regex, Kubernetes CRI, Docker json-file) into `http_*` and log metrics.
//!
//! The store's own metrics use the namespace `app`
//! (`app_series_dropped_total`); the StatsD source's self-metrics keep
//! statsd_exporter's names (`statsd_exporter_*`) so its dashboards work.

pub mod logs;
pub mod statsd;
pub mod store;

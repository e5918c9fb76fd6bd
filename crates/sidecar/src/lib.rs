//! # oxmon-sidecar
//!
//! A Prometheus exporter that runs beside an application and turns what the
//! application emits into metrics on one scrape target (default port 9102).
//! Every source feeds one live [`store`]; the scrape snapshots it.
//!
//! Sources:
//! - [`statsd`]: statsd_exporter's line protocol, mapping file and flags
//!   over UDP, TCP and unixgram (default `:9125`).
//! - [`tap`]: a reverse proxy in front of the application recording
//!   `http_requests_total`, latency and size histograms (with trace
//!   exemplars) and requests in flight.
//!
//! The store's own metrics use the namespace `app`
//! (`app_series_dropped_total`); the StatsD source's self-metrics keep
//! statsd_exporter's names (`statsd_exporter_*`) so its dashboards work.

pub mod listen;
pub mod statsd;
pub mod store;
pub mod tap;

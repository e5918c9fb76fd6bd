//! # oxmon-testkit
//!
//! Helpers for oxmon's tests (a dev-dependency only): real servers started
//! by the tests themselves on free loopback ports in temp dirs, stopped and
//! deleted on drop, and a parser for the exposition text the exporters
//! serve.
//!
//! - [`parse`] / [`try_parse`]: 0.0.4 and OpenMetrics text into an
//!   [`Exposition`] of [`Family`]s and [`Sample`]s.
//! - [`http_get`], [`http_try_get`], [`http_request`], [`http_get_tls`]: a
//!   blocking HTTP/1.1 client that sends only the headers it is given and
//!   returns 4xx/5xx responses as they are.
//! - [`ExporterProcess`]: runs an exporter binary on a free port and waits
//!   for `/-/ready`.
//! - [`Postgres`] (`initdb` + `pg_ctl`, as the `postgres` user when run as
//!   root), [`Redis`], [`Prometheus`], [`Alertmanager`],
//!   [`VictoriaMetrics`], and a [`WebhookReceiver`] for Alertmanager
//!   notifications.
//! - [`versions`]: the PostgreSQL 12–18 and Redis 6.0/7.0/7.4 builds of the
//!   version matrix ([`ServerBuild`], from Debian or the cache that
//!   `scripts/fetch-servers` fills), for [`Postgres::start_build`] and
//!   [`Redis::start_build`].
//! - [`TestCerts`]: a CA with server and client certificates (via `openssl`).
//! - [`assert_golden`] (`UPDATE_GOLDEN=1` rewrites), [`line_diff`],
//!   [`promtool`], [`promtool_check_metrics`].
//!
//! A missing program makes the test panic with the Debian package to
//! install, for example `redis-server not found: apt-get install
//! redis-server`; nothing passes silently.
//!
//! ## Example
//!
//! ```no_run
//! use oxmon_testkit::{ExporterProcess, Postgres};
//!
//! let pg = Postgres::start();
//! pg.psql("postgres", "CREATE DATABASE app");
//! let dsn = pg.dsn("app");
//! let exporter = ExporterProcess::start(
//!     "target/debug/oxmon-postgres", // env!("CARGO_BIN_EXE_oxmon-postgres") in a test
//!     &[],
//!     &[("DATA_SOURCE_NAME", dsn.as_str())],
//! );
//! let metrics = exporter.scrape();
//! assert_eq!(metrics.value("pg_up", &[]), Some(1.0));
//! assert_eq!(metrics.family("pg_up").unwrap().kind, "gauge");
//! ```

mod certs;
mod check;
mod exporter;
mod http;
mod postgres;
mod prom;
mod reaper;
mod redis;
mod util;
pub mod versions;

pub use certs::TestCerts;
pub use check::{assert_golden, line_diff, promtool, promtool_check_metrics};
pub use oxmon_core::expo::{parse, parse_float, try_parse, Exposition, Family, ParseError, Sample};

pub use exporter::{ExporterProcess, Readiness, StartOptions};
pub use http::{
    basic_auth, http_get, http_get_tls, http_post, http_request, http_try_get, https_request,
    url_encode, HttpResponse, TlsOptions,
};
/// The exposition parser, which lives in oxmon-core (exporters use it too).
pub use oxmon_core::expo;
pub use postgres::{find_bin_dir as postgres_bin_dir, Postgres, POSTGRES_PASSWORD};
pub use prom::{Alertmanager, Prometheus, VictoriaMetrics, WebhookReceiver};
pub use redis::{Redis, Reply};
pub use util::{
    find_program, free_port, is_root, log_tail, require_program, send_signal, tail, wait_until,
};
pub use versions::ServerBuild;

/// Re-exported: [`Prometheus::query`] and friends return `serde_json::Value`.
pub use serde_json;

/// Re-exported for [`ExporterProcess::signal`] and [`send_signal`].
pub use rustix::process::Signal;

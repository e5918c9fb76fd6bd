//! # oxmon-core
//!
//! What every oxmon exporter shares: the collector model, the exposition
//! encoders, the HTTP server with TLS and basic auth from an exporter-toolkit
//! web config, the common flags, logging and self-metrics.
//!
//! ## Writing an exporter
//!
//! A binary parses its flags (flattening [`CommonArgs`]), builds a
//! [`Registry`] of [`Collector`]s and hands both to [`run`]:
//!
//! ```no_run
//! use clap::Parser;
//! use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
//! use oxmon_core::{gauge, Exporter, MetricFamily, Registry};
//!
//! struct Uptime;
//! impl SyncCollector for Uptime {
//!     fn name(&self) -> &'static str { "uptime" }
//!     fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
//!         let text = std::fs::read_to_string("/proc/uptime")?;
//!         let secs: f64 = text.split_whitespace().next().ok_or("empty")?.parse()?;
//!         out.push(gauge("demo_uptime_seconds", "Uptime.", secs));
//!         Ok(())
//!     }
//! }
//!
//! #[derive(Parser)]
//! #[command(version)]
//! struct Cli {
//!     #[command(flatten)]
//!     common: oxmon_core::CommonArgs,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let cli = Cli::parse();
//!     oxmon_core::run(&cli.common, 9999, || {
//!         let mut registry = Registry::new("demo");
//!         registry.register(sync_collector(Uptime));
//!         Ok(Exporter { name: "demo", description: "Demo exporter.", registry, routes: vec![] })
//!     })
//! }
//! ```
//!
//! ## Modules
//! - [`metrics`]: owned metric families.
//! - [`collector`]: the `Collector` trait and the registry that runs a scrape.
//! - [`blocking`]: reads that can block, run off-thread under the deadline
//!   without piling up threads (`Lane`, `BlockingCollector`).
//! - [`collector_flags`]: `--collector.<name>`, `--no-collector.<name>`,
//!   `--collector.disable-defaults`.
//! - [`encode`]: 0.0.4 and OpenMetrics text, content negotiation.
//! - [`number`]: reading the integers and floats of kernel and server text.
//! - [`hash`]: a fast hasher for the exporters' own lookup tables.
//! - [`expo`]: the exposition-format parser (0.0.4 and OpenMetrics) and its
//!   conversion to metric families.
//! - [`target_guard`]: the allow-list and per-target cache behind
//!   multi-target endpoints.
//! - [`server`]: HTTP serving, routes, limits, shutdown.
//! - [`web_config`]: TLS and basic auth from `--web.config.file`.
//! - [`flags`], [`logging`], [`process`]: flags, logs (and `FailureLog`),
//!   self-metrics.
//! - [`sync`]: locks that survive a panicking holder.

pub mod blocking;
pub mod collector;
pub mod collector_flags;
pub mod encode;
pub mod expo;
pub mod flags;
pub mod hash;
pub mod logging;
pub mod metrics;
pub mod number;
pub mod process;
pub mod server;
pub mod sync;
pub mod target_guard;
pub mod tls_client;
pub mod web_config;

pub use collector::{Collector, Registry, ScrapeContext};
pub use flags::{parse_duration, CommonArgs};
pub use metrics::{counter, gauge, MetricFamily, MetricType};
pub use number::parse_f64;
pub use server::{Exporter, HttpError, Route, RouteRequest};

use std::process::ExitCode;

/// The error type of an exporter's build step.
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// How long the runtime waits at exit for blocking threads still running
/// (a read stuck in the kernel never returns; the process exits anyway).
const BLOCKING_EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs an exporter: installs logging and the rustls crypto provider, starts
/// the runtime (one thread unless `--runtime.worker-threads` says more), calls `build` inside it, binds the listen
/// addresses (default `:default_port`) and serves until SIGTERM/SIGINT.
/// SIGHUP does not end the process: it re-reads the web config and runs the
/// registry's reload hooks ([`Registry::on_reload`]).
/// Start-up errors are logged and give exit status 1. At exit, blocking
/// threads still running (a hung read, see [`blocking`]) are waited for
/// one second at most.
pub fn run(
    common: &CommonArgs,
    default_port: u16,
    build: impl FnOnce() -> Result<Exporter, BuildError>,
) -> ExitCode {
    // One arena per worker thread; helper threads share them.
    oxmon_sys::tune_allocator(usize::from(common.worker_threads));
    logging::init(&common.log);
    let _ = rustls::crypto::ring::default_provider().install_default();
    // An exporter mostly waits (on sockets, or on a few file reads per
    // scrape): one thread is plenty, and each extra worker thread costs its
    // own malloc arena (~1 MB resident). Blocking work (statfs on network
    // mounts, bcrypt) goes to tokio's blocking pool either way.
    let mut builder = if common.worker_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(usize::from(common.worker_threads));
        b
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(err = %e, "starting the runtime failed");
            return ExitCode::FAILURE;
        }
    };
    let status = rt.block_on(async {
        let exporter = match build() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(err = %e, "start-up failed");
                return ExitCode::FAILURE;
            }
        };
        let name = exporter.name;
        let svc = match server::Service::new(exporter, common.web.clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(err = %e, "loading the web config failed");
                return ExitCode::FAILURE;
            }
        };
        server::reload_on_hangup(svc.clone());
        let listeners = match server::bind(&common.web, default_port).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(err = %e, "binding failed");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            name,
            version = process::VERSION,
            revision = process::REVISION,
            "starting"
        );
        server::serve(svc, listeners, server::shutdown_signal()).await;
        ExitCode::SUCCESS
    });
    rt.shutdown_timeout(BLOCKING_EXIT_GRACE);
    status
}

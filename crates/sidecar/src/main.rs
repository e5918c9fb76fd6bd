//! # oxmon-sidecar
//!
//! A Prometheus exporter that runs beside an application: StatsD
//! (statsd_exporter's protocol, mapping file and flags) into one live store,
//! served on `:9102` with oxmon-core's server (TLS, basic auth, self-metrics,
//! namespace `app`). See `crates/sidecar/README.md`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use oxmon_core::collector::sync_collector;
use oxmon_core::{Exporter, Registry};
use oxmon_sidecar::statsd::{self, stats::StatsCollector, StatsdArgs};
use oxmon_sidecar::store::{Store, StoreArgs, StoreCollector};
use oxmon_sidecar::tap::{self, TapArgs};

/// Default metrics port, statsd_exporter's.
const DEFAULT_PORT: u16 = 9102;

/// Prometheus exporter beside an application: StatsD and more, one scrape.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: oxmon_core::CommonArgs,

    #[command(flatten)]
    statsd: StatsdArgs,

    #[command(flatten)]
    store: StoreArgs,

    #[command(flatten)]
    tap: TapArgs,

    /// Check configuration and exit.
    #[arg(long = "check-config")]
    check_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.check_config {
        return match cli.statsd.load_mapper() {
            Ok(m) => {
                println!("configuration OK: {} StatsD mappings", m.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    oxmon_core::run(&cli.common, DEFAULT_PORT, move || {
        let store = Arc::new(Store::new(cli.store.limits()));
        let stats = statsd::start(&cli.statsd, store.clone())?;
        if let Some(section) = cli.tap.config()? {
            // The tap runs on after its handle is dropped.
            tap::start(&section, store.clone())?;
        }
        let mut registry = Registry::new("app");
        registry.register(sync_collector(StoreCollector(store)));
        registry.register(sync_collector(StatsCollector(stats)));
        Ok(Exporter {
            name: "oxmon-sidecar",
            description: "Prometheus exporter beside an application: StatsD into one live store.",
            registry,
            routes: vec![],
        })
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn flags_of_all_sources_fit_together() {
        super::Cli::command().debug_assert();
    }
}

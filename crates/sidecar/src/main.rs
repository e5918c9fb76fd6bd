//! # oxmon-sidecar
//!
//! A Prometheus exporter beside an application: its health endpoint, its
//! own /metrics (relayed) and StatsD (statsd_exporter's protocol, mapping
//! file and flags) in one live store, served on `:9102` with oxmon-core's
//! server (TLS, basic auth, self-metrics, namespace `app`). One YAML file
//! (`--config.file`) or flags configure it; SIGHUP and `POST /-/reload`
//! reload it. See `crates/sidecar/README.md`.

use std::process::ExitCode;

use clap::Parser;
use oxmon_core::collector::sync_collector;
use oxmon_core::{Exporter, Registry};
use oxmon_sidecar::config::{Config, ConfigArgs, Flags};
use oxmon_sidecar::health::HealthArgs;
use oxmon_sidecar::logs::LogsArgs;
use oxmon_sidecar::relay::RelayArgs;
use oxmon_sidecar::reload::{Reloader, Sources};
use oxmon_sidecar::statsd::{stats::StatsCollector, StatsdArgs};
use oxmon_sidecar::store::{StoreArgs, StoreCollector};
use oxmon_sidecar::tap::TapArgs;

/// Default metrics port, statsd_exporter's.
const DEFAULT_PORT: u16 = 9102;

/// Prometheus exporter beside an application: health, relay, StatsD, one
/// scrape.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: oxmon_core::CommonArgs,

    #[command(flatten)]
    config: ConfigArgs,

    #[command(flatten)]
    health: HealthArgs,

    #[command(flatten)]
    relay: RelayArgs,

    #[command(flatten)]
    statsd: StatsdArgs,

    #[command(flatten)]
    logs: LogsArgs,

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
    let flags = Flags {
        health: cli.health,
        relay: cli.relay,
        statsd_mapping: cli.statsd.mapping_config.clone(),
        store: cli.store,
        logs: cli.logs,
        tap: cli.tap,
    };
    let file = cli.config.file;
    if cli.check_config {
        return match Config::load(file.as_deref(), &flags) {
            Ok(c) => {
                println!(
                    "configuration OK: {} health targets, {} relay targets, {} StatsD mappings",
                    c.health.targets.len(),
                    c.relay.targets.len(),
                    c.statsd.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    oxmon_core::run(&cli.common, DEFAULT_PORT, move || {
        let config = Config::load(file.as_deref(), &flags)?;
        let sources = Sources::start(config, &cli.statsd)?;
        let mut registry = Registry::new("app");
        registry.register(sync_collector(StoreCollector(sources.store.clone())));
        if let Some(statsd) = &sources.statsd {
            registry.register(sync_collector(StatsCollector(statsd.stats().clone())));
        }
        registry.register(sources.relay.collector());
        let reloader = Reloader::new(file, flags, sources);
        registry.register(sync_collector(reloader.collector()));
        let on_hangup = reloader.clone();
        registry.on_reload("config", move || Ok(on_hangup.reload()?));
        Ok(Exporter {
            name: "oxmon-sidecar",
            description: "Prometheus exporter beside an application: health, relay and StatsD into one scrape.",
            registry,
            routes: vec![(
                "/-/reload".into(),
                reloader.route(),
                "POST: reload the config file".into(),
            )],
        })
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_are_consistent_and_repeatable() {
        Cli::command().debug_assert();
        let cli = Cli::parse_from([
            "oxmon-sidecar",
            "--health.url=http://a/health",
            "--health.url=http://b/health",
            "--health.interval=30s",
            "--relay.url=http://a/metrics",
            "--config.file=/etc/sidecar.yml",
        ]);
        assert_eq!(cli.health.urls.len(), 2);
        assert_eq!(
            cli.health.interval,
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(cli.health.timeout, None);
        assert_eq!(cli.relay.urls, ["http://a/metrics"]);
        assert_eq!(
            cli.config.file.as_deref(),
            Some(std::path::Path::new("/etc/sidecar.yml"))
        );
    }
}

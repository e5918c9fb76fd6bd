//! oxmon-redis: a drop-in replacement for redis_exporter.
//!
//! `/metrics` scrapes `--redis.addr`; `/scrape?target=` scrapes an
//! allow-listed target (see the crate README).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use oxmon_core::{BuildError, Exporter, Registry};

mod address;
mod allow_list;
mod cli;
mod config;
mod credentials;
mod info;
mod keygroups;
mod keys;
mod keyspace;
mod names;
mod reply;
mod scrape_route;
mod streams;
mod target;

use cli::Cli;
use config::Config;
use scrape_route::{ScrapeRoute, TargetCache};
use target::TargetCollector;

const DEFAULT_PORT: u16 = 9121;

/// `/scrape` targets kept with their connections.
const MAX_SCRAPE_TARGETS: usize = 1000;

fn build(cli: &Cli) -> Result<Exporter, BuildError> {
    let config = Config::from_cli(cli)?;
    tracing::info!(
        target = config
            .main
            .as_ref()
            .map_or("none (only /scrape)", |t| t.key()),
        allowed_targets = if config.allow.is_empty() {
            "only --redis.addr"
        } else {
            "allow-list"
        },
        password_file_entries = config.credentials.password_file_entries(),
        "configured"
    );

    let mut registry = Registry::new(config.namespace);
    if let Some(target) = &config.main {
        registry.register(Arc::new(TargetCollector {
            target: Arc::clone(target),
            opts: Arc::clone(&config.opts),
        }));
    }
    let route = ScrapeRoute {
        opts: config.opts,
        main: config.main,
        allow: config.allow,
        credentials: config.credentials,
        cache: TargetCache::new(MAX_SCRAPE_TARGETS),
    };
    Ok(Exporter {
        name: "oxmon-redis",
        description: "Prometheus exporter for Redis (redis_exporter compatible).",
        registry,
        routes: vec![(
            "/scrape".to_string(),
            Arc::new(route),
            "multi-target: /scrape?target=redis://host:port (allow-listed targets only)"
                .to_string(),
        )],
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::go_style_args(std::env::args_os()));
    let common = cli::common_args(&cli);
    oxmon_core::run(&common, DEFAULT_PORT, move || build(&cli))
}

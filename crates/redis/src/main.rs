//! oxmon-redis: a drop-in replacement for redis_exporter.
//!
//! `/metrics` scrapes `--redis.addr`; `/scrape?target=` scrapes an
//! allow-listed target (see the crate README).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use oxmon_core::{BuildError, Exporter, Registry};

mod address;
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
use scrape_route::ScrapeRoute;
use target::TargetCollector;

const DEFAULT_PORT: u16 = 9121;

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
    let route = ScrapeRoute::new(config.opts, config.main, config.allow, config.credentials);
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

//! oxmon-node: a drop-in node_exporter for Linux. Flag parsing and wiring;
//! the collectors are listed in `collectors/mod.rs`.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};
use oxmon_core::{Exporter, Registry};

mod collectors;
mod device_filter;
mod dir_listing;
mod field_names;
mod file_cache;
mod go_json;
mod malformed;
mod netlink;
mod paths;
#[cfg(test)]
mod procfs_core_comparison;
mod system_bus;

/// Host metrics with node_exporter's metric names.
#[derive(Parser, Debug)]
#[command(name = "oxmon-node", version, about)]
struct Cli {
    #[command(flatten)]
    common: oxmon_core::CommonArgs,

    #[command(flatten)]
    paths: paths::Paths,

    #[command(flatten)]
    options: collectors::CollectorOptions,
}

fn main() -> ExitCode {
    let selection_flags = collectors::selection_flags();
    let matches = selection_flags.augment(Cli::command()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let selection = selection_flags.resolve(&matches);
    oxmon_core::run(&cli.common, 9100, move || {
        for name in &selection.not_implemented {
            tracing::warn!(
                collector = name,
                "node_exporter collector not implemented by oxmon-node; flag ignored"
            );
        }
        let ctx = collectors::Ctx {
            paths: &cli.paths,
            options: &cli.options,
        };
        let mut registry = Registry::new("node");
        for entry in collectors::TABLE
            .iter()
            .filter(|e| selection.is_enabled(e.name))
        {
            let c = (entry.build)(&ctx).map_err(|e| format!("collector {}: {e}", entry.name))?;
            tracing::info!(collector = entry.name, "enabled");
            registry.register(c);
        }
        Ok(Exporter {
            name: "oxmon-node",
            description: "Host metrics with node_exporter's names.",
            registry,
            routes: vec![],
        })
    })
}

//! oxmon-postgres: a drop-in replacement for postgres_exporter.
//!
//! Flag parsing and wiring only; see the crate README for flags, metrics
//! and the `/probe` endpoint.

mod collectors;
mod conn;
mod dsn;
mod probe;
mod queries;
mod reloadable;
mod target;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser};
use oxmon_core::collector_flags::Selection;
use oxmon_core::{BuildError, CommonArgs, Exporter};

use collectors::Monitored;
use probe::{ProbeConfig, ProbeRoute};
use reloadable::{reload_on_hangup, Reloadable};
use target::Target;

const DEFAULT_PORT: u16 = 9187;

/// PostgreSQL metrics for Prometheus, compatible with postgres_exporter.
#[derive(Parser)]
#[command(version, about, name = "oxmon-postgres")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    sources: dsn::SourceArgs,
    /// Auth modules and the /probe allow-list (postgres_exporter.yml format).
    #[arg(long = "config.file", env = "PG_EXPORTER_CONFIG_FILE")]
    probe_config_file: Option<PathBuf>,
    /// Custom queries file (postgres_exporter's queries.yaml format).
    #[arg(long = "extend.query-path", env = "PG_EXPORTER_EXTEND_QUERY_PATH")]
    query_path: Option<PathBuf>,
    #[command(flatten)]
    collectors: collectors::CollectorArgs,
    #[command(flatten)]
    targets: target::ConnectionArgs,
    #[command(flatten)]
    probe_connections: oxmon_core::target_guard::TargetCacheArgs,
}

fn main() -> ExitCode {
    let flags = collectors::flags();
    let matches = flags.augment(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let selection = flags.resolve(&matches);
    let common = cli.common.clone();
    oxmon_core::run(&common, DEFAULT_PORT, move || build(cli, &selection))
}

fn build(cli: Cli, selection: &Selection) -> Result<Exporter, BuildError> {
    let dsns = cli.sources.dsns()?;
    let queries = match &cli.query_path {
        Some(p) => {
            let q = queries::load(p)?;
            tracing::info!(file = %p.display(), queries = q.queries.len(), "loaded custom queries");
            Some(Arc::new(Reloadable::new(q)))
        }
        None => None,
    };
    let mut config = cli
        .collectors
        .config(selection, queries.clone(), dsns.len() > 1);
    let names: Vec<&str> = config.enabled.iter().map(|e| e.name).collect();
    tracing::info!(collectors = ?names, "enabled collectors");
    let target_opts = Arc::new(cli.targets.options());
    let mut targets = Vec::new();
    for d in dsns {
        tracing::info!(target_dsn = %d.redacted(), "monitoring");
        let t = Target::new(d, None, target_opts.clone())?;
        targets.push(Arc::new(Monitored::new(t)));
    }
    if targets.is_empty() {
        tracing::info!("no DATA_SOURCE_NAME or DATA_SOURCE_URI: /metrics serves only the exporter's own metrics; use /probe");
    }
    let mut registry = collectors::registry(&config, &targets);
    let probe_config = Arc::new(Reloadable::new(match &cli.probe_config_file {
        Some(p) => ProbeConfig::load(p)?,
        None => ProbeConfig::default(),
    }));
    if let (Some(q), Some(path)) = (&queries, cli.query_path) {
        reload_on_hangup(&mut registry, "queries file", q, path, queries::load);
    }
    if let Some(path) = cli.probe_config_file {
        reload_on_hangup(
            &mut registry,
            "config file",
            &probe_config,
            path,
            ProbeConfig::load,
        );
    }
    conn::stop_queries_on_shutdown();
    if !probe_config.current().has_allow_list() {
        tracing::info!(
            "/probe refuses every target until probe.allowed_targets is set in --config.file"
        );
    }
    // A probe scrapes one server: pg_up has no server label there.
    config.up.server_label = false;
    Ok(Exporter {
        name: "oxmon-postgres",
        description: "PostgreSQL metrics for Prometheus, compatible with postgres_exporter.",
        registry,
        routes: vec![(
            "/probe".to_string(),
            Arc::new(ProbeRoute::new(
                probe_config,
                target_opts,
                config,
                &cli.probe_connections,
            )),
            "?target=HOST:PORT/DB&auth_module=NAME scrapes an allowed server with a named auth module".to_string(),
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        collectors::flags().augment(Cli::command()).debug_assert();
    }
}

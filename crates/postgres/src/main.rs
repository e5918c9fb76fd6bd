//! oxmon-postgres: a drop-in replacement for postgres_exporter.
//!
//! See the crate README for flags, metrics and the `/probe` endpoint.

mod collectors;
mod conn;
mod dsn;
mod probe;
mod queries;
mod target;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser};
use oxmon_core::{parse_duration, Exporter};

use collectors::{Monitored, ALL};
use conn::SessionSettings;
use dsn::{read_secret_file, Secret, Sources};
use target::Target;

const DEFAULT_PORT: u16 = 9187;

/// PostgreSQL metrics for Prometheus, compatible with postgres_exporter.
#[derive(Parser)]
#[command(version, about, name = "oxmon-postgres")]
struct Cli {
    #[command(flatten)]
    common: oxmon_core::CommonArgs,

    /// Connection string(s): postgresql:// URIs or key=value, comma separated.
    #[arg(
        long = "data-source-name",
        env = "DATA_SOURCE_NAME",
        hide_env_values = true
    )]
    data_source_name: Option<String>,
    /// File holding DATA_SOURCE_NAME.
    #[arg(
        long = "data-source-name-file",
        env = "DATA_SOURCE_NAME_FILE",
        hide_env_values = true
    )]
    data_source_name_file: Option<PathBuf>,
    /// host:port/db?params (comma separated), used with the user and password below.
    #[arg(
        long = "data-source-uri",
        env = "DATA_SOURCE_URI",
        hide_env_values = true
    )]
    data_source_uri: Option<String>,
    /// File holding DATA_SOURCE_URI.
    #[arg(
        long = "data-source-uri-file",
        env = "DATA_SOURCE_URI_FILE",
        hide_env_values = true
    )]
    data_source_uri_file: Option<PathBuf>,
    /// User for DATA_SOURCE_URI.
    #[arg(
        long = "data-source-user",
        env = "DATA_SOURCE_USER",
        hide_env_values = true
    )]
    data_source_user: Option<String>,
    /// File holding DATA_SOURCE_USER.
    #[arg(
        long = "data-source-user-file",
        env = "DATA_SOURCE_USER_FILE",
        hide_env_values = true
    )]
    data_source_user_file: Option<PathBuf>,
    /// Password for DATA_SOURCE_URI (prefer the file or the environment: flags show in ps).
    #[arg(
        long = "data-source-pass",
        env = "DATA_SOURCE_PASS",
        hide_env_values = true
    )]
    data_source_pass: Option<String>,
    /// File holding DATA_SOURCE_PASS.
    #[arg(
        long = "data-source-pass-file",
        env = "DATA_SOURCE_PASS_FILE",
        hide_env_values = true
    )]
    data_source_pass_file: Option<PathBuf>,

    /// Auth modules and the /probe allow-list (postgres_exporter.yml format).
    #[arg(long = "config.file", env = "PG_EXPORTER_CONFIG_FILE")]
    probe_config_file: Option<PathBuf>,
    /// Custom queries file (postgres_exporter's queries.yaml format).
    #[arg(long = "extend.query-path", env = "PG_EXPORTER_EXTEND_QUERY_PATH")]
    query_path: Option<PathBuf>,
    /// Only pg_up, the exporter metrics and custom queries.
    #[arg(
        long = "disable-default-metrics",
        env = "PG_EXPORTER_DISABLE_DEFAULT_METRICS"
    )]
    disable_default_metrics: bool,
    /// Do not collect pg_settings.
    #[arg(
        long = "disable-settings-metrics",
        env = "PG_EXPORTER_DISABLE_SETTINGS_METRICS"
    )]
    disable_settings_metrics: bool,
    /// Run custom queries without `master: true` in every database too.
    #[arg(
        long = "auto-discover-databases",
        env = "PG_EXPORTER_AUTO_DISCOVER_DATABASES"
    )]
    auto_discover_databases: bool,
    /// Databases the per-database collectors skip (comma separated).
    #[arg(
        long = "exclude-databases",
        env = "PG_EXPORTER_EXCLUDE_DATABASES",
        value_delimiter = ','
    )]
    exclude_databases: Vec<String>,
    /// Only these databases for the per-database collectors (comma separated; empty: all).
    #[arg(
        long = "include-databases",
        env = "PG_EXPORTER_INCLUDE_DATABASES",
        value_delimiter = ','
    )]
    include_databases: Vec<String>,
    /// stat_statements: number of statements exposed (the top by total time).
    #[arg(long = "collector.stat_statements.limit", default_value_t = 100)]
    stat_statements_limit: u32,
    /// stat_statements: also expose the query text (pg_stat_statements_query_id).
    #[arg(long = "collector.stat_statements.include_query")]
    stat_statements_include_query: bool,
    /// stat_statements: longest query text exposed.
    #[arg(long = "collector.stat_statements.query_length", default_value_t = 120)]
    stat_statements_query_length: u32,
    /// Longest reuse of the pg_settings result (it is re-read at once after a reload or restart).
    #[arg(long = "collector.settings.max-age", default_value = "5m", value_parser = parse_duration)]
    settings_max_age: Duration,
    /// statement_timeout for the exporter's sessions (a safety net; queries are also cancelled at the scrape deadline).
    #[arg(long = "pg.statement-timeout", default_value = "15s", value_parser = parse_duration)]
    statement_timeout: Duration,
    /// lock_timeout for the exporter's sessions, so a catalog lock never stalls a scrape.
    #[arg(long = "pg.lock-timeout", default_value = "1s", value_parser = parse_duration)]
    lock_timeout: Duration,
}

fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for collectors::Entry {
        name,
        enabled_by_default: on,
        help,
        ..
    } in ALL
    {
        let yes: &'static str = Box::leak(format!("collector.{name}").into_boxed_str());
        let no: &'static str = Box::leak(format!("no-collector.{name}").into_boxed_str());
        let default = if *on { "enabled" } else { "disabled" };
        cmd = cmd
            .arg(
                Arg::new(yes)
                    .long(yes)
                    .action(ArgAction::SetTrue)
                    .help(format!(
                        "Enable the {name} collector: {help} (default: {default})"
                    )),
            )
            .arg(
                Arg::new(no)
                    .long(no)
                    .action(ArgAction::SetTrue)
                    .help(format!("Disable the {name} collector")),
            );
    }
    cmd
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let mut enabled = Vec::new();
    for entry in ALL {
        let yes = matches.get_flag(&format!("collector.{}", entry.name));
        let no = matches.get_flag(&format!("no-collector.{}", entry.name));
        let on = yes || (entry.enabled_by_default && !no);
        let allowed = !(cli.disable_default_metrics
            || cli.disable_settings_metrics && entry.name == "settings");
        if on && allowed {
            enabled.push(entry);
        }
    }
    let common = cli.common.clone();
    oxmon_core::run(&common, DEFAULT_PORT, move || build(cli, enabled))
}

fn pick(
    value: Option<String>,
    file: Option<PathBuf>,
    what: &str,
) -> Result<Option<String>, String> {
    match (value, file) {
        (Some(v), _) if !v.is_empty() => Ok(Some(v)),
        (_, Some(f)) => read_secret_file(&f)
            .map(Some)
            .map_err(|e| format!("{what}: {e}")),
        _ => Ok(None),
    }
}

fn build(
    cli: Cli,
    enabled: Vec<&'static collectors::Entry>,
) -> Result<Exporter, oxmon_core::BuildError> {
    let sources = Sources {
        name: pick(
            cli.data_source_name,
            cli.data_source_name_file,
            "DATA_SOURCE_NAME_FILE",
        )?
        .map(Secret::new),
        uri: pick(
            cli.data_source_uri,
            cli.data_source_uri_file,
            "DATA_SOURCE_URI_FILE",
        )?,
        user: pick(
            cli.data_source_user,
            cli.data_source_user_file,
            "DATA_SOURCE_USER_FILE",
        )?,
        pass: pick(
            cli.data_source_pass,
            cli.data_source_pass_file,
            "DATA_SOURCE_PASS_FILE",
        )?
        .map(Secret::new),
    };
    let dsns = sources.dsns()?;
    let queries = match &cli.query_path {
        Some(p) => {
            let q = queries::load(p)?;
            tracing::info!(file = %p.display(), queries = q.queries.len(), "loaded custom queries");
            Some(Arc::new(q))
        }
        None => None,
    };
    let target_opts = Arc::new(target::Options {
        session: SessionSettings {
            statement_timeout: cli.statement_timeout,
            lock_timeout: cli.lock_timeout,
        },
        include_databases: cli
            .include_databases
            .into_iter()
            .filter(|d| !d.is_empty())
            .collect(),
        exclude_databases: cli
            .exclude_databases
            .into_iter()
            .filter(|d| !d.is_empty())
            .collect(),
    });
    let mut config = collectors::Config {
        enabled,
        up: collectors::up::Up {
            server_label: dsns.len() > 1,
            queries_file: queries.clone(),
        },
        settings: collectors::settings::Settings {
            max_age: cli.settings_max_age,
        },
        stat_statements: collectors::stat_statements::StatStatements::new(
            cli.stat_statements_limit,
            cli.stat_statements_query_length,
            cli.stat_statements_include_query,
        ),
        custom_queries: queries.map(|queries| collectors::custom_queries::CustomQueries {
            queries,
            auto_discover_databases: cli.auto_discover_databases,
        }),
    };
    let mut targets = Vec::new();
    for d in dsns {
        tracing::info!(target_dsn = %d.redacted(), "monitoring");
        let t = Target::new(d, None, target_opts.clone())?;
        targets.push(Arc::new(Monitored::new(t)));
    }
    if targets.is_empty() {
        tracing::info!("no DATA_SOURCE_NAME or DATA_SOURCE_URI: /metrics serves only the exporter's own metrics; use /probe");
    }
    let registry = collectors::registry(&config, &targets);
    tracing::info!(collectors = ?registry.names(), "enabled collectors");
    let probe_config = match &cli.probe_config_file {
        Some(p) => probe::ProbeConfig::load(p)?,
        None => probe::ProbeConfig::default(),
    };
    if !probe_config.has_allow_list() {
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
            Arc::new(probe::ProbeRoute::new(probe_config, target_opts, config)),
            "?target=HOST:PORT/DB&auth_module=NAME scrapes an allowed server with a named auth module".to_string(),
        )],
    })
}

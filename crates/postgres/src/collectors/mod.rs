//! The collectors, named like postgres_exporter's (`--collector.<name>` /
//! `--no-collector.<name>`), and the runner that runs each for every target.
//!
//! Most collectors are a query and a metric table (see [`table`]); the
//! rest are code: `up` (always on), `settings` (cached), `stat_statements`
//! (SQL built from flags) and the custom queries of `--extend.query-path`.
//! Every family a target produces carries a `server="host:port"` label,
//! as postgres_exporter 0.11 does for all of its default metrics.
//!
//! A collector keeps what it remembers between scrapes per target (its
//! `State`, handed to it by the runner); what the collectors of one target
//! share lives in [`Monitored`].

use std::sync::Arc;
use std::time::Duration;

use oxmon_core::collector::{BoxFuture, CollectResult, Collector};
use oxmon_core::collector_flags::{CollectorFlags, Selection};
use oxmon_core::{parse_duration, MetricFamily, Registry, ScrapeContext};

use crate::queries::UserQueries;
use crate::reloadable::Reloadable;
use crate::target::Target;

pub mod custom_queries;
pub mod database;
pub mod instance;
pub mod locks;
pub mod postmaster;
pub mod replication;
pub mod replication_slot;
pub mod roles;
pub mod settings;
pub mod stat_activity;
pub mod stat_archiver;
pub mod stat_bgwriter;
pub mod stat_database;
pub mod stat_progress_vacuum;
pub mod stat_replication;
pub mod stat_statements;
pub mod table;
pub mod up;
pub mod user_tables;
pub mod wal;

use table::{QueryTable, Source};

/// A switchable collector: its flag name, default and help, and what it is.
pub struct Entry {
    /// `--collector.<name>`, and the `collector` label.
    pub name: &'static str,
    /// Whether it runs without a flag.
    pub enabled_by_default: bool,
    /// One line for `--help`.
    pub help: &'static str,
    how: How,
}

enum How {
    Table(&'static Source),
    Settings,
    StatStatements,
}

const fn table(
    name: &'static str,
    enabled_by_default: bool,
    help: &'static str,
    source: &'static Source,
) -> Entry {
    Entry {
        name,
        enabled_by_default,
        help,
        how: How::Table(source),
    }
}

/// Every switchable collector.
pub const ALL: &[Entry] = &[
    table(
        "database",
        true,
        "database sizes and connection limits (pg_database)",
        &database::SOURCE,
    ),
    table(
        "locks",
        true,
        "locks by database and mode (pg_locks)",
        &locks::SOURCE,
    ),
    table(
        "replication",
        true,
        "replica state and replay lag",
        &replication::SOURCE,
    ),
    table(
        "replication_slot",
        true,
        "replication slots (pg_replication_slots)",
        &replication_slot::SOURCE,
    ),
    table(
        "roles",
        true,
        "role connection limits (pg_roles)",
        &roles::SOURCE,
    ),
    Entry {
        name: "settings",
        enabled_by_default: true,
        help: "server settings (pg_settings)",
        how: How::Settings,
    },
    table(
        "stat_activity",
        true,
        "connections by database and state (pg_stat_activity)",
        &stat_activity::SOURCE,
    ),
    table(
        "stat_archiver",
        true,
        "WAL archiving (pg_stat_archiver)",
        &stat_archiver::SOURCE,
    ),
    table(
        "stat_bgwriter",
        true,
        "background writer (pg_stat_bgwriter)",
        &stat_bgwriter::BGWRITER,
    ),
    table(
        "stat_checkpointer",
        true,
        "checkpointer, PostgreSQL 17+ (pg_stat_checkpointer)",
        &stat_bgwriter::CHECKPOINTER,
    ),
    table(
        "stat_database",
        true,
        "per-database statistics (pg_stat_database, pg_stat_database_conflicts)",
        &stat_database::SOURCE,
    ),
    table(
        "stat_progress_vacuum",
        true,
        "running vacuums (pg_stat_progress_vacuum)",
        &stat_progress_vacuum::SOURCE,
    ),
    table(
        "stat_replication",
        true,
        "WAL senders (pg_stat_replication)",
        &stat_replication::SOURCE,
    ),
    table(
        "stat_user_tables",
        true,
        "table statistics in every database (pg_stat_user_tables)",
        &user_tables::STAT,
    ),
    table(
        "statio_user_tables",
        true,
        "table I/O in every database (pg_statio_user_tables)",
        &user_tables::STATIO,
    ),
    table(
        "wal",
        true,
        "WAL segments and position (pg_ls_waldir)",
        &wal::SOURCE,
    ),
    table(
        "postmaster",
        true,
        "postmaster start time",
        &postmaster::SOURCE,
    ),
    Entry {
        name: "stat_statements",
        enabled_by_default: false,
        help: "top statements by total time (pg_stat_statements; needs the extension)",
        how: How::StatStatements,
    },
];

/// The collector selection flags: `--collector.<name>`,
/// `--no-collector.<name>` and `--collector.disable-defaults`, with
/// node_exporter's precedence (see `oxmon_core::collector_flags`).
pub fn flags() -> CollectorFlags {
    ALL.iter().fold(
        CollectorFlags::new(ALL.iter().map(|e| (e.name, e.enabled_by_default))),
        |flags, e| flags.describe(e.name, e.help),
    )
}

/// The collectors' own flags.
#[derive(clap::Args)]
pub struct CollectorArgs {
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
}

impl CollectorArgs {
    /// The registry configuration: the selected collectors (none with
    /// `--disable-default-metrics`, no `settings` with
    /// `--disable-settings-metrics`), custom queries when a file was
    /// loaded, and a `server` label on `pg_up` for several targets.
    pub fn config(
        self,
        selection: &Selection,
        queries_file: Option<Arc<Reloadable<UserQueries>>>,
        several_targets: bool,
    ) -> Config {
        let enabled = if self.disable_default_metrics {
            Vec::new()
        } else {
            ALL.iter()
                .filter(|e| selection.is_enabled(e.name))
                .filter(|e| !(self.disable_settings_metrics && matches!(e.how, How::Settings)))
                .collect()
        };
        Config {
            enabled,
            up: up::Up {
                server_label: several_targets,
                queries_file: queries_file.clone(),
            },
            settings: settings::Settings {
                max_age: self.settings_max_age,
            },
            stat_statements: stat_statements::StatStatements::new(
                self.stat_statements_limit,
                self.stat_statements_query_length,
                self.stat_statements_include_query,
            ),
            custom_queries: queries_file.map(|queries| custom_queries::CustomQueries {
                queries,
                auto_discover_databases: self.auto_discover_databases,
            }),
        }
    }
}

/// What the registries are built from: the collectors that are on and
/// the options of those that have any.
#[derive(Clone)]
pub struct Config {
    /// The switchable collectors that run.
    pub enabled: Vec<&'static Entry>,
    /// The `up` collector's options.
    pub up: up::Up,
    /// The `settings` collector's options.
    pub settings: settings::Settings,
    /// The `stat_statements` collector's options.
    pub stat_statements: stat_statements::StatStatements,
    /// Custom queries, when a file was given.
    pub custom_queries: Option<custom_queries::CustomQueries>,
}

/// Builds the registry for a set of targets (the DSNs of `/metrics`, or
/// one `/probe` target); without targets it has no collectors.
pub fn registry(config: &Config, targets: &[Arc<Monitored>]) -> Registry {
    let mut r = Registry::new("pg");
    if targets.is_empty() {
        return r;
    }
    r.register(every_target("up", config.up.clone(), targets));
    for entry in &config.enabled {
        r.register(match entry.how {
            How::Table(source) => every_target(entry.name, QueryTable(source), targets),
            How::Settings => every_target(entry.name, config.settings.clone(), targets),
            How::StatStatements => {
                every_target(entry.name, config.stat_statements.clone(), targets)
            }
        });
    }
    if let Some(q) = &config.custom_queries {
        r.register(every_target("queries", q.clone(), targets));
    }
    r
}

/// A target and what its collectors share: the instance row of the
/// scrape in progress and the scrape bookkeeping `up` reports.
pub struct Monitored {
    /// Connections and the database list.
    pub target: Target,
    instance: instance::PerScrape,
    log: up::ScrapeLog,
}

impl Monitored {
    /// Wraps a target.
    pub fn new(target: Target) -> Monitored {
        Monitored {
            target,
            instance: instance::PerScrape::default(),
            log: up::ScrapeLog::default(),
        }
    }
}

/// A collector run for each target of a registry.
pub trait TargetCollector: Send + Sync + 'static {
    /// What it keeps per target between scrapes.
    type State: Default + Send + Sync + 'static;

    /// Collects one target.
    fn collect<'a>(
        &'a self,
        m: &'a Monitored,
        state: &'a Self::State,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult>;

    /// Whether its failures count in `pg_exporter_last_scrape_error`.
    fn counts_in_scrape_error(&self) -> bool {
        true
    }
}

struct EveryTarget<C: TargetCollector> {
    name: &'static str,
    collector: C,
    targets: Vec<(Arc<Monitored>, C::State)>,
}

fn every_target<C: TargetCollector>(
    name: &'static str,
    collector: C,
    targets: &[Arc<Monitored>],
) -> Arc<dyn Collector> {
    Arc::new(EveryTarget {
        name,
        collector,
        targets: targets
            .iter()
            .map(|m| (m.clone(), C::State::default()))
            .collect(),
    })
}

impl<C: TargetCollector> Collector for EveryTarget<C> {
    fn name(&self) -> &str {
        self.name
    }

    /// Runs every target concurrently; one failing target fails the
    /// collector without hiding the others' families.
    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let runs = self.targets.iter().map(|(m, state)| async move {
                let mut fams = Vec::new();
                let r = self.collector.collect(m, state, ctx, &mut fams).await;
                if self.collector.counts_in_scrape_error() {
                    m.log.record(r.is_ok());
                }
                (fams, r)
            });
            let results = futures_util::future::join_all(runs).await;
            let mut first_err = None;
            for (fams, r) in results {
                out.extend(fams);
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                }
            }
            match first_err {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })
    }
}

/// One error for the failures of a collector's parts (databases, queries).
fn joined(errors: Vec<String>) -> CollectResult {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; ").into())
    }
}

#[cfg(test)]
mod tests {
    use clap::FromArgMatches;

    use super::table::testing::mismatches;
    use super::table::{Source, Table};
    use super::{flags, instance, CollectorArgs, How, ALL};

    /// The collectors a command line enables.
    fn enabled(args: &[&str]) -> Vec<&'static str> {
        let flags = flags();
        let cmd = <CollectorArgs as clap::Args>::augment_args(clap::Command::new("oxmon-postgres"));
        let matches = flags
            .augment(cmd)
            .try_get_matches_from(std::iter::once("oxmon-postgres").chain(args.iter().copied()))
            .unwrap();
        let config = CollectorArgs::from_arg_matches(&matches).unwrap().config(
            &flags.resolve(&matches),
            None,
            false,
        );
        config.enabled.iter().map(|e| e.name).collect()
    }

    #[test]
    fn selection_follows_node_exporter_precedence_and_postgres_exporter_switches() {
        let defaults = enabled(&[]);
        assert_eq!(defaults.len(), ALL.len() - 1);
        assert!(!defaults.contains(&"stat_statements"));
        // The later of --collector.X and --no-collector.X wins.
        assert!(
            enabled(&["--no-collector.settings", "--collector.settings"]).contains(&"settings")
        );
        assert!(
            !enabled(&["--collector.settings", "--no-collector.settings"]).contains(&"settings")
        );
        assert_eq!(
            enabled(&[
                "--collector.disable-defaults",
                "--collector.locks",
                "--collector.stat_statements"
            ]),
            ["locks", "stat_statements"]
        );
        // postgres_exporter's switches still turn collectors off, named or not.
        assert!(enabled(&["--disable-default-metrics", "--collector.locks"]).is_empty());
        assert!(
            !enabled(&["--disable-settings-metrics", "--collector.settings"]).contains(&"settings")
        );
    }

    /// Every query-table collector reads exactly what each version of its
    /// SQL returns (checked without a server, so also for the versions the
    /// integration tests do not run).
    #[test]
    fn every_table_reads_what_its_sql_returns() {
        let mut problems = Vec::new();
        let mut instance_tables: Vec<Table> = Vec::new();
        for entry in ALL {
            match entry.how {
                How::Table(Source::Main(queries) | Source::EveryDatabase(queries)) => {
                    for q in *queries {
                        let variants: Vec<&str> = q.sql.iter().map(|s| s.text).collect();
                        problems.extend(mismatches(&[q.table], &[], &variants));
                    }
                }
                How::Table(Source::Instance(table)) => instance_tables.push(*table),
                How::Settings | How::StatStatements => {}
            }
        }
        problems.extend(mismatches(
            &instance_tables,
            &[instance::CONF_LOAD_TIME, instance::IN_RECOVERY],
            instance::VARIANTS,
        ));
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

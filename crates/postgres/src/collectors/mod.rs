//! The collectors, named like postgres_exporter's (`--collector.<name>` /
//! `--no-collector.<name>`), and the glue that runs each for every target.
//!
//! Every family a target produces carries a `server="host:port"` label,
//! as postgres_exporter 0.11 does for all of its default metrics.

use std::borrow::Cow;
use std::sync::Arc;

use oxmon_core::collector::{BoxFuture, CollectResult, Collector};
use oxmon_core::metrics::LabelName;
use oxmon_core::{MetricFamily, MetricType, Registry, ScrapeContext};
use tokio_postgres::Row;

use crate::conn::{f, s};
use crate::target::Target;

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
pub mod up;
pub mod user_tables;
pub mod wal;

/// A switchable collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// pg_database: size and connection limit.
    Database,
    /// pg_locks by database and mode.
    Locks,
    /// Replica state and lag.
    Replication,
    /// pg_replication_slots.
    ReplicationSlot,
    /// pg_roles connection limits.
    Roles,
    /// pg_settings.
    Settings,
    /// pg_stat_activity by database and state.
    StatActivity,
    /// pg_stat_archiver.
    StatArchiver,
    /// pg_stat_bgwriter.
    StatBgwriter,
    /// pg_stat_checkpointer (PostgreSQL 17+).
    StatCheckpointer,
    /// pg_stat_database and pg_stat_database_conflicts.
    StatDatabase,
    /// pg_stat_progress_vacuum.
    StatProgressVacuum,
    /// pg_stat_replication.
    StatReplication,
    /// pg_stat_user_tables in every database.
    StatUserTables,
    /// pg_statio_user_tables in every database.
    StatioUserTables,
    /// WAL segments and position.
    Wal,
    /// Postmaster start time.
    Postmaster,
    /// pg_stat_statements top N.
    StatStatements,
    /// User queries from `--extend.query-path`.
    Queries,
    /// pg_up, pg_static and the exporter's scrape metrics (always on).
    Up,
}

/// `(kind, name, enabled by default, help)` of every switchable collector.
pub const ALL: &[(Kind, &str, bool, &str)] = &[
    (
        Kind::Database,
        "database",
        true,
        "database sizes and connection limits (pg_database)",
    ),
    (
        Kind::Locks,
        "locks",
        true,
        "locks by database and mode (pg_locks)",
    ),
    (
        Kind::Replication,
        "replication",
        true,
        "replica state and replay lag",
    ),
    (
        Kind::ReplicationSlot,
        "replication_slot",
        true,
        "replication slots (pg_replication_slots)",
    ),
    (
        Kind::Roles,
        "roles",
        true,
        "role connection limits (pg_roles)",
    ),
    (
        Kind::Settings,
        "settings",
        true,
        "server settings (pg_settings)",
    ),
    (
        Kind::StatActivity,
        "stat_activity",
        true,
        "connections by database and state (pg_stat_activity)",
    ),
    (
        Kind::StatArchiver,
        "stat_archiver",
        true,
        "WAL archiving (pg_stat_archiver)",
    ),
    (
        Kind::StatBgwriter,
        "stat_bgwriter",
        true,
        "background writer (pg_stat_bgwriter)",
    ),
    (
        Kind::StatCheckpointer,
        "stat_checkpointer",
        true,
        "checkpointer, PostgreSQL 17+ (pg_stat_checkpointer)",
    ),
    (
        Kind::StatDatabase,
        "stat_database",
        true,
        "per-database statistics (pg_stat_database, pg_stat_database_conflicts)",
    ),
    (
        Kind::StatProgressVacuum,
        "stat_progress_vacuum",
        true,
        "running vacuums (pg_stat_progress_vacuum)",
    ),
    (
        Kind::StatReplication,
        "stat_replication",
        true,
        "WAL senders (pg_stat_replication)",
    ),
    (
        Kind::StatUserTables,
        "stat_user_tables",
        true,
        "table statistics in every database (pg_stat_user_tables)",
    ),
    (
        Kind::StatioUserTables,
        "statio_user_tables",
        true,
        "table I/O in every database (pg_statio_user_tables)",
    ),
    (
        Kind::Wal,
        "wal",
        true,
        "WAL segments and position (pg_ls_waldir)",
    ),
    (
        Kind::Postmaster,
        "postmaster",
        true,
        "postmaster start time",
    ),
    (
        Kind::StatStatements,
        "stat_statements",
        false,
        "top statements by total time (pg_stat_statements; needs the extension)",
    ),
];

impl Kind {
    /// The collector's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Queries => "queries",
            Kind::Up => "up",
            k => ALL
                .iter()
                .find(|(x, ..)| *x == k)
                .map(|(_, n, ..)| *n)
                .unwrap_or("?"),
        }
    }
}

/// Runs one kind of collector for every target of a registry.
pub struct PgCollector {
    kind: Kind,
    targets: Arc<Vec<Arc<Target>>>,
}

/// Builds the registry for a set of targets (the DSNs of `/metrics`, or one
/// `/probe` target).
pub fn registry(kinds: &[Kind], targets: Arc<Vec<Arc<Target>>>) -> Registry {
    let mut r = Registry::new("pg");
    for &kind in kinds {
        r.register(Arc::new(PgCollector {
            kind,
            targets: targets.clone(),
        }));
    }
    r
}

impl Collector for PgCollector {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let runs = self.targets.iter().map(|t| async move {
                let mut fams = Vec::new();
                let r = run(self.kind, t, ctx, &mut fams).await;
                if self.kind != Kind::Up {
                    t.record(r.is_ok());
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

/// Runs one collector for one target. Collectors fed by the shared
/// instance row, per-database collectors, user queries and `up` have their
/// own paths; the rest run one query on the main connection.
async fn run(
    kind: Kind,
    t: &Target,
    ctx: &ScrapeContext,
    out: &mut Vec<MetricFamily>,
) -> CollectResult {
    let server = t.server.as_str();
    match kind {
        Kind::Up => up::collect(t, ctx, out).await,
        Kind::Queries => crate::queries::collect(t, ctx, out).await,
        Kind::StatUserTables | Kind::StatioUserTables => {
            user_tables::collect(kind, t, ctx, out).await
        }
        Kind::Replication => replication::collect(server, &instance::row(t, ctx).await?, out),
        Kind::StatArchiver => stat_archiver::collect(server, &instance::row(t, ctx).await?, out),
        Kind::Postmaster => postmaster::collect(server, &instance::row(t, ctx).await?, out),
        Kind::StatBgwriter => {
            let live = t.main(ctx).await?;
            let rows = instance::row(t, ctx).await?;
            stat_bgwriter::collect_bgwriter(server, live.version_num, &rows, out)
        }
        Kind::Database
        | Kind::Locks
        | Kind::ReplicationSlot
        | Kind::Roles
        | Kind::Settings
        | Kind::StatActivity
        | Kind::StatCheckpointer
        | Kind::StatDatabase
        | Kind::StatProgressVacuum
        | Kind::StatReplication
        | Kind::Wal
        | Kind::StatStatements => {
            let live = t.main(ctx).await?;
            let deadline = Target::query_deadline(ctx);
            match kind {
                Kind::Database => database::collect(t, &live, deadline, out).await,
                Kind::Locks => locks::collect(server, &live, deadline, out).await,
                Kind::ReplicationSlot => {
                    replication_slot::collect(server, &live, deadline, out).await
                }
                Kind::Roles => roles::collect(server, &live, deadline, out).await,
                Kind::Settings => settings::collect(t, ctx, &live, deadline, out).await,
                Kind::StatActivity => stat_activity::collect(server, &live, deadline, out).await,
                Kind::StatCheckpointer => {
                    stat_bgwriter::collect_checkpointer(server, &live, deadline, out).await
                }
                Kind::StatDatabase => stat_database::collect(server, &live, deadline, out).await,
                Kind::StatProgressVacuum => {
                    stat_progress_vacuum::collect(server, &live, deadline, out).await
                }
                Kind::StatReplication => {
                    stat_replication::collect(server, &live, deadline, out).await
                }
                Kind::Wal => wal::collect(server, &live, deadline, out).await,
                _ => stat_statements::collect(t, &live, deadline, out).await,
            }
        }
    }
}

/// One value column of a table-driven query: family name, type, help.
pub type ValueSpec = (&'static str, MetricType, &'static str);

/// Turns rows into families: the first `labels.len()` columns are text
/// labels, the rest float8 values in `values` order; `server` is added to
/// every series. NULL values become NaN unless `skip_null`.
pub fn emit(
    server: &str,
    labels: &[&'static str],
    values: &[ValueSpec],
    rows: &[Row],
    skip_null: bool,
    out: &mut Vec<MetricFamily>,
) {
    let n = labels.len();
    for (i, (name, kind, help)) in values.iter().enumerate() {
        let mut fam = MetricFamily::new(*name, *help, *kind);
        for row in rows {
            let v = f(row, n + i);
            if skip_null && v.is_nan() {
                continue;
            }
            fam.add_owned(label_set(server, labels, row), v);
        }
        if !fam.metrics.is_empty() {
            out.push(fam);
        }
    }
}

/// Emits the unlabelled values of one row starting at column `first`.
pub fn emit_at(
    server: &str,
    row: &Row,
    first: usize,
    values: &[ValueSpec],
    skip_null: bool,
    out: &mut Vec<MetricFamily>,
) {
    for (i, (name, kind, help)) in values.iter().enumerate() {
        let v = f(row, first + i);
        if skip_null && v.is_nan() {
            continue;
        }
        let mut fam = MetricFamily::new(*name, *help, *kind);
        fam.add(&[("server", server)], v);
        out.push(fam);
    }
}

/// The label pairs of a row: its label columns plus `server`.
pub fn label_set(server: &str, labels: &[&'static str], row: &Row) -> Vec<(LabelName, String)> {
    let mut set: Vec<(LabelName, String)> = Vec::with_capacity(labels.len() + 1);
    for (i, l) in labels.iter().enumerate() {
        set.push((Cow::Borrowed(*l), s(row, i)));
    }
    set.push((Cow::Borrowed("server"), server.to_owned()));
    set
}

/// Shorthand for the value specs.
pub const GAUGE: MetricType = MetricType::Gauge;
/// Shorthand for the value specs.
pub const COUNTER: MetricType = MetricType::Counter;
/// Shorthand for the value specs.
pub const UNTYPED: MetricType = MetricType::Untyped;

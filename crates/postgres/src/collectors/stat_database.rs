//! `stat_database` collector (on by default): `pg_stat_database` and
//! `pg_stat_database_conflicts`, with postgres_exporter 0.11's names, types
//! and labels (`datid`, `datname`). Columns that postgres_exporter has no
//! description for (checksums from 12, sessions from 14) are untyped there,
//! and so here (also `confl_active_logicalslot` of 16+).

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::{emit, ValueSpec, COUNTER, GAUGE, UNTYPED};
use crate::conn::Live;

macro_rules! concat_query {
    ($extra:expr) => {
        concat!(
            "SELECT datid::text, COALESCE(datname::text, ''), numbackends::float8, \
             xact_commit::float8, xact_rollback::float8, blks_read::float8, blks_hit::float8, \
             tup_returned::float8, tup_fetched::float8, tup_inserted::float8, tup_updated::float8, \
             tup_deleted::float8, conflicts::float8, temp_files::float8, temp_bytes::float8, \
             deadlocks::float8, blk_read_time::float8, blk_write_time::float8, \
             extract(epoch FROM stats_reset)::float8, checksum_failures::float8, \
             extract(epoch FROM checksum_last_failure)::float8",
            $extra,
            " FROM pg_stat_database"
        )
    };
}

const QUERY_12: &str = concat_query!("");

const QUERY_14: &str = concat_query!(
    ", session_time::float8, active_time::float8, idle_in_transaction_time::float8, \
     sessions::float8, sessions_abandoned::float8, sessions_fatal::float8, sessions_killed::float8"
);

const VALUES: &[ValueSpec] = &[
    ("pg_stat_database_numbackends", GAUGE, "Number of backends currently connected to this database. This is the only column in this view that returns a value reflecting current state; all other columns return the accumulated values since the last reset."),
    ("pg_stat_database_xact_commit", COUNTER, "Number of transactions in this database that have been committed"),
    ("pg_stat_database_xact_rollback", COUNTER, "Number of transactions in this database that have been rolled back"),
    ("pg_stat_database_blks_read", COUNTER, "Number of disk blocks read in this database"),
    ("pg_stat_database_blks_hit", COUNTER, "Number of times disk blocks were found already in the buffer cache, so that a read was not necessary (this only includes hits in the PostgreSQL buffer cache, not the operating system's file system cache)"),
    ("pg_stat_database_tup_returned", COUNTER, "Number of rows returned by queries in this database"),
    ("pg_stat_database_tup_fetched", COUNTER, "Number of rows fetched by queries in this database"),
    ("pg_stat_database_tup_inserted", COUNTER, "Number of rows inserted by queries in this database"),
    ("pg_stat_database_tup_updated", COUNTER, "Number of rows updated by queries in this database"),
    ("pg_stat_database_tup_deleted", COUNTER, "Number of rows deleted by queries in this database"),
    ("pg_stat_database_conflicts", COUNTER, "Number of queries canceled due to conflicts with recovery in this database. (Conflicts occur only on standby servers; see pg_stat_database_conflicts for details.)"),
    ("pg_stat_database_temp_files", COUNTER, "Number of temporary files created by queries in this database. All temporary files are counted, regardless of why the temporary file was created (e.g., sorting or hashing), and regardless of the log_temp_files setting."),
    ("pg_stat_database_temp_bytes", COUNTER, "Total amount of data written to temporary files by queries in this database. All temporary files are counted, regardless of why the temporary file was created, and regardless of the log_temp_files setting."),
    ("pg_stat_database_deadlocks", COUNTER, "Number of deadlocks detected in this database"),
    ("pg_stat_database_blk_read_time", COUNTER, "Time spent reading data file blocks by backends in this database, in milliseconds"),
    ("pg_stat_database_blk_write_time", COUNTER, "Time spent writing data file blocks by backends in this database, in milliseconds"),
    ("pg_stat_database_stats_reset", COUNTER, "Time at which these statistics were last reset"),
    ("pg_stat_database_checksum_failures", UNTYPED, "Unknown metric from pg_stat_database"),
    ("pg_stat_database_checksum_last_failure", UNTYPED, "Unknown metric from pg_stat_database"),
    ("pg_stat_database_session_time", UNTYPED, "Unknown metric from pg_stat_database"),
    ("pg_stat_database_active_time", UNTYPED, "Unknown metric from pg_stat_database"),
    ("pg_stat_database_idle_in_transaction_time", UNTYPED, "Unknown metric from pg_stat_database"),
    ("pg_stat_database_sessions", UNTYPED, "Unknown metric from pg_stat_database"),
    ("pg_stat_database_sessions_abandoned", UNTYPED, "Unknown metric from pg_stat_database"),
    ("pg_stat_database_sessions_fatal", UNTYPED, "Unknown metric from pg_stat_database"),
    ("pg_stat_database_sessions_killed", UNTYPED, "Unknown metric from pg_stat_database"),
];

/// The number of value columns before the PostgreSQL 14 session columns.
const PRE_14_VALUES: usize = 19;

const CONFLICTS: &str = "SELECT datid::text, datname::text, confl_tablespace::float8, \
     confl_lock::float8, confl_snapshot::float8, confl_bufferpin::float8, confl_deadlock::float8 \
     FROM pg_stat_database_conflicts";

const CONFLICTS_16: &str = "SELECT datid::text, datname::text, confl_tablespace::float8, \
     confl_lock::float8, confl_snapshot::float8, confl_bufferpin::float8, confl_deadlock::float8, \
     confl_active_logicalslot::float8 FROM pg_stat_database_conflicts";

const CONFLICT_VALUES: &[ValueSpec] = &[
    (
        "pg_stat_database_conflicts_confl_tablespace",
        COUNTER,
        "Number of queries in this database that have been canceled due to dropped tablespaces",
    ),
    (
        "pg_stat_database_conflicts_confl_lock",
        COUNTER,
        "Number of queries in this database that have been canceled due to lock timeouts",
    ),
    (
        "pg_stat_database_conflicts_confl_snapshot",
        COUNTER,
        "Number of queries in this database that have been canceled due to old snapshots",
    ),
    (
        "pg_stat_database_conflicts_confl_bufferpin",
        COUNTER,
        "Number of queries in this database that have been canceled due to pinned buffers",
    ),
    (
        "pg_stat_database_conflicts_confl_deadlock",
        COUNTER,
        "Number of queries in this database that have been canceled due to deadlocks",
    ),
];

/// Collects the database statistics.
pub async fn collect(
    server: &str,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let (query, values) = if live.version_num >= 140000 {
        (QUERY_14, VALUES)
    } else {
        (QUERY_12, &VALUES[..PRE_14_VALUES])
    };
    let (conflicts_query, conflict_values) = if live.version_num >= 160000 {
        (CONFLICTS_16, CONFLICT_VALUES)
    } else {
        (CONFLICTS, &CONFLICT_VALUES[..5])
    };
    let stats = live.query(query, deadline);
    let conflicts = live.query(conflicts_query, deadline);
    let (stats, conflicts) = futures_util::future::join(stats, conflicts).await;
    emit(server, &["datid", "datname"], values, &stats?, false, out);
    emit(
        server,
        &["datid", "datname"],
        conflict_values,
        &conflicts?,
        false,
        out,
    );
    Ok(())
}

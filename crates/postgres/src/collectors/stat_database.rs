//! `stat_database` collector (on by default): `pg_stat_database` and
//! `pg_stat_database_conflicts`, with postgres_exporter 0.11's names, types
//! and labels (`datid`, `datname`). Columns that postgres_exporter has no
//! description for (checksums from 12, sessions from 14) are untyped there,
//! and so here (also `confl_active_logicalslot` of 16+).

use super::table::{counter, gauge, untyped, Query, Source, Sql, Table};

macro_rules! stats_query {
    ($extra:expr) => {
        concat!(
            "SELECT datid::text, COALESCE(datname::text, '') AS datname, numbackends::float8, \
             xact_commit::float8, xact_rollback::float8, blks_read::float8, blks_hit::float8, \
             tup_returned::float8, tup_fetched::float8, tup_inserted::float8, tup_updated::float8, \
             tup_deleted::float8, conflicts::float8, temp_files::float8, temp_bytes::float8, \
             deadlocks::float8, blk_read_time::float8, blk_write_time::float8, \
             extract(epoch FROM stats_reset)::float8 AS stats_reset, checksum_failures::float8, \
             extract(epoch FROM checksum_last_failure)::float8 AS checksum_last_failure",
            $extra,
            " FROM pg_stat_database"
        )
    };
}

const STATS: Query = Query {
    sql: &[
        Sql {
            since: 120000,
            text: stats_query!(""),
        },
        Sql {
            since: 140000,
            text: stats_query!(
                ", session_time::float8, active_time::float8, idle_in_transaction_time::float8, \
                 sessions::float8, sessions_abandoned::float8, sessions_fatal::float8, \
                 sessions_killed::float8"
            ),
        },
    ],
    table: Table {
        labels: &["datid", "datname"],
        columns: &[
            gauge("numbackends", "pg_stat_database_numbackends", "Number of backends currently connected to this database. This is the only column in this view that returns a value reflecting current state; all other columns return the accumulated values since the last reset."),
            counter("xact_commit", "pg_stat_database_xact_commit", "Number of transactions in this database that have been committed"),
            counter("xact_rollback", "pg_stat_database_xact_rollback", "Number of transactions in this database that have been rolled back"),
            counter("blks_read", "pg_stat_database_blks_read", "Number of disk blocks read in this database"),
            counter("blks_hit", "pg_stat_database_blks_hit", "Number of times disk blocks were found already in the buffer cache, so that a read was not necessary (this only includes hits in the PostgreSQL buffer cache, not the operating system's file system cache)"),
            counter("tup_returned", "pg_stat_database_tup_returned", "Number of rows returned by queries in this database"),
            counter("tup_fetched", "pg_stat_database_tup_fetched", "Number of rows fetched by queries in this database"),
            counter("tup_inserted", "pg_stat_database_tup_inserted", "Number of rows inserted by queries in this database"),
            counter("tup_updated", "pg_stat_database_tup_updated", "Number of rows updated by queries in this database"),
            counter("tup_deleted", "pg_stat_database_tup_deleted", "Number of rows deleted by queries in this database"),
            counter("conflicts", "pg_stat_database_conflicts", "Number of queries canceled due to conflicts with recovery in this database. (Conflicts occur only on standby servers; see pg_stat_database_conflicts for details.)"),
            counter("temp_files", "pg_stat_database_temp_files", "Number of temporary files created by queries in this database. All temporary files are counted, regardless of why the temporary file was created (e.g., sorting or hashing), and regardless of the log_temp_files setting."),
            counter("temp_bytes", "pg_stat_database_temp_bytes", "Total amount of data written to temporary files by queries in this database. All temporary files are counted, regardless of why the temporary file was created, and regardless of the log_temp_files setting."),
            counter("deadlocks", "pg_stat_database_deadlocks", "Number of deadlocks detected in this database"),
            counter("blk_read_time", "pg_stat_database_blk_read_time", "Time spent reading data file blocks by backends in this database, in milliseconds"),
            counter("blk_write_time", "pg_stat_database_blk_write_time", "Time spent writing data file blocks by backends in this database, in milliseconds"),
            counter("stats_reset", "pg_stat_database_stats_reset", "Time at which these statistics were last reset"),
            untyped("checksum_failures", "pg_stat_database_checksum_failures", "Unknown metric from pg_stat_database"),
            untyped("checksum_last_failure", "pg_stat_database_checksum_last_failure", "Unknown metric from pg_stat_database"),
            untyped("session_time", "pg_stat_database_session_time", "Unknown metric from pg_stat_database"),
            untyped("active_time", "pg_stat_database_active_time", "Unknown metric from pg_stat_database"),
            untyped("idle_in_transaction_time", "pg_stat_database_idle_in_transaction_time", "Unknown metric from pg_stat_database"),
            untyped("sessions", "pg_stat_database_sessions", "Unknown metric from pg_stat_database"),
            untyped("sessions_abandoned", "pg_stat_database_sessions_abandoned", "Unknown metric from pg_stat_database"),
            untyped("sessions_fatal", "pg_stat_database_sessions_fatal", "Unknown metric from pg_stat_database"),
            untyped("sessions_killed", "pg_stat_database_sessions_killed", "Unknown metric from pg_stat_database"),
        ],
    },
    filter_databases: false,
};

macro_rules! conflicts_query {
    ($extra:expr) => {
        concat!(
            "SELECT datid::text, datname::text, confl_tablespace::float8, confl_lock::float8, \
             confl_snapshot::float8, confl_bufferpin::float8, confl_deadlock::float8",
            $extra,
            " FROM pg_stat_database_conflicts"
        )
    };
}

const CONFLICTS: Query = Query {
    sql: &[
        Sql {
            since: 120000,
            text: conflicts_query!(""),
        },
        Sql {
            since: 160000,
            text: conflicts_query!(", confl_active_logicalslot::float8"),
        },
    ],
    table: Table {
        labels: &["datid", "datname"],
        columns: &[
            counter("confl_tablespace", "pg_stat_database_conflicts_confl_tablespace", "Number of queries in this database that have been canceled due to dropped tablespaces"),
            counter("confl_lock", "pg_stat_database_conflicts_confl_lock", "Number of queries in this database that have been canceled due to lock timeouts"),
            counter("confl_snapshot", "pg_stat_database_conflicts_confl_snapshot", "Number of queries in this database that have been canceled due to old snapshots"),
            counter("confl_bufferpin", "pg_stat_database_conflicts_confl_bufferpin", "Number of queries in this database that have been canceled due to pinned buffers"),
            counter("confl_deadlock", "pg_stat_database_conflicts_confl_deadlock", "Number of queries in this database that have been canceled due to deadlocks"),
            untyped("confl_active_logicalslot", "pg_stat_database_conflicts_confl_active_logicalslot", "Unknown metric from pg_stat_database_conflicts"),
        ],
    },
    filter_databases: false,
};

/// The collector: both views, queried concurrently.
pub const SOURCE: Source = Source::Main(&[STATS, CONFLICTS]);

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result, t};
    use super::super::table::Datum;
    use super::*;

    #[test]
    fn a_pg15_row_gives_every_family_but_the_session_ones() {
        let columns = [
            "datid",
            "datname",
            "numbackends",
            "xact_commit",
            "stats_reset",
            "checksum_failures",
        ];
        let row = vec![t("5"), t("app"), n(3.0), n(42.0), Datum::Null, n(0.0)];
        assert_eq!(
            render(&STATS.table, &result(&columns, vec![row])),
            [
                "pg_stat_database_numbackends Gauge {datid=5,datname=app,server=h:5432} 3",
                "pg_stat_database_xact_commit Counter {datid=5,datname=app,server=h:5432} 42",
                "pg_stat_database_stats_reset Counter {datid=5,datname=app,server=h:5432} NaN",
                "pg_stat_database_checksum_failures Untyped {datid=5,datname=app,server=h:5432} 0",
            ]
        );
    }

    #[test]
    fn the_shared_objects_row_has_an_empty_datname() {
        let r = result(
            &["datid", "datname", "confl_lock", "confl_active_logicalslot"],
            vec![vec![t("0"), t(""), n(1.0), n(2.0)]],
        );
        assert_eq!(
            render(&CONFLICTS.table, &r),
            [
                "pg_stat_database_conflicts_confl_lock Counter {datid=0,datname=,server=h:5432} 1",
                "pg_stat_database_conflicts_confl_active_logicalslot Untyped {datid=0,datname=,server=h:5432} 2",
            ]
        );
    }

    #[test]
    fn session_columns_from_14_and_logical_slot_conflicts_from_16() {
        assert!(!STATS.sql_for(130000).unwrap().contains("session_time"));
        assert!(STATS.sql_for(140000).unwrap().contains("sessions_killed"));
        assert!(!CONFLICTS.sql_for(150000).unwrap().contains("logicalslot"));
        assert!(CONFLICTS.sql_for(160000).unwrap().contains("logicalslot"));
    }
}

//! `stat_bgwriter` and `stat_checkpointer` collectors (on by default).
//!
//! Up to PostgreSQL 16, `pg_stat_bgwriter` holds the checkpoint counters
//! too: `pg_stat_bgwriter_{checkpoints_timed,checkpoints_req,checkpoint_write_time,
//! checkpoint_sync_time,buffers_checkpoint,buffers_clean,maxwritten_clean,
//! buffers_backend,buffers_backend_fsync,buffers_alloc,stats_reset}_total`,
//! read from the shared instance row (see `instance.rs`).
//! From 17 the checkpoint counters moved to `pg_stat_checkpointer`
//! (`pg_stat_checkpointer_*_total`, emitted by `stat_checkpointer`); the
//! instance row then reads the moved counters under their old names so
//! existing dashboards keep working (`buffers_backend*` are gone from
//! PostgreSQL 17 and not emitted).

use super::table::{counter, Query, Source, Sql, Table};

/// The `stat_bgwriter` collector, on the instance row.
pub const BGWRITER: Source = Source::Instance(Table {
    labels: &[],
    columns: &[
        counter("checkpoints_timed", "pg_stat_bgwriter_checkpoints_timed_total", "Number of scheduled checkpoints that have been performed"),
        counter("checkpoints_req", "pg_stat_bgwriter_checkpoints_req_total", "Number of requested checkpoints that have been performed"),
        counter("checkpoint_write_time", "pg_stat_bgwriter_checkpoint_write_time_total", "Total amount of time that has been spent in the portion of checkpoint processing where files are written to disk, in milliseconds"),
        counter("checkpoint_sync_time", "pg_stat_bgwriter_checkpoint_sync_time_total", "Total amount of time that has been spent in the portion of checkpoint processing where files are synchronized to disk, in milliseconds"),
        counter("buffers_checkpoint", "pg_stat_bgwriter_buffers_checkpoint_total", "Number of buffers written during checkpoints"),
        counter("buffers_clean", "pg_stat_bgwriter_buffers_clean_total", "Number of buffers written by the background writer"),
        counter("maxwritten_clean", "pg_stat_bgwriter_maxwritten_clean_total", "Number of times the background writer stopped a cleaning scan because it had written too many buffers"),
        counter("buffers_backend", "pg_stat_bgwriter_buffers_backend_total", "Number of buffers written directly by a backend"),
        counter("buffers_backend_fsync", "pg_stat_bgwriter_buffers_backend_fsync_total", "Number of times a backend had to execute its own fsync call (normally the background writer handles those even when the backend does its own write)"),
        counter("buffers_alloc", "pg_stat_bgwriter_buffers_alloc_total", "Number of buffers allocated"),
        counter("stats_reset", "pg_stat_bgwriter_stats_reset_total", "Time at which these statistics were last reset"),
    ],
});

const CHECKPOINTS: Query = Query {
    sql: &[Sql {
        since: 170000,
        text: "SELECT num_timed::float8, num_requested::float8, restartpoints_timed::float8, \
               restartpoints_req::float8, restartpoints_done::float8, write_time::float8, \
               sync_time::float8, buffers_written::float8, \
               extract(epoch FROM stats_reset)::float8 AS stats_reset \
               FROM pg_stat_checkpointer",
    }],
    table: Table {
        labels: &[],
        columns: &[
            counter("num_timed", "pg_stat_checkpointer_num_timed_total", "Number of scheduled checkpoints due to timeout"),
            counter("num_requested", "pg_stat_checkpointer_num_requested_total", "Number of requested checkpoints that have been performed"),
            counter("restartpoints_timed", "pg_stat_checkpointer_restartpoints_timed_total", "Number of scheduled restartpoints due to timeout or after a failed attempt to perform it"),
            counter("restartpoints_req", "pg_stat_checkpointer_restartpoints_req_total", "Number of requested restartpoints"),
            counter("restartpoints_done", "pg_stat_checkpointer_restartpoints_done_total", "Number of restartpoints that have been performed"),
            counter("write_time", "pg_stat_checkpointer_write_time_total", "Total amount of time that has been spent in the portion of processing checkpoints and restartpoints where files are written to disk, in milliseconds"),
            counter("sync_time", "pg_stat_checkpointer_sync_time_total", "Total amount of time that has been spent in the portion of processing checkpoints and restartpoints where files are synchronized to disk, in milliseconds"),
            counter("buffers_written", "pg_stat_checkpointer_buffers_written_total", "Number of buffers written during checkpoints and restartpoints"),
            counter("stats_reset", "pg_stat_checkpointer_stats_reset_total", "Time at which these statistics were last reset"),
        ],
    },
    filter_databases: false,
};

/// The `stat_checkpointer` collector (PostgreSQL 17+; nothing before).
pub const CHECKPOINTER: Source = Source::Main(&[CHECKPOINTS]);

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result};
    use super::*;

    #[test]
    fn a_pg17_instance_row_has_no_backend_buffers() {
        let Source::Instance(table) = BGWRITER else {
            panic!("stat_bgwriter reads the instance row")
        };
        let r = result(
            &["in_recovery", "checkpoints_timed", "buffers_alloc"],
            vec![vec![n(0.0), n(4.0), n(900.0)]],
        );
        assert_eq!(
            render(&table, &r),
            [
                "pg_stat_bgwriter_checkpoints_timed_total Counter {server=h:5432} 4",
                "pg_stat_bgwriter_buffers_alloc_total Counter {server=h:5432} 900",
            ]
        );
    }

    #[test]
    fn checkpointer_only_from_17() {
        assert_eq!(CHECKPOINTS.sql_for(160004), None);
        let r = result(
            &["num_timed", "restartpoints_done"],
            vec![vec![n(3.0), n(0.0)]],
        );
        assert_eq!(
            render(&CHECKPOINTS.table, &r),
            [
                "pg_stat_checkpointer_num_timed_total Counter {server=h:5432} 3",
                "pg_stat_checkpointer_restartpoints_done_total Counter {server=h:5432} 0",
            ]
        );
    }
}

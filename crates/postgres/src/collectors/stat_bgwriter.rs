//! `stat_bgwriter` and `stat_checkpointer` collectors (on by default).
//!
//! Up to PostgreSQL 16, `pg_stat_bgwriter` holds the checkpoint counters
//! too: `pg_stat_bgwriter_{checkpoints_timed,checkpoints_req,checkpoint_write_time,
//! checkpoint_sync_time,buffers_checkpoint,buffers_clean,maxwritten_clean,
//! buffers_backend,buffers_backend_fsync,buffers_alloc,stats_reset}_total`.
//! From 17 the checkpoint counters moved to `pg_stat_checkpointer`
//! (`pg_stat_checkpointer_*_total`, emitted by `stat_checkpointer`); this
//! collector then keeps the bgwriter names that still exist, and maps the
//! moved checkpoint counters to their old names so existing dashboards keep
//! working (`buffers_backend*` are gone from PostgreSQL 17 and not emitted).

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use tokio_postgres::Row;

use super::instance::BGWRITER;
use super::{emit, emit_at, ValueSpec, COUNTER};
use crate::conn::Live;

const CHECKPOINTER: &str = "SELECT num_timed::float8, num_requested::float8, \
     restartpoints_timed::float8, restartpoints_req::float8, restartpoints_done::float8, \
     write_time::float8, sync_time::float8, buffers_written::float8, \
     extract(epoch FROM stats_reset)::float8 FROM pg_stat_checkpointer";

const BGWRITER_VALUES: &[ValueSpec] = &[
    ("pg_stat_bgwriter_checkpoints_timed_total", COUNTER, "Number of scheduled checkpoints that have been performed"),
    ("pg_stat_bgwriter_checkpoints_req_total", COUNTER, "Number of requested checkpoints that have been performed"),
    ("pg_stat_bgwriter_checkpoint_write_time_total", COUNTER, "Total amount of time that has been spent in the portion of checkpoint processing where files are written to disk, in milliseconds"),
    ("pg_stat_bgwriter_checkpoint_sync_time_total", COUNTER, "Total amount of time that has been spent in the portion of checkpoint processing where files are synchronized to disk, in milliseconds"),
    ("pg_stat_bgwriter_buffers_checkpoint_total", COUNTER, "Number of buffers written during checkpoints"),
    ("pg_stat_bgwriter_buffers_clean_total", COUNTER, "Number of buffers written by the background writer"),
    ("pg_stat_bgwriter_maxwritten_clean_total", COUNTER, "Number of times the background writer stopped a cleaning scan because it had written too many buffers"),
    ("pg_stat_bgwriter_buffers_backend_total", COUNTER, "Number of buffers written directly by a backend"),
    ("pg_stat_bgwriter_buffers_backend_fsync_total", COUNTER, "Number of times a backend had to execute its own fsync call (normally the background writer handles those even when the backend does its own write)"),
    ("pg_stat_bgwriter_buffers_alloc_total", COUNTER, "Number of buffers allocated"),
    ("pg_stat_bgwriter_stats_reset_total", COUNTER, "Time at which these statistics were last reset"),
];

const CHECKPOINTER_VALUES: &[ValueSpec] = &[
    ("pg_stat_checkpointer_num_timed_total", COUNTER, "Number of scheduled checkpoints due to timeout"),
    ("pg_stat_checkpointer_num_requested_total", COUNTER, "Number of requested checkpoints that have been performed"),
    ("pg_stat_checkpointer_restartpoints_timed_total", COUNTER, "Number of scheduled restartpoints due to timeout or after a failed attempt to perform it"),
    ("pg_stat_checkpointer_restartpoints_req_total", COUNTER, "Number of requested restartpoints"),
    ("pg_stat_checkpointer_restartpoints_done_total", COUNTER, "Number of restartpoints that have been performed"),
    ("pg_stat_checkpointer_write_time_total", COUNTER, "Total amount of time that has been spent in the portion of processing checkpoints and restartpoints where files are written to disk, in milliseconds"),
    ("pg_stat_checkpointer_sync_time_total", COUNTER, "Total amount of time that has been spent in the portion of processing checkpoints and restartpoints where files are synchronized to disk, in milliseconds"),
    ("pg_stat_checkpointer_buffers_written_total", COUNTER, "Number of buffers written during checkpoints and restartpoints"),
    ("pg_stat_checkpointer_stats_reset_total", COUNTER, "Time at which these statistics were last reset"),
];

/// Collects pg_stat_bgwriter (from the shared instance row).
pub fn collect_bgwriter(
    server: &str,
    version_num: u32,
    rows: &[Row],
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    if let Some(row) = rows.first() {
        emit_at(
            server,
            row,
            BGWRITER,
            BGWRITER_VALUES,
            version_num >= 170000,
            out,
        );
    }
    Ok(())
}

/// Collects pg_stat_checkpointer (PostgreSQL 17+; nothing before).
pub async fn collect_checkpointer(
    server: &str,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    if live.version_num < 170000 {
        return Ok(());
    }
    let rows = live.query(CHECKPOINTER, deadline).await?;
    emit(server, &[], CHECKPOINTER_VALUES, &rows, false, out);
    Ok(())
}

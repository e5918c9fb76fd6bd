//! `stat_archiver` collector (on by default): WAL archiving from
//! `pg_stat_archiver` (in the shared instance row).
//!
//! Metrics: `pg_stat_archiver_archived_count`, `pg_stat_archiver_failed_count`
//! (counters, named without `_total` as in postgres_exporter),
//! `pg_stat_archiver_last_archive_age` (NaN before the first archive).

use oxmon_core::MetricFamily;
use tokio_postgres::Row;

use super::instance::ARCHIVER;
use super::{emit_at, COUNTER, GAUGE};

/// Collects the archiver state.
pub fn collect(
    server: &str,
    rows: &[Row],
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    if let Some(row) = rows.first() {
        emit_at(
            server,
            row,
            ARCHIVER,
            &[
                (
                    "pg_stat_archiver_archived_count",
                    COUNTER,
                    "Number of WAL files that have been successfully archived",
                ),
                (
                    "pg_stat_archiver_failed_count",
                    COUNTER,
                    "Number of failed attempts for archiving WAL files",
                ),
                (
                    "pg_stat_archiver_last_archive_age",
                    GAUGE,
                    "Time in seconds since last WAL segment was successfully archived",
                ),
            ],
            false,
            out,
        );
    }
    Ok(())
}

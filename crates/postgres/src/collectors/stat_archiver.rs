//! `stat_archiver` collector (on by default): WAL archiving from
//! `pg_stat_archiver`.
//!
//! Metrics: `pg_stat_archiver_archived_count`, `pg_stat_archiver_failed_count`
//! (counters, named without `_total` as in postgres_exporter),
//! `pg_stat_archiver_last_archive_age` (NaN before the first archive).

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::{emit, COUNTER, GAUGE};
use crate::conn::Live;

const QUERY: &str = "SELECT archived_count::float8, failed_count::float8, \
     extract(epoch FROM now() - last_archived_time)::float8 FROM pg_stat_archiver";

/// Collects the archiver state.
pub async fn collect(
    server: &str,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let rows = live.query(QUERY, deadline).await?;
    emit(
        server,
        &[],
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
        &rows,
        false,
        out,
    );
    Ok(())
}

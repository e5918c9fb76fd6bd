//! `wal` collector (on by default): WAL segment count and size from
//! `pg_ls_waldir()` (superuser or `pg_monitor`), and the WAL position.
//!
//! Metrics: `pg_wal_segments`, `pg_wal_size_bytes`, `pg_wal_lsn_location_bytes`.

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::{emit, GAUGE};
use crate::conn::Live;

const QUERY: &str = "SELECT count(*)::float8, sum(size)::float8, \
     (CASE WHEN pg_is_in_recovery() THEN pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0') \
           ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') END)::float8 \
     FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'";

/// Collects the WAL families.
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
            ("pg_wal_segments", GAUGE, "Number of WAL segments"),
            ("pg_wal_size_bytes", GAUGE, "Total size of WAL segments"),
            (
                "pg_wal_lsn_location_bytes",
                GAUGE,
                "WAL Log Sequence Number in bytes",
            ),
        ],
        &rows,
        true,
        out,
    );
    Ok(())
}

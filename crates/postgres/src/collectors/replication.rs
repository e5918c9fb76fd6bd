//! `replication` collector (on by default): whether the server is a replica
//! and how far its replay lags (from the shared instance row).
//!
//! Metrics: `pg_replication_lag_seconds` (0 on a primary, and when the
//! replica has replayed all it received), `pg_replication_is_replica`,
//! `pg_replication_last_replay_seconds` (replicas only).

use oxmon_core::MetricFamily;
use tokio_postgres::Row;

use super::instance::REPLICATION;
use super::{emit_at, GAUGE};

/// Collects the replication state.
pub fn collect(
    server: &str,
    rows: &[Row],
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    if let Some(row) = rows.first() {
        emit_at(
            server,
            row,
            REPLICATION,
            &[
                (
                    "pg_replication_lag_seconds",
                    GAUGE,
                    "Replication lag behind master in seconds",
                ),
                (
                    "pg_replication_is_replica",
                    GAUGE,
                    "Indicates if the server is a replica",
                ),
                (
                    "pg_replication_last_replay_seconds",
                    GAUGE,
                    "Age of last replay in seconds",
                ),
            ],
            true,
            out,
        );
    }
    Ok(())
}

//! `replication` collector (on by default): whether the server is a replica
//! and how far its replay lags.
//!
//! Metrics: `pg_replication_lag_seconds`, `pg_replication_is_replica`,
//! `pg_replication_last_replay_seconds` (replicas only).

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::{emit, GAUGE};
use crate::conn::Live;

const QUERY: &str = "SELECT \
     (CASE WHEN NOT pg_is_in_recovery() THEN 0 \
           WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
           ELSE GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END)::float8, \
     (CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END)::float8, \
     GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::float8";

/// Collects the replication state.
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
        &rows,
        true,
        out,
    );
    Ok(())
}

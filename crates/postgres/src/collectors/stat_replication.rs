//! `stat_replication` collector (on by default): one series set per WAL
//! sender, with postgres_exporter 0.11's names and labels
//! (`application_name`, `client_addr`, `state`, `slot_name`; the slot is
//! the one the sender is streaming from, "" when none).
//!
//! Metrics: `pg_stat_replication_pg_current_wal_lsn_bytes`,
//! `pg_stat_replication_pg_wal_lsn_diff` (bytes the standby's replay is
//! behind), `pg_stat_replication_reply_time` (untyped, as in 0.11).

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::{emit, ValueSpec, GAUGE, UNTYPED};
use crate::conn::Live;

const QUERY: &str = "SELECT COALESCE(r.application_name, ''), COALESCE(host(r.client_addr), ''), \
     COALESCE(r.state, ''), COALESCE(s.slot_name::text, ''), \
     (CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') END)::float8, \
     (CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn) END)::float8, \
     floor(extract(epoch FROM r.reply_time))::float8 \
     FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid";

const VALUES: &[ValueSpec] = &[
    (
        "pg_stat_replication_pg_current_wal_lsn_bytes",
        GAUGE,
        "WAL position in bytes",
    ),
    (
        "pg_stat_replication_pg_wal_lsn_diff",
        GAUGE,
        "Lag in bytes between master and slave",
    ),
    (
        "pg_stat_replication_reply_time",
        UNTYPED,
        "Unknown metric from pg_stat_replication",
    ),
];

/// Collects the WAL sender families.
pub async fn collect(
    server: &str,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let rows = live.query(QUERY, deadline).await?;
    emit(
        server,
        &["application_name", "client_addr", "state", "slot_name"],
        VALUES,
        &rows,
        false,
        out,
    );
    Ok(())
}

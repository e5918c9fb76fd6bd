//! `stat_activity` collector (on by default): connections by database and
//! state, with the longest open transaction, every state present.
//!
//! Metrics: `pg_stat_activity_count{datname,state}`,
//! `pg_stat_activity_max_tx_duration{datname,state}`.

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::{emit, GAUGE};
use crate::conn::Live;

const QUERY: &str = "SELECT d.datname::text, s.state, COALESCE(a.count, 0)::float8, \
     COALESCE(a.max_tx_duration, 0)::float8 \
     FROM (VALUES ('active'), ('idle'), ('idle in transaction'), \
                  ('idle in transaction (aborted)'), ('fastpath function call'), ('disabled')) AS s(state) \
     CROSS JOIN pg_database d \
     LEFT JOIN (SELECT datname, state, count(*) AS count, \
                       max(extract(epoch FROM now() - xact_start)) AS max_tx_duration \
                FROM pg_stat_activity GROUP BY datname, state) a \
       ON a.state = s.state AND a.datname = d.datname";

/// Collects the activity counts.
pub async fn collect(
    server: &str,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let rows = live.query(QUERY, deadline).await?;
    emit(
        server,
        &["datname", "state"],
        &[
            (
                "pg_stat_activity_count",
                GAUGE,
                "number of connections in this state",
            ),
            (
                "pg_stat_activity_max_tx_duration",
                GAUGE,
                "max duration in seconds any active transaction has been running",
            ),
        ],
        &rows,
        false,
        out,
    );
    Ok(())
}

//! `locks` collector (on by default): `pg_locks` counted by database and
//! lock mode, every mode present (0 when none) so series do not come and go.
//!
//! Metrics: `pg_locks_count{datname,mode}`.

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::{emit, GAUGE};
use crate::conn::Live;

const QUERY: &str = "SELECT d.datname::text, m.mode, COALESCE(l.count, 0)::float8 \
     FROM (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), \
                  ('shareupdateexclusivelock'), ('sharelock'), ('sharerowexclusivelock'), \
                  ('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) AS m(mode) \
     CROSS JOIN pg_database d \
     LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS count FROM pg_locks \
                WHERE database IS NOT NULL GROUP BY database, lower(mode)) l \
       ON l.mode = m.mode AND l.database = d.oid";

/// Collects the lock counts.
pub async fn collect(
    server: &str,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let rows = live.query(QUERY, deadline).await?;
    emit(
        server,
        &["datname", "mode"],
        &[("pg_locks_count", GAUGE, "Number of locks")],
        &rows,
        false,
        out,
    );
    Ok(())
}

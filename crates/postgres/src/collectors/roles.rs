//! `roles` collector (on by default): connection limit of every role.
//!
//! Metrics: `pg_roles_connection_limit{rolname}`.

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::{emit, GAUGE};
use crate::conn::Live;

const QUERY: &str = "SELECT rolname::text, rolconnlimit::float8 FROM pg_roles";

/// Collects the role limits.
pub async fn collect(
    server: &str,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let rows = live.query(QUERY, deadline).await?;
    emit(
        server,
        &["rolname"],
        &[(
            "pg_roles_connection_limit",
            GAUGE,
            "Connection limit set for the role",
        )],
        &rows,
        true,
        out,
    );
    Ok(())
}

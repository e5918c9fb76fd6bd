//! `postmaster` collector (on by default): when the server started.
//!
//! Metrics: `pg_postmaster_start_time_seconds{process_name="postmaster"}`.

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use crate::conn::{f, Live};

const QUERY: &str = "SELECT extract(epoch FROM pg_postmaster_start_time())::float8";

/// Collects the start time.
pub async fn collect(
    server: &str,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let rows = live.query(QUERY, deadline).await?;
    let mut fam = MetricFamily::gauge(
        "pg_postmaster_start_time_seconds",
        "Time at which postmaster started",
    );
    if let Some(row) = rows.first() {
        fam.add(
            &[("process_name", "postmaster"), ("server", server)],
            f(row, 0),
        );
    }
    out.push(fam);
    Ok(())
}

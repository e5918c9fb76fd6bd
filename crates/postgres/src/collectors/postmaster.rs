//! `postmaster` collector (on by default): when the server started (from
//! the shared instance row, see `instance.rs`).
//!
//! Metrics: `pg_postmaster_start_time_seconds{process_name="postmaster"}`.

use oxmon_core::MetricFamily;
use tokio_postgres::Row;

use super::instance::POSTMASTER_START;
use crate::conn::f;

/// Collects the start time.
pub fn collect(
    server: &str,
    rows: &[Row],
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let mut fam = MetricFamily::gauge(
        "pg_postmaster_start_time_seconds",
        "Time at which postmaster started",
    );
    if let Some(row) = rows.first() {
        fam.add(
            &[("process_name", "postmaster"), ("server", server)],
            f(row, POSTMASTER_START),
        );
    }
    out.push(fam);
    Ok(())
}

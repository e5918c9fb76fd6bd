//! `database` collector (on by default): `pg_database` — size and connection
//! limit of every database. Sizes are read only where the login may connect,
//! so one locked-down database does not fail the whole query.
//!
//! Metrics: `pg_database_size_bytes{datname}`, `pg_database_connection_limit{datname}`.
//! Databases are filtered by `--include-databases`/`--exclude-databases`.

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::{label_set, GAUGE};
use crate::conn::{f, s, Live};
use crate::target::Target;

const QUERY: &str = "SELECT datname::text, datconnlimit::float8, \
     CASE WHEN has_database_privilege(oid, 'CONNECT') THEN pg_database_size(oid)::float8 END \
     FROM pg_database";

/// Collects the database families.
pub async fn collect(
    t: &Target,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let rows = live.query(QUERY, deadline).await?;
    let mut size = MetricFamily::gauge("pg_database_size_bytes", "Disk space used by the database");
    let mut limit = MetricFamily::new(
        "pg_database_connection_limit",
        "Connection limit set for the database",
        GAUGE,
    );
    for row in rows.iter().filter(|r| t.opts.database_allowed(&s(r, 0))) {
        let labels = label_set(&t.server, &["datname"], row);
        limit.add_owned(labels.clone(), f(row, 1));
        let bytes = f(row, 2);
        if !bytes.is_nan() {
            size.add_owned(labels, bytes);
        }
    }
    out.push(size);
    out.push(limit);
    Ok(())
}

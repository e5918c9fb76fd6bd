//! `replication` collector (on by default): whether the server is a replica
//! and how far its replay lags (from the shared instance row, see
//! `instance.rs`).
//!
//! Metrics: `pg_replication_lag_seconds` (0 on a primary, and when the
//! replica has replayed all it received), `pg_replication_is_replica`,
//! `pg_replication_last_replay_seconds` (replicas only).

use super::table::{gauge, Nulls, Source, Table};

/// The collector.
pub const SOURCE: Source = Source::Instance(Table {
    labels: &[],
    columns: &[
        gauge(
            "lag_seconds",
            "pg_replication_lag_seconds",
            "Replication lag behind master in seconds",
        )
        .nulls(Nulls::Skip),
        gauge(
            "is_replica",
            "pg_replication_is_replica",
            "Indicates if the server is a replica",
        )
        .nulls(Nulls::Skip),
        gauge(
            "last_replay_seconds",
            "pg_replication_last_replay_seconds",
            "Age of last replay in seconds",
        )
        .nulls(Nulls::Skip),
    ],
});

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result};
    use super::super::table::Datum;
    use super::*;

    #[test]
    fn a_primary_has_no_last_replay() {
        let Source::Instance(table) = SOURCE else {
            panic!("replication reads the instance row")
        };
        let r = result(
            &["lag_seconds", "is_replica", "last_replay_seconds"],
            vec![vec![n(0.0), n(0.0), Datum::Null]],
        );
        assert_eq!(
            render(&table, &r),
            [
                "pg_replication_lag_seconds Gauge {server=h:5432} 0",
                "pg_replication_is_replica Gauge {server=h:5432} 0",
            ]
        );
    }
}

//! `wal` collector (on by default): WAL segment count and size from
//! `pg_ls_waldir()` (superuser or `pg_monitor`), and the WAL position.
//!
//! Metrics: `pg_wal_segments`, `pg_wal_size_bytes`, `pg_wal_lsn_location_bytes`.

use super::table::{gauge, Nulls, Query, Source, Sql, Table};

const WAL: Query = Query {
    sql: &[Sql {
        since: 120000,
        text: "SELECT count(*)::float8 AS segments, sum(size)::float8 AS size, \
               (CASE WHEN pg_is_in_recovery() THEN pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0') \
                     ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') END)::float8 AS lsn \
               FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'",
    }],
    table: Table {
        labels: &[],
        columns: &[
            gauge("segments", "pg_wal_segments", "Number of WAL segments").nulls(Nulls::Skip),
            gauge("size", "pg_wal_size_bytes", "Total size of WAL segments").nulls(Nulls::Skip),
            gauge(
                "lsn",
                "pg_wal_lsn_location_bytes",
                "WAL Log Sequence Number in bytes",
            )
            .nulls(Nulls::Skip),
        ],
    },
    filter_databases: false,
};

/// The collector.
pub const SOURCE: Source = Source::Main(&[WAL]);

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result};
    use super::super::table::Datum;
    use super::*;

    #[test]
    fn no_segments_no_size() {
        let r = result(
            &["segments", "size", "lsn"],
            vec![vec![n(0.0), Datum::Null, n(123456.0)]],
        );
        assert_eq!(
            render(&WAL.table, &r),
            [
                "pg_wal_segments Gauge {server=h:5432} 0",
                "pg_wal_lsn_location_bytes Gauge {server=h:5432} 123456",
            ]
        );
    }
}

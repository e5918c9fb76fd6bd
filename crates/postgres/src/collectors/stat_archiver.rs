//! `stat_archiver` collector (on by default): WAL archiving from
//! `pg_stat_archiver` (in the shared instance row, see `instance.rs`).
//!
//! Metrics: `pg_stat_archiver_archived_count`, `pg_stat_archiver_failed_count`
//! (counters, named without `_total` as in postgres_exporter),
//! `pg_stat_archiver_last_archive_age` (NaN before the first archive).

use super::table::{counter, gauge, Source, Table};

/// The collector.
pub const SOURCE: Source = Source::Instance(Table {
    labels: &[],
    columns: &[
        counter(
            "archived_count",
            "pg_stat_archiver_archived_count",
            "Number of WAL files that have been successfully archived",
        ),
        counter(
            "failed_count",
            "pg_stat_archiver_failed_count",
            "Number of failed attempts for archiving WAL files",
        ),
        gauge(
            "last_archive_age",
            "pg_stat_archiver_last_archive_age",
            "Time in seconds since last WAL segment was successfully archived",
        ),
    ],
});

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result};
    use super::super::table::Datum;
    use super::*;

    #[test]
    fn never_archived_is_nan_age() {
        let Source::Instance(table) = SOURCE else {
            panic!("stat_archiver reads the instance row")
        };
        let r = result(
            &["archived_count", "failed_count", "last_archive_age"],
            vec![vec![n(0.0), n(0.0), Datum::Null]],
        );
        assert_eq!(
            render(&table, &r),
            [
                "pg_stat_archiver_archived_count Counter {server=h:5432} 0",
                "pg_stat_archiver_failed_count Counter {server=h:5432} 0",
                "pg_stat_archiver_last_archive_age Gauge {server=h:5432} NaN",
            ]
        );
    }
}

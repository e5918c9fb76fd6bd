//! `postmaster` collector (on by default): when the server started (from
//! the shared instance row, see `instance.rs`).
//!
//! Metrics: `pg_postmaster_start_time_seconds{process_name="postmaster"}`.

use super::table::{gauge, Source, Table};

/// The collector.
pub const SOURCE: Source = Source::Instance(Table {
    labels: &["process_name"],
    columns: &[gauge(
        "postmaster_start_time",
        "pg_postmaster_start_time_seconds",
        "Time at which postmaster started",
    )],
});

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result, t};
    use super::*;

    #[test]
    fn start_time_with_the_process_name() {
        let Source::Instance(table) = SOURCE else {
            panic!("postmaster reads the instance row")
        };
        let r = result(
            &["process_name", "postmaster_start_time"],
            vec![vec![t("postmaster"), n(1700000000.25)]],
        );
        assert_eq!(
            render(&table, &r),
            ["pg_postmaster_start_time_seconds Gauge {process_name=postmaster,server=h:5432} 1700000000.25"]
        );
    }
}

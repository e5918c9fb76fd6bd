//! `locks` collector (on by default): `pg_locks` counted by database and
//! lock mode, every mode present (0 when none) so series do not come and go.
//!
//! Metrics: `pg_locks_count{datname,mode}`.

use super::table::{gauge, Query, Source, Sql, Table};

const LOCKS: Query = Query {
    sql: &[Sql {
        since: 120000,
        text: "SELECT d.datname::text, m.mode, COALESCE(l.count, 0)::float8 AS count \
               FROM (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), \
                            ('shareupdateexclusivelock'), ('sharelock'), ('sharerowexclusivelock'), \
                            ('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) AS m(mode) \
               CROSS JOIN pg_database d \
               LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS count FROM pg_locks \
                          WHERE database IS NOT NULL GROUP BY database, lower(mode)) l \
                 ON l.mode = m.mode AND l.database = d.oid",
    }],
    table: Table {
        labels: &["datname", "mode"],
        columns: &[gauge("count", "pg_locks_count", "Number of locks")],
    },
    filter_databases: false,
};

/// The collector.
pub const SOURCE: Source = Source::Main(&[LOCKS]);

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result, t};
    use super::*;

    #[test]
    fn one_series_per_database_and_mode() {
        let r = result(
            &["datname", "mode", "count"],
            vec![
                vec![t("app"), t("accesssharelock"), n(2.0)],
                vec![t("app"), t("sireadlock"), n(0.0)],
            ],
        );
        assert_eq!(
            render(&LOCKS.table, &r),
            [
                "pg_locks_count Gauge {datname=app,mode=accesssharelock,server=h:5432} 2",
                "pg_locks_count Gauge {datname=app,mode=sireadlock,server=h:5432} 0",
            ]
        );
    }
}

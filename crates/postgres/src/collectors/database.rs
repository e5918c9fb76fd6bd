//! `database` collector (on by default): `pg_database` — size and connection
//! limit of every database. Sizes are read only where the login may connect,
//! so one locked-down database does not fail the whole query.
//!
//! Metrics: `pg_database_size_bytes{datname}`, `pg_database_connection_limit{datname}`.
//! Databases are filtered by `--include-databases`/`--exclude-databases`.

use super::table::{gauge, Nulls, Query, Source, Sql, Table};

const DATABASES: Query = Query {
    sql: &[Sql {
        since: 120000,
        text: "SELECT datname::text, datconnlimit::float8, \
               CASE WHEN has_database_privilege(oid, 'CONNECT') \
                    THEN pg_database_size(oid)::float8 END AS size \
               FROM pg_database",
    }],
    table: Table {
        labels: &["datname"],
        columns: &[
            gauge(
                "size",
                "pg_database_size_bytes",
                "Disk space used by the database",
            )
            .nulls(Nulls::Skip),
            gauge(
                "datconnlimit",
                "pg_database_connection_limit",
                "Connection limit set for the database",
            ),
        ],
    },
    filter_databases: true,
};

/// The collector.
pub const SOURCE: Source = Source::Main(&[DATABASES]);

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result, t};
    use super::super::table::Datum;
    use super::*;

    #[test]
    fn a_database_the_login_cannot_enter_has_no_size() {
        let r = result(
            &["datname", "datconnlimit", "size"],
            vec![
                vec![t("app"), n(-1.0), n(8000000.0)],
                vec![t("locked"), n(10.0), Datum::Null],
            ],
        );
        assert_eq!(
            render(&DATABASES.table, &r),
            [
                "pg_database_size_bytes Gauge {datname=app,server=h:5432} 8000000",
                "pg_database_connection_limit Gauge {datname=app,server=h:5432} -1",
                "pg_database_connection_limit Gauge {datname=locked,server=h:5432} 10",
            ]
        );
    }
}

//! `roles` collector (on by default): connection limit of every role.
//!
//! Metrics: `pg_roles_connection_limit{rolname}`.

use super::table::{gauge, Nulls, Query, Source, Sql, Table};

const ROLES: Query = Query {
    sql: &[Sql {
        since: 120000,
        text: "SELECT rolname::text, rolconnlimit::float8 FROM pg_roles",
    }],
    table: Table {
        labels: &["rolname"],
        columns: &[gauge(
            "rolconnlimit",
            "pg_roles_connection_limit",
            "Connection limit set for the role",
        )
        .nulls(Nulls::Skip)],
    },
    filter_databases: false,
};

/// The collector.
pub const SOURCE: Source = Source::Main(&[ROLES]);

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result, t};
    use super::*;

    #[test]
    fn one_series_per_role() {
        let r = result(
            &["rolname", "rolconnlimit"],
            vec![vec![t("monitor"), n(3.0)], vec![t("postgres"), n(-1.0)]],
        );
        assert_eq!(
            render(&ROLES.table, &r),
            [
                "pg_roles_connection_limit Gauge {rolname=monitor,server=h:5432} 3",
                "pg_roles_connection_limit Gauge {rolname=postgres,server=h:5432} -1",
            ]
        );
    }
}

//! `stat_activity` collector (on by default): connections by database and
//! state, with the longest open transaction, every state present.
//!
//! Metrics: `pg_stat_activity_count{datname,state}`,
//! `pg_stat_activity_max_tx_duration{datname,state}`.

use super::table::{gauge, Query, Source, Sql, Table};

const ACTIVITY: Query = Query {
    sql: &[Sql {
        since: 120000,
        text: "SELECT d.datname::text, s.state, COALESCE(a.count, 0)::float8 AS count, \
               COALESCE(a.max_tx_duration, 0)::float8 AS max_tx_duration \
               FROM (VALUES ('active'), ('idle'), ('idle in transaction'), \
                            ('idle in transaction (aborted)'), ('fastpath function call'), ('disabled')) AS s(state) \
               CROSS JOIN pg_database d \
               LEFT JOIN (SELECT datname, state, count(*) AS count, \
                                 max(extract(epoch FROM now() - xact_start)) AS max_tx_duration \
                          FROM pg_stat_activity GROUP BY datname, state) a \
                 ON a.state = s.state AND a.datname = d.datname",
    }],
    table: Table {
        labels: &["datname", "state"],
        columns: &[
            gauge(
                "count",
                "pg_stat_activity_count",
                "number of connections in this state",
            ),
            gauge(
                "max_tx_duration",
                "pg_stat_activity_max_tx_duration",
                "max duration in seconds any active transaction has been running",
            ),
        ],
    },
    filter_databases: false,
};

/// The collector.
pub const SOURCE: Source = Source::Main(&[ACTIVITY]);

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result, t};
    use super::*;

    #[test]
    fn count_and_longest_transaction_per_database_and_state() {
        let r = result(
            &["datname", "state", "count", "max_tx_duration"],
            vec![vec![t("app"), t("idle in transaction"), n(2.0), n(12.5)]],
        );
        assert_eq!(
            render(&ACTIVITY.table, &r),
            [
                "pg_stat_activity_count Gauge {datname=app,server=h:5432,state=idle in transaction} 2",
                "pg_stat_activity_max_tx_duration Gauge {datname=app,server=h:5432,state=idle in transaction} 12.5",
            ]
        );
    }
}

//! `stat_replication` collector (on by default): one series set per WAL
//! sender, with postgres_exporter 0.11's names and labels
//! (`application_name`, `client_addr`, `state`, `slot_name`; the slot is
//! the one the sender is streaming from, "" when none).
//!
//! Metrics: `pg_stat_replication_pg_current_wal_lsn_bytes`,
//! `pg_stat_replication_pg_wal_lsn_diff` (bytes the standby's replay is
//! behind), `pg_stat_replication_reply_time` (untyped, as in 0.11).

use super::table::{gauge, untyped, Query, Source, Sql, Table};

const SENDERS: Query = Query {
    sql: &[Sql {
        since: 120000,
        text: "SELECT COALESCE(r.application_name, '') AS application_name, \
               COALESCE(host(r.client_addr), '') AS client_addr, \
               COALESCE(r.state, '') AS state, COALESCE(s.slot_name::text, '') AS slot_name, \
               (CASE WHEN pg_is_in_recovery() THEN NULL \
                     ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') END)::float8 AS current_wal_lsn, \
               (CASE WHEN pg_is_in_recovery() THEN NULL \
                     ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn) END)::float8 AS wal_lsn_diff, \
               floor(extract(epoch FROM r.reply_time))::float8 AS reply_time \
               FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid",
    }],
    table: Table {
        labels: &["application_name", "client_addr", "state", "slot_name"],
        columns: &[
            gauge(
                "current_wal_lsn",
                "pg_stat_replication_pg_current_wal_lsn_bytes",
                "WAL position in bytes",
            ),
            gauge(
                "wal_lsn_diff",
                "pg_stat_replication_pg_wal_lsn_diff",
                "Lag in bytes between master and slave",
            ),
            untyped(
                "reply_time",
                "pg_stat_replication_reply_time",
                "Unknown metric from pg_stat_replication",
            ),
        ],
    },
    filter_databases: false,
};

/// The collector.
pub const SOURCE: Source = Source::Main(&[SENDERS]);

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result, t};
    use super::super::table::Datum;
    use super::*;

    #[test]
    fn one_series_set_per_sender() {
        let r = result(
            &[
                "application_name",
                "client_addr",
                "state",
                "slot_name",
                "current_wal_lsn",
                "wal_lsn_diff",
                "reply_time",
            ],
            vec![vec![
                t("walrecv"),
                t("10.0.0.2"),
                t("streaming"),
                t("slot_r"),
                n(5000.0),
                n(128.0),
                Datum::Null,
            ]],
        );
        let labels = "application_name=walrecv,client_addr=10.0.0.2,server=h:5432,slot_name=slot_r,state=streaming";
        assert_eq!(
            render(&SENDERS.table, &r),
            [
                format!("pg_stat_replication_pg_current_wal_lsn_bytes Gauge {{{labels}}} 5000"),
                format!("pg_stat_replication_pg_wal_lsn_diff Gauge {{{labels}}} 128"),
                format!("pg_stat_replication_reply_time Untyped {{{labels}}} NaN"),
            ]
        );
    }
}

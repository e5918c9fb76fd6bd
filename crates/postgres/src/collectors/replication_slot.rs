//! `replication_slot` collector (on by default): `pg_replication_slots`,
//! with both the current postgres_exporter names and the 0.11 legacy ones.
//!
//! Metrics: `pg_replication_slot_slot_current_wal_lsn{slot_name,slot_type}`,
//! `pg_replication_slot_slot_confirmed_flush_lsn` (active slots),
//! `pg_replication_slot_slot_is_active`, `pg_replication_slot_safe_wal_size_bytes`
//! and `pg_replication_slot_wal_status{wal_status}` (13+);
//! legacy `pg_replication_slots_active{slot_name,database}` and
//! `pg_replication_slots_pg_wal_lsn_diff{slot_name,database}`.

use super::table::{gauge, Nulls, Query, Source, Sql, Table};

macro_rules! slots_query {
    ($extra:expr) => {
        concat!(
            "SELECT slot_name::text, slot_type::text, COALESCE(database::text, '') AS database, \
             (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() - '0/0' \
                   ELSE pg_current_wal_lsn() - '0/0' END)::float8 AS current_wal_lsn, \
             (CASE WHEN active THEN COALESCE(confirmed_flush_lsn, '0/0') - '0/0' END)::float8 \
               AS confirmed_flush_lsn, \
             active::int::float8, \
             (CASE WHEN pg_is_in_recovery() THEN NULL \
                   ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) END)::float8 AS wal_lsn_diff",
            $extra,
            " FROM pg_replication_slots"
        )
    };
}

const SLOT: &[&str] = &["slot_name", "slot_type"];
const LEGACY: &[&str] = &["slot_name", "database"];

const SLOTS: Query = Query {
    sql: &[
        Sql {
            since: 120000,
            text: slots_query!(""),
        },
        Sql {
            since: 130000,
            text: slots_query!(
                ", safe_wal_size::float8, wal_status::text, \
                 (CASE WHEN wal_status IS NOT NULL THEN 1 END)::float8 AS has_wal_status"
            ),
        },
    ],
    table: Table {
        labels: SLOT,
        columns: &[
            gauge(
                "current_wal_lsn",
                "pg_replication_slot_slot_current_wal_lsn",
                "current wal lsn value",
            )
            .nulls(Nulls::Zero),
            gauge(
                "confirmed_flush_lsn",
                "pg_replication_slot_slot_confirmed_flush_lsn",
                "last lsn confirmed flushed to the replication slot",
            )
            .nulls(Nulls::Skip),
            gauge(
                "active",
                "pg_replication_slot_slot_is_active",
                "whether the replication slot is active or not",
            )
            .nulls(Nulls::Zero),
            gauge(
                "safe_wal_size",
                "pg_replication_slot_safe_wal_size_bytes",
                "number of bytes that can be written to WAL such that this slot is not in danger of getting in state lost",
            )
            .nulls(Nulls::Skip),
            gauge(
                "has_wal_status",
                "pg_replication_slot_wal_status",
                "availability of WAL files claimed by this slot",
            )
            .labels(&["slot_name", "slot_type", "wal_status"])
            .nulls(Nulls::Skip),
            gauge(
                "active",
                "pg_replication_slots_active",
                "Flag indicating if the slot is active",
            )
            .labels(LEGACY)
            .nulls(Nulls::Zero),
            gauge(
                "wal_lsn_diff",
                "pg_replication_slots_pg_wal_lsn_diff",
                "Replication lag in bytes",
            )
            .labels(LEGACY),
        ],
    },
    filter_databases: false,
};

/// The collector.
pub const SOURCE: Source = Source::Main(&[SLOTS]);

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result, t};
    use super::super::table::Datum;
    use super::*;

    #[test]
    fn active_and_inactive_slots_under_both_names() {
        let r = result(
            &[
                "slot_name",
                "slot_type",
                "database",
                "current_wal_lsn",
                "confirmed_flush_lsn",
                "active",
                "wal_lsn_diff",
                "safe_wal_size",
                "wal_status",
                "has_wal_status",
            ],
            vec![
                vec![
                    t("logical_a"),
                    t("logical"),
                    t("app"),
                    n(9000.0),
                    n(8000.0),
                    n(1.0),
                    n(1000.0),
                    Datum::Null,
                    t("reserved"),
                    n(1.0),
                ],
                vec![
                    t("phys_b"),
                    t("physical"),
                    t(""),
                    Datum::Null,
                    Datum::Null,
                    n(0.0),
                    Datum::Null,
                    n(4096.0),
                    Datum::Null,
                    Datum::Null,
                ],
            ],
        );
        let a = "server=h:5432,slot_name=logical_a,slot_type=logical";
        let b = "server=h:5432,slot_name=phys_b,slot_type=physical";
        assert_eq!(
            render(&SLOTS.table, &r),
            [
                format!("pg_replication_slot_slot_current_wal_lsn Gauge {{{a}}} 9000"),
                format!("pg_replication_slot_slot_current_wal_lsn Gauge {{{b}}} 0"),
                format!("pg_replication_slot_slot_confirmed_flush_lsn Gauge {{{a}}} 8000"),
                format!("pg_replication_slot_slot_is_active Gauge {{{a}}} 1"),
                format!("pg_replication_slot_slot_is_active Gauge {{{b}}} 0"),
                format!("pg_replication_slot_safe_wal_size_bytes Gauge {{{b}}} 4096"),
                format!("pg_replication_slot_wal_status Gauge {{{a},wal_status=reserved}} 1"),
                "pg_replication_slots_active Gauge {database=app,server=h:5432,slot_name=logical_a} 1".to_string(),
                "pg_replication_slots_active Gauge {database=,server=h:5432,slot_name=phys_b} 0".to_string(),
                "pg_replication_slots_pg_wal_lsn_diff Gauge {database=app,server=h:5432,slot_name=logical_a} 1000".to_string(),
                "pg_replication_slots_pg_wal_lsn_diff Gauge {database=,server=h:5432,slot_name=phys_b} NaN".to_string(),
            ]
        );
    }

    #[test]
    fn postgres_12_has_no_wal_status() {
        let r = result(
            &["slot_name", "slot_type", "database", "active"],
            vec![vec![t("s"), t("physical"), t(""), n(1.0)]],
        );
        let lines = render(&SLOTS.table, &r);
        assert!(lines.iter().all(|l| !l.contains("wal_status")), "{lines:?}");
        assert_eq!(lines.len(), 2, "{lines:?}");
    }
}

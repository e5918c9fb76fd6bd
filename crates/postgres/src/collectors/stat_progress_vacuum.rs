//! `stat_progress_vacuum` collector (on by default): every running vacuum,
//! its phase (one series per phase, 1 for the current one) and progress.
//!
//! Metrics: `pg_stat_progress_vacuum_phase{datname,relname,phase}`,
//! `pg_stat_progress_vacuum_{heap_blks,heap_blks_scanned,heap_blks_vacuumed,
//! index_vacuums,max_dead_tuples,num_dead_tuples}{datname,relname}`.

use super::table::{gauge, Nulls, Query, Source, Sql, Table};

/// The progress rows and their database and table names (a table of
/// another database shows as its oid: its name is only known there).
macro_rules! progress_query {
    ($columns:expr, $join:expr) => {
        concat!(
            "SELECT COALESCE(d.datname::text, 'unknown') AS datname, \
             COALESCE(CASE WHEN d.datname = current_database() THEN s.relid::regclass::text END, \
                      s.relid::text) AS relname, ",
            $columns,
            " FROM pg_stat_get_progress_info('VACUUM') s \
             LEFT JOIN pg_database d ON s.datid = d.oid",
            $join
        )
    };
}

const PROGRESS: Query = Query {
    sql: &[Sql {
        since: 120000,
        text: progress_query!(
            "s.param2::float8 AS heap_blks, s.param3::float8 AS heap_blks_scanned, \
             s.param4::float8 AS heap_blks_vacuumed, s.param5::float8 AS index_vacuums, \
             s.param6::float8 AS max_dead_tuples, s.param7::float8 AS num_dead_tuples",
            ""
        ),
    }],
    table: Table {
        labels: &["datname", "relname"],
        columns: &[
            gauge(
                "heap_blks",
                "pg_stat_progress_vacuum_heap_blks",
                "Total number of heap blocks in the table being vacuumed.",
            )
            .nulls(Nulls::Zero),
            gauge(
                "heap_blks_scanned",
                "pg_stat_progress_vacuum_heap_blks_scanned",
                "Number of heap blocks scanned so far.",
            )
            .nulls(Nulls::Zero),
            gauge(
                "heap_blks_vacuumed",
                "pg_stat_progress_vacuum_heap_blks_vacuumed",
                "Number of heap blocks vacuumed so far.",
            )
            .nulls(Nulls::Zero),
            gauge(
                "index_vacuums",
                "pg_stat_progress_vacuum_index_vacuums",
                "Number of completed index vacuum cycles.",
            )
            .nulls(Nulls::Zero),
            gauge(
                "max_dead_tuples",
                "pg_stat_progress_vacuum_max_dead_tuples",
                "Maximum number of dead tuples that can be stored before cleanup is performed.",
            )
            .nulls(Nulls::Zero),
            gauge(
                "num_dead_tuples",
                "pg_stat_progress_vacuum_num_dead_tuples",
                "Current number of dead tuples found so far.",
            )
            .nulls(Nulls::Zero),
        ],
    },
    filter_databases: false,
};

/// One row per vacuum and phase: 1 for the phase it is in (`param1`).
const PHASES: Query = Query {
    sql: &[Sql {
        since: 120000,
        text: progress_query!(
            "p.phase, (s.param1 = p.n)::int::float8 AS in_phase",
            " CROSS JOIN (VALUES (0, 'initializing'), (1, 'scanning heap'), \
                                 (2, 'vacuuming indexes'), (3, 'vacuuming heap'), \
                                 (4, 'cleaning up indexes'), (5, 'truncating heap'), \
                                 (6, 'performing final cleanup')) AS p(n, phase)"
        ),
    }],
    table: Table {
        labels: &["datname", "relname", "phase"],
        columns: &[gauge(
            "in_phase",
            "pg_stat_progress_vacuum_phase",
            "Current vacuum phase (1 = active, 0 = inactive). Label 'phase' is human-readable.",
        )
        .nulls(Nulls::Zero)],
    },
    filter_databases: false,
};

/// The collector: progress and phases, queried concurrently.
pub const SOURCE: Source = Source::Main(&[PROGRESS, PHASES]);

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result, t};
    use super::super::table::Datum;
    use super::*;

    #[test]
    fn progress_of_a_vacuum_with_unknown_values_as_zero() {
        let r = result(
            &["datname", "relname", "heap_blks", "heap_blks_scanned"],
            vec![vec![t("app"), t("orders"), n(100.0), Datum::Null]],
        );
        assert_eq!(
            render(&PROGRESS.table, &r),
            [
                "pg_stat_progress_vacuum_heap_blks Gauge {datname=app,relname=orders,server=h:5432} 100",
                "pg_stat_progress_vacuum_heap_blks_scanned Gauge {datname=app,relname=orders,server=h:5432} 0",
            ]
        );
    }

    #[test]
    fn one_series_per_phase() {
        let r = result(
            &["datname", "relname", "phase", "in_phase"],
            vec![
                vec![t("app"), t("16384"), t("initializing"), n(0.0)],
                vec![t("app"), t("16384"), t("scanning heap"), n(1.0)],
                vec![t("app"), t("16384"), t("vacuuming heap"), Datum::Null],
            ],
        );
        let l = "datname=app,phase";
        let r2 = "relname=16384,server=h:5432";
        assert_eq!(
            render(&PHASES.table, &r),
            [
                format!("pg_stat_progress_vacuum_phase Gauge {{{l}=initializing,{r2}}} 0"),
                format!("pg_stat_progress_vacuum_phase Gauge {{{l}=scanning heap,{r2}}} 1"),
                format!("pg_stat_progress_vacuum_phase Gauge {{{l}=vacuuming heap,{r2}}} 0"),
            ]
        );
    }
}

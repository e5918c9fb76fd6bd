//! `stat_user_tables` and `statio_user_tables` collectors (on by default),
//! run in EVERY database that accepts connections (not only the DSN's), over
//! one kept connection per database; `--include-databases` and
//! `--exclude-databases` choose which.
//!
//! Metrics (labels `datname`, `schemaname`, `relname`):
//! `pg_stat_user_tables_{seq_scan,seq_tup_read,idx_scan,idx_tup_fetch,n_tup_ins,
//! n_tup_upd,n_tup_del,n_tup_hot_upd,vacuum_count,autovacuum_count,analyze_count,
//! autoanalyze_count}` (counters), `..._{n_live_tup,n_dead_tup,n_mod_since_analyze,
//! last_vacuum,last_autovacuum,last_analyze,last_autoanalyze,index_size_bytes,
//! table_size_bytes}` (gauges; times in Unix seconds, 0 for never);
//! `pg_statio_user_tables_{heap,idx,toast,tidx}_blocks_{read,hit}` (counters).

use super::table::{counter, gauge, Query, Source, Sql, Table};

const TABLE_STATS: Query = Query {
    sql: &[Sql {
        since: 120000,
        text: "SELECT current_database()::text AS datname, schemaname::text, relname::text, \
               COALESCE(seq_scan, 0)::float8 AS seq_scan, COALESCE(seq_tup_read, 0)::float8 AS seq_tup_read, \
               COALESCE(idx_scan, 0)::float8 AS idx_scan, COALESCE(idx_tup_fetch, 0)::float8 AS idx_tup_fetch, \
               n_tup_ins::float8, n_tup_upd::float8, n_tup_del::float8, n_tup_hot_upd::float8, \
               n_live_tup::float8, n_dead_tup::float8, n_mod_since_analyze::float8, \
               COALESCE(extract(epoch FROM last_vacuum), 0)::float8 AS last_vacuum, \
               COALESCE(extract(epoch FROM last_autovacuum), 0)::float8 AS last_autovacuum, \
               COALESCE(extract(epoch FROM last_analyze), 0)::float8 AS last_analyze, \
               COALESCE(extract(epoch FROM last_autoanalyze), 0)::float8 AS last_autoanalyze, \
               vacuum_count::float8, autovacuum_count::float8, analyze_count::float8, \
               autoanalyze_count::float8, pg_indexes_size(relid)::float8 AS index_size, \
               pg_table_size(relid)::float8 AS table_size \
               FROM pg_stat_user_tables",
    }],
    table: Table {
        labels: &["datname", "schemaname", "relname"],
        columns: &[
            counter("seq_scan", "pg_stat_user_tables_seq_scan", "Number of sequential scans initiated on this table"),
            counter("seq_tup_read", "pg_stat_user_tables_seq_tup_read", "Number of live rows fetched by sequential scans"),
            counter("idx_scan", "pg_stat_user_tables_idx_scan", "Number of index scans initiated on this table"),
            counter("idx_tup_fetch", "pg_stat_user_tables_idx_tup_fetch", "Number of live rows fetched by index scans"),
            counter("n_tup_ins", "pg_stat_user_tables_n_tup_ins", "Number of rows inserted"),
            counter("n_tup_upd", "pg_stat_user_tables_n_tup_upd", "Number of rows updated"),
            counter("n_tup_del", "pg_stat_user_tables_n_tup_del", "Number of rows deleted"),
            counter("n_tup_hot_upd", "pg_stat_user_tables_n_tup_hot_upd", "Number of rows HOT updated (i.e., with no separate index update required)"),
            gauge("n_live_tup", "pg_stat_user_tables_n_live_tup", "Estimated number of live rows"),
            gauge("n_dead_tup", "pg_stat_user_tables_n_dead_tup", "Estimated number of dead rows"),
            gauge("n_mod_since_analyze", "pg_stat_user_tables_n_mod_since_analyze", "Estimated number of rows changed since last analyze"),
            gauge("last_vacuum", "pg_stat_user_tables_last_vacuum", "Last time at which this table was manually vacuumed (not counting VACUUM FULL)"),
            gauge("last_autovacuum", "pg_stat_user_tables_last_autovacuum", "Last time at which this table was vacuumed by the autovacuum daemon"),
            gauge("last_analyze", "pg_stat_user_tables_last_analyze", "Last time at which this table was manually analyzed"),
            gauge("last_autoanalyze", "pg_stat_user_tables_last_autoanalyze", "Last time at which this table was analyzed by the autovacuum daemon"),
            counter("vacuum_count", "pg_stat_user_tables_vacuum_count", "Number of times this table has been manually vacuumed (not counting VACUUM FULL)"),
            counter("autovacuum_count", "pg_stat_user_tables_autovacuum_count", "Number of times this table has been vacuumed by the autovacuum daemon"),
            counter("analyze_count", "pg_stat_user_tables_analyze_count", "Number of times this table has been manually analyzed"),
            counter("autoanalyze_count", "pg_stat_user_tables_autoanalyze_count", "Number of times this table has been analyzed by the autovacuum daemon"),
            gauge("index_size", "pg_stat_user_tables_index_size_bytes", "Total disk space used by this index, in bytes"),
            gauge("table_size", "pg_stat_user_tables_table_size_bytes", "Total disk space used by this table, in bytes"),
        ],
    },
    filter_databases: false,
};

const TABLE_IO: Query = Query {
    sql: &[Sql {
        since: 120000,
        text: "SELECT current_database()::text AS datname, schemaname::text, relname::text, \
               COALESCE(heap_blks_read, 0)::float8 AS heap_blks_read, \
               COALESCE(heap_blks_hit, 0)::float8 AS heap_blks_hit, \
               COALESCE(idx_blks_read, 0)::float8 AS idx_blks_read, \
               COALESCE(idx_blks_hit, 0)::float8 AS idx_blks_hit, \
               COALESCE(toast_blks_read, 0)::float8 AS toast_blks_read, \
               COALESCE(toast_blks_hit, 0)::float8 AS toast_blks_hit, \
               COALESCE(tidx_blks_read, 0)::float8 AS tidx_blks_read, \
               COALESCE(tidx_blks_hit, 0)::float8 AS tidx_blks_hit \
               FROM pg_statio_user_tables",
    }],
    table: Table {
        labels: &["datname", "schemaname", "relname"],
        columns: &[
            counter(
                "heap_blks_read",
                "pg_statio_user_tables_heap_blocks_read",
                "Number of disk blocks read from this table",
            ),
            counter(
                "heap_blks_hit",
                "pg_statio_user_tables_heap_blocks_hit",
                "Number of buffer hits in this table",
            ),
            counter(
                "idx_blks_read",
                "pg_statio_user_tables_idx_blocks_read",
                "Number of disk blocks read from all indexes on this table",
            ),
            counter(
                "idx_blks_hit",
                "pg_statio_user_tables_idx_blocks_hit",
                "Number of buffer hits in all indexes on this table",
            ),
            counter(
                "toast_blks_read",
                "pg_statio_user_tables_toast_blocks_read",
                "Number of disk blocks read from this table's TOAST table (if any)",
            ),
            counter(
                "toast_blks_hit",
                "pg_statio_user_tables_toast_blocks_hit",
                "Number of buffer hits in this table's TOAST table (if any)",
            ),
            counter(
                "tidx_blks_read",
                "pg_statio_user_tables_tidx_blocks_read",
                "Number of disk blocks read from this table's TOAST table indexes (if any)",
            ),
            counter(
                "tidx_blks_hit",
                "pg_statio_user_tables_tidx_blocks_hit",
                "Number of buffer hits in this table's TOAST table indexes (if any)",
            ),
        ],
    },
    filter_databases: false,
};

/// The `stat_user_tables` collector: every database the target visits; a
/// database that fails is reported (collector success 0) without hiding
/// the others.
pub const STAT: Source = Source::EveryDatabase(&[TABLE_STATS]);

/// The `statio_user_tables` collector, likewise.
pub const STATIO: Source = Source::EveryDatabase(&[TABLE_IO]);

#[cfg(test)]
mod tests {
    use super::super::table::testing::{n, render, result, t};
    use super::*;

    #[test]
    fn one_series_per_table_of_each_database() {
        let r = result(
            &[
                "datname",
                "schemaname",
                "relname",
                "n_live_tup",
                "last_vacuum",
                "table_size",
            ],
            vec![
                vec![
                    t("app1"),
                    t("public"),
                    t("orders"),
                    n(490.0),
                    n(0.0),
                    n(65536.0),
                ],
                vec![
                    t("app1"),
                    t("audit"),
                    t("log"),
                    n(3.0),
                    n(1700000000.0),
                    n(8192.0),
                ],
            ],
        );
        let orders = "datname=app1,relname=orders,schemaname=public,server=h:5432";
        let log = "datname=app1,relname=log,schemaname=audit,server=h:5432";
        assert_eq!(
            render(&TABLE_STATS.table, &r),
            [
                format!("pg_stat_user_tables_n_live_tup Gauge {{{orders}}} 490"),
                format!("pg_stat_user_tables_n_live_tup Gauge {{{log}}} 3"),
                format!("pg_stat_user_tables_last_vacuum Gauge {{{orders}}} 0"),
                format!("pg_stat_user_tables_last_vacuum Gauge {{{log}}} 1700000000"),
                format!("pg_stat_user_tables_table_size_bytes Gauge {{{orders}}} 65536"),
                format!("pg_stat_user_tables_table_size_bytes Gauge {{{log}}} 8192"),
            ]
        );
    }

    #[test]
    fn block_counters_are_named_blocks() {
        let r = result(
            &[
                "datname",
                "schemaname",
                "relname",
                "heap_blks_read",
                "tidx_blks_hit",
            ],
            vec![vec![t("app2"), t("public"), t("orders"), n(12.0), n(0.0)]],
        );
        let l = "datname=app2,relname=orders,schemaname=public,server=h:5432";
        assert_eq!(
            render(&TABLE_IO.table, &r),
            [
                format!("pg_statio_user_tables_heap_blocks_read Counter {{{l}}} 12"),
                format!("pg_statio_user_tables_tidx_blocks_hit Counter {{{l}}} 0"),
            ]
        );
    }
}

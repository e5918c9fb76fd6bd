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

use oxmon_core::{MetricFamily, ScrapeContext};

use super::{emit, Kind, ValueSpec, COUNTER, GAUGE};
use crate::target::Target;

const STAT_QUERY: &str = "SELECT current_database()::text, schemaname::text, relname::text, \
     COALESCE(seq_scan, 0)::float8, COALESCE(seq_tup_read, 0)::float8, COALESCE(idx_scan, 0)::float8, \
     COALESCE(idx_tup_fetch, 0)::float8, n_tup_ins::float8, n_tup_upd::float8, n_tup_del::float8, \
     n_tup_hot_upd::float8, n_live_tup::float8, n_dead_tup::float8, n_mod_since_analyze::float8, \
     COALESCE(extract(epoch FROM last_vacuum), 0)::float8, COALESCE(extract(epoch FROM last_autovacuum), 0)::float8, \
     COALESCE(extract(epoch FROM last_analyze), 0)::float8, COALESCE(extract(epoch FROM last_autoanalyze), 0)::float8, \
     vacuum_count::float8, autovacuum_count::float8, analyze_count::float8, autoanalyze_count::float8, \
     pg_indexes_size(relid)::float8, pg_table_size(relid)::float8 \
     FROM pg_stat_user_tables";

const STAT_VALUES: &[ValueSpec] = &[
    (
        "pg_stat_user_tables_seq_scan",
        COUNTER,
        "Number of sequential scans initiated on this table",
    ),
    (
        "pg_stat_user_tables_seq_tup_read",
        COUNTER,
        "Number of live rows fetched by sequential scans",
    ),
    (
        "pg_stat_user_tables_idx_scan",
        COUNTER,
        "Number of index scans initiated on this table",
    ),
    (
        "pg_stat_user_tables_idx_tup_fetch",
        COUNTER,
        "Number of live rows fetched by index scans",
    ),
    (
        "pg_stat_user_tables_n_tup_ins",
        COUNTER,
        "Number of rows inserted",
    ),
    (
        "pg_stat_user_tables_n_tup_upd",
        COUNTER,
        "Number of rows updated",
    ),
    (
        "pg_stat_user_tables_n_tup_del",
        COUNTER,
        "Number of rows deleted",
    ),
    (
        "pg_stat_user_tables_n_tup_hot_upd",
        COUNTER,
        "Number of rows HOT updated (i.e., with no separate index update required)",
    ),
    (
        "pg_stat_user_tables_n_live_tup",
        GAUGE,
        "Estimated number of live rows",
    ),
    (
        "pg_stat_user_tables_n_dead_tup",
        GAUGE,
        "Estimated number of dead rows",
    ),
    (
        "pg_stat_user_tables_n_mod_since_analyze",
        GAUGE,
        "Estimated number of rows changed since last analyze",
    ),
    (
        "pg_stat_user_tables_last_vacuum",
        GAUGE,
        "Last time at which this table was manually vacuumed (not counting VACUUM FULL)",
    ),
    (
        "pg_stat_user_tables_last_autovacuum",
        GAUGE,
        "Last time at which this table was vacuumed by the autovacuum daemon",
    ),
    (
        "pg_stat_user_tables_last_analyze",
        GAUGE,
        "Last time at which this table was manually analyzed",
    ),
    (
        "pg_stat_user_tables_last_autoanalyze",
        GAUGE,
        "Last time at which this table was analyzed by the autovacuum daemon",
    ),
    (
        "pg_stat_user_tables_vacuum_count",
        COUNTER,
        "Number of times this table has been manually vacuumed (not counting VACUUM FULL)",
    ),
    (
        "pg_stat_user_tables_autovacuum_count",
        COUNTER,
        "Number of times this table has been vacuumed by the autovacuum daemon",
    ),
    (
        "pg_stat_user_tables_analyze_count",
        COUNTER,
        "Number of times this table has been manually analyzed",
    ),
    (
        "pg_stat_user_tables_autoanalyze_count",
        COUNTER,
        "Number of times this table has been analyzed by the autovacuum daemon",
    ),
    (
        "pg_stat_user_tables_index_size_bytes",
        GAUGE,
        "Total disk space used by this index, in bytes",
    ),
    (
        "pg_stat_user_tables_table_size_bytes",
        GAUGE,
        "Total disk space used by this table, in bytes",
    ),
];

const STATIO_QUERY: &str = "SELECT current_database()::text, schemaname::text, relname::text, \
     COALESCE(heap_blks_read, 0)::float8, COALESCE(heap_blks_hit, 0)::float8, \
     COALESCE(idx_blks_read, 0)::float8, COALESCE(idx_blks_hit, 0)::float8, \
     COALESCE(toast_blks_read, 0)::float8, COALESCE(toast_blks_hit, 0)::float8, \
     COALESCE(tidx_blks_read, 0)::float8, COALESCE(tidx_blks_hit, 0)::float8 \
     FROM pg_statio_user_tables";

const STATIO_VALUES: &[ValueSpec] = &[
    (
        "pg_statio_user_tables_heap_blocks_read",
        COUNTER,
        "Number of disk blocks read from this table",
    ),
    (
        "pg_statio_user_tables_heap_blocks_hit",
        COUNTER,
        "Number of buffer hits in this table",
    ),
    (
        "pg_statio_user_tables_idx_blocks_read",
        COUNTER,
        "Number of disk blocks read from all indexes on this table",
    ),
    (
        "pg_statio_user_tables_idx_blocks_hit",
        COUNTER,
        "Number of buffer hits in all indexes on this table",
    ),
    (
        "pg_statio_user_tables_toast_blocks_read",
        COUNTER,
        "Number of disk blocks read from this table's TOAST table (if any)",
    ),
    (
        "pg_statio_user_tables_toast_blocks_hit",
        COUNTER,
        "Number of buffer hits in this table's TOAST table (if any)",
    ),
    (
        "pg_statio_user_tables_tidx_blocks_read",
        COUNTER,
        "Number of disk blocks read from this table's TOAST table indexes (if any)",
    ),
    (
        "pg_statio_user_tables_tidx_blocks_hit",
        COUNTER,
        "Number of buffer hits in this table's TOAST table indexes (if any)",
    ),
];

/// Collects one of the two table collectors in every database. A database
/// that fails is reported (collector success 0) without hiding the others.
pub async fn collect(
    kind: Kind,
    t: &Target,
    ctx: &ScrapeContext,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let (query, values) = match kind {
        Kind::StatUserTables => (STAT_QUERY, STAT_VALUES),
        _ => (STATIO_QUERY, STATIO_VALUES),
    };
    let dbs = t.databases(ctx).await?;
    let deadline = Target::query_deadline(ctx);
    let runs = dbs.iter().map(|(_, conn)| async move {
        let live = conn.get(deadline).await?;
        live.query(query, deadline).await
    });
    let results = futures_util::future::join_all(runs).await;
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(rows) => emit(
                &t.server,
                &["datname", "schemaname", "relname"],
                values,
                &rows,
                false,
                out,
            ),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; ").into())
    }
}

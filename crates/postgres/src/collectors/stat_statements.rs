//! `stat_statements` collector (off by default; `--collector.stat_statements`):
//! the top `--collector.stat_statements.limit` statements (default 100) by
//! total execution time from `pg_stat_statements`, so a busy server cannot
//! explode the series count. Needs the extension in the DSN's database.
//!
//! Metrics (labels `user`, `datname`, `queryid`):
//! `pg_stat_statements_calls_total`, `pg_stat_statements_seconds_total`,
//! `pg_stat_statements_rows_total`, `pg_stat_statements_block_read_seconds_total`,
//! `pg_stat_statements_block_write_seconds_total`; with
//! `--collector.stat_statements.include_query`, also
//! `pg_stat_statements_query_id{queryid,query}` (text cut to
//! `--collector.stat_statements.query_length`).

use std::borrow::Cow;

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::{ValueSpec, COUNTER};
use crate::conn::{f, s, Live};
use crate::target::Target;

const VALUES: &[ValueSpec] = &[
    (
        "pg_stat_statements_calls_total",
        COUNTER,
        "Number of times executed",
    ),
    (
        "pg_stat_statements_seconds_total",
        COUNTER,
        "Total time spent in the statement, in seconds",
    ),
    (
        "pg_stat_statements_rows_total",
        COUNTER,
        "Total number of rows retrieved or affected by the statement",
    ),
    (
        "pg_stat_statements_block_read_seconds_total",
        COUNTER,
        "Total time the statement spent reading blocks, in seconds",
    ),
    (
        "pg_stat_statements_block_write_seconds_total",
        COUNTER,
        "Total time the statement spent writing blocks, in seconds",
    ),
];

/// The three version variants of the query, built once from the flags.
#[derive(Debug, Clone)]
pub struct Queries {
    pg12: &'static str,
    pg13: &'static str,
    pg17: &'static str,
}

impl Queries {
    /// Builds the queries for a limit and query-text length.
    pub fn new(limit: u32, query_length: u32) -> Queries {
        let build = |total: &str, read: &str, write: &str| -> &'static str {
            Box::leak(
                format!(
                    "SELECT pg_get_userbyid(s.userid)::text, d.datname::text, s.queryid::text, \
                     left(s.query, {query_length})::text, s.calls::float8, ({total} / 1000.0)::float8, \
                     s.rows::float8, ({read} / 1000.0)::float8, ({write} / 1000.0)::float8 \
                     FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
                     ORDER BY {total} DESC LIMIT {limit}"
                )
                .into_boxed_str(),
            )
        };
        Queries {
            pg12: build("s.total_time", "s.blk_read_time", "s.blk_write_time"),
            pg13: build("s.total_exec_time", "s.blk_read_time", "s.blk_write_time"),
            pg17: build(
                "s.total_exec_time",
                "s.shared_blk_read_time",
                "s.shared_blk_write_time",
            ),
        }
    }
}

/// Collects the top statements.
pub async fn collect(
    t: &Target,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let q = &t.opts.stat_statements;
    let query = match live.version_num {
        v if v >= 170000 => q.pg17,
        v if v >= 130000 => q.pg13,
        _ => q.pg12,
    };
    let rows = live.query(query, deadline).await.map_err(|e| {
        format!("{e} (is the pg_stat_statements extension created in this database and preloaded?)")
    })?;
    let mut fams: Vec<MetricFamily> = VALUES
        .iter()
        .map(|(n, k, h)| MetricFamily::new(*n, *h, *k))
        .collect();
    let mut texts = MetricFamily::new(
        "pg_stat_statements_query_id",
        "SQL Query to queryid mapping",
        COUNTER,
    );
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        let labels = vec![
            (Cow::Borrowed("user"), s(row, 0)),
            (Cow::Borrowed("datname"), s(row, 1)),
            (Cow::Borrowed("queryid"), s(row, 2)),
            (Cow::Borrowed("server"), t.server.clone()),
        ];
        for (i, fam) in fams.iter_mut().enumerate() {
            let v = f(row, 4 + i);
            fam.add_owned(labels.clone(), if v.is_nan() { 0.0 } else { v });
        }
        if t.opts.stat_statements_include_query && seen.insert(s(row, 2)) {
            texts.add_owned(
                vec![
                    (Cow::Borrowed("queryid"), s(row, 2)),
                    (Cow::Borrowed("query"), s(row, 3)),
                    (Cow::Borrowed("server"), t.server.clone()),
                ],
                1.0,
            );
        }
    }
    out.extend(fams);
    if !texts.metrics.is_empty() {
        out.push(texts);
    }
    Ok(())
}

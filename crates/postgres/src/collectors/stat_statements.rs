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
use std::collections::HashSet;

use oxmon_core::collector::{BoxFuture, CollectResult};
use oxmon_core::{MetricFamily, MetricType, ScrapeContext};

use super::table::{counter, Datum, Nulls, ResultSet, Table};
use super::{Monitored, TargetCollector};
use crate::target::Target;

const STATEMENTS: Table = Table {
    labels: &["user", "datname", "queryid"],
    columns: &[
        counter(
            "calls",
            "pg_stat_statements_calls_total",
            "Number of times executed",
        )
        .nulls(Nulls::Zero),
        counter(
            "seconds",
            "pg_stat_statements_seconds_total",
            "Total time spent in the statement, in seconds",
        )
        .nulls(Nulls::Zero),
        counter(
            "rows",
            "pg_stat_statements_rows_total",
            "Total number of rows retrieved or affected by the statement",
        )
        .nulls(Nulls::Zero),
        counter(
            "block_read_seconds",
            "pg_stat_statements_block_read_seconds_total",
            "Total time the statement spent reading blocks, in seconds",
        )
        .nulls(Nulls::Zero),
        counter(
            "block_write_seconds",
            "pg_stat_statements_block_write_seconds_total",
            "Total time the statement spent writing blocks, in seconds",
        )
        .nulls(Nulls::Zero),
    ],
};

/// The collector's options: the query, per server version, built once
/// from the flags.
#[derive(Debug, Clone)]
pub struct StatStatements {
    pg12: &'static str,
    pg13: &'static str,
    pg17: &'static str,
    include_query: bool,
}

impl StatStatements {
    /// Builds the queries for a limit and query-text length; with
    /// `include_query` the query text mapping is emitted too.
    pub fn new(limit: u32, query_length: u32, include_query: bool) -> StatStatements {
        let build = |total: &str, read: &str, write: &str| -> &'static str {
            Box::leak(
                format!(
                    "SELECT pg_get_userbyid(s.userid)::text AS \"user\", d.datname::text, \
                     s.queryid::text, left(s.query, {query_length})::text AS query, \
                     s.calls::float8, ({total} / 1000.0)::float8 AS seconds, s.rows::float8, \
                     ({read} / 1000.0)::float8 AS block_read_seconds, \
                     ({write} / 1000.0)::float8 AS block_write_seconds \
                     FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
                     ORDER BY {total} DESC LIMIT {limit}"
                )
                .into_boxed_str(),
            )
        };
        StatStatements {
            pg12: build("s.total_time", "s.blk_read_time", "s.blk_write_time"),
            pg13: build("s.total_exec_time", "s.blk_read_time", "s.blk_write_time"),
            pg17: build(
                "s.total_exec_time",
                "s.shared_blk_read_time",
                "s.shared_blk_write_time",
            ),
            include_query,
        }
    }
}

impl TargetCollector for StatStatements {
    type State = ();

    fn collect<'a>(
        &'a self,
        m: &'a Monitored,
        _: &'a (),
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let t = &m.target;
            let live = t.main(ctx).await?;
            let query = match live.version_num {
                v if v >= 170000 => self.pg17,
                v if v >= 130000 => self.pg13,
                _ => self.pg12,
            };
            let rows = live
                .query(query, Target::query_deadline(ctx))
                .await
                .map_err(|e| {
                    format!("{e} (is the pg_stat_statements extension created in this database and preloaded?)")
                })?;
            let result = ResultSet::from_rows(&rows)?;
            STATEMENTS.families(&t.server, &result, out)?;
            if self.include_query {
                out.extend(query_texts(&t.server, &result));
            }
            Ok(())
        })
    }
}

/// `pg_stat_statements_query_id{queryid,query}`: one series per query id
/// (the same statement run by several users or in several databases has
/// one text).
fn query_texts(server: &str, result: &ResultSet) -> Option<MetricFamily> {
    let (id, text) = (result.index("queryid")?, result.index("query")?);
    let mut family = MetricFamily::new(
        "pg_stat_statements_query_id",
        "SQL Query to queryid mapping",
        MetricType::Counter,
    );
    let mut seen = HashSet::new();
    let text_of = |d: &Datum| match d {
        Datum::Text(t) => t.clone(),
        _ => String::new(),
    };
    for row in &result.rows {
        let id = text_of(&row[id]);
        if !seen.contains(&id) {
            seen.insert(id.clone());
            family.add_owned(
                vec![
                    (Cow::Borrowed("queryid"), id.into()),
                    (Cow::Borrowed("query"), text_of(&row[text]).into()),
                    (Cow::Borrowed("server"), server.into()),
                ],
                1.0,
            );
        }
    }
    Some(family)
}

#[cfg(test)]
mod tests {
    use super::super::table::testing::{lines, n, render, result, t};
    use super::*;

    fn two_users_one_statement() -> ResultSet {
        result(
            &[
                "user",
                "datname",
                "queryid",
                "query",
                "calls",
                "seconds",
                "rows",
                "block_read_seconds",
                "block_write_seconds",
            ],
            vec![
                vec![
                    t("app"),
                    t("shop"),
                    t("-42"),
                    t("SELECT 1"),
                    n(10.0),
                    n(0.5),
                    n(10.0),
                    n(0.0),
                    Datum::Null,
                ],
                vec![
                    t("report"),
                    t("shop"),
                    t("-42"),
                    t("SELECT 1"),
                    n(1.0),
                    n(0.25),
                    n(1.0),
                    n(0.0),
                    n(0.0),
                ],
            ],
        )
    }

    #[test]
    fn counters_per_user_database_and_query_id() {
        let lines = render(&STATEMENTS, &two_users_one_statement());
        let app = "datname=shop,queryid=-42,server=h:5432,user=app";
        assert!(lines.contains(&format!(
            "pg_stat_statements_calls_total Counter {{{app}}} 10"
        )));
        assert!(lines.contains(&format!(
            "pg_stat_statements_block_write_seconds_total Counter {{{app}}} 0"
        )));
        assert_eq!(lines.len(), 10, "{lines:?}");
    }

    #[test]
    fn one_query_text_per_query_id() {
        let family = query_texts("h:5432", &two_users_one_statement()).unwrap();
        assert_eq!(
            lines(&[family]),
            ["pg_stat_statements_query_id Counter {query=SELECT 1,queryid=-42,server=h:5432} 1"]
        );
    }

    #[test]
    fn version_variants_name_the_renamed_columns() {
        let s = StatStatements::new(5, 20, false);
        assert!(s.pg12.contains("s.total_time") && s.pg12.contains("LIMIT 5"));
        assert!(s.pg13.contains("s.total_exec_time") && s.pg13.contains("left(s.query, 20)"));
        assert!(s.pg17.contains("s.shared_blk_read_time"));
    }
}

//! Query-table collectors: a collector that is SQL (a variant per server
//! version) and a table from result columns to metric families, run by one
//! runner. Most built-in collectors are only that; their modules hold the
//! SQL next to the table it feeds, and this module holds everything else.
//!
//! Columns are found by name, so a version's SQL may leave out a column
//! the server does not have: the metric it feeds is then not emitted. A
//! column's name is its SQL output name (`numbackends::float8` is named
//! `numbackends`; computed columns need `AS`). Label columns are text,
//! value columns float8; every series also gets `server="host:port"`.
//!
//! The mapping works on a [`ResultSet`], a result detached from the driver,
//! so each collector's table is unit-tested by feeding it rows.

use std::borrow::Cow;

use oxmon_core::collector::{BoxFuture, CollectResult};
use oxmon_core::metrics::{LabelName, LabelValue};
use oxmon_core::{MetricFamily, MetricType, ScrapeContext};
use tokio::time::Instant;
use tokio_postgres::types::Type;

use super::{instance, joined, Monitored, TargetCollector};
use crate::conn::{Error, Live};
use crate::target::Target;

/// A result that does not fit the table reading it (a mistake in the SQL).
#[derive(Debug, thiserror::Error)]
pub enum ColumnError {
    /// A label column the table needs is not in the result.
    #[error("the result has no column {0:?}")]
    Missing(&'static str),
    /// A column holds another type than the table reads.
    #[error("column {column:?} is {found}, not {wanted}")]
    WrongType {
        /// The column name.
        column: String,
        /// What it holds.
        found: String,
        /// What the table reads from it.
        wanted: &'static str,
    },
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// SQL NULL.
    Null,
    /// A text column.
    Text(String),
    /// A float8 column.
    Number(f64),
}

/// Query results as column names and rows of [`Datum`]s.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultSet {
    /// Column names, in result order.
    pub columns: Vec<String>,
    /// Rows, one datum per column.
    pub rows: Vec<Vec<Datum>>,
}

impl ResultSet {
    /// Reads driver rows; built-in queries return only text and float8.
    pub fn from_rows(rows: &[tokio_postgres::Row]) -> Result<ResultSet, ColumnError> {
        let Some(first) = rows.first() else {
            return Ok(ResultSet::default());
        };
        let columns: Vec<String> = first
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(columns.len());
            for (i, column) in row.columns().iter().enumerate() {
                let wrong_type = || ColumnError::WrongType {
                    column: column.name().to_owned(),
                    found: column.type_().to_string(),
                    wanted: "text or float8",
                };
                let datum = match *column.type_() {
                    Type::FLOAT8 => row
                        .try_get::<_, Option<f64>>(i)
                        .map_err(|_| wrong_type())?
                        .map_or(Datum::Null, Datum::Number),
                    Type::TEXT | Type::NAME | Type::VARCHAR => row
                        .try_get::<_, Option<String>>(i)
                        .map_err(|_| wrong_type())?
                        .map_or(Datum::Null, Datum::Text),
                    _ => return Err(wrong_type()),
                };
                values.push(datum);
            }
            out.push(values);
        }
        Ok(ResultSet { columns, rows: out })
    }

    /// The position of a column.
    pub fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// A float8 column of the first row (`None` when absent or NULL).
    pub fn first_number(&self, column: &str) -> Option<f64> {
        match self.rows.first()?.get(self.index(column)?)? {
            Datum::Number(v) => Some(*v),
            _ => None,
        }
    }

    /// Keeps the rows whose text column `column` passes `keep`.
    pub fn retain_by_text(&mut self, column: &str, keep: impl Fn(&str) -> bool) {
        let Some(i) = self.index(column) else { return };
        self.rows.retain(|row| match &row[i] {
            Datum::Text(t) => keep(t),
            _ => keep(""),
        });
    }

    fn text(&self, row: usize, column: usize) -> Result<String, ColumnError> {
        match &self.rows[row][column] {
            Datum::Text(t) => Ok(t.clone()),
            Datum::Null => Ok(String::new()),
            Datum::Number(_) => Err(self.wrong_type(column, "float8", "text")),
        }
    }

    fn number(&self, row: usize, column: usize) -> Result<Option<f64>, ColumnError> {
        match &self.rows[row][column] {
            Datum::Number(v) => Ok(Some(*v)),
            Datum::Null => Ok(None),
            Datum::Text(_) => Err(self.wrong_type(column, "text", "float8")),
        }
    }

    fn wrong_type(&self, column: usize, found: &str, wanted: &'static str) -> ColumnError {
        ColumnError::WrongType {
            column: self.columns[column].clone(),
            found: found.to_owned(),
            wanted,
        }
    }
}

/// What a NULL value becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    /// A NaN sample, as postgres_exporter writes an unknown value.
    NaN,
    /// No sample.
    Skip,
    /// 0.
    Zero,
}

/// One metric family fed by one value column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The result column it reads.
    pub column: &'static str,
    /// The family name.
    pub family: &'static str,
    /// The family type.
    pub kind: MetricType,
    /// The family help.
    pub help: &'static str,
    /// Its label columns, when not the table's.
    pub labels: Option<&'static [&'static str]>,
    /// What a NULL becomes.
    pub nulls: Nulls,
}

const fn column(
    column: &'static str,
    family: &'static str,
    kind: MetricType,
    help: &'static str,
) -> Column {
    Column {
        column,
        family,
        kind,
        help,
        labels: None,
        nulls: Nulls::NaN,
    }
}

/// A gauge fed by `column` (NULL: NaN; the table's labels).
pub const fn gauge(column_name: &'static str, family: &'static str, help: &'static str) -> Column {
    column(column_name, family, MetricType::Gauge, help)
}

/// A counter fed by `column` (NULL: NaN; the table's labels).
pub const fn counter(
    column_name: &'static str,
    family: &'static str,
    help: &'static str,
) -> Column {
    column(column_name, family, MetricType::Counter, help)
}

/// An untyped family fed by `column` (NULL: NaN; the table's labels).
pub const fn untyped(
    column_name: &'static str,
    family: &'static str,
    help: &'static str,
) -> Column {
    column(column_name, family, MetricType::Untyped, help)
}

impl Column {
    /// The same column with its own label columns.
    pub const fn labels(self, labels: &'static [&'static str]) -> Column {
        Column {
            labels: Some(labels),
            ..self
        }
    }

    /// The same column with another NULL rule.
    pub const fn nulls(self, nulls: Nulls) -> Column {
        Column { nulls, ..self }
    }
}

/// How the rows of one query become families: every value column is a
/// family, every row a series of each.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The label columns of every family (unless a column names its own).
    pub labels: &'static [&'static str],
    /// The value columns.
    pub columns: &'static [Column],
}

impl Table {
    /// Appends the families of `result` to `out`; a value column missing
    /// from the result is skipped, a missing label column is an error.
    pub fn families(
        &self,
        server: &str,
        result: &ResultSet,
        out: &mut Vec<MetricFamily>,
    ) -> Result<(), ColumnError> {
        if result.rows.is_empty() {
            return Ok(());
        }
        let label_sets = |labels: &[&'static str]| -> Result<_, ColumnError> {
            let positions = labels
                .iter()
                .map(|l| {
                    result
                        .index(l)
                        .map(|i| (*l, i))
                        .ok_or(ColumnError::Missing(l))
                })
                .collect::<Result<Vec<_>, _>>()?;
            (0..result.rows.len())
                .map(|row| {
                    let mut set: Vec<(LabelName, LabelValue)> =
                        Vec::with_capacity(labels.len() + 1);
                    for (name, i) in &positions {
                        set.push((Cow::Borrowed(*name), result.text(row, *i)?.into()));
                    }
                    set.push((Cow::Borrowed("server"), server.into()));
                    Ok(set)
                })
                .collect::<Result<Vec<_>, ColumnError>>()
        };
        let table_labels = label_sets(self.labels)?;
        for c in self.columns {
            let Some(at) = result.index(c.column) else {
                continue;
            };
            let own_labels = match c.labels {
                Some(labels) => Some(label_sets(labels)?),
                None => None,
            };
            let labels = own_labels.as_ref().unwrap_or(&table_labels);
            let mut family = MetricFamily::new(c.family, c.help, c.kind);
            for (row, set) in labels.iter().enumerate() {
                let value = match (result.number(row, at)?, c.nulls) {
                    (Some(v), _) => v,
                    (None, Nulls::NaN) => f64::NAN,
                    (None, Nulls::Zero) => 0.0,
                    (None, Nulls::Skip) => continue,
                };
                family.add_owned(set.clone(), value);
            }
            out.push(family);
        }
        Ok(())
    }
}

/// The SQL of a query from one server version on.
#[derive(Debug, Clone, Copy)]
pub struct Sql {
    /// The first `server_version_num` it is for.
    pub since: u32,
    /// The statement.
    pub text: &'static str,
}

/// One query of a collector and the table its rows feed.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    /// Its SQL per server version, oldest first; servers older than the
    /// first skip the query.
    pub sql: &'static [Sql],
    /// The table its rows feed.
    pub table: Table,
    /// Whether rows of a `datname` left out by `--include-databases` /
    /// `--exclude-databases` are dropped.
    pub filter_databases: bool,
}

impl Query {
    /// The statement for a server version, if any.
    pub fn sql_for(&self, version_num: u32) -> Option<&'static str> {
        self.sql
            .iter()
            .rev()
            .find(|s| s.since <= version_num)
            .map(|s| s.text)
    }
}

/// Where a query-table collector's rows come from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// These queries, concurrently, on the DSN's database.
    Main(&'static [Query]),
    /// These queries in every database the target visits.
    EveryDatabase(&'static [Query]),
    /// The instance row shared by several collectors (see `instance.rs`).
    Instance(Table),
}

/// The one runner of every query-table collector.
pub struct QueryTable(pub &'static Source);

impl TargetCollector for QueryTable {
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
            let deadline = Target::query_deadline(ctx);
            match self.0 {
                Source::Instance(table) => {
                    let row = instance::row(m, ctx).await?;
                    table
                        .families(&t.server, &row, out)
                        .map_err(|e| format!("{}: instance row: {e}", t.server))?;
                    Ok(())
                }
                Source::Main(queries) => {
                    let live = t.main(ctx).await?;
                    joined(run(queries, t, &live, deadline, out).await)
                }
                Source::EveryDatabase(queries) => {
                    let dbs = t.databases(ctx).await?;
                    let runs = dbs.iter().map(|(_, conn)| async move {
                        let mut fams = Vec::new();
                        let errors = match conn.get(deadline).await {
                            Ok(live) => run(queries, t, &live, deadline, &mut fams).await,
                            Err(e) => vec![e.to_string()],
                        };
                        (fams, errors)
                    });
                    let mut errors = Vec::new();
                    for (fams, errs) in futures_util::future::join_all(runs).await {
                        out.extend(fams);
                        errors.extend(errs);
                    }
                    joined(errors)
                }
            }
        })
    }
}

/// Runs `queries` concurrently on one connection; a query that fails is
/// reported without hiding the others' families.
async fn run(
    queries: &'static [Query],
    t: &Target,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> Vec<String> {
    let runs = queries.iter().filter_map(|q| {
        let sql = q.sql_for(live.version_num)?;
        Some(async move {
            let rows = live.query(sql, deadline).await?;
            let mut result = ResultSet::from_rows(&rows)?;
            if q.filter_databases {
                result.retain_by_text("datname", |db| t.includes_database(db));
            }
            Ok::<_, Error>((q, result))
        })
    });
    let mut errors = Vec::new();
    for r in futures_util::future::join_all(runs).await {
        let mapped = r.and_then(|(q, result)| {
            q.table
                .families(&t.server, &result, out)
                .map_err(|e| format!("{}: {e}", t.server).into())
        });
        if let Err(e) = mapped {
            errors.push(e.to_string());
        }
    }
    errors
}

/// Helpers for the collectors' table tests.
#[cfg(test)]
pub mod testing {
    use oxmon_core::metrics::Value;
    use oxmon_core::MetricFamily;

    use super::{Datum, ResultSet, Table};

    /// A text datum.
    pub fn t(s: &str) -> Datum {
        Datum::Text(s.to_owned())
    }

    /// A number datum.
    pub fn n(v: f64) -> Datum {
        Datum::Number(v)
    }

    /// A result set from column names and rows.
    pub fn result(columns: &[&str], rows: Vec<Vec<Datum>>) -> ResultSet {
        ResultSet {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        }
    }

    /// The table's families for `result` as `name type {labels} value`
    /// lines, labels sorted, `server` included.
    pub fn render(table: &Table, result: &ResultSet) -> Vec<String> {
        let mut out = Vec::new();
        table.families("h:5432", result, &mut out).unwrap();
        lines(&out)
    }

    /// The output column names of a built-in `SELECT … FROM` statement:
    /// an `AS` name, else the column a cast or qualified name reads.
    pub fn output_columns(sql: &str) -> Vec<String> {
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let body = sql.strip_prefix("SELECT ").expect("a SELECT");
        let (mut depth, mut quoted, mut start) = (0, false, 0);
        let mut items = Vec::new();
        for (i, c) in body.char_indices() {
            match c {
                '\'' => quoted = !quoted,
                _ if quoted => {}
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&body[start..i]);
                    start = i + 1;
                }
                ' ' if depth == 0 && body[i..].starts_with(" FROM ") => {
                    items.push(&body[start..i]);
                    break;
                }
                _ => {}
            }
        }
        items
            .iter()
            .map(|item| {
                let item = item.trim();
                let name = match item.rsplit_once(" AS ") {
                    Some((_, alias)) => alias,
                    None => {
                        let column = item.split("::").next().unwrap_or(item);
                        column.rsplit('.').next().unwrap_or(column)
                    }
                };
                name.trim_matches('"').to_owned()
            })
            .collect()
    }

    /// What does not fit between `tables` and the SQL variants feeding
    /// them: a label column a variant lacks, a column no table reads (but
    /// `also_read`), a value column no variant returns.
    pub fn mismatches(tables: &[Table], also_read: &[&str], variants: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        let outputs: Vec<Vec<String>> = variants.iter().map(|v| output_columns(v)).collect();
        for (sql, out) in variants.iter().zip(&outputs) {
            let has = |c: &str| out.iter().any(|o| o == c);
            for table in tables {
                let mut labels: Vec<&str> = table.labels.to_vec();
                for c in table.columns.iter().filter(|c| has(c.column)) {
                    labels.extend(c.labels.unwrap_or_default());
                }
                for l in labels.into_iter().filter(|l| !has(l)) {
                    problems.push(format!("label column {l:?} missing from {sql}"));
                }
            }
            for o in out {
                let read = also_read.contains(&o.as_str())
                    || tables.iter().any(|t| {
                        t.labels.contains(&o.as_str())
                            || t.columns.iter().any(|c| {
                                c.column == o || c.labels.unwrap_or_default().contains(&o.as_str())
                            })
                    });
                if !read {
                    problems.push(format!("column {o:?} is read by no table: {sql}"));
                }
            }
        }
        for c in tables.iter().flat_map(|t| t.columns) {
            if !outputs.iter().flatten().any(|o| o == c.column) {
                problems.push(format!(
                    "no SQL returns column {:?} ({})",
                    c.column, c.family
                ));
            }
        }
        problems
    }

    /// Families as `name type {labels} value` lines.
    pub fn lines(families: &[MetricFamily]) -> Vec<String> {
        let mut lines = Vec::new();
        for f in families {
            for m in &f.metrics {
                let mut labels: Vec<String> =
                    m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                labels.sort();
                let value = match m.value {
                    Value::Single(v) => v,
                    _ => panic!("{} is not a single value", f.name),
                };
                lines.push(format!(
                    "{} {:?} {{{}}} {value}",
                    f.name,
                    f.kind,
                    labels.join(",")
                ));
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{n, render, result, t};
    use super::*;

    const SLOTS: Table = Table {
        labels: &["slot"],
        columns: &[
            gauge("lsn", "x_lsn", "LSN"),
            counter("bytes", "x_bytes_total", "Bytes").nulls(Nulls::Skip),
            untyped("bytes", "x_bytes_or_zero", "Bytes").nulls(Nulls::Zero),
            gauge("lsn", "x_legacy_lsn", "LSN").labels(&["slot", "db"]),
            gauge("added_later", "x_new", "Only on new servers"),
        ],
    };

    #[test]
    fn maps_rows_by_column_name_with_null_rules_and_label_sets() {
        let rows = result(
            &["bytes", "db", "slot", "lsn"],
            vec![
                vec![n(7.0), t("app"), t("a"), n(1.5)],
                vec![Datum::Null, Datum::Null, t("b"), Datum::Null],
            ],
        );
        let lines = render(&SLOTS, &rows);
        assert_eq!(
            lines,
            [
                "x_lsn Gauge {server=h:5432,slot=a} 1.5",
                "x_lsn Gauge {server=h:5432,slot=b} NaN",
                "x_bytes_total Counter {server=h:5432,slot=a} 7",
                "x_bytes_or_zero Untyped {server=h:5432,slot=a} 7",
                "x_bytes_or_zero Untyped {server=h:5432,slot=b} 0",
                "x_legacy_lsn Gauge {db=app,server=h:5432,slot=a} 1.5",
                "x_legacy_lsn Gauge {db=,server=h:5432,slot=b} NaN",
            ]
        );
    }

    #[test]
    fn mistakes_in_the_sql_are_errors_naming_the_column() {
        let no_label = result(&["lsn"], vec![vec![n(1.0)]]);
        let e = SLOTS.families("h", &no_label, &mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "the result has no column \"slot\"");
        let text_value = result(&["slot", "lsn"], vec![vec![t("a"), t("1")]]);
        let e = SLOTS
            .families("h", &text_value, &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.to_string(), "column \"lsn\" is text, not float8");
        let number_label = result(&["slot", "lsn"], vec![vec![n(1.0), n(1.0)]]);
        let e = SLOTS
            .families("h", &number_label, &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.to_string(), "column \"slot\" is float8, not text");
    }

    #[test]
    fn no_rows_no_families_even_without_columns() {
        let mut out = Vec::new();
        SLOTS
            .families("h", &ResultSet::default(), &mut out)
            .unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn picks_the_newest_sql_the_server_has() {
        const Q: Query = Query {
            sql: &[
                Sql {
                    since: 120000,
                    text: "old",
                },
                Sql {
                    since: 140000,
                    text: "new",
                },
            ],
            table: SLOTS,
            filter_databases: false,
        };
        assert_eq!(Q.sql_for(110000), None);
        assert_eq!(Q.sql_for(120000), Some("old"));
        assert_eq!(Q.sql_for(139999), Some("old"));
        assert_eq!(Q.sql_for(170002), Some("new"));
    }

    #[test]
    fn reads_output_column_names_and_finds_mismatches() {
        use super::testing::{mismatches, output_columns};
        let sql = "SELECT d.datname::text, COALESCE(x, ',(') AS \"user\", \
                   (CASE WHEN a THEN 1 END)::float8 AS one, active::int::float8, \
                   extract(epoch FROM now())::float8 AS now FROM t d";
        assert_eq!(
            output_columns(sql),
            ["datname", "user", "one", "active", "now"]
        );
        const TABLE: Table = Table {
            labels: &["datname"],
            columns: &[gauge("one", "x_one", "One"), gauge("two", "x_two", "Two")],
        };
        assert_eq!(
            mismatches(&[TABLE], &["now", "active"], &[sql]),
            [
                format!("column \"user\" is read by no table: {sql}"),
                "no SQL returns column \"two\" (x_two)".to_string(),
            ]
        );
    }

    #[test]
    fn filters_rows_and_reads_the_first_number() {
        let mut r = result(
            &["datname", "v"],
            vec![vec![t("a"), n(1.0)], vec![t("b"), n(2.0)]],
        );
        r.retain_by_text("datname", |d| d != "a");
        assert_eq!(r.rows, vec![vec![t("b"), n(2.0)]]);
        assert_eq!(r.first_number("v"), Some(2.0));
        assert_eq!(r.first_number("datname"), None);
        assert_eq!(r.first_number("nope"), None);
    }
}

//! lnstat: per-CPU network cache statistics, as `lnstat(8)` shows them.
//!
//! Source: every file of `<procfs>/net/stat/` (`arp_cache`, `ndisc_cache`,
//! `nf_conntrack`, `rt_cache` …): a header line of column names, then one
//! line of hexadecimal values per CPU. Metrics: counters
//! `node_lnstat_<column>_total{subsystem,cpu}` (`subsystem` is the file
//! name, `cpu` the line's position). A line whose column count differs
//! from the header's, or that is not hexadecimal, is left out and fails
//! the collector after the rest is exported. Off by default; no flags.
//! Without the directory it reports nothing; the file list is re-read once
//! a minute.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{list_dir, Refreshed};
use crate::field_names::{intern_pair, name_part};
use crate::file_cache::{is_missing, read_optional, FileCache};
use crate::malformed::Malformed;

/// One `net/stat` file: column names and one row of values per CPU.
#[derive(Debug, Default, PartialEq)]
pub struct NetStatFile<'a> {
    /// Column names of the header line.
    pub columns: Vec<&'a str>,
    /// Values, one row per CPU, each as long as `columns`.
    pub rows: Vec<Vec<u64>>,
}

/// Parses one `net/stat/<name>` file, and what did not parse.
pub fn parse_net_stat(text: &str) -> (NetStatFile<'_>, Malformed) {
    let mut bad = Malformed::default();
    let mut lines = text.lines();
    let columns: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    if columns.is_empty() {
        bad.note("no header line");
        return (NetStatFile::default(), bad);
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let Ok(row) = line
            .split_whitespace()
            .map(|c| u64::from_str_radix(c, 16))
            .collect::<Result<Vec<u64>, _>>()
        else {
            bad.line(i + 2, line, "a value is not hexadecimal");
            continue;
        };
        if row.len() != columns.len() {
            bad.line(
                i + 2,
                line,
                format!("{} values for {} columns", row.len(), columns.len()),
            );
            continue;
        }
        rows.push(row);
    }
    (NetStatFile { columns, rows }, bad)
}

struct Lnstat {
    dir: PathBuf,
    files: Refreshed<Vec<String>>,
    cache: FileCache,
}

impl SyncCollector for Lnstat {
    fn name(&self) -> &'static str {
        "lnstat"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let files = self.files.get(|| match list_dir(&self.dir) {
            Ok(names) => Ok(names),
            Err(e) if is_missing(&e) => Ok(Vec::new()),
            Err(e) => Err(format!("listing {}: {e}", self.dir.display()).into()),
        })?;
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        let mut result = Ok(());
        for file in files.iter() {
            let path = self.dir.join(file);
            if !read_optional(&mut scope, &path, &mut buf, "lnstat")? {
                self.files.invalidate();
                continue;
            }
            let (stat, bad) = parse_net_stat(&buf);
            for (col, column) in stat.columns.iter().enumerate() {
                let (name, help) = intern_pair("lnstat", column, |c| {
                    (
                        format!("node_lnstat_{}_total", name_part(c)),
                        "linux network cache stats".to_string(),
                    )
                });
                let mut fam = MetricFamily::counter(name, help);
                for (cpu, row) in stat.rows.iter().enumerate() {
                    let cpu = cpu.to_string();
                    fam.add(&[("subsystem", file), ("cpu", &cpu)], row[col] as f64);
                }
                out.push(fam);
            }
            if let Err(e) = bad.into_result(&path) {
                result = Err(e);
            }
        }
        result
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Lnstat {
        dir: ctx.paths.proc("net/stat"),
        files: Refreshed::default(),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_hex_rows() {
        let (s, bad) =
            parse_net_stat("entries  allocs hits\n0000000a 00000001 ff\n0000000a 2 10\n");
        assert!(bad.is_empty());
        assert_eq!(s.columns, ["entries", "allocs", "hits"]);
        assert_eq!(s.rows, [vec![10, 1, 255], vec![10, 2, 16]]);
    }

    #[test]
    fn short_or_non_hex_rows_are_reported() {
        let (s, bad) = parse_net_stat("a b\n1 2 3\nx y\n4 5\n");
        assert_eq!(s.rows, [vec![4, 5]]);
        assert_eq!(bad.count(), 2);
        let (s, bad) = parse_net_stat("");
        assert!(s.columns.is_empty() && !bad.is_empty());
    }
}

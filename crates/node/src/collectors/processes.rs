//! processes: process and thread counts by state, and their limits.
//!
//! Source: `<procfs>/<pid>/stat` of every process (state, thread count),
//! `<procfs>/<pid>/task/<tid>/stat` of every thread (its state),
//! `<procfs>/sys/kernel/threads-max` and `<procfs>/sys/kernel/pid_max`.
//! Metrics (gauges): `node_processes_pids`, `node_processes_threads`,
//! `node_processes_state{state}`, `node_processes_threads_state{thread_state}`,
//! `node_processes_max_threads`, `node_processes_max_processes`. A process
//! or thread that exits during the walk is skipped; a `stat` line that
//! does not parse fails the collector. The walk reads one file per thread,
//! so it runs on its own blocking lane. Off by default; no flags. Without
//! a procfs it reports nothing.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::blocking::{blocking_collector, BlockingCollector};
use oxmon_core::collector::{CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::list_dir;
use crate::file_cache::{is_missing, read_number, read_regular, FileCache, OnLease};

/// The most a `stat` file is read of (a few hundred bytes in practice).
const STAT_LIMIT: usize = 64 << 10;

/// State and thread count of a `<pid>/stat` line: the fields after the
/// command name, whose parentheses may enclose spaces and parentheses.
pub fn parse_stat(text: &str) -> Option<(&str, u64)> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?;
    // num_threads is the 20th field of the line, the 18th after the name.
    let threads = fields.nth(16)?.parse().ok()?;
    Some((state, threads))
}

/// ENOENT or ESRCH: the process or thread exited during the walk.
fn vanished(e: &io::Error) -> bool {
    is_missing(e) || e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error())
}

/// What one walk of procfs found.
#[derive(Debug, Default, PartialEq)]
pub struct Walk {
    /// Processes seen.
    pub pids: u64,
    /// Sum of their thread counts.
    pub threads: u64,
    /// Processes by state.
    pub states: BTreeMap<String, u64>,
    /// Threads by state.
    pub thread_states: BTreeMap<String, u64>,
}

/// Reads a `stat` file: `Ok(None)` when the task is gone.
fn read_stat(path: &Path) -> Result<Option<String>, String> {
    match read_regular(path, OnLease::Fail, STAT_LIMIT) {
        Ok((bytes, _)) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if vanished(&e) => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Walks the processes and threads under `procfs`; `Ok(None)` when there
/// is no procfs there.
pub fn walk(procfs: &Path) -> Result<Option<Walk>, String> {
    let names = match list_dir(procfs) {
        Ok(n) => n,
        Err(e) if is_missing(&e) => return Ok(None),
        Err(e) => return Err(format!("listing {}: {e}", procfs.display())),
    };
    let mut w = Walk::default();
    for pid in names
        .iter()
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
    {
        let dir = procfs.join(pid);
        let stat_path = dir.join("stat");
        let Some(text) = read_stat(&stat_path)? else {
            continue;
        };
        let (state, threads) = parse_stat(&text)
            .ok_or_else(|| format!("{}: unexpected content", stat_path.display()))?;
        w.pids += 1;
        w.threads += threads;
        *w.states.entry(state.to_string()).or_default() += 1;
        let tasks = match list_dir(&dir.join("task")) {
            Ok(t) => t,
            Err(e) if vanished(&e) => continue,
            Err(e) => return Err(format!("listing {}/task: {e}", dir.display())),
        };
        for tid in tasks
            .iter()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            if tid == pid {
                *w.thread_states.entry(state.to_string()).or_default() += 1;
                continue;
            }
            let path = dir.join("task").join(tid).join("stat");
            let Some(text) = read_stat(&path)? else {
                continue;
            };
            let (state, _) = parse_stat(&text)
                .ok_or_else(|| format!("{}: unexpected content", path.display()))?;
            *w.thread_states.entry(state.to_string()).or_default() += 1;
        }
    }
    Ok(Some(w))
}

struct Processes {
    procfs: PathBuf,
    threads_max: PathBuf,
    pid_max: PathBuf,
    cache: FileCache,
}

impl BlockingCollector for Processes {
    type Found = ();

    fn name(&self) -> &'static str {
        "processes"
    }

    fn check(&self, _: &ScrapeContext) -> Result<Option<()>, oxmon_core::collector::CollectError> {
        Ok(Some(()))
    }

    fn collect(&self, _: &ScrapeContext, _: (), out: &mut Vec<MetricFamily>) -> CollectResult {
        let Some(w) = walk(&self.procfs)? else {
            return Ok(());
        };
        out.push(oxmon_core::gauge(
            "node_processes_pids",
            "Number of PIDs",
            w.pids as f64,
        ));
        out.push(oxmon_core::gauge(
            "node_processes_threads",
            "Allocated threads in system",
            w.threads as f64,
        ));
        let mut states =
            MetricFamily::gauge("node_processes_state", "Number of processes in each state.");
        for (s, n) in &w.states {
            states.add(&[("state", s)], *n as f64);
        }
        let mut thread_states = MetricFamily::gauge(
            "node_processes_threads_state",
            "Number of threads in each state.",
        );
        for (s, n) in &w.thread_states {
            thread_states.add(&[("thread_state", s)], *n as f64);
        }
        out.extend([states, thread_states]);
        let mut scope = self.cache.scope();
        if let Some(v) = read_number(&mut scope, &self.threads_max, "processes")? {
            out.push(oxmon_core::gauge(
                "node_processes_max_threads",
                "Limit of threads in the system",
                v,
            ));
        }
        if let Some(v) = read_number(&mut scope, &self.pid_max, "processes")? {
            out.push(oxmon_core::gauge(
                "node_processes_max_processes",
                "Number of max PIDs limit",
                v,
            ));
        }
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(blocking_collector(Processes {
        procfs: ctx.paths.procfs.clone(),
        threads_max: ctx.paths.proc("sys/kernel/threads-max"),
        pid_max: ctx.paths.proc("sys/kernel/pid_max"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_odd_command_name() {
        let line = "42 (a) b (c)) R 1 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 7 0 29 1 2 3\n";
        assert_eq!(parse_stat(line), Some(("R", 7)));
        assert_eq!(parse_stat("1 (x) S 0 1"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn walks_processes_and_threads() {
        let dir = tempfile::tempdir().unwrap();
        let stat = |state: &str, threads: u32| {
            format!("1 (x) {state} 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 {threads} 0 29 1 2\n")
        };
        for (pid, state, threads) in [("1", "S", 1), ("20", "R", 2)] {
            std::fs::create_dir_all(dir.path().join(pid)).unwrap();
            std::fs::write(dir.path().join(pid).join("stat"), stat(state, threads)).unwrap();
        }
        for (tid, state) in [("20", "R"), ("21", "D")] {
            let t = dir.path().join("20/task").join(tid);
            std::fs::create_dir_all(&t).unwrap();
            std::fs::write(t.join("stat"), stat(state, 2)).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("sys")).unwrap();
        let w = walk(dir.path()).unwrap().unwrap();
        assert_eq!((w.pids, w.threads), (2, 3));
        assert_eq!(w.states.get("S"), Some(&1));
        assert_eq!(w.thread_states.get("D"), Some(&1));
        assert_eq!(w.thread_states.get("R"), Some(&1));
        assert_eq!(walk(&dir.path().join("none")).unwrap(), None);
        std::fs::write(dir.path().join("1/stat"), "garbage").unwrap();
        assert!(walk(dir.path()).is_err());
    }
}

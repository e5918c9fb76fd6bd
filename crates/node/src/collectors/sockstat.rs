//! sockstat: socket counts per protocol.
//!
//! Source: `<procfs>/net/sockstat` and `<procfs>/net/sockstat6`.
//! Metrics (gauges): `node_sockstat_sockets_used`,
//! `node_sockstat_<PROTO>_<field>` for every field of every protocol line
//! (`node_sockstat_TCP_inuse`, `node_sockstat_TCP6_inuse`, …), and
//! `node_sockstat_<PROTO>_mem_bytes` (the `mem` field is in pages).
//! On by default; no flags. A missing file reports nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::FileCache;
use crate::paths::Paths;

/// One `PROTO: key value key value …` line.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtoLine<'a> {
    /// Protocol (`TCP`, `UDP6`, `sockets`).
    pub proto: &'a str,
    /// `(field, value)` pairs in file order.
    pub fields: Vec<(&'a str, f64)>,
}

/// Parses sockstat text; lines that are not `name: key value …` pairs are
/// skipped.
pub fn parse_sockstat(text: &str) -> Vec<ProtoLine<'_>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((proto, rest)) = line.split_once(':') else {
            continue;
        };
        let toks: Vec<&str> = rest.split_whitespace().collect();
        if toks.is_empty() || toks.len() % 2 != 0 {
            continue;
        }
        let mut fields = Vec::with_capacity(toks.len() / 2);
        let mut ok = true;
        for pair in toks.chunks(2) {
            match pair[1].parse::<f64>() {
                Ok(v) => fields.push((pair[0], v)),
                Err(_) => ok = false,
            }
        }
        if ok {
            out.push(ProtoLine {
                proto: proto.trim(),
                fields,
            });
        }
    }
    out
}

/// The sockstat collector.
pub struct SockStat {
    v4: PathBuf,
    v6: PathBuf,
    page_size: f64,
    cache: FileCache,
}

impl SockStat {
    /// Reads under the given procfs.
    pub fn new(paths: &Paths) -> Self {
        SockStat {
            v4: paths.proc("net/sockstat"),
            v6: paths.proc("net/sockstat6"),
            page_size: rustix::param::page_size() as f64,
            cache: FileCache::remembering_missing(),
        }
    }
}

fn emit(text: &str, page_size: f64, out: &mut Vec<MetricFamily>) {
    for line in parse_sockstat(text) {
        for (key, v) in line.fields {
            let name = format!("node_sockstat_{}_{}", line.proto, key);
            let help = format!("Number of {} sockets in state {}.", line.proto, key);
            out.push(oxmon_core::gauge(name, help, v));
            if key == "mem" {
                out.push(oxmon_core::gauge(
                    format!("node_sockstat_{}_mem_bytes", line.proto),
                    format!("Number of {} sockets in state mem_bytes.", line.proto),
                    v * page_size,
                ));
            }
        }
    }
}

impl SyncCollector for SockStat {
    fn name(&self) -> &'static str {
        "sockstat"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        match scope.read(&self.v4) {
            Ok(b) => emit(&String::from_utf8_lossy(b), self.page_size, out),
            Err(e) => {
                tracing::debug!(path = %self.v4.display(), err = %e, "sockstat not available");
                return Ok(());
            }
        }
        if let Ok(b) = scope.read(&self.v6) {
            emit(&String::from_utf8_lossy(b), self.page_size, out);
        }
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(SockStat::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let text = "sockets: used 101\nTCP: inuse 3 orphan 0 tw 2 alloc 9 mem 5\nFRAG: inuse 0 memory 0\nbroken line\nX: a\n";
        let p = parse_sockstat(text);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].proto, "sockets");
        assert_eq!(p[0].fields, vec![("used", 101.0)]);
        assert_eq!(p[1].fields[4], ("mem", 5.0));
        let mut out = Vec::new();
        emit(text, 4096.0, &mut out);
        let get = |n: &str| {
            out.iter()
                .find(|f| f.name == n)
                .map(|f| match f.metrics[0].value {
                    oxmon_core::metrics::Value::Single(v) => v,
                    _ => f64::NAN,
                })
        };
        assert_eq!(get("node_sockstat_sockets_used"), Some(101.0));
        assert_eq!(get("node_sockstat_TCP_mem_bytes"), Some(5.0 * 4096.0));
        assert_eq!(get("node_sockstat_FRAG_memory"), Some(0.0));
        assert_eq!(get("node_sockstat_FRAG_memory_bytes"), None);
    }
}

//! sockstat: socket counts per protocol.
//!
//! Source: `<procfs>/net/sockstat` and `<procfs>/net/sockstat6`.
//! Metrics (gauges): `node_sockstat_sockets_used`,
//! `node_sockstat_<PROTO>_<field>` for every field of every protocol line
//! (`node_sockstat_TCP_inuse`, `node_sockstat_TCP6_inuse`, …), and
//! `node_sockstat_<PROTO>_mem_bytes` (the `mem` field is in pages).
//! Protocol and field names are made valid metric names (any other
//! character becomes `_`). A line that is not `PROTO: name value …` with
//! numbers is left out and fails the collector after the rest is exported
//! (node_exporter fails). On by default; no flags. A missing file reports
//! nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::parse_f64;
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::field_names::{self, name_part};
use crate::file_cache::{lines, SharedRead};
use crate::malformed::Malformed;
use crate::paths::Paths;

/// One `PROTO: key value key value …` line.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtoLine<'a> {
    /// Protocol (`TCP`, `UDP6`, `sockets`).
    pub proto: &'a str,
    /// `(field, value)` pairs in file order.
    pub fields: Vec<(&'a str, f64)>,
}

/// Parses `net/sockstat{,6}` (`PROTO: name value name value …` lines), and
/// what did not parse.
pub fn parse_sockstat(text: &str) -> (Vec<ProtoLine<'_>>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((proto, rest)) = line.split_once(':') else {
            bad.line(i + 1, line, "no colon after the protocol");
            continue;
        };
        let toks: Vec<&str> = rest.split_ascii_whitespace().collect();
        if toks.is_empty() || toks.len() % 2 != 0 {
            bad.line(i + 1, line, "not name and value pairs");
            continue;
        }
        let fields: Result<Vec<(&str, f64)>, _> = toks
            .chunks(2)
            .map(|pair| parse_f64(pair[1]).map(|v| (pair[0], v)))
            .collect();
        match fields {
            Ok(fields) => out.push(ProtoLine {
                proto: proto.trim(),
                fields,
            }),
            Err(_) => bad.line(i + 1, line, "a value is not a number"),
        }
    }
    (out, bad)
}

/// The sockstat collector.
pub struct SockStat {
    v4: PathBuf,
    v6: PathBuf,
    page_size: f64,
    /// Shared with udp_queues, which reads the UDP socket counts.
    shared: [Arc<SharedRead>; 2],
}

impl SockStat {
    /// Reads under the given procfs.
    pub fn new(paths: &Paths) -> Self {
        SockStat {
            v4: paths.proc("net/sockstat"),
            v6: paths.proc("net/sockstat6"),
            page_size: rustix::param::page_size() as f64,
            shared: [
                SharedRead::of(&paths.proc("net/sockstat")),
                SharedRead::of(&paths.proc("net/sockstat6")),
            ],
        }
    }
}

/// Exports the lines of one file; returns what did not parse.
fn emit(text: &str, page_size: f64, out: &mut Vec<MetricFamily>) -> Malformed {
    let (lines, bad) = parse_sockstat(text);
    // "TCP\ninuse" (no line holds a newline): the key the names are
    // interned under, built in one buffer instead of formatting both
    // names for every field of every scrape.
    let mut field = String::new();
    let mut names = |proto: &str, key: &str| {
        field.clear();
        field.push_str(proto);
        field.push('\n');
        field.push_str(key);
        field_names::intern_pair("sockstat", &field, |_| {
            let (proto, key) = (name_part(proto), name_part(key));
            (
                format!("node_sockstat_{proto}_{key}"),
                format!("Number of {proto} sockets in state {key}."),
            )
        })
    };
    for line in lines {
        for (key, v) in line.fields {
            let (name, help) = names(line.proto, key);
            out.push(oxmon_core::gauge(name, help, v));
            if name_part(key) == "mem" {
                let (name, help) = names(line.proto, "mem_bytes");
                out.push(oxmon_core::gauge(name, help, v * page_size));
            }
        }
    }
    bad
}

impl SyncCollector for SockStat {
    fn name(&self) -> &'static str {
        "sockstat"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut result = Ok(());
        for (path, shared) in [&self.v4, &self.v6].into_iter().zip(&self.shared) {
            match shared.read_optional(ctx.id, path, "sockstat") {
                Ok(Some(text)) => {
                    let bad = emit(&text, self.page_size, out);
                    result = result.and(bad.into_result(path));
                }
                Ok(None) => {}
                Err(e) => result = Err(e),
            }
        }
        result
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
        let (p, bad) = parse_sockstat(text);
        assert_eq!(p.len(), 3);
        assert_eq!(bad.count(), 2, "{bad}");
        assert_eq!(p[0].proto, "sockets");
        assert_eq!(p[0].fields, vec![("used", 101.0)]);
        assert_eq!(p[1].fields[4], ("mem", 5.0));
        let mut out = Vec::new();
        assert_eq!(emit(text, 4096.0, &mut out).count(), 2);
        emit("Bad Proto: in-use 1\n", 4096.0, &mut out);
        assert!(out
            .iter()
            .any(|f| f.name == "node_sockstat_Bad_Proto_in_use"));
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

//! netstat: network protocol counters.
//!
//! Sources: `<procfs>/net/netstat` and `<procfs>/net/snmp` (pairs of
//! `Proto: names` / `Proto: values` lines) and `<procfs>/net/snmp6`
//! (`Name value` lines, the protocol being the name up to its `6`).
//! Metrics: untyped `node_netstat_<Proto>_<Field>` for every field whose
//! `<Proto>_<Field>` matches `--collector.netstat.fields` (node_exporter's
//! default keeps the commonly used ones). On by default.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::sync::LockExt;
use oxmon_core::{Collector, MetricFamily};
use regex::Regex;

use crate::collectors::Ctx;
use crate::device_filter::compile_regex;
use crate::file_cache::FileCache;

/// node_exporter's default for `--collector.netstat.fields`.
pub const DEFAULT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// Flags of the netstat collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regexp of fields to return for netstat collector.
    #[arg(id = "collector.netstat.fields", long = "collector.netstat.fields", value_name = "REGEX", default_value = DEFAULT_FIELDS)]
    pub fields: String,
}

/// Parses `net/snmp6` into `(proto, field, value)`: `Ip6InOctets 460` is
/// `("Ip6", "InOctets", "460")`; lines without a `6` are skipped.
pub fn parse_snmp6(text: &str) -> Vec<(&str, &str, &str)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(key), Some(value)) = (it.next(), it.next()) else {
            continue;
        };
        if let Some(six) = key.find('6') {
            out.push((&key[..=six], &key[six + 1..], value));
        }
    }
    out
}

/// The most names lines remembered; the kernel writes about a dozen, so
/// more means the files change on every read (a broken or fake procfs),
/// and the memory is started over rather than grown.
const MAX_SELECTIONS: usize = 64;

/// Which fields of one names line the filter keeps: `(position, family
/// name)`. The names lines never change while the system runs, so the
/// regexp runs once per line, not once per field and scrape.
struct Selection {
    names_line: String,
    keep: Vec<(usize, String)>,
}

/// The netstat collector.
pub struct NetStat {
    netstat: PathBuf,
    snmp: PathBuf,
    snmp6: PathBuf,
    fields: Regex,
    cache: FileCache,
    selections: Mutex<Vec<Selection>>,
}

impl NetStat {
    /// Builds the collector from the flags.
    pub fn new(ctx: &Ctx<'_>) -> Result<Self, String> {
        Ok(NetStat {
            netstat: ctx.paths.proc("net/netstat"),
            snmp: ctx.paths.proc("net/snmp"),
            snmp6: ctx.paths.proc("net/snmp6"),
            fields: compile_regex("collector.netstat.fields", &ctx.options.netstat.fields)?,
            cache: FileCache::remembering_missing(),
            selections: Mutex::new(Vec::new()),
        })
    }

    fn selected(&self, key: &str) -> bool {
        self.fields.is_match(key)
    }

    /// Emits the kept fields of a `net/netstat` or `net/snmp` text.
    fn emit_pairs(&self, text: &str, sels: &mut Vec<Selection>, out: &mut Vec<MetricFamily>) {
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i + 1 < lines.len() {
            let (names, values) = (lines[i], lines[i + 1]);
            let (Some((p1, n)), Some((p2, v))) = (names.split_once(':'), values.split_once(':'))
            else {
                i += 1;
                continue;
            };
            if p1 != p2 {
                i += 1;
                continue;
            }
            i += 2;
            let sel = match sels.iter().position(|s| s.names_line == names) {
                Some(pos) => &sels[pos],
                None => {
                    let keep = n
                        .split_whitespace()
                        .enumerate()
                        .filter_map(|(idx, field)| {
                            let key = format!("{p1}_{field}");
                            self.selected(&key).then_some((idx, key))
                        })
                        .collect();
                    if sels.len() >= MAX_SELECTIONS {
                        sels.clear();
                    }
                    sels.push(Selection {
                        names_line: names.to_string(),
                        keep,
                    });
                    sels.last().expect("pushed")
                }
            };
            if sel.keep.is_empty() {
                continue;
            }
            let vals: Vec<&str> = v.split_whitespace().collect();
            if vals.len() != n.split_whitespace().count() {
                continue;
            }
            for (idx, key) in &sel.keep {
                if let Ok(x) = vals[*idx].parse::<f64>() {
                    push(out, key, x);
                }
            }
        }
    }
}

fn push(out: &mut Vec<MetricFamily>, key: &str, v: f64) {
    let mut f = MetricFamily::untyped(
        format!("node_netstat_{key}"),
        format!("Statistic {}.", key.replacen('_', "", 1)),
    );
    f.add(&[], v);
    out.push(f);
}

impl SyncCollector for NetStat {
    fn name(&self) -> &'static str {
        "netstat"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut sels = self.selections.lock_unpoisoned();
        for path in [&self.netstat, &self.snmp] {
            match scope.read(path) {
                Ok(b) => {
                    let text = String::from_utf8_lossy(b).into_owned();
                    self.emit_pairs(&text, &mut sels, out);
                }
                Err(e) => {
                    tracing::debug!(path = %path.display(), err = %e, "netstat source not available")
                }
            }
        }
        if let Ok(b) = scope.read(&self.snmp6) {
            let text = String::from_utf8_lossy(b).into_owned();
            let mut key = String::with_capacity(48);
            for (proto, field, value) in parse_snmp6(&text) {
                key.clear();
                key.push_str(proto);
                key.push('_');
                key.push_str(field);
                if self.selected(&key) {
                    if let Ok(x) = value.parse::<f64>() {
                        push(out, &key, x);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(NetStat::new(ctx)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_snmp6() {
        let s = parse_snmp6("Ip6InOctets 460\nIcmp6OutMsgs   8\nUdpLite6InErrors 0\nnonsense\n");
        assert_eq!(s[0], ("Ip6", "InOctets", "460"));
        assert_eq!(s[1], ("Icmp6", "OutMsgs", "8"));
        assert_eq!(s[2], ("UdpLite6", "InErrors", "0"));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn kept_fields_follow_the_filter_and_the_header() {
        let c = NetStat {
            netstat: PathBuf::new(),
            snmp: PathBuf::new(),
            snmp6: PathBuf::new(),
            fields: Regex::new("^Tcp_(InErrs|ActiveOpens)$").unwrap(),
            cache: FileCache::remembering_missing(),
            selections: Mutex::new(Vec::new()),
        };
        let mut sels = Vec::new();
        let mut out = Vec::new();
        c.emit_pairs(
            "Tcp: RtoMin ActiveOpens InErrs\nTcp: 200 7 x\n",
            &mut sels,
            &mut out,
        );
        assert_eq!(out.len(), 1, "InErrs is not a number");
        assert_eq!(out[0].name, "node_netstat_Tcp_ActiveOpens");
        // Same header: the cached selection is used.
        c.emit_pairs(
            "Tcp: RtoMin ActiveOpens InErrs\nTcp: 200 8 1\n",
            &mut sels,
            &mut out,
        );
        assert_eq!(sels.len(), 1);
        assert_eq!(out.len(), 3);
        // A changed header (new kernel field) gets its own selection.
        c.emit_pairs("Tcp: InErrs\nTcp: 4\n", &mut sels, &mut out);
        assert_eq!(sels.len(), 2);
        assert_eq!(out[3].name, "node_netstat_Tcp_InErrs");
    }

    #[test]
    fn default_field_filter() {
        let re = Regex::new(DEFAULT_FIELDS).unwrap();
        for yes in [
            "Tcp_InErrs",
            "Udp6_NoPorts",
            "TcpExt_ListenDrops",
            "IpExt_InOctets",
            "Ip_Forwarding",
        ] {
            assert!(re.is_match(yes), "{yes}");
        }
        for no in ["Tcp_RtoMin", "TcpExt_TCPHPHits", "Ip_InReceives"] {
            assert!(!re.is_match(no), "{no}");
        }
    }
}

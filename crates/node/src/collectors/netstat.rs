//! netstat: network protocol counters.
//!
//! Sources: `<procfs>/net/netstat` and `<procfs>/net/snmp` (pairs of
//! `Proto: names` / `Proto: values` lines) and `<procfs>/net/snmp6`
//! (`Name value` lines, the protocol being the name up to its `6`).
//! Metrics: untyped `node_netstat_<Proto>_<Field>` for every field whose
//! `<Proto>_<Field>` matches `--collector.netstat.fields` (node_exporter's
//! default keeps the commonly used ones). On by default.

use std::path::PathBuf;

use oxmon_core::collector::{CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::MetricFamily;
use regex::Regex;

use super::{compile, AttrCache};
use crate::collectors::Ctx;

/// Parses the two-line-per-protocol format of `net/netstat` and `net/snmp`
/// into `(proto, field, value)`; mismatched line pairs are skipped.
pub fn parse_netstat(text: &str) -> Vec<(&str, &str, &str)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i + 1 < lines.len() {
        let (Some((p1, names)), Some((p2, values))) =
            (lines[i].split_once(':'), lines[i + 1].split_once(':'))
        else {
            i += 1;
            continue;
        };
        if p1 != p2 {
            i += 1;
            continue;
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() == values.len() {
            for (n, v) in names.into_iter().zip(values) {
                out.push((p1, n, v));
            }
        }
        i += 2;
    }
    out
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

/// The netstat collector.
pub struct NetStat {
    netstat: PathBuf,
    snmp: PathBuf,
    snmp6: PathBuf,
    fields: Regex,
    cache: AttrCache,
}

impl NetStat {
    /// Builds the collector from the flags.
    pub fn new(ctx: &Ctx<'_>) -> Result<Self, String> {
        Ok(NetStat {
            netstat: ctx.paths.proc("net/netstat"),
            snmp: ctx.paths.proc("net/snmp"),
            snmp6: ctx.paths.proc("net/snmp6"),
            fields: compile("collector.netstat.fields", &ctx.flags.b.netstat_fields)?,
            cache: AttrCache::default(),
        })
    }

    fn emit(&self, entries: Vec<(&str, &str, &str)>, out: &mut Vec<MetricFamily>) {
        let mut key = String::with_capacity(64);
        for (proto, field, value) in entries {
            key.clear();
            key.push_str(proto);
            key.push('_');
            key.push_str(field);
            if !self.fields.is_match(&key) {
                continue;
            }
            let Ok(v) = value.parse::<f64>() else {
                continue;
            };
            let mut f = MetricFamily::untyped(
                format!("node_netstat_{key}"),
                format!("Statistic {proto}{field}."),
            );
            f.add(&[], v);
            out.push(f);
        }
    }
}

impl SyncCollector for NetStat {
    fn name(&self) -> &'static str {
        "netstat"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        for path in [&self.netstat, &self.snmp] {
            match scope.read(path) {
                Ok(b) => {
                    let text = String::from_utf8_lossy(b).into_owned();
                    self.emit(parse_netstat(&text), out);
                }
                Err(e) => {
                    tracing::debug!(path = %path.display(), err = %e, "netstat source not available")
                }
            }
        }
        if let Ok(b) = scope.read(&self.snmp6) {
            let text = String::from_utf8_lossy(b).into_owned();
            self.emit(parse_snmp6(&text), out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_snmp6() {
        let text = "TcpExt: SyncookiesSent ListenDrops\nTcpExt: 1 7\nIpExt: InOctets\nIpExt: 99\nBroken: a b\nOther: 1\n";
        let p = parse_netstat(text);
        assert_eq!(
            p,
            vec![
                ("TcpExt", "SyncookiesSent", "1"),
                ("TcpExt", "ListenDrops", "7"),
                ("IpExt", "InOctets", "99")
            ]
        );
        let s = parse_snmp6("Ip6InOctets 460\nIcmp6OutMsgs   8\nUdpLite6InErrors 0\nnonsense\n");
        assert_eq!(s[0], ("Ip6", "InOctets", "460"));
        assert_eq!(s[1], ("Icmp6", "OutMsgs", "8"));
        assert_eq!(s[2], ("UdpLite6", "InErrors", "0"));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn default_field_filter() {
        let re = Regex::new(crate::collectors::group_b::NETSTAT_FIELDS_DEFAULT).unwrap();
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

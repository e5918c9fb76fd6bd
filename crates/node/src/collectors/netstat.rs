//! netstat: network protocol counters.
//!
//! Sources: `<procfs>/net/netstat` and `<procfs>/net/snmp` (pairs of
//! `Proto: names` / `Proto: values` lines) and `<procfs>/net/snmp6`
//! (`Name value` lines, the protocol being the name up to its `6`).
//! Metrics: untyped `node_netstat_<Proto>_<Field>` for every field whose
//! `<Proto>_<Field>` matches `--collector.netstat.fields` (node_exporter's
//! default keeps the commonly used ones), made a valid metric name (any
//! other character becomes `_`). Lines that do not pair up, a values line
//! with another number of fields than its names line, and a kept value
//! that is not a number are left out and fail the collector after the rest
//! is exported (node_exporter fails). On by default.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::parse_f64;
use oxmon_core::sync::LockExt;
use oxmon_core::{Collector, MetricFamily};
use regex::Regex;

use crate::collectors::Ctx;
use crate::device_filter::compile_regex;
use crate::field_names::{intern_pair, name_part, names_at, FieldNames, Names};
use crate::file_cache::{is_missing, lines, FileCache};
use crate::malformed::Malformed;

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
/// `("Ip6", "InOctets", "460")`; a line that is not a name with a `6` and
/// one value is noted.
pub fn parse_snmp6(text: &str) -> (Vec<(&str, &str, &str)>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate() {
        let mut it = line.split_ascii_whitespace();
        let Some(key) = it.next() else { continue };
        match (key.find('6'), it.next(), it.next()) {
            (Some(six), Some(value), None) => out.push((&key[..=six], &key[six + 1..], value)),
            _ => bad.line(i + 1, line, "expected a name with a 6 and a value"),
        }
    }
    (out, bad)
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
    keep: Vec<(usize, String, Names)>,
}

/// The netstat collector.
pub struct NetStat {
    netstat: PathBuf,
    snmp: PathBuf,
    snmp6: PathBuf,
    fields: Regex,
    cache: FileCache,
    selections: Mutex<Vec<Selection>>,
    /// snmp6's names by line (one `name value` per line).
    snmp6_names: FieldNames,
}

impl NetStat {
    /// Builds the collector from the flags.
    pub fn new(ctx: &Ctx<'_>) -> Result<Self, String> {
        Ok(NetStat {
            netstat: ctx.paths.proc("net/netstat"),
            snmp: ctx.paths.proc("net/snmp"),
            snmp6: ctx.paths.proc("net/snmp6"),
            fields: compile_regex("collector.netstat.fields", &ctx.options.netstat.fields)?,
            cache: FileCache::remembering_missing().whole_in_one_read(),
            selections: Mutex::new(Vec::new()),
            snmp6_names: FieldNames::default(),
        })
    }

    fn selected(&self, key: &str) -> bool {
        self.fields.is_match(key)
    }

    /// Emits the kept fields of a `net/netstat` or `net/snmp` text;
    /// returns what did not parse.
    fn emit_pairs(
        &self,
        text: &str,
        sels: &mut Vec<Selection>,
        out: &mut Vec<MetricFamily>,
    ) -> Malformed {
        let mut bad = Malformed::default();
        let lines: Vec<&str> = lines(text).collect();
        let mut i = 0;
        while i < lines.len() {
            let names = lines[i];
            if names.trim().is_empty() {
                i += 1;
                continue;
            }
            let Some(values) = lines.get(i + 1) else {
                bad.line(i + 1, names, "a names line without a values line");
                break;
            };
            let (Some((p1, n)), Some((p2, v))) = (names.split_once(':'), values.split_once(':'))
            else {
                bad.line(i + 1, names, "no colon after the protocol");
                i += 1;
                continue;
            };
            if p1 != p2 {
                bad.line(i + 1, names, "the next line is of another protocol");
                i += 1;
                continue;
            }
            i += 2;
            let sel = match sels.iter().position(|s| s.names_line == names) {
                Some(pos) => &sels[pos],
                None => {
                    let keep = n
                        .split_ascii_whitespace()
                        .enumerate()
                        .filter_map(|(idx, field)| {
                            let key = format!("{p1}_{field}");
                            self.selected(&key)
                                .then(|| (idx, key.clone(), family_names(&key)))
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
            let vals: Vec<&str> = v.split_ascii_whitespace().collect();
            if vals.len() != n.split_ascii_whitespace().count() {
                bad.line(i, values, "not one value per name of the line before");
                continue;
            }
            for (idx, key, names) in &sel.keep {
                match parse_f64(vals[*idx]) {
                    Ok(x) => push(out, names, x),
                    Err(_) => bad.line(i, values, format!("{key} is not a number")),
                }
            }
        }
        bad
    }
}

/// The family name and help of field `key` (`Tcp_InErrs`), built once.
fn family_names(key: &str) -> Names {
    intern_pair("netstat", key, |key| {
        let key = name_part(key);
        (
            format!("node_netstat_{key}"),
            format!("Statistic {}.", key.replacen('_', "", 1)),
        )
    })
}

fn push(out: &mut Vec<MetricFamily>, names: &Names, v: f64) {
    let mut f = MetricFamily::untyped(names.0.clone(), names.1.clone());
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
        let mut result = Ok(());
        for path in [&self.netstat, &self.snmp, &self.snmp6] {
            let text = match scope.read(path) {
                Ok(b) => crate::file_cache::utf8_text(b).into_owned(),
                Err(e) if is_missing(&e) => {
                    tracing::debug!(path = %path.display(), "netstat source not available");
                    continue;
                }
                Err(e) => {
                    result = Err(format!("reading {}: {e}", path.display()).into());
                    continue;
                }
            };
            let bad = if path == &self.snmp6 {
                let (fields, mut bad) = parse_snmp6(&text);
                let mut table = self.snmp6_names.lock();
                let mut key = String::with_capacity(48);
                for (line, (proto, field, value)) in fields.into_iter().enumerate() {
                    key.clear();
                    key.push_str(proto);
                    key.push('_');
                    key.push_str(field);
                    let kept = names_at(&mut table, line, &key, |key| {
                        self.selected(key).then(|| family_names(key))
                    });
                    if let Some(names) = kept {
                        match parse_f64(value) {
                            Ok(x) => push(out, &names, x),
                            Err(_) => bad.note(format!("{key} is not a number: {value:?}")),
                        }
                    }
                }
                bad
            } else {
                self.emit_pairs(&text, &mut sels, out)
            };
            result = result.and(bad.into_result(path));
        }
        result
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
        let (s, bad) =
            parse_snmp6("Ip6InOctets 460\nIcmp6OutMsgs   8\nUdpLite6InErrors 0\nnonsense\n");
        assert_eq!(bad.count(), 1, "{bad}");
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
            snmp6_names: FieldNames::default(),
        };
        let mut sels = Vec::new();
        let mut out = Vec::new();
        let bad = c.emit_pairs(
            "Tcp: RtoMin ActiveOpens InErrs\nTcp: 200 7 x\n",
            &mut sels,
            &mut out,
        );
        assert_eq!(out.len(), 1, "InErrs is not a number");
        assert_eq!(
            bad.to_string(),
            "line 2 \"Tcp: 200 7 x\": Tcp_InErrs is not a number"
        );
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
        // Lines that do not pair up, and a name that is no metric name.
        let bad = c.emit_pairs(
            "Tcp: InErrs\nUdp: 4\nTcp: InErrs\nTcp: 4 5\nTcp: InErrs\n",
            &mut sels,
            &mut out,
        );
        assert_eq!(bad.count(), 4, "{bad}");
        let odd = NetStat {
            fields: Regex::new("_InErrs$").unwrap(),
            ..c
        };
        assert!(odd
            .emit_pairs(
                "Tcp Ext: In-Errs InErrs\nTcp Ext: 1 2\n",
                &mut sels,
                &mut out
            )
            .is_empty());
        assert_eq!(out.last().unwrap().name, "node_netstat_Tcp_Ext_InErrs");
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

//! ipvs: IP Virtual Server statistics and backends.
//!
//! Sources: `<procfs>/net/ip_vs_stats` (totals, hexadecimal) and
//! `<procfs>/net/ip_vs` (virtual services and their real servers).
//! Metrics: counters `node_ipvs_connections_total`,
//! `node_ipvs_{incoming,outgoing}_{packets,bytes}_total`; gauges
//! `node_ipvs_backend_connections_active`,
//! `node_ipvs_backend_connections_inactive` and `node_ipvs_backend_weight`
//! labelled by the backend labels, summed over backends that share them.
//! On by default. Flag: `--collector.ipvs.backend-labels` (comma separated
//! subset of `local_address,local_port,remote_address,remote_port,proto,local_mark`,
//! the default; an unknown label stops start-up). Without IPVS (no
//! `ip_vs_stats`) it reports nothing; a line of `ip_vs` that does not parse
//! fails the collector after the totals are exported.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{is_missing, read_optional, FileCache};

/// node_exporter's backend labels, in its order.
pub const BACKEND_LABELS: [&str; 6] = [
    "local_address",
    "local_port",
    "remote_address",
    "remote_port",
    "proto",
    "local_mark",
];

/// Flags of the ipvs collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Comma separated list for IPVS backend stats labels.
    #[arg(
        id = "collector.ipvs.backend-labels",
        long = "collector.ipvs.backend-labels",
        value_name = "LABELS",
        default_value = "local_address,local_port,remote_address,remote_port,proto,local_mark"
    )]
    pub backend_labels: String,
}

/// The chosen labels as indexes into [`BACKEND_LABELS`] (in that order),
/// or an error naming the unknown ones.
pub fn parse_backend_labels(flag: &str) -> Result<Vec<usize>, String> {
    let wanted: Vec<&str> = flag.split(',').filter(|l| !l.is_empty()).collect();
    let mut unknown: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|l| !BACKEND_LABELS.contains(l))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        unknown.dedup();
        return Err(format!(
            "--collector.ipvs.backend-labels: unknown IPVS backend labels: {:?}",
            unknown.join(", ")
        ));
    }
    Ok((0..BACKEND_LABELS.len())
        .filter(|&i| wanted.contains(&BACKEND_LABELS[i]))
        .collect())
}

/// Totals of `ip_vs_stats`: connections, incoming packets, outgoing
/// packets, incoming bytes, outgoing bytes.
pub fn parse_ipvs_stats(text: &str) -> Option<[u64; 5]> {
    let line = text.lines().nth(2)?;
    let cols: Vec<&str> = line.split_whitespace().collect();
    if cols.len() != 5 {
        return None;
    }
    let mut out = [0; 5];
    for (slot, c) in out.iter_mut().zip(cols) {
        *slot = u64::from_str_radix(c, 16).ok()?;
    }
    Some(out)
}

/// One real server of a virtual service.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// Virtual service address (empty for a firewall mark service).
    pub local_address: String,
    /// Virtual service port (0 for a firewall mark service).
    pub local_port: u16,
    /// Firewall mark (empty for an address service).
    pub local_mark: String,
    /// Real server address.
    pub remote_address: String,
    /// Real server port.
    pub remote_port: u16,
    /// `TCP`, `UDP`, `SCTP` or `FWM`.
    pub proto: String,
    /// Weight.
    pub weight: u64,
    /// Active connections.
    pub active: u64,
    /// Inactive connections.
    pub inactive: u64,
}

/// `C0A80016:0CEA` (IPv4 as 8 hex digits, IPv6 as 32) or
/// `[2001:db8::1]:0050` → address text and port.
pub fn parse_addr_port(s: &str) -> Option<(String, u16)> {
    let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
        let (a, p) = rest.split_once("]:")?;
        (a.parse::<Ipv6Addr>().ok().map(IpAddr::V6)?, p)
    } else {
        let (a, p) = s.split_once(':')?;
        let ip = match a.len() {
            8 => IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(a, 16).ok()?)),
            32 => IpAddr::V6(Ipv6Addr::from(u128::from_str_radix(a, 16).ok()?)),
            _ => return None,
        };
        (ip, p)
    };
    Some((addr.to_string(), u16::from_str_radix(port, 16).ok()?))
}

/// Parses `net/ip_vs` into its backends; `Err` names the first line that
/// does not parse.
pub fn parse_ipvs_backends(text: &str) -> Result<Vec<Backend>, String> {
    let mut out = Vec::new();
    let mut service: Option<(String, u16, String, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("line {} {line:?}: unexpected content", i + 1);
        match f.first().copied() {
            None | Some("IP") | Some("Prot") => {}
            _ if f.get(1) == Some(&"RemoteAddress:Port") => {}
            Some(proto @ ("TCP" | "UDP" | "SCTP")) if f.len() >= 2 => {
                let (addr, port) = parse_addr_port(f[1]).ok_or_else(bad)?;
                service = Some((addr, port, String::new(), proto.to_string()));
            }
            Some("FWM") if f.len() >= 2 => {
                service = Some((String::new(), 0, f[1].to_string(), "FWM".to_string()));
            }
            Some("->") if f.len() >= 6 => {
                let (local_address, local_port, local_mark, proto) =
                    service.clone().ok_or_else(bad)?;
                let (remote_address, remote_port) = parse_addr_port(f[1]).ok_or_else(bad)?;
                let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
                out.push(Backend {
                    local_address,
                    local_port,
                    local_mark,
                    remote_address,
                    remote_port,
                    proto,
                    weight: num(f[3])?,
                    active: num(f[4])?,
                    inactive: num(f[5])?,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

impl Backend {
    fn label(&self, i: usize) -> String {
        match BACKEND_LABELS[i] {
            "local_address" => self.local_address.clone(),
            "local_port" => self.local_port.to_string(),
            "remote_address" => self.remote_address.clone(),
            "remote_port" => self.remote_port.to_string(),
            "proto" => self.proto.clone(),
            _ => self.local_mark.clone(),
        }
    }
}

struct Ipvs {
    stats: PathBuf,
    backends: PathBuf,
    labels: Vec<usize>,
    cache: FileCache,
}

impl SyncCollector for Ipvs {
    fn name(&self) -> &'static str {
        "ipvs"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        if !read_optional(&mut scope, &self.stats, &mut buf, "ipvs")? {
            return Ok(());
        }
        let totals = parse_ipvs_stats(&buf)
            .ok_or_else(|| format!("{}: unexpected content", self.stats.display()))?;
        for (v, (name, help)) in totals.iter().zip([
            (
                "node_ipvs_connections_total",
                "The total number of connections made.",
            ),
            (
                "node_ipvs_incoming_packets_total",
                "The total number of incoming packets.",
            ),
            (
                "node_ipvs_outgoing_packets_total",
                "The total number of outgoing packets.",
            ),
            (
                "node_ipvs_incoming_bytes_total",
                "The total amount of incoming data.",
            ),
            (
                "node_ipvs_outgoing_bytes_total",
                "The total amount of outgoing data.",
            ),
        ]) {
            out.push(oxmon_core::counter(name, help, *v as f64));
        }
        if let Err(e) = scope.read_into(&self.backends, &mut buf) {
            if is_missing(&e) {
                return Err(format!(
                    "{} exists but {} does not",
                    self.stats.display(),
                    self.backends.display()
                )
                .into());
            }
            return Err(format!("reading {}: {e}", self.backends.display()).into());
        }
        let backends =
            parse_ipvs_backends(&buf).map_err(|e| format!("{}: {e}", self.backends.display()))?;
        let mut sums: BTreeMap<Vec<String>, [u64; 3]> = BTreeMap::new();
        for b in &backends {
            let key: Vec<String> = self.labels.iter().map(|&i| b.label(i)).collect();
            let s = sums.entry(key).or_default();
            s[0] += b.active;
            s[1] += b.inactive;
            s[2] += b.weight;
        }
        let mut fams = [
            MetricFamily::gauge(
                "node_ipvs_backend_connections_active",
                "The current active connections by local and remote address.",
            ),
            MetricFamily::gauge(
                "node_ipvs_backend_connections_inactive",
                "The current inactive connections by local and remote address.",
            ),
            MetricFamily::gauge(
                "node_ipvs_backend_weight",
                "The current backend weight by local and remote address.",
            ),
        ];
        for (key, s) in &sums {
            let labels: Vec<(&'static str, &str)> = self
                .labels
                .iter()
                .zip(key)
                .map(|(&i, v)| (BACKEND_LABELS[i], v.as_str()))
                .collect();
            for (fam, v) in fams.iter_mut().zip(s) {
                fam.add(&labels, *v as f64);
            }
        }
        out.extend(fams);
        Ok(())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Ipvs {
        stats: ctx.paths.proc("net/ip_vs_stats"),
        backends: ctx.paths.proc("net/ip_vs"),
        labels: parse_backend_labels(&ctx.options.ipvs.backend_labels)?,
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP_VS: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A000001:0050 rr
  -> 0A000101:1F90      Masq    3      10         1
  -> 0A000102:1F90      Masq    1      5          0
UDP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0035 rr
  -> [2001:0db8:0000:0000:0000:0000:0000:0002]:0035 Masq 1 0 7
FWM  00000010 wlc
  -> 0A000103:0000      Route   2      4          4
";

    #[test]
    fn stats_totals() {
        let text = "   Total Incoming Outgoing         Incoming         Outgoing\n   Conns  Packets  Packets            Bytes            Bytes\n      10       FF        0             1000                0\n";
        assert_eq!(parse_ipvs_stats(text), Some([16, 255, 0, 4096, 0]));
        assert_eq!(parse_ipvs_stats("a\nb\n1 2 3\n"), None);
    }

    #[test]
    fn backends_of_address_and_mark_services() {
        let b = parse_ipvs_backends(IP_VS).unwrap();
        assert_eq!(b.len(), 4);
        assert_eq!(b[0].local_address, "10.0.0.1");
        assert_eq!(b[0].local_port, 80);
        assert_eq!(b[0].remote_address, "10.0.1.1");
        assert_eq!((b[0].weight, b[0].active, b[0].inactive), (3, 10, 1));
        assert_eq!(b[2].local_address, "2001:db8::1");
        assert_eq!(b[2].remote_port, 53);
        assert_eq!(b[3].proto, "FWM");
        assert_eq!(b[3].local_mark, "00000010");
        assert_eq!(b[3].local_address, "");
        assert!(parse_ipvs_backends("TCP zz:1 rr\n").is_err());
        assert!(parse_ipvs_backends("  -> 0A000103:0000 Route 2 4 4\n").is_err());
    }

    #[test]
    fn label_flag() {
        assert_eq!(parse_backend_labels("proto,local_address").unwrap(), [0, 4]);
        let e = parse_backend_labels("proto,bogus,zz").unwrap_err();
        assert!(e.contains("bogus, zz"), "{e}");
    }
}

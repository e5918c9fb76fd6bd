//! tcpstat: TCP sockets by connection state.
//!
//! Source: a sock_diag (`inet_diag`) dump of all TCP sockets, IPv4 and,
//! when `<procfs>/net/tcp6` exists, IPv6. Metric:
//! `node_tcp_connection_states{state,port,direction}` (gauge): per state
//! (`established`, `listen`, `time_wait`, …) the number of sockets with
//! `port="0",direction="total"`, plus `rx_queued_bytes` and
//! `tx_queued_bytes`, the bytes in all receive and send queues; and, for
//! the ports named by `--collector.tcpstat.port.source` /
//! `--collector.tcpstat.port.dest` (repeatable), the sockets per state with
//! that local (`direction="source"`) or remote (`direction="dest"`) port.
//! Off by default.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{BoxFuture, CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::netlink::{self, inet_diag_request, parse_inet_diag, InetSocket as Socket, Netlink};

/// Flags of the tcpstat collector (node_exporter's names).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// List of tcpstat source ports
    #[arg(
        id = "collector.tcpstat.port.source",
        long = "collector.tcpstat.port.source",
        value_name = "PORT"
    )]
    pub source_ports: Vec<String>,
    /// List of tcpstat destination ports
    #[arg(
        id = "collector.tcpstat.port.dest",
        long = "collector.tcpstat.port.dest",
        value_name = "PORT"
    )]
    pub dest_ports: Vec<String>,
}

/// node_exporter's name of a TCP state.
pub fn state_name(state: u8) -> &'static str {
    match state {
        1 => "established",
        2 => "syn_sent",
        3 => "syn_recv",
        4 => "fin_wait1",
        5 => "fin_wait2",
        6 => "time_wait",
        7 => "close",
        8 => "close_wait",
        9 => "last_ack",
        10 => "listen",
        11 => "closing",
        _ => "unknown",
    }
}

/// The family's series: `(state, port, direction) → value`.
pub fn tally(
    sockets: &[Socket],
    source_ports: &[String],
    dest_ports: &[String],
) -> BTreeMap<(&'static str, String, &'static str), f64> {
    let mut out = BTreeMap::new();
    let mut add = |key: (&'static str, String, &'static str), v: f64| {
        *out.entry(key).or_insert(0.0) += v;
    };
    for s in sockets {
        let total = |state| (state, "0".to_string(), "total");
        add(total(state_name(s.state)), 1.0);
        add(total("rx_queued_bytes"), f64::from(s.rx_queue));
        add(total("tx_queued_bytes"), f64::from(s.tx_queue));
        for (ports, port, direction) in [
            (source_ports, s.source_port, "source"),
            (dest_ports, s.dest_port, "dest"),
        ] {
            let port = port.to_string();
            if ports.contains(&port) {
                add((state_name(s.state), port, direction), 1.0);
            }
        }
    }
    out
}

/// The tcpstat collector.
pub struct TcpStat {
    tcp6: PathBuf,
    source_ports: Vec<String>,
    dest_ports: Vec<String>,
    nl: Netlink,
}

impl TcpStat {
    async fn dump(&self, ctx: &ScrapeContext, family: u8, out: &mut Vec<Socket>) -> CollectResult {
        const IPPROTO_TCP: u8 = 6;
        const SOCK_DIAG_BY_FAMILY: u16 = netlink::SOCK_DIAG_BY_FAMILY;
        self.nl
            .dump(
                ctx.deadline,
                SOCK_DIAG_BY_FAMILY,
                &inet_diag_request(family, IPPROTO_TCP),
                |ty, p| {
                    if ty == SOCK_DIAG_BY_FAMILY {
                        out.extend(parse_inet_diag(p));
                    }
                },
            )
            .await
            .map_err(|e| {
                let which = if family == 2 { "tcpstats" } else { "tcp6stats" };
                CollectError::from(format!("couldn't get {which}: sock_diag dump: {e}"))
            })
    }
}

impl Collector for TcpStat {
    fn name(&self) -> &str {
        "tcpstat"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            const AF_INET: u8 = 2;
            const AF_INET6: u8 = 10;
            let mut sockets = Vec::new();
            self.dump(ctx, AF_INET, &mut sockets).await?;
            if self.tcp6.exists() {
                self.dump(ctx, AF_INET6, &mut sockets).await?;
            }
            let mut fam =
                MetricFamily::gauge("node_tcp_connection_states", "Number of connection states.");
            for ((state, port, direction), v) in
                tally(&sockets, &self.source_ports, &self.dest_ports)
            {
                fam.add(
                    &[("state", state), ("port", &port), ("direction", direction)],
                    v,
                );
            }
            out.push(fam);
            Ok(())
        })
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let f = &ctx.options.tcpstat;
    Ok(Arc::new(TcpStat {
        tcp6: ctx.paths.proc("net/tcp6"),
        source_ports: f.source_ports.clone(),
        dest_ports: f.dest_ports.clone(),
        nl: Netlink::new(netlink::SOCK_DIAG),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build_with, paths_under, scrape};
    use oxmon_core::metrics::Value;

    fn diag_msg(state: u8, sport: u16, dport: u16, rq: u32, wq: u32) -> Vec<u8> {
        let mut p = vec![2u8, state, 0, 0];
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.resize(56, 0);
        p.extend_from_slice(&rq.to_ne_bytes());
        p.extend_from_slice(&wq.to_ne_bytes());
        p.resize(72, 0);
        p
    }

    #[test]
    fn parses_and_tallies_sockets() {
        let s = parse_inet_diag(&diag_msg(1, 443, 51000, 10, 20)).unwrap();
        assert_eq!(
            s,
            Socket {
                state: 1,
                source_port: 443,
                dest_port: 51000,
                rx_queue: 10,
                tx_queue: 20
            }
        );
        assert!(parse_inet_diag(&diag_msg(1, 1, 1, 1, 1)[..60]).is_none());
        let sockets = [
            s,
            parse_inet_diag(&diag_msg(10, 443, 0, 0, 0)).unwrap(),
            parse_inet_diag(&diag_msg(1, 40000, 22, 5, 0)).unwrap(),
        ];
        let t = tally(&sockets, &["443".into()], &["22".into()]);
        let get =
            |s: &'static str, p: &str, d: &'static str| t.get(&(s, p.to_string(), d)).copied();
        assert_eq!(get("established", "0", "total"), Some(2.0));
        assert_eq!(get("listen", "0", "total"), Some(1.0));
        assert_eq!(get("rx_queued_bytes", "0", "total"), Some(15.0));
        assert_eq!(get("tx_queued_bytes", "0", "total"), Some(20.0));
        assert_eq!(get("established", "443", "source"), Some(1.0));
        assert_eq!(get("listen", "443", "source"), Some(1.0));
        assert_eq!(get("established", "22", "dest"), Some(1.0));
        assert_eq!(t.len(), 7);
        assert!(tally(&[], &[], &[]).is_empty());
    }

    /// A listening socket and a connection the test opens show up in the
    /// live dump, by state and by the ports the flags name.
    #[test]
    fn live_dump_sees_the_tests_own_sockets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let src = format!("--collector.tcpstat.port.source={port}");
        let dst = format!("--collector.tcpstat.port.dest={port}");
        let c = build_with(
            "tcpstat",
            &paths_under(std::path::Path::new("/nonexistent")),
            &[&src, &dst],
        );
        let out = scrape(&*c);
        let value = |state: &str, direction: &str| {
            out[0]
                .metrics
                .iter()
                .find(|m| {
                    m.labels.contains(&("state".into(), state.into()))
                        && m.labels.contains(&("direction".into(), direction.into()))
                        && m.labels.contains(&("port".into(), port.as_str().into()))
                })
                .map(|m| m.value.clone())
        };
        // The listener and the accepted end have the local port; the
        // client's end has it as its remote port.
        assert_eq!(value("listen", "source"), Some(Value::Single(1.0)));
        assert_eq!(value("established", "source"), Some(Value::Single(1.0)));
        assert_eq!(value("established", "dest"), Some(Value::Single(1.0)));
        let total = out[0]
            .metrics
            .iter()
            .find(|m| {
                m.labels.contains(&("state".into(), "established".into()))
                    && m.labels.contains(&("direction".into(), "total".into()))
            })
            .expect("an established total");
        assert!(matches!(total.value, Value::Single(v) if v >= 2.0));
        drop(client);
    }
}

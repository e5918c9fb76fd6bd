//! network_route: the routing table.
//!
//! Source: an rtnetlink `RTM_GETROUTE` dump of all address families; only
//! unicast routes (`RTN_UNICAST`) are reported, as node_exporter does.
//! Metrics: `node_network_route_info{device,src,dest,gw,priority,proto,weight}`
//! (gauge 1; `dest` is `default` for a zero-length prefix, `weight` is set
//! for each next hop of a multipath route) and `node_network_routes{device}`
//! (gauge, routes per outgoing device). No flags. Off by default.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use oxmon_core::collector::{BoxFuture, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::netdev::SharedLinks;
use crate::collectors::Ctx;
use crate::netlink::{self, attributes, u16_at, u32_at, Netlink};

const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTN_UNICAST: u8 = 1;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_MULTIPATH: u16 = 9;
/// Length of `struct rtmsg`.
const RTMSG_LEN: usize = 12;

/// One next hop of a route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hop {
    /// Outgoing interface index.
    pub ifindex: u32,
    /// Gateway, if any.
    pub gateway: Option<IpAddr>,
    /// `weight` label: the next hop's weight (`rtnh_hops + 1`) for
    /// multipath routes, empty otherwise.
    pub weight: String,
}

/// One unicast route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Route {
    /// `dest` label: `default` or `address/prefix`.
    pub dest: String,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    /// `RTA_PRIORITY` (the metric).
    pub priority: u32,
    /// `rtm_protocol`.
    pub protocol: u8,
    /// The next hops (one for an ordinary route).
    pub hops: Vec<Hop>,
}

fn ip(val: &[u8]) -> Option<IpAddr> {
    match val.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(val[0], val[1], val[2], val[3]))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(val).ok()?))),
        _ => None,
    }
}

/// The next hops of an `RTA_MULTIPATH` attribute (`struct rtnexthop`
/// each followed by its own attributes).
fn multipath(mut b: &[u8]) -> Vec<Hop> {
    let mut hops = Vec::new();
    while let (Some(len), Some(&count), Some(ifindex)) = (u16_at(b, 0), b.get(3), u32_at(b, 4)) {
        let len = usize::from(len);
        if len < 8 || len > b.len() {
            break;
        }
        let gateway = attributes(&b[8..len])
            .find(|(t, _)| *t == RTA_GATEWAY)
            .and_then(|(_, v)| ip(v));
        hops.push(Hop {
            ifindex,
            gateway,
            weight: (u32::from(count) + 1).to_string(),
        });
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    hops
}

/// Parses an `RTM_NEWROUTE` payload; `None` for a route that is not
/// unicast or a message shorter than an rtmsg.
pub fn parse_route(p: &[u8]) -> Option<Route> {
    let family = *p.first()?;
    let dst_len = *p.get(1)?;
    let protocol = *p.get(5)?;
    if *p.get(7)? != RTN_UNICAST {
        return None;
    }
    let mut r = Route {
        protocol,
        ..Route::default()
    };
    let mut dst = None;
    let mut single = Hop::default();
    for (ty, val) in attributes(p.get(RTMSG_LEN..)?) {
        match ty {
            RTA_DST => dst = ip(val),
            RTA_PREFSRC => r.src = ip(val),
            RTA_GATEWAY => single.gateway = ip(val),
            RTA_OIF => single.ifindex = u32_at(val, 0).unwrap_or(0),
            RTA_PRIORITY => r.priority = u32_at(val, 0).unwrap_or(0),
            RTA_MULTIPATH => r.hops = multipath(val),
            _ => {}
        }
    }
    if r.hops.is_empty() {
        r.hops.push(single);
    }
    r.dest = match (dst_len, dst) {
        (0, _) => "default".to_string(),
        (len, Some(ip)) => format!("{ip}/{len}"),
        // A prefix without an address: shown as the zero address of the
        // route's family.
        (len, None) if family == 2 => format!("0.0.0.0/{len}"),
        (len, None) => format!("::/{len}"),
    };
    Some(r)
}

/// node_exporter's name of a route protocol (`RTPROT_*`).
pub fn protocol_name(p: u8) -> &'static str {
    match p {
        0 => "unspec",
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        8 => "gated",
        9 => "ra",
        10 => "mrt",
        11 => "zebra",
        12 => "bird",
        13 => "dnrouted",
        14 => "xorp",
        15 => "ntk",
        16 => "dhcp",
        17 => "mrouted",
        42 => "babel",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        192 => "eigrp",
        _ => "unknown",
    }
}

/// The network_route collector.
pub struct NetworkRoute {
    nl: Netlink,
}

impl Collector for NetworkRoute {
    fn name(&self) -> &str {
        "network_route"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let links = SharedLinks::get()
                .links(ctx)
                .await
                .map_err(|e| format!("couldn't get links: {e}"))?;
            let mut routes = Vec::new();
            // An all-zero rtmsg asks for the routes of every family.
            self.nl
                .dump(ctx.deadline, RTM_GETROUTE, &[0; RTMSG_LEN], |ty, p| {
                    if ty == RTM_NEWROUTE {
                        routes.extend(parse_route(p));
                    }
                })
                .await
                .map_err(|e| format!("couldn't get routes: {e}"))?;
            let mut info = MetricFamily::gauge(
                "node_network_route_info",
                "network routing table information",
            );
            let mut per_device: BTreeMap<&str, u32> = BTreeMap::new();
            for r in &routes {
                let src = r.src.map(|a| a.to_string()).unwrap_or_default();
                let priority = r.priority.to_string();
                for hop in &r.hops {
                    let device = links
                        .iter()
                        .find(|l| l.index == hop.ifindex)
                        .map_or("", |l| l.name.as_str());
                    let gw = hop.gateway.map(|a| a.to_string()).unwrap_or_default();
                    info.add(
                        &[
                            ("device", device),
                            ("src", &src),
                            ("dest", &r.dest),
                            ("gw", &gw),
                            ("priority", &priority),
                            ("proto", protocol_name(r.protocol)),
                            ("weight", &hop.weight),
                        ],
                        1.0,
                    );
                    *per_device.entry(device).or_insert(0) += 1;
                }
            }
            let mut count =
                MetricFamily::gauge("node_network_routes", "network routes by interface");
            for (dev, n) in per_device {
                count.add(&[("device", dev)], f64::from(n));
            }
            out.push(info);
            out.push(count);
            Ok(())
        })
    }
}

/// Builds the collector.
pub fn build(_: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(Arc::new(NetworkRoute {
        nl: Netlink::new(netlink::ROUTE),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build, paths_under, scrape};
    use crate::netlink::push_attr;

    fn rtmsg(family: u8, dst_len: u8, protocol: u8, kind: u8) -> Vec<u8> {
        vec![family, dst_len, 0, 0, 254, protocol, 0, kind, 0, 0, 0, 0]
    }

    #[test]
    fn parses_single_and_multipath_routes() {
        let mut p = rtmsg(2, 0, 16, RTN_UNICAST);
        push_attr(&mut p, RTA_GATEWAY, &[192, 168, 7, 1]);
        push_attr(&mut p, RTA_OIF, &3u32.to_ne_bytes());
        push_attr(&mut p, RTA_PRIORITY, &600u32.to_ne_bytes());
        push_attr(&mut p, RTA_PREFSRC, &[192, 168, 7, 23]);
        let r = parse_route(&p).unwrap();
        assert_eq!(r.dest, "default");
        assert_eq!((r.priority, protocol_name(r.protocol)), (600, "dhcp"));
        assert_eq!(r.src.unwrap().to_string(), "192.168.7.23");
        assert_eq!(
            r.hops,
            vec![Hop {
                ifindex: 3,
                gateway: Some("192.168.7.1".parse().unwrap()),
                weight: String::new()
            }]
        );

        let mut p = rtmsg(10, 64, 186, RTN_UNICAST);
        push_attr(
            &mut p,
            RTA_DST,
            &"2001:db8:5::".parse::<Ipv6Addr>().unwrap().octets(),
        );
        let mut hops = Vec::new();
        for (ifindex, weight, gw) in [(5u32, 0u8, "fe80::1"), (6, 2, "fe80::2")] {
            let mut gwattr = Vec::new();
            push_attr(
                &mut gwattr,
                RTA_GATEWAY,
                &gw.parse::<Ipv6Addr>().unwrap().octets(),
            );
            hops.extend_from_slice(&((8 + gwattr.len()) as u16).to_ne_bytes());
            hops.extend_from_slice(&[0, weight]);
            hops.extend_from_slice(&ifindex.to_ne_bytes());
            hops.extend(gwattr);
        }
        push_attr(&mut p, RTA_MULTIPATH, &hops);
        let r = parse_route(&p).unwrap();
        assert_eq!(r.dest, "2001:db8:5::/64");
        assert_eq!(r.hops.len(), 2);
        assert_eq!((r.hops[1].ifindex, r.hops[1].weight.as_str()), (6, "3"));
        assert_eq!(r.hops[0].gateway.unwrap().to_string(), "fe80::1");
        assert_eq!(protocol_name(r.protocol), "bgp");

        // Local and broadcast routes are not reported; short input is no route.
        assert!(parse_route(&rtmsg(2, 32, 2, 2)).is_none());
        assert!(parse_route(&p[..7]).is_none());
    }

    /// The live dump lists this host's routes; each route's device is a
    /// real link and the per-device counts add up to the info series.
    #[test]
    fn live_dump_matches_the_hosts_links() {
        let c = build(
            "network_route",
            &paths_under(std::path::Path::new("/nonexistent")),
        );
        let out = scrape(&*c);
        assert_eq!(out.len(), 2);
        let info = &out[0];
        let total: f64 = out[1]
            .metrics
            .iter()
            .map(|m| match m.value {
                oxmon_core::metrics::Value::Single(v) => v,
                _ => panic!("gauge"),
            })
            .sum();
        assert_eq!(total, info.metrics.len() as f64);
        for m in &info.metrics {
            let dev = &m.labels.iter().find(|(k, _)| k == "device").unwrap().1;
            if !dev.is_empty() {
                assert!(
                    std::path::Path::new("/sys/class/net").join(dev).exists(),
                    "{dev}"
                );
            }
        }
    }
}
